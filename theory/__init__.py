"""Symbolic theory: population losses, gradient fields and Hessians, derived with SymPy.

Modules:

* :mod:`theory.kernels` — arc-cosine kernel forms from the Gaussian integral (polar
  coordinates in the plane of two rows), checked against Cho & Saul's closed forms.
* :mod:`theory.calculus` — vector calculus through the invariants (norms, angle) of a pair.
* :mod:`theory.pairs` — the pair terms of every object: loss kernels, mean field, true
  gradient, their Jacobians, the expected autograd Hessian; stable rewrites and proofs.
* :mod:`theory.population` — the K-node population quantities as signed sums of pair terms.
* :mod:`theory.paper` — the paper's single-node Hessian formulas and which object each is.
* :mod:`theory.explicit` — component-wise checks in ``d = 2, 3``.
* :mod:`theory.expansions` — series about the degenerate angles (for stable numerics).
* :mod:`theory.formulas` — LaTeX of every object and the ``formulas`` report section.
* :mod:`theory.cache` — the one cache of expensive derivations.
* :mod:`theory.vocabulary` — the words for parts, fields, Hessian kinds and flows (no SymPy).

Fields: ``"mean"`` is ``E_x[grad_W l]`` (autograd's per-sample gradient, averaged), ``"true"``
is ``grad_W E_x[l]``.  Hessians: ``"true"``, ``"mean"`` (Jacobian of the mean field),
``"autograd"`` (expected per-sample autograd Hessian).  See docs/theory.md, sections 4–5.
"""
import importlib

__all__ = ["kernels", "calculus", "pairs", "n_a", "n_b", "theta", "psi"]
_SYMBOLS = ("n_a", "n_b", "theta", "psi")


def __getattr__(name: str):
    """The SymPy modules and symbols load on first use (PEP 562): ``theory.vocabulary`` and the generated
    numerics import this package without paying for SymPy."""
    if name in _SYMBOLS:
        return getattr(importlib.import_module(".symbols", __name__), name)
    if name in ("calculus", "kernels", "pairs"):
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
