"""Population losses, gradient fields and Hessians of the shallow ReLU student-teacher network.

Semantics (docs/theory.md, sections 4–5):

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
import os
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from . import fast_gradient, fast_hessian, fast_loss
from .compile import SWITCH, generated, pair_function
from .geometry import (geometry_from_cosines, paired_plane_directions, pair_geometry,
                       plane_directions)
from .matching import match_candidates
from .validation import (GRADIENT_FIELDS, HESSIAN_FIELDS, check_field, check_part, is_batched, prepare,
                         wants_backend,
                         prepare_unscaled, stacked)


# ----------------------------------------------------------------------------- compiled objects
# Built from the generated module numerics._pair_code (`python -m theory.codegen`), whose tables
# hold the pair functions by name, the constants and the existence flags derived by SymPy
# (theory.codegen.specification: the derivation of each object is there).
_loss_object = fast_loss.loss_object  # the loss objects live beside the plain path that uses them too
_hessian_object = fast_hessian.hessian_object  # and the matrix objects beside the assembly that uses them too


@lru_cache(maxsize=None)
def _vector_object(part: str, field: str) -> dict:
    spec = generated().OBJECTS[("field", part, field)]
    twin = spec["twin"]
    return {
        # near a kink the true field is evaluated as its mean-field twin plus the boundary term
        # along e2: its own span coefficients carry ~1/angle terms that cancel there
        "twin": None if twin is None else _vector_object(*twin[1:]),
        "boundary": None if spec["boundary"] is None else pair_function(spec["boundary"]),
        **{k: pair_function(spec[k]) for k in ("alpha", "beta", "rho_alpha", "rho_beta")},
        **{k: spec[k] for k in ("half", "exists_parallel", "exists_antiparallel")},
    }


def _evaluate(fn, geo, mask=None) -> np.ndarray:
    """``fn`` on every pair (or only where ``mask``; zero elsewhere, never evaluated there)."""
    if mask is None:
        return fn(geo.na, geo.nb, geo.theta, geo.psi, geo.sin, geo.cos)
    na, nb = np.broadcast_arrays(geo.na, geo.nb)
    out = np.zeros(geo.theta.shape)
    out[mask] = fn(na[mask], nb[mask], geo.theta[mask], geo.psi[mask], geo.sin[mask], geo.cos[mask])
    return out


# ----------------------------------------------------------------------------- helpers
def _stack(W, W_star):
    Z = stacked(W, W_star)
    signs = np.concatenate([np.ones(len(W)), -np.ones(len(W_star))])
    return Z, signs


def _match(theta: np.ndarray, K: int, norms: np.ndarray) -> list:
    """Greedy one-to-one matching of students to teachers closer than ``SWITCH`` radians.

    ``theta`` holds the angles of ``(W, Z)`` (``K`` rows at least), ``norms`` the row norms of
    ``Z``; returns ``[(j, p)]`` with ``p >= K`` a row of ``Z``, closest pairs first.
    """
    th = theta[:K, K:]
    return match_candidates([(float(th[j, t]), int(j), int(t) + K) for j, t in np.argwhere(th < SWITCH)],
                            lambda j, p: abs(norms[j] - norms[p]) / norms[p])


def _norm_difference(a: np.ndarray, b: np.ndarray) -> float:
    """``|a| - |b|`` without cancellation: ``(a - b).(a + b) / (|a| + |b|)``."""
    return float(np.dot(a - b, a + b) / (np.linalg.norm(a) + np.linalg.norm(b)))


def _raise_if_missing(obj: dict, geo, mask: np.ndarray, what: str, row_names, row_offset: int = 0) -> None:
    for kind, flag in (("parallel", "exists_parallel"), ("anti-parallel", "exists_antiparallel")):
        if obj[flag]:
            continue
        hit = np.argwhere((geo.parallel if kind == "parallel" else geo.antiparallel) & mask)
        if len(hit):
            i, j = hit[0]
            raise ValueError(
                f"the {what} does not exist here: W[{i + row_offset}] and {row_names(j)} are exactly {kind} (or within "
                "5e-324 rad of it, below the smallest float64 angle), "
                "where the population J has a kink (docs/theory.md, section 6). The mean-field gradient exists; "
                "or perturb the weights to evaluate a one-sided value."
            )


def _namer(K: int):
    return lambda p: f"W[{p}]" if p < K else f"W_star[{p - K}]"


# ----------------------------------------------------------------------------- public API
_DEFAULT_SOBOLEV = (1.0, 0.0)  # the keywords' defaults: the paper's model (numerics.family)


def loss(W, W_star, part: str, *, a=None, a_star=None, activation="relu", cov=None, sobolev=_DEFAULT_SOBOLEV,
         train_output=False) -> float | np.ndarray:
    """Population loss ``L``, ``J`` or ``H = L + J`` (docs/theory.md, section 2), a float.

    ``L = E[(g(x;W) - g(x;W*))^2]/2``, ``J = E[|grad_x g(x;W) - grad_x g(x;W*)|^2]/2``,
    ``x ~ N(0, I_d)``; ``W`` is ``(K, d)``, ``W_star`` is ``(K*, d)``.

    Batched (:mod:`numerics.batched`): ``W`` of shape ``(..., K, d)`` and ``W_star`` of shape ``(..., K*, d)``
    (either with 3 or more dimensions; batch shapes broadcast) give a float64 array of the batch shape.

    Beyond the paper's model (:mod:`numerics.family`, :mod:`numerics.family_population`): output weights
    ``a`` ``(K,)`` and ``a_star`` ``(K*,)`` (``None``: ones), ``activation`` ``"relu"``,
    ``("leaky_relu", beta)`` or ``("relu_power", p)``, input covariance ``cov`` ``(d, d)`` (``None``: I),
    ``sobolev = (lambda_1, lambda_2)`` with ``H = L + lambda_1 J + lambda_2 J2`` and the part ``"J2"``
    (``J2 = E||hess_x g - hess_x g*||_F^2 / 2``, for ``relu_power`` only).  ``train_output`` is accepted for
    a signature shared with the other objects (a loss does not depend on it).  The defaults are the
    paper's model and take the code path above unchanged (the same numbers, bit for bit).

    Example (``H = L + J``; a batch of students gives one value each)::

        >>> import numpy as np, numerics
        >>> rng = np.random.default_rng(0)
        >>> W, W_star = rng.standard_normal((3, 5)), rng.standard_normal((2, 5))
        >>> H = numerics.loss(W, W_star, "H")
        >>> bool(np.isclose(H, numerics.loss(W, W_star, "L") + numerics.loss(W, W_star, "J")))
        True
        >>> numerics.loss(np.stack([W, 2 * W]), W_star, "L").shape
        (2,)
    """
    if _is_erf(activation):
        return _erf_call("loss", W, W_star, part, dict(a=a, a_star=a_star, cov=cov, sobolev=sobolev))
    fam = _family_member(W, W_star, part, a, a_star, activation, cov, sobolev, train_output)
    if fam is not None:
        return _family_loss(W, W_star, part, fam, dict(a=a, a_star=a_star))
    if wants_backend(W, W_star):
        from . import backend  # lazy (~30 ms that `import numerics` need not pay): tensors give tensors

        return backend.loss(W, W_star, part)
    if is_batched(W, W_star):
        from . import batched  # lazy, as backend: ~3 ms that `import numerics` need not pay

        # the instances batched does not compute together come back to this very function
        return batched.loss(W, W_star, part, single=loss)
    plain = fast_loss.single(W, W_star, part)  # the common case; the general path below gives the same bits
    value, k = plain if plain is not None else _general_loss(W, W_star, part)
    try:
        return math.ldexp(value, -2 * k)
    except OverflowError:
        raise ValueError(_too_large(f"the population {part} ({value:.6g} * 2**{-2 * k})")) from None


def _is_erf(activation) -> bool:
    return isinstance(activation, str) and activation == "erf"


def _erf_call(name: str, W, W_star, part: str, keywords: dict):
    """``name`` of the erf network (the smooth control) for any input kind: :func:`numerics.erf_calls.call`."""
    from . import erf_calls  # lazy: the erf tables load on the first erf call, not with `import numerics`

    return erf_calls.call(name, W, W_star, part, keywords)


def _family_of_call(W, W_star, a=None, a_star=None, activation="relu", cov=None, sobolev=_DEFAULT_SOBOLEV,
                    train_output=False, force=False):
    """The checked family keywords (:func:`numerics.family.family`), or ``None`` for the paper's model (the
    common case, recognised without any work unless ``force``)."""
    if (not force and a is None and a_star is None and activation == "relu" and cov is None
            and train_output is False and (sobolev is _DEFAULT_SOBOLEV or tuple(sobolev) == _DEFAULT_SOBOLEV)):
        return None
    from .family import family  # lazy, as the family modules below: only calls beyond the paper's model load them

    fam = family(*_operand_dims(W, W_star), a=a, a_star=a_star, activation=activation, cov=cov, sobolev=sobolev,
                 train_output=train_output)
    return None if fam.is_default and not force else fam


def _family_member(W, W_star, part, *keywords):
    """The checked family keywords of a call (``keywords``: ``a, a_star, activation, cov, sobolev,
    train_output``), or ``None`` for the paper's model, whose code path then runs (``part`` checked to be one of
    its parts; ``"J2"`` always takes the family's path, which refuses it for ReLU with the reason)."""
    if part not in ("L", "J", "H", "J2"):
        check_part(part)  # its message names the parts of the paper's model
    fam = _family_of_call(W, W_star, *keywords)
    if fam is None and part == "J2":
        fam = _family_of_call(W, W_star, force=True)
    return fam


def _operand_dims(W, W_star) -> tuple:
    """``(K, K*, d)`` read from the shapes (the last two axes; a 1-D operand is one row), for the checks
    of the family keywords; the operands themselves are checked where they are evaluated."""
    def rows_dims(x):
        shape = tuple(getattr(x, "shape", ())) or np.shape(np.asarray(x, dtype=object))
        return (1, shape[-1]) if len(shape) == 1 else (shape[-2], shape[-1]) if len(shape) >= 2 else (0, 0)
    (K, d), (Ks, _) = rows_dims(W), rows_dims(W_star)
    return K, Ks, d


def _family_loss(W, W_star, part, fam, weights: dict):
    """A loss of the family beyond the paper's model: NumPy (batched instance by instance) or, for
    tensors, the differentiable backend (``weights``: the caller's own ``a``, ``a_star``, which may be
    tensors that autograd differentiates)."""
    from . import family_population

    if wants_backend(W, W_star):
        from . import backend  # lazy, as in loss

        return backend.family_loss(W, W_star, part, fam, **weights)
    if is_batched(W, W_star):
        from . import batched  # lazy, as in loss

        return batched.over_batch(lambda Wi, Wsi: family_population.loss(Wi, Wsi, part, fam), W, W_star, (),
                                  lambda plan: ())
    return family_population.loss(W, W_star, part, fam)


def _family_gradient(W, W_star, part, field, fam):
    """:func:`numerics.family_population.gradient`; tensors in, tensors of the caller's dtype and device out;
    a batch instance by instance."""
    from . import family_population

    def single(Wi, Wsi):
        out = family_population.gradient(Wi, Wsi, part, field, fam)
        return out if fam.train_output else (out,)

    if is_batched(W, W_star):
        out = _family_batch(single, W, W_star,
                            lambda K, d: ((K, d), (K,)) if fam.train_output else ((K, d),))
    else:
        out = single(W, W_star)
    if wants_backend(W, W_star):
        out = _in_callers_type(W, W_star, out)
    return tuple(out) if fam.train_output else out[0]


def _family_batch(single, W, W_star, shapes, check=None) -> list:
    """``single(W_i, W_star_i)`` (a tuple of arrays) for every instance of a batch, as arrays of shape
    ``batch + shapes(K, d)[m]``: the very single calls, one by one (:func:`numerics.batched.over_batch`; its
    errors name the instance), their results carried as one flat row per instance and split again.
    ``check(plan)`` may refuse the batch before any work."""
    from . import batched  # lazy, as in loss

    def flat_single(Wi, Wsi):
        return np.concatenate([np.ravel(r) for r in single(Wi, Wsi)])

    def flat_shape(plan):
        if check is not None:
            check(plan)
        return (sum(math.prod(shape) for shape in shapes(plan.K, plan.d)),)

    flat = batched.over_batch(flat_single, W, W_star, (), flat_shape)
    K, _, d = _operand_dims(W, W_star)
    out, start = [], 0
    for shape in shapes(K, d):
        size = math.prod(shape)
        out.append(flat[..., start:start + size].reshape(flat.shape[:-1] + tuple(shape)))
        start += size
    return out


def _in_callers_type(W, W_star, arrays) -> list:
    """NumPy results as arrays of the caller's namespace, dtype and device (the tensors among ``W``, ``W_star``)."""
    from . import backend  # lazy, as in loss: only tensor callers get here

    return backend.in_callers_type(W, W_star, arrays)


def _family_hessian(W, W_star, part, field, fam):
    """:func:`numerics.family_hessian.hessian`; tensors in, tensors of the caller's dtype and device out; a
    batch instance by instance."""
    from . import family_hessian

    def single(Wi, Wsi):
        return (family_hessian.hessian(Wi, Wsi, part, field, fam),)

    def size(K, d):
        return K * d + (K if fam.train_output else 0)

    if is_batched(W, W_star):
        out = _family_batch(single, W, W_star, lambda K, d: ((size(K, d), size(K, d)),),
                            check=lambda plan: _check_batch_memory(size(plan.K, plan.d), "H", plan.shape))
    else:
        out = single(W, W_star)
    return _in_callers_type(W, W_star, out)[0] if wants_backend(W, W_star) else out[0]


def _too_large(what: str) -> str:
    return (f"{what} exceeds the float64 range (~1.8e308); it grows like |W|^2 for a loss and "
            "|W| for a gradient: rescale the weights (every object is positively homogeneous)")


def _general_loss(W, W_star, part: str) -> tuple:
    """``(value, k)``: the loss of the instance scaled by ``2**k`` (:func:`numerics.validation.prepare`, which
    names bad input), ``max``-ed with 0, by the general path (any configuration; matched near-teacher pairs)."""
    W, W_star, k = prepare(W, W_star)
    # an expectation of a square: cancelling cross terms (absolute error ~ eps |W|^2) must not
    # make it negative; 0 is within that error of any value the rounding pushed below it
    return max(_loss(W, W_star, part), 0.0), k


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
    for j, p in _match(geo.theta, K, geo.na[:, 0]):
        terms[j, j] = terms[p, p] = terms[j, p] = terms[p, j] = 0.0
        dn = _norm_difference(Z[j], Z[p])
        rest = obj["rest"](norms[j], norms[p], geo.theta[j, p], geo.psi[j, p])
        extra += [dn * dn / 4, float(rest)]
    return math.fsum(terms.ravel().tolist() + extra)


def gradient(W, W_star, part: str, field: str, *, a=None, a_star=None, activation="relu", cov=None,
             sobolev=_DEFAULT_SOBOLEV, train_output=False) -> np.ndarray:
    """Gradient field ``(K, d)`` of ``part`` in the rows of ``W``.

    ``field="mean"``: mean field ``E_x[grad_W l]`` (autograd's per-sample gradient averaged);
    ``field="true"``: gradient of the population loss.  They agree for ``L`` and differ for
    ``J`` and ``H`` by the boundary term of the indicators (docs/theory.md, section 4).

    Batched (:mod:`numerics.batched`): ``(..., K, d)`` for ``W`` of shape ``(..., K, d)``, ``W_star`` of
    shape ``(..., K*, d)``.

    The keywords of the model family as in :func:`loss` (:func:`numerics.family_population.gradient`: where
    the mean field and the true gradient differ there); ``train_output=True`` returns ``(grad_W, grad_a)``.
    One instance per call for the family (no batch dimensions); tensors give tensors (computed by the NumPy
    reference; for a differentiable objective use autograd of :func:`loss`).

    Example (for ``L`` the mean field is the true gradient; for ``J`` it is not: the kink's boundary term)::

        >>> import numpy as np, numerics
        >>> rng = np.random.default_rng(0)
        >>> W, W_star = rng.standard_normal((3, 5)), rng.standard_normal((2, 5))
        >>> numerics.gradient(W, W_star, "J", "mean").shape
        (3, 5)
        >>> bool(np.allclose(numerics.gradient(W, W_star, "L", "mean"), numerics.gradient(W, W_star, "L", "true")))
        True
        >>> bool(np.allclose(numerics.gradient(W, W_star, "J", "mean"), numerics.gradient(W, W_star, "J", "true")))
        False
    """
    check_field(field, GRADIENT_FIELDS, "gradient")
    if _is_erf(activation):  # smooth: the mean field is the true gradient (theory.erf), one object for both fields
        return _erf_call("gradient", W, W_star, part, dict(a=a, a_star=a_star, cov=cov, sobolev=sobolev,
                                                            train_output=train_output))
    fam = _family_member(W, W_star, part, a, a_star, activation, cov, sobolev, train_output)
    if fam is not None:
        return _family_gradient(W, W_star, part, field, fam)
    if wants_backend(W, W_star):
        from . import backend  # lazy (~30 ms that `import numerics` need not pay): tensors give tensors

        return backend.gradient(W, W_star, part, field)
    if is_batched(W, W_star):
        from . import batched  # lazy, as backend: ~3 ms that `import numerics` need not pay

        # the instances batched does not compute together come back to this very function
        return batched.gradient(W, W_star, part, field, single=gradient)
    W, W_star, k, n2w, n2s = prepare_unscaled(W, W_star)
    out = _gradient(W, W_star, part, field, n2w, n2s)
    if k:
        with np.errstate(over="ignore"):
            np.ldexp(out, -k, out=out)
        if not np.isfinite(out).all():
            raise ValueError(_too_large(f"an entry of the {field} gradient of {part}"))
    return out


_BLOCK_ENTRIES = 65536  # pairs per block of rows in _gradient_near_kinks (512 KiB per float64 buffer)
_FAST_BLOCK_ENTRIES = 1 << 18  # pairs per block of rows of the fast assembly (fewer, larger passes: 2 MiB each)


def _gradient(W, W_star, part, field, n2w, n2s) -> np.ndarray:
    """The field of ``part`` for C-contiguous-or-not float64 ``W``, ``W_star`` with squared row norms
    ``n2w``, ``n2s`` in the safe range: the fast assembly of :mod:`numerics.fast_gradient` when the
    instance is separated (every angle at least ``SWITCH`` from 0 and pi, the common case), else
    :func:`_gradient_near_kinks` on the same cosines.  The fast assembly takes the rows by blocks of
    ``_FAST_BLOCK_ENTRIES`` pairs (the block size changes no bit: every pass is elementwise or per row)."""
    c, n = fast_gradient.cosines(W[None], W_star[None], n2w[None], n2s[None])
    K, M = c.shape[1:]
    if not fast_gradient.separated(c)[0]:
        return _gradient_near_kinks(W, W_star, part, field, n2w, n2s, np.clip(c[0, :, :K], -1.0, 1.0),
                                    np.clip(c[0, :, K:], -1.0, 1.0))
    step = max(1, _FAST_BLOCK_ENTRIES // M)
    for r0 in range(0, K, step):
        fast_gradient.coefficients(c, n, part, field, r0, min(K, r0 + step))
    out = np.empty((1,) + W.shape)
    fast_gradient.assemble(c, W[None], W_star[None], out)
    return out[0]


def _gradient_near_kinks(W, W_star, part, field, n2w, n2s, coef_s, coef_t) -> np.ndarray:
    """The field of ``part`` (``H``: of ``L`` and ``J`` together, from one geometry and one product), from
    the clipped cosines ``coef_s`` of ``W`` against ``W`` and ``coef_t`` against ``W_star``
    (:func:`numerics.geometry.normalised_cosines`; fresh arrays this function overwrites).

    Row ``j`` is ``half * w_j + sum_q s_q (alpha_jq w_j/|w_j| + beta_jq z_q/|z_q|)`` over the rows
    ``z_q`` of ``Z = [W; W*]`` other than ``w_j`` (signs ``s_q = +1`` students, ``-1`` teachers).
    That is two matrix products, ``B_s @ W + B_t @ W*``, with ``B_s[j, l] = beta_jl / |w_l|``
    off the diagonal, ``B_s[j, j] = half + sum_q s_q alpha_jq / |w_j|`` and
    ``B_t[j, t] = -beta_jt / |w*_t|``.  A student matched to a teacher row ``w*_t``
    (:func:`numerics.matching.match_candidates`) gets ``half * (w_j - w*_t)`` with the difference formed
    first plus the cancellation-free rewrite ``rho`` of the pair's own term: near the teacher that difference
    is the small leading term, and forming it from ``half * w_j - half * w*_t`` would cancel.

    Cost: the Gram products ``W W^T``, ``W W*^T`` and the two products above (the four the
    formula cannot avoid), plus elementwise work on blocks of rows, written over the cosines in
    place.  ``W`` and ``W_star`` are only read (they may be the caller's arrays); ``n2w``,
    ``n2s``: their squared row norms.
    """
    parts = ("L", "J") if part == "H" else (part,)
    K, Ks = len(W), len(W_star)
    objs = [_vector_object(p, field) for p in parts]
    na = np.sqrt(n2w)[:, None]
    ns = np.sqrt(n2s)[:, None]
    # (block by block, in place) the coefficients B_s and B_t over the cosines
    inv_s = 1.0 / na[:, 0]
    inv_t = -1.0 / ns[:, 0]
    alpha_sum = np.zeros(K)
    half = sum(obj["half"] for obj in objs)
    candidates = []  # (theta, j, t, psi): student j within SWITCH of teacher t
    boundary = []  # (j, q, sign, theta, psi): pairs near a kink whose boundary term is added along e2
    job = _GradientJob(W, W_star, part, objs, na, ns, coef_s, coef_t, inv_s, inv_t, alpha_sum)
    step = max(1, _BLOCK_ENTRIES // (K + Ks))
    for r0 in range(0, K, step):
        found, near_kinks = job.block(r0, min(K, r0 + step))
        candidates += found
        boundary += near_kinks
    matched = match_candidates(candidates, lambda j, t: abs(na[j, 0] - ns[t, 0]) / ns[t, 0])
    matched_set = set(matched)
    unmatched = np.ones(K)
    smooth = [obj["twin"] or obj for obj in objs]  # near a teacher: the mean-field twin, boundary added below
    for theta_jt, j, t, psi_jt in candidates:
        x = (na[j, 0], ns[t, 0], theta_jt, psi_jt)
        if (j, t) in matched_set:
            unmatched[j] = 0.0
            alpha_sum[j] += sum(float(obj["rho_alpha"](*x)) for obj in smooth)
            coef_t[j, t] = sum(float(obj["rho_beta"](*x)) for obj in smooth) / ns[t, 0]
        else:  # a near pair left to the closed form (its student or teacher is matched elsewhere)
            alpha_sum[j] -= sum(float(obj["alpha"](*x)) for obj in smooth)
            coef_t[j, t] = -sum(float(obj["beta"](*x)) for obj in smooth) / ns[t, 0]
        if job.with_boundary:
            boundary.append((j, t, -1.0, theta_jt, psi_jt))
    idx = np.arange(K)
    coef_s[idx, idx] = alpha_sum * inv_s + half * unmatched
    # (SciPy's dgemm could accumulate in place, but it runs on SciPy's own BLAS thread pool, which
    # contends with NumPy's: ten times slower here than the temporary it saves)
    out = coef_s @ W
    out += coef_t @ W_star
    for j, t in matched:
        out[j] += half * (W[j] - W_star[t])
    if boundary:
        _add_boundary_terms(out, W, W_star, [obj["boundary"] for obj in objs if obj["twin"] is not None], boundary)
    return out


@dataclass(frozen=True)
class _GradientJob:
    """The operands of one :func:`_gradient` call that its blocks of rows read (and, row by row, write)."""

    W: np.ndarray
    W_star: np.ndarray
    part: str
    objs: list
    na: np.ndarray
    ns: np.ndarray
    coef_s: np.ndarray
    coef_t: np.ndarray
    inv_s: np.ndarray
    inv_t: np.ndarray
    alpha_sum: np.ndarray

    @property
    def parts(self) -> tuple:
        return ("L", "J") if self.part == "H" else (self.part,)

    @property
    def with_boundary(self) -> bool:
        """Whether a part's true field has boundary terms (a mean-field twin near the kinks)."""
        return any(obj["twin"] is not None for obj in self.objs)

    def block(self, r0: int, r1: int) -> tuple:
        """Rows ``r0:r1`` of :func:`_gradient`: their geometry, then (in place) their coefficients in
        ``coef_s``, ``coef_t`` and their ``alpha_sum``; returns ``(candidates, boundary)`` of the rows.

        It writes only rows ``r0:r1`` of the shared arrays."""
        W, W_star, na, ns = self.W, self.W_star, self.na, self.ns
        rows = np.arange(r1 - r0)
        self_pairs = (rows, rows + r0)
        g_s = geometry_from_cosines(self.coef_s[r0:r1], W[r0:r1], W, na[r0:r1], na.T, self_offset=r0)
        g_t = geometry_from_cosines(self.coef_t[r0:r1], W[r0:r1], W_star, na[r0:r1], ns.T)
        self._raise_if_missing(g_s, g_t, self_pairs, r0)
        near = g_t.theta < SWITCH
        near_idx = np.nonzero(near) if near.any() else _NO_PAIRS
        candidates = [(float(g_t.theta[i, t]), int(i) + r0, int(t), float(g_t.psi[i, t])) for i, t in zip(*near_idx)]
        # the self pairs and the candidates to a harmless right angle (the geometry is this block's
        # own): their entries are zeroed below and the candidates' set after the matching
        for g, sub in ((g_s, self_pairs), (g_t, near_idx)):
            g.theta[sub] = g.psi[sub] = np.pi / 2
            g.sin[sub], g.cos[sub] = 1.0, 0.0
        # away from the kinks everywhere (the common case): one closed form per coefficient
        fast = all(g.theta.min() >= SWITCH and g.psi.min() >= SWITCH for g in (g_s, g_t))
        boundary, kinks = [], {}
        for g, sign, dropped in ((g_s, 1.0, self_pairs), (g_t, -1.0, near_idx)):
            kinks[sign] = None if fast or not self.with_boundary else _near_kink(g, dropped)
            if kinks[sign] is not None:
                boundary += [(int(i) + r0, int(q), sign, float(g.theta[i, q]), float(g.psi[i, q]))
                             for i, q in zip(*kinks[sign])]
        b_s, b_t = self._coefficients(g_s, g_t, self_pairs, near_idx, fast, kinks, r0, r1)
        # the cosines of this block are no longer needed: the coefficients take their place
        np.multiply(b_s, self.inv_s, out=self.coef_s[r0:r1])
        np.multiply(b_t, self.inv_t, out=self.coef_t[r0:r1])
        self.coef_s[r0:r1][self_pairs] = 0.0
        self.coef_t[r0:r1][near_idx] = 0.0
        return candidates, boundary

    def _raise_if_missing(self, g_s, g_t, self_pairs, r0: int) -> None:
        """``ValueError`` where an object that does not exist at (anti-)parallel pairs meets one."""
        for p, obj in zip(self.parts, self.objs):
            if not (obj["exists_parallel"] and obj["exists_antiparallel"]):
                what = f"true gradient of {'H (its J part)' if self.part == 'H' else p}"
                off = np.ones(g_s.theta.shape, dtype=bool)
                off[self_pairs] = False
                _raise_if_missing(obj, g_s, off, what, lambda q: f"W[{q}]", row_offset=r0)
                _raise_if_missing(obj, g_t, np.ones(g_t.theta.shape, dtype=bool), what, lambda q: f"W_star[{q}]",
                                  row_offset=r0)

    def _coefficients(self, g_s, g_t, self_pairs, near_idx, fast, kinks, r0, r1) -> tuple:
        """``(beta_s, beta_t)`` of the block summed over the parts; ``alpha_sum[r0:r1]`` updated."""
        b_s = b_t = None
        for obj in self.objs:
            for g, sign, dropped in ((g_s, 1.0, self_pairs), (g_t, -1.0, near_idx)):
                kink = kinks[sign] if obj["twin"] is not None else None
                if not obj["alpha"].is_zero:
                    a = _coefficient(obj["alpha"], g, fast, kink, obj["twin"] and obj["twin"]["alpha"])
                    a[dropped] = 0.0
                    self.alpha_sum[r0:r1] += sign * a.sum(axis=1)
                b = _coefficient(obj["beta"], g, fast, kink, obj["twin"] and obj["twin"]["beta"])
                if g is g_s:
                    b_s = b if b_s is None else np.add(b_s, b, out=b_s)
                else:
                    b_t = b if b_t is None else np.add(b_t, b, out=b_t)
        return b_s, b_t


_NO_PAIRS = (np.empty(0, dtype=np.intp), np.empty(0, dtype=np.intp))


# ----------------------------------------------------------------------------- batched gradient
def _near_kink(g, dropped) -> tuple | None:
    """Index arrays of the pairs of the block geometry ``g`` within ``SWITCH`` of 0 or pi (other than
    the ``dropped`` ones, which are handled elsewhere); ``None`` when there are none."""
    near = (g.theta < SWITCH) | (g.psi < SWITCH)
    near[dropped] = False
    return np.nonzero(near) if near.any() else None


def _add_boundary_terms(out, W, W_star, fns, pairs_) -> None:
    """``out[j] += sign * c(theta) e2(w_j, z_q)`` for each pair ``(j, q, sign, theta, psi)`` near a kink
    (``z_q = W[q]`` for sign +1, ``W_star[q]`` for -1): the boundary term of the true field,
    ``c = |z_q| cos(theta) / (2 pi)`` (derived), with ``e2`` the stable unit vector of ``z_q``
    orthogonal to ``w_j`` (:func:`numerics.geometry.paired_plane_directions`)."""
    rows = [p[0] for p in pairs_]
    A = W[rows]
    B = np.stack([W[q] if sign > 0 else W_star[q] for _, q, sign, _, _ in pairs_])
    signs, th, ps = (np.array([p[i] for p in pairs_]) for i in (2, 3, 4))
    na, nb = np.linalg.norm(A, axis=1), np.linalg.norm(B, axis=1)
    c = sum(fn(na, nb, th, ps) for fn in fns)
    e2 = paired_plane_directions(A, B, th, ps)
    np.add.at(out, rows, (signs * c)[:, None] * e2)


def _coefficient(fn, g, fast: bool, kink=None, twin=None) -> np.ndarray:
    """``fn`` on every pair of the geometry ``g`` (``fast``: no angle within ``SWITCH`` of a kink);
    at the ``kink`` pairs, if given, the ``twin`` function instead."""
    if fast:
        return fn.away_from_kinks(g.na, g.nb, g.theta, g.sin, g.cos, g.theta.shape)
    if kink is None:
        return fn(g.na, g.nb, g.theta, g.psi, g.sin, g.cos)
    # The series of a true-field coefficient about a kink holds |b|/angle: it overflows (and NumPy says so)
    # at pairs within ~|b|/1e308 rad of (anti-)parallel (angles down to 5e-324 are allowed).  Harmless:
    # every pair within SWITCH of 0 or pi is a kink pair (the dropped ones were set to a right angle),
    # overwritten by the twin just below; the others take the closed form at angles >= SWITCH with norms
    # within 2**450, which cannot overflow.
    with np.errstate(over="ignore"):
        out = fn(g.na, g.nb, g.theta, g.psi, g.sin, g.cos)
    na, nb = np.broadcast_arrays(g.na, g.nb)
    out[kink] = twin(na[kink], nb[kink], g.theta[kink], g.psi[kink])
    return out


def hessian(W, W_star, part: str, field: str, *, a=None, a_star=None, activation="relu", cov=None,
            sobolev=_DEFAULT_SOBOLEV, train_output=False) -> np.ndarray:
    """Hessian-type matrix ``(K*d, K*d)`` of ``part``, index ``i*d + k`` (row ``i``, coordinate ``k``).

    ``field="true"``: Hessian of the population loss (symmetric);
    ``"mean"``: Jacobian of the mean field (entry ``[i*d+k, j*d+l] = d G_ik / d W_jl``; not
    symmetric for ``J``, ``H``); ``"autograd"``: ``E_x`` of the per-sample autograd Hessian.

    Batched (:mod:`numerics.batched`): ``(..., K*d, K*d)`` for ``W`` of shape ``(..., K, d)``, ``W_star`` of
    shape ``(..., K*, d)``; the memory check counts the whole batch and refuses it before any work.

    The keywords of the model family as in :func:`loss` (:mod:`numerics.family_hessian`): all three fields,
    over ``concatenate([W.ravel(), a])`` when ``train_output=True``.  One instance per call; tensors give
    tensors.

    Example (the true Hessian is symmetric; the Jacobian of the mean field of ``J`` is not)::

        >>> import numpy as np, numerics
        >>> rng = np.random.default_rng(0)
        >>> W, W_star = rng.standard_normal((3, 5)), rng.standard_normal((2, 5))
        >>> true, mean = numerics.hessian(W, W_star, "H", "true"), numerics.hessian(W, W_star, "J", "mean")
        >>> true.shape, bool(np.allclose(true, true.T)), bool(np.allclose(mean, mean.T))
        ((15, 15), True, False)
    """
    check_field(field, HESSIAN_FIELDS, "Hessian")
    if _is_erf(activation):  # smooth: the three fields are one matrix (theory.erf.hessians_coincide)
        return _erf_call("hessian", W, W_star, part, dict(a=a, a_star=a_star, cov=cov, sobolev=sobolev,
                                                          train_output=train_output))
    fam = _family_member(W, W_star, part, a, a_star, activation, cov, sobolev, train_output)
    if fam is not None:
        return _family_hessian(W, W_star, part, field, fam)
    if wants_backend(W, W_star):
        from . import backend  # lazy (~30 ms that `import numerics` need not pay): tensors give tensors

        return backend.hessian(W, W_star, part, field)
    if is_batched(W, W_star):
        from . import batched  # lazy, as backend: ~3 ms that `import numerics` need not pay

        # the instances batched does not compute together come back to this very function; the batch is
        # checked by this module's memory check (which reads this module's available_memory)
        return batched.hessian(W, W_star, part, field, single=hessian, check_memory=_check_batch_memory)
    W, W_star, _ = prepare(W, W_star)
    _check_memory(W.shape[0] * W.shape[1], part)
    with np.errstate(over="ignore", invalid="ignore"):  # a result beyond float64 is refused just below
        out = _hessian(W, W_star, part, field)
    if not np.isfinite(out).all():  # degree 0: only a kink's 1/angle terms at an extreme size ratio get here
        raise ValueError(f"an entry of the {field} Hessian of {part} is beyond the float64 range (~1.8e308) here: "
                         "a pair of rows is so close to (anti-)parallel, at such a ratio of norms, that a "
                         "curvature term ~ |w*| / (|w| angle) overflows")
    return out


# peak float64 arrays of (K d)^2 entries while a Hessian is assembled: the result (H: J is added into the
# matrix of L; the block temporaries are K d^2 each) and the final finiteness check's boolean array (1/8);
# rounded up to 2 for the smaller arrays (angles, coefficients) beside them
_PEAK_MATRICES = {"L": 2, "J": 2, "H": 2}


def _check_memory(n: int, part: str) -> None:
    """``ValueError`` up front when the ``(n, n)`` Hessian cannot be assembled in the available memory
    (instead of a ``MemoryError`` deep inside after minutes of work)."""
    need = 8 * n * n * _PEAK_MATRICES[part]
    have = available_memory()
    if have is not None and need > have:
        raise ValueError(
            f"the Hessian is a ({n}, {n}) matrix ({8 * n * n / 2**30:.3g} GiB in float64); assembling it needs "
            f"about {need / 2**30:.3g} GiB, and {have / 2**30:.3g} GiB is available. Evaluate a smaller "
            "configuration, or work with gradients (numerics.gradient is O(K d) memory)"
        )


def _check_batch_memory(n: int, part: str, batch: tuple) -> None:
    """:func:`_check_memory` for ``B = prod(batch)`` Hessians of shape ``(n, n)``: the ``(B, n, n)``
    result, held whole, plus the peak of assembling one more instance."""
    count = math.prod(batch)
    need = 8 * n * n * (count + _PEAK_MATRICES[part])
    have = available_memory()
    if have is not None and need > have:
        raise ValueError(
            f"the batch of Hessians is {count} ({n}, {n}) matrices (batch shape {tuple(batch)}; "
            f"{8 * n * n * count / 2**30:.3g} GiB in float64); assembling them needs about {need / 2**30:.3g} GiB, "
            f"and {have / 2**30:.3g} GiB is available. Evaluate a smaller batch or configuration, or work with "
            "gradients (numerics.gradient is O(K d) memory per instance)"
        )


def available_memory() -> int | None:
    """Bytes of memory available to this process now (Linux ``MemAvailable``; else physical
    memory; ``None`` where neither can be read)."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def _coefficient_functions(obj: dict, d: int) -> list:
    """The compiled coefficients of a pair matrix: ``(B11, B12, B21, B22, s)``, or in d = 2 the
    four in-plane ones ``(B11 + s, B12, B21, B22 + s)``."""
    return obj["coef_plane"] if d == 2 else obj["coef"]


def _hessian(W, W_star, part, field) -> np.ndarray:
    """The ``(K d, K d)`` matrix of ``part``, ``field`` of a scaled instance (:func:`numerics.validation.prepare`):
    on a separated instance by :mod:`numerics.fast_hessian` (a stack of one), else by the general assembly."""
    c, n = fast_gradient.cosines(W[None], W_star[None], np.einsum("ij,ij->i", W, W)[None],
                                 np.einsum("ij,ij->i", W_star, W_star)[None])
    if not fast_gradient.separated(c)[0]:
        return _hessian_general(W, W_star, part, field)
    K, d = W.shape
    out = np.empty((K * d, K * d))
    fast_hessian.assemble(W[None], W_star[None], c, n, part, field, out[None])
    return out


def _hessian_general(W, W_star, part, field, asked=None, out=None) -> np.ndarray:
    """The general assembly: any configuration (series branches near 0 and pi, kinks refused where the object
    does not exist); added into ``out`` when given (``H`` assembles ``J`` into the matrix of ``L``, one matrix of
    ``(K d)^2`` entries instead of three)."""
    if part == "H":
        return _hessian_general(W, W_star, "J", field, asked="H (its J part)",
                                out=_hessian_general(W, W_star, "L", field))
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
    out = np.zeros((K, d, K, d)) if out is None else out.reshape(K, d, K, d)
    # off-diagonal blocks (j, l), both students: the pair term's Jacobian in its second row
    if K > 1:
        _raise_if_missing(obj["off"], geo, off & students, what, names)
        coef = [_evaluate(f, geo, off & students)[:, :K] for f in _coefficient_functions(obj["off"], d)]
        fast_hessian.add_blocks(out[None], [b[None] for b in coef], e1[None], e2[None, :, :K])  # a stack of one
    # diagonal blocks: the self term plus, for true/mean, the sum over every other row
    diag = np.zeros((K, d, d)) + obj["self_s"] * np.eye(d)
    if obj["diag"] is not None:
        _raise_if_missing(obj["diag"], geo, off, what, names)
        coef = [_evaluate(f, geo, off) * s for f in _coefficient_functions(obj["diag"], d)]
        fast_hessian.add_diagonal_sums(diag[None], [b[None] for b in coef], e1[None], e2[None])  # a stack of one
        if d > 2:
            diag += coef[4].sum(1)[:, None, None] * np.eye(d)
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
