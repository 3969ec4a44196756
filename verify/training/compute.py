"""The runs of the training report, summarised over seeds as plain data (no text, no figures).

Every function returns dicts, lists and floats that go into the JSON unchanged, except the
reconstruction images of :func:`autoencoder` (``images``), which only the figure uses.  Seeds are
derived from ``ctx.seed``; within an experiment every variant starts from the same seeds (the same
initial weights), so comparisons are paired.
"""
from __future__ import annotations

import numpy as np
import torch

from ..experiments import autoencoder as ae
from ..experiments.loop import derivative_targets, train
from ..experiments.models import ARCHITECTURES, ReluStudent, tanh_mlp
from ..experiments.summary import band, finite_or_none, spread
from ..experiments.targets import ackley_data, line_data, teacher_data
from ..report import Context, progress, torch_threads
from .settings import ACKLEY_THRESHOLDS, ACKLEY_VARIANTS, ARCH_VARIANTS, HD_VARIANTS


def _dtype(prof: dict):
    """The torch dtype of every training run of the profile (``prof["dtype"]``: float32 in the reports; the
    perturbation test runs float64 to show that no verdict rests on rounding)."""
    return getattr(torch, prof["dtype"])


def _seeds(ctx: Context, count: int) -> list:
    return [ctx.seed * 100 + i for i in range(count)]


# ----------------------------------------------------------------------------- 1. Ackley
def _ackley_seed_summary(r) -> dict:
    """One Ackley run: final errors, seconds, and the first step / second below each threshold."""
    hits = {}
    for th in ACKLEY_THRESHOLDS:
        step, sec = r.first_below(th)
        hits[f"{th:.0e}"] = {"steps": step, "seconds": finite_or_none(sec)}
    return {"seed": r.seed, "final_test_mse": finite_or_none(r.test_mse[-1]),
            "final_train_value_mse": finite_or_none(r.value_mse[-1]),
            "train_seconds": float(r.seconds[-1]), "target_seconds": r.target_seconds, "thresholds": hits}


def _ackley_variant_summary(rs: list, steps: int) -> dict:
    per_seed = [_ackley_seed_summary(r) for r in rs]
    thr = {}
    for th in ACKLEY_THRESHOLDS:
        key = f"{th:.0e}"
        thr[key] = {"steps": spread([ps["thresholds"][key]["steps"] for ps in per_seed]),
                    "seconds": spread([ps["thresholds"][key]["seconds"] for ps in per_seed])}
    return {"per_seed": per_seed, "thresholds": thr,
            "final_test_mse": spread([ps["final_test_mse"] for ps in per_seed]),
            "seconds_per_step": spread([ps["train_seconds"] / steps for ps in per_seed]),
            "test_mse_curve": band([r.test_mse for r in rs]),
            "seconds_curve": band([r.seconds[r.eval_steps] for r in rs])}


def ackley(ctx: Context, prof: dict) -> dict:
    """Claim 5: a tanh MLP fitted to 2-D Ackley with every variant of ``ACKLEY_VARIANTS``."""
    p, seeds = prof["ackley"], _seeds(ctx, prof["seeds"])
    rng = np.random.default_rng([ctx.seed, 1])
    uniform = ackley_data("uniform", p["n"], p["n_test"], rng)
    cheb = ackley_data("chebyshev", p["n"], p["n_test"], np.random.default_rng([ctx.seed, 1]))
    assert np.array_equal(uniform.x_test, cheb.x_test)  # one test set for every variant
    runs = {v: [] for v in ACKLEY_VARIANTS}
    with progress(ctx, len(ACKLEY_VARIANTS) * len(seeds), "Ackley") as bar:
        for v in ACKLEY_VARIANTS:
            data = cheb if v == "H1-Chebyshev" else uniform
            for s in seeds:
                runs[v].append(train(lambda: tanh_mlp(2, p["width"], p["depth"]), data, v, p["steps"], p["lr"], s,
                                     eval_every=p["eval_every"], device=ctx.device, dtype=_dtype(prof)))
                bar.update()
    out = {"config": {**p, "seeds": seeds, "dtype": prof["dtype"],
                      "model": f"tanh MLP 2 -> {p['width']} x {p['depth']} -> 1",
                      "optimiser": "Adam, full batch", "thresholds": list(ACKLEY_THRESHOLDS),
                      "grids": "L2, H1-exact, H1-FDM: uniform n x n grid; H1-Chebyshev: n x n Chebyshev-Gauss-Lobatto "
                               "grid; test: n_test uniform random points, shared"},
           "eval_steps": runs["L2"][0].eval_steps.tolist(),
           "variants": {v: _ackley_variant_summary(rs, p["steps"]) for v, rs in runs.items()}}
    # accuracy of the numerical derivative targets themselves (against the exact gradient on each grid)
    for v, data in (("H1-FDM", uniform), ("H1-Chebyshev", cheb)):
        dy = derivative_targets(data, v).dy
        out["variants"][v]["derivative_target_rel_error"] = float(np.linalg.norm(dy - data.dy) / np.linalg.norm(data.dy))
    return out


# ----------------------------------------------------------------------------- 2. architectures
def architectures(ctx: Context, prof: dict) -> dict:
    """Claim 7 (beside it): the 1-D targets with every model of ``ARCHITECTURES`` and ``ARCH_VARIANTS``."""
    p = prof["arch"]
    seeds = _seeds(ctx, p.get("seeds", prof["seeds"]))
    out = {"config": {**p, "seeds": seeds, "dtype": prof["dtype"], "models": "three hidden layers of 64: " + ", ".join(ARCHITECTURES),
                      "optimiser": "Adam, full batch" + (f", then {p['lbfgs']} L-BFGS iterations" if p["lbfgs"] else "")},
           "results": {}}
    total = len(p["targets"]) * len(ARCHITECTURES) * len(ARCH_VARIANTS) * len(seeds)
    with progress(ctx, total, "architectures") as bar:
        for t in p["targets"]:
            data = line_data(t, p["n"], p["n_test"], np.random.default_rng([ctx.seed, 2, int(t[1])]))
            for arch, factory in ARCHITECTURES.items():
                for v in ARCH_VARIANTS:
                    rs = []
                    for s in seeds:
                        rs.append(train(factory, data, v, p["steps"], p["lr"], s, eval_every=p["eval_every"],
                                        lbfgs_steps=p["lbfgs"], device=ctx.device, dtype=_dtype(prof)))
                        bar.update()
                    out["results"][f"{t} | {arch} | {v}"] = {
                        "target": t, "architecture": arch, "variant": v,
                        "final_test_mse": spread([finite_or_none(r.test_mse[-1]) for r in rs]),
                        "per_seed_final_test_mse": [finite_or_none(r.test_mse[-1]) for r in rs],
                        "train_seconds": spread([float(r.seconds[-1]) for r in rs]),
                        "test_mse_curve": band([r.test_mse for r in rs]), "eval_steps": rs[0].eval_steps.tolist()}
    return out


# ----------------------------------------------------------------------------- 3. high dimension
def _high_dimension_cell(ctx: Context, p: dict, K: int, d: int, nseeds: int, bar, dtype) -> list:
    """Every variant of ``HD_VARIANTS`` at width ``K`` and dimension ``d``: one JSON row per variant."""
    per = {v: [] for v in HD_VARIANTS}
    n_matched = min(p["n"] * (d + 1), p["matched_cap"])
    for i in range(nseeds):
        seed = ctx.seed * 100 + i
        rng = np.random.default_rng([ctx.seed, 3, K, d, i])
        W_star = rng.standard_normal((K, d)) / np.sqrt(d)
        data = teacher_data(W_star, p["n"], p["n_test"], rng, p["fd_step"])
        big = teacher_data(W_star, n_matched, 2, rng, p["fd_step"])
        big.x_test, big.y_test = data.x_test, data.y_test
        scale = float(np.mean(data.y_test**2))
        for v in HD_VARIANTS:
            r = train(lambda: ReluStudent(K, d), big if v.startswith("L2 (") else data,
                      "L2" if v.startswith("L2") else v, p["steps"], p["lr"], seed, optimizer="gd",
                      eval_every=p["eval_every"], device=ctx.device, dtype=dtype)
            per[v].append({"rel_error_curve": r.test_mse / scale,
                           "final_rel_error": finite_or_none(r.test_mse[-1] / scale),
                           "train_seconds": float(r.seconds[-1]), "target_seconds": r.target_seconds,
                           "target_queries": (n_matched if v.startswith("L2 (") else p["n"]) + r.target_queries,
                           "eval_steps": r.eval_steps})
            bar.update()
    rows = []
    for v in HD_VARIANTS:
        rs = per[v]
        rows.append({"K": K, "d": d, "variant": v, "n_samples": n_matched if v.startswith("L2 (") else p["n"],
                     "teacher_queries": rs[0]["target_queries"],
                     "final_rel_error": spread([r["final_rel_error"] for r in rs]),
                     "per_seed_final_rel_error": [r["final_rel_error"] for r in rs],
                     "train_seconds": spread([r["train_seconds"] for r in rs]),
                     "target_seconds": spread([r["target_seconds"] for r in rs]),
                     "eval_steps": rs[0]["eval_steps"].tolist(),
                     "rel_error_curve": band([r["rel_error_curve"] for r in rs])})
    return rows


def high_dimension(ctx: Context, prof: dict) -> dict:
    """Claim 6: the ReLU student--teacher network for every width and dimension of the profile."""
    p, nseeds = prof["highdim"], prof["seeds"]
    out = {"config": {**p, "seeds": _seeds(ctx, nseeds), "dtype": prof["dtype"],
                      "teacher": "K* = K rows w*_j ~ N(0, I_d / d); student K rows, init N(0, I_d / d)",
                      "optimiser": "plain full-batch gradient descent",
                      "error": "relative test MSE = test MSE / mean(teacher(x)^2) on n_test fresh samples",
                      "matched": "L2 (matched targets): L2 on min(n (d + 1), matched_cap) samples, as many target "
                                 "numbers as H1 uses (up to the cap)"},
           "rows": []}
    total = len(p["widths"]) * len(p["dims"]) * len(HD_VARIANTS) * nseeds
    with progress(ctx, total, "high dimension") as bar:
        for K in p["widths"]:
            for d in p["dims"]:
                out["rows"] += _high_dimension_cell(ctx, p, K, d, nseeds, bar, _dtype(prof))
    return out


# ----------------------------------------------------------------------------- 4. autoencoder
def autoencoder(ctx: Context, prof: dict) -> tuple:
    """Claim 7: the denoising autoencoder with each loss of ``ae.AE_LOSSES``.

    Returns ``(summary, images)``: ``images`` holds the first 8 clean and noisy test digits and the
    reconstructions of the first seed of each loss (for the figure; not in the JSON)."""
    p = prof["ae"]
    seeds = _seeds(ctx, p["seeds"])
    clean_train, clean_test = ae.split_digits(ctx.seed)
    runs = {loss: [] for loss in ae.AE_LOSSES}
    with progress(ctx, len(ae.AE_LOSSES) * len(seeds), "autoencoder") as bar:
        for loss in ae.AE_LOSSES:
            for s in seeds:
                runs[loss].append(ae.train_autoencoder(loss, clean_train, clean_test, p["epochs"], s,
                                                       evals_per_epoch=p["evals_per_epoch"], device=ctx.device,
                                                       dtype=_dtype(prof),
                                                       n_show=8))
                bar.update()
    out = {"config": {**p, "seeds": seeds, "dtype": prof["dtype"], "data": f"sklearn 8x8 digits, {len(clean_train)} train / {len(clean_test)} "
                                                   "test, scaled to [0, 1]",
                      "noise": "0.3 sin(2 pi (x + y)) at pixel centres", "lr": 5e-3, "batch": 128, "s": 1.0},
           "eval_steps": runs["MSE"][0].eval_steps.tolist(), "losses": {}}
    for loss, rs in runs.items():
        out["losses"][loss] = {
            "final_test_mse": spread([finite_or_none(r.test_mse[-1]) for r in rs]),
            "per_seed_final_test_mse": [finite_or_none(r.test_mse[-1]) for r in rs],
            "final_test_sobolev": spread([finite_or_none(r.test_sobolev[-1]) for r in rs]),
            "train_seconds": spread([r.seconds for r in rs]),
            "test_mse_curve": band([r.test_mse for r in rs]),
            "test_sobolev_curve": band([r.test_sobolev for r in rs])}
    out["identity_test_mse"] = float(np.mean(ae.noise_pattern() ** 2))  # returning the noisy input unchanged
    images = {"clean": clean_test[:8], "noisy input": clean_test[:8] + ae.noise_pattern(),
              **{loss: runs[loss][0].reconstructions for loss in ae.AE_LOSSES}}
    return out, images


# ----------------------------------------------------------------------------- everything
def compute(ctx: Context, prof: dict) -> dict:
    """Every experiment of the profile ``prof``, torch on ``prof["threads"]`` threads (one in the reports); the images
    apart from the JSON data."""
    with torch_threads(prof["threads"]):
        ack = ackley(ctx, prof)
        arch = architectures(ctx, prof)
        hd = high_dimension(ctx, prof)
        auto, images = autoencoder(ctx, prof)
    return {"ackley": ack, "architectures": arch, "high_dimension": hd, "autoencoder": auto, "images": images}
