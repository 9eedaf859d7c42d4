"""Grad mode, inference mode and anomaly mode: per thread, as in PyTorch.

The deterministic tests make two threads meet at chosen points (events inside
a backward hook, barriers around ``no_grad``) so that the overlap they test
happens on every run, not by luck of the scheduler.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest

import autodiff
import nn


def run_in_thread(target, *args):
    """Run ``target`` in a new thread; re-raise its exception here, return its result."""
    outcome = {}

    def body():
        try:
            outcome["value"] = target(*args)
        except BaseException as error:  # re-raised in the caller
            outcome["error"] = error

    thread = threading.Thread(target=body)
    thread.start()
    thread.join(timeout=60)
    assert not thread.is_alive(), "thread did not finish"
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")


# -- the flags are per thread -------------------------------------------------------


def test_a_new_thread_starts_with_the_default_modes(torch):
    def modes(lib):
        return (lib.is_grad_enabled(), lib.is_inference_mode_enabled(), lib.is_anomaly_enabled())

    with autodiff.no_grad(), autodiff.set_detect_anomaly(True):
        assert modes(autodiff) == (False, False, True)
        assert run_in_thread(modes, autodiff) == (True, False, False)
    with torch.no_grad():
        assert run_in_thread(modes, torch) == (True, False, False)
    # PyTorch's anomaly mode is one flag per process; here it is per thread, like
    # every mode (README, "Differences from PyTorch").
    with torch.autograd.set_detect_anomaly(True):
        assert run_in_thread(torch.is_anomaly_enabled) is True


def test_no_grad_in_one_thread_leaves_the_other_recording():
    inside, checked = threading.Event(), threading.Event()

    def stays_in_no_grad():
        with autodiff.no_grad():
            inside.set()
            assert checked.wait(10)
            return autodiff.is_grad_enabled()

    thread_result = {}
    thread = threading.Thread(target=lambda: thread_result.update(v=stays_in_no_grad()))
    thread.start()
    assert inside.wait(10)
    x = autodiff.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2  # the other thread is inside no_grad right now
    checked.set()
    thread.join(10)
    assert y.requires_grad and autodiff.is_grad_enabled()
    assert thread_result["v"] is False


def test_overlapping_no_grad_blocks_in_two_threads_restore_each_threads_mode():
    # A enters, B enters, A leaves, B leaves: with one shared flag, B's exit
    # restored A's "off" and recording stayed off for good.
    a_in, b_in, a_out = threading.Event(), threading.Event(), threading.Event()

    def thread_a():
        with autodiff.no_grad():
            a_in.set()
            assert b_in.wait(10)
        a_out.set()
        return autodiff.is_grad_enabled()

    def thread_b():
        assert a_in.wait(10)
        with autodiff.no_grad():
            b_in.set()
            assert a_out.wait(10)
        return autodiff.is_grad_enabled()

    results = {}
    threads = [
        threading.Thread(target=lambda: results.update(a=thread_a())),
        threading.Thread(target=lambda: results.update(b=thread_b())),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert results == {"a": True, "b": True}
    assert autodiff.is_grad_enabled()
    assert autodiff.tensor(1.0, requires_grad=True).exp().requires_grad


def test_backward_in_one_thread_does_not_stop_recording_in_another():
    # backward() runs its formulas unrecorded (create_graph=False); the other
    # thread's forward pass, in the middle of that backward, must still record.
    in_backward, recorded = threading.Event(), threading.Event()
    x = autodiff.tensor([1.0, 2.0], requires_grad=True)
    y = x * 3

    def hook(grad):
        in_backward.set()
        assert recorded.wait(10)
        return grad

    y.register_hook(hook)
    seen = {}

    def other_thread():
        assert in_backward.wait(10)
        w = autodiff.tensor([1.0], requires_grad=True)
        seen["requires_grad"] = (w * w).requires_grad
        seen["grad_enabled"] = autodiff.is_grad_enabled()
        recorded.set()

    thread = threading.Thread(target=other_thread)
    thread.start()
    y.sum().backward()
    thread.join(10)
    assert seen == {"requires_grad": True, "grad_enabled": True}
    np.testing.assert_array_equal(x.grad.numpy(), [3.0, 3.0])


def test_anomaly_mode_is_per_thread():
    with autodiff.detect_anomaly():
        assert autodiff.is_anomaly_enabled()
        assert run_in_thread(autodiff.is_anomaly_enabled) is False

        def nan_gradient_passes_silently():
            x = autodiff.tensor(0.0, requires_grad=True)
            x.sqrt().backward()  # 1 / (2 sqrt 0) = inf: no anomaly check in this thread
            return float(x.grad)

        assert run_in_thread(nan_gradient_passes_silently) == np.inf
    assert not autodiff.is_anomaly_enabled()


def test_anomaly_check_nan_flag(torch):
    for lib in (autodiff, torch):
        with (
            lib.autograd.detect_anomaly(check_nan=False)
            if lib is torch
            else lib.detect_anomaly(check_nan=False)
        ):
            assert lib.is_anomaly_enabled() and not lib.is_anomaly_check_nan_enabled()
            x = lib.tensor(0.0, requires_grad=True)
            x.sqrt().backward()  # no check: inf passes
            assert float(x.grad) == np.inf
        assert lib.is_anomaly_check_nan_enabled()


# -- two training loops at once ------------------------------------------------------


def train_steps(seed, steps, check_every_step):
    """A small MLP trained by hand; every gradient is checked against a closed form.

    For a linear model and MSE, dL/dW = 2/N (W x - y) x^T: any gradient that was
    lost or computed unrecorded (because another thread flipped a shared mode)
    shows up as a mismatch or as "does not require grad".
    """
    rng = np.random.default_rng(seed)
    x = autodiff.tensor(rng.normal(size=(16, 5)))
    y = autodiff.tensor(rng.normal(size=(16, 3)))
    model = nn.Linear(5, 3, bias=False)
    wrong = 0
    for step in range(steps):
        model.zero_grad()
        loss = nn.functional.mse_loss(model(x), y)
        loss.backward()
        expected = 2 / y.numel() * (x.data @ model.weight.data.T - y.data).T @ x.data
        if not np.allclose(model.weight.grad.numpy(), expected, rtol=1e-4, atol=1e-6):
            wrong += 1
        with autodiff.no_grad():  # overlapping no_grad blocks, as an optimizer's step has
            model.weight -= 0.01 * model.weight.grad
            if check_every_step and step % 7 == 0:
                assert not model(x).requires_grad
        assert model(x).requires_grad
    return wrong


def test_two_training_threads_with_overlapping_no_grad_get_every_gradient_right():
    errors, wrong = [], []
    start = threading.Barrier(2)

    def worker(seed):
        try:
            start.wait(10)
            wrong.append(train_steps(seed, 300, True))
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=worker, args=(seed,)) for seed in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors[:3]
    assert wrong == [0, 0]
    assert autodiff.is_grad_enabled()


# -- decorators -------------------------------------------------------------------


def decorated_modes(lib):
    @lib.no_grad
    def bare():
        return lib.is_grad_enabled()

    @lib.no_grad()
    def called():
        return lib.is_grad_enabled()

    @lib.inference_mode
    def inference():
        return lib.is_grad_enabled(), lib.is_inference_mode_enabled()

    return bare(), called(), inference(), lib.is_grad_enabled(), lib.is_inference_mode_enabled()


def test_no_grad_decorates_with_and_without_parentheses(torch):
    expected = (False, False, (False, True), True, False)
    assert decorated_modes(autodiff) == decorated_modes(torch) == expected


def test_no_grad_on_a_generator_function_applies_inside_its_body(torch):
    def observed(lib):
        @lib.no_grad()
        def generator():
            seen = yield lib.is_grad_enabled()
            yield (seen, lib.is_grad_enabled())

        outside = []
        gen = generator()
        first = next(gen)
        outside.append(lib.is_grad_enabled())  # the caller's mode between steps
        second = gen.send("sent")
        outside.append(lib.is_grad_enabled())
        return first, second, outside

    assert observed(autodiff) == observed(torch) == (False, ("sent", False), [True, True])


def test_a_decorated_generator_records_nothing_inside_and_everything_outside():
    x = autodiff.tensor([1.0, 2.0], requires_grad=True)

    @autodiff.no_grad()
    def doubled(values):
        for v in values:
            yield v * 2

    results = list(doubled([x, x]))
    assert not any(r.requires_grad for r in results)
    assert (x * 2).requires_grad

    @autodiff.enable_grad()
    def recorded():
        yield x * 2

    with autodiff.no_grad():
        (inside,) = list(recorded())
        assert inside.requires_grad
        assert not (x * 2).requires_grad


def test_a_decorated_generator_passes_on_throw_and_close():
    log = []

    @autodiff.no_grad()
    def generator():
        try:
            yield 1
        except ValueError:
            log.append(("caught", autodiff.is_grad_enabled()))
            yield 2
        finally:
            log.append(("closed", autodiff.is_grad_enabled()))

    gen = generator()
    assert next(gen) == 1
    assert gen.throw(ValueError("x")) == 2
    gen.close()
    assert log == [("caught", False), ("closed", False)]
    assert autodiff.is_grad_enabled()

    @autodiff.no_grad()
    def returns():
        yield 1
        return "done"

    def delegate():
        return (yield from returns())

    gen = delegate()
    next(gen)
    with pytest.raises(StopIteration) as stop:
        next(gen)
    assert stop.value.value == "done"


def test_decorated_calls_in_two_threads_restore_their_own_mode():
    # One decorator object serves both threads; each call must save and restore
    # its own thread's mode, not a value shared on the decorator.
    entered, release = threading.Barrier(2), threading.Event()

    @autodiff.no_grad()
    def hold():
        entered.wait(10)
        release.wait(10)
        return autodiff.is_grad_enabled()

    def worker(enabled):
        autodiff.set_grad_enabled(enabled)
        inside = hold()
        return inside, autodiff.is_grad_enabled()

    results = {}
    threads = [
        threading.Thread(target=lambda e=e: results.update({e: worker(e)})) for e in (True, False)
    ]
    for t in threads:
        t.start()
    release.set()
    for t in threads:
        t.join(10)
    assert results == {True: (False, True), False: (False, False)}


# -- inference mode ------------------------------------------------------------------


def test_inference_mode_is_no_grad_and_says_so(torch):
    for lib in (autodiff, torch):
        x = lib.tensor([1.0], requires_grad=True)
        with lib.inference_mode():
            assert lib.is_inference_mode_enabled() and not lib.is_grad_enabled()
            assert not (x * 2).requires_grad
            with lib.inference_mode(False):
                assert not lib.is_inference_mode_enabled() and lib.is_grad_enabled()
        assert not lib.is_inference_mode_enabled() and lib.is_grad_enabled()
        with lib.no_grad():
            assert not lib.is_inference_mode_enabled()
