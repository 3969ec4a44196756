"""Numerical differentiation of sampled values: finite differences and Chebyshev spectral.

Used by the training experiments (``verify.training``) to build the derivative targets of
Sobolev training when the target's exact derivatives are not available (docs/claims.md, claim 5).
Everything is float64 NumPy; nothing here depends on the rest of the project.

Finite differences on a uniform grid (spacing ``h``), second-order accurate everywhere
(standard Taylor-series stencils, e.g. Fornberg, *Math. Comp.* 51 (1988), table 1; LeVeque,
*Finite Difference Methods for ODEs and PDEs*, SIAM 2007, section 1.5):

* first derivative, interior:  ``(f[i+1] - f[i-1]) / (2h)``;
  ends (one-sided):            ``(-3 f[0] + 4 f[1] - f[2]) / (2h)`` and the mirror
                               ``(3 f[n-1] - 4 f[n-2] + f[n-3]) / (2h)``;
* second derivative, interior: ``(f[i+1] - 2 f[i] + f[i-1]) / h^2``;
  ends (one-sided):            ``(2 f[0] - 5 f[1] + 4 f[2] - f[3]) / h^2`` and the mirror.

Truncation error ``O(h^2)`` at every node for functions with bounded third (first derivative)
or fourth (second derivative) derivatives; rounding error ``O(eps |f| / h)`` resp.
``O(eps |f| / h^2)``.

Chebyshev spectral differentiation (Trefethen, *Spectral Methods in MATLAB*, SIAM 2000,
chapter 6, program ``cheb.m``): on the Chebyshev--Gauss--Lobatto points
``x_j = cos(pi j / N)``, ``j = 0..N`` (so ``x_0 = 1`` down to ``x_N = -1``), the matrix ``D``
with

    D_ij = (c_i / c_j) (-1)^(i+j) / (x_i - x_j)   (i != j),    c_0 = c_N = 2, else c_i = 1,
    D_ii = -sum_{j != i} D_ij                      (the "negative sum trick", as cheb.m computes it),

maps the values of a polynomial of degree ``<= N`` at the points to the values of its
derivative there, exactly (up to rounding).  For an analytic function the error decays
geometrically in ``N``.  Mapped to ``[a, b]`` by ``x -> a + (b - a)(x + 1)/2``, ``D`` is
scaled by ``2 / (b - a)``.  The points are returned in that same order (from ``b`` down to ``a``).

Two dimensions: values on a tensor grid ``F[i, j] = f(x_i, y_j)`` (``indexing="ij"``);
``fd_gradient_2d`` and ``chebyshev_gradient_2d`` return ``(df/dx, df/dy)`` on the grid.
"""
from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from .validation import real_array

__all__ = [
    "fd_derivative",
    "fd_gradient_2d",
    "uniform_spacing",
    "chebyshev_points",
    "chebyshev_matrix",
    "chebyshev_derivative",
    "chebyshev_gradient_2d",
    "central_difference_gradient",
]


# ----------------------------------------------------------------------------- checks
# Every input is checked before it is converted: NumPy would turn complex input into its real part
# with only a ComplexWarning, ``[True, 2.0]`` into ``[1.0, 2.0]`` and ``"0.1"`` into ``0.1``.  Each
# problem is a ValueError naming the argument.
def _finite_array(values, what: str = "values") -> np.ndarray:
    arr = real_array(values, what)
    if arr.ndim == 0:
        raise ValueError(f"{what} must be an array with at least one axis; got a scalar")
    if not np.all(np.isfinite(arr)):
        bad = np.argwhere(~np.isfinite(arr))
        where = ", ".join(str(int(i)) for i in bad[0])
        raise ValueError(f"{what} contain NaN or inf: {what}[{where}] = {arr[tuple(bad[0])]} "
                         f"({len(bad)} non-finite entries)")
    return arr


def _real_scalar(x, name: str) -> float:
    arr = real_array(x, name)
    if arr.ndim != 0:
        raise ValueError(f"{name} must be a real number; got an array of shape {arr.shape}")
    return float(arr)


def _positive_scalar(x, name: str) -> float:
    v = _real_scalar(x, name)
    if not math.isfinite(v) or v <= 0:
        raise ValueError(f"{name} must be a finite positive number; got {x!r}")
    return v


def _check_interval(a, b, names=("a", "b")) -> tuple[float, float]:
    a, b = _real_scalar(a, names[0]), _real_scalar(b, names[1])
    if not (math.isfinite(a) and math.isfinite(b)) or not a < b:
        raise ValueError(f"need a finite interval a < b; got {names[0]}={a}, {names[1]}={b}")
    return a, b


def _check_pair(interval, name: str) -> tuple[float, float]:
    if isinstance(interval, (str, bytes)) or not hasattr(interval, "__len__") or len(interval) != 2:
        raise ValueError(f"{name} must be a pair (a, b); got {interval!r}")
    return _check_interval(interval[0], interval[1], (f"{name}[0]", f"{name}[1]"))


def _check_N(N) -> int:
    if isinstance(N, (bool, np.bool_)) or not isinstance(N, (int, np.integer)):
        raise ValueError(f"N must be an integer >= 1; got {N!r}")
    if N < 1:
        raise ValueError(f"N must be >= 1 (N + 1 Chebyshev points); got {N}")
    return int(N)


def _check_axis(axis) -> int:
    if isinstance(axis, (bool, np.bool_)) or not isinstance(axis, (int, np.integer)):
        raise ValueError(f"axis must be an integer; got {axis!r}")
    return int(axis)


def _move_to_last(f: np.ndarray, axis) -> np.ndarray:
    try:
        return np.moveaxis(f, _check_axis(axis), -1)
    except np.exceptions.AxisError as exc:
        raise ValueError(str(exc)) from None


def _uniform_spacing(x: np.ndarray, rtol: float, name: str) -> float:
    if x.ndim != 1:
        raise ValueError(f"{name} (grid coordinates) must be 1-D; got shape {x.shape}")
    if x.size < 2:
        raise ValueError(f"a grid needs at least 2 points to define a spacing; got {x.size} in {name}")
    gaps = np.diff(x)
    h = float(gaps.mean())
    if h <= 0 or np.any(gaps <= 0):
        raise ValueError(f"grid coordinates {name} must be strictly increasing")
    if np.max(np.abs(gaps - h)) > rtol * h:
        raise ValueError(f"grid {name} is not uniform: gaps range from {gaps.min():.6g} to {gaps.max():.6g}")
    return h


def uniform_spacing(coords, rtol: float = 1e-9) -> float:
    """The spacing ``h`` of a strictly increasing uniform 1-D grid; ``ValueError`` if it is not one.

    Uniform means every gap equals the mean gap to ``rtol`` relative (default 1e-9, far above the
    rounding of ``np.linspace`` and far below any deliberate non-uniformity).
    """
    rtol = _real_scalar(rtol, "rtol")
    if not (math.isfinite(rtol) and rtol >= 0):
        raise ValueError(f"rtol must be a finite number >= 0; got {rtol!r}")
    return _uniform_spacing(_finite_array(coords, "coords"), rtol, "coords")


def _spacing(h, name: str = "h") -> float:
    """A positive spacing, or the spacing of a uniform coordinate array; ``ValueError`` naming ``name``."""
    arr = real_array(h, name)
    if arr.ndim == 0:
        v = float(arr)
        if not math.isfinite(v) or v <= 0:
            raise ValueError(f"spacing {name} must be a finite positive number; got {h!r}")
        return v
    return _uniform_spacing(_finite_array(arr, name), 1e-9, name)


# ----------------------------------------------------------------------------- finite differences
def fd_derivative(values, h, axis: int = -1, order: int = 1) -> np.ndarray:
    """First (``order=1``) or second (``order=2``) derivative along ``axis`` of uniformly sampled values.

    ``h``: the grid spacing (a positive float) or the grid's coordinates along ``axis`` (a 1-D
    array, checked to be uniform and of matching length).  Second-order accurate at every node:
    central differences inside, second-order one-sided stencils at both ends (module docstring).
    Needs at least 3 points along ``axis`` for ``order=1`` and 4 for ``order=2``.  ``values`` and
    ``h`` must be real and finite: complex (even with zero imaginary part), boolean, non-numeric or
    ragged input is a ``ValueError`` naming the argument.
    """
    return _fd_derivative(values, h, axis, order, "h")


def _fd_derivative(values, h, axis, order, h_name: str) -> np.ndarray:
    f = _finite_array(values)
    if isinstance(order, (bool, np.bool_)) or order not in (1, 2):
        raise ValueError(f"order must be 1 or 2; got {order!r}")
    f = _move_to_last(f, axis)
    n = f.shape[-1]
    h = real_array(h, h_name)
    if h.ndim != 0 and h.size != n:
        raise ValueError(f"{h.size} grid coordinates for {n} values along axis {axis} (argument {h_name})")
    hv = _spacing(h, h_name)
    need = 3 if order == 1 else 4
    if n < need:
        raise ValueError(f"order-{order} differences need at least {need} points along the axis; got {n}")
    out = np.empty_like(f)
    if order == 1:
        out[..., 1:-1] = (f[..., 2:] - f[..., :-2]) / (2 * hv)
        out[..., 0] = (-3 * f[..., 0] + 4 * f[..., 1] - f[..., 2]) / (2 * hv)
        out[..., -1] = (3 * f[..., -1] - 4 * f[..., -2] + f[..., -3]) / (2 * hv)
    else:
        h2 = hv * hv
        out[..., 1:-1] = (f[..., 2:] - 2 * f[..., 1:-1] + f[..., :-2]) / h2
        out[..., 0] = (2 * f[..., 0] - 5 * f[..., 1] + 4 * f[..., 2] - f[..., 3]) / h2
        out[..., -1] = (2 * f[..., -1] - 5 * f[..., -2] + 4 * f[..., -3] - f[..., -4]) / h2
    return np.moveaxis(out, -1, axis)


def fd_gradient_2d(values, hx, hy) -> tuple[np.ndarray, np.ndarray]:
    """``(df/dx, df/dy)`` of ``F[i, j] = f(x_i, y_j)`` on a uniform tensor grid (second order).

    ``hx``, ``hy``: spacings or coordinate arrays, as in :func:`fd_derivative`.
    """
    F = _finite_array(values)
    if F.ndim != 2:
        raise ValueError(f"values on a 2-D grid must be a 2-D array; got shape {F.shape}")
    return _fd_derivative(F, hx, 0, 1, "hx"), _fd_derivative(F, hy, 1, 1, "hy")


# ----------------------------------------------------------------------------- Chebyshev
def chebyshev_points(N: int, a: float = -1.0, b: float = 1.0) -> np.ndarray:
    """The ``N + 1`` Chebyshev--Gauss--Lobatto points ``cos(pi j / N)`` mapped to ``[a, b]``.

    Order as in Trefethen's ``cheb.m``: ``j = 0..N``, from ``b`` down to ``a``.  Computed as
    ``sin(pi (N - 2j) / (2N))`` (equal to ``cos(pi j / N)``), which is exactly antisymmetric.
    """
    N = _check_N(N)
    a, b = _check_interval(a, b)
    j = np.arange(N + 1)
    x = np.sin(np.pi * (N - 2 * j) / (2 * N))
    return a + (b - a) * (x + 1) / 2


def chebyshev_matrix(N: int, a: float = -1.0, b: float = 1.0) -> np.ndarray:
    """Trefethen's ``(N+1) x (N+1)`` differentiation matrix on :func:`chebyshev_points` of ``[a, b]``.

    ``D @ f(points)`` is ``f'(points)``, exact for polynomials of degree ``<= N``.  Off-diagonal
    entries from the closed form, diagonal by the negative-sum trick (rows of ``D`` annihilate
    constants), scaled by ``2 / (b - a)`` for the interval (module docstring).
    """
    N = _check_N(N)
    a, b = _check_interval(a, b)
    x = chebyshev_points(N)
    c = np.ones(N + 1)
    c[0] = c[-1] = 2.0
    c *= (-1.0) ** np.arange(N + 1)
    dx = x[:, None] - x[None, :]
    D = np.outer(c, 1.0 / c) / (dx + np.eye(N + 1))
    D -= np.diag(D.sum(axis=1))
    return D * (2.0 / (b - a))


def chebyshev_derivative(values, a: float = -1.0, b: float = 1.0, axis: int = -1) -> np.ndarray:
    """Spectral derivative along ``axis`` of values sampled at ``chebyshev_points(n - 1, a, b)``."""
    f = _move_to_last(_finite_array(values), axis)
    a, b = _check_interval(a, b)
    n = f.shape[-1]
    if n < 2:
        raise ValueError(f"Chebyshev differentiation needs at least 2 points along the axis; got {n}")
    D = chebyshev_matrix(n - 1, a, b)
    return np.moveaxis(f @ D.T, -1, axis)


def chebyshev_gradient_2d(values, x_interval=(-1.0, 1.0), y_interval=(-1.0, 1.0)) -> tuple[np.ndarray, np.ndarray]:
    """``(df/dx, df/dy)`` of ``F[i, j] = f(x_i, y_j)`` on a Chebyshev tensor grid.

    ``x_i = chebyshev_points(F.shape[0] - 1, *x_interval)``, ``y_j`` likewise along axis 1.
    """
    F = _finite_array(values)
    if F.ndim != 2:
        raise ValueError(f"values on a 2-D grid must be a 2-D array; got shape {F.shape}")
    xa, xb = _check_pair(x_interval, "x_interval")
    ya, yb = _check_pair(y_interval, "y_interval")
    return (chebyshev_derivative(F, xa, xb, axis=0), chebyshev_derivative(F, ya, yb, axis=1))


# ----------------------------------------------------------------------------- scattered points
def central_difference_gradient(fn: Callable[[np.ndarray], np.ndarray], x, h: float,
                                chunk: int = 1 << 22) -> tuple[np.ndarray, int]:
    """Gradient of a black-box ``fn: (m, d) -> (m,)`` at scattered points ``x`` (n, d) by central differences.

    ``(fn(x + h e_k) - fn(x - h e_k)) / (2h)`` for each coordinate ``k``: ``2 n d`` queries of
    ``fn``, error ``O(h^2)`` for smooth ``fn`` (exact for a piecewise-linear one unless a kink lies
    within ``h`` of the point) plus ``O(eps |f| / h)`` rounding.  Coordinates are processed in
    blocks so that at most about ``chunk`` input entries exist at once.  Returns the ``(n, d)``
    gradient and the number of queries.  ``x`` must be real and finite and ``h`` a positive number
    (complex, boolean, non-numeric or ragged input is a ``ValueError`` naming the argument); ``fn``
    must return one real finite value per row (a complex, non-finite or wrongly sized result is a
    ``ValueError`` too, rather than a gradient built from its real part or from NaN).
    """
    if not callable(fn):
        raise ValueError(f"fn must be a callable (m, d) -> (m,); got {type(fn).__name__}")
    X = _finite_array(x, "x")
    if X.ndim != 2:
        raise ValueError(f"x must be an (n, d) array of points; got shape {X.shape}")
    hv = _positive_scalar(h, "h")
    if isinstance(chunk, (bool, np.bool_)) or not isinstance(chunk, (int, np.integer)) or chunk < 1:
        raise ValueError(f"chunk must be a positive integer; got {chunk!r}")
    n, d = X.shape
    grad = np.empty((n, d))
    block = max(1, int(chunk) // max(1, 2 * n * d))
    for k0 in range(0, d, block):
        ks = np.arange(k0, min(d, k0 + block))
        E = np.zeros((ks.size, d))
        E[np.arange(ks.size), ks] = hv
        plus = (X[None, :, :] + E[:, None, :]).reshape(-1, d)
        minus = (X[None, :, :] - E[:, None, :]).reshape(-1, d)
        fp = _fn_values(fn(plus), ks.size, n)
        fm = _fn_values(fn(minus), ks.size, n)
        grad[:, ks] = ((fp - fm) / (2 * hv)).T
    return grad, 2 * n * d


def _fn_values(out, blocks: int, n: int) -> np.ndarray:
    """``fn``'s output as a ``(blocks, n)`` float64 array, checked (real, one value per row, finite)."""
    v = real_array(out, "the values returned by fn")
    if v.size != blocks * n:
        raise ValueError(f"fn must return one value per row: {blocks * n} rows in, {v.size} values "
                         f"(shape {v.shape}) out")
    if not np.all(np.isfinite(v)):
        raise ValueError(f"fn returned NaN or inf ({int(np.sum(~np.isfinite(v)))} of {v.size} values)")
    return v.reshape(blocks, n)
