"""The SymPy symbols every derivation in :mod:`theory` shares.

A *pair* of non-zero rows ``(a, b)`` enters every population quantity only through
its norms ``n_a = |a|``, ``n_b = |b|`` and the angle ``theta`` between them
(docs/theory.md, section 3).  ``psi = pi - theta`` is the complementary
angle, used to write expressions that stay accurate near anti-parallel pairs.

Polar coordinates ``(r, phi)`` parametrise the plane spanned by ``a`` and ``b``,
with ``a`` along the first axis: ``a = n_a (1, 0)``, ``b = n_b (cos theta, sin theta)``.
"""
import sympy as sp

n_a = sp.Symbol("n_a", positive=True)
n_b = sp.Symbol("n_b", positive=True)
theta = sp.Symbol("theta", positive=True)
psi = sp.Symbol("psi", positive=True)
r = sp.Symbol("r", nonnegative=True)
phi = sp.Symbol("phi", real=True)
