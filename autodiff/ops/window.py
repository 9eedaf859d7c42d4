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
