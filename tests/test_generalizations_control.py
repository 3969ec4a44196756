"""The smooth-control rules of the generalizations report (ReLU against erf), on constructed summaries: each answer
and each finding flipped by changing the numbers it reads."""
import pytest

from verify.generalizations import control


def _config(extension, cond=(), rates=(), gains=()):
    """A configuration whose conditioning ratios are ``cond`` (base 10), whose flows have the rate ratios ``rates``
    (predicted and measured alike, base 1) and the end-point gains ``gains`` (kappa base 10 over kappa Sobolev)."""
    rows = [{"kind": "one node", "where": {}, "base": {"real_part": 10.0}, "sobolev": {"real_part": 10.0 * r}}
            for r in cond]
    flows = [{"start": i, "base": {"predicted_rate": 1.0, "measured_rate": 1.0, "end_kappa": {"real_part": 10.0}},
              "sobolev": {"predicted_rate": r, "measured_rate": r, "end_kappa": {"real_part": 10.0 / g}}}
             for i, (r, g) in enumerate(zip(rates, gains))]
    return {"extension": extension, "label": extension, "conditioning": rows, "flows": flows}


def _node(rate, gain):
    return {"base": [1.0, 2.0], "sobolev": [rate, 2.0 * rate / gain], "rate_ratio": rate, "matched_step_gain": gain}


def _summary(relu=(0.5, 2.0, 1.5), erf=(0.5, 2.0, 1.5), relu_node=(2.0, 1.0), erf_node=(4.4, 1.6)):
    """ReLU and erf groups with conditioning ratio, rate ratio and matched gain as given, J2 groups in favour."""
    configs = [_config("anisotropic_cov", [relu[0]], [relu[1]], [relu[2]]),
               _config("second_order", [0.8], [1.9], [1.2]),
               _config("erf", [erf[0]], [erf[1]], [erf[2]]),
               _config("erf_second_order", [0.4], [5.0], [1.9])]
    erf_row = {"norm": control.CONTROL_NORM, "H_vs_L": _node(*erf_node), "J2_vs_J": _node(4.8, 1.9)}
    return {"configurations": configs,
            "single_node_control": {"relu": {"H_vs_L": _node(*relu_node), "J2_vs_J": None, "exactly_two": True},
                                    "erf": {"exactly_two": False, "ratio_limits": {"0": [2.0, 2.0], "oo": ["oo", "oo"]},
                                            "at_teacher_norm": [erf_row]},
                                    "erf_numerical_L": [1.0, 2.0, 2.0]}}


def test_answers():
    assert control.answer([True, True]) == "yes"
    assert control.answer([False, False]) == "no"
    assert control.answer([True, False]) == "partly"
    assert control.answer([]) == "undefined"


@pytest.mark.parametrize("relu, erf, expected", [
    ("yes", "yes", "Sobolev"), ("yes", "partly", "Sobolev, with qualifications"),
    ("partly", "partly", "Sobolev, with qualifications"), ("yes", "no", "ReLU artefact"),
    ("partly", "no", "ReLU artefact"), ("no", "yes", "smooth activations only"),
    ("undefined", "yes", "needs a smooth activation"), ("no", "no", "neither"), ("undefined", "no", "inconclusive"),
    ("yes", "undefined", "inconclusive")])
def test_findings(relu, erf, expected):
    assert control.finding(relu, erf) == expected and expected in control.FINDINGS


def _findings(summary):
    return {q: row["finding"] for q, row in control.judge(summary)["questions"].items()}


def test_all_in_favour_is_sobolev_except_j2_which_needs_smoothness():
    assert _findings(_summary(relu_node=(2.0, 1.5))) == {"a": "Sobolev", "b": "Sobolev",
                                                         "c": "needs a smooth activation", "d": "Sobolev"}


def test_conditioning_flips_to_a_relu_artefact_when_erf_is_worse():
    assert _findings(_summary(erf=(1.5, 2.0, 1.5)))["a"] == "ReLU artefact"
    assert _findings(_summary(relu=(1.5, 2.0, 1.5)))["a"] == "smooth activations only"


def test_rates_read_the_flows_and_the_one_node_ratio():
    assert _findings(_summary(erf=(0.5, 0.5, 1.5), erf_node=(0.9, 1.6)))["b"] == "ReLU artefact"
    assert _findings(_summary(erf=(0.5, 0.5, 1.5)))["b"] == "Sobolev, with qualifications"  # one node still > 1


def test_matched_step_gain_must_exceed_its_threshold():
    # ReLU's exact one-node gain 1 is no gain; the flows' gain 1.5 is: partly
    assert control.judge(_summary())["questions"]["d"]["relu"]["answer"] == "partly"
    below = control.MATCHED_GAIN_MIN * 0.99
    assert _findings(_summary(erf=(0.5, 2.0, below), erf_node=(4.4, below)))["d"] == "ReLU artefact"


def test_relu_j2_is_undefined_and_says_why():
    row = control.judge(_summary())["questions"]["c"]
    assert row["relu"]["answer"] == "undefined" and "does not exist" in row["relu"]["evidence"]
    assert row["erf"]["answer"] == "yes"


def test_index_rows_carry_both_answers():
    rows = control.judge(_summary())["verdicts"]
    assert [r["claim"] for r in rows] == [f"control:{q}" for q in "abcd"]
    assert all(r["relu"].split(":")[0] in control.ANSWERS and r["erf"].split(":")[0] in control.ANSWERS for r in rows)


def test_the_exact_two_sentence_follows_the_closed_forms():
    s = _summary()
    assert "is a ReLU fact" in control.exactly_two_sentence(s)
    s["single_node_control"]["erf"]["exactly_two"] = True
    assert "not ReLU's alone" in control.exactly_two_sentence(s)


def test_the_closed_form_check_fails_when_the_numbers_disagree():
    s = _summary()
    assert control.closed_form_gap(s) == 0.0 and "agree" in control.closed_form_sentence(s)
    s["single_node_control"]["erf_numerical_L"] = [1.0, 2.0, 2.1]
    assert "**disagree**" in control.closed_form_sentence(s)


def test_the_index_table_lists_the_control_rows():
    from verify.all import control_lines

    lines = control_lines(control.judge(_summary())["verdicts"])
    assert lines[1] == "## Sobolev or ReLU? The smooth control (erf)"
    assert sum(line.startswith("| Does") for line in lines) == 4
    assert control_lines([{"claim": "beyond:x"}]) == []


def test_the_quick_report_s_one_node_closed_forms_match_the_numerical_jacobians(quick_reports):
    """The closed forms (SymPy, one node) against the pair-sum code of numerics at the same point: erf's H at w = w*
    (the true Hessian, d = 3), ReLU's limits against the mean field's Jacobian a small angle from the teacher."""
    import json

    import numpy as np

    import numerics

    single = json.loads((quick_reports / "generalizations.json").read_text())["data"]["single_node_control"]
    e1 = np.eye(3)[:1]
    for row in single["erf"]["at_teacher_norm"]:
        w = row["norm"] * e1
        for part, sob, key in (("L", (1.0, 0.0), "base"), ("H", (1.0, 0.0), "sobolev")):
            ev = np.linalg.eigvalsh(numerics.hessian(w, w, part, "true", activation="erf", sobolev=sob))
            along, across = row["H_vs_L"][key]
            np.testing.assert_allclose(ev, sorted([along, across, across]), rtol=1e-10)
    theta = 1e-6  # the ReLU limits are reached as O(theta)
    w = np.array([[np.cos(theta), np.sin(theta), 0.0]])
    for part, key in (("L", "base"), ("H", "sobolev")):
        ev = np.linalg.eigvals(numerics.hessian(w, e1, part, "mean")).real
        np.testing.assert_allclose(np.sort(ev), single["relu"]["H_vs_L"][key], atol=1e-5)


def test_docs_claims_states_the_coded_rules():
    from pathlib import Path

    text = Path(__file__).resolve().parents[1].joinpath("docs", "claims.md").read_text()
    section = text[text.index("### The smooth control"):]
    assert f"`> {control.MATCHED_GAIN_MIN:g}`" in section
    assert all(f"**{word}**" in section for word in control.FINDINGS + control.ANSWERS)
    assert all(question in section.replace("`", "") for question in control.QUESTIONS.values())
