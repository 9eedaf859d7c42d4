"""Anomaly mode: find the operation whose gradient first turns NaN or infinite.

    with autodiff.detect_anomaly():
        loss.backward()      # RuntimeError naming the op, and where its forward ran

While it is on, every recorded node keeps the stack of the code that created it,
so the error can point at the line in the forward pass; the check and the stack
cost time, so turn it on only to hunt a bug.
"""

from __future__ import annotations

from .function import _anomaly_enabled


def is_anomaly_enabled() -> bool:
    return _anomaly_enabled[0]


class detect_anomaly:
    """Context manager (and decorator) that turns anomaly detection on."""

    def __init__(self, check_nan: bool = True):
        self.check_nan = check_nan

    def __enter__(self):
        self._previous = _anomaly_enabled[0]
        _anomaly_enabled[0] = self.check_nan
        return self

    def __exit__(self, *exc_info):
        _anomaly_enabled[0] = self._previous
        return False

    def __call__(self, func):
        import functools

        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            with detect_anomaly(self.check_nan):
                return func(*args, **kwargs)

        return wrapper


class set_detect_anomaly(detect_anomaly):
    """``set_detect_anomaly(True)`` turns it on now; also a context manager."""

    def __init__(self, mode: bool, check_nan: bool = True):
        super().__init__(check_nan and mode)
        self._previous = _anomaly_enabled[0]
        _anomaly_enabled[0] = bool(mode)

    def __enter__(self):
        return self
