"""How many threads the engine uses: ``set_num_threads`` / ``get_num_threads``, and its pool.

As in PyTorch, ``autodiff.set_num_threads(n)`` sets how many threads one
operation may use and ``autodiff.get_num_threads()`` reads it::

    import autodiff
    autodiff.set_num_threads(1)        # one core: nothing runs beside the calling thread
    autodiff.get_num_threads()         # 1

The threads are the engine's own pool: ``n - 1`` worker threads beside the
calling thread.  The large kernels (matrix products, convolution's im2col and
its fold, max pooling and its backward, ReLU and its backward, large
elementwise sums) split their first dim into one chunk per thread
(:func:`parallel_for`), and NumPy releases the GIL inside those loops, so the
chunks run on different cores.  An idle worker *sleeps* (it blocks on a
queue), and a chunk that no worker has started when the calling thread is done
with its own is taken by the calling thread: on a machine whose cores are busy
with other work an operation degrades towards its one-thread time instead of
waiting for a thread that is not running.

NumPy's BLAS (OpenBLAS in NumPy's wheels) is held at **one thread**, the pool
splitting the matrix products as it splits everything else (each chunk's
product running on the thread that took the chunk).  OpenBLAS's own threads
*spin* while they wait for the next product and wait for their slowest member
at the end of each: on 2 cores shared with other jobs (load average 5 to 8)
an MLP epoch took 137 s at 2 BLAS threads against 1.9 s of work at one; on a
quiet machine, beside the pool, they took the cores its workers needed (the
CNN epoch ran slower with both than with the pool alone); and the count they
run with changes OpenBLAS's kernels, so results would depend on it (they do
not here: every chunk is computed as on one thread, whatever the count, and
a 2-D product is one call on one thread only where that gives its halves'
bits, see ``autodiff/ops/linalg.py``).
Holding BLAS at one thread needs the optional ``threadpoolctl`` package
(``pip install autodiff[threads]``).

The default is one thread per usable core, as in PyTorch, or the count in
``OMP_NUM_THREADS``, ``OPENBLAS_NUM_THREADS`` or ``MKL_NUM_THREADS`` when one
was set before Python started.  Without ``threadpoolctl`` BLAS keeps the
threads it started with (one per core, or those variables' count), so the
pool stays out of its way: the default is then one thread, BLAS's own threads
doing the matrix products, and ``set_num_threads(n)`` sets the pool and warns
(a ``RuntimeWarning``) that BLAS keeps its count.
"""

from __future__ import annotations

import contextvars
import itertools
import os
import queue
import threading
import time
import warnings

import numpy as np

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


def _count_from_environment():
    """The first thread variable that is set to a positive count, else None."""
    for name in _THREAD_VARIABLES:
        value = os.environ.get(name, "").split(",")[0].strip()
        if value.isdigit() and int(value) > 0:
            return int(value)
    return None


# Read now, with the environment NumPy loaded BLAS under (autodiff imports NumPy
# first); set_num_threads may change these variables later, for child processes.
_FROM_ENVIRONMENT = _count_from_environment()
# What BLAS started with: the variables' count, else one thread per core.
_AT_STARTUP = _FROM_ENVIRONMENT or _usable_cores()


def _blas_settable() -> bool:
    blas = _blas()
    return blas is not None and bool(blas.lib_controllers)


_BLAS_SETTABLE = _blas_settable()
if _BLAS_SETTABLE:
    _blas().limit(limits=1)

# The pool's size (calling thread included), and BLAS's threads.
_counts = {
    "engine": (_FROM_ENVIRONMENT or _usable_cores()) if _BLAS_SETTABLE else 1,
    "blas": 1 if _BLAS_SETTABLE else _AT_STARTUP,
}


def _check_count(n, op):
    if isinstance(n, bool) or not isinstance(n, int):
        raise RuntimeError(f"{op} expects an int, but got {type(n).__name__}")
    if n < 1:
        raise RuntimeError(f"{op} expects a positive integer, but got {n}")


def set_num_threads(n: int) -> None:
    """Use ``n`` threads per operation, like ``torch.set_num_threads``: the calling
    thread and ``n - 1`` workers of the engine's pool, NumPy's BLAS held at one
    thread (see the module doc).

    ``n`` must be a positive int.  Without the optional ``threadpoolctl``
    package NumPy's BLAS keeps the threads it started with: this warns.
    """
    _check_count(n, "set_num_threads")
    _counts["engine"] = n
    if _BLAS_SETTABLE:
        _blas().limit(limits=1)  # again: in case something else changed it since
        return
    for name in _THREAD_VARIABLES:
        os.environ[name] = str(n)
    if _blas() is None:
        reason = "threadpoolctl is not installed"
        fix = "pip install threadpoolctl (the autodiff[threads] extra)"
    else:
        reason = "no BLAS library was found loaded by NumPy"
        fix = "check numpy.show_config()"
    warnings.warn(
        f"set_num_threads({n}): {reason}, so NumPy's matrix products keep the "
        f"{_counts['blas']} thread(s) BLAS started with, which spin beside the "
        f"engine's {n}; {fix}, or set OMP_NUM_THREADS={n} before Python starts "
        "(done now for child processes only)",
        RuntimeWarning,
        stacklevel=2,
    )


def get_num_threads() -> int:
    """The number of threads an operation may use, like ``torch.get_num_threads``."""
    return _counts["engine"]


def blas_threads() -> int:
    """The threads NumPy's BLAS runs a matrix product on: 1, unless it could not be set."""
    return _counts["blas"]


# -- the pool -----------------------------------------------------------------

# Below this many elements (or element-operations) an operation runs on the
# calling thread; a chunk of several NumPy calls needs this much per call (up to
# four, see _split_cost).  Handing a chunk to a worker costs about 30 us here (median;
# 130 us at the 90th percentile, measured in the MLP's training loop): the
# worker needs the GIL to start, which the calling thread gives up only when it
# enters NumPy's next loop.  A ReLU over 131,072 float32 takes about 40 us.
MIN_PARALLEL_WORK = 1 << 17
US_PER_WORK = 40 / MIN_PARALLEL_WORK  # so, the time of one element-operation

# The calling thread's head start (see first_piece): how much later than the
# caller a worker starts its piece, plus as much again, a margin that lets the
# worker end first (the caller then finds its result waiting instead of
# sleeping until woken, which took 27 us here).  It is measured: the median of
# twice that delay, tracked from HANDOFF_US (_note_head_start).  On 2 cores of a
# VM the caller started a 512x784 @ 784x64 product's half 13 us after
# parallel_for began, the worker 29 us, and the caller returned 27 us after the
# worker ended; a fixed head start of 35 us was the fastest of 0, 20, 35 and
# 50.  Over an MLP training run the delay's median was 16 us (90th percentile
# 26 us, 99th 44 us), so the tracked head start stays near 33 us here.
HANDOFF_US = 35.0
_head_start = {"us": HANDOFF_US}
# The tracker's step: the head start grows by 2% after a job whose delay was
# longer, and shrinks by as much after one whose delay was shorter, so that it
# settles where half the delays are each side.  A mean would follow the rare
# long delays (a worker descheduled, or not started before the caller was done
# with everything): over the same run, a running mean reached 250 us.
_HEAD_START_STEP = 1.02
_HEAD_START_BOUNDS = (1.0, 2000.0)


class _Job:
    """One ``parallel_for`` call: chunks claimed one at a time by whoever is free."""

    __slots__ = ("work", "bounds", "context", "next", "lock", "finished", "worker_started")

    def __init__(self, work, bounds):
        self.work = work
        self.bounds = bounds
        # The caller's context variables, NumPy's floating-point error state among
        # them (the engine's ops run with errors ignored): a worker runs its chunks
        # in a copy, so that they compute and warn as they would on the caller.
        self.context = contextvars.copy_context()
        self.next = 1  # the first piece is the calling thread's (see first_piece)
        self.lock = threading.Lock()
        self.finished = queue.SimpleQueue()  # one entry per chunk a worker ran
        self.worker_started = None  # perf_counter() when a worker began its first chunk

    def claim(self):
        with self.lock:
            index = self.next
            self.next += 1
        return self.bounds[index] if index < len(self.bounds) else None

    def run_as_worker(self):
        context = self.context.copy()  # a context is entered by one thread at a time
        while (chunk := self.claim()) is not None:
            if self.worker_started is None:
                self.worker_started = time.perf_counter()
            try:
                context.run(self.work, *chunk)
            except BaseException as error:  # handed to the caller, which raises it
                self.finished.put(error)
            else:
                self.finished.put(None)


class _Pool:
    """Worker threads that sleep on a queue until a job is posted (they never spin)."""

    def __init__(self):
        self.jobs = queue.SimpleQueue()
        self.workers = 0
        self.lock = threading.Lock()

    def start(self, count):
        with self.lock:
            while self.workers < count:
                threading.Thread(
                    target=self._serve, name=f"autodiff-worker-{self.workers}", daemon=True
                ).start()
                self.workers += 1

    def _serve(self):
        _inside.active = True  # work a chunk starts runs on this thread, not in the pool
        while True:
            self.jobs.get().run_as_worker()


_pool = _Pool()
_inside = threading.local()  # .active: this thread is running a chunk


def _new_pool_after_fork():
    # a forked child (a DataLoader worker) has none of the parent's threads
    global _pool
    _pool = _Pool()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_new_pool_after_fork)


def parallel_for(total: int, work, cost_per_item: int = 1, calls_per_chunk: int = 1) -> None:
    """Call ``work(start, stop)`` on ranges that cover ``range(total)``, on the engine's threads.

    The ranges are consecutive and disjoint, so ``work`` may write
    ``out[start:stop]`` of a shared output.  ``cost_per_item`` (elements per
    item, say) keeps small operations on the calling thread (below
    ``MIN_PARALLEL_WORK`` per piece); ``calls_per_chunk``, the NumPy calls one
    chunk makes, raises that bound for chunks of several calls (see
    ``_split_cost``).  Runs ``work(0, total)`` directly with one thread, or
    when called from inside another chunk.  An exception from any chunk is
    raised here, after every chunk has ended.

    Example: ``parallel_for(len(x), lambda i, j: np.maximum(x[i:j], 0, out=y[i:j]), x[0].size)``.
    """
    threads = _counts["engine"]
    pieces = _pieces(total, cost_per_item, calls_per_chunk)
    if pieces < 2:
        work(0, total)
        return
    first = first_piece(total, pieces, total * cost_per_item)
    rest = total - first
    edges = [0] + [first + rest * i // (pieces - 1) for i in range(pieces)]
    job = _Job(work, list(itertools.pairwise(edges)))
    pool = _pool
    pool.start(threads - 1)
    for _ in range(pieces - 1):  # a worker for each piece beyond the caller's
        pool.jobs.put(job)
    ran_here = 1
    error = None
    _inside.active = True
    started = time.perf_counter()
    try:
        chunk = job.bounds[0]  # its own, the larger piece; then any no worker has started
        while chunk is not None:
            try:
                work(*chunk)
            except BaseException as raised:
                error = error or raised
            chunk = job.claim()
            ran_here += chunk is not None
    finally:
        _inside.active = False
    done_here = time.perf_counter()
    for _ in range(pieces - ran_here):  # wait for the chunks the workers took
        raised = job.finished.get()
        error = error or raised
    _note_head_start(started, job.worker_started, done_here)
    if error is not None:
        raise error


def _pieces(total: int, cost_per_item: int, calls_per_chunk: int) -> int:
    """How many pieces parallel_for cuts ``range(total)`` into (1: none, it runs here).

    One piece per thread: more, smaller pieces would balance a loaded machine
    better, but each costs a hand-off and its NumPy calls' GIL changes (with 4
    pieces per 2 threads the window maximum took 0.45 ms against 0.36 ms, and
    the CNN step ran no faster with 2 or 3 per thread).  A worker that has not
    started when the caller is done with its own piece loses its piece to the caller.
    """
    threads = _counts["engine"]
    if threads == 1 or running_a_chunk():
        return 1
    return max(1, min(total, threads, total * cost_per_item // _split_cost(calls_per_chunk)))


def splits(total: int, cost_per_item: int = 1, calls_per_chunk: int = 1) -> bool:
    """Whether ``parallel_for`` with these arguments would run on more than one thread:
    for callers whose split needs set-up worth skipping when it will not happen."""
    return _pieces(total, cost_per_item, calls_per_chunk) > 1


# The most calls of a chunk that raise the work a piece needs (see _split_cost)
_MOST_CALLS = 4


def _split_cost(calls_per_chunk: int) -> int:
    """The work each piece needs, for chunks of ``calls_per_chunk`` NumPy calls.

    Between two calls a thread holds the GIL for the Python in between, and the
    other thread, done with a call of its own, waits for it: on a machine whose
    idle cores sleep (a VM) that wait is a wake-up, about 50 us here, not the
    microsecond the Python takes.  A chunk of one long call (a matrix product's
    half) gained from a split from about 120 us of work (one thread) up; chunks
    of several calls lost below about 100 us per call: on two threads against
    one, ReLU's backward (3 calls) took 134 against 75 us for 16x16x28x28 and
    167 against 146 us for 64x32x14x14, max pooling's forward (12 calls) 307
    against 253 us for 16x16x28x28 (in the small CNN's training step, medians).
    So each call up to four asks for ``MIN_PARALLEL_WORK`` per piece again.
    """
    return MIN_PARALLEL_WORK * min(max(calls_per_chunk, 1), _MOST_CALLS)


def running_a_chunk() -> bool:
    """True on a thread that is running a chunk of ``parallel_for`` (a worker, or the caller
    inside its own piece): a ``parallel_for`` called there runs whole on that thread."""
    return getattr(_inside, "active", False)


def _note_head_start(started, worker_started, done_here) -> None:
    """Move the head start towards twice this job's delay between the calling thread and the
    first worker starting their pieces (when no worker started one before the caller was
    done with every piece, the delay was at least the caller's whole time)."""
    delay = (worker_started if worker_started is not None else done_here) - started
    low, high = _HEAD_START_BOUNDS
    now = _head_start["us"]
    moved = now * _HEAD_START_STEP if 2e6 * delay > now else now / _HEAD_START_STEP
    _head_start["us"] = min(max(moved, low), high)


def first_piece(total: int, pieces: int, work: int) -> int:
    """How many of ``total`` items the calling thread takes: more than its share.

    A worker starts some time after the calling thread (16 us here), so pieces
    of equal size end that much apart, the caller waiting for the last.  The
    caller's piece is larger by what it does in its head start, twice that
    delay as measured (the median over the latest jobs, ``_head_start``), so
    that the workers end a little before it (``work``: the job's
    element-operations, ``US_PER_WORK`` each)::

        caller = w + head start,   caller + (pieces - 1) w = total
        caller = total / pieces + head start (pieces - 1) / pieces

    A ReLU over 64x16x28x28 float32 took 127 against 152 us on 2 threads;
    the MLP's training step 2.21 against 2.37 ms (its products, which split
    in ``autodiff/ops/linalg.py``'s own way, count the most).  Each worker
    keeps at least one item.
    """
    ahead = total * _head_start["us"] / (work * US_PER_WORK)  # items done in the head start
    share = total / pieces + ahead * (pieces - 1) / pieces
    return min(total - (pieces - 1), max(-(-total // pieces), round(share)))


def parallel_rows(function, operands, out, cost_per_row: int, split=None) -> None:
    """``function(*operands, out=out)`` computed a block of ``out``'s first dim at a time.

    An operand is cut into the same rows when it spans that dim (as many dims
    as ``out`` and the same first size); the others (scalars, a bias of shape
    (1, C, 1, 1), a broadcast matrix) go whole to every block.  ``split``, one
    flag per operand, overrides that rule (a 2-D matrix product cuts only its
    left operand, whatever the right one's shape).
    """
    if split is None:
        split = [
            np.ndim(operand) == out.ndim and np.shape(operand)[0] == out.shape[0]
            for operand in operands
        ]

    def rows(start, stop):
        parts = [o[start:stop] if cut else o for o, cut in zip(operands, split, strict=True)]
        function(*parts, out=out[start:stop])

    parallel_for(out.shape[0], rows, cost_per_row)
