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
def ackley(steps=None, final=None, per_step=None, n=16):
    """``steps[variant][threshold key]``: median steps (missing: not reached); seconds = steps / 100."""
    steps, final, per_step = steps or {}, final or {}, per_step or {}
    variants = {}
    for v in ACKLEY_VARIANTS:
        s = steps.get(v, {})
        variants[v] = {"thresholds": {k: {"steps": spread(s.get(k)),
                                          "seconds": spread(None if s.get(k) is None else s[k] / 100)}
                                      for k in KEYS},
                       "final_test_mse": spread(final.get(v, 1.0)),
                       "seconds_per_step": spread(per_step.get(v, 2e-3 if v != "L2" else 1e-3))}
    return {"config": {"n": n, "depth": 4, "width": 64, "steps": 150, "seeds": [0, 1]}, "variants": variants}


def arch(meds=None, finals=None, start=1.0, targets=("f1",)):
    """``meds[(target, model, variant)]``: median final test MSE (default 1.0); per-seed finals likewise."""
    meds, finals, results = meds or {}, finals or {}, {}
    for t in targets:
        for a in ARCH_MODELS:
            for v in ARCH_VARIANTS:
                m = meds.get((t, a, v), 1.0)
                results[f"{t} | {a} | {v}"] = {"final_test_mse": spread(m),
                                               "per_seed_final_test_mse": finals.get((t, a, v), [m, m]),
                                               "test_mse_curve": {"median": [start, m]}}
    return {"config": {"targets": list(targets), "steps": 100}, "results": results}


def high_dim(errors, widths=(1,), dims=(10, 100), n=128, cap=2048):
    """``errors[(K, variant)]``: (median, max) relative test MSE at the largest d; elsewhere 1.0."""
    rows = []
    for K in widths:
        for d in dims:
            for v in HD_VARIANTS:
                med, worst = errors.get((K, v), (1.0, 1.0)) if d == max(dims) else (1.0, 1.0)
                rows.append({"K": K, "d": d, "variant": v, "final_rel_error": spread(med, med, worst),
                             "target_seconds": spread(0.01 * d)})
    return {"config": {"dims": list(dims), "widths": list(widths), "n": n, "matched_cap": cap}, "rows": rows}


def autoencoder(mse, sobolev):
    """Each argument: (min, median, max) of the final test MSE over seeds."""
    losses = {name: {"final_test_mse": spread(m[1], m[0], m[2])} for name, m in (("MSE", mse), ("Sobolev", sobolev))}
    return {"config": {"epochs": 2, "seeds": [0, 1]}, "losses": losses}


GOOD_HD = {(1, "H1-exact"): (1e-9, 1e-8), (1, "H1-FDM"): (1e-8, 1e-7), (1, "L2"): (0.5, 0.8),
           (1, "L2 (matched targets)"): (1e-4, 1e-3)}


# ----------------------------------------------------------------------------- claim 5
def test_claim5_verdict_flips_across_its_rule():
    assert J.judge_ackley(ackley())["verdict"] == "inconclusive"  # nothing reached: no informative pair
    fast = {"L2": {"1e-01": 100}, "H1-FDM": {"1e-01": 50}, "H1-Chebyshev": {"1e-01": 125}}  # 125 = 1.25 x L2
    j = J.judge_ackley(ackley(fast))
    assert j["verdict"] == "confirmed with qualifications"  # all good, but the paper's thresholds not reached
    assert (j["ok_steps"], j["informative"]) == (2, 2)
    every = {v: {k: 100 for k in KEYS} for v in ACKLEY_VARIANTS}
    assert J.judge_ackley(ackley(every))["verdict"] == "confirmed"
    half = {"L2": {"1e-01": 100, "1e-02": 200}, "H1-FDM": {"1e-01": 90, "1e-02": 300}, "H1-Chebyshev": {"1e-01": 100}}
    j = J.judge_ackley(ackley(half))  # exactly half good: FDM and Chebyshev at 1e-1, neither at 1e-2
    assert j["verdict"] == "confirmed with qualifications" and (j["ok_steps"], j["informative"]) == (2, 4)
    slow = {"L2": {"1e-01": 100, "1e-02": 200}, "H1-FDM": {"1e-01": 126, "1e-02": 300}, "H1-Chebyshev": {"1e-01": 90}}
    j = J.judge_ackley(ackley(slow))  # 1 of 4 good: 126 is just beyond 25% slower
    assert j["verdict"] == "refuted" and (j["ok_steps"], j["informative"]) == (1, 4)
    statuses = {(r["variant"], r["threshold"]): r["steps_status"] for r in j["rows"]}
    assert statuses[("H1-FDM", 0.1)] == "slower" and statuses[("H1-Chebyshev", 0.01)] == "only L2 reached"
    alone = {"H1-FDM": {"1e-01": 500}}  # only the Sobolev variant reached it: counts as good
    assert J.judge_ackley(ackley(alone))["rows"][0]["steps_status"] == "only Sobolev reached"
    assert J.judge_ackley(ackley(alone))["verdict"] == "confirmed with qualifications"


def test_claim5_sentences_follow_the_numbers():
    none = J.judge_ackley(ackley())
    assert "no variant reaches them here" in none["threshold_note"] and "what these sizes reach" not in none["threshold_note"]
    some = J.judge_ackley(ackley({"L2": {"1e-01": 100}}))
    assert some["threshold_note"].endswith("because they are what these sizes reach.")
    assert "H1-FDM: 1e-01 only L2 reached" in some["convention"] and "0/2 cases" in some["convention"]
    assert "not all reached at these sizes" in some["convention"]
    # the cost of an H1 step: stated as larger only when it is measured larger
    assert "an H1 step costs more" in none["convention"] and "autograd builds" in none["finding"]
    cheap = J.judge_ackley(ackley(per_step={v: 1e-3 for v in ACKLEY_VARIANTS}))
    assert "costs no more" in cheap["convention"] and "autograd builds" not in cheap["finding"]
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
    # FDM's worst seed at the threshold: not low on every seed -> never low -> inconclusive
    assert verdict({**GOOD_HD, (1, "H1-FDM"): (1e-8, J.LOW_ERROR)}, "full") == "inconclusive"
    assert verdict({**GOOD_HD, (1, "H1-FDM"): (1e-8, 0.99 * J.LOW_ERROR)}, "full") == "confirmed"
    # H1 no better than L2 on the same samples: refuted
    assert verdict({**GOOD_HD, (1, "L2"): (1e-9, 1e-9)}, "full") == "refuted"
    # matched L2 better than H1: no longer confirmed, still qualified
    assert verdict({**GOOD_HD, (1, "L2 (matched targets)"): (1e-10, 1e-10)}, "full") == "confirmed with qualifications"
    # a second width that is never low: qualified at most
    wide = {**GOOD_HD, **{(4, v): (m, m) for v, m in zip(HD_VARIANTS, (0.6, 0.2, 0.18, 0.19))}}
    assert verdict(wide, "full", widths=(1, 4)) == "confirmed with qualifications"
    low = J.judge_high_dimension(high_dim(wide, widths=(1, 4)), "full")["summary_at_largest_d"]
    assert low["4"] == {"L2": False, "L2 (matched targets)": False, "H1-exact": False, "H1-FDM": False,
                        "beats_L2": True, "beats_matched_L2": True}
    assert low["1"]["H1-exact"] and not low["1"]["L2"]


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
@pytest.mark.parametrize("mse, sobolev, expected", [
    ((0.07, 0.075, 0.08), (0.04, 0.05, 0.06), "confirmed with qualifications"),  # lower median
    ((0.07, 0.075, 0.08), (0.09, 0.093, 0.095), "refuted"),  # higher, disjoint ranges
    ((0.07, 0.075, 0.10), (0.09, 0.093, 0.095), "inconclusive"),  # higher, overlapping ranges
    ((0.07, 0.075, 0.08), (0.07, None, None), "inconclusive"),  # diverged median
])
def test_claim7_verdict_flips_across_its_rule(mse, sobolev, expected):
    j = J.judge_autoencoder(autoencoder(mse, sobolev), arch(), J.judge_architectures(arch()))
    assert j["verdict"] == expected
    assert ("do not overlap" in j["finding"]) == (expected == "refuted" or expected.startswith("confirmed"))


def test_architecture_wins_and_the_siren_note():
    j = J.judge_architectures(arch({("f1", "SIREN", "H1-exact"): 0.5, ("f1", "tanh MLP", "H2"): 0.1}))
    assert j["wins_over_L2"] == {"H1-exact": 1, "H2": 1, "cases": 3,
                                 "H1_by_model": {"tanh MLP": [], "Fourier features": [], "SIREN": ["f1"]}}
    assert j["best"]["f1 | tanh MLP"] == "H2" and j["best"]["f1 | SIREN"] == "H1-exact"
    # every run starts at test MSE 1 and ends at 1 (the default): all 4 Sobolev SIREN runs stall
    assert "4 of 4 Sobolev-trained SIREN runs stall" in J.judge_architectures(arch())["siren_note"]
    # ending at exactly half the initial error counts as stalled, just below does not
    meds = {("f1", "SIREN", v): 0.4999 for v in ("H1-exact", "H2")}
    assert "no Sobolev-trained SIREN run stalls" in J.judge_architectures(arch(meds))["siren_note"]
    one = {("f1", "SIREN", "H2"): [0.5, 0.1]}
    assert "1 of 4" in J.judge_architectures(arch(meds, finals=one))["siren_note"]


# ----------------------------------------------------------------------------- everything, and the quick profile
def test_judge_collects_every_claim_and_quick_makes_them_inconclusive():
    data = {"ackley": ackley({v: {k: 100 for k in KEYS} for v in ACKLEY_VARIANTS}),
            "architectures": arch(), "high_dimension": high_dim(GOOD_HD),
            "autoencoder": autoencoder((0.07, 0.075, 0.08), (0.09, 0.093, 0.095))}
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
