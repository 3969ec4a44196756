"""Render layer of the generalizations report: Markdown and one figure, from the summary and the judgement."""
from __future__ import annotations

import numpy as np

from ..report import Report, fmt, pyplot
from .compute import ATOL, FIT_FLOOR, RTOL
from .judge import EXTENSIONS, conditioning_ratios, rate_ratios

INTRO = """
**Beyond the paper.** The paper's model is `g(x) = Σ_j relu(w_j·x)` with unit output weights, `x ~ N(0, I)` and
`H = L + J`. This report asks whether Sobolev acceleration survives five extensions of that model
(docs/theory.md, section 14), and asks the same questions of a smooth control:

- trained output weights;
- leaky ReLU;
- ReLU powers;
- an anisotropic input covariance;
- the second-order loss `L + J + λ₂ J2`, the paper's proposed next step;
- the smooth control `σ = erf` (no kink; `numerics.erf`), to tell what is Sobolev from what is ReLU.

Both objectives are compared as autograd training uses them, through their **mean fields** `E_x[∇ℓ]`
(`numerics.gradient(…, "mean")`), in two ways:

- **conditioning**: real-part condition numbers (`max Re λ / min Re λ`, the ratio of the fastest to the slowest
  local decay rate of the flow) of the **Jacobian of each mean field** (`numerics.hessian(…, "mean")`). They are
  taken at points near the teacher: one node at angle `θ` and norm ratio `ρ`, and several nodes at `W* + tΔ`.
- **rates**: the population flow `W' = −F(W)` of each mean field, run from a common start near the teacher.
  - Its *measured* rate is `−½ d log L/dt`, fitted over the last half of the run, with the value loss `L` as the
    common yardstick.
  - Its *predicted* rate is the smallest real part of the Jacobian's eigenvalues at the end point.

With trained output weights, the rescaling `(a_j, w_j) → (c a_j, w_j/c)` leaves the network unchanged. That gives
one eigenvalue per unit that is zero at a minimum, along which no flow moves, so those eigenvalues are left out.
Each verdict comes from the rule in the judge layer. The comparisons for the second-order loss are
`L + J + λ₂J2` against `L + J`."""


def ratio_figure(summary: dict):
    """Per configuration: the median conditioning ratio and the median measured rate ratio (log scale)."""
    plt = pyplot()
    configs = summary["configurations"]
    labels = [c["label"] for c in configs]
    cond = [np.median(conditioning_ratios(c)) if conditioning_ratios(c) else np.nan for c in configs]
    rate = [np.median(rate_ratios(c, "measured")) if rate_ratios(c, "measured") else np.nan for c in configs]
    fig, axes = plt.subplots(1, 2, figsize=(11, 0.45 * len(labels) + 1.5), sharey=True)
    y = np.arange(len(labels))
    for ax, values, title, good in ((axes[0], cond, "κ_real(Sobolev) / κ_real(base): < 1 is better", "left"),
                                    (axes[1], rate, "rate(Sobolev) / rate(base), measured: > 1 is faster", "right")):
        ax.barh(y, values, color=["C2" if (v < 1 if good == "left" else v > 1) else "C3" for v in values])
        ax.axvline(1.0, color="k", lw=0.8)
        ax.set_xscale("log")
        ax.set_title(title, fontsize=9)
        ax.grid(alpha=0.3, axis="x")
    axes[0].set_yticks(y, labels, fontsize=8)
    axes[0].invert_yaxis()
    fig.tight_layout()
    return fig


def verdict_table(j: dict) -> str:
    lines = ["| extension | verdict | configurations that do not hold |", "|---|---|---|"]
    for name, e in j["extensions"].items():
        lines.append(f"| {EXTENSIONS.get(name, name)} | **{e['verdict']}** | {', '.join(e['failing']) or '—'} |")
    return "\n".join(lines)


def config_table(config: dict) -> str:
    base, sob = config["objectives"]["base"], config["objectives"]["sobolev"]
    lines = [f"**{config['label']}** (base `{base[0]}`{_keywords(base[1])}, Sobolev `{sob[0]}`{_keywords(sob[1])})", "",
             "| where | κ_real base | κ_real Sobolev | min Re λ base | min Re λ Sobolev |", "|---|---|---|---|---|"]
    for row in config["conditioning"]:
        where = ", ".join(f"{k} = {fmt(v)}" for k, v in row["where"].items())
        lines.append(f"| {row['kind']}: {where} | {fmt(row['base']['real_part'])} | {fmt(row['sobolev']['real_part'])} | "
                     f"{fmt(row['base']['min_real'])} | {fmt(row['sobolev']['min_real'])} |")
    lines += ["", "| flow start | rate base: predicted / measured | rate Sobolev: predicted / measured | L at the end (base, Sobolev) |",
              "|---|---|---|---|"]
    for row in config["flows"]:
        b, s = row["base"], row["sobolev"]
        lines.append(f"| {row['start']} | {fmt(b['predicted_rate'])} / {fmt(b['measured_rate'])} | "
                     f"{fmt(s['predicted_rate'])} / {fmt(s['measured_rate'])} | {fmt(b['L_end'])}, {fmt(s['L_end'])} |")
    return "\n".join(lines)


def control_table(control: dict) -> str:
    """Question | ReLU | erf | what the finding is."""
    lines = ["| question | ReLU | erf | what it is |", "|---|---|---|---|"]
    for q, row in control["questions"].items():
        lines.append(f"| ({q}) {row['question']} | **{row['relu']['answer']}**: {row['relu']['evidence']} | "
                     f"**{row['erf']['answer']}**: {row['erf']['evidence']} | **{row['finding']}** |")
    return "\n".join(lines)


def one_node_table(single: dict) -> str:
    """The one-node spectra at the teacher: ReLU's limits and erf's closed forms at each |w*|."""
    lines = ["| activation, norm of w* | comparison | eigenvalues base | eigenvalues Sobolev | rate ratio | matched-step gain |",
             "|---|---|---|---|---|---|"]

    def row(label, comparison, r):
        if r is not None:
            lines.append(f"| {label} | {comparison} | {', '.join(fmt(x, '.4g') for x in r['base'])} | "
                         f"{', '.join(fmt(x, '.4g') for x in r['sobolev'])} | {fmt(r['rate_ratio'], '.4g')} | "
                         f"{fmt(r['matched_step_gain'], '.4g')} |")
    row("ReLU (any)", "H against L", single["relu"]["H_vs_L"])
    for r in single["erf"]["at_teacher_norm"]:
        row(f"erf, {r['norm']:g}", "H against L", r["H_vs_L"])
        row(f"erf, {r['norm']:g}", "L + J + λ₂J2 against L + J", r["J2_vs_J"])
    return "\n".join(lines)


CONTROL_INTRO = """## The smooth control: ReLU against erf

With `σ = erf` there is no kink: the mean field is the true gradient and the three Hessians are one matrix
(`theory.erf`, proved symbolically). Each question below is asked of ReLU and of erf with the same code, the same
points near the teacher and the same flow starts (ReLU: the covariance configurations, whose condition number 1 is
the paper's model; erf: the same covariances). The last column says what the finding is about, by the rule in
`verify/generalizations/control.py` (docs/claims.md, "The smooth control"). Question (d) compares the condition
numbers, because gradient descent with a step matched to each objective's curvature (`η = 1/λ_max`) contracts at
`1/κ` per step: a smaller `κ` is the only gain left once the step is matched."""


def control_section(summary: dict, control: dict) -> str:
    return "\n\n".join([CONTROL_INTRO, control_table(control), control["exactly_two"] + " " + control["closed_form"],
                         one_node_table(summary["single_node_control"])])


def _keywords(kw: dict) -> str:
    return "".join(f" with {k} = {tuple(v) if isinstance(v, list) else v}" for k, v in kw.items())


def render(name: str, title: str, summary: dict, j: dict) -> Report:
    rep = Report(name=name, title=title, data=summary, verdicts=j["verdicts"])
    rep.add(INTRO)
    rep.add("## Verdicts\n\n" + verdict_table(j))
    rep.figures[f"{name}_ratios.png"] = ratio_figure(summary)
    rep.add(f"![ratios]({name}_ratios.png)")
    for ext, e in j["extensions"].items():
        configs = [c for c in summary["configurations"] if c["extension"] == ext]
        rep.add(f"## {EXTENSIONS.get(ext, ext)}\n\n" + "\n".join(f"- {s}" for s in e["sentences"]))
        for c in configs:
            rep.add(config_table(c))
    if "control" in j:
        rep.add(control_section(summary, j["control"]))
    rep.add("## Single-node spectra in closed form\n\n"
            "For one student against one teacher with `x ~ N(0, I)`, the Jacobian of each mean field is `E B Eᵀ + s I` in the "
            "plane of the two rows. Its eigenvalues are `s` (multiplicity `d − 2`) and those of the 2×2 block `B + s I`, so "
            "the spectrum closes for every member of the family (`theory.activations.single_node_spectrum`). "
            + j["symbolic"])
    st = summary["settings"]
    rep.add("## Method\n\n"
            f"- Teachers: orthonormal rows (a random rotation), output weights spread over [0.7, 1.4]; one node in d = 3, "
            f"{st['K']} nodes in d = {st['d']}.\n"
            f"- Points: one node at θ ∈ {st['thetas']}, ρ ∈ {st['rhos']}; {st['K']} nodes at W* + tΔ with t ∈ "
            f"{st['distances']}, {st['directions']} random unit directions Δ each.\n"
            f"- Flows: {st['flow_starts']} starts at distance {st['flow_distance']}, SciPy RK45 (rtol {RTOL:g}, atol {ATOL:g}) to "
            f"t = {st['flow_time']}; the rate is fitted where L > {FIT_FLOOR:g} L(0).\n"
            "- Covariances: diagonal, eigenvalues spaced geometrically from 1 to the condition number.")
    return rep
