"""Property-test your own operations: Hypothesis strategies and a gradient assertion.

This module needs Hypothesis (``pip install "autodiff[test]"``).  It offers

* strategies that draw test inputs: ``shapes``, ``broadcastable_shapes``,
  ``arrays`` and ``tensors``;
* ``assert_gradients_match(fn, *tensors)``: the engine's gradients of ``fn``
  against central differences, through a *random* upstream gradient ``v``
  (an all-ones ``v``, i.e. ``fn(x).sum()``, hides transposed or swapped
  gradients);
* ``check_gradients(fn, ...)``: a ready Hypothesis test that draws shapes and
  values and calls ``assert_gradients_match`` on each draw;
* ``check_graph(loss)``: every op of a recorded network checked on its own, on the
  inputs it saw, naming the first one (in backward order) whose gradient is wrong.

Testing a user-defined op takes a few lines::

    import autodiff
    from autodiff.testing import check_gradients

    class Cube(autodiff.Function):
        '''y = x^3        dL/dx = dL/dy * 3 x^2'''

        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x**3

        @staticmethod
        def backward(ctx, grad):
            (x,) = ctx.saved_tensors
            return grad * 3 * x**2

    test_cube = check_gradients(Cube.apply, elements=(-3, 3))   # pytest collects it

The numerical check, for inputs ``x_1 .. x_n`` and outputs ``y_1 .. y_m``: with
``L(x) = sum_i <v_i, y_i(x)>`` for random ``v_i``, the engine's
``dL/dx_j[k]`` must equal ``(L(x + eps e_k) - L(x - eps e_k)) / (2 eps)`` within
``atol + rtol * |numerical|``.  It runs in float64 (inputs are copied to
float64 unless ``dtype=None``).
"""

from __future__ import annotations

try:
    import hypothesis
    import hypothesis.extra.numpy as hnp
    from hypothesis import strategies as st
except ImportError as error:  # pragma: no cover - exercised in a subprocess test
    raise ImportError(
        "autodiff.testing needs Hypothesis, which is not installed; install the test "
        'extra: pip install "autodiff[test]" (or pip install hypothesis)'
    ) from error

import dataclasses
import inspect
import os
import traceback

import numpy as np

from .engine import grad as _grad
from .engine import topological_order
from .finite_differences import (
    directional_difference,
    jacobian_columns,
    perturbable_copies,
    worst_entry,
    wrong_gradient_shape,
)
from .function import Function, Node, observe
from .grad_mode import enable_grad
from .tensor import Tensor, constant

# pytest hides the frames of modules that set this: a failing gradient test shows the
# report, not this file's source.
__tracebackhide__ = True

_SHAPES_HINT = (
    "The inputs were drawn with shapes that broadcast together (as for + or *). If the "
    "function needs particular shapes, say so: for a matrix product, "
    "check_gradients(fn, shapes=[(2, 3), (3, 4)])."
)

__all__ = [
    "GraphCheck",
    "OpCheck",
    "arrays",
    "assert_gradients_match",
    "broadcastable_shapes",
    "check_gradients",
    "check_graph",
    "record_inputs",
    "shapes",
    "tensors",
]


# -- strategies -------------------------------------------------------------------


def shapes(*, min_dims=0, max_dims=3, min_side=1, max_side=4):
    """Strategy for array shapes (tuples of ints).

    ``shapes(min_dims=1, max_dims=2)`` draws ``(3,)``, ``(2, 4)``, ... with every
    side between ``min_side`` and ``max_side``; ``min_dims=0`` allows ``()``
    (a scalar).
    """
    if min_dims < 0 or max_dims < min_dims:
        raise ValueError(
            f"shapes: need 0 <= min_dims <= max_dims, got min_dims={min_dims}, max_dims={max_dims}"
        )
    if min_side < 0 or max_side < min_side:
        raise ValueError(
            f"shapes: need 0 <= min_side <= max_side, got min_side={min_side}, max_side={max_side}"
        )
    return hnp.array_shapes(
        min_dims=min_dims, max_dims=max_dims, min_side=min_side, max_side=max_side
    )


def broadcastable_shapes(
    num_shapes=2, *, min_dims=0, max_dims=3, min_side=1, max_side=4, base_shape=()
):
    """Strategy for a tuple of ``num_shapes`` shapes that broadcast together.

    ``broadcastable_shapes(2)`` draws pairs such as ``((2, 1, 3), (4, 3))`` or
    ``((), (2,))``: NumPy (and the engine) can combine them with ``+``, ``*`` ...
    ``np.broadcast_shapes(*shapes)`` is the result's shape.  ``base_shape``, as in
    Hypothesis, is a shape that all of them must broadcast with.
    """
    if num_shapes < 1:
        raise ValueError(f"broadcastable_shapes: num_shapes must be at least 1, got {num_shapes}")
    return hnp.mutually_broadcastable_shapes(
        num_shapes=num_shapes,
        base_shape=tuple(base_shape),
        min_dims=min_dims,
        max_dims=max_dims,
        min_side=min_side,
        max_side=max_side,
    ).map(lambda drawn: tuple(drawn.input_shapes))


def _elements(dtype, min_value, max_value, avoid, margin):
    dtype = np.dtype(dtype)
    if dtype.kind == "b":
        return st.booleans()
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        low = info.min if min_value is None else int(np.ceil(min_value))
        high = info.max if max_value is None else int(np.floor(max_value))
        strategy = st.integers(low, high)
    elif dtype.kind == "f":
        strategy = st.floats(
            min_value=min_value,
            max_value=max_value,
            allow_nan=False,
            allow_infinity=False,
            allow_subnormal=False,
            width=8 * min(dtype.itemsize, 8),
        )
    else:
        raise TypeError(f"arrays: unsupported dtype {dtype} (use a bool, int or float dtype)")
    if avoid:
        points = tuple(float(a) for a in avoid)
        strategy = strategy.filter(lambda v: all(abs(v - a) > margin for a in points))
    return strategy


def arrays(
    dtype=np.float64,
    shape=None,
    *,
    min_value=-10.0,
    max_value=10.0,
    elements=None,
    avoid=(),
    margin=1e-2,
    unique=False,
):
    """Strategy for NumPy arrays of ``dtype`` and ``shape`` with bounded values.

    ``shape`` is a tuple or a strategy (default ``shapes()``).  Values lie in
    ``[min_value, max_value]`` (finite, no NaN); ``avoid`` lists points to stay
    at least ``margin`` away from (kinks such as 0 for ``abs``); ``elements`` (a
    Hypothesis strategy) replaces all of that; ``unique=True`` draws distinct
    values.  Example: ``arrays(np.float64, (2, 3), min_value=0.1, max_value=5)``.
    """
    dtype = np.dtype(dtype)
    if min_value is not None and max_value is not None and min_value > max_value:
        raise ValueError(f"arrays: min_value {min_value} is larger than max_value {max_value}")
    if shape is None:
        shape = shapes()
    if elements is None:
        elements = _elements(dtype, min_value, max_value, avoid, margin)
    return hnp.arrays(dtype, shape, elements=elements, unique=unique)


def tensors(
    dtype=np.float64,
    shape=None,
    *,
    min_value=-10.0,
    max_value=10.0,
    elements=None,
    avoid=(),
    margin=1e-2,
    unique=False,
    requires_grad=False,
):
    """Strategy for ``autodiff.Tensor`` leaves; arguments as for ``arrays``.

    ``tensors(autodiff.float64, shapes(min_dims=1), min_value=0.1, requires_grad=True)``
    draws positive float64 leaves that require grad (a safe domain for ``log``).
    Integer and boolean tensors cannot require grad: asking is a ValueError.
    """
    dtype = np.dtype(dtype)
    if requires_grad and dtype.kind != "f":
        raise ValueError(
            f"tensors: only floating point tensors can require grad, got dtype {dtype}"
        )
    values = arrays(
        dtype,
        shape,
        min_value=min_value,
        max_value=max_value,
        elements=elements,
        avoid=avoid,
        margin=margin,
        unique=unique,
    )
    return _leaves(values, bool(requires_grad))


@st.composite
def _leaves(draw, values, requires_grad):
    # A composite rather than .map(): a failing example then prints as the tensor's
    # repr (tensor([...], dtype=float64, requires_grad=True)), not as a lambda call.
    return _leaf(draw(values), requires_grad)


def _leaf(array: np.ndarray, requires_grad: bool) -> Tensor:
    return constant(array).requires_grad_(requires_grad)


# -- the gradient assertion ---------------------------------------------------------


def _outputs(value) -> list:
    values = list(value) if isinstance(value, (tuple, list)) else [value]
    for i, out in enumerate(values):
        if not isinstance(out, Tensor):
            raise TypeError(
                f"assert_gradients_match: output {i} of the function is a "
                f"{type(out).__name__}, expected a Tensor"
            )
    floating = [out for out in values if out.dtype.kind == "f"]
    if not floating:
        raise ValueError(
            "assert_gradients_match: the function has no floating point output to check "
            f"(output dtypes {[str(out.dtype) for out in values]})"
        )
    return floating  # integer outputs (indices, masks) carry no gradient


def _describe_entry(index: int, shape: tuple) -> str:
    return str([int(i) for i in np.unravel_index(index, shape)]) if shape else "[]"


def _number(value: float) -> str:
    return f"{value:.6g}"


class _Checked:
    """What a report says about the function under test: its name and its inputs' names.

    ``Cube.apply`` is reported as ``Cube.forward`` / ``Cube.backward`` with the
    parameter names of ``forward`` (``x``); any other function by its own name,
    its gradient being the engine's backward through what it computes.
    """

    def __init__(self, fn, count):
        owner = getattr(fn, "__self__", None)  # Function.apply is bound to the Function class
        if isinstance(owner, type) and issubclass(owner, Function):
            self.name = owner.__name__
            self.forward, self.backward = f"{owner.__name__}.forward", f"{owner.__name__}.backward"
            signature_of, skip = owner.forward, 1  # forward(ctx, x, ...)
        else:
            self.name = getattr(fn, "__name__", type(fn).__name__)
            self.forward = self.name
            self.backward = f"the backward pass of {self.name}"
            signature_of, skip = fn, 0
        self.input_names = [f"input {j}" for j in range(count)]
        try:
            parameters = list(inspect.signature(signature_of).parameters.values())[skip:]
        except (TypeError, ValueError):  # builtins without a signature
            return
        if len(parameters) >= count and all(
            p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in parameters[:count]
        ):
            self.input_names = [p.name for p in parameters[:count]]

    def input(self, j) -> str:
        name = self.input_names[j]
        return f"input {j}" if name == f"input {j}" else f"input {j} ({name})"


def _where_user_code_failed(error: BaseException) -> str:
    """``file:line in function: code`` of the innermost frame outside autodiff and NumPy."""
    here = os.path.dirname(os.path.abspath(__file__))
    library = (here + os.sep, os.path.dirname(np.__file__) + os.sep)
    frames = [f for f in traceback.extract_tb(error.__traceback__) if f.filename]
    for frame in reversed(frames):
        if not os.path.abspath(frame.filename).startswith(library):
            code = f": {frame.line.strip()}" if frame.line else ""
            return f"\n  at {frame.filename}:{frame.lineno}, in {frame.name}{code}"
    return ""


def _shapes_of(inputs) -> str:
    return ", ".join(str(t.shape) for t in inputs if isinstance(t, Tensor))


class _ForwardError(AssertionError):
    """The function under test raised before any gradient was compared."""


def assert_gradients_match(
    fn,
    *tensors,
    eps=1e-6,
    atol=1e-5,
    rtol=1e-3,
    seed=0,
    grad_outputs=None,
    dtype=np.float64,
    order=1,
):
    """Assert that the engine's gradients of ``fn`` at ``tensors`` match finite differences.

    Every input tensor with ``requires_grad=True`` is checked (the others are
    passed through unchanged, as are non-tensor arguments).  The upstream
    gradient of each output is drawn from a standard normal with ``seed``
    unless ``grad_outputs`` gives it.  With ``dtype`` (float64 by default) the
    float inputs are copied to that dtype first (``dtype=None`` keeps theirs).

    Outputs may be a tensor or a tuple of tensors; integer and boolean outputs
    (such as the indices of ``max(dim)``) are ignored, and ``grad_outputs``
    lists one upstream gradient per floating point output.

    Returns the analytical gradients (a tuple) when they match.  Otherwise it
    raises ``AssertionError`` with a report that names the ``Function`` and its
    backward (``Cube.backward``), the input, its worst entry with the expected
    (finite differences) and computed values, and, when the op is element-wise
    (each output entry depends on the same entry of the input only), the local
    derivative itself, free of the random upstream gradient::

        Cube.backward: the gradient of input 0 (x), shape (3,), float64, does not match
        finite differences.
          Cube is element-wise, so dy/dx is its local derivative, one number per entry:
            at x[2] = 3: expected 27 (finite differences), got 18 (Cube.backward)
          ...

    When ``backward`` (or ``forward``) raises, the report says so and points at
    the line.  ``order=2`` also checks second derivatives: the backward pass,
    recorded with ``create_graph=True``, is differentiated and checked the same
    way (so ``backward`` must be written with Tensor operations).

    Example::

        x = autodiff.randn(3, 4, dtype=autodiff.float64, requires_grad=True)
        assert_gradients_match(lambda t: t.softmax(dim=1), x)
    """
    checked = _Checked(fn, len(tensors))
    return _assert_match(fn, tensors, checked, eps, atol, rtol, seed, grad_outputs, dtype, order)


def _assert_match(
    fn, tensors, checked, eps, atol, rtol, seed, grad_outputs, dtype, order, hint=None, kinks=False
):
    """``assert_gradients_match`` with the report's names given; ``kinks=True`` also
    accepts an entry whose gradient equals a one-sided difference (relu at 0, a tie in
    a max), as ``check_graph`` needs on the values a network really produced; ``hint``
    is added to the report when the forward raises."""
    inputs = perturbable_copies(tensors, dtype)
    wanted = [j for j, t in enumerate(inputs) if isinstance(t, Tensor) and t.requires_grad]
    if not wanted:
        raise ValueError(
            "assert_gradients_match: no input requires grad; pass tensors created with "
            "requires_grad=True (for example tensors(requires_grad=True))"
        )
    try:
        with enable_grad():
            result = fn(*inputs)
    except Exception as error:
        raise _ForwardError(
            f"{checked.forward} raised {type(error).__name__} on inputs of shapes "
            f"{_shapes_of(inputs)}: {error}{_where_user_code_failed(error)}"
            + (f"\n{hint}" if hint else "")
        ) from None
    outputs = _outputs(result)
    float_positions = [
        i
        for i, out in enumerate(result if isinstance(result, (tuple, list)) else [result])
        if out.dtype.kind == "f"
    ]
    if grad_outputs is None:
        rng = np.random.default_rng(seed)
        vs = [rng.standard_normal(out.shape) for out in outputs]
    else:
        given = list(grad_outputs) if isinstance(grad_outputs, (tuple, list)) else [grad_outputs]
        if len(given) != len(outputs):
            raise ValueError(
                f"assert_gradients_match: {len(given)} grad_outputs for {len(outputs)} outputs"
            )
        vs = [np.asarray(g.data if isinstance(g, Tensor) else g, dtype=np.float64) for g in given]
    for i, (out, v) in enumerate(zip(outputs, vs, strict=True)):
        if v.shape != out.shape:
            raise ValueError(
                f"assert_gradients_match: grad_outputs[{i}] has shape {v.shape} but output "
                f"{i} has shape {out.shape}"
            )
    analytical = _engine_gradients(checked, inputs, wanted, outputs, vs)
    results = []
    for position, j in enumerate(wanted):
        # numerical dL/dx_j[l] = sum_i <v_i, column l of d y_i / d x_j>
        numerical = np.zeros(inputs[j].data.size)
        # Element-wise: one output of the input's shape whose Jacobian is diagonal.
        diagonal = len(outputs) == 1 and outputs[0].shape == inputs[j].shape
        local = np.zeros(numerical.size) if diagonal else None
        sides = np.zeros((2, numerical.size)) if kinks else None
        for l, columns, *one_sided in jacobian_columns(fn, inputs, j, eps, one_sided=kinks):  # noqa: E741
            numerical[l] = sum(
                float(v.reshape(-1) @ columns[i]) for i, v in zip(float_positions, vs, strict=True)
            )
            for side, side_columns in enumerate(one_sided):
                sides[side, l] = sum(
                    float(v.reshape(-1) @ side_columns[i])
                    for i, v in zip(float_positions, vs, strict=True)
                )
            if diagonal:
                column = columns[float_positions[0]]
                local[l] = column[l]
                off_diagonal = np.delete(column, l)
                diagonal = not np.any(np.abs(off_diagonal) > atol)
        numerical = numerical.reshape(inputs[j].shape)
        expected = analytical[position]
        compared = numerical
        if kinks:  # an entry that matches the slope on one side is at a kink, and right
            flat = expected.reshape(-1)
            at_kink = np.isclose(flat, sides[0], rtol=rtol, atol=atol) | np.isclose(
                flat, sides[1], rtol=rtol, atol=atol
            )
            compared = np.where(at_kink, flat, numerical.reshape(-1)).reshape(expected.shape)
        worst = worst_entry(expected, compared, atol, rtol)
        if worst is not None:
            local_check = (
                _local_derivative(checked, inputs, j, wanted, outputs[0], worst, local[worst])
                if diagonal
                else None
            )
            raise AssertionError(
                _mismatch_report(
                    checked,
                    inputs[j],
                    j,
                    worst,
                    numerical,
                    expected,
                    local_check,
                    seed,
                    grad_outputs is None,
                    atol,
                    rtol,
                )
            )
        results.append(expected)
    if order >= 2:
        _check_second_order(fn, checked, inputs, wanted, vs, outputs, eps, atol, rtol, seed)
    return tuple(results)


def _engine_gradients(checked, inputs, wanted, outputs, vs) -> list:
    """The engine's ``dL/dx_j`` for ``L = sum_i <v_i, y_i>``, as float64 arrays."""
    differentiable = [(out, v) for out, v in zip(outputs, vs, strict=True) if out.requires_grad]
    analytical = [np.zeros(inputs[j].shape) for j in wanted]
    if not differentiable:
        return analytical
    try:
        grads = _grad(
            [out for out, _ in differentiable],
            [inputs[j] for j in wanted],
            [constant(v.astype(out.dtype)) for out, v in differentiable],
            retain_graph=True,  # the local derivative may need a second pass
            allow_unused=True,
        )
    except Exception as error:
        raise AssertionError(
            f"{checked.backward} raised {type(error).__name__} (inputs of shapes "
            f"{_shapes_of(inputs)}): {error}{_where_user_code_failed(error)}"
        ) from None
    for position, (j, g) in enumerate(zip(wanted, grads, strict=True)):
        if g is None:
            continue
        wrong = wrong_gradient_shape("assert_gradients_match", j, g, inputs[j])
        if wrong:
            raise AssertionError(wrong)
        if g.dtype != inputs[j].dtype:
            raise AssertionError(
                f"assert_gradients_match: the gradient of input {j} has dtype {g.dtype}, "
                f"but the input has dtype {inputs[j].dtype}"
            )
        analytical[position] = np.asarray(g.data, dtype=np.float64)
    return analytical


def _local_derivative(checked, inputs, j, wanted, output, entry, numerical) -> tuple:
    """``(numerical, analytical)`` dy[entry]/dx[entry], the analytical one from a one-hot
    upstream gradient: the element-wise op's own derivative at that entry."""
    one_hot = np.zeros(output.data.size)
    one_hot[entry] = 1.0
    (g,) = _engine_gradients(checked, inputs, [j], [output], [one_hot.reshape(output.shape)])
    return numerical, float(g.reshape(-1)[entry])


def _mismatch_report(
    checked, x, j, worst, numerical, analytical, local, seed, random_upstream, atol, rtol
) -> str:
    name = checked.input_names[j] if not checked.input_names[j].startswith("input") else "x"
    entry = _describe_entry(worst, x.shape)
    at = f"{name}{entry}" if x.shape else name
    value = float(x.data.reshape(-1)[worst])
    n, a = float(numerical.reshape(-1)[worst]), float(analytical.reshape(-1)[worst])
    lines = [
        f"{checked.backward}: the gradient of {checked.input(j)}, shape {x.shape}, "
        f"{x.dtype}, does not match finite differences."
    ]
    if local is not None:
        lines += [
            f"  {checked.name} is element-wise, so dy/d{name} is its local derivative, one "
            "number per entry:",
            f"    at {at} = {_number(value)}: expected {_number(local[0])} (finite "
            f"differences), got {_number(local[1])} ({checked.backward})",
        ]
    upstream = (
        f"a random upstream gradient dL/dy (seed {seed})"
        if random_upstream
        else "the given upstream gradient dL/dy"
    )
    where = f", worst entry {entry}" if x.shape else ""
    lines += [
        f"  dL/d{name} with {upstream}{where}:",
        f"    expected {_number(n)} (finite differences), got {_number(a)} "
        f"(|difference| {abs(a - n):.3g} > atol + rtol * |expected| = "
        f"{atol + rtol * abs(n):.3g})",
    ]
    if 1 < x.data.size <= 8:
        labels = [name, f"expected dL/d{name}", f"got dL/d{name}"]
        width = max(len(label) for label in labels) + 1
        with np.printoptions(precision=6, suppress=True, linewidth=1000):
            for label, values in zip(labels, (x.data, numerical, analytical), strict=True):
                lines.append(f"  {label + ':':<{width}} {np.asarray(values).reshape(-1)}")
    return "\n".join(lines)


def _check_second_order(fn, checked, inputs, wanted, vs, outputs, eps, atol, rtol, seed):
    """The first-order VJP ``(x, v) -> v^T J(x)``, recorded with ``create_graph=True``,
    checked like any function: its gradients in x (a Hessian-vector product) and in v."""
    n = len(inputs)
    upstream = [_leaf(np.array(v, dtype=o.dtype), True) for v, o in zip(vs, outputs, strict=True)]

    def first_order(*args):
        xs, us = list(args[:n]), args[n:]
        outs = _outputs(fn(*xs))
        pairs = [(o, u) for o, u in zip(outs, us, strict=True) if o.requires_grad]
        if not pairs:  # no graph at all: every first derivative is 0
            return tuple(constant(np.zeros(xs[j].shape, xs[j].dtype)) for j in wanted)
        grads = _grad(
            [o for o, _ in pairs],
            [xs[j] for j in wanted],
            [u for _, u in pairs],
            create_graph=True,
            allow_unused=True,
        )
        return tuple(
            g if g is not None else constant(np.zeros(xs[j].shape, xs[j].dtype))
            for g, j in zip(grads, wanted, strict=True)
        )

    differentiated = _Checked(first_order, 0)
    differentiated.name = differentiated.forward = checked.backward
    differentiated.backward = f"the derivative of {checked.backward}"
    differentiated.input_names = checked.input_names + ["v"] * len(upstream)
    try:
        _assert_match(
            first_order,
            (*inputs, *upstream),
            differentiated,
            eps,
            atol,
            rtol,
            seed + 1,
            None,
            np.float64,
            1,
        )
    except AssertionError as error:
        raise AssertionError(
            f"second order: {error}\n(The checked function is (inputs, v) -> v^T J, "
            f"{checked.backward} recorded with create_graph=True; inputs {n}.. are the "
            "upstream gradients v.)"
        ) from None


# -- a ready property test ------------------------------------------------------------


def _per_input(value, count, name):
    if isinstance(value, list):
        if len(value) != count:
            raise ValueError(
                f"check_gradients: {name} lists {len(value)} entries for {count} inputs"
            )
        return value
    return [value] * count


def check_gradients(
    fn,
    *,
    num_inputs=1,
    shapes=None,
    elements=(-10.0, 10.0),
    avoid=(),
    dtype=np.float64,
    max_examples=None,
    eps=1e-6,
    atol=1e-5,
    rtol=1e-3,
    order=1,
):
    """A Hypothesis test checking ``fn``'s gradients on drawn shapes and values.

    Returns a function of no arguments: call it, or assign it to a ``test_*``
    name in a test module and pytest collects it.  Each example draws

    * shapes: ``shapes`` may be a strategy drawing a tuple of ``num_inputs``
      shapes (default: ``broadcastable_shapes(num_inputs)``), or a list with one
      shape or shape strategy per input;
    * values: ``elements`` is a ``(low, high)`` pair or a Hypothesis strategy, or
      a list of those (one per input); ``avoid`` lists points (kinks) to keep
      away from;
    * a seed for the random upstream gradient,

    and calls ``assert_gradients_match(fn, *inputs, order=order)`` (``order=2``
    checks second derivatives too).  It runs under the Hypothesis settings in
    force when it is called (the profile, or ``hypothesis.settings(...)`` applied
    to the returned function) and reports one failure, the simplest it shrank to.  Example::

        test_mul = check_gradients(lambda a, b: a * b, num_inputs=2)
        test_log = check_gradients(autodiff.log, elements=(0.1, 10))
        test_mm = check_gradients(lambda a, b: a @ b, shapes=[(2, 3), (3, 4)])
    """
    if shapes is None:
        shape_strategy = broadcastable_shapes(num_inputs)
    elif isinstance(shapes, list):
        if len(shapes) != num_inputs:
            num_inputs = len(shapes)
        parts = [s if isinstance(s, st.SearchStrategy) else st.just(tuple(s)) for s in shapes]
        shape_strategy = st.tuples(*parts)
    elif isinstance(shapes, st.SearchStrategy):
        shape_strategy = shapes
    else:
        raise TypeError(
            "check_gradients: shapes must be None, a strategy of shape tuples (such as "
            f"broadcastable_shapes(2)) or a list of shapes, got {shapes!r}"
        )
    bounds = _per_input(elements, num_inputs, "elements")

    def value_strategy(bound, shape):
        if isinstance(bound, st.SearchStrategy):
            return tensors(dtype, shape, elements=bound, requires_grad=True)
        low, high = bound
        return tensors(dtype, shape, min_value=low, max_value=high, avoid=avoid, requires_grad=True)

    @st.composite
    def drawn_inputs(draw):
        drawn_shapes = draw(shape_strategy)
        if len(drawn_shapes) != num_inputs:
            raise ValueError(
                f"check_gradients: the shapes strategy drew {len(drawn_shapes)} shapes for "
                f"{num_inputs} inputs"
            )
        return [draw(value_strategy(b, s)) for b, s in zip(bounds, drawn_shapes, strict=True)]

    hint = None if shapes is not None else _SHAPES_HINT

    checked = _Checked(fn, num_inputs)

    def gradients_match(inputs, seed):
        _assert_match(fn, inputs, checked, eps, atol, rtol, seed, None, np.float64, order, hint)

    def test_gradients():
        # The settings in force (the profile, or @hypothesis.settings(...) applied to
        # this function, which stores them on it), with one failure reported once: a
        # bug that fails in several ways (a forward that rejects several shape pairs)
        # would otherwise be an ExceptionGroup of all of them; and no "explain" phase,
        # whose list of library lines is noise to a student.
        chosen = getattr(test_gradients, "_hypothesis_internal_use_settings", None)
        phases = [p for p in hypothesis.Phase if p is not hypothesis.Phase.explain]
        overrides = {"report_multiple_bugs": False, "phases": phases}
        if max_examples is not None:
            overrides["max_examples"] = max_examples
        given = hypothesis.given(inputs=drawn_inputs(), seed=st.integers(0, 2**32 - 1))
        run = hypothesis.settings(chosen or hypothesis.settings.default, **overrides)(
            given(gradients_match)
        )
        run.__name__ = run.__qualname__ = test_gradients.__name__
        run()

    owner = getattr(fn, "__self__", None)  # Function.apply is bound to the Function class
    name = owner.__name__ if isinstance(owner, type) else getattr(fn, "__name__", "fn")
    test_gradients.__name__ = test_gradients.__qualname__ = (
        f"test_gradients_of_{name}".replace(".", "_").replace("<", "").replace(">", "")
    )
    return test_gradients


# -- the first wrong op in a whole graph ------------------------------------------------


class _Recorded:
    """A tensor input as an op saw it: a copy of its value, its dtype and its name."""

    __slots__ = ("data", "name")

    def __init__(self, tensor: Tensor):
        self.data = np.array(tensor.data, copy=True)
        self.name = tensor.name


_INPUTS_KEY = "autodiff.testing.inputs"  # where record_inputs keeps them, in Node.annotations


class record_inputs:
    """Keep, for every op recorded inside the block, a copy of the inputs it saw.

    ``check_graph`` needs them to re-run each op on its own::

        with autodiff.testing.record_inputs():
            loss = F.cross_entropy(model(X), y)
        report = autodiff.testing.check_graph(loss)

    ``check_graph(lambda: F.cross_entropy(model(X), y))`` does the same in one
    call.  The copies live in each node's ``annotations`` (an ``autodiff.observe``
    observer puts them there), so they are freed with the graph.  Memory: one copy
    of each op's inputs.
    """

    def __enter__(self):
        self._handle = observe(_keep_inputs)
        return self

    def __exit__(self, *exc_info):
        self._handle.remove()


def _keep_inputs(node, inputs, output):
    if node.annotations is None:
        node.annotations = {}
    node.annotations[_INPUTS_KEY] = tuple(
        _Recorded(value)
        if isinstance(value, Tensor)
        else np.array(value, copy=True)
        if isinstance(value, np.ndarray)
        else value
        for value in inputs
    )


def _recorded_inputs(node):
    return None if node.annotations is None else node.annotations.get(_INPUTS_KEY)


@dataclasses.dataclass
class OpCheck:
    """One op of the graph, checked: ``status`` is "right", "wrong" or "not checked"."""

    step: int  # its place among the ops in backward order: 1 for the op that made the loss
    name: str  # the Function's name, as in a traceback or a picture: "MatMul"
    node: object = dataclasses.field(repr=False)  # the graph's Node (PyTorch's grad_fn)
    status: str
    message: str = ""  # why: the gradient report for a wrong op
    where: str = ""  # the lecture's layer and the module that ran it: "conv2d, Conv2d '0'"


@dataclasses.dataclass
class GraphCheck:
    """What ``check_graph`` found: every op in backward order, and the first wrong one.

    ``bool(report)`` is True when every op's gradient is right, so
    ``assert check_graph(...)`` works in a test; ``report.wrong`` is the first
    wrong :class:`OpCheck` (or None); ``str(report)`` explains it.
    """

    ops: list

    @property
    def wrong(self):
        return next((op for op in self.ops if op.status == "wrong"), None)

    def __bool__(self):
        return self.wrong is None

    def __str__(self):
        counts = {status: sum(op.status == status for op in self.ops) for status in _STATUSES}
        summary = ", ".join(f"{n} {status}" for status, n in counts.items() if n)
        lines = [f"check_graph: {len(self.ops)} ops in backward order ({summary})."]
        wrong = self.wrong
        if wrong is None:
            lines.append("Every op's backward matches finite differences of its own forward.")
        else:
            where = f", {wrong.where}" if wrong.where else ""
            lines.append(
                f"The first wrong op is op {wrong.step} in backward order, {wrong.name} "
                f"({wrong.node.name()}{where}):"
            )
            lines += ["  " + line for line in wrong.message.splitlines()]
        width = max((len(op.name) for op in self.ops), default=0)
        places = max((len(op.where) for op in self.ops), default=0)
        for op in self.ops:
            mark = {"right": "ok", "wrong": "WRONG", "not checked": "--"}[op.status]
            note = f"  {op.message.splitlines()[0]}" if op.status == "not checked" else ""
            lines.append(f"  {op.step:>3}  {op.name:<{width}}  {op.where:<{places}}  {mark}{note}")
        return "\n".join(lines)

    __repr__ = __str__


_STATUSES = ("right", "wrong", "not checked")


def check_graph(loss, *, eps=1e-6, atol=1e-5, rtol=1e-3, seed=0) -> GraphCheck:
    """Check every op of a recorded graph on its own, and find the first wrong one.

    For each op, in the order ``backward()`` runs them (the loss's own op first),
    the op's ``forward`` is run again on copies (in float64) of the very inputs it
    saw, and its ``backward`` is compared with finite differences of that forward,
    through a random upstream gradient.  A hand-written ``Function`` with a wrong
    backward inside a network is then named, with the input, the entry and the
    expected and computed values, instead of only "the gradient of the loss is
    wrong".  ``visualize.draw_graph(loss, highlight=report)`` marks it on the picture.

    ``loss`` is a function of no arguments that computes the loss (it is run with
    the inputs of every op recorded), or a tensor computed inside
    ``with record_inputs():``.  Returns a :class:`GraphCheck`; nothing is changed
    (no ``.grad``, the graph is not freed).

    Each op costs two evaluations of its forward while it is right (a random
    projection ``u^T J v``); only an op that fails is checked entry by entry, and an
    entry that matches a one-sided difference counts as right (relu at 0, ties in
    max pooling: the backward pass may take either side of a kink).

    Example::

        report = check_graph(lambda: F.cross_entropy(model(X), y))
        print(report)            # the first wrong op, then every op: ok / WRONG
        assert report, report    # in a test
    """
    if callable(loss) and not isinstance(loss, Tensor):
        with record_inputs():
            loss = loss()
    if not isinstance(loss, Tensor):
        raise TypeError(
            "check_graph: expected a function that computes the loss, or a Tensor, got "
            f"{type(loss).__name__}"
        )
    if loss.grad_fn is None:
        raise ValueError(
            "check_graph: the loss has no recorded graph (no input requires grad, or it "
            "was computed under no_grad)"
        )
    order = [node for node in topological_order(loss.grad_fn) if type(node) is Node]
    missing = [node for node in order if _recorded_inputs(node) is None]
    if missing:
        raise ValueError(
            f"check_graph: the inputs of {len(missing)} of the {len(order)} ops were not "
            "recorded (first: " + missing[0].name() + "). Pass a function that computes "
            "the loss, check_graph(lambda: loss_fn(model(X), y)), or compute the loss "
            "inside 'with autodiff.testing.record_inputs():'."
        )
    rng = np.random.default_rng(seed)
    return GraphCheck(
        [
            _check_op(step, node, _recorded_inputs(node), rng, eps, atol, rtol)
            for step, node in enumerate(order, start=1)
        ]
    )


def _where(node) -> str:
    """The lecture's layer (a region) and the module that recorded the node, as tagged."""
    annotations = node.annotations or {}
    region, call = annotations.get("region"), annotations.get("module")
    parts = [region.name] if getattr(region, "name", None) else []
    if call is not None:
        parts.append(f"{call.type_name} {call.name!r}" if call.name else call.type_name)
    return ", ".join(parts)


def _check_op(step, node, recorded, rng, eps, atol, rtol) -> OpCheck:
    result = _check_op_values(step, node, recorded, rng, eps, atol, rtol)
    result.where = _where(node)
    return result


def _check_op_values(step, node, recorded, rng, eps, atol, rtol) -> OpCheck:
    function = node.function
    name = function.__name__
    inputs = []
    for value, needs_grad in zip(recorded, node.needs_input_grad, strict=True):
        if isinstance(value, _Recorded):
            floating = value.data.dtype.kind == "f"
            data = value.data.astype(np.float64) if floating else value.data
            leaf = _leaf(np.array(data, copy=True), needs_grad and floating)
            leaf.name = value.name
            inputs.append(leaf)
        else:
            inputs.append(value)
    wanted = [j for j, x in enumerate(inputs) if isinstance(x, Tensor) and x.requires_grad]
    if not wanted:
        return OpCheck(step, name, node, "not checked", "no input takes a gradient")
    try:
        with enable_grad():
            out = function.apply(*inputs)
    except Exception as error:  # a forward that cannot run in float64, say
        return OpCheck(
            step, name, node, "not checked", f"forward raised {type(error).__name__}: {error}"
        )
    upstream = rng.standard_normal(out.shape)
    checked = _Checked(function.apply, len(inputs))
    try:
        grads = _engine_gradients(checked, inputs, wanted, [out], [upstream])
    except AssertionError as error:  # backward raised, or returned a wrong shape
        return OpCheck(step, name, node, "wrong", str(error))
    for j, analytical in zip(wanted, grads, strict=True):
        direction = rng.standard_normal(inputs[j].shape)
        copies = perturbable_copies(inputs)
        (along,) = directional_difference(function.apply, copies, j, direction, eps)
        numerical = float(np.sum(upstream * along))
        computed = float(np.sum(analytical * direction))
        if abs(numerical - computed) <= atol + rtol * max(abs(numerical), abs(computed)):
            continue
        try:  # the projection disagrees: entry by entry, kinks allowed
            _assert_match(
                function.apply, inputs, checked, eps, atol, rtol, step, None, None, 1, kinks=True
            )
        except AssertionError as error:
            return OpCheck(step, name, node, "wrong", str(error))
    return OpCheck(step, name, node, "right")
