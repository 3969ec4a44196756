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

``locks`` arrays hold, per row, the teacher index it is locked on, or ``-1``.
"""
from __future__ import annotations

import numpy as np

from .flows import LOCK_ANGLE, PARALLEL
from .descent_field import mean_field

UNLOCKED = -1


def _units(A: np.ndarray) -> np.ndarray:
    return A / np.linalg.norm(A, axis=-1, keepdims=True)


def boundary_terms(W: np.ndarray, W_star: np.ndarray, locks: np.ndarray) -> np.ndarray:
    """``true - mean`` gradient of ``J`` for a batch ``W (B, K, d)``: per row ``i`` the sum over ``z_q`` in
    ``[W; W*]`` of ``s_q |z_q| cos(theta_iq) / (2 pi) e2(w_i, z_q)`` (:func:`numerics.flows.boundary_terms`, one
    instance), leaving out each row's own pair with the teacher it is locked on and pairs with
    ``sin(theta) <= PARALLEL`` (no numerical ``e2``)."""
    B, K, _ = W.shape
    Z = np.concatenate([W, np.broadcast_to(W_star, (B,) + W_star.shape)], axis=1)
    s = np.concatenate([np.ones(K), -np.ones(len(W_star))])
    A, U = _units(W), _units(Z)
    c = A @ np.swapaxes(U, 1, 2)
    E = U[:, None, :, :] - c[..., None] * A[:, :, None, :]
    E -= np.einsum("biqd,bid->biq", E, A)[..., None] * A[:, :, None, :]  # re-orthogonalise (e2 . e1 ~ eps/sin)
    sin = np.linalg.norm(E, axis=-1)
    coef = s * np.linalg.norm(Z, axis=-1)[:, None, :] * c / (2 * np.pi)
    ok = sin > PARALLEL
    ok[:, np.arange(K), np.arange(K)] = False
    b, i = np.nonzero(locks >= 0)
    ok[b, i, K + locks[b, i]] = False
    coef = np.where(ok, coef / np.where(ok, sin, 1.0), 0.0)
    return np.einsum("biq,biqd->bid", coef, E)


def field(W: np.ndarray, W_star: np.ndarray, locks: np.ndarray) -> tuple:
    """``(F, slack)``: the sliding field of the true gradient of ``H`` (``dW/dt = -F``) and, per locked row, the
    orthogonal push minus ``|w*_p|/2pi`` (``-inf`` for unlocked rows; the lock holds while it is negative)."""
    G = mean_field(W, W_star, "H") + boundary_terms(W, W_star, locks)
    slack = np.full(locks.shape, -np.inf)
    b, i = np.nonzero(locks >= 0)
    if len(b):
        p = locks[b, i]
        u = _units(W_star[p])
        radial = np.einsum("nd,nd->n", u, G[b, i])
        perp = G[b, i] - radial[:, None] * u
        slack[b, i] = np.linalg.norm(perp, axis=-1) - np.linalg.norm(W_star[p], axis=-1) / (2 * np.pi)
        G[b, i] = radial[:, None] * u
    return G, slack


def lock_crossings(W_old: np.ndarray, W_new: np.ndarray, W_star: np.ndarray, locks: np.ndarray, lr) -> tuple:
    """Lock the unlocked rows that a step ``W_old -> W_new`` (step size ``lr``, a number or one per instance) took onto
    a teacher line; returns ``(W, locks)`` with those rows projected on their rays (new arrays)."""
    U = _units(W_star)
    c_old, c_new = W_old @ U.T, W_new @ U.T  # (B, K, K*): components along each teacher direction
    n_old, n_new = np.linalg.norm(W_old, axis=-1), np.linalg.norm(W_new, axis=-1)
    # p_old . p_new for the components orthogonal to each teacher line, without forming them
    cross = np.einsum("bkd,bkd->bk", W_old, W_new)[..., None] - c_old * c_new
    perp_new = np.sqrt(np.maximum(n_new[..., None] ** 2 - c_new**2, 0.0))
    perp_old = np.sqrt(np.maximum(n_old[..., None] ** 2 - c_old**2, 0.0))
    angle_new = np.arctan2(perp_new, np.abs(c_new))
    angle_old = np.arctan2(perp_old, np.abs(c_old))
    lr = np.reshape(lr, (-1, 1, 1)) if np.ndim(lr) else lr
    chatter = 2 * lr * np.linalg.norm(W_star, axis=-1) / (2 * np.pi * np.maximum(n_new[..., None], 1e-300))
    hit = ((cross < 0) & (angle_new <= chatter + LOCK_ANGLE)) | ((angle_new < LOCK_ANGLE) & (angle_new < angle_old))
    hit &= (locks == UNLOCKED)[..., None]
    angle_new = np.where(hit, angle_new, np.inf)
    b, i = np.nonzero(hit.any(axis=-1))
    W, locks = W_new.copy(), locks.copy()
    if len(b):
        p = np.argmin(angle_new[b, i], axis=-1)
        W[b, i] = c_new[b, i, p][:, None] * U[p]
        locks[b, i] = p
    return W, locks


def reduced_jacobian(W: np.ndarray, W_star: np.ndarray, locks: np.ndarray, h: float = 1e-6) -> np.ndarray:
    """Jacobian of the sliding field on its manifold at one point ``W (K, d)``: coordinates are the entries of the
    unlocked rows and the norm ``c_j`` of each locked row ``w_j = c_j u_p``; central differences with step
    ``h max(1, |w_j|)``, all ``2n`` shifted points evaluated as one batch.  It is the Hessian of ``H`` restricted to
    the manifold, symmetric up to the differencing error."""
    W, W_star = np.asarray(W, dtype=np.float64), np.asarray(W_star, dtype=np.float64)
    K, d = W.shape
    U = _units(W_star)
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
