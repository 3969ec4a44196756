"""``python -m verify.training``: the paper's training experiments (docs/claims.md, claims 5--7; docs/experiments.md, sections 5--8).

Writes ``training.md`` / ``training.json`` and the figures ``training_*.png``.

1. **Numerical derivatives** (claim 5): a tanh MLP fitted to the 2-D Ackley function with ``L2``,
   ``H1-exact``, ``H1-FDM`` and ``H1-Chebyshev``; steps and seconds until the test MSE first falls
   below each threshold.
2. **Architectures** (claim 7, supporting): ``f1, f2, f3`` on ``[-1, 1]`` with a tanh MLP, a
   Fourier-feature network and a SIREN, trained with ``L2``, ``H1-exact`` and ``H2``.
3. **High dimension** (claim 6): the ReLU student--teacher network ``sum_j relu(w_j . x)``,
   ``x ~ N(0, I_d)``, with the teacher's input gradient exact and by central differences, against
   ``L2`` with the same samples and ``L2`` with as many target numbers; error and cost against ``d``.
4. **Denoising autoencoder** (claim 7): scikit-learn's 8x8 digits, Fourier-multiplier Sobolev loss
   against MSE.

All runs: float32, one CPU thread per run (``torch.set_num_threads(1)``, restored afterwards), seeds
derived from ``ctx.seed``; within an experiment every variant starts from the same seeds (the same
initial weights), so comparisons are paired.  Curves are medians over seeds with the min--max band.
"""
from __future__ import annotations

import sys
import time
from contextlib import contextmanager

import numpy as np
import torch

from .experiments import autoencoder as ae
from .experiments.loop import derivative_targets, train
from .experiments.models import ARCHITECTURES, ReluStudent, tanh_mlp
from .experiments.summary import band, finite_or_none, fmt, fmt_spread, spread
from .experiments.targets import TARGET_FORMULAS, ackley_data, line_data, teacher_data
from .report import Context, Report, run

NAME = "training"
TITLE = "Training experiments: Sobolev training without exact derivatives, across architectures, in high dimension"

ACKLEY_VARIANTS = ("L2", "H1-exact", "H1-FDM", "H1-Chebyshev")
ACKLEY_THRESHOLDS = (1e-1, 1e-2, 1e-3, 1e-4, 1e-5)  # the paper's are the last three
ARCH_VARIANTS = ("L2", "H1-exact", "H2")
HD_VARIANTS = ("L2", "L2 (matched targets)", "H1-exact", "H1-FDM")
COMPARABLE = 1.25  # "comparable": within 25% of L2's median steps (or seconds)
LOW_ERROR = 1e-2  # "low error" in high dimension: relative test MSE below 1%

VERDICT_RULES = (
    "How the verdicts are decided (fixed before the runs, applied mechanically). **Claim 5**: a pair (numerical "
    "variant `H1-FDM` or `H1-Chebyshev`, threshold) is informative when the median over seeds of it or of `L2` "
    "reached the threshold; *confirmed* if every informative pair is faster than or within 25% of `L2` in median "
    "steps and both numerical variants reach all the paper's thresholds (1e-3, 1e-4, 1e-5), *confirmed with "
    "qualifications* if at least half the informative pairs are, *refuted* if fewer, *inconclusive* if no pair is "
    "informative; seconds are reported, not judged (they depend on the machine). **Claim 6**, at the largest `d`: "
    f"*confirmed* (only at full size) if for every width `K` both `H1` variants have relative test MSE < {LOW_ERROR:.0e} "
    "on every seed and beat both `L2` baselines in median; *confirmed with qualifications* if that low error holds for "
    "some `K` and `H1` beats `L2` on the same samples for every `K`; *inconclusive* if it beats `L2` but is never low; "
    "*refuted* otherwise. **Claim 7** (autoencoder): *confirmed with qualifications* (8×8 digits, not MNIST) if the "
    "Sobolev-trained median test MSE is lower than the MSE-trained one, *refuted* if it is higher with disjoint "
    "seed ranges, *inconclusive* otherwise; the architecture results are reported beside it. The `quick` profile is "
    "a smoke test: its verdicts are all *inconclusive*, with what the rules would give in brackets.")

PROFILES = {
    "quick": dict(
        seeds=2,
        ackley=dict(n=16, n_test=500, steps=150, lr=3e-3, eval_every=10, width=64, depth=4),
        arch=dict(targets=("f1",), n=128, n_test=100, steps=100, lr=1e-3, lbfgs=0, eval_every=10),
        highdim=dict(dims=(10, 100), widths=(1,), n=128, n_test=1000, steps=150, lr=0.05, matched_cap=2048,
                     fd_step=1e-3, eval_every=10),
        ae=dict(epochs=2, seeds=2, evals_per_epoch=2)),
    "standard": dict(
        seeds=3,
        ackley=dict(n=32, n_test=2000, steps=1000, lr=3e-3, eval_every=10, width=64, depth=4),
        arch=dict(targets=("f1", "f2", "f3"), n=200, n_test=100, steps=400, lr=1e-3, lbfgs=0, eval_every=10),
        highdim=dict(dims=(10, 100, 1000), widths=(1, 4), n=256, n_test=2000, steps=400, lr=0.05,
                     matched_cap=4096, fd_step=1e-3, eval_every=10),
        ae=dict(epochs=20, seeds=5, evals_per_epoch=2)),
    # the paper's sizes (docs/experiments.md, sections 5-8); meant for a GPU
    "full": dict(
        seeds=5,
        ackley=dict(n=100, n_test=10000, steps=50000, lr=1e-4, eval_every=50, width=64, depth=4),
        arch=dict(targets=("f1", "f2", "f3"), n=1000, n_test=100, steps=25000, lr=1e-5, lbfgs=500, eval_every=100,
                  seeds=20),
        highdim=dict(dims=(10, 30, 100, 300, 1000), widths=(1, 2, 4), n=1024, n_test=10000, steps=2000, lr=0.05,
                     matched_cap=1 << 18, fd_step=1e-3, eval_every=20),
        ae=dict(epochs=20, seeds=10, evals_per_epoch=4)),
}


@contextmanager
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _plot_band(ax, x, b, label, color, log=True):
    med = np.array([np.nan if v is None else v for v in b["median"]], dtype=float)
    lo = np.array([np.nan if v is None else v for v in b["min"]], dtype=float)
    hi = np.array([np.nan if v is None else v for v in b["max"]], dtype=float)
    ax.plot(x, med, color=color, label=label, lw=1.4)
    ax.fill_between(x, lo, hi, color=color, alpha=0.2, lw=0)
    if log:
        ax.set_yscale("log")


COLORS = {"L2": "tab:blue", "H1-exact": "tab:orange", "H1-FDM": "tab:green", "H1-Chebyshev": "tab:red",
          "H2": "tab:purple", "L2 (matched targets)": "tab:gray", "MSE": "tab:blue", "Sobolev": "tab:orange"}


def _progress(ctx, total, desc):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, disable=not ctx.progress, leave=False)


# ----------------------------------------------------------------------------- 1. Ackley
def _ackley(ctx: Context, prof: dict) -> tuple:
    p, seeds = prof["ackley"], [ctx.seed * 100 + i for i in range(prof["seeds"])]
    rng = np.random.default_rng([ctx.seed, 1])
    uniform = ackley_data("uniform", p["n"], p["n_test"], rng)
    cheb = ackley_data("chebyshev", p["n"], p["n_test"], np.random.default_rng([ctx.seed, 1]))
    assert np.array_equal(uniform.x_test, cheb.x_test)  # one test set for every variant
    runs = {v: [] for v in ACKLEY_VARIANTS}
    with _progress(ctx, len(ACKLEY_VARIANTS) * len(seeds), "Ackley") as bar:
        for v in ACKLEY_VARIANTS:
            data = cheb if v == "H1-Chebyshev" else uniform
            for s in seeds:
                runs[v].append(train(lambda: tanh_mlp(2, p["width"], p["depth"]), data, v, p["steps"], p["lr"], s,
                                     eval_every=p["eval_every"], device=ctx.device))
                bar.update()
    eval_steps = runs["L2"][0].eval_steps
    out = {"config": {**p, "seeds": seeds, "model": f"tanh MLP 2 -> {p['width']} x {p['depth']} -> 1",
                      "optimiser": "Adam, full batch", "thresholds": list(ACKLEY_THRESHOLDS),
                      "grids": "L2, H1-exact, H1-FDM: uniform n x n grid; H1-Chebyshev: n x n Chebyshev-Gauss-Lobatto "
                               "grid; test: n_test uniform random points, shared"},
           "eval_steps": eval_steps.tolist(), "variants": {}}
    for v, rs in runs.items():
        per_seed = []
        for r in rs:
            hits = {}
            for th in ACKLEY_THRESHOLDS:
                step, sec = r.first_below(th)
                hits[f"{th:.0e}"] = {"steps": step, "seconds": finite_or_none(sec)}
            per_seed.append({"seed": r.seed, "final_test_mse": finite_or_none(r.test_mse[-1]),
                             "final_train_value_mse": finite_or_none(r.value_mse[-1]),
                             "train_seconds": float(r.seconds[-1]), "target_seconds": r.target_seconds,
                             "thresholds": hits})
        thr = {}
        for th in ACKLEY_THRESHOLDS:
            key = f"{th:.0e}"
            thr[key] = {"steps": spread([ps["thresholds"][key]["steps"] for ps in per_seed]),
                        "seconds": spread([ps["thresholds"][key]["seconds"] for ps in per_seed])}
        out["variants"][v] = {
            "per_seed": per_seed, "thresholds": thr,
            "final_test_mse": spread([ps["final_test_mse"] for ps in per_seed]),
            "seconds_per_step": spread([ps["train_seconds"] / p["steps"] for ps in per_seed]),
            "test_mse_curve": band([r.test_mse for r in rs]),
            "seconds_curve": band([r.seconds[r.eval_steps] for r in rs]),
        }
    # accuracy of the numerical derivative targets themselves (against the exact gradient on each grid)
    for v, data in (("H1-FDM", uniform), ("H1-Chebyshev", cheb)):
        dy = derivative_targets(data, v).dy
        out["variants"][v]["derivative_target_rel_error"] = float(np.linalg.norm(dy - data.dy) / np.linalg.norm(data.dy))

    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for v in ACKLEY_VARIANTS:
        d = out["variants"][v]
        _plot_band(axes[0], eval_steps, d["test_mse_curve"], v, COLORS[v])
        secs = np.array([np.nan if s is None else s for s in d["seconds_curve"]["median"]])
        _plot_band(axes[1], secs, d["test_mse_curve"], v, COLORS[v])
    for ax, xl in zip(axes, ("Adam steps", "training seconds (median over seeds)")):
        for th in ACKLEY_THRESHOLDS:
            ax.axhline(th, color="k", lw=0.5, ls=":")
        ax.set_xlabel(xl)
        ax.set_ylabel("test MSE")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    fig.suptitle(f"Ackley 2-D, {p['n']}x{p['n']} grid: median over {len(seeds)} seeds, band = min–max")
    fig.tight_layout()
    return out, fig


def _claim5_verdict(ack: dict) -> dict:
    """Per numerical variant and threshold: median steps and seconds relative to L2."""
    rows, V = [], ack["variants"]
    for v in ("H1-FDM", "H1-Chebyshev", "H1-exact"):
        for th in ACKLEY_THRESHOLDS:
            key = f"{th:.0e}"
            row = {"variant": v, "threshold": th}
            for what in ("steps", "seconds"):
                a, b = V[v]["thresholds"][key][what]["median"], V["L2"]["thresholds"][key][what]["median"]
                if a is None and b is None:
                    rel, status = None, "neither reached"
                elif b is None:
                    rel, status = None, "only Sobolev reached"
                elif a is None:
                    rel, status = None, "only L2 reached"
                else:
                    rel = a / b if b > 0 else None
                    status = "faster" if a < b else "comparable" if a <= COMPARABLE * b else "slower"
                row[f"{what}_ratio_to_L2"], row[f"{what}_status"] = rel, status
            rows.append(row)
    return rows


def _claim5_text(rows, ack) -> tuple:
    good = {"faster", "comparable", "only Sobolev reached"}
    informative = [r for r in rows if r["variant"] != "H1-exact" and r["steps_status"] != "neither reached"]
    ok_steps = [r for r in informative if r["steps_status"] in good]
    ok_secs = [r for r in informative if r["seconds_status"] in good]
    def reached(v, th):
        return ack["variants"][v]["thresholds"][f"{th:.0e}"]["steps"]["median"] is not None

    paper_reached = {v: [th for th in ACKLEY_THRESHOLDS[2:] if reached(v, th)] for v in ACKLEY_VARIANTS}
    if not informative:
        verdict = "inconclusive"
    elif len(ok_steps) == len(informative) and all(
            paper_reached[v] == list(ACKLEY_THRESHOLDS[2:]) for v in ("H1-FDM", "H1-Chebyshev")):
        verdict = "confirmed"
    elif len(ok_steps) >= len(informative) / 2:
        verdict = "confirmed with qualifications"
    else:
        verdict = "refuted"
    return verdict, len(ok_steps), len(ok_secs), len(informative), paper_reached


# ----------------------------------------------------------------------------- 2. architectures
def _architectures(ctx: Context, prof: dict) -> tuple:
    p = prof["arch"]
    seeds = [ctx.seed * 100 + i for i in range(p.get("seeds", prof["seeds"]))]
    out = {"config": {**p, "seeds": seeds, "models": "three hidden layers of 64: " + ", ".join(ARCHITECTURES),
                      "optimiser": "Adam, full batch" + (f", then {p['lbfgs']} L-BFGS iterations" if p["lbfgs"] else "")},
           "results": {}}
    total = len(p["targets"]) * len(ARCHITECTURES) * len(ARCH_VARIANTS) * len(seeds)
    curves = {}
    with _progress(ctx, total, "architectures") as bar:
        for t in p["targets"]:
            data = line_data(t, p["n"], p["n_test"], np.random.default_rng([ctx.seed, 2, int(t[1])]))
            for arch, factory in ARCHITECTURES.items():
                for v in ARCH_VARIANTS:
                    rs = []
                    for s in seeds:
                        rs.append(train(factory, data, v, p["steps"], p["lr"], s, eval_every=p["eval_every"],
                                        lbfgs_steps=p["lbfgs"], device=ctx.device))
                        bar.update()
                    key = f"{t} | {arch} | {v}"
                    curves[key] = (rs[0].eval_steps, band([r.test_mse for r in rs]))
                    out["results"][key] = {
                        "target": t, "architecture": arch, "variant": v,
                        "final_test_mse": spread([finite_or_none(r.test_mse[-1]) for r in rs]),
                        "per_seed_final_test_mse": [finite_or_none(r.test_mse[-1]) for r in rs],
                        "train_seconds": spread([float(r.seconds[-1]) for r in rs]),
                        "test_mse_curve": curves[key][1], "eval_steps": rs[0].eval_steps.tolist()}
    plt = _plt()
    nt, na = len(p["targets"]), len(ARCHITECTURES)
    fig, axes = plt.subplots(nt, na, figsize=(4.0 * na, 3.0 * nt), squeeze=False)
    for i, t in enumerate(p["targets"]):
        for j, arch in enumerate(ARCHITECTURES):
            ax = axes[i, j]
            for v in ARCH_VARIANTS:
                steps, b = curves[f"{t} | {arch} | {v}"]
                _plot_band(ax, steps, b, v, COLORS[v])
            ax.set_title(f"{t} = {TARGET_FORMULAS[t]}, {arch}", fontsize=9)
            ax.grid(alpha=0.3, which="both")
            if i == nt - 1:
                ax.set_xlabel("steps")
            if j == 0:
                ax.set_ylabel("test MSE")
    axes[0, 0].legend(fontsize=8)
    fig.suptitle(f"1-D targets, {p['n']} uniform points: median over {len(seeds)} seeds, band = min–max", fontsize=10)
    fig.tight_layout()
    return out, fig


# ----------------------------------------------------------------------------- 3. high dimension
def _high_dimension(ctx: Context, prof: dict) -> tuple:
    p, nseeds = prof["highdim"], prof["seeds"]
    out = {"config": {**p, "seeds": [ctx.seed * 100 + i for i in range(nseeds)],
                      "teacher": "K* = K rows w*_j ~ N(0, I_d / d); student K rows, init N(0, I_d / d)",
                      "optimiser": "plain full-batch gradient descent",
                      "error": "relative test MSE = test MSE / mean(teacher(x)^2) on n_test fresh samples",
                      "matched": "L2 (matched targets): L2 on min(n (d + 1), matched_cap) samples, as many target "
                                 "numbers as H1 uses (up to the cap)"},
           "rows": []}
    total = len(p["widths"]) * len(p["dims"]) * len(HD_VARIANTS) * nseeds
    with _progress(ctx, total, "high dimension") as bar:
        for K in p["widths"]:
            for d in p["dims"]:
                per = {v: [] for v in HD_VARIANTS}
                for i in range(nseeds):
                    seed = ctx.seed * 100 + i
                    rng = np.random.default_rng([ctx.seed, 3, K, d, i])
                    W_star = rng.standard_normal((K, d)) / np.sqrt(d)
                    data = teacher_data(W_star, p["n"], p["n_test"], rng, p["fd_step"])
                    n_matched = min(p["n"] * (d + 1), p["matched_cap"])
                    big = teacher_data(W_star, n_matched, 2, rng, p["fd_step"])
                    big.x_test, big.y_test = data.x_test, data.y_test
                    scale = float(np.mean(data.y_test**2))
                    for v in HD_VARIANTS:
                        r = train(lambda: ReluStudent(K, d), big if v.startswith("L2 (") else data,
                                  "L2" if v.startswith("L2") else v, p["steps"], p["lr"], seed, optimizer="gd",
                                  eval_every=p["eval_every"], device=ctx.device)
                        per[v].append({"seed": seed, "rel_error_curve": r.test_mse / scale,
                                       "final_rel_error": finite_or_none(r.test_mse[-1] / scale),
                                       "train_seconds": float(r.seconds[-1]), "target_seconds": r.target_seconds,
                                       "target_queries":
                                           (n_matched if v.startswith("L2 (") else p["n"]) + r.target_queries,
                                       "eval_steps": r.eval_steps})
                        bar.update()
                for v in HD_VARIANTS:
                    rs = per[v]
                    out["rows"].append({
                        "K": K, "d": d, "variant": v,
                        "n_samples": n_matched if v.startswith("L2 (") else p["n"],
                        "teacher_queries": rs[0]["target_queries"],
                        "final_rel_error": spread([r["final_rel_error"] for r in rs]),
                        "train_seconds": spread([r["train_seconds"] for r in rs]),
                        "target_seconds": spread([r["target_seconds"] for r in rs]),
                        "eval_steps": rs[0]["eval_steps"].tolist(),
                        "rel_error_curve": band([r["rel_error_curve"] for r in rs])})
    plt = _plt()
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    styles = {K: ls for K, ls in zip(p["widths"], ("-", "--", ":", "-."))}
    for K in p["widths"]:
        for v in HD_VARIANTS:
            rows = [r for r in out["rows"] if r["K"] == K and r["variant"] == v]
            ds = [r["d"] for r in rows]
            med, lo, hi = (np.array([np.nan if r["final_rel_error"][k] is None else r["final_rel_error"][k] for r in rows])
                           for k in ("median", "min", "max"))
            axes[0].errorbar(ds, med, yerr=[med - lo, hi - med], color=COLORS[v], ls=styles[K], marker="o", ms=3,
                             capsize=2, label=f"{v}, K={K}")
            cost = np.array([r["train_seconds"]["median"] + r["target_seconds"]["median"] for r in rows])
            axes[1].loglog(ds, cost, color=COLORS[v], ls=styles[K], marker="o", ms=3, label=f"{v}, K={K}")
        rows = [r for r in out["rows"] if r["K"] == K and r["d"] == max(p["dims"])]
        for r in rows:
            _plot_band(axes[2], r["eval_steps"], r["rel_error_curve"], f"{r['variant']}, K={K}", COLORS[r["variant"]])
            axes[2].lines[-1].set_linestyle(styles[K])
    axes[0].set(xscale="log", yscale="log", xlabel="d", ylabel="relative test MSE after training",
                title="error against d (median, min–max)")
    axes[1].set(xlabel="d", ylabel="seconds (training + derivative targets)", title="cost against d (median)")
    axes[2].set(xlabel="gradient-descent steps", ylabel="relative test MSE", title=f"d = {max(p['dims'])}")
    for ax in axes:
        ax.grid(alpha=0.3, which="both")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    return out, fig


# ----------------------------------------------------------------------------- 4. autoencoder
def _autoencoder(ctx: Context, prof: dict) -> tuple:
    p = prof["ae"]
    seeds = [ctx.seed * 100 + i for i in range(p["seeds"])]
    clean_train, clean_test = ae.split_digits(ctx.seed)
    runs = {loss: [] for loss in ae.AE_LOSSES}
    with _progress(ctx, len(ae.AE_LOSSES) * len(seeds), "autoencoder") as bar:
        for loss in ae.AE_LOSSES:
            for s in seeds:
                runs[loss].append(ae.train_autoencoder(loss, clean_train, clean_test, p["epochs"], s,
                                                       evals_per_epoch=p["evals_per_epoch"], device=ctx.device,
                                                       n_show=8))
                bar.update()
    steps = runs["MSE"][0].eval_steps
    out = {"config": {**p, "seeds": seeds, "data": f"sklearn 8x8 digits, {len(clean_train)} train / {len(clean_test)} "
                                                   "test, scaled to [0, 1]",
                      "noise": "0.3 sin(2 pi (x + y)) at pixel centres", "lr": 5e-3, "batch": 128, "s": 1.0},
           "eval_steps": steps.tolist(), "losses": {}}
    for loss, rs in runs.items():
        out["losses"][loss] = {
            "final_test_mse": spread([finite_or_none(r.test_mse[-1]) for r in rs]),
            "per_seed_final_test_mse": [finite_or_none(r.test_mse[-1]) for r in rs],
            "final_test_sobolev": spread([finite_or_none(r.test_sobolev[-1]) for r in rs]),
            "train_seconds": spread([r.seconds for r in rs]),
            "test_mse_curve": band([r.test_mse for r in rs]),
            "test_sobolev_curve": band([r.test_sobolev for r in rs])}
    noisy_mse = float(np.mean(ae.noise_pattern() ** 2))
    out["identity_test_mse"] = noisy_mse  # error of returning the noisy input unchanged
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for loss in ae.AE_LOSSES:
        _plot_band(axes[0], steps, out["losses"][loss]["test_mse_curve"], f"trained with {loss}", COLORS[loss])
        _plot_band(axes[1], steps, out["losses"][loss]["test_sobolev_curve"], f"trained with {loss}", COLORS[loss])
    axes[0].axhline(noisy_mse, color="k", ls=":", lw=0.8, label="noisy input as output")
    axes[0].set(xlabel="Adam steps (batch 128)", ylabel="test MSE (clean target)")
    axes[1].set(xlabel="Adam steps (batch 128)", ylabel="test Fourier-multiplier norm, s = 1")
    for ax in axes:
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    fig.suptitle(f"Denoising autoencoder, 8x8 digits: median over {len(seeds)} seeds, band = min–max", fontsize=10)
    fig.tight_layout()
    # reconstructions side by side: seed ctx.seed * 100 (the first seed) of each loss, the first 8 test digits
    noisy = clean_test[:8] + ae.noise_pattern()
    rows = [("clean", clean_test[:8]), ("noisy input", noisy), ("MSE", runs["MSE"][0].reconstructions),
            ("Sobolev s=1", runs["Sobolev"][0].reconstructions)]
    fig2, axs = plt.subplots(len(rows), 8, figsize=(8, 4.4))
    for i, (label, imgs) in enumerate(rows):
        for j in range(8):
            axs[i, j].imshow(imgs[j], cmap="gray", vmin=0, vmax=1)
            axs[i, j].set_xticks([])
            axs[i, j].set_yticks([])
        axs[i, 0].set_ylabel(label, fontsize=8)
    fig2.suptitle(f"first 8 test digits; reconstructions of the first seed ({seeds[0]}) of each loss", fontsize=9)
    fig2.tight_layout()
    return out, fig, fig2


# ----------------------------------------------------------------------------- the report
def build(ctx: Context) -> Report:
    rep = Report(NAME, TITLE)
    prof = PROFILES[ctx.profile]
    t_start = time.perf_counter()
    with _one_thread():
        ack, fig_ack = _ackley(ctx, prof)
        arch, fig_arch = _architectures(ctx, prof)
        hd, fig_hd = _high_dimension(ctx, prof)
        auto, fig_ae, fig_rec = _autoencoder(ctx, prof)
    rep.figures = {f"{NAME}_ackley.png": fig_ack, f"{NAME}_architectures.png": fig_arch,
                   f"{NAME}_high_dimension.png": fig_hd, f"{NAME}_autoencoder.png": fig_ae,
                   f"{NAME}_autoencoder_reconstructions.png": fig_rec}
    c5_rows = _claim5_verdict(ack)
    v5, ok_steps, ok_secs, n_inf, paper_reached = _claim5_text(c5_rows, ack)

    rep.add(f"Profile `{ctx.profile}`, seed {ctx.seed}, device `{ctx.device}`; float32 throughout, one CPU thread "
            f"per run. Every curve is the **median over seeds with the min–max band**; tables give `median [min, max]` "
            "over seeds, `—` for a threshold not reached (a median of `—` means more than half the seeds did not "
            "reach it; `(k/n)` counts the seeds that did). Within each experiment every variant starts from the same "
            "seeds, hence the same initial weights: the comparisons are paired. Nothing is selected: every seed run "
            "is in the JSON. In the JSON, `null` means *not reached* (thresholds) or *not finite* (a diverged run).")
    if ctx.profile != "full":
        rep.add("**Sizes.** These are reduced sizes for a 2-core CPU (the paper's are in `--profile full`, for a GPU): "
                "fewer points, fewer steps and larger learning rates than the paper, 2–5 seeds instead of 5–20. "
                "Conclusions below are about these sizes.")

    # ---- 1. Ackley
    p = ack["config"]
    step_ratio = ack["variants"]["H1-exact"]["seconds_per_step"]["median"] / ack["variants"]["L2"]["seconds_per_step"]["median"]
    lines = ["## 1. Sobolev training without exact derivatives (claim 5): Ackley 2-D", "",
             f"Target: Ackley on `[−2, 2]²`. Model: {p['model']}, Adam lr {p['lr']}, full batch, {p['steps']} steps, "
             f"{len(p['seeds'])} seeds. Training points: a {p['n']}×{p['n']} uniform grid (`L2`, `H1-exact`, `H1-FDM`: "
             "second-order central differences, one-sided at the edges) or Chebyshev–Gauss–Lobatto grid "
             f"(`H1-Chebyshev`: Chebyshev differentiation matrix along each axis). The error is the value MSE on "
             f"{p['n_test']} uniform random test points shared by all variants, evaluated every {p['eval_every']} "
             "steps; the *step* and *seconds* columns give when it first fell below each threshold (seconds: CPU "
             "time of the training steps, one thread, evaluation excluded; synchronised wall time on a GPU). "
             "The paper's thresholds are 1e-3, 1e-4, 1e-5; 1e-1 and 1e-2 are added "
             "because they are what these sizes reach.", "",
             "Relative error of the derivative targets against the exact gradient on their grid: "
             f"FDM {ack['variants']['H1-FDM']['derivative_target_rel_error']:.2e}, Chebyshev "
             f"{ack['variants']['H1-Chebyshev']['derivative_target_rel_error']:.2e} (the cone of Ackley at the origin "
             "is not smooth, so the Chebyshev derivative converges only algebraically there). The Chebyshev grid has "
             f"the same number of nodes but clusters them at the edges: its widest gap is "
             f"{4 * np.sin(np.pi / (2 * (p['n'] - 1))):.3f} against the uniform {4 / (p['n'] - 1):.3f}, so the middle of "
             "the square, where the test points are as dense as anywhere, is sampled more coarsely; this may explain "
             "part of that variant's slower fall of the test error.", "",
             "| variant | final test MSE | s / step | " + " | ".join(f"steps to {th:.0e}" for th in ACKLEY_THRESHOLDS)
             + " |", "|---|---|---|" + "---|" * len(ACKLEY_THRESHOLDS)]
    for v in ACKLEY_VARIANTS:
        d = ack["variants"][v]
        cells = [fmt_spread(d["thresholds"][f"{th:.0e}"]["steps"], ".0f") for th in ACKLEY_THRESHOLDS]
        lines.append(f"| {v} | {fmt_spread(d['final_test_mse'])} | {fmt(d['seconds_per_step']['median'], '.1e')} | "
                     + " | ".join(cells) + " |")
    lines += ["", "| variant | " + " | ".join(f"seconds to {th:.0e}" for th in ACKLEY_THRESHOLDS) + " |",
              "|---|" + "---|" * len(ACKLEY_THRESHOLDS)]
    for v in ACKLEY_VARIANTS:
        d = ack["variants"][v]
        lines.append(f"| {v} | " + " | ".join(fmt_spread(d["thresholds"][f"{th:.0e}"]["seconds"], ".2f")
                                             for th in ACKLEY_THRESHOLDS) + " |")
    lines += ["", f"![Ackley](./{NAME}_ackley.png)", "",
              "Against `L2`, by median over seeds (`comparable` = within "
              f"{int((COMPARABLE - 1) * 100)}% of L2's median):", "",
              "| variant | threshold | steps / L2 | steps | seconds / L2 | seconds |", "|---|---|---|---|---|---|"]
    for r in c5_rows:
        lines.append(f"| {r['variant']} | {r['threshold']:.0e} | {fmt(r['steps_ratio_to_L2'], '.2f')} | "
                     f"{r['steps_status']} | {fmt(r['seconds_ratio_to_L2'], '.2f')} | {r['seconds_status']} |")
    lines += ["", f"**Finding.** Of the {n_inf} (numerical variant, threshold) pairs that at least one of the two "
              f"reached, the numerical-derivative variant was faster than or comparable to `L2` in **steps** in "
              f"{ok_steps} and in **seconds** in {ok_secs} (one `H1` step costs about "
              f"{step_ratio:.1f}× an `L2` step: autograd builds the input gradient and then differentiates through "
              "it). The paper's thresholds reached "
              "(median over seeds): " + "; ".join(f"{v}: {', '.join(f'{t:.0e}' for t in ths) or 'none'}"
                                                 for v, ths in paper_reached.items()) + "."]
    rep.add("\n".join(lines))

    # ---- 2. architectures
    p = arch["config"]
    lines = ["## 2. Across architectures: 1-D targets with tanh MLP, Fourier features, SIREN", "",
             f"`f1 = sin(2πx) + sin(20πx)`, `f2 = x + sin(2πx⁴)`, `f3 = eˣ sin(20x)` on `[−1, 1]`, {p['n']} uniform "
             f"training points, test MSE on {p['n_test']} uniform random points. Models: {p['models']} (Fourier "
             "features: first layer `sin(2π·Linear(x))`, frequencies initialised `N(0, 5²)`; SIREN: ω₀ = 30, "
             f"Sitzmann et al.'s initialisation). {p['optimiser']}, lr {p['lr']}, {p['steps']} steps "
             f"(the paper: lr 1e-5 for 25 000 steps, then L-BFGS), {len(p['seeds'])} seeds. Losses unweighted: "
             "`H1` = value MSE + first-derivative MSE, `H2` adds the second-derivative MSE. Since `f''` of `f1` and "
             "`f3` is of order 10³–10⁴, the `H2` loss is dominated by its second-derivative term; a SIREN's input "
             "derivatives carry a factor ω₀ = 30 per layer, so its Sobolev losses are stiff at this learning rate "
             "(some seeds stall: see the min–max ranges).", "",
             "| target | model | " + " | ".join(f"{v}: final test MSE" for v in ARCH_VARIANTS) + " | best |",
             "|---|---|" + "---|" * (len(ARCH_VARIANTS) + 1)]
    wins = {"H1-exact": 0, "H2": 0}
    wins_by_model = {a: [] for a in ARCHITECTURES}  # targets on which H1 beat L2, per model
    n_cases = 0
    for t in p["targets"]:
        for a in ARCHITECTURES:
            res = {v: arch["results"][f"{t} | {a} | {v}"] for v in ARCH_VARIANTS}
            meds = {v: res[v]["final_test_mse"]["median"] for v in ARCH_VARIANTS}
            best = min(ARCH_VARIANTS, key=lambda v: np.inf if meds[v] is None else meds[v])
            n_cases += 1
            for v in wins:
                if meds[v] is not None and (meds["L2"] is None or meds[v] < meds["L2"]):
                    wins[v] += 1
                    if v == "H1-exact":
                        wins_by_model[a].append(t)
            lines.append(f"| {t} | {a} | " + " | ".join(fmt_spread(res[v]["final_test_mse"]) for v in ARCH_VARIANTS)
                         + f" | {best} |")
    arch["wins_over_L2"] = {**wins, "cases": n_cases, "H1_by_model": wins_by_model}
    lines += ["", f"![architectures](./{NAME}_architectures.png)", "",
              f"**Finding.** Lower median final test MSE than `L2`: `H1` in {wins['H1-exact']} of {n_cases} "
              f"(target, model) cases, `H2` in {wins['H2']} of {n_cases}. Targets on which `H1` beat `L2`, by "
              "model: " + "; ".join(f"{a}: {', '.join(ts) or 'none'}" for a, ts in wins_by_model.items()) + "."]
    rep.add("\n".join(lines))

    # ---- 3. high dimension
    p = hd["config"]
    dmax = max(p["dims"])
    lines = ["## 3. High dimension (claim 6): ReLU student–teacher", "",
             f"`g(x; W) = Σ_j relu(w_j·x)`, `x ~ N(0, I_d)`, teacher and student of equal width `K`; teacher rows "
             f"`N(0, I_d/d)`, a new teacher, data set and student initialisation per seed. {p['n']} training samples; "
             f"{p['optimiser']}, lr {p['lr']}, {p['steps']} steps; error = {p['error']}. `H1-FDM` estimates the "
             f"teacher's input gradient by central differences of the teacher as a black box (step {p['fd_step']}, "
             "`2 n d` extra teacher queries). `L2 (matched targets)` trains on as many samples as `H1` has target "
             f"numbers, `n (d + 1)`, capped at {p['matched_cap']}: the fair baseline for the extra information the "
             "gradient carries.", "",
             "| K | d | variant | samples | teacher queries | final relative test MSE | seconds (train) | "
             "seconds (targets) |", "|---|---|---|---|---|---|---|---|"]
    for r in hd["rows"]:
        lines.append(f"| {r['K']} | {r['d']} | {r['variant']} | {r['n_samples']} | {r['teacher_queries']} | "
                     f"{fmt_spread(r['final_rel_error'])} | {fmt(r['train_seconds']['median'], '.2f')} | "
                     f"{fmt(r['target_seconds']['median'], '.3f')} |")
    low = {}
    for K in p["widths"]:
        rows = {r["variant"]: r for r in hd["rows"] if r["K"] == K and r["d"] == dmax}
        low[K] = {v: (rows[v]["final_rel_error"]["max"] is not None and rows[v]["final_rel_error"]["max"] < LOW_ERROR)
                  for v in HD_VARIANTS}
        low[K]["beats_L2"] = all(
            rows[h]["final_rel_error"]["median"] is not None and rows["L2"]["final_rel_error"]["median"] is not None
            and rows[h]["final_rel_error"]["median"] < rows["L2"]["final_rel_error"]["median"]
            for h in ("H1-exact", "H1-FDM"))
        low[K]["beats_matched_L2"] = all(
            rows[h]["final_rel_error"]["median"] is not None and
            (rows["L2 (matched targets)"]["final_rel_error"]["median"] is None or
             rows[h]["final_rel_error"]["median"] < rows["L2 (matched targets)"]["final_rel_error"]["median"])
            for h in ("H1-exact", "H1-FDM"))
    hd["summary_at_largest_d"] = {str(K): v for K, v in low.items()}
    fd_cost = {r["d"]: r["target_seconds"]["median"] for r in hd["rows"]
               if r["variant"] == "H1-FDM" and r["K"] == p["widths"][-1]}
    lines += ["", f"![high dimension](./{NAME}_high_dimension.png)", "",
              f"**Finding at d = {dmax}** (low = every seed's relative test MSE below {LOW_ERROR:.0e}): " + "; ".join(
                  f"K = {K}: H1-exact low: {v['H1-exact']}, H1-FDM low: {v['H1-FDM']}, L2 low: {v['L2']}, "
                  f"L2 (matched) low: {v['L2 (matched targets)']}, H1 beats L2 (same samples): {v['beats_L2']}, "
                  f"H1 beats matched L2: {v['beats_matched_L2']}" for K, v in low.items()) + ". Cost of the "
              "finite-difference targets (seconds, median): " + ", ".join(f"d = {d}: {s:.3f}" for d, s in fd_cost.items())
              + "; it grows like `n d²` (2d queries per sample, each O(K d)), while a training step grows like "
              "`n K d` for every variant. At large `d` the matched `L2` baseline is capped: at "
              f"d = {dmax} it has {min(p['n'] * (dmax + 1), p['matched_cap'])} samples against the "
              f"{p['n'] * (dmax + 1)} target numbers of `H1`, so there it is not matched and the comparison favours "
              "`H1`; the wide student (`K = 4`) stalls at a relative error of order 0.1 for every loss at these "
              "step counts."]
    rep.add("\n".join(lines))

    # ---- 4. autoencoder
    p = auto["config"]
    L = auto["losses"]
    m_mse, m_sob = L["MSE"]["final_test_mse"], L["Sobolev"]["final_test_mse"]
    overlap = None in (m_sob["max"], m_mse["max"]) or not (m_sob["max"] < m_mse["min"] or m_mse["max"] < m_sob["min"])
    lines = ["## 4. Denoising autoencoder (claim 7)", "",
             f"Data: {p['data']} (the paper uses MNIST; nothing can be downloaded here). Corruption: {p['noise']}, "
             "added to every image. Model: conv encoder 1→32→64→64 channels (3×3, stride 2), linear bottleneck of "
             f"32, mirrored transposed-conv decoder, sigmoid output. Adam lr {p['lr']}, batch {p['batch']}, "
             f"{p['epochs']} epochs, {len(p['seeds'])} seeds (same initialisation and batch order for both losses). "
             "Sobolev loss: the Fourier-multiplier norm `mean |ifft((1 + ξ²)^{s/2} fft(e))|²` along each image axis, "
             "averaged over the two axes, `s = 1`, `ξ = 2πk` on the unit square (with `s = 0` it is exactly the MSE).",
             "", "| trained with | final test MSE | final test Sobolev norm (s = 1) | training seconds |",
             "|---|---|---|---|"]
    for loss in ae.AE_LOSSES:
        lines.append(f"| {loss} | {fmt_spread(L[loss]['final_test_mse'])} | {fmt_spread(L[loss]['final_test_sobolev'])} "
                     f"| {fmt(L[loss]['train_seconds']['median'], '.1f')} |")
    lines += ["", f"Returning the noisy input unchanged has test MSE {auto['identity_test_mse']:.3e}.", "",
              f"![autoencoder](./{NAME}_autoencoder.png)", "",
              f"![reconstructions](./{NAME}_autoencoder_reconstructions.png)",
              "", f"**Finding.** Median final test MSE (plain MSE, the metric the MSE loss optimises): Sobolev "
              f"{fmt(m_sob['median'])}, MSE {fmt(m_mse['median'])}; the seed ranges "
              f"{'overlap' if overlap else 'do not overlap'}."]
    rep.add("\n".join(lines))

    # ---- verdicts
    detail5 = "; ".join(
        f"{v}: " + (", ".join(f"{r['threshold']:.0e} {r['steps_status']}"
                             + (f" ({r['steps_ratio_to_L2']:.2f}x L2's steps)" if r["steps_ratio_to_L2"] else "")
                             for r in c5_rows if r["variant"] == v and r["steps_status"] != "neither reached") or "nothing reached")
        for v in ("H1-FDM", "H1-Chebyshev"))
    rep.verdicts.append({
        "claim": 5, "verdict": v5,
        "convention": f"Ackley 2-D, tanh MLP 4x{ack['config']['width']}, {ack['config']['n']}² grid, Adam "
                      f"{ack['config']['steps']} steps, {len(ack['config']['seeds'])} seeds, CPU float32: H1-FDM / "
                      f"H1-Chebyshev faster than or within 25% of L2 (median steps to a test-MSE threshold) in "
                      f"{ok_steps}/{n_inf} cases ({detail5}; CPU seconds: see report, an H1 step costs more); paper's "
                      "thresholds 1e-3..1e-5 "
                      + ("reached" if all(paper_reached[v] == list(ACKLEY_THRESHOLDS[2:]) for v in ACKLEY_VARIANTS)
                         else "not all reached at these sizes"),
        "evidence": f"{NAME}.md"})
    all_low = all(v["H1-exact"] and v["H1-FDM"] for v in low.values())
    some_low = any(v["H1-exact"] and v["H1-FDM"] for v in low.values())
    beats = all(v["beats_L2"] for v in low.values())
    beats_matched = all(v["beats_matched_L2"] for v in low.values())
    if all_low and beats and beats_matched and ctx.profile == "full":
        v6 = "confirmed"
    elif some_low and beats:
        v6 = "confirmed with qualifications"
    elif beats:
        v6 = "inconclusive"
    else:
        v6 = "refuted"
    rep.verdicts.append({
        "claim": 6, "verdict": v6,
        "convention": f"ReLU student-teacher, d up to {dmax}, n = {hd['config']['n']} samples, gradient descent: "
                      + "; ".join(f"K={K}: H1 (exact and FD) rel. test MSE < {LOW_ERROR:.0e} on every seed: "
                                  f"{v['H1-exact'] and v['H1-FDM']}, beats L2 on the same samples: {v['beats_L2']}, "
                                  f"beats L2 with matched target count (capped at {hd['config']['matched_cap']} samples): "
                                  f"{v['beats_matched_L2']}" for K, v in low.items())
                      + "; FD targets cost 2·n·d extra teacher queries",
        "evidence": f"{NAME}.md"})
    better = m_sob["median"] is not None and m_mse["median"] is not None and m_sob["median"] < m_mse["median"]
    if m_sob["median"] is None or m_mse["median"] is None:
        v7 = "inconclusive"
    elif better:
        v7 = "confirmed with qualifications"  # a smaller data set than the paper's, CPU budget
    else:
        v7 = "inconclusive" if overlap else "refuted"
    rep.verdicts.append({
        "claim": 7, "verdict": v7,
        "convention": f"denoising autoencoder on sklearn 8x8 digits (not MNIST), {p['epochs']} epochs, "
                      f"{len(p['seeds'])} seeds: median test MSE Sobolev (s=1) {fmt(m_sob['median'])} vs MSE "
                      f"{fmt(m_mse['median'])}, seed ranges {'overlap' if overlap else 'disjoint'}; across "
                      f"architectures (1-D, {arch['config']['steps']} Adam steps) H1 beat L2 in "
                      f"{wins['H1-exact']}/{n_cases} (target, model) cases (with SIREN on: "
                      f"{', '.join(wins_by_model.get('SIREN', [])) or 'none'}), unweighted H2 in "
                      f"{wins['H2']}/{n_cases}",
        "evidence": f"{NAME}.md"})

    if ctx.profile == "quick":  # a smoke test: far too small to judge any claim
        for v in rep.verdicts:
            v["convention"] = f"quick smoke-test profile, too small to judge (rules would give: {v['verdict']}); " \
                              + v["convention"]
            v["verdict"] = "inconclusive"
    rep.add("## Verdicts\n\n" + VERDICT_RULES + "\n\n| claim | verdict | convention |\n|---|---|---|\n" + "\n".join(
        f"| {v['claim']} | **{v['verdict']}** | {v['convention']} |" for v in rep.verdicts))
    rep.add("## What limits these comparisons\n\n"
            "- **Sizes and budgets.** CPU-sized problems (profile `" + ctx.profile + "`): fewer points and steps and "
            "larger learning rates than the paper. Thresholds or errors a variant reaches only after many more steps "
            "are invisible here; results at the paper's sizes need `--profile full` on a GPU.\n"
            "- **Seeds.** " + f"{prof['seeds']} seeds (autoencoder {prof['ae']['seeds']}): the min–max bands show "
            "the spread, but no significance test is attempted at this count.\n"
            "- **Seconds** are CPU seconds of the training steps on one thread (wall seconds on a GPU), measured on a "
            "shared 2-core machine: less sensitive to other jobs than wall time, but still affected by cache and "
            "memory contention and by the hardware; they vary from run to run (the JSON is identical across runs "
            "apart from them). Step counts do not.\n"
            "- **Learning rates** are the same for every variant of an experiment and were not tuned per variant; a "
            "Sobolev loss has a different scale from `L2` (Adam is invariant to a constant scale, gradient descent "
            "is not).\n"
            "- **Information.** A Sobolev sample carries `1 + d` numbers; with equal sample counts `H1` sees more "
            "data. The high-dimension table has an `L2` baseline with a matched number of targets for this reason.\n"
            "- **Data set.** The autoencoder uses 8×8 digits instead of MNIST 28×28; the Fourier multiplier acts on "
            "8 frequencies per axis.\n"
            "- **float32** for every training run (differentiation tests are float64).")
    rep.data = {"ackley": ack, "claim5_comparison": c5_rows, "architectures": arch, "high_dimension": hd,
                "autoencoder": auto, "profile_settings": _jsonable(prof),
                "total_build_seconds": time.perf_counter() - t_start}
    return rep


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    return obj


if __name__ == "__main__":
    raise SystemExit(run(sys.modules[__name__]))
