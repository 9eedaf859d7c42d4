"""Every layer and loss against PyTorch: same weights (loaded through
``load_state_dict`` from PyTorch's state dict as NumPy arrays), same input, same
random upstream gradient -> same output, input gradient and parameter gradients.

Skipped as a whole when PyTorch is not installed.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch")

from _helpers import assert_same_outputs_as_pytorch  # noqa: E402

import autodiff  # noqa: E402
import nn  # noqa: E402
import nn.functional as F  # noqa: E402, N812

pytestmark = pytest.mark.torch
RTOL, ATOL = 1e-7, 1e-9  # float64 throughout: only summation order differs


def _copy_weights(ours, theirs):
    """PyTorch's state dict -> NumPy arrays -> our load_state_dict (strict)."""
    result = ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    assert not result.missing_keys and not result.unexpected_keys


def _close(ours, theirs, what):
    theirs = theirs.detach().numpy() if hasattr(theirs, "detach") else np.asarray(theirs)
    ours = ours.data if isinstance(ours, autodiff.Tensor) else np.asarray(ours)
    assert ours.shape == theirs.shape, f"{what}: shape {ours.shape} vs PyTorch {theirs.shape}"
    np.testing.assert_allclose(ours, theirs, rtol=RTOL, atol=ATOL, err_msg=what)


def compare_module(ours, theirs, *inputs, seed=0, grad_inputs=True):
    """Run both modules on the same float64 inputs; compare output and every gradient."""
    ours.double()
    theirs.double()
    _copy_weights(ours, theirs)
    rng = np.random.default_rng(seed)
    ours_in, theirs_in = [], []
    for x in inputs:
        x = np.asarray(x)
        floating = x.dtype.kind == "f"
        ours_in.append(autodiff.tensor(x, requires_grad=floating and grad_inputs))
        theirs_in.append(torch.tensor(x, requires_grad=floating and grad_inputs))
    out_ours, out_theirs = ours(*ours_in), theirs(*theirs_in)
    _close(out_ours, out_theirs, f"{ours._get_name()} output")
    if not out_theirs.requires_grad:
        return out_ours
    upstream = rng.standard_normal(tuple(out_theirs.shape))
    out_ours.backward(autodiff.tensor(upstream))
    out_theirs.backward(torch.tensor(upstream))
    for i, (a, b) in enumerate(zip(ours_in, theirs_in, strict=True)):
        if b.grad is not None:
            _close(a.grad, b.grad, f"{ours._get_name()} grad of input {i}")
    theirs_params = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        q = theirs_params[name]
        if q.grad is None:
            assert p.grad is None, f"{name}: PyTorch gives no gradient"
        else:
            _close(p.grad, q.grad, f"{ours._get_name()} grad of {name}")
    return out_ours


# -- the lecture's model ---------------------------------------------------------------


def _lecture_models():
    class TorchNeuralNetwork(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.flatten = torch.nn.Flatten()
            self.linear_relu_stack = torch.nn.Sequential(
                torch.nn.Linear(28 * 28, 512),
                torch.nn.ReLU(),
                torch.nn.Linear(512, 512),
                torch.nn.ReLU(),
                torch.nn.Linear(512, 10),
            )

        def forward(self, x):
            return self.linear_relu_stack(self.flatten(x))

    TorchNeuralNetwork.__name__ = "NeuralNetwork"
    return nn.models.NeuralNetwork(), TorchNeuralNetwork()


def test_lecture_model_repr_keys_count_and_numbers():
    ours, theirs = _lecture_models()
    assert repr(ours) == repr(theirs)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert [k for k, _ in ours.named_parameters()] == [k for k, _ in theirs.named_parameters()]
    for (_, a), (_, b) in zip(ours.state_dict().items(), theirs.state_dict().items(), strict=True):
        assert a.shape == tuple(b.shape)
    count = sum(p.numel() for p in ours.parameters())
    assert count == sum(p.numel() for p in theirs.parameters()) == 669_706
    x = np.random.default_rng(1).random((3, 1, 28, 28))
    compare_module(ours, theirs, x)


def test_lecture_training_step_matches_pytorch_in_float32():
    ours, theirs = _lecture_models()
    _copy_weights(ours, theirs)
    rng = np.random.default_rng(2)
    x = rng.random((8, 1, 28, 28), dtype=np.float32)
    y = rng.integers(0, 10, 8)
    opt_ours = nn.optim.SGD(ours.parameters(), lr=1e-1)
    opt_theirs = torch.optim.SGD(theirs.parameters(), lr=1e-1)
    for _ in range(3):
        loss_ours = nn.CrossEntropyLoss()(ours(autodiff.tensor(x)), autodiff.tensor(y))
        loss_theirs = torch.nn.CrossEntropyLoss()(theirs(torch.tensor(x)), torch.tensor(y))
        np.testing.assert_allclose(loss_ours.item(), loss_theirs.item(), rtol=1e-5)
        loss_ours.backward()
        loss_theirs.backward()
        opt_ours.step()
        opt_theirs.step()
        opt_ours.zero_grad()
        opt_theirs.zero_grad()
    for (name, a), b in zip(ours.state_dict().items(), theirs.state_dict().values(), strict=True):
        np.testing.assert_allclose(a.data, b.numpy(), rtol=1e-4, atol=1e-6, err_msg=name)


# -- reprs -------------------------------------------------------------------------------

REPR_CASES = [
    ("Linear", (3, 4), {}),
    ("Linear", (3, 4), {"bias": False}),
    ("Flatten", (), {}),
    ("Flatten", (0, 2), {}),
    ("Unflatten", (1, (2, 3)), {}),
    ("Identity", (), {}),
    ("Conv2d", (2, 4, 3), {}),
    (
        "Conv2d",
        (2, 4, (3, 1)),
        {"stride": 2, "padding": 1, "dilation": 2, "groups": 2, "bias": False},
    ),
    ("Conv2d", (2, 4, 3), {"padding": "same"}),
    ("Conv2d", (2, 4, 3), {"padding": "valid"}),
    ("MaxPool2d", (2,), {}),
    ("MaxPool2d", (3, 2, 1), {"ceil_mode": True}),
    ("AvgPool2d", (2,), {}),
    ("AdaptiveAvgPool2d", ((1, 1),), {}),
    ("BatchNorm1d", (5,), {}),
    ("BatchNorm2d", (5,), {"momentum": None, "affine": False}),
    ("Dropout", (), {}),
    ("Dropout", (0.2,), {}),
    ("Embedding", (10, 3), {"padding_idx": 0}),
    ("ReLU", (), {}),
    ("LeakyReLU", (0.2,), {}),
    ("Sigmoid", (), {}),
    ("Tanh", (), {}),
    ("GELU", (), {}),
    ("GELU", ("tanh",), {}),
    ("Softmax", (1,), {}),
    ("LogSoftmax", (1,), {}),
    ("ELU", (), {}),
    ("SiLU", (), {}),
    ("Softplus", (), {}),
    ("CrossEntropyLoss", (), {}),
    ("NLLLoss", (), {}),
    ("MSELoss", (), {}),
    ("L1Loss", (), {}),
    ("BCELoss", (), {}),
    ("BCEWithLogitsLoss", (), {}),
]


@pytest.mark.parametrize(("name", "args", "kwargs"), REPR_CASES)
def test_layer_repr_and_state_dict_layout_match_pytorch(name, args, kwargs):
    ours, theirs = getattr(nn, name)(*args, **kwargs), getattr(torch.nn, name)(*args, **kwargs)
    assert repr(ours) == repr(theirs)
    ours_sd, theirs_sd = ours.state_dict(), theirs.state_dict()
    assert list(ours_sd) == list(theirs_sd)
    for key in ours_sd:
        assert ours_sd[key].shape == tuple(theirs_sd[key].shape), key
        assert ours_sd[key].dtype == theirs_sd[key].numpy().dtype, key


def test_containers_repr_match_pytorch():
    ours = nn.Sequential(nn.ModuleList([nn.Linear(2, 2) for _ in range(3)] + [nn.ReLU()]))
    ours.append(nn.ModuleDict({"a": nn.Tanh(), "b": nn.Linear(2, 1)}))
    theirs = torch.nn.Sequential(
        torch.nn.ModuleList([torch.nn.Linear(2, 2) for _ in range(3)] + [torch.nn.ReLU()])
    )
    theirs.append(torch.nn.ModuleDict({"a": torch.nn.Tanh(), "b": torch.nn.Linear(2, 1)}))
    assert repr(ours) == repr(theirs)
    assert list(ours.state_dict()) == list(theirs.state_dict())


def test_shared_modules_state_dict_and_parameters_match_pytorch():
    shared, tshared = nn.Linear(2, 2), torch.nn.Linear(2, 2)
    ours, theirs = (
        nn.Sequential(shared, nn.ReLU(), shared),
        torch.nn.Sequential(tshared, torch.nn.ReLU(), tshared),
    )
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    assert [n for n, _ in ours.named_modules()] == [n for n, _ in theirs.named_modules()]
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    np.testing.assert_array_equal(shared.weight.data, tshared.weight.detach().numpy())


# -- convolution and pooling ---------------------------------------------------------------


@st.composite
def conv_cases(draw):
    groups = draw(st.sampled_from([1, 1, 2, 3]))
    c_in = groups * draw(st.integers(1, 2))
    c_out = groups * draw(st.integers(1, 2))
    kernel = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    padding = draw(
        st.one_of(
            st.sampled_from(["same", "valid"]),
            st.tuples(st.integers(0, 2), st.integers(0, 2)),
            st.integers(0, 2),
        )
    )
    stride = (1, 1) if padding == "same" else (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    span = [d * (k - 1) + 1 for k, d in zip(kernel, dilation, strict=True)]
    h = draw(st.integers(span[0], span[0] + 4))
    w = draw(st.integers(span[1], span[1] + 4))
    n = draw(st.integers(1, 2))
    bias = draw(st.booleans())
    return (
        n,
        c_in,
        c_out,
        h,
        w,
        {
            "kernel_size": kernel,
            "stride": stride,
            "padding": padding,
            "dilation": dilation,
            "groups": groups,
            "bias": bias,
        },
    )


@settings(max_examples=30)
@given(case=conv_cases(), seed=st.integers(0, 2**16))
def test_conv2d_matches_pytorch(case, seed):
    n, c_in, c_out, h, w, kwargs = case
    x = np.random.default_rng(seed).standard_normal((n, c_in, h, w))
    compare_module(
        nn.Conv2d(c_in, c_out, **kwargs), torch.nn.Conv2d(c_in, c_out, **kwargs), x, seed=seed
    )


@st.composite
def pool_cases(draw, dilation=True):
    kernel = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    stride = draw(st.one_of(st.none(), st.tuples(st.integers(1, 3), st.integers(1, 3))))
    padding = (draw(st.integers(0, kernel[0] // 2)), draw(st.integers(0, kernel[1] // 2)))
    kwargs = {"kernel_size": kernel, "stride": stride, "padding": padding}
    kwargs["ceil_mode"] = draw(st.booleans())
    span = list(kernel)
    if dilation:
        kwargs["dilation"] = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
        span = [d * (k - 1) + 1 for k, d in zip(kernel, kwargs["dilation"], strict=True)]
    h = draw(st.integers(span[0], span[0] + 5))
    w = draw(st.integers(span[1], span[1] + 5))
    return (draw(st.integers(1, 2)), draw(st.integers(1, 2)), h, w), kwargs


@settings(max_examples=30)
@given(case=pool_cases(), seed=st.integers(0, 2**16))
def test_max_pool2d_matches_pytorch(case, seed):
    shape, kwargs = case
    # distinct values: ties would make "which maximum gets the gradient" a coin toss
    x = np.random.default_rng(seed).permutation(int(np.prod(shape))).reshape(shape) / 7.0
    compare_module(nn.MaxPool2d(**kwargs), torch.nn.MaxPool2d(**kwargs), x, seed=seed)
    _, ours = F.max_pool2d(autodiff.tensor(x), return_indices=True, **kwargs)
    _, theirs = torch.nn.functional.max_pool2d(torch.tensor(x), return_indices=True, **kwargs)
    np.testing.assert_array_equal(ours.data, theirs.numpy())


def test_max_pool2d_gradient_goes_to_the_first_maximum_like_pytorch():
    x = np.ones((1, 1, 4, 4))  # all ties
    compare_module(nn.MaxPool2d(2), torch.nn.MaxPool2d(2), x)
    compare_module(nn.MaxPool2d(3, 1, 1), torch.nn.MaxPool2d(3, 1, 1), x)


@pytest.mark.parametrize(("kernel", "stride"), [(2, 2), (3, 1), (5, 2), (17, 3)])
def test_max_pool2d_indices_with_ties_and_nan_match_pytorch(kernel, stride):
    """Many ties and a NaN: the same maxima and the same indices (the first maximum,
    the NaN where one is), also past 256 taps a window (17x17: int64 taps)."""
    x = np.random.default_rng(kernel).integers(0, 5, (2, 3, 40, 40)).astype(np.float32)
    x[0, 0, 3, 3] = x[1, 2, 30, 17] = np.nan
    ours, ours_at = F.max_pool2d(autodiff.tensor(x), kernel, stride, return_indices=True)
    theirs, theirs_at = torch.nn.functional.max_pool2d(
        torch.from_numpy(x), kernel, stride, return_indices=True
    )
    np.testing.assert_array_equal(ours.data, theirs.numpy())
    np.testing.assert_array_equal(ours_at.data, theirs_at.numpy())


@settings(max_examples=30)
@given(case=pool_cases(dilation=False), include=st.booleans(), seed=st.integers(0, 2**16))
def test_avg_pool2d_matches_pytorch(case, include, seed):
    shape, kwargs = case
    kwargs["count_include_pad"] = include
    x = np.random.default_rng(seed).standard_normal(shape)
    compare_module(nn.AvgPool2d(**kwargs), torch.nn.AvgPool2d(**kwargs), x, seed=seed)


@settings(max_examples=20)
@given(
    h=st.integers(1, 9),
    w=st.integers(1, 9),
    out=st.tuples(st.one_of(st.none(), st.integers(1, 6)), st.integers(1, 6)),
    seed=st.integers(0, 2**16),
)
def test_adaptive_avg_pool2d_matches_pytorch(h, w, out, seed):
    x = np.random.default_rng(seed).standard_normal((2, 3, h, w))
    compare_module(nn.AdaptiveAvgPool2d(out), torch.nn.AdaptiveAvgPool2d(out), x, seed=seed)
    compare_module(
        nn.AdaptiveAvgPool2d(out[1]), torch.nn.AdaptiveAvgPool2d(out[1]), x[0], seed=seed
    )


def test_unfold_matches_pytorch():
    x = np.random.default_rng(3).standard_normal((2, 3, 7, 6))
    for kwargs in [
        {"kernel_size": 2},
        {"kernel_size": (3, 2), "stride": 2, "padding": 1, "dilation": (1, 2)},
    ]:
        ours = F.unfold(autodiff.tensor(x), **kwargs)
        theirs = torch.nn.functional.unfold(torch.tensor(x), **kwargs)
        _close(ours, theirs, f"unfold {kwargs}")


def test_small_cnn_matches_pytorch():
    def build(m):
        return m.Sequential(
            m.Conv2d(1, 4, 3, padding=1),
            m.ReLU(),
            m.MaxPool2d(2),
            m.Conv2d(4, 6, 3, stride=2, groups=2),
            m.BatchNorm2d(6),
            m.GELU(),
            m.AdaptiveAvgPool2d(1),
            m.Flatten(),
            m.Linear(6, 10),
        )

    x = np.random.default_rng(4).standard_normal((3, 1, 12, 12))
    compare_module(build(nn), build(torch.nn), x)


# -- linear, activations, normalisation, embedding -------------------------------------------


@settings(max_examples=15)
@given(
    batch=st.lists(st.integers(1, 3), min_size=0, max_size=2),
    n_in=st.integers(1, 5),
    n_out=st.integers(1, 5),
    bias=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_linear_matches_pytorch(batch, n_in, n_out, bias, seed):
    x = np.random.default_rng(seed).standard_normal((*batch, n_in))
    compare_module(
        nn.Linear(n_in, n_out, bias=bias), torch.nn.Linear(n_in, n_out, bias=bias), x, seed=seed
    )


ACTIVATIONS = [
    ("ReLU", ()),
    ("LeakyReLU", (0.1,)),
    ("Sigmoid", ()),
    ("Tanh", ()),
    ("GELU", ()),
    ("GELU", ("tanh",)),
    ("Softmax", (1,)),
    ("Softmax", (-1,)),
    ("LogSoftmax", (1,)),
    ("ELU", (0.7,)),
    ("SiLU", ()),
    ("Softplus", ()),
    ("Softplus", (2.0, 1.0)),
    ("Flatten", ()),
    ("Identity", ()),
]


@pytest.mark.parametrize(("name", "args"), ACTIVATIONS)
def test_activation_matches_pytorch(name, args):
    x = np.random.default_rng(5).standard_normal((4, 3, 5)) * 3
    x[0, 0, :3] = [0.5, -0.5, 30.0]
    compare_module(getattr(nn, name)(*args), getattr(torch.nn, name)(*args), x)


def test_log_softmax_and_cross_entropy_are_stable_for_huge_logits():
    x = np.array([[1e4, 0.0, -1e4], [-1e4, 1e4, 1e4]])
    compare_module(nn.LogSoftmax(1), torch.nn.LogSoftmax(1), x)
    compare_module(nn.Softmax(1), torch.nn.Softmax(1), x)
    for dtype in (np.float32, np.float64):
        loss = F.cross_entropy(autodiff.tensor(x.astype(dtype)), autodiff.tensor([2, 0]))
        theirs = torch.nn.functional.cross_entropy(
            torch.tensor(x.astype(dtype)), torch.tensor([2, 0])
        )
        assert np.isfinite(loss.item())
        np.testing.assert_allclose(loss.item(), theirs.item(), rtol=1e-6)


@pytest.mark.parametrize("cls", ["BatchNorm1d", "BatchNorm2d"])
@pytest.mark.parametrize("momentum", [0.1, 0.5, None])
@pytest.mark.parametrize("affine", [True, False])
def test_batch_norm_training_and_eval_match_pytorch(cls, momentum, affine):
    shapes = {"BatchNorm1d": [(6, 4), (5, 4, 3)], "BatchNorm2d": [(3, 4, 5, 2)]}[cls]
    ours = getattr(nn, cls)(4, momentum=momentum, affine=affine)
    theirs = getattr(torch.nn, cls)(4, momentum=momentum, affine=affine)
    rng = np.random.default_rng(6)
    if affine:
        with torch.no_grad():
            theirs.weight.uniform_(0.5, 1.5)
            theirs.bias.uniform_(-1, 1)
    for step in range(3):
        for shape in shapes:
            x = rng.standard_normal(shape) * 2 + 1
            compare_module(ours, theirs, x, seed=step)
            for name in ("running_mean", "running_var", "num_batches_tracked"):
                _close(getattr(ours, name), getattr(theirs, name), name)
    ours.eval()
    theirs.eval()
    compare_module(ours, theirs, rng.standard_normal(shapes[0]))


def test_embedding_matches_pytorch():
    idx = np.array([[0, 2, 4], [4, 3, 0]])
    for padding_idx in (None, 0, -1):
        ours = nn.Embedding(5, 3, padding_idx=padding_idx)
        theirs = torch.nn.Embedding(5, 3, padding_idx=padding_idx)
        compare_module(ours, theirs, idx, grad_inputs=False)
    assert torch.nn.Embedding(5, 3, padding_idx=1).weight[1].abs().sum() == 0
    assert nn.Embedding(5, 3, padding_idx=1).weight.data[1].tolist() == [0.0, 0.0, 0.0]


def test_dropout_in_eval_and_extremes_matches_pytorch():
    x = np.random.default_rng(7).standard_normal((4, 5))
    compare_module(nn.Dropout(0.5).eval(), torch.nn.Dropout(0.5).eval(), x)
    compare_module(nn.Dropout(0.0), torch.nn.Dropout(0.0), x)
    compare_module(nn.Dropout(1.0), torch.nn.Dropout(1.0), x)


# -- losses ------------------------------------------------------------------------------------


def _loss_pair(name, **kwargs):
    ours_kwargs, theirs_kwargs = dict(kwargs), dict(kwargs)
    for key in ("weight", "pos_weight"):
        if key in kwargs:
            ours_kwargs[key] = autodiff.tensor(kwargs[key])
            theirs_kwargs[key] = torch.tensor(kwargs[key])
    return getattr(nn, name)(**ours_kwargs), getattr(torch.nn, name)(**theirs_kwargs)


@st.composite
def cross_entropy_cases(draw):
    n_classes = draw(st.integers(2, 5))
    batch = draw(st.sampled_from([(), (3,), (2, 3), (2, 2, 3)]))
    reduction = draw(st.sampled_from(["mean", "sum", "none"]))
    kwargs = {
        "reduction": reduction,
        "label_smoothing": draw(st.sampled_from([0.0, 0.0, 0.1, 0.5])),
    }
    if draw(st.booleans()):
        kwargs["weight"] = draw(
            st.lists(st.floats(0.1, 3.0), min_size=n_classes, max_size=n_classes).map(np.array)
        )
    probabilities = draw(st.booleans())
    if not probabilities and draw(st.booleans()):
        kwargs["ignore_index"] = draw(st.sampled_from([0, 1, -100]))
    seed = draw(st.integers(0, 2**16))
    return n_classes, batch, probabilities, kwargs, seed


@settings(max_examples=40)
@given(case=cross_entropy_cases())
def test_cross_entropy_matches_pytorch(case):
    n_classes, batch, probabilities, kwargs, seed = case
    rng = np.random.default_rng(seed)
    shape = (batch[0], n_classes, *batch[1:]) if batch else (n_classes,)
    logits = rng.standard_normal(shape) * 2
    if probabilities:
        target = rng.random(shape)
        target /= target.sum(axis=1 if batch else 0, keepdims=True)
    else:
        target = rng.integers(0, n_classes, batch)
        if kwargs.get("ignore_index", -100) != -100 and target.size > 1:
            target.reshape(-1)[0] = kwargs["ignore_index"]  # at least one ignored, not all
            target.reshape(-1)[-1] = (kwargs["ignore_index"] + 1) % n_classes
    ours, theirs = _loss_pair("CrossEntropyLoss", **kwargs)
    compare_module(ours, theirs, logits, target, seed=seed)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_nll_loss_matches_pytorch(reduction):
    rng = np.random.default_rng(8)
    logp = np.log(rng.dirichlet(np.ones(4), size=5))
    target = np.array([0, 3, 1, 1, 2])
    for kwargs in [{}, {"weight": np.array([1.0, 2.0, 0.5, 3.0])}, {"ignore_index": 1}]:
        ours, theirs = _loss_pair("NLLLoss", reduction=reduction, **kwargs)
        compare_module(ours, theirs, logp, target)
    ours, theirs = _loss_pair("NLLLoss", reduction=reduction)
    compare_module(ours, theirs, rng.standard_normal((2, 4, 3)), rng.integers(0, 4, (2, 3)))


@pytest.mark.parametrize(
    "name, kwargs",
    [
        ("CrossEntropyLoss", {}),
        ("CrossEntropyLoss", {"label_smoothing": 0.1}),
        ("CrossEntropyLoss", {"weight": np.array([1.0, 2.0, 0.5, 3.0])}),
        ("NLLLoss", {}),
        ("NLLLoss", {"weight": np.array([1.0, 2.0, 0.5, 3.0])}),
    ],
)
@pytest.mark.parametrize("shape", [(4,), (3, 4), (2, 4, 3)])
def test_losses_with_every_target_ignored_give_nan_and_zero_gradients(name, kwargs, shape):
    """The mean over no targets is 0 / 0 = nan, yet PyTorch's gradient is 0 (not nan)."""
    rng = np.random.default_rng(12)
    target = np.full(shape[:1] + shape[2:] if len(shape) > 1 else (), -100)
    ours, theirs = _loss_pair(name, **kwargs)
    out = compare_module(ours, theirs, rng.standard_normal(shape), target)
    assert np.isnan(out.item())


@pytest.mark.parametrize("name", ["MSELoss", "L1Loss"])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_regression_losses_match_pytorch(name, reduction):
    rng = np.random.default_rng(9)
    ours, theirs = _loss_pair(name, reduction=reduction)
    compare_module(ours, theirs, rng.standard_normal((3, 4)), rng.standard_normal((3, 4)))


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_binary_cross_entropy_losses_match_pytorch(reduction):
    rng = np.random.default_rng(10)
    probs = rng.uniform(0.01, 0.99, (4, 3))
    target = rng.random((4, 3))
    weight = rng.uniform(0.5, 2, (4, 3))
    for kwargs in [{}, {"weight": weight}]:
        ours, theirs = _loss_pair("BCELoss", reduction=reduction, **kwargs)
        compare_module(ours, theirs, probs, target)
    logits = rng.standard_normal((4, 3)) * 5
    logits[0, :] = [40.0, -40.0, 0.0]  # saturated: stable formula needed
    for kwargs in [{}, {"weight": weight}, {"pos_weight": np.array([0.5, 1.0, 3.0])}]:
        ours, theirs = _loss_pair("BCEWithLogitsLoss", reduction=reduction, **kwargs)
        compare_module(ours, theirs, logits, target)


def test_bce_clamps_log_at_minus_100_like_pytorch():
    probs = np.array([0.0, 1.0, 0.5])
    target = np.array([1.0, 0.0, 1.0])
    ours = F.binary_cross_entropy(autodiff.tensor(probs), autodiff.tensor(target), reduction="none")
    theirs = torch.nn.functional.binary_cross_entropy(
        torch.tensor(probs), torch.tensor(target), reduction="none"
    )
    _close(ours, theirs, "bce at 0 and 1")


def test_one_hot_matches_pytorch():
    idx = np.array([[0, 3], [2, 1]])
    _close(
        F.one_hot(autodiff.tensor(idx)), torch.nn.functional.one_hot(torch.tensor(idx)), "one_hot"
    )
    _close(
        F.one_hot(autodiff.tensor(idx), 6),
        torch.nn.functional.one_hot(torch.tensor(idx), 6),
        "one_hot 6",
    )
    assert F.one_hot(autodiff.tensor(idx)).dtype == np.int64


# -- initialisation ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("nonlinearity", "param"),
    [
        ("linear", None),
        ("conv2d", None),
        ("sigmoid", None),
        ("tanh", None),
        ("relu", None),
        ("leaky_relu", None),
        ("leaky_relu", 0.2),
        ("selu", None),
    ],
)
def test_calculate_gain_matches_pytorch(nonlinearity, param):
    assert nn.init.calculate_gain(nonlinearity, param) == pytest.approx(
        torch.nn.init.calculate_gain(nonlinearity, param)
    )


@pytest.mark.parametrize("shape", [(64, 32), (16, 8, 3, 3), (40, 3, 5, 1)])
def test_default_initialisation_has_pytorch_bounds(shape):
    """Kaiming-uniform with a = sqrt(5): U(-1/sqrt(fan_in), 1/sqrt(fan_in)), as PyTorch."""
    fan_in = int(np.prod(shape[1:]))
    bound = 1 / np.sqrt(fan_in)
    if len(shape) == 2:
        ours, theirs = nn.Linear(shape[1], shape[0]), torch.nn.Linear(shape[1], shape[0])
    else:
        ours = nn.Conv2d(shape[1], shape[0], shape[2:])
        theirs = torch.nn.Conv2d(shape[1], shape[0], shape[2:])
    for name in ("weight", "bias"):
        a, b = getattr(ours, name).data, getattr(theirs, name).detach().numpy()
        assert np.abs(a).max() <= bound and np.abs(b).max() <= bound
        # both spread over the whole interval: the largest values are near the bound
        assert np.abs(a).max() > 0.8 * bound
        assert a.std() == pytest.approx(bound / np.sqrt(3), rel=0.25)


def test_load_state_dict_accepts_pytorch_tensors_directly():
    ours, theirs = _lecture_models()
    result = ours.load_state_dict(theirs.state_dict())  # torch tensors, not NumPy arrays
    assert repr(result) == "<All keys matched successfully>"
    assert_same_outputs_as_pytorch(ours, theirs, seed=11)


@pytest.mark.parametrize(
    "name, args", [("ReLU", ()), ("LeakyReLU", (0.2,)), ("ELU", ()), ("SiLU", ())]
)
def test_inplace_activations_change_their_input_as_pytorchs(name, args):
    """``inplace=True``: the input (a non-leaf) is overwritten and returned, and the
    gradient reaching the leaf before it is PyTorch's."""
    values = np.random.default_rng(0).standard_normal((3, 4))
    upstream = np.random.default_rng(1).standard_normal((3, 4))
    results = []
    for lib, module in ((autodiff, getattr(nn, name)), (torch, getattr(torch.nn, name))):
        leaf = lib.tensor(values, dtype=lib.float64, requires_grad=True)
        hidden = leaf * 1.5
        out = module(*args, inplace=True)(hidden)
        assert out is hidden, f"{name}(inplace=True) returned a new tensor"
        out.backward(lib.tensor(upstream, dtype=lib.float64))
        results.append((hidden.detach().numpy(), leaf.grad.numpy()))
    (ours_value, ours_grad), (their_value, their_grad) = results
    np.testing.assert_allclose(ours_value, their_value, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(ours_grad, their_grad, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("name", ["mse_loss", "l1_loss"])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_weighted_regression_losses_as_pytorchs(name, reduction):
    """With ``weight``, the mean is sum(w * loss) / sum(w), as PyTorch divides it."""
    rng = np.random.default_rng(0)
    x, y, w = rng.standard_normal((3, 4)), rng.standard_normal((3, 4)), rng.uniform(0, 2, (3, 4))
    results = []
    for lib, functional in ((autodiff, F), (torch, torch.nn.functional)):
        inputs = lib.tensor(x, dtype=lib.float64, requires_grad=True)
        loss = getattr(functional, name)(
            inputs,
            lib.tensor(y, dtype=lib.float64),
            reduction=reduction,
            weight=lib.tensor(w, dtype=lib.float64),
        )
        loss.sum().backward()
        results.append((loss.detach().numpy(), inputs.grad.numpy()))
    for ours, theirs in zip(*results, strict=True):
        np.testing.assert_allclose(ours, theirs, rtol=RTOL, atol=ATOL)


def test_dropout_of_everything_in_place_as_pytorchs():
    """p=1 zeroes the input itself with ``inplace=True`` (it returned a new tensor)."""
    for lib, functional in ((autodiff, F), (torch, torch.nn.functional)):
        x = lib.ones(2, 3, dtype=lib.float64)
        out = functional.dropout(x, p=1.0, training=True, inplace=True)
        assert out is x and not x.numpy().any(), lib.__name__
