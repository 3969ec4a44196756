"""Input checks for the public API: every problem is a ``ValueError`` that names it."""
from __future__ import annotations

import math

import numpy as np

PARTS = ("L", "J", "H")
GRADIENT_FIELDS = ("mean", "true")
HESSIAN_FIELDS = ("true", "mean", "autograd")


def _has_complex(x) -> bool:
    """Whether a nested list/tuple holds a Python or NumPy complex number (cheap recursive scan)."""
    if isinstance(x, (complex, np.complexfloating)):
        return True
    if isinstance(x, (list, tuple)):
        return any(_has_complex(v) for v in x)
    return False


def as_rows(x, name: str) -> np.ndarray:
    """A ``(K, d)`` float64 copy of ``x`` (NumPy array, nested list or torch tensor).

    A 1-D input is one row (``K = 1``).
    """
    if hasattr(x, "detach") and hasattr(x, "cpu"):  # torch.Tensor, without importing torch
        x = x.detach().cpu().numpy()
    if np.iscomplexobj(x) or _has_complex(x):
        raise ValueError(f"{name} must be a real array; got complex entries (the weights of a real network are real)")
    try:
        arr = np.array(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a real array of shape (rows, d); got {type(x).__name__}: {exc}") from None
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2:
        raise ValueError(f"{name} must have shape (rows, d); got shape {arr.shape}")
    if arr.shape[0] < 1:
        raise ValueError(f"{name} has no rows")
    if arr.shape[1] < 2:
        raise ValueError(f"{name} has d = {arr.shape[1]}; the input dimension d must be at least 2")
    if not np.isfinite(np.max(arr)) or not np.isfinite(np.min(arr)):  # NaN and +-inf reach max or min
        bad = np.argwhere(~np.isfinite(arr))
        i, k = bad[0]
        raise ValueError(f"{name}[{i}, {k}] = {arr[i, k]} is not finite ({len(bad)} non-finite entries in {name})")
    zero = np.flatnonzero(~arr.any(axis=1))
    if len(zero):
        raise ValueError(
            f"row {zero[0]} of {name} is zero: a zero row has no angle to the others, and the "
            "population quantities are not differentiable there"
        )
    return arr


def check_part(part: str) -> str:
    if part not in PARTS:
        raise ValueError(f"part must be one of {PARTS}; got {part!r}")
    return part


def check_field(field: str, allowed: tuple, what: str) -> str:
    if field not in allowed:
        raise ValueError(f"field for the {what} must be one of {allowed}; got {field!r}")
    return field


def prepare(W, W_star) -> tuple:
    """Validated ``(W, W_star, k)`` with both scaled by ``2**k`` (exact) so the largest entry is in [0.5, 1).

    Every population quantity is positively homogeneous (loss of degree 2, gradient 1,
    Hessian 0), so callers undo the scaling exactly with powers of two.
    """
    W = as_rows(W, "W")
    W_star = as_rows(W_star, "W_star")
    if W.shape[1] != W_star.shape[1]:
        raise ValueError(f"W has d = {W.shape[1]} but W_star has d = {W_star.shape[1]}")
    big = max(np.abs(W).max(), np.abs(W_star).max())
    k = -math.frexp(big)[1]
    np.ldexp(W, k, out=W)  # as_rows made fresh copies: scale them in place
    np.ldexp(W_star, k, out=W_star)
    for name, arr in (("W", W), ("W_star", W_star)):
        tiny = np.flatnonzero(np.linalg.norm(arr, axis=1) == 0)
        if len(tiny):
            raise ValueError(
                f"row {tiny[0]} of {name} is too small relative to the largest entry to be represented "
                "(norms span more than ~600 orders of magnitude)"
            )
    return W, W_star, k
