"""The differential edge suite: every public op against PyTorch, at the edges.

The ops are *enumerated*, not listed: every public ``Tensor`` method that
``torch.Tensor`` also has, every ``autodiff`` function that takes a tensor and
that ``torch`` also has, and every name in ``nn.functional.__all__``.  A new op
is covered without editing this file: its arguments are drawn by the names of
its parameters (``other``, ``dim``, ``keepdim``, ``exponent``, ``min``, ...;
``ARGUMENTS``), and an op with a parameter this file cannot draw fails with a
message saying so, rather than being skipped.  Layer functions whose tensors
must agree in shape (conv2d, linear, pooling, losses over classes) draw their
arguments together (``LAYERS``).

For every op, Hypothesis draws the input from the special values (0, -0, +-1,
ties, +-inf, NaN, 1e-300, 1e300 and ordinary numbers), with dims of size 0,
0-d tensors and non-contiguous layouts (transposed, strided), in float64, and
checks against PyTorch:

* the outcome: both return, or both raise (PyTorch's error means ours must raise);
* the value (shape, kind of dtype, every element, NaN and inf included);
* whether the result requires grad;
* first derivatives for a random upstream gradient, and second derivatives
  (the gradient of the first derivatives against random weights).

Deliberate differences are listed once, in ``DIFFERENCES``: a whole op, skipped
by name, or a ``Case`` (or a tuple of them, the first that applies counts), a
predicate over the drawn arguments that names the calls to skip, or whose second
derivatives to skip (the op's other calls are still compared); README's
"Differences from PyTorch" describes each.  The examples per op follow the Hypothesis profile: a
few in CI (seconds), thousands with ``make fuzz`` (HYPOTHESIS_PROFILE=fuzz), where
each op keeps its own keys in Hypothesis's example database (``OpsShare``), so that a
saved failure is replayed for the op that failed.
"""

from __future__ import annotations

import contextlib
import inspect
import math
import os
import unittest

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, event, given, reject, settings
from hypothesis import strategies as st
from hypothesis.database import ExampleDatabase, InMemoryExampleDatabase

import autodiff
import nn.functional

torch = pytest.importorskip("torch")
pytestmark = [
    pytest.mark.torch,
    # PyTorch's own warnings for the edge cases drawn here (implicit softmax dim,
    # degrees of freedom <= 0): the outcome is what is compared
    pytest.mark.filterwarnings("ignore::UserWarning"),
]

INF, NAN = math.inf, math.nan

# -- the one place for deliberate differences (README: "Differences from PyTorch") ----


class Case:
    """A difference confined to the calls ``applies(args, kwargs)`` accepts (the drawn
    ``Array`` / ``Const`` arguments); the op's other calls are compared as usual.
    With ``second_derivatives_only``, those calls are compared too, all but their
    second derivatives."""

    def __init__(self, applies, reason, second_derivatives_only=False):
        self.applies = applies
        self.reason = reason
        self.second_derivatives_only = second_derivatives_only


def _prod_order_decides(args, kwargs):
    """Whether the order of prod's multiplications may decide its value: in a reduced
    slice, the factors above 1 (or below 1) together leave float64's normal range,
    so some partial product may overflow (1e300 * 1e300) or underflow (1e-300 *
    1e-300) and meet a 0 or an inf.  Every other order gives the same value up to
    rounding; NumPy multiplies in order, PyTorch's vectorised loop in its own."""
    x = args[0].array
    dim = kwargs.get("dim", Const(None)).value
    if x.size == 0:
        return False
    if dim is None or x.ndim == 0:
        slices = x.reshape(1, -1)
    else:
        slices = np.moveaxis(x, dim, -1).reshape(-1, x.shape[dim])
    for values in slices:
        exponents = np.log2(np.abs(values[np.isfinite(values) & (values != 0)]))
        if exponents[exponents > 0].sum() >= 1023 or exponents[exponents < 0].sum() <= -1022:
            return True
    return False


def _batch_norm_differs(args, kwargs):
    """A strided weight, or (training) an input whose squares overflow."""
    strided_weight = len(args) > 3 and not args[3].array.flags.c_contiguous
    training = "training" in kwargs and kwargs["training"].value
    x = args[0].array
    return strided_weight or (training and bool((np.abs(x[np.isfinite(x)]) > 1e150).any()))


def _gelu_squares_overflow(args, kwargs):
    """Exact gelu of a finite x whose square overflows in its dtype (|x| > 1.3e154 in
    float64, 1.8e19 in float32)."""
    if "approximate" in kwargs and kwargs["approximate"].value != "none":
        return False
    x = args[0].array
    with np.errstate(over="ignore", invalid="ignore"):
        return bool((np.isfinite(x) & np.isinf(x * x)).any())


def _bce_input_near_0_or_1(args, kwargs):
    """A probability within 1e-5 of 0 or 1, where PyTorch's second derivative moves
    its 1e-12 into the squares of the denominator."""
    x = args[0].array
    return bool((np.minimum(x, 1 - x) < 1e-5).any())


def _magnitudes_2_52_apart(values) -> bool:
    """Finite nonzero values 2^52 or more apart in magnitude: in a sum of them, which
    small terms a large one rounds away depends on the order of the additions."""
    values = np.abs(np.asarray(values, dtype=np.float64).ravel())
    values = values[np.isfinite(values) & (values != 0)]
    return values.size > 1 and values.max() >= 2.0**52 * values.min()


SUM_ORDER = Case(
    lambda args, kwargs: _magnitudes_2_52_apart(args[0].array),
    "a sum of terms 2^52 apart in magnitude rounds by the order of the additions: "
    "NumPy's pairwise order (or a matrix product's fused multiply-adds) here, PyTorch's "
    "vectorised one there ([0, 1, 1e300, -1e300] averages to 0 or 1/4)",
)


def _variance_edges(args, kwargs):
    """var's and std's inputs with an inf or NaN, with magnitudes 2^52 apart, or with a
    nonzero magnitude whose cube leaves the dtype's normal range (std's second derivative
    divides by std^3): below 2.3e-12 or above 7e11 in float32, 2.8e-102 and 5.6e101 in
    float64 (see VARIANCE_EDGES)."""
    x = args[0].array
    info = np.finfo(x.dtype) if x.dtype.kind == "f" else np.finfo(np.float64)
    low, high = 10 * float(info.tiny) ** (1 / 3), float(info.max) ** (1 / 3) / 10
    magnitudes = np.abs(np.asarray(x, dtype=np.float64))
    magnitudes = magnitudes[magnitudes != 0]
    return (
        not np.isfinite(x).all()
        or _magnitudes_2_52_apart(x)
        or bool(((magnitudes < low) | (magnitudes > high)).any())
        or _a_slice_nearly_constant(x, kwargs.get("dim", Const(None)).value)
    )


def _a_slice_nearly_constant(x, dim) -> bool:
    """A reduced slice of two or more values within 1e-6 of each other (relatively): its
    variance is 0 or a rounding of the mean, and which one decides std's slope there."""
    x = np.asarray(x, dtype=np.float64)
    if x.size < 2:
        return False
    if dim is None or x.ndim == 0:
        slices = x.reshape(1, -1)
    else:
        dims = tuple(d % x.ndim for d in (dim if isinstance(dim, (tuple, list)) else (dim,)))
        kept = [d for d in range(x.ndim) if d not in dims]
        slices = np.transpose(x, kept + list(dims)).reshape(
            int(np.prod([x.shape[d] for d in kept])), -1
        )
    if slices.shape[1] < 2:
        return False
    spread = slices.max(axis=1) - slices.min(axis=1)
    return bool((spread <= 1e-6 * np.abs(slices).max(axis=1)).any())


VARIANCE_EDGES = Case(
    _variance_edges,
    "var and std are composed (the mean of squared deviations): at an inf or NaN input "
    "their gradient's term through the mean is NaN everywhere, where PyTorch's formula "
    "2 (x - mean) / (n - 1) leaves -inf at the finite elements; a nearly constant slice's "
    "variance is 0 or a rounding of its mean, and std's slope there 0 or not (PyTorch's "
    "mean rounds otherwise); sums of terms 2^52 apart "
    "round by their order; and std's second derivative, which divides by std^3, "
    "underflows or overflows in other places where a cube leaves the normal range",
)


STD_HESSIAN_RESIDUES = Case(
    lambda args, kwargs: True,
    "std's Hessian has entries that cancel to 0 (std is homogeneous of degree 1, so H x = "
    "0): what is left of them is rounding, about 1e-16 of the largest entries, and differs "
    "between any two implementations (checked against finite differences elsewhere)",
    second_derivatives_only=True,
)


def _products_decide(args, kwargs):
    """linear(x, W, b) or conv2d(x, W, b): some product of an element of x and one of W
    overflows, or the products (with the bias) are 2^52 apart in magnitude (every pair is
    counted, a superset of the products taken): a matrix product's fused multiply-adds
    round them otherwise than PyTorch's kernels (1e300 * 1e300 - 1e300 * 1e300 is inf
    here, NaN there; 1e300 * 1.125 - 1e300 * 1.125 leaves 7e283 here, 0 there)."""
    x, w = (np.abs(np.asarray(a.array, dtype=np.float64)).ravel() for a in args[:2])
    with np.errstate(over="ignore", invalid="ignore"):
        products = x[:, None] * w[None, :]
    bias = (args[2].array.ravel(),) if len(args) > 2 and isinstance(args[2], Array) else ()
    terms = np.concatenate([products.ravel(), *bias])
    return bool((np.abs(terms) >= 1e308).any()) or _magnitudes_2_52_apart(terms)


MATRIX_PRODUCTS = Case(
    _products_decide,
    "products that overflow or are 2^52 apart in magnitude: OpenBLAS's fused multiply-adds "
    "keep a product exact where PyTorch rounds it ([1e300, -1e300] . [1e300, 1e300] is "
    "inf here, NaN there)",
)


def _nll_sum_order_decides(args, kwargs):
    """A summed nll_loss whose picked log-probabilities are 2^52 or more apart in magnitude
    (1e300 beside 1): which small terms a large one rounds away depends on the order of
    the sum, NumPy's pairwise one or PyTorch's."""
    if kwargs["reduction"].value == "none":
        return False
    x, target = args[0].array, args[1].array
    return _magnitudes_2_52_apart(x[np.arange(len(target)), target])


def _logsumexp_rounds_away_its_log(args, kwargs):
    """An input of magnitude 1e9 or more: there logsumexp(x) = m + log sum exp(x - m)
    rounds to m (or near), and PyTorch's gradient exp(x - logsumexp(x)) is 1 per maximum
    where ours is the softmax (the README: "At extreme magnitudes")."""
    x = args[0].array
    return bool((np.abs(x[np.isfinite(x)]) >= 1e9).any())


LOGSUMEXP_ROUNDING = Case(
    _logsumexp_rounds_away_its_log,
    "at |x| >= 1e9 logsumexp(x) rounds its log term away; PyTorch's gradient is then "
    "exp(x - logsumexp(x)), 1 at each maximum, ours the exact softmax",
)

PRODUCT_ORDER = Case(
    _prod_order_decides,
    "prod multiplies in NumPy's order; where a partial product may overflow or underflow, "
    "PyTorch's vectorised order (from 16 contiguous elements) can give another 0, inf or NaN",
)

DIFFERENCES = {
    "method type": "type() names the class autodiff.DoubleTensor, not torch.DoubleTensor",
    "method uniform_": "random numbers come from NumPy's generator, not PyTorch's",
    "method normal_": "random numbers come from NumPy's generator, not PyTorch's",
    "function rand_like": "random numbers come from NumPy's generator, not PyTorch's",
    "function randn_like": "random numbers come from NumPy's generator, not PyTorch's",
    "function empty_like": "the values of an uninitialised tensor are arbitrary in both",
    "method view": "view() copies when NumPy must, where PyTorch raises (non-contiguous input)",
    "functional batch_norm": Case(
        _batch_norm_differs,
        "PyTorch 2.13's batch_norm backward reads a strided weight as if it were contiguous "
        "(dL/dx takes another channel's weight, or memory between), and in training its "
        "batch statistics go wrong where x^2 overflows (1e300 twice normalises to 1.4e285, "
        "not 0); ours are the formula's",
    ),
    "functional elu": Case(
        lambda args, kwargs: bool(np.isnan(args[0].array).any()),
        "at a NaN input PyTorch 2.13's elu backward gives NaN in its vectorised float64 loop "
        "(16 elements and up) and the upstream gradient elsewhere (float32, short tensors); "
        "ours gives the upstream gradient everywhere (NaN counts as positive, slope 1)",
    ),
    "functional gelu": Case(
        _gelu_squares_overflow,
        "exact gelu's second derivative where x^2 overflows: PyTorch's formula multiplies "
        "exp(-x^2/2) = 0 by x^2 = inf (NaN); ours gives the limit, 0",
        second_derivatives_only=True,
    ),
    "functional binary_cross_entropy": Case(
        _bce_input_near_0_or_1,
        "second derivative near x = 0 or 1: ours differentiates the first derivative, "
        "(x - y) / max(x (1 - x), 1e-12); PyTorch's double backward divides by "
        "(x + 1e-12)^2 (1 - x + 1e-12)^2 (2e-4 apart at x = 1e-8)",
        second_derivatives_only=True,
    ),
    "functional nll_loss": Case(
        _nll_sum_order_decides,
        "the mean or sum of losses 2^52 apart in magnitude rounds by the order of the sum: "
        "NumPy's pairwise order here, PyTorch's own there ([1e300, -1e300, 1] sums to 1 or 0)",
    ),
    "functional dropout": "random masks come from NumPy's generator, not PyTorch's",
    "method mean": SUM_ORDER,
    "function mean": SUM_ORDER,
    "method sum": SUM_ORDER,
    "function sum": SUM_ORDER,
    "method var": VARIANCE_EDGES,
    "function var": VARIANCE_EDGES,
    "method std": (VARIANCE_EDGES, STD_HESSIAN_RESIDUES),
    "function std": (VARIANCE_EDGES, STD_HESSIAN_RESIDUES),
    "functional adaptive_avg_pool2d": SUM_ORDER,
    "functional linear": MATRIX_PRODUCTS,
    "functional conv2d": MATRIX_PRODUCTS,
    "method logsumexp": LOGSUMEXP_ROUNDING,
    "function logsumexp": LOGSUMEXP_ROUNDING,
    "method prod": PRODUCT_ORDER,
    "function prod": PRODUCT_ORDER,
}

# -- how many examples: the profile's budget, spread over ~150 ops -------------------

PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev")
EXAMPLES = {"ci": 8, "dev": 8, "thorough": 100, "fuzz": 2000}.get(PROFILE, 8)
# The default runs (CI and a plain `make test`) draw the same examples every time, so
# that a user's test run never fails by chance on an input no run has met before;
# `make fuzz` and the thorough profile explore at random (the README's known differences
# are Cases above, so that a fuzz failure is news).
SUITE_SETTINGS = settings(
    max_examples=EXAMPLES,
    derandomize=PROFILE in ("ci", "dev"),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    phases=[p for p in Phase if p != Phase.shrink or not os.environ.get("EDGE_NO_SHRINK")],
)


class OpsShare(ExampleDatabase):
    """One op's share of an example database: its keys, prefixed by the op's name.

    Hypothesis keys its database by the test function (a digest of its source and
    signature; pytest's node id only for a parametrized test that is itself the
    @given function).  The suite's ``check`` is one inner function for every op, so
    every op would share one key: in the thorough and fuzz runs a failure saved for
    one op is replayed for all the others, and the first op for which it is not a
    failure deletes it, before the op that failed is run again.
    """

    def __init__(self, database: ExampleDatabase, op: str):
        super().__init__()
        self.database = database
        self.prefix = op.encode() + b":"

    def __repr__(self) -> str:
        return f"OpsShare({self.database!r}, {self.prefix[:-1].decode()!r})"

    def __eq__(self, other) -> bool:
        return (
            isinstance(other, OpsShare)
            and self.prefix == other.prefix
            and self.database == other.database
        )

    def __hash__(self) -> int:
        return hash(self.prefix)

    def save(self, key: bytes, value: bytes) -> None:
        self.database.save(self.prefix + key, value)

    def fetch(self, key: bytes):
        return self.database.fetch(self.prefix + key)

    def delete(self, key: bytes, value: bytes) -> None:
        self.database.delete(self.prefix + key, value)

    def move(self, src: bytes, dest: bytes, value: bytes) -> None:
        self.database.move(self.prefix + src, self.prefix + dest, value)


def op_settings(kind: str, name: str) -> settings:
    """The suite's settings with the op's own share of their example database (``OpsShare``).

    The CI and dev profiles are derandomized, which means no database: their
    settings, and so CI's time, stay as they are."""
    suite = SUITE_SETTINGS  # read at each call, so that a test can give it a database
    if suite.database is None:
        return suite
    return settings(suite, database=OpsShare(suite.database, f"{kind} {name}"))


# -- enumerating the ops ----------------------------------------------------------------

# What an autodiff function's first parameter is called when it takes a tensor.
TENSOR_FIRST = {"input", "x", "tensors", "condition", "tensor"}


def _method_names():
    names = []
    for name in dir(autodiff.Tensor):
        if name.startswith("_") or not hasattr(torch.Tensor, name):
            continue
        if callable(getattr(autodiff.Tensor, name)):
            names.append(name)
    return sorted(names)


def _function_names():
    names = []
    for name in dir(autodiff):
        value = getattr(autodiff, name)
        if name.startswith("_") or not inspect.isfunction(value) or not hasattr(torch, name):
            continue
        params = list(inspect.signature(value).parameters)
        if params and params[0] in TENSOR_FIRST:
            names.append(name)
    return sorted(names)


def _functional_names():
    return sorted(nn.functional.__all__)


OPS = (
    [("method", n) for n in _method_names()]
    + [("function", n) for n in _function_names()]
    + [("functional", n) for n in _functional_names()]
)


def test_the_enumeration_finds_the_ops():
    names = {f"{kind} {name}" for kind, name in OPS}
    for expected in ("method exp", "method log_softmax", "function cat", "functional conv2d"):
        assert expected in names
    assert len(OPS) > 150
    assert set(DIFFERENCES) <= names, "a difference names an op that does not exist"


# -- drawing values, shapes and layouts --------------------------------------------------

SPECIAL = [0.0, -0.0, 1.0, -1.0, 0.5, -2.0, 3.0, INF, -INF, NAN, 1e-300, -1e-300, 1e300, -1e300]


def values():
    """Special values (ties come from drawing the same one twice) or ordinary numbers."""
    return st.one_of(
        st.sampled_from(SPECIAL),
        # no subnormals: PyTorch's CPU kernels may flush them to zero (1e-300 is normal)
        st.floats(-3, 3, allow_nan=False, allow_subnormal=False, width=64),
    )


def ordinary():
    return st.floats(-3, 3, allow_nan=False, width=64).filter(lambda v: abs(v) > 1e-3)


@st.composite
def arrays(draw, shape, elements=None, layout=True):
    """A float64 array of ``shape``, maybe a transposed or strided view."""
    if elements is None:
        elements = values()
    n = math.prod(shape)
    kind = draw(st.sampled_from(["contiguous", "transposed", "strided"])) if layout else "c"
    if kind == "transposed" and len(shape) >= 2:
        base = np.array(draw(st.lists(elements, min_size=n, max_size=n)), dtype=np.float64)
        return base.reshape(shape[::-1]).T
    if kind == "strided" and len(shape) >= 1:
        big = (shape[0] * 2,) + tuple(shape[1:])
        m = math.prod(big)
        base = np.array(draw(st.lists(elements, min_size=m, max_size=m)), dtype=np.float64)
        return base.reshape(big)[::2]
    return np.array(draw(st.lists(elements, min_size=n, max_size=n)), dtype=np.float64).reshape(
        shape
    )


def shapes(min_dims=0, max_dims=3, min_side=0, max_side=3):
    return st.lists(st.integers(min_side, max_side), min_size=min_dims, max_size=max_dims).map(
        tuple
    )


# -- drawing arguments by parameter name ---------------------------------------------------


class Const:
    """A non-tensor argument: the same Python value for both libraries."""

    def __init__(self, value):
        self.value = value

    def __repr__(self):
        return repr(self.value)


class Array:
    """A tensor argument: one NumPy array, made into a tensor by each library."""

    def __init__(self, array, requires_grad=None):
        self.array = array
        floating = array.dtype.kind == "f"
        self.requires_grad = floating if requires_grad is None else requires_grad

    def __repr__(self):
        return f"Array({self.array!r})"


def _dim(draw, shape, allow_none):
    if allow_none and draw(st.booleans()):
        return Const(None)
    rank = max(len(shape), 1)
    return Const(draw(st.integers(-rank, rank - 1)))


def _broadcast_partner(draw, shape):
    """A shape that broadcasts with ``shape`` (fewer dims, or 1 in some places)."""
    drop = draw(st.integers(0, len(shape)))
    partner = list(shape[drop:])
    for i in range(len(partner)):
        if draw(st.booleans()):
            partner[i] = 1
    return tuple(partner)


def _other(draw, shape):
    if draw(st.integers(0, 3)) == 0:
        return Const(draw(st.sampled_from([0.0, 1.0, -1.0, 2.0, 0.5, INF, NAN, -3.0])))
    return Array(draw(arrays(_broadcast_partner(draw, shape))))


def _bound(draw, shape):
    kind = draw(st.sampled_from(["none", "number", "tensor"]))
    if kind == "none":
        return Const(None)
    if kind == "number":
        return Const(draw(st.sampled_from([0.0, 1.0, -1.0, 0.5, -2.0])))
    return Array(draw(arrays(_broadcast_partner(draw, shape))))


def _permutation(draw, shape):
    return Const(tuple(draw(st.permutations(list(range(len(shape)))))))


def _new_shape(draw, shape):
    """A shape with the same number of elements, maybe with one -1."""
    n = math.prod(shape)
    if n == 0 or draw(st.booleans()):
        target = [n] if n else list(shape)
    else:
        target = [d for d in range(1, n + 1) if n % d == 0]
        first = draw(st.sampled_from(target))
        target = [first, n // first]
    if draw(st.booleans()) and target:
        i = draw(st.integers(0, len(target) - 1))
        if math.prod(s for j, s in enumerate(target) if j != i) != 0:
            target[i] = -1
    return Const(tuple(target))


def _index_along(draw, shape, dim_const):
    dim = dim_const.value if dim_const.value is not None else 0
    rank = max(len(shape), 1)
    d = dim % rank
    size = shape[d] if shape else 1
    index_shape = list(shape) or []
    if shape:
        index_shape[d] = draw(st.integers(0, 3))
    high = max(size - 1, 0)
    idx = draw(
        st.lists(
            st.integers(0, high), min_size=math.prod(index_shape), max_size=math.prod(index_shape)
        )
    )
    return Array(np.array(idx, dtype=np.int64).reshape(index_shape), requires_grad=False)


# parameter name -> how to draw it, given the draw function, the input's shape and the
# arguments drawn so far (in signature order)
ARGUMENTS = {
    "other": lambda draw, shape, got: _other(draw, shape),
    "exponent": lambda draw, shape, got: (
        Const(draw(st.sampled_from([0, 1, 2, 3, -1, 0.0, 0.5, 1.0, 2.0, -1.0, -0.5, 3.0])))
        if draw(st.booleans())
        else Array(draw(arrays(_broadcast_partner(draw, shape))))
    ),
    "dim": lambda draw, shape, got: _dim(draw, shape, allow_none=got.get("_dim_optional", True)),
    "dim0": lambda draw, shape, got: _dim(draw, shape, allow_none=False),
    "dim1": lambda draw, shape, got: _dim(draw, shape, allow_none=False),
    "start_dim": lambda draw, shape, got: _dim(draw, shape, allow_none=False),
    "end_dim": lambda draw, shape, got: _dim(draw, shape, allow_none=False),
    "keepdim": lambda draw, shape, got: Const(
        draw(st.booleans()) if got.get("dim", Const(0)).value is not None else False
    ),
    "min": lambda draw, shape, got: _bound(draw, shape),
    "max": lambda draw, shape, got: _bound(draw, shape),
    "alpha": lambda draw, shape, got: Const(draw(st.sampled_from([1, 2.0, -0.5, 0.0]))),
    "negative_slope": lambda draw, shape, got: Const(draw(st.sampled_from([0.01, 0.2, -0.5]))),
    "beta": lambda draw, shape, got: Const(draw(st.sampled_from([1.0, 2.0, 0.5]))),
    "threshold": lambda draw, shape, got: Const(draw(st.sampled_from([20.0, 1.0, 0.0]))),
    "approximate": lambda draw, shape, got: Const(draw(st.sampled_from(["none", "tanh"]))),
    "unbiased": lambda draw, shape, got: Const(draw(st.sampled_from([None, True, False]))),
    # correction > 1 may leave n - correction < 0, where PyTorch's value and gradient
    # disagree with each other (README, "Differences from PyTorch")
    "correction": lambda draw, shape, got: Const(
        None
        if got.get("unbiased", Const(None)).value is not None
        else draw(st.sampled_from([None, 0, 1]))
    ),
    "chunks": lambda draw, shape, got: Const(draw(st.integers(1, 4))),
    "split_size": lambda draw, shape, got: Const(draw(st.integers(1, 3))),
    "split_size_or_sections": lambda draw, shape, got: Const(draw(st.integers(1, 3))),
    "dims": lambda draw, shape, got: _permutation(draw, shape),
    "repeat.sizes": lambda draw, shape, got: Const(
        tuple(draw(st.lists(st.integers(0, 2), min_size=len(shape), max_size=len(shape) + 1)))
    ),
    "expand.sizes": lambda draw, shape, got: Const(
        (draw(st.integers(0, 2)),) * draw(st.integers(0, 1))
        + tuple(
            draw(st.sampled_from([s, -1])) if s != 1 else draw(st.integers(0, 2)) for s in shape
        )
    ),
    "hook": lambda draw, shape, got: Const(lambda grad: grad * 2),
    "shape": lambda draw, shape, got: _new_shape(draw, shape),
    "sizes": lambda draw, shape, got: (
        _unflatten_sizes(draw, shape, got) if "dim" in got else Const(tuple(shape))
    ),
    "mask": lambda draw, shape, got: Array(
        draw(arrays(_broadcast_partner(draw, shape), st.booleans(), layout=False)).astype(bool),
        requires_grad=False,
    ),
    "condition": lambda draw, shape, got: Array(
        draw(arrays(_broadcast_partner(draw, shape), st.booleans(), layout=False)).astype(bool),
        requires_grad=False,
    ),
    "value": lambda draw, shape, got: Const(draw(st.sampled_from([0.0, 1.0, -INF, NAN]))),
    "index": lambda draw, shape, got: _index_along(draw, shape, got["dim"]),
    "src": lambda draw, shape, got: Array(draw(arrays(shape))),
    "source": lambda draw, shape, got: Array(draw(arrays(draw(shapes())))),
    "fill_value": lambda draw, shape, got: Const(draw(st.sampled_from([0.0, 1.5, -INF]))),
    "x": lambda draw, shape, got: _other(draw, shape),
    "y": lambda draw, shape, got: _other(draw, shape),
    "inplace": lambda draw, shape, got: Const(False),
    "rtol": lambda draw, shape, got: Const(1e-5),
    "atol": lambda draw, shape, got: Const(1e-8),
}


def _unflatten_sizes(draw, shape, got):
    dim = got["dim"].value
    if not shape or dim is None:
        return Const((1,))
    size = shape[dim % len(shape)]
    options = [(size,), (1, size), (size, 1), (-1,)]
    if size:
        options += [(-1, 1)]
    if size == 0:
        options = [(0,), (0, 1), (1, 0)]
    return Const(draw(st.sampled_from(options)))


# Parameters left at their default (no drawing needed): PyTorch-only knobs and
# dtype arguments.
DEFAULTED = {
    "dtype",
    "axis",
    "_stacklevel",
    "generator",
    "device",
    "size_average",
    "reduce",
    "force",
    "non_blocking",
    "copy",
    "requires_grad",
    "memory_format",
    "layout",
    "pin_memory",
}


# Layer functions whose tensors must agree in shape draw their arguments together.
@st.composite
def _conv2d(draw):
    n, c, h, w = draw(st.integers(0, 2)), draw(st.integers(1, 2)), draw(st.integers(1, 4)), 4
    groups = draw(st.sampled_from([1, c]))
    out = groups * draw(st.integers(1, 2))
    k = draw(st.integers(1, min(h, 3)))
    return [
        Array(draw(arrays((n, c, h, w)))),
        Array(draw(arrays((out, c // groups, k, k), ordinary()))),
        Array(draw(arrays((out,), ordinary()))) if draw(st.booleans()) else Const(None),
    ], {
        "stride": Const(draw(st.integers(1, 2))),
        "padding": Const(draw(st.integers(0, k // 2))),
        "groups": Const(groups),
    }


@st.composite
def _pool(draw, with_dilation):
    shape = (draw(st.integers(0, 2)), draw(st.integers(1, 2)), 4, 5)
    k = draw(st.integers(1, 3))
    kwargs = {
        "kernel_size": Const(k),
        "stride": Const(draw(st.sampled_from([None, 1, 2]))),
        "padding": Const(draw(st.integers(0, k // 2))),
        "ceil_mode": Const(draw(st.booleans())),
    }
    if with_dilation:
        kwargs["dilation"] = Const(draw(st.integers(1, 2)))
    return [Array(draw(arrays(shape)))], kwargs


@st.composite
def _linear(draw):
    lead = draw(shapes(0, 2, 0, 3))
    i, o = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    return [
        Array(draw(arrays(lead + (i,)))),
        Array(draw(arrays((o, i)))),
        Array(draw(arrays((o,)))) if draw(st.booleans()) else Const(None),
    ], {}


@st.composite
def _class_loss(draw, log_probabilities):
    n, c = draw(st.integers(1, 3)), draw(st.integers(1, 4))
    logits = draw(arrays((n, c)))
    target = np.array(draw(st.lists(st.integers(0, c - 1), min_size=n, max_size=n)))
    kwargs = {"reduction": Const(draw(st.sampled_from(["mean", "sum", "none"])))}
    if not log_probabilities:
        kwargs["label_smoothing"] = Const(draw(st.sampled_from([0.0, 0.1])))
    return [Array(logits), Array(target.astype(np.int64), requires_grad=False)], kwargs


@st.composite
def _pointwise_loss(draw, target_elements=None):
    shape = draw(shapes(0, 3, 0, 3))
    return [
        Array(draw(arrays(shape, target_elements))),
        Array(draw(arrays(shape, target_elements))),
    ], {"reduction": Const(draw(st.sampled_from(["mean", "sum", "none"])))}


@st.composite
def _batch_norm(draw):
    n, c = draw(st.integers(2, 3)), draw(st.integers(1, 2))
    shape = (n, c) + draw(shapes(0, 2, 1, 3))
    training = draw(st.booleans())
    return [
        Array(draw(arrays(shape))),
        Array(np.zeros(c), requires_grad=False),
        Array(np.ones(c), requires_grad=False),
        Array(draw(arrays((c,), ordinary()))),
        Array(draw(arrays((c,), ordinary()))),
    ], {"training": Const(training)}


@st.composite
def _embedding(draw):
    rows = draw(st.integers(1, 4))
    index_shape = draw(shapes(0, 2, 0, 3))
    n = math.prod(index_shape)
    index = np.array(draw(st.lists(st.integers(0, rows - 1), min_size=n, max_size=n)))
    kwargs = {}
    if draw(st.booleans()):
        kwargs["padding_idx"] = Const(draw(st.integers(0, rows - 1)))
    return [
        Array(index.astype(np.int64).reshape(index_shape), requires_grad=False),
        Array(draw(arrays((rows, 2)))),
    ], kwargs


@st.composite
def _one_hot(draw):
    shape = draw(shapes(0, 2, 0, 3))
    n = math.prod(shape)
    index = np.array(draw(st.lists(st.integers(0, 3), min_size=n, max_size=n)), dtype=np.int64)
    return [Array(index.reshape(shape), requires_grad=False)], {"num_classes": Const(4)}


@st.composite
def _pad(draw):
    shape = draw(shapes(1, 3, 0, 3))
    pad = tuple(draw(st.lists(st.integers(0, 2), min_size=2, max_size=2 * len(shape))))
    if len(pad) % 2:
        pad = pad[:-1]
    return [Array(draw(arrays(shape))), Const(pad)], {"value": Const(draw(values()))}


@st.composite
def _unfold(draw):
    shape = (draw(st.integers(0, 2)), draw(st.integers(1, 2)), 3, 4)
    return [Array(draw(arrays(shape)))], {
        "kernel_size": Const(draw(st.integers(1, 2))),
        "padding": Const(draw(st.integers(0, 1))),
        "stride": Const(draw(st.integers(1, 2))),
    }


@st.composite
def _adaptive(draw):
    shape = (draw(st.integers(0, 2)), 1, draw(st.integers(1, 5)), draw(st.integers(1, 5)))
    return [Array(draw(arrays(shape)))], {"output_size": Const(draw(st.integers(1, 3)))}


@st.composite
def _sequence(draw):
    shape = draw(shapes(0, 2, 0, 3))
    count = draw(st.integers(1, 3))
    tensors = [Array(draw(arrays(shape))) for _ in range(count)]
    rank = len(shape) + 1
    return [Const(tensors)], {"dim": Const(draw(st.integers(-rank, rank - 1)))}


LAYERS = {
    "conv2d": _conv2d(),
    "max_pool2d": _pool(True),
    "avg_pool2d": _pool(False),
    "linear": _linear(),
    "cross_entropy": _class_loss(False),
    "nll_loss": _class_loss(True),
    "mse_loss": _pointwise_loss(),
    "l1_loss": _pointwise_loss(),
    "binary_cross_entropy": _pointwise_loss(
        st.one_of(st.sampled_from([0.0, 1.0, 1e-300, 0.5]), st.floats(0, 1))
    ),
    "binary_cross_entropy_with_logits": _pointwise_loss(),
    "batch_norm": _batch_norm(),
    "embedding": _embedding(),
    "one_hot": _one_hot(),
    "pad": _pad(),
    "unfold": _unfold(),
    "adaptive_avg_pool2d": _adaptive(),
    "cat": _sequence(),
    "stack": _sequence(),
}


def _first_param(name):
    return next(iter(inspect.signature(getattr(autodiff, name)).parameters))


def _signature_params(kind, name):
    """The parameters after the first tensor (self / input), from our signature."""
    if kind == "method" or (kind == "function" and hasattr(autodiff.Tensor, name)):
        target = getattr(autodiff.Tensor, name)  # autodiff.exp mirrors Tensor.exp
    elif kind == "function":
        target = getattr(autodiff, name)
    else:
        target = getattr(nn.functional, name)
    return list(inspect.signature(target).parameters.values())[1:]


@st.composite
def calls(draw, kind, name):
    """(positional, keyword) arguments for one call, as Array/Const placeholders."""
    if name in LAYERS and kind != "method":
        return draw(LAYERS[name])
    shape = draw(shapes())
    params = _signature_params(kind, name)
    first = Array(draw(arrays(shape)))
    if kind == "function" and _first_param(name) == "condition":  # where(condition, x, y)
        first = Array(
            draw(arrays(shape, st.booleans(), layout=False)).astype(bool), requires_grad=False
        )
    args, kwargs, got = [first], {}, {}
    for param in params:
        if param.kind == param.VAR_KEYWORD or param.name in DEFAULTED:
            continue
        if param.kind == param.VAR_POSITIONAL and param.name not in ARGUMENTS:
            continue  # f(*args) with no name to draw by: called without them
        maker = ARGUMENTS.get(f"{name}.{param.name}", ARGUMENTS.get(param.name))
        if maker is None:
            if param.default is not param.empty:
                continue  # an optional knob this file does not vary
            pytest.fail(
                f"{kind} {name}: cannot draw parameter {param.name!r}; add it to ARGUMENTS "
                "(or the op to LAYERS) in tests/test_differential.py"
            )
        if param.name == "dim":
            got["_dim_optional"] = param.default is None
        value = maker(draw, shape, got)
        got[param.name] = value
        if param.kind == param.VAR_POSITIONAL:
            args.append(value)  # reshape(*shape) as reshape(shape): both libraries take a tuple
        elif param.default is param.empty and param.kind != param.KEYWORD_ONLY:
            args.append(value)
        elif not (isinstance(value, Const) and value.value is param.default):
            kwargs[param.name] = value  # a value equal to the default is left out, as users do
    return [a if isinstance(a, (Array, Const)) else Const(a) for a in args], kwargs


# -- running one call in both libraries ---------------------------------------------------


def materialize(lib, placeholder, leaves):
    if isinstance(placeholder, Const):
        value = placeholder.value
        if isinstance(value, list):
            return [materialize(lib, v, leaves) for v in value]
        return value
    tensor = lib.from_numpy(_same_layout(placeholder.array))  # each library its own copy
    if placeholder.requires_grad:
        tensor.requires_grad_(True)
        leaves.append(tensor)
    return tensor


def _same_layout(array):
    """A fresh copy of ``array`` laid out in memory as it is (row-major, transposed, strided)."""
    if array.flags.c_contiguous:
        return array.copy()
    if array.flags.f_contiguous:
        return array.copy(order="F")
    big = np.empty((array.shape[0] * 2,) + array.shape[1:], dtype=array.dtype)
    big[::2] = array
    return big[::2]


def target_of(lib, kind, name):
    if kind == "method":
        return lambda first, *rest, **kw: getattr(first, name)(*rest, **kw)
    if kind == "function":
        return getattr(lib, name)
    if lib is torch and not hasattr(torch.nn.functional, name):
        return getattr(torch, name)  # nn.functional.erf: torch.erf
    return getattr(lib.nn.functional if lib is torch else nn.functional, name)


def run(lib, kind, name, args, kwargs):
    """Call the op; return ("value", result, leaves) or ("error", exception, leaves)."""
    leaves = []
    real_args = [materialize(lib, a, leaves) for a in args]
    real_kwargs = {k: materialize(lib, v, leaves) for k, v in kwargs.items()}
    try:
        return "value", target_of(lib, kind, name)(*real_args, **real_kwargs), leaves
    except Exception as error:  # the outcome is compared, not raised
        return "error", error, leaves


def as_numpy(value):
    if isinstance(value, (autodiff.Tensor, torch.Tensor)):
        data = value.detach()
        data = data.numpy(force=True) if isinstance(data, torch.Tensor) else data.numpy()
        return np.asarray(data)
    return value


def tensors_in(result):
    if isinstance(result, (autodiff.Tensor, torch.Tensor)):
        return [result]
    if isinstance(result, (tuple, list)):
        return [t for item in result for t in tensors_in(item)]
    return []


def assert_same_value(ours, theirs, what):
    if isinstance(theirs, (tuple, list)):
        assert isinstance(ours, (tuple, list)), f"{what}: ours is {type(ours).__name__}"
        assert len(ours) == len(theirs), f"{what}: {len(ours)} items, PyTorch {len(theirs)}"
        for i, (a, b) in enumerate(zip(ours, theirs, strict=True)):
            assert_same_value(a, b, f"{what}[{i}]")
        return
    if isinstance(theirs, torch.Tensor):
        assert isinstance(ours, autodiff.Tensor), f"{what}: ours is {type(ours).__name__}"
        a, b = as_numpy(ours), as_numpy(theirs)
        assert a.shape == b.shape, f"{what}: shape {a.shape}, PyTorch {b.shape}"
        assert a.dtype.kind == b.dtype.kind, f"{what}: dtype {a.dtype}, PyTorch {b.dtype}"
        if b.dtype.kind in "fc":
            np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-10, equal_nan=True, err_msg=what)
        else:
            np.testing.assert_array_equal(a, b, err_msg=what)
        return
    if isinstance(theirs, float) and isinstance(ours, float):
        assert ours == pytest.approx(theirs, rel=1e-6, nan_ok=True), what
        return
    if not isinstance(theirs, (bool, int, float, str, type(None), np.ndarray)):
        return  # devices, dtypes, hook handles: NumPy's or this engine's own objects
    assert as_numpy(ours) == as_numpy(theirs) or ours == theirs, f"{what}: {ours!r} != {theirs!r}"


def derivatives(lib, outputs, leaves, upstream, weights):
    """First derivatives for the upstream gradients, then second derivatives."""
    grad = torch.autograd.grad if lib is torch else autodiff.grad
    pairs = [(o, u) for o, u in zip(outputs, upstream, strict=True) if o.requires_grad]
    if not pairs or not leaves:
        return None, None
    first = grad(
        [o for o, _ in pairs],
        leaves,
        [lib.from_numpy(u.astype(as_numpy(o).dtype)) for o, u in pairs],
        create_graph=True,
        allow_unused=True,
    )
    first_values = [
        np.zeros(tuple(leaf.shape)) if g is None else as_numpy(g)
        for g, leaf in zip(first, leaves, strict=True)
    ]
    weighted = [
        (g * lib.from_numpy(w.copy())).sum()
        for g, w in zip(first, weights, strict=True)
        if g is not None and g.requires_grad
    ]
    second_values = [np.zeros(tuple(leaf.shape)) for leaf in leaves]
    if weighted:
        total = weighted[0]
        for term in weighted[1:]:
            total = total + term
        second = grad(total, leaves, allow_unused=True)
        second_values = [
            np.zeros(tuple(leaf.shape)) if g is None else as_numpy(g)
            for g, leaf in zip(second, leaves, strict=True)
        ]
    return first_values, second_values


def compare(kind, name, args, kwargs, rng, second_derivatives=True):
    ours_kind, ours, our_leaves = run(autodiff, kind, name, args, kwargs)
    theirs_kind, theirs, their_leaves = run(torch, kind, name, args, kwargs)
    call = f"{kind} {name}(*{args!r}, **{kwargs!r})"
    if theirs_kind == "error":
        assert ours_kind == "error", (
            f"{call}: PyTorch raises {type(theirs).__name__}: {theirs}; ours returns {ours!r}"
        )
        return
    assert ours_kind == "value", f"{call}: PyTorch returns a value; ours raises {ours!r}"
    assert_same_value(ours, theirs, f"{call}: value")
    ours_out, theirs_out = tensors_in(ours), tensors_in(theirs)
    assert [t.requires_grad for t in ours_out] == [t.requires_grad for t in theirs_out], (
        f"{call}: requires_grad {[t.requires_grad for t in ours_out]}, PyTorch "
        f"{[t.requires_grad for t in theirs_out]}"
    )
    upstream = [rng.standard_normal(tuple(t.shape)) for t in theirs_out]
    weights = [rng.standard_normal(tuple(leaf.shape)) for leaf in their_leaves]
    floating = [t.dtype.is_floating_point for t in theirs_out]
    ours_out = [t for t, f in zip(ours_out, floating, strict=True) if f]
    upstream_f = [u for u, f in zip(upstream, floating, strict=True) if f]
    theirs_out = [t for t, f in zip(theirs_out, floating, strict=True) if f]
    their_first, their_second = derivatives(torch, theirs_out, their_leaves, upstream_f, weights)
    our_first, our_second = derivatives(autodiff, ours_out, our_leaves, upstream_f, weights)
    if their_first is None:
        return
    for i, (a, b) in enumerate(zip(our_first, their_first, strict=True)):
        np.testing.assert_allclose(
            a, b, rtol=1e-6, atol=1e-9, equal_nan=True, err_msg=f"{call}: d/d input {i}"
        )
    if not second_derivatives:
        return
    for i, (a, b) in enumerate(zip(our_second, their_second, strict=True)):
        np.testing.assert_allclose(
            a, b, rtol=1e-6, atol=1e-9, equal_nan=True, err_msg=f"{call}: d2/d input {i}"
        )


@pytest.mark.parametrize(("kind", "name"), OPS, ids=[f"{k}-{n}" for k, n in OPS])
def test_matches_pytorch_at_the_edges(kind, name):
    difference = DIFFERENCES.get(f"{kind} {name}")
    if isinstance(difference, str):
        pytest.skip(difference)
    cases = (
        difference if isinstance(difference, tuple) else (difference,) * (difference is not None)
    )

    @op_settings(kind, name)  # its own database key (OpsShare)
    @given(data=st.data(), seed=st.integers(0, 2**32 - 1))
    def check(data, seed):
        args, kwargs = data.draw(calls(kind, name))
        second_derivatives = True
        for case in cases:  # the first documented case that applies: not compared
            if case.applies(args, kwargs):
                event(case.reason)
                if not case.second_derivatives_only:
                    reject()
                second_derivatives = False
                break
        compare(kind, name, args, kwargs, np.random.default_rng(seed), second_derivatives)

    with np.errstate(all="ignore"), torch.autograd.set_grad_enabled(True):
        check()


# -- the suite's own machinery -------------------------------------------------------------


class FetchLog(InMemoryExampleDatabase):
    """An example database that notes every key Hypothesis reads."""

    def __init__(self):
        super().__init__()
        self.keys = []

    def fetch(self, key):
        self.keys.append(key)
        return super().fetch(key)


def test_every_op_has_its_own_database_key(monkeypatch):
    """The real ``check`` of each op reads its own keys of the database (a saved failure is
    replayed for its op only), and the derandomized profiles keep their settings.  Only
    Phase.reuse runs, on an empty database: no op is called."""
    if SUITE_SETTINGS.database is None:  # ci and dev: no database, nothing changes
        assert op_settings("method", "exp") is SUITE_SETTINGS
    log = FetchLog()
    keyed = settings(SUITE_SETTINGS, derandomize=False, database=log, phases=[Phase.reuse])
    monkeypatch.setitem(globals(), "SUITE_SETTINGS", keyed)
    read = {}
    for op in [("method", "exp"), ("function", "exp"), ("method", "tanh")]:
        log.keys.clear()
        # nothing saved, nothing generated: Hypothesis says it ran no test case
        with contextlib.suppress(unittest.SkipTest):
            test_matches_pytorch_at_the_edges(*op)
        read[op] = set(log.keys)
    assert all(read.values()), read
    ops = list(read)
    for i, a in enumerate(ops):
        for b in ops[i + 1 :]:
            assert read[a].isdisjoint(read[b]), f"{a} and {b} share a database key"


def test_an_ops_share_of_the_database_keeps_its_values_apart():
    database = InMemoryExampleDatabase()
    exp, tanh = OpsShare(database, "method exp"), OpsShare(database, "method tanh")
    exp.save(b"key", b"failure")
    assert list(exp.fetch(b"key")) == [b"failure"]
    assert list(tanh.fetch(b"key")) == []
    exp.move(b"key", b"key.secondary", b"failure")
    assert list(exp.fetch(b"key")) == []
    assert list(exp.fetch(b"key.secondary")) == [b"failure"]
    assert list(database.fetch(b"method exp:key.secondary")) == [b"failure"]
    exp.delete(b"key.secondary", b"failure")
    assert list(database.fetch(b"method exp:key.secondary")) == []
    assert exp == OpsShare(database, "method exp") and exp != tanh
