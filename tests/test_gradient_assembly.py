"""How ``numerics.gradient`` assembles the field (mean field and true gradient of L, J, H).

The assembly works on blocks of rows, skips the power-of-two rescaling when the row norms are
in a safe range (reading the caller's arrays in place), and handles students near a teacher
after a matching.  None of that may change the object computed: these tests check that the
result does not depend on the block size, on the rescaling, on the input's container, and that
the caller's arrays are never written.  Tolerances are a few units of rounding (float64).
"""
import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import numerics
from numerics import population
from tests.conftest import assert_close

PARTS = ("L", "J", "H")
FIELDS = ("mean", "true")


def _configuration(seed: int, K: int, Ks: int, d: int, near: int) -> tuple:
    """Random weights; the first ``near`` students sit within ~1e-3 rad of a teacher (matched pairs),
    and when ``near >= 2`` one more student sits near the same teacher as student 0 (a candidate
    pair that the one-to-one matching leaves unmatched)."""
    rng = np.random.default_rng(seed)
    Ws = rng.standard_normal((Ks, d))
    W = rng.standard_normal((K, d))
    for j in range(min(near, K, Ks)):
        W[j] = Ws[j] * (1 + 0.1 * rng.standard_normal()) + 1e-3 * np.linalg.norm(Ws[j]) * rng.standard_normal(d) / np.sqrt(d)
    if near >= 2 and K > near:
        W[near] = Ws[0] * 0.7 + 2e-3 * np.linalg.norm(Ws[0]) * rng.standard_normal(d) / np.sqrt(d)
    return W, Ws


configurations = st.tuples(
    st.integers(0, 10**6), st.integers(1, 7), st.integers(1, 6), st.integers(2, 9), st.integers(0, 3)
)


@given(cfg=configurations, part=st.sampled_from(PARTS), field=st.sampled_from(FIELDS))
def test_block_size_does_not_change_the_field(cfg, part, field):
    W, Ws = _configuration(*cfg)
    reference = numerics.gradient(W, Ws, part, field)
    saved = population._BLOCK_ENTRIES
    try:
        for entries in (1, 5, 17):  # one row per block, and blocks that split the rows unevenly
            population._BLOCK_ENTRIES = entries
            assert_close(numerics.gradient(W, Ws, part, field), reference, rtol=1e-13,
                         atol=1e-13 * np.abs(reference).max(), what=f"block of {entries} pairs")
    finally:
        population._BLOCK_ENTRIES = saved


@given(cfg=configurations, part=st.sampled_from(PARTS), field=st.sampled_from(FIELDS),
       exponent=st.sampled_from([-700, -480, 480, 700]))
def test_rescaled_and_unrescaled_paths_agree(cfg, part, field, exponent):
    """Scaling by 2**e is exact and the field is 1-homogeneous: |e| = 480 and 700 put the squared
    norms outside the safe range (the rescaled path); the unscaled inputs take the direct one."""
    W, Ws = _configuration(*cfg)
    direct = numerics.gradient(W, Ws, part, field)
    scaled = numerics.gradient(np.ldexp(W, exponent), np.ldexp(Ws, exponent), part, field)
    assert_close(np.ldexp(scaled, -exponent), direct, rtol=1e-14, atol=1e-14 * np.abs(direct).max(),
                 what=f"2**{exponent}")


@pytest.mark.parametrize("part", PARTS)
@pytest.mark.parametrize("field", FIELDS)
def test_the_callers_arrays_are_never_written(part, field):
    W, Ws = _configuration(4, 5, 4, 6, 3)
    W0, Ws0 = W.copy(), Ws.copy()
    numerics.gradient(W, Ws, part, field)
    numerics.gradient(W[:, ::1], Ws, part, field)
    assert np.array_equal(W, W0) and np.array_equal(Ws, Ws0)


@pytest.mark.parametrize("part", PARTS)
def test_container_does_not_change_the_field(part):
    """Lists and tensors take the validated-copy path, float64 arrays the direct one; so do
    non-contiguous views and float32 arrays (converted first)."""
    W, Ws = _configuration(8, 4, 3, 5, 2)
    ref = numerics.gradient(W, Ws, part, "mean")
    for a, b in ((W.tolist(), Ws.tolist()), (torch.tensor(W), torch.tensor(Ws)),
                 (np.asfortranarray(W), np.asfortranarray(Ws)),
                 (np.repeat(W, 2, axis=1)[:, ::2], np.repeat(Ws, 2, axis=1)[:, ::2])):
        assert_close(numerics.gradient(a, b, part, "mean"), ref, rtol=1e-14, atol=1e-15 * np.abs(ref).max(),
                     what=type(a).__name__)
    single = numerics.gradient(W.astype(np.float32), Ws.astype(np.float32), part, "mean")
    ref32 = numerics.gradient(W.astype(np.float32).astype(np.float64), Ws.astype(np.float32).astype(np.float64),
                              part, "mean")
    assert np.array_equal(single, ref32)


@pytest.mark.parametrize("K", [1, 3])
def test_matched_students_near_the_teacher(K):
    """Each student at relative distance ~1e-12 from its teacher: the field is O(1e-12) and, being
    linear in the offset up to O(offset^2), doubles when the offset doubles.

    One node (K = K* = 1): full relative accuracy (the matched rewrite; without it the O(1)
    terms would cancel and leave ~eps / 1e-12 ~ 1e-4 relative).  Several nodes: the cross terms
    between different pairs still cancel, so only absolute accuracy ~eps |W| is claimed
    (:mod:`numerics.population`); checked at 100 eps |W|.
    """
    rng = np.random.default_rng(3)
    # on a grid, so that W* + E and W* + 2E are exact floats (else their rounding, ~eps |W*|, is
    # itself a relative perturbation of ~1e-4 of an offset of 1e-12)
    Ws = rng.integers(-64, 64, size=(K, 6)) / 16.0
    E = np.ldexp(rng.integers(-8, 9, size=(K, 6)).astype(float), -43)  # ~1e-12
    eps = np.finfo(float).eps
    # the true gradients of J and H are not smooth at the teacher (a kink of the population J)
    for part, field in (("L", "mean"), ("J", "mean"), ("H", "mean"), ("L", "true")):
        g1 = numerics.gradient(Ws + E, Ws, part, field)
        g2 = numerics.gradient(Ws + 2 * E, Ws, part, field)
        if K == 1:
            assert_close(g2, 2 * g1, rtol=1e-8, atol=1e-8 * np.abs(g2).max(), what=f"{part}, {field}")
            assert np.abs(g1).max() > 1e-13
        else:
            assert_close(g2, 2 * g1, rtol=0.0, atol=100 * eps * np.abs(Ws).max(), what=f"{part}, {field}")
