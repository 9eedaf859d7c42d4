"""Engine tests: graph shapes, accumulation, retain_graph, hooks, higher derivatives,
deep graphs, memory release, grad modes, autodiff.grad, custom Functions, in-place
rules, dtype rules and the Tensor API."""

from __future__ import annotations

import gc
import math
import re
import warnings
import weakref

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import autodiff
from autodiff.testing import shapes, tensors


def leaf(values, dtype=autodiff.float64):
    return autodiff.tensor(values, dtype=dtype, requires_grad=True)


# -- graph shapes and accumulation --------------------------------------------------------


def test_reused_node_b_equals_a_plus_a():
    a = leaf([1.0, -2.0, 3.0])
    b = a + a  # both inputs of one node are the same leaf
    c = b * b  # both inputs are the same non-leaf
    c.sum().backward()
    # c = 4 a^2, dc/da = 8 a
    np.testing.assert_allclose(a.grad.data, 8 * a.data)


def test_diamond_graph_sums_both_paths():
    x = leaf(2.0)
    y = x.exp()
    z = y * y.sin() + y.log()  # y feeds three ops
    z.backward()
    e = math.exp(2.0)
    expected = (math.sin(e) + e * math.cos(e)) * e + 1.0  # dz/dy * dy/dx
    assert x.grad.item() == pytest.approx(expected, rel=1e-12)


def test_gradients_accumulate_over_two_backward_calls():
    x = leaf([1.0, 2.0])
    (x * 3).sum().backward()
    first = x.grad
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad.data, 3 + 2 * x.data)
    assert x.grad is first  # accumulated in place, as PyTorch does


def test_grad_can_be_reset_and_reassigned():
    x = leaf([1.0, 2.0])
    (x * 2).sum().backward()
    x.grad = None
    (x * 5).sum().backward()
    np.testing.assert_allclose(x.grad.data, [5.0, 5.0])
    x.grad.zero_()
    assert np.all(x.grad.data == 0)


def test_leaf_gradients_do_not_share_memory():
    a, b = leaf([1.0, 2.0]), leaf([3.0, 4.0])
    (a + b).sum().backward()  # the same upstream array reaches both leaves
    a.grad.add_(1.0)
    np.testing.assert_allclose(b.grad.data, [1.0, 1.0])


def test_broadcast_gradient_has_the_input_shape():
    a = leaf(np.ones((3, 1)))
    b = leaf(np.ones((4,)))
    c = leaf(2.0)
    (a * b * c).sum().backward()
    assert a.grad.shape == (3, 1) and b.grad.shape == (4,) and c.grad.shape == ()
    np.testing.assert_allclose(a.grad.data, np.full((3, 1), 8.0))
    np.testing.assert_allclose(b.grad.data, np.full(4, 6.0))
    assert c.grad.item() == 12.0


def test_backward_with_an_explicit_gradient():
    x = leaf([1.0, 2.0, 3.0])
    y = x * x
    y.backward(autodiff.tensor([1.0, 0.5, -1.0], dtype=autodiff.float64))
    np.testing.assert_allclose(x.grad.data, [2.0, 2.0, -6.0])


# -- retain_graph and the freed graph ------------------------------------------------------


def test_retain_graph_allows_a_second_backward():
    x = leaf([1.0, 2.0])
    y = (x.exp() * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_allclose(x.grad.data, 2 * (np.exp(x.data) * (1 + x.data)))


def test_backward_through_a_freed_graph_raises():
    x = leaf([1.0, 2.0])
    y = (x.exp() * x).sum()
    y.backward()
    with pytest.raises(
        RuntimeError,
        match=r"Backward: trying to backward through the graph a second time.*retain_graph=True",
    ):
        y.backward()


def test_graph_memory_is_released_after_backward():
    x = leaf(np.arange(1.0, 5.0))
    t = x * 2
    u = t.log()  # Log saves its input t
    loss = u.sum()
    t_ref, u_ref = weakref.ref(t), weakref.ref(u)
    del t, u
    gc.collect()
    assert t_ref() is not None  # the graph keeps the saved input alive
    loss.backward()
    gc.collect()
    assert t_ref() is None and u_ref() is None  # freed although loss still lives
    node_ref = weakref.ref(loss.grad_fn)
    del loss
    gc.collect()
    assert node_ref() is None


def test_retain_graph_keeps_saved_values_alive():
    x = leaf([1.0, 2.0])
    t = x * 2
    loss = t.log().sum()
    t_ref = weakref.ref(t)
    del t
    loss.backward(retain_graph=True)
    gc.collect()
    assert t_ref() is not None
    del loss
    gc.collect()
    assert t_ref() is None


def test_no_reference_cycles_keep_a_graph_alive():
    gc.collect()
    gc.disable()
    try:
        x = leaf(np.ones(3))
        y = ((x * 2).exp() + x).sum()
        y_ref, node_ref = weakref.ref(y), weakref.ref(y.grad_fn)
        y.backward()
        del y
        assert y_ref() is None and node_ref() is None  # freed by reference counting alone
    finally:
        gc.enable()


def test_a_100000_op_chain_backpropagates_without_recursion_error():
    x = leaf(0.5)
    y = x
    for i in range(100_000):
        y = y * 1.0 if i % 2 else y + 1e-5
    y.backward()
    assert x.grad.item() == 1.0
    assert y.item() == pytest.approx(0.5 + 0.5, abs=1e-9)
    del y  # freeing the deep chain must not overflow the C stack either
    gc.collect()


# -- retain_grad and hooks -----------------------------------------------------------------


def test_retain_grad_on_a_non_leaf():
    x = leaf([1.0, 2.0])
    y = x * 3
    y.retain_grad()
    assert y.retains_grad
    (y * y).sum().backward()
    np.testing.assert_allclose(y.grad.data, 2 * y.data)
    np.testing.assert_allclose(x.grad.data, 18 * x.data)


def test_non_leaf_grad_is_none_with_a_warning():
    x = leaf([1.0])
    y = x * 2
    y.sum().backward()
    with pytest.warns(UserWarning, match="not a leaf"):
        assert y.grad is None


def test_leaf_hook_sees_and_replaces_the_gradient():
    x = leaf([1.0, 2.0])
    seen = []
    handle = x.register_hook(lambda g: seen.append(g.data.copy()) or g * 10)
    (x * 2).sum().backward()
    np.testing.assert_allclose(seen[0], [2.0, 2.0])
    np.testing.assert_allclose(x.grad.data, [20.0, 20.0])
    handle.remove()
    x.grad = None
    (x * 2).sum().backward()
    assert len(seen) == 1
    np.testing.assert_allclose(x.grad.data, [2.0, 2.0])


def test_leaf_hook_runs_for_autodiff_grad_too():
    # Regression: leaf hooks ran only when accumulating into .grad; PyTorch runs them
    # for torch.autograd.grad as well, and returns the hook's gradient.
    x = leaf([1.0, 2.0])
    x.register_hook(lambda g: g * 10)
    (g,) = autodiff.grad((x * 2).sum(), x)
    np.testing.assert_allclose(g.data, [20.0, 20.0])
    (x * 2).sum().backward(inputs=[x])
    np.testing.assert_allclose(x.grad.data, [20.0, 20.0])  # hooked once, not twice


def test_non_leaf_hook_changes_what_flows_upstream():
    x = leaf([1.0, 2.0])
    y = x * 3
    calls = []
    y.register_hook(lambda g: calls.append("first") or g * 2)
    y.register_hook(lambda g: calls.append("second"))  # returns None: gradient unchanged
    (y * y).sum().backward()
    assert calls == ["first", "second"]
    np.testing.assert_allclose(x.grad.data, 2 * (2 * 9 * x.data))


def test_hook_handle_remove_on_a_non_leaf_and_twice():
    x = leaf([1.0])
    y = x * 1
    handle = y.register_hook(lambda g: g * 0)
    handle.remove()
    handle.remove()  # harmless
    y.sum().backward()
    assert x.grad.item() == 1.0


def test_hooks_need_requires_grad():
    with pytest.raises(RuntimeError, match="doesn't require gradient"):
        autodiff.tensor([1.0]).register_hook(lambda g: g)


# -- higher derivatives (create_graph=True) -------------------------------------------------


SECOND_DERIVATIVES = [
    ("x^3", lambda x: x**3, lambda x: 6 * x, (-3, 3)),
    ("sin", lambda x: x.sin(), lambda x: -np.sin(x), (-3, 3)),
    ("exp", lambda x: x.exp(), np.exp, (-3, 3)),
    ("log", lambda x: x.log(), lambda x: -1 / x**2, (0.2, 5)),
    ("tanh", lambda x: x.tanh(), lambda x: -2 * np.tanh(x) / np.cosh(x) ** 2, (-3, 3)),
    (
        "sigmoid",
        lambda x: x.sigmoid(),
        lambda x: (s := 1 / (1 + np.exp(-x))) * (1 - s) * (1 - 2 * s),
        (-4, 4),
    ),
    ("sqrt", lambda x: x.sqrt(), lambda x: -0.25 * x**-1.5, (0.2, 5)),
    ("1/x", lambda x: 1 / x, lambda x: 2 / x**3, (0.2, 5)),
    ("x exp(x)", lambda x: x * x.exp(), lambda x: (x + 2) * np.exp(x), (-2, 2)),
]


@pytest.mark.parametrize(
    "name,f,d2f,domain", SECOND_DERIVATIVES, ids=[s[0] for s in SECOND_DERIVATIVES]
)
@given(data=st.data())
def test_second_derivatives_match_known_formulas(name, f, d2f, domain, data):
    x = data.draw(
        tensors(
            autodiff.float64,
            shapes(max_dims=2),
            min_value=domain[0],
            max_value=domain[1],
            requires_grad=True,
        )
    )
    (dy,) = autodiff.grad(f(x).sum(), x, create_graph=True)
    assert dy.requires_grad
    (d2y,) = autodiff.grad(dy.sum(), x)  # d/dx_i of sum_j f'(x_j) = f''(x_i)
    np.testing.assert_allclose(d2y.data, d2f(x.data), rtol=1e-10, atol=1e-12)


def test_second_derivative_of_a_0d_op_that_saves_its_output():
    # Regression: np.exp of a 0-d array is a NumPy scalar, so the saved output was
    # not recognised as the output and came back as a constant (no second-order graph).
    x = leaf(0.5)
    (dy,) = autodiff.grad(x.exp(), x, create_graph=True)
    assert dy.requires_grad
    (d2y,) = autodiff.grad(dy, x)
    assert d2y.item() == pytest.approx(math.exp(0.5), rel=1e-12)
    y = x.tanh()
    y.add_(1)  # the in-place check now covers 0-d saved outputs too
    with pytest.raises(RuntimeError, match=r"TanhBackward.*modified by an in-place"):
        y.backward()


def test_a_detached_copy_is_a_constant_for_second_derivatives():
    # Regression: x and x.detach() share one array, and saved values were matched to
    # inputs by array identity, so Mul saved x (with its graph) for the detached operand.
    x = leaf([0.5, 2.0])
    for constant in (x.detach(), x.data):
        y = (x * constant * x).sum()  # d/dx = 2 x c (c = x held constant); d2/dx2 = 2 c
        (g,) = autodiff.grad(y, x, create_graph=True)
        np.testing.assert_allclose(g.data, 2 * x.data**2)
        (h,) = autodiff.grad(g.sum(), x)
        np.testing.assert_allclose(h.data, 2 * x.data)


def test_mixed_second_derivative_of_pow_in_the_exponent():
    # Regression: dL/dp = dL/dz z log x used log x as a constant, losing d/dx of it.
    x, p = leaf(1.7), leaf(0.6)
    (dp,) = autodiff.grad(x**p, p, create_graph=True)  # x^p log x
    (dpdx,) = autodiff.grad(dp, x)  # x^(p-1) (1 + p log x)
    assert dpdx.item() == pytest.approx(1.7 ** (0.6 - 1) * (1 + 0.6 * math.log(1.7)), rel=1e-12)


def test_second_derivatives_of_prod():
    # Regression: Prod saved its keepdim output, not the returned one, so the output's
    # graph was lost and d/dx of the gradient missed the dy/dx term.
    x = leaf([1.5, -2.0, 0.5])
    (g,) = autodiff.grad(x.prod(0), x, create_graph=True)
    rows = [autodiff.grad(g[i], x, retain_graph=True)[0].data for i in range(3)]
    expected = np.array([[0.0, 0.5, -2.0], [0.5, 0.0, 1.5], [-2.0, 1.5, 0.0]])  # prod of the others
    np.testing.assert_allclose(np.stack(rows), expected, atol=1e-12)


@pytest.mark.parametrize("dim", [None, 0, 1])
def test_prod_with_zeros_first_and_second_derivatives(dim):
    x = leaf([[0.0, 2.0, 3.0], [1.5, 0.0, 0.0]])

    def f(t):
        return t.prod() if dim is None else t.prod(dim)

    assert autodiff.gradcheck(f, (x,))
    assert autodiff.gradgradcheck(f, (x,))
    (g,) = autodiff.grad(f(x).sum(), x)
    others = {  # product of the other elements of each reduced slice
        None: np.zeros((2, 3)),
        0: np.array([[1.5, 0.0, 0.0], [0.0, 2.0, 3.0]]),
        1: np.array([[6.0, 0.0, 0.0], [0.0, 0.0, 0.0]]),
    }[dim]
    np.testing.assert_allclose(g.data, others)


def test_second_derivative_through_backward_create_graph():
    x = leaf(1.5)
    (x**4).backward(create_graph=True)
    g = x.grad  # 4 x^3, itself differentiable
    assert g.grad_fn is not None
    x.grad = None
    g.backward()
    assert x.grad.item() == pytest.approx(12 * 1.5**2)


def test_third_derivative_and_mixed_partials():
    x, y = leaf(0.7), leaf(-1.3)
    f = x**2 * y.sin() + x * y
    dx, dy = autodiff.grad(f, (x, y), create_graph=True)
    (dxdy,) = autodiff.grad(dx, y, create_graph=True)  # 2 x cos y + 1
    (dydx,) = autodiff.grad(dy, x, create_graph=True)  # the same: Schwarz
    assert dxdy.item() == pytest.approx(2 * 0.7 * math.cos(-1.3) + 1, rel=1e-12)
    assert dydx.item() == pytest.approx(dxdy.item(), rel=1e-12)
    (dxdydy,) = autodiff.grad(dxdy, y)  # -2 x sin y
    assert dxdydy.item() == pytest.approx(-2 * 0.7 * math.sin(-1.3), rel=1e-12)


def test_hessian_of_a_quadratic_form():
    rng = np.random.default_rng(1)
    A = rng.standard_normal((3, 3))
    x = leaf(rng.standard_normal(3))
    f = x @ autodiff.tensor(A) @ x
    (g,) = autodiff.grad(f, x, create_graph=True)
    np.testing.assert_allclose(g.data, (A + A.T) @ x.data)
    rows = [autodiff.grad(g[i], x, retain_graph=True)[0].data for i in range(3)]
    np.testing.assert_allclose(np.stack(rows), A + A.T, atol=1e-12)


# -- grad modes ---------------------------------------------------------------------------


def test_no_grad_and_enable_grad_as_context_managers():
    x = leaf([1.0])
    with autodiff.no_grad():
        assert not autodiff.is_grad_enabled()
        y = x * 2
        with autodiff.enable_grad():
            z = x * 2
        w = x * 2
    assert autodiff.is_grad_enabled()
    assert not y.requires_grad and y.grad_fn is None
    assert z.requires_grad and z.grad_fn is not None
    assert not w.requires_grad


def test_grad_modes_as_decorators():
    x = leaf([1.0])

    @autodiff.no_grad()
    def off():
        return x * 2, autodiff.is_grad_enabled()

    @autodiff.enable_grad()
    def on():
        return x * 2

    @autodiff.set_grad_enabled(False)
    def also_off():
        return x * 2

    assert autodiff.is_grad_enabled()  # decorating changed nothing
    y, enabled = off()
    assert not y.requires_grad and not enabled
    with autodiff.no_grad():
        assert on().requires_grad
    assert not also_off().requires_grad
    assert autodiff.is_grad_enabled()


def test_set_grad_enabled_as_call_and_context_manager():
    x = leaf([1.0])
    with autodiff.set_grad_enabled(False):
        assert not (x * 2).requires_grad
    assert autodiff.is_grad_enabled()
    autodiff.set_grad_enabled(False)
    try:
        assert not autodiff.is_grad_enabled()
    finally:
        autodiff.set_grad_enabled(True)
    for mode in (True, False):
        with autodiff.set_grad_enabled(mode):
            assert (x * 2).requires_grad is mode


def test_grad_mode_restored_after_an_exception():
    with pytest.raises(ValueError), autodiff.no_grad():
        raise ValueError("boom")
    assert autodiff.is_grad_enabled()

    @autodiff.no_grad()
    def fails():
        raise ValueError("boom")

    with pytest.raises(ValueError):
        fails()
    assert autodiff.is_grad_enabled()


# -- autodiff.grad ------------------------------------------------------------------------


def test_grad_returns_a_tuple_and_leaves_dot_grad_alone():
    x, y = leaf([1.0, 2.0]), leaf([3.0, 4.0])
    gx, gy = autodiff.grad((x * y).sum(), (x, y))
    np.testing.assert_allclose(gx.data, y.data)
    np.testing.assert_allclose(gy.data, x.data)
    assert x.grad is None and y.grad is None


def test_grad_allow_unused():
    x, unused = leaf([1.0]), leaf([2.0])
    with pytest.raises(RuntimeError, match=r"input 1 .* not used.*allow_unused=True"):
        autodiff.grad((x * 2).sum(), (x, unused))
    gx, gu = autodiff.grad((x * 2).sum(), (x, unused), allow_unused=True)
    assert gu is None and gx.item() == 2.0
    _, gz = autodiff.grad((x * 2).sum(), (x, unused), materialize_grads=True)
    assert gz.shape == (1,) and gz.item() == 0.0


def test_grad_outputs_for_a_non_scalar_output():
    x = leaf([1.0, 2.0, 3.0])
    y = x**2
    v = autodiff.tensor([1.0, -1.0, 0.5], dtype=autodiff.float64)
    (g,) = autodiff.grad(y, x, grad_outputs=v)
    np.testing.assert_allclose(g.data, 2 * x.data * v.data)
    with pytest.raises(RuntimeError, match=r"only for scalar outputs.*shape \(3,\)"):
        autodiff.grad(y, x)


def test_grad_with_respect_to_a_non_leaf():
    x = leaf([1.0, 2.0])
    h = x * 3
    out = (h * h).sum()
    (gh,) = autodiff.grad(out, h, retain_graph=True)
    np.testing.assert_allclose(gh.data, 2 * h.data)
    (gx,) = autodiff.grad(out, x)
    np.testing.assert_allclose(gx.data, 18 * x.data)


def test_grad_of_several_outputs_sums_them():
    x = leaf([1.0, 2.0])
    (g,) = autodiff.grad([(x * 2).sum(), (x * x).sum()], x)
    np.testing.assert_allclose(g.data, 2 + 2 * x.data)


def test_backward_inputs_argument_limits_accumulation():
    x, y = leaf([1.0]), leaf([2.0])
    (x * y).sum().backward(inputs=[x])
    assert x.grad.item() == 2.0 and y.grad is None


# -- custom Functions -----------------------------------------------------------------------


class ScaledProduct(autodiff.Function):
    """z = k x y        dL/dx = dL/dz k y        dL/dy = dL/dz k x"""

    calls = []

    @staticmethod
    def forward(ctx, x, y, k):
        ctx.save_for_backward(x, y)
        ctx.k = k
        return k * x * y

    @staticmethod
    def backward(ctx, grad):
        ScaledProduct.calls.append(ctx.needs_input_grad)
        x, y = ctx.saved_tensors
        gx = grad * ctx.k * y if ctx.needs_input_grad[0] else None
        gy = grad * ctx.k * x if ctx.needs_input_grad[1] else None
        return gx, gy, None


def test_custom_function_needs_input_grad():
    ScaledProduct.calls.clear()
    x, y = leaf([1.0, 2.0]), autodiff.tensor([3.0, 4.0], dtype=autodiff.float64)
    z = ScaledProduct.apply(x, y, 2.0)
    assert z.grad_fn.name() == "ScaledProductBackward"
    assert z.grad_fn.needs_input_grad == (True, False, False)
    z.sum().backward()
    assert ScaledProduct.calls == [(True, False, False)]
    np.testing.assert_allclose(x.grad.data, 2 * y.data)


def test_custom_function_without_grad_records_nothing():
    x = autodiff.tensor([1.0])
    assert ScaledProduct.apply(x, x, 1.0).grad_fn is None
    with autodiff.no_grad():
        assert ScaledProduct.apply(leaf([1.0]), x, 1.0).grad_fn is None


def test_custom_function_gradients_check_out():
    x, y = leaf([1.0, -2.0]), leaf([0.5, 3.0])
    assert autodiff.gradcheck(lambda a, b: ScaledProduct.apply(a, b, 1.5), (x, y))
    assert autodiff.gradgradcheck(lambda a, b: ScaledProduct.apply(a, b, 1.5), (x, y))


def test_next_functions_link_the_graph():
    x = leaf([1.0])
    y = x.exp() * 2
    (exp_node, none_node) = y.grad_fn.next_functions
    assert exp_node.name() == "ExpBackward" and none_node is None
    (acc,) = exp_node.next_functions
    assert acc.name() == "AccumulateGrad" and acc.variable is x


# -- in-place rules ---------------------------------------------------------------------------


def test_in_place_on_a_leaf_that_requires_grad_raises():
    w = leaf([1.0, 2.0])
    for update in (lambda: w.add_(1), lambda: w.mul_(2), lambda: w.zero_()):
        with pytest.raises(RuntimeError, match="leaf tensor that requires grad"):
            update()
    with pytest.raises(RuntimeError, match="leaf tensor that requires grad"):
        w -= 1
    np.testing.assert_allclose(w.data, [1.0, 2.0])  # nothing changed


def test_hand_written_sgd_step_keeps_identity():
    w = leaf([1.0, 2.0])
    data_id, lr = id(w.data), 0.1
    for _ in range(2):
        (w * w).sum().backward()
        before = w
        with autodiff.no_grad():
            w -= lr * w.grad
        w.grad = None
        assert w is before and id(w.data) == data_id
        assert w.requires_grad and w.is_leaf and w.grad is None
    np.testing.assert_allclose(w.data, np.array([1.0, 2.0]) * 0.8**2)


def test_modifying_a_saved_value_raises_at_backward():
    x = leaf([1.0, 2.0])
    a = x * 2
    b = a.log()  # saves a
    a.mul_(3)  # recorded in place on a non-leaf: a's version changes
    with pytest.raises(
        RuntimeError,
        match=r"LogBackward: one of the values needed for gradient computation has been modified by an in-place operation",
    ):
        b.sum().backward()


def test_modifying_a_saved_output_raises_at_backward():
    x = leaf([1.0, 2.0])
    y = x.exp()  # saves its output
    y.add_(1)
    with pytest.raises(RuntimeError, match=r"ExpBackward.*modified by an in-place"):
        y.sum().backward()


def test_in_place_on_a_non_leaf_that_nobody_saved_is_differentiated():
    x = leaf([1.0, 2.0])
    y = x * 2
    y.add_(x)  # y = 3 x
    y.mul_(3)  # y = 9 x (Mul saves only the constant 3 here)
    (y * y).sum().backward()  # 81 x^2
    np.testing.assert_allclose(x.grad.data, 162 * x.data)


@pytest.mark.parametrize(
    "update,expected_x,expected_w",
    [
        (lambda y, w: y.pow_(2), [2.0, 4.0], None),  # d(x^2)/dx with the old value
        (lambda y, w: y.mul_(w), [3.0, 4.0], [1.0, 2.0]),
        (lambda y, w: y.div_(w), [1 / 3, 1 / 4], [-1 / 9, -2 / 16]),
        (lambda y, w: y.sub_(w, alpha=2), [1.0, 1.0], [-2.0, -2.0]),
    ],
)
def test_in_place_ops_that_need_the_old_value_work_as_in_pytorch(update, expected_x, expected_w):
    # Regression: pow_ and mul_ saved the tensor they then overwrote, so backward raised;
    # PyTorch keeps the old value for them (the values below are PyTorch's).
    x, w = leaf([1.0, 2.0]), leaf([3.0, 4.0])
    y = x * 1
    update(y, w)
    y.sum().backward()
    np.testing.assert_allclose(x.grad.data, expected_x)
    if expected_w is None:
        assert w.grad is None
    else:
        np.testing.assert_allclose(w.grad.data, expected_w)


def test_in_place_change_of_a_quotient_is_allowed():
    # Div saves its inputs, not its output (as PyTorch): changing the output is fine.
    x, w = leaf([1.0, 2.0]), leaf([4.0, 8.0])
    z = x / w
    z.add_(1)
    (z * z).sum().backward()
    np.testing.assert_allclose(x.grad.data, 2 * z.data / w.data)


def test_in_place_square_of_itself_raises_as_in_pytorch():
    x = leaf([1.0, 2.0])
    y = x * 2
    y.mul_(y)  # Mul saved y, which the in-place write then changed
    with pytest.raises(RuntimeError, match=r"MulBackward.*modified by an in-place"):
        y.sum().backward()


def test_setitem_on_a_non_leaf():
    x = leaf([1.0, 2.0, 3.0])
    y = x * 1
    y[1] = 0.0
    (y * autodiff.tensor([1.0, 2.0, 3.0], dtype=autodiff.float64)).sum().backward()
    np.testing.assert_allclose(x.grad.data, [1.0, 0.0, 3.0])


# -- dtype rules ------------------------------------------------------------------------------


def test_default_dtypes_follow_pytorch():
    assert autodiff.tensor([1.0, 2.0]).dtype == autodiff.float32
    assert autodiff.tensor(1.5).dtype == autodiff.float32
    assert autodiff.tensor([1, 2]).dtype == autodiff.int64
    assert autodiff.tensor([True]).dtype == autodiff.bool
    assert autodiff.zeros(2).dtype == autodiff.float32
    assert autodiff.randn(2).dtype == autodiff.float32
    assert autodiff.arange(3).dtype == autodiff.int64
    assert autodiff.tensor(np.zeros(2, np.float64)).dtype == autodiff.float64  # arrays keep theirs
    assert autodiff.float is autodiff.float32 and autodiff.long is autodiff.int64


# data -> torch.tensor(data).dtype: NumPy numbers in a list count with their own dtype
TENSOR_DTYPES = {
    "[np.float64(1), 2]": ([np.float64(1), 2], "float64"),
    "[2, np.float64(1)]": ([2, np.float64(1)], "float64"),
    "[np.float32(1), 2.0]": ([np.float32(1), 2.0], "float32"),
    "[np.float16(1), 2.0]": ([np.float16(1), 2.0], "float32"),
    "[np.int16(-300), np.float16(1.5)]": ([np.int16(-300), np.float16(1.5)], "float16"),
    "[np.int8(1), 2.5]": ([np.int8(1), 2.5], "float32"),
    "[1 + 2j, 3]": ([1 + 2j, 3], "complex64"),
    "1 + 2j": (1 + 2j, "complex64"),
    "[np.complex128(1j), 2]": ([np.complex128(1j), 2], "complex128"),
    "[np.float32(1), 2j]": ([np.float32(1), 2j], "complex64"),
    "[[1, 2.5], [3, 4]]": ([[1, 2.5], [3, 4]], "float32"),
    "[np.array([1.0]), [2]]": ([np.array([1.0]), [2]], "float64"),
    "[[np.float64(1)], [2.0]]": ([[np.float64(1)], [2.0]], "float64"),
    "[True, 2.5]": ([True, 2.5], "float32"),
    "[]": ([], "float32"),
    "[[], []]": ([[], []], "float32"),
    "[1e39, 1.0] (inf in float32)": ([1e39, 1.0], "float32"),
    "[a 0-d int32 tensor, 2.5]": ("int32 tensor, 2.5", "float32"),
    "[a 0-d float64 tensor, 2.0]": ("float64 tensor, 2.0", "float64"),
}


def _with_tensors(lib, data):
    """The cases with 0-d tensors in the list, made of ``lib``'s tensors."""
    if data == "int32 tensor, 2.5":
        return [lib.tensor(1, dtype=lib.int32), 2.5]
    if data == "float64 tensor, 2.0":
        return [lib.tensor(1.0, dtype=lib.float64), 2.0]
    return data


@pytest.mark.parametrize("name", list(TENSOR_DTYPES))
def test_tensor_infers_pytorchs_dtype_from_numpy_numbers_in_lists(name):
    data, expected = TENSOR_DTYPES[name]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow warning for 1e39, as PyTorch
        # (only the advice to join a list of NumPy arrays first, tested on its own)
        warnings.filterwarnings("ignore", r"tensor: making a tensor from a list of NumPy")
        ours = autodiff.tensor(_with_tensors(autodiff, data))
    assert ours.dtype == np.dtype(expected)
    try:
        import torch
    except ImportError:  # pragma: no cover - the expected dtypes above still run
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "a list of numpy.ndarrays is extremely slow"
        theirs = torch.tensor(_with_tensors(torch, data))
    assert str(theirs.dtype) == f"torch.{expected}"
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


@pytest.mark.parametrize(
    "data", [2**63, [1, 2**63], -(2**63) - 1, [2**64], [np.int64(5), 2**63]], ids=repr
)
def test_python_ints_beyond_int64_are_refused_as_in_pytorch(data):
    """Python ints are int64; NumPy would make 2**63 uint64, [1, 2**63] float64 (and
    the float64 was cast to a wrong int64 on the way), so they are refused."""
    with pytest.raises(ValueError, match="does not fit in int64"):
        autodiff.tensor(data)
    try:
        import torch
    except ImportError:  # pragma: no cover
        return
    with pytest.raises(ValueError, match="Overflow"):
        torch.tensor(data)
    assert autodiff.tensor(2**63 - 1).item() == 2**63 - 1


# torch.tensor(data) for lists that mix Python numbers with NumPy numbers, 0-d and 1-d
# NumPy arrays and tensors (built from ``lib``, so PyTorch's own tensors in PyTorch):
# name -> (data(lib), dtype name or the exception PyTorch raises), found with PyTorch 2.13.
# PyTorch reads the shape from the first element at each depth (a tensor there is one
# number), promotes the elements' dtypes in order, then reads every element as a Python
# number of that kind: integers through __index__, which a NumPy bool lacks.
MIXED_DATA = {
    "[np.bool_(True), 1]": (lambda lib: [np.bool_(True), 1], TypeError),
    "[1, np.bool_(True)]": (lambda lib: [1, np.bool_(True)], TypeError),
    "[[np.bool_(True)], [1]]": (lambda lib: [[np.bool_(True)], [1]], TypeError),
    "[np.bool_(True), np.int64(3)]": (lambda lib: [np.bool_(True), np.int64(3)], TypeError),
    "[np.bool_(True), True]": (lambda lib: [np.bool_(True), True], "bool"),
    "[np.bool_(True), 2.5]": (lambda lib: [np.bool_(True), 2.5], "float32"),
    "[np.bool_(True), 2j]": (lambda lib: [np.bool_(True), 2j], "complex64"),
    "[np.bool_(True), a 0-d int tensor]": (lambda lib: [np.bool_(True), lib.tensor(1)], TypeError),
    "[np.float32(1.5), 1]": (lambda lib: [np.float32(1.5), 1], "float32"),
    "[np.float32(1.5), np.float64(1)]": (lambda lib: [np.float32(1.5), np.float64(1)], "float64"),
    "[np.int64(3), 2.5]": (lambda lib: [np.int64(3), 2.5], "float32"),
    "[np.int32(3), 1]": (lambda lib: [np.int32(3), 1], "int64"),
    "[np.int32(3), True]": (lambda lib: [np.int32(3), True], "int32"),
    "[np.uint8(3), np.int8(-1)]": (lambda lib: [np.uint8(3), np.int8(-1)], "int16"),
    "[np.uint16(3), 1]": (lambda lib: [np.uint16(3), 1], RuntimeError),
    "[np.uint16(3), 2.5]": (lambda lib: [np.uint16(3), 2.5], "float32"),
    "[np.uint16(3), 2.5, 1] (in order)": (lambda lib: [np.uint16(3), 2.5, 1], "float32"),
    "[np.uint16(3), 1, 2.5] (in order)": (lambda lib: [np.uint16(3), 1, 2.5], RuntimeError),
    "[np.uint64(1)] (uint64: Python ints only)": (lambda lib: [np.uint64(1)], TypeError),
    "[np.complex128(1j), np.uint16(3)]": (
        lambda lib: [np.complex128(1j), np.uint16(3)],
        "complex128",  # PyTorch's promotion stops at complex128
    ),
    "[np.array(1.0), 2] (0-d array first)": (lambda lib: [np.array(1.0), 2], TypeError),
    "[[np.array(1)], [1]] (0-d array first)": (lambda lib: [[np.array(1)], [1]], TypeError),
    "[np.array(1.0)]": (lambda lib: [np.array(1.0)], TypeError),
    "[2, np.array(1.0)]": (lambda lib: [2, np.array(1.0)], "float64"),
    "[1, np.array(2)]": (lambda lib: [1, np.array(2)], "int64"),
    "[1.5, np.array(True)]": (lambda lib: [1.5, np.array(True)], "float32"),
    "[True, np.array(True)] (0-d bool array)": (lambda lib: [True, np.array(True)], TypeError),
    "[1, np.array(True)]": (lambda lib: [1, np.array(True)], TypeError),
    "[1.5, np.array([2.0])] (1-d array as a number)": (
        lambda lib: [1.5, np.array([2.0])],
        TypeError,
    ),
    "[np.array([1, 2]), [3, 4.5]]": (lambda lib: [np.array([1, 2]), [3, 4.5]], "float32"),
    "[[1, 2], np.array([3.0, 4.0])]": (lambda lib: [[1, 2], np.array([3.0, 4.0])], "float64"),
    "[np.array([True, False]), [3, 4]]": (
        lambda lib: [np.array([True, False]), [3, 4]],
        TypeError,
    ),
    "[[True, False], np.array([3, 4])]": (lambda lib: [[True, False], np.array([3, 4])], "int64"),
    "[np.zeros((0, 3))]": (lambda lib: [np.zeros((0, 3))], "float64"),
    "[a 0-d int tensor, 2.5]": (lambda lib: [lib.tensor(1), 2.5], "float32"),
    "[1, a 0-d float tensor]": (lambda lib: [1, lib.tensor(1.5)], "float32"),
    "[True, a 0-d int tensor]": (lambda lib: [True, lib.tensor(2)], "int64"),
    "[a 1-element tensor]": (lambda lib: [lib.tensor([1.0])], "float32"),  # shape (1,)
    "[a 1-element tensor, 2]": (lambda lib: [lib.tensor([1.0]), 2], "float32"),
    "[2.5, a (1, 1) int tensor]": (lambda lib: [2.5, lib.tensor([[3]])], "float32"),
    "[two 2-element float tensors]": (
        lambda lib: [lib.tensor([1.0, 2.0]), lib.tensor([3.0, 4.0])],
        ValueError,
    ),
    "[1, a 2-element int tensor]": (lambda lib: [1, lib.tensor([1, 2])], TypeError),
    "[[1.0, 2.0], a 2-element tensor]": (
        lambda lib: [[1.0, 2.0], lib.tensor([3.0, 4.0])],
        "float32",
    ),
    "[[1.0, 2.0], a 0-d tensor]": (lambda lib: [[1.0, 2.0], lib.tensor(3.0)], TypeError),
    "[np.array([1.0, 2.0]), a 2-element tensor]": (
        lambda lib: [np.array([1.0, 2.0]), lib.tensor([3.0, 4.0])],
        "float64",
    ),
    "[np.int64(1), 2**63]": (lambda lib: [np.int64(1), 2**63], ValueError),
    "[np.float32(1), 2**70]": (lambda lib: [np.float32(1), 2**70], "float32"),
}
# with dtype=: name -> (data(lib), dtype name, what PyTorch gives)
MIXED_DATA_WITH_DTYPE = {
    "[np.bool_(True), 1] as int64": (lambda lib: [np.bool_(True), 1], "int64", TypeError),
    "[np.bool_(True), 1] as bool": (lambda lib: [np.bool_(True), 1], "bool", "bool"),
    "[np.float32(1.5), 2] as int64": (lambda lib: [np.float32(1.5), 2], "int64", TypeError),
    "[np.float64(1.5), 2] as int64": (lambda lib: [np.float64(1.5), 2], "int64", "int64"),
    "[np.float32(1), True] as bool": (lambda lib: [np.float32(1), True], "bool", TypeError),
    "[np.float64(0.5), 0] as bool": (lambda lib: [np.float64(0.5), 0], "bool", "bool"),
    "[np.complex64(1j), 0] as bool": (lambda lib: [np.complex64(1j), 0], "bool", TypeError),
    "[np.float64(1e30), 2] as int64": (lambda lib: [np.float64(1e30), 2], "int64", RuntimeError),
    "[np.int64(300), 2] as uint8": (lambda lib: [np.int64(300), 2], "uint8", RuntimeError),
    "[np.int64(-1), 2] as uint8": (lambda lib: [np.int64(-1), 2], "uint8", "uint8"),
    "[np.array(1.0), 2] as float32": (lambda lib: [np.array(1.0), 2], "float32", TypeError),
    "[np.complex64(1j), 2] as float32": (lambda lib: [np.complex64(1j), 2], "float32", "float32"),
    "[a 0-d float tensor, 2] as int64": (lambda lib: [lib.tensor(1.5), 2], "int64", TypeError),
    "[1.5, 2] as int64 (pure Python)": (lambda lib: [1.5, 2], "int64", "int64"),
    "[-1, 2] as uint8 (pure Python)": (lambda lib: [-1, 2], "uint8", "uint8"),
    "[300, 2] as uint8 (pure Python)": (lambda lib: [300, 2], "uint8", RuntimeError),
    "[1j, 2] as float32 (pure Python)": (lambda lib: [1j, 2], "float32", TypeError),
    "1j as float16 (pure Python)": (lambda lib: 1j, "float16", TypeError),
    "[1j, 2] as bool (pure Python)": (lambda lib: [1j, 2], "bool", "bool"),
}


def _tensor_of(lib, data, dtype=None):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PyTorch: "a list of numpy.ndarrays is extremely slow"
        return lib.tensor(data) if dtype is None else lib.tensor(data, dtype=getattr(lib, dtype))


def _check_mixed(lib, make, expected, dtype=None):
    if isinstance(expected, type):
        with pytest.raises(expected):
            _tensor_of(lib, make(lib), dtype)
        return None
    result = _tensor_of(lib, make(lib), dtype)
    assert str(result.dtype).removeprefix("torch.") == expected
    return result


@pytest.mark.parametrize("name", MIXED_DATA)
def test_tensor_of_mixed_numbers_accepts_and_refuses_as_pytorch(name):
    make, expected = MIXED_DATA[name]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no NumPy warnings on the way
        _check_mixed(autodiff, make, expected)


@pytest.mark.parametrize("name", MIXED_DATA_WITH_DTYPE)
def test_tensor_of_mixed_numbers_with_a_dtype_accepts_and_refuses_as_pytorch(name):
    make, dtype, expected = MIXED_DATA_WITH_DTYPE[name]
    _check_mixed(autodiff, make, expected, dtype)


@pytest.mark.parametrize("name", [*MIXED_DATA, *MIXED_DATA_WITH_DTYPE])
def test_the_mixed_numbers_table_is_pytorchs(torch, name):
    """The table above is what PyTorch does, and where it accepts, ours has its values
    and shape too ([a 1-element tensor] has shape (1,), not NumPy's (1, 1))."""
    make, dtype, expected = MIXED_DATA_WITH_DTYPE.get(name) or (
        *MIXED_DATA[name][:1],
        None,
        MIXED_DATA[name][1],
    )
    theirs = _check_mixed(torch, make, expected, dtype)
    if theirs is not None:
        ours = _tensor_of(autodiff, make(autodiff), dtype)
        assert ours.shape == tuple(theirs.shape)
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


def test_tensor_reads_the_shape_from_the_first_elements_as_pytorch():
    """A tensor in a list is one number when it comes first (NumPy would add its
    dimensions), a NumPy array adds its own; the values are PyTorch's."""
    cases = [
        ([autodiff.tensor([1.0])], (1,), [1.0]),
        ([autodiff.tensor([[3]]), 2.5], (2,), [3.0, 2.5]),
        ([[1.0, 2.0], autodiff.tensor([3.0, 4.0])], (2, 2), [[1.0, 2.0], [3.0, 4.0]]),
        ([np.array([1.0, 2.0]), autodiff.tensor([3.0, 4.0])], (2, 2), [[1.0, 2.0], [3.0, 4.0]]),
        ([np.zeros((0, 3))], (1, 0), [[]]),
    ]
    for data, shape, values in cases:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the advice to join a list of NumPy arrays
            result = autodiff.tensor(data)
        assert result.shape == shape and result.tolist() == values


@pytest.mark.parametrize(
    "data, found, expected",
    [
        ([np.bool_(True), 1], r"the NumPy bool True where int64", r"a NumPy bool is no integer"),
        (
            [np.array(1.0), 2],
            r"a 0-d NumPy array \(array\(1\.\)\) as the first",
            r"expected a number",
        ),
        ([1.5, np.array([2.0])], r"a NumPy array of shape \(1,\)", r"where a number was expected"),
        ([np.uint16(3), 1], r"dtypes uint16 and int64", r"expected a dtype="),
        (
            [autodiff.tensor([1.0, 2.0]), autodiff.tensor([3.0, 4.0])],
            r"a tensor of shape \(2,\)",
            r"only one-element tensors",
        ),
    ],
    ids=["numpy-bool-among-ints", "0-d-array-first", "1-d-array-as-number", "uint16", "tensors"],
)
def test_refused_mixed_data_names_tensor_what_was_found_and_what_was_expected(
    data, found, expected
):
    with pytest.raises((TypeError, ValueError, RuntimeError)) as info:
        autodiff.tensor(data)
    message = str(info.value)
    assert message.startswith("tensor: ")
    assert re.search(found, message) and re.search(expected, message), message


@pytest.mark.parametrize(
    "data, dtype",
    [
        ([np.float32(1), None], None),
        ([None, np.float32(1)], "float32"),
        (["a", np.float32(1)], "bool"),
        ([np.bool_(True), "object"], "bool"),
        ([[np.float32(1)], [None]], "float32"),
        ([[None], [np.float32(1)]], "float32"),
        (["1", np.int64(2)], "int64"),
    ],
    ids=repr,
)
def test_non_numbers_beside_numpy_values_are_refused_in_any_order(data, dtype):
    """Strings and None next to NumPy values are refused, wherever they stand: once which
    of the two the element types met first (their order in a set, that is, memory
    addresses) decided whether NumPy converted them ([1.0, nan], or True for strings)."""
    with pytest.raises(TypeError, match=r"^tensor: .*found (the str|None)"):
        autodiff.tensor(data, dtype=dtype)


def test_as_tensor_reads_mixed_data_as_tensor_does():
    with pytest.raises(TypeError, match=r"^as_tensor: found .*bool"):
        autodiff.as_tensor([np.int64(1), np.bool_(True)])
    assert autodiff.as_tensor([np.int64(1), 2.5]).dtype == autodiff.float32


_NUMBERS = st.sampled_from(
    [0, 1, -1, 3, 300, 1.5, -2.5, 1e39, float("nan"), 2**40 + 1, 1j, True, False]
)
_NUMPY_TYPES = st.sampled_from(
    [np.bool_, np.uint8, np.int8, np.int32, np.int64, np.uint16, np.uint64]
    + [np.float16, np.float32, np.float64, np.complex64, np.complex128]
)


@st.composite
def _mixed_elements(draw):
    """("python", number) | ("numpy", scalar) | ("array", array) | ("tensor", array)."""
    value = draw(_NUMBERS)
    dtype = draw(_NUMPY_TYPES)
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")  # casting nan or 1j to integers: any value will do
        number = np.array(value).astype(dtype)
    kind = draw(st.sampled_from(["python", "numpy", "array", "tensor"]))
    if kind == "python":
        return kind, value
    if kind == "numpy":
        return kind, number[()]
    shape = draw(st.sampled_from([(), (1,), (2,)]))
    return kind, np.broadcast_to(number, shape).copy()


@st.composite
def _mixed_data(draw):
    """Nested lists of a regular shape (as the first elements give it) of mixed elements."""
    depth = draw(st.integers(1, 3))
    sizes = draw(st.lists(st.integers(1, 3), min_size=depth, max_size=depth))

    def build(level):
        if level == depth:
            return draw(_mixed_elements())
        return [build(level + 1) for _ in range(sizes[level])]

    return build(0)


def _realised(lib, data):
    if isinstance(data, list):
        return [_realised(lib, item) for item in data]
    kind, value = data
    if kind == "tensor":
        return lib.from_numpy(value)
    return value


def test_tensor_of_random_mixed_data_matches_pytorch(torch):
    """The same dtype, shape and values as torch.tensor, or the same exception type (lists
    whose lengths differ from the first elements' too: ValueError, as in PyTorch)."""

    @settings(max_examples=max(150, settings.default.max_examples))
    @given(
        data=_mixed_data(),
        dtype=st.none() | st.sampled_from(["int64", "uint8", "float32", "bool"]),
    )
    def check(data, dtype):
        try:
            theirs = _tensor_of(torch, _realised(torch, data), dtype)
        except (TypeError, ValueError, RuntimeError, OverflowError) as error:
            with pytest.raises(type(error)):
                _tensor_of(autodiff, _realised(autodiff, data), dtype)
            return
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            ours = _tensor_of(autodiff, _realised(autodiff, data), dtype)
        assert str(ours.dtype) == str(theirs.dtype).removeprefix("torch.")
        assert ours.shape == tuple(theirs.shape)
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())

    check()


def test_numpy_2_promotion():
    f32 = autodiff.tensor([1.0])
    f64 = autodiff.tensor([1.0], dtype=autodiff.float64)
    i64 = autodiff.tensor([1])
    assert (f32 + 2.5).dtype == autodiff.float32  # Python numbers are weak
    assert (f32 * 2).dtype == autodiff.float32
    assert (f32 + f64).dtype == autodiff.float64
    assert (i64 + 1).dtype == autodiff.int64
    assert (i64 / i64).dtype == autodiff.float64  # NumPy, not PyTorch (see README)
    assert (i64 + 0.5).dtype == autodiff.float64
    assert (f32 + np.float32(1)).dtype == autodiff.float32


def test_gradient_dtype_equals_input_dtype():
    x32 = autodiff.tensor([1.0, 2.0], requires_grad=True)
    x64 = leaf([1.0, 2.0])
    (x32 * x64).sum().backward()
    assert x32.grad.dtype == autodiff.float32 and x64.grad.dtype == autodiff.float64


def test_integer_and_bool_tensors_cannot_require_grad():
    with pytest.raises(
        RuntimeError, match=r"only tensors of floating point dtype can require gradients.*int64"
    ):
        autodiff.tensor([1, 2], requires_grad=True)
    with pytest.raises(RuntimeError, match="floating point"):
        autodiff.tensor([True]).requires_grad_()
    with pytest.raises(RuntimeError, match="floating point"):
        autodiff.zeros(2, dtype=autodiff.int64, requires_grad=True)
    assert autodiff.tensor([1, 2]).float().requires_grad_().requires_grad


def test_integer_results_of_float_inputs_take_no_gradient():
    x = leaf([0.2, 1.7])
    idx = x.argmax()
    assert idx.dtype == autodiff.int64 and not idx.requires_grad
    assert not (x > 1).requires_grad


def test_casts_are_differentiable():
    x = autodiff.tensor([1.0, 2.0], requires_grad=True)
    y = x.double() * 3
    assert y.dtype == autodiff.float64
    y.sum().backward()
    assert x.grad.dtype == autodiff.float32
    np.testing.assert_allclose(x.grad.data, [3.0, 3.0])


# -- the Tensor API -------------------------------------------------------------------------------


def test_repr():
    assert repr(autodiff.tensor([1.0, 2.0])) == "tensor([1., 2.])"
    assert repr(autodiff.tensor([1.5, 2.25])) == "tensor([1.5000, 2.2500])"
    assert repr(autodiff.tensor([1, 2])) == "tensor([1, 2])"
    assert repr(autodiff.tensor([1.0], requires_grad=True)) == "tensor([1.], requires_grad=True)"
    assert (
        repr(autodiff.tensor([1.0], requires_grad=True) * 2)
        == "tensor([2.], grad_fn=<MulBackward>)"
    )
    assert repr(autodiff.tensor([1.0], dtype=autodiff.float64)) == "tensor([1.], dtype=float64)"


def test_conversions_to_python():
    t = autodiff.tensor([[1.5, 2.0], [3.0, 4.0]])
    assert t.tolist() == [[1.5, 2.0], [3.0, 4.0]]
    assert autodiff.tensor([2.5]).item() == 2.5 and isinstance(autodiff.tensor(3).item(), int)
    assert float(autodiff.tensor(2.5)) == 2.5 and int(autodiff.tensor([7])) == 7
    assert bool(autodiff.tensor([1.0])) and not bool(autodiff.tensor(0))
    assert [10, 20, 30][autodiff.tensor(1)] == 20  # __index__
    assert list(range(autodiff.tensor(3))) == [0, 1, 2]
    with pytest.raises(RuntimeError, match=r"item: a tensor with 4 elements \(shape \(2, 2\)\)"):
        t.item()
    with pytest.raises(RuntimeError, match=r"bool: only a one-element tensor.*any\(\)"):
        bool(t)
    with pytest.raises(TypeError, match="index"):
        [1, 2][autodiff.tensor(1.0)]


def test_numpy_shares_memory_and_refuses_requires_grad():
    t = autodiff.tensor([1.0, 2.0])
    a = t.numpy()
    a[0] = 5.0
    assert t[0].item() == 5.0
    assert np.asarray(t).dtype == np.float32
    x = autodiff.tensor([1.0], requires_grad=True)
    with pytest.raises(RuntimeError, match=r"detach\(\)"):
        x.numpy()
    with pytest.raises(RuntimeError, match="detach"):
        np.asarray(x)
    assert x.detach().numpy()[0] == 1.0


def test_detach_shares_data_and_cuts_the_graph():
    x = leaf([1.0, 2.0])
    y = x * 2
    d = y.detach()
    assert d.grad_fn is None and not d.requires_grad and d.is_leaf
    assert np.shares_memory(d.data, y.data)
    assert not (d * x).grad_fn.next_functions[0]


def test_shape_and_size():
    t = autodiff.zeros(2, 3, 4)
    assert t.shape == (2, 3, 4) and isinstance(t.shape, tuple)
    assert t.size() == (2, 3, 4) and t.size(1) == 3 and t.size(-1) == 4
    assert t.numel() == 24 and t.ndim == 3 and t.dim() == 3 and len(t) == 2
    assert str(t.device) == "cpu"
    assert autodiff.ones(2, 3).T.shape == (3, 2)
    with pytest.raises(IndexError, match="size: dimension out of range"):
        t.size(3)


def test_to_and_casts():
    t = autodiff.tensor([1.7, -2.2])
    assert t.to(autodiff.float64).dtype == autodiff.float64
    assert t.double().dtype == autodiff.float64 and t.double().float().dtype == autodiff.float32
    assert t.long().tolist() == [1, -2]
    assert t.to("cpu") is t and t.to(dtype=autodiff.float32) is t
    assert t.to(autodiff.tensor([1])).dtype == autodiff.int64
    assert t.type() == "autodiff.FloatTensor"
    with pytest.raises(RuntimeError, match="CPU only"):
        t.to("cuda")


def test_is_leaf_and_requires_grad_flags():
    x = leaf([1.0])
    y = x * 2
    assert x.is_leaf and not y.is_leaf and y.requires_grad
    x.requires_grad = False
    assert not (x * 2).requires_grad
    with pytest.raises(RuntimeError, match="only change requires_grad flags of leaf"):
        y.requires_grad_(False)


def test_iteration_and_indexing_with_tensors():
    t = autodiff.tensor([[1.0, 2.0], [3.0, 4.0]])
    assert [row.tolist() for row in t] == [[1.0, 2.0], [3.0, 4.0]]
    assert t[autodiff.tensor([1, 1])].tolist() == [[3.0, 4.0], [3.0, 4.0]]
    assert t[t > 2].tolist() == [3.0, 4.0]


# -- anomaly detection ---------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning")
def test_detect_anomaly_names_the_op():
    x = autodiff.tensor([0.0, 1.0], requires_grad=True)
    y = x.sqrt()  # d sqrt / dx at 0 is inf
    loss = (y * 2).sum()
    loss.backward(retain_graph=True)  # without anomaly mode: silently inf
    assert np.isinf(x.grad.data[0])
    x.grad = None
    with pytest.raises(RuntimeError, match=r"SqrtBackward.*nan or inf"), autodiff.detect_anomaly():
        y = x.sqrt()
        (y * 2).sum().backward()
    assert x.grad is None  # nothing half-accumulated
    assert not autodiff.is_anomaly_enabled()


@pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning")
def test_detect_anomaly_points_at_the_forward_line():
    x = autodiff.tensor([0.0], requires_grad=True)
    with autodiff.detect_anomaly(), pytest.raises(RuntimeError) as info:
        (x.log() * 1).sum().backward()
    assert "LogBackward" in str(info.value)
    assert "test_engine.py" in str(info.value)  # where the forward was called


# -- random graphs: shared nodes, broadcasting, reductions --------------------------------------

_UNARY = {
    "tanh": lambda lib, a: a.tanh(),
    "sigmoid": lambda lib, a: a.sigmoid(),
    "sin": lambda lib, a: a.sin(),
    "square": lambda lib, a: a * a,
    "sum_keepdim": lambda lib, a: a.sum(-1, keepdim=True) if a.ndim else a,
    "mean_keepdim": lambda lib, a: a.mean(0, keepdim=True) if a.ndim else a,
    "exp_tanh": lambda lib, a: a.tanh().exp(),
}
_BINARY = {
    "add": lambda lib, a, b: a + b,
    "sub": lambda lib, a, b: a - b,
    "mul": lambda lib, a, b: a * b,
    "div": lambda lib, a, b: a / (b * b + 1),
    "maximum": lambda lib, a, b: lib.maximum(a, b + 0.123),
    "where": lambda lib, a, b: lib.where(a > b, a * 2, b),
}


_KINKED = {"maximum", "where"}  # not differentiable at ties: PyTorch comparison only


@st.composite
def random_graphs(draw, smooth=False):
    """Leaves of mutually broadcastable shapes and a program of ops over a growing pool."""
    from autodiff.testing import arrays, broadcastable_shapes

    leaf_shapes = draw(broadcastable_shapes(3, max_dims=2, max_side=3))
    leaves = [draw(arrays(np.float64, s, min_value=-2, max_value=2)) for s in leaf_shapes]
    program = []
    for step in range(draw(st.integers(1, 12))):
        pool = len(leaves) + step
        if draw(st.booleans()):
            program.append((draw(st.sampled_from(sorted(_UNARY))), draw(st.integers(0, pool - 1))))
        else:
            program.append(
                (
                    draw(st.sampled_from(sorted(set(_BINARY) - (_KINKED if smooth else set())))),
                    draw(st.integers(0, pool - 1)),
                    draw(st.integers(0, pool - 1)),  # may equal the first: a reused node
                )
            )
    return leaves, program


def _run_program(lib, leaves, program):
    pool = list(leaves)
    for name, *args in program:
        table = _UNARY if name in _UNARY else _BINARY
        pool.append(table[name](lib, *[pool[i] for i in args]))
    # every value in the pool feeds the output: shared nodes receive several gradients
    return sum(((v * (k + 1)).sum() for k, v in enumerate(pool[len(leaves) :])), pool[0].sum())


@given(graph=random_graphs(smooth=True))
def test_random_graphs_match_finite_differences(graph):
    from autodiff.testing import assert_gradients_match

    leaves, program = graph
    xs = [leaf(a) for a in leaves]
    assert_gradients_match(lambda *ts: _run_program(autodiff, ts, program), *xs)


@pytest.mark.torch
@given(graph=random_graphs())
def test_random_graphs_match_pytorch(graph):
    torch = pytest.importorskip("torch")
    leaves, program = graph
    ours = [leaf(a) for a in leaves]
    theirs = [torch.tensor(a, requires_grad=True) for a in leaves]
    out_ours, out_theirs = (
        _run_program(autodiff, ours, program),
        _run_program(torch, theirs, program),
    )
    np.testing.assert_allclose(out_ours.item(), out_theirs.item(), rtol=1e-12)
    out_ours.backward()
    out_theirs.backward()
    for a, b in zip(ours, theirs, strict=True):
        if b.grad is None:  # a leaf the program never used
            assert a.grad is None
            continue
        np.testing.assert_allclose(a.grad.data, b.grad.numpy(), rtol=1e-10, atol=1e-12)


_IN_PLACE = {
    "add_": lambda a, b: a.add_(b),
    "sub_": lambda a, b: a.sub_(b, alpha=0.5),
    "mul_": lambda a, b: a.mul_(b),
    "div_": lambda a, b: a.div_(b * b + 1),
    "pow_": lambda a, b: a.pow_(2),
    "clamp_": lambda a, b: a.clamp_(-0.5, 0.5),
    "relu_": lambda a, b: a.relu_(),
    "setitem": lambda a, b: a.__setitem__(..., b),
    "copy_": lambda a, b: a.copy_(b),
}


@st.composite
def programs_with_in_place_ops(draw):
    from autodiff.testing import arrays, broadcastable_shapes

    grid = st.integers(-8, 8).map(lambda k: k / 4 + 0.013)  # no ties at clamp/relu kinks
    leaf_shapes = draw(broadcastable_shapes(3, max_dims=2, max_side=3))
    leaves = [draw(arrays(np.float64, s, elements=grid)) for s in leaf_shapes]
    program = []
    for step in range(draw(st.integers(1, 10))):
        pool = len(leaves) + step
        kind = draw(st.sampled_from(["unary", "binary", "in_place", "in_place"]))
        table = {"unary": _UNARY, "binary": _BINARY, "in_place": _IN_PLACE}[kind]
        names = sorted(set(table) - _KINKED)
        operands = 1 if kind == "unary" else 2
        program.append(
            (kind, draw(st.sampled_from(names)))
            + tuple(draw(st.integers(0, pool - 1)) for _ in range(operands))
        )
    return leaves, program


def _run_in_place_program(lib, leaves, program):
    pool = list(leaves)
    for kind, name, *args in program:
        operands = [pool[i] for i in args]
        if kind == "unary":
            pool.append(_UNARY[name](lib, *operands))
        elif kind == "binary":
            pool.append(_BINARY[name](lib, *operands))
        else:
            a, b = operands
            if np.broadcast_shapes(tuple(a.shape), tuple(b.shape)) != tuple(a.shape):
                pool.append(a * 1)  # b does not fit into a: no in-place op this step
                continue
            _IN_PLACE[name](a, b)
            pool.append(a)
    return sum(((v * (k + 1)).sum() for k, v in enumerate(pool[len(leaves) :])), pool[0].sum())


def _outcome(lib, leaves, program):
    xs = [lib.tensor(a, requires_grad=True) for a in leaves]
    try:
        out = _run_in_place_program(lib, xs, program)
        out.backward()
    except RuntimeError as error:
        return "error", str(error)
    grads = [None if x.grad is None else np.array(x.grad.detach().numpy()) for x in xs]
    return float(out.detach().numpy()), grads


@pytest.mark.torch
@settings(max_examples=40)
@given(graph=programs_with_in_place_ops())
def test_in_place_programs_work_wherever_pytorch_does(graph):
    """In-place ops on leaves (an error), on views, on saved values (an error at backward)
    and on values nobody saved: where PyTorch computes gradients, we compute the same."""
    torch = pytest.importorskip("torch")
    leaves, program = graph
    theirs = _outcome(torch, leaves, program)
    ours = _outcome(autodiff, leaves, program)
    if theirs[0] == "error":
        return  # we may accept more (e.g. Abs saves sign(x), not x): nothing to compare
    assert ours[0] != "error", f"PyTorch succeeds but we raise: {ours[1]}"
    assert ours[0] == pytest.approx(theirs[0], rel=1e-12)
    for g, h in zip(ours[1], theirs[1], strict=True):
        assert (g is None) == (h is None)
        if g is not None:
            np.testing.assert_allclose(g, h, rtol=1e-10, atol=1e-12)


def test_node_shows_its_output_and_saved_values_to_tools_until_they_are_gone():
    x = autodiff.tensor([1.0, 2.0], requires_grad=True)
    y = x.exp()  # saves its output
    node = y.grad_fn
    assert node.output is y
    np.testing.assert_array_equal(node.saved_output, y.data)
    assert len(node.saved_values) == 1 and node.saved_values[0] is node.saved_output
    z = x * autodiff.tensor([3.0, 4.0], requires_grad=True)  # saves its inputs
    assert any(value is x for value in z.grad_fn.saved_values)
    y.sum().backward()
    assert node.saved_values == () and node.saved_output is None
    del y
    assert node.output is None  # the node holds its output only weakly
