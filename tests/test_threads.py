"""autodiff.set_num_threads / get_num_threads (torch's API), the engine's pool and BLAS's threads."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import warnings

import numpy as np
import pytest

import autodiff
from autodiff import threads
from autodiff.ops import linalg


def _blas_counts(threadpoolctl):
    return [
        info["num_threads"]
        for info in threadpoolctl.threadpool_info()
        if info["user_api"] == "blas"
    ]


def test_set_then_get(restore_threads):
    threadpoolctl = pytest.importorskip("threadpoolctl")
    autodiff.set_num_threads(1)
    assert autodiff.get_num_threads() == 1
    autodiff.set_num_threads(3)
    assert autodiff.get_num_threads() == 3
    # BLAS stays at one thread: the pool splits the matrix products itself
    assert _blas_counts(threadpoolctl) and set(_blas_counts(threadpoolctl)) == {1}


def _threads_in_a_fresh_process(**env):
    """(get_num_threads(), BLAS's threads) in a new Python process with ``env``."""
    clean = {k: v for k, v in os.environ.items() if k not in threads._THREAD_VARIABLES}
    code = (
        "import autodiff, threadpoolctl; print(autodiff.get_num_threads(), "
        "max(i['num_threads'] for i in threadpoolctl.threadpool_info() if i['user_api'] == 'blas'))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], env={**clean, **env}, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    engine, blas = result.stdout.split()
    return int(engine), int(blas)


def test_default_is_one_per_core_unless_the_environment_chose_and_blas_has_one():
    pytest.importorskip("threadpoolctl")
    assert _threads_in_a_fresh_process() == (threads._usable_cores(), 1)
    assert _threads_in_a_fresh_process(OMP_NUM_THREADS="3") == (3, 1)


@pytest.mark.parametrize("bad", [0, -1])
def test_not_positive(bad, torch):
    with pytest.raises(RuntimeError, match="expects a positive integer") as ours:
        autodiff.set_num_threads(bad)
    with pytest.raises(RuntimeError) as theirs:
        torch.set_num_threads(bad)
    assert str(theirs.value) in str(ours.value)


@pytest.mark.parametrize("bad", [2.0, "2", True, None])
def test_not_an_int(bad, torch):
    with pytest.raises(RuntimeError, match="expects an int") as ours:
        autodiff.set_num_threads(bad)
    assert type(bad).__name__ in str(ours.value)
    with pytest.raises((RuntimeError, TypeError)):
        torch.set_num_threads(bad)


def test_without_threadpoolctl_sets_the_pool_and_warns_that_blas_keeps_its_count(
    monkeypatch, restore_threads
):
    """BLAS cannot be changed then: the pool is set, and a warning says what BLAS keeps."""
    monkeypatch.setitem(sys.modules, "threadpoolctl", None)  # import fails
    monkeypatch.setattr(threads, "_controller", [])
    monkeypatch.setattr(threads, "_BLAS_SETTABLE", False)
    monkeypatch.setitem(threads._counts, "blas", threads._AT_STARTUP)
    for name in threads._THREAD_VARIABLES:
        monkeypatch.setenv(name, "")  # so that the undo also removes what the call sets
        monkeypatch.delenv(name)
    started_with = threads._AT_STARTUP
    with pytest.warns(RuntimeWarning, match="threadpoolctl is not installed") as caught:
        autodiff.set_num_threads(started_with + 1)
    message = str(caught[0].message)
    assert f"keep the {started_with} thread(s)" in message
    assert f"OMP_NUM_THREADS={started_with + 1}" in message
    assert autodiff.get_num_threads() == started_with + 1  # the pool's count
    assert threads.blas_threads() == started_with
    # processes started from here on get the requested count
    assert os.environ["OMP_NUM_THREADS"] == str(started_with + 1)


def test_without_threadpoolctl_the_default_is_one_thread():
    """BLAS keeps its own threads then, and the pool stays out of their way."""
    code = (
        "import sys; sys.modules['threadpoolctl'] = None; import autodiff; "
        "from autodiff import threads; print(autodiff.get_num_threads(), threads.blas_threads())"
    )
    clean = {k: v for k, v in os.environ.items() if k not in threads._THREAD_VARIABLES}
    result = subprocess.run([sys.executable, "-c", code], env=clean, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["1", str(threads._usable_cores())]


# -- the pool ---------------------------------------------------------------------


@pytest.mark.parametrize("count", [1, 2, 3, 4])
@pytest.mark.parametrize("total", [0, 1, 2, 5, 64, 1000])
def test_parallel_for_covers_the_range_once_in_disjoint_chunks(count, total, restore_threads):
    threads._counts["engine"] = count
    seen = []
    threads.parallel_for(total, lambda start, stop: seen.append((start, stop)), 1 << 20)
    covered = sorted(i for start, stop in seen for i in range(start, stop))
    assert covered == list(range(total))
    assert len(seen) == (max(1, min(count, total)) if total else 1)


def test_parallel_for_runs_chunks_on_worker_threads(restore_threads):
    threads._counts["engine"] = 2
    names = set()
    barrier = threading.Barrier(2, timeout=10)

    def work(start, stop):  # both chunks must be running at once to pass the barrier
        names.add(threading.current_thread().name)
        barrier.wait()

    threads.parallel_for(2, work, 1 << 20)
    assert len(names) == 2


@pytest.mark.parametrize("count", [2, 3])
def test_the_calling_thread_does_the_first_and_largest_piece(count, restore_threads):
    """It starts first (a worker about HANDOFF_US later), so it gets more to do."""
    threads._counts["engine"] = count
    pieces = {}
    caller = threading.current_thread()

    def work(start, stop):
        pieces[start] = (stop - start, threading.current_thread() is caller)
        time.sleep(0.01)  # every thread gets its own piece

    work_of_job = 640 * threads.MIN_PARALLEL_WORK // 64  # about 400 us of work
    expected = threads.first_piece(640, count, work_of_job)
    threads.parallel_for(640, work, threads.MIN_PARALLEL_WORK // 64)
    sizes = [size for _, (size, _) in sorted(pieces.items())]
    assert pieces[0][1] and sum(sizes) == 640 and len(sizes) == count
    assert sizes[0] == expected
    assert sizes[0] > max(sizes[1:]) and max(sizes[1:]) - min(sizes[1:]) <= 1


@pytest.fixture
def restore_head_start():
    before = dict(threads._head_start)
    yield threads._head_start
    threads._head_start.update(before)


def test_the_head_start_tracks_the_median_of_twice_the_workers_delay(restore_head_start):
    """Each job moves it 2% towards its own twice-delay: it settles at their median,
    whatever a rare long delay was."""
    restore_head_start["us"] = 35.0
    threads._note_head_start(1.0, 1.0 + 20e-6, 1.001)  # the worker began 20 us after the caller
    assert restore_head_start["us"] == pytest.approx(35.0 * 1.02)
    threads._note_head_start(1.0, 1.0 + 10e-6, 1.001)
    assert restore_head_start["us"] == pytest.approx(35.0)
    # no worker began before the caller was done (a busy machine): at least its whole time
    threads._note_head_start(1.0, None, 1.0005)
    assert restore_head_start["us"] == pytest.approx(35.0 * 1.02)
    rng = np.random.default_rng(0)
    delays = rng.lognormal(np.log(16e-6), 0.4, 3000)  # like the MLP's: median 16 us, a long tail
    delays[::100] = 0.5  # and a worker descheduled now and then
    for delay in delays:
        threads._note_head_start(1.0, 1.0 + delay, 1.001)
    assert 28.0 < restore_head_start["us"] < 38.0  # 2 x 16 us, give or take the last steps
    for _ in range(1000):  # bounded both ways
        threads._note_head_start(1.0, None, 3.0)
    assert restore_head_start["us"] == threads._HEAD_START_BOUNDS[1]
    for _ in range(1000):
        threads._note_head_start(1.0, 1.0, 1.0)
    assert restore_head_start["us"] == threads._HEAD_START_BOUNDS[0]
    # and a larger head start gives the caller more of the same job
    restore_head_start["us"] = 35.0
    small = threads.first_piece(640, 2, 640 * 2048)
    restore_head_start["us"] = 200.0
    assert threads.first_piece(640, 2, 640 * 2048) > small


def test_a_worker_notes_when_it_began(restore_threads, restore_head_start):
    threads._counts["engine"] = 2
    restore_head_start["us"] = 35.0
    release = threading.Event()
    began = []
    real = threads._note_head_start

    def note(started, worker_started, done_here):
        began.append(worker_started is not None and started < worker_started < done_here)
        real(started, worker_started, done_here)

    def work(start, stop):
        if start:  # the worker's piece: the caller waits for it, so the worker began
            release.set()
        else:
            release.wait(10)

    monkey = pytest.MonkeyPatch()
    monkey.setattr(threads, "_note_head_start", note)
    try:
        threads.parallel_for(2, work, 1 << 20)
    finally:
        monkey.undo()
    assert began == [True]


def test_small_work_stays_on_the_calling_thread(restore_threads):
    threads._counts["engine"] = 4
    calls = []
    threads.parallel_for(64, lambda start, stop: calls.append((start, stop)), 1)
    assert calls == [(0, 64)]


@pytest.mark.parametrize("calls", [1, 2, 3, 4, 9])
def test_chunks_of_several_calls_need_that_much_more_work_per_piece(calls, restore_threads):
    """Between two NumPy calls a chunk holds the GIL, which the other thread may wait for:
    each call (up to four) asks for MIN_PARALLEL_WORK per piece again."""
    threads._counts["engine"] = 2
    bound = min(calls, 4) * threads.MIN_PARALLEL_WORK
    for work_per_piece, pieces in [(bound - 1, 1), (bound, 2)]:
        seen = []
        threads.parallel_for(
            2,
            lambda start, stop, seen=seen: seen.append((start, stop)),
            work_per_piece,
            calls_per_chunk=calls,
        )
        assert sorted(seen) == ([(0, 2)] if pieces == 1 else [(0, 1), (1, 2)]), work_per_piece


def test_nested_parallel_for_runs_inline(restore_threads):
    threads._counts["engine"] = 2
    inner = []

    def outer(start, stop):
        threads.parallel_for(100, lambda i, j: inner.append((i, j)), 1 << 20)

    threads.parallel_for(2, outer, 1 << 20)
    assert sorted(inner) == [(0, 100), (0, 100)]


def test_an_error_in_a_chunk_is_raised_after_every_chunk_ended(restore_threads):
    threads._counts["engine"] = 2
    ended = []

    def work(start, stop):
        if start == 0:
            raise ValueError("chunk 0 failed")
        time.sleep(0.05)
        ended.append(start)

    with pytest.raises(ValueError, match="chunk 0 failed"):
        threads.parallel_for(2, work, 1 << 20)
    assert ended == [1]


def test_chunks_on_workers_see_the_callers_floating_point_error_state(restore_threads):
    threads._counts["engine"] = 2
    zeros = np.zeros(2, dtype=np.float64)
    ran_on = set()

    def work(start, stop):
        ran_on.add(threading.current_thread().name)
        time.sleep(0.02)  # so that the worker takes the second chunk
        np.divide(1.0, zeros[start:stop])

    with np.errstate(divide="raise"), pytest.raises(FloatingPointError):
        threads.parallel_for(2, work, 1 << 20)
    assert len(ran_on) == 2
    with np.errstate(divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("error")  # a worker that warned would fail here
        threads.parallel_for(2, work, 1 << 20)


def _cnn_problem(seed=0):
    """The lecture's small CNN, a batch and its labels, from ``seed``."""
    import nn

    rng = np.random.default_rng(seed)
    autodiff.manual_seed(seed)
    model = nn.models.ConvNet()
    images = autodiff.tensor(rng.standard_normal((64, 1, 28, 28)).astype(np.float32))
    labels = autodiff.tensor(rng.integers(0, 10, 64))
    return model, images, labels


def _mlp_problem(seed=0):
    """The lecture's MLP (2-D products split in halves of rows or columns), a batch, labels."""
    import nn

    rng = np.random.default_rng(seed)
    autodiff.manual_seed(seed)
    model = nn.models.NeuralNetwork()
    images = autodiff.tensor(rng.standard_normal((64, 1, 28, 28)).astype(np.float32))
    labels = autodiff.tensor(rng.integers(0, 10, 64))
    return model, images, labels


def _lenet_problem(seed=0):
    """LeNet's layers: 5x5 convolutions (the second without padding: its dL/dx by fold),
    sigmoid, average pooling (WindowSum, split over the images), a batch and labels."""
    import nn

    rng = np.random.default_rng(seed)
    autodiff.manual_seed(seed)
    model = nn.Sequential(
        nn.Conv2d(1, 32, 5, padding=2),  # (enough channels for the pooling to split)
        nn.Sigmoid(),
        nn.AvgPool2d(2),
        nn.Conv2d(32, 16, 5),
        nn.Sigmoid(),
        nn.AvgPool2d(2),
        nn.Flatten(),
        nn.Linear(16 * 5 * 5, 10),
    )
    images = autodiff.tensor(rng.standard_normal((64, 1, 28, 28)).astype(np.float32))
    labels = autodiff.tensor(rng.integers(0, 10, 64))
    return model, images, labels


def _step(model, images, labels):
    """Loss and every gradient of one training step, as NumPy arrays."""
    import nn

    model.zero_grad()
    loss = nn.CrossEntropyLoss()(model(images), labels)
    loss.backward()
    return [loss.detach().numpy()] + [p.grad.numpy().copy() for p in model.parameters()]


@pytest.fixture
def fresh_product_checks(monkeypatch):
    """No 2-D product problem seen yet (see linalg._product_plan)."""
    checked = {}
    monkeypatch.setattr(linalg, "_PRODUCT_PLANS", checked)
    return checked


@pytest.mark.parametrize("problem", [_cnn_problem, _mlp_problem, _lenet_problem])
@pytest.mark.parametrize("count", [2, 3])
@pytest.mark.parametrize("first", ["several threads", "one thread"])
def test_results_do_not_depend_on_the_thread_count(
    first, count, problem, restore_threads, fresh_product_checks
):
    """Chunks split whole images and rows: every number is computed as on one thread.

    Three steps at each count, either count first: the 2-D products' problems
    are new at the first step (two halves), checked at the second, and from
    then on one call on one thread and the caller's larger part on several,
    wherever the check found the halves' bits.
    """
    counts = [count, 1] if first == "several threads" else [1, count]
    steps = []
    for n in counts:
        autodiff.set_num_threads(n)
        steps += [_step(*problem()) for _ in range(3)]
    for later in steps[1:]:
        for expected, got in zip(steps[0], later, strict=True):
            np.testing.assert_array_equal(got, expected)
    assert None not in fresh_product_checks.values()  # every problem seen was checked
    assert fresh_product_checks or problem is not _mlp_problem  # (their 2-D products are small)


@pytest.mark.parametrize("count", [1, 2, 3])
def test_the_linear_layers_two_gradients_run_one_per_thread_on_two_threads(
    count, monkeypatch, restore_threads
):
    """dL/dx and dL/dW of a wide layer (as many multiply-adds each) side by side on two
    threads, each computed whole on its thread; on one thread, or three, one after the
    other, each split as _matmul splits it."""
    import nn.functional as F  # noqa: N812 (as torch.nn.functional is imported)

    autodiff.set_num_threads(count)
    seen = []
    both_running = threading.Barrier(2, timeout=10)
    real = linalg._matmul

    def product(a, b):
        seen.append((a.shape, b.shape, threading.current_thread().name, threads.running_a_chunk()))
        if threads.running_a_chunk():  # the two must be running at once to pass
            both_running.wait()
        return real(a, b)

    monkeypatch.setattr(linalg, "_matmul", product)
    rng = np.random.default_rng(0)
    x = autodiff.tensor(rng.standard_normal((64, 512)).astype(np.float32), requires_grad=True)
    weight = autodiff.tensor(rng.standard_normal((512, 512)).astype(np.float32), requires_grad=True)
    g = autodiff.tensor(rng.standard_normal((64, 512)).astype(np.float32))
    y = F.linear(x, weight)
    seen.clear()  # (the forward's product)
    grad_x, grad_weight = autodiff.grad(y, (x, weight), g)
    assert sorted((a, b) for a, b, _, _ in seen) == [
        ((64, 512), (512, 512)),  # g W
        ((512, 64), (64, 512)),  # g^T x
    ]
    names = {name for _, _, name, _ in seen}
    assert len(names) == (2 if count == 2 else 1)
    assert all(inside == (count == 2) for *_, inside in seen)
    monkeypatch.setattr(linalg, "_matmul", real)
    autodiff.set_num_threads(1)
    expected = [real(g.numpy(), weight.detach().numpy()), real(g.numpy().T, x.detach().numpy())]
    np.testing.assert_array_equal(grad_x.numpy(), expected[0])
    np.testing.assert_array_equal(grad_weight.numpy(), expected[1])


def _spy_on_parts(monkeypatch):
    """A list that grows by the ``middle`` asked for each time a 2-D product is computed in
    two parts (None: halves)."""
    calls = []
    real = linalg._two_parts_of_product

    def parts(a, b, out, middle=None):
        calls.append(middle)
        return real(a, b, out, middle)

    monkeypatch.setattr(linalg, "_two_parts_of_product", parts)
    return calls


@pytest.mark.parametrize("same_bits", [True, False])
def test_a_product_is_one_call_or_the_callers_larger_part_only_where_checked_to_match_the_halves(
    same_bits, monkeypatch, restore_threads, fresh_product_checks
):
    autodiff.set_num_threads(1)
    checks = []

    def check(a, b, layouts, middle):
        checks.append((layouts, middle))
        return linalg._Plan(same_bits, middle if same_bits else 256)

    monkeypatch.setattr(linalg, "_checked_plan", check)
    parts = _spy_on_parts(monkeypatch)
    rng = np.random.default_rng(0)
    a = rng.standard_normal((64, 256)).astype(np.float32)
    b = rng.standard_normal((512, 256)).astype(np.float32).T  # column-major, as W.T
    expected = a @ b
    for _ in range(4):
        np.testing.assert_allclose(linalg._matmul(a, b), expected, rtol=1e-5, atol=1e-5)
    # once, at the second product; split by b's columns (the output is wider than tall)
    larger = linalg._larger_part(a, b, 64 * 512 * 256 // 16)
    assert checks == [(("C", "F"), larger)] and 256 < larger < 512
    assert parts == ([None] if same_bits else [None] * 4)  # the first is always in halves
    problem = ((64, 256), (256, 512), a.dtype, b.dtype, ("C", "F"))
    assert fresh_product_checks == {
        problem: linalg._Plan(same_bits, checks[0][1] if same_bits else 256)
    }
    autodiff.set_num_threads(2)
    np.testing.assert_allclose(linalg._matmul(a, b), expected, rtol=1e-5, atol=1e-5)
    assert parts[-1] == (larger if same_bits else 256)  # two threads: the caller's part first


def test_the_check_compares_one_call_and_the_larger_part_with_the_halves_to_the_last_bit(
    monkeypatch,
):
    a = np.ones((64, 256), dtype=np.float32)
    b = np.ones((256, 512), dtype=np.float32)
    assert linalg._checked_plan(a, b, ("C", "C"), 288) == linalg._Plan(True, 288)
    real = linalg._two_parts_of_product

    def one_ulp_off_where(wrong_middle):
        def parts(a, b, out, middle=None):
            work = real(a, b, out, middle)

            def off(first, stop):
                work(first, stop)
                if middle == wrong_middle:
                    out[-1, -1] = np.nextafter(out[-1, -1], np.inf)

            return off

        return parts

    monkeypatch.setattr(linalg, "_two_parts_of_product", one_ulp_off_where(None))  # the halves
    assert linalg._checked_plan(a, b, ("C", "C"), 288) == linalg._Plan(False, 256)
    monkeypatch.setattr(linalg, "_two_parts_of_product", one_ulp_off_where(288))
    assert linalg._checked_plan(a, b, ("C", "C"), 288) == linalg._Plan(True, 256)


def test_the_check_leaves_autodiffs_random_numbers_alone():
    autodiff.manual_seed(5)
    expected = autodiff.randn(4)
    autodiff.manual_seed(5)
    a = np.ones((64, 256), dtype=np.float32)
    linalg._checked_plan(a, a.T, ("C", "F"), 32)
    np.testing.assert_array_equal(autodiff.randn(4).numpy(), expected.numpy())


def test_strided_large_and_unbounded_problems_keep_the_halves(
    monkeypatch, restore_threads, fresh_product_checks
):
    autodiff.set_num_threads(1)
    monkeypatch.setattr(linalg, "_MOST_PROBLEMS_CHECKED", 1)
    monkeypatch.setattr(
        linalg, "_checked_plan", lambda a, b, layouts, middle: linalg._Plan(True, middle)
    )
    halves = _spy_on_parts(monkeypatch)
    wide = np.ones((64, 512), dtype=np.float32)
    strided = wide[:, ::2]  # neither row- nor column-major
    square = np.ones((256, 256), dtype=np.float32)
    for _ in range(3):
        linalg._matmul(strided, square)
    assert len(halves) == 3 and not fresh_product_checks
    for _ in range(3):
        linalg._matmul(wide[:, :256], square.copy())  # a strided view too: rows of 512
        linalg._matmul(square, np.ones((256, 128), dtype=np.float32))  # the bound's one problem
        linalg._matmul(np.ones((128, 256), dtype=np.float32), square)  # past the bound
    assert len(fresh_product_checks) == 1
    assert len(halves) == 3 + 3 + 1 + 3  # all but the bound's problem once checked
    monkeypatch.setattr(linalg, "_MOST_PROBLEMS_CHECKED", 10)
    monkeypatch.setattr(linalg, "_LARGEST_CHECKED_BYTES", square.nbytes)  # both: past it
    for _ in range(3):
        linalg._matmul(square, square)
    assert len(fresh_product_checks) == 1
    assert len(halves) == 10 + 3
    assert set(halves) == {None}


def test_two_threads_training_at_once_get_their_own_results(restore_threads):
    """The pool serves several calling threads (a job each) without mixing their chunks."""
    autodiff.set_num_threads(2)
    problems = {seed: _cnn_problem(seed) for seed in (1, 2)}  # one random generator: made here
    expected = [_step(*problems[seed]) for seed in (1, 2)]
    results = {}

    def train(seed):
        results[seed] = _step(*problems[seed])

    runners = [threading.Thread(target=train, args=(seed,)) for seed in (1, 2)]
    for runner in runners:
        runner.start()
    for runner in runners:
        runner.join()
    for seed, want in zip((1, 2), expected, strict=True):
        for a, b in zip(results[seed], want, strict=True):
            np.testing.assert_array_equal(a, b)


def test_a_forked_child_computes_with_a_pool_of_its_own(restore_threads):
    """A DataLoader worker made by fork has none of the parent's threads."""
    if not hasattr(os, "fork"):
        pytest.skip("no fork here")
    autodiff.set_num_threads(2)
    threads.parallel_for(2, lambda start, stop: None, 1 << 20)  # the parent's workers exist
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: a result, or nothing if it hangs
        try:
            x = autodiff.tensor(np.ones((64, 16, 28, 28), dtype=np.float32))
            os.write(write, str(float(x.relu().sum().item())).encode())
        finally:
            os._exit(0)
    os.close(write)
    try:
        with os.fdopen(read) as pipe:
            assert float(pipe.read()) == 64 * 16 * 28 * 28
    finally:
        os.waitpid(pid, 0)


@pytest.mark.parametrize("count", [1, 2])
@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("shape", [(64, 512), (9, 40000), (3, 5)])
def test_relu_backward_keeps_the_gradient_where_the_output_is_not_at_most_zero(
    shape, dtype, count, restore_threads
):
    """dL/dx = g where not y <= 0 (NaN included), else +0.0: g's own bits (inf, NaN,
    -0.0) or +0.0, as np.where gives, on arrays or recorded (create_graph) alike."""
    autodiff.set_num_threads(count)
    rng = np.random.default_rng(5)
    x = rng.standard_normal(shape).astype(dtype)
    x.reshape(-1)[::7] = np.nan
    x.reshape(-1)[::11] = -0.0
    g = rng.standard_normal(shape).astype(dtype)
    g.reshape(-1)[1::5] = -0.0
    g.reshape(-1)[2::9] = np.inf
    g.reshape(-1)[3::13] = np.nan
    y = np.maximum(0, x)
    expected = np.where(y <= 0, dtype(0), g)
    for create_graph in (False, True):
        t = autodiff.tensor(x, requires_grad=True)
        (grad,) = autodiff.grad(t.relu(), t, autodiff.tensor(g), create_graph=create_graph)
        assert grad.dtype == dtype and grad.data.tobytes() == expected.tobytes()


@pytest.mark.parametrize("count", [1, 2])
@pytest.mark.parametrize(
    "shape", [(64, 512), (3, 70001), (64, 16, 28, 28), (4097,), (9, 40000), (2, 2**18 + 5)]
)
def test_relu_of_a_large_float32_batch_is_maximum_with_zero(shape, count, restore_threads):
    """Large float32 ReLUs run against blocks of zeros (NumPy's vectorised loop): the
    same bits as np.maximum(0, x), NaN and -0.0 included, out of place and in place."""
    autodiff.set_num_threads(count)
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    x.reshape(-1)[::7] = np.nan
    x.reshape(-1)[::11] = -0.0
    expected = np.maximum(0, x)
    assert np.signbit(expected[expected == 0]).any()  # -0.0 stays -0.0, as in PyTorch
    assert autodiff.tensor(x).relu().numpy().tobytes() == expected.tobytes()
    in_place = autodiff.tensor(x.copy())
    in_place.relu_()
    assert in_place.numpy().tobytes() == expected.tobytes()
    t = autodiff.tensor(x, requires_grad=True)
    t.relu().sum().backward()
    np.testing.assert_array_equal(t.grad.numpy(), np.where(x <= 0, 0.0, 1.0))


@pytest.mark.parametrize("count", [1, 2])
@pytest.mark.parametrize(
    ("shape", "small", "dtypes"),
    [
        ((64, 16, 28, 28), (1, 16, 1, 1), (np.float32, np.float32)),
        ((64, 16, 28, 28), (1, 16, 1, 1), (np.float32, np.float64)),
        ((64, 8, 20, 20), (1, 1, 20, 1), (np.float64, np.float32)),
        ((64, 16, 28, 28), (1, 1, 1, 1), (np.int64, np.float32)),
        ((3, 300000), (1, 1), (np.float32, np.float32)),
    ],
)
def test_adding_a_small_broadcast_operand_to_a_large_batch_is_numpys_sum(
    shape, small, dtypes, count, restore_threads
):
    """A bias of shape (1, C, 1, 1) is written out as one row (1, C, H, W) before the
    addition (NumPy's vectorised loop): the same values and dtype as NumPy's sum, in
    either order of the operands, at every thread count."""
    autodiff.set_num_threads(count)
    rng = np.random.default_rng(2)
    big = (rng.standard_normal(shape) * 10).astype(dtypes[0])
    bias = (rng.standard_normal(small) * 10).astype(dtypes[1])
    expected = big + bias
    for total in (autodiff.tensor(big) + autodiff.tensor(bias), autodiff.tensor(bias) + big):
        assert total.dtype == expected.dtype
        assert total.data.tobytes() == expected.tobytes()


def test_adding_operands_that_do_not_broadcast_names_the_shapes():
    with pytest.raises(ValueError, match=r"\(64, 16, 28, 28\).*\(1, 15, 1, 1\)"):
        autodiff.zeros(64, 16, 28, 28) + autodiff.zeros(1, 15, 1, 1)


@pytest.mark.parametrize(
    ("ufunc", "rows", "split"),
    [
        (np.add, 256, False),  # 800K elements: one pass over memory, split from about 1M
        (np.add, 384, True),
        (np.greater, 256, False),
        (np.exp, 128, True),  # 400K: exp's work splits already
        (np.exp, 32, False),
    ],
)
def test_elementwise_ops_split_where_two_threads_gain(
    ufunc, rows, split, restore_threads, monkeypatch
):
    """A one-pass ufunc (add, a comparison) is split over two threads only from about
    a million elements, others (exp) from about 260K; below, the ufunc is called
    directly, with no split's set-up (see elementwise._MEMORY_PASSES)."""
    from autodiff.ops import elementwise

    autodiff.set_num_threads(2)
    calls = []
    real = elementwise._ufunc_by_rows

    def by_rows(*args, **kwargs):
        calls.append(args[0])
        return real(*args, **kwargs)

    monkeypatch.setattr(elementwise, "_ufunc_by_rows", by_rows)
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((2, rows, 3136)).astype(np.float32)
    operands = (x, y) if ufunc.nin == 2 else (x,)
    np.testing.assert_array_equal(elementwise._ufunc(ufunc, *operands), ufunc(*operands))
    assert calls == ([ufunc] if split else [])
