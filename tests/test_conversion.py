"""Reading data as ``torch.tensor`` reads it (``autodiff/conversion.py``): ragged lists,
and the advice to join a list of NumPy arrays first.

PyTorch reads the shape from the first element at each depth, then stores the elements
in order and raises at the first that does not fit: ValueError for a list (an array, a
tensor) of another length than the shape says, TypeError for a number where a list
belongs or a list where a number belongs.  The table's rows were found with PyTorch
2.13 and are checked against PyTorch when it is installed; a Hypothesis test draws
nested, mostly ragged data and compares every outcome with ``torch.tensor``'s.
"""

from __future__ import annotations

import linecache
import re
import warnings
from unittest import mock

import numpy as np
import pytest
from hypothesis import event, example, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import autodiff
import nn
import nn.functional as F  # noqa: N812 (as torch.nn.functional is imported)
from autodiff import conversion
from nn.data import DataLoader, Dataset, TensorDataset, default_collate, default_convert

ADVICE = r"making a tensor from a list of NumPy arrays"

# name -> (data(lib), dtype name or None, the exception PyTorch raises or (dtype, shape))
RAGGED = {
    # lists of lists
    "[[1, 2], [3]]": (lambda lib: [[1, 2], [3]], None, ValueError),
    "[[1], [2, 3]]": (lambda lib: [[1], [2, 3]], None, ValueError),
    "[[1, 2], []]": (lambda lib: [[1, 2], []], None, ValueError),
    "[[1.5, 2], [3]]": (lambda lib: [[1.5, 2], [3]], None, ValueError),
    "[[1j, 2], [3]]": (lambda lib: [[1j, 2], [3]], None, ValueError),
    "[[True, False], [True]]": (lambda lib: [[True, False], [True]], None, ValueError),
    "((1, 2), (3,))": (lambda lib: ((1, 2), (3,)), None, ValueError),
    "[[1, 2], (3,)]": (lambda lib: [[1, 2], (3,)], None, ValueError),
    "[[1, 2], [3, 4, 5], [6]]": (lambda lib: [[1, 2], [3, 4, 5], [6]], None, ValueError),
    "[[[1, 2], [3, 4]], [[5, 6], [7]]] (dim 2)": (
        lambda lib: [[[1, 2], [3, 4]], [[5, 6], [7]]],
        None,
        ValueError,
    ),
    "[[[1, 2], [3, 4]], [[5, 6]]]": (lambda lib: [[[1, 2], [3, 4]], [[5, 6]]], None, ValueError),
    "[[1, 2], [3]] as float32": (lambda lib: [[1, 2], [3]], "float32", ValueError),
    "[[1, 2], [3]] as uint8": (lambda lib: [[1, 2], [3]], "uint8", ValueError),
    "[[1, 2], [3]] as bool": (lambda lib: [[1, 2], [3]], "bool", ValueError),
    "[[1.5, 2], [3]] as int64": (lambda lib: [[1.5, 2], [3]], "int64", ValueError),
    # the first problem in order is the one raised, as PyTorch stores in order
    "[[300, 2], [3]] as uint8 (overflow first)": (
        lambda lib: [[300, 2], [3]],
        "uint8",
        RuntimeError,
    ),
    "[[1, 2], [300]] as uint8 (length first)": (lambda lib: [[1, 2], [300]], "uint8", ValueError),
    "[[2**63, 2], [3]] (int64 overflow first)": (lambda lib: [[2**63, 2], [3]], None, ValueError),
    "[300, 2**63] as uint8 (regular: the range first)": (
        lambda lib: [300, 2**63],
        "uint8",
        RuntimeError,
    ),
    "[2**63, 300] as uint8 (regular: int64 first)": (lambda lib: [2**63, 300], "uint8", ValueError),
    "[[np.bool_(True), 2], [3]] (NumPy bool first)": (
        lambda lib: [[np.bool_(True), 2], [3]],
        None,
        TypeError,
    ),
    "[[np.uint16(1), 2], [3]] (promotion first)": (
        lambda lib: [[np.uint16(1), 2], [3]],
        None,
        RuntimeError,
    ),
    "[[np.int8(1), 2], [3]]": (lambda lib: [[np.int8(1), 2], [3]], None, ValueError),
    "[[1, 2], [np.float64(3)]]": (lambda lib: [[1, 2], [np.float64(3)]], None, ValueError),
    # PyTorch reads no element when the first elements give a shape with a 0
    "[[], [1]] (empty: nothing read)": (lambda lib: [[], [1]], None, ("float32", (2, 0))),
    "[[], 5]": (lambda lib: [[], 5], None, ("float32", (2, 0))),
    "[[[]], [[1]]]": (lambda lib: [[[]], [[1]]], None, ("float32", (2, 1, 0))),
    "[[1], []]": (lambda lib: [[1], []], None, ValueError),
    # lists mixing numbers and lists
    "[[1, 2], 3]": (lambda lib: [[1, 2], 3], None, TypeError),
    "[[1, 2], 3, [4]]": (lambda lib: [[1, 2], 3, [4]], None, TypeError),
    "[[1, 2], [3], 4] (the short list first)": (lambda lib: [[1, 2], [3], 4], None, ValueError),
    "[1, [2, 3]]": (lambda lib: [1, [2, 3]], None, TypeError),
    "[[1], [[2]]]": (lambda lib: [[1], [[2]]], None, TypeError),
    "[[1, [2]], [3, 4]]": (lambda lib: [[1, [2]], [3, 4]], None, TypeError),
    "[[[1, 2], [3, 4]], [5, 6]]": (lambda lib: [[[1, 2], [3, 4]], [5, 6]], None, TypeError),
    "[[1, 2], np.float64(3)]": (lambda lib: [[1, 2], np.float64(3)], None, TypeError),
    # NumPy arrays of different shapes
    "[np.array([1, 2]), np.array([3])]": (
        lambda lib: [np.array([1, 2]), np.array([3])],
        None,
        ValueError,
    ),
    "[np.array([1]), np.array([2, 3])]": (
        lambda lib: [np.array([1]), np.array([2, 3])],
        None,
        ValueError,
    ),
    "[np.ones((2, 2)), np.ones((2, 3))] (dim 2)": (
        lambda lib: [np.ones((2, 2)), np.ones((2, 3))],
        None,
        ValueError,
    ),
    "[np.ones((1, 2)), np.ones((2, 2))]": (
        lambda lib: [np.ones((1, 2)), np.ones((2, 2))],
        None,
        ValueError,
    ),
    "[np.ones((2, 2)), np.ones(2)]": (lambda lib: [np.ones((2, 2)), np.ones(2)], None, TypeError),
    "[np.ones(2), np.ones((2, 2))]": (lambda lib: [np.ones(2), np.ones((2, 2))], None, TypeError),
    "[[np.ones(2)], [np.ones(3)]]": (lambda lib: [[np.ones(2)], [np.ones(3)]], None, ValueError),
    "[np.zeros(3), np.zeros(0)]": (lambda lib: [np.zeros(3), np.zeros(0)], None, ValueError),
    "[np.zeros(0), np.zeros(3)] (empty: nothing read)": (
        lambda lib: [np.zeros(0), np.zeros(3)],
        None,
        ("float64", (2, 0)),
    ),
    "[[1, 2], np.array([3])]": (lambda lib: [[1, 2], np.array([3])], None, ValueError),
    "[np.array([1, 2]), [3]]": (lambda lib: [np.array([1, 2]), [3]], None, ValueError),
    "[np.array([1, 2]), 3]": (lambda lib: [np.array([1, 2]), 3], None, TypeError),
    "[[1, 2], np.ones((2, 1))]": (lambda lib: [[1, 2], np.ones((2, 1))], None, TypeError),
    "[np.ones((2, 2)), [[1, 2], [3]]]": (
        lambda lib: [np.ones((2, 2)), [[1, 2], [3]]],
        None,
        ValueError,
    ),
    # tensors of different shapes inside a list
    "[[1, 2], a tensor of shape (1,)]": (lambda lib: [[1, 2], lib.tensor([3])], None, ValueError),
    "[[1, 2], a tensor of shape (3,)]": (
        lambda lib: [[1, 2], lib.tensor([3, 4, 5])],
        None,
        ValueError,
    ),
    "[[1, 2], a tensor of shape (1, 2)]": (
        lambda lib: [[1, 2], lib.tensor([[3, 4]])],
        None,
        ValueError,
    ),
    "[[1, 2], a 0-d tensor]": (lambda lib: [[1, 2], lib.tensor(3)], None, TypeError),
    "[np.array([1, 2]), a tensor of shape (3,)]": (
        lambda lib: [np.array([1, 2]), lib.tensor([3, 4, 5])],
        None,
        ValueError,
    ),
    "[[0-d tensors] x 2, [0-d tensors] x 3]": (
        lambda lib: [[lib.tensor(1.0), lib.tensor(2.0)], [lib.tensor(3.0)] * 3],
        None,
        ValueError,
    ),
    "[[tensors of shape (1,)] x 2, [a tensor of shape (2,)]]": (
        lambda lib: [[lib.tensor([1.0]), lib.tensor([2.0])], [lib.tensor([3.0, 4.0])]],
        None,
        ValueError,
    ),
    # a tensor first is one number, so tensors of several elements are no rows
    "[a tensor of shape (2,), a tensor of shape (1,)] (int)": (
        lambda lib: [lib.tensor([1, 2]), lib.tensor([3])],
        None,
        TypeError,
    ),
    "[a tensor of shape (2,), [3]] (float)": (
        lambda lib: [lib.tensor([1.0, 2.0]), [3]],
        None,
        ValueError,
    ),
    "[a 0-d tensor, [3]]": (lambda lib: [lib.tensor(1.0), [3]], None, TypeError),
}


def _tensor_of(lib, data, dtype=None):
    if dtype is not None:  # autodiff's dtypes are NumPy's, uint16 and complex64 too
        dtype = np.dtype(dtype) if lib is autodiff else getattr(lib, dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the advice about lists of NumPy arrays (both)
        return lib.tensor(data, dtype=dtype)


def _outcome(lib, data, dtype=None):
    """The exception type (a built-in one: PyTorch raises subclasses) or (dtype, shape)."""
    try:
        result = _tensor_of(lib, data, dtype)
    except Exception as error:
        return next(cls for cls in type(error).__mro__ if cls.__module__ == "builtins")
    return str(result.dtype).removeprefix("torch."), tuple(result.shape)


@pytest.mark.parametrize("name", RAGGED)
def test_ragged_data_is_refused_or_read_as_in_pytorch(name):
    make, dtype, expected = RAGGED[name]
    assert _outcome(autodiff, make(autodiff), dtype) == expected


@pytest.mark.torch
@pytest.mark.parametrize("name", RAGGED)
def test_the_ragged_table_is_pytorchs(torch, name):
    make, dtype, expected = RAGGED[name]
    assert _outcome(torch, make(torch), dtype) == expected


@pytest.mark.parametrize(
    "data, message",
    [
        (
            [[1, 2], [3]],
            r"^tensor: expected sequence of length 2 at dim 1 \(got 1\): data\[1\] is a list "
            r"of length 1, but the first elements give the shape \(2, 2\); nested lists must "
            r"be of a regular shape",
        ),
        (
            [[[1, 2], [3, 4]], [[5, 6], [7, 8, 9]]],
            r"^tensor: expected sequence of length 2 at dim 2 \(got 3\): data\[1\]\[1\] is a "
            r"list of length 3, but the first elements give the shape \(2, 2, 2\)",
        ),
        (
            [np.ones((2, 2)), np.ones((2, 3))],
            r"^tensor: expected sequence of length 2 at dim 2 \(got 3\): data\[1\]\[0\] is a "
            r"NumPy array of shape \(3,\)",
        ),
        (
            [[1.0, 2.0], autodiff.tensor([3.0])],
            r"^tensor: expected sequence of length 2 at dim 1 \(got 1\): data\[1\] is a "
            r"tensor of shape \(1,\) and dtype float32",
        ),
        (
            [[1, 2], 3],
            r"^tensor: expected a sequence of length 2 at dim 1, found the int 3 at data\[1\]: "
            r"the first elements give the shape \(2, 2\)",
        ),
        (
            [[1, 2], [3, [4]]],
            r"^tensor: expected a number at data\[1\]\[1\], found a list of length 1: the first "
            r"elements give the shape \(2, 2\)",
        ),
    ],
    ids=["short-list", "dim-2", "arrays", "tensor", "number-for-list", "list-for-number"],
)
def test_a_ragged_list_is_named_with_its_dim_its_place_and_both_lengths(data, message):
    with pytest.raises((ValueError, TypeError)) as info:
        autodiff.tensor(data)
    assert re.search(message, str(info.value)), str(info.value)
    with pytest.raises(type(info.value), match=message.replace("^tensor", "^as_tensor")):
        autodiff.as_tensor(data)


def test_as_tensor_converts_to_another_dtype_and_shares_memory_where_it_can():
    """As torch.as_tensor: a copy only where the dtype changes (NumPy 2's copy=False
    refused to make one, so as_tensor(array, dtype=...) raised NumPy's ValueError)."""
    array = np.arange(3.0)
    assert autodiff.as_tensor(array, dtype=autodiff.float32).tolist() == [0.0, 1.0, 2.0]
    assert autodiff.as_tensor(array, dtype=autodiff.float32).dtype == np.float32
    assert np.shares_memory(autodiff.as_tensor(array, dtype=autodiff.float64).data, array)
    assert np.shares_memory(autodiff.as_tensor(array).data, array)
    assert autodiff.as_tensor(np.float64(2.5), dtype=autodiff.int64).item() == 2
    assert autodiff.as_tensor(autodiff.tensor([1.5, 2.5]), dtype=autodiff.int64).tolist() == [1, 2]


# -- a NumPy number alone -------------------------------------------------------------------

# PyTorch reads a NumPy number as it reads one in a list: torch.tensor(x, dtype) is
# torch.tensor([x], dtype)[0] (PyTorch 2.13, 14 NumPy types x 11 values x 14 dtypes), so
# integers and bools are read through __index__, which NumPy's floats other than float64
# (a Python float) lack, and uint64 from Python ints only; NumPy's cast took them all.
# name -> (the number, dtype name or None, the exception PyTorch raises or (dtype, value))
NUMPY_NUMBERS = {
    "np.float32(1) as bool": (np.float32(1), "bool", TypeError),
    "np.float32(0) as bool": (np.float32(0), "bool", TypeError),
    "np.float16(1) as bool": (np.float16(1), "bool", TypeError),
    "np.complex64(1j) as bool": (np.complex64(1j), "bool", TypeError),
    "np.float64(1.5) as bool (a Python float)": (np.float64(1.5), "bool", ("bool", True)),
    "np.float64(0) as bool": (np.float64(0), "bool", ("bool", False)),
    "np.complex128(0j) as bool (a Python complex)": (np.complex128(0j), "bool", ("bool", False)),
    "np.int8(2) as bool": (np.int8(2), "bool", ("bool", True)),
    "np.bool_(True) as bool": (np.bool_(True), "bool", ("bool", True)),
    "np.bool_(True) as int64": (np.bool_(True), "int64", TypeError),
    "np.bool_(True) as float32": (np.bool_(True), "float32", ("float32", 1.0)),
    "np.float32(1.5) as int64": (np.float32(1.5), "int64", TypeError),
    "np.float64(1.5) as int64": (np.float64(1.5), "int64", ("int64", 1)),
    "np.float64(300) as uint8": (np.float64(300), "uint8", RuntimeError),
    "np.float64(-1) as uint8": (np.float64(-1), "uint8", RuntimeError),
    "np.float64(nan) as int32": (np.float64("nan"), "int32", RuntimeError),
    "np.int64(300) as uint8": (np.int64(300), "uint8", RuntimeError),
    "np.int64(-1) as uint8 (wraps)": (np.int64(-1), "uint8", ("uint8", 255)),
    "np.uint64(1)": (np.uint64(1), None, TypeError),
    "np.uint64(1) as int64": (np.uint64(1), "int64", ("int64", 1)),
    "np.uint64(2**63) as int64": (np.uint64(2**63), "int64", ValueError),
    "np.float32(1.5)": (np.float32(1.5), None, ("float32", 1.5)),
    "np.float16(1.5) as float16": (np.float16(1.5), "float16", ("float16", 1.5)),
}


def _number_outcome(lib, number, dtype):
    outcome = _outcome(lib, number, dtype)
    if isinstance(outcome, type):
        return outcome
    assert outcome[1] == ()  # a 0-d tensor
    return outcome[0], _tensor_of(lib, number, dtype).item()


@pytest.mark.parametrize("name", NUMPY_NUMBERS)
def test_a_numpy_number_is_read_as_pytorch_reads_it(name):
    number, dtype, expected = NUMPY_NUMBERS[name]
    assert _number_outcome(autodiff, number, dtype) == expected


@pytest.mark.torch
@pytest.mark.parametrize("name", NUMPY_NUMBERS)
def test_the_numpy_number_table_is_pytorchs(torch, name):
    number, dtype, expected = NUMPY_NUMBERS[name]
    assert _number_outcome(torch, number, dtype) == expected


def test_a_refused_numpy_number_is_named_with_its_type_value_and_the_dtype():
    with pytest.raises(TypeError) as info:
        autodiff.tensor(np.float32(1), dtype=autodiff.bool)
    message = str(info.value)
    assert message.startswith("tensor: found the NumPy float32 1.0 where bool elements were")
    assert "bools are read only from Python numbers, NumPy integers and bools" in message
    assert ".astype(bool)" in message
    with pytest.raises(TypeError, match=r"^as_tensor: found the NumPy float16 2\.0 where int64"):
        autodiff.as_tensor(np.float16(2), dtype=autodiff.int64)


_NUMPY_NUMBER_TYPES = [np.bool_, np.int8, np.uint8, np.int32, np.int64, np.uint16, np.uint32]
_NUMPY_NUMBER_TYPES += [np.uint64, np.float16, np.float32, np.float64, np.complex64, np.complex128]
_TARGETS = ["bool", "uint8", "int8", "int32", "int64", "uint16", "uint32", "uint64", "float16"]
_TARGETS += ["float32", "float64", "complex64", "complex128"]


@st.composite
def numpy_numbers(draw):
    """A NumPy number of any type PyTorch reads, its value drawn from edges of the ranges."""
    edges = [0, 1, -1, 2, 300, 1.5, -0.5, 1e30, 2**63, 2**64 - 1, 1j, float("nan"), float("inf")]
    value = draw(st.sampled_from(edges))
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")  # casting 1j or nan to integers: any value will do
        return np.array(value).astype(draw(st.sampled_from(_NUMPY_NUMBER_TYPES)))[()]


@given(number=numpy_numbers(), dtype=st.none() | st.sampled_from(_TARGETS))
def test_a_numpy_number_is_read_as_the_one_in_a_list_is(number, dtype):
    """torch.tensor(x, dtype) is torch.tensor([x], dtype)[0] for any NumPy number."""
    alone, in_list = _outcome(autodiff, number, dtype), _outcome(autodiff, [number], dtype)
    if isinstance(in_list, type):
        assert alone == in_list
        return
    assert alone == (in_list[0], ())
    np.testing.assert_array_equal(
        _tensor_of(autodiff, number, dtype).numpy(),
        _tensor_of(autodiff, [number], dtype).numpy()[0],
    )


@pytest.mark.torch
def test_random_numpy_numbers_are_read_as_in_pytorch(torch):
    @settings(max_examples=max(200, settings.default.max_examples))
    @given(number=numpy_numbers(), dtype=st.none() | st.sampled_from(_TARGETS))
    def check(number, dtype):
        if dtype == "int64" and number.dtype == np.float64 and number == BEYOND_INT64:
            return  # PyTorch's undefined cast, refused here (FLOATS_AS_INTEGERS)
        theirs, ours = _outcome(torch, number, dtype), _outcome(autodiff, number, dtype)
        assert ours == theirs
        if not isinstance(theirs, type):
            np.testing.assert_array_equal(
                _tensor_of(autodiff, number, dtype).numpy(),
                _tensor_of(torch, number, dtype).numpy(),
            )

    check()


# -- floats read as integers: the range -----------------------------------------------------

# A float read at an integer dtype must be finite and within the dtype's range, exactly;
# then it is truncated (PyTorch: RuntimeError "value cannot be converted to type int64
# without overflow").  One difference: PyTorch compares with int64's max rounded to a float,
# 2**63, so it lets 2.0**63 through to a cast whose result C++ leaves undefined (-2**63 on
# x86); it is refused here, as 2.0**31 is for int32 and 2.0**63 + 2048 for int64 there.
BEYOND_INT64 = 2.0**63
# name -> (data(lib), dtype name, the exception raised or (dtype, values), PyTorch differs)
FLOATS_AS_INTEGERS = {
    "[2.0**63] as int64": (lambda lib: [BEYOND_INT64], "int64", RuntimeError, True),
    "2.0**63 as int64": (lambda lib: BEYOND_INT64, "int64", RuntimeError, True),
    "[np.float64(2**63)] as int64": (lambda lib: [np.float64(2**63)], "int64", RuntimeError, True),
    "np.float64(2**63) as int64": (lambda lib: np.float64(2**63), "int64", RuntimeError, True),
    "[np.array([2.0**63])] as int64": (
        lambda lib: [np.array([BEYOND_INT64])],
        "int64",
        RuntimeError,
        True,
    ),
    "[1.0, 2.0**63] as int64": (lambda lib: [1.0, BEYOND_INT64], "int64", RuntimeError, True),
    "[2.0**63 + 2048] as int64": (lambda lib: [2.0**63 + 2048], "int64", RuntimeError, False),
    "[1e19] as int64": (lambda lib: [1e19], "int64", RuntimeError, False),
    "[the float below 2**63] as int64": (
        lambda lib: [np.nextafter(BEYOND_INT64, 0).item()],
        "int64",
        ("int64", [2**63 - 1024]),
        False,
    ),
    "[-2.0**63] as int64": (lambda lib: [-(2.0**63)], "int64", ("int64", [-(2**63)]), False),
    "[-2.0**63 - 2048] as int64": (lambda lib: [-(2.0**63) - 2048], "int64", RuntimeError, False),
    "[2.0**31] as int32": (lambda lib: [2.0**31], "int32", RuntimeError, False),
    "[2.0**31 - 0.5] as int32": (lambda lib: [2.0**31 - 0.5], "int32", RuntimeError, False),
    "[-2.0**31 - 0.5] as int32": (lambda lib: [-(2.0**31) - 0.5], "int32", RuntimeError, False),
    "[127.5] as int8": (lambda lib: [127.5], "int8", RuntimeError, False),
    "[-128.9] as int8": (lambda lib: [-128.9], "int8", RuntimeError, False),
    "[-127.9] as int8 (truncated)": (lambda lib: [-127.9], "int8", ("int8", [-127]), False),
    "[255.9] as uint8": (lambda lib: [255.9], "uint8", RuntimeError, False),
    "[-0.5] as uint8 (floats do not wrap)": (lambda lib: [-0.5], "uint8", RuntimeError, False),
    "[inf] as int64": (lambda lib: [float("inf")], "int64", RuntimeError, False),
    "[nan] as int32": (lambda lib: [float("nan")], "int32", RuntimeError, False),
    "[np.float64(-inf)] as uint8": (lambda lib: [np.float64("-inf")], "uint8", RuntimeError, False),
    "np.float64(nan) as int64": (lambda lib: np.float64("nan"), "int64", RuntimeError, False),
    "[np.float32(1e30)] as int64 (float32: no integer)": (
        lambda lib: [np.float32(1e30)],
        "int64",
        TypeError,
        False,
    ),
    "np.float32(inf) as int64": (lambda lib: np.float32("inf"), "int64", TypeError, False),
    "[2.0**64] as uint64 (Python ints only)": (lambda lib: [2.0**64], "uint64", TypeError, False),
    "[1e39] as float32 (inf, as a cast)": (
        lambda lib: [1e39],
        "float32",
        ("float32", [float("inf")]),
        False,
    ),
}


def _values_outcome(lib, data, dtype):
    outcome = _outcome(lib, data, dtype)
    if isinstance(outcome, type):
        return outcome
    return outcome[0], _tensor_of(lib, data, dtype).tolist()


@pytest.mark.parametrize("name", FLOATS_AS_INTEGERS)
def test_floats_read_as_integers_are_refused_beyond_the_range(name):
    make, dtype, expected, _ = FLOATS_AS_INTEGERS[name]
    assert _values_outcome(autodiff, make(autodiff), dtype) == expected


@pytest.mark.torch
@pytest.mark.parametrize("name", FLOATS_AS_INTEGERS)
def test_the_floats_as_integers_table_is_pytorchs_but_for_2_to_the_63(torch, name):
    make, dtype, expected, differs = FLOATS_AS_INTEGERS[name]
    theirs = _values_outcome(torch, make(torch), dtype)
    if differs:  # accepted, to a value that depends on the machine
        assert not isinstance(theirs, type) and theirs[0] == "int64"
    else:
        assert theirs == expected


def test_2_to_the_63_is_refused_with_the_value_the_dtype_and_its_range():
    message = (
        r"^tensor: found the value 9\.223372036854776e\+18 where int64 elements were expected; "
        r"it cannot be converted to int64 without overflow \(its range is "
        r"-9223372036854775808 to 9223372036854775807\)"
    )
    for data in ([2.0**63], np.float64(2**63), [[1.0], [np.float64(2**63)]]):
        with pytest.raises(RuntimeError, match=message):
            autodiff.tensor(data, dtype=autodiff.int64)


_INTEGER_TARGETS = ["int8", "uint8", "int16", "int32", "int64", "uint16", "uint32"]


@st.composite
def floats_near_integer_limits(draw):
    """(float, integer dtype name): a float at, beside or beyond the dtype's limits."""
    dtype = draw(st.sampled_from(_INTEGER_TARGETS))
    info = np.iinfo(dtype)
    limit = float(draw(st.sampled_from([info.min, info.max, info.max + 1, info.min - 1, 0])))
    value = draw(
        st.sampled_from(
            [limit, np.nextafter(limit, np.inf), np.nextafter(limit, -np.inf), limit + 0.5]
            + [limit - 0.5, limit + 1, limit - 1]
        )
        | st.floats()
    )
    return float(value), dtype


def test_a_float_is_read_as_an_integer_exactly_when_it_is_within_the_range(torch_or_none):
    """Accepted when finite and within [min, max] (Python compares a float with an int
    exactly), then truncated; refused with RuntimeError otherwise; as PyTorch does, but
    for 2.0**63 as int64 (FLOATS_AS_INTEGERS)."""

    @given(floats_near_integer_limits(), st.sampled_from(["python", "numpy", "array in a list"]))
    @example((BEYOND_INT64, "int64"), "python")  # int64's max as a float: just beyond
    @example((BEYOND_INT64, "int64"), "array in a list")
    @example((-(2.0**63), "int64"), "numpy")
    @example((2.0**31 - 0.5, "int32"), "python")
    def check(case, form):
        value, dtype = case
        info = np.iinfo(dtype)
        data = {
            "python": [value],
            "numpy": np.float64(value),
            "array in a list": [np.array([value])],
        }
        data = data[form]
        if np.isfinite(value) and info.min <= value <= info.max:
            read = _tensor_of(autodiff, data, dtype).numpy()
            assert read.dtype == dtype and read.ravel().tolist() == [int(value)]
        else:
            with pytest.raises(
                RuntimeError, match=f"cannot be converted to {dtype} without overflow"
            ):
                _tensor_of(autodiff, data, dtype)
        if torch_or_none is not None and not (value == BEYOND_INT64 and dtype == "int64"):
            theirs = _values_outcome(torch_or_none, data, dtype)
            assert _values_outcome(autodiff, data, dtype) == theirs

    check()


# -- data that holds no numbers -------------------------------------------------------------

# Strings, None and other objects where numbers belong are a TypeError that names the first
# of them and its place (NumPy read '1.5' as 1.5, None as nan and any string as True at a
# dtype, and quoted its own "inhomogeneous shape" otherwise); so are NumPy arrays of
# strings, objects or dates.  PyTorch raises TypeError for most, but RuntimeError ("Could
# not infer dtype of NoneType") or ValueError ("too many dimensions 'str'") for some, as
# the README says.  name -> (data, dtype or None, what PyTorch raises, found what, where)
NOT_NUMBERS = {
    "[[1, 2], 'ab']": ([[1, 2], "ab"], None, TypeError, r"the str 'ab' at data\[1\]"),
    "[[1, 2], 'ab'] as float32": (
        [[1, 2], "ab"],
        "float32",
        TypeError,
        r"the str 'ab' at data\[1\]",
    ),
    "[1, 'a']": ([1, "a"], None, TypeError, r"the str 'a' at data\[1\]"),
    "[[1.5, 2], [3, 'a']]": (
        [[1.5, 2], [3, "a"]],
        None,
        TypeError,
        r"the str 'a' at data\[1\]\[1\]",
    ),
    "'1.5' as float32 (NumPy parsed it)": ("1.5", "float32", TypeError, r"the str '1\.5'; strings"),
    "['1.5', 2.0] as float32 (NumPy parsed it)": (
        ["1.5", 2.0],
        "float32",
        ValueError,
        r"the str '1\.5' at data\[0\]",
    ),
    "[1, 'x'] as bool (NumPy read True)": (
        [1, "x"],
        "bool",
        TypeError,
        r"the str 'x' at data\[1\]",
    ),
    "None": (None, None, RuntimeError, r"None; for a missing value use float\('nan'\)"),
    "None as float32 (NumPy read nan)": (None, "float32", TypeError, r"None; for a missing"),
    "[None, 1.0] as float32 (NumPy read nan)": (
        [None, 1.0],
        "float32",
        TypeError,
        r"None at data\[0\]",
    ),
    "[[1.0], [None]] as bool (NumPy read False)": (
        [[1.0], [None]],
        "bool",
        TypeError,
        r"None at data\[1\]\[0\]",
    ),
    "[[1, 2], None]": ([[1, 2], None], None, RuntimeError, r"None at data\[1\]"),
    "[[1, 2], {}]": ([[1, 2], {}], None, RuntimeError, r"a dict at data\[1\]"),
    "[np.ones(2), [1, None]] as float32": (
        [np.ones(2), [1, None]],
        "float32",
        TypeError,
        r"None at data\[1\]\[1\]",
    ),
    "[np.float32(1), 'a']": ([np.float32(1), "a"], None, TypeError, r"the str 'a' at data\[1\]"),
    "np.array(['1.5']) as float32": (
        np.array(["1.5"]),
        "float32",
        TypeError,
        r"a NumPy array of shape \(1,\) and dtype <U3: strings, objects and dates",
    ),
    "an object array as int64": (
        np.array([1, 2], dtype=object),
        "int64",
        TypeError,
        r"a NumPy array of shape \(2,\) and dtype object",
    ),
    "a datetime64 array as float32": (
        np.array(["2020-01-01"], dtype="datetime64[D]"),
        "float32",
        TypeError,
        r"a NumPy array of shape \(1,\) and dtype datetime64\[D\]",
    ),
    "[[1, 2], np.array(['1', '2'])] as float32": (
        [[1, 2], np.array(["1", "2"])],
        "float32",
        TypeError,
        r"a NumPy array of shape \(2,\) and dtype <U1",
    ),
    "np.str_('1') as float32": (np.str_("1"), "float32", TypeError, r"the NumPy str_"),
}


@pytest.mark.parametrize("name", NOT_NUMBERS)
def test_data_that_holds_no_numbers_is_a_type_error_naming_what_and_where(name):
    data, dtype, _, found = NOT_NUMBERS[name]
    with pytest.raises(TypeError, match=r"^tensor: expected numbers.* found " + found) as info:
        _tensor_of(autodiff, data, dtype)
    assert "inhomogeneous" not in str(info.value)  # NumPy's words are not ours


@pytest.mark.torch
@pytest.mark.parametrize("name", NOT_NUMBERS)
def test_the_no_numbers_table_is_pytorchs(torch, name):
    data, dtype, expected, _ = NOT_NUMBERS[name]
    assert _outcome(torch, data, dtype) == expected


_NON_NUMBERS = st.sampled_from(["1", "1.5", "", "ab", b"1", None, object(), {}, {1, 2}])


@given(
    shape=st.lists(st.integers(1, 3), min_size=1, max_size=3),
    numbers=st.sampled_from([0, 1, 2.5, True, 1j, np.float32(1.5), np.int64(3)]),
    non_number=_NON_NUMBERS,
    where=st.randoms(use_true_random=False),
    dtype=st.none() | st.sampled_from(["float32", "int64", "bool", "uint8"]),
)
def test_a_non_number_anywhere_is_named_with_its_place(shape, numbers, non_number, where, dtype):
    """Regular nested numbers with one element replaced: a TypeError naming it and where."""
    data = np.full(shape, numbers, dtype=object).tolist()
    index = tuple(where.randrange(size) for size in shape)
    parent = data
    for i in index[:-1]:
        parent = parent[i]
    parent[index[-1]] = non_number
    with pytest.raises(TypeError) as info:
        _tensor_of(autodiff, data, dtype)
    place = "data" + "".join(f"[{i}]" for i in index)
    assert str(info.value).startswith("tensor: expected numbers"), str(info.value)
    assert f" at {place}" in str(info.value), str(info.value)


# -- random ragged data against PyTorch ----------------------------------------------------


class Leaf:
    """An element, made for each library when the data is realised (tensors differ)."""

    def __init__(self, kind, value):
        self.kind, self.value = kind, value

    def __repr__(self):
        if self.kind == "python":
            return repr(self.value)
        if self.kind == "numpy":
            return f"np.{type(self.value).__name__}({self.value.item()!r})"
        return f"{self.kind}(shape={self.value.shape}, dtype={self.value.dtype})"


class Tup(list):
    """A tuple in the data (kept a list here so that leaves can be told from nodes)."""

    def __repr__(self):
        return f"tuple({list.__repr__(self)})"


_NUMBERS = st.sampled_from([0, 1, -1, 2, 300, 1.5, -2.5, True, False, 1j, 2**63])
_NUMPY_DTYPES = st.sampled_from(
    [np.bool_, np.int8, np.uint8, np.int32, np.int64, np.uint16, np.float32, np.float64]
)


@st.composite
def _leaves(draw):
    kind = draw(st.sampled_from(["python", "python", "numpy", "array", "tensor"]))
    value = draw(_NUMBERS)
    if kind == "python":
        return Leaf(kind, value)
    dtype = draw(_NUMPY_DTYPES)
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")  # casting 1j or 2**63 to integers: any value will do
        number = np.array(value if value != 2**63 else 7).astype(dtype)
    if kind == "numpy":
        return Leaf(kind, number[()])
    shape = draw(st.lists(st.integers(0, 3), max_size=2).map(tuple))
    return Leaf(kind, np.broadcast_to(number, shape).copy())


def _node(children):
    return st.lists(children, max_size=3) | st.lists(children, max_size=3).map(Tup)


@st.composite
def _regular_then_bent(draw):
    """Nested lists of a regular shape, then one place changed: a list made shorter or
    longer, a list where a number belongs or the other way round, or an array or tensor
    of a drawn shape there."""
    shape = draw(st.lists(st.integers(1, 3), min_size=1, max_size=3))

    def build(level):
        if level == len(shape):
            return draw(_leaves())
        return [build(level + 1) for _ in range(shape[level])]

    data = build(0)
    path = [draw(st.integers(0, size - 1)) for size in shape[: draw(st.integers(1, len(shape)))]]
    parent = data
    for i in path[:-1]:
        parent = parent[i]
    old = parent[path[-1]]
    change = draw(st.sampled_from(["shorter", "longer", "number", "list", "leaf"]))
    if change == "shorter" and isinstance(old, list):
        parent[path[-1]] = old[: draw(st.integers(0, len(old) - 1))]
    elif change == "longer" and isinstance(old, list):
        parent[path[-1]] = old + [old[-1]] * draw(st.integers(1, 2))
    elif change == "number":
        parent[path[-1]] = Leaf("python", draw(_NUMBERS))
    elif change == "list":
        parent[path[-1]] = draw(st.lists(_leaves(), max_size=3))
    else:
        parent[path[-1]] = draw(_leaves())
    return data


RAGGED_DATA = _regular_then_bent() | _node(st.recursive(_leaves(), _node, max_leaves=8))


def _realised(lib, data):
    if isinstance(data, Tup):
        return tuple(_realised(lib, item) for item in data)
    if isinstance(data, list):
        return [_realised(lib, item) for item in data]
    if data.kind == "tensor":
        return lib.from_numpy(data.value.copy())
    return data.value


def _forms(data) -> set:
    """Which ragged forms ``data`` shows (the strategy's own check)."""
    if not isinstance(data, list):
        return set()
    forms = set().union(*map(_forms, data))
    lists = [item for item in data if isinstance(item, list)]
    if len({len(item) for item in lists}) > 1:
        forms.add("lists of different lengths")
        if any(len({len(x) for x in item if isinstance(x, list)}) > 1 for item in lists):
            forms.add("lists of different lengths below dim 1")
    if lists and any(isinstance(x, Leaf) and x.kind != "array" for x in data):
        forms.add("numbers beside lists")
    for kind in ("array", "tensor"):
        if len({x.value.shape for x in data if isinstance(x, Leaf) and x.kind == kind}) > 1:
            forms.add(f"{kind}s of different shapes")
    return forms


def test_the_ragged_strategy_draws_the_forms_it_claims():
    seen = set()

    @settings(max_examples=300, derandomize=True, database=None)
    @given(RAGGED_DATA)
    def collect(data):
        seen.update(_forms(data))

    collect()
    assert seen == {
        "lists of different lengths",
        "lists of different lengths below dim 1",
        "numbers beside lists",
        "arrays of different shapes",
        "tensors of different shapes",
    }


@pytest.mark.torch
def test_random_ragged_data_is_refused_or_read_as_in_pytorch(torch):
    """The same exception type as torch.tensor, or the same dtype, shape and values."""
    outcomes = []

    @settings(max_examples=max(300, settings.default.max_examples))
    @given(
        data=RAGGED_DATA,
        dtype=st.none() | st.sampled_from(["int64", "uint8", "float32", "float64", "bool"]),
    )
    def check(data, dtype):
        theirs = _outcome(torch, _realised(torch, data), dtype)
        ours = _outcome(autodiff, _realised(autodiff, data), dtype)
        assert ours == theirs
        outcomes.append(theirs)
        event(f"PyTorch: {theirs if isinstance(theirs, type) else 'accepted'}")
        if isinstance(theirs, tuple):
            np.testing.assert_array_equal(
                _tensor_of(autodiff, _realised(autodiff, data), dtype).numpy(),
                _tensor_of(torch, _realised(torch, data), dtype).numpy(),
            )

    check()
    assert ValueError in outcomes and TypeError in outcomes  # ragged ones were drawn


# -- a list of NumPy arrays of one shape: read in one NumPy call -----------------------------

_ARRAY_DTYPES = [np.bool_, np.int8, np.uint8, np.int16, np.int32, np.int64, np.uint16]
_ARRAY_DTYPES += [np.uint32, np.uint64, np.float16, np.float32, np.float64, np.complex64]
_ARRAY_DTYPES += [np.complex128, np.dtype(">f4"), np.longdouble]
# float dtypes drawn as raw bits too: signalling NaNs, NaN payloads, subnormals, -0.0
_BITS = {np.float16: np.uint16, np.float32: np.uint32, np.float64: np.uint64}
_BITS[np.complex64] = np.uint64


@st.composite
def lists_of_arrays(draw):
    """NumPy arrays of one shape and dtype, mostly; sometimes one of another dtype or shape."""
    dtype = draw(st.sampled_from(_ARRAY_DTYPES))
    empty = not draw(st.integers(0, 3))  # a 0 in the shape, now and then
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=0 if empty else 1, max_side=3))

    def one(dtype, shape):
        if dtype in _BITS and not draw(st.integers(0, 2)):
            return draw(hnp.arrays(_BITS[dtype], shape)).view(dtype)
        nan = np.dtype(dtype).kind in "fc" and not draw(st.integers(0, 2))
        return draw(
            hnp.arrays(dtype, shape, elements=hnp.from_dtype(np.dtype(dtype), allow_nan=nan))
        )

    arrays = [one(dtype, shape) for _ in range(draw(st.integers(1, 4)))]
    if len(arrays) > 1 and not draw(st.integers(0, 2)):
        other = draw(st.sampled_from(_ARRAY_DTYPES)), shape
        if draw(st.booleans()):
            other = dtype, draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=3))
        arrays[draw(st.integers(0, len(arrays) - 1))] = one(*other)
    return arrays


def _read_bits(data, dtype):
    """What autodiff.tensor does with ``data``: the dtype, shape and bytes of the result and
    the warnings, or the exception's type and message."""
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        try:
            array = autodiff.tensor(data, dtype=dtype).numpy()
        except Exception as error:
            outcome = type(error), str(error)
        else:  # (a longdouble's padding bytes hold garbage: its values then)
            values = (
                array.tobytes() if array.dtype != np.longdouble else list(map(repr, array.flat))
            )
            outcome = array.dtype, array.shape, values
    return outcome, [(w.category, str(w.message), w.filename, w.lineno) for w in record]


@settings(max_examples=max(100, settings.default.max_examples))
@given(
    arrays=lists_of_arrays(),
    dtype=st.sampled_from([None, "their own"] * 3 + ["float32", "float64", "float16", "int64"]),
)
def test_a_list_of_arrays_reads_alike_in_one_call_and_array_by_array(arrays, dtype):
    """The one-call road gives what reading the arrays one by one gives (as PyTorch reads
    them): dtype, shape, every bit (a signalling NaN quieted as there), the same advice
    from the same line, the same errors."""
    dtype = arrays[0].dtype if dtype == "their own" else dtype and np.dtype(dtype)
    event(f"read in one call: {conversion._stacked(arrays, dtype) is not None}")
    fast = _read_bits(arrays, dtype)
    with mock.patch.object(conversion, "_stacked", return_value=None):
        slow = _read_bits(arrays, dtype)
    assert fast == slow


@pytest.mark.parametrize(
    "arrays, dtype",
    [
        ([np.ones((2, 3), np.float32)] * 3, None),
        ([np.ones((2, 3), np.float32), np.zeros((2, 3), np.float32)], autodiff.float32),
        ([np.full(4, 1e39), np.zeros(4)], autodiff.float32),  # float64 -> float32: inf
        ([np.arange(3), np.arange(3)], None),
        ([np.ones(2, np.complex64), np.ones(2, np.complex64)], None),
    ],
    ids=["float32", "float32-given", "float64-to-float32", "int64", "complex64"],
)
def test_a_list_of_arrays_of_one_shape_is_read_in_one_numpy_call(monkeypatch, arrays, dtype):
    def one_by_one(*args):
        raise AssertionError("read array by array")

    monkeypatch.setattr(conversion, "_store", one_by_one)
    with np.errstate(over="ignore"):
        expected = np.array(arrays, dtype=dtype)
    with pytest.warns(UserWarning, match=ADVICE):
        result = autodiff.tensor(arrays, dtype=dtype)
    assert result.dtype == expected.dtype
    np.testing.assert_array_equal(result.numpy(), expected)


def test_arrays_with_a_nan_or_of_another_dtype_are_read_one_by_one(monkeypatch):
    """A float32 NaN may be signalling, which the round trip through float64 quiets (as
    PyTorch's does); float16 given for float64 rounds twice there (through float32)."""
    signalling = np.array([0x7F800001], np.uint32).view(np.float32)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        read = autodiff.tensor([signalling, signalling]).numpy()
    assert [re.search(ADVICE, str(w.message)) is not None for w in record] == [True]  # as
    # PyTorch, no word of the NaN (NumPy's "invalid value encountered in cast")
    assert read.view(np.uint32).tolist() == [[0x7FC00001], [0x7FC00001]]
    for arrays, dtype in [
        ([signalling, np.zeros(1, np.float32)], None),
        ([np.ones(2), np.ones(2)], autodiff.float16),
        ([np.ones(2, np.float32), np.ones(2)], None),
        ([np.ones(2, np.uint64), np.ones(2, np.uint64)], autodiff.int64),
    ]:
        assert conversion._stacked(arrays, dtype) is None


# -- a list of NumPy arrays: the advice to join them first ---------------------------------


@pytest.mark.parametrize(
    "make",
    [
        lambda: autodiff.tensor([np.ones(2), np.zeros(2)]),
        lambda: autodiff.as_tensor([np.ones((2, 2)), np.zeros((2, 2))]),
        lambda: autodiff.Tensor((np.ones(2), np.zeros(2))),
        lambda: autodiff.tensor([[1.0, 2.0], np.zeros(2)]),
        lambda: autodiff.tensor([[np.ones(3)]]),
    ],
    ids=["tensor", "as_tensor", "Tensor-tuple", "list-then-array", "deep"],
)
def test_a_list_of_numpy_arrays_gets_advice_to_make_one_array_first(make):
    """PyTorch warns that this is extremely slow there; here it is a few times slower
    than one array, and the warning says what to write instead."""
    with pytest.warns(UserWarning, match=ADVICE) as record:
        make()
    (warning,) = record
    assert "np.array(data)" in str(warning.message) and "np.stack" in str(warning.message)
    assert warning.filename == __file__  # the line that made the tensor


class Scaled(nn.Module):
    def __init__(self, arrays):
        super().__init__()
        self.weight = nn.Parameter(arrays)  # the line the advice names


@autodiff.no_grad()
def _made_under_no_grad(arrays):
    return autodiff.tensor(arrays)  # the line the advice names, past the decorator's


def _arrays():
    return [np.ones(2, np.float32), np.zeros(2, np.float32)]


@pytest.mark.parametrize(
    "make, line",
    [
        (lambda: nn.Parameter(_arrays()), "nn.Parameter(_arrays())"),
        (lambda: Scaled(_arrays()), "self.weight = nn.Parameter(arrays)"),
        (lambda: autodiff.exp(_arrays()), "autodiff.exp(_arrays())"),
        (lambda: F.relu(_arrays()), "F.relu(_arrays())"),
        (lambda: _made_under_no_grad(_arrays()), "return autodiff.tensor(arrays)"),
        (lambda: autodiff.tensor(_arrays()), "autodiff.tensor(_arrays())"),
    ],
    ids=["Parameter", "Parameter-in-a-module", "exp", "functional-relu", "no_grad", "tensor"],
)
def test_the_advice_names_the_users_line_through_any_depth_of_the_library(make, line):
    """Each way in passes through another number of the library's frames; the warning
    names the user's line all the same (Python then shows it once per such line)."""
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        make()
    (warning,) = [w for w in record if re.search(ADVICE, str(w.message))]
    assert warning.filename == __file__
    assert line in linecache.getline(warning.filename, warning.lineno)


@pytest.mark.parametrize(
    "data",
    [
        [1.0, 2.0],
        [np.float32(1), np.float32(2)],
        [2, np.array(1.0)],  # a 0-d array is a number
        [autodiff.tensor(1.0), autodiff.tensor(2.0)],
        [[autodiff.tensor([1.0])], [autodiff.tensor([2.0])]],
        np.ones((2, 2)),
        [np.zeros((0, 3))],  # nothing to read, as in PyTorch
    ],
    ids=["floats", "numpy-numbers", "0-d-array", "tensors", "tensors-in-lists", "array", "empty"],
)
def test_no_advice_where_no_list_of_arrays_is_read(data):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        autodiff.tensor(data)


def test_ragged_arrays_get_the_error_and_no_advice():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError, match="expected sequence of length 2 at dim 1"):
            autodiff.tensor([np.ones(2), np.ones(3)])


def test_batching_numpy_samples_gives_no_advice():
    """The DataLoader's own conversions (default_collate, default_convert) never read a
    list of arrays through autodiff.tensor: a user who did not write one sees nothing."""

    class Samples(Dataset):
        def __len__(self):
            return 6

        def __getitem__(self, i):
            image = np.full((1, 2, 2), i, np.float32)
            return {"image": image, "label": np.int64(i), "pair": (image[0], np.float32(i))}

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        batches = list(DataLoader(Samples(), batch_size=4))
        default_collate([np.ones(2), np.zeros(2)])
        default_collate([np.float32(1), np.float32(2)])
        default_convert([np.ones(2), np.zeros(2)])
        list(DataLoader(Samples(), batch_size=None))
        list(DataLoader(TensorDataset(np.ones((4, 2)), np.arange(4)), batch_size=2))
    assert batches[0]["image"].shape == (4, 1, 2, 2) and batches[1]["label"].tolist() == [4, 5]


# -- NumPy values PyTorch has no tensor of (the refusals are rows of test_errors.py) -----


@pytest.mark.filterwarnings("ignore:tensor. making a tensor from a list of NumPy arrays")
def test_arrays_of_the_other_byte_order_inside_a_list_are_read_into_this_machines():
    """PyTorch refuses such an array given alone (``from_numpy``'s ValueError) but reads
    one inside a list number by number, as here: the tensor's dtype is the native one."""
    big = np.arange(3, dtype=">f4")
    read = autodiff.tensor([big, np.arange(3, dtype="<f4")])
    assert read.dtype == autodiff.float32 and read.dtype.isnative
    np.testing.assert_array_equal(read.numpy(), [[0, 1, 2], [0, 1, 2]])
    assert autodiff.tensor([np.arange(2, dtype=">i8")]).dtype == autodiff.int64
    assert autodiff.tensor(np.ones(2, dtype=">u1")).dtype == autodiff.uint8  # one byte: no order


@pytest.mark.skipif(np.dtype(np.longdouble).itemsize <= 8, reason="long double is float64 here")
def test_a_long_double_number_is_read_at_a_dtype_given_as_pytorch_reads_it():
    np.testing.assert_array_equal(
        autodiff.tensor([np.longdouble(2.5)], dtype=autodiff.float64).numpy(), [2.5]
    )


@pytest.mark.parametrize("dtype", [np.longdouble, np.clongdouble, ">f4", ">i8"])
def test_dtypes_pytorch_lacks_are_refused_where_a_dtype_is_given(dtype):
    if np.dtype(dtype).isnative and np.dtype(np.longdouble).itemsize <= 8:
        pytest.skip("long double is float64 here")
    with pytest.raises(TypeError, match=r"is not a dtype PyTorch has .*try autodiff\.float64"):
        autodiff.zeros(2, dtype=dtype)
    with pytest.raises(TypeError, match=r"tensor: .* is not a dtype PyTorch has"):
        autodiff.tensor([1.0], dtype=dtype)
