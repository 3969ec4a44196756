"""Judge layer of the witnesses report: every pass/fail decision, the verdict and every sentence stating a
finding, as pure functions of the computed summary.

Every z-test is taken at family-wise level ``ALPHA``, Bonferroni-corrected over the entries it compares:
``|z| < z*`` with ``z* = Φ⁻¹(1 − ALPHA / (2 n))``.  Claim 1: ``confirmed with qualifications`` if and only if
(a) every z-score of the closed losses and mean fields against Monte-Carlo is below its threshold, (b) the
quadrature agrees to at least ``REQUIRED_DIGITS`` digits on every pair expectation and (c) the Monte-Carlo
finite-difference witness of the true gradient is consistent with the closed true gradient — plain
``confirmed`` if moreover the closed mean field and true gradient coincide for every part; ``inconclusive``
when one of the three witnesses has no entries (not run); otherwise ``refuted by a witness (see report)``.
"""
from __future__ import annotations

import numpy as np
from scipy import stats

NAME = "witnesses"
ALPHA = 0.01  # family-wise level of every pass/fail decision in this report
REQUIRED_DIGITS = 30  # quadrature against the closed forms at 50 digits must agree to this many
FIELDS_COINCIDE = 1e-12  # relative gap ‖mean − true‖/‖true‖ of the closed forms below which the fields coincide
MC_RATE_SLOPE = -0.25  # a fitted log-log slope above this: the error does not fall at the n^(-1/2) rate
FLOOR_FACTOR = 3.0  # √n-scaled error at the last checkpoint above this times its largest before: a floor


def bonferroni_z(n: int, alpha: float = ALPHA) -> float | None:
    """Two-sided threshold on |z| for ``n`` tests at family-wise level ``alpha``; ``None`` without tests."""
    return float(stats.norm.isf(alpha / (2 * n))) if n > 0 else None


def monte_carlo_test(mc: dict) -> dict:
    z = bonferroni_z(mc["entries"])
    return {"bonferroni_z": z, "pass": None if z is None else bool(mc["max_abs_z"] < z)}


def quadrature_test(quad: dict) -> dict:
    d = quad["min_digits"]
    return {"pass": None if d is None else bool(d >= REQUIRED_DIGITS)}


def true_gradient_test(fd: dict) -> dict:
    """The central-difference witness against the closed true gradient (consistent?) and the closed mean field
    (rejected for ``J`` and ``H``?)."""
    z = bonferroni_z(fd["entries"])
    rows = fd["rows"]
    if z is None:
        return {"bonferroni_z": None, "true_consistent": None, "mean_rejected_for_J_H": None}
    return {"bonferroni_z": z, "true_consistent": all(r["max_abs_z_vs_true"] < z for r in rows),
            "mean_rejected_for_J_H": all(r["max_abs_z_vs_mean"] > z for r in rows if r["part"] in ("J", "H"))}


def paper_jacobian_test(pj: dict) -> dict:
    z = bonferroni_z(pj["entries"])
    rows = pj["rows"]
    if z is None:
        return {"bonferroni_z": None, "paper_consistent": None, "true_hessian_rejected": None}
    return {"bonferroni_z": z, "paper_consistent": all(r["max_abs_z_paper_vs_mc_jacobian"] < z for r in rows),
            "true_hessian_rejected": all(r["max_abs_z_true_hessian_vs_mc_jacobian"] > z for r in rows)}


def field_gaps(fd: dict) -> dict:
    """Parts run by the true-gradient witness, split by whether the closed mean field and true gradient
    coincide (relative gap at most ``FIELDS_COINCIDE`` in every row) or differ."""
    parts = list(dict.fromkeys(r["part"] for r in fd["rows"]))
    same = [p for p in parts if all(r["relative_gap_mean_vs_true"] <= FIELDS_COINCIDE
                                    for r in fd["rows"] if r["part"] == p)]
    return {"parts": parts, "coincide": same, "differ": [p for p in parts if p not in same]}


def convergence_test(conv: dict) -> dict:
    """Per series: the fitted log-log slope of the relative error against ``n`` and whether the last checkpoint
    shows a floor (its √n-scaled error above ``FLOOR_FACTOR`` times the largest before it)."""
    n = np.asarray(conv["checkpoints"], dtype=float)
    out = {}
    if n.size < 3:
        return out
    for key, vals in conv.items():
        if key == "checkpoints":
            continue
        err = np.maximum(np.asarray(vals, dtype=float), 1e-300)
        slope = float(np.polyfit(np.log10(n), np.log10(err), 1)[0])
        scaled = err * np.sqrt(n)
        floor = bool(scaled[-1] > FLOOR_FACTOR * scaled[:-1].max())
        out[key] = {"slope": slope, "floor": floor, "ok": slope <= MC_RATE_SLOPE and not floor}
    return out


def _failures(mc: dict, quad: dict, fd: dict, t: dict) -> list:
    out = []
    if t["monte_carlo"]["pass"] is False:
        out.append(f"Monte-Carlo: largest |z| {mc['max_abs_z']:.2f} ≥ {t['monte_carlo']['bonferroni_z']:.2f}")
    if t["quadrature"]["pass"] is False:
        out.append(f"quadrature: {quad['min_digits']:.1f} digits < {REQUIRED_DIGITS}")
    if t["true_gradient_fd"]["true_consistent"] is False:
        worst = max(r["max_abs_z_vs_true"] for r in fd["rows"])
        out.append(f"true-gradient witness: largest |z| {worst:.2f} ≥ {t['true_gradient_fd']['bonferroni_z']:.2f}")
    return out


def claim1(summary: dict, t: dict) -> dict:
    """The verdict row on claim 1 from the tests ``t`` (see the module's docstring for the rule)."""
    row = {"claim": 1, "evidence": f"{NAME}.md"}
    checks = {"Monte-Carlo": t["monte_carlo"]["pass"], "quadrature": t["quadrature"]["pass"],
              "true-gradient witness": t["true_gradient_fd"]["true_consistent"]}
    failed = _failures(summary["monte_carlo"], summary["quadrature"], summary["true_gradient_fd"], t)
    if failed:
        return {**row, "verdict": "refuted by a witness (see report)", "convention": "failed: " + "; ".join(failed)}
    missing = [k for k, v in checks.items() if v is None]
    if missing:
        return {**row, "verdict": "inconclusive", "convention": "not run (no entries): " + ", ".join(missing)}
    differ = t["fields"]["differ"]
    convention = (f"closed-form losses and mean fields agree with Monte-Carlo (Bonferroni, α = {ALPHA}) and with "
                  f"quadrature to ≥ {REQUIRED_DIGITS} digits")
    if not differ:
        return {**row, "verdict": "confirmed",
                "convention": convention + "; the closed mean field and true gradient coincide for every part"}
    # (c) holds here: the witness confirms the closed true gradient, whose gap to the closed mean field is `differ`;
    # whether it also tells the two apart (rejects the mean field as the gradient of the MC loss) depends on n
    seen = ("MC central differences confirm both" if t["true_gradient_fd"]["mean_rejected_for_J_H"]
            else "MC central differences agree with the true gradient but, at this sample size, do not reject the "
                 "mean field")
    convention += f"; the paper's gradients are the mean field, the true gradient of {', '.join(differ)} differs ({seen})"
    return {**row, "verdict": "confirmed with qualifications", "convention": convention}


def _outcome(ok) -> str:
    return {True: "**pass**", False: "**FAIL**", None: "**not run**"}[ok]


def true_gradient_sentences(t: dict) -> list:
    """Section 3: what the central-difference witness says, for the parts that were run."""
    fd, fields = t["true_gradient_fd"], t["fields"]
    if fd["true_consistent"] is None:
        return []
    out = [f"The witness is consistent with the closed true gradient everywhere: **{fd['true_consistent']}**."]
    jh = [p for p in fields["parts"] if p in ("J", "H")]
    if jh:
        names = " and ".join(f"`{p}`" for p in jh)
        out.append(f"It rejects the mean field as the gradient of the population {names}: "
                   f"**{fd['mean_rejected_for_J_H']}**.")
    if fields["coincide"]:
        names = " and ".join(f"`{p}`" for p in fields["coincide"])
        out.append(f"For {names} the two fields coincide.")
    return out


def paper_sentence(t: dict) -> str | None:
    pj = t["paper_H_vs_mc_jacobian"]
    if pj["paper_consistent"] is None:
        return None
    return (f"The paper's ∇²H is consistent with the Jacobian of the sampled mean field: **{pj['paper_consistent']}**; "
            f"the Hessian of the population `H` is rejected as that Jacobian: **{pj['true_hessian_rejected']}**.")


def convergence_sentence(conv: dict) -> str:
    """The convergence figure's finding: does every error fall at the Monte-Carlo rate, without a floor?"""
    if not conv:
        return "too few checkpoints to fit a rate"
    slopes = [v["slope"] for v in conv.values()]
    span = f"fitted log-log slopes {min(slopes):.2f} to {max(slopes):.2f}"
    bad = [k for k, v in conv.items() if not v["ok"]]
    if not bad:
        return f"the error falls at the Monte-Carlo rate ({span}) and shows no floor, so no bias"
    return (f"the error of {', '.join(bad)} does not fall at the Monte-Carlo rate or levels off ({span}): "
            "a bias is not excluded")


def judge(summary: dict) -> dict:
    """Every decision, the verdict and the findings of the witnesses report."""
    t = {"monte_carlo": monte_carlo_test(summary["monte_carlo"]),
         "quadrature": quadrature_test(summary["quadrature"]),
         "true_gradient_fd": true_gradient_test(summary["true_gradient_fd"]),
         "paper_H_vs_mc_jacobian": paper_jacobian_test(summary["paper_H_vs_mc_jacobian"]),
         "fields": field_gaps(summary["true_gradient_fd"]),
         "convergence": convergence_test(summary["convergence"])}
    quad_ok = t["quadrature"]["pass"]
    sentences = {"monte_carlo": _outcome(t["monte_carlo"]["pass"]),
                 "quadrature": {True: f"≥ {REQUIRED_DIGITS}: pass", False: f"< {REQUIRED_DIGITS}: FAIL",
                                None: "not run"}[quad_ok],
                 "true_gradient": true_gradient_sentences(t), "paper": paper_sentence(t),
                 "convergence": convergence_sentence(t["convergence"])}
    return {"tests": t, "verdicts": [claim1(summary, t)], "sentences": sentences}
