"""``python -m benchmarks [WORKLOAD ...] [--quick] [--threads N] [--repeats R]``.

Workloads (all of them when none is named):

  ops       per-op cost, forward and backward, 8 elements and 1000x1000
  mlp       the lecture's MLP: training epoch and test pass, batch 64
  scaling   the MLP and the CNN with batches of 16 and 256 (64 is mlp / cnn)
  lecture   the lecture's code end to end (DataLoader + FashionMNIST + ToTensor)
  cnn       the small CNN's training epoch
  layers    Conv2d and MaxPool2d forward + backward (benchmarks/bench_layers.py)
  memory    peak memory growth of the MLP epoch (one subprocess per engine)

``--profile WORKLOAD`` runs one workload of this engine alone under cProfile
and prints the top entries instead.  Examples::

    make bench                                   # everything (several minutes)
    make bench ARGS="ops mlp --quick"            # a first look in under a minute
    .venv/bin/python -m benchmarks --profile mlp --quick
"""

from __future__ import annotations

import argparse
import time

WORKLOADS = ("ops", "mlp", "scaling", "lecture", "cnn", "layers", "memory")


def parse(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Time this engine against PyTorch and NumPy (medians, interleaved).",
        epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("workloads", nargs="*", metavar="WORKLOAD", help=", ".join(WORKLOADS))
    parser.add_argument("--quick", action="store_true", help="fewer batches, scaled to an epoch")
    parser.add_argument("--threads", type=int, default=1, help="threads per engine (default 1)")
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
        "only with --threads 1), wall: perf_counter",
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
    # Threads must be fixed before NumPy is imported (below, by the workloads).
    from .common import Table, configure_threads, machine_description

    notes = configure_threads(args.threads, args.keep_openblas_env, args.clock)
    if args.profile:
        from .profile import profile

        profile(args.profile, quick=args.quick)
        return
    from . import bench_cnn, bench_lecture, bench_memory, bench_mlp, bench_ops

    print(machine_description(args.threads))
    for note in notes:
        print(note)
    workloads = args.workloads or list(WORKLOADS)
    table = Table()
    print(table.header(), flush=True)
    start = time.perf_counter()
    repeats = args.repeats or 3
    for workload in workloads:
        if workload == "ops":
            bench_ops.run(table, repeats=repeats, quick=args.quick)
        elif workload == "mlp":
            bench_mlp.run(table, repeats=repeats, quick=args.quick)
        elif workload == "scaling":
            bench_mlp.run(table, repeats=repeats, quick=args.quick, batch_sizes=(16, 256))
            bench_cnn.run(table, repeats=repeats, quick=args.quick, batch_sizes=(16, 256))
        elif workload == "lecture":
            bench_lecture.run(table, repeats=repeats, quick=args.quick)
        elif workload == "cnn":
            bench_cnn.run(table, repeats=repeats, quick=args.quick)
        elif workload == "layers":
            from . import bench_layers

            bench_layers.run(table, repeats=repeats, quick=args.quick)
        elif workload == "memory":
            bench_memory.run(table, quick=args.quick, threads=args.threads)
    print(f"\n({time.perf_counter() - start:.0f} s; medians of {repeats} interleaved rounds)")


if __name__ == "__main__":
    main()
