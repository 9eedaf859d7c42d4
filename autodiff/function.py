"""``Function`` and ``Node``: how one operation is recorded and differentiated.

Every operation, built-in or written by a user, is a ``Function`` subclass with
two static methods that sit side by side:

* ``forward(ctx, *inputs)`` computes the value on NumPy arrays;
* ``backward(ctx, grad)`` returns one gradient per input of ``forward``
  (``None`` for inputs that take no gradient), written with Tensor operations so
  that ``create_graph=True`` can differentiate it again.

``Function.apply`` runs ``forward`` and, when grad mode is on and some input
requires grad, records a ``Node`` (PyTorch's ``grad_fn``) that links to the nodes
of its inputs.  The node doubles as the ``ctx`` that ``forward`` and
``backward`` share.

Example: a user-defined op with two inputs, so its backward returns two
gradients (the engine checks that there is one per input)::

    class Hypot(autodiff.Function):
        '''z = sqrt(x^2 + y^2)        dL/dx = dL/dz * x / z        dL/dy = dL/dz * y / z'''

        @staticmethod
        def forward(ctx, x, y):
            z = np.hypot(x, y)
            ctx.save_for_backward(x, y, z)      # inputs and the output, matched by identity
            return z

        @staticmethod
        def backward(ctx, grad):
            x, y, z = ctx.saved_tensors          # Tensors again: the rule is differentiable
            return grad * x / z, grad * y / z

    z = Hypot.apply(autodiff.tensor([3.0], requires_grad=True), autodiff.tensor([4.0]))
"""

from __future__ import annotations

import functools
import itertools
import threading
import traceback
import weakref

import numpy as np

from .errors import ShapeError
from .grad_mode import modes, no_grad
from .tensor import Tensor

# The callbacks registered by ``observe``, by handle id (process-wide).
_observers: dict = {}

_OUTPUT = object()  # marks "the output of this node" among saved values


class _Freed(tuple):
    """The saved values of a node whose backward freed them: none (see Node.released)."""


_FREED = _Freed()


# NumPy's floating-point error state is "ignore" while an op computes: x / 0 = inf,
# 0 * inf = nan, log(0) = -inf are the IEEE results, which PyTorch computes
# silently, where NumPy would print a RuntimeWarning pointing into the engine.
# np.errstate costs ~1 us a call (a third of a small op); setting NumPy's
# error-state context variable directly costs ~0.1 us.  ``_quiet()`` returns the
# token that ``_loud(token)`` restores; a NumPy laid out otherwise gets errstate.
try:
    from numpy._core._ufunc_config import _extobj_contextvar as _np_errors
    from numpy._core._ufunc_config import _make_extobj as _np_make_errors

    _quiet = functools.partial(_np_errors.set, _np_make_errors(all="ignore"))
    _loud = _np_errors.reset
except ImportError:  # pragma: no cover - another NumPy version

    def _quiet():
        state = np.errstate(all="ignore")
        state.__enter__()
        return state

    def _loud(state):
        state.__exit__(None, None, None)


def quiet_floating_point():
    """Enter NumPy's "ignore" error state; returns the token for ``loud_floating_point``."""
    return _quiet()


loud_floating_point = _loud


class Node:
    """One recorded operation in the graph: PyTorch's ``grad_fn``, and the ``ctx``.

    ``next_functions`` holds, for each input of ``forward``, the node that the
    input's gradient flows to: the input's own ``grad_fn``, an
    ``AccumulateGrad`` for a leaf that requires grad, or ``None``.  ``shape`` and
    ``dtype`` describe the node's output, so that the engine can check the
    gradients that flow into it without keeping the output tensor alive.
    ``annotations`` is None or a dict of tags that tools attach to the node (an
    observer, a picture); the engine never reads it.  Other attributes are the
    ``ctx`` a Function's ``forward`` sets for its ``backward`` (``ctx.dim = dim``,
    as with PyTorch's ctx); tools never tag a node through them.
    """

    __slots__ = (
        "function",
        "next_functions",
        "needs_input_grad",
        "to_save",
        "_saved",
        "_saved_versions",
        "_out_data",
        "_out_version",
        "_output_ref",
        "shape",
        "dtype",
        "annotations",
        "__dict__",  # the ctx attributes of a Function's forward (ctx.dim = ...)
        "__weakref__",
    )

    # Rarely set, so class-level defaults (a node is made for every op, also
    # under no_grad, where it serves only as forward's ctx).
    pre_hooks = None  # register_hook's hooks, by handle id
    retained = None  # a weak reference to the output tensor, after retain_grad()
    creation_trace = None  # where forward ran, under detect_anomaly

    def __init__(self, function):
        self.function = function
        self.to_save = ()
        self._saved = None
        self.annotations = None

    # -- what forward uses ---------------------------------------------------
    def save_for_backward(self, *values):
        """Keep arrays (inputs, the output, or new arrays) for ``backward``."""
        self.to_save = values

    def mark_non_differentiable(self, *outputs):  # PyTorch compatibility; no-op
        pass

    # -- what backward uses --------------------------------------------------
    @property
    def saved_tensors(self):
        """The values saved in forward, as Tensors (inputs keep their graph)."""
        if self._saved is None or self._saved is _FREED:
            if self._saved is _FREED:
                raise RuntimeError(
                    f"{self.name()}: trying to backward through the graph a second time "
                    "(or to use saved values after they were freed). Saved values are "
                    "freed after backward; call backward(retain_graph=True) the first "
                    "time if you need to backward through the graph again."
                )
            return ()
        unpacked = []
        versions = self._saved_versions
        for index, value in enumerate(self._saved):
            if value is _OUTPUT:
                if self._out_version[0] != versions[index]:
                    self._check_version(self._out_version, versions[index], index, "output")
                unpacked.append(Tensor._make(self._out_data, self, self._out_version))
            elif isinstance(value, Tensor):
                if value._version[0] != versions[index]:
                    self._check_version(value._version, versions[index], index, "input")
                unpacked.append(value)
            elif isinstance(value, (np.ndarray, np.generic)):
                unpacked.append(Tensor._make(np.asarray(value), None, None))
            else:  # None, or a Python number that stays a (weakly typed) number
                unpacked.append(value)
        return tuple(unpacked)

    def _check_version(self, counter, version, index, kind):
        if counter[0] != version:
            raise RuntimeError(
                f"{self.name()}: one of the values needed for gradient computation has "
                f"been modified by an in-place operation: saved {kind} {index} is at "
                f"version {counter[0]}, but version {version} was saved. Use an "
                "out-of-place operation (y = y + 1 rather than y += 1) or clone() the "
                "tensor before changing it."
            )

    def _release(self):
        """Free the saved values once backward no longer needs them."""
        self._saved = _FREED
        self._out_data = None

    # -- what tools read (pictures, traces); read-only, never used by backward ----------
    @property
    def output(self):
        """The output Tensor while the program still holds it, else None.

        The node keeps only a weak reference, so that the graph does not keep every
        intermediate result alive (PyTorch's ``grad_fn`` has no such link at all).
        """
        ref = getattr(self, "_output_ref", None)
        return ref() if ref is not None else None

    @property
    def saved_output(self):
        """The output's array if forward saved it for backward, until backward frees it."""
        return getattr(self, "_out_data", None)

    @property
    def saved_values(self) -> tuple:
        """What forward saved for backward, as kept: input Tensors, the output's array,
        other arrays and numbers; () when nothing was saved or once backward freed it.

        A view for tools, like PyTorch's ``grad_fn._saved_*``: no version check and
        nothing wrapped (``saved_tensors`` is what backward uses).
        """
        saved = self._saved
        if saved is None or saved is _FREED:
            return ()
        return tuple(self._out_data if value is _OUTPUT else value for value in saved)

    @property
    def released(self) -> bool:
        """True once a backward pass freed the saved values (without retain_graph)."""
        return self._saved is _FREED

    # -- description -----------------------------------------------------------
    def name(self) -> str:
        return f"{self.function.__name__}Backward"

    def register_hook(self, hook):  # hooks on gradients flowing into this node
        if self.pre_hooks is None:
            self.pre_hooks = {}
        return RemovableHandle(self.pre_hooks, hook)

    def __repr__(self):
        return f"<{self.name()} object at {id(self):#x}>"


class AccumulateGrad:
    """The node for a leaf tensor: gradients that reach it are added to ``.grad``."""

    __slots__ = ("variable", "shape", "dtype", "next_functions", "pre_hooks", "__weakref__")

    def __init__(self, variable):
        self.variable = variable
        self.shape = variable.data.shape
        self.dtype = variable.data.dtype
        self.next_functions = ()
        self.pre_hooks = None

    def name(self) -> str:
        return "AccumulateGrad"

    def __repr__(self):
        return f"<AccumulateGrad object at {id(self):#x}>"


class RemovableHandle:
    """What every ``register_*hook`` and ``observe`` return: ``remove()`` takes the callback away.

    The callbacks live in a dict keyed by the handle's ``id`` (in the order they
    were added).  A handle is also a context manager that removes its callback on
    exit::

        with tensor.register_hook(print):
            loss.backward()
    """

    __slots__ = ("hooks", "id")
    _ids = itertools.count()

    def __init__(self, hooks: dict, hook=None):
        self.hooks = hooks
        self.id = next(RemovableHandle._ids)
        if hook is not None:
            hooks[self.id] = hook

    def remove(self) -> None:
        self.hooks.pop(self.id, None)  # removing twice is harmless

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.remove()


def observe(callback) -> RemovableHandle:
    """Call ``callback(node, inputs, output)`` each time ``Function.apply`` records a node.

    ``node`` is the new :class:`Node` (its ``annotations`` are the place for the
    callback's tags), ``inputs`` the tuple given to ``apply`` (Tensors, arrays or
    numbers) and ``output`` the result Tensor.  Only ops that are recorded are
    observed: grad mode on and some input requiring grad.  Observers are
    process-wide (every thread's ops are observed) and run in the order they
    were registered.  Returns a handle: ``handle.remove()``, or use it as a
    context manager::

        names = []
        with autodiff.observe(lambda node, inputs, output: names.append(node.name())):
            y = (x * 2).sum()
        names                               # ['MulBackward', 'SumBackward']
    """
    if not callable(callback):
        raise TypeError(f"observe: expected a callable, got {type(callback).__name__}")
    return RemovableHandle(_observers, callback)


def _accumulator_of(leaf: Tensor) -> AccumulateGrad:
    """The leaf's AccumulateGrad node, created once and shared while it lives."""
    ref = leaf._accumulator
    node = ref() if ref is not None else None
    if node is None:
        node = AccumulateGrad(leaf)
        leaf._accumulator = weakref.ref(node)
    return node


# -- anomaly mode's creation trace: an observer while some thread has the mode on --


def _record_creation_trace(node, inputs, output) -> None:
    if modes.anomaly_enabled:  # this thread's mode (another thread may have it on)
        # Drop the frames of this observer and of Function.apply.
        node.creation_trace = "".join(traceback.format_stack()[:-2])


_anomaly_users = {"count": 0, "handle": None}
_anomaly_lock = threading.Lock()


def _anomaly_mode_switched(was_on: bool, now_on: bool) -> None:
    """Called by grad_mode when a thread's anomaly flag changes: the observer is
    registered while at least one thread has anomaly mode on."""
    if was_on == now_on:
        return
    with _anomaly_lock:
        _anomaly_users["count"] += 1 if now_on else -1
        if _anomaly_users["count"] > 0 and _anomaly_users["handle"] is None:
            _anomaly_users["handle"] = observe(_record_creation_trace)
        elif _anomaly_users["count"] <= 0 and _anomaly_users["handle"] is not None:
            _anomaly_users["handle"].remove()
            _anomaly_users["handle"] = None


class Function:
    """Base class of every differentiable operation (see the module docstring).

    Subclasses define ``forward(ctx, *args)`` on NumPy arrays and
    ``backward(ctx, grad)`` with Tensor operations, and are called through
    ``Function.apply(*args)``.
    """

    # Set by operations whose output is a NumPy view of their first input, so
    # that in-place changes through the view are seen by the base's version.
    returns_view = False

    # The Tensor method(s) that apply this op as it is, e.g. ``method = "exp"``:
    # ``x.exp()`` is ``Exp.apply(x)``, and ``autodiff.exp(x)`` too (see the end of
    # tensor.py).  None for ops whose methods first parse their arguments (sum's
    # dims, reshape's sizes): those are written in tensor.py by hand.
    method: str | tuple | None = None

    @staticmethod
    def forward(ctx, *args):
        raise NotImplementedError("a Function subclass must define forward(ctx, *args)")

    @staticmethod
    def backward(ctx, grad):
        raise NotImplementedError("a Function subclass must define backward(ctx, grad)")

    @classmethod
    def apply(cls, *inputs):
        """Run ``forward`` on the inputs' arrays and record the node if needed."""
        # The hot path of every op (forward, and each op of a backward formula);
        # benchmarks/ times it ("per op, 8 elements").  One loop over the inputs
        # collects their arrays, which need a gradient and the nodes it flows to
        # (three comprehensions cost ~0.5 us more per op).
        ctx = Node(cls)
        arrays = []
        needs = []
        edges = []
        record = False
        grad_on = modes.grad_enabled
        for given in inputs:
            if isinstance(given, Tensor):
                arrays.append(given.data)
                # rebase_if_stale, written out: a call here costs every op
                if given._base is not None and grad_on and given._version[0] != given._view_version:
                    rebase_view(given)  # its base changed in place since the view was taken
                if grad_on and given._requires_grad:
                    needs.append(True)
                    edges.append(given.grad_fn or _accumulator_of(given))
                    record = True
                    continue
            else:
                arrays.append(given)
            needs.append(False)
            edges.append(None)
        ctx.needs_input_grad = tuple(needs)
        if record and len(arrays) > 1:
            if len(arrays) == 2:  # the common case, kept cheap
                if arrays[0] is arrays[1] and inputs[0] is not inputs[1]:
                    arrays[1] = arrays[1].view()
            else:
                _distinguish(inputs, arrays)
        quiet = _quiet()
        try:
            out = cls.forward(ctx, *arrays)
        except (ValueError, TypeError, IndexError) as error:
            raise _forward_error(cls, inputs, error) from error
        finally:
            _loud(quiet)
        raw = out  # what forward returned (a NumPy scalar for 0-d results)
        if type(out) is not np.ndarray:
            if isinstance(out, Tensor):
                out = out.data
            out = np.asarray(out)
        if not record:
            result = Tensor._make(out, None, None)
        else:
            result = Tensor._make(out, ctx, None)
            ctx.next_functions = tuple(edges)
            ctx.shape = out.shape
            ctx.dtype = out.dtype
            ctx._output_ref = weakref.ref(result)
            if ctx.to_save:
                _pack_saved(ctx, inputs, arrays, out, result, raw)
        if (
            cls.returns_view
            and out.base is not None
            and isinstance(inputs[0], Tensor)
            and memory_owner(out) is memory_owner(arrays[0])  # not a copy (reshape of a .T)
        ):
            base = inputs[0]
            result._version = base._version
            result._base = base._base if base._base is not None else base
            result._view_of = (cls, inputs, result._base.grad_fn)
            result._view_version = base._version[0]
        if record and _observers:
            for callback in tuple(_observers.values()):
                callback(ctx, inputs, result)
        return result


def recorded_backward(grad: Tensor, *others) -> bool:
    """Whether a backward rule applied to ``grad`` (and ``others``) is recorded: under
    create_graph, with a tensor that requires grad.  Otherwise nothing is recorded, and a
    rule may run its ops' own NumPy calls on the arrays (the same bits), without an op's
    bookkeeping (a Node, Function.apply's checks, a Tensor): about 1 us a step on 8
    elements, a quarter of one."""
    return modes.grad_enabled and (
        grad.requires_grad or any(isinstance(x, Tensor) and x.requires_grad for x in others)
    )


def unrecorded(value) -> Tensor:
    """A backward rule's array as a tensor outside the graph (a NumPy scalar as 0-d array)."""
    return Tensor._make(value if type(value) is np.ndarray else np.asarray(value), None, None)


def memory_owner(array: np.ndarray) -> np.ndarray:
    """The array that owns the memory a view looks at."""
    while array.base is not None and isinstance(array.base, np.ndarray):
        array = array.base
    return array


def rebase_if_stale(tensor: Tensor) -> None:
    """``rebase_view(tensor)`` if it is a view whose version moved since its history was made."""
    if tensor._base is not None and tensor._version[0] != tensor._view_version:
        rebase_view(tensor)


def rebase_view(view: Tensor) -> None:
    """Give ``view`` the history its base has now, after an in-place change to the base.

    A view shares its base's memory, so once the base (or another view of it) is
    changed in place, the view holds the new values while its ``grad_fn`` still
    describes the old ones.  As PyTorch does, the view's history is made again,
    by taking the same view of its input as that input is now (the input made
    current first, if it is itself a stale view); ``retain_grad`` moves to the new
    node, hooks stay on the old one (as in PyTorch).  ``Function.apply`` and
    backward's roots call this for a view whose version counter moved since its
    history was made; a change under no_grad leaves the history as it was.
    Example::

        b = x * 1; w = b.reshape(2); b.relu_()
        w.sum().backward()   # dL/dx = 1 where relu let x through, 0 elsewhere
    """
    view._view_version = view._version[0]
    function, inputs, base_node = view._view_of
    base_now = view._base.grad_fn
    if base_now is base_node:
        return  # changed under no_grad: the values are new, the history is not
    view._view_of = (function, inputs, base_now)
    old = view.grad_fn
    if old is None and view._requires_grad:
        return  # made a leaf by requires_grad_(): it keeps no history of its base
    source = inputs[0]
    rebase_if_stale(source)
    if old is None and not source._requires_grad:
        return  # nothing recorded then or now
    previous = modes.grad_enabled
    modes.grad_enabled = True
    try:
        fresh = function.apply(*inputs)
    finally:
        modes.grad_enabled = previous
    node = fresh.grad_fn
    view.grad_fn = node
    view._requires_grad = node is not None
    if node is not None:
        node._output_ref = weakref.ref(view)
        move_retain_grad(old, node)


def move_retain_grad(old, new) -> None:
    """``retain_grad()`` follows the tensor to its new node, as in PyTorch; hooks
    registered before stay on the old node (they see the gradient of the old value)."""
    if type(old) is Node and old.retained is not None and new is not None:
        new.retained, old.retained = old.retained, None


def _view_chain(view: Tensor) -> list:
    """The (Function, arguments) that take ``view`` from its base, base first."""
    chain = []
    while view._base is not None:
        function, inputs, _ = view._view_of
        chain.append((function, inputs[1:]))
        view = inputs[0]
    return chain[::-1]


def take_view(chain, tensor: Tensor) -> Tensor:
    """``tensor`` (shaped like a view's base) viewed the way the view was taken."""
    for function, arguments in chain:
        tensor = function.apply(tensor, *arguments)
    return tensor


class CopySlices(Function):
    """base' = base with the view's elements replaced by v (the view's new values)
    dL/dbase = dL/dbase' with zeros where the view lies        dL/dv = the view of dL/dbase'

    Recorded on a base when one of its views is changed in place (PyTorch's
    CopySlices): the values are already in the base's memory, so forward
    copies nothing.  ``chain`` takes the view from the base (see take_view).
    """

    op_name = "copy_slices"

    @staticmethod
    def forward(ctx, base, value, chain):
        ctx.chain = chain
        ctx.base_shape = base.shape
        return base.view()

    @staticmethod
    def backward(ctx, grad):
        grad_value = take_view(ctx.chain, grad) if ctx.needs_input_grad[1] else None
        grad_base = None
        if ctx.needs_input_grad[0]:
            from .ops.shape import SetItem

            positions = np.arange(grad.data.size).reshape(ctx.base_shape)
            with no_grad():
                covered = take_view(ctx.chain, Tensor._make(positions, None, None)).data
            grad_base = SetItem.apply(grad.reshape(-1), covered.reshape(-1), 0.0)
            grad_base = grad_base.reshape(ctx.base_shape)
        return grad_base, grad_value, None


def copy_slices(base: Tensor, view: Tensor) -> None:
    """Record that ``view``, changed in place, changed ``base``: base.grad_fn = CopySlices."""
    before = Tensor._make(base.data, base.grad_fn, None)  # (a leaf that requires grad:
    # its views are refused in-place changes before this)
    after = CopySlices.apply(before, view, _view_chain(view))
    node = after.grad_fn
    if node is not None:
        move_retain_grad(base.grad_fn, node)
        base.grad_fn = node
        base._requires_grad = True
        node._output_ref = weakref.ref(base)


def _distinguish(inputs, arrays):
    """Give different inputs that share one array object (x, x.detach()) distinct views.

    Saved values are matched to inputs by identity; without this, saving the
    array of ``x.detach()`` in ``x * x.detach()`` would save ``x`` (with its graph)
    and second derivatives would be wrong.
    """
    owners = {}
    for i, (given, array) in enumerate(zip(inputs, arrays, strict=True)):
        if not isinstance(array, np.ndarray):
            continue
        owner = owners.setdefault(id(array), given)
        if owner is not given:
            arrays[i] = array.view()


_NOTHING_NEEDED = tuple((False,) * n for n in range(8))

# Saved values that are kept as they are: no input or output can be one of them.
_KEPT_AS_IS = frozenset({int, float, bool, complex, tuple, str})


def _pack_saved(ctx, inputs, arrays, out, result, raw=None):
    """Turn the arrays given to ``save_for_backward`` into saved references.

    An input's array is replaced by the input Tensor itself (so a second-order
    backward sees its graph), the output's by a marker (the output is rebuilt on
    demand, so the node does not keep its own output tensor alive), and any other
    array is kept as a constant.  Versions are noted to catch in-place changes.
    """
    saved = []
    versions = []
    for value in ctx.to_save:
        if (
            value is None or type(value) in _KEPT_AS_IS
        ):  # nothing to match (the common "not needed")
            saved.append(value)
            versions.append(0)
            continue
        if value is out or (value is raw and raw is not None):  # raw: np.exp(0-d) is a scalar
            saved.append(_OUTPUT)
            versions.append(0)
            ctx._out_data = out
            ctx._out_version = result._version
            continue
        for tensor, array in zip(inputs, arrays):
            if value is array and isinstance(tensor, Tensor):
                saved.append(tensor)
                versions.append(tensor._version[0])
                break
        else:
            if isinstance(value, Tensor):
                saved.append(value)
                versions.append(value._version[0])
            else:
                saved.append(value)
                versions.append(0)
    ctx._saved = saved
    ctx._saved_versions = versions
    ctx.to_save = ()


def _describe(value):
    if isinstance(value, Tensor):
        return f"tensor of shape {value.shape} and dtype {value.dtype}"
    if isinstance(value, np.ndarray):
        return f"array of shape {value.shape} and dtype {value.dtype}"
    return repr(value)


def _forward_error(cls, inputs, error):
    """Re-raise an error from forward with the op's name and its inputs described."""
    op = getattr(cls, "op_name", cls.__name__.lower())
    if str(error).startswith(f"{op}:"):
        message = str(error)  # the op already wrote a complete message
    else:
        tensors = [_describe(t) for t in inputs if isinstance(t, (Tensor, np.ndarray))]
        described = "; ".join(tensors) if tensors else "no tensor inputs"
        message = f"{op}: {error} (inputs: {described})"
    for kind in (IndexError, TypeError):  # AxisError is both; PyTorch says IndexError
        if isinstance(error, kind):
            return error if message == str(error) else kind(message)
    if isinstance(error, ValueError):
        if not cls.__module__.startswith("autodiff."):  # a user's op: keep its ValueError
            return error if message == str(error) else ValueError(message)
        return ShapeError(message)  # the built-ins' ValueErrors are all about shapes
    return RuntimeError(message)
