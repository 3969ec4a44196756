"""Compute layer of the gradient-flow report: every number, as plain data (no Markdown, no figures).

:func:`compute` runs the population flows (:mod:`numerics.flows`), the fixed-step demonstration
at the kink, and the finite-sample autograd training (:mod:`verify.experiments.finite_sample`),
and returns their numbers.  It decides nothing: where a run ends and whether a training run
stalled are the judge's (:func:`.judge.run_end`, :func:`.judge.is_stalled`), from the numbers
recorded here for them (``final_distance``, ``late_rate``, ``final_field_norm``, ``status``;
``final_step_norm``); the report's JSON ``data`` is those numbers with the judge's labels put in
(:func:`.judge.labelled`).
"""
from __future__ import annotations

import math
import time

import numpy as np
import torch
from scipy.integrate import solve_ivp

import numerics
from numerics.flows import (FIT_WINDOW, FLOWS, LOCK_ANGLE, MAX_NFEV, RECENTER_DISTANCE, RTOL, STOP, EvalCap,
                            align, fit_rate, flow_field, integrate, iteration_rate, iterations_to, population_gd,
                            radial_jacobian, relative_distance, time_to)
from theory import flow as theory_flow
from verify.experiments.finite_sample import empirical_gradient, train_finite_sample
from verify.report import Context, progress

EPSILONS = (1e-2, 1e-4, 1e-6)
NEAR_DISTANCE = 0.2  # relative distance of the "near" starts
FS_START_DISTANCE = 0.5  # relative distance of the finite-sample start
FS_EPS = 1e-3  # finite-sample acceleration: iterations to this relative distance
FS_EPSILONS = (1e-2, 1e-3, 1e-4, 1e-6)
# H-mean runs that end within this relative distance of the teacher (those that have a T(1e-6)) get the spectrum of
# the Jacobian at their last point: what the measured late rate is compared with (a measurement's scope, not a label)
ALONG_RUN_WITHIN = EPSILONS[-1]


# ----------------------------------------------------------------------------- one run
def downsample(t, y, n=48):
    """About ``n`` evenly spaced points of a curve (always its first and last)."""
    idx = np.unique(np.linspace(0, len(t) - 1, n).round().astype(int))
    return [float(t[i]) for i in idx], [float(y[i]) for i in idx]


def measure_flow(W0, W_star, flow, t_max, max_nfev: int = MAX_NFEV) -> dict:
    """One run's numbers: trajectory summary, times to each epsilon, late rate, the integrator's status, the
    final distance and the norm of the flow field at the last point relative to ``|W*|`` (``final_field_norm``),
    and the last point ``W_end``.  Where the run ends is :func:`.judge.run_end`'s (from these numbers)."""
    start = time.perf_counter()
    res = integrate(W0, W_star, flow, t_max=t_max, max_nfev=max_nfev)
    dist = np.array([align(W, W_star)[0] for W in res["W"]])
    dist = np.maximum(dist, 1e-300)
    fit = fit_rate(res["t"], dist)
    field = np.linalg.norm(flow_field(flow, res["W"][-1], W_star, res["locked_at_end"])) / np.linalg.norm(W_star)
    part = "L" if flow == "L" else "H"
    ts, ds = downsample(res["t"], dist)
    idx = [int(np.argmin(np.abs(res["t"] - x))) for x in ts]
    loss = [max(numerics.loss(res["W"][i], W_star, part), 0.0) for i in idx]
    return {"flow": flow, "status": res["status"], "t_end": float(res["t"][-1]),
            "final_distance": float(dist[-1]), "final_field_norm": float(field), "nfev": res["nfev"],
            "steps": int(len(res["t"]) - 1),
            "time_to": {f"{e:g}": time_to(res["t"], dist, e) for e in EPSILONS},
            "late_rate": fit, "locks": res["locks"], "trajectory": {"t": ts, "distance": ds, "loss": loss},
            "W_end": res["W"][-1], "seconds": time.perf_counter() - start}


# ----------------------------------------------------------------------------- predicted rates
def predicted_rates(W_star: np.ndarray, rng: np.random.Generator, directions: int, t: float = 1e-7) -> dict:
    """Spectra of the linearised flows at (or, for H-mean, along approaches to) the teacher."""
    eL = np.linalg.eigvals(numerics.hessian(W_star, W_star, "L", "mean"))
    out = {"L": {"rate": float(eL.real.min()), "max_real": float(eL.real.max()),
                 "spectral_radius": float(np.abs(eL).max())}}
    mins, maxs, radii = [], [], []
    for _ in range(directions):
        D = rng.standard_normal(W_star.shape)
        D *= t * np.linalg.norm(W_star) / np.linalg.norm(D)
        e = np.linalg.eigvals(numerics.hessian(W_star + D, W_star, "H", "mean"))
        mins.append(float(e.real.min()))
        maxs.append(float(e.real.max()))
        radii.append(float(np.abs(e).max()))
    out["H-mean"] = {"rate": float(np.median(mins)), "rate_min_over_directions": min(mins),
                     "rate_max_over_directions": max(mins), "max_real": max(maxs), "spectral_radius": max(radii),
                     "directions": directions, "approach_distance": t}
    eR = np.linalg.eigvals(radial_jacobian(W_star))
    out["H-true"] = {"rate": float(eR.real.min()), "max_real": float(eR.real.max())}
    return out


def rate_along_run(W_end: np.ndarray, W_star: np.ndarray) -> dict:
    """Spectrum of the H-mean Jacobian at a run's last point (just short of the teacher)."""
    e = np.linalg.eigvals(numerics.hessian(W_end, W_star, "H", "mean"))
    return {"min_real": float(e.real.min()), "eigenvalues_real": sorted(float(x) for x in e.real)}


# ----------------------------------------------------------------------------- population flows
def draw_teacher(rng, K, d):
    """Teacher rows ``N(0, I_d/d)``."""
    return rng.standard_normal((K, d)) / math.sqrt(d)


def near_start(rng, W_star, distance):
    """``W*`` plus a random perturbation of relative size ``distance``."""
    D = rng.standard_normal(W_star.shape)
    return W_star + distance * np.linalg.norm(W_star) * D / np.linalg.norm(D)


def _teacher_runs(seed: int, K: int, d: int, rep: int, prof: dict, bar) -> tuple:
    """One teacher: its predicted rates and the runs of every flow from a near and a far start."""
    rng = np.random.default_rng([seed, K, d, rep])
    W_star = draw_teacher(rng, K, d)
    t0 = time.perf_counter()
    pred = predicted_rates(W_star, rng, prof["directions"])
    teacher = {"K": K, "d": d, "rep": rep, "predicted": pred, "prediction_seconds": time.perf_counter() - t0}
    starts = {"near": near_start(rng, W_star, NEAR_DISTANCE), "far": draw_teacher(rng, K, d)}
    runs = []
    for start, W0 in starts.items():
        for fl in FLOWS:
            r = measure_flow(W0, W_star, fl, prof["t_max"], prof["max_nfev"])
            W_end = r.pop("W_end")
            r.update({"K": K, "d": d, "rep": rep, "start": start, "start_distance": relative_distance(W0, W_star)})
            r["predicted_rate"] = pred[fl]["rate"]
            if fl == "H-mean" and r["final_distance"] <= ALONG_RUN_WITHIN:
                along = rate_along_run(W_end, W_star)
                r["predicted_rate_along_run"] = along["min_real"]
                ev = np.array(along["eigenvalues_real"])
                if r["late_rate"]["rate"] is not None:
                    r["nearest_eigenvalue_along_run"] = float(ev[np.argmin(np.abs(ev - r["late_rate"]["rate"]))])
            runs.append(r)
            bar.update(1)
    return runs, teacher


def population_runs(ctx: Context, prof: dict) -> tuple:
    """Every teacher (width × dimension × repetition) and every run: ``(runs, teachers)``."""
    instances = [(K, d, rep) for K in prof["widths"] for d in prof["dims"] for rep in range(prof["reps"])]
    runs, teachers = [], []
    with progress(ctx, len(instances) * 2 * len(FLOWS), "gradient flows", "run") as bar:
        for K, d, rep in instances:
            r, tch = _teacher_runs(ctx.seed, K, d, rep, prof, bar)
            runs += r
            teachers.append(tch)
    return runs, teachers


def acceleration(runs: list) -> list:
    """Per instance and H flow: ``T_L/T_H`` at each epsilon (or its lower bound), measured and predicted ``λ_H/λ_L``."""
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


def stats(values) -> dict:
    """``n``, min, quartiles, max and geometric mean of the values that are not ``None`` (``{"n": 0}``: none)."""
    v = np.array([x for x in values if x is not None], float)
    if not len(v):
        return {"n": 0}
    q = np.percentile(v, [0, 25, 50, 75, 100])
    return {"n": int(len(v)), "min": float(q[0]), "q25": float(q[1]), "median": float(q[2]), "q75": float(q[3]),
            "max": float(q[4]), "geometric_mean": float(np.exp(np.log(v).mean()))}


# ----------------------------------------------------------------------------- the kink of H-true
def _euler_run(W0, W_star, h: float, t_end: float) -> dict:
    """Explicit Euler on the true gradient of H: the floor of the distance over the last quarter."""
    W = W0.copy()
    n = int(round(t_end / h))
    dist = [relative_distance(W, W_star)]
    for _ in range(n):
        W = W - h * numerics.gradient(W, W_star, "H", "true")
        dist.append(relative_distance(W, W_star))
    dist = np.array(dist)
    tt = h * np.arange(n + 1)
    tail = dist[tt >= 0.75 * t_end]
    ts, ds = downsample(tt, np.maximum(dist, 1e-300), 120)
    return {"h": h, "steps": n, "floor_distance": float(tail.mean()),
            "floor_over_h_over_2pi": float(tail.mean() / (h / (2 * np.pi))), "trajectory": {"t": ts, "distance": ds}}


def _plain_rk45(W0, W_star, t_end: float, cap: int) -> dict:
    """Plain RK45 on the discontinuous true gradient of H, capped at ``cap`` evaluations."""
    d = W0.shape[1]
    nfev = [0]
    reached = [0.0]

    def rhs(t, y):
        nfev[0] += 1
        if nfev[0] > cap:
            raise EvalCap
        reached[0] = max(reached[0], t)
        return -numerics.gradient(y.reshape(1, d), W_star, "H", "true").ravel()

    t0 = time.perf_counter()
    try:
        sol = solve_ivp(rhs, (0, t_end), W0.ravel(), method="RK45", rtol=RTOL, atol=1e-12)
        rk = {"completed": True, "t_reached": float(sol.t[-1]), "nfev": nfev[0],
              "final_distance": relative_distance(sol.y[:, -1].reshape(1, d), W_star)}
    except EvalCap:
        rk = {"completed": False, "t_reached": reached[0], "nfev": cap}
    rk["seconds"] = time.perf_counter() - t0
    return rk


def kink_demo(ctx: Context, prof: dict) -> dict:
    """What fixed-step Euler and plain RK45 do on the true gradient of H (K = 1), against the sliding flow."""
    rng = np.random.default_rng([ctx.seed, 99])
    d = 5
    W_star = draw_teacher(rng, 1, d)
    W0 = near_start(rng, W_star, NEAR_DISTANCE)
    out = {"d": d, "start_distance": relative_distance(W0, W_star), "euler": []}
    sliding = measure_flow(W0, W_star, "H-true", prof["euler_t"], prof["max_nfev"])
    sliding.pop("W_end")
    out["sliding"] = sliding
    lock = [e for e in sliding["locks"] if e["event"] == "lock"]
    w, ws = W0[0], W_star[0]
    u = ws / np.linalg.norm(ws)
    perp = np.linalg.norm(w - (u @ w) * u)
    out["hitting_time_measured"] = lock[0]["t"] if lock else None
    out["hitting_time_predicted_first_order"] = theory_flow.angular_hitting_time(perp, float(np.linalg.norm(ws)))
    for h in prof["euler_h"]:
        out["euler"].append(_euler_run(W0, W_star, h, prof["euler_t"]))
    out["plain_rk45"] = _plain_rk45(W0, W_star, prof["euler_t"], prof["rk_cap"])
    return out


# ----------------------------------------------------------------------------- finite samples
def _trajectory_summary(traj, W_star, lr: float) -> tuple:
    dist = np.array([relative_distance(W, W_star) for W in traj])
    return dist, {"lr": lr, "iterations_to": {f"{e:g}": iterations_to(dist, e) for e in FS_EPSILONS},
                  "rate_per_iteration": iteration_rate(dist)}


def _population_reference(W0, W_star, lr: dict, steps: int) -> tuple:
    """Population GD at every (step rule, loss): trajectories by ``(part, lr)`` and their summaries."""
    pop, summary = {}, {}
    for rule in ("common", "matched"):
        for part in ("L", "H"):
            key = (part, lr[rule][part])
            if key not in pop:
                pop[key] = population_gd(W0, W_star, part, lr[rule][part], steps)
            dist, s = _trajectory_summary(pop[key], W_star, lr[rule][part])
            summary[f"{rule}/{part}"] = {**s, "final_distance": float(dist[-1]),
                                         "distance": downsample(np.arange(len(dist)), dist)[1]}
    return pop, summary


def _sample_runs(W0, W_star, X, cfg: dict, lr: dict, pop: dict, seed: int) -> dict:
    """GD and SGD at both step rules on one sample set ``X``."""
    scale = np.linalg.norm(W_star)
    runs = {}
    for method, batch in (("GD", None), ("SGD", cfg["batch"])):
        for rule in ("common", "matched"):
            for part in ("L", "H"):
                if rule == "matched" and part == "H" and lr["matched"]["H"] == lr["common"]["H"]:
                    runs[f"{method}/matched/H"] = runs[f"{method}/common/H"]
                    continue
                traj = train_finite_sample(W0, W_star, X, part, lr[rule][part], cfg["steps"], batch, seed=seed)
                dist, s = _trajectory_summary(traj, W_star, lr[rule][part])
                full_grad = float(np.linalg.norm(empirical_gradient(traj[-1], W_star, X, part).cpu().numpy()) / scale)
                last_step = float(np.linalg.norm(traj[-1] - traj[-2]) / scale)  # judge.is_stalled reads it
                ref = pop[(part, lr[rule][part])]
                dev = np.linalg.norm((traj - ref).reshape(len(traj), -1), axis=1) / scale
                runs[f"{method}/{rule}/{part}"] = {
                    **s, "final_distance": float(max(dist[-1], 0.0)),
                    "final_full_batch_gradient_norm": full_grad, "final_step_norm": last_step,
                    "max_deviation_from_population": float(dev.max()),
                    "distance": downsample(np.arange(len(dist)), np.maximum(dist, 1e-300))[1]}
    return runs


def finite_samples(ctx: Context, prof: dict) -> dict:
    """Autograd GD and SGD on ``n`` samples for each ``n`` of the profile, against population GD."""
    cfg = prof["fs"]
    K, d = cfg["K"], cfg["d"]
    rng = np.random.default_rng([ctx.seed, 7, K, d])
    W_star = draw_teacher(rng, K, d)
    W0 = near_start(rng, W_star, FS_START_DISTANCE)
    pred = predicted_rates(W_star, rng, prof["directions"])
    lr = {"common": {"L": 1 / pred["H-mean"]["spectral_radius"], "H": 1 / pred["H-mean"]["spectral_radius"]},
          "matched": {"L": 1 / pred["L"]["spectral_radius"], "H": 1 / pred["H-mean"]["spectral_radius"]}}
    pop, pop_summary = _population_reference(W0, W_star, lr, cfg["steps"])
    out = {"K": K, "d": d, "steps": cfg["steps"], "batch": cfg["batch"],
           "start_distance": relative_distance(W0, W_star), "step_sizes": lr, "predicted": pred,
           "population": pop_summary, "samples": []}
    gen = torch.Generator().manual_seed(int(ctx.seed) * 1000 + 11)
    with progress(ctx, len(cfg["ns"]), "finite-sample training", "n") as bar:
        for n in cfg["ns"]:
            X = torch.randn((n, d), generator=gen, dtype=torch.float64).to(ctx.device)  # drawn on the CPU
            t0 = time.perf_counter()
            row = {"n": n, "runs": _sample_runs(W0, W_star, X, cfg, lr, pop, ctx.seed + n)}
            row["seconds"] = time.perf_counter() - t0
            out["samples"].append(row)
            bar.update(1)
    return out


# ----------------------------------------------------------------------------- summaries
def acceleration_stats(acc: list, widths) -> dict:
    """Quartiles of every acceleration ratio over instances, overall and per width, and the censored counts."""
    out = {}
    for fl in ("H-mean", "H-true"):
        for key in [f"time_ratio_{e:g}" for e in EPSILONS] + ["rate_ratio", "predicted_rate_ratio"]:
            out[f"{fl}/{key}"] = stats([r.get(key) for r in acc if r["flow"] == fl])
            for K in widths:
                out[f"{fl}/{key}/K={K}"] = stats([r.get(key) for r in acc if r["flow"] == fl and r["K"] == K])
        out[f"{fl}/censored_time_ratio_1e-06"] = sum("time_ratio_1e-06_lower_bound" in r for r in acc if r["flow"] == fl)
    return out


def iteration_comparison(runs_: dict, a: str, b: str) -> dict:
    """Iterations to ``FS_EPS`` of L (run ``a``) and H (run ``b``), their ratio, and whether H got there first."""
    ia, ib = runs_[a]["iterations_to"][f"{FS_EPS:g}"], runs_[b]["iterations_to"][f"{FS_EPS:g}"]
    ratio = ia / ib if (ia is not None and ib) else None
    h_first = None if (ia is None and ib is None) else (ib is not None and (ia is None or ib < ia))
    return {"L": ia, "H": ib, "ratio": ratio, "H_first": h_first}


def condition_numbers(teachers: list) -> list:
    """Per teacher: ``κ = ρ/λ_min`` of L and H-mean, the curvature-matched gain ``κ_L/κ_H`` and the common-step gain."""
    kappa = []
    for tch in teachers:
        p = tch["predicted"]
        kL = p["L"]["spectral_radius"] / p["L"]["rate"]
        kH = p["H-mean"]["spectral_radius"] / p["H-mean"]["rate"]
        kappa.append({"K": tch["K"], "d": tch["d"], "rep": tch["rep"], "kappa_L": kL, "kappa_H_mean": kH,
                      "matched_step_gain": kL / kH, "common_step_gain": p["H-mean"]["rate"] / p["L"]["rate"]})
    return kappa


def deviation_slopes(fs: dict) -> dict:
    """Log-log slope in ``n`` of the largest deviation of full-batch GD (common step) from population GD."""
    ns = np.array([row["n"] for row in fs["samples"]], float)
    out = {}
    for part in ("L", "H"):
        devs = np.array([row["runs"][f"GD/common/{part}"]["max_deviation_from_population"] for row in fs["samples"]])
        out[part] = float(np.polyfit(np.log(ns), np.log(devs), 1)[0]) if len(ns) > 1 else None
    return out


def compute(ctx: Context, prof: dict) -> dict:
    """Every number of the report, as plain data (no label: :func:`.judge.labelled` adds them for the JSON)."""
    t0 = time.perf_counter()
    single = theory_flow.summary()
    runs, teachers = population_runs(ctx, prof)
    flows_seconds = time.perf_counter() - t0
    acc = acceleration(runs)
    kink = kink_demo(ctx, prof)
    t1 = time.perf_counter()
    fs = finite_samples(ctx, prof)
    fs_seconds = time.perf_counter() - t1
    fs_acc = [{"n": row["n"], **{f"{m}_{rule}": iteration_comparison(row["runs"], f"{m}/{rule}/L", f"{m}/{rule}/H")
                                 for m in ("GD", "SGD") for rule in ("common", "matched")}} for row in fs["samples"]]
    kappa = condition_numbers(teachers)
    return {
        "profile_settings": dict(prof),
        "constants": {"epsilons": list(EPSILONS), "stop": STOP, "switch": RECENTER_DISTANCE, "lock_angle": LOCK_ANGLE,
                      "fit_window": list(FIT_WINDOW), "rtol": RTOL, "near_distance": NEAR_DISTANCE,
                      "finite_sample_start_distance": FS_START_DISTANCE},
        "single_node_theory": single,
        "teachers": teachers,
        "runs": runs,
        "acceleration": acc,
        "acceleration_stats": acceleration_stats(acc, prof["widths"]),
        "kink": kink,
        "finite_samples": fs,
        "finite_sample_acceleration": fs_acc,
        "population_gd_acceleration": {rule: iteration_comparison(fs["population"], f"{rule}/L", f"{rule}/H")
                                       for rule in ("common", "matched")},
        "condition_numbers": kappa,
        "predicted_gd_gain_stats": {f"K={K}": {"matched": stats([k["matched_step_gain"] for k in kappa if k["K"] == K]),
                                               "common": stats([k["common_step_gain"] for k in kappa if k["K"] == K])}
                                    for K in prof["widths"]},
        "deviation_slope_in_n": deviation_slopes(fs),
        "flows_seconds": flows_seconds,
        "finite_samples_seconds": fs_seconds,
    }
