"""``python -m benchmarks --profile WORKLOAD``: where this engine spends its time.

Runs one workload of this engine alone under cProfile and prints the entries
with the most time spent in the function itself (``tottime``), then by
cumulative time.  pyinstrument (``pip install pyinstrument``) gives a call tree
of the same runs: ``pyinstrument -m benchmarks ...`` works as well.
"""

from __future__ import annotations

import cProfile
import io
import math
import pstats


def _workload(name: str, quick: bool):
    """A zero-argument callable that runs the workload once for this engine."""
    from . import bench_cnn, bench_mlp, bench_ops

    if name == "ops":
        small = bench_ops.cases((8,), 300)["autodiff"]
        large = bench_ops.cases((1000, 1000), 12)["autodiff"]
        return lambda: [small() for _ in range(50)] + [large() for _ in range(5)]
    images, labels = bench_mlp.synthetic_fashion_mnist()
    if name in ("mlp", "scaling", "lecture"):
        n_batches = 938 // 8 if quick else None
        data = bench_mlp.autodiff_batches(bench_mlp.batches(images, labels, 64, n_batches))
        model = bench_mlp.autodiff_model(bench_mlp.initial_weights())
        return lambda: bench_mlp.autodiff_epoch(*model, data)
    data = bench_mlp.autodiff_batches(
        bench_mlp.batches(images, labels, 64, math.ceil(938 / 16) if quick else None)
    )
    model = bench_cnn.autodiff_model(bench_cnn.initial_weights())
    return lambda: bench_mlp.autodiff_epoch(*model, data)


def profile(name: str, quick: bool = False, top: int = 25) -> str:
    run = _workload(name, quick)
    run()  # warm up outside the profile
    profiler = cProfile.Profile()
    profiler.enable()
    run()
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)
    print(out.getvalue())
    return out.getvalue()
