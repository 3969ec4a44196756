"""Tools for landscape studies of the population losses: many descents at once, and what their end points are.

* :func:`descend`: population gradient descent for a batch of starts at once (:func:`numerics.gradient` with batch
  dimensions), each start stopped when its field is below a tolerance, on one of the three fields of
  :data:`numerics.flows.FLOWS`: the **mean field** of ``L`` or of ``H`` (what autograd training follows), or the
  **true gradient** of ``H`` as a sliding field on the teacher rays (:mod:`numerics.sliding`);
* :func:`classify`: an end point as ``"global"`` (within ``global_tol |W*|`` of the teacher modulo a permutation of
  the rows (``K = K*``), or value loss ``L`` at most ``value_tol`` times ``L`` of the teacher alone: every global
  minimum has value 0, including those of ``K > K*`` that split a teacher row between students, and the value
  certifies the end point as long as ``value_tol`` lies far below the value of every other critical point found
  (reports check that gap); ``L``, not ``H``, because ``J`` grows linearly in the angle next to the teacher),
  ``"spurious minimum"`` (field below ``grad_tol``, not global, and
  no eigenvalue of :func:`stability_spectrum` with real part below ``-eig_tol``: for ``L`` the symmetric Hessian,
  for the mean field of ``H`` its Jacobian, for the sliding field its Jacobian on the manifold with every lock
  held by a margin of at least ``eig_tol``), ``"saddle"`` (field below ``grad_tol``, unstable) or
  ``"not converged"``;
* :func:`wilson_interval`: the Wilson score interval of a proportion (SciPy's ``binomtest``);
* :func:`distinct`: end points deduplicated modulo a permutation of the rows (SciPy's assignment solver).
"""
from __future__ import annotations

import math

import numpy as np
from array_api_compat import array_namespace, device
from scipy.optimize import linear_sum_assignment
from scipy.stats import binomtest

import numerics

from . import fused_fields, sliding
from .descent_field import mean_field
from .flows import FLOWS, units
from .validation import is_backend_array

KINDS = ("global", "spurious minimum", "saddle", "not converged")


def flow_name(flow: str) -> str:
    """The flow of ``numerics.flows.FLOWS`` that ``flow`` names (``"H"`` is ``"H-mean"``)."""
    name = {"H": "H-mean"}.get(flow, flow)
    if name not in FLOWS:
        raise ValueError(f"flow must be one of {FLOWS} (or 'H' for 'H-mean'); got {flow!r}")
    return name


VALUE_CHECK_EVERY = 50  # steps between checks of the value loss (value_tol)


def descend(W0, W_star, flow: str, *, lr: float, max_steps: int, grad_tol: float, value_tol: float = 0.0) -> dict:
    """Gradient descent ``W <- W - lr_i F(W)`` for a batch ``W0 (B, K, d)`` against one teacher ``W_star (K*, d)``.

    ``F`` is the mean field of ``L`` (``"L"``) or of ``H`` (``"H-mean"``, also ``"H"``), or the sliding field of the
    true gradient of ``H`` (``"H-true"``: rows lock on teacher rays and are released, :mod:`numerics.sliding`).  NumPy
    arrays run on the fused fields of :mod:`numerics.fused_fields` (one product with ``Z = [W; W*]`` per step);
    tensors on :func:`numerics.descent_field.mean_field`.  A start stops once ``|F| <= grad_tol`` (Frobenius), or,
    with ``value_tol > 0``, once its value loss ``L`` is at most ``value_tol`` times that of the teacher alone
    (checked every ``VALUE_CHECK_EVERY`` steps): the end point is then global by :func:`classify`'s rule, and the
    last stretch of a linear (``K = K*``) or degenerate, sublinear (``K > K*``, a teacher row split between
    students) approach is not walked.

    Each start has its own step ``lr_i``, ``lr`` at first and halved whenever its field grew and reversed
    (:func:`_unstable`): the signature of a step above ``2 / lambda`` for the local curvature ``lambda``, where fixed-step
    descent would orbit a minimum instead of reaching it (the true gradient of ``H`` has curvature ``~ 1/angle`` next
    to a teacher ray, so no fixed step is stable everywhere).

    Returns ``{"W", "steps", "field_norm", "locks" (teacher index per row under "H-true", else -1), "lr" (final step
    per start), "unlocks"}``.  Deterministic, and each start's path depends on that start alone: batched calls equal
    single calls bit for bit.  A PyTorch ``W0`` runs the whole descent in float64 on its device (the fields through
    :mod:`numerics.backend`) and returns tensors there; anything else runs in NumPy."""
    flow = flow_name(flow)
    W, W_star = _operands(W0, W_star)
    if W.ndim != 3:
        raise ValueError(f"W0 must have shape (B, K, d); got {tuple(W.shape)}")
    if not (lr > 0 and max_steps >= 0 and grad_tol > 0):
        raise ValueError("lr and grad_tol must be positive and max_steps non-negative")
    if isinstance(W, np.ndarray):
        return _descend_fused(W, W_star, flow, lr=lr, max_steps=max_steps, grad_tol=grad_tol, value_tol=value_tol)
    xp, dev = array_namespace(W), device(W)
    B, K, _ = W.shape
    steps, unlocks = xp.zeros(B, dtype=xp.int64, device=dev), xp.zeros(B, dtype=xp.int64, device=dev)
    norm, prev_norm = (xp.full(B, math.inf, dtype=W.dtype, device=dev) for _ in range(2))
    rates = xp.full(B, float(lr), dtype=W.dtype, device=dev)
    locks, prev_F = xp.full((B, K), sliding.UNLOCKED, dtype=xp.int64, device=dev), xp.zeros_like(W)
    active = xp.arange(B, device=dev)
    for step in range(max_steps + 1):
        F, slack = _field(flow, W[active], W_star, locks[active])
        n = xp.linalg.vector_norm(xp.reshape(F, (F.shape[0], -1)), axis=1)
        norm[active] = n
        moving = n > grad_tol
        if value_tol > 0 and step % VALUE_CHECK_EVERY == 0:
            moving &= relative_value_loss(W[active], W_star) > value_tol
        active, F, slack, n = active[moving], F[moving], slack[moving], n[moving]
        if step == max_steps or not active.shape[0]:
            break
        rates[active[_unstable(F, n, prev_F[active], prev_norm[active])]] /= 2
        prev_F[active], prev_norm[active] = F, n
        W_new = W[active] - rates[active][:, None, None] * F
        if flow == "H-true":
            lk = locks[active]
            release = slack > 0  # the other terms push harder than the kink holds: the row leaves its ray
            unlocks[active] += xp.sum(xp.astype(release, xp.int64), axis=1)
            lk[release] = sliding.UNLOCKED
            W[active], locks[active] = sliding.lock_crossings(W[active], W_new, W_star, lk, rates[active])
        else:
            W[active] = W_new
        steps[active] += 1
    return {"W": W, "steps": steps, "field_norm": norm, "locks": locks, "lr": rates, "unlocks": unlocks}


def _descend_fused(W, W_star, flow: str, *, lr: float, max_steps: int, grad_tol: float, value_tol: float) -> dict:
    """:func:`descend` in NumPy on the fused fields of :mod:`numerics.fused_fields`: the same rules step for step,
    the running starts kept as one contiguous batch that is compacted only when some of them stop."""
    B, K, _ = W.shape
    out = {"W": W, "steps": np.zeros(B, np.int64), "field_norm": np.full(B, math.inf),
           "locks": np.full((B, K), sliding.UNLOCKED, np.int64), "lr": np.full(B, float(lr)),
           "unlocks": np.zeros(B, np.int64)}
    run = _Batch(np.arange(B), W.copy(), out["locks"].copy(), out["lr"].copy())
    check_value = value_tol > 0
    teacher = fused_fields.teacher_value(W_star)
    U = units(W_star)  # the teacher directions, for the lock bookkeeping of H-true
    for step in range(max_steps + 1):
        F, slack = _fused_field(flow, run.W, W_star, run.locks, U)
        n = np.sqrt(np.einsum("bkd,bkd->b", F, F))
        moving = n > grad_tol
        if check_value and step % VALUE_CHECK_EVERY == 0:
            moving &= fused_fields.value(run.W, W_star) > value_tol * teacher
        if not moving.all():
            run.finish(out, n, ~moving)
            run, F, slack, n = run.keep(moving), F[moving], slack[moving], n[moving]
        if step == max_steps or not run.index.size:
            run.finish(out, n, np.ones(run.index.size, bool))
            break
        run.lr[_unstable(F, n, run.prev_F, run.prev_n)] /= 2
        run.prev_F, run.prev_n = F, n
        W_new = run.W - run.lr[:, None, None] * F
        if flow == "H-true":
            release = slack > 0  # the other terms push harder than the kink holds: the row leaves its ray
            run.unlocks += release.sum(axis=1)
            run.locks[release] = sliding.UNLOCKED
            run.W, run.locks = sliding.lock_crossings(run.W, W_new, W_star, run.locks, run.lr, U)
        else:
            run.W = W_new
        run.steps += 1
    return out


class _Batch:
    """The running starts of :func:`_descend_fused`: their indices into the batch and their state."""

    def __init__(self, index, W, locks, lr):
        self.index, self.W, self.locks, self.lr = index, W, locks, lr
        self.steps, self.unlocks = np.zeros(index.size, np.int64), np.zeros(index.size, np.int64)
        self.prev_F, self.prev_n = np.zeros_like(W), np.full(index.size, math.inf)

    def finish(self, out: dict, norms, done) -> None:
        """Write the state of the starts ``done`` (a mask) into the results."""
        j = self.index[done]
        for key, value in (("W", self.W), ("locks", self.locks), ("lr", self.lr), ("steps", self.steps),
                           ("unlocks", self.unlocks)):
            out[key][j] = value[done]
        out["field_norm"][j] = norms[done]

    def keep(self, mask) -> "_Batch":
        new = _Batch(self.index[mask], self.W[mask], self.locks[mask], self.lr[mask])
        new.steps, new.unlocks = self.steps[mask], self.unlocks[mask]
        new.prev_F, new.prev_n = self.prev_F[mask], self.prev_n[mask]
        return new


def _fused_field(flow: str, W, W_star, locks, U=None) -> tuple:
    """``(F, slack)`` of a NumPy batch on the fused fields (:func:`_field`'s contract); ``U``: the teacher's unit rows."""
    if flow != "H-true":
        return fused_fields.field(W, W_star, flow), np.full(locks.shape, -math.inf)
    return sliding.slide(fused_fields.field(W, W_star, "H-true", locks), W_star, locks, U)


def _operands(W0, W_star) -> tuple:
    """``(W, W_star)`` as float64: NumPy arrays, or, when ``W0`` is a PyTorch tensor, tensors on its device (a copy of
    ``W0`` either way)."""
    if is_backend_array(W0):
        import torch

        if not isinstance(W0, torch.Tensor):
            raise ValueError(f"descend takes NumPy arrays or PyTorch tensors; got {type(W0).__name__}")
        return (W0.detach().to(torch.float64).clone(),
                torch.as_tensor(W_star, dtype=torch.float64, device=W0.device))
    return np.array(W0, dtype=np.float64), np.asarray(W_star, dtype=np.float64)


def _field(flow: str, W, W_star, locks) -> tuple:
    """``(F, slack)`` of a batch: the field of ``flow`` and the lock margins (``-inf`` where nothing is locked)."""
    if flow == "H-true":
        return sliding.field(W, W_star, locks)
    xp = array_namespace(W)
    return mean_field(W, W_star, flow[0]), xp.full(tuple(locks.shape), -math.inf, dtype=W.dtype, device=device(W))


def _unstable(F, n, prev_F, prev_n):
    """Starts whose field grew and turned by more than 120 degrees in one step."""
    turn = array_namespace(F).einsum("bkd,bkd->b", F, prev_F)
    return (n > prev_n) & (turn < -0.5 * n * prev_n)


def classify(W, W_star, flow: str, *, grad_tol: float, global_tol: float, eig_tol: float, value_tol: float,
             locks=None) -> dict:
    """``{"kind", "distance", "relative_value_loss", "field_norm", "min_real_eigenvalue", "lock_margin"}`` of one
    end point of ``flow`` (``KINDS``; the rules in the module docstring).  ``locks``: the rows' locks under
    ``"H-true"`` (default: none)."""
    flow = flow_name(flow)
    W, W_star = np.asarray(W, dtype=np.float64), np.asarray(W_star, dtype=np.float64)
    locks = np.full(len(W), sliding.UNLOCKED) if locks is None else np.asarray(locks)
    value = float(relative_value_loss(W, W_star))
    distance = permutation_distance(W, W_star) / np.linalg.norm(W_star) if W.shape == W_star.shape else None
    if flow == "H-true":
        F, slack = sliding.field(W[None], W_star, locks[None])
        F, slack = F[0], slack[0]
    else:
        F, slack = numerics.gradient(W, W_star, flow[0], "mean"), np.full(len(W), -np.inf)
    field_norm = float(np.linalg.norm(F))
    margin = float(-slack.max()) if (locks >= 0).any() else None
    out = {"distance": distance, "relative_value_loss": value, "field_norm": field_norm, "min_real_eigenvalue": None,
           "lock_margin": margin}
    tols = dict(grad_tol=grad_tol, global_tol=global_tol, eig_tol=eig_tol, value_tol=value_tol)
    if decide(out, **tols) == "unstable?":  # converged and not global: the spectrum decides
        out["min_real_eigenvalue"] = float(stability_spectrum(W, W_star, flow, locks).min())
    return {**out, "kind": decide(out, **tols)}


def decide(numbers: dict, *, grad_tol: float, global_tol: float, eig_tol: float, value_tol: float) -> str:
    """The kind of an end point from its numbers (``distance``, ``relative_value_loss``, ``field_norm``,
    ``min_real_eigenvalue``, ``lock_margin``: the keys of :func:`classify`), by the rules of the module docstring;
    ``"unstable?"`` when the point is a converged non-global one whose ``min_real_eigenvalue`` is still ``None``."""
    distance = numbers["distance"]
    if (distance is not None and distance <= global_tol) or numbers["relative_value_loss"] <= value_tol:
        return "global"
    if numbers["field_norm"] > grad_tol:
        return "not converged"
    if numbers["min_real_eigenvalue"] is None:
        return "unstable?"
    margin = numbers["lock_margin"]
    unstable = numbers["min_real_eigenvalue"] < -eig_tol or (margin is not None and margin < eig_tol)
    return "saddle" if unstable else "spurious minimum"


def stability_spectrum(W, W_star, flow: str, locks=None) -> np.ndarray:
    """Real parts of the eigenvalues that decide the stability of a critical point of ``flow``: the symmetric
    Hessian of ``L``; the mean-field Jacobian of ``H``; for ``"H-true"`` the Jacobian of the sliding field on its
    manifold (:func:`numerics.sliding.reduced_jacobian`; the locks themselves hold by ``lock_margin``)."""
    flow = flow_name(flow)
    if flow == "H-true":
        locks = np.full(len(W), sliding.UNLOCKED) if locks is None else np.asarray(locks)
        return np.sort(np.linalg.eigvals(sliding.reduced_jacobian(W, W_star, locks)).real)
    M = numerics.hessian(W, W_star, flow[0], "mean")
    return np.linalg.eigvalsh((M + M.T) / 2) if flow == "L" else np.sort(np.linalg.eigvals(M).real)


def relative_value_loss(W, W_star) -> np.ndarray:
    """``L(W) / L(teacher alone)`` (batched over the leading dimensions of ``W``)."""
    W_star = W_star if is_backend_array(W_star) else np.asarray(W_star, dtype=np.float64)
    return numerics.loss(W, W_star, "L") / numerics.loss(_tiny_row(W_star), W_star, "L")


def _tiny_row(W_star):
    """A row ``1e-150`` times the first teacher row (float64, in ``W_star``'s namespace and device): ``loss(tiny, W*)`` is the loss of the teacher alone to
    rounding (a zero row has no angle, so the exact ``W = 0`` is not a valid argument)."""
    return 1e-150 * W_star[:1]


def wilson_interval(k: int, n: int, level: float = 0.95) -> tuple:
    """The Wilson score interval of ``k`` successes in ``n`` trials (``(nan, nan)``-free: ``n >= 1``)."""
    if n < 1 or not 0 <= k <= n:
        raise ValueError(f"need 0 <= k <= n and n >= 1; got k = {k}, n = {n}")
    ci = binomtest(k, n).proportion_ci(confidence_level=level, method="wilson")
    return float(ci.low), float(ci.high)


def permutation_distance(A, B) -> float:
    """``min_P |A - P B|_F`` over permutations ``P`` of the rows (``A``, ``B`` of the same shape)."""
    A, B = np.asarray(A, dtype=np.float64), np.asarray(B, dtype=np.float64)
    cost = ((A[:, None, :] - B[None, :, :]) ** 2).sum(-1)
    rows, cols = linear_sum_assignment(cost)
    return float(np.sqrt(cost[rows, cols].sum()))


def distinct(points, tol: float) -> list:
    """``[(representative, count)]``: the points grouped modulo a permutation of their rows, each joining the first
    representative within ``tol`` (relative to the representative's norm)."""
    groups = []
    for P in points:
        for g in groups:
            if permutation_distance(P, g[0]) <= tol * np.linalg.norm(g[0]):
                g[1] += 1
                break
        else:
            groups.append([np.asarray(P, dtype=np.float64), 1])
    return [(g[0], g[1]) for g in groups]


def distinct_up_to_symmetry(points, tol: float) -> list:
    """``[(representative, count, first index)]``: the points grouped by their sorted entries (agreeing to ``tol``
    times the largest entry).  Sorted entries are invariant under the symmetries of the orthonormal teacher ``I_k``:
    permutations of the rows of ``W``, and permutations of the coordinates (which permute the teacher's rows); so
    copies of one minimum under them fall in one group (points with equal sorted entries that are not such copies
    would too: the report also lists each group's loss and spectrum)."""
    groups = []
    for i, P in enumerate(points):
        key = np.sort(np.asarray(P, dtype=np.float64).ravel())
        for g in groups:
            if np.abs(key - g[3]).max() <= tol * np.abs(g[3]).max():
                g[1] += 1
                break
        else:
            groups.append([np.asarray(P, dtype=np.float64), 1, i, key])
    return [(g[0], g[1], g[2]) for g in groups]


def symmetry(W, W_star, tol: float = 1e-5) -> dict:
    """Descriptors of the pattern of ``W`` in the basis of the teacher: ``M = P W U*^T`` with ``U*`` the unit teacher
    rows and ``P`` the assignment of ``K*`` students to teachers (closest first, SciPy's solver); the number of
    distinct values on its diagonal and off it (values closer than ``tol max|M|`` count as one) and
    ``|M - M^T| / |M|``.  Safran & Shamir's and Arjevani & Field's spurious minima of ``L`` show few distinct values
    (large symmetry groups)."""
    W, W_star = np.asarray(W, dtype=np.float64), np.asarray(W_star, dtype=np.float64)
    U = W_star / np.linalg.norm(W_star, axis=1, keepdims=True)
    cost = ((W[:, None, :] - W_star[None, :, :]) ** 2).sum(-1)
    rows, cols = linear_sum_assignment(cost)
    M = (W[rows[np.argsort(cols)]] @ U.T)
    scale = float(np.abs(M).max())
    off = M[~np.eye(len(M), dtype=bool)]
    return {"distinct_diagonal": _distinct_values(np.diag(M), tol * scale),
            "distinct_off_diagonal": _distinct_values(off, tol * scale),
            "transpose_gap": float(np.linalg.norm(M - M.T) / np.linalg.norm(M)),
            "unmatched_rows": int(len(W) - len(rows))}


def _distinct_values(values, tol: float) -> int:
    """How many clusters ``values`` form when neighbours closer than ``tol`` (sorted) join one cluster."""
    v = np.sort(np.asarray(values, dtype=np.float64).ravel())
    return int(len(v) and 1 + (np.diff(v) > tol).sum())
