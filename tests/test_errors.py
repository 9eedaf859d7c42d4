"""Bad input gets a clear exception: the right type (as PyTorch raises, checked against
PyTorch when it is installed), a message naming the op and the shapes or dtypes, and no
tensor or gradient left half-updated."""

from __future__ import annotations

import builtins
import re

import numpy as np
import pytest
from _helpers import Multiply

import autodiff


def _f(lib, *shape, dtype=None):
    """A float tensor of ``shape`` (arange values) for autodiff or PyTorch."""
    values = np.arange(float(np.prod(shape, dtype=int))).reshape(shape) + 1
    return lib.tensor(values, dtype=dtype or lib.float32)


def _nn(lib):
    """``nn`` for autodiff, ``torch.nn`` for PyTorch."""
    import nn

    return nn if lib is autodiff else lib.nn


def _pad(lib, x, pad):
    return lib.nn.functional.pad(x, pad) if lib is not autodiff else autodiff.pad(x, pad)


# name, the call (lib -> anything), the exception type we raise, a regex the message matches
BAD_INPUTS = [
    # shapes that do not fit
    (
        "matmul_inner",
        lambda lib: _f(lib, 2, 3) @ _f(lib, 4, 5),
        RuntimeError,
        r"matmul: shapes \(2, 3\) and \(4, 5\) cannot be multiplied",
    ),
    (
        "matmul_vectors",
        lambda lib: _f(lib, 3) @ _f(lib, 4),
        RuntimeError,
        r"matmul: shapes \(3,\) and \(4,\)",
    ),
    (
        "matmul_batch",
        lambda lib: _f(lib, 2, 2, 3) @ _f(lib, 3, 3, 4),
        RuntimeError,
        r"matmul: batch dims of shapes \(2, 2, 3\) and \(3, 3, 4\) do not broadcast",
    ),
    (
        "matmul_0d",
        lambda lib: _f(lib) @ _f(lib, 3),
        RuntimeError,
        r"matmul: both arguments need at least 1 dim, got shapes \(\) and \(3,\)",
    ),
    (
        "add_broadcast",
        lambda lib: _f(lib, 2, 3) + _f(lib, 4),
        RuntimeError,
        r"add: .*\(2,3\) \(4,\).*shape \(2, 3\).*shape \(4,\)",
    ),
    (
        "mul_broadcast",
        lambda lib: _f(lib, 3) * _f(lib, 2, 2),
        RuntimeError,
        r"mul: .*broadcast.*shape \(3,\).*shape \(2, 2\)",
    ),
    (
        "sub_broadcast_array",
        lambda lib: _f(lib, 3) - (np.ones(2) if lib is autodiff else lib.ones(2)),
        RuntimeError,
        r"sub: .*broadcast.*\(3,\)",
    ),
    (
        "div_broadcast",
        lambda lib: _f(lib, 5) / _f(lib, 4),
        RuntimeError,
        r"div: .*broadcast.*\(5,\).*\(4,\)",
    ),
    (
        "maximum_broadcast",
        lambda lib: lib.maximum(_f(lib, 2), _f(lib, 3)),
        RuntimeError,
        r"maximum: .*broadcast.*\(2,\).*\(3,\)",
    ),
    (
        "where_broadcast",
        lambda lib: lib.where(_f(lib, 2) > 1, _f(lib, 3), _f(lib, 2)),
        RuntimeError,
        r"where: .*broadcast",
    ),
    (
        "reshape",
        lambda lib: _f(lib, 2, 3).reshape(5),
        RuntimeError,
        r"reshape: cannot reshape a tensor of shape \(2, 3\) \(6 elements\) into shape \(5,\)",
    ),
    ("view", lambda lib: _f(lib, 2, 3).view(4, 2), RuntimeError, r"reshape: .*\(2, 3\).*\(4, 2\)"),
    (
        "expand",
        lambda lib: _f(lib, 2, 3).expand(4, 3),
        RuntimeError,
        r"expand: the expanded size \(4\) must match the existing size \(2\).*\(2, 3\)",
    ),
    (
        "cat_shapes",
        lambda lib: lib.cat([_f(lib, 2, 3), _f(lib, 2, 4)], 0),
        RuntimeError,
        r"cat: tensors must have the same shape except in dim 0; got shapes \(2, 3\), \(2, 4\)",
    ),
    (
        "stack_shapes",
        lambda lib: lib.stack([_f(lib, 2), _f(lib, 3)]),
        RuntimeError,
        r"stack: expects each tensor to be equal size.*\(2,\).*\(3,\)",
    ),
    (
        "permute_dims",
        lambda lib: _f(lib, 2, 3).permute(0, 0),
        RuntimeError,
        r"permute: dims \(0, 0\) are not a permutation of the 2 dims of a tensor of shape \(2, 3\)",
    ),
    (
        "pad_too_long",
        lambda lib: _pad(lib, _f(lib, 3), (1, 1, 1, 1)),
        RuntimeError,
        r"pad: padding length must be even and at most 2 \* ndim \(2\), got 4",
    ),
    (
        "backward_gradient_shape",
        lambda lib: (_f(lib, 3).requires_grad_() * 2).backward(_f(lib, 2)),
        RuntimeError,
        r"mismatch in shape: gradient has shape \(2,\) but the output has shape \(3,\)",
    ),
    # dims out of range
    (
        "sum_dim",
        lambda lib: _f(lib, 2, 3).sum(dim=2),
        IndexError,
        r"sum: dimension out of range \(expected to be in range of \[-2, 1\], but got 2\)",
    ),
    (
        "mean_dim",
        lambda lib: _f(lib, 2, 3).mean(-3),
        IndexError,
        r"mean: dimension out of range.*got -3",
    ),
    (
        "max_dim",
        lambda lib: _f(lib, 2, 3).max(5),
        IndexError,
        r"max: dimension out of range.*got 5",
    ),
    (
        "argmax_dim",
        lambda lib: _f(lib, 2).argmax(1),
        IndexError,
        r"argmax: dimension out of range.*got 1",
    ),
    (
        "logsumexp_dim",
        lambda lib: lib.logsumexp(_f(lib, 2), 1),
        IndexError,
        r"logsumexp: dimension out of range",
    ),
    (
        "softmax_dim",
        lambda lib: _f(lib, 2).softmax(1),
        IndexError,
        r"dimension out of range|axis 1 is out of bounds",
    ),
    (
        "transpose_dim",
        lambda lib: _f(lib, 2, 3).transpose(0, 2),
        IndexError,
        r"transpose: dimension out of range.*\[-2, 1\].*got 2",
    ),
    (
        "unsqueeze_dim",
        lambda lib: _f(lib, 2).unsqueeze(3),
        IndexError,
        r"unsqueeze: dimension out of range.*\[-2, 1\].*got 3",
    ),
    (
        "squeeze_dim",
        lambda lib: _f(lib, 2).squeeze(1),
        IndexError,
        r"squeeze: dimension out of range",
    ),
    (
        "flatten_dim",
        lambda lib: _f(lib, 2, 3).flatten(0, 2),
        IndexError,
        r"flatten: dimension out of range",
    ),
    (
        "cat_dim",
        lambda lib: lib.cat([_f(lib, 2), _f(lib, 2)], 1),
        IndexError,
        r"cat: dimension out of range",
    ),
    ("size_dim", lambda lib: _f(lib, 2).size(1), IndexError, r"size: dimension out of range"),
    # dims of the wrong kind: PyTorch's prod and scans take one int, unlike sum
    (
        "prod_tuple_dim",
        lambda lib: lib.prod(_f(lib, 2, 3), dim=(0, 1)),
        TypeError,
        r"^prod: dim must be one int, got \(0, 1\) \(PyTorch's prod takes one dim, unlike sum\); "
        r"reduce one dim at a time: x\.prod\(1\)\.prod\(0\)$",
    ),
    (
        "prod_method_one_dim_tuple",
        lambda lib: _f(lib, 2, 3).prod((-1,), keepdim=True),
        TypeError,
        r"^prod: dim must be one int, got \(-1,\) .*: x\.prod\(1\)$",
    ),
    (
        "prod_list_dim",
        lambda lib: _f(lib, 2, 3).prod(dim=[0, 1]),
        TypeError,
        r"^prod: dim must be one int, got \[0, 1\]",
    ),
    ("prod_float_dim", lambda lib: _f(lib, 2, 3).prod(0.5), TypeError, r"^prod: .*got 0\.5$"),
    (
        "cumsum_tuple_dim",
        lambda lib: lib.cumsum(_f(lib, 2, 3), dim=(0, 1)),
        TypeError,
        r"^cumsum: dim must be an int, got \(0, 1\)$",
    ),
    (
        "cumprod_tuple_dim",
        lambda lib: _f(lib, 2, 3).cumprod((0,)),
        TypeError,
        r"^cumprod: dim must be an int, got \(0,\)$",
    ),
    (
        "getitem_index",
        lambda lib: _f(lib, 2, 3)[2],
        IndexError,
        r"getitem: index 2 is out of bounds for axis 0 with size 2 \(tensor of shape \(2, 3\)\)",
    ),
    (
        "getitem_too_many",
        lambda lib: _f(lib, 2)[0, 0],
        IndexError,
        r"getitem: too many indices.*\(2,\)",
    ),
    (
        "getitem_float_index",
        lambda lib: _f(lib, 2)[lib.tensor([0.0])],
        IndexError,
        r"getitem: tensors used as indices must be long, int or bool tensors, got dtype float32",
    ),
    # data that is not numeric
    ("tensor_from_string", lambda lib: lib.tensor("abc"), TypeError, r"tensor: .*str"),
    (
        "getitem_negative_step",
        lambda lib: _f(lib, 5)[::-1],
        ValueError,
        r"getitem: step must be greater than zero, got slice\(None, None, -1\); to reverse",
    ),
    (
        "getitem_zero_step",
        lambda lib: _f(lib, 5)[::0],
        ValueError,
        r"getitem: step must be greater than zero, got slice\(None, None, 0\)$",
    ),
    (
        "setitem_negative_step",
        lambda lib: _f(lib, 2, 5).__setitem__((0, slice(4, None, -2)), 1.0),
        ValueError,
        r"setitem: step must be greater than zero, got slice\(4, None, -2\)",
    ),
    (
        "tensor_from_ragged",
        lambda lib: lib.tensor([[1.0, 2.0], [3.0]]),
        ValueError,
        r"tensor: expected sequence of length 2 at dim 1 \(got 1\): data\[1\] is a list of "
        r"length 1, but the first elements give the shape \(2, 2\)",
    ),
    ("tensor_from_none", lambda lib: lib.tensor(None), TypeError, r"tensor: .*found None"),
    ("tensor_from_objects", lambda lib: lib.tensor([object()]), TypeError, r"tensor: "),
    (
        "tensor_string_in_a_list",
        lambda lib: lib.tensor([[1, 2], "ab"]),
        TypeError,
        r"tensor: expected numbers, nested lists of numbers of a regular shape or a NumPy "
        r"array; found the str 'ab' at data\[1\]; strings are not read as numbers",
    ),
    (  # NumPy read it as nan
        "tensor_none_in_a_list_as_float32",
        lambda lib: lib.tensor([[1.0], [None]], dtype=lib.float32),
        TypeError,
        r"tensor: .*found None at data\[1\]\[0\]; for a missing value use float\('nan'\)",
    ),
    (  # NumPy parsed it; PyTorch raises ValueError, "too many dimensions 'str'"
        "tensor_numeric_string_as_float32",
        lambda lib: lib.tensor(["1.5", 2.0], dtype=lib.float32),
        TypeError,
        r"tensor: .*found the str '1\.5' at data\[0\]",
    ),
    (
        "tensor_string_array_as_float32",
        lambda lib: lib.tensor(np.array(["1.5"]), dtype=lib.float32),
        TypeError,
        r"tensor: expected numbers, found a NumPy array of shape \(1,\) and dtype <U3",
    ),
    (
        "tensor_numpy_float32_as_bool",
        lambda lib: lib.tensor(np.float32(1), dtype=lib.bool),
        TypeError,
        r"tensor: found the NumPy float32 1\.0 where bool elements were expected",
    ),
    (
        "tensor_float_beyond_int64",
        lambda lib: lib.tensor([1.0, 1e19], dtype=lib.int64),
        RuntimeError,
        r"tensor: found the value 1e\+19 where int64 elements were expected; it cannot be "
        r"converted to int64 without overflow \(its range is -9223372036854775808 to",
    ),
    (  # PyTorch lets exactly 2.0**63 through, to an undefined cast (README)
        "tensor_float_2_to_the_63_as_int64",
        lambda lib: lib.tensor([2.0**63], dtype=lib.int64),
        RuntimeError,
        r"tensor: found the value 9\.223372036854776e\+18 where int64 elements were expected",
    ),
    (
        "from_numpy_big_endian",
        lambda lib: lib.from_numpy(np.arange(3, dtype=">f4")),
        ValueError,
        r"from_numpy: the array's byte order \(>f4\) is not this machine's.*newbyteorder",
    ),
    (
        "as_tensor_big_endian",
        lambda lib: lib.as_tensor(np.arange(3, dtype=">i8")),
        ValueError,
        r"as_tensor: the array's byte order \(>i8\) is not this machine's",
    ),
    (
        "add_string",
        lambda lib: _f(lib, 2) + "a",
        TypeError,
        r"add: .*\(inputs: tensor of shape \(2,\) and dtype float32\)",
    ),
    ("zeros_of_strings", lambda lib: lib.zeros("a"), TypeError, r"zeros: sizes must be ints"),
    # autograd misuse
    (
        "backward_non_scalar",
        lambda lib: (_f(lib, 3).requires_grad_() * 2).backward(),
        RuntimeError,
        r"grad can be implicitly created only for scalar outputs; the output has shape \(3,\)",
    ),
    (
        "backward_without_grad",
        lambda lib: _f(lib, 1).sum().backward(),
        RuntimeError,
        r"does not require grad",
    ),
    (
        "int_requires_grad",
        lambda lib: lib.tensor([1, 2], requires_grad=True),
        RuntimeError,
        r"only tensors of floating point dtype can require gradients, got dtype int64",
    ),
    (
        "int_requires_grad_",
        lambda lib: lib.tensor([1, 2]).requires_grad_(),
        RuntimeError,
        r"floating point.*int64",
    ),
    (
        "item_of_many",
        lambda lib: _f(lib, 2, 2).item(),
        RuntimeError,
        r"item: a tensor with 4 elements \(shape \(2, 2\)\)",
    ),
    (
        "bool_of_many",
        lambda lib: bool(_f(lib, 2)),
        RuntimeError,
        r"bool: only a one-element tensor can be converted, got shape \(2,\)",
    ),
    (
        "numpy_requires_grad",
        lambda lib: _f(lib, 2).requires_grad_().numpy(),
        RuntimeError,
        r"numpy\(\) on a tensor that requires grad.*detach\(\)",
    ),
    (
        "in_place_leaf",
        lambda lib: _f(lib, 2).requires_grad_().add_(1),
        RuntimeError,
        r"add_: a leaf tensor that requires grad is being used in an in-place operation",
    ),
    (
        "grad_input_no_grad",
        lambda lib: (
            lib.autograd.grad(_f(lib, 1).requires_grad_().sum(), _f(lib, 1))
            if lib is not autodiff
            else autodiff.grad(_f(lib, 1).requires_grad_().sum(), _f(lib, 1))
        ),
        RuntimeError,
        r"grad: input 0 \(shape \(1,\)\) does not require grad",
    ),
    (
        "device_cuda",
        lambda lib: lib.zeros(2).to("cuda"),
        RuntimeError,
        r"device: autodiff computes on the CPU only; got device 'cuda'",
    ),
    (
        "module_device_cuda",
        lambda lib: _nn(lib).Linear(3, 2, device="cuda"),
        RuntimeError,
        r"device: autodiff computes on the CPU only; got device 'cuda'",
    ),
    (
        "avg_pool2d_zero_divisor",
        lambda lib: _nn(lib).functional.avg_pool2d(_f(lib, 1, 1, 4, 4), 2, divisor_override=0),
        RuntimeError,
        r"avg_pool2d: divisor_override must not be zero",
    ),
    (
        "cross_entropy_probabilities_ignore_index",
        lambda lib: _nn(lib).functional.cross_entropy(
            _f(lib, 2, 3), _f(lib, 2, 3) / 10, ignore_index=1
        ),
        RuntimeError,
        r"cross_entropy: ignore_index \(1\) is not supported for class-probability targets",
    ),
    (
        "mse_loss_weight_shape",
        lambda lib: _nn(lib).functional.mse_loss(_f(lib, 2, 3), _f(lib, 2, 3), weight=_f(lib, 3)),
        ValueError,
        r"mse_loss: weights of shape \(3,\) and input of shape \(2, 3\) must have the same size",
    ),
]

# NumPy's long double is 80-bit extended precision on x86 Linux (float128, complex256),
# which PyTorch has no dtype for; elsewhere it may be float64 itself, which both read
if np.dtype(np.longdouble).itemsize > 8:
    BAD_INPUTS += [
        (
            "tensor_long_double_array",
            lambda lib: lib.tensor(np.ones(3, dtype=np.longdouble)),
            TypeError,
            r"tensor: found NumPy float\d+ \(long double\) values.*astype\(np\.float64\)",
        ),
        (
            "from_numpy_complex_long_double",
            lambda lib: lib.from_numpy(np.ones(3, dtype=np.clongdouble)),
            TypeError,
            r"from_numpy: found NumPy complex\d+ \(long double\).*astype\(np\.complex128\)",
        ),
        (
            "tensor_long_double_in_a_list",
            lambda lib: lib.tensor([np.longdouble(1.5), 2.0]),
            TypeError,
            r"tensor: found NumPy float\d+ \(long double\) values",
        ),
    ]


# Deliberate differences: PyTorch raises RuntimeError ("Could not infer dtype") for None
# and objects; we raise TypeError for all data that is not numeric, as Python does for a
# value of the wrong type (see the README).
# A CPU-only PyTorch build asserts (AssertionError) on .to("cuda"); we raise RuntimeError.
TORCH_DIFFERS = {
    "tensor_from_none",
    "tensor_from_objects",
    "tensor_float_2_to_the_63_as_int64",
    "tensor_numeric_string_as_float32",
    "device_cuda",
    "module_device_cuda",
}


def _builtin_base(error_type):
    """The first built-in exception class in the MRO (torch raises its own subclasses)."""
    for cls in error_type.__mro__:
        if cls.__module__ == "builtins":
            return cls
    return Exception


@pytest.mark.parametrize("name,call,kind,pattern", BAD_INPUTS, ids=[row[0] for row in BAD_INPUTS])
def test_bad_input_gets_a_clear_exception(name, call, kind, pattern):
    with pytest.raises(kind) as info:
        call(autodiff)
    assert re.search(pattern, str(info.value)), (
        f"{name}: message {str(info.value)!r} lacks {pattern!r}"
    )


SAME_AS_TORCH = [row for row in BAD_INPUTS if row[0] not in TORCH_DIFFERS]


@pytest.mark.torch
@pytest.mark.parametrize(
    "name,call,kind,pattern", SAME_AS_TORCH, ids=[row[0] for row in SAME_AS_TORCH]
)
def test_the_exception_type_is_the_one_pytorch_raises(name, call, kind, pattern):
    torch = pytest.importorskip("torch")
    try:
        call(torch)
    except Exception as error:
        theirs = _builtin_base(type(error))
    else:
        pytest.skip(f"PyTorch accepts this input ({name})")
    with pytest.raises(Exception) as info:
        call(autodiff)
    assert isinstance(info.value, theirs), (
        f"{name}: PyTorch raises {theirs.__name__}, we raise {type(info.value).__name__}"
    )


def test_shape_errors_are_also_value_errors():
    # PyTorch raises RuntimeError, NumPy ValueError: catch either.
    with pytest.raises(ValueError, match="matmul"):
        autodiff.ones(2, 3) @ autodiff.ones(2, 3)
    with pytest.raises(ValueError, match="reshape"):
        autodiff.ones(2, 3).reshape(4)
    assert issubclass(autodiff.errors.ShapeError, builtins.RuntimeError)


def test_a_user_functions_value_error_stays_a_value_error_naming_the_op():
    class Positive(autodiff.Function):
        @staticmethod
        def forward(ctx, x):
            if (x <= 0).any():
                raise ValueError("expected positive values")
            return np.log(x)

        @staticmethod
        def backward(ctx, grad):
            return grad

    with pytest.raises(ValueError) as info:
        Positive.apply(autodiff.tensor([-1.0, 2.0]))
    assert type(info.value) is ValueError
    assert str(info.value).startswith(
        "positive: expected positive values (inputs: tensor of shape (2,)"
    )


def test_backward_through_a_freed_graph_names_the_op():
    x = autodiff.tensor([1.0, 2.0], requires_grad=True)
    y = x.tanh().sum()
    y.backward()
    with pytest.raises(
        RuntimeError, match="TanhBackward: trying to backward through the graph a second time"
    ):
        y.backward()
    np.testing.assert_allclose(x.grad.data, 1 - np.tanh(x.data) ** 2, rtol=1e-6)


# -- custom Functions with a broken backward leave no gradient half-updated ----------------


class TwoInputs(Multiply):
    """z = x * y, with a backward that can be made to misbehave."""

    mode = "ok"

    @staticmethod
    def backward(ctx, grad):
        x, y = ctx.saved_tensors
        mode = TwoInputs.mode
        if mode == "count":
            return grad * y
        if mode == "shape":
            return autodiff.ones(5), grad * x
        if mode == "type":
            return "not a gradient", grad * x
        return grad * y, grad * x


@pytest.fixture
def broken():
    yield TwoInputs
    TwoInputs.mode = "ok"


def _graph_with_other_paths():
    """Leaves that receive gradient from the broken op AND from ordinary paths."""
    x = autodiff.tensor([1.0, 2.0], requires_grad=True)
    y = autodiff.tensor([3.0, 4.0], requires_grad=True)
    x.grad = autodiff.tensor([10.0, 10.0])  # an existing gradient that must survive
    h = (x * 2).exp()
    h.retain_grad()
    loss = (TwoInputs.apply(h, y) + x * 3 + y).sum()
    return x, y, h, loss


@pytest.mark.parametrize(
    "mode,kind,pattern",
    [
        (
            "count",
            RuntimeError,
            r"TwoInputsBackward: backward returned 1 gradients but forward took 2 inputs",
        ),
        (
            "shape",
            RuntimeError,
            r"TwoInputsBackward: got a gradient of shape \(5,\) for an input of shape \(2,\)",
        ),
        ("type", TypeError, r"TwoInputsBackward: backward returned a str; expected a Tensor"),
    ],
)
def test_broken_custom_backward_leaves_gradients_untouched(broken, mode, kind, pattern):
    x, y, h, loss = _graph_with_other_paths()
    broken.mode = mode
    with pytest.raises(kind, match=pattern):
        loss.backward()
    np.testing.assert_array_equal(x.grad.data, [10.0, 10.0])
    assert y.grad is None
    assert h.grad is None


def test_the_same_graph_works_with_a_correct_backward(broken):
    x, y, h, loss = _graph_with_other_paths()
    loss.backward()
    e = np.exp(2 * x.data)
    np.testing.assert_allclose(x.grad.data, 10 + y.data * e * 2 + 3, rtol=1e-6)
    np.testing.assert_allclose(y.grad.data, e + 1, rtol=1e-6)
    np.testing.assert_allclose(h.grad.data, y.data)


def test_a_failing_hook_leaves_gradients_untouched():
    x = autodiff.tensor([1.0, 2.0], requires_grad=True)
    mid = x * 2

    def hook(grad):
        raise ValueError("hook failed")

    mid.register_hook(hook)
    with pytest.raises(ValueError, match="hook failed"):
        (mid.sum() + x.sum()).backward()
    assert x.grad is None


# -- failed in-place operations change nothing -------------------------------------------------


def _unchanged(t, before_data, before_version):
    np.testing.assert_array_equal(t.data, before_data)
    assert t._version[0] == before_version


@pytest.mark.parametrize(
    "update,kind,pattern",
    [
        (
            lambda t: t.add_(autodiff.ones(3, 3)),
            RuntimeError,
            r"add_: can't update a tensor of shape \(3,\) in place with a value of shape \(3, 3\)",
        ),
        (lambda t: t.mul_(autodiff.ones(2)), RuntimeError, r"mul_: .*shape \(3,\).*\(2,\)"),
        (lambda t: t.copy_(autodiff.ones(4)), RuntimeError, r"copy_: .*\(3,\).*\(4,\)"),
        (
            lambda t: t.__setitem__(slice(0, 2), autodiff.ones(3)),
            ValueError,
            r"setitem: cannot assign a value of shape \(3,\) to index .* of a tensor of shape \(3,\)",
        ),
        (lambda t: t.__setitem__(5, 1.0), IndexError, r"setitem: .*index 5 is out of bounds"),
    ],
)
def test_failed_in_place_update_changes_nothing(update, kind, pattern):
    t = autodiff.tensor([1.0, 2.0, 3.0])
    data, version = t.data.copy(), t._version[0]
    with pytest.raises(kind, match=pattern):
        update(t)
    _unchanged(t, data, version)


def test_failed_in_place_cast_changes_nothing():
    t = autodiff.tensor([1, 2, 3])
    with pytest.raises(
        RuntimeError,
        match=r"add_: result of dtype float64 can't be cast to the tensor's dtype int64",
    ):
        t += 0.5
    _unchanged(t, np.array([1, 2, 3]), 0)


def test_failed_recorded_in_place_update_changes_nothing():
    x = autodiff.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = x * 2
    node, data, version = y.grad_fn, y.data.copy(), y._version[0]
    with pytest.raises(
        RuntimeError,
        match=r"add_: output with shape \(3,\) doesn't match the broadcast shape \(2, 3\)",
    ):
        y.add_(autodiff.ones(2, 3, requires_grad=True))
    _unchanged(y, data, version)
    assert y.grad_fn is node
    y.sum().backward()  # the graph still works
    np.testing.assert_allclose(x.grad.data, [2.0, 2.0, 2.0])


def test_failed_leaf_in_place_changes_nothing():
    w = autodiff.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf tensor that requires grad"):
        w *= 3
    _unchanged(w, np.array([1.0, 2.0]), 0)


def test_assigning_a_wrong_gradient():
    x = autodiff.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(
        RuntimeError, match=r"grad: assigned grad has shape \(3,\) but the tensor has shape \(2,\)"
    ):
        x.grad = autodiff.zeros(3)
    with pytest.raises(TypeError, match="grad: assigned grad must be a Tensor or None, got list"):
        x.grad = [0.0, 0.0]
    assert x.grad is None
