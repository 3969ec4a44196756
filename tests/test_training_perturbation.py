"""Claims 5-7 rest on distributions, not on crossings: what a change of machine perturbs changes no decision.

A different CPU changes the rounding of every float32 training run (another instruction set, another
summation order inside the kernels).  Here the `quick` profile is run as the reports run it (float32, one
thread) and perturbed twice -- in float64 (every rounding changes) and on two threads (torch splits its
reductions differently) -- and every decision the training rules take is compared: the verdicts the rules give
(before the quick profile's smoke-test flag turns them all *inconclusive*), each claim-5 pair's status and
the counts the findings state, the position of every architecture interval and the SIREN stall count, claim
6's summary at the largest d and claim 7's interval position.  No decision may flip.

Slow (three runs of the quick profile, about 25 s each on 2 cores): ``python -m pytest -m slow
tests/test_training_perturbation.py``.
"""
import pytest

from verify.intervals import position
from verify.report import Context
from verify.training import compute, judge
from verify.training.settings import PROFILES

pytestmark = pytest.mark.slow

PERTURBATIONS = {"float64": {"dtype": "float64"}, "two threads": {"threads": 2}}


def decisions(summary: dict) -> dict:
    """Every decision and every stated count of the training rules on ``summary``."""
    j = judge.judge(summary, "standard")  # the rules' verdicts; "quick" would make every one inconclusive
    ack, arch, auto = j["ackley"], j["architectures"], j["autoencoder"]
    return {"verdicts": [(v["claim"], v["verdict"]) for v in j["verdicts"]],
            "claim 5 pairs": [(r["variant"], r["threshold"], r["steps_status"]) for r in ack["rows"]],
            "claim 5 counts": (ack["in_favour"], ack["slower"], ack["informative"], ack["paper_reached"]),
            "architectures": (arch["position"], arch["wins_over_L2"], arch["higher_than_L2"],
                              arch["stalled_siren_runs"]),
            "claim 6": j["high_dimension"]["summary_at_largest_d"],
            "claim 7": position(auto["interval"], 0.0)}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The quick profile's summaries: as the reports run it, and under each perturbation."""
    ctx = Context(out=tmp_path_factory.mktemp("quick"), profile="quick", progress=False)
    out = {"as reported": compute.compute(ctx, PROFILES["quick"])}
    for name, change in PERTURBATIONS.items():
        out[name] = compute.compute(ctx, {**PROFILES["quick"], **change})
    return out


@pytest.mark.parametrize("name", PERTURBATIONS)
def test_no_decision_flips_under_a_machine_perturbation(runs, name):
    expected, got = decisions(runs["as reported"]), decisions(runs[name])
    for key in expected:
        assert got[key] == expected[key], f"{key} changed under {name}"


def test_the_perturbation_reaches_the_numbers(runs):
    """The check above is not vacuous: float64 moves the numbers the rules read."""
    final = {name: runs[name]["autoencoder"]["losses"]["MSE"]["per_seed_final_test_mse"] for name in runs}
    assert final["float64"] != final["as reported"]
