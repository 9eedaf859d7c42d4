"""The lecture's code end to end: FashionMNIST files, ToTensor, DataLoader, train + test.

Synthetic FashionMNIST-shaped data (uint8 28x28 images, labels 0..9) is written
in torchvision's layout (``root/FashionMNIST/raw/*-idx?-ubyte``), read by
``nn.datasets.FashionMNIST(transform=ToTensor())`` and iterated by
``nn.data.DataLoader(batch_size=64)`` exactly as the quickstart does.

PyTorch's side uses ``torch.utils.data.DataLoader`` over a Dataset that does
what torchvision's FashionMNIST + ToTensor do per sample, minus the PIL image
round trip (torchvision is not a dependency here), so it is a slightly
*faster* baseline than the real quickstart.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from . import bench_mlp
from .common import import_torch, interleaved, now


def write_idx(path: Path, array: np.ndarray) -> None:
    """An uncompressed IDX file (the MNIST format) of uint8 values."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(
        int(n).to_bytes(4, "big") for n in array.shape
    )
    path.write_bytes(header + np.ascontiguousarray(array, dtype=np.uint8).tobytes())


def write_fashion_mnist(root: Path, n_train: int, n_test: int) -> None:
    raw = root / "FashionMNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for prefix, n, seed in (("train", n_train, 0), ("t10k", n_test, 1)):
        images, labels = bench_mlp.synthetic_fashion_mnist(n, seed)
        write_idx(raw / f"{prefix}-images-idx3-ubyte", images)
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", labels.astype(np.uint8))


def _lecture_loops(model, loss_fn, optimizer, train_loader, test_loader, no_grad):
    """The quickstart's train() and test() loops, for either engine."""
    start = now()
    model.train()
    for batch, (x, y) in enumerate(train_loader):
        pred = model(x)
        loss = loss_fn(pred, y)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        if batch % 100 == 0:
            loss.item()
    model.eval()
    test_loss = correct = 0.0
    with no_grad():
        for x, y in test_loader:
            pred = model(x)
            test_loss += loss_fn(pred, y).item()
            correct += (pred.argmax(1) == y).float().sum().item()
    return now() - start


def autodiff_case(root, state, batch_size):
    import autodiff
    from nn import datasets
    from nn.data import DataLoader
    from nn.transforms import ToTensor

    training_data = datasets.FashionMNIST(
        root=root, train=True, download=False, transform=ToTensor()
    )
    test_data = datasets.FashionMNIST(root=root, train=False, download=False, transform=ToTensor())

    def run():
        model, loss_fn, optimizer = bench_mlp.autodiff_model(state)
        train_loader = DataLoader(training_data, batch_size=batch_size)
        test_loader = DataLoader(test_data, batch_size=batch_size)
        seconds = _lecture_loops(
            model, loss_fn, optimizer, train_loader, test_loader, autodiff.no_grad
        )
        return {"lecture": seconds}

    return run


def torch_case(root, state, batch_size):
    torch = import_torch()
    raw = Path(root) / "FashionMNIST" / "raw"

    def read(name):
        data = (raw / name).read_bytes()
        ndim = data[3]
        shape = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
        return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(shape)

    class FashionMNIST(torch.utils.data.Dataset):
        """torchvision's FashionMNIST + ToTensor per sample (without the PIL step)."""

        def __init__(self, train):
            prefix = "train" if train else "t10k"
            self.data = torch.from_numpy(read(f"{prefix}-images-idx3-ubyte").copy())
            self.targets = torch.from_numpy(read(f"{prefix}-labels-idx1-ubyte").astype(np.int64))

        def __len__(self):
            return len(self.data)

        def __getitem__(self, index):
            img, target = self.data[index], int(self.targets[index])
            # torchvision's ToTensor: HWC uint8 -> CHW float32 / 255
            img = img.view(28, 28, 1).permute(2, 0, 1).contiguous().float().div(255)
            return img, target

    training_data, test_data = FashionMNIST(True), FashionMNIST(False)

    def run():
        model, loss_fn, optimizer = bench_mlp.torch_model(state)
        train_loader = torch.utils.data.DataLoader(training_data, batch_size=batch_size)
        test_loader = torch.utils.data.DataLoader(test_data, batch_size=batch_size)
        seconds = _lecture_loops(
            model, loss_fn, optimizer, train_loader, test_loader, torch.no_grad
        )
        return {"lecture": seconds}

    return run


def run(table, repeats=3, quick=False, batch_size=64):
    if not bench_mlp.have_nn():
        print("(lecture: skipped, the nn package is not available yet)")
        return
    n_train, n_test = (7_500, 1_250) if quick else (60_000, 10_000)
    scale = 60_000 / n_train
    state = bench_mlp.initial_weights()
    with tempfile.TemporaryDirectory() as root:
        write_fashion_mnist(Path(root), n_train, n_test)
        cases = {"autodiff": autodiff_case(root, state, batch_size)}
        if import_torch() is not None:
            cases["torch"] = torch_case(root, state, batch_size)
        medians = interleaved(cases, repeats)
    label = f"batch {batch_size}" + (" (scaled from 1/8 of the data)" if quick else "")
    table.add(
        f"lecture end to end (DataLoader + FashionMNIST + ToTensor, train + test), {label}",
        medians["autodiff"]["lecture"] * scale,
        medians["torch"]["lecture"] * scale if "torch" in medians else None,
        target="<= 1.0x PyTorch",
    )
