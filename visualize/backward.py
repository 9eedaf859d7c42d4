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

from .trace import _root_nodes, input_names, op_rule, summarize, trace_graph

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

    @property
    def is_accumulate(self) -> bool:
        return self.op == "AccumulateGrad"


def _shape(shape) -> str:
    return str(tuple(int(n) for n in shape))


def _jacobian(out_shape, in_shape) -> str:
    rows = int(np.prod(out_shape, dtype=np.int64))
    cols = int(np.prod(in_shape, dtype=np.int64))
    return f"{_shape(out_shape)}x{_shape(in_shape)} = {rows}x{cols}"


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

    def rows(self) -> list[list[str]]:
        """The table as text cells: step, op, dL/d(out), local Jacobian(s), dL/d(inputs)."""
        rows = []
        for s in self.steps:
            grad_out = _shape(s.grad_output)
            if s.grad_output_value is not None:
                grad_out += f" = {s.grad_output_value}"
            if s.is_accumulate:
                rows.append([str(s.step), f"AccumulateGrad -> {s.target}.grad", grad_out, "", ""])
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
            rows.append([str(s.step), s.op, grad_out, "; ".join(jacs), "; ".join(grads)])
        return rows

    HEADER = ("step", "op", "dL/d(output)", "local Jacobian d(out)/d(in)", "dL/d(inputs)")

    def __str__(self) -> str:
        rows = [list(self.HEADER), *self.rows()]
        widths = [max(len(r[i]) for r in rows) for i in range(len(self.HEADER))]
        lines = []
        for n, row in enumerate(rows):
            lines.append("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
            if n == 0:
                lines.append("  ".join("-" * w for w in widths))
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"<BackwardTrace: {len(self.steps)} steps>\n{self}"

    def _repr_html_(self) -> str:
        head = "".join(f"<th style='text-align:left'>{html.escape(h)}</th>" for h in self.HEADER)
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


def trace_backward(loss, gradient=None, params=None, small: int = SMALL) -> BackwardTrace:
    """Run the backward pass of ``loss`` step by step and return it as a table.

    One :class:`BackwardStep` per node, in the engine's order (the same order and the
    same VJPs as ``loss.backward()``): the op, the shape of the gradient it
    receives, its local Jacobians' shapes, the shapes of the gradients it passes
    on, and values for tensors with at most ``small`` elements.  No ``.grad`` is
    changed and the graph is not freed (see the module docstring).

    Example::

        x = autodiff.tensor([1.0, 2.0], requires_grad=True); x.name = "x"
        print(trace_backward((x * x).sum()))
        # step  op                        dL/d(output)   local Jacobian d(out)/d(in)             dL/d(inputs)
        # ----  ------------------------  -------------  --------------------------------------  ----------------------------------
        # 1     SumBackward               () = 1         ()x(2,) = 1x2                           (2,) = [1, 1]
        # 2     MulBackward               (2,) = [1, 1]  x: (2,)x(2,) = 2x2; y: (2,)x(2,) = 2x2  x: (2,) = [1, 2]; y: (2,) = [1, 2]
        # 3     AccumulateGrad -> x.grad  (2,) = [2, 4]
    """
    if not isinstance(loss, Tensor):
        raise TypeError(f"trace_backward: expected a Tensor, got {type(loss).__name__}")
    (root,) = _root_nodes(loss, "trace_backward")
    graph = trace_graph(loss, params=params, max_nodes=None)
    order = topological_order(root)
    position = {node: i for i, node in enumerate(order)}
    labels = {t.id: t.label for t in graph.tensors}
    for node in order:
        if type(node) is Node and node.released:
            raise RuntimeError(
                f"trace_backward: the graph was freed by an earlier backward() ({node.name()} "
                "has no saved values): call trace_backward(loss) before loss.backward(), or "
                "call loss.backward(retain_graph=True)"
            )

    def value(array):
        return summarize(array, small) if array.size <= small else None

    steps, grads = [], {}
    received = {}  # node -> the gradient it has received so far (for the updates column)
    passes = autodiff.backward_steps(loss, gradient, retain_graph=True, name="trace_backward")
    for count, (node, grad, grad_inputs) in enumerate(passes, start=1):
        if type(node) is AccumulateGrad:
            name = labels.get(f"t{position[node]}") or f"leaf {position[node]}"
            grads[name] = grad.data
            steps.append(
                BackwardStep(
                    count,
                    "AccumulateGrad",
                    f"t{position[node]}",
                    name,
                    "x.grad += dL/dx",
                    tuple(grad.shape),
                    value(grad.data),
                    grad_output_summary=summarize(grad.data),
                )
            )
            continue
        rule = op_rule(node.function)[1]
        step = BackwardStep(
            count,
            node.name(),
            f"op{position[node]}",
            None,
            rule,
            tuple(grad.shape),
            value(grad.data),
            grad_output_summary=summarize(grad.data),
            input_names=input_names(rule, len(node.next_functions)),
        )
        for child, g in zip(node.next_functions, grad_inputs, strict=True):
            if g is None:
                step.jacobians.append(None)
                step.grad_inputs.append(None)
                step.grad_input_values.append(None)
                step.input_ids.append(None)
                continue
            step.jacobians.append(_jacobian(node.shape, child.shape))
            step.grad_inputs.append(tuple(g.shape))
            step.grad_input_values.append(value(g.data))
            step.input_ids.append(f"t{position[child]}")
            received[child] = received[child] + g.data if child in received else g.data
            step.updates.append((f"t{position[child]}", summarize(received[child])))
        steps.append(step)
    trace = BackwardTrace(steps, grads, graph)
    if gradient is not None:
        trace.seed = summarize(gradient.data if isinstance(gradient, Tensor) else gradient)
    return trace
