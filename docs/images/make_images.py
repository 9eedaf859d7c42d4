"""Regenerate the pictures in the README: ``python docs/images/make_images.py``.

Needs Graphviz's ``dot`` (``apt-get install graphviz``) and Chromium for the
stepper screenshot (skipped when missing).
"""

from __future__ import annotations

import os
import sys
import tempfile

import autodiff
import visualize

HERE = os.path.dirname(os.path.abspath(__file__))


def scalar_graph():
    """The neuron of the micrograd lecture: o = tanh(x1 w1 + x2 w2 + b)."""
    values = {"x1": 2.0, "x2": 0.0, "w1": -3.0, "w2": 1.0, "b": 6.8813735870195432}
    t = {}
    for name, value in values.items():
        t[name] = autodiff.tensor(value, dtype=autodiff.float64, requires_grad=True)
        t[name].name = name
    x1w1 = t["x1"] * t["w1"]
    x1w1.name = "x1*w1"
    x2w2 = t["x2"] * t["w2"]
    x2w2.name = "x2*w2"
    x1w1x2w2 = x1w1 + x2w2
    x1w1x2w2.name = "x1*w1 + x2*w2"
    n = x1w1x2w2 + t["b"]
    n.name = "n"
    o = n.tanh()
    o.name = "o"
    visualize.retain_grads(o)  # keep dL/d(every intermediate), as micrograd shows them
    o.backward()
    dot = visualize.draw_graph(
        o, show_values=True, show_grads=True, show_rules=True, show_order=True
    )
    dot.attr(dpi="96")
    return dot.save_as(os.path.join(HERE, "scalar_graph.png"))


def mlp_graph():
    """One training step of the lecture's MLP (batch of 4): each layer one op, modules as clusters."""
    model, loss = visualize.command.training_step_loss("mlp", batch_size=4)
    visualize.retain_grads(loss)
    loss.backward()
    dot = visualize.draw_graph(loss, params=model, rankdir="TB")
    dot.attr(dpi="72")
    return dot.save_as(os.path.join(HERE, "mlp_graph.png"))


def cnn_graphs():
    """One training step of the lecture's CNN, at the lecture's level and as recorded."""
    import numpy as np

    import nn

    autodiff.manual_seed(0)
    model = nn.models.ConvNet(image_size=28)
    rng = np.random.default_rng(0)
    images = autodiff.tensor(rng.random((4, 1, 28, 28), dtype=np.float32))
    labels = autodiff.tensor(rng.integers(0, 10, size=4))
    loss = nn.functional.cross_entropy(model(images), labels)
    loss.name = "loss"
    paths = []
    for detail in ("lecture", "primitives"):
        dot = visualize.draw_graph(
            loss, params=model, show_values=False, show_grads=False, rankdir="TB", detail=detail
        )
        dot.attr(dpi="60")
        paths.append(dot.save_as(os.path.join(HERE, f"cnn_{detail}.png")))
    return paths


def stepper_screenshot():
    sys.path.insert(0, os.path.join(HERE, "..", "..", "tests"))
    from _chromium import Browser, find_chromium

    executable = find_chromium()
    if executable is None:
        print("chromium not found: no stepper screenshot")
        return None
    t = {}
    for name, value in {"x": 2.0, "w": -0.5, "b": 0.3}.items():
        t[name] = autodiff.tensor(value, requires_grad=True)
        t[name].name = name
    with visualize.keep_values():
        loss = (t["x"] * t["w"] + t["b"]).tanh()
    loss.name = "o"
    with tempfile.TemporaryDirectory() as tmp:
        page = visualize.backward_stepper(loss, os.path.join(tmp, "steps.html"))
        with Browser(executable) as browser:
            browser.open(f"file://{page}", width=1100, height=560)
            for _ in range(4):
                browser.evaluate("document.getElementById('next').click()")
            browser.evaluate("window.scrollTo(0, 0)")
            return browser.screenshot(os.path.join(HERE, "stepper.png"))


if __name__ == "__main__":
    for make in (scalar_graph, mlp_graph, cnn_graphs, stepper_screenshot):
        print(make())
