"""Pair-level building blocks of the population quantities, for each part ``L`` and ``J``.

Every population quantity of the student-teacher network is a signed sum over pairs of
rows (see :mod:`theory.population`).  This module derives, for one ordered pair
``(a, b)`` — ``a`` the student row being differentiated, ``b`` any other row — the
pieces those sums are made of.  ``H`` is ``L + J`` throughout.

Objects (docs/theory.md, sections 4 and 5):

* ``loss_kernel``: ``E[sigma(a.x) sigma(b.x)]`` (L) or ``E[1{a.x>0} 1{b.x>0}] a.b`` (J).
* ``mean_field``: the expectation of the per-sample autograd gradient term that row ``b``
  contributes to row ``a``: ``E[sigma(b.x) 1{a.x>0} x]`` (L), ``E[1{a.x>0}1{b.x>0}] b`` (J).
* ``true_gradient``: the gradient in ``a`` of ``loss_kernel`` (its contribution to the
  gradient of the population loss).
* ``mean_jacobian_a/_b``, ``true_hessian_a/_b``: their Jacobians in ``a`` and in ``b``.
* ``autograd_hessian``: the expected per-sample autograd Hessian block between two student
  rows: ``E[1{a.x>0}1{b.x>0} x x^T]`` (L; autograd sets ``sigma'' = 0``) and
  ``E[1{a.x>0}1{b.x>0}] I`` (J).
* ``self_*``: the diagonal (``b = a``) terms, derived by setting ``theta = 0, n_b = n_a``.

Stable rewrites for pairs near each other (``b`` the teacher row matched to student ``a``):

* ``loss_difference``: ``D = f(a,a)/2 - f(a,b) + f(b,b)/2 = (n_a - n_b)^2/4 + rest``;
  ``loss_difference_rest`` is ``rest``, proven equal by SymPy and free of cancellation.
* ``mean_field_remainder``: ``rho = b/2 - m(a, b)``, so that the pair's share of the mean
  field ``a/2 - m(a, b) = (a - b)/2 + rho`` with no O(1) terms cancelling.
"""
from __future__ import annotations

from .cache import cached

import sympy as sp

from . import kernels
from .calculus import PairMatrix, PairVector, grad_a, identity, jacobian_a, jacobian_b
from .symbols import n_a, n_b, theta

# the parts with pair kernels of their own (H = L + J is their sum)
KERNEL_PARTS = ("L", "J")


def _check_part(part: str) -> None:
    if part not in KERNEL_PARTS:
        raise ValueError(f"part must be one of {KERNEL_PARTS} at the pair level (H = L + J); got {part!r}")


@cached
def loss_kernel(part: str) -> sp.Expr:
    _check_part(part)
    if part == "L":
        return kernels.relu_relu()
    return sp.simplify(kernels.step_step() * n_a * n_b * sp.cos(theta))


@cached
def self_loss_kernel(part: str) -> sp.Expr:
    """``f(a, a)`` as a function of ``n_a``."""
    return sp.simplify(loss_kernel(part).subs({theta: 0, n_b: n_a}))


@cached
def mean_field(part: str) -> PairVector:
    _check_part(part)
    if part == "L":
        return PairVector(*kernels.relu_step_x()).simplify()
    k0 = kernels.step_step()
    return PairVector(k0 * n_b * sp.cos(theta), k0 * n_b * sp.sin(theta)).simplify()


@cached
def self_mean_field(part: str) -> PairVector:
    """The per-sample term of row ``a`` on itself, in expectation (``E[sigma(a.x)x]`` / ``a/2``)."""
    m = mean_field(part)
    return PairVector(m.c1.subs({theta: 0, n_b: n_a}), sp.Integer(0)).simplify()


@cached
def true_gradient(part: str) -> PairVector:
    return grad_a(loss_kernel(part)).simplify()


@cached
def self_true_gradient(part: str) -> PairVector:
    """Gradient of ``f(a, a)/2`` (the diagonal term of the half-sum over ordered pairs)."""
    return PairVector(sp.diff(self_loss_kernel(part), n_a) / 2, sp.Integer(0)).simplify()


@cached
def mean_jacobian_a(part: str) -> PairMatrix:
    return jacobian_a(mean_field(part)).simplify()


@cached
def mean_jacobian_b(part: str) -> PairMatrix:
    return jacobian_b(mean_field(part)).simplify()


@cached
def true_hessian_a(part: str) -> PairMatrix:
    return jacobian_a(true_gradient(part)).simplify()


@cached
def true_hessian_b(part: str) -> PairMatrix:
    return jacobian_b(true_gradient(part)).simplify()


@cached
def self_jacobian(part: str, field: str) -> PairMatrix:
    """Jacobian of the diagonal term: ``I/2`` for both parts and both fields (derived)."""
    v = self_mean_field(part) if field == "mean" else self_true_gradient(part)
    return jacobian_a(v).simplify()


@cached
def autograd_hessian(part: str) -> PairMatrix:
    _check_part(part)
    if part == "L":
        B, s = kernels.step_step_xx()
        return PairMatrix(B, s).simplify()
    return identity(kernels.step_step())


@cached
def self_autograd_hessian(part: str) -> PairMatrix:
    """``E[1{a.x>0} x x^T] = I/2`` (L) and ``E[1{a.x>0}] I = I/2`` (J), from theta -> 0."""
    m = autograd_hessian(part)
    return PairMatrix(m.B.subs(theta, 0), m.s.subs(theta, 0)).simplify()


@cached
def loss_difference(part: str) -> sp.Expr:
    f = loss_kernel(part)
    fa = self_loss_kernel(part)
    return fa / 2 - f + fa.subs(n_a, n_b) / 2


@cached
def loss_difference_rest(part: str) -> sp.Expr:
    """``D - (n_a - n_b)^2/4``, simplified; :func:`proofs` shows the split is exact."""
    return sp.factor(sp.simplify(loss_difference(part) - (n_a - n_b) ** 2 / 4))


@cached
def mean_field_remainder(part: str) -> PairVector:
    """``rho = b/2 - m(a, b)`` in the e-basis (``b/|b| = cos theta e1 + sin theta e2``)."""
    m = mean_field(part)
    return PairVector(n_b * sp.cos(theta) / 2 - m.c1, n_b * sp.sin(theta) / 2 - m.c2).simplify()


def proofs() -> dict:
    """Symbolic identities this module relies on; each value simplifies to exactly zero."""
    out = {}
    for part in KERNEL_PARTS:
        out[f"{part}: loss difference split"] = sp.simplify(
            loss_difference(part) - (n_a - n_b) ** 2 / 4 - loss_difference_rest(part)
        )
        rho = mean_field_remainder(part)
        m = mean_field(part)
        out[f"{part}: mean-field remainder"] = sp.simplify(
            (m.c1 + rho.c1 - n_b * sp.cos(theta) / 2) ** 2 + (m.c2 + rho.c2 - n_b * sp.sin(theta) / 2) ** 2
        )
        self_j = self_jacobian(part, "mean") - identity(sp.Rational(1, 2))
        out[f"{part}: self Jacobian is I/2"] = sum(sp.Abs(c) for c in self_j.simplify().coefficients())
    return out
