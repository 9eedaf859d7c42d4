"""The lecture's MLP: a training epoch, a test pass, and the NumPy floor.

The model is PyTorch's FashionMNIST quickstart::

    Flatten -> Linear(784, 512) -> ReLU -> Linear(512, 512) -> ReLU -> Linear(512, 10)
    CrossEntropyLoss, SGD(lr=1e-3)

One epoch is 60,000 synthetic FashionMNIST-shaped images in 938 batches of 64,
taken as slices of one pre-loaded float32 array (so only the model, the loss,
backward and the optimizer are timed).  ``--quick`` trains on fewer batches and
scales the time to a full epoch.  Every engine starts from the same weights
(PyTorch's initialisation, copied through NumPy arrays).

The NumPy floor does the same matrix work by hand: the three GEMMs forward, the
five GEMMs backward (no gradient for the input images), ReLU masks, a fused
softmax-cross-entropy gradient and the SGD update, with no graph at all.
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from .common import import_torch, interleaved, now

N_IMAGES = 60_000
SIZES = (784, 512, 512, 10)
LEARNING_RATE = 1e-3


def synthetic_fashion_mnist(n=N_IMAGES, seed=0):
    """uint8 images (n, 28, 28) and int64 labels (n,), shaped like FashionMNIST."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, size=n).astype(np.int64)
    return images, labels


def initial_weights(seed=0):
    """PyTorch's default initialisation as a state dict of NumPy arrays.

    Drawn with NumPy (Kaiming-uniform bounds 1/sqrt(fan_in) for weights and
    biases, which is what PyTorch's Linear defaults come to), so that every
    engine, PyTorch included, starts from exactly these arrays.
    """
    rng = np.random.default_rng(seed)
    state = {}
    for index, (fan_in, fan_out) in enumerate(itertools.pairwise(SIZES)):
        bound = 1 / math.sqrt(fan_in)
        key = f"{2 * index + 1}"  # Sequential(Flatten, Linear, ReLU, Linear, ReLU, Linear)
        state[f"{key}.weight"] = rng.uniform(-bound, bound, (fan_out, fan_in)).astype(np.float32)
        state[f"{key}.bias"] = rng.uniform(-bound, bound, fan_out).astype(np.float32)
    return state


def batches(images, labels, batch_size, n_batches=None):
    """Pre-loaded (x, y) batches: float32 in [0, 1] of shape (B, 1, 28, 28), int64 labels."""
    x = (images.astype(np.float32) / 255.0)[:, None]
    starts = range(0, len(images), batch_size)
    if n_batches is not None:
        starts = list(starts)[:n_batches]
    return [(x[s : s + batch_size], labels[s : s + batch_size]) for s in starts]


# -- this engine ---------------------------------------------------------------
def autodiff_model(state):
    """The quickstart model built with ``nn`` from the given weights."""
    import autodiff
    import nn

    model = nn.Sequential(
        nn.Flatten(),
        nn.Linear(784, 512),
        nn.ReLU(),
        nn.Linear(512, 512),
        nn.ReLU(),
        nn.Linear(512, 10),
    )
    model.load_state_dict({k: autodiff.tensor(v) for k, v in state.items()})
    optim = getattr(autodiff, "optim", None) or nn.optim
    optimizer = optim.SGD(model.parameters(), lr=LEARNING_RATE)
    return model, nn.CrossEntropyLoss(), optimizer


def autodiff_batches(data):
    """The pre-loaded batches as tensors sharing the arrays (like torch.from_numpy)."""
    import autodiff

    return [(autodiff.from_numpy(x), autodiff.from_numpy(y)) for x, y in data]


def autodiff_epoch(model, loss_fn, optimizer, data):
    model.train()
    start = now()
    for x, y in data:
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    return now() - start


def autodiff_test(model, loss_fn, data):
    import autodiff

    model.eval()
    start = now()
    correct = total = 0.0
    with autodiff.no_grad():
        for x, y in data:
            pred = model(x)
            total += loss_fn(pred, y).item()
            correct += (pred.argmax(1) == y).float().sum().item()
    return now() - start


# -- PyTorch -----------------------------------------------------------------------
def torch_model(state):
    torch = import_torch()
    model = torch.nn.Sequential(
        torch.nn.Flatten(),
        torch.nn.Linear(784, 512),
        torch.nn.ReLU(),
        torch.nn.Linear(512, 512),
        torch.nn.ReLU(),
        torch.nn.Linear(512, 10),
    )
    model.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in state.items()})
    optimizer = torch.optim.SGD(model.parameters(), lr=LEARNING_RATE)
    return model, torch.nn.CrossEntropyLoss(), optimizer


def torch_batches(data):
    torch = import_torch()
    return [(torch.from_numpy(x), torch.from_numpy(y)) for x, y in data]


def torch_epoch(model, loss_fn, optimizer, data):
    model.train()
    start = now()
    for x, y in data:
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    return now() - start


def torch_test(model, loss_fn, data):
    torch = import_torch()
    model.eval()
    start = now()
    correct = total = 0.0
    with torch.no_grad():
        for x, y in data:
            pred = model(x)
            total += loss_fn(pred, y).item()
            correct += (pred.argmax(1) == y).type(torch.float).sum().item()
    return now() - start


# -- the NumPy floor ---------------------------------------------------------------
class NumpyMLP:
    """The same network, forward, backward and SGD written by hand in NumPy."""

    def __init__(self, state):
        self.weights = [state[f"{k}.weight"].copy() for k in ("1", "3", "5")]
        self.biases = [state[f"{k}.bias"].copy() for k in ("1", "3", "5")]

    def forward(self, x):
        """Logits and the activations backward needs."""
        activations = [x.reshape(len(x), -1)]
        for layer, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            z = activations[-1] @ w.T + b
            if layer < 2:
                np.maximum(z, 0, out=z)
            activations.append(z)
        return activations

    def step(self, x, y, lr=LEARNING_RATE):
        activations = self.forward(x)
        logits = activations[-1]
        # softmax - one_hot, divided by the batch size: dL/dlogits of the mean loss
        shifted = logits - logits.max(axis=1, keepdims=True)
        probabilities = np.exp(shifted)
        probabilities /= probabilities.sum(axis=1, keepdims=True)
        probabilities[np.arange(len(y)), y] -= 1
        grad = probabilities / len(y)
        for layer in (2, 1, 0):
            w = self.weights[layer]
            grad_w = grad.T @ activations[layer]
            grad_b = grad.sum(axis=0)
            if layer > 0:
                grad = grad @ w
                grad *= activations[layer] > 0  # ReLU's mask (its output is > 0 where it passes)
            w -= lr * grad_w
            self.biases[layer] -= lr * grad_b

    def test(self, x, y):
        logits = self.forward(x)[-1]
        shifted = logits - logits.max(axis=1, keepdims=True)
        loss = np.log(np.exp(shifted).sum(axis=1)) - shifted[np.arange(len(y)), y]
        return float(loss.mean()), int((logits.argmax(1) == y).sum())


def numpy_epoch(model, data):
    start = now()
    for x, y in data:
        model.step(x, y)
    return now() - start


def numpy_test(model, data):
    start = now()
    for x, y in data:
        model.test(x, y)
    return now() - start


def have_nn() -> bool:
    try:
        import nn  # noqa: F401
    except ImportError:
        return False
    return True


def mlp_cases(state, data, test_data, scale, test_scale):
    """One case per engine: a training epoch and a test pass, scaled to the full sets."""
    ours = autodiff_model(state)
    a_data, a_test = autodiff_batches(data), autodiff_batches(test_data)
    cases = {
        "autodiff": lambda: {
            "train": autodiff_epoch(*ours, a_data) * scale,
            "test": autodiff_test(ours[0], ours[1], a_test) * test_scale,
        }
    }
    if import_torch() is not None:
        theirs = torch_model(state)
        t_data, t_test = torch_batches(data), torch_batches(test_data)
        cases["torch"] = lambda: {
            "train": torch_epoch(*theirs, t_data) * scale,
            "test": torch_test(theirs[0], theirs[1], t_test) * test_scale,
        }
    floor = NumpyMLP(state)
    cases["numpy"] = lambda: {
        "train": numpy_epoch(floor, data) * scale,
        "test": numpy_test(floor, test_data) * test_scale,
    }
    return cases


def run(table, repeats=3, quick=False, batch_sizes=(64,)):
    """Training epoch and test pass rows for each batch size."""
    if not have_nn():
        print("(mlp: skipped, the nn package is not available yet)")
        return
    images, labels = synthetic_fashion_mnist()
    test_images, test_labels = synthetic_fashion_mnist(10_000, seed=1)
    state = initial_weights()
    for batch_size in batch_sizes:
        full = math.ceil(N_IMAGES / batch_size)
        n_batches = max(1, full // 8) if quick else None
        data = batches(images, labels, batch_size, n_batches)
        test_data = batches(test_images, test_labels, batch_size, n_batches)
        scale = full / len(data)
        test_scale = math.ceil(10_000 / batch_size) / len(test_data)
        medians = interleaved(mlp_cases(state, data, test_data, scale, test_scale), repeats)
        label = f"batch {batch_size}" + (" (scaled from 1/8 epoch)" if quick else "")
        table.add(
            f"MLP training epoch, {label}",
            medians["autodiff"]["train"],
            medians.get("torch", {}).get("train"),
            medians["numpy"]["train"],
            target="<= 1.0x PyTorch" if batch_size == 64 else "",
        )
        table.add(
            f"MLP test pass (10,000 images, no_grad), {label}",
            medians["autodiff"]["test"],
            medians.get("torch", {}).get("test"),
            medians["numpy"]["test"],
            target="<= 1.1x PyTorch" if batch_size == 64 else "",
        )
