# The two commands: `make run` and `make test`. Each bootstraps what it needs on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)
EDITOR_DIST := web-editor/dist/index.html
EDITOR_SRC := $(shell find web-editor -path web-editor/node_modules -prune -o -path web-editor/dist -prune -o -type f -print 2>/dev/null)
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# Debian packages the test suite starts for real: PostgreSQL, redis-server, chromium (browser tests).
TEST_DEBS := postgresql-15 redis-server chromium
PYTEST_ARGS ?=

.PHONY: run test venv editor system-deps clean bench

run: venv editor
	$(BIN)/kaskad serve $(if $(DEMO),--demo,)

test: venv system-deps editor
	$(BIN)/python -m pytest -n 2 --dist loadgroup $(PYTEST_ARGS)

venv: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	@rm -f $(VENV)/.installed-* && touch $@

# The editor is built only when web-editor/ has an app in it.
editor:
	@if [ -f web-editor/package.json ]; then $(MAKE) --no-print-directory $(EDITOR_DIST); fi

$(EDITOR_DIST): $(EDITOR_SRC)
	cd web-editor && (npm ci --no-audit --no-fund || npm install --no-audit --no-fund) && npm run build
	@touch $@

system-deps:
	@missing=""; \
	[ -x /usr/lib/postgresql/15/bin/initdb ] || missing="$$missing postgresql-15"; \
	command -v redis-server >/dev/null || missing="$$missing redis-server"; \
	[ -x /usr/bin/chromium ] || missing="$$missing chromium"; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing >/dev/null; \
	fi; \
	if [ "$$(id -u)" = 0 ] && ! id postgres >/dev/null 2>&1; then useradd --system --no-create-home postgres; fi

bench: venv
	$(BIN)/python bench/ingest.py

clean:
	rm -rf $(VENV) web-editor/node_modules web-editor/dist .pytest_cache
