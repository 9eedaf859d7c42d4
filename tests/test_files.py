"""atomic_write: a file is either the old one or the complete new one."""

from __future__ import annotations

import errno
import os
import signal
import stat
import subprocess
import sys
import time

import pytest
from _helpers import private_file_behind_a_symlink

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


# -- what the next write, a signal and the file system see -----------------------------------
def temporaries(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".part"))


def test_a_stale_temporary_of_a_dead_writer_is_removed_by_the_next_write(tmp_path):
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    pid = int(dead.stdout)
    stale = tmp_path / f".weights.bin.{pid}-abcdefgh.part"
    stale.write_bytes(b"left by a killed process")
    legacy = tmp_path / ".weights.bin.9qfqxxnr.part"  # the naming before pids were added
    legacy.write_bytes(b"old")
    os.utime(legacy, (time.time() - 7200, time.time() - 7200))
    live = tmp_path / f".weights.bin.{os.getpid()}-zzzzzzzz.part"  # a writer still at work
    live.write_bytes(b"in progress")
    other = tmp_path / f".other.bin.{pid}-abcdefgh.part"  # another target's: not ours
    other.write_bytes(b"x")
    with atomic_write(tmp_path / "weights.bin") as file:
        file.write(b"new")
    assert temporaries(tmp_path) == sorted([live.name, other.name])


def test_writes_go_through_a_symlink_and_keep_the_files_mode(tmp_path):
    real, link = private_file_behind_a_symlink(tmp_path)
    with atomic_write(link) as file:
        file.write(b"new")
    assert link.is_symlink() and real.read_bytes() == b"new"
    assert stat.S_IMODE(real.stat().st_mode) == 0o600
    assert temporaries(real.parent) == [] and temporaries(tmp_path) == []


def test_errors_name_the_users_path_not_the_temporary(tmp_path):
    with pytest.raises(FileNotFoundError) as info, atomic_write(tmp_path / "no" / "m.pth"):
        pass
    assert info.value.filename == str(tmp_path / "no" / "m.pth")

    def full_disk(*args):
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OSError, match="No space left") as info, atomic_write(tmp_path / "m.pth"):
        full_disk()
    assert info.value.filename == str(tmp_path / "m.pth") and temporaries(tmp_path) == []


CHILD = """
import sys, numpy as np, autodiff
weights = {"w": autodiff.tensor(np.full((int(sys.argv[2]),), float(sys.argv[3]), np.float32))}
while True:
    autodiff.save(weights, sys.argv[1])
"""


def kill_mid_save(tmp_path, signum, value=1.0):
    target = tmp_path / "model.pth"
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(target), str(8_000_000), str(value)],
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # a complete file, then a save under way
            if target.exists() and temporaries(tmp_path):
                break
            time.sleep(0.001)
        else:
            pytest.fail("the child never started a second save")
        child.send_signal(signum)
        status = child.wait(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    return target, status


def test_sigkill_mid_save_keeps_the_old_file_and_the_next_save_cleans_up(tmp_path):
    import autodiff

    target, status = kill_mid_save(tmp_path, signal.SIGKILL)
    assert status == -signal.SIGKILL
    assert autodiff.load(target)["w"].shape == (8_000_000,)  # the previous save, whole
    assert len(temporaries(tmp_path)) == 1  # what the killed writer left
    autodiff.save({"w": autodiff.zeros(2)}, target)
    assert temporaries(tmp_path) == []


def test_sigterm_mid_save_cleans_up_like_ctrl_c(tmp_path):
    import autodiff

    target, status = kill_mid_save(tmp_path, signal.SIGTERM)
    assert status == 128 + signal.SIGTERM
    assert temporaries(tmp_path) == []
    assert autodiff.load(target)["w"].shape == (8_000_000,)


def test_a_user_sigterm_handler_is_left_alone(tmp_path):
    calls = []
    previous = signal.signal(signal.SIGTERM, lambda *args: calls.append(args))
    try:
        with atomic_write(tmp_path / "x") as file:
            os.kill(os.getpid(), signal.SIGTERM)
            file.write(b"done")
        assert calls and (tmp_path / "x").read_bytes() == b"done"
        assert signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
    finally:
        signal.signal(signal.SIGTERM, previous)


LIMITED = """
import resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))
if sys.argv[1] == "save":
    import numpy as np, autodiff
    try:
        autodiff.save({"w": autodiff.tensor(np.ones(1 << 20, np.float32))}, sys.argv[2])
    except OSError as error:
        print(type(error).__name__, error.errno, error.filename, error.strerror, sep="|")
else:
    from autodiff_cli import main
    sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX resource limits")
def test_a_full_disk_names_the_users_path_and_keeps_the_old_file(tmp_path):
    """A real write failure: the file-size limit makes the 4 MiB save fail half way."""
    target = tmp_path / "model.pth"
    target.write_bytes(b"old")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    result = subprocess.run(
        [sys.executable, "-c", LIMITED, "save", str(target)],
        capture_output=True, text=True, env=env, timeout=120, check=True,
    )  # fmt: skip
    _, number, filename, _ = result.stdout.strip().split("|")
    assert int(number) == errno.EFBIG and filename == str(target)
    assert target.read_bytes() == b"old" and temporaries(tmp_path) == []
    # the command: one line naming the path, exit 1, the old model kept
    result = subprocess.run(
        [sys.executable, "-c", LIMITED, "train", "--dataset", "digits", "--epochs", "0",
         "--save", str(target), "--no-progress"],
        capture_output=True, text=True, env=env, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"autodiff train: error: cannot save the model to {target}: File too large"
    )
    assert target.read_bytes() == b"old" and temporaries(tmp_path) == []
    result = subprocess.run(
        [sys.executable, "-c", LIMITED, "train", "--dataset", "digits", "--epochs", "0",
         "--save", str(tmp_path / "new" / "model.pth"), "--no-progress"],
        capture_output=True, text=True, env=env, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 1 and "File too large" in result.stderr
    assert not (tmp_path / "new").exists()  # the folder made for the save is gone again


def test_an_interruption_while_zipfile_opens_a_member_is_what_save_raises(tmp_path, monkeypatch):
    """Ctrl-C or SIGTERM can land inside ``ZipFile.open``: zipfile then believes a member
    is still being written, and its close() raised a ValueError in place of the
    interruption (CI saw the SIGTERM test exit with status 1 instead of 143)."""
    import zipfile

    import autodiff

    target = tmp_path / "model.pth"
    autodiff.save({"w": autodiff.ones(3)}, target)

    class Interrupted(zipfile._ZipWriteFile):  # the signal's moment, made certain
        def __init__(self, *args, **kwargs):
            raise KeyboardInterrupt

    monkeypatch.setattr(zipfile, "_ZipWriteFile", Interrupted)
    unraisable = []
    monkeypatch.setattr(sys, "unraisablehook", unraisable.append)
    with pytest.raises(KeyboardInterrupt):
        autodiff.save({"w": autodiff.zeros(2)}, target)
    import gc

    gc.collect()  # a ZipFile left half-open complains when it is collected
    assert unraisable == []
    monkeypatch.undo()
    assert autodiff.load(target)["w"].shape == (3,)  # the old file, whole
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pth"]


def test_an_interrupt_just_after_the_temporary_is_created_leaves_no_file(tmp_path, monkeypatch):
    """The CLI's SIGTERM handler (and Ctrl-C) raise between any two bytecodes, also in
    the instant after the temporary file exists and before its name was returned (a
    flaky download test caught one such SIGTERM): the name is known first, so the
    file is removed."""
    import autodiff.files

    target = tmp_path / "weights.npz"
    target.write_bytes(b"old")
    real_open = os.open

    def open_then_interrupt(path, *args, **kwargs):
        real_open(path, *args, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(autodiff.files.os, "open", open_then_interrupt)
    with pytest.raises(KeyboardInterrupt), atomic_write(target) as file:
        file.write(b"new")
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["weights.npz"]
    assert target.read_bytes() == b"old"
