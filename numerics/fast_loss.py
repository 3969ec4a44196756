"""The population loss on its plain path: the pair terms that single and batched calls share.

The loss of an instance ``Z = [W; W*]`` (:func:`numerics.population.loss`) is scaled by ``2**k``
(:func:`numerics.validation.prepare`), the pair closed form is evaluated at every pair of rows, and the
terms ``0.5 s_i s_j f_ij`` (self terms on the diagonal) are added with ``math.fsum``.  An instance is on
the *plain path* when nothing more is needed: every entry finite, no zero row, the common case of the
exponent rule (no row raised into the safe range, no entry scaled into the subnormals) and every pair
other than a row with itself more than ``SWITCH`` from 0 and pi (no series branch, no student matched to
a teacher, no rewrite).  Elsewhere the general path of :mod:`numerics.population` applies.

Every function works on stacks ``(N, P, d)``: a single call is the stack of one (:func:`single`), a batch
is evaluated chunk by chunk (:func:`numerics.batched.loss`), so a batched loss equals the single call bit
for bit by construction.  That the plain path gives the general path's bits on the instances it takes is
tested in ``tests/test_fast_loss.py``.
"""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from .compile import SWITCH, SWITCH_COS, generated, pair_function
from .geometry import NEAR, _angles
from .validation import _SAFE_SQUARED_NORMS, _plain_rows


@lru_cache(maxsize=None)
def loss_object(part: str) -> dict:
    """The generated loss object of ``part`` (``L`` or ``J``): the pair closed form ``f``, the self-term
    coefficient and the near-teacher rewrite ``rest``."""
    spec = generated().OBJECTS[("loss", part)]
    return {"f": pair_function(spec["f"]), "self_coef": spec["self_coef"], "rest": pair_function(spec["rest"])}


def single(W, W_star, part: str) -> tuple | None:
    """``(value, k)`` of one instance on the plain path: the loss of the scaled instance, ``max``-ed with 0
    as :func:`numerics.population.loss` does (the caller applies ``2**(-2 k)``); ``None`` where the
    instance is not on it (not two real NumPy arrays of shape ``(rows, d >= 2)`` with the same ``d``, or
    any condition of the module docstring failing): the general path then decides, and names any error."""
    Wv, Wsv = _plain_rows(W), _plain_rows(W_star)
    if Wv is None or Wsv is None or Wv.shape[1] != Wsv.shape[1]:
        return None
    Z = np.concatenate([Wv, Wsv])[None]
    k, ok = exponents(Z)
    if not ok[0]:
        return None
    parts, good = terms(np.ldexp(Z, int(k[0])), len(Wv), part)
    if not good[0]:
        return None
    sums = [math.fsum(t.ravel().tolist()) for t in parts]  # correctly rounded: any order, the same bits
    return max(sums[0] if len(sums) == 1 else sums[0] + sums[1], 0.0), int(k[0])  # H: L + J


def exponents(Z) -> tuple:
    """``(k, ok)`` for stacked instances ``Z = [W; W*]`` of shape ``(N, K + K*, d)``: ``k`` as
    :func:`numerics.validation._scale_exponent` gives it, where ``ok``: every entry finite, no zero row, and
    the common case of that rule (no row raised into the safe range, no entry scaled into the subnormals).
    Instances not ``ok`` take the general path (which raises, or applies the rest of the rule)."""
    A = np.abs(Z)
    with np.errstate(invalid="ignore"):
        row_max = A.max(axis=-1)  # per row of W, then of W*: the rule's row maxima (NaN propagates)
        big = row_max.max(axis=1)
        finite = np.isfinite(big)
        k = -np.frexp(big)[1]
        lowest = (np.frexp(row_max)[1] + k[:, None]).min(axis=1)
    low_limit = int(math.log2(_SAFE_SQUARED_NORMS[0]))
    raise_by = np.maximum(0, (low_limit + 1) // 2 - (lowest - 1))
    # k < 0 scales down: exact unless a non-zero entry is below 2**(-1022 - k) (it would leave the normal
    # range); where the smallest entry is below that bound (a zero, or a tiny entry), look at the non-zero ones
    threshold = np.ldexp(1.0, (-1022 - k).clip(-1074, 1023).astype(np.intc))
    exact = (k >= 0) | (A.min(axis=(1, 2)) >= threshold)
    look = ~exact & finite
    if look.any():
        low = np.where(A[look] > 0, A[look], np.inf).min(axis=(1, 2))
        exact[look] = low >= threshold[look]
    ok = finite & (row_max.min(axis=1) > 0) & (raise_by == 0) & exact
    return k, ok


def terms(Z, K: int, part: str) -> tuple:
    """The pair terms of the loss for stacked scaled instances ``Z (N, P, d)`` (``P = K + K*``):
    ``(terms, good)`` with one ``(N, P, P)`` array per part (``H``: ``L`` and ``J``, from one geometry) and
    ``good (N,)``, the instances on the plain path (their angles; :func:`exponents` decides the rest).

    The operations of ``numerics.geometry.pair_geometry(Z, Z, shared_prefix=True)`` and of the closed form
    on stacks (the Gram product by ``np.matmul``: each instance's own ``syrk`` call), then the terms
    ``0.5 s_i s_j f_ij`` with the self terms on the diagonal.  The general path evaluates the closed form
    only off the diagonal, on gathered entries; its operations are elementwise, so the full arrays give
    those entries the same values."""
    N, P = Z.shape[:2]
    n = np.sqrt(np.einsum("...ij,...ij->...i", Z, Z))
    na, nb = n[:, :, None], n[:, None, :]
    c = np.matmul(Z, np.swapaxes(Z, 1, 2))
    c /= na
    c /= nb
    np.clip(c, -1.0, 1.0, out=c)
    th, _, sn = _angles(c, psi=False)
    diag = (slice(None), slice(0, P * P, P + 1))
    # the self pairs out of the checks' way (their terms are replaced by the self terms below)
    c.reshape(N, -1)[diag] = 0.0
    cos_min, cos_max = c.reshape(N, -1).min(axis=1), c.reshape(N, -1).max(axis=1)
    good = (cos_max <= 1.0 - NEAR) & (cos_min >= NEAR - 1.0)
    _check_angles(good, cos_min, cos_max, th, sn, c, diag)
    half_signs = _half_signs(K, P)
    out = []
    for p in ("L", "J") if part == "H" else (part,):
        obj = loss_object(p)
        t = half_signs * obj["f"].closed_sc(na, nb, th, sn, c)
        t.reshape(N, -1)[diag] = 0.5 * obj["self_coef"] * n**2
        out.append(t)
    return out, good


@lru_cache(maxsize=64)
def _half_signs(K: int, P: int) -> np.ndarray:
    """``0.5 s_i s_j`` (``s = +1`` for the ``K`` students, ``-1`` for the teachers), read-only: computed once
    per shape (small instances are called many times)."""
    signs = np.concatenate([np.ones(K), -np.ones(P - K)])
    out = 0.5 * np.outer(signs, signs)
    out.flags.writeable = False
    return out


def _check_angles(good, cos_min, cos_max, th, sn, c, diag) -> None:
    """``good[i] = False`` where instance ``i`` has a pair other than a self pair (the entries ``diag`` of
    its flattened pairs) within ``SWITCH`` of 0 or pi, the angles as computed (``theta``; ``psi =
    atan2(sin, -cos)`` as the geometry computes it): only instances whose cosines (``cos_min``,
    ``cos_max``, self pairs left out) come beyond ``cos(SWITCH)``, with room, are looked at
    (:data:`numerics.compile.SWITCH_COS`: elsewhere both angles are far enough from ``SWITCH``)."""
    for near, angle in ((cos_max > SWITCH_COS, lambda sel: th[sel]),
                        (cos_min < -SWITCH_COS, lambda sel: np.arctan2(sn[sel], -c[sel]))):
        mask = good & near  # after the previous check: an instance it failed stays failed
        if mask.any():
            a = angle(mask).reshape(int(mask.sum()), -1)
            a[(slice(None), diag[1])] = np.pi / 2
            good[mask] = a.min(axis=1) >= SWITCH
