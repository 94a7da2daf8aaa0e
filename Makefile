# proprofs-bridge — the two commands: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test check lint typecheck docs unit bench bench-tools clean browser alertmanager deploy-tools pictures

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

RUNTIME := $(VENV)/.runtime

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP) $(RUNTIME)

## The service alone, without the test and docs tools: what the demo needs.
$(RUNTIME): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $(RUNTIME)

## Run the main job on embedded defaults (the runtime only: the first ticket comes quickly).
## DEMO_ARGS passes flags on: make demo DEMO_ARGS="--port 9000".
demo: $(RUNTIME)
	$(BIN)/bridge demo $(DEMO_ARGS)

## The check to run every few minutes (under a minute): lint, types, import rules, and
## the tests that need no server, browser or external tool, on two processes.
check: lint typecheck
	$(BIN)/pytest -q -n 2 -m "not e2e and not slow" -k "not postgres and not redis"

## Lint, type-check and run the whole test suite.
test: browser alertmanager deploy-tools lint typecheck docs unit

## The system's Chromium for the browser tests (Debian's package; never a downloaded build),
## and Node for the docs' Node snippet.
browser:
	@if [ -x /usr/bin/chromium ] || command -v chromium >/dev/null 2>&1; then :; \
	elif command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	else echo "Chromium is missing and cannot be installed here: browser tests will skip"; fi
	@if command -v node >/dev/null 2>&1; then :; \
	elif command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs; \
	else echo "node is missing and cannot be installed here: the docs' Node snippet will skip"; fi

## A real Alertmanager for the alert tests (Debian's prometheus-alertmanager).
alertmanager:
	@if command -v prometheus-alertmanager >/dev/null 2>&1; then :; \
	elif command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	    prometheus-alertmanager; \
	else echo "Alertmanager is missing and cannot be installed here: its test will skip"; fi

## nginx, to check deploy/nginx.conf (systemd-analyze checks the units where systemd is);
## promtool (Debian's prometheus package), to check and test deploy/prometheus-rules.yaml.
deploy-tools:
	@if command -v nginx >/dev/null 2>&1; then :; \
	elif command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light; \
	else echo "nginx is missing and cannot be installed here: its check will skip"; fi
	@if command -v promtool >/dev/null 2>&1; then :; \
	elif command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	    --no-install-recommends prometheus; \
	else echo "promtool is missing and cannot be installed here: its check will skip"; fi

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy --strict bridge

## The documentation site (docs/, mkdocs.yml) into site/, every warning an error.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet --site-dir site

## Retake the README's and the docs' pictures: the browser tests, on clean pages.
pictures: browser $(STAMP)
	BRIDGE_PICTURES=$(CURDIR)/docs/img $(BIN)/pytest -q tests/e2e/test_forms_browser.py \
	  tests/e2e/test_widget_browser.py tests/e2e/test_admin_browser.py \
	  tests/e2e/test_incidents_browser.py

## Every test: those in one process each on two processes, then the end-to-end tests one
## at a time (they start servers and measure; two at once on two cores would skew them).
unit: $(STAMP)
	@status=0; $(BIN)/pytest -n 2 -m "not e2e" || status=$$?; \
	$(BIN)/pytest -m e2e || status=$$?; exit $$status

## wrk, the load generator the intake benchmarks drive, and valgrind, which
## bench/instructions.py counts with (Debian's packages).
bench-tools:
	@if command -v wrk >/dev/null 2>&1 && command -v valgrind >/dev/null 2>&1; then :; \
	elif command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk valgrind; \
	else echo "wrk or valgrind is missing and cannot be installed here: bench/intake.py and bench/instructions.py need them"; fi

## The performance figures: each benchmark prints ratios against a baseline of the same run.
bench: $(STAMP) bench-tools
	$(BIN)/python bench/intake.py
	$(BIN)/python bench/isolation.py
	$(BIN)/python bench/delivery.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build *.egg-info site
