"""Markdown and figures of the training report, from the computed summary and the judgement only."""
from __future__ import annotations

import os

import numpy as np

from ..experiments.autoencoder import AE_LOSSES
from ..experiments.summary import fmt_spread
from ..experiments.targets import TARGET_FORMULAS
from ..report import fmt, pyplot
from ..intervals import FAMILY_LEVEL
from .judge import COMPARABLE, VERDICT_RULES
from .settings import ACKLEY_THRESHOLDS, ACKLEY_VARIANTS, ARCH_MODELS, ARCH_VARIANTS, HD_VARIANTS, NAME, PROFILES

SOBOLEV = ARCH_VARIANTS[1:]  # the losses compared with L2 in the architecture table
SIDE_WORDS = {"below": "lower", "above": "higher", "contains": "undecided"}
COLORS = {"L2": "tab:blue", "H1-exact": "tab:orange", "H1-FDM": "tab:green", "H1-Chebyshev": "tab:red",
          "H2": "tab:purple", "L2 (matched targets)": "tab:gray", "MSE": "tab:blue", "Sobolev": "tab:orange"}


def _array(values) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in values], dtype=float)


def _plot_band(ax, x, b, label, color, log=True):
    ax.plot(x, _array(b["median"]), color=color, label=label, lw=1.4)
    ax.fill_between(x, _array(b["min"]), _array(b["max"]), color=color, alpha=0.2, lw=0)
    if log:
        ax.set_yscale("log")


# ----------------------------------------------------------------------------- figures
def ackley_figure(ack: dict):
    plt = pyplot()
    p, eval_steps = ack["config"], np.array(ack["eval_steps"])
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for v in ACKLEY_VARIANTS:
        d = ack["variants"][v]
        _plot_band(axes[0], eval_steps, d["test_mse_curve"], v, COLORS[v])
        _plot_band(axes[1], _array(d["seconds_curve"]["median"]), d["test_mse_curve"], v, COLORS[v])
    for ax, xl in zip(axes, ("Adam steps", "training seconds (median over seeds)")):
        for th in ACKLEY_THRESHOLDS:
            ax.axhline(th, color="k", lw=0.5, ls=":")
        ax.set_xlabel(xl)
        ax.set_ylabel("test MSE")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    fig.suptitle(f"Ackley 2-D, {p['n']}x{p['n']} grid: median over {len(p['seeds'])} seeds, band = min–max")
    fig.tight_layout()
    return fig


def architectures_figure(arch: dict):
    plt = pyplot()
    p = arch["config"]
    nt, na = len(p["targets"]), len(ARCH_MODELS)
    fig, axes = plt.subplots(nt, na, figsize=(4.0 * na, 3.0 * nt), squeeze=False)
    for i, t in enumerate(p["targets"]):
        for j, model in enumerate(ARCH_MODELS):
            ax = axes[i, j]
            for v in ARCH_VARIANTS:
                res = arch["results"][f"{t} | {model} | {v}"]
                _plot_band(ax, np.array(res["eval_steps"]), res["test_mse_curve"], v, COLORS[v])
            ax.set_title(f"{t} = {TARGET_FORMULAS[t]}, {model}", fontsize=9)
            ax.grid(alpha=0.3, which="both")
            if i == nt - 1:
                ax.set_xlabel("steps")
            if j == 0:
                ax.set_ylabel("test MSE")
    axes[0, 0].legend(fontsize=8)
    fig.suptitle(f"1-D targets, {p['n']} uniform points: median over {len(p['seeds'])} seeds, band = min–max",
                 fontsize=10)
    fig.tight_layout()
    return fig


def high_dimension_figure(hd: dict):
    plt = pyplot()
    p = hd["config"]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    styles = {K: ls for K, ls in zip(p["widths"], ("-", "--", ":", "-."))}
    for K in p["widths"]:
        for v in HD_VARIANTS:
            rows = [r for r in hd["rows"] if r["K"] == K and r["variant"] == v]
            ds = [r["d"] for r in rows]
            med, lo, hi = (_array([r["final_rel_error"][k] for r in rows]) for k in ("median", "min", "max"))
            axes[0].errorbar(ds, med, yerr=[med - lo, hi - med], color=COLORS[v], ls=styles[K], marker="o", ms=3,
                             capsize=2, label=f"{v}, K={K}")
            cost = np.array([r["train_seconds"]["median"] + r["target_seconds"]["median"] for r in rows])
            axes[1].loglog(ds, cost, color=COLORS[v], ls=styles[K], marker="o", ms=3, label=f"{v}, K={K}")
        for r in (r for r in hd["rows"] if r["K"] == K and r["d"] == max(p["dims"])):
            _plot_band(axes[2], np.array(r["eval_steps"]), r["rel_error_curve"], f"{r['variant']}, K={K}",
                       COLORS[r["variant"]])
            axes[2].lines[-1].set_linestyle(styles[K])
    axes[0].set(xscale="log", yscale="log", xlabel="d", ylabel="relative test MSE after training",
                title="error against d (median, min–max)")
    axes[1].set(xlabel="d", ylabel="seconds (training + derivative targets)", title="cost against d (median)")
    axes[2].set(xlabel="gradient-descent steps", ylabel="relative test MSE", title=f"d = {max(p['dims'])}")
    for ax in axes:
        ax.grid(alpha=0.3, which="both")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def autoencoder_figures(auto: dict, images: dict, data_label: str = "8x8 digits") -> tuple:
    """The test curves of both losses, and the first 8 test digits with the reconstructions of the first seed
    (``data_label`` names the data in the title: the MNIST report draws the same figures)."""
    plt = pyplot()
    steps, seeds = np.array(auto["eval_steps"]), auto["config"]["seeds"]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for loss in AE_LOSSES:
        _plot_band(axes[0], steps, auto["losses"][loss]["test_mse_curve"], f"trained with {loss}", COLORS[loss])
        _plot_band(axes[1], steps, auto["losses"][loss]["test_sobolev_curve"], f"trained with {loss}", COLORS[loss])
    axes[0].axhline(auto["identity_test_mse"], color="k", ls=":", lw=0.8, label="noisy input as output")
    axes[0].set(xlabel="Adam steps (batch 128)", ylabel="test MSE (clean target)")
    axes[1].set(xlabel="Adam steps (batch 128)", ylabel="test Fourier-multiplier norm, s = 1")
    for ax in axes:
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    fig.suptitle(f"Denoising autoencoder, {data_label}: median over {len(seeds)} seeds, band = min–max", fontsize=10)
    fig.tight_layout()
    rows = [("clean", images["clean"]), ("noisy input", images["noisy input"]), ("MSE", images["MSE"]),
            ("Sobolev s=1", images["Sobolev"])]
    fig2, axs = plt.subplots(len(rows), 8, figsize=(8, 4.4))
    for i, (label, imgs) in enumerate(rows):
        for j in range(8):
            axs[i, j].imshow(imgs[j], cmap="gray", vmin=0, vmax=1)
            axs[i, j].set_xticks([])
            axs[i, j].set_yticks([])
        axs[i, 0].set_ylabel(label, fontsize=8)
    fig2.suptitle(f"first 8 test digits; reconstructions of the first seed ({seeds[0]}) of each loss", fontsize=9)
    fig2.tight_layout()
    return fig, fig2


def figures(summary: dict) -> dict:
    fig_ae, fig_rec = autoencoder_figures(summary["autoencoder"], summary["images"])
    return {f"{NAME}_ackley.png": ackley_figure(summary["ackley"]),
            f"{NAME}_architectures.png": architectures_figure(summary["architectures"]),
            f"{NAME}_high_dimension.png": high_dimension_figure(summary["high_dimension"]),
            f"{NAME}_autoencoder.png": fig_ae, f"{NAME}_autoencoder_reconstructions.png": fig_rec}


# ----------------------------------------------------------------------------- Markdown
def _seed_counts(prof: dict) -> str:
    """``"3–5"``: the fewest and most seeds of a profile's experiments."""
    counts = {prof["seeds"], prof["ae"]["seeds"], prof["arch"].get("seeds", prof["seeds"])}
    return f"{min(counts)}–{max(counts)}" if len(counts) > 1 else f"{min(counts)}"


def _runs_on(ctx, prof: dict) -> str:
    """How each run used the machine: the dtype, and on CPU the thread count."""
    threads = prof["threads"]
    where = "on the GPU" if str(ctx.device).startswith("cuda") else f"{threads} CPU thread{'s' * (threads > 1)} per run"
    return f"{prof['dtype']} throughout, {where}"


def introduction(ctx, prof: dict) -> list:
    blocks = [f"Profile `{ctx.profile}`, seed {ctx.seed}, device `{ctx.device}`; {_runs_on(ctx, prof)}. Every curve "
              "is the **median over seeds with the min–max band**; tables give `median [min, max]` over seeds, `—` for a "
              "threshold not reached (a median of `—` means more than half the seeds did not reach it; `(k/n)` counts "
              "the seeds that did). Within each experiment every variant starts from the same seeds, hence the same "
              "initial weights: the comparisons are paired, and the verdicts read intervals of the per-seed paired "
              "ratios (Verdicts section). Nothing is selected: every seed run is in the JSON. In the JSON, `null` means "
              "*not reached* (thresholds) or *not finite* (a diverged run)."]
    if ctx.profile != "full":
        blocks.append(f"**Sizes.** These are reduced sizes (the paper's are in `--profile full`): fewer points, fewer "
                      f"steps and larger learning rates than the paper, {_seed_counts(prof)} seeds instead of "
                      f"{_seed_counts(PROFILES['full'])}. Conclusions below are about these sizes.")
    return blocks


def ackley_section(ack: dict, j: dict) -> str:
    p, V = ack["config"], ack["variants"]
    lines = ["## 1. Sobolev training without exact derivatives (claim 5): Ackley 2-D", "",
             f"Target: Ackley on `[−2, 2]²`. Model: {p['model']}, Adam lr {p['lr']}, full batch, {p['steps']} steps, "
             f"{len(p['seeds'])} seeds. Training points: a {p['n']}×{p['n']} uniform grid (`L2`, `H1-exact`, `H1-FDM`: "
             "second-order central differences, one-sided at the edges) or Chebyshev–Gauss–Lobatto grid "
             f"(`H1-Chebyshev`: Chebyshev differentiation matrix along each axis). The error is the value MSE on "
             f"{p['n_test']} uniform random test points shared by all variants, evaluated every {p['eval_every']} "
             "steps; the *step* and *seconds* columns give when it first fell below each threshold (seconds: CPU "
             "time of the training steps on a CPU, synchronised wall time on a GPU; evaluation excluded). "
             + j["threshold_note"], "",
             "Relative error of the derivative targets against the exact gradient on their grid: "
             f"FDM {V['H1-FDM']['derivative_target_rel_error']:.2e}, Chebyshev "
             f"{V['H1-Chebyshev']['derivative_target_rel_error']:.2e} (the cone of Ackley at the origin "
             "is not smooth, so the Chebyshev derivative converges only algebraically there). " + j["grid_note"], "",
             "| variant | final test MSE | s / step | " + " | ".join(f"steps to {th:.0e}" for th in ACKLEY_THRESHOLDS)
             + " |", "|---|---|---|" + "---|" * len(ACKLEY_THRESHOLDS)]
    for v in ACKLEY_VARIANTS:
        cells = [fmt_spread(V[v]["thresholds"][f"{th:.0e}"]["steps"], ".0f") for th in ACKLEY_THRESHOLDS]
        lines.append(f"| {v} | {fmt_spread(V[v]['final_test_mse'])} | {fmt(V[v]['seconds_per_step']['median'], '.1e')} | "
                     + " | ".join(cells) + " |")
    lines += ["", "| variant | " + " | ".join(f"seconds to {th:.0e}" for th in ACKLEY_THRESHOLDS) + " |",
              "|---|" + "---|" * len(ACKLEY_THRESHOLDS)]
    for v in ACKLEY_VARIANTS:
        lines.append(f"| {v} | " + " | ".join(fmt_spread(V[v]["thresholds"][f"{th:.0e}"]["seconds"], ".2f")
                                             for th in ACKLEY_THRESHOLDS) + " |")
    level = j["rows"][0]["level"] if j["rows"] else None
    lines += ["", f"![Ackley](./{NAME}_ackley.png)", "",
              "Against `L2`: the interval of the per-seed ratio of steps to each threshold (paired by seed; "
              f"{fmt(level, '.2%')} each, so that the numerical variants' intervals hold jointly at "
              f"{FAMILY_LEVEL:.0%}; `∞`: a seed on which the variant did not reach it leaves the interval open), the "
              f"status it gives (`comparable` = below {COMPARABLE}), and median seconds against `L2`'s (not judged):",
              "", "| variant | threshold | seeds informative | steps / L2: interval | status | median seconds / L2 |",
              "|---|---|---|---|---|---|"]
    for r in j["rows"]:
        high = "∞" if r["steps_ratio_high"] is None else f"{r['steps_ratio_high']:.2f}"
        interval = "—" if r["steps_ratio_low"] is None else f"[{r['steps_ratio_low']:.2f}, {high}]"
        lines.append(f"| {r['variant']} | {r['threshold']:.0e} | {r['seeds_informative']} | {interval} | "
                     f"{r['steps_status']} | {fmt(r['seconds_ratio_to_L2'], '.2f')} |")
    lines += ["", "**Finding.** " + j["finding"]]
    return "\n".join(lines)


def architectures_section(arch: dict, j: dict) -> str:
    p = arch["config"]
    lines = ["## 2. Across architectures: 1-D targets with tanh MLP, Fourier features, SIREN", "",
             f"`f1 = sin(2πx) + sin(20πx)`, `f2 = x + sin(2πx⁴)`, `f3 = eˣ sin(20x)` on `[−1, 1]`, {p['n']} uniform "
             f"training points, test MSE on {p['n_test']} uniform random points. Models: {p['models']} (Fourier "
             "features: first layer `sin(2π·Linear(x))`, frequencies initialised `N(0, 5²)`; SIREN: ω₀ = 30, "
             f"Sitzmann et al.'s initialisation). {p['optimiser']}, lr {p['lr']}, {p['steps']} steps "
             f"(the paper: lr 1e-5 for 25 000 steps, then L-BFGS), {len(p['seeds'])} seeds. Losses unweighted: "
             "`H1` = value MSE + first-derivative MSE, `H2` adds the second-derivative MSE. Since `f''` of `f1` and "
             "`f3` is of order 10³–10⁴, the `H2` loss is dominated by its second-derivative term; " + j["siren_note"],
             "", "| target | model | " + " | ".join(f"{v}: final test MSE" for v in ARCH_VARIANTS) + " | best (median) | "
             + " | ".join(f"{v} against L2" for v in SOBOLEV) + " |",
             "|---|---|" + "---|" * (len(ARCH_VARIANTS) + 1 + len(SOBOLEV))]
    for case, best in j["best"].items():
        res = [arch["results"][f"{case} | {v}"]["final_test_mse"] for v in ARCH_VARIANTS]
        sides = [SIDE_WORDS[j["position"][f"{case} | {v}"]] for v in SOBOLEV]
        lines.append(f"| {case} | " + " | ".join(map(fmt_spread, res)) + f" | {best} | " + " | ".join(sides) + " |")
    lines += ["", f"*Against L2*: the interval of the per-seed ratio of final test MSE ({fmt(j['level'], '.2%')} each, "
              f"jointly {FAMILY_LEVEL:.0%} over the table) lies below 1 (*lower*), above 1 (*higher*) or contains 1 "
              "(*undecided*)."]
    lines += ["", f"![architectures](./{NAME}_architectures.png)", "", "**Finding.** " + j["finding"]]
    return "\n".join(lines)


def high_dimension_section(hd: dict, j: dict) -> str:
    p = hd["config"]
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
    lines += ["", f"![high dimension](./{NAME}_high_dimension.png)", "",
              f"**Finding at d = {j['largest_d']}** " + j["finding"]]
    return "\n".join(lines)


def mnist_paragraph(j: dict, where: dict | None) -> list:
    """The MNIST run claim 7 reads, when there is one: its finding and the verdict its rule gives."""
    if where is None or j.get("mnist") is None:
        return ["", "No MNIST run at hand: claim 7 is judged on the digits (run `python -m verify.training --mnist "
                "PATH` with MNIST on disk, see `docs/mnist.md`)."]
    m = j["mnist"]
    return ["", f"**On MNIST** ([{where['file']}]({where['file']}), "
            f"{'at' if m['paper_size'] else 'below'} the paper's size; the claim-7 verdict is this run's): "
            f"{m['finding']} Verdict by its rule: **{m['verdict']}**."]


def autoencoder_section(auto: dict, j: dict, mnist_where: dict | None = None) -> str:
    p, L = auto["config"], auto["losses"]
    lines = ["## 4. Denoising autoencoder (claim 7)", "",
             f"Data: {p['data']} (the paper uses MNIST; nothing can be downloaded here). Corruption: {p['noise']}, "
             "added to every image. Model: conv encoder 1→32→64→64 channels (3×3, stride 2), linear bottleneck of "
             f"32, mirrored transposed-conv decoder, sigmoid output. Adam lr {p['lr']}, batch {p['batch']}, "
             f"{p['epochs']} epochs, {len(p['seeds'])} seeds (same initialisation and batch order for both losses). "
             "Sobolev loss: the Fourier-multiplier norm `mean |ifft((1 + ξ²)^{s/2} fft(e))|²` along each image axis, "
             "averaged over the two axes, `s = 1`, `ξ = 2πk` on the unit square (with `s = 0` it is exactly the MSE).",
             "", "| trained with | final test MSE | final test Sobolev norm (s = 1) | training seconds |",
             "|---|---|---|---|"]
    for loss in AE_LOSSES:
        lines.append(f"| {loss} | {fmt_spread(L[loss]['final_test_mse'])} | {fmt_spread(L[loss]['final_test_sobolev'])} "
                     f"| {fmt(L[loss]['train_seconds']['median'], '.1f')} |")
    lines += ["", f"Returning the noisy input unchanged has test MSE {auto['identity_test_mse']:.3e}.", "",
              f"![autoencoder](./{NAME}_autoencoder.png)", "",
              f"![reconstructions](./{NAME}_autoencoder_reconstructions.png)",
              "", "**Finding.** " + j["finding"]] + mnist_paragraph(j, mnist_where)
    return "\n".join(lines)


def verdict_section(verdicts: list) -> str:
    return ("## Verdicts\n\n" + VERDICT_RULES + "\n\n| claim | verdict | convention |\n|---|---|---|\n" + "\n".join(
        f"| {v['claim']} | **{v['verdict']}** | {v['convention']} |" for v in verdicts))


def _seconds_limit(ctx, prof: dict) -> str:
    if str(ctx.device).startswith("cuda"):
        return ("- **Seconds** are synchronised wall seconds of the training steps on the GPU: they depend on the card "
                "and vary from run to run (the JSON is identical across runs apart from them). Step counts do not.\n")
    cores = os.cpu_count()
    return (f"- **Seconds** are CPU seconds of the training steps on {prof['threads']} thread(s), measured on this "
            f"machine ({cores} logical cores): less sensitive to other jobs than wall time, but still affected by cache "
            "and memory contention and by the hardware; they vary from run to run (the JSON is identical across runs "
            "apart from them). Step counts do not.\n")


def limits_section(ctx, prof: dict) -> str:
    reduced = ctx.profile != "full"
    sizes = (f"- **Sizes and budgets.** Reduced problems (profile `{ctx.profile}`): fewer points and steps and larger "
             "learning rates than the paper. Thresholds or errors a variant reaches only after many more steps are "
             "invisible here; results at the paper's sizes need `--profile full`.\n" if reduced else
             "- **Sizes and budgets.** The paper's sizes (profile `full`), with the learning rates stated in each "
             "section.\n")
    return (
        "## What limits these comparisons\n\n" + sizes +
        f"- **Seeds.** {prof['seeds']} seeds (autoencoder {prof['ae']['seeds']}): the verdicts read Student-t intervals "
        f"of per-seed paired ratios, jointly at {FAMILY_LEVEL:.0%} within each rule; with few seeds the intervals are "
        "wide and a case is more often undecided. A perturbation of what differs between machines (float64 instead "
        "of float32, two threads instead of one) changes no verdict and no stated count on the `quick` profile "
        "(`tests/test_training_perturbation.py`).\n" + _seconds_limit(ctx, prof) +
        "- **Learning rates** are the same for every variant of an experiment and were not tuned per variant; a "
        "Sobolev loss has a different scale from `L2` (Adam is invariant to a constant scale, gradient descent "
        "is not).\n"
        "- **Information.** A Sobolev sample carries `1 + d` numbers; with equal sample counts `H1` sees more "
        "data. The high-dimension table has an `L2` baseline with a matched number of targets for this reason.\n"
        "- **Data set.** The autoencoder here uses 8×8 digits instead of MNIST 28×28; the Fourier multiplier acts "
        "on 8 frequencies per axis. With MNIST on disk, `python -m verify.training --mnist PATH` runs it at 28×28 "
        "(`training_mnist.md`), and claim 7 reads that run.\n"
        f"- **{prof['dtype']}** for every training run (differentiation tests are float64).")


def markdown(summary: dict, judgement: dict, ctx, prof: dict, mnist_where: dict | None = None) -> list:
    """The report's Markdown blocks, in order."""
    return introduction(ctx, prof) + [
        ackley_section(summary["ackley"], judgement["ackley"]),
        architectures_section(summary["architectures"], judgement["architectures"]),
        high_dimension_section(summary["high_dimension"], judgement["high_dimension"]),
        autoencoder_section(summary["autoencoder"], judgement["autoencoder"], mnist_where),
        verdict_section(judgement["verdicts"]), limits_section(ctx, prof)]
