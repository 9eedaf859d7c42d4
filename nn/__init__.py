"""``nn``: neural-network layers, losses and optimizers with PyTorch's names.

``import nn`` replaces ``from torch import nn``::

    import autodiff as torch
    import nn

    class NeuralNetwork(nn.Module):
        def __init__(self):
            super().__init__()
            self.flatten = nn.Flatten()
            self.linear_relu_stack = nn.Sequential(
                nn.Linear(28 * 28, 512), nn.ReLU(),
                nn.Linear(512, 512), nn.ReLU(),
                nn.Linear(512, 10),
            )

        def forward(self, x):
            return self.linear_relu_stack(self.flatten(x))

    model = NeuralNetwork()
    loss_fn = nn.CrossEntropyLoss()
    optimizer = nn.optim.SGD(model.parameters(), lr=1e-3)
"""

from . import data, datasets, functional, init, optim, transforms
from .module import Module, Parameter
from .modules import *  # noqa: F403
from .modules import __all__ as _modules_all

__all__ = [
    "Module",
    "Parameter",
    "data",
    "datasets",
    "functional",
    "init",
    "models",
    "optim",
    "transforms",
    *_modules_all,
]

from . import models  # (the lecture's models are built from the layers above)
