"""Pictures at the lecture's level, checked on rendered output (real dot, real Chromium).

For the lecture's MLP and small CNN (nn.models): the lecture-level graph names no
plumbing op, every layer appears once per use with its formula, the input batch
is a constant node, and modules cluster with ``params=model`` alone; the CNN's
stepper page opens on the root and steps through lecture-level ops.
"""

from __future__ import annotations

import itertools
import re
import shutil
import struct
import time
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from _chromium import Browser, find_chromium

import autodiff
import nn
import nn.functional as F  # noqa: N812 (PyTorch's name)
import visualize

needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is missing")

# Names of recorded primitives that are plumbing, not the lecture's ops.
PLUMBING = [
    "Contiguous",
    "Reshape",
    "Permute",
    "Transpose",
    "Im2col",
    "GatherTaps",
    "ScatterTaps",
    "WindowSum",
    "Windows2d",
    "Pad",
    "MatMul",
    "Gather",
    "Expand",
    "Unsqueeze",
    "Squeeze",
    "CrossEntropy<",  # the fused primitive's class name, as a label would show it
    "Backward",
]

# The small CNN's layers in the order back-propagation reaches them.
CNN_BACKWARD = [
    "cross_entropy",
    "linear",
    "flatten",
    "max_pool2d",
    "relu",
    "conv2d",
    "max_pool2d",
    "relu",
    "conv2d",
]

FORMULAS = {
    "conv2d": "y = W * x + b",
    "relu": "y = max(x, 0)",
    "max_pool2d": "y = max over each 2x2 window",
    "flatten": "y = x.reshape(N, -1)",
    "linear": "y = x W^T + b",
    "cross_entropy": "L = -log softmax(z)_y",
}


def _step(model_name, batch=4, input_grad=False):
    autodiff.manual_seed(0)
    model = nn.models.build_model(model_name, 8)
    rng = np.random.default_rng(0)
    x = autodiff.tensor(rng.random((batch, 1, 8, 8), dtype=np.float32))
    if input_grad:
        x.requires_grad_(True)
        x.name = "x"
    y = autodiff.tensor(rng.integers(0, 10, size=batch))
    loss = F.cross_entropy(model(x), y)
    return model, x, loss


def _op_titles(svg: bytes) -> list[str]:
    """The first line (the bold name) of every op node of a rendered SVG."""
    root = ET.fromstring(svg)
    names = []
    for group in root.iter("{http://www.w3.org/2000/svg}g"):
        if group.get("class") == "node" and (group.get("id") or "").startswith("op"):
            texts = [t.text for t in group.iter("{http://www.w3.org/2000/svg}text") if t.text]
            names.append(texts[0])
    return names


def _svg_text(svg: bytes) -> str:
    texts = ET.fromstring(svg).iter("{http://www.w3.org/2000/svg}text")
    return " ".join(t.text.replace("\xa0", " ") for t in texts if t.text)


USES = {
    "mlp": {"flatten": 1, "linear": 3, "relu": 2, "cross_entropy": 1},
    "cnn": {
        "conv2d": 2,
        "relu": 2,
        "max_pool2d": 2,
        "flatten": 1,
        "linear": 1,
        "cross_entropy": 1,
    },
}


USES_FIRST = {"mlp": "flatten", "cnn": "conv2d"}  # the layer the input batch enters


@needs_dot
@pytest.mark.parametrize("model_name", ["mlp", "cnn"])
def test_lecture_level_graph_of_the_lecture_models(model_name):
    model, _x, loss = _step(model_name)
    dot = visualize.draw_graph(loss, params=model)  # lecture detail is the default
    svg = dot.pipe(format="svg")
    names = _op_titles(svg)
    # every lecture layer once per use, and nothing else
    assert sorted(names) == sorted(n for n, k in USES[model_name].items() for _ in range(k))
    text = _svg_text(svg)
    for name in USES[model_name]:
        assert FORMULAS[name] in text
    for word in PLUMBING:
        assert word not in dot.source, word
    assert dot.source.count("int64") == 1  # the targets; no index tables
    # the input batch is a constant node with its shape
    graph = visualize.trace_graph(loss, params=model)
    (batch,) = [t for t in graph.tensors if t.kind == "constant" and t.shape == (4, 1, 8, 8)]
    assert "(4, 1, 8, 8)  float32" in text and batch.label == "input"
    first = [op for op in graph.ops if op.name == USES_FIRST[model_name]][-1]  # backward order
    assert graph.inputs_of(first.id)[0] == batch.id  # the batch enters the first layer
    (target,) = [t for t in graph.tensors if t.kind == "constant" and t.shape == (4,)]
    assert target.label == "target"
    # modules cluster with params=model alone (no track_modules)
    clusters = re.findall(r'label="([^"]+)" style="rounded,dashed"', dot.source)
    # the model that computed the loss names its parameters and clusters with no params too
    plain = visualize.trace_graph(loss)
    assert {t.label for t in plain.tensors if t.kind == "parameter"} == set(model.state_dict())
    assert set(plain.modules) == set(graph.modules)
    expected = ["linear_relu_stack.0: Linear"] if model_name == "mlp" else []
    expected += ["features.0: Conv2d", "classifier: Linear"] if model_name == "cnn" else []
    assert set(expected) <= set(clusters)


@needs_dot
def test_primitives_detail_draws_every_recorded_op_and_expand_opens_one_layer():
    model, _x, loss = _step("cnn")
    primitives = visualize.draw_graph(loss, params=model, detail="primitives").source
    recorded = {op.name for op in visualize.trace_graph(loss, detail="primitives").ops}
    assert "Conv2d" in recorded and "WindowMax" in recorded and "Reshape" in recorded
    for name in recorded:  # the kernels' own primitives (their names change with the kernels)
        assert f"<B>{name}</B>" in primitives
    opened = visualize.trace_graph(loss, params=model, expand=["conv2d"])
    names = [op.name for op in opened.ops]
    assert names.count("Conv2d") == 2 and "conv2d" not in names and "max_pool2d" in names
    one = visualize.trace_graph(loss, params=model)
    second_conv = next(op.id for op in one.ops if op.name == "conv2d")
    half = [op.name for op in visualize.trace_graph(loss, params=model, expand=second_conv).ops]
    assert half.count("conv2d") == 1 and half.count("Conv2d") == 1
    with pytest.raises(ValueError, match="detail"):
        visualize.draw_graph(loss, detail="everything")
    with pytest.raises(ValueError, match=r"'conv' names no layer .*conv2d"):
        visualize.draw_graph(loss, expand="conv")


def test_show_rules_shows_the_local_rule_and_names_the_inputs():
    model, _x, loss = _step("cnn")
    source = visualize.draw_graph(loss, params=model, show_rules=True).source
    assert "dL/dx = fold(W^T g)" in source and "dL/dz = (s - t) / N" in source
    assert "window&#x27;s maximum" in source or "window's maximum" in source
    assert 'label=W fontcolor="#444444"' in source.replace("label=W ", "label=W ")


def test_constant_inputs_are_drawn_without_keep_values():
    x = autodiff.tensor([[1.0, 2.0]])
    x.name = "X"
    w = autodiff.tensor([[0.5, -1.0]], requires_grad=True)
    b = autodiff.tensor([0.1], requires_grad=True)
    y = x @ w.T + b
    graph = visualize.trace_graph(y)
    (const,) = [t for t in graph.tensors if t.kind == "constant"]
    assert const.label == "X" and const.shape == (1, 2) and const.value is None
    assert [graph.node(c).name for c in graph.consumers_of(const.id)] == ["MatMul"]
    with visualize.keep_values():
        y = x @ w.T + b
    (const,) = [t for t in visualize.trace_graph(y).tensors if t.kind == "constant"]
    assert const.value == "[[1, 2]]"  # values when kept


def _picture_of(source: str):
    """(edges between bold labels, module cluster labels) of a draw_graph source."""
    names = dict(re.findall(r"^\s*(\w+) \[label=<.*?<B>([^<]+)</B>", source, re.M))
    edges = sorted(
        (names.get(a, "tensor"), names.get(b, "tensor"))
        for a, b in re.findall(r"^\s*(\w+) -> (\w+)", source, re.M)
    )
    clusters = sorted(re.findall(r'fontsize=11 label="?([^"\n]+?)"? style', source))
    return edges, clusters


@pytest.mark.parametrize("first", [[], ["Flatten"]])
def test_an_in_place_layer_on_the_input_batch_is_drawn_like_its_out_of_place_twin(first):
    """relu(inplace=True) on the input batch records nothing (no input needs a gradient):
    the picture still draws it, with its module, between the earlier values and the new."""
    pictures = []
    for inplace in (False, True):
        autodiff.manual_seed(0)
        layers = [getattr(nn, name)() for name in first]
        model = nn.Sequential(*layers, nn.ReLU(inplace=inplace), nn.Linear(4, 3))
        loss = F.cross_entropy(model(autodiff.randn(2, 4)), autodiff.tensor([0, 2]))
        pictures.append(_picture_of(visualize.draw_graph(loss).source))
    assert pictures[0] == pictures[1]
    edges, clusters = pictures[1]
    chain = ["input", *(name.lower() for name in first), "relu"]
    for earlier, layer in itertools.pairwise(chain):
        assert (earlier if earlier == "input" else "constant", layer) in edges
    assert ("relu", "constant") in edges and ("constant", "linear") in edges
    assert f"{len(first)}: ReLU" in clusters


def test_trace_backward_at_the_lecture_level_with_values_and_modules():
    model, _x, loss = _step("cnn", batch=2, input_grad=True)
    trace = visualize.trace_backward(loss, params=model)
    ops = [s.op for s in trace.steps if not s.is_accumulate]
    assert ops == CNN_BACKWARD
    first_conv = [s for s in trace.steps if s.op == "conv2d"][-1]
    assert first_conv.module == "features.0" and first_conv.input_names == ["x", "W", "b"]
    assert first_conv.grad_inputs[0] == (2, 1, 8, 8)  # dL/dx of the input images ("fold")
    assert trace.grads["x"].shape == (2, 1, 8, 8)
    primitive = visualize.trace_backward(loss, params=model, detail="primitives")
    np.testing.assert_allclose(trace.grads["x"], primitive.grads["x"], rtol=1e-6)
    text = str(trace)
    assert "module" in text.splitlines()[0] and "features.0" in text
    # a tiny layer shows its local Jacobian's values
    z = autodiff.tensor([[1.0, -2.0, 3.0]], requires_grad=True)
    small = visualize.trace_backward(F.relu(z).sum())
    relu = next(s for s in small.steps if s.op == "relu")
    assert relu.jacobians == ["[[1, 0, 0], [0, 0, 0], [0, 0, 1]]"]


@needs_dot
def test_deep_mlp_is_quick_collapsed_top_to_bottom_and_fits_a_page():
    layers = [nn.Flatten(), nn.Linear(64, 32)]
    for _ in range(19):
        layers += [nn.ReLU(), nn.Linear(32, 32)]
    layers += [nn.ReLU(), nn.Linear(32, 10)]
    model = nn.Sequential(*layers)
    x = autodiff.randn(4, 1, 8, 8)
    loss = F.cross_entropy(model(x), autodiff.tensor([0, 1, 2, 3]))
    start = time.perf_counter()
    dot = visualize.draw_graph(loss, params=model)
    png = dot.pipe(format="png")
    elapsed = time.perf_counter() - start
    assert elapsed < 2.0 * _slowness(), f"{elapsed:.2f} s"
    assert "rankdir=TB" in dot.source
    assert "drawn as one box" in dot.source and "collapse=False" in dot.source
    width, height = struct.unpack(">II", png[16:24])
    assert width < 2500 and height < 3500, (width, height)
    full = visualize.draw_graph(loss, params=model, collapse=False, max_nodes=None)
    assert "drawn as one box" not in full.source
    assert full.source.count("<B>linear</B>") == 21


def _slowness() -> float:
    """How much slower than usual this machine is now (1 on an idle machine)."""
    start = time.perf_counter()
    a = np.random.default_rng(0).random((200, 200))
    for _ in range(20):
        a = a @ a
        a /= a.max()
    return max(1.0, (time.perf_counter() - start) / 0.02)


@needs_dot
def test_cnn_stepper_in_headless_chromium_opens_on_the_root_and_walks_the_layers(tmp_path):
    executable = find_chromium()
    if executable is None:
        pytest.skip("chromium is not installed")
    model, _x, loss = _step("cnn", batch=2, input_grad=True)
    path = visualize.backward_stepper(loss, tmp_path / "cnn.html", params=model)
    trace = visualize.trace_backward(loss, params=model)
    current = "(function(){var g=document.querySelector('g.node.current');return g?g.id:null;})()"
    explain = "document.getElementById('explain').textContent"
    with Browser(executable) as browser:
        browser.open(f"file://{path}")
        assert browser.evaluate(current) == trace.graph.roots[0]
        assert browser.evaluate("document.getElementById('fit').checked") is True
        seen, texts = [], []
        for k in range(1, len(trace.steps) + 1):
            browser.evaluate("document.getElementById('next').click()")
            assert browser.evaluate(current) == trace.steps[k - 1].node_id
            texts.append(browser.evaluate(explain))
            seen.append(texts[-1].splitlines()[0])
            visible = (
                "(function(){var r=document.querySelector('g.node.current')"
                ".getBoundingClientRect();var b=document.getElementById('graph')"
                ".getBoundingClientRect();return r.bottom>b.top&&r.top<b.bottom"
                "&&r.right>b.left&&r.left<b.right;})()"
            )
            assert browser.evaluate(visible) is True, seen[-1]
        assert browser.errors == []
    layers = [re.sub(r"Step \d+/\d+: ", "", line).split(" (")[0] for line in seen]
    layers = [name for name in layers if name != "AccumulateGrad"]
    assert layers == CNN_BACKWARD
    # the first convolution sends the images their gradient (the fold step of the lecture)
    first_conv = [t for t in texts if ": conv2d" in t.splitlines()[0]][-1]
    assert "conv2d (in features.0)" in first_conv, first_conv
    assert "input x (x): gets dL/dx of shape (2, 1, 8, 8)" in first_conv, first_conv
    assert "rule: dL/dx = fold(W^T g)" in first_conv


def test_an_in_place_layer_on_a_view_in_the_middle_is_drawn_like_its_out_of_place_twin():
    """Flatten then ReLU(inplace=True) changes a view of the first layer's output (the
    engine records copy_slices on that output): the picture and the backward trace
    are the out-of-place model's."""
    pictures, traces = [], []
    for inplace in (False, True):
        autodiff.manual_seed(0)
        model = nn.Sequential(
            nn.Linear(4, 6), nn.Flatten(), nn.ReLU(inplace=inplace), nn.Linear(6, 3)
        )
        loss = F.cross_entropy(model(autodiff.randn(2, 4)), autodiff.tensor([0, 2]))
        pictures.append(_picture_of(visualize.draw_graph(loss).source))
        trace = visualize.trace_backward(loss, params=model)
        traces.append([(s.op, s.module) for s in trace.steps if not s.is_accumulate])
    assert pictures[0] == pictures[1]
    assert traces[0] == traces[1]
    assert "copy_slices" not in str(traces[1])
