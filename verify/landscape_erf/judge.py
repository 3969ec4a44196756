"""Judge layer of the erf landscape report: every verdict and finding sentence, from the summary alone.

Rules (pure functions of the numbers, each tested on constructed summaries):

* **Does L have spurious minima?** ``"spurious minima found"`` when at least one descent of ``L`` ended at a
  spurious minimum; ``"none found"`` when none did and at most :data:`MAX_NOT_CONVERGED` of the runs did not
  converge (the Wilson interval of the spurious fraction is stated); ``"inconclusive"`` otherwise.
* **Does H remove them?** Over the starts whose ``L`` descent ended at a spurious minimum: ``"removes them"``
  when ``H`` ended at the global minimum from every one of them and nowhere at a spurious minimum of its own,
  ``"removes some"`` when from some, ``"does not remove them"`` when from none; with no spurious minimum of ``L``,
  ``"nothing to remove"`` (with ``H``'s own count: ``"nothing to remove; H has spurious minima"`` when it has any).
"""
from __future__ import annotations

from numerics.landscape import wilson_interval

from ..generalizations.control import finding
from ..landscape.judge import ALPHA

MAX_NOT_CONVERGED = 0.01  # "none found" needs at least 99 % of the runs of L converged (to any kind of end point)
L_VERDICTS = ("spurious minima found", "none found", "inconclusive")
H_VERDICTS = ("removes them", "removes some", "does not remove them", "nothing to remove",
              "nothing to remove; H has spurious minima")


def counts(summary: dict, flow: str) -> dict:
    """``{kind: count}`` over every start of ``flow`` (all ``(k, K)``), and ``"starts"``."""
    out = {"starts": 0}
    for g in summary["groups"]:
        if g["flow"] == flow:
            out["starts"] += len(g["kind"])
            for kind in g["kind"]:
                out[kind] = out.get(kind, 0) + 1
    return out


def paired(summary: dict) -> dict:
    """Over the starts where ``L`` ended at a spurious minimum: ``{"L spurious": n, "H global": m}`` (same
    ``(k, K)`` and start index under both flows)."""
    by = {(g["k"], g["K"], g["flow"]): g["kind"] for g in summary["groups"]}
    n = m = 0
    for (k, K, flow), kinds in by.items():
        if flow != "L":
            continue
        for i, kind in enumerate(kinds):
            if kind == "spurious minimum":
                n += 1
                m += by[(k, K, "H")][i] == "global"
    return {"L spurious": n, "H global": m}


def l_verdict(c: dict) -> str:
    if c.get("spurious minimum", 0):
        return "spurious minima found"
    return "none found" if c.get("not converged", 0) <= MAX_NOT_CONVERGED * c["starts"] else "inconclusive"


def h_verdict(pairs: dict, h_counts: dict) -> str:
    own = h_counts.get("spurious minimum", 0)
    if not pairs["L spurious"]:
        return "nothing to remove; H has spurious minima" if own else "nothing to remove"
    if pairs["H global"] == pairs["L spurious"] and not own:
        return "removes them"
    return "removes some" if pairs["H global"] else "does not remove them"


def _share(c: dict, kind: str) -> str:
    k, n = c.get(kind, 0), c["starts"]
    lo, hi = wilson_interval(k, n, 1 - ALPHA)
    return f"{k}/{n} ({100 * lo:.2g}–{100 * hi:.2g} % at {100 * (1 - ALPHA):g} %, Wilson)"


def sentences(summary: dict, cl: dict, ch: dict, pairs: dict) -> list:
    ks = sorted({g["k"] for g in summary["groups"]})
    out = [f"L, erf, k = {ks[0]}…{ks[-1]}: spurious minima in {_share(cl, 'spurious minimum')} of the runs; "
           f"global {cl.get('global', 0)}, saddles {cl.get('saddle', 0)}, not converged {cl.get('not converged', 0)}: "
           f"**{l_verdict(cl)}**.",
           f"H, erf: spurious minima in {_share(ch, 'spurious minimum')}; global {ch.get('global', 0)}, saddles "
           f"{ch.get('saddle', 0)}, not converged {ch.get('not converged', 0)}; from the {pairs['L spurious']} starts "
           f"where L ended at a spurious minimum, H reached the global minimum from {pairs['H global']}: "
           f"**{h_verdict(pairs, ch)}**."]
    return out


CONTROL_QUESTION = "Does gradient descent on L end at spurious minima (Safran & Shamir's setting)?"


def control_row(summary: dict) -> dict | None:
    """The ReLU-against-erf row for the index (``verify.generalizations.control``'s table): whether ``L`` ended at a
    spurious minimum, for ReLU (the landscape report beside this one) and for erf (this report); ``None`` without the
    ReLU report.  Where ReLU has them and erf does not, the landscape question (does ``H`` remove them?) is about ReLU."""
    relu = summary.get("relu_landscape")
    if not relu:
        return None
    answers = {}
    for name, source in (("relu", relu), ("erf", summary)):
        c = counts(source, "L")
        n = c.get("spurious minimum", 0)
        answers[name] = ("yes" if n else "no", f"{n}/{c['starts']} runs of L"
                         + (f" ({relu['file']}, {relu['profile']} profile)" if name == "relu" else ""))
    return {"claim": "control:landscape", "title": CONTROL_QUESTION,
            "relu": f"{answers['relu'][0]}: {answers['relu'][1]}", "erf": f"{answers['erf'][0]}: {answers['erf'][1]}",
            "verdict": finding(answers["relu"][0], answers["erf"][0]),
            "convention": "population gradient descent on L from random starts, teacher I_k, K = k, k+1, k+2",
            "evidence": "landscape_erf.md"}


def judge(summary: dict) -> dict:
    """``{"verdicts": [index rows], "L", "H", "pairs", "sentences"}``."""
    cl, ch, pairs = counts(summary, "L"), counts(summary, "H"), paired(summary)
    convention = "erf networks, teacher I_k, K = k, k+1, k+2; gradient descent on the population loss (for erf the mean field is the gradient)"
    rows = [{"claim": "beyond:landscape-erf-L", "title": "erf networks: does L have spurious minima?",
             "verdict": l_verdict(cl), "convention": convention, "evidence": "landscape_erf.md"},
            {"claim": "beyond:landscape-erf-H", "title": "erf networks: does H remove the spurious minima of L?",
             "verdict": h_verdict(pairs, ch), "convention": convention, "evidence": "landscape_erf.md"}]
    control = control_row(summary)
    if control is not None:
        rows.append(control)
    return {"verdicts": rows, "L": cl, "H": ch, "pairs": pairs, "sentences": sentences(summary, cl, ch, pairs),
            "control": control}
