"""The landscape report (quick profile, from the shared verify.all run): files, index rows, and every classification
recomputable from the JSON."""
from __future__ import annotations

import json

import numpy as np

from numerics import landscape as LS
from verify.landscape import compute
from verify.landscape import judge as J


def test_files_verdicts_and_index(quick_reports):
    for name in ("landscape.md", "landscape.json", "landscape_global_fraction.png"):
        assert (quick_reports / name).stat().st_size > 0, name
    payload = json.loads((quick_reports / "landscape.json").read_text())
    claims = {v["claim"]: v["verdict"] for v in payload["verdicts"]}
    assert set(claims) == {"beyond:landscape-H-mean", "beyond:landscape-H-true", "beyond:landscape-safran-shamir"}
    index = (quick_reports / "README.md").read_text()
    assert "## Beyond the paper" in index and "[landscape.md](landscape.md)" in index


def test_every_kind_follows_from_the_stored_numbers(quick_reports):
    data = json.loads((quick_reports / "landscape.json").read_text())["data"]
    for g in data["groups"] + data["step_check"] + data["samples"]:
        assert J.kinds(g, data["tolerances"]) == g["kind"]


def test_the_starts_are_the_same_for_every_flow_and_chunking():
    whole = compute.initial_weights(3, 6, 7, 0, 10)
    assert np.array_equal(compute.initial_weights(3, 6, 7, 4, 10), whole[4:])
    assert whole.shape == (10, 7, 6) and abs(whole.std() * np.sqrt(6) - 1) < 0.2  # rows N(0, I/k)


def test_a_seeded_spurious_minimum_of_L_is_found_deduplicated_and_followed_under_H():
    """k = 8 (Safran & Shamir's range), the seeded start of tests/test_landscape.py twice (and a permuted copy):
    one distinct minimum found three times; H's mean field there is not zero (it is not a critical point of H)."""
    k = 8
    Ws = np.eye(k)
    W0 = (np.random.default_rng(k).standard_normal((40, k, k)) / np.sqrt(k))[3]
    lr = compute.step_size(k, "L", 1.0)
    res = LS.descend(np.stack([W0, W0, W0[::-1]]), Ws, "L", lr=lr, max_steps=6000, grad_tol=compute.STOP)
    rows = [LS.classify(w, Ws, "L", **compute.TOLERANCES) for w in res["W"]]
    assert [r["kind"] for r in rows] == ["spurious minimum"] * 3
    g = {"flow": "L", "kind": [r["kind"] for r in rows], "relative_value_loss": [r["relative_value_loss"] for r in rows],
         "end_points": {str(i): {"W": res["W"][i].tolist(), "locks": [-1] * k} for i in range(3)}}
    (m,) = compute.distinct_minima(g, Ws)
    assert m["count"] == 3 and m["spectrum"]["min"] > 1e-3
    follow = compute.run_task(dict(kind="from_points", k=k, K=k, points=[m["W"]], lr=compute.step_size(k, "H-mean", 1.0),
                                   max_steps=3000))
    assert follow["H_mean_field_norm"][0] > 1e-3


def test_a_task_on_a_torch_device_gives_the_numpy_kinds():
    """device "cpu:0" takes the PyTorch path of the report's tasks (what --device cuda runs): the same kinds, steps
    and locks (the end points differ by rounding, ~1e-15: tests/test_landscape.py)."""
    import pytest

    pytest.importorskip("torch")
    task = dict(kind="flows", seed=1, k=4, K=4, flow="H-true", lo=0, hi=3, lr=compute.step_size(4, "H-mean", 0.5),
                max_steps=4000)
    ref, got = compute.run_task(task), compute.run_task(dict(task, device="cpu:0"))
    assert got["kind"] == ref["kind"] and got["steps"] == ref["steps"] and got["locked_rows"] == ref["locked_rows"]
