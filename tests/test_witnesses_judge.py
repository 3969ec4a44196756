"""The witnesses report's judge on constructed summaries (the Bonferroni z-tests, the quadrature bar and the
verdict, each crossed in both directions), and the quick report's decisions (``quick_reports`` fixture)
recomputed independently from its JSON numbers."""
import copy
import json

import numpy as np
import pytest
from scipy import stats

from verify.witnesses import judge as W
from verify.witnesses import render as R


def fd_row(part, z_true=1.0, z_mean=1.0, gap=0.1, K=1, Ks=1, d=3):
    return {"K": K, "K_star": Ks, "d": d, "part": part, "n": 1000, "entries": K * d, "max_abs_z_vs_true": z_true,
            "max_abs_z_vs_mean": z_mean, "relative_gap_mean_vs_true": gap}


def base() -> dict:
    """Every witness passes; the witness rejects the mean field for J and H; the fields coincide for L."""
    n = np.array([100, 316, 1000, 3162, 10000])
    return {
        "profile": "quick", "seed": 0, "device": "cpu",
        "monte_carlo": {"cases": [], "entries": 100, "max_abs_z": 2.0, "z": np.zeros(100)},
        "quadrature": {"rows": [{"quantity": "E[1 1]", "n_a": "1", "n_b": "1", "theta": "0.5", "digits": 50.0}],
                       "dps": 50, "min_digits": 50.0},
        "true_gradient_fd": {"rows": [fd_row("L", gap=0.0), fd_row("J", z_mean=9.0), fd_row("H", z_mean=8.0)],
                             "entries": 9},
        "paper_H_vs_mc_jacobian": {"rows": [{"point": 0, "d": 3, "n": 1000, "max_abs_z_paper_vs_mc_jacobian": 1.0,
                                             "max_abs_z_true_hessian_vs_mc_jacobian": 20.0,
                                             "max_abs_gap_paper_vs_true_hessian": 0.2}], "entries": 9},
        "convergence": {"checkpoints": n.tolist(), "loss L": (0.5 / np.sqrt(n)).tolist(),
                        "mean field L": (2.0 / np.sqrt(n)).tolist()},
    }


def verdict(s) -> dict:
    (row,) = W.judge(s)["verdicts"]
    return row


def test_bonferroni_threshold():
    assert W.bonferroni_z(1) == pytest.approx(stats.norm.isf(0.005))
    assert W.bonferroni_z(100) == pytest.approx(stats.norm.isf(0.01 / 200))
    assert W.bonferroni_z(10) < W.bonferroni_z(1000)
    assert W.bonferroni_z(0) is None


def test_monte_carlo_z_test_flips_at_the_threshold():
    s = base()
    z = W.bonferroni_z(100)
    s["monte_carlo"]["max_abs_z"] = z * (1 - 1e-9)
    assert W.judge(s)["tests"]["monte_carlo"] == {"bonferroni_z": z, "pass": True}
    assert verdict(s)["verdict"] == "confirmed with qualifications"
    s["monte_carlo"]["max_abs_z"] = z
    assert W.judge(s)["tests"]["monte_carlo"]["pass"] is False
    assert verdict(s)["verdict"] == "refuted by a witness (see report)"
    assert verdict(s)["convention"].startswith("failed: Monte-Carlo: largest |z|")
    s["monte_carlo"]["entries"] = 10_000  # the same |z| passes once it is one of many more entries
    assert verdict(s)["verdict"] == "confirmed with qualifications"


def test_verdict_across_the_rule():
    s = base()
    row = verdict(s)
    assert row["verdict"] == "confirmed with qualifications"
    assert row["convention"] == ("closed-form losses and mean fields agree with Monte-Carlo (Bonferroni, α = 0.01) "
                                 "and with quadrature to ≥ 30 digits; the paper's gradients are the mean field, the "
                                 "true gradient of J, H differs (MC central differences confirm both)")
    same = copy.deepcopy(s)
    for r in same["true_gradient_fd"]["rows"]:
        r["relative_gap_mean_vs_true"] = 0.0
    assert verdict(same)["verdict"] == "confirmed"
    quad = copy.deepcopy(s)
    quad["quadrature"]["min_digits"] = W.REQUIRED_DIGITS - 0.1
    assert verdict(quad)["verdict"] == "refuted by a witness (see report)"
    quad["quadrature"]["min_digits"] = W.REQUIRED_DIGITS
    assert verdict(quad)["verdict"] == "confirmed with qualifications"
    fd = copy.deepcopy(s)
    fd["true_gradient_fd"]["rows"][1]["max_abs_z_vs_true"] = 6.0
    assert verdict(fd)["verdict"] == "refuted by a witness (see report)"
    assert "true-gradient witness" in verdict(fd)["convention"]
    missing = copy.deepcopy(s)
    missing["quadrature"].update(rows=[], min_digits=None)
    assert verdict(missing)["verdict"] == "inconclusive"
    assert verdict(missing)["convention"] == "not run (no entries): quadrature"
    missing["monte_carlo"]["max_abs_z"] = 99.0  # a failure outranks a witness not run
    assert verdict(missing)["verdict"] == "refuted by a witness (see report)"


def test_side_decisions_and_their_sentences():
    s = base()
    out = W.judge(s)
    assert out["tests"]["true_gradient_fd"]["true_consistent"] is True
    assert out["tests"]["true_gradient_fd"]["mean_rejected_for_J_H"] is True
    assert out["tests"]["paper_H_vs_mc_jacobian"]["paper_consistent"] is True
    assert out["tests"]["paper_H_vs_mc_jacobian"]["true_hessian_rejected"] is True
    text = " ".join(out["sentences"]["true_gradient"])
    assert "rejects the mean field as the gradient of the population `J` and `H`: **True**" in text
    assert "For `L` the two fields coincide." in text
    s["true_gradient_fd"]["rows"][2]["max_abs_z_vs_mean"] = 1.0  # H no longer rejected
    s["paper_H_vs_mc_jacobian"]["rows"][0]["max_abs_z_true_hessian_vs_mc_jacobian"] = 1.0
    out = W.judge(s)
    assert out["tests"]["true_gradient_fd"]["mean_rejected_for_J_H"] is False
    # the verdict row no longer says the witness confirms both fields apart
    row = verdict(s)
    assert row["verdict"] == "confirmed with qualifications"
    assert "confirm both" not in row["convention"] and "do not reject the mean field" in row["convention"]
    assert "`J` and `H`: **False**" in " ".join(out["sentences"]["true_gradient"])
    assert out["sentences"]["paper"].endswith("rejected as that Jacobian: **False**.")


def test_sentences_about_what_was_not_run_are_absent():
    s = base()
    s["true_gradient_fd"] = {"rows": [fd_row("L", gap=0.0)], "entries": 3}  # only L run
    text = " ".join(W.judge(s)["sentences"]["true_gradient"])
    assert "`J`" not in text and "`H`" not in text and "For `L` the two fields coincide." in text
    assert verdict(s)["verdict"] == "confirmed"  # nothing run shows the fields differ
    s["true_gradient_fd"] = {"rows": [], "entries": 0}
    s["paper_H_vs_mc_jacobian"] = {"rows": [], "entries": 0}
    out = W.judge(s)
    assert out["sentences"]["true_gradient"] == [] and out["sentences"]["paper"] is None
    assert out["verdicts"][0]["verdict"] == "inconclusive"
    rep = R.render("witnesses", "t", s, out)
    md = "\n".join(rep.markdown)
    assert "## 3." not in md and "## 4." not in md and "## 1." in md


def test_convergence_finding_flips_with_a_floor():
    s = base()
    assert W.judge(s)["sentences"]["convergence"].startswith("the error falls at the Monte-Carlo rate")
    n = np.array(s["convergence"]["checkpoints"], dtype=float)
    s["convergence"]["loss L"] = (0.5 / np.sqrt(n) + 0.05).tolist()  # a bias of 5%: the error levels off
    text = W.judge(s)["sentences"]["convergence"]
    assert "loss L does not fall at the Monte-Carlo rate" in text and "mean field L" not in text
    s["convergence"]["loss L"] = (0.5 / np.sqrt(n)).tolist()
    s["convergence"]["loss L"][-1] = 0.5  # the last checkpoint jumps up
    assert W.judge(s)["tests"]["convergence"]["loss L"]["floor"] is True
    s["convergence"] = {"checkpoints": [100, 1000], "loss L": [0.05, 0.016]}
    assert W.judge(s)["sentences"]["convergence"] == "too few checkpoints to fit a rate"


# ----------------------------------------------------------------------------- the quick report
@pytest.fixture(scope="module")
def quick_witnesses(quick_reports):
    return json.loads((quick_reports / "witnesses.json").read_text())


def test_quick_decisions_follow_the_rule_recomputed_from_the_json(quick_witnesses, quick_reports):
    data = quick_witnesses["data"]
    alpha = data["alpha"]
    mc, quad, fd, pj = data["monte_carlo"], data["quadrature"], data["true_gradient_fd"], data["paper_H_vs_mc_jacobian"]
    assert mc["entries"] == sum(r["entries"] for r in mc["cases"])
    assert mc["max_abs_z"] == max(r["max_abs_z"] for r in mc["cases"])
    z_mc = stats.norm.isf(alpha / (2 * mc["entries"]))
    assert mc["bonferroni_z"] == pytest.approx(z_mc, rel=1e-12)
    assert mc["pass"] == (mc["max_abs_z"] < z_mc)
    assert quad["min_digits"] == min(r["digits"] for r in quad["rows"])
    z_fd = stats.norm.isf(alpha / (2 * sum(r["entries"] for r in fd["rows"])))
    assert fd["bonferroni_z"] == pytest.approx(z_fd, rel=1e-12)
    assert fd["true_consistent"] == all(r["max_abs_z_vs_true"] < z_fd for r in fd["rows"])
    assert fd["mean_rejected_for_J_H"] == all(r["max_abs_z_vs_mean"] > z_fd for r in fd["rows"] if r["part"] != "L")
    z_pj = stats.norm.isf(alpha / (2 * 9 * len(pj["rows"])))
    assert pj["paper_consistent"] == all(r["max_abs_z_paper_vs_mc_jacobian"] < z_pj for r in pj["rows"])
    assert pj["true_hessian_rejected"] == all(r["max_abs_z_true_hessian_vs_mc_jacobian"] > z_pj for r in pj["rows"])
    ok = mc["pass"] and quad["min_digits"] >= 30 and fd["true_consistent"]
    differ = any(r["relative_gap_mean_vs_true"] > 1e-12 for r in fd["rows"])
    expected = ("refuted by a witness (see report)" if not ok
                else "confirmed with qualifications" if differ else "confirmed")
    assert [v["verdict"] for v in quick_witnesses["verdicts"]] == [expected]
    md = (quick_reports / "witnesses.md").read_text()
    assert f"largest |z| = {mc['max_abs_z']:.2f}: {'**pass**' if mc['pass'] else '**FAIL**'}" in md
    assert f"`J` and `H`: **{fd['mean_rejected_for_J_H']}**" in md


def test_quick_judgement_is_reproduced_from_the_json(quick_witnesses):
    """Rebuilding the judge's input from the JSON numbers gives back the written decisions and verdict."""
    data = quick_witnesses["data"]
    summary = {"monte_carlo": {k: data["monte_carlo"][k] for k in ("cases", "entries", "max_abs_z")},
               "quadrature": data["quadrature"],
               "true_gradient_fd": {"rows": data["true_gradient_fd"]["rows"],
                                    "entries": sum(r["entries"] for r in data["true_gradient_fd"]["rows"])},
               "paper_H_vs_mc_jacobian": {"rows": data["paper_H_vs_mc_jacobian"]["rows"],
                                          "entries": sum(r["d"] ** 2 for r in data["paper_H_vs_mc_jacobian"]["rows"])},
               "convergence": data["convergence"]}
    out = W.judge(summary)
    assert out["verdicts"] == quick_witnesses["verdicts"]
    assert R.json_data(summary, out) == data
