# Cybergine — the two commands that matter are `make run` and `make test`.
# Both create .venv and install the pinned dependencies on first use.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

# Python caches what it compiles (its default, which some environments turn off): each of
# the many processes the tests start imports the platform, and compiling its sources anew
# costs every one of them about 0.7 s of CPU.
unexport PYTHONDONTWRITEBYTECODE

.PHONY: run test lint typecheck pytest pytest-fast test-cluster fuzz migrate demo worker bench lock clean help

help:
	@echo "make run        start the platform on the embedded database with a demo organisation"
	@echo "make test       lint, type-check and run every test"
	@echo "make lint       ruff (format check + lint)"
	@echo "make typecheck  mypy --strict on src/"
	@echo "make pytest-fast the tests not marked slow: the inner loop (make test runs them all)"
	@echo "make test-cluster a cluster in network namespaces under faults (as root; needs haproxy)"
	@echo "make fuzz       the API fuzzers with a long time budget (make test gives them a short one)"
	@echo "make migrate    apply database migrations"
	@echo "make worker     run a job worker"
	@echo "make bench      run the benchmarks under bench/"
	@echo "make lock       re-resolve constraints.txt from pyproject.toml"
	@echo "make dist       build the sdist and the wheel into dist/ (offline)"
	@echo "make image      build the container image cybergine:local (CONTAINER=podman for podman)"

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	@touch $(STAMP)

run: $(STAMP)
	$(BIN)/cybergine demo
	@echo "Dashboard:        http://127.0.0.1:8000/  (demo@cybergine.example / demo-password)"
	@echo "Demo storefront:  http://127.0.0.1:8000/demo/store  (the chat widget)"
	@echo "WhatsApp sandbox: http://127.0.0.1:8000/dev/whatsapp  (write as a WhatsApp customer)"
	@echo "Shopify sandbox:  http://127.0.0.1:8000/_shopify/  (simulated Shopify: open the demo shop's admin with the app)"
	$(BIN)/cybergine serve --host 127.0.0.1 --port 8000 --whatsapp-simulator --shopify-simulator

# mypy runs beside pytest: the tests spend much of their time waiting on servers and
# PostgreSQL, which leaves room for it on two cores. Its report is printed once both end.
test: lint $(STAMP)
	@log=$$(mktemp); $(MAKE) --no-print-directory typecheck >"$$log" 2>&1 & types=$$!; \
	$(MAKE) --no-print-directory pytest; tests=$$?; \
	wait $$types; typed=$$?; cat "$$log"; rm -f "$$log"; \
	test $$tests -eq 0 && test $$typed -eq 0

lint: $(STAMP)
	$(BIN)/ruff format --check src tests bench
	$(BIN)/ruff check src tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/pytest $(PYTEST_ARGS)

pytest-fast: $(STAMP)
	$(BIN)/pytest -m "not slow" $(PYTEST_ARGS)

# Hosts as network namespaces (root, iproute2, Debian's haproxy): PostgreSQL, web x2,
# worker x2, HAProxy, the load; kills a web host, a worker host, restarts PostgreSQL.
test-cluster: $(STAMP)
	$(BIN)/pytest tests/cluster -m cluster -n 0 -p no:cacheprovider -s --timeout 300 $(PYTEST_ARGS)

# The two schemathesis runs for minutes each instead of the short budget of `make test`.
fuzz: $(STAMP)
	CYBERGINE_TEST_FUZZ_SECONDS=$${CYBERGINE_TEST_FUZZ_SECONDS:-240} \
	CYBERGINE_TEST_WIDGET_FUZZ_SECONDS=$${CYBERGINE_TEST_WIDGET_FUZZ_SECONDS:-90} \
	$(BIN)/pytest tests/web/test_api_fuzz.py tests/web/test_widget_api_fuzz.py $(PYTEST_ARGS)

migrate: $(STAMP)
	$(BIN)/cybergine migrate

worker: $(STAMP)
	$(BIN)/cybergine worker

bench: $(STAMP)
	$(BIN)/python bench/startup.py
	$(BIN)/python bench/retrieval.py
	$(BIN)/python bench/whatsapp.py
	$(BIN)/python bench/realtime.py
	$(BIN)/python bench/hostile.py
	$(BIN)/python bench/dashboard.py
	$(BIN)/python bench/privacy.py

lock: $(STAMP)
	$(BIN)/uv pip compile pyproject.toml --extra dev --universal --python-version 3.11 \
		--no-header --output-file constraints.txt

# The sdist, then the wheel from it (as `python -m build`), with the venv's setuptools.
.PHONY: dist image
dist: $(STAMP)
	rm -rf dist
	$(BIN)/uv build --no-build-isolation --python $(BIN)/python --out-dir dist

CONTAINER ?= docker
image:
	$(CONTAINER) build $(if $(filter podman,$(CONTAINER)),--format docker) -t cybergine:local .

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
