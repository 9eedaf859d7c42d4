"""``Conv2d``: 2-D convolution (cross-correlation), as unfold + matrix product."""

from __future__ import annotations

import math

from .. import functional as F  # noqa: N812 (PyTorch's name)
from .. import init
from ..module import Module
from .linear import add_weight_and_bias

__all__ = ["Conv2d"]


class Conv2d(Module):
    """y[n, o] = b[o] + sum_c w[o, c] (star) x[n, c]  over (N, C_in, H, W) inputs.

    Output size per spatial dim: floor((H + 2 p - d (k - 1) - 1) / s) + 1.
    ``padding`` is an int, a pair, "valid" (none) or "same" (output size = input
    size, stride 1).  ``groups`` splits the channels into independent groups.
    Initialised as PyTorch (Kaiming-uniform a = sqrt(5); bias U(+-1/sqrt(fan_in))).

    Example::

        >>> conv = nn.Conv2d(1, 8, kernel_size=3, padding=1)
        >>> conv(autodiff.randn(64, 1, 28, 28)).shape
        (64, 8, 28, 28)
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size,
        stride=1,
        padding=0,
        dilation=1,
        groups: int = 1,
        bias: bool = True,
        padding_mode: str = "zeros",
        device=None,
        dtype=None,
    ):
        super().__init__()
        if groups <= 0:
            raise ValueError("groups must be a positive integer")
        if in_channels % groups != 0:
            raise ValueError("in_channels must be divisible by groups")
        if out_channels % groups != 0:
            raise ValueError("out_channels must be divisible by groups")
        if padding_mode != "zeros":
            raise NotImplementedError(
                f"Conv2d: padding_mode {padding_mode!r} is not implemented (only 'zeros')"
            )
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = F._pair(kernel_size, "kernel_size", "Conv2d")
        self.stride = F._pair(stride, "stride", "Conv2d")
        if isinstance(padding, str):
            if padding not in ("same", "valid"):
                raise ValueError(
                    f"Invalid padding string {padding!r}, should be one of {{'valid', 'same'}}"
                )
            if padding == "same" and any(s != 1 for s in self.stride):
                raise ValueError("padding='same' is not supported for strided convolutions")
            self.padding = padding
        else:
            self.padding = F._pair(padding, "padding", "Conv2d")
        self.dilation = F._pair(dilation, "dilation", "Conv2d")
        self.groups = groups
        self.padding_mode = padding_mode
        self.transposed = False
        self.output_padding = (0, 0)
        weight_shape = (out_channels, in_channels // groups, *self.kernel_size)
        add_weight_and_bias(self, weight_shape, bias, dtype, device)

    def reset_parameters(self) -> None:
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in, _ = init._calculate_fan_in_and_fan_out(self.weight)
            if fan_in != 0:
                bound = 1 / math.sqrt(fan_in)
                init.uniform_(self.bias, -bound, bound)

    def forward(self, input):
        input = F._tensor(input)
        if input.ndim != 4:
            raise RuntimeError(
                f"{self._describe()}: expected a 4-D input (batch, channels, height, width), "
                f"got shape {input.shape}"
                + (
                    "; add a batch dim with x.unsqueeze(0)"
                    if input.ndim == 3 and input.shape[0] == self.in_channels
                    else ""
                )
            )
        if input.shape[1] != self.in_channels:
            raise RuntimeError(
                f"{self._describe()}: expected input with {self.in_channels} channels "
                f"(dim 1), got input of shape {input.shape}"
            )
        return F.conv2d(
            input, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups
        )

    def _describe(self):
        return f"Conv2d({self.extra_repr()})"

    def extra_repr(self) -> str:
        s = "{in_channels}, {out_channels}, kernel_size={kernel_size}, stride={stride}"
        if self.padding != (0,) * len(self.padding):
            s += ", padding={padding}"
        if self.dilation != (1, 1):
            s += ", dilation={dilation}"
        if self.groups != 1:
            s += ", groups={groups}"
        if self.bias is None:
            s += ", bias=False"
        if self.padding_mode != "zeros":
            s += ", padding_mode={padding_mode}"
        return s.format(**self.__dict__)
