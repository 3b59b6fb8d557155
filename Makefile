# Comptoir — the two commands: `make dev` runs the whole system, `make test` runs the whole test suite.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Debian packages the tests need; later issues add dovecot-imapd and chromium.
SYSTEM_PACKAGES ?= chromium dovecot-imapd openssl
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)

.PHONY: dev test install system-deps lint format bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip wheel

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet -e '.[dev]'
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

install: $(STAMP)

# Debian packages the tests need (real peers: IMAP server, headless browser). Installed only when missing.
system-deps:
	@./scripts/ensure-system-deps.sh $(SYSTEM_PACKAGES)

dev: install
	$(BIN)/comptoir dev

test: install system-deps
	./scripts/run-tests.sh

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: install
	$(BIN)/python bench/create_tickets.py
	$(BIN)/python bench/wiki.py
	$(BIN)/python bench/crm_sync_filemaker.py

clean:
	rm -rf var .pytest_cache
