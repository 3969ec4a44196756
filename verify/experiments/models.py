"""The networks of the training experiments (PyTorch).

* :func:`tanh_mlp` -- fully connected, tanh activations (Ackley: 2 -> 64 x 4 -> 1; 1-D: 1 -> 64 x 3 -> 1).
* :class:`FourierFeatureNet` -- first layer ``sin(2 pi Linear(x))`` (trainable frequencies), then a
  tanh MLP (docs/experiments.md, section 6).
* :class:`Siren` -- sine activations with the initialisation of Sitzmann et al., *Implicit neural
  representations with periodic activation functions* (NeurIPS 2020): ``sin(omega_0 (W x + b))``,
  first layer ``W ~ U(-1/n, 1/n)``, later layers ``W ~ U(-sqrt(6/n)/omega_0, sqrt(6/n)/omega_0)``,
  ``omega_0 = 30``, linear output.
* :class:`ReluStudent` -- ``g(x; W) = sum_j relu(w_j . x)`` of docs/theory.md, section 1.

Every model maps ``(n, d)`` to ``(n,)`` so the training loop can take input derivatives with autograd.
"""
from __future__ import annotations

import math

import torch
from torch import nn


class _Squeeze(nn.Module):
    def __init__(self, body: nn.Module):
        super().__init__()
        self.body = body

    def forward(self, x):
        return self.body(x).squeeze(-1)


def tanh_mlp(d_in: int, width: int = 64, depth: int = 3) -> nn.Module:
    """``d_in -> width (x depth hidden layers, tanh) -> 1``; PyTorch's default initialisation."""
    layers, n = [], d_in
    for _ in range(depth):
        layers += [nn.Linear(n, width), nn.Tanh()]
        n = width
    layers.append(nn.Linear(n, 1))
    return _Squeeze(nn.Sequential(*layers))


class FourierFeatureNet(nn.Module):
    """``sin(2 pi (B x + c))`` then ``depth - 1`` tanh layers, linear output. ``B`` starts at ``N(0, scale^2)``."""

    def __init__(self, d_in: int = 1, width: int = 64, depth: int = 3, scale: float = 5.0):
        super().__init__()
        self.features = nn.Linear(d_in, width)
        with torch.no_grad():
            self.features.weight.normal_(0.0, scale)
            self.features.bias.uniform_(0.0, 1.0)
        self.head = tanh_mlp(width, width, depth - 1)

    def forward(self, x):
        return self.head(torch.sin(2 * math.pi * self.features(x)))


class _SineLayer(nn.Module):
    def __init__(self, n_in: int, n_out: int, omega_0: float, first: bool):
        super().__init__()
        self.omega_0 = omega_0
        self.linear = nn.Linear(n_in, n_out)
        bound = 1.0 / n_in if first else math.sqrt(6.0 / n_in) / omega_0
        with torch.no_grad():
            self.linear.weight.uniform_(-bound, bound)

    def forward(self, x):
        return torch.sin(self.omega_0 * self.linear(x))


class Siren(nn.Module):
    """SIREN with ``depth`` sine layers of ``width`` and a linear output (Sitzmann et al. 2020)."""

    def __init__(self, d_in: int = 1, width: int = 64, depth: int = 3, omega_0: float = 30.0):
        super().__init__()
        layers = [_SineLayer(d_in, width, omega_0, first=True)]
        layers += [_SineLayer(width, width, omega_0, first=False) for _ in range(depth - 1)]
        self.body = nn.Sequential(*layers)
        self.out = nn.Linear(width, 1)
        with torch.no_grad():
            bound = math.sqrt(6.0 / width) / omega_0
            self.out.weight.uniform_(-bound, bound)

    def forward(self, x):
        return self.out(self.body(x)).squeeze(-1)


class ReluStudent(nn.Module):
    """``g(x; W) = sum_j relu(w_j . x)``, ``W`` (K, d) initialised ``N(0, 1/d)`` (rows of norm about 1)."""

    def __init__(self, K: int, d: int):
        super().__init__()
        self.W = nn.Parameter(torch.randn(K, d) / math.sqrt(d))

    def forward(self, x):
        return torch.relu(x @ self.W.T).sum(-1)


ARCHITECTURES = {
    "tanh MLP": lambda: tanh_mlp(1, 64, 3),
    "Fourier features": lambda: FourierFeatureNet(1, 64, 3),
    "SIREN": lambda: Siren(1, 64, 3),
}
