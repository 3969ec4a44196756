"""What every Monte-Carlo witness shares: seeds, devices, memory, running moments, estimate equality.

:mod:`numerics.mc` (the paper's model) and :mod:`numerics.mc_family` (the model family) both draw
seeded samples in chunks on a torch device and accumulate means and standard errors; the pieces they
must agree on live here, below both, so that neither witness imports the other's module for them
(``numerics.mc`` dispatches to ``numerics.mc_family``; the reverse arrow would be an import cycle).

* :func:`check_seed` / :data:`SEED_RANGE`: which seeds are valid (each its own sample stream);
* :func:`torch_device`: the device to sample on;
* :func:`available_bytes`: the free memory the chunk sizes are budgeted from;
* :class:`ShiftedMoments`: the one accumulator of means and variances;
* :func:`dicts_equal`: the value equality of the estimates' dicts of arrays.

``numerics.mc`` re-exports ``check_seed``, ``SEED_RANGE``, ``torch_device`` and ``ShiftedMoments``,
where the tests, benchmarks and docs import them.
"""
from __future__ import annotations

import os

import numpy as np
import torch


SEED_RANGE = (0, 2**32 - 1)


def check_seed(seed) -> int:
    """``seed`` as a Python ``int`` if it is a valid seed for the Monte-Carlo witnesses; else ``ValueError``.

    Valid seeds are the integers (``int`` or NumPy integer, not ``bool``) in
    ``SEED_RANGE = [0, 2**32 - 1]``; they go to ``torch.Generator.manual_seed`` unchanged.
    Why the range: ``manual_seed`` takes a 64-bit value, but the CPU generator seeds its
    Mersenne Twister (mt19937) with the low 32 bits only, so on the CPU ``seed`` and
    ``seed + 2**32`` (e.g. 0, 2**32 and 2**63) give the same samples, and ``2**64`` and
    beyond overflow in the C layer.  Inside the range every seed gives its own stream (the
    same stream as before this check existed); outside it there is no distinct stream to
    give on the CPU, so the seed is refused rather than silently aliased.  Negative seeds,
    booleans, floats (even integral ones) and strings are refused too.

    Pure and cheap: meant also for command lines that validate ``--seed`` (and any seeds
    they derive from it) before any work starts.
    """
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)):
        raise ValueError(f"seed must be an integer in [{SEED_RANGE[0]}, 2**32 - 1]; got {seed!r}")
    seed = int(seed)
    if not SEED_RANGE[0] <= seed <= SEED_RANGE[1]:
        raise ValueError(
            f"seed must be in [0, 2**32 - 1] = [0, {SEED_RANGE[1]}]; got {seed}: torch's CPU generator uses only "
            "the low 32 bits of a seed, so larger seeds would repeat the samples of smaller ones"
        )
    return seed


def torch_device(device) -> torch.device:
    """The ``torch.device`` to sample on: ``None`` = CUDA when present, else the CPU; ``ValueError``
    for an unknown device or CUDA without a GPU.  (The reports' ``--device auto|cpu|cuda`` is
    :func:`verify.report.resolve_device`, which returns the name.)"""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"unknown device {device!r}: {exc}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} was requested but no CUDA GPU is available")
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"device must be 'cpu' or 'cuda'; got {device!r}")
    return dev


def available_bytes(dev: torch.device) -> int:
    """Free memory on ``dev`` in bytes (the budget the chunk sizes are taken from): free GPU memory on CUDA,
    available physical pages on a CPU, 8 GiB when the system cannot tell."""
    if dev.type == "cuda":
        return int(torch.cuda.mem_get_info(dev)[0])
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return 8 << 30


class ShiftedMoments:
    """Running mean and variance of a quantity (a tensor of any shape) fed in chunks: the one
    accumulator of every Monte-Carlo witness (:mod:`numerics.mc`, :mod:`numerics.mc_family`).

    Sums are kept about a fixed shift ``c``, the first chunk's mean: ``S1 = sum (g - c)``,
    ``S2 = sum (g - c)^2``, and the variance is ``(S2 - S1^2/n) / (n - 1)``.  With
    :meth:`add_samples` every sample is shifted before it is squared, so a mean large against the
    spread costs no digits (relative error ``~ eps``; unshifted it is ``~ eps mean^2/var``).
    :meth:`add` takes a chunk's raw sum and sum of squares instead (the fused engine of
    :func:`numerics.mc.monte_carlo` forms them in one pass): the shift then keeps the chunks from adding
    cancellation, but each chunk's own sum of squares carries ``~ eps mean^2/var`` relative.
    """

    def __init__(self):
        self.n, self.shift, self.s1, self.s2 = 0, None, None, None

    def add_samples(self, values: torch.Tensor) -> None:
        """Add the samples ``values[0], values[1], ...`` (shifted before squaring)."""
        if self.shift is None:
            self.shift = values.mean(0).clone()
            self.s1, self.s2 = torch.zeros_like(self.shift), torch.zeros_like(self.shift)
        dev = values - self.shift
        self.s1 += dev.sum(0)
        self.s2 += (dev * dev).sum(0)
        self.n += values.shape[0]

    def add(self, total: torch.Tensor, total_sq: torch.Tensor, n: int) -> None:
        """Add a chunk of ``n`` samples given by their raw sum and sum of squares."""
        if self.shift is None:
            self.shift = (total / n).clone()
            self.s1, self.s2 = torch.zeros_like(total), torch.zeros_like(total_sq)
        c = self.shift
        self.s1 += total - n * c
        self.s2 += total_sq - 2 * c * total + n * c * c
        self.n += n

    def mean(self) -> torch.Tensor:
        return self.shift + self.s1 / self.n

    def variance(self) -> torch.Tensor:
        return torch.clamp((self.s2 - self.s1 * self.s1 / self.n) / (self.n - 1), min=0)

    def standard_error(self) -> torch.Tensor:
        return torch.sqrt(self.variance() / self.n)


def dicts_equal(a: dict, b: dict) -> bool:
    """Same keys and, per key, equal values: arrays by shape and value, scalars by ``==``."""
    return a.keys() == b.keys() and all(np.array_equal(a[key], b[key]) for key in a)
