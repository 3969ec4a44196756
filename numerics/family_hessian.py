"""Hessian of the population loss and Jacobian of the mean field for the model family (:mod:`numerics.family`).

The loss is ``1/2 sum_{p,r} w_p w_r T_pr`` with signed output weights ``w`` and pair terms
``T_pr = sum_parts lambda G_pr^k K(u_p, u_r)`` (:mod:`numerics.family_population`; ``u = S z``,
``S = cov^(1/2)``, ``G = z_p . z_r``).  Each kernel ``K = n_a^q n_b^q kappa(theta)`` has, in the plane
basis ``e1 = u_a^``, ``e2`` (the unit vector of ``u_b`` orthogonal to ``u_a``), ``P = I - e1 e1^T - e2 e2^T``
(``C = cos theta``, ``S_t = sin theta``; ``K_t``, ``K_tt`` its ``theta``-derivatives, ``K_ts = K_t / S_t``):

* ``grad_a K = (q K / n_a) e1 - (K_t / n_a) e2``,
  ``grad_b K = (q K / n_b)(C e1 + S_t e2) + (K_t / n_b)(-S_t e1 + C e2)``;
* ``H_aa = [q(q-1) K e1 e1^T + (1-q) K_t (e1 e2^T + e2 e1^T) + (K_tt + q K) e2 e2^T + (q K + K_ts C) P] / n_a^2``;
* ``H_ab = [(q^2 K C - q K_t S_t) e1 e1^T + (q^2 K S_t + q K_t C) e1 e2^T + (K_tt S_t - q K_t C) e2 e1^T
  - (q K_t S_t + K_tt C) e2 e2^T - K_ts P] / (n_a n_b)``

(the e-basis chain rule of :mod:`theory.calculus` applied to ``n_a^q n_b^q kappa(theta)``), and the
product rule with ``G^k`` in ``z`` (``grad_{z_a} G = z_b``) and ``S`` for the change of rows.  At exactly
(anti-)parallel rows a flat kernel (``K_t = 0`` there) gives ``(K_tt + q K)(I - e1 e1^T)``, whatever ``e2`` is;
a kernel with a kink there has no Hessian (``ValueError``).

Memory: ``O(K (K + K*) d^2)`` (a ``d x d`` block per pair).

``field="autograd"``: the expected per-sample autograd Hessian (:func:`_autograd_terms`: the kernel
derivatives that are deltas on the hyperplanes are left out).

``field="mean"``: the Jacobian of the mean field.  The mean field holds the kernel of a step fixed
(degree ``q = 0``, see :func:`numerics.family_population.gradient`), i.e. it lacks the term
``G^k S grad_a K``; its Jacobian lacks that term's derivatives, and keeps every derivative of the rest
(so it is not symmetric).  Elsewhere it is the Hessian.
"""
from __future__ import annotations

import numpy as np

from theory.vocabulary import HESSIAN_FIELDS

from .compile import generated, pair_function
from .family import Family
from .family_population import (_NO_RESCALING, _ORDER, arc_sum, check_part_exists, checked_rows, kernel_matrix,
                                parts_needed, stacked)
from .geometry import pair_geometry, plane_directions


def _outer(x, y):
    return x[..., :, None] * y[..., None, :]


def hessian(W, W_star, part: str, field: str, fam: Family) -> np.ndarray:
    """``(K d, K d)`` (index ``i d + k``), or over ``concatenate([W.ravel(), a])`` when ``fam.train_output``."""
    if field not in HESSIAN_FIELDS:
        raise ValueError(f"field for the Hessian must be one of {HESSIAN_FIELDS}; got {field!r}")
    check_part_exists(part, fam)
    W, W_star = checked_rows(W, W_star)
    with np.errstate(over="ignore", invalid="ignore", under="ignore"):  # a result beyond float64 is refused below
        return _hessian(W, W_star, part, field, fam)


def _hessian(W, W_star, part, field, fam) -> np.ndarray:
    K, d = W.shape
    Z, w, S, U = stacked(W, W_star, fam)
    M = len(Z)
    Smat = np.eye(d) if S is None else S
    geo = pair_geometry(U[:K], U, shared_prefix=True)
    e1 = U[:K] / geo.na  # (K, d)
    e2 = plane_directions(U[:K], U, geo)[1]  # (K, M, d)
    self_pair = np.zeros((K, M), dtype=bool)
    self_pair[np.arange(K), np.arange(K)] = True
    kink = (geo.parallel | geo.antiparallel) & ~self_pair
    # the self pairs at a safe right angle (their terms are the separate self term below)
    for name, value in (("theta", np.pi / 2), ("psi", np.pi / 2), ("sin", 1.0), ("cos", 0.0)):
        getattr(geo, name)[self_pair] = value
    G = Z[:K] @ Z.T
    hWW = np.zeros((K, d, K, d))
    hWa = np.zeros((K, d, K))  # d(field in W)_j / d a_l
    haW = np.zeros((K, K, d))  # d(field in a)_j / d z_l
    haa = np.zeros((K, K))
    for name, lam in parts_needed(part, fam).items():
        k = _ORDER[name]
        q, cp, cm = fam.activation.derivative(k)
        terms = _pair_terms(geo, e1, e2, Z, G, Smat, q, cp, cm, k, K)
        if field == "autograd":
            terms = _autograd_terms(terms, q)
        elif np.any(kink & (terms["Kt"] != 0)):
            j, r = np.argwhere(kink & (terms["Kt"] != 0))[0]
            raise ValueError(f"the Hessian of {part} does not exist here: W[{j}] and "
                             f"{'W' if r < K else 'W_star'}[{r if r < K else r - K}] are exactly (anti-)parallel "
                             "(as seen through cov^(1/2)), where a kernel of this activation has a kink")
        angular = not (field == "mean" and q == 0)  # the mean field of a step kernel lacks G^k S grad_a K
        _accumulate(hWW, hWa, haW, haa, terms, Z, G, w, lam, k, K, angular)
        _add_self_terms(hWW, hWa, haW, haa, Z[:K], U[:K], Smat, w, lam, k, q, cp, cm, K)
    n = K * d
    if not fam.train_output:
        out = hWW.reshape(n, n)
    else:
        out = np.zeros((n + K, n + K))
        out[:n, :n] = hWW.reshape(n, n)
        out[:n, n:] = hWa.reshape(n, K)
        out[n:, :n] = haW.reshape(K, n)
        out[n:, n:] = haa
    if not np.isfinite(out).all():
        raise ValueError(f"an entry of the {field} Hessian of {part} exceeds the float64 range here{_NO_RESCALING}")
    return out


def _pair_terms(geo, e1, e2, Z, G, Smat, q, cp, cm, k, K) -> dict:
    """Per pair ``(j, r)``: the kernel, its derivatives and the z-space gradients and second derivatives of
    ``K(u_j, u_r)`` (self pairs zeroed)."""
    Kv = kernel_matrix(geo, q, cp, cm)
    Kt = arc_sum(geo, q, cp, cm, "dtheta")
    Ktt = arc_sum(geo, q, cp, cm, "dtheta2")
    Kts = arc_sum(geo, q, cp, cm, "dtheta_over_sin")
    na, nb, C, St = geo.na, geo.nb, geo.cos, geo.sin
    E1 = np.broadcast_to(e1[:, None, :], e2.shape)
    grad_a = (q * Kv / na)[..., None] * E1 - (Kt / na)[..., None] * e2
    grad_b = ((q * Kv * C - Kt * St) / nb)[..., None] * E1 + ((q * Kv * St + Kt * C) / nb)[..., None] * e2
    d = e1.shape[1]
    P = np.eye(d) - _outer(E1, E1) - _outer(e2, e2)
    sym = _outer(E1, e2) + _outer(e2, E1)
    H_aa = ((q * (q - 1) * Kv)[..., None, None] * _outer(E1, E1) + ((1 - q) * Kt)[..., None, None] * sym
            + (Ktt + q * Kv)[..., None, None] * _outer(e2, e2) + (q * Kv + Kts * C)[..., None, None] * P) / (na**2)[..., None, None]
    H_ab = (((q * q * Kv * C - q * Kt * St))[..., None, None] * _outer(E1, E1)
            + (q * q * Kv * St + q * Kt * C)[..., None, None] * _outer(E1, e2)
            + (Ktt * St - q * Kt * C)[..., None, None] * _outer(e2, E1)
            - (q * Kt * St + Ktt * C)[..., None, None] * _outer(e2, e2)
            - Kts[..., None, None] * P) / (na * nb)[..., None, None]
    # to z-space: gradients S g, second derivatives S H S (S symmetric)
    out = {"K": Kv, "Kt": Kt, "ga": grad_a @ Smat, "gb": grad_b @ Smat,
           "Haa": Smat @ H_aa @ Smat, "Hab": Smat @ H_ab @ Smat}
    for key in ("K", "Kt"):
        out[key] = np.where(_self(out[key].shape, K), 0.0, out[key])
    for key in ("ga", "gb", "Haa", "Hab"):
        mask = _self(out[key].shape[:2], K).reshape(out[key].shape[:2] + (1,) * (out[key].ndim - 2))
        out[key] = np.where(mask, 0.0, out[key])
    return out


def _autograd_terms(t: dict, q: int) -> dict:
    """The pair terms as the expected per-sample autograd Hessian sees them.  Autograd differentiates
    ``f = sigma^(k)`` (degree ``q``) almost everywhere: ``E[f'(a.x) f(b.x) x] = grad_a K`` and
    ``E[f'(a.x) f'(b.x) x x^T] = H_ab`` hold for ``q >= 1`` (``f`` Lipschitz) and ``E[f''(a.x) f(b.x) x x^T] = H_aa``
    for ``q >= 2``; below that the derivative is a delta (or its derivative) on the hyperplane ``a.x = 0``,
    which autograd counts as 0.  (The self terms are unchanged: ``f^2`` is ``C^1`` for ``q >= 1`` and constant
    for ``q = 0``.)  At an exact kink only dropped terms are singular: the object exists there."""
    t = dict(t)
    zero = np.zeros_like
    if q == 0:
        t["ga"], t["gb"], t["Hab"] = zero(t["ga"]), zero(t["gb"]), zero(t["Hab"])
    if q < 2:
        t["Haa"] = zero(t["Haa"])
    return t


def _self(shape, K):
    m = np.zeros(shape, dtype=bool)
    m[np.arange(K), np.arange(K)] = True
    return m


def _power(G, m: int, factor: float):
    """``factor * G^m``, zero when ``factor`` is (never ``0 * G^(negative)``)."""
    return factor * G ** m if factor != 0 else np.zeros(G.shape)


def _accumulate(hWW, hWa, haW, haa, t, Z, G, w, lam, k, K, angular: bool) -> None:
    """Add the pair terms ``(j, r)``, ``r != j``, of ``1/2 sum w_p w_r T_pr`` to the blocks.

    Field of row ``j``: ``w_j sum_r w_r X_jr`` with ``X_jr = lam [k G^(k-1) K z_r + G^k S grad_a K]`` (the
    second part only when ``angular``); field of ``a_j``: ``sum_r w_r lam G^k K`` (always whole: the mean
    and true fields in ``a`` agree).
    """
    Kv, ga, gb = t["K"], t["ga"], t["gb"]
    c2 = lam * _power(G, k - 2, k * (k - 1)) * Kv  # k(k-1) G^(k-2) K
    g1 = lam * _power(G, k - 1, k)  # k G^(k-1)
    gk = lam * G**k
    wjr = w[:K, None] * w[None, :]  # (K, M)
    Zs = Z[:K]
    # d X_jr / d z_j  and  d X_jr / d z_r
    djj = c2[..., None, None] * _outer(Z[None, :, :], Z[None, :, :]) + g1[..., None, None] * _outer(Z[None, :, :], ga)
    djr = (c2[..., None, None] * _outer(Z[None, :, :], Zs[:, None, :]) + g1[..., None, None] * _outer(Z[None, :, :], gb)
           + (g1 * Kv)[..., None, None] * np.eye(Z.shape[1]))
    X = (g1 * Kv)[..., None] * Z[None, :, :]
    if angular:
        djj = djj + g1[..., None, None] * _outer(ga, Z[None, :, :]) + gk[..., None, None] * t["Haa"]
        djr = djr + g1[..., None, None] * _outer(ga, Zs[:, None, :]) + gk[..., None, None] * t["Hab"]
        X = X + gk[..., None] * ga
    idx = np.arange(K)
    hWW[idx, :, idx, :] += np.einsum("jr,jrab->jab", wjr, djj)
    hWW += np.einsum("jl,jlab->jalb", wjr[:, :K], djr[:, :K])
    hWa[idx, :, idx] += np.einsum("r,jra->ja", w, X)
    hWa += np.einsum("j,jla->jal", w[:K], X[:, :K])
    # the a-field: d/d a_l of sum_r w_r T_jr is T_jl; d/d z_j and d/d z_l of it (whole gradients)
    T = gk * Kv
    haa += T[:, :K]
    grad_j = (g1 * Kv)[..., None] * Z[None, :, :] + gk[..., None] * ga  # d T_jr / d z_j
    grad_r = (g1 * Kv)[..., None] * Zs[:, None, :] + gk[..., None] * gb  # d T_jr / d z_r
    haW[idx, idx, :] += np.einsum("r,jra->ja", w, grad_j)
    haW += w[None, :K, None] * grad_r[:, :K, :]


def _add_self_terms(hWW, hWa, haW, haa, Zs, Us, Smat, w, lam, k, q, cp, cm, K) -> None:
    """The self terms ``1/2 w_j^2 phi_j``, ``phi(z) = lam |z|^(2k) |S z|^(2q) kappa0`` (``kappa0``: the kernel at
    ``theta = 0`` for unit rows), to every block."""
    kappa0 = 0.0
    for signs, weight in (("pp", cp * cp), ("pm", cp * cm), ("mp", cm * cp), ("mm", cm * cm)):
        if weight != 0.0:
            fn = pair_function(generated().OBJECTS[("arc", q, signs)]["f"])
            kappa0 += weight * float(fn(1.0, 1.0, 0.0, np.pi))
    d = Zs.shape[1]
    S2 = Smat @ Smat
    for j in range(K):
        z = Zs[j]
        s2z = S2 @ z
        nz2, nu2 = z @ z, Us[j] @ Us[j]
        c = lam * kappa0
        phi = c * nz2**k * nu2**q
        grad = c * (2 * k * nz2 ** (k - 1) * nu2**q * z if k else 0.0) + c * (2 * q * nz2**k * nu2 ** (q - 1) * s2z if q else 0.0)
        hess = np.zeros((d, d))
        if k:
            hess += c * 2 * k * nz2 ** (k - 1) * nu2**q * np.eye(d)
            if k > 1:
                hess += c * 2 * k * (2 * k - 2) * nz2 ** (k - 2) * nu2**q * np.outer(z, z)
        if q:
            hess += c * 2 * q * nz2**k * nu2 ** (q - 1) * S2
            if q > 1:
                hess += c * 2 * q * (2 * q - 2) * nz2**k * nu2 ** (q - 2) * np.outer(s2z, s2z)
        if k and q:
            hess += c * 4 * k * q * nz2 ** (k - 1) * nu2 ** (q - 1) * (np.outer(z, s2z) + np.outer(s2z, z))
        wj = w[j]
        hWW[j, :, j, :] += 0.5 * wj * wj * hess
        hWa[j, :, j] += wj * grad
        haW[j, j, :] += wj * grad
        haa[j, j] += phi
