"""``Tensor``: a NumPy array that remembers how it was computed.

A tensor holds its value in ``.data`` (a NumPy array).  When it is computed by an
operation while grad mode is on and some input requires grad, ``.grad_fn``
points to the recorded node, and ``backward()`` fills ``.grad`` of the leaves.
Methods delegate to the operations in ``autodiff.ops``.
"""

from __future__ import annotations

import functools
import operator
import warnings

import numpy as np

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

_PYTHON_FLOAT = np.dtype(np.float32)  # PyTorch's default float dtype


def get_default_dtype():
    return _PYTHON_FLOAT


def as_dtype(dtype, op="tensor"):
    """Accept NumPy dtypes, type objects and names such as "float32"."""
    if dtype is None:
        return None
    if dtype is float:
        return _PYTHON_FLOAT
    try:
        return np.dtype(dtype)
    except TypeError:
        raise TypeError(f"{op}: {dtype!r} is not a dtype (try autodiff.float32)") from None


def to_array(data, dtype=None, op="tensor", copy=True) -> np.ndarray:
    """Convert Python data or an array to a NumPy array with PyTorch's dtype defaults.

    Python floats become float32, complex numbers complex64, ints int64, bools bool;
    NumPy arrays keep their dtype unless ``dtype`` is given.  Nested lists that hold
    NumPy numbers, arrays or tensors are read as ``torch.tensor`` reads them (see
    ``_nested_array``): accepted, with the same dtype, where PyTorch accepts them.
    """
    dtype = as_dtype(dtype, op)
    if isinstance(data, Tensor):
        data = data.data
    if isinstance(data, (np.ndarray, np.generic)):
        return _numeric(
            np.array(data, dtype=dtype, copy=copy) if copy or dtype is not None else data,
            data,
            op,
        )
    inferred = _inferred_dtype(data)
    if inferred is _NESTED or (
        dtype is not None and dtype.kind in "iu" and inferred is not None and inferred.kind in "fc"
    ):  # NumPy values or tensors inside, or floats given for integers: PyTorch's rules
        return _nested_array(data, dtype, op)
    target = inferred if dtype is None else dtype  # None: NumPy judges (strings, None...)
    # NumPy reads the numbers as PyTorch does: integers as int64 (a narrower dtype's range
    # checked after, negative ints wrapping into unsigned ones), float16 through float32
    via = target if target is None else _READ_AS.get(target.kind, {}).get(target, target)
    try:
        with np.errstate(over="ignore"):  # as PyTorch, 1e39 in float32 is inf
            array = np.array(data, dtype=via)
    except OverflowError:  # a Python int beyond int64, or beyond float64 for floats
        raise _python_int_overflow(op, via) from None
    except (ValueError, TypeError) as error:
        raise TypeError(
            f"{op}: could not convert {type(data).__name__} to a tensor ({error}); "
            "expected numbers, nested lists of numbers of a regular shape, or a NumPy array"
        ) from None
    if via != target:
        if target.kind in "iu":
            _in_range(array, target, op)
        with np.errstate(over="ignore"):  # float16's inf
            array = array.astype(target)
    return _numeric(array, data, op)


_READ_AS = {  # kind -> {dtype: the dtype NumPy converts Python numbers to for it}
    "i": {np.dtype(t): np.dtype(np.int64) for t in (np.int8, np.int16, np.int32)},
    "u": {np.dtype(t): np.dtype(np.int64) for t in (np.uint8, np.uint16, np.uint32)},
    "f": {np.dtype(np.float16): np.dtype(np.float32)},  # PyTorch: double -> float -> half
}


def _numeric(array, data, op) -> np.ndarray:
    if array.dtype.kind not in "biufc":
        raise TypeError(
            f"{op}: expected numeric data (numbers, nested lists of numbers or a NumPy "
            f"array), got data of dtype {array.dtype} from a {type(data).__name__}"
        )
    return array


def _python_int_overflow(op, dtype) -> Exception:
    if dtype is None or dtype in (np.int64, np.bool_):
        return _int64_overflow(op)
    if dtype == np.uint64:
        return OverflowError(
            f"{op}: a Python int in the data does not fit in uint64 (0 to 2**64 - 1; PyTorch "
            "raises OverflowError too)"
        )
    return OverflowError(
        f"{op}: a Python int in the data is too large for {dtype} (beyond float64's "
        "range, as in PyTorch, which raises 'int too large to convert to float')"
    )


def _int64_overflow(op) -> ValueError:
    return ValueError(
        f"{op}: a Python int in the data does not fit in int64, the dtype Python ints "
        "take (as in PyTorch, which raises 'Overflow when unpacking long long'); pass "
        "a NumPy array of dtype uint64 or float64 to keep it"
    )


# How PyTorch ranks dtypes when it promotes across kinds: bool < integers < floats < complex.
_KIND_RANK = {"b": 0, "u": 1, "i": 1, "f": 2, "c": 3}

_PYTHON_NUMBERS = {  # torch.tensor's dtype for each Python number type
    bool: np.dtype(np.bool_),
    int: np.dtype(np.int64),
    float: _PYTHON_FLOAT,
    complex: np.promote_types(_PYTHON_FLOAT, np.complex64),
}
_SEQUENCES = (list, tuple)
_NESTED = object()  # _inferred_dtype's answer for lists that hold NumPy values or tensors
_COMPLEX128 = np.dtype(np.complex128)
# PyTorch promotes these only with themselves and floating point dtypes
_WIDE_UNSIGNED = frozenset(map(np.dtype, (np.uint16, np.uint32, np.uint64)))
_BOOL_AND_UINT64 = frozenset(map(np.dtype, (np.bool_, np.uint64)))


def _inferred_dtype(data):
    """The dtype of ``torch.tensor(data)`` for Python numbers and nested lists of them.

    Across kinds the highest kind's dtype: ``[1, 2.5]`` is float32 (NumPy's ``np.array``
    gives float64), ``[True, 2]`` int64, ``[1 + 2j]`` complex64.  ``_NESTED`` when the
    lists hold NumPy numbers, arrays or tensors, which ``_nested_array`` reads as PyTorch
    does; None when they hold something else (strings, None), which NumPy then refuses.
    """
    own = _PYTHON_NUMBERS.get(type(data))
    if own is not None:
        return own
    if not isinstance(data, _SEQUENCES):
        return _NESTED if _number_like(type(data)) else None
    found = set()
    stack = [data]
    while stack:
        value = stack.pop()
        if not value:
            continue
        # a list's elements by their type, not one by one: one pass that counts the
        # first element's type (100,000 floats: 1 ms), a set of types if they differ
        first = type(value[0])
        if operator.countOf(map(type, value), first) == len(value):
            own = _PYTHON_NUMBERS.get(first)
            if own is not None:
                found.add(own)
                continue
            types = (first,)
        else:
            types = set(map(type, value))
        nested = False
        for kind in types:
            own = _PYTHON_NUMBERS.get(kind)
            if own is not None:
                found.add(own)
            elif issubclass(kind, _SEQUENCES):
                nested = True
            else:
                return _NESTED if _number_like(kind) else None
        if nested:
            stack.extend(v for v in value if isinstance(v, _SEQUENCES))
    if not found:
        return _PYTHON_FLOAT  # no elements: the default, as for []
    return max(found, key=lambda dtype: _KIND_RANK[dtype.kind])  # one dtype per kind


def _number_like(kind) -> bool:
    """NumPy numbers and arrays, tensors, and subclasses of Python numbers (an IntEnum)."""
    return issubclass(kind, (np.generic, np.ndarray, Tensor, int, float, complex))


def _nested_array(data, dtype, op) -> np.ndarray:
    """``torch.tensor(data)`` for nested lists that hold NumPy numbers, arrays or tensors.

    As in PyTorch, in three steps: the shape comes from the first element at each depth
    (``_nested_shape``); the dtype, unless given, is promoted over the elements in order
    (``_nested_dtype``); then each element is stored at that dtype, which refuses what
    PyTorch refuses (``_store``): a NumPy bool among integers, a NumPy array with
    dimensions or a tensor of several elements where a number belongs.
    """
    shape = _nested_shape(data, op)
    target = _nested_dtype(data, op) if dtype is None else dtype
    # PyTorch stores each number as a C double or complex and then converts it, so an
    # int64 that becomes float32 is rounded twice, as here (float16 goes through float32)
    wide = {"f": np.dtype(np.float64), "c": _COMPLEX128}.get(target.kind, target)
    out = np.empty(shape, wide)
    _store(data, out, (), shape, target, op)
    if wide != target:
        with np.errstate(over="ignore"):  # as PyTorch, 1e39 in float32 is inf
            if target == np.float16:
                out = out.astype(np.float32)
            out = out.astype(target)
    return out


def _nested_shape(data, op) -> tuple:
    """The shape PyTorch reads from nested data: the length of the first element at each
    depth; a NumPy array adds its dimensions, a tensor there is one number."""
    shape = []
    value = data
    while isinstance(value, (*_SEQUENCES, np.ndarray)):
        if isinstance(value, np.ndarray):
            if value.ndim == 0:
                raise TypeError(
                    f"{op}: found a 0-d NumPy array ({value!r}) as the first element at depth "
                    f"{len(shape)}, where the shape is read from (len() of unsized object, as in "
                    "PyTorch); expected a number, a NumPy number (array.item() or array[()]) or a "
                    "sequence there"
                )
            for size in value.shape:
                shape.append(size)
                if size == 0:
                    break
            break
        shape.append(len(value))
        if not value:
            break
        value = value[0]
    return tuple(shape)


def _nested_dtype(value, op):
    """PyTorch's dtype for nested data: an array's, a tensor's or a NumPy number's own, a
    Python number's from ``_PYTHON_NUMBERS``, and for a list its elements' promoted in
    order (``_promoted``), stopping at complex128, which no later element can change."""
    if isinstance(value, _SEQUENCES):
        if not value:
            return _PYTHON_FLOAT
        dtypes = _own_dtypes(value)
        if dtypes and not dtypes & _WIDE_UNSIGNED:  # then promotion is order-free
            return functools.reduce(lambda a, b: _promoted(a, b, op), dtypes)
        dtype = None
        for item in value:
            own = _PYTHON_NUMBERS.get(type(item)) or _nested_dtype(item, op)
            dtype = own if dtype is None else _promoted(dtype, own, op)
            if dtype == _COMPLEX128:
                break
        return dtype
    if isinstance(value, (np.ndarray, np.generic, Tensor)):
        if value.dtype.kind in _KIND_RANK:
            return value.dtype
        raise TypeError(
            f"{op}: expected numbers in the data, found {_described(value)} of dtype {value.dtype}"
        )
    for kind, own in _PYTHON_NUMBERS.items():  # subclasses (an IntEnum is an int)
        if isinstance(value, kind):
            return own
    raise TypeError(
        f"{op}: expected numbers, NumPy numbers or arrays, tensors or nested lists of them; "
        f"found {_described(value)}"
    )


def _promoted(a, b, op):
    """PyTorch's promotion of two elements' dtypes (``torch.promote_types``): within a
    kind as NumPy's (uint8 with int8 is int16), across kinds the higher kind's dtype as
    it is (int64 with float16 is float16), a float with a complex the complex that holds
    both; uint16, uint32 and uint64 go only with themselves and floating point dtypes."""
    if a == b:
        return a
    if a in _WIDE_UNSIGNED or b in _WIDE_UNSIGNED:
        if a.kind == "f":
            return a
        if b.kind == "f":
            return b
        raise RuntimeError(
            f"{op}: found elements of dtypes {a} and {b} in the data, which do not promote: "
            "as in PyTorch, uint16, uint32 and uint64 go only with themselves and floating "
            "point dtypes; expected a dtype= or NumPy values of one integer type"
        )
    rank, other = _KIND_RANK[a.kind], _KIND_RANK[b.kind]
    if rank == other or {rank, other} == {2, 3}:
        return np.promote_types(a, b)
    return a if rank > other else b


def _store(value, out, index, shape, target, op):
    """Fill ``out[index]`` from ``value`` at depth ``len(index)``, as PyTorch does: lists,
    NumPy arrays and tensors are taken apart along their first dimension, and each number
    is read as ``target`` needs it (``_stored``)."""
    depth = len(index)
    if depth == len(shape):
        out[index] = _stored(value, target, op)
        return
    size = shape[depth]
    if isinstance(value, _SEQUENCES):
        if len(value) == size and _stored_at_once(value, out, index, shape, target):
            return
        items = value
    elif isinstance(value, (np.ndarray, Tensor)) and value.ndim:
        array = value.data if isinstance(value, Tensor) else value
        if value.shape == shape[depth:]:  # every element a number: checked in one go
            out[index] = _block(array, target, op, "tensor" if array is not value else "NumPy")
            return
        if array is value:
            items = list(array)  # NumPy numbers, or arrays of one dimension less
        else:  # tensors of one dimension less
            items = [Tensor._make(np.asarray(row), None, None) for row in array]
    else:
        raise TypeError(
            f"{op}: found {_described(value)} at depth {depth} where a sequence of length "
            f"{size} was expected (the first elements give the shape {shape})"
        )
    if len(items) != size:
        raise TypeError(
            f"{op}: found {_described(value)} of length {len(items)} at depth {depth} where "
            f"the first elements give the shape {shape}; expected nested lists of a regular shape"
        )
    for i, item in enumerate(items):
        _store(item, out, (*index, i), shape, target, op)


def _own_dtypes(items, types=None):
    """The dtypes of a list's numbers, NumPy arrays and tensors (``types``: their types),
    or None when it holds something else (lists)."""
    dtypes = set()
    for kind in set(map(type, items)) if types is None else types:
        own = _PYTHON_NUMBERS.get(kind)
        if own is not None:
            dtypes.add(own)
        elif issubclass(kind, (np.number, np.bool_)):
            dtypes.add(np.dtype(kind))
        elif issubclass(kind, (np.ndarray, Tensor)):
            dtypes.update(item.dtype for item in items if type(item) is kind)
        else:
            return None
    return dtypes if all(dtype.kind in _KIND_RANK for dtype in dtypes) else None


def _stored_at_once(items, out, index, shape, target) -> bool:
    """Store a list of numbers, or of NumPy arrays of the shape below it, in one go when
    that is what reading them one by one gives: each of a dtype PyTorch reads at
    ``target`` without refusal (its kind no higher, and no NumPy bool for integers), the
    integers within the target's range.  False when they must be read one by one."""
    depth = len(index)
    rest = shape[depth + 1 :]
    if rest and not all(type(item) is np.ndarray and item.shape == rest for item in items):
        return False
    types = set(map(type, items))
    dtypes = _own_dtypes(items, types)
    rank, kind = _KIND_RANK[target.kind], target.kind
    if (
        dtypes is None
        or target == np.uint64
        or any(_KIND_RANK[dtype.kind] > rank for dtype in dtypes)
        or (kind in "iu" and not dtypes.isdisjoint(_BOOL_AND_UINT64))
        or (not rest and not all(map(_number_type, types)))
    ):
        return False
    wide = {"f": np.float64, "c": np.complex128, "b": np.bool_}.get(kind, np.int64)
    try:
        array = np.array(items, dtype=wide)
        if kind in "iu":
            _in_range(array, target, "")
    except (OverflowError, RuntimeError):  # read one by one for PyTorch's first error
        return False
    out[index] = array
    return True


def _number_type(kind) -> bool:
    """Python's and NumPy's number types (not 0-d arrays or tensors, which PyTorch reads
    by other rules)."""
    return kind in _PYTHON_NUMBERS or issubclass(kind, (np.number, np.bool_))


def _stored(value, target, op):
    """One number of nested data as ``torch.tensor`` stores it at dtype ``target``.

    Integers and bools are read as Python reads an index (``__index__``): a NumPy bool,
    a NumPy float other than float64 (a Python float's subclass) or a 0-d bool or float
    array is refused there, as in PyTorch, and uint64 takes Python ints only.  A NumPy
    array with dimensions is never a number, a tensor only when it has one element.
    """
    kind = target.kind
    if isinstance(value, Tensor):
        if value.data.size != 1:
            error = TypeError if kind in "biu" else ValueError  # PyTorch's __index__, __float__
            raise error(
                f"{op}: found {_described(value)} where a number was expected; only "
                "one-element tensors can be converted to numbers (autodiff.stack joins tensors)"
            )
        return _block(value.data.reshape(()), target, op, "tensor")[()]
    if isinstance(value, np.ndarray):
        if value.ndim:
            raise TypeError(
                f"{op}: found {_described(value)} where a number was expected; only 0-d "
                "arrays can be converted to numbers (np.stack, or a list of lists)"
            )
        return _block(value, target, op, "0-d array")[()]
    if isinstance(value, np.generic):
        return _block(np.asarray(value), target, op, "NumPy")[()]
    if isinstance(value, (bool, int)):
        if target == np.uint64:
            if not 0 <= value < 2**64:
                raise _python_int_overflow(op, target)
            return value
        if kind in "iu":
            if not -(2**63) <= value < 2**63:
                raise _int64_overflow(op)
            return _in_range(value, target, op)
        if kind in "fc":
            try:
                return float(value)
            except OverflowError:
                raise _python_int_overflow(op, target) from None
        return value
    if isinstance(value, float):
        if target == np.uint64:
            raise _unreadable(f"the float {value!r}", target, op)
        return _in_range(value, target, op) if kind in "iu" else value
    if isinstance(value, complex):
        if kind in "iuf":
            raise TypeError(
                f"{op}: found the complex number {value!r} where {target} elements were "
                "expected; expected a real number"
            )
        return value != 0 if kind == "b" else value
    raise TypeError(
        f"{op}: found {_described(value)} where a number was expected; expected nested "
        "lists of a regular shape"
    )


def _block(array, target, op, source="NumPy"):
    """The numbers in ``array`` read as PyTorch reads each at dtype ``target``: its
    elements are NumPy numbers (``source`` "NumPy"), 0-d tensors ("tensor") or it is a
    0-d array ("0-d array").  Refused where PyTorch cannot read them as that kind;
    integers are checked against the target's range."""
    kind, dtype = target.kind, array.dtype
    if not array.size:  # nothing to read (and nothing for NumPy to warn about)
        return array.real if dtype.kind == "c" and kind != "c" else array
    if kind in "biu":
        if target == np.uint64:  # PyTorch reads uint64 from Python ints only
            readable = False
        elif source == "tensor":  # a tensor's __index__: integer and bool tensors
            readable = dtype.kind in "biu"
        elif source == "0-d array":  # a 0-d array's __index__: integers only
            readable = dtype.kind in "iu"
        else:  # NumPy numbers: integers, and the subclasses of Python's float (and, for
            # a bool, of complex), and NumPy bools only as bools
            readable = dtype.kind in "iu" or dtype == np.float64
            readable |= kind == "b" and dtype in (np.bool_, _COMPLEX128)
        if not readable:
            found = {"NumPy": "NumPy numbers", "0-d array": "a 0-d NumPy array"}.get(
                source, "tensor values"
            )
            raise _unreadable(f"{found} of dtype {dtype}", target, op, dtype == np.bool_)
        if source == "tensor" and dtype == np.uint64 and np.any(array > 2**63 - 1):
            raise RuntimeError(  # a tensor is read as an int64 there
                f"{op}: found a uint64 tensor value {array.max()} where {target} elements "
                "were expected; it cannot be converted to int64 without overflow"
            )
        if kind in "iu":
            _in_range(array, target, op)
    elif kind == "f" and dtype.kind == "c":
        if source == "0-d array" or (source == "tensor" and np.any(array.imag)):
            raise (TypeError if source == "0-d array" else RuntimeError)(
                f"{op}: found a complex {source} where {target} elements were expected; "
                "expected a real number (.real)"
            )
        return array.real  # NumPy's complex numbers give their real part, as in PyTorch
    return array


def _unreadable(found, target, op, bools=False) -> TypeError:
    if target == np.uint64:
        why = "uint64 is read from Python ints only"
    elif bools:
        why = "a NumPy bool is no integer (it mixes only with bools and floating point values)"
    else:
        why = "integers are read only from integers (and Python floats)"
    return TypeError(
        f"{op}: found {found} where {target} elements were expected; as in PyTorch, {why}; "
        "expected them converted first (int(), .astype()) or a dtype= that holds them"
    )


def _in_range(value, target, op):
    """``value`` (a number or an array) checked against the integer dtype ``target``'s
    range as PyTorch checks it: floats must be finite and within it, integers too, but
    negative ones wrap into an unsigned type down to minus its maximum (-1 is 255 in
    uint8).  Returns it wrapped so."""
    info = np.iinfo(target)
    values = np.asarray(value, dtype=np.float64 if isinstance(value, float) else None)
    beyond = np.zeros(values.shape, bool)  # a NumPy uint64 beyond int64, read as a Python
    if values.dtype.kind == "f":  # int and then as int64 (PyTorch's ValueError)
        bad = ~np.isfinite(values) | (values < info.min) | (values > info.max)
    else:
        if values.dtype == np.uint64:
            beyond = values > 2**63 - 1
        low = -int(info.max) if target.kind == "u" else int(info.min)
        bad = (values < low) | (values > info.max) | beyond
    if np.any(bad):  # the first in order, as PyTorch reads them
        first = int(np.argmax(bad.ravel()))
        if beyond.ravel()[first] if values.ndim else beyond:
            raise _int64_overflow(op)
        found = values.reshape(-1)[first].item()
        raise RuntimeError(
            f"{op}: found the value {found!r} where {target} elements were expected; it "
            f"cannot be converted to {target} without overflow (its range is {info.min} "
            f"to {info.max})"
        )
    if isinstance(value, int) and value < 0 and target.kind == "u":
        return value + int(info.max) + 1
    return value


def _described(value) -> str:
    if isinstance(value, Tensor):
        return f"a tensor of shape {value.shape} and dtype {value.dtype}"
    if isinstance(value, np.ndarray):
        return f"a NumPy array of shape {value.shape} and dtype {value.dtype}"
    if isinstance(value, np.generic):
        return f"the NumPy {type(value).__name__} {value!r}"
    if isinstance(value, (int, float, complex)):
        return f"the {type(value).__name__} {value!r}"
    return f"a {type(value).__name__}"


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
        return constant(np.any(self.data, axis=dim, keepdims=keepdim))

    def all(self, dim=None, keepdim=False):
        return constant(np.all(self.data, axis=dim, keepdims=keepdim))

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

    def max(self, dim=None, keepdim=False, *, axis=None):
        dim = _dim(dim, axis)
        if isinstance(dim, Tensor):
            return _ops.Maximum.apply(self, dim)
        return _ops.max(self, dim, keepdim)

    def min(self, dim=None, keepdim=False, *, axis=None):
        dim = _dim(dim, axis)
        if isinstance(dim, Tensor):
            return _ops.Minimum.apply(self, dim)
        return _ops.min(self, dim, keepdim)

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
        index = _normalize_index(index, self)
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


def _normalize_index(index, tensor):
    """Tensors and lists in an index become NumPy arrays; everything else stays."""
    if isinstance(index, tuple):
        return tuple(_normalize_index_item(item, tensor) for item in index)
    return _normalize_index_item(index, tensor)


def _normalize_index_item(item, tensor):
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
