"""The judge of the conditioning report (claim 3), on hand-made summaries.

Each test builds a small summary by hand, moves one number across a rule's threshold and checks
that the verdict or the sentence flips, and that a sentence about something the summary does not
hold (no witness, no several-node search, no divergence) is absent.
"""
import copy
import math

import pytest

from verify.conditioning import judge as J
from verify.conditioning import render

FIELDS = ("true", "mean", "autograd")
DEFS = ("symmetric", "singular", "real_part")


def map_entry(better=0.5, worse=0.0, equal=0.0, L_only=0.0, H_only=0.0, median=0.9) -> dict:
    both = 1.0 - better - worse - equal - L_only - H_only
    return {"fraction_H_better": better, "fraction_H_worse": worse, "fraction_equal": equal,
            "fraction_L_undefined_only": L_only, "fraction_H_undefined_only": H_only,
            "fraction_both_undefined": max(both, 0.0), "fraction_H_better_by_10pc": better / 2,
            "median_ratio": median, "min_ratio": 0.5, "max_ratio": 1.0}


def group(defined=4, improved=4, only_L=0, only_H=0, median=0.7) -> dict:
    return {"n": 4, "defined": defined, "improved": improved, "only_L_undefined": only_L, "only_H_undefined": only_H,
            "median": median if defined else None, "q10": None, "q90": None, "min": None, "max": None}


def summary(**over) -> dict:
    """A summary where the claim holds for the mean field and fails for the true Hessian (like the real report)."""
    maps = {f"{f}/d={d}/{k}": map_entry() for f in FIELDS for d in (2, 3, 10, 100) for k in DEFS}
    for d in (2, 3, 10, 100):
        for k in DEFS:
            maps[f"autograd/d={d}/{k}"] = map_entry(better=0.0, equal=1.0, median=1.0)
            maps[f"true/d={d}/{k}"] = (map_entry(better=0.0, equal=0.6, median=1.0) if d == 2 else
                                       map_entry(better=0.0, worse=0.3, equal=0.3, median=1.0))
    mn = {f"{g}/{f}/{k}": group() for g in J.GROUPS for f in FIELDS for k in DEFS}
    worst = {"single/true/d=3/symmetric": {"ratio": 1.6e7, "theta": 1e-6, "rho": 0.01},
             "single/mean/d=3/real_part": {"ratio": 0.99999, "theta": 1e-6, "rho": 60.0},
             "multi/mean/K=2,d=4/real_part": {"ratio": 0.9, "start": 0, "min_angle_to_teacher": 0.05},
             "multi/mean/K=4,d=4/real_part": {"ratio": 10.0, "start": 0, "min_angle_to_teacher": 0.07}}
    cc = {"closed_form_vs_numerics_hessian_max_rel_gap": 1e-15, "fd": [{"max_rel_gap": 1e-9}] * 4,
          "mc": [{"max_abs_z": 2.0, "exact_entries_gap": 0.0}] * 2, "mc_entries": 72}
    s = {"single_node_maps": {"summary": maps}, "multi_node_summary": mn, "worst_case": worst,
         "cross_checks": cc, "witness": None}
    s = copy.deepcopy(s)
    for path, value in over.items():
        *keys, last = path.split(".")
        node = s
        for key in keys:
            node = node[key]
        node[last] = value
    return s


def inputs(**over) -> dict:
    return J.verdict_inputs(summary(**over))


MEAN3 = "single_node_maps.summary.mean/d=3/real_part"
NEAR = "multi_node_summary.near/mean/real_part"


# ----------------------------------------------------------------------------- the verdict
def test_verdict_flips_when_H_is_worse_anywhere_on_the_single_node_map():
    assert J.verdict(inputs()) == "confirmed with qualifications"
    assert J.verdict(inputs(**{MEAN3: map_entry(worse=1e-4)})) == "refuted in part (see report)"
    assert J.verdict(inputs(**{MEAN3: map_entry(worse=0.0)})) == "confirmed with qualifications"


@pytest.mark.parametrize("near, expected", [((4, 4), "confirmed with qualifications"),
                                            ((4, 3), "refuted in part (see report)"),
                                            ((0, 0), "refuted in part (see report)"),
                                            ((1, 1), "confirmed with qualifications")])
def test_verdict_needs_every_defined_near_instance_improved(near, expected):
    defined, improved = near
    assert J.verdict(inputs(**{NEAR: group(defined, improved)})) == expected


def test_verdict_inputs_aggregate_the_several_node_numbers():
    inp = inputs(**{"multi_node_summary.far/mean/real_part": group(only_H=2, only_L=1),
                    "multi_node_summary.direction/mean/real_part": group(only_H=1)})
    assert inp["multi_node_only_H_unstable"] == 3 and inp["multi_node_only_L_unstable"] == 1
    assert inp["multi_node_worst_mean_real_part"] == 10.0
    s = summary()
    s["worst_case"] = {k: v for k, v in s["worst_case"].items() if not k.startswith("multi/")}
    assert J.verdict_inputs(s)["multi_node_worst_mean_real_part"] is None


# ----------------------------------------------------------------------------- the convention text
def test_convention_clauses_follow_the_numbers():
    base = J.convention(inputs(), summary()["worst_case"])
    assert "H better wherever L is positive definite (single node) and near the teacher (several nodes)" in base
    assert "not everywhere with several nodes: the search finds κ(H)/κ(L) up to 10" in base
    assert "at the edge of a region" not in base
    assert base.endswith("; false for the Hessian of the population H (κ → ∞ at the teacher in d ≥ 3)")
    # the mean-field clause is not claimed when H is worse on the map or not better near the teacher
    worse = J.convention(inputs(**{MEAN3: map_entry(worse=0.02)}), summary()["worst_case"])
    assert "H better wherever" not in worse and "H worse on 2.0%" in worse
    near = J.convention(inputs(**{NEAR: group(4, 2)}), summary()["worst_case"])
    assert "near the teacher (several nodes)" not in near and "better in 2/4 several-node instances" in near


def test_convention_caveat_appears_only_above_one_and_edge_only_from_1e6():
    w = summary()["worst_case"]
    for worst, caveat, edge in ((0.9, False, False), (1.0, False, False), (2.0, True, False), (1e6, True, True)):
        text = J.convention(inputs(**{"worst_case.multi/mean/K=4,d=4/real_part": {"ratio": worst}}), w)
        assert ("not everywhere with several nodes" in text) is caveat, worst
        assert ("at the edge of a region" in text) is edge, worst


def test_true_hessian_clause_needs_divergence_at_the_edge_of_the_box():
    assert J.true_diverges(summary()["worst_case"])
    for over in ({"ratio": 1e5, "theta": 1e-6, "rho": 0.01}, {"ratio": 1e7, "theta": 0.3, "rho": 0.01},
                 {"ratio": None, "theta": None, "rho": None}):
        s = summary(**{"worst_case.single/true/d=3/symmetric": over})
        assert not J.true_diverges(s["worst_case"])
        text = J.convention(J.verdict_inputs(s), s["worst_case"])
        assert "κ → ∞" not in text and "false for the Hessian of the population H (H worse on 30.0%" in text
    never = summary(**{"single_node_maps.summary.true/d=3/symmetric": map_entry(better=0.2)})
    text = J.convention(J.verdict_inputs(never), never["worst_case"])
    assert "false for" not in text and "never worse" in text
    mirrored = summary(**{"worst_case.single/true/d=3/symmetric": {"ratio": 1e7, "theta": math.pi - 1e-6, "rho": 1}})
    assert J.true_diverges(mirrored["worst_case"])


# ----------------------------------------------------------------------------- cross-checks
def test_fd_check_flips_at_its_tolerance():
    assert J.cross_checks(summary()["cross_checks"])["fd_pass"]
    at = summary(**{"cross_checks.fd": [{"max_rel_gap": J.FD_TOLERANCE}]})["cross_checks"]
    above = summary(**{"cross_checks.fd": [{"max_rel_gap": 1e-9}, {"max_rel_gap": 1.01 * J.FD_TOLERANCE}]})
    assert J.cross_checks(at)["fd_pass"] and not J.cross_checks(above["cross_checks"])["fd_pass"]
    assert not J.cross_checks(summary(**{"cross_checks.fd": []})["cross_checks"])["fd_pass"]


def test_mc_check_flips_at_the_bonferroni_threshold():
    cc = summary()["cross_checks"]
    z_star = J.cross_checks(cc)["mc_z_threshold"]
    assert 3.5 < z_star < 4.0  # isf(0.01 / 144)
    for z, ok in ((z_star - 1e-9, True), (z_star, False), (z_star + 1, False)):
        cc["mc"] = [{"max_abs_z": 1.0, "exact_entries_gap": 0.0}, {"max_abs_z": z, "exact_entries_gap": 0.0}]
        assert J.cross_checks(cc)["mc_pass"] is ok, z
    cc["mc"] = [{"max_abs_z": 1.0, "exact_entries_gap": 1e-300}]
    assert not J.cross_checks(cc)["mc_pass"]  # entries with zero variance must agree exactly
    cc["mc"], cc["mc_entries"] = [], 0
    assert J.cross_checks(cc) == {"fd_tolerance": J.FD_TOLERANCE, "fd_pass": True, "mc_z_threshold": None,
                                  "mc_pass": False}


def test_maps_identical_compares_every_larger_dimension_with_d3():
    s = summary()["single_node_maps"]["summary"]
    assert J.maps_identical(s)
    assert "**True** (as derived" in J.maps_sentence(True)
    s["mean/d=100/singular"] = map_entry(better=0.51)
    assert not J.maps_identical(s)
    assert "**False**" in J.maps_sentence(False) and "as derived" not in J.maps_sentence(False)


# ----------------------------------------------------------------------------- finding sentences
def test_conclusion_states_the_claim_holds_only_when_the_rule_says_so():
    s = summary()
    assert J.conclusion(J.verdict_inputs(s), s["worst_case"]).startswith("So the claim holds for the object")
    bad = summary(**{MEAN3: map_entry(worse=0.01)})
    text = J.conclusion(J.verdict_inputs(bad), bad["worst_case"])
    assert "claim holds" not in text and text.startswith("So the claim fails in part")
    # the population-loss part: unbounded only with the divergence, absent when H is never worse there
    assert "unbounded near the teacher" in J.conclusion(J.verdict_inputs(s), s["worst_case"])
    flat = summary(**{"worst_case.single/true/d=3/symmetric": {"ratio": 3.0, "theta": 0.5, "rho": 1.0}})
    assert "unbounded" not in J.conclusion(J.verdict_inputs(flat), flat["worst_case"])
    never = summary(**{"single_node_maps.summary.true/d=3/symmetric": map_entry(better=0.2)})
    assert "does not hold" not in J.conclusion(J.verdict_inputs(never), never["worst_case"])


def test_witness_sentences_are_absent_without_a_witness():
    inp = inputs(**{"worst_case.multi/mean/K=4,d=4/real_part": {"ratio": 0.95}})
    far = summary()["multi_node_summary"]["far/mean/real_part"]
    assert J.witness_sentence(None) is None
    text = J.several_nodes_sentence(inp, far)
    assert "not global" not in text and "worse conditioned" not in text and text.endswith("= 0.95.")
    inp["multi_node_worst_mean_real_part"] = 10.0
    assert "worse conditioned at some points" in J.several_nodes_sentence(inp, far)
    witness = {"W": [[1.0, 0.0]] * 4, "W_star": [[0.0, 1.0]] * 4, "perturbation": 0.1,
               "min_real_eigenvalue_L": 0.003, "min_real_eigenvalue_H": -0.009}
    inp["H_unstable_L_stable_witness"] = witness
    assert "improvement is not global" in J.several_nodes_sentence(inp, far)
    assert J.witness_sentence(witness).startswith("Witness (several nodes, `K = 4`, `d = 2`")
    inp["H_unstable_L_stable_witness"], inp["multi_node_only_H_unstable"] = None, 1
    assert "improvement is not global" in J.several_nodes_sentence(inp, far)


def test_mean_edge_sentence_speaks_of_several_nodes_only_when_searched():
    w = summary()["worst_case"]
    text = J.mean_edge_sentence(w, None)
    assert "does not happen for one node" in text and "largest 10" in text and "witness" not in text
    assert "witness in section 6" in J.mean_edge_sentence(w, {"W": []})
    w["multi/mean/K=4,d=4/real_part"] = {"ratio": 2e10}
    assert "but it does for several nodes (K=4,d=4" in J.mean_edge_sentence(w, None)
    single_only = {k: v for k, v in w.items() if k.startswith("single/")}
    text = J.mean_edge_sentence(single_only, None)
    assert "several nodes (" not in text and "found no point" in text
    w["single/mean/d=3/real_part"] = {"ratio": 1.5, "theta": 1.0, "rho": 1.0}
    assert "does not happen for one node" not in J.mean_edge_sentence(w, None)


def test_true_edge_sentence_claims_the_box_edge_only_when_reached():
    w = summary()["worst_case"]
    assert J.true_edge_sentence(w).endswith("the optimiser stops at the edge of its box.")
    w["single/true/d=3/symmetric"] = {"ratio": 40.0, "theta": 0.2, "rho": 0.05}
    text = J.true_edge_sentence(w)
    assert "stops at the edge" not in text and "stopped short" in text


def test_bullets_state_only_what_the_numbers_show():
    inp, w = inputs(), summary()["worst_case"]
    assert "the gain is large only where" in J.mean_bullet(inp)
    assert "the gain is large" not in J.mean_bullet(inputs(**{MEAN3: map_entry(better=0.0)}))
    assert "equal wherever both exist (60.0% of the grid)" in J.true_bullet(inp, w)
    d2 = inputs(**{"single_node_maps.summary.true/d=2/symmetric": map_entry(better=0.1, equal=0.5)})
    assert "equal wherever" not in J.true_bullet(d2, w) and "In d = 2 `H` is better on 10.0%" in J.true_bullet(d2, w)
    flat = summary(**{"worst_case.single/true/d=3/symmetric": {"ratio": 3.0, "theta": 0.5, "rho": 1.0}})
    assert "κ(H) → ∞" not in J.true_bullet(inp, flat["worst_case"])
    maps = summary()["single_node_maps"]["summary"]
    assert "κ = 1 for both (no difference)" in J.autograd_bullet(maps)
    maps["autograd/d=3/singular"] = map_entry(better=0.2, equal=0.8)
    assert "no difference" not in J.autograd_bullet(maps) and "20.0%" in J.autograd_bullet(maps)


def test_judge_and_markdown_end_to_end_on_a_hand_made_summary():
    s = summary(**{MEAN3: map_entry(worse=0.05)})
    s.update(profile_sizes=dict(grid=4, widths=[2], dims=[4], n_far=1, n_near=1, n_dir=1, ts=[0.1], de_iter=1,
                                nm_starts=1, nm_fev=1, fd_points=1, mc_points=1, mc_n=10),
             spectrum_table=[], single_node_maps={**s["single_node_maps"], "theta_grid": {"n": 4},
                                                  "rho_grid": {"n": 4}})
    j = J.judge(s)
    assert j["verdict"] == "refuted in part (see report)" and not j["mean_holds"]
    md = "\n\n".join(render.markdown(s, j))
    assert "So the claim holds" not in md and "So the claim fails in part" in md
    assert "Witness (" not in md and "improvement is not global" not in md
    assert "excluded from this search" in md and "1e-12·σmax" in md
    good = summary()
    good.update({k: s[k] for k in ("profile_sizes", "spectrum_table", "single_node_maps")})
    good["single_node_maps"]["summary"][MEAN3.split(".")[-1]] = map_entry()
    j = J.judge(good)
    assert j["verdict"] == "confirmed with qualifications"
    assert "So the claim holds for the object" in "\n\n".join(render.markdown(good, j))
