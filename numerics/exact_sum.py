"""Correctly rounded sums of many rows at once: :func:`fsum_rows` equals ``math.fsum`` row by row, bit for bit.

``math.fsum`` rounds the exact sum of its arguments once (to nearest, ties to even), so its result does not
depend on their order; the population losses add their pair terms with it.  It runs in Python, one row at a
time.  :func:`fsum_rows` gets the same numbers for a batch of rows with a few whole-array passes:

1. An error-free pairwise tree: at each level the two halves of every row are added with Knuth's TwoSum,
   ``s = fl(a + b)``, ``e = a + b - s`` exactly.  The exact row sum is then ``hi + sum(errors)`` exactly.
2. ``lo = fl(sum(errors))`` in floating point, with a rigorous bound ``|sum(errors) - lo| <= bound``
   (``2 n eps sum|errors|``, twice the textbook ``gamma_n``, plus ``n`` times the smallest subnormal for
   underflow).
3. ``r = fl(hi + lo)`` and, by TwoSum again, ``t = hi + lo - r`` exactly; so the exact sum lies in
   ``r + [t - bound, t + bound]``.  Where that interval lies strictly inside the half-gaps to ``r``'s two
   neighbours, ``r`` is the correctly rounded sum: ``math.fsum``'s result.  The comparisons are made with
   ``2 bound`` and half-gaps shrunk by ``2**-50`` relative, so their own rounding cannot certify a row that
   is not.

A row that is not certified (its sum within ~``bound`` of a midpoint between two floats, a zero sum, whose
sign ``math.fsum`` decides by its own rules, an overflow, a non-finite entry) is summed by ``math.fsum``
itself.  So every result is ``math.fsum``'s, by proof or by call (``tests/test_exact_sum.py`` compares the
two on cancellation-heavy, tie-making, subnormal and random rows).
"""
from __future__ import annotations

import math

import numpy as np

_EPS = np.finfo(np.float64).eps
_TINY = 2.0**-1074
_SHRINK = 1.0 - 2.0**-50


def fsum_rows(x) -> np.ndarray:
    """``[math.fsum(row) for row in x]`` as a float64 array, for a 2-D array ``x`` (bit for bit)."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"fsum_rows needs a 2-D array of rows; got shape {x.shape}")
    if x.shape[1] == 0:
        return np.zeros(len(x))
    with np.errstate(over="ignore", invalid="ignore"):
        hi, errors = _two_sum_tree(x)
        r, ok = _certified(hi, errors)
    for i in np.flatnonzero(~ok):
        r[i] = math.fsum(x[i].tolist())
    return r


def _two_sum(a, b) -> tuple:
    """``(s, e)`` with ``s = fl(a + b)`` and ``a + b = s + e`` exactly (Knuth; no overflow assumed)."""
    s = a + b
    bb = s - a
    return s, (a - (s - bb)) + (b - bb)


def _two_sum_tree(x) -> tuple:
    """``(hi, errors)``: row sums ``hi`` such that ``hi + (sum of the rows of errors)`` is each row's exact sum."""
    s, errors = x, []
    while s.shape[1] > 1:
        if s.shape[1] % 2:  # a zero column: exact, and it keeps the halves contiguous
            s = np.concatenate([s, np.zeros((len(s), 1))], axis=1)
        half = s.shape[1] // 2
        s, e = _two_sum(s[:, :half], s[:, half:])
        errors.append(e)
    return s[:, 0], (np.concatenate(errors, axis=1) if errors else np.zeros((len(s), 0)))


def _certified(hi, errors) -> tuple:
    """``(r, ok)``: ``r = fl(hi + fl(sum errors))`` per row, and whether ``r`` is provably the correctly
    rounded exact sum (see the module's docstring)."""
    n = errors.shape[1]
    lo = errors.sum(axis=1)
    bound = 2.0 * n * _EPS * np.abs(errors).sum(axis=1) + n * _TINY
    r, t = _two_sum(hi, lo)
    up = (np.nextafter(r, np.inf) - r) * 0.5 * _SHRINK
    down = (r - np.nextafter(r, -np.inf)) * 0.5 * _SHRINK
    # at +-max the gap above is infinite while fsum raises past the overflow threshold: not certified there
    ok = (np.abs(r) < np.finfo(np.float64).max) & np.isfinite(t) & np.isfinite(bound) & (r != 0)
    ok &= (t + 2.0 * bound < up) & (t - 2.0 * bound > -down)
    return r, ok
