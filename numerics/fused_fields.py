"""The three descent fields of the landscape setting, each as **one product with ``Z = [W; W*]``**: the descent
engine of :func:`numerics.landscape.descend` for NumPy arrays.

Setting: ReLU students ``W (B, K, d)`` and one teacher ``W* (K*, d)``, unit output weights, ``x ~ N(0, I)``; the
pair ``(w_i, z_q)`` of a student row with a row of ``Z = [W; W*]`` (sign ``s_q = +1`` for a student, ``-1`` for a
teacher) at angle ``theta_iq``.  The per-pair terms (docs/theory.md, sections 3-6; Tian 2017 for ``L``):

* mean field of ``L``:  ``sum_q s_q [(pi - theta) z_q + sin(theta) |z_q| w_i/|w_i|] / 2pi``;
* mean field of ``J``:  ``sum_q s_q (pi - theta) z_q / 2pi`` (the indicators' product averages to
  ``(pi - theta)/2pi``);
* boundary term of ``J`` (true minus mean gradient): ``sum_q s_q |z_q| cos(theta) e2_iq / 2pi``, with
  ``e2 = (z_q/|z_q| - cos(theta) w_i/|w_i|) / sin(theta)``; pairs in ``skip`` (a row's own pair with the teacher
  ray it is locked on) and pairs with ``sin(theta) <= numerics.flows.PARALLEL`` left out, as
  :func:`numerics.flows.batched_boundary_terms` does.

Every term is a multiple of ``z_q`` plus a multiple of ``w_i/|w_i|``, so each field is ``P @ Z + r w/|w|`` with
``P (B, K, K + K*)`` and ``r (B, K)`` elementwise in the pair angles: the Gram product, the elementwise passes
over the pairs and one more product (the floor of ``benchmarks/landscape_step.py``).  Why this is accurate
enough for a descent: a step ``W - lr F`` cannot see an error in ``F`` below ``eps |W| / lr``; every term here is
accurate to ``eps |z_q|`` absolutely, except that the boundary term of a pair at angle ``theta`` carries
``eps / sin(theta)`` (as the direction ``e2`` does in any implementation).  The angle of a pair within
:data:`numerics.compile.SWITCH` of (anti-)parallel is taken from the rows' unit vectors,
``2 atan2(|a - b|, |a + b|)``, not from the rounded cosine (whose ``arccos`` loses half the digits there);
those pairs are few and gathered.  Agreement with :func:`numerics.gradient` and the reference boundary terms:
``tests/test_fused_fields.py``.
"""
from __future__ import annotations

import math

import numpy as np

from .compile import SWITCH
from .flows import PARALLEL

NEAR_COS = math.cos(SWITCH)  # |cos| above this: the pair's angle from unit vectors (accurate), not arccos
TWO_PI = 2 * math.pi


def stacked(W: np.ndarray, W_star: np.ndarray) -> tuple:
    """``(Z (B, K + K*, d), s (K + K*,))``: the students and the teacher of every instance, and the pair signs."""
    B, K, _ = W.shape
    Z = np.concatenate([W, np.broadcast_to(W_star, (B,) + W_star.shape)], axis=1)
    s = np.concatenate([np.ones(K), -np.ones(len(W_star))])
    return Z, s


def nonzero(mask: np.ndarray) -> tuple:
    """``np.nonzero(mask)`` of a NumPy array, by one flat scan and ``unravel_index`` (several times faster on the
    pair arrays, where few entries are set)."""
    return np.unravel_index(np.flatnonzero(mask), mask.shape)


def rows(X: np.ndarray, *index) -> np.ndarray:
    """``X[index]`` for a C-contiguous ``X (..., d)`` indexed in all but its last axis: one ``np.take`` of the rows of
    ``X`` as a 2-D array at flat row indices (an order of magnitude faster than fancy indexing with several index
    arrays; the same numbers)."""
    flat = np.ravel_multi_index(index, X.shape[:-1])
    return np.take(X.reshape(-1, X.shape[-1]), flat, axis=0)


def put(X: np.ndarray, index: tuple, values) -> None:
    """``X[index] = values`` for a C-contiguous ``X`` and a full index (one entry each): by flat position."""
    X.reshape(-1)[np.ravel_multi_index(index, X.shape)] = values


def _norms(X: np.ndarray) -> np.ndarray:
    """Row norms along the last axis (one fused pass; ``np.linalg.norm`` with ``axis`` takes several)."""
    return np.sqrt(np.einsum("...d,...d->...", X, X))


def arccos(c: np.ndarray) -> np.ndarray:
    """``arccos`` of every entry, a new array: PyTorch's vectorised kernel (a third of NumPy's time here; the two agree
    to an ulp or two).  PyTorch is a dependency of the package; imported on first use."""
    import torch

    return torch.acos(torch.from_numpy(c)).numpy()


def value(W: np.ndarray, W_star: np.ndarray) -> np.ndarray:
    """``L`` at every instance of ``W (B, K, d)``: ``sum_pq s_p s_q k(z_p, z_q) / 2`` over the rows of ``Z = [W; W*]``,
    ``k(u, v) = |u| |v| (sin theta + (pi - theta) cos theta) / 2pi`` (the arc-cosine kernel of degree 1): from the
    students' pairs of :func:`angles` (the pairs a field needs), ``sum_i sum_q s_q k_iq - sum_ip k_ip``, and the
    teacher's own pairs, ``L`` of the teacher alone."""
    Z, s = stacked(W, W_star)
    _, _, cos, theta, sin, nZ, _ = angles(W, Z)
    K = W.shape[1]
    k = (sin + (math.pi - theta) * cos) * nZ[:, None, :]
    students = np.einsum("biq,bi,q->b", k, nZ[:, :K], s) - np.einsum("bip,bi->b", k[:, :, K:], nZ[:, :K])
    return (students + _teacher_pairs(W_star)) / (2 * TWO_PI)


def teacher_value(W_star: np.ndarray) -> float:
    """``L`` of the teacher alone (no students): ``sum_pq k(w*_p, w*_q) / 2``."""
    return _teacher_pairs(W_star) / 2 / TWO_PI


def _teacher_pairs(W_star: np.ndarray) -> float:
    """``2 pi sum_pq k(w*_p, w*_q)`` over the teacher's own pairs."""
    Z = W_star[None]
    _, _, cos, theta, sin, nZ, _ = angles(Z, Z)
    return float(np.einsum("bpq,bp,bq->", sin + (math.pi - theta) * cos, nZ, nZ))


def angles(W: np.ndarray, Z: np.ndarray) -> tuple:
    """``(A, U, cos, theta, sin, nZ, near)``: the unit rows ``A (B, K, d)`` of the students and ``U`` of ``Z``; for
    every pair ``(i, q)`` the cosine, angle and sine, ``(B, K, K + K*)``; the norms of ``Z``'s rows; and the indices
    ``(b, i, q)`` of the pairs within ``SWITCH`` of (anti-)parallel (a student's pair with itself not among them: its
    angle and sine are 0 exactly)."""
    nZ = _norms(Z)
    K = W.shape[1]
    if not np.all(nZ[:, :K] > 0):
        raise ValueError("a student row is zero: its angles, and so the ReLU fields, are undefined")
    U = Z / nZ[..., None]
    A = U[:, :K]
    cos = A @ np.swapaxes(U, -1, -2)
    np.clip(cos, -1.0, 1.0, out=cos)
    diagonal = (slice(None), np.arange(K), np.arange(K))
    cos[diagonal] = 0.0  # a student's pair with itself: not among the near pairs, set below
    sq = cos * cos
    b, i, q = near = nonzero(sq > NEAR_COS**2)
    cos[diagonal] = 1.0
    theta = arccos(cos)
    np.subtract(1.0, sq, out=sq)
    sin = np.sqrt(np.maximum(sq, 0.0, out=sq), out=sq)
    sin[diagonal] = 0.0
    if b.size:  # near (anti-)parallel: the angle from the unit vectors themselves
        a, u = rows(U, b, i), rows(U, b, q)  # A = U[:, :K] is a strided view: gather from U
        angle = 2 * np.arctan2(_norms(a - u), _norms(a + u))
        put(theta, near, angle)
        put(sin, near, np.sin(angle))
    return A, U, cos, theta, sin, nZ, near


def field(W: np.ndarray, W_star: np.ndarray, flow: str, locks=None) -> np.ndarray:
    """The field of ``flow`` at every instance of ``W (B, K, d)``: ``"L"`` (mean field of ``L``), ``"H-mean"`` (mean
    field of ``H = L + J``) or ``"H-true"`` (true gradient of ``H``: the mean field plus the boundary terms, each row
    locked on a teacher ray, ``locks[b, i] = p >= 0``, without its own pair's with ``w*_p``).  A locked row lies on
    its ray, as the sliding descent keeps it, so its pair is among the near ones.

    With the signed rows ``s_q z_q`` of ``Zs``: ``sum_q s_q (pi - theta) z_q / 2pi = sum(Zs) / 2 - (theta @ Zs) / 2pi``,
    so the mean fields' coefficients need no pass over the pairs beyond the angles themselves."""
    Z, s = stacked(W, W_star)
    K = W.shape[1]
    A, U, cos, theta, sin, nZ, near = angles(W, Z)
    Zs, sn = np.concatenate([W, -np.broadcast_to(W_star, Z[:, K:].shape)], axis=1), nZ * s
    weight = 1.0 if flow == "L" else 2.0  # the L and J mean fields share (pi - theta) z_q / 2pi
    r = np.matmul(sin, sn[..., None])[..., 0]  # sum_q s_q sin |z_q|: the L terms along w_i/|w_i|
    M = np.multiply(theta, -weight / TWO_PI, out=theta)
    if flow == "H-true":
        # far pairs' boundary terms: s c (z_q - |z_q| c w_i/|w_i|) / (2 pi sin); the near pairs' (0 here: an infinite
        # denominator) are added below, with e2 from the unit vectors
        put(sin, near, np.inf)
        sin[:, np.arange(K), np.arange(K)] = np.inf
        T = np.divide(cos, sin, out=sin)
        T /= TWO_PI
        M += T
        r -= np.matmul(np.multiply(T, cos, out=T), sn[..., None])[..., 0] * TWO_PI
    F = M @ Zs
    F += (weight / 2) * np.matmul(s, Z)[:, None, :]  # sum_q s_q z_q (a reduction by matmul: 7x np.sum's speed)
    F += (r / TWO_PI)[..., None] * A
    if flow == "H-true":
        _add_near_boundary_terms(F, A, U, cos, nZ, s, near, locks)
    return F


def _add_near_boundary_terms(F, A, U, cos, nZ, s, near, locks) -> None:
    """Add to ``F`` (in place) the boundary terms of the near pairs, ``e2`` formed from the unit vectors and
    re-orthogonalised (:func:`numerics.flows.batched_boundary_terms` does the same for every pair); pairs with
    ``sin <= PARALLEL`` (rows on one ray) and locked pairs are left out."""
    b, i, q = near
    if locks is not None:
        lk = locks[b, i]
        keep = (lk < 0) | (q != F.shape[1] + lk)
        b, i, q = b[keep], i[keep], q[keep]
    a, c = rows(U, b, i), cos.reshape(-1)[np.ravel_multi_index((b, i, q), cos.shape)]  # A = U[:, :K]: from U
    E = rows(U, b, q) - c[:, None] * a
    E -= np.einsum("nd,nd->n", E, a)[:, None] * a
    norm = _norms(E)
    keep = norm > PARALLEL
    coef = s[q[keep]] * nZ[b[keep], q[keep]] * c[keep] / (TWO_PI * norm[keep])
    np.add.at(F, (b[keep], i[keep]), coef[:, None] * E[keep])
