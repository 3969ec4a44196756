"""Component-wise SymPy forms in small ``d``, to check the invariant-based derivations.

Pair expressions ``f(n_a, n_b, theta)`` become explicit functions of the coordinates of
``a`` and ``b`` (``theta = acos(a.b / (|a||b|))``, fine for symbolic differentiation away
from the degenerate angles), and e-basis vectors and matrices become explicit coordinate
vectors and matrices.  :func:`check_pair_calculus` differentiates the explicit forms
component by component with ``sympy.diff`` and compares with the e-basis results of
:mod:`theory.calculus` at seeded random rational points, to 30 significant digits.
"""
from __future__ import annotations

import random

import mpmath
import sympy as sp

from . import pairs
from .calculus import PairMatrix, PairVector
from .symbols import n_a, n_b, theta


def coordinates(name: str, d: int) -> sp.Matrix:
    return sp.Matrix(sp.symbols(f"{name}_0:{d}", real=True))


def invariants(a: sp.Matrix, b: sp.Matrix) -> dict:
    na = sp.sqrt(a.dot(a))
    nb = sp.sqrt(b.dot(b))
    return {n_a: na, n_b: nb, theta: sp.acos(a.dot(b) / (na * nb))}


def basis(a: sp.Matrix, b: sp.Matrix) -> tuple:
    """Explicit ``e1``, ``e2`` of the pair ``(a, b)``."""
    inv = invariants(a, b)
    e1 = a / inv[n_a]
    c = a.dot(b) / (inv[n_a] * inv[n_b])
    e2 = (b / inv[n_b] - c * e1) / sp.sqrt(1 - c**2)
    return e1, e2


def vector(v: PairVector, a: sp.Matrix, b: sp.Matrix) -> sp.Matrix:
    inv = invariants(a, b)
    e1, e2 = basis(a, b)
    return v.c1.subs(inv) * e1 + v.c2.subs(inv) * e2


def matrix(m: PairMatrix, a: sp.Matrix, b: sp.Matrix) -> sp.Matrix:
    inv = invariants(a, b)
    e1, e2 = basis(a, b)
    E = e1.row_join(e2)
    return E * m.B.subs(inv) * E.T + m.s.subs(inv) * sp.eye(len(a))


def scalar(f: sp.Expr, a: sp.Matrix, b: sp.Matrix) -> sp.Expr:
    return f.subs(invariants(a, b))


def _points(d: int, count: int, seed: int):
    rng = random.Random(seed)
    for _ in range(count):
        yield [sp.Rational(rng.randint(-30, 30), 7) or sp.Rational(1, 3) for _ in range(2 * d)]


def _gap(expr_matrix: sp.Matrix, subs: dict, digits: int) -> float:
    with mpmath.workdps(digits + 10):
        return max(float(abs(sp.N(x.subs(subs), digits))) for x in expr_matrix)


def check_pair_calculus(d: int, points: int = 3, digits: int = 30, seed: int = 7) -> dict:
    """Largest entry of (component-wise derivative - e-basis result), per object, over points.

    Objects: the true gradient (``diff`` of the loss kernel), the true Hessian blocks in
    ``a`` and ``b`` (second ``diff``), the mean-field Jacobians in ``a`` and ``b`` (``diff``
    of the explicit mean field), and ``mean field == true gradient`` for ``L``.
    """
    a, b = coordinates("a", d), coordinates("b", d)
    out = {}
    for part in pairs.KERNEL_PARTS:
        f = scalar(pairs.loss_kernel(part), a, b)
        grad = sp.Matrix([sp.diff(f, x) for x in a])
        m = vector(pairs.mean_field(part), a, b)
        checks = {
            "true_gradient": grad - vector(pairs.true_gradient(part), a, b),
            "true_hessian_a": grad.jacobian(a) - matrix(pairs.true_hessian_a(part), a, b),
            "true_hessian_b": grad.jacobian(b) - matrix(pairs.true_hessian_b(part), a, b),
            "mean_jacobian_a": m.jacobian(a) - matrix(pairs.mean_jacobian_a(part), a, b),
            "mean_jacobian_b": m.jacobian(b) - matrix(pairs.mean_jacobian_b(part), a, b),
        }
        for name, expr in checks.items():
            worst = 0.0
            for vals in _points(d, points, seed):
                worst = max(worst, _gap(expr, dict(zip(list(a) + list(b), vals)), digits))
            out[f"{part}.{name}"] = worst
    return out
