"""Every operation: the primitives (``Function`` subclasses) and the functions composed of them.

One module per family; this package exports every public name they define, so
that a new op is written once, in its module, and is at once
``autodiff.ops.<Name>`` (and, when its class names a ``method``, a Tensor method
and an ``autodiff`` function, see ``autodiff.tensor``).
"""

from . import elementwise, fused, linalg, reduce, shape, window

FAMILIES = (elementwise, reduce, shape, linalg, window, fused)


def _public_names(module) -> dict:
    """The public functions and classes a module defines itself (not those it imports)."""
    return {
        name: value
        for name, value in vars(module).items()
        if not name.startswith("_")
        and callable(value)
        and getattr(value, "__module__", None) == module.__name__
    }


for _family in FAMILIES:
    globals().update(_public_names(_family))
del _family

__all__ = sorted(name for family in FAMILIES for name in _public_names(family))


def primitives() -> list:
    """Every primitive (``Function`` subclass) defined in ``autodiff.ops``, by family."""
    from ..function import Function

    return [
        value
        for family in FAMILIES
        for value in _public_names(family).values()
        if isinstance(value, type) and issubclass(value, Function)
    ]


def method_names(function) -> tuple:
    """The Tensor methods an op class names (``method``), as a tuple."""
    names = function.method
    if names is None:
        return ()
    return (names,) if isinstance(names, str) else tuple(names)


def _bind_methods() -> None:
    from ..tensor import bind_methods

    bind_methods((name, op) for op in primitives() for name in method_names(op))


_bind_methods()
