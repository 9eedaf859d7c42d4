"""Exception types shared by the engine."""

from __future__ import annotations


class ShapeError(ValueError, RuntimeError):
    """Operands whose shapes do not fit (matmul, broadcasting, reshape, cat, ...).

    PyTorch raises RuntimeError for these and NumPy raises ValueError; this is
    both, so code written for either catches it.
    """
