"""Landscape tools for erf networks, the smooth control of :mod:`numerics.landscape`.

Safran & Shamir's setting with ``sigma = erf``: ``g(x) = sum_j erf(w_j . x)`` (unit output weights), ``x ~ N(0, I)``,
a teacher ``W*``.  For erf the mean field is the true gradient and the three Hessians are one matrix
(:mod:`theory.erf`), so each loss has **one** flow: ``"L"`` or ``"H"`` (``H = L + lambda_1 J + lambda_2 J2``).

* :func:`batched_loss`, :func:`batched_gradient`: the population loss and its gradient for a batch of students
  ``W (B, K, d)`` at once, from the functions generated from :mod:`theory.erf` (:func:`numerics.erf.generated_partials`);
  they equal :func:`numerics.erf.loss` / :func:`numerics.erf.gradient` of each instance (tested).
* :func:`descend`: gradient descent for a batch of starts, each start with its own step (halved when its field grew
  and reversed), stopped when its gradient is below ``grad_tol`` or its value loss below ``value_tol`` times that of
  the teacher alone;
* :func:`classify`: an end point's kind by the rule of :func:`numerics.landscape.decide` (global, spurious minimum,
  saddle, not converged), its stability read from the Hessian (:func:`numerics.erf.hessian`).
"""
from __future__ import annotations

import numpy as np

from . import erf
from .landscape import decide, permutation_distance

FLOWS = ("L", "H")
VALUE_CHECK_EVERY = 50  # steps between checks of the value loss (value_tol), as in numerics.landscape


def _batch(W, W_star) -> tuple:
    W = np.asarray(W, dtype=np.float64)
    W_star = np.asarray(W_star, dtype=np.float64)
    if W.ndim != 3 or W_star.ndim != 2 or W.shape[2] != W_star.shape[1]:
        raise ValueError(f"W must have shape (B, K, d) and W_star (K*, d) with the same d; got {W.shape}, {W_star.shape}")
    if not (np.isfinite(W).all() and np.isfinite(W_star).all()):
        raise ValueError("W and W_star must be finite")
    return W, W_star


def _weights(flow: str, sobolev) -> dict:
    if flow not in FLOWS:
        raise ValueError(f"flow must be one of {FLOWS}; got {flow!r}")
    return erf.part_weights(flow, sobolev)


def _invariants(Z: np.ndarray, rows: int) -> tuple:
    """``(p, q, c, D, pv)`` of the pairs ``(i, r)``, ``i < rows``, ``r`` any row of ``Z (B, P, d)`` (identity
    covariance: ``g = c``), each ``(B, rows, P)``; ``pv (B, P)`` the squared norms."""
    C = Z[:, :rows] @ np.swapaxes(Z, 1, 2)
    pv = np.einsum("bpd,bpd->bp", Z, Z)
    p, q = pv[:, :rows, None], pv[:, None, :]
    D = 1.0 + 2.0 * p + 2.0 * q + 4.0 * np.maximum(p * q - C * C, 0.0)  # pq - c^2 >= 0 up to rounding
    return np.broadcast_to(p, C.shape), np.broadcast_to(q, C.shape), C, D, pv


def _summed(weights: dict, key: tuple, args: tuple, own: bool = False) -> np.ndarray:
    """The weighted sum over the kernel parts of the generated partial ``key`` (of the self term when ``own``)."""
    total = 0.0
    for part, lam in weights.items():
        total = total + lam * np.asarray(erf.generated_partials(part)[1 if own else 0][key](*args), dtype=np.float64)
    return total


def batched_loss(W, W_star, flow: str = "L", *, sobolev=(1.0, 0.0)) -> np.ndarray:
    """The population loss ``flow`` (``"L"`` or ``"H"``) of each student of ``W (B, K, d)``: ``(B,)``."""
    W, W_star = _batch(W, W_star)
    weights = _weights(flow, sobolev)
    B, K, _ = W.shape
    Z = np.concatenate([W, np.broadcast_to(W_star, (B, *W_star.shape))], axis=1)
    P = Z.shape[1]
    p, q, c, D, pv = _invariants(Z, P)
    F = _summed(weights, (), (p, q, c, c, D))
    F = np.broadcast_to(F, c.shape).copy()
    idx = np.arange(P)
    F[:, idx, idx] = np.broadcast_to(_summed(weights, (), (pv, pv), own=True), pv.shape)
    s = np.concatenate([np.ones(K), -np.ones(len(W_star))])
    return 0.5 * np.einsum("p,bpr,r->b", s, F, s)


def batched_gradient(W, W_star, flow: str = "L", *, sobolev=(1.0, 0.0)) -> np.ndarray:
    """The gradient of the population loss ``flow`` in ``W`` for each student of ``W (B, K, d)``: ``(B, K, d)``; for
    erf also the mean field.  Row ``i``: ``sum_{r != i} s_r grad_u f(w_i, z_r) + grad phi(w_i) / 2`` with ``grad_u f
    = (2 f_p + 4 f_D) u + (f_c + f_g) v + 8 f_D (q u - c v)``, summed over ``r`` as one product with ``Z = [W; W*]``."""
    W, W_star = _batch(W, W_star)
    weights = _weights(flow, sobolev)
    B, K, _ = W.shape
    Z = np.concatenate([W, np.broadcast_to(W_star, (B, *W_star.shape))], axis=1)
    p, q, c, D, pv = _invariants(Z, K)
    args = (p, q, c, c, D)
    sign = np.concatenate([np.ones(K), -np.ones(len(W_star))])
    off = sign * ~np.eye(K, Z.shape[1], dtype=bool)  # s_r, and 0 for r = i (the self term)
    fp, fD = (off * _summed(weights, (k,), args) for k in ("p", "D"))
    fcg = off * (_summed(weights, ("c",), args) + _summed(weights, ("g",), args))
    # 8 f_D (q u - c v) summed over r, as 8 (sum_r f_D q) u - 8 sum_r f_D c v: one product with Z instead of a
    # (B, K, P, d) array; the two sums are of the size of the other terms (D >= 1 keeps f_D bounded), so the
    # gradient's absolute error stays ~ eps times their size
    scale = np.sum(2.0 * fp + 4.0 * fD + 8.0 * fD * q, axis=2)
    grad = scale[..., None] * W + (fcg - 8.0 * fD * c) @ Z
    own = _summed(weights, ("p",), (pv[:, :K], pv[:, :K]), own=True) + _summed(weights, ("g",), (pv[:, :K], pv[:, :K]), own=True)
    return grad + own[..., None] * W


def relative_value_loss(W, W_star) -> np.ndarray:
    """``L(W) / L(teacher alone)`` of each student of ``W (B, K, d)`` (the erf ``L``)."""
    W, W_star = _batch(W, W_star)
    alone = batched_loss(np.zeros((1, 1, W_star.shape[1])), W_star, "L")[0]  # erf(0) = 0: no student
    return batched_loss(W, W_star, "L") / alone


def descend(W0, W_star, flow: str, *, lr: float, max_steps: int, grad_tol: float, value_tol: float = 0.0,
            sobolev=(1.0, 0.0)) -> dict:
    """Gradient descent ``W <- W - lr_i grad(W)`` of the loss ``flow`` for a batch ``W0 (B, K, d)``.

    Each start has its own step ``lr_i``: ``lr`` at first, halved whenever its gradient grew and turned by more
    than 120 degrees in one step (a step above ``2 / lambda`` for the local curvature).  A start stops once its
    gradient norm (Frobenius) is at most ``grad_tol`` or, with ``value_tol > 0``, once its value loss is at most
    ``value_tol`` times the teacher's alone (checked every :data:`VALUE_CHECK_EVERY` steps).  Each start's path
    depends on that start alone.  Returns ``{"W", "steps", "field_norm", "lr"}``."""
    W, W_star = _batch(W0, W_star)
    W = W.copy()
    if not (lr > 0 and max_steps >= 0 and grad_tol > 0):
        raise ValueError("lr and grad_tol must be positive and max_steps non-negative")
    B = len(W)
    steps, norm = np.zeros(B, dtype=np.int64), np.full(B, np.inf)
    rates, prev_norm, prev_F = np.full(B, float(lr)), np.full(B, np.inf), np.zeros_like(W)
    active = np.arange(B)
    for step in range(max_steps + 1):
        F = batched_gradient(W[active], W_star, flow, sobolev=sobolev)
        n = np.sqrt(np.einsum("bkd,bkd->b", F, F))
        norm[active] = n
        moving = n > grad_tol
        if value_tol > 0 and step % VALUE_CHECK_EVERY == 0:
            moving &= relative_value_loss(W[active], W_star) > value_tol
        active, F, n = active[moving], F[moving], n[moving]
        if step == max_steps or not len(active):
            break
        turn = np.einsum("bkd,bkd->b", F, prev_F[active])
        rates[active[(n > prev_norm[active]) & (turn < -0.5 * n * prev_norm[active])]] /= 2
        prev_F[active], prev_norm[active] = F, n
        W[active] -= rates[active][:, None, None] * F
        steps[active] += 1
    return {"W": W, "steps": steps, "field_norm": norm, "lr": rates}


def classify(W, W_star, flow: str, *, grad_tol: float, global_tol: float, eig_tol: float, value_tol: float,
             sobolev=(1.0, 0.0)) -> dict:
    """``{"kind", "distance", "relative_value_loss", "field_norm", "min_real_eigenvalue", "lock_margin"}`` of one end
    point ``W (K, d)`` of ``flow``, by :func:`numerics.landscape.decide` (``lock_margin`` is ``None``: erf has no
    kink to lock on); the stability from the smallest eigenvalue of the Hessian of the flow's loss."""
    W3, W_star = _batch(np.asarray(W, dtype=np.float64)[None], W_star)
    W = W3[0]
    out = {"distance": permutation_distance(W, W_star) / np.linalg.norm(W_star) if W.shape == W_star.shape else None,
           "relative_value_loss": float(relative_value_loss(W3, W_star)[0]),
           "field_norm": float(np.linalg.norm(batched_gradient(W3, W_star, flow, sobolev=sobolev))),
           "min_real_eigenvalue": None, "lock_margin": None}
    tols = dict(grad_tol=grad_tol, global_tol=global_tol, eig_tol=eig_tol, value_tol=value_tol)
    if decide(out, **tols) == "unstable?":  # converged and not global: the spectrum decides
        M = erf.hessian(W, W_star, flow, sobolev=sobolev)
        out["min_real_eigenvalue"] = float(np.linalg.eigvalsh((M + M.T) / 2).min())
    return {**out, "kind": decide(out, **tols)}


def teacher_step(W_star, flow: str, factor: float, sobolev=(1.0, 0.0)) -> float:
    """``factor / lambda_max`` of the Hessian of ``flow``'s loss at the teacher (``W = W*``): the step of the descents."""
    W_star = np.asarray(W_star, dtype=np.float64)
    M = erf.hessian(W_star, W_star, flow, sobolev=sobolev)
    return float(factor / np.linalg.eigvalsh((M + M.T) / 2).max())
