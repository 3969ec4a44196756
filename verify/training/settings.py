"""What the training report runs: the profiles, the loss variants of each experiment, the thresholds.

Shared by :mod:`.compute` (what to run), :mod:`.judge` (what the rules compare) and :mod:`.render`.
"""
from __future__ import annotations

from ..experiments.models import ARCHITECTURES

NAME = "training"
TITLE = "Training experiments: Sobolev training without exact derivatives, across architectures, in high dimension"

ACKLEY_VARIANTS = ("L2", "H1-exact", "H1-FDM", "H1-Chebyshev")
ACKLEY_THRESHOLDS = (1e-1, 1e-2, 1e-3, 1e-4, 1e-5)  # the paper's are the last three
PAPER_THRESHOLDS = ACKLEY_THRESHOLDS[2:]
ARCH_VARIANTS = ("L2", "H1-exact", "H2")
ARCH_MODELS = tuple(ARCHITECTURES)  # tanh MLP, Fourier features, SIREN: the order of the tables
HD_VARIANTS = ("L2", "L2 (matched targets)", "H1-exact", "H1-FDM")

PROFILES = {
    "quick": dict(
        dtype="float32", threads=1,  # of every run (torch); the perturbation test changes both
        seeds=2,
        ackley=dict(n=16, n_test=500, steps=150, lr=3e-3, eval_every=10, width=64, depth=4),
        arch=dict(targets=("f1",), n=128, n_test=100, steps=100, lr=1e-3, lbfgs=0, eval_every=10),
        highdim=dict(dims=(10, 100), widths=(1,), n=128, n_test=1000, steps=150, lr=0.05, matched_cap=2048,
                     fd_step=1e-3, eval_every=10),
        ae=dict(epochs=2, seeds=2, evals_per_epoch=2)),
    "standard": dict(
        dtype="float32", threads=1,  # of every run (torch); the perturbation test changes both
        seeds=3,
        ackley=dict(n=32, n_test=2000, steps=1000, lr=3e-3, eval_every=10, width=64, depth=4),
        arch=dict(targets=("f1", "f2", "f3"), n=200, n_test=100, steps=400, lr=1e-3, lbfgs=0, eval_every=10),
        highdim=dict(dims=(10, 100, 1000), widths=(1, 4), n=256, n_test=2000, steps=400, lr=0.05,
                     matched_cap=4096, fd_step=1e-3, eval_every=10),
        ae=dict(epochs=20, seeds=5, evals_per_epoch=2)),
    # the paper's sizes (docs/experiments.md, sections 5-8); meant for a GPU
    "full": dict(
        dtype="float32", threads=1,  # of every run (torch); the perturbation test changes both
        seeds=5,
        ackley=dict(n=100, n_test=10000, steps=50000, lr=1e-4, eval_every=50, width=64, depth=4),
        arch=dict(targets=("f1", "f2", "f3"), n=1000, n_test=100, steps=25000, lr=1e-5, lbfgs=500, eval_every=100,
                  seeds=20),
        highdim=dict(dims=(10, 30, 100, 300, 1000), widths=(1, 2, 4), n=1024, n_test=10000, steps=2000, lr=0.05,
                     matched_cap=1 << 18, fd_step=1e-3, eval_every=20),
        ae=dict(epochs=20, seeds=10, evals_per_epoch=4)),
}
