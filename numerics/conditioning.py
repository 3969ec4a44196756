"""Condition numbers of the three Hessians, under each definition that makes sense for them.

Definitions (``DEFINITIONS``), for a square real matrix ``M``:

* ``"symmetric"``: ``lambda_max / lambda_min`` of the symmetric part ``(M + M^T)/2``, defined
  where that part is positive definite.  For a symmetric ``M`` (the true Hessian, the expected
  autograd Hessian, the mean-field Jacobian of ``L``) it is the usual condition number.
* ``"singular"``: ``sigma_max / sigma_min``, defined where ``M`` is non-singular (also for
  indefinite or non-symmetric ``M``).
* ``"real_part"``: ``max Re(lambda) / min Re(lambda)`` over the eigenvalues of ``M``, defined where
  every real part is positive.  For the Jacobian of a gradient field ``F`` this is the ratio of the
  fastest to the slowest local decay rate of the linearised flow ``W' = -F(W)``: the definition
  that governs local gradient-flow rates, and the one the paper's statement about ``nabla^2 H``
  (the Jacobian of the mean field, :mod:`theory.paper`) needs.

"Positive" means larger than ``POSITIVE_TOL`` times the largest magnitude (a relative rounding
threshold).  Where a definition does not apply the scalar functions return ``None`` and the
vectorised ones mask the entry (``numpy.ma``); no NaN or inf is returned.
"""
from __future__ import annotations

import numpy as np

from .population import hessian
from .validation import HESSIAN_FIELDS, check_field, check_part

DEFINITIONS = ("symmetric", "singular", "real_part")
POSITIVE_TOL = 1e-12


def spectra(M) -> dict:
    """``{"eigenvalues": complex (n,), "symmetric": (n,), "singular": (n,)}``, each sorted ascending
    (eigenvalues by real part)."""
    M = np.asarray(M, dtype=np.float64)
    if M.ndim != 2 or M.shape[0] != M.shape[1]:
        raise ValueError(f"a square matrix is needed; got shape {M.shape}")
    if not np.isfinite(M).all():
        raise ValueError("the matrix has non-finite entries")
    ev = np.linalg.eigvals(M)
    ev = ev[np.argsort(ev.real, kind="stable")]
    return {"eigenvalues": ev, "symmetric": np.linalg.eigvalsh((M + M.T) / 2),
            "singular": np.sort(np.linalg.svd(M, compute_uv=False))}


def _ratio(lo: float, hi: float, scale: float):
    if not lo > POSITIVE_TOL * scale:
        return None
    return float(hi / lo)


def condition_numbers_from_spectra(s: dict) -> dict:
    """``{definition: float or None}`` from :func:`spectra` (``None``: the definition does not apply)."""
    re = np.asarray(s["eigenvalues"]).real
    sym, sv = np.asarray(s["symmetric"]), np.asarray(s["singular"])
    scale = float(sv.max()) if sv.size else 0.0
    return {"symmetric": _ratio(sym.min(), sym.max(), scale),
            "singular": _ratio(sv.min(), sv.max(), scale),
            "real_part": _ratio(re.min(), re.max(), scale)}


def condition_numbers(M) -> dict:
    """Condition numbers of the matrix ``M`` under each of ``DEFINITIONS`` (``None`` where undefined)."""
    return condition_numbers_from_spectra(spectra(M))


def hessian_conditioning(W, W_star, part: str, field: str) -> dict:
    """Spectra and condition numbers of ``numerics.hessian(W, W_star, part, field)``.

    ``field`` names the object: ``"true"`` (Hessian of the population loss), ``"mean"``
    (Jacobian of the mean field), ``"autograd"`` (expected autograd Hessian).  Returns
    ``{"spectra": ..., "kappa": {definition: float or None}}``; raises ``ValueError`` where the
    object does not exist (exactly parallel rows for ``J``/``H``).
    """
    check_part(part)
    check_field(field, HESSIAN_FIELDS, "Hessian")
    s = spectra(hessian(W, W_star, part, field))
    return {"spectra": s, "kappa": condition_numbers_from_spectra(s)}


# ----------------------------------------------------------------------------- single node, closed form
def _grid(rho, theta):
    rho, theta = np.broadcast_arrays(np.asarray(rho, dtype=np.float64), np.asarray(theta, dtype=np.float64))
    if not (np.isfinite(rho).all() and np.isfinite(theta).all()):
        raise ValueError("rho and theta must be finite")
    if (rho <= 0).any():
        raise ValueError("rho = |w|/|w*| must be positive")
    if ((theta <= 0) | (theta >= np.pi)).any():
        raise ValueError("theta must lie in the open interval (0, pi): at 0 and pi the Hessians of J and H "
                         "do not exist (the kink of THEORY.md)")
    return rho, theta


def single_node_spectra(rho, theta, d: int, part: str, field: str) -> dict:
    """The single-node spectrum from the derived closed forms (:mod:`theory.spectrum`), vectorised.

    ``rho = |w|/|w*|`` and ``theta`` (the angle of ``w, w*``, open interval ``(0, pi)``) broadcast;
    ``d >= 2``.  Returns arrays with a trailing axis of length ``d``: ``"eigenvalues"`` (real
    here: every plane block is triangular or symmetric), ``"symmetric"``, ``"singular"``, each
    the two plane values followed by ``d - 2`` copies of the complement value.
    """
    from theory.spectrum import numeric_functions

    if part not in ("L", "H"):
        raise ValueError(f"part must be 'L' or 'H'; got {part!r}")
    check_field(field, HESSIAN_FIELDS, "Hessian")
    if int(d) != d or d < 2:
        raise ValueError(f"d must be an integer >= 2; got {d!r}")
    rho, theta = _grid(rho, theta)
    fns = numeric_functions()[(part, field)]
    M = np.empty(rho.shape + (2, 2))
    for i in range(2):
        for j in range(2):
            M[..., i, j] = fns["block"][i][j](rho, theta)
    s = np.broadcast_to(fns["complement"](rho, theta), rho.shape)
    rest = np.repeat(s[..., None], int(d) - 2, axis=-1)
    eig_plane = np.stack([np.broadcast_to(f(rho, theta), rho.shape) for f in fns["plane"]], axis=-1)
    sym_plane = np.linalg.eigvalsh((M + np.swapaxes(M, -1, -2)) / 2)
    sing_plane = np.linalg.svd(M, compute_uv=False)
    return {"eigenvalues": np.concatenate([eig_plane, rest], axis=-1),
            "symmetric": np.concatenate([sym_plane, rest], axis=-1),
            "singular": np.concatenate([sing_plane, np.abs(rest)], axis=-1)}


def single_node_condition_numbers(rho, theta, d: int, part: str, field: str) -> dict:
    """``{definition: numpy.ma.MaskedArray}`` over the broadcast ``rho, theta`` (masked: undefined)."""
    s = single_node_spectra(rho, theta, d, part, field)
    scale = s["singular"].max(axis=-1)
    out = {}
    for name, vals in (("symmetric", s["symmetric"]), ("singular", s["singular"]), ("real_part", s["eigenvalues"])):
        lo, hi = vals.min(axis=-1), vals.max(axis=-1)
        ok = lo > POSITIVE_TOL * scale
        out[name] = np.ma.MaskedArray(np.where(ok, hi / np.where(ok, lo, 1.0), 1.0), mask=~ok)
    return out
