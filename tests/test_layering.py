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


def _private_reads(folder: pathlib.Path):
    """(file, line, expression) for every ``obj._name`` (or getattr(obj, "_name")) where obj
    is not ``self``/``cls``: a private attribute of someone else's object."""
    for path in sorted(folder.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Attribute):
                name, owner = node.attr, node.value
            elif (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in ("getattr", "hasattr", "setattr", "delattr")
                and len(node.args) >= 2
                and isinstance(node.args[1], ast.Constant)
                and isinstance(node.args[1].value, str)
            ):
                name, owner = node.args[1].value, node.args[0]
            else:
                continue
            if not name.startswith("_") or (name.startswith("__") and name.endswith("__")):
                continue
            if isinstance(owner, ast.Name) and owner.id in ("self", "cls"):
                continue
            yield f"{path.relative_to(folder.parent)}:{node.lineno}: {ast.unparse(node)}"


def test_visualize_reads_no_private_attribute_of_the_engine():
    """Tensors and nodes are read through their public names (``grad``, ``output``,
    ``saved_values``), so the engine can change its insides without breaking pictures."""
    assert list(_private_reads(ROOT / "visualize")) == []


def test_the_private_attribute_scan_sees_attributes_and_getattr(tmp_path):
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "m.py").write_text(
        "def f(t, self):\n"
        "    self._ok, t.__class__\n"
        "    return t._grad, getattr(t, '_saved', None)\n"
    )
    found = list(_private_reads(package))
    assert [line.split(": ", 1)[1] for line in found] == ["t._grad", "getattr(t, '_saved', None)"]
