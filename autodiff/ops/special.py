"""The error function on arrays, with NumPy alone: erf(x) = 2/sqrt(pi) int_0^x exp(-t^2) dt.

NumPy has no erf, and SciPy is not a dependency; ``math.erf`` one element at
a time took 1.06 ms for 16,384 float64 numbers (PyTorch's erf: 53 us).  This
computes it on the whole array, in float64, in three ranges of |x|:

- |x| < 0.84375: the Taylor series, erf(x) = x + x (2/sqrt(pi) - 1 + sum_n>0 c_n x^2n),
  c_n = 2/sqrt(pi) (-1)^n / (n! (2n + 1)), 16 terms (the next is below 1e-17
  of the sum).  Written as x + x*(...) so that the leading x is exact.
- 0.84375 <= |x| < 6: erf(x) = 1 - exp(-x^2) R(x), where R(x) = exp(x^2) erfc(x) varies
  slowly (it tends to 1 / (sqrt(pi) x)): a polynomial of degree 24 in u,
  which runs linearly in 1/x.  Its coefficients are the least-squares
  Chebyshev fit to ``math.erfc`` at 2,000 Chebyshev points, in powers of u
  (``tests/test_special.py`` makes them again).
- |x| >= 6: erfc(x) < 2e-17, so erf(x) is 1 to the last bit.

The result is odd (erf(-x) = -erf(x), -0.0 kept), NaN stays NaN and erf(+-inf)
is +-1.  Checked against ``math.erf`` on three million points: at most 2 units in
the last place in float64, and float32 results (rounded from float64) equal
``math.erf``'s rounded to float32.  16,384 float64 numbers of a GELU layer
(x / sqrt 2, x standard normal) take 0.17-0.18 ms on one core.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

# Where the Taylor series stops and R's polynomial starts, and where erf is 1
_TAYLOR_BELOW = 0.84375
_ONE_FROM = 6.0


def _taylor_coefficients(terms: int) -> tuple:
    """c_0 - 1, c_1, ..., c_{terms-1} of erf(x) / x = sum_n c_n x^2n, each rounded once."""
    two_over_root_pi = 2 / math.sqrt(math.pi)
    coefficients = [
        float(Fraction((-1) ** n, math.factorial(n) * (2 * n + 1)) * Fraction(two_over_root_pi))
        for n in range(terms)
    ]
    coefficients[0] = float(Fraction(two_over_root_pi) - 1)
    return tuple(coefficients)


_TAYLOR = _taylor_coefficients(16)

# R(x) = exp(x^2) erfc(x) on [0.84375, 6) as a polynomial of degree 24 in u, where u
# runs linearly in 1/x from -1 at x = 6 to 1 at x = 0.84375: the least-squares
# Chebyshev fit, written in powers of u (its largest coefficient is 0.32, and Horner's
# rule on it measured as accurate as Clenshaw's on the series); tests/test_special.py
# makes it again
_SCALED_ERFC = (
    0.3249799716488072,
    0.18591853726616353,
    -0.04289636083250682,
    0.0062616090437226605,
    0.0008690012624284364,
    -0.0012040999495723022,
    0.0006043229708257074,
    -0.0002032571469213616,
    3.579573104439084e-05,
    1.187698993705501e-05,
    -1.5993645864318246e-05,
    9.971411438525627e-06,
    -4.516541676638587e-06,
    1.479945095193712e-06,
    -2.0031297285836424e-07,
    -2.105224958398536e-07,
    2.430364287248014e-07,
    -1.2085411704035424e-07,
    3.629198852434278e-08,
    -4.248603878368482e-08,
    3.523255076972366e-08,
    4.519117013440992e-09,
    -1.5347710496512214e-08,
    3.8968569866242165e-09,
    4.2038131249040523e-10,
)
# u = 2/x * _U_SCALE - _U_SHIFT
_U_SCALE = 1 / (1 / _TAYLOR_BELOW - 1 / _ONE_FROM)
_U_SHIFT = (1 / _TAYLOR_BELOW + 1 / _ONE_FROM) * _U_SCALE


def erf(x: np.ndarray) -> np.ndarray:
    """erf(x) elementwise, a new float64 array of x's shape (x: any real array).

    >>> erf(np.array([0.0, 0.5, -1.0, 3.0, np.inf]))
    array([ 0.        ,  0.52049988, -0.84270079,  0.99997791,  1.        ])
    """
    x = np.asarray(x, dtype=np.float64)
    flat = x.reshape(-1)
    with np.errstate(all="ignore"):  # far from 0 the series overflows; those are replaced
        result = _taylor(flat)
        magnitude = np.abs(flat)
        far = np.flatnonzero(magnitude >= _TAYLOR_BELOW)  # NaN is not: it stays NaN
        if far.size:
            result[far] = np.copysign(_one_minus_erfc(magnitude[far]), flat[far])
    return result.reshape(x.shape)


def _taylor(x):
    """x + x (c_0 - 1 + c_1 z + ... ), z = x^2, by Horner's rule, in place."""
    z = x * x
    total = np.full_like(x, _TAYLOR[-1])
    for coefficient in _TAYLOR[-2::-1]:
        total *= z
        total += coefficient
    total *= x
    total += x
    return total


def _one_minus_erfc(a):
    """erf(a) = 1 - exp(-a^2) R(a) for a >= 0.84375 (1 from 6 on, and for inf)."""
    u = 2 / a
    u *= _U_SCALE
    u -= _U_SHIFT
    scaled = np.full_like(a, _SCALED_ERFC[-1])
    for coefficient in _SCALED_ERFC[-2::-1]:
        scaled *= u
        scaled += coefficient
    result = np.exp(-(a * a))
    result *= scaled
    np.subtract(1, result, out=result)
    result[a >= _ONE_FROM] = 1
    return result
