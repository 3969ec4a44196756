"""Statistics over seeds and JSON-safe numbers for the training report.

Every curve is summarised by its median and its min--max range over the seeds at each evaluation
step (all seeds share the evaluation steps).  Non-finite numbers (a diverged run, a threshold never
reached) become ``None`` in the JSON; the report says which.
"""
from __future__ import annotations

import math

import numpy as np

from ..report import fmt


def finite_or_none(x):
    """``float(x)`` when finite, else ``None`` (JSON has no NaN or inf)."""
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def finite_list(values) -> list:
    return [finite_or_none(v) for v in np.asarray(values, dtype=float).ravel()]


def band(curves) -> dict:
    """Median, min and max over seeds of equally long curves (rows = seeds); NaN-aware, non-finite -> None."""
    arr = np.asarray(curves, dtype=float)
    with np.errstate(all="ignore"):
        arr = np.where(np.isfinite(arr), arr, np.inf)  # a diverged seed counts as +inf: the max shows it
        return {"median": finite_list(np.median(arr, axis=0)), "min": finite_list(np.min(arr, axis=0)),
                "max": finite_list(np.max(arr, axis=0))}


def spread(values) -> dict:
    """Median and min--max of per-seed numbers; ``None`` entries (not reached / diverged) count as +inf."""
    arr = np.array([np.inf if v is None else float(v) for v in values], dtype=float)
    arr = np.where(np.isfinite(arr), arr, np.inf)
    return {"median": finite_or_none(np.median(arr)), "min": finite_or_none(arr.min()),
            "max": finite_or_none(arr.max()), "n_finite": int(np.isfinite(arr).sum()), "n": int(arr.size)}


def fmt_spread(s: dict, spec: str = ".2e") -> str:
    """``median [min, max]`` with ``—`` for not reached; ``(k/n)`` when only some seeds are finite."""
    text = f"{fmt(s['median'], spec)} [{fmt(s['min'], spec)}, {fmt(s['max'], spec)}]"
    if s["n_finite"] < s["n"]:
        text += f" ({s['n_finite']}/{s['n']})"
    return text
