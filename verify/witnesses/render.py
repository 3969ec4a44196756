"""Render layer of the witnesses report: JSON data, Markdown and figures from the summary and the judgement."""
from __future__ import annotations

import numpy as np
from scipy import stats

import numerics

from ..report import Report, pyplot
from .judge import ALPHA


def json_data(s: dict, j: dict) -> dict:
    """The report's JSON ``data``: the numbers of the summary with the decisions taken on them."""
    t = j["tests"]
    mc = s["monte_carlo"]
    return {"alpha": ALPHA,
            "monte_carlo": {"cases": mc["cases"], "entries": mc["entries"],
                            "bonferroni_z": t["monte_carlo"]["bonferroni_z"], "max_abs_z": mc["max_abs_z"],
                            "pass": t["monte_carlo"]["pass"]},
            "quadrature": s["quadrature"],
            "true_gradient_fd": {"rows": s["true_gradient_fd"]["rows"], **t["true_gradient_fd"]},
            "paper_H_vs_mc_jacobian": {"rows": s["paper_H_vs_mc_jacobian"]["rows"], **t["paper_H_vs_mc_jacobian"]},
            "convergence": s["convergence"]}


def convergence_figure(conv: dict):
    plt = pyplot()
    checkpoints = conv["checkpoints"]
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for key, vals in conv.items():
        if key != "checkpoints":
            ax.loglog(checkpoints, vals, "o-" if key.startswith("loss") else "s--", ms=3, label=key)
    ref = np.array(checkpoints, dtype=float)
    ax.loglog(ref, ref**-0.5, "k-", lw=2, alpha=0.5, label="n^(-1/2)")
    ax.set_xlabel("Monte-Carlo samples n")
    ax.set_ylabel("relative error against the closed form")
    ax.set_title("K = K* = 4, d = 20, plain sampling")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    return fig


def z_figure(all_z: np.ndarray, threshold: float):
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 3.6))
    ax.hist(all_z, bins=60, density=True, alpha=0.6, label=f"{all_z.size} z-scores")
    x = np.linspace(-5, 5, 400)
    ax.plot(x, stats.norm.pdf(x), "k-", label="N(0, 1)")
    for s in (-threshold, threshold):
        ax.axvline(s, color="r", ls="--")
    ax.set_xlabel("z = (Monte-Carlo − closed form) / standard error")
    ax.set_title(f"all entries, all cases; red: Bonferroni threshold at family-wise {ALPHA}")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def section_monte_carlo(s: dict, j: dict, name: str) -> str:
    mc, t = s["monte_carlo"], j["tests"]["monte_carlo"]
    lines = [f"Profile `{s['profile']}`, seed {s['seed']}, device `{s['device']}`. Every decision below is taken at "
             f"family-wise level α = {ALPHA}, Bonferroni-corrected over all entries it compares.", "",
             "## 1. Closed forms against Monte-Carlo", "",
             f"Losses `L, J, H` and mean fields `E_x[∇_W ℓ]` of `L, J, H`: {mc['entries']} entries in all, threshold "
             f"|z| < {t['bonferroni_z']:.2f}; largest |z| = {mc['max_abs_z']:.2f}: {j['sentences']['monte_carlo']}. "
             "Cases with `d > K + K*` use subspace sampling (exact, Rao–Blackwellised), the others plain sampling.",
             "", "| case | method | n | entries | max abs z | rel. error L / J / H | rel. error mean field L / J / H |",
             "|---|---|---|---|---|---|---|"]
    for r in mc["cases"]:
        le = " / ".join(f"{r['loss_rel_error'][p]:.1e}" for p in numerics.PARTS)
        me = " / ".join(f"{r['mean_field_rel_error'][p]:.1e}" for p in numerics.PARTS)
        lines.append(f"| {r['case']} | {r['method']} | {r['n']:.0e} | {r['entries']} | {r['max_abs_z']:.2f} | {le} | {me} |")
    lines += ["", f"![z-scores]({name}_z_scores.png)", "",
              f"![convergence]({name}_convergence.png)", "",
              "*Relative error of the Monte-Carlo estimates against the closed forms as the sample count grows, with "
              f"the `n^(-1/2)` line: {j['sentences']['convergence']}.*"]
    return "\n".join(lines)


def section_quadrature(s: dict, j: dict) -> str:
    quad = s["quadrature"]
    lines = ["## 2. Closed forms against quadrature", "",
             f"Each pair expectation by `mpmath.quad` in polar coordinates, split at the kinks, at {quad['dps']} digits, "
             f"against the SymPy closed form at {quad['dps']} digits. Digits agreed = `−log10(|quad − closed| / scale)` "
             f"with the quantity's natural scale (`n_a n_b`, `n_b` or 1). Fewest digits agreed over all "
             f"{len(quad['rows'])} comparisons: **{quad['min_digits']:.1f}** ({j['sentences']['quadrature']}).", "",
             "| θ | n_a, n_b | fewest digits over the quantities |", "|---|---|---|"]
    by_case = {}
    for r in quad["rows"]:
        key = (r["theta"], f"{r['n_a']}, {r['n_b']}")
        by_case[key] = min(by_case.get(key, 99), r["digits"])
    lines += [f"| {t} | {nn} | {dg:.1f} |" for (t, nn), dg in by_case.items()]
    return "\n".join(lines)


def section_true_gradient(s: dict, j: dict) -> str:
    fd, t = s["true_gradient_fd"], j["tests"]["true_gradient_fd"]
    lines = ["## 3. Mean field against true gradient (J and H)", "",
             "Monte-Carlo witness of the **true** gradient: central differences of the MC loss with common random "
             f"numbers (step 1% of the row norm). Threshold |z| < {t['bonferroni_z']:.2f} over {fd['entries']} entries.",
             "", "| K | K* | d | part | n | max abs z vs closed true gradient | max abs z vs closed mean field | "
             "‖mean − true‖ / ‖true‖ |", "|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r['K']} | {r['K_star']} | {r['d']} | {r['part']} | {r['n']:.0e} | {r['max_abs_z_vs_true']:.2f} | "
              f"{r['max_abs_z_vs_mean']:.2f} | {r['relative_gap_mean_vs_true']:.3f} |" for r in fd["rows"]]
    lines += ["", " ".join(j["sentences"]["true_gradient"])]
    return "\n".join(lines)


def section_paper(s: dict, j: dict) -> str:
    pj, t = s["paper_H_vs_mc_jacobian"], j["tests"]["paper_H_vs_mc_jacobian"]
    lines = ["## 4. The paper's ∇²H against a Monte-Carlo Jacobian of the mean field", "",
             "Central differences (common random numbers, step 1% of |w|) of the closed per-sample gradients of "
             "`ℓ_H` (equal to autograd's sample by sample, section 1 and the tests), averaged: a sampling witness of "
             f"the Jacobian of the mean field. Single node, `d = 3`, threshold |z| < {t['bonferroni_z']:.2f} over "
             f"{pj['entries']} entries.", "",
             "| point | n | max abs z: paper ∇²H vs MC Jacobian | max abs z: true Hessian vs MC Jacobian | "
             "max abs gap paper vs true Hessian |", "|---|---|---|---|---|"]
    lines += [f"| {r['point']} | {r['n']:.0e} | {r['max_abs_z_paper_vs_mc_jacobian']:.2f} | "
              f"{r['max_abs_z_true_hessian_vs_mc_jacobian']:.2f} | {r['max_abs_gap_paper_vs_true_hessian']:.3f} |"
              for r in pj["rows"]]
    lines += ["", j["sentences"]["paper"]]
    return "\n".join(lines)


def render(name: str, title: str, summary: dict, judgement: dict) -> Report:
    """Markdown and figures; a section whose witness has no entries (not run) is left out."""
    rep = Report(name, title)
    rep.data = json_data(summary, judgement)
    rep.verdicts = judgement["verdicts"]
    t = judgement["tests"]
    rep.figures[f"{name}_convergence.png"] = convergence_figure(summary["convergence"])
    if t["monte_carlo"]["bonferroni_z"] is not None:
        rep.figures[f"{name}_z_scores.png"] = z_figure(summary["monte_carlo"]["z"], t["monte_carlo"]["bonferroni_z"])
        rep.add(section_monte_carlo(summary, judgement, name))
    if summary["quadrature"]["rows"]:
        rep.add(section_quadrature(summary, judgement))
    if t["true_gradient_fd"]["bonferroni_z"] is not None:
        rep.add(section_true_gradient(summary, judgement))
    if t["paper_H_vs_mc_jacobian"]["bonferroni_z"] is not None:
        rep.add(section_paper(summary, judgement))
    return rep
