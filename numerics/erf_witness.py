"""Independent witnesses for the erf network: per-sample autograd Monte Carlo (PyTorch) and mpmath quadrature.

Neither imports :mod:`theory` or :mod:`numerics.erf`; they share only the definitions of the model
(``g(x) = sum_j a_j erf(w_j . x)``, ``x ~ N(0, cov)``) and of the per-sample losses, with the suite's halves:

    l_L = (g - g*)^2 / 2,   l_J = |grad_x g - grad_x g*|^2 / 2,   l_J2 = ||hess_x g - hess_x g*||_F^2 / 2,
    l_H = l_L + lambda_1 l_J + lambda_2 l_J2.

:func:`monte_carlo`: ``x`` is sampled, the input derivatives of the network are taken by autograd
(``torch.func.grad`` / ``torch.func.hessian`` in ``x``, the functional form of ``create_graph=True``), and the
per-sample gradient in ``(W, a)`` of each per-sample loss by autograd again (``torch.func.jacrev``, vectorised
over samples by ``torch.func.vmap``).  The sample mean of those gradients estimates the **mean field**
``E_x[grad l]`` -- what SGD with autograd follows -- with a standard error per entry; optionally the expected
per-sample autograd Hessian too.

:func:`pair_expectation`: ``E[f(a) h(b)]`` for ``(a, b) ~ N(0, [[p, c], [c, q]])`` and ``f, h`` among ``erf``,
``erf'``, ``erf''`` (typed in from their definitions), as a two-dimensional ``mpmath.quad`` over independent
standard normals ``(z1, z2)``, ``a = sqrt(p) z1``, ``b = (c / sqrt(p)) z1 + sqrt(q - c^2/p) z2`` (a composite
Gauss-Legendre product rule on the truncated plane, at 30+ working digits).
"""
from __future__ import annotations

from dataclasses import dataclass

import mpmath
import numpy as np
from mpmath.calculus.quadrature import GaussLegendre
import torch

LOSS_PARTS = ("L", "J", "J2", "H")


# ----------------------------------------------------------------------------- Monte Carlo
@dataclass(frozen=True)
class ErfMC:
    """Sample means and standard errors (``std / sqrt(n)``) of the per-sample losses and their gradients.

    ``loss[part]``, ``loss_se[part]``: floats, for ``part`` in ``L, J, J2, H``; ``grad_W[part]`` ``(K, d)`` and
    ``grad_a[part]`` ``(K,)`` (the mean field), with ``*_se``; ``hessian_W``, ``hessian_W_se`` ``(K d, K d)``: the
    expected per-sample autograd Hessian of ``l_H`` in ``W`` (``None`` unless asked for); ``n`` samples."""

    n: int
    loss: dict
    loss_se: dict
    grad_W: dict
    grad_W_se: dict
    grad_a: dict
    grad_a_se: dict
    hessian_W: np.ndarray | None
    hessian_W_se: np.ndarray | None


class _Moments:
    """Streaming mean and standard error of a vector statistic, accumulated about a fixed shift (the first
    chunk's mean), so that the variance keeps its digits when the mean is large against the spread."""

    def __init__(self):
        self.n, self.shift, self.s1, self.s2 = 0, None, None, None

    def add(self, values: torch.Tensor) -> None:  # values (m, ...)
        if self.shift is None:
            self.shift = values.mean(0)
            self.s1 = torch.zeros_like(self.shift)
            self.s2 = torch.zeros_like(self.shift)
        dev = values - self.shift
        self.s1 += dev.sum(0)
        self.s2 += (dev * dev).sum(0)
        self.n += values.shape[0]

    def result(self) -> tuple:
        m = self.s1 / self.n
        var = (self.s2 - self.n * m * m).clamp(min=0.0) / (self.n - 1)
        return (self.shift + m).numpy(), (var / self.n).sqrt().numpy()


def _per_sample_losses(W, a, W_star, a_star, x):
    """``(l_L, l_J, l_J2)`` at one input ``x`` (``(d,)``), the input derivatives by autograd."""

    def difference(xx):
        return (a * torch.erf(W @ xx)).sum() - (a_star * torch.erf(W_star @ xx)).sum()

    value = difference(x)
    grad_x = torch.func.grad(difference)(x)
    hess_x = torch.func.hessian(difference)(x)
    return torch.stack([value * value / 2, (grad_x * grad_x).sum() / 2, (hess_x * hess_x).sum() / 2])


def _tensor(x, name, shape=None) -> torch.Tensor:
    arr = np.asarray(x.detach().tolist() if hasattr(x, "detach") else x, dtype=np.float64)
    if shape is not None and arr.shape != shape:
        raise ValueError(f"{name} must have shape {shape}; got {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} has a non-finite entry")
    return torch.as_tensor(arr, dtype=torch.float64)


def monte_carlo(W, W_star, n: int, *, seed: int, a=None, a_star=None, cov=None, sobolev=(1.0, 0.0),
                hessian: bool = False, chunk: int = 20000) -> ErfMC:
    """The Monte-Carlo witness with ``n`` samples of ``x ~ N(0, cov)`` (``torch.Generator`` seeded with ``seed``,
    float64, CPU): per-sample losses, their per-sample autograd gradients in ``W`` and ``a`` (whose mean is the
    mean field), and with ``hessian=True`` the per-sample autograd Hessian of ``l_H`` in ``W``."""
    W_ = _tensor(W, "W")
    if W_.ndim != 2:
        raise ValueError(f"W must have shape (K, d); got {tuple(W_.shape)}")
    K, d = W_.shape
    Ws = _tensor(W_star, "W_star")
    if Ws.ndim != 2 or Ws.shape[1] != d:
        raise ValueError(f"W_star must have shape (K*, {d}); got {tuple(Ws.shape)}")
    A = torch.ones(K, dtype=torch.float64) if a is None else _tensor(a, "a", (K,))
    As = torch.ones(len(Ws), dtype=torch.float64) if a_star is None else _tensor(a_star, "a_star", (len(Ws),))
    factor = torch.eye(d, dtype=torch.float64) if cov is None else torch.linalg.cholesky(_tensor(cov, "cov", (d, d)))
    if not isinstance(n, int) or n < 2:
        raise ValueError(f"n must be an integer >= 2; got {n!r}")
    lam = torch.tensor([1.0, float(sobolev[0]), float(sobolev[1])], dtype=torch.float64)

    per_sample_grad = torch.func.vmap(torch.func.jacrev(_per_sample_losses, argnums=(0, 1)),
                                      in_dims=(None, None, None, None, 0))
    per_sample_hess = torch.func.vmap(torch.func.hessian(lambda w, x: lam @ _per_sample_losses(w, A, Ws, As, x)),
                                      in_dims=(None, 0))
    gen = torch.Generator().manual_seed(int(seed))
    mom = {"loss": _Moments(), "gW": _Moments(), "ga": _Moments(), "hess": _Moments()}
    done = 0
    while done < n:
        m = min(chunk, n - done)
        x = torch.randn(m, d, generator=gen, dtype=torch.float64) @ factor.T  # x ~ N(0, cov)
        losses = torch.func.vmap(_per_sample_losses, in_dims=(None, None, None, None, 0))(W_, A, Ws, As, x)
        gW, ga = per_sample_grad(W_, A, Ws, As, x)  # (m, 3, K, d), (m, 3, K)
        # append the H combination as a fourth part, sample by sample (its standard error needs the covariances)
        mom["loss"].add(torch.cat([losses, (losses @ lam)[:, None]], 1))
        mom["gW"].add(torch.cat([gW, torch.einsum("p,mpkd->mkd", lam, gW)[:, None]], 1))
        mom["ga"].add(torch.cat([ga, torch.einsum("p,mpk->mk", lam, ga)[:, None]], 1))
        if hessian:
            mom["hess"].add(per_sample_hess(W_, x).reshape(m, K * d, K * d))
        done += m
    (lm, ls), (gm, gs), (am, as_) = mom["loss"].result(), mom["gW"].result(), mom["ga"].result()
    hm, hs = mom["hess"].result() if hessian else (None, None)
    idx = {part: i for i, part in enumerate(LOSS_PARTS)}
    return ErfMC(n, {p: float(lm[i]) for p, i in idx.items()}, {p: float(ls[i]) for p, i in idx.items()},
                 {p: gm[i] for p, i in idx.items()}, {p: gs[i] for p, i in idx.items()},
                 {p: am[i] for p, i in idx.items()}, {p: as_[i] for p, i in idx.items()}, hm, hs)


# ----------------------------------------------------------------------------- quadrature
def _erf_derivative(order: int):
    """``erf``, ``erf'`` or ``erf''`` in mpmath, from the definition ``erf(t) = (2/sqrt(pi)) int_0^t exp(-s^2) ds``."""
    if order == 0:
        return mpmath.erf
    if order == 1:
        return lambda t: 2 / mpmath.sqrt(mpmath.pi) * mpmath.exp(-t * t)
    if order == 2:
        return lambda t: -4 * t / mpmath.sqrt(mpmath.pi) * mpmath.exp(-t * t)
    raise ValueError(f"order must be 0, 1 or 2; got {order!r}")


_Z1_EDGES = (0, 1, 2, 4, 6, 9, 12.5)  # |z| > 12.5 carries Gaussian mass < 1e-34
_Z2_EDGES = (-12.5, -9, -6, -4, -2, -1, 0, 1, 2, 4, 6, 9, 12.5)


def _gauss_nodes(edges, degree: int) -> list:
    """``(z, weight * exp(-z^2/2))`` of the composite Gauss-Legendre rule of mpmath's ``degree`` (``3 * 2^(degree-1)``
    nodes per panel) on the panels between ``edges``."""
    base = GaussLegendre(mpmath.mp).calc_nodes(degree, mpmath.mp.prec)
    out = []
    for lo, hi in zip(edges, edges[1:]):
        half, mid = (mpmath.mpf(hi) - lo) / 2, (mpmath.mpf(hi) + lo) / 2
        out += [(mid + half * x, half * w * mpmath.exp(-((mid + half * x) ** 2) / 2)) for x, w in base]
    return out


def pair_expectation(m: int, n: int, p, q, c, dps: int = 30, degree: int = 3):
    """``E[erf^(m)(a) erf^(n)(b)]`` for ``(a, b) ~ N(0, [[p, c], [c, q]])`` (``p, q > 0``, ``c^2 <= pq``): an ``mpf``.

    The two-dimensional Gaussian integral over ``(z1, z2)`` by a composite Gauss-Legendre product rule on
    ``[-12.5, 12.5]^2`` (panels of width 1 to 3.5) at ``dps`` working digits; for ``m + n`` even the integrand is
    centrally symmetric and only ``z1 >= 0`` is summed.  Accuracy for ``p, q`` in ``[0.1, 3]`` (measured against
    ``degree=4``): ``degree=3`` (12 nodes a panel, ~1 s) about ``1e-15`` relative, ``degree=4`` (24 nodes, ~6 s)
    about ``1e-30``; larger ``p, q`` sharpen ``erf`` and need finer panels."""
    if dps < 30:
        raise ValueError(f"dps must be >= 30; got {dps!r}")
    with mpmath.workdps(dps + 5):
        p, q, c = mpmath.mpf(p), mpmath.mpf(q), mpmath.mpf(c)
        if p <= 0 or q <= 0 or c * c > p * q * (1 + mpmath.mpf(10) ** -dps):
            raise ValueError("need p > 0, q > 0 and c^2 <= p q (a covariance matrix)")
        f, h = _erf_derivative(m), _erf_derivative(n)
        root_p, rho = mpmath.sqrt(p), c / mpmath.sqrt(p)
        tau = mpmath.sqrt(max(q - c * c / p, 0))  # 0 for parallel rows: b = rho z1, the z2 integral is 1
        symmetric = (m + n) % 2 == 0  # f(-a) h(-b) = f(a) h(b): erf^(k) is odd for even k, even for odd k
        outer = _gauss_nodes(_Z1_EDGES if symmetric else tuple(-e for e in _Z1_EDGES[::-1]) + _Z1_EDGES[1:], degree)
        inner = _gauss_nodes(_Z2_EDGES, degree)
        total = mpmath.fsum(w1 * f(root_p * z1) * mpmath.fsum(w2 * h(rho * z1 + tau * z2) for z2, w2 in inner)
                            for z1, w1 in outer)
        return +(total * (2 if symmetric else 1) / (2 * mpmath.pi))


def pair_kernel(k: int, u, v, cov=None, dps: int = 30, degree: int = 3):
    """The pair kernel of the part of order ``k`` between rows ``u`` and ``v`` by :func:`pair_expectation`:
    ``k = 0``: ``E[erf(u.x) erf(v.x)]``; ``1``: ``E[erf'(u.x) erf'(v.x)] (u.v)``; ``2``: ``E[erf''(u.x)
    erf''(v.x)] (u.v)^2``, for ``x ~ N(0, cov)`` (identity when ``None``)."""
    u, v = np.asarray(u, dtype=float), np.asarray(v, dtype=float)
    S = np.eye(len(u)) if cov is None else np.asarray(cov, dtype=float)
    with mpmath.workdps(dps + 5):
        U, V = mpmath.matrix(u.tolist()), mpmath.matrix(v.tolist())
        Sm = mpmath.matrix(S.tolist())
        p = (U.T * Sm * U)[0]
        q = (V.T * Sm * V)[0]
        c = (U.T * Sm * V)[0]
        g = (U.T * V)[0]
        return pair_expectation(k, k, p, q, c, dps, degree) * g**k
