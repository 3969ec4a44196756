"""``python -m verify.gradient_flow``: how much faster does Sobolev training converge?

The paper's fourth claim: gradient flow on ``H = L + J`` converges faster than on ``L``.
Writes ``gradient_flow.md`` / ``gradient_flow.json`` / ``gradient_flow_*.png``.

**Population flows** ``dW/dt = -F(W)`` (SciPy ``solve_ivp``, RK45, stated tolerances) for

* ``"L"``: the mean field of ``L`` (= its true gradient),
* ``"H-mean"``: the mean field of ``H`` (``numerics.gradient(..., "H", "mean")``; what
  autograd's per-sample gradient averages to, the paper's convention),
* ``"H-true"``: the true gradient of the population ``H``.  It jumps by ``|w*|/2pi`` across
  every student-teacher ray (the cone-shaped kink of the population ``J``, docs/theory.md, section 6), so a
  plain adaptive method stalls there and a fixed-step method chatters.  We integrate it as a
  Filippov sliding flow: the mean field plus the boundary terms of every pair that is not
  locked; when a student row comes within ``LOCK_ANGLE`` of a teacher ray (``w*`` or ``-w*``:
  the kink is attracting at both) it is projected on the ray and locked, and its velocity is then the minimal-norm element of the set-valued
  field (the radial component; the orthogonal push of the other terms is absorbed by the
  boundary ball as long as it is smaller than ``|w*|/2pi``, else the row is unlocked).

Distances to the teacher are relative and minimised over row permutations
(``scipy.optimize.linear_sum_assignment``).  Near the teacher the state is re-centred on the
matched teacher so that the error control is relative to the distance, not to ``|W|``.

**Predicted rates**: single node from :mod:`theory.flow` (SymPy); several nodes from the
spectrum of ``numerics.hessian(W, W*, part, "mean")`` at the teacher (``L``), along random
approach directions ``W* + t Delta`` (``H-mean``, whose Jacobian does not exist at the
teacher) and, for ``H-true``, the radial Jacobian on the sliding manifold (rows on their
teacher rays) by central differences of the mean field.

**Finite samples, real autograd**: the PyTorch student trained by full-batch gradient descent
and by SGD on ``n`` samples with the Sobolev loss built by autograd (``grad_x g`` with
``create_graph=True``), compared step by step with population gradient descent (the mean
field, same step) at a common step and at steps matched to each loss's own curvature.
"""
from __future__ import annotations

import math
import sys
import time

import numpy as np
import torch
from scipy.integrate import solve_ivp
from scipy.optimize import linear_sum_assignment

import numerics
from numerics import mc
from theory import flow as theory_flow

from .report import Context, Report, run

NAME = "gradient_flow"
TITLE = "Gradient flow: how much faster does Sobolev training converge?"

FLOWS = ("L", "H-mean", "H-true")
EPSILONS = (1e-2, 1e-4, 1e-6)
STOP = 1e-9  # relative distance at which a run that reaches the teacher stops
SWITCH = 1e-2  # relative distance below which the state is re-centred on the matched teacher
LOCK_ANGLE = 1e-5  # radians: a row this close to a teacher ray (either sign) is locked on it (H-true)
FIT_WINDOW = (1e-8, 1e-3)  # relative distances over which the late rate is fitted
RTOL = 1e-6
PARALLEL = 1e-12  # sin(angle) below which a pair has no numerical e2 (its boundary term is left out)
MAX_NFEV = 10_000  # default cap on right-hand-side evaluations per run (profiles set their own)
NEAR_DISTANCE = 0.2  # relative distance of the "near" starts
FS_START_DISTANCE = 0.5  # relative distance of the finite-sample start
FS_EPS = 1e-3  # finite-sample acceleration: iterations to this relative distance
FS_EPSILONS = (1e-2, 1e-3, 1e-4, 1e-6)

PROFILES = {
    "quick": dict(widths=(1, 2), dims=(5,), reps=1, t_max=60.0, directions=2,
                  fs=dict(K=2, d=5, ns=(100, 1000), steps=160, batch=32),
                  euler_h=(0.2, 0.05), euler_t=20.0, rk_cap=1500, max_nfev=5000),
    "standard": dict(widths=(1, 2, 4, 8), dims=(5, 20, 100), reps=1, t_max=100.0, directions=3,
                     fs=dict(K=2, d=10, ns=(100, 1000, 10_000, 100_000), steps=250, batch=32),
                     euler_h=(0.2, 0.05, 0.0125), euler_t=25.0, rk_cap=3000, max_nfev=5000),
    "full": dict(widths=(1, 2, 4, 8, 16), dims=(5, 20, 100, 500), reps=8, t_max=400.0, directions=8,
                 fs=dict(K=4, d=20, ns=(100, 1000, 10_000, 100_000, 1_000_000), steps=1000, batch=64),
                 euler_h=(0.2, 0.05, 0.0125, 0.003), euler_t=30.0, rk_cap=50_000, max_nfev=200_000),
}


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


def _units(A):
    return A / np.linalg.norm(A, axis=1, keepdims=True)


def boundary_terms(W: np.ndarray, W_star: np.ndarray, skip=()) -> np.ndarray:
    """``true - mean`` gradient of ``J``: ``sum_q s_q |z_q| cos(theta_iq) / (2 pi) e2(w_i, z_q)`` per row ``i``.

    ``e2`` is the unit direction from ``w_i`` towards ``z_q`` orthogonal to ``w_i`` (theory.flow.
    boundary_jump derives the pair term).  Pairs in ``skip`` ((i, q) with ``q`` an index into
    ``Z = [W; W*]``) and pairs parallel to ``sin(theta) <= PARALLEL`` (no ``e2`` in floating point;
    in practice two students locked on one teacher ray) are left out.
    """
    K = len(W)
    Z = np.vstack([W, W_star])
    s = np.concatenate([np.ones(K), -np.ones(len(W_star))])
    A, B = _units(W), _units(Z)
    c = A @ B.T
    E = B[None, :, :] - c[:, :, None] * A[:, None, :]
    E -= np.einsum("iqd,id->iq", E, A)[:, :, None] * A[:, None, :]  # re-orthogonalise (e2 . e1 ~ eps/sin)
    sin = np.linalg.norm(E, axis=2)
    coef = s[None, :] * np.linalg.norm(Z, axis=1)[None, :] * c / (2 * np.pi)
    ok = sin > PARALLEL
    ok[np.arange(K), np.arange(K)] = False
    for i, q in skip:
        ok[i, q] = False
    coef = np.where(ok, coef / np.where(ok, sin, 1.0), 0.0)
    return np.einsum("iq,iqd->id", coef, E)


def flow_field(flow: str, W: np.ndarray, W_star: np.ndarray, locked: dict | None = None) -> np.ndarray:
    """``F(W)`` of the flow ``dW/dt = -F`` (``flow`` in :data:`FLOWS`).

    ``"H-true"`` with ``locked = {row: teacher}``: locked rows get the minimal-norm element of
    the set-valued field (its component along the teacher ray); unlocked rows the true gradient.
    """
    if flow == "L":
        return numerics.gradient(W, W_star, "L", "mean")
    G = numerics.gradient(W, W_star, "H", "mean")
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


def _sliding_slack(W, W_star, locked: dict) -> float:
    """``max_j |orthogonal push on locked row j| - |w*_p|/2pi``: negative while every lock holds."""
    if not locked:
        return -1.0
    K = len(W)
    G = numerics.gradient(W, W_star, "H", "mean") + boundary_terms(W, W_star, skip=[(j, K + p) for j, p in locked.items()])
    worst = -np.inf
    for j, p in locked.items():
        u = W_star[p] / np.linalg.norm(W_star[p])
        perp = G[j] - (u @ G[j]) * u
        worst = max(worst, float(np.linalg.norm(perp) - np.linalg.norm(W_star[p]) / (2 * np.pi)))
    return worst


def _angles(W, W_star):
    """Angle of each student row to the *line* of each teacher row: ``min(theta, pi - theta)``.

    The population ``J`` has a convex cone-shaped kink (an attracting jump of the true gradient,
    ``|w*|/2pi``) at both rays of a teacher, ``w* `` and ``-w*``; rows are locked on either.
    """
    A, B = _units(W), _units(W_star)
    cross = np.linalg.norm(B[None, :, :] - (A @ B.T)[:, :, None] * A[:, None, :], axis=2)
    return np.arctan2(cross, np.abs(A @ B.T))


# ----------------------------------------------------------------------------- population flows
class _EvalCap(Exception):
    pass


def integrate(W0, W_star, flow: str, *, t_max: float, rtol: float = RTOL, stop: float = STOP,
              max_segments: int | None = None, max_nfev: int = MAX_NFEV) -> dict:
    """Integrate ``dW/dt = -F(W)`` from ``W0`` until the relative distance is ``stop`` or ``t = t_max``.

    RK45 with relative tolerance ``rtol``; absolute tolerance ``1e-9 |W*|/sqrt(Kd)`` far from the
    teacher and ``1e-3 stop |W*|/sqrt(Kd)`` once re-centred on the matched teacher (below
    ``SWITCH``), so that the error control is relative to the distance down to ``stop``.
    Returns ``t``, ``W`` (accepted steps), ``locks`` (H-true events), ``nfev``, ``status``.
    """
    W0, W_star = np.asarray(W0, float), np.asarray(W_star, float)
    K, d = W0.shape
    comp = np.linalg.norm(W_star) / math.sqrt(K * d)
    scale = np.linalg.norm(W_star)
    max_segments = max_segments or 8 * K + 20
    t, W = 0.0, W0.copy()
    ts, Ws_ = [0.0], [W0.copy()]
    locked: dict = {}
    log, nfev, status = [], 0, "t_max"
    dist, C = align(W, W_star)
    center = C if dist < SWITCH else None
    for _ in range(max_segments):
        Cn = center if center is not None else np.zeros_like(W)
        lk = dict(locked)

        last = {}

        def rhs(_t, y, Cn=Cn, lk=lk, last=last):
            nonlocal nfev
            nfev += 1
            if nfev > max_nfev:
                raise _EvalCap
            if not last or _t > last["t"]:
                last.update(t=float(_t), W=Cn + y.reshape(K, d))
            return -flow_field(flow, Cn + y.reshape(K, d), W_star, lk).ravel()

        events, kinds = [], []
        if center is None:
            ev = lambda _t, y, Cn=Cn: align(Cn + y.reshape(K, d), W_star)[0] - SWITCH  # noqa: E731
            kinds.append("switch")
        else:
            ev = lambda _t, y: np.linalg.norm(y) / scale - stop  # noqa: E731
            kinds.append("stop")
        ev.terminal, ev.direction = True, -1
        events.append(ev)
        if flow == "H-true":
            def ev_lock(_t, y, Cn=Cn, lk=lk):
                th = _angles(Cn + y.reshape(K, d), W_star)
                for j in lk:
                    th[j, :] = np.inf
                return float(th.min() - LOCK_ANGLE) if np.isfinite(th.min()) else 1.0
            ev_lock.terminal, ev_lock.direction = True, -1
            events.append(ev_lock)
            kinds.append("lock")
            if lk:
                def ev_unlock(_t, y, Cn=Cn, lk=lk):
                    return _sliding_slack(Cn + y.reshape(K, d), W_star, lk)
                ev_unlock.terminal, ev_unlock.direction = True, 1
                events.append(ev_unlock)
                kinds.append("unlock")
        atol = (1e-3 * stop if center is not None else 1e-9) * comp
        try:
            sol = solve_ivp(rhs, (t, t_max), (W - Cn).ravel(), method="RK45", rtol=rtol, atol=atol, events=events)
        except _EvalCap:
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
        fired = [k for k, te in zip(kinds, sol.t_events) if len(te)]
        kind = fired[0]
        if kind == "stop":
            status = "stop"
            break
        if kind == "switch":
            center = align(W, W_star)[1]
        elif kind == "lock":
            th = _angles(W, W_star)
            for j in locked:
                th[j, :] = np.inf
            j, p = np.unravel_index(np.argmin(th), th.shape)
            u = W_star[p] / np.linalg.norm(W_star[p])
            W = W.copy()
            W[j] = (u @ W[j]) * u
            Ws_[-1] = W.copy()
            locked[int(j)] = int(p)
            log.append({"t": t, "event": "lock", "row": int(j), "teacher": int(p),
                        "ray": "parallel" if u @ W[j] > 0 else "anti-parallel"})
        else:
            slack = {}
            for j in locked:
                slack[j] = _sliding_slack(W, W_star, {j: locked[j]})
            j = max(slack, key=slack.get)
            log.append({"t": t, "event": "unlock", "row": int(j), "teacher": locked.pop(j)})
    else:
        status = "segment limit"
    return {"t": np.array(ts), "W": np.array(Ws_), "locks": log, "nfev": nfev, "status": status,
            "locked_at_end": dict(locked)}


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
    otherwise over the last quarter of the run if the distance there is below ``SWITCH``
    (``"tail"``); otherwise no fit.
    """
    sel = (dist >= window[0]) & (dist <= window[1])
    kind = "window"
    if sel.sum() < 4 or math.log10(dist[sel].max() / dist[sel].min()) < 1:
        sel = (t >= 0.75 * t[-1]) & (dist < SWITCH)
        kind = "tail"
        if sel.sum() < 4:
            return {"rate": None, "window": "none", "t_from": None, "t_to": None}
    slope = np.polyfit(t[sel], np.log(dist[sel]), 1)[0]
    return {"rate": float(-slope), "window": kind, "t_from": float(t[sel][0]), "t_to": float(t[sel][-1])}


def _classify(flow, W_end, W_star, dist_end, rate, locked) -> str:
    if dist_end <= EPSILONS[-1]:
        return "teacher"
    if dist_end < SWITCH and rate is not None and rate > 0:
        return "approaching the teacher (1e-6 not reached in time)"
    g = np.linalg.norm(flow_field(flow, W_end, W_star, locked)) / np.linalg.norm(W_star)
    return "another critical point" if g < 1e-4 else "no convergence in the time allowed"


def _downsample(t, y, n=48):
    idx = np.unique(np.linspace(0, len(t) - 1, n).round().astype(int))
    return [float(t[i]) for i in idx], [float(y[i]) for i in idx]


def run_flow(W0, W_star, flow, t_max, max_nfev: int = MAX_NFEV) -> dict:
    """One run: trajectory summary, times to each epsilon, late rate, where it ends."""
    start = time.perf_counter()
    res = integrate(W0, W_star, flow, t_max=t_max, max_nfev=max_nfev)
    dist = np.array([align(W, W_star)[0] for W in res["W"]])
    dist = np.maximum(dist, 1e-300)
    fit = fit_rate(res["t"], dist)
    end = _classify(flow, res["W"][-1], W_star, dist[-1], fit["rate"], res["locked_at_end"])
    if res["status"].startswith("evaluation cap") and end != "teacher":
        end = "integration stalled (evaluation cap)"
    part = "L" if flow == "L" else "H"
    ts, ds = _downsample(res["t"], dist)
    idx = [int(np.argmin(np.abs(res["t"] - x))) for x in ts]
    loss = [max(numerics.loss(res["W"][i], W_star, part), 0.0) for i in idx]
    return {"flow": flow, "end": end, "status": res["status"], "t_end": float(res["t"][-1]),
            "final_distance": float(dist[-1]), "nfev": res["nfev"], "steps": int(len(res["t"]) - 1),
            "time_to": {f"{e:g}": time_to(res["t"], dist, e) for e in EPSILONS},
            "late_rate": fit, "locks": res["locks"], "trajectory": {"t": ts, "distance": ds, "loss": loss},
            "W_end": res["W"][-1], "seconds": time.perf_counter() - start}


# ----------------------------------------------------------------------------- predicted rates
def _spectrum(M) -> np.ndarray:
    return np.linalg.eigvals(M)


def radial_jacobian(W_star: np.ndarray, h: float = 1e-6) -> np.ndarray:
    """``K x K`` Jacobian of the radial mean field of ``H`` on the sliding manifold ``w_j = c_j u_j``.

    Central differences in the norms ``c_j`` (rows stay exactly on their teacher rays, where
    the mean field exists); entry ``[j, l] = d (u_j . F_j) / d c_l``.
    """
    U = _units(W_star)
    c = np.linalg.norm(W_star, axis=1)
    K = len(c)
    M = np.zeros((K, K))
    for l in range(K):
        hp = h * c[l]
        cp, cm = c.copy(), c.copy()
        cp[l] += hp
        cm[l] -= hp
        Fp = numerics.gradient(cp[:, None] * U, W_star, "H", "mean")
        Fm = numerics.gradient(cm[:, None] * U, W_star, "H", "mean")
        M[:, l] = np.einsum("jd,jd->j", U, Fp - Fm) / (2 * hp)
    return M


def predicted_rates(W_star: np.ndarray, rng: np.random.Generator, directions: int, t: float = 1e-7) -> dict:
    """Spectra of the linearised flows at (or, for H-mean, along approaches to) the teacher."""
    eL = _spectrum(numerics.hessian(W_star, W_star, "L", "mean"))
    out = {"L": {"rate": float(eL.real.min()), "max_real": float(eL.real.max()),
                 "spectral_radius": float(np.abs(eL).max())}}
    mins, maxs, radii = [], [], []
    for _ in range(directions):
        D = rng.standard_normal(W_star.shape)
        D *= t * np.linalg.norm(W_star) / np.linalg.norm(D)
        e = _spectrum(numerics.hessian(W_star + D, W_star, "H", "mean"))
        mins.append(float(e.real.min()))
        maxs.append(float(e.real.max()))
        radii.append(float(np.abs(e).max()))
    out["H-mean"] = {"rate": float(np.median(mins)), "rate_min_over_directions": min(mins),
                     "rate_max_over_directions": max(mins), "max_real": max(maxs), "spectral_radius": max(radii),
                     "directions": directions, "approach_distance": t}
    eR = _spectrum(radial_jacobian(W_star))
    out["H-true"] = {"rate": float(eR.real.min()), "max_real": float(eR.real.max())}
    return out


def rate_along_run(W_end: np.ndarray, W_star: np.ndarray) -> dict:
    """Spectrum of the H-mean Jacobian at a run's last point (just short of the teacher)."""
    e = _spectrum(numerics.hessian(W_end, W_star, "H", "mean"))
    return {"min_real": float(e.real.min()), "eigenvalues_real": sorted(float(x) for x in e.real)}


# ----------------------------------------------------------------------------- finite samples (PyTorch)
def empirical_loss(W: torch.Tensor, W_star: torch.Tensor, X: torch.Tensor, part: str) -> torch.Tensor:
    """Sample mean of ``l_L`` or ``l_H`` on the samples ``X``: the practitioner's loss of
    :func:`numerics.mc.per_sample_losses` (the Sobolev part by autograd, ``grad_x g`` with
    ``create_graph=True``); for ``L`` the input gradients are not built."""
    if part == "L":
        return 0.5 * ((torch.relu(X @ W.T).sum(1) - torch.relu(X @ W_star.T).sum(1)) ** 2).mean()
    if part != "H":
        raise ValueError(f"part must be 'L' or 'H'; got {part!r}")
    return mc.per_sample_losses(W, W_star, X)["H"].mean()


def empirical_gradient(W, W_star, X, part: str) -> torch.Tensor:
    """``d/dW`` of :func:`empirical_loss` by autograd (the full-batch gradient descent direction)."""
    W = torch.as_tensor(W, dtype=X.dtype, device=X.device).detach().clone().requires_grad_(True)
    W_star = torch.as_tensor(W_star, dtype=X.dtype, device=X.device)
    (grad,) = torch.autograd.grad(empirical_loss(W, W_star, X, part), W)
    return grad


def train(W0, W_star, X: torch.Tensor, part: str, lr: float, steps: int, batch: int | None = None,
          seed: int = 0) -> np.ndarray:
    """Gradient descent (``batch=None``: full batch) or SGD on the samples ``X``; returns ``W_k``, ``k = 0..steps``."""
    W = torch.as_tensor(W0, dtype=X.dtype, device=X.device).clone()
    Wst = torch.as_tensor(W_star, dtype=X.dtype, device=X.device)
    gen = torch.Generator().manual_seed(int(seed))  # minibatch indices drawn on the CPU: same on every device
    out = [W.cpu().numpy().copy()]
    for _ in range(steps):
        Xb = X if batch is None else X[torch.randint(len(X), (batch,), generator=gen).to(X.device)]
        W = W - lr * empirical_gradient(W, Wst, Xb, part)
        out.append(W.cpu().numpy().copy())
    return np.array(out)


def population_gd(W0, W_star, part: str, lr: float, steps: int) -> np.ndarray:
    """Gradient descent on the population mean field (the limit ``n -> infinity`` of :func:`train`)."""
    W = np.asarray(W0, float).copy()
    out = [W.copy()]
    for _ in range(steps):
        W = W - lr * numerics.gradient(W, W_star, part, "mean")
        out.append(W.copy())
    return np.array(out)


def _iterations_to(dist: np.ndarray, eps: float):
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


# ----------------------------------------------------------------------------- experiments
def _teacher(rng, K, d):
    return rng.standard_normal((K, d)) / math.sqrt(d)


def _near_start(rng, W_star, distance):
    D = rng.standard_normal(W_star.shape)
    return W_star + distance * np.linalg.norm(W_star) * D / np.linalg.norm(D)


def _population_runs(ctx: Context, prof: dict) -> tuple:
    instances = []
    for K in prof["widths"]:
        for d in prof["dims"]:
            for rep in range(prof["reps"]):
                instances.append((K, d, rep))
    runs, teachers = [], []
    bar = None
    if ctx.progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(instances) * 2 * len(FLOWS), desc="gradient flows", unit="run")
    for K, d, rep in instances:
        rng = np.random.default_rng([ctx.seed, K, d, rep])
        W_star = _teacher(rng, K, d)
        t0 = time.perf_counter()
        pred = predicted_rates(W_star, rng, prof["directions"])
        teachers.append({"K": K, "d": d, "rep": rep, "predicted": pred,
                         "prediction_seconds": time.perf_counter() - t0})
        starts = {"near": _near_start(rng, W_star, NEAR_DISTANCE), "far": _teacher(rng, K, d)}
        for start, W0 in starts.items():
            for fl in FLOWS:
                r = run_flow(W0, W_star, fl, prof["t_max"], prof["max_nfev"])
                W_end = r.pop("W_end")
                r.update({"K": K, "d": d, "rep": rep, "start": start,
                          "start_distance": relative_distance(W0, W_star)})
                r["predicted_rate"] = pred[fl]["rate"]
                if fl == "H-mean" and r["end"] == "teacher":
                    along = rate_along_run(W_end, W_star)
                    r["predicted_rate_along_run"] = along["min_real"]
                    ev = np.array(along["eigenvalues_real"])
                    if r["late_rate"]["rate"] is not None:
                        r["nearest_eigenvalue_along_run"] = float(ev[np.argmin(np.abs(ev - r["late_rate"]["rate"]))])
                runs.append(r)
                if bar is not None:
                    bar.update(1)
    if bar is not None:
        bar.close()
    return runs, teachers


def _acceleration(runs: list) -> list:
    by = {}
    for r in runs:
        by[(r["K"], r["d"], r["rep"], r["start"], r["flow"])] = r
    rows = []
    for (K, d, rep, start, fl), r in by.items():
        if fl == "L":
            continue
        base = by[(K, d, rep, start, "L")]
        row = {"K": K, "d": d, "rep": rep, "start": start, "flow": fl}
        for e in EPSILONS:
            key = f"{e:g}"
            tL, tH = base["time_to"][key], r["time_to"][key]
            if tL is not None and tH is not None and tH > 0:
                row[f"time_ratio_{key}"] = tL / tH
            elif tL is None and tH is not None and tH > 0:
                row[f"time_ratio_{key}_lower_bound"] = base["t_end"] / tH
        rL, rH = base["late_rate"]["rate"], r["late_rate"]["rate"]
        if rL and rH and rL > 0:
            row["rate_ratio"] = rH / rL
        row["predicted_rate_ratio"] = r["predicted_rate"] / base["predicted_rate"]
        rows.append(row)
    return rows


def _stats(values) -> dict:
    v = np.array([x for x in values if x is not None], float)
    if not len(v):
        return {"n": 0}
    q = np.percentile(v, [0, 25, 50, 75, 100])
    return {"n": int(len(v)), "min": float(q[0]), "q25": float(q[1]), "median": float(q[2]), "q75": float(q[3]),
            "max": float(q[4]), "geometric_mean": float(np.exp(np.log(v).mean()))}


def _kink_demo(ctx: Context, prof: dict) -> dict:
    """What fixed-step Euler and plain RK45 do on the true gradient of H (K = 1), against the sliding flow."""
    rng = np.random.default_rng([ctx.seed, 99])
    d = 5
    W_star = _teacher(rng, 1, d)
    W0 = _near_start(rng, W_star, NEAR_DISTANCE)
    out = {"d": d, "start_distance": relative_distance(W0, W_star), "euler": []}
    sliding = run_flow(W0, W_star, "H-true", prof["euler_t"], prof["max_nfev"])
    sliding.pop("W_end")
    out["sliding"] = sliding
    lock = [e for e in sliding["locks"] if e["event"] == "lock"]
    w, ws = W0[0], W_star[0]
    u = ws / np.linalg.norm(ws)
    perp = np.linalg.norm(w - (u @ w) * u)
    out["hitting_time_measured"] = lock[0]["t"] if lock else None
    out["hitting_time_predicted_first_order"] = theory_flow.angular_hitting_time(perp, float(np.linalg.norm(ws)))
    for h in prof["euler_h"]:
        W = W0.copy()
        n = int(round(prof["euler_t"] / h))
        dist = [relative_distance(W, W_star)]
        for _ in range(n):
            W = W - h * numerics.gradient(W, W_star, "H", "true")
            dist.append(relative_distance(W, W_star))
        dist = np.array(dist)
        tt = h * np.arange(n + 1)
        tail = dist[tt >= 0.75 * prof["euler_t"]]
        ts, ds = _downsample(tt, np.maximum(dist, 1e-300), 120)
        out["euler"].append({"h": h, "steps": n, "floor_distance": float(tail.mean()),
                             "floor_over_h_over_2pi": float(tail.mean() / (h / (2 * np.pi))),
                             "trajectory": {"t": ts, "distance": ds}})
    # plain RK45 on the discontinuous field, capped in evaluations
    nfev = [0]
    reached = [0.0]

    def rhs(t, y):
        nfev[0] += 1
        if nfev[0] > prof["rk_cap"]:
            raise _EvalCap
        reached[0] = max(reached[0], t)
        return -numerics.gradient(y.reshape(1, d), W_star, "H", "true").ravel()

    t0 = time.perf_counter()
    try:
        sol = solve_ivp(rhs, (0, prof["euler_t"]), W0.ravel(), method="RK45", rtol=RTOL, atol=1e-12)
        rk = {"completed": True, "t_reached": float(sol.t[-1]), "nfev": nfev[0],
              "final_distance": relative_distance(sol.y[:, -1].reshape(1, d), W_star)}
    except _EvalCap:
        rk = {"completed": False, "t_reached": reached[0], "nfev": prof["rk_cap"]}
    rk["seconds"] = time.perf_counter() - t0
    out["plain_rk45"] = rk
    return out


def _finite_samples(ctx: Context, prof: dict) -> dict:
    cfg = prof["fs"]
    K, d = cfg["K"], cfg["d"]
    rng = np.random.default_rng([ctx.seed, 7, K, d])
    W_star = _teacher(rng, K, d)
    W0 = _near_start(rng, W_star, FS_START_DISTANCE)
    pred = predicted_rates(W_star, rng, prof["directions"])
    lr = {"common": {"L": 1 / pred["H-mean"]["spectral_radius"], "H": 1 / pred["H-mean"]["spectral_radius"]},
          "matched": {"L": 1 / pred["L"]["spectral_radius"], "H": 1 / pred["H-mean"]["spectral_radius"]}}
    steps = cfg["steps"]
    scale = np.linalg.norm(W_star)
    out = {"K": K, "d": d, "steps": steps, "batch": cfg["batch"], "start_distance": relative_distance(W0, W_star),
           "step_sizes": lr, "predicted": pred, "population": {}, "samples": []}
    pop = {}
    for rule in ("common", "matched"):
        for part in ("L", "H"):
            key = (part, lr[rule][part])
            if key not in pop:
                pop[key] = population_gd(W0, W_star, part, lr[rule][part], steps)
            dist = np.array([relative_distance(W, W_star) for W in pop[key]])
            out["population"][f"{rule}/{part}"] = {
                "lr": lr[rule][part], "iterations_to": {f"{e:g}": _iterations_to(dist, e) for e in FS_EPSILONS},
                "rate_per_iteration": iteration_rate(dist),
                "final_distance": float(dist[-1]), "distance": _downsample(np.arange(len(dist)), dist)[1]}
    gen = torch.Generator().manual_seed(int(ctx.seed) * 1000 + 11)
    bar = None
    if ctx.progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(cfg["ns"]), desc="finite-sample training", unit="n")
    for n in cfg["ns"]:
        X = torch.randn((n, d), generator=gen, dtype=torch.float64).to(ctx.device)  # drawn on the CPU
        row = {"n": n, "runs": {}}
        t0 = time.perf_counter()
        for method, batch in (("GD", None), ("SGD", cfg["batch"])):
            for rule in ("common", "matched"):
                for part in ("L", "H"):
                    if rule == "matched" and part == "H" and lr["matched"]["H"] == lr["common"]["H"]:
                        row["runs"][f"{method}/matched/H"] = row["runs"][f"{method}/common/H"]
                        continue
                    traj = train(W0, W_star, X, part, lr[rule][part], steps, batch, seed=ctx.seed + n)
                    dist = np.array([relative_distance(W, W_star) for W in traj])
                    full_grad = float(np.linalg.norm(empirical_gradient(traj[-1], W_star, X, part).cpu().numpy()) / scale)
                    stalled = bool(dist[-1] > 1e-8 and np.linalg.norm(traj[-1] - traj[-2]) / scale < 1e-12)
                    ref = pop[(part, lr[rule][part])]
                    dev = np.linalg.norm((traj - ref).reshape(len(traj), -1), axis=1) / scale
                    row["runs"][f"{method}/{rule}/{part}"] = {
                        "lr": lr[rule][part], "iterations_to": {f"{e:g}": _iterations_to(dist, e) for e in FS_EPSILONS},
                        "rate_per_iteration": iteration_rate(dist),
                        "final_distance": float(max(dist[-1], 0.0)),
                        "final_full_batch_gradient_norm": full_grad, "stalled_at_stationary_point": stalled,
                        "max_deviation_from_population": float(dev.max()),
                        "distance": _downsample(np.arange(len(dist)), np.maximum(dist, 1e-300))[1]}
        row["seconds"] = time.perf_counter() - t0
        out["samples"].append(row)
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    return out


# ----------------------------------------------------------------------------- figures
def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


COLORS = {"L": "C0", "H-mean": "C1", "H-true": "C2"}
LOSS_FLOOR = 1e-20  # losses below ~1e-16 |W*|^2 are rounding (cross terms of several nodes, numerics README)


def _fig_trajectories(runs, K, d):
    plt = _plt()
    fig, axes = plt.subplots(2, 2, figsize=(11, 7))
    for i, start in enumerate(("near", "far")):
        for r in runs:
            if r["K"] == K and r["d"] == d and r["rep"] == 0 and r["start"] == start:
                tr = r["trajectory"]
                axes[i, 0].semilogy(tr["t"], tr["distance"], color=COLORS[r["flow"]], label=r["flow"])
                axes[i, 1].semilogy(tr["t"], np.maximum(tr["loss"], LOSS_FLOOR), color=COLORS[r["flow"]], label=r["flow"])
        axes[i, 0].set_ylabel(f"{start} start: relative distance")
        axes[i, 1].set_ylabel(f"loss (L for L, H for H; floored at {LOSS_FLOOR:g})")
        axes[i, 1].set_ylim(bottom=LOSS_FLOOR / 3)
        for ax in axes[i]:
            ax.grid(alpha=0.3)
            ax.set_xlabel("time t")
            ax.legend(fontsize=8)
    fig.suptitle(f"Population gradient flows, K = K* = {K}, d = {d}")
    fig.tight_layout()
    return fig


def _fig_rates(runs):
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.5, 5))
    lo, hi = 1e9, 0
    for fl in FLOWS:
        pts = [(r.get("predicted_rate_along_run", r["predicted_rate"]), r["late_rate"]["rate"]) for r in runs
               if r["flow"] == fl and r["end"] == "teacher" and r["late_rate"]["rate"]]
        if pts:
            p, m = np.array(pts).T
            ax.scatter(p, m, s=18, color=COLORS[fl], label=fl, alpha=0.8)
            lo, hi = min(lo, p.min(), m.min()), max(hi, p.max(), m.max())
    if hi > 0:
        ax.plot([lo * 0.8, hi * 1.2], [lo * 0.8, hi * 1.2], "k--", lw=0.8, label="measured = predicted")
        ax.set_xscale("log")
        ax.set_yscale("log")
    ax.set_xlabel("predicted local rate (min Re eigenvalue)")
    ax.set_ylabel("measured late rate")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title("runs that reach the teacher")
    fig.tight_layout()
    return fig


def _fig_acceleration(acc, widths):
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, key, title in ((axes[0], "time_ratio_1e-06", "time to ε = 1e-6: T_L / T_H"),
                           (axes[1], "rate_ratio", "late rate: λ_H / λ_L")):
        for off, fl in ((-0.12, "H-mean"), (0.12, "H-true")):
            for start, marker in (("near", "o"), ("far", "^")):
                pts = [(math.log2(r["K"]) + off, r[key]) for r in acc if r["flow"] == fl and r["start"] == start
                       and key in r]
                if pts:
                    x, y = np.array(pts).T
                    ax.scatter(x, y, marker=marker, color=COLORS[fl], alpha=0.75, s=22, label=f"{fl}, {start}")
        ax.axhline(1, color="k", lw=0.8)
        ax.set_yscale("log")
        ax.set_xticks([math.log2(k) for k in widths], [str(k) for k in widths])
        ax.set_xlabel("K = K*")
        ax.set_title(title)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def _fig_kink(kink):
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for i, e in enumerate(kink["euler"]):
        ax.semilogy(e["trajectory"]["t"], e["trajectory"]["distance"], color=f"C{i + 3}", lw=0.9,
                    label=f"explicit Euler, h = {e['h']}")
    tr = kink["sliding"]["trajectory"]
    ax.semilogy(tr["t"], tr["distance"], "k-", lw=1.5, label="RK45 + sliding (Filippov)")
    if kink["hitting_time_measured"] is not None:
        ax.axvline(kink["hitting_time_measured"], color="k", ls=":", lw=0.8, label="row locks on the teacher ray")
    ax.set_xlabel("time t")
    ax.set_ylabel("relative distance")
    ax.set_title("true gradient of H, K = K* = 1, d = 5: the kink at the teacher")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def _fig_finite(fs):
    plt = _plt()
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    ns = [row["n"] for row in fs["samples"]]
    for key, style in (("GD/common/L", "o-"), ("GD/common/H", "s-"), ("GD/matched/L", "o--")):
        axes[0].loglog(ns, [row["runs"][key]["max_deviation_from_population"] for row in fs["samples"]], style,
                       label=key)
    axes[0].loglog(ns, [ns[0] ** 0.5 * fs["samples"][0]["runs"]["GD/common/L"]["max_deviation_from_population"]
                        / n**0.5 for n in ns], "k:", label="n^(-1/2)")
    axes[0].set_xlabel("samples n")
    axes[0].set_ylabel("max_k |W_k(n) - W_k(population)| / |W*|")
    axes[0].set_title("full-batch GD: distance to the population trajectory")
    big = fs["samples"][-1]
    for ax, method in ((axes[1], "GD"), (axes[2], "SGD")):
        for key, c in ((f"{method}/common/L", "C0"), (f"{method}/matched/L", "C0"), (f"{method}/common/H", "C1")):
            ls = "--" if "matched" in key else "-"
            y = big["runs"][key]["distance"]
            ax.semilogy(np.linspace(0, fs["steps"], len(y)), y, color=c, ls=ls, label=key)
        for key, c in (("common/L", "C0"), ("common/H", "C1")):
            y = fs["population"][key]["distance"]
            ax.semilogy(np.linspace(0, fs["steps"], len(y)), y, color=c, ls=":", lw=0.8, label=f"population {key}")
        ax.set_xlabel("iteration")
        ax.set_ylabel("relative distance to the teacher")
        ax.set_title(f"{method}, n = {big['n']}")
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------- the report
def _fmt(x, spec=".3g"):
    return "—" if x is None else format(x, spec)


def build(ctx: Context) -> Report:
    prof = PROFILES[ctx.profile]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _build(ctx, prof)
    finally:
        torch.set_num_threads(threads)


def _build(ctx: Context, prof: dict) -> Report:
    rep = Report(NAME, TITLE)
    t0 = time.perf_counter()
    single = theory_flow.summary()
    runs, teachers = _population_runs(ctx, prof)
    flows_seconds = time.perf_counter() - t0
    acc = _acceleration(runs)
    kink = _kink_demo(ctx, prof)
    t1 = time.perf_counter()
    fs = _finite_samples(ctx, prof)
    fs_seconds = time.perf_counter() - t1

    # ------------------------------------------------------------------ summaries
    reach = {}
    for fl in FLOWS:
        for start in ("near", "far"):
            sel = [r for r in runs if r["flow"] == fl and r["start"] == start]
            reach[f"{fl}/{start}"] = {"runs": len(sel), "teacher": sum(r["end"] == "teacher" for r in sel),
                                      "ends": {e: sum(r["end"] == e for r in sel) for e in sorted({r["end"] for r in sel})}}
    acc_stats = {}
    for fl in ("H-mean", "H-true"):
        for key in [f"time_ratio_{e:g}" for e in EPSILONS] + ["rate_ratio", "predicted_rate_ratio"]:
            acc_stats[f"{fl}/{key}"] = _stats([r.get(key) for r in acc if r["flow"] == fl])
            for K in prof["widths"]:
                acc_stats[f"{fl}/{key}/K={K}"] = _stats([r.get(key) for r in acc if r["flow"] == fl and r["K"] == K])
        acc_stats[f"{fl}/censored_time_ratio_1e-06"] = sum("time_ratio_1e-06_lower_bound" in r for r in acc if r["flow"] == fl)
    pred_err = {}
    for fl in FLOWS:
        errs = []
        for r in runs:
            if r["flow"] == fl and r["end"] == "teacher" and r["late_rate"]["rate"] and r["late_rate"]["window"] == "window":
                p = r.get("predicted_rate_along_run", r["predicted_rate"])
                errs.append(abs(r["late_rate"]["rate"] - p) / p)
        pred_err[fl] = _stats(errs)
    single_rows = [r for r in runs if r["K"] == 1 and r["end"] == "teacher" and r["late_rate"]["window"] == "window"]

    # finite-sample accelerations (iterations L / iterations H)
    def it_cmp(runs_, a, b):
        """Iterations to FS_EPS of L (run a) and H (run b), their ratio, and whether H got there first."""
        ia, ib = runs_[a]["iterations_to"][f"{FS_EPS:g}"], runs_[b]["iterations_to"][f"{FS_EPS:g}"]
        ratio = ia / ib if (ia is not None and ib) else None
        h_first = None if (ia is None and ib is None) else (ib is not None and (ia is None or ib < ia))
        return {"L": ia, "H": ib, "ratio": ratio, "H_first": h_first}

    fs_acc = []
    for row in fs["samples"]:
        fs_acc.append({"n": row["n"], **{f"{m}_{rule}": it_cmp(row["runs"], f"{m}/{rule}/L", f"{m}/{rule}/H")
                                         for m in ("GD", "SGD") for rule in ("common", "matched")}})
    pop_acc = {rule: it_cmp(fs["population"], f"{rule}/L", f"{rule}/H") for rule in ("common", "matched")}
    kappa = []
    for tch in teachers:
        p = tch["predicted"]
        kL = p["L"]["spectral_radius"] / p["L"]["rate"]
        kH = p["H-mean"]["spectral_radius"] / p["H-mean"]["rate"]
        kappa.append({"K": tch["K"], "d": tch["d"], "rep": tch["rep"], "kappa_L": kL, "kappa_H_mean": kH,
                      "matched_step_gain": kL / kH,
                      "common_step_gain": p["H-mean"]["rate"] / p["L"]["rate"]})
    kappa_stats = {f"K={K}": {"matched": _stats([k["matched_step_gain"] for k in kappa if k["K"] == K]),
                              "common": _stats([k["common_step_gain"] for k in kappa if k["K"] == K])}
                   for K in prof["widths"]}
    ns = np.array([row["n"] for row in fs["samples"]], float)
    devs = np.array([row["runs"]["GD/common/L"]["max_deviation_from_population"] for row in fs["samples"]])
    devs_H = np.array([row["runs"]["GD/common/H"]["max_deviation_from_population"] for row in fs["samples"]])
    slope_L = float(np.polyfit(np.log(ns), np.log(devs), 1)[0]) if len(ns) > 1 else None
    slope_H = float(np.polyfit(np.log(ns), np.log(devs_H), 1)[0]) if len(ns) > 1 else None

    rep.data = {
        "profile_settings": {k: v for k, v in prof.items()},
        "constants": {"epsilons": list(EPSILONS), "stop": STOP, "switch": SWITCH, "lock_angle": LOCK_ANGLE,
                      "fit_window": list(FIT_WINDOW), "rtol": RTOL, "near_distance": NEAR_DISTANCE,
                      "finite_sample_start_distance": FS_START_DISTANCE},
        "single_node_theory": single,
        "teachers": teachers,
        "runs": runs,
        "acceleration": acc,
        "acceleration_stats": acc_stats,
        "reach": reach,
        "prediction_relative_error": pred_err,
        "kink": kink,
        "finite_samples": fs,
        "finite_sample_acceleration": fs_acc,
        "population_gd_acceleration": pop_acc,
        "condition_numbers": kappa,
        "predicted_gd_gain_stats": kappa_stats,
        "deviation_slope_in_n": {"L": slope_L, "H": slope_H},
        "flows_seconds": flows_seconds,
        "finite_samples_seconds": fs_seconds,
    }
    K_fig = 4 if 4 in prof["widths"] else prof["widths"][-1]
    d_fig = 20 if 20 in prof["dims"] else prof["dims"][0]
    rep.figures = {f"{NAME}_trajectories.png": _fig_trajectories(runs, K_fig, d_fig),
                   f"{NAME}_rates.png": _fig_rates(runs),
                   f"{NAME}_acceleration.png": _fig_acceleration(acc, prof["widths"]),
                   f"{NAME}_kink.png": _fig_kink(kink),
                   f"{NAME}_finite_samples.png": _fig_finite(fs)}

    # ------------------------------------------------------------------ markdown
    s = acc_stats
    rep.add(
        "The paper's fourth claim: gradient flow on the Sobolev loss `H = L + J` converges faster than on `L`. "
        "**What \"faster\" means here**: (a) the *time* `T(ε)` for the relative distance to the teacher, "
        "`min_perm |W − W*_perm|_F / |W*|_F`, to fall to ε ∈ {1e-2, 1e-4, 1e-6}; (b) the *late exponential rate* "
        "`−d log(distance)/dt`, fitted by least squares where the distance lies in "
        f"[{FIT_WINDOW[0]:g}, {FIT_WINDOW[1]:g}]. Acceleration = `T_L / T_H` and `λ_H / λ_L` (> 1: H faster). "
        "Flows: **L** (mean field of `L` = its true gradient), **H-mean** (mean field of `H`, what autograd's "
        "per-sample gradient averages to — the paper's convention) and **H-true** (true gradient of the "
        "population `H`).")
    # single node
    sL, sH = single["L"], single["H"]
    lines = ["## 1. Single node: predicted rates (SymPy, `theory.flow`)", "",
             "Linearisation = Jacobian of the mean field (`numerics.hessian(..., \"mean\")`), from "
             "`theory.paper.single_node_hessian`. Near the teacher it is `E B Eᵀ + s I` in the plane of `(w, w*)`, "
             "so its eigenvalues are those of `B + s I₂` and `s` (`d − 2` times):", "",
             "| flow | eigenvalues at angle θ (norms `n_a = |w|`, `n_b = |w*|`) | limit θ → 0, `n_b = n_a` | "
             "limiting `B₁₂` | predicted rate |", "|---|---|---|---|---|",
             f"| L | {', '.join('`' + e + '`' for e in sL['eigenvalues_near_teacher'])} | "
             f"{', '.join(f'{x:g}' for x in sL['limit_eigenvalues'])} | {sL['limit_B12']:.4g} | **{sL['rate']:g}** |",
             f"| H-mean | {', '.join('`' + e + '`' for e in sH['eigenvalues_near_teacher'])} | "
             f"{', '.join(f'{x:g}' for x in sH['limit_eigenvalues'])} | {sH['limit_B12']:.4g} (= −1/2π) | "
             f"**{sH['rate']:g}** |",
             f"| H-true | no Jacobian at the teacher: jump `{single['H-true']['boundary_jump_at_teacher']}` across the "
             f"teacher ray | radial rate on the ray | — | **{single['H-true']['sliding_radial_rate']:g}** |", "",
             "For `L` the Jacobian exists at the teacher and is `I/2`. For `H` it does not exist (the matrix's limit "
             "depends on the approach direction through `e₂`), but its eigenvalues have a direction-free limit, all "
             "equal to 1, with a non-zero Jordan coupling `B₁₂ → −1/2π`: the distance decays like `(a + bt) e^{−t}`, "
             "so a fitted rate approaches 1 from below (bias ≈ 1/t). The true gradient of `H` reaches the teacher's "
             "ray in finite time (first order: `t = log(1 + 2π p₀/|w*|)`, `p₀` the orthogonal distance) and then "
             "slides on it with radial rate 1. **Predicted single-node acceleration: rate ratio "
             f"{single['rate_ratio_H_mean_over_L']:g} (H-mean and H-true), hence `T_L/T_H → 2` as ε → 0.**"]
    if single_rows:
        lines += ["", "Measured (K = 1 runs that reach the teacher, fit window as above):", "",
                  "| d | start | flow | measured rate | predicted | T(1e-6) |", "|---|---|---|---|---|---|"]
        for r in single_rows:
            lines.append(f"| {r['d']} | {r['start']} | {r['flow']} | {r['late_rate']['rate']:.4f} | "
                         f"{r['predicted_rate']:.4g} | {_fmt(r['time_to']['1e-06'], '.2f')} |")
    if kink["hitting_time_measured"] is not None:
        lines += ["", f"Finite-time arrival on the teacher ray (H-true, K = 1, d = 5): measured t = "
                      f"{kink['hitting_time_measured']:.3f}, first-order prediction {kink['hitting_time_predicted_first_order']:.3f}."]
    rep.add("\n".join(lines))

    # many nodes: predicted vs measured
    lines = ["## 2. Predicted against measured rates", "",
             "Predictions for K ≥ 1: **L**: smallest real eigenvalue of `numerics.hessian(W*, W*, \"L\", \"mean\")` "
             "(exists at the teacher). **H-mean**: the Jacobian does not exist at the teacher, so the spectrum is "
             f"taken at `W* + Δ` with `|Δ| = 1e-7 |W*|` along {prof['directions']} random directions (median of the "
             "smallest real parts; the spread over directions is in the JSON), and, for each run that reaches the "
             "teacher, at the run's last point (distance ≈ 1e-9) — the prediction *along the approach* used below. "
             "**H-true**: smallest eigenvalue of the K×K radial Jacobian on the sliding manifold (rows on their "
             "teacher rays; central differences of the mean field).", "",
             "| flow | runs compared | median rel. error | max rel. error |", "|---|---|---|---|"]
    for fl in FLOWS:
        e = pred_err[fl]
        lines.append(f"| {fl} | {e['n']} | {_fmt(e.get('median'))} | {_fmt(e.get('max'))} |")
    lines += ["", f"![rates]({NAME}_rates.png)", "",
              "*Measured late rate against the predicted local rate, every run that reaches the teacher "
              "(H-mean: predicted along the run's own approach).*", "",
              "| K | d | L: λ_min, λ_max | H-mean: λ_min (range over directions), max Re λ | H-true: radial λ_min |",
              "|---|---|---|---|---|"]
    for tch in teachers:
        if tch["rep"]:
            continue
        p = tch["predicted"]
        lines.append(f"| {tch['K']} | {tch['d']} | {p['L']['rate']:.3g}, {p['L']['max_real']:.3g} | "
                     f"{p['H-mean']['rate']:.3g} ({p['H-mean']['rate_min_over_directions']:.3g}–"
                     f"{p['H-mean']['rate_max_over_directions']:.3g}), {p['H-mean']['max_real']:.3g} | "
                     f"{p['H-true']['rate']:.3g} |")
    rep.add("\n".join(lines))

    # runs
    lines = ["## 3. The runs", "",
             f"Teachers: rows `N(0, I_d/d)`, seeded; starts **near** (relative distance {NEAR_DISTANCE}) and **far** "
             "(an independent draw of the same law). K = K* ∈ "
             f"{list(prof['widths'])}, d ∈ {list(prof['dims'])}, {prof['reps']} teacher(s) each. `solve_ivp` RK45, "
             f"rtol {RTOL:g}; absolute tolerance `1e-9|W*|/√(Kd)` far from the teacher and "
             f"`{1e-3 * STOP:g}|W*|/√(Kd)` after re-centring on the matched teacher below distance {SWITCH:g}; "
             f"a run stops at distance {STOP:g} or at t = {prof['t_max']:g}. H-true: Filippov sliding with lock "
             f"angle {LOCK_ANGLE:g} rad (the flow would reach the ray within ≈ 2π·{LOCK_ANGLE:g} time units of the "
             "lock, so the projection changes times by less than 1e-5).", "",
             f"![trajectories]({NAME}_trajectories.png)", "",
             "| flow | start | runs | reach the teacher (≤ 1e-6) | where the others end |", "|---|---|---|---|---|"]
    for key, v in reach.items():
        fl, start = key.split("/")
        others = ", ".join(f"{e}: {c}" for e, c in v["ends"].items() if e != "teacher") or "—"
        lines.append(f"| {fl} | {start} | {v['runs']} | {v['teacher']} ({v['teacher'] / max(v['runs'], 1):.0%}) | {others} |")
    lines += ["", "<details><summary>every run</summary>", "",
              "| K | d | rep | start | flow | end | T(1e-2) | T(1e-4) | T(1e-6) | late rate (window) | predicted | RHS evals |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in runs:
        lr_ = r["late_rate"]
        lines.append(f"| {r['K']} | {r['d']} | {r['rep']} | {r['start']} | {r['flow']} | {r['end']} | "
                     + " | ".join(_fmt(r["time_to"][f"{e:g}"], ".2f") for e in EPSILONS)
                     + f" | {_fmt(lr_['rate'], '.4f')} ({lr_['window']}) | "
                     f"{_fmt(r.get('predicted_rate_along_run', r['predicted_rate']), '.4f')} | {r['nfev']} |")
    lines += ["", "</details>"]
    rep.add("\n".join(lines))

    # acceleration
    lines = ["## 4. Acceleration on the population flows", "",
             "Per instance (teacher × start), `T_L(ε)/T_H(ε)` where both reach ε, and `λ_H/λ_L` of the fitted late "
             "rates; quartiles over instances. Where `L` does not reach 1e-6 in the time allowed but `H` does, only "
             "a lower bound exists (`censored`, not in the quartiles).", "",
             "| H flow | K | T_L/T_H at 1e-2 | at 1e-4 | at 1e-6 | λ_H/λ_L measured | λ_H/λ_L predicted |",
             "|---|---|---|---|---|---|---|"]

    def q(st):
        return "—" if not st.get("n") else f"{st['median']:.2f} [{st['q25']:.2f}, {st['q75']:.2f}] (n={st['n']})"

    for fl in ("H-mean", "H-true"):
        for K in list(prof["widths"]) + ["all"]:
            suf = "" if K == "all" else f"/K={K}"
            lines.append(f"| {fl} | {K} | " + " | ".join(q(s[f"{fl}/time_ratio_{e:g}{suf}"]) for e in EPSILONS)
                         + f" | {q(s[f'{fl}/rate_ratio{suf}'])} | {q(s[f'{fl}/predicted_rate_ratio{suf}'])} |")
    lines += ["", "**Per iteration of gradient descent** near the teacher (predicted from the spectra, every teacher): at "
              "a common step the gain is `λ_min(H)/λ_min(L)`; with each loss's own step η = 1/ρ it is `κ_L/κ_H`, "
              "κ = ρ/λ_min (H: the mean-field Jacobian along approach directions).", "",
              "| K | common step: λ_min(H-mean)/λ_min(L) | curvature-matched: κ_L/κ_H |", "|---|---|---|"]
    for K in prof["widths"]:
        ks = kappa_stats[f"K={K}"]
        lines.append(f"| {K} | {q(ks['common'])} | {q(ks['matched'])} |")
    lines += ["", f"Censored instances (L not at 1e-6 by t_max, H there): H-mean {s['H-mean/censored_time_ratio_1e-06']}, "
                  f"H-true {s['H-true/censored_time_ratio_1e-06']}.", "",
              f"![acceleration]({NAME}_acceleration.png)", "",
              "*Acceleration per instance against the width (circles: near starts; triangles: far starts).*"]
    rep.add("\n".join(lines))

    # kink
    lines = ["## 5. The true gradient of H at the teacher: what a fixed step does", "",
             "The true gradient of `H` jumps by `|w*|/2π` across the teacher ray. Explicit Euler with step `h` "
             "overshoots the ray every step and chatters: the distance stalls at a floor proportional to `h` (about "
             "`h|w*|/4π`: the orthogonal jump per step is `h|w*|/2π`, and the iterate alternates around the ray). "
             f"A plain adaptive RK45 (rtol {RTOL:g}) keeps rejecting steps at the kink "
             f"(capped at {prof['rk_cap']} evaluations). The sliding treatment (section 3) has neither problem.", "",
             "| method | step | floor of the distance (last quarter) | floor / (h/2π) |", "|---|---|---|---|"]
    for e in kink["euler"]:
        lines.append(f"| explicit Euler | {e['h']} | {e['floor_distance']:.3g} | {e['floor_over_h_over_2pi']:.3g} |")
    rk = kink["plain_rk45"]
    lines.append(f"| plain RK45 | adaptive | {'completed' if rk['completed'] else 'stopped at the cap'}: t reached "
                 f"{rk['t_reached']:.3g} of {prof['euler_t']:g} with {rk['nfev']} evaluations | — |")
    sl = kink["sliding"]
    lines.append(f"| RK45 + sliding | adaptive | reaches {sl['final_distance']:.2g} at t = {sl['t_end']:.3g} "
                 f"with {sl['nfev']} evaluations | — |")
    lines += ["", f"![kink]({NAME}_kink.png)"]
    rep.add("\n".join(lines))

    # finite samples
    lr = fs["step_sizes"]
    lines = ["## 6. Finite samples, real autograd", "",
             f"The PyTorch student `g(x; W) = Σ relu(w_j·x)` (float64), K = K* = {fs['K']}, d = {fs['d']}, start at "
             f"relative distance {fs['start_distance']:.2f}, trained for {fs['steps']} iterations on n fixed samples "
             "by full-batch gradient descent (GD) and by SGD (minibatches of "
             f"{fs['batch']} drawn with replacement), the Sobolev loss built with autograd (`∇ₓg` with "
             "`create_graph=True`). Reference: population GD (the mean field, `numerics.gradient`) with the same "
             "step. The teacher interpolates every sample, so training can reach it exactly.", "",
             "**Step sizes.** *Common*: η = 1/ρ_H for both losses, ρ_H the spectral radius of the mean-field "
             "Jacobian of `H` near the teacher (the largest stable-and-safe step for `H`, also stable for `L`). "
             "*Curvature-matched*: each loss its own η = 1/ρ (ρ_L for `L`, ρ_H for `H`), so the contraction per "
             "step near the teacher is about `1 − λ_min/λ_max`: a comparison of condition numbers, which is "
             f"the fair comparison of speed per iteration. Here η_common = {lr['common']['L']:.4g}, "
             f"η_L = {lr['matched']['L']:.4g}, η_H = {lr['matched']['H']:.4g}.", "",
             f"Acceleration = iterations for `L` to reach relative distance {FS_EPS:g} over those for `H` "
             "(`L` / `H` iterations in the table; — : not reached). *Stalled*: the full-batch autograd gradient "
             "vanished (to rounding) at a point that is not the teacher.", "",
             "| n | GD: max deviation from population, L | H | GD common: iterations L / H (ratio) | GD matched | "
             "SGD common | SGD matched | final distance GD L / H (common) | SGD L / H (common) |",
             "|---|---|---|---|---|---|---|---|---|"]

    def cell(c):
        return f"{_fmt(c['L'], 'd')} / {_fmt(c['H'], 'd')} ({_fmt(c['ratio'], '.2f')})"

    def fin(run_):
        tag = " (stalled)" if run_.get("stalled_at_stationary_point") else ""
        return f"{run_['final_distance']:.2g}{tag}"

    for row, a_ in zip(fs["samples"], fs_acc):
        R = row["runs"]
        lines.append(f"| {row['n']} | {R['GD/common/L']['max_deviation_from_population']:.3g} | "
                     f"{R['GD/common/H']['max_deviation_from_population']:.3g} | {cell(a_['GD_common'])} | "
                     f"{cell(a_['GD_matched'])} | {cell(a_['SGD_common'])} | {cell(a_['SGD_matched'])} | "
                     f"{fin(R['GD/common/L'])} / {fin(R['GD/common/H'])} | {fin(R['SGD/common/L'])} / {fin(R['SGD/common/H'])} |")
    lines.append(f"| population | 0 | 0 | {cell(pop_acc['common'])} | {cell(pop_acc['matched'])} | — | — | "
                 f"{fs['population']['common/L']['final_distance']:.2g} / {fs['population']['common/H']['final_distance']:.2g} | — |")
    stalled = [(row["n"], key, run_["final_distance"]) for row in fs["samples"] for key, run_ in row["runs"].items()
               if run_.get("stalled_at_stationary_point")
               and not (key.endswith("matched/H") and run_ is row["runs"][key.replace("matched", "common")])]
    if stalled:
        lines += ["", "**Stalls.** " + "; ".join(f"n = {n}, {key}: stationary at distance {dist:.2g}"
                                                for n, key, dist in dict.fromkeys(stalled)) + ". "
                  "The per-sample Sobolev loss `ℓ_J` jumps when a row's hyperplane crosses a sample (the indicator "
                  "flips); autograd does not see the jump, and a sample caught between `w_j` and `w*_j` contributes "
                  "an O(|w_j|/n) term to the gradient that can balance the O(λ distance) pull towards the teacher. "
                  "The autograd gradient then vanishes exactly at distance O(1/n) from the teacher: full-batch GD on "
                  "`H` stops there, while `L` (continuous per-sample loss) and SGD (a different minibatch each step) "
                  "go on to the teacher."]
    lines += ["", f"Deviation from the population trajectory against n: log-log slope {_fmt(slope_L, '.2f')} (L), "
                  f"{_fmt(slope_H, '.2f')} (H); `n^(-1/2)` is −0.5.", "",
              f"![finite samples]({NAME}_finite_samples.png)"]
    rep.add("\n".join(lines))

    # verdict
    tm = s["H-mean/time_ratio_1e-06"]
    rr = s["H-mean/rate_ratio"]
    tt = s["H-true/time_ratio_1e-06"]
    faster = (tm.get("n") and tm["q25"] > 1) and (rr.get("n") and rr["q25"] > 1)
    gd_first = [a_["GD_common"]["H_first"] for a_ in fs_acc]
    survives = sum(bool(x) for x in gd_first) >= max(1, (len(gd_first) + 1) // 2) and bool(gd_first[-1])
    fs_common = [a_["GD_common"]["ratio"] for a_ in fs_acc]
    fs_matched = [a_["GD_matched"]["ratio"] for a_ in fs_acc]
    matched_vals = [x for x in fs_matched if x]
    matched_gain = float(np.median(matched_vals)) if matched_vals else None
    kc = _stats([k["common_step_gain"] for k in kappa])
    km = _stats([k["matched_step_gain"] for k in kappa])
    if faster and survives:
        verdict = "confirmed with qualifications"
    elif faster or survives:
        verdict = "inconclusive"
    else:
        verdict = "refuted"
    fr = lambda fl, st: f"{reach[f'{fl}/{st}']['teacher']}/{reach[f'{fl}/{st}']['runs']}"  # noqa: E731
    summary_txt = (
        f"population flow, time to 1e-6: T_L/T_H median {_fmt(tm.get('median'), '.2f')} "
        f"[IQR {_fmt(tm.get('q25'), '.2f')}–{_fmt(tm.get('q75'), '.2f')}] (H-mean), {_fmt(tt.get('median'), '.2f')} (H-true); "
        f"late rates λ_H/λ_L median {_fmt(rr.get('median'), '.2f')} [{_fmt(rr.get('q25'), '.2f')}–{_fmt(rr.get('q75'), '.2f')}] "
        f"(single node: exactly 2, derived); reach the teacher from far starts: L {fr('L', 'far')}, "
        f"H-mean {fr('H-mean', 'far')}, H-true {fr('H-true', 'far')}; autograd full-batch GD on n = "
        f"{', '.join(str(r['n']) for r in fs['samples'])} samples, "
        f"iterations to {FS_EPS:g} L/H: {', '.join(_fmt(x, '.2f') for x in fs_common)} at a common step, "
        f"{', '.join(_fmt(x, '.2f') for x in fs_matched)} with curvature-matched steps "
        f"(population GD: {_fmt(pop_acc['common']['ratio'], '.2f')} and {_fmt(pop_acc['matched']['ratio'], '.2f')}); "
        f"predicted per-iteration gain over all teachers: median {_fmt(kc.get('median'), '.2f')} at a common step, "
        f"{_fmt(km.get('median'), '.2f')} [{_fmt(km.get('min'), '.2f')}–{_fmt(km.get('max'), '.2f')}] with "
        "curvature-matched steps")
    rep.add("\n".join([
        "## Verdict", "",
        f"**Claim 4: {verdict}.** {summary_txt}.", "",
        "Conditions and conventions: the acceleration is measured on the **mean-field** flow (what autograd "
        "follows, the paper's convention); the true-gradient flow of the population `H` accelerates more, "
        "because its rows reach the teacher rays in finite time. \"Faster\" holds in *time* (equivalently, at a "
        "common step size), because `H` has larger curvature: for one node the rate doubles exactly (½ → 1). "
        "With a step matched to each loss's own curvature (η = 1/ρ) the asymptotic per-iteration gain is only the "
        "ratio of condition numbers κ_L/κ_H, which is **exactly 1 for a single node** (both spectra are single "
        f"points) and smaller than the common-step gain for K ≥ 2 (median {_fmt(km.get('median'), '.2f')} against "
        f"{_fmt(kc.get('median'), '.2f')}, predicted over all teachers); the finite-sample runs measure "
        f"{_fmt(matched_gain, '.2f')} (median; iterations to {FS_EPS:g}, which includes the non-linear start where "
        "`H` gains more). Far starts: more runs reach the teacher within the time allowed under `H` than "
        f"under `L`, but for K ≥ 4 many runs of both are still on their way at t = {prof['t_max']:g} (slow modes of "
        f"`L`, λ_min as small as {min(t_['predicted']['L']['rate'] for t_ in teachers):.2g}), so the fractions are "
        "time-limited, not basins of attraction. Finite samples: autograd training "
        f"tracks population GD with a deviation ∝ n^(−1/2) (fitted slope {_fmt(slope_L, '.2f')} for L, "
        f"{_fmt(slope_H, '.2f')} for H); at a common step full-batch GD on `H` reaches {FS_EPS:g} first for "
        f"n ∈ {{{', '.join(str(a_['n']) for a_ in fs_acc if a_['GD_common']['H_first'])}}}"
        + (f" but not for n ∈ {{{', '.join(str(a_['n']) for a_ in fs_acc if not a_['GD_common']['H_first'])}}}"
           if not all(a_["GD_common"]["H_first"] for a_ in fs_acc) else "")
        + ". Full-batch GD on the autograd Sobolev loss can stall at a spurious stationary point O(1/n) from the "
        "teacher (section 6; "
        + (f"{len({(n, k) for n, k, _ in stalled})} run(s) here" if stalled else "none in this profile's runs")
        + "), which L training and SGD do not."]))

    rep.verdicts = [{
        "claim": 4,
        "verdict": verdict,
        "convention": "mean-field (autograd) gradient flow, K = K*, x ~ N(0, I); faster = time to relative distance "
                      f"1e-6 and late exponential rate: T_L/T_H median {_fmt(tm.get('median'), '.2f')}, rate ratio median "
                      f"{_fmt(rr.get('median'), '.2f')} (exactly 2 for one node), i.e. at a common GD step; with steps "
                      f"matched to each loss's curvature (η = 1/ρ) the gain is only κ_L/κ_H (predicted median "
                      f"{_fmt(km.get('median'), '.2f')}; exactly 1 for one node); full-batch autograd GD on H may stall "
                      "O(1/n) from the teacher",
        "evidence": f"{NAME}.md",
    }]
    return rep


def main(argv=None) -> int:
    return run(sys.modules[__name__], argv)


if __name__ == "__main__":
    raise SystemExit(run(sys.modules[__name__]))
