#!/usr/bin/env bash
# health_check.sh - Nagios-style check of a hedgegrid node's /health endpoint.
#
# Usage: health_check.sh [HEALTH_URL] [MAX_BAR_AGE]
#   HEALTH_URL   default $HEALTH_URL, else http://localhost:8080/health
#   MAX_BAR_AGE  seconds; default $MAX_BAR_AGE, else 120
#   HEALTH_TIMEOUT (env) seconds to wait for an answer, default 10
#
# Exit codes (Nagios plugin convention):
#   0 OK        the node says healthy and its last bar is at most MAX_BAR_AGE old
#   2 CRITICAL  the node says degraded/down (the reason is printed), no bar processed
#               yet, or the last bar is older than MAX_BAR_AGE
#   3 UNKNOWN   no usable answer: unreachable, timeout, not JSON, unexpected HTTP status
#
# The bar age is the server's bar_age_seconds when present (one clock made both
# measurements), else now - last_bar on this machine. Needs curl and jq.
set -u

url="${1:-${HEALTH_URL:-http://localhost:8080/health}}"
max_age="${2:-${MAX_BAR_AGE:-120}}"
timeout="${HEALTH_TIMEOUT:-10}"

unknown() {
    echo "UNKNOWN: $*"
    exit 3
}

for tool in curl jq; do
    command -v "$tool" >/dev/null 2>&1 || unknown "$tool is not installed"
done
[[ "$max_age" =~ ^[0-9]+$ ]] || unknown "MAX_BAR_AGE must be a whole number of seconds, got '$max_age'"

errfile="$(mktemp)" || unknown "cannot create a temporary file"
trap 'rm -f "$errfile"' EXIT

# -w appends the HTTP status on its own line; /health answers 503 with a JSON body when
# degraded, so the body is read whatever the status (no --fail).
if ! response="$(curl -sS --max-time "$timeout" -H 'Accept: application/json' \
    -w '\n%{http_code}' -- "$url" 2>"$errfile")"; then
    reason="$(head -n 1 "$errfile")"
    unknown "cannot reach $url: ${reason:-curl failed}"
fi
http_code="${response##*$'\n'}"
body="${response%$'\n'*}"

# (jq -e accepts an empty input as success, hence the explicit emptiness test)
if [[ -z "${body//[[:space:]]/}" ]] || ! jq -e 'type == "object"' >/dev/null 2>&1 <<<"$body"; then
    unknown "$url did not answer with a JSON object (HTTP $http_code)"
fi
if [[ "$http_code" != 200 && "$http_code" != 503 ]]; then
    detail="$(jq -r '.detail // .error // "no detail"' <<<"$body")"
    unknown "unexpected HTTP $http_code from $url: $detail"
fi

status="$(jq -r '.status | strings' <<<"$body")"
[[ -n "$status" ]] || unknown "the answer from $url has no status"
state="$(jq -r '.trading_state // "unknown"' <<<"$body")"

if [[ "$status" != "healthy" ]]; then
    reason="$(jq -r '.reason // "no reason given"' <<<"$body")"
    echo "CRITICAL: strategy is $status ($state): $reason"
    exit 2
fi

if jq -e '.last_bar == null' >/dev/null <<<"$body"; then
    echo "CRITICAL: no bar processed yet"
    exit 2
fi

# Whole seconds, never negative (clock skew); empty when the fields are not numbers.
age="$(jq -r '
    if (.bar_age_seconds | type) == "number" then .bar_age_seconds
    elif (.last_bar | type) == "number" then now - .last_bar
    else empty end
    | if . < 0 then 0 else floor end' <<<"$body")"
[[ "$age" =~ ^[0-9]+$ ]] || unknown "the answer from $url has no usable last_bar"

perf="bar_age=${age}s;;${max_age};0"
if ((age > max_age)); then
    echo "CRITICAL: no bar for ${age}s (max ${max_age}s) | $perf"
    exit 2
fi

echo "OK: strategy healthy ($state), last bar ${age}s ago (max ${max_age}s) | $perf"
exit 0
