"""Optimizers and schedulers: PyTorch's trajectories step for step (when installed),
hand-computed updates, parameter groups, state dicts and errors."""

from __future__ import annotations

import math

import numpy as np
import pytest

import autodiff
import nn
from autodiff import optim
from autodiff.optim import lr_scheduler

CONFIGS = [
    ("SGD", {"lr": 0.1}),
    ("SGD", {"lr": 0.05, "momentum": 0.9}),
    ("SGD", {"lr": 0.05, "momentum": 0.9, "dampening": 0.3, "weight_decay": 0.01}),
    ("SGD", {"lr": 0.05, "momentum": 0.8, "nesterov": True, "weight_decay": 0.1}),
    ("SGD", {"lr": 0.05, "momentum": 0.5, "maximize": True}),
    ("Adam", {}),
    ("Adam", {"lr": 0.01, "betas": (0.8, 0.9), "weight_decay": 0.1}),
    ("Adam", {"lr": 0.01, "amsgrad": True}),
    ("Adam", {"lr": 0.01, "maximize": True, "eps": 1e-6}),
    ("AdamW", {"lr": 0.01}),
    ("AdamW", {"lr": 0.01, "weight_decay": 0.5, "amsgrad": True}),
    ("RMSprop", {}),
    ("RMSprop", {"lr": 0.01, "momentum": 0.9, "weight_decay": 0.1}),
    ("RMSprop", {"lr": 0.01, "centered": True, "alpha": 0.9}),
    ("RMSprop", {"lr": 0.01, "centered": True, "momentum": 0.5}),
]


def quadratic_problem(seed=0):
    """Fixed A, b and starting points: loss = |A w - b|^2 + sum(v^4 / 4 - v^2) over two parameters."""
    rng = np.random.default_rng(seed)
    return (
        rng.standard_normal((5, 3)),
        rng.standard_normal(5),
        rng.standard_normal(3),
        rng.standard_normal((2, 2)),
    )


def quadratic_loss(lib, w, v):
    """The loss of ``quadratic_problem`` at (w, v), with ``lib`` autodiff or torch."""
    A, b, _, _ = quadratic_problem()
    return ((lib.tensor(A) @ w - lib.tensor(b)) ** 2).sum() + (v**4).sum() / 4 - (v**2).sum()


def continue_steps_3_to_5(opt, w, v, trajectory, rtol):
    """Steps 3, 4, 5 with ``opt``: w and v must follow ``trajectory`` to ``rtol``."""
    for step in range(3, 6):
        opt.zero_grad()
        quadratic_loss(autodiff, w, v).backward()
        opt.step()
        np.testing.assert_allclose(w.data, trajectory[step][0], rtol=rtol, err_msg=f"step {step}")
        np.testing.assert_allclose(v.data, trajectory[step][1], rtol=rtol, err_msg=f"step {step}")


def parameter_list(w, v, groups=False, named=False):
    """The optimizer's ``params``: [w, v] or two groups (v's with lr 0.02), as (name, tensor)
    pairs when ``named``."""
    first, second = (("w", w), ("v", v)) if named else (w, v)
    return [{"params": [first]}, {"params": [second], "lr": 0.02}] if groups else [first, second]


def run_ours(name, kwargs, steps=8, groups=False, named=False):
    _, _, w0, v0 = quadratic_problem()
    w = nn.Parameter(autodiff.tensor(w0))
    v = nn.Parameter(autodiff.tensor(v0))
    opt = getattr(optim, name)(parameter_list(w, v, groups, named), **kwargs)
    trajectory = []
    for _ in range(steps):
        opt.zero_grad()
        quadratic_loss(autodiff, w, v).backward()
        opt.step()
        trajectory.append((w.data.copy(), v.data.copy()))
    return trajectory, opt, (w, v)


def run_theirs(torch, name, kwargs, steps=8, groups=False, named=False):
    _, _, w0, v0 = quadratic_problem()
    w = torch.nn.Parameter(torch.tensor(w0))
    v = torch.nn.Parameter(torch.tensor(v0))
    opt = getattr(torch.optim, name)(parameter_list(w, v, groups, named), **kwargs)
    trajectory = []
    for _ in range(steps):
        opt.zero_grad()
        quadratic_loss(torch, w, v).backward()
        opt.step()
        trajectory.append((w.detach().numpy().copy(), v.detach().numpy().copy()))
    return trajectory, opt


@pytest.mark.torch
@pytest.mark.parametrize(
    ("name", "kwargs"), CONFIGS, ids=[f"{n}-{i}" for i, (n, _) in enumerate(CONFIGS)]
)
@pytest.mark.parametrize("groups", [False, True])
def test_trajectory_matches_pytorch_step_for_step(torch, name, kwargs, groups):
    ours, opt, _ = run_ours(name, kwargs, groups=groups)
    theirs, topt = run_theirs(torch, name, kwargs, groups=groups)
    for step, ((w1, v1), (w2, v2)) in enumerate(zip(ours, theirs, strict=True)):
        np.testing.assert_allclose(w1, w2, rtol=1e-10, atol=1e-12, err_msg=f"w at step {step}")
        np.testing.assert_allclose(v1, v2, rtol=1e-10, atol=1e-12, err_msg=f"v at step {step}")
    sd, tsd = opt.state_dict(), topt.state_dict()
    assert sorted(sd["state"]) == sorted(tsd["state"])
    for key, state in tsd["state"].items():
        assert sorted(sd["state"][key]) == sorted(state)
        for field, value in state.items():
            ours_value = sd["state"][key][field]
            ours_value = ours_value.data if isinstance(ours_value, autodiff.Tensor) else ours_value
            np.testing.assert_allclose(ours_value, value.numpy(), rtol=1e-10, err_msg=field)
    for group, tgroup in zip(sd["param_groups"], tsd["param_groups"], strict=True):
        assert group["params"] == tgroup["params"]
        for key in ("lr", "weight_decay"):
            assert group[key] == tgroup[key]


NAMED_CONFIGS = [
    ("SGD", {"lr": 0.05, "momentum": 0.9}),
    ("Adam", {"lr": 0.01, "amsgrad": True}),
    ("AdamW", {"lr": 0.01}),
    ("RMSprop", {"lr": 0.01, "centered": True, "momentum": 0.5}),
]


@pytest.mark.torch
@pytest.mark.parametrize(("name", "kwargs"), NAMED_CONFIGS, ids=[n for n, _ in NAMED_CONFIGS])
@pytest.mark.parametrize("groups", [False, True])
def test_named_parameters_match_pytorch(torch, name, kwargs, groups):
    """PyTorch 2.13 takes (name, tensor) pairs: same steps, and the names in state_dict()."""
    ours, opt, (w, v) = run_ours(name, kwargs, groups=groups, named=True)
    theirs, topt = run_theirs(torch, name, kwargs, groups=groups, named=True)
    for step, ((w1, v1), (w2, v2)) in enumerate(zip(ours, theirs, strict=True)):
        np.testing.assert_allclose(w1, w2, rtol=1e-10, atol=1e-12, err_msg=f"w at step {step}")
        np.testing.assert_allclose(v1, v2, rtol=1e-10, atol=1e-12, err_msg=f"v at step {step}")
    for group, tgroup in zip(opt.param_groups, topt.param_groups, strict=True):
        assert group["param_names"] == tgroup["param_names"]
    sd, tsd = opt.state_dict(), topt.state_dict()
    for group, tgroup in zip(sd["param_groups"], tsd["param_groups"], strict=True):
        assert (group["param_names"], group["params"]) == (tgroup["param_names"], tgroup["params"])
    # PyTorch's state dict, names and all, loads into ours and continues its trajectory
    theirs_traj, _ = run_theirs(torch, name, kwargs, steps=6, groups=groups, named=True)
    _, topt3 = run_theirs(torch, name, kwargs, steps=3, groups=groups, named=True)
    _, _, (w, v) = run_ours(name, kwargs, steps=0)
    their_params = [p for group in topt3.param_groups for p in group["params"]]
    for param, their_param in zip((w, v), their_params, strict=True):
        param.data[...] = their_param.detach().numpy()
    fresh = getattr(optim, name)(parameter_list(w, v, groups), **kwargs)
    fresh.load_state_dict(topt3.state_dict())
    assert [g["param_names"] for g in fresh.param_groups] == [
        g["param_names"] for g in topt3.param_groups
    ]
    continue_steps_3_to_5(fresh, w, v, theirs_traj, rtol=1e-10)


@pytest.mark.torch
def test_defaults_match_pytorch(torch):
    p = [nn.Parameter(autodiff.zeros(1))]
    tp = [torch.nn.Parameter(torch.zeros(1))]
    for name in ("SGD", "Adam", "AdamW", "RMSprop"):
        ours, theirs = getattr(optim, name)(p).defaults, getattr(torch.optim, name)(tp).defaults
        for key, value in ours.items():
            if key in theirs:
                assert value == theirs[key], (name, key)


@pytest.mark.torch
@pytest.mark.parametrize(
    ("name", "kwargs"),
    [
        ("StepLR", {"step_size": 3, "gamma": 0.5}),
        ("CosineAnnealingLR", {"T_max": 4, "eta_min": 0.01}),
    ],
)
def test_schedulers_match_pytorch(torch, name, kwargs):
    opt = optim.SGD([nn.Parameter(autodiff.zeros(1))], lr=0.1)
    topt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    ours = getattr(lr_scheduler, name)(opt, **kwargs)
    theirs = getattr(torch.optim.lr_scheduler, name)(topt, **kwargs)
    for _ in range(13):
        assert ours.get_last_lr() == pytest.approx(theirs.get_last_lr(), rel=1e-12)
        assert opt.param_groups[0]["lr"] == pytest.approx(topt.param_groups[0]["lr"], rel=1e-12)
        opt.step()
        topt.step()
        ours.step()
        theirs.step()


# -- without PyTorch ----------------------------------------------------------------------------


def test_sgd_step_is_p_minus_lr_grad_and_leaves_no_graph():
    w = nn.Parameter(autodiff.tensor([1.0, -2.0]))
    opt = optim.SGD([w], lr=0.5)
    (w * w).sum().backward()  # grad = 2 w
    opt.step()
    np.testing.assert_allclose(w.data, [0.0, 0.0])
    assert w.grad_fn is None and w.is_leaf and w.requires_grad


@pytest.mark.parametrize(
    ("name", "kwargs"), [("SGD", {"lr": 0.1}), ("Adam", {"lr": 0.1}), ("RMSprop", {"lr": 0.1})]
)
def test_a_step_changes_parameters_in_place_as_sub_does(name, kwargs):
    """The step writes into p's array, moves its version once (so a graph that saved p
    refuses backward, as after p.sub_), and bits equal p.sub_(update) under no_grad."""
    rng = np.random.default_rng(0)
    values, grad = rng.standard_normal((2, 3, 4)).astype(np.float32)
    w = nn.Parameter(autodiff.tensor(values))
    array, version = w.data, w._version[0]
    loss = (w * w).sum()
    w.grad = autodiff.tensor(grad)
    getattr(optim, name)([w], **kwargs).step()
    assert w.data is array and w._version[0] == version + 1 and w.dtype == autodiff.float32
    with pytest.raises(RuntimeError, match="modified by an in-place operation"):
        loss.backward()
    if name == "SGD":
        expected = autodiff.tensor(values)
        with autodiff.no_grad():
            expected.sub_(0.1 * grad)
        np.testing.assert_array_equal(w.data, expected.data)


def test_a_step_on_a_read_only_parameter_says_so():
    w = nn.Parameter(autodiff.tensor([1.0, 1.0, 1.0]))
    w.data = np.broadcast_to(np.ones(1), (3,))
    w.grad = autodiff.tensor([1.0, 1.0, 1.0])
    with pytest.raises(RuntimeError, match="read-only view"):
        optim.SGD([w], lr=0.1).step()


def test_sgd_momentum_by_hand():
    w = nn.Parameter(autodiff.tensor([1.0], dtype=autodiff.float64))
    opt = optim.SGD([w], lr=0.1, momentum=0.9)
    expected, buf = 1.0, None
    for _ in range(4):
        opt.zero_grad()
        (w * w).sum().backward()
        g = 2 * expected
        buf = g if buf is None else 0.9 * buf + g
        expected -= 0.1 * buf
        opt.step()
        assert w.item() == pytest.approx(expected, rel=1e-12)


def test_adam_first_step_moves_every_coordinate_by_lr():
    w = nn.Parameter(autodiff.tensor([3.0, -1e-3, 100.0], dtype=autodiff.float64))
    opt = optim.Adam([w], lr=0.01)
    (w * w).sum().backward()
    opt.step()
    # m_hat = g and v_hat = g^2 after one step: the move is lr * g / (|g| + eps)
    g = 2 * np.array([3.0, -1e-3, 100.0])
    expected = np.array([3.0, -1e-3, 100.0]) - 0.01 * g / (np.abs(g) + 1e-8)
    np.testing.assert_allclose(w.data, expected, rtol=1e-12)
    assert np.abs(w.data - [2.99, 0.009, 99.99]).max() < 1e-7  # about lr per coordinate


def test_every_optimizer_decreases_the_loss():
    A, b, w0, v0 = quadratic_problem()

    def loss(w, v):
        return ((A @ w - b) ** 2).sum() + (v**4).sum() / 4 - (v**2).sum()

    for name, kwargs in CONFIGS:
        if kwargs.get("maximize"):
            continue
        trajectory, _, _ = run_ours(name, kwargs, steps=30)
        assert loss(*trajectory[-1]) < loss(w0, v0), (name, kwargs)


def test_parameter_groups_have_their_own_options():
    a, b = nn.Parameter(autodiff.ones(1)), nn.Parameter(autodiff.ones(1))
    opt = optim.SGD([{"params": [a]}, {"params": [b], "lr": 1.0}], lr=0.1, momentum=0.5)
    assert opt.param_groups[0]["lr"] == 0.1 and opt.param_groups[1]["lr"] == 1.0
    assert opt.param_groups[1]["momentum"] == 0.5
    (a + b).sum().backward()
    opt.step()
    assert a.item() == pytest.approx(0.9) and b.item() == pytest.approx(0.0)
    c = nn.Parameter(autodiff.ones(1))
    opt.add_param_group({"params": c, "lr": 2.0})
    assert opt.param_groups[2]["params"] == [c]
    with pytest.raises(ValueError, match="more than one parameter group"):
        opt.add_param_group({"params": [a]})


def test_add_param_group_keeps_the_users_dict():
    """As PyTorch: the dict passed in becomes the group, filled in, and stays linked."""
    a, b = nn.Parameter(autodiff.ones(1)), nn.Parameter(autodiff.ones(1))
    first = {"params": (a,)}
    opt = optim.SGD([first], lr=0.1, momentum=0.5)
    second = {"params": b, "lr": 1.0}
    opt.add_param_group(second)
    assert opt.param_groups[0] is first and opt.param_groups[1] is second
    assert first["params"] == [a] and second["params"] == [b]  # made lists
    assert first["lr"] == 0.1 and second["momentum"] == 0.5  # filled from the defaults
    second["lr"] = 0.5  # the user's dict is the optimizer's group
    (a + b).sum().backward()
    opt.step()
    assert b.item() == pytest.approx(0.5)
    named = {"params": [("c", nn.Parameter(autodiff.ones(1)))]}
    optim.SGD([named], lr=0.1)
    assert named["param_names"] == ["c"] and isinstance(named["params"][0], autodiff.Tensor)


def test_add_param_group_keeps_the_users_dict_as_pytorch(torch):
    a = torch.nn.Parameter(torch.ones(1))
    group = {"params": (a,)}
    opt = torch.optim.SGD([group], lr=0.1)
    assert opt.param_groups[0] is group and group["params"] == [a] and group["lr"] == 0.1


def loaded_groups(lib, params, saved_lr):
    """(before, after, the optimizer's "params" lists before and after): what a group
    dict taken before ``load_state_dict`` sees once a state dict with lr ``saved_lr``
    is loaded."""
    opt = lib.optim.Adam(params, lr=0.1)
    before = opt.param_groups[0]
    params_list = before["params"]
    state = lib.optim.Adam(params, lr=saved_lr).state_dict()
    opt.load_state_dict(state)
    after = opt.param_groups[0]
    state["param_groups"][0]["betas"] = (0.0, 0.0)  # a deep copy was loaded
    return before, after, params_list, after["params"]


def test_load_state_dict_replaces_the_groups():
    """As PyTorch: each group becomes a new dict; one taken before loading keeps the old
    options and no longer steers the optimizer; the "params" list is the same object."""
    w = nn.Parameter(autodiff.ones(2))
    opt = optim.Adam([w], lr=0.1)
    before = opt.param_groups[0]
    opt.load_state_dict(optim.Adam([w], lr=0.5).state_dict())
    before["lr"] = 100.0  # no longer the optimizer's
    (w * w).sum().backward()
    opt.step()  # Adam's first step moves each coordinate by lr
    np.testing.assert_allclose(w.data, [0.5, 0.5], rtol=1e-6)
    before, after, params_before, params_after = loaded_groups(autodiff, [w], 0.5)
    assert after is not before and before["lr"] == 0.1 and after["lr"] == 0.5
    assert params_after is params_before and after["betas"] == (0.9, 0.999)


def test_load_state_dict_replaces_the_groups_as_pytorch(torch):
    w = torch.nn.Parameter(torch.ones(2))
    before, after, params_before, params_after = loaded_groups(torch, [w], 0.5)
    assert after is not before and before["lr"] == 0.1 and after["lr"] == 0.5
    assert params_after is params_before and after["betas"] == (0.9, 0.999)


def test_load_state_dict_fills_options_an_older_dict_lacks():
    w = nn.Parameter(autodiff.ones(2))
    state = optim.Adam([w], lr=0.5).state_dict()
    del state["param_groups"][0]["decoupled_weight_decay"], state["param_groups"][0]["fused"]
    opt = optim.Adam([w])
    opt.load_state_dict(state)
    assert opt.param_groups[0]["decoupled_weight_decay"] is False
    assert opt.param_groups[0]["fused"] is None and opt.param_groups[0]["lr"] == 0.5


def repeated_parameter_run(lib, name, kwargs, steps=4):
    """Trajectory and state dict of ``name`` over one group [w, v, w] (w repeated)."""
    _, _, w0, v0 = quadratic_problem()
    parameter = nn.Parameter if lib is autodiff else lib.nn.Parameter
    w, v = parameter(lib.tensor(w0)), parameter(lib.tensor(v0))
    with pytest.warns(UserWarning, match="parameter group with duplicate parameters"):
        opt = getattr(lib.optim, name)([w, v, w], **kwargs)
    trajectory = []
    for _ in range(steps):
        opt.zero_grad()
        quadratic_loss(lib, w, v).backward()
        opt.step()
        trajectory.append((w.detach().numpy().copy(), v.detach().numpy().copy()))
    return trajectory, opt.state_dict()


def test_a_repeated_parameter_warns_and_is_stepped_once_per_entry():
    """PyTorch warns (and does not refuse); SGD then moves w twice per step."""
    _, _, w0, _ = quadratic_problem()
    trajectory, state = repeated_parameter_run(autodiff, "SGD", {"lr": 0.01}, steps=1)
    w = nn.Parameter(autodiff.tensor(w0))
    quadratic_loss(autodiff, w, autodiff.zeros(2, 2)).backward()
    np.testing.assert_allclose(trajectory[0][0], w0 - 2 * 0.01 * w.grad.numpy(), rtol=1e-12)
    assert state["param_groups"][0]["params"] == [2, 1, 2]
    a, b, c = (nn.Parameter(autodiff.ones(1)) for _ in range(3))
    with pytest.warns(UserWarning, match=r"positions \[2, 3\] repeat earlier ones"):
        optim.SGD([{"params": [a]}, {"params": [b, c, b, c]}], lr=0.1)
    with pytest.raises(ValueError, match="more than one parameter group"):
        optim.SGD([{"params": [a]}, {"params": [b, a]}], lr=0.1)


def test_state_dict_numbers_parameters_after_a_repeated_one_as_pytorch():
    """PyTorch numbers each group from the count of all entries before it, and a
    repeated tensor by its last entry."""
    a, b, c = (nn.Parameter(autodiff.ones(1)) for _ in range(3))
    with pytest.warns(UserWarning):
        opt = optim.SGD([{"params": [a, a]}, {"params": [b, c]}], lr=0.1)
    assert [g["params"] for g in opt.state_dict()["param_groups"]] == [[1, 1], [2, 3]]


@pytest.mark.torch
@pytest.mark.parametrize(
    ("name", "kwargs"), CONFIGS, ids=[f"{n}-{i}" for i, (n, _) in enumerate(CONFIGS)]
)
def test_a_repeated_parameter_steps_as_in_pytorch(torch, name, kwargs):
    ours, state = repeated_parameter_run(autodiff, name, kwargs)
    theirs, their_state = repeated_parameter_run(torch, name, kwargs)
    for step, ((w1, v1), (w2, v2)) in enumerate(zip(ours, theirs, strict=True)):
        np.testing.assert_allclose(w1, w2, rtol=1e-10, atol=1e-12, err_msg=f"w at step {step}")
        np.testing.assert_allclose(v1, v2, rtol=1e-10, atol=1e-12, err_msg=f"v at step {step}")
    assert state["param_groups"][0]["params"] == their_state["param_groups"][0]["params"]
    assert sorted(state["state"]) == sorted(their_state["state"])
    for key, fields in their_state["state"].items():
        for field, value in fields.items():
            ours_value = state["state"][key][field]
            ours_value = ours_value.data if isinstance(ours_value, autodiff.Tensor) else ours_value
            np.testing.assert_allclose(ours_value, value.numpy(), rtol=1e-10, err_msg=field)


def complex_problem(dtype, steps=4):
    """A complex (2, 3) starting point and one complex gradient per step, of ``dtype``."""
    rng = np.random.default_rng(5)
    draw = [rng.standard_normal((2, 3)) + 1j * rng.standard_normal((2, 3)) for _ in range(steps)]
    return draw[0].astype(dtype), [g.astype(dtype) for g in draw[1:]]


def step_with_gradients(lib, name, kwargs, start, gradients):
    """The parameter after each step of ``name`` from ``start``, fed ``gradients``."""
    parameter = nn.Parameter if lib is autodiff else lib.nn.Parameter
    p = parameter(lib.tensor(start))
    opt = getattr(lib.optim, name)([p], **kwargs)
    trajectory = []
    for g in gradients:
        p.grad = lib.tensor(g)
        opt.step()
        trajectory.append(p.detach().numpy().copy())
    return trajectory, opt.state_dict()


def as_real(array):
    """PyTorch's view_as_real on a NumPy array: shape (..., 2), real and imaginary parts."""
    return np.stack([array.real, array.imag], axis=-1)


@pytest.mark.parametrize(
    ("name", "kwargs"), CONFIGS, ids=[f"{n}-{i}" for i, (n, _) in enumerate(CONFIGS)]
)
def test_a_complex_parameter_steps_as_its_real_and_imaginary_parts(name, kwargs):
    """As PyTorch: a complex parameter's parts step as two real parameters would (Adam and
    RMSprop square each part, not g * g), and the state holds them as complex numbers."""
    start, gradients = complex_problem(np.complex128)
    ours, state = step_with_gradients(autodiff, name, kwargs, start, gradients)
    real, real_state = step_with_gradients(
        autodiff, name, kwargs, as_real(start), [as_real(g) for g in gradients]
    )
    for step, (z, r) in enumerate(zip(ours, real, strict=True)):
        assert z.dtype == np.complex128
        np.testing.assert_allclose(as_real(z), r, rtol=1e-12, atol=1e-14, err_msg=f"step {step}")
    assert sorted(state["state"]) == sorted(real_state["state"])
    for field, value in state["state"].get(0, {}).items():
        if field != "step":
            np.testing.assert_allclose(
                as_real(value.numpy()), real_state["state"][0][field].numpy()
            )


def test_adam_first_complex_step_moves_each_part_by_lr():
    p = nn.Parameter(autodiff.tensor(np.array([1 + 1j, -2 + 0.5j], np.complex64)))
    opt = optim.Adam([p], lr=0.1)
    p.grad = autodiff.tensor(np.array([3 - 1j, -0.5 + 2j], np.complex64))
    opt.step()
    np.testing.assert_allclose(p.detach().numpy(), [0.9 + 1.1j, -1.9 + 0.4j], rtol=1e-6)


@pytest.mark.torch
@pytest.mark.parametrize("dtype", [np.complex64, np.complex128], ids=str)
@pytest.mark.parametrize(
    ("name", "kwargs"), CONFIGS, ids=[f"{n}-{i}" for i, (n, _) in enumerate(CONFIGS)]
)
def test_a_complex_parameter_steps_as_in_pytorch(torch, name, kwargs, dtype):
    start, gradients = complex_problem(dtype)
    ours, state = step_with_gradients(autodiff, name, kwargs, start, gradients)
    theirs, their_state = step_with_gradients(torch, name, kwargs, start, gradients)
    rtol, atol = (1e-5, 1e-6) if dtype == np.complex64 else (1e-10, 1e-12)
    for step, (z, t) in enumerate(zip(ours, theirs, strict=True)):
        assert z.dtype == t.dtype
        np.testing.assert_allclose(z, t, rtol=rtol, atol=atol, err_msg=f"step {step}")
    assert sorted(state["state"]) == sorted(their_state["state"])
    for field, value in their_state["state"].get(0, {}).items():
        ours_value = state["state"][0][field]
        ours_value = ours_value.numpy() if isinstance(ours_value, autodiff.Tensor) else ours_value
        np.testing.assert_allclose(ours_value, value.numpy(), rtol=rtol, atol=atol, err_msg=field)


def test_named_parameters_are_kept_as_param_names():
    model = nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 1))
    for name in ("SGD", "Adam", "AdamW", "RMSprop"):
        opt = getattr(optim, name)(model.named_parameters(), lr=0.1)
        (group,) = opt.param_groups
        assert group["param_names"] == ["0.weight", "0.bias", "2.weight", "2.bias"]
        assert all(a is b for a, b in zip(group["params"], model.parameters(), strict=True))
        (saved,) = opt.state_dict()["param_groups"]
        assert saved["param_names"] == group["param_names"] and saved["params"] == [0, 1, 2, 3]
        assert "param_names: ['0.weight'," in repr(opt)
    opt = optim.SGD([{"params": model[0].named_parameters(), "lr": 1.0}], lr=0.1)
    opt.add_param_group({"params": model[2].named_parameters()})
    assert [g["param_names"] for g in opt.param_groups] == [["weight", "bias"]] * 2
    assert [g["lr"] for g in opt.param_groups] == [1.0, 0.1]


def test_named_and_unnamed_parameters_do_not_mix():
    a, b = nn.Parameter(autodiff.ones(1)), nn.Parameter(autodiff.ones(1))
    with pytest.raises(ValueError, match="Some param names are missing: 1 of the group's 2"):
        optim.SGD([("a", a), b], lr=0.1)
    with pytest.raises(ValueError, match="cannot add param group without names"):
        optim.SGD([{"params": [("a", a)]}, {"params": [b]}], lr=0.1)
    with pytest.raises(ValueError, match="cannot add param group with names"):
        optim.SGD([{"params": [a]}, {"params": [("b", b)]}], lr=0.1)
    with pytest.raises(TypeError, match="one of the params is list"):
        optim.SGD([["a", a]], lr=0.1)  # a pair is a tuple, as in PyTorch


def test_param_names_load_as_pytorch_loads_them():
    """Parameters match by order; loaded names replace the optimizer's, absent ones keep them."""
    a, b = nn.Parameter(autodiff.ones(1)), nn.Parameter(autodiff.ones(1))
    named = optim.SGD([("a", a), ("b", b)], lr=0.1).state_dict()
    unnamed = optim.SGD([a, b], lr=0.1)
    unnamed.load_state_dict(named)
    assert unnamed.param_groups[0]["param_names"] == ["a", "b"]
    named["param_groups"][0]["param_names"].append("changed")  # the optimizer has a copy
    assert unnamed.param_groups[0]["param_names"] == ["a", "b"]
    renamed = optim.SGD([("x", a), ("y", b)], lr=0.1)
    renamed.load_state_dict(optim.SGD([a, b], lr=0.5).state_dict())
    assert renamed.param_groups[0]["param_names"] == ["x", "y"]
    assert renamed.param_groups[0]["lr"] == 0.5


def test_zero_grad_none_by_default_or_zeros():
    w = nn.Parameter(autodiff.ones(2))
    opt = optim.Adam([w])
    w.sum().backward()
    opt.zero_grad(set_to_none=False)
    np.testing.assert_array_equal(w.grad.data, 0)
    opt.zero_grad()
    assert w.grad is None


def test_parameters_without_gradient_are_skipped():
    a, b = nn.Parameter(autodiff.ones(1)), nn.Parameter(autodiff.ones(1))
    opt = optim.Adam([a, b], lr=0.1)
    a.sum().backward()
    opt.step()
    assert b.item() == 1.0 and a.item() != 1.0
    assert list(opt.state_dict()["state"]) == [0]


def test_errors():
    with pytest.raises(ValueError, match="empty parameter list"):
        optim.SGD([], lr=0.1)
    with pytest.raises(ValueError, match="Invalid learning rate"):
        optim.SGD([nn.Parameter(autodiff.ones(1))], lr=-1)
    with pytest.raises(ValueError, match="Nesterov"):
        optim.SGD([nn.Parameter(autodiff.ones(1))], lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="Invalid beta"):
        optim.Adam([nn.Parameter(autodiff.ones(1))], betas=(1.0, 0.9))
    with pytest.raises(TypeError, match="iterable of Tensors"):
        optim.SGD(nn.Parameter(autodiff.ones(1)), lr=0.1)
    with pytest.raises(ValueError, match="non-leaf"):
        optim.SGD([autodiff.ones(1, requires_grad=True) * 2], lr=0.1)


@pytest.mark.parametrize(
    ("name", "kwargs"), CONFIGS[1:], ids=[f"{n}-{i}" for i, (n, _) in enumerate(CONFIGS[1:])]
)
@pytest.mark.parametrize("named", [False, True])
def test_state_dict_round_trip_continues_the_same_trajectory(name, kwargs, named, tmp_path):
    full, _, _ = run_ours(name, kwargs, steps=6, groups=named, named=named)
    _, opt, (w, v) = run_ours(name, kwargs, steps=3, groups=named, named=named)
    path = tmp_path / "opt.pt"
    autodiff.save(opt.state_dict(), path)
    # a fresh optimizer over the same parameters, loaded from the file
    fresh = getattr(optim, name)(parameter_list(w, v, groups=named, named=named), **kwargs)
    fresh.load_state_dict(autodiff.load(path))
    assert fresh.state_dict()["param_groups"] == opt.state_dict()["param_groups"]
    if named:  # (in two groups, the second with its own lr)
        assert [g["param_names"] for g in fresh.param_groups] == [["w"], ["v"]]
    continue_steps_3_to_5(fresh, w, v, full, rtol=1e-12)


def test_load_state_dict_checks_the_groups():
    opt = optim.SGD([nn.Parameter(autodiff.ones(1))], lr=0.1)
    other = optim.SGD([nn.Parameter(autodiff.ones(1)), nn.Parameter(autodiff.ones(1))], lr=0.1)
    with pytest.raises(ValueError, match="doesn't match the size"):
        opt.load_state_dict(other.state_dict())


def test_optimizer_repr_lists_the_groups():
    opt = optim.SGD([nn.Parameter(autodiff.ones(1))], lr=0.1, momentum=0.9)
    text = repr(opt)
    assert (
        text.startswith("SGD (\nParameter Group 0")
        and "momentum: 0.9" in text
        and "lr: 0.1" in text
    )


def test_nn_optim_is_autodiff_optim():
    assert nn.optim.SGD is optim.SGD and nn.optim.lr_scheduler.StepLR is lr_scheduler.StepLR


def test_step_lr_and_cosine_by_formula():
    opt = optim.SGD([nn.Parameter(autodiff.ones(1))], lr=1.0)
    sched = lr_scheduler.StepLR(opt, step_size=2, gamma=0.1)
    lrs = []
    for _ in range(6):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    np.testing.assert_allclose(lrs, [1, 1, 0.1, 0.1, 0.01, 0.01])
    opt = optim.SGD([nn.Parameter(autodiff.ones(1))], lr=1.0)
    sched = lr_scheduler.CosineAnnealingLR(opt, T_max=5, eta_min=0.1)
    for epoch in range(1, 6):
        opt.step()
        sched.step()
        expected = 0.1 + 0.9 * (1 + math.cos(math.pi * epoch / 5)) / 2
        assert sched.get_last_lr()[0] == pytest.approx(expected)
    state = sched.state_dict()
    assert "optimizer" not in state and state["last_epoch"] == 5


@pytest.mark.torch
@pytest.mark.parametrize(
    ("name", "kwargs"), [("Adam", {"lr": 0.01}), ("SGD", {"lr": 0.05, "momentum": 0.9})]
)
def test_pytorch_optimizer_state_dict_loads_and_continues_its_trajectory(torch, name, kwargs):
    theirs_traj, _ = run_theirs(torch, name, kwargs, steps=6)
    _, _, (w, v) = run_ours(name, kwargs, steps=0)
    # start ours where PyTorch was after 3 steps, with PyTorch's optimizer state
    _, topt3 = run_theirs(torch, name, kwargs, steps=3)
    w3, v3 = (p.detach().numpy() for p in topt3.param_groups[0]["params"])
    w.data[...], v.data[...] = w3, v3
    ours = getattr(optim, name)([w, v], **kwargs)
    ours.load_state_dict(topt3.state_dict())
    continue_steps_3_to_5(ours, w, v, theirs_traj, rtol=1e-10)


def test_lambda_lr_state_keeps_a_callable_objects_attributes(tmp_path):
    """As PyTorch: a callable object's ``__dict__`` is saved and restored, a function is None."""
    from autodiff.optim.lr_scheduler import LambdaLR

    class Decay:
        factor = 0.5

        def __call__(self, epoch):
            return self.factor**epoch

    decay = Decay()
    decay.factor = 0.8
    weight = autodiff.zeros(1, requires_grad=True)
    state = LambdaLR(autodiff.optim.SGD([weight], lr=0.1), [decay]).state_dict()
    assert state["lr_lambdas"] == [{"factor": 0.8}]
    assert LambdaLR(autodiff.optim.SGD([weight], lr=0.1), lambda e: 1.0).state_dict()[
        "lr_lambdas"
    ] == [None]
    autodiff.save(state, tmp_path / "scheduler.pt")
    restored = autodiff.load(tmp_path / "scheduler.pt")
    optimizer = autodiff.optim.SGD([autodiff.zeros(1, requires_grad=True)], lr=0.1)
    scheduler = LambdaLR(optimizer, Decay())
    scheduler.load_state_dict(restored)
    optimizer.step()
    scheduler.step()
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.1 * 0.8)
