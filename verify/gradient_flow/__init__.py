"""``python -m verify.gradient_flow``: how much faster does Sobolev training converge?

The paper's fourth claim: gradient flow on ``H = L + J`` converges faster than on ``L``.
Writes ``gradient_flow.md`` / ``gradient_flow.json`` / ``gradient_flow_*.png``.

**Population flows** ``dW/dt = -F(W)`` for ``F`` the mean field of ``L`` (``"L"``), the mean
field of ``H`` (``"H-mean"``, what autograd's per-sample gradient averages to, the paper's
convention) and the true gradient of the population ``H`` (``"H-true"``, integrated as a Filippov
sliding flow on the teacher rays): :mod:`numerics.flows`.

**Predicted rates**: single node from :mod:`theory.flow` (SymPy); several nodes from the
spectrum of ``numerics.hessian(W, W*, part, "mean")`` at the teacher (``L``), along random
approach directions ``W* + t Delta`` (``H-mean``, whose Jacobian does not exist at the
teacher) and, for ``H-true``, the radial Jacobian on the sliding manifold
(:func:`numerics.flows.radial_jacobian`).

**Finite samples, real autograd**: the PyTorch student trained by full-batch gradient descent
and by SGD on ``n`` samples with the Sobolev loss built by autograd
(:mod:`verify.experiments.finite_sample`), compared step by step with population gradient
descent (the mean field, same step) at a common step and at steps matched to each loss's own
curvature.

Layers: :mod:`.compute` (every number, plain data), :mod:`.judge` (the verdict, every label and
every finding sentence, from the numbers), :mod:`.render` (Markdown and figures).  The report's
JSON ``data`` is compute's numbers with judge's labels put in (:func:`.judge.labelled`).
"""
from __future__ import annotations

import sys

from numerics.flows import (FIT_WINDOW, FLOWS, LOCK_ANGLE, MAX_NFEV, RECENTER_DISTANCE, RTOL, STOP, align,
                            boundary_terms, fit_rate, flow_field, integrate, iteration_rate, iterations_to,
                            population_gd, radial_jacobian, relative_distance, time_to)
from verify.experiments.finite_sample import empirical_gradient, empirical_loss, train_finite_sample

from ..report import Context, Report, one_thread, run
from . import compute, judge, render  # the three layers, as modules
from .compute import (EPSILONS, FS_EPS, FS_EPSILONS, FS_START_DISTANCE, NEAR_DISTANCE, draw_teacher, near_start,
                      predicted_rates, rate_along_run)

NAME = "gradient_flow"
TITLE = "Gradient flow: how much faster does Sobolev training converge?"

PROFILES = {
    "quick": dict(widths=(1, 2), dims=(5,), reps=1, t_max=60.0, directions=2,
                  fs=dict(K=2, d=5, ns=(100, 1000), steps=160, batch=32),
                  euler_h=(0.2, 0.05), euler_t=20.0, rk_cap=1500, max_nfev=5000),
    "standard": dict(widths=(1, 2, 4, 8), dims=(5, 20, 100), reps=1, t_max=100.0, directions=3,
                     fs=dict(K=2, d=10, ns=(100, 1000, 10_000, 100_000), steps=250, batch=32),
                     euler_h=(0.2, 0.05, 0.0125), euler_t=25.0, rk_cap=3000, max_nfev=5000),
    "full": dict(widths=(1, 2, 4, 8, 16), dims=(5, 20, 100, 500), reps=8, t_max=400.0, directions=8,
                 fs=dict(K=4, d=20, ns=(100, 1000, 10_000, 100_000, 1_000_000), steps=1000, batch=64),
                 euler_h=(0.2, 0.05, 0.0125, 0.003), euler_t=30.0, rk_cap=50_000, max_nfev=200_000),
}

__all__ = [
    "NAME", "TITLE", "PROFILES", "build", "main", "verdict_row", "compute", "judge", "render",
    "FLOWS", "EPSILONS", "STOP", "RECENTER_DISTANCE", "LOCK_ANGLE", "FIT_WINDOW", "RTOL", "NEAR_DISTANCE",
    "FS_START_DISTANCE", "FS_EPS", "FS_EPSILONS",
    "align", "relative_distance", "boundary_terms", "flow_field", "integrate", "time_to", "fit_rate",
    "iterations_to", "iteration_rate", "population_gd", "radial_jacobian",
    "run_flow", "predicted_rates", "rate_along_run", "draw_teacher", "near_start",
    "empirical_loss", "empirical_gradient", "train_finite_sample",
]


def run_flow(W0, W_star, flow, t_max, max_nfev: int = MAX_NFEV) -> dict:
    """One run: its numbers (:func:`.compute.measure_flow`: trajectory summary, times to each epsilon, late rate,
    ``W_end``) and where it ends (``end``, :func:`.judge.run_end`)."""
    r = compute.measure_flow(W0, W_star, flow, t_max, max_nfev)
    return {"flow": r["flow"], "end": judge.run_end(r), **r}


def verdict_row(judgement: dict) -> dict:
    """The row of the index's verdict table."""
    return {"claim": 4, "verdict": judgement["verdict"], "convention": judgement["convention"],
            "evidence": f"{NAME}.md"}


def build(ctx: Context) -> Report:
    """compute → judge → render (torch on one thread: small training runs on a shared machine).  The JSON's
    ``data`` is compute's numbers with the judge's labels put in."""
    with one_thread():
        numbers = compute.compute(ctx, PROFILES[ctx.profile])
    data = judge.labelled(numbers)
    judgement = judge.judge(data)
    rep = Report(NAME, TITLE)
    rep.data = data
    for block in render.markdown(NAME, data, judgement):
        rep.add(block)
    rep.figures = render.figures(NAME, data, judgement)
    rep.verdicts = [verdict_row(judgement)]
    return rep


def main(argv=None) -> int:
    return run(sys.modules[__name__], argv)
