"""The paper's single-node Hessian formulas, and which derived object each one is.

Oh, Lyu & Son, "Sobolev acceleration for neural networks" (arXiv:2509.19773), single-node
case ``K = K* = 1``; ``theta`` the angle between ``w`` and ``w*``, ``u = w*/|w*|``,
``v = w/|w|``, ``alpha = |w*| / (2 pi |w| sin theta)`` (docs/theory.md, section 7):

* ``nabla^2 L = I/2 - alpha (u u^T - cos(theta) v u^T + sin^2(theta) I)(I - v v^T)``
* ``nabla^2 H = I - alpha (2 u u^T - cos(theta) v u^T + sin^2(theta) I)(I - v v^T)``

Here ``a = w`` (the student row) and ``b = w*`` (the teacher), so ``v = e1``, ``u = b/|b|``.
For one node the population objects are the diagonal term (row ``w`` with itself) minus
the pair term of ``(w, w*)`` (the teacher's sign is ``-1``).
"""
from __future__ import annotations

import random

import mpmath
import sympy as sp

from . import pairs
from .cache import cached
from .calculus import PairMatrix, identity, outer, unit_a, unit_b
from .symbols import n_a, n_b, theta
from .vocabulary import HESSIAN_FIELDS as HESSIANS


def _paper(k: int) -> PairMatrix:
    u, v = unit_b(), unit_a()
    alpha = n_b / (2 * sp.pi * n_a * sp.sin(theta))
    inner = outer(u, u).scale(k) - outer(v, u).scale(sp.cos(theta)) + identity(sp.sin(theta) ** 2)
    return identity(sp.Rational(k, 2)) - (inner @ (identity() - outer(v, v))).scale(alpha)


@cached
def paper_hessian(part: str) -> PairMatrix:
    """The paper's ``nabla^2 L`` (``part="L"``) or ``nabla^2 H`` (``part="H"``), typed in from the paper."""
    if part not in ("L", "H"):
        raise ValueError("the paper gives single-node formulas for L and H only")
    return _paper(1 if part == "L" else 2).simplify()


def _single_node_part(part: str, hessian: str) -> PairMatrix:
    if hessian == "autograd":
        return pairs.self_autograd_hessian(part)
    if hessian == "mean":
        return pairs.self_jacobian(part, "mean") - pairs.mean_jacobian_a(part)
    return pairs.self_jacobian(part, "true") - pairs.true_hessian_a(part)


@cached
def single_node_hessian(part: str, hessian: str) -> PairMatrix:
    """The derived single-node ``hessian`` ("true", "mean" or "autograd") of ``part`` in {L, J, H}."""
    if hessian not in HESSIANS:
        raise ValueError(f"hessian must be one of {HESSIANS}; got {hessian!r}")
    if part == "H":
        return (_single_node_part("L", hessian) + _single_node_part("J", hessian)).simplify()
    return _single_node_part(part, hessian).simplify()


def to_explicit(m: PairMatrix, d: int, values: dict) -> sp.Matrix:
    """The ``d x d`` matrix ``E B E^T + s I`` with ``e1 = x-axis``, ``e2 = y-axis`` at ``values``."""
    E = sp.zeros(d, 2)
    E[0, 0] = E[1, 1] = 1
    return (E * m.B * E.T + m.s * sp.eye(d)).subs(values)


def _numeric_gap(diff: PairMatrix, samples: int = 6, digits: int = 30) -> float:
    """Largest entry of ``diff`` (as a 2- and 3-dimensional matrix) over seeded random points."""
    rng = random.Random(20250923)
    worst = mpmath.mpf(0)
    with mpmath.workdps(digits):
        for _ in range(samples):
            vals = {n_a: sp.Rational(rng.randint(1, 40), 8), n_b: sp.Rational(rng.randint(1, 40), 8),
                    theta: sp.Rational(rng.randint(1, 313), 100)}
            for d in (2, 3):
                M = to_explicit(diff, d, vals)
                worst = max(worst, max(abs(mpmath.mpf(sp.N(x, digits))) for x in M))
    return float(worst)


@cached
def identify() -> list:
    """For each paper formula and each derived Hessian: proven equal, or how far apart.

    Returns rows ``{"formula", "hessian", "equal": bool, "proof": "symbolic"|"numeric",
    "max_entry_gap": float}``; ``proof="symbolic"`` means every coefficient of the difference
    simplified to exactly zero (equality for every ``d``).
    """
    rows = []
    for formula in ("L", "H"):
        paper = paper_hessian(formula)
        for hess in HESSIANS:
            diff = (paper - single_node_hessian(formula, hess)).simplify()
            if diff.is_zero():
                rows.append({"formula": formula, "hessian": hess, "equal": True, "proof": "symbolic", "max_entry_gap": 0.0})
                continue
            gap = _numeric_gap(diff)
            rows.append({"formula": formula, "hessian": hess, "equal": gap < 1e-25, "proof": "numeric", "max_entry_gap": gap})
    return rows
