# Two commands on a fresh machine: `make up` and `make test`. Only python3 and make are assumed.
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: up test test-at bench lint replay clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || python3 -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

up: $(STAMP)
	$(BIN)/leadscore up

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The whole suite with every Python process's wall clock started at AT, e.g. make test-at AT=2027-01-31T23:57:00Z
test-at: $(STAMP)
	LEADSCORE_TEST_CLOCK_START="$(AT)" PYTHONPATH="$(CURDIR)/tests/clock_shift" $(BIN)/python -m pytest $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python -m bench.run $(BENCH_ARGS)

replay: $(STAMP)
	$(BIN)/leadscore replay

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) .leadscore .pytest_cache
