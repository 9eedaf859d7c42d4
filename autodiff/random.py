"""One seeded generator drives everything random (``manual_seed``)."""

from __future__ import annotations

import numpy as np


class Generator:
    """A source of random numbers, as ``torch.Generator``: ``manual_seed``, ``seed``.

    Wraps a NumPy ``Generator`` (PCG64).  Streams differ from PyTorch's: the same
    seed gives the same numbers here on every run, not PyTorch's numbers.
    """

    def __init__(self, device="cpu"):
        self._seed = None
        self.numpy_generator = np.random.default_rng()

    def manual_seed(self, seed: int) -> Generator:
        self._seed = int(seed)
        self.numpy_generator = np.random.default_rng(self._seed)
        return self

    def seed(self) -> int:
        seed = int(np.random.SeedSequence().entropy % (2**63))
        self.manual_seed(seed)
        return seed

    def initial_seed(self):
        return self._seed

    def get_state(self):
        return self.numpy_generator.bit_generator.state

    def set_state(self, state):
        self.numpy_generator.bit_generator.state = state
        return self


_default = Generator()


def default_generator() -> Generator:
    return _default


def manual_seed(seed: int) -> Generator:
    """Seed the global generator: the same seed gives the same run."""
    return _default.manual_seed(seed)


def seed() -> int:
    return _default.seed()


def initial_seed():
    return _default.initial_seed()


def numpy_rng(generator=None) -> np.random.Generator:
    return (generator or _default).numpy_generator
