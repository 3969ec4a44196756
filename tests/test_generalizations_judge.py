"""The verdict rules of the generalizations report, on constructed summaries (each rule flipped)."""
from verify.generalizations import judge


def _config(cond, pred, meas, extension="leaky_relu", label="c"):
    """A configuration whose conditioning rows give the ratios ``cond`` (base 10) and whose flows give the rate
    ratios ``pred``/``meas`` (base 1)."""
    rows = [{"kind": "one node", "where": {}, "base": {"real_part": 10.0}, "sobolev": {"real_part": 10.0 * r}}
            for r in cond]
    flows = [{"start": i, "base": {"predicted_rate": 1.0, "measured_rate": 1.0},
              "sobolev": {"predicted_rate": p, "measured_rate": m}} for i, (p, m) in enumerate(zip(pred, meas))]
    return {"extension": extension, "label": label, "conditioning": rows, "flows": flows}


def test_configuration_verdicts():
    assert judge.config_verdict(_config([0.5, 0.9], [2.0], [1.5])) == "holds"
    assert judge.config_verdict(_config([1.2, 1.1], [0.8], [0.9])) == "fails"
    assert judge.config_verdict(_config([0.5, 1.1], [2.0], [1.5])) == "holds with qualifications"
    assert judge.config_verdict(_config([0.5], [2.0], [0.9])) == "holds with qualifications"
    assert judge.config_verdict(_config([], [], [])) == "inconclusive"


def test_undefined_numbers_are_left_out():
    c = _config([0.5], [2.0], [1.5])
    c["conditioning"].append({"kind": "one node", "where": {}, "base": {"real_part": None},
                              "sobolev": {"real_part": 3.0}})
    c["flows"].append({"start": 9, "base": {"predicted_rate": -0.1, "measured_rate": None},
                       "sobolev": {"predicted_rate": 1.0, "measured_rate": 1.0}})
    assert judge.conditioning_ratios(c) == [0.5]
    assert judge.rate_ratios(c, "predicted") == [2.0] and judge.rate_ratios(c, "measured") == [1.5]
    assert judge.config_verdict(c) == "holds"


def test_extension_verdicts():
    assert judge.extension_verdict(["holds", "holds"]) == "holds"
    assert judge.extension_verdict(["fails", "fails"]) == "fails"
    assert judge.extension_verdict(["holds", "fails"]) == "holds with qualifications"
    assert judge.extension_verdict(["inconclusive"]) == "inconclusive"
    assert judge.extension_verdict([]) == "inconclusive"


def test_judge_names_the_configurations_that_do_not_hold_and_writes_index_rows():
    summary = {"configurations": [_config([0.5], [2.0], [2.0], label="a"), _config([2.0], [0.5], [0.5], label="b"),
                                  _config([0.5], [2.0], [2.0], "relu_power", "c")]}
    j = judge.judge(summary)
    assert j["extensions"]["leaky_relu"]["verdict"] == "holds with qualifications"
    assert j["extensions"]["leaky_relu"]["failing"] == ["b"]
    assert j["extensions"]["relu_power"]["verdict"] == "holds"
    rows = {v["claim"]: v["verdict"] for v in j["verdicts"]}
    assert rows == {"beyond:leaky_relu": "holds with qualifications", "beyond:relu_power": "holds"}
    assert "**holds**" in j["extensions"]["relu_power"]["sentences"][0]


def test_the_quick_report_is_in_the_index(quick_reports):
    import json

    payload = json.loads((quick_reports / "generalizations.json").read_text())
    assert {v["claim"] for v in payload["verdicts"]} == ({f"beyond:{e}" for e in judge.EXTENSIONS}
                                                         | {f"control:{q}" for q in "abcd"})
    index = (quick_reports / "README.md").read_text()
    assert "## Beyond the paper" in index and index.count("generalizations.md") >= len(judge.EXTENSIONS)
    assert "## Sobolev or ReLU? The smooth control (erf)" in index


def test_symbolic_agreement_rule():
    c = _config([0.5], [2.0], [2.0])
    c["conditioning"][0]["base"]["real_part"] = 10.0
    c["symbolic_single_node"] = [{"base": {"real_part": 10.0 * (1 + 1e-12)}, "sobolev": {"real_part": 5.0}}]
    assert judge.symbolic_gap(c) <= 1e-11
    assert "agree in 1" in judge.symbolic_sentence([c])
    c["symbolic_single_node"][0]["sobolev"]["real_part"] = 6.0
    assert "**disagree**" in judge.symbolic_sentence([c])
    c["symbolic_single_node"][0]["sobolev"]["real_part"] = None
    assert judge.symbolic_gap(c) == float("inf")
    c["symbolic_single_node"] = None
    assert judge.symbolic_gap(c) is None and "No configuration" in judge.symbolic_sentence([c])


def test_the_quick_report_s_symbolic_and_numerical_spectra_agree(quick_reports):
    import json

    data = json.loads((quick_reports / "generalizations.json").read_text())["data"]
    gaps = [judge.symbolic_gap(c) for c in data["configurations"] if judge.symbolic_gap(c) is not None]
    assert gaps and max(gaps) <= judge.SYMBOLIC_TOL
