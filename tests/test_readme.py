"""Every Python block of README.md runs as written, in order, in a fresh interpreter.

The blocks fenced with ```python are run one after the other in one new Python
process (so a later block may use what an earlier one defined, as a reader
would), in a temporary working directory (files the blocks write, such as
``model.pth``, land there).  Tracebacks point at README.md's own line numbers.

A block that needs something the test suite cannot promise says so on its first
line, a comment that the reader sees too:

    # needs: fashion-mnist     FashionMNIST in ./data (a reader's real files, or the network
                               to fetch them): here the block runs on small synthetic
                               files in FashionMNIST's layout, written to ./data first
    # needs: torch             PyTorch: run only when it is installed
    # needs: dot               Graphviz's dot program (rendering): run only when installed
    # needs: onnx              onnx and onnxruntime (the onnx extra): run only when installed

Several needs are separated by commas (``# needs: torch, dot``).  An unknown need
fails the test, so that a typo cannot skip a block silently.  A skipped block's
names are not defined for later blocks: keep such blocks self-contained.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from synthetic_mnist import write_dataset

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
NEEDS = re.compile(r"#\s*needs:\s*(.+)")


def _available(need: str) -> bool:
    if need == "fashion-mnist":
        return True  # provided: synthetic files in ./data (see the test)
    if need == "torch":
        return importlib.util.find_spec("torch") is not None
    if need == "dot":
        return shutil.which("dot") is not None
    if need == "onnx":
        return all(importlib.util.find_spec(m) is not None for m in ("onnx", "onnxruntime"))
    raise ValueError(
        f"README.md: unknown '# needs: {need}' (known: fashion-mnist, torch, dot, onnx; see "
        "tests/test_readme.py)"
    )


def python_blocks(text: str) -> list[tuple[int, str, list[str]]]:
    """``(first line number, code, needs)`` for each ```python block, in order."""
    blocks = []
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        if lines[index].strip() == "```python":
            start = index + 1
            end = start
            while end < len(lines) and lines[end].strip() != "```":
                end += 1
            code = "\n".join(lines[start:end]) + "\n"
            first = lines[start].strip() if start < end else ""
            match = NEEDS.fullmatch(first)
            needs = [n.strip() for n in match[1].split(",") if n.strip()] if match else []
            blocks.append((start + 1, code, needs))
            index = end
        index += 1
    return blocks


# Runs in the fresh interpreter: each block compiled under README.md's name and
# line numbers, all in one namespace.
_RUNNER = """
import json, sys
blocks = json.load(open(sys.argv[1]))
namespace = {"__name__": "__main__"}
for line, code in blocks:
    print(f"--- README.md line {line}", flush=True)
    exec(compile("\\n" * (line - 1) + code, "README.md", "exec"), namespace)
"""


def test_python_blocks_are_found_and_their_needs_are_known():
    blocks = python_blocks(README.read_text(encoding="utf-8"))
    assert len(blocks) >= 5
    for _, _, needs in blocks:
        for need in needs:
            _available(need)  # raises for an unknown need
    assert any("fashion-mnist" in needs for _, _, needs in blocks)  # the lecture's code


def test_the_needs_marker_is_read_from_the_first_line_only():
    text = (
        "```python\n# needs: torch, dot\nimport torch\n```\n\n```python\nx = 1  # needs: no\n```\n"
    )
    assert python_blocks(text) == [(2, "# needs: torch, dot\nimport torch\n", ["torch", "dot"]),
                                   (7, "x = 1  # needs: no\n", [])]  # fmt: skip


def test_every_python_block_of_the_readme_runs_as_written(tmp_path):
    blocks = python_blocks(README.read_text(encoding="utf-8"))
    runnable = [(line, code) for line, code, needs in blocks if all(map(_available, needs))]
    skipped = [line for line, _, needs in blocks if not all(map(_available, needs))]
    if any("fashion-mnist" in needs for _, _, needs in blocks):
        write_dataset(tmp_path / "data", "FashionMNIST", n_train=256, n_test=128)
    (tmp_path / "blocks.json").write_text(json.dumps(runnable))
    (tmp_path / "runner.py").write_text(_RUNNER)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg"}
    result = subprocess.run(
        [sys.executable, "runner.py", "blocks.json"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, (
        f"a README block failed (skipped for their needs: lines {skipped}):\n"
        f"{result.stdout[-3000:]}\n{result.stderr[-5000:]}"
    )
