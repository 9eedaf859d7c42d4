"""Sliding windows: the one view that convolution and pooling are built from."""

from __future__ import annotations

import numpy as np

from ..function import Function


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


def window_argmax(x: np.ndarray, kernel_size, stride, dilation, out_hw) -> np.ndarray:
    """The tap ``p * kw + q`` of each window's maximum: (N, C, oh, ow) int64.

    The same choice as ``np.argmax`` over the flattened window: the first
    maximum, and the first NaN when a window holds one.  Arithmetic only (no
    boolean-mask assignment: on random data those ran 10x slower, measured).
    """
    slices = _tap_slices(x.shape[2:], out_hw, kernel_size, stride, dilation)
    rows, cols = slices[0]
    best = np.array(x[:, :, rows, cols])
    taps = np.zeros(best.shape, dtype=np.int64)
    has_nan = x.dtype.kind in "fc" and bool(np.isnan(np.sum(x)))
    for tap, (rows, cols) in enumerate(slices[1:], start=1):
        candidate = x[:, :, rows, cols]
        better = candidate > best  # strict: ties keep the first tap; nothing beats a NaN
        if has_nan:  # a NaN beats any number
            better |= np.isnan(candidate) & ~np.isnan(best)
        np.maximum(best, candidate, out=best)  # NaN-propagating, like the choice above
        taps += better * (tap - taps)
    return taps


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


def _overlapping(kernel_size, stride, dilation) -> bool:
    return any(d * (k - 1) + 1 > s for k, s, d in zip(kernel_size, stride, dilation, strict=True))


class GatherTaps(Function):
    """y[n, c, i, j] = x[n, c, i sh + p dh, j sw + q dw] at the tap (p, q) = taps[n, c, i, j]
    dL/dx = dL/dy added back at those taps (ScatterTaps)

    ``index`` is the same choice as positions in the flattened input (one
    1-D ``take``: np.take_along_axis and put_along_axis build an index grid
    per call and were 3x slower, measured).
    """

    op_name = "max_pool2d"

    @staticmethod
    def forward(ctx, x, taps, index, kernel_size, stride, dilation):
        ctx.input_shape = x.shape
        ctx.params = (taps, index, kernel_size, stride, dilation)
        return np.take(x.reshape(-1), index)

    @staticmethod
    def backward(ctx, grad):
        return ScatterTaps.apply(grad, ctx.input_shape, *ctx.params), None, None, None, None, None


class ScatterTaps(Function):
    """y = zeros(input shape); y[window taps] += g        dL/dg = GatherTaps of dL/dy"""

    op_name = "max_pool2d backward"

    @staticmethod
    def forward(ctx, g, input_shape, taps, index, kernel_size, stride, dilation):
        ctx.params = (taps, index, kernel_size, stride, dilation)
        out = np.zeros(input_shape, dtype=g.dtype)
        if not _overlapping(kernel_size, stride, dilation):
            # each input position is in at most one window: a plain scatter
            out.reshape(-1)[index.reshape(-1)] = g.reshape(-1)
            return out
        # overlapping windows: add tap by tap, in the fold's order
        slices = _tap_slices(input_shape[2:], taps.shape[2:], kernel_size, stride, dilation)
        for tap, (rows, cols) in enumerate(slices):
            out[:, :, rows, cols] += np.where(taps == tap, g, 0)
        return out

    @staticmethod
    def backward(ctx, grad):
        return GatherTaps.apply(grad, *ctx.params), None, None, None, None, None, None


def window_max(x, kernel_size, stride, dilation, out_hw):
    """Max pooling: ``(values, taps)`` over the windows of ``x`` (N, C, H, W).

    ``values`` (N, C, oh, ow) is a Tensor with its graph; ``taps`` (N, C, oh, ow)
    is the int64 NumPy array of the chosen tap ``p * kw + q`` in each window.
    Equal, values and gradients, to ``windows(x).reshape(..., kh*kw).max(dim=-1)``.
    """
    taps = window_argmax(x.data, kernel_size, stride, dilation, out_hw)
    index = _flat_index(taps, x.shape, kernel_size, stride, dilation)
    return GatherTaps.apply(x, taps, index, kernel_size, stride, dilation), taps


# -- im2col: the matrix of windows that convolution multiplies ------------------
#
# Convolution composed as windows(x).reshape(N, g, C/g, ...).permute(...).reshape(
# g, N*oh*ow, K) makes NumPy copy the strided window view with an inner loop of
# kw = 3 elements: 9 ms per 64x16x14x14 batch with a 3x3 kernel; its backward
# folded a transposed gradient (8 ms).  Copied tap by tap (kh*kw slices of the
# input) the same matrix takes 1.5 ms, and the fold into a channels-last buffer
# 2.2 ms (measured).  Im2col and Col2im are each other's VJP.


# Images per pass of the tap loops: each tap writes (or reads) every kh*kw-th
# element of the matrix, so the whole matrix crosses the cache kh*kw times.
# In chunks of about 1 MiB it stays in cache: at batch 256 (a 29 MB matrix for
# Conv 16->32) Im2col took 15.6 ms and Col2im 18.2 ms per batch unchunked.
_CHUNK_BYTES = 1 << 20


def _batch_chunks(n: int, bytes_per_image: int):
    """Slices of the batch dim covering about ``_CHUNK_BYTES`` of the matrix each."""
    step = max(1, _CHUNK_BYTES // max(1, bytes_per_image))
    return [slice(start, min(start + step, n)) for start in range(0, n, step)]


def _im2col_geometry(input_shape, kernel_size, stride, dilation, groups):
    n, c, h, w = input_shape
    (kh, kw), (sh, sw), (dh, dw) = kernel_size, stride, dilation
    oh = (h - dh * (kh - 1) - 1) // sh + 1
    ow = (w - dw * (kw - 1) - 1) // sw + 1
    return n, c // groups, oh, ow, _tap_slices((h, w), (oh, ow), kernel_size, stride, dilation)


class Im2col(Function):
    """cols[g, (n, i, j), (c, p, q)] = x[n, g C/g + c, i sh + p dh, j sw + q dw]
    dL/dx = Col2im(dL/dcols): each window's gradient added back where it was read

    (g, N*oh*ow, C/g*kh*kw), the matrix ``conv2d`` multiplies by the kernel;
    equal to ``Windows2d`` reshaped and permuted into that matrix.
    """

    op_name = "conv2d"

    @staticmethod
    def forward(ctx, x, kernel_size, stride, dilation, groups):
        ctx.params = (x.shape, kernel_size, stride, dilation, groups)
        n, cg, oh, ow, slices = _im2col_geometry(x.shape, kernel_size, stride, dilation, groups)
        kh, kw = kernel_size
        cols = np.empty((groups, n, oh, ow, cg, kh * kw), dtype=x.dtype)
        grouped = x.reshape(n, groups, cg, *x.shape[2:])  # (N, g, C/g, H, W)
        for batch in _batch_chunks(n, cols[:, :1].nbytes):
            for tap, (rows, columns) in enumerate(slices):
                # (N, g, C/g, oh, ow) -> (g, N, oh, ow, C/g)
                cols[:, batch, ..., tap] = grouped[batch, :, :, rows, columns].transpose(
                    1, 0, 3, 4, 2
                )
        return cols.reshape(groups, n * oh * ow, cg * kh * kw)

    @staticmethod
    def backward(ctx, grad):
        return Col2im.apply(grad, *ctx.params), None, None, None, None


class Col2im(Function):
    """x = zeros(input shape); x[window taps] += cols        dL/dcols = Im2col(dL/dx)"""

    op_name = "conv2d backward"

    @staticmethod
    def forward(ctx, cols, input_shape, kernel_size, stride, dilation, groups):
        ctx.params = (kernel_size, stride, dilation, groups)
        n, cg, oh, ow, slices = _im2col_geometry(input_shape, kernel_size, stride, dilation, groups)
        h, w = input_shape[2:]
        kh, kw = kernel_size
        taps = cols.reshape(groups, n, oh, ow, cg, kh * kw)
        # channels-last accumulation: each tap's slice of cols then reads with
        # a short stride (kh*kw) in its innermost dim, C/g
        out = np.zeros((n, h, w, groups, cg), dtype=cols.dtype)
        for batch in _batch_chunks(n, taps[:, :1].nbytes):
            for tap, (rows, columns) in enumerate(slices):
                out[batch, rows, columns] += taps[:, batch, ..., tap].transpose(1, 2, 3, 0, 4)
        return np.ascontiguousarray(out.reshape(n, h, w, groups * cg).transpose(0, 3, 1, 2))

    @staticmethod
    def backward(ctx, grad):
        return Im2col.apply(grad, *ctx.params), None, None, None, None, None
