"""Plain graph data -> ``graphviz.Digraph``: styles per kind, a legend, module clusters.

Colours (also drawn in the legend of every picture):

* light blue box: a **leaf** tensor (created by the user with ``requires_grad=True``);
* light green box: a **parameter** (a leaf named by ``params`` or by the tracked model);
* white box: an **intermediate** tensor (an op's output);
* gold box: the **root** (the tensor ``backward()`` starts from, usually the loss);
* grey ellipse: an **op**; its backward step number and local derivative rule on request;
* dashed rounded frame: an ``nn.Module`` (``collapse`` draws each as one lilac box).

The returned :class:`Digraph` is a ``graphviz.Digraph``: it shows inline in Jupyter,
``.source`` is its DOT text (no Graphviz needed), ``.render(path, format="png")`` and
``.pipe(format="svg")`` need Graphviz's ``dot`` program and say how to install it
when it is missing.
"""

from __future__ import annotations

import dataclasses
import html
import os

import graphviz

from autodiff.files import atomic_write

from .trace import Graph, GraphTooLargeError, ModuleInfo

COLORS = {
    "leaf": "#cfe2f3",
    "parameter": "#d9ead3",
    "intermediate": "#ffffff",
    "root": "#ffe599",
    "constant": "#f3f3f3",
    "op": "#eeeeee",
    "module": "#e6dcf0",
}
GRAD_COLOR = "#b00020"
RULE_COLOR = "#444444"
WRONG_COLOR = "#f4cccc"  # fill of the op highlighted as wrong (autodiff.testing.check_graph)
KIND_TITLES = {
    "leaf": "leaf (requires_grad)",
    "parameter": "parameter",
    "intermediate": "intermediate",
    "root": "root (output)",
    "constant": "constant (no grad)",
}

INSTALL_HINT = (
    "Graphviz's 'dot' program is needed to render the graph (building the Digraph and its "
    ".source works without it). Install Graphviz: 'apt-get install graphviz' (Debian/Ubuntu), "
    "'brew install graphviz' (macOS), 'conda install graphviz', or see "
    "https://graphviz.org/download/; then make sure 'dot' is on your PATH."
)


class GraphvizNotInstalledError(graphviz.ExecutableNotFound):
    """Rendering needs Graphviz's ``dot`` executable, which was not found."""

    def __init__(self, message: str = INSTALL_HINT) -> None:
        RuntimeError.__init__(self, message)


class Digraph(graphviz.Digraph):
    """A ``graphviz.Digraph`` whose rendering errors say how to install Graphviz.

    ``render`` writes the file atomically (a temporary name, then ``os.replace``).
    """

    def pipe(self, *args, **kwargs):
        try:
            return super().pipe(*args, **kwargs)
        except graphviz.ExecutableNotFound as error:
            raise GraphvizNotInstalledError() from error

    def render(self, filename=None, directory=None, view=False, cleanup=False, format=None, **kw):
        try:
            return super().render(
                filename, directory=directory, view=view, cleanup=cleanup, format=format, **kw
            )
        except graphviz.ExecutableNotFound as error:
            raise GraphvizNotInstalledError() from error

    def save_as(self, path, format: str | None = None) -> str:
        """Render to exactly ``path`` (format from the extension unless given); returns it.

        ``.svg``, ``.png``, ``.pdf`` and ``.dot``/``.gv`` (the DOT text) are understood.
        """
        path = os.fspath(path)
        fmt = format or os.path.splitext(path)[1].lstrip(".").lower() or "svg"
        if fmt in ("dot", "gv"):
            data = self.source.encode("utf-8")
        else:
            data = self.pipe(format=fmt)
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        with atomic_write(path) as file:
            file.write(data)
        return path


# -- labels ------------------------------------------------------------------------------


def _e(text) -> str:
    return html.escape(str(text), quote=True)


def _shape_text(shape, dtype) -> str:
    if len(shape) == 0:
        return f"scalar  {dtype}"
    return f"{tuple(shape)}  {dtype}"


def tensor_label(node, show_values=True, show_grads=True, show_order=False) -> str:
    """The HTML-like label of a tensor node (a small table of lines)."""
    title = node.label if node.label else ""
    kind = {"leaf": "leaf", "parameter": "parameter", "root": "root", "constant": "constant"}.get(
        node.kind, ""
    )
    rows = []
    if title:
        head = f"<B>{_e(title)}</B>"
        if kind and node.kind != "parameter":
            head += f' <FONT POINT-SIZE="9">({kind})</FONT>'
        rows.append(head)
    elif kind:
        rows.append(f"<B>{kind}</B>")
    if show_order and node.producer is None and node.step is not None:
        rows.append(f'<FONT COLOR="#1155cc" POINT-SIZE="9">step {node.step}: .grad</FONT>')
    rows.append(f'<FONT POINT-SIZE="10">{_e(_shape_text(node.shape, node.dtype))}</FONT>')
    if show_values and node.value is not None:
        rows.append(f"data {_e(node.value)}")
    if show_grads and node.grad is not None:
        rows.append(f'<FONT COLOR="{GRAD_COLOR}">grad {_e(node.grad)}</FONT>')
    cells = "".join(f"<TR><TD>{row}</TD></TR>" for row in rows)
    return f'<<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="0" CELLPADDING="1">{cells}</TABLE>>'


def op_label(op, show_rules=False, show_order=False) -> str:
    rows = []
    head = f"<B>{_e(op.name)}</B>"
    if show_order:
        if op.step:
            step = f"step {op.step}"
        else:  # a layer on constants only records nothing: no gradient flows through it
            step = "no gradient" if op.region is not None and not op.members else "not reached"
        head = f'<FONT COLOR="#1155cc" POINT-SIZE="10">{step}</FONT>  ' + head
    rows.append(head)
    if op.region is not None and op.formula and not show_rules:  # a layer: its formula
        rows.append(f'<FONT POINT-SIZE="9">{_e(op.formula)}</FONT>')
    if show_rules:
        if op.formula:
            rows.append(f'<FONT POINT-SIZE="9">{_e(op.formula)}</FONT>')
        for line in op.rule.splitlines():
            rows.append(f'<FONT POINT-SIZE="9" COLOR="{RULE_COLOR}">{_e(line)}</FONT>')
    cells = "".join(f"<TR><TD>{row}</TD></TR>" for row in rows)
    return f'<<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="0" CELLPADDING="1">{cells}</TABLE>>'


# -- collapsing modules --------------------------------------------------------------------


def _group_of(path: str | None, collapse, modules) -> str | None:
    """The module path an op with innermost module ``path`` collapses into (or None).

    ``collapse=True``: the innermost modules (those with no submodule in the graph);
    an int ``d``: the modules at depth ``d`` (1 = the model's direct children);
    a path or a list of paths: those modules.
    """
    if path is None or path == "":
        return None
    if isinstance(collapse, dict):  # runs of repeated modules: module path -> one group
        for outer, group in collapse.items():
            if path == outer or path.startswith(outer + "."):
                return group
        return None
    if isinstance(collapse, (str, list, tuple, set, frozenset)):
        chosen = [collapse] if isinstance(collapse, str) else list(collapse)
        for outer in chosen:
            if path == outer or path.startswith(outer + "."):
                return outer
        return None
    if collapse is True:
        prefix = path + "."
        return None if any(other.startswith(prefix) for other in modules) else path
    parts = path.split(".")
    depth = int(collapse)
    if depth < 1 or len(parts) < depth:
        return None
    return ".".join(parts[:depth])


def _inside_group(path: str, groups) -> bool:
    return any(path == g or path.startswith(g + ".") for g in groups)


def collapse_modules(graph: Graph, collapse) -> dict:
    """Map each plain node id to what is drawn for it: itself or ``"mod:<path>"``.

    A module's ops and the tensors they produce become one node, except tensors
    used outside the module (its outputs) and the root; a leaf used only inside
    one module (its parameters, and constants the module made itself) is folded
    into that module's node.
    """
    rep = {}
    for op in graph.ops:
        group = _group_of(op.module, collapse, graph.modules)
        rep[op.id] = f"mod@{group}" if group is not None else op.id
    consumers = {}
    for edge in graph.edges:
        consumers.setdefault(edge.src, []).append(edge.dst)
    for tensor in graph.tensors:
        rep[tensor.id] = tensor.id
        users = {rep[c] for c in consumers.get(tensor.id, [])}
        if tensor.producer is not None:
            inner = rep[tensor.producer]
            if inner.startswith("mod@") and tensor.kind != "root" and users <= {inner}:
                rep[tensor.id] = inner
        elif len(users) == 1:
            (only,) = users
            if only.startswith("mod@") and tensor.kind == "parameter":
                rep[tensor.id] = only
            elif (
                only.startswith("mod@")
                and tensor.kind == "constant"
                and tensor.module
                and _inside_group(tensor.module, {only[4:]})
            ):
                rep[tensor.id] = only  # made inside the module: part of it
    return rep


# -- repeated modules ----------------------------------------------------------------------

AUTO_COLLAPSE_NODES = 80  # past this many nodes, runs of repeated modules are drawn as one box
DEEP_OPS = 10  # this many ops or more (a deep network) lay out top to bottom by default


def repeated_runs(graph: Graph, min_repeats: int = 3) -> dict:
    """Runs of repeated sibling modules to draw as one box: {module path: run id}.

    Siblings (the children of one module, in forward order) repeat when their class
    and parameter shapes follow a period of 1 to 4 modules (Linear, ReLU, Linear,
    ReLU, ...).  In each run of at least ``min_repeats`` periods, the first and the
    last period stay drawn and the modules between them become one box, whose
    ModuleInfo (added to ``graph.modules``) says what it holds.
    """
    first_step = {}
    for op in graph.ops:
        for path in _ancestors(op.module):
            first_step[path] = max(first_step.get(path, 0), op.step)
    shapes = {}
    for tensor in graph.tensors:
        if tensor.kind == "parameter" and tensor.module:
            shapes.setdefault(tensor.module, []).append(tuple(tensor.shape))
    children = {}
    for path, info in graph.modules.items():
        if info.parent is not None and path in first_step:
            children.setdefault(info.parent, []).append(path)
    runs = {}
    for paths in children.values():
        paths.sort(key=lambda p: -first_step[p])  # forward order
        signature = [(graph.modules[p].type_name, tuple(sorted(shapes.get(p, [])))) for p in paths]
        best = None
        for period in range(1, 5):
            start = 0
            while start + period < len(paths):
                end = start
                while end + period < len(paths) and signature[end] == signature[end + period]:
                    end += 1
                length = end - start + period  # modules in the run
                if length >= min_repeats * period and (best is None or length > best[2]):
                    best = (start, period, length)
                start = max(end, start + 1)
        if best is None:
            continue
        start, period, length = best
        middle = paths[start + period : start + length - period]
        if len(middle) < 2:
            continue
        key = f"{middle[0]}..{middle[-1]}"
        kinds = ", ".join(graph.modules[p].type_name for p in paths[start : start + period])
        graph.modules[key] = ModuleInfo(
            key, f"{len(middle)} modules: ({kinds}) repeated", graph.modules[middle[0]].parent
        )
        for path in middle:
            runs[path] = key
    return runs


def _ancestors(path):
    while path is not None:
        yield path
        if path == "":
            return
        path = path.rsplit(".", 1)[0] if "." in path else ""


# -- the Digraph ---------------------------------------------------------------------------


def to_digraph(
    graph: Graph,
    show_values: bool = True,
    show_grads: bool = True,
    show_rules: bool = False,
    show_order: bool = False,
    modules: bool | None = None,
    collapse=None,
    legend: bool = True,
    rankdir: str | None = None,
    max_nodes: int | None = None,
    highlight: str | None = None,
) -> Digraph:
    """Style a :class:`~visualize.trace.Graph` as a :class:`Digraph` (see the module docstring).

    ``modules``: draw module clusters (None: when the graph has module information).
    ``collapse``: True draws each innermost module as one node; an int ``d`` collapses
    the modules at depth ``d`` (1 = the model's direct children); a module path or a
    list of paths (``"CrossEntropyLoss"``, ``["linear_relu_stack.0"]``) collapses those;
    None (the default) draws runs of repeated modules as one box once the graph has more
    than ``AUTO_COLLAPSE_NODES`` nodes (a line on the picture says so); False never collapses.
    ``rankdir``: "LR" or "TB"; None: top to bottom for ``DEEP_OPS`` ops or more.
    """
    draw_clusters = bool(graph.modules) if modules is None else bool(modules)
    notes = list(graph.notes)
    graph = dataclasses.replace(graph, modules=dict(graph.modules))  # runs add to its modules
    if collapse is None:  # by default: runs of repeated modules, once the picture is large
        collapse = False
        if len(graph) > AUTO_COLLAPSE_NODES and graph.modules:
            runs = repeated_runs(graph)
            if runs:
                collapse = runs
                boxes = sorted(set(runs.values()))
                notes.append(
                    f"repeated modules {', '.join(boxes)} drawn as one box: "
                    "draw_graph(..., collapse=False) draws every module"
                )
    if rankdir is None:
        rankdir = "TB" if len(graph.ops) >= DEEP_OPS else "LR"
    if collapse and not graph.modules:
        raise ValueError(
            "draw_graph(collapse=...): the graph has no module information; run the forward "
            "pass inside 'with visualize.track_modules(model):' to record which module ran "
            "each op"
        )
    by_id = {n.id: n for n in graph.nodes}
    rep = collapse_modules(graph, collapse) if collapse else {n.id: n.id for n in graph.nodes}
    groups = {}
    for node_id, target in rep.items():
        if target.startswith("mod@"):
            groups.setdefault(target, []).append(node_id)
    group_paths = {g[4:] for g in groups}
    if isinstance(collapse, dict):  # the modules of a run are inside its box
        group_paths |= set(collapse)
    drawn = len(set(rep.values()))
    if max_nodes is not None and drawn > max_nodes:
        raise GraphTooLargeError(
            f"draw_graph: {drawn} nodes to draw, more than max_nodes={max_nodes}. Pass "
            "collapse=True (or collapse=1 for the coarsest view) with the forward run inside "
            "visualize.track_modules(model), raise max_nodes, or draw a smaller part."
        )

    dot = Digraph(name="autodiff")
    dot.attr(rankdir=rankdir, fontname="Helvetica", fontsize="12", nodesep="0.25", ranksep="0.35")
    dot.attr("node", fontname="Helvetica", fontsize="11", margin="0.08,0.04")
    dot.attr("edge", color="#555555", arrowsize="0.7")
    title = graph.note
    if show_grads and not graph.backward_done:
        title = "Gradients: none yet (drawn before backward())"
    elif show_grads and any(t.grad_note == "not retained" for t in graph.tensors):
        title += (
            "; intermediate gradients not kept (call visualize.retain_grads(loss) "
            "before backward() to see them)"
        )
    title = "\\l".join(line for line in [title, *notes] if line)
    if title:  # "\\l" ends a left-aligned line in a DOT label
        dot.attr(label=title + ("\\l" if notes else ""), labelloc="t", labeljust="l")

    clusters = {}
    if draw_clusters:
        for path, info in graph.modules.items():
            sub = graphviz.Digraph(name=f"cluster_m{len(clusters)}")
            sub.attr(
                label=info.title,
                style="rounded,dashed",
                color="#8e7cc3",
                fontcolor="#674ea7",
                fontsize="11",
            )
            clusters[path] = sub

    def place(module_path):
        while module_path is not None and _inside_group(module_path, group_paths):
            info = graph.modules.get(module_path)
            module_path = info.parent if info is not None else None
        if draw_clusters and module_path is not None and module_path in clusters:
            return clusters[module_path]
        return dot

    module_of = {}
    for tensor in graph.tensors:
        module_of[tensor.id] = tensor.module
    for op in graph.ops:
        module_of[op.id] = op.module

    emphasised = {highlight} if highlight else set()
    for tensor in graph.tensors:
        if rep[tensor.id] != tensor.id:
            continue
        style = {"root": "filled,rounded,bold", "constant": "filled,rounded,dashed"}.get(
            tensor.kind, "filled,rounded"
        )
        place(tensor.module).node(
            tensor.id,
            tensor_label(tensor, show_values, show_grads, show_order),
            shape="box",
            style=style,
            fillcolor=COLORS[tensor.kind],
            color="#666666" if tensor.id not in emphasised else "#e69138",
            id=tensor.id,
        )
    for op in graph.ops:
        if rep[op.id] != op.id:
            continue
        place(op.module).node(
            op.id,
            op_label(op, show_rules, show_order),
            shape="ellipse" if not show_rules else "box",
            style="filled" if not show_rules else "filled,rounded",
            fillcolor=COLORS["op"] if op.id not in emphasised else WRONG_COLOR,
            color="#888888" if op.id not in emphasised else "#cc0000",
            penwidth="1" if op.id not in emphasised else "3",
            id=op.id,
        )
    for group, members in groups.items():
        path = group[4:]
        info = graph.modules.get(path) or ModuleInfo(path, "Module", None)
        n_ops = sum(1 for m in members if m.startswith("op"))
        params = [by_id[m].label for m in members if getattr(by_id[m], "kind", None) == "parameter"]
        rows = [f"<B>{_e(path)}</B>"]
        if info.type_name != path:
            rows.append(_e(info.type_name))
        rows.append(f'<FONT POINT-SIZE="9">{n_ops} op{"s" if n_ops != 1 else ""}</FONT>')
        if params:
            short = list(dict.fromkeys(p.rsplit(".", 1)[-1] for p in params))
            count = f"{len(params)} " if len(params) > len(short) else ""
            rows.append(f'<FONT POINT-SIZE="9">{count}params: {_e(", ".join(short))}</FONT>')
        if show_order:
            steps = [by_id[m].step for m in members if m.startswith("op")]
            rows.append(
                f'<FONT COLOR="#1155cc" POINT-SIZE="9">steps {min(steps)}-{max(steps)}</FONT>'
            )
        cells = "".join(f"<TR><TD>{row}</TD></TR>" for row in rows)
        place(info.parent).node(
            group,
            f'<<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="0">{cells}</TABLE>>',
            shape="box3d",
            style="filled",
            fillcolor=COLORS["module"],
            color="#674ea7",
            margin="0.15,0.06",
            id=group.replace("@", "_").replace(".", "_"),
        )

    input_names = {op.id: op.input_names for op in graph.ops} if show_rules else {}
    seen = set()
    for edge in graph.edges:
        src, dst = rep[edge.src], rep[edge.dst]
        if src == dst or (src, dst) in seen:
            continue
        seen.add((src, dst))
        names = input_names.get(dst)
        if names and edge.index is not None and edge.index < len(names):
            dot.edge(src, dst, label=names[edge.index], fontsize="10", fontcolor=RULE_COLOR)
        else:
            dot.edge(src, dst)

    if draw_clusters:
        # Attach clusters deepest first, so each holds its sub-clusters when added to its parent.
        for path in sorted(clusters, key=lambda p: -graph.modules[p].depth):
            info = graph.modules[path]
            if _inside_group(path, group_paths):
                continue  # drawn as one node
            parent = info.parent
            target = clusters.get(parent, dot)
            target.subgraph(clusters[path])

    if legend:
        _add_legend(dot, graph, show_order, bool(groups), rep, rankdir)
    return dot


def _add_legend(dot, graph: Graph, show_order: bool, collapsed: bool, rep, rankdir) -> None:
    """One node holding a row of colour swatches (the same in any layout direction)."""
    present = {t.kind for t in graph.tensors if rep[t.id] == t.id}
    cells = []
    for kind in ("constant", "leaf", "parameter", "intermediate", "root"):
        if kind in present or kind in ("intermediate", "root"):
            cells.append((KIND_TITLES[kind], COLORS[kind], "box"))
    cells.append(("op (step = backward order)" if show_order else "op", COLORS["op"], "op"))
    if collapsed:
        cells.append(("module (collapsed)", COLORS["module"], "box"))
    row = "".join(
        f'<TD BGCOLOR="{color}" BORDER="1" COLOR="#666666" STYLE="{"rounded" if shape == "op" else ""}"'
        f' CELLPADDING="3"><FONT POINT-SIZE="9">{_e(text)}</FONT></TD>'
        for text, color, shape in cells
    )
    label = (
        '<<TABLE BORDER="0" CELLSPACING="4" CELLPADDING="0"><TR><TD><FONT POINT-SIZE="9">'
        f"legend</FONT></TD>{row}</TR></TABLE>>"
    )
    dot.node("legend", label, shape="plaintext")
