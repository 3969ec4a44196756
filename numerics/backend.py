"""The population objects on any array namespace: PyTorch (CPU or CUDA, float64 or float32, differentiable),
and whatever else ``array_api_compat`` knows (NumPy, CuPy, JAX, array-api-strict).

``numerics.loss``, ``numerics.gradient`` and ``numerics.hessian`` come here when an argument is such an
array other than a NumPy array (a torch tensor, above all); this module can also be called directly with
NumPy arrays.  The results are arrays of the caller's namespace, dtype and device; ``W`` is
``(..., K, d)`` and ``W_star`` ``(..., K*, d)`` with batch shapes that broadcast.

The pair expressions are the generated functions of :mod:`numerics._pair_code` themselves: their
code objects are run with ``cos``, ``sin``, ``tan`` taken from the caller's namespace
(:func:`_pair_functions`), so NumPy and every backend evaluate the same SymPy-generated code.  Each
expression's three branches (series near 0, series near pi, closed form; :mod:`numerics.compile`)
are selected with ``where``, each branch fed safe angles where it is not selected, so that
derivatives carry no NaN from an unused branch.

Differentiable: ``loss`` is built from differentiable operations only, so on PyTorch
``torch.autograd.grad(loss(W, W*, part), W)`` is the gradient of the population loss (equal to
``gradient(W, W*, part, "true")`` where that exists), and ``torch.func.hessian`` of it is
``hessian(W, W*, part, "true")``.  The discrete choices (which student is matched to which teacher,
which pairs are exactly parallel) are made on the values (``tolist``: they work under
``torch.func`` transforms) and carry no derivative.

Accuracy: the same cancellation-free rewrites as :mod:`numerics.population` near the teacher
(student ``j`` matched to teacher ``t``: the pair's three loss terms by ``(|w_j| - |w*_t|)^2 / 4``
plus the rewrite ``rest``; the gradient's leading term ``(w_j - w*_t) / 2`` formed as a difference)
and the true field of ``J`` as its mean-field twin plus the boundary term along ``e2`` (exact
everywhere, stable near kinks).  Not here: :mod:`numerics.population`'s exact-integer refinement of
angles below ~1e-8 and its power-of-two rescaling of extreme norms; squared row norms must stay in
the dtype's normal range.  Without the refinement an exactly parallel pair such as ``b = 2 a`` comes out
a rounding-sized angle from parallel, so the objects that do not exist at a kink are refused wherever a
pair is within ``4 (d + 5) eps ||a| - |b|| / max(|a|, |b|)`` of one (:func:`unresolved_kinks`; NumPy arrays decide
such pairs exactly).  Memory is ``O(B K (K + K*) d)`` (pair differences; :mod:`numerics.xp_geometry`),
and for Hessians the ``O(B (K d)^2)`` result (twice, while the chunks are joined) plus the temporaries
of one chunk of instances (:data:`_HESSIAN_CHUNK_ENTRIES`).

Fast path (gradients and losses of torch tensors that carry no derivative, the common case of GPU
sweeps): every instance whose pairs are all at least ``SWITCH`` from 0 and pi (no series branch, no
student matched to a teacher, no kink; for the loss every pair of ``[W; W*]``) is evaluated as on
NumPy's fast path: cosines from the Gram products, the gradient from the angular cores and constants of
:mod:`numerics.fast_gradient` (``theory.codegen.fast_field_spec``: one pair of cores per field, ``H``
included), the loss from its pair closed forms, two products; in float64 (float32 inputs too, rounded once at the end), memory
``O(B K (K + K*))``.  The other instances, and tensors with derivatives, take the general path.  The
values agree with the general path to ~1e-15 relative (``tests/test_backend_fast.py``); the speed-ups
are measured in ``reports/performance_batched.md`` (CPU) and ``reports/performance.md`` (GPU).
"""
from __future__ import annotations

import builtins
import math
import types
from functools import lru_cache

from . import xp_geometry
from .compile import SWITCH, SWITCH_COS, generated, pair_function
from .matching import match_candidates
from .validation import GRADIENT_FIELDS, HESSIAN_FIELDS, check_field, check_part, is_backend_array


# ----------------------------------------------------------------------------- arrays
def namespace(*arrays):
    """The array namespace of the arrays among ``arrays`` (``array_api_compat.array_namespace``)."""
    import array_api_compat
    import numpy as np

    own = [a for a in arrays if is_backend_array(a)]
    if not own:  # NumPy arrays (or lists) given to this module directly
        own = [np.asarray(a) for a in arrays if isinstance(a, np.ndarray)] or [np.zeros(0)]
    return array_api_compat.array_namespace(*own)


def _operands(W, W_star):
    """``(xp, W, W_star)``: both as arrays of one namespace, real floating dtype and device, checked.

    The dtype is the wider of the two arrays' (lists and integer arrays: float64); float16 and
    bfloat16 are computed, and returned, in float32 (their values exactly widened): the pair
    expressions' series and cancellations need at least its precision.
    """
    import array_api_compat

    xp = namespace(W, W_star)
    arrays = [x for x in (W, W_star) if is_backend_array(x)] or [x for x in (W, W_star) if hasattr(x, "dtype")]
    for x, name in ((W, "W"), (W_star, "W_star")):
        if not any(x is a for a in arrays):
            continue  # a list or NumPy array: checked by validation.real_array on conversion
        if xp.isdtype(x.dtype, "complex floating"):
            raise ValueError(f"{name} must be a real array; got a complex array (the weights of a real network are real)")
        if x.dtype == xp.bool:
            raise ValueError(f"{name} must be a real array of numbers; got booleans")
    floats = [x.dtype for x in arrays if xp.isdtype(x.dtype, "real floating")]
    dtype = xp.float64 if not floats else (floats[0] if len(floats) == 1 else xp.result_type(*floats))
    if xp.finfo(dtype).bits < 32:
        dtype = xp.float32
    device = array_api_compat.device(arrays[0]) if arrays else None
    out = []
    for x, name in ((W, "W"), (W_star, "W_star")):
        if is_backend_array(x) and x.dtype == dtype and array_api_compat.device(x) == device:
            out.append(x)  # the caller's own array (its autograd graph kept)
        elif is_backend_array(x):
            out.append(xp.astype(array_api_compat.to_device(x, device), dtype))
        else:
            out.append(_from_host(xp, x, name, dtype, device))
    # a 1-D array is one row (as in numerics.population)
    out = [xp.reshape(x, (1, x.shape[0])) if x.ndim == 1 else x for x in out]
    _check_shapes(*out)
    _check_values(xp, *out)
    return xp, out[0], out[1]


def in_callers_type(W, W_star, arrays) -> list:
    """NumPy ``arrays`` as arrays of the caller's namespace, dtype and device (those of the arrays among ``W``,
    ``W_star``, as :func:`_operands` settles them): results computed by NumPy for a tensor caller (the model
    family's gradients and Hessians, :mod:`numerics.population`) handed back in the caller's type."""
    xp, Wt, _ = _operands(W, W_star)
    return [xp.asarray(o, dtype=Wt.dtype, device=_device(Wt)) for o in arrays]


def _from_host(xp, x, name: str, dtype, device):
    """A list or NumPy array as an array of ``xp`` (checked for what NumPy's conversion would hide)."""
    from .validation import real_array

    return xp.asarray(real_array(x, name), dtype=dtype, device=device)


def _check_shapes(W, W_star) -> None:
    for x, name in ((W, "W"), (W_star, "W_star")):
        if x.ndim < 2 or x.shape[-2] < 1 or x.shape[-1] < 2:
            raise ValueError(f"{name} must have shape (..., rows >= 1, d >= 2); got {tuple(x.shape)}")
    if W.shape[-1] != W_star.shape[-1]:
        raise ValueError(f"W has d = {W.shape[-1]} but W_star has d = {W_star.shape[-1]}")


def _check_values(xp, W, W_star) -> None:
    """Finite entries and non-zero rows (one host check each)."""
    for x, name in ((W, "W"), (W_star, "W_star")):
        if not bool(xp.all(xp.isfinite(x))):
            raise ValueError(f"{name} has a non-finite entry (inf or NaN)")
        if bool(xp.any(xp.all(x == 0, axis=-1))):
            raise ValueError(f"{name} has a zero row: a ReLU unit with zero weights has no direction "
                             "(its angle to every other row is undefined)")


def _host(x) -> list:
    """The values of ``x`` as nested Python lists (under ``torch.func`` transforms too)."""
    if hasattr(x, "detach"):
        return x.detach().tolist()
    import numpy as np

    try:
        return np.asarray(x).tolist()
    except (TypeError, ValueError, RuntimeError):  # e.g. array-api-strict, which refuses __array__
        return np.from_dlpack(x).tolist()


def _nonzero(x) -> list:
    """Index tuples (batch index first) where the boolean array ``x`` is true, read on the host."""
    import numpy as np

    return [tuple(int(i) for i in idx) for idx in np.argwhere(np.array(_host(x), dtype=bool).reshape(x.shape))]


# ----------------------------------------------------------------------------- pair functions
@lru_cache(maxsize=None)
def _pair_functions(name: str, xp) -> tuple:
    """The generated ``closed_sc``, ``near_zero``, ``near_pi`` of pair ``name`` with ``cos``, ``sin``,
    ``tan`` bound to ``xp``'s (the same code objects NumPy runs)."""
    pf = pair_function(name)
    env = {"__builtins__": builtins, "pi": math.pi, "cos": xp.cos, "sin": xp.sin, "tan": xp.tan}
    return tuple(types.FunctionType(f.__code__, env, f.__name__) for f in (pf.closed_sc, pf.near_zero, pf.near_pi))


def _values(xp, name: str, na, nb, geo):
    """Pair expression ``name`` at every pair of ``geo`` (``na``, ``nb``: its norm arrays)."""
    pf = pair_function(name)
    shape = geo.theta.shape
    if pf.is_zero:
        return xp.zeros(shape, dtype=geo.theta.dtype, device=_device(geo.theta))
    closed, near_zero, near_pi = _pair_functions(name, xp)
    lo = geo.theta < SWITCH
    hi = (geo.psi < SWITCH) & ~lo
    mid = ~(lo | hi)
    one = xp.ones_like(geo.theta)
    # every branch sees safe angles where it is not selected: no inf/NaN, no NaN derivative
    out = _broadcast(xp, closed(na, nb, xp.where(mid, geo.theta, xp_geometry.HALF_PI * one),
                                xp.where(mid, geo.sin, one), xp.where(mid, geo.cos, 0 * one)), shape, one)
    if bool(xp.any(lo)):
        out = xp.where(lo, _broadcast(xp, near_zero(na, nb, xp.where(lo, geo.theta, SWITCH * one)), shape, one), out)
    if bool(xp.any(hi)):
        out = xp.where(hi, _broadcast(xp, near_pi(na, nb, xp.where(hi, geo.psi, SWITCH * one)), shape, one), out)
    return out


def _broadcast(xp, value, shape, like=None):
    """``value`` (an array, or a Python number where the expression is a constant) as an array of ``shape``."""
    if not hasattr(value, "shape"):
        return xp.full(shape, float(value), dtype=like.dtype, device=_device(like))
    return xp.broadcast_to(value, shape) if tuple(value.shape) != tuple(shape) else value


def _device(x):
    import array_api_compat

    return array_api_compat.device(x)


def _signs(xp, K: int, Ks: int, like):
    """``s_q`` of the rows of ``Z = [W; W*]``: ``+1`` for the ``K`` students, ``-1`` for the ``Ks`` teachers."""
    return xp.concat([xp.ones(K, dtype=like.dtype, device=_device(like)),
                      -xp.ones(Ks, dtype=like.dtype, device=_device(like))])


def _self_pairs(xp, rows: int, M: int, like):
    """``(rows, M)`` booleans, true at ``[i, i]``: row ``i`` of ``Z = [W; W*]`` with itself."""
    return xp.concat([xp.eye(rows, dtype=xp.bool, device=_device(like)),
                      xp.zeros((rows, M - rows), dtype=xp.bool, device=_device(like))], axis=-1)


# ----------------------------------------------------------------------------- matching near the teacher
def _matched(xp, theta_st, norms_w, norms_s) -> list:
    """``[(batch index, j, t)]``: per instance, the greedy one-to-one matching of students to teachers
    within ``SWITCH`` radians, by :func:`numerics.matching.match_candidates` (closest angle first, ties
    to the smaller relative gap of norms, then the lower ``j``, ``t``)."""
    near = _nonzero(theta_st < SWITCH)
    if not near:
        return []
    th, nw, ns = _host(theta_st), _host(xp.broadcast_to(norms_w, theta_st.shape[:-1])), _host(
        xp.broadcast_to(norms_s, theta_st.shape[:-2] + theta_st.shape[-1:]))
    by_instance = {}
    for idx in near:
        b, j, t = idx[:-2], idx[-2], idx[-1]
        gap = abs(_at(nw, b + (j,)) - _at(ns, b + (t,))) / _at(ns, b + (t,))
        by_instance.setdefault(b, []).append((_at(th, idx), j, t, gap))
    out = []
    for b, cands in by_instance.items():
        gaps = {(j, t): gap for _, j, t, gap in cands}
        out += [(b, j, t) for j, t in match_candidates(cands, lambda j, t: gaps[(j, t)])]
    return out


def _at(nested, idx):
    for i in idx:
        nested = nested[i]
    return nested


def _mask(xp, shape, positions, like):
    """A boolean array of ``shape`` that is true at ``positions`` (index tuples), on ``like``'s device."""
    import numpy as np

    m = np.zeros(shape, dtype=bool)
    for p in positions:
        m[p] = True
    return xp.asarray(m, device=_device(like))


# ----------------------------------------------------------------------------- loss
def loss(W, W_star, part: str):
    """Population loss ``L``, ``J`` or ``H`` (:func:`numerics.loss`): an array of the batch shape (0-d for
    one instance) in the caller's namespace, dtype and device; differentiable."""
    check_part(part)
    xp, W, W_star = _operands(W, W_star)
    if _plain_values(W) and _plain_values(W_star):
        return _loss_routed(xp, *_broadcast_batch(xp, W, W_star), part)
    return _loss_general(xp, W, W_star, part)


def _loss_general(xp, W, W_star, part):
    """The loss by the pair-difference geometry, with the rewrite near the teacher; differentiable."""
    if part == "H":
        return _loss(xp, W, W_star, "L") + _loss(xp, W, W_star, "J")
    return _loss(xp, W, W_star, part)


# public for the benchmarks: loss's general path (what tensors with derivatives take), timed against the fast one
loss_general = _loss_general


def _loss_routed(xp, W, W_star, part):
    """The loss of a batch whose instances go through :func:`_loss_fast` where every pair of ``[W; W*]`` is
    away from the kinks (then no student is near a teacher), else the general path."""
    batch, (K, d), Ks = W.shape[:-2], W.shape[-2:], W_star.shape[-2]
    out = _routed(xp, xp.reshape(W, (-1, K, d)), xp.reshape(W_star, (-1, Ks, d)),
                  lambda w, s, geo: _loss_fast(xp, w, s, part, geo),
                  lambda w, s: _loss_general(xp, w, s, part), rows=K + Ks)
    return xp.reshape(out, batch)


def _loss_fast(xp, W, W_star, part, geo):
    """``sum_{p != q} s_p s_q f(|z_p|, |z_q|, theta_pq) / 2 + sum_p c |z_p|^2 / 2`` by the closed form of every
    pair term, in float64, returned in ``W``'s dtype."""
    K, Ks = W.shape[-2], W_star.shape[-2]
    Z, n, keep = geo["Z"], geo["n"], ~geo["self_pair"]
    signs = _signs(xp, K, Ks, Z)
    total = 0.0
    for p in ("L", "J") if part == "H" else (part,):
        spec = generated().OBJECTS[("loss", p)]
        f = _broadcast(xp, _pair_functions(spec["f"], xp)[0](n[:, :, None], n[:, None, :], geo["theta"], geo["sin"],
                                                           geo["cos"]), geo["cos"].shape, geo["cos"])
        pairs = xp.where(keep, signs[:, None] * signs[None, :] * f, 0.0)
        total = total + 0.5 * xp.sum(pairs, axis=(-2, -1)) + 0.5 * spec["self_coef"] * xp.sum(n * n, axis=-1)
    return xp.astype(total, W.dtype)


def _loss(xp, W, W_star, part):
    spec = generated().OBJECTS[("loss", part)]
    W, W_star = _broadcast_batch(xp, W, W_star)
    K, Ks = W.shape[-2], W_star.shape[-2]
    Z = xp.concat([W, W_star], axis=-2)
    geo = xp_geometry.pairs(xp, Z, Z)
    signs = _signs(xp, K, Ks, Z)
    terms = 0.5 * signs[:, None] * signs[None, :] * _values(xp, spec["f"], geo.na, geo.nb, geo)
    n = geo.na[..., 0]
    eye = xp.eye(K + Ks, dtype=xp.bool, device=_device(Z))
    terms = xp.where(eye, (0.5 * spec["self_coef"] * n * n)[..., None], terms)
    matched = _matched(xp, geo.theta[..., :K, K:], n[..., :K], n[..., K:])
    if matched:
        terms = _matched_loss_terms(xp, spec, terms, Z, geo, matched, K)
    return xp.sum(terms, axis=(-2, -1))


def _matched_loss_terms(xp, spec, terms, Z, geo, matched, K):
    """``terms`` with, for each matched pair ``(j, p)``, its diagonal and cross terms replaced by
    ``(|z_j| - |z_p|)^2 / 4 + rest`` (in the ``[j, p]`` entry): no cancellation near the teacher."""
    batch = terms.shape[:-2]
    at_jp = _mask(xp, terms.shape, [b + (j, K + t) for b, j, t in matched], terms)
    zeroed = _mask(xp, terms.shape, [b + q for b, j, t in matched
                                     for q in ((j, j), (K + t, K + t), (K + t, j))], terms)
    # |z_j| - |z_p| = (z_j - z_p).(z_j + z_p) / (|z_j| + |z_p|), for every student-teacher pair
    Wb, Sb = Z[..., :K, None, :], Z[..., None, K:, :]
    n_w, n_s = geo.na[..., :K, :], geo.nb[..., :, K:]
    dn = xp.sum((Wb - Sb) * (Wb + Sb), axis=-1) / (n_w + n_s)
    sub = _SubGeometry(geo, slice(0, K), slice(K, None))
    rest = _values(xp, spec["rest"], n_w, n_s, sub)
    rewrite = dn * dn / 4 + rest
    full = xp.concat([xp.zeros(batch + (K, K), dtype=terms.dtype, device=_device(terms)), rewrite], axis=-1)
    full = xp.concat([full, xp.zeros(batch + (terms.shape[-2] - K, terms.shape[-1]), dtype=terms.dtype,
                                      device=_device(terms))], axis=-2)
    terms = xp.where(zeroed, 0 * terms, terms)
    return xp.where(at_jp, full, terms)


class _SubGeometry:
    """The pairs ``[rows, cols]`` of a geometry (only what :func:`_values` reads)."""

    def __init__(self, geo, rows, cols):
        for name in ("theta", "psi", "sin", "cos"):
            setattr(self, name, getattr(geo, name)[..., rows, cols])


def _broadcast_batch(xp, W, W_star):
    """``W``, ``W_star`` with their batch shapes broadcast to one."""
    batch = _batch_shape(W.shape[:-2], W_star.shape[:-2])
    return (xp.broadcast_to(W, batch + tuple(W.shape[-2:])), xp.broadcast_to(W_star, batch + tuple(W_star.shape[-2:])))


def _batch_shape(a, b) -> tuple:
    import numpy as np

    try:
        return tuple(np.broadcast_shapes(tuple(a), tuple(b)))
    except ValueError:
        raise ValueError(f"the batch shapes of W {tuple(a)} and W_star {tuple(b)} do not broadcast") from None


# ----------------------------------------------------------------------------- gradient
def gradient(W, W_star, part: str, field: str):
    """Gradient field ``(..., K, d)`` (:func:`numerics.gradient`) in the caller's namespace.

    Row ``j``: ``half w_j + sum_q s_q (alpha_jq w_j/|w_j| + beta_jq z_q/|z_q|)`` with the mean-field
    coefficients; ``field="true"`` adds the boundary term ``sum_q s_q c_jq e2_jq`` of the indicators
    (``J``, ``H``), and refuses configurations with two (anti-)parallel rows, where it does not exist (exactly, or
    within this path's rounding of it: :func:`unresolved_kinks`).
    """
    check_part(part)
    check_field(field, GRADIENT_FIELDS, "gradient")
    xp, W, W_star = _operands(W, W_star)
    W, W_star = _broadcast_batch(xp, W, W_star)
    if _plain_values(W) and _plain_values(W_star):
        return _gradient_routed(xp, W, W_star, part, field)
    return _gradient_general(xp, W, W_star, part, field)


def _gradient_general(xp, W, W_star, part, field):
    """The gradient by the pair-difference geometry, near kinks and teachers too; differentiable."""
    out = None
    for p in ("L", "J") if part == "H" else (part,):
        g = _gradient(xp, W, W_star, p, field, part)
        out = g if out is None else out + g
    return out


# public for the benchmarks: gradient's general path (what tensors with derivatives take), timed against the fast one
gradient_general = _gradient_general


# ----------------------------------------------------------------------------- gradient, fast path
# An instance whose every pair but the self pairs has |cos| <= SWITCH_COS is away from the kinks: there the
# closed forms are accurate (numerics.compile), no student is matched to a teacher and no pair is at a
# kink, so the gradient is the closed forms and two products (the loss the closed pair terms), as on
# NumPy's fast path.


def _plain_values(x) -> bool:
    """Whether ``x`` is a torch tensor that carries no derivative for reverse-mode autograd: no
    ``requires_grad`` and not a ``torch.func`` transform's wrapper.  Those keep the general path, whose
    derivatives of every order are tested; the fast path is made of differentiable operations too, so a
    forward-mode dual tensor (``torch.autograd.forward_ad``) gets its tangent through it.  Other
    namespaces take the general path."""
    if type(x).__module__.split(".")[0] != "torch":
        return False
    import torch

    wrapped = getattr(torch._C._functorch, "is_functorch_wrapped_tensor", None)
    return not x.requires_grad and wrapped is not None and not wrapped(x)


def _gradient_routed(xp, W, W_star, part, field):
    """The gradient of a batch whose instances go, each, through :func:`_gradient_fast` (every pair away
    from the kinks) or else the general path: same object, the same values to rounding
    (``tests/test_backend_fast.py``)."""
    batch, (K, d), Ks = W.shape[:-2], W.shape[-2:], W_star.shape[-2]
    try:
        out = _routed(xp, xp.reshape(W, (-1, K, d)), xp.reshape(W_star, (-1, Ks, d)),
                      lambda w, s, geo: _gradient_fast(xp, w, s, part, field, geo),
                      lambda w, s: _gradient_general(xp, w, s, part, field))
    except Refusal as exc:  # the stack was the batch flattened: its index back in the batch's shape
        raise exc.in_batch(batch) from None
    return xp.reshape(out, batch + (K, d))


def _fast_geometry(xp, W, W_star, rows: int | None = None) -> dict:
    """Norms, cosines, angles and sines of the pairs of the first ``rows`` rows (default: the rows of ``W``)
    of ``Z = [W; W*]`` against all of ``Z``, for stacked instances ``W (N, K, d)``, ``W_star (N, K*, d)``, in
    float64, from the Gram products (the self pairs at a right angle), and ``fast (N,)``: whether every
    other pair's ``|cos|`` is at most :data:`numerics.compile.SWITCH_COS`."""
    rows = W.shape[-2] if rows is None else rows
    Z = xp.astype(xp.concat([W, W_star], axis=-2), xp.float64)
    n = xp.sqrt(xp.sum(Z * Z, axis=-1))
    c = (Z[:, :rows, :] @ xp.matrix_transpose(Z)) / (n[:, :rows, None] * n[:, None, :])
    c = xp.clip(c, -1.0, 1.0)
    self_pair = _self_pairs(xp, rows, Z.shape[-2], Z)
    c = xp.where(self_pair, 0.0, c)
    fast = xp.all(xp.abs(c) <= SWITCH_COS, axis=(-2, -1))
    sin = xp.sqrt((1.0 - c) * (1.0 + c))
    return {"Z": Z, "n": n, "cos": c, "sin": sin, "theta": xp.atan2(sin, c), "self_pair": self_pair, "fast": fast}


def _routed(xp, W, W_star, fast_fn, general_fn, rows: int | None = None):
    """``fast_fn(W, W*, geometry)`` on the instances of the stacks ``W (N, K, d)``, ``W_star (N, K*, d)`` whose
    pairs are all away from the kinks (one host check for the batch), ``general_fn(W, W*)`` on the others,
    the results put back in the instances' order."""
    geo = _fast_geometry(xp, W, W_star, rows)
    fast = _host(geo["fast"])
    if all(fast):
        return fast_fn(W, W_star, geo)
    if not any(fast):
        return general_fn(W, W_star)
    where = {flag: [i for i, f in enumerate(fast) if f is flag] for flag in (True, False)}  # host indices
    idx = {flag: xp.asarray(where[flag], device=_device(W)) for flag in where}
    sub = {flag: (xp.take(W, idx[flag], axis=0), xp.take(W_star, idx[flag], axis=0)) for flag in idx}
    # the fast instances' geometry: their entries of the batch's (self_pair is the same for every instance)
    geo_fast = {key: value if key == "self_pair" else xp.take(value, idx[True], axis=0) for key, value in geo.items()}
    try:
        general = general_fn(*sub[False])
    except Refusal as exc:  # name the instance by its place in the whole stack
        raise exc.at((where[False][exc.instance[0]],)) from None
    parts = [fast_fn(*sub[True], geo_fast), general]
    order = xp.argsort(xp.concat([idx[True], idx[False]]))  # back to the instances' own order
    return xp.take(xp.concat(parts, axis=0), order, axis=0)


def _gradient_fast(xp, W, W_star, part, field, geo):
    """Row ``j``: ``(half + sum_q s_q a_const A(theta_jq) |z_q| / |w_j|) w_j + sum_q s_q b_const B(theta_jq) z_q``,
    the assembly of :mod:`numerics.fast_gradient` with the same generated angular cores and constants
    (``theory.codegen.fast_field_spec``; for ``H`` one pair of cores, not those of ``L`` and ``J``), computed
    in float64 and returned in ``W``'s dtype."""
    K, Ks = W.shape[-2], W_star.shape[-2]
    spec = generated().OBJECTS[("fast_field", part, field)]
    Z, n, keep = geo["Z"], geo["n"], ~geo["self_pair"]
    signs = _signs(xp, K, Ks, Z)
    args = (None, None, geo["theta"], geo["sin"], geo["cos"])  # the cores depend on the angle alone
    diag = spec["half"] + 0.0 * n[:, :K]
    if not pair_function(spec["alpha"]).is_zero:
        alpha = _broadcast(xp, _pair_functions(spec["alpha"], xp)[0](*args), geo["cos"].shape, geo["cos"])
        alpha = xp.where(keep, (spec["alpha_const"] * signs) * alpha * n[:, None, :], 0.0)
        diag = diag + xp.sum(alpha, axis=-1) / n[:, :K]
    beta = _broadcast(xp, _pair_functions(spec["beta"], xp)[0](*args), geo["cos"].shape, geo["cos"])
    coef = xp.where(keep, (spec["beta_const"] * signs) * beta, 0.0)
    out = diag[..., None] * Z[:, :K, :] + coef @ Z
    return xp.astype(out, W.dtype)


def _gradient(xp, W, W_star, part, field, asked):
    spec = generated().OBJECTS[("field", part, field)]
    smooth = generated().OBJECTS[spec["twin"]] if spec["twin"] is not None else spec
    K, Ks = W.shape[-2], W_star.shape[-2]
    Z = xp.concat([W, W_star], axis=-2)
    geo = xp_geometry.pairs(xp, W, Z)
    signs = _signs(xp, K, Ks, Z)
    self_pair = _self_pairs(xp, K, K + Ks, Z)
    if spec["twin"] is not None:
        _refuse_kinks(xp, geo, self_pair, f"true gradient of {'H (its J part)' if asked == 'H' else part}")
    safe = _without_self_pairs(xp, geo, self_pair)
    alpha = _values(xp, smooth["alpha"], safe.na, safe.nb, safe)
    beta = _values(xp, smooth["beta"], safe.na, safe.nb, safe)
    boundary = None if spec["boundary"] is None else _values(xp, spec["boundary"], safe.na, safe.nb, safe)
    matched = _matched(xp, geo.theta[..., :, K:], geo.na[..., 0], geo.nb[..., 0, K:])
    at = _mask(xp, geo.theta.shape, [b + (j, K + t) for b, j, t in matched], geo.theta)
    if matched:  # the pair's own term, rewritten: rho (its "- half w*_t" is formed with half w_j below)
        alpha = xp.where(at, -_values(xp, smooth["rho_alpha"], safe.na, safe.nb, safe), alpha)
        beta = xp.where(at, -_values(xp, smooth["rho_beta"], safe.na, safe.nb, safe), beta)
    keep = ~self_pair
    sa = xp.where(keep, signs * alpha, 0 * alpha)
    sb = xp.where(keep, signs * beta, 0 * beta)
    unit_z = Z / xp.sqrt(xp.sum(Z * Z, axis=-1))[..., None]
    out = xp.sum(sa, axis=-1)[..., None] * geo.ua[..., 0, :] + sb @ unit_z
    out = out + smooth["half"] * _leading_term(xp, W, W_star, matched)
    if boundary is not None:
        e2 = xp_geometry.plane_directions(xp, geo, self_pair)
        sc = xp.where(keep, signs * boundary, 0 * boundary)
        out = out + xp.sum(sc[..., None] * e2, axis=-2)
    return out


def _leading_term(xp, W, W_star, matched):
    """``w_j``, or ``w_j - w*_t`` (formed as a difference) for a student matched to teacher ``t``."""
    if not matched:
        return W
    # one-hot selection of the matched teacher row (zero rows for unmatched students)
    onehot = _mask(xp, W.shape[:-1] + (W_star.shape[-2],), [b + (j, t) for b, j, t in matched], W)
    return W - xp.astype(onehot, W.dtype) @ W_star


def _without_self_pairs(xp, geo, self_pair):
    """``geo`` with the self pairs moved to a right angle (their terms are dropped; a safe point for every
    branch and every derivative)."""
    one = xp.ones_like(geo.theta)
    half_pi = xp_geometry.HALF_PI * one
    fields = {"theta": half_pi, "psi": half_pi, "sin": one, "cos": 0 * one}
    out = _SubGeometry(geo, slice(None), slice(None))
    for name, value in fields.items():
        setattr(out, name, xp.where(self_pair, value, getattr(geo, name)))
    out.na, out.nb = geo.na, geo.nb
    return out


def _refuse_kinks(xp, geo, excluded, what: str) -> None:
    """``ValueError`` where two rows other than the ``excluded`` pairs are (anti-)parallel as far as this
    module's angles can tell (:func:`unresolved_kinks`); the first such pair is named, with its batch index."""
    hit = _nonzero(unresolved_kinks(xp, geo) & ~excluded)
    if hit:
        idx = hit[0]
        K = geo.theta.shape[-2]
        j, q = idx[-2], idx[-1]
        other = f"W[{q}]" if q < K else f"W_star[{q - K}]"
        theta, psi = float(_host(geo.theta[idx])), float(_host(geo.psi[idx]))
        kind = "parallel" if theta <= psi else "anti-parallel"
        angle = min(theta, psi)
        how = (f"exactly {kind}" if angle == 0 else
               f"{kind} to within rounding (computed {angle:.1e} rad from it, below what this path resolves for "
               "rows of these norms; NumPy arrays are refined in exact arithmetic)")
        raise Refusal(idx[:-2], f"the {what} does not exist here: W[{j}] and {other} are {how}, where the "
                      "population J has a kink (docs/theory.md, section 6). The mean-field gradient exists.")


class Refusal(ValueError):
    """A ``ValueError`` about one instance of a batch: ``instance`` its index among the instances of the arrays
    refused, ``text`` the message without it.  Paths that flatten or split the batch give the caller's index
    back with :meth:`at`."""

    def __init__(self, instance: tuple, text: str):
        self.instance, self.text = tuple(instance), text
        super().__init__(f"instance {self.instance}: {text}" if self.instance else text)

    def at(self, instance: tuple) -> "Refusal":
        return Refusal(instance, self.text)

    def in_batch(self, batch: tuple, offset: int = 0) -> "Refusal":
        """The refusal of a flattened stack whose instance ``offset + instance[0]`` is named by its index in the
        batch shape ``batch``."""
        import numpy as np

        return self.at(tuple(int(i) for i in np.unravel_index(offset + self.instance[0], batch)))


KINK_ROUNDING = 4  # safety factor on the rounding bound of unresolved_kinks


def unresolved_kinks(xp, geo):
    """Pairs whose angle :func:`numerics.xp_geometry.pairs` cannot tell from 0 or pi: ``min(theta, psi) <=
    KINK_ROUNDING (d + 5) eps ||a| - |b|| / max(|a|, |b|)`` (``eps`` of the dtype), exactly (anti-)parallel
    pairs among them.

    Why that bound: ``a^ - b^`` is formed as ``(D - u (|a| - |b|)) / max(|a|, |b|)`` from ``D = a - b`` (``u``
    the shorter row's unit vector); its rounding error is at most about ``(d + 5) eps |D| / max(|a|, |b|)``
    (``d``-term sums in ``|a| - |b| = D.S / (|a| + |b|)`` and in the norms), and for an exactly parallel
    pair ``|D| = ||a| - |b||``: the computed angle of such a pair is that noise, not 0, unless the rows are
    equal or their differences happen to round exactly (so ``b = 2 a`` is usually *not* found by
    ``theta == 0``).  Likewise ``psi`` with ``S = a + b``.  A pair of
    equal norms has no such noise (``D`` itself is small) and is refused only when exactly parallel.
    """
    d = geo.ua.shape[-1]
    eps = xp.finfo(geo.theta.dtype).eps
    tol = (KINK_ROUNDING * (d + 5) * eps) * xp.abs(geo.na - geo.nb) / xp.maximum(geo.na, geo.nb)
    return (geo.theta <= tol) | (geo.psi <= tol)


# ----------------------------------------------------------------------------- Hessian
def hessian(W, W_star, part: str, field: str):
    """Hessian-type matrix ``(..., K d, K d)`` (:func:`numerics.hessian`), index ``i d + k``, in the caller's
    namespace: ``"true"`` (of the loss), ``"mean"`` (Jacobian of the mean field), ``"autograd"``."""
    check_part(part)
    check_field(field, HESSIAN_FIELDS, "Hessian")
    xp, W, W_star = _operands(W, W_star)
    W, W_star = _broadcast_batch(xp, W, W_star)
    parts = ("L", "J") if part == "H" else (part,)
    batch, (K, d), Ks = W.shape[:-2], W.shape[-2:], W_star.shape[-2]
    step = _hessian_chunk(W, K * d)
    if math.prod(batch) <= step:
        return _hessian(xp, W, W_star, parts, field, part)
    # a large batch in chunks of instances: the temporaries (a few times the chunk's matrices) stay bounded
    W, W_star = xp.reshape(W, (-1, K, d)), xp.reshape(W_star, (-1, Ks, d))
    chunks = []
    for c0 in range(0, W.shape[0], step):
        try:
            chunks.append(_hessian(xp, W[c0:c0 + step], W_star[c0:c0 + step], parts, field, part))
        except Refusal as exc:  # its index in the chunk, back in the batch's shape
            raise exc.in_batch(batch, offset=c0) from None
    return xp.reshape(xp.concat(chunks, axis=0), batch + (K * d, K * d))


# Hessian entries per chunk of a batch: on a CPU 2^21 (16 MiB of results; K = K* = d = 10 on the 2-core VM,
# H mean: B = 1024 ~0.24-0.34 ms per instance in chunks of 2^18 .. 2^24 entries against 0.31 whole; B = 4096
# 0.28 ms and 0.7 GiB peak growth against 1.0 ms and 2.0 GiB whole, whose temporaries spill out of memory's
# fast paths); elsewhere 2^25 (kernels of millions of entries; the temporaries stay within ~1 GiB).
_HESSIAN_CHUNK_ENTRIES = {"cpu": 1 << 21}
_HESSIAN_CHUNK_ENTRIES_ELSEWHERE = 1 << 25


def _hessian_chunk(W, width: int) -> int:
    """Instances per chunk of a batched Hessian of ``width x width`` matrices on ``W``'s device."""
    kind = str(_device(W)).split(":")[0]
    return max(1, _HESSIAN_CHUNK_ENTRIES.get(kind, _HESSIAN_CHUNK_ENTRIES_ELSEWHERE) // (width * width))


def _hessian(xp, W, W_star, parts: tuple, field: str, asked: str):
    """The matrix of ``field`` of the sum of ``parts`` (``("L", "J")`` for ``H``): the pair coefficients of
    the parts are added first and the blocks written once."""
    K, Ks, d = W.shape[-2], W_star.shape[-2], W.shape[-1]
    batch = W.shape[:-2]
    Z = xp.concat([W, W_star], axis=-2)
    geo = xp_geometry.pairs(xp, W, Z)
    dev = _device(Z)
    signs = _signs(xp, K, Ks, Z)
    self_pair = _self_pairs(xp, K, K + Ks, Z)
    safe = _without_self_pairs(xp, geo, self_pair)
    e1 = geo.ua[..., 0, :]  # (..., K, d)
    e2 = xp_geometry.plane_directions(xp, geo, self_pair | (geo.theta == 0) | (geo.psi == 0))
    eye = xp.eye(d, dtype=Z.dtype, device=dev)
    students = xp.concat([~xp.eye(K, dtype=xp.bool, device=dev), xp.zeros((K, Ks), dtype=xp.bool, device=dev)],
                         axis=-1)
    off, diag_coef, self_s = [], [], 0.0
    for part in parts:
        spec = generated().OBJECTS[("hessian", part, field)]
        what = _hessian_name(field, asked if part == parts[0] else f"{asked} (its {part} part)")
        if K > 1:
            if not (spec["off"]["exists_parallel"] and spec["off"]["exists_antiparallel"]):
                _refuse_kinks(xp, geo, ~students, what)
            off.append([xp.where(students, c, 0 * c)[..., :K] for c in _coefficients(xp, spec["off"], safe, d)])
        self_s += spec["self_s"]
        if spec["diag"] is not None:
            if not (spec["diag"]["exists_parallel"] and spec["diag"]["exists_antiparallel"]):
                _refuse_kinks(xp, geo, self_pair, what)
            diag_coef.append([xp.where(self_pair, 0 * c, c * signs)
                              for c in _coefficients(xp, spec["diag"], safe, d)])
    diag = self_s * xp.broadcast_to(eye, batch + (K, d, d))
    if diag_coef:
        diag = diag + _block_sums(xp, _summed(diag_coef), e1, e2, eye)
    # the diagonal blocks (j, j): a one-hot over (j, l) places them
    place = xp.eye(K, dtype=Z.dtype, device=dev)
    out = place[:, None, :, None] * diag[..., :, :, None, :]
    if off:
        out = out + _off_blocks(xp, _summed(off), e1, e2[..., :, :K, :], eye)
    return xp.reshape(out, batch + (K * d, K * d))


def _hessian_name(field: str, asked: str) -> str:
    return {"true": f"true Hessian of {asked}", "mean": f"Jacobian of the mean field of {asked}",
            "autograd": f"expected autograd Hessian of {asked}"}[field]


def _summed(coefficient_lists: list) -> list:
    """The entrywise sums of lists of coefficient arrays (the parts of ``H``)."""
    return [sum(terms[1:], terms[0]) for terms in zip(*coefficient_lists)]


def _coefficients(xp, matrix_spec: dict, geo, d: int) -> list:
    """The coefficients ``(B11, B12, B21, B22, s)`` of a pair matrix at every pair (``d = 2``: the four
    in-plane ones, ``s`` folded in)."""
    names = matrix_spec["coef_plane"] if d == 2 else matrix_spec["coef"]
    return [_values(xp, name, geo.na, geo.nb, geo) for name in names]


def _left_factors(coef, e1, e2) -> tuple:
    """``(P, Q)``, ``(..., m, n, d)``: the pair matrix ``B11 e1 e1^T + B12 e1 e2^T + B21 e2 e1^T + B22 e2 e2^T``
    grouped by its left factor, ``e1 P^T + e2 Q^T`` with ``P = B11 e1 + B12 e2``, ``Q = B21 e1 + B22 e2``:
    two outer products per pair instead of four."""
    B11, B12, B21, B22 = (c[..., None] for c in coef[:4])
    a = e1[..., :, None, :]  # e1 of the row m, against every n
    return B11 * a + B12 * e2, B21 * a + B22 * e2


def _off_blocks(xp, coef, e1, e2, eye):
    """The blocks of the pairs ``(j, l)`` of students, ``coef (..., K, K)`` (zero on ``j = l``), written in the
    Hessian's index order ``(..., j, a, l, b)``: ``e1_j[a] P_jl[b] + e2_jl[a] Q_jl[b] (+ s_jl [a = b])``."""
    P, Q = _left_factors(coef, e1, e2)
    e2_t = xp.matrix_transpose(e2)  # (..., j, a, l)
    out = e1[..., :, :, None, None] * P[..., :, None, :, :] + e2_t[..., None] * Q[..., :, None, :, :]
    if len(coef) == 5:  # (the d = 2 coefficients have s folded into B11, B22)
        out = out + coef[4][..., :, None, :, None] * eye[:, None, :]
    return out


def _block_sums(xp, coef, e1, e2, eye):
    """``sum_q`` of the pair matrices of each row, ``(..., K, d, d)``, for ``coef (..., K, M)``:
    ``e1 (sum_q P_q)^T + sum_q e2_q Q_q^T (+ sum_q s_q I)``, the second sum one matrix product per row."""
    P, Q = _left_factors(coef, e1, e2)
    out = e1[..., :, :, None] * xp.sum(P, axis=-2)[..., :, None, :] + xp.matmul(xp.matrix_transpose(e2), Q)
    if len(coef) == 5:
        out = out + xp.sum(coef[4], axis=-1)[..., None, None] * eye
    return out


# ----------------------------------------------------------------------------- the model family
def family_loss(W, W_star, part: str, fam, a=None, a_star=None):
    """A loss of the model family (:mod:`numerics.family_population`) in the caller's namespace, differentiable
    in ``W``, ``W_star`` and in the output weights ``a``, ``a_star`` when they are arrays of that namespace
    (torch tensors with ``requires_grad``: autograd then gives the gradient in ``a``, the ``train_output``
    gradient of the population loss).  ``fam``: the checked keywords (:func:`numerics.family.family`)."""
    from .family_population import _ORDER, check_part_exists, parts_needed

    check_part_exists(part, fam)
    xp, W, W_star = _operands(W, W_star)
    W, W_star = _broadcast_batch(xp, W, W_star)
    K, Ks = W.shape[-2], W_star.shape[-2]
    dev = _device(W)
    out_w = [_output_weights(xp, v, n, W) for v, n in ((a, K), (a_star, Ks))]
    weights = xp.concat([out_w[0], -out_w[1]], axis=-1)
    Z = xp.concat([W, W_star], axis=-2)
    U = Z
    if fam.cov is not None:
        from .family import cov_sqrt

        U = Z @ xp.asarray(cov_sqrt(fam.cov), dtype=Z.dtype, device=dev)  # rows cov^(1/2) z
    geo = xp_geometry.pairs(xp, U, U)
    G = Z @ xp.matrix_transpose(Z)
    outer = 0.5 * weights[..., :, None] * weights[..., None, :]
    total = None
    for name, lam in parts_needed(part, fam).items():
        k = _ORDER[name]
        q, cp, cm = fam.activation.derivative(k)
        kern = _family_kernel(xp, geo, q, cp, cm)
        term = lam * xp.sum(outer * kern * (G**k if k else 1.0), axis=(-2, -1))
        total = term if total is None else total + term
    return total


def _output_weights(xp, v, n: int, like):
    """Output weights as an array of ``like``'s namespace, dtype and device (ones for ``None``); the
    caller's own tensor where it already is one (its autograd graph kept)."""
    if v is None:
        return xp.ones(n, dtype=like.dtype, device=_device(like))
    if is_backend_array(v) and v.dtype == like.dtype:
        return v
    if is_backend_array(v):
        return xp.astype(v, like.dtype)
    return _from_host(xp, v, "output weights", like.dtype, _device(like))


def _family_kernel(xp, geo, q: int, c_plus: float, c_minus: float):
    """``E[sigma(u_p.z) sigma(u_r.z)]`` at every pair for ``sigma(t) = c_plus t_+^q + c_minus t_-^q``."""
    out = None
    for signs, weight in (("pp", c_plus * c_plus), ("pm", c_plus * c_minus), ("mp", c_minus * c_plus),
                          ("mm", c_minus * c_minus)):
        if weight != 0.0:
            value = weight * _values(xp, generated().OBJECTS[("arc", q, signs)]["f"], geo.na, geo.nb, geo)
            out = value if out is None else out + value
    return out
