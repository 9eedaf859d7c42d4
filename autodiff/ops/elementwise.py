"""Elementwise operations: each forward and its vector-Jacobian product.

Broadcasting is undone by the engine (``sum_to_shape``), so a backward here
returns gradients with the broadcast shape and never sums by hand.  Every
docstring's first line is the forward and the VJP, as on the lecture slides.
"""

from __future__ import annotations

import math

import numpy as np

from ..function import Function
from ..function import recorded_backward as _records
from ..function import unrecorded as _unrecorded
from ..tensor import Tensor, constant
from ..threads import MIN_PARALLEL_WORK, parallel_for, parallel_rows, splits
from .special import erf as _erf


def _ufunc(ufunc, *operands):
    """``ufunc(*operands)``, split along the result's first dim over the engine's threads.

    Only large results are split (a batch of activations); the chunks compute
    exactly what one call would, element by element.  Operands that do not
    span the first dim (scalars, a bias of shape (1, C, 1, 1)) broadcast whole.
    """
    for operand in operands:  # small operands broadcasting into a large result: not split
        if type(operand) is np.ndarray and operand.size >= MIN_PARALLEL_WORK:
            return _large_ufunc(ufunc, operands, operand.shape, None)
    return ufunc(*operands)


def _ufunc_into(out, ufunc, *operands):
    """``ufunc(*operands, out=out)``, split as _ufunc splits it (``out``: the result's
    shape and dtype)."""
    if out.size >= MIN_PARALLEL_WORK:
        return _large_ufunc(ufunc, operands, out.shape, out)
    return ufunc(*operands, out=out)


def _large_ufunc(ufunc, operands, shape, out):
    operands = _rows_of_small_operands(operands, shape)
    # decided first: the split's set-up costs about 10 us (a 400K-element add took
    # 62 us down the split's path unsplit, against 52 us called directly)
    if splits(shape[0], _cost_per_row(ufunc, math.prod(shape[1:]))):
        return _ufunc_by_rows(ufunc, operands, out)
    return ufunc(*operands) if out is None else ufunc(*operands, out=out)


def _rows_of_small_operands(operands, shape):
    """Operands that broadcast along the inner dims of ``shape`` (a bias (1, C, 1, 1)
    against (N, C, H, W)), written out as one row (1, C, H, W), to be broadcast only
    along the first dim.

    NumPy then runs its vectorised loop along rows of C*H*W instead of an
    element-at-a-time loop against one number per H*W: a convolution's bias
    added to 64x16x28x28 took 162 against 237 us (one thread, medians).  The
    same additions, so the same values.  Only for at least 4 rows, so that the
    written row is small beside the result.
    """
    if len(shape) < 2 or shape[0] < 4 or shape[-1] < 2:
        return operands
    row = math.prod(shape[1:])
    widened = list(operands)
    for i, operand in enumerate(operands):
        if (
            type(operand) is np.ndarray
            and operand.ndim == len(shape)
            and operand.shape[0] == 1
            and operand.shape[-1] == 1
            and operand.size < row
        ):
            try:
                widened[i] = np.broadcast_to(operand, (1,) + tuple(shape[1:])).copy()
            except ValueError:  # it does not broadcast: the ufunc says so
                return operands
    return widened


# ufuncs whose loop is one pass over memory (an add, a comparison): split over two
# threads they gained only from about a million elements, as the two threads share
# the memory's bandwidth and a sleeping worker starts late.  Two threads against one
# (float32, medians): add 1.75x the time at 400K elements, 1.01x at 800K, 0.66x at
# 1.2M; a comparison 1.80x, 1.39x, 0.88x; exp, sqrt and tanh already 0.76x to 0.82x
# at 400K.  So each of their elements counts as a quarter of an element-operation.
_MEMORY_PASSES = frozenset(
    {
        np.add,
        np.subtract,
        np.multiply,
        np.divide,
        np.negative,
        np.positive,
        np.absolute,
        np.maximum,
        np.minimum,
        np.copysign,
        np.greater,
        np.greater_equal,
        np.less,
        np.less_equal,
        np.equal,
        np.not_equal,
        np.logical_and,
        np.logical_or,
        np.logical_not,
        np.bitwise_and,
        np.bitwise_or,
        np.bitwise_xor,
        np.square,
    }
)
_MEMORY_PASS_SHARE = 4


def _cost_per_row(ufunc, row_size) -> int:
    """The element-operations one row of a ufunc's result costs (see _MEMORY_PASSES)."""
    if ufunc in _MEMORY_PASSES:
        return max(1, row_size // _MEMORY_PASS_SHARE)
    return row_size


def _ufunc_by_rows(ufunc, operands, out=None):
    if out is not None:
        parallel_rows(ufunc, operands, out, _cost_per_row(ufunc, math.prod(out.shape[1:])))
        return out
    try:
        shape = np.broadcast_shapes(*[np.shape(operand) for operand in operands])
    except ValueError:
        return ufunc(*operands)  # raises NumPy's own error
    if shape[0] < 2:
        return ufunc(*operands)
    # the dtype NumPy would choose, from the first row
    first = ufunc(*[o[:1] if np.ndim(o) == len(shape) else o for o in operands])
    out = np.empty(shape, dtype=first.dtype)
    parallel_rows(ufunc, operands, out, _cost_per_row(ufunc, math.prod(shape[1:])))
    return out


class Add(Function):
    """z = x + y        dL/dx = dL/dz        dL/dy = dL/dz"""

    @staticmethod
    def forward(ctx, x, y):
        return _ufunc(np.add, x, y)

    @staticmethod
    def backward(ctx, grad):
        return grad, grad


class Sub(Function):
    """z = x - y        dL/dx = dL/dz        dL/dy = -dL/dz"""

    @staticmethod
    def forward(ctx, x, y):
        return np.subtract(x, y)

    @staticmethod
    def backward(ctx, grad):
        return grad, (_negated(grad) if ctx.needs_input_grad[1] else None)


class Neg(Function):
    """y = -x        dL/dx = -dL/dy"""

    method = ("neg", "__neg__")

    @staticmethod
    def forward(ctx, x):
        return np.negative(x)

    @staticmethod
    def backward(ctx, grad):
        return _negated(grad)


class Mul(Function):
    """z = x * y        dL/dx = dL/dz * y        dL/dy = dL/dz * x"""

    @staticmethod
    def forward(ctx, x, y):
        # Save only what a requested gradient needs, so that ``y.mul_(3)`` on a
        # non-leaf does not trip the in-place check for a value nobody uses.
        needs_x, needs_y = ctx.needs_input_grad
        ctx.save_for_backward(y if needs_x else None, x if needs_y else None)
        return np.multiply(x, y)

    @staticmethod
    def backward(ctx, grad):
        y, x = ctx.saved_tensors
        return (
            _product(grad, y) if y is not None else None,
            _product(grad, x) if x is not None else None,
        )


class Div(Function):
    """z = x / y        dL/dx = dL/dz / y        dL/dy = -dL/dz * x / y^2"""

    @staticmethod
    def forward(ctx, x, y):
        # Saves x and y (not z), as PyTorch does: an in-place change of the output
        # z afterwards is then allowed, as it is there.
        ctx.save_for_backward(y, x if ctx.needs_input_grad[1] else None)
        return np.true_divide(x, y)

    @staticmethod
    def backward(ctx, grad):
        y, x = ctx.saved_tensors
        needs = ctx.needs_input_grad
        # PyTorch's order of operations (div_tensor_other_backward: -grad * ((x / y) / y)),
        # so that underflow (y = 1e-300) rounds alike and y = 0 gives its infinities
        if _records(grad, y, x):
            grad_x = grad / y if needs[0] else None
            grad_y = -grad * ((x / y) / y) if needs[1] else None
            return grad_x, grad_y
        g, y = grad.data, _data(y)  # the same NumPy calls on the arrays: nothing is recorded
        grad_x = _unrecorded(np.true_divide(g, y)) if needs[0] else None
        if needs[1]:
            ratio = np.true_divide(np.true_divide(_data(x), y), y)
            grad_y = _unrecorded(np.multiply(np.negative(g), ratio))
        else:
            grad_y = None
        return grad_x, grad_y


class Pow(Function):
    """z = x ** p        dL/dx = dL/dz * p x^(p-1)        dL/dp = dL/dz * z log(x)"""

    @staticmethod
    def forward(ctx, x, p):
        if (  # a negative integer *number* as exponent of integers: PyTorch's error
            not isinstance(p, np.ndarray)
            and np.result_type(x, p).kind in "iu"
            and np.asarray(p).dtype.kind in "iu"
            and p < 0
        ):
            raise RuntimeError(
                f"pow: integers to negative integer powers are not allowed (base of dtype "
                f"{np.asarray(x).dtype}, exponent {p}); use a floating point base, e.g. "
                "x.float() ** p"
            )
        if np.result_type(x, p).kind in "iu":
            z = _integer_power(x, p)
        elif isinstance(p, float) and p in (0.5, -0.5):
            # PyTorch computes these as sqrt and rsqrt: sqrt(-0) = -0, 1 / sqrt(-0) = -inf
            # (np.power gives +0 and +inf), which sets the sign of x ** 0.5's slope at -0
            z = np.sqrt(x) if p == 0.5 else 1 / np.sqrt(x)
        else:
            z = _power(x, p)
        ctx.save_for_backward(x, p, z if ctx.needs_input_grad[1] else None)
        return z

    @staticmethod
    def backward(ctx, grad):
        x, p, z = ctx.saved_tensors
        grad_x = grad_p = None
        if ctx.needs_input_grad[0]:
            # p = 0 has a zero derivative everywhere, x = 0 included (PyTorch's
            # convention), not 0 * 0^-1 = 0 * inf = nan; the same rule makes
            # d2/dx2 x^1 and d3/dx3 x^2 exactly 0 at x = 0. grad * (p x^(p-1)) in
            # PyTorch's order: its bits, and no (grad p) overflowing before x^(p-1)
            # underflows (0.5 ** 1e300: d2/dx2 0, not inf * 0 = NaN).
            if isinstance(p, Tensor):
                grad_x = where(p.data == 0, 0.0, grad * (p * x ** (p - 1)))
            elif p == 0:
                grad_x = zeros_for(x)
            else:
                grad_x = grad * (p * x ** (p - 1))
        if ctx.needs_input_grad[1]:
            # x = 0 with p >= 0 has a zero derivative in p (PyTorch's convention),
            # not 0 * log(0) = nan. As PyTorch, the masked branch keeps its log(0) =
            # -inf: its second derivatives there are NaN (0 * -inf), and the product
            # is grad * (z log x), in that order, PyTorch's bits at every x.
            # x may be a Python number (2.0 ** t): read values with np.asarray.
            x_data = x.data if isinstance(x, Tensor) else np.asarray(x)
            p_data = p.data if isinstance(p, Tensor) else np.asarray(p)
            zero = (x_data == 0) & (p_data >= 0)
            if isinstance(x, Tensor):  # x's graph: create_graph needs it
                log_x = (x if x.dtype == z.dtype else x.to(z.dtype)).log()
            else:
                log_x = Tensor._make(np.log(x_data).astype(z.dtype), None, None)
            grad_p = grad * where(zero, 0.0, z * log_x)
        return grad_x, grad_p


def _power(x, p):
    """``np.power(x, p)`` for a float32 or float64 x, faster where p is an integer number.

    p = 3 and p = -2 are x x x and 1 / (x x), PyTorch's own kernels for them, so
    its bits.  Any other integer p is taken on |x| and the sign set after:
    NumPy's power runs a scalar loop wherever a base is negative (64x1000
    float32, half of it negative: 3.8 ms for x ** 3, against 77 us on |x|), and
    pow(x, n) is exactly +-pow(|x|, n) (-0.0, inf and NaN included).
    """
    if (
        isinstance(p, np.ndarray)
        or x.dtype not in (np.float32, np.float64)  # float16: NumPy's float32 loop, rounded
        or not float(p).is_integer()
    ):
        return np.power(x, p)
    if p == 3:
        return x * x * x
    if p == -2:
        return 1 / (x * x)
    if p in (0, 1, 2, -1):  # NumPy's fast cases
        return np.power(x, p)
    magnitude = np.power(np.abs(x), p)
    return np.copysign(magnitude, x) if p % 2 else magnitude


def _integer_power(x, p):
    """x ** p for integers, a tensor of exponents included: PyTorch's integer results
    for negative exponents (1 ** -n = 1, (-1) ** -n = +-1, anything else 0)."""
    x, p = np.asarray(x), np.asarray(p)
    if not np.any(p < 0):
        return np.power(x, p)
    negative = np.where(x == 1, 1, np.where(x == -1, np.where(p % 2 == 0, 1, -1), 0))
    return np.where(p >= 0, np.power(x, np.maximum(p, 0)), negative).astype(np.result_type(x, p))


class Exp(Function):
    """y = exp(x)        dL/dx = dL/dy * y"""

    method = "exp"

    @staticmethod
    def forward(ctx, x):
        y = np.exp(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved_tensors
        return _product(grad, y)


class Log(Function):
    """y = log(x)        dL/dx = dL/dy / x"""

    method = "log"

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return np.log(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        if _records(grad, x):
            return grad / x
        return _unrecorded(np.true_divide(grad.data, x.data))


class Sqrt(Function):
    """y = sqrt(x)        dL/dx = dL/dy / (2 y)"""

    method = "sqrt"

    @staticmethod
    def forward(ctx, x):
        y = np.sqrt(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved_tensors
        return grad / (2 * y)


class Reciprocal(Function):
    """y = 1 / x        dL/dx = -dL/dy * y^2"""

    method = "reciprocal"

    @staticmethod
    def forward(ctx, x):
        y = np.reciprocal(x if x.dtype.kind == "f" else x.astype(np.float32))
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved_tensors
        return -grad * (y * y)


class Rsqrt(Function):
    """y = 1 / sqrt(x)        dL/dx = -dL/dy * y^3 / 2"""

    method = "rsqrt"

    @staticmethod
    def forward(ctx, x):
        y = np.reciprocal(np.sqrt(x if x.dtype.kind == "f" else x.astype(np.float32)))
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved_tensors
        return -0.5 * grad * y**3


class Abs(Function):
    """y = |x|        dL/dx = dL/dy * sign(x)        (0 at x = 0 and at NaN, as PyTorch)"""

    method = ("abs", "__abs__")

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return np.abs(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * x.sign()  # sign is flat: create_graph gives a zero second derivative


class _Flat(Function):
    """y = a step function of x (flat wherever it is differentiable)        dL/dx = 0

    The base of sign, floor, ceil and round: ``numpy_function`` computes y.
    """

    numpy_function = None

    @staticmethod
    def forward(ctx, x):
        return ctx.function.numpy_function(x)

    @staticmethod
    def backward(ctx, grad):
        return zeros_for(grad)


def _sign(x):
    if x.dtype.kind == "b":
        return np.array(x, copy=True)
    y = np.sign(x)
    return np.where(np.isnan(y), 0, y).astype(y.dtype, copy=False) if y.dtype.kind == "f" else y


class Sign(_Flat):
    """y = sign(x) in {-1, 0, 1} (0 at NaN, as PyTorch)        dL/dx = 0"""

    method = "sign"
    numpy_function = staticmethod(_sign)


class Floor(_Flat):
    """y = floor(x)        dL/dx = 0 (a step function: flat wherever it is differentiable)"""

    method = "floor"
    numpy_function = staticmethod(np.floor)


class Ceil(_Flat):
    """y = ceil(x)        dL/dx = 0"""

    method = "ceil"
    numpy_function = staticmethod(np.ceil)


class Round(_Flat):
    """y = x rounded to the nearest integer (halves to even)        dL/dx = 0"""

    method = "round"
    numpy_function = staticmethod(np.round)


class LocalSlope(Function):
    """y = g * s, s a local slope read from x (relu's [x > 0], a tie's 1/2)
    dL/dg = dL/dy * s        dL/dx = 0

    How a piecewise-linear op's VJP applies its slope to the incoming gradient g.
    Exactly 0 where s is 0, even for an infinite g (PyTorch's masked gradients).
    A function of x with slope 0 (not a free constant), so that under
    create_graph the gradient of relu, abs or leaky_relu stays a function of x
    and differentiating it again gives zeros, as in PyTorch, rather than
    "does not require grad".
    """

    @staticmethod
    def forward(ctx, g, x, s):
        ctx.s = s
        return _apply_slope(g, s)

    @staticmethod
    def backward(ctx, grad):
        return slope_times(grad, None, ctx.s), zeros_for(grad), None


def _all_finite(array) -> bool:
    """True when no element of ``array`` is inf or NaN: a fast check for the exact-path choices.

    One BLAS dot of the array with itself (0.04 ms against np.sum's 0.10 ms
    for 800,000 float32, measured); a square past the largest float also reads
    as "not finite", which only sends the caller down its exact, slower path.
    """
    with np.errstate(invalid="ignore", over="ignore"):
        if array.dtype.kind == "f" and array.itemsize >= 4 and array.flags.c_contiguous:
            flat = array.reshape(-1)
            return bool(np.isfinite(np.dot(flat, flat)))
        return bool(np.isfinite(np.sum(array)))


def _apply_slope(g, s):
    by_rows = _same_layout(g, s)
    if by_rows and s.dtype == np.bool_ and _bitwise_float(g):
        return _kept_where(g, s)  # (float16, 32 and 64: an integer of their width exists)
    # The plain product first: np.where on a random mask is branchy, 3.0 ms
    # against 0.14 ms for g * s on a 64x16x28x28 float32 batch (measured).  The
    # two differ only where g is not finite and s is 0 (inf * 0 is nan), so a
    # product that is not all finite is redone exactly; "+ 0" turns the -0.0
    # of a negative g times 0 into the 0.0 that np.where gives.
    with np.errstate(invalid="ignore"):  # inf * 0
        if by_rows:
            product, finite = _product_by_rows(g, s)
        else:
            product = np.multiply(g, s).astype(g.dtype, copy=False)
            finite = _all_finite(product)
            product = product + 0 if finite else product
    if finite:
        return product
    if s.dtype == np.bool_:
        return np.where(s, g, 0).astype(g.dtype, copy=False)
    return np.where(s == 0, 0, g * s).astype(g.dtype, copy=False)


def _kept_where(g, keep):
    """``np.where(keep, g, 0)`` for a float g and a boolean mask of its layout, by rows.

    ReLU's backward took 219 against 360 us for the product with its finiteness
    check (64x16x28x28 float32, one thread, medians); np.where itself takes 3 ms
    on a random mask.
    """

    def mask(start, stop, bits):  # keep negated into g's integer width: -1 or 0
        np.negative(keep[start:stop].view(np.int8), out=bits, casting="unsafe")

    return _kept_by_bits(g, mask, g[:1].size, calls=2)


def _kept_by_bits(g, mask, cost_per_row, calls):
    """g's bits ANDed, by rows, with the integer mask that ``mask(start, stop, bits)``
    writes into ``bits`` (-1, all ones, to keep; 0 to drop): g's own bits (inf, NaN
    and -0.0 included) or +0.0, exactly what np.where gives.  ``calls``: the NumPy
    calls of a chunk, ``mask``'s and the AND (threads.parallel_for)."""
    ints = np.dtype(f"i{g.itemsize}")
    out = np.empty(g.shape, dtype=g.dtype)
    g_bits, out_bits = g.view(ints), out.view(ints)

    def rows(start, stop):
        bits = out_bits[start:stop]
        mask(start, stop, bits)
        np.bitwise_and(g_bits[start:stop], bits, out=bits)

    parallel_for(g.shape[0], rows, cost_per_row, calls)
    return out


def _two_valued(condition, if_true, if_false, dtype):
    """``np.where(condition, if_true, if_false)`` for two numbers, as a float array of
    ``dtype`` (each number rounded to it once), by integer arithmetic on their bits.

    np.where branches on every element: 166 us on a random 64x1000 mask, against
    about 15 us for the cast of the mask, one product and one sum here (float32,
    one thread, medians).  Unsigned arithmetic wraps, so low + 1 * (high - low)
    is high's bits exactly.
    """
    unsigned = np.dtype(f"u{dtype.itemsize}")
    low = np.array(if_false, dtype=dtype).view(unsigned)
    step = np.array(if_true, dtype=dtype).view(unsigned) - low
    out = condition.astype(unsigned)
    out *= step
    out += low
    return out.view(dtype)


def _chosen(condition, a, b):
    """``np.where(condition, a, b)`` for float arrays of one dtype and ``condition``'s shape,
    by their bits: b ^ ((a ^ b) & mask), mask all ones where ``condition``.  The same
    bits as np.where (NaN, inf and -0.0 included) in five passes without branches
    (np.where on a random mask: see _two_valued)."""
    ints = np.dtype(f"i{a.itemsize}")
    out = np.bitwise_xor(a.view(ints), b.view(ints))
    out &= np.negative(condition.view(np.int8), dtype=ints)
    out ^= b.view(ints)
    return out.view(a.dtype)


def _bitwise_float(*arrays) -> bool:
    """Float arrays of one dtype with an integer of their width (float16, 32 or 64)."""
    dtype = arrays[0].dtype
    return dtype.kind == "f" and dtype.itemsize <= 8 and all(a.dtype == dtype for a in arrays)


def _same_layout(g, s) -> bool:
    """Both row-major arrays of one shape with a first dim (so that rows can be split)."""
    return (
        type(g) is np.ndarray
        and type(s) is np.ndarray
        and g.ndim > 0
        and g.shape == s.shape
        and g.flags.c_contiguous
        and s.flags.c_contiguous
    )


def _product_by_rows(g, s):
    """(g * s + 0 in g's dtype, all finite?), in one pass of the engine's threads over the rows."""
    product = np.empty(g.shape, dtype=g.dtype)
    finite = []

    def rows(start, stop):
        part = product[start:stop]
        np.multiply(g[start:stop], s[start:stop], out=part, casting="unsafe")
        finite.append(_all_finite(part))
        np.add(part, 0, out=part)

    parallel_for(g.shape[0], rows, g[:1].size, calls_per_chunk=3)
    return product, all(finite)


def slope_times(grad: Tensor, x, slope) -> Tensor:
    """``grad * slope`` for a slope array read from x (see ``LocalSlope``).

    The usual backward (no create_graph) records nothing: a plain product.
    """
    if _records(grad, x):
        return LocalSlope.apply(grad, x, slope)
    return Tensor._make(_apply_slope(grad.data, slope), None, None)


def _kept_where_positive(g, y):
    """``np.where(y <= 0, 0, g)`` (ReLU's backward; NaN in y keeps g), by rows, or None
    where it does not apply (other layouts and dtypes: then _apply_slope does it).

    As _kept_where with the mask ``~(y <= 0)``, in three passes instead of four:
    ``(y <= 0) - 1`` is already the integer mask (-1 to keep, 0 to drop).  The MLP's
    64x512 took 12 against 17 us (one thread, medians).
    """
    if not (_same_layout(g, y) and _bitwise_float(g, y)):
        return None

    def mask(start, stop, bits):
        dropped = np.less_equal(y[start:stop], 0)
        np.subtract(dropped.view(np.int8), 1, out=bits, casting="unsafe")

    # three passes, two of them over one-byte masks: the time of about 1.5 element-
    # operations per element (146 us for the CNN's 64x32x14x14, one thread)
    return _kept_by_bits(g, mask, g[:1].size * 3 // 2, calls=3)


def zeros_for(like: Tensor) -> Tensor:
    """A zero gradient of ``like``'s shape and dtype (the derivative of a flat function)."""
    return Tensor._make(np.zeros(like.shape, like.dtype), None, None)


class Atan2(Function):
    """z = atan2(y, x), the angle of the point (x, y)        dL/dy = dL/dz * x / (x^2 + y^2)        dL/dx = -dL/dz * y / (x^2 + y^2)"""

    method = "atan2"

    @staticmethod
    def forward(ctx, y, x):
        ctx.save_for_backward(y, x)
        return np.arctan2(y, x)

    @staticmethod
    def backward(ctx, grad):
        y, x = ctx.saved_tensors
        scale = grad / (x * x + y * y)
        return scale * x, -scale * y


class Sin(Function):
    """y = sin(x)        dL/dx = dL/dy * cos(x)"""

    method = "sin"

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return np.sin(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * x.cos()


class Cos(Function):
    """y = cos(x)        dL/dx = -dL/dy * sin(x)"""

    method = "cos"

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return np.cos(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return -grad * x.sin()


class Tanh(Function):
    """y = tanh(x)        dL/dx = dL/dy * (1 - y^2)"""

    method = "tanh"

    @staticmethod
    def forward(ctx, x):
        y = np.tanh(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved_tensors
        if _records(grad, y):
            return TanhBackward.apply(grad, y)
        return _unrecorded(_tanh_backward(grad.data, y.data))


_ONES = {}


def _one(array):
    """1 as a 0-d array of ``array``'s dtype: ``np.subtract(1, y)`` with a Python 1
    took 0.63 us on 8 float32, with this 0.35 us (NumPy's slow path for Python
    scalars); the same bits, as 1 is exact in every dtype."""
    dtype = array.dtype  # an array or a NumPy scalar
    one = _ONES.get(dtype)
    if one is None:
        one = _ONES[dtype] = np.ones((), dtype)
        one.flags.writeable = False
    return one


def _tanh_backward(g, y):
    """g * (1 - y^2) on arrays: tanh's VJP, TanhBackward's forward."""
    if not _one_buffer_will_do(g, y):
        return np.multiply(g, np.subtract(_one(y), np.multiply(y, y)))
    # the same steps in one buffer, as NumPy's operators reuse a temporary (the
    # nested calls allocate one array each: 390 us against 240 us on 10^6)
    z = np.multiply(y, y)
    np.subtract(_one(y), z, out=z)
    return np.multiply(g, z, out=z)


def _sigmoid_backward(g, y):
    """g * y * (1 - y) on arrays: sigmoid's VJP, SigmoidBackward's forward."""
    if not _one_buffer_will_do(g, y):
        return np.multiply(np.multiply(g, y), np.subtract(_one(y), y))
    z = np.multiply(g, y)  # in two buffers, not three (see _tanh_backward)
    return np.multiply(z, np.subtract(_one(y), y), out=z)


def _product(grad: Tensor, other) -> Tensor:
    """``grad * other`` in a backward rule: Mul, recorded, under create_graph; otherwise
    Mul's own np.multiply on the arrays (see function.recorded_backward): 4.4 -> 3.4 us
    a step on 8 float32."""
    if _records(grad, other):
        return grad * other
    return _unrecorded(np.multiply(grad.data, _data(other)))


def _negated(grad: Tensor) -> Tensor:
    """``-grad`` in a backward rule: Neg under create_graph, else np.negative (as _product)."""
    if _records(grad):
        return -grad
    return _unrecorded(np.negative(grad.data))


def _data(value):
    """A tensor's array; a number or an array as it is (a Python float stays a weak scalar
    for NumPy's promotion, as it is when an op is applied to it)."""
    return value.data if isinstance(value, Tensor) else value


def _one_buffer_will_do(g, y) -> bool:
    """Whether a product of ``g`` with a function of ``y`` may be written into one
    temporary: large arrays of one shape and dtype (small ones pay more for ``out=``
    than a new array costs; 0-d results are NumPy scalars)."""
    return (
        type(y) is np.ndarray
        and y.size >= 4096
        and type(g) is np.ndarray
        and g.shape == y.shape
        and g.dtype == y.dtype
    )


class TanhBackward(Function):
    """z = g * (1 - y^2), with y = tanh(x)        dL/dg = dL/dz * (1 - y^2)        dL/dy = -2 y g dL/dz

    Tanh's VJP as one primitive: the same NumPy operations, so the same bits,
    as the composed ``grad * (1 - y * y)``, without recording three ops (one
    instead of three per backward step: the per-op cost, benchmarks/).  Its
    own VJP is written the way the composed form's would run, so that second
    derivatives are bit for bit the same too.
    """

    @staticmethod
    def forward(ctx, g, y):
        ctx.save_for_backward(g, y)
        return _tanh_backward(g, y)

    @staticmethod
    def backward(ctx, grad):
        g, y = ctx.saved_tensors
        grad_g = TanhBackward.apply(grad, y) if ctx.needs_input_grad[0] else None
        grad_y = None
        if ctx.needs_input_grad[1]:
            through_square = -(grad * g)  # d/d(y*y) of g * (1 - y*y)
            grad_y = through_square * y + through_square * y  # y * y: two uses of y
        return grad_g, grad_y


_OVERFLOW_SAFE_SIGMOID = (np.dtype(np.float32), np.dtype(np.float64))


class Sigmoid(Function):
    """y = 1 / (1 + exp(-x))        dL/dx = dL/dy * y (1 - y)"""

    method = "sigmoid"

    @staticmethod
    def forward(ctx, x):
        x = np.asarray(x)
        if x.dtype in _OVERFLOW_SAFE_SIGMOID and x.ndim:
            # 1 / (1 + exp(-x)), as PyTorch computes it: where exp(-x) overflows
            # (x < -88 in float32) the result is 1 / inf = 0, which is the limit
            # (errors are quiet inside forward).  Four calls on one buffer: for
            # 8 elements the call count is the cost (7 calls took 5.5 us a
            # sigmoid, these 4 about 3); for 10^6 float32 0.9 ms.  Outputs by
            # position and a 1 of y's dtype (_one): 1.27 against 1.57 us for the
            # four calls on 8 float32 with out= and y += 1.
            y = np.negative(x)
            np.exp(y, y)
            np.add(y, _one(y), y)
            np.reciprocal(y, y)
        else:
            # 0-d, integers and float16: with e = exp(-|x|), which cannot
            # overflow, 1 / (1 + e) for x >= 0 and e / (1 + e) for x < 0.  |x|
            # is taken in exp's float dtype (|-128| overflows int8), and the
            # numerator max(e, [x >= 0]) is 1 or e (as e <= 1; NaN stays NaN).
            # float16 is here because its exp(-x) overflows already at x < -11
            # while sigmoid(-11) = 1.7e-5 is representable.
            e = np.empty(x.shape, np.result_type(x.dtype, np.float16))  # exp's dtype
            np.abs(x, out=e)
            np.negative(e, out=e)
            np.exp(e, out=e)
            y = np.empty_like(e)
            np.maximum(e, x >= 0, out=y)
            e += 1
            np.divide(y, e, out=y)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved_tensors
        if _records(grad, y):
            return SigmoidBackward.apply(grad, y)
        return _unrecorded(_sigmoid_backward(grad.data, y.data))


class SigmoidBackward(Function):
    """z = g * y * (1 - y), with y = sigmoid(x)        dL/dg = dL/dz (1 - y) y        dL/dy = dL/dz g (1 - 2 y)

    Sigmoid's VJP as one primitive: the same NumPy operations, so the same
    bits, as the composed ``grad * y * (1 - y)``, without recording three ops;
    its own VJP runs the composed form's steps, so second derivatives match
    bit for bit too.
    """

    @staticmethod
    def forward(ctx, g, y):
        ctx.save_for_backward(g, y)
        return _sigmoid_backward(g, y)

    @staticmethod
    def backward(ctx, grad):
        g, y = ctx.saved_tensors
        one_minus_y = 1 - y
        grad_g = grad_y = None
        if ctx.needs_input_grad[0]:
            grad_g = (grad * one_minus_y) * y
        if ctx.needs_input_grad[1]:
            # y enters twice: through g * y and through 1 - y
            grad_y = (grad * one_minus_y) * g + -(grad * (g * y))
        return grad_g, grad_y


class Relu(Function):
    """y = max(x, 0)        dL/dx = dL/dy * [x > 0]        (1 at NaN, as PyTorch)"""

    method = "relu"

    op_name = "relu"

    @staticmethod
    def forward(ctx, x):
        y = max_with_zero(x)  # NaN stays NaN
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved_tensors
        if not _records(grad, y):
            kept = _kept_where_positive(grad.data, y.data)
            if kept is not None:
                return Tensor._make(kept, None, None)
        # "not y <= 0" rather than "y > 0": a NaN passes its gradient on, as in PyTorch
        return slope_times(grad, y, _not_at_most_zero(y.data))


# NumPy's vectorised loop for np.maximum runs only when both operands are
# arrays; against the scalar 0 it takes an element-at-a-time loop.  Against a
# block of zeros, 64x512 float32 took 4.7 us instead of 12.8 us, 64x32x26x26
# 318 us instead of 648 us (NumPy 2.4, medians).  Blocks of 2**18 (1 MiB of
# zeros): smaller ones pay NumPy's per-call cost and a release of the GIL more
# often (2048: slower than the scalar form), and on two threads each release
# can hand the GIL to the other thread.  The CNN's 64x16x28x28 (six arrays in
# turn, as activations come) took 170 us on one thread and 111 on two in such
# blocks, against 222 and 171 in blocks of 32768.  Small arrays and other
# dtypes keep the scalar form (float64 was slower against zeros once it no
# longer fits in cache, and a short call pays more for the slicing than it
# saves).
_ZERO_BLOCK = 1 << 18
_FLOAT32_ZEROS = np.zeros(_ZERO_BLOCK, np.float32)
_FLOAT32_ZEROS.flags.writeable = False


def max_with_zero(x, out=None):
    """``np.maximum(0, x, out=out)``: ReLU's forward, PyTorch's values.

    Zero comes first: at a tie NumPy returns the second operand, so -0.0 stays -0.0
    as in PyTorch's ``clamp_min(x, 0)`` (see _bound_then_x, also for float16); NaN
    stays NaN.
    """
    if (
        type(x) is not np.ndarray
        or x.dtype != np.float32
        or x.size < 4096
        or not x.flags.c_contiguous
        or (out is not None and (out.dtype != x.dtype or not out.flags.c_contiguous))
    ):
        if getattr(x, "dtype", None) == np.float16:
            return _bound_then_x(np.maximum, 0, x, out)
        if out is not None:
            return np.maximum(0, x, out=out)
        return _ufunc(np.maximum, 0, x)
    zeros = _FLOAT32_ZEROS
    if x.size < 2 * MIN_PARALLEL_WORK:  # one block (the MLP's 64x512), never split in two
        return np.maximum(zeros[: x.size].reshape(x.shape), x, out=out)
    if out is None:
        out = np.empty_like(x)
    flat_x, flat_out = x.reshape(-1), out.reshape(-1)
    row = x[0].size

    def rows(start, stop):
        end = stop * row
        for first in range(start * row, end, _ZERO_BLOCK):
            last = min(first + _ZERO_BLOCK, end)
            np.maximum(zeros[: last - first], flat_x[first:last], out=flat_out[first:last])

    # counted as two calls (threads._split_cost): split in two, the CNN's 64x32x14x14
    # took 113 us against 85 us whole, its 64x16x28x28 163 against 190 (in its step)
    parallel_for(x.shape[0], rows, row, calls_per_chunk=2)
    return out


def _not_at_most_zero(y):
    """``~(y <= 0)``: ReLU's slope, 1 where y > 0 and where y is NaN (as PyTorch), by rows."""
    if type(y) is not np.ndarray or y.ndim == 0 or not y.flags.c_contiguous:
        return ~(y <= 0)
    mask = np.empty(y.shape, dtype=bool)

    def rows(start, stop):
        np.less_equal(y[start:stop], 0, out=mask[start:stop])
        np.logical_not(mask[start:stop], out=mask[start:stop])

    parallel_for(y.shape[0], rows, y[:1].size, calls_per_chunk=2)
    return mask


class LeakyRelu(Function):
    """y = x if x > 0 else s x        dL/dx = dL/dy * (1 if x > 0 else s)"""

    op_name = "leaky_relu"

    @staticmethod
    def forward(ctx, x, slope):
        ctx.save_for_backward(x)
        ctx.slope = slope
        if not _bitwise_float(x):
            # a float x keeps its dtype (float16 too); an integer or bool x is promoted
            # as NumPy promotes x * s (float64 for a float slope), as in elu and softplus
            negative = x * (np.asarray(slope, x.dtype) if x.dtype.kind in "fc" else slope)
            return np.where(x > 0, x, negative)
        # x * (1 or s): x * 1 is x, so the same bits as np.where(x > 0, x, s x), NaN
        # included, without np.where's branches (64x1000 float32: 30 against 200 us)
        return _ufunc(np.multiply, x, _two_valued(x > 0, 1, slope, x.dtype))

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        if _bitwise_float(grad.data):
            slopes = _two_valued(x.data > 0, 1, ctx.slope, grad.dtype)
        else:
            slopes = np.where(x.data > 0, 1.0, ctx.slope).astype(grad.dtype)
        return slope_times(grad, x, slopes), None


class Elu(Function):
    """y = x if x > 0 else a (exp(x) - 1)        dL/dx = dL/dy * (1 if x > 0 else a exp(x))

    A primitive because PyTorch's derivatives at 0 cannot come from one composed
    formula: the slope at 0 is a (the left branch), but its derivative there is 0
    (the right one).  NaN counts as positive (slope 1), as in PyTorch.
    """

    op_name = "elu"

    @staticmethod
    def forward(ctx, x, alpha):
        ctx.save_for_backward(x)
        ctx.alpha = alpha
        if not _bitwise_float(x):
            # np.where, not np.minimum: -0.0 stays -0.0 (as in PyTorch) in every dtype
            negative = alpha * np.expm1(np.where(x > 0, 0, x))
            return np.where(x <= 0, negative, x)
        # the same values without np.where's branches on a random mask (64x1000
        # float32, forward + backward: 0.27 against 1.0 ms): x * [x <= 0] is x where
        # it is used (-0.0 kept), and the branches are chosen by their bits
        nonpositive = x <= 0
        negative = alpha * np.expm1(x * nonpositive)
        return _chosen(nonpositive, negative, x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        if _records(grad, x) or not _bitwise_float(grad.data, x.data):
            strictly_negative = where(x.data < 0, x, 0.0)  # so that the slope's slope at 0 is 0
            slope = where(x.data <= 0, strictly_negative.exp() * ctx.alpha, 1.0)
            return grad * slope, None
        # the same rule on the arrays (nothing is recorded): a exp(min(x, 0)) where
        # x <= 0, 1 elsewhere, the same bits as the recorded form
        data = x.data
        slope = np.exp(data * (data < 0)) * ctx.alpha
        slope = _chosen(data <= 0, slope, np.ones_like(data))
        return Tensor._make(_ufunc(np.multiply, grad.data, slope), None, None), None


class Maximum(Function):
    """z = max(x, y)        dL/dx = dL/dz * [x > y]        (ties share dL/dz equally)"""

    method = "maximum"

    @staticmethod
    def forward(ctx, x, y):
        _check_tensors(x, y, "maximum")
        ctx.save_for_backward(x, y)
        return np.maximum(x, y)

    @staticmethod
    def backward(ctx, grad):
        return _extremum_grads(ctx, grad, np.less)


def _check_tensors(x, y, op):
    """maximum / minimum take two tensors, as in PyTorch (clamp takes a number)."""
    for value in (x, y):
        if not isinstance(value, np.ndarray):
            raise TypeError(
                f"{op}: arguments must be tensors, got a {type(value).__name__} "
                f"(use clamp(min=...) / clamp(max=...) for a number)"
            )


def _extremum_grads(ctx, grad, loses):
    """PyTorch's rule for maximum / minimum: a tie gives each input half, the losing
    input gets 0, and NaN (neither wins nor loses) gives each input the whole gradient."""
    x, y = ctx.saved_tensors
    x_data, y_data = _values(x), _values(y)
    half_at_ties = np.where(x_data == y_data, 0.5, 1.0)
    grads = []
    for needed, own, mine, theirs in ((0, x, x_data, y_data), (1, y, y_data, x_data)):
        if not ctx.needs_input_grad[needed]:
            grads.append(None)
            continue
        share = (half_at_ties * ~loses(mine, theirs)).astype(grad.dtype)
        grads.append(slope_times(grad, own, share))
    return tuple(grads)


def _values(x):
    return x.data if isinstance(x, Tensor) else np.asarray(x)


class Minimum(Function):
    """z = min(x, y)        dL/dx = dL/dz * [x < y]        (ties share dL/dz equally)"""

    method = "minimum"

    @staticmethod
    def forward(ctx, x, y):
        _check_tensors(x, y, "minimum")
        ctx.save_for_backward(x, y)
        return np.minimum(x, y)

    @staticmethod
    def backward(ctx, grad):
        return _extremum_grads(ctx, grad, np.greater)


class Clamp(Function):
    """y = min(max(x, lo), hi)        dL/dx = dL/dy * [lo <= x <= hi]
    dL/dlo = dL/dy * [x < lo < hi]        dL/dhi = dL/dy * [x > hi or hi < lo]

    lo and hi are numbers or tensors (either may be None).  At a tie (x = lo or
    x = hi) the output is x (so -0.0 clamped at 0 stays -0.0) and the whole
    gradient goes to x; with lo > hi the output is hi, and hi takes the
    gradient: PyTorch's choices.
    """

    @staticmethod
    def forward(ctx, x, low, high):
        ctx.save_for_backward(x, low, high)
        y = x if low is None else _bound_then_x(np.maximum, low, x)
        return y if high is None else _bound_then_x(np.minimum, high, y)

    @staticmethod
    def backward(ctx, grad):
        x, low, high = ctx.saved_tensors
        x_data = _values(x)
        lo = None if low is None else _values(low)
        hi = None if high is None else _values(high)
        grad_x = grad_low = grad_high = None
        if ctx.needs_input_grad[0]:
            inside = np.ones(np.shape(x_data), dtype=bool)
            if lo is not None:
                inside = inside & (x_data >= lo)
            if hi is not None:
                inside = inside & (x_data <= hi)
            grad_x = slope_times(grad, x, _broadcast(inside, grad))
        if ctx.needs_input_grad[1]:
            below = x_data < lo if hi is None else (x_data < lo) & (lo < hi)
            grad_low = slope_times(grad, low, _broadcast(below, grad))
        if ctx.needs_input_grad[2]:
            above = x_data > hi if lo is None else (x_data > hi) | (hi < lo)
            grad_high = slope_times(grad, high, _broadcast(above, grad))
        return grad_x, grad_low, grad_high


def _bound_then_x(extremum, bound, x, out=None):
    """``extremum(bound, x)`` where a tie returns x: NumPy returns the second operand
    (np.clip returns the bound), so -0.0 clamped at 0 stays -0.0, as in PyTorch.
    NumPy's float16 loops return +0.0 at every zero tie: float16 goes through float32."""
    if np.result_type(bound, x) == np.float16:
        out = np.empty(np.shape(x), np.float16) if out is None else out
        return extremum(bound, x, out=out, dtype=np.float32)
    return extremum(bound, x, out=out)


def _broadcast(mask, like):
    return np.broadcast_to(mask, like.shape)


class Where(Function):
    """z = c ? x : y        dL/dx = c ? dL/dz : 0        dL/dy = c ? 0 : dL/dz"""

    @staticmethod
    def forward(ctx, condition, x, y):
        ctx.save_for_backward(condition)
        if (
            type(x) is np.ndarray
            and type(y) is np.ndarray
            and condition.dtype == np.bool_
            and x.shape == y.shape == condition.shape
            and _bitwise_float(x, y)
        ):
            # by bits: np.where branches on every element (166 us on a random
            # 64x1000 mask, float32), this takes five passes without branches
            return _chosen(condition, x, y)
        return np.where(condition, x, y)

    @staticmethod
    def backward(ctx, grad):
        (condition,) = ctx.saved_tensors
        needs = ctx.needs_input_grad
        g, keep = grad.data, condition.data
        if (
            not _records(grad, None)
            and keep.dtype == np.bool_
            and _same_layout(g, keep)
            and _bitwise_float(g)
        ):  # the same rule on the arrays, masked by bits
            grad_x = constant(_kept_where(g, keep)) if needs[1] else None
            grad_y = constant(_kept_where(g, ~keep)) if needs[2] else None
            return None, grad_x, grad_y
        grad_x = where(condition, grad, 0.0) if needs[1] else None
        grad_y = where(condition, 0.0, grad) if needs[2] else None
        return None, grad_x, grad_y


class Cast(Function):
    """y = x as dtype        dL/dx = dL/dy as x's dtype

    Only between floating point dtypes: a cast to an integer or bool dtype
    rounds, has no gradient, and gives a tensor that does not require grad
    (``Tensor.to`` does not record it), as in PyTorch.
    """

    @staticmethod
    def forward(ctx, x, dtype):
        ctx.input_dtype = x.dtype
        return x.astype(dtype)

    @staticmethod
    def backward(ctx, grad):
        return grad.to(ctx.input_dtype), None


class Clone(Function):
    """y = x (a copy)        dL/dx = dL/dy"""

    method = "clone"

    @staticmethod
    def forward(ctx, x):
        return np.array(x, copy=True)

    @staticmethod
    def backward(ctx, grad):
        return grad


class Contiguous(Function):
    """y = x copied to row-major (C-contiguous) memory        dL/dx = dL/dy

    ``clone`` keeps the memory layout (like PyTorch's preserve_format);
    ``contiguous`` is the copy that lays a transposed or strided view out in
    row-major order.
    """

    @staticmethod
    def forward(ctx, x):
        return np.ascontiguousarray(x)

    @staticmethod
    def backward(ctx, grad):
        return grad


def where(condition, x, y) -> Tensor:
    """``condition ? x : y`` elementwise, with NumPy broadcasting."""
    if isinstance(condition, Tensor):
        condition = condition.data
    condition = np.asarray(condition)
    if condition.dtype != np.bool_:
        condition = condition.astype(bool)
    return Where.apply(condition, x, y)


def _erf_in_dtype(x):
    """erf(x) computed in float64 (see ops/special.py), rounded to x's float dtype
    (float32 for integers and bool, as PyTorch).

    Split over the engine's threads in pieces of at least ``MIN_PARALLEL_WORK``
    elements: a chunk makes some 40 NumPy calls, each a hand-over of the GIL, so
    smaller pieces lose (16K elements took 395 us on two threads against 168 on
    one; 256K took 1.43 ms against 2.48, medians).
    """
    if x.dtype.kind == "c":
        raise TypeError(f"expected real numbers, got {x.dtype} values")
    flat = x.reshape(-1)
    out = np.empty(flat.shape, x.dtype if x.dtype.kind == "f" else np.float32)

    def chunk(first, stop):
        out[first:stop] = _erf(flat[first:stop])

    parallel_for(flat.size, chunk)
    return out.reshape(x.shape)


class Erf(Function):
    """y = erf(x) = 2/sqrt(pi) int_0^x exp(-t^2) dt        dL/dx = dL/dy * 2/sqrt(pi) exp(-x^2)"""

    method = "erf"

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return _erf_in_dtype(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * (2.0 / math.sqrt(math.pi)) * (-(x * x)).exp()


class Softplus(Function):
    """y = log(1 + exp(x))        dL/dx = dL/dy * sigmoid(x)

    A primitive for stability: NumPy's ``logaddexp(0, x)`` neither overflows for
    large x nor loses the tiny values for very negative x, and unlike a composite
    of relu and abs it has no kink at 0 to pick a wrong sub-gradient from.
    """

    @staticmethod
    def forward(ctx, x, threshold=math.inf):
        ctx.save_for_backward(x)
        ctx.threshold = threshold
        if x.dtype.kind != "f":
            return np.logaddexp(np.zeros((), x.dtype), x)
        # logaddexp(0, x) = max(x, 0) + log1p(exp(-|x|)), NumPy's own formula for it,
        # in vectorised passes: np.logaddexp runs a scalar loop, 1.38 ms for 64x1000
        # float32.  float16 and float32 are computed in float64 and rounded once:
        # 0.21 ms, and the correctly rounded value (logaddexp's float32 loop gave it
        # for 84% of standard normal inputs, float32 passes for 72%, up to 3 units
        # off); float64 in its own passes, within 2 units in the last place.
        wide = x.astype(np.float64) if x.itemsize < 8 else x
        y = np.maximum(wide, 0) + np.log1p(np.exp(-np.abs(wide)))
        return y.astype(x.dtype, copy=False)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        # F.softplus switches to x above its threshold; at x = threshold PyTorch
        # takes this slope but the switched branch's second derivative, 0: the
        # slope is held constant from the threshold on.
        held = x.data >= ctx.threshold
        slope = (where(held, x.detach(), x) if held.any() else x).sigmoid()
        grads = (grad * slope,)
        return grads if len(ctx.needs_input_grad) == 1 else (*grads, None)
