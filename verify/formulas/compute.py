"""Compute layer of the formulas report: plain data only (no Markdown, no figures).

The summary returned by :func:`compute` is exactly the report's JSON ``data``.
"""
from __future__ import annotations

import numpy as np

import numerics
from theory import explicit, formulas, kernels, pairs, paper
from theory.vocabulary import HESSIAN_FIELDS

FIELDS = HESSIAN_FIELDS


def paper_formula_numpy(w: np.ndarray, w_star: np.ndarray, part: str) -> np.ndarray:
    """The paper's single-node nabla^2 L / nabla^2 H, typed in from the paper (docs/theory.md, section 7; NumPy)."""
    d = len(w)
    nw, ns = np.linalg.norm(w), np.linalg.norm(w_star)
    v, u = w / nw, w_star / ns
    cos = float(np.dot(u, v))
    sin = np.linalg.norm(u - cos * v)
    alpha = ns / (2 * np.pi * nw * sin)
    k = 1 if part == "L" else 2
    inner = k * np.outer(u, u) - cos * np.outer(v, u) + sin**2 * np.eye(d)
    return (k / 2) * np.eye(d) - alpha * inner @ (np.eye(d) - np.outer(v, v))


def numeric_identification(rng: np.random.Generator, n_points: int, d: int) -> list:
    """The paper's formulas against ``numerics.hessian`` at ``n_points`` seeded random points in dimension ``d``."""
    rows = []
    for formula in ("L", "H"):
        for field in FIELDS:
            worst = 0.0
            scale = 0.0
            for _ in range(n_points):
                w, ws = rng.standard_normal(d), rng.standard_normal(d)
                ref = paper_formula_numpy(w, ws, formula)
                got = numerics.hessian(w[None], ws[None], formula, field)
                worst = max(worst, float(np.abs(got - ref).max()))
                scale = max(scale, float(np.abs(ref).max()))
            rows.append({"formula": formula, "hessian": field, "max_abs_gap": worst, "max_abs_entry": scale,
                         "points": n_points, "d": d})
    return rows


def single_node_spectra(thetas: np.ndarray) -> dict:
    """Sorted real parts of the eigenvalues of the three single-node Hessians (``d = 3``, unit norms) along the
    angle: ``{"L/true": [[...], ...], ...}``, one list per angle."""
    data = {}
    for part in ("L", "H"):
        for field in FIELDS:
            eig = []
            for t in thetas:
                w = np.array([1.0, 0.0, 0.0])
                ws = np.array([np.cos(t), np.sin(t), 0.0])
                ev = np.linalg.eigvals(numerics.hessian(w[None], ws[None], part, field))
                eig.append(np.sort(ev.real))
            data[f"{part}/{field}"] = np.array(eig).tolist()
    return data


def mean_minus_true() -> dict:
    """Pair term of (mean field - true gradient) per part, in the e-basis: ``{part: [str(c1), str(c2)]}``."""
    out = {}
    for part in pairs.KERNEL_PARTS:
        v = (pairs.mean_field(part) - pairs.true_gradient(part)).simplify()
        out[part] = [str(v.c1), str(v.c2)]
    return out


def compute(seed: int, settings: dict) -> dict:
    """Every number of the report (the JSON ``data``). ``settings``: one of ``PROFILES``' values."""
    rng = np.random.default_rng(seed)
    thetas = np.linspace(0.05, np.pi - 0.05, settings["spectra_angles"])
    return {
        "cho_saul_differences": {k: str(v) for k, v in kernels.check_against_cho_saul().items()},
        "proofs": {k: str(v) for k, v in pairs.proofs().items()},
        "mean_minus_true_pair_term": mean_minus_true(),
        "componentwise_check_max_gap": {f"d={d}": explicit.check_pair_calculus(d, points=settings["calculus_points"])
                                        for d in (2, 3)},
        "paper_identification_symbolic": paper.identify(),
        "paper_identification_numeric": numeric_identification(rng, settings["numeric_points"], 5),
        "existence_at_degenerate_angles": formulas.existence_table(),
        "latex": formulas.catalogue(),
        "single_node_spectra": {"theta": list(thetas), **single_node_spectra(thetas)},
    }
