"""K-node population quantities as signed sums of pair terms (symbolic).

With ``Z = [w_1..w_K, w*_1..w*_K*]`` and signs ``s = (+1,..,+1, -1,..,-1)``:

    F(W) = 1/2 sum_{p,q} s_p s_q f(z_p, z_q)          (f = loss kernel of L or J; H = L + J)

since ``g(x;W) - g(x;W*) = sum_p s_p sigma(z_p.x)`` and ``grad_x g - grad_x g* =
sum_p s_p 1{z_p.x>0} z_p``.  :func:`loss_explicit` writes ``F`` in the coordinates of the rows (for
differentiation in small ``d``); :func:`mean_field_explicit` the mean field as the sum of
the pair mean-field terms.
"""
from __future__ import annotations

import sympy as sp

from . import explicit, pairs, vocabulary
from .symbols import n_a, n_b, theta

PARTS = vocabulary.PARTS


def _parts(part):
    if part not in PARTS:
        raise ValueError(f"part must be one of {PARTS}; got {part!r}")
    return ("L", "J") if part == "H" else (part,)


def signs(K: int, K_star: int) -> list:
    return [1] * K + [-1] * K_star


def rows(K: int, K_star: int, d: int) -> tuple:
    """Coordinate symbols ``(W, W_star)`` as ``K x d`` and ``K* x d`` matrices."""
    W = sp.Matrix(K, d, lambda i, k: sp.Symbol(f"w_{i}_{k}", real=True))
    Ws = sp.Matrix(K_star, d, lambda i, k: sp.Symbol(f"v_{i}_{k}", real=True))
    return W, Ws


def loss_explicit(W: sp.Matrix, Ws: sp.Matrix, part: str) -> sp.Expr:
    """The population loss in the coordinates of the rows (angles as ``acos``)."""
    Z = [W.row(i).T for i in range(W.rows)] + [Ws.row(i).T for i in range(Ws.rows)]
    s = signs(W.rows, Ws.rows)
    total = sp.Integer(0)
    for sub in _parts(part):
        f = pairs.loss_kernel(sub)
        for p, zp in enumerate(Z):
            total += pairs.self_loss_kernel(sub).subs(n_a, sp.sqrt(zp.dot(zp))) / 2
            for q in range(p + 1, len(Z)):
                total += s[p] * s[q] * explicit.scalar(f, zp, Z[q])
    return total


def mean_field_explicit(W: sp.Matrix, Ws: sp.Matrix, part: str) -> sp.Matrix:
    """The mean field ``E_x[grad_W l]`` (rows of a ``K x d`` matrix) from the pair terms."""
    Z = [W.row(i).T for i in range(W.rows)] + [Ws.row(i).T for i in range(Ws.rows)]
    s = signs(W.rows, Ws.rows)
    out = sp.zeros(W.rows, W.cols)
    for sub in _parts(part):
        half = sp.simplify(pairs.self_mean_field(sub).c1 / n_a)
        for j in range(W.rows):
            v = half * Z[j]
            for q, zq in enumerate(Z):
                if q != j:
                    v += s[q] * explicit.vector(pairs.mean_field(sub), Z[j], zq)
            out[j, :] += v.T
    return out
