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
        """Seed with any 64-bit integer, as PyTorch: -2**63 .. 2**64 - 1 (a negative seed
        is read as its unsigned 64-bit pattern, so ``initial_seed()`` of -1 is 2**64 - 1)."""
        self._seed = _as_seed(seed)
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


def _as_seed(seed) -> int:
    value = int(seed)  # as torch.manual_seed: 1.7 -> 1, "x" -> ValueError
    if not -(2**63) <= value < 2**64:
        raise ValueError(
            f"manual_seed: the seed must be a 64-bit integer (-2**63 .. 2**64 - 1), got {value}"
        )
    return value % 2**64


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
