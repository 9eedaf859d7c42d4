"""Regression tests for the edges of issue 11: zeros, ties, NaN, empty tensors.

Each case was wrong (a NaN gradient, a crash, a silently accepted mistake) and
is pinned here twice: by the exact value PyTorch gives (so the test means
something without PyTorch installed) and, where PyTorch is installed, against
PyTorch itself.  The broad sweep over every op lives in test_differential.py.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

import autodiff
import nn
import nn.functional as F  # noqa: N812 (as torch.nn.functional is imported)

NAN, INF = math.nan, math.inf


def grads(lib, fn, values, order=1, upstream=None):
    """The first ``order`` derivatives of ``fn`` at ``values`` (float64), as lists.

    Each derivative is taken of the previous one's sum (with create_graph), so
    order 2 is the diagonal of the Hessian for elementwise functions.
    """
    x = lib.tensor(values, dtype=lib.float64, requires_grad=True)
    out = fn(lib, x)
    target = (out * lib.tensor(upstream, dtype=lib.float64)).sum() if upstream else out.sum()
    found = []
    for _ in range(order):
        grad_fn = lib.autograd.grad if lib is not autodiff else autodiff.grad
        (g,) = grad_fn(target, x, create_graph=True)
        found.append(g.detach().numpy(force=True).tolist())
        target = g.sum()
    return found


def check(torch, fn, values, expected, order=1, upstream=None):
    ours = grads(autodiff, fn, values, order, upstream)
    np.testing.assert_array_equal(np.array(ours, dtype=float), np.array(expected, dtype=float))
    if torch is not None:
        theirs = grads(torch, fn, values, order, upstream)
        np.testing.assert_array_equal(np.array(ours, dtype=float), np.array(theirs, dtype=float))


def functional(lib):
    return F if lib is autodiff else lib.nn.functional


# -- wrong gradients, silent ----------------------------------------------------------


@pytest.mark.parametrize("correction", [0, 1])
@pytest.mark.parametrize("dim", [None, 0, 1])
def test_std_of_a_constant_has_gradient_zero(torch_or_none, correction, dim):
    def fn(lib, x):
        return x.reshape(2, 3).std(dim=dim, correction=correction)

    check(torch_or_none, fn, [2.0] * 6, [[0.0] * 6], upstream=None)


def test_var_of_a_constant_has_gradient_zero(torch_or_none):
    check(torch_or_none, lambda lib, x: x.var(), [5.0, 5.0, 5.0], [[0.0, 0.0, 0.0]])


def test_x_to_the_zero_at_zero(torch_or_none):
    check(torch_or_none, lambda lib, x: x**0, [0.0, 2.0], [[0.0, 0.0]])
    check(torch_or_none, lambda lib, x: x**0.0, [0.0, -0.0], [[0.0, 0.0]])

    def tensor_exponent(lib, x):
        return x ** lib.zeros(2, dtype=lib.float64)

    check(torch_or_none, tensor_exponent, [0.0, 2.0], [[0.0, 0.0]])


def test_square_root_as_a_power_at_negative_zero(torch_or_none):
    # PyTorch computes x ** 0.5 as sqrt and x ** -0.5 as rsqrt: signed zeros and infinities
    check(torch_or_none, lambda lib, x: x**0.5, [-0.0, 0.0], [[-INF, INF]])
    check(torch_or_none, lambda lib, x: x**-0.5, [4.0], [[-1 / 16]])


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([1.0, 0.0], [[INF, -INF], [-INF, NAN]]),
        ([-1.0, 0.0], [[INF, INF], [-INF, -INF]]),
        ([1.0, 1e-300], [[1 / 1e-300, -INF], [-INF, NAN]]),
    ],
)
def test_second_derivatives_of_a_quotient_at_a_zero_denominator(torch_or_none, values, expected):
    """dL/dy = -g ((x / y) / y), PyTorch's order: -g x / (y y) gave NaN for its inf."""
    check(torch_or_none, lambda lib, x: x[0] / x[1], values, expected, order=2)


def test_higher_derivatives_of_powers_at_zero(torch_or_none):
    check(torch_or_none, lambda lib, x: x**1, [0.0, 1.0], [[1.0, 1.0], [0.0, 0.0]], order=2)
    check(
        torch_or_none,
        lambda lib, x: x**2,
        [0.0, 1.0],
        [[0.0, 2.0], [2.0, 2.0], [0.0, 0.0]],
        order=3,
    )


def hessian_of_a_power(lib, base, exponent, upstream=1.0):
    """z = base ** exponent (a tensor exponent that requires grad, base a tensor or a
    number): its first derivatives [dz/d base, dz/dp] and their rows of second
    derivatives [[d/d base, d/dp] of each], float64, in the order of the leaves."""
    p = lib.tensor(exponent, dtype=lib.float64, requires_grad=True)
    leaves = (p,)
    if isinstance(base, list):  # a tensor base, [value]
        x = lib.tensor(base[0], dtype=lib.float64, requires_grad=True)
        leaves = (x, p)
        z = x**p
    else:
        z = base**p
    grad = lib.autograd.grad if lib is not autodiff else autodiff.grad
    first = grad(z, leaves, lib.tensor(upstream, dtype=lib.float64), create_graph=True)
    rows = []
    for f in first:
        second = grad(f, leaves, allow_unused=True, retain_graph=True)
        rows.append([0.0 if s is None else s.item() for s in second])
    return [f.item() for f in first], rows


def check_power(torch, base, exponent, expected_first, expected_rows, upstream=1.0):
    for lib in (autodiff, torch) if torch is not None else (autodiff,):
        first, rows = hessian_of_a_power(lib, base, exponent, upstream)
        np.testing.assert_array_equal(first, expected_first, err_msg=f"{lib.__name__} d/d")
        np.testing.assert_array_equal(rows, expected_rows, err_msg=f"{lib.__name__} d2/d")


@pytest.mark.parametrize(
    ("exponent", "first", "rows"),
    [
        (0.0, [0.0, 0.0], [[NAN, NAN], [NAN, NAN]]),
        (0.5, [INF, 0.0], [[-INF, NAN], [NAN, NAN]]),
        (1.0, [1.0, 0.0], [[0.0, 1.0], [NAN, NAN]]),
        (2.0, [0.0, 0.0], [[2.0, 0.0], [NAN, NAN]]),
        (3.0, [0.0, 0.0], [[0.0, 0.0], [NAN, NAN]]),
        (-1.0, [-INF, -INF], [[INF, INF], [INF, INF]]),
        (NAN, [NAN, NAN], [[NAN, NAN], [NAN, NAN]]),
    ],
)
def test_second_derivatives_of_a_power_at_zero_through_the_exponent(
    torch_or_none, exponent, first, rows
):
    """dL/dp = dL/dz * where(x == 0 and p >= 0, 0, z log x), PyTorch's: the masked
    branch still has log 0 = -inf, so d/dx and d/dp of dL/dp are NaN there (0 * -inf);
    they were 0 here (log of x replaced by log 1). A NaN exponent is not >= 0, so its
    dL/dp is NaN (it was 0)."""
    check_power(torch_or_none, [0.0], exponent, first, rows)


@pytest.mark.parametrize(
    ("exponent", "first", "d2"),
    [(0.0, 0.0, NAN), (2.0, 0.0, NAN), (-1.0, -INF, INF), (NAN, NAN, NAN)],
)
def test_second_derivative_of_zero_to_a_tensor_power(torch_or_none, exponent, first, d2):
    """0.0 ** p: the same rule, with log 0 = -inf a constant."""
    check_power(torch_or_none, 0.0, exponent, [first], [[d2]])


@pytest.mark.parametrize(
    ("base", "exponent", "upstream", "expected"),
    [
        (3.0, 2.5, 0.7, 11.98796950129396),  # (g * z) * log x: 11.987969501293959
        (2.0, 1.7, 0.7, 1.5764292836246747),  # (g * z) * log x: 1.5764292836246745
    ],
)
def test_derivative_in_the_exponent_has_pytorchs_bits(
    torch_or_none, base, exponent, upstream, expected
):
    """dL/dp = dL/dz * (z log x), multiplied in PyTorch's order (not (dL/dz z) log x,
    one ulp off for a third of upstream gradients other than 1)."""
    for lib in (autodiff, torch_or_none) if torch_or_none is not None else (autodiff,):
        first, _ = hessian_of_a_power(lib, [base], exponent, upstream)
        assert first[1] == expected, lib.__name__


@pytest.mark.parametrize(("base", "exponent"), [(0.5, 1e300), (2.0, -1e300)])
def test_second_derivatives_of_a_power_whose_slope_underflows(torch_or_none, base, exponent):
    """dL/dx = dL/dz * (p x^(p-1)), PyTorch's order: p x^(p-1) is 0 before the upstream
    gradient multiplies it; (dL/dz p) x^(p-1) made d2/dx2 inf * 0 = NaN."""
    first = [0.0, -0.0] if exponent > 0 else [-0.0, 0.0]
    check_power(torch_or_none, [base], exponent, first, [[0.0, 0.0], [0.0, 0.0]], upstream=0.3)


def test_derivative_in_the_base_has_pytorchs_bits(torch_or_none):
    """dL/dx = dL/dz * (p x^(p-1)), not (dL/dz p) x^(p-1): 2.121320343559643."""
    for lib in (autodiff, torch_or_none) if torch_or_none is not None else (autodiff,):
        first, _ = hessian_of_a_power(lib, [2.0], 2.5, 0.3)
        assert first[0] == 2.1213203435596424, lib.__name__


def test_binary_cross_entropy_at_zero_and_one(torch_or_none):
    def bce(lib, x):
        target = lib.tensor([1.0, 0.0, 1.0, 0.0], dtype=lib.float64)
        return functional(lib).binary_cross_entropy(x, target, reduction="none")

    bound = 1 / float(np.float32(1e-12))  # PyTorch's bound on x (1 - x), in float32
    check(torch_or_none, bce, [0.0, 1.0, 1e-20, 0.5], [[-bound, bound, -bound, 2.0]])


def test_binary_cross_entropy_of_a_saturated_sigmoid_in_float32_stays_finite(torch_or_none):
    for lib in (autodiff, torch_or_none) if torch_or_none else (autodiff,):
        logits = lib.tensor([200.0, -200.0], requires_grad=True)
        target = lib.tensor([0.0, 1.0])
        loss = functional(lib).binary_cross_entropy(logits.sigmoid(), target)
        loss.backward()
        assert np.isfinite(loss.item()) and loss.item() == pytest.approx(100.0)
        assert np.all(np.isfinite(logits.grad.numpy()))


@pytest.mark.parametrize(
    "cast",
    [
        lambda x: x.long(),
        lambda x: x.int(),
        lambda x: x.bool(),
        lambda x: x.to(autodiff.int64),
        lambda x: x.type(autodiff.int32),
    ],
)
def test_casting_to_integers_or_bool_leaves_the_graph(cast):
    x = autodiff.tensor([1.5, -2.0], requires_grad=True)
    y = cast(x)
    assert not y.requires_grad and y.grad_fn is None
    assert x.double().requires_grad  # float to float keeps the graph


def test_casting_to_integers_leaves_the_graph_as_in_torch(torch):
    x = torch.tensor([1.5], requires_grad=True)
    assert not x.long().requires_grad and not x.bool().requires_grad


def test_clamp_with_tensor_bounds_gives_ties_to_x(torch_or_none):
    def fn(lib, x):
        low = lib.tensor([1.0, 0.0, 5.0], dtype=lib.float64)
        high = lib.tensor([2.0, 0.0, 4.0], dtype=lib.float64)  # the last: low > high
        return x.clamp(low, high)

    check(torch_or_none, fn, [1.0, 0.0, 4.5], [[1.0, 1.0, 0.0]])


def test_clamp_bounds_receive_their_gradients(torch_or_none):
    def run(lib):
        x = lib.tensor([0.0, 3.0, 1.0, 6.0], dtype=lib.float64, requires_grad=True)
        low = lib.tensor([1.0, 1.0, 1.0, 5.0], dtype=lib.float64, requires_grad=True)
        high = lib.tensor([2.0, 2.0, 2.0, 4.0], dtype=lib.float64, requires_grad=True)
        out = x.clamp(low, high)
        out.backward(lib.tensor([1.0, 2.0, 3.0, 4.0], dtype=lib.float64))
        return [t.grad.numpy().tolist() for t in (x, low, high)] + [out.detach().numpy().tolist()]

    ours = run(autodiff)
    assert ours == [[0, 0, 3, 0], [1, 0, 0, 0], [0, 2, 0, 4], [1, 2, 1, 4]]
    if torch_or_none is not None:
        assert ours == run(torch_or_none)


def test_nan_inputs(torch_or_none):
    check(torch_or_none, lambda lib, x: x.relu(), [NAN, 1.0, -1.0, 0.0], [[1.0, 1.0, 0.0, 0.0]])
    check(
        torch_or_none,
        lambda lib, x: lib.maximum(x, lib.zeros_like(x)),
        [NAN, 1.0, 0.0],
        [[1.0, 1.0, 0.5]],
    )
    check(torch_or_none, lambda lib, x: x.max(), [NAN], [[1.0]])
    check(torch_or_none, lambda lib, x: x.min(), [NAN, 1.0, NAN], [[0.5, 0.0, 0.5]])
    check(torch_or_none, lambda lib, x: x.abs(), [NAN, 0.0, -0.0], [[0.0, 0.0, 0.0]])
    check(torch_or_none, lambda lib, x: functional(lib).elu(x), [NAN, 0.0], [[1.0, 1.0]])
    check(torch_or_none, lambda lib, x: functional(lib).leaky_relu(x), [NAN], [[0.01]])


def test_maximum_gives_both_sides_the_gradient_for_nan(torch_or_none):
    def run(lib):
        x = lib.tensor([NAN, 1.0, 2.0], dtype=lib.float64, requires_grad=True)
        y = lib.tensor([0.0, NAN, 2.0], dtype=lib.float64, requires_grad=True)
        lib.maximum(x, y).sum().backward()
        return x.grad.numpy().tolist(), y.grad.numpy().tolist()

    ours = run(autodiff)
    assert ours == ([1.0, 1.0, 0.5], [1.0, 1.0, 0.5])
    if torch_or_none is not None:
        assert ours == run(torch_or_none)


def test_maximum_of_a_tensor_with_itself(torch_or_none):
    # both arguments are x: each takes half at the tie, x receives g in total
    check(torch_or_none, lambda lib, x: lib.maximum(x, x), [1.0, -2.0], [[1.0, 1.0]])
    check(torch_or_none, lambda lib, x: lib.minimum(x, x), [1.0, -2.0], [[1.0, 1.0]])


def test_elu_second_derivative_at_zero(torch_or_none):
    e = math.exp(-1)
    check(
        torch_or_none,
        lambda lib, x: functional(lib).elu(x),
        [0.0, -1.0, 1.0],
        [[1.0, e, 1.0], [0.0, e, 0.0]],
        order=2,
    )

    def elu2(lib, x):
        return functional(lib).elu(x, alpha=2.0)

    check(torch_or_none, elu2, [0.0, -1.0], [[2.0, 2 * e], [0.0, 2 * e]], order=2)


@pytest.mark.parametrize("name", ["relu", "abs", "leaky_relu"])
def test_gradients_of_piecewise_linear_ops_can_be_differentiated_again(torch_or_none, name):
    def fn(lib, x):
        if name == "leaky_relu":
            return functional(lib).leaky_relu(x, 0.1)
        return getattr(x, name)()

    first = {"relu": [1.0, 0.0], "abs": [1.0, -1.0], "leaky_relu": [1.0, 0.1]}[name]
    check(torch_or_none, fn, [2.0, -3.0], [first, [0.0, 0.0]], order=2)
    x = autodiff.tensor([2.0, -3.0], requires_grad=True)
    (g,) = autodiff.grad(fn(autodiff, x).sum(), x, create_graph=True)
    assert g.requires_grad


def test_sign_floor_ceil_round_have_zero_gradients(torch_or_none):
    for name in ("sign", "floor", "ceil", "round"):
        check(torch_or_none, lambda lib, x, n=name: getattr(x, n)(), [1.5, -0.5, 0.0], [[0, 0, 0]])
    check(torch_or_none, lambda lib, x: x.sign() * x, [NAN, -2.0], [[0.0, -1.0]])


def prod_gradient(lib, values, upstream, dim=None, create_graph=False):
    """dL/dx of x.prod(dim) for the upstream gradient, float64, signs of zero kept."""
    x = lib.tensor(values, dtype=lib.float64, requires_grad=True)
    y = x.prod() if dim is None else x.prod(dim)
    grad = lib.autograd.grad if lib is not autodiff else autodiff.grad
    (g,) = grad(y, x, lib.tensor(upstream, dtype=lib.float64), create_graph=create_graph)
    return g.detach().numpy(force=True)


def assert_same_bits(ours, expected):
    """Equal, NaN where NaN, and the same sign for every zero."""
    ours, expected = np.asarray(ours, dtype=float), np.asarray(expected, dtype=float)
    np.testing.assert_array_equal(ours, expected)
    zero = expected == 0
    np.testing.assert_array_equal(np.signbit(ours[zero]), np.signbit(expected[zero]))


@pytest.mark.parametrize(
    ("values", "upstream"),
    [
        ([0.0, 0.0, INF], 1.0),  # was [nan, nan, 0] (0 * inf at the zeros)
        ([0.0, NAN, 0.0, -2.0], 0.5),  # was [nan, nan, nan, nan]
        ([0.0, -0.0, 2.0], 1.0),  # was [-0, 0, -0]: the shortcut's zeros are +0
        ([0.0, 0.0, 3.0], NAN),  # a NaN upstream gradient too: was [nan, nan, nan]
    ],
)
def test_prod_over_all_elements_with_two_zeros_has_gradient_zero(torch_or_none, values, upstream):
    """PyTorch's prod_backward: two or more zeros make every product of the others 0,
    and PyTorch returns zeros without computing them (without create_graph)."""
    expected = [0.0] * len(values)
    assert_same_bits(prod_gradient(autodiff, values, upstream), expected)
    if torch_or_none is not None:
        assert_same_bits(prod_gradient(torch_or_none, values, upstream), expected)


@pytest.mark.parametrize(
    ("values", "kwargs", "expected"),
    [
        # along a dim there is no shortcut: 0 * inf, in both
        ([0.0, 0.0, INF], {"dim": 0}, [NAN, NAN, 0.0]),
        # with create_graph, PyTorch's products of the others (cumprod) and ours agree
        ([0.0, 0.0, INF], {"create_graph": True}, [NAN, NAN, 0.0]),
        # one zero: the product of the others (0 * inf = NaN next to an inf)
        ([0.0, INF, 2.0], {}, [INF, 0.0, NAN]),
    ],
)
def test_prod_with_zeros_without_the_shortcut(torch_or_none, values, kwargs, expected):
    assert_same_bits(prod_gradient(autodiff, values, 1.0, **kwargs), expected)
    if torch_or_none is not None:
        assert_same_bits(prod_gradient(torch_or_none, values, 1.0, **kwargs), expected)


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (INF, 0.7),  # 0-d: dL/dy itself, not dL/dy * inf / inf = NaN
        (NAN, 0.7),
        ([2.0, 1.1, 5.0], [3.8499999999999996, 7.0, 1.54]),  # dL/dy * (y / x), not (dL/dy y) / x
    ],
)
def test_prod_gradient_has_pytorchs_bits(torch_or_none, values, expected):
    assert_same_bits(prod_gradient(autodiff, values, 0.7), expected)
    if torch_or_none is not None:
        assert_same_bits(prod_gradient(torch_or_none, values, 0.7), expected)


def test_second_derivatives_of_prod_with_one_zero(torch_or_none):
    """Through the exclusive products, recorded with create_graph (cumprod's derivative)."""

    def fn(lib, x):
        return x.prod()

    check(torch_or_none, fn, [0.0, 2.0, 3.0], [[6.0, 0.0, 0.0], [5.0, 3.0, 2.0]], order=2)


# -- wrong values ----------------------------------------------------------------------


def test_one_log_softmax_stable_for_huge_float32_logits(torch_or_none):
    logits = [1e8, 1e8, 0.0]
    expected = [-math.log(2), -math.log(2), -1e8]
    method = autodiff.tensor(logits).log_softmax(0)
    function = F.log_softmax(autodiff.tensor(logits), dim=0)
    assert method.dtype == np.float32
    np.testing.assert_allclose(method.numpy(), expected, rtol=1e-6)
    np.testing.assert_array_equal(method.numpy(), function.numpy())
    if torch_or_none is not None:
        theirs = torch_or_none.tensor(logits).log_softmax(0).numpy()
        np.testing.assert_allclose(method.numpy(), theirs, rtol=1e-6)


SIGNED_ZERO_OPS = {
    "relu": lambda lib, x: x.relu(),
    "relu_": lambda lib, x: x.clone().relu_(),
    "F.relu(inplace)": lambda lib, x: functional(lib).relu(x.clone(), inplace=True),
    "nn.ReLU": lambda lib, x: (nn if lib is autodiff else lib.nn).ReLU()(x),
    "elu": lambda lib, x: functional(lib).elu(x),
    "clamp(min=0)": lambda lib, x: x.clamp(min=0.0),
    "clamp(max=0)": lambda lib, x: x.clamp(max=0.0),
    "clamp(-0.0, 1)": lambda lib, x: x.clamp(-0.0, 1.0),
}


@pytest.mark.parametrize("size", [8, 5000])  # 5000: ReLU's blocked float32 path
@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
@pytest.mark.parametrize("name", list(SIGNED_ZERO_OPS))
def test_signed_zeros_keep_their_sign_as_in_pytorch(torch_or_none, name, dtype, size):
    """relu(-0.0) is -0.0 in PyTorch (clamp_min keeps x at a tie); NumPy's
    maximum(x, 0) and clip return +0.0, which assert_allclose cannot see."""
    values = np.resize(np.array([-0.0, 0.0, -1.0, NAN, 2.0, INF, -INF, 0.5]), size)
    fn = SIGNED_ZERO_OPS[name]
    ours = fn(autodiff, autodiff.tensor(values.astype(dtype))).numpy()
    assert ours.dtype == dtype
    negative_zero = (values == 0) & np.signbit(values)
    assert np.signbit(ours[negative_zero]).all(), "-0.0 became +0.0"
    assert not np.signbit(ours[(values == 0) & ~np.signbit(values)]).any()
    if torch_or_none is not None:
        theirs = fn(torch_or_none, torch_or_none.tensor(values.astype(dtype))).numpy()
        np.testing.assert_array_equal(ours, theirs)
        finite = ~np.isnan(theirs)
        np.testing.assert_array_equal(np.signbit(ours[finite]), np.signbit(theirs[finite]))


def test_log_softmax_is_one_implementation():
    # the functional form adds only PyTorch's dtype and implicit-dim handling
    x = autodiff.randn(3, 4, dtype=autodiff.float64, requires_grad=True)
    a, b = x.log_softmax(1), F.log_softmax(x, dim=1)
    np.testing.assert_array_equal(a.detach().numpy(), b.detach().numpy())
    assert a.grad_fn.name() == b.grad_fn.name()


# -- crashes on legal input --------------------------------------------------------------


@pytest.mark.parametrize("fn", [F.erf, F.gelu, lambda t: F.gelu(t, approximate="tanh")])
def test_erf_and_gelu_on_a_0d_tensor(torch_or_none, fn):
    x = autodiff.tensor(0.5, requires_grad=True)
    y = fn(x)
    y.backward()
    assert y.shape == () and x.grad.shape == ()
    if torch_or_none is not None:
        tx = torch_or_none.tensor(0.5, requires_grad=True)
        name = {F.erf: "erf"}.get(fn)
        ty = torch_or_none.erf(tx) if name else None
        if ty is not None:
            ty.backward()
            assert y.item() == pytest.approx(ty.item(), rel=1e-6)
            assert x.grad.item() == pytest.approx(tx.grad.item(), rel=1e-6)


def test_reductions_of_zero_element_tensors(torch_or_none):
    x = autodiff.zeros(0, 3, requires_grad=True)
    assert x.softmax(1).shape == (0, 3)
    assert autodiff.zeros(2, 0).softmax(1).shape == (2, 0)
    assert x.log_softmax(0).shape == (0, 3)
    assert x.amax(1).shape == (0,) and x.amin(1).shape == (0,)
    values, indices = x.max(1)
    assert values.shape == (0,) and indices.dtype == np.int64
    values, indices = x.min(1)
    assert values.shape == (0,) and indices.dtype == np.int64
    assert x.argmax(1).shape == (0,) and x.argmax(1).dtype == np.int64
    (x.amax(1).sum() + x.max(1).values.sum() + x.softmax(1).sum()).backward()
    assert x.grad.shape == (0, 3)
    _assert_max_over_no_elements_raises(x)
    if torch_or_none is not None:
        _assert_max_over_no_elements_raises(torch_or_none.zeros(0, 3))


def _assert_max_over_no_elements_raises(t):
    """For a (0, 3) tensor t (ours or PyTorch's): a max over the empty dim, or over all of t."""
    for call, kind in [
        (lambda: t.amax(0), IndexError),
        (lambda: t.max(0), IndexError),
        (lambda: t.argmax(0), IndexError),
        (lambda: t.amax(), RuntimeError),
        (lambda: t.max(), RuntimeError),
    ]:
        with pytest.raises(kind):
            call()


@pytest.mark.parametrize("length", [0, 1, 5, 6])
@pytest.mark.parametrize("chunks", [1, 2, 3, 4])
def test_chunk_sizes_match_torch(torch_or_none, length, chunks):
    ours = [p.shape for p in autodiff.zeros(length).chunk(chunks)]
    if length == 0:
        assert ours == [(0,)] * chunks
    if torch_or_none is not None:
        assert ours == [tuple(p.shape) for p in torch_or_none.zeros(length).chunk(chunks)]


def test_split_and_chunk_of_empty_tensors(torch_or_none):
    assert [p.shape for p in autodiff.zeros(0).split(1)] == [(0,)]
    assert [p.shape for p in autodiff.zeros(0, 2).split(0)] == [(0, 2)]
    for bad in (lambda: autodiff.zeros(3).chunk(0), lambda: autodiff.zeros(3).chunk(-1)):
        with pytest.raises(RuntimeError, match="chunk: expects `chunks` to be greater than 0"):
            bad()
    for bad in (lambda: autodiff.zeros(3).split(0), lambda: autodiff.zeros(3).split(-1)):
        with pytest.raises(RuntimeError, match="split"):
            bad()
    if torch_or_none is not None:
        assert len(torch_or_none.zeros(0).split(1)) == 1
        with pytest.raises(RuntimeError):
            torch_or_none.zeros(3).chunk(0)


def test_cat_skips_one_dimensional_empty_tensors(torch_or_none):
    for lib in (autodiff, torch_or_none) if torch_or_none else (autodiff,):
        empty, block = lib.zeros(0), lib.ones(2, 3)
        assert tuple(lib.cat([empty, empty], dim=-2).shape) == (0,)
        assert tuple(lib.cat([empty, block], dim=1).shape) == (2, 3)


def test_indexing_with_an_empty_list(torch_or_none):
    x = autodiff.zeros(3, 2, requires_grad=True)
    y = x[[]]
    assert y.shape == (0, 2)
    y.sum().backward()
    assert x.grad.shape == (3, 2)
    if torch_or_none is not None:
        assert tuple(torch_or_none.zeros(3, 2)[[]].shape) == y.shape


def test_reshape_and_unflatten_with_minus_one_on_zero_elements(torch_or_none):
    x = autodiff.zeros(0, 4)
    cases = [
        (lambda t: t.reshape(3, -1), (3, 0)),
        (lambda t: t.reshape(-1), (0,)),
        (lambda t: t.unflatten(1, (2, -1)), (0, 2, 2)),
        (lambda t: t.unflatten(0, (2, -1)), (2, 0, 4)),
        (lambda t: t.view(-1, 2), (0, 2)),
    ]
    for fn, shape in cases:
        assert fn(x).shape == shape
        if torch_or_none is not None:
            assert tuple(fn(torch_or_none.zeros(0, 4)).shape) == shape
    for fn in (lambda t: t.reshape(0, -1), lambda t: t.reshape(-1, 0)):
        with pytest.raises(RuntimeError, match="unspecified dimension"):
            fn(x)
        if torch_or_none is not None:
            with pytest.raises(RuntimeError):
                fn(torch_or_none.zeros(0, 4))


# -- nonsense accepted silently ------------------------------------------------------------


def test_embedding_rejects_negative_indices(torch_or_none):
    weight = autodiff.randn(3, 2)
    with pytest.raises(IndexError, match="embedding: index out of range"):
        F.embedding(autodiff.tensor([-1]), weight)
    if torch_or_none is not None:
        with pytest.raises(IndexError):
            torch_or_none.nn.functional.embedding(
                torch_or_none.tensor([-1]), torch_or_none.randn(3, 2)
            )


def test_integer_division_by_zero_raises(torch_or_none):
    for fn in (
        lambda lib: lib.tensor([3]) // 0,
        lambda lib: lib.tensor([3, 2]) // lib.tensor([1, 0]),
        lambda lib: lib.tensor([3]) % 0,
    ):
        with pytest.raises(RuntimeError, match="ZeroDivisionError"):
            fn(autodiff)
        if torch_or_none is not None:
            with pytest.raises(RuntimeError, match="ZeroDivisionError"):
                fn(torch_or_none)
    floats = autodiff.tensor([3.0, -3.0, 0.0]) // 0  # floats: inf, -inf, nan
    np.testing.assert_array_equal(floats.numpy(), [INF, -INF, NAN])


def test_masked_fill_needs_a_boolean_mask(torch_or_none):
    for mask in ([1.0, 0.0], [1, 0]):
        with pytest.raises(RuntimeError, match="masked_fill: only supports boolean masks"):
            autodiff.zeros(2).masked_fill(autodiff.tensor(mask), 1.0)
        if torch_or_none is not None:
            with pytest.raises(RuntimeError, match="only supports boolean masks"):
                torch_or_none.zeros(2).masked_fill(torch_or_none.tensor(mask), 1.0)
    filled = autodiff.zeros(2).masked_fill(autodiff.tensor([True, False]), 1.0)
    assert filled.tolist() == [1.0, 0.0]


def test_integer_to_a_negative_integer_power_is_a_dtype_error(torch_or_none):
    with pytest.raises(RuntimeError, match="negative integer powers") as info:
        autodiff.tensor([2]) ** -1
    assert not isinstance(info.value, autodiff.errors.ShapeError)
    assert (autodiff.tensor([2]) ** -1.0).tolist() == [0.5]
    # a tensor of exponents: PyTorch's integer results (1, +-1 or 0), no error
    powers = autodiff.tensor([0, 1, -1, 2, -1]) ** autodiff.tensor([-1, -1, -1, -1, -2])
    assert powers.tolist() == [0, 1, -1, 0, 1]
    if torch_or_none is not None:
        theirs = torch_or_none.tensor([0, 1, -1, 2, -1]) ** torch_or_none.tensor(
            [-1, -1, -1, -1, -2]
        )
        assert theirs.tolist() == powers.tolist()
    if torch_or_none is not None:
        with pytest.raises(RuntimeError, match="negative integer powers"):
            torch_or_none.tensor([2]) ** -1


def test_adaptive_avg_pool2d_keeps_inf_in_its_window(torch_or_none):
    values = np.array([[[[1.0, INF, 2.0], [3.0, 4.0, 5.0]]]])
    x = autodiff.tensor(values, requires_grad=True)
    y = F.adaptive_avg_pool2d(x, (1, 3))
    y.sum().backward()
    np.testing.assert_array_equal(y.detach().numpy(), [[[[2.0, INF, 3.5]]]])
    np.testing.assert_array_equal(x.grad.numpy(), np.full((1, 1, 2, 3), 0.5))
    if torch_or_none is not None:
        theirs = torch_or_none.nn.functional.adaptive_avg_pool2d(
            torch_or_none.tensor(values), (1, 3)
        )
        np.testing.assert_array_equal(y.detach().numpy(), theirs.numpy())


@pytest.mark.parametrize("padding", [0, 1])
def test_max_pool2d_picks_pytorchs_element_with_nan_and_minus_inf(torch_or_none, padding):
    # several NaNs in a window: the last one (PyTorch's kernel takes every NaN it meets);
    # an all -inf window next to the -inf padding: its first input element
    values = np.array([[[[NAN, 5.0, NAN, 1.0], [3.0, NAN, 0.5, -INF], [-INF, -INF, 2.0, -INF]]]])
    results = []
    for lib, pool in [(autodiff, F.max_pool2d)] + (
        [(torch_or_none, torch_or_none.nn.functional.max_pool2d)] if torch_or_none else []
    ):
        x = lib.tensor(values, requires_grad=True)
        y, indices = pool(x, 2, stride=1, padding=padding, return_indices=True)
        y.backward(lib.ones_like(y))
        results.append((indices.numpy().tolist(), x.grad.numpy().tolist()))
    assert results[0][0][0][0][0][0] == (5 if padding == 0 else 0)
    if len(results) == 2:
        assert results[0] == results[1]


# -- IEEE results are silent, as in PyTorch ------------------------------------------------


def test_no_numpy_warnings_for_ieee_results():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        x = autodiff.tensor([0.0, 1.0], requires_grad=True)
        x.sqrt().sum().backward()  # slope inf at 0
        assert x.grad.tolist() == [INF, 0.5]
        y = autodiff.tensor([1.0, 0.0, -1.0]) / 0.0
        np.testing.assert_array_equal(y.numpy(), [INF, NAN, -INF])
        z = autodiff.tensor([0.0], requires_grad=True)
        z.log().sum().backward()
        assert z.grad.tolist() == [INF]
        (autodiff.tensor([1000.0]).exp() * 0).sum()


# -- an empty list of dims: all of them, as in PyTorch --------------------------------------


@pytest.mark.parametrize("name", ["sum", "mean", "var", "std", "amax", "amin", "logsumexp"])
@pytest.mark.parametrize("dims", [(), []])
@pytest.mark.parametrize("keepdim", [False, True])
def test_an_empty_list_of_dims_reduces_all_of_them(name, dims, keepdim, torch_or_none):
    """PyTorch reads ``x.sum(())`` as the sum of every element, where NumPy's ``axis=()``
    reduces nothing; its var and std then have a gradient of +-inf, and its logsumexp
    raises without keepdim (README: Differences), so those are checked against dim=None."""
    x0 = np.array([[1.0, 2.0, 4.0], [3.0, 5.0, 9.0]])
    x = autodiff.tensor(x0, requires_grad=True)
    every = tuple(range(x0.ndim))  # an explicit list of all dims: the same reduction
    y = getattr(x, name)(dims, keepdim=keepdim)
    expected = getattr(autodiff.tensor(x0), name)(every, keepdim=keepdim)
    assert y.shape == expected.shape == ((1, 1) if keepdim else ())
    np.testing.assert_allclose(y.detach().numpy(), expected.numpy(), rtol=1e-12)
    y.sum().backward()
    reference = autodiff.tensor(x0, requires_grad=True)
    getattr(reference, name)(every, keepdim=keepdim).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), reference.grad.numpy(), rtol=1e-12)
    torch = torch_or_none
    if torch is None or (name == "logsumexp" and not keepdim):
        return
    leaf = torch.tensor(x0, requires_grad=True)
    theirs = getattr(leaf, name)(dims, keepdim=keepdim)
    np.testing.assert_allclose(y.detach().numpy(), theirs.detach().numpy(), rtol=1e-12)
    if name not in ("var", "std"):  # (their gradient is +-inf there)
        theirs.sum().backward()
        np.testing.assert_allclose(x.grad.numpy(), leaf.grad.numpy(), rtol=1e-12)
