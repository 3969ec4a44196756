"""Population losses, gradient fields and Hessians of the shallow ReLU student-teacher network.

Semantics (THEORY.md):

* ``field="mean"``: the **mean field** ``E_x[grad_W l(x; W)]`` (what SGD with autograd follows);
* ``field="true"``: the **true gradient** ``grad_W E_x[l(x; W)]`` of the population loss;
* Hessians: ``"true"`` (Hessian of the population loss), ``"mean"`` (Jacobian of the mean
  field), ``"autograd"`` (``E_x`` of the per-sample autograd Hessian, ``sigma'' = 0``).

Every quantity is a signed sum over pairs of rows of ``Z = [W; W_star]`` (signs ``+1`` for
students, ``-1`` for teachers) of the pair expressions derived in :mod:`theory.pairs`,
evaluated for all pairs at once (no Python loop over pairs) by :mod:`numerics.compile`.

Near the teacher, each student that is within ``SWITCH`` radians of a teacher row is matched
to it (greedily, closest first) and the three terms of the pair — the two diagonal terms and
the cross term — are replaced by the cancellation-free rewrites proven in
:func:`theory.pairs.proofs`.  This gives full relative accuracy for one node and for any
configuration whose only near-cancellations are within matched pairs; with several nodes
near the teacher the cross terms between different pairs still cancel to
``O(|W - W*|^2)``, with absolute error ``~ eps * |W|^2``.

Objects that do not exist at a configuration — the true gradient and Hessian of ``J`` and
``H``, and the Jacobian of their mean field, where two rows are exactly parallel or
anti-parallel (a kink of the population ``J``) — raise ``ValueError``; every other object
returns its limit there.
"""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import sympy as sp

from theory import pairs
from theory.calculus import PairVector
from theory.symbols import n_a, n_b, theta

from .compile import SWITCH, compile_pair
from .geometry import pair_geometry, plane_directions
from .validation import GRADIENT_FIELDS, HESSIAN_FIELDS, check_field, check_part, prepare


def _constant(expr, what: str) -> float:
    value = sp.simplify(expr)
    if value.free_symbols:
        raise NotImplementedError(f"{what} is not a constant ({value}); the assembly assumes it is")
    return float(value)


# ----------------------------------------------------------------------------- compiled objects
@lru_cache(maxsize=None)
def _loss_object(part: str) -> dict:
    self_f = pairs.self_loss_kernel(part)
    return {
        "f": compile_pair(pairs.loss_kernel(part)),
        "self_coef": _constant(self_f / n_a**2, f"f_{part}(a, a) / |a|^2"),
        "rest": compile_pair(pairs.loss_difference_rest(part)),
    }


def _vector(part: str, field: str) -> PairVector:
    return pairs.mean_field(part) if field == "mean" else pairs.true_gradient(part)


def _self_vector(part: str, field: str) -> PairVector:
    return pairs.self_mean_field(part) if field == "mean" else pairs.self_true_gradient(part)


@lru_cache(maxsize=None)
def _vector_object(part: str, field: str) -> dict:
    v = _vector(part, field)
    rho = (PairVector(n_b * sp.cos(theta) / 2, n_b * sp.sin(theta) / 2) - v).simplify()
    alpha, beta = (compile_pair(c) for c in v.span_coefficients())
    r_alpha, r_beta = (compile_pair(c) for c in rho.span_coefficients())
    return {
        "alpha": alpha,
        "beta": beta,
        "rho_alpha": r_alpha,
        "rho_beta": r_beta,
        "half": _constant(_self_vector(part, field).c1 / n_a, f"self term of the {field} field of {part} / |a|"),
        "exists_parallel": alpha.finite_at_zero and beta.finite_at_zero,
        "exists_antiparallel": alpha.finite_at_pi and beta.finite_at_pi,
    }


def _matrix_object(matrix) -> dict:
    fns = [compile_pair(c) for c in matrix.coefficients()]
    e2_terms = fns[1:4]
    return {
        "coef": fns,
        "exists_parallel": all(f.finite_at_zero for f in fns) and all(f.vanishes_at_zero for f in e2_terms),
        "exists_antiparallel": all(f.finite_at_pi for f in fns) and all(f.vanishes_at_pi for f in e2_terms),
    }


@lru_cache(maxsize=None)
def _hessian_object(part: str, field: str) -> dict:
    if field == "autograd":
        self_m = pairs.self_autograd_hessian(part)
        diag_pair, off_pair = None, _matrix_object(pairs.autograd_hessian(part))
    else:
        self_m = pairs.self_jacobian(part, field)
        diag_pair = _matrix_object(pairs.mean_jacobian_a(part) if field == "mean" else pairs.true_hessian_a(part))
        off_pair = _matrix_object(pairs.mean_jacobian_b(part) if field == "mean" else pairs.true_hessian_b(part))
    for c in self_m.coefficients()[:4]:
        if sp.simplify(c) != 0:
            raise NotImplementedError("the diagonal term is expected to be a multiple of I")
    return {"self_s": _constant(self_m.s, "diagonal term"), "diag": diag_pair, "off": off_pair}


def _angles_without_self(geo) -> tuple:
    """``(theta, psi)`` with the self pairs ``(j, j)`` moved to a harmless right angle."""
    idx = np.arange(geo.theta.shape[0])
    th, ps = geo.theta.copy(), geo.psi.copy()
    th[idx, idx] = ps[idx, idx] = np.pi / 2
    return th, ps


def _evaluate_others(fn, geo, angles=None) -> np.ndarray:
    """``fn`` on every pair of ``(W, Z)`` except the self pairs ``(j, j)``, which get zero.

    The self pairs are evaluated at a harmless right angle and then zeroed, which keeps the
    whole evaluation unmasked (and on the closed-form fast path when nothing is degenerate).
    ``angles``: :func:`_angles_without_self` of ``geo``, to share between several ``fn``.
    """
    th, ps = _angles_without_self(geo) if angles is None else angles
    out = fn(geo.na, geo.nb, th, ps)
    idx = np.arange(geo.theta.shape[0])
    out[idx, idx] = 0.0
    return out


def _evaluate(fn, geo, mask=None) -> np.ndarray:
    """``fn`` on every pair (or only where ``mask``; zero elsewhere, never evaluated there)."""
    if mask is None:
        return fn(geo.na, geo.nb, geo.theta, geo.psi)
    na, nb = np.broadcast_arrays(geo.na, geo.nb)
    out = np.zeros(geo.theta.shape)
    out[mask] = fn(na[mask], nb[mask], geo.theta[mask], geo.psi[mask])
    return out


# ----------------------------------------------------------------------------- helpers
def _stack(W, W_star):
    Z = np.vstack([W, W_star])
    signs = np.concatenate([np.ones(len(W)), -np.ones(len(W_star))])
    return Z, signs


def _match(theta: np.ndarray, K: int) -> list:
    """Greedy one-to-one matching of students to teachers closer than ``SWITCH`` radians.

    ``theta`` holds the angles of ``(W, Z)`` (``K`` rows at least); returns ``[(j, p)]`` with
    ``p >= K`` a row of ``Z``.
    """
    th = theta[:K, K:]
    cand = np.argwhere(th < SWITCH)
    order = np.argsort(th[tuple(cand.T)], kind="stable") if len(cand) else []
    used_s, used_t, out = set(), set(), []
    for idx in order:
        j, t = cand[idx]
        if j not in used_s and t not in used_t:
            used_s.add(j)
            used_t.add(t)
            out.append((int(j), int(t) + K))
    return out


def _norm_difference(a: np.ndarray, b: np.ndarray) -> float:
    """``|a| - |b|`` without cancellation: ``(a - b).(a + b) / (|a| + |b|)``."""
    return float(np.dot(a - b, a + b) / (np.linalg.norm(a) + np.linalg.norm(b)))


def _raise_if_missing(obj: dict, geo, mask: np.ndarray, what: str, row_names) -> None:
    for kind, flag in (("parallel", "exists_parallel"), ("anti-parallel", "exists_antiparallel")):
        if obj[flag]:
            continue
        hit = np.argwhere((geo.parallel if kind == "parallel" else geo.antiparallel) & mask)
        if len(hit):
            i, j = hit[0]
            raise ValueError(
                f"the {what} does not exist here: W[{i}] and {row_names(j)} are exactly {kind}, "
                "where the population J has a kink (THEORY.md). The mean-field gradient exists; "
                "or perturb the weights to evaluate a one-sided value."
            )


def _namer(K: int):
    return lambda p: f"W[{p}]" if p < K else f"W_star[{p - K}]"


# ----------------------------------------------------------------------------- public API
def loss(W, W_star, part: str) -> float:
    """Population loss ``L``, ``J`` or ``H = L + J`` (THEORY.md), a float.

    ``L = E[(g(x;W) - g(x;W*))^2]/2``, ``J = E[|grad_x g(x;W) - grad_x g(x;W*)|^2]/2``,
    ``x ~ N(0, I_d)``; ``W`` is ``(K, d)``, ``W_star`` is ``(K*, d)``.
    """
    check_part(part)
    W, W_star, k = prepare(W, W_star)
    return math.ldexp(_loss(W, W_star, part), -2 * k)


def _loss(W, W_star, part: str) -> float:
    if part == "H":
        return _loss(W, W_star, "L") + _loss(W, W_star, "J")
    obj = _loss_object(part)
    Z, s = _stack(W, W_star)
    K = len(W)
    geo = pair_geometry(Z, Z, shared_prefix=True)
    terms = 0.5 * np.outer(s, s) * _evaluate(obj["f"], geo)
    norms = geo.na[:, 0]
    np.fill_diagonal(terms, 0.5 * obj["self_coef"] * norms**2)
    extra = []
    for j, p in _match(geo.theta, K):
        terms[j, j] = terms[p, p] = terms[j, p] = terms[p, j] = 0.0
        dn = _norm_difference(Z[j], Z[p])
        rest = obj["rest"](norms[j], norms[p], geo.theta[j, p], geo.psi[j, p])
        extra += [dn * dn / 4, float(rest)]
    return math.fsum(terms.ravel().tolist() + extra)


def gradient(W, W_star, part: str, field: str) -> np.ndarray:
    """Gradient field ``(K, d)`` of ``part`` in the rows of ``W``.

    ``field="mean"``: mean field ``E_x[grad_W l]`` (autograd's per-sample gradient averaged);
    ``field="true"``: gradient of the population loss.  They agree for ``L`` and differ for
    ``J`` and ``H`` by the boundary term of the indicators (THEORY.md).
    """
    check_part(part)
    check_field(field, GRADIENT_FIELDS, "gradient")
    W, W_star, k = prepare(W, W_star)
    return np.ldexp(_gradient(W, W_star, part, field), -k)


def _gradient(W, W_star, part, field, asked=None) -> np.ndarray:
    if part == "H":
        return _gradient(W, W_star, "L", field) + _gradient(W, W_star, "J", field, asked="H (its J part)")
    obj = _vector_object(part, field)
    Z, s = _stack(W, W_star)
    K = len(W)
    geo = pair_geometry(W, Z, shared_prefix=True)
    off = np.ones(geo.theta.shape, dtype=bool)
    off[np.arange(K), np.arange(K)] = False
    _raise_if_missing(obj, geo, off, f"true gradient of {asked or part}", _namer(K))
    angles = _angles_without_self(geo)
    alpha = _evaluate_others(obj["alpha"], geo, angles)
    alpha *= s
    beta = _evaluate_others(obj["beta"], geo, angles)
    beta *= s
    matched = _match(geo.theta, K)
    for j, p in matched:
        args = (geo.na[j, 0], geo.nb[0, p], geo.theta[j, p], geo.psi[j, p])
        alpha[j, p] = obj["rho_alpha"](*args)
        beta[j, p] = obj["rho_beta"](*args)
    # half * (w_j - [z_p if matched]) + sum_q alpha_jq w_j/|w_j| + beta_jq z_q/|z_q|, with the norms
    # folded into the coefficients; written in place (fresh (K, d) temporaries cost page faults at
    # large d).  A matched row gets half * (w_j - z_p) with the difference formed first: near the
    # teacher it is the small leading term, and forming it from half * w_j - half * z_p would cancel.
    unmatched = np.ones(K)
    unmatched[[j for j, _ in matched]] = 0.0
    coef = alpha.sum(axis=1) / geo.na[:, 0] + obj["half"] * unmatched
    beta /= geo.nb
    out = beta @ Z
    out += coef[:, None] * W
    for j, p in matched:
        out[j] += obj["half"] * (W[j] - Z[p])
    return out


def hessian(W, W_star, part: str, field: str) -> np.ndarray:
    """Hessian-type matrix ``(K*d, K*d)`` of ``part``, index ``i*d + k`` (row ``i``, coordinate ``k``).

    ``field="true"``: Hessian of the population loss (symmetric);
    ``"mean"``: Jacobian of the mean field (entry ``[i*d+k, j*d+l] = d G_ik / d W_jl``; not
    symmetric for ``J``, ``H``); ``"autograd"``: ``E_x`` of the per-sample autograd Hessian.
    """
    check_part(part)
    check_field(field, HESSIAN_FIELDS, "Hessian")
    W, W_star, _ = prepare(W, W_star)
    return _hessian(W, W_star, part, field)


def _block_terms(coef, e1, e2):
    """Blocks ``B11 e1 e1^T + B12 e1 e2^T + B21 e2 e1^T + B22 e2 e2^T + s I`` for all pairs."""
    B11, B12, B21, B22, sI = coef
    d = e1.shape[-1]
    out = np.einsum("jl,jd,je->jlde", B11, e1, e1)
    out += np.einsum("jl,jd,jle->jlde", B12, e1, e2)
    out += np.einsum("jl,jld,je->jlde", B21, e2, e1)
    out += np.einsum("jl,jld,jle->jlde", B22, e2, e2)
    out += sI[:, :, None, None] * np.eye(d)
    return out


def _hessian(W, W_star, part, field, asked=None) -> np.ndarray:
    if part == "H":
        return _hessian(W, W_star, "L", field) + _hessian(W, W_star, "J", field, asked="H (its J part)")
    obj = _hessian_object(part, field)
    Z, s = _stack(W, W_star)
    K, d = W.shape
    geo = pair_geometry(W, Z, shared_prefix=True)
    e1, e2 = plane_directions(W, Z, geo)
    names = _namer(K)
    of = asked or part
    what = {"true": f"true Hessian of {of}", "mean": f"Jacobian of the mean field of {of}",
            "autograd": f"expected autograd Hessian of {of}"}[field]
    off = np.ones(geo.theta.shape, dtype=bool)
    off[np.arange(K), np.arange(K)] = False
    students = np.zeros_like(off)
    students[:, :K] = True
    out = np.zeros((K, d, K, d))
    # off-diagonal blocks (j, l), both students: the pair term's Jacobian in its second row
    if K > 1:
        _raise_if_missing(obj["off"], geo, off & students, what, names)
        coef = [_evaluate(f, geo, off & students)[:, :K] for f in obj["off"]["coef"]]
        blocks = _block_terms(coef, e1, e2[:, :K])
        out += blocks.transpose(0, 2, 1, 3)
    # diagonal blocks: the self term plus, for true/mean, the sum over every other row
    diag = np.zeros((K, d, d)) + obj["self_s"] * np.eye(d)
    if obj["diag"] is not None:
        _raise_if_missing(obj["diag"], geo, off, what, names)
        coef = [_evaluate(f, geo, off) * s for f in obj["diag"]["coef"]]
        B11, B12, B21, B22, sI = coef
        v12 = np.einsum("jq,jqd->jd", B12, e2)
        v21 = np.einsum("jq,jqd->jd", B21, e2)
        diag += B11.sum(1)[:, None, None] * np.einsum("jd,je->jde", e1, e1)
        diag += np.einsum("jd,je->jde", e1, v12) + np.einsum("jd,je->jde", v21, e1)
        diag += np.einsum("jq,jqd,jqe->jde", B22, e2, e2)
        diag += sI.sum(1)[:, None, None] * np.eye(d)
    idx = np.arange(K)
    out[idx, :, idx, :] += diag
    return out.reshape(K * d, K * d)


# semantic aliases (names that say which object)
def mean_field(W, W_star, part: str) -> np.ndarray:
    """``E_x[grad_W l(x; W)]``: same as ``gradient(W, W_star, part, "mean")``."""
    return gradient(W, W_star, part, "mean")


def true_gradient(W, W_star, part: str) -> np.ndarray:
    """``grad_W E_x[l(x; W)]``: same as ``gradient(W, W_star, part, "true")``."""
    return gradient(W, W_star, part, "true")


def hessian_of_loss(W, W_star, part: str) -> np.ndarray:
    """Same as ``hessian(W, W_star, part, "true")``."""
    return hessian(W, W_star, part, "true")


def jacobian_of_mean_field(W, W_star, part: str) -> np.ndarray:
    """Same as ``hessian(W, W_star, part, "mean")``."""
    return hessian(W, W_star, part, "mean")


def expected_autograd_hessian(W, W_star, part: str) -> np.ndarray:
    """Same as ``hessian(W, W_star, part, "autograd")``."""
    return hessian(W, W_star, part, "autograd")
