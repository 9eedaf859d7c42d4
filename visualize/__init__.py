"""Pictures of the computation graph and of back-propagation.

* :func:`draw_graph` draws the graph behind a tensor as a ``graphviz.Digraph``
  (inline in Jupyter; ``.render()``/``.pipe()``/``.save_as()`` write SVG, PNG, PDF),
  by default at the lecture's level (``conv2d``, ``max_pool2d``, ``cross_entropy``:
  one op each, with its formula), or every recorded op with ``detail="primitives"``;
* :func:`trace_graph` gives the same graph as plain data (for tests and tools);
* :func:`trace_backward` prints the backward pass as a table, one row per step;
* :func:`backward_stepper` writes one self-contained HTML page that steps through
  back-propagation with Next/Previous buttons;
* :func:`track_modules` records which ``nn.Module`` ran each op, for clusters (a
  model's forward in grad mode records it anyway; this also names other modules);
* :func:`retain_grads` keeps every intermediate gradient of the next ``backward()``;
* :func:`keep_values` keeps every intermediate value computed inside a ``with`` block;
* :func:`graph_command` draws the lecture's MLP or CNN (the ``autodiff graph`` command).

Example (the lecture's chain-rule diagram)::

    import autodiff, visualize
    a = autodiff.tensor(2.0, requires_grad=True); a.name = "a"
    b = autodiff.tensor(-3.0, requires_grad=True); b.name = "b"
    c = autodiff.tensor(10.0, requires_grad=True); c.name = "c"
    L = (a * b + c) * a
    visualize.retain_grads(L)      # keep dL/d(every intermediate) too
    L.backward()
    visualize.draw_graph(L, show_values=True, show_grads=True, show_rules=True)
"""

from __future__ import annotations

from .backward import BackwardStep, BackwardTrace, trace_backward
from .command import build_model, graph_command
from .dot import Digraph, GraphvizNotInstalledError, to_digraph
from .stepper import backward_stepper
from .trace import (
    DEFAULT_MAX_NODES,
    Edge,
    Graph,
    GraphTooLargeError,
    ModuleInfo,
    ModuleTracker,
    OpNode,
    TensorNode,
    keep_values,
    retain_grads,
    summarize,
    trace_graph,
    track_modules,
)

__all__ = [
    "DEFAULT_MAX_NODES",
    "BackwardStep",
    "BackwardTrace",
    "Digraph",
    "Edge",
    "Graph",
    "GraphTooLargeError",
    "GraphvizNotInstalledError",
    "ModuleInfo",
    "ModuleTracker",
    "OpNode",
    "TensorNode",
    "backward_stepper",
    "build_model",
    "draw_graph",
    "graph_command",
    "keep_values",
    "make_dot",
    "retain_grads",
    "summarize",
    "to_digraph",
    "trace_backward",
    "trace_graph",
    "track_modules",
]


def draw_graph(
    root,
    params=None,
    show_values: bool = True,
    show_grads: bool = True,
    show_rules: bool = False,
    show_order: bool = False,
    modules: bool | None = None,
    collapse=None,
    max_nodes: int | None = DEFAULT_MAX_NODES,
    legend: bool = True,
    rankdir: str | None = None,
    highlight=None,
    detail: str = "lecture",
    expand=None,
) -> Digraph:
    """Draw the computation graph behind ``root`` (a tensor, or a list of tensors).

    One box per tensor (leaves, parameters, intermediates, the root and the
    constant inputs such as the input batch and the targets coloured apart; shape
    and dtype, and with ``show_values``/``show_grads`` the value and ``.grad``:
    numbers for tiny tensors, min/mean/max for larger ones) and one ellipse per op
    (with ``show_rules`` its forward formula and local derivative rule, e.g.
    ``dL/dx = dL/dz * y``; with ``show_order`` its step in the order ``backward()``
    processes the graph).  Before ``backward()`` the picture says that there are no
    gradients yet instead of showing zeros.  Gradients shown are what the engine
    stored: the leaves' ``.grad`` (which accumulates over backward calls until
    zeroed) and intermediate gradients kept by ``retain_grad()`` or
    :func:`retain_grads`; values of temporaries and constants need :func:`keep_values`.

    ``detail="lecture"`` (the default) draws each layer of ``nn.functional`` as the
    lecture does: one op (``conv2d``: ``y = W * x + b``; ``max_pool2d``;
    ``cross_entropy``: ``L = -log softmax(z)_y``) between its real inputs and its
    output, with none of the ops it is computed with; ``detail="primitives"`` draws
    every recorded op.  ``expand=["conv2d"]`` (region names, or ids of drawn ops)
    opens those layers.

    ``params``: ``dict(model.named_parameters())`` or the model, to name parameters.
    ``modules``: draw ``nn.Module`` clusters (None: when the graph knows the modules:
    a model's forward in grad mode records them, as does ``track_modules``);
    ``collapse=True`` draws each innermost module as one node, ``collapse=1`` each
    child of the model, a path or list of paths those modules
    (``collapse="CrossEntropyLoss"``); by default (None) runs of repeated modules
    are drawn as one box once the picture is large, with a line saying so
    (``collapse=False`` draws them all).  ``max_nodes`` guards against unreadable
    pictures (``GraphTooLargeError``; None: no limit).  ``rankdir``: "LR" (left to
    right, like the lecture's diagrams) or "TB"; None: top to bottom for deep
    networks (10 ops or more).  ``highlight``: an op to mark in red: what
    ``autodiff.testing.check_graph`` returned (its first wrong op), one of its
    entries, or a node (``tensor.grad_fn``).

    Returns a :class:`Digraph` (a ``graphviz.Digraph``): displayed inline in
    Jupyter; ``g.render("graph", format="png")`` or ``g.save_as("graph.svg")``.
    """
    graph = trace_graph(
        root,
        params=params,
        max_nodes=None if collapse is not False else max_nodes,
        detail=detail,
        expand=expand,
    )
    highlighted = _op_to_highlight(graph, highlight)
    return to_digraph(
        graph,
        show_values=show_values,
        show_grads=show_grads,
        show_rules=show_rules,
        show_order=show_order,
        modules=modules,
        collapse=collapse,
        legend=legend,
        rankdir=rankdir,
        max_nodes=max_nodes,
        highlight=highlighted,
    )


def _op_to_highlight(graph, highlight) -> str | None:
    """The id, in ``graph``, of the op that ``highlight`` names (see ``draw_graph``)."""
    if highlight is None:
        return None
    node = getattr(highlight, "wrong", highlight)  # a check_graph report: its first wrong op
    if node is None:
        return None  # every op was right: nothing to mark
    node = getattr(node, "node", node)  # one op of the report
    for op in graph.ops:
        if op.node is node:
            return op.id
    for op in graph.ops:  # at the lecture level: the layer that holds the node
        if any(member.node is node for member in op.members):
            return op.id
    raise ValueError(f"draw_graph: highlight={highlight!r} is not an op of this graph")


def make_dot(var, params=None, show_attrs=False, show_saved=False, max_attr_chars=50) -> Digraph:
    """torchviz's ``make_dot`` signature: the graph with names, shapes and dtypes only.

    ``show_attrs`` shows each op's formula and derivative rule (torchviz shows the
    node's attributes); ``show_saved`` shows values (torchviz shows saved tensors);
    ``max_attr_chars`` is accepted for compatibility.  See :func:`draw_graph` for more.
    """
    return draw_graph(
        var,
        params=params,
        show_values=bool(show_saved),
        show_grads=False,
        show_rules=bool(show_attrs),
        max_nodes=None,
    )
