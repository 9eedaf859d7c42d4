"""The ``autodiff`` command (train, evaluate, graph): the application above the libraries.

Dependencies point one way: ``autodiff_cli`` -> ``visualize`` -> ``nn`` -> ``autodiff``;
nothing in the three libraries imports this package.
"""

from .commands import main

__all__ = ["main"]
