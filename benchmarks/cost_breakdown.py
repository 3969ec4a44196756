"""Where the closed-form gradient spends its time, stage by stage (the cost model behind the speed targets).

    python -m benchmarks.cost_breakdown [--out reports] [--rounds 15]

1. One instance, K = K* = 200, d = 1000, mean field of L: validation, the two Gram products with the
   normalisation of the cosines, the range check that sends the instance to the fast assembly, the
   elementwise angles and coefficients (:func:`numerics.fast_gradient.coefficients`), the final two
   products, against the whole call and the four bare products.
2. A batch, B = 1024, K = K* = d = 10, mean field of H: the whole batched call, its four products alone
   (``np.matmul`` on the stacks: one BLAS call per instance, which keeps it bit for bit the single call)
   and one elementwise pass over the batch's pair array, against the loop of single calls; and a floor:
   the field as two products with ``Z = [W; W*]`` and only the pair passes that every assembly of it makes
   (square root, arccos, row sum, range check), to tell how much of the target's allowance any NumPy
   assembly would have left for its other passes.

Stages are timed interleaved, round after round; each figure is the median over the rounds.  The script
re-executes itself with glibc keeping freed memory (``MALLOC_MMAP_THRESHOLD_``, ``MALLOC_TRIM_THRESHOLD_``;
:func:`benchmarks.common.keep_freed_memory`):
with the default allocator, whether a 1.6 MB result array is fresh (page-faulted) or reused depends on the
process's history, and it moved the four products alone between 2.9 and 4.7 ms here; the stage costs are
the computation's.  Writes
reports/performance_breakdown.json and .md; its sentences come from :func:`findings` (tested in
``tests/test_cost_breakdown.py``).  Never part of the test suite.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

import numerics
from benchmarks import common
from numerics import batched, fast_gradient, validation

SINGLE_TARGET = 1.5  # the whole call against the four products
BATCH_TARGET = 50.0  # the loop against the batched call, per instance


CALLS = 5  # timed calls of each stage per round (common.median_over_rounds)


def single_instance(rounds: int) -> dict:
    rng = np.random.default_rng(2)
    K, d = 200, 1000
    W, Ws = rng.standard_normal((K, d)), rng.standard_normal((K, d))
    numerics.gradient(W, Ws, "L", "mean")
    _, _, _, n2w, n2s = validation.prepare_unscaled(W, Ws)
    W3, Ws3, n2w3, n2s3 = W[None], Ws[None], n2w[None], n2s[None]  # the single call's stack of one
    cos, norms = fast_gradient.cosines(W3, Ws3, n2w3, n2s3)
    coef = cos.copy()
    fast_gradient.coefficients(coef, norms, "L", "mean")

    def four_products(_):  # as benchmarks/performance.py times them (one result alive at a time)
        A = W @ W.T
        B = W @ Ws.T
        _ = A @ W
        _ = B @ Ws

    def final_products(_):  # as the fast assembly forms the field
        fast_gradient.assemble(coef, W3, Ws3, np.empty((1, K, d)))

    none = lambda: None  # noqa: E731
    stages = {
        "whole call": (none, lambda _: numerics.gradient(W, Ws, "L", "mean")),
        "four products": (none, four_products),
        "validation": (none, lambda _: validation.prepare_unscaled(W, Ws)),
        "Gram products and normalised cosines": (none, lambda _: fast_gradient.cosines(W3, Ws3, n2w3, n2s3)),
        "range check (separated)": (none, lambda _: fast_gradient.separated(cos)),
        # the coefficients are written over the cosines: a fresh copy per call (untimed)
        "elementwise geometry and coefficients": (cos.copy, lambda c: fast_gradient.coefficients(c, norms, "L", "mean")),
        "final products and their sum": (none, final_products),
    }
    med = common.median_over_rounds(stages, rounds, CALLS)
    return {"K": K, "K_star": K, "d": d, "pairs": K * 2 * K, "rounds": rounds, "seconds": med}


def batch(rounds: int) -> dict:
    rng = np.random.default_rng(2024)
    B, K, d = 1024, 10, 10
    W, Ws = rng.standard_normal((B, K, d)), rng.standard_normal((B, K, d))
    C = rng.standard_normal((B, K, K))
    pairs = rng.uniform(-0.9, 0.9, (B, K, 2 * K))
    step = max(1, batched.BATCH_CHUNK_ENTRIES // (K * 2 * K))

    Z = np.concatenate([W, Ws], axis=1)

    squares = pairs * pairs  # a square root's operand in the range it meets: (1 - c)(1 + c) > 0 for |c| < 1

    def chunked(op, x=pairs):  # op over a pair array, chunk by chunk as the batched path goes
        def run(_):
            for c0 in range(0, B, step):
                op(x[c0:c0 + step])
        return run

    none = lambda: None  # noqa: E731
    stages = {
        "batched call": (none, lambda _: numerics.gradient(W, Ws, "H", "mean")),
        "its four products (stacked np.matmul)": (none, lambda _: (np.matmul(W, np.swapaxes(W, 1, 2)),
                                                                 np.matmul(W, np.swapaxes(Ws, 1, 2)),
                                                                 np.matmul(C, W), np.matmul(C, Ws))),
        "one elementwise pass over the pairs": (none, chunked(lambda x: np.multiply(x, 0.5))),
        # the floor (FLOOR_STAGES): the field as two products with Z = [W; W*] (W Z^T, coef Z), and the pair
        # passes that no assembly of it skips: the sine (a square root), the angle (arccos), the row sum of
        # the alpha terms, and the range check (min and max)
        "two products with Z = [W; W*]": (none, lambda _: (np.matmul(W, np.swapaxes(Z, 1, 2)),
                                                           np.matmul(pairs, Z))),
        "square root pass": (none, chunked(np.sqrt, squares)),
        "arccos pass": (none, chunked(np.arccos)),
        "row sum pass": (none, chunked(lambda x: x.sum(axis=-1))),
        "range check (min and max)": (none, chunked(lambda x: (x.min(axis=(1, 2)), x.max(axis=(1, 2))))),
    }
    med = common.median_over_rounds(stages, rounds, CALLS)
    loop = common.median_over_rounds({"loop of single calls": (
        none, lambda _: [numerics.gradient(W[b], Ws[b], "H", "mean") for b in range(B)])}, max(3, rounds // 5), 1)
    med.update(loop)
    return {"B": B, "K": K, "K_star": K, "d": d, "rounds": rounds, "seconds": med}


def findings(single: dict, batch_: dict) -> list:
    """The report's sentences, each computed from the measured seconds (no other input)."""
    s, b = single["seconds"], batch_["seconds"]
    products = s["four products"]
    beyond = s["whole call"] - products
    elementwise = s["elementwise geometry and coefficients"]
    allowed = (SINGLE_TARGET - 1.0) * products
    out = [f"One instance: the call takes {s['whole call'] / products:.2f}× its four products; the target "
           f"{SINGLE_TARGET}× leaves {allowed * 1e3:.2f} ms beyond them, and the elementwise geometry and "
           f"coefficients alone take {elementwise * 1e3:.2f} ms ({elementwise / allowed:.2f}× that allowance; "
           f"{elementwise / single['pairs'] * 1e9:.1f} ns per pair), of {beyond * 1e3:.2f} ms beyond the products."]
    B = batch_["B"]
    budget = b["loop of single calls"] / BATCH_TARGET
    mm, one = b["its four products (stacked np.matmul)"], b["one elementwise pass over the pairs"]
    passes = (b["batched call"] - mm) / one
    out.append(f"Batch: the loop takes {b['loop of single calls'] / B * 1e6:.0f} µs per instance, so "
               f"{BATCH_TARGET:.0f}× allows {budget / B * 1e6:.2f} µs; the batched call takes "
               f"{b['batched call'] / B * 1e6:.2f} µs ({b['loop of single calls'] / b['batched call']:.1f}×), of "
               f"which its products {mm / B * 1e6:.2f} µs and the rest the time of {passes:.0f} elementwise passes "
               f"over the pairs ({one / B * 1e6:.3f} µs each); the allowance holds "
               f"{max(0.0, (budget - mm) / one):.0f} such passes beside the products.")
    floor = sum(b[k] for k in FLOOR_STAGES)
    left = budget - floor
    verdict = (f"{left / B * 1e6:.2f} µs of the allowance remain for every other pass (normalising the cosines, "
               f"the sine's factors, the cores, the diagonal): {left / one:.0f} passes like the one above"
               if left > 0 else f"that is {-left / B * 1e6:.2f} µs beyond the allowance before any other pass")
    out.append(f"Floor: the field as two products with Z = [W; W*] and only the pair passes no assembly skips "
               f"(square root, arccos, row sum, range check) take {floor / B * 1e6:.2f} µs per instance; {verdict}.")
    return out


# the stages of the batch whose sum is the floor of any NumPy assembly of the field (see batch())
FLOOR_STAGES = ("two products with Z = [W; W*]", "square root pass", "arccos pass", "row sum pass",
                "range check (min and max)")


def main() -> None:
    common.keep_freed_memory("benchmarks.cost_breakdown")
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(common.REPORTS))
    ap.add_argument("--rounds", type=int, default=15)
    args = ap.parse_args()

    single, batch_ = single_instance(args.rounds), batch(args.rounds)
    result = {"machine": common.machine("cpu", "numpy"), "single": single, "batch": batch_,
              "findings": findings(single, batch_)}
    md = ["# Where the closed-form gradient spends its time", "",
          f"`python -m benchmarks.cost_breakdown` on {result['machine']['cpu']} (NumPy {np.__version__}); stages "
          f"timed interleaved over {args.rounds} rounds, medians; glibc keeps freed memory (`MALLOC_MMAP_THRESHOLD_`, "
          "`MALLOC_TRIM_THRESHOLD_`), so that page faults of fresh result arrays stay out of the stage costs.", "",
          f"One instance, K = K* = {single['K']}, d = {single['d']}, mean field of L:", "",
          "| stage | ms | × the four products |", "|---|---|---|"]
    p = single["seconds"]["four products"]
    md += [f"| {k} | {v * 1e3:.3f} | {v / p:.2f} |" for k, v in single["seconds"].items()]
    md += ["", f"A batch, B = {batch_['B']}, K = K* = d = {batch_['d']}, mean field of H:", "",
           "| stage | ms | µs per instance |", "|---|---|---|"]
    md += [f"| {k} | {v * 1e3:.3f} | {v / batch_['B'] * 1e6:.2f} |" for k, v in batch_["seconds"].items()]
    md += [""] + [f"- {f}" for f in result["findings"]] + [""]
    common.write("performance_breakdown", result, "\n".join(md), Path(args.out))
    print("\n".join(md))


if __name__ == "__main__":
    main()
