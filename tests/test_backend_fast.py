"""The fast path of the population gradient and loss on PyTorch tensors (numerics.backend._routed).

Objects: the gradient fields of the population loss (mean field and true gradient), not per-sample
autograd gradients, and the population losses.  Tensors that carry no derivative go, instance by instance, through the closed
forms on Gram cosines when every pair is at least SWITCH from 0 and pi, and through the general
pair-difference path otherwise.  Both evaluate the same object; these tests check that they agree,
that the routing is right, and that dtype, batch shape and errors are kept.

Tolerances: where both paths take the closed forms, they differ only through the rounding of the
angles (the Gram cosine against the half-angle formula, a few ulps at angles >= SWITCH, amplified by
at most ~1/SWITCH in the coefficients): 1e-13 of the instance's largest entry; losses, 1e-13 of the
instance's sum of squared row norms (the scale of every pair term).  float32 inputs are
computed in float64 and rounded once: within one float32 ulp of the float64 result per entry.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import numerics
from numerics import backend
from numerics.compile import SWITCH

PARTS = ("L", "J", "H")
FIELDS = ("mean", "true")


def _rotate_towards(u, v, angle):
    """The unit vector at ``angle`` from unit ``u`` in the plane of ``u`` and ``v``."""
    w = v - (v @ u) * u
    w /= np.linalg.norm(w)
    return math.cos(angle) * u + math.sin(angle) * w


def _mixed_batch(seed=0, B=12, K=3, Ks=2, d=5):
    """Random instances, and among them: a student within SWITCH of a teacher, two students within SWITCH
    of each other, a student at an angle within SWITCH of pi from a teacher, and a student just outside SWITCH
    of a teacher (the fast path)."""
    rng = np.random.default_rng(seed)
    W, S = rng.standard_normal((B, K, d)), rng.standard_normal((B, Ks, d))
    for b, (angle, flip, which) in enumerate([(0.03, False, "teacher"), (0.05, False, "student"),
                                              (0.04, True, "teacher"), (SWITCH + 1e-3, False, "teacher")]):
        target = S[b, 0] if which == "teacher" else W[b, 1]
        u = target / np.linalg.norm(target)
        x = _rotate_towards(u, rng.standard_normal(d), angle)
        W[b, 0] = (-1 if flip else 1) * 1.3 * x
    return W, S


def _general(W, S, part, field):
    xp = backend.namespace(W)
    return backend._gradient_general(xp, W, S, part, field)


@pytest.mark.parametrize("part", PARTS)
@pytest.mark.parametrize("field", FIELDS)
def test_routed_equals_general_path_on_a_mixed_batch(part, field):
    W, S = _mixed_batch()
    Wt, St = torch.tensor(W), torch.tensor(S)
    got = numerics.gradient(Wt, St, part, field)
    ref = _general(Wt, St, part, field)
    assert got.dtype == torch.float64 and got.shape == ref.shape
    scale = ref.abs().amax(dim=(-2, -1), keepdim=True)
    assert torch.all((got - ref).abs() <= 1e-13 * scale)
    # and the NumPy reference (its own fast path and refinements) per instance
    for b in range(len(W)):
        np_ref = numerics.gradient(W[b], S[b], part, field)
        assert np.abs(got[b].numpy() - np_ref).max() <= 1e-13 * np.abs(np_ref).max()


def test_routing_flags_pairs_within_switch():
    W, S = _mixed_batch()
    xp = backend.namespace(torch.tensor(W))
    fast = backend._fast_geometry(xp, torch.tensor(W), torch.tensor(S))["fast"].tolist()
    assert fast[:3] == [False, False, False]  # near a teacher, near a student, near pi from a teacher
    assert fast[3] is True  # just outside SWITCH
    assert all(fast[4:])  # random instances in d = 5 with these seeds


def test_all_fast_and_all_general_batches():
    rng = np.random.default_rng(5)
    W, S = torch.tensor(rng.standard_normal((6, 4, 8))), torch.tensor(rng.standard_normal((6, 3, 8)))
    ref = _general(W, S, "H", "true")
    assert torch.all((numerics.gradient(W, S, "H", "true") - ref).abs() <= 1e-13 * ref.abs().max())
    Wn, Sn = _mixed_batch()
    Wn, Sn = torch.tensor(Wn[:3]), torch.tensor(Sn[:3])
    assert torch.equal(numerics.gradient(Wn, Sn, "H", "mean"), _general(Wn, Sn, "H", "mean"))


def test_float32_is_computed_in_float64_and_rounded_once():
    rng = np.random.default_rng(7)
    W = torch.tensor(rng.standard_normal((20, 4, 6)), dtype=torch.float32)
    S = torch.tensor(rng.standard_normal((20, 4, 6)), dtype=torch.float32)
    got = numerics.gradient(W, S, "H", "mean")
    assert got.dtype == torch.float32
    ref = numerics.gradient(W.double().numpy(), S.double().numpy(), "H", "mean")
    ulp = np.spacing(np.abs(ref).astype(np.float32)).astype(np.float64)
    assert np.all(np.abs(got.double().numpy() - ref) <= ulp + 1e-13 * np.abs(ref).max())


def test_batch_shapes_broadcast():
    rng = np.random.default_rng(8)
    W, S = rng.standard_normal((3, 1, 2, 4)), rng.standard_normal((5, 3, 4))
    got = numerics.gradient(torch.tensor(W), torch.tensor(S), "J", "true")
    assert got.shape == (3, 5, 2, 4)
    for i in range(3):
        for j in range(5):
            ref = numerics.gradient(W[i, 0], S[j], "J", "true")
            assert np.abs(got[i, j].numpy() - ref).max() <= 1e-13 * np.abs(ref).max()


def test_tensors_with_derivatives_take_the_general_path():
    rng = np.random.default_rng(9)
    W = torch.tensor(rng.standard_normal((2, 3, 4)), requires_grad=True)
    S = torch.tensor(rng.standard_normal((2, 3, 4)))
    got = numerics.gradient(W, S, "H", "mean")
    assert got.grad_fn is not None  # differentiable, as before
    assert not backend._plain_values(W) and backend._plain_values(S)
    assert not backend._plain_values(np.zeros((2, 3)))


def test_exactly_parallel_pair_in_a_batch_still_refuses_the_true_gradient():
    rng = np.random.default_rng(10)
    W, S = rng.standard_normal((4, 2, 3)), rng.standard_normal((4, 2, 3))
    W[2, 1] = S[2, 0]
    with pytest.raises(ValueError, match="does not exist here"):
        numerics.gradient(torch.tensor(W), torch.tensor(S), "J", "true")
    numerics.gradient(torch.tensor(W), torch.tensor(S), "J", "mean")  # the mean field exists


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_fast_path_on_the_gpu_keeps_the_device():
    W, S = _mixed_batch()
    got = numerics.gradient(torch.tensor(W, device="cuda"), torch.tensor(S, device="cuda"), "H", "true")
    assert got.device.type == "cuda"
    ref = _general(torch.tensor(W), torch.tensor(S), "H", "true")
    assert torch.all((got.cpu() - ref).abs() <= 1e-13 * ref.abs().max())
    loss = numerics.loss(torch.tensor(W, device="cuda"), torch.tensor(S, device="cuda"), "H")
    assert loss.device.type == "cuda"
    np_ref = np.array([numerics.loss(W[b], S[b], "H") for b in range(len(W))])
    assert np.all(np.abs(loss.cpu().numpy() - np_ref) <= 1e-13 * _loss_scale(W, S))


def _loss_scale(W, S):
    return (np.sum(W * W, axis=(-2, -1)) + np.sum(S * S, axis=(-2, -1)))


@pytest.mark.parametrize("part", PARTS)
def test_routed_loss_equals_general_path_and_numpy_on_a_mixed_batch(part):
    W, S = _mixed_batch()
    Wt, St = torch.tensor(W), torch.tensor(S)
    got = numerics.loss(Wt, St, part)
    ref = backend._loss_general(backend.namespace(Wt), Wt, St, part)
    assert got.shape == (len(W),) and got.dtype == torch.float64
    scale = _loss_scale(W, S)
    assert np.all(np.abs(got.numpy() - ref.numpy()) <= 1e-13 * scale)
    np_ref = np.array([numerics.loss(W[b], S[b], part) for b in range(len(W))])
    assert np.all(np.abs(got.numpy() - np_ref) <= 1e-13 * scale)


def test_loss_routing_looks_at_every_pair_of_rows():
    """For the loss every pair of [W; W*] counts: two teachers within SWITCH send the instance to the general
    path, which the gradient's routing (students against all rows) does not look at."""
    rng = np.random.default_rng(11)
    W, S = rng.standard_normal((2, 2, 5)), rng.standard_normal((2, 2, 5))
    u = S[0, 0] / np.linalg.norm(S[0, 0])
    S[0, 1] = 0.7 * _rotate_towards(u, rng.standard_normal(5), 0.02)
    xp = backend.namespace(torch.tensor(W))
    by_rows = backend._fast_geometry(xp, torch.tensor(W), torch.tensor(S), rows=4)["fast"].tolist()
    by_students = backend._fast_geometry(xp, torch.tensor(W), torch.tensor(S))["fast"].tolist()
    assert by_rows == [False, True] and by_students == [True, True]
    got = numerics.loss(torch.tensor(W), torch.tensor(S), "H").numpy()
    ref = np.array([numerics.loss(W[b], S[b], "H") for b in range(2)])
    assert np.all(np.abs(got - ref) <= 1e-13 * _loss_scale(W, S))


def test_loss_of_float32_and_of_one_instance():
    rng = np.random.default_rng(12)
    W, S = rng.standard_normal((3, 4)), rng.standard_normal((2, 4))
    one = numerics.loss(torch.tensor(W), torch.tensor(S), "J")
    assert one.shape == () and abs(float(one) - numerics.loss(W, S, "J")) <= 1e-13 * _loss_scale(W, S)
    W32, S32 = torch.tensor(W, dtype=torch.float32), torch.tensor(S, dtype=torch.float32)
    got = numerics.loss(W32, S32, "H")
    ref = numerics.loss(W32.double().numpy(), S32.double().numpy(), "H")
    assert got.dtype == torch.float32
    assert abs(float(got) - ref) <= float(np.spacing(np.float32(abs(ref)))) + 1e-13 * _loss_scale(W, S)


def test_loss_of_tensors_with_derivatives_stays_differentiable():
    rng = np.random.default_rng(13)
    W = torch.tensor(rng.standard_normal((2, 3)), requires_grad=True)
    S = torch.tensor(rng.standard_normal((2, 3)))
    (g,) = torch.autograd.grad(numerics.loss(W, S, "L"), W)
    ref = numerics.gradient(W.detach().numpy(), S.numpy(), "L", "true")
    assert np.abs(g.numpy() - ref).max() <= 1e-12 * np.abs(ref).max()


def test_two_dimensional_inputs():
    """In d = 2 the general path has its own plane directions; the fast path needs none."""
    rng = np.random.default_rng(14)
    W, S = rng.standard_normal((30, 3, 2)), rng.standard_normal((30, 2, 2))
    for part in PARTS:
        for field in FIELDS:
            got = numerics.gradient(torch.tensor(W), torch.tensor(S), part, field).numpy()
            for b in range(len(W)):
                ref = numerics.gradient(W[b], S[b], part, field)
                assert np.abs(got[b] - ref).max() <= 1e-13 * np.abs(ref).max(), (part, field, b)


def test_forward_mode_tangents_pass_through_the_fast_path():
    """A dual tensor is plain for reverse mode; its tangent through the fast loss is the directional
    derivative, the true gradient against the tangent."""
    from torch.autograd import forward_ad

    rng = np.random.default_rng(15)
    W, S, T = rng.standard_normal((3, 5)), rng.standard_normal((2, 5)), rng.standard_normal((3, 5))
    with forward_ad.dual_level():
        dual = forward_ad.make_dual(torch.tensor(W), torch.tensor(T))
        assert backend._plain_values(dual)
        tangent = forward_ad.unpack_dual(numerics.loss(dual, torch.tensor(S), "H")).tangent
    expected = float(np.sum(numerics.gradient(W, S, "H", "true") * T))
    assert abs(float(tangent) - expected) <= 1e-12 * np.abs(numerics.gradient(W, S, "H", "true")).sum() * np.abs(T).max()


@given(seed=st.integers(0, 2**32 - 1), K=st.integers(1, 4), Ks=st.integers(1, 4), d=st.integers(2, 6),
       angle=st.floats(0.0, 0.3), flip=st.booleans())
def test_property_routed_equals_general_path(seed, K, Ks, d, angle, flip):
    """Random batches of 6 whose first instance has its first student at ``angle`` from (or, ``flip``, from
    pi to) its first teacher: below SWITCH the general path, above it the fast path; the gradient (H, true
    and mean) and the loss agree with the general path either way.  Tolerance 1e-11: right above SWITCH
    the closed forms are conditioned up to ~1/SWITCH^4 (numerics.compile: ~2e-12 relative), with room."""
    rng = np.random.default_rng(seed)
    W, S = rng.standard_normal((6, K, d)), rng.standard_normal((6, Ks, d))
    u = S[0, 0] / np.linalg.norm(S[0, 0])
    W[0, 0] = (-1 if flip else 1) * rng.uniform(0.5, 2.0) * _rotate_towards(u, rng.standard_normal(d), angle)
    Wt, St = torch.tensor(W), torch.tensor(S)
    xp = backend.namespace(Wt)
    for field in FIELDS:
        try:
            ref = backend._gradient_general(xp, Wt, St, "H", field)
        except ValueError:  # an exactly parallel pair (angle 0): the true gradient does not exist
            with pytest.raises(ValueError):
                numerics.gradient(Wt, St, "H", field)
            continue
        got = numerics.gradient(Wt, St, "H", field)
        scale = ref.abs().amax(dim=(-2, -1), keepdim=True)
        assert torch.all((got - ref).abs() <= 1e-11 * scale)
    got = numerics.loss(Wt, St, "H").numpy()
    ref = backend._loss_general(xp, Wt, St, "H").numpy()
    assert np.all(np.abs(got - ref) <= 1e-11 * _loss_scale(W, S))
