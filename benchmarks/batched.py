"""Batched ``numerics.gradient`` (vectorised path) against a Python loop of single calls.

    python -m benchmarks.batched [--out reports] [--repeats 7]

B = 1024 instances, K = K* = d = 10, NumPy on CPU, ``gradient(., ., "H", "mean")`` and ``("L", "mean")``;
the two are timed on the same inputs, interleaved (batch, loop, batch, loop, ...), medians reported.
The batched losses and Hessians are timed the same way, for the record (no target).
Also, for the record, the same batch as torch tensors on the CPU (``numerics.backend``, float64 and
float32): instance-gradients (and, float64, instance-losses) per second of its fast path and of its
general path side by side, and instance-Hessians per second beside NumPy's batched Hessians (no target;
the GPU figures come from ``python -m benchmarks.gpu``).
Writes reports/performance_batched.json and .md.  Never part of the test suite.
"""
from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import numpy as np

import numerics
from benchmarks import common

B, K, KS, D = 1024, 10, 10, 10
TARGET = 50.0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(common.REPORTS))
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args()
    rng = np.random.default_rng(2024)
    W, Ws = rng.standard_normal((B, K, D)), rng.standard_normal((B, KS, D))
    rows = []
    for part in ("H", "L"):
        batch = lambda: numerics.gradient(W, Ws, part, "mean")  # noqa: E731
        loop = lambda: [numerics.gradient(W[b], Ws[b], part, "mean") for b in range(B)]  # noqa: E731
        same = batch().tobytes() == np.stack(loop()).tobytes()
        tb, tl = common.interleaved_times((batch, loop), args.repeats)
        mb, ml = statistics.median(tb), statistics.median(tl)
        rows.append({"part": part, "field": "mean", "batch_s": mb, "loop_s": ml,
                     "batch_us_per_instance": mb / B * 1e6, "loop_us_per_instance": ml / B * 1e6,
                     "speedup": ml / mb, "bit_identical": same, "batch_times_s": tb, "loop_times_s": tl})
    loss_rows = _loss_rows(W, Ws, args.repeats)
    hessian_rows = _hessian_rows(W, Ws, args.repeats)
    torch_rows = _torch_rows(W, Ws, args.repeats)
    torch_loss_rows = _torch_loss_rows(W, Ws, args.repeats)
    torch_hessian_rows = _torch_hessian_rows(W, Ws, args.repeats)
    machine = common.machine("platform", "cpu", "cpu_count", "python", "numpy")
    met = all(r["speedup"] >= TARGET for r in rows)
    result = {"B": B, "K": K, "K_star": KS, "d": D, "repeats": args.repeats, "target_speedup": TARGET,
              "target_met": met, "machine": machine, "results": rows,
              "loss": loss_rows, "hessian": hessian_rows, "torch_cpu": torch_rows, "torch_cpu_loss": torch_loss_rows,
              "torch_cpu_hessian": torch_hessian_rows}
    md = ["# Batched `numerics.gradient`: vectorised path against a loop of single calls", "",
          f"B = {B} instances, K = K* = d = {D}, NumPy on CPU, median of {args.repeats} interleaved repeats "
          "(`python -m benchmarks.batched`).", "",
          f"Machine: {machine['platform']}, {machine['cpu']}, {machine['cpu_count']} CPUs, "
          f"Python {machine['python']}, NumPy {machine['numpy']}.", "",
          "| call | batched (ms) | loop (ms) | per instance: batched / loop (µs) | speed-up | bit-identical |",
          "|---|---|---|---|---|---|"]
    for r in rows:
        md.append(f"| gradient({r['part']}, {r['field']}) | {r['batch_s'] * 1e3:.2f} | {r['loop_s'] * 1e3:.1f} | "
                  f"{r['batch_us_per_instance']:.1f} / {r['loop_us_per_instance']:.1f} | "
                  f"{r['speedup']:.1f}x | {'yes' if r['bit_identical'] else 'NO'} |")
    md += ["", "Batched losses, timed the same way (`numerics.loss`; no target):", "",
           "| call | batched (ms) | loop (ms) | speed-up | bit-identical |", "|---|---|---|---|---|"]
    md += [f"| loss({r['part']}) | {r['batch_s'] * 1e3:.2f} | {r['loop_s'] * 1e3:.1f} | {r['speedup']:.1f}x | "
           f"{'yes' if r['bit_identical'] else 'NO'} |" for r in loss_rows]
    md += ["", "Batched Hessians, timed the same way (`numerics.hessian`; no target; each instance is a "
           f"{K * D} x {K * D} matrix, so the batch writes {B * (K * D) ** 2:,} numbers):", "",
           "| call | batched (ms) | loop (ms) | speed-up | bit-identical |", "|---|---|---|---|---|"]
    md += [f"| hessian({r['part']}, {r['field']}) | {r['batch_s'] * 1e3:.1f} | {r['loop_s'] * 1e3:.1f} | "
           f"{r['speedup']:.1f}x | {'yes' if r['bit_identical'] else 'NO'} |" for r in hessian_rows]
    md += ["", "The same batch as torch tensors on the CPU (`numerics.backend`, torch "
           f"{torch_rows[0]['torch']}, {torch_rows[0]['threads']} threads; no target):", "",
           "| call | dtype | instances/s | general path (tensors with derivatives) | speed-up |",
           "|---|---|---|---|---|"]
    md += [f"| gradient(H, {r['field']}) | {r['dtype']} | {r['instance_gradients_per_s']:.3g} | "
           f"{r['general_path_instance_gradients_per_s']:.3g} | {r['speedup_over_general_path']:.1f}x |" for r in torch_rows]
    md += [f"| loss({r['part']}) | {r['dtype']} | {r['instance_losses_per_s']:.3g} | "
           f"{r['general_path_instance_losses_per_s']:.3g} | {r['speedup_over_general_path']:.1f}x |" for r in torch_loss_rows]
    md += ["", "Hessians of the batch as torch tensors on the CPU (one assembly for tensors with and without "
           "derivatives), against NumPy's batched Hessians timed interleaved with them (no target):", "",
           "| call | dtype | torch instances/s | NumPy instances/s | torch / NumPy |", "|---|---|---|---|---|"]
    md += [f"| hessian(H, {r['field']}) | {r['dtype']} | {r['instance_hessians_per_s']:.3g} | "
           f"{r['numpy_instance_hessians_per_s']:.3g} | {r['torch_over_numpy']:.2f} |" for r in torch_hessian_rows]
    md += ["", f"Target: a speed-up of at least {TARGET:.0f}x per instance. "
           + ("**Met** for both calls." if met else
              "**Not met**: the measured speed-ups are " + ", ".join(f"{r['speedup']:.1f}x" for r in rows) + "."), ""]
    common.write("performance_batched", result, "\n".join(md), Path(args.out))
    print("\n".join(md))


def _hessian_rows(W, Ws, repeats: int) -> list:
    """``numerics.hessian`` of the batch against a loop of single calls, interleaved, medians (no target)."""
    rows = []
    for part, field in (("H", "true"), ("H", "mean")):
        batch = lambda: numerics.hessian(W, Ws, part, field)  # noqa: E731
        loop = lambda: [numerics.hessian(W[b], Ws[b], part, field) for b in range(len(W))]  # noqa: E731
        same = batch().tobytes() == np.stack(loop()).tobytes()
        tb, tl = common.interleaved_times((batch, loop), repeats)
        mb, ml = statistics.median(tb), statistics.median(tl)
        rows.append({"part": part, "field": field, "batch_s": mb, "loop_s": ml, "speedup": ml / mb,
                     "bit_identical": same})
    return rows


def _loss_rows(W, Ws, repeats: int) -> list:
    """``numerics.loss`` of the batch against a loop of single calls, interleaved, medians (no target)."""
    rows = []
    for part in ("L", "H"):
        batch = lambda: numerics.loss(W, Ws, part)  # noqa: E731
        loop = lambda: [numerics.loss(W[b], Ws[b], part) for b in range(len(W))]  # noqa: E731
        same = batch().tobytes() == np.array(loop()).tobytes()
        tb, tl = common.interleaved_times((batch, loop), repeats)
        mb, ml = statistics.median(tb), statistics.median(tl)
        rows.append({"part": part, "batch_s": mb, "loop_s": ml, "speedup": ml / mb, "bit_identical": same})
    return rows


def _torch_rows(W, Ws, repeats: int) -> list:
    """Instance-gradients per second of the batch as CPU tensors (median of ``repeats``): ``numerics.gradient``
    (its fast path for tensors without derivatives) and, interleaved with it, the general pair-difference
    path that tensors with derivatives take (``backend.gradient_general``)."""
    import torch

    from numerics import backend

    rows = []
    for dtype in (torch.float64, torch.float32):
        Wt, St = torch.tensor(W, dtype=dtype), torch.tensor(Ws, dtype=dtype)
        xp = backend.namespace(Wt)
        for field in ("mean", "true"):
            rates = _fast_and_general(lambda: numerics.gradient(Wt, St, "H", field),
                                      lambda: backend.gradient_general(xp, Wt, St, "H", field),
                                      len(W), repeats, "gradients")
            rows.append({"field": field, "dtype": str(dtype).replace("torch.", ""), "torch": torch.__version__,
                         "threads": torch.get_num_threads(), **rates})
    return rows


def _torch_loss_rows(W, Ws, repeats: int) -> list:
    """Instance-losses per second of the batch as float64 CPU tensors: ``numerics.loss`` (fast path) and,
    interleaved with it, the general path (``backend.loss_general``)."""
    import torch

    from numerics import backend

    Wt, St = torch.tensor(W), torch.tensor(Ws)
    xp = backend.namespace(Wt)
    return [{"part": part, "dtype": "float64",
             **_fast_and_general(lambda: numerics.loss(Wt, St, part), lambda: backend.loss_general(xp, Wt, St, part),
                                 len(W), repeats, "losses")} for part in ("L", "H")]


def _torch_hessian_rows(W, Ws, repeats: int) -> list:
    """Instance-Hessians per second of the batch as CPU tensors (float64 and float32) and, interleaved with
    them, of NumPy's batched Hessians of the same instances (medians of ``repeats``)."""
    import torch

    rows = []
    for dtype in (torch.float64, torch.float32):
        Wt, St = torch.tensor(W, dtype=dtype), torch.tensor(Ws, dtype=dtype)
        for field in ("true", "mean"):
            on_torch = lambda: numerics.hessian(Wt, St, "H", field)  # noqa: E731
            on_numpy = lambda: numerics.hessian(W, Ws, "H", field)  # noqa: E731
            on_torch(), on_numpy()
            tt, tn = common.interleaved_times((on_torch, on_numpy), repeats)
            mt, mn = statistics.median(tt), statistics.median(tn)
            rows.append({"field": field, "dtype": str(dtype).replace("torch.", ""),
                         "instance_hessians_per_s": len(W) / mt, "numpy_instance_hessians_per_s": len(W) / mn,
                         "torch_over_numpy": mn / mt})
    return rows


def _fast_and_general(fast, general, n: int, repeats: int, unit: str) -> dict:
    """Instances per second of the fast and the general path (warmed up, interleaved, medians) and the speed-up."""
    fast(), general()
    tf, tg = common.interleaved_times((fast, general), repeats)
    mf, mg = statistics.median(tf), statistics.median(tg)
    return {f"instance_{unit}_per_s": n / mf, f"general_path_instance_{unit}_per_s": n / mg,
            "speedup_over_general_path": mg / mf}


if __name__ == "__main__":
    main()
