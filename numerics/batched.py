"""Batched calls of :mod:`numerics.population`: ``W`` of shape ``(..., K, d)``, ``W_star`` ``(..., K*, d)``.

The batch shapes broadcast (:class:`numerics.validation.BatchPlan`).  Every entry of a batched
result equals the single-instance call on that instance bit for bit: :func:`over_batch` makes that
very call per instance; :func:`gradient`, :func:`loss` and :func:`hessian` compute the instances that
the single call would take through its fast assembly together (:mod:`numerics.fast_gradient`,
:mod:`numerics.fast_loss`, :mod:`numerics.fast_hessian`: the same functions on stacked arrays) and
hand every other instance to the single call.

The single call (and, for Hessians, the memory check) is passed in by :mod:`numerics.population`, which
dispatches batched calls here: this module does not import it back.
"""
from __future__ import annotations

import numpy as np

from . import fast_gradient, fast_hessian, fast_loss
from .exact_sum import fsum_rows
from .validation import _SAFE_SQUARED_NORMS, BatchPlan


def over_batch(single, W, W_star, args: tuple, result_shape) -> np.ndarray:
    """``single(W_i, W_star_i, *args)`` for every instance of a batched call, into one float64 array.

    ``W`` is ``(..., K, d)``, ``W_star`` is ``(..., K*, d)`` (a 2-D operand is one instance shared by
    the batch, a 1-D one a single row); the batch shapes broadcast by NumPy's rules.  Each instance
    goes through the very single-instance call, with the caller's own instance as its argument
    (:class:`numerics.validation.BatchPlan`), so every entry equals that call bit for bit.
    ``result_shape(plan)`` gives one instance's result shape (and may refuse the batch before any
    work: the Hessian's memory check).  A ``ValueError`` of an instance is raised again naming its
    batch index: ``instance (2, 0): row 1 of W is zero ...``.
    """
    plan = BatchPlan(W, W_star)
    out = np.empty(plan.shape + tuple(result_shape(plan)))
    _by_single_calls(out, np.ones(plan.shape, dtype=bool), plan, single, args)
    return out


def _by_single_calls(out, which, plan, single, args: tuple) -> None:
    """``out[i] = single(W_i, W_star_i, *args)`` for every batch index ``i`` where ``which`` (C order), each
    instance the caller's own; a ``ValueError`` is raised again naming the instance's batch index."""
    for index in np.argwhere(which):
        index = tuple(int(i) for i in index)
        W_i, W_star_i = plan.instance(index)
        try:
            out[index] = single(W_i, W_star_i, *args)
        except ValueError as exc:
            raise ValueError(f"instance {index}: {exc}") from exc


_BATCH_CHUNK_ENTRIES = 16384  # pair entries per chunk of instances (128 KiB per buffer: stays in L2; measured best of 4096..262144)
BATCH_CHUNK_ENTRIES = _BATCH_CHUNK_ENTRIES  # public for the benchmarks: the chunk size they time the pair passes at


def gradient(W, W_star, part: str, field: str, *, single) -> np.ndarray:
    """:func:`numerics.population.gradient` of a batched call: :func:`over_batch` of ``single`` (that very
    function, passed in by it), with the instances that it would evaluate on its fast path computed together
    by :func:`_gradient_stacked`.

    An instance is *fast* when the single call on it would take ``k = 0`` (both operands real NumPy
    arrays, every squared row norm in :data:`numerics.validation._SAFE_SQUARED_NORMS`) and the fast
    assembly of :mod:`numerics.fast_gradient` (the instance is separated: every angle at least
    ``SWITCH`` from 0 and pi).  Those are computed chunk by chunk by the very functions the single call
    applies to its stack of one, and equal the single call bit for bit (``tests/test_batched_fast.py``).
    Every other instance goes through the single-instance call itself, as in :func:`over_batch` (its
    errors name its batch index; the fast instances raise none).
    """
    plan = BatchPlan(W, W_star)
    K, Ks, d = plan.K, plan.K_star, plan.d
    out = np.empty(plan.shape + (K, d))
    fast = np.zeros(plan.shape, dtype=bool)
    Wf, Wsf = _stackable(plan.W, K, d), _stackable(plan.W_star, Ks, d)
    if Wf is not None and Wsf is not None and plan.size:
        with np.errstate(all="ignore"):  # instances that are not fast may hold anything; they are redone
            n2w = np.einsum("...ij,...ij->...i", Wf, Wf)
            n2s = np.einsum("...ij,...ij->...i", Wsf, Wsf)
            lo, hi = _SAFE_SQUARED_NORMS
            safe = (np.broadcast_to((lo <= n2w.min(-1)) & (n2w.max(-1) <= hi), plan.shape)
                    & np.broadcast_to((lo <= n2s.min(-1)) & (n2s.max(-1) <= hi), plan.shape)).reshape(-1)
            flat, fast_flat = out.reshape(-1, K, d), fast.reshape(-1)
            Wb = np.broadcast_to(Wf, plan.shape + (K, d)).reshape(-1, K, d)
            Wsb = np.broadcast_to(Wsf, plan.shape + (Ks, d)).reshape(-1, Ks, d)
            n2wb = np.broadcast_to(n2w, plan.shape + (K,)).reshape(-1, K)
            n2sb = np.broadcast_to(n2s, plan.shape + (Ks,)).reshape(-1, Ks)
            step = max(1, _BATCH_CHUNK_ENTRIES // (K * (K + Ks)))
            if safe.all():  # the common case: chunks are views, results written in place
                for c0 in range(0, len(safe), step):
                    c = slice(c0, c0 + step)
                    fast_flat[c] = _gradient_stacked(Wb[c], Wsb[c], part, field, n2wb[c], n2sb[c], flat[c])
            else:
                cand = np.flatnonzero(safe)
                for c0 in range(0, len(cand), step):
                    sel = cand[c0:c0 + step]
                    res = np.empty((len(sel), K, d))
                    ok = _gradient_stacked(Wb[sel], Wsb[sel], part, field, n2wb[sel], n2sb[sel], res)
                    flat[sel[ok]] = res[ok]
                    fast_flat[sel[ok]] = True
    _by_single_calls(out, ~fast, plan, single, (part, field))
    return out


_LOSS_CHUNK_ENTRIES = 32768  # pair entries per chunk of a batched loss (measured best of 8192..131072)


def loss(W, W_star, part: str, *, single) -> np.ndarray:
    """:func:`numerics.population.loss` of a batched call (``single``: that very function, passed in by it):
    every instance equals the single call bit for bit.

    Instances on the plain path of :mod:`numerics.fast_loss` (finite, no zero row, the common exponent rule,
    every pair other than a row with itself more than ``SWITCH`` from 0 and pi) are evaluated here together
    by the very functions the single call applies to its stack of one (:func:`numerics.fast_loss.exponents`,
    :func:`numerics.fast_loss.terms`) and summed by :func:`numerics.exact_sum.fsum_rows` (``math.fsum``'s
    correctly rounded sums, a batch of rows at once: the single call's ``math.fsum`` values); every other
    instance goes through the single call.
    """
    plan = BatchPlan(W, W_star)
    out = np.empty(plan.shape)
    fast = np.zeros(plan.shape, dtype=bool)
    Wf, Wsf = _real_stack(plan.W), _real_stack(plan.W_star)
    if Wf is not None and Wsf is not None and plan.size:
        Z, k, ok = _instances(plan, Wf, Wsf)
        flat, fast_flat = out.reshape(-1), fast.reshape(-1)
        P = plan.K + plan.K_star
        step = max(1, _LOSS_CHUNK_ENTRIES // (P * P))
        cand = np.flatnonzero(ok)
        for c0 in range(0, len(cand), step):
            sel = cand[c0:c0 + step]
            terms, good = fast_loss.terms(_scaled(Z, k, sel), plan.K, part)
            sel = sel[good]
            if not len(sel):
                continue
            sums = [fsum_rows(t[good].reshape(len(sel), -1)) for t in terms]  # math.fsum's, row by row
            # max(value, 0.0) as the single call (np.maximum keeps -0.0 as max does), then its math.ldexp
            value = np.maximum(sums[0] if len(sums) == 1 else sums[0] + sums[1], 0.0)  # H: L + J
            with np.errstate(over="ignore"):
                scaled = np.ldexp(value, (-2 * k[sel]).astype(np.intc))
            done = np.isfinite(scaled)  # an overflow: the single call raises its error for the instance
            flat[sel[done]] = scaled[done]
            fast_flat[sel[done]] = True
    _by_single_calls(out, ~fast, plan, single, (part,))
    return out


_HESSIAN_CHUNK_ENTRIES = 1 << 18  # result and direction entries per chunk of a batched Hessian (2 MiB: measured best of 2**17..2**20)


def hessian(W, W_star, part: str, field: str, *, single, check_memory) -> np.ndarray:
    """:func:`numerics.population.hessian` of a batched call (``single``: that very function, passed in by it):
    every instance equals the single call bit for bit.

    The single call scales each instance by ``2**k`` (:func:`numerics.validation.prepare`) and assembles a
    separated instance by :mod:`numerics.fast_hessian` on its stack of one.  Instances in the common case of
    that scaling (:func:`numerics.fast_loss.exponents`) are scaled the same way here and assembled together,
    chunk by chunk, by the very functions the single call applies; those that turn out separated are kept,
    every other instance goes through the single call (which names any error with the instance's index).
    The memory of the whole batch is checked before any work, by ``check_memory(n, part, batch shape)``
    (:func:`numerics.population._check_batch_memory`, passed in with ``single``)."""
    plan = BatchPlan(W, W_star)
    K, Ks, d = plan.K, plan.K_star, plan.d
    check_memory(K * d, part, plan.shape)
    out = np.empty(plan.shape + (K * d, K * d))
    fast = np.zeros(plan.shape, dtype=bool)
    Wf, Wsf = _real_stack(plan.W), _real_stack(plan.W_star)
    if Wf is not None and Wsf is not None and plan.size:
        Z, k, ok = _instances(plan, Wf, Wsf)
        flat, fast_flat = out.reshape(-1, K * d, K * d), fast.reshape(-1)
        step = max(1, _HESSIAN_CHUNK_ENTRIES // ((K * d) ** 2 + K * (K + Ks) * d))
        cand = np.flatnonzero(ok)
        with np.errstate(all="ignore"):  # instances that are not separated may give anything; they are redone
            for c0 in range(0, len(cand), step):
                sel = cand[c0:c0 + step]
                Zs = _scaled(Z, k, sel)
                n2 = np.einsum("...ij,...ij->...i", Zs, Zs)
                Wc, Wsc = Zs[:, :K], Zs[:, K:]
                c, n = fast_gradient.cosines(Wc, Wsc, n2[:, :K], n2[:, K:])
                good = fast_gradient.separated(c)
                res = np.empty((len(sel), K * d, K * d))
                fast_hessian.assemble(Wc, Wsc, c, n, part, field, res)
                flat[sel[good]] = res[good]
                fast_flat[sel[good]] = True
    _by_single_calls(out, ~fast, plan, single, (part, field))
    return out


def _instances(plan, Wf, Wsf) -> tuple:
    """``(Z, k, ok)``: the instances ``Z = [W; W*]`` of the batch as one ``(N, K + K*, d)`` array, and the
    single call's scaling exponents with the instances in the common case of its rule
    (:func:`numerics.fast_loss.exponents`)."""
    Z = np.concatenate([np.broadcast_to(Wf, plan.shape + Wf.shape[-2:]),
                        np.broadcast_to(Wsf, plan.shape + Wsf.shape[-2:])], axis=-2)
    Z = Z.reshape(-1, plan.K + plan.K_star, plan.d)
    return (Z, *fast_loss.exponents(Z))


def _scaled(Z, k, sel) -> np.ndarray:
    """The instances ``sel`` of ``Z`` scaled by their ``2**k``: the single call's scaled copies."""
    return np.ldexp(Z[sel], k[sel, None, None].astype(np.intc))


def _real_stack(x):
    """``x`` as a float64 array of 2 or more dimensions (the values the single call converts each instance
    to), or ``None`` where the instances must go through that call (not a real NumPy array)."""
    if type(x) is not np.ndarray or x.dtype.kind not in "fiu" or x.ndim < 2:
        return None
    return np.asarray(x, dtype=np.float64)


def _stackable(x, rows: int, d: int):
    """``x`` as a float64 array of shape ``(..., rows, d)`` whose instances have the memory layout the
    single-instance call gives its own (C-contiguous rows: that call's products are then the same BLAS
    calls); ``None`` where the instances must go through that call (not a plain real NumPy array of 2 or
    more dimensions, or instances that are not C-contiguous)."""
    if type(x) is not np.ndarray or x.dtype.kind not in "fiu" or x.ndim < 2:
        return None
    size = x.dtype.itemsize
    if x.strides[-1] != size or x.strides[-2] != size * d:
        return None
    if x.dtype != np.float64:  # the single call converts its instance to a fresh C-contiguous float64 array
        return np.ascontiguousarray(x, dtype=np.float64)
    return x


def _gradient_stacked(W, W_star, part, field, n2w, n2s, out) -> np.ndarray:
    """:func:`numerics.population._gradient` of ``N`` stacked instances ``W (N, K, d)``, ``W_star (N, K*, d)``
    (squared row norms ``n2w``, ``n2s``, in the safe range) into ``out (N, K, d)``; returns ``ok (N,)``,
    the separated instances, on which the single call takes the fast assembly (``out`` is not valid
    elsewhere).  The very functions of :mod:`numerics.fast_gradient` that the single call applies to its
    stack of one, on the whole stack: each instance gets the single call's bits."""
    c, n = fast_gradient.cosines(W, W_star, n2w, n2s)
    ok = fast_gradient.separated(c)
    fast_gradient.coefficients(c, n, part, field)
    fast_gradient.assemble(c, W, W_star, out)
    return ok
