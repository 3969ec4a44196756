"""The smooth control activation ``erf``: pair kernels by Price's theorem, derived with SymPy.

Network ``g(x) = sum_j a_j erf(w_j . x)``, teacher ``g*`` with rows ``w*_j`` and weights ``a*_j``,
``x ~ N(0, cov)``.  As for the ReLU family (:mod:`theory.activations`, :mod:`numerics.family`) the
population losses are halves of mean squares,

``L = E[(g - g*)^2] / 2``, ``J = E|grad_x g - grad_x g*|^2 / 2``, ``J2 = E||hess_x g - hess_x g*||_F^2 / 2``,

``H = L + lambda_1 J + lambda_2 J2``, and each is ``1/2 sum_{p,r} s_p s_r A_p A_r f(z_p, z_r)`` over the
rows ``Z = [W; W*]`` (signs ``s = (+1..., -1...)``, output weights ``A = [a; a*]``) of a pair term

``f_L = k_0``, ``f_J = g k_1``, ``f_J2 = g^2 k_2``, ``k_k(p, q, c) = E[erf^(k)(u.x) erf^(k)(v.x)]``,

where ``p = u^T cov u``, ``q = v^T cov v``, ``c = u^T cov v`` (the variances and the covariance of the
jointly Gaussian pair ``(u.x, v.x)``) and ``g = u.v`` (the Euclidean inner product: ``grad_x g`` is
``sum_j a_j erf'(w_j.x) w_j`` and ``hess_x g`` is ``sum_j a_j erf''(w_j.x) w_j w_j^T``, whose Frobenius
products are ``(u.v)^2``).

Derivation (no kernel is typed in; the ``atan`` form the numerics use is a rewrite checked against it):

1. :func:`gaussian_integral` -- SymPy integrates ``exp(-A z^2 + B z)`` over the line;
2. :func:`generating_function` -- ``E[exp(-a^2 - b^2 + s a + t b)]`` for ``(a, b) ~ N(0, [[p, c], [c, q]])``
   by integrating the bivariate density over ``b`` and then ``a`` with step 1: ``D^(-1/2) exp(...)``,
   ``D = (1 + 2p)(1 + 2q) - 4c^2 = det(I + 2 Sigma_ab)`` (:func:`check_determinant_formula`);
3. :func:`expectation` ``(m, n)`` -- ``E[erf^(m)(a) erf^(n)(b)]``: for ``m, n >= 1`` both factors are a
   polynomial times ``exp(-t^2)`` (:func:`derivative_polynomial`), so the expectation is a combination of
   derivatives of step 2 in ``(s, t)``; with an ``erf`` factor (``n = 0``) it is Price's theorem,
   ``d/dc E[f(a) h(b)] = E[f'(a) h'(b)]``, integrated in ``c`` from ``0``, where the pair is independent
   and ``E[erf(b)] = 0`` (``erf`` is odd): ``E[erf^(m)(a) erf(b)] = int_0^c E[erf^(m+1)(a) erf'(b)] dc``.

So ``k_1 = (4/pi) / sqrt(D)``, ``k_0 = (2/pi) arcsin(2c / sqrt((1+2p)(1+2q)))``, ``k_2 = d k_1 / dc`` (the
published forms are checked in :func:`check_closed_forms`, Price's relations in :func:`check_price`).
Numerics evaluate :func:`stable_kernel`: the same functions of ``(p, q, c, D)`` with ``D`` computed as
``1 + 2p + 2q + 4 (pq - c^2) >= 1`` and ``k_0 = (2/pi) atan(2c / sqrt(D))`` (no arcsin argument at 1).

:func:`pair_partials` (the partials in ``(p, q, c, g, D)``), :func:`self_partials` (a row with itself) and
:func:`row_gradient` are what :mod:`numerics.erf` evaluates.

Because ``erf`` is smooth with bounded derivatives, the per-sample loss is smooth in the weights and
differentiation passes under the expectation: the **mean field** ``E_x[grad_W l]`` equals the **true
gradient** ``grad_W E_x[l]``, and the true Hessian, the Jacobian of the mean field and the expected
per-sample autograd Hessian are one matrix.  :func:`mean_field_equals_true_gradient` and
:func:`hessians_coincide` prove it pair by pair: the expectation of the per-sample derivative is taken
with Gaussian integration by parts (Stein's lemma, :func:`check_stein`) and compared with the
derivative of the closed form.  :func:`single_node_spectrum` gives the Hessians at ``w = w*``.
"""
from __future__ import annotations

import itertools

import sympy as sp

from .cache import cached

# ----------------------------------------------------------------------------- symbols
p = sp.Symbol("p", positive=True)   # u^T cov u: the variance of u.x
q = sp.Symbol("q", positive=True)   # v^T cov v
c = sp.Symbol("c", real=True)       # u^T cov v: the covariance of (u.x, v.x)
g = sp.Symbol("g", real=True)       # u.v: the Euclidean inner product (the J, J2 factors)
D = sp.Symbol("D", positive=True)   # (1 + 2p)(1 + 2q) - 4c^2, kept as a symbol for stable numerics
n = sp.Symbol("n", positive=True)   # |w| = |w*| in the single-node spectra
lam1, lam2 = sp.symbols("lambda_1 lambda_2", nonnegative=True)

D_EXPR = (1 + 2 * p) * (1 + 2 * q) - 4 * c**2
INVARIANTS = (p, q, c, g)
PARTS = ("L", "J", "J2")
ORDER = {"L": 0, "J": 1, "J2": 2}  # which derivative of erf the part's kernel pairs

_z = sp.Symbol("z", real=True)
_A = sp.Symbol("A", positive=True)
_B = sp.Symbol("B", real=True)
_s, _t = sp.symbols("s t", real=True)
_a, _b = sp.symbols("a b", real=True)        # the pair (u.x, v.x)
_tau = sp.Symbol("tau", real=True)            # the integration variable of Price's integral
_Delta = sp.Symbol("Delta", positive=True)    # pq - c^2 (the pair's covariance determinant)


def _part(part: str) -> int:
    if part not in ORDER:
        raise ValueError(f"part must be one of {PARTS}; got {part!r}")
    return ORDER[part]


# ----------------------------------------------------------------------------- Gaussian integrals
@cached
def gaussian_integral() -> sp.Expr:
    """``int_R exp(-A z^2 + B z) dz`` (``A > 0``), integrated by SymPy: ``sqrt(pi/A) exp(B^2/(4A))``."""
    return sp.simplify(sp.integrate(sp.exp(-_A * _z**2 + _B * _z), (_z, -sp.oo, sp.oo), conds="none"))


def _integrate_out(prefactor, exponent, var):
    """``int prefactor * exp(exponent) d var`` for an exponent quadratic in ``var`` with negative leading
    coefficient, by :func:`gaussian_integral`: returns the new ``(prefactor, exponent)``."""
    poly = sp.Poly(sp.expand(exponent), var)
    if poly.degree() != 2:
        raise ValueError("the exponent must be quadratic in the integration variable")
    A_ = -poly.coeff_monomial(var**2)
    B_ = poly.coeff_monomial(var)
    C_ = poly.coeff_monomial(1)
    value = gaussian_integral()
    factor = sp.simplify(value * sp.exp(-_B**2 / (4 * _A)))  # sqrt(pi/A): the exponential split off
    if factor.has(_B):
        raise AssertionError("the Gaussian integral did not factor as sqrt(pi/A) exp(B^2/(4A))")
    shift = sp.simplify(sp.log(value / factor).expand(force=True))  # B^2/(4A)
    return prefactor * factor.subs(_A, A_), sp.cancel(C_ + shift.subs({_A: A_, _B: B_}))


@cached
def generating_function() -> sp.Expr:
    """``G(s, t) = E[exp(-a^2 - b^2 + s a + t b)]`` for ``(a, b) ~ N(0, [[p, c], [c, q]])``, as
    ``D^(-1/2) exp(Q(s, t) / D)`` in the symbol ``D`` (positive; ``D = D_EXPR``).

    The bivariate density ``exp(-(a, b) Sigma^-1 (a, b)^T / 2) / (2 pi sqrt(Delta))`` (``Delta = pq - c^2``)
    times the integrand is integrated over ``b``, then ``a``; the square of the prefactor is rational and is
    shown to be ``1 / D_EXPR``, so the (positive) prefactor is ``D^(-1/2)``.
    """
    vec = sp.Matrix([_a, _b])
    inverse = sp.Matrix([[q, -c], [-c, p]]) / _Delta
    exponent = -(vec.T * inverse * vec)[0] / 2 - _a**2 - _b**2 + _s * _a + _t * _b
    pref, expo = _integrate_out(1 / (2 * sp.pi * sp.sqrt(_Delta)), exponent, _b)
    pref, expo = _integrate_out(pref, expo, _a)
    pref_squared = sp.cancel(sp.expand(pref**2).subs(_Delta, p * q - c**2))
    if sp.cancel(pref_squared * D_EXPR) != 1:
        raise AssertionError(f"prefactor^2 = {pref_squared} is not 1/D")
    num, den = sp.fraction(sp.cancel(expo.subs(_Delta, p * q - c**2)))
    ratio = sp.cancel(den / D_EXPR)
    if ratio.free_symbols:
        raise AssertionError(f"the exponent's denominator {den} is not a multiple of D")
    return sp.exp(sp.expand(num) / (ratio * D)) / sp.sqrt(D)


def check_determinant_formula() -> bool:
    """The generating function is the determinant formula ``det(I + 2 Sigma)^(-1/2) exp(m^T (Sigma^-1 + 2 I)^-1 m
    / 2)`` (``m = (s, t)``), and ``det(I + 2 Sigma) = D``: True when both differences simplify to zero."""
    sigma = sp.Matrix([[p, c], [c, q]])
    m = sp.Matrix([_s, _t])
    det = sp.expand((sp.eye(2) + 2 * sigma).det())
    quad = (m.T * (sigma.inv() + 2 * sp.eye(2)).inv() * m)[0] / 2
    G = generating_function()
    expo = sp.log(G * sp.sqrt(D)).expand(force=True).subs(D, D_EXPR)
    return sp.expand(det - D_EXPR) == 0 and sp.simplify(expo - quad) == 0


@cached
def derivative_polynomial(m: int) -> sp.Expr:
    """``P_m`` with ``erf^(m)(t) = P_m(t) exp(-t^2)`` (``m >= 1``), from SymPy's derivative of ``erf``."""
    if m < 1:
        raise ValueError(f"m must be >= 1; got {m!r}")
    poly = sp.simplify(sp.diff(sp.erf(_z), _z, m) * sp.exp(_z**2))
    if not poly.is_polynomial(_z):
        raise AssertionError(f"erf^({m}) exp(t^2) = {poly} is not a polynomial")
    return sp.expand(poly)


@cached
def moment(i: int, j: int) -> sp.Expr:
    """``E[a^i b^j exp(-a^2 - b^2)]``: ``d^i/ds^i d^j/dt^j`` of :func:`generating_function` at ``s = t = 0``."""
    G = generating_function()
    return sp.factor(sp.diff(G, _s, i, _t, j).subs({_s: 0, _t: 0}))


@cached
def expectation(m: int, n_: int) -> sp.Expr:
    """``E[erf^(m)(a) erf^(n)(b)]`` for ``(a, b) ~ N(0, [[p, c], [c, q]])`` (``m, n >= 0``), in ``(p, q, c)``
    and the symbol ``D``.

    ``m, n >= 1``: the polynomials of :func:`derivative_polynomial` against the :func:`moment` s.
    An ``erf`` factor: Price's theorem integrated from ``c = 0`` (the integral vanishes there: the pair is
    independent and ``erf`` of a centred Gaussian has mean zero); SymPy integrates.
    """
    if min(m, n_) < 0:
        raise ValueError("the derivative orders must be >= 0")
    if m >= 1 and n_ >= 1:
        Pm = sp.Poly(derivative_polynomial(m), _z)
        Pn = sp.Poly(derivative_polynomial(n_), _z)
        total = sp.Integer(0)
        for (i,), ci in Pm.terms():
            for (j,), cj in Pn.terms():
                total += ci * cj * moment(i, j)
        return sp.factor(sp.together(total))
    if m == 0 and n_ >= 1:  # symmetric: swap the roles of the two rows
        return expectation(n_, 0).subs({p: q, q: p}, simultaneous=True)
    # P = 1 + 2p, Q = 1 + 2q (positive): the integrand is a polynomial over a power of sqrt(PQ - 4 tau^2)
    P_, Q_ = sp.symbols("P Q", positive=True)
    integrand = sp.factor(expectation(m + 1, n_ + 1).subs(D, D_EXPR).subs({c: _tau, p: (P_ - 1) / 2,
                                                                            q: (Q_ - 1) / 2}))
    antiderivative = _real_antiderivative(integrand, _tau)
    value = antiderivative.subs(_tau, c) - antiderivative.subs(_tau, 0)
    return to_D_form(sp.simplify(value.subs({P_: 1 + 2 * p, Q_: 1 + 2 * q})))


def _real_antiderivative(integrand, var):
    """An antiderivative of ``integrand`` on the domain ``4 var^2 < PQ``, by SymPy; where SymPy answers with a
    ``Piecewise`` over the sign of ``PQ - 4 var^2``, its last branch (the real one) is taken, and the choice
    is checked by differentiating back."""
    F = sp.piecewise_fold(sp.integrate(integrand, var))
    if isinstance(F, sp.Piecewise):
        F = F.args[-1][0]
    if F.has(sp.Integral, sp.Piecewise, sp.I) or sp.simplify(sp.diff(F, var) - integrand) != 0:
        raise AssertionError(f"SymPy gave no real antiderivative of {integrand}")
    return F


@cached
def kernel(k: int) -> sp.Expr:
    """``k_k(p, q, c) = E[erf^(k)(a) erf^(k)(b)]`` as derived (``k_0`` with an arcsin; ``k_1``, ``k_2`` in ``D``)."""
    return expectation(k, k)


@cached
def stable_kernel(k: int) -> sp.Expr:
    """:func:`kernel` written for numerics, in ``(p, q, c, D)``: ``k_0 = (2/pi) atan(2c / sqrt(D))`` (equal to the
    arcsin form, checked here and in :func:`check_stable_kernels`; no arcsin argument near 1, and ``D >= 1`` is
    computed as ``1 + 2p + 2q + 4 (pq - c^2)``); ``k_1``, ``k_2`` are already rational in ``sqrt(D)``."""
    if k == 0:
        # arcsin(x) = atan(x / sqrt(1 - x^2)) with 1 - x^2 = D / ((1 + 2p)(1 + 2q)): checked against the derivation
        stable = 2 * sp.atan(2 * c / sp.sqrt(D)) / sp.pi
        if not is_zero(stable - kernel(0)):
            raise AssertionError("the atan form of k_0 differs from the derived kernel")
        return stable
    if k in (1, 2):
        return kernel(k)
    raise ValueError(f"k must be 0, 1 or 2; got {k!r}")


def closed_forms() -> dict:
    """The published closed forms (typed in; used only to check the derivation)."""
    return {0: 2 * sp.asin(2 * c / sp.sqrt((1 + 2 * p) * (1 + 2 * q))) / sp.pi,
            1: 4 / (sp.pi * sp.sqrt(D_EXPR)),
            2: 16 * c / (sp.pi * D_EXPR ** sp.Rational(3, 2))}


_root = sp.Symbol("sqrt_D", positive=True)  # sqrt(D) in the zero test


def to_D_form(expr) -> sp.Expr:
    """``expr`` with every power of ``D_EXPR`` (as SymPy writes it after an integration) replaced by the same
    power of the symbol ``D``."""
    target = sp.expand(D_EXPR)
    return sp.sympify(expr).replace(lambda e: e.is_Pow and sp.expand(e.base - target) == 0,
                                    lambda e: D**e.exp)


def is_zero(expr) -> bool:
    """Whether ``expr`` (in ``p, q, c, g`` and ``D``) is identically zero on the domain ``c^2 <= pq``.

    Algebraic expressions: with ``D = r^2`` the expression is rational in ``(p, q, c, g, r)``; its numerator,
    reduced modulo ``r^2 - D_EXPR``, is ``A + r B`` with polynomials ``A``, ``B`` in ``(p, q, c, g)``, and since
    ``D_EXPR`` is not a square, the expression vanishes iff ``A`` and ``B`` expand to zero.  Expressions with an
    inverse tangent or sine: the derivative in ``c`` vanishes (tested as above) and so does the value at
    ``c = 0`` (for fixed ``p, q`` the domain in ``c`` is an interval containing ``0``).
    """
    e = to_D_form(expr)
    if e.has(sp.atan, sp.asin):
        return is_zero(total_diff(e, c)) and sp.simplify(e.subs(c, 0)) == 0
    e = sp.cancel(sp.together(e.subs(D, _root**2)))
    radicals = [x for x in e.atoms(sp.Pow) if not x.exp.is_integer and x.base != _root]
    if radicals:  # a root of something else than D: no shortcut
        return sp.simplify(e.subs(_root, sp.sqrt(D_EXPR))) == 0
    num = sp.numer(e)
    if num == 0:
        return True
    rem = sp.rem(sp.Poly(sp.expand(num), _root), sp.Poly(_root**2 - D_EXPR, _root))
    return all(sp.expand(coeff) == 0 for coeff in rem.all_coeffs())


def check_closed_forms() -> bool:
    """True when each derived kernel equals its published closed form (:func:`closed_forms`)."""
    return all(is_zero(kernel(k) - ref) for k, ref in closed_forms().items())


def check_price() -> bool:
    """Price's theorem between the two routes: ``d k_0 / dc = k_1`` and ``d k_1 / dc = k_2`` (``k_2`` by the
    moments, ``d k_1 / dc`` by differentiating ``k_1``), plus the heat equation ``d k_1/dp = E[erf'''(a)
    erf'(b)] / 2``.  True when all simplify to zero."""
    return (is_zero(total_diff(kernel(0), c) - kernel(1))
            and is_zero(total_diff(kernel(1), c) - kernel(2))
            and is_zero(2 * total_diff(kernel(1), p) - expectation(3, 1)))


def check_stable_kernels() -> bool:
    """True when :func:`stable_kernel` equals :func:`kernel` for ``k = 0, 1, 2``."""
    return all(is_zero(stable_kernel(k) - kernel(k)) for k in (0, 1, 2))


def check_stein() -> bool:
    """Gaussian integration by parts in the pair, ``E[a F] = p E[F_a] + c E[F_b]`` and ``E[b F] = c E[F_a] +
    q E[F_b]``, for ``F = exp(-a^2 - b^2 + s a + t b)``: with ``E[a F] = dG/ds`` and ``F_a = (s - 2a) F`` both
    are identities of :func:`generating_function`.  Differentiating them in ``(s, t)`` gives Stein's lemma for
    every polynomial times ``exp(-a^2 - b^2)``, which is every product of derivatives of ``erf`` used here.
    True when both simplify to zero."""
    G = generating_function()
    EFa = _s * G - 2 * sp.diff(G, _s)
    EFb = _t * G - 2 * sp.diff(G, _t)
    first = sp.diff(G, _s) - (p * EFa + c * EFb)
    second = sp.diff(G, _t) - (c * EFa + q * EFb)
    return all(is_zero(sp.cancel(sp.expand(e / G))) for e in (first, second))


# ----------------------------------------------------------------------------- pair terms and their partials
def total_diff(expr, var) -> sp.Expr:
    """``d expr / d var`` for ``var`` in ``(p, q, c, g)``, counting ``D = D_EXPR(p, q, c)`` as a function."""
    out = sp.diff(expr, var)
    if var in (p, q, c):
        out += sp.diff(expr, D) * sp.diff(D_EXPR, var)
    return out


@cached
def pair_term(part: str) -> sp.Expr:
    """The pair term ``f`` of ``part`` in ``(p, q, c, g, D)``: ``k_0``, ``g k_1`` or ``g^2 k_2`` (stable forms).
    The population loss is ``1/2 sum_{p,r} s_p s_r A_p A_r f(z_p, z_r)``."""
    k = _part(part)
    return g**k * stable_kernel(k)


PARTIAL_VARIABLES = (p, q, c, g, D)


@cached
def pair_partials(part: str) -> dict:
    """Every partial derivative of :func:`pair_term` of order 0, 1 and 2 in ``(p, q, c, g, D)`` **taken as independent
    variables**: ``{(): f, ("p",): f_p, ..., ("p", "q"): f_pq, ..., ("D", "D"): f_DD}`` (names in the order of
    ``PARTIAL_VARIABLES``).  The numerics apply the chain rule with ``D = 1 + 2p + 2q + 4(pq - c^2)`` as one more
    invariant, whose gradient in ``u`` is the vector ``4 cov u + 8 cov (q u - c v)``: formed per pair, it is small
    for near-parallel rows, where the total derivatives ``d/dp``, ``d/dc`` of ``f`` are large and cancel."""
    f = pair_term(part)
    out = {(): f}
    for X in PARTIAL_VARIABLES:
        out[(str(X),)] = sp.factor(sp.diff(f, X))
    for X, Y in itertools.combinations_with_replacement(PARTIAL_VARIABLES, 2):
        out[(str(X), str(Y))] = sp.factor(sp.diff(f, X, Y))
    return out


@cached
def self_term(part: str) -> sp.Expr:
    """The pair term of a row with itself, ``phi(p, g) = f(p, p, p, g)`` (``q = c = p``, ``g = |u|^2``, ``D = 1 + 4p``):
    its own function, because at ``v = u`` the partials of ``f`` are large and cancel (the saturated kernel has a
    kink at parallel rows)."""
    if sp.expand(D_EXPR.subs({q: p, c: p}) - (1 + 4 * p)) != 0:
        raise AssertionError("D at q = c = p is not 1 + 4p")
    return sp.factor(pair_term(part).subs({q: p, c: p, D: 1 + 4 * p}))


@cached
def self_partials(part: str) -> dict:
    """The partials of :func:`self_term` of order <= 2 in ``(p, g)``: ``{(): phi, ("p",): phi_p, ...,
    ("g", "g"): phi_gg}``.  A row's own contribution to the gradient is ``A^2 grad phi / 2`` and to the Hessian ``A^2 hess phi / 2``."""
    phi = self_term(part)
    out = {(): phi}
    for X in (p, g):
        out[(str(X),)] = sp.factor(sp.diff(phi, X))
    for X, Y in ((p, p), (p, g), (g, g)):
        out[(str(X), str(Y))] = sp.factor(sp.diff(phi, X, Y))
    return out


@cached
def row_gradient(part: str) -> dict:
    """The gradient of the pair term in its first row ``u`` (the other row ``v`` fixed) by the chain rule through
    ``p = u^T cov u``, ``c = u^T cov v``, ``g = u.v`` (``D`` a function of ``p, q, c``): the coefficients of
    ``grad_u f = alpha cov u + beta cov v + gamma v``, as ``{"cov u": alpha, "cov v": beta, "v": gamma}`` in
    ``(p, q, c, g, D)``.  Population gradients are ``s_i A_i sum_r s_r A_r grad_u f(w_i, z_r)``."""
    f = pair_term(part)
    return {"cov u": sp.factor(2 * total_diff(f, p)), "cov v": sp.factor(total_diff(f, c)),
            "v": sp.factor(total_diff(f, g))}


# ----------------------------------------------------------------------------- the pair in coordinates
class _Pair:
    """A pair of rows ``u, v`` in ``d = 2`` coordinates, a symmetric covariance ``cov``, an input ``x``, and the
    invariants as symbols with their coordinate gradients.  Two dimensions suffice: every object is a
    combination of ``cov``, ``I`` and outer products of ``u, v, cov u, cov v``, whose coefficients the
    entries of a 2 x 2 matrix in free coordinates determine."""

    def __init__(self):
        self.u = sp.Matrix(sp.symbols("u0 u1", real=True))
        self.v = sp.Matrix(sp.symbols("v0 v1", real=True))
        self.x = sp.Matrix(sp.symbols("x0 x1", real=True))
        s00, s01, s11 = sp.symbols("s00 s01 s11", real=True)
        self.cov = sp.Matrix([[s00, s01], [s01, s11]])
        self.coordinates = (*self.u, *self.v, s00, s01, s11)
        u, v, x, S = self.u, self.v, self.x, self.cov
        self.meaning = {p: (u.T * S * u)[0], q: (v.T * S * v)[0], c: (u.T * S * v)[0], g: u.dot(v),
                        _a: u.dot(x), _b: v.dot(x)}
        self.sigma_a, self.sigma_b = sp.Function("sigma_a"), sp.Function("sigma_b")

    def diff(self, expr, var):
        """``d expr / d var`` (``var`` a coordinate of ``u`` or ``v``), the invariants and ``a = u.x``,
        ``b = v.x`` differentiated through their meaning (``D`` through ``p, q, c``)."""
        out = sp.diff(expr, var)
        for X, meaning in self.meaning.items():
            dX = sp.diff(meaning, var)
            if dX != 0:
                out += total_diff(expr, X) * dX if X in INVARIANTS else sp.diff(expr, X) * dX
        return out

    def gradient(self, expr, row):
        return sp.Matrix([self.diff(expr, var) for var in row])

    def jacobian(self, vec, row):
        return sp.Matrix(len(vec), len(row), lambda i, j: self.diff(vec[i], row[j]))

    def per_sample(self, part: str) -> sp.Expr:
        """``g^k sigma_a(a) sigma_b(b)``: the per-sample pair term, ``sigma_a``, ``sigma_b`` standing for ``erf^(k)``
        of ``a = u.x`` and ``b = v.x`` (kept abstract so that derivatives raise their order)."""
        return g ** _part(part) * self.sigma_a(_a) * self.sigma_b(_b)

    def expect(self, expr, k: int) -> sp.Expr:
        """``E_x[expr]`` for ``expr`` linear in derivatives of ``sigma_a(a)`` and of ``sigma_b(b)`` and of degree
        ``<= 2`` in ``x``, by Stein's lemma for ``x ~ N(0, cov)`` (``phi = erf^(k+i)(a) erf^(k+j)(b)``):
        ``E[phi x] = E[phi_a] cov u + E[phi_b] cov v`` and ``E[phi x x^T] = E[phi] cov + E[phi_aa] cov u u^T cov
        + E[phi_ab] (cov u v^T cov + cov v u^T cov) + E[phi_bb] cov v v^T cov``.  Expectations enter as the
        symbols ``e_i_j`` (``= E[erf^(i)(a) erf^(j)(b)]``) returned in the second slot."""
        alphas = [sp.Symbol(f"alpha_{i}") for i in range(5)]
        betas = [sp.Symbol(f"beta_{j}") for j in range(5)]
        repl = {}
        for i in range(4, 0, -1):
            repl[sp.Derivative(self.sigma_a(_a), (_a, i))] = alphas[i]
            repl[sp.Derivative(self.sigma_b(_b), (_b, i))] = betas[i]
        repl[self.sigma_a(_a)], repl[self.sigma_b(_b)] = alphas[0], betas[0]
        expr = sp.expand(expr.xreplace(repl))
        Su, Sv = self.cov * self.u, self.cov * self.v
        used = set()

        def e(i, j):
            used.add((i, j))
            return sp.Symbol(f"e_{i}_{j}")

        total = sp.Integer(0)
        poly = sp.Poly(expr, *alphas, *betas, *self.x)
        for monom, coeff in poly.terms():
            i = [t for t in range(5) if monom[t]]
            j = [t for t in range(5) if monom[5 + t]]
            if len(i) != 1 or len(j) != 1 or monom[i[0]] != 1 or monom[5 + j[0]] != 1:
                raise AssertionError("the per-sample expression is not bilinear in the two activations")
            i, j = i[0] + k, j[0] + k
            xpow = monom[10:]
            if sum(xpow) == 0:
                value = e(i, j)
            elif sum(xpow) == 1:
                r = xpow.index(1)
                value = e(i + 1, j) * Su[r] + e(i, j + 1) * Sv[r]
            elif sum(xpow) == 2:
                r, s_ = [idx for idx, pw in enumerate(xpow) for _ in range(pw)]
                value = (e(i, j) * self.cov[r, s_] + e(i + 2, j) * Su[r] * Su[s_]
                         + e(i + 1, j + 1) * (Su[r] * Sv[s_] + Sv[r] * Su[s_]) + e(i, j + 2) * Sv[r] * Sv[s_])
            else:
                raise AssertionError("degree > 2 in x")
            total += coeff * value
        return total, {sp.Symbol(f"e_{i}_{j}"): expectation(i, j) for i, j in used}


def _vanishes(expr, coordinates, values=None) -> bool:
    """Whether ``expr`` (a polynomial in ``coordinates`` with coefficients in the invariants) is zero: every
    coefficient, after ``values`` are substituted, satisfies :func:`is_zero`."""
    expr = sp.expand(expr)
    if expr == 0:
        return True
    for coeff in sp.Poly(expr, *coordinates).coeffs():
        if values:
            coeff = coeff.xreplace(values)
        if not is_zero(coeff):
            return False
    return True


def _pair_setup(part: str):
    """``(pair, k, f, T, expect, values)``: the coordinates, the derivative order, the closed-form pair term, the
    per-sample pair term, and an expectation operator that records the ``e_i_j`` it introduces in ``values``."""
    P = _Pair()
    k = _part(part)
    values = {}

    def expect(expr):
        out, vals = P.expect(expr, k)
        values.update(vals)
        return out

    return P, k, pair_term(part), P.per_sample(part), expect, values


@cached
def pair_fields(part: str) -> dict:
    """The gradient-level pair objects of ``part`` in ``d = 2`` coordinates (``u`` the differentiated row, ``v``
    the other): ``true_gradient`` ``grad_u f`` (of the closed form) and ``mean_field`` ``E[grad_u T(u, v; x)]``
    (the per-sample autograd gradient, averaged by Stein's lemma), with ``expectations`` (the values of the
    ``e_i_j`` symbols) and ``coordinates``."""
    P, k, f, T, expect, values = _pair_setup(part)
    mean = sp.Matrix([expect(e) for e in P.gradient(T, P.u)])
    return {"true_gradient": P.gradient(f, P.u), "mean_field": mean, "expectations": values,
            "coordinates": P.coordinates}


@cached
def pair_hessians(part: str) -> dict:
    """The Hessian-level pair objects of ``part`` (coordinates as in :func:`pair_fields`): ``true_uu`` / ``true_uv``
    (``grad_u grad_u f``, ``grad_v grad_u f``), ``mean_uu`` / ``mean_uv`` (the Jacobians of the mean field in ``u``
    and in ``v``), ``autograd_uu`` / ``autograd_uv`` (``E[grad_u grad_u T]``, ``E[grad_v grad_u T]``)."""
    P, k, f, T, expect, values = _pair_setup(part)
    grad = P.gradient(f, P.u)
    per_sample_grad = P.gradient(T, P.u)
    fields = pair_fields(part)
    mean = fields["mean_field"].xreplace(fields["expectations"])
    out = {"true_uu": P.jacobian(grad, P.u), "true_uv": P.jacobian(grad, P.v),
           "mean_uu": P.jacobian(mean, P.u), "mean_uv": P.jacobian(mean, P.v),
           "autograd_uu": P.jacobian(per_sample_grad, P.u).applyfunc(expect),
           "autograd_uv": P.jacobian(per_sample_grad, P.v).applyfunc(expect)}
    out["expectations"] = values
    out["coordinates"] = P.coordinates
    return out


def mean_field_equals_true_gradient(parts=PARTS) -> bool:
    """For each part, the expected per-sample autograd gradient of the pair term equals the gradient of the
    closed-form pair term, as functions of ``(u, v, cov)``: the mean field is the true gradient (for every
    row pair, hence for the population loss of any ``K``, ``K*``, output weights and covariance: both are the
    same signed sums ``s_i A_i sum_r s_r A_r (pair object)(z_i, z_r)``)."""
    for part in parts:
        obj = pair_fields(part)
        diff = obj["mean_field"] - obj["true_gradient"]
        if not all(_vanishes(e, obj["coordinates"], obj["expectations"]) for e in diff):
            return False
    return True


def hessians_coincide(parts=PARTS) -> bool:
    """For each part and both blocks (``uu``: a row with itself, ``uv``: with another row), the true Hessian, the
    Jacobian of the mean field and the expected per-sample autograd Hessian of the pair term are equal.  The
    population Hessians are the same signed sums of these blocks (the diagonal block ``i`` collects ``uu`` over
    every ``r`` and ``uv`` at ``r = i``), so the three coincide for any network."""
    for part in parts:
        obj = pair_hessians(part)
        for block in ("uu", "uv"):
            true = obj[f"true_{block}"]
            for other in (obj[f"mean_{block}"], obj[f"autograd_{block}"]):
                if not all(_vanishes(e, obj["coordinates"], obj["expectations"]) for e in (other - true)):
                    return False
    return True


# ----------------------------------------------------------------------------- single-node spectra
@cached
def single_node_spectrum(part: str) -> tuple:
    """``(lambda_parallel, lambda_perp)``: the eigenvalues of the Hessian of ``part`` (``L``, ``J``, ``J2`` or ``H``
    ``= L + lambda_1 J + lambda_2 J2``) for ``K = K* = 1``, ``a = a* = 1``, ``cov = I`` at ``w = w*``, ``|w| = n``:
    along ``w`` and on its orthogonal complement (multiplicity ``d - 1``; rotation invariance about ``w``).

    Derived in ``d = 2`` coordinates: ``F(w) = f(w, w)/2 + f(w*, w*)/2 - f(w, w*)`` with the invariants written
    in coordinates, differentiated twice by SymPy and evaluated at ``w = w* = (n, 0)``; the off-diagonal entry
    is checked to vanish."""
    if part == "H":
        Ls, Js, J2s = (single_node_spectrum(x) for x in PARTS)
        return tuple(sp.factor(Ls[i] + lam1 * Js[i] + lam2 * J2s[i]) for i in range(2))
    f = pair_term(part)
    w = sp.Matrix(sp.symbols("w0 w1", real=True))
    ws = sp.Matrix(sp.symbols("ws0 ws1", real=True))

    def f_of(x, y):
        inv = {p: x.dot(x), q: y.dot(y), c: x.dot(y), g: x.dot(y)}
        return f.subs(D, D_EXPR).subs(inv, simultaneous=True)

    F = f_of(w, w) / 2 + f_of(ws, ws) / 2 - f_of(w, ws)
    Hm = sp.hessian(F, list(w)).subs({w[0]: n, w[1]: 0, ws[0]: n, ws[1]: 0})
    Hm = Hm.applyfunc(lambda e: sp.factor(sp.expand(sp.simplify(e))))
    if Hm[0, 1] != 0 or Hm[1, 0] != 0:
        raise AssertionError(f"the single-node Hessian of {part} is not diagonal at w = w*: {Hm}")
    return Hm[0, 0], Hm[1, 1]


def proofs() -> dict:
    """Every symbolic check of this module by name: each value is True when the identity holds."""
    return {
        "determinant formula": check_determinant_formula(),
        "closed forms": check_closed_forms(),
        "Price's theorem": check_price(),
        "stable kernels": check_stable_kernels(),
        "Stein's lemma": check_stein(),
        "mean field = true gradient": mean_field_equals_true_gradient(),
        "true Hessian = Jacobian of mean field = expected autograd Hessian": hessians_coincide(),
    }
