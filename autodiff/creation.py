"""Functions that create tensors: ``tensor``, ``zeros``, ``randn``, ... (PyTorch's names)."""

from __future__ import annotations

import numpy as np

from .conversion import as_dtype, get_default_dtype, to_array
from .ops.shape import parse_shape
from .random import numpy_rng
from .tensor import Device, Tensor, _check_can_require_grad


def _finish(array: np.ndarray, requires_grad: bool, device, op: str) -> Tensor:
    if device is not None:
        Device(device)
    tensor = Tensor._make(array, None, None)
    if requires_grad:
        _check_can_require_grad(array.dtype, op)
        tensor._requires_grad = True
    return tensor


def tensor(data, dtype=None, device=None, requires_grad=False) -> Tensor:
    """A new tensor holding a copy of ``data`` (numbers, nested lists or an array).

    Python floats become float32 and ints int64, as in PyTorch; NumPy arrays keep
    their dtype.  ``tensor([[1., 2.], [3., 4.]], requires_grad=True)``
    """
    return _finish(to_array(data, dtype, "tensor"), requires_grad, device, "tensor")


def as_tensor(data, dtype=None, device=None) -> Tensor:
    """Like ``tensor`` but shares memory with a NumPy array when it can."""
    if isinstance(data, Tensor) and dtype is None:
        return data
    return _finish(to_array(data, dtype, "as_tensor", copy=False), False, device, "as_tensor")


def from_numpy(array: np.ndarray) -> Tensor:
    """A tensor that shares memory with ``array`` (changes show in both)."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"from_numpy: expected np.ndarray, got {type(array).__name__}")
    return _finish(to_array(array, None, "from_numpy", copy=False), False, None, "from_numpy")


def _filled(size, fill, dtype, requires_grad, device, op, default=None):
    shape = parse_shape(size, op)
    if any(s < 0 for s in shape):
        raise RuntimeError(f"{op}: trying to create a tensor with negative dimension: {shape}")
    dtype = as_dtype(dtype, op) or default or get_default_dtype()
    return _finish(np.full(shape, fill, dtype=dtype), requires_grad, device, op)


def zeros(*size, dtype=None, device=None, requires_grad=False) -> Tensor:
    """A tensor of zeros: ``zeros(2, 3)`` or ``zeros((2, 3))``."""
    return _filled(size, 0, dtype, requires_grad, device, "zeros")


def ones(*size, dtype=None, device=None, requires_grad=False) -> Tensor:
    """A tensor of ones: ``ones(2, 3)`` or ``ones((2, 3))``."""
    return _filled(size, 1, dtype, requires_grad, device, "ones")


def empty(*size, dtype=None, device=None, requires_grad=False) -> Tensor:
    """An uninitialised tensor (here: zeros, which is as cheap with NumPy)."""
    return _filled(size, 0, dtype, requires_grad, device, "empty")


def full(size, fill_value, dtype=None, device=None, requires_grad=False) -> Tensor:
    """A tensor filled with ``fill_value``; its dtype follows the value as in PyTorch."""
    if dtype is None:
        kind = to_array(fill_value, None, "full").dtype
        dtype = kind
    return _filled((size,), fill_value, dtype, requires_grad, device, "full")


def _like(tensor_, fill, dtype, requires_grad, op):
    dtype = as_dtype(dtype, op) or tensor_.dtype
    return _finish(np.full(tensor_.shape, fill, dtype=dtype), requires_grad, None, op)


def zeros_like(input, dtype=None, device=None, requires_grad=False) -> Tensor:
    return _like(input, 0, dtype, requires_grad, "zeros_like")


def ones_like(input, dtype=None, device=None, requires_grad=False) -> Tensor:
    return _like(input, 1, dtype, requires_grad, "ones_like")


def empty_like(input, dtype=None, device=None, requires_grad=False) -> Tensor:
    return _like(input, 0, dtype, requires_grad, "empty_like")


def full_like(input, fill_value, dtype=None, device=None, requires_grad=False) -> Tensor:
    return _like(input, fill_value, dtype, requires_grad, "full_like")


def arange(start, end=None, step=1, dtype=None, device=None, requires_grad=False) -> Tensor:
    """``arange(5)`` is 0..4; integers give int64, any float gives float32."""
    if end is None:
        start, end = 0, start
    values = [start, end, step]
    values = [v.item() if isinstance(v, Tensor) else v for v in values]
    if step == 0:
        raise RuntimeError("arange: step must be nonzero")
    if dtype is None:
        is_int = all(isinstance(v, (int, np.integer)) for v in values)
        dtype = np.int64 if is_int else get_default_dtype()
    array = np.arange(*values, dtype=np.float64 if np.dtype(dtype).kind == "f" else None)
    return _finish(array.astype(dtype), requires_grad, device, "arange")


def linspace(start, end, steps, dtype=None, device=None, requires_grad=False) -> Tensor:
    """``steps`` evenly spaced values from ``start`` to ``end`` inclusive."""
    if steps < 0:
        raise RuntimeError(f"linspace: number of steps must be non-negative, got {steps}")
    dtype = as_dtype(dtype, "linspace") or get_default_dtype()
    return _finish(np.linspace(start, end, steps).astype(dtype), requires_grad, device, "linspace")


def eye(n, m=None, dtype=None, device=None, requires_grad=False) -> Tensor:
    """The identity matrix (n x m)."""
    dtype = as_dtype(dtype, "eye") or get_default_dtype()
    return _finish(np.eye(n, m, dtype=dtype), requires_grad, device, "eye")


def rand(*size, generator=None, dtype=None, device=None, requires_grad=False) -> Tensor:
    """Uniform random numbers in [0, 1)."""
    shape = parse_shape(size, "rand")
    dtype = as_dtype(dtype, "rand") or get_default_dtype()
    array = numpy_rng(generator).random(shape, dtype=np.float64).astype(dtype)
    return _finish(array, requires_grad, device, "rand")


def randn(*size, generator=None, dtype=None, device=None, requires_grad=False) -> Tensor:
    """Standard normal random numbers."""
    shape = parse_shape(size, "randn")
    dtype = as_dtype(dtype, "randn") or get_default_dtype()
    array = numpy_rng(generator).standard_normal(shape).astype(dtype)
    return _finish(array, requires_grad, device, "randn")


def randint(low, high=None, size=None, generator=None, dtype=None, device=None) -> Tensor:
    """Random integers in [low, high): ``randint(10, (3,))`` or ``randint(0, 10, (3,))``."""
    if size is None:
        low, high, size = 0, low, high
    if high is None:
        low, high = 0, low
    if size is None:
        raise TypeError("randint: missing the size argument, e.g. randint(0, 10, (3,))")
    dtype = as_dtype(dtype, "randint") or np.int64
    array = numpy_rng(generator).integers(low, high, size=tuple(size)).astype(dtype)
    return _finish(array, False, device, "randint")


def randperm(n, generator=None, dtype=None, device=None) -> Tensor:
    """A random permutation of 0..n-1."""
    dtype = as_dtype(dtype, "randperm") or np.int64
    return _finish(numpy_rng(generator).permutation(n).astype(dtype), False, device, "randperm")


def rand_like(input, dtype=None, requires_grad=False) -> Tensor:
    return rand(input.shape, dtype=dtype or input.dtype, requires_grad=requires_grad)


def randn_like(input, dtype=None, requires_grad=False) -> Tensor:
    return randn(input.shape, dtype=dtype or input.dtype, requires_grad=requires_grad)


def bernoulli(p, generator=None) -> Tensor:
    """Draw 0 or 1 with probability ``p`` (elementwise)."""
    probs = p.data if isinstance(p, Tensor) else np.asarray(p)
    draws = numpy_rng(generator).random(probs.shape) < probs
    return _finish(draws.astype(probs.dtype), False, None, "bernoulli")
