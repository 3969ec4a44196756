"""Judge layer, the smooth control: is each of the paper's findings about Sobolev training or about ReLU?

Four questions are asked of ReLU and of erf (no kink: one gradient, one Hessian) with the same code, points and
starts (``verify.generalizations.compute``); each gets an **answer** per activation from that report's numbers,
and the pair of answers says **what the finding is**.  Rules (pure functions, tested on constructed summaries):

* (a) *conditioning near the teacher*: the conditioning ratios ``kappa_real(H) / kappa_real(L)`` of the group's
  configurations; **yes** when every one is ``< 1``, **no** when none is, **partly** otherwise, **undefined**
  when none is defined.
* (b) *faster flow*: the rate ratios (predicted and measured) of the group's flows and the one-node rate ratio at
  the teacher (closed form); yes / no / partly as in (a) with ``> 1``.
* (c) *J2 beyond J*: (a) and (b) together for ``L + J + lambda_2 J2`` against ``L + J``; for ReLU ``J2`` does not
  exist (**undefined**; the ReLU powers' answer is given beside it).
* (d) *matched step*: the gains ``kappa(base) / kappa(Sobolev)`` of the Jacobians at the flows' end points and at
  the one-node teacher (the per-step rate of gradient descent with a step matched to each objective's curvature,
  ``eta = 1 / lambda_max``, is ``1 / kappa``); a gain counts when it exceeds :data:`MATCHED_GAIN_MIN`.

What the finding is, from the two answers (:func:`finding`): **Sobolev** (yes for both), **Sobolev, with
qualifications** (yes or partly for both, not both yes), **ReLU artefact** (yes or partly for ReLU, no for erf),
**smooth activations only** (no for ReLU, yes or partly for erf), **needs a smooth activation** (undefined for
ReLU, yes or partly for erf), **neither** (no for both), **inconclusive** otherwise.
"""
from __future__ import annotations

from .ratios import conditioning_ratios, matched_gains, rate_ratios

QUESTIONS = {
    "a": "Does H improve the conditioning near the teacher?",
    "b": "Does the population flow on H converge faster than on L?",
    "c": "Does J2 accelerate beyond J?",
    "d": "Does the acceleration survive a step matched to each loss's curvature?",
}
# the extensions (groups of configurations) each activation answers each question with
GROUPS = {"relu": {"a": "anisotropic_cov", "b": "anisotropic_cov", "c": "second_order", "d": "anisotropic_cov"},
          "erf": {"a": "erf", "b": "erf", "c": "erf_second_order", "d": "erf"}}
ANSWERS = ("yes", "partly", "no", "undefined")
FINDINGS = ("Sobolev", "Sobolev, with qualifications", "ReLU artefact", "smooth activations only",
            "needs a smooth activation", "neither", "inconclusive")
MATCHED_GAIN_MIN = 1.05  # a matched-step gain below 5 % is no gain (the one-node ReLU gain is exactly 1)
CONTROL_NORM = 1.0  # the erf one-node numbers quoted are those at |w*| = 1, the configurations' teacher norm


def answer(good: list) -> str:
    """yes / no / partly / undefined from the list of per-number outcomes (True: in the Sobolev objective's favour)."""
    if not good:
        return "undefined"
    return "yes" if all(good) else "no" if not any(good) else "partly"


def finding(relu: str, erf: str) -> str:
    """What the finding is, from the two answers (module docstring)."""
    positive = ("yes", "partly")
    if relu == "yes" and erf == "yes":
        return "Sobolev"
    if relu in positive and erf in positive:
        return "Sobolev, with qualifications"
    if relu in positive and erf == "no":
        return "ReLU artefact"
    if relu == "no" and erf in positive:
        return "smooth activations only"
    if relu == "undefined" and erf in positive:
        return "needs a smooth activation"
    if relu == "no" and erf == "no":
        return "neither"
    return "inconclusive"


def _group(summary: dict, extension: str) -> list:
    return [c for c in summary["configurations"] if c["extension"] == extension]


def one_node(summary: dict, activation: str, comparison: str) -> dict | None:
    """The one-node row at the teacher (``comparison`` ``"H_vs_L"`` or ``"J2_vs_J"``), erf's at :data:`CONTROL_NORM`."""
    control = summary["single_node_control"][activation]
    if activation == "relu":
        return control[comparison]
    return next(r[comparison] for r in control["at_teacher_norm"] if r["norm"] == CONTROL_NORM)


def _numbers(summary: dict, activation: str, question: str) -> dict:
    """The numbers the question reads for one activation: lists of ratios by name."""
    configs = _group(summary, GROUPS[activation][question])
    comparison = "J2_vs_J" if question == "c" else "H_vs_L"
    node = one_node(summary, activation, comparison)
    out = {"conditioning": [r for c in configs for r in conditioning_ratios(c)],
           "rates": [r for c in configs for r in rate_ratios(c, "predicted") + rate_ratios(c, "measured")],
           "matched": [g for c in configs for g in matched_gains(c)],
           "one_node_rate": [] if node is None else [node["rate_ratio"]],
           "one_node_matched": [] if node is None else [node["matched_step_gain"]]}
    return out


def outcomes(numbers: dict, question: str) -> list:
    """Per number, whether it favours the Sobolev objective, for ``question``."""
    cond = [r < 1 for r in numbers["conditioning"]]
    rates = [r > 1 for r in numbers["rates"] + numbers["one_node_rate"]]
    if question == "a":
        return cond
    if question == "b":
        return rates
    if question == "c":
        return cond + rates
    return [g > MATCHED_GAIN_MIN for g in numbers["matched"] + numbers["one_node_matched"]]


def _span(values: list) -> str:
    if not values:
        return "none defined"
    lo, hi = f"{min(values):.3g}", f"{max(values):.3g}"
    return lo if lo == hi else f"{lo}–{hi}"


def evidence(numbers: dict, question: str) -> str:
    """The numbers behind an answer, in words."""
    good = outcomes(numbers, question)
    head = f"{sum(good)}/{len(good)} in H's favour"
    if question == "a":
        return f"{head}; κ(H)/κ(L) {_span(numbers['conditioning'])}"
    if question in ("b", "c"):
        one = f"; one node at the teacher ×{numbers['one_node_rate'][0]:.3g}" if numbers["one_node_rate"] else ""
        cond = f"; κ ratio {_span(numbers['conditioning'])}" if question == "c" else ""
        return f"{head}; rate ratio {_span(numbers['rates'])}{one}{cond}"
    one = f"; one node at the teacher ×{numbers['one_node_matched'][0]:.3g}" if numbers["one_node_matched"] else ""
    return f"{head} (gain > {MATCHED_GAIN_MIN:g}); gain κ(base)/κ(Sobolev) at the flows' ends {_span(numbers['matched'])}{one}"


def exactly_two_sentence(summary: dict) -> str:
    """Is the one-node rate ratio 2 a ReLU fact?  From the closed forms."""
    relu, erf = summary["single_node_control"]["relu"], summary["single_node_control"]["erf"]
    at = {r["norm"]: r["H_vs_L"]["rate_ratio"] for r in erf["at_teacher_norm"]}
    relu_words = "exactly 2 at every |w*|" if relu["exactly_two"] else f"{relu['H_vs_L']['rate_ratio']:.4g}"
    erf_words = ("also exactly 2" if erf["exactly_two"] else
                 "not a constant: " + ", ".join(f"{v:.4g} at |w*| = {k:g}" for k, v in at.items())
                 + f", tending to {_span(erf['ratio_limits']['0'])} as |w*| → 0 (the linear regime of erf)")
    fact = "a ReLU fact" if relu["exactly_two"] and not erf["exactly_two"] else "not ReLU's alone"
    return (f"**One node at the teacher, H against L** (closed forms): the rate ratio is {relu_words} for ReLU and, for erf, {erf_words}: "
            f"the exact 2 is {fact}.")


CLOSED_FORM_RTOL = 1e-10  # erf's one-node closed forms and the numerical Hessian agree when this close


def closed_form_gap(summary: dict) -> float:
    """Largest relative gap between the numerical erf Hessian's eigenvalues at ``w = w* = e_1`` (``d = 3``) and the
    closed forms at ``|w*| = 1`` (along ``w*`` once, across it ``d - 1`` times)."""
    control = summary["single_node_control"]
    along, across = one_node(summary, "erf", "H_vs_L")["base"]
    closed = sorted([along] + [across] * (len(control["erf_numerical_L"]) - 1))
    return max(abs(x - y) / abs(y) for x, y in zip(sorted(control["erf_numerical_L"]), closed))


def closed_form_sentence(summary: dict) -> str:
    gap = closed_form_gap(summary)
    words = "agree" if gap <= CLOSED_FORM_RTOL else "**disagree**"
    return (f"erf's one-node eigenvalues of L in closed form and from `numerics.hessian(…, activation=\"erf\")` {words}: "
            f"largest relative gap {gap:.1e} (tolerance {CLOSED_FORM_RTOL:g}).")


def judge(summary: dict) -> dict:
    """``{"questions": {q: {"question", "relu", "erf", "finding"}}, "verdicts": [index rows], "exactly_two"}``."""
    questions, rows = {}, []
    for q, text in QUESTIONS.items():
        per = {}
        for act in ("relu", "erf"):
            numbers = _numbers(summary, act, q)
            word = "undefined" if act == "relu" and q == "c" else answer(outcomes(numbers, q))
            note = evidence(numbers, q)
            if act == "relu" and q == "c":
                note = f"J2 does not exist for ReLU (its second derivative is a delta); ReLU powers p ≥ 2: {note}"
            per[act] = {"answer": word, "evidence": note}
        what = finding(per["relu"]["answer"], per["erf"]["answer"])
        questions[q] = {"question": text, **per, "finding": what}
        rows.append({"claim": f"control:{q}", "title": text, "verdict": what,
                     "relu": f"{per['relu']['answer']}: {per['relu']['evidence']}",
                     "erf": f"{per['erf']['answer']}: {per['erf']['evidence']}",
                     "convention": "mean fields (for erf the true gradient; one Hessian), same points and starts for "
                                   "both activations",
                     "evidence": "generalizations.md#the-smooth-control-relu-against-erf"})
    return {"questions": questions, "verdicts": rows, "exactly_two": exactly_two_sentence(summary),
            "closed_form": closed_form_sentence(summary)}
