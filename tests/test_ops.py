"""Property tests for every operation, driven by ONE table (``OPS``).

Each row names an op, how to call it (``fn(lib, *tensors, **params)``, written
once for both ``lib=autodiff`` and ``lib=torch`` since the APIs are the same), a
NumPy reference, and a strategy that draws the input arrays (a safe domain, with
broadcasting shapes where the op broadcasts) and the op's parameters.  For every
row, Hypothesis checks that

* the forward value (and dtype) equals the NumPy reference;
* the gradients, for a random upstream gradient, match central differences in
  float64 (``autodiff.testing.assert_gradients_match``), or for ops without a
  gradient (comparisons, argmax), that the result is cut from the graph;
* values and gradients equal PyTorch's (skipped when PyTorch is not installed).
"""

from __future__ import annotations

import dataclasses
import inspect
import math
from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import autodiff
from autodiff.testing import arrays, assert_gradients_match, broadcastable_shapes, shapes

# -- helpers -----------------------------------------------------------------------


def is_torch(lib) -> bool:
    return lib is not autodiff


def const(lib, array):
    """A constant NumPy operand: kept as an array for autodiff, a tensor for PyTorch."""
    if is_torch(lib) and isinstance(array, np.ndarray):
        return lib.from_numpy(array)
    return array


def index_for(lib, index):
    """An index whose arrays are NumPy arrays (autodiff) or tensors (PyTorch)."""
    if isinstance(index, tuple):
        return tuple(const(lib, i) for i in index)
    return const(lib, index)


def pad_fn(lib, x, pad, value):
    if is_torch(lib):
        return lib.nn.functional.pad(x, pad, value=value)
    return lib.pad(x, pad, value=value)


def np_logsumexp(x, axis, keepdims):
    m = np.max(x, axis=axis, keepdims=True)
    out = np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True)) + m
    return out if keepdims else np.squeeze(out, axis=axis)


def np_pad(x, pad, value):
    widths = [(0, 0)] * x.ndim
    for i in range(len(pad) // 2):
        widths[x.ndim - 1 - i] = (pad[2 * i], pad[2 * i + 1])
    return np.pad(x, widths, constant_values=value)


def np_sigmoid(x):
    return 1 / (1 + np.exp(-x))


def _dims(draw, ndim, allow_none=True, allow_tuple=True):
    """A reduction dim: None, an int (negative too) or a tuple of distinct dims."""
    options = ["int"] + (["none"] if allow_none else []) + (["tuple"] if allow_tuple else [])
    kind = draw(st.sampled_from(options))
    if kind == "none" or ndim == 0:
        return None
    if kind == "int":
        return draw(st.integers(-ndim, ndim - 1))
    picked = draw(st.lists(st.integers(0, ndim - 1), min_size=1, max_size=ndim, unique=True))
    return tuple(d - ndim if draw(st.booleans()) else d for d in picked)


# Values on a grid (distinct, at least 0.25 apart): no ties for max/min/sort-like ops,
# no zero variance for std.
GRID = st.integers(-40, 40).map(lambda k: k / 4 + 0.01)
GRID_OFFSET = st.integers(-40, 40).map(lambda k: k / 4 + 0.135)  # never equal to GRID


# -- input strategies ------------------------------------------------------------------


def unary(low=-5.0, high=5.0, avoid=(), shape=None, unique=False):
    """One array in [low, high] (away from ``avoid``), no parameters."""
    shape = shapes() if shape is None else shape

    @st.composite
    def draw(draw):
        if unique:
            x = draw(arrays(np.float64, shape, elements=GRID, unique=True))
        else:
            x = draw(arrays(np.float64, shape, min_value=low, max_value=high, avoid=avoid))
        return [x], {}

    return draw()


def binary(a=(-5.0, 5.0), b=(-5.0, 5.0), avoid_b=(), elements=None):
    """Two arrays of mutually broadcastable shapes."""

    @st.composite
    def draw(draw):
        sa, sb = draw(broadcastable_shapes(2))
        if elements is not None:
            x = draw(arrays(np.float64, sa, elements=elements[0]))
            y = draw(arrays(np.float64, sb, elements=elements[1]))
        else:
            x = draw(arrays(np.float64, sa, min_value=a[0], max_value=a[1]))
            y = draw(
                arrays(np.float64, sb, min_value=b[0], max_value=b[1], avoid=avoid_b, margin=0.1)
            )
        return [x, y], {}

    return draw()


def with_constant(low=-5.0, high=5.0, const_avoid=()):
    """One tensor and one constant NumPy array of a broadcastable shape (params['c'])."""

    @st.composite
    def draw(draw):
        sx, sc = draw(broadcastable_shapes(2))
        x = draw(arrays(np.float64, sx, min_value=low, max_value=high))
        c = draw(arrays(np.float64, sc, min_value=-3, max_value=3, avoid=const_avoid, margin=0.1))
        return [x], {"c": c}

    return draw()


@st.composite
def reduction(draw, elements=None, min_side=1, allow_tuple=True, allow_none=True):
    shape = draw(shapes(min_dims=1, min_side=min_side))
    if elements is None:
        x = draw(arrays(np.float64, shape, min_value=-3, max_value=3))
    else:
        x = draw(arrays(np.float64, shape, elements=elements, unique=True))
    dim = _dims(draw, len(shape), allow_none=allow_none, allow_tuple=allow_tuple)
    return [x], {"dim": dim, "keepdim": draw(st.booleans())}


@st.composite
def reduction_over_two_or_more(draw, correction=False):
    """For var/std: every reduced dim has at least two distinct values."""
    shape = draw(shapes(min_dims=1, min_side=2, max_side=3))
    x = draw(arrays(np.float64, shape, elements=GRID, unique=True))
    params = {"dim": _dims(draw, len(shape)), "keepdim": draw(st.booleans())}
    if correction:
        params["correction"] = draw(st.sampled_from([0, 1]))
    return [x], params


@st.composite
def reshape_inputs(draw):
    shape = draw(shapes())
    x = draw(arrays(np.float64, shape, min_value=-3, max_value=3))
    n = x.size
    options = [(-1,), (n,), (1, n), tuple(reversed(shape)), (*shape, 1)]
    if shape:
        spot = draw(st.integers(0, len(shape) - 1))
        options.append(shape[:spot] + (-1,) + shape[spot + 1 :])
    return [x], {"shape": draw(st.sampled_from(options))}


@st.composite
def one_tensor_with_dims(draw, what, min_dims=1):
    shape = draw(shapes(min_dims=min_dims))
    x = draw(arrays(np.float64, shape, min_value=-3, max_value=3))
    nd = len(shape)
    if what == "permute":
        return [x], {"dims": tuple(draw(st.permutations(range(nd))))}
    if what == "transpose":
        return [x], {"d0": draw(st.integers(-nd, nd - 1)), "d1": draw(st.integers(-nd, nd - 1))}
    if what == "unsqueeze":
        return [x], {"dim": draw(st.integers(-nd - 1, nd))}
    if what == "squeeze":
        return [x], {"dim": draw(st.one_of(st.none(), st.integers(-nd, nd - 1)))}
    if what == "flatten":
        start = draw(st.integers(0, nd - 1))
        end = draw(st.integers(start, nd - 1))
        return [x], {"start": start - nd if draw(st.booleans()) else start, "end": end}
    raise AssertionError(what)


@st.composite
def expand_inputs(draw):
    shape = draw(shapes(min_side=1, max_side=3))
    x = draw(arrays(np.float64, shape, min_value=-3, max_value=3))
    target = tuple(draw(st.integers(1, 3)) if s == 1 else s for s in shape)
    lead = tuple(draw(st.lists(st.integers(1, 3), max_size=2)))
    keep = tuple(
        -1 if s == t and draw(st.booleans()) else t for s, t in zip(shape, target, strict=True)
    )
    return [x], {"shape": lead + target, "sizes": lead + keep}


@st.composite
def cat_inputs(draw, same_shape=False):
    base = list(draw(shapes(min_dims=1)))
    dim = draw(st.integers(0, len(base) - 1))
    count = draw(st.integers(1, 3))
    xs = []
    for _ in range(count):
        shape = list(base)
        if not same_shape:
            shape[dim] = draw(st.integers(1, 3))
        xs.append(draw(arrays(np.float64, tuple(shape), min_value=-3, max_value=3)))
    nd = len(base) + (1 if same_shape else 0)
    d = draw(st.integers(0, nd - 1)) if same_shape else dim
    return xs, {"dim": d - nd if draw(st.booleans()) else d}


@st.composite
def pad_inputs(draw):
    shape = draw(shapes(min_dims=1))
    x = draw(arrays(np.float64, shape, min_value=-3, max_value=3))
    pairs = draw(st.integers(1, len(shape)))
    pad = tuple(draw(st.integers(0, 2)) for _ in range(2 * pairs))
    return [x], {"pad": pad, "value": draw(st.sampled_from([0.0, -1.5]))}


@st.composite
def split_inputs(draw):
    shape = draw(shapes(min_dims=1, min_side=2))
    x = draw(arrays(np.float64, shape, min_value=-3, max_value=3))
    dim = draw(st.integers(0, len(shape) - 1))
    size = draw(st.integers(1, shape[dim]))
    return [x], {"size": size, "dim": dim}


@st.composite
def where_inputs(draw):
    sc, sx, sy = draw(broadcastable_shapes(3))
    cond = draw(arrays(np.bool_, sc))
    x = draw(arrays(np.float64, sx, min_value=-3, max_value=3))
    y = draw(arrays(np.float64, sy, min_value=-3, max_value=3))
    return [x, y], {"cond": cond}


@st.composite
def clamp_inputs(draw, which="both"):
    x = draw(arrays(np.float64, shapes(), elements=GRID))
    low = draw(st.integers(-8, 4)) / 4
    high = low + draw(st.integers(0, 8)) / 4
    return [x], {
        "lo": low if which in ("both", "min") else None,
        "hi": high if which in ("both", "max") else None,
    }


@st.composite
def matmul_inputs(draw):
    n, k, m = (draw(st.integers(1, 4)) for _ in range(3))
    kind = draw(st.sampled_from(["1d@1d", "2d@1d", "1d@2d", "2d@2d", "batched", "broadcast"]))
    batch = tuple(draw(st.lists(st.integers(1, 3), min_size=1, max_size=2)))
    shapes_ = {
        "1d@1d": ((k,), (k,)),
        "2d@1d": ((n, k), (k,)),
        "1d@2d": ((k,), (k, m)),
        "2d@2d": ((n, k), (k, m)),
        "batched": (batch + (n, k), batch + (k, m)),
        "broadcast": ((1,) + batch[1:] + (n, k), batch + (k, m))
        if draw(st.booleans())
        else (batch + (n, k), (k, m)),
    }[kind]
    a = draw(arrays(np.float64, shapes_[0], min_value=-3, max_value=3))
    b = draw(arrays(np.float64, shapes_[1], min_value=-3, max_value=3))
    return [a, b], {}


@st.composite
def linear_inputs(draw):
    """x (n, k), W (m, k), b (m,): the shapes of x @ W.T + b (a transposed operand)."""
    n, k, m = (draw(st.integers(1, 4)) for _ in range(3))
    batch = tuple(draw(st.lists(st.integers(1, 3), max_size=1)))
    return [
        draw(arrays(np.float64, batch + (n, k), min_value=-3, max_value=3)),
        draw(arrays(np.float64, (m, k), min_value=-3, max_value=3)),
        draw(arrays(np.float64, (m,), min_value=-3, max_value=3)),
    ], {}


@st.composite
def index_inputs(draw, kind):
    """An array and an index of one kind: int, slice, None/..., int array, bool mask, mixed."""
    shape = draw(shapes(min_dims=1 if kind != "mixed" else 2))
    x = draw(arrays(np.float64, shape, min_value=-3, max_value=3))
    s0 = shape[0]
    ints = st.integers(-s0, s0 - 1)
    if kind == "int":
        index = draw(ints)
    elif kind == "slice":
        start = draw(st.one_of(st.none(), st.integers(-s0, s0)))
        stop = draw(st.one_of(st.none(), st.integers(-s0, s0)))
        index = slice(start, stop, draw(st.sampled_from([None, 1, 2])))
    elif kind == "none_ellipsis":
        index = draw(
            st.sampled_from(
                [
                    None,
                    Ellipsis,
                    (None, Ellipsis),
                    (Ellipsis, None),
                    (Ellipsis, 0),
                    (None, slice(None), None),
                ]
            )
        )
        if index == (Ellipsis, 0):
            index = (Ellipsis, draw(st.integers(-shape[-1], shape[-1] - 1)))
    elif kind == "int_array":  # repeats are likely: the backward must add them up
        index = np.array(draw(st.lists(ints, min_size=1, max_size=6)), dtype=np.int64)
        if draw(st.booleans()):
            index = index.reshape(1, -1) if draw(st.booleans()) else index
    elif kind == "two_int_arrays":
        assume(len(shape) >= 2)
        n = draw(st.integers(1, 5))
        rows = st.lists(ints, min_size=n, max_size=n)
        cols = st.lists(st.integers(-shape[1], shape[1] - 1), min_size=n, max_size=n)
        index = (np.array(draw(rows), dtype=np.int64), np.array(draw(cols), dtype=np.int64))
    elif kind == "bool_mask":
        depth = draw(st.integers(1, len(shape)))
        index = draw(arrays(np.bool_, shape[:depth]))
    elif kind == "mixed":
        arr = np.array(draw(st.lists(ints, min_size=1, max_size=4)), dtype=np.int64)
        index = draw(
            st.sampled_from(
                [
                    (arr, slice(None), None),
                    (slice(None, None, 2), arr % shape[1]),
                    (Ellipsis, arr % shape[-1]),
                    (draw(ints), slice(1, None)),
                ]
            )
        )
    else:
        raise AssertionError(kind)
    return [x], {"index": index}


@st.composite
def compare_inputs(draw):
    # values on a coarse grid, so that equality happens
    elements = st.integers(-3, 3).map(float)
    sa, sb = draw(broadcastable_shapes(2))
    x = draw(arrays(np.float64, sa, elements=elements))
    other = draw(
        st.one_of(
            arrays(np.float64, sb, elements=elements).map(lambda a: ("tensor", a)),
            st.integers(-3, 3).map(lambda v: ("scalar", float(v))),
        )
    )
    if other[0] == "tensor":
        return [x, other[1]], {}
    return [x], {"scalar": other[1]}


# -- the table ------------------------------------------------------------------------


@dataclasses.dataclass
class Op:
    name: str
    fn: Callable  # fn(lib, *tensors, **params)
    ref: Callable  # ref(*arrays, **params) on NumPy arrays
    inputs: st.SearchStrategy  # draws (list of float64 arrays, params dict)
    grad: bool = True  # False: no gradient (comparisons, argmax); the result is a constant
    rtol: float = 1e-3  # gradient tolerance against finite differences

    def __repr__(self):
        return self.name


def _cmp(op, ref):
    return [
        Op(
            f"{op}_tensor",
            lambda lib, x, y, _f=op: getattr(x, _f)(y),
            ref,
            compare_inputs().filter(lambda d: len(d[0]) == 2),
            grad=False,
        ),
        Op(
            f"{op}_scalar",
            lambda lib, x, scalar, _f=op: getattr(x, _f)(scalar),
            lambda x, scalar, _r=ref: _r(x, scalar),
            compare_inputs().filter(lambda d: len(d[0]) == 1),
            grad=False,
        ),
    ]


def _maybe_dim(method, x, dim, keepdim):
    return method(x) if dim is None else method(x, dim, keepdim)


OPS = [
    # arithmetic with broadcasting, and the method twins
    Op("add", lambda lib, x, y: x + y, np.add, binary()),
    Op("sub", lambda lib, x, y: x - y, np.subtract, binary()),
    Op("mul", lambda lib, x, y: x * y, np.multiply, binary()),
    Op("div", lambda lib, x, y: x / y, np.divide, binary(b=(-4.0, 4.0), avoid_b=(0.0,)), rtol=1e-3),
    # p = 0 exactly: PyTorch's convention (d/dx x^0 = 0 for every x, a zero second
    # derivative in p) is not the finite difference; test_edges pins that point
    Op(
        "pow_tensor",
        lambda lib, x, y: x**y,
        np.power,
        binary(a=(0.2, 3.0), b=(-2.0, 2.0), avoid_b=(0.0,)),
    ),
    Op("neg", lambda lib, x: -x, np.negative, unary()),
    Op(
        "add_method_alpha",
        lambda lib, x, y: x.add(y, alpha=2.5),
        lambda x, y: x + 2.5 * y,
        binary(),
    ),
    Op(
        "sub_method_alpha",
        lambda lib, x, y: x.sub(y, alpha=-0.5),
        lambda x, y: x + 0.5 * y,
        binary(),
    ),
    Op("mul_method", lambda lib, x, y: x.mul(y), np.multiply, binary()),
    Op("div_method", lambda lib, x, y: x.div(y), np.divide, binary(b=(0.5, 4.0))),
    Op("pow_method", lambda lib, x, y: x.pow(y), np.power, binary(a=(0.2, 3.0), b=(-2.0, 2.0))),
    Op("matmul_method", lambda lib, x, y: x.matmul(y), np.matmul, matmul_inputs()),
    # reflected operators with Python numbers and NumPy arrays
    Op("add_scalar", lambda lib, x: x + 1.5, lambda x: x + 1.5, unary()),
    Op("radd_scalar", lambda lib, x: 1.5 + x, lambda x: 1.5 + x, unary()),
    Op("rsub_scalar", lambda lib, x: 2.5 - x, lambda x: 2.5 - x, unary()),
    Op("sub_scalar", lambda lib, x: x - 2, lambda x: x - 2, unary()),
    Op("rmul_scalar", lambda lib, x: 3 * x, lambda x: 3 * x, unary()),
    Op("rdiv_scalar", lambda lib, x: 2.5 / x, lambda x: 2.5 / x, unary(-4, 4, avoid=(0.0,))),
    Op("div_scalar", lambda lib, x: x / 4, lambda x: x / 4, unary()),
    Op("pow_int", lambda lib, x: x**3, lambda x: x**3, unary(-3, 3)),
    Op("pow_float", lambda lib, x: x**2.5, lambda x: x**2.5, unary(0.1, 3)),
    Op("pow_negative", lambda lib, x: x**-1.5, lambda x: x**-1.5, unary(0.2, 3)),
    Op("rpow_scalar", lambda lib, x: 2.0**x, lambda x: 2.0**x, unary(-3, 3)),
    Op("radd_array", lambda lib, x, c: const(lib, c) + x, lambda x, c: c + x, with_constant()),
    Op("rsub_array", lambda lib, x, c: const(lib, c) - x, lambda x, c: c - x, with_constant()),
    Op("rmul_array", lambda lib, x, c: const(lib, c) * x, lambda x, c: c * x, with_constant()),
    Op(
        "rdiv_array", lambda lib, x, c: const(lib, c) / x, lambda x, c: c / x, with_constant(0.5, 4)
    ),
    Op(
        "div_by_array",
        lambda lib, x, c: x / const(lib, c),
        lambda x, c: x / c,
        with_constant(const_avoid=(0.0,)),
    ),
    # elementwise functions, each in its safe domain
    Op("exp", lambda lib, x: x.exp(), np.exp, unary(-5, 5)),
    Op("log", lambda lib, x: x.log(), np.log, unary(0.1, 10)),
    Op("sqrt", lambda lib, x: x.sqrt(), np.sqrt, unary(0.1, 10)),
    Op("rsqrt", lambda lib, x: x.rsqrt(), lambda x: 1 / np.sqrt(x), unary(0.1, 10)),
    Op("abs", lambda lib, x: x.abs(), np.abs, unary(avoid=(0.0,))),
    Op("sin", lambda lib, x: x.sin(), np.sin, unary()),
    Op("atan2", lambda lib, y, x: lib.atan2(y, x), np.arctan2, binary(b=(0.5, 5.0))),
    Op("cos", lambda lib, x: x.cos(), np.cos, unary()),
    Op("tanh", lambda lib, x: x.tanh(), np.tanh, unary()),
    Op("sigmoid", lambda lib, x: x.sigmoid(), np_sigmoid, unary(-8, 8)),
    Op("relu", lambda lib, x: x.relu(), lambda x: np.maximum(x, 0), unary(avoid=(0.0,))),
    Op("square", lambda lib, x: x.square(), np.square, unary()),
    Op("reciprocal", lambda lib, x: x.reciprocal(), np.reciprocal, unary(0.2, 5)),
    Op("module_exp", lambda lib, x: lib.exp(x), np.exp, unary(-3, 3)),
    Op(
        "clamp",
        lambda lib, x, lo, hi: x.clamp(lo, hi),
        lambda x, lo, hi: np.clip(x, lo, hi),
        clamp_inputs(),
    ),
    Op(
        "clamp_min",
        lambda lib, x, lo, hi: x.clamp(min=lo),
        lambda x, lo, hi: np.maximum(x, lo),
        clamp_inputs("min"),
    ),
    Op(
        "clip_max",
        lambda lib, x, lo, hi: x.clip(max=hi),
        lambda x, lo, hi: np.minimum(x, hi),
        clamp_inputs("max"),
    ),
    Op(
        "maximum",
        lambda lib, x, y: lib.maximum(x, y),
        np.maximum,
        binary(elements=(GRID, GRID_OFFSET)),
    ),
    Op(
        "minimum",
        lambda lib, x, y: lib.minimum(x, y),
        np.minimum,
        binary(elements=(GRID, GRID_OFFSET)),
    ),
    Op(
        "where",
        lambda lib, x, y, cond: lib.where(const(lib, cond), x, y),
        lambda x, y, cond: np.where(cond, x, y),
        where_inputs(),
    ),
    # comparisons: boolean results, no gradient
    *_cmp("eq", np.equal),
    *_cmp("ne", np.not_equal),
    *_cmp("lt", np.less),
    *_cmp("le", np.less_equal),
    *_cmp("gt", np.greater),
    *_cmp("ge", np.greater_equal),
    Op(
        "operator_lt",
        lambda lib, x, y: x < y,
        np.less,
        compare_inputs().filter(lambda d: len(d[0]) == 2),
        grad=False,
    ),
    Op(
        "operator_eq_scalar",
        lambda lib, x, scalar: x == scalar,
        lambda x, scalar: x == scalar,
        compare_inputs().filter(lambda d: len(d[0]) == 1),
        grad=False,
    ),
    # reductions
    Op(
        "sum",
        lambda lib, x, dim, keepdim: _maybe_dim(lib.sum, x, dim, keepdim),
        lambda x, dim, keepdim: np.sum(x, axis=dim, keepdims=keepdim and dim is not None),
        reduction(),
    ),
    Op(
        "sum_keepdim",
        lambda lib, x, dim, keepdim: x.sum(dim, keepdim=keepdim),
        lambda x, dim, keepdim: np.sum(x, axis=dim, keepdims=keepdim),
        reduction(allow_none=False),
    ),
    Op(
        "mean",
        lambda lib, x, dim, keepdim: _maybe_dim(lib.mean, x, dim, keepdim),
        lambda x, dim, keepdim: np.mean(x, axis=dim, keepdims=keepdim and dim is not None),
        reduction(),
    ),
    Op(
        "var",
        lambda lib, x, dim, keepdim: x.var(dim, keepdim=keepdim),
        lambda x, dim, keepdim: np.var(x, axis=dim, ddof=1, keepdims=keepdim),
        reduction_over_two_or_more(),
    ),
    Op(
        "var_correction",
        lambda lib, x, dim, keepdim, correction: x.var(dim, keepdim=keepdim, correction=correction),
        lambda x, dim, keepdim, correction: np.var(x, axis=dim, ddof=correction, keepdims=keepdim),
        reduction_over_two_or_more(correction=True),
    ),
    Op(
        "std",
        lambda lib, x, dim, keepdim: x.std(dim, keepdim=keepdim),
        lambda x, dim, keepdim: np.std(x, axis=dim, ddof=1, keepdims=keepdim),
        reduction_over_two_or_more(),
    ),
    Op("max_all", lambda lib, x: x.max(), np.max, unary(shape=shapes(min_dims=0), unique=True)),
    Op("min_all", lambda lib, x: x.min(), np.min, unary(shape=shapes(min_dims=0), unique=True)),
    Op(
        "max_dim",
        lambda lib, x, dim, keepdim: tuple(x.max(dim, keepdim=keepdim)),
        lambda x, dim, keepdim: (
            np.max(x, axis=dim, keepdims=keepdim),
            np.argmax(x, axis=dim, keepdims=keepdim),
        ),
        reduction(elements=GRID, allow_none=False, allow_tuple=False),
    ),
    Op(
        "min_dim",
        lambda lib, x, dim, keepdim: tuple(x.min(dim, keepdim)),
        lambda x, dim, keepdim: (
            np.min(x, axis=dim, keepdims=keepdim),
            np.argmin(x, axis=dim, keepdims=keepdim),
        ),
        reduction(elements=GRID, allow_none=False, allow_tuple=False),
    ),
    Op(
        "max_dim_fields",
        lambda lib, x, dim, keepdim: (x.max(dim=dim).values, x.max(dim=dim).indices),
        lambda x, dim, keepdim: (np.max(x, axis=dim), np.argmax(x, axis=dim)),
        reduction(elements=GRID, allow_none=False, allow_tuple=False),
    ),
    Op(
        "amax",
        lambda lib, x, dim, keepdim: x.amax(dim, keepdim),
        lambda x, dim, keepdim: np.max(x, axis=dim, keepdims=keepdim),
        reduction(elements=GRID, allow_none=False),
    ),
    Op(
        "amin",
        lambda lib, x, dim, keepdim: x.amin(dim, keepdim),
        lambda x, dim, keepdim: np.min(x, axis=dim, keepdims=keepdim),
        reduction(elements=GRID, allow_none=False),
    ),
    Op(
        "argmax",
        lambda lib, x, dim, keepdim: x.argmax(dim, keepdim),
        lambda x, dim, keepdim: np.argmax(x, axis=dim, keepdims=keepdim),
        reduction(elements=GRID, allow_tuple=False),
        grad=False,
    ),
    Op(
        "argmin",
        lambda lib, x, dim, keepdim: x.argmin(dim, keepdim),
        lambda x, dim, keepdim: np.argmin(x, axis=dim, keepdims=keepdim),
        reduction(elements=GRID, allow_tuple=False),
        grad=False,
    ),
    Op(
        "logsumexp",
        lambda lib, x, dim, keepdim: lib.logsumexp(x, dim, keepdim),
        lambda x, dim, keepdim: np_logsumexp(x, dim, keepdim),
        reduction(allow_none=False),
    ),
    Op(
        "prod",
        lambda lib, x, dim, keepdim: _maybe_dim(lib.prod, x, dim, keepdim),
        lambda x, dim, keepdim: np.prod(x, axis=dim, keepdims=keepdim and dim is not None),
        reduction(elements=GRID, allow_tuple=False),  # zeros: see test_engine
    ),
    Op(
        "cumsum",
        lambda lib, x, dim, keepdim: x.cumsum(dim),
        lambda x, dim, keepdim: np.cumsum(x, axis=dim),
        reduction(allow_none=False, allow_tuple=False),
    ),
    Op(
        "cumprod",
        lambda lib, x, dim, keepdim: lib.cumprod(x, dim),
        lambda x, dim, keepdim: np.cumprod(x, axis=dim),
        reduction(allow_none=False, allow_tuple=False),  # zeros: see test_products
    ),
    # composed from the primitives
    Op(
        "softmax",
        lambda lib, x, dim, keepdim: x.softmax(dim),
        lambda x, dim, keepdim: np.exp(x - np_logsumexp(x, dim, True)),
        reduction(allow_none=False, allow_tuple=False),
    ),
    Op(
        "log_softmax",
        lambda lib, x, dim, keepdim: x.log_softmax(dim),
        lambda x, dim, keepdim: x - np_logsumexp(x, dim, True),
        reduction(allow_none=False, allow_tuple=False),
    ),
    # shape operations
    Op(
        "reshape",
        lambda lib, x, shape: x.reshape(shape),
        lambda x, shape: x.reshape(shape),
        reshape_inputs(),
    ),
    Op(
        "view",
        lambda lib, x, shape: x.view(*shape) if shape else x.view(shape),
        lambda x, shape: x.reshape(shape),
        reshape_inputs(),
    ),
    Op(
        "flatten",
        lambda lib, x, start, end: lib.flatten(x, start, end),
        lambda x, start, end: x.reshape(
            x.shape[: start % x.ndim] + (-1,) + x.shape[end % x.ndim + 1 :]
        ),
        one_tensor_with_dims("flatten"),
    ),
    Op(
        "permute",
        lambda lib, x, dims: x.permute(*dims),
        lambda x, dims: np.transpose(x, dims),
        one_tensor_with_dims("permute"),
    ),
    Op(
        "transpose",
        lambda lib, x, d0, d1: x.transpose(d0, d1),
        lambda x, d0, d1: np.swapaxes(x, d0, d1),
        one_tensor_with_dims("transpose"),
    ),
    Op("T_2d", lambda lib, x: x.T, lambda x: x.T, unary(shape=shapes(min_dims=2, max_dims=2))),
    Op(
        "mT", lambda lib, x: x.mT, lambda x: np.swapaxes(x, -1, -2), unary(shape=shapes(min_dims=2))
    ),
    Op(
        "unsqueeze",
        lambda lib, x, dim: x.unsqueeze(dim),
        lambda x, dim: np.expand_dims(x, dim),
        one_tensor_with_dims("unsqueeze", min_dims=0),
    ),
    Op(
        "squeeze",
        lambda lib, x, dim: x.squeeze() if dim is None else x.squeeze(dim),
        lambda x, dim: (
            np.squeeze(x) if dim is None else (np.squeeze(x, dim) if x.shape[dim] == 1 else x)
        ),
        one_tensor_with_dims("squeeze"),
    ),
    Op(
        "expand",
        lambda lib, x, shape, sizes: x.expand(*sizes) if sizes else x.expand(sizes),
        lambda x, shape, sizes: np.broadcast_to(x, shape),
        expand_inputs(),
    ),
    Op(
        "broadcast_to",
        lambda lib, x, shape, sizes: lib.broadcast_to(x, shape),
        lambda x, shape, sizes: np.broadcast_to(x, shape),
        expand_inputs(),
    ),
    Op(
        "cat",
        lambda lib, *xs, dim: lib.cat(xs, dim=dim),
        lambda *xs, dim: np.concatenate(xs, axis=dim),
        cat_inputs(),
    ),
    Op(
        "stack",
        lambda lib, *xs, dim: lib.stack(xs, dim=dim),
        lambda *xs, dim: np.stack(xs, axis=dim),
        cat_inputs(same_shape=True),
    ),
    Op("pad", lambda lib, x, pad, value: pad_fn(lib, x, pad, value), np_pad, pad_inputs()),
    Op(
        "split",
        lambda lib, x, size, dim: x.split(size, dim),
        lambda x, size, dim: tuple(np.split(x, range(size, x.shape[dim], size), axis=dim)),
        split_inputs(),
    ),
    Op(
        "chunk",
        lambda lib, x, size, dim: x.chunk(size, dim),
        lambda x, size, dim: tuple(
            np.split(
                x,
                range(math.ceil(x.shape[dim] / size), x.shape[dim], math.ceil(x.shape[dim] / size)),
                axis=dim,
            )
        ),
        split_inputs(),
    ),
    # indexing (the backward scatter-adds, so repeated indices add up)
    *[
        Op(
            f"getitem_{kind}",
            lambda lib, x, index: x[index_for(lib, index)],
            lambda x, index: x[index],
            index_inputs(kind),
        )
        for kind in [
            "int",
            "slice",
            "none_ellipsis",
            "int_array",
            "two_int_arrays",
            "bool_mask",
            "mixed",
        ]
    ],
    # matrix products: vectors, matrices, batches (with broadcast batch dims)
    Op("matmul", lambda lib, x, y: x @ y, np.matmul, matmul_inputs()),
    Op(
        "linear_x_wt_b",
        lambda lib, x, w, b: x @ w.T + b,
        lambda x, w, b: x @ w.T + b,
        linear_inputs(),
    ),
    Op(
        "matmul_both_transposed",
        lambda lib, x, w, b: (w @ x.mT).mT,
        lambda x, w, b: np.swapaxes(w @ np.swapaxes(x, -1, -2), -1, -2),
        linear_inputs(),
    ),
    Op(
        "rmatmul_array",
        lambda lib, x, c: const(lib, c) @ x,
        lambda x, c: c @ x,
        st.builds(
            lambda a, c: ([a], {"c": c}),
            arrays(np.float64, (3, 2), min_value=-3, max_value=3),
            arrays(np.float64, (4, 3), min_value=-3, max_value=3),
        ),
    ),
]

GRAD_OPS = [op for op in OPS if op.grad]
NO_GRAD_OPS = [op for op in OPS if not op.grad]


def _as_list(out):
    return list(out) if isinstance(out, (tuple, list)) else [out]


def _leaves(lib, arrays_, requires_grad):
    if is_torch(lib):
        return [lib.tensor(a, requires_grad=requires_grad) for a in arrays_]
    return [autodiff.tensor(a, requires_grad=requires_grad) for a in arrays_]


# -- the property tests -------------------------------------------------------------


def test_the_table_names_are_unique():
    names = [op.name for op in OPS]
    assert len(names) == len(set(names))


@pytest.mark.parametrize("op", OPS, ids=repr)
@given(data=st.data())
def test_forward_matches_numpy(op, data):
    arrays_, params = data.draw(op.inputs)
    expected = _as_list(op.ref(*arrays_, **params))
    xs = _leaves(autodiff, arrays_, requires_grad=False)
    got = _as_list(op.fn(autodiff, *xs, **params))
    assert len(got) == len(expected)
    for out, ref in zip(got, expected, strict=True):
        ref = np.asarray(ref)
        assert isinstance(out, autodiff.Tensor)
        assert out.shape == ref.shape, f"{op.name}: shape {out.shape}, NumPy gives {ref.shape}"
        assert out.dtype == ref.dtype, f"{op.name}: dtype {out.dtype}, NumPy gives {ref.dtype}"
        np.testing.assert_allclose(out.data, ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("op", GRAD_OPS, ids=repr)
@given(data=st.data(), seed=st.integers(0, 2**32 - 1))
def test_gradients_match_finite_differences(op, data, seed):
    arrays_, params = data.draw(op.inputs)
    xs = _leaves(autodiff, arrays_, requires_grad=True)
    assert_gradients_match(lambda *ts: op.fn(autodiff, *ts, **params), *xs, seed=seed, rtol=op.rtol)


@pytest.mark.parametrize("op", NO_GRAD_OPS, ids=repr)
@given(data=st.data())
def test_ops_without_gradient_give_constants(op, data):
    arrays_, params = data.draw(op.inputs)
    xs = _leaves(autodiff, arrays_, requires_grad=True)
    for out in _as_list(op.fn(autodiff, *xs, **params)):
        assert out.dtype.kind in "bi", f"{op.name}: dtype {out.dtype}"
        assert not out.requires_grad and out.grad_fn is None


@pytest.mark.torch
@pytest.mark.parametrize("op", OPS, ids=repr)
@settings(max_examples=10)
@given(data=st.data(), seed=st.integers(0, 2**32 - 1))
def test_matches_pytorch(op, data, seed):
    torch = pytest.importorskip("torch")
    arrays_, params = data.draw(op.inputs)
    ours_in = _leaves(autodiff, arrays_, requires_grad=op.grad)
    theirs_in = _leaves(torch, arrays_, requires_grad=op.grad)
    ours = _as_list(op.fn(autodiff, *ours_in, **params))
    theirs = _as_list(op.fn(torch, *theirs_in, **params))
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs, strict=True):
        expected = b.detach().numpy()
        assert a.shape == expected.shape, (
            f"{op.name}: shape {a.shape}, PyTorch gives {expected.shape}"
        )
        assert a.dtype == expected.dtype, (
            f"{op.name}: dtype {a.dtype}, PyTorch gives {expected.dtype}"
        )
        np.testing.assert_allclose(a.data, expected, rtol=1e-10, atol=1e-12)
    if not op.grad:
        return
    rng = np.random.default_rng(seed)
    pairs = [(a, b) for a, b in zip(ours, theirs, strict=True) if a.dtype.kind == "f"]
    vs = [rng.standard_normal(a.shape) for a, _ in pairs]
    ours_g = autodiff.grad(
        [a for a, _ in pairs], ours_in, [autodiff.tensor(v) for v in vs], allow_unused=True
    )
    theirs_g = torch.autograd.grad(
        [b for _, b in pairs], theirs_in, [torch.tensor(v) for v in vs], allow_unused=True
    )
    for i, (g, h) in enumerate(zip(ours_g, theirs_g, strict=True)):
        g = np.zeros(arrays_[i].shape) if g is None else g.data
        h = np.zeros(arrays_[i].shape) if h is None else h.numpy()
        np.testing.assert_allclose(g, h, rtol=1e-9, atol=1e-12, err_msg=f"{op.name}: input {i}")


# Rows whose constant operand is a float64 NumPy array: NumPy 2 promotes to float64.
_FLOAT64_CONSTANTS = {
    "radd_array",
    "rsub_array",
    "rmul_array",
    "rdiv_array",
    "div_by_array",
    "rmatmul_array",
}


@pytest.mark.parametrize("op", [op for op in OPS if op.name not in _FLOAT64_CONSTANTS], ids=repr)
@settings(max_examples=5)
@given(data=st.data())
def test_float32_stays_float32(op, data):
    arrays_, params = data.draw(op.inputs)
    xs = [autodiff.tensor(a.astype(np.float32), requires_grad=op.grad) for a in arrays_]
    outs = [o for o in _as_list(op.fn(autodiff, *xs, **params)) if o.dtype.kind == "f"]
    for out in outs:
        assert out.dtype == np.float32, f"{op.name}: float32 inputs give {out.dtype}"
    if op.grad and outs:
        grads = autodiff.grad(outs, xs, [autodiff.ones_like(o) for o in outs], allow_unused=True)
        for g in grads:
            assert g is None or g.dtype == np.float32


@pytest.mark.parametrize("op", GRAD_OPS, ids=repr)
@settings(max_examples=5)
@given(data=st.data(), seed=st.integers(0, 2**32 - 1))
def test_trace_backward_gives_the_gradients_of_backward(op, data, seed):
    """visualize's table runs the engine's own loop: the same gradients as backward()."""
    import visualize

    arrays_, params = data.draw(op.inputs)
    xs = _leaves(autodiff, arrays_, requires_grad=True)
    for i, x in enumerate(xs):
        x.name = f"x{i}"
    outs = [o for o in _as_list(op.fn(autodiff, *xs, **params)) if o.requires_grad]
    rng = np.random.default_rng(seed)
    loss = sum((o * autodiff.tensor(rng.standard_normal(o.shape))).sum() for o in outs)
    trace = visualize.trace_backward(loss)
    loss.backward()
    for x in xs:
        if x.grad is None:
            assert x.name not in trace.grads, f"{op.name}: {x.name}"
        else:
            np.testing.assert_array_equal(trace.grads[x.name], x.grad.data, err_msg=op.name)


def test_every_primitive_has_a_rule_that_visualize_reads():
    """Each Function's docstring starts with its forward and one dL/d... line per input."""
    import nn  # noqa: F401 (its Functions too)
    from visualize.trace import input_names, op_rule

    def subclasses(cls):
        for sub in cls.__subclasses__():
            yield sub
            yield from subclasses(sub)

    library = [
        f for f in subclasses(autodiff.Function) if f.__module__.startswith(("autodiff", "nn"))
    ]
    assert set(autodiff.ops.primitives()) <= set(library)
    for function in library:
        formula, rule = op_rule(function)
        assert formula, f"{function.__name__}: no forward formula in its docstring"
        assert rule.startswith("dL/d"), f"{function.__name__}: no dL/d... rule in its docstring"
        n_inputs = len(inspect.signature(function.forward).parameters) - 1  # without ctx
        named = input_names(rule, n_inputs)
        assert not named or len(named) == n_inputs, function.__name__


def test_an_op_class_naming_its_method_is_the_only_binding_needed():
    """Atan2 is one class with ``method = "atan2"`` (and one row of OPS): nothing else."""
    y, x = autodiff.tensor([1.0, -1.0]), autodiff.tensor([1.0, 1.0])
    assert autodiff.atan2(y, x).grad_fn is None
    assert autodiff.Tensor.atan2.__doc__ == autodiff.ops.Atan2.__doc__
    y.requires_grad_()
    assert y.atan2(x).grad_fn.name() == "Atan2Backward"
    assert [op.name for op in OPS].count("atan2") == 1
    for op in autodiff.ops.primitives():
        for name in autodiff.ops.method_names(op):
            assert getattr(autodiff.Tensor, name).__doc__ == op.__doc__, name
            if not name.startswith("_"):
                assert callable(getattr(autodiff, name)), name


_POWER_EDGES = [0.0, -0.0, math.inf, -math.inf, math.nan, 1e-40, -1e-40, 1.0, -1.0, 1e30, -1e30]


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    values=st.lists(
        st.one_of(st.floats(-40, 40), st.sampled_from(_POWER_EDGES)), min_size=1, max_size=30
    ),
    dtype=st.sampled_from([np.float32, np.float64]),
    exponent=st.sampled_from([3, -2, 3.0, 4, 5, -3, 7, -101, 100, 2, -1, 0, 1]),
)
def test_integer_powers_of_negative_bases(torch_or_none, values, dtype, exponent):
    """x ** n for an integer n: x x x and 1 / (x x) for 3 and -2 (PyTorch's kernels, its
    bits), and +-(|x| ** n) otherwise, which is np.power's value for a negative base
    (np.power computes it there in a scalar loop, 50 times slower)."""
    x = np.array(values, dtype=dtype)
    with np.errstate(all="ignore"):
        got = (autodiff.tensor(x) ** exponent).data
        if exponent == 3:
            np.testing.assert_array_equal(got, x * x * x)
        elif exponent == -2:
            np.testing.assert_array_equal(got, 1 / (x * x))
        else:
            magnitude = np.power(np.abs(x), exponent)
            odd = float(exponent) % 2 == 1
            np.testing.assert_array_equal(got, np.copysign(magnitude, x) if odd else magnitude)
            # np.power's own scalar loop: the same function, each within a unit of pow
            reference = np.power(x, exponent)
            np.testing.assert_array_equal(np.isnan(got), np.isnan(reference))
            np.testing.assert_array_equal(np.signbit(got), np.signbit(reference))
            finite = np.isfinite(reference)
            ulps = np.abs(got[finite] - reference[finite]) / np.spacing(np.abs(reference[finite]))
            assert (ulps <= 2).all()
            infinite = np.isinf(reference)
            np.testing.assert_array_equal(got[infinite], reference[infinite])
    if torch_or_none is not None and exponent in (3, -2, 3.0, 2, -1):
        theirs = (torch_or_none.from_numpy(x) ** exponent).numpy()
        np.testing.assert_array_equal(got, theirs)
