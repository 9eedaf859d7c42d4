"""Tests of autodiff.testing: the strategies themselves, and the gradient assertions."""

from __future__ import annotations

import inspect
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from _helpers import Cube, CubeWithConstantSlope
from hypothesis import given, settings
from hypothesis import strategies as st

import autodiff
import nn
import nn.functional as F  # noqa: N812
from autodiff.testing import (
    arrays,
    assert_gradients_match,
    broadcastable_shapes,
    check_gradients,
    check_graph,
    record_inputs,
    shapes,
    tensors,
)

# -- strategies ---------------------------------------------------------------------


@given(data=st.data(), min_dims=st.integers(0, 3), extra=st.integers(0, 2), side=st.integers(1, 3))
def test_shapes_respect_their_bounds(data, min_dims, extra, side):
    shape = data.draw(
        shapes(min_dims=min_dims, max_dims=min_dims + extra, min_side=side, max_side=side + 2)
    )
    assert isinstance(shape, tuple)
    assert min_dims <= len(shape) <= min_dims + extra
    assert all(side <= s <= side + 2 for s in shape)


def test_shapes_draws_scalars_and_several_ranks():
    seen = set()

    @settings(max_examples=60, derandomize=True)
    @given(shapes(min_dims=0, max_dims=2))
    def collect(shape):
        seen.add(len(shape))

    collect()
    assert seen == {0, 1, 2}


def test_shapes_reject_impossible_bounds():
    with pytest.raises(ValueError, match="min_dims"):
        shapes(min_dims=3, max_dims=1)
    with pytest.raises(ValueError, match="min_side"):
        shapes(min_side=4, max_side=2)


@given(data=st.data(), n=st.integers(1, 4))
def test_broadcastable_shapes_broadcast_together(data, n):
    drawn = data.draw(broadcastable_shapes(n, max_dims=3, max_side=3))
    assert isinstance(drawn, tuple) and len(drawn) == n
    result = np.broadcast_shapes(*drawn)
    # and the engine agrees: adding tensors of these shapes gives the broadcast shape
    total = autodiff.zeros(drawn[0])
    for shape in drawn[1:]:
        total = total + autodiff.zeros(shape)
    assert total.shape == result


def test_broadcastable_shapes_really_broadcast_sometimes():
    stretched = []

    @settings(max_examples=60, derandomize=True)
    @given(broadcastable_shapes(2))
    def collect(pair):
        stretched.append(pair[0] != pair[1])

    collect()
    assert any(stretched), "every drawn pair had equal shapes: broadcasting is never exercised"


def test_broadcastable_shapes_base_shape_and_bad_count():
    @settings(max_examples=10, derandomize=True)
    @given(broadcastable_shapes(2, base_shape=(2, 3)))
    def check(pair):
        np.broadcast_shapes((2, 3), *pair)

    check()
    with pytest.raises(ValueError, match="num_shapes"):
        broadcastable_shapes(0)


@given(
    data=st.data(),
    dtype=st.sampled_from([np.float32, np.float64, np.int64]),
    low=st.integers(-5, 0),
    width=st.integers(1, 5),
)
def test_arrays_have_dtype_shape_and_bounds(data, dtype, low, width):
    array = data.draw(arrays(dtype, (2, 3), min_value=low, max_value=low + width))
    assert array.dtype == np.dtype(dtype)
    assert array.shape == (2, 3)
    assert np.all(np.isfinite(array))
    assert np.all((array >= low) & (array <= low + width))


@given(
    arrays(np.float64, shapes(min_dims=1), min_value=-1, max_value=1, avoid=(0.0, 0.5), margin=0.05)
)
def test_arrays_avoid_kinks(array):
    assert np.all(np.abs(array) > 0.05)
    assert np.all(np.abs(array - 0.5) > 0.05)


@given(arrays(np.float64, (6,), unique=True))
def test_arrays_unique(array):
    assert len(np.unique(array)) == 6


@given(arrays(np.bool_, (3,)))
def test_arrays_bool(array):
    assert array.dtype == np.bool_


def test_arrays_reject_bad_bounds_and_dtypes():
    with pytest.raises(ValueError, match="min_value"):
        arrays(np.float64, (2,), min_value=3, max_value=1)
    with pytest.raises(TypeError, match="dtype"):
        arrays(np.dtype("U3"), (2,)).example()


@given(tensors(np.float64, shapes(max_dims=2), min_value=0.5, max_value=2, requires_grad=True))
def test_tensors_are_leaves_that_require_grad(t):
    assert isinstance(t, autodiff.Tensor)
    assert t.requires_grad and t.is_leaf and t.grad is None
    assert t.dtype == np.float64
    assert np.all((t.data >= 0.5) & (t.data <= 2))
    t.log().sum().backward()  # a safe domain for log
    np.testing.assert_allclose(t.grad.data, 1 / t.data)


@given(tensors(np.int64, (2, 2), min_value=0, max_value=3))
def test_integer_tensors(t):
    assert t.dtype == np.int64 and not t.requires_grad


def test_integer_tensors_cannot_require_grad():
    with pytest.raises(ValueError, match="floating point"):
        tensors(np.int64, (2,), requires_grad=True)


# -- assert_gradients_match ----------------------------------------------------------------


class _TransposedGrad(autodiff.Function):
    """y = x W (W fixed, square) with the WRONG backward dL/dx = dL/dy W (not W^T)."""

    W = np.array([[1.0, 2.0], [3.0, 4.0]])

    @staticmethod
    def forward(ctx, x):
        return x @ _TransposedGrad.W

    @staticmethod
    def backward(ctx, grad):
        return grad @ autodiff.tensor(_TransposedGrad.W)


class _WrongCube(Cube):
    """y = x^3 with the wrong derivative 2 x^2."""

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * 2 * x**2


def test_assert_gradients_match_passes_and_returns_gradients():
    x = autodiff.tensor([[0.5, -1.0], [2.0, 0.25]], dtype=autodiff.float64, requires_grad=True)
    v = np.array([[1.0, 2.0], [3.0, 4.0]])
    (g,) = assert_gradients_match(Cube.apply, x, grad_outputs=v)
    np.testing.assert_allclose(g, v * 3 * x.data**2)


def test_a_missing_transpose_in_a_matmul_rule_is_caught():
    x = autodiff.tensor([[0.3, -0.7]], dtype=autodiff.float64, requires_grad=True)
    with pytest.raises(
        AssertionError, match=r"(?s)input 0 \(x\).*worst entry \[0, \d\]:\n +expected"
    ):
        assert_gradients_match(_TransposedGrad.apply, x)


def test_random_upstream_catches_what_an_all_ones_upstream_hides():
    # dL/dX = dL/dY^T is wrong, but with dL/dY = ones (L = Y.sum()) and a square
    # shape, ones^T == ones: only a random upstream gradient exposes it.
    class TransposeBug(autodiff.Function):
        @staticmethod
        def forward(ctx, x):
            return 2 * x

        @staticmethod
        def backward(ctx, grad):
            return 2 * grad.T

    x = autodiff.tensor(np.arange(4.0).reshape(2, 2), requires_grad=True)
    assert_gradients_match(TransposeBug.apply, x, grad_outputs=np.ones((2, 2)))  # hidden
    with pytest.raises(AssertionError, match="does not match finite differences"):
        assert_gradients_match(TransposeBug.apply, x)


def test_assert_gradients_match_failure_message():
    x = autodiff.tensor([1.0, -2.0, 3.0], requires_grad=True)
    with pytest.raises(AssertionError) as info:
        assert_gradients_match(_WrongCube.apply, x, grad_outputs=np.ones(3))
    message = str(info.value)
    assert message.startswith("_WrongCube.backward: the gradient of input 0 (x), shape (3,)")
    assert "worst entry [2]" in message  # |27 - 18| is the largest difference
    assert "expected 27 (finite differences), got 18 (_WrongCube.backward)" in message


def test_assert_gradients_match_runs_in_float64():
    x = autodiff.tensor([0.1, 0.2], requires_grad=True)  # float32
    (g,) = assert_gradients_match(lambda t: t.sin(), x)
    assert g.dtype == np.float64
    assert x.grad is None  # the user's tensor is untouched


def test_assert_gradients_match_keeps_the_dtype_when_asked_and_copies_views():
    base = autodiff.tensor(np.arange(6.0).reshape(2, 3))
    x = base.T.detach().requires_grad_()  # a non-contiguous float64 view
    (g,) = assert_gradients_match(lambda t: t * t, x, dtype=None, grad_outputs=np.ones((3, 2)))
    np.testing.assert_allclose(g, 2 * x.data)
    np.testing.assert_array_equal(base.data, np.arange(6.0).reshape(2, 3))  # untouched


def test_assert_gradients_match_several_inputs_and_outputs():
    a = autodiff.tensor([1.0, 2.0], requires_grad=True)
    b = autodiff.tensor([[0.5], [1.5]], requires_grad=True)
    assert_gradients_match(lambda x, y: (x * y, (x + y).exp(), x.sum()), a, b)
    c = autodiff.tensor([3.0, 4.0])  # not requiring grad: passed through, not checked
    assert_gradients_match(lambda x, y, k: x * y * k, a, b, 2.0)
    assert_gradients_match(lambda x, y: x * y, a, c)


def test_assert_gradients_match_names_a_wrong_gradient_shape_or_dtype_or_no_input():
    with pytest.raises(ValueError, match="no input requires grad"):
        assert_gradients_match(lambda t: t * 2, autodiff.tensor([1.0]))
    with pytest.raises(ValueError, match=r"grad_outputs\[0\] has shape \(3,\)"):
        assert_gradients_match(
            lambda t: t * 2,
            autodiff.tensor([1.0, 2.0], requires_grad=True),
            grad_outputs=np.ones(3),
        )
    with pytest.raises(TypeError, match="output 0 of the function is a float"):
        assert_gradients_match(lambda t: 1.0, autodiff.tensor([1.0], requires_grad=True))


def test_integer_outputs_are_ignored():
    x = autodiff.tensor([[1.0, 3.0], [4.0, 2.0]], requires_grad=True)
    assert_gradients_match(lambda t: t.max(dim=1), x, grad_outputs=[np.array([1.0, 2.0])])
    with pytest.raises(ValueError, match="no floating point output"):
        assert_gradients_match(lambda t: t > 0, x)


def test_unused_input_has_zero_gradient():
    a = autodiff.tensor([1.0, 2.0], requires_grad=True)
    b = autodiff.tensor([3.0], requires_grad=True)
    ga, gb = assert_gradients_match(lambda x, y: x * 2, a, b)
    assert ga.shape == (2,)
    assert np.all(gb == 0)


def test_second_order_check():
    x = autodiff.tensor([0.5, -1.0], dtype=autodiff.float64, requires_grad=True)
    assert_gradients_match(Cube.apply, x, order=2)
    assert_gradients_match(lambda a, b: (a * b.exp(), a.sin()), x, x * 2, order=2)
    assert_gradients_match(CubeWithConstantSlope.apply, x)  # first order is fine
    with pytest.raises(AssertionError, match=r"(?s)second order: .*input 0 .*got 0 "):
        assert_gradients_match(CubeWithConstantSlope.apply, x, order=2)


# -- check_gradients ------------------------------------------------------------------


test_cube_with_the_helper = check_gradients(Cube.apply, elements=(-3, 3), max_examples=10)
test_broadcast_mul_with_the_helper = check_gradients(
    lambda a, b: a * b, num_inputs=2, max_examples=10
)
test_matmul_with_fixed_shapes = check_gradients(
    lambda a, b: a @ b,
    shapes=[(2, 3), shapes(min_dims=2, max_dims=2, min_side=3, max_side=3)],
    max_examples=5,
)
test_log_per_input_domain = check_gradients(
    lambda a, b: a.log() * b, num_inputs=2, elements=[(0.1, 5.0), (-5.0, 5.0)], max_examples=10
)
test_abs_away_from_its_kink = check_gradients(
    autodiff.abs, elements=(-2, 2), avoid=(0.0,), max_examples=10
)


test_cube_to_second_order = check_gradients(Cube.apply, elements=(-3, 3), max_examples=5, order=2)


def test_check_gradients_to_second_order_catches_a_lost_graph():
    test = check_gradients(CubeWithConstantSlope.apply, elements=(0.5, 2), order=2, max_examples=5)
    with pytest.raises(AssertionError, match="second order"):
        test()


def test_check_gradients_catches_a_wrong_op():
    test = check_gradients(_WrongCube.apply, elements=(-3, 3), max_examples=10)
    assert test.__name__ == "test_gradients_of__WrongCube"
    with pytest.raises(AssertionError, match="does not match finite differences"):
        test()


def test_check_gradients_rejects_bad_shapes():
    with pytest.raises(TypeError, match="shapes must be"):
        check_gradients(autodiff.exp, shapes=3)
    with pytest.raises(ValueError, match="elements lists 1 entries for 2 inputs"):
        check_gradients(lambda a, b: a * b, num_inputs=2, elements=[(0, 1)])


def test_import_without_hypothesis_names_the_extra():
    code = (
        "import sys; sys.modules['hypothesis'] = None\n"
        "try:\n    import autodiff.testing\nexcept ImportError as e:\n    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "autodiff[test]" in out.stdout and "Hypothesis" in out.stdout


# -- failures a student can read --------------------------------------------------------

# A user's test file: the Cube above with 2 x^2 planted where 3 x^2 belongs.
PLANTED_BUG = (
    "import autodiff\nfrom autodiff.testing import check_gradients\n\n"
    + inspect.getsource(Cube).replace("3 * x**2", "2 * x**2")
    + "\ntest_cube = check_gradients(Cube.apply, elements=(-3, 3))\n"
)


def test_a_planted_bug_fails_with_a_short_report_that_names_it(tmp_path):
    """The whole pytest report of a wrong user Function: at most 30 lines, naming the
    Function's backward and the local derivative, with no library source in it."""
    (tmp_path / "test_planted.py").write_text(PLANTED_BUG)
    root = str(Path(autodiff.__file__).resolve().parent.parent)
    env = {**os.environ, "PYTHONPATH": root}
    # As in a student's terminal: under CI, pytest repeats the whole message in its
    # summary and Hypothesis adds a line to reproduce the failure.
    for variable in ("HYPOTHESIS_PROFILE", "CI", "GITHUB_ACTIONS", "BUILD_NUMBER"):
        env.pop(variable, None)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_planted.py"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    report = result.stdout + result.stderr
    assert result.returncode == 1, report
    lines = report.splitlines()
    assert len(lines) <= 30, f"{len(lines)} lines:\n{report}"
    assert "Cube.backward: the gradient of input 0 (x)" in report, report
    assert "Cube is element-wise, so dy/dx is its local derivative" in report, report
    local = re.search(r"expected (\S+) \(finite differences\), got (\S+) \(Cube.backward\)", report)
    assert local, report
    expected, got = float(local[1]), float(local[2])
    assert got == pytest.approx(2 / 3 * expected), report  # 2 x^2 where 3 x^2 belongs
    assert "Failing test case" in report  # Hypothesis still says which input it shrank to
    for hidden in ("def _assert_match", "jacobian_columns(", "__tracebackhide__", "Explanation"):
        assert hidden not in report, f"{hidden!r} in the report:\n{report}"


class _MatMul(autodiff.Function):
    """Y = A @ B        dL/dA = dL/dY @ B^T        dL/dB = A^T @ dL/dY"""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a @ b

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        return grad @ b.T, a.T @ grad


class _MatMulWithoutTranspose(_MatMul):
    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        return grad @ b, a.T @ grad  # the planted bug: b where b^T belongs


def test_a_backward_that_raises_is_named_with_its_line():
    a = autodiff.randn(2, 3, requires_grad=True)
    b = autodiff.randn(3, 4, requires_grad=True)
    assert_gradients_match(_MatMul.apply, a, b)
    with pytest.raises(AssertionError) as info:
        assert_gradients_match(_MatMulWithoutTranspose.apply, a, b)
    message = str(info.value)
    assert message.startswith("_MatMulWithoutTranspose.backward raised ShapeError"), message
    assert "matmul: shapes (2, 4) and (3, 4)" in message
    assert "test_testing.py" in message and "in backward: return grad @ b, a.T @ grad" in message


def test_check_gradients_on_a_matmul_without_shapes_fails_once_and_says_what_to_do():
    test = check_gradients(_MatMul.apply, num_inputs=2, max_examples=20)
    with pytest.raises(AssertionError) as info:  # one failure, not an ExceptionGroup
        test()
    assert type(info.value).__name__ == "_ForwardError"
    message = str(info.value)
    assert message.startswith("_MatMul.forward raised"), message
    assert "check_gradients(fn, shapes=[(2, 3), (3, 4)])" in message
    check_gradients(_MatMul.apply, shapes=[(2, 3), (3, 4)], max_examples=5)()


def test_only_element_wise_ops_report_a_local_derivative():
    class WrongSoftmax(autodiff.Function):  # s (1 - s): only the Jacobian's diagonal
        @staticmethod
        def forward(ctx, z):
            s = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
            ctx.save_for_backward(s)
            return s

        @staticmethod
        def backward(ctx, grad):
            (s,) = ctx.saved_tensors
            return grad * s * (1 - s)

    with pytest.raises(AssertionError) as info:
        assert_gradients_match(
            WrongSoftmax.apply, autodiff.tensor([0.5, -1.0, 2.0], requires_grad=True)
        )
    message = str(info.value)
    assert "WrongSoftmax.backward: the gradient of input 0 (z)" in message
    assert "element-wise" not in message


# -- check_graph: the first wrong op of a whole network ---------------------------------


class _ReLU(autodiff.Function):
    """y = max(x, 0)        dL/dx = dL/dy * [x > 0]"""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return np.maximum(x, 0)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * (x > 0)


class _ReLUTimesTwo(_ReLU):
    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * (x > 0) * 2.0  # the planted bug


def _small_cnn_loss(relu):
    autodiff.manual_seed(0)
    conv1, conv2 = nn.Conv2d(1, 4, 3, padding=1), nn.Conv2d(4, 6, 3, padding=1)
    fc = nn.Linear(6 * 2 * 2, 10)
    X, y = autodiff.randn(3, 1, 8, 8), autodiff.tensor([3, 7, 0])

    def loss():
        h = F.max_pool2d(F.relu(conv1(X)), 2)
        h = F.max_pool2d(relu(conv2(h)), 2)
        return F.cross_entropy(fc(h.flatten(1)), y)

    return loss


def test_check_graph_passes_a_right_cnn():
    report = check_graph(_small_cnn_loss(F.relu))
    assert report, report
    assert report.wrong is None
    assert report.ops[0].name == "CrossEntropy"  # backward order: the loss's op first
    assert all(op.status == "right" for op in report.ops)
    assert "Every op's backward matches finite differences" in str(report)
    # where each op comes from: the lecture's layer and the module that ran it
    assert report.ops[0].where == "cross_entropy"
    assert {op.where for op in report.ops if op.name == "Conv2d"} == {"conv2d, Conv2d"}


def test_check_graph_finds_a_planted_bug_inside_a_cnn():
    loss = _small_cnn_loss(_ReLUTimesTwo.apply)
    report = check_graph(loss)
    assert not report
    wrong = report.wrong
    assert wrong.name == "_ReLUTimesTwo" and wrong.status == "wrong"
    assert [op.status for op in report.ops].count("wrong") == 1
    assert all(op.status == "right" for op in report.ops[: wrong.step - 1])
    assert "expected 1 (finite differences), got 2 (_ReLUTimesTwo.backward)" in wrong.message
    text = str(report)
    assert f"The first wrong op is op {wrong.step} in backward order, _ReLUTimesTwo" in text
    # the right hand-written ReLU passes in the same place
    assert check_graph(_small_cnn_loss(_ReLU.apply))


def test_check_graph_allows_kinks_where_the_network_really_has_them():
    x = autodiff.zeros(1, 2, 4, 4, requires_grad=True)  # relu at 0, all-tied pooling windows
    w = autodiff.tensor([[0.0, 1.0, -1.0]], requires_grad=True)
    v = autodiff.randn(1, 2, 2, 2)
    report = check_graph(lambda: (F.max_pool2d(F.relu(x), 2) * v).sum() + F.relu(w).sum())
    assert report, report


def test_check_graph_names_a_backward_that_raises_and_leaves_the_graph_alone():
    class Broken(_ReLU):
        @staticmethod
        def backward(ctx, grad):
            (x,) = ctx.saved_tensors
            return grad @ x  # (2, 3) @ (2, 3)

    x = autodiff.randn(2, 3, requires_grad=True)
    with record_inputs():
        loss = (Broken.apply(x) * 3).sum()
    report = check_graph(loss)
    assert report.wrong.name == "Broken"
    assert "Broken.backward raised" in report.wrong.message
    assert x.grad is None and report.ops[0].status == "right"


def test_check_graph_needs_the_inputs_each_op_saw():
    x = autodiff.randn(3, requires_grad=True)
    with pytest.raises(ValueError, match=r"inputs of 2 of the 2 ops were not recorded"):
        check_graph((x * 2).sum())
    with pytest.raises(ValueError, match="no recorded graph"):
        check_graph(autodiff.tensor(1.0))
    with pytest.raises(TypeError, match="expected a function that computes the loss"):
        check_graph(3.0)


def test_check_gradients_takes_hypothesis_settings_applied_to_it():
    calls = []

    class CountedCube(Cube):
        @staticmethod
        def forward(ctx, x):
            calls.append(x.shape)
            return Cube.forward(ctx, x)

    test = settings(max_examples=3, database=None, derandomize=True)(
        check_gradients(CountedCube.apply, elements=(-3, 3))
    )
    test()
    runs = len(calls)
    assert runs > 0
    test()  # runs again (the settings are read at each run, not frozen in)
    assert len(calls) == 2 * runs
    wrong = settings(max_examples=10, database=None)(check_gradients(_WrongCube.apply))
    with pytest.raises(AssertionError, match=r"_WrongCube\.backward: the gradient of input 0"):
        wrong()
