"""Render layer of the conditioning report: Markdown and figures from the summary and the judgement only."""
from __future__ import annotations

import numpy as np

from numerics import conditioning as cond
from verify.report import fmt, pyplot

from .compute import DEFS, FIELD_TEXT, FIELDS, MAP_DIMS, groups_of, ratio
from .judge import ALPHA

INTRO = """
Condition numbers of the three Hessian-type matrices of `L` and of `H = L + J` (docs/theory.md, section 5), compared as
**κ(H)/κ(L) for the same kind of matrix and the same definition** (below 1: `H` is better conditioned).

| kind | object | symmetric? |
|---|---|---|
| `true` | Hessian of the population loss | yes |
| `mean` | Jacobian of the mean field `E_x[∇_W ℓ]` (what autograd-based training follows) | for `L` yes; for `H` no |
| `autograd` | `E_x` of the per-sample autograd Hessian (σ'' = 0) | yes |

Definitions (`numerics.conditioning`): **symmetric** — λmax/λmin of `(M + Mᵀ)/2`, where it is positive
definite; **singular** — σmax/σmin; **real part** — max Re λ / min Re λ of the eigenvalues of `M`, where all
are positive. For a symmetric positive definite matrix the three agree. For the Jacobian of a gradient field
the real-part ratio is the ratio of the fastest to the slowest local decay rate of gradient flow: it is the
definition the paper's statement needs, because its `∇²H` *is* the Jacobian of the mean field of `H`
([formulas report](formulas.md)), a non-symmetric matrix whose eigenvalues (not its singular values or its
symmetric part) set the local rates of the flow it linearises."""


# ----------------------------------------------------------------------------- Markdown
def section_spectrum(table) -> str:
    q = "q = sin θ / (π ρ)"
    lines = ["## 1. Single node: the spectrum, derived", "",
             "Every single-node Hessian is `E B Eᵀ + s I` in the orthonormal basis `e1 = w/|w|`, `e2` of the plane "
             "of `w, w*` (`theory.spectrum`): its spectrum is that of the 2 × 2 plane block `M = B + s I₂` plus `s` "
             "with multiplicity `d − 2` on the orthogonal complement. Each block depends on `ρ = |w|/|w*|` and "
             "`θ` only (SymPy proves the norms drop out), so `d` enters only through the multiplicity of `s`.", "",
             "| loss | Hessian | plane block `M` (e-basis) | complement eigenvalue `s` |", "|---|---|---|---|"]
    lines += [f"| {p} | {h} | ${m}$ | ${s}$ |" for p, h, m, s in table]
    lines += ["", f"With {q}: `L` (true = mean): eigenvalues `½`, `½ − q`, and `½ − q/2` (×(d−2)). "
              "`H`, Jacobian of the mean field: `1`, `1 − 3q/2` (an upper-triangular block, eigenvalues real) and "
              "`1 − q/2` (×(d−2)). `H`, true Hessian: `1`, `1 − 2q` and `1 − q + 1/(2πρ sin θ)` (×(d−2)) — the "
              "complement eigenvalue **diverges as θ → 0 or π**, the curvature of the kink of `J` at the teacher. "
              "Expected autograd Hessians: `½ I` for `L`, `I` for `H` (κ = 1 for both)."]
    return "\n".join(lines)


def section_maps(maps: dict, sentences: dict) -> str:
    summary, th, rh = maps["summary"], maps["theta_grid"], maps["rho_grid"]
    lines = ["## 2. Single node: maps over θ and ρ", "",
             f"Grid: {th['n']} angles in (0, π) × {rh['n']} log-spaced `ρ ∈ [10⁻², 10²]`; closed-form spectra. "
             "Fractions are of the whole grid; *undefined* means the definition does not apply (not positive "
             "definite, or an eigenvalue with non-positive real part).", "",
             "![true](conditioning_map_true.png)", "", "![mean](conditioning_map_mean.png)", "",
             "| Hessian | d | definition | H better | by > 10% | H worse | equal | only L undefined | only H undefined | both undefined | median ratio | min ratio | max ratio |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for f in FIELDS:
        for d in MAP_DIMS:
            for k in DEFS:
                s = summary[f"{f}/d={d}/{k}"]
                lines.append(f"| {f} | {d} | {k} | {s['fraction_H_better']:.3f} | {s['fraction_H_better_by_10pc']:.3f} | "
                             f"{s['fraction_H_worse']:.3f} | "
                             f"{s['fraction_equal']:.3f} | {s['fraction_L_undefined_only']:.3f} | "
                             f"{s['fraction_H_undefined_only']:.3f} | {s['fraction_both_undefined']:.3f} | "
                             f"{fmt(s['median_ratio'])} | {fmt(s['min_ratio'])} | {fmt(s['max_ratio'])} |")
    lines += ["", sentences["maps"] + " In d = 2 there is no complement."]
    return "\n".join(lines)


def section_multi(cfg: dict, mn_summary: dict) -> str:
    lines = ["## 3. Several nodes", "",
             f"`K = K* ∈ {list(cfg['widths'])}`, `d ∈ {list(cfg['dims'])}`; teacher rows `N(0, I/d)`. *far*: student "
             f"drawn like the teacher ({cfg['n_far']} per size); *near*: each row `w*_j + 0.1|w*_j| u_j` "
             f"({cfg['n_near']} per size); *direction*: `W* + t|W*| D` along {cfg['n_dir']} random unit directions "
             f"`D` per size, `t ∈ {list(cfg['ts'])}`. Spectra of `numerics.hessian`. *defined*: both κ exist.", "",
             "| start | Hessian | definition | instances | defined | H better | only L undefined | only H undefined | median κ(H)/κ(L) | 10%–90% | min | max |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for key, s in mn_summary.items():
        g, f, k = key.split("/")
        frac_txt = f"{s['improved']}/{s['defined']}" + (f" ({s['improved'] / s['defined']:.0%})" if s["defined"] else "")
        lines.append(f"| {g} | {f} | {k} | {s['n']} | {s['defined']} | {frac_txt} | {s['only_L_undefined']} | "
                     f"{s['only_H_undefined']} | {fmt(s['median'])} | "
                     f"{fmt(s['q10'])}–{fmt(s['q90'])} | {fmt(s['min'])} | {fmt(s['max'])} |")
    lines += ["", "![multi-node](conditioning_multinode.png)", "",
              "Approaching the teacher: κ(H)/κ(L) against `t` along each random direction (each line one direction "
              "and size):", "", "![directions](conditioning_directions.png)"]
    return "\n".join(lines)


def section_worst(cfg: dict, worst: dict, sentences: dict) -> str:
    lines = ["## 4. Worst cases", "",
             f"Single node: SciPy `differential_evolution` (seeded, {cfg['de_iter']} generations, polished) over "
             "`θ ∈ [10⁻⁶, π − 10⁻⁶]`, `log10 ρ ∈ [−2, 2]`, maximising κ(H)/κ(L) where both are defined (d = 3 stands "
             f"for every d ≥ 3). Several nodes: Nelder–Mead over `W` ({cfg['nm_starts']} random starts, ≤ "
             f"{cfg['nm_fev']} evaluations each; teacher fixed, `d = 4`); points where the smallest eigenvalue of the "
             f"symmetric part, singular value or real part of an eigenvalue of either matrix is ≤ "
             f"{cond.POSITIVE_TOL:g}·σmax (numerically singular or on the edge of definiteness) are excluded from this "
             "search, as are kinks (a student row parallel to a teacher row) and zero rows.", "",
             "| search | Hessian | size | definition | worst κ(H)/κ(L) found | at |", "|---|---|---|---|---|---|"]
    for key, w in worst.items():
        kind, f, size, k = key.split("/")
        if kind == "single":
            at = "—" if w["ratio"] is None else f"θ = {w['theta']:.3g}, ρ = {w['rho']:.3g}"
        else:
            at = "—" if w["ratio"] is None else f"start {w['start']}, min student–teacher angle {w['min_angle_to_teacher']:.3g}"
        lines.append(f"| {kind} | {f} | {size} | {k} | {fmt(w['ratio'])} | {at} |")
    lines += ["", sentences["true_edge"],
              "A worst ratio of 10⁶ or more means the search reached the edge of the region where κ(H) is defined "
              "(an eigenvalue, real part or singular value of `H`'s matrix → 0 while `L`'s stay away from 0): just "
              "beyond it `H` is indefinite, unstable or singular where `L` is not — so the supremum is infinite for "
              "that definition. " + sentences["mean_edge"]]
    return "\n".join(lines)


def section_cross(cfg: dict, cc: dict, checks: dict) -> str:
    fd_gap = max((r["max_rel_gap"] for r in cc["fd"]), default=None)
    max_z = max((r["max_abs_z"] for r in cc["mc"]), default=None)
    lines = ["## 5. Cross-checks", "",
             f"- Closed-form single-node spectra (this report's maps) against the eigenvalues, symmetric-part "
             f"eigenvalues and singular values of `numerics.hessian` at {cfg['fd_points']} random points for each of "
             f"d = 2, 3, 10: largest gap {cc['closed_form_vs_numerics_hessian_max_rel_gap']:.1e} relative to σmax.",
             f"- `numerics.hessian(…, \"true\")` against central differences of `numerics.gradient(…, \"true\")`, and "
             f"`\"mean\"` against those of `numerics.gradient(…, \"mean\")` (step 10⁻⁶|w_l|), {cfg['fd_points']} random points "
             f"(K ∈ {{1, 2, 3}}, d ∈ {{2, 3, 5}}), L and H: largest relative gap "
             f"{fmt(fd_gap, '.1e')} (tolerance {checks['fd_tolerance']:g}: truncation "
             f"O(h²) plus rounding O(ε/h) ≈ 1e-10): **{'pass' if checks['fd_pass'] else 'FAIL'}**.",
             f"- Expected autograd Hessian against its Monte-Carlo estimate (`numerics.mc.autograd_hessian_mc`, "
             f"n = {cfg['mc_n']:.0e}, {cfg['mc_points']} points, K = K* = 2, d = 3): {cc['mc_entries']} entries with a "
             f"positive standard error, Bonferroni threshold |z| < {fmt(checks['mc_z_threshold'], '.2f')} at family-wise "
             f"α = {ALPHA}; largest |z| = {fmt(max_z, '.2f')}; entries with zero sampling variance agree exactly: "
             f"**{'pass' if checks['mc_pass'] else 'FAIL'}**."]
    return "\n".join(lines)


def markdown(summary: dict, judgement: dict) -> list:
    """The report's Markdown blocks, in order."""
    cfg, sentences = summary["profile_sizes"], judgement["sentences"]
    blocks = [INTRO, section_spectrum(summary["spectrum_table"]),
              section_maps(summary["single_node_maps"], sentences),
              section_multi(cfg, summary["multi_node_summary"]),
              section_worst(cfg, summary["worst_case"], sentences),
              section_cross(cfg, summary["cross_checks"], judgement["cross_checks"]),
              "\n".join(["## 6. Verdict on claim 3", "", *sentences["bullets"], "", sentences["conclusion"]])]
    if sentences["witness"] is not None:
        blocks.append(sentences["witness"])
    blocks.append(sentences["several_nodes"])
    return blocks


# ----------------------------------------------------------------------------- figures
def map_figure(theta, rho, maps, field: str):
    import matplotlib

    plt = pyplot()
    fig, axes = plt.subplots(len(MAP_DIMS), len(DEFS), figsize=(4.2 * len(DEFS), 3.2 * len(MAP_DIMS)),
                             sharex=True, sharey=True, squeeze=False)
    norm = matplotlib.colors.TwoSlopeNorm(vmin=-2, vcenter=0, vmax=2)
    cmap = plt.get_cmap("RdBu_r").with_extremes(bad="0.75")
    im = None
    for i, d in enumerate(MAP_DIMS):
        for j, k in enumerate(DEFS):
            kL, kH = maps[(field, d, k)]
            both = ~(np.ma.getmaskarray(kL) | np.ma.getmaskarray(kH))
            lr = np.ma.MaskedArray(np.log10(np.where(both, np.asarray(kH) / np.asarray(kL), 1.0)), mask=~both)
            ax = axes[i, j]
            im = ax.pcolormesh(theta, rho, np.clip(lr, -2, 2), cmap=cmap, norm=norm, shading="auto")
            if both.any() and (lr.min() < 0 < lr.max()):
                ax.contour(theta, rho, lr.filled(0), levels=[0], colors="k", linewidths=0.8)
            ax.set_yscale("log")
            if i == 0:
                ax.set_title(k.replace("_", " "), fontsize=10)
            if j == 0:
                ax.set_ylabel(f"d = {d}\nρ = |w|/|w*|")
            if i == len(MAP_DIMS) - 1:
                ax.set_xlabel("θ")
    fig.colorbar(im, ax=axes, shrink=0.6, label="log10 κ(H)/κ(L)  (blue: H better; grey: undefined)")
    fig.suptitle(f"Single node: {FIELD_TEXT[field]} — log10 κ(H)/κ(L) per definition", y=0.995)
    return fig


def multinode_figure(groups):
    plt = pyplot()
    fig, axes = plt.subplots(1, len(FIELDS), figsize=(5 * len(FIELDS), 3.8), sharey=True)
    for ax, f in zip(axes, FIELDS):
        labels, vals = [], []
        for g in ("far", "near"):
            for k in DEFS:
                rs = [ratio(r["kappa"][f]["H"][k], r["kappa"][f]["L"][k]) for r in groups[g]]
                rs = [x for x in rs if x is not None]
                if rs:
                    labels.append(f"{g}\n{k.replace('_', ' ')}")
                    vals.append(np.log10(rs))
        if vals:
            ax.boxplot(vals, showfliers=True)
            ax.set_xticks(range(1, len(labels) + 1), labels, fontsize=7)
        ax.axhline(0, color="k", lw=0.8)
        ax.set_title(FIELD_TEXT[f], fontsize=10)
    axes[0].set_ylabel("log10 κ(H)/κ(L)  (< 0: H better)")
    fig.tight_layout()
    return fig


def directions_figure(rows):
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), sharey=False)
    for ax, (f, k) in zip(axes, (("mean", "real_part"), ("true", "symmetric"))):
        keys = sorted({(r["K"], r["d"], r["index"]) for r in rows})
        for key in keys:
            rs = sorted([r for r in rows if (r["K"], r["d"], r["index"]) == key], key=lambda r: r["t"])
            x = [r["t"] for r in rs]
            y = [ratio(r["kappa"][f]["H"][k], r["kappa"][f]["L"][k]) for r in rs]
            pts = [(a, b) for a, b in zip(x, y) if b is not None]
            if pts:
                ax.loglog(*zip(*pts), marker="o", ms=3, lw=0.8, alpha=0.7)
        ax.axhline(1, color="k", lw=0.8)
        ax.set_xlabel("t (distance to the teacher, relative)")
        ax.set_title(f"{FIELD_TEXT[f]}, {k.replace('_', ' ')}", fontsize=10)
    axes[0].set_ylabel("κ(H)/κ(L)")
    fig.tight_layout()
    return fig


def figures(summary: dict) -> dict:
    """``{file name: Figure}``."""
    arrays, groups = summary["map_arrays"], groups_of(summary["multi_node"])
    figs = {f"conditioning_map_{f}.png": map_figure(arrays["theta"], arrays["rho"], arrays["maps"], f)
            for f in ("true", "mean")}
    figs["conditioning_multinode.png"] = multinode_figure(groups)
    figs["conditioning_directions.png"] = directions_figure(groups["direction"])
    return figs
