# chat-memory developer commands. Everything installs what it needs (idempotent).
#   make dev          emulators (functions, firestore, auth, hosting) + a local Redis
#   make test         the whole suite against real services, then ./deploy.sh --dry-run
#   make lint         ruff check, ruff format --check, mypy, lint-imports (the house rule)
#   make check        lint + test (the gate; alias: make pr)
#   make reliability  tests/reliability against the same stack (no deploy dry run)
#   make bench        bench/run.py $(BENCH_ARGS) against the same stack
#   make grant        ROLE=admin|backend UID=<uid> [REVOKE=1]: a role, on the running make dev
# Settings come from the environment; see scripts/dev.sh and scripts/test.sh.

SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: setup dev test lint format check pr bench reliability stage clean grant

setup:
	bash scripts/setup.sh

stage:
	$(PY) scripts/stage.py --venv

dev:
	bash scripts/dev.sh

test:
	bash scripts/test.sh

lint: setup-venv
	$(VENV)/bin/ruff check shared functions tests scripts clients examples
	$(VENV)/bin/ruff format --check shared functions tests scripts clients examples
	$(VENV)/bin/mypy shared functions
	$(VENV)/bin/mypy clients/python/src
	$(VENV)/bin/lint-imports

format: setup-venv
	$(VENV)/bin/ruff check --fix shared functions tests scripts clients examples
	$(VENV)/bin/ruff format shared functions tests scripts clients examples

check: lint test

pr: check

.PHONY: setup-venv
setup-venv:
	@[ -x $(PY) ] || bash scripts/setup.sh

bench:
	CM_RUN_CMD="$(abspath $(PY)) bench/run.py $(BENCH_ARGS)" CM_SKIP_DRY_RUN=1 bash scripts/test.sh

reliability:
	CM_TEST_PATHS=tests/reliability CM_SKIP_DRY_RUN=1 bash scripts/test.sh

grant: setup-venv
	@[ -n "$(ROLE)" ] && [ -n "$(UID)" ] || { echo "usage: make grant ROLE=admin|backend UID=<uid> [REVOKE=1]" >&2; exit 2; }
	$(PY) scripts/grant_role.py "$(ROLE)" "$(UID)" $(if $(REVOKE),--revoke)

clean:
	rm -rf .build .cache firebase.cm-*.json
