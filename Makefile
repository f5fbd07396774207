# Two commands do all the set-up on a fresh machine:
#   make run   - the demo on an embedded default (local Kafka and more)
#   make test  - the whole test suite
# Both create the virtual environment in .venv on first use.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: run test lint venv clean

venv: $(VENV)/.installed

# The domain core is compiled at install time (setup.py), so editing it
# means reinstalling: depend on its sources.
$(VENV)/.installed: pyproject.toml setup.py $(wildcard src/streamfunnel/*.py)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

# The demo: a local Kafka broker, the worker, simulated traffic and the alerts
# as they are published. Ctrl-C stops everything it started.
run: venv
	$(BIN)/streamfunnel demo

# pytest exits 5 when it collected nothing; a suite that ran no test is a failure.
test: venv
	@$(BIN)/python -m pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests" >&2; exit 1; fi; \
	exit $$rc

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# A broker still running from .run/kafka would lose its files under it.
clean:
	$(PYTHON) deploy/kafka-local/kafka-local stop
	rm -rf $(VENV) .run
