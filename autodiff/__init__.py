"""autodiff: a reverse-mode automatic differentiation engine on NumPy.

Written to be read: every operation is a ``Function`` whose forward and
vector-Jacobian product sit side by side.  Its names and semantics follow
PyTorch's, so that ``import autodiff as torch`` runs PyTorch's introductory code.

    >>> import autodiff
    >>> x = autodiff.tensor([1.0, 2.0], requires_grad=True)
    >>> (x ** 2).sum().backward()
    >>> x.grad
    tensor([2., 4.])
"""

from __future__ import annotations

import numpy as _np

from . import accelerator, allocation, ops  # allocation: keeps freed buffers (see its doc)
from .conversion import get_default_dtype
from .creation import (
    arange,
    as_tensor,
    bernoulli,
    empty,
    empty_like,
    eye,
    from_numpy,
    full,
    full_like,
    linspace,
    ones,
    ones_like,
    rand,
    rand_like,
    randint,
    randn,
    randn_like,
    randperm,
    tensor,
    zeros,
    zeros_like,
)
from .engine import backward_steps, grad
from .function import Function, RemovableHandle, observe
from .function import Node as FunctionCtx
from .grad_mode import (
    detect_anomaly,
    enable_grad,
    inference_mode,
    is_anomaly_check_nan_enabled,
    is_anomaly_enabled,
    is_grad_enabled,
    is_inference_mode_enabled,
    no_grad,
    set_detect_anomaly,
    set_grad_enabled,
)
from .gradcheck import GradcheckError, gradcheck, gradgradcheck
from .ops import broadcast_to, cat, chunk, gather, logsumexp, pad, split, stack, where
from .random import Generator, initial_seed, manual_seed, seed
from .region import Region, region
from .tensor import Device as device
from .tensor import Tensor, constant
from .threads import get_num_threads, set_num_threads

__version__ = "0.1.0"

# dtypes, as PyTorch names them (they are NumPy dtypes here)
float32 = float = _np.dtype("float32")
float64 = double = _np.dtype("float64")
float16 = half = _np.dtype("float16")
int64 = long = _np.dtype("int64")
int32 = int = _np.dtype("int32")
int16 = short = _np.dtype("int16")
int8 = _np.dtype("int8")
uint8 = _np.dtype("uint8")
bool = _np.dtype("bool")
dtype = _np.dtype

Size = tuple


def _mirror(name):
    """``autodiff.exp(x)`` is ``x.exp()``: module functions mirror the methods."""
    method = getattr(Tensor, name)

    def function(input, *args, **kwargs):
        if not isinstance(input, Tensor):
            input = tensor(input)
        return method(input, *args, **kwargs)

    function.__name__ = name
    function.__qualname__ = name
    function.__doc__ = f"``autodiff.{name}(x, ...)`` is ``x.{name}(...)``."
    return function


# autodiff.<name>(x, ...) is x.<name>(...): for the methods written in tensor.py
# (they parse arguments or compose ops), and for every method an op class names.
_COMPOSED_METHODS = [
    "add",
    "sub",
    "mul",
    "div",
    "pow",
    "square",
    "mm",
    "clamp",
    "clip",
    "sum",
    "mean",
    "var",
    "std",
    "max",
    "min",
    "amax",
    "amin",
    "argmax",
    "argmin",
    "prod",
    "cumsum",
    "cumprod",
    "reshape",
    "flatten",
    "unflatten",
    "permute",
    "transpose",
    "t",
    "unsqueeze",
    "squeeze",
    "numel",
    "detach",
    "softmax",
    "log_softmax",
    "isnan",
    "isinf",
    "isfinite",
    "allclose",
    "equal",
    "eq",
    "ne",
    "lt",
    "le",
    "gt",
    "ge",
    "masked_fill",
    "logical_not",
    "any",
    "all",
]
for _name in _COMPOSED_METHODS + [
    name for op in ops.primitives() for name in ops.method_names(op) if not name.startswith("_")
]:
    globals()[_name] = _mirror(_name)
del _name

subtract, multiply, divide = sub, mul, div  # noqa: F821 (made by _mirror above)
absolute, clip = abs, clamp  # noqa: F821


def is_tensor(obj) -> bool:
    return isinstance(obj, Tensor)


def set_printoptions(precision=None, threshold=None, linewidth=None, **_ignored):
    """Set how tensors print (NumPy's print options underneath)."""
    given = {"precision": precision, "threshold": threshold, "linewidth": linewidth}
    options = {k: v for k, v in given.items() if v is not None}
    _np.set_printoptions(**options)


# Imported last, since they need the engine: autodiff.optim.SGD (as torch.optim),
# autodiff.functional.jacobian (as torch.autograd.functional), save/load.
# autodiff.onnx.export imports the onnx package only when it is called.
from . import functional, onnx, optim  # noqa: E402
from .serialization import load, save  # noqa: E402
