"""Cells of notebooks/06_activations_and_two_layers.ipynb (built by notebooks/build.py)."""

from shared_setup import setup_cell

CELLS = [
    (
        "markdown",
        r"""
# 6. Activations, and a two-layer network by hand

**What this notebook teaches.** The last pieces of the lecture's derivation,
each one checked by the engine:

1. back-propagation through the **activations**: ReLU (a mask), sigmoid
   ($s\,(1 - s)$) and tanh ($1 - y^2$), each derived, checked, drawn on the graph
   with its local rule, and plotted next to its derivative;
2. a **two-layer network**, FC $\to$ ReLU $\to$ FC $\to$ softmax-cross-entropy,
   differentiated by hand: every intermediate gradient computed with NumPy and
   checked against the engine's (`retain_grad`);
3. that hand-written backward pass **trained** for a few epochs, beside the
   engine's, with the same loss curve step for step.

It builds on notebook 2 (softmax, cross-entropy and one fully connected layer).
""",
    ),
    setup_cell(r"""
import nn.functional as F
import visualize
from nn import datasets
"""),
    (
        "markdown",
        r"""
## 1. Activations

An activation $y = f(x)$ works on each entry on its own, so its Jacobian is
diagonal and back-propagation through it is an element-wise product with the
**local derivative** $f'(x)$:

$$ \frac{\partial L}{\partial x_i} = \frac{\partial L}{\partial y_i}\, f'(x_i) . $$

* **ReLU**, $y = \max(x, 0)$: $f'(x) = 1$ where $x > 0$ and $0$ elsewhere, so
  $\partial L/\partial x = \partial L/\partial y \odot [x > 0]$: the upstream
  gradient passes through a **mask** (at $x = 0$ exactly the engine, like PyTorch,
  takes 0).
* **sigmoid**, $s = 1/(1 + e^{-x})$:
  $f'(x) = e^{-x}/(1 + e^{-x})^2 = s\,(1 - s)$, written with the *output*, which
  the op saves in its forward pass.  It is at most $1/4$ (at $x = 0$): every
  sigmoid layer shrinks the gradient at least fourfold.
* **tanh**, $y = \tanh x$: $f'(x) = 1 - \tanh^2 x = 1 - y^2$, again from the
  output; at most 1.

Because the Jacobian is diagonal, an all-ones upstream gradient (`y.sum()`) gives
the local derivative itself, one number per entry.  The engine's, against the
formulas:
""",
    ),
    (
        "code",
        r"""
grid = np.linspace(-4, 4, 161)
x = autodiff.tensor(grid, requires_grad=True)  # float64
activations = {
    "ReLU": (lambda t: t.relu(), lambda x, y: (x > 0).astype(float)),
    "sigmoid": (lambda t: t.sigmoid(), lambda x, y: y * (1 - y)),
    "tanh": (lambda t: t.tanh(), lambda x, y: 1 - y**2),
}
curves = {}
for name, (f, local_derivative) in activations.items():
    y = f(x)
    (dydx,) = autodiff.grad(y.sum(), x)  # all-ones upstream: the diagonal of the Jacobian
    by_hand = local_derivative(grid, y.detach().numpy())
    assert np.allclose(dydx.numpy(), by_hand), name
    curves[name] = (y.detach().numpy(), dydx.numpy())
    print(f"{name:<8} engine == formula: True   largest local derivative {dydx.max().item():.4f}")
assert np.isclose(curves["sigmoid"][1].max(), 0.25) and np.isclose(curves["tanh"][1].max(), 1.0)
""",
    ),
    (
        "code",
        r"""
fig, axes = plt.subplots(1, 3, figsize=(12, 3.2), layout="constrained")
formulas = {"ReLU": "[x > 0]", "sigmoid": "s (1 - s)", "tanh": "1 - y²"}
for ax, (name, (y, dydx)) in zip(axes, curves.items()):
    ax.plot(grid, y, color="k", label=f"{name}(x)")
    ax.plot(grid, dydx, color="tab:red", lw=2, label=f"derivative: {formulas[name]}")
    ax.axhline(0, color="0.85", lw=0.8)
    ax.axvline(0, color="0.85", lw=0.8)
    ax.set_title(name)
    ax.set_xlabel("x")
    ax.legend(fontsize=8, loc="upper left")
plt.show()
""",
    ),
    (
        "markdown",
        r"""
Each op carries its local rule in its docstring, and the picture can show it
(`show_rules=True`).  Three activations of the same three numbers, with the
values and, after `backward()`, the gradients: ReLU's gradient is the upstream
gradient masked, sigmoid's and tanh's are computed from their own outputs.
The cell checks what the picture says.
""",
    ),
    (
        "code",
        r"""
x = autodiff.tensor([-1.5, 0.5, 2.0], dtype=autodiff.float64, requires_grad=True)
x.name = "x"
with visualize.keep_values():
    outputs = [x.relu(), x.sigmoid(), x.tanh()]
for out, name in zip(outputs, ("relu(x)", "sigmoid(x)", "tanh(x)")):
    out.name = name
    out.retain_grad()
upstream = autodiff.tensor([1.0, -2.0, 3.0], dtype=autodiff.float64)
for out in outputs:  # one backward per output; x.grad adds them up
    out.backward(upstream)

relu, sigmoid, tanh = (out.detach().numpy() for out in outputs)
g = upstream.numpy()
# x.grad is the sum of the three paths: mask + s (1 - s) + (1 - y^2), each times g
assert np.allclose(x.grad.numpy(), g * (x.detach().numpy() > 0) + g * sigmoid * (1 - sigmoid) + g * (1 - tanh**2))

# the rules drawn on the ops are the lecture's
rules = {op.name: op.rule.splitlines()[0] for op in visualize.trace_graph(outputs).ops}
assert rules == {
    "Relu": "dL/dx = dL/dy * [x > 0]",
    "Sigmoid": "dL/dx = dL/dy * y (1 - y)",
    "Tanh": "dL/dx = dL/dy * (1 - y^2)",
}, rules
visualize.draw_graph(outputs, show_rules=True, rankdir="LR")
""",
    ),
    (
        "markdown",
        r"""
## 2. A two-layer network, differentiated by hand

The network of the lecture, for a batch $X$ of $N$ images (one per row, 64
pixels of the bundled $8\times 8$ Digits), with weights stored as `nn.Linear`
stores them, $(\text{out}, \text{in})$:

$$ z_1 = X W_1^\top + b_1, \quad h = \operatorname{relu}(z_1), \quad
   z_2 = h W_2^\top + b_2, \quad s = \operatorname{softmax}(z_2), \quad
   L = -\frac{1}{N}\sum_n \log s_{n, t_n} . $$

Back-propagation runs the same chain backwards, one local rule per step
($T$ is the one-hot matrix of the targets):

| step | gradient | shape |
| --- | --- | --- |
| cross-entropy of the softmax | $\dfrac{\partial L}{\partial z_2} = \dfrac{1}{N}(s - T)$ | $(N, 10)$ |
| second layer, weights | $\dfrac{\partial L}{\partial W_2} = \Big(\dfrac{\partial L}{\partial z_2}\Big)^{\!\top} h$ (the transpose of $h^\top \frac{\partial L}{\partial z_2}$ for $W_2$ stored $(\text{in}, \text{out})$) | $(10, H)$ |
| second layer, bias | $\dfrac{\partial L}{\partial b_2} = \sum_n \dfrac{\partial L}{\partial z_{2,n}}$ | $(10,)$ |
| second layer, input | $\dfrac{\partial L}{\partial h} = \dfrac{\partial L}{\partial z_2}\, W_2$ | $(N, H)$ |
| ReLU | $\dfrac{\partial L}{\partial z_1} = \dfrac{\partial L}{\partial h} \odot [z_1 > 0]$ | $(N, H)$ |
| first layer | $\dfrac{\partial L}{\partial W_1} = \Big(\dfrac{\partial L}{\partial z_1}\Big)^{\!\top} X, \quad \dfrac{\partial L}{\partial b_1} = \sum_n \dfrac{\partial L}{\partial z_{1,n}}$ | $(H, 64)$, $(H,)$ |

First the engine, with `retain_grad()` on every intermediate so that it keeps
$\partial L/\partial z_1$, $\partial L/\partial h$ and $\partial L/\partial z_2$:
""",
    ),
    (
        "code",
        r"""
train_set, test_set = datasets.Digits(train=True), datasets.Digits(train=False)
X_train = train_set.data.double().reshape(-1, 64).numpy() / 16  # pixels 0..16 -> [0, 1]
X_test = test_set.data.double().reshape(-1, 64).numpy() / 16
t_train, t_test = train_set.targets.numpy(), test_set.targets.numpy()
H = 32  # hidden units

rng = np.random.default_rng(0)
initial = {  # PyTorch's default initialisation: uniform(-1/sqrt(fan_in), 1/sqrt(fan_in))
    "W1": rng.uniform(-1, 1, (H, 64)) / np.sqrt(64),
    "b1": rng.uniform(-1, 1, H) / np.sqrt(64),
    "W2": rng.uniform(-1, 1, (10, H)) / np.sqrt(H),
    "b2": rng.uniform(-1, 1, 10) / np.sqrt(H),
}

X, t = X_train[:16], t_train[:16]  # one batch of 16 images
W1, b1, W2, b2 = (autodiff.tensor(initial[k], requires_grad=True) for k in ("W1", "b1", "W2", "b2"))
with visualize.keep_values():  # for the picture below: values, and the input batch as a box
    z1 = autodiff.tensor(X) @ W1.T + b1
    h = z1.relu()
    z2 = h @ W2.T + b2
    L = F.cross_entropy(z2, autodiff.tensor(t))
for intermediate in (z1, h, z2):
    intermediate.retain_grad()
L.backward()
print(f"loss {L.item():.4f}; shapes: z1 {z1.shape}, h {h.shape}, z2 {z2.shape}")
""",
    ),
    (
        "markdown",
        r"""
Now the same gradients by hand, in NumPy, one line per row of the table, each
checked against what the engine computed:
""",
    ),
    (
        "code",
        r"""
def softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))  # the row maximum subtracted (notebook 2)
    return e / e.sum(axis=1, keepdims=True)


def forward(p, X):
    z1 = X @ p["W1"].T + p["b1"]
    h = np.maximum(z1, 0)
    z2 = h @ p["W2"].T + p["b2"]
    return z1, h, z2


def backward(p, X, t, z1, h, z2):
    N = X.shape[0]
    T = np.eye(10)[t]  # one-hot targets
    g = {}
    g["z2"] = (softmax(z2) - T) / N
    g["W2"] = g["z2"].T @ h
    g["b2"] = g["z2"].sum(axis=0)
    g["h"] = g["z2"] @ p["W2"]
    g["z1"] = g["h"] * (z1 > 0)  # the ReLU mask
    g["W1"] = g["z1"].T @ X
    g["b1"] = g["z1"].sum(axis=0)
    return g


by_hand = backward(initial, X, t, *forward(initial, X))
engine = {"z2": z2, "W2": W2, "b2": b2, "h": h, "z1": z1, "W1": W1, "b1": b1}
print("gradient   shape       largest |hand - engine|")
for name, tensor in engine.items():
    difference = np.abs(by_hand[name] - tensor.grad.numpy()).max()
    assert difference < 1e-12, name
    print(f"dL/d{name:<5} {str(by_hand[name].shape):<11} {difference:.1e}")
""",
    ),
    (
        "markdown",
        r"""
Every intermediate gradient agrees to rounding (float64).  The graph the engine
recorded for this network, with the ops that these seven lines mirror (each
`Linear` is a transpose of $W$, one matrix product and a broadcast bias; the
softmax-cross-entropy is **one** fused op whose backward is the first line,
$(s - T)/N$):
""",
    ),
    (
        "code",
        r"""
for tensor, name in ((W1, "W1"), (b1, "b1"), (W2, "W2"), (b2, "b2"), (z1, "z1"), (h, "h"), (z2, "z2"), (L, "L")):
    tensor.name = name
graph = visualize.trace_graph(L, detail="primitives")  # every op the engine recorded
assert [op.name for op in graph.ops] == ["CrossEntropy", "Add", "MatMul", "Permute", "Relu", "Add", "MatMul", "Permute"]
matmuls = [op.id for op in graph.ops if op.name == "MatMul"]
assert all(len(graph.inputs_of(op_id)) == 2 for op_id in matmuls)  # X (or h) and W^T
visualize.draw_graph(L, show_values=False, rankdir="TB", detail="primitives")
""",
    ),
    (
        "markdown",
        r"""
## 3. Training with the hand-written backward pass

Two copies of the network start from the same weights: one trained by the
engine (`loss.backward()`, then $p \leftarrow p - \eta\,\partial L/\partial p$),
one by the NumPy `forward`/`backward` above.  Same batches, same order, same
learning rate: the two loss curves should be one curve.
""",
    ),
    (
        "code",
        r"""
epochs, batch_size, lr = (2 if FAST else 10), 32, 0.5
order = np.random.default_rng(1).permutation(len(X_train))
batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]

# the engine
params = {k: autodiff.tensor(v, requires_grad=True) for k, v in initial.items()}
engine_losses = []
for epoch in range(epochs):
    for batch in batches:
        z1 = autodiff.tensor(X_train[batch]) @ params["W1"].T + params["b1"]
        z2 = z1.relu() @ params["W2"].T + params["b2"]
        loss = F.cross_entropy(z2, autodiff.tensor(t_train[batch]))
        loss.backward()
        with autodiff.no_grad():
            for p in params.values():
                p -= lr * p.grad
                p.grad = None
        engine_losses.append(loss.item())

# by hand
numpy_params = {k: v.copy() for k, v in initial.items()}
hand_losses = []
for epoch in range(epochs):
    for batch in batches:
        X, t = X_train[batch], t_train[batch]
        z1, h, z2 = forward(numpy_params, X)
        hand_losses.append(-np.log(softmax(z2)[np.arange(len(t)), t]).mean())
        grads = backward(numpy_params, X, t, z1, h, z2)
        for k in numpy_params:
            numpy_params[k] -= lr * grads[k]

assert np.allclose(engine_losses, hand_losses, rtol=1e-9, atol=1e-12)
test_accuracy = (forward(numpy_params, X_test)[2].argmax(axis=1) == t_test).mean()
print(f"{len(hand_losses)} steps; largest |engine - hand| loss: {np.abs(np.subtract(engine_losses, hand_losses)).max():.1e}")
print(f"test accuracy of the hand-trained network: {test_accuracy:.1%}")
""",
    ),
    (
        "code",
        r"""
fig, ax = plt.subplots(figsize=(7, 3.2))
ax.plot(engine_losses, lw=4, alpha=0.4, label="engine: loss.backward()")
ax.plot(hand_losses, "k--", lw=1, label="by hand: NumPy backward()")
ax.set_xlabel("step (batch of 32)")
ax.set_ylabel("cross-entropy")
ax.legend()
plt.show()
""",
    ),
    (
        "markdown",
        r"""
## Exercises

1. Replace the ReLU by a sigmoid in `forward` and `backward` (and in the engine's
   loop).  Which line of the table changes, and how?  Does the loss curve still
   match the engine's?
2. Plant a bug in `backward`: forget the ReLU mask.  Which of the seven checks in
   section 2 fail, and which still pass?  Why do the second layer's gradients
   stay right?
3. Compute $\partial L/\partial X$ (the gradient with respect to the *input*
   images) by hand, make the engine's input require a gradient, and compare.
   Draw $\partial L/\partial X$ of one image as an $8\times 8$ picture: which
   pixels would change the loss most?
4. Stack ten sigmoid layers of width 32 and print the size of
   $\partial L/\partial z$ after each layer, from the loss backwards.  Relate
   what you see to the largest value of $s\,(1 - s)$.
5. Use `autodiff.testing.check_graph(lambda: ...)` on the engine's forward pass of
   section 2.  How many ops does it check, and in which order?
""",
    ),
]
