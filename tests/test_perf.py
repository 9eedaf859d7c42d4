"""Regression tests for the speed changes: same numbers, better memory layout.

Timing is never asserted here (see ``benchmarks/``); these tests pin the
semantics that each optimisation must keep.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import autodiff

dims = st.integers(1, 6)


def _random(rng, *shape):
    return rng.standard_normal(shape)


@given(n=dims, k=dims, m=dims, seed=st.integers(0, 2**32 - 1))
def test_linear_weight_gradient_is_row_major_and_exact(n, k, m, seed):
    """``x @ W.T``: W's gradient is ``dY^T x``, row-major like W (optimizer speed)."""
    rng = np.random.default_rng(seed)
    x = autodiff.tensor(_random(rng, n, k), requires_grad=True)
    w = autodiff.tensor(_random(rng, m, k), requires_grad=True)
    upstream = _random(rng, n, m)
    (x @ w.T).backward(autodiff.tensor(upstream))
    np.testing.assert_allclose(w.grad.data, upstream.T @ x.data, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(x.grad.data, upstream @ w.data, rtol=1e-12, atol=1e-12)
    assert w.grad.data.flags.c_contiguous
    assert w.grad.shape == w.shape


@given(n=dims, k=dims, m=dims, seed=st.integers(0, 2**32 - 1))
def test_transposed_operands_central_differences(n, k, m, seed):
    """Both operands transposed views: gradients match central differences."""
    rng = np.random.default_rng(seed)
    a0, b0 = _random(rng, k, n), _random(rng, m, k)
    upstream = _random(rng, n, m)

    def loss(a, b):
        return float(np.sum((a.T @ b.T) * upstream))

    a = autodiff.tensor(a0, requires_grad=True)
    b = autodiff.tensor(b0, requires_grad=True)
    (a.T @ b.T).backward(autodiff.tensor(upstream))
    eps = 1e-6
    for target, grad in ((a0, a.grad.data), (b0, b.grad.data)):
        numeric = np.zeros_like(target)
        for index in np.ndindex(target.shape):
            saved = target[index]
            target[index] = saved + eps
            up = loss(a0, b0)
            target[index] = saved - eps
            down = loss(a0, b0)
            target[index] = saved
            numeric[index] = (up - down) / (2 * eps)
        np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-8)


def test_linear_second_order_through_create_graph(torch):
    """The layout-preserving backward is itself differentiable (create_graph)."""
    rng = np.random.default_rng(0)
    x0, w0, v0 = _random(rng, 3, 4), _random(rng, 2, 4), _random(rng, 2, 4)

    def run(lib, tensor):
        x = tensor(x0, requires_grad=True)
        w = tensor(w0, requires_grad=True)
        y = (x @ w.T).tanh().sum()
        (gw,) = lib.grad(y, w, create_graph=True)
        (gx,) = lib.grad((gw * tensor(v0)).sum(), x)
        return gw.detach().numpy(), gx.numpy()

    ours = run(autodiff, autodiff.tensor)
    theirs = run(torch.autograd, torch.tensor)
    for a, b in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


def _reference_sigmoid(x):
    """The textbook stable form, with np.where."""
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


_SIGMOID_SPECIAL = [np.inf, -np.inf, np.nan, 0.0, -0.0, 1e-30, -1e-30, -90.0, -200.0, 800.0, -800.0]


def _sigmoid_inputs(dtype):
    rng = np.random.default_rng(0)
    return np.concatenate([rng.uniform(-100, 100, 2000), _SIGMOID_SPECIAL]).astype(dtype)


def test_sigmoid_float16_same_bits_as_the_where_form():
    """float16's exp(-x) overflows from x < -11, so it keeps the form that cannot overflow."""
    x = _sigmoid_inputs(np.float16)
    y = autodiff.tensor(x).sigmoid().data
    assert y.dtype == np.float16
    np.testing.assert_array_equal(y, _reference_sigmoid(x))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_is_pytorchs_formula(dtype):
    """float32/64: the bits of 1 / (1 + exp(-x)), PyTorch's form, within 4 ulp of the
    exact value wherever that is a normal number (exp's own error and two roundings:
    3.0 ulp at most measured, PyTorch 2.2, the np.where form 2.8); below that,
    where exp(-x) overflows, PyTorch and this both give 0."""
    wider = {np.float32: np.float64, np.float64: np.longdouble}[dtype]
    if np.finfo(wider).eps >= np.finfo(dtype).eps:
        pytest.skip("no wider float type here to compute the exact value in")
    x = _sigmoid_inputs(dtype)
    y = autodiff.tensor(x).sigmoid().data
    assert y.dtype == dtype
    with np.errstate(over="ignore"):
        np.testing.assert_array_equal(y, 1 / (1 + np.exp(-x)))
        exact = 1 / (1 + np.exp(-x.astype(wider)))
    normal = np.abs(exact) >= np.finfo(dtype).tiny
    ulp = np.spacing(exact[normal].astype(dtype)).astype(wider)
    assert np.max(np.abs(y[normal] - exact[normal]) / ulp) <= 4
    assert np.all(y[x <= -800] == 0) and np.all(y[x >= 800] == 1)
    assert np.isnan(y[np.isnan(x)]).all()


@given(value=st.floats(-30, 30))
def test_sigmoid_of_a_scalar_second_derivative(value):
    """A 0-d output is still saved as the node's output (second order sees it)."""
    x = autodiff.tensor(value, dtype=autodiff.float64, requires_grad=True)
    (first,) = autodiff.grad(x.sigmoid(), x, create_graph=True)
    (second,) = autodiff.grad(first, x)
    s = 1 / (1 + np.exp(-value))
    np.testing.assert_allclose(first.item(), s * (1 - s), rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(second.item(), s * (1 - s) * (1 - 2 * s), rtol=1e-9, atol=1e-15)


# -- max pooling: the fused primitive equals the composed form -------------------
def _composed_window_max(x, kernel, stride, dilation, out_hw):
    from autodiff.ops import Windows2d

    oh, ow = out_hw
    cols = Windows2d.apply(x, kernel, stride, dilation)[:, :, :oh, :ow]
    n, c = cols.shape[:2]
    return cols.reshape(n, c, oh, ow, kernel[0] * kernel[1]).max(dim=-1)


@st.composite
def pooling_cases(draw):
    kernel = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    span = [d * (k - 1) + 1 for k, d in zip(kernel, dilation, strict=True)]
    shape = (
        draw(st.integers(1, 2)),
        draw(st.integers(1, 3)),
        draw(st.integers(span[0], span[0] + 4)),
        draw(st.integers(span[1], span[1] + 4)),
    )
    out_hw = tuple(
        (size - s) // st_ + 1 for size, s, st_ in zip(shape[2:], span, stride, strict=True)
    )
    seed = draw(st.integers(0, 2**32 - 1))
    special = draw(st.sampled_from(["none", "nan", "inf"]))
    return shape, kernel, stride, dilation, out_hw, seed, special


@given(case=pooling_cases())
def test_window_max_equals_composed_max(case):
    """Values, chosen taps (ties, NaN), gradients and second order: all identical."""
    from autodiff.ops.window import window_max

    shape, kernel, stride, dilation, out_hw, seed, special = case
    rng = np.random.default_rng(seed)
    x0 = rng.integers(-2, 3, shape).astype(np.float64)  # small integers: many ties
    if special != "none":
        # one NaN: with two in a window the forms differ by design (max_pool2d takes
        # the last NaN, as PyTorch's kernel does, max(dim) the first, as torch.max does;
        # test_two_nans_in_a_window_pick_the_last pins the first)
        flat = x0.reshape(-1)
        flat[rng.integers(0, flat.size, 1 if special == "nan" else 2)] = (
            np.nan if special == "nan" else -np.inf
        )
    upstream = rng.standard_normal((shape[0], shape[1], *out_hw))
    if special == "inf" and upstream.size:  # an infinite upstream gradient: other taps stay 0
        upstream.reshape(-1)[rng.integers(0, upstream.size)] = np.inf
    v = autodiff.tensor(rng.standard_normal(shape))
    results = []
    for pool in (window_max, _composed_window_max):
        x = autodiff.tensor(x0, requires_grad=True)
        g = autodiff.tensor(upstream, requires_grad=True)
        values, taps = pool(x, kernel, stride, dilation, out_hw)
        (grad_x,) = autodiff.grad(values, x, g, create_graph=True)
        (grad_g,) = autodiff.grad((grad_x * v).sum(), g)
        taps = taps.data if isinstance(taps, autodiff.Tensor) else taps
        results.append((values.data, taps, grad_x.data, grad_g.data))
    for fused, composed in zip(*results, strict=True):
        np.testing.assert_array_equal(fused, composed)


@given(case=pooling_cases(), signed_zeros=st.booleans())
def test_window_max_without_a_backward_is_the_tapped_max(case, signed_zeros):
    """With nothing to differentiate (no_grad, evaluation), max pooling finds the maxima
    alone: the bits of the values it finds with their taps (ties, -0.0, NaN, -inf)."""
    from autodiff.ops.window import window_max

    shape, kernel, stride, dilation, out_hw, seed, special = case
    rng = np.random.default_rng(seed)
    x0 = rng.integers(-2, 3, shape).astype(np.float64)
    if signed_zeros:
        x0[x0 == 0] = rng.choice([0.0, -0.0], int((x0 == 0).sum()))
    if special != "none":
        flat = x0.reshape(-1)
        flat[rng.integers(0, flat.size, 2)] = np.nan if special == "nan" else -np.inf
    tapped, taps = window_max(
        autodiff.tensor(x0, requires_grad=True), kernel, stride, dilation, out_hw
    )
    with autodiff.no_grad():
        alone, _ = window_max(autodiff.tensor(x0), kernel, stride, dilation, out_hw, False)
        again, taps_again = window_max(autodiff.tensor(x0), kernel, stride, dilation, out_hw)
    assert alone.data.tobytes() == tapped.data.tobytes() == again.data.tobytes()
    np.testing.assert_array_equal(taps_again, taps)


def test_two_nans_in_a_window_pick_the_last():
    """PyTorch's max_pool2d takes the last NaN of a window (its index 2 here)."""
    from nn import functional

    x = autodiff.tensor([[[[np.nan, -1.0, np.nan, -2.0]]]], requires_grad=True)
    out, indices = functional.max_pool2d(x, (1, 2), stride=1, dilation=(1, 2), return_indices=True)
    assert indices.tolist() == [[[[2, 1]]]]
    out.sum().backward()
    assert x.grad.tolist() == [[[[0.0, 1.0, 1.0, 0.0]]]]


def test_max_pool2d_matches_pytorch_with_ties(torch):
    from nn import functional

    rng = np.random.default_rng(1)
    x0 = rng.integers(-2, 3, (2, 3, 9, 8)).astype(np.float32)
    upstream = rng.standard_normal((2, 3, 4, 4)).astype(np.float32)
    ours = autodiff.tensor(x0, requires_grad=True)
    theirs = torch.tensor(x0, requires_grad=True)
    out, idx = functional.max_pool2d(ours, 2, return_indices=True)
    out_t, idx_t = torch.nn.functional.max_pool2d(theirs, 2, return_indices=True)
    out.backward(autodiff.tensor(upstream))
    out_t.backward(torch.tensor(upstream))
    np.testing.assert_array_equal(out.data, out_t.detach().numpy())
    np.testing.assert_array_equal(idx.data, idx_t.numpy())
    np.testing.assert_array_equal(ours.grad.data, theirs.grad.numpy())
    # zeros where no maximum was: 0.0, never the -0.0 of a negative gradient times 0
    np.testing.assert_array_equal(np.signbit(ours.grad.data), np.signbit(theirs.grad.numpy()))


# -- im2col: the fused primitive equals pad + windows + reshape + permute + reshape --
def _composed_im2col(x, kernel, stride, padding, dilation, groups):
    from autodiff.ops import Windows2d

    (top, bottom), (left, right) = padding
    if top or bottom or left or right:
        x = autodiff.pad(x, (left, right, top, bottom))
    cols = Windows2d.apply(x, kernel, stride, dilation)  # (N, C, oh, ow, kh, kw)
    n, c, oh, ow, kh, kw = cols.shape
    cols = cols.reshape(n, groups, c // groups, oh, ow, kh, kw).permute(0, 1, 2, 5, 6, 3, 4)
    return cols.reshape(n, groups, c // groups * kh * kw, oh * ow)


@st.composite
def im2col_cases(draw):
    kernel = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    padding = tuple((draw(st.integers(0, 2)), draw(st.integers(0, 2))) for _ in range(2))
    groups = draw(st.integers(1, 3))
    span = [d * (k - 1) + 1 for k, d in zip(kernel, dilation, strict=True)]
    # the padded input holds at least one window (it may be all padding)
    shape = (
        draw(st.integers(1, 2)),
        groups * draw(st.integers(1, 2)),
        draw(st.integers(max(1, span[0] - sum(padding[0])), span[0] + 4)),
        draw(st.integers(max(1, span[1] - sum(padding[1])), span[1] + 4)),
    )
    return shape, kernel, stride, padding, dilation, groups, draw(st.integers(0, 2**32 - 1))


@given(case=im2col_cases())
def test_im2col_equals_composed_windows(case):
    """Matrix, gradient (the fold) and second order: identical to the composed form."""
    from autodiff.ops.window import Im2col

    shape, kernel, stride, padding, dilation, groups, seed = case
    rng = np.random.default_rng(seed)
    x0 = rng.standard_normal(shape)
    v = autodiff.tensor(rng.standard_normal(shape))
    results = []
    for im2col in (Im2col.apply, _composed_im2col):
        x = autodiff.tensor(x0, requires_grad=True)
        cols = im2col(x, kernel, stride, padding, dilation, groups)
        upstream = autodiff.tensor(
            np.random.default_rng(seed + 1).standard_normal(cols.shape), requires_grad=True
        )
        (grad_x,) = autodiff.grad(cols, x, upstream, create_graph=True)
        (grad_up,) = autodiff.grad((grad_x * v).sum(), upstream)
        results.append((cols.data, grad_x.data, grad_up.data))
    for fused, composed in zip(*results, strict=True):
        assert fused.shape == composed.shape
        np.testing.assert_array_equal(fused, composed)


@st.composite
def same_width_cases(draw):
    """Stride-1 convolutions whose output is as wide as the input: Im2col and Col2im
    take one run per plane and tap there (``_flat_runs``)."""
    kernel = (draw(st.integers(1, 3)), draw(st.integers(1, 5)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    span_w = dilation[1] * (kernel[1] - 1)
    left = draw(st.integers(0, span_w))  # asymmetric too: left + right = span_w
    top = draw(st.integers(0, 2))
    padding = ((top, draw(st.integers(0, 2))), (left, span_w - left))
    span_h = dilation[0] * (kernel[0] - 1) + 1
    groups = draw(st.integers(1, 2))
    shape = (
        draw(st.integers(0, 3)),  # 0: an empty batch
        groups * draw(st.integers(1, 2)),
        draw(st.integers(max(1, span_h - sum(padding[0])), span_h + 4)),
        draw(st.integers(span_w + 1, span_w + 6)),  # wider than the wrapped bands
    )
    threads = draw(st.sampled_from([1, 2]))
    dtype = draw(st.sampled_from([np.float64, np.float32, np.float16, np.complex128]))
    return shape, kernel, padding, dilation, groups, threads, dtype, draw(st.integers(0, 2**32 - 1))


def _with_specials(array, start):
    """Every 7th element inf, every 11th NaN, every 13th -0.0 (from ``start``)."""
    flat = array.reshape(-1)
    flat[start::7] = np.inf
    flat[start + 3 :: 11] = np.nan
    flat[start + 5 :: 13] = -0.0
    return array


@given(case=same_width_cases())
def test_im2col_and_col2im_by_runs_equal_the_composed_form_bit_for_bit(case):
    """The windows of zero-padded planes read into neighbouring rows' edge columns,
    which must become the padding's +0.0 (Im2col), and the gradients read there must
    add nothing (Col2im): the same bits as the composed form, with inf, NaN and -0.0
    in the input and the gradient, for every float dtype (complex: the runs' form)."""
    from autodiff.ops.window import Im2col, _flat_runs

    shape, kernel, padding, dilation, groups, threads, dtype, seed = case
    assert _flat_runs(shape, kernel, (1, 1), padding, dilation, (1, shape[3])) is not None
    x0 = _with_specials(np.random.default_rng(seed).standard_normal(shape).astype(dtype), 2)
    results = []
    before = autodiff.get_num_threads()
    autodiff.set_num_threads(threads)
    try:
        for im2col in (Im2col.apply, _composed_im2col):
            x = autodiff.tensor(x0, requires_grad=True)
            cols = im2col(x, kernel, (1, 1), padding, dilation, groups)
            upstream = np.random.default_rng(seed + 1).standard_normal(cols.shape).astype(dtype)
            (grad_x,) = autodiff.grad(cols, x, autodiff.tensor(_with_specials(upstream, 0)))
            results.append((cols.data, grad_x.data))
    finally:
        autodiff.set_num_threads(before)
    for fused, composed in zip(*results, strict=True):
        assert fused.dtype == composed.dtype == dtype
        assert fused.tobytes() == composed.tobytes()


@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.uint8, np.bool_])
def test_im2col_of_integers_equals_the_composed_form(dtype):
    """Integer and boolean images: the padding is 0 (False), the windows exact."""
    from autodiff.ops.window import Im2col

    x0 = (np.random.default_rng(3).integers(-5, 200, (2, 3, 5, 6)) % 7).astype(dtype)
    x = autodiff.tensor(x0)
    for padding in (((1, 1), (1, 1)), ((0, 2), (2, 0))):
        fused = Im2col.apply(x, (3, 3), (1, 1), padding, (1, 1), 1)
        composed = _composed_im2col(x, (3, 3), (1, 1), padding, (1, 1), 1)
        assert fused.dtype == composed.dtype == dtype
        np.testing.assert_array_equal(fused.data, composed.data)


def test_conv2d_matches_pytorch_groups_stride_dilation(torch):
    from nn import functional

    rng = np.random.default_rng(2)
    x0 = rng.standard_normal((2, 4, 9, 8))
    w0 = rng.standard_normal((6, 2, 3, 2))
    b0 = rng.standard_normal(6)
    kwargs = {"stride": (2, 1), "padding": 1, "dilation": (1, 2), "groups": 2}
    ours = [autodiff.tensor(a, requires_grad=True) for a in (x0, w0, b0)]
    theirs = [torch.tensor(a, requires_grad=True) for a in (x0, w0, b0)]
    out = functional.conv2d(*ours, **kwargs)
    out_t = torch.nn.functional.conv2d(*theirs, **kwargs)
    upstream = rng.standard_normal(out.shape)
    out.backward(autodiff.tensor(upstream))
    out_t.backward(torch.tensor(upstream))
    np.testing.assert_allclose(out.data, out_t.detach().numpy(), rtol=1e-10, atol=1e-12)
    for a, b in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(a.grad.data, b.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_contiguous_lays_out_row_major_and_passes_the_gradient():
    """Regression: contiguous() used clone(), which keeps a transposed layout."""
    rng = np.random.default_rng(3)
    x = autodiff.tensor(rng.standard_normal((3, 4)), requires_grad=True)
    y = x.T.contiguous()
    assert y.is_contiguous() and y.data.flags.c_contiguous
    np.testing.assert_array_equal(y.data, x.data.T)
    upstream = rng.standard_normal((4, 3))
    y.backward(autodiff.tensor(upstream))
    np.testing.assert_array_equal(x.grad.data, upstream.T)
    z = autodiff.tensor(rng.standard_normal((2, 3)))
    assert z.contiguous() is z  # already row-major: no copy, as in PyTorch
    kept = autodiff.tensor(rng.standard_normal((3, 4))).T.clone()
    assert kept.data.flags.f_contiguous  # clone keeps the layout (preserve_format)


@given(n=dims, k=dims, h=dims, m=dims, seed=st.integers(0, 2**32 - 1))
def test_stacked_linear_layers_values_and_row_major_weight_gradients(n, k, h, m, seed):
    """x @ W1.T -> relu -> @ W2.T: exact gradients, every weight's row-major.

    Regression: a column-major forward result made the next layer's weight
    gradient column-major (and the optimizer's update 10x slower).
    """
    rng = np.random.default_rng(seed)
    x0, w1, w2 = _random(rng, n, k), _random(rng, h, k), _random(rng, m, h)
    upstream = _random(rng, n, m)
    W1 = autodiff.tensor(w1, requires_grad=True)
    W2 = autodiff.tensor(w2, requires_grad=True)
    hidden = (autodiff.tensor(x0) @ W1.T).relu()
    out = hidden @ W2.T
    np.testing.assert_allclose(out.data, np.maximum(x0 @ w1.T, 0) @ w2.T, rtol=1e-12, atol=1e-12)
    out.backward(autodiff.tensor(upstream))
    a = np.maximum(x0 @ w1.T, 0)
    np.testing.assert_allclose(W2.grad.data, upstream.T @ a, rtol=1e-12, atol=1e-12)
    grad_a = (upstream @ w2) * (a > 0)
    np.testing.assert_allclose(W1.grad.data, grad_a.T @ x0, rtol=1e-12, atol=1e-12)
    for weight in (W1, W2):
        assert weight.grad.data.flags.c_contiguous
    assert out.data.flags.c_contiguous


def test_sigmoid_of_python_and_numpy_scalars():
    """Sigmoid.apply on a bare number (no Tensor) still works, as before."""
    from autodiff.ops import Sigmoid

    assert abs(Sigmoid.apply(2.0).item() - 1 / (1 + np.exp(-2.0))) < 1e-7
    assert Sigmoid.apply(np.float32(-3)).dtype == np.float32


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("slope_kind", ["mask", "slopes", "mask of another layout"])
@pytest.mark.parametrize("special", ["none", "inf", "nan", "-inf", "huge"])
def test_apply_slope_fast_product_is_the_where_form(dtype, slope_kind, special):
    """relu/leaky_relu's backward product: bit for bit np.where's, zeros signs included."""
    from autodiff.ops.elementwise import _apply_slope

    rng = np.random.default_rng(3)
    g = rng.standard_normal((4, 5, 6)).astype(dtype)
    g.reshape(-1)[:7] = -1.5  # negative gradients where the slope is 0: -0.0 in a product
    if special != "none":
        value = {"inf": np.inf, "nan": np.nan, "-inf": -np.inf, "huge": np.finfo(dtype).max}
        g.reshape(-1)[rng.integers(0, g.size, 3)] = value[special]
    mask = rng.random(g.shape) > 0.5
    mask.reshape(-1)[:7] = False
    if slope_kind == "mask":  # a mask passes g's own bits on: -0.0 stays -0.0, as np.where
        g.reshape(-1)[7:10] = -0.0
        mask.reshape(-1)[7:10] = True
    if slope_kind == "mask of another layout":  # not row-major: the product's path
        mask = np.asfortranarray(mask)
    s = mask if slope_kind != "slopes" else np.where(mask, 1.0, 0.01).astype(dtype)
    if slope_kind == "slopes":
        s.reshape(-1)[:7] = 0.0
    expected = (
        np.where(s, g, 0).astype(dtype)
        if slope_kind != "slopes"
        else np.where(s == 0, 0, g * s).astype(dtype)
    )
    got = _apply_slope(g, s)
    assert got.dtype == expected.dtype
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(np.signbit(got), np.signbit(expected))


@pytest.mark.parametrize(
    ("x_shape", "w_shape"),
    [
        ((1, 3, 4), (5, 1, 4, 6)),
        ((3, 4), (5, 4, 6)),
        ((2, 1, 3, 4), (2, 5, 4, 6)),
        ((5, 3, 4), (1, 4, 6)),
    ],
)
def test_batched_matmul_gradients_with_a_broadcast_operand(x_shape, w_shape, torch):
    """conv2d's kernel @ cols: the broadcast operand's gradient (computed transposed) and
    second order match PyTorch."""
    rng = np.random.default_rng(4)
    x0, w0 = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
    ours = [autodiff.tensor(a, requires_grad=True) for a in (x0, w0)]
    theirs = [torch.tensor(a, requires_grad=True) for a in (x0, w0)]
    out, out_t = ours[0] @ ours[1], theirs[0] @ theirs[1]
    upstream = rng.standard_normal(out.shape)
    grads = autodiff.grad(out, ours, autodiff.tensor(upstream), create_graph=True)
    grads_t = torch.autograd.grad(out_t, theirs, torch.tensor(upstream), create_graph=True)
    for g, g_t in zip(grads, grads_t, strict=True):
        np.testing.assert_allclose(g.data, g_t.detach().numpy(), rtol=1e-12, atol=1e-12)
        assert g.data.flags.c_contiguous
    second = autodiff.grad(sum((g * g).sum() for g in grads), ours)
    second_t = torch.autograd.grad(sum((g * g).sum() for g in grads_t), theirs)
    for s, s_t in zip(second, second_t, strict=True):
        np.testing.assert_allclose(s.data, s_t.numpy(), rtol=1e-10, atol=1e-10)


def _composed_tanh_backward(g, y):
    return g * (1 - y * y)


def _composed_sigmoid_backward(g, y):
    return g * y * (1 - y)


@pytest.mark.parametrize("kind", ["tanh", "sigmoid"])
@given(
    shape=st.sampled_from([(), (5,), (2, 3), (64, 80)]),  # (64, 80): one buffer
    seed=st.integers(0, 2**32 - 1),
    special=st.sampled_from(["none", "zeros", "ones", "nan", "inf"]),
    dtype=st.sampled_from([np.float32, np.float64]),
)
def test_tanh_and_sigmoid_backward_equal_the_composed_form(kind, shape, seed, special, dtype):
    """TanhBackward / SigmoidBackward: values, gradients and second derivatives, bit for bit."""
    from autodiff.ops import SigmoidBackward, TanhBackward

    fused = TanhBackward.apply if kind == "tanh" else SigmoidBackward.apply
    composed = _composed_tanh_backward if kind == "tanh" else _composed_sigmoid_backward
    rng = np.random.default_rng(seed)
    x0 = rng.standard_normal(shape).astype(dtype)
    g0 = rng.standard_normal(shape).astype(dtype)
    if special != "none" and x0.size:
        value = {"zeros": 0.0, "ones": 1.0, "nan": np.nan, "inf": np.inf}[special]
        x0.reshape(-1)[rng.integers(0, x0.size)] = value
        g0.reshape(-1)[rng.integers(0, g0.size)] = value
    u, v = (autodiff.tensor(rng.standard_normal(shape).astype(dtype)) for _ in range(2))
    results = []
    for backward in (fused, composed):
        x = autodiff.tensor(x0, requires_grad=True)
        g = autodiff.tensor(g0, requires_grad=True)
        y = x.tanh() if kind == "tanh" else x.sigmoid()
        z = backward(g, y)
        grad_g, grad_x = autodiff.grad(z, (g, x), u, create_graph=True)
        second = autodiff.grad((grad_g * v).sum() + (grad_x * v).sum(), (g, x), allow_unused=True)
        results.append((z.data, grad_g.data, grad_x.data, *(s.data for s in second)))
    fused_results, composed_results = results
    # values and first derivatives: the same NumPy operations, so the same bits
    for ours, reference in zip(fused_results[:3], composed_results[:3], strict=True):
        np.testing.assert_array_equal(ours, reference)
        assert ours.dtype == reference.dtype
    # second derivatives: the same terms, summed in another order by the engine
    # (the two graphs have different nodes), so equal up to rounding
    tolerance = 1e-5 if dtype == np.float32 else 1e-12
    for ours, reference in zip(fused_results[3:], composed_results[3:], strict=True):
        np.testing.assert_allclose(ours, reference, rtol=tolerance, atol=tolerance)
        assert ours.dtype == reference.dtype


def test_tanh_and_sigmoid_backward_through_the_ops(torch):
    """The ops' gradients and second derivatives still match PyTorch's."""
    rng = np.random.default_rng(5)
    x0 = rng.standard_normal((3, 4))
    for name in ("tanh", "sigmoid"):
        x = autodiff.tensor(x0, requires_grad=True)
        x_t = torch.tensor(x0, requires_grad=True)
        (g,) = autodiff.grad(getattr(x, name)().sum(), x, create_graph=True)
        (g_t,) = torch.autograd.grad(getattr(x_t, name)().sum(), x_t, create_graph=True)
        (h,) = autodiff.grad(g.sum(), x)
        (h_t,) = torch.autograd.grad(g_t.sum(), x_t)
        np.testing.assert_allclose(g.data, g_t.detach().numpy(), rtol=1e-12)
        np.testing.assert_allclose(h.data, h_t.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_all_finite(dtype):
    from autodiff.ops.elementwise import _all_finite

    a = np.arange(24, dtype=dtype).reshape(2, 3, 4)
    assert _all_finite(a) and _all_finite(a.transpose(2, 0, 1)) and _all_finite(a[:0])
    for bad in (np.nan, np.inf, -np.inf):
        b = a.copy()
        b[1, 2, 3] = bad
        assert not _all_finite(b)
        assert not _all_finite(b.transpose(2, 0, 1))


@given(
    shape=st.lists(st.integers(0, 5), min_size=2, max_size=5),
    middle=st.sets(st.integers(1, 3)),
    dtype=st.sampled_from([np.float32, np.float64, np.float16, np.int32, np.bool_]),
    keepdim=st.booleans(),
    transposed=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
)
def test_sum_over_first_and_last_dims_is_numpys_sum(
    shape, middle, dtype, keepdim, transposed, seed
):
    """A bias's gradient, (N, C, H, W) summed to (C,), goes through einsum: NumPy's sum's values."""
    from autodiff.ops.reduce import _sum

    ndim = len(shape)
    dims = tuple(sorted({0, ndim - 1} | {d for d in middle if d < ndim - 1}))
    x = (np.random.default_rng(seed).standard_normal(shape) * 4).astype(dtype)
    if transposed:  # not row-major: NumPy's own sum
        x = x.T
    got = _sum(x, dims, keepdim)
    expected = np.sum(x, axis=dims, keepdims=keepdim)
    assert got.shape == expected.shape and got.dtype == expected.dtype
    tolerance = {np.float16: 1e-2, np.float32: 1e-5}.get(dtype, 1e-12)
    np.testing.assert_allclose(got, expected, rtol=tolerance, atol=tolerance * x.size)
    bias_gradient = x.dtype in (np.float32, np.float64) and len(dims) < ndim and not transposed
    if bias_gradient:  # the einsum path: as accurate as NumPy's against a float64 sum
        exact = np.sum(x.astype(np.float64), axis=dims, keepdims=keepdim)
        scale = np.sum(np.abs(x.astype(np.float64)), axis=dims, keepdims=keepdim)
        err = np.abs(got - exact) / (scale + 1)
        assert np.all(err <= 4 * np.finfo(dtype).eps * max(1, np.log2(x.size + 1)))


def test_a_bias_gradient_is_summed_through_einsum(monkeypatch):
    """The conv2d bias case takes the einsum path (a mutation of the condition fails this)."""
    from autodiff.ops.reduce import _sum

    calls = []
    real = np.einsum

    def spy(*args, **kwargs):
        calls.append(args[0])
        return real(*args, **kwargs)

    monkeypatch.setattr(np, "einsum", spy)
    grad = np.ones((4, 3, 5, 6), dtype=np.float32)
    total = _sum(grad, (0, 2, 3), True)
    assert calls == ["abcd->b"]
    np.testing.assert_array_equal(total, np.full((1, 3, 1, 1), 120, dtype=np.float32))


@given(
    batch=st.sampled_from([(), (3,), (2, 1)]),
    other_batch=st.sampled_from([(), (3,), (1, 3)]),
    m=st.integers(0, 40),
    n=st.integers(0, 40),
    dtype=st.sampled_from(
        [np.float32, np.float64, np.float16, np.int64, np.uint8, np.bool_, np.complex64]
    ),
    transposed=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
)
def test_products_of_inner_dim_one_are_matmuls_bits(
    batch, other_batch, m, n, dtype, transposed, seed
):
    """An inner dim of 1 (a linear layer at batch size one) skips NumPy's slow matmul loop;
    each element is one product, so the bits, shape and dtype are matmul's."""
    from autodiff.ops import linalg

    rng = np.random.default_rng(seed)

    def values(shape):
        numbers = rng.standard_normal(shape) * 100
        if np.dtype(dtype).kind == "c":  # (kept in np.matmul: parts summed its own way)
            numbers = numbers + 1j * rng.standard_normal(shape)
        return numbers.astype(dtype)

    a = values(batch + (1, m))
    a = np.swapaxes(a, -1, -2) if transposed else a.reshape(batch + (m, 1))  # a view, or not
    b = values(other_batch + (1, n))
    with np.errstate(over="ignore"):  # float16: products past 65504 are inf in both
        expected = np.matmul(a, b)
        product = linalg._matmul(a, b)
    assert product.shape == expected.shape and product.dtype == expected.dtype
    np.testing.assert_array_equal(product, expected)


def test_outer_products_take_each_path():
    """np.dot up to _OUTER_BY_DOT elements of 2-D operands, np.multiply beyond: one answer."""
    from autodiff.ops import linalg

    rng = np.random.default_rng(0)
    side = int(np.sqrt(linalg._OUTER_BY_DOT)) + 1
    for m, n in [(3, 5), (side, side)]:
        a, b = rng.standard_normal((m, 1)), rng.standard_normal((1, n))
        np.testing.assert_array_equal(linalg._outer_products(a, b), np.matmul(a, b))


@pytest.mark.parametrize("shape", [(2, 3), (1100, 1000)])
def test_outer_products_of_inf_and_zero_are_nan(shape):
    """inf * 0 is NaN, as in matmul and PyTorch; np.dot's outer product gave 0 for it
    (linear with one input feature, or a batch of one: make fuzz found it)."""
    from autodiff.ops import linalg

    a, b = np.ones((shape[0], 1)), np.ones((1, shape[1]))
    a[1, 0], b[0, 0], b[0, 2] = np.inf, 0.0, np.nan
    with np.errstate(invalid="ignore"):
        product = linalg._outer_products(a, b)
        expected = np.multiply(a, b)
    assert np.isnan(product[1, 0]) and np.isnan(product[0, 2])
    np.testing.assert_array_equal(product, expected)
    from nn import functional

    x, w = autodiff.tensor([[0.0]]), autodiff.tensor([[0.0], [np.inf]])
    with np.errstate(invalid="ignore"):
        y = functional.linear(x, w)
    np.testing.assert_array_equal(y.data, [[0.0, np.nan]])


@given(seed=st.integers(0, 2**32 - 1))
def test_linear_layer_at_batch_size_one_matches_the_composed_form(seed):
    """Batch size one: the weight's gradient is the outer product g^T x."""
    rng = np.random.default_rng(seed)
    x = autodiff.tensor(rng.standard_normal((1, 7)), requires_grad=True)
    w = autodiff.tensor(rng.standard_normal((5, 7)), requires_grad=True)
    b = autodiff.tensor(rng.standard_normal(5), requires_grad=True)
    upstream = rng.standard_normal((1, 5))
    from nn import functional

    functional.linear(x, w, b).backward(autodiff.tensor(upstream))
    np.testing.assert_array_equal(w.grad.data, upstream.T * x.data)
    np.testing.assert_allclose(x.grad.data, upstream @ w.data, rtol=1e-12)
    np.testing.assert_array_equal(b.grad.data, upstream[0])


@given(
    rows=st.integers(1, 12),
    columns=st.integers(1, 6),
    kind=st.sampled_from(["rows", "rows and columns", "mask", "rows, then a slice"]),
    count=st.integers(0, 15),
    repeats=st.booleans(),
    dtype=st.sampled_from([np.float32, np.float64, np.int64, np.complex64]),
    seed=st.integers(0, 2**32 - 1),
)
def test_index_add_gives_np_add_at_bits(rows, columns, kind, count, repeats, dtype, seed):
    """Indexing's backward: np.add.at's result, by one assignment of 0 + g where no position
    repeats (negative indices counted from the end; -0.0, inf and NaN as np.add.at leaves
    them), by np.add.at itself otherwise."""
    from autodiff.ops import shape as shape_ops

    rng = np.random.default_rng(seed)
    shape = (rows, columns)
    count = min(count, rows) if not repeats else count
    if repeats:
        picked = rng.integers(-rows, rows, count)
    else:
        picked = rng.permutation(rows)[:count] - rng.integers(0, 2, count) * rows
    if kind == "rows":
        index = picked
    elif kind == "rows and columns":
        index = (picked, rng.integers(-columns, columns, count))
    elif kind == "mask":
        index = rng.random(shape) < 0.5
    else:
        index = (picked, slice(None, None, 2))
    taken = np.zeros(shape)[index].shape
    special = np.array([-0.0, np.inf, -np.inf, np.nan, 1.5])
    values = rng.choice(special, taken) if dtype != np.int64 else rng.integers(-9, 9, taken)
    g = np.asarray(values).astype(dtype)
    expected = np.zeros(shape, dtype=dtype)
    with np.errstate(invalid="ignore"):  # inf + -inf where a position repeats
        np.add.at(expected, index, g)
    # these shapes are small: the check for repeats runs only with its bounds lowered
    bounds = shape_ops._FEWEST_ELEMENTS, shape_ops._ELEMENTS_PER_POSITION
    shape_ops._FEWEST_ELEMENTS = shape_ops._ELEMENTS_PER_POSITION = 0
    try:
        got = shape_ops.IndexAdd.apply(autodiff.tensor(g), index, shape).data
        once = shape_ops._one_assignment_will_do(index, shape, g.size)
    finally:
        shape_ops._FEWEST_ELEMENTS, shape_ops._ELEMENTS_PER_POSITION = bounds
    assert once == (kind == "mask" or (kind != "rows, then a slice" and not repeats)) or (
        repeats and once  # (drawn with repeats, it may still reach each position once)
    )
    assert got.dtype == expected.dtype
    np.testing.assert_array_equal(got, expected)
    assert np.array_equal(np.signbit(got.real), np.signbit(expected.real))


def test_index_add_checks_for_repeats_only_where_it_pays():
    """The lecture's logp[arange(N), y] takes one element per position: np.add.at is
    cheaper than the check; whole rows (x[rows]) and masks are assigned."""
    from autodiff.ops.shape import _one_assignment_will_do

    rng = np.random.default_rng(0)
    pairs = (np.arange(64), rng.integers(0, 10, 64))
    assert not _one_assignment_will_do(pairs, (64, 10), 64)
    assert _one_assignment_will_do(np.arange(0, 64, 2), (64, 1000), 32 * 1000)
    assert not _one_assignment_will_do(np.zeros(32, dtype=np.int64), (64, 1000), 32 * 1000)
    assert _one_assignment_will_do(rng.random((64, 10)) < 0.5, (64, 10), 30)


@settings(max_examples=30)
@given(
    values=hnp.arrays(
        np.float64,
        st.tuples(st.integers(1, 4), st.integers(1, 4)),
        elements=st.one_of(
            st.floats(-30, 30), st.sampled_from([0.0, -0.0, np.inf, -np.inf, np.nan, 1e300])
        ),
    ),
    dtype=st.sampled_from([np.float16, np.float32, np.float64]),
    seed=st.integers(0, 999),
)
def test_usual_backward_of_elementwise_ops_is_the_recorded_one(values, dtype, seed):
    """Without create_graph, the backward of products, quotients, exp, log, tanh, sigmoid,
    negation, sums, reshapes and transposes (and the engine's sums over broadcast dims)
    compute on the arrays instead of through ops: the gradients are the recorded rules'
    bits (broadcasting and Python numbers included)."""
    rng = np.random.default_rng(seed)
    with np.errstate(all="ignore"):
        x = values.astype(dtype)
        other = rng.standard_normal((1, x.shape[1])).astype(dtype)
        g = rng.standard_normal(x.shape).astype(dtype)
        for op in (
            lambda t, w: t * w,
            lambda t, w: t * 1.01,
            lambda t, w: t.exp(),
            lambda t, w: t.tanh(),
            lambda t, w: t.sigmoid(),
            lambda t, w: t / w,
            lambda t, w: w / t,
            lambda t, w: 2.5 / t,
            lambda t, w: t.log(),
            lambda t, w: -t,
            lambda t, w: w - t,
            lambda t, w: t.sum(0),
            lambda t, w: t.mean(1, keepdim=True),
            lambda t, w: t.sum(),
            lambda t, w: t + w,
            lambda t, w: t.reshape(-1) * 2,
            lambda t, w: t.T * 2,
            lambda t, w: w.expand(t.shape) * t,
        ):
            grads = []
            for create_graph in (False, True):
                t = autodiff.tensor(x, requires_grad=True)
                w = autodiff.tensor(other, requires_grad=True)
                out = op(t, w)
                leaves = [t, w] if out.grad_fn.next_functions[-1] is not None else [t]
                upstream = autodiff.tensor(np.resize(g, out.shape))
                found = autodiff.grad(
                    out, leaves, upstream, create_graph=create_graph, allow_unused=True
                )
                grads.append([None if f is None else (f.dtype, f.data.tobytes()) for f in found])
                assert create_graph or all(f is None or not f.requires_grad for f in found)
            assert grads[0] == grads[1]


def test_usual_backward_sums_over_broadcast_dims_overflow_silently():
    """The engine's sum over broadcast dims, now on the arrays, stays quiet where it
    overflows to inf, as Sum.apply was (and PyTorch is)."""
    import warnings

    x = autodiff.tensor(np.ones((3, 1), np.float32), requires_grad=True)
    w = autodiff.tensor(np.ones((1, 4), np.float32), requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        (x * w).backward(autodiff.tensor(np.full((3, 4), 3e38, np.float32)))
    assert np.isposinf(x.grad.data).all() and np.isposinf(w.grad.data).all()
