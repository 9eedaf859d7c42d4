"""The setup cell that opens every notebook, written once (build.py puts it into each .ipynb,
so that a notebook still runs on its own)."""

_HEADER = r"""
# Setup.  Opened from a clone without `pip install -e .`?  Make the checkout importable.
import importlib.util
import os
import sys
from pathlib import Path

if importlib.util.find_spec("autodiff") is None and (Path.cwd().parent / "autodiff").is_dir():
    sys.path.insert(0, str(Path.cwd().parent))

{libraries}import matplotlib.pyplot as plt
import numpy as np

import autodiff
"""

_FAST = (
    'FAST = os.environ.get("AUTODIFF_NOTEBOOK_FAST") == "1"'
    "  # the test suite sets it: shorter training\n"
)

_SEEDS = "autodiff.manual_seed(0)  # the same numbers on every run\nnp.random.seed(0)\n"


def setup_cell(imports: str, fast: bool = True, libraries: str = "") -> tuple[str, str]:
    """The ``("code", text)`` cell: make the checkout importable, import NumPy, matplotlib,
    autodiff and the notebook's own ``imports`` (``libraries``: other third-party imports,
    sorted before matplotlib's), define ``FAST`` (shorter training under the test suite)
    unless ``fast`` is False, and seed the random numbers."""
    header = _HEADER.format(libraries=libraries.strip("\n") + "\n" if libraries else "")
    text = header + imports.strip("\n") + "\n\n" + (_FAST if fast else "") + _SEEDS
    return "code", text
