"""What the MNIST autoencoder report runs: its profiles and the level of its interval.

Shared by :mod:`.compute` (what to run), :mod:`.judge` (what the rule reads) and :mod:`.render`.
"""
from __future__ import annotations

NAME = "training_mnist"
TITLE = "Claim 7 on MNIST: the paper's denoising autoencoder at 28×28, Sobolev (s = 1) against MSE"

# n_train / n_test: the first images of MNIST's training set (60000: for the classic pickle its train then its
# valid split, which together are the original training set in order) and of its test set (10000); None: all.
PROFILES = {
    "quick": dict(n_train=256, n_test=128, epochs=1, seeds=2, evals_per_epoch=2),  # a smoke test
    # a subset that fits the main job's 10 minutes beside the other reports (~40 s on 2 cores)
    "standard": dict(n_train=3000, n_test=1000, epochs=5, seeds=3, evals_per_epoch=2),
    "full": dict(n_train=None, n_test=None, epochs=20, seeds=4, evals_per_epoch=1),  # the paper's size
}
PAPER = dict(n_train=60000, n_test=10000, epochs=20)  # what "the paper's size" means for the verdict
LEVEL = 0.95  # two-sided confidence of the t-interval the rule reads
N_SHOW = 8  # test images in the reconstructions figure
