"""One descent step of each landscape flow against its floor, and where the landscape report's time goes.

    python -m benchmarks.landscape_step [--rounds 7] [--out reports]

A step of :func:`numerics.landscape.descend` (NumPy, the fused fields of :mod:`numerics.fused_fields`) per start, for
the three flows at ``k = 12`` and ``k = 20`` (Safran & Shamir's setting: teacher ``I_k``, ``K = K* = d = k``),
``B = 1000`` starts taken 300 steps into their descent, timed over 50 steps (so the value check every 50 steps
counts once, as in a run).  Side by side, interleaved round after round, the **floor** that no implementation of
the field avoids, as ``benchmarks/cost_breakdown.py`` defines it for the gradient: the two products with
``Z = [W; W*]`` (the Gram matrix ``W Z^T`` and the field ``P Z``) and the passes over the pair array that every
assembly makes (a square root for the sines, the arccos for the angles, taken with the same kernel the engine
uses, a row sum, a range check); for the true gradient of ``H`` one more product of pair size (the boundary term's,
which an implementation that does not fold it into ``P`` pays).  Targets: ``L`` and ``H``'s mean field within
2x their floor, the true gradient of ``H`` within 3x.

The breakdown of the landscape report's time reads ``timings`` from ``reports/landscape.json`` (and
``reports/full/landscape.json`` where present): seconds of each sweep, and CPU seconds of the descents per flow and
of the classification; the main job's seconds come from the index ``reports/README.md`` (its footer) and each
report's JSON provenance.  Writes ``reports/performance_landscape.json`` and ``.md``; its sentences come from
:func:`findings` (tested in ``tests/test_landscape_step.py``).  Never part of the test suite.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from benchmarks import common
from numerics import fused_fields
from numerics import landscape as LS
from numerics.flows import FLOWS

B, STEPS, WARM = 1000, 50, 300
TARGETS = {"L": 2.0, "H-mean": 2.0, "H-true": 3.0}
FLOOR = ("Gram product W Z^T", "square root pass", "arccos pass", "row sum pass", "range check", "product P Z")
FLOOR_EXTRA = {"H-true": ("boundary product",)}


def _starts(k: int, flow: str):
    from verify.landscape.compute import initial_weights, step_size, teacher

    W_star, lr = teacher(k), step_size(k, flow, 0.5)
    res = LS.descend(initial_weights(0, k, k, 0, B), W_star, flow, lr=lr, max_steps=WARM, grad_tol=1e-300)
    return res["W"], W_star, lr


def step_stages(k: int) -> dict:
    """The stages timed at one ``k``: a step of each flow, and the floor's parts."""
    stages = {}
    for flow in FLOWS:
        W, W_star, lr = _starts(k, flow)
        stages[f"step {flow}"] = (lambda: None, lambda _, W=W, W_star=W_star, lr=lr, flow=flow: LS.descend(
            W, W_star, flow, lr=lr, max_steps=STEPS, grad_tol=1e-300, value_tol=1e-300))
    Z, _ = fused_fields.stacked(W, W_star)
    Zt = np.swapaxes(Z, -1, -2)
    pairs = np.random.default_rng(0).uniform(-0.99, 0.99, (B, k, 2 * k))
    per_step = 1.0 / (STEPS + 1)  # a run of STEPS steps evaluates STEPS + 1 fields
    none = lambda: None  # noqa: E731
    stages.update({
        "Gram product W Z^T": (none, lambda _: np.matmul(W, Zt)),
        "square root pass": (lambda: np.abs(pairs), np.sqrt),
        "arccos pass": (none, lambda _: fused_fields.arccos(pairs)),
        "row sum pass": (none, lambda _: pairs.sum(axis=-1)),
        "range check": (none, lambda _: (pairs.min(axis=(1, 2)), pairs.max(axis=(1, 2)))),
        "product P Z": (none, lambda _: np.matmul(pairs, Z)),
        "boundary product": (none, lambda _: np.matmul(pairs, Z)),
    })
    return stages, per_step


def measure(k: int, rounds: int) -> dict:
    stages, per_step = step_stages(k)
    sec = common.median_over_rounds(stages, rounds, calls=1)
    per_start = {}
    for flow in FLOWS:
        step = sec[f"step {flow}"] * per_step / B
        floor = sum(sec[s] for s in FLOOR + FLOOR_EXTRA.get(flow, ())) / B
        per_start[flow] = {"step_us": step * 1e6, "floor_us": floor * 1e6, "ratio": step / floor,
                           "target": TARGETS[flow]}
    return {"k": k, "B": B, "seconds": sec, "per_start": per_start}


INVALID_BELOW = 1.0  # a step faster than its floor: the floor's stages were not timed like the step (noise)


def findings(rows: list) -> list:
    """The report's sentences, each computed from the measured ratios (no other input).  A ratio below
    INVALID_BELOW means the floor, which the step cannot beat, was mismeasured: no target is called met then."""
    out = []
    for r in rows:
        ratios = ", ".join(f"{f} {x['ratio']:.2f}× its floor (target ≤ {x['target']:g}×)"
                           for f, x in r["per_start"].items())
        invalid = [f for f, x in r["per_start"].items() if x["ratio"] < INVALID_BELOW]
        if invalid:
            out.append(f"k = {r['k']}: {ratios} — not a valid measurement: {', '.join(invalid)} faster than the floor "
                       "(rerun on a quieter machine).")
            continue
        missed = [f for f, x in r["per_start"].items() if x["ratio"] > x["target"]]
        out.append(f"k = {r['k']}: {ratios}"
                   + (" — every target met." if not missed else f" — missed: {', '.join(missed)}."))
    return out


def breakdown(path: Path) -> dict | None:
    """``timings`` of a landscape report's JSON with its profile and wall time, or ``None`` where it has none."""
    if not path.exists():
        return None
    payload = json.loads(path.read_text())
    t = payload["data"].get("timings")
    return t and {"profile": payload["provenance"]["profile"], "wall_time_s": payload["provenance"]["wall_time_s"],
                  "git_commit": payload["provenance"]["git_commit"], **t}


MAIN_JOB_TARGET_S = 600.0  # python -m verify.all, standard profile, on this 2-core VM


def main_job(reports: Path) -> dict | None:
    """The last ``python -m verify.all`` in ``reports``: its wall time (the index's footer) and each report's own
    (its JSON provenance); ``None`` where the index has no footer."""
    import re

    index = reports / "README.md"
    found = re.search(r"\*Regenerated by\* `python -m verify\.all --profile (\w+)[^`]*` in (\d+) s wall \((\d+) processes",
                      index.read_text()) if index.exists() else None
    if not found:
        return None
    walls = {p.stem: json.loads(p.read_text())["provenance"]["wall_time_s"] for p in sorted(reports.glob("*.json"))
             if "provenance" in json.loads(p.read_text())}
    return {"profile": found[1], "wall_time_s": float(found[2]), "processes": int(found[3]), "reports_s": walls}


def main_job_findings(job: dict) -> list:
    """Sentences on the main job, computed from its seconds alone."""
    walls = sorted(job["reports_s"].items(), key=lambda kv: -kv[1])
    top = ", ".join(f"{name} {sec:.0f} s" for name, sec in walls[:3])
    met = job["wall_time_s"] <= MAIN_JOB_TARGET_S
    return [f"`python -m verify.all --profile {job['profile']}` took {job['wall_time_s']:.0f} s wall "
            f"({job['wall_time_s'] / 60:.1f} min; target ≤ {MAIN_JOB_TARGET_S / 60:.0f} min: "
            f"{'met' if met else 'missed'}), its reports {sum(job['reports_s'].values()):.0f} s together in "
            f"{job['processes']} processes; the longest: {top}."]


def render(result: dict) -> str:
    m = result["machine"]
    md = ["# One descent step of the landscape flows, against its floor", "",
          f"`python -m benchmarks.landscape_step` on {m['cpu']} ({m['cores']} cores; NumPy {m['numpy']}, PyTorch "
          f"{m['torch']}), one process. Per start and step, B = {B} starts {WARM} steps into their descent, "
          f"{STEPS} steps timed; stages interleaved over {result['rounds']} rounds, medians.", "",
          "| k | flow | step (µs per start) | floor (µs per start) | ratio | target |", "|---|---|---|---|---|---|"]
    for r in result["rows"]:
        md += [f"| {r['k']} | {f} | {x['step_us']:.2f} | {x['floor_us']:.2f} | {x['ratio']:.2f} | ≤ {x['target']:g} |"
               for f, x in r["per_start"].items()]
    md += ["", "The floor's parts (µs per start):", "", "| k | " + " | ".join(FLOOR + ("boundary product",)) + " |",
           "|---|" + "---|" * (len(FLOOR) + 1)]
    for r in result["rows"]:
        md.append(f"| {r['k']} | " + " | ".join(f"{r['seconds'][s] / B * 1e6:.2f}" for s in FLOOR + ("boundary product",))
                  + " |")
    md += [""] + [f"- {f}" for f in result["findings"]] + [""]
    job = result.get("main_job")
    if job:
        md += ["## The main job", "", "| report | wall s |", "|---|---|"]
        md += [f"| {name} | {sec:.1f} |" for name, sec in sorted(job["reports_s"].items(), key=lambda kv: -kv[1])]
        md += [""] + [f"- {f}" for f in main_job_findings(job)] + [""]
    for name, t in result["landscape"].items():
        if t is None:
            continue
        md += [f"## Where `python -m verify.landscape --profile {t['profile']}` spends its time ({name})", "",
               f"Wall time {t['wall_time_s']:.0f} s (commit `{t['git_commit'][:7]}`), of which per sweep (wall "
               "seconds, the sweep's tasks in parallel processes):", "",
               "| sweep | wall s |", "|---|---|"]
        md += [f"| {k} | {v:.1f} |" for k, v in t["wall_s"].items()]
        md += ["", "CPU seconds inside the main sweep's tasks:", "", "| flow | descent | classification |", "|---|---|---|"]
        md += [f"| {f} | {v['descent']:.1f} | {v['classification']:.1f} |" for f, v in t["cpu_s"].items()]
        md.append("")
    return "\n".join(md)


def main() -> None:
    common.keep_freed_memory("benchmarks.landscape_step")
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(common.REPORTS))
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args()
    rows = [measure(k, args.rounds) for k in (12, 20)]
    result = {"machine": common.machine(), "rounds": args.rounds, "rows": rows, "findings": findings(rows),
              "landscape": {"standard": breakdown(common.REPORTS / "landscape.json"),
                            "full": breakdown(common.REPORTS / "full" / "landscape.json")},
              "main_job": main_job(common.REPORTS)}
    md = render(result)
    common.write("performance_landscape", result, md, Path(args.out))
    print(md)


if __name__ == "__main__":
    main()
