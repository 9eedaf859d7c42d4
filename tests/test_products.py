"""prod and cumprod where the input holds zeros: PyTorch's formulas, bit for bit.

With a zero in the input, prod's gradient is PyTorch's prod_safe_zeros_backward:
the exclusive cumulative product from the left times the one from the right,
taken with ``cumprod``, whose own gradient is PyTorch's cumprod_backward (O(n)
on arrays; O(n^2) with Tensor ops when it is recorded).  One formula serves the
plain backward and ``create_graph``: recording it changes no bit of the first
derivative, and second derivatives go through cumprod as PyTorch's do (NaN at an
inf next to a zero, where the product of the others taken directly is finite).

Pinned here: exact values (meaningful without PyTorch); every combination of 0,
-0.0, inf, -inf, NaN and 1e308 of up to 4 elements against PyTorch (values, first
derivatives with and without ``create_graph``, second derivatives, bit for bit);
ordinary values with a zero, drawn by Hypothesis, against PyTorch; and finite
differences in float64, to third order.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import autodiff
from autodiff.testing import shapes

INF, NAN = math.inf, math.nan
EDGES = [0.0, -0.0, INF, -INF, NAN, 1e308]


def derivatives(lib, x, op, upstream, weights):
    """(y, dL/dx, dL/dx with create_graph, d/dx sum(weights * dL/dx)) for y = op(x), arrays.

    ``x`` is a NumPy array, ``upstream`` the gradient dL/dy.
    """
    grad = autodiff.grad if lib is autodiff else lib.autograd.grad
    t = lib.from_numpy(x.copy()).requires_grad_(True)
    y = op(t)
    upstream = lib.from_numpy(np.asarray(upstream, dtype=x.dtype).reshape(tuple(y.shape)))
    (plain,) = grad(y, t, upstream)
    (recorded,) = grad(op(t), t, upstream, create_graph=True)
    second = np.zeros(x.shape)
    if recorded.requires_grad:
        weighted = (recorded * lib.from_numpy(np.asarray(weights, dtype=x.dtype))).sum()
        (found,) = grad(weighted, t, allow_unused=True)
        second = second if found is None else found.numpy()
    return y.detach().numpy(), plain.numpy(), recorded.detach().numpy(), second


def assert_same_bits(ours, theirs, what=""):
    """Equal bits, NaN where NaN (whatever its payload), zeros with their signs."""
    ours, theirs = np.asarray(ours), np.asarray(theirs)
    assert ours.shape == theirs.shape, what
    nan = np.isnan(theirs)
    np.testing.assert_array_equal(np.isnan(ours), nan, err_msg=what)
    np.testing.assert_array_equal(
        ours[~nan].view(np.int64 if ours.dtype == np.float64 else np.int32),
        theirs[~nan].view(np.int64 if theirs.dtype == np.float64 else np.int32),
        err_msg=what,
    )


def prod_over(dim=None, keepdim=False):
    return lambda t: t.prod() if dim is None else t.prod(dim, keepdim)


# -- exact values, pinned ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("shape", "op"),
    [
        ((4,), prod_over()),
        ((4,), prod_over(0)),
        ((4,), prod_over(-1)),
        ((1, 4), prod_over(1, True)),
    ],
    ids=["all", "dim 0", "dim -1", "dim 1 keepdim"],
)
def test_the_gradient_at_a_zero_multiplies_from_both_ends(torch_or_none, shape, op):
    """dL/dx_0 of prod([0, 0.1, 0.2, 0.3]) is 1 * ((0.3 * 0.2) * 0.1) = 0.006, as PyTorch's
    exclusive products give it: the product of the others in one pass, (0.1 * 0.2) * 0.3,
    rounds to 0.006000000000000001.  With and without create_graph alike."""
    x = np.array([0.0, 0.1, 0.2, 0.3]).reshape(shape)
    expected = np.array([0.006, 0.0, 0.0, 0.0]).reshape(shape)
    for lib in filter(None, (autodiff, torch_or_none)):
        _, plain, recorded, _ = derivatives(lib, x, op, 1.0, np.zeros(shape))
        assert_same_bits(plain, expected, f"{lib.__name__}: plain backward")
        assert_same_bits(recorded, expected, f"{lib.__name__}: create_graph")


def test_second_derivatives_at_an_inf_next_to_a_zero_are_nan(torch_or_none):
    """prod([0, inf]): through the exclusive products, the inf's second derivative is
    (inf * w_0 * dL/dy) / inf = NaN in PyTorch (its cumprod divides by the input);
    the product of the others taken directly gave a finite number."""
    x, upstream, weights = np.array([0.0, INF]), 0.5, np.array([0.25, -1.5])
    for lib in filter(None, (autodiff, torch_or_none)):
        for op in (prod_over(), prod_over(0), prod_over(0, True)):
            _, plain, recorded, second = derivatives(lib, x, op, upstream, weights)
            assert_same_bits(plain, [INF, 0.0])
            assert_same_bits(recorded, [INF, 0.0])
            assert_same_bits(second, [-0.75, NAN], lib.__name__)  # -1.5 * 0.5 at the 0


def test_cumprod_gradient_with_zeros_follows_the_first_zero(torch_or_none):
    """y = cumprod([2, 0, 3, 0, 5]): before the first zero, (sum_{j >= k} g_j y_j) / x_k;
    at it, y_0 * (g_1 + g_2 * 3) (up to the second zero); after it, 0."""
    x, g = np.array([2.0, 0.0, 3.0, 0.0, 5.0]), np.array([1.0, 10.0, 100.0, 1000.0, 1e4])
    expected = [1.0, 2.0 * (10.0 + 100.0 * 3.0), 0.0, 0.0, 0.0]
    for lib in filter(None, (autodiff, torch_or_none)):
        _, plain, recorded, _ = derivatives(lib, x, lambda t: t.cumprod(0), g, np.zeros(5))
        assert_same_bits(plain, expected, f"{lib.__name__}: plain backward")
        assert_same_bits(recorded, expected, f"{lib.__name__}: create_graph")


def test_cumsum_and_cumprod_of_float32_accumulate_in_float64_as_pytorch():
    """PyTorch's CPU kernels keep the running sum or product of float32 in double."""
    x = np.array([1.1, 1.3, 1.7, 0.9, 1.05, 2.3, 0.7, 1.9], dtype=np.float32)
    t = autodiff.tensor(x)
    np.testing.assert_array_equal(
        t.cumprod(0).data, np.cumprod(x.astype(np.float64)).astype(x.dtype)
    )
    np.testing.assert_array_equal(t.cumsum(0).data, np.cumsum(x.astype(np.float64)).astype(x.dtype))
    assert t.cumprod(0).dtype == np.float32
    assert not np.array_equal(np.cumprod(x), np.cumprod(x.astype(np.float64)).astype(x.dtype))


def test_float32_gradient_at_a_zero_multiplies_in_float64(torch_or_none):
    """The exclusive products of float32 come from cumprod, so from a double running
    product rounded once, as PyTorch's: 0.9 * 1.7 * 1.3 * 1.1 is 2.1879 (float32 steps:
    2.1878998)."""
    x = np.array([0.0, 1.1, 1.3, 1.7, 0.9], dtype=np.float32)
    others = np.float32(np.prod(x[:0:-1].astype(np.float64)))
    assert others != np.prod(x[:0:-1])  # the float32 running product rounds otherwise
    expected = np.array([others, 0, 0, 0, 0], dtype=np.float32)
    for lib in filter(None, (autodiff, torch_or_none)):
        _, plain, recorded, _ = derivatives(lib, x, prod_over(), 1.0, np.zeros(5))
        assert_same_bits(plain, expected, f"{lib.__name__}: plain backward")
        assert_same_bits(recorded, expected, f"{lib.__name__}: create_graph")


def test_cumsum_and_cumprod_arguments_as_pytorch():
    x = autodiff.tensor([[1, 2], [3, 4]])
    np.testing.assert_array_equal(autodiff.cumsum(x, -1).data, [[1, 3], [3, 7]])
    np.testing.assert_array_equal(x.cumprod(dim=0).data, [[1, 2], [3, 8]])
    assert x.cumsum(0).dtype == np.int64
    assert x.cumprod(0, dtype=autodiff.float64).dtype == np.float64
    assert autodiff.tensor(3.0).cumprod(-1).item() == 3.0  # a 0-d tensor has dims 0 and -1
    with pytest.raises(IndexError):
        x.cumsum(2)
    with pytest.raises(TypeError):
        x.cumprod(None)


# -- against PyTorch ---------------------------------------------------------------------


def _edge_calls(n):
    """(x, op, label) for every combination of ``n`` edge values: prod over all elements
    (one tensor per combination), and prod and cumprod along each dim with the
    combinations as rows of one tensor, those with a zero apart (a zero anywhere
    sends every row of a tensor through the formula for zeros, in both libraries)."""
    combos = np.array(list(itertools.product(EDGES, repeat=n)))
    for row in combos:
        yield row, prod_over(), f"prod({row.tolist()})"
    has_zero = (combos == 0).any(axis=1)
    blocks = [combos[has_zero], combos[~has_zero]]
    if n == 4:  # the combinations of 4 as 2 x 2 matrices too: a dim that is not the last
        blocks += [b.reshape(-1, 2, 2) for b in blocks[:2]]
    for block in blocks:
        for dim in range(1, block.ndim):
            for keepdim in (False, True):
                yield block, prod_over(dim, keepdim), f"prod(dim={dim}, keepdim={keepdim})"
            yield block, lambda t, d=dim: t.cumprod(d), f"cumprod(dim={dim})"


@pytest.mark.torch
@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_edge_values_match_pytorch_bit_for_bit(torch, n):
    """Values, first derivatives (with and without create_graph) and second derivatives."""
    rng = np.random.default_rng(n)
    for x, op, label in _edge_calls(n):
        out_shape = np.asarray(op(autodiff.tensor(x)).data).shape
        upstream, weights = rng.standard_normal(out_shape), rng.standard_normal(x.shape)
        ours = derivatives(autodiff, x, op, upstream, weights)
        theirs = derivatives(torch, x, op, upstream, weights)
        for what, a, b in zip(("value", "dL/dx", "dL/dx (create_graph)", "d2"), ours, theirs):
            assert_same_bits(a, b, f"{label} of {x.tolist()}: {what}")


@st.composite
def with_zeros(draw, max_zeros=1, max_dims=3, max_side=5):
    """(x, dim): a float64 array of ordinary values, +-[0.05, 3], with 1 to ``max_zeros``
    zeros, and a dim to reduce (None: all elements)."""
    shape = draw(shapes(min_dims=1, max_dims=max_dims, min_side=1, max_side=max_side))
    n = math.prod(shape)
    ordinary = st.one_of(st.floats(0.05, 3.0), st.floats(-3.0, -0.05))
    x = np.array(draw(st.lists(ordinary, min_size=n, max_size=n))).reshape(shape)
    zeros = draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=max_zeros))
    x.reshape(-1)[zeros] = 0.0
    dim = draw(st.one_of(st.none(), st.integers(-len(shape), len(shape) - 1)))
    return x, dim


def prod_and_cumprod(dim, keepdim):
    """("prod", prod over ``dim``), and ("cumprod", cumprod along it) when there is one."""
    ops = [("prod", prod_over(dim, keepdim))]
    return ops if dim is None else ops + [("cumprod", lambda t: t.cumprod(dim))]


@pytest.mark.torch
@given(case=with_zeros(max_zeros=2), keepdim=st.booleans(), seed=st.integers(0, 2**32 - 1))
def test_ordinary_values_with_zeros_match_pytorch(case, keepdim, seed):
    """prod's first derivatives bit for bit; cumprod's too along up to 4 elements (its
    gradient with zeros sums, and PyTorch's sum of 5 or more numbers adds in another
    order than NumPy's); second derivatives to rounding."""
    torch = pytest.importorskip("torch")
    x, dim = case
    rng = np.random.default_rng(seed)
    for name, op in prod_and_cumprod(dim, keepdim):
        upstream = rng.standard_normal(np.asarray(op(autodiff.tensor(x)).data).shape)
        weights = rng.standard_normal(x.shape)
        ours = derivatives(autodiff, x, op, upstream, weights)
        theirs = derivatives(torch, x, op, upstream, weights)
        sums_in_order = name == "prod" or x.shape[dim] <= 4
        for what, a, b in zip(("value", "dL/dx", "dL/dx (create_graph)"), ours, theirs):
            if sums_in_order:
                assert_same_bits(a, b, what)
            else:
                np.testing.assert_allclose(a, b, rtol=1e-13, err_msg=what)
        np.testing.assert_allclose(ours[3], theirs[3], rtol=1e-12, atol=1e-12)


# -- without PyTorch ---------------------------------------------------------------------


@given(case=with_zeros(max_zeros=3), keepdim=st.booleans(), seed=st.integers(0, 2**32 - 1))
def test_create_graph_changes_no_bit_of_prods_first_derivative(case, keepdim, seed):
    """The plain backward and the recorded one run one formula, as in PyTorch (except
    its shortcut: over all elements, two zeros give exact zeros without create_graph)."""
    x, dim = case
    op = prod_over(dim, keepdim)
    out_shape = np.asarray(op(autodiff.tensor(x)).data).shape
    upstream = np.random.default_rng(seed).standard_normal(out_shape)
    _, plain, recorded, _ = derivatives(autodiff, x, op, upstream, np.zeros(x.shape))
    if dim is None and np.count_nonzero(x == 0) > 1:
        assert_same_bits(plain, np.zeros(x.shape))
    else:
        assert_same_bits(plain, recorded)


@given(case=with_zeros(max_zeros=2, max_dims=2, max_side=4), keepdim=st.booleans())
def test_derivatives_match_finite_differences(case, keepdim):
    """prod and cumprod are linear in each element, so central differences are exact up
    to rounding, also with a wide step (1e-3: the formula y / x without zeros, at a zero
    moved by the step, would amplify rounding); first and second derivatives
    (gradgradcheck differentiates the recorded backward)."""
    x, dim = case
    t = autodiff.tensor(x, requires_grad=True)
    for _, op in prod_and_cumprod(dim, keepdim):
        assert autodiff.gradcheck(op, (t,), eps=1e-3, atol=1e-7, rtol=1e-6)
        assert autodiff.gradgradcheck(op, (t,), eps=1e-3, atol=1e-7, rtol=1e-6)


@pytest.mark.parametrize("x", [[0.0, 1.5, -2.0, 0.5], [2.0, 0.0, 0.0, -3.0], [0.0, 0.0, 0.0]])
def test_third_derivatives_through_cumprod_match_finite_differences(x):
    """d/dx of prod's recorded gradient runs cumprod's O(n^2) backward with create_graph."""
    t = autodiff.tensor(x, dtype=autodiff.float64, requires_grad=True)

    def gradient(t):
        (g,) = autodiff.grad(t.prod(0), t, create_graph=True)
        return g

    assert autodiff.gradgradcheck(gradient, (t,), eps=1e-3, atol=1e-7, rtol=1e-6)
    assert autodiff.gradgradcheck(lambda t: t.cumprod(0), (t,), eps=1e-3, atol=1e-7, rtol=1e-6)
