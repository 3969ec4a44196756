"""Pair kernels of the activation family, derived from the Gaussian integral over the whole plane.

Every activation of the family (:mod:`numerics.family`) and each of its derivatives is positively
homogeneous: ``sigma(t) = c_plus t_+^q + c_minus t_-^q`` with ``t_- = max(-t, 0)``.  For
``x ~ N(0, I_d)`` and rows ``a``, ``b`` at angle ``theta`` (the plane reduction of
:mod:`theory.kernels`: ``a.x = n_a r cos(phi)``, ``b.x = n_b r cos(phi - theta)``), the circle splits
into four arcs by the signs ``(s_a, s_b)`` of ``a.x`` and ``b.x``, and

``E[sigma(a.x) sigma(b.x)] = sum_{s_a, s_b} c_{s_a} c_{s_b} arc_q^{s_a s_b}``,
``arc_q^{s_a s_b} = E[(s_a a.x)_+^q (s_b b.x)_+^q]``

(:func:`arc_kernel`: SymPy does the radial and the angular integral on each arc).  The degree-``q``
arcs with equal signs are Cho & Saul's arc-cosine kernel ``n_a^q n_b^q J_q(theta) / (2 pi)``; with
opposite signs, the same at ``pi - theta`` (:func:`check_against_cho_saul` proves both).

The population losses of the family are signed sums of these kernels over pairs of rows
(:func:`loss_pair_term`): ``L`` of ``sigma``'s kernel, ``J_1`` of ``sigma'``'s times ``a.b``,
``J_2`` of ``sigma''``'s times ``(a.b)^2``.  For ``x ~ N(0, cov)`` the kernels see the rows
``cov^(1/2) w`` and the inner products keep ``w`` (:func:`covariance_reduction`).

References: Cho & Saul (2009), "Kernel methods for deep learning", eq. (4)-(6) (``J_n``).
"""
from __future__ import annotations

import sympy as sp

from .cache import cached
from .symbols import n_a, n_b, phi, r, theta

DEGREES = (0, 1, 2, 3)
SIGNS = ("pp", "pm", "mp", "mm")  # (sign of a.x, sign of b.x): p = positive, m = negative
_DENSITY = sp.exp(-(r**2) / 2) * r / (2 * sp.pi)
# the arcs of phi in [-pi/2, 3 pi/2) on which a.x = n_a r cos(phi) and b.x = n_b r cos(phi - theta) have
# the given signs, for 0 < theta < pi
_ARCS = {
    "pp": (theta - sp.pi / 2, sp.pi / 2),
    "pm": (-sp.pi / 2, theta - sp.pi / 2),
    "mp": (sp.pi / 2, theta + sp.pi / 2),
    "mm": (theta + sp.pi / 2, 3 * sp.pi / 2),
}


@cached
def arc_kernel(q: int, signs: str) -> sp.Expr:
    """``E[(s_a a.x)_+^q (s_b b.x)_+^q]`` for ``x ~ N(0, I)``, by integration over its arc of the plane."""
    if q not in DEGREES or signs not in SIGNS:
        raise ValueError(f"q must be in {DEGREES} and signs in {SIGNS}; got {q!r}, {signs!r}")
    sa = 1 if signs[0] == "p" else -1
    sb = 1 if signs[1] == "p" else -1
    radial = sp.integrate(r ** (2 * q) * _DENSITY * 2 * sp.pi, (r, 0, sp.oo))
    angular = sp.integrate((sa * sp.cos(phi)) ** q * (sb * sp.cos(phi - theta)) ** q, (phi, *_ARCS[signs]))
    return sp.simplify(n_a**q * n_b**q * radial * angular / (2 * sp.pi))


@cached
def arc_kernel_dtheta(q: int, signs: str) -> sp.Expr:
    """``d/dtheta`` of :func:`arc_kernel`: with ``d n_a / d a = a^`` and ``d theta / d a = -e2 / n_a`` it gives
    the gradient of a kernel in its rows (the true gradient of the family's losses; ``e2`` the unit vector
    of ``b`` orthogonal to ``a``)."""
    return sp.simplify(sp.diff(arc_kernel(q, signs), theta))


@cached
def arc_kernel_dtheta2(q: int, signs: str) -> sp.Expr:
    """``d^2/dtheta^2`` of :func:`arc_kernel` (the Hessians of the family's losses)."""
    return sp.simplify(sp.diff(arc_kernel(q, signs), theta, 2))


@cached
def arc_kernel_dtheta_over_sin(q: int, signs: str) -> sp.Expr:
    """``(d/dtheta arc_kernel) / sin(theta)``: the coefficient of the orthogonal complement in the Hessians,
    generated with its own series so that it keeps its digits next to the kinks (a finite limit where the
    kernel is flat there)."""
    return sp.simplify(arc_kernel_dtheta(q, signs) / sp.sin(theta))


c_plus, c_minus = sp.symbols("c_plus c_minus", real=True)


@cached
def homogeneous_kernel(q: int) -> sp.Expr:
    """``E[sigma(a.x) sigma(b.x)]`` for ``sigma(t) = c_plus t_+^q + c_minus t_-^q`` (symbols ``c_plus``,
    ``c_minus``): the four arcs weighted by the coefficients of their signs."""
    coef = {"p": c_plus, "m": c_minus}
    return sp.expand(sum(coef[s[0]] * coef[s[1]] * arc_kernel(q, s) for s in SIGNS))


def cho_saul_J(n: int) -> sp.Expr:
    """Cho & Saul's ``J_n(theta) = (-1)^n sin^(2n+1)(theta) ((1/sin theta) d/dtheta)^n ((pi - theta)/sin theta)``
    (typed in from the paper; used only to check :func:`arc_kernel`)."""
    f = (sp.pi - theta) / sp.sin(theta)
    for _ in range(n):
        f = sp.diff(f, theta) / sp.sin(theta)
    return sp.simplify((-1) ** n * sp.sin(theta) ** (2 * n + 1) * f)


def check_against_cho_saul() -> dict:
    """``{(q, signs): derived - published}``, each proven zero by ``simplify``: equal signs give
    ``n_a^q n_b^q J_q(theta) / (2 pi)``, opposite signs the same at ``pi - theta``."""
    out = {}
    for q in DEGREES:
        same = n_a**q * n_b**q * cho_saul_J(q) / (2 * sp.pi)
        opposite = same.subs(theta, sp.pi - theta)
        for s in SIGNS:
            ref = same if s in ("pp", "mm") else opposite
            out[(q, s)] = sp.simplify(sp.expand_trig(arc_kernel(q, s) - ref))
    return out


# ----------------------------------------------------------------------------- the losses of the family
_DERIVATIVE_ORDER = {"L": 0, "J": 1, "J2": 2}


def loss_pair_term(part: str, q: int) -> sp.Expr:
    """The pair term of ``part`` for an activation of degree ``q`` with coefficients ``(c_plus, c_minus)``,
    as a function of ``(n_a, n_b, theta)`` of the kernel geometry and ``g = a.b`` (symbol ``g``):
    ``L``: ``K_sigma``; ``J``: ``g K_sigma'``; ``J2``: ``g^2 K_sigma''``, where ``sigma^(k)`` has degree
    ``q - k`` and coefficients ``(q!/(q-k)!) c_plus``, ``(-1)^k (q!/(q-k)!) c_minus``.  The population
    loss is ``1/2 sum_{p,r} s_p s_r A_p A_r (pair term of rows p, r)`` over ``Z = [W; W*]`` with signs
    ``s = (+1..., -1...)`` and output weights ``A = [a; a*]``."""
    k = _DERIVATIVE_ORDER[part]
    if q - k < 0:
        raise ValueError(f"{part} needs sigma^({k}), which is not a function for degree {q}")
    factor = sp.ff(q, k)  # q (q - 1) ... (q - k + 1)
    kern = homogeneous_kernel(q - k).subs({c_plus: factor * c_plus, c_minus: (-1) ** k * factor * c_minus},
                                          simultaneous=True)
    return sp.expand(g_symbol**k * kern)


g_symbol = sp.Symbol("g", real=True)


def covariance_reduction() -> dict:
    """The reduction of ``x ~ N(0, cov)`` to the standard case, proven for a symbolic ``2 x 2`` ``cov``.

    With ``x = S z`` (``S = cov^(1/2)`` symmetric, ``z ~ N(0, I)``): ``w.x = (S w).z``, so every
    expectation of functions of ``w_p.x`` is the standard one at the rows ``u_p = S w_p``; the input
    gradient of ``g`` is ``sum_j a_j sigma'(w_j.x) w_j``, whose inner products keep ``w``.  Returned:
    ``{"projection": w.(S z) - (S w).z, "covariance": E[(u.z)(v.z)] - w^T cov v}``, each zero."""
    s11, s12, s22, z1, z2, w1, w2, v1, v2 = sp.symbols("s11 s12 s22 z1 z2 w1 w2 v1 v2", real=True)
    S = sp.Matrix([[s11, s12], [s12, s22]])
    z, w, v = sp.Matrix([z1, z2]), sp.Matrix([w1, w2]), sp.Matrix([v1, v2])
    projection = sp.expand((w.T * (S * z))[0] - ((S * w).T * z)[0])
    # E[(u.z)(v'.z)] = u.v' for z ~ N(0, I): the Gram matrix of the rows S w seen by the kernels is w^T S^2 v
    covariance = sp.expand(((S * w).T * (S * v))[0] - (w.T * (S * S) * v)[0])
    return {"projection": projection, "covariance": covariance}


# ----------------------------------------------------------------------------- where each object exists
beta = sp.Symbol("beta", nonnegative=True)
MEMBERS = {  # name: (degree p, c_plus, c_minus) of sigma
    "relu": (1, sp.Integer(1), sp.Integer(0)),
    "leaky_relu(beta)": (1, sp.Integer(1), -beta),
    "relu_power(2)": (2, sp.Integer(1), sp.Integer(0)),
    "relu_power(3)": (3, sp.Integer(1), sp.Integer(0)),
}


def _derivative(p: int, cp, cm, k: int) -> tuple:
    for _ in range(k):
        p, cp, cm = p - 1, p * cp, -p * cm
    return p, cp, cm


@cached
def existence_table() -> tuple:
    """For every member and part (``L``, ``J``, ``J2``): ``(member, part, exists, mean_is_true, at_parallel,
    at_antiparallel, autograd_at_kinks)``: whether the loss is finite, whether the mean field equals the true
    gradient everywhere (``sigma^(k)`` is not a step: its degree is >= 1, or it has no jump), whether the true
    gradient exists at exactly parallel / anti-parallel rows (the kernel of ``sigma^(k)`` has zero
    ``theta``-derivative there; ``0 <= beta < 1`` for leaky_relu; the Hessian of the loss and the Jacobian of
    the mean field exist there exactly when it does), and whether the expected autograd Hessian exists at
    both.  Derived from :func:`homogeneous_kernel`."""
    rows = []
    for name, (p, cp, cm) in MEMBERS.items():
        for part, k in _DERIVATIVE_ORDER.items():
            q, dp, dm = _derivative(p, cp, cm, k)
            if q < 0:
                rows.append((name, part, False, None, None, None, None))
                continue
            kern = homogeneous_kernel(q).subs({c_plus: dp, c_minus: dm}, simultaneous=True)
            slope = sp.diff(kern, theta)
            flat = [sp.simplify(sp.limit(slope, theta, end, "+" if end == 0 else "-")) == 0 for end in (0, sp.pi)]
            mean_is_true = q >= 1 or sp.simplify(dp - dm) == 0
            # the expected autograd Hessian keeps only kernel derivatives that are functions (q >= 1: the
            # first; q >= 2: the second), which are flat at the kinks: it exists there for every member
            autograd_at_kinks = q == 0 or all(flat)
            rows.append((name, part, True, bool(mean_is_true), *flat, bool(autograd_at_kinks)))
    return tuple(rows)


# ----------------------------------------------------------------------------- single-node spectra
@cached  # each objective's spectrum sums these matrices: a report asks for the same ones many times
def single_node_matrix(member: str, part: str, field: str):
    """The Hessian (``field="true"``) or the Jacobian of the mean field (``"mean"``) of ``part`` for one student
    row ``a`` against one teacher row ``b`` (output weights 1, ``x ~ N(0, I)``), in the e-basis of
    :mod:`theory.calculus`: a :class:`~theory.calculus.PairMatrix` ``(B, s)``.

    The loss is ``1/2 T(a, a) + 1/2 T(b, b) - T(a, b)`` with ``T = (a.b)^k K_k``; its field in ``a`` is
    ``1/2 grad phi - grad_a T(a, b)`` with ``phi(a) = T(a, a) = |a|^(2p) kappa_0``.  The mean field of a step
    kernel (degree ``q = 0``) lacks the kernel's ``theta``-derivative (numerics.family_population); the
    Jacobian differentiates the field as it stands.
    """
    from .calculus import PairVector, grad_a, jacobian_a

    p, cp, cm = MEMBERS[member]
    k = _DERIVATIVE_ORDER[part]
    q, dp, dm = _derivative(p, cp, cm, k)
    if q < 0:
        raise ValueError(f"{part} does not exist for {member}")
    K = homogeneous_kernel(q).subs({c_plus: dp, c_minus: dm}, simultaneous=True)
    G = n_a * n_b * sp.cos(theta)
    T = G**k * K
    kappa0 = sp.limit(K.subs({n_a: 1, n_b: 1}), theta, 0, "+")
    phi = n_a ** (2 * p) * kappa0
    self_field = PairVector(sp.diff(phi, n_a) / 2, sp.Integer(0))
    if field == "mean" and q == 0:
        pair_field = PairVector(sp.diff(T, n_a), -k * G ** (k - 1) * sp.diff(G, theta) * K / n_a)
    else:
        pair_field = grad_a(T)
    return (jacobian_a(self_field) - jacobian_a(pair_field)).simplify()


@cached
def single_node_spectrum(member: str, part: str, field: str) -> tuple:
    """``(s, lambda_1, lambda_2)``: the eigenvalue of :func:`single_node_matrix` on the orthogonal complement
    (multiplicity ``d - 2``) and its two in-plane eigenvalues (``B + s I``, by the quadratic formula: the
    spectrum closes for every member)."""
    M = single_node_matrix(member, part, field)
    block = M.B + M.s * sp.eye(2)
    tr, det = sp.simplify(block.trace()), sp.simplify(block.det())
    root = sp.sqrt(tr**2 / 4 - det)
    return sp.simplify(M.s), tr / 2 - root, tr / 2 + root


def single_node_objective_spectrum(member: str, weights: dict, field: str) -> tuple:
    """:func:`single_node_spectrum` of an objective ``sum_part weights[part] * part`` (e.g. ``H = L + J``):
    the matrices are summed before the eigenvalues are taken."""
    from .calculus import PairMatrix

    total = PairMatrix(sp.zeros(2, 2), sp.Integer(0))
    for part, w in weights.items():
        if w:
            total = total + single_node_matrix(member, part, field).scale(sp.nsimplify(w))
    block = total.B + total.s * sp.eye(2)
    tr, det = block.trace(), block.det()
    root = sp.sqrt(tr**2 / 4 - det)
    return total.s, tr / 2 - root, tr / 2 + root
