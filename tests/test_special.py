"""The error function on arrays (autodiff/ops/special.py) against math.erf, and its threads."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.polynomial import chebyshev

import autodiff
import nn.functional as F  # noqa: N812
from autodiff.ops import special

_math_erf = np.frompyfunc(math.erf, 1, 1)


def _reference(x):
    return _math_erf(x).astype(np.float64)


def _ulps(got, expected):
    """|got - expected| in units of expected's last place (0 where both are NaN)."""
    both_nan = np.isnan(got) & np.isnan(expected)
    difference = np.abs(np.where(both_nan, 0.0, got - expected))
    return difference / np.spacing(np.abs(np.where(both_nan, 1.0, expected)))


def _edges():
    """0, subnormals, both sides of the ranges' edges, where erf rounds to 1, inf, NaN."""
    points = [0.0, 5e-324, 1e-310, 1e-300, 1e-8, 0.5, 1.0, 2.0, 5.9, 5.93, 1e300, np.inf, np.nan]
    for edge in (special._TAYLOR_BELOW, special._ONE_FROM):
        points += [np.nextafter(edge, 0), edge, np.nextafter(edge, np.inf)]
    points = np.array(points)
    return np.concatenate([points, -points])


@pytest.mark.parametrize(
    "name",
    ["grid", "normal", "edges"],
)
def test_erf_is_within_two_units_in_the_last_place_of_math_erf(name):
    x = {
        "grid": lambda: np.linspace(-7, 7, 280_001),
        "normal": lambda: np.random.default_rng(0).standard_normal(200_000) * 2,
        "edges": _edges,
    }[name]()
    got, expected = special.erf(x), _reference(x)
    assert _ulps(got, expected).max() <= 2
    assert (np.signbit(got) == np.signbit(expected)).all()  # erf(-0.0) is -0.0
    assert np.array_equal(np.isnan(got), np.isnan(expected))


@settings(max_examples=300)
@given(st.lists(st.floats(allow_subnormal=True), min_size=1, max_size=20))
def test_erf_on_any_float64(values):
    x = np.array(values, dtype=np.float64)
    assert _ulps(special.erf(x), _reference(x)).max() <= 2


@settings(max_examples=300)
@given(st.lists(st.floats(width=32, allow_subnormal=True), min_size=1, max_size=20))
def test_erf_in_float32_is_math_erf_rounded_to_float32(values):
    x = np.array(values, dtype=np.float32)
    got = F.erf(autodiff.tensor(x)).data
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, _reference(x).astype(np.float32))


def test_erf_keeps_the_shape_and_layout_it_is_given():
    x = np.arange(12.0).reshape(3, 4).T / 4  # a transposed view
    np.testing.assert_array_equal(special.erf(x), _reference(x))
    assert special.erf(np.float64(0.5)).shape == ()
    assert special.erf(np.zeros((0, 3))).shape == (0, 3)


def test_erf_of_complex_numbers_is_refused():
    with pytest.raises(TypeError, match="erf: expected real numbers, got complex128"):
        F.erf(autodiff.tensor(np.array([1 + 1j])))


def _scaled_erfc(a: float) -> float:
    """exp(a^2) erfc(a), with a^2 taken exactly (a float's square is a sum of two floats)."""
    square = a * a
    rest = float(Fraction(a) ** 2 - Fraction(square))
    return math.erfc(a) * math.exp(square) * (1 + rest)


def test_the_scaled_erfc_polynomial_is_the_least_squares_chebyshev_fit_it_says_it_is():
    """Make special._SCALED_ERFC again: the degree-24 least-squares Chebyshev fit of
    exp(x^2) erfc(x) at 2,000 Chebyshev points in u (linear in 1/x), in powers of u.
    The fit follows math.erfc's rounding (the last coefficients are that noise), and
    LAPACK may round it differently, so the two are compared by what erf takes from
    them, exp(-x^2) R(x): within a few units in erf's last place (1.1e-16 near 1)."""
    points = 2000
    u = np.cos(np.pi * (np.arange(points) + 0.5) / points)
    a = 2 * special._U_SCALE / (u + special._U_SHIFT)
    coefficients = chebyshev.chebfit(u, [_scaled_erfc(float(v)) for v in a], 24)
    powers = chebyshev.cheb2poly(coefficients)
    assert len(powers) == len(special._SCALED_ERFC)
    grid = np.linspace(-1, 1, 10_001)
    x = 2 * special._U_SCALE / (grid + special._U_SHIFT)
    ours = np.polynomial.polynomial.polyval(grid, special._SCALED_ERFC)
    again = np.polynomial.polynomial.polyval(grid, powers)
    assert np.abs((ours - again) * np.exp(-(x * x))).max() < 4e-16


def test_the_taylor_series_stops_where_its_next_term_is_negligible():
    """16 terms below 0.84375: the 17th is below 1e-17 of erf(x)/x there."""
    z = special._TAYLOR_BELOW**2
    next_term = 2 / math.sqrt(math.pi) * z**16 / (math.factorial(16) * 33)
    assert len(special._TAYLOR) == 16
    assert next_term < 1e-17 * math.erf(special._TAYLOR_BELOW) / special._TAYLOR_BELOW


@pytest.mark.parametrize("count", [2, 3])
def test_large_erf_is_split_over_threads_with_the_same_bits(count, restore_threads, monkeypatch):
    pieces = []
    real = special.erf

    def erf_of_a_piece(x):
        pieces.append(x.size)
        return real(x)

    from autodiff.ops import elementwise

    monkeypatch.setattr(elementwise, "_erf", erf_of_a_piece)
    x = np.random.default_rng(1).standard_normal((600, 1000)).astype(np.float32)
    autodiff.set_num_threads(1)
    one = F.erf(autodiff.tensor(x)).data
    assert pieces == [x.size]
    pieces.clear()
    autodiff.set_num_threads(count)
    several = F.erf(autodiff.tensor(x)).data
    assert len(pieces) == count and sum(pieces) == x.size
    np.testing.assert_array_equal(several, one)
