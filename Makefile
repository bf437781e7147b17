# Two commands: `make run` and `make test`. Everything else is for developers.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help run test lint fmt openapi fuzz seed-demo migrate bench load clean

help:
	@echo "make run        start the service on http://127.0.0.1:8000 (embedded PostgreSQL unless DATABASE_URL)"
	@echo "make test       run the whole test suite (embedded PostgreSQL unless TEST_DATABASE_URL)"
	@echo "make seed-demo  create the demo CPTS and print its credentials"
	@echo "make lint       ruff + mypy --strict"
	@echo "make fmt        format and auto-fix"
	@echo "make openapi    regenerate openapi/openapi.json"
	@echo "make fuzz       schemathesis against the app's OpenAPI"
	@echo "make bench      the benchmark: the service against raw PostgreSQL, in one run (see README)"
	@echo "make load       locust scenarios for a minute against a running service (see README)"

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit("Python 3.11 or newer is required") if sys.version_info < (3, 11) else None'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@

# A random signing secret for this checkout, written once (development only; deployments set SNP_SECRET_KEY).
.env:
	@printf 'SNP_ENV=development\nSNP_SECRET_KEY=%s\n' "$$($(PYTHON) -c 'import secrets; print(secrets.token_urlsafe(48))')" > $@
	@echo "wrote .env (development settings)"

run: $(STAMP) .env
	$(BIN)/snp serve

seed-demo: $(STAMP) .env
	$(BIN)/snp seed-demo

migrate: $(STAMP) .env
	$(BIN)/snp migrate

test: $(STAMP)
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check service tests load_tests
	$(BIN)/ruff format --check service tests load_tests
	$(BIN)/mypy

fmt: $(STAMP)
	$(BIN)/ruff format service tests load_tests
	$(BIN)/ruff check --fix service tests load_tests

openapi: $(STAMP)
	$(BIN)/snp openapi --output openapi/openapi.json

fuzz: $(STAMP)
	$(BIN)/pytest -m fuzz tests/fuzz -p no:cacheprovider

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache

bench: $(STAMP)
	$(BIN)/python -m load_tests.bench

# Against a service already running (`make run` in another terminal, or LOAD_HOST): a generated
# large CPTS in its database, then a winter day of locust users for LOAD_TIME.
LOAD_HOST  ?= http://127.0.0.1:8000
LOAD_USERS ?= 28
LOAD_TIME  ?= 1m
load: $(STAMP) .env
	$(BIN)/python -m load_tests.generator
	$(BIN)/locust -f load_tests/locustfile.py --headless -u $(LOAD_USERS) -r 7 -t $(LOAD_TIME) \
		--host $(LOAD_HOST) --only-summary --csv load_tests/results/locust
