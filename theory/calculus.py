"""Vector calculus on a pair of rows, written through the invariants ``(n_a, n_b, theta)``.

A pair quantity depends on the rows ``a`` and ``b`` only through ``n_a = |a|``,
``n_b = |b|`` and the angle ``theta``.  Vectors built from the pair live in the plane
``span(a, b)``; we write them in the orthonormal **e-basis**

    e1 = a/|a|,    e2 = (b/|b| - cos(theta) a/|a|) / sin(theta),

and matrices as ``M = E B E^T + s I`` (``E = [e1 e2]``, ``B`` a 2x2 block, ``s`` the
coefficient of the identity, which is what acts on the orthogonal complement).  One
derivation then serves every dimension ``d``; :mod:`theory.explicit` checks it against
component-wise SymPy differentiation for ``d = 2, 3``.

The chain-rule table (elementary facts, used by every derivative here):

* ``grad_a n_a = e1``, ``grad_a theta = -e2 / n_a``;
* ``grad_b n_b = b/|b| = cos(theta) e1 + sin(theta) e2``,
  ``grad_b theta = -(sin(theta) e1 - cos(theta) e2) / n_b``;
* ``d e1 / d a = (I - e1 e1^T) / n_a``,
  ``d e2 / d a = -(e1 e2^T + cot(theta) P) / n_a``,
  ``d e1 / d b = 0``, ``d e2 / d b = P / (n_b sin(theta))``,

with ``P = I - e1 e1^T - e2 e2^T`` the projector onto the orthogonal complement.
"""
from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from .symbols import n_a, n_b, theta

_S, _C = sp.sin(theta), sp.cos(theta)


def _simp(e):
    return sp.simplify(sp.trigsimp(sp.together(e)))


@dataclass(frozen=True)
class PairVector:
    """``c1 e1 + c2 e2``: a vector in the plane of the pair, in the e-basis."""

    c1: sp.Expr
    c2: sp.Expr

    def __add__(self, other: "PairVector") -> "PairVector":
        return PairVector(self.c1 + other.c1, self.c2 + other.c2)

    def __sub__(self, other: "PairVector") -> "PairVector":
        return PairVector(self.c1 - other.c1, self.c2 - other.c2)

    def scale(self, k) -> "PairVector":
        return PairVector(k * self.c1, k * self.c2)

    def simplify(self) -> "PairVector":
        return PairVector(_simp(self.c1), _simp(self.c2))

    def span_coefficients(self) -> tuple:
        """``(alpha, beta)`` with the vector ``= alpha a/|a| + beta b/|b|`` (simplified)."""
        beta = _simp(self.c2 / _S)
        alpha = _simp(self.c1 - self.c2 * _C / _S)
        return alpha, beta

    def as_matrix(self) -> sp.Matrix:
        return sp.Matrix([self.c1, self.c2])

    def is_zero(self) -> bool:
        return all(_simp(c) == 0 for c in (self.c1, self.c2))


@dataclass(frozen=True)
class PairMatrix:
    """``E B E^T + s I``: a d x d matrix built from a pair, in the e-basis."""

    B: sp.Matrix
    s: sp.Expr

    def __add__(self, other: "PairMatrix") -> "PairMatrix":
        return PairMatrix(self.B + other.B, self.s + other.s)

    def __sub__(self, other: "PairMatrix") -> "PairMatrix":
        return PairMatrix(self.B - other.B, self.s - other.s)

    def scale(self, k) -> "PairMatrix":
        return PairMatrix(k * self.B, k * self.s)

    def __matmul__(self, other: "PairMatrix") -> "PairMatrix":
        # (E B E^T + s I)(E C E^T + t I) = E (BC + t B + s C) E^T + s t I, since E^T E = I_2.
        return PairMatrix(self.B * other.B + other.s * self.B + self.s * other.B, self.s * other.s)

    @property
    def T(self) -> "PairMatrix":
        return PairMatrix(self.B.T, self.s)

    def simplify(self) -> "PairMatrix":
        return PairMatrix(self.B.applyfunc(_simp), _simp(self.s))

    def coefficients(self) -> tuple:
        """``(B11, B12, B21, B22, s)``."""
        return (self.B[0, 0], self.B[0, 1], self.B[1, 0], self.B[1, 1], self.s)

    def is_zero(self) -> bool:
        return all(_simp(c) == 0 for c in self.coefficients())


def identity(k=1) -> PairMatrix:
    return PairMatrix(sp.zeros(2, 2), sp.sympify(k))


def complement_projector(k=1) -> PairMatrix:
    """``k P = k (I - e1 e1^T - e2 e2^T)``."""
    return PairMatrix(-k * sp.eye(2), sp.sympify(k))


def outer(u: PairVector, v: PairVector) -> PairMatrix:
    return PairMatrix(u.as_matrix() * v.as_matrix().T, sp.Integer(0))


def unit_a() -> PairVector:
    """``a/|a| = e1``."""
    return PairVector(sp.Integer(1), sp.Integer(0))


def unit_b() -> PairVector:
    """``b/|b| = cos(theta) e1 + sin(theta) e2``."""
    return PairVector(_C, _S)


def grad_a(f: sp.Expr) -> PairVector:
    """Gradient in ``a`` of a scalar ``f(n_a, n_b, theta)``."""
    return PairVector(sp.diff(f, n_a), -sp.diff(f, theta) / n_a)


def grad_b(f: sp.Expr) -> PairVector:
    """Gradient in ``b`` of a scalar ``f(n_a, n_b, theta)``."""
    fn, ft = sp.diff(f, n_b), sp.diff(f, theta)
    return PairVector(fn * _C - ft * _S / n_b, fn * _S + ft * _C / n_b)


def jacobian_a(v: PairVector) -> PairMatrix:
    """``d v / d a`` (rows: components of ``v``; columns: components of ``a``)."""
    g1, g2 = grad_a(v.c1), grad_a(v.c2)
    e1, e2 = unit_a(), PairVector(sp.Integer(0), sp.Integer(1))
    d_e1 = (outer(e2, e2) + complement_projector()).scale(1 / n_a)
    d_e2 = (outer(e1, e2) + complement_projector(_C / _S)).scale(-1 / n_a)
    return outer(e1, g1) + outer(e2, g2) + d_e1.scale(v.c1) + d_e2.scale(v.c2)


def jacobian_b(v: PairVector) -> PairMatrix:
    """``d v / d b`` (rows: components of ``v``; columns: components of ``b``)."""
    g1, g2 = grad_b(v.c1), grad_b(v.c2)
    e1, e2 = unit_a(), PairVector(sp.Integer(0), sp.Integer(1))
    d_e2 = complement_projector(1 / (n_b * _S))
    return outer(e1, g1) + outer(e2, g2) + d_e2.scale(v.c2)
