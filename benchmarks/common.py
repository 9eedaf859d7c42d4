"""Timing, thread control and table printing shared by the workloads."""

from __future__ import annotations

import gc
import os
import platform
import statistics
import time

THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")

# Some machines set these to pin OpenBLAS to a slower kernel; the benchmark
# command (only) removes both together so NumPy runs the kernel it would pick
# itself, like PyTorch's bundled BLAS does.  Tests never touch them.
OPENBLAS_OVERRIDES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


# The clock every workload reads: CPU time of this process by default (set by
# configure_threads).  On a machine shared with other jobs the wall clock also
# counts the time spent waiting for a core, which swung single-threaded epochs
# by 2x between runs here; with one thread per engine the process's CPU time is
# the work itself.  With more threads it would add the threads up, so the wall
# clock is used then.
_clock = [time.perf_counter]


def now() -> float:
    """The benchmark clock's reading, in seconds."""
    return _clock[0]()


def configure_threads(threads: int, keep_openblas_env: bool = False, clock="cpu") -> list[str]:
    """Set the thread count of every engine; call before NumPy is imported.

    Returns notes for the report (what was changed).
    """
    notes = []
    _clock[0] = time.process_time if threads == 1 and clock == "cpu" else time.perf_counter
    notes.append(
        "clock: CPU time of the process"
        if _clock[0] is time.process_time
        else "clock: wall time (perf_counter)"
    )
    for name in THREAD_VARIABLES:
        os.environ[name] = str(threads)
    if not keep_openblas_env:
        removed = [name for name in OPENBLAS_OVERRIDES if os.environ.pop(name, None) is not None]
        if removed:
            notes.append(f"unset {' and '.join(removed)} for this run")
    try:
        import threadpoolctl

        threadpoolctl.threadpool_limits(threads)
    except ImportError:
        pass
    torch = import_torch()
    if torch is not None:
        torch.set_num_threads(threads)
    return notes


def import_torch():
    """PyTorch if it is installed, else None (the workloads then skip it)."""
    try:
        import torch
    except ImportError:
        return None
    return torch


def interleaved(cases: dict, repeats: int, warmup: int = 1) -> dict:
    """Run each case in turn, ``repeats`` times round-robin; medians per metric.

    A case is a callable returning a dict ``{metric: seconds}`` (it times its
    own work, so that set-up is excluded).  The result maps each case to
    ``{metric: median}``.  Interleaving spreads the machine's noise over all
    engines instead of penalising whichever ran during a busy spell.
    """
    samples = {name: {} for name in cases}
    for round_index in range(warmup + repeats):
        for name, case in cases.items():
            gc.collect()
            result = case()
            if round_index < warmup:
                continue
            for metric, seconds in result.items():
                samples[name].setdefault(metric, []).append(seconds)
    return {
        name: {metric: statistics.median(values) for metric, values in metrics.items()}
        for name, metrics in samples.items()
    }


def format_seconds(seconds) -> str:
    if seconds is None:
        return "—"
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds * 1e6:.1f} us"


def format_ratio(ours, theirs) -> str:
    if ours is None or theirs is None or theirs == 0:
        return "—"
    return f"{ours / theirs:.2f}x"


class Table:
    """Rows of (workload, autodiff, PyTorch, NumPy, ratios, target), printed as Markdown."""

    HEADER = ("work", "autodiff", "PyTorch", "NumPy", "vs PyTorch", "vs NumPy", "target")

    def __init__(self):
        self.rows = []
        self.records = []

    def add(self, work, ours, torch=None, numpy=None, target="", unit=format_seconds):
        self.records.append({"work": work, "autodiff": ours, "torch": torch, "numpy": numpy})
        self.rows.append(
            (
                work,
                unit(ours),
                unit(torch) if torch is not None else "—",
                unit(numpy) if numpy is not None else "—",
                format_ratio(ours, torch),
                format_ratio(ours, numpy),
                target,
            )
        )
        print(self.format_row(self.rows[-1]), flush=True)

    @staticmethod
    def format_row(row) -> str:
        return "| " + " | ".join(row) + " |"

    def header(self) -> str:
        return "\n".join(
            [self.format_row(self.HEADER), self.format_row(tuple("---" for _ in self.HEADER))]
        )

    def __str__(self):
        return "\n".join([self.header()] + [self.format_row(row) for row in self.rows])


def machine_description(threads: int) -> str:
    """CPU model, core count and versions, for the report."""
    import numpy as np

    model = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    torch = import_torch()
    versions = f"Python {platform.python_version()}, NumPy {np.__version__}"
    versions += f", PyTorch {torch.__version__}" if torch is not None else ", PyTorch not installed"
    return f"{model}, {os.cpu_count()} cores, {threads} thread(s) per engine; {versions}"


def mebibytes(n_bytes) -> str:
    return f"{n_bytes / 2**20:.0f} MiB"
