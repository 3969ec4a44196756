"""Compute layer of the landscape report: plain data only (the JSON ``data``).

Setting (Safran & Shamir 2018): teacher ``W* = I_k`` (orthonormal rows, ``d = k``), unit output weights, ``x ~ N(0, I)``,
students of width ``K = k + offset``.  Starts: rows i.i.d. ``N(0, I/k)``, drawn per ``(seed, k, K)`` so that start
``i`` is the same point whatever the chunking, and the **same starts** run under every flow (paired comparisons).

Three sweeps of independent tasks (:mod:`verify.sweep`: locally, or on a Dask cluster):

* ``"flows"``: population gradient descent from the starts under the three fields of :data:`numerics.flows.FLOWS`
  (:func:`numerics.landscape.descend`) and the numbers that classify each end point
  (:func:`numerics.landscape.classify`), with the end points at spurious minima;
* ``"from_points"``: at every distinct spurious minimum of ``L``, the norms of the mean field and of the true gradient
  of ``H``, and where the two ``H`` flows started there end;
* ``"samples"``: autograd training on ``n`` samples (full-batch GD and SGD, :func:`verify.experiments.finite_sample.
  train_batch`) from the same starts, each end point then followed by the population flow of the field that training
  estimates (``L``, or the mean field of ``H``) and classified.

Step sizes: ``lr = lr_factor / lambda_max``, ``lambda_max`` the largest real part of the eigenvalues of the mean-field
Jacobian of ``L`` (for ``"L"``) or of ``H`` (both ``H`` flows) at a point ``1e-7`` from the teacher ``I_k``.
"""
from __future__ import annotations

import math
import time

import numpy as np

import numerics
from numerics import landscape as LS
from numerics.flows import FLOWS

# classification (numerics.landscape.classify).  value_tol: a run whose value loss falls to 1e-6 of the teacher's stops
# there and is global; three orders of magnitude below every spurious minimum found (the smallest, 1.2e-3 of the
# teacher's, at k = 12; the report checks that gap: judge.tolerance_gap).  It spares the last stretch of every
# approach to the teacher: linear for K = k, degenerate (sublinear) for K > k, where a teacher row is split
TOLERANCES = dict(grad_tol=1e-6, global_tol=1e-6, eig_tol=1e-6, value_tol=1e-6)
STOP = 1e-8  # a descent stops once its field is below this (well inside TOLERANCES["grad_tol"])
DEDUP = 1e-4  # end points closer than this (relative, modulo row permutations) are one minimum


def teacher(k: int) -> np.ndarray:
    return np.eye(k)


def initial_weights(seed: int, k: int, K: int, lo: int, hi: int) -> np.ndarray:
    """Starts ``lo .. hi - 1`` of ``(seed, k, K)``: rows ``N(0, I/k)`` (``hi`` starts drawn, the first ``lo`` dropped)."""
    rng = np.random.default_rng([seed, k, K])
    return rng.standard_normal((hi, K, k))[lo:] / math.sqrt(k)


def step_size(k: int, flow: str, factor: float) -> float:
    """``factor / lambda_max`` of the mean-field Jacobian (``L`` for ``"L"``, ``H`` for both ``H`` flows) next to the
    teacher ``I_k`` (a fixed offset ``1e-7``: at the teacher itself the Jacobian of ``H`` does not exist)."""
    W_star = teacher(k)
    near = W_star + 1e-7 * np.random.default_rng(0).standard_normal((k, k))
    M = numerics.hessian(near, W_star, "L" if flow == "L" else "H", "mean")
    return factor / float(np.linalg.eigvals(M).real.max())


# ----------------------------------------------------------------------------- tasks
def flow_tasks(seed: int, settings: dict, lrs: dict) -> list:
    """One task per ``(k, K, flow, chunk of starts)``; ``lrs[(k, flow)]`` the step sizes."""
    out = []
    for k in settings["ks"]:
        for off in settings["offsets"]:
            for flow in FLOWS:
                for lo in range(0, settings["starts"], settings["chunk"]):
                    out.append(dict(kind="flows", seed=seed, k=k, K=k + off, flow=flow, lo=lo,
                                    hi=min(lo + settings["chunk"], settings["starts"]), lr=lrs[(k, flow)],
                                    max_steps=settings["max_steps"]))
    return out


def run_task(task: dict) -> dict:
    """The result of one task (any kind): plain lists and numbers."""
    return {"flows": _run_flows, "from_points": _run_from_points, "samples": _run_samples}[task["kind"]](task)


def _device(task: dict) -> str:
    return task.get("device", "cpu")


def _descend(task: dict, W0, W_star, flow: str, **kw) -> dict:
    """:func:`numerics.landscape.descend` in NumPy (``device`` ``"cpu"``), or in PyTorch on the task's device; the
    results as NumPy arrays (the classification runs on the CPU)."""
    if _device(task) != "cpu":
        import torch

        W0 = torch.as_tensor(np.asarray(W0), dtype=torch.float64, device=_device(task))
    res = LS.descend(W0, W_star, flow, grad_tol=STOP, **kw)
    return {key: v.cpu().numpy() if hasattr(v, "cpu") else v for key, v in res.items()}


def _classified(W, locks, W_star, flow: str) -> list:
    return [LS.classify(w, W_star, flow, locks=lk, **TOLERANCES) for w, lk in zip(W, locks)]


def _columns(rows: list, keys) -> dict:
    return {key: [r[key] for r in rows] for key in keys}


NUMBERS = ("distance", "relative_value_loss", "field_norm", "min_real_eigenvalue", "lock_margin")


def _run_flows(task: dict) -> dict:
    W_star = teacher(task["k"])
    W0 = initial_weights(task["seed"], task["k"], task["K"], task["lo"], task["hi"])
    t0 = time.process_time()
    res = _descend(task, W0, W_star, task["flow"], lr=task["lr"], max_steps=task["max_steps"],
                   value_tol=TOLERANCES["value_tol"])
    t1 = time.process_time()
    rows = _classified(res["W"], res["locks"], W_star, task["flow"])
    out = {**_columns(rows, NUMBERS + ("kind",)), "steps": res["steps"].tolist(),
           "locked_rows": (res["locks"] >= 0).sum(axis=1).tolist(), "step_halvings": _halvings(res["lr"], task["lr"]),
           "unlocks": res["unlocks"].tolist()}
    out["end_points"] = {str(task["lo"] + i): {"W": res["W"][i].tolist(), "locks": res["locks"][i].tolist()}
                         for i, r in enumerate(rows) if r["kind"] == "spurious minimum"}
    out["cpu_s"] = {"descent": t1 - t0, "classification": time.process_time() - t1}
    return out


def _halvings(final, lr: float) -> list:
    return [int(round(np.log2(lr / x))) for x in final]


def _run_from_points(task: dict) -> dict:
    """At each point (spurious minima of ``L``): ``|mean field of H|``, ``|true gradient of H|`` (``None`` where a row
    lies on a teacher ray, the kink) and the kind of the end point of each ``H`` flow started there."""
    W_star = teacher(task["k"])
    P = np.array(task["points"], dtype=np.float64)
    out = {"H_mean_field_norm": [float(np.linalg.norm(numerics.gradient(p, W_star, "H", "mean"))) for p in P],
           "H_true_gradient_norm": [_true_norm(p, W_star) for p in P]}
    for flow in ("H-mean", "H-true"):
        res = _descend(task, P, W_star, flow, lr=task["lr"], max_steps=task["max_steps"])
        rows = _classified(res["W"], res["locks"], W_star, flow)
        out[flow] = {**_columns(rows, ("kind", "relative_value_loss", "distance")),
                     "moved": [float(LS.permutation_distance(w, p) / np.linalg.norm(p)) for w, p in zip(res["W"], P)]}
    return out


def _true_norm(W, W_star):
    try:
        return float(np.linalg.norm(numerics.gradient(W, W_star, "H", "true")))
    except ValueError:  # a row exactly on a teacher ray: the true gradient of H does not exist there
        return None


def _run_samples(task: dict) -> dict:
    """Autograd training on ``n`` samples from starts ``lo .. hi - 1``, then the population flow of the field it
    estimates from each end point, classified."""
    import torch

    from verify.experiments.finite_sample import train_batch

    k, K = task["k"], task["K"]
    W_star = teacher(k)
    gen = torch.Generator().manual_seed(int(task["sample_seed"]))
    X = torch.randn(task["n"], k, generator=gen, dtype=torch.float64).to(_device(task))  # drawn on the CPU: same X anywhere
    W0 = initial_weights(task["seed"], k, K, task["lo"], task["hi"])
    trained = train_batch(W0, W_star, X, task["loss"], task["lr"], task["steps"], batch=task["batch"],
                          seed=task["sample_seed"], grad_tol=task["grad_tol"] if task["batch"] is None else 0.0)
    flow = "L" if task["loss"] == "L" else "H-mean"
    res = _descend(task, trained["W"], W_star, flow, lr=task["polish_lr"], max_steps=task["polish_steps"])
    rows = _classified(res["W"], res["locks"], W_star, flow)
    value = [float(v) for v in LS.relative_value_loss(trained["W"], W_star)]
    return {**_columns(rows, NUMBERS + ("kind",)), "trained_relative_value_loss": value,
            "trained_distance": [float(LS.permutation_distance(w, W_star) / np.linalg.norm(W_star)) if K == k else None
                                 for w in trained["W"]],
            "empirical_grad_norm": trained["grad_norm"].tolist(), "train_steps": trained["steps"].tolist()}


# ----------------------------------------------------------------------------- assembling the sweeps
def merge(tasks: list, results: list) -> dict:
    """Results of the flow tasks by ``"k,K,flow"``: columns over all starts in order, and the end points at spurious
    minima."""
    groups = {}
    for task, res in zip(tasks, results):
        g = groups.setdefault(f"{task['k']},{task['K']},{task['flow']}",
                              dict(k=task["k"], K=task["K"], flow=task["flow"], lr=task["lr"], end_points={}))
        for key, value in res.items():
            if key == "end_points":
                g["end_points"].update(value)
            elif key == "cpu_s":
                for part, seconds in value.items():
                    g.setdefault("cpu_s", {}).setdefault(part, 0.0)
                    g["cpu_s"][part] += seconds
            else:
                g.setdefault(key, []).extend(value)
    return groups


def distinct_minima(group: dict, W_star: np.ndarray) -> list:
    """The distinct spurious minima of one group, up to the symmetries of the teacher ``I_k``
    (:func:`numerics.landscape.distinct_up_to_symmetry`, tolerance ``DEDUP``), each with its count, value loss,
    symmetry descriptors and spectrum."""
    idx = [int(i) for i, kind in enumerate(group["kind"]) if kind == "spurious minimum"]
    points = [np.array(group["end_points"][str(i)]["W"]) for i in idx]
    out = []
    for rep, count, first in LS.distinct_up_to_symmetry(points, DEDUP):
        i = idx[first]
        locks = np.array(group["end_points"][str(i)]["locks"])
        spec = LS.stability_spectrum(rep, W_star, group["flow"], locks)
        out.append({"count": count, "start": i, "relative_value_loss": group["relative_value_loss"][i],
                    "W": rep.tolist(), "locks": locks.tolist(), "symmetry": LS.symmetry(rep, W_star),
                    "spectrum": {"min": float(spec.min()), "max": float(spec.max()), "size": int(len(spec)),
                                 "below_1e-3": int((spec < 1e-3).sum())}})
    return sorted(out, key=lambda m: m["relative_value_loss"])


def from_point_tasks(groups: dict, settings: dict, lrs: dict) -> list:
    out = []
    for g in groups.values():
        if g["flow"] == "L" and g["distinct"]:
            out.append(dict(kind="from_points", k=g["k"], K=g["K"], points=[m["W"] for m in g["distinct"]],
                            lr=lrs[(g["k"], "H-mean")], max_steps=settings["max_steps"]))
    return out


def sample_tasks(seed: int, settings: dict, lrs: dict) -> list:
    s = settings["samples"]
    out = []
    for k in s["ks"]:
        for loss in ("L", "H"):
            flow = "L" if loss == "L" else "H-mean"
            for method, batch in (("GD", None), ("SGD", s["sgd_batch"])):
                out.append(dict(kind="samples", seed=seed, sample_seed=seed * 1000 + k, k=k, K=k, lo=0, hi=s["starts"],
                                n=s["n"], loss=loss, method=method, batch=batch, lr=lrs[(k, flow)] * s["lr_factor"],
                                steps=s["steps"], grad_tol=STOP, polish_lr=lrs[(k, flow)],
                                polish_steps=settings["max_steps"]))
    return out


def check_tasks(seed: int, settings: dict, lrs: dict) -> list:
    """The step-size check: the first ``starts`` starts at ``k`` again with half the step and twice the steps."""
    c = settings["check"]
    return [dict(kind="flows", seed=seed, k=c["k"], K=c["k"], flow=flow, lo=0, hi=c["starts"], lr=lrs[(c["k"], flow)] / 2,
                 max_steps=2 * settings["max_steps"]) for flow in FLOWS]


def compute(seed: int, settings: dict, execute, device: str = "cpu") -> dict:
    """Every number of the report.  ``execute(fn, tasks)`` runs a sweep (:func:`verify.sweep.execute` bound to a
    scheduler and a progress bar); ``device``: ``"cpu"`` (NumPy) or a PyTorch device for the descents."""
    wall = {}

    def run(tasks, sweep):
        t = time.perf_counter()
        results = execute(run_task, [dict(t, device=device) for t in tasks])
        wall[sweep] = wall.get(sweep, 0.0) + time.perf_counter() - t
        return results

    ks = sorted(set(settings["ks"]) | set(settings["samples"]["ks"]) | {settings["check"]["k"]})
    lrs = {(k, flow): step_size(k, flow, settings["lr_factor"]) for k in ks for flow in FLOWS}
    tasks = flow_tasks(seed, settings, lrs)
    groups = merge(tasks, run(tasks, "descents from the starts"))
    t = time.perf_counter()
    for g in groups.values():
        g["distinct"] = distinct_minima(g, teacher(g["k"]))
    wall["distinct minima"] = time.perf_counter() - t
    followed = from_point_tasks(groups, settings, lrs)
    for task, res in zip(followed, run(followed, "H flows from the minima of L")):
        groups[f"{task['k']},{task['K']},L"]["from_points"] = res
    checks = check_tasks(seed, settings, lrs)
    check = merge(checks, run(checks, "step-size check"))
    samples = sample_tasks(seed, settings, lrs)
    sample_results = run(samples, "finite samples")
    timing = timings(groups.values(), wall)
    for g in list(groups.values()) + list(check.values()):
        g.pop("end_points")
        g.pop("cpu_s", None)  # the step check's CPU seconds: not reported (a timing field among the numbers)
    return {"settings": settings, "device": device, "tolerances": {**TOLERANCES, "stop": STOP, "dedup": DEDUP},
            "timings": timing,
            "step_sizes": {f"{k},{flow}": lr for (k, flow), lr in lrs.items()},
            "groups": list(groups.values()), "step_check": list(check.values()),
            "samples": [{**{key: t[key] for key in ("k", "K", "n", "loss", "method", "batch", "lr", "steps")}, **r}
                        for t, r in zip(samples, sample_results)]}


def timings(groups, wall: dict) -> dict:
    """The run's seconds (timing fields: they vary from run to run): wall seconds per sweep, and CPU seconds of the
    descents and of the classification per flow, summed over the main sweep's tasks (taken out of the groups)."""
    cpu = {}
    for g in groups:
        for part, seconds in g.pop("cpu_s", {}).items():
            cpu.setdefault(g["flow"], {"descent": 0.0, "classification": 0.0})[part] += seconds
    return {"wall_s": wall, "cpu_s": cpu}


def task_count(settings: dict) -> int:
    """How many tasks :func:`compute` runs at most (for the progress bar)."""
    flows = len(settings["ks"]) * len(settings["offsets"]) * len(FLOWS) * math.ceil(settings["starts"] / settings["chunk"])
    return flows + len(settings["ks"]) * len(settings["offsets"]) + len(FLOWS) + 4 * len(settings["samples"]["ks"])
