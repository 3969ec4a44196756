"""``python -m verify.formulas``: the derived formulas, their proofs, and what the paper's Hessians are.

Writes ``formulas.md`` / ``formulas.json`` / ``formulas_single_node_spectra.png``.
Every statement is produced by code: SymPy proofs (differences that simplify to zero),
component-wise checks in ``d = 2, 3`` at 30 digits, and a numeric comparison of the
paper's formulas (typed into NumPy here, independently of :mod:`theory`) with
``numerics.hessian`` for the three Hessians.

Three layers: :mod:`.compute` (the numbers, which are the JSON ``data``), :mod:`.judge`
(verdicts and findings, pure functions of those numbers) and :mod:`.render` (Markdown, figure).
"""
from __future__ import annotations

import sys

from ..report import Context, Report, run
from . import compute, judge, render
from .compute import numeric_identification, paper_formula_numpy, single_node_spectra
from .judge import HESSIAN_NAMES

NAME = "formulas"
TITLE = "Formulas: population losses, gradient fields and Hessians of shallow ReLU networks"
PROFILES = {
    #   points of the component-wise check, random points of the numeric identification, angles of the spectra
    "quick": dict(calculus_points=1, numeric_points=3, spectra_angles=40),
    "standard": dict(calculus_points=3, numeric_points=20, spectra_angles=120),
    "full": dict(calculus_points=3, numeric_points=20, spectra_angles=120),
}

__all__ = ["NAME", "TITLE", "PROFILES", "HESSIAN_NAMES", "build", "compute", "judge", "render", "main",
           "paper_formula_numpy", "numeric_identification", "single_node_spectra"]


def build(ctx: Context) -> Report:
    summary = compute.compute(ctx.seed, PROFILES[ctx.profile])
    return render.render(NAME, TITLE, summary, judge.judge(summary))


def main(argv=None) -> int:
    return run(sys.modules[__name__], argv)
