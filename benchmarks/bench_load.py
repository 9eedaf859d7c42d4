"""Training on a machine whose cores are busy with other work (a class's JupyterHub).

Starts ``BUSY_PER_CORE`` processes per core that spin in a Python loop, then
times the small CNN (1/16 epoch) and the MLP (1/8 epoch) for both engines,
interleaved, on the wall clock (what a student waits for), and the same runs
on the quiet machine just before.  Each row gives the loaded times; the
slow-down of each engine (loaded / quiet) is printed below the rows.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import time

from . import bench_cnn, bench_mlp
from .common import import_torch, interleaved, using_clock

BUSY_PER_CORE = 2
_SPIN = "while True: pass"


def _busy_processes(count):
    return [
        subprocess.Popen([sys.executable, "-c", _SPIN], stdin=subprocess.DEVNULL)
        for _ in range(count)
    ]


def _cases(module, data_fraction, images, labels):
    full = math.ceil(bench_mlp.N_IMAGES / 64)
    data = bench_mlp.batches(images, labels, 64, max(1, full // data_fraction))
    state = module.initial_weights()
    ours = module.autodiff_model(state)
    a_data = bench_mlp.autodiff_batches(data)
    cases = {"autodiff": lambda: {"train": bench_mlp.autodiff_epoch(*ours, a_data)}}
    if import_torch() is not None:
        theirs = module.torch_model(state)
        t_data = bench_mlp.torch_batches(data)
        cases["torch"] = lambda: {"train": bench_mlp.torch_epoch(*theirs, t_data)}
    return cases, full / len(data)


def run(table, repeats=3, quick=False):
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    busy = BUSY_PER_CORE * cores
    images, labels = bench_mlp.synthetic_fashion_mnist()
    workloads = [("small CNN", bench_cnn, 16), ("MLP", bench_mlp, 8)]
    with using_clock(time.perf_counter):  # waiting for a core is the point here
        for name, module, fraction in workloads:
            cases, scale = _cases(module, fraction, images, labels)
            quiet = interleaved(cases, repeats)
            spinners = _busy_processes(busy)
            try:
                time.sleep(0.5)  # let the spinners settle on the cores
                loaded = interleaved(cases, repeats)
            finally:
                for process in spinners:
                    process.kill()
                for process in spinners:
                    process.wait()
            ours, theirs = loaded["autodiff"]["train"], loaded.get("torch", {}).get("train")
            table.add(
                f"{name} training epoch, batch 64, {busy} busy processes on {cores} cores "
                f"(wall clock, scaled from 1/{fraction} epoch)",
                ours * scale,
                theirs * scale if theirs is not None else None,
                target="degrades no more than PyTorch",
            )
            slowdowns = ", ".join(
                f"{engine} {loaded[engine]['train'] / quiet[engine]['train']:.1f}x"
                for engine in loaded
            )
            print(f"<!-- {name}: loaded / quiet: {slowdowns} -->", flush=True)
