"""Population losses of the ``erf`` network, their true gradient and Hessian: NumPy float64, and a PyTorch loss.

``g(x) = sum_j a_j erf(w_j . x)`` against ``g*(x) = sum_j a*_j erf(w*_j . x)``, ``x ~ N(0, cov)``, with the
normalisation of the rest of the suite (:mod:`numerics.family`)::

    L  = E[(g - g*)^2] / 2
    J  = E|grad_x g - grad_x g*|^2 / 2
    J2 = E||hess_x g - hess_x g*||_F^2 / 2
    H  = L + lambda_1 J + lambda_2 J2          (sobolev = (lambda_1, lambda_2); used by part "H" only)

Each is ``1/2 sum_{p,r} s_p s_r A_p A_r f(z_p, z_r)`` over the rows ``Z = [W; W*]`` (signs ``+1`` for students,
``-1`` for teachers; ``A = [a; a*]``, ones by default) of the pair term ``f(p, q, c, g, D)`` of
:func:`theory.erf.pair_term`, with ``p = z_p^T cov z_p``, ``q = z_r^T cov z_r``, ``c = z_p^T cov z_r``,
``g = z_p . z_r`` and ``D = 1 + 2p + 2q + 4 max(pq - c^2, 0) >= 1``.  The pair term and all its partial
derivatives of order <= 2 in ``(p, q, c, g, D)`` (:func:`theory.erf.pair_partials`) are generated NumPy functions
(:mod:`numerics._erf_code`, written by ``python -m theory.erf_codegen`` from ``sympy.lambdify``'s source: no SymPy
at run time, numbers bit-identical to the lambdified functions'); nothing is typed in here but the
chain rule through the invariants (``grad_u p = 2 cov u``, ``grad_u c = cov v``, ``grad_u g = v``, ``grad_u D =
4 cov u + 8 cov (q u - c v)``, and their second derivatives).

Which object: ``erf`` is smooth, so the **mean field** ``E_x[grad_W l]`` (what SGD with autograd follows) *is*
the **true gradient** ``grad_W E_x[l]`` returned by :func:`gradient`, and :func:`hessian` is at once the
Hessian of the population loss, the Jacobian of the mean field and the expected per-sample autograd Hessian
(:func:`theory.erf.mean_field_equals_true_gradient`, :func:`theory.erf.hessians_coincide`).

Self terms: a row paired with itself (the diagonal of the pair sum) goes through its own function
``phi(p, g) = f(p, p, p, g)`` (:func:`theory.erf.self_partials`): at ``v = u`` the partials of ``f`` in ``(p, q, c, D)``
are large and cancel.  Near-parallel distinct rows keep that cancellation, reduced by treating ``D`` as an
invariant of its own whose gradient ``4 cov u + 8 cov (q u - c v)`` is formed pair by pair: their relative
error grows like ``eps |w|^2`` (``1e-16`` at ``|w| ~ 1``, ``1e-4`` at ``|w| ~ 1e6``); generic pairs keep full
precision at every scale.

Saturation: for large rows (``|w| = s``) the activation saturates (``erf -> sign``).  ``D`` is a sum of
non-negative terms (``D >= 1``) and ``k_0`` is an ``atan`` (no ``arcsin`` argument to clip), so no NaN or inf
arises.  ``L`` stays bounded (``k_0`` tends to the sign kernel ``(2/pi) arcsin(c / sqrt(pq))``), its gradient
decays like ``1/s`` and its Hessian like ``1/s^2``.  ``J`` and ``J2`` grow like ``s`` and ``s^3`` (``erf^(k)(w.x)``
is a slab of width ``1/s`` and height ``s^(k-1)``, and ``|grad_x g|^2`` carries ``|w|^2``, ``||hess_x g||^2``
``|w|^4``), with gradients ``~ 1`` and ``~ s^2``, Hessians ``~ 1/s`` and ``~ s``.  Supported range, checked:
every squared norm ``w^T cov w`` and ``|w|^2`` at most :data:`MAX_SQUARED_NORM` (``1e30``; beyond it the powers
``D^(-7/2)`` of the second partials leave float64) and every output weight at most :data:`MAX_OUTPUT_WEIGHT` in
size; outside it a ``ValueError``.  The loss is a signed sum of pair terms, so its absolute error is ``~ eps``
times the sum of their sizes (it can be ``-1e-16``-ish instead of ``0`` at ``W = W*``).

:func:`loss_torch` evaluates the same generated pair term with torch operations, so that ``torch.autograd``
and ``torch.func.hessian`` of it give independent evaluations of :func:`gradient` and :func:`hessian`.
Single instances only (``W`` of shape ``(K, d)``); no batch axis.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from . import _erf_code
from .family import _covariance, _sobolev, _weights

PARTS = ("L", "J", "J2", "H")
ORDER_PARTS = ("L", "J", "J2")  # the kernel parts (H is their weighted sum)
MAX_SQUARED_NORM = 1e30
MAX_OUTPUT_WEIGHT = 1e50
_U_SLOT = ("p", "c", "g", "D")  # the invariants that depend on the first row of a pair
_V_SLOT = ("q", "c", "g", "D")  # ... on the second
_ORDER = ("p", "q", "c", "g", "D")  # the order of the keys of theory.erf.pair_partials


# ----------------------------------------------------------------------------- generated functions
@lru_cache(maxsize=None)
def _numpy_partials(part: str) -> tuple:
    """``({key: function(p, q, c, g, D)}, {key: function(p, g)})``: the partials of order <= 2 of the pair term of
    ``part`` in its independent variables, and of the self term (theory.erf.pair_partials, self_partials): the
    generated tables ``_erf_code.PAIR[part]``, ``_erf_code.SELF[part]`` (``python -m theory.erf_codegen``; each
    function bit-identical to ``sympy.lambdify(..., modules="numpy")`` of its expression)."""
    return _erf_code.PAIR[part], _erf_code.SELF[part]


def generated_partials(part: str) -> tuple:
    """``({key: function(p, q, c, g, D)}, {key: function(p, g)})``: the NumPy functions, generated from
    :func:`theory.erf.pair_partials` and :func:`theory.erf.self_partials`, of the partials of order <= 2 of the pair
    term of ``part`` (``"L"``, ``"J"`` or ``"J2"``) and of its self term; keys as there (``()`` the term itself,
    ``("p",)``, ``("p", "q")``, ...), from the generated module :mod:`numerics._erf_code` (no SymPy); for batched code such as
    :mod:`numerics.erf_landscape`."""
    if part not in ORDER_PARTS:
        raise ValueError(f"part must be one of {ORDER_PARTS}; got {part!r}")
    return _numpy_partials(part)


@lru_cache(maxsize=None)
def _torch_pair_term(part: str):
    """The pair term of ``part`` as a function of torch tensors ``(p, q, c, g, D)``: the generated
    ``_erf_code.TORCH_PAIR[part]`` (``sympy.lambdify(..., modules="torch")``'s source) with ``xp = torch``."""
    import torch

    term = _erf_code.TORCH_PAIR[part]

    def pair_term(p, q, c, g, D):
        return term(torch, p, q, c, g, D)

    return pair_term


def _key(*names) -> tuple:
    return tuple(sorted(names, key=_ORDER.index))


# ----------------------------------------------------------------------------- input checks
def _host(x) -> np.ndarray:
    """``x`` as a NumPy array; a torch tensor read with ``tolist`` (which also works inside ``torch.func``)."""
    if hasattr(x, "detach"):
        return np.asarray(x.detach().tolist(), dtype=np.float64 if x.is_floating_point() else None)
    return np.asarray(x)


def _rows(x, name: str) -> np.ndarray:
    """``x`` as a finite float64 ``(rows, d)`` array, else a ``ValueError`` naming ``name``."""
    try:
        arr = _host(x)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a real array of shape (rows, d); got {type(x).__name__}: {exc}") from None
    if arr.dtype.kind not in "iuf":
        raise ValueError(f"{name} must hold real numbers; got dtype {arr.dtype}")
    if arr.ndim != 2 or arr.shape[0] < 1 or arr.shape[1] < 1:
        raise ValueError(f"{name} must have shape (rows, d) with rows, d >= 1; got shape {arr.shape}")
    arr = arr.astype(np.float64)
    if not np.isfinite(arr).all():
        i, k = np.argwhere(~np.isfinite(arr))[0]
        raise ValueError(f"{name}[{i}, {k}] = {arr[i, k]} is not finite")
    return arr


@dataclass(frozen=True)
class _Setup:
    """One checked call: rows ``Z = [W; W*]``, ``SZ = Z cov``, signed output weights ``sA``, ``K``, ``d``, ``cov``."""

    Z: np.ndarray
    SZ: np.ndarray
    sA: np.ndarray
    K: int
    d: int
    cov: np.ndarray
    weights: dict


def part_weights(part, sobolev=(1.0, 0.0)) -> dict:
    """``{kernel part: weight}`` of ``part`` (``H`` is ``L + lambda_1 J + lambda_2 J2``; zero weights left out);
    ``ValueError`` for an unknown part or a bad ``sobolev``."""
    return _part_weights(part, sobolev)


def _part_weights(part, sobolev) -> dict:
    """``{kernel part: weight}`` of ``part``: ``H`` is ``L + lambda_1 J + lambda_2 J2``."""
    if not isinstance(part, str) or part not in PARTS:
        raise ValueError(f"part must be one of {PARTS}; got {part!r}")
    lam1, lam2 = _sobolev(sobolev)
    if part != "H":
        return {part: 1.0}
    return {name: w for name, w in (("L", 1.0), ("J", lam1), ("J2", lam2)) if w != 0.0}


def _setup(W, W_star, part, a, a_star, cov, sobolev) -> _Setup:
    W = _rows(W, "W")
    W_star = _rows(W_star, "W_star")
    K, d = W.shape
    if W_star.shape[1] != d:
        raise ValueError(f"W_star must have d = {d} columns like W; got shape {W_star.shape}")
    weights = _part_weights(part, sobolev)
    a = np.ones(K) if a is None else _weights(_host(a), K, "a")
    a_star = np.ones(len(W_star)) if a_star is None else _weights(_host(a_star), len(W_star), "a_star")
    for name, arr in (("a", a), ("a_star", a_star)):
        if np.abs(arr).max() > MAX_OUTPUT_WEIGHT:
            raise ValueError(f"{name} has an entry of size > {MAX_OUTPUT_WEIGHT:g}: outside the supported range")
    S = np.eye(d) if cov is None else _covariance(_host(cov), d)
    Z = np.concatenate([W, W_star])
    SZ = Z @ S
    for name, rows, lo in (("W", W, 0), ("W_star", W_star, K)):
        sq = np.maximum(np.einsum("ik,ik->i", rows, rows), np.einsum("ik,ik->i", rows, SZ[lo:lo + len(rows)]))
        if not (sq <= MAX_SQUARED_NORM).all():
            i = int(np.argmax(~(sq <= MAX_SQUARED_NORM)))
            raise ValueError(f"row {i} of {name} has squared norm {sq[i]:.3g} (|w|^2 or w^T cov w) > "
                             f"{MAX_SQUARED_NORM:g}: outside the supported range (the activation is saturated "
                             "far earlier: rescale the rows)")
    sA = np.concatenate([a, -a_star])
    return _Setup(Z, SZ, sA, K, d, S, weights)


# ----------------------------------------------------------------------------- pair arrays
@dataclass(frozen=True)
class _Pairs:
    """The invariants of every ordered pair of rows ``(i, r)``, each ``(P, P)``: ``p`` (of row ``i``), ``q`` (of row
    ``r``), ``c``, ``g``, ``D``; ``pv`` and ``gv`` ``(P,)``: ``z^T cov z`` and ``|z|^2`` of each row."""

    p: np.ndarray
    q: np.ndarray
    c: np.ndarray
    g: np.ndarray
    D: np.ndarray
    pv: np.ndarray
    gv: np.ndarray


def _pairs(st: _Setup) -> _Pairs:
    C = st.Z @ st.SZ.T
    C = (C + C.T) / 2  # the Gram matrix in the cov metric, symmetric entry for entry
    G = st.Z @ st.Z.T
    G = (G + G.T) / 2
    pv, gv = np.diagonal(C).copy(), np.diagonal(G).copy()
    p, q = np.broadcast_to(pv[:, None], C.shape), np.broadcast_to(pv[None, :], C.shape)
    gram = np.maximum(p * q - C * C, 0.0)  # pq - c^2 >= 0 (Cauchy-Schwarz); rounding can make it negative
    D = 1.0 + 2.0 * p + 2.0 * q + 4.0 * gram
    return _Pairs(p, q, C, G, D, pv, gv)


def _combined(st: _Setup, pr: _Pairs, keys, self_keys=()) -> tuple:
    """``({key: (P, P)}, {key: (P,)})``: the weighted sums over the kernel parts of ``st`` of the pair partials in
    ``keys`` (the diagonal ``i = r`` set to zero: a row with itself goes through the self term) and of the
    self-term partials in ``self_keys``."""
    pair, own = {}, {}
    off = ~np.eye(len(pr.pv), dtype=bool)
    for key in keys:
        total = np.zeros(pr.c.shape)
        for part, lam in st.weights.items():
            value = _numpy_partials(part)[0][key](pr.p, pr.q, pr.c, pr.g, pr.D)
            total += lam * np.broadcast_to(np.asarray(value, dtype=np.float64), total.shape)
        pair[key] = np.where(off, total, 0.0)
    for key in self_keys:
        total = np.zeros(pr.pv.shape)
        for part, lam in st.weights.items():
            value = _numpy_partials(part)[1][key](pr.pv, pr.gv)
            total += lam * np.broadcast_to(np.asarray(value, dtype=np.float64), total.shape)
        own[key] = total
    return pair, own


def _slot_gradients(st: _Setup, pr: _Pairs, rows, cols) -> tuple:
    """``(U, V)``: the gradients of the invariants of the pairs ``(i, r)``, ``i`` in ``rows``, ``r`` in ``cols``, in the
    first row (``U[X]``, ``X`` in ``p, c, g, D``) and in the second (``V[Y]``, ``Y`` in ``q, c, g, D``), each
    ``(len(rows), len(cols), d)``.  ``grad_u D = 4 cov u + 8 cov (q u - c v)`` is formed pair by pair (no large
    terms cancel after weighting)."""
    Su, Sv = st.SZ[rows][:, None, :], st.SZ[cols][None, :, :]
    u, v = st.Z[rows][:, None, :], st.Z[cols][None, :, :]
    q, c = pr.q[np.ix_(rows, cols)][..., None], pr.c[np.ix_(rows, cols)][..., None]
    p = pr.p[np.ix_(rows, cols)][..., None]
    shape = (len(rows), len(cols), st.d)
    U = {"p": np.broadcast_to(2.0 * Su, shape), "c": np.broadcast_to(Sv, shape), "g": np.broadcast_to(v, shape),
         "D": 4.0 * Su + 8.0 * (q * Su - c * Sv)}
    V = {"q": np.broadcast_to(2.0 * Sv, shape), "c": np.broadcast_to(Su, shape), "g": np.broadcast_to(u, shape),
         "D": 4.0 * Sv + 8.0 * (p * Sv - c * Su)}
    return U, V


# ----------------------------------------------------------------------------- public API
def loss(W, W_star, part, *, a=None, a_star=None, cov=None, sobolev=(1.0, 0.0)) -> float:
    """The population loss ``part`` (``"L"``, ``"J"``, ``"J2"`` or ``"H"``) of the erf network: a float.

    ``W`` ``(K, d)``, ``W_star`` ``(K*, d)``; ``a`` ``(K,)``, ``a_star`` ``(K*,)`` (ones when ``None``);
    ``cov`` ``(d, d)`` symmetric positive definite (identity when ``None``); ``sobolev = (lambda_1, lambda_2)``
    weighs ``J`` and ``J2`` in ``H``.  ``ValueError`` names the offending argument."""
    st = _setup(W, W_star, part, a, a_star, cov, sobolev)
    pair, own = _combined(st, _pairs(st), [()], [()])
    return float(0.5 * (st.sA @ pair[()] @ st.sA + (st.sA * st.sA) @ own[()]))


def gradient(W, W_star, part, *, a=None, a_star=None, cov=None, sobolev=(1.0, 0.0), train_output=False):
    """The true gradient of the population loss ``part`` in ``W``: ``(K, d)``; with ``train_output=True`` the pair
    ``(grad_W, grad_a)``.  For erf it equals the mean field ``E_x[grad l]`` (theory.erf).

    ``grad_{w_i} = a_i sum_{r != i} s_r A_r grad_u f(w_i, z_r) + a_i^2 grad phi(w_i) / 2`` (``grad_u f = sum_X f_X
    grad_u X``, ``phi`` the self term) and ``d/da_i = sum_{r != i} s_r A_r f(w_i, z_r) + a_i phi(w_i)``."""
    if not isinstance(train_output, (bool, np.bool_)):
        raise ValueError(f"train_output must be True or False; got {train_output!r}")
    st = _setup(W, W_star, part, a, a_star, cov, sobolev)
    K, P = st.K, len(st.Z)
    pr = _pairs(st)
    pair, own = _combined(st, pr, [()] + [(X,) for X in _U_SLOT], [(), ("p",), ("g",)])
    w = st.sA[:K, None] * st.sA[None, :]  # s_i A_i s_r A_r (s_i = +1 for a student)
    U, _ = _slot_gradients(st, pr, np.arange(K), np.arange(P))
    grad_W = sum(np.einsum("ir,ird->id", w * pair[(X,)][:K], U[X]) for X in _U_SLOT)
    A2 = st.sA[:K] ** 2
    grad_W = grad_W + A2[:, None] * (own[("p",)][:K, None] * st.SZ[:K] + own[("g",)][:K, None] * st.Z[:K])
    if not train_output:
        return grad_W
    return grad_W, pair[()][:K] @ st.sA + st.sA[:K] * own[()][:K]


def hessian(W, W_star, part, *, a=None, a_star=None, cov=None, sobolev=(1.0, 0.0),
            train_output=False) -> np.ndarray:
    """The Hessian of the population loss ``part`` in ``W`` (flattened, index ``i*d + k``): ``(K d, K d)``; with
    ``train_output=True`` over ``concatenate([W.ravel(), a])`` (:func:`output_blocks`), ``(K d + K, K d + K)``.  For
    erf it is also the Jacobian of the mean field and the expected per-sample autograd Hessian (theory.erf).

    Block ``(i, j != i)`` is ``A_i A_j d_u d_v f(w_i, w_j)``; block ``(i, i)`` is ``sum_{r != i} a_i s_r A_r d_u d_u
    f(w_i, z_r) + a_i^2 hess phi(w_i) / 2``, with ``d_u d_u f = sum_{X,Y} f_XY grad_u X grad_u Y^T + sum_X f_X
    hess_uu X`` over ``X, Y`` in ``(p, c, g, D)`` and ``d_u d_v f`` likewise with ``Y`` in ``(q, c, g, D)``."""
    st = _setup(W, W_star, part, a, a_star, cov, sobolev)
    K, d, P = st.K, st.d, len(st.Z)
    pr = _pairs(st)
    keys = sorted({_key(X, Y) for X in _ORDER for Y in _ORDER} | {(X,) for X in _ORDER}, key=len)
    pair, own = _combined(st, pr, keys, [("p",), ("g",), ("p", "p"), ("p", "g"), ("g", "g")])
    w = st.sA[:K, None] * st.sA[None, :]
    S, I = st.cov, np.eye(d)
    students, rows = np.arange(K), np.arange(P)

    # diagonal blocks: sum over r of d_u d_u f(w_i, z_r)
    U, _ = _slot_gradients(st, pr, students, rows)
    coef = {key: w * pair[key][:K] for key in pair}
    Sv = st.SZ[None, :, :]
    same = np.einsum("ir,ab->iab", 2.0 * coef[("p",)] + (4.0 + 8.0 * pr.q[:K]) * coef[("D",)], S)
    same -= 8.0 * np.einsum("ir,ira,irb->iab", coef[("D",)], np.broadcast_to(Sv, U["p"].shape),
                            np.broadcast_to(Sv, U["p"].shape))  # hess_uu D = (4 + 8q) cov - 8 cov v v^T cov
    for X in _U_SLOT:
        for Y in _U_SLOT:
            same += np.einsum("ir,ira,irb->iab", coef[_key(X, Y)], U[X], U[Y])
    # blocks between students: d_u d_v f(w_i, w_j), i != j (pair partials vanish on the diagonal)
    Uc, V = _slot_gradients(st, pr, students, students)
    cc = {key: value[:, :K] for key, value in coef.items()}
    Su, Sw = st.SZ[:K][:, None, :], st.SZ[:K][None, :, :]
    cross = (np.einsum("ij,ab->iajb", cc[("c",)] - 8.0 * cc[("D",)] * pr.c[:K, :K], S)
             + np.einsum("ij,ab->iajb", cc[("g",)], I)
             + np.einsum("ij,ija,ijb->iajb", 16.0 * cc[("D",)], np.broadcast_to(Su, Uc["p"].shape),
                         np.broadcast_to(Sw, Uc["p"].shape))
             - np.einsum("ij,ija,ijb->iajb", 8.0 * cc[("D",)], np.broadcast_to(Sw, Uc["p"].shape),
                         np.broadcast_to(Su, Uc["p"].shape)))  # hess_uv D = 16 Su Sv^T - 8 Sv Su^T - 8 c cov
    for X in _U_SLOT:
        for Y in _V_SLOT:
            cross += np.einsum("ij,ija,ijb->iajb", cc[_key(X, Y)], Uc[X], V[Y])
    # a row with itself: hess phi / 2, phi(p, g) with grad p = 2 cov u, grad g = 2u
    A2 = st.sA[:K] ** 2
    Sz, z = st.SZ[:K], st.Z[:K]
    own = {key: value[:K] for key, value in own.items()}
    own_block = (np.einsum("i,ia,ib->iab", 2.0 * own[("p", "p")], Sz, Sz)
                 + np.einsum("i,ia,ib->iab", 2.0 * own[("p", "g")], Sz, z)
                 + np.einsum("i,ia,ib->iab", 2.0 * own[("p", "g")], z, Sz)
                 + np.einsum("i,ia,ib->iab", 2.0 * own[("g", "g")], z, z)
                 + np.einsum("i,ab->iab", own[("p",)], S) + np.einsum("i,ab->iab", own[("g",)], I))
    for i in range(K):
        cross[i, :, i, :] += same[i] + A2[i] * own_block[i]
    H_W = cross.reshape(K * d, K * d)
    if not train_output:
        return H_W
    WA, AA = output_blocks(st, pr)
    return np.block([[H_W, WA.reshape(K * d, K)], [WA.reshape(K * d, K).T, AA]])


def output_blocks(st: _Setup, pr: _Pairs) -> tuple:
    """``(WA, AA)``: the Hessian's blocks in ``(W, a)`` (``WA[i, :, j] = d^2 F / dw_i da_j``, ``(K, d, K)``) and in ``a``
    (``(K, K)``), from ``dF/da_j = sum_{r != j} s_r A_r f(w_j, z_r) + a_j phi(w_j)``: ``d^2F/da_i da_j = f(w_i, w_j)``
    (``phi(w_i)`` on the diagonal); ``d/dw_i`` of it is ``a_i grad_u f(w_i, w_j)`` for ``j != i`` (``f`` is symmetric)
    and ``sum_{r != i} s_r A_r grad_u f(w_i, z_r) + a_i grad phi(w_i)`` for ``j = i``."""
    K = st.K
    pair, own = _combined(st, pr, [()] + [(X,) for X in _U_SLOT], [(), ("p",), ("g",)])
    U, _ = _slot_gradients(st, pr, np.arange(K), np.arange(len(st.Z)))
    grad_u = sum(pair[(X,)][:K, :, None] * U[X] for X in _U_SLOT)  # (K, P, d); zero at r = i
    a = st.sA[:K]
    WA = np.einsum("i,ijd->idj", a, grad_u[:, :K])
    grad_phi = 2.0 * (own[("p",)][:K, None] * st.SZ[:K] + own[("g",)][:K, None] * st.Z[:K])
    WA[np.arange(K), :, np.arange(K)] = np.einsum("r,ird->id", st.sA, grad_u) + a[:, None] * grad_phi
    AA = pair[()][:K, :K] + np.diag(own[()][:K])
    return WA, AA


def loss_torch(W, W_star, part, *, a=None, a_star=None, cov=None, sobolev=(1.0, 0.0)):
    """:func:`loss` on torch tensors (a 0-d tensor of ``W``'s dtype and device), differentiable: ``torch.autograd``
    of it is the true gradient and ``torch.func.hessian`` the Hessian.  The same generated pair term as the
    NumPy path, written with torch operations; inputs are checked as in :func:`loss`."""
    import torch

    _setup(W, W_star, part, a, a_star, cov, sobolev)  # the checks only
    weights = _part_weights(part, sobolev)

    def tensor(x):
        return x if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x, dtype=np.float64),
                                                                     dtype=W.dtype, device=W.device)

    if not isinstance(W, torch.Tensor):
        raise ValueError(f"W must be a torch tensor for loss_torch; got {type(W).__name__}")
    Ws = tensor(W_star).to(W.dtype)
    Z = torch.cat([W, Ws])
    A_s = torch.ones(len(W), dtype=W.dtype, device=W.device) if a is None else tensor(a).to(W.dtype)
    A_t = torch.ones(len(Ws), dtype=W.dtype, device=W.device) if a_star is None else tensor(a_star).to(W.dtype)
    sA = torch.cat([A_s, -A_t])
    SZ = Z if cov is None else Z @ tensor(cov).to(W.dtype)
    C = Z @ SZ.T
    C = (C + C.T) / 2
    pv = torch.diagonal(C)
    G = Z @ Z.T
    G = (G + G.T) / 2
    p, q = pv[:, None], pv[None, :]
    D = 1.0 + 2.0 * p + 2.0 * q + 4.0 * torch.clamp(p * q - C * C, min=0.0)
    p, q = p.expand_as(C), q.expand_as(C)
    f = sum(lam * _torch_pair_term(name)(p, q, C, G, D) for name, lam in weights.items())
    return 0.5 * sA @ f @ sA
