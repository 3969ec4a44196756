"""Compute layer of the witnesses report: closed forms against their witnesses, as plain data.

No thresholds and no decisions here (those are in :mod:`.judge`): only the z-scores, digits and
relative errors the decisions are taken on.  Seeds are derived from the command-line seed as
``seed * 1000 + i`` (Monte-Carlo cases), ``seed * 100 + i`` (true-gradient witness), ``seed * 10 + i``
(Jacobian witness) and ``seed`` (convergence), with one ``numpy`` generator seeded by ``seed`` drawing
every case in that order.
"""
from __future__ import annotations

import math

import mpmath
import numpy as np
import sympy as sp
import torch

import numerics
from numerics import mc
from numerics.quadrature import pair_expectations
from theory import kernels
from theory.symbols import n_a, n_b, theta

from ..formulas import paper_formula_numpy
from ..report import Context

QUAD_DPS = 50  # working precision of the quadrature witness and of the closed forms it is compared with


def cases(rng: np.random.Generator, profile: str) -> list:
    """Seeded cases: (name, W, W_star). Widths 1..8, d from 2 to 1000, near-parallel pairs."""
    shapes = [(1, 1, 2), (1, 1, 1000), (2, 1, 10), (1, 4, 50), (2, 4, 100), (4, 4, 10), (4, 8, 200),
              (8, 8, 1000), (8, 2, 20)]
    if profile == "quick":
        shapes = [(1, 1, 2), (2, 4, 100), (8, 8, 1000)]
    out = []
    for K, Ks, d in shapes:
        out.append((f"K={K}, K*={Ks}, d={d}", rng.standard_normal((K, d)), rng.standard_normal((Ks, d))))
    # near-parallel and near-anti-parallel student/teacher pairs
    for K, d, angle in ((1, 5, 1e-3), (1, 5, math.pi - 1e-3), (2, 10, 1e-2)):
        Ws = rng.standard_normal((K, d))
        Q, _ = np.linalg.qr(rng.standard_normal((d, d)))
        W = np.empty_like(Ws)
        for j in range(K):
            u = Ws[j] / np.linalg.norm(Ws[j])
            v = Q[:, 0] - (Q[:, 0] @ u) * u
            v /= np.linalg.norm(v)
            W[j] = (1.0 + 0.1 * j) * np.linalg.norm(Ws[j]) * (math.cos(angle) * u + math.sin(angle) * v)
        out.append((f"K=K*={K}, d={d}, student-teacher angle {angle:.4g}", W, Ws))
    return out


def _closed_forms(W, Ws) -> tuple:
    return ({p: numerics.loss(W, Ws, p) for p in numerics.PARTS},
            {p: numerics.gradient(W, Ws, p, "mean") for p in numerics.PARTS})


def monte_carlo_cases(ctx: Context, prof: dict, rng) -> dict:
    """Closed losses and mean fields against ``numerics.monte_carlo``: per-case rows, and every z-score."""
    rows = []
    all_z = []
    for i, (name, W, Ws) in enumerate(cases(rng, ctx.profile)):
        method = "subspace" if W.shape[1] > W.shape[0] + Ws.shape[0] else "plain"
        est = mc.monte_carlo(W, Ws, prof["n"], seed=ctx.seed * 1000 + i, device=ctx.device, method=method,
                             progress=ctx.progress)
        closed_loss, closed_mf = _closed_forms(W, Ws)
        z = est.z_scores(closed_loss, closed_mf)
        flat = np.concatenate([np.ravel(v) for v in z.values()])
        all_z.append(flat)
        rel = {p: abs(est.loss[p] - closed_loss[p]) / abs(closed_loss[p]) for p in numerics.PARTS}
        rel_mf = {p: float(np.linalg.norm(est.mean_field[p] - closed_mf[p]) / np.linalg.norm(closed_mf[p]))
                  for p in numerics.PARTS}
        rows.append({"case": name, "K": W.shape[0], "K_star": Ws.shape[0], "d": W.shape[1], "method": method,
                     "n": est.n, "entries": int(flat.size), "max_abs_z": float(np.abs(flat).max()),
                     "loss_rel_error": rel, "mean_field_rel_error": rel_mf,
                     "loss_z": {p: float(z[p]) for p in numerics.PARTS}})
    z_all = np.concatenate(all_z)
    return {"cases": rows, "entries": int(z_all.size), "max_abs_z": float(np.abs(z_all).max()), "z": z_all}


def _closed_pair(expr, na, nb, t, dps):
    with mpmath.workdps(dps + 10):
        return mpmath.mpf(str(sp.N(expr.subs({n_a: sp.Float(na, dps + 10), n_b: sp.Float(nb, dps + 10),
                                              theta: sp.Float(t, dps + 10)}), dps + 5)))


def _pair_quantities(q: dict, na: str, nb: str) -> list:
    """(label, quadrature value, closed-form expression, natural scale) for every pair expectation."""
    block, comp = kernels.step_step_xx()
    out = [("E[relu relu]", q["relu_relu"], kernels.relu_relu(), mpmath.mpf(na) * mpmath.mpf(nb)),
           ("E[1 1]", q["step_step"], kernels.step_step(), 1)]
    for c in range(2):
        out.append((f"E[relu(b.x) 1{{a.x>0}} x]_{c + 1}", q["relu_step_x"][c], kernels.relu_step_x()[c],
                    mpmath.mpf(nb)))
    for r_ in range(2):
        for c in range(2):
            out.append((f"E[1 1 x x^T]_{r_ + 1}{c + 1}", q["step_step_xx"][r_][c],
                        block[r_, c] + (comp if r_ == c else 0), 1))
    return out


def quadrature_rows(angles, dps: int = QUAD_DPS) -> list:
    """Digits agreed, ``-log10(|quad - closed| / scale)``, scale = the natural size of each quantity."""
    rows = []
    for na, nb in (("1.5", "0.5"), ("1e-3", "1e3")):
        for t in angles:
            q = pair_expectations(na, nb, t, dps=dps)
            with mpmath.workdps(dps):
                for label, qv, expr, scale in _pair_quantities(q, na, nb):
                    cv = _closed_pair(expr, na, nb, t, dps)
                    gap = abs(qv - cv) / scale
                    digits = float(min(dps, -mpmath.log10(gap))) if gap > 0 else float(dps)
                    rows.append({"quantity": label, "n_a": na, "n_b": nb, "theta": t, "digits": round(digits, 1)})
    return rows


def true_gradient_rows(ctx: Context, prof: dict, rng) -> list:
    """Monte-Carlo central-difference witness of the true gradient against both closed fields."""
    rows = []
    shapes = [(1, 1, 3), (2, 2, 3)] if ctx.profile == "quick" else [(1, 1, 3), (2, 2, 3), (2, 3, 4), (3, 1, 5)]
    for i, (K, Ks, d) in enumerate(shapes):
        W, Ws = rng.standard_normal((K, d)), rng.standard_normal((Ks, d))
        for part in ("L", "J", "H"):
            est, se = mc.true_gradient_fd(W, Ws, part, prof["n_fd"], seed=ctx.seed * 100 + i, h=1e-2,
                                          device=ctx.device)
            true = numerics.gradient(W, Ws, part, "true")
            mean = numerics.gradient(W, Ws, part, "mean")
            rows.append({"K": K, "K_star": Ks, "d": d, "part": part, "n": prof["n_fd"], "entries": int(est.size),
                         "max_abs_z_vs_true": float(np.abs((est - true) / se).max()),
                         "max_abs_z_vs_mean": float(np.abs((est - mean) / se).max()),
                         "relative_gap_mean_vs_true": float(np.linalg.norm(mean - true) / np.linalg.norm(true))})
    return rows


def paper_jacobian_rows(ctx: Context, prof: dict, rng) -> list:
    """The paper's single-node nabla^2 H and the Hessian of the population H against a Monte-Carlo Jacobian
    of the mean field (central differences, common random numbers)."""
    rows = []
    for i in range(1 if ctx.profile == "quick" else 3):
        d = 3
        w, ws = rng.standard_normal(d), rng.standard_normal(d)
        jac, se = mc.mean_field_jacobian_fd(w[None], ws[None], "H", prof["n_jac"], seed=ctx.seed * 10 + i,
                                            device=ctx.device)
        paper = paper_formula_numpy(w, ws, "H")
        true = numerics.hessian(w[None], ws[None], "H", "true")
        rows.append({"point": i, "d": d, "n": prof["n_jac"],
                     "max_abs_z_paper_vs_mc_jacobian": float(np.abs((jac - paper) / se).max()),
                     "max_abs_z_true_hessian_vs_mc_jacobian": float(np.abs((jac - true) / se).max()),
                     "max_abs_gap_paper_vs_true_hessian": float(np.abs(paper - true).max())})
    return rows


def convergence(ctx: Context, prof: dict, rng) -> dict:
    """Relative error of the Monte-Carlo losses and mean fields against the closed forms at growing sample
    counts (``K = K* = 4``, ``d = 20``, plain sampling): ``{"checkpoints": [...], "<series>": [...]}``."""
    W, Ws = rng.standard_normal((4, 20)), rng.standard_normal((4, 20))
    checkpoints = [int(10**k) for k in np.arange(2, math.log10(prof["conv"]) + 0.01, 0.5)]
    closed_loss, closed_mf = _closed_forms(W, Ws)
    series = {f"loss {p}": [] for p in numerics.PARTS} | {f"mean field {p}": [] for p in numerics.PARTS}
    for est in mc.monte_carlo(W, Ws, checkpoints, seed=ctx.seed, device=ctx.device, progress=False):
        for p in numerics.PARTS:
            series[f"loss {p}"].append(abs(est.loss[p] - closed_loss[p]) / abs(closed_loss[p]))
            series[f"mean field {p}"].append(
                float(np.linalg.norm(est.mean_field[p] - closed_mf[p]) / np.linalg.norm(closed_mf[p])))
    return {"checkpoints": checkpoints, **series}


def compute(ctx: Context, prof: dict) -> dict:
    """Every number of the report. ``monte_carlo["z"]`` (every z-score, for the histogram) is the only array;
    the rest is plain data."""
    rng = np.random.default_rng(ctx.seed)
    torch.manual_seed(ctx.seed)
    monte_carlo = monte_carlo_cases(ctx, prof, rng)
    quad = quadrature_rows(prof["angles"])
    fd = true_gradient_rows(ctx, prof, rng)
    paper = paper_jacobian_rows(ctx, prof, rng)
    return {
        "profile": ctx.profile, "seed": ctx.seed, "device": ctx.device,
        "monte_carlo": monte_carlo,
        "quadrature": {"rows": quad, "dps": QUAD_DPS,
                       "min_digits": min((r["digits"] for r in quad), default=None)},
        "true_gradient_fd": {"rows": fd, "entries": sum(r["entries"] for r in fd)},
        "paper_H_vs_mc_jacobian": {"rows": paper, "entries": sum(r["d"] ** 2 for r in paper)},
        "convergence": convergence(ctx, prof, rng),
    }
