"""Cells of notebooks/04_convolution_and_pooling.ipynb (built by notebooks/build.py)."""

from shared_setup import setup_cell

CELLS = [
    (
        "markdown",
        r"""
# 4. Convolution and pooling

**What this notebook teaches.** How convolution and pooling layers compute, and
how gradients flow back through them:

1. **unfold** (im2col): the sliding windows of an image as a *view*, no copy;
2. **convolution = unfold + matrix product**, checked against `nn.functional.conv2d`;
3. **max pooling routes the gradient** to the maximum of each window (average
   pooling spreads it);
4. a **backward trace** through a small CNN, op by op, with the shapes of every
   gradient;
5. the gradient of a convolution's **input**, $\partial L/\partial x =
   \operatorname{fold}(W^\top g)$, traced and checked by hand on a tiny example;
6. a CNN trained on handwritten digits, its **learned filters** drawn as images,
   and the CNN against an MLP with a similar number of parameters.
""",
    ),
    setup_cell(r"""
import nn
import nn.functional as F
import visualize
from autodiff.ops import Windows2d
from nn import datasets
from nn.data import DataLoader
from nn.transforms import Compose, Normalize, ToTensor
"""),
    (
        "markdown",
        r"""
## 1. Unfold: every window, without copying

A $k_h \times k_w$ kernel sliding over an $H \times W$ image with stride 1
visits $(H - k_h + 1)(W - k_w + 1)$ windows.  The engine's one sliding-window
primitive, `Windows2d`, returns them as an array of shape
$(N, C, o_h, o_w, k_h, k_w)$: `windows[n, c, i, j]` is the window whose top-left
pixel is $(i, j)$.  It is a NumPy **view**: the same memory as the image, read
with different strides, so it costs no copy however large the kernel.
""",
    ),
    (
        "code",
        r"""
x = autodiff.arange(16.0).reshape(1, 1, 4, 4)
windows = Windows2d.apply(x, (2, 2), (1, 1), (1, 1))  # kernel 2x2, stride 1, dilation 1
print("image:\n", x[0, 0].numpy())
print("windows.shape:", windows.shape, "  (N, C, out_h, out_w, k_h, k_w)")
print("window (0, 0):\n", windows[0, 0, 0, 0].numpy())
print("window (1, 2):\n", windows[0, 0, 1, 2].numpy())
print("a view of the image's memory:", np.shares_memory(windows.numpy(), x.numpy()))
print("strides in bytes, image:", x.numpy().strides, " windows:", windows.numpy().strides)
""",
    ),
    (
        "markdown",
        r"""
The strides say it all: moving one window to the right or one kernel tap to the
right both advance 4 bytes (one float32) in the image.  `F.unfold` is PyTorch's
im2col layout, $(N, C k_h k_w, L)$ with one **column** per window; that one is a
real copy, because a matrix product needs the columns laid out in memory.
""",
    ),
    (
        "code",
        r"""
columns = F.unfold(x, kernel_size=2)
print("F.unfold:", columns.shape, "  (N, C*k_h*k_w, number of windows)")
print(columns[0].numpy())
""",
    ),
    (
        "markdown",
        r"""
## 2. Convolution is unfold followed by a matrix product

A convolution layer (a cross-correlation, as in every deep-learning library)
with $C_\text{out}$ filters of shape $(C_\text{in}, k_h, k_w)$ computes

$$ \text{out}[n, o, i, j] = b_o + \sum_{c, p, q} W[o, c, p, q]\;x[n, c, i + p, j + q] . $$

For each output pixel $(i, j)$ that is the dot product of the flattened window
with each flattened filter: all of them at once is one matrix product.  Here it
is, written with the engine's operations only:
""",
    ),
    (
        "code",
        r"""
def conv2d_by_hand(x, weight, bias):
    N, C, H, W = x.shape
    O, _, kh, kw = weight.shape
    windows = Windows2d.apply(x, (kh, kw), (1, 1), (1, 1))  # (N, C, oh, ow, kh, kw), a view
    oh, ow = windows.shape[2], windows.shape[3]
    patches = windows.permute(0, 2, 3, 1, 4, 5).reshape(N, oh * ow, C * kh * kw)  # a row per output pixel
    out = patches @ weight.reshape(O, C * kh * kw).T + bias  # (N, oh*ow, O)
    return out.permute(0, 2, 1).reshape(N, O, oh, ow)  # (N, O, oh, ow)


x = autodiff.randn(2, 3, 7, 7, dtype=autodiff.float64, requires_grad=True)
weight = autodiff.randn(4, 3, 3, 3, dtype=autodiff.float64, requires_grad=True)
bias = autodiff.randn(4, dtype=autodiff.float64, requires_grad=True)
upstream = autodiff.randn(2, 4, 5, 5, dtype=autodiff.float64)  # a random dL/d(out)

ours = conv2d_by_hand(x, weight, bias)
ours.backward(upstream)
grads_ours = [t.grad.numpy().copy() for t in (x, weight, bias)]
for t in (x, weight, bias):
    t.grad = None

theirs = F.conv2d(x, weight, bias)
theirs.backward(upstream)
print("output shape:", ours.shape)
print("outputs equal:", np.allclose(ours.detach().numpy(), theirs.detach().numpy()))
for name, t, g in zip(("x", "weight", "bias"), (x, weight, bias), grads_ours):
    print(f"dL/d{name:<6} equal: {np.allclose(g, t.grad.numpy())}   shape {t.grad.shape}")
""",
    ),
    (
        "markdown",
        r"""
The backward pass of `conv2d_by_hand` needs no new rule: the matrix product's
rule gives the gradients of the patches and of the weights, and the backward of
`Windows2d` ("fold") adds each window's gradient back onto the pixels it was
read from: a pixel that sits in 9 windows collects 9 contributions.

With PyTorch installed, the same numbers come out of `torch.nn.functional.conv2d`:
""",
    ),
    (
        "code",
        r"""
try:
    import torch as pytorch
except ImportError:
    print("PyTorch is not installed: comparison skipped")
else:
    xt = pytorch.tensor(x.detach().numpy(), requires_grad=True)
    wt = pytorch.tensor(weight.detach().numpy(), requires_grad=True)
    bt = pytorch.tensor(bias.detach().numpy(), requires_grad=True)
    pytorch.nn.functional.conv2d(xt, wt, bt).backward(pytorch.tensor(upstream.numpy()))
    print("PyTorch", pytorch.__version__)
    print("output equal:", np.allclose(theirs.detach().numpy(), pytorch.nn.functional.conv2d(xt, wt, bt).detach().numpy()))
    for name, ours_t, t in (("x", x, xt), ("weight", weight, wt), ("bias", bias, bt)):
        print(f"dL/d{name:<6} equal: {np.allclose(ours_t.grad.numpy(), t.grad.numpy())}")
""",
    ),
    (
        "markdown",
        r"""
A convolution with a hand-made kernel finds a pattern wherever it is.  Two
Sobel kernels respond to vertical and horizontal edges of a handwritten digit
(8x8 pixels, from the bundled Digits set):
""",
    ),
    (
        "code",
        r"""
digits_transform = Compose([ToTensor(), Normalize((0.0,), (16 / 255,))])  # pixels 0..16 -> [0, 1]
train_set = datasets.Digits(train=True, transform=digits_transform)
test_set = datasets.Digits(train=False, transform=digits_transform)

image, label = train_set[3]
sobel = autodiff.tensor(
    [[[[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]]], [[[-1.0, -2.0, -1.0], [0.0, 0.0, 0.0], [1.0, 2.0, 1.0]]]]
)  # (2 filters, 1 channel, 3, 3)
edges = F.conv2d(image.unsqueeze(0), sobel, padding=1)  # (1, 2, 8, 8)

fig, axes = plt.subplots(1, 3, figsize=(8, 2.8), layout="constrained")
axes[0].imshow(image[0].numpy(), cmap="gray_r")
axes[0].set_title(f"a digit {label}")
for ax, k, title in zip(axes[1:], range(2), ("vertical edges", "horizontal edges")):
    limit = edges[0, k].abs().max().item()
    ax.imshow(edges[0, k].numpy(), cmap="RdBu_r", vmin=-limit, vmax=limit)
    ax.set_title(title)
for ax in axes:
    ax.axis("off")
plt.show()
""",
    ),
    (
        "markdown",
        r"""
## 3. Max pooling routes the gradient

Max pooling keeps the largest value of each window:
$y = \max(x_1, \dots, x_k)$.  Its local derivative is 1 for the winning input
and 0 for the others, so in the backward pass **each window's upstream gradient
goes entirely to the position of its maximum**.  Average pooling,
$y = \frac{1}{k}\sum x_i$, spreads it evenly instead.
""",
    ),
    (
        "code",
        r"""
x = autodiff.randn(1, 1, 4, 4, requires_grad=True)
upstream = autodiff.tensor([[[[1.0, -2.0], [3.0, 0.5]]]])  # dL/dy, one number per window

y_max = F.max_pool2d(x, kernel_size=2)
y_max.backward(upstream)
grad_max = x.grad.clone()
x.grad = None
F.avg_pool2d(x, kernel_size=2).backward(upstream)
grad_avg = x.grad.clone()


def show(ax, array, title, cmap="RdBu_r"):
    limit = np.abs(array).max()
    ax.imshow(array, cmap=cmap, vmin=-limit, vmax=limit)
    for (i, j), v in np.ndenumerate(array):
        color = "white" if abs(v) > 0.6 * limit else "black"
        ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=9, color=color)
    if array.shape == (4, 4):
        ax.axhline(1.5, color="k", lw=2)
        ax.axvline(1.5, color="k", lw=2)
    ax.set_title(title, fontsize=10)
    ax.set_xticks([])
    ax.set_yticks([])


fig, axes = plt.subplots(1, 5, figsize=(14, 3), layout="constrained")
show(axes[0], x.detach()[0, 0].numpy(), "x (four 2x2 windows)")
show(axes[1], y_max.detach()[0, 0].numpy(), "y = max_pool2d(x, 2)")
show(axes[2], upstream[0, 0].numpy(), "upstream dL/dy")
show(axes[3], grad_max[0, 0].numpy(), "dL/dx, max pooling")
show(axes[4], grad_avg[0, 0].numpy(), "dL/dx, average pooling")
plt.show()
""",
    ),
    (
        "markdown",
        r"""
Max pooling needs no rule of its own: it is the unfold view followed by a
maximum over each window, and the maximum's rule (the gradient goes to the
argmax) and the fold do all the routing.  Written with the engine's operations:
""",
    ),
    (
        "code",
        r"""
def max_pool2d_by_hand(x, k):
    windows = Windows2d.apply(x, (k, k), (k, k), (1, 1))  # (N, C, oh, ow, k, k), stride k, a view
    N, C, oh, ow = windows.shape[:4]
    values, _ = windows.reshape(N, C, oh, ow, k * k).max(dim=-1)  # (N, C, oh, ow)
    return values


x.grad = None
y_by_hand = max_pool2d_by_hand(x, 2)
y_by_hand.backward(upstream)
print("same output as F.max_pool2d:  ", np.array_equal(y_by_hand.detach().numpy(), y_max.detach().numpy()))
print("same gradient as F.max_pool2d:", np.array_equal(x.grad.numpy(), grad_max.numpy()))
""",
    ),
    (
        "markdown",
        r"""
(`F.max_pool2d` computes exactly this, with the reshape and the maximum fused
into one primitive for speed.)

## 4. A backward trace through a small CNN

`visualize.trace_backward(loss)` runs the backward pass step by step in the
engine's order and lists, for each layer of the lecture (`conv2d`, `relu`,
`max_pool2d`, `flatten`, `linear`, `cross_entropy`), the module that ran it, the
gradient it receives, the shape of its local Jacobian and the gradients it
passes on.  Read it with the lecture's rule in mind: every layer's backward is
the chain rule over these local pieces.
""",
    ),
    (
        "code",
        r"""
small_cnn = nn.Sequential(
    nn.Conv2d(1, 2, kernel_size=3, padding=1),  # (N, 1, 8, 8) -> (N, 2, 8, 8)
    nn.ReLU(),
    nn.MaxPool2d(2),  # -> (N, 2, 4, 4)
    nn.Flatten(),  # -> (N, 32)
    nn.Linear(2 * 4 * 4, 10),  # -> (N, 10)
)
loss_fn = nn.CrossEntropyLoss()
X, y = next(iter(DataLoader(train_set, batch_size=3)))
with visualize.keep_values():
    loss = loss_fn(small_cnn(X), y)
visualize.trace_backward(loss, params=small_cnn)  # a table; print() it for plain text
""",
    ),
    (
        "markdown",
        r"""
The same graph drawn, with the step numbers of the table.  Each layer is one
op with its formula: `conv2d` ($y = W * x + b$) reads the image batch, which
needs no gradient (the dashed constant box), the filters and the bias, and only
the filters' and the bias's paths are back-propagated.  `detail="primitives"`
shows what the engine recorded for speed: inside the `Conv2d` module (`0`), one
fused op, `Conv2d`, that makes the windows of a few images at a time and
multiplies them by the filters while they are in the processor's cache (section
2's unfold and matrix product, which the engine's tests check it against; in
PyTorch's graph the same node is `ConvolutionBackward0`); inside `MaxPool2d`
(module `2`), one op that takes each window's maximum.  The cell checks these
claims on both graphs.
""",
    ),
    (
        "code",
        r"""
loss.backward()
layers = [op.name for op in visualize.trace_graph(loss, params=small_cnn).ops]
assert layers == ["cross_entropy", "linear", "flatten", "max_pool2d", "relu", "conv2d"], layers
recorded = visualize.trace_graph(loss, params=small_cnn, detail="primitives")
ops_in = {path: [op.name for op in recorded.ops if op.module == path] for path in ("0", "2")}
assert ops_in["0"] == ["Conv2d"], ops_in  # convolution: one op, unfold and product fused
assert ops_in["2"] == ["WindowMax"], ops_in  # max pooling: one op, the window maximum
visualize.draw_graph(loss, params=small_cnn, show_values=False, show_order=True, rankdir="TB")
""",
    ),
    (
        "markdown",
        r"""
## 5. The gradient of a convolution's input: fold

The first convolution's input is the image, which needs no gradient.  Every
later convolution's input is the output of the layer before, and its gradient
is exactly what back-propagation passes on.  Write the unfold of $x$ as a
matrix $U(x)$ with one column per window ($C k_h k_w$ rows, $L$ windows) and the
filters as a matrix $W$ of shape $(C_\text{out}, C k_h k_w)$: the convolution is
$Y = W\,U(x)$, with $g = \partial L/\partial Y$ of shape $(C_\text{out}, L)$, so

$$ \frac{\partial L}{\partial U} = W^\top g \qquad
   \frac{\partial L}{\partial x} = \operatorname{fold}\big(W^\top g\big) , $$

where **fold**, the backward of unfold, adds each column back onto the pixels of
its window (a pixel in 4 windows collects 4 contributions).  Fold after a
matrix product with $W^\top$ is what libraries call a *transposed convolution*.

A tiny example: one $4\times 4$ input that requires a gradient, two $3\times 3$
filters, so four windows.  The trace's `conv2d` step now also sends a gradient
to $x$, by its rule $\partial L/\partial x = \operatorname{fold}(W^\top g)$; at
`detail="primitives"` it is the fused op's step, `Conv2dBackward`, which sends
the gradients of $x$, of the filters and of the bias at once:
""",
    ),
    (
        "code",
        r"""
rng = np.random.default_rng(0)
x = autodiff.tensor(rng.normal(size=(1, 1, 4, 4)), requires_grad=True)  # float64
weight = autodiff.tensor(rng.normal(size=(2, 1, 3, 3)), requires_grad=True)
g = autodiff.tensor(rng.normal(size=(1, 2, 2, 2)))  # an upstream dL/dY
Y = F.conv2d(x, weight)  # (1, 2, 2, 2)
trace = visualize.trace_backward(Y, gradient=g)  # the lecture's level: one conv2d step
(conv,) = [step for step in trace if step.op == "conv2d"]
assert conv.grad_inputs[0] == (1, 1, 4, 4) and "dL/dx = fold(W^T g)" in conv.rule, conv
recorded = visualize.trace_backward(Y, gradient=g, detail="primitives")
conv_steps = [step for step in recorded if step.op == "Conv2dBackward"]
assert len(conv_steps) == 1 and conv_steps[0].grad_inputs[0] == (1, 1, 4, 4), conv_steps
trace
""",
    ),
    (
        "markdown",
        r"""
(The engine computes $U(x)$ of shape $(C k_h k_w, L)$ for each image, and
$Y = W\,U(x)$, which is already laid out as the output image.  For
$\partial L/\partial x$ it runs the transposed convolution as PyTorch does: one
more convolution, of $g$ padded with $k - 1 - p$ zeros on each side ($p$ the
layer's own padding: here none, so two), by the filters flipped and with their
two channel dims swapped.  It adds the same products as
fold after $W^\top g$, in another order, so the last bits may differ; a layer
with over four times as many output channels as input channels gets fold
itself, which costs less there.)  The
same gradient by hand, with
NumPy: $W^\top g$ gives one column per window, and `fold` adds the columns back
where their windows were read.
""",
    ),
    (
        "code",
        r"""
def fold(columns, height, width, kh, kw):
    # (C*kh*kw, L) columns -> (C, height, width): each window's column added back onto its pixels
    C = columns.shape[0] // (kh * kw)
    out_w = width - kw + 1
    image = np.zeros((C, height, width))
    for l in range(columns.shape[1]):  # window l has its top-left pixel at (i, j)
        i, j = divmod(l, out_w)
        image[:, i : i + kh, j : j + kw] += columns[:, l].reshape(C, kh, kw)
    return image


W_matrix = weight.detach().numpy().reshape(2, 1 * 3 * 3)  # (C_out, C*kh*kw)
g_matrix = g.numpy().reshape(2, 4)  # (C_out, L): one column per window
dU = W_matrix.T @ g_matrix  # (9, 4): what each window's pixels receive
dx_by_hand = fold(dU, 4, 4, 3, 3)

Y.backward(g)
assert np.allclose(dx_by_hand, x.grad.numpy()[0])
# unfold and fold are each other's transposes: <U(x), dU> = <x, fold(dU)>
U = F.unfold(x.detach(), kernel_size=3)[0].numpy()  # (9, 4)
assert np.isclose((U * dU).sum(), (x.detach().numpy()[0] * dx_by_hand).sum())
print("dL/dx by hand == engine's x.grad")
print("how many windows each pixel belongs to:\n", fold(np.ones((9, 4)), 4, 4, 3, 3)[0].astype(int))

fig, axes = plt.subplots(1, 3, figsize=(9, 2.8), layout="constrained")
show(axes[0], g.numpy()[0, 0], "g for filter 0 (2x2)")
show(axes[1], g.numpy()[0, 1], "g for filter 1 (2x2)")
show(axes[2], dx_by_hand[0], "dL/dx = fold(W^T g)")
plt.show()
""",
    ),
    (
        "markdown",
        r"""
## 6. A CNN on handwritten digits, and its filters

A small CNN and an MLP with about the same number of parameters, both trained
with the same optimizer, batch size and number of epochs:

* CNN: 8 filters of 5x5, ReLU, 2x2 max pooling, 16 filters of 3x3, ReLU, 2x2 max
  pooling, and a linear layer from the 16 x 2 x 2 features to 10 scores;
* MLP: 64 pixels, a hidden layer of 32 units, 10 scores.
""",
    ),
    (
        "code",
        r"""
def make_cnn():
    return nn.Sequential(
        nn.Conv2d(1, 8, kernel_size=5, padding=2),  # (N, 1, 8, 8) -> (N, 8, 8, 8)
        nn.ReLU(),
        nn.MaxPool2d(2),  # -> (N, 8, 4, 4)
        nn.Conv2d(8, 16, kernel_size=3, padding=1),  # -> (N, 16, 4, 4)
        nn.ReLU(),
        nn.MaxPool2d(2),  # -> (N, 16, 2, 2)
        nn.Flatten(),  # -> (N, 64)
        nn.Linear(64, 10),
    )


def make_mlp():
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))


def evaluate(model, loader):
    model.eval()
    correct = 0
    with autodiff.no_grad():
        for X, y in loader:
            correct += (model(X).argmax(1) == y).sum().item()
    return correct / len(loader.dataset)


def fit(model, epochs):
    optimizer = autodiff.optim.Adam(model.parameters(), lr=1e-2)
    train_loader = DataLoader(train_set, batch_size=32, shuffle=True)
    test_loader = DataLoader(test_set, batch_size=256)
    history = []
    for _ in range(epochs):
        model.train()
        for X, y in train_loader:
            loss = F.cross_entropy(model(X), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        history.append(evaluate(model, test_loader))
    return history


epochs = 3 if FAST else 15
autodiff.manual_seed(0)
cnn = make_cnn()
autodiff.manual_seed(0)
mlp = make_mlp()
histories = {}
for name, model in (("CNN", cnn), ("MLP", mlp)):
    histories[name] = fit(model, epochs)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"{name}: {n_params:5d} parameters, test accuracy after {epochs} epochs: {histories[name][-1]:.1%}")
""",
    ),
    (
        "code",
        r"""
fig, ax = plt.subplots(figsize=(6, 3))
for name, history in histories.items():
    ax.plot(np.arange(1, epochs + 1), 100 * np.array(history), "o-", label=name)
ax.set_xlabel("epoch")
ax.set_ylabel("test accuracy (%)")
ax.legend()
plt.show()
""",
    ),
    (
        "markdown",
        r"""
The eight 5x5 filters of the CNN's first layer, and what each one makes of a
test digit (after the ReLU): each filter is a small pattern detector, applied
at every position of the image with the same weights.
""",
    ),
    (
        "code",
        r"""
filters = cnn[0].weight.detach().numpy()[:, 0]  # (8, 5, 5)
image, label = test_set[0]
cnn.eval()
with autodiff.no_grad():
    maps = F.relu(cnn[0](image.unsqueeze(0)))[0].numpy()  # (8, 8, 8)

fig, axes = plt.subplots(2, 9, figsize=(13, 3.4), layout="constrained")
axes[0, 0].imshow(image[0].numpy(), cmap="gray_r")
axes[0, 0].set_title(f"input: {label}", fontsize=9)
axes[1, 0].axis("off")
for k in range(8):
    limit = np.abs(filters[k]).max()
    axes[0, k + 1].imshow(filters[k], cmap="RdBu_r", vmin=-limit, vmax=limit)
    axes[0, k + 1].set_title(f"filter {k}", fontsize=9)
    axes[1, k + 1].imshow(maps[k], cmap="magma")
    axes[1, k + 1].set_title(f"feature map {k}", fontsize=9)
for ax in axes.flat:
    ax.set_xticks([])
    ax.set_yticks([])
plt.show()
""",
    ),
    (
        "markdown",
        r"""
One property that sets the two models apart: the CNN applies the same filters
at every position, while each weight of the MLP belongs to one pixel.  What
happens to the test accuracy when every test image is shifted by one pixel?
""",
    ),
    (
        "code",
        r"""
class Shifted:
    '''The test set with every image moved by (dy, dx) pixels (zeros fill the gap).'''

    def __init__(self, dataset, dy, dx):
        self.dataset, self.dy, self.dx = dataset, dy, dx

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, index):
        image, label = self.dataset[index]
        padded = F.pad(image, (1, 1, 1, 1))  # (1, 10, 10)
        return padded[:, 1 - self.dy : 9 - self.dy, 1 - self.dx : 9 - self.dx], label


print("test accuracy       unshifted  shifted right  shifted down")
for name, model in (("CNN", cnn), ("MLP", mlp)):
    scores = [
        evaluate(model, DataLoader(data, batch_size=256))
        for data in (test_set, Shifted(test_set, 0, 1), Shifted(test_set, 1, 0))
    ]
    print(f"{name:<18}" + "".join(f"{s:>13.1%}" for s in scores))
""",
    ),
    (
        "markdown",
        r"""
## Exercises

1. Feed `max_pool2d_by_hand` and `F.max_pool2d` a window in which two entries tie
   for the maximum.  Where does the gradient go?  Now use `amax` over the last two
   axes instead of `max(dim=-1)`: what does `amax` do with ties, and which choice
   does PyTorch make?
2. Add stride to `conv2d_by_hand` (the second argument of `Windows2d.apply`).  For an
   8x8 input, a 3x3 kernel and stride 2, predict the output shape before you run it.
3. In section 2, which pixels of `x` receive the largest gradient from
   `conv2d_by_hand` when the upstream gradient is all ones?  Explain the pattern
   (hint: count the windows each pixel belongs to).
4. Count the multiplications in the forward pass of each model in section 6.  Which
   is cheaper per image, and which has more parameters?
5. Train the CNN and the MLP on images shifted by random amounts (a data
   augmentation) and repeat the shifted-test experiment.
""",
    ),
]
