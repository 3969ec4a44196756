"""``python -m verify.conditioning``: is ``H`` better conditioned than ``L``, and under which definition?

Writes ``conditioning.md`` / ``conditioning.json`` and the figures ``conditioning_map_<field>.png``,
``conditioning_multinode.png``, ``conditioning_directions.png``.

For each point, the three Hessians of ``L`` and of ``H`` (docs/theory.md, section 5: ``"true"`` = Hessian of the
population loss, ``"mean"`` = Jacobian of the mean field, ``"autograd"`` = expected autograd
Hessian) and their condition numbers under each definition of :mod:`numerics.conditioning`.
The comparison is always ``kappa(H) / kappa(L)`` for the *same* Hessian kind and definition:
below 1, ``H`` is better conditioned.

* Single node: closed-form spectra (:mod:`theory.spectrum`) mapped over ``theta`` and
  ``rho = |w|/|w*|`` for ``d`` in ``{2, 3, 10, 100}``.
* Several nodes: seeded instances (far from, near, and approaching the teacher along random
  directions), spectra of ``numerics.hessian``.
* Worst cases: SciPy optimisers over ``(theta, rho)`` and over multi-node weights.
* Cross-checks: closed-form spectra against ``numerics.hessian``; ``numerics.hessian`` against
  central differences of ``numerics.gradient`` (:func:`numerics.finite_differences.fd_jacobian`);
  the expected autograd Hessian against Monte-Carlo.

Layers: :mod:`.compute` (every number, plain data), :mod:`.judge` (the verdict, the pass/fail of the
cross-checks and every sentence that states a finding, from the numbers), :mod:`.render` (Markdown
and figures).
"""
from __future__ import annotations

import sys

from ..report import Context, Report, run
from . import compute, judge, render
from .compute import (DEF_TEXT, DEFS, FIELD_TEXT, FIELDS, MAP_DIMS, closed_vs_public, group_summary, instance, kappas,
                      map_summary, min_angle, ratio, single_node_maps, unstable_H_witness, worst_multi_node,
                      worst_single_node)
from .judge import ALPHA, EDGE_RATIO, FD_TOLERANCE
from .render import directions_figure, map_figure, multinode_figure

NAME = "conditioning"
TITLE = "Conditioning: is H better conditioned than L, and under which definition?"

PROFILES = {
    "quick": dict(grid=40, widths=(2,), dims=(4,), n_far=2, n_near=2, n_dir=1, ts=(1e-1, 1e-3),
                  de_iter=15, nm_starts=1, nm_fev=120, fd_points=3, mc_points=1, mc_n=20_000),
    "standard": dict(grid=200, widths=(2, 4, 8), dims=(4, 16, 64), n_far=8, n_near=8, n_dir=3,
                     ts=(1e-1, 1e-2, 1e-3, 1e-4), de_iter=80, nm_starts=4, nm_fev=600, fd_points=12,
                     mc_points=4, mc_n=400_000),
    "full": dict(grid=400, widths=(2, 4, 8), dims=(4, 16, 64), n_far=40, n_near=40, n_dir=10,
                 ts=(1e-1, 1e-2, 1e-3, 1e-4, 1e-6), de_iter=200, nm_starts=16, nm_fev=3000, fd_points=40,
                 mc_points=8, mc_n=10_000_000),
}
JSON_KEYS = ("profile_sizes", "definitions", "fields", "single_node_spectrum_sympy", "single_node_maps",
             "multi_node", "multi_node_summary", "worst_case", "cross_checks")

__all__ = ["NAME", "TITLE", "PROFILES", "build", "main", "compute", "judge", "render", "data_of",
           "ALPHA", "EDGE_RATIO", "FD_TOLERANCE", "FIELDS", "DEFS", "DEF_TEXT", "FIELD_TEXT", "MAP_DIMS",
           "instance", "kappas", "ratio", "min_angle", "single_node_maps", "map_summary", "group_summary",
           "worst_single_node", "worst_multi_node", "unstable_H_witness", "closed_vs_public",
           "map_figure", "multinode_figure", "directions_figure"]


def data_of(summary: dict, judgement: dict) -> dict:
    """The JSON ``data``: the computed numbers plus the judge's checks and verdict inputs."""
    data = {k: summary[k] for k in JSON_KEYS}
    data["single_node_maps"] = {**summary["single_node_maps"], "d_at_least_3_identical": judgement["maps_identical"]}
    data["cross_checks"] = {**summary["cross_checks"], **judgement["cross_checks"]}
    data["verdict_inputs"] = judgement["inputs"]
    return data


def build(ctx: Context) -> Report:
    """compute → judge → render."""
    summary = compute.compute(ctx, PROFILES[ctx.profile])
    judgement = judge.judge(summary)
    rep = Report(NAME, TITLE)
    for block in render.markdown(summary, judgement):
        rep.add(block)
    rep.figures = render.figures(summary)
    rep.data = data_of(summary, judgement)
    rep.verdicts = [{"claim": 3, "verdict": judgement["verdict"], "convention": judgement["convention"],
                     "evidence": f"{NAME}.md#6-verdict-on-claim-3"}]
    return rep


def main(argv=None) -> int:
    return run(sys.modules[__name__], argv)
