"""Norms, stable angles and plane directions of all pairs of rows, on any array namespace.

The array-namespace twin of :mod:`numerics.geometry` for :mod:`numerics.backend` (PyTorch, NumPy,
array-api-strict, ...): written with array-API functions only (``xp`` comes from
``array_api_compat.array_namespace``), for leading batch dimensions, and differentiable where the
objects are (no in-place writes, no Python branches on values).

Angles come from the half-angle formulas on unit vectors,
``theta = 2 atan2(|a^ - b^|, |a^ + b^|)`` and ``psi = pi - theta = 2 atan2(|a^ + b^|, |a^ - b^|)``
(no ``arccos``, no ``1 - cos``), with ``sin`` and ``cos`` from the same half-angle sines, and
``a^ - b^`` formed from ``a - b`` (see :func:`pairs`).  Relative accuracy of an angle ``theta``
near 0 (or ``psi`` near pi): ``~eps (1 + ||a| - |b|| / (max(|a|, |b|) theta))``, a few ulps near a teacher
row, ``eps / theta`` at worst (the NumPy path refines those pairs in exact arithmetic instead).
The price is memory: the differences of all pairs, ``(..., m, n, d)`` entries (the NumPy path
needs only ``(m, n)``).
Equal rows (and a row against its negative) get ``theta = 0`` (``pi``) exactly, with zero derivative
through the norm of the zero difference (PyTorch's convention, also the right limit here).  Other
exactly (anti-)parallel pairs, such as ``b = 2 a``, get an angle of the size of the rounding of
``a^ -+ b^`` instead of 0; :func:`numerics.backend.unresolved_kinks` bounds it, and the caller refuses
every pair within that bound wherever a pair expression's ``theta``-derivative does not vanish at a kink.
"""
from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class XpPairs:
    """Geometry of the pairs ``(A[..., i, :], B[..., j, :])``: angle arrays of shape ``(..., m, n)``."""

    na: object  # (..., m, 1) norms of the rows of A
    nb: object  # (..., 1, n) norms of the rows of B
    ua: object  # (..., m, 1, d) unit rows of A
    ub: object  # (..., 1, n, d) unit rows of B
    theta: object
    psi: object  # pi - theta, computed directly
    sin: object
    cos: object
    half_sin: object  # sin(theta / 2) = |a^ - b^| / 2
    half_cos: object  # cos(theta / 2) = |a^ + b^| / 2
    diff: object  # a^ - b^, (..., m, n, d), formed from a - b (accurate where it is small)
    summ: object  # a^ + b^, likewise from a + b


def row_norms(xp, A):
    """``|A[..., i, :]|`` as ``(..., m)``."""
    return xp.sqrt(xp.sum(A * A, axis=-1))


def safe_norm(xp, v):
    """``|v|`` over the last axis, with every derivative zero where ``v`` is exactly zero (a self pair, an
    exactly parallel pair): ``sqrt`` is never evaluated at 0, so no order of derivative gives NaN."""
    sq = xp.sum(v * v, axis=-1)
    zero = sq == 0
    return xp.where(zero, 0 * sq, xp.sqrt(xp.where(zero, xp.ones_like(sq), sq)))


def pairs(xp, A, B) -> XpPairs:
    """Norms, ``theta``, ``psi``, ``sin``, ``cos`` of every pair of rows of ``A`` and ``B``."""
    na = row_norms(xp, A)[..., :, None]
    nb = row_norms(xp, B)[..., None, :]
    ua = (A / na)[..., :, None, :]
    ub = (B / xp.matrix_transpose(nb))[..., None, :, :]
    # a^ -+ b^ from the exact-as-floats differences of the rows themselves: with D = a - b, S = a + b
    # and g = |a| - |b| = D.S / (|a| + |b|) (no cancellation), a^ - b^ = (D - b^ g) / |a| and
    # a^ + b^ = (S + b^ g) / |a|, or, dividing by |b| instead, (D - a^ g) / |b| and (S - a^ g) / |b|.
    # Near a kink the small one of the two is then accurate to ~eps relative, times (relative gap of the
    # norms) / angle, instead of eps / angle.  The longer row's norm is the divisor: the rounding of
    # D - u g is ~eps |D|, and |D| <= 2 max(|a|, |b|), so the error stays ~eps whatever the ratio of
    # the norms (divided by the shorter norm it would grow like that ratio: 1e-7 at a ratio of 1e9).
    Ab, Bb = A[..., :, None, :], B[..., None, :, :]
    D, S = Ab - Bb, Ab + Bb
    dn = (xp.sum(D * S, axis=-1) / (na + nb))[..., None]
    a_longer = (na >= nb)[..., None]  # (..., m, n, 1)
    shorter_unit = xp.where(a_longer, ub, ua)
    longer_norm = xp.where(a_longer, na[..., None], nb[..., None])
    diff = (D - shorter_unit * dn) / longer_norm
    summ = (S + xp.where(a_longer, dn, -dn) * shorter_unit) / longer_norm
    hs = safe_norm(xp, diff) / 2  # sin(theta / 2)
    hc = safe_norm(xp, summ) / 2  # cos(theta / 2)
    theta = 2 * xp.atan2(hs, hc)
    psi = 2 * xp.atan2(hc, hs)
    # the unit vectors' norms round to 1 within a few ulps: normalise the half-angle pair once more
    r = xp.sqrt(hs * hs + hc * hc)
    hs, hc = hs / r, hc / r
    sin = 2 * hs * hc
    cos = (hc - hs) * (hc + hs)
    return XpPairs(na=na, nb=nb, ua=ua, ub=ub, theta=theta, psi=psi, sin=sin, cos=cos, half_sin=hs, half_cos=hc,
                   diff=diff, summ=summ)


def plane_directions(xp, geo: XpPairs, degenerate):
    """``e2[..., i, j, :]``: the unit vector of ``B[j]`` orthogonal to ``A[i]`` (zero where ``degenerate``).

    ``(b^ - a^) + 2 sin^2(theta/2) a^`` below a right angle and ``(b^ + a^) - 2 sin^2(psi/2) a^``
    above it (no cancellation), made orthogonal to ``a^`` once more, as in
    :func:`numerics.geometry.plane_directions`, but with ``a^ -+ b^`` formed from ``a -+ b``
    (:func:`pairs`): next to a teacher row the direction is then accurate to a few ulps instead of
    ``eps / theta``.  In ``d = 2`` it is ``a^`` turned by a right angle
    towards ``b`` (counter-clockwise for exactly (anti-)parallel pairs), defined everywhere.
    """
    ua, ub = geo.ua, geo.ub
    if ua.shape[-1] == 2:
        det = ua[..., 0] * ub[..., 1] - ua[..., 1] * ub[..., 0]
        side = xp.where(det < 0, -1.0, 1.0)[..., None]
        turned = xp.stack([-ua[..., 1], ua[..., 0]], axis=-1)
        return side * turned
    small = (geo.theta <= geo.psi)[..., None]
    hp = geo.half_cos  # sin(psi / 2)
    u_small = (2 * geo.half_sin**2)[..., None] * ua - geo.diff
    u_large = geo.summ - (2 * hp**2)[..., None] * ua
    u = xp.where(small, u_small, u_large)
    u = u - xp.sum(u * ua, axis=-1)[..., None] * ua
    norm = safe_norm(xp, u)[..., None]
    zero = degenerate[..., None] | (norm == 0)
    return xp.where(zero, 0.0, u / xp.where(zero, 1.0, norm))


HALF_PI = math.pi / 2
