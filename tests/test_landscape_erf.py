"""The erf landscape: batched erf losses and gradients against the single-instance closed forms, the descent and
classification, the report's rules on constructed summaries, and the command line."""
import subprocess
import sys

import numpy as np
import pytest

from numerics import erf, erf_landscape
from verify.landscape_erf import judge

TOLS = dict(grad_tol=1e-6, global_tol=1e-6, eig_tol=1e-6, value_tol=1e-6)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("flow, sobolev", [("L", (1.0, 0.0)), ("H", (1.0, 0.0)), ("H", (0.5, 0.25))])
def test_batched_equals_each_instance(seed, flow, sobolev):
    """Each student of a batch, including rows next to teacher rows and equal rows, against numerics.erf (which the
    erf tests check against torch autograd and Monte-Carlo): relative 1e-12 of the gradient's size."""
    rng = np.random.default_rng(seed)
    k, K = 5, 7
    W_star = np.linalg.qr(rng.standard_normal((k, k)))[0]
    W = rng.standard_normal((4, K, k)) * rng.uniform(0.2, 3.0, size=(4, K, 1))
    W[1, :k] = W_star + 1e-9 * rng.standard_normal((k, k))
    W[2, 1] = W[2, 0]
    g = erf_landscape.batched_gradient(W, W_star, flow, sobolev=sobolev)
    loss = erf_landscape.batched_loss(W, W_star, flow, sobolev=sobolev)
    for b in range(len(W)):
        g1 = erf.gradient(W[b], W_star, flow, sobolev=sobolev)
        np.testing.assert_allclose(g[b], g1, rtol=0, atol=1e-12 * max(1.0, np.abs(g1).max()))
        np.testing.assert_allclose(loss[b], erf.loss(W[b], W_star, flow, sobolev=sobolev), rtol=1e-12, atol=1e-15)


def test_the_teacher_is_a_critical_point_of_value_zero():
    W_star = np.eye(4)
    W = W_star[[2, 0, 3, 1]][None]
    assert np.abs(erf_landscape.batched_gradient(W, W_star, "H")).max() < 1e-14
    assert abs(erf_landscape.relative_value_loss(W, W_star)[0]) < 1e-14


def test_descent_reaches_the_teacher_and_batches_equal_single_runs():
    rng = np.random.default_rng(3)
    W_star = np.eye(4)
    W0 = rng.standard_normal((3, 4, 4)) / 2
    lr = erf_landscape.teacher_step(W_star, "H", 0.5)
    batch = erf_landscape.descend(W0, W_star, "H", lr=lr, max_steps=20000, grad_tol=1e-8)
    for b in range(3):
        one = erf_landscape.descend(W0[b:b + 1], W_star, "H", lr=lr, max_steps=20000, grad_tol=1e-8)
        np.testing.assert_array_equal(one["W"][0], batch["W"][b])
        assert one["steps"][0] == batch["steps"][b]
    assert (batch["field_norm"] <= 1e-8).all()
    kinds = [erf_landscape.classify(W, W_star, "H", **TOLS)["kind"] for W in batch["W"]]
    assert kinds == ["global"] * 3


def test_value_tolerance_stops_early_and_max_steps_bounds_the_run():
    W_star, W0 = np.eye(3), np.random.default_rng(4).standard_normal((1, 3, 3)) / 2
    lr = erf_landscape.teacher_step(W_star, "L", 0.5)
    full = erf_landscape.descend(W0, W_star, "L", lr=lr, max_steps=50000, grad_tol=1e-10)
    early = erf_landscape.descend(W0, W_star, "L", lr=lr, max_steps=50000, grad_tol=1e-10, value_tol=1e-3)
    assert early["steps"][0] < full["steps"][0]
    assert erf_landscape.relative_value_loss(early["W"], W_star)[0] <= 1e-3
    short = erf_landscape.descend(W0, W_star, "L", lr=lr, max_steps=3, grad_tol=1e-10)
    assert short["steps"][0] == 3
    assert erf_landscape.classify(short["W"][0], W_star, "L", **TOLS)["kind"] == "not converged"


def test_a_step_far_above_the_curvature_is_halved():
    W_star = np.eye(3)
    out = erf_landscape.descend(np.random.default_rng(5).standard_normal((1, 3, 3)) / 2, W_star, "L", lr=10 * erf_landscape.teacher_step(W_star, "L", 1.0),
                                max_steps=20000, grad_tol=1e-8)
    assert out["lr"][0] < 10 * erf_landscape.teacher_step(W_star, "L", 1.0) and out["field_norm"][0] <= 1e-8


def test_bad_input_is_a_value_error():
    with pytest.raises(ValueError, match="flow"):
        erf_landscape.batched_gradient(np.ones((1, 2, 2)), np.eye(2), "J")
    with pytest.raises(ValueError, match="shape"):
        erf_landscape.batched_gradient(np.ones((2, 2)), np.eye(2), "L")
    with pytest.raises(ValueError, match="finite"):
        erf_landscape.batched_loss(np.full((1, 2, 2), np.nan), np.eye(2), "L")
    with pytest.raises(ValueError, match="positive"):
        erf_landscape.descend(np.ones((1, 2, 2)), np.eye(2), "L", lr=0.0, max_steps=1, grad_tol=1e-8)


# ----------------------------------------------------------------------------- the report's rules
def _summary(L_kinds, H_kinds):
    return {"groups": [{"k": 6, "K": 6, "flow": "L", "kind": L_kinds}, {"k": 6, "K": 6, "flow": "H", "kind": H_kinds}]}


def test_l_verdicts():
    assert judge.l_verdict(judge.counts(_summary(["global", "spurious minimum"], []), "L")) == "spurious minima found"
    assert judge.l_verdict(judge.counts(_summary(["global"] * 100, []), "L")) == "none found"
    assert judge.l_verdict(judge.counts(_summary(["global"] * 99 + ["not converged"], []), "L")) == "none found"
    assert judge.l_verdict(judge.counts(_summary(["global"] * 98 + ["not converged"] * 2, []), "L")) == "inconclusive"


@pytest.mark.parametrize("L_kinds, H_kinds, expected", [
    (["spurious minimum", "spurious minimum"], ["global", "global"], "removes them"),
    (["spurious minimum", "spurious minimum"], ["global", "saddle"], "removes some"),
    (["spurious minimum", "global"], ["global", "spurious minimum"], "removes some"),
    (["spurious minimum"], ["spurious minimum"], "does not remove them"),
    (["global", "global"], ["global", "global"], "nothing to remove"),
    (["global", "global"], ["global", "spurious minimum"], "nothing to remove; H has spurious minima")])
def test_h_verdicts(L_kinds, H_kinds, expected):
    s = _summary(L_kinds, H_kinds)
    j = judge.judge(s)
    assert j["verdicts"][1]["verdict"] == expected and expected in judge.H_VERDICTS
    assert f"**{expected}**" in j["sentences"][1]


def test_pairs_match_starts_by_index():
    assert judge.paired(_summary(["spurious minimum", "global"], ["global", "spurious minimum"])) == \
        {"L spurious": 1, "H global": 1}
    assert judge.paired(_summary(["global", "spurious minimum"], ["global", "spurious minimum"])) == \
        {"L spurious": 1, "H global": 0}


def test_the_landscape_command_hands_activation_erf_to_the_erf_report():
    out = subprocess.run([sys.executable, "-m", "verify.landscape", "--activation", "erf", "--help"],
                         capture_output=True, text=True, check=True).stdout
    assert "python -m verify.landscape_erf" in out
    out = subprocess.run([sys.executable, "-m", "verify.landscape", "--help"], capture_output=True, text=True,
                         check=True).stdout
    assert "usage: python -m verify.landscape " in out and "--activation" in out


def test_the_quick_report_is_in_the_index(quick_reports):
    import json

    payload = json.loads((quick_reports / "landscape_erf.json").read_text())
    # verify.all writes the ReLU landscape report first, into the same folder: the control row is there
    assert {v["claim"] for v in payload["verdicts"]} == {"beyond:landscape-erf-L", "beyond:landscape-erf-H",
                                                         "control:landscape"}
    assert payload["data"]["relu_landscape"]["file"] == "landscape.json"
    kinds = [k for g in payload["data"]["groups"] for k in g["kind"]]
    assert kinds and set(kinds) <= {"global", "spurious minimum", "saddle", "not converged"}
    assert "landscape_erf.md" in (quick_reports / "README.md").read_text()


def test_docs_claims_states_the_coded_rules():
    from pathlib import Path

    text = Path(__file__).resolve().parents[1].joinpath("docs", "claims.md").read_text()
    section = text[text.index("### The landscape under erf"):text.index("### Does Sobolev training remove")]
    assert all(f"**{v}**" in section for v in judge.L_VERDICTS + judge.H_VERDICTS)
    assert f"{100 * judge.MAX_NOT_CONVERGED:g} %" in section


def test_the_control_row_compares_with_the_relu_report():
    s = _summary(["global"] * 4, ["global"] * 4)
    assert judge.control_row(s) is None and judge.judge(s)["control"] is None
    s["relu_landscape"] = {"file": "landscape.json", "profile": "standard",
                           "groups": [{"k": 6, "K": 6, "flow": "L", "kind": ["spurious minimum", "global"]}]}
    row = judge.control_row(s)
    assert row["verdict"] == "ReLU artefact" and row["relu"].startswith("yes: 1/2") and row["erf"].startswith("no: 0/4")
    s["relu_landscape"]["groups"][0]["kind"] = ["global", "global"]
    assert judge.control_row(s)["verdict"] == "neither"
    s["groups"][0]["kind"][0] = "spurious minimum"
    assert judge.control_row(s)["verdict"] == "smooth activations only"


def test_the_relu_report_is_read_from_the_output_folder(tmp_path):
    import json

    from verify.landscape_erf import compute

    assert compute.relu_landscape(tmp_path) is None
    payload = {"provenance": {"profile": "quick"},
               "data": {"groups": [{"k": 6, "K": 6, "flow": "L", "kind": ["global"], "steps": [3]},
                                   {"k": 6, "K": 6, "flow": "H-true", "kind": ["global"], "steps": [3]}]}}
    (tmp_path / "landscape.json").write_text(json.dumps(payload))
    got = compute.relu_landscape(tmp_path)
    assert got["profile"] == "quick" and got["groups"] == [{"k": 6, "K": 6, "flow": "L", "kind": ["global"]}]
    assert len(got["sha256"]) == 64
