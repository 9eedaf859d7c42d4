"""Fused primitives: a composite computed in one op, for a measured speed or stability gain.

Each keeps the lecture's formula in its docstring, and a test checks that it
agrees with the composed version (values and first and second derivatives).
"""

from __future__ import annotations

import numpy as np

from ..function import Function
from ..grad_mode import is_grad_enabled
from ..tensor import Tensor, constant
from ..threads import parallel_for
from .elementwise import _ufunc, _ufunc_into
from .linalg import _matmul, _products_side_by_side, _times_transposed
from .reduce import ScatterAdd, Sum, _sum
from .shape import sum_to_shape
from .window import Col2im, Im2col, _col2im, _hashable, _Windows


class CrossEntropy(Function):
    """loss = mean_i (logsumexp(x_i) - x_{i, y_i})        dL/dx = dL/dloss * (s - t) / N

    with s = softmax(x) per row and t the one-hot target: the lecture's
    "softmax minus target".  ``cross_entropy`` uses this one primitive for
    logits (N, C) and class indices because the composed form costs a dozen
    small ops per training step (measured: 229 us forward + backward for a
    batch of 64 against about 50 us fused, PyTorch 46 us).  The lecture's
    derivation, and the cases this does not take (spatial dims, probability
    targets, a weight of another dtype or needing a gradient, a mean over no
    rows), use the composed ``log_softmax`` + ``nll_loss``.

    It takes PyTorch's options, by PyTorch's formula: with class weights w, an
    ignored class and label smoothing eps,
    loss_i = (1 - eps) w_{y_i} (lse_i - x_{i, y_i}) + (eps / C) sum_c w_c (lse_i - x_ic),
    lse_i = logsumexp(x_i), 0 for an ignored row; the mean divides by the
    kept rows' sum_i w_{y_i}.  The gradient stays softmax minus target,
    scaled: per row a_i s_i - b_i, a_i = (1 - eps) w_{y_i} + (eps / C) sum_c w_c
    and b_i = (1 - eps) w_{y_i} onehot(y_i) + (eps / C) w.  Weighted, ignoring
    or smoothing, a batch of 64 (10 classes) took 260 to 380 us forward +
    backward composed, 80 to 90 us fused (PyTorch 49 us; 135 us smoothing).
    Tests check that both forms give the same values and first and second
    derivatives.
    """

    op_name = "cross_entropy"

    @staticmethod
    def forward(ctx, logits, target, reduction, weight=None, ignore_index=None, smoothing=0.0):
        rows = np.arange(len(target))
        shifted = logits - logits.max(axis=1, keepdims=True)  # (N, C), max 0 per row
        exp = np.exp(shifted)
        total = exp.sum(axis=1, keepdims=True)  # (N, 1)
        ctx.reduction = reduction
        probs = exp / total if ctx.needs_input_grad[0] else None  # s, for backward only
        if weight is None and ignore_index is None and not smoothing:  # the common case
            losses = np.log(total[:, 0]) - shifted[rows, target]  # (N,)
            ctx.rule = None
            ctx.save_for_backward(logits, probs, target)
            if reduction == "none":
                return losses
            total_loss = losses.sum()
            return total_loss / len(target) if reduction == "mean" else total_loss
        log_total = np.log(total[:, 0])
        rule = ctx.rule = _CrossEntropyRule(target, weight, ignore_index, smoothing, logits)
        losses = rule.picked_weight * (log_total - shifted[rows, rule.safe])  # w_{y_i} nll_i
        if smoothing:  # (eps / C) sum_c w_c (log_total_i - shifted_ic), kept rows only
            classes = logits.shape[1]
            weights = rule.class_weights
            spread = log_total * weights.sum() - shifted @ weights
            losses = (1 - smoothing) * losses + (smoothing / classes) * (spread * rule.kept)
        ctx.save_for_backward(logits, probs, target)
        if reduction == "none":
            return losses
        total_loss = losses.sum()
        return total_loss / rule.divisor if reduction == "mean" else total_loss

    @staticmethod
    def backward(ctx, grad):
        logits, probs, target = ctx.saved_tensors
        rule = ctx.rule
        n = len(target.data)
        divisor = n if rule is None else rule.divisor
        if not is_grad_enabled():  # the usual backward: the same rule on the arrays
            # s - t: 1 taken from s at each target (s - 0 is s itself), then the scale,
            # as the recorded form below computes them, so the same bits
            scale = grad.data / divisor if ctx.reduction == "mean" else grad.data
            if ctx.reduction == "none":
                scale = scale[:, None]
            if rule is None:
                difference = probs.data.copy()
                difference[np.arange(n), target.data] -= 1
            else:
                difference = np.multiply(probs.data, rule.probs_scale(probs.dtype))
                difference -= rule.target_weights(probs.dtype)
            grad_logits = Tensor._make(np.multiply(difference, scale), None, None)
            return (grad_logits,) + (None,) * (len(ctx.needs_input_grad) - 1)
        # create_graph: recompute s from the logits so that it is differentiable
        probs = logits.softmax(1)
        if rule is None:
            targets = np.zeros(probs.shape, dtype=probs.dtype)
            targets[np.arange(n), target.data] = 1
        else:
            probs = probs * constant(rule.probs_scale(probs.dtype))
            targets = rule.target_weights(probs.dtype)
        if ctx.reduction == "mean":
            scale = grad / divisor
        else:
            scale = grad if ctx.reduction == "sum" else grad.unsqueeze(1)
        grad_logits = (probs - Tensor._make(targets, None, None)) * scale
        return (grad_logits,) + (None,) * (len(ctx.needs_input_grad) - 1)


class NllLoss(Function):
    """loss = -sum_i w_i x_{i, y_i} / sum_i w_i        dL/dx_{i, y_i} = -dL/dloss w_i / sum_i w_i

    ``nll_loss`` of log-probabilities (N, C) and class indices as one primitive
    (the mean above; ``sum`` drops the divisor, ``none`` the sums).  ``w_i`` is
    the class weight of row i's target, 0 for an ignored row, whose index the
    caller has set to 0 (``safe``).  Composed, nll_loss records a gather, a
    squeeze, a negation, a product, two sums and a division, and its backward
    as many ops again: 64 rows, forward + backward, 136 us composed, 55 fused,
    PyTorch 24; log_softmax + nll_loss (PyTorch's MNIST example) on 64x10, 237
    us composed, 96 with both primitives, PyTorch 46.  This computes the
    composed form's arrays in its order, so values and gradients are its
    bits: -(g / sum w) w_i put at [i, y_i], zero elsewhere.  The gradient does
    not depend on x, so with ``create_graph`` only its dependence on g is
    recorded (the put as ``ScatterAdd``).  A test checks this against the
    composed form.
    """

    op_name = "nll_loss"

    @staticmethod
    def forward(ctx, logp, safe, weights, reduction):
        ctx.reduction, ctx.input_shape = reduction, logp.shape
        ctx.save_for_backward(safe, weights)
        losses = np.multiply(np.negative(logp[np.arange(len(safe)), safe]), weights)
        if reduction == "none":
            return losses
        total = np.sum(losses)
        return total if reduction == "sum" else np.true_divide(total, np.sum(weights))

    @staticmethod
    def backward(ctx, grad):
        safe, weights = ctx.saved_tensors
        mean = ctx.reduction == "mean"
        if is_grad_enabled():  # create_graph: linear in g, constant in x
            scale = grad / constant(np.sum(weights.data)) if mean else grad
            if ctx.reduction != "none":  # the sum's backward, as the composed form records it
                scale = scale.reshape((1,)).expand(weights.shape)
            shares = (-(scale * weights)).reshape(-1, 1)  # (N, 1)
            index = safe.data[:, None]
            return ScatterAdd.apply(shares, 1, index, ctx.input_shape), None, None, None
        scale = np.true_divide(grad.data, np.sum(weights.data)) if mean else grad.data
        shares = np.negative(np.multiply(scale, weights.data))
        out = np.zeros(ctx.input_shape, dtype=shares.dtype)
        out[np.arange(len(safe.data)), safe.data] = shares
        return Tensor._make(out, None, None), None, None, None


class _CrossEntropyRule:
    """What class weights, an ignored class and label smoothing make of cross-entropy's
    rows: each row's weight, the mean's divisor, and the gradient's a_i and b_i."""

    def __init__(self, target, weight, ignore_index, smoothing, logits):
        n, classes = logits.shape
        self.kept = np.ones(n, dtype=logits.dtype)
        self.safe = target
        if ignore_index is not None:
            ignored = target == ignore_index
            self.kept = (~ignored).astype(logits.dtype)
            self.safe = np.where(ignored, 0, target)
        self.class_weights = (
            np.ones(classes, dtype=logits.dtype) if weight is None else weight.astype(logits.dtype)
        )
        self.picked_weight = self.class_weights[self.safe] * self.kept  # w_{y_i}, 0 if ignored
        self.divisor = self.picked_weight.sum()
        self.smoothing = smoothing

    def probs_scale(self, dtype):
        """a_i = (1 - eps) w_{y_i} + (eps / C) sum_c w_c (0 for an ignored row), (N, 1)."""
        eps, weights = self.smoothing, self.class_weights
        a = (1 - eps) * self.picked_weight + (eps / len(weights)) * weights.sum() * self.kept
        return a.astype(dtype, copy=False)[:, None]

    def target_weights(self, dtype):
        """b_i = (1 - eps) w_{y_i} onehot(y_i) + (eps / C) w (0 for an ignored row), (N, C)."""
        eps, weights = self.smoothing, self.class_weights
        n = len(self.safe)
        b = np.outer(self.kept, (eps / len(weights)) * weights)
        b[np.arange(n), self.safe] += (1 - eps) * self.picked_weight
        return b.astype(dtype, copy=False)


class Linear(Function):
    """y = x W^T + b        dL/dx = dL/dy W        dL/dW = dL/dy^T x        dL/db = sum_n dL/dy

    The fully connected layer for a batch of rows: x (N, in) and W (out, in),
    both row-major (W as PyTorch stores it), b (out,) or absent.  ``linear``
    uses this one primitive there because the composed ``x @ W.T + b`` records
    three nodes (a transpose, a matrix product, an addition) whose backward
    runs five small ops more: the lecture's MLP took 3.64 ms a training step
    composed against 3.51 ms fused at one thread, 2.91 against 2.63 ms at two
    (PyTorch's ``addmm``, what its ``linear`` runs, is one node too).  The
    usual backward (no ``create_graph``) runs the rules on the arrays, since
    nothing is recorded; with ``create_graph`` they are recorded ops, so that
    they can be differentiated again.  Either way the products are the
    composed form's own (``W @ x^T`` transposed back, then ``dL/dy W`` and
    ``dL/dy^T x``, see ``MatMul``), so every value and gradient is the same to
    the bit; a test checks this, and the second derivatives, against the
    composed form.
    """

    op_name = "linear"

    @staticmethod
    def forward(ctx, x, weight, bias=None):
        ctx.save_for_backward(
            weight if ctx.needs_input_grad[0] else None, x if ctx.needs_input_grad[1] else None
        )
        y = _times_transposed(x, weight)  # (N, out), as MatMul computes x @ W.T
        if bias is None:
            return y
        if bias.dtype != y.dtype:  # (a wider sum, a float64 bias, needs a new array)
            return _ufunc(np.add, y, bias)
        # y is this op's own new array: the bias goes into it, saving an allocation
        # and a pass over memory (5 us of the MLP's 512-wide layers)
        return _ufunc_into(y, np.add, y, bias)

    @staticmethod
    def backward(ctx, grad):
        weight, x = ctx.saved_tensors
        needs = ctx.needs_input_grad
        if is_grad_enabled():  # create_graph: the rules as ops, differentiable again
            grad_x = grad @ weight if needs[0] else None  # (N, out) @ (out, in)
            grad_weight = grad.mT @ x if needs[1] else None  # (out, N) @ (N, in)
            grad_bias = Sum.apply(grad, (0,), False) if len(needs) > 2 and needs[2] else None
        else:  # the same rules on the arrays (what MatMul and Sum would compute)
            g = grad.data
            if needs[0] and needs[1]:  # as many multiply-adds each: one per thread
                grad_x, grad_weight = map(
                    constant, _products_side_by_side((g, weight.data), (g.T, x.data))
                )
            else:
                grad_x = constant(_matmul(g, weight.data)) if needs[0] else None
                grad_weight = constant(_matmul(g.T, x.data)) if needs[1] else None
            grad_bias = constant(np.sum(g, axis=0)) if len(needs) > 2 and needs[2] else None
        if len(needs) == 2:  # no bias
            return grad_x, grad_weight
        return grad_x, grad_weight, grad_bias


def batch_statistics(x):
    """The batch's mean and biased variance per channel (dim 1) of x (N, C, ...), each
    shaped (1, C, 1, ...), and x - mean: what ``BatchNorm`` normalises x with.

    mean = sum(x) / n and var = sum((x - mean)^2) / n over every dim but 1 (n
    values per channel), computed as ``x.mean(dims, keepdim=True)`` and the
    composed form compute them, so the same bits.  ``batch_norm`` moves its
    running averages by these too.
    """
    dims = (0, *range(2, x.ndim))
    count = x.size // x.shape[1]
    with np.errstate(all="ignore"):  # as in an op: overflow gives inf, quietly
        mean = _sum(x, dims, True) / count
        centered = _ufunc(np.subtract, x, mean)
        var = _sum(_ufunc(np.multiply, centered, centered), dims, True) / count
    return mean, centered, var


class BatchNorm(Function):
    """y = (x - mean) / sqrt(var + eps) * w + b, per channel, mean and var over the batch
    dL/dx = w / sqrt(var + eps) * (dL/dy - mean(dL/dy) - x_hat * mean(dL/dy * x_hat))
    dL/dw = sum dL/dy * x_hat        dL/db = sum dL/dy

    Batch normalisation in training, x (N, C, ...) normalised per channel by
    the batch's own statistics: x_hat = (x - mean) / sqrt(var + eps), sums and
    means over every dim but 1.  dL/dx has the terms it has because mean and
    var depend on x too: the chain rule through them, gathered.  ``batch_norm``
    uses this one primitive when training (float32 or float64) because the
    composed form (mean, subtraction, square, mean, square root, division,
    scale, shift) records nine nodes whose backward runs some twenty ops: forward
    + backward on one thread, float32, 64x16x28x28 took 4.6-4.8 ms composed
    against 1.8-1.9 ms fused (PyTorch 2.2-2.3 ms), 64x32x14x14 2.1 against 0.8
    ms (PyTorch 1.0-1.1), a 64x256 batch 330 against 108 us (PyTorch 60).
    The forward is the composed form's, to the bit.  The usual backward runs
    the rule above on the arrays (PyTorch's formula, so the bits can differ
    from the composed form's backward in the last place); with
    ``create_graph`` it records the same rule as ops, x_hat computed again
    from x, so that it can be differentiated again.  ``centered`` (x - mean)
    and ``var`` come in computed by ``batch_statistics``: ``batch_norm`` needs
    them for its running averages too.  Tests check values and first and
    second derivatives against the composed form.
    """

    op_name = "batch_norm"

    @staticmethod
    def forward(ctx, x, weight, bias, centered, var, eps):
        shape = var.shape  # (1, C, 1, ...)
        std = np.sqrt(var + eps)
        x_hat = _ufunc(np.divide, centered, std)
        y = x_hat if weight is None else _ufunc(np.multiply, x_hat, weight.reshape(shape))
        if bias is not None:
            y = _ufunc(np.add, y, bias.reshape(shape))
        ctx.eps = eps
        # x for create_graph's rule (PyTorch's kernel keeps its input too)
        ctx.save_for_backward(x, x_hat, std, weight)
        return y

    @staticmethod
    def backward(ctx, grad):
        x, x_hat, std, weight = ctx.saved_tensors
        needs = ctx.needs_input_grad
        dims = (0, *range(2, grad.ndim))
        shape = std.shape
        if is_grad_enabled():  # create_graph: the rule as ops, x_hat again from x
            mean = x.mean(dims, keepdim=True)
            centered = x - mean
            std = ((centered * centered).mean(dims, keepdim=True) + ctx.eps).sqrt()
            x_hat = centered / std
            scaled = grad if weight is None else grad * weight.reshape(shape)  # dL/dx_hat
            grad_x = None
            if needs[0]:
                grad_x = (
                    scaled
                    - scaled.mean(dims, keepdim=True)
                    - x_hat * (scaled * x_hat).mean(dims, keepdim=True)
                ) / std
            grad_weight = (grad * x_hat).sum(dims) if needs[1] else None
            grad_bias = grad.sum(dims) if needs[2] else None
            return grad_x, grad_weight, grad_bias, None, None, None
        g, x_hat, std = grad.data, x_hat.data, std.data
        count = g.size // g.shape[1]
        # dL/db and dL/dw, kept (1, C, 1, ...): dL/dx takes both
        sum_g = _sum(g, dims, True) if needs[0] or needs[2] else None
        sum_g_x_hat = (
            _sum(_ufunc(np.multiply, g, x_hat), dims, True) if needs[0] or needs[1] else None
        )
        grad_x = None
        if needs[0]:
            grad_x = _ufunc(np.subtract, g, sum_g / count)
            grad_x -= _ufunc(np.multiply, x_hat, sum_g_x_hat / count)
            scale = 1 / std if weight is None else weight.data.reshape(shape) / std
            grad_x = constant(_ufunc_into(grad_x, np.multiply, grad_x, scale))
        grad_weight = constant(sum_g_x_hat.reshape(-1)) if needs[1] else None
        grad_bias = constant(sum_g.reshape(-1)) if needs[2] else None
        return grad_x, grad_weight, grad_bias, None, None, None


# PyTorch's bound on x (1 - x), a float32 constant: 1e-12 rounded to float32
_BCE_EPSILON = float(np.float32(1e-12))


class BinaryCrossEntropy(Function):
    """loss = -(y log x + (1 - y) log(1 - x)), each log clamped at -100 (PyTorch's)
    dL/dx = dL/dloss * (x - y) / max(x (1 - x), 1e-12)
    dL/dy = dL/dloss * (log(1 - x) - log x)

    A primitive for PyTorch's gradient at the edges: the composed logs give
    0/0 = NaN at x = 0 or 1 and 1/x = 1e20 at x = 1e-20; PyTorch bounds the
    denominator by 1e-12 (so BCE(sigmoid(200), ...) in float32 stays finite).
    """

    op_name = "binary_cross_entropy"

    @staticmethod
    def forward(ctx, x, y):
        ctx.save_for_backward(x, y)
        log_x = np.maximum(np.log(x), -100)
        log_1mx = np.maximum(np.log1p(-x), -100)
        return -(y * log_x + (1 - y) * log_1mx)

    @staticmethod
    def backward(ctx, grad):
        x, y = ctx.saved_tensors
        grad_x = grad_y = None
        if ctx.needs_input_grad[0]:
            grad_x = grad * (x - y) / (x * (1 - x)).clamp(min=_BCE_EPSILON)
        if ctx.needs_input_grad[1]:
            # unclamped, as PyTorch's: inf where x is 0 or 1
            grad_y = grad * ((1 - x).log() - x.log())
        return grad_x, grad_y


# Conv2d's windows of one chunk of images (at most this many bytes, at least one image)
# are made and multiplied while they stay in the core's cache (1 MiB of L2 per core
# here).  The small CNN's step, one thread, CPU time: 14.0 ms with chunks of 256 KiB
# (the chunks' own Python and NumPy calls add up), 12.8 at 512 KiB, 12.5 at 1 MiB and
# 2 MiB, 16.1 with the whole batch at once.
_CONV_CHUNK_BYTES = 1 << 20


def _chunks(start, stop, per_image_bytes):
    """(first, last) image ranges of start:stop whose windows take up to _CONV_CHUNK_BYTES."""
    step = max(1, _CONV_CHUNK_BYTES // max(1, per_image_bytes))
    for first in range(start, stop, step):
        yield first, min(stop, first + step)


def _transposed_padding(kernel_size, stride, padding, dilation, channels):
    """The padding of dL/dy that makes dL/dx a convolution of it, or None where there is
    none or fold(W^T g) costs less.

    With stride 1 and no dilation, y[i] = sum_p w[p] x[i + p - top] gives
    dL/dx[h] = sum_p w[p] g[h - p + top] = sum_p' w[k-1-p'] g[h + p' - (k-1-top)]:
    the kernel flipped, and g padded by k-1-top before and k-1-bottom after.
    Its windows are O kh kw rows against fold's C kh kw, so with many more
    output channels than input channels (``channels``: (C, O)) fold wins: 64
    images, 3x3, padding 1, forward + backward on one thread, transposed
    against fold: 1 -> 16 channels (28x28) 2.75 against 1.22 ms, 4 -> 32 (14x14)
    2.04 against 1.67, 4 -> 16 (28x28) 4.28 against 4.45, 16 -> 32 (14x14)
    5.72 against 6.97, 8 -> 8 (28x28) 4.06 against 6.33.  Only for a convolution as
    wide as its input ("same" padding, the lecture's): see below.
    """
    c_in, c_out = channels
    if tuple(stride) != (1, 1) or tuple(dilation) != (1, 1) or c_out > 4 * c_in:
        return None
    if sum(padding[1]) != kernel_size[1] - 1:
        # x and y differ in width, so the padded g's windows are no longer one strided
        # view (_Windows): they are copied tap by tap, row by row, in many small chunks
        # (LeNet's 6 -> 16 channels, 5x5, no padding, 64x6x14x14: forward + backward
        # 7.6 ms against 4.4 ms by fold)
        return None
    widths = tuple(
        (k - 1 - before, k - 1 - after) for k, (before, after) in zip(kernel_size, padding)
    )
    return widths if min(min(pair) for pair in widths) >= 0 else None


class Conv2d(Function):
    """y[n, o, i, j] = b[o] + sum_{c, p, q} W[o, c, p, q] x_pad[n, c, i sh + p dh, j sw + q dw]
    dL/dx = fold(W^T g)        dL/dW = sum_n g_n unfold(x_n)^T        dL/db = sum_{n, i, j} g

    ``conv2d``'s common case (one group; float32 or float64 input, weight and
    bias of one dtype) as one primitive (PyTorch's graph has one node too,
    ``ConvolutionBackward0``).  Composed, conv2d records Im2col, MatMul,
    Reshape and Add and keeps the whole matrix of windows, (N, C kh kw, oh
    ow), for the weight's gradient: 7.2 MB for the small CNN's second layer
    (batch 64), written in the forward pass and read back from memory in the
    backward pass, where OpenBLAS took twice as long over it as over windows
    in cache.  Here the images go a chunk at a time (up to 1 MiB of windows,
    see _CONV_CHUNK_BYTES): a chunk's windows are made (Im2col's kernel) and
    multiplied while they are in the core's cache, the bias added right after,
    and the backward pass makes them again from x.  dL/dx is, with stride 1,
    no dilation and less padding than the kernel (as in the lecture's CNN),
    the *transposed convolution*: dL/dy padded by k-1-pad and convolved with
    the kernel flipped and transposed, (C, O kh kw) @ unfold(g) per image,
    which lands in x's layout (PyTorch's way); fold(W^T g) wrote a (C kh kw,
    oh ow) matrix per image and then added it up (it stays where there are
    over 4 times as many output channels as input channels, see
    _transposed_padding).  The two sum the same
    products in another order, so dL/dx's last bits differ from the composed
    form's; elsewhere dL/dx is fold(W^T g) a chunk at a time, and y, dL/dW and
    dL/db are the composed form's own numbers to the bit (a test checks all
    four, and the second derivatives).  With ``create_graph`` the rules run as
    recorded ops (Im2col, MatMul, Col2im), differentiable again.

    The small CNN's training step (batch 64), alternated with the composed
    form: 10.8-11.5 against 13.3-14.8 ms on one thread (CPU time), 7.6-8.4
    against 9.0-9.2 ms on two (medians).
    """

    op_name = "conv2d"

    @staticmethod
    def forward(ctx, x, weight, bias, stride, padding, dilation):
        kernel_size = weight.shape[2:]
        geometry = _hashable(kernel_size, stride, padding, dilation)
        kernel_size, stride, padding, dilation = geometry
        ctx.geometry = geometry
        ctx.input_shape = x.shape
        needs = ctx.needs_input_grad
        ctx.save_for_backward(x if needs[1] else None, weight if needs[0] else None)
        n, c_out = x.shape[0], weight.shape[0]
        windows = _Windows(x, kernel_size, stride, padding, dilation)
        oh, ow = windows.shape[3:]
        kernel = weight.reshape(1, c_out, -1)  # (1, O, K = C kh kw)
        out = np.empty((n, c_out, oh, ow), dtype=np.result_type(x, weight))
        products = out.reshape(n, 1, c_out, oh * ow)
        shifted = None if bias is None else bias.reshape(1, c_out, 1, 1)
        window_bytes = kernel.shape[2] * oh * ow * x.itemsize

        def images(start, stop):  # images start:stop, on one of the engine's threads
            for first, last in _chunks(start, stop, window_bytes):
                cols = windows.fill(first, last).reshape(last - first, 1, kernel.shape[2], -1)
                np.matmul(kernel, cols, out=products[first:last])  # (O, K) @ (K, oh ow)
                if shifted is not None:
                    np.add(out[first:last], shifted, out=out[first:last])

        # per image: the windows' copy, an element-operation per element, and the product,
        # about 16 multiply-adds to one (Conv2d(1, 16)'s 64x1x28x28: 274 us, predicted 276)
        window_size = kernel.shape[2] * oh * ow
        cost = window_size + c_out * window_size // 16
        parallel_for(n, images, cost, calls_per_chunk=3)
        return out

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        needs = ctx.needs_input_grad
        if is_grad_enabled():  # create_graph: the rules as ops, differentiable again
            return _conv2d_rules_as_ops(x, weight, grad, ctx.input_shape, ctx.geometry, needs)
        kernel_size, stride, padding, dilation = ctx.geometry
        input_shape = ctx.input_shape
        c_in, taps = input_shape[1], kernel_size[0] * kernel_size[1]
        g = grad.data
        n, c_out, oh, ow = g.shape
        rows = g.reshape(n, 1, c_out, oh * ow)
        grad_x = products = kernel = flipped = transposed = None
        window_bytes = 0
        if needs[0]:
            grad_x = np.empty(input_shape, dtype=np.result_type(g, weight.data))
            transposed = _transposed_padding(kernel_size, stride, padding, dilation, (c_in, c_out))
            if transposed is None:
                kernel = weight.data.reshape(1, c_out, -1)  # (1, O, C kh kw)
                window_bytes = c_in * taps * oh * ow * g.itemsize
            else:  # (1, C, O kh kw): W flipped and transposed
                flipped = np.ascontiguousarray(
                    weight.data[:, :, ::-1, ::-1].transpose(1, 0, 2, 3)
                ).reshape(1, c_in, -1)
                window_bytes = c_out * taps * input_shape[2] * input_shape[3] * g.itemsize
        if needs[1]:
            products = np.empty((n, 1, c_in * taps, c_out), dtype=np.result_type(x.data, g))
            window_bytes = max(window_bytes, c_in * taps * oh * ow * x.data.itemsize)

        windows = gradient_windows = None
        if products is not None:
            windows = _Windows(x.data, kernel_size, stride, padding, dilation)
        if flipped is not None:
            gradient_windows = _Windows(g, kernel_size, (1, 1), transposed, (1, 1))

        def images(start, stop):  # images start:stop, on one of the engine's threads
            for first, last in _chunks(start, stop, window_bytes):
                if products is not None:  # unfold(x) again, then unfold(x) g^T per image
                    cols = windows.fill(first, last).reshape(last - first, 1, c_in * taps, -1)
                    np.matmul(cols, rows[first:last].swapaxes(-1, -2), out=products[first:last])
                if flipped is not None:  # the transposed convolution: (C, O kh kw) @ unfold(g)
                    cols = gradient_windows.fill(first, last)
                    cols = cols.reshape(last - first, 1, c_out * taps, -1)
                    target = grad_x[first:last].reshape(last - first, 1, c_in, -1)
                    np.matmul(flipped, cols, out=target)
                elif kernel is not None:  # fold(W^T g), as the composed form computes it
                    columns = np.matmul(kernel.swapaxes(-1, -2), rows[first:last])
                    shape = (last - first,) + tuple(input_shape[1:])
                    grad_x[first:last] = _col2im(
                        columns, shape, kernel_size, stride, padding, dilation, 1
                    )

        # per image: two products of about O x C kh kw x oh ow multiply-adds, 16 to an
        # element-operation, and the copies of the windows they read
        window_size = c_in * taps * oh * ow
        cost = 2 * c_out * window_size // 16 + window_size
        if flipped is not None:
            cost += c_out * taps * input_shape[2] * input_shape[3]
        parallel_for(n, images, cost, calls_per_chunk=4)
        grad_weight = grad_bias = None
        if products is not None:  # summed over the images as MatMul's backward sums them
            summed = sum_to_shape(constant(products).mT, (1, c_out, c_in * taps), "conv2d")
            grad_weight = summed.contiguous().reshape(c_out, c_in, *kernel_size)
        if needs[2]:
            grad_bias = sum_to_shape(grad, (1, c_out, 1, 1), "conv2d").reshape(c_out)
        return (
            None if grad_x is None else constant(grad_x),
            grad_weight,
            grad_bias,
            None,
            None,
            None,
        )


def _conv2d_rules_as_ops(x, weight, grad, input_shape, geometry, needs):
    """Conv2d's gradients as recorded ops (create_graph): the same products as its backward."""
    kernel_size, stride, padding, dilation = geometry
    n, c_out = grad.shape[:2]
    c_in = input_shape[1]
    rows = grad.reshape(n, 1, c_out, -1)  # (N, 1, O, oh ow)
    grad_x = grad_weight = grad_bias = None
    if needs[0]:
        transposed = _transposed_padding(kernel_size, stride, padding, dilation, (c_in, c_out))
        if transposed is None:  # fold(W^T g)
            kernel = weight.reshape(1, c_out, -1)
            windows = kernel.mT @ rows
            grad_x = Col2im.apply(windows, input_shape, kernel_size, stride, padding, dilation, 1)
        else:  # the transposed convolution
            backwards = [np.arange(k - 1, -1, -1) for k in kernel_size]
            flipped = weight[:, :, backwards[0]][:, :, :, backwards[1]]
            # row-major, as the plain backward's: a product of other layouts may round otherwise
            flipped = flipped.permute(1, 0, 2, 3).reshape(1, c_in, -1).contiguous()
            cols = Im2col.apply(grad, kernel_size, (1, 1), transposed, (1, 1), 1)
            grad_x = (flipped @ cols).reshape(input_shape)
    if needs[1]:
        cols = Im2col.apply(x, kernel_size, stride, padding, dilation, 1)
        summed = sum_to_shape((cols @ rows.mT).mT, (1, c_out, cols.shape[2]), "conv2d")
        grad_weight = summed.contiguous().reshape(c_out, c_in, *kernel_size)
    if needs[2]:
        grad_bias = sum_to_shape(grad, (1, c_out, 1, 1), "conv2d").reshape(c_out)
    return grad_x, grad_weight, grad_bias, None, None, None
