"""visualize: the graph as plain data, the backward trace, and rendering with the real ``dot``."""

from __future__ import annotations

import os
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from _helpers import Cube
from hypothesis import given, settings
from hypothesis import strategies as st

import autodiff
import visualize
from autodiff.function import AccumulateGrad

HAS_DOT = shutil.which("dot") is not None
needs_dot = pytest.mark.skipif(not HAS_DOT, reason="Graphviz's dot is not installed")


def leaf(value, name=None, dtype=np.float64):
    t = autodiff.tensor(np.asarray(value, dtype=dtype), requires_grad=True)
    t.name = name
    return t


def counts(graph):
    return len(graph.tensors), len(graph.ops), len(graph.edges)


# -- small expressions --------------------------------------------------------------------


def test_counts_of_a_small_expression():
    a, b, c = leaf(2.0, "a"), leaf(-3.0, "b"), leaf(10.0, "c")
    graph = visualize.trace_graph(a * b + c)
    # 3 leaves + 2 op outputs; Mul, Add; 2 inputs + 1 output per op.
    assert counts(graph) == (5, 2, 6)
    assert [op.name for op in graph.ops] == ["Add", "Mul"]
    kinds = sorted(t.kind for t in graph.tensors)
    assert kinds == ["intermediate", "leaf", "leaf", "leaf", "root"]
    assert graph.tensor("a").value == "2"
    root = graph.node(graph.roots[0])
    assert root.kind == "root" and root.value == "4"


def test_diamond_reused_node_appears_once():
    x = leaf([0.5, -1.0], "x")
    y = x.exp()
    y.name = "y"
    z = (y * y + y.sin()).sum()
    graph = visualize.trace_graph(z)
    assert sorted(op.name for op in graph.ops) == ["Add", "Exp", "Mul", "Sin", "Sum"]
    (y_node,) = [t for t in graph.tensors if t.label == "y"]
    # y feeds Mul twice (both inputs) and Sin once.
    assert sorted(graph.node(c).name for c in graph.consumers_of(y_node.id)) == [
        "Mul",
        "Mul",
        "Sin",
    ]
    (x_node,) = [t for t in graph.tensors if t.label == "x"]
    assert len(graph.consumers_of(x_node.id)) == 1
    assert counts(graph) == (6, 5, 5 + 2 + 2 + 1 + 1 + 1)


UNARY = ["exp", "tanh", "sigmoid", "sin", "relu", "neg"]
BINARY = ["add", "mul", "sub", "maximum"]


@st.composite
def programs(draw):
    """A random straight-line program over leaves: each line applies an op to earlier values."""
    n_leaves = draw(st.integers(1, 3))
    lines = []
    for i in range(draw(st.integers(1, 8))):
        available = n_leaves + i
        if draw(st.booleans()):
            lines.append((draw(st.sampled_from(UNARY)), draw(st.integers(0, available - 1))))
        else:
            lines.append(
                (
                    draw(st.sampled_from(BINARY)),
                    draw(st.integers(0, available - 1)),
                    draw(st.integers(0, available - 1)),
                )
            )
    return n_leaves, lines


def run_program(program):
    """The values of a drawn program: its leaves x0, x1, ..., then one per line."""
    n_leaves, lines = program
    values = [leaf(np.linspace(-1, 1, 3) + i, f"x{i}") for i in range(n_leaves)]
    for op, *args in lines:
        operands = [values[i] for i in args]
        values.append(getattr(autodiff, op)(*operands) if op != "neg" else -operands[0])
    return values


@settings(max_examples=30)
@given(programs())
def test_counts_of_random_programs(program):
    n_leaves, lines = program
    values = run_program(program)
    # What the root depends on: walk the program backwards.
    reachable, stack = set(), [len(values) - 1]
    while stack:
        i = stack.pop()
        if i in reachable:
            continue
        reachable.add(i)
        if i >= n_leaves:
            stack.extend(lines[i - n_leaves][1:])
    ops = [i for i in reachable if i >= n_leaves]
    edges = sum(len(lines[i - n_leaves]) - 1 + 1 for i in ops)  # inputs + the output edge
    graph = visualize.trace_graph(values[-1])
    assert counts(graph) == (len(reachable), len(ops), edges)
    assert sorted(
        t.label for t in graph.tensors if t.kind in ("leaf", "root") and t.producer is None
    ) == sorted(f"x{i}" for i in reachable if i < n_leaves)


def test_root_that_is_a_leaf_and_root_without_graph():
    x = leaf(1.0, "x")
    graph = visualize.trace_graph(x)
    assert counts(graph) == (1, 0, 0) and graph.tensors[0].kind == "root"
    with pytest.raises(ValueError, match=r"no graph \(requires_grad=False\)"):
        visualize.trace_graph(autodiff.tensor([1.0, 2.0]) * 2)


def test_several_roots():
    a = leaf(1.0, "a")
    graph = visualize.trace_graph([a.exp(), a * 3])
    assert len(graph.roots) == 2 and counts(graph) == (3, 2, 4)


# -- backward order -----------------------------------------------------------------------


def _engine_order(loss):
    """The nodes in the order the real engine processes them (recorded by hooks)."""
    seen = []
    order = []
    stack = [loss.grad_fn]
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.append(node)
        if type(node) is AccumulateGrad:
            node.variable.register_hook(lambda g, n=node: order.append(n))
        else:
            node.register_hook(lambda g, n=node: order.append(n))
        stack.extend(node.next_functions)
    loss.backward(retain_graph=True)
    return order


@settings(max_examples=15)
@given(programs())
def test_step_numbers_equal_the_engine_order(program):
    values = run_program(program)
    loss = values[-1].sum() if values[-1].grad_fn is not None else (values[-1] * 1).sum()
    graph = visualize.trace_graph(loss)
    trace = visualize.trace_backward(loss)
    engine = _engine_order(loss)
    names = [n.name() for n in engine]
    by_step = sorted(
        [(op.step, op.backward_name) for op in graph.ops]
        + [(t.step, "AccumulateGrad") for t in graph.tensors if t.producer is None]
    )
    assert [name for _, name in by_step] == names
    assert [s.op for s in trace.steps] == names
    assert [s.step for s in trace.steps] == list(range(1, len(names) + 1))


def test_nodes_that_receive_no_gradient_are_skipped_like_the_engine(tmp_path):
    class StopGradient(autodiff.Function):
        """y = x        dL/dx = 0 (returned as None)"""

        @staticmethod
        def forward(ctx, x):
            return x.copy()

        @staticmethod
        def backward(ctx, grad):
            return None

    a, b = leaf([1.0, 2.0], "a"), leaf([3.0, -1.0], "b")
    loss = (StopGradient.apply(a.exp()) * b).sum()
    trace = visualize.trace_backward(loss)
    engine = _engine_order(loss)
    assert [s.op for s in trace.steps] == [n.name() for n in engine]
    assert sorted(s.op for s in trace.steps) == [
        "AccumulateGrad",
        "MulBackward",
        "StopGradientBackward",
        "SumBackward",
    ]  # Exp and the AccumulateGrad of a are never reached
    assert a.grad is None and list(trace.grads) == ["b"]
    if HAS_DOT:
        page = Path(visualize.backward_stepper(loss, tmp_path / "s.html")).read_text()
        assert "not reached" in page and "Exp" in page  # drawn, but never processed


# -- trace_backward -------------------------------------------------------------------------


@settings(max_examples=10)
@given(st.integers(1, 4), st.integers(1, 4), st.integers(0, 2**31 - 1))
def test_trace_backward_matches_backward_and_changes_nothing(n, m, seed):
    rng = np.random.default_rng(seed)
    w = leaf(rng.normal(size=(m, n)), "w")
    b = leaf(rng.normal(size=(m,)), "b")
    x = autodiff.tensor(rng.normal(size=(3, n)))
    y = (x @ w.T + b).tanh()  # broadcasting of b is undone by the engine
    upstream = autodiff.tensor(rng.normal(size=(3, m)))
    trace = visualize.trace_backward(y, gradient=upstream)
    assert w.grad is None and b.grad is None  # nothing accumulated
    y.backward(upstream)  # the graph was not freed by the trace
    np.testing.assert_allclose(trace.grads["w"], w.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(trace.grads["b"], b.grad.numpy(), rtol=1e-12)
    matmul = next(s for s in trace.steps if s.op == "MatMulBackward")
    assert matmul.grad_output == (3, m)
    if 3 * m <= 6 and n * m <= 6:  # small: the Jacobian's values, d(x V)/dV with V = W^T
        expected = np.zeros((3, m, n, m))
        for i in range(m):
            expected[:, i, :, i] = x.numpy()
        jacobian = visualize.summarize(expected.reshape(3 * m, n * m), 36)
        assert matmul.jacobians[1] == jacobian
    else:
        assert matmul.jacobians[1] == f"(3, {m})x({n}, {m}) = {3 * m}x{n * m}"
    assert matmul.grad_inputs == [None, (n, m)]


def test_trace_backward_against_pytorch(torch):
    rng = np.random.default_rng(1)
    w0, x0 = rng.normal(size=(3, 4)), rng.normal(size=(5, 4))
    up = rng.normal(size=(5, 3))
    w = leaf(w0, "w")
    trace = visualize.trace_backward(
        (autodiff.tensor(x0) @ w.T).sigmoid() * 2, gradient=autodiff.tensor(up)
    )
    tw = torch.tensor(w0, requires_grad=True)
    ((torch.tensor(x0) @ tw.T).sigmoid() * 2).backward(torch.tensor(up))
    np.testing.assert_allclose(trace.grads["w"], tw.grad.numpy(), rtol=1e-10)


def test_trace_backward_table_text_and_html():
    x = leaf([1.0, 2.0], "x")
    trace = visualize.trace_backward((x * x).sum())
    text = str(trace)
    assert text.splitlines()[0].split() == [
        "step",
        "op",
        "dL/d(output)",
        "local",
        "Jacobian",
        "d(out)/d(in)",
        "dL/d(inputs)",
    ]
    assert "SumBackward" in text and "() = 1" in text and "(2,) = [1, 1]" in text
    assert "x: (2,) = [1, 2]; y: (2,) = [1, 2]" in text  # named by Mul's rule
    assert "AccumulateGrad -> x.grad" in text and "(2,) = [2, 4]" in text
    assert [s.op for s in trace] == ["SumBackward", "MulBackward", "AccumulateGrad"]
    html = trace._repr_html_()
    assert html.startswith("<table>") and html.count("<tr") == 4
    assert "dL/dx = dL/dz * y" in html  # the rule as a tooltip


def test_trace_backward_after_the_graph_was_freed():
    x = leaf([1.0, 2.0], "x")
    loss = (x.exp() * x).sum()
    loss.backward()
    with pytest.raises(RuntimeError, match="retain_graph=True"):
        visualize.trace_backward(loss)


# -- values, gradients, notes ----------------------------------------------------------------


def test_before_and_after_backward():
    a, b = leaf(2.0, "a"), leaf(-3.0, "b")
    e = a * b
    e.name = "e"
    loss = e.tanh()
    before = visualize.trace_graph(loss)
    assert not before.backward_done and "before backward()" in before.note
    assert all(t.grad is None for t in before.tensors)
    source = visualize.to_digraph(before).source
    assert "no gradients yet" in source.lower() or "none yet" in source
    assert "grad 0" not in source
    loss.backward()
    after = visualize.trace_graph(loss)
    assert after.backward_done and after.freed
    expected = (1 - np.tanh(-6.0) ** 2) * -3.0
    assert after.tensor("a").grad == visualize.summarize(np.array(expected))
    assert after.tensor("e").grad is None and after.tensor("e").grad_note == "not retained"
    assert after.tensor("e").value == "-6"


def test_retain_grads_matches_retain_grad():
    a, b = leaf([1.0, -2.0], "a"), leaf([0.5, 3.0], "b")
    kept = a * b
    loss = (kept.sigmoid() + a * 2).sum()  # a * 2 is a temporary nobody holds
    kept.retain_grad()
    hooked = visualize.retain_grads(loss)
    assert hooked == 5  # Mul, Sigmoid, Mul, Add, Sum
    loss.backward()
    graph = visualize.trace_graph(loss)
    assert all(t.grad is not None for t in graph.tensors)
    (kept_node,) = [
        t
        for t in graph.tensors
        if t.producer and graph.node(t.producer).name == "Mul" and t.value == "[0.5, -6]"
    ]
    assert kept_node.grad == visualize.summarize(kept.grad.numpy())


def test_keep_values_keeps_temporaries_and_restores_apply():
    original = autodiff.Function.__dict__["apply"]
    a, b = leaf(2.0, "a"), leaf(-3.0, "b")
    without = (a * b + a).exp()
    assert [
        t.value for t in visualize.trace_graph(without).tensors if t.kind == "intermediate"
    ].count(None) >= 1
    with visualize.keep_values(), visualize.keep_values():  # nested blocks are fine
        kept = (a * b + a).exp()
    assert autodiff.Function.__dict__["apply"] is original
    values = {t.value for t in visualize.trace_graph(kept).tensors if t.kind == "intermediate"}
    assert values == {"-6", "-4"}


def test_constant_inputs_are_drawn_inside_keep_values():
    a = leaf(2.0, "a")
    three = autodiff.tensor(3.0, dtype=autodiff.float64)
    three.name = "three"
    with visualize.keep_values():
        y = (a * three).exp() + three
    graph = visualize.trace_graph(y)
    (const,) = [t for t in graph.tensors if t.kind == "constant"]  # one node, used twice
    assert (const.label, const.value) == ("three", "3")
    uses = sorted((graph.node(e.dst).name, e.index) for e in graph.edges if e.src == const.id)
    assert uses == [("Add", 1), ("Mul", 1)]
    assert counts(graph) == (5, 3, 3 + 2 + 3)  # leaf, constant, 3 outputs; Mul, Exp, Add edges
    assert "constant (no grad)" in visualize.to_digraph(graph).source


def test_summaries():
    assert visualize.summarize(np.array(2.5)) == "2.5"
    assert visualize.summarize(np.array([1.0, -2.0])) == "[1, -2]"
    assert visualize.summarize(np.array([[1, 2], [3, 4]])) == "[[1, 2], [3, 4]]"
    assert visualize.summarize(np.arange(10.0)) == "min 0  mean 4.5  max 9"
    assert visualize.summarize(np.array(1.5e-7)) == "1.500e-07"
    assert visualize.summarize(np.zeros(0)) == "(empty)"


def test_rules_and_input_names_from_docstrings():
    a, b = leaf(2.0, "a"), leaf(-3.0, "b")
    graph = visualize.trace_graph(a * b)
    (mul,) = graph.ops
    assert mul.formula == "z = x * y"
    assert mul.rule.splitlines() == ["dL/dx = dL/dz * y", "dL/dy = dL/dz * x"]
    assert mul.input_names == ["x", "y"]
    source = visualize.to_digraph(graph, show_rules=True).source
    assert "dL/dx = dL/dz * y" in source and "label=x" in source

    (cube,) = visualize.trace_graph(Cube.apply(a)).ops
    assert (cube.name, cube.formula, cube.rule) == ("Cube", "y = x^3", "dL/dx = dL/dy * 3 x^2")


def test_node_limit_has_a_clear_message():
    x = leaf([1.0], "x")
    y = x
    for _ in range(30):
        y = y * 1.01
    with pytest.raises(
        visualize.GraphTooLargeError, match=r"61 nodes .*max_nodes=20.*collapse=True"
    ):
        visualize.draw_graph(y, max_nodes=20)
    assert len(visualize.trace_graph(y, max_nodes=None)) == 61


# -- parameters and modules --------------------------------------------------------------------


def _mlp_loss():
    nn = pytest.importorskip("nn")
    model, loss = visualize.command.training_step_loss("mlp", batch_size=3)
    return nn, model, loss


def test_parameter_names_from_a_dict_and_from_a_module():
    nn = pytest.importorskip("nn")
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    out = model(autodiff.randn(5, 4)).sum()
    for params in (dict(model.named_parameters()), model):
        graph = visualize.trace_graph(out, params=params)
        names = sorted(t.label for t in graph.tensors if t.kind == "parameter")
        assert names == ["0.bias", "0.weight", "2.bias", "2.weight"]
        assert graph.tensor("0.weight").shape == (3, 4)
        # the forward pass recorded its modules: clusters without track_modules
        assert graph.modules["0"].type_name == "Linear" and graph.modules[""].parent is None
        assert graph.tensor("0.weight").module == "0"
    with pytest.raises(TypeError, match="params"):
        visualize.trace_graph(out, params=[1, 2])


def test_lecture_mlp_loss_graph():
    _, model, loss = _mlp_loss()
    graph = visualize.trace_graph(loss, detail="primitives")
    params = {t.label: t for t in graph.tensors if t.kind == "parameter"}
    assert sorted(params) == sorted(name for name, _ in model.named_parameters())
    assert params["linear_relu_stack.0.weight"].shape == (512, 784)
    assert params["linear_relu_stack.0.weight"].module == "linear_relu_stack.0"
    by_module = {}
    for op in graph.ops:
        by_module.setdefault(op.module, []).append(op.name)
    for i in (0, 2, 4):  # Linear: x @ W.T + b, one fused primitive for a batch of rows
        assert by_module[f"linear_relu_stack.{i}"] == ["Linear"]
    for i in (1, 3):
        assert by_module[f"linear_relu_stack.{i}"] == ["Relu"]
    assert None not in by_module  # every op ran inside the model or the loss
    assert set(by_module) - {"CrossEntropyLoss"} == {f"linear_relu_stack.{i}" for i in range(5)}
    model_ops = sum(len(v) for k, v in by_module.items() if k != "CrossEntropyLoss")
    assert model_ops == 5
    assert graph.modules["linear_relu_stack.0"].parent == "linear_relu_stack"
    assert graph.modules["linear_relu_stack"].parent == ""
    assert graph.modules[""].type_name == "NeuralNetwork"
    assert graph.modules["CrossEntropyLoss"].parent is None
    assert graph.node(graph.roots[0]).label == "loss"
    # Ops plus their outputs, plus 6 parameter leaves, plus constants (keep_values).
    constants = [t for t in graph.tensors if t.kind == "constant"]
    assert len(graph.tensors) == len(graph.ops) + 6 + len(constants)
    # The flattened input batch enters the first Linear, drawn inside the model only.
    (batch,) = [t for t in constants if t.shape == (3, 784)]
    assert [graph.node(c).name for c in graph.consumers_of(batch.id)] == ["Linear"]
    assert batch.module == "" and batch.value.startswith("min ")
    assert batch.label == "input to linear_relu_stack"
    # The loss's own constants (e.g. the targets' index) stay inside the loss.
    assert {t.module for t in constants if t is not batch} == {"CrossEntropyLoss"}


def test_module_tracking_hooks_are_removed():
    nn = pytest.importorskip("nn")
    model = nn.Sequential(nn.Linear(2, 2), nn.Tanh())
    with visualize.track_modules(model):
        assert all(len(m._forward_hooks) == 1 for m in model.modules())
        tagged = model(autodiff.randn(1, 2))
    assert all(len(m._forward_hooks) == 0 for m in model.modules())
    with autodiff.no_grad():  # no recording: the hooks would be the only tags
        untagged = model(autodiff.randn(1, 2, requires_grad=True))
    assert {op.module for op in visualize.trace_graph(tagged).ops} == {"0", "1"}
    assert untagged.grad_fn is None
    with pytest.raises(TypeError, match=r"expected nn\.Modules"):
        visualize.track_modules(object())


def test_glue_ops_of_a_custom_forward_belong_to_the_outer_module():
    nn = pytest.importorskip("nn")

    class Residual(nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = nn.Linear(3, 3)

        def forward(self, x):
            return (self.inner(x) + x).relu()

    model = nn.Sequential(nn.Linear(3, 3), Residual())
    x = autodiff.randn(2, 3)
    with visualize.track_modules(model):
        out = model(x)
    graph = visualize.trace_graph(out, detail="primitives")
    modules = sorted((op.module, op.name) for op in graph.ops)
    assert modules == [
        ("0", "Linear"),
        ("1", "Add"), ("1", "Relu"),
        ("1.inner", "Linear"),
    ]  # fmt: skip


# -- the Digraph and rendering ---------------------------------------------------------------------


def _svg_nodes(svg: bytes) -> int:
    root = ET.fromstring(svg)
    return sum(1 for el in root.iter() if el.get("class") == "node")


def test_dot_source_without_graphviz(monkeypatch, tmp_path):
    a, b = leaf(2.0, "a"), leaf(-3.0, "b")
    dot = visualize.draw_graph(a * b, show_rules=True, show_order=True)
    assert isinstance(dot, visualize.Digraph)
    source = dot.source
    for text in ("<B>a</B>", "<B>Mul</B>", "step 1", "legend", "parameter" if False else "leaf"):
        assert text in source
    monkeypatch.setenv("PATH", str(tmp_path))  # no dot on the PATH
    with pytest.raises(visualize.GraphvizNotInstalledError, match="apt-get install graphviz"):
        dot.pipe(format="svg")
    with pytest.raises(visualize.GraphvizNotInstalledError, match="brew install graphviz"):
        dot.render(tmp_path / "g", format="png")
    # The DOT text needs no Graphviz.
    assert Path(dot.save_as(tmp_path / "g.dot")).read_text() == source


@needs_dot
def test_rendered_svg_has_the_labels(tmp_path):
    a, b, c = leaf(2.0, "a"), leaf(-3.0, "b"), leaf(10.0, "c")
    with visualize.keep_values():
        loss = a * b + c
    loss.name = "L"
    visualize.retain_grads(loss)
    loss.backward()
    dot = visualize.draw_graph(loss, show_rules=True, show_order=True)
    svg = dot.pipe(format="svg")
    root = ET.fromstring(svg)  # well-formed XML
    assert root.tag.endswith("svg")
    texts = " ".join(el.text or "" for el in root.iter() if el.tag.endswith("text"))
    for label in (
        "L",
        "a",
        "b",
        "c",
        "Mul",
        "Add",
        "data -6",
        "grad -3",
        "grad 2",
        "step 1",
        "dL/dx = dL/dz * y",
    ):
        assert label in texts, label
    assert _svg_nodes(svg) == 5 + 2 + 1  # tensors + ops + the legend
    path = dot.save_as(tmp_path / "graph.png")
    assert Path(path).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    pdf = dot.save_as(tmp_path / "graph.pdf")
    assert Path(pdf).read_bytes()[:5] == b"%PDF-"


@needs_dot
def test_module_clusters_and_collapse_in_svg():
    _, model, loss = _mlp_loss()
    full = visualize.draw_graph(loss, params=model, show_values=False).pipe(format="svg")
    titles = {
        el.text
        for el in ET.fromstring(full).iter()
        if el.tag.endswith("text") and el.text and ":" in el.text
    }
    assert {"linear_relu_stack.0: Linear", "linear_relu_stack: Sequential"} <= titles
    layers = visualize.draw_graph(loss, collapse=True).pipe(format="svg")
    coarse = visualize.draw_graph(loss, collapse=1).pipe(format="svg")
    n_full, n_layers, n_coarse = _svg_nodes(full), _svg_nodes(layers), _svg_nodes(coarse)
    assert n_full > n_layers > n_coarse
    # collapse=True: 5 layers + the loss, 6 boxes, their 6 outputs except the root, the
    # root, and the input batch.
    graph = visualize.trace_graph(loss, detail="primitives")
    rep = visualize.dot.collapse_modules(graph, True)
    assert len({r for r in rep.values() if r.startswith("mod@")}) == 6
    assert len(set(rep.values())) == 6 + 5 + 1 + 1
    only_loss = visualize.dot.collapse_modules(graph, "CrossEntropyLoss")
    assert {r for r in only_loss.values() if r.startswith("mod@")} == {"mod@CrossEntropyLoss"}
    with pytest.raises(ValueError, match="track_modules"):
        visualize.draw_graph(leaf(1.0) * 2, collapse=True)


@needs_dot
@pytest.mark.parametrize(
    ("model", "name", "fmt", "magic"),
    [
        ("mlp", "mlp.svg", None, b"<?xml"),
        ("cnn", "cnn", "png", b"\x89PNG"),  # no extension: the format says it
        ("mlp", "m.pdf", None, b"%PDF"),
    ],
)
def test_graph_command(tmp_path, model, name, fmt, magic):
    pytest.importorskip("nn")
    path = visualize.graph_command(model, tmp_path / name, fmt=fmt, collapse=model == "cnn")
    assert path == str(tmp_path / name)
    assert Path(path).read_bytes()[: len(magic)] == magic
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]


def test_graph_command_rejects_unknown_names(tmp_path):
    with pytest.raises(ValueError, match="unknown model"):
        visualize.graph_command("resnet", tmp_path / "x.svg")
    with pytest.raises(ValueError, match="unknown format"):
        visualize.graph_command("mlp", tmp_path / "x.svg", fmt="jpeg")


def test_make_dot_has_torchvizs_signature():
    a, b = leaf(2.0, "a"), leaf(-3.0, "b")
    plain = visualize.make_dot(a * b, params={"a": a, "b": b}).source
    assert "<B>a</B>" in plain and "data " not in plain and "grad " not in plain
    assert "dL/dx" in visualize.make_dot(a * b, show_attrs=True).source


@needs_dot
def test_digraph_displays_inline_in_jupyter():
    a = leaf([1.0, 2.0], "a")
    bundle = visualize.draw_graph(a.exp().sum())._repr_mimebundle_()
    assert "<svg" in bundle["image/svg+xml"] and "exp" in bundle["image/svg+xml"].lower()


def test_draw_graph_highlights_the_first_wrong_op_that_check_graph_found():
    from autodiff.testing import check_graph, record_inputs

    class DoubledExp(autodiff.ops.Exp):  # the engine's exp with a planted bug
        @staticmethod
        def backward(ctx, grad):
            (y,) = ctx.saved_tensors
            return grad * y * 2

    x = leaf([0.5, -1.0], "x")
    with record_inputs():
        loss = (DoubledExp.apply(x * 3) + 1).sum()
    report = check_graph(loss)
    assert report.wrong.name == "DoubledExp"
    source = visualize.draw_graph(loss, highlight=report).source
    (wrong_line,) = [line for line in source.splitlines() if "DoubledExp" in line]
    assert 'color="#cc0000"' in wrong_line and "penwidth=3" in wrong_line
    assert source.count("#cc0000") == 1  # only that op
    same = visualize.draw_graph(loss, highlight=report.wrong.node).source
    assert same == source
    assert "#cc0000" not in visualize.draw_graph(loss).source
    with pytest.raises(ValueError, match="is not an op of this graph"):
        visualize.draw_graph(loss, highlight=(x * 2).grad_fn)


@pytest.mark.parametrize(
    ("name", "fmt", "message"),
    [
        ("mlp.jpg", None, r"extension \.jpg, which is not a format"),
        ("mlp.out", "png", r"extension \.out"),
        ("mlp.png", "svg", r"ends in \.png but the format asked for is svg"),
        ("mlp.svg", "pdf", r"ends in \.svg"),
    ],
)
def test_graph_command_refuses_a_name_that_lies_about_the_format(tmp_path, name, fmt, message):
    with pytest.raises(ValueError, match=message):
        visualize.graph_command("mlp", tmp_path / name, fmt=fmt)
    assert os.listdir(tmp_path) == []
    assert visualize.command.output_format("g.gv", "dot") == "dot"
    assert visualize.command.output_format("g.PNG") == "png"
    assert visualize.command.output_format("g") == "svg"
