"""The true-gradient flow of ``H`` for a batch of students at once: fixed-step Filippov sliding on the teacher rays.

The true gradient of the population ``H`` jumps by ``|w*|/2pi`` across every student–teacher ray (the
cone-shaped kink of ``J``, docs/theory.md, section 6; :mod:`numerics.flows` has the single-run adaptive
integrator with event location).  Plain gradient descent on it chatters around a ray with amplitude
``lr |w*| / (2 pi |w|)``; :func:`numerics.landscape.descend` (``"H-true"``) advances a batch ``W (B, K, d)`` by
gradient descent on the **sliding field** of this module instead, the discrete counterpart of the Filippov flow of
:func:`numerics.flows.integrate`:

* a row is **locked** on teacher ``p`` once a step takes it across the line of ``w*_p`` (the component of the row
  orthogonal to ``w*_p`` reverses) within the chatter amplitude of two steps, or to within
  :data:`numerics.flows.LOCK_ANGLE` while approaching; it is projected on the ray (either sign: the kink
  attracts at both);
* a locked row moves with the radial component of the true gradient without its own pair's boundary term (the
  minimal-norm element of the set-valued field), as long as the orthogonal push of the other terms is smaller
  than ``|w*_p| / 2pi`` (:func:`field` returns that margin as ``slack``); when it is larger, the row is unlocked.

``locks`` arrays hold, per row, the teacher index it is locked on, or ``-1``.  :func:`boundary_terms`, :func:`field`
and :func:`lock_crossings` take NumPy arrays or PyTorch tensors (any device; ``array-api-compat``).
"""
from __future__ import annotations

import math

import numpy as np
from array_api_compat import array_namespace, device

from .descent_field import mean_field
from .fused_fields import nonzero, put, rows
from .flows import LOCK_ANGLE, batched_boundary_terms, units

UNLOCKED = -1
LOCK_TAN2 = math.tan(LOCK_ANGLE) ** 2  # squared tangent of the lock angle


def boundary_terms(W, W_star, locks):
    """``true - mean`` gradient of ``J`` for a batch ``W (B, K, d)`` (:func:`numerics.flows.batched_boundary_terms`),
    leaving out each row's own pair with the teacher it is locked on."""
    xp = array_namespace(W)
    B, K, _ = W.shape
    skip = xp.zeros((B, K, K + W_star.shape[0]), dtype=xp.bool, device=device(W))
    b, i = xp.nonzero(locks >= 0)
    skip[b, i, K + locks[b, i]] = True
    return batched_boundary_terms(W, W_star, skip)


def field(W, W_star, locks) -> tuple:
    """``(F, slack)``: the sliding field of the true gradient of ``H`` (``dW/dt = -F``) and, per locked row, the
    orthogonal push minus ``|w*_p|/2pi`` (``-inf`` for unlocked rows; the lock holds while it is negative)."""
    return slide(mean_field(W, W_star, "H") + boundary_terms(W, W_star, locks), W_star, locks)


def slide(G, W_star, locks, U=None) -> tuple:
    """``(F, slack)`` of :func:`field` from ``G``, the true gradient of ``H`` without the locked rows' own pair terms:
    each locked row keeps the radial component of ``G`` along its teacher ray.  ``U``: ``units(W_star)`` when the
    caller has it (a descent computes it once)."""
    xp = array_namespace(G, W_star)
    slack = xp.full(tuple(locks.shape), -math.inf, dtype=G.dtype, device=device(G))
    b, i = _nonzero(xp, locks >= 0)
    if b.shape[0]:
        p = locks[b, i]
        u = (units(W_star) if U is None else U)[p]
        g = _gather(G, b, i)
        radial = xp.einsum("nd,nd->n", u, g)
        perp = g - radial[:, None] * u
        half_kink = xp.linalg.vector_norm(W_star, axis=-1) / (2 * math.pi)  # |w*_p| / 2pi per teacher row
        _scatter(slack, (b, i), xp.linalg.vector_norm(perp, axis=-1) - half_kink[p])
        _scatter(G, (b, i), radial[:, None] * u)
    return G, slack


def _nonzero(xp, mask) -> tuple:
    """``xp.nonzero(mask)``; for NumPy by one flat scan (:func:`numerics.fused_fields.nonzero`, several times faster)."""
    return nonzero(mask) if isinstance(mask, np.ndarray) else xp.nonzero(mask)


def _gather(X, b, i):
    """``X[b, i]`` (rows of ``X (B, K, d)``); for a contiguous NumPy array by ``np.take`` (:func:`fused_fields.rows`)."""
    if isinstance(X, np.ndarray) and X.flags.c_contiguous:
        return rows(X, b, i)
    return X[b, i]


def _scatter(X, index: tuple, values) -> None:
    """``X[index] = values``; for a contiguous NumPy array by flat position (the same entries, faster)."""
    if isinstance(X, np.ndarray) and X.flags.c_contiguous:
        if X.ndim == len(index):
            put(X, index, values)
        else:
            X.reshape(-1, X.shape[-1])[np.ravel_multi_index(index, X.shape[:-1])] = values
    else:
        X[index] = values


def lock_crossings(W_old, W_new, W_star, locks, lr, U=None) -> tuple:
    """Lock the unlocked rows that a step ``W_old -> W_new`` (step size ``lr``, a number or one per instance) took onto
    a teacher line; returns ``(W, locks)`` with those rows projected on their rays (new arrays).  ``U``:
    ``units(W_star)`` when the caller has it.

    Only unlocked rows are tested (a locked row stays locked until :func:`slide` releases it), gathered first: late
    in a descent most rows are locked.  Angles to a line lie in ``[0, pi/2]``, where ``tan`` is increasing: every
    comparison of angles is made between squared tangents ``perp^2 / c^2`` (``c`` the component along the teacher
    direction, ``perp`` the rest), which needs no ``atan2``."""
    xp = array_namespace(W_old, W_star)
    W, locks = xp.asarray(W_new, copy=True), xp.asarray(locks, copy=True)
    b, i = _nonzero(xp, locks == UNLOCKED)
    if not b.shape[0]:
        return W, locks
    U = units(W_star) if U is None else U
    hit, c_new, perp2_new, sq_new = _line_hits(_gather(W_old, b, i), _gather(W_new, b, i), W_star, U, lr, b)
    (r,) = _nonzero(xp, xp.any(hit, axis=-1))
    if r.shape[0]:
        tan2 = xp.where(hit[r], perp2_new[r] / xp.clip(sq_new[r], min=1e-300), xp.inf)
        p = xp.argmin(tan2, axis=-1)
        W[b[r], i[r]] = c_new[r, p][:, None] * U[p]
        locks[b[r], i[r]] = p
    return W, locks


def _line_hits(Wo, Wn, W_star, U, lr, b) -> tuple:
    """For rows ``Wo -> Wn (n, d)`` (of instances ``b``): which teacher lines each step locks onto, ``(n, K*)``, and the
    new components along and squared across each line, for the choice among several."""
    xp = array_namespace(Wo, W_star)
    Ut = xp.matrix_transpose(U)
    c_old, c_new = Wo @ Ut, Wn @ Ut  # (n, K*): components along each teacher direction
    sq_new = c_new * c_new
    n2_new = xp.vecdot(Wn, Wn)[..., None]
    perp2_new = xp.maximum(n2_new - sq_new, 0.0)  # what clip(min=0) gives, without array-api-compat's wrapper
    hit = xp.zeros(tuple(c_new.shape), dtype=xp.bool, device=device(c_new))
    # closing in on a line within the lock angle: few rows are, so the comparison with the old angle runs on them alone
    r, p = _nonzero(xp, perp2_new < LOCK_TAN2 * sq_new)
    if r.shape[0]:
        sq_old = c_old[r, p] * c_old[r, p]
        perp2_old = xp.clip(xp.vecdot(Wo, Wo)[r] - sq_old, min=0.0)
        hit[r, p] = perp2_new[r, p] * sq_old < perp2_old * sq_new[r, p]
    # crossed a line (the components orthogonal to it reversed: p_old . p_new < 0, without forming them) within the
    # chatter of two steps of that kink: likewise few
    r, p = _nonzero(xp, c_old * c_new > xp.vecdot(Wo, Wn)[..., None])  # a - b < 0 iff a < b
    if r.shape[0]:
        rate = xp.reshape(lr, (-1,))[b[r]] if getattr(lr, "ndim", 0) else lr
        chatter = 2 * rate * xp.linalg.vector_norm(W_star[p], axis=-1) / (2 * math.pi * xp.sqrt(n2_new[r, 0]))
        reach = xp.tan(xp.clip(chatter + LOCK_ANGLE, max=math.pi / 2))
        hit[r, p] |= perp2_new[r, p] <= reach * reach * sq_new[r, p]
    return hit, c_new, perp2_new, sq_new


def reduced_jacobian(W: np.ndarray, W_star: np.ndarray, locks: np.ndarray, h: float = 1e-6) -> np.ndarray:
    """Jacobian of the sliding field on its manifold at one point ``W (K, d)``: coordinates are the entries of the
    unlocked rows and the norm ``c_j`` of each locked row ``w_j = c_j u_p``; central differences with step
    ``h max(1, |w_j|)``, all ``2n`` shifted points evaluated as one batch.  It is the Hessian of ``H`` restricted to
    the manifold, symmetric up to the differencing error."""
    W, W_star = np.asarray(W, dtype=np.float64), np.asarray(W_star, dtype=np.float64)
    K, d = W.shape
    U = units(W_star)
    axes = []  # (row, direction (d,)) of every coordinate
    for j in range(K):
        if locks[j] >= 0:
            axes.append((j, U[locks[j]]))
        else:
            axes += [(j, np.eye(d)[m]) for m in range(d)]
    n = len(axes)
    shifted = np.repeat(W[None], 2 * n, axis=0)
    steps = np.array([h * max(1.0, float(np.linalg.norm(W[j]))) for j, _ in axes])
    for a, (j, e) in enumerate(axes):
        shifted[2 * a, j] += steps[a] * e
        shifted[2 * a + 1, j] -= steps[a] * e
    F, _ = field(shifted, W_star, np.repeat(np.asarray(locks)[None], 2 * n, axis=0))
    proj = np.array([F[:, j] @ e for j, e in axes])  # (n coordinates, 2n points)
    return (proj[:, 0::2] - proj[:, 1::2]) / (2 * steps[None, :])
