"""The house has arrows one way: autodiff_cli -> visualize -> nn -> autodiff.

Read from the source (every import statement, also those inside functions), so
that a lazy import cannot hide an arrow pointing back.
"""

from __future__ import annotations

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
LAYERS = ["autodiff", "nn", "visualize", "autodiff_cli"]  # each may import those before it


def _imports(package: str):
    """(file, imported module, imported names) for every absolute import in a package."""
    for path in sorted((ROOT / package).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    yield path.relative_to(ROOT), alias.name, []
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                yield path.relative_to(ROOT), node.module, [a.name for a in node.names]


@pytest.mark.parametrize("package", LAYERS)
def test_imports_point_down_only(package):
    above = LAYERS[LAYERS.index(package) + 1 :]
    wrong = [
        f"{path} imports {module}"
        for path, module, _ in _imports(package)
        if module.split(".")[0] in above
    ]
    assert not wrong


def test_visualize_reads_the_engine_through_public_names_only():
    private = [
        f"{path} imports {module} {names}"
        for path, module, names in _imports("visualize")
        if module.split(".")[0] in ("autodiff", "nn")
        and (
            any(part.startswith("_") for part in module.split("."))
            or any(name.startswith("_") for name in names)
        )
    ]
    assert not private
