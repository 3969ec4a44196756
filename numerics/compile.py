"""Turn pair expressions ``c(n_a, n_b, theta)`` from :mod:`theory` into stable NumPy code.

This is the one place where degenerate angles are handled numerically.  Each expression
is lambdified three times (with common-subexpression elimination):

* ``theta < SWITCH``: its series about ``theta = 0`` to ``O(theta^16)`` (Laurent where the
  expression is singular; :mod:`theory.expansions`), so that cancellations such as
  ``sin t - t cos t ~ t^3/3`` lose no digits;
* ``pi - theta < SWITCH``: its series in ``psi = pi - theta``, fed with ``psi`` computed
  directly by :mod:`numerics.geometry` (never as ``pi - theta``);
* otherwise the closed form.

With ``SWITCH = 0.1`` the truncation error of the series is below ``(0.1/pi)^12 < 1e-17``
relative (the expressions are analytic on a disc of radius ``pi`` about the expansion point
once a pole of order at most one is removed), and the closed form loses at most about
``eps / SWITCH^4 ~ 2e-12`` relative to cancellation.  The tests check all three branches
against 50-digit mpmath evaluations of the closed form.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import sympy as sp

from theory.expansions import expand
from theory.symbols import n_a, n_b, psi, theta

SWITCH = 0.1


def _lambdify(args, expr):
    return sp.lambdify(args, expr, modules="numpy", cse=True)


@dataclass(frozen=True)
class PairFunction:
    """A compiled pair expression; call with arrays ``(n_a, n_b, theta, psi)``."""

    expr: sp.Expr
    closed: object = field(repr=False)
    near_zero: object = field(repr=False)
    near_pi: object = field(repr=False)
    finite_at_zero: bool = True
    finite_at_pi: bool = True
    vanishes_at_zero: bool = False
    vanishes_at_pi: bool = False

    def __call__(self, na, nb, th, ps) -> np.ndarray:
        na, nb, th, ps = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in (na, nb, th, ps)))
        lo = th < SWITCH
        hi = ~lo & (ps < SWITCH)
        if not (lo.any() or hi.any()):  # the common case: closed form everywhere, no masking
            return np.broadcast_to(self.closed(na, nb, th), na.shape).astype(np.float64, copy=True)
        out = np.empty(na.shape, dtype=np.float64)
        mid = ~(lo | hi)
        for mask, fn, ang in ((lo, self.near_zero, th), (hi, self.near_pi, ps), (mid, self.closed, th)):
            if mask.any():
                out[mask] = fn(na[mask], nb[mask], ang[mask])
        return out


@lru_cache(maxsize=None)
def compile_pair(expr: sp.Expr) -> PairFunction:
    """Compile once per expression (cached for the process)."""
    expr = sp.sympify(expr)
    ex = expand(expr)
    return PairFunction(
        expr=expr,
        closed=_lambdify((n_a, n_b, theta), expr),
        near_zero=_lambdify((n_a, n_b, theta), ex.near_zero),
        near_pi=_lambdify((n_a, n_b, psi), ex.near_pi),
        finite_at_zero=ex.finite_at_zero,
        finite_at_pi=ex.finite_at_pi,
        vanishes_at_zero=ex.vanishes_at_zero,
        vanishes_at_pi=ex.vanishes_at_pi,
    )
