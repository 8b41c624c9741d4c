# spine-cds: `make run` serves on 127.0.0.1:8080 with embedded defaults; `make test` runs every test.
# Both create the virtualenv and install the project first, so they work on a fresh clone.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
NODE_STAMP := tests/fhir_server/node_modules/.installed-stamp

.PHONY: run test lint format clean venv fhir-engine demo fuzz bench sandbox-check

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

$(NODE_STAMP): tests/fhir_server/package.json tests/fhir_server/package-lock.json
	cd tests/fhir_server && npm ci --no-audit --no-fund --loglevel=error
	touch $(NODE_STAMP)

fhir-engine: $(NODE_STAMP)

# Ports: `make run PORT=9090`, `make demo PORT=9090 FHIR_PORT=9103`.
PORT ?= 8080
FHIR_PORT ?= 8103

run: $(STAMP)
	mkdir -p data
	$(VENV)/bin/cds serve --host 127.0.0.1 --port $(PORT)

# The CDS Hooks sandbox against local demo patients: FHIR server :8103, service :8080 (auth OFF).
demo: $(STAMP) $(NODE_STAMP)
	mkdir -p data
	$(PY) -m demo --port $(PORT) --fhir-port $(FHIR_PORT)

# The demo stories in the real CDS Hooks sandbox, driven in headless Chromium (Debian chromium and
# chromium-driver), and with CRD=... in the Da Vinci CRD Request Generator too. Both are third-party code,
# built outside the repository (see README "Real clients"):
#   make sandbox-check SANDBOX=/work/ext/sandbox CRD=/work/ext/crd-request-generator
# Writes docs/screenshots/*.png and docs/screenshots/observed.md. Not part of `make test`.
sandbox-check: $(STAMP) $(NODE_STAMP)
	@test -n "$(SANDBOX)" || { echo "usage: make sandbox-check SANDBOX=<built cds-hooks/sandbox> [CRD=<built crd-request-generator>]"; exit 2; }
	$(PY) -m demo.sandbox_check --sandbox "$(SANDBOX)" $(if $(CRD),--crd "$(CRD)") --out docs/screenshots

# Production benchmarks under gunicorn (deploy/gunicorn.conf.py), loopback only, ~15 min
# (BENCH_ARGS=--quick: ~6 min; BENCH_ARGS="--only overhead,scaling"). Results and analysis: docs/performance.md.
# Never part of `make test`. The servers section needs granian (the `bench` extra).
BENCH_STAMP := $(VENV)/.bench-stamp

$(BENCH_STAMP): $(STAMP)
	$(PY) -m pip install --quiet -e '.[test,bench]'
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP) $(NODE_STAMP)
	$(PY) benchmarks/run.py $(BENCH_ARGS)

test: $(STAMP) $(NODE_STAMP)
	$(VENV)/bin/ruff check cds hooks tests benchmarks demo fhir_fixtures
	$(VENV)/bin/ruff format --check cds hooks tests benchmarks demo fhir_fixtures
	$(PY) -m pytest

# The long fuzz run (the short one is part of `make test`): 20,000 examples per property, fresh randomness,
# then schemathesis against the served openapi.yaml under gunicorn (SCHEMATHESIS_EXAMPLES per operation).
FUZZ_STAMP := $(VENV)/.fuzz-stamp

$(FUZZ_STAMP): $(STAMP)
	$(PY) -m pip install --quiet -e '.[test,fuzz]'
	touch $(FUZZ_STAMP)

fuzz: $(FUZZ_STAMP)
	FUZZ_EXAMPLES=20000 $(PY) -m pytest tests/test_fuzz.py tests/test_openapi_agreement.py -q
	SCHEMATHESIS_EXAMPLES=$${SCHEMATHESIS_EXAMPLES:-300} $(PY) -m pytest tests/test_schemathesis.py -q -s

lint: $(STAMP)
	$(VENV)/bin/ruff check cds hooks tests benchmarks demo fhir_fixtures
	$(VENV)/bin/ruff format --check cds hooks tests benchmarks demo fhir_fixtures

format: $(STAMP)
	$(VENV)/bin/ruff format cds hooks tests benchmarks demo fhir_fixtures
	$(VENV)/bin/ruff check --fix cds hooks tests benchmarks demo fhir_fixtures

clean:
	rm -rf $(VENV) tests/fhir_server/node_modules data
