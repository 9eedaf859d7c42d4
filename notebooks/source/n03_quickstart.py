"""Cells of notebooks/03_quickstart.ipynb (built by notebooks/build.py)."""

CELLS = [
    (
        "markdown",
        r"""
# 3. The quickstart on our engine

**What this notebook teaches.** The lecture's PyTorch code (PyTorch's
*Quickstart* tutorial: data, an MLP, the training and test loops, saving and
loading the weights) runs on `autodiff` with only its **import lines changed**.
Then we look inside:

1. the loss curve and the test accuracy per epoch;
2. a confusion matrix: which classes are mistaken for which;
3. a grid of test images with predicted and true labels;
4. the computation graph of one training step, with one cluster per `nn.Module`.

**Data.** The lecture uses FashionMNIST.  If its files are in `data/FashionMNIST/raw/`
(where torchvision puts them), this notebook uses them; otherwise it uses the
bundled **Digits** set (1,797 handwritten digits of 8x8 pixels, shipped with the
package), so that it runs with no network.
""",
    ),
    (
        "code",
        r"""
# Setup.  Opened from a clone without `pip install -e .`?  Make the checkout importable.
import importlib.util
import os
import sys
import tempfile
from pathlib import Path

if importlib.util.find_spec("autodiff") is None and (Path.cwd().parent / "autodiff").is_dir():
    sys.path.insert(0, str(Path.cwd().parent))

import matplotlib.pyplot as plt
import numpy as np

import visualize

FAST = os.environ.get("AUTODIFF_NOTEBOOK_FAST") == "1"  # the test suite sets it: shorter training
""",
    ),
    (
        "markdown",
        r"""
## The lecture's code

The five imports of the lecture, and what they become:

| PyTorch | here |
| --- | --- |
| `import torch` | `import autodiff as torch` |
| `from torch import nn` | `import nn` |
| `from torch.utils.data import DataLoader` | `from nn.data import DataLoader` |
| `from torchvision import datasets` | `from nn import datasets` |
| `from torchvision.transforms import ToTensor` | `from nn.transforms import ToTensor` |

Everything after the imports is the lecture's code.  The few places where this
notebook departs from it say so in a comment (`# here:`).
""",
    ),
    (
        "code",
        r"""
import autodiff as torch
import nn
from nn import datasets
from nn.data import DataLoader
from nn.transforms import ToTensor

generator = torch.manual_seed(0)  # here: the same numbers on every run
""",
    ),
    (
        "code",
        r"""
try:
    # the lecture: download=True; here: no network needed, so only files already on disk
    training_data = datasets.FashionMNIST(root="data", train=True, download=False, transform=ToTensor())
    test_data = datasets.FashionMNIST(root="data", train=False, download=False, transform=ToTensor())
    if FAST:  # here: the test suite trains on a slice
        from nn.data import Subset

        training_data = Subset(training_data, range(6000))
except datasets.DatasetNotFoundError as error:
    print(error)
    print("-> using the bundled Digits data set instead")
    from nn.transforms import Compose, Normalize

    # Digits pixels are 0..16: ToTensor maps them to [0, 16/255], Normalize rescales to [0, 1]
    digits_transform = Compose([ToTensor(), Normalize((0.0,), (16 / 255,))])
    training_data = datasets.Digits(train=True, transform=digits_transform)
    test_data = datasets.Digits(train=False, transform=digits_transform)

classes = test_data.classes
print(f"{len(training_data)} training and {len(test_data)} test images; classes: {classes}")
""",
    ),
    (
        "code",
        r"""
batch_size = 64

# Create data loaders.
train_dataloader = DataLoader(training_data, batch_size=batch_size)
test_dataloader = DataLoader(test_data, batch_size=batch_size)

for X, y in test_dataloader:
    print(f"Shape of X [N, C, H, W]: {X.shape}")
    print(f"Shape of y: {y.shape} {y.dtype}")
    break
""",
    ),
    (
        "code",
        r"""
device = torch.accelerator.current_accelerator().type if torch.accelerator.is_available() else "cpu"
print(f"Using {device} device")

n_pixels = X.shape[2] * X.shape[3]  # here: 28*28 for FashionMNIST, 8*8 for Digits


# Define model
class NeuralNetwork(nn.Module):
    def __init__(self):
        super().__init__()
        self.flatten = nn.Flatten()
        self.linear_relu_stack = nn.Sequential(
            nn.Linear(n_pixels, 512),
            nn.ReLU(),
            nn.Linear(512, 512),
            nn.ReLU(),
            nn.Linear(512, 10),
        )

    def forward(self, x):
        x = self.flatten(x)
        logits = self.linear_relu_stack(x)
        return logits


model = NeuralNetwork().to(device)
print(model)
print("parameters:", sum(p.numel() for p in model.parameters()))
""",
    ),
    (
        "markdown",
        r"""
The lecture trains with `lr=1e-3` for 5 epochs: 4,690 small steps on
FashionMNIST's 60,000 images.  Digits has 1,437 training images, 23 batches per
epoch, so on Digits the notebook takes larger steps (`lr=0.1`) for more epochs.
""",
    ),
    (
        "code",
        r"""
loss_fn = nn.CrossEntropyLoss()
on_digits = isinstance(training_data, datasets.Digits)
learning_rate = 0.1 if on_digits else 1e-3  # here: see above
optimizer = torch.optim.SGD(model.parameters(), lr=learning_rate)

batch_losses = []  # here: kept for the loss curve


def train(dataloader, model, loss_fn, optimizer):
    size = len(dataloader.dataset)
    model.train()
    for batch, (X, y) in enumerate(dataloader):
        X, y = X.to(device), y.to(device)

        # Compute prediction error
        pred = model(X)
        loss = loss_fn(pred, y)

        # Backpropagation
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()

        batch_losses.append(loss.item())  # here
        if batch % 100 == 0:
            loss, current = loss.item(), (batch + 1) * len(X)
            print(f"loss: {loss:>7f}  [{current:>5d}/{size:>5d}]")


def test(dataloader, model, loss_fn):
    size = len(dataloader.dataset)
    num_batches = len(dataloader)
    model.eval()
    test_loss, correct = 0, 0
    with torch.no_grad():
        for X, y in dataloader:
            X, y = X.to(device), y.to(device)
            pred = model(X)
            test_loss += loss_fn(pred, y).item()
            correct += (pred.argmax(1) == y).type(torch.float).sum().item()
    test_loss /= num_batches
    correct /= size
    print(f"Test Error: \n Accuracy: {(100*correct):>0.1f}%, Avg loss: {test_loss:>8f} \n")
    return correct, test_loss  # here: kept for the plots
""",
    ),
    (
        "code",
        r"""
epochs = (4 if FAST else 12) if on_digits else (1 if FAST else 5)  # here: the lecture's 5 on FashionMNIST
test_history = []
for t in range(epochs):
    print(f"Epoch {t+1}\n-------------------------------")
    train(train_dataloader, model, loss_fn, optimizer)
    test_history.append(test(test_dataloader, model, loss_fn))
print("Done!")
""",
    ),
    (
        "code",
        r"""
folder = tempfile.TemporaryDirectory()  # here: a temporary folder, not the notebook's
model_path = Path(folder.name) / "model.pth"
torch.save(model.state_dict(), model_path)
print(f"Saved PyTorch Model State to {model_path.name}")

model = NeuralNetwork().to(device)
model.load_state_dict(torch.load(model_path, weights_only=True))
folder.cleanup()  # here

model.eval()
x, y = test_data[0][0], test_data[0][1]
with torch.no_grad():
    x = x.to(device)
    pred = model(x)
    predicted, actual = classes[pred[0].argmax(0)], classes[y]
    print(f'Predicted: "{predicted}", Actual: "{actual}"')
""",
    ),
    (
        "markdown",
        r"""
## Looking inside

### The loss curve

The training loss of every batch (noisy: each batch is a different sample of
images), and the average test loss and test accuracy after each epoch:
""",
    ),
    (
        "code",
        r"""
accuracies, test_losses = zip(*test_history)
steps_per_epoch = len(train_dataloader)
epoch_ends = steps_per_epoch * np.arange(1, epochs + 1)

fig, axes = plt.subplots(1, 2, figsize=(10, 3.2), layout="constrained")
axes[0].plot(batch_losses, color="0.7", lw=0.8, label="training loss, per batch")
axes[0].plot(epoch_ends, test_losses, "o-", color="C3", label="test loss, per epoch")
axes[0].set_xlabel("training step (batch)")
axes[0].set_ylabel("cross-entropy")
axes[0].legend()
axes[1].plot(np.arange(1, epochs + 1), 100 * np.array(accuracies), "o-")
axes[1].set_xlabel("epoch")
axes[1].set_ylabel("test accuracy (%)")
plt.show()
""",
    ),
    (
        "markdown",
        r"""
### The confusion matrix

Row $i$, column $j$ counts the test images of class $i$ that the model called
class $j$; the diagonal holds the correct answers.
""",
    ),
    (
        "code",
        r"""
images, labels, predictions = [], [], []
model.eval()
with torch.no_grad():
    for X, y in test_dataloader:
        images.append(X.numpy())
        labels.append(y.numpy())
        predictions.append(model(X).argmax(1).numpy())
images, labels, predictions = map(np.concatenate, (images, labels, predictions))

confusion = np.zeros((10, 10), dtype=int)
np.add.at(confusion, (labels, predictions), 1)
print(f"test accuracy: {np.trace(confusion) / confusion.sum():.1%}")

fig, ax = plt.subplots(figsize=(6.5, 5.5))
ax.imshow(confusion, cmap="Blues")
for i in range(10):
    for j in range(10):
        if confusion[i, j]:
            color = "white" if confusion[i, j] > confusion.max() / 2 else "black"
            ax.text(j, i, confusion[i, j], ha="center", va="center", color=color, fontsize=8)
ax.set_xticks(range(10), classes, rotation=45, ha="right")
ax.set_yticks(range(10), classes)
ax.set_xlabel("predicted")
ax.set_ylabel("true")
plt.show()
""",
    ),
    (
        "markdown",
        r"""
### Test images with their predictions

Titles give *predicted (true)*; the model's mistakes are in red, and the grid
starts with them.
""",
    ),
    (
        "code",
        r"""
wrong = np.flatnonzero(predictions != labels)
right = np.flatnonzero(predictions == labels)
shown = np.concatenate([wrong[:8], right[: 32 - min(8, len(wrong))]])

fig, axes = plt.subplots(4, 8, figsize=(12, 6.8), layout="constrained")
for ax, index in zip(axes.flat, shown):
    ax.imshow(images[index, 0], cmap="gray_r")
    ok = predictions[index] == labels[index]
    ax.set_title(
        f"{classes[predictions[index]]}\n({classes[labels[index]]})",
        color="black" if ok else "red",
        fontsize=8,
    )
    ax.axis("off")
plt.show()
""",
    ),
    (
        "markdown",
        r"""
### The graph of one training step

The forward pass records which module ran each operation, and each layer of
`nn.functional` marks the operations it records as one op of the lecture, so
`visualize.draw_graph(loss, params=model)` draws one cluster per module and each
layer as the lecture draws it (`linear`: $y = x W^T + b$; `cross_entropy`:
$L = -\log \mathrm{softmax}(z)_y$), with the parameters named as in
`model.state_dict()` (`keep_values` keeps the values of temporary results, and
`retain_grads` their gradients, for the picture).  A small batch of 4 images keeps
the values readable.  Read it from top to bottom for the forward pass (the input
batch enters `flatten`, which hands the first `linear` a constant: no gradient
flows into the images, so nothing there is recorded or back-propagated), and from
the loss at the bottom back up for the backward pass.
`detail="primitives"` shows what the engine recorded instead: each `linear` is
one fused operation, `Linear`, whose backward is the lecture's three rules
($dL/dx = g W$, $dL/dW = g^T x$, $dL/db = \sum_n g$), and so is the loss,
`CrossEntropy`, whose backward is the lecture's $(s - t)/N$ (notebook 2 derives
it).  The engine fuses them for speed: the transpose, matrix product and bias
addition of `x @ W.T + b`, or softmax, log and the pick of the true class, would
each be an op of its own.  The cell checks these claims on both graphs before
drawing the lecture's.
""",
    ),
    (
        "code",
        r"""
X, y = next(iter(DataLoader(test_data, batch_size=4)))
model.train()
optimizer.zero_grad()
with visualize.keep_values():
    loss = loss_fn(model(X), y)
visualize.retain_grads(loss)  # keep the gradient of every intermediate result, to draw it
loss.backward()


def ops_by_module(graph):
    ops_in = {}
    for op in graph.ops:
        ops_in.setdefault(op.module, []).append(op.name)
    return ops_in


lecture = ops_by_module(visualize.trace_graph(loss, params=model))
recorded = ops_by_module(visualize.trace_graph(loss, params=model, detail="primitives"))
assert lecture["CrossEntropyLoss"] == ["cross_entropy"], lecture
assert lecture["flatten"] == ["flatten"], lecture  # on the images: no gradient, nothing recorded
assert "flatten" not in recorded, recorded
assert recorded["CrossEntropyLoss"] == ["CrossEntropy"], recorded  # one fused op
for path in ("linear_relu_stack.0", "linear_relu_stack.2", "linear_relu_stack.4"):
    assert lecture[path] == ["linear"], lecture
    assert recorded[path] == ["Linear"], recorded  # x W^T + b, one fused op
graph = visualize.trace_graph(loss, params=model)
assert "linear_relu_stack.0" in graph.modules  # a cluster of its own
parameters = {t.label for t in graph.tensors if t.kind == "parameter"}
assert parameters == set(model.state_dict()), parameters  # named as in the state dict
picture = visualize.draw_graph(loss, params=model, rankdir="TB")
assert "rankdir=TB" in picture.source  # top to bottom
picture
""",
    ),
    (
        "markdown",
        r"""
### The same numbers as PyTorch

With PyTorch installed, the lecture's model can be built in both libraries from
**the same initial weights** (a state dict moves between them as NumPy arrays:
same keys, same layouts) and trained on the same batches.  The two loss curves
should then agree to float32 rounding, step by step.
""",
    ),
    (
        "code",
        r"""
try:
    import torch as pytorch
except ImportError:
    print("PyTorch is not installed (pip install torch): comparison skipped")
else:

    class TorchNeuralNetwork(pytorch.nn.Module):  # the lecture's class, in PyTorch
        def __init__(self):
            super().__init__()
            self.flatten = pytorch.nn.Flatten()
            self.linear_relu_stack = pytorch.nn.Sequential(
                pytorch.nn.Linear(n_pixels, 512),
                pytorch.nn.ReLU(),
                pytorch.nn.Linear(512, 512),
                pytorch.nn.ReLU(),
                pytorch.nn.Linear(512, 10),
            )

        def forward(self, x):
            return self.linear_relu_stack(self.flatten(x))

    ours = NeuralNetwork()
    theirs = TorchNeuralNetwork()
    theirs.load_state_dict({k: pytorch.tensor(v.numpy()) for k, v in ours.state_dict().items()})
    ours_optimizer = torch.optim.SGD(ours.parameters(), lr=learning_rate)
    theirs_optimizer = pytorch.optim.SGD(theirs.parameters(), lr=learning_rate)

    ours_losses, theirs_losses = [], []
    for X, y in train_dataloader:  # one epoch, the same batches
        loss = loss_fn(ours(X), y)
        ours_optimizer.zero_grad()
        loss.backward()
        ours_optimizer.step()
        ours_losses.append(loss.item())

        loss = pytorch.nn.functional.cross_entropy(theirs(pytorch.tensor(X.numpy())), pytorch.tensor(y.numpy()))
        theirs_optimizer.zero_grad()
        loss.backward()
        theirs_optimizer.step()
        theirs_losses.append(loss.item())

    weights = ours.state_dict()
    weight_gap = max(np.abs(weights[k].numpy() - v.detach().numpy()).max() for k, v in theirs.state_dict().items())
    print(f"PyTorch {pytorch.__version__}, {len(ours_losses)} training steps")
    print(f"largest loss difference:   {np.abs(np.subtract(ours_losses, theirs_losses)).max():.1e}")
    print(f"largest weight difference: {weight_gap:.1e}")

    fig, ax = plt.subplots(figsize=(6, 3))
    ax.plot(theirs_losses, lw=4, alpha=0.4, label="PyTorch")
    ax.plot(ours_losses, "--", color="k", label="autodiff")
    ax.set_xlabel("training step (batch)")
    ax.set_ylabel("training loss")
    ax.legend()
    plt.show()
""",
    ),
    (
        "markdown",
        r"""
## Exercises

1. Train with the lecture's `lr=1e-3` on Digits for 12 epochs.  What does the loss
   curve look like, and why?  How many epochs does it need to reach the accuracy
   above?
2. Add `shuffle=True` to the training `DataLoader`.  Does the loss curve change?
3. Swap `torch.optim.SGD` for `torch.optim.Adam(model.parameters(), lr=1e-3)`.
   Compare the loss curves and test accuracies.
4. Which two classes does the confusion matrix mix up most?  Show the images of
   those mistakes and say what makes them hard.
5. Count the parameters of the model by hand (weights and biases of each `Linear`)
   and check your number against the one printed above.  Where would you cut to
   make it 10 times smaller, and what happens to the accuracy?
6. Replace the model by a single `nn.Linear(n_pixels, 10)` (notebook 2's layer,
   with a bias).  How much accuracy do the hidden layers buy?
""",
    ),
]
