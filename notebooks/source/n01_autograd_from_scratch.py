"""Cells of notebooks/01_autograd_from_scratch.ipynb (built by notebooks/build.py)."""

from shared_setup import setup_cell

CELLS = [
    (
        "markdown",
        r"""
# 1. Autograd from scratch

**What this notebook teaches.** How reverse-mode automatic differentiation
(back-propagation) computes every gradient of a loss in one backward sweep:

1. the chain rule on a small scalar expression, drawn with its values and gradients;
2. a twenty-line autograd for scalars, written here, and why it must visit the
   graph in **topological order** (a node used twice breaks the naive walk);
3. why gradients **accumulate** in `.grad`, and what `no_grad` is for;
4. the same with tensors: a linear layer, broadcasting, and why the bias
   gradient is a sum over the batch.

`autodiff` has PyTorch's API: apart from the drawings (`visualize`) and the look
at the engine's order (`autodiff.engine`), each line below is PyTorch code with
`torch` renamed `autodiff`.  Run the cells top to bottom; the exercises are at the end.
""",
    ),
    setup_cell("import visualize", fast=False),
    (
        "markdown",
        r"""
## 1. The chain rule on a scalar expression

Take $L = (a\,b + c)\,f$ and name the intermediate results:
$e = a\,b$, $d = e + c$, $L = d\,f$.
The chain rule gives every derivative from **local** derivatives, starting at the output:

$$
\frac{\partial L}{\partial d} = f,\qquad
\frac{\partial L}{\partial f} = d,\qquad
\frac{\partial L}{\partial c} = \frac{\partial L}{\partial d}\cdot 1,\qquad
\frac{\partial L}{\partial e} = \frac{\partial L}{\partial d}\cdot 1,\qquad
\frac{\partial L}{\partial a} = \frac{\partial L}{\partial e}\, b,\qquad
\frac{\partial L}{\partial b} = \frac{\partial L}{\partial e}\, a .
$$

With $a=2,\ b=-3,\ c=10,\ f=-2$: $e=-6$, $d=4$, $L=-8$, and
$\partial L/\partial a = f\,b = 6$, $\partial L/\partial b = f\,a = -4$,
$\partial L/\partial c = f = -2$, $\partial L/\partial f = d = 4$.
The engine records each operation as it runs and then applies exactly these rules
backwards.  `retain_grad()` asks it to keep the gradients of intermediate results
too (normally only leaves keep theirs).
""",
    ),
    (
        "code",
        r"""
a = autodiff.tensor(2.0, requires_grad=True)
b = autodiff.tensor(-3.0, requires_grad=True)
c = autodiff.tensor(10.0, requires_grad=True)
f = autodiff.tensor(-2.0, requires_grad=True)

e = a * b
d = e + c
L = d * f
for name, t in dict(a=a, b=b, c=c, f=f, e=e, d=d, L=L).items():
    t.name = name  # only for the drawing below
for t in (e, d, L):
    t.retain_grad()

L.backward()
print("L =", L.item())
for name, t in dict(a=a, b=b, c=c, f=f, e=e, d=d).items():
    print(f"dL/d{name} = {t.grad.item():5.1f}")
""",
    ),
    (
        "markdown",
        r"""
The graph the engine recorded, drawn with `visualize.draw_graph`.  Blue boxes
are the leaves, white ones the intermediate results and the yellow one the
result $L$, each with its value (`data`) and gradient (`grad`); the grey nodes
are the operations, with their forward formula and local rule ($z = x y$:
$\partial L/\partial x = \partial L/\partial z \cdot y$).
The step numbers give the order in which backward visits the operations and
writes each leaf's `.grad`.  (The names come from a `.name` attribute set on each
tensor, only for the drawing.)  The cell checks what the picture says.
""",
    ),
    (
        "code",
        r"""
graph = visualize.trace_graph(L)
kinds = {t.label: t.kind for t in graph.tensors}
assert kinds == dict(a="leaf", b="leaf", c="leaf", f="leaf", e="intermediate", d="intermediate", L="root")
assert [(op.name, op.formula) for op in graph.ops] == [("Mul", "z = x * y"), ("Add", "z = x + y"), ("Mul", "z = x * y")]
assert graph.ops[0].rule.splitlines() == ["dL/dx = dL/dz * y", "dL/dy = dL/dz * x"]
visualize.draw_graph(
    L,
    show_values=True,
    show_grads=True,
    show_rules=True,
    show_order=True,
)
""",
    ),
    (
        "markdown",
        r"""
A gradient is a rate of change, so a finite difference must agree with it:
nudge $a$ by $h$ and see how much $L$ moves.
""",
    ),
    (
        "code",
        r"""
def L_of(a, b=-3.0, c=10.0, f=-2.0):
    return (a * b + c) * f


h = 1e-6
print("central difference:", (L_of(2.0 + h) - L_of(2.0 - h)) / (2 * h))
print("engine:            ", a.grad.item())
""",
    ),
    (
        "markdown",
        r"""
## 2. An autograd in twenty lines, and why the order matters

Here is the whole idea for scalars (in the spirit of Karpathy's *micrograd*).
Each `Value` remembers the values it was made from and a `_backward` closure
that pushes **its own** gradient to them with the local derivative.
""",
    ),
    (
        "code",
        r"""
class Value:
    def __init__(self, data, children=(), op=""):
        self.data, self.grad = data, 0.0
        self._prev, self._op = children, op
        self._backward = lambda: None

    def __add__(self, other):
        out = Value(self.data + other.data, (self, other), "+")

        def _backward():  # d(x + y)/dx = 1, d(x + y)/dy = 1
            self.grad += out.grad
            other.grad += out.grad

        out._backward = _backward
        return out

    def __mul__(self, other):
        out = Value(self.data * other.data, (self, other), "*")

        def _backward():  # d(x y)/dx = y, d(x y)/dy = x
            self.grad += other.data * out.grad
            other.grad += self.data * out.grad

        out._backward = _backward
        return out

    def __repr__(self):
        return f"Value(data={self.data}, grad={self.grad})"
""",
    ),
    (
        "markdown",
        r"""
A node may run its `_backward` only once **all** the gradient that flows into it
has arrived, that is, after every node that uses it.  Consider an expression that
uses the intermediate $u = 2a$ twice:

$$ u = 2a,\qquad t = u\cdot u,\qquad L = u + 3t . $$

$u$ receives gradient along two paths: $\partial L/\partial u = 1 + 3\cdot 2u$.
With $a = 1$: $u = 2$, $\partial L/\partial u = 13$ and $\partial L/\partial a = 26$.
A naive walk (depth first from the output, calling `_backward` the first time it
meets a node) reaches $u$ directly from $L$ before the path through $t$ has
delivered its share:
""",
    ),
    (
        "code",
        r"""
def expression(a_value):
    a = Value(a_value)
    u = Value(2.0) * a
    t = u * u
    L = u + Value(3.0) * t
    return a, u, L


def naive_backward(root):
    root.grad = 1.0
    seen = set()

    def visit(node):
        if id(node) in seen:
            return
        seen.add(id(node))
        node._backward()  # too early if another path into `node` is still pending
        for child in node._prev:
            visit(child)

    visit(root)


def topological_backward(root):
    order, seen = [], set()

    def build(node):  # every node after all the nodes it depends on
        if id(node) not in seen:
            seen.add(id(node))
            for child in node._prev:
                build(child)
            order.append(node)

    build(root)
    root.grad = 1.0
    for node in reversed(order):  # the output first, each node after all its users
        node._backward()


a1, u1, L1 = expression(1.0)
naive_backward(L1)
a2, u2, L2 = expression(1.0)
topological_backward(L2)
print(f"naive walk:        dL/da = {a1.grad:3.0f}   (wrong, although dL/du = {u1.grad:.0f} in the end)")
print(f"topological order: dL/da = {a2.grad:3.0f}   (right: 2 * 13)")
""",
    ),
    (
        "markdown",
        r"""
The naive walk called `u._backward()` when `u.grad` held only the 1 that came
straight from $L$, and passed $2 \cdot 1 = 2$ on to $a$; the 12 that arrived later
through $t$ never reached $a$.  The topological order fixes this: reversed, it
lists every node after all the nodes that use it.

`autodiff` does the same, with an explicit stack instead of recursion (so that a
chain of 100,000 operations does not overflow Python's recursion limit) and with
the pending gradients kept in a dictionary keyed by node.  Here is its order for
the same expression, and the graph with the step numbers:
""",
    ),
    (
        "code",
        r"""
from autodiff.engine import topological_order

a = autodiff.tensor(1.0, requires_grad=True)
with visualize.keep_values():  # keep the value of the temporary 3 * t, for the picture
    u = 2 * a
    t = u * u
    L = u + 3 * t
print([node.name() for node in topological_order(L.grad_fn)])

visualize.retain_grads(L)  # keep dL/du and dL/dt too, for the picture
L.backward()
print("dL/da =", a.grad.item())
a.name, u.name, t.name, L.name = "a", "u", "t", "L"
graph = visualize.trace_graph(L)
ids = {t.label: t.id for t in graph.tensors}
(square,) = [op for op in graph.ops if op.output == ids["t"]]
assert graph.inputs_of(square.id) == [ids["u"], ids["u"]]  # u is used twice: one node, two edges
visualize.draw_graph(L, show_values=True, show_grads=True, show_order=True)
""",
    ),
    (
        "markdown",
        r"""
## 3. Gradients accumulate; `no_grad` switches recording off

`backward()` **adds** into `.grad` (that is what a leaf used twice needs, and it
lets a large batch be processed in pieces).  A training loop therefore clears the
gradients before each step (`optimizer.zero_grad()`, or `p.grad = None`).

By default the graph's saved values are freed after backward, so a second
backward through it needs `retain_graph=True` the first time.
""",
    ),
    (
        "code",
        r"""
w = autodiff.tensor(3.0, requires_grad=True)
y = w * w  # dy/dw = 2 w = 6
y.backward(retain_graph=True)
print("after one backward:  ", w.grad)
y.backward()
print("after two backwards: ", w.grad, "(6 + 6)")
w.grad = None  # what optimizer.zero_grad() does
try:
    y.backward()  # the graph was freed by the second backward
except RuntimeError as error:
    print("a third backward:     RuntimeError:", str(error)[:90], "...")
""",
    ),
    (
        "markdown",
        r"""
Inside `with autodiff.no_grad():` nothing is recorded: results do not require
grad and carry no `grad_fn`.  That is how the update step of gradient descent is
written, in place and without making the update itself part of the next graph.
Here, gradient descent minimises $(w - 3)^2$ from $w = -1$:
""",
    ),
    (
        "code",
        r"""
w = autodiff.tensor(-1.0, requires_grad=True)
lr, path = 0.1, []
for step in range(30):
    loss = (w - 3) ** 2
    loss.backward()
    path.append((w.item(), loss.item()))
    with autodiff.no_grad():
        w -= lr * w.grad  # in place: w stays the same leaf tensor
    w.grad = None

with autodiff.no_grad():
    z = w * 2
print("w after 30 steps:", round(w.item(), 4), "| recorded under no_grad?", z.requires_grad)

grid = np.linspace(-1.5, 5, 200)
fig, ax = plt.subplots(figsize=(6, 3))
ax.plot(grid, (grid - 3) ** 2, color="0.6", label="$(w-3)^2$")
ws, losses = zip(*path)
ax.plot(ws, losses, "o-", color="C3", markersize=3, label="gradient descent, lr = 0.1")
ax.set_xlabel("w")
ax.set_ylabel("loss")
ax.legend()
plt.show()
""",
    ),
    (
        "markdown",
        r"""
## 4. The same with tensors, and broadcasting

A fully connected layer computes $Y = X W^\top + b$ for a batch $X$ of shape
$(N, \text{in})$, weights $W$ of shape $(\text{out}, \text{in})$ and a bias $b$
of shape $(\text{out},)$.  The bias is **broadcast**: the same $b$ is added to each
of the $N$ rows.  A value used $N$ times receives the sum of the $N$ gradients, so

$$ \frac{\partial L}{\partial b} = \sum_{n} \frac{\partial L}{\partial Y_{n,:}},
\qquad \frac{\partial L}{\partial W} = \Big(\frac{\partial L}{\partial Y}\Big)^{\!\top} X,
\qquad \frac{\partial L}{\partial X} = \frac{\partial L}{\partial Y}\, W . $$

Every gradient has exactly the shape of its tensor; the engine undoes
broadcasting by summing over the broadcast dimensions (`sum_to_shape`).
""",
    ),
    (
        "code",
        r"""
N, n_in, n_out = 4, 3, 2
X = autodiff.randn(N, n_in)
W = autodiff.randn(n_out, n_in, requires_grad=True)
b = autodiff.zeros(n_out, requires_grad=True)

with visualize.keep_values():  # for the picture below: values, and X (no gradient) as a box
    Y = X @ W.T + b  # (4, 3) @ (3, 2) + (2,) -> (4, 2)
Y.retain_grad()
loss = (Y**2).mean()
visualize.retain_grads(loss)  # every intermediate gradient, for the picture below
loss.backward()

print("shapes: W", W.shape, "W.grad", W.grad.shape, "| b", b.shape, "b.grad", b.grad.shape)
print("dL/db            ", b.grad.numpy())
print("sum_n dL/dY[n, :]", Y.grad.sum(0).numpy())
print("dL/dW == dL/dY^T X:", np.allclose(W.grad.numpy(), Y.grad.numpy().T @ X.numpy()))
""",
    ),
    (
        "code",
        r"""
X.name, W.name, b.name, Y.name, loss.name = "X", "W", "b", "Y", "loss"
graph = visualize.trace_graph(loss)
(matmul,) = [op for op in graph.ops if op.name == "MatMul"]
inputs = {t.id: t for t in graph.tensors}
assert sorted(inputs[i].kind for i in graph.inputs_of(matmul.id)) == ["constant", "intermediate"]  # X, W^T
visualize.draw_graph(loss, show_values=True, show_grads=True, rankdir="TB")
""",
    ),
    (
        "markdown",
        r"""
## Exercises

1. Extend `Value` with `__pow__` (for a number exponent), `tanh` and `exp`, and
   check each gradient against a central difference.
2. Build a graph where `naive_backward` gets **every** gradient right, and
   explain why it does.  Then find the smallest graph where it is wrong.
3. Run `L.backward()` twice on the expression of section 1 (with
   `retain_graph=True` the first time).  Predict `a.grad` first.
4. In section 4, replace the bias of shape `(2,)` by one of shape `(4, 1)`.
   What does broadcasting now add it to, and what is the shape and value of
   `b.grad`?  Check your answer by summing `Y.grad` yourself.
5. Time `autodiff.engine.topological_order` on a chain of 100,000 additions
   (`x = x + 1` in a loop).  Why would the recursive `build` above fail there?
6. Step through a backward pass yourself: build the expression of section 1 again
   (without calling `backward()`), write `visualize.backward_stepper(L, "steps.html")`
   and open `steps.html` in a browser.  Before each click on *Next*, predict which
   gradient appears.
""",
    ),
]
