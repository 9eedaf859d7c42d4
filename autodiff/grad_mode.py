"""Modes: whether operations are recorded, and whether backward hunts anomalies.

Every mode flag of the engine lives here, one set per thread, as in PyTorch:
``no_grad`` in one thread never turns recording off in another, and ``backward()``
(which records its own formulas only when ``create_graph=True``) changes the
mode of the thread that runs it and of no other.  A new thread starts with the
defaults: grad mode on, inference mode and anomaly detection off.

* ``no_grad``, ``enable_grad``, ``set_grad_enabled`` and ``inference_mode`` work
  as context managers and as decorators (of functions and of generator
  functions, where the mode holds inside the generator's body), like PyTorch's.
* ``detect_anomaly`` / ``set_detect_anomaly`` make backward raise at the first
  op whose gradient is NaN or infinite, naming it and the line of its forward.

Example::

    with autodiff.no_grad():
        w -= lr * w.grad          # an update that is not part of the graph
"""

from __future__ import annotations

import copy
import functools
import inspect
import threading

__all__ = [
    "detect_anomaly",
    "enable_grad",
    "inference_mode",
    "is_anomaly_check_nan_enabled",
    "is_anomaly_enabled",
    "is_grad_enabled",
    "is_inference_mode_enabled",
    "no_grad",
    "set_detect_anomaly",
    "set_grad_enabled",
]


class _Modes(threading.local):
    """The mode flags of the calling thread (``__init__`` runs once per thread).

    ``Function.apply`` reads ``modes.grad_enabled`` on every operation: one
    attribute of a ``threading.local``, about 20 ns more than a shared global.
    """

    def __init__(self):
        self.grad_enabled = True
        self.inference_enabled = False
        self.anomaly_enabled = False
        self.anomaly_check_nan = True


modes = _Modes()


def is_grad_enabled() -> bool:
    """Return True when operations are being recorded for backward (in this thread)."""
    return modes.grad_enabled


def is_inference_mode_enabled() -> bool:
    """Return True inside ``inference_mode()`` (in this thread)."""
    return modes.inference_enabled


def is_anomaly_enabled() -> bool:
    """Return True inside ``detect_anomaly()`` (in this thread)."""
    return modes.anomaly_enabled


def is_anomaly_check_nan_enabled() -> bool:
    """Return True when anomaly mode also checks every gradient for NaN and inf."""
    return modes.anomaly_check_nan


# -- one way to set and restore a mode, for all of them ------------------------


class _ModeContext:
    """Base of the mode context managers; also a decorator of functions and generators.

    A subclass says which flags it sets in ``_settings()``; entering saves the
    thread's current values and sets the new ones, leaving restores the saved ones.
    """

    def _settings(self) -> dict:
        raise NotImplementedError

    def __enter__(self):
        self._apply()
        return self

    def __exit__(self, *exc_info):
        self._restore()
        return False

    def _apply(self):
        settings = self._settings()
        self._previous = {name: getattr(modes, name) for name in settings}
        was_on = modes.anomaly_enabled
        for name, value in settings.items():
            setattr(modes, name, value)
        if "anomaly_enabled" in settings:
            _anomaly_mode_switched(was_on, modes.anomaly_enabled)

    def _restore(self):
        was_on = modes.anomaly_enabled
        for name, value in self._previous.items():
            setattr(modes, name, value)
        if "anomaly_enabled" in self._previous:
            _anomaly_mode_switched(was_on, modes.anomaly_enabled)

    def _in_force(self):
        """A guard that sets this mode with a fresh copy of the manager.

        Each decorated call enters its own copy, so that two threads (or a
        recursion) never share one saved previous mode.
        """
        return _InForce(copy.copy(self))

    def __call__(self, func):
        if inspect.isgeneratorfunction(func):
            return _wrap_generator(self, func)

        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            with self._in_force():
                return func(*args, **kwargs)

        return wrapper


def _anomaly_mode_switched(was_on: bool, now_on: bool) -> None:
    """Anomaly mode's creation trace is an observer of Function.apply (see function.py)."""
    from .function import _anomaly_mode_switched as switched

    switched(was_on, now_on)


class _InForce:
    __slots__ = ("manager",)

    def __init__(self, manager):
        self.manager = manager

    def __enter__(self):
        self.manager._apply()

    def __exit__(self, *exc_info):
        self.manager._restore()
        return False


def _wrap_generator(manager: _ModeContext, func):
    """Decorate a generator function: the mode holds while its body runs, and only then.

    Between two ``next()`` calls the caller's own mode is back in force, as in
    PyTorch; the generator's body always runs in the decorator's mode.
    """

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        with manager._in_force():
            generator = func(*args, **kwargs)  # runs no code of the body yet
        method, value = generator.send, None
        while True:
            try:
                with manager._in_force():
                    item = method(value)
            except StopIteration as stop:
                return stop.value
            try:
                value = yield item
                method = generator.send
            except GeneratorExit:
                with manager._in_force():
                    generator.close()
                raise
            except BaseException as error:  # thrown in by the caller: pass it on inside
                method, value = generator.throw, error

    return wrapper


class _NoArgumentMode(_ModeContext):
    """``@no_grad`` and ``@no_grad()`` are both decorators, as in PyTorch."""

    def __new__(cls, func=None):
        if func is None:
            return super().__new__(cls)
        return cls()(func)


class no_grad(_NoArgumentMode):
    """Disable graph recording inside a ``with`` block or a decorated function.

    Results computed under ``no_grad`` do not require grad, even when their inputs
    do.  The mode is per thread.  Example::

        with autodiff.no_grad():
            w -= lr * w.grad          # an update that is not part of the graph
    """

    def _settings(self):
        return {"grad_enabled": False}


class enable_grad(_NoArgumentMode):
    """Re-enable graph recording, for example inside a ``no_grad`` block."""

    def _settings(self):
        return {"grad_enabled": True}


class set_grad_enabled(_ModeContext):
    """Set recording on or off: ``set_grad_enabled(False)`` acts like ``no_grad``.

    Like PyTorch's, it takes effect immediately when called, so both
    ``set_grad_enabled(False)`` as a statement and ``with set_grad_enabled(mode):``
    work; leaving the ``with`` block restores the mode from before the call.
    """

    def __init__(self, mode: bool):
        self.mode = bool(mode)
        self._apply()

    def _settings(self):
        return {"grad_enabled": self.mode}

    def __enter__(self):
        return self  # already in force since __init__

    def __call__(self, func):
        self._restore()  # used as a decorator: undo the immediate effect of __init__
        return super().__call__(func)


class inference_mode(_ModeContext):
    """``no_grad`` that also answers ``is_inference_mode_enabled()`` with True.

    PyTorch's inference mode is a faster ``no_grad`` whose tensors may never join a
    graph later; here it records nothing, exactly as ``no_grad``, and its tensors
    are ordinary tensors (a documented difference).  ``inference_mode(False)``
    turns recording back on.  Usable as ``@inference_mode``, ``@inference_mode()``
    and ``with inference_mode():``.
    """

    def __new__(cls, mode=True):
        if callable(mode) and not isinstance(mode, bool):  # @inference_mode on a function
            return cls()(mode)
        return super().__new__(cls)

    def __init__(self, mode: bool = True):
        self.mode = bool(mode)

    def _settings(self):
        return {"grad_enabled": not self.mode, "inference_enabled": self.mode}


class detect_anomaly(_ModeContext):
    """Context manager (and decorator) that turns anomaly detection on in this thread.

        with autodiff.detect_anomaly():
            loss.backward()      # RuntimeError naming the op, and where its forward ran

    While it is on, every recorded node keeps the stack of the code that created
    it, so the error can point at the line in the forward pass; with
    ``check_nan=True`` (the default) backward checks every gradient for NaN and
    inf.  Both cost time, so turn it on only to hunt a bug.
    """

    def __init__(self, check_nan: bool = True):
        self.check_nan = bool(check_nan)

    def _settings(self):
        return {"anomaly_enabled": True, "anomaly_check_nan": self.check_nan}


class set_detect_anomaly(_ModeContext):
    """``set_detect_anomaly(True)`` turns anomaly detection on now; also a context manager."""

    def __init__(self, mode: bool, check_nan: bool = True):
        self.mode = bool(mode)
        self.check_nan = bool(check_nan)
        self._apply()

    def _settings(self):
        return {"anomaly_enabled": self.mode, "anomaly_check_nan": self.check_nan}

    def __enter__(self):
        return self

    def __call__(self, func):
        self._restore()
        return super().__call__(func)
