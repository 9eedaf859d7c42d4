"""A recorded graph as plain data: tensor nodes, op nodes, edges and modules.

``trace_graph(root)`` walks the graph behind ``root`` with the engine's own
``topological_order`` and returns a :class:`Graph` of dataclasses that tests can
inspect and that ``visualize.dot`` turns into a picture.  The graph reads in the
forward direction, as the lecture draws it::

    leaf/parameter tensor ──> op ──> intermediate tensor ──> op ──> root tensor

* one :class:`TensorNode` per tensor: the leaves that require grad (a
  ``parameter`` when it is named by ``params``), every op's output (an
  ``intermediate``) and the ``root``;
* one :class:`OpNode` per recorded op, with the op's forward formula and its
  vector-Jacobian rule (read from the docstring of the op's ``Function``) and its
  ``step``: the position at which ``backward()`` processes it (1 is the root's op);
* module boundaries: recorded by ``nn.Module.__call__`` whenever the forward pass
  runs in grad mode (or by ``with visualize.track_modules(model):``);
* at ``detail="lecture"`` (the default), each layer of ``nn.functional`` that marked
  its ops as a region (``autodiff.region``) as one op (see ``visualize.lecture``).

Values and gradients are read, never computed: an intermediate tensor's value is
known while the tensor is alive (the node keeps only a weak reference to it) or
when its op saved it for backward; an intermediate's gradient is known when
``retain_grad()`` (or :func:`retain_grads`) was called before ``backward()``.
"""

from __future__ import annotations

import dataclasses
import re
import weakref
from dataclasses import dataclass, field

import numpy as np

import autodiff
from autodiff import Tensor
from autodiff.engine import gradient_node, topological_order
from autodiff.function import AccumulateGrad, Node
from autodiff.region import made_by

# The keys of visualize's tags in ``Node.annotations``.
_MODULE_TAG = "visualize.module"
_GRAD_TAG = "visualize.grad"
_VALUE_TAG = "visualize.value"
_CONSTANTS_TAG = "visualize.constants"

DEFAULT_MAX_NODES = 600


class GraphTooLargeError(ValueError):
    """The graph has more nodes than ``max_nodes`` allows."""


# -- the plain data -------------------------------------------------------------------


@dataclass
class TensorNode:
    """A tensor in the graph.

    ``kind`` is "leaf" (a user tensor with requires_grad=True), "parameter" (a leaf
    named by ``params``), "intermediate" (an op's output), "root", or "constant" (an
    input that takes no gradient, such as the input images, the targets or a mask:
    one that an op saved for backward, a layer's input, or, inside ``keep_values()``,
    any input; its value is shown when kept).  ``value`` and
    ``grad`` are short text summaries (None when unknown); ``grad_note`` says why
    a gradient is missing.  ``step`` is the backward step at which the tensor's
    gradient is complete.
    """

    id: str
    kind: str
    label: str | None
    shape: tuple
    dtype: str
    value: str | None = None
    grad: str | None = None
    grad_note: str | None = None
    module: str | None = None
    step: int | None = None
    producer: str | None = None  # id of the op that computed it (None for leaves)


@dataclass
class OpNode:
    """A recorded operation: ``name`` is the Function's name ("Mul"), ``backward_name``
    the engine's node name ("MulBackward"), ``formula`` the forward formula and
    ``rule`` the vector-Jacobian products, one per line, from the docstring."""

    id: str
    name: str
    backward_name: str
    formula: str
    rule: str
    step: int
    module: str | None = None
    output: str | None = None  # id of the output tensor node
    input_names: list = field(default_factory=list)  # the rule's names of the inputs ("x", "y")
    node: object = field(default=None, repr=False, compare=False)  # the engine's node (grad_fn)
    # the lecture-level regions it was recorded in, outermost first (autodiff.region)
    regions: tuple = field(default=(), repr=False, compare=False)
    # at detail="lecture": the recorded ops (OpNodes) this op stands for
    members: list = field(default_factory=list, repr=False, compare=False)
    region: object = field(default=None, repr=False, compare=False)  # the region drawn


@dataclass
class Edge:
    """An arrow in the forward direction: tensor -> op (input ``index``) or op -> tensor."""

    src: str
    dst: str
    index: int | None = None


@dataclass
class ModuleInfo:
    """An ``nn.Module`` that ran during the forward pass: its dotted path and class."""

    path: str
    type_name: str
    parent: str | None

    @property
    def depth(self) -> int:
        return 0 if self.path == "" else self.path.count(".") + 1

    @property
    def title(self) -> str:
        if self.path in ("", self.type_name):
            return self.type_name
        return f"{self.path}: {self.type_name}"


@dataclass
class Graph:
    """The whole graph. ``status`` is "before backward", "after backward" or
    "after backward (graph freed)"; ``note`` explains what the gradients mean."""

    tensors: list[TensorNode] = field(default_factory=list)
    ops: list[OpNode] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)
    modules: dict[str, ModuleInfo] = field(default_factory=dict)
    roots: list[str] = field(default_factory=list)
    backward_done: bool = False
    freed: bool = False
    note: str = ""
    detail: str = "primitives"
    # id(region) -> [(slot, tensor id)]: where each region's inputs are drawn
    region_inputs: dict = field(default_factory=dict, repr=False, compare=False)
    # layers computed on constants only, nothing recorded (nn.Flatten on the input
    # batch): [(region, [(slot, constant id)], output constant id, module path)]
    constant_layers: list = field(default_factory=list, repr=False, compare=False)
    notes: list = field(default_factory=list)  # more lines for the picture's title

    @property
    def nodes(self) -> list:
        return [*self.tensors, *self.ops]

    def node(self, node_id: str):
        for node in self.nodes:
            if node.id == node_id:
                return node
        raise KeyError(node_id)

    def tensor(self, label: str) -> TensorNode:
        """The tensor node with this label (a parameter name or a tensor's ``.name``)."""
        for node in self.tensors:
            if node.label == label:
                return node
        raise KeyError(label)

    def inputs_of(self, op_id: str) -> list[str]:
        edges = [e for e in self.edges if e.dst == op_id]
        return [e.src for e in sorted(edges, key=lambda e: e.index or 0)]

    def consumers_of(self, tensor_id: str) -> list[str]:
        return [e.dst for e in self.edges if e.src == tensor_id]

    def __len__(self) -> int:
        return len(self.tensors) + len(self.ops)

    def __repr__(self) -> str:
        return (
            f"Graph({len(self.tensors)} tensors, {len(self.ops)} ops, {len(self.edges)} edges, "
            f"{len(self.modules)} modules, {self.note!r})"
        )


# -- summaries --------------------------------------------------------------------------


def _format_number(value) -> str:
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    value = float(value)
    if value == 0:
        return "0"
    if 1e-3 <= abs(value) < 1e5:
        text = f"{value:.4f}".rstrip("0").rstrip(".")
        return text if text not in ("", "-") else "0"
    return f"{value:.3e}"


def summarize(array, small: int = 6) -> str:
    """Text for a value: the number itself, a tiny array in full, else min/mean/max.

    >>> summarize(np.array(2.5))
    '2.5'
    >>> summarize(np.array([1.0, -2.0]))
    '[1, -2]'
    >>> summarize(np.arange(10.0))
    'min 0  mean 4.5  max 9'
    """
    array = np.asarray(array)
    if array.size == 1:
        return _format_number(array.reshape(()).item())
    if array.size == 0:
        return "(empty)"
    if array.size <= small and array.ndim <= 2:
        if array.ndim == 1:
            return "[" + ", ".join(_format_number(v) for v in array.tolist()) + "]"
        rows = ["[" + ", ".join(_format_number(v) for v in row) + "]" for row in array.tolist()]
        return "[" + ", ".join(rows) + "]"
    if array.dtype.kind == "b":
        return f"{int(array.sum())} of {array.size} true"
    data = array.astype(np.float64, copy=False)
    return (
        f"min {_format_number(data.min())}  mean {_format_number(data.mean())}  "
        f"max {_format_number(data.max())}"
    )


def op_rule(function) -> tuple[str, str]:
    """(forward formula, VJP lines) read from the first paragraph of a Function's docstring.

    The docstring reads ``"z = x * y        dL/dx = dL/dz * y        dL/dy = dL/dz * x"``:
    the text before the first ``dL/d`` is the forward formula; each ``dL/d...``
    (and each remark set apart by wide spaces) becomes one line of the rule.
    """
    doc = function.__dict__.get("__doc__") if isinstance(function, type) else None
    if not doc:
        return "", ""
    paragraph = doc.strip().split("\n\n")[0]
    pieces = [p.strip() for p in re.split(r"\s{3,}|\n", paragraph) if p.strip()]
    formula, rules = [], []
    for piece in pieces:
        if piece.startswith("dL/d") or rules:
            rules.append(piece)
        else:
            formula.append(piece)
    return " ".join(formula), "\n".join(rules)


def input_names(rule: str, n_inputs: int) -> list[str]:
    """The names the rule gives the op's inputs, in order ("dL/dx = ..." -> "x").

    Empty when the rule does not name exactly ``n_inputs`` inputs (then the names
    cannot be matched to the inputs safely).
    """
    names = []
    for line in rule.splitlines():
        match = re.match(r"dL/d(\w+)\s*=", line)
        if match and match.group(1) not in names:
            names.append(match.group(1))
    return names if len(names) == n_inputs and n_inputs > 1 else []


# -- tags on nodes ---------------------------------------------------------------------


def _tag(node, key, default=None):
    """The tag ``key`` of a node (``default`` when it has none)."""
    annotations = node.annotations
    return default if annotations is None else annotations.get(key, default)


def _set_tag(node, key, value) -> None:
    if node.annotations is None:
        node.annotations = {}
    node.annotations[key] = value


def _has_tag(node, key) -> bool:
    return node.annotations is not None and key in node.annotations


# -- module tracking -----------------------------------------------------------------


class _ModelInfo:
    """Shared by all nodes tagged while one model ran: class names and parameter names."""

    def __init__(self, model, prefix: str = ""):
        self.types = {}
        self.params = {}
        for path, module in model.named_modules():
            self.types[_join(prefix, path)] = type(module).__name__
        for name, param in model.named_parameters():
            self.params[id(param)] = (weakref.ref(param), _join(prefix, name))

    def param_name(self, tensor):
        entry = self.params.get(id(tensor))
        if entry is not None and entry[0]() is tensor:
            return entry[1]
        return None


def _join(prefix: str, path: str) -> str:
    return prefix + ("." if prefix and path else "") + path


def _tensors_in(value):
    if isinstance(value, Tensor):
        yield value
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _tensors_in(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _tensors_in(item)


def _is_inside(path: str, outer: str) -> bool:
    return outer == "" or path == outer or path.startswith(outer + ".")


def _tag_forward(path: str, info: _ModelInfo, inputs, output) -> None:
    """Tag the nodes a module's forward created: walk back from its outputs.

    The walk stops at the inputs' nodes (made before the forward), at leaves and at
    nodes already tagged by a module outside this one; nodes tagged by a submodule
    keep their (more precise) tag but are walked through, to reach the glue ops
    that this module itself ran.
    """
    stop = {t.grad_fn for t in _tensors_in(inputs) if t.grad_fn is not None}
    constant_inputs = {id(t) for t in _tensors_in(inputs) if not t.requires_grad}
    stack = [t.grad_fn for t in _tensors_in(output) if t.grad_fn is not None]
    seen = set()
    while stack:
        node = stack.pop()
        if node in seen or node in stop or type(node) is not Node:
            continue
        seen.add(node)
        if constant_inputs:
            # A constant that entered this module as an input belongs outside it
            # (the outermost module's hook runs last and has the final word).
            for entry in _tag(node, _CONSTANTS_TAG, {}).values():
                if entry[2] in constant_inputs:
                    entry[3] = (path, info)
        tag = _tag(node, _MODULE_TAG)
        if tag is None:
            _set_tag(node, _MODULE_TAG, (path, info))
        elif not _is_inside(tag[0], path) or tag[1] is not info:
            continue  # made before this forward, by another module
        stack.extend(child for child in node.next_functions if child is not None)


class ModuleTracker:
    """Forward hooks on every submodule of a model that tag the ops each one runs.

    Use it as a context manager around the forward pass (or call ``remove()``)::

        with visualize.track_modules(model):
            loss = loss_fn(model(X), y)
        visualize.draw_graph(loss)        # clusters: flatten, linear_relu_stack.0, ...
    """

    def __init__(self, model, *others):
        self.handles = []
        self.infos = []
        taken = set()
        for number, item in enumerate((model, *others)):
            if not hasattr(item, "named_modules") or not hasattr(item, "register_forward_hook"):
                raise TypeError(
                    f"track_modules: expected nn.Modules (with named_modules() and "
                    f"register_forward_hook()), got {type(item).__name__} as argument {number}"
                )
            # The first module's paths are its own ("linear_relu_stack.0"); the others
            # (e.g. the loss function) are prefixed with their class name.
            prefix = "" if number == 0 else type(item).__name__
            while prefix in taken:
                prefix += "_"
            taken.add(prefix)
            info = _ModelInfo(item, prefix)
            self.infos.append(info)
            for path, module in item.named_modules():
                hook = self._make_hook(_join(prefix, path), info)
                self.handles.append(module.register_forward_hook(hook))

    @property
    def info(self):
        return self.infos[0]

    @staticmethod
    def _make_hook(path, info):
        def hook(module, inputs, output):
            _tag_forward(path, info, inputs, output)

        return hook

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()
        self.handles = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()


def track_modules(model, *others) -> ModuleTracker:
    """Record which ``nn.Module`` ran each op of the forward passes that follow.

    ``others`` are more modules to track, such as the loss function
    (``track_modules(model, loss_fn)``); their clusters are named by their class.
    Returns a :class:`ModuleTracker` (a context manager; ``remove()`` stops
    tracking).  ``draw_graph`` then draws each module as a labelled cluster, names
    the model's parameters, and can ``collapse`` modules into single nodes.
    """
    return ModuleTracker(model, *others)


def retain_grads(root) -> int:
    """Keep the gradient of every op's output during the next ``backward()``.

    Like calling ``retain_grad()`` on every intermediate tensor, but it also works
    for temporaries that no variable holds (e.g. ``a * b`` in ``a * b + c``): a hook
    on each node stores the gradient that reaches it, for ``draw_graph`` to show.
    ``.grad`` of the tensors is not changed.  Returns the number of nodes hooked.
    """
    roots = _root_nodes(root, "retain_grads")
    count = 0
    for node in topological_order(roots):
        if type(node) is Node and not _has_tag(node, _GRAD_TAG):
            _set_tag(node, _GRAD_TAG, None)
            node.register_hook(_store_grad_hook(node))
            count += 1
    return count


def _store_grad_hook(node):
    ref = weakref.ref(node)

    def hook(grad):
        target = ref()
        if target is not None:
            previous = _tag(target, _GRAD_TAG)
            value = np.array(grad.data, copy=True)
            _set_tag(target, _GRAD_TAG, value if previous is None else previous + value)

    return hook


class keep_values:
    """Keep the value of every op's output computed inside the ``with`` block.

    The engine keeps only a weak reference to an op's output, so the value of a
    temporary such as ``a * b`` in ``(a * b + c).tanh()`` is gone once the
    expression is evaluated, and ``draw_graph`` can show only its shape.  Inside
    ``with visualize.keep_values():`` each recorded node also keeps its output
    array (memory: one array per op; the arrays are released with the graph).
    Tensor inputs that take no gradient (the input batch, the targets) are kept too,
    and drawn as "constant" nodes.  It is an observer of the engine
    (``autodiff.observe``): every op recorded in any thread while the block runs
    is kept.

    Example::

        with visualize.keep_values():
            L = (a * b + c).tanh()
        visualize.draw_graph(L)          # every box shows its value
    """

    def __init__(self):
        self._handle = None

    def __enter__(self):
        self._handle = autodiff.observe(_keep_value)
        return self

    def __exit__(self, *exc):
        self._handle.remove()


def _keep_value(node, inputs, output) -> None:
    """The observer behind keep_values: tag the node with its output and its constant inputs."""
    if _has_tag(node, _VALUE_TAG):  # nested keep_values blocks: kept once
        return
    _set_tag(node, _VALUE_TAG, output.data)
    constants = {}
    for slot, (value, child) in enumerate(zip(inputs, node.next_functions)):
        if child is None and isinstance(value, (Tensor, np.ndarray)):
            name = value.name if isinstance(value, Tensor) else None
            data = value.data if isinstance(value, Tensor) else value
            # [value, name, identity, (module it was an input of, info)]
            constants[slot] = [data, name, id(value), None]
    if constants:
        _set_tag(node, _CONSTANTS_TAG, constants)


# -- building the graph -----------------------------------------------------------------


def _root_nodes(root, op: str) -> list:
    tensors = [root] if isinstance(root, Tensor) else list(root)
    nodes = []
    for index, tensor in enumerate(tensors):
        if not isinstance(tensor, Tensor):
            raise TypeError(
                f"{op}: expected a Tensor (or a list of Tensors), got {type(tensor).__name__}"
            )
        if not tensor.requires_grad:
            raise ValueError(
                f"{op}: tensor {index} of shape {tuple(tensor.shape)} has no graph "
                "(requires_grad=False): was it computed under no_grad(), or from tensors "
                "without requires_grad=True?"
            )
        nodes.append(gradient_node(tensor))
    return nodes


def _param_names(params) -> dict:
    """id(tensor) -> name, from a dict of tensors or an object with named_parameters()."""
    if params is None:
        return {}
    if hasattr(params, "named_parameters"):
        params = dict(params.named_parameters())
    if not isinstance(params, dict):
        raise TypeError(
            f"params: expected a dict of name -> tensor (dict(model.named_parameters())) or an "
            f"nn.Module, got {type(params).__name__}"
        )
    names = {}
    for name, tensor in params.items():
        if not isinstance(tensor, Tensor):
            raise TypeError(f"params: {name!r} is a {type(tensor).__name__}, not a Tensor")
        names[id(tensor)] = (tensor, str(name))
    return names


def _node_value(node: Node):
    """The output's value while it is known: a live tensor, or the array saved for backward."""
    tensor = node.output
    if tensor is not None:
        return tensor, tensor.data
    data = _tag(node, _VALUE_TAG)
    if data is None:
        data = node.saved_output
    return None, data


DETAILS = ("lecture", "primitives")


def check_detail(detail, op: str) -> None:
    if detail not in DETAILS:
        raise ValueError(
            f"{op}: detail must be 'lecture' (one op per layer, as the lecture draws it) or "
            f"'primitives' (every recorded op), got {detail!r}"
        )


def trace_graph(
    root,
    params=None,
    max_nodes: int | None = DEFAULT_MAX_NODES,
    detail: str = "lecture",
    expand=None,
) -> Graph:
    """Turn the graph behind ``root`` (a tensor or a list of tensors) into a :class:`Graph`.

    ``params`` names parameters: ``dict(model.named_parameters())`` or the model.
    ``detail="lecture"`` (the default) gives one op per lecture-level layer that the
    forward pass marked as a region (``conv2d``, ``max_pool2d``, ``cross_entropy``,
    ...; see ``autodiff.region``), with the region's formula and rule, its inputs
    and its output; ``detail="primitives"`` one op per recorded node.  ``expand``:
    region names or op ids (``["conv2d"]``, ``"op12"``) drawn open at the lecture level.
    Raises :class:`GraphTooLargeError` when the graph has more than ``max_nodes``
    nodes (tensors + ops) at that detail; ``None`` means no limit.

    Example::

        a = autodiff.tensor(2.0, requires_grad=True)
        b = autodiff.tensor(-3.0, requires_grad=True)
        g = trace_graph(a * b + a)      # 2 leaves, 2 ops (Add, Mul), 2 outputs
        [op.name for op in g.ops]       # ['Add', 'Mul']  (backward order)
    """
    check_detail(detail, "trace_graph")
    graph = recorded_graph(root, params, max_nodes if detail == "primitives" else None)
    if detail == "primitives":
        graph = without_unread_constants(graph)
    else:
        from .lecture import lecture_view

        graph = lecture_view(graph, expand).graph
        _check_size(len(graph), max_nodes, "trace_graph", f"{len(graph.ops)} ops at lecture level")
    return graph


def _check_size(n_nodes, max_nodes, op, what) -> None:
    if max_nodes is not None and n_nodes > max_nodes:
        raise GraphTooLargeError(
            f"{op}: the graph has {n_nodes} nodes ({what}), more than max_nodes={max_nodes}. "
            "Pass collapse=True to draw each module as one node, raise max_nodes, or draw "
            "a smaller part of the graph."
        )


def _main_root(order, params):
    """The outermost module call whose paths are its own ("features.0"; others get a prefix).

    The model given as ``params``, else the outermost module that ran the most ops.
    """
    counts, calls = {}, {}
    for node in order:
        if type(node) is Node:
            call = _tag(node, "module")
            if call is not None:
                module = call.root.module() if call.root.module is not None else None
                key = id(module) if module is not None else id(call.root)
                counts[key] = counts.get(key, 0) + 1
                calls[key] = call.root
    if hasattr(params, "named_parameters") and id(params) in counts:
        return id(params), calls
    if not counts:
        return None, calls
    return max(counts, key=counts.get), calls


def recorded_graph(root, params=None, max_nodes: int | None = DEFAULT_MAX_NODES) -> Graph:
    """The graph with one op per recorded node (see ``trace_graph``), with every region's
    constant inputs (those no recorded op read are left for the lecture's view)."""
    roots = _root_nodes(root, "trace_graph")
    root_tensors = [root] if isinstance(root, Tensor) else list(root)
    order = topological_order(roots)
    n_nodes = sum(2 if type(n) is Node else 1 for n in order)
    _check_size(n_nodes, max_nodes, "trace_graph", f"{len(order)} ops and leaves")
    names = _param_names(params)
    graph = Graph()
    root_set = set(roots)
    index = {node: i for i, node in enumerate(order)}
    leaf_position = {id(n.variable): i for i, n in enumerate(order) if type(n) is AccumulateGrad}

    leaves = [n.variable for n in order if type(n) is AccumulateGrad]
    released = any(type(n) is Node and n.released for n in order)
    retained_any = any(type(n) is Node and _tag(n, _GRAD_TAG) is not None for n in order)
    graph.freed = released
    graph.backward_done = released or retained_any or any(leaf.grad is not None for leaf in leaves)
    if not graph.backward_done:
        graph.note = "before backward(): no gradients yet"
    elif released:
        graph.note = "after backward(): grad = dL/d(tensor); saved values freed"
    else:
        graph.note = "after backward(): grad = dL/d(tensor)"

    # Module information: the tags left by track_modules, else the module calls that
    # nn.Module.__call__ recorded (autodiff.region's annotations["module"]).
    infos = {}
    for node in order:
        if type(node) is Node:
            tag = _tag(node, _MODULE_TAG)
            if tag is not None:
                infos[id(tag[1])] = tag[1]
    main, root_calls = _main_root(order, params)
    call_prefix = {}
    taken = {""}
    for key, call in root_calls.items():
        if key == main:
            call_prefix[key] = ""
        else:
            prefix = call.type_name
            while prefix in taken:
                prefix += "_"
            taken.add(prefix)
            call_prefix[key] = prefix
    for key, call in root_calls.items():
        module = call.module() if call.module is not None else None
        if module is not None and hasattr(module, "named_modules"):
            info = _ModelInfo(module, call_prefix[key])
            infos.setdefault(("calls", key), info)

    def call_path(call):
        top = call.root
        module = top.module() if top.module is not None else None
        prefix = call_prefix.get(id(module) if module is not None else id(top), "")
        return _join(prefix, call.name)

    def add_call(call):
        path = call_path(call)
        if path not in graph.modules:
            parent = add_call(call.parent) if call.parent is not None else None
            graph.modules[path] = ModuleInfo(path, call.type_name, parent)
        return path

    def module_param_name(tensor):
        for info in infos.values():
            name = info.param_name(tensor)
            if name is not None:
                return name, info
        return None, None

    def add_module(path, info):
        while path is not None and path not in graph.modules:
            if path == "":
                parent = None
            else:
                parent = path.rsplit(".", 1)[0] if "." in path else ""
                if parent not in info.types:
                    parent = None
            graph.modules[path] = ModuleInfo(path, info.types.get(path, "Module"), parent)
            path = parent

    # Inputs that take no gradient: kept values (keep_values) by identity.
    kept = {}
    for node in order:
        if type(node) is Node:
            for data, _name, key, boundary in _tag(node, _CONSTANTS_TAG, {}).values():
                kept.setdefault(key, (data, boundary))
    constant_ids = {}
    const_nodes = {}  # constant id -> its TensorNode
    edge_set = set()

    def constant(value, label=None, module=None, key=None, earlier=False):
        """The id of the constant node for a tensor (or a kept value), made once per object.

        ``earlier``: the node stands for the tensor's values before an in-place
        layer changed them (its own node, under ``key``).
        """
        key = id(value) if key is None else key
        data = value.data if isinstance(value, (Tensor, _KeptValue)) else np.asarray(value)
        # A tensor and its array are one constant (the fused cross-entropy reads target.data).
        const_id = constant_ids.get(key) or (None if earlier else constant_ids.get(id(data)))
        if const_id is not None:
            if label is not None:
                for tensor in graph.tensors:
                    if tensor.id == const_id and tensor.label is None:
                        tensor.label = label
            return const_id
        const_id = f"c{len(set(constant_ids.values()))}"
        constant_ids[key] = const_id
        if not earlier:
            constant_ids[id(data)] = const_id
        if label is None and isinstance(value, Tensor):
            label = value.name
            if label is None:
                label, _ = module_param_name(value)
                if label is None and key in names and names[key][0] is value:
                    label = names[key][1]
        stored = kept.get(key)
        if stored is not None and stored[1] is not None:
            boundary = stored[1]
            add_module(boundary[0], boundary[1])
            module = graph.modules[boundary[0]].parent
            if label is None:
                label = f"input to {boundary[0] or graph.modules[boundary[0]].type_name}"
        graph.tensors.append(
            TensorNode(
                id=const_id,
                kind="constant",
                label=label,
                shape=tuple(data.shape),
                dtype=str(data.dtype),
                value=summarize(stored[0]) if stored is not None else None,
                module=module,
            )
        )
        const_nodes[const_id] = graph.tensors[-1]
        return const_id

    def edge(src, dst, slot):
        if (src, dst) not in edge_set:
            edge_set.add((src, dst))
            graph.edges.append(Edge(src, dst, slot))

    region_members = {}  # id(region) -> (region, [positions of its nodes])
    for position, node in enumerate(order):
        step = position + 1
        if type(node) is AccumulateGrad:
            tensor = node.variable
            label, kind, module = None, "leaf", None
            if id(tensor) in names and names[id(tensor)][0] is tensor:
                label, kind = names[id(tensor)][1], "parameter"
            name, info = module_param_name(tensor)
            if name is not None:
                if label is None:
                    label, kind = name, "parameter"
                module = name.rsplit(".", 1)[0] if "." in name else ""
                if module in info.types:
                    add_module(module, info)
                else:
                    module = None
            if label is None:
                label = tensor.name
            if node in root_set:
                kind = "root"
            grad = tensor.grad
            graph.tensors.append(
                TensorNode(
                    id=f"t{position}",
                    kind=kind,
                    label=label,
                    shape=tuple(node.shape),
                    dtype=str(node.dtype),
                    value=summarize(tensor.data),
                    grad=summarize(grad.data) if grad is not None else None,
                    grad_note=_grad_note(graph, grad is not None, leaf=True),
                    module=module,
                    step=step,
                )
            )
            continue

        op_id, out_id = f"op{position}", f"t{position}"
        function = node.function
        formula, rule = op_rule(function)
        tag = _tag(node, _MODULE_TAG)
        module = None
        if tag is not None:
            module = tag[0]
            add_module(module, tag[1])
        elif _tag(node, "module") is not None:
            module = add_call(_tag(node, "module"))
        regions = []
        region = _tag(node, "region")
        while region is not None:
            regions.append(region)
            region_members.setdefault(id(region), (region, []))[1].append(position)
            region = region.parent
        graph.ops.append(
            OpNode(
                id=op_id,
                name=function.__name__,
                backward_name=node.name(),
                formula=formula,
                rule=rule,
                step=step,
                module=module,
                output=out_id,
                input_names=input_names(rule, len(node.next_functions)),
                node=node,
                regions=tuple(reversed(regions)),
            )
        )
        tensor, data = _node_value(node)
        grad = None
        if tensor is not None and tensor.retains_grad and tensor.grad is not None:
            grad = tensor.grad.data
        elif _tag(node, _GRAD_TAG) is not None:
            grad = _tag(node, _GRAD_TAG)
        label = tensor.name if tensor is not None else None
        if label is None:
            for root_tensor in root_tensors:
                if root_tensor.grad_fn is node:
                    label = root_tensor.name
        graph.tensors.append(
            TensorNode(
                id=out_id,
                kind="root" if node in root_set else "intermediate",
                label=label,
                shape=tuple(node.shape),
                dtype=str(node.dtype),
                value=summarize(data) if data is not None else None,
                grad=summarize(grad) if grad is not None else None,
                grad_note=_grad_note(graph, grad is not None, leaf=False),
                module=module,
                step=step,
                producer=op_id,
            )
        )
        graph.edges.append(Edge(op_id, out_id))
        for slot, child in enumerate(node.next_functions):
            if child is not None:
                graph.edges.append(Edge(f"t{index[child]}", op_id, slot))
        # Inputs that take no gradient: those it saved for backward (the input batch
        # of a matrix product, a mask), and those keep_values saw it read.
        kept_here = _tag(node, _CONSTANTS_TAG, {})
        for slot, (data, name, key, _boundary) in kept_here.items():
            edge(constant(_KeptValue(data), name, module, key), op_id, slot)
        kept_keys = {entry[2] for entry in kept_here.values()}
        for value in node.saved_values:
            if isinstance(value, Tensor) and not value.requires_grad and id(value) not in kept_keys:
                edge(constant(value, None, module), op_id, None)

    def constant_layer(value, const_id, maker=None) -> None:
        """The layer that made a constant from constants (nn.Flatten on the input batch).

        ``maker``: that layer when it is not ``made_by(value)`` (the values before
        an in-place layer changed them were made by the layer before it).
        """
        maker = made_by(value) if maker is None else maker
        if maker is None or any(entry[2] == const_id for entry in graph.constant_layers):
            return
        inputs = []
        names_of = getattr(maker, "input_names", ()) or ()
        for slot, source in enumerate(maker.inputs):
            if source is value:  # changed in place (relu_ on the input batch): its earlier values
                earlier = getattr(maker, "made_from", None)
                source_id = constant(
                    source, None if earlier else "input", None, ("earlier", id(maker)), True
                )
                inputs.append((slot, source_id))
                if earlier is not None:
                    constant_layer(source, source_id, earlier)
                continue
            if isinstance(source, Tensor):
                label = None if made_by(source) is not None else "input"
                label = names_of[slot] if label and slot < len(names_of) else label
                source_id = constant(source, source.name or label, None)
                inputs.append((slot, source_id))
                constant_layer(source, source_id)
        module = add_call(maker.call) if maker.call is not None else None
        if id(value) not in kept and id(value.data) not in kept:
            const_nodes[const_id].module = module  # the layer's output, drawn beside it
        graph.constant_layers.append((maker, inputs, const_id, module))

    # Each region's inputs, where they are drawn: the lecture view draws its edges
    # from these; a constant input (the input batch, the targets) is drawn here
    # too, read by the op that saved it (else by the region's first op).
    for key, (region, positions) in region_members.items():
        slots = []
        names_of = getattr(region, "input_names", ()) or ()
        computed = getattr(region, "input_nodes", ()) or ()
        for slot, value in enumerate(getattr(region, "inputs", ()) or ()):
            node = computed[slot] if slot < len(computed) else None
            if node is not None and node in index:  # an activation (maybe gone by now)
                slots.append((slot, f"t{index[node]}"))
                continue
            if not isinstance(value, Tensor):
                continue
            if value.requires_grad:
                node = value.grad_fn
                if node is not None and node in index:
                    slots.append((slot, f"t{index[node]}"))
                elif node is None and id(value) in leaf_position:
                    slots.append((slot, f"t{leaf_position[id(value)]}"))
                continue
            label = names_of[slot] if slot < len(names_of) else None
            if made_by(value) is not None:
                label = None  # made by a layer from the input batch: that one is the input
            const_id = constant(value, value.name or _param_label(value, names) or label, None)
            if id(value) not in kept and id(value.data) not in kept:
                # a layer's input comes from outside it (keep_values knows where from)
                const_nodes[const_id].module = None
            constant_layer(value, const_id)
            slots.append((slot, const_id))
            reader = _reader(order, positions, value)
            if reader is not None:
                edge(const_id, f"op{reader}", None)
        graph.region_inputs[key] = slots

    graph.roots = [f"t{index[node]}" for node in roots]
    return graph


class _KeptValue:
    """A value keep_values kept, standing for the tensor it came from."""

    def __init__(self, data):
        self.data = data


def _param_label(tensor, names):
    entry = names.get(id(tensor))
    return entry[1] if entry is not None and entry[0] is tensor else None


def _reader(order, positions, value) -> int | None:
    """The region's node that saved ``value`` for backward (None: none of them did).

    Only then did a recorded op read it: conv2d's image is read by its Conv2d,
    which saves it for the weight's gradient (composed, it enters an im2col that
    is not recorded, the image taking no gradient, whose result the product reads).
    """
    for position in positions:
        for saved in order[position].saved_values:
            if saved is value or (isinstance(saved, np.ndarray) and saved is value.data):
                return position
    return None


def without_unread_constants(graph: Graph) -> Graph:
    """The graph without the constant nodes that no recorded op reads.

    A region's constant input (the image batch of a convolution) is kept in the
    recorded graph for the lecture's view, which draws it as the layer's input.
    """
    read = {e.src for e in graph.edges}
    tensors = [t for t in graph.tensors if t.kind != "constant" or t.id in read]
    return dataclasses.replace(graph, tensors=tensors)


def _grad_note(graph: Graph, has_grad: bool, leaf: bool) -> str | None:
    if has_grad:
        return None
    if not graph.backward_done:
        return "before backward()"
    if leaf:
        return "no grad (None)"
    return "not retained"
