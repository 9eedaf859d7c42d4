"""Elementwise operations: each forward and its vector-Jacobian product.

Broadcasting is undone by the engine (``sum_to_shape``), so a backward here
returns gradients with the broadcast shape and never sums by hand.  Every
docstring's first line is the forward and the VJP, as on the lecture slides.
"""

from __future__ import annotations

import numpy as np

from ..function import Function
from ..tensor import Tensor


class Add(Function):
    """z = x + y        dL/dx = dL/dz        dL/dy = dL/dz"""

    @staticmethod
    def forward(ctx, x, y):
        return np.add(x, y)

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
        return grad, (-grad if ctx.needs_input_grad[1] else None)


class Neg(Function):
    """y = -x        dL/dx = -dL/dy"""

    @staticmethod
    def forward(ctx, x):
        return np.negative(x)

    @staticmethod
    def backward(ctx, grad):
        return -grad


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
        return (grad * y if y is not None else None), (grad * x if x is not None else None)


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
        grad_over_y = grad / y
        grad_x = grad_over_y if ctx.needs_input_grad[0] else None
        grad_y = -grad_over_y * x / y if ctx.needs_input_grad[1] else None
        return grad_x, grad_y


class Pow(Function):
    """z = x ** p        dL/dx = dL/dz * p x^(p-1)        dL/dp = dL/dz * z log(x)"""

    @staticmethod
    def forward(ctx, x, p):
        z = np.power(x, p)
        ctx.save_for_backward(x, p, z if ctx.needs_input_grad[1] else None)
        return z

    @staticmethod
    def backward(ctx, grad):
        x, p, z = ctx.saved_tensors
        grad_x = grad_p = None
        if ctx.needs_input_grad[0]:
            grad_x = grad * p * x ** (p - 1)
        if ctx.needs_input_grad[1]:
            # x = 0 with p >= 0 has a zero derivative in p (PyTorch's convention),
            # not 0 * log(0) = nan.
            # x may be a Python number (2.0 ** t): read values with np.asarray.
            x_data = x.data if isinstance(x, Tensor) else np.asarray(x)
            p_data = p.data if isinstance(p, Tensor) else np.asarray(p)
            safe = (x_data != 0) | (p_data < 0)
            if isinstance(x, Tensor):  # where() keeps x's graph: create_graph needs it
                log_x = where(safe, x, 1.0).log()
            else:
                log_x = Tensor._make(np.log(np.where(safe, x_data, 1)).astype(z.dtype), None, None)
            grad_p = where(safe, grad * z * log_x, 0.0)
        return grad_x, grad_p


class Exp(Function):
    """y = exp(x)        dL/dx = dL/dy * y"""

    @staticmethod
    def forward(ctx, x):
        y = np.exp(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved_tensors
        return grad * y


class Log(Function):
    """y = log(x)        dL/dx = dL/dy / x"""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return np.log(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad / x


class Sqrt(Function):
    """y = sqrt(x)        dL/dx = dL/dy / (2 y)"""

    @staticmethod
    def forward(ctx, x):
        y = np.sqrt(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved_tensors
        return grad / (2 * y)


class Abs(Function):
    """y = |x|        dL/dx = dL/dy * sign(x)"""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(np.sign(x))
        return np.abs(x)

    @staticmethod
    def backward(ctx, grad):
        (sign,) = ctx.saved_tensors
        return grad * sign


class Sin(Function):
    """y = sin(x)        dL/dx = dL/dy * cos(x)"""

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

    @staticmethod
    def forward(ctx, x):
        y = np.tanh(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved_tensors
        return grad * (1 - y * y)


class Sigmoid(Function):
    """y = 1 / (1 + exp(-x))        dL/dx = dL/dy * y (1 - y)"""

    @staticmethod
    def forward(ctx, x):
        # With e = exp(-|x|) (no overflow): 1 / (1 + e) for x >= 0 and e / (1 + e)
        # for x < 0.  The numerator max(e, [x >= 0]) is 1 or e (as e <= 1, and
        # NaN stays NaN).  Arithmetic, not np.where: on a random sign pattern
        # np.where(x >= 0, ...) took 3.6 ms of the 4-13 ms for 10^6 floats; this
        # form, one exp and cheap passes in place, gives the same bits (measured:
        # 1.2 ms for 10^6 float32, NumPy's unguarded 1 / (1 + exp(-x)) 0.9 ms).
        x = np.asarray(x)
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
        return grad * y * (1 - y)


class Relu(Function):
    """y = max(x, 0)        dL/dx = dL/dy * [x > 0]"""

    op_name = "relu"

    @staticmethod
    def forward(ctx, x):
        y = np.maximum(x, 0)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved_tensors
        return grad * (y > 0)


class Maximum(Function):
    """z = max(x, y)        dL/dx = dL/dz * [x > y]        (ties share dL/dz equally)"""

    @staticmethod
    def forward(ctx, x, y):
        ctx.save_for_backward(x, y)
        return np.maximum(x, y)

    @staticmethod
    def backward(ctx, grad):
        x, y = ctx.saved_tensors
        share = (x.data > y.data) + 0.5 * (x.data == y.data)
        share = Tensor._make(np.asarray(share, dtype=grad.dtype), None, None)
        return grad * share, grad * (1 - share)


class Minimum(Function):
    """z = min(x, y)        dL/dx = dL/dz * [x < y]        (ties share dL/dz equally)"""

    @staticmethod
    def forward(ctx, x, y):
        ctx.save_for_backward(x, y)
        return np.minimum(x, y)

    @staticmethod
    def backward(ctx, grad):
        x, y = ctx.saved_tensors
        share = (x.data < y.data) + 0.5 * (x.data == y.data)
        share = Tensor._make(np.asarray(share, dtype=grad.dtype), None, None)
        return grad * share, grad * (1 - share)


class Clamp(Function):
    """y = min(max(x, lo), hi)        dL/dx = dL/dy * [lo <= x <= hi]"""

    @staticmethod
    def forward(ctx, x, low, high):
        inside = np.ones(np.shape(x), dtype=bool)
        if low is not None:
            inside &= x >= low
        if high is not None:
            inside &= x <= high
        ctx.save_for_backward(inside)
        return np.clip(x, low, high)

    @staticmethod
    def backward(ctx, grad):
        (inside,) = ctx.saved_tensors
        return grad * inside, None, None


class Where(Function):
    """z = c ? x : y        dL/dx = c ? dL/dz : 0        dL/dy = c ? 0 : dL/dz"""

    @staticmethod
    def forward(ctx, condition, x, y):
        ctx.save_for_backward(condition)
        return np.where(condition, x, y)

    @staticmethod
    def backward(ctx, grad):
        (condition,) = ctx.saved_tensors
        grad_x = where(condition, grad, 0.0) if ctx.needs_input_grad[1] else None
        grad_y = where(condition, 0.0, grad) if ctx.needs_input_grad[2] else None
        return None, grad_x, grad_y


class Cast(Function):
    """y = x as dtype        dL/dx = dL/dy as x's dtype"""

    @staticmethod
    def forward(ctx, x, dtype):
        ctx.input_dtype = x.dtype
        return x.astype(dtype)

    @staticmethod
    def backward(ctx, grad):
        return grad.to(ctx.input_dtype), None


class Clone(Function):
    """y = x (a copy)        dL/dx = dL/dy"""

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
