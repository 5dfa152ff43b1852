#!/usr/bin/env bash
# health_check.sh - Nagios-style check of a hedgegrid node's /health endpoint.
#
# Usage: health_check.sh [HEALTH_URL]
#   HEALTH_URL   default $HEALTH_URL, else http://localhost:8080/health
#   HEALTH_TIMEOUT (env) seconds to wait for an answer, default 10
#
# The node judges its own health (against its --max-bar-age); this script trusts that
# verdict and only maps it to a Nagios exit code:
#   0 OK        the node says healthy
#   2 CRITICAL  the node says degraded or down (its reason is printed)
#   3 UNKNOWN   no usable answer: unreachable, timeout, not JSON, unexpected HTTP status
# The bar age the node reports is added as perf data. Needs curl and jq.
set -u

url="${1:-${HEALTH_URL:-http://localhost:8080/health}}"
timeout="${HEALTH_TIMEOUT:-10}"

unknown() {
    echo "UNKNOWN: $*"
    exit 3
}

for tool in curl jq; do
    command -v "$tool" >/dev/null 2>&1 || unknown "$tool is not installed"
done

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
state="$(jq -r '.trading_state // "unknown"' <<<"$body")"
# Whole seconds of the node's own bar age, as perf data; none before the first bar.
age="$(jq -r '.bar_age_seconds | numbers | floor' <<<"$body")"
perf="${age:+ | bar_age=${age}s;;;0}"
last="no bar yet"
[[ -n "$age" ]] && last="last bar ${age}s ago"

case "$status" in
healthy)
    echo "OK: strategy healthy ($state), $last$perf"
    exit 0
    ;;
degraded | down)
    reason="$(jq -r '.reason // "no reason given"' <<<"$body")"
    echo "CRITICAL: strategy is $status ($state): $reason$perf"
    exit 2
    ;;
*)
    unknown "the answer from $url has no health status"
    ;;
esac
