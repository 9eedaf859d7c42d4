"""``nn.functional``: gradients by finite differences (float64, random upstream
gradient, Hypothesis-drawn shapes and hyper-parameters), NumPy reference values,
numerical stability and the errors bad input gets.  Runs without PyTorch."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import autodiff
import nn.functional as F  # noqa: N812
from autodiff.testing import assert_gradients_match


def leaf(array):
    return autodiff.tensor(np.asarray(array, dtype=np.float64), requires_grad=True)


def distinct(shape, seed):
    """Values with gaps far wider than the finite-difference step (no ties at a max)."""
    rng = np.random.default_rng(seed)
    return rng.permutation(int(np.prod(shape))).reshape(shape) / 10.0 - 1.0


# -- NumPy references ------------------------------------------------------------------------


def conv2d_reference(x, w, b, stride, padding, dilation, groups):
    """The convolution sum written out with loops: the definition, slowly."""
    sh, sw = stride
    ph, pw = padding
    dh, dw = dilation
    x = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    n, _, h, wd = x.shape
    c_out, cpg, kh, kw = w.shape
    oh = (h - dh * (kh - 1) - 1) // sh + 1
    ow = (wd - dw * (kw - 1) - 1) // sw + 1
    out = np.zeros((n, c_out, oh, ow))
    opg = c_out // groups
    for o in range(c_out):
        g = o // opg
        for i in range(oh):
            for j in range(ow):
                patch = x[
                    :,
                    g * cpg : (g + 1) * cpg,
                    i * sh : i * sh + dh * (kh - 1) + 1 : dh,
                    j * sw : j * sw + dw * (kw - 1) + 1 : dw,
                ]
                out[:, o, i, j] = (patch * w[o]).sum(axis=(1, 2, 3)) + (0 if b is None else b[o])
    return out


@st.composite
def conv_cases(draw):
    groups = draw(st.sampled_from([1, 2]))
    cpg = draw(st.integers(1, 2))
    opg = draw(st.integers(1, 2))
    kernel = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    stride = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    padding = (draw(st.integers(0, 1)), draw(st.integers(0, 1)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    span = [d * (k - 1) + 1 for k, d in zip(kernel, dilation, strict=True)]
    h = draw(st.integers(max(1, span[0] - 2 * padding[0]), span[0] + 3))
    w = draw(st.integers(max(1, span[1] - 2 * padding[1]), span[1] + 3))
    return (
        (draw(st.integers(1, 2)), groups * cpg, h, w),
        (groups * opg, cpg, *kernel),
        {"stride": stride, "padding": padding, "dilation": dilation, "groups": groups},
        draw(st.booleans()),
        draw(st.integers(0, 2**16)),
    )


@settings(max_examples=20)
@given(case=conv_cases())
def test_conv2d_equals_the_loop_definition_and_its_gradients_match(case):
    x_shape, w_shape, kwargs, bias, seed = case
    rng = np.random.default_rng(seed)
    x, w = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
    b = rng.standard_normal(w_shape[0]) if bias else None
    out = F.conv2d(leaf(x), leaf(w), None if b is None else leaf(b), **kwargs)
    expected = conv2d_reference(x, w, b, **kwargs)
    np.testing.assert_allclose(out.data, expected, rtol=1e-10, atol=1e-12)
    args = [leaf(x), leaf(w)] + ([leaf(b)] if bias else [])
    assert_gradients_match(
        lambda *t: F.conv2d(t[0], t[1], t[2] if len(t) > 2 else None, **kwargs), *args, seed=seed
    )


def test_conv2d_padding_same_keeps_the_size_and_valid_pads_nothing():
    x = leaf(np.random.default_rng(0).standard_normal((1, 2, 6, 5)))
    for kernel, dilation in [((3, 3), (1, 1)), ((2, 4), (1, 1)), ((3, 2), (2, 3))]:
        w = leaf(np.random.default_rng(1).standard_normal((3, 2, *kernel)))
        assert F.conv2d(x, w, padding="same", dilation=dilation).shape == (1, 3, 6, 5)
        assert_gradients_match(
            lambda a, b, d=dilation: F.conv2d(a, b, padding="same", dilation=d), x, w
        )
    w = leaf(np.ones((1, 2, 3, 3)))
    assert F.conv2d(x, w, padding="valid").shape == (1, 1, 4, 3)


@st.composite
def pool_cases(draw):
    kernel = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = (draw(st.integers(0, kernel[0] // 2)), draw(st.integers(0, kernel[1] // 2)))
    h = draw(st.integers(kernel[0], kernel[0] + 4))
    w = draw(st.integers(kernel[1], kernel[1] + 4))
    return (draw(st.integers(1, 2)), 2, h, w), kernel, stride, padding, draw(st.booleans())


@settings(max_examples=20)
@given(case=pool_cases(), seed=st.integers(0, 2**16))
def test_max_pool2d_values_and_gradients(case, seed):
    shape, kernel, stride, padding, ceil_mode = case
    x = distinct(shape, seed)
    out = F.max_pool2d(leaf(x), kernel, stride, padding, ceil_mode=ceil_mode)
    padded = np.pad(
        x, ((0, 0), (0, 0), (padding[0],) * 2, (padding[1],) * 2), constant_values=-np.inf
    )
    for i in range(out.shape[2]):
        for j in range(out.shape[3]):
            window = padded[
                :,
                :,
                i * stride[0] : i * stride[0] + kernel[0],
                j * stride[1] : j * stride[1] + kernel[1],
            ]
            np.testing.assert_array_equal(out.data[:, :, i, j], window.max(axis=(2, 3)))
    assert_gradients_match(
        lambda t: F.max_pool2d(t, kernel, stride, padding, ceil_mode=ceil_mode), leaf(x), seed=seed
    )


@settings(max_examples=40)
@given(
    n=st.integers(0, 3),
    c=st.integers(1, 3),
    size=st.tuples(st.integers(1, 8), st.integers(1, 8)),
    kernel=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    stride=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    dilation=st.tuples(st.integers(1, 2), st.integers(1, 2)),
    dtype=st.sampled_from([np.float64, np.float32]),
    seed=st.integers(0, 999),
)
def test_window_sum_agrees_with_the_summed_window_view(
    n, c, size, kernel, stride, dilation, dtype, seed
):
    """avg_pool2d's fused WindowSum: each window summed from zero, tap by tap in the
    window's order (PyTorch's); the summed window view's values to rounding, its dL/dx to
    the bit, and the same second derivatives (WindowSumBackward's VJP is WindowSum)."""
    from autodiff.ops import Windows2d, WindowSum

    spans = [d * (k - 1) + 1 for k, d in zip(kernel, dilation)]
    if any(s < span for s, span in zip(size, spans)):
        return  # no window fits
    out_hw = tuple((s - span) // st_ + 1 for s, span, st_ in zip(size, spans, stride))
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((n, c) + size) * 10).astype(dtype)
    a, b = autodiff.tensor(x, requires_grad=True), autodiff.tensor(x, requires_grad=True)
    fused = WindowSum.apply(a, kernel, stride, dilation, out_hw)
    view = Windows2d.apply(b, kernel, stride, dilation)[:, :, : out_hw[0], : out_hw[1]]
    composed = view.sum(dim=(-2, -1))
    assert fused.grad_fn.name() == "WindowSumBackward" and fused.dtype == dtype
    expected = np.zeros((n, c) + out_hw, dtype=dtype)
    for p in range(kernel[0]):
        for q in range(kernel[1]):
            rows = slice(p * dilation[0], None, stride[0])
            cols = slice(q * dilation[1], None, stride[1])
            expected = expected + x[:, :, rows, cols][:, :, : out_hw[0], : out_hw[1]]
    np.testing.assert_array_equal(fused.data, expected)
    tolerance = 1e-5 if dtype == np.float32 else 1e-13
    np.testing.assert_allclose(fused.data, composed.data, rtol=tolerance, atol=tolerance * 100)
    v = rng.standard_normal(fused.shape).astype(dtype)
    v_fused, v_composed = (autodiff.tensor(v, requires_grad=True) for _ in range(2))
    (g_fused,) = autodiff.grad(fused, a, v_fused, create_graph=True)
    (g_composed,) = autodiff.grad(composed, b, v_composed, create_graph=True)
    np.testing.assert_array_equal(g_fused.data, g_composed.data)
    u = autodiff.tensor(rng.standard_normal(x.shape).astype(dtype))
    (h_fused,) = autodiff.grad((g_fused * u).sum(), v_fused)  # d<dL/dx, u>/dv: u's window sums
    (h_composed,) = autodiff.grad((g_composed * u).sum(), v_composed)
    np.testing.assert_allclose(h_fused.data, h_composed.data, rtol=tolerance, atol=tolerance * 100)


def test_avg_pool2d_sums_a_window_of_negative_zeros_to_zero(torch_or_none):
    """Summed from zero, as PyTorch's kernel: -0.0 everywhere averages to 0.0, and so does
    its gradient where g is -0.0."""
    x = autodiff.tensor(np.full((1, 1, 4, 4), -0.0, dtype=np.float32), requires_grad=True)
    y = F.avg_pool2d(x, 2)
    y.backward(autodiff.tensor(np.full((1, 1, 2, 2), -0.0, dtype=np.float32)))
    assert not np.signbit(y.data).any() and not np.signbit(x.grad.data).any()
    if torch_or_none is not None:
        theirs = torch_or_none.nn.functional.avg_pool2d(torch_or_none.from_numpy(x.data), 2)
        assert not torch_or_none.signbit(theirs).any()


@pytest.mark.parametrize("ceil_mode", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_avg_pool2d_gives_pytorchs_bits(ceil_mode, dtype, torch_or_none):
    """The same order of additions as PyTorch's kernel, so the same values to the bit."""
    if torch_or_none is None:
        pytest.skip("PyTorch is not installed")
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((3, 4, 11, 9)) * 10).astype(dtype)
    for kernel, stride, padding in [(2, 2, 0), (3, 1, 1), ((3, 2), (2, 1), (1, 0))]:
        ours = F.avg_pool2d(autodiff.tensor(x), kernel, stride, padding, ceil_mode)
        theirs = torch_or_none.nn.functional.avg_pool2d(
            torch_or_none.from_numpy(x), kernel, stride, padding, ceil_mode
        )
        np.testing.assert_array_equal(ours.data, theirs.numpy())


@settings(max_examples=20)
@given(case=pool_cases(), include=st.booleans(), seed=st.integers(0, 2**16))
def test_avg_pool2d_values_and_gradients(case, include, seed):
    shape, kernel, stride, padding, ceil_mode = case
    x = np.random.default_rng(seed).standard_normal(shape)
    out = F.avg_pool2d(leaf(x), kernel, stride, padding, ceil_mode, include)
    if not ceil_mode:
        padded = np.pad(x, ((0, 0), (0, 0), (padding[0],) * 2, (padding[1],) * 2))
        ones = np.pad(np.ones(shape[2:]), ((padding[0],) * 2, (padding[1],) * 2))
        for i in range(out.shape[2]):
            for j in range(out.shape[3]):
                rows = slice(i * stride[0], i * stride[0] + kernel[0])
                cols = slice(j * stride[1], j * stride[1] + kernel[1])
                count = kernel[0] * kernel[1] if include else ones[rows, cols].sum()
                np.testing.assert_allclose(
                    out.data[:, :, i, j], padded[:, :, rows, cols].sum(axis=(2, 3)) / count
                )
    assert_gradients_match(
        lambda t: F.avg_pool2d(t, kernel, stride, padding, ceil_mode, include), leaf(x), seed=seed
    )


@settings(max_examples=15)
@given(
    h=st.integers(1, 7),
    w=st.integers(1, 7),
    oh=st.integers(1, 5),
    ow=st.integers(1, 5),
    seed=st.integers(0, 99),
)
def test_adaptive_avg_pool2d_values_and_gradients(h, w, oh, ow, seed):
    x = np.random.default_rng(seed).standard_normal((1, 2, h, w))
    out = F.adaptive_avg_pool2d(leaf(x), (oh, ow))
    for i in range(oh):
        for j in range(ow):
            rows = slice(i * h // oh, -(-(i + 1) * h // oh))
            cols = slice(j * w // ow, -(-(j + 1) * w // ow))
            np.testing.assert_allclose(out.data[:, :, i, j], x[:, :, rows, cols].mean(axis=(2, 3)))
    assert_gradients_match(lambda t: F.adaptive_avg_pool2d(t, (oh, ow)), leaf(x), seed=seed)


def test_unfold_is_im2col_and_conv_is_unfold_times_weight():
    rng = np.random.default_rng(2)
    x, w = leaf(rng.standard_normal((2, 3, 5, 4))), leaf(rng.standard_normal((4, 3, 2, 3)))
    cols = F.unfold(x, (2, 3), padding=1, stride=(2, 1))  # (N, C*kh*kw, L)
    via_unfold = (w.reshape(4, -1) @ cols).reshape(2, 4, 3, 4)
    np.testing.assert_allclose(via_unfold.data, F.conv2d(x, w, padding=1, stride=(2, 1)).data)
    assert_gradients_match(lambda t: F.unfold(t, 2, dilation=(1, 2), padding=1), x)


# -- linear, activations, softmax --------------------------------------------------------------

shapes_2d = st.tuples(st.integers(1, 4), st.integers(1, 5))


@settings(max_examples=15)
@given(shape=shapes_2d, out=st.integers(1, 4), bias=st.booleans(), seed=st.integers(0, 99))
def test_linear_gradients(shape, out, bias, seed):
    rng = np.random.default_rng(seed)
    args = [leaf(rng.standard_normal(shape)), leaf(rng.standard_normal((out, shape[1])))]
    if bias:
        args.append(leaf(rng.standard_normal(out)))
    y = F.linear(*args)
    expected = args[0].data @ args[1].data.T + (args[2].data if bias else 0)
    np.testing.assert_allclose(y.data, expected)
    assert_gradients_match(F.linear, *args, seed=seed)


def _two_sets_of_leaves(arrays, wanted):
    """Two sets of leaves of the same (input, weight[, bias]) arrays, one for a fused form and
    one for its composed form; those ``wanted`` names ("all", or one name) require grad."""
    names = ["input", "weight", "bias"][: len(arrays)]

    def leaves():
        return [
            autodiff.tensor(a, requires_grad=wanted in ("all", name))
            for a, name in zip(arrays, names, strict=True)
        ]

    return leaves(), leaves()


def _second_derivatives(grads, inputs, us):
    """d/d(inputs) of sum_k <grads[k], us[k]>, as arrays (zeros where they do not depend on it)."""
    total = sum((g * u).sum() for g, u in zip(grads, us, strict=True))
    found = [None] * len(inputs)
    if total.requires_grad:
        found = autodiff.grad(total, inputs, allow_unused=True)
    return [np.zeros(t.shape) if h is None else h.data for h, t in zip(found, inputs)]


def _composed_linear(x, weight, bias=None):
    out = x @ weight.T  # the three ops the fused Linear replaces
    return out if bias is None else out + bias


@settings(max_examples=25)
@given(
    n=st.integers(0, 6),
    sizes=st.tuples(st.integers(1, 5), st.integers(1, 5)),
    bias=st.booleans(),
    wanted=st.sampled_from(["all", "input", "weight", "bias"]),
    dtype=st.sampled_from([np.float64, np.float32]),
    seed=st.integers(0, 999),
)
def test_fused_linear_agrees_with_the_composed_form(n, sizes, bias, wanted, dtype, seed):
    """linear on a batch of rows is one primitive; x @ W.T + b gives the same bits
    forward and backward, and the same second derivatives (to rounding)."""
    in_features, out_features = sizes
    rng = np.random.default_rng(seed)
    arrays = [rng.standard_normal((n, in_features)), rng.standard_normal(sizes[::-1])]
    if bias:
        arrays.append(rng.standard_normal(out_features))
    arrays = [a.astype(dtype) for a in arrays]
    fused_in, composed_in = _two_sets_of_leaves(arrays, wanted)
    fused, composed = F.linear(*fused_in), _composed_linear(*composed_in)
    if any(t.requires_grad for t in fused_in):
        assert fused.grad_fn.name() == "LinearBackward"
    assert fused.dtype == composed.dtype == dtype
    np.testing.assert_array_equal(fused.data, composed.data)
    v = autodiff.tensor(rng.standard_normal(fused.shape).astype(dtype))
    needed = [i for i, t in enumerate(fused_in) if t.requires_grad]
    if not needed:
        return
    # the usual backward (on the arrays) and create_graph's (recorded ops): the same bits
    plain = autodiff.grad(fused, [fused_in[i] for i in needed], v, retain_graph=True)
    g_fused = autodiff.grad(fused, [fused_in[i] for i in needed], v, create_graph=True)
    g_composed = autodiff.grad(composed, [composed_in[i] for i in needed], v, create_graph=True)
    for a, b, c in zip(plain, g_fused, g_composed, strict=True):
        assert a.grad_fn is None and a.dtype == b.dtype == c.dtype
        np.testing.assert_array_equal(a.data, c.data)
        np.testing.assert_array_equal(b.data, c.data)
    # second order: d/d(inputs) of <dL/d(inputs), u>
    us = [autodiff.tensor(rng.standard_normal(g.shape).astype(dtype)) for g in g_fused]
    for a, b in zip(
        _second_derivatives(g_fused, fused_in, us),
        _second_derivatives(g_composed, composed_in, us),
        strict=True,
    ):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)


@settings(max_examples=10)
@given(n=st.integers(1, 4), bias=st.booleans(), seed=st.integers(0, 999))
def test_fused_linear_gradients_are_checked_numerically_to_second_order(n, bias, seed):
    rng = np.random.default_rng(seed)
    args = [leaf(rng.standard_normal((n, 3))), leaf(rng.standard_normal((2, 3)))]
    if bias:
        args.append(leaf(rng.standard_normal(2)))
    assert F.linear(*args).grad_fn.name() == "LinearBackward"
    assert_gradients_match(F.linear, *args, seed=seed, order=2)


@pytest.mark.parametrize("n", [192, 193, 300])
def test_fused_linear_agrees_with_the_composed_form_for_large_batches(n):
    """Past 192 rows x @ W.T runs as one product instead of (W @ x.T).T: both forms alike."""
    rng = np.random.default_rng(n)
    arrays = [rng.standard_normal(s).astype(np.float32) for s in ((n, 40), (30, 40), (30,))]
    fused_in = [autodiff.tensor(a, requires_grad=True) for a in arrays]
    composed_in = [autodiff.tensor(a, requires_grad=True) for a in arrays]
    fused, composed = F.linear(*fused_in), _composed_linear(*composed_in)
    assert fused.grad_fn.name() == "LinearBackward" and fused.data.flags.c_contiguous
    np.testing.assert_array_equal(fused.data, composed.data)
    np.testing.assert_allclose(fused.data, arrays[0] @ arrays[1].T + arrays[2], rtol=1e-5)
    v = autodiff.tensor(rng.standard_normal(fused.shape).astype(np.float32))
    for a, b in zip(autodiff.grad(fused, fused_in, v), autodiff.grad(composed, composed_in, v)):
        np.testing.assert_array_equal(a.data, b.data)


@settings(max_examples=25)
@given(
    rows=st.integers(0, 400),
    columns=st.integers(0, 70),
    dtype=st.sampled_from([np.float32, np.float64, np.int64]),
    seed=st.integers(0, 999),
)
def test_row_major_transpose_copies_every_block(rows, columns, dtype, seed):
    """The linear layer's product is copied back to row-major 128 rows at a time."""
    from autodiff.ops.linalg import _row_major_transpose

    array = (np.random.default_rng(seed).standard_normal((rows, columns)) * 100).astype(dtype)
    copied = _row_major_transpose(array)
    assert copied.flags.c_contiguous and copied.dtype == dtype
    assert not np.shares_memory(copied, array) or array.size <= 1
    np.testing.assert_array_equal(copied, array.T)


@pytest.mark.parametrize("bias_dtype", [np.float32, np.float64])
@pytest.mark.parametrize("out_features", [128, 129, 300])
def test_fused_linear_of_wide_layers_agrees_with_the_composed_form(out_features, bias_dtype):
    """Wider than one block of the row-major copy, the bias added in place (or, wider
    dtype, into a new array): the composed form's bits and dtype."""
    rng = np.random.default_rng(out_features)
    shapes = ((64, 50), (out_features, 50), (out_features,))
    arrays = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    arrays[2] = arrays[2].astype(bias_dtype)
    fused_in = [autodiff.tensor(a, requires_grad=True) for a in arrays]
    composed_in = [autodiff.tensor(a, requires_grad=True) for a in arrays]
    fused, composed = F.linear(*fused_in), _composed_linear(*composed_in)
    assert fused.grad_fn.name() == "LinearBackward" and fused.data.flags.c_contiguous
    assert fused.dtype == composed.dtype == np.result_type(np.float32, bias_dtype)
    np.testing.assert_array_equal(fused.data, composed.data)
    np.testing.assert_array_equal(fused_in[2].data, arrays[2])  # the bias is left alone
    if bias_dtype != np.float32:
        return  # (a float64 gradient's products into float32 differ in the last bits)
    v = autodiff.tensor(rng.standard_normal(fused.shape).astype(fused.dtype))
    for a, b in zip(autodiff.grad(fused, fused_in, v), autodiff.grad(composed, composed_in, v)):
        np.testing.assert_array_equal(a.data, b.data)


def test_linear_stays_composed_outside_a_batch_of_rows():
    """One sample (1-d), more batch dims, a bias of another shape, or a column-major
    input or weight (for which x @ W.T + b runs other products): as written."""
    w = autodiff.randn(3, 4, requires_grad=True)
    w_columns = autodiff.randn(4, 3).T.requires_grad_()  # a (3, 4) column-major leaf
    for x, w_, b in (
        (autodiff.randn(4, requires_grad=True), w, autodiff.randn(3)),
        (autodiff.randn(2, 5, 4, requires_grad=True), w, autodiff.randn(3)),
        (autodiff.randn(2, 4, requires_grad=True), w, autodiff.randn(1, 3)),
        (autodiff.randn(4, 2).T.requires_grad_(), w, autodiff.randn(3)),
        (autodiff.randn(2, 4, requires_grad=True), w_columns, autodiff.randn(3)),
    ):
        y = F.linear(x, w_, b)
        assert y.grad_fn.name() == "AddBackward"
        np.testing.assert_array_equal(y.data, _composed_linear(x, w_, b).data)
    x = autodiff.randn(2, 4, requires_grad=True)
    with pytest.raises(RuntimeError, match=r"linear: input of shape \(2, 4\)"):
        F.linear(x, autodiff.randn(3, 5))


def _conv2d_forms(x_array, w_array, b_array, stride, padding, dilation, wanted):
    """(fused output, its inputs, composed output, its inputs) for conv2d."""
    arrays = [x_array, w_array] + ([] if b_array is None else [b_array])
    fused_in, composed_in = _two_sets_of_leaves(arrays, wanted)
    fused = F.conv2d(
        *fused_in[:2], fused_in[2] if b_array is not None else None, stride, padding, dilation
    )
    widths = tuple((p, p) for p in padding)
    kernel = w_array.shape[2:]
    out_hw = tuple(
        (size + 2 * p - d * (k - 1) - 1) // s + 1
        for size, p, k, s, d in zip(x_array.shape[2:], padding, kernel, stride, dilation)
    )
    composed = F._composed_conv2d(
        *composed_in[:2],
        composed_in[2] if b_array is not None else None,
        stride,
        widths,
        dilation,
        1,
        out_hw,
    )
    return fused, fused_in, composed, composed_in


@settings(max_examples=40)
@given(
    n=st.integers(1, 3),
    channels=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    size=st.tuples(st.integers(1, 7), st.integers(1, 7)),
    kernel=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    stride=st.tuples(st.integers(1, 2), st.integers(1, 2)),
    padding=st.tuples(st.integers(0, 3), st.integers(0, 3)),
    dilation=st.tuples(st.integers(1, 2), st.integers(1, 2)),
    bias=st.booleans(),
    wanted=st.sampled_from(["all", "input", "weight", "bias"]),
    dtype=st.sampled_from([np.float64, np.float32]),
    seed=st.integers(0, 999),
)
def test_fused_conv2d_agrees_with_the_composed_form(
    n, channels, size, kernel, stride, padding, dilation, bias, wanted, dtype, seed
):
    """conv2d's common case is one primitive, Conv2d; Im2col + MatMul (+ Add) give the
    same bits for y, dL/dW and dL/db, and for dL/dx where it is fold(W^T g); where it is
    the transposed convolution (stride 1, no dilation, padding below the kernel), the
    same values to rounding.  create_graph's first derivatives are the plain ones to the
    bit, and the second derivatives agree with the composed form's."""
    from autodiff.ops.fused import _transposed_padding

    spans = [d * (k - 1) + 1 for k, d in zip(kernel, dilation)]
    if any(s + 2 * p < span for s, p, span in zip(size, padding, spans)):
        return  # no window fits (conv2d's own error, tested elsewhere)
    c_in, c_out = channels
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c_in) + size).astype(dtype)
    w = rng.standard_normal((c_out, c_in) + kernel).astype(dtype)
    b = rng.standard_normal(c_out).astype(dtype) if bias else None
    fused, fused_in, composed, composed_in = _conv2d_forms(
        x, w, b, stride, padding, dilation, wanted
    )
    if any(t.requires_grad for t in fused_in):
        assert fused.grad_fn.name() == "Conv2dBackward"
    assert fused.dtype == composed.dtype == dtype
    np.testing.assert_array_equal(fused.data, composed.data)
    needed = [i for i, t in enumerate(fused_in) if t.requires_grad]
    if not needed:
        return
    v = autodiff.tensor(rng.standard_normal(fused.shape).astype(dtype))
    plain = autodiff.grad(fused, [fused_in[i] for i in needed], v, retain_graph=True)
    recorded = autodiff.grad(fused, [fused_in[i] for i in needed], v, create_graph=True)
    by_ops = autodiff.grad(composed, [composed_in[i] for i in needed], v, create_graph=True)
    widths = tuple((p, p) for p in padding)
    transposed = _transposed_padding(kernel, stride, widths, dilation, channels) is not None
    for i, a, b_, c in zip(needed, plain, recorded, by_ops, strict=True):
        assert a.grad_fn is None and a.dtype == b_.dtype == c.dtype == dtype
        np.testing.assert_array_equal(a.data, b_.data)
        if i == 0 and transposed:  # the same sum of products, in another order
            scale = np.abs(w).sum() * np.abs(v.data).max()
            tolerance = (1e-5 if dtype == np.float32 else 1e-13) * scale
            np.testing.assert_allclose(a.data, c.data, rtol=0, atol=tolerance)
        else:
            np.testing.assert_array_equal(a.data, c.data)
    us = [autodiff.tensor(rng.standard_normal(g.shape).astype(dtype)) for g in recorded]
    tolerance = 1e-4 if dtype == np.float32 else 1e-10
    for a, b_ in zip(
        _second_derivatives(recorded, fused_in, us),
        _second_derivatives(by_ops, composed_in, us),
        strict=True,
    ):
        np.testing.assert_allclose(a, b_, rtol=tolerance, atol=tolerance)


@pytest.mark.parametrize("chunk_bytes", [1, 4000])
def test_fused_conv2d_gives_the_same_bits_whatever_its_chunks(chunk_bytes, monkeypatch):
    """Conv2d goes a chunk of images at a time; one image per chunk, a few, or the whole
    batch: every image computed alike, the same bits."""
    from autodiff.ops import fused as fused_ops

    rng = np.random.default_rng(0)
    arrays = [
        rng.standard_normal(s).astype(np.float32) for s in ((9, 3, 10, 10), (4, 3, 3, 3), (4,))
    ]

    v = autodiff.tensor(rng.standard_normal((9, 4, 10, 10)).astype(np.float32))

    def run():
        x, w, b = (autodiff.tensor(a, requires_grad=True) for a in arrays)
        y = F.conv2d(x, w, b, padding=1)
        y2 = F.conv2d(x, w, None, stride=2, dilation=(2, 1))  # dL/dx by fold
        loss = (y * v).sum() + y2.sum()
        return [y.data] + [g.data for g in autodiff.grad(loss, (x, w, b))]

    whole = run()
    monkeypatch.setattr(fused_ops, "_CONV_CHUNK_BYTES", chunk_bytes)
    for expected, got in zip(whole, run(), strict=True):
        np.testing.assert_array_equal(got, expected)


@settings(max_examples=10)
@given(
    stride=st.integers(1, 2), padding=st.integers(0, 2), bias=st.booleans(), seed=st.integers(0, 99)
)
def test_fused_conv2d_gradients_are_checked_numerically_to_second_order(
    stride, padding, bias, seed
):
    rng = np.random.default_rng(seed)
    args = [leaf(rng.standard_normal((2, 2, 5, 4))), leaf(rng.standard_normal((3, 2, 3, 2)))]
    if bias:
        args.append(leaf(rng.standard_normal(3)))

    def conv(*tensors):
        x, w, *b = tensors
        return F.conv2d(x, w, b[0] if b else None, stride=stride, padding=padding)

    assert conv(*args).grad_fn.name() == "Conv2dBackward"
    assert_gradients_match(conv, *args, seed=seed, order=2)


def test_conv2d_stays_composed_outside_its_common_case():
    """Groups, float16, mixed dtypes: Im2col + MatMul (+ Add) as written."""
    x = autodiff.randn(2, 4, 5, 5, requires_grad=True)
    cases = [
        (x, autodiff.randn(6, 2, 3, 3), None, {"groups": 2}),
        (x.to(autodiff.float16), autodiff.randn(3, 4, 3, 3).to(autodiff.float16), None, {}),
        (x.to(autodiff.float64), autodiff.randn(3, 4, 3, 3), None, {}),
        (x, autodiff.randn(3, 4, 3, 3), autodiff.randn(3).to(autodiff.float64), {}),
    ]
    for input, weight, bias, options in cases:
        y = F.conv2d(input, weight, bias, **options)
        assert y.grad_fn.name() in ("ReshapeBackward", "AddBackward"), options
    y = F.conv2d(x, autodiff.randn(3, 4, 3, 3), autodiff.randn(3))
    assert y.grad_fn.name() == "Conv2dBackward"


def _composed_batch_norm(x, weight=None, bias=None, eps=1e-5):
    """The ops the fused BatchNorm replaces (training, the batch's statistics)."""
    dims = (0, *range(2, x.ndim))
    shape = (1, x.shape[1]) + (1,) * (x.ndim - 2)
    centered = x - x.mean(dim=dims, keepdim=True)
    out = centered / ((centered * centered).mean(dim=dims, keepdim=True) + eps).sqrt()
    if weight is not None:
        out = out * weight.reshape(shape)
    return out if bias is None else out + bias.reshape(shape)


@settings(max_examples=30)
@given(
    shape=st.tuples(st.integers(1, 4), st.integers(1, 3)).flatmap(
        lambda nc: st.lists(st.integers(1, 4), max_size=2).map(lambda rest: (*nc, *rest))
    ),
    affine=st.sampled_from(["both", "weight", "bias", "neither"]),
    wanted=st.sampled_from(["all", "input", "weight", "bias"]),
    dtype=st.sampled_from([np.float64, np.float32]),
    seed=st.integers(0, 999),
)
def test_fused_batch_norm_agrees_with_the_composed_form(shape, affine, wanted, dtype, seed):
    """batch_norm in training is one primitive: the composed form's values to the bit,
    its first derivatives to rounding (PyTorch's rule, in another order) and its second
    derivatives (create_graph records the rule as ops) to rounding."""
    if math.prod(shape) // shape[1] < 2:
        shape = (2, *shape[1:])  # training needs two values per channel
    rng = np.random.default_rng(seed)
    arrays = [rng.standard_normal(shape) * 3 + 1]
    arrays.append(rng.standard_normal(shape[1]) if affine in ("both", "weight") else None)
    arrays.append(rng.standard_normal(shape[1]) if affine in ("both", "bias") else None)
    arrays = [None if a is None else a.astype(dtype) for a in arrays]
    names = ["input", "weight", "bias"]

    def leaves():
        return [
            None if a is None else autodiff.tensor(a, requires_grad=wanted in ("all", name))
            for a, name in zip(arrays, names, strict=True)
        ]

    fused_in, composed_in = leaves(), leaves()
    fused = F.batch_norm(fused_in[0], None, None, fused_in[1], fused_in[2], training=True)
    composed = _composed_batch_norm(*composed_in)
    assert fused.dtype == composed.dtype == dtype
    np.testing.assert_array_equal(fused.data, composed.data)
    needed = [i for i, t in enumerate(fused_in) if t is not None and t.requires_grad]
    if not needed:
        assert fused.grad_fn is None
        return
    assert fused.grad_fn.name() == "BatchNormBackward"
    rtol = 1e-4 if dtype == np.float32 else 1e-10
    v = autodiff.tensor(rng.standard_normal(fused.shape).astype(dtype))
    plain = autodiff.grad(fused, [fused_in[i] for i in needed], v, retain_graph=True)
    g_fused = autodiff.grad(fused, [fused_in[i] for i in needed], v, create_graph=True)
    g_composed = autodiff.grad(composed, [composed_in[i] for i in needed], v, create_graph=True)
    for a, b, c in zip(plain, g_fused, g_composed, strict=True):
        assert a.grad_fn is None and a.dtype == b.dtype == c.dtype == dtype
        scale = np.abs(c.data).max() + 1
        np.testing.assert_allclose(a.data, c.data, rtol=rtol, atol=rtol * scale)
        np.testing.assert_allclose(b.data, c.data, rtol=rtol, atol=rtol * scale)
    us = [autodiff.tensor(rng.standard_normal(g.shape).astype(dtype)) for g in g_fused]
    inputs = [fused_in[i] for i in needed]
    for a, b in zip(
        _second_derivatives(g_fused, inputs, us),
        _second_derivatives(g_composed, [composed_in[i] for i in needed], us),
        strict=True,
    ):
        scale = np.abs(b).max() + 1
        np.testing.assert_allclose(a, b, rtol=rtol * 10, atol=rtol * 10 * scale)


@settings(max_examples=10)
@given(shape=st.sampled_from([(3, 2), (2, 3, 4), (2, 2, 3, 3)]), seed=st.integers(0, 999))
def test_fused_batch_norm_gradients_are_checked_numerically_to_second_order(shape, seed):
    rng = np.random.default_rng(seed)
    x, weight, bias = (
        leaf(rng.standard_normal(shape)),
        leaf(rng.standard_normal(shape[1])),
        leaf(rng.standard_normal(shape[1])),
    )

    def normalise(x, weight, bias):
        return F.batch_norm(x, None, None, weight, bias, training=True)

    assert normalise(x, weight, bias).grad_fn.name() == "BatchNormBackward"
    assert_gradients_match(normalise, x, weight, bias, seed=seed, order=2)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fused_batch_norm_moves_the_running_statistics_as_the_composed_form(dtype):
    rng = np.random.default_rng(0)
    x = autodiff.tensor(rng.standard_normal((8, 3, 5, 5)).astype(dtype) * 2 + 1)
    weight, bias = autodiff.ones(3, dtype=dtype), autodiff.zeros(3, dtype=dtype)
    running = []
    for fused in (True, False):
        mean, var = autodiff.zeros(3, dtype=dtype), autodiff.ones(3, dtype=dtype)
        # float16 weights send batch_norm down the composed path with the same statistics
        w = weight if fused else weight.to(autodiff.float16)
        F.batch_norm(x, mean, var, w, bias, training=True, momentum=0.3)
        running.append((mean.data, var.data))
    np.testing.assert_array_equal(running[0][0], running[1][0])
    np.testing.assert_array_equal(running[0][1], running[1][1])
    data = x.data.astype(np.float64)
    expected_mean = 0.3 * data.mean(axis=(0, 2, 3))
    expected_var = 0.7 + 0.3 * data.var(axis=(0, 2, 3), ddof=1)
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(running[0][0], expected_mean, rtol=rtol)
    np.testing.assert_allclose(running[0][1], expected_var, rtol=rtol)


def test_batch_norm_keeps_the_composed_form_where_it_does_not_fuse():
    x = autodiff.tensor(np.ones((4, 2), dtype=np.float16) + np.arange(8).reshape(4, 2))
    weight = autodiff.ones(2, dtype=autodiff.float16, requires_grad=True)
    assert F.batch_norm(x, None, None, weight, training=True).grad_fn.name() == "MulBackward"
    x32 = autodiff.tensor(x.data.astype(np.float32), requires_grad=True)
    # a float64 weight on float32 input promotes, as the composed ops do
    mixed = F.batch_norm(x32, None, None, autodiff.ones(2, dtype=autodiff.float64), training=True)
    assert mixed.dtype == np.float64 and mixed.grad_fn.name() == "MulBackward"
    # evaluation normalises with the running statistics, composed
    y = F.batch_norm(x32, autodiff.zeros(2), autodiff.ones(2), training=False)
    assert y.grad_fn.name() == "DivBackward"


def test_fused_batch_norm_is_quiet_and_right_where_squares_overflow():
    """1e300 twice in a channel: mean 1e300, nothing left once centred (PyTorch 2.13
    gives 1.4e285), and no NumPy warning from the statistics."""
    x = autodiff.tensor([[1e300, 1.0], [1e300, 3.0]], dtype=autodiff.float64, requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = F.batch_norm(x, autodiff.zeros(2, dtype=autodiff.float64), None, training=True)
        y.sum().backward()
    np.testing.assert_allclose(y.data[:, 0], [0.0, 0.0])
    np.testing.assert_allclose(y.data[:, 1], [-1.0, 1.0], rtol=1e-5)
    assert np.isfinite(x.grad.data).all()


ELEMENTWISE = [
    ("relu", F.relu, lambda x: np.maximum(x, 0)),
    ("leaky_relu", lambda t: F.leaky_relu(t, 0.2), lambda x: np.where(x > 0, x, 0.2 * x)),
    ("elu", F.elu, lambda x: np.where(x > 0, x, np.expm1(np.minimum(x, 0)))),
    ("sigmoid", F.sigmoid, lambda x: 1 / (1 + np.exp(-x))),
    ("tanh", F.tanh, np.tanh),
    ("silu", F.silu, lambda x: x / (1 + np.exp(-x))),
    ("softplus", F.softplus, lambda x: np.logaddexp(0, x)),
    ("gelu", F.gelu, lambda x: x * 0.5 * (1 + np.vectorize(math.erf)(x / math.sqrt(2)))),
    (
        "gelu_tanh",
        lambda t: F.gelu(t, approximate="tanh"),
        lambda x: 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3))),
    ),
    ("erf", F.erf, np.vectorize(math.erf)),
]


@pytest.mark.parametrize(("name", "fn", "reference"), ELEMENTWISE, ids=[e[0] for e in ELEMENTWISE])
@settings(max_examples=10)
@given(shape=shapes_2d, seed=st.integers(0, 999))
def test_activation_values_and_gradients(name, fn, reference, shape, seed):
    x = np.random.default_rng(seed).uniform(-4, 4, shape)
    x[np.abs(x) < 1e-3] = 0.5  # keep away from the kink of relu-like functions
    np.testing.assert_allclose(fn(leaf(x)).data, reference(x), rtol=1e-12, atol=1e-14)
    assert_gradients_match(fn, leaf(x), seed=seed)


_EDGE_VALUES = [0.0, -0.0, math.inf, -math.inf, math.nan, 1e-40, -1e-40, 1e30, -1e30, 65504.0]


def _edge_arrays(shapes, low=-50.0, high=50.0):
    """float64 arrays of ``shapes``: values in [low, high] mixed with _EDGE_VALUES."""
    return hnp.arrays(
        np.float64, shapes, elements=st.one_of(st.floats(low, high), st.sampled_from(_EDGE_VALUES))
    )


@settings(max_examples=40)
@given(
    values=_edge_arrays(st.integers(1, 40)),
    dtype=st.sampled_from([np.float16, np.float32, np.float64]),
    slope=st.sampled_from([0.01, 0.2, 0.0, -0.5, 1.0, 2.5]),
    seed=st.integers(0, 999),
)
def test_leaky_relu_and_elu_choose_their_branches_by_bits_as_np_where_would(
    values, dtype, slope, seed
):
    """leaky_relu and elu pick each element's branch without np.where (slow on a random
    mask): forward and backward give np.where's formulas' bits, NaN, inf, -0.0 and
    every dtype included."""
    with np.errstate(all="ignore"):
        x = values.astype(dtype)
        g = np.random.default_rng(seed).standard_normal(x.shape).astype(dtype)
        g[:2] = [math.inf, -0.0][: len(g[:2])]

        def leaky_relu_grad():  # slope_times: exactly 0 where the slope is 0, even for inf
            slopes = np.where(x > 0, 1.0, slope).astype(dtype)
            return np.where(slopes == 0, 0, g * slopes).astype(dtype)

        def elu_grad():  # a plain product with the slope
            negative_slope = np.exp(np.where(x < 0, x, 0)) * slope
            return g * np.where(x <= 0, negative_slope, 1).astype(dtype)

        for fn, forward, backward in (
            (
                lambda t: F.leaky_relu(t, slope),
                lambda: np.where(x > 0, x, x * np.asarray(slope, dtype)),
                leaky_relu_grad,
            ),
            (
                lambda t: F.elu(t, slope),
                lambda: np.where(x <= 0, slope * np.expm1(np.where(x > 0, 0, x)), x),
                elu_grad,
            ),
        ):
            t = autodiff.tensor(x, requires_grad=True)
            y = fn(t)
            assert y.dtype == dtype
            assert y.data.tobytes() == forward().astype(dtype).tobytes()
            (grad,) = autodiff.grad(y, t, autodiff.tensor(g))
            assert grad.data.tobytes() == backward().tobytes()


@settings(max_examples=30)
@given(
    values=_edge_arrays(st.tuples(st.integers(1, 6), st.integers(1, 6))),
    dtype=st.sampled_from([np.float16, np.float32, np.float64]),
    seed=st.integers(0, 999),
)
def test_where_chooses_by_bits_as_np_where_would(values, dtype, seed):
    """autodiff.where on two arrays of one shape and dtype picks by bits, and its usual
    backward masks the gradient by bits: np.where's values, NaN and -0.0 included."""
    rng = np.random.default_rng(seed)
    with np.errstate(all="ignore"):
        x = values.astype(dtype)
        y = (-values[::-1, ::-1]).astype(dtype)
        condition = rng.random(x.shape) < 0.5
        g = rng.standard_normal(x.shape).astype(dtype)
        g.flat[0] = -0.0
        a, b = autodiff.tensor(x, requires_grad=True), autodiff.tensor(y, requires_grad=True)
        out = autodiff.where(autodiff.tensor(condition), a, b)
        assert out.data.tobytes() == np.where(condition, x, y).tobytes()
        grad_a, grad_b = autodiff.grad(out, (a, b), autodiff.tensor(g))
        assert grad_a.data.tobytes() == np.where(condition, g, 0).astype(dtype).tobytes()
        assert grad_b.data.tobytes() == np.where(condition, 0, g).astype(dtype).tobytes()


def test_softplus_in_float32_is_rounded_once_from_float64():
    """float16 and float32 softplus are log(1 + exp(x)) computed in float64 and rounded:
    np.logaddexp's own float32 loop missed that value for 16% of these inputs."""
    rng = np.random.default_rng(0)
    x = np.concatenate([np.linspace(-30, 30, 20_001), rng.standard_normal(20_000) * 4])
    for dtype in (np.float32, np.float16):
        narrow = x.astype(dtype)
        expected = np.logaddexp(0, narrow.astype(np.float64)).astype(dtype)
        got = F.Softplus.apply(autodiff.tensor(narrow)).data
        assert got.dtype == dtype
        np.testing.assert_array_equal(got, expected)
    wide = F.Softplus.apply(autodiff.tensor(x)).data
    ulps = np.abs(wide - np.logaddexp(0, x)) / np.spacing(np.logaddexp(0, x))
    assert ulps.max() <= 2


def test_softplus_primitive_agrees_with_the_composed_formula_and_is_stable():
    x = leaf(np.linspace(-30, 30, 61))
    composed = (1 + x.exp()).log()
    fused = F.Softplus.apply(x)
    # composed and fused agree; the fused one keeps full relative accuracy for tiny values
    np.testing.assert_allclose(fused.data, composed.data, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(fused.data, np.log1p(np.exp(x.data)), rtol=1e-13)
    (g1,) = autodiff.grad(F.Softplus.apply(x).sum(), [x])
    (g2,) = autodiff.grad(composed.sum(), [x])
    np.testing.assert_allclose(g1.data, g2.data, rtol=1e-12)
    huge = F.Softplus.apply(autodiff.tensor([1000.0, -1000.0]))
    np.testing.assert_allclose(huge.data, [1000.0, 0.0])


def test_erf_gradient_of_gradient():
    x = leaf([-1.0, 0.3, 2.0])
    (g,) = autodiff.grad(F.erf(x).sum(), [x], create_graph=True)
    np.testing.assert_allclose(g.data, 2 / math.sqrt(math.pi) * np.exp(-(x.data**2)))
    (gg,) = autodiff.grad(g.sum(), [x])
    np.testing.assert_allclose(gg.data, -4 * x.data / math.sqrt(math.pi) * np.exp(-(x.data**2)))


@settings(max_examples=15)
@given(
    shape=st.lists(st.integers(1, 4), min_size=1, max_size=3),
    data=st.data(),
    seed=st.integers(0, 999),
)
def test_softmax_and_log_softmax_values_and_gradients(shape, data, seed):
    dim = data.draw(st.integers(-len(shape), len(shape) - 1))
    x = np.random.default_rng(seed).standard_normal(shape) * 3
    e = np.exp(x - x.max(axis=dim, keepdims=True))
    s = e / e.sum(axis=dim, keepdims=True)
    np.testing.assert_allclose(F.softmax(leaf(x), dim).data, s, rtol=1e-12)
    np.testing.assert_allclose(F.log_softmax(leaf(x), dim).data, np.log(s), rtol=1e-10, atol=1e-12)
    assert_gradients_match(lambda t: F.softmax(t, dim), leaf(x), seed=seed)
    assert_gradients_match(lambda t: F.log_softmax(t, dim), leaf(x), seed=seed)


def _composed_log_softmax(t, dim):
    """log_softmax as the lecture composes it: (z - m) - log sum exp(z - m), m detached."""
    shifted = t - autodiff.tensor(np.max(t.data, axis=dim, keepdims=True))
    return shifted - shifted.exp().sum(dim, keepdim=True).log()


@settings(max_examples=40)
@given(
    values=_edge_arrays(
        st.lists(st.integers(1, 5), min_size=1, max_size=4).map(tuple), -30.0, 30.0
    ),
    dtype=st.sampled_from([np.float32, np.float64]),
    data=st.data(),
    seed=st.integers(0, 999),
)
def test_fused_log_softmax_is_the_composed_form(values, dtype, data, seed):
    """The LogSoftmax primitive gives the composed form's values and gradient bit for bit
    (NaN, inf and -0.0 included), and its second derivatives to rounding."""
    dim = data.draw(st.integers(-values.ndim, values.ndim - 1))
    rng = np.random.default_rng(seed)
    with np.errstate(all="ignore"):
        x = values.astype(dtype)
        g = rng.standard_normal(x.shape).astype(dtype)
        fused_in, composed_in = (autodiff.tensor(x, requires_grad=True) for _ in range(2))
        fused, composed = F.log_softmax(fused_in, dim), _composed_log_softmax(composed_in, dim)
        assert fused.grad_fn.name() == "LogSoftmaxBackward"
        assert fused.dtype == dtype
        assert fused.data.tobytes() == composed.data.tobytes()
        (fused_grad,) = autodiff.grad(fused, fused_in, autodiff.tensor(g))
        (composed_grad,) = autodiff.grad(composed, composed_in, autodiff.tensor(g))
        assert fused_grad.data.tobytes() == composed_grad.data.tobytes()
        if not np.isfinite(x).all():
            return
        weights = autodiff.tensor(rng.standard_normal(x.shape).astype(dtype))
        second = []
        for t, out in ((fused_in, F.log_softmax(fused_in, dim)), (composed_in, None)):
            out = _composed_log_softmax(t, dim) if out is None else out
            (first,) = autodiff.grad(out, t, autodiff.tensor(g), create_graph=True)
            second.append(autodiff.grad((first * weights).sum(), t)[0].data)
        tolerance = 1e-4 if dtype == np.float32 else 1e-10
        np.testing.assert_allclose(second[0], second[1], rtol=tolerance, atol=tolerance)


def test_log_softmax_primitive_only_where_it_computes_the_composed_form():
    """float16, 0-d and empty inputs stay composed; the primitive keeps the output, not the
    input, for backward, so changing the input in place afterwards is no error."""
    assert F.log_softmax(leaf(np.ones((2, 3))), 1).grad_fn.name() == "LogSoftmaxBackward"
    for x in (np.ones((2, 3), np.float16), np.array(1.0), np.ones((0, 3))):
        out = F.log_softmax(autodiff.tensor(x, requires_grad=True), -1)
        assert out.grad_fn.name() != "LogSoftmaxBackward"
    x = leaf(np.arange(6.0).reshape(2, 3))
    y = x * 1
    out = F.log_softmax(y, 1)
    with autodiff.no_grad():
        y.add_(1)
    out.sum().backward()
    assert x.grad is not None


def test_softmax_jacobian_is_the_lectures_matrix():
    functional = pytest.importorskip("autodiff.functional")
    y = leaf([1.0, 2.0, 0.5, -1.0])
    s = F.softmax(y, dim=0).data
    jac = functional.jacobian(lambda t: F.softmax(t, dim=0), y)
    np.testing.assert_allclose(jac.data, np.diag(s) - np.outer(s, s), atol=1e-15)


def test_log_softmax_is_stable_for_logits_of_1e4():
    for dtype in (np.float32, np.float64):
        x = autodiff.tensor(
            np.array([[1e4, 0.0, -1e4], [1e4, 1e4, 1e4]], dtype=dtype), requires_grad=True
        )
        out = F.log_softmax(x, dim=1)
        np.testing.assert_allclose(out.data[0], [0.0, -1e4, -2e4])
        np.testing.assert_allclose(out.data[1], [-math.log(3)] * 3, rtol=1e-6)
        out.sum().backward()
        assert np.isfinite(x.grad.data).all()
        np.testing.assert_allclose(F.softmax(x, dim=1).data.sum(axis=1), 1.0, rtol=1e-6)


def test_softmax_without_dim_warns_like_pytorch():
    with pytest.warns(UserWarning, match="Implicit dimension"):
        F.softmax(autodiff.tensor([[1.0, 2.0]]))


# -- losses ------------------------------------------------------------------------------------


def test_cross_entropy_lecture_number():
    logits = autodiff.tensor([[2.0, 1.0, 0.1]])
    loss = F.cross_entropy(logits, autodiff.tensor([0]))
    expected = -math.log(math.exp(2.0) / (math.exp(2.0) + math.exp(1.0) + math.exp(0.1)))
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    assert loss.dtype == np.float32


def test_cross_entropy_gradient_is_softmax_minus_one_hot_over_n():
    rng = np.random.default_rng(3)
    x, y = leaf(rng.standard_normal((4, 5))), np.array([0, 4, 2, 2])
    F.cross_entropy(x, autodiff.tensor(y)).backward()
    s = np.exp(x.data) / np.exp(x.data).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(x.grad.data, (s - np.eye(5)[y]) / 4)


def cross_entropy_reference(x, y, weight, ignore_index, reduction, eps):
    """PyTorch's documented formula, over (N, C) logits and class indices, with loops."""
    n, c = x.shape
    logp = x - np.log(np.exp(x).sum(axis=1, keepdims=True))
    w = np.ones(c) if weight is None else weight
    losses, weights = [], []
    for i in range(n):
        if y[i] == ignore_index:
            losses.append(0.0)
            weights.append(0.0)
            continue
        nll = -w[y[i]] * logp[i, y[i]]
        smooth = -(w * logp[i]).sum() / c
        losses.append((1 - eps) * nll + eps * smooth)
        weights.append(w[y[i]])
    losses = np.array(losses)
    if reduction == "none":
        return losses
    if reduction == "sum":
        return losses.sum()
    return losses.sum() / sum(weights)


@pytest.mark.parametrize("ignore_index", [-100, -1, 1, 7])
def test_cross_entropy_leaves_out_the_ignored_targets(ignore_index):
    """Whichever side of the classes ignore_index is, its targets add nothing (the mean is over the rest)."""
    x = np.random.default_rng(0).standard_normal((4, 3))
    y = np.array([ignore_index, 0, 2, ignore_index])
    kept = y != ignore_index
    expected = cross_entropy_reference(x[kept], y[kept], None, ignore_index, "mean", 0.0)
    got = F.cross_entropy(leaf(x), autodiff.tensor(y), ignore_index=ignore_index)
    np.testing.assert_allclose(got.data, expected, rtol=1e-12)
    plain = np.array([1, 0, 2, 1])  # none ignored (unless 1 is the ignored class)
    kept = plain != ignore_index
    expected = cross_entropy_reference(x[kept], plain[kept], None, ignore_index, "mean", 0.0)
    got = F.cross_entropy(leaf(x), autodiff.tensor(plain), ignore_index=ignore_index)
    np.testing.assert_allclose(got.data, expected, rtol=1e-12)


@settings(max_examples=25)
@given(
    n=st.integers(1, 4),
    c=st.integers(2, 4),
    weighted=st.booleans(),
    ignore=st.booleans(),
    ignore_index=st.sampled_from([-100, -1, 0, 7]),  # below the classes, a class, above them
    reduction=st.sampled_from(["mean", "sum", "none"]),
    eps=st.sampled_from([0.0, 0.2]),
    seed=st.integers(0, 999),
)
def test_cross_entropy_values_and_gradients(
    n, c, weighted, ignore, ignore_index, reduction, eps, seed
):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c))
    y = rng.integers(0, c, n)
    if 0 <= ignore_index < c:  # a class: some targets may be it, never all
        y[-1] = (ignore_index + 1) % c
    if ignore and n > 1:
        y[0] = ignore_index
    weight = rng.uniform(0.5, 2, c) if weighted else None
    w_t = None if weight is None else autodiff.tensor(weight)
    kwargs = {
        "weight": w_t,
        "reduction": reduction,
        "label_smoothing": eps,
        "ignore_index": ignore_index,
    }
    out = F.cross_entropy(leaf(x), autodiff.tensor(y), **kwargs)
    np.testing.assert_allclose(
        out.data, cross_entropy_reference(x, y, weight, ignore_index, reduction, eps), rtol=1e-10
    )
    assert_gradients_match(
        lambda t: F.cross_entropy(t, autodiff.tensor(y), **kwargs), leaf(x), seed=seed
    )


def _composed_nll_loss(logp, target, weight, ignore_index, reduction):
    """nll_loss as its composed form computes it: a gather, -picked * w, sums, a division."""
    ignored = target == ignore_index
    safe = np.where(ignored, 0, target).astype(np.int64)
    keep = (~ignored).astype(logp.dtype)
    w = keep if weight is None else weight[safe] * keep
    w = autodiff.tensor(np.asarray(w, dtype=logp.dtype))
    loss = -logp.gather(-1, autodiff.tensor(safe[:, None])).squeeze(-1) * w
    if reduction == "none":
        return loss
    return loss.sum() if reduction == "sum" else loss.sum() / w.sum()


@settings(max_examples=40)
@given(
    values=_edge_arrays(st.tuples(st.integers(1, 6), st.integers(1, 5)), -30.0, 0.0),
    dtype=st.sampled_from([np.float32, np.float64]),
    weight_dtype=st.sampled_from([None, np.float32, np.float64]),
    reduction=st.sampled_from(["mean", "sum", "none"]),
    data=st.data(),
    seed=st.integers(0, 999),
)
def test_fused_nll_loss_is_the_composed_form(values, dtype, weight_dtype, reduction, data, seed):
    """The NllLoss primitive gives the composed form's values and gradient bit for bit,
    with class weights, an ignored class and each reduction, and with create_graph the
    same gradient as a function of the upstream gradient."""
    n, c = values.shape
    rng = np.random.default_rng(seed)
    target = np.array(data.draw(st.lists(st.integers(0, c - 1), min_size=n, max_size=n)))
    ignore_index = data.draw(st.sampled_from([-100, 0, c - 1]))
    weight = None if weight_dtype is None else rng.uniform(0, 2, c).astype(weight_dtype)
    with np.errstate(all="ignore"):
        x = values.astype(dtype)
        kept = target != ignore_index
        if reduction == "mean" and not (weight[target] if weight is not None else kept)[kept].sum():
            return  # a mean over no weight: composed on purpose (PyTorch's NaN and gradient)
        fused_in, composed_in = (autodiff.tensor(x, requires_grad=True) for _ in range(2))
        fused = F.nll_loss(
            fused_in,
            autodiff.tensor(target),
            None if weight is None else autodiff.tensor(weight),
            ignore_index=ignore_index,
            reduction=reduction,
        )
        composed = _composed_nll_loss(composed_in, target, weight, ignore_index, reduction)
        assert fused.grad_fn.name() == "NllLossBackward"
        assert fused.dtype == composed.dtype == dtype
        assert fused.data.tobytes() == composed.data.tobytes()
        g = rng.standard_normal(fused.shape).astype(dtype)
        firsts, seconds = [], []
        for t, out in ((fused_in, fused), (composed_in, composed)):
            upstream = autodiff.tensor(g, requires_grad=True)
            (first,) = autodiff.grad(out, t, upstream, create_graph=True)
            (plain,) = autodiff.grad(out, t, autodiff.tensor(g), retain_graph=True)
            assert first.data.tobytes() == plain.data.tobytes()
            firsts.append(plain.data.tobytes())
            u = autodiff.tensor(np.arange(first.numel(), dtype=dtype).reshape(first.shape))
            seconds.append(autodiff.grad((first * u).sum(), upstream)[0].data.tobytes())
        assert firsts[0] == firsts[1]
        assert seconds[0] == seconds[1]


def test_nll_loss_primitive_only_for_rows_of_float_log_probabilities():
    """Spatial dims, float16, an empty batch and a mean over no weight stay composed."""
    y = autodiff.tensor([0, 1])
    assert F.nll_loss(leaf(np.zeros((2, 3))), y).grad_fn.name() == "NllLossBackward"
    for x, target, kwargs in (
        (np.zeros((2, 3, 1)), autodiff.tensor([[0], [1]]), {}),
        (np.zeros((2, 3), np.float16), y, {}),
        (np.zeros((0, 3)), autodiff.tensor(np.zeros(0, np.int64)), {}),
        (np.zeros((2, 3)), y, {"ignore_index": 0, "weight": autodiff.tensor([1.0, 0.0, 1.0])}),
    ):
        out = F.nll_loss(autodiff.tensor(x, requires_grad=True), target, **kwargs)
        assert out.grad_fn.name() != "NllLossBackward"


@settings(max_examples=20)
@given(
    n=st.integers(1, 5),
    c=st.integers(2, 5),
    reduction=st.sampled_from(["mean", "sum", "none"]),
    seed=st.integers(0, 999),
)
def test_fused_cross_entropy_agrees_with_the_composed_form(n, c, reduction, seed):
    """The fused primitive (the common case) and log_softmax + nll_loss give the same
    values, gradients and second derivatives; both are also checked numerically."""
    rng = np.random.default_rng(seed)
    x, y = rng.standard_normal((n, c)) * 3, autodiff.tensor(rng.integers(0, c, n))
    fused = F.cross_entropy(leaf(x), y, reduction=reduction)
    assert fused.grad_fn.name() == "CrossEntropyBackward"
    composed = F.nll_loss(F.log_softmax(leaf(x), 1), y, reduction=reduction)
    np.testing.assert_allclose(fused.data, composed.data, rtol=1e-12, atol=1e-12)

    v = rng.standard_normal(fused.shape)

    def grad_and_hvp(loss_of):
        t = leaf(x)
        (g,) = autodiff.grad(loss_of(t), t, grad_outputs=autodiff.tensor(v), create_graph=True)
        u = autodiff.tensor(rng_u.standard_normal(x.shape))
        (h,) = autodiff.grad((g * u).sum(), t)
        return g.data, h.data

    rng_u = np.random.default_rng(seed)
    g_fused, h_fused = grad_and_hvp(lambda t: F.cross_entropy(t, y, reduction=reduction))
    rng_u = np.random.default_rng(seed)
    g_comp, h_comp = grad_and_hvp(lambda t: F.nll_loss(F.log_softmax(t, 1), y, reduction=reduction))
    np.testing.assert_allclose(g_fused, g_comp, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(h_fused, h_comp, rtol=1e-8, atol=1e-10)
    assert_gradients_match(
        lambda t: F.cross_entropy(t, y, reduction=reduction), leaf(x), seed=seed, order=2
    )


@settings(max_examples=20)
@given(
    n=st.integers(1, 6),
    c=st.integers(2, 5),
    reduction=st.sampled_from(["mean", "sum", "none"]),
    dtype=st.sampled_from([np.float32, np.float64]),
    seed=st.integers(0, 999),
)
def test_fused_cross_entropy_backward_on_arrays_equals_the_recorded_rule(
    n, c, reduction, dtype, seed
):
    """The usual backward computes s - t and its scale on the arrays; create_graph
    records the same rule as ops: the same gradient, bit for bit."""
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((n, c)) * 4).astype(dtype)
    y = autodiff.tensor(rng.integers(0, c, n))
    v = autodiff.tensor(rng.standard_normal(() if reduction != "none" else (n,)).astype(dtype))
    grads = []
    for create_graph in (False, True):
        t = autodiff.tensor(x, requires_grad=True)
        loss = F.cross_entropy(t, y, reduction=reduction)
        assert loss.grad_fn.name() == "CrossEntropyBackward"
        (g,) = autodiff.grad(loss, t, grad_outputs=v, create_graph=create_graph)
        assert g.dtype == dtype and (g.grad_fn is not None) == create_graph
        grads.append(g.data)
    assert grads[0].tobytes() == grads[1].tobytes()


def test_fused_cross_entropy_keeps_float32_and_leaves_other_cases_composed():
    x = autodiff.randn(8, 3, requires_grad=True)
    y = autodiff.randint(0, 3, (8,))
    loss = F.cross_entropy(x, y)
    assert loss.dtype == np.float32 and loss.grad_fn.name() == "CrossEntropyBackward"
    loss.backward()
    assert x.grad.dtype == np.float32
    y_ignored = autodiff.tensor([-100, *y.tolist()[1:]])
    fused = [
        F.cross_entropy(x, y, label_smoothing=0.1),
        F.cross_entropy(x, y, weight=autodiff.ones(3)),
        F.cross_entropy(x, y_ignored),
    ]
    for loss in fused:
        assert loss.dtype == np.float32 and loss.grad_fn.name() == "CrossEntropyBackward"
    composed = [
        F.cross_entropy(x, y, weight=autodiff.ones(3, dtype=autodiff.float64)),  # promotes
        F.cross_entropy(x, y, weight=autodiff.ones(3, requires_grad=True)),
        F.cross_entropy(x, autodiff.full((8,), -100)),  # a mean over nothing: NaN
        F.cross_entropy(x.reshape(2, 4, 3).permute(0, 2, 1), y.reshape(2, 4)),  # (N, C, d)
    ]
    for loss in composed:
        assert loss.grad_fn.name() != "CrossEntropyBackward"


def _composed_cross_entropy(x, y, weight, ignore_index, reduction, eps):
    """log_softmax + nll_loss (+ the smoothing term), as cross_entropy composes them."""
    logp = F.log_softmax(x, 1)
    nll = F.nll_loss(logp, y, weight, ignore_index=ignore_index, reduction=reduction)
    if not eps:
        return nll
    kept = y.data != ignore_index
    terms = logp if weight is None else logp * weight.reshape(1, -1)
    smooth = -terms.sum(dim=1) * autodiff.tensor(kept.astype(x.dtype))
    if reduction == "mean":
        total = kept.sum() if weight is None else weight.data[y.data[kept]].sum()
        smooth = smooth.sum() / float(total)
    elif reduction == "sum":
        smooth = smooth.sum()
    return (1 - eps) * nll + smooth * (eps / x.shape[1])


@settings(max_examples=30)
@given(
    n=st.integers(1, 5),
    c=st.integers(2, 5),
    weighted=st.booleans(),
    ignore_index=st.sampled_from([None, -100, 0]),
    eps=st.sampled_from([0.0, 0.1, 1.0]),
    reduction=st.sampled_from(["mean", "sum", "none"]),
    dtype=st.sampled_from([np.float64, np.float32]),
    seed=st.integers(0, 999),
)
def test_fused_cross_entropy_with_weights_ignored_rows_and_smoothing_agrees_with_the_composed_form(
    n, c, weighted, ignore_index, eps, reduction, dtype, seed
):
    """Class weights, an ignored class and label smoothing in the fused primitive: the
    composed form's values, first derivatives (the usual backward and create_graph's,
    the same bits) and second derivatives, to rounding."""
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((n, c)) * 3).astype(dtype)
    target = rng.integers(0, c, n)
    if ignore_index is not None and n > 1:
        target[0] = ignore_index  # some rows ignored, never all
        target[-1] = 1
    y = autodiff.tensor(target)
    weight = autodiff.tensor(rng.uniform(0.5, 2, c).astype(dtype)) if weighted else None
    options = {"weight": weight, "label_smoothing": eps}
    if ignore_index is not None:
        options["ignore_index"] = ignore_index
    ignored = -100 if ignore_index is None else ignore_index
    fused_in = autodiff.tensor(x, requires_grad=True)
    composed_in = autodiff.tensor(x, requires_grad=True)
    fused = F.cross_entropy(fused_in, y, reduction=reduction, **options)
    composed = _composed_cross_entropy(composed_in, y, weight, ignored, reduction, eps)
    assert fused.grad_fn.name() == "CrossEntropyBackward" and fused.dtype == dtype
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(fused.data, composed.data, rtol=rtol, atol=rtol)
    v = autodiff.tensor(rng.standard_normal(fused.shape).astype(dtype))
    (plain,) = autodiff.grad(fused, fused_in, v, retain_graph=True)
    (g_fused,) = autodiff.grad(fused, fused_in, v, create_graph=True)
    (g_composed,) = autodiff.grad(composed, composed_in, v, create_graph=True)
    assert plain.data.tobytes() == g_fused.data.tobytes()
    np.testing.assert_allclose(g_fused.data, g_composed.data, rtol=rtol, atol=rtol)
    u = autodiff.tensor(rng.standard_normal(x.shape).astype(dtype))
    (h_fused,) = autodiff.grad((g_fused * u).sum(), fused_in)
    (h_composed,) = autodiff.grad((g_composed * u).sum(), composed_in)
    np.testing.assert_allclose(h_fused.data, h_composed.data, rtol=rtol * 10, atol=rtol * 10)


@settings(max_examples=15)
@given(c=st.integers(2, 4), extra=st.lists(st.integers(1, 3), max_size=2), seed=st.integers(0, 999))
def test_cross_entropy_with_spatial_dims_and_probability_targets(c, extra, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, c, *extra))
    y = rng.integers(0, c, (2, *extra))
    moved = np.moveaxis(x, 1, -1).reshape(-1, c)  # (N * d1 ..., C)
    flat = F.cross_entropy(autodiff.tensor(moved), autodiff.tensor(y.reshape(-1)))
    np.testing.assert_allclose(F.cross_entropy(leaf(x), autodiff.tensor(y)).data, flat.data)
    p = rng.dirichlet(np.ones(c), size=(2, *extra))  # (N, d..., C)
    p = np.ascontiguousarray(np.moveaxis(p, -1, 1))  # (N, C, d...)
    logp = x - np.log(np.exp(x).sum(axis=1, keepdims=True))
    expected = -(p * logp).sum(axis=1).mean()
    np.testing.assert_allclose(F.cross_entropy(leaf(x), autodiff.tensor(p)).data, expected)
    assert_gradients_match(
        lambda t, q: F.cross_entropy(t, q, label_smoothing=0.1), leaf(x), leaf(p), seed=seed
    )


def test_nll_loss_picks_and_weights():
    logp = leaf(np.log([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]]))
    y = autodiff.tensor([0, 2])
    assert F.nll_loss(logp, y).item() == pytest.approx(-(math.log(0.7) + math.log(0.8)) / 2)
    w = autodiff.tensor([1.0, 1.0, 3.0], dtype=autodiff.float64)
    expected = -(math.log(0.7) + 3 * math.log(0.8)) / 4
    assert F.nll_loss(logp, y, weight=w).item() == pytest.approx(expected)
    assert_gradients_match(lambda t: F.nll_loss(t, y, weight=w, reduction="sum"), logp)


@pytest.mark.parametrize(
    "loss",
    [F.nll_loss, F.cross_entropy, lambda x, y: F.cross_entropy(x, y, label_smoothing=0.2)],
)
def test_loss_with_all_targets_ignored_is_nan_with_zero_gradient_like_pytorch(loss):
    x = leaf([[0.1, 0.2], [0.3, -0.4]])
    out = loss(x, autodiff.tensor([-100, -100]))
    assert math.isnan(out.item())
    out.backward()
    np.testing.assert_array_equal(x.grad.data, np.zeros((2, 2)))


@settings(max_examples=10)
@given(
    shape=shapes_2d, reduction=st.sampled_from(["mean", "sum", "none"]), seed=st.integers(0, 999)
)
def test_regression_and_binary_losses_values_and_gradients(shape, reduction, seed):
    rng = np.random.default_rng(seed)
    a, b = rng.standard_normal(shape), rng.standard_normal(shape)
    reduce = {"mean": np.mean, "sum": np.sum, "none": lambda v: v}[reduction]
    np.testing.assert_allclose(
        F.mse_loss(leaf(a), leaf(b), reduction=reduction).data, reduce((a - b) ** 2)
    )
    np.testing.assert_allclose(
        F.l1_loss(leaf(a), leaf(b), reduction=reduction).data, reduce(np.abs(a - b))
    )
    assert_gradients_match(
        lambda s, t: F.mse_loss(s, t, reduction=reduction), leaf(a), leaf(b), seed=seed
    )
    assert_gradients_match(
        lambda s, t: F.l1_loss(s, t, reduction=reduction), leaf(a), leaf(b), seed=seed
    )
    p, t = rng.uniform(0.05, 0.95, shape), rng.random(shape)
    bce = -(t * np.log(p) + (1 - t) * np.log(1 - p))
    np.testing.assert_allclose(
        F.binary_cross_entropy(leaf(p), leaf(t), reduction=reduction).data, reduce(bce)
    )
    assert_gradients_match(
        lambda s, u: F.binary_cross_entropy(s, u, reduction=reduction), leaf(p), leaf(t), seed=seed
    )
    z = rng.standard_normal(shape) * 3
    sig = 1 / (1 + np.exp(-z))
    ref = -(t * np.log(sig) + (1 - t) * np.log(1 - sig))
    out = F.binary_cross_entropy_with_logits(leaf(z), leaf(t), reduction=reduction)
    np.testing.assert_allclose(out.data, reduce(ref), rtol=1e-10)
    pos = leaf(rng.uniform(0.5, 2, shape[-1]))
    assert_gradients_match(
        lambda s, u, pw: F.binary_cross_entropy_with_logits(
            s, u, reduction=reduction, pos_weight=pw
        ),
        leaf(z),
        leaf(t),
        pos,
        seed=seed,
    )


def test_bce_with_logits_is_stable_for_large_logits():
    z = leaf([100.0, -100.0, 800.0])
    t = autodiff.tensor([0.0, 1.0, 1.0], dtype=autodiff.float64)
    out = F.binary_cross_entropy_with_logits(z, t, reduction="none")
    np.testing.assert_allclose(out.data, [100.0, 100.0, 0.0])
    out.sum().backward()
    np.testing.assert_allclose(z.grad.data, [1.0, -1.0, 0.0])


# -- batch norm, dropout, embedding, one_hot ----------------------------------------------------


@settings(max_examples=10)
@given(shape=st.sampled_from([(4, 3), (3, 2, 4), (2, 3, 2, 2)]), seed=st.integers(0, 999))
def test_batch_norm_training_values_and_gradients(shape, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape) * 2 + 1
    c = shape[1]
    w, b = leaf(rng.uniform(0.5, 1.5, c)), leaf(rng.standard_normal(c))
    dims = (0, *range(2, len(shape)))
    bshape = (1, c) + (1,) * (len(shape) - 2)
    mean, var = x.mean(axis=dims, keepdims=True), x.var(axis=dims, keepdims=True)
    expected = (x - mean) / np.sqrt(var + 1e-5) * w.data.reshape(bshape) + b.data.reshape(bshape)
    rm, rv = autodiff.zeros(c, dtype=autodiff.float64), autodiff.ones(c, dtype=autodiff.float64)
    out = F.batch_norm(leaf(x), rm, rv, w, b, training=True, momentum=0.3)
    np.testing.assert_allclose(out.data, expected, rtol=1e-10)
    count = x.size // c
    np.testing.assert_allclose(rm.data, 0.3 * mean.reshape(-1))
    np.testing.assert_allclose(rv.data, 0.7 + 0.3 * var.reshape(-1) * count / (count - 1))
    assert_gradients_match(
        lambda t, s, u: F.batch_norm(t, None, None, s, u, training=True), leaf(x), w, b, seed=seed
    )
    assert_gradients_match(lambda t, s, u: F.batch_norm(t, rm, rv, s, u), leaf(x), w, b, seed=seed)


def test_dropout_keeps_the_expectation_and_its_gradient_is_the_mask():
    x = autodiff.ones(200, 100, requires_grad=True)
    y = F.dropout(x, p=0.3)
    kept = y.data != 0
    assert abs(kept.mean() - 0.7) < 0.02
    np.testing.assert_allclose(y.data[kept], 1 / 0.7, rtol=1e-6)
    y.sum().backward()
    np.testing.assert_allclose(x.grad.data, kept / 0.7, rtol=1e-6)
    assert F.dropout(x, 0.3, training=False) is x
    with pytest.raises(ValueError, match="between 0 and 1"):
        F.dropout(x, 1.5)


def test_embedding_gradient_adds_into_rows_and_skips_padding():
    weight = leaf(np.arange(12.0).reshape(4, 3))
    idx = autodiff.tensor([[1, 1], [3, 0]])
    out = F.embedding(idx, weight, padding_idx=0)
    np.testing.assert_array_equal(out.data[0, 0], [3.0, 4.0, 5.0])
    g = np.random.default_rng(0).standard_normal(out.shape)
    out.backward(autodiff.tensor(g))
    np.testing.assert_allclose(weight.grad.data[1], g[0, 0] + g[0, 1])
    np.testing.assert_allclose(weight.grad.data[0], 0.0)
    np.testing.assert_allclose(weight.grad.data[2], 0.0)
    with pytest.raises(IndexError, match="out of range"):
        F.embedding(autodiff.tensor([4]), weight)
    with pytest.raises(RuntimeError, match="integer"):
        F.embedding(autodiff.tensor([1.0]), weight)


def test_one_hot():
    out = F.one_hot(autodiff.tensor([2, 0]), 3)
    np.testing.assert_array_equal(out.data, [[0, 0, 1], [1, 0, 0]])
    assert out.dtype == np.int64
    with pytest.raises(RuntimeError, match="class values"):
        F.one_hot(autodiff.tensor([3]), 3)


# -- bad input: clear errors naming the shapes ---------------------------------------------------


def test_loss_errors_name_the_problem():
    logits = autodiff.randn(4, 3)
    with pytest.raises(RuntimeError, match=r"integer dtype \(long\) and shape \(4,\)"):
        F.cross_entropy(logits, autodiff.tensor([0.0, 1.0, 2.0, 1.0]))
    with pytest.raises(
        RuntimeError, match=r"expected target of shape \(4,\).*got target of shape \(3,\)"
    ):
        F.cross_entropy(logits, autodiff.tensor([0, 1, 2]))
    with pytest.raises(IndexError, match=r"Target 3 is out of bounds.*\[0, 3\)"):
        F.cross_entropy(logits, autodiff.tensor([0, 1, 3, 1]))
    with pytest.raises(IndexError, match="Target -2"):
        F.nll_loss(logits, autodiff.tensor([0, -2, 1, 1]))
    with pytest.raises(RuntimeError, match=r"probability targets need the input's shape \(4, 3\)"):
        F.cross_entropy(logits, autodiff.rand(4, 2))
    with pytest.raises(RuntimeError, match="weight tensor should be defined"):
        F.cross_entropy(logits, autodiff.tensor([0, 1, 2, 1]), weight=autodiff.ones(2))
    with pytest.raises(ValueError, match="reduction"):
        F.cross_entropy(logits, autodiff.tensor([0, 1, 2, 1]), reduction="avg")
    with pytest.raises(ValueError, match=r"target size \(\(4,\)\).*input size \(\(4, 1\)\)"):
        F.binary_cross_entropy(autodiff.rand(4, 1), autodiff.rand(4))
    with pytest.raises(RuntimeError, match="between 0 and 1"):
        F.binary_cross_entropy(autodiff.tensor([1.5]), autodiff.tensor([1.0]))
    with pytest.warns(UserWarning, match="different to the input size"):
        F.mse_loss(autodiff.rand(4, 1), autodiff.rand(4))


def test_conv_and_pool_errors_name_the_shapes():
    w = autodiff.randn(4, 3, 3, 3)
    with pytest.raises(RuntimeError, match=r"4-D input.*\(3, 8, 8\).*unsqueeze"):
        F.conv2d(autodiff.randn(3, 8, 8), w)
    with pytest.raises(RuntimeError, match=r"3 channels.*got 2 channels"):
        F.conv2d(autodiff.randn(1, 2, 8, 8), w)
    with pytest.raises(
        RuntimeError, match=r"kernel size \(3, 3\).*larger than the padded input of size 2x5"
    ):
        F.conv2d(autodiff.randn(1, 3, 2, 5), w)
    with pytest.raises(RuntimeError, match="larger than the padded"):
        F.max_pool2d(autodiff.randn(1, 1, 2, 2), 3)
    with pytest.raises(RuntimeError, match="pad should be at most half"):
        F.max_pool2d(autodiff.randn(1, 1, 4, 4), 2, padding=2)
    with pytest.raises(ValueError, match="strided"):
        F.conv2d(autodiff.randn(1, 3, 8, 8), w, stride=2, padding="same")


@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.uint8, np.bool_])
@pytest.mark.parametrize("slope", [0.01, 0.2, 2])
def test_leaky_relu_of_integers_is_numpys_formula(dtype, slope):
    """An integer or bool tensor gives NumPy's np.where(x > 0, x, x * slope): float64 for
    a float slope (PyTorch refuses these dtypes; the README's Differences: NumPy's
    promotion).  The slope was once cast to the integer dtype, and 0.01 became 0."""
    values = np.array([-3, 0, 2, 5, -1]).astype(dtype)
    got = F.leaky_relu(autodiff.tensor(values), slope)
    expected = np.where(values > 0, values, values * slope)
    assert got.dtype == expected.dtype
    np.testing.assert_array_equal(got.data, expected)
