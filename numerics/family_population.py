"""Population losses of the model family (:mod:`numerics.family`): output weights, activations, covariance.

``L = 1/2 E(g - g*)^2``, ``J = J_1 = 1/2 E|grad_x g - grad_x g*|^2``, ``J2 = 1/2 E||hess_x g - hess_x g*||_F^2``
and ``H = L + lambda_1 J + lambda_2 J2``, for ``g(x) = sum_j a_j sigma(w_j . x)``, ``x ~ N(0, cov)``.

Each is the signed sum over pairs of rows of ``Z = [W; W*]`` (signs ``s = +1`` students, ``-1`` teachers,
output weights ``A = [a; a*]``) of :func:`theory.activations.loss_pair_term`:
``1/2 sum_{p,r} s_p s_r A_p A_r G_pr^k K_k(u_p, u_r)``, ``k = 0, 1, 2`` for ``L``, ``J``, ``J2``, with
``G = Z Z^T`` the Gram matrix of the rows themselves and ``K_k`` the kernel of ``sigma^(k)``
(degree ``p - k``) at the rows ``u = cov^(1/2) z`` that the activations see
(:func:`theory.activations.covariance_reduction`).  The kernels are the generated arc kernels
(``numerics._pair_code``, ``("arc", q, signs)``) on the stable geometry of :mod:`numerics.geometry`,
each with its series branches near 0 and pi.

Accuracy: the sum is exact (``math.fsum``) over terms each accurate to a few ulps, so the error is
at most ``~64 eps sum |pair terms|``; unlike the paper's model (:mod:`numerics.population`) there is no
cancellation-free rewrite next to the teacher, so a loss far below ``eps sum |pair terms|`` is
resolved to that absolute accuracy only.
"""
from __future__ import annotations

import math

import numpy as np

from .compile import generated, pair_function
from .family import Family, cov_sqrt
from .geometry import pair_geometry
from .validation import as_rows

_ORDER = {"L": 0, "J": 1, "J2": 2}


def arc_sum(geo, q: int, c_plus: float, c_minus: float, what: str = "f") -> np.ndarray:
    """The generated ``("arc", q, signs)[what]`` (``"f"``: the kernel; ``"dtheta"``, ``"dtheta2"``,
    ``"dtheta_over_sin"``: its angle derivatives) at every pair of ``geo``, weighted by the coefficients of
    the signs: for ``"f"``, ``E[sigma(u_p . z) sigma(u_r . z)]`` with ``sigma(t) = c_plus t_+^q + c_minus t_-^q``.
    (At an exact kink ``dtheta_over_sin`` is infinite: callers refuse those configurations afterwards.)"""
    out = np.zeros(geo.theta.shape)
    with np.errstate(divide="ignore", invalid="ignore"):
        for signs, weight in (("pp", c_plus * c_plus), ("pm", c_plus * c_minus), ("mp", c_minus * c_plus),
                              ("mm", c_minus * c_minus)):
            if weight != 0.0:
                fn = pair_function(generated().OBJECTS[("arc", q, signs)][what])
                out += weight * fn(geo.na, geo.nb, geo.theta, geo.psi, geo.sin, geo.cos)
    return out


def kernel_matrix(geo, q: int, c_plus: float, c_minus: float) -> np.ndarray:
    """``E[sigma(u_p . z) sigma(u_r . z)]`` for ``sigma(t) = c_plus t_+^q + c_minus t_-^q`` at every pair of
    the geometry ``geo`` (:func:`arc_sum`)."""
    return arc_sum(geo, q, c_plus, c_minus, "f")


def parts_needed(part: str, fam: Family) -> dict:
    """``{part: weight}`` of the losses that make up ``part`` (``H``: ``L``, ``lambda_1 J``, ``lambda_2 J2``)."""
    if part != "H":
        return {part: 1.0}
    lam1, lam2 = fam.sobolev
    out = {"L": 1.0, "J": lam1}
    if lam2 != 0.0:
        out["J2"] = lam2
    return out


def check_part_exists(part: str, fam: Family) -> None:
    """``ValueError`` for ``J2`` of an activation whose second derivative is not a function."""
    if part == "J2" and fam.activation.p < 2:
        raise ValueError(f"J2 does not exist for {fam.activation.name}: its second input derivative is a measure on the "
                         "hyperplanes w . x = 0 (J2 is infinite); it exists for ('relu_power', 2) and ('relu_power', 3)")


def checked_rows(W, W_star) -> tuple:
    """``W``, ``W_star`` as float64 rows (:func:`numerics.validation.as_rows`), refused with a ``ValueError``
    when a row is too small for the family's evaluation, which does not rescale (documented limit:
    squared row norms at least ``2**-500``; below, norms and angles underflow)."""
    W, W_star = as_rows(W, "W"), as_rows(W_star, "W_star")
    for x, name in ((W, "W"), (W_star, "W_star")):
        with np.errstate(under="ignore"):
            n2 = np.einsum("ij,ij->i", x, x)
        if n2.min() < _SMALLEST_SQUARED_NORM:
            raise ValueError(f"row {int(n2.argmin())} of {name} is too small (|row| < 2**-250 ~ 5.5e-76) for the model "
                             "family's evaluation, which does not rescale; rescale the weights (a loss of degree-p "
                             "units is homogeneous of degree 2p in the rows)")
    return W, W_star


_SMALLEST_SQUARED_NORM = 2.0**-500
_NO_RESCALING = (" (or an intermediate does, such as a Gram entry |w|^2: the model family's evaluation does not "
                 "rescale); rescale the weights")


def stacked(W, W_star, fam: Family) -> tuple:
    """``(Z, w, S, U)``: the rows ``Z = [W; W*]``, the signed output weights ``w = [a; -a*]`` (ones where not
    given), ``S = cov^(1/2)`` (``None`` for the identity) and the rows ``U = Z S`` the activations see
    (``S`` is symmetric, so row ``z S`` is ``S z``)."""
    Z = np.vstack([W, W_star])
    a = np.ones(len(W)) if fam.a is None else fam.a
    a_star = np.ones(len(W_star)) if fam.a_star is None else fam.a_star
    S = None if fam.cov is None else cov_sqrt(fam.cov)
    return Z, np.concatenate([a, -a_star]), S, (Z if S is None else Z @ S)


def loss(W, W_star, part: str, fam: Family) -> float:
    """The population ``part`` (``"L"``, ``"J"``, ``"J2"``, ``"H"``) of the family member ``fam``, a float."""
    check_part_exists(part, fam)
    W, W_star = checked_rows(W, W_star)
    with np.errstate(over="ignore", invalid="ignore", under="ignore"):  # a result beyond float64 is refused below
        return _loss(W, W_star, part, fam)


def _loss(W, W_star, part, fam) -> float:
    Z, weights, _, U = stacked(W, W_star, fam)
    geo = pair_geometry(U, U, shared_prefix=True)
    G = Z @ Z.T
    outer = 0.5 * np.outer(weights, weights)
    terms = []
    for name, lam in parts_needed(part, fam).items():
        k = _ORDER[name]
        q, cp, cm = fam.activation.derivative(k)
        pair = kernel_matrix(geo, q, cp, cm) * (G**k if k else 1.0)
        terms += (lam * outer * pair).ravel().tolist()
    value = max(math.fsum(terms), 0.0)  # an expectation of a square; rounding must not make it negative
    if not math.isfinite(value):
        raise ValueError(f"the population {part} exceeds the float64 range here{_NO_RESCALING}")
    return value


# ----------------------------------------------------------------------------- gradients
def gradient(W, W_star, part: str, field: str, fam: Family):
    """The gradient field of ``part`` in the rows of ``W`` (``(K, d)``), or ``(grad_W, grad_a)`` when
    ``fam.train_output``.

    ``field="true"``: the gradient of the population loss, by the chain rule through each pair term
    ``G^k K(u_j, u_r)`` (``u = cov^(1/2) z``): ``d n_a/d u = u^``, ``d theta/d u_j = -e2 / |u_j|``,
    ``d G / d z_j = z_r``.  ``field="mean"``: ``E[autograd gradient]``; it differs only where
    ``sigma^(k)`` is a step (degree 0: ``J`` of relu and leaky_relu, ``J2`` of relu_power(2)), whose
    autograd derivative is 0: the kernel of that step is held fixed, i.e. its ``theta``-derivative term
    (the boundary term of the indicators) is dropped.  In the output weights both fields agree (the loss
    is a polynomial in them).  The true field does not exist at exactly (anti-)parallel rows where a
    kernel has a kink (``ValueError``); the mean field exists everywhere.
    """
    from .geometry import plane_directions

    check_part_exists(part, fam)
    W, W_star = checked_rows(W, W_star)
    with np.errstate(over="ignore", invalid="ignore", under="ignore"):  # a result beyond float64 is refused below
        return _gradient(W, W_star, part, field, fam, plane_directions)


def _gradient(W, W_star, part, field, fam, plane_directions):
    K, d = W.shape
    Z, w, S, U = stacked(W, W_star, fam)
    geo = pair_geometry(U[:K], U, shared_prefix=True)
    e2 = plane_directions(U[:K], U, geo)[1]
    nu = geo.na  # (K, 1): |u_j|
    G = Z[:K] @ Z.T
    self_pair = np.zeros(G.shape, dtype=bool)
    self_pair[np.arange(K), np.arange(K)] = True
    kink = (geo.parallel | geo.antiparallel) & ~self_pair
    grad_W, grad_a = np.zeros((K, d)), np.zeros(K)
    for name, lam in parts_needed(part, fam).items():
        k = _ORDER[name]
        q, cp, cm = fam.activation.derivative(k)
        Km = kernel_matrix(geo, q, cp, cm)
        Gk = G**k
        grad_a += lam * (Gk * Km) @ w  # d/da_j of 1/2 sum w_p w_r T_pr (s_j = +1 for a student)
        coef = w[:K, None] * w[None, :] * lam  # w_j w_r
        # d/dz_j through G^k: k G^(k-1) z_r (self pair: d |z_j|^(2k) = 2k |z_j|^(2k-2) z_j, half of it from
        # each of the two index orders, so the same expression) ...
        if k:
            grad_W += (coef * k * G ** (k - 1) * Km) @ Z
        # ... and through the norms of u: (q / |u_j|) K u^_j (self pair: 2q/|u|^2 K u, halved likewise)
        radial = (coef * Gk * Km * q / nu).sum(axis=1)
        grad_W += _times_S(radial[:, None] * U[:K] / nu, S)
        if q == 0 and field == "mean":
            continue  # a step: autograd holds its kernel fixed (no theta-derivative term)
        dK = arc_sum(geo, q, cp, cm, "dtheta")
        if field == "true" and np.any(kink & (dK != 0)):
            j, r = np.argwhere(kink & (dK != 0))[0]
            raise ValueError(f"the true gradient of {part} does not exist here: W[{j}] and "
                             f"{'W' if r < K else 'W_star'}[{r if r < K else r - K}] are exactly (anti-)parallel "
                             "(as seen through cov^(1/2)), where a kernel of this activation has a kink. The mean "
                             "field exists.")
        dK[self_pair] = 0.0
        angular = -np.einsum("jr,jrd->jd", coef * Gk * dK / nu, e2)
        grad_W += _times_S(angular, S)
    if not (np.isfinite(grad_W).all() and np.isfinite(grad_a).all()):
        raise ValueError(f"the {field} gradient of {part} exceeds the float64 range here{_NO_RESCALING}")
    return (grad_W, grad_a) if fam.train_output else grad_W


def _times_S(v: np.ndarray, S) -> np.ndarray:
    """Rows ``v_j`` mapped by ``S = cov^(1/2)`` (a gradient in ``u = S z`` pulled back to ``z``)."""
    return v if S is None else v @ S
