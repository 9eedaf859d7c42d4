"""The course notebooks: committed in sync with their sources, with outputs, and runnable.

Each notebook is executed top to bottom in a fresh kernel (this Python) with
``AUTODIFF_NOTEBOOK_FAST=1``, which the notebooks read to train for fewer
steps; any failing cell fails the test.  Needs the ``notebooks`` extra
(nbclient, nbformat, ipykernel, matplotlib) and, for the notebooks that draw
graphs, Graphviz's ``dot``; without them the tests skip and say why.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
import sys
from pathlib import Path

import pytest

NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"
CELL_TIMEOUT = 120  # seconds; in fast mode no cell comes near it
NOTEBOOK_BUDGET = 120  # seconds for a whole notebook in fast mode (it takes 3 to 25 here)


def _load_build():
    spec = importlib.util.spec_from_file_location("notebooks_build", NOTEBOOK_DIR / "build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


build = _load_build()
NAMES = list(build.NOTEBOOKS)


def _require(*modules):
    for module in modules:
        pytest.importorskip(
            module,
            reason=f"{module} is not installed: install the notebooks extra "
            '(pip install -e ".[notebooks]") to check the notebooks',
        )


def _read(name):
    _require("nbformat")
    import nbformat

    return nbformat.read(NOTEBOOK_DIR / name, as_version=4)


def test_every_notebook_is_listed():
    on_disk = sorted(path.name for path in NOTEBOOK_DIR.glob("*.ipynb"))
    assert on_disk == sorted(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_committed_sources_match_their_cell_lists(name):
    _require("nbformat")
    assert build.check([name]) == [], (
        f"{name} differs from notebooks/source/{build.NOTEBOOKS[name]}.py: "
        f"run python notebooks/build.py {name[:2]}"
    )


@pytest.mark.parametrize("name", NAMES)
def test_opens_with_what_it_teaches_and_ends_with_exercises(name):
    cells = _read(name).cells
    assert cells[0].cell_type == "markdown"
    assert "What this notebook teaches" in cells[0].source
    assert cells[-1].cell_type == "markdown"
    assert cells[-1].source.startswith("## Exercises")
    exercises = [line for line in cells[-1].source.splitlines() if re.match(r"\d+\. ", line)]
    assert len(exercises) >= 3, "at least three numbered exercises"


@pytest.mark.parametrize("name", NAMES)
def test_committed_with_outputs_and_pictures(name):
    """So that they read well on the web: every code cell ran, none failed, pictures kept."""
    notebook = _read(name)  # skips without nbformat
    import nbformat

    nbformat.validate(notebook)  # raises ValidationError for a malformed notebook
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    not_run = [i for i, cell in enumerate(code) if cell.execution_count is None]
    assert not not_run, f"{name}: code cells {not_run} have no outputs: run notebooks/build.py"
    counts = [cell.execution_count for cell in code]
    assert counts == list(range(1, len(code) + 1)), f"{name}: not run top to bottom in one go"
    pictures = 0
    for cell in code:
        for output in cell.outputs:
            assert output.output_type != "error", f"{name}: a committed cell failed"
            if output.output_type == "stream" and output.name == "stderr":
                assert "Traceback" not in output.text, f"{name}: a traceback on stderr"
            data = output.get("data", {})
            pictures += "image/png" in data or "image/svg+xml" in data
    assert pictures >= 2, f"{name}: expected plots or graphs among the outputs"


def _uses_graphviz(notebook) -> bool:
    return any("visualize." in cell.source for cell in notebook.cells if cell.cell_type == "code")


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_notebook_runs_top_to_bottom(name):
    _require("nbformat", "nbclient", "ipykernel", "matplotlib")
    notebook = build.make_notebook(name)  # the current sources, not the committed outputs
    if _uses_graphviz(notebook) and shutil.which("dot") is None:
        pytest.skip(
            "Graphviz's dot is not installed (apt-get install graphviz / brew install "
            f"graphviz): {name} draws graphs"
        )
    executed, seconds = build.execute(notebook, fast=True, timeout=CELL_TIMEOUT)
    for cell in executed.cells:
        if cell.cell_type != "code":
            continue
        for output in cell.outputs:
            assert output.output_type != "error"
            if output.output_type == "stream" and output.name == "stderr":
                # e.g. a figure or graph that failed to render is reported here, not raised
                assert "Traceback" not in output.text, f"{name}:\n{cell.source}\n{output.text}"
    print(f"{name}: {seconds:.1f} s with AUTODIFF_NOTEBOOK_FAST=1 ({sys.executable})")
    assert seconds < NOTEBOOK_BUDGET, f"{name} took {seconds:.0f} s in fast mode"
