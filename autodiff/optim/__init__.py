"""Optimizers with PyTorch's names, defaults and update rules (``torch.optim``).

An optimizer holds parameter groups (each a dict with ``"params"`` and its
hyper-parameters) and a per-parameter ``state``; ``step()`` changes every
parameter in place from its ``.grad``, with NumPy on ``p.data`` and no graph.

Example (the lecture's training step)::

    optimizer = autodiff.optim.SGD(model.parameters(), lr=1e-3)
    # or SGD(model.named_parameters(), ...): state_dict() then also names the parameters
    loss = loss_fn(model(X), y)
    loss.backward()
    optimizer.step()
    optimizer.zero_grad()
"""

from __future__ import annotations

import copy
import math
import warnings
from collections import defaultdict

import numpy as np

from ..grad_mode import no_grad
from ..tensor import Tensor, constant

__all__ = ["SGD", "Adam", "AdamW", "Optimizer", "RMSprop", "lr_scheduler"]


class _RequiredParameter:
    def __repr__(self):
        return "<required parameter>"


required = _RequiredParameter()


# The words of PyTorch's errors for a negative hyper-parameter ("Invalid learning rate: -1").
_HYPER_PARAMETER_WORDS = {
    "lr": "learning rate",
    "eps": "epsilon value",
    "momentum": "momentum value",
    "weight_decay": "weight_decay value",
    "alpha": "alpha value",
}


def _check_non_negative(**values) -> None:
    """PyTorch's argument checks: each hyper-parameter given must be >= 0, in the order given."""
    for name, value in values.items():
        if value < 0.0:
            raise ValueError(f"Invalid {_HYPER_PARAMETER_WORDS[name]}: {value}")


def _descend(p: Tensor, update: np.ndarray) -> None:
    """``p -= update`` in place: what ``p.sub_(update)`` does under no_grad, for a step.

    The optimizers run this once per parameter per step; ``Tensor.sub_``'s general
    path (its checks for recording, views and leaves, and the closures it builds)
    cost about 2.5 us a call, 15 us of the lecture MLP's 150 us SGD step (six
    parameters).  The same NumPy subtraction, so the same values; the version
    counter moves as ``sub_`` moves it.  A read-only parameter (an expanded view)
    goes through ``sub_`` for its error.
    """
    data = p.data
    if not data.flags.writeable or update.dtype != data.dtype:
        p.sub_(update)
        return
    np.subtract(data, update, out=data)
    p._version[0] += 1


def _real_view(array: np.ndarray) -> np.ndarray:
    """A complex array as a float view of shape ``(..., 2)``, real and imaginary parts
    (PyTorch's ``torch.view_as_real``): an in-place change to it changes ``array``."""
    return array[..., np.newaxis].view(array.real.dtype)


def _complex_from(real: np.ndarray, dtype) -> np.ndarray:
    """The complex array of ``dtype`` whose parts are ``real[..., 0]`` and ``real[..., 1]``."""
    return np.ascontiguousarray(real).view(dtype)[..., 0]


def _array(value):
    if isinstance(value, Tensor):
        return value.data
    return np.asarray(value)


class Optimizer:
    """Base class: parameter groups, state, ``zero_grad``, ``state_dict``/``load_state_dict``.

    Subclasses implement ``step()``.  ``params`` is an iterable of tensors, of
    ``(name, tensor)`` pairs (``model.named_parameters()``), or of dicts (parameter
    groups) whose keys override ``defaults``.
    """

    def __init__(self, params, defaults: dict):
        self.defaults = defaults
        self.state: dict = defaultdict(dict)
        self.param_groups: list[dict] = []
        if isinstance(params, Tensor):
            raise TypeError(
                "params argument given to the optimizer should be an iterable of Tensors or "
                f"dicts, but got {type(params).__name__}"
            )
        param_groups = list(params)
        if not param_groups:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(param_groups[0], dict):
            param_groups = [{"params": param_groups}]
        for group in param_groups:
            self.add_param_group(group)

    def __repr__(self):
        text = type(self).__name__ + " ("
        for i, group in enumerate(self.param_groups):
            text += f"\nParameter Group {i}"
            for key in sorted(group):
                if key != "params":
                    text += f"\n    {key}: {group[key]}"
        return text + "\n)"

    def add_param_group(self, param_group: dict) -> None:
        """Add a group of parameters (a dict with "params"), filling unset options from defaults.

        As in PyTorch, the dict itself becomes the group (its "params" made a list and the
        unset options filled in), so a later ``param_group["lr"] = ...`` changes the
        optimizer's group.  "params" holds tensors or ``(name, tensor)`` pairs: the names
        go to the group's "param_names" (and so to ``state_dict()``); all of a group's
        parameters are named or none is, and so are all groups of an optimizer.  A tensor
        repeated within the group is a ``UserWarning``, as in PyTorch, and is then stepped
        once for each time it appears.
        """
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group must be a dict, but got {type(param_group).__name__}")
        params = param_group["params"]
        if isinstance(params, Tensor):
            param_group["params"] = [params]
        elif isinstance(params, set):
            raise TypeError(
                "optimizer parameters need to be organized in ordered collections, but the "
                "ordering of tensors in sets will change between runs. Please use a list instead."
            )
        else:
            param_group["params"] = list(params)
        params = param_group["params"]
        names = [p[0] for p in params if isinstance(p, tuple)]
        param_group["params"] = params = [p[1] if isinstance(p, tuple) else p for p in params]
        if names:
            if len(names) != len(params):
                raise ValueError(
                    "all optimizer params should be with/without names. Some param names are "
                    f"missing: {len(names)} of the group's {len(params)} params are "
                    "(name, tensor) pairs"
                )
            param_group["param_names"] = names
        for p in params:
            if not isinstance(p, Tensor):
                raise TypeError(
                    f"optimizer can only optimize Tensors, but one of the params is {type(p).__name__}"
                )
            if not p.is_leaf:
                raise ValueError("can't optimize a non-leaf Tensor")
        for key, default in self.defaults.items():
            if default is required and key not in param_group:
                raise ValueError(
                    f"parameter group didn't specify a value of required optimization parameter {key}"
                )
            param_group.setdefault(key, default)
        ids = [id(p) for p in params]
        if len(set(ids)) != len(ids):
            repeated = sorted({i for i, key in enumerate(ids) if ids.index(key) != i})
            warnings.warn(
                "optimizer contains a parameter group with duplicate parameters; in future, this "
                "will cause an error; see github.com/pytorch/pytorch/issues/40967 for more "
                f"information (the group's params at positions {repeated} repeat earlier ones; "
                "each is stepped once for each time it appears)",
                UserWarning,
                stacklevel=3,
            )
        named = "param_names" in param_group
        if any(("param_names" in g) != named for g in self.param_groups):
            raise ValueError(
                "all optimizer param groups should be with/without names. cannot add param "
                f"group {'with' if named else 'without'} names to the optimizer"
            )
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if not seen.isdisjoint(ids):
            raise ValueError("some parameters appear in more than one parameter group")
        self.param_groups.append(param_group)

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Reset every parameter's gradient (to None by default, as PyTorch)."""
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if set_to_none:
                    p.grad = None
                else:
                    p.grad.data[...] = 0

    def step(self, closure=None):
        raise NotImplementedError

    def _params_with_grad(self, group):
        for p in group["params"]:
            if p._grad is not None:
                g = p._grad.data
                if g.dtype != p.data.dtype:
                    g = g.astype(p.data.dtype)
                yield p, (-g if group.get("maximize", False) else g)

    @staticmethod
    def _closure(closure):
        if closure is None:
            return None
        from ..grad_mode import enable_grad

        with enable_grad():
            return closure()

    # -- saving and loading --------------------------------------------------------
    def state_dict(self) -> dict:
        """``{"state": {index: {name: Tensor}}, "param_groups": [{..., "params": [indices]}]}``.

        Parameters are numbered in order across groups, as PyTorch does (a tensor repeated
        in a group takes the number of its last entry, and the next group's numbers start
        after all the group's entries), so the dict can be saved with ``autodiff.save``
        and loaded into a new optimizer. A group made from named parameters also holds
        their ``"param_names"``.
        """
        index = {}
        groups = []
        start = 0
        for group in self.param_groups:
            packed = {k: v for k, v in group.items() if k != "params"}
            # (PyTorch's numbering: a tensor repeated in the group takes its last entry's)
            index.update(
                {id(p): i for i, p in enumerate(group["params"], start) if id(p) not in index}
            )
            packed["params"] = [index[id(p)] for p in group["params"]]
            start += len(group["params"])
            groups.append(packed)
        state = {}
        for group in self.param_groups:
            for p in group["params"]:
                if self.state.get(p):
                    state[index[id(p)]] = {
                        k: (constant(np.array(v, copy=True)) if isinstance(v, np.ndarray) else v)
                        for k, v in self.state[p].items()
                    }
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore hyper-parameters and state; checks group and parameter counts first.

        As in PyTorch, parameters are matched by their order, not by their names; the
        loaded ``"param_names"`` replace the optimizer's, which stay when there are none.
        Each group is replaced by a new dict (a deep copy of the loaded one, holding the
        optimizer's own "params" list), so a group dict taken before loading is no longer
        the optimizer's; options the loaded group lacks come from the defaults.
        """
        groups = state_dict["param_groups"]
        if len(groups) != len(self.param_groups):
            raise ValueError(
                f"loaded state dict has {len(groups)} parameter groups, but the optimizer "
                f"has {len(self.param_groups)}"
            )
        for i, (saved, own) in enumerate(zip(groups, self.param_groups, strict=True)):
            if len(saved["params"]) != len(own["params"]):
                raise ValueError(
                    f"loaded state dict contains a parameter group {i} of {len(saved['params'])} "
                    f"parameters that doesn't match the size of optimizer's group ({len(own['params'])})"
                )
        lookup = {}
        for saved, own in zip(groups, self.param_groups, strict=True):
            for key, p in zip(saved["params"], own["params"], strict=True):
                lookup[int(key)] = p
        new_state = defaultdict(dict)
        for key, values in state_dict["state"].items():
            key = int(key)
            if key not in lookup:
                raise ValueError(
                    f"loaded optimizer state refers to parameter {key}, which the optimizer does not have"
                )
            p = lookup[key]
            entry = {}
            for name, value in values.items():
                if isinstance(value, (Tensor, np.ndarray)) or hasattr(value, "numpy"):
                    array = (
                        _array(value)
                        if not hasattr(value, "detach") or isinstance(value, Tensor)
                        else value.detach().cpu().numpy()
                    )
                    if name == "step":
                        entry[name] = float(np.asarray(array).reshape(()))
                        continue
                    if array.shape != p.data.shape and array.ndim:
                        raise ValueError(
                            f"loaded optimizer state {name!r} for parameter {key} has shape "
                            f"{array.shape}, but the parameter has shape {p.data.shape}"
                        )
                    entry[name] = np.array(array, dtype=p.data.dtype, copy=True)
                else:
                    entry[name] = value
            new_state[p] = entry
        self.state = new_state
        param_groups = []
        for saved, own in zip(groups, self.param_groups, strict=True):
            options = copy.deepcopy({k: v for k, v in saved.items() if k != "params"})
            group = {  # (a number saved by autodiff.save comes back as a 0-d array)
                k: v.item() if isinstance(v, (Tensor, np.ndarray)) and np.ndim(v) == 0 else v
                for k, v in options.items()
            }
            group["params"] = own["params"]  # the same list, as PyTorch keeps it
            if "param_names" in own and "param_names" not in group:
                group["param_names"] = own["param_names"]
            for key, default in self.defaults.items():  # options a dict from before them lacks
                if default is not required:
                    group.setdefault(key, default)
            param_groups.append(group)
        self.param_groups = param_groups


class SGD(Optimizer):
    """Stochastic gradient descent, optionally with momentum (PyTorch's update rule).

    g = grad (+ weight_decay * p)
    b = g at the first step, then b = momentum * b + (1 - dampening) * g
    g = g + momentum * b (nesterov) or b
    p = p - lr * g
    """

    def __init__(
        self,
        params,
        lr=1e-3,
        momentum=0,
        dampening=0,
        weight_decay=0,
        nesterov=False,
        *,
        maximize=False,
        foreach=None,
        differentiable=False,
        fused=None,
    ):
        _check_non_negative(lr=lr, momentum=momentum, weight_decay=weight_decay)
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        defaults = {
            "lr": lr,
            "momentum": momentum,
            "dampening": dampening,
            "weight_decay": weight_decay,
            "nesterov": nesterov,
            "maximize": maximize,
            "foreach": foreach,
            "differentiable": differentiable,
            "fused": fused,
        }
        super().__init__(params, defaults)

    @no_grad()
    def step(self, closure=None):
        loss = self._closure(closure)  # (the closure runs with grad enabled)
        for group in self.param_groups:
            lr, momentum, dampening = group["lr"], group["momentum"], group["dampening"]
            weight_decay, nesterov = group["weight_decay"], group["nesterov"]
            entries = list(self._params_with_grad(group))
            # As PyTorch: the buffers are read before any step and stored after all of them,
            # so the entries of a repeated tensor update its one buffer in turn, or, when it
            # has none yet, each starts its own and the last is kept
            bufs = [self.state[p].get("momentum_buffer") for p, _ in entries] if momentum else []
            for i, (p, g) in enumerate(entries):
                if weight_decay:
                    g = g + weight_decay * p.data
                if momentum:
                    buf = bufs[i]
                    if buf is None:
                        buf = bufs[i] = np.array(g, copy=True)
                    else:
                        buf *= momentum
                        buf += (1 - dampening) * g
                    g = g + momentum * buf if nesterov else buf
                _descend(p, lr * g)
            for (p, _), buf in zip(entries, bufs):
                self.state[p]["momentum_buffer"] = buf
        return loss


class Adam(Optimizer):
    """Adam (Kingma & Ba), PyTorch's form:

    g = grad (+ weight_decay * p);   m = b1 m + (1 - b1) g;   v = b2 v + (1 - b2) g^2
    p = p - lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)

    A complex parameter steps as PyTorch's does, on ``torch.view_as_real``: its real and
    imaginary parts are two real parameters (g^2 is taken part by part, not as g * g).
    """

    _decoupled = False

    def __init__(
        self,
        params,
        lr=1e-3,
        betas=(0.9, 0.999),
        eps=1e-8,
        weight_decay=0,
        amsgrad=False,
        *,
        foreach=None,
        maximize=False,
        capturable=False,
        differentiable=False,
        fused=None,
        decoupled_weight_decay=False,
    ):
        _check_non_negative(lr=lr, eps=eps)
        for index, beta in enumerate(betas[:2]):
            if not 0.0 <= beta < 1.0:
                raise ValueError(f"Invalid beta parameter at index {index}: {beta}")
        _check_non_negative(weight_decay=weight_decay)
        defaults = {
            "lr": lr,
            "betas": tuple(betas),
            "eps": eps,
            "weight_decay": weight_decay,
            "amsgrad": amsgrad,
            "maximize": maximize,
            "foreach": foreach,
            "capturable": capturable,
            "differentiable": differentiable,
            "fused": fused,
            "decoupled_weight_decay": decoupled_weight_decay or self._decoupled,
        }
        super().__init__(params, defaults)

    @no_grad()
    def step(self, closure=None):
        loss = self._closure(closure)  # (the closure runs with grad enabled)
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            lr, eps, weight_decay = group["lr"], group["eps"], group["weight_decay"]
            for p, g in self._params_with_grad(group):
                state = self.state[p]
                if not state:
                    state["step"] = 0.0
                    state["exp_avg"] = np.zeros_like(p.data)
                    state["exp_avg_sq"] = np.zeros_like(p.data)
                    if group["amsgrad"]:
                        state["max_exp_avg_sq"] = np.zeros_like(p.data)
                state["step"] += 1
                step = state["step"]
                if weight_decay:
                    if group["decoupled_weight_decay"]:
                        p.data *= 1 - lr * weight_decay
                    else:
                        g = g + weight_decay * p.data
                exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
                max_exp_avg_sq = state["max_exp_avg_sq"] if group["amsgrad"] else None
                is_complex = p.data.dtype.kind == "c"
                if is_complex:  # as PyTorch: the real and imaginary parts step as two reals
                    g, exp_avg, exp_avg_sq = (
                        _real_view(g),
                        _real_view(exp_avg),
                        _real_view(exp_avg_sq),
                    )
                    if max_exp_avg_sq is not None:
                        max_exp_avg_sq = _real_view(max_exp_avg_sq)
                exp_avg += (g - exp_avg) * (1 - beta1)  # lerp towards g
                exp_avg_sq *= beta2
                exp_avg_sq += (1 - beta2) * g * g
                bias_correction1 = 1 - beta1**step
                bias_correction2_sqrt = math.sqrt(1 - beta2**step)
                step_size = lr / bias_correction1
                if max_exp_avg_sq is not None:
                    np.maximum(max_exp_avg_sq, exp_avg_sq, out=max_exp_avg_sq)
                    denom = np.sqrt(max_exp_avg_sq) / bias_correction2_sqrt + eps
                else:
                    denom = np.sqrt(exp_avg_sq) / bias_correction2_sqrt + eps
                update = step_size * (exp_avg / denom)
                _descend(p, _complex_from(update, p.data.dtype) if is_complex else update)
        return loss


class AdamW(Adam):
    """Adam with decoupled weight decay: p = p (1 - lr * weight_decay) before the Adam step."""

    _decoupled = True

    def __init__(
        self,
        params,
        lr=1e-3,
        betas=(0.9, 0.999),
        eps=1e-8,
        weight_decay=1e-2,
        amsgrad=False,
        *,
        maximize=False,
        foreach=None,
        capturable=False,
        differentiable=False,
        fused=None,
    ):
        super().__init__(
            params,
            lr,
            betas,
            eps,
            weight_decay,
            amsgrad,
            foreach=foreach,
            maximize=maximize,
            capturable=capturable,
            differentiable=differentiable,
            fused=fused,
            decoupled_weight_decay=True,
        )


class RMSprop(Optimizer):
    """RMSprop, PyTorch's form:

    v = alpha v + (1 - alpha) g^2;   (centered: subtract the mean gradient squared)
    p = p - lr * g / (sqrt(v) + eps)   (with momentum: through a buffer)

    A complex parameter's real and imaginary parts step as two reals, as in PyTorch.
    """

    def __init__(
        self,
        params,
        lr=1e-2,
        alpha=0.99,
        eps=1e-8,
        weight_decay=0,
        momentum=0,
        centered=False,
        capturable=False,
        foreach=None,
        maximize=False,
        differentiable=False,
    ):
        _check_non_negative(
            lr=lr, eps=eps, momentum=momentum, weight_decay=weight_decay, alpha=alpha
        )
        defaults = {
            "lr": lr,
            "momentum": momentum,
            "alpha": alpha,
            "eps": eps,
            "centered": centered,
            "weight_decay": weight_decay,
            "capturable": capturable,
            "foreach": foreach,
            "maximize": maximize,
            "differentiable": differentiable,
        }
        super().__init__(params, defaults)

    @no_grad()
    def step(self, closure=None):
        loss = self._closure(closure)  # (the closure runs with grad enabled)
        for group in self.param_groups:
            lr, alpha, eps = group["lr"], group["alpha"], group["eps"]
            momentum, weight_decay = group["momentum"], group["weight_decay"]
            for p, g in self._params_with_grad(group):
                state = self.state[p]
                if not state:
                    state["step"] = 0.0
                    state["square_avg"] = np.zeros_like(p.data)
                    if momentum > 0:
                        state["momentum_buffer"] = np.zeros_like(p.data)
                    if group["centered"]:
                        state["grad_avg"] = np.zeros_like(p.data)
                state["step"] += 1
                if weight_decay:
                    g = g + weight_decay * p.data
                square_avg = state["square_avg"]
                is_complex = p.data.dtype.kind == "c"
                if is_complex:  # as PyTorch: the real and imaginary parts step as two reals
                    g, square_avg = _real_view(g), _real_view(square_avg)
                square_avg *= alpha
                square_avg += (1 - alpha) * g * g
                if group["centered"]:
                    grad_avg = state["grad_avg"]
                    grad_avg = _real_view(grad_avg) if is_complex else grad_avg
                    grad_avg += (g - grad_avg) * (1 - alpha)
                    avg = np.sqrt(square_avg - grad_avg * grad_avg) + eps
                else:
                    avg = np.sqrt(square_avg) + eps
                if momentum > 0:
                    buf = state["momentum_buffer"]
                    buf = _real_view(buf) if is_complex else buf
                    buf *= momentum
                    buf += g / avg
                    update = lr * buf
                else:
                    update = lr * g / avg
                _descend(p, _complex_from(update, p.data.dtype) if is_complex else update)
        return loss


from . import lr_scheduler  # noqa: E402
