"""The fast assembly of the gradient fields (:mod:`numerics.fast_gradient`) on separated instances.

An instance is separated when every pair other than a student with itself is at least ``SWITCH``
from 0 and pi (cosines within ``SWITCH_COS``).  There the single call assembles the field from the
angular cores of ``theory.codegen.fast_field_spec``; everywhere else it takes the general assembly
(``_gradient_near_kinks``: geometry with exact refinement, series branches, matching, boundary terms).
These tests check the split of the derivation, the routing, and that both assemblies compute the same
object (the mean field or the true gradient, as asked) to rounding on separated instances.
"""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import numerics
from numerics import fast_gradient, population
from numerics.compile import SWITCH, SWITCH_COS
from numerics.geometry import normalised_cosines
from tests.conftest import assert_close

PARTS = ("L", "J", "H")
FIELDS = ("mean", "true")


@pytest.mark.parametrize("part", PARTS)
@pytest.mark.parametrize("field", FIELDS)
def test_cores_times_constants_are_the_field_coefficients(part, field):
    """``alpha_const * n_b * A(theta)`` and ``beta_const * n_b * B(theta)`` equal the span coefficients
    ``alpha``, ``beta`` of the field objects (summed over ``L`` and ``J`` for ``H``), and ``half`` the
    sum of theirs: two generated expressions of one derivation, compared at 400 angles away from the
    kinks and norms over six decades, to 1e-13 relative (the closed forms' rounding)."""
    rng = np.random.default_rng(7)
    th = rng.uniform(SWITCH, np.pi - SWITCH, 400)
    na, nb = 10.0 ** rng.uniform(-3, 3, th.size), 10.0 ** rng.uniform(-3, 3, th.size)
    sn, cs = np.sin(th), np.cos(th)
    spec = fast_gradient.field_spec(part, field)
    objs = [population._vector_object(p, field) for p in (("L", "J") if part == "H" else (part,))]
    for key in ("alpha", "beta"):
        want = sum(obj[key].closed(na, nb, th) for obj in objs)
        got = spec[f"{key}_const"] * nb * spec[key].closed_sc(None, None, th, sn, cs)
        assert_close(got, np.broadcast_to(want, th.shape), rtol=1e-13, atol=1e-13 * nb,
                     what=f"{key} of the {field} field of {part}")
    assert spec["half"] == sum(obj["half"] for obj in objs)
    # the self pairs are evaluated at a right angle (cos 0, sin 1) and taken out: every core is finite there
    for key in ("alpha", "beta"):
        assert np.isfinite(spec[key].closed_sc(None, None, np.array([np.pi / 2]), np.ones(1), np.zeros(1))).all()


def _separated_instance(rng, K, Ks, d, scale):
    """A random instance whose every pair but the self pairs has ``|cos| <= cos(SWITCH + 0.02)``."""
    for _ in range(1000):
        W, Ws = scale * rng.standard_normal((K, d)), rng.standard_normal((Ks, d))
        Z = np.vstack([W, Ws])
        Z = Z / np.linalg.norm(Z, axis=1, keepdims=True)
        c = Z[:K] @ Z.T
        c[np.arange(K), np.arange(K)] = 0.0
        if np.abs(c).max() <= np.cos(SWITCH + 0.02):
            return W, Ws
    return None


def _general(W, Ws, part, field):
    """The general assembly on the same instance (its own cosines, clipped as it expects them)."""
    n2w, n2s = np.einsum("ij,ij->i", W, W), np.einsum("ij,ij->i", Ws, Ws)
    na, ns = np.sqrt(n2w)[:, None], np.sqrt(n2s)[:, None]
    return population._gradient_near_kinks(W, Ws, part, field, n2w, n2s, normalised_cosines(W, W, na, na.T),
                                           normalised_cosines(W, Ws, na, ns.T))


@settings(max_examples=30)
@given(K=st.integers(1, 8), Ks=st.integers(1, 8), d=st.integers(3, 40), seed=st.integers(0, 2**32 - 1),
       scale=st.sampled_from([1.0, 1e-3, 250.0]), part=st.sampled_from(PARTS), field=st.sampled_from(FIELDS))
def test_fast_and_general_assemblies_agree_on_separated_instances(K, Ks, d, seed, scale, part, field):
    """The single call on a separated instance takes the fast assembly (it never reaches the general one)
    and agrees with the general assembly to 1e-12 relative, 1e-13 of the largest entry absolute (both
    sum O(K + K*) terms of either sign; the cores, the constants and the angles are rounded differently)."""
    inst = _separated_instance(np.random.default_rng(seed), K, Ks, d, scale)
    if inst is None:
        return  # no separated instance at this shape (e.g. many rows in few dimensions)
    W, Ws = inst
    reference = _general(W, Ws, part, field)
    calls = []
    real = population._gradient_near_kinks
    with pytest.MonkeyPatch.context() as mp:  # one patch per example (hypothesis reuses function fixtures)
        mp.setattr(population, "_gradient_near_kinks", lambda *a: calls.append(1) or real(*a))
        got = numerics.gradient(W, Ws, part, field)
    assert not calls, "a separated instance left the fast assembly"
    assert_close(got, reference, rtol=1e-12, atol=1e-13 * np.abs(reference).max(), what=f"{part} {field}")


def test_fast_assembly_at_the_issue_size_agrees_with_the_general_one():
    """K = K* = 200, d = 1000 (the benchmark's instance): both assemblies, every part and field, to 1e-12
    relative of the largest entry (sums of 400 terms)."""
    rng = np.random.default_rng(2)
    W, Ws = rng.standard_normal((200, 1000)), rng.standard_normal((200, 1000))
    for part in PARTS:
        for field in FIELDS:
            reference = _general(W, Ws, part, field)
            assert_close(numerics.gradient(W, Ws, part, field), reference, rtol=0,
                         atol=1e-12 * np.abs(reference).max(), what=f"{part} {field}")


def _at_angle(angle, d=4):
    """Student 0 at ``angle`` from teacher 0; student 1 and teacher 1 far from everything."""
    Ws = np.array([[1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0]])[:, :d]
    W = np.array([[np.cos(angle), np.sin(angle), 0.0, 0.0], [0.3, -0.4, 1.0, 0.45]])[:, :d]
    return W, Ws


@pytest.mark.parametrize("angle, expected", [
    (SWITCH + 1e-6, True), (np.pi - SWITCH - 1e-6, True), (1.0, True),  # at least SWITCH away, with room
    (SWITCH - 1e-9, False), (SWITCH, False), (np.pi - SWITCH, False),  # at the bound: no room, not separated
    (1e-3, False), (0.0, False), (np.pi, False),
])
def test_separated_is_decided_by_the_cosines_with_room(angle, expected):
    """``separated``: every cosine but the self pairs' within ``SWITCH_COS = cos(SWITCH) - 1e-9``: an angle
    1e-6 past ``SWITCH`` passes, one within ~1e-8 rad of it (or nearer a kink) does not."""
    W, Ws = _at_angle(angle)
    c, n = fast_gradient.cosines(W[None], Ws[None], np.einsum("ij,ij->i", W, W)[None],
                                 np.einsum("ij,ij->i", Ws, Ws)[None])
    assert bool(fast_gradient.separated(c)[0]) is expected
    assert np.all(c[0, [0, 1], [0, 1]] == 0.0)  # the self pairs are out of the check's way
    assert SWITCH_COS < np.cos(SWITCH)


def test_two_students_close_to_each_other_are_not_separated():
    W = np.array([[1.0, 0.0, 0.0], [np.cos(0.05), np.sin(0.05), 0.0]])
    Ws = np.array([[0.0, 0.0, 1.0]])
    c, _ = fast_gradient.cosines(W[None], Ws[None], np.einsum("ij,ij->i", W, W)[None],
                                 np.einsum("ij,ij->i", Ws, Ws)[None])
    assert not fast_gradient.separated(c)[0]


@pytest.mark.parametrize("entries", [1, 5, 17, 1 << 18])
def test_row_blocks_change_no_bit(entries):
    """The fast assembly's passes are elementwise or along rows: blocks of 1 row, of a few rows (uneven)
    and one block give the same bits."""
    rng = np.random.default_rng(11)
    W, Ws = _separated_instance(rng, 6, 5, 30, 1.0)
    saved = population._FAST_BLOCK_ENTRIES
    reference = {(p, f): numerics.gradient(W, Ws, p, f) for p in PARTS for f in FIELDS}
    try:
        population._FAST_BLOCK_ENTRIES = entries
        for (p, f), ref in reference.items():
            assert numerics.gradient(W, Ws, p, f).tobytes() == ref.tobytes(), (p, f, entries)
    finally:
        population._FAST_BLOCK_ENTRIES = saved


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), N=st.integers(0, 6), K=st.integers(1, 4), M=st.integers(1, 6),
       outliers=st.lists(st.sampled_from(["edge", "beyond", "-beyond", "nan"]), max_size=3))
def test_separated_is_the_per_instance_range_check(seed, N, K, M, outliers):
    """:func:`fast_gradient.separated` (a whole-stack check first, per instance only when it fails) against
    a plain loop over the instances: every cosine in ``[-SWITCH_COS, SWITCH_COS]``, NaN failing; cosines
    exactly at the edge pass, one ulp beyond fails."""
    rng = np.random.default_rng(seed)
    c = rng.uniform(-SWITCH_COS, SWITCH_COS, (N, K, M))
    value = {"edge": SWITCH_COS, "beyond": np.nextafter(SWITCH_COS, 2.0),
             "-beyond": -np.nextafter(SWITCH_COS, 2.0), "nan": np.nan}
    for kind in outliers if N else []:
        c[rng.integers(N), rng.integers(K), rng.integers(M)] = value[kind]
    want = [all(-SWITCH_COS <= x <= SWITCH_COS for x in inst.ravel()) for inst in c]
    assert fast_gradient.separated(c).tolist() == want
