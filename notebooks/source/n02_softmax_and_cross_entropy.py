"""Cells of notebooks/02_softmax_and_cross_entropy.ipynb (built by notebooks/build.py)."""

from shared_setup import setup_cell

CELLS = [
    (
        "markdown",
        r"""
# 2. Softmax and cross-entropy

**What this notebook teaches.** The output layer of a classifier, with the
lecture's formulas checked by the engine:

1. softmax $s = \operatorname{softmax}(y)$ and why it is computed with the
   maximum subtracted;
2. its Jacobian $\partial s/\partial y = \operatorname{diag}(s) - s\,s^\top$, from
   `autodiff.functional.jacobian`, beside the formula (and as a heat map);
3. cross-entropy $L = -\sum_i t_i \log s_i$ and its famous gradient
   $\partial L/\partial y = s - t$;
4. one fully connected layer $y = W x$ trained on handwritten digits by a
   **hand-written** gradient-descent loop, with the hand-derived gradient
   checked against the engine's at every step.
""",
    ),
    setup_cell(r"""
import nn
import nn.functional as F
from autodiff.functional import jacobian
from nn import datasets
"""),
    (
        "markdown",
        r"""
## 1. Softmax

A classifier's last layer produces one score (logit) $y_i$ per class.  Softmax
turns the scores into probabilities:

$$ s_i = \frac{e^{y_i}}{\sum_{j} e^{y_j}}, \qquad s_i > 0, \qquad \sum_i s_i = 1 . $$

Adding the same constant to every $y_i$ does not change $s$ (it multiplies
numerator and denominator by the same $e^c$).  Implementations use this: they
subtract $\max_j y_j$ first, so that no $e^{y_i}$ can overflow.
""",
    ),
    (
        "code",
        r"""
y = autodiff.tensor([2.0, 1.0, 0.1])
by_hand = y.exp() / y.exp().sum()
print("by hand:         ", by_hand)
print("F.softmax:       ", F.softmax(y, dim=0), " sum =", F.softmax(y, dim=0).sum().item())
print("shifted by +100: ", F.softmax(y + 100, dim=0))

big = autodiff.tensor([1000.0, 1001.0, 1002.0])
with np.errstate(over="ignore", invalid="ignore"):
    print("naive, logits ~1000:", big.exp() / big.exp().sum(), " (inf / inf)")
print("F.softmax, same:    ", F.softmax(big, dim=0))
""",
    ),
    (
        "markdown",
        r"""
## 2. The softmax Jacobian

Each $s_i$ depends on every $y_j$.  Differentiating the quotient,

$$ \frac{\partial s_i}{\partial y_j} = s_i\,(\delta_{ij} - s_j)
\qquad\Longleftrightarrow\qquad
J = \frac{\partial s}{\partial y} = \operatorname{diag}(s) - s\,s^\top . $$

`autodiff.functional.jacobian(f, y)` computes the Jacobian of any function with
the engine (one backward pass per output element), as
`torch.autograd.functional.jacobian` does.
""",
    ),
    (
        "code",
        r"""
y = autodiff.tensor([1.5, -0.3, 0.8, 2.2, 0.0, -1.0], dtype=autodiff.float64)
s = F.softmax(y, dim=0)

J_engine = jacobian(lambda logits: F.softmax(logits, dim=0), y)
J_formula = np.diag(s.numpy()) - np.outer(s.numpy(), s.numpy())

np.set_printoptions(precision=4, suppress=True)
print("jacobian(softmax, y):\n", J_engine.numpy())
print("diag(s) - s s^T:\n", J_formula)
print("equal:", np.allclose(J_engine.numpy(), J_formula))
row_sums = J_engine.numpy().sum(axis=1)
print(f"largest |row sum|: {np.abs(row_sums).max():.1e}  (adding c to every logit changes nothing)")
""",
    ),
    (
        "code",
        r"""
fig, axes = plt.subplots(1, 3, figsize=(11, 3.4), layout="constrained")
limit = np.abs(J_formula).max()
panels = [
    (J_engine.numpy(), "jacobian(softmax, y)"),
    (J_formula, "diag(s) - s s$^T$"),
    (J_engine.numpy() - J_formula, "difference (same colour scale)"),
]
for ax, (matrix, title) in zip(axes, panels):
    image = ax.imshow(matrix, cmap="RdBu_r", vmin=-limit, vmax=limit)
    ax.set_title(title)
    ax.set_xlabel("logit j")
    ax.set_ylabel("probability i")
fig.colorbar(image, ax=axes, shrink=0.8, label="$\\partial s_i / \\partial y_j$")
plt.show()
""",
    ),
    (
        "markdown",
        r"""
The diagonal is positive (raising a logit raises its own probability, by
$s_i(1 - s_i)$) and everything else is negative (it lowers every other
probability, by $s_i s_j$).  The matrix is symmetric, and each row sums to zero.

## 3. Cross-entropy and its gradient $s - t$

With a target distribution $t$ (one-hot for a class label $c$), the
cross-entropy loss is

$$ L = -\sum_i t_i \log s_i \;=\; -\log s_c \quad\text{(one-hot)} . $$

By the chain rule through the softmax Jacobian,
$\dfrac{\partial L}{\partial y} = J^\top \dfrac{\partial L}{\partial s}
= (\operatorname{diag}(s) - s s^\top)\,(-t / s) = -t + s \textstyle\sum_i t_i = s - t$.
`F.cross_entropy` takes the logits (it applies log-softmax itself) and a class
index, as in PyTorch, and averages over the batch:
""",
    ),
    (
        "code",
        r"""
logits = autodiff.tensor([[1.5, -0.3, 0.8, 2.2, 0.0, -1.0]], requires_grad=True)  # the six logits above
target = autodiff.tensor([2])  # the true class is 2

loss = F.cross_entropy(logits, target)
loss.backward()

s = F.softmax(logits.detach(), dim=1)
t = F.one_hot(target, num_classes=6).float()
print(f"loss = {loss.item():.4f} = -log s_2 = {-np.log(s[0, 2].item()):.4f}")
print("engine's dL/dy:", logits.grad.numpy().round(4))
print("s - t:         ", (s - t).numpy().round(4))
print("chain rule J^T (-t/s):", (J_formula.T @ (-t[0].numpy() / s[0].numpy())).round(4))
""",
    ),
    (
        "code",
        r"""
fig, ax = plt.subplots(figsize=(7, 3))
classes = np.arange(6)
ax.bar(classes - 0.27, s[0].numpy(), width=0.27, label="s (softmax)")
ax.bar(classes, t[0].numpy(), width=0.27, label="t (one-hot target)")
ax.bar(classes + 0.27, logits.grad[0].numpy(), width=0.27, label="dL/dy = s - t")
ax.axhline(0, color="k", lw=0.8)
ax.set_xlabel("class")
ax.legend(loc="upper left")
ax.set_title("gradient descent raises the true class's logit and lowers the others")
plt.show()
""",
    ),
    (
        "markdown",
        r"""
For a batch of $N$ examples with the mean over the batch, each row of the
gradient is divided by $N$:  $\partial L/\partial Y = (S - T)/N$.

## 4. One fully connected layer, trained by hand

The bundled **Digits** data set (1,797 handwritten digits of $8\times 8$
pixels from the UCI repository, shipped inside the package, no download)
stands in for FashionMNIST.  Each image $x$ is a vector of 64 pixel values
scaled to $[0, 1]$, and the layer is $y = W x$ with $W$ of shape
$(10, 64)$: ten scores, one per digit.

For a batch $X$ (one image per row, shape $(N, 64)$) the logits are
$Y = X W^\top$, and with the mean cross-entropy:

$$ \frac{\partial L}{\partial W} = \Big(\frac{\partial L}{\partial Y}\Big)^{\!\top} X
= \frac{1}{N}\,(S - T)^\top X . $$

First, that formula against the engine's gradient:
""",
    ),
    (
        "code",
        r"""
train_set = datasets.Digits(train=True)
test_set = datasets.Digits(train=False)
X_train = train_set.data.float().reshape(-1, 64) / 16  # pixel values 0..16 -> [0, 1]
X_test = test_set.data.float().reshape(-1, 64) / 16
t_train, t_test = train_set.targets, test_set.targets
T_train = F.one_hot(t_train, num_classes=10).float()
print("train:", tuple(X_train.shape), "test:", tuple(X_test.shape), "| classes:", train_set.classes)

N = X_train.shape[0]
W = (0.01 * autodiff.randn(10, 64)).requires_grad_()

# the engine
loss = F.cross_entropy(X_train @ W.T, t_train)
loss.backward()

# by hand
with autodiff.no_grad():
    S = F.softmax(X_train @ W.T, dim=1)
    grad_by_hand = (S - T_train).T @ X_train / N

print(f"loss {loss.item():.4f} (log 10 = {np.log(10):.4f} for a uniform guess)")
print("largest |engine - hand| entry:", np.abs(W.grad.numpy() - grad_by_hand.numpy()).max())
""",
    ),
    (
        "markdown",
        r"""
Now the training loop, written out: forward, the hand-derived gradient,
the update $W \leftarrow W - \eta\,\partial L/\partial W$.  At every step the
engine computes its own gradient too, and we keep the largest disagreement.
""",
    ),
    (
        "code",
        r"""
def accuracy(W, X, t):
    with autodiff.no_grad():
        return ((X @ W.T).argmax(dim=1) == t).float().mean().item()


W = autodiff.zeros(10, 64, requires_grad=True)
lr, steps = 0.5, (60 if FAST else 300)
history = {"train loss": [], "test loss": [], "train accuracy": [], "test accuracy": []}
worst_disagreement = 0.0
for step in range(steps):
    # the engine's gradient, for the check
    loss = F.cross_entropy(X_train @ W.T, t_train)
    W.grad = None
    loss.backward()
    with autodiff.no_grad():
        S = F.softmax(X_train @ W.T, dim=1)  # forward
        grad = (S - T_train).T @ X_train / N  # dL/dW by hand
        worst_disagreement = max(worst_disagreement, (grad - W.grad).abs().max().item())
        history["train loss"].append(loss.item())
        history["test loss"].append(F.cross_entropy(X_test @ W.T, t_test).item())
        history["train accuracy"].append(accuracy(W, X_train, t_train))
        history["test accuracy"].append(accuracy(W, X_test, t_test))
        W -= lr * grad  # the update

print(f"after {steps} steps: test accuracy {history['test accuracy'][-1]:.1%}")
print(f"largest disagreement between the hand-written and the engine's gradient: {worst_disagreement:.2e}")
""",
    ),
    (
        "code",
        r"""
fig, axes = plt.subplots(1, 2, figsize=(10, 3.2), layout="constrained")
for key in ("train loss", "test loss"):
    axes[0].plot(history[key], label=key)
for key in ("train accuracy", "test accuracy"):
    axes[1].plot(history[key], label=key)
axes[0].set_ylabel("cross-entropy")
axes[1].set_ylabel("accuracy")
for ax in axes:
    ax.set_xlabel("gradient-descent step")
    ax.legend()
plt.show()
""",
    ),
    (
        "markdown",
        r"""
Each row of $W$ is a template: the score of digit $k$ is the dot product of its
row with the image.  Drawn as $8\times 8$ pictures (red: pixels that raise the
score, blue: pixels that lower it), the rows show what the layer looks for.
""",
    ),
    (
        "code",
        r"""
fig, axes = plt.subplots(1, 10, figsize=(12, 1.8), layout="constrained")
limit = W.detach().abs().max().item()
for k, ax in enumerate(axes):
    ax.imshow(W.detach()[k].reshape(8, 8).numpy(), cmap="RdBu_r", vmin=-limit, vmax=limit)
    ax.set_title(f"digit {k}")
    ax.axis("off")
plt.show()
""",
    ),
    (
        "markdown",
        r"""
## Exercises

1. Show that $J = \operatorname{diag}(s) - s s^\top$ has the vector of ones in its
   null space, and explain what that says about shifting all logits.  Check it
   with `jacobian` for random logits.
2. Add a bias, $y = W x + b$.  Derive $\partial L/\partial b$ for the batch
   (hint: broadcasting, notebook 1), implement it in the hand-written loop and
   check it against the engine.
3. Replace the mean by a sum in the loss.  What happens to the gradient, and which
   learning rate gives the same trajectory as before?
4. Use a soft target, $t = 0.9\,\text{one-hot} + 0.01$ (label smoothing), with
   `F.cross_entropy(..., label_smoothing=0.1)`.  Is the gradient still $s - t$?
   For which $t$?
5. Compute `jacobian` of `F.log_softmax(y, dim=0)` and find its closed form.
""",
    ),
]
