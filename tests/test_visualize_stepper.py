"""The backward stepper page: self-contained, and driven in headless Chromium."""

from __future__ import annotations

import html
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from _chromium import Browser, find_chromium

import autodiff
import visualize

needs_dot = pytest.mark.skipif(
    shutil.which("dot") is None, reason="Graphviz's dot is not installed"
)


def _loss():
    a = autodiff.tensor(2.0, requires_grad=True)
    a.name = "a"
    b = autodiff.tensor(-3.0, requires_grad=True)
    b.name = "b"
    with visualize.keep_values():
        loss = (a * b + a).tanh()
    loss.name = "L"
    return a, b, loss


@needs_dot
def test_page_is_self_contained_and_lists_every_step(tmp_path):
    a, b, loss = _loss()
    path = visualize.backward_stepper(loss, tmp_path / "steps.html")
    page = Path(path).read_text(encoding="utf-8")
    assert a.grad is None and b.grad is None  # nothing accumulated ...
    loss.backward()  # ... and the graph is still there
    # No network: no external scripts, stylesheets, images or fetches.
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)
    assert "fetch(" not in page and "XMLHttpRequest" not in page
    assert page.count("<svg") == 1
    data = json.loads(re.search(r'id="steps-data">(.*?)</script>', page, re.S).group(1))
    steps = data["steps"]
    assert [s["text"].splitlines()[0].split(": ")[1] for s in steps] == [
        "TanhBackward",
        "AddBackward",
        "MulBackward",
        "AccumulateGrad",
        "AccumulateGrad",
    ]
    grad_a = (1 - np.tanh(-4.0) ** 2) * (-3.0 + 1.0)
    assert f"a.grad += {visualize.summarize(np.array(grad_a))}" in page
    svg = html.unescape(page[page.index("<svg") : page.index("</svg>")])
    assert f"grad {visualize.summarize(a.grad.numpy())}" in svg


@needs_dot
def test_stepper_refuses_large_graphs(tmp_path):
    x = autodiff.tensor([1.0], requires_grad=True)
    y = x
    for _ in range(20):
        y = y * 1.5
    with pytest.raises(visualize.GraphTooLargeError, match="max_nodes=10"):
        visualize.backward_stepper(y.sum(), tmp_path / "big.html", max_nodes=10)


CURRENT = "(function(){var g=document.querySelector('g.node.current');return g?g.id:null;})()"
GRAD_TEXTS = (
    "Array.prototype.map.call(document.querySelectorAll('g.node text'),"
    "function(t){return t.textContent;}).filter(function(s){return s.indexOf('grad ')===0;})"
)


@needs_dot
def test_stepper_in_headless_chromium(tmp_path):
    executable = find_chromium()
    if executable is None:
        pytest.skip("chromium is not installed")
    _, _, loss = _loss()
    path = visualize.backward_stepper(loss, tmp_path / "steps.html")
    with Browser(executable) as browser:
        browser.open(f"file://{path}")
        assert browser.evaluate("document.body.dataset.step") == "0"
        # it opens on the root, where backward starts, fitted to the window
        assert browser.evaluate(CURRENT) == visualize.trace_graph(loss).roots[0]
        assert browser.evaluate("document.getElementById('fit').checked") is True
        # Only the seed dL/dL = 1 is known before the first step.
        assert sorted(browser.evaluate(GRAD_TEXTS)) == ["grad 1"] + ["grad ?"] * 4
        a_id = visualize.trace_graph(loss).tensor("a").id
        a_grad = f"(function(){{var t=document.querySelectorAll('#{a_id} text');"
        a_grad += "for(var i=0;i<t.length;i++){if(t[i].textContent.indexOf('grad ')===0)"
        a_grad += "return t[i].textContent;}})()"
        g = 1 - np.tanh(np.float32(-4.0)) ** 2  # dL/d(a*b + a)
        seen, a_texts = [], []
        for expected in range(1, 6):
            browser.evaluate("document.getElementById('next').click()")
            assert browser.evaluate("document.body.dataset.step") == str(expected)
            seen.append(browser.evaluate(CURRENT))
            a_texts.append(browser.evaluate(a_grad))
        # a is used twice: after Add its gradient is Add's share, after Mul the full sum.
        partial, total = visualize.summarize(np.array(g)), visualize.summarize(np.array(-2 * g))
        assert a_texts[:3] == ["grad ?", f"grad {partial}", f"grad {total}"]
        # Each step highlights the node the engine processes: Tanh, Add, Mul, then the leaves.
        expected_ids = [s.node_id for s in visualize.trace_backward(loss).steps]
        assert seen == expected_ids and len(set(seen)) == 5
        assert seen[:3] == ["op0", "op1", "op2"] and seen[3:] == ["t3", "t4"]
        assert "grad ?" not in browser.evaluate(GRAD_TEXTS)  # every gradient filled in
        assert browser.evaluate("document.getElementById('next').disabled") is True
        browser.evaluate("document.getElementById('prev').click()")
        assert browser.evaluate(CURRENT) == seen[3]
        explain = browser.evaluate("document.getElementById('explain').textContent")
        assert explain.startswith("Step 4/5: AccumulateGrad")
        shot = browser.screenshot(tmp_path / "stepper.png")
        assert browser.errors == []
    data = Path(shot).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
