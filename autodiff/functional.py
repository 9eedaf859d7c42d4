"""Jacobians, Hessians and their products: PyTorch's ``torch.autograd.functional``.

For ``f: R^n -> R^m`` with Jacobian ``J`` (``J[k, l] = d f_k / d x_l``):

* ``vjp(f, x, v)``  returns ``v^T J``  (one backward pass: what ``backward`` computes);
* ``jvp(f, x, v)``  returns ``J v``    (forward-mode product, here by the double-VJP trick);
* ``jacobian(f, x)`` returns ``J`` itself, shaped ``f(x).shape + x.shape``
  (one backward pass per output element);
* ``hessian(f, x)`` returns ``H = d^2 f / dx^2`` for a scalar ``f``, shaped
  ``x.shape + x.shape``;
* ``hvp(f, x, v)`` / ``vhp(f, x, v)`` return ``H v`` / ``v^T H`` (the same for a
  twice continuously differentiable ``f``).

Signatures and return structures are PyTorch's: ``inputs`` is a tensor or a tuple
of tensors; ``func`` returns a tensor or a tuple of tensors; results are tensors,
or tuples (over inputs, over outputs, or tuples of tuples ``[i][j]`` for output
``i`` and input ``j``) exactly when those were tuples.  With
``create_graph=False`` (the default) results are detached; with
``create_graph=True`` they can be differentiated again.

The lecture's softmax Jacobian, ``diag(s) - s s^T``::

    >>> import numpy as np, autodiff
    >>> y = autodiff.tensor([1.0, 2.0, 0.5])
    >>> J = autodiff.functional.jacobian(lambda t: t.softmax(dim=0), y)
    >>> s = y.softmax(dim=0).numpy()
    >>> bool(np.allclose(J.numpy(), np.diag(s) - np.outer(s, s), atol=1e-6))
    True
"""

from __future__ import annotations

import numpy as np

from .engine import grad as _grad
from .grad_mode import enable_grad
from .ops.shape import stack
from .tensor import Tensor, constant

__all__ = ["hessian", "hvp", "jacobian", "jvp", "vhp", "vjp"]


# -- helpers, following torch/autograd/functional.py ---------------------------------------


def _as_tuple(value, arg_name: str, fn_name: str):
    """(was it a tuple?, the values as a tuple), checking every entry is a Tensor."""
    is_tuple = isinstance(value, (tuple, list))
    values = tuple(value) if is_tuple else (value,)
    for i, entry in enumerate(values):
        if not isinstance(entry, Tensor):
            where = f"{arg_name} {i}" if is_tuple else arg_name
            raise TypeError(
                f"{fn_name}: the {where} must be a Tensor"
                + (" (or a tuple of Tensors)" if not is_tuple else "")
                + f", but it is a {type(entry).__name__}"
            )
    return is_tuple, values


def _tuple_postprocess(result, is_tuple):
    """Undo ``_as_tuple``: one flag (a flat tuple) or two (a tuple of tuples)."""
    if isinstance(is_tuple, tuple):
        outer, inner = is_tuple
        if not inner:
            result = tuple(r[0] for r in result)
        if not outer:
            result = result[0]
        return result
    return result if is_tuple else result[0]


def _grad_preprocess(inputs, create_graph: bool, need_graph: bool):
    """Fresh leaves to differentiate with respect to.

    With ``create_graph`` an input that requires grad is passed through a view,
    so gradients of the results still reach the caller's tensor; otherwise it is
    detached (the caller's graph is left alone).
    """
    result = []
    for x in inputs:
        if create_graph and x.requires_grad:
            result.append(x.view_as(x))
        else:
            leaf = x.detach()
            if need_graph:
                if x.dtype.kind != "f":
                    raise TypeError(
                        f"autodiff.functional: inputs must be floating point tensors, got an "
                        f"input of dtype {x.dtype} and shape {x.shape}"
                    )
                leaf.requires_grad_(True)
            result.append(leaf)
    return tuple(result)


def _postprocess(values, create_graph: bool):
    """Detach results unless the caller asked for a differentiable graph."""
    if isinstance(values, tuple):
        return tuple(_postprocess(v, create_graph) for v in values)
    if values is None or create_graph:
        return values
    return values.detach()


def _zeros_like(x: Tensor) -> Tensor:
    return constant(np.zeros(x.shape, dtype=x.dtype))


def _fill_unused(grads, reference, strict: bool, fn_name: str, what: str):
    """Replace ``None`` gradients with zeros (or raise in strict mode)."""
    result = []
    for j, (g, x) in enumerate(zip(grads, reference, strict=True)):
        if g is None:
            if strict:
                raise RuntimeError(
                    f"{fn_name}: the output of the user-provided function is independent of "
                    f"{what} {j}. This is not allowed in strict mode."
                )
            g = _zeros_like(x)
        result.append(g)
    return tuple(result)


def _check_v(v, reference, fn_name: str, what: str):
    if len(v) != len(reference):
        raise RuntimeError(
            f"{fn_name}: v has {len(v)} entries but the {what} has {len(reference)}; v must "
            f"have the structure of the {what}"
        )
    for i, (vi, ri) in enumerate(zip(v, reference, strict=True)):
        if vi.shape != ri.shape:
            raise RuntimeError(
                f"{fn_name}: entry {i} of v has shape {vi.shape} but the {what} {i} has shape "
                f"{ri.shape}; they must be equal"
            )


def _vjp_grads(outputs, inputs, grad_outputs, create_graph):
    pairs = [(o, g) for o, g in zip(outputs, grad_outputs, strict=True) if o.requires_grad]
    if not pairs:
        return (None,) * len(inputs)
    return _grad(
        [o for o, _ in pairs],
        list(inputs),
        [g for _, g in pairs],
        retain_graph=True,
        create_graph=create_graph,
        allow_unused=True,
    )


def _call(func, inputs, fn_name: str):
    with enable_grad():
        outputs = func(*inputs)
    return _as_tuple(outputs, "outputs of the user-provided function", fn_name)


# -- the products --------------------------------------------------------------------------


def _vector(v, tensors, op: str, what: str) -> tuple:
    """The vector of a vjp/jvp/hvp/vhp, as a tuple shaped like ``tensors`` (the
    function's outputs or inputs, ``what`` says which); None means 1, allowed
    only for a single one-element tensor."""
    if v is not None:
        _, v = _as_tuple(v, "v", op)
        _check_v(v, tensors, op, what)
        return v
    if len(tensors) != 1 or tensors[0].numel() != 1:
        where = (
            "the user-provided function returns"
            if what == "output"
            else "the input to the user-provided function is"
        )
        raise RuntimeError(
            f"{op}: the vector v can only be None if {where} a single Tensor with a single "
            f"element; got shapes {[t.shape for t in tensors]}"
        )
    return (constant(np.ones(tensors[0].shape, tensors[0].dtype)),)


def vjp(func, inputs, v=None, create_graph=False, strict=False):
    """Vector-Jacobian product ``v^T J``: what one backward pass computes.

    Returns ``(func_output, vjp)``; ``vjp`` has the structure of ``inputs``.
    ``v`` has the structure of the output and may be None only when the output
    is a single element (``v = 1``).  Example: for ``f(x) = A x``,
    ``vjp(f, x, v)[1] == A^T v``.
    """
    is_inputs_tuple, inputs = _as_tuple(inputs, "inputs", "vjp")
    inputs = _grad_preprocess(inputs, create_graph, need_graph=True)
    is_outputs_tuple, outputs = _call(func, inputs, "vjp")
    v = _vector(v, outputs, "vjp", "output")
    with enable_grad():
        grads = _vjp_grads(outputs, inputs, v, create_graph)
    grads = _fill_unused(grads, inputs, strict, "vjp", "input")
    return (
        _tuple_postprocess(_postprocess(outputs, create_graph), is_outputs_tuple),
        _tuple_postprocess(_postprocess(grads, create_graph), is_inputs_tuple),
    )


def jvp(func, inputs, v=None, create_graph=False, strict=False):
    """Jacobian-vector product ``J v`` (forward mode), by the double-VJP trick.

    Returns ``(func_output, jvp)``; ``jvp`` has the structure of the output and
    ``v`` that of ``inputs`` (None only for a single one-element input).

    How, without forward-mode AD: ``g(u) = J^T u`` is a VJP, linear in a dummy
    ``u``; its own VJP with ``v`` is ``d/du <J^T u, v> = J v``.  So two backward
    passes (the first with ``create_graph=True``) give the forward-mode product.
    """
    _, inputs = _as_tuple(inputs, "inputs", "jvp")
    inputs = _grad_preprocess(inputs, create_graph, need_graph=True)
    v = _vector(v, inputs, "jvp", "input")
    is_outputs_tuple, outputs = _call(func, inputs, "jvp")
    with enable_grad():
        # u: a dummy upstream gradient per output; J^T u keeps a graph in u.
        us = []
        for out in outputs:
            u = constant(np.zeros(out.shape, out.dtype))
            u.requires_grad_(out.dtype.kind == "f")
            us.append(u)
        grads = _vjp_grads(outputs, inputs, us, create_graph=True)
        if strict and any(g is None for g in grads):
            raise RuntimeError(
                "jvp: the output of the user-provided function is independent of input "
                f"{[g is None for g in grads].index(True)}. This is not allowed in strict mode."
            )
        # J v = the VJP of the gradients (J^T u) with v; an unused input's None is 0.
        pairs = [(g, vi) for g, vi in zip(grads, v, strict=True) if g is not None]
        jv = _vjp_grads([g for g, _ in pairs], us, [vi for _, vi in pairs], create_graph)
    jv = _fill_unused(jv, outputs, strict, "jvp", "output")
    return (
        _tuple_postprocess(_postprocess(outputs, create_graph), is_outputs_tuple),
        _tuple_postprocess(_postprocess(jv, create_graph), is_outputs_tuple),
    )


def jacobian(
    func, inputs, create_graph=False, strict=False, vectorize=False, strategy="reverse-mode"
):
    """The Jacobian of ``func`` at ``inputs``, ``J[k..., l...] = d out[k...] / d in[l...]``.

    For one input and one output the result is a tensor of shape
    ``output.shape + input.shape``; for a tuple of inputs, a tuple over inputs;
    for a tuple of outputs, a tuple over outputs; for both, a tuple of tuples
    ``J[i][j]`` (output ``i``, input ``j``).  An output that does not depend on
    an input gives zeros (an error with ``strict=True``).

    ``strategy="reverse-mode"`` computes one row per output element (a VJP with
    a one-hot vector); ``"forward-mode"`` one column per input element (a JVP,
    here through the double-VJP trick).  ``vectorize`` is accepted for
    PyTorch compatibility: the rows are computed one after another either way,
    with the same result.

    Example (the lecture's softmax Jacobian ``diag(s) - s s^T``)::

        y = autodiff.tensor([1.0, 2.0, 0.5])
        J = autodiff.functional.jacobian(lambda t: t.softmax(dim=0), y)   # 3 x 3
    """
    if strategy not in ("reverse-mode", "forward-mode"):
        raise ValueError(
            f'jacobian: strategy must be "reverse-mode" or "forward-mode", got {strategy!r}'
        )
    del vectorize
    is_inputs_tuple, inputs = _as_tuple(inputs, "inputs", "jacobian")
    inputs = _grad_preprocess(inputs, create_graph, need_graph=True)
    is_outputs_tuple, outputs = _call(func, inputs, "jacobian")
    if strategy == "forward-mode":
        return _jacobian_forward(
            func, inputs, outputs, create_graph, strict, is_inputs_tuple, is_outputs_tuple
        )
    result = []
    with enable_grad():
        for i, out in enumerate(outputs):
            rows = [[] for _ in inputs]
            used = [False] * len(inputs)
            for k in range(out.numel()):
                one_hot = np.zeros(out.numel(), dtype=out.dtype)
                one_hot[k] = 1
                upstream = constant(one_hot.reshape(out.shape))
                grads = _vjp_grads((out,), inputs, (upstream,), create_graph)
                for j, (g, x) in enumerate(zip(grads, inputs, strict=True)):
                    used[j] = used[j] or g is not None
                    rows[j].append(_zeros_like(x) if g is None else g)
            blocks = []
            for j, x in enumerate(inputs):
                if strict and not used[j]:
                    raise RuntimeError(
                        f"jacobian: output {i} of the user-provided function is independent of "
                        f"input {j}. This is not allowed in strict mode."
                    )
                if rows[j]:
                    block = stack(rows[j]).reshape(out.shape + x.shape)
                else:  # an empty output
                    block = constant(np.zeros(out.shape + x.shape, x.dtype))
                blocks.append(block)
            result.append(tuple(blocks))
    result = _postprocess(tuple(result), create_graph)
    return _tuple_postprocess(result, (is_outputs_tuple, is_inputs_tuple))


def _jacobian_forward(
    func, inputs, outputs, create_graph, strict, is_inputs_tuple, is_outputs_tuple
):
    """Columns of the Jacobian from JVPs with one-hot input vectors."""
    columns = [[[] for _ in inputs] for _ in outputs]  # [i][j] -> list of out_i-shaped columns
    for j, x in enumerate(inputs):
        for l in range(x.numel()):  # noqa: E741 (the column index)
            v = []
            for jj, xx in enumerate(inputs):
                e = np.zeros(xx.numel(), dtype=xx.dtype)
                if jj == j:
                    e[l] = 1
                v.append(constant(e.reshape(xx.shape)))
            _, jv = jvp(func, tuple(inputs), tuple(v), create_graph=create_graph, strict=strict)
            jv = jv if isinstance(jv, tuple) else (jv,)
            for i in range(len(outputs)):
                columns[i][j].append(jv[i])
    result = []
    for i, out in enumerate(outputs):
        blocks = []
        for j, x in enumerate(inputs):
            if columns[i][j]:
                # stack columns on the last axis: shape out.shape + (x.numel(),)
                block = stack(columns[i][j], dim=out.ndim).reshape(out.shape + x.shape)
            else:
                block = constant(np.zeros(out.shape + x.shape, x.dtype))
            blocks.append(block)
        result.append(tuple(blocks))
    result = _postprocess(tuple(result), create_graph)
    return _tuple_postprocess(result, (is_outputs_tuple, is_inputs_tuple))


def _scalar_output(func, fn_name):
    def checked(*args):
        is_tuple, outputs = _as_tuple(func(*args), "outputs of the user-provided function", fn_name)
        if is_tuple or outputs[0].numel() != 1:
            raise RuntimeError(
                f"{fn_name}: the function given to {fn_name} must return a single Tensor with a "
                f"single element, got shapes {[o.shape for o in outputs]}"
            )
        return outputs[0]

    return checked


def hessian(
    func,
    inputs,
    create_graph=False,
    strict=False,
    vectorize=False,
    outer_jacobian_strategy="reverse-mode",
):
    """The Hessian of a scalar function: ``H[i][j] = d^2 f / dx_i dx_j``.

    For one input, a tensor of shape ``x.shape + x.shape``; for a tuple of
    inputs, a tuple of tuples ``H[i][j]`` of shape ``x_i.shape + x_j.shape``.
    Computed as the Jacobian of the gradient (the gradient recorded with
    ``create_graph=True``).  Example: for ``f(x) = x^T A x``, ``H = A + A^T``.
    """
    is_inputs_tuple, inputs = _as_tuple(inputs, "inputs", "hessian")
    scalar = _scalar_output(func, "hessian")

    def gradient(*xs):
        out = scalar(*xs)
        with enable_grad():
            grads = _vjp_grads((out,), xs, (constant(np.ones(out.shape, out.dtype)),), True)
        grads = _fill_unused(grads, xs, strict, "hessian", "input")
        return grads if is_inputs_tuple else grads[0]

    return jacobian(
        gradient,
        inputs if is_inputs_tuple else inputs[0],
        create_graph=create_graph,
        strict=strict,
        vectorize=vectorize,
        strategy=outer_jacobian_strategy,
    )


def _hessian_product(func, inputs, v, create_graph, strict, fn_name):
    is_inputs_tuple, inputs = _as_tuple(inputs, "inputs", fn_name)
    inputs = _grad_preprocess(inputs, create_graph, need_graph=True)
    v = _vector(v, inputs, fn_name, "input")
    with enable_grad():
        out = _scalar_output(func, fn_name)(*inputs)
        grads = _vjp_grads((out,), inputs, (constant(np.ones(out.shape, out.dtype)),), True)
        grads = _fill_unused(grads, inputs, strict, fn_name, "input")
        products = _vjp_grads(grads, inputs, v, create_graph)
    products = _fill_unused(products, inputs, strict, fn_name, "input")
    return (
        _postprocess(out, create_graph),
        _tuple_postprocess(_postprocess(products, create_graph), is_inputs_tuple),
    )


def hvp(func, inputs, v=None, create_graph=False, strict=False):
    """Hessian-vector product ``H v`` of a scalar function: returns ``(func_output, hvp)``.

    Two backward passes: ``g = grad f`` with ``create_graph=True``, then the
    VJP of ``g`` with ``v`` (``v^T H = (H v)^T`` since ``H`` is symmetric).
    """
    return _hessian_product(func, inputs, v, create_graph, strict, "hvp")


def vhp(func, inputs, v=None, create_graph=False, strict=False):
    """Vector-Hessian product ``v^T H`` of a scalar function: returns ``(func_output, vhp)``."""
    return _hessian_product(func, inputs, v, create_graph, strict, "vhp")
