"""Tian's analytical population gradient of a two-layer ReLU network: an independent reference.

Reference: Yuandong Tian, "An Analytical Formula of Population Gradient for two-layered ReLU
network and its Applications in Convergence and Critical Point Analysis", ICML 2017
(arXiv:1703.00560), Section 3 (the closed form of ``E[F(e, w)]`` and the population gradient of
the two-layer network).

Setting (Tian's notation, unit second-layer weights): ``g(x; W) = sum_j relu(w_j . x)``,
``x ~ N(0, I_d)``, loss ``L(W) = 1/2 E[(g(x; W) - g(x; W*))^2]``.  Tian's formula for the
gradient with respect to the student row ``w_j`` is a signed sum of pair terms

    dL/dw_j = sum_{j'} f(w_j, w_{j'}) - sum_{k} f(w_j, w*_k),
    f(w, w') = E[relu(w'.x) 1{w.x > 0} x]
             = (1 / (2 pi)) [ (pi - theta) w' + |w'| sin(theta) w / |w| ],

with ``theta`` the angle between ``w`` and ``w'``; the ``j' = j`` term is ``f(w_j, w_j) = w_j / 2``
(``theta = 0``).  For ``L`` this is both the expected per-sample (autograd) gradient and the
gradient of the population loss.

What this module is for: it is **typed in from the paper**, not derived from this project's
code, and imports nothing from :mod:`theory` or the rest of :mod:`numerics`; the tests use it as
an independent witness for ``numerics.gradient(W, W_star, "L", ...)``, and the benchmarks use
:func:`tian_gradient_vectorised` as the baseline a straightforward NumPy implementation of the
formula gives.

Angles are computed stably as ``theta = 2 atan2(|a^ - b^|, |a^ + b^|)`` (unit vectors ``a^``,
``b^``), never with ``arccos``, so that near-parallel and near-anti-parallel rows keep their
digits.  Rows must be non-zero (the angle is undefined otherwise).
"""
from __future__ import annotations

import math

import numpy as np

__all__ = ["tian_pair_term", "tian_gradient_loop", "tian_gradient_vectorised"]


def _angle(a: np.ndarray, b: np.ndarray) -> float:
    """Angle between non-zero vectors ``a`` and ``b``: ``2 atan2(|a^ - b^|, |a^ + b^|)``."""
    ah = a / np.linalg.norm(a)
    bh = b / np.linalg.norm(b)
    return 2.0 * math.atan2(float(np.linalg.norm(ah - bh)), float(np.linalg.norm(ah + bh)))


def tian_pair_term(w: np.ndarray, w_prime: np.ndarray) -> np.ndarray:
    """``f(w, w') = (1/(2 pi)) [(pi - theta) w' + |w'| sin(theta) w/|w|]`` (Tian 2017)."""
    w = np.asarray(w, dtype=np.float64)
    w_prime = np.asarray(w_prime, dtype=np.float64)
    t = _angle(w, w_prime)
    return ((math.pi - t) * w_prime + np.linalg.norm(w_prime) * math.sin(t) * w / np.linalg.norm(w)) / (
        2.0 * math.pi
    )


def tian_gradient_loop(W, W_star) -> np.ndarray:
    """Population gradient ``dL/dW`` (shape ``(K, d)``), one pair term at a time (plain loops)."""
    W = np.atleast_2d(np.asarray(W, dtype=np.float64))
    W_star = np.atleast_2d(np.asarray(W_star, dtype=np.float64))
    grad = np.zeros_like(W)
    for j in range(W.shape[0]):
        for jp in range(W.shape[0]):
            if jp == j:
                grad[j] += W[j] / 2.0  # theta = 0: (pi w_j + 0) / (2 pi)
            else:
                grad[j] += tian_pair_term(W[j], W[jp])
        for k in range(W_star.shape[0]):
            grad[j] -= tian_pair_term(W[j], W_star[k])
    return grad


def tian_gradient_vectorised(W, W_star) -> np.ndarray:
    """The same gradient with NumPy broadcasting over all pairs (student rows x all rows x d).

    Builds the ``(K, K + K*, d)`` arrays of unit-vector differences and sums, the
    ``(K, K + K*)`` angle matrix and the signed pair coefficients, then contracts: the obvious
    vectorisation of Tian's formula (the benchmark baseline).
    """
    W = np.atleast_2d(np.asarray(W, dtype=np.float64))
    W_star = np.atleast_2d(np.asarray(W_star, dtype=np.float64))
    K = W.shape[0]
    Z = np.concatenate([W, W_star], axis=0)  # (P, d), P = K + K*
    s = np.concatenate([np.ones(K), -np.ones(W_star.shape[0])])  # (P,)
    nw = np.linalg.norm(W, axis=1)  # (K,)
    nz = np.linalg.norm(Z, axis=1)  # (P,)
    wh = W / nw[:, None]  # (K, d)
    zh = Z / nz[:, None]  # (P, d)
    diff = wh[:, None, :] - zh[None, :, :]  # (K, P, d)
    summ = wh[:, None, :] + zh[None, :, :]  # (K, P, d)
    theta = 2.0 * np.arctan2(np.linalg.norm(diff, axis=2), np.linalg.norm(summ, axis=2))  # (K, P)
    # theta[j, j] = 0 exactly (diff is exactly zero), so the j' = j term is w_j / 2 as in the paper.
    coef_z = s[None, :] * (np.pi - theta) / (2.0 * np.pi)  # (K, P): coefficient of z_q
    coef_w = (s[None, :] * nz[None, :] * np.sin(theta)).sum(axis=1) / (2.0 * np.pi)  # (K,): of w_j^
    return coef_z @ Z + coef_w[:, None] * wh
