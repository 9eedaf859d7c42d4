"""``autodiff.accelerator``: which accelerator is there (none: this engine runs on NumPy).

Mirrors ``torch.accelerator`` so that the lecture's device selection runs as is::

    device = (autodiff.accelerator.current_accelerator().type
              if autodiff.accelerator.is_available() else "cpu")
"""

from __future__ import annotations


def is_available() -> bool:
    """False: autodiff computes with NumPy on the CPU."""
    return False


def current_accelerator(check_available: bool = False):
    """None, as PyTorch answers when no accelerator is available."""
    return None


def device_count() -> int:
    return 0
