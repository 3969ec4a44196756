"""Compute layer of the conditioning report: every number, as plain data (no Markdown, no figures).

For each point, the three Hessians of ``L`` and of ``H`` (``"true"``, ``"mean"``, ``"autograd"``)
and their condition numbers under each definition of :mod:`numerics.conditioning`; the comparison
is always ``kappa(H) / kappa(L)`` for the same Hessian kind and definition.

* Single node: closed-form spectra (:mod:`theory.spectrum`) mapped over ``theta`` and ``rho``.
* Several nodes: seeded instances (far from, near, and approaching the teacher), spectra of
  ``numerics.hessian``.
* Worst cases: SciPy optimisers over ``(theta, rho)`` and over multi-node weights, and a seeded
  search for a point where the mean-field Jacobian of ``H`` is unstable and that of ``L`` is not.
* Cross-checks (raw numbers; the pass/fail rules are in :mod:`.judge`): closed-form spectra against
  ``numerics.hessian``, ``numerics.hessian`` against central differences of ``numerics.gradient``
  (:func:`numerics.finite_differences.fd_jacobian`), the expected autograd Hessian against
  Monte-Carlo.
"""
from __future__ import annotations

import math

import numpy as np
from scipy import optimize

import numerics
from numerics import conditioning as cond
from numerics import mc
from numerics.finite_differences import fd_jacobian
from numerics.geometry import pair_geometry
from theory import spectrum
from theory.vocabulary import HESSIAN_FIELDS

from ..report import Context, progress

FIELDS = HESSIAN_FIELDS
DEFS = cond.DEFINITIONS
DEF_TEXT = {"symmetric": "λmax/λmin of the symmetric part (where positive definite)",
            "singular": "σmax/σmin (singular values)",
            "real_part": "max Re λ / min Re λ (where every Re λ > 0; governs local gradient-flow rates)"}
FIELD_TEXT = {"true": "Hessian of the population loss", "mean": "Jacobian of the mean field",
              "autograd": "expected autograd Hessian"}
MAP_DIMS = (2, 3, 10, 100)
GROUPS = ("far", "near", "direction")
EXCLUDED = 50.0  # objective value of an excluded point in the worst-case searches (ratio e^-50)
WORST_SINGLE_JOBS = [(f, d, k) for f in ("true", "mean") for d in (2, 3) for k in DEFS]
WORST_MULTI_JOBS = [(f, k, K, 4) for f in ("true", "mean") for k in DEFS for K in (2, 4)]
FD_DIMS = ((1, 2, 3), (2, 3, 5))  # (widths, dims) of the finite-difference points, cycled
MC_SHAPE = (2, 3)  # K = K*, d of the Monte-Carlo points


# ----------------------------------------------------------------------------- instances
def instance(seed: int, K: int, d: int, kind: str, index: int, t: float | None = None) -> tuple:
    """A seeded multi-node instance ``(W, W_star)``, ``K = K*``.

    Teacher rows ``N(0, I_d/d)``. ``kind``: ``"far"`` (student drawn independently like the
    teacher), ``"near"`` (each row ``w*_j + 0.1 |w*_j| u_j``, ``u_j`` a random unit vector), or
    ``"direction"`` (``W* + t |W*| D``, ``D`` a random unit direction of the whole weight matrix;
    ``t`` required).  Same arguments, same arrays.
    """
    tag = {"far": 0, "near": 1, "direction": 2}[kind]
    rng = np.random.default_rng([seed, K, d, tag, index])
    Ws = rng.standard_normal((K, d)) / math.sqrt(d)
    if kind == "far":
        return rng.standard_normal((K, d)) / math.sqrt(d), Ws
    if kind == "near":
        U = rng.standard_normal((K, d))
        U /= np.linalg.norm(U, axis=1, keepdims=True)
        return Ws + 0.1 * np.linalg.norm(Ws, axis=1, keepdims=True) * U, Ws
    if t is None:
        raise ValueError("kind='direction' needs t")
    D = rng.standard_normal((K, d))
    D /= np.linalg.norm(D)
    return Ws + t * np.linalg.norm(Ws) * D, Ws


def kappas(W, Ws) -> dict:
    """``{field: {part: {definition: kappa or None}}}`` and the extreme eigenvalues, from the public API."""
    out = {}
    for f in FIELDS:
        out[f] = {}
        for p in ("L", "H"):
            r = cond.hessian_conditioning(W, Ws, p, f)
            ev = r["spectra"]["eigenvalues"]
            out[f][p] = dict(r["kappa"], min_real=float(ev.real.min()), max_real=float(ev.real.max()),
                             max_abs_imag=float(np.abs(ev.imag).max()))
    return out


def ratio(kH, kL):
    """``kH / kL``, ``None`` where either is undefined."""
    return None if kH is None or kL is None else kH / kL


def min_angle(W, Ws) -> float:
    """Smallest angle between a student row and a teacher row (stable angles of ``numerics.geometry``)."""
    return float(pair_geometry(np.asarray(W, dtype=float), np.asarray(Ws, dtype=float)).theta.min())


# ----------------------------------------------------------------------------- single node
def sympy_spectra() -> dict:
    """``{"<part>/<field>": {"plane", "complement", "symmetric_plane"}}`` as SymPy strings."""
    out = {}
    for p in ("L", "H"):
        for h in FIELDS:
            S = spectrum.single_node_spectrum(p, h)
            out[f"{p}/{h}"] = {"plane": [str(e) for e in S["plane"]], "complement": str(S["complement"]),
                               "symmetric_plane": [str(e) for e in S["symmetric_plane"]]}
    return out


def single_node_maps(n: int) -> tuple:
    """``theta`` and ``rho`` grids and ``{(field, d, definition): (kappa_L, kappa_H)}`` masked arrays."""
    theta = np.linspace(0, np.pi, n + 2)[1:-1]
    rho = np.logspace(-2, 2, n)
    TH, RH = np.meshgrid(theta, rho, indexing="xy")  # rows: rho, columns: theta
    maps = {}
    for f in FIELDS:
        for d in MAP_DIMS:
            kL = cond.single_node_condition_numbers(RH, TH, d, "L", f)
            kH = cond.single_node_condition_numbers(RH, TH, d, "H", f)
            for k in DEFS:
                maps[(f, d, k)] = (kL[k], kH[k])
    return theta, rho, maps


def map_summary(kL, kH) -> dict:
    """Fractions of the grid where ``H`` is better / worse / equal / only one is defined, and ratio statistics."""
    mL, mH = np.ma.getmaskarray(kL), np.ma.getmaskarray(kH)
    both = ~(mL | mH)
    r = np.ma.MaskedArray(np.asarray(kH) / np.asarray(kL), mask=~both)
    lr = np.log(np.asarray(kH)[both] / np.asarray(kL)[both])
    tot = kL.size
    eq = np.abs(lr) <= 1e-12
    return {
        "fraction_H_better": float(((lr < 0) & ~eq).sum() / tot), "fraction_H_worse": float(((lr > 0) & ~eq).sum() / tot),
        "fraction_equal": float(eq.sum() / tot),
        "fraction_L_undefined_only": float((mL & ~mH).sum() / tot),
        "fraction_H_undefined_only": float((~mL & mH).sum() / tot),
        "fraction_both_undefined": float((mL & mH).sum() / tot),
        "fraction_H_better_by_10pc": float((lr < math.log(0.9)).sum() / tot),
        "median_ratio": float(np.exp(np.median(lr))) if both.any() else None,
        "min_ratio": float(r.min()) if both.any() else None, "max_ratio": float(r.max()) if both.any() else None,
    }


def maps_section(n: int) -> tuple:
    """``(JSON part, arrays for the figures)`` of the single-node maps."""
    theta, rho, maps = single_node_maps(n)
    summary = {f"{f}/d={d}/{k}": map_summary(kL, kH) for (f, d, k), (kL, kH) in maps.items()}
    data = {"theta_grid": {"n": len(theta), "min": float(theta[0]), "max": float(theta[-1])},
            "rho_grid": {"n": len(rho), "min": float(rho[0]), "max": float(rho[-1]), "spacing": "log"},
            "summary": summary}
    return data, {"theta": theta, "rho": rho, "maps": maps}


# ----------------------------------------------------------------------------- several nodes
def multi_node_rows(ctx: Context, cfg: dict) -> list:
    """One row per seeded instance: sizes, kind, index, ``t``, the condition numbers (and the weights if small)."""
    rows = []
    total = len(cfg["widths"]) * len(cfg["dims"]) * (cfg["n_far"] + cfg["n_near"] + cfg["n_dir"] * len(cfg["ts"]))
    bar = progress(ctx, total, "conditioning: multi-node")
    for K in cfg["widths"]:
        for d in cfg["dims"]:
            specs = ([("far", i, None) for i in range(cfg["n_far"])] + [("near", i, None) for i in range(cfg["n_near"])]
                     + [("direction", i, t) for i in range(cfg["n_dir"]) for t in cfg["ts"]])
            for kind, i, t in specs:
                W, Ws = instance(ctx.seed, K, d, kind, i, t)
                row = {"K": K, "d": d, "kind": kind, "index": i, "t": t, "kappa": kappas(W, Ws)}
                if K * d <= 64:
                    row["W"], row["W_star"] = W.tolist(), Ws.tolist()
                rows.append(row)
                bar.update()
    bar.close()
    return rows


def group_summary(rows, f: str, k: str) -> dict:
    """Counts and ratio statistics of ``kappa(H)/kappa(L)`` over a group of instances."""
    rs = [ratio(r["kappa"][f]["H"][k], r["kappa"][f]["L"][k]) for r in rows]
    ok = [x for x in rs if x is not None]
    only_L = sum(r["kappa"][f]["L"][k] is None and r["kappa"][f]["H"][k] is not None for r in rows)
    only_H = sum(r["kappa"][f]["H"][k] is None and r["kappa"][f]["L"][k] is not None for r in rows)
    return {"n": len(rs), "defined": len(ok), "improved": sum(x < 1 for x in ok),
            "only_L_undefined": only_L, "only_H_undefined": only_H,
            "median": float(np.median(ok)) if ok else None,
            "q10": float(np.quantile(ok, 0.1)) if ok else None, "q90": float(np.quantile(ok, 0.9)) if ok else None,
            "min": min(ok) if ok else None, "max": max(ok) if ok else None}


def groups_of(rows) -> dict:
    """``{"far" | "near" | "direction": [rows]}``."""
    return {g: [r for r in rows if r["kind"] == g] for g in GROUPS}


def multi_node_summary(rows) -> dict:
    """``{"<group>/<field>/<definition>": group_summary}``."""
    return {f"{g}/{f}/{k}": group_summary(rs, f, k) for g, rs in groups_of(rows).items() for f in FIELDS for k in DEFS}


# ----------------------------------------------------------------------------- worst cases
def worst_single_node(field: str, d: int, definition: str, seed: int, iters: int) -> dict:
    """Largest ``kappa(H)/kappa(L)`` over ``theta in [1e-6, pi - 1e-6]``, ``rho in [1e-2, 1e2]``
    (differential evolution, seeded; points where either is undefined are excluded)."""
    def neg_log_ratio(x):
        th, lrho = x
        kL = cond.single_node_condition_numbers(10.0**lrho, th, d, "L", field)[definition]
        kH = cond.single_node_condition_numbers(10.0**lrho, th, d, "H", field)[definition]
        if np.ma.is_masked(kL) or np.ma.is_masked(kH):
            return EXCLUDED
        return -math.log(float(kH) / float(kL))

    res = optimize.differential_evolution(neg_log_ratio, [(1e-6, math.pi - 1e-6), (-2, 2)], seed=seed,
                                          maxiter=iters, tol=1e-10, polish=True)
    if res.fun >= EXCLUDED:
        return {"ratio": None, "theta": None, "rho": None}
    return {"ratio": math.exp(-res.fun), "theta": float(res.x[0]), "rho": float(10.0 ** res.x[1])}


def _multi_objective(Ws, K: int, d: int, field: str, definition: str):
    """``-log kappa(H)/kappa(L)`` at ``W``; points that are numerically singular or on the edge of
    definiteness (``rtol = POSITIVE_TOL``), kinks and zero rows score ``EXCLUDED``."""
    def neg_log_ratio(x):
        W = x.reshape(K, d)
        try:
            kL = cond.hessian_conditioning(W, Ws, "L", field, rtol=cond.POSITIVE_TOL)["kappa"][definition]
            kH = cond.hessian_conditioning(W, Ws, "H", field, rtol=cond.POSITIVE_TOL)["kappa"][definition]
        except ValueError:  # a kink (exactly parallel rows) or a zero row: excluded
            return EXCLUDED
        if kL is None or kH is None:
            return EXCLUDED
        return -math.log(kH / kL)
    return neg_log_ratio


def worst_multi_node(field: str, definition: str, K: int, d: int, seed: int, starts: int, fev: int) -> dict:
    """Largest ``kappa(H)/kappa(L)`` found by Nelder-Mead over ``W`` from random starts (teacher fixed)."""
    best = {"ratio": None}
    for s in range(starts):
        # alternate starts near the teacher (where both are usually defined) and far from it
        W0, Ws = instance(seed + 1000 + s, K, d, ("near", "far")[s % 2], s)
        res = optimize.minimize(_multi_objective(Ws, K, d, field, definition), W0.ravel(), method="Nelder-Mead",
                                options={"maxfev": fev, "xatol": 1e-8, "fatol": 1e-10})
        if res.fun < EXCLUDED and (best["ratio"] is None or math.exp(-res.fun) > best["ratio"]):
            W = res.x.reshape(K, d)
            best = {"ratio": math.exp(-res.fun), "start": s, "W": W.tolist(), "W_star": Ws.tolist(),
                    "min_angle_to_teacher": float(min_angle(W, Ws))}
    return best


def worst_cases(ctx: Context, cfg: dict) -> dict:
    """``{"single/<field>/d=<d>/<definition>" | "multi/<field>/K=<K>,d=<d>/<definition>": worst point}``;
    the multi-node points also carry the smallest real part of each matrix's eigenvalues."""
    worst = {}
    bar = progress(ctx, len(WORST_SINGLE_JOBS), "conditioning: worst single node")
    for f, d, k in WORST_SINGLE_JOBS:
        worst[f"single/{f}/d={d}/{k}"] = worst_single_node(f, d, k, ctx.seed, cfg["de_iter"])
        bar.update()
    bar.close()
    bar = progress(ctx, len(WORST_MULTI_JOBS), "conditioning: worst multi-node")
    for f, k, K, d in WORST_MULTI_JOBS:
        worst[f"multi/{f}/K={K},d={d}/{k}"] = worst_multi_node(f, k, K, d, ctx.seed, cfg["nm_starts"], cfg["nm_fev"])
        bar.update()
    bar.close()
    for key, w in worst.items():
        if key.startswith("multi/") and w.get("ratio") is not None:
            f = key.split("/")[1]
            W, Ws = np.array(w["W"]), np.array(w["W_star"])
            w["min_real_eigenvalue_L"] = float(np.linalg.eigvals(numerics.hessian(W, Ws, "L", f)).real.min())
            w["min_real_eigenvalue_H"] = float(np.linalg.eigvals(numerics.hessian(W, Ws, "H", f)).real.min())
    return worst


def unstable_H_witness(worst: dict, seed: int, tries: int = 400):
    """A point near the worst multi-node point (mean field, real part) where the Jacobian of the mean
    field of ``L`` has every eigenvalue's real part positive and that of ``H`` does not; ``None`` if
    seeded perturbations of relative size 1e-3 .. 1e-1 find none."""
    cands = [w for key, w in sorted(worst.items()) if key.startswith("multi/mean/") and key.endswith("/real_part")
             and w.get("ratio") is not None]
    rng = np.random.default_rng([seed, 77])
    for w in cands:
        W0, Ws = np.array(w["W"]), np.array(w["W_star"])
        for i in range(tries):
            eps = (1e-3, 1e-2, 1e-1)[i % 3]
            W = W0 + eps * np.linalg.norm(W0) * rng.standard_normal(W0.shape) / math.sqrt(W0.size)
            try:
                eL = np.linalg.eigvals(numerics.hessian(W, Ws, "L", "mean")).real.min()
                eH = np.linalg.eigvals(numerics.hessian(W, Ws, "H", "mean")).real.min()
            except ValueError:
                continue
            scale = np.abs(np.linalg.eigvals(numerics.hessian(W, Ws, "H", "mean"))).max()
            # clear margins (not rounding): both at least 1e-6 of the spectral scale away from zero
            if eL > 1e-6 * scale and eH < -1e-6 * scale:
                return {"W": W.tolist(), "W_star": Ws.tolist(), "perturbation": eps,
                        "min_real_eigenvalue_L": float(eL), "min_real_eigenvalue_H": float(eH)}
    return None


# ----------------------------------------------------------------------------- cross-checks
def closed_vs_public(rng, n: int) -> float:
    """Largest gap between the closed-form single-node spectra and those of ``numerics.hessian``,
    relative to the largest singular value, over ``n`` random single-node points per ``d``."""
    worst = 0.0
    for d in MAP_DIMS[:3]:
        for _ in range(n):
            w, ws = rng.standard_normal(d), rng.standard_normal(d)
            r = np.linalg.norm(w) / np.linalg.norm(ws)
            th = math.atan2(np.linalg.norm(np.linalg.norm(ws) * w - np.linalg.norm(w) * ws),
                            np.linalg.norm(np.linalg.norm(ws) * w + np.linalg.norm(w) * ws)) * 2
            for p in ("L", "H"):
                for f in FIELDS:
                    a = cond.single_node_spectra(r, th, d, p, f)
                    b = cond.spectra(numerics.hessian(w[None], ws[None], p, f))
                    sc = b["singular"].max()
                    gap = max(np.abs(np.sort(a["eigenvalues"]) - b["eigenvalues"].real).max(),
                              np.abs(np.sort(a["symmetric"]) - b["symmetric"]).max(),
                              np.abs(np.sort(a["singular"]) - b["singular"]).max()) / sc
                    worst = max(worst, float(gap))
    return worst


def fd_rows(ctx: Context, rng, n: int) -> list:
    """``numerics.hessian`` ("true", "mean") against central differences of ``numerics.gradient``
    at ``n`` random points: one row per point, part and field with the largest relative gap."""
    widths, dims = FD_DIMS
    pts = [(rng.standard_normal(shape), rng.standard_normal(shape))
           for shape in ((widths[i % 3], dims[(i // 3) % 3]) for i in range(n))]
    rows = []
    bar = progress(ctx, len(pts), "conditioning: FD cross-check")
    for W, Ws in pts:
        for p in ("L", "H"):
            for f in ("true", "mean"):
                M = numerics.hessian(W, Ws, p, f)
                J = fd_jacobian(lambda w: numerics.gradient(w, Ws, p, f), W)
                rows.append({"K": W.shape[0], "d": W.shape[1], "part": p, "field": f,
                             "max_rel_gap": float(np.abs(M - J).max() / np.abs(M).max())})
        bar.update()
    bar.close()
    return rows


def mc_rows(rng, seed: int, points: int, n: int) -> tuple:
    """The expected autograd Hessian against its Monte-Carlo estimate at ``points`` random points:
    ``(rows, number of entries with a positive standard error)``; each row has the largest ``|z|``
    of its entries and the largest gap on the entries with zero sampling variance."""
    rows, m = [], 0
    for i in range(points):
        W, Ws = rng.standard_normal(MC_SHAPE), rng.standard_normal(MC_SHAPE)
        for p in ("L", "H"):
            est, se = mc.autograd_hessian_mc(W, Ws, p, n, seed=seed + i)
            exact = numerics.hessian(W, Ws, p, "autograd")
            pos = se > 0
            z = (exact[pos] - est[pos]) / se[pos]
            zero_se_gap = float(np.abs(exact[~pos] - est[~pos]).max()) if (~pos).any() else 0.0
            m += int(z.size)
            rows.append({"point": i, "part": p, "n": n, "entries": int(pos.sum()),
                         "max_abs_z": float(np.abs(z).max()), "exact_entries_gap": zero_se_gap})
    return rows, m


def cross_checks(ctx: Context, cfg: dict, rng) -> dict:
    """The raw numbers of the three cross-checks (same draws from ``rng``, in the same order, as always)."""
    out = {"closed_form_vs_numerics_hessian_max_rel_gap": closed_vs_public(rng, cfg["fd_points"])}
    out["fd"] = fd_rows(ctx, rng, cfg["fd_points"])
    out["mc"], out["mc_entries"] = mc_rows(rng, ctx.seed, cfg["mc_points"], cfg["mc_n"])
    return out


# ----------------------------------------------------------------------------- everything
def compute(ctx: Context, cfg: dict) -> dict:
    """Every number of the report.  Keys other than ``map_arrays`` and ``spectrum_table`` go to the JSON."""
    rng = np.random.default_rng(ctx.seed)
    maps_data, arrays = maps_section(cfg["grid"])
    rows = multi_node_rows(ctx, cfg)
    worst = worst_cases(ctx, cfg)
    return {
        "profile_sizes": {k: (list(v) if isinstance(v, tuple) else v) for k, v in cfg.items()},
        "definitions": DEF_TEXT, "fields": FIELD_TEXT,
        "spectrum_table": spectrum.latex_table(), "single_node_spectrum_sympy": sympy_spectra(),
        "single_node_maps": maps_data, "map_arrays": arrays,
        "multi_node": rows, "multi_node_summary": multi_node_summary(rows),
        "worst_case": worst, "cross_checks": cross_checks(ctx, cfg, rng),
        "witness": unstable_H_witness(worst, ctx.seed),
    }
