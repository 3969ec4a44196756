"""The Monte-Carlo engine's chunk statistics as one Triton kernel (CUDA GPUs with Triton installed).

What it computes: exactly what :func:`numerics.mc._chunk_stats` computes for the plain method, the
per-chunk sums and sums of squares of the per-sample losses ``l_L, l_J, l_H`` and of the per-sample
gradients ``d l / d W`` (the mean field's summands), from the chunk's samples ``Y`` (``n x d``).
Only the order of the floating-point additions differs, so the numbers agree to rounding.

Why a kernel: the unfused statistics are a dozen PyTorch operations, each a pass over an
``n x d`` array in GPU memory (the samples, ``V = grad_x g - grad_x g*``, their squares and
products), while the bare loop they are measured against (draw, two matrix products) makes three.
On an H100 the unfused engine ran at 0.20 of the bare loop.  Here each program reads its tiles of
samples once, forms every per-sample quantity in registers and accumulates the statistics with
small matrix products (``tl.dot``): one read of the samples per chunk.

Determinism: a fixed number of programs (:data:`PROGRAMS`, not read from the card), each summing
a fixed contiguous range of tiles in order and writing its own partial sums, which are then added
by one ``torch.sum``: no atomics, so the same chunk gives the same bits on the same card.

Scope: ``d <= MAX_WIDTH`` and ``K, K* <= MAX_ROWS`` (the tiles must fit in registers); float32 and
float64 (float32 products in IEEE precision, never TF32).  :func:`usable` says whether a chunk can
go through the kernel; otherwise :mod:`numerics.mc` uses the unfused statistics.  Importing this
module imports neither Triton nor CUDA: the kernel is built on first use.
"""
from __future__ import annotations

import functools

import torch

MAX_WIDTH = 128  # d, padded to a power of two: the tiles of samples and of V live in registers
MAX_ROWS = 32  # K and K*, each padded to a power of two (at least 16, tl.dot's smallest size)
PROGRAMS = 528  # fixed, so that the order of the sums does not depend on the card (4 per SM on an H100)
TILE_ROWS = {torch.float64: 32, torch.float32: 64}  # samples per tile
WARPS = {torch.float64: 4, torch.float32: 4}


@functools.cache
def triton_available() -> bool:
    """Whether Triton can be imported (it comes with PyTorch's CUDA builds)."""
    try:
        import triton  # noqa: F401
        import triton.language  # noqa: F401
    except ImportError:
        return False
    return True


def _padded(m: int) -> int:
    """``m`` rounded up to a power of two, at least 16 (the smallest side of a ``tl.dot``)."""
    return max(16, 1 << (m - 1).bit_length())


def usable(dev: torch.device, width: int, K: int, K_star: int, dtype) -> bool:
    """Whether the plain method's chunk statistics can run as the fused kernel here."""
    return (dev.type == "cuda" and dtype in (torch.float32, torch.float64) and width <= MAX_WIDTH
            and max(K, K_star) <= MAX_ROWS and triton_available())


@functools.cache
def _kernel():
    """The Triton kernel, built on first use (so that importing this module needs no Triton)."""
    import triton
    import triton.language as tl

    @triton.jit
    def chunk_stats_kernel(y_ptr, w_ptr, ws_ptr, mat_ptr, cnt_ptr, loss_ptr, n, d, tiles_per_program,
                           BN: tl.constexpr, D: tl.constexpr, KK: tl.constexpr, KS: tl.constexpr):
        pid = tl.program_id(0)
        dt = y_ptr.dtype.element_ty
        cols = tl.arange(0, D)
        kk = tl.arange(0, KK)
        ks = tl.arange(0, KS)
        # the rows of W and W*, zero-padded by the caller to KK x D and KS x D: a zero row has
        # pre-activation 0, so indicator 0 and no contribution to anything
        w = tl.load(w_ptr + kk[:, None] * D + cols[None, :])
        ws = tl.load(ws_ptr + ks[:, None] * D + cols[None, :])
        w_t = tl.trans(w)
        ws_t = tl.trans(ws)
        sum_l = tl.zeros((KK, D), dt)  # sum_n r 1_j x
        sq_l = tl.zeros((KK, D), dt)  # sum_n r^2 1_j x^2
        sq_j = tl.zeros((KK, D), dt)  # sum_n 1_j V^2
        cross = tl.zeros((KK, D), dt)  # sum_n r 1_j x V
        cnt_w = tl.zeros((KK, KK), dt)  # sum_n 1_j 1_k: with cnt_s gives sum_n 1_j V exactly
        cnt_s = tl.zeros((KK, KS), dt)
        l_l = tl.zeros((BN,), dt)
        l_l2 = tl.zeros((BN,), dt)
        l_j = tl.zeros((BN,), dt)
        l_j2 = tl.zeros((BN,), dt)
        l_h2 = tl.zeros((BN,), dt)
        t = pid * 0
        while t < tiles_per_program:  # (a while loop: Triton's interpreter cannot index range() by an argument)
            rows = (pid * tiles_per_program + t) * BN + tl.arange(0, BN)
            # rows past n (and columns past d) load as 0: a zero sample contributes 0 to every sum
            y = tl.load(y_ptr + rows[:, None] * d + cols[None, :], mask=(rows[:, None] < n) & (cols[None, :] < d),
                        other=0.0)
            pre_w = tl.dot(y, w_t, input_precision="ieee", out_dtype=dt)
            pre_s = tl.dot(y, ws_t, input_precision="ieee", out_dtype=dt)
            ind_w = (pre_w > 0).to(dt)
            ind_s = (pre_s > 0).to(dt)
            r = tl.sum(tl.maximum(pre_w, 0.0), 1) - tl.sum(tl.maximum(pre_s, 0.0), 1)  # g - g*
            v = (tl.dot(ind_w, w, input_precision="ieee", out_dtype=dt)
                 - tl.dot(ind_s, ws, input_precision="ieee", out_dtype=dt))  # grad_x g - grad_x g*
            loss_l = 0.5 * r * r
            loss_j = 0.5 * tl.sum(v * v, 1)
            loss_h = loss_l + loss_j
            l_l += loss_l
            l_l2 += loss_l * loss_l
            l_j += loss_j
            l_j2 += loss_j * loss_j
            l_h2 += loss_h * loss_h
            rw = r[:, None] * ind_w
            rw_t = tl.trans(rw)
            ind_w_t = tl.trans(ind_w)
            sum_l = tl.dot(rw_t, y, sum_l, input_precision="ieee", out_dtype=dt)
            sq_l = tl.dot(tl.trans(rw * r[:, None]), y * y, sq_l, input_precision="ieee", out_dtype=dt)
            sq_j = tl.dot(ind_w_t, v * v, sq_j, input_precision="ieee", out_dtype=dt)
            cross = tl.dot(rw_t, y * v, cross, input_precision="ieee", out_dtype=dt)
            cnt_w = tl.dot(ind_w_t, ind_w, cnt_w, input_precision="ieee", out_dtype=dt)
            cnt_s = tl.dot(ind_w_t, ind_s, cnt_s, input_precision="ieee", out_dtype=dt)
            t += 1
        base = mat_ptr + pid * 4 * KK * D + kk[:, None] * D + cols[None, :]
        tl.store(base, sum_l)
        tl.store(base + KK * D, sq_l)
        tl.store(base + 2 * KK * D, sq_j)
        tl.store(base + 3 * KK * D, cross)
        cbase = cnt_ptr + pid * KK * (KK + KS) + kk[:, None] * (KK + KS)
        tl.store(cbase + kk[None, :], cnt_w)
        tl.store(cbase + KK + ks[None, :], cnt_s)
        lbase = loss_ptr + pid * 5
        tl.store(lbase, tl.sum(l_l, 0))
        tl.store(lbase + 1, tl.sum(l_l2, 0))
        tl.store(lbase + 2, tl.sum(l_j, 0))
        tl.store(lbase + 3, tl.sum(l_j2, 0))
        tl.store(lbase + 4, tl.sum(l_h2, 0))

    return chunk_stats_kernel


def _pad_rows(A: torch.Tensor, rows: int, cols: int) -> torch.Tensor:
    out = torch.zeros((rows, cols), dtype=A.dtype, device=A.device)
    out[:A.shape[0], :A.shape[1]] = A
    return out


def fused_chunk_stats(Y: torch.Tensor, Zy: torch.Tensor, K: int, *, tile_rows: int | None = None,
                      warps: int | None = None, programs: int = PROGRAMS) -> dict:
    """The plain method's chunk statistics of ``Y`` (``n x d``) for the rows ``Zy = [W; W*]``: the same
    keys and meaning as :func:`numerics.mc._chunk_stats` with ``Q = None``.

    ``tile_rows``, ``warps``, ``programs``: the kernel's launch shape (defaults: :data:`TILE_ROWS`,
    :data:`WARPS`, :data:`PROGRAMS`); they change the order of the additions, so the rounding.
    Runs wherever Triton runs: on a CUDA GPU, or on the CPU under ``TRITON_INTERPRET=1`` (the tests).
    """
    dt = Y.dtype
    n, d = Y.shape
    K_star = Zy.shape[0] - K
    D, KK, KS = _padded(d), _padded(K), _padded(K_star)
    BN = tile_rows or TILE_ROWS[dt]
    Y = Y.contiguous()
    w, ws = _pad_rows(Zy[:K], KK, D), _pad_rows(Zy[K:], KS, D)
    tiles = -(-n // BN)
    per_program = -(-tiles // programs)
    mats = torch.empty((programs, 4, KK, D), dtype=dt, device=Y.device)
    counts = torch.empty((programs, KK, KK + KS), dtype=dt, device=Y.device)
    losses = torch.empty((programs, 5), dtype=dt, device=Y.device)
    _kernel()[(programs,)](Y, w, ws, mats, counts, losses, n, d, per_program, BN=BN, D=D, KK=KK, KS=KS,
                           num_warps=warps or WARPS[dt])
    sum_l, sq_l, sq_j, cross = (m[:K, :d] for m in mats.sum(0))
    cnt = counts.sum(0)
    # sum_n 1_j V = sum_n 1_j (sum_k 1_k w_k - sum_k 1*_k w*_k): integer counts (exact) times the rows
    sum_j = cnt[:K, :K] @ Zy[:K] - cnt[:K, KK:KK + K_star] @ Zy[K:]
    ls = losses.sum(0)
    loss_h = ls[0] + ls[2]
    return {"loss/L": (ls[0], ls[1]), "loss/J": (ls[2], ls[3]), "loss/H": (loss_h, ls[4]),
            "grad/L": (sum_l, sq_l), "grad/J": (sum_j, sq_j), "grad/H": (sum_l + sum_j, sq_l + sq_j + 2 * cross)}
