# Every target creates the virtual environment it needs, so that a fresh
# machine with Python 3.10+ and access to the package index runs them as is.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# What each job installs into the one environment: the main job only the library and
# its progress bar and threadpoolctl (so that the engine's threads, not BLAS's, do the
# work); the tests the test extra and the linter (the lint extra).
RUN_EXTRAS := progress,threads
TEST_EXTRAS := test,progress,lint
EXTRAS ?= $(TEST_EXTRAS)

.PHONY: venv run test format bench fuzz notebooks clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# One stamp per set of extras, remade when pyproject.toml changes.
$(BIN)/.installed-%: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[$*]"
	touch $@

venv: $(BIN)/.installed-$(EXTRAS)

# The main job: the lecture's quickstart (FashionMNIST if present or downloadable, else the bundled digits).
run: $(BIN)/.installed-$(RUN_EXTRAS)
	$(BIN)/autodiff train $(ARGS)

# The test suite, as CI runs it: lint, format check, then pytest.
test: $(BIN)/.installed-$(TEST_EXTRAS)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The differential edge suite run long: thousands of examples per op against PyTorch
# (tests/test_differential.py; about an hour on two cores). PyTorch is the oracle:
# installed here (pinned, the CPU build) when the environment lacks it.
fuzz: $(BIN)/.installed-$(TEST_EXTRAS)
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/python -m pip install --quiet torch==2.13.0
	HYPOTHESIS_PROFILE=fuzz $(BIN)/python -m pytest -q tests/test_differential.py tests/test_edges.py $(PYTEST_ARGS)

format: $(BIN)/.installed-$(TEST_EXTRAS)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: venv
	$(BIN)/python -m benchmarks $(ARGS)

notebooks:
	$(MAKE) venv EXTRAS=$(TEST_EXTRAS),notebooks

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis
