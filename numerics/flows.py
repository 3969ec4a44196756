"""Population gradient flows ``dW/dt = -F(W)`` of the student–teacher network, and gradient descent.

Three fields ``F`` (:data:`FLOWS`), all built on :func:`numerics.gradient`:

* ``"L"``: the mean field of ``L`` (= its true gradient),
* ``"H-mean"``: the mean field of ``H`` (what autograd's per-sample gradient averages to),
* ``"H-true"``: the true gradient of the population ``H``.  It jumps by ``|w*|/2pi`` across every
  student–teacher ray (the cone-shaped kink of the population ``J``, docs/theory.md, section 6), so a
  plain adaptive method stalls there and a fixed-step method chatters.  :func:`integrate` treats it
  as a Filippov sliding flow: the mean field plus the boundary terms of every pair that is not
  locked; when a student row comes within :data:`LOCK_ANGLE` of a teacher ray (``w*`` or ``-w*``:
  the kink is attracting at both) it is projected on the ray and locked, and its velocity is then
  the minimal-norm element of the set-valued field (the radial component; the orthogonal push of
  the other terms is absorbed by the boundary ball as long as it is smaller than ``|w*|/2pi``, else
  the row is unlocked).

Distances to the teacher are relative and minimised over row permutations
(``scipy.optimize.linear_sum_assignment``).  Below :data:`RECENTER_DISTANCE` the integrator
re-centres the state on the matched teacher so that the error control is relative to the
distance, not to ``|W|``.

Also here: the first time a trajectory reaches a distance (:func:`time_to`), the late exponential
rate (:func:`fit_rate`, per iteration :func:`iteration_rate`), gradient descent on the mean field
(:func:`population_gd`) and the radial Jacobian on the sliding manifold (:func:`radial_jacobian`).
"""
from __future__ import annotations

import math

import numpy as np
from array_api_compat import array_namespace, device
from scipy.integrate import solve_ivp
from scipy.optimize import linear_sum_assignment

from theory import vocabulary

from .population import gradient

FLOWS = vocabulary.FLOWS
STOP = 1e-9  # relative distance at which a run that reaches the teacher stops
RECENTER_DISTANCE = 1e-2  # relative distance below which the state is re-centred on the matched teacher
LOCK_ANGLE = 1e-5  # radians: a row this close to a teacher ray (either sign) is locked on it (H-true)
FIT_WINDOW = (1e-8, 1e-3)  # relative distances over which the late rate is fitted
RTOL = 1e-6
PARALLEL = 1e-12  # sin(angle) below which a pair has no numerical e2 (its boundary term is left out)
MAX_NFEV = 10_000  # default cap on right-hand-side evaluations per run


# ----------------------------------------------------------------------------- geometry of the teacher
def align(W: np.ndarray, W_star: np.ndarray) -> tuple:
    """``(relative distance, C)``: ``min_perm |W - W*_perm|_F / |W*|_F`` and the matched teacher rows ``C``."""
    cost = ((W[:, None, :] - W_star[None, :, :]) ** 2).sum(-1)
    rows, cols = linear_sum_assignment(cost)
    C = W_star[cols[np.argsort(rows)]]
    return float(np.linalg.norm(W - C) / np.linalg.norm(W_star)), C


def relative_distance(W, W_star) -> float:
    """Relative distance to the teacher, minimised over row permutations."""
    return align(np.asarray(W, float), np.asarray(W_star, float))[0]


def units(A):
    """The rows of ``A`` (along its last axis) divided by their norms."""
    return A / array_namespace(A).linalg.vector_norm(A, axis=-1, keepdims=True)


def line_angles(W: np.ndarray, W_star: np.ndarray) -> np.ndarray:
    """Angle of each student row to the *line* of each teacher row: ``min(theta, pi - theta)``.

    The population ``J`` has a convex cone-shaped kink (an attracting jump of the true gradient,
    ``|w*|/2pi``) at both rays of a teacher, ``w*`` and ``-w*``; rows are locked on either.
    """
    A, B = units(W), units(W_star)
    cross = np.linalg.norm(B[None, :, :] - (A @ B.T)[:, :, None] * A[:, None, :], axis=2)
    return np.arctan2(cross, np.abs(A @ B.T))


# ----------------------------------------------------------------------------- fields
def boundary_terms(W: np.ndarray, W_star: np.ndarray, skip=()) -> np.ndarray:
    """``true - mean`` gradient of ``J``: ``sum_q s_q |z_q| cos(theta_iq) / (2 pi) e2(w_i, z_q)`` per row ``i``.

    ``e2`` is the unit direction from ``w_i`` towards ``z_q`` orthogonal to ``w_i`` (theory.flow.
    boundary_jump derives the pair term).  Pairs in ``skip`` ((i, q) with ``q`` an index into
    ``Z = [W; W*]``) and pairs parallel to ``sin(theta) <= PARALLEL`` (no ``e2`` in floating point;
    in practice two students locked on one teacher ray) are left out.  One instance of
    :func:`batched_boundary_terms`.
    """
    W = np.asarray(W, dtype=np.float64)
    mask = np.zeros((1, len(W), len(W) + len(W_star)), dtype=bool)
    for i, q in skip:
        mask[0, i, q] = True
    return batched_boundary_terms(W[None], np.asarray(W_star, dtype=np.float64), mask)[0]


def batched_boundary_terms(W, W_star, skip):
    """:func:`boundary_terms` of a batch ``W (B, K, d)`` against one teacher, the pairs to leave out given as a
    boolean mask ``skip (B, K, K + K*)``; NumPy arrays or tensors of another array namespace (``array-api-compat``)."""
    xp = array_namespace(W, W_star)
    B, K, _ = W.shape
    dev = device(W)
    Z = xp.concat([W, xp.broadcast_to(W_star, (B,) + tuple(W_star.shape))], axis=1)
    s = xp.concat([xp.ones(K, dtype=W.dtype, device=dev), -xp.ones(W_star.shape[0], dtype=W.dtype, device=dev)])
    A, U = units(W), units(Z)
    c = A @ xp.matrix_transpose(U)
    E = U[:, None, :, :] - c[..., None] * A[:, :, None, :]
    E -= xp.einsum("biqd,bid->biq", E, A)[..., None] * A[:, :, None, :]  # re-orthogonalise (e2 . e1 ~ eps/sin)
    sin = xp.linalg.vector_norm(E, axis=-1)
    coef = s * xp.linalg.vector_norm(Z, axis=-1)[:, None, :] * c / (2 * math.pi)
    ok = (sin > PARALLEL) & ~skip
    diagonal = xp.arange(K, device=dev)
    ok[:, diagonal, diagonal] = False
    coef = xp.where(ok, coef / xp.where(ok, sin, xp.ones_like(sin)), xp.zeros_like(coef))
    return xp.einsum("biq,biqd->bid", coef, E)


def flow_field(flow: str, W: np.ndarray, W_star: np.ndarray, locked: dict | None = None) -> np.ndarray:
    """``F(W)`` of the flow ``dW/dt = -F`` (``flow`` in :data:`FLOWS`).

    ``"H-true"`` with ``locked = {row: teacher}``: locked rows get the minimal-norm element of
    the set-valued field (its component along the teacher ray); unlocked rows the true gradient.
    """
    if flow == "L":
        return gradient(W, W_star, "L", "mean")
    G = gradient(W, W_star, "H", "mean")
    if flow == "H-mean":
        return G
    if flow != "H-true":
        raise ValueError(f"flow must be one of {FLOWS}; got {flow!r}")
    locked = locked or {}
    K = len(W)
    G = G + boundary_terms(W, W_star, skip=[(j, K + p) for j, p in locked.items()])
    for j, p in locked.items():
        u = W_star[p] / np.linalg.norm(W_star[p])
        G[j] = (u @ G[j]) * u
    return G


def sliding_slack(W: np.ndarray, W_star: np.ndarray, locked: dict) -> float:
    """``max_j |orthogonal push on locked row j| - |w*_p|/2pi``: negative while every lock holds."""
    if not locked:
        return -1.0
    K = len(W)
    G = gradient(W, W_star, "H", "mean") + boundary_terms(W, W_star, skip=[(j, K + p) for j, p in locked.items()])
    worst = -np.inf
    for j, p in locked.items():
        u = W_star[p] / np.linalg.norm(W_star[p])
        perp = G[j] - (u @ G[j]) * u
        worst = max(worst, float(np.linalg.norm(perp) - np.linalg.norm(W_star[p]) / (2 * np.pi)))
    return worst


def radial_jacobian(W_star: np.ndarray, h: float = 1e-6) -> np.ndarray:
    """``K x K`` Jacobian of the radial mean field of ``H`` on the sliding manifold ``w_j = c_j u_j``.

    Central differences in the norms ``c_j`` with step ``h c_l`` (rows stay exactly on their
    teacher rays, where the mean field exists); entry ``[j, l] = d (u_j . F_j) / d c_l``.  Not
    :func:`numerics.finite_differences.fd_jacobian`: that one projects each side before the
    difference (``u . F(c+) - u . F(c-)``), this one projects the difference (``u . (F(c+) - F(c-))``),
    and the two round differently in the last bit.
    """
    U = units(W_star)
    c = np.linalg.norm(W_star, axis=1)
    K = len(c)
    M = np.zeros((K, K))
    for l in range(K):
        hp = h * c[l]
        cp, cm = c.copy(), c.copy()
        cp[l] += hp
        cm[l] -= hp
        Fp = gradient(cp[:, None] * U, W_star, "H", "mean")
        Fm = gradient(cm[:, None] * U, W_star, "H", "mean")
        M[:, l] = np.einsum("jd,jd->j", U, Fp - Fm) / (2 * hp)
    return M


# ----------------------------------------------------------------------------- the integrator
class EvalCap(Exception):
    """Raised by a right-hand side called more often than its cap allows."""


def _segment_events(flow, W_star, Cn, lk, recentred: bool, shape, stop) -> tuple:
    """Terminal events of one integration segment and their kinds (``switch``/``stop``, ``lock``, ``unlock``)."""
    K, d = shape
    scale = np.linalg.norm(W_star)
    events, kinds = [], []
    if not recentred:
        ev = lambda _t, y, Cn=Cn: align(Cn + y.reshape(K, d), W_star)[0] - RECENTER_DISTANCE  # noqa: E731
        kinds.append("switch")
    else:
        ev = lambda _t, y: np.linalg.norm(y) / scale - stop  # noqa: E731
        kinds.append("stop")
    ev.terminal, ev.direction = True, -1
    events.append(ev)
    if flow == "H-true":
        def ev_lock(_t, y, Cn=Cn, lk=lk):
            th = line_angles(Cn + y.reshape(K, d), W_star)
            for j in lk:
                th[j, :] = np.inf
            return float(th.min() - LOCK_ANGLE) if np.isfinite(th.min()) else 1.0
        ev_lock.terminal, ev_lock.direction = True, -1
        events.append(ev_lock)
        kinds.append("lock")
        if lk:
            def ev_unlock(_t, y, Cn=Cn, lk=lk):
                return sliding_slack(Cn + y.reshape(K, d), W_star, lk)
            ev_unlock.terminal, ev_unlock.direction = True, 1
            events.append(ev_unlock)
            kinds.append("unlock")
    return events, kinds


def _lock_nearest(W, W_star, locked: dict, t: float) -> tuple:
    """Project the unlocked row nearest to a teacher line on it; returns the new ``W`` and the log entry."""
    th = line_angles(W, W_star)
    for j in locked:
        th[j, :] = np.inf
    j, p = np.unravel_index(np.argmin(th), th.shape)
    u = W_star[p] / np.linalg.norm(W_star[p])
    W = W.copy()
    W[j] = (u @ W[j]) * u
    locked[int(j)] = int(p)
    return W, {"t": t, "event": "lock", "row": int(j), "teacher": int(p),
               "ray": "parallel" if u @ W[j] > 0 else "anti-parallel"}


def _unlock_worst(W, W_star, locked: dict, t: float) -> dict:
    """Release the locked row whose orthogonal push exceeds the boundary ball most; returns the log entry."""
    slack = {}
    for j in locked:
        slack[j] = sliding_slack(W, W_star, {j: locked[j]})
    j = max(slack, key=slack.get)
    return {"t": t, "event": "unlock", "row": int(j), "teacher": locked.pop(j)}


def integrate(W0, W_star, flow: str, *, t_max: float, rtol: float = RTOL, stop: float = STOP,
              max_segments: int | None = None, max_nfev: int = MAX_NFEV) -> dict:
    """Integrate ``dW/dt = -F(W)`` from ``W0`` until the relative distance is ``stop`` or ``t = t_max``.

    RK45 with relative tolerance ``rtol``; absolute tolerance ``1e-9 |W*|/sqrt(Kd)`` far from the
    teacher and ``1e-3 stop |W*|/sqrt(Kd)`` once re-centred on the matched teacher (below
    ``RECENTER_DISTANCE``), so that the error control is relative to the distance down to ``stop``.
    Returns ``t``, ``W`` (accepted steps), ``locks`` (H-true events), ``nfev``, ``status``,
    ``locked_at_end``.
    """
    W0, W_star = np.asarray(W0, float), np.asarray(W_star, float)
    K, d = W0.shape
    comp = np.linalg.norm(W_star) / math.sqrt(K * d)
    max_segments = max_segments or 8 * K + 20
    t, W = 0.0, W0.copy()
    ts, Ws_ = [0.0], [W0.copy()]
    locked: dict = {}
    log, calls, status = [], {"n": 0}, "t_max"
    dist, C = align(W, W_star)
    center = C if dist < RECENTER_DISTANCE else None
    for _ in range(max_segments):
        Cn = center if center is not None else np.zeros_like(W)
        lk = dict(locked)
        last = {}

        def rhs(_t, y, Cn=Cn, lk=lk, last=last):
            calls["n"] += 1
            if calls["n"] > max_nfev:
                raise EvalCap
            if not last or _t > last["t"]:
                last.update(t=float(_t), W=Cn + y.reshape(K, d))
            return -flow_field(flow, Cn + y.reshape(K, d), W_star, lk).ravel()

        events, kinds = _segment_events(flow, W_star, Cn, lk, center is not None, (K, d), stop)
        atol = (1e-3 * stop if center is not None else 1e-9) * comp
        try:
            sol = solve_ivp(rhs, (t, t_max), (W - Cn).ravel(), method="RK45", rtol=rtol, atol=atol, events=events)
        except EvalCap:
            if last and last["t"] > t:
                ts.append(last["t"])
                Ws_.append(last["W"])
            status = "evaluation cap (the solver stalled)"
            break
        for tk, yk in zip(sol.t[1:], sol.y.T[1:]):
            ts.append(float(tk))
            Ws_.append(Cn + yk.reshape(K, d))
        t, W = float(sol.t[-1]), Cn + sol.y[:, -1].reshape(K, d)
        if sol.status != 1:
            status = "t_max" if sol.status == 0 else f"solver failure: {sol.message}"
            break
        kind = [k for k, te in zip(kinds, sol.t_events) if len(te)][0]
        if kind == "stop":
            status = "stop"
            break
        if kind == "switch":
            center = align(W, W_star)[1]
        elif kind == "lock":
            W, entry = _lock_nearest(W, W_star, locked, t)
            Ws_[-1] = W.copy()
            log.append(entry)
        else:
            log.append(_unlock_worst(W, W_star, locked, t))
    else:
        status = "segment limit"
    return {"t": np.array(ts), "W": np.array(Ws_), "locks": log, "nfev": calls["n"], "status": status,
            "locked_at_end": dict(locked)}


# ----------------------------------------------------------------------------- rates along a trajectory
def time_to(t: np.ndarray, dist: np.ndarray, eps: float) -> float | None:
    """First time the relative distance reaches ``eps`` (log-linear interpolation between steps)."""
    below = np.nonzero(dist <= eps)[0]
    if not len(below):
        return None
    k = below[0]
    if k == 0:
        return 0.0
    l0, l1 = math.log(dist[k - 1]), math.log(dist[k])
    return float(t[k - 1] + (t[k] - t[k - 1]) * (l0 - math.log(eps)) / (l0 - l1))


def fit_rate(t: np.ndarray, dist: np.ndarray, window=FIT_WINDOW) -> dict:
    """Late exponential rate ``-d log(dist)/dt`` by least squares.

    Over the points with ``window[0] <= dist <= window[1]`` when they span at least one decade;
    otherwise over the last quarter of the run if the distance there is below
    ``RECENTER_DISTANCE`` (``"tail"``); otherwise no fit.
    """
    sel = (dist >= window[0]) & (dist <= window[1])
    kind = "window"
    if sel.sum() < 4 or math.log10(dist[sel].max() / dist[sel].min()) < 1:
        sel = (t >= 0.75 * t[-1]) & (dist < RECENTER_DISTANCE)
        kind = "tail"
        if sel.sum() < 4:
            return {"rate": None, "window": "none", "t_from": None, "t_to": None}
    slope = np.polyfit(t[sel], np.log(dist[sel]), 1)[0]
    return {"rate": float(-slope), "window": kind, "t_from": float(t[sel][0]), "t_to": float(t[sel][-1])}


def iterations_to(dist: np.ndarray, eps: float) -> int | None:
    """First iteration at which the distance is ``<= eps`` (``None``: never)."""
    k = np.nonzero(dist <= eps)[0]
    return int(k[0]) if len(k) else None


def iteration_rate(dist: np.ndarray) -> float | None:
    """Late rate per iteration, ``-d log(dist)/dk``: least squares over ``1e-10 <= dist <= 1e-2``
    when that spans a decade, else over the second half of the iterations."""
    dist = np.maximum(np.asarray(dist, float), 1e-300)
    k = np.arange(len(dist))
    sel = (dist >= 1e-10) & (dist <= 1e-2)
    if sel.sum() < 5 or math.log10(dist[sel].max() / dist[sel].min()) < 1:
        sel = k >= len(dist) // 2
    if sel.sum() < 3:
        return None
    return float(-np.polyfit(k[sel], np.log(dist[sel]), 1)[0])


# ----------------------------------------------------------------------------- gradient descent
def population_gd(W0, W_star, part: str, lr: float, steps: int) -> np.ndarray:
    """Gradient descent on the population mean field (the limit ``n -> infinity`` of finite-sample
    training); returns ``W_k``, ``k = 0..steps``."""
    W = np.asarray(W0, float).copy()
    out = [W.copy()]
    for _ in range(steps):
        W = W - lr * gradient(W, W_star, part, "mean")
        out.append(W.copy())
    return np.array(out)
