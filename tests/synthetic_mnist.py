"""Small synthetic FashionMNIST/MNIST files in the real IDX layout, for the data tests.

Each class k is a bright 7x7 block at its own place in a 28x28 image, plus noise, so
that the lecture's MLP learns it within a few steps.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from nn.datasets import write_idx

FILES = {
    True: ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    False: ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def learnable_images(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` uint8 (28, 28) images and their uint8 labels 0..9."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n).astype(np.uint8)
    images = rng.integers(0, 60, (n, 28, 28)).astype(np.uint8)
    for i, k in enumerate(labels):
        row, col = divmod(int(k), 4)
        images[i, 7 * row : 7 * row + 7, 7 * col : 7 * col + 7] = 255
    return images, labels


def write_dataset(
    root, name: str = "FashionMNIST", n_train: int = 256, n_test: int = 128, gz: bool = True
) -> Path:
    """Write the four files to ``root/name/raw/`` (``.gz`` or raw); returns that folder."""
    raw = Path(root) / name / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    suffix = ".gz" if gz else ""
    for train, n, seed in ((True, n_train, 0), (False, n_test, 1)):
        images, labels = learnable_images(n, seed)
        write_idx(raw / (FILES[train][0] + suffix), images)
        write_idx(raw / (FILES[train][1] + suffix), labels)
    return raw
