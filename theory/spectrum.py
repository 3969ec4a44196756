"""Single-node spectra (``K = K* = 1``) of the three Hessians of ``L`` and ``H``, derived.

Every single-node Hessian this project derives is a :class:`~theory.calculus.PairMatrix`
``E B E^T + s I`` (``E = [e1, e2]``, ``e1 = w/|w|``, ``e2`` the unit vector of the plane of ``w``
and ``w*`` orthogonal to ``w``).  So its spectrum splits exactly:

* in the plane of ``w, w*``: the eigenvalues of the 2 x 2 block ``M = B + s I_2``;
* on the orthogonal complement (dimension ``d - 2``, present for ``d >= 3``): ``s``, with
  multiplicity ``d - 2``.

The same split holds for the symmetric part ``(M + M^T)/2`` and for the singular values (those
of ``M``, and ``|s|`` on the complement), because ``E`` has orthonormal columns orthogonal to the
complement.  Every block is positively homogeneous of degree 0 in ``(|w|, |w*|)``: it depends on
``rho = |w|/|w*|`` and ``theta`` only (checked symbolically in :func:`single_node_blocks`), so
``d`` enters only through the multiplicity of ``s``.

Hessians (docs/theory.md, section 5): ``"true"`` (of the population loss), ``"mean"`` (Jacobian of the mean
field, not symmetric for ``H``), ``"autograd"`` (expected per-sample autograd Hessian).
"""
from __future__ import annotations

import functools

import sympy as sp

from .cache import cached
from .paper import HESSIANS, single_node_hessian
from .symbols import n_a, n_b, theta

rho = sp.Symbol("rho", positive=True)  # |w| / |w*|

SPECTRUM_PARTS = ("L", "H")


def _check(part: str, hessian: str) -> None:
    if part not in SPECTRUM_PARTS:
        raise ValueError(f"part must be 'L' or 'H' for the conditioning comparison; got {part!r}")
    if hessian not in HESSIANS:
        raise ValueError(f"hessian must be one of {HESSIANS}; got {hessian!r}")


@cached
def single_node_blocks(part: str, hessian: str) -> tuple:
    """``(M, s)``: the plane block (2 x 2, e-basis) and the complement eigenvalue, in ``rho, theta``.

    Raises if the derived Hessian were not 0-homogeneous in the norms (it is: proved here by
    substituting ``|w| = rho |w*|`` and checking that ``|w*|`` drops out).
    """
    _check(part, hessian)
    m = single_node_hessian(part, hessian)
    nb = sp.Symbol("nb_check", positive=True)
    out = []
    for expr in list(m.B + m.s * sp.eye(2)) + [m.s]:
        scaled = sp.simplify(expr.subs({n_a: rho * nb, n_b: nb}, simultaneous=True))
        if scaled.has(nb):
            raise AssertionError(f"{hessian} Hessian of {part}: not 0-homogeneous in the norms: {scaled}")
        out.append(scaled)
    return sp.Matrix(2, 2, out[:4]), out[4]


@cached
def single_node_spectrum(part: str, hessian: str) -> dict:
    """Closed forms in ``rho, theta`` of the single-node spectrum of one Hessian.

    Keys: ``"plane"`` (the two eigenvalues of the plane block ``M``, real for every block here),
    ``"complement"`` (``s``, multiplicity ``d - 2``), ``"symmetric_plane"`` (eigenvalues of
    ``(M + M^T)/2``), ``"singular_plane"`` (singular values of ``M``), ``"block"`` (``M``).
    """
    M, s = single_node_blocks(part, hessian)

    def eig2(A: sp.Matrix) -> list:
        tr, det = sp.simplify(A.trace()), sp.simplify(A.det())
        disc = sp.simplify(tr**2 / 4 - det)
        root = sp.sqrt(disc)
        return [sp.simplify(tr / 2 - root), sp.simplify(tr / 2 + root)]

    plane = eig2(M)
    sym = eig2((M + M.T) / 2)
    sing = [sp.sqrt(e) for e in eig2(M.T * M)]
    return {"block": M, "complement": s, "plane": plane, "symmetric_plane": sym, "singular_plane": sing}


def latex_table() -> list:
    """``[(part, hessian, LaTeX of the plane block, LaTeX of s)]`` for the report."""
    rows = []
    for part in SPECTRUM_PARTS:
        for h in HESSIANS:
            M, s = single_node_blocks(part, h)
            rows.append((part, h, sp.latex(M), sp.latex(s)))
    return rows


@functools.lru_cache(maxsize=None)  # functions: per process only (not picklable)
def numeric_functions() -> dict:
    """NumPy functions ``f(rho, theta)`` for every entry of :func:`single_node_spectrum`.

    ``{(part, hessian): {"plane": [f, f], "complement": f, "symmetric_plane": [f, f],
    "singular_plane": [f, f], "block": [[f, f], [f, f]]}}``.
    """
    out = {}
    for part in SPECTRUM_PARTS:
        for h in HESSIANS:
            sp_ = single_node_spectrum(part, h)
            out[(part, h)] = {
                "plane": [sp.lambdify((rho, theta), e, "numpy") for e in sp_["plane"]],
                "complement": sp.lambdify((rho, theta), sp_["complement"], "numpy"),
                "symmetric_plane": [sp.lambdify((rho, theta), e, "numpy") for e in sp_["symmetric_plane"]],
                "singular_plane": [sp.lambdify((rho, theta), e, "numpy") for e in sp_["singular_plane"]],
                "block": [[sp.lambdify((rho, theta), sp_["block"][i, j], "numpy") for j in range(2)] for i in range(2)],
            }
    return out
