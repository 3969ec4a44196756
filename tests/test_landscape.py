"""numerics.landscape: batched descents, the classification of end points, intervals, deduplication."""
from __future__ import annotations

import math

import numpy as np
import pytest

import numerics
from numerics import landscape as LS

TOLS = dict(grad_tol=1e-7, global_tol=1e-6, eig_tol=1e-8, value_tol=1e-12)


@pytest.mark.parametrize("part", ["L", "H"])
def test_starts_next_to_the_teacher_reach_it(part):
    rng = np.random.default_rng(1)
    Ws = np.eye(4)
    W0 = Ws + 0.05 * rng.standard_normal((3, 4, 4))
    res = LS.descend(W0, Ws, part, lr=0.25, max_steps=5000, grad_tol=1e-9)
    assert (res["field_norm"] <= 1e-9).all()
    assert [LS.classify(W, Ws, part, **TOLS)["kind"] for W in res["W"]] == ["global"] * 3


@pytest.mark.parametrize("flow", ["H", "H-true"])
def test_a_batch_descends_as_its_starts_would_alone(flow):
    rng = np.random.default_rng(2)
    Ws = np.eye(3)
    W0 = rng.standard_normal((4, 3, 3)) / np.sqrt(3)
    batch = LS.descend(W0, Ws, flow, lr=0.25, max_steps=200, grad_tol=1e-9)
    for i in range(4):
        one = LS.descend(W0[i:i + 1], Ws, flow, lr=0.25, max_steps=200, grad_tol=1e-9)
        assert np.array_equal(one["W"][0], batch["W"][i]) and one["steps"][0] == batch["steps"][i]
        assert np.array_equal(one["locks"][0], batch["locks"][i])


def test_a_spurious_minimum_of_L_at_k_8():
    """Safran & Shamir (2018): L has spurious local minima for k = 8 (orthonormal teacher, K = K* = k). From this
    seeded start (the 4th of rng(8), rows N(0, I/k)) the descent ends at one: field below 1e-9, value loss
    3.3e-3 of the teacher's, every Hessian eigenvalue positive (the smallest ~0.02)."""
    k = 8
    Ws = np.eye(k)
    W0 = (np.random.default_rng(k).standard_normal((40, k, k)) / np.sqrt(k))[3:4]
    res = LS.descend(W0, Ws, "L", lr=0.5, max_steps=4000, grad_tol=1e-9)
    c = LS.classify(res["W"][0], Ws, "L", **TOLS)
    assert c["kind"] == "spurious minimum"
    assert c["relative_value_loss"] > 1e-3 and c["min_real_eigenvalue"] > 1e-3


def test_not_converged_and_argument_checks():
    Ws = np.eye(3)
    W0 = np.random.default_rng(3).standard_normal((1, 3, 3))
    res = LS.descend(W0, Ws, "L", lr=0.1, max_steps=0, grad_tol=1e-9)
    assert np.array_equal(res["W"], W0) and res["steps"][0] == 0
    assert LS.classify(res["W"][0], Ws, "L", **TOLS)["kind"] == "not converged"
    with pytest.raises(ValueError):
        LS.descend(W0[0], Ws, "L", lr=0.1, max_steps=1, grad_tol=1e-9)
    with pytest.raises(ValueError):
        LS.descend(W0, Ws, "L", lr=-0.1, max_steps=1, grad_tol=1e-9)


def test_over_parameterised_global_minima_are_recognised_by_the_value_loss():
    """K = K* + 1: a teacher row split between two students on its ray is a global minimum (the network is the
    teacher's), although no permutation maps it onto W*."""
    Ws = np.eye(3)
    W = np.vstack([Ws, Ws[:1]])
    W[0] *= 0.25
    W[3] *= 0.75
    assert LS.classify(W, Ws, "L", **TOLS)["kind"] == "global"


def test_wilson_interval_against_the_formula():
    """(p + z^2/2n -+ z sqrt(p(1-p)/n + z^2/4n^2)) / (1 + z^2/n), z = 1.959964 for 95 %."""
    z = 1.959963984540054
    for k, n in ((3, 10), (0, 25), (25, 25), (412, 1000)):
        p = k / n
        centre, half = p + z * z / (2 * n), z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
        lo, hi = ((centre - half) / (1 + z * z / n), (centre + half) / (1 + z * z / n))
        got = LS.wilson_interval(k, n)
        assert abs(got[0] - lo) <= 1e-12 and abs(got[1] - hi) <= 1e-12, (k, n)
    with pytest.raises(ValueError):
        LS.wilson_interval(3, 0)


def test_permutations_and_distinct_points():
    rng = np.random.default_rng(4)
    A = rng.standard_normal((4, 3))
    assert LS.permutation_distance(A[[2, 0, 3, 1]], A) <= 1e-15
    B = A + 0.5
    groups = LS.distinct([A, A[[1, 0, 2, 3]], B, A + 1e-12, B[::-1]], tol=1e-9)
    assert [count for _, count in groups] == [3, 2]


def test_the_descent_field_is_the_mean_field_to_a_few_ulps_near_and_far_from_kinks():
    """numerics.descent_field.mean_field sends instances near a kink to numerics.backend (batched), the others to
    numerics.gradient: both paths give the mean field to <= 64 eps of its largest entry (the backend's formulas are the
    same generated code; the differences are rounding), instance by instance independent of the batch."""
    from numerics.descent_field import mean_field, near_kinks

    rng = np.random.default_rng(4)
    Ws = np.eye(5)
    W = np.concatenate([Ws + 1e-4 * rng.standard_normal((3, 5, 5)), rng.standard_normal((3, 5, 5)) / np.sqrt(5)])
    near = near_kinks(W, Ws)
    assert near[:3].all() and not near[3:].all()  # both paths are taken
    for part in ("L", "H"):
        ref = np.stack([numerics.gradient(w, Ws, part, "mean") for w in W])
        got = mean_field(W, Ws, part)
        assert np.abs(got - ref).max() <= 64 * np.finfo(float).eps * np.abs(ref).max()
        assert np.array_equal(mean_field(W[1:2], Ws, part)[0], got[1])


def test_a_step_too_long_for_the_local_curvature_is_halved_until_the_descent_converges():
    """A start next to the teacher with a step 3/lambda_max (fixed-step descent would diverge along the top eigenvector):
    the step is halved when the field grows and reverses, and the run reaches the teacher; a stable step is kept."""
    Ws = np.eye(3)
    lam = float(np.linalg.eigvalsh(numerics.hessian(Ws + 1e-7 * np.eye(3)[::-1], Ws, "L", "mean")).max())
    W0 = (Ws + 1e-3 * np.random.default_rng(5).standard_normal((3, 3)))[None]
    res = LS.descend(W0, Ws, "L", lr=3 / lam, max_steps=5000, grad_tol=1e-10)
    assert res["lr"][0] < 2 / lam and res["field_norm"][0] <= 1e-10
    stable = LS.descend(W0, Ws, "L", lr=0.9 / lam, max_steps=5000, grad_tol=1e-10)
    assert stable["lr"][0] == 0.9 / lam and stable["field_norm"][0] <= 1e-10


def test_bad_flows_and_zero_rows_are_clear_errors():
    Ws = np.eye(3)
    W0 = np.random.default_rng(6).standard_normal((2, 3, 3))
    with pytest.raises(ValueError, match="flow must be one of"):
        LS.descend(W0, Ws, "J", lr=0.1, max_steps=1, grad_tol=1e-9)
    W0[1, 2] = 0.0
    for flow in ("L", "H-true"):
        with pytest.raises(ValueError, match="zero"):
            LS.descend(W0, Ws, flow, lr=0.1, max_steps=1, grad_tol=1e-9)


@pytest.mark.parametrize("flow", ["L", "H-mean", "H-true"])
def test_descents_on_torch_tensors_follow_the_numpy_ones(flow):
    """The same descent on a PyTorch tensor (the path a GPU takes; here on the CPU): the fields come from
    numerics.backend instead of the reference, so iterates differ by rounding only: same step counts and locks, end
    points within 1e-12."""
    torch = pytest.importorskip("torch")
    Ws = np.eye(4)
    W0 = np.random.default_rng(7).standard_normal((3, 4, 4)) / 2
    ref = LS.descend(W0, Ws, flow, lr=0.2, max_steps=3000, grad_tol=1e-9)
    got = LS.descend(torch.from_numpy(W0), Ws, flow, lr=0.2, max_steps=3000, grad_tol=1e-9)
    assert isinstance(got["W"], torch.Tensor) and got["W"].dtype == torch.float64
    assert np.abs(got["W"].numpy() - ref["W"]).max() < 1e-12
    assert np.array_equal(got["steps"].numpy(), ref["steps"]) and np.array_equal(got["locks"].numpy(), ref["locks"])
