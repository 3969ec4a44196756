"""Render layer of the landscape report: Markdown and one figure, from the summary and the judgement."""
from __future__ import annotations

from ..report import Report, fmt, pyplot
from .judge import H_FLOWS

FLOW_TEXT = {"L": "L", "H-mean": "H, mean field", "H-true": "H, true gradient"}

INTRO = """
**Beyond the paper.** Safran & Shamir (ICML 2018, arXiv:1712.08968) proved that the population loss `L` of
`g(x) = Σ_j relu(w_j·x)` with `x ~ N(0, I)`, unit output weights and an orthonormal teacher has spurious local minima
for `6 ≤ k ≤ 20` (`K = K* = k`); in their experiments gradient descent ended in one with a probability that grows
with `k`, and mild over-parameterisation (`K > k`) made that much rarer. This report asks the same of the Sobolev loss
`H = L + J`, from the **same random starts** under three population flows `W' = −F(W)`:

- `L`: the gradient of `L` (its mean field and true gradient coincide);
- `H, mean field`: `E_x[∇_W ℓ_H]`, what autograd training on samples follows;
- `H, true gradient`: the gradient of the population `H`, which jumps across every teacher ray; it is followed as a
  sliding (Filippov) flow on the rays, as in gradient_flow.md (`numerics.sliding`).

Each run is population gradient descent with the closed-form fields (`numerics.landscape.descend`), and each end point
is classified by the rules below from numbers stored in the JSON (`numerics.landscape.decide`)."""


def fraction_figure(j: dict, summary: dict):
    """Global-minimum fraction against k, per flow and width, with Wilson intervals."""
    plt = pyplot()
    offsets = sorted({K - k for k, K in ((g["k"], g["K"]) for g in summary["groups"])})
    fig, axes = plt.subplots(1, len(offsets), figsize=(4.2 * len(offsets), 3.4), sharey=True, squeeze=False)
    for ax, off in zip(axes[0], offsets):
        for n, flow in enumerate(("L",) + H_FLOWS):
            ks, frac, lo, hi = [], [], [], []
            for key, t in j["tallies"].items():
                k, K, f = key.split(",")
                if f == flow and int(K) - int(k) == off:
                    ks.append(int(k) + 0.12 * (n - 1))
                    frac.append(t["global"]["fraction"])
                    lo.append(t["global"]["fraction"] - t["global"]["low"])
                    hi.append(t["global"]["high"] - t["global"]["fraction"])
            ax.errorbar(ks, frac, yerr=[lo, hi], fmt="o-", ms=4, capsize=3, label=FLOW_TEXT[flow])
        ax.set_title(f"K = k + {off}" if off else "K = k", fontsize=10)
        ax.set_xlabel("k (teacher I_k, d = k)")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("fraction reaching the global minimum")
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def headline_table(j: dict) -> str:
    lines = ["| k | K | " + " | ".join(f"global, {FLOW_TEXT[f]}" for f in ("L",) + H_FLOWS)
             + " | spurious minima L / H mean / H true | saddle or not converged (L / H mean / H true) |",
             "|---|---|---|---|---|---|---|"]
    keys = sorted({tuple(map(int, key.split(",")[:2])) for key in j["tallies"]})
    for k, K in keys:
        t = {f: j["tallies"][f"{k},{K},{f}"] for f in ("L",) + H_FLOWS}
        cells = [f"{p['fraction']:.3f} [{p['low']:.3f}, {p['high']:.3f}]" for p in (t[f]["global"] for f in t)]
        spur = " / ".join(str(t[f]["spurious minimum"]["count"]) for f in t)
        rest = " / ".join(f"{t[f]['saddle']['count']} + {t[f]['not converged']['count']}" for f in t)
        lines.append(f"| {k} | {K} | " + " | ".join(cells) + f" | {spur} | {rest} |")
    return "\n".join(lines)


def comparison_table(j: dict) -> str:
    lines = ["| k | K | flow | spurious under L | under H | only L | only H | McNemar p | Holm |", "|---|---|---|---|---|---|---|---|---|"]
    for r in j["comparisons"]:
        lines.append(f"| {r['k']} | {r['K']} | {FLOW_TEXT[r['flow']]} | {r['L']}/{r['n']} | {r['H']}/{r['n']} | "
                     f"{r['only_L']} | {r['only_H']} | {r['p']:.2g} | {r['direction']} |")
    return "\n".join(lines)


def minima_table(summary: dict) -> str:
    lines = ["| k | K | flow | value loss / L(teacher) | found | distinct diag / off-diag values | transpose gap | "
             "spectrum min / max | |F_H mean| | |∇H true| | H mean ends | H true ends |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for g in summary["groups"]:
        fp = g.get("from_points")
        for i, m in enumerate(g["distinct"]):
            s = m["symmetry"]
            extra = ["—"] * 4
            if fp:
                extra = [fmt(fp["H_mean_field_norm"][i], ".2g"), fmt(fp["H_true_gradient_norm"][i], ".2g")]
                extra += [f"{fp[f]['kind'][i]} (value loss {fp[f]['relative_value_loss'][i]:.3g})" for f in H_FLOWS]
            lines.append(f"| {g['k']} | {g['K']} | {FLOW_TEXT[g['flow']]} | {m['relative_value_loss']:.4g} | {m['count']} | "
                         f"{s['distinct_diagonal']} / {s['distinct_off_diagonal']} | {s['transpose_gap']:.2g} | "
                         f"{m['spectrum']['min']:.3g} / {m['spectrum']['max']:.3g} | " + " | ".join(extra) + " |")
    return "\n".join(lines) if len(lines) > 2 else "No spurious minimum was found under any flow."


def samples_table(j: dict, summary: dict) -> str:
    if not j["samples"]:
        return "No finite-sample runs in this profile."
    lines = ["| k | loss | method | reaches the global minimum | spurious minimum | agrees with the population flow |",
             "|---|---|---|---|---|---|"]
    for r in j["samples"]:
        g, s = r["global"], r["spurious"]
        lines.append(f"| {r['k']} | {r['loss']} | {r['method']} | {g['count']}/{g['n']} [{g['low']:.2f}, {g['high']:.2f}] | "
                     f"{s['count']}/{s['n']} | {fmt(r['agreement'], '.2f')} |")
    return "\n".join(lines)


def render(name: str, title: str, summary: dict, j: dict) -> Report:
    rep = Report(name=name, title=title, data=summary, verdicts=j["verdicts"])
    rep.add(INTRO)
    ss = j["safran_shamir"]
    rep.add("## Verdicts\n\n"
            "| question | verdict |\n|---|---|\n"
            + "".join(f"| Does H ({FLOW_TEXT[f]}) remove L's spurious minima? | **{j['flows'][f]['verdict']}** |\n" for f in H_FLOWS)
            + f"| Safran & Shamir's findings for L | **{ss['verdict']}** |\n\n"
            + "\n".join(f"- {j['flows'][f]['sentence']}" for f in H_FLOWS))
    rep.add("## Headline: fraction of runs reaching the global minimum\n\n"
            "95% Wilson intervals in brackets; the last columns count the other end points.\n\n" + headline_table(j))
    rep.figures[f"{name}_global_fraction.png"] = fraction_figure(j, summary)
    rep.add(f"![global fraction]({name}_global_fraction.png)")
    rep.add("## Paired comparisons with L\n\n"
            "Same starts under both flows; exact McNemar test on \"ended at a spurious minimum\", Holm's correction over "
            "all rows at family-wise level 0.05.\n\n" + comparison_table(j))
    rep.add("## Safran & Shamir's findings for L, point by point\n\n"
            + "\n".join(f"- {x}" for x in [ss["at_six"]["sentence"], ss["growth"]["sentence"]] + [o["sentence"] for o in ss["over"]]))
    rep.add("## The spurious minima found\n\n"
            "Grouped up to the symmetries of the teacher `I_k` (row permutations of `W`, permutations of the coordinates): "
            f"end points whose sorted entries agree to {summary['tolerances']['dedup']:g} of the largest are one minimum; "
            "*found* counts the runs that ended there. Symmetry: the minimum in the teacher's basis, rows matched to teacher rows; "
            "few distinct values mean a large symmetry group. Spectrum: the eigenvalues that decided stability. For the "
            "minima of L, the norms of the two fields of H there and where the H flows started there end.\n\n"
            + minima_table(summary) + "\n\n" + j["from_points"])
    rep.add("## Finite samples: what autograd training sees\n\n"
            "Autograd training on n fixed samples (the Sobolev part from `grad_x g` with `create_graph=True`), full-batch "
            "GD and SGD, from the first starts of the population study; each end point is then followed by the population "
            "flow of the field the training estimates (L, or the mean field of H) and classified. *Agrees*: the fraction of "
            "starts where \"reaches the global minimum\" matches the population flow from the same start.\n\n"
            + samples_table(j, summary) + "\n\n" + j["samples_sentence"])
    rep.add("## Robustness to the step and the tolerances\n\n" + j["step_check"]["sentence"] + " "
            + j["tolerance_gap"]["sentence"])
    rep.add(method_section(summary))
    return rep


def halvings(summary: dict) -> str:
    """Runs whose step was halved at least once, per flow."""
    out = {}
    for g in summary["groups"]:
        h = g.get("step_halvings", [])
        n, m = out.get(g["flow"], (0, 0))
        out[g["flow"]] = (n + sum(x > 0 for x in h), m + len(h))
    return ", ".join(f"{FLOW_TEXT[f]} {n} of {m} runs" for f, (n, m) in out.items())


def method_section(summary: dict) -> str:
    st, tol = summary["settings"], summary["tolerances"]
    lrs = ", ".join(f"k = {key.split(',')[0]} {key.split(',')[1]}: {lr:.3g}" for key, lr in summary["step_sizes"].items()
                    if int(key.split(",")[0]) in st["ks"])
    s = st["samples"]
    return ("## Method\n\n"
            f"- Teacher `I_k` in `d = k`, k ∈ {st['ks']}, students of width K = k + {st['offsets']}; {st['starts']} starts "
            "per (k, K), rows i.i.d. `N(0, I/k)`, the same starts under every flow.\n"
            f"- Gradient descent with step {st['lr_factor']:g}/λ_max (λ_max of the mean-field Jacobian of L, or of H for "
            f"both H flows, next to the teacher): {lrs}. Each start's step is halved whenever its field grows and turns by more "
            "than 120° in one step (a step too long for the local curvature: the true gradient of H has curvature ~1/angle "
            f"next to a teacher ray); halvings per flow: {halvings(summary)}. A run stops when its field is below {tol['stop']:g}, "
            f"when its value loss L is ≤ {tol['value_tol']:g} L(teacher) (checked every 50 steps: the end point is then global "
            f"by the rule below, and the rest of the approach is not walked), or after {st['max_steps']} steps.\n"
            "- The true gradient of H: a row is locked on a teacher ray when a step crosses its line (within two steps' kink "
            "push) and then moves radially while the other terms push it sideways less than |w*|/2π; otherwise it is "
            "released (`numerics.sliding`).\n"
            f"- Kinds: **global** when the distance to the teacher modulo row permutations is ≤ {tol['global_tol']:g} |W*| "
            f"(K = k), or the value loss L is ≤ {tol['value_tol']:g} L(teacher) (every global minimum has value 0, also "
            "for K > k, where a teacher row may be split between students; the tolerance is checked below against the "
            "smallest value of a spurious minimum);"
            f" otherwise **not converged** when the field is > {tol['grad_tol']:g}; otherwise "
            f"**saddle** when an eigenvalue of the stability spectrum has real part < −{tol['eig_tol']:g} (L: the Hessian; "
            "H mean field: its Jacobian; H true gradient: the Jacobian of the sliding field on its manifold, by central "
            f"differences) or a lock holds by less than {tol['eig_tol']:g}; otherwise **spurious minimum**.\n"
            f"- Finite samples: k ∈ {s['ks']}, {s['starts']} starts, n = {s['n']} samples N(0, I), {s['steps']} steps at "
            f"{s['lr_factor']:g} times the population step, SGD minibatches of {s['sgd_batch']}; then the population flow "
            "(at most the same number of steps as above).\n"
            f"- Step-size check: k = {st['check']['k']}, the first {st['check']['starts']} starts again with half the step.\n"
            + ("- The descents run in NumPy on CPU cores, the finite-sample training in PyTorch on the CPU"
               if summary.get("device", "cpu") == "cpu" else
               f"- The descents and the finite-sample training run in PyTorch (float64) on `{summary['device']}`")
            + "; the classifications in NumPy on the CPU. The sweep's tasks run in several processes or on a Dask cluster "
            "with the same results.")
