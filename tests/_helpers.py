"""What several test files share: a user-defined op, written as a student would."""

from __future__ import annotations

import autodiff


class Cube(autodiff.Function):
    """y = x^3        dL/dx = dL/dy * 3 x^2"""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x**3

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * 3 * x**2
