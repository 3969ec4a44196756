"""``python -m verify.landscape``: does Sobolev training remove the spurious minima of the population loss?

Writes ``landscape.md`` / ``landscape.json`` / ``landscape_global_fraction.png``: Safran & Shamir's setting (teacher
``I_k``, ``K = k`` and over-parameterised ``K = k + 1, k + 2``) under the population flows of ``L``, of the mean field
of ``H`` and of the true gradient of ``H`` from the same random starts; the end points classified (global, spurious
minimum, saddle, not converged) with Wilson intervals; the spurious minima found; Safran & Shamir's findings for ``L``
judged point by point; finite-sample autograd training; a verdict per ``H`` flow.

The sweep is a set of independent tasks (:mod:`verify.sweep`): run here by default, or on a Dask cluster with
``--scheduler ADDRESS`` (``pip install 'sobolev-verify[cluster]'``).

Layers: :mod:`.compute` (every number), :mod:`.judge` (verdicts and findings), :mod:`.render` (Markdown, figure).
"""
from __future__ import annotations

import sys
from functools import partial

from ..report import Context, Report, positive_int, progress, run
from ..sweep import default_workers, execute
from . import compute, judge, render

NAME = "landscape"
TITLE = "Beyond the paper: does Sobolev training remove the spurious minima?"
_SAMPLES_QUICK = dict(ks=[6], starts=2, n=256, steps=100, sgd_batch=32, lr_factor=2.0)
PROFILES = {
    "quick": dict(ks=[6], offsets=[0, 1], starts=3, chunk=3, max_steps=4000, lr_factor=0.5,
                  check=dict(k=6, starts=2), samples=_SAMPLES_QUICK),
    "standard": dict(ks=[6, 8, 10, 12], offsets=[0, 1, 2], starts=100, chunk=25, max_steps=16000, lr_factor=0.5,
                     check=dict(k=10, starts=40),
                     samples=dict(ks=[8, 10], starts=30, n=2048, steps=1500, sgd_batch=128, lr_factor=2.0)),
    # Safran & Shamir's whole range.  The step is 1/lambda_max (twice standard's; the same number of steps as
    # standard's 40000 would take at 0.5): the step-size check at k = 10 runs 200 starts again at standard's step
    "full": dict(ks=list(range(6, 21)), offsets=[0, 1, 2], starts=1000, chunk=250, max_steps=20000, lr_factor=1.0,
                 check=dict(k=10, starts=200),
                 samples=dict(ks=[8, 12], starts=60, n=4096, steps=2000, sgd_batch=256, lr_factor=1.0)),
}

__all__ = ["NAME", "TITLE", "PROFILES", "build", "compute", "judge", "render", "main", "add_arguments"]


def add_arguments(p) -> None:
    p.add_argument("--activation", choices=("relu", "erf"), default="relu",
                   help="relu (default): this report; erf: the same question for erf networks, written as "
                        "landscape_erf.md (python -m verify.landscape_erf)")
    p.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="run the sweep on the Dask cluster whose scheduler is at ADDRESS (e.g. tcp://host:8786); "
                        "needs pip install 'sobolev-verify[cluster]' here and on the workers (default: run here)")
    p.add_argument("--workers", type=positive_int, default=default_workers(), metavar="N",
                   help="without --scheduler: run the sweep in N processes here (default: one per core, "
                        f"{default_workers()} here); the results do not depend on N")


def build(ctx: Context) -> Report:
    settings = PROFILES[ctx.profile]
    with progress(ctx, compute.task_count(settings), "landscape", "task") as bar:
        summary = compute.compute(ctx.seed, settings, partial(execute, scheduler=ctx.scheduler, workers=ctx.workers, bar=bar),
                                  device=ctx.device)
    return render.render(NAME, TITLE, summary, judge.judge(summary))


def main(argv=None) -> int:
    return run(sys.modules[__name__], argv)
