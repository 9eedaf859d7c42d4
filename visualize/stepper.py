"""A self-contained HTML page that steps through back-propagation.

``backward_stepper(loss, path)`` draws the graph (with values), runs the backward
pass step by step as :func:`visualize.trace_backward` does, and writes ONE HTML
file: the SVG picture, the steps as JSON and a few lines of inline JavaScript.  No
network, no server: open the file in a browser.  "Next" highlights the op the
engine processes at that step, lists the gradient it receives (dL/d(output)) and
what it sends to each input, and fills in the inputs' gradients (a tensor used
several times shows the running sum of its contributions); "Previous" goes back; the arrow keys do
the same, and ``#step=N`` in the address opens step N.

Like ``trace_backward`` it changes no ``.grad`` and does not free the graph.
"""

from __future__ import annotations

import dataclasses
import html
import json
import os

from autodiff.files import atomic_write

from .backward import trace_backward
from .dot import to_digraph
from .trace import GraphTooLargeError

STEPPER_TB_OPS = 6  # this many ops or more: the stepper's picture runs top to bottom

_CSS = """
html, body { height: 100%; }
body { font-family: Helvetica, Arial, sans-serif; margin: 0; color: #222;
       display: flex; flex-direction: column; }
header { flex: none; padding: 10px 16px; background: #f3f3f3; border-bottom: 1px solid #ccc; }
header h1 { font-size: 17px; margin: 0 0 6px 0; }
button { font-size: 15px; padding: 4px 14px; margin-right: 6px; }
#counter { font-weight: bold; margin: 0 10px; }
#explain { font-family: monospace; white-space: pre-wrap; margin-top: 6px; font-size: 13px;
           min-height: 4.5em; }
#graph { flex: 1; padding: 10px; overflow: auto; min-height: 0; }
#graph svg { height: auto; }
#graph.fit svg { max-width: 100%; }
label { font-size: 13px; margin-left: 10px; }
g.node.current ellipse, g.node.current polygon, g.node.current path {
  stroke: #e69138; stroke-width: 4px; fill: #fce5cd; }
g.node.receives ellipse, g.node.receives polygon, g.node.receives path {
  stroke: #3c78d8; stroke-width: 3px; }
g.node.done ellipse { fill: #d9d2e9; }
text.pending { fill: #aaaaaa; }
"""

_JS = """
(function () {
  var data = JSON.parse(document.getElementById('steps-data').textContent);
  var steps = data.steps;
  var svg = document.querySelector('#graph svg');
  var gradTexts = {};   // tensor id -> [text element, computed text]
  Array.prototype.forEach.call(svg.querySelectorAll('g.node'), function (g) {
    Array.prototype.forEach.call(g.querySelectorAll('text'), function (t) {
      if (t.textContent.indexOf('grad ') === 0) { gradTexts[g.id] = [t, t.textContent]; }
    });
  });
  function node(id) { return id ? document.getElementById(id) : null; }
  var current = 0;
  function show(k) {
    current = Math.max(0, Math.min(steps.length, k));
    Array.prototype.forEach.call(svg.querySelectorAll('g.node'), function (g) {
      g.classList.remove('current'); g.classList.remove('receives'); g.classList.remove('done');
    });
    Object.keys(gradTexts).forEach(function (id) {
      var entry = gradTexts[id], history = data.filled[id] || [], text = null;
      history.forEach(function (h) { if (h[0] <= current) { text = h[1]; } });
      entry[0].textContent = text === null ? 'grad ?' : 'grad ' + text;
      if (text !== null) { entry[0].classList.remove('pending'); } else { entry[0].classList.add('pending'); }
    });
    for (var i = 0; i < current - 1; i++) {
      var done = node(steps[i].node); if (done) { done.classList.add('done'); }
    }
    var text;
    if (current === 0) {
      text = data.intro;
      var root = node(data.root);  // backward starts at the root: dL/dL = 1
      if (root) {
        root.classList.add('current');
        if (root.scrollIntoView) { root.scrollIntoView({block: 'center', inline: 'center', behavior: 'instant'}); }
      }
    } else {
      var s = steps[current - 1];
      var here = node(s.node); if (here) { here.classList.add('current'); }
      s.inputs.forEach(function (id) { var n = node(id); if (n) { n.classList.add('receives'); } });
      text = s.text;
      if (here && here.scrollIntoView) {
        here.scrollIntoView({block: 'center', inline: 'center', behavior: 'instant'});
      }
    }
    document.getElementById('counter').textContent = 'step ' + current + ' / ' + steps.length;
    document.getElementById('explain').textContent = text;
    document.getElementById('prev').disabled = current === 0;
    document.getElementById('next').disabled = current === steps.length;
    document.body.setAttribute('data-step', String(current));
  }
  document.getElementById('next').addEventListener('click', function () { show(current + 1); });
  document.getElementById('prev').addEventListener('click', function () { show(current - 1); });
  document.getElementById('reset').addEventListener('click', function () { show(0); });
  document.getElementById('fit').addEventListener('change', function (e) {
    document.getElementById('graph').classList.toggle('fit', e.target.checked);
  });
  document.addEventListener('keydown', function (e) {
    if (e.key === 'ArrowRight') { show(current + 1); }
    if (e.key === 'ArrowLeft') { show(current - 1); }
  });
  // Fit to the window from the start; unticking it shows the picture at full size.
  document.getElementById('fit').checked = true;
  document.getElementById('graph').classList.add('fit');
  var match = /step=(\\d+)/.exec(window.location.hash);
  show(match ? parseInt(match[1], 10) : 0);
})();
"""


def _step_text(step, total, names) -> str:
    if step.is_accumulate:
        return (
            f"Step {step.step}/{total}: AccumulateGrad\n"
            f"the leaf {step.target} receives its gradient: {step.target}.grad += "
            f"{step.grad_output_summary}   shape {step.grad_output}"
        )
    where = f" (in {step.module})" if step.module else ""
    lines = [
        f"Step {step.step}/{total}: {step.op}{where}",
        f"receives dL/d(output) = {step.grad_output_summary}   shape {step.grad_output}",
    ]
    if step.rule:
        lines.append("rule: " + "   ".join(step.rule.splitlines()))
    rule_names = step.input_names or [None] * len(step.input_ids)
    for index, (target, shape, jac, value) in enumerate(
        zip(step.input_ids, step.grad_inputs, step.jacobians, step.grad_input_values)
    ):
        which = f"input {rule_names[index]}" if rule_names[index] else f"input {index}"
        if target is None:
            if rule_names[index]:  # a tensor input that takes no gradient
                lines.append(f"{which}: no gradient (a constant)")
            continue
        shown = f" = {value}" if value is not None else ""
        lines.append(
            f"{which} ({names.get(target) or target}): gets dL/d{rule_names[index] or 'x'} of "
            f"shape {shape}{shown}   (Jacobian {jac})"
        )
    return "\n".join(lines)


def backward_stepper(
    loss,
    path,
    params=None,
    title: str | None = None,
    show_rules: bool = True,
    max_nodes: int | None = 200,
    rankdir: str | None = None,
    detail: str = "lecture",
    expand=None,
) -> str:
    """Write a self-contained HTML page that steps through ``loss``'s backward pass.

    ``path``: the ``.html`` file to write (atomically).  ``params`` names
    parameters (a dict or the model).  Needs Graphviz's ``dot`` to lay out the
    picture.  ``detail="lecture"`` (the default) steps through the layers as the
    lecture draws them (cross_entropy, linear, flatten, max_pool2d, relu, conv2d, ...),
    ``detail="primitives"`` through every recorded op; ``expand`` opens layers (see
    ``draw_graph``).  The page opens on the root (dL/dL = 1), fitted to the window,
    and keeps the current op in view (``rankdir`` None: top to bottom from
    ``STEPPER_TB_OPS`` ops on, so that the fitted picture stays readable).  No ``.grad`` is changed and the graph is not
    freed.  Returns ``path``.

    Example::

        x = autodiff.tensor([1.0, -2.0], requires_grad=True); x.name = "x"
        loss = (x.tanh() * x).sum()
        visualize.backward_stepper(loss, "backprop.html")   # open it in a browser
    """
    trace = trace_backward(loss, params=params, detail=detail, expand=expand)
    graph = trace.graph
    if max_nodes is not None and len(graph) > max_nodes:
        raise GraphTooLargeError(
            f"backward_stepper: the graph has {len(graph)} nodes, more than max_nodes="
            f"{max_nodes}; step through a smaller graph (e.g. one batch of a few samples, "
            "or one layer), or raise max_nodes"
        )
    # The gradient of each tensor as it builds up: the seed dL/dL at step 0, then
    # each consumer's contribution added when that consumer is processed.
    filled = {graph.roots[0]: [[0, trace.seed]]}
    for step in trace.steps:
        for tensor_id, text in step.updates:
            filled.setdefault(tensor_id, []).append([step.step, text])
    by_id = {t.id: t for t in graph.tensors}
    for tensor_id, history in filled.items():
        by_id[tensor_id] = dataclasses.replace(
            by_id[tensor_id], grad=history[-1][1], grad_note=None
        )
    # Number the picture like the steps (they differ only if some node receives no
    # gradient, e.g. from a custom backward returning None, and is skipped).
    step_of = {s.node_id: s.step for s in trace.steps}
    for tensor_id, tensor in by_id.items():
        if tensor.producer is None:
            by_id[tensor_id] = dataclasses.replace(tensor, step=step_of.get(tensor_id))
    graph = dataclasses.replace(
        graph,
        tensors=[by_id[t.id] for t in graph.tensors],
        ops=[dataclasses.replace(op, step=step_of.get(op.id, 0)) for op in graph.ops],
        backward_done=True,
        note="backward step by step: grad = dL/d(tensor)",
    )
    dot = to_digraph(
        graph,
        show_values=True,
        show_grads=True,
        show_rules=show_rules,
        show_order=True,
        max_nodes=None,
        # a page scrolls down: past a few ops, top to bottom keeps the fitted text readable
        rankdir=rankdir or ("TB" if len(graph.ops) >= STEPPER_TB_OPS else "LR"),
    )
    svg = dot.pipe(format="svg").decode("utf-8")
    svg = svg[svg.index("<svg") :]  # drop the XML prolog and doctype
    op_names = {op.id: op.name for op in graph.ops}
    names = {}
    for t in graph.tensors:
        if t.label:
            names[t.id] = t.label
        elif t.producer:
            names[t.id] = f"output of {op_names[t.producer]}"
        else:
            names[t.id] = "leaf"
    total = len(trace.steps)
    data = {
        "steps": [
            {
                "node": s.node_id,
                "inputs": [i for i in s.input_ids if i is not None],
                "text": _step_text(s, total, names),
            }
            for s in trace.steps
        ],
        "filled": filled,
        "root": graph.roots[0],
        "intro": (
            f"Forward pass done: every value is known; the only gradient is the root's "
            f"(dL/dL = {trace.seed}), highlighted. Backward takes {total} steps, from the "
            "root to the leaves. Press Next (or the right arrow key)."
        ),
    }
    payload = json.dumps(data).replace("</", "<\\/")
    heading = html.escape(title or "Back-propagation, step by step")
    page = f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{heading}</title>
<style>{_CSS}</style>
</head>
<body data-step="0">
<header>
<h1>{heading}</h1>
<button id="prev" type="button">&#8592; Previous</button>
<button id="next" type="button">Next &#8594;</button>
<button id="reset" type="button">Reset</button>
<span id="counter"></span>
<label><input type="checkbox" id="fit" checked> fit to window</label>
<div id="explain"></div>
</header>
<div id="graph">
{svg}
</div>
<script type="application/json" id="steps-data">{payload}</script>
<script>{_JS}</script>
</body>
</html>
"""
    path = os.fspath(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with atomic_write(path, "w", encoding="utf-8") as file:
        file.write(page)
    return path
