"""The backward pass as a table: one row per step, in the order the engine runs them.

``trace_backward(loss)`` runs the engine's own backward loop
(``autodiff.backward_steps``, the loop ``loss.backward()`` runs) and writes down
each step: the node, the sum of the gradients that reached it
(``dL/d(output)``), and the gradients its VJP passed on, un-broadcast to each
input's shape.  Each step becomes a :class:`BackwardStep`; a broken op, a hook
or an anomaly behaves exactly as in ``backward()``.

It changes no ``.grad`` and frees nothing (the graph can still be used by
``loss.backward()`` afterwards), but gradient hooks run as in any backward pass.
So call it before ``loss.backward()`` or after ``loss.backward(retain_graph=True)``.
The leaves' gradients it computed are in ``trace.grads`` (by parameter name or
tensor name).
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field

import numpy as np

import autodiff
from autodiff import Tensor
from autodiff.engine import topological_order
from autodiff.function import AccumulateGrad, Node

from .trace import (
    _root_nodes,
    check_detail,
    input_names,
    op_rule,
    recorded_graph,
    summarize,
    without_unread_constants,
)

SMALL = 6  # tensors with at most this many elements show their values


@dataclass
class BackwardStep:
    """One step of back-propagation.

    ``op`` is the engine's node name ("MulBackward", or "AccumulateGrad" when a
    leaf receives its gradient); ``grad_output`` the shape of dL/d(output) it
    receives; ``jacobians`` the shape of each local Jacobian d(output)/d(input)
    (output shape x input shape); ``grad_inputs`` the shape of each gradient it
    passes on (None for inputs that take none).  ``node_id``/``input_ids`` are the
    ids of the nodes of ``trace_graph`` (so a picture can highlight them).
    """

    step: int
    op: str
    node_id: str
    target: str | None
    rule: str
    grad_output: tuple
    grad_output_value: str | None
    jacobians: list = field(default_factory=list)
    grad_inputs: list = field(default_factory=list)
    grad_input_values: list = field(default_factory=list)
    input_ids: list = field(default_factory=list)
    grad_output_summary: str = ""
    input_names: list = field(default_factory=list)  # the rule's names, e.g. ["X", "W"]
    # (input node id, summary of the gradient accumulated for it so far) after this step
    updates: list = field(default_factory=list)
    module: str | None = None  # the nn.Module that ran the op (its qualified name)

    def add(self, input_id, jacobian, grad_shape, grad_value) -> None:
        """One input: where its gradient goes, the local Jacobian, the gradient sent."""
        self.input_ids.append(input_id)
        self.jacobians.append(jacobian)
        self.grad_inputs.append(grad_shape)
        self.grad_input_values.append(grad_value)

    @property
    def is_accumulate(self) -> bool:
        return self.op == "AccumulateGrad"


def _shape(shape) -> str:
    return str(tuple(int(n) for n in shape))


def _jacobian_shape(out_shape, in_shape) -> str:
    rows = int(np.prod(out_shape, dtype=np.int64))
    cols = int(np.prod(in_shape, dtype=np.int64))
    return f"{_shape(out_shape)}x{_shape(in_shape)} = {rows}x{cols}"


def _jacobian(node, slot, in_shape, small) -> str:
    """The local Jacobian d(out)/d(input ``slot``): its values when both have at most
    ``small`` elements (one VJP per output element, with the op's own backward),
    else its shape."""
    rows = int(np.prod(node.shape, dtype=np.int64))
    cols = int(np.prod(in_shape, dtype=np.int64))
    if rows > small or cols > small or rows == 0 or cols == 0:
        return _jacobian_shape(node.shape, in_shape)
    matrix = np.zeros((rows, cols))
    try:
        with autodiff.no_grad():
            for i in range(rows):
                unit = np.zeros(rows, dtype=node.dtype)
                unit[i] = 1
                grads = node.function.backward(node, autodiff.tensor(unit.reshape(node.shape)))
                grads = grads if isinstance(grads, tuple) else (grads,)
                g = grads[slot] if slot < len(grads) else None
                if g is None:
                    continue
                g = np.asarray(g.data if isinstance(g, Tensor) else g, dtype=np.float64)
                matrix[i] = _sum_to(g, tuple(in_shape)).reshape(-1)
    except Exception:  # a user's op whose backward needs more than this: show the shape
        return _jacobian_shape(node.shape, in_shape)
    return summarize(matrix, small * small)


def _sum_to(g, shape):
    """Un-broadcast a gradient to ``shape`` (what the engine does to every VJP)."""
    while g.ndim > len(shape):
        g = g.sum(axis=0)
    for axis, n in enumerate(shape):
        if n == 1 and g.shape[axis] != 1:
            g = g.sum(axis=axis, keepdims=True)
    return np.broadcast_to(g, shape)


class BackwardTrace:
    """The steps of one backward pass; ``str()`` is a text table, Jupyter shows HTML."""

    def __init__(self, steps, grads, graph):
        self.seed = "1"  # the summary of dL/d(root) that backward starts from
        self.steps = steps
        self.grads = grads
        self.graph = graph

    def __len__(self):
        return len(self.steps)

    def __iter__(self):
        return iter(self.steps)

    def __getitem__(self, index):
        return self.steps[index]

    HEADER = ("step", "op", "dL/d(output)", "local Jacobian d(out)/d(in)", "dL/d(inputs)")

    @property
    def header(self) -> tuple:
        """The columns: HEADER, and "module" after "op" when the ops ran inside modules."""
        if any(s.module for s in self.steps):
            return (*self.HEADER[:2], "module", *self.HEADER[2:])
        return self.HEADER

    def rows(self) -> list[list[str]]:
        """The table as text cells: step, op, (module), dL/d(out), local Jacobian(s), dL/d(inputs)."""
        with_module = len(self.header) > len(self.HEADER)
        rows = []
        for s in self.steps:
            grad_out = _shape(s.grad_output)
            if s.grad_output_value is not None:
                grad_out += f" = {s.grad_output_value}"
            module = [s.module or ""] if with_module else []
            if s.is_accumulate:
                rows.append(
                    [str(s.step), f"AccumulateGrad -> {s.target}.grad", *module, grad_out, "", ""]
                )
                continue
            # Inputs named by the rule ("X: ...; W: ...") when it names them all;
            # otherwise only the inputs that receive a gradient.
            names = s.input_names or [None] * len(s.grad_inputs)
            jacs, grads = [], []
            for name, jac, shape, value in zip(
                names, s.jacobians, s.grad_inputs, s.grad_input_values
            ):
                if shape is None and name is None:
                    continue
                prefix = f"{name}: " if name else ""
                jacs.append(prefix + (jac or "-"))
                text = "no grad" if shape is None else _shape(shape)
                grads.append(prefix + text + (f" = {value}" if value is not None else ""))
            rows.append([str(s.step), s.op, *module, grad_out, "; ".join(jacs), "; ".join(grads)])
        return rows

    def __str__(self) -> str:
        header = self.header
        rows = [list(header), *self.rows()]
        widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
        lines = []
        for n, row in enumerate(rows):
            lines.append("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
            if n == 0:
                lines.append("  ".join("-" * w for w in widths))
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"<BackwardTrace: {len(self.steps)} steps>\n{self}"

    def _repr_html_(self) -> str:
        head = "".join(f"<th style='text-align:left'>{html.escape(h)}</th>" for h in self.header)
        body = []
        for step, row in zip(self.steps, self.rows()):
            cells = "".join(
                f"<td style='text-align:left;font-family:monospace'>{html.escape(c)}</td>"
                for c in row
            )
            title = html.escape(step.rule.replace("\n", "   "))
            body.append(f"<tr title='{title}'>{cells}</tr>")
        return (
            "<table><thead><tr>"
            + head
            + "</tr></thead><tbody>"
            + "".join(body)
            + "</tbody></table>"
        )


def trace_backward(
    loss, gradient=None, params=None, small: int = SMALL, detail: str = "lecture", expand=None
) -> BackwardTrace:
    """Run the backward pass of ``loss`` step by step and return it as a table.

    One :class:`BackwardStep` per op, in the engine's order (the same order and the
    same VJPs as ``loss.backward()``): the op, the module that ran it, the gradient it
    receives, its local Jacobians (their values when the output and the input have at
    most ``small`` elements, else their shapes), the gradients it passes on, and
    values for tensors with at most ``small`` elements.  ``detail="lecture"`` (the
    default) makes one step of each layer (``conv2d`` receives dL/dy and sends dL/dx,
    dL/dW, dL/db), as ``draw_graph`` draws them; ``detail="primitives"`` one step per
    recorded op.  No ``.grad`` is changed and the graph is not freed (see the module
    docstring).

    Example::

        x = autodiff.tensor([1.0, 2.0], requires_grad=True); x.name = "x"
        print(trace_backward((x * x).sum()))
        # step  op                        dL/d(output)   local Jacobian d(out)/d(in)         dL/d(inputs)
        # ----  ------------------------  -------------  ----------------------------------  ----------------------------------
        # 1     SumBackward               () = 1         [[1, 1]]                            (2,) = [1, 1]
        # 2     MulBackward               (2,) = [1, 1]  x: [[1, 0], [0, 2]]; y: [[1, 0], [0, 2]]  x: (2,) = [1, 2]; y: (2,) = [1, 2]
        # 3     AccumulateGrad -> x.grad  (2,) = [2, 4]
    """
    if not isinstance(loss, Tensor):
        raise TypeError(f"trace_backward: expected a Tensor, got {type(loss).__name__}")
    check_detail(detail, "trace_backward")
    (root,) = _root_nodes(loss, "trace_backward")
    graph = recorded_graph(loss, params=params, max_nodes=None)
    order = topological_order(root)
    position = {node: i for i, node in enumerate(order)}
    labels = {t.id: t.label for t in graph.tensors}
    modules = {op.id: op.module for op in graph.ops}
    for node in order:
        if type(node) is Node and node.released:
            raise RuntimeError(
                f"trace_backward: the graph was freed by an earlier backward() ({node.name()} "
                "has no saved values): call trace_backward(loss) before loss.backward(), or "
                "call loss.backward(retain_graph=True)"
            )

    def value(array):
        return summarize(array, small) if array.size <= small else None

    # The engine's steps, as they run: (node, dL/d(output), [(child, gradient sent)]).
    raw = []
    passes = autodiff.backward_steps(loss, gradient, retain_graph=True, name="trace_backward")
    for node, grad, grad_inputs in passes:
        # copies: the engine may add later gradients into these arrays in place
        sent = []
        if type(node) is Node:
            sent = [
                (child, None if g is None else np.array(g.data, copy=True))
                for child, g in zip(node.next_functions, grad_inputs)
            ]
        raw.append((node, np.array(grad.data, copy=True), sent))

    view = None
    if detail == "lecture":
        from .lecture import lecture_view

        view = lecture_view(graph, expand)
    steps, grads = [], {}
    received = {}  # drawn tensor id -> the gradient it has received so far (updates column)

    def leaf_step(count, node, grad):
        name = labels.get(f"t{position[node]}") or f"leaf {position[node]}"
        grads[name] = grad
        return BackwardStep(
            count,
            "AccumulateGrad",
            f"t{position[node]}",
            name,
            "x.grad += dL/dx",
            tuple(grad.shape),
            value(grad),
            grad_output_summary=summarize(grad),
        )

    def receive(step, target, g):
        received[target] = received[target] + g if target in received else g
        step.updates.append((target, summarize(received[target])))

    def op_step(count, node, grad, sent):
        rule = op_rule(node.function)[1]
        op_id = f"op{position[node]}"
        step = BackwardStep(
            count,
            node.name(),
            op_id,
            None,
            rule,
            tuple(grad.shape),
            value(grad),
            grad_output_summary=summarize(grad),
            input_names=input_names(rule, len(node.next_functions)),
            module=modules.get(op_id),
        )
        for slot, (child, g) in enumerate(sent):
            if g is None:
                step.add(None, None, None, None)
                continue
            target = f"t{position[child]}"
            step.add(target, _jacobian(node, slot, child.shape, small), tuple(g.shape), value(g))
            receive(step, target, g)
        return step

    if view is None:
        for count, (node, grad, sent) in enumerate(raw, start=1):
            if type(node) is AccumulateGrad:
                steps.append(leaf_step(count, node, grad))
            else:
                steps.append(op_step(count, node, grad, sent))
    else:
        steps = _lecture_steps(raw, view, position, leaf_step, op_step, receive, value, small)
    drawn = view.graph if view is not None else without_unread_constants(graph)
    trace = BackwardTrace(steps, grads, drawn)
    if gradient is not None:
        trace.seed = summarize(gradient.data if isinstance(gradient, Tensor) else gradient)
    return trace


def _lecture_steps(raw, view, position, leaf_step, op_step, receive, value, small) -> list:
    """One step per drawn op: a layer receives dL/d(its output), sends dL/d(each input)."""
    ops = {op.id: op for op in view.graph.ops}
    units, order = {}, []
    for node, grad, sent in raw:
        if type(node) is AccumulateGrad:
            order.append(("leaf", node, grad))
            continue
        unit = view.op_of[f"op{position[node]}"]
        if unit not in units:
            units[unit] = []
            order.append(("op", unit, None))
        units[unit].append((node, grad, sent))
    steps = []
    for count, (kind, item, grad) in enumerate(order, start=1):
        if kind == "leaf":
            steps.append(leaf_step(count, item, grad))
            continue
        op = ops[item]
        region = op.region
        if region is None:  # an op outside every layer: its own step
            steps.append(op_step(count, *units[item][0]))
            continue
        inside = {f"t{position[member.node]}" for member in op.members}
        received_here = next(
            (g for node, g, _ in units[item] if f"op{position[node]}" == item), units[item][0][1]
        )
        step = BackwardStep(
            count,
            op.name,
            item,
            None,
            op.rule,
            tuple(received_here.shape),
            value(received_here),
            grad_output_summary=summarize(received_here),
            input_names=op.input_names,
            module=op.module,
        )
        sent_to, shapes = {}, {}
        for _node, _g, sent in units[item]:
            for child, g in sent:
                if g is None:
                    continue
                target = f"t{position[child]}"
                if target in inside:
                    continue  # to another op of the same layer
                drawn = view.tensor_of[target]
                sent_to[drawn] = sent_to[drawn] + g if drawn in sent_to else g
                shapes[drawn] = child.shape
        single = len(op.members) == 1
        targets = {}
        for slot, tid in view.graph.region_inputs.get(id(region), []):
            targets.setdefault(slot, tid)
        listed = [targets.get(slot) for slot in range(len(getattr(region, "inputs", ()) or ()))]
        listed += [t for t in sent_to if t not in listed]
        for target in listed:
            g = sent_to.get(target) if target is not None else None
            if g is None:
                step.add(None, None, None, None)
                continue
            jac = None
            if single:
                node = op.members[0].node
                for k, child in enumerate(node.next_functions):
                    if child is not None and view.tensor_of[f"t{position[child]}"] == target:
                        jac = _jacobian(node, k, child.shape, small)
                        break
            if jac is None:
                jac = _jacobian_shape(op.node.shape, shapes[target])
            step.add(target, jac, tuple(g.shape), value(g))
            receive(step, target, g)
        if len(step.input_names) != len(step.grad_inputs):
            step.input_names = []
        steps.append(step)
    return steps
