"""Batch normalisation: ``BatchNorm1d``, ``BatchNorm2d``."""

from __future__ import annotations

import autodiff

from .. import functional as F  # noqa: N812 (PyTorch's name)
from .. import init
from ..module import Module, Parameter

__all__ = ["BatchNorm1d", "BatchNorm2d"]


class _BatchNorm(Module):
    """y = (x - E[x]) / sqrt(Var[x] + eps) * gamma + beta, per channel.

    Training: batch statistics normalise; ``running_mean``/``running_var``
    (buffers, saved in the state dict) move by ``momentum`` (the unbiased variance
    goes into ``running_var``); ``momentum=None`` gives a cumulative average.
    Evaluation (``model.eval()``): the running statistics normalise.
    """

    _expected_dims: tuple = ()

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum=0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        device=None,
        dtype=None,
        *,
        bias: bool = True,
    ):
        super().__init__()
        self.num_features = num_features
        self.eps = eps
        self.momentum = momentum
        self.affine = affine
        self.track_running_stats = track_running_stats
        dtype = dtype or autodiff.float32
        if affine:
            self.weight = Parameter(autodiff.empty(num_features, dtype=dtype, device=device))
            if bias:
                self.bias = Parameter(autodiff.empty(num_features, dtype=dtype, device=device))
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if track_running_stats:
            self.register_buffer(
                "running_mean", autodiff.zeros(num_features, dtype=dtype, device=device)
            )
            self.register_buffer(
                "running_var", autodiff.ones(num_features, dtype=dtype, device=device)
            )
            self.register_buffer("num_batches_tracked", autodiff.tensor(0, dtype=autodiff.long))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)
        self.reset_parameters()

    def reset_running_stats(self) -> None:
        if self.track_running_stats:
            self.running_mean.data[...] = 0
            self.running_var.data[...] = 1
            self.num_batches_tracked.data[...] = 0

    def reset_parameters(self) -> None:
        self.reset_running_stats()
        if self.affine:
            init.ones_(self.weight)
            if self.bias is not None:
                init.zeros_(self.bias)

    def forward(self, input):
        input = F._tensor(input)
        if input.ndim not in self._expected_dims:
            raise ValueError(
                f"{self._get_name()}({self.num_features}): expected "
                f"{' or '.join(f'{d}D' for d in self._expected_dims)} input, got shape {input.shape} "
                f"({input.ndim}D)"
            )
        if input.shape[1] != self.num_features:
            raise RuntimeError(
                f"{self._get_name()}({self.num_features}): expected input with "
                f"{self.num_features} channels (dim 1), got input of shape {input.shape}"
            )
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats:
            with autodiff.no_grad():
                self.num_batches_tracked.add_(1)
            if self.momentum is None:
                factor = 1.0 / float(self.num_batches_tracked.data)
        use_batch_stats = self.training or self.running_mean is None
        return F.batch_norm(
            input,
            self.running_mean if not self.training or self.track_running_stats else None,
            self.running_var if not self.training or self.track_running_stats else None,
            self.weight,
            self.bias,
            use_batch_stats,
            factor,
            self.eps,
        )

    def extra_repr(self) -> str:
        return (
            f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
            f"bias={self.bias is not None}, track_running_stats={self.track_running_stats}"
        )


class BatchNorm1d(_BatchNorm):
    """Batch norm over (N, C) or (N, C, L) inputs, per feature C."""

    _expected_dims = (2, 3)


class BatchNorm2d(_BatchNorm):
    """Batch norm over (N, C, H, W) inputs, per channel C."""

    _expected_dims = (4,)
