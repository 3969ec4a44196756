"""Confidence intervals that the training rules judge, instead of medians that cross a threshold.

A rule that compares two medians of three seeds flips when one seed's rounding moves a number across
the threshold (a change of CPU is enough).  The rules of claims 5--7 read instead the interval of a
per-seed paired quantity (both arms start from the same seed) and decide only when the whole interval
lies on one side of the boundary; otherwise the case is *undecided*.  A perturbation of the runs then
changes a decision only when an interval end sits at the boundary, not when a median does.

* :func:`t_interval` -- the two-sided Student-t interval of the mean of per-seed values;
* :func:`log_ratio_interval` -- that interval for the per-seed log ratio of two paired arms;
* :func:`per_interval_level` -- Bonferroni: the level each of ``m`` intervals needs so that they hold
  jointly at a stated family-wise level;
* :func:`position` -- where an interval lies against a boundary.
"""
from __future__ import annotations

import math

import numpy as np
from scipy import stats

FAMILY_LEVEL = 0.95  # the family-wise level of each rule's intervals (stated in docs/claims.md)


def per_interval_level(family_level: float, m: int) -> float:
    """The level of each of ``m`` intervals that hold jointly with probability >= ``family_level``
    (Bonferroni: the failure probabilities add up)."""
    if not 0 < family_level < 1:
        raise ValueError(f"family_level must lie in (0, 1); got {family_level}")
    return 1 - (1 - family_level) / max(m, 1)


def t_interval(values, level: float) -> dict | None:
    """Mean and two-sided Student-t ``level`` interval of the mean of ``values`` (one per seed);
    ``None`` with fewer than 2 values or a value that is not finite (no interval)."""
    x = np.asarray([math.nan if v is None else v for v in values], dtype=float)
    if x.size < 2 or not np.all(np.isfinite(x)):
        return None
    mean = float(np.mean(x))
    half = float(stats.t.ppf(0.5 + level / 2, x.size - 1) * np.std(x, ddof=1) / math.sqrt(x.size))
    return {"mean": mean, "low": mean - half, "high": mean + half, "level": level, "n": int(x.size)}


def log_ratio_interval(num: list, den: list, level: float) -> dict | None:
    """:func:`t_interval` of the per-seed ``log(num / den)`` (paired by seed), with those log ratios
    (``log_ratios``); ``None`` when the lists differ in length, a run did not end finite and positive, or
    fewer than 2 seeds."""
    if len(num) != len(den) or any(v is None or not v > 0 for v in [*num, *den]):
        return None
    logs = np.log(np.asarray(num, dtype=float) / np.asarray(den, dtype=float)).tolist()
    interval = t_interval(logs, level)
    return None if interval is None else {"log_ratios": logs, **interval}


def position(interval: dict | None, boundary: float) -> str:
    """``"below"`` or ``"above"`` when the whole interval lies strictly on that side of ``boundary``,
    else ``"contains"`` (also when there is no interval)."""
    if interval is None:
        return "contains"
    if interval["high"] < boundary:
        return "below"
    return "above" if interval["low"] > boundary else "contains"
