"""Monte-Carlo witness in PyTorch: sample means and standard errors of the losses and fields.

Independent of the closed forms: it shares with :mod:`theory` / :mod:`numerics.population`
only the definitions of the network and the per-sample losses (docs/theory.md, sections 1–2),

    g(x; W) = sum_j relu(w_j . x),   l_L = (g - g*)^2 / 2,   l_J = |grad_x g - grad_x g*|^2 / 2,

with ``x ~ N(0, I_d)``.  Per-sample gradients in ``W`` come in two forms that must agree
sample by sample: real autograd on the network (:func:`per_sample_gradients_autograd`,
``grad_x g`` with ``create_graph=True`` then backward to ``W`` — what practitioners compute)
and the closed per-sample expression (:func:`per_sample_gradients_closed`, used for speed):

    d l_L / d w_j = (g - g*) 1{w_j.x > 0} x,      d l_J / d w_j = 1{w_j.x > 0} (grad_x g - grad_x g*).

Their average is the **mean field** (not the true gradient; docs/theory.md, section 4).  The true gradient
has its own witness, central differences of the MC loss with common random numbers
(:func:`true_gradient_fd`), and the expected autograd Hessian too (:func:`autograd_hessian_mc`).

Streaming: samples are drawn in chunks from one seeded ``torch.Generator``; per chunk, sums
and sums of squares are accumulated about a fixed shift (the first chunk's mean) in
:class:`ShiftedMoments`, so memory is bounded by the chunk (the variance of the engine's
statistics has relative error ``~ eps (1 + mean^2/var)``; the finite-difference and Hessian
witnesses shift every sample before squaring, ``~ eps``).  Same seed, device, dtype and chunk
size give the same numbers.

``method="subspace"`` samples only the coordinates of ``x`` in ``span(W, W*)`` (dimension
``m <= K + K*``) and integrates the orthogonal part exactly (Rao-Blackwell): every
per-sample quantity depends on ``x`` only through that span except the factor ``x`` in
``d l_L / d w_j``, whose conditional mean given the span coordinates is their embedding.
Exact in expectation; variance and cost no longer grow with ``d``.

Range: every per-sample quantity is positively homogeneous in ``(W, W*)`` jointly (losses of
degree 2, per-sample gradients of degree 1, their derivatives of degree 0), so weights whose
largest entry is outside :data:`UNSCALED_RANGE` (``[2**-100, 2**100]`` in float64,
``[2**-8, 2**8]`` in float32) are scaled by an exact power of two into ``[0.5, 1)`` and the
results scaled back exactly; inside it the weights are used as given.  Finite input thus
never gives NaN, inf or a standard error that underflowed to zero: a result that float64
cannot hold (the loss of weights ~1e200 is ~1e400) is a ``ValueError``, and so is a row too
small relative to the largest to be represented.  Seeds: :func:`check_seed` (integers in
``[0, 2**32 - 1]``, each its own stream).
"""
from __future__ import annotations

import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

# defined once in numerics.mc_common, below this module and numerics.mc_family (which must not import this
# module: monte_carlo dispatches to it); SEED_RANGE, ShiftedMoments, check_seed and torch_device stay importable
# from here too, where tests, benchmarks and docs use them
from .mc_common import (SEED_RANGE, ShiftedMoments, available_bytes, check_seed, dicts_equal,  # noqa: F401
                        torch_device)
from .validation import PARTS, as_rows, check_part

METHODS = ("plain", "subspace")
_SECONDS_BEFORE_PROGRESS = 2.0


@dataclass(frozen=True, eq=False)
class MCEstimate:
    """Sample means and standard errors after ``n`` samples.

    ``loss[part]`` / ``loss_se[part]``: floats for ``part`` in ``L, J, H``;
    ``mean_field[part]`` / ``mean_field_se[part]``: ``(K, d)`` arrays (the mean field
    ``E_x[grad_W l]``).  The standard error is ``sqrt(sample variance / n)``.

    Equality: two estimates are equal iff every field except ``seconds`` (the wall-clock
    time) is equal, the dicts of arrays compared key by key and by value
    (:func:`numpy.array_equal`; the estimates hold no NaN).  The hash uses only the immutable
    scalar fields ``n, method, seed, device, dtype``, so it is consistent with ``==``
    (equal estimates hash alike) while the dicts, which are mutable, do not enter it.
    """

    n: int
    loss: dict
    loss_se: dict
    mean_field: dict
    mean_field_se: dict
    method: str
    seed: int
    device: str
    dtype: str
    seconds: float = field(default=0.0, compare=False)

    def __eq__(self, other):
        if not isinstance(other, MCEstimate):
            return NotImplemented
        return (
            (self.n, self.method, self.seed, self.device, self.dtype)
            == (other.n, other.method, other.seed, other.device, other.dtype)
            and dicts_equal(self.loss, other.loss) and dicts_equal(self.loss_se, other.loss_se)
            and dicts_equal(self.mean_field, other.mean_field)
            and dicts_equal(self.mean_field_se, other.mean_field_se)
        )

    def __hash__(self):
        return hash((self.n, self.method, self.seed, self.device, self.dtype))

    def z_scores(self, closed_loss: dict, closed_mean_field: dict) -> dict:
        """``(estimate - closed) / se`` per key (``"L"``, ``"mean_field/L"``, ...)."""
        out = {}
        for p in PARTS:
            out[p] = (self.loss[p] - closed_loss[p]) / self.loss_se[p]
            out[f"mean_field/{p}"] = (self.mean_field[p] - closed_mean_field[p]) / self.mean_field_se[p]
        return out


# ----------------------------------------------------------------------------- set-up and checks
def _generator(seed: int, dev: torch.device) -> torch.Generator:
    gen = torch.Generator(device=dev)
    gen.manual_seed(seed)
    return gen


def _check_chunk(chunk_size) -> int:
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, (int, np.integer)) or chunk_size <= 0:
        raise ValueError(f"chunk_size must be a positive integer; got {chunk_size!r}")
    return int(chunk_size)


def _check_step(h) -> float:
    if isinstance(h, (bool, np.bool_)) or not isinstance(h, (int, float, np.integer, np.floating)):
        raise ValueError(f"h must be a positive real number; got {h!r}")
    if not (math.isfinite(h) and h > 0):
        raise ValueError(f"h (the relative step of the central differences) must be positive and finite; got {h!r}")
    return float(h)


def _checkpoints(n_samples) -> list:
    if isinstance(n_samples, (int, np.integer)):
        seq = [n_samples]
    elif isinstance(n_samples, Sequence) or isinstance(n_samples, np.ndarray):
        seq = list(n_samples)
    else:
        raise ValueError(f"n_samples must be a positive integer or a sequence of them; got {n_samples!r}")
    if not seq:
        raise ValueError("n_samples is an empty sequence")
    for n in seq:
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
            raise ValueError(f"n_samples must be a positive integer or a sequence of them; got {n!r}")
        if n <= 1:
            raise ValueError(f"n_samples must be at least 2 (a standard error needs two samples); got {n}")
    if any(b <= a for a, b in zip(seq, seq[1:])):
        raise ValueError(f"checkpoints in n_samples must be strictly increasing; got {seq}")
    return [int(n) for n in seq]


def _bytes_per_sample(K: int, P: int, width: int, itemsize: int, subspace: bool = False) -> int:
    # X (n x width), pre/act/ind/u (n x P each), V, T and their squares (n x width each), slack;
    # the subspace method also forms n x m^2 outer products
    return itemsize * (6 * width + 5 * P + 2 * K + 8 + (2 * width * width if subspace else 0))


def _chunk_size(chunk_size, n_max, K, P, width, dtype, dev, subspace: bool = False) -> int:
    """Samples per chunk that :func:`monte_carlo` takes (public as :func:`chunk_size`).

    ``chunk_size`` given: that many, checked (a positive integer whose chunk needs at most half the memory
    available on ``dev``; ``ValueError`` otherwise).  ``None``: from a memory budget, a quarter of the
    available memory and at most 32 MiB on a CPU (cache-sized chunks) or 2 GiB on a GPU, over the bytes one
    sample's intermediates take, at most ``n_max``.  ``K`` student rows, ``P`` rows of ``[W; W*]``, ``width``
    the sampled dimension (``d``, or the subspace's with ``subspace=True``), ``dtype`` and ``dev`` as run.
    """
    item = torch.finfo(dtype).bits // 8
    per = _bytes_per_sample(K, P, width, item, subspace)
    avail = available_bytes(dev)
    if chunk_size is None:
        # small chunks stay in cache on a CPU; a GPU wants large ones
        budget = min(avail // 4, (2 << 30) if dev.type == "cuda" else (32 << 20))
        return int(max(1, min(n_max, budget // per)))
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, (int, np.integer)) or chunk_size <= 0:
        raise ValueError(f"chunk_size must be a positive integer; got {chunk_size!r}")
    if chunk_size * per > avail // 2:
        raise ValueError(
            f"chunk_size={chunk_size} needs about {chunk_size * per / 2**30:.1f} GiB, more than half the "
            f"{avail / 2**30:.1f} GiB available on {dev}; choose a smaller chunk"
        )
    return int(chunk_size)


# public for the benchmarks: the samples per chunk that monte_carlo takes (from the memory budget when None); the
# private name stays for existing callers
chunk_size = _chunk_size


# Largest |entry| M of [W; W_star] for which the computation runs on the weights as given.
# Every per-sample quantity is positively homogeneous in (W, W_star) jointly, of degree at most
# 4 (the squared losses summed for the variance): with 2**-k ~ M, it is 2**(-k deg) times its
# value at the normalised weights 2**k [W; W_star] (largest entry in [0.5, 1)).  Worst case per sample
# (P = K + K* rows, d inputs, |x_i| < 9: a 9-sigma draw has probability ~2e-19):
# |w . x| <= 9 d M, so l <= 41 P**2 d**2 M**2 and a sum of n squared losses is below
# 2**11 n P**4 d**4 M**4.
#   float64 (normal range 2**-1022 .. 2**1024), M in [2**-100, 2**100]: overflow would need
#   n P**4 d**4 > 2**600, far beyond any problem that fits in memory; at the low end, a loss
#   above the rounding level of its evaluation (|g - g*| >~ eps M, eps = 2**-53, so l**2 >~
#   2**-212 M**4) has a square above 2**-612, still normal after dividing by any feasible n.
#   float32 (normal range 2**-126 .. 2**128) has far less room, so M in [2**-8, 2**8]: no
#   overflow while n P**4 d**4 < 2**85 (worst case; typical sums are many orders smaller),
#   and only squared losses within a few bits of float32's rounding level (eps = 2**-24,
#   l**2 >~ 2**-96 M**4), which are rounding noise already, can become subnormal.
#   [2**-30, 2**30] would not do: at 2**30 the squared losses alone are ~2**120 and their
#   sums overflow (NaN standard errors); at 2**-30 they are ~2**-120, at the edge of the normal range.
# Outside the range the weights are scaled by 2**k (exact, ldexp) to M in [0.5, 1) and the
# results scaled back exactly: losses and their SEs by 2**(-2k), fields by 2**(-k),
# derivatives of fields (degree 0) not at all.  Inside it nothing changes, so the numbers are
# bit for bit those of the unscaled code.  Either way, a sum that still overflows (a problem
# too large for float32) or a result float64 cannot hold is a ValueError (``_unscale``).
UNSCALED_RANGE = {torch.float64: (2.0**-100, 2.0**100), torch.float32: (2.0**-8, 2.0**8)}


def _setup(W, W_star, device, dtype):
    """``(Z, s, K, dev, k)``: ``Z = 2**k [W; W_star]`` as a tensor, signs ``s``, ``K = len(W)``.

    ``k = 0`` when the largest entry is in :data:`UNSCALED_RANGE` for ``dtype``; otherwise
    ``2**k`` brings it into ``[0.5, 1)``.  A row too small, relative to the largest entry, to
    survive that normalisation in float64 (squared norm 0: norms spanning more than ~600
    orders of magnitude, as the closed forms refuse) or to have a nonzero squared norm in
    ``dtype`` in the frame the computation uses is a ``ValueError`` naming the row.
    """
    W = as_rows(W, "W")
    W_star = as_rows(W_star, "W_star")
    if W.shape[1] != W_star.shape[1]:
        raise ValueError(f"W has d = {W.shape[1]} but W_star has d = {W_star.shape[1]}")
    if dtype not in (torch.float32, torch.float64):
        raise ValueError(f"dtype must be torch.float32 or torch.float64; got {dtype!r}")
    dev = torch_device(device)
    Z = np.vstack([W, W_star])
    K = len(W)
    big = float(np.max(np.abs(Z)))
    k_norm = -math.frexp(big)[1]  # 2**k_norm * big is in [0.5, 1)
    lo, hi = UNSCALED_RANGE[dtype]
    k = 0 if lo <= big <= hi else k_norm
    Zn = np.ldexp(Z, k_norm)
    frame = (Z if k == 0 else np.ldexp(Z, k)).astype(np.float64 if dtype == torch.float64 else np.float32)
    with np.errstate(under="ignore"):
        vanished = ~np.any(Zn * Zn != 0, axis=1) | ~np.any(frame * frame != 0, axis=1)
    if vanished.any():
        i = int(np.flatnonzero(vanished)[0])
        name, row = ("W", i) if i < K else ("W_star", i - K)
        raise ValueError(
            f"row {row} of {name} is too small relative to the largest entry ({big:.3g}) to be represented "
            f"in {str(dtype).replace('torch.', '')} (its squared norm underflows to 0; norms span too many "
            "orders of magnitude)"
        )
    Z = torch.as_tensor(Z if k == 0 else np.ldexp(Z, k), dtype=dtype, device=dev)
    s = torch.cat([torch.ones(K), -torch.ones(len(W_star))]).to(dtype=dtype, device=dev)
    return Z, s, K, dev, k


def _unscale(x, e: int, what: str):
    """``x * 2**e`` (a float or an array), exactly; ``ValueError`` when that is not representable.

    ``x`` comes from the (possibly normalised) computation; a non-finite ``x`` means the sums
    overflowed there (the working dtype is too narrow for the problem).  With ``e = 0`` only
    that check is made and ``x`` is returned as it is.
    """
    arr = np.asarray(x, dtype=np.float64)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"the Monte-Carlo {what} is not finite: the running sums overflowed in the working "
                         "dtype (use float64, or fewer rows / a smaller d)")
    if e == 0:
        return x
    with np.errstate(over="ignore", under="ignore"):
        out = np.ldexp(arr, e)
        back = np.ldexp(out, -e)
    if not (np.all(np.isfinite(out)) and np.array_equal(back, arr)):
        mag = float(np.max(np.abs(arr)))
        where = "above" if np.any(~np.isfinite(out)) else "below"
        raise ValueError(
            f"the Monte-Carlo {what} of these weights (about 2**{math.frexp(mag)[1] + e} in magnitude) "
            f"is {where} the float64 range, so it cannot be returned: losses scale like |W|**2, fields like "
            "|W|; rescale the weights"
        )
    return float(out) if np.ndim(x) == 0 else out


def span_basis(Z: torch.Tensor) -> torch.Tensor:
    """Orthonormal basis ``Q`` (``d x m``) of the row span of ``Z`` (rank-revealing SVD)."""
    U, S, Vh = torch.linalg.svd(Z, full_matrices=False)
    tol = S.max() * max(Z.shape) * torch.finfo(Z.dtype).eps
    return Vh[S > tol].T.contiguous()


# ----------------------------------------------------------------------------- per-chunk statistics
# Bytes of one (rows x width) array of a block of a chunk's statistics on a CPU: 3/4 of a 2 MiB L2 cache
# (the 2-core VM's; common on current server cores).  Fixed rather than read from the machine, so that
# the blocks, and with them the rounding of every estimate, are the same on every machine.
_CPU_BLOCK_BYTES = 3 << 19


def _block_rows(dev: torch.device, width: int, itemsize: int) -> int | None:
    """Rows per block of a chunk's statistics on a CPU (``None``: the whole chunk, on other devices).

    The statistics make about a dozen passes over ``(rows x width)`` arrays (the samples, ``V``, their
    squares and products).  A whole chunk (tens of MiB) is read from main memory on every pass; a block
    of :data:`_CPU_BLOCK_BYTES` per array is read once and then served from cache.  On the 2-core VM
    (2 MiB L2; d = 100, K = K* = 10, float64, 5761-sample chunks) the statistics took 7.3 ms per chunk
    whole and 4.0 ms in blocks of 2048 rows.  A GPU wants large kernels.
    """
    if dev.type != "cpu":
        return None
    return max(256, _CPU_BLOCK_BYTES // (width * itemsize))


# public for the benchmarks: the rows per block of a chunk's statistics that monte_carlo takes
block_rows = _block_rows


def _blocked_stats(Y, Zy, s, K, Q, rows: int | None, scratch: dict | None = None) -> dict:
    """:func:`_chunk_stats` of ``Y`` formed over blocks of ``rows`` rows and added up (same keys)."""
    if rows is None or len(Y) <= rows:
        return _chunk_stats(Y, Zy, s, K, Q, scratch)
    total = None
    for r0 in range(0, len(Y), rows):
        stats = _chunk_stats(Y[r0:r0 + rows], Zy, s, K, Q, scratch)
        if total is None:
            total = stats
            continue
        for key, (sm, sq) in stats.items():
            total[key][0].add_(sm)
            total[key][1].add_(sq)
    return total


def _chunk_stats(Y, Zy, s, K, Q, scratch: dict | None = None):
    """Per-chunk sums and sums of squares of every per-sample statistic.

    ``Y``: samples (``n x width``): ``x`` itself (``Q is None``) or its span coordinates.
    ``Zy``: rows in the same coordinates.  Returns ``{key: (sum, sum_of_squares)}`` with
    keys ``loss/L`` ... and ``grad/L`` ... (``grad`` in the coordinates of ``Y``; the caller
    maps subspace coordinates back with ``Q``).  ``scratch``: a dict that keeps the subspace's
    outer-product buffer from chunk to chunk (:func:`_weighted_outer`).
    """
    pre = Y @ Zy.T
    ind = (pre > 0).to(Y.dtype)
    r = torch.relu(pre) @ s  # g - g*
    u = ind * s
    V = u @ Zy  # grad_x g - grad_x g*
    V2 = V * V
    lL = 0.5 * r * r
    lJ = 0.5 * V2.sum(1)
    lH = lL + lJ
    indW = ind[:, :K]
    rW = r[:, None] * indW
    out = {}
    for key, l in (("loss/L", lL), ("loss/J", lJ), ("loss/H", lH)):
        out[key] = (l.sum(), (l * l).sum())
    sum_L = rW.T @ Y
    sum_J = (indW.T @ u) @ Zy  # = indW^T V without an n x d product
    if Q is None:
        # per-sample H gradient 1_j (r x + V): its square is 1_j (r^2 x^2 + 2 r x V + V^2)
        sq_L = (rW * r[:, None]).T @ (Y * Y)
        sq_J = indW.T @ V2
        cross = rW.T @ (Y * V)
        out["grad/L"] = (sum_L, sq_L)
        out["grad/J"] = (sum_J, sq_J)
        out["grad/H"] = (sum_L + sum_J, sq_L + sq_J + 2 * cross)
    else:  # second moments as K x m x m matrices, mapped to the diagonal of Q M Q^T at the end
        T = r[:, None] * Y + V
        out["grad/L"] = (sum_L, _weighted_outer(rW * r[:, None], Y, scratch))
        out["grad/J"] = (sum_J, _weighted_outer(indW, V, scratch))
        out["grad/H"] = (sum_L + sum_J, _weighted_outer(indW, T, scratch))
    return out


def _weighted_outer(weights: torch.Tensor, Y: torch.Tensor, scratch: dict | None = None) -> torch.Tensor:
    """``sum_n weights[n, j] y_n y_n^T`` for every ``j`` (``K x m x m``), as one matrix product.

    The ``n x m^2`` outer products go into ``scratch["outer"]`` when a dict is given (kept from call to
    call, grown when too small): a fresh array of that size per chunk (~15 MB at m = 20) costs page
    faults whose number glibc varies from chunk to chunk (the subspace rate varied 3x between runs).
    The same operations either way, so the same numbers."""
    n, m = Y.shape
    if scratch is None:
        outer = torch.empty((n, m, m), dtype=Y.dtype, device=Y.device)
    else:
        buf = scratch.get("outer")
        if buf is None or buf.shape[1:] != (m, m) or len(buf) < n or buf.dtype != Y.dtype or buf.device != Y.device:
            buf = scratch["outer"] = torch.empty((n, m, m), dtype=Y.dtype, device=Y.device)
        outer = buf[:n]
    torch.mul(Y[:, :, None], Y[:, None, :], out=outer)
    return (weights.T @ outer.reshape(n, m * m)).reshape(-1, m, m)


class _Accumulator:
    """Running sums over chunks of every statistic of :func:`monte_carlo`.

    Elementwise statistics are :class:`ShiftedMoments`; the subspace gradients keep raw first
    moments (``K x m``) and second-moment matrices (``K x m x m``), whose diagonal in ``d``
    coordinates is formed at the end.
    """

    def __init__(self, Q):
        self.n = 0
        self.Q = Q
        self.moments, self.s1, self.s2 = {}, {}, {}

    def _raw(self, key: str) -> bool:
        return self.Q is not None and key.startswith("grad")

    def add(self, stats: dict, n: int) -> None:
        for key, (sm, sq) in stats.items():
            if not self._raw(key):
                self.moments.setdefault(key, ShiftedMoments()).add(sm, sq, n)
            elif key not in self.s1:
                self.s1[key], self.s2[key] = sm.clone(), sq.clone()
            else:
                self.s1[key] += sm
                self.s2[key] += sq
        self.n += n


def _finish(acc: _Accumulator, Q, meta) -> MCEstimate:
    n = acc.n
    loss, loss_se, mf, mf_se = {}, {}, {}, {}
    for p in PARTS:
        m = acc.moments[f"loss/{p}"]
        loss[p] = float(m.mean())
        loss_se[p] = float(m.standard_error())
        key = f"grad/{p}"
        if Q is None:
            mean, se = acc.moments[key].mean(), acc.moments[key].standard_error()
        else:
            first = acc.s1[key] / n  # K x m, span coordinates
            second = acc.s2[key] / n  # K x m x m
            mean = first @ Q.T
            # E[g_k^2] = diag(Q M Q^T)_k, var = (E g^2 - mean^2) * n/(n-1): moments in the span are
            # O(1) with O(1) variance here, so the raw-moment form loses no significant digits
            m2 = torch.einsum("ka,jab,kb->jk", Q, second, Q)
            se = torch.sqrt(torch.clamp((m2 - mean * mean) * n / (n - 1), min=0) / n)
        mf[p] = mean.detach().cpu().numpy().astype(np.float64)
        mf_se[p] = se.detach().cpu().numpy().astype(np.float64)
    return MCEstimate(n=n, loss=loss, loss_se=loss_se, mean_field=mf, mean_field_se=mf_se, **meta)


def _scale_back(est: MCEstimate, k: int, seconds: float) -> MCEstimate:
    """The estimate for the caller's weights from one for ``2**k`` times them (exact; see ``_setup``)."""
    def each(d: dict, e: int, what: str) -> dict:
        return {p: _unscale(v, e, f"{what}[{p!r}]") for p, v in d.items()}

    return MCEstimate(**{**est.__dict__, "seconds": seconds,
                         "loss": each(est.loss, -2 * k, "loss"), "loss_se": each(est.loss_se, -2 * k, "loss_se"),
                         "mean_field": each(est.mean_field, -k, "mean_field"),
                         "mean_field_se": each(est.mean_field_se, -k, "mean_field_se")})


def _run(W, W_star, checkpoints, seed, device, dtype, method, chunk_size, progress) -> Iterator[MCEstimate]:
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}; got {method!r}")
    seed = check_seed(seed)
    Z, s, K, dev, k = _setup(W, W_star, device, dtype)
    Q = span_basis(Z) if method == "subspace" else None
    Zy = Z if Q is None else Z @ Q
    width = Zy.shape[1]
    chunk = _chunk_size(chunk_size, checkpoints[-1], K, len(Z), width, dtype, dev, subspace=Q is not None)
    rows = _block_rows(dev, width, torch.finfo(dtype).bits // 8)
    scratch = {}  # buffers kept from chunk to chunk
    gen = _generator(seed, dev)
    meta = {"method": method, "seed": seed, "device": str(dev), "dtype": str(dtype).replace("torch.", "")}
    acc = _Accumulator(Q)
    bar = None
    start = time.perf_counter()
    try:
        for target in checkpoints:
            while acc.n < target:
                c = min(chunk, target - acc.n)
                Y = torch.randn((c, width), generator=gen, device=dev, dtype=dtype)
                acc.add(_blocked_stats(Y, Zy, s, K, Q, rows, scratch), c)
                if bar is None and progress is not False and acc.n < checkpoints[-1]:
                    elapsed = time.perf_counter() - start
                    remaining = elapsed * (checkpoints[-1] - acc.n) / acc.n
                    if progress or remaining > _SECONDS_BEFORE_PROGRESS:
                        from tqdm.auto import tqdm

                        bar = tqdm(total=checkpoints[-1], initial=acc.n, unit="sample", unit_scale=True,
                                   desc=f"Monte-Carlo ({method}, {dev})")
                elif bar is not None:
                    bar.update(c)
            yield _scale_back(_finish(acc, Q, meta), k, time.perf_counter() - start)
    finally:
        if bar is not None:
            bar.close()


def monte_carlo(W, W_star, n_samples, *, seed: int, device=None, dtype=torch.float64, method: str = "plain",
                chunk_size: int | None = None, progress: bool | None = None, a=None, a_star=None,
                activation="relu", cov=None, sobolev=(1.0, 0.0), train_output=False):
    """Monte-Carlo means and standard errors of ``L, J, H`` and their mean fields.

    ``n_samples``: an integer (returns one :class:`MCEstimate`) or a strictly increasing
    sequence of checkpoints (returns an iterator of running estimates, one per checkpoint,
    from one stream of samples).  ``device``: ``None`` (GPU when present, else CPU),
    ``"cpu"`` or ``"cuda"``.  ``method``: ``"plain"`` or ``"subspace"`` (Rao-Blackwellised,
    see the module docstring).  ``chunk_size``: samples per chunk (default: from a memory
    budget).  ``progress``: ``None`` shows a progress bar when the run is expected to take more
    than a few seconds.  ``seed``: see :func:`check_seed`.  Every argument is checked before any
    sampling starts; a result that float64 cannot represent is a ``ValueError`` (module docstring).

    ``a, a_star, activation, cov, sobolev, train_output``: the model family
    (:mod:`numerics.family`).  With their defaults (the paper's model) nothing changes; otherwise
    the call returns :func:`numerics.mc_family.monte_carlo_family` (autograd, a
    :class:`~numerics.mc_family.FamilyMCEstimate`) for a single integer ``n_samples`` and
    ``method="plain"``.

    Example (the witness agrees with the closed form within its standard error)::

        >>> import numpy as np, numerics
        >>> rng = np.random.default_rng(0)
        >>> W, W_star = rng.standard_normal((3, 5)), rng.standard_normal((2, 5))
        >>> est = numerics.monte_carlo(W, W_star, 20000, seed=0, progress=False)
        >>> bool(abs(est.loss["L"] - numerics.loss(W, W_star, "L")) < 5 * est.loss_se["L"])
        True
        >>> est.mean_field["J"].shape
        (3, 5)
    """
    from .mc_family import is_default_family, monte_carlo_family

    if isinstance(activation, str) and activation == "erf":
        return _erf_monte_carlo(W, W_star, n_samples, seed, method, device, dict(a=a, a_star=a_star, cov=cov,
                                                                                 sobolev=sobolev))
    if not is_default_family(a=a, a_star=a_star, activation=activation, cov=cov, sobolev=sobolev,
                             train_output=train_output):
        if isinstance(n_samples, (bool, np.bool_)) or not isinstance(n_samples, (int, np.integer)):
            raise ValueError(f"the model family (a, a_star, activation, cov, sobolev, train_output) takes a single "
                             f"integer n_samples, not checkpoints; got {n_samples!r}")
        if method != "plain":
            raise ValueError(f"the model family supports method='plain' only; got method={method!r}")
        return monte_carlo_family(W, W_star, n_samples, seed=seed, a=a, a_star=a_star, activation=activation,
                                  cov=cov, sobolev=sobolev, train_output=train_output, device=device, dtype=dtype,
                                  chunk_size=chunk_size, progress=progress)
    checkpoints = _checkpoints(n_samples)
    it = _run(W, W_star, checkpoints, seed, device, dtype, method, chunk_size, progress)
    if isinstance(n_samples, (int, np.integer)):
        return next(iter(it))
    first = next(it)  # run the checks (and the first stretch) now, not at the first next()

    def chained():
        yield first
        yield from it

    return chained()


def _erf_monte_carlo(W, W_star, n_samples, seed, method, device, keywords: dict):
    """The erf network's witness (:func:`numerics.erf_witness.monte_carlo`: per-sample autograd, float64, CPU), for
    a single integer ``n_samples`` and ``method="plain"``."""
    if isinstance(n_samples, (bool, np.bool_)) or not isinstance(n_samples, (int, np.integer)) or n_samples < 2:
        raise ValueError(f"activation='erf' takes a single integer n_samples >= 2; got {n_samples!r}")
    if method != "plain" or device not in (None, "cpu"):
        raise ValueError(f"activation='erf' runs method='plain' on the CPU; got method={method!r}, device={device!r}")
    from .erf_witness import monte_carlo as erf_monte_carlo  # imports torch, like the rest of this module

    return erf_monte_carlo(W, W_star, int(n_samples), seed=check_seed(seed), **keywords)


# ----------------------------------------------------------------------------- per-sample objects
def _network(W: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``g(x; W) = sum_j relu(w_j . x)`` for a batch ``x`` (``n x d``)."""
    return torch.relu(x @ W.T).sum(-1)


def sobolev_losses(g, g_star, dg, dg_star) -> dict:
    """The per-sample losses from the outputs and input gradients of student and teacher: the one
    definition every witness uses, ``l_L = (g - g*)^2 / 2``, ``l_J = |grad_x g - grad_x g*|^2 / 2``,
    ``l_H = l_L + l_J`` (``dg`` of shape ``(..., d)``)."""
    lL = 0.5 * (g - g_star) ** 2
    lJ = 0.5 * ((dg - dg_star) ** 2).sum(-1)
    return {"L": lL, "J": lJ, "H": lL + lJ}


def per_sample_losses(W: torch.Tensor, W_star: torch.Tensor, x: torch.Tensor) -> dict:
    """``l_L, l_J, l_H`` per sample, with ``grad_x g`` from autograd (``create_graph=True``).

    Differentiable in ``W``: what a practitioner's Sobolev loss is.
    """
    x = x.detach().requires_grad_(True)
    g = _network(W, x)
    g_star = _network(W_star, x)
    (dg,) = torch.autograd.grad(g.sum(), x, create_graph=True)
    (dg_star,) = torch.autograd.grad(g_star.sum(), x, create_graph=False)
    return sobolev_losses(g, g_star.detach(), dg, dg_star.detach())


def per_sample_gradients_autograd(W, W_star, x, part: str) -> torch.Tensor:
    """``d l_part / d W`` for every sample (``n x K x d``) by real autograd on the network.

    Each sample gets its own copy of ``W`` so that one backward pass returns the per-sample
    gradients; ``grad_x g`` is taken with ``create_graph=True`` and then differentiated in ``W``.
    """
    check_part(part)
    x = torch.as_tensor(x)
    W = torch.as_tensor(W, dtype=x.dtype, device=x.device)
    W_star = torch.as_tensor(W_star, dtype=x.dtype, device=x.device)
    Wb = W.expand(len(x), *W.shape).clone().requires_grad_(True)
    xg = x.detach().clone().requires_grad_(True)
    g = torch.relu(torch.einsum("nkd,nd->nk", Wb, xg)).sum(-1)
    g_star = torch.relu(xg @ W_star.T).sum(-1)
    (dg,) = torch.autograd.grad(g.sum(), xg, create_graph=True)
    (dg_star,) = torch.autograd.grad(g_star.sum(), xg, create_graph=True)
    loss = sobolev_losses(g, g_star, dg, dg_star)[part]
    (grad,) = torch.autograd.grad(loss.sum(), Wb)
    return grad.detach()


def per_sample_gradients_closed(W, W_star, x, part: str) -> torch.Tensor:
    """The closed per-sample expression of ``d l_part / d W`` (``n x K x d``), used for speed."""
    check_part(part)
    x = torch.as_tensor(x)
    W = torch.as_tensor(W, dtype=x.dtype, device=x.device)
    W_star = torch.as_tensor(W_star, dtype=x.dtype, device=x.device)
    pre, pre_s = x @ W.T, x @ W_star.T
    ind, ind_s = (pre > 0).to(x.dtype), (pre_s > 0).to(x.dtype)
    r = torch.relu(pre).sum(-1) - torch.relu(pre_s).sum(-1)
    V = ind @ W - ind_s @ W_star
    gL = (r[:, None] * ind)[:, :, None] * x[:, None, :]
    gJ = ind[:, :, None] * V[:, None, :]
    return {"L": gL, "J": gJ, "H": gL + gJ}[part]


def true_gradient_fd(W, W_star, part: str, n_samples: int, *, seed: int, h: float = 1e-2, device=None,
                     dtype=torch.float64, chunk_size: int = 100_000) -> tuple:
    """Witness of the **true** gradient: central differences of the MC loss, common random numbers.

    For each coordinate ``(i, k)``, the per-sample differences
    ``(l(x; W + h|w_i| e_ik) - l(x; W - h|w_i| e_ik)) / (2 h |w_i|)`` on the *same* samples are
    averaged; returns ``(estimate, standard_error)`` as ``(K, d)`` arrays.  Unbiased for the
    central difference of the population loss, which differs from the true gradient by
    ``O(h^2)`` where the loss is smooth; the indicator jumps of ``l_J`` inside the step are
    what carry the boundary term that the mean field lacks.  Cost: ``2 K d`` loss evaluations
    per sample: meant for small ``K d``.
    """
    check_part(part)
    n = _checkpoints(n_samples)[-1]
    seed, h, chunk_size = check_seed(seed), _check_step(h), _check_chunk(chunk_size)
    Z, s, K, dev, scale = _setup(W, W_star, device, dtype)
    Wt, Ws = Z[:K], Z[K:]
    d = Wt.shape[1]
    steps = h * torch.linalg.norm(Wt, dim=1)
    _check_steps(Wt, steps, h)
    gen = _generator(seed, dev)
    moments = ShiftedMoments()
    done = 0
    while done < n:
        c = min(chunk_size, n - done)
        x = torch.randn((c, d), generator=gen, device=dev, dtype=dtype)
        diffs = torch.empty(c, K, d, dtype=dtype, device=dev)
        for i in range(K):
            for k in range(d):
                E = torch.zeros_like(Wt)
                E[i, k] = steps[i]
                with torch.no_grad():
                    diffs[:, i, k] = (_closed_losses(Wt + E, Ws, x)[part]
                                      - _closed_losses(Wt - E, Ws, x)[part]) / (2 * steps[i])
        moments.add_samples(diffs)
        done += c
    # the gradient is of degree 1 in (W, W_star): undo the scaling by 2**scale exactly
    return (_unscale(moments.mean().cpu().numpy().astype(np.float64), -scale, "true-gradient estimate"),
            _unscale(moments.standard_error().cpu().numpy().astype(np.float64), -scale,
                     "true-gradient standard error"))


def _check_steps(Wt: torch.Tensor, steps: torch.Tensor, h: float) -> None:
    """Every step ``h |w_i|`` must be finite and move every entry of its row (else the central
    difference is ``0 / step``, a spurious zero with zero standard error, or not finite)."""
    E = steps[:, None].expand_as(Wt)
    ok = torch.isfinite(steps).all() and bool(((Wt + E) != Wt).all()) and bool(((Wt - E) != Wt).all())
    if not ok:
        raise ValueError(f"h = {h!r} gives steps h |w_i| = {steps.tolist()} that are not finite or too small to "
                         f"change the entries of W in {str(Wt.dtype).replace('torch.', '')}; choose h near 1e-2")


def _closed_losses(W, W_star, x) -> dict:
    """:func:`sobolev_losses` with the network's input gradient written out (``sum_j 1{w_j.x>0} w_j``)."""
    pre, pre_s = x @ W.T, x @ W_star.T
    return sobolev_losses(torch.relu(pre).sum(-1), torch.relu(pre_s).sum(-1),
                          (pre > 0).to(x.dtype) @ W, (pre_s > 0).to(x.dtype) @ W_star)


def autograd_hessian_mc(W, W_star, part: str, n_samples: int, *, seed: int, device=None,
                        dtype=torch.float64, chunk_size: int = 20_000) -> tuple:
    """Witness of the **expected autograd Hessian**: mean and standard error, ``(K d, K d)``.

    Per sample, autograd's Hessian of ``l_L`` in ``W`` has blocks ``1{w_j.x>0} 1{w_l.x>0} x x^T``
    (``sigma'' = 0``) and that of ``l_J`` has ``1{w_j.x>0} 1{w_l.x>0} I``;
    :func:`per_sample_autograd_hessian` computes it with ``torch.func.hessian`` to check this.
    Meant for small ``K d``.
    """
    check_part(part)
    n = _checkpoints(n_samples)[-1]
    seed, chunk_size = check_seed(seed), _check_chunk(chunk_size)
    Z, s, K, dev, _ = _setup(W, W_star, device, dtype)  # of degree 0: only the signs of x . w_j enter
    d = Z.shape[1]
    gen = _generator(seed, dev)
    eye = torch.eye(d, dtype=dtype, device=dev)
    moments = ShiftedMoments()
    done = 0
    while done < n:
        c = min(chunk_size, n - done)
        x = torch.randn((c, d), generator=gen, device=dev, dtype=dtype)
        ind = (x @ Z[:K].T > 0).to(dtype)
        hL = torch.einsum("nj,nl,nd,ne->njdle", ind, ind, x, x)
        hJ = torch.einsum("nj,nl,de->njdle", ind, ind, eye)
        hs = {"L": hL, "J": hJ, "H": hL + hJ}[part]
        moments.add_samples(hs)
        done += c
    shape = (K * d, K * d)
    return (_unscale(moments.mean().reshape(shape).cpu().numpy().astype(np.float64), 0, "autograd-Hessian estimate"),
            _unscale(moments.standard_error().reshape(shape).cpu().numpy().astype(np.float64), 0,
                     "autograd-Hessian standard error"))


def per_sample_autograd_hessian(W, W_star, x_single, part: str) -> torch.Tensor:
    """``torch.func.hessian`` of one sample's loss in ``W`` (``K d x K d``), through ``grad_x g``."""
    x_single = torch.as_tensor(x_single)
    W = torch.as_tensor(W, dtype=x_single.dtype)
    W_star = torch.as_tensor(W_star, dtype=x_single.dtype)
    K, d = W.shape

    def loss(flat):
        Wm = flat.reshape(K, d)

        def g(xx):
            return torch.relu(Wm @ xx).sum()

        def g_star(xx):
            return torch.relu(W_star @ xx).sum()

        dg = torch.func.grad(g)(x_single)
        dg_star = torch.func.grad(g_star)(x_single)
        return sobolev_losses(g(x_single), g_star(x_single), dg, dg_star)[part]

    return torch.func.hessian(loss)(W.reshape(-1)).detach()


def mean_field_jacobian_fd(W, W_star, part: str, n_samples: int, *, seed: int, h: float = 1e-2, device=None,
                           dtype=torch.float64, chunk_size: int = 100_000) -> tuple:
    """Witness of the **Jacobian of the mean field**: central differences, common random numbers.

    For each coordinate ``(l, k)`` of ``W``, the per-sample differences of the closed per-sample
    gradients ``(grad l(x; W + h|w_l| e_lk) - grad l(x; W - h|w_l| e_lk)) / (2 h |w_l|)`` on the
    same samples are averaged.  Returns ``(estimate, standard_error)`` as ``(K d, K d)`` arrays,
    entry ``[i d + a, l d + k] = d G_ia / d W_lk`` (the layout of ``numerics.hessian``).
    """
    check_part(part)
    n = _checkpoints(n_samples)[-1]
    seed, h, chunk_size = check_seed(seed), _check_step(h), _check_chunk(chunk_size)
    Z, s, K, dev, _ = _setup(W, W_star, device, dtype)  # the Jacobian is of degree 0: no scaling back
    Wt, Ws = Z[:K], Z[K:]
    d = Wt.shape[1]
    steps = h * torch.linalg.norm(Wt, dim=1)
    _check_steps(Wt, steps, h)
    gen = _generator(seed, dev)
    moments = ShiftedMoments()
    done = 0
    while done < n:
        c = min(chunk_size, n - done)
        x = torch.randn((c, d), generator=gen, device=dev, dtype=dtype)
        diffs = torch.empty(c, K * d, K * d, dtype=dtype, device=dev)
        for l in range(K):
            for k in range(d):
                E = torch.zeros_like(Wt)
                E[l, k] = steps[l]
                diff = (per_sample_gradients_closed(Wt + E, Ws, x, part)
                        - per_sample_gradients_closed(Wt - E, Ws, x, part)).reshape(c, K * d) / (2 * steps[l])
                diffs[:, :, l * d + k] = diff
        moments.add_samples(diffs)
        done += c
    return (_unscale(moments.mean().cpu().numpy().astype(np.float64), 0, "mean-field Jacobian estimate"),
            _unscale(moments.standard_error().cpu().numpy().astype(np.float64), 0,
                     "mean-field Jacobian standard error"))
