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

Where a definition does not apply the scalar functions return ``None`` and the vectorised ones
mask the entry (``numpy.ma``); nothing else is ``None`` or masked, and no NaN is returned.  By
default "does not apply" is decided exactly on the computed values: the smallest relevant value
(``lambda_min`` of the symmetric part, ``sigma_min``, ``min Re(lambda)``) is ``<= 0``.  A
positive-definite matrix with ``kappa = 1e13`` gets ``1e13``, not ``None``.

What a huge value means: the computed smallest value carries an absolute rounding error of about
``n eps sigma_max`` (``eps ~ 2.2e-16``), so a ``kappa`` approaching ``1/(n eps)`` (``~1e15`` and
above) says the matrix is numerically singular (or, for ``"symmetric"``/``"real_part"``, on the
edge of definiteness) at float64 precision: its digits are not reliable, and a matrix that is
singular in exact arithmetic comes back either as such a huge value or as ``None``, depending on the
sign of the rounding (``[[1, 1], [1, 1]]`` has computed ``sigma_min ~ 3e-17``: ``"singular"`` is
``~6e16``).  The ratio itself is a float; it is ``inf`` only when it overflows the float64 range
(a positive smallest value below ``sigma_max / 1.8e308``).

To mask numerically singular cases instead, pass ``rtol > 0``: a definition is then treated as not
applying unless the smallest value exceeds ``rtol * sigma_max``.  ``POSITIVE_TOL`` (1e-12) is the
threshold the module applied unconditionally before; ``rtol=POSITIVE_TOL`` reproduces it.
"""
from __future__ import annotations

import math
import numbers

import numpy as np

from .population import hessian
from .validation import HESSIAN_FIELDS, check_field, check_part, has_bool, real_array

DEFINITIONS = ("symmetric", "singular", "real_part")
POSITIVE_TOL = 1e-12  # a suggested ``rtol`` for masking numerically singular matrices (module docstring)


# ----------------------------------------------------------------------------- input checks
def _check_finite(arr: np.ndarray, name: str) -> None:
    if not np.isfinite(arr).all():
        bad = np.argwhere(~np.isfinite(arr))
        where = ", ".join(str(int(i)) for i in bad[0])
        raise ValueError(f"{name} has non-finite entries: {name}[{where}] = {arr[tuple(bad[0])]} "
                         f"({len(bad)} non-finite entries)")


def _check_rtol(rtol) -> float:
    if isinstance(rtol, (bool, np.bool_)) or not isinstance(rtol, (numbers.Real, np.floating, np.integer)):
        raise ValueError(f"rtol must be a real number >= 0; got {rtol!r}")
    rtol = float(rtol)
    if not (math.isfinite(rtol) and rtol >= 0):
        raise ValueError(f"rtol must be a finite real number >= 0; got {rtol!r}")
    return rtol


def spectra(M) -> dict:
    """``{"eigenvalues": complex (n,), "symmetric": (n,), "singular": (n,)}``, each sorted ascending
    (eigenvalues by real part).

    ``M``: a non-empty square real matrix with finite entries (array, nested list or torch tensor);
    anything else (complex, boolean, non-numeric, ragged, empty, non-square) is a ``ValueError``.
    """
    M = real_array(M, "M")
    if M.ndim != 2 or M.shape[0] != M.shape[1] or M.shape[0] == 0:
        raise ValueError(f"M must be a non-empty square 2-D matrix; got shape {M.shape}")
    _check_finite(M, "M")
    ev = np.linalg.eigvals(M)
    ev = ev[np.argsort(ev.real, kind="stable")]
    return {"eigenvalues": ev, "symmetric": np.linalg.eigvalsh(_symmetric_part(M)),
            "singular": np.sort(np.linalg.svd(M, compute_uv=False))}


def _symmetric_part(M: np.ndarray) -> np.ndarray:
    """``(M + M^T) / 2`` of a finite matrix, finite.  ``M + M^T`` overflows only where an entry and its mirror
    add up beyond ~1.8e308 (entries ~1e308: finite input, inside the Guarantees); NumPy warned there, and the inf
    made the symmetric spectrum NaN (a ``LinAlgError`` or ``ValueError`` for a finite matrix).  Only those entries
    are recomputed, as ``M/2 + M^T/2``: it cannot overflow (``|a/2 + b/2| <= max(|a|, |b|)``) and is the correctly
    rounded ``(a + b)/2`` (halving is exact for normal numbers; a subnormal partner's half, off by at most
    ``2**-1075``, is absorbed by an entry ~1e308).  Every entry whose sum was finite is computed as before, so every
    result that was finite before is unchanged, bit for bit."""
    with np.errstate(over="ignore"):
        S = (M + M.T) / 2
    overflowed = ~np.isfinite(S)
    if overflowed.any():
        S[overflowed] = (M / 2 + M.T / 2)[overflowed]
    return S


def _ratio(lo: float, hi: float, floor: float):
    """``hi / lo`` where ``lo > floor`` (``floor >= 0``), else ``None``; ``inf`` only on overflow."""
    lo, hi = float(lo), float(hi)
    if not lo > floor:  # also None for NaN
        return None
    return hi / lo  # Python floats: an overflow gives inf, without a warning


def _spectrum_part(s: dict, key: str, real: bool) -> np.ndarray:
    try:
        v = s[key]
    except (KeyError, TypeError):
        raise ValueError(f"spectra must be a dict with the keys 'eigenvalues', 'symmetric', 'singular' "
                         f"(as spectra() returns); {key!r} is missing") from None
    if not real:
        if hasattr(v, "detach") and hasattr(v, "cpu"):
            v = v.detach().cpu().numpy()
        try:
            arr = np.asarray(v)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"spectra[{key!r}] must be a numeric array ({exc})") from None
        if arr.dtype.kind not in "iufc" or has_bool(v):
            raise ValueError(f"spectra[{key!r}] must be a numeric array; got dtype {arr.dtype}")
        arr = arr.real.astype(np.float64, copy=False)
    else:
        arr = real_array(v, f"spectra[{key!r}]")
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"spectra[{key!r}] must be a non-empty 1-D array; got shape {arr.shape}")
    _check_finite(arr, f"spectra[{key!r}]")
    return arr


def condition_numbers_from_spectra(s: dict, rtol: float = 0.0) -> dict:
    """``{definition: float or None}`` from :func:`spectra`.

    ``None`` exactly where the definition does not apply: the smallest relevant value
    (``lambda_min`` of the symmetric part, ``sigma_min``, ``min Re(lambda)``) is ``<= rtol *
    sigma_max``.  With the default ``rtol = 0`` that is ``<= 0``: the symmetric part is not
    positive definite, ``sigma_min == 0``, or some real part is ``<= 0``.  Otherwise the float
    ``max / min``, however large; a value near ``1/(n eps)`` or above means "numerically singular
    at float64 precision" (module docstring), and ``rtol > 0`` (e.g. ``POSITIVE_TOL``) turns such
    cases into ``None`` instead.
    """
    rtol = _check_rtol(rtol)
    re = _spectrum_part(s, "eigenvalues", real=False)
    sym = _spectrum_part(s, "symmetric", real=True)
    sv = _spectrum_part(s, "singular", real=True)
    floor = rtol * float(sv.max())
    return {"symmetric": _ratio(sym.min(), sym.max(), floor),
            "singular": _ratio(sv.min(), sv.max(), floor),
            "real_part": _ratio(re.min(), re.max(), floor)}


def condition_numbers(M, rtol: float = 0.0) -> dict:
    """Condition numbers of the square real matrix ``M`` under each of ``DEFINITIONS``.

    ``None`` only where a definition does not apply (``rtol``, the meaning of a huge value:
    :func:`condition_numbers_from_spectra`).  ``ValueError`` for complex, boolean, non-numeric,
    ragged, empty, non-square or non-finite ``M``.
    """
    return condition_numbers_from_spectra(spectra(M), rtol)


def hessian_conditioning(W, W_star, part: str, field: str, rtol: float = 0.0) -> dict:
    """Spectra and condition numbers of ``numerics.hessian(W, W_star, part, field)``.

    ``field`` names the object: ``"true"`` (Hessian of the population loss), ``"mean"``
    (Jacobian of the mean field), ``"autograd"`` (expected autograd Hessian).  Returns
    ``{"spectra": ..., "kappa": {definition: float or None}}`` (``None`` and ``rtol`` as in
    :func:`condition_numbers_from_spectra`); raises ``ValueError`` where the object does not exist
    (exactly parallel rows for ``J``/``H``).
    """
    check_part(part)
    check_field(field, HESSIAN_FIELDS, "Hessian")
    rtol = _check_rtol(rtol)
    s = spectra(hessian(W, W_star, part, field))
    return {"spectra": s, "kappa": condition_numbers_from_spectra(s, rtol)}


# ----------------------------------------------------------------------------- single node, closed form
def _grid(rho, theta):
    rho, theta = real_array(rho, "rho"), real_array(theta, "theta")
    try:
        rho, theta = np.broadcast_arrays(rho, theta)
    except ValueError:
        raise ValueError(f"rho and theta do not broadcast: shapes {rho.shape} and {theta.shape}") from None
    if not (np.isfinite(rho).all() and np.isfinite(theta).all()):
        raise ValueError("rho and theta must be finite")
    if (rho <= 0).any():
        raise ValueError("rho = |w|/|w*| must be positive")
    if ((theta <= 0) | (theta >= np.pi)).any():
        raise ValueError("theta must lie in the open interval (0, pi): at 0 and pi the Hessians of J and H "
                         "do not exist (the kink of J, docs/theory.md, section 6)")
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
    if (isinstance(d, (bool, np.bool_)) or not isinstance(d, (numbers.Real, np.integer, np.floating))
            or not math.isfinite(d) or int(d) != d or d < 2):
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


def single_node_condition_numbers(rho, theta, d: int, part: str, field: str, rtol: float = 0.0) -> dict:
    """``{definition: numpy.ma.MaskedArray}`` over the broadcast ``rho, theta``.

    Masked exactly where the definition does not apply (``None`` of
    :func:`condition_numbers_from_spectra`, same ``rtol``: by default the smallest value is ``<= 0``);
    every unmasked entry is ``max / min`` however large (``inf`` only on float64 overflow).
    """
    rtol = _check_rtol(rtol)
    s = single_node_spectra(rho, theta, d, part, field)
    floor = rtol * s["singular"].max(axis=-1)
    out = {}
    for name, vals in (("symmetric", s["symmetric"]), ("singular", s["singular"]), ("real_part", s["eigenvalues"])):
        lo, hi = vals.min(axis=-1), vals.max(axis=-1)
        ok = lo > floor
        with np.errstate(over="ignore"):
            kappa = np.where(ok, hi / np.where(ok, lo, 1.0), 1.0)
        out[name] = np.ma.MaskedArray(kappa, mask=~ok)
    return out
