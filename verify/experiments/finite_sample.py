"""Finite-sample training of the ReLU student by real autograd: full-batch gradient descent or SGD.

The student ``g(x; W) = sum_j relu(w_j . x)`` is trained on fixed samples ``X`` towards the teacher
``W*`` with the empirical loss of :func:`numerics.mc.per_sample_losses` (the Sobolev part built by
autograd, ``grad_x g`` with ``create_graph=True``: what a practitioner writes).  Its population limit
is :func:`numerics.flows.population_gd`.
"""
from __future__ import annotations

import numpy as np
import torch

from numerics import mc


def empirical_loss(W: torch.Tensor, W_star: torch.Tensor, X: torch.Tensor, part: str) -> torch.Tensor:
    """Sample mean of ``l_L`` or ``l_H`` on the samples ``X``: the practitioner's loss of
    :func:`numerics.mc.per_sample_losses` (the Sobolev part by autograd, ``grad_x g`` with
    ``create_graph=True``); for ``L`` the input gradients are not built."""
    if part == "L":
        return 0.5 * ((torch.relu(X @ W.T).sum(1) - torch.relu(X @ W_star.T).sum(1)) ** 2).mean()
    if part != "H":
        raise ValueError(f"part must be 'L' or 'H'; got {part!r}")
    return mc.per_sample_losses(W, W_star, X)["H"].mean()


def empirical_gradient(W, W_star, X, part: str) -> torch.Tensor:
    """``d/dW`` of :func:`empirical_loss` by autograd (the full-batch gradient descent direction)."""
    W = torch.as_tensor(W, dtype=X.dtype, device=X.device).detach().clone().requires_grad_(True)
    W_star = torch.as_tensor(W_star, dtype=X.dtype, device=X.device)
    (grad,) = torch.autograd.grad(empirical_loss(W, W_star, X, part), W)
    return grad


def train_finite_sample(W0, W_star, X: torch.Tensor, part: str, lr: float, steps: int, batch: int | None = None,
                        seed: int = 0) -> np.ndarray:
    """Gradient descent (``batch=None``: full batch) or SGD (minibatches of ``batch`` samples drawn with
    replacement, indices from a CPU generator seeded with ``seed``: the same on every device) on the
    samples ``X``; returns ``W_k``, ``k = 0..steps``."""
    W = torch.as_tensor(W0, dtype=X.dtype, device=X.device).clone()
    Wst = torch.as_tensor(W_star, dtype=X.dtype, device=X.device)
    gen = torch.Generator().manual_seed(int(seed))
    out = [W.cpu().numpy().copy()]
    for _ in range(steps):
        Xb = X if batch is None else X[torch.randint(len(X), (batch,), generator=gen).to(X.device)]
        W = W - lr * empirical_gradient(W, Wst, Xb, part)
        out.append(W.cpu().numpy().copy())
    return np.array(out)
