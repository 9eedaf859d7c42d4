"""Regions: the lecture's name for the ops one layer records.

A layer records what is fast: composed, ``conv2d`` is an im2col matrix, a
matrix product, reshapes and an addition (its common case one fused op); the
lecture draws one box, ``y = W * x + b``.  A layer says which box it is::

    with autodiff.region("linear", inputs=(x, weight, bias), attrs={},
                         formula="y = x W^T + b",
                         rule="dL/dx = g W\\ndL/dW = g^T x\\ndL/db = sum_n g") as r:
        y = x @ weight.T + bias
        r.output = y

Every node recorded inside the ``with`` block gets the innermost active
:class:`Region` in ``node.annotations["region"]`` (the node's ``annotations``
dict, never an attribute of the node), and, when an ``nn.Module`` ran it, the
module in ``node.annotations["module"]`` (a :class:`ModuleCall`).  Pictures
(``visualize.draw_graph(detail="lecture")``), the backward trace and the ONNX
exporter read these tags; the engine never does.

A region is created only while grad mode records (grad mode on and some tensor
input requiring grad): under ``no_grad`` ``region(...)`` returns one shared
object that ignores ``output``, so inference pays a function call and nothing
else.  The tagging is an observer (``autodiff.observe``) registered only while
some thread is inside a region or a module's forward in grad mode.

A region keeps its tensor inputs (so that pictures can draw the input batch);
its ``output`` is held weakly, since the output's node refers to the region and
a strong reference both ways would leave every graph to the cycle collector.
Use ``node.annotations["region_output"]`` (True on the node that made the
region's output) to find the output's node once the tensor is gone.
"""

from __future__ import annotations

import threading
import weakref

from .function import _observers
from .grad_mode import modes
from .tensor import Tensor

__all__ = ["ModuleCall", "Region", "current_module", "made_by", "module_scope", "region"]


class Region:
    """One lecture-level op: the ops a layer of ``nn.functional`` recorded, with its name.

    ``name``: the lecture's op name ("conv2d", "max_pool2d", "cross_entropy", ...);
    ``inputs``: the call's tensor arguments in signature order (None where absent; a
    tensor the graph computed is held weakly, see ``input_nodes``);
    ``attrs``: its other arguments by PyTorch's names (stride, padding, dim, p, ...);
    ``formula`` and ``rule``: the forward formula and the local gradient rule, as the
    lecture writes them (one ``dL/d...`` per line); ``output``: the result (held
    weakly: None once the tensor is gone); ``module``: the qualified name of the
    ``nn.Module`` that ran it (None outside modules or in the model's own forward);
    ``parent``: the enclosing region (``cross_entropy`` holds ``log_softmax``), or None;
    ``input_names``: the parameter names of ``inputs`` ("input", "weight", "target"), if given.
    """

    __slots__ = (
        "name",
        "_inputs",
        "attrs",
        "formula",
        "rule",
        "_module",
        "parent",
        "input_names",
        "recorded",
        "call",
        "_output",
        "_versions",
        "made_from",
    )

    def __init__(
        self,
        name,
        inputs=(),
        attrs=None,
        formula="",
        rule="",
        module=None,
        parent=None,
        input_names=(),
    ):
        self.name = name
        # A tensor the graph computed (an activation) is held weakly, with its node: a
        # strong reference would keep every layer's input alive as long as the graph,
        # after backward() freed what the ops saved.  Leaves and constants (the
        # parameters, the input batch, the targets) are held as given.
        self._inputs = tuple(
            [
                _Computed(weakref.ref(t), t.grad_fn)
                if isinstance(t, Tensor) and t.grad_fn is not None
                else t
                for t in inputs
            ]
        )
        self.input_names = tuple(input_names)
        self.attrs = dict(attrs) if attrs else {}
        self.formula = formula
        self.rule = rule
        self._module = module  # _FROM_CALL: the name of ``call``, read when asked
        self.parent = parent
        self.recorded = True  # False: a layer computed on constants only (see made_by)
        self.call = None  # the ModuleCall it ran in
        self._output = None
        self._versions = None  # (not recorded) each input's version when the layer began
        # (not recorded, in place) the layer that made the input before this one changed it
        self.made_from = None

    @property
    def module(self):
        """The qualified name of the ``nn.Module`` that ran the layer (None outside modules)."""
        module = self._module
        if module is _FROM_CALL:
            call = self.call
            module = self._module = (call.name or None) if call is not None else None
        return module

    @module.setter
    def module(self, value):
        self._module = value

    @property
    def inputs(self) -> tuple:
        """The call's tensor arguments; one the graph computed is None once it is gone."""
        return tuple(i.tensor() if type(i) is _Computed else i for i in self._inputs)

    @property
    def input_nodes(self) -> tuple:
        """For each input: the node that computed it (its ``grad_fn`` when the region began)."""
        return tuple(i.node if type(i) is _Computed else None for i in self._inputs)

    @property
    def output(self):
        """The region's result (a Tensor, or a tuple such as max_pool2d's with indices)."""
        stored = self._output
        if isinstance(stored, weakref.ref):
            return stored()
        if isinstance(stored, tuple):
            return tuple(item() if isinstance(item, weakref.ref) else item for item in stored)
        return stored

    @output.setter
    def output(self, value):
        if not self.recorded:  # nothing was recorded: remember which layer made the value
            for v in value if isinstance(value, tuple) else (value,):
                if isinstance(v, Tensor):
                    self._remember_as_maker(v)
        if isinstance(value, Tensor):
            self._output = weakref.ref(value)
            _mark_output(value, self)
        elif isinstance(value, tuple):
            self._output = tuple(weakref.ref(v) if isinstance(v, Tensor) else v for v in value)
            for v in value:
                if isinstance(v, Tensor):
                    _mark_output(v, self)
        else:
            self._output = value

    def _remember_as_maker(self, value: Tensor) -> None:
        slot = next((k for k, i in enumerate(self._inputs) if i is value), None)
        if slot is None:
            _remember_maker(value, self)
            return
        if self._versions is None or value._version[0] == self._versions[slot]:
            return  # its input passed through unchanged (dropout in eval mode): made nothing
        # Changed in place (relu_ on the input batch): this layer made the new values
        # from the old ones, which the layer that made them (if any) made before.
        # Held weakly here: the maker entry holds this region while the tensor lives.
        self.made_from = made_by(value)
        self._inputs = tuple(
            _Computed(weakref.ref(i), None) if i is value else i for i in self._inputs
        )
        _remember_maker(value, self)

    def __enter__(self):
        if not self.recorded:  # on constants: nothing inside is recorded, nothing to tag
            return self
        state = _state
        if state.region is None and state.module is None:  # this thread's outermost scope
            _activate()
        self.parent = state.region
        state.region = self
        return self

    def __exit__(self, *exc_info):
        if not self.recorded:
            return
        state = _state
        state.region = self.parent
        if state.region is None and state.module is None:
            _deactivate()

    def __repr__(self):
        where = f" in {self.module}" if self.module else ""
        return f"<Region {self.name}{where}>"


class _Computed:
    """A region's input that the graph computed: a weak reference and its node."""

    __slots__ = ("node", "tensor")

    def __init__(self, tensor, node):
        self.tensor = tensor
        self.node = node


# id(tensor) -> (weak reference, Region): tensors that a layer computed from constants
# only, while grad mode was on (the input batch flattened by nn.Flatten)
_makers: dict = {}


def _remember_maker(tensor: Tensor, region: Region) -> None:
    key = id(tensor)

    def forget(_ref, key=key, makers=_makers):  # (the global is None at interpreter exit)
        makers.pop(key, None)

    _makers[key] = (weakref.ref(tensor, forget), region)


def made_by(tensor) -> Region | None:
    """The lecture layer that computed ``tensor`` from constants only (None if none did).

    Nothing is recorded for such a layer (no input requires grad), so its region
    tags no node; pictures use this to draw ``flatten`` between the input batch
    and the first ``linear``.  Only known for layers run in grad mode.  For a
    layer that changed its input in place (``relu(x, inplace=True)`` on the
    input batch), the region's ``made_from`` is the layer that made the values
    it changed (None for the input batch itself).
    """
    entry = _makers.get(id(tensor))
    if entry is None or entry[0]() is not tensor:
        return None
    return entry[1]


def _mark_output(tensor: Tensor, region: Region) -> None:
    """Tag the node that made the region's output (when the region recorded it)."""
    node = tensor.grad_fn
    annotations = getattr(node, "annotations", None)
    if annotations is None:
        return
    inner = annotations.get("region")
    while inner is not None and inner is not region:
        inner = inner.parent
    if inner is region:
        annotations["region_output"] = True


class ModuleCall:
    """One run of an ``nn.Module``'s forward while recording: what ``annotations["module"]`` holds.

    ``name``: the qualified name below the outermost module that was called
    (``"features.0"``; ``""`` for that outermost module itself); ``type_name``: its
    class name; ``parent``: the call it ran in (None for the outermost); ``module``:
    a weak reference to the module.

    ``nn.Module.__call__`` makes one per call (:meth:`running`) and enters it
    (``with call:``), so that the ops recorded inside are tagged with it.  Such
    a call's name is found when first read (by a picture, a trace, the ONNX
    exporter), not at every forward: finding it cost each module call about
    2 us, 16 us of the lecture MLP's training step.
    """

    __slots__ = ("_name", "_type", "_namer", "parent", "module", "__weakref__")

    def __init__(self, name, type_name, parent, module):
        self._name = name
        self._type = type_name
        self._namer = None
        self.parent = parent
        self.module = weakref.ref(module) if module is not None else None

    @classmethod
    def running(cls, module, namer) -> ModuleCall:
        """A call of ``module`` in this thread's running call (``current_module()``), named
        ``namer(call)`` when its name is first read; enter it to run the module's forward."""
        call = cls.__new__(cls)
        call._name = None
        call._type = type(module)
        call._namer = namer
        call.parent = _state.module
        call.module = weakref.ref(module)
        return call

    @property
    def name(self) -> str:
        name = self._name
        if name is None and self._namer is not None:
            name = self._name = self._namer(self)
            self._namer = None
        return name

    @property
    def type_name(self) -> str:
        kind = self._type
        return kind if isinstance(kind, str) else kind.__name__

    @property
    def root(self) -> ModuleCall:
        call = self
        while call.parent is not None:
            call = call.parent
        return call

    def __enter__(self):
        """Run inside this call (made by :meth:`running`, in the thread's running call)."""
        state = _state
        if state.region is None and state.module is None:  # this thread's outermost scope
            _activate()
        state.module = self
        return self

    def __exit__(self, *exc_info):
        state = _state
        state.module = self.parent
        if state.region is None and state.module is None:
            _deactivate()

    def __repr__(self):
        return f"<ModuleCall {self.name or '(root)'}: {self.type_name}>"


class _Unrecorded:
    """What ``region(...)`` returns when nothing is recorded: a context that ignores output."""

    __slots__ = ()
    name = None
    inputs = ()
    attrs = {}
    formula = rule = ""
    module = parent = None

    @property
    def output(self):
        return None

    @output.setter
    def output(self, value):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        pass

    def __bool__(self):
        return False


_UNRECORDED = _Unrecorded()
_FROM_CALL = object()  # a Region's module: its call's name, read when first asked


class _State(threading.local):
    region = None  # the innermost active Region of this thread
    module = None  # the innermost ModuleCall of this thread


_state = _State()
_users = {"count": 0}  # threads inside a region or a module's forward
_lock = threading.Lock()
_TAG_KEY = -1  # the observer's key in the engine's table (handles count up from 0)


def _tag(node, inputs, output) -> None:
    """The observer: tag each recorded node with its region and its module."""
    state = _state
    region_, call = state.region, state.module
    if region_ is None and call is None:
        return
    annotations = node.annotations
    if annotations is None:
        annotations = node.annotations = {}
    if region_ is not None:
        annotations["region"] = region_
    if call is not None:
        annotations["module"] = call


def _activate() -> None:
    with _lock:
        _users["count"] += 1
        if _TAG_KEY not in _observers:
            # First among the observers, so that the others (the ONNX exporter's,
            # keep_values) see each node's region and module already tagged.
            others = list(_observers.items())
            _observers.clear()
            _observers[_TAG_KEY] = _tag
            _observers.update(others)


def _deactivate() -> None:
    with _lock:
        _users["count"] -= 1
        if _users["count"] <= 0:
            _users["count"] = 0
            _observers.pop(_TAG_KEY, None)


def region(name, inputs=(), attrs=None, formula="", rule="", input_names=()):
    """Mark the ops recorded inside ``with`` as one lecture-level op (see the module docstring).

    ``input_names`` optionally names the inputs (pictures label a constant input by it).
    Returns the :class:`Region` (set ``r.output = y`` before leaving the block), or,
    when grad mode is off or there is no tensor input, a shared object that records
    nothing and ignores ``output``.  When no tensor input requires grad nothing is
    recorded either: the region (``recorded`` False) only remembers its output, for
    :func:`made_by`.

    Example::

        x = autodiff.randn(4, 3, requires_grad=True)
        with autodiff.region("relu", inputs=(x,), formula="y = max(x, 0)",
                             rule="dL/dx = g * [x > 0]") as r:
            y = x.clamp(min=0)
            r.output = y
        y.grad_fn.annotations["region"].name          # 'relu'
    """
    if not modes.grad_enabled:
        return _UNRECORDED
    recorded = constants = False
    for tensor in inputs:
        if isinstance(tensor, Tensor):
            if tensor._requires_grad:
                recorded = True
                break
            constants = True
    if not (recorded or constants):
        return _UNRECORDED
    made = Region(name, inputs, attrs, formula, rule, _FROM_CALL, None, input_names)
    made.call = _state.module
    if not recorded:  # to tell an in-place layer from one that passes its input on
        made.recorded = False
        made._versions = tuple(t._version[0] if isinstance(t, Tensor) else None for t in inputs)
    return made


class module_scope:
    """Ops recorded inside run in ``call`` (a :class:`ModuleCall`): ``nn.Module.__call__`` uses it."""

    __slots__ = ("call", "previous")

    def __init__(self, call: ModuleCall):
        self.call = call

    def __enter__(self):
        state = _state
        if state.region is None and state.module is None:  # this thread's outermost scope
            _activate()
        self.previous = state.module
        state.module = self.call
        return self.call

    def __exit__(self, *exc_info):
        state = _state
        state.module = self.previous
        if state.region is None and state.module is None:
            _deactivate()


def current_module() -> ModuleCall | None:
    """The ModuleCall whose forward this thread is running (None outside every module)."""
    return _state.module
