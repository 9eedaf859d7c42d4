"""``Linear``, ``Identity``, ``Flatten``, ``Unflatten``."""

from __future__ import annotations

import math

import autodiff

from .. import functional as F  # noqa: N812 (PyTorch's name)
from .. import init
from ..module import Module, Parameter

__all__ = ["Flatten", "Identity", "Linear", "Unflatten"]


class Identity(Module):
    """y = x (arguments are accepted and ignored, as in PyTorch)."""

    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, input):
        return input


class Linear(Module):
    """y = x W^T + b, W of shape (out_features, in_features), b of shape (out_features).

    Initialised as PyTorch: W ~ U(-1/sqrt(in), 1/sqrt(in)) (Kaiming-uniform with
    a = sqrt(5)) and b ~ U(-1/sqrt(in), 1/sqrt(in)).

    Example::

        >>> layer = nn.Linear(784, 512)
        >>> layer(autodiff.randn(64, 784)).shape
        (64, 512)
    """

    def __init__(
        self, in_features: int, out_features: int, bias: bool = True, device=None, dtype=None
    ):
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        add_weight_and_bias(self, (out_features, in_features), bias, dtype, device)

    def reset_parameters(self) -> None:
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in = self.weight.shape[1]
            bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
            init.uniform_(self.bias, -bound, bound)

    def forward(self, input):
        input = F._tensor(input)
        if input.ndim == 0 or input.shape[-1] != self.in_features:
            raise RuntimeError(
                f"Linear(in_features={self.in_features}, out_features={self.out_features}): "
                f"expected input with {self.in_features} features in its last dim, got input "
                f"of shape {input.shape}"
                + (
                    f" (flatten images first, e.g. nn.Flatten(); {math.prod(input.shape[1:])} "
                    "values per sample)"
                    if input.ndim > 2
                    else ""
                )
            )
        return F.linear(input, self.weight, self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class Flatten(Module):
    """Flatten dims ``start_dim`` to ``end_dim`` into one (by default all but the batch dim)."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1):
        super().__init__()
        self.start_dim = start_dim
        self.end_dim = end_dim

    def forward(self, input):
        input = F._tensor(input)
        attrs = {"start_dim": self.start_dim, "end_dim": self.end_dim}
        with autodiff.region(
            "flatten",
            (input,),
            attrs,
            formula="y = x.reshape(N, -1)",
            rule="dL/dx = g.reshape(x.shape)",
        ) as marked:
            marked.output = output = input.flatten(self.start_dim, self.end_dim)
        return output

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Unflatten(Module):
    """Split dim ``dim`` into ``unflattened_size``: (N, 784) -> (N, 1, 28, 28)."""

    def __init__(self, dim, unflattened_size):
        super().__init__()
        self.dim = dim
        self.unflattened_size = tuple(unflattened_size)

    def forward(self, input):
        return F._tensor(input).unflatten(self.dim, self.unflattened_size)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, unflattened_size={self.unflattened_size}"


def add_weight_and_bias(module, weight_shape, bias: bool, dtype, device=None) -> None:
    """Register ``module.weight`` of ``weight_shape`` and ``module.bias`` (one per output,
    the weight's first dim; None without ``bias``), as PyTorch's Linear and Conv2d do, and
    fill them with the module's ``reset_parameters``.  A ``device`` other than the CPU raises."""
    dtype = dtype or autodiff.float32
    module.weight = Parameter(autodiff.empty(*weight_shape, dtype=dtype, device=device))
    if bias:
        module.bias = Parameter(autodiff.empty(weight_shape[0], dtype=dtype, device=device))
    else:
        module.register_parameter("bias", None)
    module.reset_parameters()
