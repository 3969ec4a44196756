"""The Monte-Carlo witness: per-sample semantics, agreement with the closed forms, bad input.

Statistical decisions use z-scores with a family-wise level ALPHA = 1e-3 per test,
Bonferroni-corrected over the entries compared (threshold ``Phi^-1(1 - ALPHA / (2 N))``).
Every random stream is seeded, so each test is deterministic; the level bounds how often
a correct implementation would fail for a fresh seed.
"""
import math

import numpy as np
import pytest
import torch
from scipy import stats

import numerics
from numerics import mc

ALPHA = 1e-3


def z_threshold(n_entries: int) -> float:
    return float(stats.norm.isf(ALPHA / (2 * n_entries)))


def weights(seed, K, Ks, d):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((K, d)), rng.standard_normal((Ks, d))


@pytest.mark.parametrize("K,Ks,d", [(1, 1, 2), (2, 3, 4), (3, 2, 7)])
@pytest.mark.parametrize("part", ["L", "J", "H"])
def test_per_sample_gradients_autograd_equal_closed(K, Ks, d, part):
    W, Ws = weights(K * 100 + d, K, Ks, d)
    x = torch.randn(200, d, dtype=torch.float64, generator=torch.Generator().manual_seed(d))
    a = mc.per_sample_gradients_autograd(W, Ws, x, part)
    b = mc.per_sample_gradients_closed(W, Ws, x, part)
    # both are float64 evaluations of the same per-sample expression: agreement to rounding
    assert torch.allclose(a, b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("part", ["L", "J", "H"])
def test_per_sample_autograd_hessian_has_no_delta_terms(part):
    W, Ws = weights(5, 2, 2, 3)
    x = torch.randn(3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    H = mc.per_sample_autograd_hessian(W, Ws, x, part).numpy()
    ind = (W @ x.numpy() > 0).astype(float)
    d = 3
    expect = np.zeros((6, 6))
    for j in range(2):
        for l in range(2):
            block = np.zeros((d, d))
            if part in ("L", "H"):
                block += ind[j] * ind[l] * np.outer(x.numpy(), x.numpy())
            if part in ("J", "H"):
                block += ind[j] * ind[l] * np.eye(d)
            expect[j * d:(j + 1) * d, l * d:(l + 1) * d] = block
    np.testing.assert_allclose(H, expect, rtol=1e-12, atol=1e-12)  # exact up to rounding


def _closed(W, Ws):
    return ({p: numerics.loss(W, Ws, p) for p in numerics.PARTS},
            {p: numerics.gradient(W, Ws, p, "mean") for p in numerics.PARTS})


@pytest.mark.parametrize("method", ["plain", "subspace"])
@pytest.mark.parametrize("K,Ks,d", [(1, 1, 2), (2, 4, 30), (4, 3, 8)])
def test_monte_carlo_agrees_with_closed_forms(method, K, Ks, d):
    W, Ws = weights(K + 10 * Ks + 100 * d, K, Ks, d)
    est = mc.monte_carlo(W, Ws, 100_000, seed=11, method=method, progress=False)
    z = np.concatenate([np.ravel(v) for v in est.z_scores(*_closed(W, Ws)).values()])
    assert np.abs(z).max() < z_threshold(z.size)


def test_plain_and_subspace_agree_within_standard_errors():
    W, Ws = weights(3, 2, 2, 50)
    a = mc.monte_carlo(W, Ws, 50_000, seed=1, method="plain", progress=False)
    b = mc.monte_carlo(W, Ws, 50_000, seed=2, method="subspace", progress=False)
    zs = [(a.loss[p] - b.loss[p]) / math.hypot(a.loss_se[p], b.loss_se[p]) for p in numerics.PARTS]
    for p in numerics.PARTS:
        zs.extend(np.ravel((a.mean_field[p] - b.mean_field[p]) / np.hypot(a.mean_field_se[p], b.mean_field_se[p])))
    assert np.abs(zs).max() < z_threshold(len(zs))
    # subspace sampling integrates the orthogonal part exactly: the L mean field's errors shrink
    assert np.median(b.mean_field_se["L"] / a.mean_field_se["L"]) < 0.7


def test_same_seed_same_numbers_and_seed_matters():
    W, Ws = weights(4, 2, 2, 5)
    a = mc.monte_carlo(W, Ws, 20_000, seed=7, progress=False)
    b = mc.monte_carlo(W, Ws, 20_000, seed=7, progress=False)
    c = mc.monte_carlo(W, Ws, 20_000, seed=8, progress=False)
    assert a.loss == b.loss and all(np.array_equal(a.mean_field[p], b.mean_field[p]) for p in numerics.PARTS)
    assert a.loss["L"] != c.loss["L"]


def test_checkpoints_yield_running_estimates():
    W, Ws = weights(6, 2, 2, 4)
    ests = list(mc.monte_carlo(W, Ws, [4_000, 16_000, 64_000], seed=3, progress=False))
    assert [e.n for e in ests] == [4_000, 16_000, 64_000]
    # standard errors fall like n^(-1/2): a factor 1/2 per 4x samples; the SE estimates
    # themselves fluctuate by ~1/sqrt(2 n) relative, far below the 0.15 allowed here
    for early, late in zip(ests, ests[1:]):
        ratio = late.mean_field_se["H"] / early.mean_field_se["H"]
        assert np.all(np.abs(ratio - 0.5) < 0.15)


def test_float32_runs_and_agrees():
    W, Ws = weights(8, 2, 1, 6)
    est = mc.monte_carlo(W, Ws, 50_000, seed=1, dtype=torch.float32, progress=False)
    z = np.concatenate([np.ravel(v) for v in est.z_scores(*_closed(W, Ws)).values()])
    assert np.abs(z).max() < z_threshold(z.size)
    assert est.dtype == "float32"


def test_streaming_with_small_chunks_is_statistically_consistent():
    W, Ws = weights(9, 3, 3, 10)
    est = mc.monte_carlo(W, Ws, 60_000, seed=4, chunk_size=997, progress=False)
    z = np.concatenate([np.ravel(v) for v in est.z_scores(*_closed(W, Ws)).values()])
    assert np.abs(z).max() < z_threshold(z.size)


@pytest.mark.parametrize("part", ["L", "J", "H"])
def test_true_gradient_witness_separates_the_two_fields(part):
    W, Ws = weights(21, 1, 1, 3)
    est, se = mc.true_gradient_fd(W, Ws, part, 300_000, seed=2, h=1e-2)
    true = numerics.gradient(W, Ws, part, "true")
    mean = numerics.gradient(W, Ws, part, "mean")
    zt = z_threshold(est.size)
    # O(h^2) bias of the central difference: h = 1e-2 of |w| gives ~1e-4 relative, far below 1 SE here
    assert np.abs((est - true) / se).max() < zt
    if part == "L":
        np.testing.assert_allclose(true, mean, rtol=1e-12, atol=1e-14)
    else:
        assert np.abs((est - mean) / se).max() > zt  # the mean field is not the gradient of J, H


@pytest.mark.parametrize("part", ["L", "J", "H"])
def test_mean_field_jacobian_witness(part):
    W, Ws = weights(22, 2, 1, 2)
    est, se = mc.mean_field_jacobian_fd(W, Ws, part, 200_000, seed=5, h=1e-2)
    closed = numerics.hessian(W, Ws, part, "mean")
    assert np.abs((est - closed) / se).max() < z_threshold(est.size)


@pytest.mark.parametrize("part", ["L", "J", "H"])
def test_autograd_hessian_witness(part):
    W, Ws = weights(23, 2, 2, 3)
    est, se = mc.autograd_hessian_mc(W, Ws, part, 100_000, seed=6)
    closed = numerics.hessian(W, Ws, part, "autograd")
    random = se > 0
    assert np.abs((est - closed)[random] / se[random]).max() < z_threshold(int(random.sum()))
    # entries with zero sample variance are the same constant in every sample: exact
    np.testing.assert_allclose(est[~random], closed[~random], atol=1e-12)


@pytest.mark.parametrize("kwargs,match", [
    ({"n_samples": 0}, "at least 2"),
    ({"n_samples": -5}, "at least 2"),
    ({"n_samples": 2.5}, "positive integer"),
    ({"n_samples": [100, 50]}, "strictly increasing"),
    ({"n_samples": []}, "empty"),
    ({"device": "tpu"}, "device"),
    ({"method": "quasi"}, "method"),
    ({"dtype": torch.int64}, "dtype"),
    ({"chunk_size": 10**13}, "chunk"),
    ({"chunk_size": 0}, "chunk_size"),
    ({"seed": "x"}, "seed"),
])
def test_bad_arguments_fail_before_any_work(kwargs, match):
    W, Ws = weights(1, 1, 1, 3)
    args = {"n_samples": 1000, "seed": 0, **kwargs}
    n = args.pop("n_samples")
    with pytest.raises(ValueError, match=match):
        mc.monte_carlo(W, Ws, n, progress=False, **args)


def test_bad_weights_and_missing_gpu():
    W, Ws = weights(1, 1, 1, 3)
    bad = W.copy()
    bad[0, 1] = np.nan
    with pytest.raises(ValueError, match=r"W\[0, 1\]"):
        mc.monte_carlo(bad, Ws, 100, seed=0)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA GPU"):
            mc.monte_carlo(W, Ws, 100, seed=0, device="cuda")


# ----------------------------------------------------------------------------- cache-sized blocks (CPU)
@pytest.mark.parametrize("subspace", [False, True])
def test_blocked_statistics_are_the_chunk_statistics_to_rounding(subspace):
    """The statistics of a chunk formed over blocks of rows (uneven last block) are its sums and sums of
    squares: the same numbers added in another order, so equal to ~1e-13 relative."""
    W, Ws = weights(31, 3, 2, 7)
    Z = torch.tensor(np.vstack([W, Ws]))
    s = torch.tensor([1.0] * 3 + [-1.0] * 2, dtype=torch.float64)
    Q = mc.span_basis(Z) if subspace else None
    Zy = Z if Q is None else Z @ Q
    Y = torch.randn(1000, Zy.shape[1], dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    whole = mc._chunk_stats(Y, Zy, s, 3, Q)
    blocked = mc._blocked_stats(Y, Zy, s, 3, Q, rows=256)
    assert whole.keys() == blocked.keys()
    for key in whole:
        for a, b in zip(whole[key], blocked[key]):
            torch.testing.assert_close(b, a, rtol=1e-13, atol=1e-13 * float(a.abs().max()))


def test_block_rows_fit_the_block_budget_on_a_cpu_only():
    """Blocks of at least 256 rows whose (rows x width) array takes at most _CPU_BLOCK_BYTES (unless 256 rows
    do not fit); other devices get the whole chunk."""
    rows = mc._block_rows(torch.device("cpu"), 100, 8)
    assert 256 <= rows and rows * 100 * 8 <= mc._CPU_BLOCK_BYTES < (rows + 1) * 100 * 8
    assert mc._block_rows(torch.device("cpu"), 10_000, 8) == 256
    assert mc._block_rows(torch.device("meta"), 100, 8) is None


def test_estimates_do_not_depend_on_the_block_size_beyond_rounding(monkeypatch):
    """The same samples whatever the blocks (they only regroup a chunk's sums): estimates equal to rounding."""
    W, Ws = weights(32, 2, 3, 6)
    ref = mc.monte_carlo(W, Ws, 20_000, seed=7, device="cpu", progress=False)
    monkeypatch.setattr(mc, "_CPU_BLOCK_BYTES", 1024)  # blocks of 256 rows
    small = mc.monte_carlo(W, Ws, 20_000, seed=7, device="cpu", progress=False)
    for p in numerics.PARTS:
        assert small.loss[p] == pytest.approx(ref.loss[p], rel=1e-12)
        assert small.loss_se[p] == pytest.approx(ref.loss_se[p], rel=1e-9)
        np.testing.assert_allclose(small.mean_field[p], ref.mean_field[p], rtol=0,
                                   atol=1e-12 * np.abs(ref.mean_field[p]).max())
        np.testing.assert_allclose(small.mean_field_se[p], ref.mean_field_se[p], rtol=1e-8)


def test_outer_product_buffer_changes_no_number(monkeypatch):
    """The subspace's outer products in a buffer kept from chunk to chunk (reused, grown, and with a last
    chunk shorter than the buffer) give the numbers of fresh arrays, bit for bit."""
    g = torch.Generator().manual_seed(5)
    scratch = {}
    for n, m in ((300, 4), (120, 4), (500, 4), (50, 6)):
        Y = torch.randn(n, m, dtype=torch.float64, generator=g)
        w = torch.rand(n, 3, dtype=torch.float64, generator=g)
        assert torch.equal(mc._weighted_outer(w, Y, scratch), mc._weighted_outer(w, Y))
    W, Ws = weights(33, 2, 3, 8)
    kept = mc.monte_carlo(W, Ws, 30_000, seed=2, method="subspace", chunk_size=7_000, progress=False)
    real = mc._weighted_outer
    monkeypatch.setattr(mc, "_weighted_outer", lambda w, Y, scratch=None: real(w, Y))
    fresh = mc.monte_carlo(W, Ws, 30_000, seed=2, method="subspace", chunk_size=7_000, progress=False)
    assert kept == fresh
