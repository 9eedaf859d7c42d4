"""Regions: the layers of nn.functional mark their nodes with the lecture's op name."""

from __future__ import annotations

import gc
import weakref

import numpy as np
import pytest

import autodiff
import nn
import nn.functional as F  # noqa: N812 (PyTorch's name)
from autodiff.engine import topological_order
from autodiff.function import Node, _observers
from autodiff.region import made_by


def regions_of(root):
    """Each recorded node's innermost region, in backward order."""
    return [
        n.annotations.get("region") if n.annotations else None
        for n in topological_order(root.grad_fn)
        if type(n) is Node
    ]


def outermost(region):
    while region.parent is not None:
        region = region.parent
    return region


def test_conv2d_region_has_the_call_inputs_attrs_formula_and_rule():
    x = autodiff.randn(2, 3, 6, 6)
    w = autodiff.randn(4, 3, 3, 3, requires_grad=True)
    b = autodiff.randn(4, requires_grad=True)
    y = F.conv2d(x, w, b, padding=1)
    (region,) = set(regions_of(y))
    assert region.name == "conv2d"
    assert region.inputs[0] is x and region.inputs[1] is w and region.inputs[2] is b
    assert region.attrs == {"stride": 1, "padding": 1, "dilation": 1, "groups": 1}
    assert region.formula == "y = W * x + b"
    assert "dL/dx = fold(W^T g)" in region.rule and "unfold(x)" in region.rule
    assert region.output is y and region.module is None and region.parent is None
    assert y.grad_fn.annotations["region_output"] is True


@pytest.mark.parametrize(
    ("call", "name", "attrs"),
    [
        (lambda x: F.relu(x), "relu", {"inplace": False}),
        (lambda x: F.leaky_relu(x, 0.2), "leaky_relu", {"negative_slope": 0.2, "inplace": False}),
        (lambda x: F.max_pool2d(x, 2), "max_pool2d", {"kernel_size": 2, "stride": None}),
        (lambda x: F.avg_pool2d(x, 2, ceil_mode=True), "avg_pool2d", {"ceil_mode": True}),
        (lambda x: F.adaptive_avg_pool2d(x, 1), "adaptive_avg_pool2d", {"output_size": 1}),
        (lambda x: F.softmax(x, dim=1), "softmax", {"dim": 1, "dtype": None}),
        (lambda x: F.log_softmax(x, 1), "log_softmax", {"dim": 1}),
        (lambda x: F.dropout(x, 0.5, training=True), "dropout", {"p": 0.5, "training": True}),
        (lambda x: F.gelu(x, approximate="tanh"), "gelu", {"approximate": "tanh"}),
        (lambda x: F.sigmoid(x), "sigmoid", {}),
        (lambda x: F.tanh(x), "tanh", {}),
        (lambda x: F.elu(x), "elu", {"alpha": 1.0}),
    ],
)
def test_each_lecture_layer_marks_all_its_nodes(call, name, attrs):
    x = autodiff.randn(2, 3, 4, 4, requires_grad=True)
    y = call(x)
    found = {outermost(r) for r in regions_of(y)}
    assert len(found) == 1
    (region,) = found
    assert None not in regions_of(y)
    assert region.name == name and region.inputs == (x,)
    assert attrs.items() <= region.attrs.items()
    assert "_stacklevel" not in region.attrs
    assert region.formula and region.rule.startswith("dL/d")


def test_pooling_formula_names_the_window():
    x = autodiff.randn(1, 1, 4, 4, requires_grad=True)
    (region,) = set(regions_of(F.max_pool2d(x, (2, 3), stride=1)))
    assert region.formula == "y = max over each 2x3 window"
    assert "window's maximum" in region.rule


def test_losses_and_linear_and_batch_norm():
    x = autodiff.randn(5, 3, requires_grad=True)
    w, b = autodiff.randn(4, 3, requires_grad=True), autodiff.randn(4, requires_grad=True)
    z = F.linear(x, w, b)
    (lin,) = set(regions_of(z))
    assert lin.name == "linear" and lin.inputs == (x, w, b) and lin.formula == "y = x W^T + b"
    target = autodiff.tensor([0, 1, 2, 3, 0])
    loss = F.cross_entropy(z, target)
    assert loss.grad_fn.annotations["region"].name == "cross_entropy"
    assert loss.grad_fn.annotations["region"].inputs == (z, target, None)
    assert loss.grad_fn.annotations["region"].formula == "L = -log softmax(z)_y"
    assert loss.grad_fn.annotations["region"].rule == "dL/dz = (s - t) / N"
    assert F.mse_loss(z, z.detach() + 1).grad_fn.annotations["region"].name == "mse_loss"
    bn = F.batch_norm(x, None, None, training=True)
    region = bn.grad_fn.annotations["region"]
    assert region.name == "batch_norm" and region.attrs["training"] is True
    assert region.attrs["eps"] == 1e-5 and region.inputs == (x, None, None, None, None)


def test_composed_cross_entropy_holds_log_softmax_and_nll_loss():
    z = autodiff.randn(4, 3, 2, requires_grad=True)  # a spatial dim: the composed form
    loss = F.cross_entropy(z, autodiff.tensor([[0, 1], [2, 0], [1, 1], [0, 2]]))
    names = {(r.name, r.parent.name if r.parent else None) for r in regions_of(loss)}
    assert ("log_softmax", "cross_entropy") in names
    assert ("nll_loss", "cross_entropy") in names
    assert {outermost(r).name for r in regions_of(loss)} == {"cross_entropy"}


def test_no_region_and_no_observer_without_recording():
    # Compared with what was registered before: another test's objects may still be
    # alive until the garbage collector runs (this test once failed on one in CI).
    before = dict(_observers)
    x = autodiff.randn(2, 1, 4, 4, requires_grad=True)
    model = nn.models.ConvNet(4)
    with autodiff.no_grad():
        assert autodiff.region("relu", (x,)).output is None  # the shared no-op
        model(x)
        assert _observers == before, _observers
    # grad mode on, but nothing requires grad: nothing recorded, only the maker remembered
    plain = autodiff.randn(2, 3)
    with autodiff.region("relu", (plain,)) as r:
        r.output = y = plain.relu()
        assert _observers == before, _observers
    assert not r.recorded and y.grad_fn is None and made_by(y) is r
    assert made_by(plain) is None
    del y
    makers = autodiff.region.__globals__["_makers"]
    assert r.output is None and all(region is not r for _, region in makers.values())
    with autodiff.region("relu", (1.0,)) as r:  # no tensor at all: the shared no-op
        assert not isinstance(r, autodiff.Region)
    model(x)
    assert _observers == before, _observers  # only registered while a module or region runs


def test_a_layer_returning_its_constant_input_does_not_keep_it_alive():
    """Dropout in eval mode returns its input unchanged: it made nothing.  An in-place
    layer changed its input: it made the new values, from the earlier ones (which the
    layer before it made).  Remembering either must not keep the input alive (the region
    holds its constant inputs, and the remembered entry holds the region)."""
    x = autodiff.randn(2, 3)
    y = F.dropout(x, p=0.5, training=False)
    z = F.relu(autodiff.randn(2, 3), inplace=True)
    batch = autodiff.randn(2, 1, 3)
    flat = F.relu(nn.Flatten()(batch), inplace=True)
    assert y is x and made_by(x) is None
    assert made_by(z).name == "relu" and made_by(z).made_from is None
    assert made_by(flat).name == "relu" and made_by(flat).made_from.name == "flatten"
    assert made_by(flat).inputs == (flat,) and made_by(flat).made_from.inputs == (batch,)
    gone = [weakref.ref(x), weakref.ref(z), weakref.ref(batch), weakref.ref(flat)]
    del x, y, z, batch, flat
    gc.collect()
    assert [ref() for ref in gone] == [None, None, None, None]


def test_modules_name_their_ops_and_regions_without_setup():
    model = nn.models.ConvNet(8)
    loss = F.cross_entropy(model(autodiff.randn(2, 1, 8, 8)), autodiff.tensor([1, 2]))
    modules = {}
    for node in topological_order(loss.grad_fn):
        if type(node) is Node and node.annotations and "module" in node.annotations:
            call = node.annotations["module"]
            modules[call.name] = call.type_name
            region = node.annotations["region"]
            assert region.module == call.name
            assert call.root.name == "" and call.root.type_name == "ConvNet"
    assert modules == {
        "features.0": "Conv2d",
        "features.1": "ReLU",
        "features.2": "MaxPool2d",
        "features.3": "Conv2d",
        "features.4": "ReLU",
        "features.5": "MaxPool2d",
        "flatten": "Flatten",
        "classifier": "Linear",
    }
    assert loss.grad_fn.annotations["region"].module is None  # outside the model


def test_module_call_names_are_found_when_first_read():
    """Each call is named when a picture (or anyone) first reads it: by the attribute
    that holds it, by its path when an outer forward calls a module held deeper, by its
    class when nothing holds it; the same names a call-time lookup gave."""

    class Outer(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(nn.Linear(3, 3), nn.ReLU())
            self.head = nn.Linear(3, 2)

        def forward(self, x):
            x = self.body(x)
            x = self.body[1](x)  # held deeper: its path
            x = nn.Tanh()(x)  # held by none: its class
            return self.head(x)

    model = Outer()
    out = model(autodiff.randn(4, 3, requires_grad=True))
    calls = {}
    for node in topological_order(out.grad_fn):
        if type(node) is Node and node.annotations and "module" in node.annotations:
            call = node.annotations["module"]
            assert call._name is None  # nothing read it yet
            calls[id(call)] = call
    names = sorted((call.name, call.type_name) for call in calls.values())
    assert names == [
        ("Tanh", "Tanh"),
        ("body.0", "Linear"),
        ("body.1", "ReLU"),
        ("body.1", "ReLU"),
        ("head", "Linear"),
    ]
    assert {call.parent.name for call in calls.values()} <= {"", "body"}
    assert {call.root.type_name for call in calls.values()} == {"Outer"}
    region = out.grad_fn.annotations["region"]
    assert region.module == "head" and region.call.name == "head"


def test_a_module_call_made_by_hand_keeps_its_name():
    from autodiff.region import ModuleCall, current_module, module_scope

    call = ModuleCall("encoder.0", "Linear", None, None)
    with module_scope(call):
        assert current_module() is call
        y = autodiff.randn(2, requires_grad=True) * 2
    assert current_module() is None
    assert y.grad_fn.annotations["module"].name == "encoder.0"
    assert repr(call) == "<ModuleCall encoder.0: Linear>"


def test_region_output_is_weak_so_graphs_free_without_the_cycle_collector():
    gc.disable()
    try:
        x = autodiff.randn(2, 3, requires_grad=True)
        y = F.relu(F.linear(x, autodiff.randn(4, 3, requires_grad=True)))
        node = weakref.ref(y.grad_fn)
        region = y.grad_fn.annotations["region"]
        del y
        assert node() is None and region.output is None
    finally:
        gc.enable()


def test_region_is_a_public_context_for_users_layers():
    x = autodiff.tensor([-1.0, 2.0], requires_grad=True)
    with autodiff.region("relu", inputs=(x,), formula="y = max(x, 0)", rule="dL/dx = g") as r:
        y = x.clamp(min=0)
        r.output = y
    assert isinstance(r, autodiff.Region) and y.grad_fn.annotations["region"] is r
    assert r.output is y and "relu" in repr(r)
    np.testing.assert_array_equal(y.detach().numpy(), [0.0, 2.0])


def test_regions_are_per_thread():
    import threading

    x = autodiff.randn(3, requires_grad=True)
    inside, outside = threading.Event(), threading.Event()
    found = {}

    def other_thread():
        inside.wait()  # the main thread is inside a region now
        found["node"] = (x * 2).grad_fn
        outside.set()

    worker = threading.Thread(target=other_thread)
    worker.start()
    with autodiff.region("relu", (x,)) as r:
        inside.set()
        outside.wait()
        r.output = y = x.relu()
    worker.join()
    assert y.grad_fn.annotations["region"] is r
    assert found["node"].annotations is None  # another thread's op is not in this region
    assert not _observers


def test_flatten_of_the_input_batch_remembers_its_maker():
    model = nn.models.NeuralNetwork(in_features=16)
    images = autodiff.randn(2, 1, 4, 4)
    flat = model.flatten(images)
    maker = made_by(flat)
    assert maker.name == "flatten" and maker.inputs == (images,) and maker.module is None
    with autodiff.no_grad():
        assert made_by(model.flatten(images)) is None  # nothing under no_grad


def test_a_layers_computed_input_is_not_kept_alive_by_its_region():
    x = autodiff.randn(4, 3, requires_grad=True)
    h = F.linear(x, autodiff.randn(5, 3, requires_grad=True))
    loss = F.relu(h).sum()
    region = next(r for r in regions_of(loss) if r is not None and r.name == "relu")
    assert region.inputs[0] is h and region.input_nodes[0] is h.grad_fn
    node, kept = h.grad_fn, weakref.ref(h)
    loss.backward()  # frees what the ops saved
    del h
    assert kept() is None  # the region held the activation weakly
    assert region.inputs == (None,) and region.input_nodes == (node,)
    assert region.input_nodes[0].annotations["region"].name == "linear"
    assert loss.grad_fn.annotations is None  # sum(): outside every region


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_softmax_as_a_tensor_method_is_the_same_region_as_nn_functional(name):
    x = autodiff.randn(2, 3, requires_grad=True)
    by_method = getattr(x, name)(1).grad_fn.annotations["region"]
    by_function = getattr(F, name)(x, dim=1).grad_fn.annotations["region"]
    for region in (by_method, by_function):
        assert region.name == name and region.inputs[0] is x
        assert region.attrs == {"dim": 1, "dtype": None}
    assert (by_method.formula, by_method.rule) == (by_function.formula, by_function.rule)
