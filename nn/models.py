"""The lecture's models: the quickstart's MLP (``NeuralNetwork``) and a small CNN.

model = nn.models.NeuralNetwork()          # Flatten, Linear 784-512, ReLU, ..., Linear 512-10
model = nn.models.build_model("cnn", 28)   # by name, as ``autodiff train --model cnn`` does
"""

from __future__ import annotations

import nn  # nn/__init__ imports this module last, so nn.Module and the layers exist

MODELS = ("mlp", "cnn")


class NeuralNetwork(nn.Module):
    """The lecture's MLP: Flatten, Linear(in, 512), ReLU, Linear(512, 512), ReLU, Linear(512, 10).

    ``in_features`` is 28 * 28 for (Fashion-)MNIST and 8 * 8 for Digits.  Its state dict
    has the lecture's keys (``linear_relu_stack.0.weight``, ...).
    """

    def __init__(self, in_features: int = 28 * 28, num_classes: int = 10):
        super().__init__()
        self.flatten = nn.Flatten()
        self.linear_relu_stack = nn.Sequential(
            nn.Linear(in_features, 512),
            nn.ReLU(),
            nn.Linear(512, 512),
            nn.ReLU(),
            nn.Linear(512, num_classes),
        )

    def forward(self, x):
        x = self.flatten(x)
        logits = self.linear_relu_stack(x)
        return logits


class ConvNet(nn.Module):
    """A small CNN: [Conv 3x3 (pad 1), ReLU, MaxPool 2] x 2 (1 -> 16 -> 32 channels), Linear -> 10.

    Shapes for a 28x28 input: (N,1,28,28) -> (N,16,14,14) -> (N,32,7,7) -> (N,1568) -> (N,10);
    for 8x8 Digits: (N,1,8,8) -> (N,16,4,4) -> (N,32,2,2) -> (N,128) -> (N,10).
    """

    def __init__(self, image_size: int = 28, num_classes: int = 10):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(16, 32, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.flatten = nn.Flatten()
        side = image_size // 4
        self.classifier = nn.Linear(32 * side * side, num_classes)

    def forward(self, x):
        return self.classifier(self.flatten(self.features(x)))


def build_model(name: str, image_size: int = 28) -> nn.Module:
    """The lecture's MLP ("mlp") or the small CNN ("cnn") for square images of side ``image_size``."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; expected one of {', '.join(MODELS)}")
    if name == "mlp":
        return NeuralNetwork(in_features=image_size * image_size)
    return ConvNet(image_size=image_size)
