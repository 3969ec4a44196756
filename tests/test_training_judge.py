"""The rules of the training report (verify.training.judge) on small hand-made summaries: each verdict
flips as the numbers cross its thresholds, and a sentence about a configuration appears only when that
configuration was run and the numbers support it.  No training here: pure functions of dicts."""
import math

import pytest

from verify.training import judge as J
from verify.training.settings import ACKLEY_THRESHOLDS, ACKLEY_VARIANTS, ARCH_MODELS, ARCH_VARIANTS, HD_VARIANTS

KEYS = [f"{th:.0e}" for th in ACKLEY_THRESHOLDS]  # 1e-01 ... 1e-05


def spread(median, lo=None, hi=None):
    lo = median if lo is None else lo
    hi = median if hi is None else hi
    return {"median": median, "min": lo, "max": hi, "n_finite": 3 if hi is not None else 2, "n": 3}


# ----------------------------------------------------------------------------- builders
SEEDS = 4


def _median(values):
    reached = sorted(v for v in values if v is not None)
    return reached[len(reached) // 2] if len(reached) > len(values) / 2 else None


def ackley(steps=None, final=None, per_step=None, n=16, budget=1000):
    """``steps[variant][threshold key]``: per-seed steps (``None``: not reached; a number: every seed alike);
    seconds = steps / 100."""
    steps, final, per_step = steps or {}, final or {}, per_step or {}
    variants = {}
    for v in ACKLEY_VARIANTS:
        s = {k: (x if isinstance(x, list) else [x] * SEEDS) for k, x in steps.get(v, {}).items()}
        per_seed = [{"thresholds": {k: {"steps": s.get(k, [None] * SEEDS)[i]} for k in KEYS}} for i in range(SEEDS)]
        thresholds = {}
        for k in KEYS:
            med = _median(s.get(k, [None] * SEEDS))
            thresholds[k] = {"steps": spread(med), "seconds": spread(None if med is None else med / 100)}
        variants[v] = {"thresholds": thresholds, "per_seed": per_seed, "final_test_mse": spread(final.get(v, 1.0)),
                       "seconds_per_step": spread(per_step.get(v, 2e-3 if v != "L2" else 1e-3))}
    return {"config": {"n": n, "depth": 4, "width": 64, "steps": budget, "seeds": list(range(SEEDS))},
            "variants": variants}


def arch(meds=None, finals=None, start=1.0, targets=("f1",)):
    """``meds[(target, model, variant)]``: median final test MSE (default 1.0); per-seed finals: ``finals`` or
    the median on every seed, times a small spread that is the same for every variant (paired seeds)."""
    meds, finals, results = meds or {}, finals or {}, {}
    for t in targets:
        for a in ARCH_MODELS:
            for v in ARCH_VARIANTS:
                m = meds.get((t, a, v), 1.0)
                results[f"{t} | {a} | {v}"] = {"final_test_mse": spread(m),
                                               "per_seed_final_test_mse": finals.get((t, a, v),
                                                                                     [m * f for f in JITTER]),
                                               "test_mse_curve": {"median": [start, m]}}
    return {"config": {"targets": list(targets), "steps": 100}, "results": results}


JITTER = (0.9, 1.0, 1.1, 1.05)  # per-seed factors shared by every variant: paired ratios are exact


def high_dim(errors, widths=(1,), dims=(10, 100), n=128, cap=2048, per_seed=None):
    """``errors[(K, variant)]``: (median, max) relative test MSE at the largest d (per seed: ``per_seed`` or the
    median times JITTER); elsewhere 1.0."""
    rows, per_seed = [], per_seed or {}
    for K in widths:
        for d in dims:
            for v in HD_VARIANTS:
                med, worst = errors.get((K, v), (1.0, 1.0)) if d == max(dims) else (1.0, 1.0)
                seeds = per_seed.get((K, v), [med * f for f in JITTER]) if d == max(dims) else [1.0] * len(JITTER)
                rows.append({"K": K, "d": d, "variant": v, "final_rel_error": spread(med, med, worst),
                             "per_seed_final_rel_error": seeds, "target_seconds": spread(0.01 * d)})
    return {"config": {"dims": list(dims), "widths": list(widths), "n": n, "matched_cap": cap}, "rows": rows}


def autoencoder(mse, sobolev):
    """Each argument: the per-seed final test MSE of that loss (``None``: a run that did not end finite)."""
    def summary(values):
        finite = [v for v in values if v is not None]
        return {"final_test_mse": spread(_median(values), min(finite, default=None), max(finite, default=None)),
                "per_seed_final_test_mse": list(values)}

    return {"config": {"epochs": 2, "seeds": list(range(len(mse)))},
            "losses": {"MSE": summary(mse), "Sobolev": summary(sobolev)}}


GOOD_HD = {(1, "H1-exact"): (1e-9, 1e-8), (1, "H1-FDM"): (1e-8, 1e-7), (1, "L2"): (0.5, 0.8),
           (1, "L2 (matched targets)"): (1e-4, 1e-3)}


# ----------------------------------------------------------------------------- the intervals
def test_seed_log_ratio_bounds_follow_the_censoring():
    up, lo = J.seed_log_ratio_bounds([50, None, 300, None], [100, 200, None, None], budget=1000)
    assert len(up) == len(lo) == 3  # the last seed reached neither: not informative
    assert up[0] == lo[0] == pytest.approx(math.log(0.5))
    assert math.isinf(up[1]) and up[1] > 0 and lo[1] == pytest.approx(math.log(1000 / 200))  # variant > budget
    assert up[2] == pytest.approx(math.log(300 / 1000)) and math.isinf(lo[2]) and lo[2] < 0  # L2 > budget


def test_pair_status_reads_the_whole_interval():
    assert J.pair_status(None) == "neither reached"
    assert J.pair_status({"low": -1.0, "high": -0.01}) == "faster"
    assert J.pair_status({"low": -1.0, "high": math.log(J.COMPARABLE) - 1e-9}) == "comparable"
    assert J.pair_status({"low": -1.0, "high": math.log(J.COMPARABLE) + 1e-9}) == "undecided"
    assert J.pair_status({"low": math.log(J.COMPARABLE) + 1e-9, "high": math.inf}) == "slower"
    assert J.pair_status({"low": -math.inf, "high": math.inf}) == "undecided"


# ----------------------------------------------------------------------------- claim 5
def test_claim5_verdict_flips_across_its_rule():
    assert J.judge_ackley(ackley())["verdict"] == "inconclusive"  # nothing reached: no informative pair
    fast = {"L2": {"1e-01": [100, 110, 90, 100]}, "H1-FDM": {"1e-01": [50, 56, 44, 51]},
            "H1-Chebyshev": {"1e-01": [100, 111, 89, 101]}}  # FDM about half L2's steps, Chebyshev about equal
    j = J.judge_ackley(ackley(fast))
    statuses = {(r["variant"], r["threshold"]): r["steps_status"] for r in j["rows"]}
    assert statuses[("H1-FDM", 0.1)] == "faster" and statuses[("H1-Chebyshev", 0.1)] == "comparable"
    assert j["verdict"] == "confirmed with qualifications"  # all good, but the paper's thresholds not reached
    assert (j["in_favour"], j["informative"]) == (2, 2)
    every = {v: {k: 100 for k in KEYS} for v in ACKLEY_VARIANTS}
    assert J.judge_ackley(ackley(every))["verdict"] == "confirmed"
    # one seed short of a paper threshold: no longer confirmed
    short = {**every, "H1-FDM": {**every["H1-FDM"], "1e-05": [100, 100, 100, None]}}
    assert J.judge_ackley(ackley(short))["verdict"] == "confirmed with qualifications"
    # twice L2's steps on every seed: slower; with the other pair slower too: refuted
    slow = {"L2": {"1e-01": [100, 110, 90, 100]}, "H1-FDM": {"1e-01": [200, 221, 180, 199]},
            "H1-Chebyshev": {"1e-01": [210, 230, 190, 205]}}
    j = J.judge_ackley(ackley(slow))
    assert j["verdict"] == "refuted" and (j["in_favour"], j["slower"], j["informative"]) == (0, 2, 2)
    # seeds that scatter on both sides of L2: undecided, and the verdict inconclusive
    mixed = {"L2": {"1e-01": 100}, "H1-FDM": {"1e-01": [40, 250, 60, 180]}, "H1-Chebyshev": {"1e-01": [30, 300, 50, 200]}}
    j = J.judge_ackley(ackley(mixed))
    assert {r["steps_status"] for r in j["rows"] if r["threshold"] == 0.1 and r["variant"] != "H1-exact"} == {"undecided"}
    assert j["verdict"] == "inconclusive"


def test_claim5_censored_runs_leave_one_end_open():
    alone = {"H1-FDM": {"1e-01": [400, 420, 380, 410]}}  # only the Sobolev variant reached it, well within the budget
    j = J.judge_ackley(ackley(alone))
    row = j["rows"][0]
    assert row["steps_status"] == "faster" and row["steps_ratio_low"] == 0.0  # L2 > budget: no lower bound
    assert row["steps_ratio_high"] < 1 and j["verdict"] == "confirmed with qualifications"
    # only L2 reached it: no upper bound, and slower when L2 needed well under the budget
    only_l2 = J.judge_ackley(ackley({"L2": {"1e-01": [100, 110, 90, 100]}}))["rows"][0]
    assert only_l2["steps_status"] == "slower" and only_l2["steps_ratio_high"] is None
    # one informative seed: no interval, undecided
    one = J.judge_ackley(ackley({"H1-FDM": {"1e-01": [400, None, None, None]}}))["rows"][0]
    assert one["steps_status"] == "undecided" and one["seeds_informative"] == 1


def test_claim5_level_is_bonferroni_over_the_informative_pairs():
    two = J.judge_ackley(ackley({"H1-FDM": {"1e-01": 400, "1e-02": 500}}))["rows"]
    assert two[0]["level"] == pytest.approx(1 - 0.05 / 2)  # two informative numerical pairs
    one = J.judge_ackley(ackley({"H1-FDM": {"1e-01": 400}}))["rows"]
    assert one[0]["level"] == pytest.approx(0.95)


def test_claim5_sentences_follow_the_numbers():
    none = J.judge_ackley(ackley())
    assert "no variant reaches them here" in none["threshold_note"] and "what these sizes reach" not in none["threshold_note"]
    some = J.judge_ackley(ackley({"L2": {"1e-01": 100}}))
    assert some["threshold_note"].endswith("because they are what these sizes reach.")
    assert "H1-FDM: 1e-01 slower (10.00–∞x L2's steps)" in some["convention"] and "0/2 cases" in some["convention"]
    assert "not all reached at these sizes" in some["convention"]
    # the cost of an H1 step: explained only when it is measured larger
    assert "autograd builds" in none["finding"]
    cheap = J.judge_ackley(ackley(per_step={v: 1e-3 for v in ACKLEY_VARIANTS}))
    assert "autograd builds" not in cheap["finding"]
    assert "GPU float32" in J.judge_ackley(ackley(), device="cuda")["convention"]


def test_chebyshev_slower_fall_only_when_its_error_is_highest():
    slower = J.judge_ackley(ackley(final={"H1-Chebyshev": 2.0, "H1-exact": 1.0, "H1-FDM": 1.5}))["grid_note"]
    assert "sampled more coarsely" in slower and "slower fall" in slower
    faster = J.judge_ackley(ackley(final={"H1-Chebyshev": 1.2, "H1-exact": 1.0, "H1-FDM": 1.5}))["grid_note"]
    assert "sampled more coarsely" in faster and "slower fall" not in faster
    assert "0.418 against the uniform 0.267" in slower  # n = 16: 4 sin(pi / 30) and 4 / 15


# ----------------------------------------------------------------------------- claim 6
def test_claim6_verdict_flips_across_its_rule():
    def verdict(errors, profile="standard", **kw):
        return J.judge_high_dimension(high_dim(errors, **kw), profile)["verdict"]

    assert verdict(GOOD_HD, "full") == "confirmed"
    assert verdict(GOOD_HD, "standard") == "confirmed with qualifications"  # confirmed only at full size
    # FDM's seeds scattered around LOW_ERROR: its interval is not below it -> never low -> inconclusive
    around = {(1, "H1-FDM"): [0.3 * J.LOW_ERROR, 3 * J.LOW_ERROR, 1e-8, 2 * J.LOW_ERROR]}
    assert verdict(GOOD_HD, "full", per_seed=around) == "inconclusive"
    # just below LOW_ERROR on every seed, with the small paired spread: low
    near = {(1, "H1-FDM"): [0.9 * J.LOW_ERROR * f for f in (0.97, 1.0, 1.03, 1.01)]}
    matched_high = {**GOOD_HD, (1, "L2 (matched targets)"): (0.05, 0.05)}  # so that FDM still beats both baselines
    assert verdict(matched_high, "full", per_seed=near) == "confirmed"
    # H1 worse than L2 on the same samples on every seed: refuted
    assert verdict({**GOOD_HD, (1, "L2"): (1e-10, 1e-10)}, "full") == "refuted"
    # matched L2 better than H1: no longer confirmed, still qualified
    assert verdict({**GOOD_HD, (1, "L2 (matched targets)"): (1e-10, 1e-10)}, "full") == "confirmed with qualifications"
    # a second width that is never low: qualified at most
    wide = {**GOOD_HD, **{(4, v): (m, m) for v, m in zip(HD_VARIANTS, (0.6, 0.2, 0.18, 0.19))}}
    assert verdict(wide, "full", widths=(1, 4)) == "confirmed with qualifications"
    low = J.judge_high_dimension(high_dim(wide, widths=(1, 4)), "full")["summary_at_largest_d"]
    assert low["4"] == {"L2": False, "L2 (matched targets)": False, "H1-exact": False, "H1-FDM": False,
                        "beats_L2": True, "beats_matched_L2": True, "loses_to_L2": False}
    assert low["1"]["H1-exact"] and not low["1"]["L2"]
    # L2's seeds scattered on both sides of H1's at one width: neither beats nor loses -> inconclusive
    tie = {(4, "L2"): [0.1, 0.3, 0.12, 0.28]}
    assert verdict(wide, "full", widths=(1, 4), per_seed=tie) == "inconclusive"


def test_stalled_width_sentence_only_for_a_width_that_was_run_and_stalled():
    wide = {**GOOD_HD, **{(4, v): (m, m) for v, m in zip(HD_VARIANTS, (0.6, 0.2, 0.18, 0.19))}}
    j = J.judge_high_dimension(high_dim(wide, widths=(1, 4)), "standard")
    assert "the wide student (`K = 4`) stalls at a relative error of order 0.1 for every loss" in j["finding"]
    # the profile did not run K = 4: nothing is said about it
    j1 = J.judge_high_dimension(high_dim(GOOD_HD, widths=(1,)), "standard")
    assert "K = 4" not in j1["finding"] and "stalls" not in j1["finding"] and "K=4" not in j1["convention"]
    # K = 4 run, but one loss gets below LOW_ERROR in median: it does not stall
    moving = {**wide, (4, "H1-exact"): (0.005, 0.02)}
    assert "stalls" not in J.judge_high_dimension(high_dim(moving, widths=(1, 4)), "standard")["finding"]
    # the order of magnitude comes from the smallest median
    deeper = {**GOOD_HD, **{(4, v): (m, m) for v, m in zip(HD_VARIANTS, (0.6, 0.2, 0.03, 0.04))}}
    assert "of order 0.01 " in J.judge_high_dimension(high_dim(deeper, widths=(1, 4)), "standard")["finding"]


def test_matched_baseline_is_called_capped_only_when_it_is():
    capped = J.judge_high_dimension(high_dim(GOOD_HD, n=128, cap=2048), "standard")["finding"]
    assert "is capped: at d = 100 it has 2048 samples against the 12928 target numbers" in capped
    full = J.judge_high_dimension(high_dim(GOOD_HD, n=128, cap=20000), "standard")["finding"]
    assert "capped" not in full and "has 12928 samples, as many as the target numbers" in full


# ----------------------------------------------------------------------------- claim 7 and the architectures
LOWER = [0.024, 0.026, 0.025, 0.023]  # a paired ratio of about 0.8 on every seed
MSE_RUNS = [0.030, 0.032, 0.031, 0.029]


@pytest.mark.parametrize("mse, sobolev, expected", [
    (MSE_RUNS, LOWER, "confirmed with qualifications"),  # the interval of the log ratio below 0
    (LOWER, MSE_RUNS, "refuted"),  # above 0
    (MSE_RUNS, [0.020, 0.040, 0.022, 0.038], "inconclusive"),  # scattered on both sides: contains 0
    (MSE_RUNS, [0.024, None, 0.025, 0.023], "inconclusive"),  # a run did not end finite: no interval
])
def test_claim7_verdict_flips_across_its_rule(mse, sobolev, expected):
    j = J.judge_autoencoder(autoencoder(mse, sobolev), arch(), J.judge_architectures(arch()))
    assert j["verdict"] == expected
    assert ("no interval" in j["finding"]) == (None in sobolev)


def test_claim7_medians_crossing_do_not_decide():
    # Sobolev's median lower, but one seed much worse: the old median rule said "confirmed"; the interval does not
    j = J.judge_autoencoder(autoencoder(MSE_RUNS, [0.028, 0.029, 0.090, 0.028]), arch(), J.judge_architectures(arch()))
    assert j["verdict"] == "inconclusive"


def test_architecture_positions_and_the_siren_note():
    j = J.judge_architectures(arch({("f1", "SIREN", "H1-exact"): 0.5, ("f1", "tanh MLP", "H2"): 0.1,
                                    ("f1", "Fourier features", "H2"): 3.0}))
    assert j["wins_over_L2"] == {"H1-exact": 1, "H2": 1, "cases": 3,
                                 "H1_by_model": {"tanh MLP": [], "Fourier features": [], "SIREN": ["f1"]}}
    assert j["higher_than_L2"] == {"H1-exact": 0, "H2": 1}
    assert j["position"]["f1 | tanh MLP | H1-exact"] == "contains"  # equal to L2 on every seed
    assert j["level"] == pytest.approx(1 - 0.05 / 6)  # 3 cases x 2 Sobolev losses
    assert j["best"]["f1 | tanh MLP"] == "H2" and j["best"]["f1 | SIREN"] == "H1-exact"
    # a lower median whose seeds scatter across L2's: undecided, not counted
    scattered = {("f1", "SIREN", "H1-exact"): [0.2, 2.0, 0.3, 1.8]}
    j = J.judge_architectures(arch({("f1", "SIREN", "H1-exact"): 0.5}, finals=scattered))
    assert j["wins_over_L2"]["H1-exact"] == 0 and j["position"]["f1 | SIREN | H1-exact"] == "contains"
    # every run starts at test MSE 1 and ends near 1 (the default): all 8 Sobolev SIREN runs stall
    assert "8 of 8 Sobolev-trained SIREN runs stall" in J.judge_architectures(arch())["siren_note"]
    # ending at exactly half the initial error counts as stalled, just below does not
    meds = {("f1", "SIREN", v): 0.4999 for v in ("H1-exact", "H2")}
    finals = {k: [0.4999] * 4 for k in meds}
    assert "no Sobolev-trained SIREN run stalls" in J.judge_architectures(arch(meds, finals=finals))["siren_note"]
    one = {**finals, ("f1", "SIREN", "H2"): [0.5, 0.1, 0.1, 0.1]}
    assert "1 of 8" in J.judge_architectures(arch(meds, finals=one))["siren_note"]


# ----------------------------------------------------------------------------- everything, and the quick profile
def test_judge_collects_every_claim_and_quick_makes_them_inconclusive():
    data = {"ackley": ackley({v: {k: 100 for k in KEYS} for v in ACKLEY_VARIANTS}),
            "architectures": arch(), "high_dimension": high_dim(GOOD_HD),
            "autoencoder": autoencoder(LOWER, MSE_RUNS)}
    full = J.judge(data, "full")["verdicts"]
    assert [(v["claim"], v["verdict"]) for v in full] == [(5, "confirmed"), (6, "confirmed"), (7, "refuted")]
    quick = J.judge(data, "quick")["verdicts"]
    assert all(v["verdict"] == "inconclusive" for v in quick)
    for q, f in zip(quick, full):  # claim 6 is confirmed only in the full profile: qualified under any other
        rule = "confirmed with qualifications" if q["claim"] == 6 else f["verdict"]
        assert q["convention"] == f"quick smoke-test profile, too small to judge (rules would give: {rule}); " \
                                  + f["convention"]


def test_short_threshold_names():
    assert [J._short(th) for th in ACKLEY_THRESHOLDS] == ["1e-1", "1e-2", "1e-3", "1e-4", "1e-5"]
    assert math.isinf(J._or_inf(None)) and J._or_inf(2.0) == 2.0
