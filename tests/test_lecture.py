"""The mission's acceptance test: PyTorch's quickstart runs on this engine with only
its import lines changed, and the ``autodiff`` command learns the real bundled digits."""

from __future__ import annotations

import itertools
import re
import runpy

import numpy as np
import pytest
from synthetic_mnist import learnable_images, write_dataset

import autodiff
from autodiff_cli import commands as cli

# PyTorch's "Quickstart" tutorial (pytorch.org/tutorials/beginner/basics/quickstart_tutorial),
# its code cells in order.  Only the import lines differ, as API.md says:
#     import torch                                  -> import autodiff as torch
#     from torch import nn                          -> import nn
#     from torch.utils.data import DataLoader       -> from nn.data import DataLoader
#     from torchvision import datasets              -> from nn import datasets
#     from torchvision.transforms import ToTensor   -> from nn.transforms import ToTensor
LECTURE = """
import autodiff as torch
import nn
from nn.data import DataLoader
from nn import datasets
from nn.transforms import ToTensor

# Download training data from open datasets.
training_data = datasets.FashionMNIST(
    root="data",
    train=True,
    download=True,
    transform=ToTensor(),
)

# Download test data from open datasets.
test_data = datasets.FashionMNIST(
    root="data",
    train=False,
    download=True,
    transform=ToTensor(),
)

batch_size = 64

# Create data loaders.
train_dataloader = DataLoader(training_data, batch_size=batch_size)
test_dataloader = DataLoader(test_data, batch_size=batch_size)

for X, y in test_dataloader:
    print(f"Shape of X [N, C, H, W]: {X.shape}")
    print(f"Shape of y: {y.shape} {y.dtype}")
    break

device = torch.accelerator.current_accelerator().type if torch.accelerator.is_available() else "cpu"
print(f"Using {device} device")

# Define model
class NeuralNetwork(nn.Module):
    def __init__(self):
        super().__init__()
        self.flatten = nn.Flatten()
        self.linear_relu_stack = nn.Sequential(
            nn.Linear(28*28, 512),
            nn.ReLU(),
            nn.Linear(512, 512),
            nn.ReLU(),
            nn.Linear(512, 10)
        )

    def forward(self, x):
        x = self.flatten(x)
        logits = self.linear_relu_stack(x)
        return logits

model = NeuralNetwork().to(device)
print(model)

loss_fn = nn.CrossEntropyLoss()
optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)

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
    print(f"Test Error: \\n Accuracy: {(100*correct):>0.1f}%, Avg loss: {test_loss:>8f} \\n")

epochs = 5
for t in range(epochs):
    print(f"Epoch {t+1}\\n-------------------------------")
    train(train_dataloader, model, loss_fn, optimizer)
    test(test_dataloader, model, loss_fn)
print("Done!")

torch.save(model.state_dict(), "model.pth")
print("Saved PyTorch Model State to model.pth")

model = NeuralNetwork().to(device)
model.load_state_dict(torch.load("model.pth", weights_only=True))

classes = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
]

model.eval()
x, y = test_data[0][0], test_data[0][1]
with torch.no_grad():
    x = x.to(device)
    pred = model(x)
    predicted, actual = classes[pred[0].argmax(0)], classes[y]
    print(f'Predicted: "{predicted}", Actual: "{actual}"')
"""


def test_the_lectures_quickstart_runs_with_only_its_imports_changed(tmp_path, monkeypatch, capsys):
    # torchvision's layout under root="data"; download=True must find the files present
    # (the mirrors point nowhere, so any attempt to fetch would fail the test).
    write_dataset(tmp_path / "data", n_train=640, n_test=192, gz=True)
    monkeypatch.setenv("AUTODIFF_FASHION_MNIST_MIRRORS", "http://127.0.0.1:9/")
    monkeypatch.chdir(tmp_path)
    script = tmp_path / "quickstart.py"
    script.write_text(LECTURE)
    namespace = runpy.run_path(str(script), run_name="__main__")
    out = capsys.readouterr().out
    print(out)

    assert "Shape of X [N, C, H, W]: (64, 1, 28, 28)" in out
    assert "Shape of y: (64,) int64" in out
    assert "Using cpu device" in out
    assert "(0): Linear(in_features=784, out_features=512, bias=True)" in out
    assert out.count("-------------------------------") == 5
    losses = [float(v) for v in re.findall(r"^loss: (\d+\.\d{6})  \[   64/  640\]$", out, re.M)]
    assert len(losses) == 5, out
    tests = re.findall(r"Test Error: \n Accuracy: (\d+\.\d)%, Avg loss: (\d+\.\d{6}) \n", out)
    assert len(tests) == 5
    test_losses = [float(loss) for _, loss in tests]
    # The same first batch every epoch (no shuffling): its loss falls, as does the test loss.
    assert all(b < a for a, b in itertools.pairwise(losses)), losses
    assert all(b < a for a, b in itertools.pairwise(test_losses)), test_losses
    assert losses[0] == pytest.approx(np.log(10), abs=0.15)
    assert "Done!" in out and "Saved PyTorch Model State to model.pth" in out

    # the saved file holds the state dict under PyTorch's keys and shapes
    state = autodiff.load(str(tmp_path / "model.pth"), weights_only=True)
    assert sorted(state) == sorted(
        f"linear_relu_stack.{i}.{p}" for i in (0, 2, 4) for p in ("weight", "bias")
    )
    assert np.shape(state["linear_relu_stack.0.weight"]) == (512, 784)
    trained = namespace["model"].state_dict()
    for key, value in state.items():
        np.testing.assert_array_equal(np.asarray(trained[key].data), np.asarray(value))

    # the final prediction names the classes; "Actual" is the first test label's name
    _, labels = learnable_images(192, seed=1)
    match = re.search(r'^Predicted: "(.+)", Actual: "(.+)"$', out, re.M)
    assert match is not None
    assert match.group(2) == namespace["classes"][labels[0]]
    assert match.group(1) in namespace["classes"]


# -- the real-data assertion ---------------------------------------------------------------
def final_accuracy(out: str) -> float:
    rows = [line for line in out.splitlines() if line.strip()[:1].isdigit() and "|" in line]
    return float(rows[-1].split("|")[3].strip().rstrip("%"))


@pytest.mark.slow
@pytest.mark.parametrize(
    ("model", "flags"),
    [
        ("mlp", ["--optimizer", "adam", "--lr", "2e-3", "--epochs", "5"]),
        ("cnn", ["--optimizer", "adam", "--lr", "2e-3", "--epochs", "8"]),
    ],
)
def test_autodiff_train_learns_the_real_digits(tmp_path, capsys, model, flags):
    """``autodiff train --dataset digits`` (seeded) reaches >= 95% on the 360 held-out digits."""
    status = cli.main(
        ["train", "--dataset", "digits", "--model", model, "--seed", "0", "--no-progress"]
        + flags
        + ["--save", str(tmp_path / f"{model}.pth")]
    )
    out = capsys.readouterr().out
    assert status == 0
    accuracy = final_accuracy(out)
    assert accuracy >= 95.0, out
    # and the saved model, evaluated on its own, agrees
    assert cli.main(["evaluate", "--model-path", str(tmp_path / f"{model}.pth")]) == 0
    assert f"Accuracy: {accuracy:.1f}%" in capsys.readouterr().out
