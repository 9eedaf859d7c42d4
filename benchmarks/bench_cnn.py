"""The small CNN's training epoch, against PyTorch from the same weights.

    Conv2d(1, 16, 3, padding=1) -> ReLU -> MaxPool2d(2)
    -> Conv2d(16, 32, 3, padding=1) -> ReLU -> MaxPool2d(2)
    -> Flatten -> Linear(32 * 7 * 7 = 1568, 10)
    CrossEntropyLoss, SGD(lr=1e-2, momentum=0.9), batches of 64

On the same pre-loaded synthetic FashionMNIST-shaped batches as the MLP.
``--quick`` trains on 1/16 of the epoch and scales.
"""

from __future__ import annotations

import math

import numpy as np

from . import bench_mlp
from .common import import_torch, interleaved

LEARNING_RATE = 1e-2
MOMENTUM = 0.9


def initial_weights(seed=0):
    """PyTorch-style uniform(-1/sqrt(fan_in), 1/sqrt(fan_in)) weights as NumPy arrays."""
    rng = np.random.default_rng(seed)
    shapes = {"0": (16, 1, 3, 3), "3": (32, 16, 3, 3), "7": (10, 1568)}
    state = {}
    for key, shape in shapes.items():
        bound = 1 / math.sqrt(int(np.prod(shape[1:])))
        state[f"{key}.weight"] = rng.uniform(-bound, bound, shape).astype(np.float32)
        state[f"{key}.bias"] = rng.uniform(-bound, bound, shape[0]).astype(np.float32)
    return state


def _layers(nn):
    return [
        nn.Conv2d(1, 16, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(1568, 10),
    ]


def have_conv() -> bool:
    try:
        import nn
    except ImportError:
        return False
    return hasattr(nn, "Conv2d") and hasattr(nn, "MaxPool2d")


def autodiff_model(state):
    import autodiff
    import nn

    model = nn.Sequential(*_layers(nn))
    model.load_state_dict({k: autodiff.tensor(v) for k, v in state.items()})
    optim = getattr(autodiff, "optim", None) or nn.optim
    optimizer = optim.SGD(model.parameters(), lr=LEARNING_RATE, momentum=MOMENTUM)
    return model, nn.CrossEntropyLoss(), optimizer


def torch_model(state):
    torch = import_torch()
    model = torch.nn.Sequential(*_layers(torch.nn))
    model.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in state.items()})
    optimizer = torch.optim.SGD(model.parameters(), lr=LEARNING_RATE, momentum=MOMENTUM)
    return model, torch.nn.CrossEntropyLoss(), optimizer


def run(table, repeats=3, quick=False, batch_sizes=(64,)):
    if not have_conv():
        print("(cnn: skipped, nn.Conv2d / nn.MaxPool2d are not available yet)")
        return
    images, labels = bench_mlp.synthetic_fashion_mnist()
    state = initial_weights()
    torch = import_torch()
    for batch_size in batch_sizes:
        full = math.ceil(bench_mlp.N_IMAGES / batch_size)
        data = bench_mlp.batches(images, labels, batch_size, max(1, full // 16) if quick else None)
        scale = full / len(data)
        ours = autodiff_model(state)
        a_data = bench_mlp.autodiff_batches(data)
        cases = {
            "autodiff": lambda ours=ours, a_data=a_data: _epoch(
                bench_mlp.autodiff_epoch, ours, a_data
            )
        }
        if torch is not None:
            theirs = torch_model(state)
            t_data = bench_mlp.torch_batches(data)
            cases["torch"] = lambda theirs=theirs, t_data=t_data: _epoch(
                bench_mlp.torch_epoch, theirs, t_data
            )
        medians = interleaved(cases, repeats)
        label = f"batch {batch_size}" + (" (scaled from 1/16 epoch)" if quick else "")
        table.add(
            f"small CNN training epoch, {label}",
            medians["autodiff"]["train"] * scale,
            medians["torch"]["train"] * scale if "torch" in medians else None,
            target="<= 1.5x PyTorch" if batch_size == 64 else "",
        )


def _epoch(epoch, model, data):
    return {"train": epoch(*model, data)}
