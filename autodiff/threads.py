"""How many threads the engine's matrix products use: ``set_num_threads`` / ``get_num_threads``.

The engine's arithmetic is NumPy's.  Elementwise ops, reductions and copies run
on the calling thread; matrix products (``@``, ``linear``, ``conv2d``) go to
NumPy's BLAS library (OpenBLAS in NumPy's wheels), which starts one thread per
core.  ``autodiff.set_num_threads(n)`` limits that pool at run time, as
``torch.set_num_threads(n)`` limits PyTorch's::

    import autodiff
    autodiff.set_num_threads(1)        # one core: steadier on a shared machine
    autodiff.get_num_threads()         # 1

Changing the thread count of a BLAS library that is already loaded needs the
optional ``threadpoolctl`` package (``pip install autodiff[threads]``).  Without
it, ``set_num_threads`` cannot reach the BLAS library: it warns (a
``RuntimeWarning``) and only sets ``OMP_NUM_THREADS`` / ``OPENBLAS_NUM_THREADS``
/ ``MKL_NUM_THREADS`` for processes started afterwards, and
``get_num_threads`` reports what BLAS started with (those variables when they
were set before Python started, otherwise the number of usable cores).  Setting
``OMP_NUM_THREADS=n`` before Python starts works with or without it.

The default is one thread, unless ``OMP_NUM_THREADS``, ``OPENBLAS_NUM_THREADS``
or ``MKL_NUM_THREADS`` was set before Python started (then that count is
kept).  PyTorch's default is one thread per core; this one differs on purpose.
On a machine whose cores are shared with other busy processes (a class's
JupyterHub, a loaded CI runner) a multi-threaded BLAS waits at the end of every
matrix product for its slowest thread, and its idle threads spin: on 2 cores
shared with other jobs (load average 5 to 8), an MLP epoch took 137 s at 2
threads against 1.9 s of work at one (PyTorch at 2 threads: 26 s), while on a
quiet machine the second thread gained little, the matrix products here being
small (README's performance section has the figures).  ``set_num_threads(os.cpu_count())`` gives the cores back when
the machine is yours.  The default needs ``threadpoolctl``; without it BLAS
keeps its own default, one thread per core.
"""

from __future__ import annotations

import os
import warnings

# The variables BLAS libraries read when they are loaded: OpenBLAS (NumPy's
# wheels) reads OPENBLAS_NUM_THREADS, then OMP_NUM_THREADS; MKL reads its own.
_THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OMP_NUM_THREADS")

_controller = []  # the threadpoolctl controller of the BLAS libraries, made once


def _blas():
    """threadpoolctl's controller of the loaded BLAS libraries, or None without threadpoolctl."""
    if not _controller:
        try:
            from threadpoolctl import ThreadpoolController
        except ImportError:
            return None
        import numpy  # noqa: F401  (BLAS must be loaded to be found)

        _controller.append(ThreadpoolController().select(user_api="blas"))
    return _controller[0]


def _usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        return os.cpu_count() or 1


def _threads_at_startup() -> int:
    """What BLAS chose when it loaded: the first thread variable that is set, else the cores."""
    for name in _THREAD_VARIABLES:
        value = os.environ.get(name, "").split(",")[0].strip()
        if value.isdigit() and int(value) > 0:
            return int(value)
    return _usable_cores()


# Read now, with the environment NumPy loaded BLAS under (autodiff imports NumPy
# first); set_num_threads may change these variables later, for child processes.
_AT_STARTUP = _threads_at_startup()


def _check_count(n, op):
    if isinstance(n, bool) or not isinstance(n, int):
        raise RuntimeError(f"{op} expects an int, but got {type(n).__name__}")
    if n < 1:
        raise RuntimeError(f"{op} expects a positive integer, but got {n}")


def set_num_threads(n: int) -> None:
    """Use ``n`` threads for the matrix products (NumPy's BLAS), like ``torch.set_num_threads``.

    ``n`` must be a positive int.  Without the optional ``threadpoolctl``
    package the running BLAS library cannot be changed: this warns and sets
    the thread variables for processes started later (see the module doc).
    """
    _check_count(n, "set_num_threads")
    blas = _blas()
    if blas is not None and blas.lib_controllers:
        blas.limit(limits=n)
        return
    for name in _THREAD_VARIABLES:
        os.environ[name] = str(n)
    if blas is None:
        reason = "threadpoolctl is not installed"
        fix = "pip install threadpoolctl (the autodiff[threads] extra)"
    else:
        reason = "no BLAS library was found loaded by NumPy"
        fix = "check numpy.show_config()"
    warnings.warn(
        f"set_num_threads({n}): {reason}, so NumPy's matrix products keep the "
        f"{_AT_STARTUP} thread(s) BLAS started with; {fix}, or set "
        f"OMP_NUM_THREADS={n} before Python starts (done now for child processes only)",
        RuntimeWarning,
        stacklevel=2,
    )


def get_num_threads() -> int:
    """The number of threads the matrix products use (NumPy's BLAS), like ``torch.get_num_threads``.

    Without ``threadpoolctl``: the count BLAS started with (see the module doc).
    """
    blas = _blas()
    if blas is not None and blas.lib_controllers:
        return max(lib.num_threads for lib in blas.lib_controllers)
    return _AT_STARTUP


def _apply_default() -> None:
    """One BLAS thread, unless a thread variable chose the count before Python started."""
    if any(os.environ.get(name, "").strip() for name in _THREAD_VARIABLES):
        return
    blas = _blas()
    if blas is not None and blas.lib_controllers:
        blas.limit(limits=1)


_apply_default()
