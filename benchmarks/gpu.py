"""GPU check of the Monte-Carlo witness: agreement, determinism, throughput, 10^9 samples in bounded memory.

    python -m benchmarks.gpu --out DIR [--device cuda] [--quick] [--max-seconds S]

Writes ``DIR/performance_gpu.json``; ``python -m benchmarks.performance`` folds it into
``reports/performance.md`` (the GPU section), naming the card.  Meant to run on a machine with
a CUDA GPU; ``--device cpu --quick`` is a dry run of the same code on small sizes.

What it measures, all on one device in one run:

1. agreement: ``numerics.monte_carlo`` on the device (plain and subspace) against the closed
   forms, z-scores of every loss and mean-field entry with a Bonferroni threshold at
   family-wise level 1e-3; per-sample autograd gradients against the closed per-sample
   expression on the device;
2. determinism: the same seed twice gives bit-identical estimates;
3. throughput (d = 100, K = K* = 10, plain, float64 and float32) against a bare loop that only
   draws the same Gaussians and does the two matrix products, chunks of the same size;
4. one run of 10^9 samples (float64, d = 100, K = K* = 10, plain) with the peak device memory,
   if the measured throughput projects it under ``--max-seconds``; its z-scores too;
5. the batched population gradient and loss on the device (``numerics.gradient``, ``numerics.loss``
   of tensors, :mod:`numerics.backend`): instances per second at K = K* = d = 10, float64 and
   float32, on the fast path and on the general path, with the largest deviation from the NumPy
   reference; and population gradient descents (``numerics.landscape.descend``) against NumPy on the
   host's CPU.
Never part of the test suite.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from scipy import stats

import numerics
from benchmarks import common
from numerics import mc
from numerics.validation import PARTS
from theory.vocabulary import FLOWS

ALPHA = 1e-3


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def _weights(seed: int, K: int, d: int):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((K, d)), rng.standard_normal((K, d))


def _closed(W, Ws) -> tuple:
    return ({p: numerics.loss(W, Ws, p) for p in PARTS}, {p: numerics.gradient(W, Ws, p, "mean") for p in PARTS})


def _z_summary(est, closed) -> dict:
    z = est.z_scores(*closed)
    flat = np.concatenate([np.ravel(v) for v in z.values()])
    threshold = float(stats.norm.isf(ALPHA / (2 * flat.size)))
    return {"entries": int(flat.size), "max_abs_z": float(np.max(np.abs(flat))), "bonferroni_threshold": threshold,
            "passed": bool(np.max(np.abs(flat)) <= threshold)}


def agreement(dev, n: int) -> dict:
    W, Ws = _weights(11, 4, 20)
    closed = _closed(W, Ws)
    out = {"K": 4, "K_star": 4, "d": 20, "n": n}
    for method in mc.METHODS:
        est = mc.monte_carlo(W, Ws, n, seed=5, device=dev, method=method, progress=False)
        again = mc.monte_carlo(W, Ws, n, seed=5, device=dev, method=method, progress=False)
        same = all(est.loss[p] == again.loss[p] and np.array_equal(est.mean_field[p], again.mean_field[p])
                   for p in PARTS)
        out[method] = {**_z_summary(est, closed), "bit_identical_rerun": bool(same), "seconds": est.seconds}
    x = torch.randn(2000, 20, dtype=torch.float64, device=dev, generator=torch.Generator(device=dev).manual_seed(3))
    diffs = {p: float((mc.per_sample_gradients_autograd(W, Ws, x, p)
                       - mc.per_sample_gradients_closed(W, Ws, x, p)).abs().max()) for p in PARTS}
    out["per_sample_autograd_vs_closed_max_abs"] = diffs
    return out


def _timed(fn, dev, repeats: int) -> float:
    """Median seconds of ``repeats`` calls of ``fn`` on ``dev``, its queue drained before and after each call."""
    return common.median_time(fn, repeats, sync=lambda: _sync(dev))


def throughput(dev, n: int, dtype, repeats: int = 3) -> dict:
    K, d = 10, 100
    W, Ws = _weights(0, K, d)
    Z = torch.tensor(np.vstack([W, Ws]), dtype=dtype, device=dev)
    chunk = mc.chunk_size(None, n, K, 2 * K, d, dtype, dev)

    def engine():
        mc.monte_carlo(W, Ws, n, seed=1, device=dev, dtype=dtype, progress=False)

    def bare():
        gen = torch.Generator(device=dev).manual_seed(1)
        done = 0
        while done < n:
            c = min(chunk, n - done)
            x = torch.randn((c, d), generator=gen, dtype=dtype, device=dev)
            pre = x @ Z.T
            _ = pre[:, :K].T @ x
            done += c

    engine()
    bare()  # warm-up
    t_engine, t_bare = _timed(engine, dev, repeats), _timed(bare, dev, repeats)
    return {"dtype": str(dtype).replace("torch.", ""), "n": n, "K": K, "K_star": K, "d": d, "chunk": chunk,
            "engine_samples_per_s": n / t_engine, "bare_samples_per_s": n / t_bare, "ratio": t_bare / t_engine}


def billion(dev, n: int, samples_per_s: float, max_seconds: float) -> dict:
    K, d = 10, 100
    W, Ws = _weights(0, K, d)
    projected = n / samples_per_s
    out = {"n": n, "K": K, "K_star": K, "d": d, "dtype": "float64", "method": "plain", "projected_seconds": projected}
    if projected > max_seconds:
        out["skipped"] = f"projected {projected:.0f} s > --max-seconds {max_seconds:.0f}"
        return out
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
        base = torch.cuda.memory_allocated(dev)
    est = mc.monte_carlo(W, Ws, n, seed=7, device=dev, progress=False)
    out["seconds"] = est.seconds
    out["samples_per_s"] = n / est.seconds
    out["chunk"] = mc.chunk_size(None, n, K, 2 * K, d, torch.float64, dev)
    if dev.type == "cuda":
        out["peak_device_bytes_above_start"] = int(torch.cuda.max_memory_allocated(dev) - base)
        out["device_total_bytes"] = int(torch.cuda.get_device_properties(dev).total_memory)
    out["z"] = _z_summary(est, _closed(W, Ws))
    out["max_relative_se_loss"] = max(est.loss_se[p] / abs(est.loss[p]) for p in PARTS)
    return out


def population_gradients(dev, B: int, dtype, repeats: int = 5) -> dict:
    """Instance-gradients per second of ``numerics.gradient(W, W*, "H", field)`` on ``B`` instances at
    K = K* = d = 10 on the device (its fast path for tensors without derivatives) and of the general
    pair-difference path (what tensors with derivatives take), and the largest deviation (relative to the
    largest entry) from the NumPy reference on the first 16 instances."""
    from numerics import backend

    rng = np.random.default_rng(2024)
    W, Ws = rng.standard_normal((B, 10, 10)), rng.standard_normal((B, 10, 10))
    Wt, St = (torch.tensor(a, dtype=dtype, device=dev) for a in (W, Ws))
    xp = backend.namespace(Wt)
    out = {"dtype": str(dtype).replace("torch.", ""), "B": B, "K": 10, "K_star": 10, "d": 10}
    for field in ("mean", "true"):
        got = numerics.gradient(Wt, St, "H", field)  # warm-up, and the values compared below
        ref = numerics.gradient(W[:16], Ws[:16], "H", field)
        out[f"{field}_max_rel_deviation"] = float(np.abs(got[:16].double().cpu().numpy() - ref).max() / np.abs(ref).max())
        t = _timed(lambda: numerics.gradient(Wt, St, "H", field), dev, repeats)
        out[f"{field}_instance_gradients_per_s"] = B / t
        general = lambda: backend.gradient_general(xp, Wt, St, "H", field)  # noqa: E731
        general()
        out[f"{field}_general_path_instance_gradients_per_s"] = B / _timed(general, dev, repeats)
    return out


def population_losses(dev, B: int, dtype, repeats: int = 5) -> dict:
    """Instance-losses per second of ``numerics.loss(W, W*, "H")`` on ``B`` instances at K = K* = d = 10 on
    the device (fast path) and of the general path, and the largest relative deviation from the NumPy
    reference on the first 16 instances."""
    from numerics import backend

    rng = np.random.default_rng(2025)
    W, Ws = rng.standard_normal((B, 10, 10)), rng.standard_normal((B, 10, 10))
    Wt, St = (torch.tensor(a, dtype=dtype, device=dev) for a in (W, Ws))
    xp = backend.namespace(Wt)
    got = numerics.loss(Wt, St, "H")
    ref = np.array([numerics.loss(W[b], Ws[b], "H") for b in range(16)])
    general = lambda: backend.loss_general(xp, Wt, St, "H")  # noqa: E731
    general()
    return {"dtype": str(dtype).replace("torch.", ""), "B": B, "K": 10, "K_star": 10, "d": 10,
            "max_rel_deviation": float(np.max(np.abs(got[:16].double().cpu().numpy() - ref) / np.abs(ref))),
            "instance_losses_per_s": B / _timed(lambda: numerics.loss(Wt, St, "H"), dev, repeats),
            "general_path_instance_losses_per_s": B / _timed(general, dev, repeats)}


def landscape_steps(dev, B: int, k: int, steps: int) -> dict:
    """Start-steps per second of ``numerics.landscape.descend`` (B starts, teacher I_k, ``steps`` steps from random
    starts) for each flow: on the device (PyTorch, float64) and in NumPy on this machine's CPU, side by side."""
    from numerics import landscape

    W0 = np.random.default_rng(5).standard_normal((B, k, k)) / np.sqrt(k)
    out = {"B": B, "k": k, "steps": steps}
    for flow in FLOWS:
        run = {"device": lambda: landscape.descend(torch.tensor(W0, device=dev), np.eye(k), flow, lr=0.05,
                                                   max_steps=steps, grad_tol=1e-12),
               "numpy": lambda: landscape.descend(W0, np.eye(k), flow, lr=0.05, max_steps=steps, grad_tol=1e-12)}
        for where, fn in run.items():
            fn()  # warm-up
            out[f"{flow}_{where}_start_steps_per_s"] = B * steps / _timed(fn, dev, 1)
    return out


PYTEST_COMMAND = ("python3 -m pytest -q tests/test_mc.py tests/test_backend.py tests/test_backend_fast.py on the GPU machine "
                  "(the Monte-Carlo default device is the GPU there; the CUDA-only tests run)")


def _nvidia_smi() -> str | None:
    import subprocess

    try:
        done = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"],
                              capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() or None


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--quick", action="store_true", help="small sizes (a dry run, not figures to record)")
    ap.add_argument("--max-seconds", type=float, default=240.0, help="skip the 10^9 run if projected longer")
    ap.add_argument("--pytest-log", type=Path, help="output of the device's pytest run, recorded with its command")
    ap.add_argument("--recorded", default="", help="when and where, e.g. '2026-11-27, one lent machine (nvidia-h200)'")
    args = ap.parse_args(argv)
    dev = mc.torch_device(args.device)
    start = time.perf_counter()
    res = {"device": torch.cuda.get_device_name(dev) if dev.type == "cuda" else common.cpu_name(),
           **common.machine("torch", "numpy", "python"), "cuda": torch.version.cuda, "quick": args.quick}
    print(json.dumps(res), flush=True)
    res["agreement"] = agreement(dev, 200_000 if args.quick else 10_000_000)
    print(json.dumps(res["agreement"]), flush=True)
    n_tp = 1_000_000 if args.quick else 50_000_000
    res["throughput"] = [throughput(dev, n_tp, torch.float64), throughput(dev, n_tp, torch.float32)]
    print(json.dumps(res["throughput"]), flush=True)
    res["billion"] = billion(dev, 2_000_000 if args.quick else 1_000_000_000,
                             res["throughput"][0]["engine_samples_per_s"], args.max_seconds)
    print(json.dumps(res["billion"]), flush=True)
    B = 256 if args.quick else 16384
    res["population_gradients"] = [population_gradients(dev, B, torch.float64), population_gradients(dev, B, torch.float32)]
    print(json.dumps(res["population_gradients"]), flush=True)
    res["population_losses"] = [population_losses(dev, B, torch.float64), population_losses(dev, B, torch.float32)]
    print(json.dumps(res["population_losses"]), flush=True)
    res["landscape"] = landscape_steps(dev, 32 if args.quick else 1024, 6 if args.quick else 12, 10 if args.quick else 50)
    print(json.dumps(res["landscape"]), flush=True)
    res["wall_time_s"] = time.perf_counter() - start
    res["nvidia_smi"] = _nvidia_smi()
    res["recorded"] = f"{args.recorded}, one run of benchmarks/gpu.py" if args.recorded else "one run of benchmarks/gpu.py"
    if args.pytest_log is not None and args.pytest_log.exists():
        lines = [x for x in args.pytest_log.read_text().splitlines() if x.strip()]
        res["pytest_on_device"] = {"command": PYTEST_COMMAND, "result": lines[-1] if lines else "no output"}
    common.write("performance_gpu", res, None, args.out, indent=1, sort_keys=True)  # the JSON only
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
