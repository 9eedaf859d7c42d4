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


def assert_same_outputs_as_pytorch(ours, theirs, seed):
    """Our model and PyTorch's give the same output on one random batch of two 28x28 images."""
    import numpy as np
    import torch

    x = np.random.default_rng(seed).random((2, 1, 28, 28), dtype=np.float32)
    np.testing.assert_allclose(
        ours(autodiff.tensor(x)).data,
        theirs(torch.tensor(x)).detach().numpy(),
        rtol=1e-5,
        atol=1e-6,
    )


class Multiply(autodiff.Function):
    """z = x * y        dL/dx = dL/dz * y, dL/dy = dL/dz * x"""

    @staticmethod
    def forward(ctx, x, y):
        ctx.save_for_backward(x, y)
        return x * y

    @staticmethod
    def backward(ctx, grad):
        x, y = ctx.saved_tensors
        return grad * y, grad * x
