"""``numerics.gradient(.., "L", ..)`` against Tian (2017)'s analytical population gradient.

:mod:`numerics.tian` is typed in from the paper and shares no code with :mod:`theory` or the
rest of :mod:`numerics`, so agreement is an independent check of the L gradient (both fields).

Tolerance: both sides are float64 closed forms, a signed sum of ``K + K*`` pair terms, each of
size at most ``|z_q| (1/2 + 1/(2 pi))`` and computed to a few ulps; so the absolute error is a
few ulps of ``scale = sum_q |z_q|`` (the gradient itself may be small by cancellation between
terms, so it is not the right yardstick).  ``1e-12 * scale`` is ~4500 ulps of that: generous
for the rounding, yet nine orders of magnitude below any formula error (which is O(scale)).
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import numerics
from numerics.tian import tian_gradient_loop, tian_gradient_vectorised, tian_pair_term

SIZES = [1, 2, 3, 5]
DIMS = [2, 3, 7]
RTOL = 1e-12  # relative to sum_q |z_q|; see the module docstring


def _scale(W, W_star):
    return float(np.linalg.norm(W, axis=1).sum() + np.linalg.norm(W_star, axis=1).sum())


def _random_rows(K, K_star, d, seed):
    rng = np.random.default_rng(seed)
    W = rng.standard_normal((K, d)) * rng.uniform(0.2, 3.0, size=(K, 1))
    W_star = rng.standard_normal((K_star, d)) * rng.uniform(0.2, 3.0, size=(K_star, 1))
    return W, W_star


@pytest.mark.parametrize("d", DIMS)
@pytest.mark.parametrize("K_star", SIZES)
@pytest.mark.parametrize("K", SIZES)
def test_numerics_gradient_L_matches_tian(K, K_star, d):
    W, W_star = _random_rows(K, K_star, d, seed=1000 * K + 100 * K_star + d)
    loop = tian_gradient_loop(W, W_star)
    vec = tian_gradient_vectorised(W, W_star)
    tol = RTOL * _scale(W, W_star)
    assert loop.shape == vec.shape == (K, d)
    # the two Tian implementations: same formula, different summation order.
    assert np.abs(loop - vec).max() <= tol
    for field in ("mean", "true"):
        got = numerics.gradient(W, W_star, "L", field)
        assert got.shape == (K, d)
        assert np.abs(got - loop).max() <= tol, (field, np.abs(got - loop).max(), tol)
        assert np.abs(got - vec).max() <= tol, (field, np.abs(got - vec).max(), tol)


@given(
    K=st.sampled_from(SIZES),
    K_star=st.sampled_from(SIZES),
    d=st.sampled_from(DIMS),
    seed=st.integers(0, 2**32 - 1),
)
def test_numerics_gradient_L_matches_tian_hypothesis(K, K_star, d, seed):
    W, W_star = _random_rows(K, K_star, d, seed)
    ref = tian_gradient_vectorised(W, W_star)
    tol = RTOL * _scale(W, W_star)
    for field in ("mean", "true"):
        assert np.abs(numerics.gradient(W, W_star, "L", field) - ref).max() <= tol


# --------------------------------------------------------------- sanity of the reference itself
def test_tian_gradient_vanishes_at_teacher():
    """At ``W = W*`` (any row order) every pair term cancels: the global minimum."""
    rng = np.random.default_rng(5)
    W_star = rng.standard_normal((3, 4))
    W = W_star[[2, 0, 1]]
    # the cancelling terms are identical float computations up to summation order.
    for fn in (tian_gradient_loop, tian_gradient_vectorised):
        assert np.abs(fn(W, W_star)).max() <= 1e-14 * _scale(W, W_star)


def test_tian_pair_term_limits():
    """``f(w, w) = w/2`` (theta = 0) and ``f(w, -w) = 0`` (theta = pi): the formula's end points."""
    w = np.array([0.3, -1.2, 2.0])
    # theta is computed as exactly 0 / pi here (|w^ -/+ w^| = 0), so only a few ulps of |w|.
    assert np.allclose(tian_pair_term(w, w), w / 2, rtol=0, atol=1e-15 * np.linalg.norm(w))
    assert np.allclose(tian_pair_term(w, -w), 0.0, rtol=0, atol=1e-15 * np.linalg.norm(w))


def test_tian_vectorised_matches_loop_near_degenerate():
    """The stable angle keeps both implementations together at tiny angles too."""
    rng = np.random.default_rng(9)
    W = rng.standard_normal((2, 5))
    W_star = W + 1e-9 * rng.standard_normal((2, 5))
    tol = RTOL * _scale(W, W_star)  # as in the module docstring
    assert np.abs(tian_gradient_loop(W, W_star) - tian_gradient_vectorised(W, W_star)).max() <= tol
    assert np.abs(numerics.gradient(W, W_star, "L", "mean") - tian_gradient_loop(W, W_star)).max() <= tol
