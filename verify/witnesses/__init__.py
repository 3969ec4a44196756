"""``python -m verify.witnesses``: closed forms against Monte-Carlo and quadrature witnesses.

Writes ``witnesses.md`` / ``witnesses.json`` / ``witnesses_convergence.png`` /
``witnesses_z_scores.png``.

* Closed forms (``numerics.loss``, ``numerics.gradient(..., "mean")``) against the
  Monte-Carlo witness (``numerics.monte_carlo``) for a fixed, seeded set of cases: z-scores,
  judged at a family-wise level ``ALPHA`` by Bonferroni over every entry compared.
* Pair expectations against the mpmath quadrature witness (``numerics.quadrature``):
  digits agreed, including angles near 0 and pi.
* Mean field against true gradient of ``J`` and ``H``: the closed forms of both fields against
  the Monte-Carlo central-difference witness of the true gradient (common random numbers).
* The paper's single-node ``nabla^2 H`` against the Monte-Carlo Jacobian of the mean field
  (central differences of the MC mean field, common random numbers).

Three layers: :mod:`.compute` (z-scores, digits, errors), :mod:`.judge` (every decision, the
verdict and the findings, pure functions of those numbers) and :mod:`.render` (JSON data,
Markdown, figures).
"""
from __future__ import annotations

import sys

from ..report import Context, Report, run
from . import compute, judge, render
from .compute import cases
from .judge import ALPHA, REQUIRED_DIGITS, bonferroni_z

NAME = "witnesses"
TITLE = "Witnesses: closed forms against Monte-Carlo and quadrature"

PROFILES = {
    #            MC samples per case, FD-witness samples, quadrature angles, convergence max n
    "quick": dict(n=20_000, n_fd=20_000, n_jac=20_000, angles=("1e-8", "0.5", "3.14159264358979"), conv=10**4),
    "standard": dict(n=1_000_000, n_fd=400_000, n_jac=400_000,
                     angles=("1e-8", "1e-3", "0.5", "1.5707963267948966", "2.5", "3.1405926535897932", "3.14159264358979"),
                     conv=10**6),
    "full": dict(n=100_000_000, n_fd=10_000_000, n_jac=10_000_000,
                 angles=("1e-12", "1e-8", "1e-3", "0.1", "0.5", "1.5707963267948966", "2.5", "3.0",
                         "3.1405926535897932", "3.14159264358979", "3.141592653589"), conv=10**8),
}

__all__ = ["NAME", "TITLE", "PROFILES", "ALPHA", "REQUIRED_DIGITS", "build", "cases", "compute", "judge",
           "render", "bonferroni_z", "main"]


def build(ctx: Context) -> Report:
    summary = compute.compute(ctx, PROFILES[ctx.profile])
    return render.render(NAME, TITLE, summary, judge.judge(summary))


def main(argv=None) -> int:
    return run(sys.modules[__name__], argv)
