"""A dim given as a tensor, a NumPy integer or a bool: read or refused as PyTorch does.

PyTorch reads an integer tensor where an int dim is expected (``x.sum(torch.tensor(0))``,
through ``__index__``): a 0-d integer tensor where the op takes one int (cumsum,
softmax, argmax, unsqueeze, cat, ...), any one-element integer or bool tensor where
it takes a list of dims (sum, mean, var, amax, logsumexp, squeeze).  A bool is not a
dim (``x.sum(True)`` is a TypeError, though ``True == 1``), nor is a float, nor a
tensor of several elements.  The table below runs every dim-taking op with every
kind of dim in both libraries: the same result, or the same exception type.
"""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import autodiff
import nn


def _functional(lib):
    return nn.functional if lib is autodiff else lib.nn.functional


def _modules(lib):
    return nn if lib is autodiff else lib.nn


# name -> the dim, built in the library under test
DIMS = {
    "int": lambda lib: 1,
    "negative int": lambda lib: -1,
    "numpy int": lambda lib: np.int64(1),
    "numpy int32, negative": lambda lib: np.int32(-1),
    "True": lambda lib: True,
    "False": lambda lib: False,
    "numpy bool": lambda lib: np.bool_(True),
    "float": lambda lib: 1.0,
    "numpy float": lambda lib: np.float64(1.0),
    "0-d int tensor": lambda lib: lib.tensor(1),
    "0-d negative int tensor": lambda lib: lib.tensor(-1),
    "0-d int tensor, out of range": lambda lib: lib.tensor(5),
    "0-d uint8 tensor": lambda lib: lib.tensor(1, dtype=lib.uint8),
    "0-d int32 tensor": lambda lib: lib.tensor(0, dtype=lib.int32),
    "0-d bool tensor": lambda lib: lib.tensor(True),
    "0-d float tensor": lambda lib: lib.tensor(1.0),
    "1-element int tensor": lambda lib: lib.tensor([1]),
    "1x1 int tensor": lambda lib: lib.tensor([[0]]),
    "2-element int tensor": lambda lib: lib.tensor([0, 1]),
    "empty int tensor": lambda lib: lib.tensor([], dtype=lib.int64),
    "tuple of a tensor and an int": lambda lib: (lib.tensor(0), 2),
    "list of a tensor and an int": lambda lib: [lib.tensor(0), -1],
    "tuple of a 1-element tensor": lambda lib: (lib.tensor([2]), 0),
    "tuple of a bool tensor": lambda lib: (lib.tensor(True),),
    "tuple of a float tensor": lambda lib: (lib.tensor(1.0),),
    "tuple of a 2-element tensor": lambda lib: (lib.tensor([0, 1]),),
    "tuple of a bool": lambda lib: (True,),
    "tuple of a numpy int": lambda lib: (np.int64(1), 0),
    "tuple naming a dim twice": lambda lib: (lib.tensor(1), 1),
}


def _index(lib, shape):
    return lib.zeros(shape, dtype=lib.int64)


# name -> op(lib, x, dim)
OPS = {
    "sum": lambda lib, x, d: x.sum(d),
    "sum(dim=)": lambda lib, x, d: lib.sum(x, dim=d),
    "sum keepdim": lambda lib, x, d: x.sum(d, True),
    "mean": lambda lib, x, d: x.mean(d),
    "var": lambda lib, x, d: x.var(d),
    "std": lambda lib, x, d: x.std(d),
    "amax": lambda lib, x, d: x.amax(d),
    "amin": lambda lib, x, d: x.amin(d),
    "logsumexp": lambda lib, x, d: x.logsumexp(d),
    "any": lambda lib, x, d: x.any(d),
    "all": lambda lib, x, d: x.all(d),
    "prod": lambda lib, x, d: x.prod(d),
    "cumsum": lambda lib, x, d: x.cumsum(d),
    "cumprod": lambda lib, x, d: x.cumprod(d),
    "argmax": lambda lib, x, d: x.argmax(d),
    "argmin": lambda lib, x, d: x.argmin(d),
    # x.max(tensor) is the elementwise maximum in both; a dim= or a keepdim makes it a dim
    "max(d)": lambda lib, x, d: x.max(d),
    "max(d, True)": lambda lib, x, d: x.max(d, True),
    "max(dim=d)": lambda lib, x, d: x.max(dim=d, keepdim=False),
    "min(d)": lambda lib, x, d: x.min(d),
    "min(d, keepdim=True)": lambda lib, x, d: x.min(d, keepdim=True),
    "softmax": lambda lib, x, d: x.softmax(d),
    "log_softmax": lambda lib, x, d: x.log_softmax(d),
    "functional.softmax": lambda lib, x, d: _functional(lib).softmax(x, d),
    "functional.log_softmax": lambda lib, x, d: _functional(lib).log_softmax(x, dim=d),
    "nn.Softmax": lambda lib, x, d: _modules(lib).Softmax(d)(x),
    "nn.Flatten": lambda lib, x, d: _modules(lib).Flatten(d)(x),
    "squeeze": lambda lib, x, d: x.squeeze(d),
    "unsqueeze": lambda lib, x, d: x.unsqueeze(d),
    "flatten start": lambda lib, x, d: x.flatten(d),
    "flatten end": lambda lib, x, d: x.flatten(0, d),
    "unflatten": lambda lib, x, d: x.unflatten(d, (1, -1)),
    "transpose dim0": lambda lib, x, d: x.transpose(d, 0),
    "transpose dim1": lambda lib, x, d: lib.transpose(x, 0, d),
    "cat": lambda lib, x, d: lib.cat([x, x], d),
    "stack": lambda lib, x, d: lib.stack([x, x], dim=d),
    "split": lambda lib, x, d: x.split(1, d)[-1],
    "chunk": lambda lib, x, d: x.chunk(2, d)[0],
    "gather": lambda lib, x, d: x.gather(d, _index(lib, x.shape)),
    "size": lambda lib, x, d: x.size(d),
}

# name -> the input, built in the library under test
INPUTS = {
    "(2, 1, 3)": lambda lib: lib.arange(6.0).reshape(2, 1, 3) - 2.5,
    "()": lambda lib: lib.tensor(1.5),
}

# PyTorch reads a 0-d NumPy array as a dim in squeeze and refuses it with a
# RuntimeError in sum and the other list-of-dims ops; here it is a TypeError
# everywhere (see the README's "Differences from PyTorch").
DIFFERENCES = {"0-d numpy array": lambda lib: np.array(1)}


def _outcome(lib, op, x, dim):
    """("ok", NumPy result) or ("raises", the exception)."""
    try:
        out = op(lib, x, dim)
    except Exception as error:  # compared below: the same built-in type as PyTorch's
        return "raises", error
    if isinstance(out, tuple):  # (values, indices)
        out = out[0]
    return "ok", np.asarray(out.detach().numpy() if hasattr(out, "detach") else out)


def _builtin_base(error_type):
    """The first built-in exception class in the MRO (torch raises its own subclasses)."""
    return next(cls for cls in error_type.__mro__ if cls.__module__ == "builtins")


@pytest.mark.torch
@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("op_name", OPS)
def test_every_kind_of_dim_is_read_or_refused_as_pytorch_does(op_name, torch_or_none):
    torch = torch_or_none
    if torch is None:
        pytest.skip("PyTorch is not installed")
    op = OPS[op_name]
    mismatches = []
    for input_name, make_input in INPUTS.items():
        for dim_name, make_dim in DIMS.items():
            theirs = _outcome(torch, op, make_input(torch), make_dim(torch))
            ours = _outcome(autodiff, op, make_input(autodiff), make_dim(autodiff))
            where = f"{op_name} of a {input_name} tensor with a {dim_name} as dim"
            if theirs[0] == "raises":
                kind = _builtin_base(type(theirs[1]))
                if ours[0] != "raises" or not isinstance(ours[1], kind):
                    mismatches.append(f"{where}: PyTorch raises {kind.__name__}, we give {ours}")
            elif ours[0] == "raises":
                mismatches.append(f"{where}: PyTorch accepts it, we raise {ours[1]!r}")
            elif ours[1].shape != theirs[1].shape or not np.allclose(
                ours[1], theirs[1], equal_nan=True
            ):
                mismatches.append(f"{where}: {ours[1]!r} here, {theirs[1]!r} in PyTorch")
    assert not mismatches, "\n".join(mismatches)


@pytest.mark.parametrize("op_name", ["sum", "amax", "logsumexp", "softmax"])
def test_a_0d_numpy_array_is_refused_as_a_dim(op_name):
    x = autodiff.arange(6.0).reshape(2, 1, 3)
    with pytest.raises(TypeError, match=r"dim must be an int"):
        OPS[op_name](autodiff, x, DIFFERENCES["0-d numpy array"](autodiff))


def test_pinned_examples_without_pytorch():
    """A few results pinned by hand, so the reading is tested where PyTorch is absent."""
    t = autodiff.tensor
    x = t([[1.0, 5.0, 2.0], [4.0, 0.0, 3.0]])
    assert x.sum(t(0)).tolist() == [5.0, 5.0, 5.0]
    assert x.sum((t(0), 1)).item() == 15.0
    assert x.amax(t(True)).tolist() == [5.0, 4.0]  # a bool tensor reads as 1 in a list of dims
    assert x.argmax(t(1)).tolist() == [1, 0]
    assert x.max(t(1), True).indices.tolist() == [[1], [0]]
    assert x.max(t(3.0)).tolist() == [[3.0, 5.0, 3.0], [4.0, 3.0, 3.0]]  # elementwise
    assert x.unsqueeze(t(0)).shape == (1, 2, 3)
    assert x.var(False).item() == pytest.approx(np.var(x.numpy()))  # var(unbiased)
    with pytest.raises(TypeError, match=r"max: keepdim=True needs a dim"):
        x.max(keepdim=True)  # PyTorch's x.max() takes no keepdim
    with pytest.raises(TypeError, match=r"sum: dim must be an int or a tuple of ints, got True"):
        x.sum(True)
    with pytest.raises(TypeError, match=r"cumsum: dim must be an int or a 0-d integer tensor"):
        x.cumsum(t(1.0))
    with pytest.raises(TypeError, match=r"softmax: dim must be an int or a 0-d integer tensor"):
        x.softmax(t(True))
    with pytest.raises(TypeError, match=r"mean: dim must be .* integer tensor of one element"):
        x.mean(t([0, 1]))


# ops whose dim is one int; each with the rank its dim counts in
ONE_INT = {
    "cumsum": (lambda x, d: x.cumsum(d), 0),
    "softmax": (lambda x, d: x.softmax(d), 0),
    "argmax": (lambda x, d: x.argmax(d), 0),
    "prod": (lambda x, d: x.prod(d), 0),
    "max": (lambda x, d: x.max(d, keepdim=True).values, 0),
    "sum": (lambda x, d: x.sum(d), 0),
    "amin": (lambda x, d: x.amin(d), 0),
    "squeeze": (lambda x, d: x.squeeze(d), 0),
    "unsqueeze": (lambda x, d: x.unsqueeze(d), 1),
    "transpose": (lambda x, d: x.transpose(d, -1), 0),
    "cat": (lambda x, d: autodiff.cat([x, x], d), 0),
    "stack": (lambda x, d: autodiff.stack([x, x], d), 1),
}


@given(
    shape=st.lists(st.integers(1, 3), min_size=0, max_size=3),
    op_name=st.sampled_from(sorted(ONE_INT)),
    data=st.data(),
    dtype=st.sampled_from(["int64", "int32", "uint8"]),
)
def test_a_0d_integer_tensor_dim_acts_as_its_int(shape, op_name, data, dtype):
    """op(x, tensor(d)) == op(x, d) for every valid d; a float tensor d is a TypeError."""
    op, extra = ONE_INT[op_name]
    if op_name == "cat" and not shape:
        shape = [2]  # cat needs a dim to join along
    rank = max(len(shape) + extra, 1)
    low = 0 if dtype == "uint8" else -rank
    d = data.draw(st.integers(low, rank - 1), label="dim")
    x = autodiff.tensor(np.arange(math.prod(shape), dtype=np.float64).reshape(shape) % 5)
    expected = op(x, d)
    got = op(x, autodiff.tensor(d, dtype=getattr(autodiff, dtype)))
    assert got.shape == expected.shape
    np.testing.assert_array_equal(got.numpy(), expected.numpy())
    with pytest.raises(TypeError):
        op(x, autodiff.tensor(float(d)))


# -- max and min: the elementwise overload and the reduction, told apart as in PyTorch ----

MAX_MIN_FORMS = {
    "x.max(t) alone: elementwise": (lambda lib, x: x.max(lib.tensor(2.0)), [[2, 5], [3, 2]]),
    "x.max(other=t)": (lambda lib, x: x.max(other=lib.tensor(2.0)), [[2, 5], [3, 2]]),
    "max(x, other=t)": (lambda lib, x: lib.max(x, other=lib.tensor(2.0)), [[2, 5], [3, 2]]),
    "x.max(dim=t): a dim": (lambda lib, x: x.max(dim=lib.tensor(1)).values, [5, 3]),
    "max(x, dim=t)": (lambda lib, x: lib.max(x, dim=lib.tensor(1)).indices, [1, 0]),
    "x.max(t, True)": (lambda lib, x: x.max(lib.tensor(1), True).values, [[5], [3]]),
    "x.min(dim=t)": (lambda lib, x: x.min(dim=lib.tensor(1)).values, [1, 2]),
    "x.min(other=t)": (lambda lib, x: x.min(other=lib.tensor(2.0)), [[1, 2], [2, 2]]),
    "x.max(dim=1)": (lambda lib, x: x.max(dim=1).values, [5, 3]),
}


@pytest.mark.parametrize("form", MAX_MIN_FORMS)
def test_max_and_min_read_a_tensor_as_pytorch_does(form, torch_or_none):
    """A tensor alone by position is ``other`` (elementwise); ``dim=`` is always a dim
    (``x.max(dim=t)`` was the elementwise maximum here)."""
    call, expected = MAX_MIN_FORMS[form]
    x = [[1.0, 5.0], [3.0, 2.0]]
    np.testing.assert_array_equal(call(autodiff, autodiff.tensor(x)).numpy(), expected)
    if torch_or_none is not None:
        np.testing.assert_array_equal(
            call(torch_or_none, torch_or_none.tensor(x)).numpy(), expected
        )


@pytest.mark.parametrize(
    "call",
    [
        lambda x: x.max(1, dim=1),  # PyTorch: multiple values for argument 'dim'
        lambda x: x.max(dim=1, other=autodiff.tensor(2.0)),
        lambda x: x.min(autodiff.tensor(2.0), other=autodiff.tensor(2.0)),
        lambda x: x.max(other=autodiff.tensor(2.0), keepdim=True),
    ],
)
def test_max_and_min_refuse_a_dim_and_other_together(call):
    with pytest.raises(TypeError, match=r"(max|min): "):
        call(autodiff.tensor([[1.0, 5.0], [3.0, 2.0]]))
