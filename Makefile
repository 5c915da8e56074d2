# Stargate Federation. Quick start: `make dev` (a local federation) and `make test`.
# Both create or refresh .venv from pyproject.toml first; only python3 (>= 3.11) and make are needed.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
BUF    := $(VENV)/buf/node_modules/.bin/buf
DEV_DIR ?= .dev

.PHONY: dev test lint unit integration envtest envtest-bin proto proto-lint bench e2e clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python >= 3.11 is required")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install -q --disable-pip-version-check -e '.[test]'
	@touch $(STAMP)

# A control plane on embedded defaults plus 3 simulated sites in 3 countries; Ctrl-C stops it.
dev: $(STAMP)
	$(BIN)/stargatectl dev up --dir $(DEV_DIR)

# The envtest tier (tests/envtest) needs a kube-apiserver: built once per machine and cached
# (~/.cache/stargate/kube-apiserver-1.20.2/); a warm cache costs nothing here.
test: lint envtest-bin
	$(BIN)/python -m pytest -q

# A real kube-apiserver from Debian's kubernetes source package with Debian's Go (root for apt;
# ~5-8 min once on 2 cores), reused when cached: see scripts/envtest-bin.sh.
envtest-bin:
	@scripts/envtest-bin.sh >/dev/null

envtest: $(STAMP) envtest-bin
	$(BIN)/python -m pytest -q tests/envtest

lint: $(STAMP) proto-lint
	$(BIN)/ruff check controlplane operators tests benchmarks proto
	$(BIN)/ruff format --check controlplane operators tests benchmarks proto
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

# buf lint + buf breaking against the committed v1 baseline. buf comes from npm (@bufbuild/buf);
# where npm is absent the stale-stub and classification tests still guard the API.
proto-lint:
	@if command -v npm >/dev/null 2>&1; then \
	  [ -x $(BUF) ] || npm install --silent --no-audit --no-fund --prefix $(VENV)/buf @bufbuild/buf@1 >/dev/null; \
	  cd proto && ../$(BUF) lint && ../$(BUF) breaking --against baseline/v1.binpb && echo "buf lint + breaking: ok"; \
	else echo "proto-lint: npm not found; skipping buf (install Node.js to run it)"; fi

# Regenerate the committed stubs (tests/unit/test_stubs_fresh.py fails when they are stale).
proto: $(STAMP)
	$(BIN)/python proto/generate.py

unit: $(STAMP)
	$(BIN)/python -m pytest -q tests/unit tests/contract

integration: $(STAMP)
	$(BIN)/python -m pytest -q tests/integration

bench: $(STAMP)
	$(BIN)/python -m benchmarks

# Needs kind and Docker (absent on the project's CI machines): see tests/e2e/README.md.
e2e: $(STAMP)
	$(BIN)/python -m pytest -q -m e2e tests/e2e

clean:
	rm -rf $(VENV) $(DEV_DIR) .mypy_cache .ruff_cache
