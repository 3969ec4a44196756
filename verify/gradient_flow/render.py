"""Render layer of the gradient-flow report: Markdown and figures from the computed data and the judgement.

Every sentence that states a finding comes from :mod:`.judge`, and so does every label (where a run
ends, which runs stalled, the counts by end): this module reads them from the judgement and only
lays out tables, method descriptions and figures.
"""
from __future__ import annotations

import math

import numpy as np

from numerics.flows import FLOWS
from verify.report import fmt, pyplot

from . import judge as judge_
from .compute import FS_EPS

COLORS = {"L": "C0", "H-mean": "C1", "H-true": "C2"}
LOSS_FLOOR = 1e-20  # losses below ~1e-16 |W*|^2 are rounding (cross terms of several nodes, numerics README)


# ----------------------------------------------------------------------------- figures
def fig_trajectories(runs, K, d):
    plt = pyplot()
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


def fig_rates(runs, ends):
    """Measured against predicted late rate of the runs that reach the teacher (``ends``: the judge's, one per run)."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 5))
    lo, hi = 1e9, 0
    for fl in FLOWS:
        pts = [(r.get("predicted_rate_along_run", r["predicted_rate"]), r["late_rate"]["rate"])
               for r, end in zip(runs, ends)
               if r["flow"] == fl and end == judge_.TEACHER and r["late_rate"]["rate"]]
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


def fig_acceleration(acc, widths):
    plt = pyplot()
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


def fig_kink(kink):
    plt = pyplot()
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


def fig_finite(fs):
    plt = pyplot()
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


def figures(name: str, data: dict, j: dict | None = None) -> dict:
    """File name -> figure (``j``: the judgement, for the labels; judged here from ``data`` when not given)."""
    j = judge_.labels(data) if j is None else j
    prof = data["profile_settings"]
    K_fig = 4 if 4 in prof["widths"] else prof["widths"][-1]
    d_fig = 20 if 20 in prof["dims"] else prof["dims"][0]
    return {f"{name}_trajectories.png": fig_trajectories(data["runs"], K_fig, d_fig),
            f"{name}_rates.png": fig_rates(data["runs"], j["ends"]),
            f"{name}_acceleration.png": fig_acceleration(data["acceleration"], prof["widths"]),
            f"{name}_kink.png": fig_kink(data["kink"]),
            f"{name}_finite_samples.png": fig_finite(data["finite_samples"])}


# ----------------------------------------------------------------------------- Markdown
def _quartiles(st):
    return "—" if not st.get("n") else f"{st['median']:.2f} [{st['q25']:.2f}, {st['q75']:.2f}] (n={st['n']})"


def intro(data: dict) -> str:
    window = data["constants"]["fit_window"]
    return (
        "The paper's fourth claim: gradient flow on the Sobolev loss `H = L + J` converges faster than on `L`. "
        "**What \"faster\" means here**: (a) the *time* `T(ε)` for the relative distance to the teacher, "
        "`min_perm |W − W*_perm|_F / |W*|_F`, to fall to ε ∈ {1e-2, 1e-4, 1e-6}; (b) the *late exponential rate* "
        "`−d log(distance)/dt`, fitted by least squares where the distance lies in "
        f"[{window[0]:g}, {window[1]:g}]. Acceleration = `T_L / T_H` and `λ_H / λ_L` (> 1: H faster). "
        "Flows: **L** (mean field of `L` = its true gradient), **H-mean** (mean field of `H`, what autograd's "
        "per-sample gradient averages to — the paper's convention) and **H-true** (true gradient of the "
        "population `H`).")


def section_single_node(data: dict, j: dict) -> str:
    single, kink = data["single_node_theory"], data["kink"]
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
             "slides on it with radial rate 1. " + j["single_node"]]
    single_rows = [r for r, end in zip(data["runs"], j["ends"]) if r["K"] == 1 and end == judge_.TEACHER
                   and r["late_rate"]["window"] == "window"]
    if single_rows:
        lines += ["", "Measured (K = 1 runs that reach the teacher, fit window as above):", "",
                  "| d | start | flow | measured rate | predicted | T(1e-6) |", "|---|---|---|---|---|---|"]
        for r in single_rows:
            lines.append(f"| {r['d']} | {r['start']} | {r['flow']} | {r['late_rate']['rate']:.4f} | "
                         f"{r['predicted_rate']:.4g} | {fmt(r['time_to']['1e-06'], '.2f')} |")
    if kink["hitting_time_measured"] is not None:
        lines += ["", f"Finite-time arrival on the teacher ray (H-true, K = 1, d = 5): measured t = "
                      f"{kink['hitting_time_measured']:.3f}, first-order prediction {kink['hitting_time_predicted_first_order']:.3f}."]
    return "\n".join(lines)


def section_rates(name: str, data: dict, j: dict) -> str:
    prof, pred_err = data["profile_settings"], j["prediction_relative_error"]
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
        lines.append(f"| {fl} | {e['n']} | {fmt(e.get('median'))} | {fmt(e.get('max'))} |")
    lines += ["", f"![rates]({name}_rates.png)", "",
              "*Measured late rate against the predicted local rate, every run that reaches the teacher "
              "(H-mean: predicted along the run's own approach).*", "",
              "| K | d | L: λ_min, λ_max | H-mean: λ_min (range over directions), max Re λ | H-true: radial λ_min |",
              "|---|---|---|---|---|"]
    for tch in data["teachers"]:
        if tch["rep"]:
            continue
        p = tch["predicted"]
        lines.append(f"| {tch['K']} | {tch['d']} | {p['L']['rate']:.3g}, {p['L']['max_real']:.3g} | "
                     f"{p['H-mean']['rate']:.3g} ({p['H-mean']['rate_min_over_directions']:.3g}–"
                     f"{p['H-mean']['rate_max_over_directions']:.3g}), {p['H-mean']['max_real']:.3g} | "
                     f"{p['H-true']['rate']:.3g} |")
    return "\n".join(lines)


def section_runs(name: str, data: dict, j: dict) -> str:
    prof, c = data["profile_settings"], data["constants"]
    lines = ["## 3. The runs", "",
             f"Teachers: rows `N(0, I_d/d)`, seeded; starts **near** (relative distance {c['near_distance']}) and **far** "
             "(an independent draw of the same law). K = K* ∈ "
             f"{list(prof['widths'])}, d ∈ {list(prof['dims'])}, {prof['reps']} teacher(s) each. `solve_ivp` RK45, "
             f"rtol {c['rtol']:g}; absolute tolerance `1e-9|W*|/√(Kd)` far from the teacher and "
             f"`{1e-3 * c['stop']:g}|W*|/√(Kd)` after re-centring on the matched teacher below distance {c['switch']:g}; "
             f"a run stops at distance {c['stop']:g} or at t = {prof['t_max']:g}. H-true: Filippov sliding with lock "
             f"angle {c['lock_angle']:g} rad (the flow would reach the ray within ≈ 2π·{c['lock_angle']:g} time units of the "
             "lock, so the projection changes times by less than 1e-5).", "",
             f"![trajectories]({name}_trajectories.png)", "",
             "| flow | start | runs | reach the teacher (≤ 1e-6) | where the others end |", "|---|---|---|---|---|"]
    for key, v in j["reach"].items():
        fl, start = key.split("/")
        others = ", ".join(f"{e}: {c}" for e, c in v["ends"].items() if e != "teacher") or "—"
        lines.append(f"| {fl} | {start} | {v['runs']} | {v['teacher']} ({v['teacher'] / max(v['runs'], 1):.0%}) | {others} |")
    lines += ["", "<details><summary>every run</summary>", "",
              "| K | d | rep | start | flow | end | T(1e-2) | T(1e-4) | T(1e-6) | late rate (window) | predicted | RHS evals |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r, end in zip(data["runs"], j["ends"]):
        lr_ = r["late_rate"]
        lines.append(f"| {r['K']} | {r['d']} | {r['rep']} | {r['start']} | {r['flow']} | {end} | "
                     + " | ".join(fmt(r["time_to"][f"{e:g}"], ".2f") for e in c["epsilons"])
                     + f" | {fmt(lr_['rate'], '.4f')} ({lr_['window']}) | "
                     f"{fmt(r.get('predicted_rate_along_run', r['predicted_rate']), '.4f')} | {r['nfev']} |")
    lines += ["", "</details>"]
    return "\n".join(lines)


def section_acceleration(name: str, data: dict) -> str:
    s, prof, eps = data["acceleration_stats"], data["profile_settings"], data["constants"]["epsilons"]
    lines = ["## 4. Acceleration on the population flows", "",
             "Per instance (teacher × start), `T_L(ε)/T_H(ε)` where both reach ε, and `λ_H/λ_L` of the fitted late "
             "rates; quartiles over instances. Where `L` does not reach 1e-6 in the time allowed but `H` does, only "
             "a lower bound exists (`censored`, not in the quartiles).", "",
             "| H flow | K | T_L/T_H at 1e-2 | at 1e-4 | at 1e-6 | λ_H/λ_L measured | λ_H/λ_L predicted |",
             "|---|---|---|---|---|---|---|"]
    for fl in ("H-mean", "H-true"):
        for K in list(prof["widths"]) + ["all"]:
            suf = "" if K == "all" else f"/K={K}"
            lines.append(f"| {fl} | {K} | " + " | ".join(_quartiles(s[f"{fl}/time_ratio_{e:g}{suf}"]) for e in eps)
                         + f" | {_quartiles(s[f'{fl}/rate_ratio{suf}'])} | {_quartiles(s[f'{fl}/predicted_rate_ratio{suf}'])} |")
    lines += ["", "**Per iteration of gradient descent** near the teacher (predicted from the spectra, every teacher): at "
              "a common step the gain is `λ_min(H)/λ_min(L)`; with each loss's own step η = 1/ρ it is `κ_L/κ_H`, "
              "κ = ρ/λ_min (H: the mean-field Jacobian along approach directions).", "",
              "| K | common step: λ_min(H-mean)/λ_min(L) | curvature-matched: κ_L/κ_H |", "|---|---|---|"]
    for K in prof["widths"]:
        ks = data["predicted_gd_gain_stats"][f"K={K}"]
        lines.append(f"| {K} | {_quartiles(ks['common'])} | {_quartiles(ks['matched'])} |")
    lines += ["", f"Censored instances (L not at 1e-6 by t_max, H there): H-mean {s['H-mean/censored_time_ratio_1e-06']}, "
                  f"H-true {s['H-true/censored_time_ratio_1e-06']}.", "",
              f"![acceleration]({name}_acceleration.png)", "",
              "*Acceleration per instance against the width (circles: near starts; triangles: far starts).*"]
    return "\n".join(lines)


def section_kink(name: str, data: dict, j: dict) -> str:
    kink, prof = data["kink"], data["profile_settings"]
    lines = ["## 5. The true gradient of H at the teacher: what a fixed step does", "",
             "The true gradient of `H` jumps by `|w*|/2π` across the teacher ray. " + j["kink"], "",
             "| method | step | floor of the distance (last quarter) | floor / (h/2π) |", "|---|---|---|---|"]
    for e in kink["euler"]:
        lines.append(f"| explicit Euler | {e['h']} | {e['floor_distance']:.3g} | {e['floor_over_h_over_2pi']:.3g} |")
    rk = kink["plain_rk45"]
    lines.append(f"| plain RK45 | adaptive | {'completed' if rk['completed'] else 'stopped at the cap'}: t reached "
                 f"{rk['t_reached']:.3g} of {prof['euler_t']:g} with {rk['nfev']} evaluations | — |")
    sl = kink["sliding"]
    lines.append(f"| RK45 + sliding | adaptive | reaches {sl['final_distance']:.2g} at t = {sl['t_end']:.3g} "
                 f"with {sl['nfev']} evaluations | — |")
    lines += ["", f"![kink]({name}_kink.png)"]
    return "\n".join(lines)


def _fs_cell(c):
    return f"{fmt(c['L'], 'd')} / {fmt(c['H'], 'd')} ({fmt(c['ratio'], '.2f')})"


def _fs_final(run_, stalled: bool):
    tag = " (stalled)" if stalled else ""
    return f"{run_['final_distance']:.2g}{tag}"


def section_finite_samples(name: str, data: dict, j: dict) -> str:
    fs, fs_acc, pop_acc = data["finite_samples"], data["finite_sample_acceleration"], data["population_gd_acceleration"]
    lr = fs["step_sizes"]
    lines = ["## 6. Finite samples, real autograd", "",
             f"The PyTorch student `g(x; W) = Σ relu(w_j·x)` (float64), K = K* = {fs['K']}, d = {fs['d']}, start at "
             f"relative distance {fs['start_distance']:.2f}, trained for {fs['steps']} iterations on n fixed samples "
             "by full-batch gradient descent (GD) and by SGD (minibatches of "
             f"{fs['batch']} drawn with replacement), the Sobolev loss built with autograd (`∇ₓg` with "
             "`create_graph=True`). Reference: population GD (the mean field, `numerics.gradient`) with the same "
             "step. The teacher interpolates every sample, so training can reach it exactly.", "",
             "**Step sizes.** *Common*: η = 1/ρ_H for both losses, ρ_H the spectral radius of the mean-field "
             "Jacobian of `H` near the teacher (the largest stable-and-safe step for `H`, " + j["step_size_note"] + "). "
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
    for row, a_, flags in zip(fs["samples"], fs_acc, j["stalled_flags"]):
        R = row["runs"]
        lines.append(f"| {row['n']} | {R['GD/common/L']['max_deviation_from_population']:.3g} | "
                     f"{R['GD/common/H']['max_deviation_from_population']:.3g} | {_fs_cell(a_['GD_common'])} | "
                     f"{_fs_cell(a_['GD_matched'])} | {_fs_cell(a_['SGD_common'])} | {_fs_cell(a_['SGD_matched'])} | "
                     + " / ".join(_fs_final(R[k], flags[k]) for k in ("GD/common/L", "GD/common/H")) + " | "
                     + " / ".join(_fs_final(R[k], flags[k]) for k in ("SGD/common/L", "SGD/common/H")) + " |")
    lines.append(f"| population | 0 | 0 | {_fs_cell(pop_acc['common'])} | {_fs_cell(pop_acc['matched'])} | — | — | "
                 f"{fs['population']['common/L']['final_distance']:.2g} / {fs['population']['common/H']['final_distance']:.2g} | — |")
    if j["stalls"]:
        lines += ["", j["stalls"]]
    slope = data["deviation_slope_in_n"]
    lines += ["", f"Deviation from the population trajectory against n: log-log slope {fmt(slope['L'], '.2f')} (L), "
                  f"{fmt(slope['H'], '.2f')} (H); `n^(-1/2)` is −0.5.", "",
              f"![finite samples]({name}_finite_samples.png)"]
    return "\n".join(lines)


def section_verdict(j: dict) -> str:
    return "\n".join(["## Verdict", "", f"**Claim 4: {j['verdict']}.** {j['summary']}.", "", j["conditions"]])


def markdown(name: str, data: dict, j: dict) -> list:
    """The report's Markdown blocks, in order."""
    return [intro(data), section_single_node(data, j), section_rates(name, data, j), section_runs(name, data, j),
            section_acceleration(name, data), section_kink(name, data, j), section_finite_samples(name, data, j),
            section_verdict(j)]
