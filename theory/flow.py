"""Predicted local convergence rates of the single-node gradient flows (``K = K* = 1``).

The flows are ``dw/dt = -F(w)`` with ``F`` one of

* ``"L"``: the mean field of ``L`` (equal to the true gradient of ``L``);
* ``"H-mean"``: the mean field of ``H`` (what autograd's per-sample gradient averages to; the
  paper's convention, docs/theory.md, section 4);
* ``"H-true"``: the true gradient of the population ``H``.

**Object.** The linearisation of a flow at the teacher is the **Jacobian of the mean field**
(``numerics.hessian(..., "mean")``), read off :func:`theory.paper.single_node_hessian` (which
is derived from :mod:`theory.pairs`).  Near the teacher it is ``E B E^T + s I`` in the e-basis
of the pair ``(w, w*)`` (``e1 = w/|w|``, ``e2`` the unit direction from ``w`` towards ``w*``
orthogonal to ``w``), so its eigenvalues are those of ``B + s I_2`` and ``s`` (``d - 2`` times).

**Limit.**  At the teacher ``theta = 0`` and the Jacobian of ``H``'s mean field does not exist
(its ``B_12`` entry tends to ``-|w*|/(2 pi |w|)`` along ``e2``, a direction that depends on how
``w`` approaches ``w*``).  We therefore take the limit ``theta -> 0+`` at fixed norms and then
``n_b = n_a`` (the teacher), i.e. the limit along any approach; the *eigenvalues* have a limit
that does not depend on the direction, the matrix does not.  For ``L`` the Jacobian exists
at the teacher and equals ``I/2`` (docs/theory.md, section 7: continuous extension of the paper's formula).

**True gradient of H.**  The true gradient equals the mean field plus the boundary term of the
indicators, ``(n_b cos theta / 2 pi) e2`` per pair (teacher sign ``-1``): a jump of size
``|w*| / 2 pi`` across the ray of ``w*``, where the population ``J`` has a cone-shaped kink
(``J ~ |w||w*| theta / 2 pi``).  The flow reaches the ray in finite time and then slides on it
(Filippov / minimal-norm subgradient); on the ray only the radial component survives and it
decays at the rate :func:`sliding_radial_rate`.  No Jacobian exists there; the predicted
angular hitting time is :func:`angular_hitting_time` (first order in ``|w - w*|``).
"""
from __future__ import annotations

import math

import sympy as sp

from . import pairs, paper, vocabulary
from .cache import cached
from .symbols import n_a, n_b, theta

FLOWS = vocabulary.FLOWS


def _check(part: str) -> None:
    if part not in ("L", "H"):
        raise ValueError(f"part must be 'L' or 'H'; got {part!r}")


@cached
def jacobian_near_teacher(part: str) -> tuple:
    """``(B, s)`` of the single-node mean-field Jacobian of ``part`` at angle ``theta`` (any norms)."""
    _check(part)
    m = paper.single_node_hessian(part, "mean")
    return m.B, m.s


@cached
def eigenvalues_near_teacher(part: str) -> tuple:
    """The eigenvalues ``(lambda, multiplicity in d)`` of the mean-field Jacobian at ``(n_a, n_b, theta)``.

    ``B + s I_2`` gives two eigenvalues (multiplicity 1 each); ``s`` has multiplicity ``d - 2``.
    Returned as ``((expr, 1), (expr, 1), (s, "d-2"))`` with simplified SymPy expressions.
    """
    B, s = jacobian_near_teacher(part)
    M = (B + s * sp.eye(2)).applyfunc(sp.simplify)
    ev = list(M.eigenvals(multiple=True))
    ev = [sp.simplify(e) for e in ev]
    return ((ev[0], 1), (ev[1], 1), (sp.simplify(s), "d-2"))


@cached
def teacher_limit(part: str) -> dict:
    """The limit ``theta -> 0+``, then ``n_b = n_a``: ``B``, ``s``, eigenvalues, and the rate.

    ``"eigenvalues"``: the limits of the three eigenvalues (``B + s I_2`` and ``s``), sorted.
    ``"rate"`` is the smallest real part of the limiting eigenvalues (the predicted exponential
    rate of ``|w - w*|``); ``"jordan"`` is the limiting off-diagonal ``B_12`` (non-zero for ``H``:
    the limiting Jacobian ``I - e1 e2^T / 2 pi`` is not diagonalisable, so the distance decays
    as ``(a + b t) e^{-t}`` rather than a pure exponential).
    """
    B, s = jacobian_near_teacher(part)
    lim = lambda e: sp.simplify(sp.limit(e, theta, 0, "+").subs(n_b, n_a))  # noqa: E731
    Bl = B.applyfunc(lim)
    sl = lim(s)
    eig = sorted([sp.simplify(Bl[0, 0] + sl), sp.simplify(Bl[1, 1] + sl), sl], key=lambda e: float(sp.re(e)))
    return {"B": Bl, "s": sl, "eigenvalues": eig, "rate": sp.re(eig[0]), "jordan": Bl[0, 1]}


def predicted_rate(flow: str) -> sp.Expr:
    """Predicted local exponential rate of ``|w - w*|`` for ``flow`` in :data:`FLOWS` (exact)."""
    if flow == "L":
        return teacher_limit("L")["rate"]
    if flow == "H-mean":
        return teacher_limit("H")["rate"]
    if flow == "H-true":
        return sliding_radial_rate()
    raise ValueError(f"flow must be one of {FLOWS}; got {flow!r}")


@cached
def boundary_jump() -> tuple:
    """``true - mean`` gradient pair term of ``J`` in the e-basis, and its size at ``theta = 0``."""
    diff = (pairs.true_gradient("J") - pairs.mean_field("J")).simplify()
    size = sp.simplify(sp.limit(diff.c2, theta, 0, "+"))
    return diff, size


@cached
def sliding_radial_rate() -> sp.Expr:
    """Rate of the radial component on the teacher ray (``theta = 0``) under the true gradient of ``H``.

    On the ray the boundary term is orthogonal to ``w`` (it lies along ``e2``), so the radial
    component of the true gradient is that of the mean field:
    ``r(n_a) = self_term(n_a) - c1(mean-field pair term)`` at ``theta = 0``; the rate is
    ``dr/dn_a`` at ``n_a = n_b``.
    """
    radial = sp.Integer(0)
    for sub in ("L", "J"):
        radial += pairs.self_mean_field(sub).c1 - sp.limit(pairs.mean_field(sub).c1, theta, 0, "+")
    return sp.simplify(sp.diff(radial, n_a).subs(n_b, n_a))


def angular_hitting_time(perp_distance: float, teacher_norm: float) -> float:
    """First-order time for the true-gradient flow of ``H`` to reach the teacher's ray.

    The orthogonal distance ``p`` of ``w`` from the ray of ``w*`` obeys, to first order,
    ``dp/dt = -s p - |w*|/(2 pi)`` with ``s = 1`` (the limiting orthogonal eigenvalue of
    ``H``'s mean-field Jacobian) and ``|w*|/(2 pi)`` the boundary jump (:func:`boundary_jump`),
    so ``p`` reaches zero at ``t = log(1 + 2 pi p0 / |w*|)``.
    """
    s = float(teacher_limit("H")["s"])
    c = teacher_norm / (2 * math.pi)
    return math.log1p(s * perp_distance / c) / s


def numeric_eigenvalues(part: str):
    """A NumPy function ``(n_a, n_b, theta) -> three eigenvalues`` of :func:`eigenvalues_near_teacher`."""
    exprs = [e for e, _ in eigenvalues_near_teacher(part)]
    return sp.lambdify((n_a, n_b, theta), exprs, "numpy")


def summary() -> dict:
    """Every single-node prediction as floats/strings (for reports)."""
    out = {}
    for part in ("L", "H"):
        lim = teacher_limit(part)
        out[part] = {
            "eigenvalues_near_teacher": [str(e) for e, _ in eigenvalues_near_teacher(part)],
            "limit_eigenvalues": [float(e) for e in lim["eigenvalues"]],
            "limit_B12": float(lim["jordan"]),
            "rate": float(lim["rate"]),
        }
    out["H-true"] = {"boundary_jump_at_teacher": str(boundary_jump()[1]),
                     "sliding_radial_rate": float(sliding_radial_rate())}
    out["rate_ratio_H_mean_over_L"] = float(predicted_rate("H-mean") / predicted_rate("L"))
    out["rate_ratio_H_true_over_L"] = float(predicted_rate("H-true") / predicted_rate("L"))
    return out
