"""Judge layer of the landscape report: every verdict and finding sentence, from the summary alone.

Rules (pure functions of the JSON numbers, each tested on constructed summaries):

* **kinds** are recomputed from each end point's numbers by :func:`numerics.landscape.decide` with the report's
  tolerances (the JSON holds the numbers; the kinds follow from them);
* proportions carry 95% **Wilson** intervals;
* **does a flow of H change the spurious minima?** Per ``(k, K)`` the same starts ran under ``L`` and under the ``H``
  flow: McNemar's exact test on the paired indicator "ended at a spurious minimum", Holm's correction over every
  ``(k, K)`` and both ``H`` flows at family-wise level :data:`ALPHA`.  A flow **removes** spurious minima when it ends
  at none anywhere, not even when started at ``L``'s spurious minima, and has significantly fewer somewhere; **reduces** them when it has significantly fewer somewhere
  and significantly more nowhere; **adds** in the mirror case; **mixed** when both occur; **keeps** them when no
  difference is significant (**inconclusive** when neither loss ends at any);
* **Safran & Shamir's findings for L**, each judged separately: (a) spurious minima at ``k = 6`` (found or not, with
  the upper end of the interval when not); (b) the fraction grows with ``k`` (``K = k``: Kendall's tau between ``k``
  and the indicator, one-sided ``p < ALPHA`` either way, else not resolved); (c) over-parameterisation reduces it
  (per offset, pooled over ``k``: Fisher's exact test, one-sided either way).  **reproduced** when all are,
  **contradicted in part** when one is contradicted, **partly reproduced** otherwise (the sentences name which).
"""
from __future__ import annotations

from scipy.stats import binomtest, fisher_exact, kendalltau

from numerics.landscape import KINDS, decide, wilson_interval

ALPHA = 0.05
H_FLOWS = ("H-mean", "H-true")
AGREE = 0.95  # the step-size check passes when at least this fraction of starts end in the same kind


def kinds(group: dict, tolerances: dict) -> list:
    """The kind of every end point of a group, from its numbers."""
    tols = {k: tolerances[k] for k in ("grad_tol", "global_tol", "eig_tol", "value_tol")}
    keys = ("distance", "relative_value_loss", "field_norm", "min_real_eigenvalue", "lock_margin")
    return [decide({k: group[k][i] for k in keys}, **tols) for i in range(len(group["field_norm"]))]


def proportion(hits: int, n: int) -> dict:
    low, high = wilson_interval(hits, n)
    return {"count": hits, "n": n, "fraction": hits / n, "low": low, "high": high}


def tally(group: dict, tolerances: dict) -> dict:
    """``{kind: proportion}`` of a group."""
    ks = kinds(group, tolerances)
    return {kind: proportion(ks.count(kind), len(ks)) for kind in KINDS}


def by_config(summary: dict) -> dict:
    """``{(k, K): {flow: group}}``."""
    out = {}
    for g in summary["groups"]:
        out.setdefault((g["k"], g["K"]), {})[g["flow"]] = g
    return out


def mcnemar(a: list, b: list) -> dict:
    """Exact McNemar test of paired booleans: ``only_a``, ``only_b`` and the two-sided p-value."""
    only_a = sum(x and not y for x, y in zip(a, b))
    only_b = sum(y and not x for x, y in zip(a, b))
    n = only_a + only_b
    p = binomtest(min(only_a, only_b), n, 0.5).pvalue if n else 1.0
    return {"only_L": only_a, "only_H": only_b, "p": float(p)}


def holm(pvalues: list, alpha: float = ALPHA) -> list:
    """Holm's step-down: which of ``pvalues`` are rejected at family-wise level ``alpha``."""
    order = sorted(range(len(pvalues)), key=lambda i: pvalues[i])
    reject = [False] * len(pvalues)
    for rank, i in enumerate(order):
        if pvalues[i] > alpha / (len(pvalues) - rank):
            break
        reject[i] = True
    return reject


def comparisons(summary: dict) -> list:
    """Per ``(k, K)`` and ``H`` flow: the paired test against ``L`` on "ended at a spurious minimum", with Holm's
    decision and the direction (``"fewer"``/``"more"`` under H, or ``"no significant difference"``)."""
    tol = summary["tolerances"]
    rows = []
    for (k, K), flows in sorted(by_config(summary).items()):
        spur_L = [x == "spurious minimum" for x in kinds(flows["L"], tol)]
        for flow in H_FLOWS:
            spur_H = [x == "spurious minimum" for x in kinds(flows[flow], tol)]
            rows.append({"k": k, "K": K, "flow": flow, "L": sum(spur_L), "H": sum(spur_H), "n": len(spur_L),
                         **mcnemar(spur_L, spur_H)})
    for row, rejected in zip(rows, holm([r["p"] for r in rows])):
        row["significant"] = rejected
        row["direction"] = ("fewer" if row["only_L"] > row["only_H"] else "more") if rejected else "no significant difference"
    return rows


def followed_to_spurious(summary: dict, flow: str) -> int:
    """How many of ``L``'s distinct spurious minima the ``H`` flow ``flow``, started there, ends at a spurious minimum of
    its own from."""
    return sum(fp[flow]["kind"].count("spurious minimum") for g in summary["groups"]
               if g["flow"] == "L" and (fp := g.get("from_points")))


def flow_verdict(rows: list, followed: int = 0) -> str:
    """The verdict for one ``H`` flow from its comparison rows and ``followed`` (:func:`followed_to_spurious`): it
    removes spurious minima only if it has none of its own from ``L``'s either (module docstring)."""
    fewer = any(r["direction"] == "fewer" for r in rows)
    more = any(r["direction"] == "more" for r in rows)
    if fewer and more:
        return "mixed"
    if fewer:
        return "removes" if sum(r["H"] for r in rows) == 0 and followed == 0 else "reduces"
    if more:
        return "adds"
    if sum(r["H"] for r in rows) + sum(r["L"] for r in rows) == 0:
        return "inconclusive"
    return "keeps"


def flow_sentence(flow: str, rows: list, verdict: str, followed: int, minima: int) -> str:
    total_H, total_L, n = sum(r["H"] for r in rows), sum(r["L"] for r in rows), sum(r["n"] for r in rows)
    sig = [f"k = {r['k']}, K = {r['K']} ({r['direction']}, p = {r['p']:.2g})" for r in rows if r["significant"]]
    own = (f" Started at the {minima} distinct spurious minima of L, it ends at a spurious minimum of its own from "
           f"{followed}" + (": it has spurious minima, which these random starts did not reach." if followed and not total_H
                            else ".")) if minima else ""
    return (f"{flow}: {total_H} of {n} runs end at a spurious minimum, against {total_L} under L from the same starts; "
            f"significant after Holm's correction: {', '.join(sig) if sig else 'none'}.{own} Verdict: **{verdict}**.")


def minima_of_L(summary: dict) -> int:
    return sum(len(fp["H_mean_field_norm"]) for g in summary["groups"] if g["flow"] == "L" and (fp := g.get("from_points")))


# ----------------------------------------------------------------------------- Safran & Shamir
def spurious_at_six(summary: dict) -> dict:
    flows = by_config(summary).get((6, 6))
    if flows is None:
        return {"finding": "not examined", "sentence": "k = 6 is not in this profile."}
    p = tally(flows["L"], summary["tolerances"])["spurious minimum"]
    if p["count"]:
        return {"finding": "reproduced", "sentence": f"At k = 6, {p['count']} of {p['n']} runs of L end at a spurious "
                f"minimum ({p['fraction']:.3g}, 95% CI [{p['low']:.2g}, {p['high']:.2g}]): they exist from k = 6."}
    return {"finding": "not found", "sentence": f"At k = 6 no run of L ends at a spurious minimum in {p['n']} starts "
            f"(95% CI [0, {p['high']:.2g}]): with this many starts, spurious minima at k = 6, if any, are rarer than that."}


def growth_with_k(summary: dict) -> dict:
    tol = summary["tolerances"]
    xs, ys = [], []
    for (k, K), flows in sorted(by_config(summary).items()):
        if K == k:
            ind = [x == "spurious minimum" for x in kinds(flows["L"], tol)]
            xs += [k] * len(ind)
            ys += [int(b) for b in ind]
    if len(set(xs)) < 2 or len(set(ys)) < 2:
        return {"finding": "not resolved", "tau": None, "p": None,
                "sentence": "Growth with k cannot be tested: fewer than two k, or no variation in the outcomes."}
    up = kendalltau(xs, ys, alternative="greater")
    down = kendalltau(xs, ys, alternative="less")
    finding = "reproduced" if up.pvalue < ALPHA else "contradicted" if down.pvalue < ALPHA else "not resolved"
    return {"finding": finding, "tau": float(up.statistic), "p": float(min(up.pvalue, down.pvalue)),
            "sentence": f"Fraction against k (K = k): Kendall's tau = {up.statistic:.3f}, one-sided p = "
                        f"{min(up.pvalue, down.pvalue):.2g}: "
                        + {"reproduced": "it grows with k.", "contradicted": "it **decreases** with k.",
                           "not resolved": "no significant trend at this sample size."}[finding]}


def over_parameterisation(summary: dict) -> list:
    tol = summary["tolerances"]
    configs = by_config(summary)
    out = []
    for off in sorted({K - k for k, K in configs if K > k}):
        a = b = na = nb = 0
        for (k, K), flows in configs.items():
            if K == k + off and (k, k) in configs:
                b += kinds(flows["L"], tol).count("spurious minimum")
                nb += len(flows["L"]["field_norm"])
                a += kinds(configs[(k, k)]["L"], tol).count("spurious minimum")
                na += len(configs[(k, k)]["L"]["field_norm"])
        fewer = fisher_exact([[b, nb - b], [a, na - a]], alternative="less").pvalue
        more = fisher_exact([[b, nb - b], [a, na - a]], alternative="greater").pvalue
        finding = "reproduced" if fewer < ALPHA else "contradicted" if more < ALPHA else "not resolved"
        out.append({"offset": off, "finding": finding, "spurious_K_eq_k": a, "n_K_eq_k": na, "spurious_over": b,
                    "n_over": nb, "p": float(min(fewer, more)),
                    "sentence": f"K = k + {off} against K = k (pooled over k): {b}/{nb} against {a}/{na} runs of L end at "
                                f"a spurious minimum, one-sided Fisher p = {min(fewer, more):.2g}: "
                                + {"reproduced": "fewer with over-parameterisation.",
                                   "contradicted": "**more** with over-parameterisation.",
                                   "not resolved": "no significant difference at this sample size."}[finding]})
    return out


def safran_shamir(summary: dict) -> dict:
    six, grow, over = spurious_at_six(summary), growth_with_k(summary), over_parameterisation(summary)
    findings = [six["finding"], grow["finding"]] + [o["finding"] for o in over]
    if all(f == "reproduced" for f in findings):
        verdict = "reproduced"
    elif "contradicted" in findings:
        verdict = "contradicted in part"
    else:
        verdict = "partly reproduced"
    return {"verdict": verdict, "at_six": six, "growth": grow, "over": over}


# ----------------------------------------------------------------------------- the minima of L under H
def from_points_sentence(summary: dict) -> str:
    tol = summary["tolerances"]["grad_tol"]
    minima = crit = 0
    ends = {flow: {} for flow in H_FLOWS}
    for g in summary["groups"]:
        fp = g.get("from_points")
        if g["flow"] != "L" or not fp:
            continue
        minima += len(fp["H_mean_field_norm"])
        crit += sum(x <= tol for x in fp["H_mean_field_norm"])
        for flow in H_FLOWS:
            for kind in fp[flow]["kind"]:
                ends[flow][kind] = ends[flow].get(kind, 0) + 1
    if not minima:
        return "No spurious minimum of L was found, so none could be followed under H."
    parts = [f"{flow} flows started there end: " + ", ".join(f"{n} {kind}" for kind, n in sorted(ends[flow].items()))
             for flow in H_FLOWS]
    return (f"Of the {minima} distinct spurious minima of L, {crit} are critical points of the mean field of H "
            f"(|F| <= {tol:g}); " + "; ".join(parts) + ".")


GAP = 100.0  # the smallest spurious value loss should exceed the value tolerance by at least this factor


def tolerance_gap(summary: dict) -> dict:
    """Is the value tolerance that calls an end point global far below every spurious minimum?"""
    tol = summary["tolerances"]
    values = [g["relative_value_loss"][i] for g in summary["groups"]
              for i, kind in enumerate(kinds(g, tol)) if kind == "spurious minimum"]
    if not values:
        return {"smallest": None, "ok": True, "sentence": "No spurious minimum was found, so the value tolerance "
                f"{tol['value_tol']:g} separates nothing here."}
    low = min(values)
    ok = low >= GAP * tol["value_tol"]
    return {"smallest": low, "ok": ok,
            "sentence": f"The smallest value loss at a spurious minimum is {low:.3g} of the teacher's, "
                        f"{low / tol['value_tol']:.3g} times the value tolerance {tol['value_tol']:g} that calls an "
                        "end point global" + (": the two are well apart." if ok else
                        f": **less than {GAP:g} times**, so some end points may be misfiled.")}


def step_check(summary: dict, main: dict) -> dict:
    """Agreement of kinds between the main runs and the half-step runs of the same starts, per flow."""
    tol = summary["tolerances"]
    out = {}
    for g in summary["step_check"]:
        base = kinds(main[(g["k"], g["K"])][g["flow"]], tol)[:len(g["field_norm"])]
        half = kinds(g, tol)
        out[g["flow"]] = sum(x == y for x, y in zip(base, half)) / len(half)
    worst = min(out.values()) if out else None
    ok = worst is not None and worst >= AGREE
    sentence = ("Halving the step (twice the steps) changes the kind of " +
                ", ".join(f"{100 * (1 - a):.1f}% of the {f} runs" for f, a in out.items()) +
                (": the outcomes do not hinge on the step." if ok else
                 f": **more than {100 * (1 - AGREE):.0f}% change**, so the fractions depend on the discretisation."))
    return {"agreement": out, "robust": ok, "sentence": sentence}


def samples(summary: dict) -> list:
    """Per finite-sample run: the global fraction after the population polish, and agreement with the population
    flow of the same loss from the same starts."""
    tol = summary["tolerances"]
    configs = by_config(summary)
    out = []
    for s in summary["samples"]:
        ks = kinds(s, tol)
        row = {"k": s["k"], "loss": s["loss"], "method": s["method"], "global": proportion(ks.count("global"), len(ks)),
               "spurious": proportion(ks.count("spurious minimum"), len(ks)), "agreement": None}
        pop = configs.get((s["k"], s["K"]), {}).get("L" if s["loss"] == "L" else "H-mean")
        if pop is not None:
            pk = kinds(pop, tol)[:len(ks)]
            row["agreement"] = sum((a == "global") == (b == "global") for a, b in zip(ks, pk)) / len(ks)
        out.append(row)
    return out


def samples_sentence(summary: dict) -> str:
    """Per training method, pooled over k: do the same starts reach the global minimum more often trained on H than
    on L (exact McNemar), and how often does the finite-sample outcome match the population flow's?"""
    tol = summary["tolerances"]
    parts = []
    for method in ("GD", "SGD"):
        runs = {s["loss"]: [] for s in summary["samples"] if s["method"] == method}
        for s in summary["samples"]:
            if s["method"] == method:
                runs[s["loss"]] += [k == "global" for k in kinds(s, tol)]
        if set(runs) != {"L", "H"}:
            continue
        m = mcnemar(runs["L"], runs["H"])  # "only_L": global under L only
        diff = ("no significant difference" if m["p"] >= ALPHA else
                "H reaches it significantly more often" if m["only_H"] > m["only_L"] else
                "H reaches it significantly less often")
        parts.append(f"{method}: {sum(runs['H'])} of {len(runs['H'])} runs on H reach the global minimum against "
                     f"{sum(runs['L'])} on L from the same starts (McNemar p = {m['p']:.2g}): {diff}")
    if not parts:
        return "No finite-sample runs in this profile."
    agree = [r["agreement"] for r in samples(summary) if r["agreement"] is not None]
    return ("; ".join(parts) + f". Start by start, the finite-sample outcome matches the population flow's in "
            f"{min(agree):.0%} to {max(agree):.0%} of the runs." if agree else "; ".join(parts) + ".")


def judge(summary: dict) -> dict:
    main = by_config(summary)
    rows = comparisons(summary)
    verdicts, per_flow = [], {}
    for flow in H_FLOWS:
        mine = [r for r in rows if r["flow"] == flow]
        followed = followed_to_spurious(summary, flow)
        v = flow_verdict(mine, followed)
        per_flow[flow] = {"verdict": v, "followed_to_spurious": followed,
                          "sentence": flow_sentence(flow, mine, v, followed, minima_of_L(summary))}
        what = "mean field (autograd training)" if flow == "H-mean" else "true gradient (sliding on the teacher rays)"
        verdicts.append({"claim": f"beyond:landscape-{flow}", "verdict": v, "evidence": "landscape.md",
                         "title": f"Does Sobolev training remove L's spurious minima? (H, {what})",
                         "convention": f"population flows from the same random starts; {flow} against L"})
    ss = safran_shamir(summary)
    verdicts.append({"claim": "beyond:landscape-safran-shamir", "verdict": ss["verdict"], "evidence": "landscape.md",
                     "title": "Safran & Shamir (2018) for L: spurious minima from k = 6, growing with k, fewer when "
                              "over-parameterised",
                     "convention": "population flow of L from random starts"})
    return {"verdicts": verdicts, "comparisons": rows, "flows": per_flow, "safran_shamir": ss,
            "from_points": from_points_sentence(summary), "step_check": step_check(summary, main),
            "samples": samples(summary), "samples_sentence": samples_sentence(summary),
            "tolerance_gap": tolerance_gap(summary),
            "tallies": {f"{k},{K},{flow}": tally(g, summary["tolerances"])
                        for (k, K), flows in sorted(main.items()) for flow, g in flows.items()}}
