"""Norms and angles of all pairs of rows, computed stably.

Angles come from ``atan2`` of a sine and a cosine, never from ``arccos`` of a clipped
cosine.  For well-separated pairs the sine is ``sqrt((1 - c)(1 + c))`` with ``c`` from
the Gram matrix (relative error below ``eps / (1 - |c|) <= 1e-13`` there).  For
near-parallel and near-anti-parallel pairs (``1 - |c| < NEAR``) the Gram entries are
recomputed **exactly** in integer arithmetic from the float inputs (Lagrange's identity
``|a|^2 |b|^2 sin^2 = |a|^2 |b|^2 - (a.b)^2``), so that both ``theta`` and
``psi = pi - theta`` are accurate to a few ulps even at ``theta = 1e-8`` and exact zeros
(exactly parallel rows) are recognised as such.  Only those pairs are refined.
"""
from __future__ import annotations

import math
from fractions import Fraction
from dataclasses import dataclass

import numpy as np

NEAR = 1e-3


@dataclass(frozen=True)
class PairGeometry:
    """Geometry of the pairs ``(A[i], B[j])``: arrays of shape ``(len(A), len(B))``."""

    na: np.ndarray  # (m, 1) norms of the rows of A
    nb: np.ndarray  # (1, n) norms of the rows of B
    theta: np.ndarray
    psi: np.ndarray  # pi - theta, computed directly
    parallel: np.ndarray  # theta == 0 exactly
    antiparallel: np.ndarray  # theta == pi exactly
    cos: np.ndarray
    sin: np.ndarray


def _exact_integers(row: np.ndarray) -> list:
    """The row as Python integers sharing one power-of-two scale (exact)."""
    mant, expo = np.frexp(row)
    nz = mant != 0
    if not nz.any():
        return [0] * row.size
    base = int(expo[nz].min()) - 53
    return [int(m * 2.0**53) << (int(e) - 53 - base) if m != 0 else 0 for m, e in zip(mant, expo)]


def _exact_angles(a: list, b: list) -> tuple:
    """``(theta, psi, parallel, antiparallel)`` for integer rows ``a``, ``b``, exactly rounded.

    ``tan(theta) = y / x`` with ``y = sqrt(|a|^2 |b|^2 - (a.b)^2)`` and ``x = a.b``, both exact
    integers up to the square root, which keeps 64 bits.  When ``y / x`` is below ``2**-900`` the
    angle (or ``pi`` minus it) is the ratio itself, rounded from the exact fraction: it may be
    subnormal, and it is never flushed to zero unless it is below the smallest float64.
    """
    aa = sum(x * x for x in a)
    bb = sum(x * x for x in b)
    ab = sum(x * y for x, y in zip(a, b))
    n = aa * bb - ab * ab  # = |a|^2 |b|^2 sin^2(theta) (scaled), exact
    if n == 0:
        return (0.0, math.pi, True, False) if ab > 0 else (math.pi, 0.0, False, True)
    m = max(0, 64 - n.bit_length() // 2)  # y * 2**m keeps at least 64 bits through isqrt
    y = math.isqrt(n << (2 * m))
    x = ab << m
    if y.bit_length() < abs(x).bit_length() - 900:  # nearly (anti-)parallel: tan = angle
        small = float(Fraction(y, abs(x)))
        # below the smallest float64 (~5e-324) the angle rounds to 0: the pair is then parallel as
        # far as float64 can tell, and is flagged so (a documented limit: kink objects raise)
        return (small, math.pi - small, small == 0, False) if x > 0 else (math.pi - small, small, False, small == 0)
    shift = max(0, max(abs(x).bit_length(), y.bit_length()) - 1000)  # both fit a float, ratio kept
    yf, xf = float(y >> shift), float(x >> shift) if x >= 0 else -float((-x) >> shift)
    return math.atan2(yf, xf), math.atan2(yf, -xf), False, False


def pair_geometry(A: np.ndarray, B: np.ndarray, shared_prefix: bool = False) -> PairGeometry:
    """Norms and stable angles of every pair ``(A[i], B[j])``; rows must be non-zero.

    ``shared_prefix=True`` declares ``A[i] is B[i]``: those self pairs get ``theta = 0``
    exactly (flagged parallel) without the exact-arithmetic refinement.
    """
    na = np.sqrt(np.einsum("ij,ij->i", A, A))[:, None]
    if shared_prefix:  # B[:len(A)] is A: reuse its norms
        nb = np.concatenate([na[:, 0], np.sqrt(np.einsum("ij,ij->i", B[len(A):], B[len(A):]))])[None, :]
    else:
        nb = np.sqrt(np.einsum("ij,ij->i", B, B))[None, :]
    c = normalised_cosines(A, B, na, nb)
    return geometry_from_cosines(c, A, B, na, nb, self_offset=0 if shared_prefix else None)


def normalised_cosines(A: np.ndarray, B: np.ndarray, na: np.ndarray, nb: np.ndarray) -> np.ndarray:
    """``(A[i] . B[j]) / (|A[i]| |B[j]|)`` clipped to ``[-1, 1]``: one matrix product, then in place."""
    c = A @ B.T
    c /= na
    c /= nb
    np.clip(c, -1.0, 1.0, out=c)  # only to keep sqrt real later; angles use atan2, not arccos
    return c


def geometry_from_cosines(c: np.ndarray, A: np.ndarray, B: np.ndarray, na: np.ndarray, nb: np.ndarray,
                          self_offset: int | None = None) -> PairGeometry:
    """The geometry of the pairs ``(A[i], B[j])`` from their :func:`normalised_cosines` ``c``.

    ``c`` is taken over (refined in place and returned as ``cos``); ``A`` may be a block of rows.
    ``self_offset``: ``A[i] is B[self_offset + i]`` (self pairs: ``theta = 0`` exactly, flagged
    parallel); ``None``: no self pairs.  Every elementwise step works in place or on one fresh
    array: these passes over the ``(rows, len(B))`` array are what the gradient spends beyond its
    two matrix products.
    """
    th, ps, s = _angles(c)
    par = np.zeros(c.shape, dtype=bool)
    anti = np.zeros(c.shape, dtype=bool)
    near = np.abs(c) > 1.0 - NEAR
    if self_offset is not None:
        i = np.arange(len(A))
        j = i + self_offset
        th[i, j], ps[i, j], s[i, j], c[i, j] = 0.0, math.pi, 0.0, 1.0
        par[i, j] = True
        near[i, j] = False
    near = np.argwhere(near) if near.any() else ()  # any() first: argwhere scans and allocates even when none
    if len(near):
        cache_a, cache_b = {}, {}
        for i, j in near:
            ia = cache_a.setdefault(i, _exact_integers(A[i]))
            jb = cache_b.setdefault(j, _exact_integers(B[j]))
            th[i, j], ps[i, j], par[i, j], anti[i, j] = _exact_angles(ia, jb)
        sub = tuple(near.T)
        s[sub] = np.sin(th[sub])
        c[sub] = np.where(th[sub] < ps[sub], np.cos(th[sub]), -np.cos(ps[sub]))
    return PairGeometry(na=na, nb=nb, theta=th, psi=ps, parallel=par, antiparallel=anti, cos=c, sin=s)


def _angles(c: np.ndarray, psi: bool = True) -> tuple:
    """``(theta, psi, sin)`` from cosines of any shape, elementwise (``psi = None`` unless asked).

    ``sin = sqrt((1 - c)(1 + c))``, angles by ``atan2``; every step in place or on one fresh array:
    these passes are what the gradient spends beyond its matrix products."""
    s = 1.0 - c
    th = np.add(1.0, c)
    s *= th
    np.sqrt(s, out=s)
    np.arctan2(s, c, out=th)
    ps = None
    if psi:
        ps = np.negative(c)
        np.arctan2(s, ps, out=ps)  # pi - theta, accurate on both sides of pi/2
    return th, ps, s


def plane_directions(A: np.ndarray, B: np.ndarray, geo: PairGeometry) -> tuple:
    """``e1[i] = A[i]/|A[i]|`` and ``e2[i, j]``, the unit vector of ``B[j]`` orthogonal to ``A[i]``.

    ``e2`` is computed as ``(b^ - a^) + 2 sin^2(theta/2) a^`` (or the anti-parallel analogue)
    to avoid cancellation, re-orthogonalised against ``a^`` once, and set to zero for exactly (anti-)parallel pairs, where every
    object this project evaluates either has a vanishing ``e2`` coefficient or raises.
    """
    ah = A / geo.na
    bh = B / geo.nb.T
    if A.shape[1] == 2:
        return ah, _plane_directions_2d(A, B, ah)
    # u is b^ - cos(theta) a^ (or its anti-parallel analogue) up to an absolute rounding error ~eps
    # along a^, while |u| ~ sin(theta): without the Gram-Schmidt step of _unit_orthogonal, e2 . e1 ~
    # eps/theta, and the Hessians, whose e2 e2^T and I coefficients are both ~1/theta and cancel along
    # e1, would be off by ~eps/theta^2 near a kink.  After it, e1 and e2 are orthonormal to rounding,
    # so an e-basis matrix is the exact one of a plane rotated by at most ~eps/theta (which moves no
    # eigenvalue: they depend on norms and angles only).
    e2 = _unit_orthogonal(ah[:, None, :], bh[None, :, :], geo.theta, geo.psi, geo.parallel | geo.antiparallel)
    return ah, e2


def _plane_directions_2d(A: np.ndarray, B: np.ndarray, ah: np.ndarray) -> np.ndarray:
    """``e2`` in d = 2: ``a^`` turned by a right angle towards ``B[j]``, exactly orthonormal to ``a^``.

    The plane is the whole space, so ``e2`` is defined even for (anti-)parallel pairs (turned
    counter-clockwise there): the d = 2 matrices write ``I`` as ``e1 e1^T + e2 e2^T`` and need it.
    The side is the sign of ``det(a, b)``, recomputed exactly where rounding could flip it.
    """
    det = A[:, None, 0] * B[None, :, 1] - A[:, None, 1] * B[None, :, 0]
    scale = np.abs(A[:, None, 0] * B[None, :, 1]) + np.abs(A[:, None, 1] * B[None, :, 0])
    for i, j in np.argwhere(np.abs(det) <= 4 * np.finfo(float).eps * scale):
        exact = Fraction(A[i, 0]) * Fraction(B[j, 1]) - Fraction(A[i, 1]) * Fraction(B[j, 0])
        det[i, j] = (exact > 0) - (exact < 0)  # its sign (as a float it may underflow to -0.0)
    side = np.where(det < 0, -1.0, 1.0)
    turned = np.stack([-ah[:, 1], ah[:, 0]], axis=1)
    return side[:, :, None] * turned[:, None, :]


def paired_plane_directions(A: np.ndarray, B: np.ndarray, theta: np.ndarray, psi: np.ndarray) -> np.ndarray:
    """``e2`` of the row pairs ``(A[i], B[i])`` with angles ``theta``, ``psi = pi - theta``: the formula
    of :func:`plane_directions` for aligned rows instead of every pair (zero for exactly
    (anti-)parallel rows in d >= 3), with ``b^ -+ a^`` formed from the rows' own difference and sum:
    ``b^ - a^ = (D - a^ (|b| - |a|)) / |b|`` with ``D = b - a`` and ``|b| - |a| = D.(b + a) / (|a| + |b|)``
    (likewise ``b^ + a^``).  Next to a teacher row (the pairs this is called for) the direction is then
    accurate to a few ulps, where unit vectors subtracted would lose ``~eps / theta``."""
    na = np.linalg.norm(A, axis=1, keepdims=True)
    ah = A / na
    if A.shape[1] == 2:
        return np.stack([_plane_directions_2d(A[i:i + 1], B[i:i + 1], ah[i:i + 1])[0, 0] for i in range(len(A))])
    nb = np.linalg.norm(B, axis=1, keepdims=True)
    D, S = B - A, B + A
    dn = np.einsum("ij,ij->i", D, S)[:, None] / (na + nb)
    return _unit_orthogonal(ah, B / nb, theta, psi, (theta == 0) | (psi == 0),
                            diff=(D - ah * dn) / nb, summ=(S + ah * dn) / nb)


def _unit_orthogonal(ah: np.ndarray, bh: np.ndarray, theta: np.ndarray, psi: np.ndarray,
                     degenerate: np.ndarray, diff=None, summ=None) -> np.ndarray:
    """The unit vector of ``bh`` orthogonal to ``ah`` (unit vectors broadcasting to ``(..., d)``, angles
    ``(...)``): ``(b^ - a^) + 2 sin^2(theta/2) a^`` (or the anti-parallel analogue) without
    cancellation, re-orthogonalised against ``a^`` once; zero where ``degenerate``."""
    small = (theta <= psi)[..., None]
    half_t = 2.0 * np.sin(theta / 2) ** 2
    half_p = 2.0 * np.sin(psi / 2) ** 2
    # diff, summ: b^ - a^ and b^ + a^ when the caller has them more accurately than from unit vectors
    u_small = ((bh - ah) if diff is None else diff) + half_t[..., None] * ah
    u_large = ((bh + ah) if summ is None else summ) - half_p[..., None] * ah
    u = np.where(small, u_small, u_large)
    u = u - np.einsum("...k,...k->...", u, np.broadcast_to(ah, u.shape))[..., None] * ah
    # Only paired_plane_directions' diff/summ can make u's squared norm overflow: for a row b more than
    # ~2**560 times shorter than a, their rounding (~eps |a| / |b| against a unit vector) exceeds 2**512.
    # The norm is then inf and e2 = u / inf = 0 (as without this errstate, which only keeps NumPy from
    # reporting it).  Harmless: that e2 is only multiplied by the boundary coefficient |b| cos(theta) /
    # (2 pi) and added to row a of the gradient, whose own term alone is |a| / 2: below 2**-500 of its ulp.
    with np.errstate(over="ignore"):
        norm = np.linalg.norm(u, axis=-1, keepdims=True)
    degenerate = degenerate[..., None] | (norm == 0)
    return np.where(degenerate, 0.0, u / np.where(norm == 0, 1.0, norm))

