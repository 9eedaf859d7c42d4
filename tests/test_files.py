"""atomic_write: a file is either the old one or the complete new one."""

from __future__ import annotations

import os
import stat

import pytest

from autodiff.files import atomic_write


def test_the_new_file_replaces_the_old_one_with_ordinary_permissions(tmp_path):
    path = tmp_path / "weights.bin"
    path.write_bytes(b"old")
    with atomic_write(path) as file:
        file.write(b"new contents")
    assert path.read_bytes() == b"new contents"
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask
    assert sorted(p.name for p in tmp_path.iterdir()) == ["weights.bin"]


def test_a_failure_mid_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "weights.bin"
    path.write_bytes(b"old")
    with pytest.raises(KeyboardInterrupt), atomic_write(path) as file:
        file.write(b"half of the")
        raise KeyboardInterrupt
    assert path.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["weights.bin"]


def test_text_mode(tmp_path):
    path = tmp_path / "page.html"
    with atomic_write(path, "w", encoding="utf-8") as file:
        file.write("<p>é</p>")
    assert path.read_text(encoding="utf-8") == "<p>é</p>"
