"""autodiff.functional: jacobian, hessian, vjp, jvp, hvp, vhp against closed forms,
against each other (jvp = J v, vjp = v^T J) and against PyTorch."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import autodiff
import autodiff.functional as F  # noqa: N812 (as torch.nn.functional is imported)
from autodiff.testing import arrays, shapes


def t64(values, requires_grad=False):
    return autodiff.tensor(np.asarray(values, dtype=np.float64), requires_grad=requires_grad)


def softmax(y):
    """Softmax written inline with exp and sum, as on the lecture slide."""
    e = (y - y.max().detach()).exp()
    return e / e.sum()


vectors = arrays(np.float64, shapes(min_dims=1, max_dims=1, max_side=5), min_value=-3, max_value=3)
matrices = st.integers(1, 4).flatmap(
    lambda n: arrays(np.float64, (n, n), min_value=-3, max_value=3)
)


# -- closed forms ----------------------------------------------------------------------------


@given(
    a=arrays(np.float64, (3, 4), min_value=-3, max_value=3),
    x=arrays(np.float64, (4,), min_value=-3, max_value=3),
)
def test_jacobian_of_a_linear_map_is_its_matrix(a, x):
    A, b = t64(a), t64(np.arange(3.0))
    J = F.jacobian(lambda t: A @ t + b, t64(x))
    assert isinstance(J, autodiff.Tensor) and J.shape == (3, 4)
    np.testing.assert_allclose(J.data, a)
    assert not J.requires_grad


@given(x=arrays(np.float64, shapes(max_dims=2, max_side=3), min_value=-3, max_value=3))
def test_jacobian_of_an_elementwise_function_is_diagonal(x):
    J = F.jacobian(lambda t: t.sin(), t64(x))
    assert J.shape == x.shape + x.shape
    np.testing.assert_allclose(
        J.data.reshape(x.size, x.size), np.diag(np.cos(x).reshape(-1)), atol=1e-15
    )


@given(x=vectors)
def test_jacobian_of_softmax_is_diag_s_minus_s_st(x):
    J = F.jacobian(softmax, t64(x))
    s = np.exp(x - x.max()) / np.exp(x - x.max()).sum()
    np.testing.assert_allclose(J.data, np.diag(s) - np.outer(s, s), atol=1e-12)
    np.testing.assert_allclose(J.data.sum(axis=0), 0, atol=1e-12)  # each column sums to 0


def test_jacobian_of_the_library_softmax_is_the_lecture_matrix():
    y = autodiff.tensor([1.0, 2.0, 0.5])
    J = F.jacobian(lambda t: t.softmax(dim=0), y)
    s = y.softmax(dim=0).numpy()
    np.testing.assert_allclose(J.numpy(), np.diag(s) - np.outer(s, s), atol=1e-6)
    nn_functional = pytest.importorskip("nn.functional")
    J2 = F.jacobian(lambda t: nn_functional.softmax(t, dim=0), y)
    np.testing.assert_allclose(J2.numpy(), np.diag(s) - np.outer(s, s), atol=1e-6)


@given(a=matrices, data=st.data())
def test_hessian_of_a_quadratic_form_is_a_plus_a_transpose(a, data):
    x = data.draw(arrays(np.float64, (a.shape[0],), min_value=-3, max_value=3))
    A = t64(a)
    H = F.hessian(lambda t: t @ A @ t, t64(x))
    np.testing.assert_allclose(H.data, a + a.T, atol=1e-12)
    H_half = F.hessian(lambda t: 0.5 * (t @ A @ t), t64(x))
    np.testing.assert_allclose(H_half.data, (a + a.T) / 2, atol=1e-12)


def test_hessian_of_several_inputs_is_a_tuple_of_tuples():
    x, y = t64([1.0, 2.0]), t64([3.0])
    H = F.hessian(lambda a, b: (a**2 * b).sum(), (x, y))
    assert isinstance(H, tuple) and len(H) == 2 and all(len(row) == 2 for row in H)
    np.testing.assert_allclose(H[0][0].data, np.diag(2 * y.data.repeat(2)))
    np.testing.assert_allclose(H[0][1].data, (2 * x.data).reshape(2, 1))
    np.testing.assert_allclose(H[1][0].data, (2 * x.data).reshape(1, 2))
    np.testing.assert_allclose(H[1][1].data, [[0.0]])
    assert [[h.shape for h in row] for row in H] == [[(2, 2), (2, 1)], [(1, 2), (1, 1)]]


def test_hessian_with_the_same_tensor_passed_twice():
    # Regression: two inputs sharing one array (detached copies of x) were confused
    # when saving values for backward, swapping the blocks of the Hessian.
    x = t64([0.5, -1.0, 2.0])
    H = F.hessian(lambda a, b: (a * b).sum(), (x, x))
    np.testing.assert_allclose(H[0][0].data, np.zeros((3, 3)))
    np.testing.assert_allclose(H[0][1].data, np.eye(3))


# -- products agree with the Jacobian ------------------------------------------------------------


def two_in_two_out(a, b):
    return (a * b.sum()).tanh(), (a.unsqueeze(1) * b).exp().sum(0)


@settings(max_examples=15)
@given(data=st.data())
def test_vjp_is_v_times_jacobian_and_jvp_is_jacobian_times_v(data):
    n, m = data.draw(st.integers(1, 4)), data.draw(st.integers(1, 4))
    a = t64(data.draw(arrays(np.float64, (n,), min_value=-1, max_value=1)))
    b = t64(data.draw(arrays(np.float64, (m,), min_value=-1, max_value=1)))
    J = F.jacobian(two_in_two_out, (a, b))  # J[i][j]: output i, input j
    outs = two_in_two_out(a, b)
    rng = np.random.default_rng(data.draw(st.integers(0, 1000)))
    v_out = tuple(t64(rng.standard_normal(o.shape)) for o in outs)
    v_in = (t64(rng.standard_normal(n)), t64(rng.standard_normal(m)))

    values, vjps = F.vjp(two_in_two_out, (a, b), v_out)
    assert isinstance(values, tuple) and isinstance(vjps, tuple) and len(vjps) == 2
    for j in range(2):
        expected = sum(v_out[i].data @ J[i][j].data for i in range(2))
        np.testing.assert_allclose(vjps[j].data, expected, atol=1e-12)

    values, jvps = F.jvp(two_in_two_out, (a, b), v_in)
    assert isinstance(jvps, tuple) and len(jvps) == 2
    for i in range(2):
        expected = sum(J[i][j].data @ v_in[j].data for j in range(2))
        np.testing.assert_allclose(jvps[i].data, expected, atol=1e-12)
        np.testing.assert_allclose(values[i].data, outs[i].data)


@settings(max_examples=15)
@given(
    x=arrays(np.float64, shapes(min_dims=1, max_dims=2, max_side=3), min_value=-2, max_value=2),
    seed=st.integers(0, 1000),
)
def test_jvp_and_vjp_on_drawn_shapes(x, seed):
    def f(t):
        return (t.sin() * t.sum()).reshape(-1)[:3] * 2

    J = F.jacobian(f, t64(x)).data.reshape(-1, x.size)
    rng = np.random.default_rng(seed)
    v_in, v_out = rng.standard_normal(x.shape), rng.standard_normal(J.shape[0])
    _, jv = F.jvp(f, t64(x), t64(v_in))
    _, vj = F.vjp(f, t64(x), t64(v_out))
    np.testing.assert_allclose(jv.data, J @ v_in.reshape(-1), atol=1e-12)
    np.testing.assert_allclose(vj.data, (v_out @ J).reshape(x.shape), atol=1e-12)


@settings(max_examples=15)
@given(x=vectors, seed=st.integers(0, 1000))
def test_hvp_and_vhp_are_hessian_times_v(x, seed):
    def f(t):
        return (t.exp() * t.sum()).sum() + (t**3).sum()

    H = F.hessian(f, t64(x)).data
    v = np.random.default_rng(seed).standard_normal(x.shape)
    value, hv = F.hvp(f, t64(x), t64(v))
    _, vh = F.vhp(f, t64(x), t64(v))
    np.testing.assert_allclose(hv.data, H @ v, atol=1e-10)
    np.testing.assert_allclose(vh.data, v @ H, atol=1e-10)
    assert value.shape == () and not value.requires_grad


def test_forward_mode_strategy_gives_the_same_jacobian():
    x = t64([0.3, -1.2, 2.0])
    reverse = F.jacobian(two_in_two_out, (x, x[:2]))
    forward = F.jacobian(two_in_two_out, (x, x[:2]), strategy="forward-mode")
    for i in range(2):
        for j in range(2):
            np.testing.assert_allclose(forward[i][j].data, reverse[i][j].data, atol=1e-12)
    with pytest.raises(ValueError, match="strategy"):
        F.jacobian(softmax, x, strategy="sideways")


# -- structures, create_graph, strict, errors ------------------------------------------------------


def test_return_structures_follow_pytorch():
    x, y = t64([1.0, 2.0]), t64([3.0])
    assert isinstance(F.jacobian(lambda a: a * 2, x), autodiff.Tensor)
    tup_in = F.jacobian(lambda a, b: a * b, (x, y))
    assert isinstance(tup_in, tuple) and [j.shape for j in tup_in] == [(2, 2), (2, 1)]
    tup_out = F.jacobian(lambda a: (a * 2, a.sum()), x)
    assert isinstance(tup_out, tuple) and [j.shape for j in tup_out] == [(2, 2), (2,)]
    single_tuple = F.jacobian(lambda a: a * 2, (x,))
    assert isinstance(single_tuple, tuple) and len(single_tuple) == 1
    out, g = F.vjp(lambda a: a.sum(), x)  # v may be None for a one-element output
    assert isinstance(out, autodiff.Tensor) and isinstance(g, autodiff.Tensor)
    np.testing.assert_allclose(g.data, [1.0, 1.0])
    _, jv = F.jvp(lambda a: a * 3, t64([2.0]))  # v may be None for a one-element input
    np.testing.assert_allclose(jv.data, [3.0])


def test_inputs_are_not_changed_and_caller_graph_untouched():
    x = t64([1.0, 2.0], requires_grad=True)
    J = F.jacobian(lambda a: a**2, x)
    assert x.grad is None and not J.requires_grad


def test_create_graph_makes_results_differentiable():
    x = t64([0.5, 1.5], requires_grad=True)
    J = F.jacobian(lambda a: a**3, x, create_graph=True)  # diag(3 x^2)
    assert J.requires_grad
    J.sum().backward()  # d/dx sum_i 3 x_i^2 = 6 x
    np.testing.assert_allclose(x.grad.data, 6 * x.data)
    _, hv = F.hvp(lambda a: (a**4).sum(), x, t64([1.0, 0.0]), create_graph=True)
    (g,) = autodiff.grad(hv.sum(), x)  # d/dx of 12 x_0^2 = [24 x_0, 0]
    np.testing.assert_allclose(g.data, [24 * 0.5, 0.0])


def test_unused_inputs_give_zeros_or_raise_in_strict_mode():
    x, y = t64([1.0, 2.0]), t64([3.0])
    J = F.jacobian(lambda a, b: a * 2, (x, y))
    np.testing.assert_allclose(J[1].data, np.zeros((2, 1)))
    with pytest.raises(RuntimeError, match=r"independent of input 1.*strict"):
        F.jacobian(lambda a, b: a * 2, (x, y), strict=True)
    with pytest.raises(RuntimeError, match="independent of input 1"):
        F.vjp(lambda a, b: a * 2, (x, y), t64([1.0, 1.0]), strict=True)
    with pytest.raises(RuntimeError, match="independent of input 1"):
        F.jvp(lambda a, b: a * 2, (x, y), (t64([1.0, 1.0]), t64([1.0])), strict=True)
    _, g = F.vjp(lambda a, b: a * 2, (x, y), t64([1.0, 1.0]))
    np.testing.assert_allclose(g[1].data, [0.0])


def test_bad_arguments():
    x = t64([1.0, 2.0])
    with pytest.raises(TypeError, match="jacobian: the inputs must be a Tensor"):
        F.jacobian(lambda a: a, [1.0, 2.0][0])
    with pytest.raises(TypeError, match="outputs of the user-provided function must be a Tensor"):
        F.jacobian(lambda a: 3.0, x)
    with pytest.raises(RuntimeError, match="vjp: the vector v can only be None"):
        F.vjp(lambda a: a * 2, x)
    with pytest.raises(
        RuntimeError, match=r"vjp: entry 0 of v has shape \(3,\) but the output 0 has shape \(2,\)"
    ):
        F.vjp(lambda a: a * 2, x, t64([1.0, 2.0, 3.0]))
    with pytest.raises(RuntimeError, match="jvp: the vector v can only be None"):
        F.jvp(lambda a: a * 2, x)
    with pytest.raises(
        RuntimeError,
        match="hessian: the function given to hessian must return a single Tensor with a single element",
    ):
        F.hessian(lambda a: a * 2, x)
    with pytest.raises(TypeError, match="floating point"):
        F.jacobian(lambda a: a * 2, autodiff.tensor([1, 2]))


# -- against PyTorch ----------------------------------------------------------------------------------


@pytest.mark.torch
def test_matches_torch_autograd_functional():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    a, b = rng.standard_normal(3), rng.standard_normal(2)
    v_out = (rng.standard_normal(3), rng.standard_normal(2))
    v_in = (rng.standard_normal(3), rng.standard_normal(2))

    def f(x, y):
        return (x * y.sum()).tanh(), (x.unsqueeze(1) * y).exp().sum(0)

    def scalar(x, y):
        return (x.exp().sum() * y.sin().sum()) + (x**3).sum()

    ours_in, theirs_in = (t64(a), t64(b)), (torch.tensor(a), torch.tensor(b))
    ours, theirs = F.jacobian(f, ours_in), torch.autograd.functional.jacobian(f, theirs_in)
    for i in range(2):
        for j in range(2):
            np.testing.assert_allclose(ours[i][j].data, theirs[i][j].numpy(), rtol=1e-12)
    ours, theirs = F.hessian(scalar, ours_in), torch.autograd.functional.hessian(scalar, theirs_in)
    for i in range(2):
        for j in range(2):
            np.testing.assert_allclose(
                ours[i][j].data, theirs[i][j].numpy(), rtol=1e-12, atol=1e-14
            )
    pairs = [
        (F.vjp, torch.autograd.functional.vjp, f, v_out),
        (F.jvp, torch.autograd.functional.jvp, f, v_in),
        (F.hvp, torch.autograd.functional.hvp, scalar, v_in),
        (F.vhp, torch.autograd.functional.vhp, scalar, v_in),
    ]
    for ours_fn, theirs_fn, fn, v in pairs:
        ours = ours_fn(fn, ours_in, tuple(t64(x) for x in v))
        theirs = theirs_fn(fn, theirs_in, tuple(torch.tensor(x) for x in v))
        for o, t in zip(ours[1], theirs[1], strict=True):
            np.testing.assert_allclose(o.data, t.numpy(), rtol=1e-12, atol=1e-14)


def test_docstring_examples_run():
    import doctest
    import importlib

    # (autodiff.gradcheck is the function; the module is reached through importlib)
    for module in (F, importlib.import_module("autodiff.gradcheck")):
        failed, attempted = doctest.testmod(module)
        assert attempted > 0 and failed == 0, module.__name__
