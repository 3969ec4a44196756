"""Monte-Carlo witness for the model family (:mod:`numerics.family`), by torch autograd.

The model and the per-sample losses (docs/theory.md, sections 1-2, and :mod:`numerics.family`)::

    g(x; a, W) = sum_j a_j sigma(w_j . x),   teacher g*(x) = g(x; a*, W*),   x ~ N(0, cov),
    sigma(t)   = c_plus max(t, 0)^p + c_minus max(-t, 0)^p,
    l_L  = (g - g*)^2 / 2,
    l_J  = |grad_x g - grad_x g*|^2 / 2                    (J_1),
    l_J2 = ||hess_x g - hess_x g*||_F^2 / 2                (only for p >= 2),
    l_H  = l_L + lambda_1 l_J + lambda_2 l_J2.

Independence from the closed forms: this module shares nothing with them beyond these definitions.

* ``x`` is sampled as ``x = cov^(1/2) z`` with ``z ~ N(0, I_d)`` from one seeded ``torch.Generator``
  (the symmetric square root :func:`numerics.family.cov_sqrt`); the reduction ``w -> cov^(1/2) w``
  that the closed forms use is never applied.  With ``cov = None`` the samples are ``z`` itself,
  drawn chunk by chunk exactly as :func:`numerics.mc.monte_carlo` draws them.
* ``grad_x g`` and ``hess_x g`` are taken by autograd on the network (``torch.func.grad`` and
  ``torch.func.hessian``, which keep the graph: the ``create_graph=True`` semantics), never from
  typed-in derivative formulas; the activation is written once, as above, in torch operations.
* The per-sample gradient of each ``l_part`` in ``W`` (and in ``a`` when ``train_output``) is the
  autograd gradient of that sample's loss (``torch.func.jacrev`` of the vector of losses, vmapped
  over the samples).  Its sample mean is the **mean field** ``E_x[grad l_part]`` (for ReLU-type
  activations autograd differentiates the indicator ``1{w.x > 0}`` to zero: the mean field, not
  the true gradient); the standard errors come from the per-sample values
  (:class:`numerics.mc_common.ShiftedMoments`).

Streaming: chunks of samples, bounded memory (default chunk from a ~32 MB budget), the same
seed, device, dtype and chunk size giving the same numbers.  Range: no rescaling of extreme
weights is done here (unlike :func:`numerics.mc.monte_carlo`); a result that is not finite in
the working dtype is a ``ValueError``.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import torch

from .family import Activation, Family, cov_sqrt, family
# the pieces shared with numerics.mc, from the module below both (numerics.mc imports this module to dispatch)
from .mc_common import ShiftedMoments, available_bytes, check_seed, dicts_equal, torch_device
from .validation import as_rows

_SECONDS_BEFORE_PROGRESS = 2.0
_CHUNK_BUDGET_BYTES = 32 << 20  # default chunk: about this much working memory on a CPU


@dataclass(frozen=True, eq=False)
class FamilyMCEstimate:
    """Sample means and standard errors of the family's losses and mean fields after ``n`` samples.

    ``loss[part]`` / ``loss_se[part]``: floats, the MC estimate of ``E_x[l_part]`` and its standard
    error, for ``part`` in :attr:`parts` (``"L", "J", "J2", "H"``; without ``"J2"`` when the
    activation has ``p < 2``).  ``mean_field[part]`` / ``mean_field_se[part]``: ``(K, d)`` float64
    arrays, the **mean field** ``E_x[grad_W l_part]`` (the average of per-sample autograd
    gradients).  ``mean_field_a[part]`` / ``mean_field_a_se[part]``: ``(K,)`` arrays,
    ``E_x[grad_a l_part]``, when ``train_output`` (else empty dicts).  Standard errors are
    ``sqrt(sample variance / n)``.

    Equality compares every field except ``seconds``, arrays by value; the hash uses the scalar
    fields only (as :class:`numerics.mc.MCEstimate`).
    """

    n: int
    loss: dict
    loss_se: dict
    mean_field: dict
    mean_field_se: dict
    mean_field_a: dict
    mean_field_a_se: dict
    activation: str
    sobolev: tuple
    seed: int
    device: str
    dtype: str
    seconds: float = field(default=0.0, compare=False)

    @property
    def parts(self) -> tuple:
        """The parts estimated, in order: ``("L", "J", "H")`` or ``("L", "J", "J2", "H")``."""
        return tuple(self.loss)

    def _scalars(self) -> tuple:
        return (self.n, self.activation, self.sobolev, self.seed, self.device, self.dtype)

    def __eq__(self, other):
        if not isinstance(other, FamilyMCEstimate):
            return NotImplemented
        return self._scalars() == other._scalars() and all(
            dicts_equal(getattr(self, f), getattr(other, f))
            for f in ("loss", "loss_se", "mean_field", "mean_field_se", "mean_field_a", "mean_field_a_se"))

    def __hash__(self):
        return hash(self._scalars())

    def z_scores(self, closed_loss: dict, closed_mean_field: dict, closed_mean_field_a: dict | None = None) -> dict:
        """``(estimate - closed) / se`` for every part given: keys ``"L"`` (floats) and
        ``"mean_field/L"`` (``(K, d)`` arrays), and ``"mean_field_a/L"`` (``(K,)``) when
        ``closed_mean_field_a`` is given.  Any subset of :attr:`parts` may be passed; a part not
        estimated is a ``ValueError``."""
        out = {}
        groups = [("", closed_loss, self.loss, self.loss_se),
                  ("mean_field/", closed_mean_field, self.mean_field, self.mean_field_se)]
        if closed_mean_field_a is not None:
            if not self.mean_field_a:
                raise ValueError("closed_mean_field_a was given but this estimate has no mean_field_a "
                                 "(it was made with train_output=False)")
            groups.append(("mean_field_a/", closed_mean_field_a, self.mean_field_a, self.mean_field_a_se))
        for prefix, closed, est, se in groups:
            for p, value in closed.items():
                if p not in est:
                    raise ValueError(f"part {p!r} is not estimated here; the parts are {self.parts}")
                out[prefix + p] = (est[p] - np.asarray(value, dtype=np.float64)) / se[p]
                if np.ndim(out[prefix + p]) == 0:
                    out[prefix + p] = float(out[prefix + p])
        return out


# ----------------------------------------------------------------------------- the network in torch
def torch_activation(act: Activation):
    """``sigma(t) = c_plus relu(t)^p + c_minus relu(-t)^p`` as a torch function (autograd-able).

    A zero coefficient's term is left out (so ``("leaky_relu", 0.0)`` is computed as ``relu``).
    """
    p, cp, cm = act.p, float(act.c_plus), float(act.c_minus)

    def power(u):
        return u if p == 1 else u ** p

    def sigma(t):
        out = power(torch.relu(t))
        if cp != 1.0:
            out = cp * out
        if cm != 0.0:
            out = out + cm * power(torch.relu(-t))
        return out

    return sigma


def parts_of(act: Activation) -> tuple:
    """``("L", "J", "J2", "H")`` when ``J2`` exists (``p >= 2``), else ``("L", "J", "H")``."""
    return ("L", "J", "J2", "H") if act.p >= 2 else ("L", "J", "H")


def _per_sample_losses(sigma, W_star, a_star, lam, with_j2):
    """The function ``(W, a, x) -> (losses, losses)`` of ONE sample ``x`` (``d``), ``losses`` the
    vector of ``l_part`` in the order of :func:`parts_of` (returned twice: value and aux of jacrev)."""
    lam1, lam2 = lam

    def net(Wm, am, x):
        return am @ sigma(Wm @ x)

    d_net = torch.func.grad(net, argnums=2)  # grad_x g by autograd, differentiable further
    h_net = torch.func.hessian(net, argnums=2)  # hess_x g by autograd (forward over reverse)

    def losses(Wm, am, x):
        r = net(Wm, am, x) - net(W_star, a_star, x)
        v = d_net(Wm, am, x) - d_net(W_star, a_star, x)
        lL = 0.5 * r * r
        lJ = 0.5 * (v * v).sum()
        if with_j2:
            M = h_net(Wm, am, x) - h_net(W_star, a_star, x)
            lJ2 = 0.5 * (M * M).sum()
            out = torch.stack([lL, lJ, lJ2, lL + lam1 * lJ + lam2 * lJ2])
        else:
            out = torch.stack([lL, lJ, lL + lam1 * lJ])
        return out, out

    return losses


class _Model:
    """Checked weights and family as tensors, and the vmapped per-sample function."""

    def __init__(self, W, W_star, fam: Family, dtype, dev):
        K, Ks = len(W), len(W_star)
        self.fam = fam
        self.parts = parts_of(fam.activation)
        self.W = torch.as_tensor(W, dtype=dtype, device=dev)
        self.W_star = torch.as_tensor(W_star, dtype=dtype, device=dev)
        self.a = torch.as_tensor(np.ones(K) if fam.a is None else fam.a, dtype=dtype, device=dev)
        self.a_star = torch.as_tensor(np.ones(Ks) if fam.a_star is None else fam.a_star, dtype=dtype, device=dev)
        losses = _per_sample_losses(torch_activation(fam.activation), self.W_star, self.a_star, fam.sobolev,
                                    "J2" in self.parts)
        argnums = (0, 1) if fam.train_output else 0
        self._step = torch.func.vmap(torch.func.jacrev(losses, argnums=argnums, has_aux=True),
                                     in_dims=(None, None, 0))

    def per_sample(self, X: torch.Tensor) -> tuple:
        """``(values (n, P), grad_W (n, P, K, d), grad_a (n, P, K) or None)`` for samples ``X`` (n x d)."""
        jac, values = self._step(self.W, self.a, X)
        if self.fam.train_output:
            gW, ga = jac
        else:
            gW, ga = jac, None
        return values.detach(), gW.detach(), None if ga is None else ga.detach()


class PerSample(NamedTuple):
    """Per-sample values: ``loss[part]`` ``(n,)``, ``grad[part]`` ``(n, K, d)`` (autograd gradient in
    ``W``), ``grad_a[part]`` ``(n, K)`` (in ``a``; empty unless ``train_output``)."""

    loss: dict
    grad: dict
    grad_a: dict


def _check_pair(W, W_star):
    W = as_rows(W, "W")
    W_star = as_rows(W_star, "W_star")
    if W.shape[1] != W_star.shape[1]:
        raise ValueError(f"W has d = {W.shape[1]} but W_star has d = {W_star.shape[1]}")
    return W, W_star


def _check_dtype(dtype):
    if dtype not in (torch.float32, torch.float64):
        raise ValueError(f"dtype must be torch.float32 or torch.float64; got {dtype!r}")
    return dtype


def per_sample_family(W, W_star, x, *, a=None, a_star=None, activation="relu", sobolev=(1.0, 0.0),
                      train_output=False) -> PerSample:
    """The per-sample losses and their autograd gradients at the given samples ``x`` (``n x d``
    tensor; its dtype and device are used).  Returns a :class:`PerSample` of torch tensors."""
    W, W_star = _check_pair(W, W_star)
    x = torch.as_tensor(x)
    if x.ndim != 2 or x.shape[1] != W.shape[1]:
        raise ValueError(f"x must have shape (n, {W.shape[1]}); got {tuple(x.shape)}")
    dtype = _check_dtype(x.dtype)
    fam = family(len(W), len(W_star), W.shape[1], a=a, a_star=a_star, activation=activation, sobolev=sobolev,
                 train_output=train_output)
    model = _Model(W, W_star, fam, dtype, x.device)
    values, gW, ga = model.per_sample(x)
    parts = model.parts
    return PerSample({p: values[:, i] for i, p in enumerate(parts)}, {p: gW[:, i] for i, p in enumerate(parts)},
                     {} if ga is None else {p: ga[:, i] for i, p in enumerate(parts)})


def input_derivatives(W, x, *, a=None, activation="relu") -> tuple:
    """``(g, grad_x g, hess_x g)`` of ``g(x; a, W)`` at every sample of ``x`` (``n x d``) by autograd:
    shapes ``(n,)``, ``(n, d)``, ``(n, d, d)`` (the Hessian is only meaningful where ``sigma''`` is a
    function, ``p >= 2``).  The same network and transforms the estimator differentiates."""
    W = as_rows(W, "W")
    x = torch.as_tensor(x)
    fam = family(len(W), 1, W.shape[1], a=a, activation=activation)
    Wt = torch.as_tensor(W, dtype=x.dtype, device=x.device)
    at = torch.as_tensor(np.ones(len(W)) if fam.a is None else fam.a, dtype=x.dtype, device=x.device)
    sigma = torch_activation(fam.activation)

    def net(xx):
        return at @ sigma(Wt @ xx)

    vm = torch.func.vmap
    return (vm(net)(x).detach(), vm(torch.func.grad(net))(x).detach(),
            vm(torch.func.hessian(net))(x).detach())


# ----------------------------------------------------------------------------- the estimator
def _bytes_per_sample(K: int, Ks: int, d: int, P: int, j2: bool, train_output: bool, itemsize: int) -> int:
    # vmapped jacrev over P outputs of a function that (for J2) takes a d-tangent forward-over-reverse
    # Hessian: intermediates of about P (K + K*) d per sample (times d for the Hessian), plus the
    # outputs P K (d + 1) and the samples.  Peak resident memory measured on the CPU (float64;
    # K, K*, d from (3, 2, 5) to (10, 10, 20) and (2, 2, 50)) was 1/6 to 3/4 of this bound.
    inner = P * (K + Ks) * (d + 2) * ((d + 2) if j2 else 1)
    return itemsize * (2 * inner + 2 * P * K * (d + 1 if train_output else d) + 4 * d + 16)


def _chunk_size(chunk_size, n, per: int, dev) -> int:
    avail = available_bytes(dev)
    if chunk_size is None:
        budget = min(avail // 4, (1 << 30) if dev.type == "cuda" else _CHUNK_BUDGET_BYTES)
        return int(max(1, min(n, budget // per)))
    if isinstance(chunk_size, (bool, np.bool_)) or not isinstance(chunk_size, (int, np.integer)) or chunk_size <= 0:
        raise ValueError(f"chunk_size must be a positive integer; got {chunk_size!r}")
    if int(chunk_size) * per > avail // 2:
        raise ValueError(f"chunk_size={chunk_size} needs about {chunk_size * per / 2**30:.1f} GiB, more than half the "
                         f"{avail / 2**30:.1f} GiB available on {dev}; choose a smaller chunk")
    return int(chunk_size)


def _check_n(n_samples) -> int:
    if isinstance(n_samples, (bool, np.bool_)) or not isinstance(n_samples, (int, np.integer)):
        raise ValueError(f"n_samples must be a single integer >= 2 for the model family (no checkpoints); "
                         f"got {n_samples!r}")
    if n_samples <= 1:
        raise ValueError(f"n_samples must be at least 2 (a standard error needs two samples); got {n_samples}")
    return int(n_samples)


def _finite(x: np.ndarray, what: str) -> np.ndarray:
    if not np.all(np.isfinite(x)):
        raise ValueError(f"the Monte-Carlo {what} is not finite: the sums overflowed in the working dtype "
                         "(use float64, or rescale the weights)")
    return x


def _activation_name(act: Activation) -> str:
    return act.name if act.param is None else f"{act.name}({act.param})"


def is_default_family(*, a=None, a_star=None, activation="relu", cov=None, sobolev=(1.0, 0.0),
                      train_output=False) -> bool:
    """Whether the keywords name the paper's model (:attr:`numerics.family.Family.is_default`); a
    bad keyword is the ``ValueError`` of :func:`numerics.family.family`.  Given weights ``a``,
    ``a_star`` or a ``cov`` (even ones and the identity) are never the default; the shapes passed to
    :func:`~numerics.family.family` matter only for those, so the check needs no ``W``."""
    if a is not None or a_star is not None or cov is not None:
        return False
    return family(1, 1, 2, activation=activation, sobolev=sobolev, train_output=train_output).is_default


def monte_carlo_family(W, W_star, n_samples, *, seed, a=None, a_star=None, activation="relu", cov=None,
                       sobolev=(1.0, 0.0), train_output=False, device=None, dtype=torch.float64,
                       chunk_size=None, progress=False) -> FamilyMCEstimate:
    """Monte-Carlo means and standard errors of the family's losses and mean fields (autograd).

    ``W`` ``(K, d)``, ``W_star`` ``(K*, d)``; the keywords ``a, a_star, activation, cov, sobolev,
    train_output`` as in :func:`numerics.family.family` (its ``ValueError`` for bad ones; e.g.
    ``lambda_2 != 0`` with ``relu`` names ``J2``).  ``n_samples``: one integer ``>= 2``.  ``seed``:
    :func:`numerics.mc_common.check_seed`.  ``device``: ``None`` (GPU when present), ``"cpu"``, ``"cuda"``;
    ``dtype``: ``torch.float64`` or ``torch.float32``; ``chunk_size``: samples per chunk (default
    from a memory budget of ~32 MB on a CPU); ``progress``: ``True`` shows a bar, ``None`` shows
    one when the run is expected to take more than a few seconds, ``False`` never.

    Returns a :class:`FamilyMCEstimate`: ``loss[part]`` estimates ``E_x[l_part]`` and
    ``mean_field[part]`` estimates ``E_x[grad_W l_part]``, the average of per-sample autograd
    gradients (the mean field); ``mean_field_a[part]`` estimates ``E_x[grad_a l_part]`` when
    ``train_output``.  Samples: ``x = cov^(1/2) z``, ``z ~ N(0, I)`` (see the module docstring).
    Every argument is checked before any sampling starts.
    """
    n = _check_n(n_samples)
    seed = check_seed(seed)
    W, W_star = _check_pair(W, W_star)
    K, d = W.shape
    fam = family(K, len(W_star), d, a=a, a_star=a_star, activation=activation, cov=cov, sobolev=sobolev,
                 train_output=train_output)
    dtype = _check_dtype(dtype)
    if progress is not None and not isinstance(progress, (bool, np.bool_)):
        raise ValueError(f"progress must be True, False or None; got {progress!r}")
    dev = torch_device(device)
    model = _Model(W, W_star, fam, dtype, dev)
    parts = model.parts
    per = _bytes_per_sample(K, len(W_star), d, len(parts), "J2" in parts, fam.train_output,
                            torch.finfo(dtype).bits // 8)
    chunk = _chunk_size(chunk_size, n, per, dev)
    S = None if fam.cov is None else torch.as_tensor(cov_sqrt(fam.cov), dtype=dtype, device=dev)

    gen = torch.Generator(device=dev)
    gen.manual_seed(seed)
    m_val, m_W, m_a = ShiftedMoments(), ShiftedMoments(), ShiftedMoments()
    done, bar = 0, None
    start = time.perf_counter()
    try:
        while done < n:
            c = min(chunk, n - done)
            Z = torch.randn((c, d), generator=gen, device=dev, dtype=dtype)
            X = Z if S is None else Z @ S  # row i: (S z_i)^T = z_i^T S, S symmetric
            values, gW, ga = model.per_sample(X)
            m_val.add_samples(values)
            m_W.add_samples(gW)
            if ga is not None:
                m_a.add_samples(ga)
            done += c
            if bar is None and progress is not False and done < n:
                remaining = (time.perf_counter() - start) * (n - done) / done
                if progress or remaining > _SECONDS_BEFORE_PROGRESS:
                    from tqdm.auto import tqdm

                    bar = tqdm(total=n, initial=done, unit="sample", unit_scale=True,
                               desc=f"Monte-Carlo family ({_activation_name(fam.activation)}, {dev})")
            elif bar is not None:
                bar.update(c)
    finally:
        if bar is not None:
            bar.close()

    def arrays(m: ShiftedMoments, what: str) -> tuple:
        mean = _finite(m.mean().cpu().numpy().astype(np.float64), what)
        se = _finite(m.standard_error().cpu().numpy().astype(np.float64), what + " standard error")
        return mean, se

    lv, ls = arrays(m_val, "loss")
    wv, ws = arrays(m_W, "mean field")
    av, as_ = arrays(m_a, "mean field in a") if fam.train_output else (None, None)
    return FamilyMCEstimate(
        n=n,
        loss={p: float(lv[i]) for i, p in enumerate(parts)},
        loss_se={p: float(ls[i]) for i, p in enumerate(parts)},
        mean_field={p: wv[i] for i, p in enumerate(parts)},
        mean_field_se={p: ws[i] for i, p in enumerate(parts)},
        mean_field_a={} if av is None else {p: av[i] for i, p in enumerate(parts)},
        mean_field_a_se={} if av is None else {p: as_[i] for i, p in enumerate(parts)},
        activation=_activation_name(fam.activation), sobolev=fam.sobolev, seed=seed, device=str(dev),
        dtype=str(dtype).replace("torch.", ""), seconds=time.perf_counter() - start,
    )


__all__ = ["FamilyMCEstimate", "PerSample", "monte_carlo_family", "per_sample_family", "input_derivatives",
           "torch_activation", "parts_of", "is_default_family"]

