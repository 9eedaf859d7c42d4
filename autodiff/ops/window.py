"""Sliding windows: the one view that convolution and pooling are built from."""

from __future__ import annotations

import functools

import numpy as np

from ..function import Function
from ..threads import parallel_for
from .elementwise import _all_finite


class Windows2d(Function):
    """y[n, c, i, j, p, q] = x[n, c, i*sh + p*dh, j*sw + q*dw]
    dL/dx = fold(dL/dy): each window's gradient added back where it was read

    The forward is a strided view (no copy).  The backward adds ``kh * kw``
    strided slices, one per kernel offset, which is far faster than
    ``np.add.at`` over every window element.
    """

    op_name = "unfold"
    returns_view = True

    @staticmethod
    def forward(ctx, x, kernel_size, stride, dilation):
        (kh, kw), (sh, sw), (dh, dw) = kernel_size, stride, dilation
        h, w = x.shape[2:]
        span_h, span_w = dh * (kh - 1) + 1, dw * (kw - 1) + 1
        if span_h > h or span_w > w:
            raise ValueError(
                f"unfold: kernel of size {kernel_size} (dilation {dilation}, spanning "
                f"{span_h}x{span_w}) is larger than the (padded) input of size {h}x{w}"
            )
        ctx.input_shape = x.shape
        ctx.params = (kernel_size, stride, dilation)
        # windows: (N, C, H - span_h + 1, W - span_w + 1, span_h, span_w)
        windows = np.lib.stride_tricks.sliding_window_view(x, (span_h, span_w), axis=(2, 3))
        # keep every stride-th window and every dilation-th tap
        return windows[:, :, ::sh, ::sw, ::dh, ::dw]

    @staticmethod
    def backward(ctx, grad):
        return Fold2d.apply(grad, ctx.input_shape, *ctx.params), None, None, None


class Fold2d(Function):
    """y = zeros(input shape); y[window taps] += g        dL/dg = windows of dL/dy"""

    op_name = "fold"

    @staticmethod
    def forward(ctx, g, input_shape, kernel_size, stride, dilation):
        (kh, kw), (sh, sw), (dh, dw) = kernel_size, stride, dilation
        ctx.params = (kernel_size, stride, dilation)
        out_h, out_w = g.shape[2], g.shape[3]
        out = np.zeros(input_shape, dtype=g.dtype)
        for p in range(kh):
            for q in range(kw):
                rows = slice(p * dh, p * dh + sh * (out_h - 1) + 1, sh)
                cols = slice(q * dw, q * dw + sw * (out_w - 1) + 1, sw)
                out[:, :, rows, cols] += g[:, :, :, :, p, q]
        return out

    @staticmethod
    def backward(ctx, grad):
        return Windows2d.apply(grad, *ctx.params), None, None, None, None


# -- the maximum over each window (max pooling) ---------------------------------
#
# Pooling composed as ``windows(x).reshape(..., kh*kw).max(dim=-1)`` copies the
# strided window view (inner dims of 2 or 3 elements) and runs np.argmax along a
# 4-element axis: 9 ms + 11 ms per 64x16x28x28 batch, against 0.4 ms for the
# same maximum taken as kh*kw strided slices (measured).  So the tap of each
# window's maximum is found slice by slice here, and the value and gradient move
# through a pair of primitives, GatherTaps (forward) and ScatterTaps (its
# backward), each the other's VJP, like Windows2d and Fold2d.


def _tap_slices(input_hw, out_hw, kernel_size, stride, dilation):
    """For each tap (p, q), row-major, the (rows, cols) slices it reads in every window."""
    (kh, kw), (sh, sw), (dh, dw) = kernel_size, stride, dilation
    oh, ow = out_hw
    return [
        (
            slice(p * dh, p * dh + sh * (oh - 1) + 1, sh),
            slice(q * dw, q * dw + sw * (ow - 1) + 1, sw),
        )
        for p in range(kh)
        for q in range(kw)
    ]


def _window_max_and_tap(x: np.ndarray, kernel_size, stride, dilation, out_hw, nan_aware=False):
    """The maximum of each window and its tap ``p * kw + q``, found in one pass over the taps.

    PyTorch's choice: the first maximum, and the *last* NaN when a window holds
    NaNs (its kernel takes any NaN it meets).  Taps are uint8 (up to
    256 taps per window) and updated arithmetically, ``taps = max(taps, better *
    tap)``, as every tap so far is below this one (boolean-mask assignment ran
    5x slower on random data, int64 taps 4x slower: 2.9 ms against 0.56 ms per
    64x16x28x28 batch, measured; ``taps += better * (tap - taps)``, one pass
    more, 0.93 against 0.88-0.90 ms).  A NaN
    reaches the maximum (np.maximum propagates it), so the NaN-aware choice is
    made only when the result holds one.
    """
    slices = _tap_slices(x.shape[2:], out_hw, kernel_size, stride, dilation)
    n, c = x.shape[:2]
    best = np.empty((n, c) + tuple(out_hw), dtype=x.dtype)
    taps = np.empty(best.shape, dtype=np.uint8 if len(slices) <= 256 else np.int64)

    def images(start, stop):  # images start:stop, on one of the engine's threads
        _window_max_into(x[start:stop], best[start:stop], taps[start:stop], slices, nan_aware)

    # about 4 element-operations per window and tap (a maximum, a comparison, the tap's
    # update): 0.88 ms for 64x16x28x28, where one per tap would predict 0.25 (threads.py)
    parallel_for(n, images, best[:1].size * len(slices) * 4, calls_per_chunk=3 * len(slices))
    if not nan_aware and best.dtype.kind in "fc" and np.isnan(np.max(best, initial=0)):
        return _window_max_and_tap(x, kernel_size, stride, dilation, out_hw, nan_aware=True)
    return best, taps


def _window_max(x: np.ndarray, kernel_size, stride, dilation, out_hw):
    """The maximum of each window alone, where no backward needs its tap: one
    np.maximum per tap, the values _window_max_and_tap finds (NaN included), in a
    quarter of its passes.  A test checks the two against each other."""
    slices = _tap_slices(x.shape[2:], out_hw, kernel_size, stride, dilation)
    best = np.empty(x.shape[:2] + tuple(out_hw), dtype=x.dtype)

    def images(start, stop):  # images start:stop, on one of the engine's threads
        part, source = best[start:stop], x[start:stop]
        rows, cols = slices[0]
        np.copyto(part, source[:, :, rows, cols])
        for rows, cols in slices[1:]:
            np.maximum(part, source[:, :, rows, cols], out=part)

    parallel_for(x.shape[0], images, best[:1].size * len(slices), calls_per_chunk=len(slices))
    return best


def _window_max_into(x, best, taps, slices, nan_aware):
    """Fill ``best`` and ``taps`` for the images of ``x`` (see _window_max_and_tap)."""
    rows, cols = slices[0]
    np.copyto(best, x[:, :, rows, cols])
    taps.fill(0)
    tap_type = taps.dtype.type
    better = np.empty(best.shape, dtype=bool)
    for tap, (rows, cols) in enumerate(slices[1:], start=1):
        candidate = x[:, :, rows, cols]
        np.greater(candidate, best, out=better)  # strict: ties keep the first; nothing beats NaN
        if nan_aware:  # a NaN beats any number, and a later NaN an earlier one
            better |= np.isnan(candidate)
        np.maximum(best, candidate, out=best)  # NaN-propagating, like the choice above
        # the taps so far are all below this one: where better, the maximum is this tap
        np.maximum(taps, better.view(np.uint8) * tap_type(tap), out=taps)


def _flat_index(taps, input_shape, kernel_size, stride, dilation):
    """Index into the flattened input (N*C*H*W) of the element each window's tap reads."""
    (kh, kw), (sh, sw), (dh, dw) = kernel_size, stride, dilation
    n, c, h, w = input_shape
    oh, ow = taps.shape[2:]
    # offset of tap p * kw + q from its window's corner: a lookup table (divmod
    # of every tap was slower than the gather itself, measured)
    offsets = (np.arange(kh)[:, None] * dh * w + np.arange(kw)[None, :] * dw).ravel()
    corners = np.arange(oh)[:, None] * sh * w + np.arange(ow)[None, :] * sw  # (oh, ow)
    planes = (np.arange(n * c) * (h * w)).reshape(n, c, 1, 1)  # start of each (n, c) plane
    return offsets[taps] + (corners + planes)


def _tiled(input_hw, out_hw, kernel_size, stride, dilation) -> bool:
    """Whether the windows tile the input: each position in exactly one window."""
    return all(
        d == 1 and s == k and size == o * k
        for size, o, k, s, d in zip(input_hw, out_hw, kernel_size, stride, dilation, strict=True)
    )


def _overlapping(kernel_size, stride, dilation) -> bool:
    return any(d * (k - 1) + 1 > s for k, s, d in zip(kernel_size, stride, dilation, strict=True))


class WindowMax(Function):
    """y[n, c, i, j] = max over the window (i, j) of x; taps[n, c, i, j] = where it is (p kw + q)
    dL/dx = dL/dy added back at those taps (ScatterTaps)

    The maximum and its tap are found in one pass over the taps; the node keeps
    ``taps`` for the backward (and for ``max_pool2d(return_indices=True)``).
    """

    op_name = "max_pool2d"

    @staticmethod
    def forward(ctx, x, kernel_size, stride, dilation, out_hw):
        ctx.input_shape = x.shape
        if not ctx.needs_input_grad[0]:  # no backward (no_grad, evaluation): no taps
            ctx.taps = ctx.params = None
            return _window_max(x, kernel_size, stride, dilation, out_hw)
        values, taps = _window_max_and_tap(x, kernel_size, stride, dilation, out_hw)
        ctx.taps = taps
        ctx.params = (taps, kernel_size, stride, dilation)
        return values

    @staticmethod
    def backward(ctx, grad):
        return (ScatterTaps.apply(grad, ctx.input_shape, *ctx.params),) + (None,) * 4


class GatherTaps(Function):
    """y[n, c, i, j] = x[n, c, i sh + p dh, j sw + q dw] at the tap (p, q) = taps[n, c, i, j]
    dL/dx = dL/dy added back at those taps (ScatterTaps)

    ScatterTaps' VJP (max pooling's second order).  One 1-D ``take`` of the
    flattened input (np.take_along_axis and put_along_axis build an index grid
    per call and were 3x slower, measured).
    """

    op_name = "max_pool2d"

    @staticmethod
    def forward(ctx, x, taps, kernel_size, stride, dilation):
        ctx.input_shape = x.shape
        ctx.params = (taps, kernel_size, stride, dilation)
        return np.take(x.reshape(-1), _flat_index(taps, x.shape, kernel_size, stride, dilation))

    @staticmethod
    def backward(ctx, grad):
        return (ScatterTaps.apply(grad, ctx.input_shape, *ctx.params),) + (None,) * 4


class ScatterTaps(Function):
    """y = zeros(input shape); y[window taps] += g        dL/dg = GatherTaps of dL/dy"""

    op_name = "max_pool2d backward"

    @staticmethod
    def forward(ctx, g, input_shape, taps, kernel_size, stride, dilation):
        ctx.params = (taps, kernel_size, stride, dilation)
        slices = _tap_slices(input_shape[2:], taps.shape[2:], kernel_size, stride, dilation)
        if not _overlapping(kernel_size, stride, dilation) and _all_finite(g):
            # each input position is read by at most one window: each tap's
            # positions get g where the tap was chosen, 0 elsewhere, in one strided
            # product per tap (a scatter through a flat index took 2.7 ms against
            # 0.36 ms per 64x16x28x28 input, measured); g * 0 is 0 for a finite g.
            tiled = _tiled(input_shape[2:], taps.shape[2:], kernel_size, stride, dilation)
            out = (np.empty if tiled else np.zeros)(input_shape, dtype=g.dtype)
            chosen = np.empty(taps.shape, dtype=bool)

            def images(start, stop):  # images start:stop, on one of the engine's threads
                part, picked = out[start:stop], chosen[start:stop]
                for tap, (rows, cols) in enumerate(slices):
                    np.equal(taps[start:stop], tap, out=picked)
                    np.multiply(g[start:stop], picked, out=part[:, :, rows, cols])
                part += 0  # the -0.0 of a negative g times 0 is printed "-0.", the scatter's 0.0

            # 3 element-operations per input value (a comparison and a product per tap, the
            # -0.0 pass): 0.76 ms for a 64x16x28x28 input, where 1 would predict 0.25
            parallel_for(g.shape[0], images, out[:1].size * 3, 2 * len(slices) + 1)
            return out
        out = np.zeros(input_shape, dtype=g.dtype)
        if not _overlapping(kernel_size, stride, dilation):
            # an inf or NaN in g: a plain scatter, so that other taps stay exactly 0
            index = _flat_index(taps, input_shape, kernel_size, stride, dilation)
            out.reshape(-1)[index.reshape(-1)] = g.reshape(-1)
            return out
        # overlapping windows: add tap by tap, in the fold's order
        for tap, (rows, cols) in enumerate(slices):
            out[:, :, rows, cols] += np.where(taps == tap, g, 0)
        return out

    @staticmethod
    def backward(ctx, grad):
        return (GatherTaps.apply(grad, *ctx.params),) + (None,) * 5


def window_max(x, kernel_size, stride, dilation, out_hw, with_taps=True):
    """Max pooling: ``(values, taps)`` over the windows of ``x`` (N, C, H, W).

    ``values`` (N, C, oh, ow) is a Tensor with its graph; ``taps`` (N, C, oh, ow)
    is the NumPy array (uint8) of the chosen tap ``p * kw + q`` in each window
    (None unless ``with_taps``).  Equal, values and gradients, to
    ``windows(x).reshape(..., kh*kw).max(dim=-1)``.
    """
    values = WindowMax.apply(x, kernel_size, stride, dilation, out_hw)
    if not with_taps:
        return values, None
    if values.grad_fn is not None:
        return values, values.grad_fn.taps
    # nothing recorded (no_grad, or no input requiring grad): find the taps again
    return values, _window_max_and_tap(x.data, kernel_size, stride, dilation, out_hw)[1]


class WindowSum(Function):
    """y[n, c, i, j] = sum_{p, q} x[n, c, i sh + p dh, j sw + q dw]
    dL/dx = dL/dy added back at every tap of its window (WindowSumBackward)

    Average pooling's sums (``avg_pool2d`` divides them), as PyTorch's kernel
    adds them: from zero, tap by tap in the window's order, so a window of
    -0.0 sums to 0.0 as there.  Each tap is one strided add over a chunk of
    images.  The composed sum over the (N, C, oh, ow, kh, kw) window view ran
    NumPy's reduction in inner loops of kw elements: 2.4 ms for LeNet's
    64x6x28x28 with 2x2 windows, against 0.15 ms here (one thread).  Float32
    and float64 (``avg_pool2d`` keeps the composed form for other dtypes).
    """

    op_name = "avg_pool2d"

    @staticmethod
    def forward(ctx, x, kernel_size, stride, dilation, out_hw):
        ctx.input_shape = x.shape
        ctx.params = (kernel_size, stride, dilation)
        slices = _tap_slices(x.shape[2:], out_hw, kernel_size, stride, dilation)
        total = np.empty(x.shape[:2] + tuple(out_hw), dtype=x.dtype)
        zero = np.zeros((), dtype=x.dtype)

        def images(start, stop):  # images start:stop, on one of the engine's threads
            part, source = total[start:stop], x[start:stop]
            (rows, cols), *rest = slices
            np.add(source[:, :, rows, cols], zero, out=part)  # 0 + the first tap
            for rows, cols in rest:
                np.add(part, source[:, :, rows, cols], out=part)

        parallel_for(x.shape[0], images, total[:1].size * len(slices), len(slices))
        return total

    @staticmethod
    def backward(ctx, grad):
        return (WindowSumBackward.apply(grad, ctx.input_shape, *ctx.params),) + (None,) * 4


class WindowSumBackward(Function):
    """y = zeros(input shape); y[every tap of window (i, j)] += g[i, j]
    dL/dg = WindowSum of dL/dy

    WindowSum's VJP, adding tap by tap in the window's order (the fold's).  Where
    the windows tile the input (stride = kernel, no dilation, nothing left
    over), each position gets one window's g: written as 0 + g, tap by tap, with
    no array of zeros first (so -0.0 becomes 0.0, as PyTorch's sum from zero).
    """

    op_name = "avg_pool2d backward"

    @staticmethod
    def forward(ctx, g, input_shape, kernel_size, stride, dilation):
        ctx.params = (kernel_size, stride, dilation)
        ctx.out_hw = g.shape[2:]
        slices = _tap_slices(input_shape[2:], g.shape[2:], kernel_size, stride, dilation)
        tiled = _tiled(input_shape[2:], g.shape[2:], kernel_size, stride, dilation)
        out = (np.empty if tiled else np.zeros)(input_shape, dtype=g.dtype)
        zero = np.zeros((), dtype=g.dtype)

        def images(start, stop):  # images start:stop, on one of the engine's threads
            part, spread = out[start:stop], g[start:stop]
            for rows, cols in slices:
                target = part[:, :, rows, cols]
                np.add(zero if tiled else target, spread, out=target)

        parallel_for(g.shape[0], images, g[:1].size * len(slices), len(slices))
        return out

    @staticmethod
    def backward(ctx, grad):
        return (WindowSum.apply(grad, *ctx.params, ctx.out_hw),) + (None,) * 4


# -- im2col: the matrix of windows that convolution multiplies ------------------
#
# The matrix is laid out (N, g, C/g * kh * kw, oh * ow), one (K, L) matrix per
# image, so that conv2d's product ``kernel @ cols``, (g, O/g, K) @ (N, g, K, L),
# lands in (N, O, oh, ow) directly: the (N*oh*ow, K) layout needed a permute
# and a row-major copy of every conv output (and of its gradient), 0.4 ms per
# 64x16x28x28 batch each way.  In this layout each kernel tap (p, q) fills
# whole rows of ``oh x ow`` blocks, one strided slice of the input per tap:
# 0.42 ms for a 64x16x14x14 batch with a 3x3 kernel, against 1.0 ms for the
# old layout, whose tap loop wrote every ninth element (measured, CPU time).
# Zero padding is folded in (the taps that fall outside the input keep the
# zeros of the buffer), which saves padding a copy of the input forward and
# slicing the gradient backward.  Im2col and Col2im are each other's VJP.


def _tap_ranges(size, out, stride, dilation, before, kernel):
    """Per kernel offset p: (i0, i1, r0), the outputs i0:i1 whose tap reads input rows r0::stride.

    Output i reads input row ``i * stride + p * dilation - before``; the outputs
    before i0 and from i1 on read the zero padding.
    """
    ranges = []
    for p in range(kernel):
        offset = p * dilation - before
        first = max(0, -(offset // stride))  # the first i with i * stride + offset >= 0
        end = min(out, (size - 1 - offset) // stride + 1)
        ranges.append((first, max(first, end), first * stride + offset))
    return ranges


def _conv_output_size(size, kernel, stride, padding, dilation) -> int:
    """Output size along one dim: (size + pad_before + pad_after - dilation (k - 1) - 1) // stride + 1."""
    return (size + padding[0] + padding[1] - dilation * (kernel - 1) - 1) // stride + 1


@functools.lru_cache(maxsize=256)  # (a function of shapes, read every step)
def _im2col_plan(input_shape, kernel_size, stride, padding, dilation):
    """(oh, ow, [(p, q, output block, input slice) for every tap], padded?)."""
    h, w = input_shape[2:]
    (kh, kw), (sh, sw), (dh, dw) = kernel_size, stride, dilation
    oh = _conv_output_size(h, kh, sh, padding[0], dh)
    ow = _conv_output_size(w, kw, sw, padding[1], dw)
    rows = _tap_ranges(h, oh, sh, dh, padding[0][0], kh)
    cols = _tap_ranges(w, ow, sw, dw, padding[1][0], kw)
    taps = []
    for p, (i0, i1, r0) in enumerate(rows):
        for q, (j0, j1, c0) in enumerate(cols):
            block = (slice(i0, i1), slice(j0, j1))
            source = (
                slice(r0, r0 + sh * (i1 - i0 - 1) + 1, sh) if i1 > i0 else slice(0, 0),
                slice(c0, c0 + sw * (j1 - j0 - 1) + 1, sw) if j1 > j0 else slice(0, 0),
            )
            taps.append((p, q, block, source))
    padded = any(i0 > 0 or i1 < oh for i0, i1, _ in rows) or any(
        j0 > 0 or j1 < ow for j0, j1, _ in cols
    )
    return oh, ow, taps, padded


def _zero_padding_taps(cols, taps):
    """Zero ``cols[:, :, p, q, i, j]`` wherever tap (p, q) of output (i, j) reads the padding.

    Which outputs a tap's copy covers depends on p for the rows and on q for
    the columns, so the rest is zeroed a kernel row (all q) and a kernel
    column (all p) at a time: 4 calls for a padded 3x3 kernel, not 24.
    """
    zero = np.zeros((), dtype=cols.dtype)  # (0 does not cast to bool)
    rows_of = {p: rows for p, _, (rows, _), _ in taps}
    columns_of = {q: columns for _, q, (_, columns), _ in taps}
    for p, rows in rows_of.items():
        for strip in (cols[:, :, p, :, : rows.start, :], cols[:, :, p, :, rows.stop :, :]):
            if strip.size:
                np.copyto(strip, zero)
    for q, columns in columns_of.items():
        for strip in (cols[:, :, :, q, :, : columns.start], cols[:, :, :, q, :, columns.stop :]):
            if strip.size:
                np.copyto(strip, zero)


@functools.lru_cache(maxsize=256)  # (a function of shapes, read every step)
def _flat_runs(input_shape, kernel_size, stride, padding, dilation, out_hw):
    """For a stride-1 convolution as wide as its input: each tap as one run per plane.

    Then output (i, j) of tap (p, q) reads input element ``i*W + j + shift`` of
    its flattened plane, ``shift = (p dh - top) W + (q dw - left)``, so the tap's
    copy (Im2col) or add (Col2im) is one slice of ``oh*W`` elements per plane
    instead of ``oh`` rows of ``W``: 1,024 NumPy inner loops instead of 14,336
    per tap for a 64x16x14x14 batch (3x3, padding 1, one thread: Im2col 1.0 ms
    -> 0.55 ms, Col2im 2.2 ms -> 0.8 ms for the runs + 0.45 ms for the bands,
    measured).  Where ``j + q dw - left`` leaves the row,
    the run wraps into the neighbouring row's first or last columns instead of
    the padding.  Returns ``([(k0, k1, shift) per tap], (left band, right band))``,
    the bands being the columns those wrapped elements land in (Col2im recomputes
    them, Im2col's padding zeros overwrite them), or None where it does not apply.
    """
    h, w = input_shape[2:]
    (kh, kw), (dh, dw) = kernel_size, dilation
    (top, _), (left, _) = padding
    if stride != (1, 1) or out_hw[1] != w or min(h, w, *out_hw) == 0:
        return None
    column_shifts = [q * dw - left for q in range(kw)]
    bands = (max(0, *column_shifts), max(0, *(-shift for shift in column_shifts)))
    if sum(bands) >= w:
        return None  # every column is a band: nothing to gain
    runs = []
    for p, (first, end, _) in enumerate(_tap_ranges(h, out_hw[0], 1, dh, top, kh)):
        for q in range(kw):
            shift = (p * dh - top) * w + q * dw - left
            k0, k1 = max(first * w, -shift), min(end * w, h * w - shift)
            runs.append((k0, max(k0, k1), shift))
    return runs, bands


def _col2im_by_runs(out, blocks, taps, runs, bands):
    """Col2im's adds for a stride-1 convolution as wide as its input (see _flat_runs).

    Every element gets the same additions in the same tap order as the tap-by-tap
    form, so the bits are the same: the runs do the bulk, then the band columns
    the runs wrapped into are zeroed and added again tap by tap (stride 1 here).
    """
    n, c, h, w = out.shape  # blocks: (n, c, kh, kw, oh, ow = w)
    planes, flat_blocks = (
        out.reshape(n, c, h * w),
        blocks.reshape(n, c, len(runs), blocks.shape[4] * w),
    )
    for tap, (k0, k1, shift) in enumerate(runs):
        planes[:, :, k0 + shift : k1 + shift] += flat_blocks[:, :, tap, k0:k1]
    for first, end in ((0, bands[0]), (w - bands[1], w)):
        if first == end:
            continue
        np.copyto(out[:, :, :, first:end], 0)
        for p, q, (rows, columns), (in_rows, in_columns) in taps:
            lo, hi = max(in_columns.start, first), min(in_columns.stop, end)
            if lo < hi:
                j = columns.start + lo - in_columns.start
                out[:, :, in_rows, lo:hi] += blocks[:, :, p, q, rows, j : j + hi - lo]


def _hashable(kernel_size, stride, padding, dilation):
    """The geometry as tuples of ints, the cached plans' keys.

    Looked up first, as the geometry a layer gives is the same at every call:
    converting it took 4.7 us, twice per convolution (a Conv2d at batch one takes
    about 40 us in all).  Bounded: past _MOST_GEOMETRIES new ones are converted
    each time.
    """
    given = (kernel_size, stride, padding, dilation)
    try:
        return _GEOMETRIES[given]
    except KeyError:  # not seen yet
        keep = len(_GEOMETRIES) < _MOST_GEOMETRIES
    except TypeError:  # not hashable (lists): converted every time
        keep = False
    geometry = (
        tuple(int(k) for k in kernel_size),
        tuple(int(k) for k in stride),
        tuple((int(before), int(after)) for before, after in padding),
        tuple(int(k) for k in dilation),
    )
    if keep:
        _GEOMETRIES[given] = geometry
    return geometry


_GEOMETRIES: dict = {}
_MOST_GEOMETRIES = 1024


def _bits_dtype(dtype):
    """The integer dtype of ``dtype``'s width, for masking by bits (None: complex and others)."""
    if dtype.kind not in "biuf" or dtype.itemsize not in (1, 2, 4, 8):
        return None
    return np.dtype(f"i{dtype.itemsize}")


@functools.lru_cache(maxsize=256)  # (a function of shapes, read every step)
def _padded_planes(input_shape, kernel_size, padding, dilation, out_hw):
    """For a stride-1 convolution as wide as its input: each plane between zeros.

    Output (i, j) of tap (p, q) reads element ``k + shift`` of its flattened
    plane, with k = i W + j and ``shift = (p dh - top) W + (q dw - left)``.  In a
    plane with ``front`` zeros before it and ``back`` after, every such read
    lands in the plane or in those zeros, so the whole matrix of windows is one
    strided view of the padded planes, ``padded[n, c, p dh W + q dw + k]``;
    only where ``j + q dw - left`` leaves the row does the read wrap into the
    neighbouring row, and ``keep[q, k]`` (False there) masks those out.
    Returns ``(front, back, keep, wrapped)``: ``keep`` is None when no tap
    wraps; ``wrapped`` lists ``(q, first, end)``, the output columns
    first:end whose reads wrap for kernel column q (a run at either end).
    """
    h, w = input_shape[2:]
    (kh, kw), (dh, dw) = kernel_size, dilation
    top, left = padding[0][0], padding[1][0]
    length = out_hw[0] * w
    front = top * w + left
    farthest = (kh - 1) * dh * w + (kw - 1) * dw + length - 1 - front  # in the plane
    back = max(0, farthest - (h * w - 1))
    column = np.arange(length) % w
    reach = column[None, :] + (np.arange(kw) * dw - left)[:, None]  # (kw, oh W)
    inside = (reach >= 0) & (reach < w)
    inside.flags.writeable = False  # (shared: the result is cached)
    if inside.all():
        return front, back, None, []
    return front, back, inside, _wrapped_columns(inside[:, :w])


def _wrapped_columns(keep_row):
    """(q, first, end) for each run of False in each row of ``keep_row`` (kw, W)."""
    runs = []
    for q, inside in enumerate(keep_row):
        j = 0
        while j < len(inside):
            if inside[j]:
                j += 1
                continue
            end = j
            while end < len(inside) and not inside[end]:
                end += 1
            runs.append((q, j, end))
            j = end
    return runs


def _all_ones_where(keep, bits):
    """-1 (every bit set) where ``keep``, else 0, in the integer dtype ``bits`` (all -1 if None)."""
    if keep is None:
        return np.array(-1, dtype=bits)
    return np.negative(keep, dtype=bits)


def _windows_of_padded(padded, kernel_size, dilation, width, length):
    """The (N, C, kh, kw, oh W) view ``padded[n, c, p dh W + q dw + k]`` (see _padded_planes)."""
    (kh, kw), (dh, dw) = kernel_size, dilation
    size = padded.itemsize
    # np.ndarray over padded's buffer: as_strided's Python took 6 us of it
    windows = np.ndarray(
        padded.shape[:2] + (kh, kw, length),
        dtype=padded.dtype,
        buffer=padded,
        strides=padded.strides[:2] + (dh * width * size, dw * size, size),
    )
    windows.flags.writeable = False
    return windows


def _col2im_of_padded(blocks, out, kernel_size, padding, dilation, out_hw):
    """Col2im's sums for a stride-1 convolution as wide as its input (see _padded_planes).

    Per chunk of images: the wrapped reads' values masked to +0.0 in one call,
    then one add per tap of its whole run of the flattened planes, in tap
    order.  So every element gets the tap-by-tap form's additions in its order,
    plus additions of +0.0 where a masked value lands, which change nothing
    (the sums start at +0.0 and so are never -0.0).  The runs' form instead
    recomputed the band columns the runs wrapped into, element by element: the
    CNN's Col2im (64x16x14x14) took 1.94 ms on one thread and 1.25 on two, now
    1.56 and 0.83.  (A complex gradient, with no integer of its width to mask
    by, keeps that form.)
    """
    n, c, h, w = out.shape
    (kh, kw), (dh, dw) = kernel_size, dilation
    length = out_hw[0] * w
    front, _, keep, _ = _padded_planes(out.shape, kernel_size, padding, dilation, out_hw)
    bits = _bits_dtype(blocks.dtype)
    mask = None
    if keep is not None:  # written out for a whole image: one long loop (520 against 715 us)
        mask = np.empty((1, c, kh, kw, length), dtype=bits)
        mask[...] = _all_ones_where(keep, bits)
    flat_blocks = blocks.reshape(n, c, kh, kw, length)
    planes = out.reshape(n, c, h * w)

    def images(start, stop):  # images start:stop, on one of the engine's threads
        values = flat_blocks[start:stop]
        if mask is not None:
            values = np.bitwise_and(values.view(bits), mask).view(blocks.dtype)
        for p in range(kh):
            for q in range(kw):
                shift = p * dh * w + q * dw - front  # where k = 0 of the tap lands
                first, end = max(0, -shift), min(length, h * w - shift)
                if first < end:
                    target = planes[start:stop, :, first + shift : end + shift]
                    np.add(target, values[:, :, p, q, first:end], out=target)

    parallel_for(n, images, blocks[:1].size * 3, calls_per_chunk=kh * kw + 1)


class _Windows:
    """Im2col's matrix for any chunk of the images of ``x``: ``fill(first, last)``.

    What does not depend on the chunk is made once, here: the plans and, for a
    stride-1 convolution as wide as its input (both of the CNN's), the whole
    batch's zero-padded planes (see _padded_planes), whose windows are one
    strided view.  A chunk then costs a few NumPy calls and little Python: its
    images into their planes, the windows' view copied whole (every tap's
    reads, the padding's zeros included), and the reads that wrapped into the
    neighbouring row zeroed, a band of columns per kernel column.  Other
    geometries copy tap by tap, the padding zeroed strip by strip.
    ``Conv2d`` fills a chunk at a time and multiplies it while it is in the
    core's cache; ``Im2col`` fills the whole batch on the engine's threads.
    """

    def __init__(self, x, kernel_size, stride, padding, dilation):
        kernel_size, stride, padding, dilation = _hashable(kernel_size, stride, padding, dilation)
        n, c, h, w = x.shape
        kh, kw = kernel_size
        oh, ow, self.taps, self.reads_padding = _im2col_plan(
            x.shape, kernel_size, stride, padding, dilation
        )
        self.x = x
        self.shape = (c, kh, kw, oh, ow)
        self.planes = None
        if _flat_runs(x.shape, kernel_size, stride, padding, dilation, (oh, ow)) is not None:
            front, back, _, self.wrapped = _padded_planes(
                x.shape, kernel_size, padding, dilation, (oh, ow)
            )
            self.planes = np.zeros((n, c, front + h * w + back), dtype=x.dtype)
            self.images = self.planes[:, :, front : front + h * w].reshape(n, c, h, w)
            self.windows = _windows_of_padded(self.planes, kernel_size, dilation, w, oh * w)
        self.zero = np.zeros((), dtype=x.dtype)  # (0 does not cast to bool)

    @property
    def calls(self) -> int:
        """The NumPy calls of ``fill`` for a chunk (threads.parallel_for's calls_per_chunk):
        two copies from padded planes, else a copy per tap and the padding's zeroing."""
        return 2 if self.planes is not None else len(self.taps) + self.reads_padding

    def fill(self, first, last, out=None, zero_wrapped=True):
        """The (last - first, C, kh, kw, oh, ow) windows of images first:last (into ``out``)."""
        cols = np.empty((last - first,) + self.shape, dtype=self.x.dtype) if out is None else out
        if self.planes is None:
            source = self.x[first:last]
            for p, q, (rows, columns), (in_rows, in_columns) in self.taps:
                # np.copyto, not cols[...] = ...: NumPy's item assignment keeps the
                # GIL for short rows like these (two threads ran no faster than one)
                np.copyto(cols[:, :, p, q, rows, columns], source[:, :, in_rows, in_columns])
            if self.reads_padding:  # the outputs whose tap reads the zero padding (np.zeros for
                # the whole matrix is one memset on one thread: 0.1 ms more)
                _zero_padding_taps(cols, self.taps)
            return cols
        np.copyto(self.images[first:last], self.x[first:last])
        np.copyto(cols.reshape(self.windows[first:last].shape), self.windows[first:last])
        if zero_wrapped:
            self.zero_wrapped(cols)
        return cols

    def zero_wrapped(self, cols):
        """Zero the reads that wrapped into the neighbouring row (none outside padded planes).

        These copies of one element per row keep the GIL (8 us for 8 of the CNN's
        second layer's images).
        """
        if self.planes is not None:
            for q, first, end in self.wrapped:
                np.copyto(cols[:, :, :, q, :, first:end], self.zero)


def _im2col(x, kernel_size, stride, padding, dilation, groups):
    """Im2col's matrix of the images ``x``, (N, g, C/g*kh*kw, oh*ow), on the engine's threads.

    Per chunk of images a few long NumPy calls (see _Windows); the wrapped reads
    are zeroed after the chunks, on the calling thread: in the chunks, those
    copies that keep the GIL made the other thread wait for it (~20 us a time
    here).  The CNN's first Im2col (64x1x28x28) took 197 us on two threads
    against 104 on one with the padding zeroed strip by strip in the chunks; as
    now, 111 and 78.  The second (64x16x14x14): 288 and 292 us, against 330
    and 371.
    """
    windows = _Windows(x, kernel_size, stride, padding, dilation)
    n = x.shape[0]
    cols = np.empty((n,) + windows.shape, dtype=x.dtype)

    def images(start, stop):  # images start:stop, on one of the engine's threads
        windows.fill(start, stop, cols[start:stop], zero_wrapped=False)

    parallel_for(n, images, cols[:1].size, calls_per_chunk=windows.calls)
    windows.zero_wrapped(cols)
    c, kh, kw, oh, ow = windows.shape
    return cols.reshape(n, groups, c // groups * kh * kw, oh * ow)


def _col2im(cols, input_shape, kernel_size, stride, padding, dilation, groups):
    """Col2im's sums: each column of ``cols`` added back where its window was read."""
    kernel_size, stride, padding, dilation = _hashable(kernel_size, stride, padding, dilation)
    input_shape = tuple(input_shape)
    n, c = input_shape[:2]
    kh, kw = kernel_size
    oh, ow, taps, _ = _im2col_plan(input_shape, kernel_size, stride, padding, dilation)
    blocks = cols.reshape(n, c, kh, kw, oh, ow)
    out = np.zeros(input_shape, dtype=cols.dtype)
    flat = _flat_runs(input_shape, kernel_size, stride, padding, dilation, (oh, ow))
    if flat is not None and _bits_dtype(cols.dtype) is not None:
        _col2im_of_padded(blocks, out, kernel_size, padding, dilation, (oh, ow))
        return out

    def images(start, stop):  # images start:stop, on one of the engine's threads
        part, source = out[start:stop], blocks[start:stop]
        if flat is None:
            for p, q, (rows, columns), (in_rows, in_columns) in taps:
                part[:, :, in_rows, in_columns] += source[:, :, p, q, rows, columns]
        else:
            _col2im_by_runs(part, source, taps, *flat)

    # 3 element-operations per column value (strided reads, adds into the image):
    # 1.53 ms for the CNN's 64x16x9x28x28 columns, where 1 would predict 0.55
    parallel_for(n, images, blocks[:1].size * 3, calls_per_chunk=len(taps))
    return out


class Im2col(Function):
    """cols[n, g, (c, p, q), (i, j)] = x_pad[n, g C/g + c, i sh + p dh, j sw + q dw]
    dL/dx = Col2im(dL/dcols): each window's gradient added back where it was read

    (N, g, C/g*kh*kw, oh*ow), the matrices ``conv2d`` multiplies the kernel by;
    ``padding`` is ((top, bottom), (left, right)) of zeros.  Equal to
    ``Windows2d`` of the padded input, reshaped and permuted into that matrix.
    """

    op_name = "conv2d"

    @staticmethod
    def forward(ctx, x, kernel_size, stride, padding, dilation, groups):
        ctx.params = (x.shape, kernel_size, stride, padding, dilation, groups)
        return _im2col(x, kernel_size, stride, padding, dilation, groups)

    @staticmethod
    def backward(ctx, grad):
        return Col2im.apply(grad, *ctx.params), None, None, None, None, None


class Col2im(Function):
    """x = zeros(input shape); x[window taps] += cols (padding dropped)
    dL/dcols = Im2col(dL/dx)"""

    op_name = "conv2d backward"

    @staticmethod
    def forward(ctx, cols, input_shape, kernel_size, stride, padding, dilation, groups):
        ctx.params = (kernel_size, stride, padding, dilation, groups)
        return _col2im(cols, input_shape, kernel_size, stride, padding, dilation, groups)

    @staticmethod
    def backward(ctx, grad):
        return Im2col.apply(grad, *ctx.params), None, None, None, None, None, None
