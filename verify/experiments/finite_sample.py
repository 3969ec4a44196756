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


# ----------------------------------------------------------------------------- many starts at once
def _batched_teacher(W_star: torch.Tensor, X: torch.Tensor, part: str) -> tuple:
    """The teacher's outputs ``g*`` (``n``) and, for ``H``, input gradients ``grad_x g*`` (``n x d``) on ``X``,
    built exactly as :func:`numerics.mc.per_sample_losses` builds them (autograd, then detached); shared by
    every start, so computed once per sample set."""
    if part == "L":
        return torch.relu(X @ W_star.T).sum(1), None
    x = X.detach().requires_grad_(True)
    g_star = torch.relu(x @ W_star.T).sum(-1)
    (dg_star,) = torch.autograd.grad(g_star.sum(), x, create_graph=False)
    return g_star.detach(), dg_star.detach()


def _batched_gradient(W: torch.Tensor, X: torch.Tensor, part: str, teacher: tuple) -> torch.Tensor:
    """``d/dW_b`` of the empirical loss of every start ``b`` (``W``: ``B x K x d``) on the same samples ``X``.

    The per-start losses are built with the practitioner's autograd: ``X`` is expanded to ``B x n x d``
    (a view: no copy) and made a leaf that requires grad, so ``autograd.grad(g.sum(), Xb,
    create_graph=True)`` returns every start's own input gradient ``grad_x g(x; W_b)`` (the starts do
    not mix: ``g[b]`` depends on ``Xb[b]`` only).  This is the same chain of autograd operations as
    :func:`empirical_loss` per start, with a batch dimension added.  ``torch.func.vmap`` is not used:
    ``torch.autograd.grad`` cannot run inside it, and rewriting the input gradient with
    ``torch.func.grad`` would no longer be the code a practitioner writes.  The starts are independent,
    so differentiating the *sum* of the per-start mean losses gives each start exactly its own gradient
    (the backward of the sum passes ``1.0`` to each).
    """
    g_star, dg_star = teacher
    W = W.detach().requires_grad_(True)
    B, n = W.shape[0], X.shape[0]
    if part == "L":
        g = torch.relu(X @ W.transpose(1, 2)).sum(-1)  # (B, n)
        loss = 0.5 * ((g - g_star) ** 2).mean(-1)
    else:
        Xb = X.detach().expand(B, n, X.shape[1]).requires_grad_(True)
        g = torch.relu(Xb @ W.transpose(1, 2)).sum(-1)  # (B, n)
        (dg,) = torch.autograd.grad(g.sum(), Xb, create_graph=True)  # (B, n, d): per start
        loss = mc.sobolev_losses(g, g_star, dg, dg_star)["H"].mean(-1)  # (B,)
    (grad,) = torch.autograd.grad(loss.sum(), W)
    return grad


def _check_count(value, name: str, least: int) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < least:
        raise ValueError(f"{name} must be an integer >= {least}; got {value!r}")
    return int(value)


def _check_real(value, name: str, positive: bool) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"{name} must be a real number; got {value!r}")
    value = float(value)
    if not np.isfinite(value) or (value <= 0 if positive else value < 0):
        raise ValueError(f"{name} must be finite and {'> 0' if positive else '>= 0'}; got {value!r}")
    return value


def train_batch(W0, W_star, X: torch.Tensor, part: str, lr: float, steps: int, batch: int | None = None,
                seed: int = 0, grad_tol: float = 0.0) -> dict:
    """Train ``B`` independent starts ``W0`` (``B x K x d``) on the same samples ``X`` at once.

    Every start follows exactly the algorithm of :func:`train_finite_sample`: gradient descent
    (``batch=None``) or SGD with minibatches of ``batch`` sample indices drawn with replacement from one
    CPU generator seeded with ``seed``.  All starts share that index sequence: start ``i`` sees the same
    minibatches as ``train_finite_sample(W0[i], ..., seed=seed)``.  The direction followed is the autograd
    gradient in ``W`` of the **empirical** loss (for ``H``, the Sobolev part from ``grad_x g`` built with
    ``create_graph=True``): as ``n -> infinity`` its mean is the population **mean field**
    (:func:`numerics.flows.population_gd`), not the true gradient of the population loss ``H`` (autograd
    ignores the jumps of ``l_J`` where an indicator flips).  See :func:`_batched_gradient` for how the
    starts are batched.

    ``grad_tol`` (full batch only; ignored for SGD, where every start runs ``steps`` steps): a start stops
    once the Frobenius norm of its own empirical gradient is ``<= grad_tol`` (before the step that would
    use it); ``0`` means never stop early.  Iterates are not stored.

    Returns ``{"W": (B, K, d) final weights, "steps": (B,) int steps taken, "grad_norm": (B,) Frobenius
    norm of each start's full-batch empirical gradient at its final weights}`` (NumPy arrays).
    """
    if not isinstance(X, torch.Tensor) or X.ndim != 2 or X.shape[0] < 1 or X.shape[1] < 1:
        raise ValueError(f"X must be a torch tensor of shape (n, d) with n, d >= 1; got "
                         f"{tuple(X.shape) if isinstance(X, torch.Tensor) else type(X).__name__}")
    if part not in ("L", "H"):
        raise ValueError(f"part must be 'L' or 'H'; got {part!r}")
    X = X.detach()
    W = torch.as_tensor(W0, dtype=X.dtype, device=X.device).detach().clone()
    Wst = torch.as_tensor(W_star, dtype=X.dtype, device=X.device).detach()
    if W.ndim != 3 or 0 in W.shape:
        raise ValueError(f"W0 must be a non-empty array of shape (B, K, d) (B starts); got shape {tuple(W.shape)}")
    if Wst.ndim != 2 or 0 in Wst.shape:
        raise ValueError(f"W_star must be a non-empty array of shape (K*, d); got shape {tuple(Wst.shape)}")
    d = X.shape[1]
    if W.shape[2] != d or Wst.shape[1] != d:
        raise ValueError(f"input dimensions differ: W0 {tuple(W.shape)} (B, K, d), W_star {tuple(Wst.shape)} "
                         f"(K*, d), X {tuple(X.shape)} (n, d)")
    if not (torch.isfinite(W).all() and torch.isfinite(Wst).all() and torch.isfinite(X).all()):
        raise ValueError("W0, W_star and X must be finite")
    lr = _check_real(lr, "lr", positive=True)
    steps = _check_count(steps, "steps", 0)
    if batch is not None:
        batch = _check_count(batch, "batch", 1)
    grad_tol = _check_real(grad_tol, "grad_tol", positive=False)

    B = W.shape[0]
    taken = np.zeros(B, dtype=np.int64)
    if batch is None:
        teacher = _batched_teacher(Wst, X, part)
        active = torch.arange(B, device=X.device)
        for _ in range(steps):
            if len(active) == 0:
                break
            grad = _batched_gradient(W[active], X, part, teacher)
            if grad_tol > 0:
                moving = torch.linalg.vector_norm(grad, dim=(1, 2)) > grad_tol
                active, grad = active[moving], grad[moving]
                if len(active) == 0:
                    break
            W[active] = W[active] - lr * grad
            taken[active.cpu().numpy()] += 1
    else:
        gen = torch.Generator().manual_seed(int(seed))
        for _ in range(steps):
            Xb = X[torch.randint(len(X), (batch,), generator=gen).to(X.device)]
            W = W - lr * _batched_gradient(W, Xb, part, _batched_teacher(Wst, Xb, part))
        taken[:] = steps
    grad = _batched_gradient(W, X, part, _batched_teacher(Wst, X, part))
    return {"W": W.cpu().numpy(), "steps": taken,
            "grad_norm": torch.linalg.vector_norm(grad, dim=(1, 2)).cpu().numpy()}
