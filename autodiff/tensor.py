"""``Tensor``: a NumPy array that remembers how it was computed.

A tensor holds its value in ``.data`` (a NumPy array).  When it is computed by an
operation while grad mode is on and some input requires grad, ``.grad_fn``
points to the recorded node, and ``backward()`` fills ``.grad`` of the leaves.
Methods delegate to the operations in ``autodiff.ops``.  ``Tensor(data)`` reads its
data as ``torch.tensor`` does, in ``autodiff.conversion``.
"""

from __future__ import annotations

import warnings

import numpy as np

from .conversion import as_dtype, to_array
from .errors import ShapeError
from .grad_mode import modes


class Device:
    """Where a tensor lives; this engine computes on the CPU only."""

    __slots__ = ("type", "index")

    def __init__(self, type="cpu", index=None):
        if isinstance(type, Device):
            type, index = type.type, type.index
        name = str(type).split(":")[0]
        if name != "cpu":
            raise RuntimeError(
                f"device: autodiff computes on the CPU only; got device {type!r} "
                "(use 'cpu', or autodiff.accelerator.is_available() to choose)"
            )
        self.type = "cpu"
        self.index = index

    def __eq__(self, other):
        return isinstance(other, (Device, str)) and str(other).split(":")[0] == "cpu"

    def __hash__(self):
        return hash("cpu")

    def __str__(self):
        return "cpu"

    def __repr__(self):
        return "device(type='cpu')"


CPU = Device("cpu")


def _check_can_require_grad(dtype, op="requires_grad"):
    if dtype.kind not in "fc":
        raise RuntimeError(
            f"{op}: only tensors of floating point dtype can require gradients, "
            f"got dtype {dtype} (convert with .float() first)"
        )


def _cast(name: str, dtype):
    """The method ``Tensor.<name>()``: ``self.to(dtype)``."""

    def cast(self) -> Tensor:
        return self.to(dtype)

    cast.__name__, cast.__qualname__ = name, f"Tensor.{name}"
    cast.__doc__ = (
        f"``self.to({np.dtype(dtype).name})``: as PyTorch, self when already of that dtype."
    )
    return cast


def _comparison(name: str, ufunc):
    """The method ``Tensor.<name>(other)`` (and its operator): ``ufunc`` element-wise, a
    boolean tensor outside the graph."""

    def compare(self, other):
        return _compare(ufunc, self, other)

    compare.__name__, compare.__qualname__ = name, f"Tensor.{name}"
    return compare


class Tensor:
    """A multi-dimensional array with automatic differentiation.

    Example::

        >>> x = autodiff.tensor([1.0, 2.0, 3.0], requires_grad=True)
        >>> y = (x * x).sum()          # y = sum x_i^2
        >>> y.backward()               # dy/dx = 2 x
        >>> x.grad
        tensor([2., 4., 6.])
    """

    __slots__ = (
        "data",
        "_requires_grad",
        "_grad",
        "grad_fn",
        "_version",
        "_accumulator",
        "_hooks",
        "_base",
        "_view_of",  # a view's (Function, inputs, its base's grad_fn then): see rebase_view
        "_view_version",  # the shared version counter when the view's history was made
        "name",
        "__weakref__",
    )

    # NumPy defers to our reflected operators (array + tensor -> tensor.__radd__).
    __array_ufunc__ = None
    __array_priority__ = 1000

    def __init__(self, data, requires_grad=False, dtype=None):
        array = to_array(data, dtype)
        if requires_grad:
            _check_can_require_grad(array.dtype, "tensor")
        self.data = array
        self._requires_grad = bool(requires_grad)
        self._grad = None
        self.grad_fn = None
        self._version = [0]
        self._accumulator = None
        self._hooks = None
        self._base = None
        self.name = None

    @classmethod
    def _make(cls, data, grad_fn, version):
        """Wrap an array without checks: the hot path of every operation."""
        tensor = object.__new__(Tensor)
        tensor.data = data
        tensor._requires_grad = grad_fn is not None
        tensor._grad = None
        tensor.grad_fn = grad_fn
        tensor._version = [0] if version is None else version
        tensor._accumulator = None
        tensor._hooks = None
        tensor._base = None
        tensor.name = None
        return tensor

    # -- autograd state ---------------------------------------------------------
    @property
    def requires_grad(self) -> bool:
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, value):
        self.requires_grad_(value)

    def requires_grad_(self, requires_grad=True):
        """Start (or stop) recording operations on this leaf; returns self."""
        requires_grad = bool(requires_grad)
        if self.grad_fn is not None:
            if not requires_grad:
                raise RuntimeError(
                    "requires_grad_: you can only change requires_grad flags of leaf tensors; "
                    "use .detach() to get a tensor that does not require grad"
                )
            return self
        if requires_grad:
            _check_can_require_grad(self.data.dtype)
        self._requires_grad = requires_grad
        return self

    @property
    def grad(self):
        """The gradient accumulated by backward (a Tensor), or None."""
        if self.grad_fn is not None and self._grad is None and not self.retains_grad:
            warnings.warn(
                "The .grad attribute of a tensor that is not a leaf is being accessed. Its "
                ".grad is not filled during backward unless you call .retain_grad() on it "
                "before backward.",
                UserWarning,
                stacklevel=2,
            )
        return self._grad

    @grad.setter
    def grad(self, value):
        if value is not None:
            if isinstance(value, np.ndarray):
                value = Tensor._make(value, None, None)
            if not isinstance(value, Tensor):
                raise TypeError(
                    f"grad: assigned grad must be a Tensor or None, got {type(value).__name__}"
                )
            if value.shape != self.shape:
                raise RuntimeError(
                    f"grad: assigned grad has shape {value.shape} but the tensor has shape {self.shape}"
                )
        self._grad = value

    @property
    def is_leaf(self) -> bool:
        """True for tensors the user created (not computed by a recorded op)."""
        return self.grad_fn is None

    @property
    def retains_grad(self) -> bool:
        return self.grad_fn is not None and self.grad_fn.retained is not None

    def retain_grad(self):
        """Keep this non-leaf tensor's gradient in ``.grad`` during backward."""
        if self.grad_fn is None:
            if not self._requires_grad:
                raise RuntimeError(
                    "retain_grad: can't retain_grad on a tensor that has requires_grad=False"
                )
            return
        import weakref

        self.grad_fn.retained = weakref.ref(self)

    def register_hook(self, hook):
        """Call ``hook(grad)`` when this tensor's gradient is computed.

        The hook may return a new gradient to use instead.  Returns a handle with
        ``remove()``.
        """
        if not self._requires_grad:
            raise RuntimeError(
                "register_hook: cannot register a hook on a tensor that doesn't require gradient"
            )
        from .function import RemovableHandle

        if self.grad_fn is not None:
            return self.grad_fn.register_hook(hook)
        if self._hooks is None:
            self._hooks = {}
        return RemovableHandle(self._hooks, hook)

    def backward(self, gradient=None, retain_graph=None, create_graph=False, inputs=None):
        """Back-propagate: add d(self)/d(leaf) into every leaf's ``.grad``.

        ``gradient`` is needed when self is not a scalar (the upstream gradient of
        the same shape).  Saved values are freed unless ``retain_graph=True``.
        """
        from .engine import backward

        backward(self, gradient, retain_graph, create_graph, inputs)

    def detach(self) -> Tensor:
        """The same data (shared, not copied), cut from the graph."""
        return Tensor._make(self.data, None, self._version)

    def detach_(self) -> Tensor:
        self.grad_fn = None
        self._requires_grad = False
        return self

    # -- description ------------------------------------------------------------
    @property
    def shape(self) -> tuple:
        return self.data.shape

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def ndim(self) -> int:
        return self.data.ndim

    def dim(self) -> int:
        return self.data.ndim

    def size(self, dim=None):
        """The shape, or the size of one dim."""
        if dim is None:
            return self.data.shape
        from .ops.shape import normalize_dim

        return self.data.shape[normalize_dim(dim, self.ndim, "size")]

    def numel(self) -> int:
        return self.data.size

    def nelement(self) -> int:
        return self.data.size

    def element_size(self) -> int:
        return self.data.itemsize

    @property
    def nbytes(self) -> int:
        return self.data.nbytes

    @property
    def device(self) -> Device:
        return CPU

    @property
    def is_cuda(self) -> bool:
        return False

    def is_floating_point(self) -> bool:
        return self.data.dtype.kind == "f"

    def is_contiguous(self) -> bool:
        return self.data.flags.c_contiguous

    def contiguous(self) -> Tensor:
        return self if self.data.flags.c_contiguous else _ops.Contiguous.apply(self)

    # T and mT build their (always valid) dims themselves: every linear layer takes
    # W.T and every matmul's backward two .mT, and the checks of permute and
    # transpose cost 3 to 4 us of a 6.5 us transpose.
    @property
    def T(self) -> Tensor:
        return _ops.Permute.apply(self, tuple(range(self.ndim - 1, -1, -1)))

    @property
    def mT(self) -> Tensor:
        if self.ndim < 2:
            return self.transpose(-2, -1)  # its error
        last = self.ndim - 1
        return _ops.Permute.apply(self, (*range(last - 1), last, last - 1))

    def __repr__(self):
        data = self.data
        finite = data[np.isfinite(data)] if data.dtype.kind == "f" else data
        # PyTorch's style: "2." when every value is whole, otherwise four decimals.
        whole = data.dtype.kind != "f" or bool(np.all(finite == np.round(finite)))
        body = np.array2string(
            data,
            separator=", ",
            precision=4,
            prefix="tensor(",
            floatmode="maxprec" if whole else "fixed",
        )
        extras = []
        if self.data.dtype not in (np.float32, np.int64, np.bool_):
            extras.append(f"dtype={self.data.dtype}")
        if self.grad_fn is not None:
            extras.append(f"grad_fn=<{self.grad_fn.name()}>")
        elif self._requires_grad:
            extras.append("requires_grad=True")
        return "tensor(" + ", ".join([body] + extras) + ")"

    # -- conversion -------------------------------------------------------------
    def numpy(self, *, force=False) -> np.ndarray:
        """The data as a NumPy array (shared memory, as in PyTorch)."""
        if self._requires_grad and not force:
            raise RuntimeError(
                "numpy: can't call numpy() on a tensor that requires grad; "
                "use tensor.detach().numpy() instead"
            )
        return self.data

    def __array__(self, dtype=None, copy=None):
        if self._requires_grad:
            raise RuntimeError(
                "numpy: can't convert a tensor that requires grad to a NumPy array; "
                "use tensor.detach() first"
            )
        if dtype is not None and dtype != self.data.dtype:
            return self.data.astype(dtype)
        return self.data.copy() if copy else self.data

    def item(self):
        """The value of a one-element tensor as a Python number."""
        if self.data.size != 1:
            raise RuntimeError(
                f"item: a tensor with {self.data.size} elements (shape {self.shape}) cannot be "
                "converted to a Python number; only one-element tensors can"
            )
        return self.data.reshape(()).item()

    def tolist(self):
        return self.data.tolist()

    def _one_element(self, op):
        if self.data.size != 1:
            raise RuntimeError(
                f"{op}: only a one-element tensor can be converted, got shape {self.shape}"
                + (" (use .any() or .all() for a truth value)" if op == "bool" else "")
            )
        return self.data.reshape(())

    def __bool__(self):
        return bool(self._one_element("bool"))

    def __float__(self):
        return float(self._one_element("float"))

    def __int__(self):
        return int(self._one_element("int"))

    def __index__(self):
        if self.data.dtype.kind not in "iub":
            raise TypeError(
                f"index: only integer tensors of a single element can be converted to an "
                f"index, got dtype {self.dtype}"
            )
        return int(self._one_element("index"))

    def __len__(self):
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.data.shape[0]

    def __iter__(self):
        if self.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(self.data.shape[0]))

    def __hash__(self):
        return id(self)

    def to(self, *args, **kwargs) -> Tensor:
        """Cast to a dtype and/or move to a device (only "cpu" exists)."""
        dtype = kwargs.pop("dtype", None)
        device = kwargs.pop("device", None)
        kwargs.pop("non_blocking", None)
        copy = kwargs.pop("copy", False)
        if kwargs:
            raise TypeError(f"to: unexpected arguments {sorted(kwargs)}")
        for arg in args:
            if isinstance(arg, Tensor):
                dtype = arg.dtype
            elif isinstance(arg, (str, Device)) and str(arg).split(":")[0] in (
                "cpu",
                "cuda",
                "mps",
                "xpu",
            ):
                device = arg
            else:
                dtype = arg
        if device is not None:
            Device(device)
        if dtype is None or as_dtype(dtype, "to") == self.data.dtype:
            return self.clone() if copy else self
        dtype = as_dtype(dtype, "to")
        if dtype.kind not in "fc":  # rounding to integers or bools: no gradient, no graph
            return constant(self.data.astype(dtype))
        return _ops.Cast.apply(self, dtype)

    def type(self, dtype=None):
        """With no argument, the type's name; with a dtype, a cast."""
        if dtype is None:
            names = {
                "float32": "FloatTensor",
                "float64": "DoubleTensor",
                "int64": "LongTensor",
                "int32": "IntTensor",
                "bool": "BoolTensor",
                "float16": "HalfTensor",
            }
            return "autodiff." + names.get(self.dtype.name, f"Tensor[{self.dtype.name}]")
        return self.to(dtype)

    # PyTorch's short casts: x.float() is x.to(float32), ...
    float = _cast("float", np.float32)
    double = _cast("double", np.float64)
    half = _cast("half", np.float16)
    long = _cast("long", np.int64)
    int = _cast("int", np.int32)
    bool = _cast("bool", np.bool_)

    def cpu(self) -> Tensor:
        return self

    # -- arithmetic -------------------------------------------------------------
    def __add__(self, other):
        return _ops.Add.apply(self, other)

    def __radd__(self, other):
        return _ops.Add.apply(other, self)

    def __sub__(self, other):
        return _ops.Sub.apply(self, other)

    def __rsub__(self, other):
        return _ops.Sub.apply(other, self)

    def __mul__(self, other):
        return _ops.Mul.apply(self, other)

    def __rmul__(self, other):
        return _ops.Mul.apply(other, self)

    def __truediv__(self, other):
        return _ops.Div.apply(self, other)

    def __rtruediv__(self, other):
        return _ops.Div.apply(other, self)

    def __pow__(self, exponent):
        return _ops.Pow.apply(self, exponent)

    def __rpow__(self, base):
        return _ops.Pow.apply(base, self)

    def __matmul__(self, other):
        return _ops.MatMul.apply(self, other)

    def __rmatmul__(self, other):
        return _ops.MatMul.apply(other, self)

    def __pos__(self):
        return self

    def __floordiv__(self, other):
        return _integer_division(np.floor_divide, self.data, _data(other), "floor_divide")

    def __rfloordiv__(self, other):
        return _integer_division(np.floor_divide, _data(other), self.data, "floor_divide")

    def __mod__(self, other):
        return _integer_division(np.mod, self.data, _data(other), "remainder")

    def add(self, other, alpha=1):
        return _ops.Add.apply(self, other if alpha == 1 else other * alpha)

    def sub(self, other, alpha=1):
        return _ops.Sub.apply(self, other if alpha == 1 else other * alpha)

    def mul(self, other):
        return _ops.Mul.apply(self, other)

    def div(self, other):
        return _ops.Div.apply(self, other)

    def pow(self, exponent):
        return _ops.Pow.apply(self, exponent)

    def mm(self, other):
        """Matrix product of two 2-D tensors (``matmul`` takes other shapes)."""
        other_ndim = np.ndim(_data(other))
        if self.ndim != 2 or other_ndim != 2:
            raise RuntimeError(
                f"mm: both arguments must be matrices (2-D), got {self.ndim}-D and "
                f"{other_ndim}-D tensors of shapes {self.shape} and {np.shape(_data(other))} "
                "(matmul handles other shapes)"
            )
        return _ops.MatMul.apply(self, other)

    # -- comparisons (no gradient; boolean results) -----------------------------
    __eq__ = eq = _comparison("eq", np.equal)
    __ne__ = ne = _comparison("ne", np.not_equal)
    __lt__ = lt = _comparison("lt", np.less)
    __le__ = le = _comparison("le", np.less_equal)
    __gt__ = gt = _comparison("gt", np.greater)
    __ge__ = ge = _comparison("ge", np.greater_equal)

    def __and__(self, other):
        return _compare(np.logical_and if self.dtype == np.bool_ else np.bitwise_and, self, other)

    def __or__(self, other):
        return _compare(np.logical_or if self.dtype == np.bool_ else np.bitwise_or, self, other)

    def __xor__(self, other):
        return _compare(np.logical_xor if self.dtype == np.bool_ else np.bitwise_xor, self, other)

    def __invert__(self):
        return constant(
            np.logical_not(self.data) if self.dtype == np.bool_ else np.invert(self.data)
        )

    def logical_not(self):
        return constant(np.logical_not(self.data))

    def equal(self, other) -> bool:
        _require_tensor(other, "equal")
        other = _data(other)
        return self.shape == np.shape(other) and bool(np.array_equal(self.data, other))

    def allclose(self, other, rtol=1e-5, atol=1e-8) -> bool:
        _require_tensor(other, "allclose")
        return bool(np.allclose(self.data, _data(other), rtol=rtol, atol=atol))

    def isnan(self):
        return constant(np.isnan(self.data))

    def isinf(self):
        return constant(np.isinf(self.data))

    def isfinite(self):
        return constant(np.isfinite(self.data))

    def any(self, dim=None, keepdim=False):
        return constant(
            np.any(self.data, axis=_logical_dims(dim, self.ndim, "any"), keepdims=keepdim)
        )

    def all(self, dim=None, keepdim=False):
        return constant(
            np.all(self.data, axis=_logical_dims(dim, self.ndim, "all"), keepdims=keepdim)
        )

    # -- elementwise functions --------------------------------------------------
    def square(self):
        return _ops.Mul.apply(self, self)

    def clamp(self, min=None, max=None):
        if min is None and max is None:
            raise ValueError("clamp: at least one of min and max must be given")
        if (min is not None and max is not None) and (
            isinstance(min, Tensor) != isinstance(max, Tensor)
        ):
            raise TypeError(
                "clamp: min and max must both be numbers or both be tensors, got "
                f"{type(min).__name__} and {type(max).__name__}"
            )
        return _ops.Clamp.apply(self, min, max)

    clip = clamp

    def where(self, condition, other):
        return _ops.where(condition, self, other)

    def masked_fill(self, mask, value):
        mask_dtype = _data(mask).dtype if hasattr(_data(mask), "dtype") else None
        if mask_dtype != np.bool_:
            raise RuntimeError(
                f"masked_fill: only supports boolean masks, but got mask with dtype {mask_dtype} "
                "(compare to make one: x.masked_fill(x > 0, 0.0))"
            )
        return _ops.where(mask, value, self)

    # -- reductions -------------------------------------------------------------
    def sum(self, dim=None, keepdim=False, dtype=None, *, axis=None):
        return _ops.sum(self, _dim(dim, axis), keepdim, dtype)

    def mean(self, dim=None, keepdim=False, dtype=None, *, axis=None):
        return _ops.mean(self, _dim(dim, axis), keepdim, dtype)

    def var(self, dim=None, unbiased=None, keepdim=False, *, correction=None, axis=None):
        return _ops.var(self, _dim(dim, axis), unbiased, keepdim, correction=correction)

    def std(self, dim=None, unbiased=None, keepdim=False, *, correction=None, axis=None):
        return _ops.std(self, _dim(dim, axis), unbiased, keepdim, correction=correction)

    def max(self, dim_or_other=None, /, keepdim=None, *, dim=None, other=None, axis=None):
        """``x.max()``, ``x.max(dim, keepdim=False)`` -> (values, indices), or ``x.max(other)``.

        As in PyTorch, a tensor given alone by position is ``other``, the elementwise
        maximum; one given as ``dim=`` (or by position with ``keepdim``:
        ``x.max(torch.tensor(1), True)``) is a 0-d integer dim to reduce along.
        """
        return _max_or_min(self, "max", dim_or_other, keepdim, dim, other, axis)

    def min(self, dim_or_other=None, /, keepdim=None, *, dim=None, other=None, axis=None):
        """``x.min()``, ``x.min(dim, keepdim=False)`` -> (values, indices), or ``x.min(other)``
        (see ``max``)."""
        return _max_or_min(self, "min", dim_or_other, keepdim, dim, other, axis)

    def amax(self, dim=(), keepdim=False):
        return _ops.amax(self, dim, keepdim)

    def amin(self, dim=(), keepdim=False):
        return _ops.amin(self, dim, keepdim)

    def argmax(self, dim=None, keepdim=False, *, axis=None):
        return _ops.argmax(self, _dim(dim, axis), keepdim)

    def argmin(self, dim=None, keepdim=False, *, axis=None):
        return _ops.argmin(self, _dim(dim, axis), keepdim)

    def logsumexp(self, dim, keepdim=False):
        return _ops.logsumexp(self, dim, keepdim)

    def prod(self, dim=None, keepdim=False, dtype=None):
        return _ops.prod(self, dim, keepdim, dtype)

    def cumsum(self, dim, dtype=None):
        return _ops.cumsum(self, dim, dtype)

    def cumprod(self, dim, dtype=None):
        return _ops.cumprod(self, dim, dtype)

    def gather(self, dim, index):
        return _ops.gather(self, dim, index)

    def softmax(self, dim, dtype=None):
        return _ops.softmax(self, dim, dtype)

    def log_softmax(self, dim, dtype=None):
        return _ops.log_softmax(self, dim, dtype)

    # -- shape ------------------------------------------------------------------
    def reshape(self, *shape):
        return _ops.reshape(self, *shape)

    def view(self, *shape):
        if len(shape) == 1 and not isinstance(shape[0], (int, np.integer, tuple, list)):
            return self.to(shape[0])  # view(dtype)
        return _ops.reshape(self, *shape)

    def view_as(self, other):
        return _ops.reshape(self, other.shape)

    def reshape_as(self, other):
        return _ops.reshape(self, other.shape)

    def flatten(self, start_dim=0, end_dim=-1):
        return _ops.flatten(self, start_dim, end_dim)

    def unflatten(self, dim, sizes):
        return _ops.unflatten(self, dim, sizes)

    def permute(self, *dims):
        return _ops.permute(self, *dims)

    def transpose(self, dim0, dim1):
        return _ops.transpose(self, dim0, dim1)

    def t(self):
        if self.ndim > 2:
            raise RuntimeError(f"t: expects a tensor with <= 2 dims, but got {self.ndim} dims")
        return self.T

    def unsqueeze(self, dim):
        return _ops.unsqueeze(self, dim)

    def squeeze(self, dim=None):
        return _ops.squeeze(self, dim)

    def expand(self, *sizes):
        return _ops.expand(self, *sizes)

    def expand_as(self, other):
        return _ops.expand(self, other.shape)

    def broadcast_to(self, shape):
        return _ops.broadcast_to(self, shape)

    def repeat(self, *sizes):
        sizes = _ops.parse_shape(sizes, "repeat")
        if len(sizes) < self.ndim:
            raise RuntimeError(
                f"repeat: number of repeat dims ({len(sizes)}) can not be smaller than the "
                f"number of dims of the tensor ({self.ndim})"
            )
        x = self.reshape((1,) * (len(sizes) - self.ndim) + self.shape)
        # interleave a new axis of each repeat count, broadcast, then merge
        expanded_shape = []
        target = []
        for r, s in zip(sizes, x.shape, strict=True):
            expanded_shape += [1, s]
            target += [r, s]
        out = x.reshape(expanded_shape).expand(target)
        return out.reshape(tuple(r * s for r, s in zip(sizes, x.shape, strict=True)))

    def split(self, split_size, dim=0):
        return _ops.split(self, split_size, dim)

    def chunk(self, chunks, dim=0):
        return _ops.chunk(self, chunks, dim)

    def __getitem__(self, index):
        return _ops.GetItem.apply(self, _normalize_index(index, self))

    def __setitem__(self, index, value):
        index = _normalize_index(index, self, "setitem")
        value = value if isinstance(value, Tensor) else _data(value)

        _in_place(
            self,
            "setitem",
            lambda x: _ops.SetItem.apply(x, index, value),
            lambda array, other: _ops.set_items(array, index, other),
            value,
        )

    # -- in-place operations ----------------------------------------------------
    def add_(self, other, alpha=1):
        other = other if alpha == 1 else other * alpha
        return _in_place(self, "add_", lambda x: x + other, _ufunc_update(np.add), other)

    def sub_(self, other, alpha=1):
        other = other if alpha == 1 else other * alpha
        return _in_place(self, "sub_", lambda x: x - other, _ufunc_update(np.subtract), other)

    def mul_(self, other):
        return _in_place(self, "mul_", lambda x: x * other, _ufunc_update(np.multiply), other)

    def div_(self, other):
        return _in_place(self, "div_", lambda x: x / other, _ufunc_update(np.true_divide), other)

    def pow_(self, exponent):
        return _in_place(self, "pow_", lambda x: x**exponent, _ufunc_update(np.power), exponent)

    __iadd__ = add_
    __isub__ = sub_
    __imul__ = mul_
    __itruediv__ = div_

    def zero_(self):
        return self.fill_(0)

    def fill_(self, value):
        value = _data(value)
        return _in_place(
            self, "fill_", lambda x: _ops.where(True, value, x), lambda a, v: a.fill(v), value
        )

    def set_(self, source) -> Tensor:
        """Make ``source`` (a Tensor's data or an array, not copied) this tensor's data.

        As PyTorch's ``set_``: shape and dtype may change, and it counts as an
        in-place change (the version goes up), so a graph that saved the old value
        refuses to use it.  Like every in-place change of a leaf that requires
        grad, do it under ``no_grad()``.  Example (what ``module.double()`` does)::

            with autodiff.no_grad():
                weight.set_(weight.data.astype(np.float64))
        """
        if modes.grad_enabled and (self._requires_grad or self.grad_fn is not None):
            raise RuntimeError(
                "set_: a tensor that requires grad (or is part of a graph) is being given new "
                "data; wrap it in `with autodiff.no_grad():`"
            )
        array = source.data if isinstance(source, Tensor) else source
        if type(array) is not np.ndarray:
            raise TypeError(
                f"set_: expected a Tensor or a NumPy array, got {type(source).__name__}"
            )
        self.data = array
        self._version[0] += 1
        return self

    def copy_(self, src):
        def copy_into(array, other):
            np.copyto(array, np.broadcast_to(other, array.shape), casting="unsafe")

        return _in_place(self, "copy_", lambda x: _ops.where(True, src, x), copy_into, src)

    def clamp_(self, min=None, max=None):
        return _in_place(
            self,
            "clamp_",
            lambda x: x.clamp(min, max),
            lambda a, _: np.clip(a, min, max, out=a),
            None,
        )

    def uniform_(self, a=0.0, b=1.0, generator=None):
        from .random import default_generator

        rng = (generator or default_generator()).numpy_generator
        return self._fill_random(rng.uniform(a, b, self.shape))

    def normal_(self, mean=0.0, std=1.0, generator=None):
        from .random import default_generator

        rng = (generator or default_generator()).numpy_generator
        return self._fill_random(rng.normal(mean, std, self.shape))

    def _fill_random(self, values):
        def write(array, _):
            array[...] = values

        return _in_place(self, "random fill", None, write, None)

    def relu_(self):
        return _in_place(
            self,
            "relu_",
            lambda x: x.relu(),
            lambda a, _: _ops.elementwise.max_with_zero(a, out=a),
            None,
        )


def _require_tensor(other, op):
    if not isinstance(other, Tensor):
        raise TypeError(
            f"{op}: argument 'other' must be a Tensor, not {type(other).__name__} "
            f"(wrap a number with autodiff.tensor)"
        )


def _dim(dim, axis):
    return axis if dim is None and axis is not None else dim


def _max_or_min(x, op, dim_or_other, keepdim, dim, other, axis):
    """PyTorch's overloads of ``max``/``min``: the elementwise ``other`` (a tensor given alone
    by position, or ``other=``), else a reduction over all elements or along one dim."""
    named = [
        name
        for name, value in (("dim", dim), ("axis", axis), ("other", other))
        if value is not None
    ]
    if len(named) > 1 or (named and dim_or_other is not None):
        given = (["a positional argument"] if dim_or_other is not None else []) + named
        raise TypeError(f"{op}: got {' and '.join(given)}; expected a dim or other, not both")
    elementwise = _ops.Maximum if op == "max" else _ops.Minimum
    if other is not None:
        if keepdim is not None:
            raise TypeError(f"{op}: keepdim goes with a dim, not with other")
        return elementwise.apply(x, other)
    if dim_or_other is None:
        dim_or_other = dim if dim is not None else axis
    elif keepdim is None and isinstance(dim_or_other, Tensor):
        return elementwise.apply(x, dim_or_other)
    return (_ops.max if op == "max" else _ops.min)(x, dim_or_other, keepdim)


def _logical_dims(dim, ndim, op):
    """any/all's dims for NumPy: as PyTorch's, one int dim, or a tuple read like sum's."""
    if dim is None:
        return None
    if isinstance(dim, (tuple, list)):
        return _ops.normalize_dims(dim, ndim, op)
    return _ops.one_dim(dim, ndim, op)


def _data(value):
    return value.data if isinstance(value, Tensor) else value


def constant(array) -> Tensor:
    """A tensor around ``array`` as it is: no copy, no checks, no gradient.

    For code that computed an array itself and hands it on as a tensor (a mask, a
    one-hot target, a gradient of ones): the cheap, public form of what
    ``autodiff.tensor`` does after checking and copying its input.  ``array``
    should be a NumPy array (anything else goes through ``np.asarray``).  Example::

        mask = autodiff.constant(x.data > 0)      # a boolean tensor, outside the graph
    """
    if type(array) is not np.ndarray:
        array = np.asarray(array)
    return Tensor._make(array, None, None)


def _integer_division(ufunc, a, b, op) -> Tensor:
    """``//`` and ``%``: integer division by zero is an error, as in PyTorch (floats give inf/nan)."""
    a, b = np.asarray(a), np.asarray(b)
    if np.result_type(a, b).kind in "iub" and b.size and not np.all(b):
        raise RuntimeError(f"{op}: ZeroDivisionError (an integer tensor divided by zero)")
    with np.errstate(divide="ignore", invalid="ignore"):  # floats: inf and nan, silently
        return constant(ufunc(a, b))


def _compare(ufunc, x, other):
    try:
        return Tensor._make(np.asarray(ufunc(x.data, _data(other))), None, None)
    except ValueError as error:
        raise ShapeError(
            f"{ufunc.__name__}: cannot compare tensors of shapes {x.shape} and "
            f"{np.shape(_data(other))}: {error}"
        ) from None


def _ufunc_update(ufunc):
    def update(array, other):
        ufunc(array, other, out=array, casting="same_kind")

    return update


def _in_place(tensor: Tensor, op: str, out_of_place, update, other):
    """Change ``tensor`` itself, following PyTorch's rules for in-place operations.

    Without a graph to record (grad mode off, or nothing requires grad), the
    NumPy array is updated in place.  Otherwise the result is computed as a
    recorded operation and written into the tensor, whose ``grad_fn`` then
    points to that operation; any node that saved the old value notices the
    version change at backward time.
    """
    recording = (
        modes.grad_enabled
        and out_of_place is not None  # random fills are never differentiated
        and (tensor._requires_grad or (isinstance(other, Tensor) and other._requires_grad))
    )
    if modes.grad_enabled and tensor._requires_grad and tensor.grad_fn is None:
        raise RuntimeError(
            f"{op}: a leaf tensor that requires grad is being used in an in-place operation. "
            "Wrap the update in `with autodiff.no_grad():` (as an optimizer step does)."
        )
    if not tensor.data.flags.writeable:
        raise RuntimeError(
            f"{op}: the tensor's data is a read-only view (made by expand or broadcast_to); "
            "clone() it before changing it in place"
        )
    base = tensor._base
    if recording and base is not None:
        if base._requires_grad and base.grad_fn is None:
            raise RuntimeError(
                f"{op}: a view of a leaf tensor that requires grad is being used in an "
                "in-place operation; change the leaf under no_grad(), or use out-of-place ops"
            )
        _function().rebase_if_stale(tensor)  # the base changed since: its values first
    if not recording:
        other_data = _data(other)
        try:
            update(tensor.data, other_data)
        except (TypeError, np.exceptions.DTypePromotionError) as error:
            raise RuntimeError(
                f"{op}: result of dtype {np.result_type(tensor.data, other_data)} can't be cast "
                f"to the tensor's dtype {tensor.dtype} in place ({error})"
            ) from None
        except ValueError as error:
            if str(error).startswith(f"{op}:"):  # already a complete message (setitem)
                raise ShapeError(str(error)) from None
            raise ShapeError(
                f"{op}: can't update a tensor of shape {tensor.shape} in place with a value "
                f"of shape {np.shape(other_data)}: {error}"
            ) from None
        tensor._version[0] += 1
        return tensor
    source = tensor
    if tensor._requires_grad:
        # The op may save its input for backward (pow_, mul_ by a tensor that requires
        # grad): give it a snapshot of the value before the write, at the same place in
        # the graph, so that backward uses the old value, as PyTorch does.
        source = Tensor._make(tensor.data.copy(), tensor.grad_fn, None)
    result = out_of_place(source)
    if result.shape != tensor.shape:
        raise RuntimeError(
            f"{op}: output with shape {tensor.shape} doesn't match the broadcast shape {result.shape}"
        )
    if not np.can_cast(result.dtype, tensor.dtype, "same_kind"):
        raise RuntimeError(
            f"{op}: result type {result.dtype} can't be cast to the desired output type {tensor.dtype}"
        )
    np.copyto(tensor.data, result.data, casting="same_kind")
    tensor._version[0] += 1
    node = result.grad_fn
    _function().move_retain_grad(tensor.grad_fn, node)
    tensor.grad_fn = node
    tensor._requires_grad = node is not None
    if node is not None:
        import weakref

        node._output_ref = weakref.ref(tensor)
    if base is not None:  # the base's values changed too: so does its history
        tensor._view_version = tensor._version[0]
        _function().copy_slices(base, tensor)
    return tensor


def _function():
    from . import function  # function.py imports this module

    return function


def _normalize_index(index, tensor, op="getitem"):
    """Tensors and lists in an index become NumPy arrays; everything else stays."""
    if isinstance(index, tuple):
        return tuple(_normalize_index_item(item, tensor, op) for item in index)
    return _normalize_index_item(index, tensor, op)


def _normalize_index_item(item, tensor, op="getitem"):
    if isinstance(item, slice) and item.step is not None and item.step <= 0:
        # PyTorch's rule (NumPy reverses): a tensor's views only step forwards
        hint = (
            "; to reverse a dim, index it with its positions in reverse "
            "(x[autodiff.arange(n - 1, -1, -1)])"
            if item.step < 0
            else ""
        )
        raise ValueError(f"{op}: step must be greater than zero, got {item}{hint}")
    if isinstance(item, Tensor):
        item = item.data
    elif isinstance(item, list):
        item = np.asarray(item)
        if item.size == 0:  # x[[]]: an empty list of indices (int64, as PyTorch reads it)
            item = item.astype(np.int64)
    if isinstance(item, np.ndarray):
        if item.dtype.kind not in "biu":
            raise IndexError(
                f"getitem: tensors used as indices must be long, int or bool tensors, got dtype {item.dtype}"
            )
        if item.ndim == 0 and item.dtype.kind in "iu":
            return int(item)
    elif isinstance(item, float):
        raise IndexError(
            f"getitem: only integers, slices, None, ..., and integer or boolean tensors are valid indices (got {item!r})"
        )
    return item


# The operations import Tensor, so they are imported after it is defined.
from . import ops as _ops  # noqa: E402


def bind_methods(bindings) -> None:
    """Make ``Tensor.<name>`` apply the op, for each (name, op class) pair.

    Called by ``autodiff.ops`` once all op classes exist: an op class that names
    its ``method`` (``method = "exp"``) is the one place that defines it.
    """
    for name, function in bindings:
        setattr(Tensor, name, _method_applying(function, name))


def _method_applying(function, name: str):
    apply = function.apply

    def method(self, *args):
        return apply(self, *args)

    method.__name__ = name
    method.__qualname__ = f"Tensor.{name}"
    method.__doc__ = function.__doc__
    return method
