"""verify.landscape.judge: every rule on constructed summaries (no descent runs)."""
from __future__ import annotations

import pytest

from numerics import landscape as LS
from verify.landscape import judge as J

TOL = dict(grad_tol=1e-6, global_tol=1e-6, eig_tol=1e-6, value_tol=1e-8, stop=1e-8, dedup=1e-4)
END = {  # the numbers of one end point of each kind (K = k)
    "global": dict(distance=1e-9, relative_value_loss=1e-16, field_norm=1e-9, min_real_eigenvalue=None, lock_margin=None),
    "spurious minimum": dict(distance=0.3, relative_value_loss=3e-3, field_norm=1e-9, min_real_eigenvalue=0.02,
                             lock_margin=None),
    "saddle": dict(distance=0.3, relative_value_loss=3e-3, field_norm=1e-9, min_real_eigenvalue=-0.1, lock_margin=None),
    "not converged": dict(distance=0.3, relative_value_loss=3e-3, field_norm=1e-3, min_real_eigenvalue=None,
                          lock_margin=None),
}


def group(k, K, flow, ends):
    g = {"k": k, "K": K, "flow": flow, "distinct": []}
    for key in END["global"]:
        g[key] = [END[e][key] for e in ends]
    return g


def summary(spec):
    """``spec``: {(k, K): {flow: [kinds]}}."""
    groups = [group(k, K, f, ends) for (k, K), flows in spec.items() for f, ends in flows.items()]
    return {"tolerances": TOL, "groups": groups, "step_check": [], "samples": []}


def test_kinds_are_recomputed_from_the_numbers():
    g = group(6, 6, "L", list(END))
    assert J.kinds(g, TOL) == list(END)


def test_decide_follows_the_tolerances():
    kw = {k: TOL[k] for k in ("grad_tol", "global_tol", "eig_tol", "value_tol")}
    over = dict(END["not converged"], distance=None, relative_value_loss=5e-9)  # K > k: by the value loss, first
    assert LS.decide(over, **kw) == "global"
    assert LS.decide(dict(over, relative_value_loss=2e-8), **kw) == "not converged"
    locked = dict(END["spurious minimum"], lock_margin=1e-7)  # a lock about to give way: not a minimum
    assert LS.decide(locked, **kw) == "saddle"
    assert LS.decide(dict(END["spurious minimum"], min_real_eigenvalue=None), **kw) == "unstable?"


def test_holm_and_mcnemar():
    assert J.holm([0.01, 0.04, 0.03]) == [True, False, False]  # 0.01 <= 0.05/3; 0.03 > 0.05/2 stops
    assert J.holm([0.001, 0.02]) == [True, True]
    m = J.mcnemar([True] * 8 + [False] * 2, [False] * 10)
    assert (m["only_L"], m["only_H"]) == (8, 0) and m["p"] == pytest.approx(2 * 0.5**8)


def _paired(n_L, n_H, n=40):
    return {"L": ["spurious minimum"] * n_L + ["global"] * (n - n_L),
            "H-mean": ["spurious minimum"] * n_H + ["global"] * (n - n_H),
            "H-true": ["global"] * n}


def test_flow_verdicts():
    removes = J.comparisons(summary({(8, 8): _paired(20, 0)}))
    assert J.flow_verdict([r for r in removes if r["flow"] == "H-mean"]) == "removes"
    reduces = J.comparisons(summary({(8, 8): _paired(20, 2)}))
    assert J.flow_verdict([r for r in reduces if r["flow"] == "H-mean"]) == "reduces"
    adds = J.comparisons(summary({(8, 8): {"L": ["global"] * 40, "H-mean": ["spurious minimum"] * 20 + ["global"] * 20,
                                           "H-true": ["global"] * 40}}))
    assert J.flow_verdict([r for r in adds if r["flow"] == "H-mean"]) == "adds"
    keeps = J.comparisons(summary({(8, 8): _paired(5, 5)}))
    assert J.flow_verdict([r for r in keeps if r["flow"] == "H-mean"]) == "keeps"
    none = J.comparisons(summary({(8, 8): _paired(0, 0)}))
    assert J.flow_verdict([r for r in none if r["flow"] == "H-mean"]) == "inconclusive"
    mixed = J.comparisons(summary({(8, 8): _paired(20, 0), (10, 10): _paired(0, 20)}))
    assert J.flow_verdict([r for r in mixed if r["flow"] == "H-mean"]) == "mixed"


def test_safran_shamir_points():
    grows = summary({(6, 6): _paired(1, 0, 50), (8, 8): _paired(10, 0, 50), (10, 10): _paired(25, 0, 50),
                     (6, 7): _paired(0, 0, 50), (8, 9): _paired(1, 0, 50), (10, 11): _paired(2, 0, 50)})
    ss = J.safran_shamir(grows)
    assert ss["at_six"]["finding"] == "reproduced" and ss["growth"]["finding"] == "reproduced"
    assert [o["finding"] for o in ss["over"]] == ["reproduced"] and ss["verdict"] == "reproduced"
    shrinks = summary({(6, 6): _paired(0, 0, 50), (8, 8): _paired(25, 0, 50), (10, 10): _paired(5, 0, 50),
                       (6, 7): _paired(20, 0, 50), (8, 9): _paired(20, 0, 50), (10, 11): _paired(20, 0, 50)})
    ss = J.safran_shamir(shrinks)
    assert ss["at_six"]["finding"] == "not found" and "0.071" in ss["at_six"]["sentence"]  # Wilson upper end, 0 of 50
    assert ss["over"][0]["finding"] == "contradicted" and ss["verdict"] == "contradicted in part"
    assert J.safran_shamir(summary({(8, 8): _paired(3, 0)}))["at_six"]["finding"] == "not examined"


def test_tolerance_gap_and_step_check():
    s = summary({(8, 8): _paired(3, 0)})
    assert J.tolerance_gap(s)["ok"]
    s["groups"][0]["relative_value_loss"][0] = 5e-7  # a "spurious minimum" only 50x above the value tolerance
    assert not J.tolerance_gap(s)["ok"]
    s = summary({(8, 8): _paired(10, 0)})
    half = group(8, 8, "L", ["spurious minimum"] * 9 + ["global"] * 11)
    s["step_check"] = [half]
    check = J.step_check(s, J.by_config(s))
    assert check["agreement"]["L"] == pytest.approx(19 / 20) and check["robust"]
    half["field_norm"][0] = 1.0  # one more run changes kind: 18/20 < 0.95
    assert not J.step_check(s, J.by_config(s))["robust"]


def test_a_flow_with_spurious_minima_of_its_own_does_not_remove_them():
    """No random start ends at a spurious minimum of H-true, but started at L's spurious minimum it ends at one of its
    own: that is "reduces", not "removes", and the sentence says so."""
    s = summary({(8, 8): _paired(20, 0)})
    L = next(g for g in s["groups"] if g["flow"] == "L")
    L["from_points"] = {"H_mean_field_norm": [0.1], "H_true_gradient_norm": [0.3],
                        "H-mean": {"kind": ["spurious minimum"]}, "H-true": {"kind": ["spurious minimum"]}}
    j = J.judge(s)
    assert J.followed_to_spurious(s, "H-true") == 1
    assert j["flows"]["H-mean"]["verdict"] == "reduces"
    assert "has spurious minima, which these random starts did not reach" in j["flows"]["H-mean"]["sentence"]
    L["from_points"]["H-mean"]["kind"] = ["global"]
    assert J.judge(s)["flows"]["H-mean"]["verdict"] == "removes"


def test_the_finite_sample_sentence_compares_H_with_L_on_the_same_starts():
    s = summary({(8, 8): _paired(0, 0, 20)})
    runs = {("L", "GD"): ["global"] * 10 + ["spurious minimum"] * 10, ("H", "GD"): ["global"] * 20,
            ("L", "SGD"): ["global"] * 20, ("H", "SGD"): ["global"] * 20}
    s["samples"] = [dict(group(8, 8, "L" if loss == "L" else "H-mean", ends), loss=loss, method=method)
                    for (loss, method), ends in runs.items()]
    text = J.samples_sentence(s)
    assert "GD: 20 of 20 runs on H reach the global minimum against 10 on L" in text
    assert "H reaches it significantly more often" in text  # 10 discordant pairs, all one way: p = 2^-9
    assert "SGD: 20 of 20 runs on H reach the global minimum against 20 on L" in text and "no significant" in text
    assert "matches the population flow's in 50% to 100% of the runs" in text
