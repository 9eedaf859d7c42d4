"""``nn.Module`` mechanics, containers, layers' bad-input errors, hooks, modes,
dtype casts and ``state_dict``/``load_state_dict``.  Runs without PyTorch."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest

import autodiff
import nn
from autodiff.testing import assert_gradients_match
from nn.models import NeuralNetwork  # the lecture's model

LECTURE_REPR = """NeuralNetwork(
  (flatten): Flatten(start_dim=1, end_dim=-1)
  (linear_relu_stack): Sequential(
    (0): Linear(in_features=784, out_features=512, bias=True)
    (1): ReLU()
    (2): Linear(in_features=512, out_features=512, bias=True)
    (3): ReLU()
    (4): Linear(in_features=512, out_features=10, bias=True)
  )
)"""


def test_lecture_model_repr_keys_and_parameter_count():
    model = NeuralNetwork()
    assert repr(model) == LECTURE_REPR
    assert list(model.state_dict()) == [
        f"linear_relu_stack.{i}.{p}" for i in (0, 2, 4) for p in ("weight", "bias")
    ]
    assert sum(p.numel() for p in model.parameters()) == 669_706
    assert model.state_dict()["linear_relu_stack.0.weight"].shape == (512, 784)
    logits = model(autodiff.rand(3, 1, 28, 28))
    assert logits.shape == (3, 10) and logits.dtype == np.float32


def test_lecture_training_loop_reduces_the_loss():
    model = NeuralNetwork()
    rng = np.random.default_rng(0)
    x = autodiff.tensor(rng.random((32, 1, 28, 28), dtype=np.float32))
    y = autodiff.tensor(rng.integers(0, 10, 32))
    loss_fn = nn.CrossEntropyLoss()
    optimizer = nn.optim.SGD(model.parameters(), lr=0.1)
    losses = []
    for _ in range(5):
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
    assert all(p.grad is None for p in model.parameters())


# -- registration -------------------------------------------------------------------


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 2)
        self.scale = nn.Parameter(autodiff.ones(1))
        self.register_buffer("steps", autodiff.zeros(1))
        self.register_buffer("cache", autodiff.zeros(2), persistent=False)
        self.plain = 5

    def forward(self, x):
        return self.fc(x) * self.scale


def test_registration_by_attribute_assignment():
    net = Net()
    assert [n for n, _ in net.named_parameters()] == ["scale", "fc.weight", "fc.bias"]
    assert [n for n, _ in net.named_buffers()] == ["steps", "cache"]
    assert [n for n, _ in net.named_children()] == ["fc"]
    assert [n for n, _ in net.named_modules()] == ["", "fc"]
    assert list(net.state_dict()) == ["scale", "steps", "fc.weight", "fc.bias"]
    assert net.plain == 5 and "plain" not in net._parameters
    assert list(net.children()) == [net.fc] and list(net.modules()) == [net, net.fc]
    net.fc = nn.Identity()  # replacing a child
    assert [n for n, _ in net.named_parameters()] == ["scale"]
    del net.scale
    assert list(net.parameters()) == []


def test_unknown_attribute_is_an_attribute_error():
    net = Net()
    with pytest.raises(AttributeError, match="'Net' object has no attribute 'fcc'"):
        _ = net.fcc
    assert not hasattr(net, "weight")


def test_assignment_before_super_init_is_a_clear_error():
    class Broken(nn.Module):
        def __init__(self):
            self.fc = nn.Linear(1, 1)

    with pytest.raises(AttributeError, match=r"before Broken.__init__\(\) called super"):
        Broken()


def test_wrong_types_for_registered_names():
    net = Net()
    with pytest.raises(TypeError, match=r"nn\.Parameter or None expected"):
        net.scale = autodiff.ones(1)
    with pytest.raises(TypeError, match=r"nn\.Module or None expected"):
        net.fc = 3
    with pytest.raises(KeyError, match="already exists"):
        net.register_buffer("plain", autodiff.zeros(1))
    with pytest.raises(KeyError, match="contain"):
        net.register_parameter("a.b", None)


def test_shared_parameters_are_listed_once():
    shared = nn.Linear(2, 2)
    seq = nn.Sequential(shared, nn.ReLU(), shared)
    assert len(list(seq.parameters())) == 2
    assert [n for n, _ in seq.named_modules()] == ["", "0", "1"]


def test_parameter_is_a_tensor_requiring_grad_with_pytorch_repr():
    p = nn.Parameter(autodiff.tensor([1.0, 2.0]))
    assert isinstance(p, autodiff.Tensor) and p.requires_grad and p.is_leaf
    assert repr(p) == "Parameter containing:\ntensor([1., 2.], requires_grad=True)"
    assert not nn.Parameter(autodiff.zeros(1), requires_grad=False).requires_grad
    q = copy.deepcopy(p)
    assert isinstance(q, nn.Parameter) and q.data is not p.data
    np.testing.assert_array_equal(q.data, p.data)


# -- containers -------------------------------------------------------------------------


def test_sequential_is_indexable_iterable_and_appendable():
    seq = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    assert len(seq) == 3 and isinstance(seq[0], nn.Linear) and isinstance(seq[-1], nn.Linear)
    assert [type(m).__name__ for m in seq] == ["Linear", "ReLU", "Linear"]
    head = seq[:2]
    assert isinstance(head, nn.Sequential) and len(head) == 2 and head[0] is seq[0]
    seq.append(nn.Sigmoid())
    assert list(seq.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias"]
    x = autodiff.randn(4, 2)
    expected = seq[3](seq[2](seq[1](seq[0](x))))
    np.testing.assert_array_equal(seq(x).data, expected.data)
    del seq[1]
    assert [n for n, _ in seq.named_children()] == ["0", "1", "2"]
    with pytest.raises(IndexError, match="out of range"):
        seq[10]
    from collections import OrderedDict

    named = nn.Sequential(OrderedDict([("conv", nn.Conv2d(1, 2, 3)), ("act", nn.ReLU())]))
    assert list(named.state_dict()) == ["conv.weight", "conv.bias"]
    assert named.conv is named[0]


def test_module_list_and_dict_register_their_modules():
    layers = nn.ModuleList([nn.Linear(2, 2) for _ in range(3)])
    layers.append(nn.Linear(2, 1))
    assert len(layers) == 4 and len(list(layers.parameters())) == 8
    assert "(0-2): 3 x Linear(in_features=2, out_features=2, bias=True)" in repr(layers)
    heads = nn.ModuleDict({"a": nn.Linear(2, 1), "b": nn.Linear(2, 3)})
    assert list(heads.keys()) == ["a", "b"] and "a" in heads
    assert list(heads.state_dict()) == ["a.weight", "a.bias", "b.weight", "b.bias"]


# -- modes, zero_grad, requires_grad_, apply, to ------------------------------------------


def test_train_eval_propagate_to_children():
    model = nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.5))
    assert model.training and model[1].training
    assert model.eval() is model
    assert not model.training and not model[1].training
    x = autodiff.ones(3, 2)
    np.testing.assert_array_equal(model(x).data, model[0](x).data)  # no dropout in eval
    model.train()
    assert model[1].training


def test_zero_grad_sets_to_none_by_default_or_zeros():
    model = nn.Linear(2, 1)
    model(autodiff.ones(1, 2)).sum().backward()
    model.zero_grad(set_to_none=False)
    np.testing.assert_array_equal(model.weight.grad.data, 0)
    model.zero_grad()
    assert model.weight.grad is None


def test_requires_grad_freezes_layers():
    model = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 1))
    model[0].requires_grad_(False)
    model(autodiff.ones(1, 2)).sum().backward()
    assert model[0].weight.grad is None and model[1].weight.grad is not None


def test_apply_visits_children_first_and_can_reinitialise():
    model = nn.Sequential(nn.Linear(2, 2), nn.Sequential(nn.Linear(2, 2)))
    visited = []
    model.apply(lambda m: visited.append(type(m).__name__))
    assert visited == ["Linear", "Linear", "Sequential", "Sequential"]

    def init_weights(m):
        if isinstance(m, nn.Linear):
            nn.init.zeros_(m.weight)

    model.apply(init_weights)
    assert all(not m.weight.data.any() for m in model.modules() if isinstance(m, nn.Linear))


def test_double_float_and_to_keep_parameter_identity():
    model = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
    weight = model[0].weight
    optimizer = nn.optim.SGD(model.parameters(), lr=0.1)
    assert model.double() is model
    assert model[0].weight is weight and weight.dtype == np.float64
    assert model[1].running_mean.dtype == np.float64
    assert model[1].num_batches_tracked.dtype == np.int64  # integer buffers keep their dtype
    model(autodiff.ones(3, 2, dtype=autodiff.float64)).sum().backward()
    optimizer.step()  # the optimizer still holds the same parameters
    model.to(autodiff.float32)
    assert weight.dtype == np.float32
    assert model.to("cpu") is model
    with pytest.raises(RuntimeError, match="CPU only"):
        model.to("cuda")
    with pytest.raises(TypeError, match="floating point"):
        model.to(autodiff.int64)


# -- state dicts ------------------------------------------------------------------------


def test_state_dict_shares_memory_and_is_detached():
    model = nn.Linear(2, 1)
    sd = model.state_dict()
    assert not sd["weight"].requires_grad
    assert np.shares_memory(sd["weight"].data, model.weight.data)
    keep = model.state_dict(keep_vars=True)
    assert keep["weight"] is model.weight


def test_load_state_dict_accepts_numpy_arrays_and_tensors_and_casts():
    a, b = NeuralNetwork(), NeuralNetwork()
    as_numpy = {k: v.data.astype(np.float64) for k, v in a.state_dict().items()}
    result = b.load_state_dict(as_numpy)
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert repr(result) == "<All keys matched successfully>"
    for (k, x), y in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        np.testing.assert_array_equal(x.data, y.data, err_msg=k)
        assert y.dtype == np.float32
    b.load_state_dict(a.state_dict())
    x = autodiff.rand(2, 1, 28, 28)
    np.testing.assert_array_equal(a(x).data, b(x).data)


def test_load_state_dict_reports_every_problem_by_name_and_changes_nothing():
    model = NeuralNetwork()
    before = {k: v.data.copy() for k, v in model.state_dict().items()}
    bad = {k: np.zeros(v.shape, np.float32) for k, v in model.state_dict().items()}
    del bad["linear_relu_stack.4.bias"]
    bad["linear_relu_stack.9.weight"] = np.zeros(3)
    bad["linear_relu_stack.2.weight"] = np.zeros((512, 100))
    with pytest.raises(RuntimeError) as info:
        model.load_state_dict(bad)
    message = str(info.value)
    assert "Error(s) in loading state_dict for NeuralNetwork" in message
    assert 'Missing key(s) in state_dict: "linear_relu_stack.4.bias"' in message
    assert 'Unexpected key(s) in state_dict: "linear_relu_stack.9.weight"' in message
    assert (
        "size mismatch for linear_relu_stack.2.weight: copying a param with shape (512, 100) "
        "from checkpoint, the shape in current model is (512, 512)" in message
    )
    for k, v in model.state_dict().items():  # the zeros for the good keys were NOT copied
        np.testing.assert_array_equal(v.data, before[k], err_msg=k)


def test_load_state_dict_non_strict_reports_keys_but_still_checks_shapes():
    model = nn.Sequential(nn.Linear(2, 3), nn.Linear(3, 1))
    sd = {"0.weight": np.ones((3, 2)), "extra": np.ones(1)}
    result = model.load_state_dict(sd, strict=False)
    assert result.missing_keys == ["0.bias", "1.weight", "1.bias"]
    assert result.unexpected_keys == ["extra"]
    np.testing.assert_array_equal(model[0].weight.data, 1.0)
    with pytest.raises(RuntimeError, match=r"size mismatch for 0\.weight"):
        model.load_state_dict({"0.weight": np.ones((2, 2))}, strict=False)
    with pytest.raises(TypeError, match=r"'0\.weight' is a str"):
        model.load_state_dict({"0.weight": "x"}, strict=False)


def test_batch_norm_buffers_are_in_the_state_dict():
    bn = nn.BatchNorm2d(3)
    assert list(bn.state_dict()) == [
        "weight",
        "bias",
        "running_mean",
        "running_var",
        "num_batches_tracked",
    ]
    assert bn.state_dict()["num_batches_tracked"].dtype == np.int64


# -- layers: behaviour and bad input -------------------------------------------------------


def test_linear_errors_name_the_layer_and_shapes():
    layer = nn.Linear(784, 10)
    with pytest.raises(RuntimeError, match=r"Linear\(in_features=784.*784 features.*\(2, 100\)"):
        layer(autodiff.randn(2, 100))
    with pytest.raises(RuntimeError, match=r"\(2, 1, 28, 28\).*nn.Flatten\(\)"):
        layer(autodiff.randn(2, 1, 28, 28))


def test_conv2d_errors_name_the_layer_and_shapes():
    conv = nn.Conv2d(3, 8, 5)
    with pytest.raises(
        RuntimeError,
        match=r"Conv2d\(3, 8, kernel_size=\(5, 5\).*4-D input.*\(3, 28, 28\).*unsqueeze",
    ):
        conv(autodiff.randn(3, 28, 28))
    with pytest.raises(RuntimeError, match=r"expected input with 3 channels.*\(2, 1, 28, 28\)"):
        conv(autodiff.randn(2, 1, 28, 28))
    with pytest.raises(
        RuntimeError, match=r"kernel size \(5, 5\).*larger than the padded input of size 4x4"
    ):
        conv(autodiff.randn(1, 3, 4, 4))
    with pytest.raises(ValueError, match="divisible by groups"):
        nn.Conv2d(3, 4, 3, groups=2)
    with pytest.raises(ValueError, match="strided"):
        nn.Conv2d(3, 4, 3, stride=2, padding="same")


def test_batch_norm_errors_and_running_statistics():
    with pytest.raises(ValueError, match=r"BatchNorm2d\(3\): expected 4D input"):
        nn.BatchNorm2d(3)(autodiff.randn(2, 3))
    with pytest.raises(RuntimeError, match=r"3 channels.*\(2, 4, 5, 5\)"):
        nn.BatchNorm2d(3)(autodiff.randn(2, 4, 5, 5))
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        nn.BatchNorm1d(3)(autodiff.randn(1, 3))
    bn = nn.BatchNorm1d(2, momentum=None)  # cumulative average
    rng = np.random.default_rng(0)
    batches = [rng.standard_normal((8, 2)) + i for i in range(3)]
    for b in batches:
        bn(autodiff.tensor(b, dtype=autodiff.float32))
    np.testing.assert_allclose(
        bn.running_mean.data, np.mean([b.mean(0) for b in batches], 0), rtol=1e-5
    )
    np.testing.assert_allclose(
        bn.running_var.data, np.mean([b.var(0, ddof=1) for b in batches], 0), rtol=1e-5
    )
    assert int(bn.num_batches_tracked.item()) == 3
    bn.eval()
    x = autodiff.tensor(rng.standard_normal((4, 2)), dtype=autodiff.float32)
    expected = (x.data - bn.running_mean.data) / np.sqrt(bn.running_var.data + 1e-5)
    np.testing.assert_allclose(bn(x).data, expected, rtol=1e-5)


def check_module_gradients(module, x, seed=0, eps=1e-6):
    """Input gradient (toolkit) and every parameter's .grad against central differences
    of <v, module(x)> with a random upstream v, perturbing each parameter in place."""
    module.double()
    x = autodiff.tensor(x, dtype=autodiff.float64, requires_grad=True)
    assert_gradients_match(module, x, seed=seed)
    v = np.random.default_rng(seed).standard_normal(module(x).shape)
    module.zero_grad()
    module(x).backward(autodiff.tensor(v))
    with autodiff.no_grad():
        for name, p in module.named_parameters():
            numeric = np.zeros_like(p.data)
            for index in np.ndindex(p.shape):
                old = p.data[index]
                p.data[index] = old + eps
                plus = float((module(x).data * v).sum())
                p.data[index] = old - eps
                minus = float((module(x).data * v).sum())
                p.data[index] = old
                numeric[index] = (plus - minus) / (2 * eps)
            np.testing.assert_allclose(p.grad.data, numeric, rtol=1e-5, atol=1e-7, err_msg=name)


@pytest.mark.parametrize(
    ("make", "shape"),
    [
        (lambda: nn.Linear(3, 2), (4, 3)),
        (lambda: nn.Conv2d(2, 4, 3, stride=2, padding=1, groups=2), (2, 2, 5, 5)),
        (lambda: nn.Conv2d(1, 2, (2, 3), dilation=(2, 1), padding="same"), (1, 1, 5, 4)),
        (lambda: nn.BatchNorm2d(2), (3, 2, 2, 2)),
        (lambda: nn.BatchNorm1d(3), (5, 3)),
        (
            lambda: nn.Sequential(
                nn.Conv2d(1, 2, 3), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(8, 2)
            ),
            (2, 1, 6, 6),
        ),
        (lambda: nn.Sequential(nn.AvgPool2d(2), nn.Tanh(), nn.AdaptiveAvgPool2d(1)), (2, 2, 4, 5)),
    ],
)
def test_module_input_and_parameter_gradients(make, shape):
    x = np.random.default_rng(1).permutation(int(np.prod(shape))).reshape(shape) / 10.0
    check_module_gradients(make(), x)


def test_default_init_follows_pytorch_bounds():
    layer = nn.Linear(400, 300)
    bound = 1 / math.sqrt(400)
    assert np.abs(layer.weight.data).max() <= bound and np.abs(layer.bias.data).max() <= bound
    assert layer.weight.data.std() == pytest.approx(bound / math.sqrt(3), rel=0.05)
    conv = nn.Conv2d(4, 8, 3)
    bound = 1 / math.sqrt(4 * 9)
    assert np.abs(conv.weight.data).max() <= bound
    assert np.abs(conv.weight.data).max() > 0.9 * bound


def test_init_functions_follow_their_formulas():
    w = nn.Parameter(autodiff.empty(200, 100))
    nn.init.xavier_uniform_(w, gain=2.0)
    a = 2.0 * math.sqrt(6 / 300)
    assert np.abs(w.data).max() <= a and np.abs(w.data).max() > 0.95 * a
    nn.init.xavier_normal_(w)
    assert w.data.std() == pytest.approx(math.sqrt(2 / 300), rel=0.05)
    nn.init.kaiming_normal_(w, mode="fan_out", nonlinearity="relu")
    assert w.data.std() == pytest.approx(math.sqrt(2) / math.sqrt(200), rel=0.05)
    nn.init.kaiming_uniform_(w, nonlinearity="relu")
    bound = math.sqrt(2) * math.sqrt(3 / 100)
    assert np.abs(w.data).max() <= bound and np.abs(w.data).max() > 0.95 * bound
    nn.init.constant_(w, 0.5)
    assert (w.data == 0.5).all() and w.requires_grad and w.grad_fn is None
    nn.init.normal_(w, 1.0, 0.1)
    assert w.data.mean() == pytest.approx(1.0, abs=0.01)
    nn.init.ones_(w)
    assert (w.data == 1).all()
    with pytest.raises(ValueError, match="fewer than 2 dimensions"):
        nn.init.xavier_uniform_(nn.Parameter(autodiff.empty(3)))
    with pytest.raises(ValueError, match="Unsupported nonlinearity"):
        nn.init.calculate_gain("swish")


def test_embedding_and_dropout_modules():
    emb = nn.Embedding(10, 4, padding_idx=0)
    assert emb(autodiff.tensor([[1, 0]])).shape == (1, 2, 4)
    np.testing.assert_array_equal(emb.weight.data[0], 0.0)
    drop = nn.Dropout(0.25)
    y = drop(autodiff.ones(100, 100))
    assert abs((y.data == 0).mean() - 0.25) < 0.02


def test_flatten_unflatten_identity():
    x = autodiff.randn(2, 3, 4, 5)
    assert nn.Flatten()(x).shape == (2, 60)
    assert nn.Flatten(0, 1)(x).shape == (6, 4, 5)
    assert nn.Unflatten(1, (3, 20))(nn.Flatten()(x)).shape == (2, 3, 20)
    assert nn.Identity(54, unused="x")(x) is x


def test_losses_as_modules():
    logits, y = autodiff.randn(4, 3), autodiff.tensor([0, 2, 1, 1])
    expected = nn.functional.cross_entropy(logits, y, reduction="sum")
    assert nn.CrossEntropyLoss(reduction="sum")(logits, y).item() == pytest.approx(expected.item())
    weighted = nn.CrossEntropyLoss(weight=autodiff.tensor([1.0, 2.0, 3.0]))
    assert "weight" in weighted.state_dict()  # a buffer, as in PyTorch
    assert nn.MSELoss()(autodiff.ones(2), autodiff.zeros(2)).item() == 1.0
    assert nn.L1Loss(reduction="sum")(autodiff.ones(2), autodiff.zeros(2)).item() == 2.0


# -- hooks -----------------------------------------------------------------------------------


def test_forward_hooks_see_and_may_replace_inputs_and_outputs():
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    shapes = []
    handles = [
        m.register_forward_hook(lambda m, args, out: shapes.append(out.shape)) for m in model
    ]
    model(autodiff.randn(5, 3))
    assert shapes == [(5, 4), (5, 4), (5, 2)]
    for h in handles:
        h.remove()
    model(autodiff.randn(5, 3))
    assert len(shapes) == 3
    handle = model[2].register_forward_hook(lambda m, args, out: out * 0)
    assert not model(autodiff.randn(5, 3)).data.any()
    handle.remove()
    pre = model.register_forward_pre_hook(lambda m, args: (args[0] * 0,))
    np.testing.assert_allclose(model(autodiff.randn(5, 3)).data, model(autodiff.zeros(5, 3)).data)
    pre.remove()


def test_full_backward_hook_gets_grad_input_and_grad_output():
    layer = nn.Linear(3, 2).double()
    seen = {}

    def hook(module, grad_input, grad_output):
        seen["module"] = module
        seen["grad_input"] = grad_input
        seen["grad_output"] = grad_output

    handle = layer.register_full_backward_hook(hook)
    x = autodiff.randn(4, 3, dtype=autodiff.float64, requires_grad=True)
    upstream = autodiff.randn(4, 2, dtype=autodiff.float64)
    layer(x).backward(upstream)
    assert seen["module"] is layer
    np.testing.assert_allclose(seen["grad_output"][0].data, upstream.data)
    np.testing.assert_allclose(seen["grad_input"][0].data, upstream.data @ layer.weight.data)
    np.testing.assert_allclose(x.grad.data, upstream.data @ layer.weight.data)
    handle.remove()
    seen.clear()
    layer(x).backward(upstream)
    assert not seen


def test_full_backward_hook_can_replace_the_input_gradient_and_fires_without_input_grad():
    layer = nn.Linear(3, 2)
    layer.register_full_backward_hook(lambda m, gi, go: (gi[0] * 0,))
    x = autodiff.randn(4, 3, requires_grad=True)
    layer(x).sum().backward()
    assert not x.grad.data.any()
    assert layer.weight.grad.data.any()  # parameter gradients are untouched
    calls = []
    other = nn.Linear(3, 2)
    other.register_full_backward_hook(lambda m, gi, go: calls.append((gi, go[0].shape)))
    other(autodiff.randn(4, 3)).sum().backward()
    assert calls == [((None,), (4, 2))]


def test_module_without_forward_says_so():
    class Empty(nn.Module):
        pass

    with pytest.raises(
        NotImplementedError, match=r'Module \[Empty\] is missing the required "forward"'
    ):
        Empty()(1)


def test_full_backward_pre_hook_can_scale_the_output_gradient():
    layer = nn.Linear(3, 2)
    seen = []
    layer.register_full_backward_pre_hook(lambda m, grad_output: (grad_output[0] * 2,))
    layer.register_full_backward_hook(lambda m, gi, go: seen.append(go[0].data.copy()))
    x = autodiff.randn(4, 3, requires_grad=True)
    layer(x).sum().backward()
    np.testing.assert_allclose(seen[0], 2.0)  # the backward hook sees the replaced gradient
    np.testing.assert_allclose(x.grad.data, 2 * np.ones((4, 2)) @ layer.weight.data, rtol=1e-6)
    np.testing.assert_allclose(layer.bias.grad.data, [8.0, 8.0])


def test_forward_hooks_with_kwargs():
    class Scale(nn.Module):
        def forward(self, x, factor=1.0):
            return x * factor

    module = Scale()
    module.register_forward_pre_hook(
        lambda m, args, kwargs: (args, {"factor": 3.0}), with_kwargs=True
    )
    calls = []
    module.register_forward_hook(
        lambda m, args, kwargs, out: calls.append(kwargs), with_kwargs=True
    )
    assert module(autodiff.ones(1)).item() == 3.0
    assert calls == [{"factor": 3.0}]
