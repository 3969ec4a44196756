"""``numerics.exact_sum.fsum_rows``: every row's sum is ``math.fsum``'s, bit for bit.

Bound established: BIT FOR BIT, on rows built to be hard (cancellation over hundreds of binades, exact
midpoints between two floats, subnormals, zero sums, overflow, non-finite entries) and on random rows; and
the vectorised certificate, not the ``math.fsum`` fallback, decides almost every random row.
"""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from numerics import exact_sum
from numerics.exact_sum import fsum_rows


def fsum_or_error(row):
    try:
        return math.fsum(row.tolist())
    except (OverflowError, ValueError) as exc:
        return type(exc)


def assert_rows(x):
    expected = [fsum_or_error(row) for row in x]
    if any(isinstance(e, type) for e in expected):
        with pytest.raises((OverflowError, ValueError)):
            fsum_rows(x)
        return
    got = fsum_rows(x)
    assert got.dtype == np.float64 and got.shape == (len(x),)
    assert got.tobytes() == np.array(expected).tobytes(), (got, expected)


finite = st.floats(allow_nan=False, allow_infinity=False, width=64)


@settings(max_examples=300)
@given(hnp.arrays(np.float64, hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=40), elements=finite))
def test_any_finite_rows(x):
    assert_rows(x)


@settings(max_examples=200)
@given(st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=60), st.integers(-300, 300), st.integers(0, 2**32 - 1))
def test_cancelling_rows(values, shift, seed):
    """Each value with its negative, shuffled, plus a few small remainders: the exact sum is tiny against
    the terms (the case where naive and pairwise sums lose every digit)."""
    rng = np.random.default_rng(seed)
    big = np.ldexp(np.array(values), shift)
    small = rng.standard_normal(3) * np.ldexp(1.0, shift - 60)
    row = np.concatenate([big, -big, small])
    rng.shuffle(row)
    assert_rows(np.stack([row, row[::-1], np.roll(row, 1)]))


def test_midpoints_ties_zeros_subnormals_and_limits():
    rows = [
        [1.0, 2.0**-53],  # an exact midpoint: ties to even, down
        [1.0 + 2.0**-52, 2.0**-53],  # a midpoint rounding up to even
        [1.0, 2.0**-53, 2.0**-106],  # just past the midpoint
        [1.0, -1.0],  # exactly zero
        [-0.0, -0.0],  # fsum's sign of zero
        [0.0],
        [5e-324, 5e-324, -5e-324],  # subnormals
        [2.0**-1022, -5e-324],
        [1.7976931348623157e308, 1e292],  # rounds to the largest float
        [1.7976931348623157e308, 1.7976931348623157e308, -1.7976931348623157e308],  # intermediate overflow
        [1e308, 1e308],  # overflow
    ]
    for row in rows:
        assert_rows(np.array([row]))
    assert_rows(np.array([[np.inf, 1.0], [np.nan, 1.0]])[:1])
    assert_rows(np.array([[np.nan, 1.0]]))
    assert_rows(np.array([[np.inf, -np.inf]]))


def test_random_rows_are_certified_not_summed_one_by_one(monkeypatch):
    """1000 rows of 400 random terms of mixed size and sign: at most 1% leave the vectorised path."""
    rng = np.random.default_rng(4)
    x = rng.standard_normal((1000, 400)) * np.exp(rng.uniform(-20, 20, (1000, 400)))
    calls = []
    real = math.fsum
    monkeypatch.setattr(exact_sum.math, "fsum", lambda v: calls.append(1) or real(v))
    got = fsum_rows(x)
    monkeypatch.undo()
    assert got.tobytes() == np.array([math.fsum(r.tolist()) for r in x]).tobytes()
    assert len(calls) <= 10


def test_shapes():
    assert fsum_rows(np.zeros((3, 0))).tolist() == [0.0, 0.0, 0.0]
    assert fsum_rows(np.zeros((0, 4))).shape == (0,)
    with pytest.raises(ValueError, match="2-D"):
        fsum_rows(np.ones(3))
