"""Judge layer of the generalizations report: every verdict and finding sentence, from the summary alone.

Rules (pure functions of the numbers, each tested on constructed summaries):

* per configuration, the **conditioning ratios** ``r = kappa_real(sobolev) / kappa_real(base)`` at the points
  near the teacher where both real-part condition numbers are defined, and the **rate ratios**
  ``rate(sobolev) / rate(base)`` of the flows, predicted (smallest real part of the mean-field Jacobian at
  the end point) and measured (fitted decay of ``L``), where both are positive;
* a configuration **holds** when every conditioning ratio is ``< 1`` and every rate ratio (predicted and
  measured) is ``> 1``; **fails** when none is; **holds with qualifications** otherwise; **inconclusive**
  when nothing is defined;
* an extension (a group of configurations) **holds** when all of its configurations hold, **fails** when
  all fail, is **inconclusive** when all are, and **holds with qualifications** otherwise (the
  configurations that do not hold are named).
"""
from __future__ import annotations

from . import control
from .ratios import conditioning_ratios, rate_ratios

EXTENSIONS = {
    "output_weights": "Trained output weights (ReLU, gradients in (W, a))",
    "leaky_relu": "Leaky ReLU",
    "relu_power": "ReLU powers (Cho & Saul degree 2, 3)",
    "anisotropic_cov": "Anisotropic input covariance",
    "second_order": "Second-order Sobolev loss: does J2 accelerate beyond J?",
    "erf": "erf, the smooth control (H against L)",
    "erf_second_order": "erf: does J2 accelerate beyond J?",
}


def config_verdict(config: dict) -> str:
    cond = conditioning_ratios(config)
    rates = rate_ratios(config, "predicted") + rate_ratios(config, "measured")
    good = [r < 1 for r in cond] + [r > 1 for r in rates]
    if not good:
        return "inconclusive"
    if all(good):
        return "holds"
    if not any(good):
        return "fails"
    return "holds with qualifications"


def extension_verdict(verdicts: list) -> str:
    """The verdict of an extension from those of its configurations."""
    if not verdicts:
        return "inconclusive"
    for v in ("holds", "fails", "inconclusive"):
        if all(x == v for x in verdicts):
            return v
    return "holds with qualifications"


def _span(values: list, spec: str = ".3g") -> str:
    if not values:
        return "none defined"
    lo, hi = min(values), max(values)
    return f"{lo:{spec}}" if lo == hi else f"{lo:{spec}}–{hi:{spec}}"


def config_sentence(config: dict) -> str:
    cond = conditioning_ratios(config)
    pred, meas = rate_ratios(config, "predicted"), rate_ratios(config, "measured")
    better = sum(r < 1 for r in cond)
    return (f"{config['label']}: the Sobolev objective's Jacobian is better conditioned at {better} of {len(cond)} "
            f"points (κ ratio {_span(cond)}); its flows are faster by ×{_span(pred)} (predicted) and ×{_span(meas)} "
            f"(measured): **{config_verdict(config)}**.")


SYMBOLIC_TOL = 1e-8  # symbolic and numerical condition numbers agree when their relative gap is below this


def symbolic_gap(config: dict) -> float | None:
    """Largest relative gap between the real-part condition numbers of the one-node points from the symbolic
    spectra and from the numerical Jacobians (``None`` where the symbolic spectra do not apply)."""
    rows = config.get("symbolic_single_node")
    if not rows:
        return None
    numeric = [r for r in config["conditioning"] if r["kind"] == "one node"]
    gaps = []
    for sym, num in zip(rows, numeric):
        for which in ("base", "sobolev"):
            a, b = sym[which]["real_part"], num[which]["real_part"]
            if (a is None) != (b is None):
                return float("inf")
            if a is not None:
                gaps.append(abs(a - b) / abs(b))
    return max(gaps, default=0.0)


def symbolic_sentence(configs: list) -> str:
    gaps = [g for g in map(symbolic_gap, configs) if g is not None]
    if not gaps:
        return "No configuration has closed-form single-node spectra here (a covariance or trained output weights)."
    worst = max(gaps)
    verdict = "agree" if worst <= SYMBOLIC_TOL else "**disagree**"
    return (f"The one-node condition numbers from the symbolic spectra (theory.activations.single_node_objective_spectrum) "
            f"and from the numerical Jacobians {verdict} in {len(gaps)} configurations: largest relative gap {worst:.1e} "
            f"(tolerance {SYMBOLIC_TOL:g}).")


def judge(summary: dict) -> dict:
    """``{"verdicts": [index rows], "extensions": {name: {"verdict", "configs", "sentences", "failing"}}}``."""
    groups = {}
    for config in summary["configurations"]:
        groups.setdefault(config["extension"], []).append(config)
    extensions, verdicts = {}, []
    for name, configs in groups.items():
        per = [config_verdict(c) for c in configs]
        verdict = extension_verdict(per)
        failing = [c["label"] for c, v in zip(configs, per) if v != "holds"]
        extensions[name] = {"verdict": verdict, "config_verdicts": per, "failing": failing,
                            "sentences": [config_sentence(c) for c in configs]}
        verdicts.append({"claim": f"beyond:{name}", "title": EXTENSIONS.get(name, name), "verdict": verdict,
                         "convention": "mean fields (autograd training), real-part condition numbers of their "
                                       "Jacobians near the teacher, population flow rates",
                         "evidence": "generalizations.md"})
    out = {"verdicts": verdicts, "extensions": extensions, "symbolic": symbolic_sentence(summary["configurations"])}
    if "single_node_control" in summary:  # the ReLU-against-erf questions (verify.generalizations.control)
        out["control"] = control.judge(summary)
        out["verdicts"] += out["control"]["verdicts"]
    return out
