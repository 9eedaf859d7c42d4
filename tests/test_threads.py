"""autodiff.set_num_threads / get_num_threads: NumPy's BLAS threads, as torch's API."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

import autodiff
from autodiff import threads


@pytest.fixture
def restore_threads():
    """Put the BLAS thread count (and the thread variables) back as they were."""
    before = autodiff.get_num_threads()
    yield
    threads._controller.clear()
    if threads._blas() is not None:
        autodiff.set_num_threads(before)


def test_set_then_get(restore_threads):
    threadpoolctl = pytest.importorskip("threadpoolctl")
    autodiff.set_num_threads(1)
    assert autodiff.get_num_threads() == 1
    blas = [info for info in threadpoolctl.threadpool_info() if info["user_api"] == "blas"]
    assert blas and all(info["num_threads"] == 1 for info in blas)
    autodiff.set_num_threads(2)
    assert autodiff.get_num_threads() == 2


def _threads_in_a_fresh_process(**env):
    clean = {k: v for k, v in os.environ.items() if k not in threads._THREAD_VARIABLES}
    code = "import autodiff; print(autodiff.get_num_threads())"
    result = subprocess.run(
        [sys.executable, "-c", code], env={**clean, **env}, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    return int(result.stdout)


def test_default_is_one_thread_unless_the_environment_chose():
    pytest.importorskip("threadpoolctl")
    assert _threads_in_a_fresh_process() == 1
    assert _threads_in_a_fresh_process(OMP_NUM_THREADS="2") == 2


@pytest.mark.parametrize("bad", [0, -1])
def test_not_positive(bad, torch):
    with pytest.raises(RuntimeError, match="expects a positive integer") as ours:
        autodiff.set_num_threads(bad)
    with pytest.raises(RuntimeError) as theirs:
        torch.set_num_threads(bad)
    assert str(theirs.value) in str(ours.value)


@pytest.mark.parametrize("bad", [2.0, "2", True, None])
def test_not_an_int(bad, torch):
    with pytest.raises(RuntimeError, match="expects an int") as ours:
        autodiff.set_num_threads(bad)
    assert type(bad).__name__ in str(ours.value)
    with pytest.raises((RuntimeError, TypeError)):
        torch.set_num_threads(bad)


def test_without_threadpoolctl_warns_and_reports_blas(monkeypatch):
    """BLAS cannot be changed then: a warning that says so, and the true count stays reported."""
    monkeypatch.setitem(sys.modules, "threadpoolctl", None)  # import fails
    monkeypatch.setattr(threads, "_controller", [])
    for name in threads._THREAD_VARIABLES:
        monkeypatch.setenv(name, "")  # so that the undo also removes what the call sets
        monkeypatch.delenv(name)
    started_with = autodiff.get_num_threads()
    assert started_with == threads._AT_STARTUP
    with pytest.warns(RuntimeWarning, match="threadpoolctl is not installed") as caught:
        autodiff.set_num_threads(started_with + 1)
    message = str(caught[0].message)
    assert f"keep the {started_with} thread(s)" in message
    assert f"OMP_NUM_THREADS={started_with + 1}" in message
    assert autodiff.get_num_threads() == started_with
    # processes started from here on get the requested count
    assert os.environ["OMP_NUM_THREADS"] == str(started_with + 1)
