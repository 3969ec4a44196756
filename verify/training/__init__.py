"""``python -m verify.training``: the paper's training experiments (docs/claims.md, claims 5--7; docs/experiments.md, sections 5--8).

Writes ``training.md`` / ``training.json`` and the figures ``training_*.png``.

1. **Numerical derivatives** (claim 5): a tanh MLP fitted to the 2-D Ackley function with ``L2``,
   ``H1-exact``, ``H1-FDM`` and ``H1-Chebyshev``; steps and seconds until the test MSE first falls
   below each threshold.
2. **Architectures** (claim 7, supporting): ``f1, f2, f3`` on ``[-1, 1]`` with a tanh MLP, a
   Fourier-feature network and a SIREN, trained with ``L2``, ``H1-exact`` and ``H2``.
3. **High dimension** (claim 6): the ReLU student--teacher network ``sum_j relu(w_j . x)``,
   ``x ~ N(0, I_d)``, with the teacher's input gradient exact and by central differences, against
   ``L2`` with the same samples and ``L2`` with as many target numbers; error and cost against ``d``.
4. **Denoising autoencoder** (claim 7): scikit-learn's 8x8 digits, Fourier-multiplier Sobolev loss
   against MSE.

All runs: float32, one CPU thread per run (``torch.set_num_threads(1)``, restored afterwards), seeds
derived from ``ctx.seed``; within an experiment every variant starts from the same seeds (the same
initial weights), so comparisons are paired.  Curves are medians over seeds with the min--max band.

Layers: :mod:`.compute` runs the experiments and returns plain data (the training loop itself is in
:mod:`verify.experiments`), :mod:`.judge` turns that data into the verdicts and every sentence that
states a finding, :mod:`.render` writes the Markdown and the figures; :mod:`.settings` holds the
profiles and the variants.
"""
from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

from ..report import Context, Report
from . import compute, judge, render
from .judge import COMPARABLE, LOW_ERROR, STALL_FRACTION, VERDICT_RULES
from .render import COLORS
from .settings import (ACKLEY_THRESHOLDS, ACKLEY_VARIANTS, ARCH_MODELS, ARCH_VARIANTS, HD_VARIANTS, NAME,
                       PAPER_THRESHOLDS, PROFILES, TITLE)

__all__ = ["NAME", "TITLE", "PROFILES", "build", "add_arguments", "ACKLEY_VARIANTS", "ACKLEY_THRESHOLDS", "PAPER_THRESHOLDS",
           "ARCH_VARIANTS", "ARCH_MODELS", "HD_VARIANTS", "COMPARABLE", "LOW_ERROR", "STALL_FRACTION",
           "VERDICT_RULES", "COLORS", "compute", "judge", "render"]


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    return obj


def add_arguments(p) -> None:
    """``--mnist`` appears in the help; ``verify/training/__main__.py`` hands a command line that has it to
    :mod:`verify.training_mnist` (the MNIST autoencoder report, its own files) before this parser runs."""
    p.add_argument("--mnist", metavar="PATH", default=None,
                   help="instead of this report, run the paper's autoencoder on MNIST from PATH (IDX folder, "
                        "torchvision MNIST/raw folder, mnist.npz or mnist.pkl.gz) and write training_mnist.md; "
                        "see python -m verify.training_mnist --help")


MNIST_REPORT = "training_mnist"  # the MNIST run claim 7 reads when there is one (verify.training_mnist)


def mnist_run(out: Path) -> tuple:
    """``(data, where)`` of the MNIST autoencoder run claim 7 reads, or ``(None, None)``: the run in
    ``<out>/full/`` or ``<out>/`` (the full profile's first), not a quick smoke run.  ``where``: the file
    relative to ``out`` and the SHA-256 of its bytes, for the provenance of the verdict."""
    for rel in (f"full/{MNIST_REPORT}.json", f"{MNIST_REPORT}.json"):
        path = Path(out) / rel
        if path.exists():
            raw = path.read_bytes()
            payload = json.loads(raw)
            if payload["provenance"]["profile"] != "quick":
                return payload["data"], {"file": rel, "sha256": hashlib.sha256(raw).hexdigest()}
    return None, None


def build(ctx: Context) -> Report:
    """compute -> judge -> render."""
    t_start = time.perf_counter()
    prof = PROFILES[ctx.profile]
    summary = compute.compute(ctx, prof)
    mnist, mnist_where = mnist_run(ctx.out) if ctx.profile != "quick" else (None, None)
    verdict = judge.judge(summary, ctx.profile, ctx.device, mnist)
    rep = Report(NAME, TITLE)
    rep.figures = render.figures(summary)
    for block in render.markdown(summary, verdict, ctx, prof, mnist_where):
        rep.add(block)
    rep.verdicts = [{**v, "evidence": f"{NAME}.md"} for v in verdict["verdicts"]]
    rep.data = {"ackley": summary["ackley"], "claim5_comparison": verdict["ackley"]["rows"],
                "architectures": {**summary["architectures"],
                                  "wins_over_L2": verdict["architectures"]["wins_over_L2"]},
                "high_dimension": {**summary["high_dimension"],
                                   "summary_at_largest_d": verdict["high_dimension"]["summary_at_largest_d"]},
                "autoencoder": summary["autoencoder"], "claim7_mnist_run": mnist_where,
                "profile_settings": _jsonable(prof),
                "total_build_seconds": time.perf_counter() - t_start}
    return rep
