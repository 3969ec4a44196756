"""Markdown and figures of the MNIST report, from the computed summary and the judgement only."""
from __future__ import annotations

from ..experiments.autoencoder import AE_LOSSES
from ..experiments.summary import fmt_spread
from ..report import fmt
from ..training.render import autoencoder_figures
from .judge import RULE
from .settings import NAME


def figures(summary: dict, images: dict) -> dict:
    curves, recon = autoencoder_figures(summary, images, data_label="MNIST 28x28")
    return {f"{NAME}_curves.png": curves, f"{NAME}_reconstructions.png": recon}


def _data_line(p: dict) -> str:
    d = p["data"]
    digests = ", ".join(f"`{name}` SHA-256 `{h}`" for name, h in d["sha256"].items())
    known = "; recognised by its digest as " + "; ".join(d["recognised_as"]) if d["recognised_as"] else ""
    return (f"Data: MNIST from the user's files (format `{d['source']}`; {digests}{known}); {d['sizes']['train']} training "
            f"and {d['sizes']['test']} test images, pixels / 255. Split: {p['split']}: here {p['n_train']} and "
            f"{p['n_test']}.")


def setup_section(p: dict) -> str:
    return "\n".join([
        "## Set-up", "", _data_line(p), "",
        f"Corruption: {p['noise']}, added to every image (no clipping). Model: conv encoder 1→32→64→64 channels "
        "(3×3, stride 2: 28→14→7→4), linear bottleneck of 32, mirrored transposed-conv decoder, sigmoid output. "
        f"Adam lr {p['lr']}, batch {p['batch']}, {p['epochs']} epochs, seeds {p['seeds']} (the same initial weights "
        "and batch order for both losses). Sobolev loss: the Fourier-multiplier norm "
        "`mean |ifft((1 + ξ²)^{s/2} fft(e))|²` along each image axis, averaged over the two axes, `s = 1`, `ξ = 2πk` "
        f"on the unit square. float32; {p['torch_threads_per_run']} torch thread(s) per run, {p['processes']} "
        "run(s) side by side; seconds are CPU-thread seconds of the training steps."])


def results_section(summary: dict, j: dict) -> str:
    L = summary["losses"]
    lines = ["## Results", "", "| trained with | final test MSE, median [min, max] | per seed | "
             "final test Sobolev norm (s = 1) | training seconds (median) |", "|---|---|---|---|---|"]
    for loss in AE_LOSSES:
        per_seed = ", ".join(fmt(v, ".3e") for v in L[loss]["per_seed_final_test_mse"])
        lines.append(f"| {loss} | {fmt_spread(L[loss]['final_test_mse'], '.3e')} | {per_seed} | "
                     f"{fmt_spread(L[loss]['final_test_sobolev'])} | {fmt(L[loss]['train_seconds']['median'], '.0f')} |")
    lines += ["", f"Returning the noisy input unchanged has test MSE {summary['identity_test_mse']:.3e}.", "",
              f"![test curves](./{NAME}_curves.png)", "", f"![reconstructions](./{NAME}_reconstructions.png)", "",
              "**Finding.** " + j["finding"]]
    return "\n".join(lines)


def verdict_section(j: dict) -> str:
    return ("## Verdict\n\n" + RULE + "\n\n| claim | verdict | convention |\n|---|---|---|\n"
            + "\n".join(f"| {v['claim']} | **{v['verdict']}** | {v['convention']} |" for v in j["verdicts"])
            + "\n\nThe training report (`training.md`) reads this verdict for claim 7 when this report was run at "
              "the paper's size.")


def markdown(summary: dict, j: dict, ctx) -> list:
    intro = ("The paper's denoising-autoencoder experiment on MNIST itself (the training report runs it on "
             "scikit-learn's 8×8 digits, which every installation has). Regenerate with `python -m verify.training "
             f"--mnist PATH --profile {ctx.profile}` (PATH: the IDX folder, a torchvision `MNIST/raw` folder, Keras' "
             "`mnist.npz` or the classic `mnist.pkl.gz`; see `docs/mnist.md`). Nothing is downloaded.")
    return [intro, setup_section(summary["config"]), results_section(summary, j), verdict_section(j)]
