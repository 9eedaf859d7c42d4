"""gradcheck and gradgradcheck: pass for the built-in ops, fail with a precise message
for a deliberately wrong custom Function."""

from __future__ import annotations

import re

import numpy as np
import pytest
from _helpers import CubeWithConstantSlope, Multiply
from hypothesis import given, settings
from hypothesis import strategies as st
from test_ops import GRAD_OPS  # the one op table

import autodiff
from autodiff.gradcheck import GradcheckError


def t64(values, requires_grad=True):
    return autodiff.tensor(np.asarray(values, dtype=np.float64), requires_grad=requires_grad)


# -- every built-in op passes ------------------------------------------------------------------


@pytest.mark.parametrize("op", GRAD_OPS, ids=repr)
@settings(max_examples=5)
@given(data=st.data())
def test_gradcheck_passes_for_every_built_in_op(op, data):
    assert autodiff.gradcheck(*drawn_call(op, data))


def drawn_call(op, data):
    """(the op as a function of its tensors, float64 leaves drawn from its table row)."""
    arrays_, params = data.draw(op.inputs)
    return (lambda *ts: op.fn(autodiff, *ts, **params)), tuple(t64(a) for a in arrays_)


# Ops whose second derivatives exist everywhere in their table domain (relu, abs, max,
# clamp... are piecewise linear: their second derivative is 0 and checks trivially).
# prod is checked in test_engine (with zeros): over the table's values its products reach
# 1e60, where finite differences of the zero diagonal of its Hessian are noise.
SMOOTH = {
    "add",
    "sub",
    "mul",
    "div",
    "pow_tensor",
    "neg",
    "matmul",
    "exp",
    "log",
    "sqrt",
    "rsqrt",
    "sin",
    "cos",
    "tanh",
    "sigmoid",
    "square",
    "reciprocal",
    "pow_float",
    "pow_negative",
    "rpow_scalar",
    "rdiv_scalar",
    "var",
    "std",
    "logsumexp",
    "mean",
    "sum",
    "getitem_int_array",
    "cat",
    "pad",
    "where",
    "maximum",
    "relu",
    "abs",
    "max_dim",
}
SECOND_ORDER_OPS = [op for op in GRAD_OPS if op.name in SMOOTH]


def test_second_order_table_covers_the_named_ops():
    assert {op.name for op in SECOND_ORDER_OPS} == SMOOTH


@pytest.mark.parametrize("op", SECOND_ORDER_OPS, ids=repr)
@settings(max_examples=4)
@given(data=st.data())
def test_gradgradcheck_passes_for_ops_with_second_derivatives(op, data):
    assert autodiff.gradgradcheck(*drawn_call(op, data), atol=1e-4)


def test_gradcheck_on_composed_functions():
    x = t64(np.random.default_rng(0).standard_normal((3, 4)))
    w = t64(np.random.default_rng(1).standard_normal((4, 2)))
    assert autodiff.gradcheck(lambda a, b: (a @ b).softmax(dim=1), (x, w))
    assert autodiff.gradcheck(lambda a, b: (a @ b).log_softmax(dim=1), (x, w))
    assert autodiff.gradgradcheck(lambda a, b: ((a @ b).tanh() ** 2).sum(), (x, w))
    assert autodiff.gradcheck(lambda a, b: (a @ b).tanh(), (x, w), fast_mode=True)


# -- a wrong custom Function fails with a precise message -----------------------------------------


class WrongSquare(autodiff.Function):
    """y = x^2 with the wrong derivative x (not 2 x)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x**2

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * x


class SecondOutputWrong(Multiply):
    """Output of y = x * w whose gradient for w is off by one for entry [1]."""

    @staticmethod
    def backward(ctx, grad):
        x, w = ctx.saved_tensors
        offset = autodiff.tensor(np.array([0.0, 1.0]))
        return grad * w, grad * (x + offset)


def test_gradcheck_fails_for_a_wrong_function():
    x = t64([1.0, -2.0, 3.0])
    with pytest.raises(GradcheckError) as info:
        autodiff.gradcheck(WrongSquare.apply, (x,))
    message = str(info.value)
    assert "Jacobian mismatch for output 0 with respect to input 0" in message
    # the worst entry is d y[2] / d x[2]: numerical 6, analytical 3
    assert re.search(
        r"Worst entry: d output0\[2\] / d input0\[2\].*numerical 6\.0\d*, analytical 3\.0", message
    )
    assert "numerical:" in message and "analytical:" in message  # the small Jacobians
    assert isinstance(info.value, RuntimeError)
    assert autodiff.gradcheck(WrongSquare.apply, (x,), raise_exception=False) is False


def test_gradcheck_names_the_right_input_and_output():
    x, w = t64([1.0, 2.0]), t64([3.0, 4.0])

    def two_outputs(a, b):
        return a.exp(), SecondOutputWrong.apply(a, b)

    with pytest.raises(GradcheckError) as info:
        autodiff.gradcheck(two_outputs, (x, w))
    message = str(info.value)
    assert "output 1 with respect to input 1" in message
    assert re.search(
        r"d output1\[1\] / d input1\[1\] \(Jacobian row 1, column 1\): numerical 2\.0\d*, analytical 3\.0",
        message,
    )


def test_fast_mode_also_catches_it():
    x = t64([1.0, -2.0, 3.0])
    with pytest.raises(GradcheckError, match=r"fast mode.*output 0 with respect to input 0"):
        autodiff.gradcheck(WrongSquare.apply, (x,), fast_mode=True)


def test_gradgradcheck_catches_a_backward_that_is_not_differentiable():
    x = t64([0.5, -1.0])
    assert autodiff.gradcheck(CubeWithConstantSlope.apply, (x,))
    with pytest.raises(
        GradcheckError,
        match="gradgradcheck: Jacobian mismatch for output 0 with respect to input 0",
    ):
        autodiff.gradgradcheck(CubeWithConstantSlope.apply, (x,))


def test_gradgradcheck_with_given_grad_outputs():
    x = t64([0.5, -1.0])
    v = t64([1.0, 2.0])
    assert autodiff.gradgradcheck(lambda t: t.sin() * t, (x,), (v,))
    with pytest.raises(ValueError, match="2 grad_outputs for 1 differentiable outputs"):
        autodiff.gradgradcheck(lambda t: t.sin(), (x,), (v, v))


def test_gradcheck_warns_about_float32():
    x = autodiff.tensor([1.0, 2.0], requires_grad=True)
    with pytest.warns(
        UserWarning, match="input 0 requires gradient and has dtype float32, not float64"
    ):
        autodiff.gradcheck(lambda t: t * 2, (x,), eps=1e-2, atol=1e-2)


def test_gradcheck_argument_errors():
    with pytest.raises(ValueError, match="at least one input tensor with requires_grad=True"):
        autodiff.gradcheck(lambda t: t * 2, (t64([1.0], requires_grad=False),))
    with pytest.raises(ValueError, match="no floating point tensor output"):
        autodiff.gradcheck(lambda t: t > 0, (t64([1.0]),))


def test_gradcheck_accepts_a_single_tensor_and_non_tensor_arguments():
    x = t64([0.3, 0.7])
    assert autodiff.gradcheck(lambda t: t.exp(), x)
    assert autodiff.gradcheck(lambda t, k: t * k, (x, 3.0))
    assert x.grad is None  # the caller's tensors keep no gradient
    np.testing.assert_array_equal(x.data, [0.3, 0.7])  # nor a perturbation


def test_empty_outputs_check_trivially():
    # Regression: an empty output (a mask selecting nothing) crashed the numerical Jacobian.
    x = t64([0.5, -1.0])
    assert autodiff.gradcheck(lambda t: t[t > 100], (x,))
    assert autodiff.gradgradcheck(lambda t: t[t > 100] * 2, (x,))


def test_gradcheck_with_a_non_leaf_input():
    x = t64([0.3, 0.7])
    h = x * 2  # a non-leaf requiring grad
    assert autodiff.gradcheck(lambda t: t.sin(), (h,))


def test_check_grad_dtypes():
    class Float32Grad(autodiff.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, grad):
            return grad.float() * 2

    x = t64([0.5])
    # the engine casts the gradient back to float64, so even this passes the dtype check
    assert autodiff.gradcheck(Float32Grad.apply, (x,), check_grad_dtypes=True, atol=1e-5)


@pytest.mark.torch
def test_signatures_match_pytorch():
    torch = pytest.importorskip("torch")
    import inspect

    import autodiff.functional as functional

    pairs = [
        (autodiff.gradcheck, torch.autograd.gradcheck),
        (autodiff.gradgradcheck, torch.autograd.gradgradcheck),
    ] + [
        (getattr(functional, name), getattr(torch.autograd.functional, name))
        for name in ["jacobian", "hessian", "vjp", "jvp", "hvp", "vhp"]
    ]
    for ours, theirs in pairs:
        ours_params = inspect.signature(ours).parameters
        theirs_params = inspect.signature(theirs).parameters
        assert set(ours_params) == set(theirs_params), ours.__name__

        def positional(params):
            return [n for n, p in params.items() if p.kind is p.POSITIONAL_OR_KEYWORD]

        assert positional(ours_params) == positional(theirs_params), ours.__name__
        for name, param in theirs_params.items():
            assert ours_params[name].default == param.default, f"{ours.__name__}({name}=...)"
