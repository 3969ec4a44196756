"""Target functions of the training experiments and the data sets built from them.

* Ackley in 2-D on ``[-2, 2]^2`` with its exact gradient (docs/experiments.md, section 5):
  ``f(x, y) = -20 exp(-0.2 sqrt(0.5 (x^2 + y^2))) - exp(0.5 (cos 2 pi x + cos 2 pi y)) + e + 20``.
  Its gradient is undefined at the origin (the square-root cone); the grids used here never
  contain the origin (an even number of points per axis), and the exact gradient there is set
  to 0 (its symmetric limit) should anyone ask.
* 1-D targets on ``[-1, 1]`` (docs/experiments.md, section 6), with first and second
  derivatives by hand, checked against autograd in ``tests/test_training.py``:
  ``f1 = sin(2 pi x) + sin(20 pi x)``, ``f2 = x + sin(2 pi x^4)``, ``f3 = e^x sin(20 x)``.
* The student--teacher ReLU network of docs/theory.md (section 1), ``g(x; W*) = sum_j relu(w*_j . x)``, as a
  black box with its exact input gradient.

:class:`SobolevData` carries training points, values, exact derivatives where known, and what the
numerical variants need: the tensor grid the points lie on (``H1-FDM`` on a uniform grid,
``H1-Chebyshev`` on a Chebyshev grid) or, for scattered points, the target as a black box
(``H1-FDM`` by central differences of it).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from numerics.differentiation import chebyshev_points

ACKLEY_BOUNDS = (-2.0, 2.0)


@dataclass
class Grid:
    """A tensor grid: ``kind`` ``"uniform"`` or ``"chebyshev"``, one coordinate array per axis.

    Points are ``meshgrid(*axes, indexing="ij")`` flattened in C order, so values reshape to
    ``tuple(len(a) for a in axes)``.  ``bounds[k]`` is the interval of axis ``k``.
    """

    kind: str
    axes: tuple
    bounds: tuple

    @property
    def shape(self) -> tuple:
        return tuple(len(a) for a in self.axes)

    def points(self) -> np.ndarray:
        mesh = np.meshgrid(*self.axes, indexing="ij")
        return np.stack([m.ravel() for m in mesh], axis=1)


def make_grid(kind: str, n: int, bounds: tuple, dim: int) -> Grid:
    """``n`` points per axis on ``bounds`` (same interval every axis): uniform or Chebyshev--Gauss--Lobatto."""
    a, b = bounds
    if kind == "uniform":
        axis = np.linspace(a, b, n)
    elif kind == "chebyshev":
        axis = chebyshev_points(n - 1, a, b)
    else:
        raise ValueError(f"grid kind must be 'uniform' or 'chebyshev'; got {kind!r}")
    return Grid(kind, tuple(axis.copy() for _ in range(dim)), tuple((a, b) for _ in range(dim)))


@dataclass
class SobolevData:
    """Training and test data of one regression problem (float64 NumPy; the loop casts).

    ``x`` (n, d), ``y`` (n,), ``dy`` (n, d) exact gradient or ``None``, ``d2y`` (n, d) exact
    diagonal second derivatives ``d^2 f / dx_k^2`` or ``None``; ``grid``: the tensor grid ``x``
    lies on, or ``None`` for scattered points; ``target_fn``: the target as a black box
    ``(m, d) -> (m,)`` (float64) for central differences at scattered points, step ``fd_step``.
    """

    name: str
    x: np.ndarray
    y: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    dy: np.ndarray | None = None
    d2y: np.ndarray | None = None
    grid: Grid | None = None
    target_fn: Callable | None = None
    fd_step: float = 1e-3


# ----------------------------------------------------------------------------- Ackley
def ackley(X: np.ndarray) -> np.ndarray:
    X = np.asarray(X, dtype=np.float64)
    x, y = X[..., 0], X[..., 1]
    r = np.sqrt(0.5 * (x**2 + y**2))
    return (-20 * np.exp(-0.2 * r) - np.exp(0.5 * (np.cos(2 * np.pi * x) + np.cos(2 * np.pi * y)))
            + np.e + 20)


def ackley_gradient(X: np.ndarray) -> np.ndarray:
    X = np.asarray(X, dtype=np.float64)
    x, y = X[..., 0], X[..., 1]
    r = np.sqrt(0.5 * (x**2 + y**2))
    safe_r = np.where(r > 0, r, 1.0)
    cone = np.where(r > 0, 20 * 0.2 * np.exp(-0.2 * r) * 0.5 / safe_r, 0.0)  # d/dx of -20 e^{-0.2 r} = cone * x
    wave = np.exp(0.5 * (np.cos(2 * np.pi * x) + np.cos(2 * np.pi * y))) * np.pi  # d/dx of -e^{...} = wave sin(2 pi x)
    return np.stack([cone * x + wave * np.sin(2 * np.pi * x), cone * y + wave * np.sin(2 * np.pi * y)], axis=-1)


def ackley_data(kind: str, n: int, n_test: int, rng: np.random.Generator) -> SobolevData:
    """Ackley on an ``n x n`` grid of ``kind`` (``n`` even: the origin is never a node); uniform random test points."""
    if n % 2:
        raise ValueError(f"use an even number of points per axis so that the origin is not a node; got {n}")
    grid = make_grid(kind, n, ACKLEY_BOUNDS, 2)
    x = grid.points()
    x_test = rng.uniform(*ACKLEY_BOUNDS, size=(n_test, 2))
    return SobolevData(f"ackley-{kind}", x, ackley(x), x_test, ackley(x_test), dy=ackley_gradient(x), grid=grid)


# ----------------------------------------------------------------------------- 1-D targets
def _f1(x):
    return (np.sin(2 * np.pi * x) + np.sin(20 * np.pi * x),
            2 * np.pi * np.cos(2 * np.pi * x) + 20 * np.pi * np.cos(20 * np.pi * x),
            -(2 * np.pi) ** 2 * np.sin(2 * np.pi * x) - (20 * np.pi) ** 2 * np.sin(20 * np.pi * x))


def _f2(x):
    t = 2 * np.pi * x**4
    return (x + np.sin(t),
            1 + 8 * np.pi * x**3 * np.cos(t),
            24 * np.pi * x**2 * np.cos(t) - (8 * np.pi * x**3) ** 2 * np.sin(t))


def _f3(x):
    e, s, c = np.exp(x), np.sin(20 * x), np.cos(20 * x)
    return e * s, e * (s + 20 * c), e * (s + 40 * c - 400 * s)


TARGETS_1D = {"f1": _f1, "f2": _f2, "f3": _f3}
TARGET_FORMULAS = {"f1": "sin(2πx) + sin(20πx)", "f2": "x + sin(2πx⁴)", "f3": "eˣ sin(20x)"}


def target_1d(name: str, x: np.ndarray) -> tuple:
    """``(f, f', f'')`` of ``f1``, ``f2`` or ``f3`` at ``x`` (any shape)."""
    if name not in TARGETS_1D:
        raise ValueError(f"unknown 1-D target {name!r}; expected one of {sorted(TARGETS_1D)}")
    return TARGETS_1D[name](np.asarray(x, dtype=np.float64))


def line_data(name: str, n: int, n_test: int, rng: np.random.Generator, kind: str = "uniform") -> SobolevData:
    """``n`` grid points on ``[-1, 1]`` (uniform or Chebyshev) and ``n_test`` uniform random test points."""
    grid = make_grid(kind, n, (-1.0, 1.0), 1)
    x = grid.points()
    f, df, d2f = target_1d(name, x[:, 0])
    x_test = rng.uniform(-1.0, 1.0, size=(n_test, 1))
    return SobolevData(name, x, f, x_test, target_1d(name, x_test[:, 0])[0], dy=df[:, None], d2y=d2f[:, None],
                       grid=grid)


# ----------------------------------------------------------------------------- student--teacher ReLU network
def relu_network(W: np.ndarray) -> Callable:
    """``x -> sum_j relu(w_j . x)`` for ``W`` (K, d), float64, as a black box on (m, d) arrays."""
    W = np.asarray(W, dtype=np.float64)
    return lambda X: np.maximum(np.asarray(X, dtype=np.float64) @ W.T, 0.0).sum(axis=1)


def relu_network_gradient(W: np.ndarray, X: np.ndarray) -> np.ndarray:
    """``grad_x g(x; W) = sum_j 1{w_j . x > 0} w_j`` (docs/theory.md, section 1), (m, d)."""
    return (np.asarray(X, dtype=np.float64) @ W.T > 0).astype(np.float64) @ W


def teacher_data(W_star: np.ndarray, n: int, n_test: int, rng: np.random.Generator, fd_step: float) -> SobolevData:
    """``x ~ N(0, I_d)`` training and test samples labelled by the teacher ``g(.; W*)``; exact gradient given."""
    d = W_star.shape[1]
    fn = relu_network(W_star)
    x, x_test = rng.standard_normal((n, d)), rng.standard_normal((n_test, d))
    return SobolevData(f"teacher-d{d}", x, fn(x), x_test, fn(x_test), dy=relu_network_gradient(W_star, x),
                       target_fn=fn, fd_step=fd_step)
