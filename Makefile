# Every target creates the virtual environment it needs, so that a fresh
# machine with Python 3.10+ and access to the package index runs them as is.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
EXTRAS ?= test,progress

.PHONY: venv run test format bench notebooks clean

$(BIN)/.installed-$(EXTRAS): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[$(EXTRAS)]" ruff
	touch $@

venv: $(BIN)/.installed-$(EXTRAS)

# The main job: the lecture's quickstart (FashionMNIST if present or downloadable, else the bundled digits).
run: venv
	$(BIN)/autodiff train $(ARGS)

# The test suite, as CI runs it: lint, format check, then pytest.
test: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest $(PYTEST_ARGS)

format: venv
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: venv
	$(BIN)/python -m benchmarks $(ARGS)

notebooks:
	$(MAKE) venv EXTRAS=test,progress,notebooks

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis
