"""The report framework and the formulas report (quick profile)."""
import json

import pytest

from verify import formulas
from verify.report import Context, build_and_write, resolve_device, write_atomic


def test_verify_all_writes_reports_and_index(quick_reports):
    for name in ("formulas.md", "formulas.json", "formulas_single_node_spectra.png", "README.md"):
        assert (quick_reports / name).stat().st_size > 0, name
    index = (quick_reports / "README.md").read_text()
    for claim in range(1, 8):  # one verdict row per claim (docs/claims.md)
        assert f"\n| {claim} |" in index


def test_report_json_has_provenance_and_verdicts(quick_reports):
    payload = json.loads((quick_reports / "formulas.json").read_text())
    prov = payload["provenance"]
    assert prov["seed"] == 3 and prov["profile"] == "quick" and prov["device"] == "cpu"
    assert prov["versions"]["sympy"] and prov["wall_time_s"] >= 0
    claims = {v["claim"] for v in payload["verdicts"]}
    assert {1, 2} <= claims


def test_formulas_report_identifies_paper_hessians(quick_reports):
    data = json.loads((quick_reports / "formulas.json").read_text())["data"]
    sym = {(r["formula"], r["hessian"]): r["equal"] for r in data["paper_identification_symbolic"]}
    assert sym[("L", "true")] and sym[("L", "mean")] and sym[("H", "mean")]
    assert not sym[("H", "true")] and not sym[("H", "autograd")] and not sym[("L", "autograd")]
    num = {(r["formula"], r["hessian"]): r["max_abs_gap"] for r in data["paper_identification_numeric"]}
    # float64 closed forms of O(1) entries: agreement to ~1e-12; a different object differs by O(0.1) or more
    for key in (("L", "true"), ("L", "mean"), ("H", "mean")):
        assert num[key] < 1e-10, key
    for key in (("H", "true"), ("H", "autograd"), ("L", "autograd")):
        assert num[key] > 1e-2, key


def test_same_seed_same_json_apart_from_timings(quick_reports, tmp_path):
    """A rebuild with the fixture's profile and seed writes the fixture's JSON, timings aside."""
    ctx = Context(out=tmp_path, profile="quick", seed=3, device="cpu", progress=False)
    payloads = []
    for payload in (build_and_write(formulas, ctx), json.loads((quick_reports / "formulas.json").read_text())):
        payload = json.loads(json.dumps(payload))
        payload.pop("files", None)
        for key in ("wall_time_s", "generated_utc", "git_commit", "git_dirty"):
            payload["provenance"].pop(key)
        payloads.append(json.dumps(payload, sort_keys=True))
    assert payloads[0] == payloads[1]


def test_atomic_write_leaves_no_partial_file(tmp_path):
    target = tmp_path / "r.md"
    write_atomic(target, b"old")

    with pytest.raises(TypeError):
        write_atomic(target, object())  # fails while writing
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["r.md"]  # no temporary left behind


def test_device_resolution():
    assert resolve_device("cpu") == "cpu"
    with pytest.raises(ValueError):
        resolve_device("tpu")
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA GPU"):
            resolve_device("cuda")
        assert resolve_device("auto") == "cpu"


def test_index_only_rebuilds_the_index_from_existing_json(quick_reports, tmp_path):
    import shutil

    from verify import REPORTS
    from verify import all as verify_all

    for name in REPORTS:
        shutil.copy(quick_reports / f"{name}.json", tmp_path / f"{name}.json")
    assert verify_all.main(["--index-only", "--out", str(tmp_path), "--device", "cpu"]) == 0
    assert (tmp_path / "README.md").read_text() == (quick_reports / "README.md").read_text()
    (tmp_path / "training.json").unlink()
    assert verify_all.main(["--index-only", "--out", str(tmp_path), "--device", "cpu"]) == 2
