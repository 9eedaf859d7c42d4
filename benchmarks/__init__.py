"""Benchmarks: this engine against PyTorch and a hand-written NumPy floor.

Run ``python -m benchmarks`` (or ``make bench``); ``python -m benchmarks --help``
lists the workloads.  Each workload is timed for every engine in the same run,
interleaved (engine A, engine B, NumPy, engine A, ...), and the table shows the
medians of the repeats and the ratios.  Nothing here is a test: no timing is
asserted anywhere in the test suite.

Threads: every engine runs with the same thread count (``--threads``, 1 by
default, the steadier reference on a shared machine): PyTorch through
``torch.set_num_threads``, NumPy's BLAS through ``OMP_NUM_THREADS`` /
``OPENBLAS_NUM_THREADS`` set before NumPy is imported (and ``threadpoolctl``
when it is installed).
"""
