"""Reductions: sum, max/min, gather, prod, cumulative sums and products, and the ones
composed from them."""

from __future__ import annotations

import builtins
import collections
import math

import numpy as np

from ..function import Function, ShapeError, recorded_backward, unrecorded
from ..grad_mode import modes
from ..region import region
from ..tensor import Tensor
from .shape import GetItem, cat, normalize_dim, read_dim, stack


def normalize_dims(dim, ndim: int, op: str):
    """Turn ``dim`` (None, an int or a sequence) into a sorted tuple of axes, or None.

    For the ops whose PyTorch ``dim`` is a list of ints (sum, mean, var, amax,
    logsumexp): ``dim`` and each listed dim may be a tensor of one integer (see
    ``read_dim``).  Ops that take one int use ``one_dim``.
    """
    if dim is None:
        return None
    if isinstance(dim, (int, np.integer, Tensor)):  # a tensor is one dim, not a list
        dims = (dim,)
    else:
        try:
            dims = tuple(dim)
        except TypeError:
            raise TypeError(f"{op}: dim must be an int or a tuple of ints, got {dim!r}") from None
    normalized = []
    for d in dims:
        if type(d) is not int:  # a Python int, the usual case, skips the reading
            d = read_dim(d, op, listed=True)
        normalized.append(normalize_dim(d, ndim, op))
    if len(set(normalized)) != len(normalized):  # (0, -1) of a 0-d tensor too, as PyTorch
        raise ShapeError(f"{op}: dim {dims} names a dimension more than once")
    if ndim == 0:
        return ()
    return tuple(sorted(normalized))


def one_dim(dim, ndim: int, op: str):
    """The one int ``dim`` of an op that takes one (PyTorch's ``int dim``: prod, argmax,
    max, softmax, gather, ...) as the tuple of axes a reduction takes; () for a 0-d tensor."""
    d = normalize_dim(dim, ndim, op)
    return (d,) if ndim else ()


def drop_dims(kept, dims):
    """Remove the size-1 reduced dims of a ``keepdim=True`` result (all when None)."""
    return kept.reshape(()) if dims is None else np.squeeze(kept, axis=dims)


def kept_shape(shape, dims):
    """The shape a reduction over ``dims`` has with ``keepdim=True``."""
    if dims is None:
        return (1,) * len(shape)
    return tuple(1 if i in dims else s for i, s in enumerate(shape))


_LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


def _sum(x, dims, keepdim):
    """``np.sum(x, axis=dims, keepdims=keepdim)``, through einsum for a bias's gradient.

    Summing a row-major float array over its first and last dims but not all of
    them (a convolution's bias gradient: (N, C, H, W) -> (C,)), NumPy's sum
    strides through memory; einsum's loop adds it up in order, 3x faster and
    no less accurate: 44 against 142 us for 64x16x28x28 float32, 31 against
    103 us for 64x32x14x14, largest error against a float64 sum 7.6e-5
    against 1.4e-4 (one thread, medians).  Other reductions are NumPy's.
    """
    if (
        dims is not None
        and 1 < len(dims) < x.ndim
        and dims[0] == 0
        and dims[-1] == x.ndim - 1
        and (x.dtype == np.float32 or x.dtype == np.float64)
        and x.flags.c_contiguous
    ):
        subscripts = _LETTERS[: x.ndim]
        kept = "".join(letter for i, letter in enumerate(subscripts) if i not in dims)
        total = np.einsum(f"{subscripts}->{kept}", x)
        return total.reshape(kept_shape(x.shape, dims)) if keepdim else total
    return np.sum(x, axis=dims, keepdims=keepdim)


class Sum(Function):
    """y = sum_i x_i        dL/dx_i = dL/dy  (broadcast back over the summed dims)"""

    @staticmethod
    def forward(ctx, x, dims, keepdim):
        ctx.input_shape = x.shape
        ctx.kept = kept_shape(x.shape, dims)
        return _sum(x, dims, keepdim)

    @staticmethod
    def backward(ctx, grad):
        if recorded_backward(grad):  # create_graph: Reshape, Expand
            return grad.reshape(ctx.kept).expand(ctx.input_shape), None, None
        # the same view of g's array (nothing is recorded): one step instead of two ops
        spread = np.broadcast_to(np.reshape(grad.data, ctx.kept), ctx.input_shape)
        return unrecorded(spread), None, None


class Amax(Function):
    """y = max_i x_i        dL/dx_i = dL/dy * [x_i = y] / #ties

    ``nan_wins=True`` (``x.max()``, PyTorch's evenly_distribute rule): when the
    maximum is NaN, the NaNs share the gradient.  ``amax`` leaves that case NaN,
    as PyTorch's amax does.
    """

    op_name = "max"
    numpy_reduction = staticmethod(np.max)

    @staticmethod
    def forward(ctx, x, dims, keepdim, nan_wins=False):
        _check_reducible(x, dims, ctx.function.op_name)
        y = ctx.function.numpy_reduction(x, axis=dims, keepdims=True)
        ctx.save_for_backward(_extreme_mask(x, y, nan_wins))
        ctx.kept = y.shape
        return y if keepdim else drop_dims(y, dims)

    @staticmethod
    def backward(ctx, grad):
        return _share_among_ties(ctx, grad)


class Amin(Amax):
    """y = min_i x_i        dL/dx_i = dL/dy * [x_i = y] / #ties        (NaN: as Amax)"""

    op_name = "min"
    numpy_reduction = staticmethod(np.min)


def _check_reducible(x, dims, op):
    """PyTorch's errors for a maximum over nothing (a zero-element tensor may still
    be reduced over a dim that has elements: the result is empty too)."""
    if dims is None and x.size == 0:
        raise RuntimeError(
            f"{op}(): expected a reduction dim to be specified for a tensor with no elements "
            f"(shape {x.shape}); specify the reduction dim with the 'dim' argument"
        )
    for d in dims or ():
        if x.shape[d] == 0:
            raise IndexError(
                f"{op}(): expected reduction dim {d} to have non-zero size (shape {x.shape})"
            )


def _extreme_mask(x, y, nan_wins):
    mask = x == y
    if nan_wins and x.dtype.kind == "f":
        mask |= np.isnan(x) & np.isnan(y)
    return mask


def _share_among_ties(ctx, grad):
    (is_extreme,) = ctx.saved_tensors
    mask = is_extreme.data
    count = np.sum(mask, axis=_reduced_axes(ctx.kept, mask.shape), keepdims=True)
    with np.errstate(invalid="ignore"):  # no element equals a NaN maximum: 0/0, as PyTorch
        share = Tensor._make((mask / count).astype(grad.dtype), None, None)
    return grad.reshape(ctx.kept) * share, None, None, None


def _reduced_axes(kept, shape):
    return tuple(i for i, (k, s) in enumerate(zip(kept, shape, strict=True)) if k == 1 and s != 1)


class ScatterAdd(Function):
    """y = zeros(shape); y[..index..] += g along dim        dL/dg = gather of dL/dy"""

    @staticmethod
    def forward(ctx, g, dim, index, shape):
        ctx.dim = dim
        ctx.save_for_backward(index)
        out = np.zeros(shape, dtype=g.dtype)
        if index.shape[dim] == 1:
            # One index per slice (max along a dim, pooling): no repeats, so a
            # plain put is exact and much faster than np.add.at.
            np.put_along_axis(out, index, g, axis=dim)
        else:
            grids = list(np.ogrid[tuple(slice(0, s) for s in index.shape)])
            grids[dim] = index
            np.add.at(out, tuple(grids), g)
        return out

    @staticmethod
    def backward(ctx, grad):
        (index,) = ctx.saved_tensors
        return gather(grad, ctx.dim, index), None, None, None


def gather(x: Tensor, dim: int, index) -> Tensor:
    """``out[i][j] = x[i][index[i][j]]`` for dim=1 (PyTorch's ``torch.gather``)."""
    index = index.data if isinstance(index, Tensor) else np.asarray(index)
    if not np.issubdtype(index.dtype, np.integer):
        raise TypeError(f"gather: index must be an integer tensor, got dtype {index.dtype}")
    dim = normalize_dim(dim, x.ndim, "gather")
    if index.ndim != x.ndim:
        raise ShapeError(
            f"gather: index has {index.ndim} dims but the input of shape {x.shape} has {x.ndim}"
        )
    if x.ndim == 0:  # a 0-d tensor gathers as a 1-element vector (index 0 only), as PyTorch
        return Gather.apply(x.reshape(1), 0, index.reshape(1)).reshape(())
    return Gather.apply(x, dim, index)


class Gather(Function):
    """y = x gathered along dim at index        dL/dx = scatter-add of dL/dy at index"""

    op_name = "gather"

    @staticmethod
    def forward(ctx, x, dim, index):
        ctx.input_shape = x.shape
        ctx.dim = dim
        ctx.save_for_backward(index)
        return np.take_along_axis(x, index, axis=dim)

    @staticmethod
    def backward(ctx, grad):
        (index,) = ctx.saved_tensors
        return ScatterAdd.apply(grad, ctx.dim, index.data, ctx.input_shape), None, None


class Prod(Function):
    """y = prod_i x_i        dL/dx_i = dL/dy * prod_{j != i} x_j

    PyTorch's prod_backward: dL/dy * (y / x_i) without zeros; with a zero, the
    products of the others from exclusive cumulative products (prod_safe_zeros_backward,
    ``_products_of_the_others``), recorded with ``create_graph`` so that second
    derivatives go through cumprod's own derivative, as in PyTorch; over all
    elements with two or more zeros and no ``create_graph``, 0 everywhere
    (PyTorch's shortcut, also when another element is inf or NaN); a 0-d x, or a
    single element per product, passes dL/dy through.
    """

    @staticmethod
    def forward(ctx, x, dims, keepdim):
        y = np.prod(x, axis=dims, keepdims=True)
        ctx.kept = y.shape
        ctx.dims = dims
        out = y if keepdim else drop_dims(y, dims)
        ctx.save_for_backward(x, out)  # the output itself, so create_graph sees its graph
        return out

    @staticmethod
    def backward(ctx, grad):
        x, y = ctx.saved_tensors
        y = y.reshape(ctx.kept)
        grad = grad.reshape(ctx.kept)
        if x.ndim == 0:  # y = x (not y / x, NaN at inf)
            return grad.reshape(()), None, None
        zeros = np.count_nonzero(x.data == 0)
        if not zeros:  # PyTorch's test: y / x (even when y is NaN or underflowed)
            return grad * (y / x), None, None
        if ctx.dims is None and zeros > 1 and not modes.grad_enabled:
            return Tensor._make(np.zeros(x.shape, x.dtype), None, None), None, None
        if ctx.kept == x.shape:  # one element per product: nothing else to multiply
            return grad, None, None
        return grad * _products_of_the_others(x, ctx.dims), None, None


def _products_of_the_others(x: Tensor, dims) -> Tensor:
    """prod_{j != i} x_j over ``dims`` for every i, right with zeros (PyTorch's
    prod_safe_zeros_backward): the exclusive cumulative product from the left
    times the one from the right, with Tensor ops (a graph under ``create_graph``)::

        x                         [a,      b,      c    ]
        from the left             [1,      a,      a * b]
        from the right            [c * b,  c,      1    ]
        product                   [b * c,  a * c,  a * b]

    Over all elements (``dims`` None) x is flattened first, as PyTorch does; otherwise
    ``dims`` is one dim (``prod`` takes no more, as PyTorch's).
    """
    if dims is None:
        return _exclusive_products(x.reshape(-1), 0).reshape(x.shape)
    (dim,) = dims
    return _exclusive_products(x, dim)


def _exclusive_products(x: Tensor, dim: int) -> Tensor:
    """The products of the elements before and after each one along ``dim`` (size >= 2)."""
    n = x.shape[dim]
    ones = _ones_along(x, dim)
    left = Cumprod.apply(cat([ones, _narrow(x, dim, 0, n - 1)], dim), dim)
    right = Cumprod.apply(cat([ones, _flip(_narrow(x, dim, 1, n - 1), dim)], dim), dim)
    return left * _flip(right, dim)


def _ones_along(x: Tensor, dim: int) -> Tensor:
    """A constant of ones shaped like ``x`` with size 1 in ``dim``."""
    shape = x.shape[:dim] + (1,) + x.shape[dim + 1 :]
    return Tensor._make(np.ones(shape, x.dtype), None, None)


def _narrow(x: Tensor, dim: int, start: int, length: int) -> Tensor:
    """``x`` cut to ``start:start + length`` along ``dim`` (PyTorch's narrow)."""
    return GetItem.apply(x, (slice(None),) * dim + (slice(start, start + length),))


def _flip(x: Tensor, dim: int) -> Tensor:
    """``x`` reversed along ``dim`` (PyTorch's flip), a view."""
    return GetItem.apply(x, (slice(None),) * dim + (slice(None, None, -1),))


# -- cumulative sums and products ------------------------------------------------

# PyTorch's CPU kernels accumulate float32 in double and float16 in float, rounding
# each output; integers and bools accumulate as int64.
_ACCUMULATOR = {np.dtype(np.float32): np.float64, np.dtype(np.float16): np.float32}


def _accumulate(scan, x: np.ndarray, axis: int) -> np.ndarray:
    """``np.cumsum`` / ``np.cumprod`` of ``x`` along ``axis`` as PyTorch computes it:
    element after element, in PyTorch's accumulator type."""
    if x.ndim == 0:
        return _accumulate(scan, x.reshape(1), 0).reshape(())
    if x.dtype.kind in "biu":
        return scan(x, axis=axis, dtype=np.int64)
    accumulator = _ACCUMULATOR.get(x.dtype)
    if accumulator is None:
        return scan(x, axis=axis)
    return scan(x, axis=axis, dtype=accumulator).astype(x.dtype)


class Cumsum(Function):
    """y_j = sum_{i <= j} x_i along dim        dL/dx_k = sum_{j >= k} dL/dy_j"""

    @staticmethod
    def forward(ctx, x, dim):
        ctx.dim = dim
        return _accumulate(np.cumsum, x, dim)

    @staticmethod
    def backward(ctx, grad):
        if grad.numel() <= 1 or grad.shape[ctx.dim] == 1:
            return grad, None
        return _reversed_cumsum(grad, ctx.dim), None


def _reversed_cumsum(x: Tensor, dim: int) -> Tensor:
    """sum_{j >= k} x_j along ``dim``: the cumulative sum from the end."""
    return _flip(Cumsum.apply(_flip(x, dim), dim), dim)


class Cumprod(Function):
    """y_j = prod_{i <= j} x_i along dim        dL/dx_k = sum_{j >= k} dL/dy_j * prod_{i <= j, i != k} x_i

    PyTorch's cumprod_backward.  Without zeros, (sum_{j >= k} dL/dy_j y_j) / x_k.  With
    zeros, the products of the others themselves: in O(n) on arrays
    (``_cumprod_grad_with_zeros``), or, when the backward is recorded
    (``create_graph``), in O(n^2) with Tensor ops, whose own derivative is right.
    """

    @staticmethod
    def forward(ctx, x, dim):
        ctx.dim = dim
        y = _accumulate(np.cumprod, x, dim)
        ctx.save_for_backward(x, y)
        return y

    @staticmethod
    def backward(ctx, grad):
        x, y = ctx.saved_tensors
        dim = ctx.dim
        if x.numel() <= 1 or x.shape[dim] == 1:
            return grad, None
        if not np.any(x.data == 0):
            return _reversed_cumsum(y * grad, dim) / x, None
        if not modes.grad_enabled:
            others = _cumprod_grad_with_zeros(grad.data, x.data, y.data, dim)
            return Tensor._make(others, None, None), None
        return _differentiable_cumprod_grad(grad, x, dim), None


def _cumprod_grad_with_zeros(g, x, y, dim):
    """dL/dx of y = cumprod(x) along ``dim`` with zeros, in O(n), on arrays (PyTorch's
    masks).  In a slice whose first zero is at z1 and second at z2 (or the end):

    * k < z1: as without zeros, (sum_{k <= j < z1} dL/dy_j y_j) / x_k;
    * k = z1: y_{z1 - 1} * sum_{z1 <= j < z2} dL/dy_j prod(x[z1 + 1 : j + 1]);
    * k > z1: 0 (every product for j >= k holds x_{z1} = 0).
    """
    zeros_so_far = np.cumsum(x == 0, axis=dim)
    before = zeros_so_far == 0
    with np.errstate(all="ignore"):  # 0 / 0 where not before: dropped; inf, NaN as PyTorch's
        w = np.where(before, y * g, 0)
        reversed_sums = np.flip(_accumulate(np.cumsum, np.flip(w, dim), dim), dim)
        out = np.where(before, reversed_sums / x, 0)
    after_first = zeros_so_far == 1
    first = np.argmax(after_first, axis=dim, keepdims=True)  # 0 where a slice has no zero
    at_first = np.zeros_like(after_first)
    np.put_along_axis(at_first, first, True, axis=dim)
    at_first &= after_first
    between = after_first & ~at_first
    y_before = np.take_along_axis(y, np.maximum(first - 1, 0), axis=dim)
    y_before = np.where(first == 0, 1, y_before)
    with np.errstate(all="ignore"):
        products = _accumulate(np.cumprod, np.where(between, x, 1), dim)
        sums = np.sum(products * np.where(after_first, g, 0), axis=dim, keepdims=True)
        at_first_value = sums * y_before
    return np.where(at_first, at_first_value, out).astype(g.dtype, copy=False)


def _differentiable_cumprod_grad(grad: Tensor, x: Tensor, dim: int) -> Tensor:
    """dL/dx_k = sum_{j >= k} dL/dy_j * prod_{i <= j, i != k} x_i, one k at a time, with
    Tensor ops (PyTorch's O(n^2) form for create_graph): the products for k are
    prod(x[:k]) times cumprod(x[k + 1:]), with 1 for j = k."""
    n = x.shape[dim]
    slices = []
    for k in range(n):
        if k == 0:
            omitted = cat([_ones_along(x, dim), Cumprod.apply(_narrow(x, dim, 1, n - 1), dim)], dim)
        elif k == n - 1:
            omitted = Prod.apply(_narrow(x, dim, 0, k), (dim,), True)
        else:
            until_k = Prod.apply(_narrow(x, dim, 0, k), (dim,), True)
            from_next = Cumprod.apply(_narrow(x, dim, k + 1, n - k - 1), dim)
            omitted = cat([until_k, until_k.expand(from_next.shape) * from_next], dim)
        slices.append(Sum.apply(_narrow(grad, dim, k, n - k) * omitted, (dim,), False))
    return stack(slices, dim)


# -- composed reductions --------------------------------------------------------

MaxResult = collections.namedtuple("max", ["values", "indices"])
MinResult = collections.namedtuple("min", ["values", "indices"])


def sum(x: Tensor, dim=None, keepdim=False, dtype=None) -> Tensor:
    """Sum over ``dim`` (all elements when None or empty, as PyTorch's ``x.sum(())``)."""
    if dtype is not None:
        x = x.to(dtype)
    return Sum.apply(x, _reduced_dims(dim, x.ndim, "sum"), keepdim)


def mean(x: Tensor, dim=None, keepdim=False, dtype=None) -> Tensor:
    """mean = sum / n over ``dim``."""
    if dtype is not None:
        x = x.to(dtype)
    if not np.issubdtype(x.dtype, np.inexact):
        raise RuntimeError(
            f"mean: could not infer output dtype; input dtype must be floating point, got {x.dtype}"
        )
    dims = _reduced_dims(dim, x.ndim, "mean")
    count = x.numel() if dims is None else math.prod(x.shape[d] for d in dims)
    return Sum.apply(x, dims, keepdim) / count


def var(x: Tensor, dim=None, unbiased=None, keepdim=False, *, correction=None) -> Tensor:
    """var = sum (x - mean)^2 / (n - correction); correction=1 (Bessel) by default."""
    if isinstance(dim, bool):  # PyTorch's other var: x.var(False) is x.var(unbiased=False)
        if unbiased is not None or keepdim or correction is not None:
            raise TypeError(
                f"var: dim must be an int or a tuple of ints, got {dim!r} (alone, a bool is "
                "read as unbiased, as in PyTorch)"
            )
        dim, unbiased = None, dim
    if correction is None:
        correction = 1 if unbiased is None or unbiased else 0
    dims = _reduced_dims(dim, x.ndim, "var")
    count = x.numel() if dims is None else math.prod(x.shape[d] for d in dims)
    if count - correction <= 0 and (dims is None or x.ndim == 0) and x.numel():
        out = NoDegreesOfFreedom.apply(x)
        return out.reshape((1,) * x.ndim) if keepdim else out
    centered = x - mean(x, dims, keepdim=True)
    return Sum.apply(centered * centered, dims, keepdim) / builtins.max(count - correction, 0)


class NoDegreesOfFreedom(Function):
    """var over all elements with correction >= n: y = sum (x - mean)^2 / 0 (inf; NaN if constant)
    dL/dx = dL/dy * (NaN where x = mean, else inf)        (PyTorch's convention)
    """

    op_name = "var"

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        centered = x - np.mean(x)
        return np.asarray(np.sum(centered * centered) / 0.0, dtype=x.dtype)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        slope = np.where(x.data == np.mean(x.data), np.nan, np.inf).astype(grad.dtype)
        return grad * Tensor._make(slope, None, None)


def std(x: Tensor, dim=None, unbiased=None, keepdim=False, *, correction=None) -> Tensor:
    """std = sqrt(var), with slope 0 where var = 0 (PyTorch's choice).

    sqrt's slope 1 / (2 sqrt(v)) is infinite at v = 0, and a constant input (all
    x_i equal) would get 0 * inf = NaN; PyTorch's std gives it 0.
    """
    v = var(x, dim, unbiased, keepdim, correction=correction)
    zero = v.data == 0
    if not np.any(zero):
        return v.sqrt()
    from .elementwise import where

    return where(zero, 0.0, where(zero, 1.0, v).sqrt())


def _max_shift(x: Tensor, dims, finite_only: bool) -> Tensor:
    """max(x) over ``dims`` (kept), as a constant: the shift that keeps exp from overflowing.

    Zeros for an empty reduction.  ``finite_only``: an infinite maximum becomes 0
    (logsumexp of all -inf is -inf, of +inf is +inf, as PyTorch's).
    """
    if x.numel():
        shift = np.max(x.data, axis=dims, keepdims=True)
    else:
        shift = np.zeros(kept_shape(x.shape, dims), x.dtype)
    if finite_only:
        shift = np.where(np.isfinite(shift), shift, 0)
    return Tensor._make(np.asarray(shift), None, None)


def logsumexp(x: Tensor, dim, keepdim=False) -> Tensor:
    """log sum exp(x) = m + log sum exp(x - m), with m = max(x) detached for stability."""
    dims = _reduced_dims(dim, x.ndim, "logsumexp")
    shift = _max_shift(x, dims, finite_only=True)
    out = Sum.apply((x - shift).exp(), dims, True).log() + shift
    return out if keepdim else out.reshape(drop_dims(shift.data, dims).shape)


# The lecture's formula and backward rule, shown by pictures of the softmax region.
SOFTMAX_RULE = ("s = e^z / sum e^z", "dL/dz = s * (g - sum(g * s))")
LOG_SOFTMAX_RULE = ("y = z - log sum e^z", "dL/dz = g - softmax(z) sum(g)")


def softmax(x: Tensor, dim, dtype=None) -> Tensor:
    """softmax(x)_i = exp(x_i - m) / sum_j exp(x_j - m), m = max(x) (detached, for stability).

    Its Jacobian is diag(s) - s s^T.  Over a dim of size 0 the result is empty.
    """
    with region("softmax", (x,), {"dim": dim, "dtype": dtype}, *SOFTMAX_RULE) as marked:
        if dtype is not None:
            x = x.to(dtype)
        dims = _one_dim(dim, x.ndim, "softmax")
        e = (x - _max_shift(x, dims, finite_only=False)).exp()
        out = marked.output = e / Sum.apply(e, dims, True)
    return out


def log_softmax(x: Tensor, dim, dtype=None) -> Tensor:
    """log_softmax(x)_i = (x_i - m) - log sum_j exp(x_j - m), m = max(x) (detached).

    The one implementation (``Tensor.log_softmax`` and ``nn.functional.log_softmax``).
    Stable at any scale: shifting first keeps a large m out of the rounding, so
    float32 logits [1e8, 1e8, 0] give [-0.693, -0.693, -1e8].  Float32 and float64
    run as one primitive (``LogSoftmax``, the same arrays); pictures draw log_softmax.
    """
    with region("log_softmax", (x,), {"dim": dim, "dtype": dtype}, *LOG_SOFTMAX_RULE) as marked:
        if dtype is not None:
            x = x.to(dtype)
        dims = _one_dim(dim, x.ndim, "log_softmax")
        if x.dtype in _FUSED_DTYPES and x.ndim and x.numel():
            out = marked.output = LogSoftmax.apply(x, dims)
        else:
            shifted = x - _max_shift(x, dims, finite_only=False)
            out = marked.output = shifted - Sum.apply(shifted.exp(), dims, True).log()
    return out


_FUSED_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


class LogSoftmax(Function):
    """y = z - log sum e^z        dL/dz = g - softmax(z) sum(g)

    ``log_softmax``'s common case (float32 or float64, not empty) as one
    primitive: the composed form, (z - m) - log sum exp(z - m) with m = max(z)
    detached, records five nodes and runs a dozen small ops forward and
    backward, a cost per op that dominates the small batches of log_softmax +
    nll_loss (PyTorch's MNIST example): 64x10 float32, forward + backward, 126
    us composed, 73 fused, PyTorch 48 (one thread, medians).  This computes
    the composed form's own arrays in its order, so the values are its bits,
    and so is the gradient: the composed backward's g + (sum(-g) / S) e, with
    e = exp(z - m) and S = sum e kept from the forward pass as the composed
    Exp and Log keep them.  With ``create_graph`` the rule runs as recorded
    ops on the output, as PyTorch's: g + sum(-g) exp(y), differentiable
    again.  A test checks values, gradients and second derivatives against
    the composed form.
    """

    op_name = "log_softmax"

    @staticmethod
    def forward(ctx, x, dims):
        ctx.dims = dims
        shifted = np.subtract(x, np.max(x, axis=dims, keepdims=True))
        exp = np.exp(shifted)
        total = _sum(exp, dims, True)
        out = np.subtract(shifted, np.log(total))
        if ctx.needs_input_grad[0]:
            ctx.save_for_backward(out, exp, total)
        return out

    @staticmethod
    def backward(ctx, grad):
        out, exp, total = ctx.saved_tensors
        if modes.grad_enabled:  # create_graph: differentiable in g and, through y, in z
            return grad + Sum.apply(-grad, ctx.dims, True) * out.exp(), None
        g = grad.data
        share = np.divide(_sum(np.negative(g), ctx.dims, True), total.data)  # sum(-g) / S
        return Tensor._make(np.add(g, np.multiply(share, exp.data)), None, None), None


def _one_dim(dim, ndim, op):
    if dim is None or isinstance(dim, (tuple, list)):
        raise TypeError(f"{op}: dim must be one int, got {dim!r}")
    return one_dim(dim, ndim, op)


def _extreme(x, dim, keepdim, reducer, arg, op, result_type):
    if dim is None:
        if keepdim is not None:  # PyTorch's x.max() has no keepdim: it is for a dim
            raise TypeError(f"{op}: keepdim={keepdim!r} needs a dim (x.{op}(dim, keepdim))")
        return reducer.apply(x, None, False, True)
    keepdim = bool(keepdim)
    if isinstance(dim, Tensor) and not (dim.ndim == 0 and dim.dtype.kind in "iu"):
        raise TypeError(
            f"{op}: dim must be an int or a 0-d integer tensor, got a tensor of shape {dim.shape} "
            f"and dtype {dim.dtype}; use autodiff.{'maximum' if op == 'max' else 'minimum'}(a, b) "
            "for two tensors"
        )
    axis = normalize_dim(dim, x.ndim, op)
    if x.ndim and x.shape[axis] == 0:
        raise IndexError(
            f"{op}(): expected reduction dim {dim} to have non-zero size (shape {x.shape})"
        )
    if x.ndim == 0:
        return result_type(x.clone(), Tensor._make(np.zeros((), np.int64), None, None))
    indices = arg(x.data, axis=axis, keepdims=True)
    values = Gather.apply(x, axis, indices)
    if not keepdim:
        values = values.squeeze(axis)
        indices = indices.squeeze(axis)
    return result_type(values, Tensor._make(indices.astype(np.int64), None, None))


def max(x: Tensor, dim=None, keepdim=None):
    """``x.max()`` is a tensor; ``x.max(dim)`` is ``(values, indices)``, as in PyTorch."""
    return _extreme(x, dim, keepdim, Amax, np.argmax, "max", MaxResult)


def min(x: Tensor, dim=None, keepdim=None):
    """``x.min()`` is a tensor; ``x.min(dim)`` is ``(values, indices)``, as in PyTorch."""
    return _extreme(x, dim, keepdim, Amin, np.argmin, "min", MinResult)


def amax(x: Tensor, dim=(), keepdim=False) -> Tensor:
    """Maximum over ``dim`` (all dims when empty); ties share the gradient."""
    dims = _reduced_dims(dim, x.ndim, "amax")
    return Amax.apply(x, dims, keepdim, False)


def amin(x: Tensor, dim=(), keepdim=False) -> Tensor:
    """Minimum over ``dim`` (all dims when empty); ties share the gradient."""
    dims = _reduced_dims(dim, x.ndim, "amin")
    return Amin.apply(x, dims, keepdim, False)


def _reduced_dims(dim, ndim: int, op: str):
    """``normalize_dims`` for sum, mean, var, std, amax, amin and logsumexp, where no dim
    (None, or an empty list: PyTorch's ``x.sum(())``, amax's default) reduces them all,
    as in PyTorch (NumPy's ``axis=()`` would reduce none): None then."""
    if dim is None or (isinstance(dim, (tuple, list)) and not dim):
        return None
    return normalize_dims(dim, ndim, op)


def _arg(x, dim, keepdim, fn, op):
    axis = None if dim is None else normalize_dim(dim, x.ndim, op)
    if x.numel() == 0 and (axis is None or x.shape[axis] == 0):
        raise IndexError(
            f"{op}(): expected a reduction dim of non-zero size (shape {x.shape}, dim {dim})"
        )
    if axis is None:
        out = fn(x.data.reshape(-1))
        if keepdim:
            out = np.reshape(out, (1,) * x.ndim)
    else:
        out = fn(x.data, axis=axis, keepdims=keepdim) if x.ndim else np.zeros((), np.int64)
    return Tensor._make(np.asarray(out, dtype=np.int64), None, None)


def argmax(x: Tensor, dim=None, keepdim=False) -> Tensor:
    """Index of the maximum (over the flattened tensor when ``dim`` is None)."""
    return _arg(x, dim, keepdim, np.argmax, "argmax")


def argmin(x: Tensor, dim=None, keepdim=False) -> Tensor:
    """Index of the minimum (over the flattened tensor when ``dim`` is None)."""
    return _arg(x, dim, keepdim, np.argmin, "argmin")


def prod(x: Tensor, dim=None, keepdim=False, dtype=None) -> Tensor:
    """Product over one ``dim`` (all elements when None), as PyTorch's prod::

        y = x_0 * x_1 * ... * x_{n-1}            along dim

        >>> autodiff.tensor([[1.0, 2.0], [3.0, 4.0]]).prod(1)
        tensor([ 2., 12.])

    Unlike ``sum``, PyTorch's prod takes one dim, not a tuple; so does this one, so
    that code written here runs in PyTorch. Over several dims, reduce one at a time:
    ``x.prod(1).prod(0)``.
    """
    if isinstance(dim, (tuple, list)):
        raise TypeError(f"prod: dim must be one int, got {dim!r}{_one_dim_at_a_time(dim, x.ndim)}")
    dims = None if dim is None else one_dim(dim, x.ndim, "prod")
    if dtype is not None:
        x = x.to(dtype)
    return Prod.apply(x, dims, keepdim)


def _one_dim_at_a_time(dims, ndim: int) -> str:
    """The hint for a tuple of dims given to prod: the chain of one-dim products,
    highest dim first so that the dims still to reduce keep their numbers."""
    hint = " (PyTorch's prod takes one dim, unlike sum)"
    try:
        normalized = normalize_dims(dims, ndim, "prod")
    except (TypeError, IndexError, ValueError):
        return hint
    if not normalized:
        return hint
    chain = "".join(f".prod({d})" for d in reversed(normalized))
    return f"{hint}; reduce one dim at a time: x{chain}"


def cumsum(x: Tensor, dim, dtype=None) -> Tensor:
    """Cumulative sum along ``dim``: y_j = x_0 + ... + x_j."""
    if dtype is not None:
        x = x.to(dtype)
    return Cumsum.apply(x, _scan_dim(dim, x.ndim, "cumsum"))


def cumprod(x: Tensor, dim, dtype=None) -> Tensor:
    """Cumulative product along ``dim``: y_j = x_0 * ... * x_j."""
    if dtype is not None:
        x = x.to(dtype)
    return Cumprod.apply(x, _scan_dim(dim, x.ndim, "cumprod"))


def _scan_dim(dim, ndim, op):
    if dim is None:  # PyTorch's message: a scan needs a dim
        raise TypeError(f"{op}(): argument 'dim' must be int, not NoneType")
    return normalize_dim(dim, ndim, op)  # 0 for a 0-d tensor, after checking the dim
