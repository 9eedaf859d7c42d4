"""``nn.functional``: layers and losses as functions, composed from the engine's ops.

Everything here is plain Python over the primitives of ``autodiff.ops``, so
that "back-propagation through any layer is the chain rule over local
gradients" is literally true of the code: ``conv2d`` is padding + ``Im2col``
(every window as a row of a matrix) + one matrix product, ``max_pool2d`` is a
max over the same windows, ``cross_entropy`` is ``log_softmax`` + a gather.
Where a layer runs a primitive of its own it says so: ``erf`` (NumPy has
none), ``softplus`` (for stability), and the common cases of ``linear``
(``Linear``), ``conv2d`` (``Conv2d``), ``cross_entropy`` (``CrossEntropy``)
and ``batch_norm`` in training (``BatchNorm``), for speed; the composed forms
stay in the code, and tests check that each primitive agrees with its composed
form.

Example::

    >>> logits = autodiff.tensor([[2.0, 1.0, 0.1]])
    >>> F.cross_entropy(logits, autodiff.tensor([0]))
    tensor(0.4170)
"""

from __future__ import annotations

import functools
import inspect
import math
import warnings

import numpy as np

import autodiff
from autodiff import Tensor, constant
from autodiff.grad_mode import modes
from autodiff.ops import (
    BatchNorm,
    BinaryCrossEntropy,
    Conv2d,
    CrossEntropy,
    Elu,
    Erf,
    Im2col,
    LeakyRelu,
    Linear,
    NllLoss,
    Softplus,
    Windows2d,
    WindowSum,
    batch_statistics,
    window_max,
)

__all__ = [
    "adaptive_avg_pool2d",
    "avg_pool2d",
    "batch_norm",
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "conv2d",
    "cross_entropy",
    "dropout",
    "elu",
    "embedding",
    "erf",
    "gelu",
    "l1_loss",
    "leaky_relu",
    "linear",
    "log_softmax",
    "max_pool2d",
    "mse_loss",
    "nll_loss",
    "one_hot",
    "pad",
    "relu",
    "sigmoid",
    "silu",
    "softmax",
    "softplus",
    "tanh",
    "unfold",
]


# -- lecture-level regions ---------------------------------------------------------------


def _lecture_op(name, tensors=("input",), formula="", rule=""):
    """Mark what the decorated layer records as one region named ``name`` (``autodiff.region``).

    ``tensors``: the parameters that are the region's inputs, in signature order;
    every other parameter (with its default when not given) goes into its attrs,
    except private ones (``_stacklevel``).  ``formula`` may be a function of the
    attrs (the pooling's window size).  Nothing is done when grad mode is off.
    """

    def decorate(function):
        parameters = list(inspect.signature(function).parameters.values())
        names = [p.name for p in parameters]
        defaults = {p.name: p.default for p in parameters if p.default is not p.empty}
        # (name, position) of each input and (name, position, default) of each attr, read
        # by position: binding the call through a dict of every name cost each layer ~1 us
        input_slots = [(n, names.index(n)) for n in tensors]
        attr_slots = [
            (n, i, defaults.get(n))
            for i, n in enumerate(names)
            if n not in tensors and not n.startswith("_")
        ]

        @functools.wraps(function)
        def layer(*args, **kwargs):
            if not modes.grad_enabled:  # nothing is recorded: no region
                return function(*args, **kwargs)
            given = len(args)
            if kwargs:
                inputs = tuple([args[i] if i < given else kwargs.get(n) for n, i in input_slots])
                attrs = {n: args[i] if i < given else kwargs.get(n, d) for n, i, d in attr_slots}
            else:
                inputs = tuple([args[i] if i < given else None for _, i in input_slots])
                attrs = {n: args[i] if i < given else d for n, i, d in attr_slots}
            text = formula(attrs) if callable(formula) else formula
            with autodiff.region(name, inputs, attrs, text, rule, tensors) as marked:
                output = function(*args, **kwargs)
                marked.output = output
            return output

        return layer

    return decorate


def _window_text(attrs, what):
    kernel = attrs.get("kernel_size")
    if isinstance(kernel, (int, np.integer)):
        kernel = (kernel, kernel)
    try:
        size = "x".join(str(int(k)) for k in kernel)
    except TypeError:
        size = "k x k"
    return f"y = {what} over each {size} window"


_RULES = {
    "linear": ("y = x W^T + b", "dL/dx = g W\ndL/dW = g^T x\ndL/db = sum_n g"),
    "conv2d": (
        "y = W * x + b",
        "dL/dx = fold(W^T g)\ndL/dW = sum g (x) unfold(x)\ndL/db = sum g over n, i, j",
    ),
    "max_pool2d": (
        lambda attrs: _window_text(attrs, "max"),
        "dL/dx routes g to the window's maximum (0 elsewhere)",
    ),
    "avg_pool2d": (
        lambda attrs: _window_text(attrs, "mean"),
        "dL/dx spreads g evenly over the window",
    ),
    "adaptive_avg_pool2d": (
        "y = mean over adaptive windows",
        "dL/dx spreads g evenly over each window",
    ),
    "relu": ("y = max(x, 0)", "dL/dx = g * [x > 0]"),
    "leaky_relu": ("y = x if x > 0 else a x", "dL/dx = g * (1 if x > 0 else a)"),
    "elu": ("y = x if x > 0 else a (e^x - 1)", "dL/dx = g * (1 if x > 0 else y + a)"),
    "sigmoid": ("y = 1 / (1 + e^-x)", "dL/dx = g * y (1 - y)"),
    "tanh": ("y = tanh(x)", "dL/dx = g * (1 - y^2)"),
    "gelu": ("y = x Phi(x)", "dL/dx = g * (Phi(x) + x phi(x))"),
    "cross_entropy": ("L = -log softmax(z)_y", "dL/dz = (s - t) / N"),
    "nll_loss": ("L = -mean_n x[n, y_n]", "dL/dx = -t / N"),
    "mse_loss": ("L = mean (x - y)^2", "dL/dx = 2 (x - y) / N"),
    "batch_norm": (
        "y = (x - mean) / sqrt(var + eps) * gamma + beta",
        "dL/dx = gamma / sigma * (g - mean(g) - x_hat mean(g x_hat))\n"
        "dL/dgamma = sum g x_hat\ndL/dbeta = sum g",
    ),
    "dropout": ("y = x * mask / (1 - p)", "dL/dx = g * mask / (1 - p)"),
}


def _lecture(name, tensors=("input",)):
    formula, rule = _RULES[name]
    return _lecture_op(name, tensors, formula, rule)


def _tensor(x, name="input") -> Tensor:
    if isinstance(x, Tensor):
        return x
    return autodiff.tensor(x)


def _pair(value, name, op):
    """An int or a pair of ints as a pair (PyTorch's _pair)."""
    if isinstance(value, (int, np.integer)):
        return (int(value), int(value))
    value = tuple(int(v) for v in value)
    if len(value) == 1:
        return value * 2
    if len(value) != 2:
        raise ValueError(f"{op}: {name} must be an int or a pair of ints, got {value}")
    return value


def erf(input) -> Tensor:
    """The error function, differentiable: d erf(x)/dx = 2/sqrt(pi) exp(-x^2)."""
    return Erf.apply(_tensor(input))


# -- activations ------------------------------------------------------------------


@_lecture("relu")
def relu(input, inplace=False) -> Tensor:
    """relu(x) = max(x, 0)        d/dx = 1 where x > 0, else 0."""
    input = _tensor(input)
    return input.relu_() if inplace else input.relu()


def _in_place(input: Tensor, function) -> Tensor:
    """``input.copy_(function(input))``, for activations whose backward needs their input.

    When the graph is recorded, ``function`` runs on a clone: its backward then
    reads the values it saved, not the overwritten ones (PyTorch's in-place
    variants keep what their formulas need in the same way).  ``inplace=True``
    therefore saves no memory here while recording (the README's differences).
    """
    recording = modes.grad_enabled and input.requires_grad
    return input.copy_(function(input.clone() if recording else input))


@_lecture("leaky_relu")
def leaky_relu(input, negative_slope=0.01, inplace=False) -> Tensor:
    """leaky_relu(x) = x if x > 0 else negative_slope * x."""
    input = _tensor(input)
    if inplace:
        return _in_place(input, lambda x: LeakyRelu.apply(x, negative_slope))
    return LeakyRelu.apply(input, negative_slope)


@_lecture("elu")
def elu(input, alpha=1.0, inplace=False) -> Tensor:
    """elu(x) = x if x > 0 else alpha * (exp(x) - 1)."""
    input = _tensor(input)
    if inplace:
        return _in_place(input, lambda x: Elu.apply(x, alpha))
    return Elu.apply(input, alpha)


@_lecture("sigmoid")
def sigmoid(input) -> Tensor:
    """sigmoid(x) = 1 / (1 + exp(-x))        d/dx = s (1 - s)."""
    return _tensor(input).sigmoid()


@_lecture("tanh")
def tanh(input) -> Tensor:
    """tanh(x)        d/dx = 1 - tanh(x)^2."""
    return _tensor(input).tanh()


def softplus(input, beta=1.0, threshold=20.0) -> Tensor:
    """softplus(x) = log(1 + exp(beta x)) / beta, and x where beta x > threshold."""
    input = _tensor(input)
    bx = input * beta
    return autodiff.where(bx > threshold, input, Softplus.apply(bx, threshold) / beta)


def silu(input, inplace=False) -> Tensor:
    """silu(x) = x * sigmoid(x); ``inplace=True`` writes it into ``input`` and returns it."""
    input = _tensor(input)
    if inplace:
        return _in_place(input, lambda x: x * x.sigmoid())
    return input * input.sigmoid()


@_lecture("gelu")
def gelu(input, approximate="none") -> Tensor:
    """gelu(x) = x * Phi(x), Phi the standard normal CDF = (1 + erf(x / sqrt 2)) / 2.

    ``approximate="tanh"``: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
    """
    input = _tensor(input)
    if approximate == "none":
        return input * 0.5 * (1 + Erf.apply(input * (1 / math.sqrt(2.0))))
    if approximate == "tanh":
        inner = (input + 0.044715 * input * input * input) * math.sqrt(2.0 / math.pi)
        return 0.5 * input * (1 + inner.tanh())
    raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")


def _implicit_dim(input, dim, op, stacklevel):
    """No ``dim`` picks PyTorch's old implicit one (0 for 0-, 1- and 3-d input, else 1)
    with its deprecation warning."""
    if dim is None:
        dim = 0 if input.ndim in (0, 1, 3) else 1
        warnings.warn(
            f"Implicit dimension choice for {op} has been deprecated. "
            "Change the call to include dim=X as an argument.",
            UserWarning,
            stacklevel=stacklevel,
        )
    return dim


def softmax(input, dim=None, _stacklevel=3, dtype=None) -> Tensor:
    """softmax(x)_i = exp(x_i - m) / sum_j exp(x_j - m), m = max(x) (for stability).

    Composed, not fused: the graph records the shift (``Sub`` of the detached
    max), ``Exp``, ``Sum`` and ``Div``; back-propagating through them applies the
    Jacobian diag(s) - s s^T, i.e. dL/dx = s * (g - sum(g * s)).  The same code
    as ``Tensor.softmax`` (``autodiff.ops.softmax``, which marks the lecture's
    softmax region); this adds PyTorch's implicit-dim warning.
    """
    input = _tensor(input)
    dim = _implicit_dim(input, dim, "softmax", _stacklevel + 1)
    return autodiff.ops.softmax(input, dim, dtype)


def log_softmax(input, dim=None, _stacklevel=3, dtype=None) -> Tensor:
    """log_softmax(x)_i = (x_i - m) - log sum_j exp(x_j - m), m = max(x) (detached).

    The same code as ``Tensor.log_softmax`` (``autodiff.ops.log_softmax``, which
    marks the lecture's log_softmax region and runs float32 and float64 as one
    primitive, ``LogSoftmax``); this adds PyTorch's implicit-dim warning.
    """
    input = _tensor(input)
    dim = _implicit_dim(input, dim, "log_softmax", _stacklevel + 1)
    return autodiff.ops.log_softmax(input, dim, dtype)


# -- linear, dropout, embedding ---------------------------------------------------


@_lecture("linear", ("input", "weight", "bias"))
def linear(input, weight, bias=None) -> Tensor:
    """y = x W^T + b, with W of shape (out_features, in_features), as PyTorch stores it."""
    input = _tensor(input)
    if input.ndim == 0 or input.shape[-1] != weight.shape[-1]:
        raise RuntimeError(
            f"linear: input of shape {input.shape} has {input.shape[-1] if input.ndim else 0} "
            f"features in its last dim, but the weight of shape {weight.shape} expects "
            f"{weight.shape[-1]} (in_features)"
        )
    if _rows_matrix_and_bias(input, weight, bias):  # a batch of rows: one node
        return Linear.apply(input, weight) if bias is None else Linear.apply(input, weight, bias)
    out = input @ weight.T  # (..., in) @ (in, out) -> (..., out)
    return out if bias is None else out + bias


def _rows_matrix_and_bias(input, weight, bias) -> bool:
    """Row-major x (N, in) and W (out, in), b (out,) or None: what the fused ``Linear`` computes.

    (Other layouts would make ``x @ W.T`` pick other products, with other bits.)
    """
    return (
        input.ndim == 2
        and isinstance(weight, Tensor)
        and weight.ndim == 2
        and (bias is None or (isinstance(bias, Tensor) and bias.shape == weight.shape[:1]))
        and input.data.flags.c_contiguous
        and weight.data.flags.c_contiguous
    )


@_lecture("dropout")
def dropout(input, p=0.5, training=True, inplace=False) -> Tensor:
    """During training, zero each element with probability p and scale the rest by 1/(1-p)."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    input = _tensor(input)
    if not training or p == 0.0:
        return input
    if p == 1.0:
        out = input * 0.0
    else:
        from autodiff.random import numpy_rng

        keep = numpy_rng().random(input.shape) >= p
        # 1 / (1 - p) rounded once to the input's dtype, as (keep / (1 - p)).astype(dtype)
        # gives, without a float64 array between: for 64x16x28x28 the mask took 0.41
        # against 0.87 ms beside the draws' 1.8 ms
        scale = np.asarray(1.0 / (1.0 - p)).astype(input.dtype)
        out = input * constant(np.multiply(keep, scale, dtype=input.dtype))
    return input.copy_(out) if inplace else out


def embedding(
    input,
    weight,
    padding_idx=None,
    max_norm=None,
    norm_type=2.0,
    scale_grad_by_freq=False,
    sparse=False,
) -> Tensor:
    """out[...] = weight[input[...]]: row lookup; the gradient adds into the looked-up rows.

    The row at ``padding_idx`` receives no gradient.
    """
    input = _tensor(input)
    if input.dtype.kind not in "iu":
        raise RuntimeError(
            f"embedding: expected indices of an integer dtype (long), got {input.dtype}"
        )
    n = weight.shape[0]
    if input.numel() and (input.data.min() < 0 or input.data.max() >= n):
        raise IndexError(
            f"embedding: index out of range: indices must be in [0, {n}) for a weight with "
            f"{n} rows, got min {input.data.min()} and max {input.data.max()}"
        )
    if max_norm is not None:
        with autodiff.no_grad():
            rows = np.unique(input.data)
            norms = np.linalg.norm(weight.data[rows], ord=norm_type, axis=1, keepdims=True)
            scale = np.where(norms > max_norm, max_norm / (norms + 1e-7), 1.0)
            weight.data[rows] *= scale.astype(weight.dtype)
    if scale_grad_by_freq or sparse:
        raise NotImplementedError("embedding: scale_grad_by_freq and sparse are not implemented")
    out = weight[input.data]  # (*input.shape, embedding_dim)
    if padding_idx is not None:
        padding_idx = padding_idx % n
        mask = constant((input.data == padding_idx)[..., None])
        out = autodiff.where(mask, out.detach(), out)
    return out


def one_hot(tensor, num_classes=-1) -> Tensor:
    """Long tensor of shape (*tensor.shape, num_classes) with 1 at each index."""
    tensor = _tensor(tensor)
    if tensor.dtype.kind not in "iu":
        raise RuntimeError(
            f"one_hot is only applicable to index tensor of integer dtype, got {tensor.dtype}"
        )
    data = tensor.data
    if num_classes == -1:
        if data.size == 0:
            raise RuntimeError("one_hot: can not infer total number of classes from empty tensor")
        num_classes = int(data.max()) + 1
    if data.size and (data.min() < 0 or data.max() >= num_classes):
        raise RuntimeError(
            f"one_hot: class values must be in [0, {num_classes}), got values in "
            f"[{data.min()}, {data.max()}]"
        )
    out = (data[..., None] == np.arange(num_classes)).astype(np.int64)
    return constant(out)


def pad(input, pad, mode="constant", value=None) -> Tensor:
    """Pad (before, after) pairs from the last dim backwards, as ``torch.nn.functional.pad``."""
    return autodiff.pad(_tensor(input), pad, mode=mode, value=value)


# -- convolution and pooling --------------------------------------------------------


def _check_4d(input, op, what="input"):
    if input.ndim != 4:
        raise RuntimeError(
            f"{op}: expected a 4-D {what} (batch, channels, height, width), got shape "
            f"{input.shape} ({input.ndim}-D)"
            + (
                "; for a single image add a batch dim with x.unsqueeze(0)"
                if input.ndim == 3
                else ""
            )
        )


def _output_size(size, kernel, stride, dilation, op) -> tuple:
    """(oh, ow): how many windows fit in the (padded) (H, W), with a clear error when none does."""
    h, w = size
    span = (dilation[0] * (kernel[0] - 1) + 1, dilation[1] * (kernel[1] - 1) + 1)
    if span[0] > h or span[1] > w:
        raise RuntimeError(
            f"{op}: kernel size {kernel} (dilation {dilation}) spans {span[0]}x{span[1]}, "
            f"which is larger than the padded input of size {h}x{w}"
        )
    return (h - span[0]) // stride[0] + 1, (w - span[1]) // stride[1] + 1


def _windows(x, kernel, stride, dilation, op):
    """(N, C, H, W) -> (N, C, oh, ow, kh, kw) sliding-window view, with a clear size error."""
    _output_size(x.shape[2:], kernel, stride, dilation, op)
    return Windows2d.apply(x, kernel, stride, dilation)


def _same_padding(kernel, dilation):
    """Per side (before, after) padding that keeps H and W (stride 1); extra goes after."""
    widths = []
    for k, d in zip(kernel, dilation, strict=True):
        total = d * (k - 1)
        widths.append((total // 2, total - total // 2))
    return widths


@_lecture("conv2d", ("input", "weight", "bias"))
def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1) -> Tensor:
    """2-D cross-correlation (PyTorch's conv2d) as im2col + one matrix product.

    y[n, o, i, j] = b[o] + sum_{c, p, q} x_pad[n, g(o) c, i sh + p dh, j sw + q dw] w[o, c, p, q]

    with x of shape (N, C_in, H, W) and w of shape (C_out, C_in / groups, kh, kw).
    Composed (``_composed_conv2d``), the graph records ``Im2col`` (the windows of
    the zero-padded input, one (C_in/groups * kh * kw, oh * ow) matrix per image),
    ``MatMul`` of the reshaped kernel by it, which is already laid out as (N,
    C_out, oh, ow), a ``Reshape`` and the bias ``Add``; the gradient flows back
    through the matmul to the kernel and to the matrix, whose backward
    (``Col2im``) adds every window's gradient back where it was read.  The
    common case (one group, float32 or float64) records the same computation as
    one primitive, ``Conv2d``, which keeps the windows in the core's cache
    instead of in memory (autodiff/ops/fused.py has the figures).
    """
    input = _tensor(input)
    _check_4d(input, "conv2d")
    if weight.ndim != 4:
        raise RuntimeError(f"conv2d: expected a 4-D weight, got shape {weight.shape}")
    stride, dilation = _pair(stride, "stride", "conv2d"), _pair(dilation, "dilation", "conv2d")
    c_in = input.shape[1]
    c_out, c_per_group, kh, kw = weight.shape
    if c_in != c_per_group * groups:
        raise RuntimeError(
            f"conv2d: expected input of shape {input.shape} to have {c_per_group * groups} "
            f"channels (weight of shape {weight.shape}, groups={groups}), but got {c_in} channels"
        )
    if c_out % groups:
        raise RuntimeError(f"conv2d: out_channels {c_out} must be divisible by groups {groups}")
    if isinstance(padding, str):
        if padding == "valid":
            widths = [(0, 0), (0, 0)]
        elif padding == "same":
            if stride != (1, 1):
                raise ValueError("conv2d: padding='same' is not supported for strided convolutions")
            widths = _same_padding((kh, kw), dilation)
        else:
            raise ValueError(
                f"conv2d: invalid padding string {padding!r}, should be 'same' or 'valid'"
            )
    else:
        ph, pw = _pair(padding, "padding", "conv2d")
        widths = [(ph, ph), (pw, pw)]
    padded = [size + before + after for size, (before, after) in zip(input.shape[2:], widths)]
    oh, ow = _output_size(padded, (kh, kw), stride, dilation, "conv2d")
    if _one_primitive_conv2d(input, weight, bias, groups, oh * ow):
        return Conv2d.apply(input, weight, bias, stride, tuple(widths), dilation)
    return _composed_conv2d(input, weight, bias, stride, tuple(widths), dilation, groups, (oh, ow))


def _composed_conv2d(input, weight, bias, stride, widths, dilation, groups, out_hw) -> Tensor:
    """conv2d as im2col + one matrix product (+ the bias), each a recorded op: the lecture's
    form, which ``Conv2d`` computes as one op.  ``widths``: the zero padding, (before,
    after) per spatial dim; ``out_hw``: the output's (oh, ow)."""
    n, (oh, ow) = input.shape[0], out_hw
    c_out, c_per_group, kh, kw = weight.shape
    g = groups
    # im2col, (N, g, K = C/g*kh*kw, L = oh*ow): the windows of the zero-padded
    # input, reshaped to (N, g, C/g, oh, ow, kh, kw), permuted to (N, g, C/g, kh,
    # kw, oh, ow) and flattened.  Im2col builds the same matrix (and its backward
    # the same fold) as one primitive, copying tap by tap with the padding folded
    # in (autodiff/ops/window.py has the figures).
    cols = Im2col.apply(input, (kh, kw), stride, widths, dilation, g)
    kernel = weight.reshape(g, c_out // g, c_per_group * kh * kw)  # (g, O/g, K)
    # one product per image, (g, O/g, K) @ (N, g, K, L) -> (N, g, O/g, L): already
    # (N, O, oh, ow) in memory, so no permute and no copy
    out = (kernel @ cols).reshape(n, c_out, oh, ow)
    if bias is not None:
        out = out + bias.reshape(1, c_out, 1, 1)  # (N, O, oh, ow) + (1, O, 1, 1)
    return out


def _one_primitive_conv2d(input, weight, bias, groups, windows) -> bool:
    """Whether conv2d runs as its fused primitive (``Conv2d``): one group, float32 or float64
    tensors of one dtype, a bias of shape (C_out,) or none, and no empty dim."""
    dtype = input.dtype
    return (
        groups == 1
        and dtype in _FUSED_DTYPES
        and isinstance(weight, Tensor)
        and weight.dtype == dtype
        and (bias is None or (isinstance(bias, Tensor) and bias.shape == weight.shape[:1]))
        and (bias is None or bias.dtype == dtype)
        and windows > 0
        and input.numel() > 0
        and weight.numel() > 0
    )


_FUSED_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def unfold(input, kernel_size, dilation=1, padding=0, stride=1) -> Tensor:
    """im2col, as ``torch.nn.functional.unfold``: (N, C, H, W) -> (N, C*kh*kw, L)."""
    input = _tensor(input)
    _check_4d(input, "unfold")
    kernel = _pair(kernel_size, "kernel_size", "unfold")
    ph, pw = _pair(padding, "padding", "unfold")
    x = autodiff.pad(input, (pw, pw, ph, ph)) if ph or pw else input
    n, c = input.shape[:2]
    cols = _windows(
        x,
        kernel,
        _pair(stride, "stride", "unfold"),
        _pair(dilation, "dilation", "unfold"),
        "unfold",
    )  # (N, C, oh, ow, kh, kw)
    oh, ow = cols.shape[2], cols.shape[3]
    cols = cols.permute(0, 1, 4, 5, 2, 3)  # (N, C, kh, kw, oh, ow)
    return cols.reshape(n, c * kernel[0] * kernel[1], oh * ow)  # (N, C*kh*kw, L)


def _pool_geometry(size, kernel, stride, pad, dilation, ceil_mode, op):
    """Output size and extra right padding for one spatial dim (PyTorch's formula)."""
    span = dilation * (kernel - 1) + 1
    if pad > kernel // 2:
        raise RuntimeError(
            f"{op}: pad should be at most half of effective kernel size, but got pad={pad}, "
            f"kernel_size={kernel}"
        )
    # ceil_mode rounds the number of steps up: a last window may hang over the end
    numerator = size + 2 * pad - span + (stride - 1 if ceil_mode else 0)
    out = numerator // stride + 1  # Python's // rounds down, as PyTorch's div_rtn
    if ceil_mode and (out - 1) * stride >= size + pad:  # the last window must start inside
        out -= 1
    if out <= 0:
        raise RuntimeError(
            f"{op}: kernel size {kernel} (dilation {dilation}) is larger than the padded "
            f"input of size {size + 2 * pad}"
        )
    extra = max((out - 1) * stride + span - (size + 2 * pad), 0)
    return out, extra


def _pool_args(input, kernel_size, stride, padding, dilation, op):
    input = _tensor(input)
    if input.ndim not in (3, 4):
        raise RuntimeError(
            f"{op}: expected a 3-D (C, H, W) or 4-D (N, C, H, W) input, got shape {input.shape}"
        )
    kernel = _pair(kernel_size, "kernel_size", op)
    stride = (
        kernel if stride is None or stride == [] or stride == () else _pair(stride, "stride", op)
    )
    return input, kernel, stride, _pair(padding, "padding", op), _pair(dilation, "dilation", op)


@_lecture("max_pool2d")
def max_pool2d(
    input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False
):
    """y[n, c, i, j] = max over the window at (i, j); the gradient goes to the window's
    (first) maximum, as in PyTorch.  Padding is with -inf, so it is never the maximum.
    """
    input, kernel, stride, pad_, dilation = _pool_args(
        input, kernel_size, stride, padding, dilation, "max_pool2d"
    )
    unbatched = input.ndim == 3
    x = input.unsqueeze(0) if unbatched else input  # (N, C, H, W)
    h, w = x.shape[2:]
    oh, extra_h = _pool_geometry(
        h, kernel[0], stride[0], pad_[0], dilation[0], ceil_mode, "max_pool2d"
    )
    ow, extra_w = _pool_geometry(
        w, kernel[1], stride[1], pad_[1], dilation[1], ceil_mode, "max_pool2d"
    )
    widths = (pad_[1], pad_[1] + extra_w, pad_[0], pad_[0] + extra_h)
    if any(widths):
        x = autodiff.pad(x, widths, value=-np.inf)  # (N, C, H', W') with -inf borders
    # (N, C, oh, ow): the maximum of each window and its tap p * kw + q.  The same
    # values and gradients as windows(x).reshape(N, C, oh, ow, kh * kw).max(dim=-1),
    # from a fused primitive that finds the maximum and its tap in one pass: the
    # reshape copy and the argmax along a 4-element axis took 20 ms per
    # 64x16x28x28 batch, the primitive 0.6 ms (autodiff/ops/window.py).
    # A window whose input is all -inf ties with its -inf padding: PyTorch, which
    # never reads the padding, picks the window's first input element.
    padded_ties = any(widths) and bool(np.isneginf(input.data).any())
    values, taps = window_max(
        x, kernel, stride, dilation, (oh, ow), with_taps=return_indices or padded_ties
    )
    if padded_ties:  # in place: the node's backward routes the gradient by these taps
        _first_input_tap_at_padding_ties(taps, (h, w), kernel, stride, pad_, dilation)
    out = values[0] if unbatched else values
    if not return_indices:
        return out
    # the flat index (row * W + col) in the unpadded input of every maximum
    rows, cols_ = _tap_positions(taps, kernel, stride, pad_, dilation)
    indices = constant((rows * w + cols_).astype(np.int64))
    return out, (indices[0] if unbatched else indices)


def _tap_positions(taps, kernel, stride, pad, dilation):
    """(row, col) in the unpadded input of each window's tap p * kw + q."""
    oh, ow = taps.shape[-2:]
    p, q = taps // kernel[1], taps % kernel[1]
    rows = np.arange(oh)[:, None] * stride[0] + p * dilation[0] - pad[0]
    cols = np.arange(ow)[None, :] * stride[1] + q * dilation[1] - pad[1]
    return rows, cols


def _first_input_tap_at_padding_ties(taps, size, kernel, stride, pad, dilation):
    """Move taps that chose padding (an all -inf window) to the window's first input element."""
    rows, cols = _tap_positions(taps, kernel, stride, pad, dilation)
    outside = (rows < 0) | (rows >= size[0]) | (cols < 0) | (cols >= size[1])
    if not outside.any():
        return
    oh, ow = taps.shape[-2:]
    # the smallest p (q) whose row (column) i s + p d - pad is inside: ceil((pad - i s) / d)
    first_p = np.maximum(0, -((np.arange(oh) * stride[0] - pad[0]) // dilation[0]))
    first_q = np.maximum(0, -((np.arange(ow) * stride[1] - pad[1]) // dilation[1]))
    first = first_p[:, None] * kernel[1] + first_q[None, :]  # (oh, ow)
    taps[outside] = np.broadcast_to(first, taps.shape)[outside]


@_lecture("avg_pool2d")
def avg_pool2d(
    input,
    kernel_size,
    stride=None,
    padding=0,
    ceil_mode=False,
    count_include_pad=True,
    divisor_override=None,
):
    """y[n, c, i, j] = mean over the window at (i, j) (zero padding counts unless
    ``count_include_pad=False``); the gradient spreads evenly over each window.
    """
    input, kernel, stride, pad_, _ = _pool_args(
        input, kernel_size, stride, padding, 1, "avg_pool2d"
    )
    unbatched = input.ndim == 3
    x = input.unsqueeze(0) if unbatched else input  # (N, C, H, W)
    h, w = x.shape[2:]
    oh, extra_h = _pool_geometry(h, kernel[0], stride[0], pad_[0], 1, ceil_mode, "avg_pool2d")
    ow, extra_w = _pool_geometry(w, kernel[1], stride[1], pad_[1], 1, ceil_mode, "avg_pool2d")
    widths = (pad_[1], pad_[1] + extra_w, pad_[0], pad_[0] + extra_h)
    if any(widths):
        x = autodiff.pad(x, widths)  # (N, C, H', W') zero-padded
    _output_size(x.shape[2:], kernel, stride, (1, 1), "avg_pool2d")
    if x.dtype in (np.float32, np.float64):
        # (N, C, oh, ow): the sum of each window, from a fused primitive that adds the
        # taps in the window's order (PyTorch's); summing the window view below took
        # 2.4 ms per 64x6x28x28 batch, the primitive 0.15 ms (autodiff/ops/window.py)
        total = WindowSum.apply(x, kernel, stride, (1, 1), (oh, ow))
    else:
        cols = Windows2d.apply(x, kernel, stride, (1, 1))[:, :, :oh, :ow]  # (N, C, oh, ow, kh, kw)
        total = cols.sum(dim=(-2, -1))  # (N, C, oh, ow)
    if divisor_override is not None:
        if divisor_override == 0:
            raise RuntimeError("avg_pool2d: divisor_override must not be zero")
        out = total / divisor_override
    elif count_include_pad and not any(widths):
        out = total / (kernel[0] * kernel[1])
    else:
        # count the taps of each window inside the input (or inside input + padding)
        inside = np.zeros((h + sum(widths[2:]), w + sum(widths[:2])), dtype=x.dtype)
        if count_include_pad:
            inside[: h + 2 * pad_[0], : w + 2 * pad_[1]] = 1
        else:
            inside[pad_[0] : pad_[0] + h, pad_[1] : pad_[1] + w] = 1
        counts = np.lib.stride_tricks.sliding_window_view(inside, kernel)[
            :: stride[0], :: stride[1]
        ]
        counts = counts[:oh, :ow].sum(axis=(-2, -1))  # (oh, ow)
        out = total / constant(counts.astype(x.dtype))
    return out[0] if unbatched else out


def _adaptive_matrix(size, out, dtype):
    """A (out, size) averaging matrix: row i averages [floor(i size/out), ceil((i+1) size/out))."""
    matrix = np.zeros((out, size), dtype=dtype)
    for i in range(out):
        start = (i * size) // out
        end = -((-(i + 1) * size) // out)
        matrix[i, start:end] = 1.0 / (end - start)
    return matrix


@_lecture("adaptive_avg_pool2d")
def adaptive_avg_pool2d(input, output_size) -> Tensor:
    """Average over PyTorch's adaptive windows so that the output is ``output_size``.

    Averaging over a rectangle is separable: y = A_h x A_w^T with constant
    averaging matrices, so this is two matrix products.
    """
    input = _tensor(input)
    if input.ndim not in (3, 4):
        raise RuntimeError(
            f"adaptive_avg_pool2d: expected a 3-D or 4-D input, got shape {input.shape}"
        )
    h, w = input.shape[-2:]
    if isinstance(output_size, (int, np.integer)):
        output_size = (output_size, output_size)
    oh = h if output_size[0] is None else int(output_size[0])
    ow = w if output_size[1] is None else int(output_size[1])
    if input.numel() and not np.all(np.isfinite(input.data)):
        # inf or NaN: in the matrix products 0 * inf = NaN would reach every output of
        # its row and column; average each window on its own, as PyTorch does
        return _adaptive_windows(input, oh, ow)
    a_h = constant(_adaptive_matrix(h, oh, input.dtype))  # (oh, H)
    a_w = constant(_adaptive_matrix(w, ow, input.dtype))  # (ow, W)
    return a_h @ (input @ a_w.T)  # (oh, H) @ ((..., H, W) @ (W, ow)) -> (..., oh, ow)


def _adaptive_windows(input, oh, ow) -> Tensor:
    """The same averages, window by window: mean of rows [floor(i H/oh), ceil((i+1) H/oh))."""
    h, w = input.shape[-2:]
    rows = []
    for i in range(oh):
        top, bottom = (i * h) // oh, -((-(i + 1) * h) // oh)
        cells = []
        for j in range(ow):
            left, right = (j * w) // ow, -((-(j + 1) * w) // ow)
            cells.append(input[..., top:bottom, left:right].mean(dim=(-2, -1)))  # (...)
        rows.append(autodiff.stack(cells, dim=-1))  # (..., ow)
    return autodiff.stack(rows, dim=-2)  # (..., oh, ow)


# -- normalisation ------------------------------------------------------------------


@_lecture("batch_norm", ("input", "running_mean", "running_var", "weight", "bias"))
def batch_norm(
    input, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1, eps=1e-5
) -> Tensor:
    """y = (x - mean) / sqrt(var + eps) * weight + bias, per channel (dim 1).

    In training the batch's mean and biased variance normalise, and the running
    statistics move: running = (1 - momentum) running + momentum * batch stat,
    with the unbiased variance (n / (n - 1)), as PyTorch does.  In evaluation the
    running statistics normalise.  Training in float32 or float64 (weight and bias
    of the input's dtype) runs one primitive, ``BatchNorm`` (the composed form
    recorded nine nodes and took twice as long); otherwise the composed form runs.
    """
    input = _tensor(input)
    if input.ndim < 2:
        raise ValueError(
            f"batch_norm: expected 2-D or more input (N, C, ...), got shape {input.shape}"
        )
    shape = (1, input.shape[1]) + (1,) * (input.ndim - 2)
    if training:
        return _batch_norm_training(input, running_mean, running_var, weight, bias, momentum, eps)
    if running_mean is None or running_var is None:
        raise ValueError("batch_norm: running_mean and running_var are needed when not training")
    mean = running_mean.detach().reshape(shape)
    var = running_var.detach().reshape(shape)
    return _scale_and_shift((input - mean) / (var + eps).sqrt(), weight, bias, shape)


def _batch_norm_training(input, running_mean, running_var, weight, bias, momentum, eps):
    """batch_norm with the batch's statistics, which move the running ones."""
    count = input.numel() // input.shape[1]
    if count <= 1:
        raise ValueError(
            f"Expected more than 1 value per channel when training, got input size {input.shape}"
        )
    if _fused_batch_norm(input, weight, bias):
        mean, centered, var = batch_statistics(input.data)
        out = BatchNorm.apply(input, weight, bias, centered, var, eps)
    else:  # the composed form (float16, mixed dtypes): what BatchNorm computes
        dims = (0, *range(2, input.ndim))
        mean = input.mean(dim=dims, keepdim=True)  # (1, C, 1, ...)
        centered = input - mean
        var = (centered * centered).mean(dim=dims, keepdim=True)  # biased
        out = _scale_and_shift(centered / (var + eps).sqrt(), weight, bias, mean.shape)
        mean, var = mean.data, var.data
    with autodiff.no_grad():
        if running_mean is not None:
            running_mean.mul_(1 - momentum).add_(momentum * mean.reshape(-1))
        if running_var is not None:
            unbiased = var.reshape(-1) * (count / (count - 1))
            running_var.mul_(1 - momentum).add_(momentum * unbiased)
    return out


def _scale_and_shift(normalised, weight, bias, shape):
    out = normalised
    if weight is not None:
        out = out * weight.reshape(shape)
    if bias is not None:
        out = out + bias.reshape(shape)
    return out


def _fused_batch_norm(input, weight, bias) -> bool:
    """Whether batch_norm trains with its fused primitive (``BatchNorm``): float32 or
    float64, the weight and bias (when given) of the same dtype."""
    dtype = input.dtype
    return (dtype == np.float32 or dtype == np.float64) and all(
        p is None or (isinstance(p, Tensor) and p.dtype == dtype) for p in (weight, bias)
    )


# -- losses -------------------------------------------------------------------------


def _reduce(loss, reduction, op):
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    if reduction == "none":
        return loss
    raise ValueError(
        f"{op}: {reduction!r} is not a valid value for reduction ('mean', 'sum' or 'none')"
    )


def _legacy_reduction(size_average, reduce, reduction):
    if size_average is None and reduce is None:
        return reduction
    size_average = True if size_average is None else size_average
    reduce = True if reduce is None else reduce
    if not reduce:
        return "none"
    return "mean" if size_average else "sum"


def _check_same_shape(input, target, op, stacklevel=3):
    if input.shape != target.shape:
        warnings.warn(
            f"{op}: using a target size ({target.shape}) that is different to the input size "
            f"({input.shape}). This will likely lead to incorrect results due to broadcasting. "
            "Please ensure they have the same size.",
            UserWarning,
            stacklevel=stacklevel,
        )
        try:
            np.broadcast_shapes(input.shape, target.shape)
        except ValueError:
            raise RuntimeError(
                f"{op}: the input of shape {input.shape} and the target of shape "
                f"{target.shape} do not broadcast"
            ) from None


@_lecture("mse_loss", ("input", "target", "weight"))
def mse_loss(
    input, target, size_average=None, reduce=None, reduction="mean", weight=None
) -> Tensor:
    """mean((x - y)^2)        d/dx = 2 (x - y) / n

    With ``weight`` w (the input's shape): w (x - y)^2, whose mean is
    sum(w (x - y)^2) / sum(w), as PyTorch computes it."""
    input, target = _tensor(input), _tensor(target)
    _check_same_shape(input, target, "mse_loss", stacklevel=4)  # past the region's frame
    diff = input - target
    reduction = _legacy_reduction(size_average, reduce, reduction)
    if weight is not None:
        return _weighted(diff * diff, input, weight, reduction, "mse_loss")
    return _reduce(diff * diff, reduction, "mse_loss")


def l1_loss(input, target, size_average=None, reduce=None, reduction="mean", weight=None) -> Tensor:
    """mean(|x - y|)        d/dx = sign(x - y) / n

    With ``weight`` w (the input's shape): w |x - y|, whose mean is
    sum(w |x - y|) / sum(w), as PyTorch computes it."""
    input, target = _tensor(input), _tensor(target)
    _check_same_shape(input, target, "l1_loss")
    loss = (input - target).abs()
    reduction = _legacy_reduction(size_average, reduce, reduction)
    if weight is not None:
        return _weighted(loss, input, weight, reduction, "l1_loss")
    return _reduce(loss, reduction, "l1_loss")


def _weighted(loss, input, weight, reduction, op):
    """PyTorch's weighted mse/l1: w * loss, whose mean is sum(w * loss) / sum(w)."""
    weight = _tensor(weight)
    if weight.shape != input.shape:
        raise ValueError(
            f"{op}: weights of shape {weight.shape} and input of shape {input.shape} "
            "must have the same size"
        )
    loss = loss * weight
    if reduction == "mean":
        return loss.sum() / weight.sum()
    return _reduce(loss, reduction, op)


def _check_class_target(input, target, op, class_dim):
    """Validate class-index targets: integer dtype, shape (N, d1, ...), values in range."""
    if target.dtype.kind not in "iu":
        raise RuntimeError(
            f"{op}: expected class-index targets of an integer dtype (long), got dtype "
            f"{target.dtype} with shape {target.shape}; class-probability targets must have "
            f"the input's shape {input.shape}"
        )
    expected = input.shape[:class_dim] + input.shape[class_dim + 1 :]
    if target.shape != expected:
        raise RuntimeError(
            f"{op}: expected target of shape {expected} for input of shape {input.shape}, "
            f"got target of shape {target.shape}"
        )


def _check_target_range(target, n_classes, ignore_index, op) -> bool:
    """Raise for a class index outside [0, C) (``ignore_index`` excepted); True if any is ignored."""
    data = target.data
    if not data.size:
        return False
    if data.min() >= 0 and data.max() < n_classes:  # the usual case: two reductions, no masks
        return 0 <= ignore_index < n_classes and bool(np.any(data == ignore_index))
    ignored = data == ignore_index
    values = data[~ignored]
    if values.size and (values.min() < 0 or values.max() >= n_classes):
        bad = values.min() if values.min() < 0 else values.max()
        raise IndexError(
            f"{op}: Target {bad} is out of bounds: class indices must be in [0, {n_classes}) "
            f"(input has {n_classes} classes)"
        )
    return bool(ignored.any())


def _moved_class_last(x, class_dim):
    """(N, C, d1, ...) -> (N, d1, ..., C) so that the classes are the last dim."""
    if class_dim == x.ndim - 1:
        return x
    order = [d for d in range(x.ndim) if d != class_dim] + [class_dim]
    return x.permute(*order)


@_lecture("nll_loss", ("input", "target", "weight"))
def nll_loss(
    input, target, weight=None, size_average=None, ignore_index=-100, reduce=None, reduction="mean"
) -> Tensor:
    """loss_i = -w[y_i] * input[i, y_i]; the mean divides by sum_i w[y_i] (ignored targets excluded).

    ``input`` holds log-probabilities of shape (C), (N, C) or (N, C, d1, ...),
    ``target`` class indices of shape (), (N) or (N, d1, ...).  Composed: a gather of
    each row's target, -picked * w, sums and a division.  Rows (N, C) of float32 or
    float64 run the same arrays as one primitive, ``NllLoss`` (autodiff/ops/fused.py).
    """
    input, target = _tensor(input), _tensor(target)
    reduction = _legacy_reduction(size_average, reduce, reduction)
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"nll_loss: {reduction!r} is not a valid value for reduction")
    if input.ndim == 0:
        raise ValueError(
            "nll_loss: expected input of 1 or more dimensions (C), (N, C), ..., got a scalar"
        )
    class_dim = 0 if input.ndim == 1 else 1
    _check_class_target(input, target, "nll_loss", class_dim)
    n_classes = input.shape[class_dim]
    _check_target_range(target, n_classes, ignore_index, "nll_loss")
    if weight is not None and weight.shape != (n_classes,):
        raise RuntimeError(
            f"nll_loss: weight tensor should be defined either for all {n_classes} classes "
            f"or no classes but got weight tensor of shape: {weight.shape}"
        )
    ignored = target.data == ignore_index
    safe = np.where(ignored, 0, target.data).astype(np.int64)
    keep = (~ignored).astype(input.dtype)
    w = keep if weight is None else weight.detach().data[safe] * keep
    w = np.asarray(w, dtype=input.dtype)
    if _fused_nll_loss(input, w, reduction):
        return NllLoss.apply(input, safe, w, reduction)
    logp = _moved_class_last(input, class_dim)  # (N, d1, ..., C)
    picked = logp.gather(-1, constant(safe[..., None])).squeeze(-1)  # (N, d1, ...)
    w = constant(w)
    loss = -picked * w
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    if not w.data.sum():
        # Every target ignored (or weighted 0): the mean is 0 / 0 = nan, as PyTorch, but the
        # gradient is 0 at each ignored target (PyTorch skips them, no 0 / 0 there) and
        # w / 0 at the others.
        with np.errstate(invalid="ignore", divide="ignore"):
            share = np.where(ignored, 0, w.data / w.data.sum()).astype(input.dtype)
        return (-picked * constant(share)).sum() + math.nan
    return loss.sum() / w.sum()


def _fused_nll_loss(input, weights, reduction) -> bool:
    """Whether nll_loss runs as its fused primitive (``NllLoss``): float32 or float64
    log-probabilities (N, C) with N > 0, and for a mean, kept rows whose weights do not sum
    to 0 (the composed form gives PyTorch's NaN and gradient there)."""
    return (
        input.ndim == 2
        and input.shape[0] > 0
        and input.dtype in _FUSED_DTYPES
        and (reduction != "mean" or bool(weights.sum()))
    )


@_lecture("cross_entropy", ("input", "target", "weight"))
def cross_entropy(
    input,
    target,
    weight=None,
    size_average=None,
    ignore_index=-100,
    reduce=None,
    reduction="mean",
    label_smoothing=0.0,
) -> Tensor:
    """Cross-entropy of logits against class indices or class probabilities.

    For class indices y: loss_i = -log softmax(x_i)[y_i] = logsumexp(x_i) - x_{i, y_i},
    averaged with class weights as ``nll_loss``.  For probabilities p (the input's
    shape): loss_i = -sum_c w_c p_ic log softmax(x_i)_c, averaged over samples.
    With label smoothing eps the target mixes with the uniform distribution:
    (1 - eps) onehot + eps / C.  The gradient w.r.t. the logits is softmax - target.

    Example::

        >>> F.cross_entropy(autodiff.tensor([[2.0, 1.0, 0.1]]), autodiff.tensor([0]))
        tensor(0.4170)
    """
    input, target = _tensor(input), _tensor(target)
    reduction = _legacy_reduction(size_average, reduce, reduction)
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"cross_entropy: {reduction!r} is not a valid value for reduction")
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(
            f"cross_entropy: label_smoothing must be between 0.0 and 1.0. Got: {label_smoothing}"
        )
    if input.ndim == 0:
        raise ValueError(
            "cross_entropy: expected input of 1 or more dimensions (C), (N, C), ..., got a scalar"
        )
    if input.dtype.kind != "f":
        raise RuntimeError(
            f"cross_entropy: expected floating point logits, got dtype {input.dtype}"
        )
    class_dim = 0 if input.ndim == 1 else 1
    n_classes = input.shape[class_dim]
    if weight is not None and weight.shape != (n_classes,):
        raise RuntimeError(
            f"cross_entropy: weight tensor should be defined either for all {n_classes} "
            f"classes or no classes but got weight tensor of shape: {weight.shape}"
        )
    w_shape = [1] * input.ndim
    w_shape[class_dim] = n_classes
    if target.dtype.kind == "f":  # class probabilities
        if target.shape != input.shape:
            expected = input.shape[:class_dim] + input.shape[class_dim + 1 :]
            raise RuntimeError(
                f"cross_entropy: got a target of dtype {target.dtype} and shape {target.shape} "
                f"for input of shape {input.shape}: class-index targets need an integer dtype "
                f"(long) and shape {expected}; class-probability targets need the input's "
                f"shape {input.shape}"
            )
        if ignore_index != -100:
            raise RuntimeError(
                f"cross_entropy: ignore_index ({ignore_index}) is not supported for "
                f"class-probability targets (dtype {target.dtype}); it applies to class indices"
            )
        if label_smoothing > 0:
            target = target * (1 - label_smoothing) + label_smoothing / n_classes
        terms = log_softmax(input, class_dim) * target  # (N, C, d1, ...)
        if weight is not None:
            terms = terms * weight.reshape(w_shape)
        loss = -terms.sum(dim=class_dim)  # (N, d1, ...)
        if reduction == "mean":
            return loss.sum() / (input.numel() // n_classes) if input.numel() else loss.sum() / 0.0
        return _reduce(loss, reduction, "cross_entropy")
    _check_class_target(input, target, "cross_entropy", class_dim)
    some_ignored = _check_target_range(target, n_classes, ignore_index, "cross_entropy")
    if _fused_cross_entropy(input, target, weight, ignore_index, some_ignored, reduction):
        if weight is None and label_smoothing == 0 and not some_ignored:  # the common case
            return CrossEntropy.apply(input, target.data, reduction)
        return CrossEntropy.apply(
            input,
            target.data,
            reduction,
            None if weight is None else weight.data,
            ignore_index if some_ignored else None,
            label_smoothing,
        )
    logp = log_softmax(input, class_dim)  # (N, C, d1, ...)
    nll = nll_loss(logp, target, weight, ignore_index=ignore_index, reduction=reduction)
    if label_smoothing == 0:
        return nll
    ignored = target.data == ignore_index
    terms = logp if weight is None else logp * weight.reshape(w_shape)
    smooth = -terms.sum(dim=class_dim)  # (N, d1, ...)
    smooth = smooth * constant((~ignored).astype(input.dtype))
    if reduction == "mean":
        if weight is None:
            total = float((~ignored).sum())
        else:
            total = float(weight.detach().data[target.data[~ignored].astype(np.int64)].sum())
        # every target ignored: the nll part is already nan, and the gradient stays 0
        smooth = smooth.sum() / total if total else smooth.sum()
    elif reduction == "sum":
        smooth = smooth.sum()
    return (1 - label_smoothing) * nll + smooth * (label_smoothing / n_classes)


def _fused_cross_entropy(input, target, weight, ignore_index, some_ignored, reduction) -> bool:
    """Whether cross_entropy runs as its fused primitive (``CrossEntropy``): logits (N, C)
    with N > 0, and class weights (if any) of the logits' dtype and needing no gradient.
    A mean over rows whose weights sum to 0 (all ignored) is left to the composed form,
    which gives PyTorch's NaN and gradient there."""
    if input.ndim != 2 or input.shape[0] == 0:
        return False
    if weight is not None and (
        not isinstance(weight, Tensor) or weight.dtype != input.dtype or weight.requires_grad
    ):
        return False
    if reduction == "mean" and (weight is not None or some_ignored):
        kept = target.data != ignore_index
        picked = kept.sum() if weight is None else weight.data[target.data[kept]].sum()
        return bool(picked)
    return True


def binary_cross_entropy(
    input, target, weight=None, size_average=None, reduce=None, reduction="mean"
) -> Tensor:
    """loss = -(y log x + (1 - y) log(1 - x)), with each log clamped at -100 as PyTorch does."""
    input, target = _tensor(input), _tensor(target)
    if input.shape != target.shape:
        raise ValueError(
            f"binary_cross_entropy: using a target size ({target.shape}) that is different to "
            f"the input size ({input.shape}) is deprecated. Please ensure they have the same size."
        )
    if input.numel() and (input.data.min() < 0 or input.data.max() > 1):
        raise RuntimeError(
            "binary_cross_entropy: all elements of input should be between 0 and 1 "
            "(probabilities; use binary_cross_entropy_with_logits for logits)"
        )
    loss = BinaryCrossEntropy.apply(input, target)
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, _legacy_reduction(size_average, reduce, reduction), "binary_cross_entropy")


def binary_cross_entropy_with_logits(
    input, target, weight=None, size_average=None, reduce=None, reduction="mean", pos_weight=None
) -> Tensor:
    """loss = (1 - y) x + (1 + (pw - 1) y) softplus(-x), with softplus(z) = log(1 + exp(z))
    computed stably for any |x|.  d/dx = sigmoid(x) - y (when pos_weight is 1).
    """
    input, target = _tensor(input), _tensor(target)
    if input.shape != target.shape:
        raise ValueError(
            f"binary_cross_entropy_with_logits: target size ({target.shape}) must be the same "
            f"as input size ({input.shape})"
        )
    softplus_neg = Softplus.apply(-input)
    if pos_weight is not None:
        log_weight = (pos_weight - 1) * target + 1
        loss = (1 - target) * input + log_weight * softplus_neg
    else:
        loss = (1 - target) * input + softplus_neg
    if weight is not None:
        loss = loss * weight
    return _reduce(
        loss, _legacy_reduction(size_average, reduce, reduction), "binary_cross_entropy_with_logits"
    )
