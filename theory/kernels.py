"""Arc-cosine kernel forms, derived from the Gaussian integral (SymPy does the integrals).

For ``x ~ N(0, I_d)`` and non-zero ``a, b`` at angle ``theta``, the component of ``x``
orthogonal to ``span(a, b)`` is independent of the in-plane component and has mean zero.
Every expectation below therefore reduces to an integral over the plane, in polar
coordinates ``x = r (cos phi, sin phi)`` with density ``exp(-r^2/2) r / (2 pi)``, with
``a = n_a (1, 0)`` and ``b = n_b (cos theta, sin theta)``.  Both indicators are one on the
arc ``phi in (theta - pi/2, pi/2)``, of length ``pi - theta``.

Vectors are returned as their coordinates ``(c1, c2)`` in the orthonormal basis of the
plane ``e1 = a/|a|``, ``e2 = (b/|b| - cos theta a/|a|)/sin theta`` ("e-basis"); matrices as
a 2x2 in-plane block ``B`` and the coefficient ``s`` of the identity (the orthogonal
complement), i.e. ``M = E B E^T + s I`` with ``E = [e1 e2]``.

References: Cho & Saul (2009), "Kernel methods for deep learning" (``J_0``, ``J_1``);
docs/theory.md, section 3.
"""
from .cache import cached

import sympy as sp

from .symbols import n_a, n_b, phi, r, theta

_DENSITY = sp.exp(-(r**2) / 2) * r / (2 * sp.pi)
_ARC = (phi, theta - sp.pi / 2, sp.pi / 2)


def _plane_expectation(radial_power: int, angular) -> sp.Expr:
    """``E[1{a.x>0} 1{b.x>0} r^radial_power * angular(phi)]`` over the plane."""
    radial = sp.integrate(r**radial_power * _DENSITY * 2 * sp.pi, (r, 0, sp.oo))
    ang = sp.integrate(angular, _ARC)
    return sp.simplify(radial * ang / (2 * sp.pi))


@cached
def relu_relu() -> sp.Expr:
    """``E[sigma(a.x) sigma(b.x)]`` (Cho & Saul's ``n_a n_b J_1(theta) / (2 pi)``)."""
    return _plane_expectation(2, n_a * n_b * sp.cos(phi) * sp.cos(phi - theta))


@cached
def step_step() -> sp.Expr:
    """``E[1{a.x>0} 1{b.x>0}]`` (Cho & Saul's ``J_0(theta) / (2 pi)``)."""
    return _plane_expectation(0, sp.Integer(1))


@cached
def relu_step_x() -> tuple:
    """``E[sigma(b.x) 1{a.x>0} x]`` in the e-basis: the L mean-field pair term.

    The component orthogonal to the plane vanishes (independent, mean zero).
    """
    return tuple(
        _plane_expectation(2, n_b * sp.cos(phi - theta) * f) for f in (sp.cos(phi), sp.sin(phi))
    )


@cached
def step_step_xx() -> tuple:
    """``E[1{a.x>0} 1{b.x>0} x x^T]`` as ``(B, s)``: the expected autograd Hessian block of L.

    In-plane block from the integral; the orthogonal complement contributes
    ``E[1 1] * E[x_perp x_perp^T] = step_step() * P_perp``, written as
    ``s I - s E E^T``.
    """
    c, s_ = sp.cos(phi), sp.sin(phi)
    block = sp.Matrix(2, 2, lambda i, j: _plane_expectation(2, (c, s_)[i] * (c, s_)[j]))
    k0 = step_step()
    return (sp.simplify(block - k0 * sp.eye(2)), k0)


def cho_saul_closed_forms() -> dict:
    """Cho & Saul's published closed forms (typed in, used only to check the derivation)."""
    return {
        "relu_relu": n_a * n_b * (sp.sin(theta) + (sp.pi - theta) * sp.cos(theta)) / (2 * sp.pi),
        "step_step": (sp.pi - theta) / (2 * sp.pi),
    }


def check_against_cho_saul() -> dict:
    """Symbolic differences derived - published; each is proven zero by ``simplify``."""
    ref = cho_saul_closed_forms()
    return {
        "relu_relu": sp.simplify(relu_relu() - ref["relu_relu"]),
        "step_step": sp.simplify(step_step() - ref["step_step"]),
    }
