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
from .function import AccumulateGrad, Node
from .grad_mode import modes
from .ops.shape import sum_to_shape
from .tensor import Tensor


def topological_order(root) -> list:
    """Nodes reachable from ``root``, each before the nodes it depends on.

    Iterative depth-first search with an explicit stack, so that a chain of
    100,000 operations needs no recursion.  ``root`` comes first, leaves last.
    """
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


def _ordered_from(roots) -> list:
    """Topological order over several roots (a virtual root joining them)."""
    if len(roots) == 1:
        return topological_order(roots[0])
    joined = _Join(roots)
    return topological_order(joined)[1:]


class _Join:
    __slots__ = ("next_functions",)

    def __init__(self, roots):
        self.next_functions = tuple(roots)


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


def run_backward(outputs, gradients, retain_graph, create_graph, inputs=None, name="backward"):
    """Back-propagate from ``outputs``; accumulate into leaves or return input grads.

    With ``inputs`` (as ``autodiff.grad`` calls it), the gradients reaching those
    tensors are returned and no ``.grad`` is changed.
    """
    roots, pending = [], {}
    for output, gradient in zip(outputs, gradients, strict=True):
        if not output._requires_grad:
            raise RuntimeError(
                f"{name}: element {len(roots)} of tensors does not require grad and does not "
                "have a grad_fn (was it computed under no_grad, or from tensors without "
                "requires_grad=True?)"
            )
        grad = _root_gradient(output, gradient, name)
        node = output.grad_fn or _function._accumulator_of(output)
        pending[node] = pending[node] + grad if node in pending else grad
        roots.append(node)

    captured = None
    if inputs is not None:
        captured = {}
        for tensor in inputs:
            captured.setdefault(tensor.grad_fn or _function._accumulator_of(tensor), None)

    order = _ordered_from(roots)
    # The formulas run recorded only for create_graph; the mode is this thread's,
    # so another thread's forward pass keeps recording meanwhile.
    previous_mode = modes.grad_enabled
    modes.grad_enabled = create_graph
    # Arrays already stored as some tensor's .grad in this pass: never store the
    # same memory twice, since later in-place accumulation would change both.
    handed_out = set()
    for grad in pending.values():
        handed_out.add(id(_owner(grad.data)))
    # Gradients for .grad (leaves, retain_grad tensors) are stored only once the
    # whole pass has succeeded: an error in some op's backward leaves every .grad
    # as it was, never half-updated.
    finished = []
    try:
        for node in order:
            grad = pending.pop(node, None)
            if grad is None:
                continue
            if node.pre_hooks:
                grad = _run_hooks(node.pre_hooks, grad)
            if type(node) is AccumulateGrad:
                if node.variable._hooks:  # a leaf's hooks, for backward and grad alike
                    grad = _run_hooks(node.variable._hooks, grad)
                if captured is None:
                    finished.append((node, grad))
                elif node in captured:
                    captured[node] = grad
                continue
            if captured is not None and node in captured:
                captured[node] = grad
            if node.retained is not None:
                finished.append((node, grad))
            _propagate(node, grad, pending)
            if not retain_graph:
                node._release()
        for node, grad in finished:
            if type(node) is AccumulateGrad:
                _accumulate(node.variable, grad, create_graph, handed_out)
            else:
                _retain(node, grad, handed_out)
    finally:
        modes.grad_enabled = previous_mode
    return captured


def _propagate(node: Node, grad: Tensor, pending: dict) -> None:
    """Call the node's VJP and hand each input's gradient to the input's node."""
    input_grads = node.function.backward(node, grad)
    if type(input_grads) is not tuple:
        input_grads = (input_grads,)
    next_functions = node.next_functions
    if len(input_grads) != len(next_functions):
        raise RuntimeError(
            f"{node.name()}: backward returned {len(input_grads)} gradients but forward "
            f"took {len(next_functions)} inputs; return one per input (None for inputs "
            "that take no gradient)"
        )
    for next_node, input_grad in zip(next_functions, input_grads):
        if next_node is None or input_grad is None:
            continue
        if type(input_grad) is not Tensor:
            if not isinstance(input_grad, (Tensor, np.ndarray, float, int)):
                raise TypeError(
                    f"{node.name()}: backward returned a {type(input_grad).__name__}; "
                    "expected a Tensor, a NumPy array or None"
                )
            input_grad = (
                input_grad
                if isinstance(input_grad, Tensor)
                else Tensor._make(np.asarray(input_grad), None, None)
            )
        if input_grad.shape != next_node.shape:
            input_grad = sum_to_shape(input_grad, next_node.shape, node.name())
        if input_grad.dtype != next_node.dtype:
            input_grad = input_grad.to(next_node.dtype)
        if modes.anomaly_enabled and modes.anomaly_check_nan:
            _check_finite(node, input_grad)
        if next_node in pending:
            pending[next_node] = pending[next_node] + input_grad
        else:
            pending[next_node] = input_grad


def _run_hooks(hooks, grad):
    for hook in hooks:
        result = hook(grad)
        if result is not None:
            grad = result
    return grad


def _owner(array: np.ndarray) -> np.ndarray:
    """The array that owns the memory a view looks at."""
    while array.base is not None and isinstance(array.base, np.ndarray):
        array = array.base
    return array


def _store(grad: Tensor, create_graph: bool, handed_out: set) -> Tensor:
    """A gradient safe to keep as ``.grad``: writable and shared with no other tensor."""
    if create_graph:
        return grad
    data = grad.data
    owner = id(_owner(data))
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
        g = captured.get(tensor.grad_fn or _function._accumulator_of(tensor))
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
