"""Conv2d and MaxPool2d, forward + backward, on a batch of 64 FashionMNIST-sized images.

    Conv2d(1, 16, 3, padding=1)   on (64, 1, 28, 28)
    Conv2d(16, 32, 3, padding=1)  on (64, 16, 14, 14)
    MaxPool2d(2)                  on (64, 16, 28, 28)

Each case times one forward pass and one backward pass with a random upstream
gradient, from the same weights (ours loaded from PyTorch's state dict), and
prints medians and the ratio to PyTorch (when installed).  Run it alone with
``python -m benchmarks.bench_layers``.
"""

from __future__ import annotations

from .common import Table, import_torch, interleaved, now

BATCH = 64


def _cases():
    """(label, layer factory taking an nn-like module, input shape)."""
    return [
        (
            "Conv2d(1, 16, 3, padding=1), 64x1x28x28",
            lambda m: m.Conv2d(1, 16, 3, padding=1),
            (BATCH, 1, 28, 28),
        ),
        (
            "Conv2d(16, 32, 3, padding=1), 64x16x14x14",
            lambda m: m.Conv2d(16, 32, 3, padding=1),
            (BATCH, 16, 14, 14),
        ),
        ("MaxPool2d(2), 64x16x28x28", lambda m: m.MaxPool2d(2), (BATCH, 16, 28, 28)),
    ]


def _time_ours(autodiff, layer, x, upstream):
    inp = autodiff.tensor(x, requires_grad=True)
    start = now()
    out = layer(inp)
    middle = now()
    out.backward(autodiff.tensor(upstream))
    end = now()
    layer.zero_grad()
    return {"forward": middle - start, "backward": end - middle, "total": end - start}


def _time_theirs(torch, layer, x, upstream):
    inp = torch.tensor(x, requires_grad=True)
    start = now()
    out = layer(inp)
    middle = now()
    out.backward(torch.tensor(upstream))
    end = now()
    layer.zero_grad()
    return {"forward": middle - start, "backward": end - middle, "total": end - start}


def run(table=None, repeats=7, quick=False):
    """Print a table of medians (forward, backward, total) and ratios to PyTorch."""
    import numpy as np  # imported here: __main__ fixes the thread count first

    import autodiff
    import nn

    own_table = table is None
    if own_table:
        table = Table()
        print(table.header())
    torch = import_torch()
    if quick:
        repeats = max(3, repeats // 2)
    rng = np.random.default_rng(0)
    for label, make, shape in _cases():
        x = rng.random(shape, dtype=np.float32)
        ours = make(nn)
        cases = {}
        if torch is not None:
            theirs = make(torch.nn)
            if list(theirs.state_dict()):
                ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
            out_shape = tuple(theirs(torch.tensor(x)).shape)
        else:
            out_shape = ours(autodiff.tensor(x)).shape
        upstream = rng.standard_normal(out_shape).astype(np.float32)
        cases["autodiff"] = lambda ours=ours, x=x, g=upstream: _time_ours(autodiff, ours, x, g)
        if torch is not None:
            cases["torch"] = lambda theirs=theirs, x=x, g=upstream: _time_theirs(
                torch, theirs, x, g
            )
        medians = interleaved(cases, repeats)
        for metric in ("forward", "backward", "total"):
            table.add(
                f"{label}: {metric}",
                medians["autodiff"][metric],
                medians["torch"][metric] if "torch" in medians else None,
            )
    if own_table:
        print()
        print(table)
    return table


if __name__ == "__main__":
    from .common import configure_threads

    configure_threads(1)
    run()
