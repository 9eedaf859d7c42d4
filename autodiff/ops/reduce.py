"""Reductions: sum, max/min, gather, prod, and the ones composed from them."""

from __future__ import annotations

import builtins
import collections
import math

import numpy as np

from ..function import Function, ShapeError
from ..grad_mode import modes
from ..tensor import Tensor


def normalize_dims(dim, ndim: int, op: str):
    """Turn ``dim`` (None, an int or a sequence) into a sorted tuple of axes, or None."""
    if dim is None:
        return None
    dims = (dim,) if isinstance(dim, (int, np.integer)) else tuple(dim)
    rank = builtins.max(ndim, 1)
    normalized = []
    for d in dims:
        if not isinstance(d, (int, np.integer)) or isinstance(d, bool):
            raise TypeError(f"{op}: dim must be an int or a tuple of ints, got {d!r}")
        if not -rank <= d < rank:
            raise IndexError(
                f"{op}: dimension out of range (expected to be in range of "
                f"[{-rank}, {rank - 1}], but got {d}) for a tensor of {ndim} dims"
            )
        normalized.append(int(d) % rank)
    if ndim == 0:
        return ()
    if len(set(normalized)) != len(normalized):
        raise ShapeError(f"{op}: dim {dims} names a dimension more than once")
    return tuple(sorted(normalized))


def drop_dims(kept, dims):
    """Remove the size-1 reduced dims of a ``keepdim=True`` result (all when None)."""
    return kept.reshape(()) if dims is None else np.squeeze(kept, axis=dims)


def kept_shape(shape, dims):
    """The shape a reduction over ``dims`` has with ``keepdim=True``."""
    if dims is None:
        return (1,) * len(shape)
    return tuple(1 if i in dims else s for i, s in enumerate(shape))


class Sum(Function):
    """y = sum_i x_i        dL/dx_i = dL/dy  (broadcast back over the summed dims)"""

    @staticmethod
    def forward(ctx, x, dims, keepdim):
        ctx.input_shape = x.shape
        ctx.kept = kept_shape(x.shape, dims)
        return np.sum(x, axis=dims, keepdims=keepdim)

    @staticmethod
    def backward(ctx, grad):
        return grad.reshape(ctx.kept).expand(ctx.input_shape), None, None


class Amax(Function):
    """y = max_i x_i        dL/dx_i = dL/dy * [x_i = y] / #ties"""

    op_name = "max"

    @staticmethod
    def forward(ctx, x, dims, keepdim):
        if x.size == 0:
            raise RuntimeError("max: cannot reduce an empty tensor (it has no maximum)")
        y = np.max(x, axis=dims, keepdims=True)
        ctx.save_for_backward(x == y)
        ctx.kept = y.shape
        return y if keepdim else drop_dims(y, dims)

    @staticmethod
    def backward(ctx, grad):
        (is_max,) = ctx.saved_tensors
        count = np.sum(is_max.data, axis=_reduced_axes(ctx.kept, is_max.shape), keepdims=True)
        share = Tensor._make((is_max.data / count).astype(grad.dtype), None, None)
        return grad.reshape(ctx.kept) * share, None, None


class Amin(Function):
    """y = min_i x_i        dL/dx_i = dL/dy * [x_i = y] / #ties"""

    op_name = "min"

    @staticmethod
    def forward(ctx, x, dims, keepdim):
        if x.size == 0:
            raise RuntimeError("min: cannot reduce an empty tensor (it has no minimum)")
        y = np.min(x, axis=dims, keepdims=True)
        ctx.save_for_backward(x == y)
        ctx.kept = y.shape
        return y if keepdim else drop_dims(y, dims)

    @staticmethod
    def backward(ctx, grad):
        (is_min,) = ctx.saved_tensors
        count = np.sum(is_min.data, axis=_reduced_axes(ctx.kept, is_min.shape), keepdims=True)
        share = Tensor._make((is_min.data / count).astype(grad.dtype), None, None)
        return grad.reshape(ctx.kept) * share, None, None


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
    (dim,) = normalize_dims(dim, x.ndim, "gather") or (0,)
    if index.ndim != x.ndim:
        raise ShapeError(
            f"gather: index has {index.ndim} dims but the input of shape {x.shape} has {x.ndim}"
        )
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
    """y = prod_i x_i        dL/dx_i = dL/dy * prod_{j != i} x_j"""

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
        if np.all(y.data != 0):  # then no x_i is 0 either
            return grad * y / x, None, None
        # With zeros (or a product that underflowed to 0), y / x is wrong: take the
        # product of the others directly.
        if modes.grad_enabled:  # create_graph: a differentiable form (O(n^2), zeros only)
            return grad * _differentiable_product_of_others(x, ctx.dims), None, None
        # exclusive products from the left and from the right (O(n), a constant)
        others = _product_of_others(x.data, ctx.dims)
        return grad * Tensor._make(others, None, None), None, None


def _differentiable_product_of_others(x: Tensor, dims) -> Tensor:
    """prod_{j != i} x_j over ``dims`` for every i, with Tensor ops (so it has a graph).

    The reduced dims are moved last and flattened to n; row i of an (n, n) matrix is
    x with x_i replaced by 1, and the product along each row is the answer.
    """
    dims = tuple(range(x.ndim)) if dims is None else dims
    kept = [d for d in range(x.ndim) if d not in dims]
    moved = x.permute(kept + list(dims))
    lead = moved.shape[: len(kept)]
    n = math.prod(moved.shape[len(kept) :])
    rows = moved.reshape(lead + (1, n))
    from .elementwise import where

    others = Prod.apply(where(np.eye(n, dtype=bool), 1.0, rows), (len(lead) + 1,), False)
    others = others.reshape(moved.shape)
    return others.permute(tuple(np.argsort(kept + list(dims)).tolist()))


def _product_of_others(x, dims):
    moved = x.reshape(-1) if dims is None else x
    axes = (0,) if dims is None else dims
    flat = np.moveaxis(moved, axes, tuple(range(-len(axes), 0)))
    lead = flat.shape[: flat.ndim - len(axes)]
    flat = flat.reshape(lead + (-1,))
    ones = np.ones(lead + (1,), dtype=x.dtype)
    left = np.cumprod(np.concatenate([ones, flat[..., :-1]], axis=-1), axis=-1)
    right = np.cumprod(np.concatenate([ones, flat[..., :0:-1]], axis=-1), axis=-1)[..., ::-1]
    others = (left * right).reshape(np.moveaxis(moved, axes, tuple(range(-len(axes), 0))).shape)
    others = np.moveaxis(others, tuple(range(-len(axes), 0)), axes)
    return others.reshape(x.shape)


# -- composed reductions --------------------------------------------------------

MaxResult = collections.namedtuple("max", ["values", "indices"])
MinResult = collections.namedtuple("min", ["values", "indices"])


def sum(x: Tensor, dim=None, keepdim=False, dtype=None) -> Tensor:
    """Sum over ``dim`` (all elements when None)."""
    if dtype is not None:
        x = x.to(dtype)
    return Sum.apply(x, normalize_dims(dim, x.ndim, "sum"), keepdim)


def mean(x: Tensor, dim=None, keepdim=False, dtype=None) -> Tensor:
    """mean = sum / n over ``dim``."""
    if dtype is not None:
        x = x.to(dtype)
    if not np.issubdtype(x.dtype, np.inexact):
        raise RuntimeError(
            f"mean: could not infer output dtype; input dtype must be floating point, got {x.dtype}"
        )
    dims = normalize_dims(dim, x.ndim, "mean")
    count = x.numel() if dims is None else math.prod(x.shape[d] for d in dims)
    return Sum.apply(x, dims, keepdim) / count


def var(x: Tensor, dim=None, unbiased=None, keepdim=False, *, correction=None) -> Tensor:
    """var = sum (x - mean)^2 / (n - correction); correction=1 (Bessel) by default."""
    if correction is None:
        correction = 1 if unbiased is None or unbiased else 0
    dims = normalize_dims(dim, x.ndim, "var")
    count = x.numel() if dims is None else math.prod(x.shape[d] for d in dims)
    centered = x - mean(x, dims, keepdim=True)
    return Sum.apply(centered * centered, dims, keepdim) / builtins.max(count - correction, 0)


def std(x: Tensor, dim=None, unbiased=None, keepdim=False, *, correction=None) -> Tensor:
    """std = sqrt(var)."""
    return var(x, dim, unbiased, keepdim, correction=correction).sqrt()


def logsumexp(x: Tensor, dim, keepdim=False) -> Tensor:
    """log sum exp(x) = m + log sum exp(x - m), with m = max(x) detached for stability."""
    dims = normalize_dims(dim, x.ndim, "logsumexp")
    if x.numel():
        shift = np.max(x.data, axis=dims, keepdims=True)
    else:
        shift = np.zeros(kept_shape(x.shape, dims), x.dtype)
    shift = np.where(np.isfinite(shift), shift, 0)  # all -inf: shift by 0, not by -inf
    shift = Tensor._make(shift, None, None)
    out = Sum.apply((x - shift).exp(), dims, True).log() + shift
    return out if keepdim else out.reshape(drop_dims(shift.data, dims).shape)


def _extreme(x, dim, keepdim, reducer, arg, op, result_type):
    if dim is None:
        return reducer.apply(x, None, False)
    if isinstance(dim, Tensor):
        raise TypeError(
            f"{op}: use autodiff.{'maximum' if op == 'max' else 'minimum'}(a, b) for two tensors"
        )
    if x.numel() == 0:
        raise IndexError(
            f"{op}(): cannot reduce an empty tensor of shape {x.shape} along dim {dim}"
        )
    (axis,) = normalize_dims(dim, x.ndim, op) or (0,)
    if x.ndim == 0:
        return result_type(x.clone(), Tensor._make(np.zeros((), np.int64), None, None))
    indices = arg(x.data, axis=axis, keepdims=True)
    values = Gather.apply(x, axis, indices)
    if not keepdim:
        values = values.squeeze(axis)
        indices = indices.squeeze(axis)
    return result_type(values, Tensor._make(indices.astype(np.int64), None, None))


def max(x: Tensor, dim=None, keepdim=False):
    """``x.max()`` is a tensor; ``x.max(dim)`` is ``(values, indices)``, as in PyTorch."""
    return _extreme(x, dim, keepdim, Amax, np.argmax, "max", MaxResult)


def min(x: Tensor, dim=None, keepdim=False):
    """``x.min()`` is a tensor; ``x.min(dim)`` is ``(values, indices)``, as in PyTorch."""
    return _extreme(x, dim, keepdim, Amin, np.argmin, "min", MinResult)


def amax(x: Tensor, dim=(), keepdim=False) -> Tensor:
    """Maximum over ``dim`` (all dims when empty); ties share the gradient."""
    dims = None if dim in ((), None) else normalize_dims(dim, x.ndim, "amax")
    return Amax.apply(x, dims, keepdim)


def amin(x: Tensor, dim=(), keepdim=False) -> Tensor:
    """Minimum over ``dim`` (all dims when empty); ties share the gradient."""
    dims = None if dim in ((), None) else normalize_dims(dim, x.ndim, "amin")
    return Amin.apply(x, dims, keepdim)


def _arg(x, dim, keepdim, fn, op):
    if dim is None:
        out = fn(x.data.reshape(-1))
        if keepdim:
            out = np.reshape(out, (1,) * x.ndim)
    else:
        (axis,) = normalize_dims(dim, x.ndim, op) or (0,)
        out = fn(x.data, axis=axis, keepdims=keepdim) if x.ndim else np.zeros((), np.int64)
    return Tensor._make(np.asarray(out, dtype=np.int64), None, None)


def argmax(x: Tensor, dim=None, keepdim=False) -> Tensor:
    """Index of the maximum (over the flattened tensor when ``dim`` is None)."""
    return _arg(x, dim, keepdim, np.argmax, "argmax")


def argmin(x: Tensor, dim=None, keepdim=False) -> Tensor:
    """Index of the minimum (over the flattened tensor when ``dim`` is None)."""
    return _arg(x, dim, keepdim, np.argmin, "argmin")


def prod(x: Tensor, dim=None, keepdim=False, dtype=None) -> Tensor:
    """Product over ``dim`` (all elements when None)."""
    if dtype is not None:
        x = x.to(dtype)
    return Prod.apply(x, normalize_dims(dim, x.ndim, "prod"), keepdim)
