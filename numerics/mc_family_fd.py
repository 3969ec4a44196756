"""Finite-difference Monte-Carlo witnesses of the model family's Hessians (common random numbers).

Independent of the closed forms: every number comes from per-sample losses and per-sample autograd
gradients (:func:`numerics.mc_family.per_sample_family`) at samples ``x = cov^(1/2) z`` drawn once and
reused at every perturbed point, so that each difference quotient is a per-sample quantity whose mean and
standard error are those of an ordinary sample mean.

* :func:`gradient_fd`: the **true gradient** (of the population loss), by central differences of the
  per-sample loss;
* :func:`hessian_fd`: the **Hessian of the population loss**, by second central differences of the
  per-sample loss (the average of the per-sample quotients is the quotient of the population loss: a
  witness of its Hessian up to the ``O(h^2)`` bias of the formula);
* :func:`mean_jacobian_fd`: the **Jacobian of the mean field**, by central differences of the per-sample
  autograd gradient (its average is the mean field; the quotient of the mean field is the witness).

Parameters are ``W`` (entries ``i d + k``) and, with ``train_output=True``, the output weights ``a`` after
them.  Steps are relative: ``h |w_i|`` for the entries of row ``i``, ``h |a_i|`` for ``a_i``.  The per-sample
quotients of a loss with kinks are large with small probability (variance ``~ 1 / h``), which the
standard errors carry.
"""
from __future__ import annotations

import numpy as np
import torch

from .family import cov_sqrt
from .mc_common import check_seed
from .mc_family import per_sample_family


def _samples(n: int, d: int, cov, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(check_seed(seed))
    x = torch.randn((n, d), generator=gen, dtype=torch.float64)
    return x if cov is None else x @ torch.tensor(cov_sqrt(np.asarray(cov, dtype=np.float64)))


def _split(theta: np.ndarray, K: int, d: int, a, train_output: bool) -> tuple:
    return theta[:K * d].reshape(K, d), (theta[K * d:] if train_output else a)


def _parameters(W, a, train_output: bool) -> tuple:
    """``(theta, steps)``: the parameter vector and the relative step of each entry."""
    W = np.asarray(W, dtype=np.float64)
    K = len(W)
    a_vec = np.ones(K) if a is None else np.asarray(a, dtype=np.float64)
    theta = np.concatenate([W.ravel(), a_vec]) if train_output else W.ravel().copy()
    steps = np.repeat(np.linalg.norm(W, axis=1), W.shape[1])
    if train_output:
        steps = np.concatenate([steps, np.abs(a_vec)])
    return theta, steps


def _setup(W, a, train_output: bool, n_samples: int, cov, seed: int) -> tuple:
    """``(W, K, d, theta0, steps, x)``: the rows as float64, the parameters and their steps, the common samples."""
    W = np.asarray(W, dtype=np.float64)
    theta0, steps = _parameters(W, a, train_output)
    return (W, *W.shape, theta0, steps, _samples(n_samples, W.shape[1], cov, seed))


def _per_sample_loss(W_star, x, part, K, d, a, a_star, activation, sobolev, train_output):
    """``theta -> `` the per-sample losses ``part`` at the parameters ``theta`` on the common samples ``x``."""
    def loss(theta):
        Wp, ap = _split(theta, K, d, a, train_output)
        return per_sample_family(Wp, W_star, x, a=ap, a_star=a_star, activation=activation,
                                 sobolev=sobolev).loss[part]
    return loss


def _central_differences(f, theta0: np.ndarray, steps: np.ndarray, dim: int) -> torch.Tensor:
    """Per-sample ``(f(theta0 + s_j e_j) - f(theta0 - s_j e_j)) / (2 s_j)`` for every parameter ``j``, stacked
    along ``dim``."""
    eye = np.eye(len(theta0))
    return torch.stack([(f(theta0 + s * e) - f(theta0 - s * e)) / (2 * s) for e, s in zip(eye, steps)], dim=dim)


def _mean_se(samples: torch.Tensor) -> tuple:
    x = samples.double()
    mean = x.mean(0)
    se = x.std(0, unbiased=True) / np.sqrt(len(x))
    return mean.numpy(), se.numpy()


def gradient_fd(W, W_star, part: str, n_samples: int, *, seed: int, h: float = 1e-2, a=None, a_star=None,
                activation="relu", cov=None, sobolev=(1.0, 0.0), train_output=False) -> tuple:
    """``(mean, se)`` of the per-sample central differences of the loss ``part``: a witness of the gradient of
    the population loss over ``W`` (and ``a``), a vector ``(K d [+ K],)``."""
    W, K, d, theta0, steps, x = _setup(W, a, train_output, n_samples, cov, seed)

    loss = _per_sample_loss(W_star, x, part, K, d, a, a_star, activation, sobolev, train_output)
    return _mean_se(_central_differences(loss, theta0, h * steps, dim=1))


def hessian_fd(W, W_star, part: str, n_samples: int, *, seed: int, h: float = 1e-2, a=None, a_star=None,
               activation="relu", cov=None, sobolev=(1.0, 0.0), train_output=False) -> tuple:
    """``(mean, se)`` of the per-sample second central differences of the loss ``part``: a witness of the
    Hessian of the population loss over ``W`` (and ``a``)."""
    W, K, d, theta0, steps, x = _setup(W, a, train_output, n_samples, cov, seed)

    loss = _per_sample_loss(W_star, x, part, K, d, a, a_star, activation, sobolev, train_output)

    P = len(theta0)
    quotients = torch.zeros((n_samples, P, P), dtype=torch.float64)
    for i in range(P):
        for j in range(i, P):
            hi, hj = h * steps[i], h * steps[j]
            ei, ej = np.eye(P)[i] * hi, np.eye(P)[j] * hj
            q = (loss(theta0 + ei + ej) - loss(theta0 + ei - ej) - loss(theta0 - ei + ej)
                 + loss(theta0 - ei - ej)) / (4 * hi * hj)
            quotients[:, i, j] = quotients[:, j, i] = q
    return _mean_se(quotients)


def mean_jacobian_fd(W, W_star, part: str, n_samples: int, *, seed: int, h: float = 1e-2, a=None, a_star=None,
                     activation="relu", cov=None, sobolev=(1.0, 0.0), train_output=False) -> tuple:
    """``(mean, se)`` of the per-sample central differences of the per-sample autograd gradient of ``part``:
    a witness of the Jacobian of the mean field (row: component of the field, column: parameter)."""
    W, K, d, theta0, steps, x = _setup(W, a, train_output, n_samples, cov, seed)

    def field(theta):
        Wp, ap = _split(theta, K, d, a, train_output)
        out = per_sample_family(Wp, W_star, x, a=ap, a_star=a_star, activation=activation, sobolev=sobolev,
                                train_output=train_output)
        g = out.grad[part].reshape(n_samples, -1)
        return torch.cat([g, out.grad_a[part]], dim=1) if train_output else g

    return _mean_se(_central_differences(field, theta0, h * steps, dim=2))
