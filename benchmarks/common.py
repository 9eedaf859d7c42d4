"""Timing, thread control and table printing shared by the workloads."""

from __future__ import annotations

import contextlib
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


# The clock every workload reads: CPU time of this process at one thread (set by
# use_threads).  On a machine shared with other jobs the wall clock also counts
# the time spent waiting for a core, which swung single-threaded epochs by 2x
# between runs here; with one thread per engine the process's CPU time is the
# work itself.  With more threads it would add the threads up (and count their
# spinning), so the wall clock is used then.
_clock = [time.perf_counter]


def now() -> float:
    """The benchmark clock's reading, in seconds."""
    return _clock[0]()


@contextlib.contextmanager
def using_clock(clock):
    """Within the block, ``now()`` reads ``clock`` (a function such as
    ``time.perf_counter``); the clock chosen before comes back after it, also on an error.

        with using_clock(time.perf_counter):  # the wall clock, whatever use_threads chose
            ...
    """
    if not callable(clock):
        raise TypeError(
            f"using_clock: expected a function returning seconds (such as time.perf_counter), "
            f"got {type(clock).__name__}"
        )
    before = _clock[0]
    _clock[0] = clock
    try:
        yield
    finally:
        _clock[0] = before


def prepare_environment(keep_openblas_env: bool = False) -> list[str]:
    """Call before NumPy is imported.  Returns notes for the report (what was changed)."""
    notes = []
    if not keep_openblas_env:
        removed = [name for name in OPENBLAS_OVERRIDES if os.environ.pop(name, None) is not None]
        if removed:
            notes.append(f"unset {' and '.join(removed)} for this run")
    return notes


def can_switch_threads() -> bool:
    """True when NumPy's BLAS threads can change at run time (threadpoolctl is installed)."""
    try:
        import threadpoolctl  # noqa: F401
    except ImportError:
        return False
    return True


def default_threads() -> dict:
    """Each engine's own default thread count (call before any change)."""
    import autodiff

    counts = {"autodiff": autodiff.get_num_threads()}
    torch = import_torch()
    if torch is not None:
        counts["torch"] = torch.get_num_threads()
    return counts


def use_threads(counts: dict, clock: str = "cpu") -> None:
    """Give each engine its thread count (``{"autodiff": n, "torch": m}``) and pick the clock.

    This engine's count goes through ``autodiff.set_num_threads`` (NumPy's BLAS,
    via threadpoolctl), PyTorch's through ``torch.set_num_threads``.
    """
    import autodiff

    if autodiff.get_num_threads() != counts["autodiff"]:
        autodiff.set_num_threads(counts["autodiff"])
    torch = import_torch()
    if torch is not None and "torch" in counts:
        torch.set_num_threads(counts["torch"])
    single = max(counts.values()) == 1
    _clock[0] = time.process_time if single and clock == "cpu" else time.perf_counter


def clock_name() -> str:
    if _clock[0] is time.process_time:
        return "CPU time of the process"
    return "wall time (perf_counter)"


def configure_threads(threads: int, keep_openblas_env: bool = False, clock="cpu") -> list[str]:
    """Fix every engine's thread count before NumPy is imported (for child processes).

    Sets the thread variables so that BLAS starts with ``threads`` threads even
    without threadpoolctl.  Returns notes for the report.
    """
    notes = prepare_environment(keep_openblas_env)
    for name in THREAD_VARIABLES:
        os.environ[name] = str(threads)
    use_threads({"autodiff": threads, "torch": threads}, clock)
    notes.append(f"clock: {clock_name()}")
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
    """Rows of (threads, workload, autodiff, PyTorch, NumPy, ratios, target), printed as Markdown.

    ``threads`` (a label such as "1" or "default (2)") is set before each pass
    over the workloads; ``summary()`` puts the passes side by side, one row per
    workload.
    """

    HEADER = ("threads", "work", "autodiff", "PyTorch", "NumPy", "vs PyTorch", "vs NumPy", "target")

    def __init__(self):
        self.rows = []
        self.records = []
        self.threads = "1"

    def add(self, work, ours, torch=None, numpy=None, target="", unit=format_seconds):
        self.records.append(
            {
                "threads": self.threads,
                "work": work,
                "autodiff": ours,
                "torch": torch,
                "numpy": numpy,
                "target": target,
                "unit": unit,
            }
        )
        self.rows.append(
            (
                self.threads,
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

    def summary(self) -> str:
        """One row per workload, each thread setting's times and ratios side by side."""
        settings = list(dict.fromkeys(record["threads"] for record in self.records))
        works = {}
        for record in self.records:
            works.setdefault(record["work"], {})[record["threads"]] = record
        header = ["work"]
        for setting in settings:
            label = f"{setting} thread" + ("" if setting == "1" else "s")
            header += [f"autodiff, {label}", "PyTorch", "vs PyTorch", "vs NumPy"]
        header.append("target")
        lines = [self.format_row(header), self.format_row(tuple("---" for _ in header))]
        for work, by_setting in works.items():
            row = [work]
            for setting in settings:
                record = by_setting.get(setting)
                if record is None:
                    row += ["—"] * 4
                    continue
                unit = record["unit"]
                row += [
                    unit(record["autodiff"]),
                    unit(record["torch"]) if record["torch"] is not None else "—",
                    format_ratio(record["autodiff"], record["torch"]),
                    format_ratio(record["autodiff"], record["numpy"]),
                ]
            row.append(next(iter(by_setting.values()))["target"])
            lines.append(self.format_row(row))
        return "\n".join(lines)


def machine_description(default_threads: dict) -> str:
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
    defaults = ", ".join(f"{engine} {n}" for engine, n in default_threads.items())
    return (
        f"{model}, {os.cpu_count()} cores; default threads: {defaults}; {versions}; "
        f"BLAS: {_blas_name()}"
    )


def _blas_name() -> str:
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "unknown (threadpoolctl not installed)"
    names = [
        f"{info['internal_api']} {info['version']} ({info.get('threading_layer', '?')})"
        for info in threadpool_info()
        if info["user_api"] == "blas"
    ]
    return ", ".join(names) or "none found"


def mebibytes(n_bytes) -> str:
    return f"{n_bytes / 2**20:.0f} MiB"
