"""The backward pass: topological order, vector-Jacobian products, accumulation.

``backward`` walks the graph from the root in reverse topological order.  Each
node receives the sum of the gradients of everything that used its output
(``pending``, a dict keyed by node), asks its Function for the VJP, and passes
one gradient to each of its inputs' nodes.  Leaves add what reaches them into
``.grad``.
"""

from __future__ import annotations

import numpy as np

from . import function as _function
from .function import AccumulateGrad, Node, memory_owner
from .grad_mode import modes
from .ops.shape import sum_to_shape
from .tensor import Tensor


def topological_order(roots) -> list:
    """Nodes reachable from ``roots`` (one node or a list), each before the nodes it depends on.

    Iterative depth-first search with an explicit stack, so that a chain of
    100,000 operations needs no recursion.  The roots come first, leaves last:
    the order in which ``backward()`` visits the nodes.
    """
    if isinstance(roots, (list, tuple)):
        if len(roots) != 1:
            return _depth_first(_Join(roots))[1:]
        roots = roots[0]
    return _depth_first(roots)


def _depth_first(root) -> list:
    order = []
    visited = {root}
    stack = [(root, iter(root.next_functions))]
    while stack:
        node, children = stack[-1]
        for child in children:
            if child is not None and child not in visited:
                visited.add(child)
                stack.append((child, iter(child.next_functions)))
                break
        else:
            stack.pop()
            order.append(node)
    order.reverse()
    return order


class _Join:
    """A virtual root whose inputs are the real roots."""

    __slots__ = ("next_functions",)

    def __init__(self, roots):
        self.next_functions = tuple(roots)


def gradient_node(tensor: Tensor):
    """The node that receives ``tensor``'s gradient.

    Its ``grad_fn`` for a computed tensor; for a leaf that requires grad, its
    ``AccumulateGrad`` node (created once and shared while the leaf lives).
    """
    return tensor.grad_fn or _function._accumulator_of(tensor)


def _root_gradient(output: Tensor, gradient, name: str) -> Tensor:
    if gradient is None:
        if output.data.size != 1:
            raise RuntimeError(
                f"{name}: grad can be implicitly created only for scalar outputs; the "
                f"output has shape {output.shape}: pass gradient= (a tensor of that shape)"
            )
        return Tensor._make(np.ones(output.shape, dtype=output.dtype), None, None)
    if not isinstance(gradient, Tensor):
        gradient = Tensor._make(np.asarray(gradient, dtype=output.dtype), None, None)
    if gradient.shape != output.shape:
        raise RuntimeError(
            f"{name}: mismatch in shape: gradient has shape {gradient.shape} but the output "
            f"has shape {output.shape}"
        )
    return gradient


def _seeds(outputs, gradients, name: str) -> list:
    """The (node, dL/d(output)) pairs that backward starts from, checked."""
    seeds = []
    for output, gradient in zip(outputs, gradients, strict=True):
        _function.rebase_if_stale(output)  # a view whose base changed in place since
        if not output._requires_grad:
            raise RuntimeError(
                f"{name}: element {len(seeds)} of tensors does not require grad and does not "
                "have a grad_fn (was it computed under no_grad, or from tensors without "
                "requires_grad=True?)"
            )
        seeds.append((gradient_node(output), _root_gradient(output, gradient, name)))
    return seeds


def backward_steps(
    tensors, grad_tensors=None, retain_graph=False, create_graph=False, *, name="backward_steps"
):
    """The backward pass, one node at a time: the engine's only backward loop.

    ``tensors`` (a Tensor or a list) are the outputs to differentiate and
    ``grad_tensors`` their upstream gradients (None for a scalar: 1).  Nodes are
    visited in reverse topological order; each receives the sum of the
    gradients its consumers passed on, runs its hooks, calls its Function's
    ``backward`` (recorded when ``create_graph``), un-broadcasts and checks each
    input's gradient (arity, type, shape; NaN/inf under ``detect_anomaly``),
    frees its saved values unless ``retain_graph``, and yields one step, a
    tuple ``(node, grad_output, grad_inputs)``:

    * ``node``: the node processed (an op's node, or a leaf's ``AccumulateGrad``);
    * ``grad_output``: the gradient it received, dL/d(its output), after hooks;
    * ``grad_inputs``: a sequence with one entry per ``node.next_functions``, the
      gradient passed on to that input (in the input's shape and dtype), or None
      where the input takes none; empty for a leaf.

    It writes no ``.grad``: ``backward()`` stores the leaves' gradients once every
    step has succeeded, ``autodiff.grad`` returns them, and visualize's tables
    print the steps.  Example::

        x = autodiff.tensor([1.0, 2.0], requires_grad=True)
        for node, grad_output, grad_inputs in autodiff.backward_steps((x * x).sum()):
            print(node.name(), grad_output)
        # SumBackward tensor(1.)
        # MulBackward tensor([1., 1.])
        # AccumulateGrad tensor([2., 4.])
    """
    tensors, grad_tensors = _as_lists(tensors, grad_tensors)
    return _steps(tensors, grad_tensors, retain_graph, create_graph, None, name)


def _as_lists(tensors, grad_tensors) -> tuple:
    if isinstance(tensors, Tensor):
        return [tensors], [grad_tensors]
    if grad_tensors is None:
        return tensors, [None] * len(tensors)
    if isinstance(grad_tensors, Tensor):
        return tensors, [grad_tensors]
    return tensors, grad_tensors


def _steps(tensors, grad_tensors, retain_graph, create_graph, wanted, name):
    """The loop behind ``backward_steps``: every step when ``wanted`` is None.

    ``backward()`` and ``grad()`` pass ``wanted``, the set of nodes whose gradient
    they return: then only the steps they keep are yielded (those nodes, leaves
    and retain_grad tensors), with no list of the passed-on gradients, and
    create_graph's mode stays on between steps (their loop records nothing), so
    that the one loop costs them no more per node than a loop of their own."""
    every_step = wanted is None
    pending = {}
    roots = []
    for node, grad in _seeds(tensors, grad_tensors, name):
        pending[node] = pending[node] + grad if node in pending else grad
        roots.append(node)
    mode = modes  # this thread's flags (a local name: read twice per node)
    check_finite = mode.anomaly_enabled and mode.anomaly_check_nan
    # Backward formulas run in the mode create_graph asks for.  The mode is this
    # thread's, so another thread's forward pass keeps recording meanwhile.
    outer_mode = mode.grad_enabled
    mode.grad_enabled = create_graph
    suspended = False
    try:
        for node in topological_order(roots):
            grad = pending.pop(node, None)
            if grad is None:
                continue  # nothing flows into it (e.g. only through inputs that take no grad)
            if node.pre_hooks:
                grad = _run_hooks(node.pre_hooks, grad)
            if type(node) is AccumulateGrad:
                if node.variable._hooks:  # a leaf's hooks, for backward and grad alike
                    grad = _run_hooks(node.variable._hooks, grad)
                step = (node, grad, ())
            else:
                # The vector-Jacobian product, then one checked gradient per input,
                # added into what that input's node has received so far.
                quiet = _function.quiet_floating_point()  # inf / nan silently, as PyTorch
                try:
                    input_grads = node.function.backward(node, grad)
                finally:
                    _function.loud_floating_point(quiet)
                if type(input_grads) is not tuple:
                    input_grads = (input_grads,)
                if len(input_grads) != len(node.next_functions):
                    raise _arity_error(node, input_grads)
                passed = [] if every_step else None
                for next_node, input_grad in zip(node.next_functions, input_grads):
                    if next_node is None or input_grad is None:
                        if every_step:
                            passed.append(None)
                        continue
                    if (  # the common case inline: a Tensor of the right shape and dtype
                        type(input_grad) is not Tensor
                        or input_grad.data.shape != next_node.shape
                        or (  # (dtypes are shared objects: `is` first, cheaply)
                            input_grad.data.dtype is not next_node.dtype
                            and input_grad.data.dtype != next_node.dtype
                        )
                        or check_finite
                    ):
                        input_grad = _checked(node, next_node, input_grad, check_finite)
                    if next_node in pending:
                        pending[next_node] = pending[next_node] + input_grad
                    else:
                        pending[next_node] = input_grad
                    if every_step:
                        passed.append(input_grad)
                step = (node, grad, passed)
                if not retain_graph:
                    node._release()
            if every_step:  # the caller's code between two steps runs in its own mode
                mode.grad_enabled = outer_mode
                suspended = True
                yield step
                suspended = False
                outer_mode = mode.grad_enabled
                mode.grad_enabled = create_graph
            elif type(node) is AccumulateGrad or node.retained is not None or node in wanted:
                yield step
    finally:
        if not suspended:  # closed while the caller held a step: its mode stands
            mode.grad_enabled = outer_mode


def run_backward(outputs, gradients, retain_graph, create_graph, inputs=None, name="backward"):
    """Back-propagate from ``outputs``; accumulate into leaves or return input grads.

    With ``inputs`` (as ``autodiff.grad`` calls it), the gradients reaching those
    tensors are returned and no ``.grad`` is changed.
    """
    seeds = [grad for _, grad in _seeds(outputs, gradients, name)]
    captured = None
    if inputs is not None:
        captured = dict.fromkeys(gradient_node(tensor) for tensor in inputs)
    # Arrays already stored as some tensor's .grad in this pass: never store the
    # same memory twice, since later in-place accumulation would change both.
    handed_out = {id(memory_owner(grad.data)) for grad in seeds}
    # Gradients for .grad (leaves, retain_grad tensors) are stored only once the
    # whole pass has succeeded: an error in some op's backward leaves every .grad
    # as it was, never half-updated.
    # (autodiff.grad stores retain_grad tensors' .grad too, as PyTorch does.)
    # The loop yields only the steps of leaves, retain_grad tensors and ``inputs``.
    steps = _steps(outputs, seeds, retain_graph, create_graph, captured or frozenset(), name)
    if captured is None:
        finished = list(steps)
    else:
        finished = []
        for step in steps:
            node = step[0]
            if node in captured:
                captured[node] = step[1]
            if type(node) is not AccumulateGrad and node.retained is not None:
                finished.append(step)
    previous_mode = modes.grad_enabled
    modes.grad_enabled = create_graph
    quiet = _function.quiet_floating_point()  # IEEE inf / nan silently, as PyTorch
    try:
        for node, grad, _ in finished:
            if type(node) is AccumulateGrad:
                _accumulate(node.variable, grad, create_graph, handed_out)
            else:
                _retain(node, grad, handed_out)
    finally:
        modes.grad_enabled = previous_mode
        _function.loud_floating_point(quiet)
    return captured


def _arity_error(node: Node, input_grads) -> RuntimeError:
    return RuntimeError(
        f"{node.name()}: backward returned {len(input_grads)} gradients but forward "
        f"took {len(node.next_functions)} inputs; return one per input (None for inputs "
        "that take no gradient)"
    )


def _checked(node: Node, next_node, input_grad, check_finite: bool) -> Tensor:
    """One input's gradient as a Tensor of the input's shape (un-broadcast) and dtype."""
    if type(input_grad) is not Tensor:
        if isinstance(input_grad, (np.ndarray, float, int)):
            input_grad = Tensor._make(np.asarray(input_grad), None, None)
        elif not isinstance(input_grad, Tensor):
            raise TypeError(
                f"{node.name()}: backward returned a {type(input_grad).__name__}; "
                "expected a Tensor, a NumPy array or None"
            )
    data = input_grad.data  # (the array's shape and dtype: cheaper than the properties)
    if data.shape != next_node.shape:
        input_grad = sum_to_shape(input_grad, next_node.shape, node.name())
        data = input_grad.data
    if data.dtype != next_node.dtype:
        input_grad = input_grad.to(next_node.dtype)
    if check_finite:
        _check_finite(node, input_grad)
    return input_grad


def _run_hooks(hooks: dict, grad):
    for hook in tuple(hooks.values()):
        result = hook(grad)
        if result is not None:
            grad = result
    return grad


def _store(grad: Tensor, create_graph: bool, handed_out: set) -> Tensor:
    """A gradient safe to keep as ``.grad``: writable and shared with no other tensor."""
    if create_graph:
        return grad
    data = grad.data
    owner = id(memory_owner(data))
    if owner in handed_out or not data.flags.writeable:
        data = np.array(data, copy=True)
        owner = id(data)
    handed_out.add(owner)
    return grad if data is grad.data else Tensor._make(data, None, None)


def _accumulate(leaf: Tensor, grad: Tensor, create_graph: bool, handed_out: set) -> None:
    """Add ``grad`` (the leaf's hooks already applied) into ``leaf.grad``."""
    if leaf._grad is None:
        leaf._grad = _store(grad, create_graph, handed_out)
    elif create_graph or leaf._grad._requires_grad:
        leaf._grad = leaf._grad + grad
    else:
        np.add(leaf._grad.data, grad.data, out=leaf._grad.data, casting="unsafe")


def _retain(node: Node, grad: Tensor, handed_out: set) -> None:
    tensor = node.retained()
    if tensor is None:
        return
    if tensor._grad is None:
        tensor._grad = _store(grad, False, handed_out)
    else:
        tensor._grad = tensor._grad + grad


def _check_finite(node, grad):
    if not np.all(np.isfinite(grad.data)):
        where = ""
        if getattr(node, "creation_trace", None):
            where = f"\nThe forward of this op was called at:\n{node.creation_trace}"
        raise RuntimeError(
            f"detect_anomaly: function {node.name()!r} returned nan or inf values in its "
            f"gradient (of shape {grad.shape}).{where}"
        )


def backward(tensor, gradient=None, retain_graph=None, create_graph=False, inputs=None):
    """Compute the gradient of ``tensor`` with respect to the graph's leaves.

    Gradients are added into ``.grad`` of the leaves that require grad (and of
    tensors that called ``retain_grad()``).  The graph's saved values are freed
    unless ``retain_graph=True``; ``create_graph=True`` records the backward pass,
    so the gradients can be differentiated again.
    """
    if retain_graph is None:
        retain_graph = create_graph
    if inputs is not None:
        inputs = [inputs] if isinstance(inputs, Tensor) else list(inputs)
        grads = grad([tensor], inputs, [gradient], retain_graph, create_graph, allow_unused=True)
        for leaf, g in zip(inputs, grads, strict=True):
            if g is not None:
                _accumulate(leaf, g, create_graph, set())
        return
    run_backward([tensor], [gradient], retain_graph, create_graph)


def grad(
    outputs,
    inputs,
    grad_outputs=None,
    retain_graph=None,
    create_graph=False,
    allow_unused=None,
    materialize_grads=False,
):
    """Return the gradients of ``outputs`` with respect to ``inputs`` (a tuple).

    Unlike ``backward``, no ``.grad`` is changed.  ``grad_outputs`` is the
    upstream gradient (the "vector" of the vector-Jacobian product), needed when
    an output is not a scalar.  Example: a second derivative::

        x = autodiff.tensor(2.0, requires_grad=True)
        (dy,) = autodiff.grad(x ** 3, x, create_graph=True)   # 3 x^2 = 12
        (d2y,) = autodiff.grad(dy, x)                         # 6 x = 12
    """
    outputs = [outputs] if isinstance(outputs, Tensor) else list(outputs)
    single_input = isinstance(inputs, Tensor)
    inputs = [inputs] if single_input else list(inputs)
    if grad_outputs is None:
        grad_outputs = [None] * len(outputs)
    elif isinstance(grad_outputs, Tensor):
        grad_outputs = [grad_outputs]
    else:
        grad_outputs = list(grad_outputs)
    if len(grad_outputs) != len(outputs):
        raise RuntimeError(
            f"grad: grad_outputs has {len(grad_outputs)} entries but there are {len(outputs)} outputs"
        )
    for index, tensor in enumerate(inputs):
        if not isinstance(tensor, Tensor):
            raise TypeError(f"grad: input {index} is a {type(tensor).__name__}, not a Tensor")
        if not tensor._requires_grad:
            raise RuntimeError(f"grad: input {index} (shape {tensor.shape}) does not require grad")
    if retain_graph is None:
        retain_graph = create_graph
    captured = run_backward(outputs, grad_outputs, retain_graph, create_graph, inputs, "grad")
    results = []
    for index, tensor in enumerate(inputs):
        g = captured.get(gradient_node(tensor))
        if g is None:
            if materialize_grads:
                g = Tensor._make(np.zeros(tensor.shape, tensor.dtype), None, None)
            elif not allow_unused:
                raise RuntimeError(
                    f"grad: input {index} (shape {tensor.shape}) was not used in the graph of "
                    "the outputs; pass allow_unused=True if this is expected"
                )
        results.append(g)
    return tuple(results)
