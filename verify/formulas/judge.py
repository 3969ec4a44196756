"""Judge layer of the formulas report: verdicts and every sentence stating a finding, from the summary alone.

Rules (each a function below, each pure):

* Claim 1 (exact losses and gradients): ``refuted`` if a component-wise check at 30 digits disagrees with the
  invariant-based chain rule (a gap of ``COMPONENTWISE_TOL`` or more); else ``inconclusive`` if a SymPy
  difference (an identity of ``proofs`` or a kernel against Cho & Saul) did not simplify to ``0``; else
  ``confirmed`` if the mean field and the true gradient coincide for every part (pair term ``(0, 0)``); else
  ``confirmed with qualifications`` (the paper's gradient is the mean field).
* Claim 2 (the paper's single-node Hessians): each paper formula is matched to the derived Hessians it equals
  (symbolic identification); the numeric comparison must agree with it (a gap at most ``NUMERIC_TOL`` times the
  entry scale, at least 1, means equal), else ``inconclusive``; ``refuted`` if a formula equals none of the three
  derived Hessians; ``confirmed`` if both are Hessians of the population loss; else ``confirmed with
  qualifications``.
"""
from __future__ import annotations

from theory.vocabulary import HESSIAN_FIELDS

NAME = "formulas"
COMPONENTWISE_TOL = 1e-25  # the component-wise check runs at 30 significant digits on O(1) entries
NUMERIC_TOL = 1e-9  # float64 closed forms of O(1) entries agree to ~1e-12; other objects differ by O(0.1)
SPECTRA_TOL = 1e-9  # eigenvalue curves closer than this (relative to 1 + largest |eigenvalue|) coincide
PAPER_DOMAIN = "θ ∈ (0, π)"  # where the typed-in formulas are defined: α has sin θ in its denominator
FORMULAS = ("L", "H")
HESSIANS = HESSIAN_FIELDS
HESSIAN_NAMES = {"true": "Hessian of the population loss", "mean": "Jacobian of the mean field",
                 "autograd": "expected per-sample autograd Hessian"}
OBJECT_NAMES = {"true": "Hessian of the population", "mean": "Jacobian of the mean field of",
                "autograd": "expected autograd Hessian of"}
# the rows of the existence table behind each Hessian, and the parts of the pair sum behind each formula
EXISTENCE_OBJECTS = {"true": ("true_hessian_a", "true_hessian_b"), "mean": ("mean_jacobian_a", "mean_jacobian_b"),
                     "autograd": ("autograd_hessian",)}
FORMULA_PARTS = {"L": ("L",), "H": ("L", "J")}  # H = L + J


def _join(items) -> str:
    items = list(items)
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


# ----------------------------------------------------------------------------- claim 1
def derivation_status(summary: dict) -> dict:
    """Which checks of the derivation hold: symbolic (proofs, Cho & Saul) and component-wise numeric."""
    proofs, cho = summary["proofs"], summary["cho_saul_differences"]
    gaps = summary["componentwise_check_max_gap"]
    failed_proofs = [k for k, v in proofs.items() if v != "0"]
    failed_kernels = [k for k, v in cho.items() if v != "0"]
    failed_components = [f"{d}: {k}" for d, row in gaps.items() for k, v in row.items()
                         if not v < COMPONENTWISE_TOL]
    return {"failed_proofs": failed_proofs, "failed_kernels": failed_kernels,
            "failed_components": failed_components, "symbolic_ok": not (failed_proofs or failed_kernels),
            "numeric_ok": not failed_components, "proofs_total": len(proofs)}


def differing_parts(summary: dict) -> list:
    """Parts whose mean field and true gradient differ (pair term not ``(0, 0)``)."""
    return [p for p, term in summary["mean_minus_true_pair_term"].items() if any(c != "0" for c in term)]


def missing_at(summary: dict, part: str, obj: str) -> list:
    """Degenerate angles (``"parallel"``, ``"antiparallel"``) where ``obj`` of ``part`` does not exist."""
    rows = [r for r in summary["existence_at_degenerate_angles"] if r["part"] == part and r["object"] == obj]
    return [k for k in ("parallel", "antiparallel") if any(not r[k] for r in rows)]


def with_sums(parts: list) -> list:
    """The parts plus ``H`` (= L + J), which inherits every difference of ``L`` or ``J``."""
    return parts + ["H"] if parts and "H" not in parts else parts


def claim1(summary: dict) -> dict:
    status = derivation_status(summary)
    differ = differing_parts(summary)
    if not status["numeric_ok"]:
        return {"claim": 1, "verdict": "refuted",
                "convention": "the invariant-based chain rule disagrees with component-wise sympy.diff at 30 digits "
                              f"({', '.join(status['failed_components'])})", "evidence": f"{NAME}.md"}
    convention = "losses exact (arc-cosine kernels, derived and checked)"
    if differ:
        convention += (f"; the paper's gradients are the mean field E_x[∇_W ℓ]; for {_join(with_sums(differ))} the "
                       "true gradient differs by a boundary term")
        missing = [a for p in differ for a in missing_at(summary, p, "true_gradient")]
        if "parallel" in missing:
            convention += " and does not exist at parallel rows (incl. the teacher)"
        elif "antiparallel" in missing:
            convention += " and does not exist at anti-parallel rows"
    else:
        convention += "; the mean field E_x[∇_W ℓ] and the true gradient coincide"
    if not status["symbolic_ok"]:
        return {"claim": 1, "verdict": "inconclusive", "convention": convention + " [a proof failed: see report]",
                "evidence": f"{NAME}.md"}
    return {"claim": 1, "verdict": "confirmed with qualifications" if differ else "confirmed",
            "convention": convention, "evidence": f"{NAME}.md"}


# ----------------------------------------------------------------------------- claim 2
def numeric_equal(row: dict) -> bool:
    return row["max_abs_gap"] <= NUMERIC_TOL * max(1.0, row["max_abs_entry"])


def identification(summary: dict) -> dict:
    """Per paper formula: the derived Hessians it equals (symbolic), and the Hessians where the numeric
    comparison disagrees with the symbolic one."""
    out = {f: {"matches": [], "disagree": []} for f in FORMULAS}
    numeric = {(r["formula"], r["hessian"]): r for r in summary["paper_identification_numeric"]}
    for r in summary["paper_identification_symbolic"]:
        f, h = r["formula"], r["hessian"]
        if r["equal"]:
            out[f]["matches"].append(h)
        if (f, h) in numeric and numeric_equal(numeric[(f, h)]) != bool(r["equal"]):
            out[f]["disagree"].append(h)
    return out


def _matched_label(h: str, f: str) -> str:
    return {"true": f"Hessian of {f}", "mean": f"Jacobian of the mean field of {f}",
            "autograd": f"expected autograd Hessian of {f}"}[h]


def _unmatched_label(h: str, f: str) -> str:
    return {"true": f"the Hessian of the population {f}", "mean": f"the Jacobian of the mean field of {f}",
            "autograd": "the expected autograd Hessian"}[h]


def claim2_convention(ident: dict) -> str:
    pieces = []
    for f in FORMULAS:
        matches = [h for h in HESSIANS if h in ident[f]["matches"]]
        text = f"∇²{f} = " + " = ".join(_matched_label(h, f) for h in matches)
        if "true" not in matches:
            text += " (not " + ", not ".join(_unmatched_label(h, f) for h in HESSIANS if h not in matches) + ")"
        pieces.append(text)
    return "; ".join(pieces + [PAPER_DOMAIN])


def claim2(summary: dict) -> dict:
    ident = identification(summary)
    row = {"claim": 2, "evidence": f"{NAME}.md#6-which-object-is-each-of-the-papers-single-node-hessians"}
    disagree = [f"∇²{f} vs {HESSIAN_NAMES[h]}" for f in FORMULAS for h in ident[f]["disagree"]]
    unmatched = [f for f in FORMULAS if not ident[f]["matches"]]
    if disagree:
        return {**row, "verdict": "inconclusive",
                "convention": "symbolic and numeric identification disagree: " + "; ".join(disagree)}
    if unmatched:
        return {**row, "verdict": "refuted",
                "convention": "; ".join(f"∇²{f} equals none of the three derived Hessians" for f in unmatched)}
    all_true = all("true" in ident[f]["matches"] for f in FORMULAS)
    return {**row, "verdict": "confirmed" if all_true else "confirmed with qualifications",
            "convention": claim2_convention(ident)}


# ----------------------------------------------------------------------------- sentences
def _angles(missing: list) -> str:
    return " or ".join({"parallel": "parallel", "antiparallel": "anti-parallel"}[a] for a in missing)


def _pretty(expr: str) -> str:
    """A SymPy string for reading: ``-n_b*cos(theta)/(2*pi)`` -> ``−n_b cos θ/(2π)``."""
    for a, b in (("(theta)", " θ"), ("theta", "θ"), ("2*pi", "2π"), ("*pi", " π"), ("pi", "π"), ("*", " "),
                 ("-", "−")):
        expr = expr.replace(a, b)
    return expr


def _term(c: list) -> str:
    terms = [f"{_pretty(v)} {e}" if v != "1" else e for v, e in zip(c, ("e1", "e2")) if v != "0"]
    return " + ".join(terms)


def fields_sentences(summary: dict) -> list:
    """Section 3: for each part, whether the mean field and the true gradient agree, and the kink this makes."""
    out = []
    for part, c in summary["mean_minus_true_pair_term"].items():
        if all(v == "0" for v in c):
            out.append(f"For `{part}` the two fields are **identical** (proof: the difference simplifies to zero).")
            continue
        out.append(f"For `{part}` they differ by the boundary term `{_term(c)}` of each pair — the derivative of the "
                   "indicator product's probability, which autograd does not see.")
        missing = missing_at(summary, part, "true_gradient")
        if missing:
            hence = " (hence `H`)" if part != "H" else ""
            teacher = ", in particular at the teacher" if "parallel" in missing else ""
            out.append(f"The true gradient of `{part}` does not exist where two rows are {_angles(missing)} "
                       f"(section 4), so the population `{part}`{hence} has a **kink wherever two rows are "
                       f"{_angles(missing)}**{teacher}.")
    return out


def diagonal_note(summary: dict) -> str:
    """Section 2: whether the diagonal pair terms were proven."""
    self_proofs = {k: v for k, v in summary["proofs"].items() if "self" in k}
    if self_proofs and all(v == "0" for v in self_proofs.values()):
        return "(proven)"
    return "(not proven: see section 5)"


def derivation_sentences(summary: dict) -> dict:
    """Section 5: the proofs' header and the component-wise check's finding."""
    s = derivation_status(summary)
    n_ok = s["proofs_total"] - len(s["failed_proofs"])
    proofs = ("each simplified to exactly zero" if not s["failed_proofs"]
              else f"{n_ok} of {s['proofs_total']} simplified to zero; **not**: {', '.join(s['failed_proofs'])}")
    components = (f"Every entry agrees: largest gap below {COMPONENTWISE_TOL:.0e}." if s["numeric_ok"] else
                  f"Gaps of {COMPONENTWISE_TOL:.0e} or more (**disagreement**): {', '.join(s['failed_components'])}.")
    return {"proofs": proofs, "componentwise": components}


def _formula_limit(summary: dict, f: str, h: str) -> str:
    missing = {a for p in FORMULA_PARTS[f] for o in EXISTENCE_OBJECTS[h] for a in missing_at(summary, p, o)}
    if not missing:
        return f"the `{f}` formula has a limit"
    if len(missing) == 2:
        return f"the `{f}` formula has none"
    return f"the `{f}` formula has one only at `θ = {'π' if 'parallel' in missing else '0'}`"


def conclusion(summary: dict) -> str:
    """Section 6: which object each paper formula is, and where it has a limit."""
    ident = identification(summary)
    differ = differing_parts(summary)
    out, limits = [], []
    for f in FORMULAS:
        matches = [h for h in HESSIANS if h in ident[f]["matches"]]
        if not matches:
            out.append(f"The paper's `∇²{f}` is **none** of the three derived Hessians.")
            continue
        first = f"{OBJECT_NAMES[matches[0]]} `{f}`"
        text = f"The paper's `∇²{f}` is the " + (first if "true" in matches else f"**{first}**")
        if len(matches) > 1:
            text += f", which for `{f}` is also the " + " and the ".join(HESSIAN_NAMES[h] for h in matches[1:])
        if "true" not in matches:
            boundary = [p for p in differ if p in FORMULA_PARTS[f]]
            text += f"; it is *not* the Hessian of the population `{f}`"
            text += f", which carries the boundary term of `{_join(boundary)}`" if boundary else ""
        out.append(text + ".")
        limits.append(_formula_limit(summary, f, matches[0]))
    if not any("autograd" in ident[f]["matches"] for f in FORMULAS):
        out.append("Neither formula is the expected autograd Hessian (autograd drops every delta term).")
    if limits:
        out.append(f"The formulas hold wherever `{PAPER_DOMAIN}`; at `θ = 0, π` " + ", ".join(limits) + ".")
    return " ".join(out)


def spectra_caption(summary: dict) -> str:
    """Figure caption: whether the true and mean eigenvalue curves coincide, per part."""
    spectra = summary["single_node_spectra"]
    pieces = []
    for part in FORMULAS:
        true, mean = spectra[f"{part}/true"], spectra[f"{part}/mean"]
        gap = max((abs(a - b) for rt, rm in zip(true, mean) for a, b in zip(rt, rm)), default=0.0)
        size = max((abs(a) for row in true for a in row), default=0.0)
        pieces.append(f"for `{part}` the true and mean curves "
                      + ("coincide" if gap <= SPECTRA_TOL * (1 + size) else "separate"))
    return "; ".join(pieces)


def judge(summary: dict) -> dict:
    """Verdicts and findings of the formulas report."""
    return {"verdicts": [claim1(summary), claim2(summary)], "fields": fields_sentences(summary),
            "diagonal": diagonal_note(summary), "derivation": derivation_sentences(summary),
            "conclusion": conclusion(summary), "spectra_caption": spectra_caption(summary)}
