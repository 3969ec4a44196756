"""Render layer of the formulas report: Markdown and the spectra figure, from the summary and the judgement."""
from __future__ import annotations

import numpy as np

from theory import formulas

from ..report import Report, pyplot
from .judge import HESSIAN_NAMES, HESSIANS

INTRO = """
Setting and conventions are those of `docs/theory.md` (sections 4–5): `x ~ N(0, I_d)`, student rows `W`, teacher rows
`W*`, `L = E[(g − g*)²]/2`, `J = E[|∇ₓg − ∇ₓg*|²]/2`, `H = L + J`. **Mean field** = `E_x[∇_W ℓ]` (the
per-sample autograd gradient, averaged: what SGD follows); **true gradient** = `∇_W E_x[ℓ]`. Hessians:
**true** (of the population loss), **mean** (Jacobian of the mean field), **autograd** (`E_x` of the
per-sample autograd Hessian, `σ'' = 0`). Everything below is derived by SymPy (`theory/`); nothing is typed in
except the two published forms it is checked against (Cho & Saul's kernels, the paper's Hessians)."""


def _gap(x: float) -> str:
    return "< 1e-30" if x < 1e-30 else f"{x:.1e}"


def _tick(b) -> str:
    return "yes" if b else "**no**"


def spectra_figure(spectra: dict):
    plt = pyplot()
    thetas = spectra["theta"]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), sharey=True)
    for ax, part in zip(axes, ("L", "H")):
        for field, style in (("true", "-"), ("mean", "--"), ("autograd", ":")):
            eig = np.array(spectra[f"{part}/{field}"])
            for i in range(eig.shape[1]):
                ax.plot(thetas, eig[:, i], style, color=f"C{HESSIANS.index(field)}",
                        label=HESSIAN_NAMES[field] if i == 0 else None)
        ax.set_title(f"single node, |w| = |w*| = 1, d = 3: {part}")
        ax.set_xlabel("angle θ between w and w*")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("eigenvalues (real parts)")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def section_kernels(s: dict) -> str:
    return ("## 1. Arc-cosine kernels from the Gaussian integral\n\n"
            "Derived in polar coordinates in the plane of `a` and `b` (`theory.kernels`):\n\n"
            + "\n".join(f"- `{k}` = ${v}$" for k, v in s["latex"]["kernels"].items())
            + "\n\nDerived minus Cho & Saul's closed forms, simplified: "
            + ", ".join(f"`{k}`: **{v}**" for k, v in s["cho_saul_differences"].items()) + ".")


def section_pairs(s: dict, j: dict) -> list:
    blocks = [f"""## 2. Pair terms

Every population quantity is a signed sum over pairs of rows of `Z = [W; W*]` (signs `+1` students, `−1`
teachers): `F = ½ Σ_{{p,q}} s_p s_q f(z_p, z_q)`. For a pair `(a, b)` — `a` the differentiated student row —
vectors are written on `â, b̂` and matrices as `E B Eᵀ + s I` with `E = [e1 e2]`, `e1 = â`,
`e2 = (b̂ − cos θ â)/sin θ`; the diagonal terms (`b = a`) are `a/2` and `I/2` for every object {j['diagonal']}."""]
    for part, c in s["latex"]["parts"].items():
        lines = [f"### Part {part}", "", f"- loss kernel `f(a,b)` = ${c['loss_kernel']}$"]
        for key, (label, _) in {**formulas.VECTOR_OBJECTS, **formulas.MATRIX_OBJECTS}.items():
            lines.append(f"- {label} = ${c[key]}$")
        blocks.append("\n".join(lines))
    return blocks


def section_fields(s: dict, j: dict) -> str:
    return ("## 3. Mean field against true gradient\n\n"
            "Pair term of (mean field − true gradient), in the e-basis (`c1 e1 + c2 e2`):\n\n"
            + "\n".join(f"- {p}: `({c1}, {c2})`" for p, (c1, c2) in s["mean_minus_true_pair_term"].items())
            + "\n\n" + " ".join(j["fields"]))


def section_existence(s: dict) -> str:
    lines = ["## 4. Where each object exists", "",
             "An object exists at exactly parallel (anti-parallel) rows when its limit does not depend on the "
             "direction of approach (all `e2` terms vanish). `numerics` returns the limit where it exists and "
             "raises `ValueError` where it does not.", "",
             "| part | object | parallel (θ = 0) | anti-parallel (θ = π) |", "|---|---|---|---|"]
    lines += [f"| {r['part']} | `{r['object']}` | {_tick(r['parallel'])} | {_tick(r['antiparallel'])} |"
              for r in s["existence_at_degenerate_angles"]]
    return "\n".join(lines)


def section_checks(s: dict, j: dict) -> str:
    calculus = s["componentwise_check_max_gap"]
    lines = ["## 5. Checks of the derivation", "",
             f"Identities used by the stable numerics ({j['derivation']['proofs']}):", ""]
    lines += [f"- {k}: **{v}**" for k, v in s["proofs"].items()]
    lines += ["", "Invariant-based chain rule against component-wise `sympy.diff` of the explicit forms at seeded "
              "rational points, 30 significant digits (largest entry of the difference):", "",
              "| object | d = 2 | d = 3 |", "|---|---|---|"]
    for key in calculus["d=2"]:
        lines.append(f"| `{key}` | {_gap(calculus['d=2'][key])} | {_gap(calculus['d=3'][key])} |")
    lines += ["", j["derivation"]["componentwise"]]
    return "\n".join(lines)


def section_identification(s: dict, j: dict, name: str) -> str:
    numeric = s["paper_identification_numeric"]
    lines = ["## 6. Which object is each of the paper's single-node Hessians", "",
             "Paper (`K = K* = 1`, `α = |w*|/(2π|w| sin θ)`): `∇²L = ½I − α(uuᵀ − cos θ vuᵀ + sin²θ I)(I − vvᵀ)`, "
             "`∇²H = I − α(2uuᵀ − cos θ vuᵀ + sin²θ I)(I − vvᵀ)`.", "",
             "Symbolic comparison with the derived single-node Hessians (`theory.paper.identify`):", "",
             "| paper formula | derived Hessian | equal? | evidence |", "|---|---|---|---|"]
    for r in s["paper_identification_symbolic"]:
        ev = ("difference simplifies to 0 (all d)" if r["proof"] == "symbolic"
              else f"max entry gap {r['max_entry_gap']:.3g} (30 digits)")
        lines.append(f"| ∇²{r['formula']} | {HESSIAN_NAMES[r['hessian']]} | {'**yes**' if r['equal'] else 'no'} | {ev} |")
    lines += ["", f"Numeric cross-check through the public API: the paper's formulas typed into NumPy against "
              f"`numerics.hessian` at {numeric[0]['points']} seeded random points in d = {numeric[0]['d']}:", "",
              "| paper formula | `numerics.hessian(..., field)` | max abs gap | max abs entry |", "|---|---|---|---|"]
    lines += [f"| ∇²{r['formula']} | `{r['hessian']}` | {r['max_abs_gap']:.2e} | {r['max_abs_entry']:.2f} |"
              for r in numeric]
    lines += ["", f"**Conclusion.** {j['conclusion']}", "",
              f"![single-node spectra]({name}_single_node_spectra.png)", "",
              "*Eigenvalues (real parts) of the three single-node Hessians of `L` (left) and `H` (right) along the "
              f"angle: {j['spectra_caption']}.*"]
    return "\n".join(lines)


def render(name: str, title: str, summary: dict, judgement: dict) -> Report:
    rep = Report(name, title)
    rep.data = summary
    rep.verdicts = judgement["verdicts"]
    rep.figures[f"{name}_single_node_spectra.png"] = spectra_figure(summary["single_node_spectra"])
    for block in [INTRO, section_kernels(summary), *section_pairs(summary, judgement), section_fields(summary, judgement),
                  section_existence(summary), section_checks(summary, judgement),
                  section_identification(summary, judgement, name)]:
        rep.add(block)
    return rep
