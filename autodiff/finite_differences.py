"""Central differences: the one numerical derivative behind every gradient check.

``gradcheck``/``gradgradcheck`` (whole Jacobians, PyTorch's semantics),
``autodiff.testing`` (a random upstream gradient, reports a student can read)
and ``autodiff.testing.check_graph`` (one recorded op at a time) all compare the
engine's gradients with the same numbers:

    column l of  d out_i / d in_j  =  (f(x + eps e_l) - f(x - eps e_l)) / step

where ``step`` is the distance between the two points actually evaluated, once
``x_l +- eps`` is rounded to the input's dtype (``2 eps`` in exact arithmetic).

Example::

    >>> import autodiff, numpy as np
    >>> x = autodiff.tensor([1.0, 3.0], dtype=autodiff.float64)
    >>> copies = perturbable_copies([x])
    >>> [np.round(column[0], 6) for _, column in jacobian_columns(lambda t: t**3, copies, 0)]
    [array([3., 0.]), array([ 0., 27.])]
"""

from __future__ import annotations

import numpy as np

from .grad_mode import enable_grad
from .tensor import Tensor, constant

__all__ = [
    "directional_difference",
    "evaluate",
    "jacobian_columns",
    "perturbable_copies",
    "worst_entry",
]


def as_tuple(value) -> tuple:
    if isinstance(value, tuple):
        return value
    if isinstance(value, list):
        return tuple(value)
    return (value,)


def evaluate(fn, inputs) -> list:
    """Outputs of ``fn(*inputs)`` as float64 NumPy copies (None for non-float outputs).

    Grad mode stays on: ``gradgradcheck`` and ``check_gradients(order=2)`` evaluate
    functions that themselves run backward.
    """
    with enable_grad():
        outputs = as_tuple(fn(*inputs))
    return [
        np.array(out.data, dtype=np.float64, copy=True)
        if isinstance(out, Tensor) and out.dtype.kind == "f"
        else None
        for out in outputs
    ]


def perturbable_copies(inputs, dtype=None) -> list:
    """Fresh contiguous leaves copying the tensor inputs (other arguments pass through).

    Each copy keeps ``requires_grad``; float tensors are converted to ``dtype``
    when it is given (integer and boolean tensors never are).
    """
    copies = []
    for x in inputs:
        if isinstance(x, Tensor):
            wanted = dtype if dtype is not None and x.dtype.kind == "f" else x.dtype
            copy = constant(np.array(x.data, dtype=wanted, copy=True, order="C"))
            copy.requires_grad_(x.requires_grad and copy.dtype.kind == "f")
            copies.append(copy)
        else:
            copies.append(x)
    return copies


def jacobian_columns(fn, copies, j, eps=1e-6, one_sided=False):
    """Yield ``(l, columns)`` for each entry ``l`` of input ``j``, in flat order.

    ``columns[i]`` is ``d out_i / d in_j[l]`` as a flat float64 array (None for a
    non-float output).  ``copies`` come from ``perturbable_copies``; entry ``l`` of
    ``copies[j]`` is moved by ``+- eps`` and put back before the next one.

    With ``one_sided=True`` it yields ``(l, columns, right, left)``: also the
    one-sided differences ``(f(x + eps e_l) - f(x)) / eps`` and
    ``(f(x) - f(x - eps e_l)) / eps``.  At a kink (relu at 0, a tie in a max) the
    central difference is the mean of the two slopes, while a backward pass
    rightly returns one of them.
    """
    center = evaluate(fn, copies) if one_sided else None
    data = copies[j].data
    flat = data.reshape(-1)  # a view: the copies are contiguous
    for l in range(data.size):  # noqa: E741 (the column index of the Jacobian)
        original = flat[l].item()
        flat[l] = original + eps
        above = float(np.float64(flat[l]))
        plus = evaluate(fn, copies)
        flat[l] = original - eps
        below = float(np.float64(flat[l]))
        minus = evaluate(fn, copies)
        flat[l] = original
        # The steps actually taken, once rounded to the input's dtype.
        step = above - below
        columns = [
            None if p is None else (p - m).reshape(-1) / step
            for p, m in zip(plus, minus, strict=True)
        ]
        if not one_sided:
            yield l, columns
            continue
        right = [
            None if p is None else (p - c).reshape(-1) / (above - original)
            for p, c in zip(plus, center, strict=True)
        ]
        left = [
            None if m is None else (c - m).reshape(-1) / (original - below)
            for m, c in zip(minus, center, strict=True)
        ]
        yield l, columns, right, left


def directional_difference(fn, copies, j, direction, eps=1e-6) -> list:
    """``(f(x + eps v) - f(x - eps v)) / (2 eps)`` for input ``j`` moved along ``v``.

    One entry per output (None for non-float outputs): the Jacobian times ``v``,
    from two evaluations whatever the input's size.
    """
    data = copies[j].data
    original = data.copy()
    data[...] = original + eps * direction
    plus = evaluate(fn, copies)
    data[...] = original - eps * direction
    minus = evaluate(fn, copies)
    data[...] = original
    return [None if p is None else (p - m) / (2 * eps) for p, m in zip(plus, minus, strict=True)]


def worst_entry(analytical, numerical, atol, rtol):
    """The flat index where ``|analytical - numerical|`` most exceeds ``atol + rtol |numerical|``.

    None when every entry is within tolerance (NumPy's ``allclose``); a NaN counts
    as the worst possible entry.
    """
    if np.allclose(analytical, numerical, rtol=rtol, atol=atol, equal_nan=False):
        return None
    excess = np.abs(analytical - numerical) - (atol + rtol * np.abs(numerical))
    excess = np.where(np.isnan(excess), np.inf, excess)
    return int(np.argmax(excess))


def wrong_gradient_shape(op: str, index: int, grad, input) -> str | None:
    """What is wrong when the gradient of input ``index`` does not have the input's shape
    (the message for the check ``op``), else None."""
    if grad.shape == input.shape:
        return None
    return (
        f"{op}: the gradient of input {index} has shape {grad.shape}, but the input has "
        f"shape {input.shape}"
    )
