"""The gradient-flow judge on constructed summaries: the verdict flips across its rule, every label (where a run
ends, whether training stalled) flips as its number crosses the judge's named constant, and a finding about a
configuration appears only when that configuration was run and the numbers say so."""
import copy
import math

import numpy as np
import pytest

from numerics import flows
from verify.gradient_flow import compute as C
from verify.gradient_flow import judge as J  # the module (verify.gradient_flow.judge)
from verify.gradient_flow import render as R

ON_THE_WAY = "approaching the teacher (1e-6 not reached in time)"
# the numbers compute records for a run, by the end the judge gives them
ENDS = {"teacher": {"final_distance": 1e-9, "status": "stop", "late_rate": {"rate": 0.49, "window": "window"},
                    "final_field_norm": 1e-9},
        ON_THE_WAY: {"final_distance": 1e-4, "status": "t_max", "late_rate": {"rate": 0.03, "window": "tail"},
                     "final_field_norm": 3e-6}}


def _stats(q25, median=None, n=3):
    median = q25 + 0.5 if median is None else median
    return {"n": n, "min": q25 - 0.1, "q25": q25, "median": median, "q75": median + 0.2, "max": median + 0.3,
            "geometric_mean": median}


def _fs_acc(n, iL, iH):
    first = None if (iL is None and iH is None) else (iH is not None and (iL is None or iH < iL))
    cmp = {"L": iL, "H": iH, "ratio": iL / iH if (iL is not None and iH) else None, "H_first": first}
    return {"n": n, "GD_common": dict(cmp), "GD_matched": dict(cmp), "SGD_common": dict(cmp), "SGD_matched": dict(cmp)}


def _run(K, start, flow, end="teacher", rate=0.5, locks=()):
    return {"K": K, "d": 5, "rep": 0, "start": start, "flow": flow, **copy.deepcopy(ENDS[end]), "predicted_rate": rate,
            "locks": list(locks), "time_to": {"0.01": 1.0, "0.0001": 2.0, "1e-06": 3.0 if end == "teacher" else None},
            "nfev": 100}


def _fs_run(stalled=False):
    return {"final_distance": 0.01 if stalled else 1e-12, "final_step_norm": 1e-15 if stalled else 1e-13}


def make_data(widths=(1, 2), time_q25=1.9, rate_q25=1.8, h_true_median=3.0, first=((100, 120, 30), (1000, 110, 25)),
              slopes=(-0.5, -0.55)):
    """A small summary with the keys the judge reads: H faster in time and rate, H first at every n."""
    runs = [_run(K, s, fl, locks=[{"event": "lock"}] if fl == "H-true" else [])
            for K in widths for s in ("near", "far") for fl in ("L", "H-mean", "H-true")]
    samples = [{"n": n, "runs": {f"{m}/{r}/{p}": _fs_run() for m in ("GD", "SGD") for r in ("common", "matched")
                                 for p in ("L", "H")}} for n, _, _ in first]
    return {
        "profile_settings": {"widths": widths, "dims": (5,), "reps": 1, "t_max": 60.0, "rk_cap": 1500},
        "constants": {"rtol": 1e-6, "epsilons": [1e-2, 1e-4, 1e-6], "near_distance": 0.2, "stop": 1e-9,
                      "switch": 1e-2, "lock_angle": 1e-5},
        "single_node_theory": {"L": {"rate": 0.5, "limit_eigenvalues": [0.5, 0.5, 0.5]},
                               "H": {"rate": 1.0, "limit_eigenvalues": [1.0, 1.0, 1.0]},
                               "rate_ratio_H_mean_over_L": 2.0, "rate_ratio_H_true_over_L": 2.0},
        "acceleration_stats": {"H-mean/time_ratio_1e-06": _stats(time_q25), "H-mean/rate_ratio": _stats(rate_q25),
                               "H-true/time_ratio_1e-06": _stats(h_true_median - 0.5, h_true_median)},
        "runs": runs,
        "condition_numbers": [{"K": K, "common_step_gain": 2.0 + K / 10, "matched_step_gain": 1.0 + (K - 1) / 5}
                              for K in widths],
        "predicted_gd_gain_stats": {f"K={K}": {"common": _stats(2.0 + K / 10, 2.0 + K / 10, 1),
                                               "matched": _stats(1.0 + (K - 1) / 5, 1.0 + (K - 1) / 5, 1)}
                                    for K in widths},
        "finite_sample_acceleration": [_fs_acc(n, iL, iH) for n, iL, iH in first],
        "population_gd_acceleration": {"common": {"ratio": 4.0}, "matched": {"ratio": 2.0}},
        "finite_samples": {"step_sizes": {"common": {"L": 0.5, "H": 0.5}, "matched": {"L": 1.0, "H": 0.5}},
                           "samples": samples},
        "deviation_slope_in_n": {"L": slopes[0], "H": slopes[1]},
        "kink": {"euler": [{"h": 0.2, "floor_distance": 0.017, "floor_over_h_over_2pi": 0.55},
                           {"h": 0.05, "floor_distance": 0.004, "floor_over_h_over_2pi": 0.51}],
                 "plain_rk45": {"completed": False, "t_reached": 0.7, "nfev": 1500},
                 "sliding": copy.deepcopy(ENDS["teacher"])},
    }


# ----------------------------------------------------------------------------- the rule
@pytest.mark.parametrize("time_q25,rate_q25,expected", [
    (1.5, 1.5, True), (1.01, 3.0, True), (1.0, 3.0, False), (3.0, 0.9, False), (0.5, 0.5, False)])
def test_faster_needs_both_lower_quartiles_above_one(time_q25, rate_q25, expected):
    s = {"H-mean/time_ratio_1e-06": _stats(time_q25), "H-mean/rate_ratio": _stats(rate_q25)}
    assert J.faster(s) is expected


def test_faster_without_instances_cannot_be_judged():
    assert J.faster({"H-mean/time_ratio_1e-06": {"n": 0}, "H-mean/rate_ratio": {"n": 0}}) is None
    assert J.faster({"H-mean/time_ratio_1e-06": {"n": 0}, "H-mean/rate_ratio": _stats(2.0)}) is None
    assert J.faster({"H-mean/time_ratio_1e-06": {"n": 0}, "H-mean/rate_ratio": _stats(0.8)}) is False


@pytest.mark.parametrize("firsts,expected", [
    ([True, True], True), ([False, True], True), ([True, False], False), ([False, False, True], False),
    ([True, False, True], True), ([None, True], True), ([True], True), ([False], False), ([], None)])
def test_survives_needs_half_of_the_sizes_and_the_largest(firsts, expected):
    fs_acc = [{"n": 10 ** (k + 2), "GD_common": {"H_first": f}} for k, f in enumerate(firsts)]
    assert J.survives(fs_acc) is expected


@pytest.mark.parametrize("is_faster,does_survive,expected", [
    (True, True, "confirmed with qualifications"), (True, False, "inconclusive"), (False, True, "inconclusive"),
    (False, False, "refuted"), (None, True, "inconclusive"), (True, None, "inconclusive"), (None, None, "inconclusive")])
def test_verdict_table(is_faster, does_survive, expected):
    assert J.verdict(is_faster, does_survive) == expected


def test_judge_verdict_flips_as_the_numbers_cross_the_thresholds():
    """confirmed with qualifications → inconclusive → refuted → inconclusive (nothing to judge)."""
    assert J.judge(make_data())["verdict"] == "confirmed with qualifications"
    slower = make_data(time_q25=0.95)
    assert J.judge(slower)["verdict"] == "inconclusive"
    assert '"Faster" does not hold in *time* here' in J.judge(slower)["conditions"]
    refuted = make_data(time_q25=0.95, first=((100, 20, 30), (1000, 20, 25)))
    assert J.judge(refuted)["verdict"] == "refuted"
    empty = make_data()
    empty["acceleration_stats"]["H-mean/time_ratio_1e-06"] = {"n": 0}
    empty["acceleration_stats"]["H-mean/rate_ratio"] = {"n": 0}
    assert J.judge(empty)["verdict"] == "inconclusive"
    assert "cannot be judged" in J.judge(empty)["conditions"]


def test_judge_on_the_edge_of_the_rule():
    assert J.judge(make_data(rate_q25=1.0))["verdict"] == "inconclusive"  # q25 must *exceed* 1
    assert J.judge(make_data(rate_q25=1.0 + 1e-9))["verdict"] == "confirmed with qualifications"
    late_at_largest_n = make_data(first=((100, 120, 30), (1000, 20, 25)))
    assert J.judge(late_at_largest_n)["verdict"] == "inconclusive"
    assert "but not for n ∈ {1000}" in J.judge(late_at_largest_n)["conditions"]


# ----------------------------------------------------------------------------- sentences
def test_far_start_sentence_names_only_widths_that_were_run():
    data = make_data()
    assert "still on" not in J.far_start_sentence(data)
    assert "K ≥ 4" not in J.judge(data)["conditions"]
    data = make_data(widths=(1, 2, 4))
    data["runs"] = [r if not (r["K"] == 4 and r["start"] == "far" and r["flow"] == "L") else
                    {**r, **ENDS[ON_THE_WAY], "predicted_rate": 0.03} for r in data["runs"]]
    text = J.far_start_sentence(data)
    assert "more runs reach the teacher" in text
    assert "1 of the 9 far runs (L: 1; K ∈ {4}) is still on its way at t = 60" in text
    assert "λ_min as small as 0.03" in text


def test_far_start_sentence_when_h_does_not_reach_more():
    data = make_data()
    assert "as many runs" in J.far_start_sentence(data)
    for r in data["runs"]:
        if r["flow"] == "H-true" and r["start"] == "far":
            r.update(copy.deepcopy(ENDS[ON_THE_WAY]))
    assert "not more runs reach" in J.far_start_sentence(data)
    data["runs"] = [r for r in data["runs"] if not (r["flow"] == "L" and r["start"] == "far")]
    assert J.far_start_sentence(data) == ""


def test_matched_step_clause_for_k_at_least_two_only_when_run():
    one = J.matched_step_sentence(make_data(widths=(1,)))
    assert "exactly 1 for a single node" in one and "K ≥ 2" not in one
    two = J.matched_step_sentence(make_data(widths=(1, 2)))
    assert "smaller than the common-step gain for K ≥ 2" in two
    data = make_data(widths=(1, 2))
    data["predicted_gd_gain_stats"]["K=2"]["matched"] = _stats(9.0, 9.0, 1)
    assert "not smaller than the common-step gain" in J.matched_step_sentence(data)


def test_true_flow_sentence_follows_the_medians():
    assert "accelerates more, because its rows reach the teacher rays" in J.true_flow_sentence(make_data())
    assert "does not accelerate more here" in J.true_flow_sentence(make_data(h_true_median=1.0))
    no_locks = make_data()
    for r in no_locks["runs"]:
        r["locks"] = []
    assert "because" not in J.true_flow_sentence(no_locks)


def test_finite_sample_sentences():
    assert "deviation ∝ n^(−1/2)" in J.finite_sample_sentence(make_data(), [])
    assert "does not scale like" in J.finite_sample_sentence(make_data(slopes=(-0.1, -0.5)), [])
    single = make_data(first=((100, 120, 30),), slopes=(None, None))
    assert "no slope in n" in J.finite_sample_sentence(single, [])
    none_first = make_data(first=((100, 20, 30), (1000, 20, 25)))
    assert "first for no n" in J.finite_sample_sentence(none_first, [])


def test_stalls_are_reported_only_when_runs_stalled():
    data = make_data()
    assert J.stalled_runs(data) == [] and J.judge(data)["stalls"] is None
    assert "none in this profile's runs" in J.judge(data)["conditions"]
    assert "which L training and SGD do not" in J.judge(data)["conditions"]
    data["finite_samples"]["samples"][0]["runs"]["GD/common/H"] = _fs_run(stalled=True)
    data["finite_samples"]["samples"][0]["runs"]["GD/matched/H"] = _fs_run(stalled=True)  # same step: not twice
    j = J.judge(data)
    assert j["stalled"] == [(100, "GD/common/H", 0.01)]
    assert "1 run(s) here" in j["conditions"] and "go on to the teacher" in j["stalls"]
    data["finite_samples"]["samples"][1]["runs"]["SGD/common/L"] = _fs_run(stalled=True)
    j = J.judge(data)
    assert "stalled too" in j["conditions"] and "stalled too" in j["stalls"]
    assert "go on to the teacher" not in j["stalls"]


def test_kink_sentences_follow_the_runs():
    data = make_data()
    text = J.judge(data)["kink"]
    assert "proportional to `h` (about `h|w*|/4π`" in text
    assert "keeps rejecting steps" in text and "has neither problem" in text
    k = copy.deepcopy(data["kink"])
    k["plain_rk45"] = {"completed": True, "t_reached": 20.0, "nfev": 800}
    k["sliding"] = copy.deepcopy(ENDS[ON_THE_WAY])
    k["euler"][1]["floor_over_h_over_2pi"] = 3.0
    text = J.kink_sentences(k, data["profile_settings"], 1e-6)
    assert "keeps rejecting" not in text and "completes the run" in text
    assert "neither problem" not in text and "ends at distance" in text
    assert "not proportional to `h`" in text
    k["euler"] = [{"h": 0.01, "floor_distance": 1e-8, "floor_over_h_over_2pi": 1e-5}]
    assert "does not stall" in J.kink_sentences(k, data["profile_settings"], 1e-6)


def test_step_size_note():
    assert J.step_size_note({"common": {"L": 0.5}, "matched": {"L": 1.0}}) == "also stable for `L`"
    assert "too large" in J.step_size_note({"common": {"L": 0.5}, "matched": {"L": 0.25}})


def test_single_node_sentences_use_the_theory_numbers():
    data = make_data()
    assert "rate ratio 2 (H-mean and H-true), hence `T_L/T_H → 2`" in J.judge(data)["single_node"]
    assert "exactly 2 for one node" in J.convention(data) and "exactly 1 for one node" in J.convention(data)
    data["single_node_theory"]["rate_ratio_H_true_over_L"] = 3.0
    assert "2 (H-mean), 3 (H-true)" in J.single_node_prediction(data["single_node_theory"])
    data["single_node_theory"]["H"]["limit_eigenvalues"] = [1.0, 1.0, 2.0]
    assert "exactly 1 for a single node" not in J.matched_step_sentence(data)


# ----------------------------------------------------------------------------- labels across their constants
def _numbers(distance, rate=0.3, field=1.0, status="t_max"):
    """A run's numbers as compute.measure_flow records them (the ones run_end reads)."""
    return {"final_distance": distance, "late_rate": {"rate": rate, "window": "tail"}, "final_field_norm": field,
            "status": status}


def _above(x):
    return math.nextafter(x, math.inf)


def _below(x):
    return math.nextafter(x, -math.inf)


def test_teacher_at_the_teacher_distance_and_not_beyond():
    assert J.run_end(_numbers(J.TEACHER_DISTANCE)) == J.TEACHER
    assert J.run_end(_numbers(_above(J.TEACHER_DISTANCE))) == ON_THE_WAY == J.STILL_ON_THE_WAY[0]


def test_evaluation_cap_cuts_every_run_but_one_at_the_teacher():
    cap = J.CAP_STATUS + " (the solver stalled)"
    assert J.run_end(_numbers(1e-3, status=cap)) == "integration stalled (evaluation cap)" == J.STILL_ON_THE_WAY[2]
    assert J.run_end(_numbers(1e-3, status="t_max")) == ON_THE_WAY
    assert J.run_end(_numbers(0.5, field=1e-9, status=cap)) == J.STILL_ON_THE_WAY[2]  # not a critical point
    assert J.run_end(_numbers(J.TEACHER_DISTANCE, status=cap)) == J.TEACHER


def test_cap_status_is_what_the_integrator_writes_when_capped():
    rng = np.random.default_rng(0)
    W_star = rng.standard_normal((2, 3))
    res = flows.integrate(W_star + 0.3 * rng.standard_normal((2, 3)), W_star, "L", t_max=50.0, max_nfev=5)
    assert res["status"].startswith(J.CAP_STATUS)
    assert J.run_end(_numbers(0.1, status=res["status"])) == J.STILL_ON_THE_WAY[2]


def test_approaching_below_the_approach_distance_only():
    assert J.run_end(_numbers(_below(J.APPROACH_DISTANCE))) == ON_THE_WAY
    assert J.run_end(_numbers(J.APPROACH_DISTANCE)) == "no convergence in the time allowed" == J.STILL_ON_THE_WAY[1]
    assert J.run_end(_numbers(J.APPROACH_DISTANCE, field=1e-9)) == J.CRITICAL_POINT


def test_approaching_needs_a_rate_above_the_approach_rate():
    assert J.run_end(_numbers(1e-3, rate=_above(J.APPROACH_RATE))) == ON_THE_WAY
    for rate in (J.APPROACH_RATE, -0.1, None):
        assert J.run_end(_numbers(1e-3, rate=rate)) == J.STILL_ON_THE_WAY[1]
        assert J.run_end(_numbers(1e-3, rate=rate, field=_below(J.CRITICAL_FIELD))) == J.CRITICAL_POINT


def test_critical_point_below_the_critical_field_only():
    assert J.run_end(_numbers(0.5, field=_below(J.CRITICAL_FIELD))) == "another critical point" == J.CRITICAL_POINT
    assert J.run_end(_numbers(0.5, field=J.CRITICAL_FIELD)) == J.STILL_ON_THE_WAY[1]


def test_stalled_beyond_the_stall_distance_with_a_step_below_the_stall_step():
    assert J.is_stalled({"final_distance": _above(J.STALL_DISTANCE), "final_step_norm": _below(J.STALL_STEP)})
    assert not J.is_stalled({"final_distance": J.STALL_DISTANCE, "final_step_norm": _below(J.STALL_STEP)})
    assert not J.is_stalled({"final_distance": _above(J.STALL_DISTANCE), "final_step_norm": J.STALL_STEP})
    assert J.is_stalled({"final_distance": 0.01, "final_step_norm": 0.0}) is True


def test_stall_decision_flips_the_findings():
    data = make_data()
    run_ = data["finite_samples"]["samples"][0]["runs"]["GD/common/H"]
    run_.update(final_distance=1e-3, final_step_norm=J.STALL_STEP)
    assert J.judge(data)["stalls"] is None
    run_["final_step_norm"] = _below(J.STALL_STEP)
    j = J.judge(data)
    assert j["stalled"] == [(100, "GD/common/H", 1e-3)] and "Stalls." in j["stalls"]
    assert j["stalled_flags"][0]["GD/common/H"] and not j["stalled_flags"][0]["GD/common/L"]


def test_the_teacher_distance_is_the_smallest_epsilon_and_the_scope_of_the_spectrum_along_the_run():
    """A run labelled ``teacher`` has a T(1e-6), and (H-mean) the spectrum at its last point."""
    assert J.TEACHER_DISTANCE == C.EPSILONS[-1] == C.ALONG_RUN_WITHIN
    assert J.APPROACH_DISTANCE == flows.RECENTER_DISTANCE


# ----------------------------------------------------------------------------- the labels in the report
def test_labels_count_and_filter_by_the_judged_ends():
    data = make_data(widths=(1, 2))
    far_L = [r for r in data["runs"] if r["flow"] == "L" and r["start"] == "far"]
    far_L[0].update(final_distance=_above(J.TEACHER_DISTANCE))  # one far run of L: approaching, not at the teacher
    lab = J.labels(data)
    assert lab["reach"]["L/far"] == {"runs": 2, "teacher": 1, "ends": {ON_THE_WAY: 1, "teacher": 1}}
    assert lab["reach"]["H-mean/far"] == {"runs": 2, "teacher": 2, "ends": {"teacher": 2}}
    assert lab["prediction_relative_error"]["L"]["n"] == 3  # the approaching run is left out
    assert lab["kink_end"] == J.TEACHER
    assert "1 of the 6 far runs (L: 1; K ∈ {1}) is still on its way" in J.far_start_sentence(data)
    data["kink"]["sliding"]["final_distance"] = _above(J.TEACHER_DISTANCE)
    assert J.labels(data)["kink_end"] == ON_THE_WAY and "ends at distance" in J.judge(data)["kink"]


def test_labelled_puts_the_labels_where_the_json_keeps_them():
    numbers = make_data()
    numbers["acceleration_stats"] = {**numbers["acceleration_stats"]}
    numbers["runs"][0]["final_distance"] = 0.5  # no convergence (field 1e-9 < CRITICAL_FIELD: a critical point)
    numbers["runs"][0]["final_field_norm"] = 1e-9
    numbers["finite_samples"]["samples"][1]["runs"]["SGD/common/L"] = _fs_run(stalled=True)
    before = copy.deepcopy(numbers)
    data = J.labelled(numbers)
    assert numbers == before  # the numbers are not changed
    lab = J.labels(numbers)
    assert [r["end"] for r in data["runs"]] == lab["ends"] and data["runs"][0]["end"] == J.CRITICAL_POINT
    assert all(list(r)[list(r).index("flow") + 1] == "end" for r in data["runs"])  # where it always was
    assert data["kink"]["sliding"]["end"] == J.TEACHER
    flags = [{k: r["stalled_at_stationary_point"] for k, r in row["runs"].items()}
             for row in data["finite_samples"]["samples"]]
    assert flags == lab["stalled_flags"] and flags[1]["SGD/common/L"] and sum(map(sum, map(dict.values, flags))) == 1
    keys = list(data)
    assert keys[keys.index("acceleration_stats") + 1: keys.index("acceleration_stats") + 3] == [
        "reach", "prediction_relative_error"]
    assert data["reach"] == lab["reach"] and data["prediction_relative_error"] == lab["prediction_relative_error"]
    # the judgement carries the same labels, whether judged from the numbers or from the labelled data
    assert {k: J.judge(data)[k] for k in lab} == {k: J.judge(numbers)[k] for k in lab} == lab


def test_render_reads_the_labels_from_the_judgement():
    data = make_data()
    j = J.judge(data)
    table = R.section_runs("gradient_flow", data, j)
    assert f"| {J.TEACHER} |" in table and ON_THE_WAY not in table
    j2 = {**j, "ends": [ON_THE_WAY] + j["ends"][1:]}  # the judgement decides, not a label stored in the data
    assert ON_THE_WAY in R.section_runs("gradient_flow", data, j2)
    assert R._fs_final({"final_distance": 0.01}, True) == "0.01 (stalled)"
    assert R._fs_final({"final_distance": 0.01}, False) == "0.01"
