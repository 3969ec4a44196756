"""Central finite differences: the one finite-difference Jacobian of the suite, and a gradient check.

``fd_jacobian(f, x)`` differentiates any array function column by column; the steps are
relative to the size of ``x`` (or of the row a coordinate belongs to), so weights of any scale
get the same relative truncation error.  ``check_jacobian`` is in the spirit of JAX's
``check_grads``: it compares a claimed Jacobian with central differences along a few random
directions, with a tolerance set by the dtype (truncation ``O(h^2)`` plus rounding ``eps/h``).

Which object a finite difference witnesses depends on ``f``: differences of a population loss
give its **true gradient**; differences of a field give that field's Jacobian (of the mean
field: the paper's ``∇²H``).
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

# step relative to the scale of x: about eps**(1/3), which balances O(h^2) truncation against
# O(eps/h) rounding for central differences in float64
DEFAULT_RELATIVE_STEP = 1e-6


def fd_jacobian(f: Callable[[np.ndarray], np.ndarray], x, h: float = DEFAULT_RELATIVE_STEP,
                row_scaled: bool = True) -> np.ndarray:
    """``J[i, j] = d f(x).ravel()[i] / d x.ravel()[j]`` by central differences.

    ``x`` is an array (e.g. weights ``(K, d)``); the step of coordinate ``(l, k)`` is
    ``h * |x[l]|`` when ``row_scaled`` and ``x`` is 2-D (each row its own scale, as for the rows
    of a weight matrix), else ``h * max(|x|, 1e-300)``.  ``2 * x.size`` calls of ``f``.
    """
    x = np.asarray(x, dtype=np.float64)
    if not (np.isfinite(h) and h > 0):
        raise ValueError(f"the relative step h must be positive and finite; got {h!r}")
    steps = _steps(x, h, row_scaled)
    columns = []
    for j in range(x.size):
        e = np.zeros(x.size)
        e[j] = steps[j]
        e = e.reshape(x.shape)
        columns.append((np.asarray(f(x + e), dtype=np.float64) - np.asarray(f(x - e), dtype=np.float64)).ravel()
                       / (2 * steps[j]))
    return np.stack(columns, axis=1)


def _steps(x: np.ndarray, h: float, row_scaled: bool) -> np.ndarray:
    if row_scaled and x.ndim == 2:
        # row by row: np.linalg.norm of one row and of a 2-D array along an axis sum in different orders
        # (one ulp apart at times), and the report's cross-checks were recorded with the former
        scale = np.repeat([np.linalg.norm(row) for row in x], x.shape[1])
    else:
        scale = np.full(x.size, np.max(np.abs(x)) if x.size else 0.0)
    return h * np.maximum(scale, 1e-300)


def check_jacobian(f: Callable[[np.ndarray], np.ndarray], jacobian, x, *, directions: int = 3, seed: int = 0,
                   rtol: float | None = None) -> float:
    """Compare ``jacobian @ v`` with central differences of ``f`` along random unit directions ``v``.

    Returns the largest relative error ``|J v - fd| / max(|J v|, |fd|, tiny)``; raises
    ``AssertionError`` when it exceeds ``rtol`` (default: ``1e-5`` for float64, ``1e-2`` for
    float32 inputs: truncation ``~h^2`` plus rounding ``~eps/h`` at ``h ~ eps**(1/3)``, with margin
    for the curvature of ``f``).
    """
    x = np.asarray(x)
    eps = np.finfo(x.dtype if x.dtype.kind == "f" else np.float64).eps
    if rtol is None:
        rtol = 1e-5 if eps < 1e-10 else 1e-2
    h = float(eps ** (1 / 3)) * max(float(np.max(np.abs(x))), 1e-300)
    rng = np.random.default_rng(seed)
    J = np.asarray(jacobian, dtype=np.float64)
    worst = 0.0
    for _ in range(directions):
        v = rng.standard_normal(x.size)
        v /= np.linalg.norm(v)
        dx = (h * v).reshape(x.shape).astype(x.dtype)
        fd = (np.asarray(f(x + dx), dtype=np.float64) - np.asarray(f(x - dx), dtype=np.float64)).ravel() / (2 * h)
        jv = J @ v
        err = np.linalg.norm(jv - fd) / max(np.linalg.norm(jv), np.linalg.norm(fd), 1e-300)
        worst = max(worst, float(err))
    if worst > rtol:
        raise AssertionError(f"Jacobian and central differences disagree: relative error {worst:.3g} > {rtol:.3g}")
    return worst
