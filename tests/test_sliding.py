"""numerics.sliding: the batched fixed-step sliding flow of the true gradient of H against the single-run adaptive
integrator of numerics.flows (event location, RK45), and its pieces."""
from __future__ import annotations

import numpy as np
import pytest

from numerics import flows, sliding
from numerics import landscape as LS


def test_batched_boundary_terms_equal_the_single_instance_ones():
    rng = np.random.default_rng(0)
    Ws = np.eye(4)
    W = rng.standard_normal((6, 4, 4)) / 2
    locks = np.full((6, 4), sliding.UNLOCKED)
    locks[2, 1] = 3
    got = sliding.boundary_terms(W, Ws, locks)
    for b in range(6):
        skip = [(1, 4 + 3)] if b == 2 else []
        np.testing.assert_allclose(got[b], flows.boundary_terms(W[b], Ws, skip=skip), rtol=0, atol=1e-15)


def test_a_locked_row_moves_along_its_ray_and_the_margin_is_the_kink_minus_the_push():
    rng = np.random.default_rng(1)
    Ws = np.eye(3)
    W = np.eye(3)[None] * np.array([0.7, 1.3, 1.0])[None, :, None] + 0.2 * rng.standard_normal((1, 3, 3))
    W[0, 0] = 0.7 * Ws[0]  # on the ray of teacher 0
    locks = np.array([[0, -1, -1]])
    F, slack = sliding.field(W, Ws, locks)
    assert np.linalg.norm(F[0, 0, 1:]) == 0.0  # radial only
    expected = flows.sliding_slack(W[0], Ws, {0: 0})
    assert slack[0, 0] == pytest.approx(expected, rel=1e-12, abs=1e-15)
    assert np.isneginf(slack[0, 1:]).all()


@pytest.mark.parametrize("seed", [0])
def test_fixed_step_sliding_ends_where_the_adaptive_filippov_integrator_ends(seed):
    """Same start, the two discretisations of the sliding flow of gradient_flow.md: same locks (row -> teacher), and
    end points within 1e-7 relative of each other (both stop at relative distance ~1e-9 of the teacher)."""
    rng = np.random.default_rng(seed)
    Ws = np.eye(3)
    W0 = rng.standard_normal((1, 3, 3)) / np.sqrt(3)
    fixed = LS.descend(W0, Ws, "H-true", lr=0.05, max_steps=20000, grad_tol=1e-9)
    adaptive = flows.integrate(W0[0], Ws, "H-true", t_max=2000.0)
    assert adaptive["status"] == "stop"
    assert {j: int(p) for j, p in enumerate(fixed["locks"][0])} == adaptive["locked_at_end"]
    assert flows.relative_distance(fixed["W"][0], Ws) < 1e-8
    assert np.abs(fixed["W"][0] - adaptive["W"][-1]).max() < 1e-7


def test_the_reduced_jacobian_at_the_teacher_is_the_radial_jacobian():
    """Every row locked on its teacher: the manifold coordinates are the row norms, and the Jacobian there is
    flows.radial_jacobian (both central differences; they agree to the differencing error)."""
    Ws = np.diag([1.0, 1.5, 0.8])
    M = sliding.reduced_jacobian(Ws, Ws, np.array([0, 1, 2]))
    np.testing.assert_allclose(M, flows.radial_jacobian(Ws), rtol=1e-6, atol=1e-8)


def test_the_reduced_jacobian_off_the_rays_is_the_true_hessian_of_H():
    import numerics

    rng = np.random.default_rng(3)
    Ws = np.eye(3)
    W = Ws + 0.3 * rng.standard_normal((3, 3))
    M = sliding.reduced_jacobian(W, Ws, np.full(3, sliding.UNLOCKED))
    np.testing.assert_allclose(M, numerics.hessian(W, Ws, "H", "true"), rtol=0, atol=1e-7)
