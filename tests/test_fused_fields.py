"""numerics.fused_fields: the landscape's three descent fields as one product with Z = [W; W*], against the reference
(numerics.gradient, numerics.flows.batched_boundary_terms, numerics.loss), near and far from kinks."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import numerics
from numerics import fused_fields as FF
from numerics.flows import batched_boundary_terms

EPS = np.finfo(float).eps


def _instances(seed: int, k: int, extra: int, B: int = 12) -> tuple:
    """Random students (rows N(0, I/k)) and, mixed in, students 1e-9 .. 1e-3 from the teacher I_k and students with a
    row on a teacher ray (the kinks a descent meets)."""
    rng = np.random.default_rng(seed)
    Ws = np.eye(k)
    W = rng.standard_normal((B, k + extra, k)) / np.sqrt(k)
    for b, scale in enumerate((1e-9, 1e-6, 1e-3)):
        W[b, :k] = Ws + scale * rng.standard_normal((k, k))
    W[3, 0] = 0.7 * Ws[1]
    W[4, 0] = -1.3 * Ws[0]
    return W, Ws


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**31), k=st.integers(2, 7), extra=st.integers(0, 2))
def test_mean_fields_equal_the_reference_mean_fields(seed, k, extra):
    """Absolute agreement within 64 eps of the largest |z_q| (what a descent step can see; the module docstring)."""
    W, Ws = _instances(seed, k, extra)
    scale = max(np.abs(W).max(), 1.0)
    for flow, part in (("L", "L"), ("H-mean", "H")):
        ref = np.stack([numerics.gradient(w, Ws, part, "mean") for w in W])
        assert np.abs(FF.field(W, Ws, flow) - ref).max() <= 64 * EPS * scale * k, flow


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**31), k=st.integers(2, 6), extra=st.integers(0, 2))
def test_the_sliding_true_gradient_of_H_equals_the_reference(seed, k, extra):
    """mean field + the reference boundary terms with each locked row's own pair left out, on instances whose other
    pairs are at least 1e-3 rad from parallel (the boundary term carries eps / sin(theta) in any implementation)."""
    W, Ws = _instances(seed, k, extra)
    W = W[3:]  # no instance within 1e-3 of the teacher; rows on teacher rays in the first two
    K = W.shape[1]
    locks = np.full((len(W), K), -1)
    locks[0, 0], locks[1, 0] = 1, 0
    skip = np.zeros((len(W), K, K + k), dtype=bool)
    skip[0, 0, K + 1] = skip[1, 0, K] = True
    ref = numerics.gradient(W, Ws, "H", "mean") + batched_boundary_terms(W, Ws, skip)
    assert np.abs(FF.field(W, Ws, "H-true", locks) - ref).max() <= 1e-12 * max(np.abs(ref).max(), 1.0)


def test_the_true_gradient_of_H_equals_numerics_gradient_true_away_from_kinks():
    rng = np.random.default_rng(11)
    W, Ws = rng.standard_normal((5, 4, 3)), rng.standard_normal((3, 3))
    ref = np.stack([numerics.gradient(w, Ws, "H", "true") for w in W])
    assert np.abs(FF.field(W, Ws, "H-true") - ref).max() <= 1e-13 * np.abs(ref).max()


def test_near_pairs_keep_the_boundary_term_accurate():
    """A row 1e-5 .. 1e-7 rad from a teacher ray: the boundary term against a long-double evaluation of its definition
    agrees within 100 eps / theta (the cancellation P Z would leave, eps / theta^2 here, is avoided)."""
    rng = np.random.default_rng(12)
    Ws = np.eye(4)
    for theta in (1e-5, 1e-7):
        W = (Ws + 0.3 * rng.standard_normal((4, 4)))[None]
        v = rng.standard_normal(4)
        v[0] = 0.0
        W[0, 0] = 1.2 * (np.cos(theta) * Ws[0] + np.sin(theta) * v / np.linalg.norm(v))
        got = FF.field(W, Ws, "H-true")[0] - FF.field(W, Ws, "H-mean")[0]
        assert np.abs(got - _boundary_long_double(W[0], Ws)).max() <= 100 * EPS / theta


def _boundary_long_double(W, Ws):
    L = np.longdouble
    Z, s = np.concatenate([W, Ws]).astype(L), np.array([1] * len(W) + [-1] * len(Ws), dtype=L)
    out = np.zeros(W.shape, dtype=L)
    for i, w in enumerate(W.astype(L)):
        a = w / np.sqrt((w * w).sum())
        for q, z in enumerate(Z):
            if q != i:
                u = z / np.sqrt((z * z).sum())
                c = (a * u).sum()
                e = u - c * a
                out[i] += s[q] * np.sqrt((z * z).sum()) * c / (2 * L(np.pi)) * e / np.sqrt((e * e).sum())
    return out.astype(float)


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**31), k=st.integers(2, 7), extra=st.integers(0, 2))
def test_the_value_is_the_population_L(seed, k, extra):
    W, Ws = _instances(seed, k, extra)
    ref = np.array([numerics.loss(w, Ws, "L") for w in W])
    assert np.abs(FF.value(W, Ws) - ref).max() <= 1e-13 * max(float(numerics.loss(Ws * 1e-150, Ws, "L")), 1.0)


def test_a_zero_row_is_a_clear_error():
    W = np.ones((2, 3, 3))
    W[1, 2] = 0.0
    with pytest.raises(ValueError, match="zero"):
        FF.field(W, np.eye(3), "L")
