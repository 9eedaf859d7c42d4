"""``python -m benchmarks [WORKLOAD ...] [--quick] [--threads LIST] [--repeats R]``.

Workloads (all of them when none is named):

  ops       per-op cost, forward and backward, 8 elements and 1000x1000
  mlp       the lecture's MLP: training epoch and test pass, batch 64
  scaling   the MLP and the CNN with batches of 16 and 256 (64 is mlp / cnn)
  lecture   the lecture's code end to end (DataLoader + FashionMNIST + ToTensor)
  cnn       the small CNN's training epoch
  layers    Conv2d and MaxPool2d forward + backward (benchmarks/bench_layers.py)
  memory    peak memory growth of the MLP epoch (one subprocess per engine)
  load      the CNN and the MLP while other processes keep every core busy

Every workload runs at one thread per engine and again at each engine's
default thread count (``--threads 1,default``; ``--threads 2`` or ``1,2`` to
choose), and the summary at the end puts the two side by side.

``--profile WORKLOAD`` runs one workload of this engine alone under cProfile
and prints the top entries instead.  Examples::

    make bench                                   # everything (several minutes)
    make bench ARGS="ops mlp --quick"            # a first look in under a minute
    .venv/bin/python -m benchmarks --profile mlp --quick
"""

from __future__ import annotations

import argparse
import os
import time

WORKLOADS = ("ops", "mlp", "scaling", "lecture", "cnn", "layers", "memory", "load")


def thread_settings(text: str) -> list:
    """'1,default' -> [1, None] (None: each engine's default)."""
    settings = []
    for item in text.split(","):
        item = item.strip()
        if item == "default":
            settings.append(None)
        elif item.isdigit() and int(item) > 0:
            settings.append(int(item))
        else:
            raise argparse.ArgumentTypeError(
                f"expected positive thread counts or 'default', separated by commas, got {text!r}"
            )
    return settings


def parse(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Time this engine against PyTorch and NumPy (medians, interleaved).",
        epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("workloads", nargs="*", metavar="WORKLOAD", help=", ".join(WORKLOADS))
    parser.add_argument("--quick", action="store_true", help="fewer batches, scaled to an epoch")
    parser.add_argument(
        "--threads",
        type=thread_settings,
        default="1,default",
        help="comma-separated thread counts per engine, or 'default' for each engine's own "
        "(default: 1,default)",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=None,
        help="timed rounds per workload (default 3, after one warm-up round)",
    )
    parser.add_argument(
        "--clock",
        choices=("cpu", "wall"),
        default="cpu",
        help="cpu: the process's CPU time (default; robust on a shared machine, used "
        "only at one thread), wall: perf_counter",
    )
    parser.add_argument(
        "--profile",
        choices=("ops", "mlp", "scaling", "lecture", "cnn"),
        help="cProfile one workload instead",
    )
    parser.add_argument(
        "--keep-openblas-env",
        action="store_true",
        help="keep OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE if set (they are unset by default)",
    )
    args = parser.parse_args(argv)
    unknown = [name for name in args.workloads if name not in WORKLOADS]
    if unknown:
        parser.error(
            f"unknown workload(s) {', '.join(unknown)}; choose from {', '.join(WORKLOADS)}"
        )
    return args


def main(argv=None) -> None:
    args = parse(argv)
    if isinstance(args.threads, str):
        args.threads = thread_settings(args.threads)
    # Before NumPy is imported (below, by the workloads).
    from .common import (
        THREAD_VARIABLES,
        Table,
        can_switch_threads,
        clock_name,
        default_threads,
        machine_description,
        prepare_environment,
        use_threads,
    )

    notes = prepare_environment(args.keep_openblas_env)
    settings = args.threads
    if not can_switch_threads():
        # BLAS keeps the thread count it starts with: fix it now, run that one.
        first = settings[0]
        if first is not None:
            for name in THREAD_VARIABLES:
                os.environ[name] = str(first)
        notes.append("threadpoolctl is not installed: one thread setting only")
        settings = [first]
    defaults = default_threads()
    if args.profile:
        from .profile import profile

        use_threads(dict.fromkeys(defaults, 1), args.clock)
        profile(args.profile, quick=args.quick)
        return
    print(machine_description(defaults))
    for note in notes:
        print(note)
    workloads = args.workloads or list(WORKLOADS)
    table = Table()
    print(table.header(), flush=True)
    start = time.perf_counter()
    repeats = args.repeats or 3
    # The defaults first, while every engine still runs as a fresh process does:
    # autodiff.set_num_threads(n) gives BLAS n threads, where the default keeps it at one.
    for setting in sorted(settings, key=lambda setting: setting is not None):
        counts = dict.fromkeys(defaults, setting) if setting is not None else dict(defaults)
        use_threads(counts, args.clock)
        if setting is None:
            table.threads = (
                "default (" + ", ".join(f"{engine} {n}" for engine, n in counts.items()) + ")"
            )
        else:
            table.threads = str(setting)
        print(f"<!-- {table.threads} thread(s); clock: {clock_name()} -->", flush=True)
        for workload in workloads:
            run_workload(workload, table, repeats, args.quick, max(counts.values()))
    print()
    print(table.summary())
    print(f"\n({time.perf_counter() - start:.0f} s; medians of {repeats} interleaved rounds)")


def run_workload(workload, table, repeats, quick, threads):
    from . import bench_cnn, bench_lecture, bench_memory, bench_mlp, bench_ops

    if workload == "ops":
        bench_ops.run(table, repeats=repeats, quick=quick)
    elif workload == "mlp":
        bench_mlp.run(table, repeats=repeats, quick=quick)
    elif workload == "scaling":
        bench_mlp.run(table, repeats=repeats, quick=quick, batch_sizes=(16, 256))
        bench_cnn.run(table, repeats=repeats, quick=quick, batch_sizes=(16, 256))
    elif workload == "lecture":
        bench_lecture.run(table, repeats=repeats, quick=quick)
    elif workload == "cnn":
        bench_cnn.run(table, repeats=repeats, quick=quick)
    elif workload == "layers":
        from . import bench_layers

        bench_layers.run(table, repeats=repeats, quick=quick)
    elif workload == "memory":
        bench_memory.run(table, quick=quick, threads=threads)
    elif workload == "load":
        from . import bench_load

        bench_load.run(table, repeats=repeats, quick=quick)


if __name__ == "__main__":
    main()
