"""Kinks on the torch backend (:mod:`numerics.backend`): exactly (anti-)parallel rows are refused where the
object does not exist, as on NumPy, even when the backend's rounding gives them a tiny non-zero angle.

The backend forms angles from ``a - b`` without the NumPy path's exact refinement, so a pair ``b = 2 a``
(exactly parallel: scaling by a power of two is exact) usually comes out ``~1e-16`` rad from parallel,
not at 0.  :func:`numerics.backend.unresolved_kinks` refuses every pair within the rounding bound
``4 (d + 5) eps ||a| - |b|| / max(|a|, |b|)`` of a kink.  Checked here:

* the bound covers the computed angle of exactly (anti-)parallel pairs over scales ``2^-20 .. 2^20``,
  ``d`` up to 64, float64 and float32 (were the bound too tight, some of these would slip through);
* every object that does not exist at the kink (true gradients of ``J`` and ``H``; true and mean
  Hessians of ``J`` and ``H``) is refused on tensors wherever NumPy (exact arithmetic) refuses it, and
  the objects that do exist agree with NumPy to ``1e-11`` of their largest entry;
* pairs ``1e-10`` rad from a kink, far above the bound, are not refused, and agree with NumPy within
  the backend's documented accuracy there (``1e-11 + 64 eps / angle`` of the largest entry);
* a refusal inside a batch names the instance by its index in the caller's batch shape, whichever path
  (fast-path routing, tensors with derivatives, Hessians, Hessians in chunks) found it;
* and, beside the kinks, a large batch of Hessians evaluated in chunks equals the batch whole, bit for bit.
"""
from __future__ import annotations

import math

import array_api_compat
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import numerics
from numerics import backend, xp_geometry

REFUSED = [("gradient", "J", "true"), ("gradient", "H", "true"), ("hessian", "J", "true"), ("hessian", "J", "mean"),
           ("hessian", "H", "true"), ("hessian", "H", "mean")]
EXISTS = [("gradient", "J", "mean"), ("gradient", "H", "mean"), ("hessian", "L", "true"),
          ("hessian", "L", "mean"), ("hessian", "H", "autograd")]
RTOL = 1e-11  # of the largest entry: tests/test_backend.py's agreement with the NumPy reference


def call(kind, W, Ws, part, field):
    return getattr(numerics, kind)(W, Ws, part, field)


def kink_configuration(seed: int, d: int, power: int, anti: bool, with_teacher: bool) -> tuple:
    """Three students and two teachers; student 1 (or teacher 0) is exactly ``+-2^power`` times student 0."""
    rng = np.random.default_rng(seed)
    W, Ws = rng.standard_normal((3, d)), rng.standard_normal((2, d))
    scale = (-1.0 if anti else 1.0) * 2.0**power
    if with_teacher:
        Ws[0] = scale * W[0]
    else:
        W[1] = scale * W[0]
    return W, Ws


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), d=st.integers(2, 64), power=st.integers(-20, 20), anti=st.booleans(),
       dtype=st.sampled_from([torch.float64, torch.float32]))
def test_the_rounding_bound_covers_exactly_parallel_pairs(seed, d, power, anti, dtype):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal(d) * 2.0 ** rng.integers(-8, 9)
    A = torch.tensor(np.stack([a, (-1.0 if anti else 1.0) * 2.0**power * a]), dtype=dtype)
    geo = xp_geometry.pairs(array_api_compat.array_namespace(A), A, A)
    assert bool(backend.unresolved_kinks(array_api_compat.array_namespace(A), geo)[0, 1]), (
        float(geo.theta[0, 1]), float(geo.psi[0, 1]))


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), d=st.integers(3, 8), power=st.sampled_from([-3, -1, 1, 2, 5]),
       anti=st.booleans(), with_teacher=st.booleans())
def test_objects_refused_on_numpy_are_refused_on_tensors(seed, d, power, anti, with_teacher):
    W, Ws = kink_configuration(seed, d, power, anti, with_teacher)
    Wt, Wst = torch.tensor(W), torch.tensor(Ws)
    for kind, part, field in REFUSED:
        with pytest.raises(ValueError, match="parallel"):  # exact arithmetic: the configuration is a kink
            call(kind, W, Ws, part, field)
        with pytest.raises(ValueError, match="parallel"):
            call(kind, Wt, Wst, part, field)
    for kind, part, field in EXISTS:
        ref = call(kind, W, Ws, part, field)
        got = call(kind, Wt, Wst, part, field).numpy()
        assert np.abs(got - ref).max() <= RTOL * np.abs(ref).max(), (kind, part, field)


@pytest.mark.parametrize("anti", [False, True])
def test_pairs_resolvably_near_a_kink_are_not_refused(anti):
    rng = np.random.default_rng(7)
    d, angle = 6, 1e-10
    W, Ws = rng.standard_normal((3, d)), rng.standard_normal((2, d))
    u = rng.standard_normal(d)
    u -= (u @ W[0]) / (W[0] @ W[0]) * W[0]
    u *= np.linalg.norm(W[0]) / np.linalg.norm(u)
    W[1] = (-2.0 if anti else 2.0) * (W[0] + math.tan(angle) * u)  # angle rad from (anti-)parallel
    rtol = RTOL + 64 * np.finfo(float).eps / angle
    for kind, part, field in REFUSED + EXISTS:
        ref = call(kind, W, Ws, part, field)
        got = call(kind, torch.tensor(W), torch.tensor(Ws), part, field).numpy()
        assert np.abs(got - ref).max() <= rtol * np.abs(ref).max(), (kind, part, field)


def batch_with_a_kink_at(index: tuple) -> tuple:
    """A batch ``(2, 3)`` of separated instances (the fast path's) and one kink: student 3 is ``-0.5`` times
    student 0 in instance ``index``."""
    rng = np.random.default_rng(11)
    W = rng.standard_normal((2, 3, 4, 5))
    W[index + (3,)] = -0.5 * W[index + (0,)]
    return W, rng.standard_normal((3, 5))


@pytest.mark.parametrize("which", ["routed", "with derivatives", "hessian", "one instance"])
def test_a_refusal_names_the_instance_in_the_callers_batch_shape(which):
    W, Ws = batch_with_a_kink_at((1, 2))
    Wst = torch.tensor(Ws)
    if which == "routed":
        run = lambda: numerics.gradient(torch.tensor(W), Wst, "H", "true")  # noqa: E731
    elif which == "with derivatives":
        run = lambda: numerics.gradient(torch.tensor(W, requires_grad=True), Wst, "J", "true")  # noqa: E731
    elif which == "hessian":
        run = lambda: numerics.hessian(torch.tensor(W), Wst, "J", "mean")  # noqa: E731
    else:
        run = lambda: numerics.gradient(torch.tensor(W[1, 2]), Wst, "J", "true")  # noqa: E731
    with pytest.raises(ValueError) as info:
        run()
    message = str(info.value)
    if which == "one instance":
        assert not message.startswith("instance"), message
    else:
        assert message.startswith("instance (1, 2): "), message
    assert "W[0] and W[3] are anti-parallel" in message, message


def test_a_hessian_batch_in_chunks_is_the_batch_whole_bit_for_bit(monkeypatch):
    """Large batches of Hessians are evaluated in chunks of instances (bounded temporaries): every chunk
    size gives the whole batch's bits (the same operations on each instance), broadcasting included."""
    rng = np.random.default_rng(12)
    W, Ws = torch.tensor(rng.standard_normal((2, 5, 3, 4))), torch.tensor(rng.standard_normal((5, 2, 4)))
    whole = {f: numerics.hessian(W, Ws, "H", f) for f in ("true", "mean", "autograd")}
    for entries in (144, 3 * 144, 7 * 144):  # 1, 3 and 7 instances of 12 x 12 matrices per chunk
        monkeypatch.setitem(backend._HESSIAN_CHUNK_ENTRIES, "cpu", entries)
        for field, ref in whole.items():
            got = numerics.hessian(W, Ws, "H", field)
            assert got.shape == (2, 5, 12, 12) and torch.equal(got, ref), (entries, field)


def test_a_refusal_in_a_chunked_hessian_names_the_instance(monkeypatch):
    monkeypatch.setitem(backend._HESSIAN_CHUNK_ENTRIES, "cpu", 2 * 400)  # two instances (20 x 20) per chunk
    W, Ws = batch_with_a_kink_at((1, 2))
    with pytest.raises(ValueError, match=r"^instance \(1, 2\): .*W\[0\] and W\[3\] are anti-parallel"):
        numerics.hessian(torch.tensor(W), torch.tensor(Ws), "H", "true")
