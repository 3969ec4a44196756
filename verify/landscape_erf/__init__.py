"""``python -m verify.landscape --activation erf`` (or ``python -m verify.landscape_erf``): the landscape under erf.

Writes ``landscape_erf.md`` / ``landscape_erf.json`` / ``landscape_erf_kinds.png``: Safran & Shamir's setting
(teacher ``I_k``, ``K = k, k + 1, k + 2``, the landscape report's random starts) with ``sigma = erf``, where the
mean field is the true gradient, so each loss has one flow: gradient descent on ``L`` and on ``H = L + J`` from the
same starts, each end point classified by the landscape report's rule (:func:`numerics.landscape.decide`), and two
verdicts: does ``L`` have spurious minima for erf networks, and does ``H`` remove them?

Layers: :mod:`.compute` (every number), :mod:`.judge` (verdicts and findings), :mod:`.render` (Markdown, figure).
"""
from __future__ import annotations

import sys
from functools import partial

from ..report import Context, Report, positive_int, progress, run
from ..sweep import default_workers, execute
from . import compute, judge, render

NAME = "landscape_erf"
TITLE = "Beyond the paper: spurious minima of erf networks, under L and under H"
PROFILES = {
    "quick": dict(ks=[6], offsets=[0, 1], starts=6, max_steps=20000, lr_factor=0.5),
    # the landscape report's k and starts (its standard profile draws the same first 100 starts per (k, K))
    "standard": dict(ks=[6, 8, 10, 12], offsets=[0, 1, 2], starts=100, max_steps=40000, lr_factor=0.5),
    # k = 6..14 with 1000 starts per (k, K): ~20 min on 2 cores.  Safran & Shamir's range up to k = 20 needs a faster
    # erf engine first: one step of 1000 starts at k = 20, K = 22 takes ~150 ms on that machine (the generated partials'
    # powers of D over (1000, 22, 42) pairs), ~2 h for the sweep
    "full": dict(ks=list(range(6, 15)), offsets=[0, 1, 2], starts=1000, max_steps=40000, lr_factor=0.5),
}

__all__ = ["NAME", "TITLE", "PROFILES", "build", "compute", "judge", "render", "main", "add_arguments"]


def add_arguments(p) -> None:
    p.add_argument("--activation", choices=("erf",), default="erf",
                   help="erf (this report; python -m verify.landscape --activation erf runs it)")
    p.add_argument("--workers", type=positive_int, default=default_workers(), metavar="N",
                   help=f"run the descents in N processes (default: one per core, {default_workers()} here); the "
                        "results do not depend on N")


def build(ctx: Context) -> Report:
    settings = PROFILES[ctx.profile]
    tasks = compute.tasks(ctx.seed, settings)
    with progress(ctx, len(tasks), "landscape_erf", "task") as bar:
        summary = compute.compute(ctx.seed, settings, partial(execute, workers=ctx.workers, bar=bar))
    summary["relu_landscape"] = compute.relu_landscape(ctx.out)  # the ReLU report beside this one, if any
    return render.render(NAME, TITLE, summary, judge.judge(summary))


def main(argv=None) -> int:
    return run(sys.modules[__name__], argv)
