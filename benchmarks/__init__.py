"""Benchmarks: this engine against PyTorch and a hand-written NumPy floor.

Run ``python -m benchmarks`` (or ``make bench``); ``python -m benchmarks --help``
lists the workloads.  Each workload is timed for every engine in the same run,
interleaved (engine A, engine B, NumPy, engine A, ...), and the table shows the
medians of the repeats and the ratios.  Nothing here is a test: no timing is
asserted anywhere in the test suite.

Threads: every workload runs at one thread per engine and again at each
engine's default thread count (``--threads``): PyTorch through
``torch.set_num_threads``, this engine through ``autodiff.set_num_threads``
(NumPy's BLAS, via ``threadpoolctl``; without it only one setting runs, fixed
through ``OMP_NUM_THREADS`` / ``OPENBLAS_NUM_THREADS`` before NumPy loads).
"""
