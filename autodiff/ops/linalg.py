"""Matrix products."""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from ..function import Function
from ..threads import (
    MIN_PARALLEL_WORK,
    blas_threads,
    first_piece,
    get_num_threads,
    parallel_for,
    parallel_rows,
    running_a_chunk,
)
from .shape import sum_to_shape


class MatMul(Function):
    """Y = X @ W        dL/dX = dL/dY @ W^T        dL/dW = X^T @ dL/dY

    1-D operands follow NumPy and PyTorch: a vector on the left is a row, on the
    right a column, and the added dim is removed from the result.  Batch dims
    broadcast; the engine sums the gradients back over them.
    """

    method = "matmul"  # Tensor.mm (2-D only) is written in tensor.py

    op_name = "matmul"

    @staticmethod
    def forward(ctx, x, w):
        x_shape, w_shape = np.shape(x), np.shape(w)
        if len(x_shape) == 0 or len(w_shape) == 0:
            raise ValueError(
                f"matmul: both arguments need at least 1 dim, got shapes {x_shape} and {w_shape}"
            )
        inner_x = x_shape[-1]
        inner_w = w_shape[-2] if len(w_shape) > 1 else w_shape[0]
        if inner_x != inner_w:
            raise ValueError(
                f"matmul: shapes {x_shape} and {w_shape} cannot be multiplied "
                f"({inner_x} columns in the first, {inner_w} rows in the second)"
            )
        ctx.ndims = (len(x_shape), len(w_shape))
        # x's batch dims broadcast against w's (its gradient is summed over them)
        ctx.x_shape = x_shape
        ctx.x_broadcast = (
            len(w_shape) > 2 and len(x_shape) > 1 and _broadcast_up(x_shape[:-2], w_shape[:-2])
        )
        x_transposed, w_transposed = _transposed(np.asarray(x)), _transposed(np.asarray(w))
        ctx.transposed = (x_transposed, w_transposed)
        ctx.save_for_backward(
            w if ctx.needs_input_grad[0] else None, x if ctx.needs_input_grad[1] else None
        )
        if w_transposed and len(x_shape) == 2:
            return _times_transposed(x, w.T)
        try:
            return _matmul(x, w)
        except ValueError as error:  # batch dims that do not broadcast
            raise ValueError(
                f"matmul: batch dims of shapes {x_shape} and {w_shape} do not broadcast ({error})"
            ) from None

    @staticmethod
    def backward(ctx, grad):
        w, x = ctx.saved_tensors
        x_ndim, w_ndim = ctx.ndims
        grad_x = grad_w = None
        if x_ndim == 1 and w_ndim == 1:  # y = x . w, a scalar
            grad_x = grad * w if w is not None else None
            grad_w = grad * x if x is not None else None
        elif w_ndim == 1:  # y = X w: dL/dX = dL/dy w^T, dL/dw = X^T dL/dy
            grad_x = grad.unsqueeze(-1) * w if w is not None else None
            grad_w = (x.mT @ grad.unsqueeze(-1)).squeeze(-1) if x is not None else None
        elif x_ndim == 1:  # y = x W: dL/dx = W dL/dy, dL/dW = x dL/dy^T
            grad_x = (grad.unsqueeze(-2) @ w.mT).squeeze(-2) if w is not None else None
            grad_w = x.unsqueeze(-1) * grad.unsqueeze(-2) if x is not None else None
        else:
            # each gradient laid out like its input (see _transposed)
            x_transposed, w_transposed = ctx.transposed
            # x broadcast over w's batch (conv2d's kernel against one matrix of
            # windows per image): its gradient is summed over that batch, which
            # makes it row-major whichever way the products ran, and OpenBLAS ran
            # them 1.6x faster as (w @ g^T)^T: 0.70 ms against 1.15 ms for 64 of
            # (32x196) @ (196x144) float32 (measured)
            if w is not None and ctx.x_broadcast:
                # summed here, and the small sum made row-major for the optimizer
                grad_x = sum_to_shape((w @ grad.mT).mT, ctx.x_shape, "matmul").contiguous()
            elif w is not None:
                grad_x = (w @ grad.mT).mT if x_transposed else grad @ w.mT
            if x is not None:
                grad_w = (grad.mT @ x).mT if w_transposed else x.mT @ grad
        return grad_x, grad_w


# Up to this many rows, x @ W.T runs faster as (W @ x.T).T (see _times_transposed)
_TRANSPOSED_PROBLEM_ROWS = 192


def _times_transposed(x, weight):
    """``x @ weight.T`` for a 2-D x (N, in) and a row-major weight (out, in), row-major.

    The linear layer's product.  For a batch of up to 192 rows, OpenBLAS's
    no-transpose kernel on the transposed problem, ``(W @ x.T).T``, copied back
    to row-major, is faster: 0.56 ms against 0.68 ms for 64x784 @ 784x512
    float32, 0.40 against 0.49 ms for 512x512, 1.69 against 1.75 ms at 192
    rows (x row- or column-major, one thread, medians).  For more rows the
    copy of the transposed result costs more than the kernel saves: 10.7 ms
    against 8.1 ms at 1000 rows, 44 against 33 ms at 4096.  The choice depends
    on the shape alone, so the numbers do not depend on the thread count.
    """
    x = np.asarray(x)
    if x.shape[0] <= _TRANSPOSED_PROBLEM_ROWS:
        return _row_major_transpose(_matmul(weight, x.T))
    return _matmul(x, weight.T)


# Rows of the array _row_major_transpose reads per block
_TRANSPOSE_BLOCK = 128


def _row_major_transpose(array):
    """``array.T`` (2-D) as a row-major array, copied a block of 128 rows at a time.

    NumPy copies a transposed view element by element in the result's order,
    reading ``array`` down its columns; in blocks, the lines it reads stay in
    the core's cache: the linear layer's (512, 64) product took 15 us to copy
    back instead of 22 (float32, one thread, right after the product, medians).
    A new array, except where ``array.T`` already is row-major (one column):
    then that view of ``array`` itself.
    """
    rows = array.shape[0]
    if rows <= _TRANSPOSE_BLOCK:
        return np.ascontiguousarray(array.T)
    out = np.empty(array.shape[::-1], dtype=array.dtype)
    for first in range(0, rows, _TRANSPOSE_BLOCK):
        out[:, first : first + _TRANSPOSE_BLOCK] = array[first : first + _TRANSPOSE_BLOCK].T
    return out


def _matmul(a, b):
    """``np.matmul(a, b)``, split over the engine's threads (BLAS has one, see autodiff/threads.py).

    A batched product (a convolution's, one per image) is split over its
    first batch dim: 64 of (32x144) @ (144x196) float32 took 1.06 ms on one
    thread, 0.58 ms on two (OpenBLAS's own 2 threads: 0.71 ms).  A large 2-D
    product is split in two parts (see _two_parts_of_product), one per thread.
    OpenBLAS's result for a row can depend on how many rows the call has (one
    call and two halves differed in the last bits on one of our machines), so
    the two halves are the reference: on one thread the product is one call,
    and on two the calling thread's part is the larger (it starts first), only
    where that was checked to give the halves' bits on this machine (see
    _product_plan).  So the numbers do not depend on the thread count.
    512x784 @ 784x64, the MLP's layer: 0.53 ms in one call, 0.56 ms as two
    halves on one thread; on two threads 0.37 ms in halves, 0.33 ms with the
    caller's part larger.
    """
    a, b = np.asarray(a), np.asarray(b)
    if a.ndim >= 2 and b.ndim >= 2 and a.shape[-1] == 1 and b.shape[-2] == 1 and _real(a, b):
        return _outer_products(a, b)
    if blas_threads() > 1 or a.ndim < 2 or b.ndim < 2:
        return np.matmul(a, b)  # BLAS's own threads (threadpoolctl missing)
    if a.ndim == 2 and b.ndim == 2:  # (np.broadcast_shapes takes 1.4 us)
        shape = (a.shape[0], b.shape[1])
    else:
        try:
            shape = np.broadcast_shapes(a.shape[:-2], b.shape[:-2]) + (a.shape[-2], b.shape[-1])
        except ValueError:
            return np.matmul(a, b)  # raises matmul's own error
    # about 16 multiply-adds take as long as one element of an elementwise op
    cost_per_row = math.prod(shape[1:]) * a.shape[-1] // 16
    work = cost_per_row * shape[0]
    if shape[0] < 2 or work < 2 * MIN_PARALLEL_WORK:
        return np.matmul(a, b)
    # inside a chunk (see _products_side_by_side) the product has this thread alone,
    # so it is computed as on one thread
    one_thread = get_num_threads() == 1 or running_a_chunk()
    if len(shape) == 2:
        plan = _product_plan(a, b, work)
        if one_thread and plan is not None and plan.one_call:
            return np.matmul(a, b)
        out = np.empty(shape, dtype=np.result_type(a, b))
        middle = None if one_thread or plan is None else plan.middle
        parallel_for(2, _two_parts_of_product(a, b, out, middle), work // 2)
        return out
    out = np.empty(shape, dtype=np.result_type(a, b))
    if one_thread:
        np.matmul(a, b, out=out)
    else:  # the first batch dim, of the operands that have it (others broadcast)
        parallel_rows(np.matmul, (a, b), out, cost_per_row)
    return out


def _real(a, b) -> bool:
    """Both operands real (bool, integer or float): a complex product's parts are summed
    in another way by each of matmul, np.dot and np.multiply (they differ in the last bit)."""
    return a.dtype.kind in "biuf" and b.dtype.kind in "biuf"


# Up to this many elements an outer product is fastest by np.dot (see _outer_products)
_OUTER_BY_DOT = 1 << 20


def _outer_products(a, b):
    """``a @ b`` for an inner dim of 1 and real operands: each element one product,
    a[i] b[j], so any method gives these bits.

    NumPy's matmul takes a slow loop for this case: the linear layer's dL/dW at a
    batch of one, (512, 1) @ (1, 784) float32, took 442 us against 60 us by
    np.dot and 107 us by np.multiply (PyTorch: 34 us); 2048 x 2048, 4.6 ms
    against 2.7 ms and 1.2 ms, and a batch of eight (512, 1) @ (1, 784), 3.6 ms
    against 0.9 ms by np.multiply (one thread, medians).  So np.dot up to
    ``_OUTER_BY_DOT`` elements of 2-D operands, broadcasting np.multiply beyond
    (batch dims broadcast as in matmul).
    """
    if (
        a.ndim == 2
        and b.ndim == 2
        and a.shape[0] * b.shape[1] <= _OUTER_BY_DOT
        and np.isfinite(np.sum(a))  # np.dot gives 0, not NaN, for inf * 0: then np.multiply
        and np.isfinite(np.sum(b))
    ):
        return np.dot(a, b)
    return np.multiply(a, b)


def _products_side_by_side(*pairs) -> list:
    """``[_matmul(a, b) for a, b in pairs]``, one product per thread when there is a thread
    for each.

    The linear layer's dL/dx = g W and dL/dW = g^T x take the same multiply-adds
    (N x out x in each); side by side they need one hand-off instead of one per
    product, and each operand is packed once, not once per part: 0.46 to 0.49
    ms against 0.52 to 0.56 ms for the MLP's 512-wide layer on two threads
    (medians, alternated).  Each product is computed as on one thread (inside
    a chunk ``_matmul`` has its thread alone), so the numbers do not depend
    on the thread count.  With more threads than products, or products too
    small to hand off, each is computed by ``_matmul`` in turn.
    """
    results = [None] * len(pairs)
    cost = min(a.shape[0] * b.shape[1] * a.shape[1] // 16 for a, b in pairs)

    def products(first, stop):
        for index in range(first, stop):
            results[index] = _matmul(*pairs[index])

    if get_num_threads() == len(pairs) and blas_threads() == 1 and cost >= MIN_PARALLEL_WORK:
        parallel_for(len(pairs), products, cost)
    else:
        products(0, len(pairs))
    return results


class _Plan(NamedTuple):
    """How a 2-D product problem is computed, checked to give its two halves' bits.

    ``one_call``: on one thread, one ``np.matmul``; ``middle``: on two threads,
    where the calling thread's part ends (the halves' middle where a larger
    part would give other bits).
    """

    one_call: bool
    middle: int


# What _product_plan found, per problem (shapes, dtypes, layouts): its _Plan
# once checked, None once seen.  Bounded: a program whose product shapes keep
# changing stops adding to it (and those products stay in halves).
_PRODUCT_PLANS: dict = {}
_MOST_PROBLEMS_CHECKED = 512
# The check makes random operands of the problem's size; past this, the halves stay
# (their cost is a small part of products this large, and the copies would not be).
_LARGEST_CHECKED_BYTES = 64 * 2**20
_UNSEEN = object()
# The calling thread's larger part ends at a multiple of this many rows (or
# columns): a whole block of OpenBLAS's kernels, whose bits the halves' have.
_PART_ROUNDING = 16


def _product_plan(a, b, work) -> _Plan | None:
    """How ``np.matmul(a, b)`` may be computed and give its two halves' bits, on this machine.

    On one thread a 2-D product needs no halves, which cost time (each half
    packs the other operand again): the MLP's training step took 3.77 against
    3.59 ms, its test batch 1.34 against 1.19 ms (one thread, interleaved,
    medians).  On two threads the calling thread should take the larger part,
    as it starts before the worker (its head start, see threads.first_piece):
    the MLP's step took 2.21 against 2.37 ms.  But the numbers must not depend
    on the thread count, and OpenBLAS may compute a call of other rows with
    other kernels.  Which kernels run depends on the problem alone (its
    shapes, dtypes and layouts, never its values), so this computes the three
    on random values of the same problem, once, and keeps the answer: equal to
    the last bit means the same kernels, as a float32 product of K = 784
    summed in another order would differ somewhere.  The check runs the
    second time a problem is seen, so a one-off product never pays for it
    (about three products' time, once); until then, None.  Operands other than
    row- or column-major (strided views), and operands of more than 64 MiB
    together, keep the halves.  ``work``: the product's element-operations.
    """
    layouts = (_layout(a), _layout(b))
    if None in layouts or a.nbytes + b.nbytes > _LARGEST_CHECKED_BYTES:
        return None
    problem = (a.shape, b.shape, a.dtype, b.dtype, layouts)
    known = _PRODUCT_PLANS.get(problem, _UNSEEN)
    if known is _UNSEEN:
        if len(_PRODUCT_PLANS) < _MOST_PROBLEMS_CHECKED:
            _PRODUCT_PLANS[problem] = None
        return None
    if known is None:  # the second time: check it now
        known = _PRODUCT_PLANS[problem] = _checked_plan(a, b, layouts, _larger_part(a, b, work))
    return known


def _larger_part(a, b, work) -> int:
    """Where the calling thread's part of the 2-D ``a @ b`` ends (threads.first_piece's
    share, at a whole block of rows or columns)."""
    n = _split_length(a, b)
    share = first_piece(n, 2, work)
    return max(n // 2, min(n - _PART_ROUNDING, round(share / _PART_ROUNDING) * _PART_ROUNDING))


def _layout(array):
    """The layout's letter, "C" (row-major) or "F" (column-major); None for other strides."""
    if array.flags.c_contiguous:
        return "C"
    return "F" if array.flags.f_contiguous else None


def _checked_plan(a, b, layouts, middle) -> _Plan:
    """One call and the larger caller's part against two halves, on random operands shaped
    and laid out as ``a`` and ``b``."""
    rng = np.random.default_rng(0)  # its own generator: autodiff's random state is left alone
    probes = []
    for operand, layout in zip((a, b), layouts, strict=True):
        values = rng.standard_normal(operand.shape).astype(operand.dtype)
        probes.append(np.asfortranarray(values) if layout == "F" else values)
    halves = np.empty((a.shape[0], b.shape[1]), dtype=np.result_type(a, b))
    _two_parts_of_product(*probes, halves)(0, 2)
    one_call = np.array_equal(np.matmul(*probes), halves)
    parts = np.empty_like(halves)
    _two_parts_of_product(*probes, parts, middle)(0, 2)
    return _Plan(one_call, middle if np.array_equal(parts, halves) else _split_length(a, b) // 2)


def _by_columns(a, b) -> bool:
    """Whether a 2-D product is split by the columns of ``b`` (wider than tall) or by rows."""
    return b.shape[1] > a.shape[0]


def _split_length(a, b) -> int:
    """The length of the side of ``a @ b`` that is split: b's columns or a's rows."""
    return b.shape[1] if _by_columns(a, b) else a.shape[0]


def _two_parts_of_product(a, b, out, middle=None):
    """``work(first, stop)`` for parallel_for: parts first..stop-1 of the 2-D ``out = a @ b``.

    The longer side of ``out`` is cut at ``middle`` (halved when None): a's
    rows, or b's columns when ``out`` is wider than tall.  Each part packs
    only the part of the other operand it multiplies, and OpenBLAS packs b
    once per call: halving the rows of 64x512 @ 512x512 (the MLP's dL/dx)
    packed the 1 MiB weight twice, 0.42 ms on one thread against 0.36 ms in
    one call; halving its columns took 0.37 ms.
    """
    by_columns = _by_columns(a, b)
    if middle is None:
        middle = _split_length(a, b) // 2
    parts = (slice(0, middle), slice(middle, None))

    def two_parts(first, stop):
        for part in parts[first:stop]:
            if by_columns:
                np.matmul(a, b[:, part], out=out[:, part])
            else:
                np.matmul(a[part], b, out=out[part])

    return two_parts


def _broadcast_up(batch, other) -> bool:
    """True when the batch dims ``batch`` grow by broadcasting against ``other``."""
    if batch == other:
        return False
    try:
        return np.broadcast_shapes(batch, other) != batch
    except ValueError:  # matmul reports batch dims that do not broadcast
        return False


def _transposed(array) -> bool:
    """True for a 2-D column-major array, such as the ``W.T`` view in ``x @ W.T``.

    The gradient of such an input is computed as the transpose of a row-major
    product, ``(dL/dY^T @ x)^T`` for ``W.T``: the same numbers from one GEMM,
    but the leaf ``W`` then gets a row-major gradient.  With ``x^T @ dL/dY``
    it got a column-major one, and the optimizer's ``w -= lr * w.grad``, mixing
    layouts, ran 10x slower (1.1 ms against 0.1 ms for a 512x784 float32
    weight, measured); copying it contiguous costs as much.
    """
    return array.ndim == 2 and array.flags.f_contiguous and not array.flags.c_contiguous
