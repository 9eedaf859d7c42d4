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


class CubeWithConstantSlope(autodiff.Function):
    """y = x^3 whose backward uses 3 x^2 as a constant: right first derivatives, but the
    recorded backward pass has no graph in x, so second derivatives are lost."""

    @staticmethod
    def forward(ctx, x):
        ctx.slope = 3 * x**2
        return x**3

    @staticmethod
    def backward(ctx, grad):
        return grad * autodiff.tensor(ctx.slope)


def private_file_behind_a_symlink(tmp_path):
    """(real, link): ``tmp_path/store/model.pth`` holding b"old" with mode 0o600, and the
    symlink ``tmp_path/model.pth`` to it; a save through the link must keep both."""
    real = tmp_path / "store" / "model.pth"
    real.parent.mkdir()
    real.write_bytes(b"old")
    real.chmod(0o600)
    link = tmp_path / "model.pth"
    link.symlink_to(real)
    return real, link
