"""The rule of the MNIST report: from the per-seed test MSE of each loss to claim 7's verdict on MNIST.

Pure functions of the summary of :mod:`.compute` (or of ``training_mnist.json``'s ``data``).  The rule reads
a distribution, not a crossing: the per-seed log ratio ``log(Sobolev MSE / MSE MSE)`` (paired: both losses
start from the same seed) and its Student-t interval at :data:`~.settings.LEVEL`.
"""
from __future__ import annotations

import math


from .. import intervals
from ..report import fmt
from .settings import LEVEL, PAPER

RULE = (f"**Claim 7 on MNIST** (rule `mnist_verdict`): for each seed the log ratio of the final test MSE of the "
        f"Sobolev-trained and the MSE-trained autoencoder (paired: same initial weights and batch order); its "
        f"two-sided {LEVEL:.0%} Student-t interval over the seeds. *Confirmed* if the whole interval is below 0 "
        f"(Sobolev's test MSE lower) and the run is at the paper's size ({PAPER['n_train']} training images, "
        f"{PAPER['n_test']} test images, {PAPER['epochs']} epochs), *confirmed with qualifications* if below 0 on a "
        "smaller run, *refuted* if the whole interval is above 0, *inconclusive* if it contains 0, if a run did "
        "not finish finite or with fewer than 2 seeds. One interval, so the family-wise level is the interval's. "
        "The `quick` profile is a smoke test: *inconclusive*, with what the rule would give in brackets.")


def log_ratio_interval(sobolev: list, mse: list, level: float = LEVEL) -> dict | None:
    """Per-seed ``log(sobolev / mse)``, its mean and Student-t interval (:func:`verify.intervals.log_ratio_interval`),
    and the seeds Sobolev won; ``None`` when a run is missing or not finite or fewer than 2 seeds (no interval)."""
    interval = intervals.log_ratio_interval(sobolev, mse, level)
    return None if interval is None else {**interval, "sobolev_lower": sum(r < 0 for r in interval["log_ratios"])}


def worse_than_input(summary: dict) -> dict:
    """Per loss, how many seeds ended with a test MSE above that of returning the noisy input unchanged (a run that
    learned less than the identity map: collapsed), as ``"k/n"``; a run that did not end finite counts too."""
    out = {}
    for loss, L in summary["losses"].items():
        finals = L["per_seed_final_test_mse"]
        bad = sum(1 for v in finals if v is None or v > summary["identity_test_mse"])
        out[loss] = f"{bad}/{len(finals)}"
    return out


def at_paper_size(config: dict) -> bool:
    return (config["n_train"] >= PAPER["n_train"] and config["n_test"] >= PAPER["n_test"]
            and config["epochs"] >= PAPER["epochs"])


def mnist_verdict(interval: dict | None, paper_size: bool) -> str:
    if interval is None:
        return "inconclusive"
    if interval["high"] < 0:
        return "confirmed" if paper_size else "confirmed with qualifications"
    return "refuted" if interval["low"] > 0 else "inconclusive"


def judge(summary: dict, profile: str) -> dict:
    """The interval, the verdict (claim 7), the finding and the convention."""
    p, L = summary["config"], summary["losses"]
    iv = log_ratio_interval(L["Sobolev"]["per_seed_final_test_mse"], L["MSE"]["per_seed_final_test_mse"])
    paper = at_paper_size(p)
    verdict = mnist_verdict(iv, paper)
    size = (f"{p['n_train']} training and {p['n_test']} test images, {p['epochs']} epochs, {len(p['seeds'])} seeds"
            + (" (the paper's size)" if paper else " (smaller than the paper's)"))
    if iv is None:
        finding = f"No interval: a run did not end finite, or fewer than 2 seeds ({size})."
    else:
        finding = (f"Sobolev/MSE ratio of the final test MSE: geometric mean {math.exp(iv['mean']):.3f}, "
                   f"{iv['level']:.0%} interval [{math.exp(iv['low']):.3f}, {math.exp(iv['high']):.3f}]; Sobolev lower "
                   f"on {iv['sobolev_lower']}/{iv['n']} seeds; medians {fmt(L['Sobolev']['final_test_mse']['median'], '.3e')}"
                   f" (Sobolev) and {fmt(L['MSE']['final_test_mse']['median'], '.3e')} (MSE); runs ending worse than "
                   f"returning the noisy input: " + ", ".join(f"{k} {v}" for k, v in worse_than_input(summary).items())
                   + f"; {size}.")
    convention = f"denoising autoencoder on MNIST 28×28: {finding}"
    row = {"claim": 7, "verdict": verdict, "convention": convention}
    if profile == "quick":
        row = {**row, "verdict": "inconclusive",
               "convention": f"quick smoke-test profile, too small to judge (rule would give: {verdict}); {convention}"}
    return {"interval": iv, "paper_size": paper, "verdict": row["verdict"], "finding": finding, "verdicts": [row]}
