"""The fused Monte-Carlo chunk statistics (numerics.mc_fused, a Triton kernel) against the unfused ones.

Object: per-chunk sums and sums of squares of the per-sample losses and per-sample gradients (the
summands of the mean field), not the population gradient.

On a machine without a GPU the kernel runs under Triton's interpreter (``TRITON_INTERPRET=1``, NumPy on
the CPU), which executes the same kernel source: its arithmetic is checked here and its speed on a GPU in
``benchmarks/gpu.py``.  The GPU tests at the end run only where CUDA is present.

Tolerance: the fused and unfused statistics add the same n per-sample terms in different orders, so
each sum differs by at most ~ n eps (sum of |terms|) (the standard bound for recursive summation; the
products inside a term add ~ (K + d) eps more).  Every statistic here is compared relative to the
largest entry of its array, with the bound 4 (n + K + d) eps: the terms are of one scale, so this is the
bound up to a small factor, and a wrong term (a missing indicator, a wrong sign) shows as O(1).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from numerics import mc, mc_fused

triton_missing = not mc_fused.triton_available()
ROOT = Path(__file__).resolve().parents[1]

# n not a multiple of the tile, d not a power of two, K != K*, fewer and more programs than tiles
CASES = [(300, 20, 4, 3, 3), (257, 100, 10, 10, 5), (65, 7, 2, 5, 8), (40, 128, 32, 1, 2), (33, 16, 16, 17, 1)]

# Runs in a fresh process: Triton's interpreter must be chosen before Triton is first imported (its
# library functions, tl.sum among them, are built at import).  Prints the comparisons as JSON.
_WORKER = """
import json, sys, torch
from numerics import mc, mc_fused

def problem(n, d, K, K_star, dtype, seed=0):
    g = torch.Generator().manual_seed(seed)
    Y = torch.randn(n, d, generator=g, dtype=dtype)
    Z = torch.randn(K + K_star, d, generator=g, dtype=dtype)
    return Y, Z, torch.cat([torch.ones(K), -torch.ones(K_star)]).to(dtype)

def rel(ref, got):
    return float((ref - got).abs().max() / ref.abs().max())

out = {"cases": [], "reorder": {}, "zero": {}}
for n, d, K, K_star, programs in json.loads(sys.argv[1]):
    for dtype in (torch.float64, torch.float32):
        Y, Z, s = problem(n, d, K, K_star, dtype)
        ref = mc._chunk_stats(Y, Z, s, K, None)
        got = mc_fused.fused_chunk_stats(Y, Z, K, programs=programs)
        out["cases"].append({"case": [n, d, K, K_star, programs], "dtype": str(dtype), "keys": sorted(got), "stats": {
            key: {"shapes_equal": [tuple(a.shape) == tuple(b.shape) for a, b in zip(ref[key], got[key])],
                  "dtypes_equal": [b.dtype == dtype for b in got[key]],
                  "max_rel": [rel(a, b) for a, b in zip(ref[key], got[key])]} for key in ref}})
Y, Z, s = problem(200, 30, 6, 6, torch.float64, seed=3)
a = mc_fused.fused_chunk_stats(Y, Z, 6, programs=4)
b = mc_fused.fused_chunk_stats(Y, Z, 6, programs=4)
c = mc_fused.fused_chunk_stats(Y, Z, 6, programs=7, tile_rows=16)
for key in a:
    out["reorder"][key] = {"identical": all(torch.equal(x, y) for x, y in zip(a[key], b[key])),
                           "max_rel": max(rel(x, z) for x, z in zip(a[key], c[key]))}
_, Z, _ = problem(1, 9, 3, 2, torch.float64)
zero = mc_fused.fused_chunk_stats(torch.zeros(50, 9, dtype=torch.float64), Z, 3, programs=2)
out["zero"] = {key: sum(int(torch.count_nonzero(x)) for x in pair) for key, pair in zero.items()}
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def interpreted():
    """The worker's comparisons, with the kernel run by Triton's interpreter in a fresh process."""
    if triton_missing:
        pytest.skip("Triton is not installed")
    env = {**os.environ, "TRITON_INTERPRET": "1", "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", _WORKER, json.dumps(CASES)], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("i", range(2 * len(CASES)))
def test_fused_statistics_equal_unfused_to_rounding(interpreted, i):
    case = interpreted["cases"][i]
    n, d, K, K_star, _ = case["case"]
    eps = 2.0**-52 if case["dtype"] == "torch.float64" else 2.0**-23
    bound = 4 * (n + K + d) * eps
    assert case["keys"] == sorted(["loss/L", "loss/J", "loss/H", "grad/L", "grad/J", "grad/H"])
    for key, got in case["stats"].items():
        assert all(got["shapes_equal"]) and all(got["dtypes_equal"]), (case["case"], key)
        assert max(got["max_rel"]) <= bound, (case["case"], case["dtype"], key, got["max_rel"], bound)


def test_fused_statistics_are_deterministic_and_launch_shape_only_reorders(interpreted):
    for key, got in interpreted["reorder"].items():
        assert got["identical"], key
        assert got["max_rel"] <= 4 * (200 + 6 + 30) * 2.0**-52, key


def test_zero_samples_give_zero_statistics(interpreted):
    """Padding rows and columns load as zeros; a chunk of zero samples has zero statistics (and so a
    padded tile adds nothing)."""
    assert len(interpreted["zero"]) == 6
    assert all(count == 0 for count in interpreted["zero"].values())


def test_usable_only_for_the_plain_method_on_cuda_within_the_tile_limits():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert not mc_fused.usable(cpu, 10, 3, 3, torch.float64)
    if mc_fused.triton_available():
        assert mc_fused.usable(cuda, mc_fused.MAX_WIDTH, mc_fused.MAX_ROWS, 1, torch.float64)
    assert not mc_fused.usable(cuda, mc_fused.MAX_WIDTH + 1, 3, 3, torch.float64)
    assert not mc_fused.usable(cuda, 10, mc_fused.MAX_ROWS + 1, 3, torch.float32)
    assert not mc_fused.usable(cuda, 10, 3, 3, torch.float16)


def test_engine_argument_is_checked():
    W, Ws = np.eye(2, 3), np.ones((1, 3))
    with pytest.raises(ValueError, match="engine must be one of"):
        mc.monte_carlo(W, Ws, 100, seed=0, device="cpu", engine="triton")
    with pytest.raises(ValueError, match="engine='fused' needs"):
        mc.monte_carlo(W, Ws, 100, seed=0, device="cpu", engine="fused")
    with pytest.raises(ValueError, match="engine='fused' needs"):
        mc.monte_carlo(W, Ws, 100, seed=0, device="cpu", method="subspace", engine="fused")
    with pytest.raises(ValueError, match="no fused engine"):
        mc.monte_carlo(W, Ws, 100, seed=0, device="cpu", activation=("leaky_relu", 0.1), engine="fused")


def test_torch_engine_is_the_cpu_default():
    """On a CPU ``auto`` never takes the kernel: the same numbers as ``torch``, bit for bit."""
    W, Ws = np.random.default_rng(1).standard_normal((2, 3, 5))
    a = mc.monte_carlo(W, Ws, 3000, seed=4, device="cpu")
    b = mc.monte_carlo(W, Ws, 3000, seed=4, device="cpu", engine="torch")
    assert a == b


gpu = pytest.mark.skipif(not torch.cuda.is_available() or triton_missing, reason="needs a CUDA GPU and Triton")


@gpu
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_fused_engine_on_the_gpu_equals_the_torch_engine_to_rounding(dtype):
    """Same samples (same seed and chunks), two engines: every estimate agrees to rounding, and the fused
    one is bit for bit reproducible."""
    W, Ws = np.random.default_rng(2).standard_normal((2, 8, 60))
    kw = dict(seed=9, device="cuda", dtype=dtype, chunk_size=50_000)
    fused = mc.monte_carlo(W, Ws, 200_000, engine="fused", **kw)
    again = mc.monte_carlo(W, Ws, 200_000, engine="fused", **kw)
    plain = mc.monte_carlo(W, Ws, 200_000, engine="torch", **kw)
    assert fused == again
    tol = 1e-9 if dtype == torch.float64 else 1e-2  # n eps for n = 2e5 with room; SEs are differences of moments
    for p in fused.loss:
        assert abs(fused.loss[p] - plain.loss[p]) <= tol * abs(plain.loss[p])
        assert abs(fused.loss_se[p] - plain.loss_se[p]) <= tol * abs(plain.loss_se[p])
        scale = np.abs(plain.mean_field[p]).max()
        assert np.abs(fused.mean_field[p] - plain.mean_field[p]).max() <= tol * scale
        assert np.abs(fused.mean_field_se[p] - plain.mean_field_se[p]).max() <= tol * np.abs(plain.mean_field_se[p]).max()
