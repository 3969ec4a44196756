"""Render layer of the erf landscape report: Markdown and one figure, from the summary and the judgement."""
from __future__ import annotations

import numpy as np

from ..report import Report, fmt, pyplot
from .compute import FLOWS

INTRO = """
**The landscape under erf.** The landscape report (`landscape.md`) finds that population gradient descent on `L`
ends at spurious minima in Safran & Shamir's ReLU setting and asks whether `H` removes them. Its finding for the
true gradient of `H` rests on a boundary term that only a kink produces. This report asks the same question of
**erf** networks, `g(x) = Σ_j erf(w_j·x)`, with the same teacher `I_k`, widths `K = k, k + 1, k + 2` and random
starts. For erf there is no kink: the mean field is the true gradient and the Hessian is one matrix
(`theory.erf`), so each loss has **one** flow.

- Descent: `numerics.erf_landscape.descend`, step `lr_factor / λ_max` (`λ_max` of the flow's Hessian at the
  teacher), halved for a start whose gradient grew and reversed; a start stops once its gradient is below the
  stopping tolerance or its value loss below `value_tol` of the teacher's.
- Classification: the landscape report's rule (`numerics.landscape.decide`) and tolerances; stability from the
  smallest eigenvalue of the Hessian of the flow's loss (`numerics.erf.hessian`)."""

KINDS = ("global", "spurious minimum", "saddle", "not converged")


def kinds_table(summary: dict) -> str:
    lines = ["| k | K | flow | step | " + " | ".join(KINDS) + " | distinct spurious | steps (median, max) |",
             "|---|---|---|---|" + "---|" * len(KINDS) + "---|---|"]
    for g in summary["groups"]:
        n = [sum(x == kind for x in g["kind"]) for kind in KINDS]
        lines.append(f"| {g['k']} | {g['K']} | {g['flow']} | {fmt(g['lr'])} | " + " | ".join(map(str, n))
                     + f" | {g['distinct_spurious']} | {int(np.median(g['steps']))}, {max(g['steps'])} |")
    return "\n".join(lines)


def kinds_figure(summary: dict):
    """Per (k, K): the fraction of runs reaching the global minimum under each flow."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 3.2))
    for i, flow in enumerate(FLOWS):
        groups = [g for g in summary["groups"] if g["flow"] == flow]
        x = np.arange(len(groups)) + (i - 0.5) * 0.35
        ax.bar(x, [np.mean([k == "global" for k in g["kind"]]) for g in groups], width=0.35, label=flow)
        ax.set_xticks(np.arange(len(groups)), [f"k={g['k']}, K={g['K']}" for g in groups], rotation=60, fontsize=7)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("fraction global")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def render(name: str, title: str, summary: dict, j: dict) -> Report:
    rep = Report(name=name, title=title, data=summary, verdicts=j["verdicts"])
    rep.add(INTRO)
    rep.add("## Verdicts\n\n| question | verdict |\n|---|---|\n"
            + "".join(f"| {v['title']} | **{v['verdict']}** |\n" for v in j["verdicts"]) + "\n"
            + "\n".join(f"- {s}" for s in j["sentences"]))
    if j["control"] is not None:
        c = j["control"]
        rep.add(f"## Against ReLU\n\n{c['title']} ReLU: **{c['relu']}**; erf: **{c['erf']}**. What it is "
                f"(the rule of docs/claims.md, \"The smooth control\"): **{c['verdict']}**.")
    rep.add("## End points per (k, K) and flow\n\n" + kinds_table(summary))
    rep.figures[f"{name}_kinds.png"] = kinds_figure(summary)
    rep.add(f"![global fraction]({name}_kinds.png)")
    st, tol = summary["settings"], summary["tolerances"]
    rep.add("## Method\n\n"
            f"- k ∈ {st['ks']}, K = k + {st['offsets']}, {st['starts']} starts per (k, K) (rows N(0, I/k), the landscape "
            f"report's), step factor {st['lr_factor']:g}, at most {st['max_steps']} steps.\n"
            f"- Tolerances: stop {tol['stop']:g}; gradient {tol['grad_tol']:g}, global {tol['global_tol']:g}, eigenvalue "
            f"{tol['eig_tol']:g}, value {tol['value_tol']:g}; distinct spurious minima at relative distance {tol['dedup']:g} "
            "modulo row permutations.")
    return rep
