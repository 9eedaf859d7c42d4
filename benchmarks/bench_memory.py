"""Peak memory of the MLP training epoch, each engine in its own subprocess.

Method (the same for both engines, since PyTorch's allocator is invisible to
``tracemalloc``): in a fresh process, load the data and build the model, then
reset the kernel's peak-RSS mark (``/proc/self/clear_refs`` with ``5``), note
the resident set size, train, and read the peak (``VmHWM``).  The figure is the
growth of the peak over the resident set before training: what the training
itself needs, without the interpreter, the libraries or the pre-loaded data.
Where the peak cannot be reset, the whole process's ``ru_maxrss`` is reported.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as clear:
            clear.write("5")
        return True
    except OSError:
        return False


def measure(engine: str, batch_size: int, n_batches: int | None, threads: int) -> dict:
    """Run in the child: train one (partial) epoch and report bytes."""
    import resource

    from .common import configure_threads

    configure_threads(threads)
    from . import bench_mlp

    images, labels = bench_mlp.synthetic_fashion_mnist()
    data = bench_mlp.batches(images, labels, batch_size, n_batches)
    del images
    state = bench_mlp.initial_weights()
    if engine == "autodiff":
        model = bench_mlp.autodiff_model(state)
        data = bench_mlp.autodiff_batches(data)
        epoch = bench_mlp.autodiff_epoch
    else:
        model = bench_mlp.torch_model(state)
        data = bench_mlp.torch_batches(data)
        epoch = bench_mlp.torch_epoch
    reset = _reset_peak()
    before = _status_kib("VmRSS")
    epoch(*model, data)
    if reset:
        peak = _status_kib("VmHWM")
        return {"growth": (peak - before) * 1024, "method": "VmHWM after reset"}
    return {
        "growth": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "method": "ru_maxrss",
    }


def run_child(engine, batch_size, n_batches, threads) -> dict:
    command = [
        sys.executable,
        "-m",
        "benchmarks.bench_memory",
        engine,
        str(batch_size),
        str(n_batches or 0),
        str(threads),
    ]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    return json.loads(output.strip().splitlines()[-1])


def run(table, quick=False, threads=1, batch_size=64):
    from .bench_mlp import N_IMAGES, have_nn
    from .common import import_torch, mebibytes

    if not have_nn():
        print("(memory: skipped, the nn package is not available yet)")
        return
    n_batches = max(1, math.ceil(N_IMAGES / batch_size) // 8) if quick else None
    ours = run_child("autodiff", batch_size, n_batches, threads)
    theirs = run_child("torch", batch_size, n_batches, threads) if import_torch() else None
    table.add(
        f"MLP epoch, peak memory growth while training ({ours['method']})",
        ours["growth"],
        theirs["growth"] if theirs else None,
        target="<= 1.5x PyTorch",
        unit=mebibytes,
    )


if __name__ == "__main__":
    engine, batch_size, n_batches, threads = sys.argv[1:5]
    result = measure(engine, int(batch_size), int(n_batches) or None, int(threads))
    print(json.dumps(result))
