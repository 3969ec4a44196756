"""The gradient fields away from the kinks: the assembly that single and batched calls share.

An instance is *separated* when every pair of rows other than a student with itself has
``|cos| <= SWITCH_COS``: every angle is then at least ``SWITCH`` from 0 and from pi, with room
(:data:`numerics.compile.SWITCH_COS`).  There no series branch applies, no student is near a teacher
(no matching, no rewrite), no pair is refined in exact arithmetic and no boundary term of the true
gradient arises, so the field of ``part`` (``L``, ``J`` or ``H``) -- ``field="mean"``: the mean field
``E_x[grad_W l]``; ``field="true"``: the true gradient of the population loss (they coincide for ``L``
and differ for ``J`` and ``H`` by their cores) -- is, row ``j``::

    (half + sum_q s_q a_const A(theta_jq) |z_q| / |w_j|) w_j  +  sum_q s_q b_const B(theta_jq) z_q

over the rows ``z_q`` of ``Z = [W; W*]`` other than ``w_j`` (``s_q = +1`` students, ``-1`` teachers),
with the angular cores ``A``, ``B`` and the constants derived by ``theory.codegen.fast_field_spec``
(``OBJECTS[("fast_field", part, field)]``).  The norms enter as one weight per column, so the work
beyond the four matrix products is: the cosines normalised (two passes), their range (two
reductions), the sine and the angle (five passes, as :func:`numerics.geometry._angles`), the cores
(one to four passes each) and one weighted row sum.

Every function works on stacks ``(N, K, ...)`` of instances: a single call is the stack of one
(:func:`numerics.population.gradient`), a batch is evaluated chunk by chunk
(:func:`numerics.batched.gradient`).  Elementwise passes, reductions along rows and the products of
``np.matmul`` (one BLAS call per instance, the same for a stack of one) give every instance the same
bits either way, so a batched result equals the single call bit for bit.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from .compile import SWITCH_COS, _fresh, generated, pair_function


@lru_cache(maxsize=None)
def field_spec(part: str, field: str) -> dict:
    """The generated fast-field object of ``part``, ``field``: cores as compiled pair functions."""
    spec = dict(generated().OBJECTS[("fast_field", part, field)])
    spec["alpha"], spec["beta"] = pair_function(spec["alpha"]), pair_function(spec["beta"])
    return spec


def cosines(W: np.ndarray, W_star: np.ndarray, n2w: np.ndarray, n2s: np.ndarray) -> tuple:
    """``(c, n)``: ``c (N, K, K + K*)`` the cosines of the rows of ``W`` against those of ``[W; W*]``,
    each Gram entry divided by the two norms, with the self pairs ``c[:, i, i]`` set to 0 (out of the
    range check's way; :func:`coefficients` overwrites them); ``n (N, K + K*)`` the norms.

    ``W (N, K, d)`` and ``W_star (N, K*, d)`` float64 (any layout; the batched path passes C-contiguous
    instances, so that each BLAS call is the single call's) with squared row norms ``n2w``, ``n2s`` in the
    safe range (:func:`numerics.validation.prepare_unscaled`).  The Gram blocks are
    written by ``np.matmul`` straight into the two column ranges of ``c`` (``W W^T`` by ``syrk``).
    """
    N, K = W.shape[:2]
    n = np.sqrt(np.concatenate([n2w, n2s], axis=1))
    c = np.empty((N, K, n.shape[1]))
    np.matmul(W, np.swapaxes(W, 1, 2), out=c[:, :, :K])
    np.matmul(W, np.swapaxes(W_star, 1, 2), out=c[:, :, K:])
    c /= n[:, :K, None]
    c /= n[:, None, :]
    c[_self_pairs(K)] = 0.0
    return c, n


@lru_cache(maxsize=256)
def _self_pairs(rows: int, r0: int = 0) -> tuple:
    """The index of the self pairs in a stack ``(N, rows, M)`` of the rows ``r0, r0 + 1, ...``:
    ``[:, i, r0 + i]``, the pair of student ``r0 + i`` with itself (read-only index arrays, cached:
    small instances are called many times)."""
    i = np.arange(rows)
    j = i + r0
    i.flags.writeable = j.flags.writeable = False
    return slice(None), i, j


def separated(c: np.ndarray) -> np.ndarray:
    """``ok (N,)``: the instances whose every cosine of :func:`cosines` lies in ``[-SWITCH_COS, SWITCH_COS]``
    (NaN fails).  The whole stack is checked first: two reductions over one contiguous array are ~4x
    cheaper than per-instance ones over short rows, and in the common case every instance passes."""
    if c.size == 0 or (c.min() >= -SWITCH_COS and c.max() <= SWITCH_COS):  # (no cosines: none out of range)
        return np.ones(len(c), dtype=bool)
    flat = c.reshape(len(c), -1)
    return (flat.min(axis=1) >= -SWITCH_COS) & (flat.max(axis=1) <= SWITCH_COS)


def coefficients(c: np.ndarray, n: np.ndarray, part: str, field: str, r0: int = 0, r1: int | None = None) -> None:
    """Overwrite the cosines of the rows ``r0:r1`` of ``c`` (:func:`cosines`) with their coefficients:
    ``coef[:, j, q] = s_q b_const B(theta_jq)`` off the self pairs and
    ``coef[:, j, j] = half + sum_q s_q a_const A(theta_jq) |z_q| / |w_j|`` on them, so that the field is
    ``coef[:, :, :K] @ W + coef[:, :, K:] @ W*`` (:func:`assemble`).  Meaningful for separated
    instances only (elsewhere the values are whatever the closed forms give)."""
    spec = field_spec(part, field)
    K = c.shape[1]
    r1 = K if r1 is None else r1
    block = c[:, r0:r1]
    sign = _column_signs(K, c.shape[2])
    # sin = sqrt((1 - c)(1 + c)) as numerics.geometry._angles computes it, and theta = arccos(c): with
    # |c| <= SWITCH_COS, arccos amplifies the rounding of c at most 1 / sin(SWITCH) ~ 10 times, as
    # atan2 of that sine and c would (both are functions of the rounded c alone), at less cost
    s = 1.0 - block
    th = np.add(1.0, block)
    s *= th
    np.sqrt(s, out=s)
    np.arccos(block, out=th)
    # beta first, into an array of its own: alpha's product may then be written over th, s or c, none of
    # which is read again (one temporary the size of the block fewer)
    b = spec["beta"].away_from_kinks(None, None, th, s, block, block.shape)
    diagonal = np.zeros(block.shape[:2])
    if not spec["alpha"].is_zero:
        # sum_q s_q a_const A_jq |z_q| along each row (NumPy's pairwise sum: the same bits for any number of
        # rows, unlike a BLAS matrix-vector product); the self pairs' terms are set to zero first
        a = _fresh(spec["alpha"].closed_sc(None, None, th, s, block), block.shape, ())  # may be th or s itself
        np.multiply(a, (spec["alpha_const"] * sign) * n[:, None, :], out=a)
        a[_self_pairs(r1 - r0, r0)] = 0.0
        diagonal = a.sum(axis=-1)
        diagonal /= n[:, r0:r1]
    np.multiply(b, spec["beta_const"] * sign, out=block)
    diagonal += spec["half"]
    block[_self_pairs(r1 - r0, r0)] = diagonal


@lru_cache(maxsize=64)
def _column_signs(K: int, M: int) -> np.ndarray:
    """``s_q``: +1 for the ``K`` student columns, -1 for the ``M - K`` teacher columns (read-only)."""
    sign = np.concatenate([np.ones(K), -np.ones(M - K)])
    sign.flags.writeable = False
    return sign


def assemble(coef: np.ndarray, W: np.ndarray, W_star: np.ndarray, out: np.ndarray) -> None:
    """``out = coef[:, :, :K] @ W + coef[:, :, K:] @ W*``: the two products of the field."""
    K = W.shape[1]
    np.matmul(coef[:, :, :K], W, out=out)
    out += np.matmul(coef[:, :, K:], W_star)
