# hedgegrid_ops — every target sets itself up from a clean clone.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
CONSTRAINTS := configs/constraints.txt
ARGS ?=

# Find a Python >= 3.12: PATH first, then pyenv's installed versions (no shim needed).
PYTHON_BOOT := $(shell for c in python3.13 python3.12 python3 \
	$$(ls -d $${PYENV_ROOT:-$$HOME/.pyenv}/versions/3.1[2-9]*/bin/python3 2>/dev/null | sort -rV); do \
	  if command -v $$c >/dev/null 2>&1 && $$c -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; then \
	    command -v $$c; break; fi; done)

.PHONY: install run rehearse test test-fast soak bench bench-exchange bench-events bench-exit lint fmt clean

$(STAMP): pyproject.toml $(CONSTRAINTS)
	@if [ -z "$(PYTHON_BOOT)" ]; then echo "error: no Python >= 3.12 found (PATH or pyenv)" >&2; exit 2; fi
	@test -x $(PY) || $(PYTHON_BOOT) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip==26.3
	$(PY) -m pip install --quiet -c $(CONSTRAINTS) -e '.[test]'
	@touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(PY) -m hedgegrid_ops run --enable-ops $(ARGS)

# Live mode against the local Binance exchange (no network, no real keys); Ctrl-C stops both.
rehearse: $(STAMP)
	$(PY) -m hedgegrid_ops.rehearse $(ARGS)

# Two workers (pytest-xdist), each test file on one worker so a module's program starts
# once; most of the suite waits on real programs, so two halve the time on two cores.
# Tests marked `serial` hold a bound that needs the machine to themselves (every probe
# answered within 1 s under a connection flood): they run afterwards, alone.
WORKERS ?= 2
test: $(STAMP)
	$(PY) -m pytest -q -n $(WORKERS) --dist loadfile -m "not soak and not serial" $(ARGS)
	$(PY) -m pytest -q -m "serial and not soak" $(ARGS)

# The inner loop: unit tests only, no external programs, fewer Hypothesis examples.
test-fast: $(STAMP)
	$(PY) -m pytest -q tests/unit -m "not tools" --hypothesis-profile=fast -p no:cacheprovider $(ARGS)

# At least 10 minutes of the fast market: RSS flat after warm-up, 20 clients on the API.
soak: $(STAMP)
	$(PY) -m pytest -q -s -m soak $(ARGS)

bench: $(STAMP)
	bash .ci/install-tools
	$(PY) -m tests.benchmarks.bench_load
	$(PY) -m tests.benchmarks.bench_ops
	$(PY) -m tests.benchmarks.bench_exchange
	$(PY) -m tests.benchmarks.bench_events
	$(PY) -m tests.benchmarks.bench_exit

bench-exchange: $(STAMP)
	$(PY) -m tests.benchmarks.bench_exchange

bench-events: $(STAMP)
	$(PY) -m tests.benchmarks.bench_events

bench-exit: $(STAMP)
	$(PY) -m tests.benchmarks.bench_exit

lint: $(STAMP)
	$(VENV)/bin/ruff check hedgegrid_ops tests
	$(VENV)/bin/ruff format --check hedgegrid_ops tests
	$(VENV)/bin/mypy

fmt: $(STAMP)
	$(VENV)/bin/ruff format hedgegrid_ops tests
	$(VENV)/bin/ruff check --fix hedgegrid_ops tests

# Never the audit trail: logs/audit.log and its rotations stay (so does a state dir).
clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache
	@if [ -d logs ]; then find logs -mindepth 1 -maxdepth 1 ! -name 'audit.log*' -exec rm -rf {} +; fi
