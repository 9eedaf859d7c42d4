"""Grad modes: whether operations are recorded into the computation graph.

``no_grad``, ``enable_grad`` and ``set_grad_enabled`` work as context managers
and as decorators, like PyTorch's.  The flag lives in a one-element list so that
the hot path (``Function.apply``) reads it with a single index.
"""

from __future__ import annotations

import functools

# One flag per process, as in a single-threaded teaching setting; a list so that
# importers share the same mutable cell.
_grad_enabled = [True]


def is_grad_enabled() -> bool:
    """Return True when operations are being recorded for backward."""
    return _grad_enabled[0]


class _GradMode:
    """Base for the grad-mode context managers; also usable as a decorator."""

    _mode: bool = True

    def __enter__(self):
        self._previous = _grad_enabled[0]
        _grad_enabled[0] = self._mode
        return self

    def __exit__(self, *exc_info):
        _grad_enabled[0] = self._previous
        return False

    def __call__(self, func):
        mode = self._mode

        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            previous = _grad_enabled[0]
            _grad_enabled[0] = mode
            try:
                return func(*args, **kwargs)
            finally:
                _grad_enabled[0] = previous

        return wrapper


class no_grad(_GradMode):
    """Disable graph recording inside a ``with`` block or a decorated function.

    Example::

        with autodiff.no_grad():
            w -= lr * w.grad          # an update that is not part of the graph
    """

    _mode = False


class enable_grad(_GradMode):
    """Re-enable graph recording, for example inside a ``no_grad`` block."""

    _mode = True


class set_grad_enabled(_GradMode):
    """Set recording on or off: ``set_grad_enabled(False)`` acts like ``no_grad``.

    Like PyTorch's, it takes effect immediately when called, so both
    ``set_grad_enabled(False)`` as a statement and ``with set_grad_enabled(mode):``
    work.
    """

    def __init__(self, mode: bool):
        self._mode = bool(mode)
        self._previous = _grad_enabled[0]
        _grad_enabled[0] = self._mode

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        _grad_enabled[0] = self._previous
        return False

    def __call__(self, func):
        # Used as a decorator: undo the immediate effect of __init__.
        _grad_enabled[0] = self._previous
        return super().__call__(func)


class inference_mode(no_grad):
    """Alias of ``no_grad`` (PyTorch's faster variant; here they are the same)."""

    def __init__(self, mode: bool = True):
        self._mode = not mode
