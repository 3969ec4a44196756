"""LaTeX of every derived object, and the data of the ``formulas`` report section.

Everything here is read off the SymPy objects of :mod:`theory.pairs` and
:mod:`theory.paper`; nothing is typed in.
"""
from __future__ import annotations

import sympy as sp

from . import kernels, pairs, paper
from .calculus import PairMatrix, PairVector
from .expansions import expand

VECTOR_OBJECTS = {
    "mean_field": ("mean field pair term $m(a,b)$", pairs.mean_field),
    "true_gradient": ("true-gradient pair term $\\nabla_a f(a,b)$", pairs.true_gradient),
}
MATRIX_OBJECTS = {
    "mean_jacobian_a": ("$\\partial m(a,b)/\\partial a$", pairs.mean_jacobian_a),
    "mean_jacobian_b": ("$\\partial m(a,b)/\\partial b$", pairs.mean_jacobian_b),
    "true_hessian_a": ("$\\partial^2 f(a,b)/\\partial a^2$", pairs.true_hessian_a),
    "true_hessian_b": ("$\\partial^2 f(a,b)/\\partial a\\,\\partial b$", pairs.true_hessian_b),
    "autograd_hessian": ("$E[\\text{autograd }\\partial^2/\\partial a\\,\\partial b]$", pairs.autograd_hessian),
}


def latex(expr) -> str:
    return sp.latex(sp.simplify(expr))


def vector_latex(v: PairVector) -> str:
    alpha, beta = v.span_coefficients()
    return f"\\left({latex(alpha)}\\right)\\hat a + \\left({latex(beta)}\\right)\\hat b"


def matrix_latex(m: PairMatrix) -> str:
    B11, B12, B21, B22, s = (latex(c) for c in m.coefficients())
    return (
        f"E\\begin{{pmatrix}}{B11} & {B12}\\\\ {B21} & {B22}\\end{{pmatrix}}E^\\top + \\left({s}\\right) I"
    )


def _exists(coefs, at: str, vector: bool) -> bool:
    ex = [expand(c) for c in coefs]
    finite = all(getattr(e, f"finite_at_{at}") for e in ex)
    if vector:
        return finite
    return finite and all(getattr(e, f"vanishes_at_{at}") for e in ex[1:4])


def existence_table() -> list:
    """Per part and object: does it exist (limit independent of direction) at theta = 0 and pi."""
    rows = []
    for part in pairs.KERNEL_PARTS:
        for key, (_, fn) in VECTOR_OBJECTS.items():
            coefs = fn(part).span_coefficients()
            rows.append({"part": part, "object": key, "parallel": _exists(coefs, "zero", True),
                         "antiparallel": _exists(coefs, "pi", True)})
        for key, (_, fn) in MATRIX_OBJECTS.items():
            coefs = fn(part).coefficients()
            rows.append({"part": part, "object": key, "parallel": _exists(coefs, "zero", False),
                         "antiparallel": _exists(coefs, "pi", False)})
    return rows


def family_catalogue() -> dict:
    """LaTeX of the model family's kernels (theory.activations): the arcs ``E[(s_a a.x)_+^q (s_b b.x)_+^q]``, the
    kernel of ``c_+ t_+^q + c_- t_-^q`` and the pair terms of ``L``, ``J``, ``J2`` in ``g = a.b``."""
    from . import activations

    arcs = {f"q={q}, signs={s}": latex(activations.arc_kernel(q, s))
            for q in activations.DEGREES for s in ("pp", "pm")}
    homogeneous = {f"q={q}": latex(activations.homogeneous_kernel(q)) for q in activations.DEGREES}
    return {"arc_kernels": arcs, "homogeneous_kernels": homogeneous,
            "note": "arc kernels with signs mm equal pp, and mp equal pm; the loss of part k is "
                    "1/2 sum s_p s_r A_p A_r g^k K_k (docs/theory.md, section 14)"}


def catalogue() -> dict:
    """LaTeX of kernels, pair terms (per part), the paper's formulas and the model family's kernels."""
    out = {
        "kernels": {
            "E[relu(a.x) relu(b.x)]": latex(kernels.relu_relu()),
            "E[1{a.x>0} 1{b.x>0}]": latex(kernels.step_step()),
        },
        "parts": {},
        "paper": {k: matrix_latex(paper.paper_hessian(k)) for k in ("L", "H")},
        "single_node": {
            f"{part}/{h}": matrix_latex(paper.single_node_hessian(part, h))
            for part in ("L", "J", "H") for h in paper.HESSIANS
        },
    }
    out["family"] = family_catalogue()
    for part in pairs.KERNEL_PARTS:
        entry = {"loss_kernel": latex(pairs.loss_kernel(part)),
                 "loss_difference_rest": latex(pairs.loss_difference_rest(part))}
        for key, (_, fn) in VECTOR_OBJECTS.items():
            entry[key] = vector_latex(fn(part))
        for key, (_, fn) in MATRIX_OBJECTS.items():
            entry[key] = matrix_latex(fn(part))
        out["parts"][part] = entry
    return out
