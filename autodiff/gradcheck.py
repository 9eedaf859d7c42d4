"""``gradcheck`` and ``gradgradcheck``: analytic gradients against finite differences.

For a function ``f`` of tensors ``x_1 .. x_n`` with outputs ``y_1 .. y_m``,
``gradcheck`` builds, for every pair (output i, input j), two Jacobians of shape
``(y_i.numel(), x_j.numel())``:

* the **analytical** one from the engine: row ``k`` is the vector-Jacobian
  product with the one-hot upstream gradient ``e_k`` (one backward pass per
  output element);
* the **numerical** one by central differences: column ``l`` is
  ``(f(x + eps e_l) - f(x - eps e_l)) / (2 eps)``,

and requires ``|analytical - numerical| <= atol + rtol * |numerical|`` entrywise
(NumPy's ``allclose``), as ``torch.autograd.gradcheck`` does.  Use float64
inputs: in float32 the finite differences are too noisy for the default
tolerances (a warning says so).

Example::

    >>> import autodiff
    >>> x = autodiff.randn(3, dtype=autodiff.float64, requires_grad=True)
    >>> autodiff.gradcheck(lambda t: (t * t).sin(), (x,))
    True

``gradgradcheck`` runs the same check on the function ``(x, v) -> v^T J(x)``,
i.e. on the backward pass recorded with ``create_graph=True``, which tests
second derivatives.
"""

from __future__ import annotations

import warnings

import numpy as np

from .engine import grad as _grad
from .finite_differences import (
    as_tuple,
    directional_difference,
    evaluate,
    jacobian_columns,
    perturbable_copies,
    worst_entry,
    wrong_gradient_shape,
)
from .grad_mode import enable_grad
from .tensor import Tensor, constant

__all__ = ["GradcheckError", "gradcheck", "gradgradcheck"]


class GradcheckError(RuntimeError):
    """Raised by ``gradcheck`` / ``gradgradcheck`` when the gradients do not match."""


def _differentiable_outputs(outputs) -> list:
    """(index, tensor) for each floating point tensor output."""
    return [
        (i, out)
        for i, out in enumerate(outputs)
        if isinstance(out, Tensor) and out.dtype.kind == "f"
    ]


def _unravel(flat: int, shape: tuple) -> tuple:
    return tuple(int(i) for i in np.unravel_index(flat, shape)) if shape else ()


def _fail(message: str, raise_exception: bool) -> bool:
    if raise_exception:
        raise GradcheckError(message)
    return False


def _check_inputs(name: str, inputs: tuple) -> list:
    """Indices of the inputs that require grad; warns about non-float64 ones."""
    wanted = []
    for j, x in enumerate(inputs):
        if isinstance(x, Tensor) and x.requires_grad:
            wanted.append(j)
            if x.dtype != np.float64:
                warnings.warn(
                    f"{name}: input {j} requires gradient and has dtype {x.dtype}, not "
                    "float64. This check will likely fail if the inputs are not of double "
                    "precision (finite differences in float32 are too noisy).",
                    UserWarning,
                    stacklevel=3,
                )
    if not wanted:
        raise ValueError(
            f"{name}: expected at least one input tensor with requires_grad=True, but none "
            f"of the {len(inputs)} inputs requires grad"
        )
    return wanted


def _numerical_jacobians(fn, inputs, wanted, eps) -> dict:
    """``{(i, j): J}`` with ``J[k, l] = d out_i[k] / d in_j[l]`` by central differences."""
    copies = perturbable_copies(inputs)
    jacobians = {
        (i, j): np.zeros((out.size, copies[j].data.size))
        for i, out in enumerate(evaluate(fn, copies))
        if out is not None
        for j in wanted
    }
    for j in wanted:
        for l, columns in jacobian_columns(fn, copies, j, eps):  # noqa: E741
            for i, column in enumerate(columns):
                if column is not None:
                    jacobians[(i, j)][:, l] = column
    return jacobians


def _analytical_jacobians(fn, inputs, wanted, name) -> tuple:
    """``({(i, j): J}, outputs)`` from one-hot vector-Jacobian products."""
    with enable_grad():
        outputs = as_tuple(fn(*inputs))
    differentiable = [inputs[j] for j in wanted]
    jacobians = {}
    for i, out in _differentiable_outputs(outputs):
        for j in wanted:
            jacobians[(i, j)] = np.zeros((out.numel(), inputs[j].numel()))
        if not out.requires_grad:
            continue  # no graph: the analytical Jacobian is zero
        for k in range(out.numel()):
            one_hot = np.zeros(out.numel(), dtype=out.dtype)
            one_hot[k] = 1
            upstream = constant(one_hot.reshape(out.shape))
            grads = _grad(out, differentiable, upstream, retain_graph=True, allow_unused=True)
            for j, g in zip(wanted, grads, strict=True):
                if g is None:
                    continue
                wrong = wrong_gradient_shape(name, j, g, inputs[j])
                if wrong:
                    raise GradcheckError(wrong)
                jacobians[(i, j)][k, :] = np.asarray(g.data, dtype=np.float64).reshape(-1)
    return jacobians, outputs


def _compare(name, i, j, out_shape, in_shape, analytical, numerical, atol, rtol) -> str | None:
    """None when the Jacobians match, else a message naming the worst entry."""
    worst = worst_entry(analytical, numerical, atol, rtol)
    if worst is None:
        return None
    row, col = np.unravel_index(worst, analytical.shape)
    a, n = float(analytical[row, col]), float(numerical[row, col])
    message = (
        f"{name}: Jacobian mismatch for output {i} with respect to input {j}.\n"
        f"Worst entry: d output{i}{list(_unravel(row, out_shape))} / "
        f"d input{j}{list(_unravel(col, in_shape))} (Jacobian row {row}, column {col}): "
        f"numerical {n!r}, analytical {a!r}, |difference| {abs(a - n)!r} > "
        f"atol + rtol * |numerical| = {atol + rtol * abs(n)!r}."
    )
    if analytical.size <= 100:
        with np.printoptions(precision=6, suppress=True, linewidth=100):
            message += f"\nnumerical:\n{numerical}\nanalytical:\n{analytical}"
    return message


def _fast_check(fn, inputs, wanted, eps, atol, rtol, name, raise_exception) -> bool:
    """Compare u^T J v (random u, v) instead of whole Jacobians: one backward pass."""
    rng = np.random.default_rng(0)
    with enable_grad():
        outputs = as_tuple(fn(*inputs))
    outs = _differentiable_outputs(outputs)
    copies = perturbable_copies(inputs)
    directions = {j: rng.standard_normal(inputs[j].shape) for j in wanted}
    for j in wanted:
        along = directional_difference(fn, copies, j, directions[j], eps)
        for i, out in outs:
            u = rng.standard_normal(out.shape)
            numerical = float(np.sum(u * along[i]))
            analytical = 0.0
            if out.requires_grad:
                upstream = constant(u.astype(out.dtype))
                (g,) = _grad(out, [inputs[j]], upstream, retain_graph=True, allow_unused=True)
                if g is not None:
                    analytical = float(np.sum(np.asarray(g.data, np.float64) * directions[j]))
            if not np.isclose(analytical, numerical, rtol=rtol, atol=atol):
                return _fail(
                    f"{name} (fast mode): Jacobian mismatch for output {i} with respect to "
                    f"input {j}: the projection u^T J v with random u, v is numerical "
                    f"{numerical!r} but analytical {analytical!r}. Run with fast_mode=False "
                    "to see the worst entry.",
                    raise_exception,
                )
    return True


def gradcheck(
    func,
    inputs,
    *,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    raise_exception: bool = True,
    nondet_tol: float = 0.0,
    fast_mode: bool = False,
    check_undefined_grad: bool = True,
    check_grad_dtypes: bool = False,
    check_batched_grad: bool = False,
    check_batched_forward_grad: bool = False,
    check_backward_ad: bool = True,
    check_forward_ad: bool = False,
    masked: bool | None = None,
) -> bool:
    """Check the gradients of ``func`` at ``inputs`` against central differences.

    ``func`` takes the tensors of ``inputs`` (a tensor or a tuple; non-tensor
    entries are passed through) and returns a tensor or a tuple of tensors.
    For every floating point output ``i`` and every input ``j`` that requires
    grad, the analytical Jacobian (from backward) must match the numerical one
    ``(f(x + eps) - f(x - eps)) / (2 eps)`` within ``atol + rtol * |numerical|``.

    Returns True on success.  On failure it raises ``GradcheckError`` (a
    ``RuntimeError``) naming the output and input, the worst entry and both
    values, or returns False when ``raise_exception=False``.  ``fast_mode=True``
    compares one random projection ``u^T J v`` per pair instead of whole
    Jacobians.  The remaining keyword arguments exist for PyTorch compatibility;
    ``check_grad_dtypes=True`` also requires each gradient's dtype to equal its
    input's.

    Example::

        x = autodiff.randn(2, 3, dtype=autodiff.float64, requires_grad=True)
        w = autodiff.randn(3, 4, dtype=autodiff.float64, requires_grad=True)
        assert autodiff.gradcheck(lambda a, b: (a @ b).tanh(), (x, w))
    """
    del nondet_tol, check_undefined_grad, check_batched_grad, check_batched_forward_grad
    del check_forward_ad, masked
    name = "gradcheck"
    inputs = as_tuple(inputs)
    wanted = _check_inputs(name, inputs)
    if not check_backward_ad:
        return True
    if fast_mode:
        return _fast_check(func, inputs, wanted, eps, atol, rtol, name, raise_exception)
    analytical, outputs = _analytical_jacobians(func, inputs, wanted, name)
    if not _differentiable_outputs(outputs):
        raise ValueError(
            f"{name}: the function returned no floating point tensor output to check "
            f"(got {[type(o).__name__ for o in outputs]})"
        )
    if check_grad_dtypes:
        with enable_grad():
            out = _differentiable_outputs(as_tuple(func(*inputs)))[0][1]
        if out.requires_grad:
            grads = _grad(
                out,
                [inputs[j] for j in wanted],
                constant(np.ones(out.shape, out.dtype)),
                allow_unused=True,
            )
            for j, g in zip(wanted, grads, strict=True):
                if g is not None and g.dtype != inputs[j].dtype:
                    return _fail(
                        f"{name}: the gradient for input {j} has dtype {g.dtype} but the "
                        f"input has dtype {inputs[j].dtype}",
                        raise_exception,
                    )
    numerical = _numerical_jacobians(func, inputs, wanted, eps)
    for i, out in _differentiable_outputs(outputs):
        for j in wanted:
            message = _compare(
                name,
                i,
                j,
                out.shape,
                inputs[j].shape,
                analytical[(i, j)],
                numerical[(i, j)],
                atol,
                rtol,
            )
            if message is not None:
                return _fail(message, raise_exception)
    return True


def gradgradcheck(
    func,
    inputs,
    grad_outputs=None,
    *,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    gen_non_contig_grad_outputs: bool = False,
    raise_exception: bool = True,
    nondet_tol: float = 0.0,
    check_undefined_grad: bool = True,
    check_grad_dtypes: bool = False,
    check_batched_grad: bool = False,
    check_fwd_over_rev: bool = False,
    check_rev_over_rev: bool = True,
    fast_mode: bool = False,
    masked: bool = False,
) -> bool:
    """Check second derivatives: ``gradcheck`` of the backward pass itself.

    The checked function maps ``(inputs, v)`` to the gradients
    ``v^T dF/dx_j`` computed with ``create_graph=True``, so both the VJP's
    dependence on the inputs (the Hessian-vector product) and on the upstream
    gradient ``v`` are compared with finite differences.  ``grad_outputs``
    (``v``) are drawn from a standard normal (float64, requiring grad) when not
    given.

    Example::

        x = autodiff.randn(4, dtype=autodiff.float64, requires_grad=True)
        assert autodiff.gradgradcheck(lambda t: (t ** 3).sum(), (x,))
    """
    del gen_non_contig_grad_outputs, nondet_tol, check_undefined_grad
    del check_batched_grad, check_fwd_over_rev, masked
    if not check_rev_over_rev:
        return True
    name = "gradgradcheck"
    inputs = as_tuple(inputs)
    _check_inputs(name, inputs)
    with enable_grad():
        outputs = as_tuple(func(*inputs))
    outs = [out for _, out in _differentiable_outputs(outputs)]
    if grad_outputs is None:
        rng = np.random.default_rng(0)
        grad_outputs = tuple(
            constant(rng.standard_normal(out.shape).astype(out.dtype)) for out in outs
        )
        for g in grad_outputs:
            g.requires_grad_()
    grad_outputs = as_tuple(grad_outputs)
    if len(grad_outputs) != len(outs):
        raise ValueError(
            f"{name}: got {len(grad_outputs)} grad_outputs for {len(outs)} differentiable outputs"
        )
    n_inputs = len(inputs)

    def first_derivatives(*args):
        xs, vs = args[:n_inputs], args[n_inputs:]
        ys = [out for _, out in _differentiable_outputs(as_tuple(func(*xs)))]
        pairs = [(y, v) for y, v in zip(ys, vs, strict=True) if y.requires_grad]
        differentiable = [x for x in xs if isinstance(x, Tensor) and x.requires_grad]
        if not pairs:
            return tuple(constant(np.zeros(x.shape, x.dtype)) for x in differentiable)
        grads = _grad(
            [y for y, _ in pairs],
            differentiable,
            [v for _, v in pairs],
            create_graph=True,
            allow_unused=True,
        )
        return tuple(
            g if g is not None else constant(np.zeros(x.shape, x.dtype))
            for g, x in zip(grads, differentiable, strict=True)
        )

    try:
        return gradcheck(
            first_derivatives,
            inputs + grad_outputs,
            eps=eps,
            atol=atol,
            rtol=rtol,
            raise_exception=raise_exception,
            check_grad_dtypes=check_grad_dtypes,
            fast_mode=fast_mode,
        )
    except GradcheckError as error:
        message = str(error).replace("gradcheck", name, 1)
        raise GradcheckError(
            f"{message}\n(gradgradcheck checks the first derivatives as a function of the "
            f"inputs and the upstream gradients: output i is the gradient of the i-th input "
            f"that requires grad; inputs 0..{n_inputs - 1} are the function's inputs and inputs "
            f"{n_inputs}.. its grad_outputs.)"
        ) from None
