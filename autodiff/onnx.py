"""Export a model to ONNX, to run it on ONNX Runtime or look at it in Netron.

``autodiff.onnx.export(model, args, "model.onnx")`` works as ``torch.onnx.export``:
it runs the model once on ``args`` in evaluation mode, watches every operation
that runs (``autodiff.observe``), and writes each one as standard ONNX
operators.  A layer that recorded itself as a lecture-level region (``linear``,
``conv2d``, ``max_pool2d``, ``batch_norm``, ...; see ``autodiff.region``)
becomes one ONNX operator (Gemm, Conv, MaxPool, BatchNormalization, ...); an
operation outside any region (``x.view``, ``+``, ``cat``, ``permute``, ``sum``,
``cumsum``) is written from its primitive (Reshape, Add, Concat, Transpose,
ReduceSum, CumSum).
Parameters and buffers become initializers named by the state dict's keys.

What is written always computes what the model computes.  An operation with
no ONNX form is an error that names it and the module that ran it, and, to
catch values that leave the graph (``.data``, ``.numpy()``, Python control
flow on values), the model runs a second time on an input with other values
and another batch size: both runs must give the same ONNX graph, otherwise
export refuses and names the operation that differed.  Integer and bool
computations on the input (``counts.cumsum(1)``, ``x > 0``, argmax, an
Embedding lookup of an integer input) are refused saying that they cannot be
exported yet: the engine records only operations that can take a gradient.

Example::

    model = nn.models.NeuralNetwork(in_features=64)
    autodiff.onnx.export(model, autodiff.randn(1, 64), "mlp.onnx")

    import onnxruntime
    session = onnxruntime.InferenceSession("mlp.onnx")
    logits = session.run(None, {"x": images})[0]     # any batch size

Needs the ``onnx`` package (``pip install "autodiff[onnx]"``, which also
brings ``onnxruntime``); ``import autodiff`` itself does not.
"""

from __future__ import annotations

import inspect
import math
import os
import threading
from dataclasses import dataclass, field

import numpy as np

from . import function as _function
from . import ops
from .files import atomic_write
from .grad_mode import enable_grad
from .tensor import Tensor, constant

__all__ = ["DEFAULT_OPSET", "MIN_OPSET", "UnsupportedOperatorError", "export"]

#: The opset written when ``opset_version`` is None (PyTorch's default too).
DEFAULT_OPSET = 20
#: The oldest opset this exporter writes (Softmax along one axis, Reduce* axes as inputs).
MIN_OPSET = 13


class UnsupportedOperatorError(RuntimeError):
    """An operation of the model has no ONNX form here (raised instead of writing a wrong file)."""


def export(
    model,
    args=(),
    f=None,
    *,
    kwargs=None,
    verbose=None,
    input_names=None,
    output_names=None,
    opset_version=None,
    dynamo=True,
    export_params=True,
    do_constant_folding=True,
    dynamic_axes=None,
):
    """Write ``model`` as an ONNX file that computes ``model(*args)``, as ``torch.onnx.export``.

    - ``args``: a Tensor or a tuple of the model's positional arguments; each
      Tensor becomes a graph input (other values are fixed into the graph).
    - ``f``: a path (written atomically) or a binary file object.
    - ``kwargs``: keyword arguments for the model that are not tensors (fixed into
      the graph).
    - ``input_names`` / ``output_names``: the graph's names for the inputs and
      outputs; by default the names of ``forward``'s parameters (``x``) and
      ``output`` (``output_0``, ``output_1``, ... for several).
    - ``dynamic_axes``: ``{name: {axis: "dim name"}}`` or ``{name: [axes]}``.
      Unlike PyTorch, the default (None) makes axis 0 of every input a dynamic
      ``batch`` dimension, so that the file runs on any batch size; pass ``{}``
      for fixed sizes.  Output axes that follow an input's dynamic axis are
      marked dynamic with it.
    - ``opset_version``: the ONNX opset, ``MIN_OPSET`` (13) or newer; default 20.
    - ``verbose=True`` prints the graph written.  ``dynamo`` and
      ``do_constant_folding`` are accepted for PyTorch's sake and change nothing
      (there is one exporter; ONNX Runtime folds constants when it loads the file);
      ``export_params`` must stay True (the weights are always in the file).

    The model runs in evaluation mode (Dropout is the identity, BatchNorm uses its
    running statistics) and each module's mode is restored afterwards.  It runs on
    copies of the tensors in ``args``, which are never changed: a model that
    changes its input in place (``nn.ReLU(inplace=True)`` as its first layer, or
    after ``nn.Flatten``) is exported as its out-of-place twin and leaves the
    example as it was.  (PyTorch's default exporter, ``dynamo=True``, leaves it too;
    its TorchScript one, ``dynamo=False``, runs the model on the tensor itself.)
    A model that reads its input, or a view of it, after changing it in place
    through another view is refused: its graph would hold the old values.  Raises
    ``UnsupportedOperatorError`` naming the operation and its module when some
    operation has no ONNX form, or when the model's graph depends on the input's
    values or batch size in a way a file cannot express.  Every file passes
    ``onnx.checker.check_model`` (with full shape inference) before it is written.

    Example::

        autodiff.onnx.export(model, autodiff.randn(1, 1, 28, 28), "cnn.onnx",
                             input_names=["image"], output_names=["logits"])
    """
    onnx = _require_onnx()
    opset = _check_opset(opset_version, onnx)
    if f is None:
        raise ValueError("export: f, the file to write (a path or a binary file), is required")
    if not export_params:
        raise NotImplementedError(
            "export: export_params=False (a graph without its weights) is not supported; "
            "the weights are always written as initializers"
        )
    args = tuple(args) if isinstance(args, (tuple, list)) else (args,)
    if kwargs:
        tensors = [k for k, v in kwargs.items() if isinstance(v, Tensor)]
        if tensors:
            raise ValueError(
                f"export: the keyword arguments {tensors} are tensors; pass tensors in args so "
                "that they become inputs of the graph"
            )
        model = _WithKeywords(model, dict(kwargs))
    positions = [i for i, a in enumerate(args) if isinstance(a, Tensor)]
    names_in = _input_names(model, args, positions, input_names)
    dynamic = _dynamic_axes_by_input(dynamic_axes, names_in, args, positions)

    first = _trace(model, args, positions, names_in)
    varied = _varied_args(args, positions, dynamic)
    try:
        second = _trace(model, varied, positions, names_in)
    except Exception as error:
        raise UnsupportedOperatorError(
            _second_run_failed(args, varied, positions, names_in, dynamic, error)
        ) from error
    names_out = _output_names(first.outputs, output_names)
    _check_dynamic_axes_names(dynamic_axes, names_in, names_out)
    _pair_units(first, second, args, varied, positions)

    graph_a = _Lowering(first, opset, names_in, names_out).run()
    graph_b = _Lowering(second, opset, names_in, names_out).run()
    _compare(graph_a, graph_b, args, varied, positions)

    model_proto = _model_proto(
        onnx, graph_a, first, second, names_in, names_out, dynamic_axes, dynamic, opset
    )
    onnx.checker.check_model(model_proto, full_check=True)
    if verbose:
        print(onnx.printer.to_text(model_proto.graph))
    data = model_proto.SerializeToString()
    if isinstance(f, (str, os.PathLike)):
        with atomic_write(f) as file:
            file.write(data)
    else:
        f.write(data)


# -- options ---------------------------------------------------------------------------


class _WithKeywords:
    """The model called with fixed keyword arguments (``kwargs=``), its modules still visible."""

    def __init__(self, model, keywords):
        self.model, self.keywords = model, keywords
        for name in ("modules", "state_dict", "named_parameters", "named_buffers", "eval"):
            if hasattr(model, name):
                setattr(self, name, getattr(model, name))
        self.forward = getattr(model, "forward", model)

    def __call__(self, *args):
        return self.model(*args, **self.keywords)


def _require_onnx():
    try:
        import onnx
    except ImportError as error:
        raise ModuleNotFoundError(
            "autodiff.onnx.export needs the onnx package: pip install 'autodiff[onnx]' "
            f"(which brings onnx and onnxruntime) ({error})"
        ) from error
    return onnx


def _check_opset(opset_version, onnx) -> int:
    newest = onnx.defs.onnx_opset_version()
    if opset_version is None:
        return min(DEFAULT_OPSET, newest)
    if not isinstance(opset_version, int) or not MIN_OPSET <= opset_version <= newest:
        raise ValueError(
            f"export: opset_version must be an int from {MIN_OPSET} to {newest} (the newest "
            f"the installed onnx {onnx.__version__} knows), got {opset_version!r}"
        )
    return opset_version


def _input_names(model, args, positions, given) -> list[str]:
    if given is not None:
        given = list(given)
        if len(given) > len(positions):
            raise ValueError(
                f"export: {len(given)} input_names for {len(positions)} tensor inputs: {given}"
            )
    else:
        given = []
    defaults = _forward_parameter_names(model, len(args))
    names = []
    for k, i in enumerate(positions):
        if k < len(given):
            names.append(str(given[k]))
        elif defaults and defaults[i] not in names:
            names.append(defaults[i])
        else:
            names.append("input" if len(positions) == 1 else f"input_{k}")
    if len(set(names)) != len(names):
        raise ValueError(f"export: input names must differ, got {names}")
    return names


def _forward_parameter_names(model, count):
    forward = getattr(model, "forward", model)
    try:
        parameters = list(inspect.signature(forward).parameters.values())
    except (TypeError, ValueError):
        return None
    names = [p.name for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return names if len(names) >= count else None


def _output_names(outputs, given) -> list[str]:
    count = len(outputs)
    given = [] if given is None else [str(n) for n in given]
    if len(given) > count:
        raise ValueError(f"export: {len(given)} output_names for {count} outputs: {given}")
    names = given + ["output" if count == 1 else f"output_{k}" for k in range(len(given), count)]
    if len(set(names)) != len(names):
        raise ValueError(f"export: output names must differ, got {names}")
    return names


def _axes_of(entry, name):
    """One ``dynamic_axes`` entry as {axis: dim name} (a list gets PyTorch's generated names)."""
    if isinstance(entry, dict):
        return {int(axis): str(dim) for axis, dim in entry.items()}
    if isinstance(entry, (list, tuple)):
        return {int(axis): f"{name}_dynamic_axes_{k + 1}" for k, axis in enumerate(entry)}
    raise TypeError(
        f"export: dynamic_axes[{name!r}] must be a dict {{axis: name}} or a list of axes, "
        f"got {type(entry).__name__}"
    )


def _dynamic_axes_by_input(dynamic_axes, names_in, args, positions):
    """For each tensor input, {axis: dim name} of its dynamic axes (default: axis 0, "batch")."""
    result = []
    for name, i in zip(names_in, positions, strict=True):
        ndim = args[i].ndim
        if dynamic_axes is None:
            axes = {0: "batch"} if ndim >= 1 else {}
        else:
            axes = _axes_of(dynamic_axes.get(name, {}), name)
        for axis in axes:
            if not -ndim <= axis < ndim:
                raise ValueError(
                    f"export: dynamic axis {axis} of input {name!r} is out of range for its "
                    f"shape {args[i].shape}"
                )
        result.append({axis % ndim: dim for axis, dim in axes.items()})
    return result


def _check_dynamic_axes_names(dynamic_axes, names_in, names_out):
    if not dynamic_axes:
        return
    unknown = [n for n in dynamic_axes if n not in names_in and n not in names_out]
    if unknown:
        raise ValueError(
            f"export: dynamic_axes names {unknown}, which are neither inputs {names_in} "
            f"nor outputs {names_out}"
        )


# -- running the model -----------------------------------------------------------------


@dataclass
class _Record:
    """One recorded node, as its observer saw it."""

    node: object
    inputs: tuple
    keys: tuple  # the value key of each input (None for a non-tensor)
    output: Tensor
    module: str | None
    regions: tuple  # the enclosing regions, outermost first


@dataclass
class _Trace:
    records: list
    inputs: list  # the input Tensors given to the model (recorded views of copies)
    input_keys: list  # the value key of each input when the model began
    outputs: list  # the output Tensors
    params: dict  # value key -> state dict name
    region_keys: dict  # id(region) -> value keys of its inputs, taken at its first node
    module_types: dict  # qualified module name -> its class name
    units: list = field(default_factory=list)


def _key(tensor: Tensor):
    """What identifies a value: the node that computed it, or the leaf tensor itself.

    An in-place operation gives a tensor a new node; the node, not the Python
    object, says which value an operation read.
    """
    node = tensor.grad_fn
    return ("node", id(node)) if node is not None else ("leaf", id(tensor))


def _region_of(node):
    """The innermost lecture-level region the node was recorded in (``autodiff.region``)."""
    annotations = getattr(node, "annotations", None)
    return annotations.get("region") if annotations else None


def _region_chain(region) -> tuple:
    chain = []
    while region is not None:
        chain.append(region)
        region = getattr(region, "parent", None)
    return tuple(reversed(chain))


def _graph_input(value: Tensor) -> Tensor:
    """What the model is given in place of ``value``: its values, copied, watched.

    Export sees only recorded operations, and the engine records an operation
    when an input requires grad; yet the model may change its input in place, as
    it may change a batch of data (``nn.ReLU(inplace=True)`` as the first layer,
    or after ``nn.Flatten``, whose result is a view of the input).  So the model
    gets a recorded view of a copy of the values.  It is not a leaf (the engine
    refuses in-place changes to a leaf that requires grad), and the copy stops
    requiring grad once the view is made, so in-place changes to views of the
    input are allowed as they are on data (the engine refuses them on a view of
    a tensor that requires grad).  The view is made before the observer listens:
    the graph's input is the view itself, with no copy node.  The user's tensor
    is never written.  Integer inputs are copies (nothing on them is recorded).
    """
    copy = constant(np.array(value.data, copy=True))
    if copy.dtype.kind not in "fc":
        return copy
    with enable_grad():
        watched = copy.requires_grad_(True).view(copy.shape)
    copy.requires_grad_(False)
    return watched


@dataclass
class _InputValues:
    """The values of one graph input, shared by its views, and which value each view holds.

    A view of the input that was changed in place holds new values while the
    graph still says the old ones: reading it would write a file that computes
    something else than the model.  ``check`` refuses that read.
    """

    name: str
    counter: list  # the version counter the input and all its views share
    key: tuple  # the input's value key
    start: int  # the counter when the model began
    at_record: dict = field(default_factory=dict)  # value key -> (counter then, is a view)

    def note(self, key, output, version=None):
        version = self.counter[0] if version is None else version
        self.at_record[key] = (version, output._version is self.counter)

    def expected(self, tensor, key):
        """The counter at which ``tensor`` held the values the graph says (None: not watched)."""
        if tensor._version is not self.counter:  # another tensor (or a snapshot of old values)
            return None
        if key == self.key:
            return self.start
        if key in self.at_record:
            version, is_view = self.at_record[key]
            return version if is_view else version + 1  # written in place right after
        return None

    def check(self, tensor, key, where):
        expected = self.expected(tensor, key)
        if expected is not None and self.counter[0] != expected:
            raise UnsupportedOperatorError(
                f"export: {where} reads the input {self.name!r} or a view of it (such as "
                "Flatten's result) whose values the model has changed in place since (through "
                "another view of the input, or under no_grad); the graph holds the values from "
                "before that change, so no file would compute what the model computes. Clone "
                "the input first (x = x.clone()) or change it out of place"
            )


def _trace(model, args, positions, names_in) -> _Trace:
    """Run the model once in eval mode, recording every node with its inputs and module."""
    from . import observe

    given = list(args)
    inputs = []
    watched = {}  # id(version counter) -> _InputValues of a floating input
    for name, i in zip(names_in, positions, strict=True):
        value = _graph_input(args[i])
        given[i] = value
        inputs.append(value)
        if value.requires_grad:
            watched[id(value._version)] = _InputValues(
                name, value._version, _key(value), value._version[0]
            )
    input_keys = [_key(value) for value in inputs]
    params = _parameter_names(model)
    records = []
    region_keys = {}
    types = {}
    thread = threading.get_ident()

    def observer(node, node_inputs, output):
        if threading.get_ident() != thread:  # observers are process-wide: another thread's op
            return
        if watched:
            _check_input_reads(node, node_inputs, output)
        chain = _region_chain(_region_of(node))
        for region in chain:
            if id(region) not in region_keys:
                region_keys[id(region)] = tuple(
                    _key(t) if isinstance(t, Tensor) else None
                    for t in (getattr(region, "inputs", None) or ())
                )
        keys = tuple(_key(t) if isinstance(t, Tensor) else None for t in node_inputs)
        # the module that ran it, as Module.__call__ tagged it (region.py's observer runs first)
        call = (getattr(node, "annotations", None) or {}).get("module")
        module = getattr(call, "name", None) or None  # "" is the model's own forward
        if module is not None:
            types[module] = call.type_name
        records.append(_Record(node, tuple(node_inputs), keys, output, module, chain))

    def _check_input_reads(node, node_inputs, output):
        stale = {}  # a view taken of old values (the engine's rebase of a stale view, too)
        for t in node_inputs:
            values = watched.get(id(t._version)) if isinstance(t, Tensor) else None
            if values is not None and node.function.returns_view:
                expected = values.expected(t, _key(t))  # checked where the view is read
                if expected is not None and expected != values.counter[0]:
                    stale[id(values)] = expected
            elif values is not None:
                call = (getattr(node, "annotations", None) or {}).get("module")
                module = getattr(call, "name", None)
                where = f"{_op_name(node.function)}" + (
                    f" in module {module!r}" if module else " (in the model's own forward)"
                )
                values.check(t, _key(t), where)
        for values in watched.values():
            values.note(("node", id(node)), output, stale.get(id(values)))

    modes = [(m, m.training) for m in model.modules()] if hasattr(model, "modules") else []
    try:
        if hasattr(model, "eval"):
            model.eval()
        with enable_grad(), observe(observer):
            result = model(*given)
    finally:
        for module, mode in modes:  # each module's own mode, as it was
            module.training = mode
    outputs = list(result) if isinstance(result, (tuple, list)) else [result]
    for k, out in enumerate(outputs):
        if not isinstance(out, Tensor):
            raise TypeError(
                f"export: the model's output {k} is a {type(out).__name__}; export writes "
                "models that return a Tensor or a tuple of Tensors"
            )
    return _Trace(records, inputs, input_keys, outputs, params, region_keys, types)


def _parameter_names(model) -> dict:
    """Value key -> name for every parameter and buffer: the state dict's keys first."""
    names = {}
    if hasattr(model, "state_dict"):
        for key, value in model.state_dict(keep_vars=True).items():
            if isinstance(value, Tensor):
                names.setdefault(("leaf", id(value)), key)
    for method in ("named_parameters", "named_buffers"):
        if hasattr(model, method):
            for key, value in getattr(model, method)():
                if isinstance(value, Tensor):
                    names.setdefault(("leaf", id(value)), key)
    return names


def _varied_args(args, positions, dynamic):
    """The second run's arguments: other values, and one more entry along each dynamic axis.

    Entries are reordered (a roll, plus the first one repeated), so integer inputs
    stay valid indices; floating inputs are also rescaled.
    """
    varied = list(args)
    for i, axes in zip(positions, dynamic, strict=True):
        data = args[i].data
        for axis in sorted(axes):
            n = data.shape[axis]
            order = np.concatenate([np.roll(np.arange(n), -1), np.zeros(1, dtype=np.int64)])
            data = np.take(data, order, axis=axis) if n else data
        if data.dtype.kind in "fc":
            data = (data * 0.75 + 0.125).astype(data.dtype)
        elif not axes and data.size > 1:
            data = np.roll(data, 1)
        varied[i] = constant(np.array(data, order="C"))  # 0-d stays 0-d (not ascontiguousarray)
    return tuple(varied)


def _shapes(args, positions):
    return ", ".join(str(tuple(args[i].shape)) for i in positions)


def _second_run_failed(args, varied, positions, names_in, dynamic, error):
    changed = [
        f"{name} axis {axis} ({dim})"
        for name, axes in zip(names_in, dynamic, strict=True)
        for axis, dim in axes.items()
    ]
    what = (
        f"an input whose dynamic axes ({', '.join(changed)}) have other sizes "
        f"({_shapes(args, positions)} -> {_shapes(varied, positions)})"
        if changed
        else "an input with other values"
    )
    return (
        f"export: the model fails on {what}, so the exported file could not run on it either: "
        f"{type(error).__name__}: {error}. Export with fixed sizes (dynamic_axes={{}}) or make "
        "the model accept any batch size"
    )


# -- units: what one ONNX operator (or a few) is written for -----------------------------


@dataclass
class _Unit:
    """A region (one lecture-level op) or one primitive node outside every mapped region."""

    op: str  # lecture name: "linear", "add", "reshape", ...
    module: str | None
    region: object | None
    function: type | None
    args: tuple  # the region's inputs, or the primitive's apply() arguments
    keys: tuple  # value key of each arg (None for a non-tensor)
    output: Tensor
    output_key: tuple
    members: list  # the node keys recorded inside a region unit
    module_type: str | None = None
    other: _Unit | None = None  # the same unit in the other run

    def where(self) -> str:
        if not self.module:
            return f"{self.op} (in the model's own forward)"
        kind = f" ({self.module_type})" if self.module_type else ""
        return f"{self.op} in module {self.module!r}{kind}"


def _op_name(function) -> str:
    return getattr(function, "op_name", function.__name__.lower())


def _units(trace: _Trace) -> list:
    """Group the records: one unit per outermost mappable region, one per other node."""
    units = []
    by_region = {}
    for record in trace.records:
        region = next((r for r in record.regions if _region_rule(r) is not None), None)
        node_key = ("node", id(record.node))
        if region is None:
            units.append(
                _Unit(
                    op=_op_name(record.node.function),
                    module=record.module,
                    region=None,
                    function=record.node.function,
                    args=record.inputs,
                    keys=record.keys,
                    output=record.output,
                    output_key=node_key,
                    members=[],
                )
            )
            continue
        unit = by_region.get(id(region))
        if unit is None:
            inputs = tuple(getattr(region, "inputs", None) or ())
            unit = _Unit(
                op=region.name,
                module=getattr(region, "module", None) or record.module,
                region=region,
                function=None,
                args=inputs,
                keys=trace.region_keys.get(id(region), (None,) * len(inputs)),
                output=region.output,
                output_key=None,
                members=[],
            )
            by_region[id(region)] = unit
            units.append(unit)
        unit.members.append((node_key, record))
    for unit in by_region.values():
        unit.output_key = _region_output_key(unit)
    for unit in units:
        unit.module_type = trace.module_types.get(unit.module)
    trace.units = units
    return units


def _region_output_key(unit) -> tuple:
    """The node whose value the region returns (the last of its nodes, after an in-place change)."""
    output = unit.output
    if not isinstance(output, Tensor):
        return None  # its rule refuses it
    members = {key for key, _ in unit.members}
    key = _key(output)
    if key in members:
        return key
    for node_key, record in reversed(unit.members):  # changed in place since: its own node
        if (getattr(record.node, "annotations", None) or {}).get("region_output"):
            return node_key
    raise UnsupportedOperatorError(
        f"export: {unit.where()}: cannot tell which of its nodes computed its output"
    )


def _describe_unit(unit) -> str:
    return unit.where() if unit is not None else "the end of the model"


def _pair_units(first, second, args, varied, positions):
    """Match the two runs' units; a different sequence means control flow on values."""
    a, b = _units(first), _units(second)
    for k in range(max(len(a), len(b))):
        ua = a[k] if k < len(a) else None
        ub = b[k] if k < len(b) else None
        if ua is None or ub is None or (ua.op, ua.module) != (ub.op, ub.module):
            raise UnsupportedOperatorError(
                f"export: the model ran other operations on a second input "
                f"({_shapes(args, positions)} -> {_shapes(varied, positions)}): "
                f"{_describe_unit(ua)} the first time, {_describe_unit(ub)} the second. "
                "A graph that depends on the input's values or sizes through Python "
                "control flow cannot be written as one ONNX file"
            )
        ua.other, ub.other = ub, ua
    if len(first.outputs) != len(second.outputs):
        raise UnsupportedOperatorError(
            "export: the model returned a different number of outputs on a second input"
        )


# -- lowering: units to ONNX nodes ----------------------------------------------------------


@dataclass
class _Graph:
    """One run's ONNX graph as plain data (compared between the runs before it is written)."""

    nodes: list  # (op_type, inputs, outputs, attrs, name, unit)
    initializers: dict  # name -> (array, unit or None)
    inputs: list  # (name, tensor)
    outputs: list  # (name, tensor)
    unrecorded: dict  # constant name -> "tensor" or "indices": values the graph did not record


_INTERNAL = "internal"
_WRITTEN_THROUGH_A_VIEW = "written through a view"


class _Lowering:
    """Turns one run's units into ONNX nodes, constants and initializers."""

    def __init__(self, trace: _Trace, opset: int, names_in, names_out):
        self.trace = trace
        self.opset = opset
        self.names_in = names_in
        self.names_out = names_out
        self.nodes = []
        self.initializers = {}
        self.names = {}  # value key -> ONNX name (or (_INTERNAL, unit))
        # constants that hold a tensor's values rather than the model's own numbers, so
        # that a refusal can say where such a value comes from (see _compare)
        self.unrecorded = {}
        self.taken = set(names_in) | set(names_out)
        self.unit = None

    # -- the whole run ----------------------------------------------------------------
    def run(self) -> _Graph:
        # each input's key when the model began (an in-place change gives the tensor another)
        for name, key in zip(self.names_in, self.trace.input_keys, strict=True):
            self.names[key] = name
        for unit in self.trace.units:
            self.unit = unit
            for key, _ in unit.members:
                self.names[key] = (_INTERNAL, unit)
            output = self.lower(unit)
            if unit.output_key is not None:
                self.names[unit.output_key] = output
        self.unit = None
        outputs = []
        for name, tensor in zip(self.names_out, self.trace.outputs, strict=True):
            key = _key(tensor)
            if key not in self.names and key not in self.trace.params:
                why = (
                    f": it is {_a_dtype(tensor.dtype)} tensor, and {_NO_INTEGER_OPS}, so "
                    f"{_NOT_YET};"
                    if tensor.dtype.kind in "biu"
                    else " (an operation without a gradient, such as argmax or a comparison, "
                    "or code under no_grad or on .detach()ed values):"
                )
                raise UnsupportedOperatorError(
                    f"export: the output {name!r} was not computed by recorded operations{why} "
                    "export writes only what the graph records, so it would be a constant in "
                    "the file"
                )
            value = self.value_of(tensor, key, f"output {name!r}")
            outputs.append((self.rename_output(value, name), tensor))
        inputs = list(zip(self.names_in, self.trace.inputs, strict=True))
        self.prune([name for name, _ in outputs])
        return _Graph(self.nodes, self.initializers, inputs, outputs, self.unrecorded)

    def prune(self, outputs):
        """Drop nodes and initializers no output needs (a shape check's unused window view)."""
        needed = set(outputs)
        kept = []
        for node in reversed(self.nodes):
            if needed.intersection(node[2]):
                kept.append(node)
                needed.update(node[1])
        self.nodes = kept[::-1]
        self.initializers = {k: v for k, v in self.initializers.items() if k in needed}

    def lower(self, unit) -> str:
        if unit.region is not None:
            return _region_rule(unit.region)(self, unit)
        rule = _PRIMITIVE_RULES.get(unit.function)
        if rule is None:
            raise UnsupportedOperatorError(
                f"export: {unit.where()} has no ONNX mapping (the primitive "
                f"{unit.function.__name__}); write the model with operations that have one, "
                "or run this part outside the exported model"
            )
        return rule(self, unit)

    def rename_output(self, value, name) -> str:
        """Give the graph output its name: rename the node output, or add an Identity."""
        producers = [n for n in self.nodes if value in n[2]]
        is_output_already = any(value == v for v in self.names_out)
        if producers and not is_output_already and value not in self.names_in:
            for node in self.nodes:
                node[1][:] = [name if v == value else v for v in node[1]]
                node[2][:] = [name if v == value else v for v in node[2]]
            for key, v in list(self.names.items()):
                if v == value:
                    self.names[key] = name
            return name
        self.nodes.append(("Identity", [value], [name], {}, f"/Identity_{name}", None))
        return name

    # -- values -----------------------------------------------------------------------
    def value_of(self, arg, key, what="") -> str:
        """The ONNX name of a tensor argument: an input, an earlier result, a weight or a constant."""
        name = self.names.get(key)
        if isinstance(name, tuple) and name[0] is _WRITTEN_THROUGH_A_VIEW:
            raise UnsupportedOperatorError(
                f"export: {self.describe()} reads a tensor after {name[1].where()} changed a "
                "view of it in place; a file cannot write through a view. Read the view "
                "itself, or compute the new tensor out of place"
            )
        if isinstance(name, tuple):
            raise UnsupportedOperatorError(
                f"export: {self.describe()} reads a value computed inside {name[1].where()} "
                "that is not that region's output"
            )
        if name is not None:
            return name
        param = self.trace.params.get(key)
        if param is not None:
            self.initializers[param] = (np.array(arg.data), None)
            self.names[key] = param
            return param
        # a tensor computed outside the recorded graph: fixed into the file as a constant
        # (a second run with other input values catches one computed from the input)
        return self.constant(np.array(arg.data), "constant", unrecorded="tensor")

    def arg(self, i, dtype=None) -> str:
        """The ONNX name of the unit's argument ``i``, cast to ``dtype`` if given."""
        unit = self.unit
        value = unit.args[i]
        if isinstance(value, Tensor):
            name = self.value_of(value, unit.keys[i])
            if dtype is not None and value.dtype != np.dtype(dtype):
                name = self.cast(name, dtype)
            return name
        if value is None:
            return ""
        array = np.asarray(value)
        # an array argument is a tensor's values (where's condition), a number the model's own
        held = "tensor" if isinstance(value, np.ndarray) else None
        if dtype is not None:
            array = array.astype(dtype)
        elif not isinstance(value, np.ndarray) and array.dtype.kind != "b":
            array = array.astype(unit.output.dtype)  # a Python number takes the tensor's type
        return self.constant(array, "constant", unrecorded=held)

    def cast(self, name, dtype) -> str:
        return self.node("Cast", [name], to=_onnx_type(np.dtype(dtype)))

    def constant(self, array, hint, unrecorded=None) -> str:
        """A constant of the file; ``unrecorded`` says it holds values the graph did not
        record: a tensor's ("tensor") or an index array's ("indices")."""
        array = np.asarray(array)
        name = self.fresh(f"{self.scope()}/{hint}")
        self.initializers[name] = (array, self.unit)
        if unrecorded is not None:
            self.unrecorded[name] = unrecorded
        return name

    def ints(self, values, hint) -> str:
        return self.constant(np.asarray(list(values), dtype=np.int64), hint)

    # -- nodes ------------------------------------------------------------------------
    def node(self, op_type, inputs, outputs=1, **attrs):
        name = self.fresh(f"{self.scope()}/{op_type}")
        names = [f"{name}_output_{k}" for k in range(outputs)]
        self.taken.update(names)
        while inputs and inputs[-1] == "":  # optional inputs left out at the end
            inputs = inputs[:-1]
        self.nodes.append((op_type, list(inputs), names, attrs, name, self.unit))
        return names[0] if outputs == 1 else names

    def scope(self) -> str:
        module = self.unit.module if self.unit is not None else None
        if not module:
            return ""
        parts = module.split(".")
        return "/" + "/".join(".".join(parts[: k + 1]) for k in range(len(parts)))

    def fresh(self, name) -> str:
        candidate, k = name, 0
        while candidate in self.taken:
            k += 1
            candidate = f"{name}_{k}"
        self.taken.add(candidate)
        return candidate

    def describe(self) -> str:
        return self.unit.where() if self.unit is not None else "the model's output"

    def unsupported(self, why) -> UnsupportedOperatorError:
        return UnsupportedOperatorError(f"export: {self.describe()}: {why}")

    # -- helpers shared by rules ------------------------------------------------------
    def reduce(self, op_type, data, axes, keepdims) -> str:
        """Reduce* with its axes as an input (opset 18; ReduceSum from 13) or an attribute."""
        axes = [int(a) for a in axes]
        if op_type == "ReduceSum" or self.opset >= 18:
            return self.node(op_type, [data, self.ints(axes, "axes")], keepdims=int(keepdims))
        return self.node(op_type, [data], axes=axes, keepdims=int(keepdims))

    def unsqueeze(self, data, axes) -> str:
        return self.node("Unsqueeze", [data, self.ints(axes, "axes")])

    def squeeze(self, data, axes) -> str:
        return self.node("Squeeze", [data, self.ints(axes, "axes")])


def _onnx_type(dtype) -> int:
    from onnx import helper

    try:
        return helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
    except KeyError:
        raise UnsupportedOperatorError(f"export: dtype {dtype} has no ONNX type") from None


# -- primitive rules: one Function class, one or a few ONNX nodes ---------------------------


def _same_named(op_type):
    def rule(g, unit):
        return g.node(op_type, [g.arg(0)])

    return rule


def _with_number_attr(op_type, attr):
    """A unary op whose second argument is a number: an ONNX attribute (LeakyRelu's alpha)."""

    def rule(g, unit):
        value = unit.args[1]
        if isinstance(value, Tensor) or np.ndim(value) != 0:
            raise g.unsupported(f"{op_type}'s {attr} must be a number, got {type(value).__name__}")
        return g.node(op_type, [g.arg(0)], **{attr: float(value)})

    return rule


def _elementwise(op_type):
    """A binary op; inputs take the result's dtype, as NumPy computes in it."""

    def rule(g, unit):
        dtype = unit.output.dtype
        return g.node(op_type, [g.arg(0, dtype), g.arg(1, dtype)])

    return rule


def _clamp(g, unit):
    x = g.arg(0)
    _, low, high = unit.args
    scalars = all(v is None or np.ndim(v) == 0 for v in (low, high))
    if scalars and not any(isinstance(v, Tensor) for v in (low, high)):
        dtype = unit.output.dtype
        lo = "" if low is None else g.constant(np.asarray(low, dtype=dtype), "min")
        hi = "" if high is None else g.constant(np.asarray(high, dtype=dtype), "max")
        return g.node("Clip", [x, lo, hi])
    if low is not None:
        x = g.node("Max", [x, g.arg(1, unit.output.dtype)])
    if high is not None:
        x = g.node("Min", [x, g.arg(2, unit.output.dtype)])
    return x


def _sign(g, unit):
    """Sign, with 0 at NaN (PyTorch's and this engine's rule; ONNX's Sign keeps NaN)."""
    x = g.arg(0)
    dtype = unit.output.dtype
    if dtype.kind == "b":
        return g.node("Identity", [x])
    sign = g.node("Sign", [x])
    if dtype.kind != "f":
        return sign
    zero = g.constant(np.zeros((), dtype=dtype), "zero")
    return g.node("Where", [g.node("IsNaN", [x]), zero, sign])


def _where(g, unit):
    """Where; with a constant condition that picks one side everywhere, that side itself.

    ``copy_`` is ``where(True, new, old)`` (so that both sides have gradients): an
    in-place activation (``nn.SiLU(inplace=True)``) is then written as its
    out-of-place twin, without a Where.
    """
    condition = unit.args[0]
    dtype = unit.output.dtype
    if not isinstance(condition, Tensor) and condition.size and condition.all() == condition.any():
        side = 1 if condition.all() else 2
        if np.shape(unit.args[side]) == unit.output.shape:
            return g.arg(side, dtype)
    return g.node("Where", [g.arg(0, np.bool_), g.arg(1, dtype), g.arg(2, dtype)])


def _cast(g, unit):
    return g.cast(g.arg(0), unit.output.dtype)


def _base_changed_through_a_view(g, unit):
    """CopySlices: no node.  The model goes on from the view, whose own node is written;
    reading the base afterwards is refused (see value_of)."""
    return (_WRITTEN_THROUGH_A_VIEW, unit)


def _alias(g, unit):
    """clone() and contiguous(): ONNX values are never changed in place, so the value itself."""
    return g.arg(0)


def _matmul(g, unit):
    dtype = unit.output.dtype
    return g.node("MatMul", [g.arg(0, dtype), g.arg(1, dtype)])


def _reduction(op_type):
    def rule(g, unit):
        x, dims, keepdim = unit.args[:3]  # (max and min also take NaN's rule: ONNX's own)
        axes = range(x.ndim) if dims is None else dims
        if x.ndim == 0 or len(tuple(axes)) == 0:
            return g.node("Identity", [g.arg(0)])
        return g.reduce(op_type, g.arg(0), axes, keepdim)

    return rule


# The dtype CumSum adds in, by the result's dtype (integers and bools give int64)
_CUMSUM_DTYPE = {
    np.dtype(np.float16): np.dtype(np.float32),
    np.dtype(np.float32): np.dtype(np.float32),
    np.dtype(np.float64): np.dtype(np.float64),
    np.dtype(np.int64): np.dtype(np.int64),
}


def _cumsum(g, unit):
    """y_j = x_0 + ... + x_j along dim: CumSum with ONNX's defaults (exclusive=0, reverse=0).

    The input takes the result's dtype, as the forward adds in it (int64 for
    integers and bools).  float16 is added in float32 and each output rounded to
    float16, between two Casts: that is the forward's (PyTorch's CPU kernel's) own
    arithmetic, and CumSum has no float16 before opset 14.  float32 is added in
    float32 by ONNX Runtime where the forward adds in float64 and rounds each
    output, so the file's values differ in the last bits: after n terms by up to
    about n * eps * (|x_0| + ... + |x_n-1|), as in the file torch.onnx.export
    writes.  Complex numbers have no CumSum and are refused.
    """
    x, dim = unit.args
    dtype = unit.output.dtype
    inner = _CUMSUM_DTYPE.get(dtype)
    if inner is None:
        raise g.unsupported(
            f"ONNX's CumSum adds real numbers (floating point and integer types), not {dtype}"
        )
    if x.ndim == 0:  # the sum of one number is that number (CumSum refuses a scalar)
        return g.arg(0, dtype)
    axis = g.constant(np.asarray(dim, dtype=np.int64), "axis")
    y = g.node("CumSum", [g.arg(0, inner), axis])
    return y if inner == dtype else g.cast(y, dtype)


def _cumprod(g, unit):
    """No ONNX operator multiplies cumulatively; exp(cumsum(log x)) is wrong at zeros and
    negative x, so the file would not compute what the model computes: refused."""
    raise g.unsupported(
        "ONNX has a cumulative sum (CumSum) but no cumulative product, and "
        "exp(cumsum(log x)) would be wrong where x is zero or negative; compute the "
        "cumulative product outside the exported model"
    )


def _dynamic_positions(shape_a, shape_b) -> list:
    return [j for j, (a, b) in enumerate(zip(shape_a, shape_b, strict=True)) if a != b]


def _reshape(g, unit):
    """Reshape to the output shape; a size that follows the batch is copied (0) or inferred (-1)."""
    x_shape, out_shape = unit.args[0].shape, unit.output.shape
    other_in, other_out = unit.other.args[0].shape, unit.other.output.shape
    target = list(out_shape)
    inferred = []
    for j in _dynamic_positions(out_shape, other_out):
        if j < len(x_shape) and x_shape[j] == out_shape[j] and other_in[j] == other_out[j]:
            target[j] = 0  # ONNX: copy this size from the input
        else:
            inferred.append(j)
    if len(inferred) > 1:
        raise g.unsupported(
            f"reshape from {x_shape} to {out_shape}: more than one size changes with the "
            "batch size, which one ONNX Reshape cannot express"
        )
    for j in inferred:
        target[j] = -1
    if any(
        s == 0 for j, s in enumerate(out_shape) if target[j] == 0 and x_shape[j : j + 1] != (0,)
    ):
        raise g.unsupported(f"reshape to {out_shape}: a size of 0 cannot be written")
    return g.node("Reshape", [g.arg(0), g.ints(target, "shape")])


def _permute(g, unit):
    return g.node("Transpose", [g.arg(0)], perm=[int(d) for d in unit.args[1]])


def _expand(g, unit):
    """Expand to the output shape; a size that follows the batch comes from the input (1)."""
    x_shape, out_shape = unit.args[0].shape, unit.output.shape
    other_in, other_out = unit.other.args[0].shape, unit.other.output.shape
    target = list(out_shape)
    lead = len(out_shape) - len(x_shape)
    for j in _dynamic_positions(out_shape, other_out):
        i = j - lead
        if i >= 0 and x_shape[i] == out_shape[j] and other_in[i] == other_out[j]:
            target[j] = 1  # ONNX broadcasting keeps the input's size
        else:
            raise g.unsupported(
                f"expand from {x_shape} to {out_shape}: the size of dim {j} changes with the "
                "batch size without coming from the input"
            )
    return g.node("Expand", [g.arg(0), g.ints(target, "shape")])


def _cat(g, unit):
    dim = int(unit.args[0])
    dtype = unit.output.dtype
    parts = [g.arg(i, dtype) for i in range(1, len(unit.args))]
    return g.node("Concat", parts, axis=dim)


def _pad(g, unit):
    _, widths, value = unit.args
    widths = [tuple(int(w) for w in pair) for pair in widths]
    pads = [b for b, _ in widths] + [a for _, a in widths]
    fill = g.constant(np.asarray(value, dtype=unit.output.dtype), "value")
    return g.node("Pad", [g.arg(0), g.ints(pads, "pads"), fill], mode="constant")


_INT64_MAX = np.iinfo(np.int64).max
_INT64_MIN = np.iinfo(np.int64).min


def _getitem(g, unit):
    """Basic indexing (ints, slices, None, ...) as Slice, Gather and Unsqueeze; one index array as Gather."""
    x, index = unit.args
    items = list(index) if isinstance(index, tuple) else [index]
    arrays = [k for k, item in enumerate(items) if isinstance(item, np.ndarray)]
    if any(items[k].dtype == np.bool_ for k in arrays) or len(arrays) > 1:
        raise g.unsupported(
            "indexing with a boolean mask or with several index arrays has no ONNX mapping "
            "here (its result's shape depends on the values)"
        )
    # by identity: ``Ellipsis in items`` compares an index array elementwise and fails
    k = next((k for k, item in enumerate(items) if item is Ellipsis), None)
    if k is not None:
        used = sum(1 for item in items if item is not None and item is not Ellipsis)
        items[k : k + 1] = [slice(None)] * (x.ndim - used)
    used = sum(1 for item in items if item is not None)
    items += [slice(None)] * (x.ndim - used)
    starts, ends, axes, steps = [], [], [], []
    gathers = []  # (input axis, index) applied after the slice
    inserted = []  # output positions of None
    axis = out_axis = 0
    for item in items:
        if item is None:
            inserted.append(out_axis)
            out_axis += 1
            continue
        if isinstance(item, slice):
            if item != slice(None):
                step = 1 if item.step is None else int(item.step)
                start = item.start if item.start is not None else (0 if step > 0 else _INT64_MAX)
                stop = (
                    item.stop if item.stop is not None else (_INT64_MAX if step > 0 else _INT64_MIN)
                )
                starts.append(int(start))
                ends.append(int(stop))
                axes.append(axis)
                steps.append(step)
            out_axis += 1
        else:  # an int, or one integer index array
            gathers.append((axis, item))
            out_axis += np.ndim(item)
        axis += 1
    value = g.arg(0)
    if axes:
        value = g.node(
            "Slice",
            [
                value,
                g.ints(starts, "starts"),
                g.ints(ends, "ends"),
                g.ints(axes, "axes"),
                g.ints(steps, "steps"),
            ],
        )
    for axis, item in reversed(gathers):  # from the last axis, so earlier ones stay in place
        array = "indices" if isinstance(item, np.ndarray) else None  # not the model's own int
        indices = g.constant(np.asarray(item, dtype=np.int64), "indices", unrecorded=array)
        value = g.node("Gather", [value, indices], axis=axis)
    if inserted:
        value = g.unsqueeze(value, inserted)
    return value


def _window_taps(g, x, out_hw, kernel, stride, dilation):
    """(N, C, oh, ow, kh*kw): every tap of every window, one strided Slice per tap (exact)."""
    (oh, ow), (sh, sw), (dh, dw) = out_hw, stride, dilation
    taps = []
    for p in range(kernel[0]):
        for q in range(kernel[1]):
            starts = [p * dh, q * dw]
            ends = [p * dh + sh * (oh - 1) + 1, q * dw + sw * (ow - 1) + 1]
            tap = g.node(
                "Slice",
                [
                    x,
                    g.ints(starts, "starts"),
                    g.ints(ends, "ends"),
                    g.ints([2, 3], "axes"),
                    g.ints([sh, sw], "steps"),
                ],
            )
            taps.append(g.unsqueeze(tap, [4]))
    return g.node("Concat", taps, axis=4) if len(taps) > 1 else taps[0]


def _windows2d(g, unit):
    """unfold's window view (N, C, oh, ow, kh, kw), written tap by tap."""
    _, kernel, stride, dilation = unit.args
    _, c, oh, ow, kh, kw = unit.output.shape
    taps = _window_taps(g, g.arg(0), (oh, ow), kernel, stride, dilation)
    return g.node("Reshape", [taps, g.ints([0, c, oh, ow, kh, kw], "shape")])  # 0: the batch


def _im2col(g, unit):
    """conv2d's matrices of windows (N, g, C/g*kh*kw, oh*ow) of the zero-padded input, from the taps."""
    x, kernel, stride, padding, dilation, groups = unit.args
    c, (kh, kw) = x.shape[1], kernel
    (top, bottom), (left, right) = padding
    _, _, k, _ = unit.output.shape
    h, w = x.shape[2] + top + bottom, x.shape[3] + left + right
    oh = (h - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    ow = (w - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    source = g.arg(0)
    if top or bottom or left or right:
        pads = [0, 0, int(top), int(left), 0, 0, int(bottom), int(right)]
        zero = g.constant(np.zeros((), dtype=x.dtype), "value")
        source = g.node("Pad", [source, g.ints(pads, "pads"), zero], mode="constant")
    taps = _window_taps(g, source, (oh, ow), kernel, stride, dilation)  # (N, C, oh, ow, kh*kw)
    shape = [0, groups, c // groups, oh, ow, kh * kw]
    grouped = g.node("Reshape", [taps, g.ints(shape, "shape")])
    grouped = g.node("Transpose", [grouped], perm=[0, 1, 2, 5, 3, 4])  # (N, g, C/g, taps, oh, ow)
    return g.node("Reshape", [grouped, g.ints([0, groups, k, oh * ow], "shape")])


def _window_max(g, unit):
    """max_pool2d's primitive: the maximum of each window, i.e. MaxPool (checked)."""
    x, kernel, stride, dilation, _ = unit.args
    span = [d * (k - 1) + 1 for k, d in zip(kernel, dilation, strict=True)]
    windows = np.lib.stride_tricks.sliding_window_view(x.data, span, axis=(2, 3))
    windows = windows[:, :, :: stride[0], :: stride[1], :: dilation[0], :: dilation[1]]
    maxima = windows.max(axis=(-2, -1)) if windows.size else windows.sum(axis=(-2, -1))
    if maxima.shape != unit.output.shape or not np.array_equal(
        maxima, unit.output.data, equal_nan=True
    ):
        raise g.unsupported("its values are not the maxima of its windows")
    return g.node(
        "MaxPool",
        [g.arg(0)],
        kernel_shape=list(kernel),
        strides=list(stride),
        dilations=list(dilation),
    )


def _window_sum(g, unit):
    """avg_pool2d's primitive: the sum of each window, its taps gathered and summed."""
    _, kernel, stride, dilation, out_hw = unit.args
    taps = _window_taps(g, g.arg(0), out_hw, kernel, stride, dilation)  # (N, C, oh, ow, taps)
    return g.reduce("ReduceSum", taps, [4], keepdims=False)


def _gather(g, unit):
    _, dim, index = unit.args
    indices = g.constant(np.asarray(index, dtype=np.int64), "indices", unrecorded="indices")
    return g.node("GatherElements", [g.arg(0), indices], axis=int(dim))


_PRIMITIVE_RULES = {
    ops.Add: _elementwise("Add"),
    ops.Sub: _elementwise("Sub"),
    ops.Mul: _elementwise("Mul"),
    ops.Div: _elementwise("Div"),
    ops.Pow: _elementwise("Pow"),
    ops.Maximum: _elementwise("Max"),
    ops.Minimum: _elementwise("Min"),
    ops.Neg: _same_named("Neg"),
    ops.Exp: _same_named("Exp"),
    ops.Log: _same_named("Log"),
    ops.Sqrt: _same_named("Sqrt"),
    ops.Abs: _same_named("Abs"),
    ops.Sin: _same_named("Sin"),
    ops.Cos: _same_named("Cos"),
    ops.Tanh: _same_named("Tanh"),
    ops.Sigmoid: _same_named("Sigmoid"),
    ops.Relu: _same_named("Relu"),
    ops.LeakyRelu: _with_number_attr("LeakyRelu", "alpha"),
    ops.Elu: _with_number_attr("Elu", "alpha"),
    ops.Sign: _sign,
    ops.Floor: _same_named("Floor"),
    ops.Ceil: _same_named("Ceil"),
    ops.Round: _same_named("Round"),  # half to even, as NumPy
    ops.Clamp: _clamp,
    ops.Where: _where,
    ops.Cast: _cast,
    ops.Clone: _alias,
    _function.CopySlices: _base_changed_through_a_view,
    ops.Contiguous: _alias,
    ops.MatMul: _matmul,
    ops.Sum: _reduction("ReduceSum"),
    ops.Amax: _reduction("ReduceMax"),
    ops.Amin: _reduction("ReduceMin"),
    ops.Prod: _reduction("ReduceProd"),
    ops.Cumsum: _cumsum,
    ops.Cumprod: _cumprod,
    ops.Reshape: _reshape,
    ops.Permute: _permute,
    ops.Expand: _expand,
    ops.Cat: _cat,
    ops.Pad: _pad,
    ops.GetItem: _getitem,
    ops.Gather: _gather,
    ops.Windows2d: _windows2d,
    ops.window.Im2col: _im2col,
    ops.window.WindowMax: _window_max,
    ops.window.WindowSum: _window_sum,
    ops.Erf: _same_named("Erf"),
    ops.Softplus: _same_named("Softplus"),
}


# -- region rules: one lecture-level op, one ONNX operator -------------------------------


def _pair(value):
    if isinstance(value, (int, np.integer)):
        return (int(value), int(value))
    value = tuple(int(v) for v in value)
    return value * 2 if len(value) == 1 else value


def _attr(unit, name, default):
    attrs = getattr(unit.region, "attrs", None) or {}
    value = attrs.get(name, default)
    return default if value is None and default is not None else value


def _linear(g, unit):
    x = unit.args[0]
    bias = unit.args[2] if len(unit.args) > 2 else None
    dtype = unit.output.dtype
    if x.ndim == 2:  # Y = X W^T + b, as one Gemm
        inputs = [g.arg(0, dtype), g.arg(1, dtype)]
        if bias is not None:
            inputs.append(g.arg(2, dtype))
        return g.node("Gemm", inputs, transB=1)
    w_t = g.node("Transpose", [g.arg(1, dtype)], perm=[1, 0])
    out = g.node("MatMul", [g.arg(0, dtype), w_t])
    return out if bias is None else g.node("Add", [out, g.arg(2, dtype)])


def _conv2d(g, unit):
    weight = unit.args[1]
    bias = unit.args[2] if len(unit.args) > 2 else None
    kernel = weight.shape[2:]
    stride = _pair(_attr(unit, "stride", 1))
    dilation = _pair(_attr(unit, "dilation", 1))
    padding = _attr(unit, "padding", 0)
    if padding == "valid":
        pads = [0, 0, 0, 0]
    elif padding == "same":  # PyTorch's split: the odd extra goes after
        totals = [d * (k - 1) for d, k in zip(dilation, kernel, strict=True)]
        pads = [t // 2 for t in totals] + [t - t // 2 for t in totals]
    else:
        ph, pw = _pair(padding)
        pads = [ph, pw, ph, pw]
    dtype = unit.output.dtype
    inputs = [g.arg(0, dtype), g.arg(1, dtype)] + ([g.arg(2, dtype)] if bias is not None else [])
    return g.node(
        "Conv",
        inputs,
        kernel_shape=list(kernel),
        strides=list(stride),
        pads=pads,
        dilations=list(dilation),
        group=int(_attr(unit, "groups", 1)),
    )


def _pool_window(unit):
    """Kernel, stride and padding, and the end padding that gives the region's output size.

    In ceil mode PyTorch's last window may run past the padded input; padding the
    end by that much (with -inf for max, not counted for average) and flooring
    gives the same windows in every ONNX runtime.
    """
    x = unit.args[0]
    kernel = _pair(_attr(unit, "kernel_size", None))
    stride = _attr(unit, "stride", None)
    stride = kernel if stride is None or stride in ((), []) else _pair(stride)
    padding = _pair(_attr(unit, "padding", 0))
    dilation = _pair(_attr(unit, "dilation", 1))
    size, out = x.shape[-2:], unit.output.shape[-2:]
    extra = [
        max((o - 1) * s + d * (k - 1) + 1 - (n + 2 * p), 0)
        for n, o, k, s, p, d in zip(size, out, kernel, stride, padding, dilation, strict=True)
    ]
    return kernel, stride, padding, dilation, extra


def _batched(g, unit, build):
    """Run ``build`` on a 4-D (N, C, H, W) value; an unbatched (C, H, W) input gets N = 1."""
    value = g.arg(0)
    if unit.args[0].ndim == 3:
        return g.squeeze(build(g.unsqueeze(value, [0])), [0])
    return build(value)


def _max_pool2d(g, unit):
    kernel, stride, padding, dilation, extra = _pool_window(unit)
    pads = list(padding) + [p + e for p, e in zip(padding, extra, strict=True)]
    return _batched(
        g,
        unit,
        lambda x: g.node(
            "MaxPool",
            [x],
            kernel_shape=list(kernel),
            strides=list(stride),
            pads=pads,
            dilations=list(dilation),
        ),
    )


def _avg_pool2d(g, unit):
    kernel, stride, padding, _, extra = _pool_window(unit)
    include_pad = bool(_attr(unit, "count_include_pad", True))
    divisor = _attr(unit, "divisor_override", None)
    pads = list(padding) + [p + e for p, e in zip(padding, extra, strict=True)]
    exact = not divisor and (not include_pad or not any(extra))
    out_hw = unit.output.shape[-2:]

    def build(x):
        y = g.node(
            "AveragePool",
            [x],
            kernel_shape=list(kernel),
            strides=list(stride),
            pads=pads,
            count_include_pad=int(include_pad or not exact),
        )
        if exact:
            return y
        # AveragePool divided each window's sum by kh * kw; PyTorch divides by
        # divisor_override, or by the taps inside input + padding (not the ceil-mode end)
        if divisor:
            counts = np.full(out_hw, float(divisor))
        else:
            size = unit.args[0].shape[-2:]
            per_axis = [
                np.minimum(np.arange(o) * s + k, n + 2 * p) - np.arange(o) * s
                for o, s, k, n, p in zip(out_hw, stride, kernel, size, padding, strict=True)
            ]
            counts = np.outer(per_axis[0], per_axis[1]).astype(np.float64)
        scale = (kernel[0] * kernel[1] / counts).astype(unit.output.dtype)
        return g.node("Mul", [y, g.constant(scale, "divisor")])

    return _batched(g, unit, build)


def _adaptive_avg_pool2d(g, unit):
    (h, w), (oh, ow) = unit.args[0].shape[-2:], unit.output.shape[-2:]
    if (oh, ow) == (1, 1):
        return g.node("GlobalAveragePool", [g.arg(0)])
    kernel = [h // oh, w // ow]
    return g.node("AveragePool", [g.arg(0)], kernel_shape=kernel, strides=kernel)


def _adaptive_accepts(region) -> bool:
    x, out = region.inputs[0], region.output
    if not isinstance(x, Tensor) or not isinstance(out, Tensor) or x.ndim != 4:
        return False  # the matrix products it is made of are written instead
    (h, w), (oh, ow) = x.shape[-2:], out.shape[-2:]
    return (oh, ow) == (1, 1) or (h % oh == 0 and w % ow == 0)


def _activation(op_type, **attrs_from):
    """An activation with ONNX attributes taken from the region's attrs: {onnx name: (attr, default)}."""

    def rule(g, unit):
        attrs = {k: float(_attr(unit, name, default)) for k, (name, default) in attrs_from.items()}
        return g.node(op_type, [g.arg(0)], **attrs)

    return rule


def _gelu(g, unit):
    approximate = _attr(unit, "approximate", "none")
    if g.opset >= 20:
        return g.node("Gelu", [g.arg(0)], approximate=approximate)
    x = g.arg(0)
    dtype = unit.output.dtype

    def c(value, hint):
        return g.constant(np.asarray(value, dtype=dtype), hint)

    if approximate == "tanh":  # 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
        cube = g.node("Mul", [g.node("Mul", [x, x]), x])
        inner = g.node("Add", [x, g.node("Mul", [cube, c(0.044715, "coefficient")])])
        t = g.node("Tanh", [g.node("Mul", [inner, c(math.sqrt(2.0 / math.pi), "scale")])])
    else:  # 0.5 x (1 + erf(x / sqrt 2))
        t = g.node("Erf", [g.node("Mul", [x, c(1 / math.sqrt(2.0), "scale")])])
    half_x = g.node("Mul", [x, c(0.5, "half")])
    return g.node("Mul", [half_x, g.node("Add", [t, c(1.0, "one")])])


def _softmax_like(op_type):
    def rule(g, unit):
        x = unit.args[0]
        dim = _attr(unit, "dim", None)
        if dim is None:  # PyTorch's implicit choice (deprecated, with a warning)
            dim = 0 if x.ndim in (0, 1, 3) else 1
        dtype = _attr(unit, "dtype", None)
        value = g.arg(0, dtype) if dtype is not None else g.arg(0)
        return g.node(op_type, [value], axis=int(dim) % max(x.ndim, 1))

    return rule


def _batch_norm(g, unit):
    x = unit.args[0]
    channels = x.shape[1]
    dtype = unit.output.dtype

    def arg_or(i, fill, hint):
        if len(unit.args) > i and unit.args[i] is not None:
            return g.arg(i, dtype)
        return g.constant(np.full(channels, fill, dtype=dtype), hint)

    scale, bias = arg_or(3, 1.0, "scale"), arg_or(4, 0.0, "bias")
    mean, var = g.arg(1, dtype), g.arg(2, dtype)
    return g.node(
        "BatchNormalization",
        [g.arg(0, dtype), scale, bias, mean, var],
        epsilon=float(_attr(unit, "eps", 1e-5)),
    )


def _batch_norm_with_batch_statistics(g, unit):
    """batch_norm's primitive, BatchNorm (the batch's own mean and variance, as in
    training or without running statistics): the lecture's formula in ONNX operators,
    (x - mean) / sqrt(var + eps) * w + b, the means over every axis but 1."""
    x, weight, bias, _, _, eps = unit.args  # (the batch's statistics are recomputed)
    dtype = unit.output.dtype
    axes = [0, *range(2, x.ndim)]
    data = g.arg(0, dtype)
    centered = g.node("Sub", [data, g.reduce("ReduceMean", data, axes, keepdims=True)])
    var = g.reduce("ReduceMean", g.node("Mul", [centered, centered]), axes, keepdims=True)
    epsilon = g.constant(np.asarray(eps, dtype=dtype), "eps")
    out = g.node("Div", [centered, g.node("Sqrt", [g.node("Add", [var, epsilon])])])
    if weight is not None:
        out = g.node("Mul", [out, g.unsqueeze(g.arg(1, dtype), axes)])
    if bias is not None:
        out = g.node("Add", [out, g.unsqueeze(g.arg(2, dtype), axes)])
    return out


_PRIMITIVE_RULES[ops.BatchNorm] = _batch_norm_with_batch_statistics


def _batch_norm_accepts(region) -> bool:
    # with batch statistics (training, or no running statistics) the composed ops are written
    attrs = getattr(region, "attrs", None) or {}
    inputs = region.inputs
    return (
        not attrs.get("training", False)
        and len(inputs) >= 3
        and inputs[1] is not None
        and inputs[2] is not None
        and isinstance(inputs[0], Tensor)
        and inputs[0].ndim >= 2
    )


def _dropout(g, unit):
    if _attr(unit, "training", True) and _attr(unit, "p", 0.5) > 0:
        raise g.unsupported(
            "dropout in training mode is random, so no file computes it; export runs the "
            "model in eval mode, so this is F.dropout(..., training=True) called explicitly"
        )
    return g.node("Identity", [g.arg(0)])


def _flatten(g, unit):
    return g.node("Flatten", [g.arg(0)], axis=1)


def _flatten_accepts(region) -> bool:
    # flatten(start_dim=1) is ONNX Flatten(axis=1); other dims are written as a Reshape
    x = region.inputs[0]
    if not isinstance(x, Tensor) or x.ndim < 2:
        return False
    attrs = getattr(region, "attrs", None) or {}
    start, end = attrs.get("start_dim", 1), attrs.get("end_dim", -1)
    return start % x.ndim == 1 and end % x.ndim == x.ndim - 1


def _always(region) -> bool:
    return True


# name -> (rule, accepts): a region a rule does not accept is written from the ops inside it
_REGION_RULES = {
    "linear": (_linear, _always),
    "conv2d": (_conv2d, lambda r: isinstance(r.inputs[0], Tensor) and r.inputs[0].ndim == 4),
    "max_pool2d": (_max_pool2d, _always),
    "avg_pool2d": (_avg_pool2d, _always),
    "adaptive_avg_pool2d": (_adaptive_avg_pool2d, _adaptive_accepts),
    "relu": (_same_named("Relu"), _always),
    "sigmoid": (_same_named("Sigmoid"), _always),
    "tanh": (_same_named("Tanh"), _always),
    "leaky_relu": (_activation("LeakyRelu", alpha=("negative_slope", 0.01)), _always),
    "elu": (_activation("Elu", alpha=("alpha", 1.0)), _always),
    "gelu": (_gelu, _always),
    "softmax": (_softmax_like("Softmax"), lambda r: r.inputs[0].ndim >= 1),
    "log_softmax": (_softmax_like("LogSoftmax"), lambda r: r.inputs[0].ndim >= 1),
    "batch_norm": (_batch_norm, _batch_norm_accepts),
    "dropout": (_dropout, _always),
    "flatten": (_flatten, _flatten_accepts),
}
# The fused primitive computes the linear region's own formula (its input is always 2-D)
_PRIMITIVE_RULES[ops.Linear] = _linear


def _conv2d_primitive(g, unit):
    """conv2d's fused primitive, Conv2d: one Conv, its geometry read from its own arguments."""
    _, weight, bias, stride, widths, dilation = unit.args
    (top, bottom), (left, right) = widths
    dtype = unit.output.dtype
    inputs = [g.arg(0, dtype), g.arg(1, dtype)] + ([g.arg(2, dtype)] if bias is not None else [])
    return g.node(
        "Conv",
        inputs,
        kernel_shape=list(weight.shape[2:]),
        strides=[int(s) for s in stride],
        pads=[int(top), int(left), int(bottom), int(right)],
        dilations=[int(d) for d in dilation],
        group=1,
    )


_PRIMITIVE_RULES[ops.Conv2d] = _conv2d_primitive


def _log_softmax_primitive(g, unit):
    """log_softmax's fused primitive, LogSoftmax: one LogSoftmax over its one dim."""
    (dim,) = unit.args[1]
    return g.node("LogSoftmax", [g.arg(0)], axis=int(dim))


_PRIMITIVE_RULES[ops.LogSoftmax] = _log_softmax_primitive


def _not_one_tensor(g, unit):
    output = unit.output
    what = "None" if output is None else type(output).__name__
    hint = " (return_indices=True)" if _attr(unit, "return_indices", False) else ""
    raise g.unsupported(f"it returns {what}{hint}, which has no ONNX mapping here")


def _region_rule(region):
    """The rule that writes ``region`` as one ONNX operator, or None (write its ops instead)."""
    entry = _REGION_RULES.get(getattr(region, "name", None))
    if entry is None:
        return None
    if not isinstance(getattr(region, "output", None), Tensor):
        return _not_one_tensor
    rule, accepts = entry
    try:
        return rule if accepts(region) else None
    except (AttributeError, IndexError, TypeError):
        return None


# -- the two runs must agree --------------------------------------------------------------


def _compare(a: _Graph, b: _Graph, args, varied, positions):
    """Refuse when the two runs' graphs differ: something depends on values or batch size."""
    changed = f"{_shapes(args, positions)} -> {_shapes(varied, positions)}"
    integer_inputs = [name for name, tensor in a.inputs if tensor.dtype.kind in "biu"]

    def refuse(unit, detail, hint=""):
        where = unit.where() if unit is not None else "the model"
        raise UnsupportedOperatorError(
            f"export: {where} depends on the input's values or batch size ({detail}; inputs "
            f"{changed}), so one ONNX file cannot compute it. Compute it with tensor "
            "operations, not .data, .numpy(), .item() or Python numbers taken from the input; "
            "or export with fixed sizes: dynamic_axes={}" + (hint or _shift_hint(unit))
        )

    for node_a, node_b in zip(a.nodes, b.nodes):
        if node_a[:4] != node_b[:4] and not _same_attrs(node_a, node_b):
            refuse(node_a[5], f"its ONNX {node_a[0]} differs between two runs")
    if len(a.nodes) != len(b.nodes):
        refuse(None, "a different number of ONNX nodes")
    for name, (array, unit) in a.initializers.items():
        other = b.initializers.get(name)
        if other is None or not _same_array(array, other[0]):
            held = a.unrecorded.get(name)
            if held is not None and array.dtype.kind in "biu":
                resized = other is not None and other[0].shape != array.shape
                raise UnsupportedOperatorError(
                    _integer_values(unit, array.dtype, held, changed, resized)
                )
            hint = ""
            if held == "tensor" and integer_inputs:  # a float tensor, maybe x.float() of an int
                hint = (
                    f". Operations on the integer input {', '.join(map(repr, integer_inputs))} "
                    f"(.float(), arithmetic, cumsum) are not recorded either: {_NOT_YET}"
                )
            refuse(unit, f"the constant {name} differs between two runs", hint)
    if [n for n, _ in a.outputs] != [n for n, _ in b.outputs]:
        refuse(None, "its outputs differ")


# Why a value computed from an integer input never reaches the graph: the engine records
# an operation only when one of its inputs requires grad, and only floating-point
# tensors can.  Writing these operations would need the engine to record them during
# export and every rule to handle integer dtypes (NumPy's promotions against ONNX's type
# constraints: exp of an int64 tensor is float64 here, ONNX's Exp has no integer form).
_NO_INTEGER_OPS = (
    "the engine records no operation on integer or bool tensors (integer arithmetic, "
    "cumsum of integers, casts, comparisons, argmax: none takes a gradient)"
)
_NOT_YET = "integer computations on the input cannot be exported yet"


def _a_dtype(dtype) -> str:
    dtype = str(np.dtype(dtype))
    return f"{'an' if dtype[0] in 'aeiou' else 'a'} {dtype}"


def _integer_values(unit, dtype, held, changed, resized) -> str:
    """The refusal of an integer or bool value the model computed from its input (unrecorded)."""
    where = unit.where() if unit is not None else "the model"
    if held == "indices":
        what = (
            f"{dtype} indices taken from the input (the integer input itself, or integers "
            "computed from an input, such as argmax)"
        )
        advice = "Do this lookup outside the exported model"
    else:
        what = f"{_a_dtype(dtype)} tensor computed from the input"
        advice = "Compute such values before the model and pass them in as inputs of their own"
    if resized:  # autodiff.arange(x.shape[0]) is exported with fixed sizes
        advice += "; or, if it depends only on the input's sizes, export with fixed sizes: "
        advice += "dynamic_axes={}"
    return (
        f"export: {where} reads {what}, and {_NOT_YET}: {_NO_INTEGER_OPS}, so the file "
        f"would hold the first run's values as a constant, and a second run (inputs "
        f"{changed}) gave other values. {advice}"
    )


def _shift_hint(unit) -> str:
    """A hint when the refused op subtracts a detached max: ``x.logsumexp(dim)``."""
    if unit is None or unit.op != "sub" or unit.region is not None:
        return ""
    x, shift = unit.args[0], unit.args[1]
    if not isinstance(x, Tensor) or not isinstance(shift, Tensor) or shift.requires_grad:
        return ""
    if shift.ndim != x.ndim or 1 not in shift.shape:
        return ""
    return (
        ". (x.logsumexp(dim) subtracts a detached maximum like this one; log_softmax "
        "(nn.functional's or x.log_softmax(dim)) exports as one LogSoftmax: "
        "x - x.log_softmax(dim) is logsumexp at every position)"
    )


def _same_attrs(node_a, node_b) -> bool:
    return (
        node_a[:3] == node_b[:3]
        and all(
            _same_array(np.asarray(node_a[3][k]), np.asarray(node_b[3].get(k))) for k in node_a[3]
        )
        and node_a[3].keys() == node_b[3].keys()
    )


def _same_array(x, y) -> bool:
    x, y = np.asarray(x), np.asarray(y)
    return (
        x.shape == y.shape
        and x.dtype == y.dtype
        and np.array_equal(x, y, equal_nan=x.dtype.kind in "fc")
    )


# -- the ModelProto ------------------------------------------------------------------------


def _model_proto(onnx, graph, first, second, names_in, names_out, dynamic_axes, dynamic, opset):
    from onnx import helper, numpy_helper

    symbols = {}  # (size in run 1, size in run 2) -> dim name, so outputs reuse the input's names
    inputs = []
    for (name, tensor), other, axes in zip(graph.inputs, second.inputs, dynamic, strict=True):
        dims = []
        for j, size in enumerate(tensor.shape):
            if j in axes:
                symbols.setdefault((size, other.shape[j]), axes[j])
                dims.append(axes[j])
            else:
                dims.append(size)
        inputs.append(helper.make_tensor_value_info(name, _onnx_type(tensor.dtype), dims))
    outputs = []
    for (name, tensor), other in zip(graph.outputs, second.outputs, strict=True):
        declared = {}
        if dynamic_axes and name in dynamic_axes:
            declared = {
                a % max(tensor.ndim, 1): d for a, d in _axes_of(dynamic_axes[name], name).items()
            }
        dims = []
        for j, size in enumerate(tensor.shape):
            if j in declared:
                dims.append(declared[j])
            elif j < other.ndim and other.shape[j] != size:
                dims.append(symbols.get((size, other.shape[j]), f"{name}_dim_{j}"))
            else:
                dims.append(size)
        outputs.append(helper.make_tensor_value_info(name, _onnx_type(tensor.dtype), dims))
    nodes = []
    for op_type, node_inputs, node_outputs, attrs, name, unit in graph.nodes:
        doc = unit.where() if unit is not None else None
        nodes.append(
            helper.make_node(op_type, node_inputs, node_outputs, name=name, doc_string=doc, **attrs)
        )
    initializers = [
        numpy_helper.from_array(np.array(array, order="C"), name)
        for name, (array, _) in graph.initializers.items()
    ]
    model_graph = helper.make_graph(nodes, "autodiff", inputs, outputs, initializers)
    opset_import = [helper.make_opsetid("", opset)]
    model = helper.make_model(
        model_graph,
        opset_imports=opset_import,
        producer_name="autodiff",
        producer_version=_version(),
        ir_version=helper.find_min_ir_version_for(opset_import),
    )
    return model


def _version() -> str:
    from . import __version__

    return __version__
