"""The plain path of the population loss (``numerics.fast_loss``), which single and batched calls share.

Bound established: BIT FOR BIT.  On every instance it takes, the plain path gives the value of the general
path (``numerics.population._general_loss``: scaled copy, pair geometry, near-teacher matching, series
branches), which it replaced for those instances in single calls; every other instance is left to the
general path (``single`` returns ``None``), which names bad input.
"""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import numerics
import numerics.population as npop
from numerics import fast_loss
from numerics.compile import SWITCH

PARTS = ("L", "J", "H")


def bits(x: float) -> bytes:
    return np.float64(x).tobytes()


def general(W, Ws, part):
    value, k = npop._general_loss(W, Ws, part)
    return math.ldexp(value, -2 * k)


def separated(rng, K, Ks, d, margin=0.02):
    """An instance whose every pair of rows (other than a row with itself) is at least ``SWITCH + margin``
    from 0 and pi."""
    for _ in range(1000):
        W, Ws = rng.standard_normal((K, d)), rng.standard_normal((Ks, d))
        Z = np.vstack([W, Ws])
        Z = Z / np.linalg.norm(Z, axis=1, keepdims=True)
        c = np.clip(Z @ Z.T, -1, 1)
        np.fill_diagonal(c, 0.0)
        if np.abs(c).max() < np.cos(SWITCH + margin):
            return W, Ws
    pytest.skip("no separated instance drawn")


@settings(max_examples=60, deadline=None)
@given(K=st.integers(1, 5), Ks=st.integers(1, 5), d=st.integers(2, 12), seed=st.integers(0, 2**32 - 1),
       part=st.sampled_from(PARTS), scale=st.sampled_from([1.0, 1e-3, 37.5, 2.0**-300, 2.0**200]))
def test_plain_path_is_the_general_path_bit_for_bit(K, Ks, d, seed, part, scale):
    rng = np.random.default_rng(seed)
    W, Ws = separated(rng, K, Ks, d)
    W = W * scale
    assert fast_loss.single(W, Ws, part) is not None  # the instance is on the plain path
    assert bits(numerics.loss(W, Ws, part)) == bits(general(W, Ws, part))


@pytest.mark.parametrize("K,Ks,d", [(40, 30, 50), (1, 1, 2), (3, 8, 200)])
def test_larger_shapes_bit_for_bit(K, Ks, d):
    rng = np.random.default_rng(K * 1000 + d)
    W, Ws = separated(rng, K, Ks, d) if K * Ks < 100 else (rng.standard_normal((K, d)), rng.standard_normal((Ks, d)))
    for part in PARTS:
        assert fast_loss.single(W, Ws, part) is not None
        assert bits(numerics.loss(W, Ws, part)) == bits(general(W, Ws, part)), part


def test_dtypes_and_layouts_take_the_plain_path():
    """Integers, float32, byte-swapped and non-contiguous arrays: the plain path, the general path's bits."""
    rng = np.random.default_rng(3)
    W, Ws = separated(rng, 3, 2, 6)
    for Wc in ((W * 100).astype(np.int64), W.astype(np.float32), W.astype(">f8"), np.asfortranarray(W)):
        assert fast_loss.single(Wc, Ws, "H") is not None
        assert bits(numerics.loss(Wc, Ws, "H")) == bits(general(Wc, Ws, "H"))


def _near_teacher(rng):
    W, Ws = rng.standard_normal((3, 5)), rng.standard_normal((2, 5))
    W[0] = 1.3 * Ws[0] + 1e-6 * rng.standard_normal(5)
    return W, Ws


@pytest.mark.parametrize("case", ["near teacher", "anti-parallel", "row raised", "subnormal entry", "list",
                                  "zero row", "inf", "nan", "mismatched d", "one-dimensional"])
def test_other_instances_are_left_to_the_general_path(case):
    rng = np.random.default_rng(5)
    W, Ws = separated(rng, 3, 2, 5)
    if case == "near teacher":
        W, Ws = _near_teacher(rng)
    elif case == "anti-parallel":
        W[1] = -2.0 * Ws[1]
    elif case == "row raised":  # a row ~2**-460 of the largest: the exponent rule raises k
        W[0] *= 2.0**-460
    elif case == "subnormal entry":  # scaling down would push it into the subnormals
        W = W * 2.0**300
        W[0, 0] = 2.0**-800
    elif case == "list":
        W = W.tolist()
    elif case == "zero row":
        W[1] = 0.0
    elif case in ("inf", "nan"):
        W[0, 1] = np.inf if case == "inf" else np.nan
    elif case == "mismatched d":
        Ws = Ws[:, :4]
    elif case == "one-dimensional":
        W = W[0]
    assert fast_loss.single(W, Ws, "H") is None
    if case in ("zero row", "inf", "nan", "mismatched d"):
        with pytest.raises(ValueError):
            numerics.loss(W, Ws, "H")
    else:
        assert bits(numerics.loss(W, Ws, "H")) == bits(general(W, Ws, "H"))


@pytest.mark.parametrize("side", ["theta", "psi"])
def test_routing_at_switch(side):
    """Angles within 1e-6 of ``SWITCH`` (or ``pi - SWITCH``) on both sides: the plain path takes exactly the
    instances whose computed angle is at least ``SWITCH``, and either way the value is the general path's."""
    Ws = np.array([[1.3, 0.0, 0.0]])
    taken = []
    for offset in (-1e-6, -1e-12, -1e-15, 0.0, 1e-15, 1e-12, 1e-6):
        a = SWITCH + offset if side == "theta" else np.pi - SWITCH - offset
        W = np.array([[0.7 * np.cos(a), 0.7 * np.sin(a), 0.0]])
        taken.append(fast_loss.single(W, Ws, "L") is not None)
        for part in PARTS:
            assert bits(numerics.loss(W, Ws, part)) == bits(general(W, Ws, part)), (side, offset, part)
    assert taken[0] is False and taken[-1] is True and taken == sorted(taken)


def test_overflow_is_named_as_before():
    W, Ws = separated(np.random.default_rng(9), 2, 2, 4)
    with pytest.raises(ValueError, match="float64 range"):
        numerics.loss(W * 2.0**520, Ws, "L")
