"""The ratios the generalizations report's rules read, from one configuration's numbers (Sobolev over base)."""
from __future__ import annotations


def conditioning_ratios(config: dict) -> list:
    """``kappa_real(sobolev) / kappa_real(base)`` at every point where both are defined."""
    out = []
    for row in config["conditioning"]:
        b, s = row["base"]["real_part"], row["sobolev"]["real_part"]
        if b is not None and s is not None:
            out.append(s / b)
    return out


def rate_ratios(config: dict, kind: str) -> list:
    """``rate(sobolev) / rate(base)`` of every flow, ``kind`` ``"predicted"`` or ``"measured"``, where both are
    positive."""
    out = []
    for row in config["flows"]:
        b, s = row["base"][f"{kind}_rate"], row["sobolev"][f"{kind}_rate"]
        if b is not None and s is not None and b > 0 and s > 0:
            out.append(s / b)
    return out


def matched_gains(config: dict) -> list:
    """``kappa(base) / kappa(Sobolev)`` of the Jacobians at the end points of each flow where both are defined: the
    ratio of the per-step rates of gradient descent with steps matched to each objective's curvature."""
    out = []
    for row in config["flows"]:
        b, s = row["base"]["end_kappa"]["real_part"], row["sobolev"]["end_kappa"]["real_part"]
        if b is not None and s is not None:
            out.append(b / s)
    return out
