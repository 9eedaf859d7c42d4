"""Cells of notebooks/05_testing_gradients.ipynb (built by notebooks/build.py)."""

from shared_setup import setup_cell

CELLS = [
    (
        "markdown",
        r"""
# 5. Testing gradients with properties

**What this notebook teaches.** How to write your own differentiable operation
as an `autodiff.Function` (PyTorch's `torch.autograd.Function`), and how to
**test** its gradient so that a bug cannot hide:

1. a custom `Softplus` with its forward and its vector-Jacobian product side by side;
2. `autodiff.gradcheck`: the full Jacobian, analytic against finite differences;
3. two bugs planted on purpose: one that the popular `y.sum().backward()` check
   cannot see, and one that hides from a hand-picked input;
4. a **property test** with Hypothesis and `autodiff.testing`, which draws shapes
   and values, finds the second bug and **shrinks** it to the simplest failing input;
5. the fix, and a test file you can keep;
6. `check_graph`: a planted bug **inside a small CNN**, found op by op, and the
   wrong op marked on the graph.
""",
    ),
    setup_cell(
        "from autodiff.testing import assert_gradients_match, check_gradients",
        fast=False,
        libraries="import hypothesis",
    ),
    (
        "markdown",
        r"""
## 1. A custom operation: softplus

$$ y = \operatorname{softplus}(x) = \log(1 + e^{x}), \qquad
\frac{dy}{dx} = \frac{e^x}{1 + e^x} = \sigma(x) . $$

A `Function` has two static methods.  `forward(ctx, x)` computes the value on
NumPy arrays (here with `np.logaddexp(0, x)`, which does not overflow for large
$x$) and saves what the backward pass needs.  `backward(ctx, grad)` receives the
**upstream gradient** $\partial L/\partial y$ (one number per element of $y$) and
returns $\partial L/\partial x$, the vector-Jacobian product.  For an elementwise
operation the Jacobian is diagonal, so this is an elementwise product:

$$ \frac{\partial L}{\partial x_i} = \frac{\partial L}{\partial y_i}\,\sigma(x_i) . $$

The backward is written with tensor operations, so the engine can differentiate
it again (second derivatives, `create_graph=True`).
""",
    ),
    (
        "code",
        r"""
class Softplus(autodiff.Function):
    '''y = log(1 + exp(x))        dL/dx = dL/dy * sigmoid(x)'''

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return np.logaddexp(0.0, x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * x.sigmoid()


x = autodiff.tensor([-2.0, 0.0, 3.0], requires_grad=True)
y = Softplus.apply(x)
print(y)
print(y.grad_fn.name(), "| its rule:", Softplus.__doc__)
""",
    ),
    (
        "markdown",
        r"""
## 2. `gradcheck`: the whole Jacobian

`autodiff.gradcheck(f, inputs)` builds the Jacobian twice, in float64: once with
the engine (one backward pass per output element, with a one-hot upstream
gradient) and once by central differences
$\big(f(x + \varepsilon e_j) - f(x - \varepsilon e_j)\big) / 2\varepsilon$,
and compares them entry by entry.  `gradgradcheck` does the same for the
backward pass itself (second derivatives).
""",
    ),
    (
        "code",
        r"""
x = autodiff.randn(6, dtype=autodiff.float64, requires_grad=True)
print("gradcheck:    ", autodiff.gradcheck(Softplus.apply, (x,)))
print("gradgradcheck:", autodiff.gradgradcheck(Softplus.apply, (x,)))
""",
    ),
    (
        "markdown",
        r"""
## 3. Bug 1: forgetting the upstream gradient

The most common mistake in a hand-written backward is to return the local
derivative alone, $\sigma(x)$, and forget to multiply by the gradient that
arrives from above.  The usual quick check, `y.sum().backward()`, **cannot see it**:
the upstream gradient of a sum is all ones, and multiplying by one changes nothing.
""",
    ),
    (
        "code",
        r"""
class SoftplusForgetsGrad(Softplus):
    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return x.sigmoid()  # BUG: should be grad * x.sigmoid()


x = autodiff.randn(5, dtype=autodiff.float64, requires_grad=True)
SoftplusForgetsGrad.apply(x).sum().backward()
expected = x.detach().sigmoid()
print("y.sum().backward() check passes:", np.allclose(x.grad.numpy(), expected.numpy()))
""",
    ),
    (
        "markdown",
        r"""
`gradcheck` is not fooled: each row of its Jacobian uses a **one-hot** upstream
gradient.  The message names the worst entry and prints both Jacobians.
""",
    ),
    (
        "code",
        r"""
try:
    autodiff.gradcheck(SoftplusForgetsGrad.apply, (x,))
except autodiff.GradcheckError as error:
    print(error)
else:
    raise AssertionError("gradcheck should have caught bug 1")
""",
    ),
    (
        "markdown",
        r"""
The picture tells the story.  The true Jacobian of an elementwise op is
diagonal.  The buggy backward ignores which output the gradient came from, so
every row of its "Jacobian" is the same vector $\sigma(x)$.  Below, row $i$ of the
engine's Jacobian is the backward pass with upstream gradient $e_i$
(`autodiff.grad(y, x, grad_outputs=e_i)`), and column $j$ of the numerical one is
a central difference in $x_j$.
""",
    ),
    (
        "code",
        r"""
def jacobians(f, x, eps=1e-6):
    y = f(x)
    n, m = y.numel(), x.numel()
    analytic = np.zeros((n, m))
    for i in range(n):
        one_hot = autodiff.zeros(n, dtype=autodiff.float64)
        one_hot[i] = 1.0
        (row,) = autodiff.grad(y, x, grad_outputs=one_hot.reshape(y.shape), retain_graph=True)
        analytic[i] = row.numpy().reshape(-1)
    numeric = np.zeros((n, m))
    base = x.detach().numpy().reshape(-1)
    for j in range(m):
        step = np.zeros(m)
        step[j] = eps
        plus = f(autodiff.tensor(base + step)).numpy().reshape(-1)
        minus = f(autodiff.tensor(base - step)).numpy().reshape(-1)
        numeric[:, j] = (plus - minus) / (2 * eps)
    return analytic, numeric


analytic, numeric = jacobians(SoftplusForgetsGrad.apply, x)
fig, axes = plt.subplots(1, 2, figsize=(7, 3.2), layout="constrained")
for ax, matrix, title in zip(axes, (numeric, analytic), ("finite differences", "the buggy backward")):
    image = ax.imshow(matrix, cmap="viridis", vmin=0, vmax=1)
    ax.set_title(title)
    ax.set_xlabel("input j")
    ax.set_ylabel("output i")
fig.colorbar(image, ax=axes, shrink=0.8)
plt.show()
""",
    ),
    (
        "markdown",
        r"""
`autodiff.testing.assert_gradients_match` makes the same point with a single
backward pass: it draws a **random** upstream gradient $v$ and compares the
engine's $v^\top J$ with the finite-difference derivative of $\langle v, f(x)\rangle$.
""",
    ),
    (
        "code",
        r"""
try:
    assert_gradients_match(SoftplusForgetsGrad.apply, x)
except AssertionError as error:
    print(str(error).splitlines()[0])
else:
    raise AssertionError("assert_gradients_match should have caught bug 1")
""",
    ),
    (
        "markdown",
        r"""
## 4. Bug 2: right for some inputs only

The second bug is quieter.  Someone "simplified" the derivative to
$\sigma(|x|)$, which is right for $x \ge 0$ and wrong for every negative $x$.
A test that happens to use `autodiff.rand` (values in $[0, 1)$) passes:
""",
    ),
    (
        "code",
        r"""
class SoftplusAbs(Softplus):
    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * x.abs().sigmoid()  # BUG: sigmoid(|x|) != sigmoid(x) for x < 0


x_positive = autodiff.rand(8, dtype=autodiff.float64, requires_grad=True)
print("gradcheck on inputs in [0, 1):", autodiff.gradcheck(SoftplusAbs.apply, (x_positive,)))
""",
    ),
    (
        "markdown",
        r"""
A **property test** does not rely on our choice of inputs.  The property is
"for every input shape, every input value in the domain and every upstream
gradient, the engine's gradient equals the finite-difference one".
`check_gradients(fn, elements=(low, high))` turns it into a Hypothesis test:
each example draws a shape, values and the seed of the random upstream gradient,
and calls `assert_gradients_match`.  When an example fails, Hypothesis
**shrinks** it: it keeps simplifying the input (fewer dimensions, smaller sides,
rounder numbers) while the test still fails, and reports the simplest one.

(`derandomize=True` makes the search repeatable; `database=None` stops Hypothesis
from remembering failures between runs, so that this notebook always shows the
same search.)
""",
    ),
    (
        "code",
        r"""
repeatable = hypothesis.settings(derandomize=True, database=None, max_examples=100)

test_softplus_abs = repeatable(check_gradients(SoftplusAbs.apply, elements=(-10, 10)))
try:
    test_softplus_abs()
except AssertionError as error:
    print(str(error).splitlines()[0])
    print()
    print(error.__notes__[0])  # the shrunk input that Hypothesis reports
else:
    raise AssertionError("the property test should have caught bug 2")
""",
    ),
    (
        "markdown",
        r"""
Hypothesis found a failure and shrank it to a **single negative number** (a 0-d
tensor): no shape, no large values, just the sign.  That points straight at the bug.  Plotting the
three derivatives makes it plain too:
""",
    ),
    (
        "code",
        r"""
grid = np.linspace(-6, 6, 241)
g = autodiff.tensor(grid, requires_grad=True)
curves = {}
for name, op in [("Softplus", Softplus), ("SoftplusAbs (bug 2)", SoftplusAbs)]:
    (curves[name],) = autodiff.grad(op.apply(g).sum(), g)

fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
axes[0].plot(grid, np.logaddexp(0, grid), color="k")
axes[0].set_title("softplus(x) = log(1 + exp(x))")
axes[1].plot(grid, curves["Softplus"].numpy(), label="correct: sigmoid(x)", lw=3, alpha=0.5)
axes[1].plot(grid, curves["SoftplusAbs (bug 2)"].numpy(), "--", label="bug 2: sigmoid(|x|)")
axes[1].set_title("the derivative, from backward()")
axes[1].legend()
for ax in axes:
    ax.set_xlabel("x")
    ax.axvline(0, color="0.8", lw=0.8)
plt.show()
""",
    ),
    (
        "markdown",
        r"""
## 5. The fix, and a test to keep

The correct `Softplus` passes the same property test, with inputs drawn from a
wider range (and scalars, vectors, matrices and 3-d arrays of sides 1 to 4).
With `order=2` the test also checks the backward pass itself against finite
differences: the second derivatives, which `create_graph=True` relies on.
""",
    ),
    (
        "code",
        r"""
test_softplus = repeatable(check_gradients(Softplus.apply, elements=(-30, 30)))
test_softplus()
print("Softplus: the property held for every drawn example (max_examples=100)")

# order=2 also checks the backward pass itself (second derivatives), as gradgradcheck does
test_softplus_second_order = repeatable(check_gradients(Softplus.apply, elements=(-30, 30), order=2))
test_softplus_second_order()
print("Softplus, second derivatives: held for every drawn example too")

# the finished op also matches the same formula composed from built-in ops
x = autodiff.randn(4, 3, dtype=autodiff.float64)
print("forward equals log(1 + exp(x)):", autodiff.allclose(Softplus.apply(x), (1 + x.exp()).log()))
""",
    ),
    (
        "markdown",
        r"""
In a project, put the property test in a test file and let pytest collect it.
The Hypothesis profile of the test suite decides how many examples run:

```python
# tests/test_my_ops.py
from autodiff.testing import check_gradients
from my_ops import Softplus

test_softplus = check_gradients(Softplus.apply, elements=(-30, 30))
test_softplus_second_order = check_gradients(Softplus.apply, elements=(-30, 30), order=2)
test_softplus_with_broadcasting = check_gradients(
    lambda a, b: Softplus.apply(a * b), num_inputs=2
)
```

Three habits make gradient tests find bugs: a **random** upstream gradient
(never only `.sum()`), **float64** (finite differences in float32 are too noisy to
tell a bug from rounding), and inputs **drawn** over the whole domain rather than
picked by hand.
""",
    ),
    (
        "markdown",
        r"""
## 6. The first wrong op inside a network

A property test checks one op on its own.  Once a hand-written `Function` is
inside a network, a wrong backward shows up only as a wrong gradient of the loss:
a finite-difference check of the whole network says *that* something is wrong,
not *what*.  `autodiff.testing.check_graph` says what: it re-runs every op of the
recorded graph, one at a time, on (float64 copies of) the very inputs that op
saw, compares the op's `backward` with finite differences of its own `forward`,
and reports the first wrong op in the order `backward()` runs them.

A small CNN with a hand-written ReLU whose mask has a planted bug: it lets the
gradient through for $x \ge -0.5$ instead of $x > 0$.
""",
    ),
    (
        "code",
        r"""
import nn
import nn.functional as F
import visualize
from autodiff.testing import check_graph, record_inputs
from nn import datasets
from nn.data import DataLoader
from nn.transforms import Compose, Normalize, ToTensor


class ReLUWithBug(autodiff.Function):
    '''y = max(x, 0)        dL/dx = dL/dy * [x > 0]'''

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return np.maximum(x, 0)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * (x >= -0.5)  # BUG: the mask should be x > 0


class HandWrittenReLU(nn.Module):
    def __init__(self, function):
        super().__init__()
        self.function = function

    def forward(self, x):
        return self.function.apply(x)


def small_cnn(relu_function):
    autodiff.manual_seed(0)  # the same weights for every version
    return nn.Sequential(
        nn.Conv2d(1, 4, kernel_size=3, padding=1),  # (N, 1, 8, 8) -> (N, 4, 8, 8)
        HandWrittenReLU(relu_function),
        nn.MaxPool2d(2),  # -> (N, 4, 4, 4)
        nn.Flatten(),
        nn.Linear(4 * 4 * 4, 10),
    )


digits = datasets.Digits(train=True, transform=Compose([ToTensor(), Normalize((0.0,), (16 / 255,))]))
X, y = next(iter(DataLoader(digits, batch_size=8)))
model = small_cnn(ReLUWithBug)

# the symptom: the loss's gradient for one weight of the first convolution, against a central difference
weight = model[0].weight
loss = F.cross_entropy(model(X), y)
loss.backward()
h = 1e-3
with autodiff.no_grad():
    weight[0, 0, 1, 1] += h
    plus = F.cross_entropy(model(X), y).item()
    weight[0, 0, 1, 1] -= 2 * h
    minus = F.cross_entropy(model(X), y).item()
    weight[0, 0, 1, 1] += h
print(f"dL/dW[0, 0, 1, 1]: engine {weight.grad[0, 0, 1, 1].item():.5f}, central difference {(plus - minus) / (2 * h):.5f}")
""",
    ),
    (
        "markdown",
        r"""
Wrong, but where?  `check_graph` answers.  The forward pass runs inside
`record_inputs()`, which keeps a copy of what each op sees (or pass a function,
`check_graph(lambda: F.cross_entropy(model(X), y))`, which does both):
""",
    ),
    (
        "code",
        r"""
with record_inputs():
    loss = F.cross_entropy(model(X), y)
report = check_graph(loss)
print(report)
assert report.wrong.name == "ReLUWithBug" and report.wrong.where == "HandWrittenReLU '1'"
assert "expected 0 (finite differences), got 1 (ReLUWithBug.backward)" in report.wrong.message
assert all(op.status == "right" for op in report.ops if op is not report.wrong)
""",
    ),
    (
        "markdown",
        r"""
The ops that `backward()` runs before it (the loss, the linear layer, the max
pooling) are right; the first wrong one is the hand-written ReLU, in module `1`
of the model.  For an
element-wise op the report gives the **local derivative** itself at one entry:
where $-0.5 \le x \le 0$ the true derivative of $\max(x, 0)$ is 0, and the
backward returned 1.  The ops after it in backward order (the convolution's)
were checked on their own and are right too: the convolution's gradients are
wrong in the network only because they receive a wrong one.  On the picture, the
wrong op is marked in red (`highlight=report`):
""",
    ),
    (
        "code",
        r"""
picture = visualize.draw_graph(loss, highlight=report, show_values=False, rankdir="TB")
assert picture.source.count("#cc0000") == 1  # one op marked
picture
""",
    ),
    (
        "code",
        r"""
class ReLUFixed(ReLUWithBug):
    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * (x > 0)


fixed = small_cnn(ReLUFixed)
report = check_graph(lambda: F.cross_entropy(fixed(X), y))
assert report, report
print(str(report).splitlines()[:2])
""",
    ),
    (
        "markdown",
        r"""
## Exercises

1. Write `Hypot(a, b)` $= \sqrt{a^2 + b^2}$ as a `Function` of two inputs and test
   it with `check_gradients(Hypot.apply, num_inputs=2, avoid=(0,))`.  Why does the
   test need `avoid`?  (The engine sums the gradient over broadcast dimensions for
   you: check that broadcast pairs of shapes pass too.)
2. Plant a **transposition** bug in a custom matrix product `Y = A @ B`
   (return `grad.T @ B` for the gradient of `A`, say).  Which shapes does
   Hypothesis shrink to, and why can square matrices alone hide this bug?
3. Compute softplus as `np.log(1 + np.exp(x))` in the forward.  Which property
   test, with which `elements`, catches the overflow?  What does Hypothesis shrink to?
4. Run `autodiff.gradcheck` on `Softplus.apply` with float32 inputs.  Read the
   warning, then explain why finite differences need float64.
5. Write `backward` with NumPy instead of tensor operations
   (`Tensor(grad.numpy() * ...)`).  Which of `gradcheck`, `gradgradcheck` and
   `check_gradients(..., order=2)` still pass, and why?
6. Plant a bug in a *built-in* place instead: write a `Function` for the linear
   layer's bias addition that forgets to sum the gradient over the batch (return
   `grad` for the bias).  What does `check_graph` report, and what does the engine
   say first?
""",
    ),
]
