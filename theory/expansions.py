"""Series of pair expressions about the degenerate angles, and their limits there.

Used by :mod:`theory.codegen`, which writes the code :mod:`numerics` runs, to evaluate
expressions without cancellation near ``theta = 0`` and ``theta = pi``, and to decide whether
an object exists at exactly parallel or anti-parallel rows.
"""
from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from .cache import cached
from .symbols import psi, theta

ORDER = 16


@dataclass(frozen=True)
class Expansion:
    near_zero: sp.Expr  # series in theta about 0, to O(theta**ORDER), Horner form when polynomial
    near_pi: sp.Expr  # series in psi = pi - theta about psi = 0
    finite_at_zero: bool
    vanishes_at_zero: bool
    finite_at_pi: bool
    vanishes_at_pi: bool


def _limit(expr, at) -> tuple:
    """``(finite, vanishes)`` of ``expr`` as ``theta -> at`` from inside ``(0, pi)``."""
    value = sp.simplify(sp.limit(expr, theta, at, "+" if at == 0 else "-"))
    finite = not value.has(sp.oo, -sp.oo, sp.zoo, sp.nan)
    return finite, bool(finite and value == 0)


def _horner(series, var):
    poly = sp.expand(series)
    return sp.horner(poly, wrt=var) if poly.is_polynomial(var) else poly


@cached
def expand(expr: sp.Expr) -> Expansion:
    expr = sp.sympify(expr)
    near0 = sp.series(expr, theta, 0, ORDER).removeO()
    at_pi = sp.expand_trig(expr.subs(theta, sp.pi - psi))
    nearpi = sp.series(at_pi, psi, 0, ORDER).removeO()
    (f0, v0), (fpi, vpi) = _limit(expr, 0), _limit(expr, sp.pi)
    return Expansion(_horner(near0, theta), _horner(nearpi, psi), f0, v0, fpi, vpi)
