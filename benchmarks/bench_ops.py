"""Per-op cost: forward and backward through a chain of small elementwise ops.

The chain cycles through ``y * 1.01``, ``y + 0.01``, ``tanh``, ``y - 0.01``,
``sigmoid`` and ``exp`` (values stay bounded), on a float32 tensor of 8
elements (where the cost is the framework's per-op overhead) and of 1000x1000
(where it is the arithmetic and memory traffic).  Backward starts from a
random upstream gradient.  The NumPy column does the same forward calls and
the hand-written vector-Jacobian products, with no graph: the floor.
"""

from __future__ import annotations

import numpy as np

from .common import import_torch, interleaved, now

OPS = ("mul", "add", "tanh", "sub", "sigmoid", "exp")


def _chain(x, n_ops):
    """The forward chain for autodiff or PyTorch tensors (same method names)."""
    y = x
    for i in range(n_ops):
        op = OPS[i % len(OPS)]
        if op == "mul":
            y = y * 1.01
        elif op == "add":
            y = y + 0.01
        elif op == "tanh":
            y = y.tanh()
        elif op == "sub":
            y = y - 0.01
        elif op == "sigmoid":
            y = y.sigmoid()
        else:
            y = y.exp()
    return y


def _numpy_case(x0, upstream, n_ops):
    def run():
        start = now()
        saved = []
        y = x0
        for i in range(n_ops):
            op = OPS[i % len(OPS)]
            if op == "mul":
                y = y * np.float32(1.01)
            elif op == "add":
                y = y + np.float32(0.01)
            elif op == "tanh":
                y = np.tanh(y)
            elif op == "sub":
                y = y - np.float32(0.01)
            elif op == "sigmoid":
                y = 1 / (1 + np.exp(-y))
            else:
                y = np.exp(y)
            saved.append(y)
        middle = now()
        grad = upstream
        for i in reversed(range(n_ops)):
            op = OPS[i % len(OPS)]
            out = saved[i]
            if op == "mul":
                grad = grad * np.float32(1.01)
            elif op == "tanh":
                grad = grad * (1 - out * out)
            elif op == "sigmoid":
                grad = grad * out * (1 - out)
            elif op == "exp":
                grad = grad * out
            # add and sub pass the gradient through unchanged
        end = now()
        return {"forward": (middle - start) / n_ops, "backward": (end - middle) / n_ops}

    return run


def _tensor_case(x, upstream, n_ops):
    def run():
        x.grad = None
        start = now()
        y = _chain(x, n_ops)
        middle = now()
        y.backward(upstream)
        end = now()
        return {"forward": (middle - start) / n_ops, "backward": (end - middle) / n_ops}

    return run


def cases(shape, n_ops, seed=0):
    """The three engines' runs on the same input and upstream gradient."""
    import autodiff

    rng = np.random.default_rng(seed)
    x0 = rng.uniform(-1, 1, shape).astype(np.float32)
    upstream = rng.standard_normal(shape).astype(np.float32)
    result = {
        "autodiff": _tensor_case(
            autodiff.tensor(x0, requires_grad=True), autodiff.tensor(upstream), n_ops
        )
    }
    torch = import_torch()
    if torch is not None:
        result["torch"] = _tensor_case(
            torch.tensor(x0, requires_grad=True), torch.tensor(upstream), n_ops
        )
    result["numpy"] = _numpy_case(x0, upstream, n_ops)
    return result


def run(table, repeats=7, quick=False):
    """Add the per-op rows (8 elements and 1000x1000) to ``table``."""
    workloads = [((8,), 60 if quick else 300, "8 elements"), ((1000, 1000), 12, "1000x1000")]
    for shape, n_ops, label in workloads:
        medians = interleaved(cases(shape, n_ops), repeats if shape != (8,) else repeats * 3)
        for metric in ("forward", "backward"):
            table.add(
                f"per op, {metric}, {label}",
                medians["autodiff"][metric],
                medians.get("torch", {}).get(metric),
                medians["numpy"][metric],
                target="<= 1.1x PyTorch" if shape == (8,) else "<= 1.2x NumPy",
            )
        both = {k: v["forward"] + v["backward"] for k, v in medians.items()}
        table.add(
            f"per op, forward + backward, {label}",
            both["autodiff"],
            both.get("torch"),
            both["numpy"],
            target="<= 1.1x PyTorch" if shape == (8,) else "<= 1.2x NumPy",
        )
