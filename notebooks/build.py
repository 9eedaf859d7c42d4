"""Build the course notebooks from their cell lists, and run them.

The notebooks' text and code live in ``notebooks/source/nXX_*.py`` as plain
lists of Markdown and code cells, so that a change is a readable diff; this
script turns each list into an ``.ipynb`` and executes it, keeping the outputs
(plots and graphs included) in the committed file::

    python notebooks/build.py               # write and execute all six notebooks
    python notebooks/build.py 03 04         # only those whose names start with 03 or 04
    python notebooks/build.py --no-execute  # write sources only (no outputs)
    python notebooks/build.py --check       # do the committed sources match the cells?

Executing needs the ``notebooks`` extra (``pip install -e ".[notebooks]"``:
nbclient, nbformat, ipykernel, matplotlib) and Graphviz's ``dot`` for the
graph pictures.  The kernel is this Python (``sys.executable``), so the
notebooks see the same installed packages.  With ``AUTODIFF_NOTEBOOK_FAST=1``
(the test suite sets it) the notebooks train for fewer steps.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SOURCES = HERE / "source"
KERNEL_NAME = "autodiff-notebooks"

# notebook file -> module in notebooks/source holding its cells
NOTEBOOKS = {
    "01_autograd_from_scratch.ipynb": "n01_autograd_from_scratch",
    "02_softmax_and_cross_entropy.ipynb": "n02_softmax_and_cross_entropy",
    "03_quickstart.ipynb": "n03_quickstart",
    "04_convolution_and_pooling.ipynb": "n04_convolution_and_pooling",
    "05_testing_gradients.ipynb": "n05_testing_gradients",
    "06_activations_and_two_layers.ipynb": "n06_activations_and_two_layers",
}


def load_cells(name: str) -> list[tuple[str, str]]:
    """The ``CELLS`` list of ``(kind, text)`` pairs of one notebook's source module."""
    module_name = NOTEBOOKS[name]
    if str(SOURCES) not in sys.path:  # the sources share their setup cell (shared_setup.py)
        sys.path.insert(0, str(SOURCES))
    spec = importlib.util.spec_from_file_location(module_name, SOURCES / f"{module_name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for kind, text in module.CELLS:
        if kind not in ("markdown", "code"):
            raise ValueError(f"{module_name}: a cell is of kind {kind!r}, not markdown or code")
        if not text.strip():
            raise ValueError(f"{module_name}: empty {kind} cell")
    return module.CELLS


def make_notebook(name: str):
    """A fresh, unexecuted ``nbformat`` notebook from the cell list."""
    import nbformat

    notebook = nbformat.v4.new_notebook()
    for kind, text in load_cells(name):
        text = text.strip("\n")
        if kind == "markdown":
            notebook.cells.append(nbformat.v4.new_markdown_cell(text))
        else:
            notebook.cells.append(nbformat.v4.new_code_cell(text))
    for index, cell in enumerate(notebook.cells):  # stable ids: diffs stay small
        cell["id"] = f"cell-{index:02d}"
    notebook.metadata = {
        "kernelspec": {
            "name": "python3",
            "display_name": "Python 3 (ipykernel)",
            "language": "python",
        },
        "language_info": {"name": "python"},
    }
    return notebook


def sources_of(notebook) -> list[tuple[str, str]]:
    return [(cell["cell_type"], "".join(cell["source"])) for cell in notebook["cells"]]


class _KernelSpecDir:
    """A temporary Jupyter kernel spec that runs this very Python.

    A ``python3`` kernel registered elsewhere on the machine (another Python,
    another set of packages) must not be the one that runs the notebooks.
    """

    def __enter__(self):
        self._dir = tempfile.TemporaryDirectory(prefix="autodiff-kernels-")
        spec_dir = Path(self._dir.name) / "kernels" / KERNEL_NAME
        spec_dir.mkdir(parents=True)
        spec = {
            "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": "Python 3 (autodiff)",
            "language": "python",
        }
        (spec_dir / "kernel.json").write_text(json.dumps(spec))
        self._saved = os.environ.get("JUPYTER_PATH")
        parts = [self._dir.name] + ([self._saved] if self._saved else [])
        os.environ["JUPYTER_PATH"] = os.pathsep.join(parts)
        return self

    def __exit__(self, *exc):
        if self._saved is None:
            os.environ.pop("JUPYTER_PATH", None)
        else:
            os.environ["JUPYTER_PATH"] = self._saved
        self._dir.cleanup()


def execute(notebook, *, fast: bool, timeout: int = 600):
    """Run every cell in a fresh kernel (working directory: ``notebooks/``).

    Raises ``nbclient.exceptions.CellExecutionError`` on the first cell that
    fails.  ``fast`` sets ``AUTODIFF_NOTEBOOK_FAST=1`` for the kernel; the
    repository root is put on the kernel's ``PYTHONPATH`` so that the
    notebooks import this checkout's ``autodiff``, ``nn`` and ``visualize``.
    Returns the executed notebook and the seconds it took.
    """
    from nbclient import NotebookClient

    saved = {
        key: os.environ.get(key) for key in ("AUTODIFF_NOTEBOOK_FAST", "PYTHONPATH", "MPLBACKEND")
    }
    os.environ["AUTODIFF_NOTEBOOK_FAST"] = "1" if fast else "0"
    os.environ["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT)] + ([saved["PYTHONPATH"]] if saved["PYTHONPATH"] else [])
    )
    os.environ.pop("MPLBACKEND", None)  # the kernel's inline backend draws with Agg
    try:
        with _KernelSpecDir():
            client = NotebookClient(
                notebook,
                timeout=timeout,
                kernel_name=KERNEL_NAME,
                resources={"metadata": {"path": str(HERE)}},
                record_timing=False,
            )
            start = time.perf_counter()
            client.execute()
            seconds = time.perf_counter() - start
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    # the kernel that ran it is not the one a reader will use
    notebook.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3 (ipykernel)",
        "language": "python",
    }
    notebook.metadata.get("language_info", {}).pop("version", None)
    return notebook, seconds


def write(notebook, path: Path) -> None:
    """Write atomically: a temporary file in the same folder, then ``os.replace``."""
    import nbformat

    from autodiff.files import atomic_write

    text = nbformat.writes(notebook)
    with atomic_write(path, "w", encoding="utf-8") as file:
        file.write(text if text.endswith("\n") else text + "\n")


def check(names) -> list[str]:
    """Names of the notebooks whose committed sources differ from their cell lists."""
    import nbformat

    stale = []
    for name in names:
        path = HERE / name
        if not path.exists():
            stale.append(f"{name} (missing)")
            continue
        committed = sources_of(nbformat.read(path, as_version=4))
        if committed != sources_of(make_notebook(name)):
            stale.append(name)
    return stale


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("only", nargs="*", help="notebook name prefixes (default: all)")
    parser.add_argument("--no-execute", action="store_true", help="write sources only")
    parser.add_argument("--fast", action="store_true", help="AUTODIFF_NOTEBOOK_FAST=1")
    parser.add_argument("--check", action="store_true", help="compare committed sources")
    args = parser.parse_args(argv)
    names = [n for n in NOTEBOOKS if not args.only or any(n.startswith(p) for p in args.only)]
    if not names:
        parser.error(f"no notebook starts with {args.only}; the notebooks: {list(NOTEBOOKS)}")
    if args.check:
        stale = check(names)
        for name in stale:
            print(f"out of date: {name} (run python notebooks/build.py {name[:2]})")
        return 1 if stale else 0
    for name in names:
        notebook = make_notebook(name)
        if not args.no_execute:
            notebook, seconds = execute(notebook, fast=args.fast)
            print(f"{name}: executed in {seconds:.1f} s")
        write(notebook, HERE / name)
        print(f"wrote {HERE / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
