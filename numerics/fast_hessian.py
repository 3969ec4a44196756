"""The matrix objects away from the kinks: the assembly that single and batched calls share.

On a *separated* instance (:mod:`numerics.fast_gradient`: every pair of rows other than a student with
itself at least ``SWITCH`` from 0 and pi, decided by the cosines with room) no series branch applies, no
pair is at a kink and none is refined in exact arithmetic, so each matrix object of ``part`` --
``field="true"``: the Hessian of the population loss; ``"mean"``: the Jacobian of the mean field;
``"autograd"``: ``E_x`` of the per-sample autograd Hessian -- is, block ``(j, l)`` (rows ``j``, ``l`` of
``W``, ``d x d`` each)::

    j != l:  B11 e1 e1^T + B12 e1 e2^T + B21 e2 e1^T + B22 e2 e2^T + s I        (pair (w_j, w_l), e2 = e2_jl)
    j == l:  self_s I + sum_q s_q (the same with the diagonal coefficients of the pair (w_j, z_q))

with ``e1 = w_j / |w_j|``, ``e2_jq`` the unit vector of ``z_q`` orthogonal to ``e1`` in the pair's plane,
``s_q = +1`` for students and ``-1`` for teachers, and the coefficients derived by :mod:`theory`
(``OBJECTS[("hessian", part, field)]``, the same compiled functions as the general path of
:func:`numerics.population.hessian`) in closed form.  ``e2`` is formed as ``u_q - cos(theta) e1``
(``u_q = z_q / |z_q|``), orthogonalised against ``e1`` once more and normalised: with
``sin(theta) >= sin(SWITCH) ~ 0.1`` that is well conditioned, and ``e1``, ``e2`` are orthonormal to rounding.

Every function works on stacks ``(N, K, ...)``: a single call is the stack of one, a batch is evaluated
chunk by chunk (:func:`numerics.batched.hessian`).  Elementwise passes, sums along the last axis and
``np.matmul`` (one BLAS call per instance or per row) give every instance the same bits either way.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from .compile import generated, pair_function
from .fast_gradient import _column_signs, _self_pairs


@lru_cache(maxsize=None)
def hessian_object(part: str, field: str) -> dict:
    """The generated matrix object of ``part``, ``field`` (``OBJECTS[("hessian", part, field)]``): the
    coefficient ``self_s`` of ``I`` in a row's own block, and the compiled coefficients of the diagonal sums
    (``None`` where there are none) and of the off-diagonal blocks.  The general assembly of
    :func:`numerics.population.hessian` reads the same objects; they live here, with the assembly that
    needs them, so that this module imports nothing of ``population`` (which imports it)."""
    spec = generated().OBJECTS[("hessian", part, field)]
    return {
        "self_s": spec["self_s"],
        "diag": None if spec["diag"] is None else _matrix_object(spec["diag"]),
        "off": _matrix_object(spec["off"]),
    }


def _matrix_object(spec: dict) -> dict:
    return {
        "coef": [pair_function(name) for name in spec["coef"]],
        # d = 2: the in-plane coefficients B11 + s, B12, B21, B22 + s (the sums simplified symbolically)
        "coef_plane": [pair_function(name) for name in spec["coef_plane"]],
        "exists_parallel": spec["exists_parallel"],
        "exists_antiparallel": spec["exists_antiparallel"],
    }


def assemble(W, W_star, c, n, part: str, field: str, out) -> None:
    """``out (N, K d, K d)`` = the matrix object of ``part``, ``field`` of the separated stacked instances
    ``W (N, K, d)``, ``W_star (N, K*, d)``, from their cosines ``c (N, K, K + K*)`` (self pairs 0) and row
    norms ``n (N, K + K*)`` as :func:`numerics.fast_gradient.cosines` gives them (``c`` is not changed)."""
    N, K, d = W.shape
    blocks = out.reshape(N, K, d, K, d)
    blocks[...] = 0.0
    s = 1.0 - c
    s *= 1.0 + c
    np.sqrt(s, out=s)
    th = np.arccos(c)  # |c| <= SWITCH_COS: as well conditioned as atan2 of this sine (numerics.fast_gradient)
    e1, e2 = directions(W, W_star, c, n)
    geometry = (n[:, :K, None], n[:, None, :], th, s, c)
    objects = [hessian_object(p, field) for p in (("L", "J") if part == "H" else (part,))]
    # the blocks are linear in the coefficients: H's are L's plus J's, assembled once
    if K > 1:
        add_blocks(blocks, _summed([coefficients(obj["off"], geometry, K) for obj in objects]), e1, e2[:, :, :K])
    diagonal = np.zeros((N, K, d, d))
    identity = np.full((N, K), float(sum(obj["self_s"] for obj in objects)))  # the coefficient of I on the diagonal
    with_diag = [obj for obj in objects if obj["diag"] is not None]
    if with_diag:
        sign = _column_signs(K, c.shape[2])
        coef = [b * sign for b in _summed([coefficients(obj["diag"], geometry) for obj in with_diag])]
        identity += coef[4].sum(axis=-1)
        add_diagonal_sums(diagonal, coef, e1, e2)
    i = np.arange(d)
    diagonal[:, :, i, i] += identity[:, :, None]
    j = np.arange(K)
    blocks[:, j, :, j, :] += np.swapaxes(diagonal, 0, 1)  # the (K, N, d, d) diagonal blocks


def directions(W, W_star, c, n) -> tuple:
    """``(e1 (N, K, d), e2 (N, K, K + K*, d))``: ``e1_j = w_j / |w_j|`` and ``e2_jq`` the unit vector of
    ``z_q`` orthogonal to it (``u_q - c_jq e1_j``, orthogonalised against ``e1_j`` once more and
    normalised).  At the self pairs ``e2`` is zero (their coefficients are zero)."""
    K = W.shape[1]
    e1 = W / n[:, :K, None]
    u = np.concatenate([e1, W_star / n[:, K:, None]], axis=1)
    e2 = u[:, None, :, :] - c[..., None] * e1[:, :, None, :]  # |e2| = sin: the normalisation below scales it
    e2 -= (e2 * e1[:, :, None, :]).sum(axis=-1)[..., None] * e1[:, :, None, :]  # (e2 . e1) e1
    norm = np.sqrt((e2 * e2).sum(axis=-1))
    norm[_self_pairs(K)] = np.inf  # e2 of a row with itself: 0 / inf = 0
    e2 /= norm[..., None]
    return e1, e2


def coefficients(matrix_obj: dict, geometry: tuple, columns: int | None = None) -> list:
    """``[B11, B12, B21, B22, s]`` of ``matrix_obj`` at the pairs of ``geometry = (na, nb, theta, sin, cos)``
    (of the first ``columns`` columns only, when given), zero at the self pairs."""
    na, nb, th, s, c = (g if columns is None or g.shape[-1] == 1 else g[..., :columns] for g in geometry)
    shape = th.shape
    out = [f.away_from_kinks(na, nb, th, s, c, shape) for f in matrix_obj["coef"]]
    for b in out:
        b[_self_pairs(shape[1])] = 0.0
    return out


def _summed(coefficient_lists: list) -> list:
    """The entrywise sums of lists of coefficient arrays (the first list's arrays, added to in place)."""
    first, *rest = coefficient_lists
    for other in rest:
        for a, b in zip(first, other):
            a += b
    return first


def add_blocks(blocks, coef, e1, e2) -> None:
    """``blocks[:, j, :, l, :] += B11 e1 e1^T + B12 e1 e2^T + B21 e2 e1^T + B22 e2 e2^T + s I`` for every pair
    ``(j, l)`` of students (``blocks (N, K, d, K, d)``, ``coef`` the five ``(N, K, K)`` coefficients, or four
    with ``s`` folded into ``B11``, ``B22`` (d = 2, the general path's),
    ``e2 (N, K, K, d)``).  Grouped by the left factor, ``e1_j (B11 e1_j + B12 e2_jl)^T + e2_jl (B21 e1_j +
    B22 e2_jl)^T``: two outer products per block, written in place one student's row of blocks at a time
    (temporaries ``N K d^2``)."""
    B11, B12, B21, B22 = (b[..., None] for b in coef[:4])
    left_e1 = B11 * e1[:, :, None, :] + B12 * e2  # (N, j, l, e)
    left_e2 = B21 * e1[:, :, None, :] + B22 * e2
    by_pair = blocks.transpose(0, 1, 3, 2, 4)  # blocks[:, j, :, l, :] as by_pair[:, j, l]
    for j in range(e1.shape[1]):
        blocks[:, j] += e1[:, j, :, None, None] * left_e1[:, j, None, :, :]
        by_pair[:, j] += e2[:, j, :, :, None] * left_e2[:, j, :, None, :]
    if len(coef) == 5:  # (the general path's d = 2 coefficients have s folded into B11, B22)
        i = np.arange(e1.shape[-1])
        blocks[:, :, i, :, i] += coef[4]  # the (d, N, K, K) entries blocks[:, j, k, l, k]


def add_diagonal_sums(diagonal, coef, e1, e2) -> None:
    """``diagonal (N, K, d, d) += sum_q (B11 e1 e1^T + B12 e1 e2^T + B21 e2 e1^T + B22 e2 e2^T)`` over the
    pairs ``q`` of each row (``coef`` signed, ``(N, K, M)``; the ``s I`` part, or in d = 2 the general path's
    coefficients with ``s`` folded in, is the caller's)."""
    B11, B12, B21, B22 = coef[:4]
    v12 = np.matmul(B12[..., None, :], e2)[..., 0, :]  # sum_q B12 e2: one product per row
    v21 = np.matmul(B21[..., None, :], e2)[..., 0, :]
    diagonal += B11.sum(axis=-1)[..., None, None] * (e1[..., :, None] * e1[..., None, :])
    diagonal += e1[..., :, None] * v12[..., None, :]
    diagonal += v21[..., :, None] * e1[..., None, :]
    diagonal += np.matmul(np.swapaxes(B22[..., None] * e2, -1, -2), e2)  # sum_q B22 e2 e2^T
