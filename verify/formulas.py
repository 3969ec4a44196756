"""``python -m verify.formulas``: the derived formulas, their proofs, and what the paper's Hessians are.

Writes ``formulas.md`` / ``formulas.json`` / ``formulas_single_node_spectra.png``.
Every statement is produced by code: SymPy proofs (differences that simplify to zero),
component-wise checks in ``d = 2, 3`` at 30 digits, and a numeric comparison of the
paper's formulas (typed into NumPy here, independently of :mod:`theory`) with
``numerics.hessian`` for the three Hessians.
"""
from __future__ import annotations

import numpy as np

import numerics
from theory import explicit, formulas, kernels, pairs, paper

from .report import Context, Report, run

NAME = "formulas"
TITLE = "Formulas: population losses, gradient fields and Hessians of shallow ReLU networks"

HESSIAN_NAMES = {"true": "Hessian of the population loss", "mean": "Jacobian of the mean field",
                 "autograd": "expected per-sample autograd Hessian"}


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


def _numeric_identification(rng, n_points: int, d: int) -> list:
    rows = []
    for formula in ("L", "H"):
        for field in ("true", "mean", "autograd"):
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


def _spectra_figure(thetas: np.ndarray):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), sharey=True)
    data = {}
    for ax, part in zip(axes, ("L", "H")):
        for field, style in (("true", "-"), ("mean", "--"), ("autograd", ":")):
            eig = []
            for t in thetas:
                w = np.array([1.0, 0.0, 0.0])
                ws = np.array([np.cos(t), np.sin(t), 0.0])
                ev = np.linalg.eigvals(numerics.hessian(w[None], ws[None], part, field))
                eig.append(np.sort(ev.real))
            eig = np.array(eig)
            data[f"{part}/{field}"] = eig.tolist()
            for i in range(eig.shape[1]):
                ax.plot(thetas, eig[:, i], style, color=f"C{['true', 'mean', 'autograd'].index(field)}",
                        label=HESSIAN_NAMES[field] if i == 0 else None)
        ax.set_title(f"single node, |w| = |w*| = 1, d = 3: {part}")
        ax.set_xlabel("angle θ between w and w*")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("eigenvalues (real parts)")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    return fig, data


def _gap(x: float) -> str:
    return "< 1e-30" if x < 1e-30 else f"{x:.1e}"


def build(ctx: Context) -> Report:
    rep = Report(NAME, TITLE)
    rng = np.random.default_rng(ctx.seed)
    quick = ctx.profile == "quick"

    cho = kernels.check_against_cho_saul()
    proofs = {k: str(v) for k, v in pairs.proofs().items()}
    mean_vs_true = {part: (pairs.mean_field(part) - pairs.true_gradient(part)).simplify() for part in pairs.PARTS}
    calculus = {f"d={d}": explicit.check_pair_calculus(d, points=1 if quick else 3) for d in (2, 3)}
    ident = paper.identify()
    numeric = _numeric_identification(rng, 3 if quick else 20, 5)
    existence = formulas.existence_table()
    cat = formulas.catalogue()
    fig, spectra = _spectra_figure(np.linspace(0.05, np.pi - 0.05, 40 if quick else 120))
    rep.figures[f"{NAME}_single_node_spectra.png"] = fig

    rep.data = {
        "cho_saul_differences": {k: str(v) for k, v in cho.items()},
        "proofs": proofs,
        "mean_minus_true_pair_term": {p: [str(v.c1), str(v.c2)] for p, v in mean_vs_true.items()},
        "componentwise_check_max_gap": calculus,
        "paper_identification_symbolic": ident,
        "paper_identification_numeric": numeric,
        "existence_at_degenerate_angles": existence,
        "latex": cat,
        "single_node_spectra": {"theta": list(np.linspace(0.05, np.pi - 0.05, 40 if quick else 120)), **spectra},
    }

    def tick(b):
        return "yes" if b else "**no**"

    rep.add("""
Setting and conventions are those of `docs/theory.md` (sections 4–5): `x ~ N(0, I_d)`, student rows `W`, teacher rows
`W*`, `L = E[(g − g*)²]/2`, `J = E[|∇ₓg − ∇ₓg*|²]/2`, `H = L + J`. **Mean field** = `E_x[∇_W ℓ]` (the
per-sample autograd gradient, averaged: what SGD follows); **true gradient** = `∇_W E_x[ℓ]`. Hessians:
**true** (of the population loss), **mean** (Jacobian of the mean field), **autograd** (`E_x` of the
per-sample autograd Hessian, `σ'' = 0`). Everything below is derived by SymPy (`theory/`); nothing is typed in
except the two published forms it is checked against (Cho & Saul's kernels, the paper's Hessians).""")

    rep.add("## 1. Arc-cosine kernels from the Gaussian integral\n\n"
            "Derived in polar coordinates in the plane of `a` and `b` (`theory.kernels`):\n\n"
            + "\n".join(f"- `{k}` = ${v}$" for k, v in cat["kernels"].items())
            + "\n\nDerived minus Cho & Saul's closed forms, simplified: "
            + ", ".join(f"`{k}`: **{v}**" for k, v in cho.items()) + ".")

    rep.add("""## 2. Pair terms

Every population quantity is a signed sum over pairs of rows of `Z = [W; W*]` (signs `+1` students, `−1`
teachers): `F = ½ Σ_{p,q} s_p s_q f(z_p, z_q)`. For a pair `(a, b)` — `a` the differentiated student row —
vectors are written on `â, b̂` and matrices as `E B Eᵀ + s I` with `E = [e1 e2]`, `e1 = â`,
`e2 = (b̂ − cos θ â)/sin θ`; the diagonal terms (`b = a`) are `a/2` and `I/2` for every object (proven).""")
    for part in pairs.PARTS:
        c = cat["parts"][part]
        lines = [f"### Part {part}", "", f"- loss kernel `f(a,b)` = ${c['loss_kernel']}$"]
        for key, (label, _) in {**formulas.VECTOR_OBJECTS, **formulas.MATRIX_OBJECTS}.items():
            lines.append(f"- {label} = ${c[key]}$")
        rep.add("\n".join(lines))

    rep.add("## 3. Mean field against true gradient\n\n"
            "Pair term of (mean field − true gradient), in the e-basis (`c1 e1 + c2 e2`):\n\n"
            + "\n".join(f"- {p}: `({v.c1}, {v.c2})`" for p, v in mean_vs_true.items())
            + "\n\nFor `L` the two fields are **identical** (proof: the difference simplifies to zero). For `J` they "
            "differ by the boundary term `−n_b cos θ/(2π) e2` of each pair — the derivative of the indicator "
            "product's probability, which autograd does not see. Its size does not vanish as `θ → 0` or `θ → π`, "
            "so the population `J` (hence `H`) has a **kink wherever two rows are parallel or anti-parallel**, "
            "in particular at the teacher.")

    lines = ["## 4. Where each object exists", "",
             "An object exists at exactly parallel (anti-parallel) rows when its limit does not depend on the "
             "direction of approach (all `e2` terms vanish). `numerics` returns the limit where it exists and "
             "raises `ValueError` where it does not.", "",
             "| part | object | parallel (θ = 0) | anti-parallel (θ = π) |", "|---|---|---|---|"]
    lines += [f"| {r['part']} | `{r['object']}` | {tick(r['parallel'])} | {tick(r['antiparallel'])} |" for r in existence]
    rep.add("\n".join(lines))

    lines = ["## 5. Checks of the derivation", "",
             "Identities used by the stable numerics (each simplified to exactly zero):", ""]
    lines += [f"- {k}: **{v}**" for k, v in proofs.items()]
    lines += ["", "Invariant-based chain rule against component-wise `sympy.diff` of the explicit forms at seeded "
              "rational points, 30 significant digits (largest entry of the difference):", "",
              "| object | d = 2 | d = 3 |", "|---|---|---|"]
    for key in calculus["d=2"]:
        lines.append(f"| `{key}` | {_gap(calculus['d=2'][key])} | {_gap(calculus['d=3'][key])} |")
    rep.add("\n".join(lines))

    lines = ["## 6. Which object is each of the paper's single-node Hessians", "",
             "Paper (`K = K* = 1`, `α = |w*|/(2π|w| sin θ)`): `∇²L = ½I − α(uuᵀ − cos θ vuᵀ + sin²θ I)(I − vvᵀ)`, "
             "`∇²H = I − α(2uuᵀ − cos θ vuᵀ + sin²θ I)(I − vvᵀ)`.", "",
             "Symbolic comparison with the derived single-node Hessians (`theory.paper.identify`):", "",
             "| paper formula | derived Hessian | equal? | evidence |", "|---|---|---|---|"]
    for r in ident:
        ev = "difference simplifies to 0 (all d)" if r["proof"] == "symbolic" else f"max entry gap {r['max_entry_gap']:.3g} (30 digits)"
        lines.append(f"| ∇²{r['formula']} | {HESSIAN_NAMES[r['hessian']]} | {'**yes**' if r['equal'] else 'no'} | {ev} |")
    lines += ["", f"Numeric cross-check through the public API: the paper's formulas typed into NumPy against "
              f"`numerics.hessian` at {numeric[0]['points']} seeded random points in d = {numeric[0]['d']}:", "",
              "| paper formula | `numerics.hessian(..., field)` | max abs gap | max abs entry |", "|---|---|---|---|"]
    lines += [f"| ∇²{r['formula']} | `{r['hessian']}` | {r['max_abs_gap']:.2e} | {r['max_abs_entry']:.2f} |" for r in numeric]
    lines += ["", "**Conclusion.** The paper's `∇²L` is the Hessian of the population `L`, which for `L` is also the "
              "Jacobian of the mean field. The paper's `∇²H` is the **Jacobian of the mean field of `H`** (not "
              "symmetric); it is *not* the Hessian of the population `H`, which carries the boundary term of `J` and "
              "is symmetric, and neither formula is the expected autograd Hessian (which for one node is `I/2` for "
              "`L` and `I` for `H`: autograd drops every delta term). Both formulas hold wherever `θ ∈ (0, π)`; at "
              "`θ = 0, π` the `L` formula has the limit `½I`, the `H` formula has none.", "",
              f"![single-node spectra]({NAME}_single_node_spectra.png)", "",
              "*Eigenvalues (real parts) of the three single-node Hessians of `L` (left) and `H` (right) along the "
              "angle: for `L` the true and mean curves coincide; for `H` they separate.*"]
    rep.add("\n".join(lines))

    all_zero = all(v == "0" for v in proofs.values()) and all(str(v) == "0" for v in cho.values())
    rep.verdicts = [
        {"claim": 1, "verdict": "confirmed with qualifications",
         "convention": "losses exact (arc-cosine kernels, derived and checked); the paper's gradients are the mean "
                       "field E_x[∇_W ℓ]; for J and H the true gradient differs by a boundary term and does not exist "
                       "at parallel rows (incl. the teacher)" + ("" if all_zero else " [a proof failed: see report]"),
         "evidence": f"{NAME}.md"},
        {"claim": 2, "verdict": "confirmed with qualifications",
         "convention": "∇²L = Hessian of L = Jacobian of the mean field of L; ∇²H = Jacobian of the mean field of H "
                       "(not the Hessian of the population H, not the expected autograd Hessian); θ ∈ (0, π)",
         "evidence": f"{NAME}.md#6-which-object-is-each-of-the-papers-single-node-hessians"},
    ]
    return rep


def main(argv=None) -> int:
    return run(__import__(__name__, fromlist=["build"]), argv)


if __name__ == "__main__":
    raise SystemExit(main())
