"""Denoising autoencoder with the Fourier-multiplier Sobolev loss, on 8x8 digits or on MNIST.

Set-up after the paper's (docs/experiments.md, section 8).  The paper uses MNIST; nothing is downloaded at
run time, so by default the 1797 8x8 digits that ship inside scikit-learn stand in, scaled to ``[0, 1]``;
with MNIST on disk (:mod:`.mnist`, ``python -m verify.training --mnist PATH``) the same code runs on its
28x28 images:

* corruption: the fixed pattern ``0.3 sin(2 pi (x + y))`` added to every image, ``(x, y)`` the pixel
  centres ``(i + 1/2) / side`` in the unit square (no clipping);
* model: conv encoder 1 -> 32 -> 64 -> 64 channels (3x3, stride 2: 8x8 -> 4x4 -> 2x2 -> 1x1, or
  28x28 -> 14x14 -> 7x7 -> 4x4), linear bottleneck of 32, mirrored transposed-conv decoder, sigmoid output;
* losses (``AE_LOSSES``): ``MSE`` and ``Sobolev`` = :func:`fourier_multiplier_loss` with ``s = 1``;
* Adam, lr 5e-3, mini-batches of 128 (shuffled by a seeded generator), a number of epochs.

The training loop here is separate from :func:`verify.experiments.loop.train` because the task is
different (mini-batched image-to-image reconstruction, no input derivatives); it too takes the loss
as a parameter and is one loop for both losses.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from .loop import clock

AE_LOSSES = ("MSE", "Sobolev")
SIDE = 8
EVAL_CHUNK = 2000  # test images per forward pass when evaluating


def load_digits_images() -> np.ndarray:
    """scikit-learn's bundled 8x8 digits as float64 ``(1797, 8, 8)`` in ``[0, 1]`` (pixel values / 16)."""
    from sklearn.datasets import load_digits

    return load_digits().images.astype(np.float64) / 16.0


def noise_pattern(side: int = SIDE) -> np.ndarray:
    """``0.3 sin(2 pi (x + y))`` at the pixel centres of a ``side x side`` image of the unit square."""
    c = (np.arange(side) + 0.5) / side
    X, Y = np.meshgrid(c, c, indexing="ij")
    return 0.3 * np.sin(2 * np.pi * (X + Y))


def fourier_multiplier_loss(err: torch.Tensor, s: float = 1.0) -> torch.Tensor:
    """Sobolev norm of an image error by a Fourier multiplier along each image axis.

    For each of the last two axes (length ``n``, the image spans the unit square, so the angular
    frequencies are ``xi_k = 2 pi k``, ``k`` the integer FFT frequencies):
    ``mean |ifft((1 + xi^2)^(s/2) fft(err))|^2``, averaged over the two axes.  Normalisation: means
    over batch and pixels, so with ``s = 0`` it *equals* ``mean(err^2)`` (the MSE) exactly up to
    rounding (``ifft(fft(e)) = e``); for ``s >= 0`` it is ``>= MSE`` (Parseval: every weight
    ``(1 + xi^2)^s >= 1``), and for ``s = 1`` it is a discrete ``H^1`` norm, ``MSE`` plus a
    spectral mean squared derivative along each axis, halved.
    """
    total = 0.0
    for dim in (-1, -2):
        n = err.shape[dim]
        xi = 2 * math.pi * torch.fft.fftfreq(n, d=1.0 / n, device=err.device, dtype=err.dtype)
        shape = [1] * err.dim()
        shape[dim] = n
        mult = ((1 + xi**2) ** (s / 2)).reshape(shape)
        filtered = torch.fft.ifft(mult * torch.fft.fft(err, dim=dim), dim=dim)
        total = total + torch.mean(filtered.real**2 + filtered.imag**2)
    return total / 2


def feature_sides(side: int) -> tuple:
    """The image side after each of the encoder's three stride-2 convolutions (3x3, padding 1):
    ``ceil(side / 2)`` each time: 8 -> 4, 2, 1; 28 -> 14, 7, 4.  The decoder retraces them."""
    sides = [side]
    for _ in range(3):
        sides.append((sides[-1] + 1) // 2)
    return tuple(sides)


class DenoisingAutoencoder(nn.Module):
    """Conv encoder (32, 64, 64 channels, stride 2), bottleneck 32, mirrored decoder; (B, 1, side, side) -> same.

    ``side = 8`` (the digits) reduces the image to 1x1 before the bottleneck, ``side = 28`` (MNIST, the
    paper's size) to 4x4.  Each transposed convolution's ``output_padding`` (0 or 1) makes it land
    exactly on the side its mirror started from (4 -> 7 needs 0, 7 -> 14 needs 1)."""

    def __init__(self, bottleneck: int = 32, side: int = SIDE):
        super().__init__()
        sides = feature_sides(side)
        c = sides[-1]

        def up(c_in, c_out, i):  # from sides[i + 1] back to sides[i]
            pad = sides[i] - (2 * sides[i + 1] - 1)
            return nn.ConvTranspose2d(c_in, c_out, 3, stride=2, padding=1, output_padding=pad)

        self.encoder = nn.Sequential(
            nn.Conv2d(1, 32, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(32, 64, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(64, 64, 3, stride=2, padding=1), nn.ReLU(),
            nn.Flatten(), nn.Linear(64 * c * c, bottleneck))
        self.decoder = nn.Sequential(
            nn.Linear(bottleneck, 64 * c * c), nn.ReLU(), nn.Unflatten(1, (64, c, c)),
            up(64, 64, 2), nn.ReLU(),
            up(64, 32, 1), nn.ReLU(),
            up(32, 1, 0), nn.Sigmoid())

    def forward(self, x):
        return self.decoder(self.encoder(x))


@dataclass
class AEResult:
    """Test curves of one run: ``eval_steps``, plain test ``test_mse`` and ``test_sobolev`` (s = 1) there."""

    loss: str
    seed: int
    eval_steps: np.ndarray
    test_mse: np.ndarray
    test_sobolev: np.ndarray
    seconds: float
    reconstructions: np.ndarray | None = field(default=None, repr=False)
    threads: int = 1  # torch's CPU threads during the run


def split_digits(seed: int, n_test: int = 397) -> tuple:
    """Seeded train/test split of the digits: ``(clean_train, clean_test)``, float64 ``(n, 8, 8)``."""
    images = load_digits_images()
    perm = np.random.default_rng(seed).permutation(len(images))
    return images[perm[n_test:]], images[perm[:n_test]]


def train_autoencoder(loss: str, clean_train: np.ndarray, clean_test: np.ndarray, epochs: int, seed: int, *,
                      lr: float = 5e-3, batch: int = 128, s: float = 1.0, evals_per_epoch: int = 2,
                      device: str = "cpu", n_show: int = 0, dtype=torch.float32) -> AEResult:
    """Train the denoising autoencoder with ``loss`` (``"MSE"`` or ``"Sobolev"``); test curves against steps.

    Inputs are ``clean + noise_pattern(side)``, targets the clean images; ``side`` is the images' (8 for
    the digits, 28 for MNIST).  ``dtype``: of the weights and images (float32 in the reports).  ``n_show``: keep the reconstructions of the first ``n_show`` test images at
    the end.  The test set is evaluated in chunks of :data:`EVAL_CHUNK` images (MNIST's 10000 at once
    would hold ~1 GB of activations).
    """
    if loss not in AE_LOSSES:
        raise ValueError(f"unknown autoencoder loss {loss!r}; expected one of {AE_LOSSES}")
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    side = clean_train.shape[-1]
    net = DenoisingAutoencoder(side=side).to(device=device, dtype=dtype)
    noise = torch.as_tensor(noise_pattern(side), dtype=dtype, device=device)
    ytr = torch.as_tensor(clean_train, dtype=dtype, device=device)[:, None]
    yte = torch.as_tensor(clean_test, dtype=dtype, device=device)[:, None]
    xtr, xte = ytr + noise, yte + noise
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    n = len(ytr)
    per_epoch = math.ceil(n / batch)
    eval_at = {round(per_epoch * (e + (k + 1) / evals_per_epoch)) for e in range(epochs) for k in range(evals_per_epoch)}
    steps, mse, sob = [], [], []

    def evaluate(step):
        with torch.no_grad():
            err = torch.cat([net(xte[i:i + EVAL_CHUNK]) for i in range(0, len(xte), EVAL_CHUNK)]) - yte
            steps.append(step)
            mse.append(float(torch.mean(err**2)))
            sob.append(float(fourier_multiplier_loss(err, s)))

    evaluate(0)
    step, seconds = 0, 0.0
    for _ in range(epochs):
        perm = torch.randperm(n, generator=gen).to(device)
        for i in range(0, n, batch):
            t0 = clock(device)
            idx = perm[i:i + batch]
            err = net(xtr[idx]) - ytr[idx]
            value = torch.mean(err**2) if loss == "MSE" else fourier_multiplier_loss(err, s)
            opt.zero_grad(set_to_none=True)
            value.backward()
            opt.step()
            seconds += clock(device) - t0
            step += 1
            if step in eval_at:
                evaluate(step)
    recon = None
    if n_show:
        with torch.no_grad():
            recon = net(xte[:n_show]).squeeze(1).cpu().numpy().astype(np.float64)
    return AEResult(loss, seed, np.array(steps), np.array(mse), np.array(sob), seconds, recon,
                    threads=torch.get_num_threads())
