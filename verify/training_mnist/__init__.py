"""``python -m verify.training --mnist PATH`` (or ``python -m verify.training_mnist --mnist PATH``): claim 7 on
MNIST -- the paper's denoising autoencoder at 28x28, Sobolev (s = 1) against MSE.

Writes ``training_mnist.md`` / ``training_mnist.json`` and the figures ``training_mnist_*.png``.  MNIST comes from
the user's files (``--mnist PATH`` or ``$SOBOLEV_MNIST``; :mod:`verify.experiments.mnist` reads every common
format); nothing is downloaded.  Profiles: ``quick`` a smoke test, ``standard`` a stated subset that fits the main
job, ``full`` the paper's size (60000 training images, 20 epochs).

Layers: :mod:`.compute` runs the training (one task per loss and seed, :func:`verify.sweep.execute`), :mod:`.judge`
holds the rule, :mod:`.render` the Markdown and figures; :mod:`.settings` the profiles.
"""
from __future__ import annotations

import os
import sys
import time

from ..experiments.mnist import ENV_VAR
from ..report import Context, Report, positive_int, run
from ..sweep import default_workers
from . import compute, judge, render
from .settings import LEVEL, NAME, PAPER, PROFILES, TITLE

__all__ = ["NAME", "TITLE", "PROFILES", "PAPER", "LEVEL", "build", "add_arguments", "check_arguments", "mnist_path", "main",
           "compute", "judge", "render"]


def add_arguments(p) -> None:
    p.add_argument("--mnist", metavar="PATH", default=None,
                   help=f"MNIST on disk: the IDX folder, a torchvision MNIST/raw folder, mnist.npz or mnist.pkl.gz "
                        f"(default: ${ENV_VAR})")
    p.add_argument("--workers", type=positive_int, default=default_workers(), metavar="N",
                   help=f"training runs side by side, one torch thread each (default: one per core, "
                        f"{default_workers()} here); the numbers do not depend on N")


def mnist_path(ctx) -> str:
    """The MNIST path of the run (a ``Context`` or parsed arguments): ``--mnist`` or ``$SOBOLEV_MNIST``;
    ``FileNotFoundError`` when neither is given."""
    path = ctx.mnist or os.environ.get(ENV_VAR)
    if not path:
        raise FileNotFoundError(f"no MNIST given: pass --mnist PATH or set ${ENV_VAR}")
    return str(path)


def check_arguments(args) -> None:
    """Load the files once before any training, so that a wrong path or a foreign file fails at once with
    the loader's message (``FileNotFoundError`` / ``ValueError`` naming the file)."""
    compute.mnist_arrays(mnist_path(args))


def build(ctx: Context) -> Report:
    """compute -> judge -> render."""
    t_start = time.perf_counter()
    prof = PROFILES[ctx.profile]
    summary, images = compute.compute(ctx, mnist_path(ctx), prof)
    j = judge.judge(summary, ctx.profile)
    rep = Report(NAME, TITLE)
    rep.figures = render.figures(summary, images)
    for block in render.markdown(summary, j, ctx):
        rep.add(block)
    rep.verdicts = [{**v, "evidence": f"{NAME}.md"} for v in j["verdicts"]]
    rep.data = {"autoencoder": summary, "interval": j["interval"], "paper_size": j["paper_size"],
                "profile_settings": prof, "total_build_seconds": time.perf_counter() - t_start}
    return rep


def main(argv=None) -> int:
    return run(sys.modules[__name__], argv)
