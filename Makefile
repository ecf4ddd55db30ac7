# ExaPG: two doors. `make up` sets up this machine and starts the stack;
# `make test` sets up this machine and runs the whole test suite.
# Both are idempotent: finished set-up steps are remembered in .make/.

SHELL := /bin/bash
# Debian's Python where it is new enough: the service user (postgres) must be able to run
# the interpreter of the supervised Python programs, and a Python under /root is out of its reach.
PYTHON ?= $(shell /usr/bin/python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null \
	&& echo /usr/bin/python3 || echo python3)
VENV := .venv
BIN := $(VENV)/bin
STAMPS := .make
MODE ?= ha
PYTEST_ARGS ?=

# Debian packages the local stack and the tests use.
# python3-psycopg: the worker image's registration runs on Debian's Python, and so do its
# tests; nginx-light serves the front-end image's configuration in tests; pgbackrest archives
# WAL and takes the backups of the local stack.
APT_PACKAGES := postgresql-15 pgbouncer prometheus prometheus-postgres-exporter \
	docker-compose chromium python3-venv python3-psycopg nginx-light ca-certificates debootstrap \
	docker-registry pgbackrest
# The front end's build (Vite 7) needs Node.js 20.19 or newer; Debian 12's own is 18.
NODE_MIN := 20.19

.PHONY: up test setup system venv frontend engine images lint bench docs types config down clean help

help:
	@echo "make up     set up this machine and start ExaPG (MODE=$(MODE))"
	@echo "make test   set up this machine and run the test suite"
	@echo "make images start a Docker engine if need be and build ExaPG's images"
	@echo "make lint   ruff and mypy"
	@echo "make bench  benchmarks (results under bench/)"
	@echo "make docs   write docs/cli.md and docs/configuration.md from the code"
	@echo "make types  write frontend/openapi.json and the front end's API types from the code"
	@echo "make config write the Docker images' configuration under config/ from the code"
	@echo "make down   stop the stack (data kept)"

up: setup
	$(BIN)/exapg up --mode $(MODE)

test: setup images
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The Docker runtime's tests run on a real engine: started here when none runs (as root),
# and every image built once (kept while its inputs do not change). Without an engine
# the Docker tests skip and say why.
engine:
	@bash docker/start-engine.sh

images: setup engine
	@if timeout 20 docker info >/dev/null 2>&1; then $(BIN)/exapg images build; \
	else echo "no Docker engine: images not built"; fi

setup: system venv frontend

# Install only what is missing; a second run asks apt nothing.
system:
	@missing=$$(for p in $(APT_PACKAGES); do \
		dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q "install ok installed" || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages: $$missing"; \
		if [ "$$(id -u)" -ne 0 ]; then SUDO=sudo; fi; \
		$$SUDO mkdir -p /etc/postgresql-common/createcluster.d; \
		echo "create_main_cluster = false" | $$SUDO tee /etc/postgresql-common/createcluster.d/exapg.conf >/dev/null; \
		$$SUDO apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing >/dev/null || exit 4; \
		if [ -d /run/systemd/system ]; then for svc in $$missing; do case $$svc in \
			pgbouncer|prometheus|prometheus-postgres-exporter|docker-registry) $$SUDO systemctl disable --now $$svc >/dev/null 2>&1 || true;; \
			nginx-light) $$SUDO systemctl disable --now nginx >/dev/null 2>&1 || true;; \
		esac; done; fi; \
	fi

# A virtualenv made by another interpreter is made again.
venv:
	@if [ "$$(cat $(VENV)/.interpreter 2>/dev/null)" != "$(PYTHON)" ]; then rm -rf $(VENV) $(STAMPS)/venv; fi
	@$(MAKE) --no-print-directory $(STAMPS)/venv

$(STAMPS)/venv: pyproject.toml
	@mkdir -p $(STAMPS)
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "error: Python 3.11 or newer is needed (set PYTHON=...)"; exit 4; }
	test -x $(BIN)/python || { $(PYTHON) -m venv $(VENV) && echo "$(PYTHON)" > $(VENV)/.interpreter; }
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test,tpch]'
	@touch $@

# The management UI's front end, built once per change of its sources.
FRONTEND_SOURCES := $(shell test -d frontend && find frontend -path frontend/node_modules -prune -o -path frontend/dist -prune -o -type f -print 2>/dev/null)

frontend: $(if $(wildcard frontend/package.json),$(STAMPS)/frontend)

$(STAMPS)/frontend: $(FRONTEND_SOURCES)
	@mkdir -p $(STAMPS)
	@found=$$(node -p process.versions.node 2>/dev/null); \
	[ -n "$$found" ] && [ "$$(printf '%s\n' $(NODE_MIN) "$$found" | sort -V | head -n1)" = "$(NODE_MIN)" ] || \
		{ echo "error: Node.js $(NODE_MIN) or newer with npm is needed to build the management UI (found: $${found:-none}); install it from nodejs.org or NodeSource"; exit 4; }
	cd frontend && npm ci --no-audit --no-fund --loglevel=error && npm run build
	@touch $@

lint: venv
	$(BIN)/ruff check src tests bench tools
	$(BIN)/mypy src

bench: setup
	@for script in bench/*/run.py; do echo "== $$script"; $(BIN)/python $$script || exit 1; done

# The CLI and configuration references are generated; tests/docs fails when they are stale.
docs: venv
	$(BIN)/python tools/docs_gen.py

# The API's OpenAPI document and the TypeScript types made from it (the pinned openapi-typescript);
# tests/api/test_frontend_types.py fails when they are stale. Needs the npm packages, not a build:
# UI code written against a new field does not compile until the types are made.
types: venv
	@test -f frontend/node_modules/openapi-typescript/bin/cli.js || \
		(cd frontend && npm ci --no-audit --no-fund --loglevel=error)
	$(BIN)/python tools/api_types.py

# The images' postgresql.conf, pg_hba.conf and pgbouncer.ini.template are rendered by the
# local runtime's code; tests/unit/test_conf_files.py fails when they are stale.
config: venv
	$(BIN)/python tools/render_config.py

down: venv
	$(BIN)/exapg down

clean:
	rm -rf $(STAMPS) $(VENV) frontend/node_modules frontend/dist
