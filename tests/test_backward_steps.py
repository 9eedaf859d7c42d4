"""One backward loop: backward(), autodiff.grad and visualize's trace all run
``autodiff.backward_steps``, so gradients, hooks and errors agree; observers."""

from __future__ import annotations

import threading

import numpy as np
import pytest

import autodiff
import visualize


class ScaledSum(autodiff.Function):
    """z = x + 2 y        dL/dx = dL/dz        dL/dy = 2 dL/dz"""

    @staticmethod
    def forward(ctx, x, y):
        return x + 2 * y

    @staticmethod
    def backward(ctx, grad):
        return grad, 2 * grad


def _identity_with_backward(name: str, rule: str, backward):
    """A user Function y = x whose backward returns ``backward(grad)`` (a bug, on purpose)."""
    return type(
        name,
        (autodiff.Function,),
        {
            "__doc__": f"y = x        dL/dx = {rule}",
            "forward": staticmethod(lambda ctx, x: x.copy()),
            "backward": staticmethod(lambda ctx, grad: backward(grad)),
        },
    )


OneGradientForTwo = type(
    "OneGradientForTwo",
    (ScaledSum,),
    {
        "__doc__": "z = x + 2 y        dL/dx = dL/dz        (dL/dy forgotten)",
        "backward": staticmethod(lambda ctx, grad: grad),
    },
)
WrongShape = _identity_with_backward("WrongShape", "a wrong shape", lambda g: autodiff.ones(7))
NotATensor = _identity_with_backward("NotATensor", "a string", lambda g: "oops")
NanGradient = _identity_with_backward("NanGradient", "nan", lambda g: g * float("nan"))


def _leaves():
    x = autodiff.tensor([1.0, -2.0, 3.0], requires_grad=True)
    y = autodiff.tensor([0.5, 4.0, -1.0], requires_grad=True)
    x.name, y.name = "x", "y"
    return x, y


BROKEN = {
    "one gradient for two inputs": (
        lambda x, y: OneGradientForTwo.apply(x, y),
        RuntimeError,
        "returned 1 gradients but forward took 2 inputs",
    ),
    "wrong shape": (lambda x, y: WrongShape.apply(x) * y, Exception, "WrongShapeBackward"),
    "not a tensor": (lambda x, y: NotATensor.apply(x) * y, TypeError, "returned a str"),
}


def _error(run):
    with pytest.raises(Exception) as info:
        run()
    return type(info.value), str(info.value)


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_a_broken_function_fails_alike_in_backward_grad_and_trace(case):
    build, kind, words = BROKEN[case]
    x, y = _leaves()
    loss = build(x, y).sum()
    traced = _error(lambda: visualize.trace_backward(loss))
    taken = _error(lambda: autodiff.grad(loss, [x, y], retain_graph=True))
    done = _error(lambda: loss.backward(retain_graph=True))
    assert issubclass(done[0], kind) and words in done[1]
    assert traced == done == taken
    assert x.grad is None and y.grad is None  # a failed pass leaves .grad as it was


def test_a_good_function_gives_the_same_gradients_everywhere():
    x, y = _leaves()
    loss = (ScaledSum.apply(x, y) * y).sum()  # x y + 2 y^2
    trace = visualize.trace_backward(loss)
    gx, gy = autodiff.grad(loss, [x, y], retain_graph=True)
    loss.backward()
    np.testing.assert_array_equal(trace.grads["x"], x.grad.data)
    np.testing.assert_array_equal(trace.grads["y"], y.grad.data)
    np.testing.assert_array_equal(gx.data, x.grad.data)
    np.testing.assert_array_equal(gy.data, y.grad.data)
    np.testing.assert_array_equal(y.grad.data, x.data + 4 * y.data)
    assert [s.op for s in trace][:3] == ["SumBackward", "MulBackward", "ScaledSumBackward"]


def test_hooks_run_in_the_trace_as_in_backward():
    x, y = _leaves()
    z = x * y
    z.register_hook(lambda g: g * 10)  # on an intermediate
    x.register_hook(lambda g: g + 1)  # on a leaf
    loss = z.sum()
    trace = visualize.trace_backward(loss)
    loss.backward()
    np.testing.assert_array_equal(trace.grads["x"], x.grad.data)
    np.testing.assert_array_equal(x.grad.data, 10 * y.data + 1)
    np.testing.assert_array_equal(trace.grads["y"], y.grad.data)


def test_anomaly_fails_alike_in_backward_and_trace():
    x, y = _leaves()
    with autodiff.detect_anomaly():
        loss = (NanGradient.apply(x) * y).sum()
        traced = _error(lambda: visualize.trace_backward(loss))
        done = _error(lambda: loss.backward(retain_graph=True))
    assert traced == done
    assert "NanGradientBackward" in done[1] and "test_backward_steps.py" in done[1]


def test_backward_steps_yields_node_gradient_and_what_it_passes_on():
    x = autodiff.tensor([[1.0, 2.0]], requires_grad=True)
    b = autodiff.tensor([3.0], requires_grad=True)
    loss = (x * b).sum()  # b is broadcast: its gradient is un-broadcast in the step
    steps = list(autodiff.backward_steps(loss))
    assert [node.name() for node, _, _ in steps] == [
        "SumBackward",
        "MulBackward",
        "AccumulateGrad",
        "AccumulateGrad",
    ]
    _, grad_output, (gx, gb) = steps[1]
    assert grad_output.shape == (1, 2)
    np.testing.assert_array_equal(gx.data, [[3.0, 3.0]])
    assert gb.shape == (1,) and gb.data[0] == 3.0  # un-broadcast: summed to b's shape
    assert not steps[2][2]  # a leaf passes nothing on
    assert {node.variable for node, _, _ in steps[2:]} == {x, b}
    assert x.grad is None and b.grad is None  # the steps write no .grad
    with pytest.raises(RuntimeError, match="second time"):  # saved values were freed
        loss.backward()


def test_backward_steps_leaves_grad_mode_alone_between_steps():
    x = autodiff.tensor([1.0, 2.0], requires_grad=True)
    for _ in autodiff.backward_steps((x * x).sum()):
        assert autodiff.is_grad_enabled()


def test_backward_steps_checks_its_arguments():
    x = autodiff.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="backward_steps: grad can be implicitly created"):
        next(autodiff.backward_steps(x * 2))
    with pytest.raises(RuntimeError, match="does not require grad"):
        next(autodiff.backward_steps(autodiff.tensor(1.0)))
    steps = list(autodiff.backward_steps([x * 2, x * 3], [autodiff.ones(2), autodiff.ones(2)]))
    np.testing.assert_array_equal(steps[-1][1].data, [5.0, 5.0])


# -- observers -------------------------------------------------------------------------


def test_observe_sees_each_recorded_node_with_its_inputs_and_output():
    seen = []
    x = autodiff.tensor([1.0, 2.0], requires_grad=True)
    with autodiff.observe(lambda node, inputs, output: seen.append((node, inputs, output))):
        y = x * 2
        z = y.sum()
        with autodiff.no_grad():
            x * 3  # not recorded: not observed
        autodiff.tensor([1.0]) * 2  # nothing requires grad: not observed
    x * 4  # after the block: the observer is gone
    assert [node for node, _, _ in seen] == [y.grad_fn, z.grad_fn]
    _, inputs, output = seen[0]
    assert inputs[0] is x and inputs[1] == 2 and output is y


def test_observer_handles_remove_and_run_in_order():
    calls = []
    first = autodiff.observe(lambda node, inputs, output: calls.append("first"))
    second = autodiff.observe(lambda node, inputs, output: calls.append("second"))
    try:
        autodiff.tensor(1.0, requires_grad=True).exp()
        first.remove()
        first.remove()  # twice is harmless
        autodiff.tensor(1.0, requires_grad=True).exp()
    finally:
        first.remove()
        second.remove()
    assert calls == ["first", "second", "second"]
    with pytest.raises(TypeError, match="observe: expected a callable"):
        autodiff.observe(None)


def test_observers_are_process_wide():
    seen = []
    x = autodiff.tensor([1.0], requires_grad=True)
    with autodiff.observe(lambda node, inputs, output: seen.append(node.name())):
        thread = threading.Thread(target=lambda: x.exp())
        thread.start()
        thread.join()
    assert seen == ["ExpBackward"]


def test_annotations_are_an_explicit_slot():
    x = autodiff.tensor([1.0], requires_grad=True)
    node = (x * 2).grad_fn
    assert node.annotations is None
    assert "annotations" in type(node).__slots__

    def tag(node, inputs, output):
        node.annotations = {"who": "me"}

    with autodiff.observe(tag):
        assert (x * 2).grad_fn.annotations == {"who": "me"}


def test_keep_values_observes_instead_of_patching():
    original = autodiff.Function.__dict__["apply"]
    a = autodiff.tensor(2.0, requires_grad=True)
    with visualize.keep_values(), visualize.keep_values():  # nesting is fine
        assert autodiff.Function.__dict__["apply"] is original
        loss = (a * 3).tanh()
    graph = visualize.trace_graph(loss)
    assert all(t.value is not None for t in graph.tensors)


def test_anomaly_mode_records_creation_traces_through_an_observer_only_while_on():
    from autodiff.function import _observers

    x = autodiff.tensor([1.0], requires_grad=True)
    assert not _observers  # apply pays one truthiness check
    with autodiff.detect_anomaly():
        assert len(_observers) == 1
        with autodiff.detect_anomaly(check_nan=False):
            y = x.exp()
        assert "test_backward_steps.py" in y.grad_fn.creation_trace
        other = {}
        thread = threading.Thread(target=lambda: other.update(node=x.exp().grad_fn))
        thread.start()
        thread.join()
        assert other["node"].creation_trace is None  # that thread's mode is off
    assert not _observers
    assert x.exp().grad_fn.creation_trace is None
    autodiff.set_detect_anomaly(True)
    try:
        assert x.exp().grad_fn.creation_trace is not None
    finally:
        autodiff.set_detect_anomaly(False)
    assert not _observers
