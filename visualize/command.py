"""``autodiff graph``: draw one training step of the lecture's MLP or the small CNN.

``graph_command(model="mlp", out="mlp.svg")`` builds the model (the lecture's
``NeuralNetwork`` from ``nn.models``, or its ``ConvNet``), runs one training step's
forward pass on a random batch of 28x28 images inside ``track_modules`` (so each
layer, and the loss, is a labelled cluster), ``backward()`` (keeping every
intermediate gradient with ``retain_grads``), and draws the loss graph with its
parameter names, values and gradients.
"""

from __future__ import annotations

import os

import numpy as np

import autodiff

from .trace import DEFAULT_MAX_NODES, check_detail, keep_values, retain_grads, track_modules

MODELS = ("mlp", "cnn")
FORMATS = ("svg", "png", "pdf", "dot", "gv")


def build_model(name: str = "mlp", image_size: int = 28):
    """The lecture's MLP ("mlp") or the small CNN ("cnn") from ``nn.models``, freshly initialised."""
    if name not in MODELS:
        raise ValueError(f"graph: unknown model {name!r}; expected one of {', '.join(MODELS)}")
    import nn

    return nn.models.build_model(name, image_size)


def training_step_loss(model_name: str = "mlp", batch_size: int = 4, seed: int = 0):
    """(model, loss) after the forward pass of one training step on a random batch.

    The forward pass runs inside ``track_modules(model)``, so the loss graph knows
    which layer ran each op.
    """
    import nn

    autodiff.manual_seed(seed)
    model = build_model(model_name)
    rng = np.random.default_rng(seed)
    images = autodiff.tensor(rng.random((batch_size, 1, 28, 28), dtype=np.float32))
    y = autodiff.tensor(rng.integers(0, 10, size=batch_size))
    loss_fn = nn.CrossEntropyLoss()
    with track_modules(model, loss_fn), keep_values():
        loss = loss_fn(model(images), y)
    loss.name = "loss"
    return model, loss


def output_format(out: str, fmt: str | None = None) -> str:
    """The format to write ``out`` in: ``fmt``, else the extension, else SVG.

    An extension that is not one of svg, png, pdf, dot, gv (``mlp.jpg``), or that
    contradicts ``fmt`` (``mlp.png`` with ``fmt="svg"``), is a ``ValueError``: a file
    must hold what its name says.
    """
    ext = os.path.splitext(out)[1].lstrip(".").lower()
    if fmt is not None and fmt not in FORMATS:
        raise ValueError(f"graph: unknown format {fmt!r}; expected one of svg, png, pdf, dot")
    if ext and ext not in FORMATS:
        raise ValueError(
            f"graph: {out} has the extension .{ext}, which is not a format this draws; "
            "use .svg, .png, .pdf or .dot"
        )
    if fmt is None:
        return ext or "svg"
    if ext and ext != fmt and {ext, fmt} != {"dot", "gv"}:
        raise ValueError(f"graph: {out} ends in .{ext} but the format asked for is {fmt}")
    return fmt


def graph_command(
    model: str = "mlp",
    out="graph.svg",
    fmt: str | None = None,
    collapse: bool = False,
    show_rules: bool = False,
    rankdir: str = "TB",
    batch_size: int = 4,
    detail: str = "lecture",
) -> str:
    """Draw one training step's loss graph of the lecture's ``model`` to ``out``; returns the path.

    ``fmt``: "svg", "png" or "pdf" (None: from the extension of ``out``, else SVG;
    "dot" writes the DOT text, which needs no Graphviz); an extension that is not a
    format, or that contradicts ``fmt``, is a ``ValueError`` (see ``output_format``).  ``collapse=True`` draws each
    layer as one box.  ``detail``: "lecture" draws each layer of ``nn.functional`` as
    one op (conv2d, max pooling, cross-entropy), "primitives" every recorded op (see
    ``draw_graph``); anything else is a ``ValueError``.  Rendering needs Graphviz's ``dot`` program
    (``apt-get install graphviz`` / ``brew install graphviz``).

    Example::

        visualize.graph_command("mlp", "mlp.svg")              # = autodiff graph --model mlp --out mlp.svg
        visualize.graph_command("cnn", "cnn.png", collapse=True)
        visualize.graph_command("mlp", "mlp.svg", detail="primitives")   # every recorded op
    """
    check_detail(detail, "graph_command")
    out = os.fspath(out)
    fmt = output_format(out, fmt)
    from . import draw_graph

    model_obj, loss = training_step_loss(model, batch_size=batch_size)
    retain_grads(loss)  # show dL/d(every intermediate), not only the parameters' .grad
    loss.backward()
    dot = draw_graph(
        loss,
        params=model_obj,
        show_values=True,
        show_grads=True,
        show_rules=show_rules,
        collapse=collapse,
        max_nodes=DEFAULT_MAX_NODES,
        rankdir=rankdir,
        detail=detail,
    )
    return dot.save_as(out, format=fmt)
