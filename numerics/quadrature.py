"""Quadrature witness: the pair expectations by ``mpmath.quad`` in polar coordinates.

Independent of the closed forms (imports nothing from :mod:`theory`).  For ``x ~ N(0, I_d)``
and rows ``a = n_a (1, 0)``, ``b = n_b (cos t, sin t)`` in their own plane (the orthogonal
part of ``x`` is independent and has mean zero, so only the plane matters), write
``x = r (cos phi, sin phi)`` with density ``exp(-r^2/2) r / (2 pi)``.  Each expectation is a
product of a radial integral over ``[0, inf)`` and an angular integral over ``[-pi, pi]``
split at the kinks of the integrand (``phi = +-pi/2``, ``t +- pi/2``, wrapped), both by
``mpmath.quad`` at ``dps`` digits.

Returned (vectors in the orthonormal plane basis ``e1 = a/|a|``, ``e2``):

* ``relu_relu``: ``E[relu(a.x) relu(b.x)]``;
* ``step_step``: ``E[1{a.x>0} 1{b.x>0}]``;
* ``relu_step_x``: ``E[relu(b.x) 1{a.x>0} x]`` (2 components);
* ``step_step_xx``: ``E[1{a.x>0} 1{b.x>0} x x^T]`` in-plane block (2 x 2).
"""
from __future__ import annotations

import mpmath


def _breakpoints(t):
    pi = mpmath.pi
    pts = {-pi, pi}
    for p in (pi / 2, -pi / 2, t + pi / 2, t - pi / 2):
        p = (p + pi) % (2 * pi) - pi  # wrap into [-pi, pi)
        pts.add(p)
    return sorted(pts)


def _angular(fn, t):
    pts = _breakpoints(t)
    return mpmath.fsum(mpmath.quad(fn, [lo, hi]) for lo, hi in zip(pts, pts[1:]) if hi > lo)


def _radial(power: int):
    """``int_0^inf r^power exp(-r^2/2) r dr``."""
    return mpmath.quad(lambda r: r**power * mpmath.exp(-r * r / 2) * r, [0, mpmath.inf])


def pair_expectations(n_a, n_b, t, dps: int = 40) -> dict:
    """All pair expectations at ``dps`` significant digits (``t`` in ``[0, pi]``; inputs as mpf/str/float)."""
    with mpmath.workdps(dps):
        n_a, n_b, t = mpmath.mpf(n_a), mpmath.mpf(n_b), mpmath.mpf(t)
        cos, sin = mpmath.cos, mpmath.sin

        def pos(v):
            return v if v > 0 else mpmath.mpf(0)

        def step(v):
            return mpmath.mpf(1) if v > 0 else mpmath.mpf(0)

        two_pi = 2 * mpmath.pi
        r0, r2 = _radial(0), _radial(2)
        out = {
            "relu_relu": r2 * n_a * n_b * _angular(lambda p: pos(cos(p)) * pos(cos(p - t)), t) / two_pi,
            "step_step": r0 * _angular(lambda p: step(cos(p)) * step(cos(p - t)), t) / two_pi,
            "relu_step_x": [
                r2 * n_b * _angular(lambda p, f=f: pos(cos(p - t)) * step(cos(p)) * f(p), t) / two_pi
                for f in (cos, sin)
            ],
            "step_step_xx": [
                [r2 * _angular(lambda p, f=f, g=g: step(cos(p)) * step(cos(p - t)) * f(p) * g(p), t) / two_pi
                 for g in (cos, sin)]
                for f in (cos, sin)
            ],
        }
        return out


def homogeneous_kernel(q: int, c_plus, c_minus, n_a, n_b, t, dps: int = 40):
    """``E[sigma(a.x) sigma(b.x)]`` for ``sigma(u) = c_plus u_+^q + c_minus u_-^q`` (``u_- = max(-u, 0)``;
    ``q = 0``: the steps ``c_plus 1{u > 0} + c_minus 1{u < 0}``), at ``dps`` digits: the kernels of the
    activation family and of its derivatives (:mod:`numerics.family`), from the definition."""
    with mpmath.workdps(dps):
        n_a, n_b, t = mpmath.mpf(n_a), mpmath.mpf(n_b), mpmath.mpf(t)
        c_plus, c_minus = mpmath.mpf(c_plus), mpmath.mpf(c_minus)

        def unit_sigma(v):  # sigma on the unit circle: sigma(n r v) = (n r)^q unit_sigma(v)
            if v > 0:
                return c_plus * v**q
            return c_minus * (-v) ** q if v < 0 else mpmath.mpf(0)

        angular = _angular(lambda p: unit_sigma(mpmath.cos(p)) * unit_sigma(mpmath.cos(p - t)), t)
        return _radial(2 * q) * n_a**q * n_b**q * angular / (2 * mpmath.pi)
