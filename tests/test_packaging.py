"""Packaging: the license is an SPDX expression (no setuptools deprecation warning) and
``make run`` installs only what the main job needs."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def copy_of_the_project(tmp_path) -> Path:
    for name in ("Makefile", "pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, tmp_path / name)
    return tmp_path


def test_metadata_builds_without_the_license_deprecation_warning(tmp_path):
    setuptools = pytest.importorskip("setuptools")
    if int(setuptools.__version__.split(".")[0]) < 77:
        pytest.skip(f"setuptools {setuptools.__version__} predates SPDX license expressions")
    folder = copy_of_the_project(tmp_path)
    (folder / "out").mkdir()
    result = subprocess.run(
        [
            sys.executable,
            "-W",
            "always",
            "-c",
            "from setuptools import build_meta; print(build_meta.prepare_metadata_for_build_wheel('out'))",
        ],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "project.license" not in result.stderr and "License classifiers" not in result.stderr
    metadata = (folder / "out" / result.stdout.split()[-1] / "METADATA").read_text()
    assert "License-Expression: MIT" in metadata


def dry_run(folder: Path, target: str) -> str:
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    result = subprocess.run(
        ["make", "-n", target], cwd=folder, capture_output=True, text=True, check=True
    )
    return result.stdout


def test_make_run_installs_only_what_the_main_job_needs(tmp_path):
    folder = copy_of_the_project(tmp_path)
    installs = [line for line in dry_run(folder, "run").splitlines() if "pip install" in line]
    assert installs[-1].endswith('-e ".[progress,threads]"'), installs
    assert not [line for line in installs if "ruff" in line or "test" in line or "lint" in line]
    installs = [line for line in dry_run(folder, "test").splitlines() if "pip install" in line]
    assert installs[-1].endswith('-e ".[test,progress,lint]"'), installs
