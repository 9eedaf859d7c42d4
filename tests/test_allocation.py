"""autodiff.allocation: freed array memory is kept for reuse (glibc), unless the environment chose."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

glibc_only = pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
    reason="the thresholds are glibc's malloc settings",
)

# Allocates, writes and frees a 6 MiB array (above glibc's default 128 KiB mmap
# threshold) 50 times and prints the page faults of the last 40 rounds.
_FAULTS = """
import resource, numpy as np
import autodiff
from autodiff import allocation
def step():
    a = np.ones((1536, 1024), dtype=np.float32)
    b = a * 2
    del a, b
for _ in range(10):
    step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(40):
    step()
print(allocation.KEPT, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _run(**env):
    clean = {k: v for k, v in os.environ.items() if k not in ("GLIBC_TUNABLES",)}
    clean = {k: v for k, v in clean.items() if not k.startswith("MALLOC_")}
    result = subprocess.run(
        [sys.executable, "-c", _FAULTS], env={**clean, **env}, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    kept, faults = result.stdout.split()
    return kept == "True", int(faults)


@glibc_only
def test_freed_arrays_are_reused_without_page_faults():
    kept, faults = _run()
    assert kept
    # each round's two 6 MiB arrays would fault in 3,000 fresh pages if their memory
    # went back to the kernel; kept, the same memory serves every round
    assert faults < 40 * 100, faults


@glibc_only
def test_the_environment_keeps_its_own_malloc_settings():
    kept, faults = _run(MALLOC_TRIM_THRESHOLD_="131072", MALLOC_MMAP_THRESHOLD_="131072")
    assert not kept
    # glibc as configured: fresh pages every round (fewer faults where the kernel
    # maps huge pages, but far more than with the memory kept)
    _, faults_kept = _run()
    assert faults > 10 * max(faults_kept, 100), (faults, faults_kept)


def test_off_glibc_nothing_changes(monkeypatch):
    from autodiff import allocation

    monkeypatch.setattr(platform, "libc_ver", lambda: ("", ""))
    for name in allocation._MALLOC_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    assert allocation.keep_freed_memory() is False
