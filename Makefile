# Two commands do all the set-up on a fresh machine:  make run  |  make test
SHELL := /bin/bash
.DEFAULT_GOAL := help

# Lambda runs python3.13: use it where it exists (pyenv or PATH), else fall back to python3 (code is 3.11-compatible).
# (pyenv's shim answers `command -v` even when 3.13 is not selected, so each candidate must really run)
PY313 := $(shell for c in $$HOME/.pyenv/versions/3.13*/bin/python3.13 $$(command -v python3.13); do \
	[ -x "$$c" ] && "$$c" -c 'import sys; assert sys.version_info[:2] == (3, 13)' 2>/dev/null && { echo "$$c"; break; }; done)
PYTHON_BOOT ?= $(if $(PY313),$(PY313),python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat requirements-dev.txt layers/core/requirements.txt | sha1sum | cut -c1-12)
OUT ?= out

.PHONY: help venv run test test-fast test-backfill bench lint typecheck validate build serve serve-screenshots \
	preflight browser sam-local clean

help:
	@echo "make run        run the hourly job once on the embedded local stack (moto + sandboxes) -> $(OUT)/"
	@echo "make test       the whole test suite (unit, integration, contract, e2e, sam validate --lint)"
	@echo "make test-backfill  the 5,000-order backfill test (CI runs it after make test)"
	@echo "make serve      the HTTP API on 127.0.0.1:8080 over the local stack (prints \$$API and \$$TOKEN for curl)"
	@echo "make serve-screenshots  a PNG of each page of the web console -> $(OUT)/console/"
	@echo "make preflight  read-only dry run against your live Billbee and sevDesk: ARGS='--connection my-connection.json'"
	@echo "make build      sam build (needs python3.13)"
	@echo "make sam-local  sam local invoke of the three functions in Docker over the local stack (installs what it needs)"
	@echo "make validate   sam validate --lint"
	@echo "make lint       ruff + mypy --strict on the core, the local stack and the tests"
	@echo "make bench      performance figures"

$(STAMP): requirements-dev.txt layers/core/requirements.txt
	@if [ -z "$(PY313)" ]; then echo "note: python3.13 not found; using $$(python3 --version) for the local venv"; fi
	@if [ ! -x "$(PY)" ]; then $(PYTHON_BOOT) -m venv $(VENV); fi
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	@rm -f $(VENV)/.installed-*; touch $@

venv: $(STAMP)

run: $(STAMP)
	$(PY) -m local.run --out $(OUT) --state $(OUT)/state $(ARGS)

# The HTTP API on 127.0.0.1 over the embedded local stack; ARGS e.g. '--port 9000 --poll' (python -m local.serve -h).
serve: $(STAMP)
	$(PY) -m local.serve $(ARGS)

# A PNG of each page of the web console (http://127.0.0.1:8080/console under `make serve`) -> out/console/.
serve-screenshots: $(STAMP) browser
	$(PY) -m local.console_screenshots --out $(OUT)/console $(ARGS)

# Step one of going live: the connector's own code against the merchant's live accounts, read-only (README, "Going
# live: the preflight"); ARGS e.g. '--connection my-connection.json' (python -m local.preflight -h) -> preflight/.
preflight: $(STAMP)
	$(PY) -m local.preflight $(ARGS)

# Headless Chromium from Debian's packages, for the test that opens the preflight page in a real browser; nothing
# to do when it is installed already.
browser:
	@if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -q && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver; \
	fi

test: $(STAMP) browser
	$(PY) -m pytest -n 2 -q $(PYTEST_ARGS)

test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not slow and not backfill" $(PYTEST_ARGS)

# The 5,000-order backfill over budgeted polls (issue 12): too long for `make test`'s 15 minutes; CI runs it after.
test-backfill: $(STAMP)
	$(PY) -m pytest -q -m backfill $(PYTEST_ARGS)

bench: $(STAMP)
	$(PY) -m local.bench

lint: $(STAMP)
	$(VENV)/bin/ruff check layers functions local tests
	$(VENV)/bin/mypy

validate: $(STAMP)
	$(VENV)/bin/sam validate --lint --template template.yaml --region eu-central-1

build: $(STAMP)
	@if [ -z "$(PY313)" ]; then echo "error: sam build needs python3.13 (the Lambda runtime); install it (e.g. pyenv install 3.13) and retry" >&2; exit 1; fi
	PATH="$(dir $(PY313)):$$PATH" $(VENV)/bin/sam build --template template.yaml

# `sam build` + `sam local invoke` of PollFunction, ExportFunction and ApiFunction in containers over the local stack
# (README, "sam local invoke"); installs Debian's docker.io, qemu-user-static and mmdebstrap when missing and starts and
# stops its own Docker engine when none runs. ARGS e.g. '--arch x86_64' (python -m local.sam_local -h).
sam-local: $(STAMP)
	@if [ -z "$(PY313)" ]; then echo "error: sam-local needs python3.13 (the Lambda runtime) for sam build; install it (e.g. pyenv install 3.13) and retry" >&2; exit 1; fi
	PATH="$(dir $(PY313)):$$PATH" $(PY) -m local.sam_local $(ARGS)

clean:
	rm -rf $(OUT) .aws-sam .pytest_cache
