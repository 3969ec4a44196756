"""Tools for landscape studies of the population losses: many descents at once, and what their end points are.

* :func:`descend`: population gradient descent on the **mean field** of ``L`` or ``H`` (what autograd training
  follows) for a batch of starts at once (:func:`numerics.gradient` with batch dimensions), each start stopped
  when its field is below a tolerance;
* :func:`classify`: an end point as ``"global"`` (``K = K*``: within ``global_tol |W*|`` of the teacher modulo a
  permutation of the rows; ``K > K*``, where global minima also split a teacher row between students: value
  loss ``L`` below ``global_tol^2`` times ``L`` of the teacher alone; ``L``, not ``H``, because ``J`` grows
  linearly in the angle next to the teacher), ``"spurious minimum"`` (field below ``grad_tol``, not global, and
  the Jacobian of the mean field with no eigenvalue of real part below ``-eig_tol``: for ``L`` it is the
  symmetric Hessian), ``"saddle"`` (field below ``grad_tol`` with an eigenvalue below ``-eig_tol``) or
  ``"not converged"``;
* :func:`wilson_interval`: the Wilson score interval of a proportion (SciPy's ``binomtest``);
* :func:`distinct`: end points deduplicated modulo a permutation of the rows (SciPy's assignment solver).

"""
from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.stats import binomtest

import numerics

KINDS = ("global", "spurious minimum", "saddle", "not converged")


def descend(W0, W_star, part: str, *, lr: float, max_steps: int, grad_tol: float) -> dict:
    """Gradient descent ``W <- W - lr F(W)`` on the mean field ``F`` of ``part`` for a batch ``W0 (B, K, d)``
    against one teacher ``W_star (K*, d)``; a start stops once ``|F| <= grad_tol`` (Frobenius).

    Returns ``{"W": (B, K, d), "steps": (B,), "field_norm": (B,)}``.  Deterministic: batched calls equal
    single calls bit for bit (:mod:`numerics.batched`)."""
    W = np.array(W0, dtype=np.float64)
    if W.ndim != 3:
        raise ValueError(f"W0 must have shape (B, K, d); got {W.shape}")
    if not (lr > 0 and max_steps >= 0 and grad_tol > 0):
        raise ValueError("lr and grad_tol must be positive and max_steps non-negative")
    B = len(W)
    steps = np.zeros(B, dtype=int)
    norm = np.full(B, np.inf)
    active = np.arange(B)
    for _ in range(max_steps):
        F = numerics.gradient(W[active], W_star, part, "mean")
        n = np.linalg.norm(F.reshape(len(active), -1), axis=1)
        norm[active] = n
        moving = n > grad_tol
        active, F = active[moving], F[moving]
        if not len(active):
            break
        W[active] -= lr * F
        steps[active] += 1
    if len(active):  # the field at the last iterate of the starts that used every step
        norm[active] = np.linalg.norm(numerics.gradient(W[active], W_star, part, "mean").reshape(len(active), -1), axis=1)
    return {"W": W, "steps": steps, "field_norm": norm}


def classify(W, W_star, part: str, *, grad_tol: float, global_tol: float, eig_tol: float) -> dict:
    """``{"kind", "distance", "relative_value_loss", "field_norm", "min_real_eigenvalue"}`` of one end point
    (``KINDS``; the rules in the module docstring)."""
    W, W_star = np.asarray(W, dtype=np.float64), np.asarray(W_star, dtype=np.float64)
    value = numerics.loss(W, W_star, "L") / numerics.loss(_tiny_row(W_star), W_star, "L")
    distance = permutation_distance(W, W_star) / np.linalg.norm(W_star) if W.shape == W_star.shape else None
    field_norm = float(np.linalg.norm(numerics.gradient(W, W_star, part, "mean")))
    out = {"distance": distance, "relative_value_loss": value, "field_norm": field_norm, "min_real_eigenvalue": None}
    if (distance <= global_tol) if distance is not None else (value <= global_tol**2):
        return {**out, "kind": "global"}
    if field_norm > grad_tol:
        return {**out, "kind": "not converged"}
    M = numerics.hessian(W, W_star, part, "mean")
    ev = np.linalg.eigvalsh((M + M.T) / 2) if part == "L" else np.linalg.eigvals(M).real
    out["min_real_eigenvalue"] = float(ev.min())
    return {**out, "kind": "saddle" if ev.min() < -eig_tol else "spurious minimum"}


def _tiny_row(W_star) -> np.ndarray:
    """A row ``1e-150`` times the first teacher row: ``loss(tiny, W*)`` is the loss of the teacher alone to
    rounding (a zero row has no angle, so the exact ``W = 0`` is not a valid argument)."""
    return 1e-150 * np.asarray(W_star, dtype=np.float64)[:1]


def wilson_interval(k: int, n: int, level: float = 0.95) -> tuple:
    """The Wilson score interval of ``k`` successes in ``n`` trials (``(nan, nan)``-free: ``n >= 1``)."""
    if n < 1 or not 0 <= k <= n:
        raise ValueError(f"need 0 <= k <= n and n >= 1; got k = {k}, n = {n}")
    ci = binomtest(k, n).proportion_ci(confidence_level=level, method="wilson")
    return float(ci.low), float(ci.high)


def permutation_distance(A, B) -> float:
    """``min_P |A - P B|_F`` over permutations ``P`` of the rows (``A``, ``B`` of the same shape)."""
    A, B = np.asarray(A, dtype=np.float64), np.asarray(B, dtype=np.float64)
    cost = ((A[:, None, :] - B[None, :, :]) ** 2).sum(-1)
    rows, cols = linear_sum_assignment(cost)
    return float(np.sqrt(cost[rows, cols].sum()))


def distinct(points, tol: float) -> list:
    """``[(representative, count)]``: the points grouped modulo a permutation of their rows, each joining the first
    representative within ``tol`` (relative to the representative's norm)."""
    groups = []
    for P in points:
        for g in groups:
            if permutation_distance(P, g[0]) <= tol * np.linalg.norm(g[0]):
                g[1] += 1
                break
        else:
            groups.append([np.asarray(P, dtype=np.float64), 1])
    return [(g[0], g[1]) for g in groups]
