"""Reading Python and NumPy data into a NumPy array, as ``torch.tensor`` reads it.

``autodiff.tensor(data)``, ``as_tensor``, ``from_numpy`` and ``Tensor(data)`` hand their
data to ``to_array`` and get back a NumPy array, around which ``creation.py`` and
``tensor.py`` make the tensor.  Operations never come here: they wrap the arrays they
compute with ``Tensor._make``, so this module costs them nothing.

Why not just ``np.array(data)``: NumPy and PyTorch read the same list differently, and a
user who knows PyTorch should not have to guess.  So the rules here are
``torch.tensor``'s:

- dtype: Python floats are float32 (PyTorch's default; NumPy's is float64), ints int64,
  complex numbers complex64, bools bool, and across kinds the highest kind's (``[1, 2.5]``
  is float32); NumPy arrays and numbers keep their own dtype, and the elements of a list
  promote as ``torch.promote_types`` does, in order (``_nested_dtype``, ``_promoted``);
- shape: the length of the first element at each depth, where a NumPy array adds its
  dimensions and a tensor is one number (``_nested_shape``);
- values: each number is read as PyTorch reads it at the target dtype (``_stored``,
  ``_block``), and a NumPy number alone as one in a list: integers and bools through
  ``__index__``, so a NumPy bool or float32 is no integer (nor is a float32 a bool);
  integers within the dtype's range, negative ones wrapping into unsigned types
  (``_in_range``); Python ints beyond int64 refused;
- order: the elements are stored in order, and the first that does not fit is refused
  with PyTorch's exception type, in a message that names the op, what was found and
  what was expected; a list (or array, or tensor) of another length than the shape says
  is a ValueError that names the dim, the place and both lengths (``[[1, 2], [3]]``:
  "expected sequence of length 2 at dim 1 (got 1): data[1] is a list of length 1"), a
  number where a list belongs or a list where a number belongs a TypeError; and, as in
  PyTorch, nothing is read when the shape has no elements (``[[], [1]]`` is empty);
- not numbers: a string, None or another object where numbers belong is a TypeError
  that names the first of them and its place ("found the str 'ab' at data[1]"), with a
  dtype= too (where NumPy would read '1.5' as 1.5 and None as nan), and so are NumPy
  arrays of strings, objects or dates (``_not_a_number``, ``_not_numbers``);
- advice: a list of NumPy arrays (with dimensions) gets a UserWarning to make one array
  of them first, as PyTorch warns that reading such a list is extremely slow there (here
  arrays of one shape and dtype are joined in one NumPy call, ``_stacked``).

Python numbers and lists of them take the fast road, ``np.array`` at the dtype that
``_inferred_dtype`` finds in one pass; lists that hold NumPy values or tensors are read
element by element as PyTorch reads them (``_nested_array``), and so are lists of
numbers that NumPy finds ragged, to refuse them as PyTorch does.  The default dtype and
dtype arguments (``get_default_dtype``, ``as_dtype``) are read here too.

This module imports no other part of autodiff: ``tensor.py`` imports it, and the tensors
found in the data are recognised through ``_tensor_class()``, which imports ``Tensor``
when first asked.
"""

from __future__ import annotations

import functools
import operator
import os
import reprlib
import sys
import warnings

import numpy as np


@functools.cache
def _tensor_class():
    """``autodiff.Tensor``, imported on first use: ``tensor.py`` imports this module
    (``Tensor(data)`` reads its data here), so this one cannot import it at its top.
    Tensors in the data are recognised by it and read through ``.data`` (their array),
    ``.dtype``, ``.shape`` and ``.ndim``; a tensor's rows become tensors by ``_make``."""
    from .tensor import Tensor

    return Tensor


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
        dtype = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"{op}: {dtype!r} is not a dtype (try autodiff.float32)") from None
    if not dtype.isnative or _long_double(dtype):
        raise TypeError(
            f"{op}: {dtype} is not a dtype PyTorch has (a tensor holds numbers of this "
            "machine's byte order, floats of up to 64 bits); try autodiff.float64"
        )
    return dtype


def _long_double(dtype) -> bool:
    """NumPy's long double (float128, complex256 on x86 Linux), which PyTorch has no dtype of."""
    return dtype.kind in "fc" and dtype.itemsize > (8 if dtype.kind == "f" else 16)


def _check_readable(dtype, op, inside=False) -> None:
    """Refuse NumPy values that PyTorch does not read: long doubles (a TypeError) and arrays
    of the other byte order (a ValueError), instead of tensors of dtypes no op expects.
    ``inside`` a list, arrays of the other byte order are read (number by number, in
    PyTorch), into this machine's (see ``_native``)."""
    if _long_double(dtype):
        usual = "complex128" if dtype.kind == "c" else "float64"
        raise TypeError(
            f"{op}: found NumPy {dtype} (long double) values, which PyTorch has no dtype for "
            f"and refuses; convert them first, e.g. .astype(np.{usual})"
        )
    if not dtype.isnative and not inside:
        raise ValueError(
            f"{op}: the array's byte order ({dtype.str}) is not this machine's; as in PyTorch, "
            "such arrays are not read; convert it first: "
            "array.astype(array.dtype.newbyteorder('='))"
        )


def _native(dtype):
    """``dtype`` in this machine's byte order (what a list's arrays of the other are read as)."""
    return dtype if dtype.isnative else dtype.newbyteorder("=")


def to_array(data, dtype=None, op="tensor", copy=True) -> np.ndarray:
    """Convert Python data or an array to a NumPy array with PyTorch's dtype defaults.

    Python floats become float32, complex numbers complex64, ints int64, bools bool;
    NumPy arrays keep their dtype unless ``dtype`` is given.  Nested lists that hold
    NumPy numbers, arrays or tensors are read as ``torch.tensor`` reads them (see
    ``_nested_array``): accepted, with the same dtype, where PyTorch accepts them.
    """
    dtype = as_dtype(dtype, op)
    if isinstance(data, (np.ndarray, np.generic)):
        if data.dtype.kind not in "biufc":
            raise _not_numbers(data, op)  # before NumPy's cast, which parses strings ('1.5')
        _check_readable(data.dtype, op)
    if isinstance(data, np.generic) and (
        dtype not in (None, data.dtype) or data.dtype == np.uint64
    ):
        # PyTorch reads a NumPy number as it reads one in a list, torch.tensor(x, dtype) being
        # torch.tensor([x], dtype)[0]: integers and bools through __index__, which NumPy's
        # floats other than float64 lack (np.float32(1) as bool is refused), uint64 from
        # Python ints only.  At its own dtype NumPy's copy below is that reading
        return _nested_array([data], dtype, op).reshape(())
    if isinstance(data, (np.ndarray, np.generic)):
        return _numeric(
            # copy=None: a copy only where the dtype needs one (False would refuse it)
            np.array(data, dtype=dtype, copy=copy or None) if copy or dtype is not None else data,
            data,
            op,
        )
    inferred = _inferred_dtype(data)
    if inferred is _NESTED and isinstance(data, _tensor_class()):  # (a tensor is _NESTED: so
        return to_array(data.data, dtype, op, copy)  # Python numbers skip this check)
    if inferred is _NESTED or (
        dtype is not None
        and dtype.kind in "iuf"
        and inferred is not None
        and _KIND_RANK[inferred.kind] > _KIND_RANK[dtype.kind]
    ):  # NumPy values or tensors inside, or floats given for integers (complex numbers for
        # floats): PyTorch's rules, where NumPy would cast them
        return _nested_array(data, dtype, op)
    found = None
    if inferred is None:  # something besides numbers and lists: an array-like NumPy reads
        # (range, another library's tensor), or no number at all, refused here before
        # NumPy reads '1.5' as 1.5 or None as nan at a float dtype
        found = _first_non_number(data)
        if isinstance(found[1], _NEVER_NUMBERS) or not _array_like(data):
            raise _not_a_number(*found, op)
    target = inferred if dtype is None else dtype  # None: NumPy judges (array-likes)
    # NumPy reads the numbers as PyTorch does: integers as int64 (a narrower dtype's range
    # checked after, negative ints wrapping into unsigned ones), float16 through float32
    via = target if target is None else _READ_AS.get(target.kind, {}).get(target, target)
    try:
        with np.errstate(over="ignore"):  # as PyTorch, 1e39 in float32 is inf
            array = np.array(data, dtype=via)
    except (OverflowError, ValueError, TypeError) as error:
        if inferred is not None and not isinstance(error, TypeError):
            # numbers only, which NumPy refused: a shape that is not regular, or a Python
            # int beyond int64 (float64 for floats).  Read the data as PyTorch reads it,
            # in order, which raises what PyTorch raises first (ValueError for a list of
            # another length than the first at its depth, RuntimeError for [300, 2**63]
            # as uint8), or reads no number at all when the first elements give a shape
            # with a 0 in it ([[], [1]])
            return _nested_array(data, dtype, op)
        if isinstance(error, OverflowError):
            raise _python_int_overflow(op, via) from None
        if found is not None:  # NumPy's words ("inhomogeneous shape") would say less
            raise _not_a_number(*found, op) from None
        raise TypeError(
            f"{op}: could not read the numbers in the data as {target} ({error})"
        ) from None
    if via != target:
        if target.kind in "iu":
            _in_range(array, target, op)
        with np.errstate(over="ignore"):  # float16's inf
            array = array.astype(target)
    return _numeric(array, data, op)


# Never read as numbers (nor does PyTorch read strings or None): NumPy would parse strings
# ('1.5' as 1.5, any string as True at bool) and read None as nan at a float dtype
_NEVER_NUMBERS = (str, bytes, bytearray, type(None))


def _first_non_number(data):
    """(index, value) of the first element of ``data``, in order, that is neither a number
    (Python's or NumPy's), an array or tensor, nor a list or tuple; ``((), data)`` when
    ``data`` is no list.  None when every element is."""
    stack = [((), data)]
    while stack:
        index, value = stack.pop()
        if not isinstance(value, _SEQUENCES):
            if not _number_like(type(value)):
                return index, value
        elif not all(map(_number_like, set(map(type, value)))):  # lists, or no numbers, inside
            stack.extend(((*index, i), item) for i, item in reversed(list(enumerate(value))))
    return None


def _array_like(data) -> bool:
    """Whether NumPy reads ``data`` as numbers by itself: at a dtype it would also cast what
    is no number (bool({}) is False, bool(object()) True)."""
    try:
        return np.array(data).dtype.kind in "biufc"
    except (ValueError, TypeError):
        return False


def _not_a_number(index, value, op) -> TypeError:
    """The TypeError for ``value``, found at ``index`` of the data where numbers belong."""
    where = f" at {_at(index)}" if index else ""
    if isinstance(value, (str, bytes, bytearray)):
        hint = "; strings are not read as numbers: convert them first, e.g. float(text)"
    elif value is None:
        hint = "; for a missing value use float('nan')"
    else:
        hint = ""
    return TypeError(
        f"{op}: expected numbers, nested lists of numbers of a regular shape or a NumPy array; "
        f"found {_described(value)}{where}{hint}"
    )


def _not_numbers(array, op) -> TypeError:
    """The TypeError for a NumPy array or value of strings, objects or dates."""
    return TypeError(
        f"{op}: expected numbers, found {_described(array)}: strings, objects and dates are not "
        "read as numbers; convert them first, e.g. .astype(np.float32)"
    )


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
_MAX_DIMS = 64  # NumPy's limit
# _inferred_dtype's answer for a tensor, and for lists that hold NumPy values or tensors
_NESTED = object()
_COMPLEX128 = np.dtype(np.complex128)
# PyTorch promotes these only with themselves and floating point dtypes
_WIDE_UNSIGNED = frozenset(map(np.dtype, (np.uint16, np.uint32, np.uint64)))
_BOOL_AND_UINT64 = frozenset(map(np.dtype, (np.bool_, np.uint64)))


def _inferred_dtype(data):
    """The dtype of ``torch.tensor(data)`` for Python numbers and nested lists of them.

    Across kinds the highest kind's dtype: ``[1, 2.5]`` is float32 (NumPy's ``np.array``
    gives float64), ``[True, 2]`` int64, ``[1 + 2j]`` complex64.  ``_NESTED`` when the
    lists hold NumPy numbers, arrays or tensors anywhere, which ``_nested_array`` reads as
    PyTorch does (refusing whatever else they hold); otherwise None when they hold
    something else (strings, None), which NumPy then refuses.  The answer does not depend
    on the order in which the element types are met.
    """
    own = _PYTHON_NUMBERS.get(type(data))
    if own is not None:
        return own
    if not isinstance(data, _SEQUENCES):
        return _NESTED if _number_like(type(data)) else None
    found = set()
    others = False  # neither numbers nor lists (strings, None): None, unless _NESTED
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
            elif _number_like(kind):
                return _NESTED
            else:
                others = True
        if nested:
            stack.extend(v for v in value if isinstance(v, _SEQUENCES))
    if others:
        return None
    if not found:
        return _PYTHON_FLOAT  # no elements: the default, as for []
    return max(found, key=lambda dtype: _KIND_RANK[dtype.kind])  # one dtype per kind


def _number_like(kind) -> bool:
    """NumPy numbers and arrays, tensors, and subclasses of Python numbers (an IntEnum)."""
    return issubclass(kind, (np.generic, np.ndarray, _tensor_class(), int, float, complex))


def _nested_array(data, dtype, op) -> np.ndarray:
    """``torch.tensor(data)`` for nested lists that hold NumPy numbers, arrays or tensors.

    As in PyTorch, in three steps: the shape comes from the first element at each depth
    (``_nested_shape``); the dtype, unless given, is promoted over the elements in order
    (``_nested_dtype``); then each element is stored at that dtype, in order, which
    refuses what PyTorch refuses (``_store``): a list of another length than the shape
    says (ValueError), a NumPy bool among integers, a NumPy array with dimensions or a
    tensor of several elements where a number belongs.  As PyTorch, it stores nothing,
    and so checks nothing more, when the shape has no elements (``[[], [1]]`` is empty).
    """
    stacked = _stacked(data, dtype)
    if stacked is not None:
        _advise_one_array(op)
        return stacked
    shape = _nested_shape(data, op)
    if len(shape) > _MAX_DIMS:
        raise ValueError(
            f"{op}: the data is nested {len(shape)} deep, and a NumPy array (so a tensor "
            f"here) has at most {_MAX_DIMS} dimensions"
        )
    try:
        target = _nested_dtype(data, op) if dtype is None else dtype
    except TypeError:  # a string, None or an object among them: named with its place
        found = _first_non_number(data)
        if found is None:
            raise
        raise _not_a_number(*found, op) from None
    # PyTorch stores each number as a C double or complex and then converts it, so an
    # int64 that becomes float32 is rounded twice, as here (float16 goes through float32)
    wide = {"f": np.dtype(np.float64), "c": _COMPLEX128}.get(target.kind, target)
    out = np.empty(shape, wide)
    if out.size and _store(data, out, (), shape, target, op):
        _advise_one_array(op)
    if wide != target:
        with np.errstate(over="ignore"):  # as PyTorch, 1e39 in float32 is inf
            if target == np.float16:
                out = out.astype(np.float32)
            out = out.astype(target)
    return out


# The dtypes of arrays that _stacked joins: those PyTorch reads (not uint64, which it
# reads from Python ints only, nor longdouble), in the machine's byte order
_STACKABLE = frozenset(
    np.dtype(t)
    for t in (np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32)
    + (np.float16, np.float32, np.float64, np.complex64, np.complex128)
)


def _stacked(data, dtype):
    """A list of NumPy arrays of one shape and dtype joined by one ``np.array`` call, when
    that gives what ``_nested_array`` gives reading them as PyTorch does, bit for bit;
    None otherwise.  Three times faster (10,000 float32 28x28 images: 8 ms, not 23), as
    it skips the work per array in Python and the float64 round trip.

    That round trip changes no value when the dtype stays the array's own, nor does it
    change float64 to float32 otherwise than a direct cast (one rounding either way); but
    it quiets a signalling NaN of float16, float32 or complex64 (as PyTorch's does), so
    arrays with a NaN in them take the long road.  Empty arrays do too (PyTorch reads the
    shape only up to the first 0), and arrays with as many dimensions as NumPy allows
    (joined, they would have one too many, which the long road refuses in its words).
    """
    first = data[0] if isinstance(data, _SEQUENCES) and data else None
    if type(first) is not np.ndarray or not first.size or not 0 < first.ndim < _MAX_DIMS:
        return None  # (a 0-d array first is refused, as in PyTorch)
    source, shape = first.dtype, first.shape
    target = source if dtype is None else dtype
    if source not in _STACKABLE or (target != source and (source, target) != _FLOAT64_TO_32):
        return None
    for item in data:  # (a subclass, np.matrix or a masked array, reads otherwise)
        if type(item) is not np.ndarray or item.dtype != source or item.shape != shape:
            return None
    with np.errstate(over="ignore"):  # as PyTorch, 1e39 in float32 is inf
        out = np.array(data, dtype=target)
    if source in _ROUND_TRIPPED:
        parts = out.view(out.real.dtype)  # (complex64: its real and imaginary parts)
        if np.isnan(parts.max()):  # a NaN, maybe signalling: the round trip decides
            return None
    return out


_FLOAT64_TO_32 = (np.dtype(np.float64), np.dtype(np.float32))
# read through float64 (complex128) and back, which quiets a signalling NaN
_ROUND_TRIPPED = frozenset(map(np.dtype, (np.float16, np.float32, np.complex64)))


def _advise_one_array(op):
    warnings.warn(
        f"{op}: making a tensor from a list of NumPy arrays is extremely slow in PyTorch, "
        "which warns too, and slower here than from one array but for arrays of one shape "
        f"and dtype; make one array of them first: autodiff.{op}(np.array(data)), or "
        "np.stack(arrays) for arrays of one shape",
        UserWarning,
        stacklevel=_users_stacklevel(),
    )


# The library's packages: a warning names the first line outside them, the user's
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_LIBRARY = tuple(
    os.path.join(_ROOT, package) + os.sep
    for package in ("autodiff", "nn", "visualize", "autodiff_cli")
)


def _users_stacklevel() -> int:
    """The ``stacklevel`` that makes a warning raised by the caller name the line of the
    user's code that reached it, however many of the library's frames lie between:
    ``autodiff.tensor(data)``, ``nn.Parameter(data)``, ``autodiff.exp(data)`` and
    ``nn.functional.relu(data)`` each reach it through another number of them."""
    frame, level = sys._getframe(1), 1  # the caller, where stacklevel=1 points
    while frame is not None and frame.f_code.co_filename.startswith(_LIBRARY):
        frame, level = frame.f_back, level + 1
    return level


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
            promoted = functools.reduce(lambda a, b: _promoted(a, b, op), dtypes)
            _check_readable(promoted, op, inside=True)  # (a NumPy long double among them)
            return promoted
        dtype = None
        for item in value:
            own = _PYTHON_NUMBERS.get(type(item)) or _nested_dtype(item, op)
            dtype = own if dtype is None else _promoted(dtype, own, op)
            if dtype == _COMPLEX128:
                break
        return dtype
    if isinstance(value, (np.ndarray, np.generic, _tensor_class())):
        if value.dtype.kind in _KIND_RANK:
            _check_readable(value.dtype, op, inside=True)
            return _native(value.dtype)
        raise _not_numbers(value, op)
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
    is read as ``target`` needs it (``_stored``).  True when it read NumPy arrays with
    dimensions (which ``to_array`` then advises to join first)."""
    depth = len(index)
    if depth == len(shape):
        if isinstance(value, _SEQUENCES):  # [1, [2, 3]]
            raise TypeError(
                f"{op}: expected a number at {_at(index)}, found a {type(value).__name__} of "
                f"length {len(value)}: the first elements give the shape {shape}, whose last "
                "dim holds numbers; nested lists must be of a regular shape"
            )
        if not _number_like(type(value)):  # a string, None, an object: no number
            raise _not_a_number(index, value, op)
        out[index] = _stored(value, target, op)
        return False
    size = shape[depth]
    if isinstance(value, _SEQUENCES):
        if len(value) == size and _stored_at_once(value, out, index, shape, target):
            return depth + 1 < len(shape)  # then they were NumPy arrays
        items = value
    elif isinstance(value, (np.ndarray, _tensor_class())) and value.ndim:
        array = value if isinstance(value, np.ndarray) else value.data
        if value.shape == shape[depth:]:  # every element a number: checked in one go
            out[index] = _block(array, target, op, "tensor" if array is not value else "NumPy")
            return array is value
        if array is value:
            items = list(array)  # NumPy numbers, or arrays of one dimension less
        else:  # tensors of one dimension less
            items = [_tensor_class()._make(np.asarray(row), None, None) for row in array]
    elif not _number_like(type(value)):  # a string, None, an object where a list belongs
        raise _not_a_number(index, value, op)
    else:  # [[1, 2], 3]: PyTorch's TypeError, "not a sequence"
        raise TypeError(
            f"{op}: expected a sequence of length {size} at dim {depth}, found "
            f"{_described(value)} at {_at(index)}: the first elements give the shape "
            f"{shape}; nested lists must be of a regular shape"
        )
    if len(items) != size:  # [[1, 2], [3]]: PyTorch's ValueError, in its words first
        found = (
            f"a {type(value).__name__} of length {len(items)}"
            if isinstance(value, _SEQUENCES)
            else _described(value)
        )
        raise ValueError(
            f"{op}: expected sequence of length {size} at dim {depth} (got {len(items)}): "
            f"{_at(index)} is {found}, but the first elements give the shape {shape}; "
            "nested lists must be of a regular shape (pad the short ones, or keep a list "
            "of tensors)"
        )
    read_arrays = isinstance(value, np.ndarray)
    for i, item in enumerate(items):
        if _store(item, out, (*index, i), shape, target, op):
            read_arrays = True
    return read_arrays


def _at(index) -> str:
    """Where an element is in the data: ``data[1][0]``."""
    return "data" + "".join(f"[{i}]" for i in index)


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
        elif issubclass(kind, (np.ndarray, _tensor_class())):
            dtypes.update(_native(item.dtype) for item in items if type(item) is kind)
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
        with np.errstate(invalid="ignore"):  # a signalling NaN quieted: silently, as PyTorch
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
    if isinstance(value, _tensor_class()):
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
    if dtype.kind not in _KIND_RANK:  # strings, objects, dates: NumPy would parse '1.5'
        raise _not_numbers(array if array.ndim or source != "NumPy" else array[()], op)
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
            if source == "NumPy" and not array.ndim:  # one NumPy number: name it
                found = f"the NumPy {dtype} {array.item()!r}"
            else:
                found = {"NumPy": "NumPy numbers", "0-d array": "a 0-d NumPy array"}.get(
                    source, "tensor values"
                )
                found = f"{found} of dtype {dtype}"
            raise _unreadable(found, target, op, dtype == np.bool_)
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
    convert = "int(), .astype()"
    if target == np.uint64:
        why = "uint64 is read from Python ints only"
    elif bools:
        why = "a NumPy bool is no integer (it mixes only with bools and floating point values)"
    elif target == np.bool_:  # through __index__, as integers, but Python's float and complex
        why = (  # (so NumPy's float64 and complex128) are read as bool(value)
            "bools are read only from Python numbers, NumPy integers and bools, and NumPy's "
            "float64 and complex128 (which are Python floats and complex numbers)"
        )
        convert = "bool(), .astype(bool)"
    else:
        why = "integers are read only from integers (and Python floats)"
    return TypeError(
        f"{op}: found {found} where {target} elements were expected; as in PyTorch, {why}; "
        f"expected them converted first ({convert}) or a dtype= that holds them"
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
        # (values >= max + 1) because int64's max, 2**63 - 1, is 2**63 as a float: so
        # PyTorch's check lets 2.0**63 through, to a cast without a defined result (x86
        # gives -2**63), where we refuse it as its neighbours are (2.0**63 + 2048: refused)
        high = (values > info.max) | (values >= info.max + 1)
        bad = ~np.isfinite(values) | (values < info.min) | high
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
    if isinstance(value, _tensor_class()):
        return f"a tensor of shape {value.shape} and dtype {value.dtype}"
    if isinstance(value, np.ndarray):
        return f"a NumPy array of shape {value.shape} and dtype {value.dtype}"
    if isinstance(value, np.generic):
        return f"the NumPy {type(value).__name__} {value!r}"
    if isinstance(value, (int, float, complex)):
        return f"the {type(value).__name__} {value!r}"
    if isinstance(value, (str, bytes, bytearray)):
        return f"the {type(value).__name__} {reprlib.repr(value)}"
    if value is None:
        return "None"
    name = type(value).__name__
    return f"{'an' if name[0] in 'aeiou' else 'a'} {name}"
