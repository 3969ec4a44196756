"""``python -m verify.generalizations``: does Sobolev acceleration survive beyond the paper's model?

Writes ``generalizations.md`` / ``generalizations.json`` / ``generalizations_ratios.png``: for trained output
weights, leaky ReLU, ReLU powers, an anisotropic covariance and the second-order loss ``L + J + lambda_2 J2``
(:mod:`numerics.family`), the conditioning of the mean fields' Jacobians near the teacher and the rates of
their population flows, each extension with a verdict computed from its numbers.

Layers: :mod:`.compute` (every number), :mod:`.judge` (verdicts and findings), :mod:`.render` (Markdown, figure).
"""
from __future__ import annotations

import sys

from ..report import Context, Report, progress, run
from . import compute, judge, render

NAME = "generalizations"
TITLE = "Beyond the paper: does Sobolev acceleration survive other models?"
PROFILES = {
    "quick": dict(betas=[0.1], powers=[2], cov_conditions=[10.0], lambda2=1.0, thetas=[0.3], rhos=[1.0], K=2, d=3,
                  distances=[0.1], directions=1, flow_starts=1, flow_distance=0.1, flow_time=40.0, flow_points=101),
    "standard": dict(betas=[0.01, 0.1, 0.3], powers=[2, 3], cov_conditions=[1.0, 10.0, 100.0], lambda2=1.0,
                     thetas=[0.1, 0.5, 1.0], rhos=[0.8, 1.0, 1.25], K=3, d=4, distances=[0.05, 0.2], directions=2,
                     flow_starts=2, flow_distance=0.1, flow_time=80.0, flow_points=201),
}
PROFILES["full"] = PROFILES["standard"]

__all__ = ["NAME", "TITLE", "PROFILES", "build", "compute", "judge", "render", "main"]


def build(ctx: Context) -> Report:
    settings = PROFILES[ctx.profile]
    with progress(ctx, len(compute.configurations(settings)), "generalizations", "config") as bar:
        summary = compute.compute(ctx.seed, settings, bar)
    return render.render(NAME, TITLE, summary, judge.judge(summary))


def main(argv=None) -> int:
    return run(sys.modules[__name__], argv)
