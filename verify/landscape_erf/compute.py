"""Compute layer of the erf landscape report: plain data only (the JSON ``data``).

Setting: the landscape report's (teacher ``W* = I_k`` in ``d = k``, unit output weights, ``x ~ N(0, I)``, students of
width ``K = k + offset``, starts with rows i.i.d. ``N(0, I/k)`` drawn by :func:`verify.landscape.compute.initial_weights`,
so the first ``starts`` starts per ``(k, K)`` are the landscape report's), with ``sigma = erf``.  For erf the mean
field is the true gradient (:mod:`theory.erf`), so each loss has one flow: ``"L"`` and ``"H"`` (``H = L + J``).

Each flow runs gradient descent (:func:`numerics.erf_landscape.descend`) with the step ``lr_factor / lambda_max``,
``lambda_max`` the largest eigenvalue of the flow's Hessian at the teacher, stopped once the gradient is below
:data:`STOP` or the value loss below ``value_tol`` of the teacher's; each end point is classified by the landscape
report's rule and tolerances (:func:`numerics.erf_landscape.classify`).
"""
from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import numpy as np

from numerics import erf_landscape
from numerics.landscape import distinct

from ..landscape.compute import DEDUP, STOP, TOLERANCES, initial_weights, teacher

FLOWS = erf_landscape.FLOWS


def tasks(seed: int, settings: dict) -> list:
    """One task per ``(k, K, flow)``, each with its step."""
    out = []
    for k in settings["ks"]:
        lrs = {flow: erf_landscape.teacher_step(teacher(k), flow, settings["lr_factor"]) for flow in FLOWS}
        for offset in settings["offsets"]:
            for flow in FLOWS:
                out.append(dict(seed=seed, k=k, K=k + offset, flow=flow, lr=lrs[flow], starts=settings["starts"],
                                max_steps=settings["max_steps"]))
    return out


def run_task(task: dict) -> dict:
    """Descend from the task's starts and classify every end point: per start its kind, steps, value loss, field
    norm and smallest Hessian eigenvalue (where the rule read it); the spurious end points' weights."""
    W_star = teacher(task["k"])
    W0 = initial_weights(task["seed"], task["k"], task["K"], 0, task["starts"])
    t = time.process_time()
    out = erf_landscape.descend(W0, W_star, task["flow"], lr=task["lr"], max_steps=task["max_steps"], grad_tol=STOP,
                                value_tol=TOLERANCES["value_tol"])
    ends = [erf_landscape.classify(W, W_star, task["flow"], **TOLERANCES) for W in out["W"]]
    rows = {key: [e[key] for e in ends] for key in ("kind", "relative_value_loss", "field_norm", "min_real_eigenvalue")}
    spurious = [out["W"][i].tolist() for i, e in enumerate(ends) if e["kind"] == "spurious minimum"]
    return {**{key: task[key] for key in ("k", "K", "flow", "lr", "starts", "max_steps")}, **rows,
            "steps": out["steps"].tolist(), "final_lr": out["lr"].tolist(), "spurious_points": spurious,
            "cpu_s": time.process_time() - t}


def distinct_count(points: list) -> int:
    """How many distinct points among ``points`` (each ``(K, d)``), modulo a permutation of the rows, at relative
    distance :data:`DEDUP` (the landscape report's)."""
    return len(distinct([np.asarray(p) for p in points], DEDUP)) if points else 0


RELU_REPORT = "landscape.json"  # the ReLU landscape report beside this one, whose L runs the control row reads


def relu_landscape(out) -> dict | None:
    """The ReLU landscape report's runs of ``L`` (``{"file", "sha256", "profile", "groups": [{"k", "K", "flow",
    "kind"}]}``) when ``<out>/landscape.json`` exists (``verify.all`` writes it first), else ``None``."""
    path = Path(out) / RELU_REPORT
    if not path.exists():
        return None
    raw = path.read_bytes()
    payload = json.loads(raw)
    groups = [{key: g[key] for key in ("k", "K", "flow", "kind")} for g in payload["data"]["groups"] if g["flow"] == "L"]
    return {"file": RELU_REPORT, "sha256": hashlib.sha256(raw).hexdigest(),
            "profile": payload["provenance"].get("profile"), "groups": groups}


def compute(seed: int, settings: dict, execute) -> dict:
    """Every number of the report; ``execute(fn, tasks)`` runs the sweep (:func:`verify.sweep.execute`)."""
    t = time.perf_counter()
    todo = tasks(seed, settings)
    # largest k first, so that the processes finish close together; the groups are reported in the tasks' order
    order = sorted(range(len(todo)), key=lambda i: -todo[i]["k"])
    done = dict(zip(order, execute(run_task, [todo[i] for i in order])))
    groups = [done[i] for i in range(len(todo))]
    cpu = {}
    for g in groups:
        cpu[g["flow"]] = cpu.get(g["flow"], 0.0) + g.pop("cpu_s")
        g["distinct_spurious"] = distinct_count(g["spurious_points"])
    return {"settings": settings, "tolerances": {**TOLERANCES, "stop": STOP, "dedup": DEDUP}, "groups": groups,
            "timings": {"wall_s": time.perf_counter() - t, "cpu_s": cpu}}
