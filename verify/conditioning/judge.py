"""Judge layer of the conditioning report: the verdict on claim 3 and every sentence that states a finding.

Pure functions of the computed summary (the report's JSON ``data`` keys, or a hand-made dict with
the keys a function reads).  The verdict rule (docs/claims.md, claim 3):

* ``mean_holds``: for the Jacobian of the mean field with ``real_part``, ``H`` is worse on no point
  of the single-node map in ``d = 3`` (``fraction_H_worse == 0``) **and** better in every
  several-node instance near the teacher where both are defined (``improved == defined > 0``);
* ``mean_holds`` → *confirmed with qualifications*, otherwise *refuted in part (see report)*.

The convention text adds the worst several-node ratio found by the search, the counts of random
instances where only one of the two matrices is unstable, and what the Hessian of the population
loss does.  Cross-checks: finite differences pass when every relative gap is ``<= FD_TOLERANCE``;
Monte-Carlo when every ``|z| <`` the Bonferroni threshold at family-wise level ``ALPHA`` and the
entries with zero sampling variance agree exactly.
"""
from __future__ import annotations

import math

from scipy import stats

from theory.vocabulary import HESSIAN_FIELDS
from verify.report import fmt

ALPHA = 0.01  # family-wise level of the Monte-Carlo cross-check (Bonferroni)
FD_TOLERANCE = 1e-6  # relative: truncation O(h^2) plus rounding O(eps/h) ~ 1e-10 at h = 1e-6
EDGE_RATIO = 1e6  # a worst kappa(H)/kappa(L) this large: the search reached the edge of H's region
THETA_EDGE = 1e-6  # the single-node search's box in theta is [THETA_EDGE, pi - THETA_EDGE]
SAME_DIMS = (3, 10, 100)  # single-node maps that the derivation says coincide
TRUE_WORST_KEY = "single/true/d=3/symmetric"
GROUPS = ("far", "near", "direction")
CLAIM_NEEDS = ("- **Jacobian of the mean field (the paper's ∇²H), real-part definition** — the one the claim "
               "needs")


def pct(s: dict) -> str:
    """``improved/defined`` of a group summary, an em dash where none is defined."""
    return "—" if not s["defined"] else f"{s['improved']}/{s['defined']}"


# ----------------------------------------------------------------------------- checks
def maps_identical(map_summary: dict, fields=HESSIAN_FIELDS, defs=("symmetric", "singular", "real_part")) -> bool:
    """Whether the single-node summaries for ``d = 3`` and every larger ``d`` are identical."""
    first, rest = SAME_DIMS[0], SAME_DIMS[1:]
    return bool(all(map_summary[f"{f}/d={first}/{k}"] == map_summary[f"{f}/d={d}/{k}"]
                    for f in fields for k in defs for d in rest))


def cross_checks(cc: dict) -> dict:
    """``fd_tolerance``, ``fd_pass``, ``mc_z_threshold``, ``mc_pass`` from the raw cross-check rows."""
    fd_pass = bool(cc["fd"]) and all(r["max_rel_gap"] <= FD_TOLERANCE for r in cc["fd"])
    m = cc["mc_entries"]
    if m == 0 or not cc["mc"]:
        return {"fd_tolerance": FD_TOLERANCE, "fd_pass": fd_pass, "mc_z_threshold": None, "mc_pass": False}
    z_star = float(stats.norm.isf(ALPHA / (2 * m)))
    mc_pass = (bool(max(r["max_abs_z"] for r in cc["mc"]) < z_star)
               and all(r["exact_entries_gap"] == 0.0 for r in cc["mc"]))
    return {"fd_tolerance": FD_TOLERANCE, "fd_pass": fd_pass, "mc_z_threshold": z_star, "mc_pass": mc_pass}


# ----------------------------------------------------------------------------- the verdict
def verdict_inputs(summary: dict) -> dict:
    """The numbers the verdict and the convention text read (the JSON's ``verdict_inputs``)."""
    s, mn = summary["single_node_maps"]["summary"], summary["multi_node_summary"]
    worst = [w["ratio"] for key, w in summary["worst_case"].items()
             if key.startswith("multi/mean/") and key.endswith("/real_part") and w["ratio"] is not None]
    groups = [g for g in GROUPS if f"{g}/mean/real_part" in mn]
    return {"single_mean_real_part_d3": s["mean/d=3/real_part"], "single_true_d3": s["true/d=3/symmetric"],
            "single_true_d2": s["true/d=2/symmetric"], "near_mean_real_part": mn["near/mean/real_part"],
            "near_true_symmetric": mn["near/true/symmetric"], "direction_true_symmetric": mn["direction/true/symmetric"],
            "H_unstable_L_stable_witness": summary.get("witness"),
            "multi_node_only_H_unstable": sum(mn[f"{g}/mean/real_part"]["only_H_undefined"] for g in groups),
            "multi_node_only_L_unstable": sum(mn[f"{g}/mean/real_part"]["only_L_undefined"] for g in groups),
            "multi_node_worst_mean_real_part": max(worst) if worst else None}


def mean_holds(inputs: dict) -> bool:
    """H never worse on the single-node map (d = 3) and better in every defined near-teacher instance."""
    near = inputs["near_mean_real_part"]
    return (inputs["single_mean_real_part_d3"]["fraction_H_worse"] == 0.0 and near["defined"] > 0
            and near["improved"] == near["defined"])


def verdict(inputs: dict) -> str:
    return "confirmed with qualifications" if mean_holds(inputs) else "refuted in part (see report)"


def true_diverges(worst_case: dict) -> bool:
    """The single-node search for the true Hessian (d = 3) reached ``EDGE_RATIO`` at the edge of its θ box."""
    w = worst_case.get(TRUE_WORST_KEY, {})
    if w.get("ratio") is None:
        return False
    at_edge = w["theta"] <= 2 * THETA_EDGE or w["theta"] >= math.pi - 2 * THETA_EDGE
    return bool(w["ratio"] >= EDGE_RATIO and at_edge)


def _mean_clause(inputs: dict) -> str:
    s, near = inputs["single_mean_real_part_d3"], inputs["near_mean_real_part"]
    single_ok = s["fraction_H_worse"] == 0.0 and s["fraction_H_undefined_only"] == 0.0 and s["fraction_equal"] == 0.0
    near_ok = near["defined"] > 0 and near["improved"] == near["defined"]
    if single_ok and near_ok:
        return "H better wherever L is positive definite (single node) and near the teacher (several nodes)"
    single = ("H better wherever L is positive definite (single node)" if single_ok else
              f"H worse on {s['fraction_H_worse']:.1%} and unstable where L is stable on "
              f"{s['fraction_H_undefined_only']:.1%} of the single-node grid")
    near_txt = (f"better in {pct(near)} several-node instances near the teacher" if near["defined"] else
                "no several-node instance near the teacher where both are defined")
    return f"{single}; {near_txt}"


def _caveat(inputs: dict) -> str:
    mn_worst, only_H, only_L = (inputs["multi_node_worst_mean_real_part"], inputs["multi_node_only_H_unstable"],
                                inputs["multi_node_only_L_unstable"])
    if mn_worst is None or mn_worst <= 1:
        return ""
    return (f"; not everywhere with several nodes: the search finds κ(H)/κ(L) up to {mn_worst:.3g}"
            + (", at the edge of a region where L's Jacobian is stable and H's is not" if mn_worst >= EDGE_RATIO else "")
            + f" (random instances: H unstable where L is stable in {only_H}, the reverse in {only_L})")


def _true_clause(inputs: dict, worst_case: dict) -> str:
    s = inputs["single_true_d3"]
    if s["fraction_H_worse"] > 0 and true_diverges(worst_case):
        return "; false for the Hessian of the population H (κ → ∞ at the teacher in d ≥ 3)"
    if s["fraction_H_worse"] > 0:
        return f"; false for the Hessian of the population H (H worse on {s['fraction_H_worse']:.1%} of the single-node grid, d ≥ 3)"
    return f"; for the Hessian of the population H, never worse on the single-node grid (better on {s['fraction_H_better']:.1%}, d ≥ 3)"


def convention(inputs: dict, worst_case: dict) -> str:
    """The verdict row's convention text."""
    return ("κ = max Re λ / min Re λ of the Jacobian of the mean field (the paper's ∇²H): " + _mean_clause(inputs)
            + _caveat(inputs) + _true_clause(inputs, worst_case))


# ----------------------------------------------------------------------------- finding sentences
def maps_sentence(identical: bool) -> str:
    dims = ", ".join(str(d) for d in SAME_DIMS)
    if identical:
        return (f"Maps for d = {dims} are identical: **True** (as derived: `d` only sets the multiplicity of `s`).")
    return (f"Maps for d = {dims} are identical: **False** — against the derivation (`d` only sets the multiplicity "
            "of `s`): a numerical problem in the maps.")


def true_edge_sentence(worst_case: dict) -> str:
    """What the single-node search for the true Hessian in d ≥ 3 shows."""
    head = "For the true Hessian in d ≥ 3 the single-node supremum is infinite: κ(H) grows like `1/(2πρ sin θ)` as θ → 0 while κ(L) stays bounded"
    if true_diverges(worst_case):
        return head + "; the optimiser stops at the edge of its box."
    w = worst_case.get(TRUE_WORST_KEY, {})
    if w.get("ratio") is None:
        return head + " (derived); the search found no point where both are defined."
    return (head + f" (derived); this search stopped short of the edge of its box (θ = {w['theta']:.3g}, "
            f"κ(H)/κ(L) = {w['ratio']:.3g}).")


def mean_edge_sentence(worst_case: dict, witness) -> str:
    """Whether the mean-field real-part searches reached the edge of H's region, single and several nodes."""
    single = [w["ratio"] for key, w in worst_case.items() if key.startswith("single/mean/") and key.endswith("/real_part")
              and w["ratio"] is not None]
    multi = {key.split("/")[2]: w["ratio"] for key, w in worst_case.items()
             if key.startswith("multi/mean/") and key.endswith("/real_part") and w["ratio"] is not None}
    head = "For the Jacobian of the mean field with the real-part definition"
    if single and max(single) > 1 + 1e-9:
        first = (f"{head} the single-node search found κ(H)/κ(L) = {max(single):.3g} > 1, against the derivation "
                 "(`1 − 3q/2 > 1 − 2q`)")
    else:
        first = f"{head} this does not happen for one node (proved: `1 − 3q/2 > 1 − 2q`)"
    edge = [size for size, r in multi.items() if r >= EDGE_RATIO]
    if edge:
        return first + f", but it does for several nodes ({', '.join(edge)}; the multi-node rows)."
    if not multi:
        return first + "; the several-node searches found no point where both are defined."
    tail = f"; the several-node searches stay below 10⁶ here (largest {max(multi.values()):.3g})"
    if witness is not None:
        tail += (", but a perturbation of one of their worst points crosses into a region where `H`'s Jacobian is unstable and "
                 "`L`'s is not (the witness in section 6)")
    return first + tail + "."


def mean_bullet(inputs: dict) -> str:
    s, near = inputs["single_mean_real_part_d3"], inputs["near_mean_real_part"]
    gain = (": the gain is large only where `sin θ/(πρ)` is not small, i.e. for small students or wide angles"
            if s["fraction_H_better"] > 0 else "")
    return (f"{CLAIM_NEEDS}: in the single-node maps `H` is better on {s['fraction_H_better']:.1%} of the grid (by more "
            f"than 10% on {s['fraction_H_better_by_10pc']:.1%}; median ratio {fmt(s['median_ratio'])}{gain}) and worse "
            f"on {s['fraction_H_worse']:.1%} (d ≥ 3); `H` stays stable where `L` is already indefinite on "
            f"{s['fraction_L_undefined_only']:.1%}. Several nodes near the teacher: `H` better in "
            f"{pct(near)} instances (median ratio {fmt(near['median'])}).")


def true_bullet(inputs: dict, worst_case: dict) -> str:
    s, s2 = inputs["single_true_d3"], inputs["single_true_d2"]
    if true_diverges(worst_case):
        near = "near the teacher κ(H) → ∞ (the kink of `J`)"
    else:
        w = worst_case.get(TRUE_WORST_KEY, {})
        near = f"the worst-case search near the teacher reaches κ(H)/κ(L) = {fmt(w.get('ratio'))} only"
    if s2["fraction_H_better"] == 0.0 and s2["fraction_H_worse"] == 0.0 and s2["fraction_equal"] > 0:
        d2 = f"In d = 2 the two condition numbers are equal wherever both exist ({s2['fraction_equal']:.1%} of the grid)."
    else:
        d2 = (f"In d = 2 `H` is better on {s2['fraction_H_better']:.1%} and worse on {s2['fraction_H_worse']:.1%} of "
              "the grid.")
    return (f"- **Hessian of the population loss**: single node, d ≥ 3, `H` better on {s['fraction_H_better']:.1%} "
            f"and worse on {s['fraction_H_worse']:.1%} of the grid; {near}. {d2} Several nodes approaching the teacher: "
            f"`H` better in {pct(inputs['direction_true_symmetric'])}, near: {pct(inputs['near_true_symmetric'])}.")


def autograd_bullet(map_summary: dict) -> str:
    auto = [v for key, v in map_summary.items() if key.startswith("autograd/")]
    if auto and all(v["fraction_equal"] == 1.0 for v in auto):
        return "- **Expected autograd Hessian**: single node κ = 1 for both (no difference); several nodes in the table above."
    differ = max((1.0 - v["fraction_equal"] for v in auto), default=0.0)
    return (f"- **Expected autograd Hessian**: single node, κ(H) and κ(L) differ or are undefined on up to {differ:.1%} "
            "of the grid; several nodes in the table above.")


def conclusion(inputs: dict, worst_case: dict) -> str:
    """The closing sentence of the verdict section."""
    s_mean, s_true = inputs["single_mean_real_part_d3"], inputs["single_true_d3"]
    if mean_holds(inputs):
        first = ("So the claim holds for the object the paper's formula is, the Jacobian of the mean field, with the "
                 "condition number that governs gradient-flow rates")
    else:
        first = ("So the claim fails in part even for the object the paper's formula is, the Jacobian of the mean "
                 f"field, with the condition number that governs gradient-flow rates (`H` worse on "
                 f"{s_mean['fraction_H_worse']:.1%} of the single-node grid; near the teacher better in "
                 f"{pct(inputs['near_mean_real_part'])} instances)")
    if s_true["fraction_H_worse"] > 0:
        second = ", and it does not hold for the Hessian of the population loss `H`" + (
            ", whose conditioning is unbounded near the teacher." if true_diverges(worst_case) else ".")
    else:
        second = (f"; for the Hessian of the population loss `H` is never worse on the single-node grid (better on "
                  f"{s_true['fraction_H_better']:.1%}).")
    return first + second


def witness_sentence(witness) -> str | None:
    if witness is None:
        return None
    return (f"Witness (several nodes, `K = {len(witness['W'])}`, `d = {len(witness['W'][0])}`, weights in the JSON): "
            f"the Jacobian of the mean field of `L` has min Re λ = {witness['min_real_eigenvalue_L']:.3g} > 0, that "
            f"of `H` has min Re λ = {witness['min_real_eigenvalue_H']:.3g} < 0 — a seeded perturbation (relative "
            f"size {witness['perturbation']:g}) of the worst point found by the search.")


def several_nodes_sentence(inputs: dict, far_mean: dict) -> str:
    only_H, only_L = inputs["multi_node_only_H_unstable"], inputs["multi_node_only_L_unstable"]
    mn_worst, witness = inputs["multi_node_worst_mean_real_part"], inputs["H_unstable_L_stable_witness"]
    if only_H > 0 or (mn_worst or 0) >= EDGE_RATIO or witness is not None:
        tail = (" — so with several nodes the improvement is not global: there are points where the linearised "
                "mean-field flow of `L` decays in every direction and that of `H` does not.")
    elif (mn_worst or 0) > 1:
        tail = " — with several nodes `H` is worse conditioned at some points."
    else:
        tail = "."
    return (f"Several nodes (mean field, real part): far from the teacher `H` better in {pct(far_mean)} instances where "
            f"both are defined; `H` unstable where `L` is stable in {only_H} random instances, the reverse in {only_L}; "
            f"the worst-case search finds κ(H)/κ(L) = {fmt(mn_worst)}" + tail)


# ----------------------------------------------------------------------------- everything
def judge(summary: dict) -> dict:
    """The verdict, the checks and every finding sentence, from the computed summary."""
    inputs = verdict_inputs(summary)
    worst, maps = summary["worst_case"], summary["single_node_maps"]["summary"]
    identical = maps_identical(maps)
    return {
        "verdict": verdict(inputs), "mean_holds": mean_holds(inputs), "convention": convention(inputs, worst),
        "inputs": inputs, "maps_identical": identical, "cross_checks": cross_checks(summary["cross_checks"]),
        "sentences": {
            "maps": maps_sentence(identical), "true_edge": true_edge_sentence(worst),
            "mean_edge": mean_edge_sentence(worst, inputs["H_unstable_L_stable_witness"]),
            "bullets": [mean_bullet(inputs), true_bullet(inputs, worst), autograd_bullet(maps)],
            "conclusion": conclusion(inputs, worst),
            "witness": witness_sentence(inputs["H_unstable_L_stable_witness"]),
            "several_nodes": several_nodes_sentence(inputs, summary["multi_node_summary"]["far/mean/real_part"]),
        },
    }
