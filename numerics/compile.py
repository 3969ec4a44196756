"""Stable NumPy evaluation of the pair expressions ``c(n_a, n_b, theta)`` derived in :mod:`theory`.

The code is generated: ``python -m theory.codegen`` (:mod:`theory.codegen`) derives every pair
expression :mod:`numerics.population` uses and writes, for each, the NumPy source that
``sympy.lambdify`` compiles (common-subexpression elimination) into :mod:`numerics._pair_code`,
with flags and constants.  This module only wraps those functions (no SymPy here); this is the one
place where degenerate angles are handled numerically.  Each expression has three branches:

* ``theta < SWITCH``: its series about ``theta = 0`` to ``O(theta^16)`` (Laurent where the
  expression is singular; :mod:`theory.expansions`), so that cancellations such as
  ``sin t - t cos t ~ t^3/3`` lose no digits;
* ``pi - theta < SWITCH``: its series in ``psi = pi - theta``, fed with ``psi`` computed
  directly by :mod:`numerics.geometry` (never as ``pi - theta``);
* otherwise the closed form.

With ``SWITCH = 0.1`` the truncation error of the series is below ``(0.1/pi)^12 < 1e-17``
relative (the expressions are analytic on a disc of radius ``pi`` about the expansion point
once a pole of order at most one is removed), and the closed form loses at most about
``eps / SWITCH^4 ~ 2e-12`` relative to cancellation.  The tests check all three branches
against 50-digit mpmath evaluations of the closed form.

The closed form exists a second time with ``sin(theta)``, ``cos(theta)`` and ``tan(theta)``
replaced by arguments: callers that already hold the sine and cosine of every pair
(:mod:`numerics.geometry` computes them anyway) pass them and skip the transcendental passes
over the ``(K, K + K*)`` array (same values to rounding; only the branch away from the kinks
uses them).

:func:`pair_function` is the compiled function of a generated pair expression (by its name in
``numerics._pair_code.PAIRS``); :func:`compile_pair` compiles any SymPy expression the same way at
run time (its branches from ``theory.codegen.compiled_branches``: numerics calls down into theory,
never the reverse).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

SWITCH = 0.1
# A pair whose |cos| is at most SWITCH_COS is at least SWITCH from 0 and from pi, with room: in exact
# arithmetic by ~1e-8 rad (d angle / d cos = -1/sin, at most ~10 there), far beyond the ~1e-16 rounding
# of a computed angle.  Fast paths use it to skip the angle checks (numerics.batched, numerics.backend).
SWITCH_COS = math.cos(SWITCH) - 1e-9


@dataclass(frozen=True)
class PairFunction:
    """A compiled pair expression; call with arrays ``(n_a, n_b, theta, psi)``.

    ``name``: its name in ``numerics._pair_code.PAIRS`` (``None``: compiled at run time by
    :func:`compile_pair`, which keeps the expression in ``symbolic``).  ``expr`` is the
    SymPy expression (derived on first access for a generated function: imports SymPy).
    """

    closed: object = field(repr=False)
    near_zero: object = field(repr=False)
    near_pi: object = field(repr=False)
    closed_sc: object = field(repr=False)  # closed form of (n_a, n_b, theta, sin, cos)
    finite_at_zero: bool = True
    finite_at_pi: bool = True
    vanishes_at_zero: bool = False
    vanishes_at_pi: bool = False
    is_zero: bool = False
    name: str | None = None
    symbolic: object = field(default=None, repr=False, compare=False)

    @property
    def expr(self):
        """The SymPy expression (for tests and checks; never used to evaluate)."""
        if self.symbolic is not None:
            return self.symbolic
        from theory.codegen import expression  # SymPy, only when asked

        return expression(self.name)

    def away_from_kinks(self, na, nb, th, sin, cos, shape) -> np.ndarray:
        """The closed form from ``sin(theta)``, ``cos(theta)``: for float64 arrays whose every angle
        the caller has checked to be at least ``SWITCH`` from 0 and from pi (no masking, no checks).

        A fresh array of ``shape`` that the caller may modify in place.
        """
        if self.is_zero:
            return np.zeros(shape)
        return _fresh(self.closed_sc(na, nb, th, sin, cos), shape, (na, nb, th, sin, cos))

    def __call__(self, na, nb, th, ps, sin=None, cos=None) -> np.ndarray:
        """Values at every pair; ``sin``, ``cos``: optional ``sin(theta)``, ``cos(theta)`` of the pairs.

        Always a fresh array of the broadcast shape that the caller may modify in place.
        """
        args = [np.asarray(v, dtype=np.float64) for v in (na, nb, th, ps)]
        shape = np.broadcast_shapes(*(a.shape for a in args))
        if self.is_zero:
            return np.zeros(shape)
        trig = sin is not None and cos is not None
        if trig:
            sin, cos = np.asarray(sin, dtype=np.float64), np.asarray(cos, dtype=np.float64)
        th_, ps_ = args[2], args[3]
        if th_.size == 0 or (th_.min() >= SWITCH and ps_.min() >= SWITCH):
            # the common case: closed form everywhere, no masking
            res = self.closed_sc(args[0], args[1], th_, sin, cos) if trig else self.closed(*args[:3])
            return _fresh(res, shape, (*args, sin, cos) if trig else args)
        na, nb, th, ps = np.broadcast_arrays(*args)
        if trig:
            sin, cos = np.broadcast_to(sin, shape), np.broadcast_to(cos, shape)
        lo = th < SWITCH
        hi = ~lo & (ps < SWITCH)
        out = np.empty(shape, dtype=np.float64)
        mid = ~(lo | hi)
        for mask, fn, ang in ((lo, self.near_zero, th), (hi, self.near_pi, ps)):
            if mask.any():
                out[mask] = fn(na[mask], nb[mask], ang[mask])
        if mid.any():
            out[mid] = (self.closed_sc(na[mid], nb[mid], th[mid], sin[mid], cos[mid]) if trig
                        else self.closed(na[mid], nb[mid], th[mid]))
        return out


def _fresh(res, shape, inputs) -> np.ndarray:
    """``res`` as a float64 array of ``shape`` that shares no memory with ``inputs`` (copied if needed:
    a lambdified expression may return a scalar, a smaller broadcastable array or an input itself)."""
    # an array that owns its memory (base None) and is none of the inputs was made by the expression
    # (inputs predate it, so none is a view of it): cheaper than np.may_share_memory per input
    if (not isinstance(res, np.ndarray) or res.shape != shape or res.dtype != np.float64
            or res.base is not None or any(res is a for a in inputs)):
        res = np.broadcast_to(res, shape).astype(np.float64, copy=True)
    return res


def generated():
    """The generated module :mod:`numerics._pair_code` (imported on first use)."""
    from . import _pair_code

    return _pair_code


@lru_cache(maxsize=None)
def pair_function(name: str) -> PairFunction:
    """The generated pair function ``name`` (one object per name for the process)."""
    return PairFunction(**generated().PAIRS[name], name=name)


@lru_cache(maxsize=None)
def compile_pair(expr) -> PairFunction:
    """Compile any SymPy pair expression at run time (imports SymPy; one object per expression for the
    process): the callables and flags of ``theory.codegen.compiled_branches``, wrapped here, so that the
    generated functions and the run-time ones are built the same way."""
    from theory.codegen import compiled_branches  # SymPy, only when asked

    return PairFunction(**compiled_branches(expr))
