"""Adversarial harness for the public API ``numerics.loss / gradient / hessian``.

Every float64 result is compared with a high-precision mpmath reference computed **from the exact
float inputs** (``mpmath.mpf`` of every entry), at configurations chosen to break floating point:

* row sizes ``2**e`` with ``e`` anywhere in ``[-1000, 1000]`` (near-overflow rows ~1e300 and rows
  next to the subnormal range ~1e-300 included), times an overall power-of-two scale;
* angles ``1e-15 .. 1e-6`` from 0 and from pi between a student and a teacher and between two
  students, rows that are multiples of another rounded to float64 (angle 0 or ~1e-16), rows a
  few ulps off another, rows whose zero entry of another row is made subnormal (angles down to
  ``2**-1074``), and exactly (anti-)parallel / duplicate rows, where the kink objects (true
  gradient, true Hessian and mean-field Jacobian of ``J`` and ``H``) must raise ``ValueError`` and
  every other object must be finite and right;
* rows that are axis vectors (exact zeros) or have entries of wildly different sizes;
* ``d = 2`` on its own (no orthogonal complement: there every object is smooth up to the kink,
  so no accuracy is lost near it) and ``d = 3, 4``.

The reference (section "mpmath reference") uses only the textbook arc-cosine kernels

    E[relu(a.x) relu(b.x)]      = |a||b| (sin t + (pi - t) cos t) / (2 pi)
    E[1{a.x>0} 1{b.x>0}] a.b    = a.b (pi - t) / (2 pi)
    E[relu(b.x) 1{a.x>0} x]     = ((pi - t) b + |b| sin t a/|a|) / (2 pi)
    E[1{a.x>0} 1{b.x>0} x x^T]  = (pi - t)/(2 pi) I + (sin t / (2 pi)) (cos t (e1 e1^T - e2 e2^T)
                                                               + sin t (e1 e2^T + e2 e1^T))

(``t`` the angle, ``atan2(|a ^ b|, a.b)`` with ``|a ^ b|^2`` from Lagrange's identity, ``e1 = a/|a|``,
``e2`` the unit vector of ``b`` orthogonal to ``a``).  Population ``L`` and ``J`` are
``1/2 sum_pq s_p s_q P(z_p, z_q)`` over the rows ``z`` of ``[W; W*]`` (signs +1 students, -1
teachers).  From them:

* mean fields: the closed form above (no differentiation);
* true gradients: central first differences of each pair term ``P(w_j, z_q)`` in ``w_j``;
* true Hessians: second differences of each pair term (mixed ones for the off-diagonal blocks);
* mean-field Jacobians: central first differences of the mean-field pair terms;
* expected autograd Hessians: the ``E[1 1 x x^T]`` form above (``L``), ``E[1 1] I`` (``J``).

Differences are taken per pair with the step relative to the size of the row that moves,
``h = delta |w|``, ``delta = 10**-max(30, 15 + log10(1/theta_min))`` (``theta_min`` the smallest
non-zero angle of any pair that involves a student, measured to 0 or pi) and the working precision
``dps = 40 + 2 log10(1/delta) + log10(1/theta_min)`` (>= 100 digits).  The truncation error of a
central difference is ``O(h^2 f''')``; near a kink every derivative of a pair term grows by one power
of ``1/theta`` per order, so it is ``O((delta/theta)^2) <= 1e-30`` relative to the object's terms;
the rounding error is ``10**-dps / delta^2 <= 1e-40`` relative (second differences).  Both are far
below the float64 tolerances (~1e-13).  ``test_reference_is_self_consistent`` checks the reference
against the 50-digit one of ``tests/test_precision.py`` and the identities that hold for ``L``
(true gradient == mean field, true Hessian == mean Jacobian).

Tolerances (``eps = 2**-52``).  The inputs are exact, so the question is how much an accurate
float64 evaluation may err; the bound is ``C eps`` times the object's *conditioning scale*, entry
by entry (one scale per row of a gradient, per ``d x d`` block of a matrix):

    |got - exact| <= C eps (sum_terms |term| + sensitivity) + ATOL_SUB

* ``sum_terms |term|``: an object is a signed sum of pair terms (``(K + K*)^2`` for a loss, one per
  other row for a gradient row or a diagonal block, one for an off-diagonal block); rounding each
  term costs a few ulps of it, whatever the (possibly cancelling) sum.  For a loss this is the
  rule "relative error <= C eps cond" with ``cond = sum |terms| / |value|``.
* ``sensitivity``: ``|F(Z + eta |z| R) - F(Z)| / eta`` for random ``R`` (``Reference.sensitivity``),
  the first-order change of the exact object when every row moves by a relative ``eps`` (what
  the rounding of the inputs of any pair formula, e.g. of a direction ``b/|b|``, costs).  This is
  where the known amplification near a kink comes in, derived rather than assumed: in ``d >= 3``
  the direction ``e2`` of one row orthogonal to the other turns by ``eps / theta`` under such a
  change, so the true gradient, true Hessian and mean Jacobian of ``J`` (built on ``e2``) get a
  scale ``~ 1/theta`` times their size; in ``d = 2`` there is no orthogonal complement (``e2`` is
  ``a`` turned by a right angle) and every object stays well conditioned up to the kink, so no
  accuracy may be lost there.  It is only computed for an object that fails the bound without it.
* ``C_LOSS = C_VEC = 64``, ``C_MAT = 128``: with ``C = 1`` the worst error seen over hundreds of
  adversarial configurations that pass is ~2 (the failures are 1e8 .. 1e25), so the margin is
  ~30x either way.
* ``ATOL_SUB``: a few subnormal ulps (a result in the subnormal range is rounded there).

The contract: for finite input, the right finite number, or ``ValueError`` where the exact result
is not a finite float64.  A ``ValueError`` is therefore accepted only where the object does not
exist (an exact kink), where the exact result overflows (or is within 1e-10 of ``DBL_MAX``), or
where the rows' sizes span more than ``2**SPAN_REFUSAL_LOG2 / d`` (the library's documented limit
for one float64 computation, ``numerics.validation``).  A finite result where the exact one
overflows is a failure too.

Other properties: symmetry of every true Hessian, homogeneity (bit for bit for power-of-two scales,
see ``test_homogeneity_bit_for_bit``), and explicit regression tests of reported bugs.

Fast by default (a few examples per mpmath test); ``python -m pytest -m slow`` runs the
``@pytest.mark.slow`` variants with hundreds of examples each.
"""
from __future__ import annotations

import math
import sys
from fractions import Fraction

import mpmath
import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, assume, given, settings
from hypothesis import strategies as st

import numerics

# Every test here runs with warnings as errors (issue 26, item 6): no NumPy or PyTorch warning may reach a caller
# of the public API for input inside the README's Guarantees, and an intermediate overflow that NumPy reports
# fails the test even where the result is right.  The other two filters are third-party deprecations, not raised by
# this project's code: pyproject's (inside PyTorch), and one that Hypothesis's report of a failing example triggers
# (it imports libcst), which would turn a plain test failure into a pytest INTERNALERROR.
pytestmark = pytest.mark.filterwarnings("error", "ignore:`torch.jit.script` is deprecated:DeprecationWarning",
                                        "ignore:mypy_extensions.TypedDict is deprecated:DeprecationWarning")

PARTS = ("L", "J", "H")
EPS = 2.0**-52
DBL_MAX = sys.float_info.max
OVERFLOW_AT = mpmath.mpf(2) ** 1024 * (1 - mpmath.mpf(2) ** -54)  # |x| >= this rounds to inf
ATOL_SUB = 4 * 2.0**-1074  # results in the subnormal range are rounded to multiples of 2**-1074

# Constants of the tolerance rules (module docstring): with C = 1 the worst passing error seen over
# hundreds of adversarial configurations is ~2 (in units of eps * (terms + sensitivity)).
C_LOSS = 64
C_VEC = 64
C_MAT = 128
# the library refuses rows whose sizes differ by more than about 2**900 / sqrt(d)
# (numerics.validation); a refusal is accepted above 2**SPAN_REFUSAL_LOG2 / d
SPAN_REFUSAL_LOG2 = 880
# symmetry of a true Hessian, relative to the size of the blocks' terms (_check_symmetry)
SYM_RTOL = 1e-12

N_DIRECTIONS = 2  # random directions of the sensitivity estimate (Reference.sensitivity)
KINK_OBJECTS = {("gradient", "true"), ("hessian", "true"), ("hessian", "mean")}

# default: no shrinking (each mpmath example costs ~0.1-0.5 s; the falsifying example is still
# printed); the slow variants shrink
FAST_PHASES = (Phase.explicit, Phase.reuse, Phase.generate)


# =============================================================================== exact geometry
def _exact_kinks(W, Ws):
    """``{(j, q)}``: student ``j`` and row ``q != j`` of ``[W; W*]`` exactly (anti-)parallel (rationals)."""
    Z = [[Fraction(float(x)) for x in row] for row in np.vstack([W, Ws])]
    out = set()
    d = len(Z[0])
    for j in range(len(W)):
        for q in range(len(Z)):
            if q == j:
                continue
            a, b = Z[j], Z[q]
            if all(a[i] * b[k] == a[k] * b[i] for i in range(d) for k in range(i + 1, d)):
                out.add((j, q))
    return out


def _span_log2(W, Ws):
    """log2 of (largest |entry|) / (smallest row's largest |entry|), exact via frexp."""
    Z = np.abs(np.vstack([W, Ws]))
    row_max = Z.max(axis=1)
    return math.frexp(float(row_max.max()))[1] - math.frexp(float(row_max.min()))[1]


def _refusal_allowed_by_span(W, Ws):
    return _span_log2(W, Ws) > SPAN_REFUSAL_LOG2 - math.log2(np.shape(W)[1])


# =============================================================================== mpmath reference
def _mp_rows(A):
    return [[mpmath.mpf(float(x)) for x in row] for row in np.atleast_2d(np.asarray(A, dtype=np.float64))]


def _dot(a, b):
    return mpmath.fsum(x * y for x, y in zip(a, b))


def _cross2(a, b):
    d = len(a)
    return mpmath.fsum((a[i] * b[k] - a[k] * b[i]) ** 2 for i in range(d) for k in range(i + 1, d))


def _angles(a, b):
    """``(t, pi - t)``: atan2(|a ^ b|, +-a.b), Lagrange's identity for |a ^ b|^2 (both accurate at
    every angle; ``pi - t`` is never formed by a subtraction)."""
    s, c = mpmath.sqrt(_cross2(a, b)), _dot(a, b)
    return mpmath.atan2(s, c), mpmath.atan2(s, -c)


def _angle(a, b):
    return _angles(a, b)[0]


def _kink_distance(a, b):
    """min(t, pi - t) = atan2(|a ^ b|, |a.b|)."""
    return mpmath.atan2(mpmath.sqrt(_cross2(a, b)), abs(_dot(a, b)))


def _norm(a):
    return mpmath.sqrt(_dot(a, a))


def pair_value(part, a, b):
    """The pair kernel ``P(a, b)``: E[relu(a.x) relu(b.x)] (L) or E[1{a.x>0}1{b.x>0}] a.b (J)."""
    t, ps = _angles(a, b)
    if part == "L":
        return _norm(a) * _norm(b) * (mpmath.sin(t) + ps * mpmath.cos(t)) / (2 * mpmath.pi)
    return _dot(a, b) * ps / (2 * mpmath.pi)


def pair_mean(part, w, z):
    """Mean-field pair term of row ``w`` from row ``z``: E[relu(z.x) 1{w.x>0} x] (L), E[1 1] z (J)."""
    t, ps = _angles(w, z)
    if part == "L":
        cz = ps / (2 * mpmath.pi)
        cw = _norm(z) * mpmath.sin(t) / (2 * mpmath.pi * _norm(w))
        return [cz * zi + cw * wi for zi, wi in zip(z, w)]
    c = ps / (2 * mpmath.pi)
    return [c * zi for zi in z]


def pair_autograd_L(a, b):
    """E[1{a.x>0} 1{b.x>0} x x^T] as a list of rows (module docstring)."""
    d = len(a)
    t, ps = _angles(a, b)
    e1 = [x / _norm(a) for x in a]
    bh = [x / _norm(b) for x in b]
    c, s = mpmath.cos(t), mpmath.sin(t)
    v = [y - c * x for x, y in zip(e1, bh)]  # sin t * e2 (exactly 0 at t = 0, pi)
    k = ps / (2 * mpmath.pi)
    out = [[k if i == m else mpmath.mpf(0) for m in range(d)] for i in range(d)]
    if s == 0:
        return out
    for i in range(d):
        for m in range(d):
            # sin t cos t (e1 e1^T - e2 e2^T) + sin^2 t (e1 e2^T + e2 e1^T), with v = sin t e2
            out[i][m] += (s * c * e1[i] * e1[m] - c / s * v[i] * v[m] + s * (e1[i] * v[m] + v[i] * e1[m])) / (
                2 * mpmath.pi)
    return out


def _shift(a, k, h):
    b = list(a)
    b[k] += h
    return b


def _shift2(a, k, hk, m, hm):
    b = list(a)
    b[k] += hk
    b[m] += hm
    return b


def _fd_grad(f, a, h):
    return [(f(_shift(a, k, h)) - f(_shift(a, k, -h))) / (2 * h) for k in range(len(a))]


def _fd_hess(f, a, h):
    """Symmetric second differences ``[f(a+h e_k+h e_m) - f(a+h e_k-h e_m) - f(a-h e_k+h e_m) + f(a-h e_k-h e_m)]/(4h^2)``."""
    d = len(a)
    H = [[None] * d for _ in range(d)]
    for k in range(d):
        for m in range(k, d):
            v = (f(_shift2(a, k, h, m, h)) - f(_shift2(a, k, h, m, -h)) - f(_shift2(a, k, -h, m, h))
                 + f(_shift2(a, k, -h, m, -h))) / (4 * h * h)
            H[k][m] = H[m][k] = v
    return H


def _fd_mixed(f, a, ha, b, hb):
    """``d^2 f / da_k db_m`` by central differences in both arguments."""
    d = len(a)
    return [[(f(_shift(a, k, ha), _shift(b, m, hb)) - f(_shift(a, k, ha), _shift(b, m, -hb))
              - f(_shift(a, k, -ha), _shift(b, m, hb)) + f(_shift(a, k, -ha), _shift(b, m, -hb))) / (4 * ha * hb)
             for m in range(d)] for k in range(d)]


def _fd_jac(f, a, h):
    """Jacobian ``[i][m] = d f_i / d a_m`` of a vector function by central differences."""
    d = len(a)
    cols = [[(p - q) / (2 * h) for p, q in zip(f(_shift(a, m, h)), f(_shift(a, m, -h)))] for m in range(d)]
    return [[cols[m][i] for m in range(d)] for i in range(len(cols[0]))]


def _eye(d, c):
    return [[c if i == m else mpmath.mpf(0) for m in range(d)] for i in range(d)]


class Reference:
    """High-precision values (and term scales) of every object at one float configuration.

    ``value(kind, part, field)`` -> (mp value, mp scale):
      loss:     scalar value, scalar scale (sum of |pair terms|);
      gradient: K rows of d values, per-row scale (sum over the row's terms of ||term||_inf);
      hessian:  K x K blocks (lists of d rows), per-block scale (sum of ||term||_max).
    """

    def __init__(self, W, Ws, rows=None, base_dps=60):
        """``rows``: the rows of ``[W; W*]`` as mpf lists when they are not the float inputs (a
        perturbed configuration, see :meth:`sensitivity`); ``W``, ``Ws`` are then only its shape."""
        self.W = np.asarray(W, dtype=np.float64)
        self.Ws = np.asarray(Ws, dtype=np.float64)
        self.K, self.d = self.W.shape
        self.kinks = _exact_kinks(self.W, self.Ws) if rows is None else set()
        with mpmath.workdps(base_dps):
            Z = _mp_rows(self.W) + _mp_rows(self.Ws) if rows is None else rows
            # theta_min: the smallest non-zero distance of the angle of a pair (student, any row) to 0 or pi
            th = mpmath.mpf(1)
            for j in range(self.K):
                for q in range(len(Z)):
                    if q != j and (j, q) not in self.kinks:
                        th = min(th, _kink_distance(Z[j], Z[q]))
        self.theta_min = th
        lt = max(0.0, -float(mpmath.log10(th)))
        self.log_inv_delta = max(30, math.ceil(15 + lt))
        self.dps = max(base_dps, 40 + 2 * self.log_inv_delta + math.ceil(lt))
        with mpmath.workdps(self.dps):
            self.Z = _mp_rows(self.W) + _mp_rows(self.Ws) if rows is None else rows
            self.s = [1] * self.K + [-1] * len(self.Ws)
            self.delta = mpmath.mpf(10) ** (-self.log_inv_delta)
        self._cache = {}
        self._perturbed = None

    # ------------------------------------------------------------------ helpers
    def exists(self, kind, field):
        """Whether the J part of the object exists (no exact kink)."""
        return not ((kind, field) in KINK_OBJECTS and self.kinks)

    def sensitivity(self, kind, part, field):
        """``max_R |F(Z + eta |z| R) - F(Z)| / eta`` per row (gradient) / block (matrix), over
        ``N_DIRECTIONS`` random perturbations (seeded) of each row ``z`` by ``eta |z| r``, ``r``
        with entries in [-1, 1]: the first-order change of the exact object under a normwise
        relative change of every row, i.e. what a (row-wise normwise) backward-stable evaluation
        may err by, divided by eps: the condition number times the size.  ``eta = 1e-12 theta_min``:
        second-order terms are ~1e-12 of it."""
        if self._perturbed is None:
            rng = np.random.default_rng(12345)
            eta_log = 12 + math.ceil(-float(mpmath.log10(self.theta_min)))
            self._eta = mpmath.mpf(10) ** (-eta_log)
            self._perturbed = []
            for _ in range(N_DIRECTIONS):
                R = rng.uniform(-1.0, 1.0, (len(self.Z), self.d))
                dps = self.dps + eta_log + 20
                with mpmath.workdps(dps):
                    rows = [[z + self._eta * _norm(zr) * mpmath.mpf(float(r)) for z, r in zip(zr, Rr)]
                            for zr, Rr in zip(self.Z, R)]
                self._perturbed.append(Reference(self.W, self.Ws, rows=rows, base_dps=dps))
        base = self.value(kind, part, field)[0]
        out = None
        for ref in self._perturbed:
            with mpmath.workdps(ref.dps):
                diff = _blockmax(_sub(ref.value(kind, part, field)[0], base), kind, self.d)
                diff = _apply(lambda x: x / self._eta, diff)
            out = diff if out is None else _apply2(max, out, diff)
        return out

    def value(self, kind, part, field=None):
        key = (kind, part, field)
        if key not in self._cache:
            if part == "H":
                (vL, sL), (vJ, sJ) = self.value(kind, "L", field), self.value(kind, "J", field)
                with mpmath.workdps(self.dps):
                    self._cache[key] = (_add(vL, vJ), _add(sL, sJ))
            else:
                with mpmath.workdps(self.dps):
                    self._cache[key] = getattr(self, f"_{kind}")(part, field)
        return self._cache[key]

    # ------------------------------------------------------------------ objects of L or J
    def _loss(self, part, field):
        Z, s = self.Z, self.s
        terms = [s[p] * s[q] * pair_value(part, Z[p], Z[q]) / 2 for p in range(len(Z)) for q in range(len(Z))]
        return mpmath.fsum(terms), mpmath.fsum(abs(t) for t in terms)

    def _row_terms(self, part, field, j):
        """The terms of row j of a gradient field: its own ``w_j/2`` and one per other row."""
        Z, s = self.Z, self.s
        w = Z[j]
        terms = [[x / 2 for x in w]]
        h = self.delta * _norm(w)
        for q in range(len(Z)):
            if q == j:
                continue
            if field == "mean":
                t = pair_mean(part, w, Z[q])
            else:
                t = _fd_grad(lambda a, z=Z[q]: pair_value(part, a, z), w, h)
            terms.append([s[q] * x for x in t])
        return terms

    def _gradient(self, part, field):
        rows, scales = [], []
        for j in range(self.K):
            terms = self._row_terms(part, field, j)
            rows.append([mpmath.fsum(t[k] for t in terms) for k in range(self.d)])
            scales.append(mpmath.fsum(max(abs(x) for x in t) for t in terms))
        return rows, scales

    def _block_terms(self, part, field, j, l):
        Z, s, d = self.Z, self.s, self.d
        w = Z[j]
        h = self.delta * _norm(w)
        if field == "autograd":
            if j == l:
                return [_eye(d, mpmath.mpf(1) / 2)]
            if part == "L":
                return [pair_autograd_L(w, Z[l])]
            return [_eye(d, _angles(w, Z[l])[1] / (2 * mpmath.pi))]
        if j != l:
            hl = self.delta * _norm(Z[l])
            if field == "true":
                return [_fd_mixed(lambda a, b: pair_value(part, a, b), w, h, Z[l], hl)]
            return [_fd_jac(lambda b: pair_mean(part, w, b), Z[l], hl)]
        terms = [_eye(d, mpmath.mpf(1) / 2)]
        for q in range(len(Z)):
            if q == j:
                continue
            if field == "true":
                m = _fd_hess(lambda a, z=Z[q]: pair_value(part, a, z), w, h)
            else:
                m = _fd_jac(lambda a, z=Z[q]: pair_mean(part, a, z), w, h)
            terms.append([[s[q] * x for x in row] for row in m])
        return terms

    def _hessian(self, part, field):
        K, d = self.K, self.d
        blocks = [[None] * K for _ in range(K)]
        scales = [[None] * K for _ in range(K)]
        for j in range(K):
            for l in range(K):
                terms = self._block_terms(part, field, j, l)
                blocks[j][l] = [[mpmath.fsum(t[i][m] for t in terms) for m in range(d)] for i in range(d)]
                scales[j][l] = mpmath.fsum(max(abs(x) for row in t for x in row) for t in terms)
        return blocks, scales


def _add(x, y):
    return _apply2(lambda a, b: a + b, x, y)


def _sub(x, y):
    return _apply2(lambda a, b: a - b, x, y)


def _apply(f, x):
    return [_apply(f, a) for a in x] if isinstance(x, list) else f(x)


def _apply2(f, x, y):
    return [_apply2(f, a, b) for a, b in zip(x, y)] if isinstance(x, list) else f(x, y)


def _blockmax(v, kind, d):
    """|v| reduced like the scales: scalar (loss), max per row (gradient), max per block (Hessian)."""
    if kind == "loss":
        return abs(v)
    if kind == "gradient":
        return [max(abs(x) for x in row) for row in v]
    return [[max(abs(x) for r in blk for x in r) for blk in brow] for brow in v]


# =============================================================================== comparison
def _call(kind, W, Ws, part, field):
    try:
        if kind == "loss":
            return numerics.loss(W, Ws, part)
        return getattr(numerics, kind)(W, Ws, part, field)
    except ValueError as exc:
        return exc


def _name(kind, part, field):
    return f"{kind}({part}{', ' + field if field else ''})"


def _max_abs(v):
    if isinstance(v, list):
        return max(_max_abs(x) for x in v)
    return abs(v)


def check_object(ref: Reference, kind, part, field, got=None):
    """Failures (strings) of one object at ``ref``'s configuration; ``[]`` when it passes."""
    name = _name(kind, part, field)
    W, Ws = ref.W, ref.Ws
    if got is None:
        got = _call(kind, W, Ws, part, field)
    if not isinstance(got, Exception) and not np.all(np.isfinite(got)):
        return [f"{name}: non-finite result {got!r} for finite input"]
    exists = part == "L" or ref.exists(kind, field)
    if not exists:
        return [] if isinstance(got, ValueError) else [f"{name}: returned a value at an exact kink (must raise)"]
    val, scale = ref.value(kind, part, field)
    with mpmath.workdps(ref.dps):
        big = _max_abs(val)
        if big >= OVERFLOW_AT:
            return [] if isinstance(got, ValueError) else [f"{name}: exact result {mpmath.nstr(big, 5)} overflows; "
                                                            f"got {got!r} instead of ValueError"]
        if isinstance(got, ValueError):
            if _refusal_allowed_by_span(W, Ws) or big >= DBL_MAX * (1 - 1e-10):
                return []
            # the documented limit (README, Guarantees): an angle that rounds to zero in float64 counts
            # as a kink for the objects that do not exist at one
            if (part != "L" and (kind, field) in KINK_OBJECTS and "below the smallest float64 angle" in str(got)
                    and ref.theta_min < mpmath.mpf(2) ** -1074):
                return []
            return [f"{name}: ValueError ({got}) but the exact result exists and is representable "
                    f"(max |entry| {mpmath.nstr(big, 5)})"]
        return _compare(ref, kind, part, field, np.asarray(got, dtype=np.float64), val, scale, name)


def _compare(ref, kind, part, field, got, val, scale, name):
    """Entry-wise ``|got - val| <= C eps (scale + sensitivity) + ATOL_SUB`` (module docstring).

    The sensitivity (three more reference evaluations) is only computed for an object whose
    error exceeds the bound without it."""
    C = {"loss": C_LOSS, "gradient": C_VEC, "hessian": C_MAT}[kind]
    d = ref.d
    if kind == "loss":
        entries = [((), float(got), val)]
    elif kind == "gradient":
        entries = [((j,), got[j, k], val[j][k]) for j in range(ref.K) for k in range(d)]
    else:
        entries = [((j, l), got[j * d + i, l * d + m], val[j][l][i][m])
                   for j in range(ref.K) for l in range(ref.K) for i in range(d) for m in range(d)]
    errors = [(idx, g, v, abs(mpmath.mpf(float(g)) - v)) for idx, g, v in entries]

    def worst(sens):
        out = None
        for idx, g, v, err in errors:
            tol = C * EPS * (_index(scale, idx) + (_index(sens, idx) if sens is not None else 0)) + ATOL_SUB
            if err > tol and (out is None or err / tol > out[0]):
                out = (err / tol, idx, g, v, err, tol)
        return out

    bad = worst(None)
    if bad is not None:
        bad = worst(ref.sensitivity(kind, part, field))
    if bad is None:
        return []
    ratio, idx, g, v, err, tol = bad
    return [f"{name}: entry {idx}: got {float(g)!r}, exact {mpmath.nstr(v, 17)}, |err| {mpmath.nstr(err, 3)} = "
            f"{mpmath.nstr(ratio, 3)} x tolerance {mpmath.nstr(tol, 3)}"]


def _index(x, idx):
    for i in idx:
        x = x[i]
    return x


ALL_OBJECTS = ([("loss", p, None) for p in PARTS] + [("gradient", p, f) for p in PARTS for f in ("mean", "true")]
               + [("hessian", p, f) for p in PARTS for f in ("true", "mean", "autograd")])


# =============================================================================== strategies
# how a row relates to an earlier one: free (a new direction), within 1e-15 .. 1e-6 rad of
# parallel / anti-parallel, exactly (anti-)parallel (a power-of-two multiple), a duplicate, a
# multiple rounded to float64 (angle 0 or ~1e-16), a few ulps off in one entry, or a zero entry
# made subnormal (angles down to 2**-1074: the end of the float64 range)
RELATIONS = ("free", "near0", "nearpi", "parallel", "antiparallel", "duplicate", "rounded", "ulp", "subnormal")
FREE_KINDS = ("gauss", "gauss", "axis", "spread")

# exponent e of a row's size 2**e: mostly moderate, also anywhere in [-1000, 1000], next to
# overflow (~1e300 .. 1e307) and next to the subnormal range (~1e-300 .. 1e-307)
ROW_EXPONENTS = st.one_of(
    st.integers(-3, 3), st.integers(-60, 60), st.integers(-1000, 1000), st.integers(990, 1020),
    st.integers(-1020, -990),
)
OVERALL_EXPONENTS = st.one_of(st.just(0), st.integers(-60, 60), st.integers(-1000, 1000))
TINY_ANGLES = st.floats(-15.0, -6.0).map(lambda u: 10.0**u)  # 1e-15 .. 1e-6


def _unit(v):
    v = v / np.abs(v).max()  # first to O(1): the norm of a row of ~1e-310 or ~1e307 is not representable
    return v / np.linalg.norm(v)


def _orthogonal_unit(rng, a):
    """A unit vector orthogonal to ``a`` (in d = 2: ``a`` turned by a right angle)."""
    if len(a) == 2:
        return _unit(np.array([-a[1], a[0]]))
    ah = _unit(a)
    v = rng.standard_normal(len(a))
    v = v - (v @ ah) * ah
    v = v - (v @ ah) * ah
    return _unit(v)


def _free_row(draw, rng, d):
    kind = draw(st.sampled_from(FREE_KINDS))
    if kind == "gauss":
        return _unit(rng.standard_normal(d))
    if kind == "axis":  # a signed basis vector, sometimes with a second entry: exact zeros
        z = np.zeros(d)
        k = rng.integers(d)
        z[k] = rng.choice([-1.0, 1.0])
        if rng.random() < 0.5:
            z[(k + 1) % d] = rng.standard_normal()
        return z
    # entries of wildly different sizes (down to the subnormal range) within one row
    span = draw(st.integers(1, 1060))
    z = np.ldexp(rng.standard_normal(d), -rng.integers(0, span + 1, d))
    z[rng.integers(d)] = rng.choice([-1.0, 1.0])
    return z


@st.composite
def configurations(draw, dims=st.sampled_from([2, 3, 4]), max_k=2, extreme=True):
    """``(W, W_star)``: rows of ``Z = [W; W*]`` built one after another, each either free or in a
    relation (``RELATIONS``) to an earlier row, with sizes ``2**e`` (``ROW_EXPONENTS``) and an
    overall scale ``2**E``."""
    d = draw(dims)
    K = draw(st.integers(1, max_k))
    Ks = draw(st.integers(1, max_k))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    row_exp = ROW_EXPONENTS if extreme else st.integers(-3, 3)
    overall = draw(OVERALL_EXPONENTS) if extreme else 0
    Z = []
    for i in range(K + Ks):
        rel = "free" if i == 0 else draw(st.sampled_from(RELATIONS))
        e = min(max(draw(row_exp) + overall, -1030), 1020)
        if rel == "free":
            z = np.ldexp(_free_row(draw, rng, d), e)
        else:
            r = Z[draw(st.integers(0, i - 1))]
            sign = -1.0 if rel == "antiparallel" else 1.0
            if rel in ("near0", "nearpi"):
                t = draw(TINY_ANGLES)
                c = math.cos(t) if rel == "near0" else -math.cos(t)
                z = np.ldexp(c * _unit(r) + math.sin(t) * _orthogonal_unit(rng, r), e)
            elif rel in ("parallel", "antiparallel", "ulp", "subnormal"):
                p = draw(st.integers(-40, 40) if extreme else st.integers(-3, 3))
                with np.errstate(over="ignore", under="ignore"):
                    z = np.ldexp(sign * r, p)
                    if not np.array_equal(np.ldexp(z, -p), sign * r):
                        z = sign * r  # not exact at that scale: the plain copy
                k = draw(st.integers(0, d - 1))
                if rel == "ulp":  # a few ulps off in one entry
                    for _ in range(draw(st.integers(1, 4))):
                        z[k] = np.nextafter(z[k], draw(st.sampled_from([-np.inf, np.inf])))
                elif rel == "subnormal":  # a zero entry (or the smallest one) becomes / moves by a subnormal
                    zeros = np.flatnonzero(z == 0)
                    k = zeros[k % len(zeros)] if len(zeros) else int(np.argmin(np.abs(z)))
                    tiny = draw(st.integers(1, 8)) * 2.0 ** (draw(st.integers(0, 60)) - 1074)
                    z[k] = z[k] + draw(st.sampled_from([-1.0, 1.0])) * tiny
            elif rel == "duplicate":
                z = r.copy()
            else:  # a multiple rounded to float64: angle exactly 0 or ~1e-16
                with np.errstate(over="ignore", under="ignore"):
                    z = r * draw(st.floats(0.1, 10.0).filter(lambda c: math.frexp(c)[0] != 0.5))
        assume(np.all(np.isfinite(z)) and np.any(z != 0))
        Z.append(z)
    Z = np.array(Z)
    return Z[:K].copy(), Z[K:].copy()


def _describe(W, Ws):
    return f"W = {W.tolist()!r}, W_star = {Ws.tolist()!r}"


def _check_all(W, Ws, objects=ALL_OBJECTS):
    ref = Reference(W, Ws)
    failures = []
    for obj in objects:
        failures += check_object(ref, *obj)
    assert not failures, "\n".join(failures) + "\n" + _describe(W, Ws)


# =============================================================================== reference sanity
def test_reference_is_self_consistent():
    """The reference agrees with tests/test_precision.py's 50-digit one (loss, mean field) and with
    the identities of L: true gradient == mean field, true Hessian == Jacobian of the mean field."""
    import test_precision as tp

    rng = np.random.default_rng(11)
    cases = [(rng.standard_normal((2, 3)), rng.standard_normal((2, 3))),
             (np.array([[1.0, 0.0]]), -1e6 * np.array([[math.cos(1e-12), math.sin(1e-12)]])),
             (np.array([[1.0, 0.3, -0.2]]), np.array([[1.0, 0.3 + 1e-9, -0.2]]))]
    for W, Ws in cases:
        ref = Reference(W, Ws)
        with mpmath.workdps(ref.dps):
            for p in PARTS:
                v = ref.value("loss", p)[0]
                assert abs(v - tp.ref_loss(W, Ws, p)) <= mpmath.mpf(10) ** -45 * ref.value("loss", p)[1]
                mf = tp.ref_mean_field(W, Ws, p)
                mine, sc = ref.value("gradient", p, "mean")
                for j in range(ref.K):
                    assert max(abs(a - b) for a, b in zip(mine[j], mf[j])) <= mpmath.mpf(10) ** -45 * sc[j]
            g_true, sc = ref.value("gradient", "L", "true")
            g_mean = ref.value("gradient", "L", "mean")[0]
            for j in range(ref.K):
                assert max(abs(a - b) for a, b in zip(g_true[j], g_mean[j])) <= mpmath.mpf(10) ** -25 * sc[j]
            h_true, sc = ref.value("hessian", "L", "true")
            h_mean = ref.value("hessian", "L", "mean")[0]
            for j in range(ref.K):
                for l in range(ref.K):
                    diff = max(abs(a - b) for ra, rb in zip(h_true[j][l], h_mean[j][l]) for a, b in zip(ra, rb))
                    assert diff <= mpmath.mpf(10) ** -25 * sc[j][l]


# =============================================================================== cheap properties
def _objects_of(W, Ws):
    return {obj: _call(obj[0], W, Ws, obj[1], obj[2]) for obj in ALL_OBJECTS}


def _min_kink_distance(W, Ws):
    """The smallest non-zero min(t, pi - t) over the pairs (student, other row); 1 if none."""
    Z = np.vstack([W, Ws])
    out = 1.0
    with mpmath.workdps(60):
        rows = _mp_rows(Z)
        for j in range(len(W)):
            for q in range(len(Z)):
                if q != j:
                    t = _kink_distance(rows[j], rows[q])
                    if t > 0:
                        out = min(out, float(t))  # may round to 0.0 below 2**-1074: still "not a kink"
    return out


def _check_finite_or_value_error(W, Ws):
    """Cheap (no reference): every object finite or ValueError; the kink objects raise at an exact
    kink; a loss is >= 0 (an expectation of a square); and at a moderate configuration (entries
    below 2**400, sizes within 2**400 of each other) nothing raises without a reason: a kink, or,
    for the true Hessian of J and H in d >= 3 (~ |w*| / (|w| theta)), a pair within 2**-400 rad of one."""
    kinks = _exact_kinks(W, Ws)
    moderate = float(np.abs(np.vstack([W, Ws])).max()) < 2.0**400 and _span_log2(W, Ws) < 400
    tiny_angle = _min_kink_distance(W, Ws) < 2.0**-400
    # the documented limit: a non-zero angle that rounds to zero in float64 (at most 2**-1075) counts
    # as a kink (_min_kink_distance rounds the exact angle to a float: 0.0 exactly then)
    below_float64 = _min_kink_distance(W, Ws) == 0.0
    failures = []
    for (kind, part, field), got in _objects_of(W, Ws).items():
        name = _name(kind, part, field)
        kink_object = part != "L" and (kind, field) in KINK_OBJECTS
        if isinstance(got, ValueError):
            if kink_object and (kinks or (below_float64 and "below the smallest float64 angle" in str(got))):
                continue
            if kink_object and (kind, field) == ("hessian", "true") and np.shape(W)[1] > 2 and tiny_angle:
                continue
            if moderate:
                failures.append(f"{name}: ValueError at a moderate configuration without a kink: {got}")
        elif not np.all(np.isfinite(got)):
            failures.append(f"{name}: non-finite result {got!r}")
        elif kink_object and kinks:
            failures.append(f"{name}: returned a value at an exact kink {sorted(kinks)} (must raise ValueError)")
        elif kind == "loss" and got < 0:
            failures.append(f"{name}: negative loss {got!r}")
    assert not failures, "\n".join(failures) + "\n" + _describe(W, Ws)


@given(configurations())
def test_finite_or_value_error(cfg):
    _check_finite_or_value_error(*cfg)


@pytest.mark.slow
@settings(max_examples=3000)
@given(configurations())
def test_finite_or_value_error_slow(cfg):
    _check_finite_or_value_error(*cfg)


DEGREES = {"loss": 2, "gradient": 1, "hessian": 0}


def _exact_scaling(A, p):
    """``A * 2**p`` when that is exact (no entry leaves the float64 range or loses bits), else None."""
    with np.errstate(over="ignore"):
        B = np.ldexp(A, p)
    if not np.all(np.isfinite(B)) or not np.array_equal(np.ldexp(B, -p), A):
        return None
    return B


def _scaled_exactly(x, q):
    """``x * 2**q`` when every entry stays normal (or zero) and the scaling is exact both ways, else None."""
    x = np.asarray(x, dtype=np.float64)
    with np.errstate(over="ignore", under="ignore"):
        y = np.ldexp(x, q)
        back = np.ldexp(y, -q)
    ok = np.all(np.isfinite(y)) and np.array_equal(back, x)
    ok = ok and all(bool(np.all((v == 0) | (np.abs(v) >= 2.0**-1022))) for v in (x, y))
    return y if ok else None


def _check_homogeneity(W, Ws, exponents):
    """``F(2**p W, 2**p W*) == 2**(deg p) F(W, W*)`` bit for bit.

    Why exactly: the library scales its inputs by a power of two (exact) and undoes it on the
    result; every operation in between (products, sums, sqrt, divisions, the angles from
    normalised cosines or exact integers) commutes exactly with a power-of-two scaling unless a
    value leaves the normal range.  Checked where both inputs scale exactly and both results are
    normal (or zero) and map onto each other exactly; a ValueError must be raised at both scales
    or at none, unless the value returned at one scale is out of the normal range at the other.
    """
    base = _objects_of(W, Ws)
    failures = []
    for p in exponents:
        sW, sWs = _exact_scaling(W, p), _exact_scaling(Ws, p)
        if sW is None or sWs is None:
            continue
        for (kind, part, field), got in base.items():
            other = _call(kind, sW, sWs, part, field)
            name = f"{_name(kind, part, field)} at scale 2**{p}"
            q = DEGREES[kind] * p
            if isinstance(got, ValueError) or isinstance(other, ValueError):
                if isinstance(got, ValueError) and isinstance(other, ValueError):
                    continue
                value, q_to = (other, -q) if isinstance(got, ValueError) else (got, q)
                if _scaled_exactly(value, q_to) is None:
                    continue  # out of range (or subnormal) at the other scale: a refusal may be right
                failures.append(f"{name}: ValueError at one scale only ({got if isinstance(got, ValueError) else other})")
                continue
            expected = _scaled_exactly(got, q)
            if expected is None or _scaled_exactly(other, -q) is None:
                continue  # a result that under- or overflows at one of the scales
            if not np.array_equal(expected, np.asarray(other)):
                diff = np.abs(expected - other)
                ulps = float(np.max(diff / np.spacing(np.maximum(np.abs(expected), 2.0**-1022))))
                failures.append(f"{name}: not bit for bit ({ulps:.3g} ulps)")
    assert not failures, "\n".join(failures) + "\n" + _describe(W, Ws)


@given(configurations(), st.integers(-1100, 1100))
def test_homogeneity_bit_for_bit(cfg, p):
    _check_homogeneity(*cfg, exponents=(500, -500, p))


@pytest.mark.slow
@settings(max_examples=1500)
@given(configurations(), st.integers(-1100, 1100))
def test_homogeneity_bit_for_bit_slow(cfg, p):
    _check_homogeneity(*cfg, exponents=(500, -500, p, 1, -1))


def _pair_kink_distance(a, b):
    """min(t, pi - t) of two float rows, in mpmath from the exact inputs (0 when exactly (anti)parallel)."""
    with mpmath.workdps(60):
        am, bm = _mp_rows(a)[0], _mp_rows(b)[0]
        return float(_kink_distance(am, bm))


def _check_symmetry(W, Ws):
    """Every true Hessian is symmetric: ``|H_jl - H_lj^T|_max <= tol * scale_jl`` block-wise.

    The exact matrix is symmetric, so the asymmetry is bounded by twice the evaluation error,
    whose bound (module docstring) is relative to the *terms* of a block, not to its possibly
    cancelling sum: ``scale_jl = max(|H_jl|, |H_lj|)`` off the diagonal (one pair term each) and
    ``sum_q |hessian([w_j], [z_q])|_max`` on it (each pair's term plus the self term I/2: a cheap
    upper estimate of the pair's size).  ``tol``: in d = 2, and for L, where every pair term is
    smooth up to the kink, a few ulps, so SYM_RTOL = 1e-12 (~5000 eps) is generous; for J and H in
    d >= 3 the pair terms are ~cot(theta) (I - e1 e1^T - e2 e2^T) with the direction e2 of one row
    orthogonal to the other conditioned like 1/theta, so ``tol = SYM_RTOL + 64 eps / theta``
    (theta: the smallest distance to a kink of a pair of row j or row l).
    """
    K, d = np.shape(W)
    Z = np.vstack([W, Ws])
    failures = []
    for part in PARTS:
        H = _call("hessian", W, Ws, part, "true")
        if isinstance(H, ValueError):
            continue
        B = H.reshape(K, d, K, d)
        for j in range(K):
            for l in range(j, K):
                a, b = B[j, :, l, :], B[l, :, j, :].T
                if j != l:
                    scale = max(np.abs(a).max(), np.abs(b).max())
                else:
                    scale = sum(np.abs(_call("hessian", W[j:j + 1], Z[q:q + 1], part, "true")).max()
                                for q in range(len(Z)) if q != j)
                tol = SYM_RTOL
                if d > 2 and part != "L":
                    th = min(_pair_kink_distance(W[r], Z[q]) for r in {j, l} for q in range(len(Z)) if q != r)
                    tol += 64 * EPS / th
                err = np.abs(a - b).max()
                if err > tol * float(scale):  # Python floats: a bound beyond DBL_MAX (angle ~1e-320) is inf, silently
                    failures.append(f"true Hessian of {part}: blocks ({j},{l}) vs ({l},{j})^T differ by {err:.3g}, "
                                    f"{err / scale:.3g} of the terms' scale {scale:.3g} (bound {tol:.3g})")
    assert not failures, "\n".join(failures) + "\n" + _describe(W, Ws)


@given(configurations())
def test_true_hessian_symmetric(cfg):
    _check_symmetry(*cfg)


@pytest.mark.slow
@settings(max_examples=2000)
@given(configurations())
def test_true_hessian_symmetric_slow(cfg):
    _check_symmetry(*cfg)


def test_true_hessian_symmetric_next_to_overflow_d3():
    """d = 3, a teacher ``2**-20`` times the student and ``1.1e-315`` rad from parallel to it: the true Hessians of J
    and H have entries ~1.35e308 (~ |w*| / (|w| theta), just inside float64) and are symmetric.  Found by the slow
    variant under warnings as errors: the symmetry bound ``(64 eps / theta) * scale`` itself overflowed (a NumPy
    warning from this harness, not from the library); the bound is now taken in Python floats (inf, silently)."""
    W = np.array([[0.625, 0.0, 1.0]])
    Ws = np.array([[0.625 * 2.0**-20, -1.26480805e-321, 2.0**-20]])
    for part in ("J", "H"):
        assert 1e308 < np.abs(numerics.hessian(W, Ws, part, "true")).max() < DBL_MAX
    _check_symmetry(W, Ws)


# =============================================================================== accuracy (mpmath)
@settings(max_examples=8, phases=FAST_PHASES)
@given(configurations(dims=st.just(2)))
def test_accuracy_d2(cfg):
    """d = 2: every object against the reference; no amplification near a kink (module docstring)."""
    _check_all(*cfg)


@settings(max_examples=6, phases=FAST_PHASES)
@given(configurations(dims=st.sampled_from([3, 4])))
def test_accuracy_d3_d4(cfg):
    _check_all(*cfg)


@settings(max_examples=6, phases=FAST_PHASES)
@given(configurations(extreme=False))
def test_accuracy_moderate_sizes(cfg):
    """Sizes within 2**-3 .. 2**3 of each other: only the angles are adversarial."""
    _check_all(*cfg)


@pytest.mark.slow
@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(configurations(dims=st.just(2)))
def test_accuracy_d2_slow(cfg):
    _check_all(*cfg)


@pytest.mark.slow
@settings(max_examples=250, suppress_health_check=[HealthCheck.too_slow])
@given(configurations(dims=st.sampled_from([3, 4])))
def test_accuracy_d3_d4_slow(cfg):
    _check_all(*cfg)


@pytest.mark.slow
@settings(max_examples=250, suppress_health_check=[HealthCheck.too_slow])
@given(configurations(extreme=False))
def test_accuracy_moderate_sizes_slow(cfg):
    _check_all(*cfg)


# =============================================================================== regressions
def _mp_matrix(blocks, d):
    """The K x K blocks of a reference matrix as one float64 (K d, K d) array (for messages)."""
    K = len(blocks)
    return np.array([[float(blocks[j][l][i][m]) for l in range(K) for m in range(d)] for j in range(K) for i in range(d)])


def test_regression_a_true_hessian_of_J_anti_parallel_d2():
    """(a) |w*|/|w| = 1e6, psi = 1e-12, d = 2: the true Hessian of J is I/2 minus ~3e-7 (the
    pair's term ~ |w*| psi / |w|), not the zero matrix; every other Hessian right too (the true
    gradient at this point: test_true_gradient_of_J_near_kink_d2)."""
    W = np.array([[1.0, 0.0]])
    Ws = -1e6 * np.array([[math.cos(1e-12), math.sin(1e-12)]])
    ref = Reference(W, Ws)
    expected = _mp_matrix(ref.value("hessian", "J", "true")[0], 2)
    # second differences of the population J at 100+ digits: ~ diag(1/2, 1/2 - 3.18e-7)
    np.testing.assert_allclose(expected, [[0.5, 0.0], [0.0, 0.5 - 3.1830988618e-7]], rtol=0, atol=1e-15)
    failures = [f for obj in ALL_OBJECTS if obj[0] == "hessian" for f in check_object(ref, *obj)]
    assert not failures, "\n".join(failures)


def test_regression_a_true_hessian_of_H_near_kink_symmetric_d2():
    """(a) d = 2, w* = 2 w up to one ulp (angle ~1e-16): the true Hessians of J and H are
    symmetric and right (an earlier version returned blocks 25% asymmetric)."""
    W = np.array([[0.9687508511382358, -1.7497204886549576]])
    Ws = np.array([[1.9375017022764716, -3.4994409773099155]])
    _check_symmetry(W, Ws)
    ref = Reference(W, Ws)
    failures = [f for obj in ALL_OBJECTS if obj[0] == "hessian" for f in check_object(ref, *obj)]
    assert not failures, "\n".join(failures)


B_SCALES = [1e-150, 1e-156, 1e-158, 1e-160, 1e-161, 1e-162, 1e-200, 1e-250, 1e-280]


@pytest.mark.parametrize("s", B_SCALES)
def test_regression_b_tiny_row(s):
    """(b) one row ~s times the largest entry: the gradient of that row (and every other object)
    keeps its digits; a refusal only beyond the documented span (2**SPAN_REFUSAL_LOG2 / d)."""
    u = np.array([0.5, -0.5, 0.5, 0.5])
    W = np.array([[1.0, 0.3, -0.2, 0.4], s * u])
    Ws = np.array([[0.3, 1.0, 0.2, -0.5], [-0.7, 0.1, 0.9, 0.2]])
    ref = Reference(W, Ws)
    got = _call("gradient", W, Ws, "L", "mean")  # row 1: the reported object, ~(0.357, -0.019, -0.436, 0.069)
    if isinstance(got, ValueError):
        assert _refusal_allowed_by_span(W, Ws), got
    else:
        exact = [float(x) for x in ref.value("gradient", "L", "mean")[0][1]]
        np.testing.assert_allclose(got[1], exact, rtol=1e-13, atol=1e-15)
    failures = [f for obj in ALL_OBJECTS for f in check_object(ref, *obj)]
    assert not failures, "\n".join(failures)


def test_regression_c_gradient_near_overflow():
    """(c) rows ~1e308: the mean field of H is 1.824e308 (> DBL_MAX): ValueError, not inf; the
    true gradient of H is 1.768e308 (representable): finite and right; losses ~4e616: ValueError."""
    W = np.array([[1.1e308, 1.3e308]])
    Ws = np.array([[5e307, -9e307], [9e307, -1e308]])
    ref = Reference(W, Ws)
    with mpmath.workdps(ref.dps):
        assert _max_abs(ref.value("gradient", "H", "mean")[0]) > DBL_MAX
        assert _max_abs(ref.value("gradient", "H", "true")[0]) < DBL_MAX
    with pytest.raises(ValueError):
        numerics.gradient(W, Ws, "H", "mean")
    failures = [f for obj in ALL_OBJECTS for f in check_object(ref, *obj)]
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("x", [1e155, 2.2e154, 2.3e154, 1e-160, 1e-170])
def test_regression_c_loss_overflow(x):
    """(c) L of orthogonal rows of size x is x^2 (1 - 1/pi) / 2: ValueError above DBL_MAX
    (x = 1e155: 3.4e309; was OverflowError), the right finite number below it (x = 2.2e154:
    1.65e308), and the right tiny or zero number at the bottom of the range."""
    W, Ws = np.array([[x, 0.0]]), np.array([[0.0, x]])
    ref = Reference(W, Ws)
    failures = [f for p in PARTS for f in check_object(ref, "loss", p, None)]
    assert not failures, "\n".join(failures)
    if x == 1e155:
        with pytest.raises(ValueError):
            numerics.loss(W, Ws, "L")


# =============================================================================== other findings
def test_true_gradient_of_J_near_kink_d2():
    """d = 2, |w*|/|w| = 1e6 at psi = 1e-12 from anti-parallel: the true gradient of J is
    (0.50000016, 159154.94); its first entry came out 0 (the boundary term
    -|b| cos(t) e2/(2 pi) assembled from ~1/psi coefficients of w^ and w*^ that cancel)."""
    W, Ws = np.array([[1.0, 0.0]]), np.array([[-1e6, 1e-6]])
    _check_all(W, Ws)


def test_true_gradient_of_J_rounded_multiple_d2():
    """d = 2, w* a rounded multiple of w (angle 1.35e-17): true gradient of J (-5.247, -5.683),
    came out (-2.82, -38.70)."""
    W = np.array([[0.7754272622019027, 1.8435597524989695]])
    Ws = np.array([[6.415277912426045, 15.252169657874125]])
    _check_all(W, Ws)


@pytest.mark.parametrize("d", [2, 3])
@pytest.mark.parametrize("tiny", [1e-50, 1e-61, 1e-100, 1e-300, 2.0**-1074])
def test_tiny_angle(d, tiny):
    """w = e1, w* = e1 + tiny e2: not a kink (angle = tiny), every object exists and is ~ its limit.
    Below ~2**-200 the library's exact angle came out 0.0 without the rows being flagged parallel
    (numerics.geometry keeps 200 bits of the cross term): true gradient of J NaN, true Hessian of
    J in d = 3 'beyond the float64 range' (1/0); a subnormal tiny is also lost by the prescaling
    (the largest entry is put in [0.5, 1)), and the Hessians raised 'exactly parallel'."""
    W = np.zeros((1, d))
    Ws = np.zeros((1, d))
    W[0, 0] = Ws[0, 0] = 1.0
    Ws[0, 1] = tiny
    _check_all(W, Ws)


def test_loss_is_never_negative():
    """A population loss is an expectation of a square.  Two students, one of them a copy of
    the teacher and the other a tiny exact multiple of it: the exact L = J = |w_0|^2 / 4 (~1.4e-17)
    came out negative (-7.8e-18): cancelling cross terms with error ~eps |W|^2."""
    u = np.array([0.3, 0.4, -0.5, 0.7])
    W, Ws = np.array([2.0**-27 * u, u]), np.array([u])
    values = {p: numerics.loss(W, Ws, p) for p in PARTS}
    assert all(v >= 0 for v in values.values()), values


def test_e2_side_from_an_underflowing_determinant_d2():
    """d = 2, w = (0, -1/2), w* = (-2**-1074, -1/2): the side of e2 is the sign of det(w, w*) =
    -2**-1075, which is not representable (it rounds to -0.0).  The true gradient of J is
    (+1/(4 pi), 0) and the mean Jacobian of J has -1/(2 pi) in its (0, 0) entry; both came out
    with the opposite sign, while at 2 w, 2 w* (det -2**-1073) they were right."""
    W, Ws = np.array([[0.0, -0.5]]), np.array([[-(2.0**-1074), -0.5]])
    _check_all(W, Ws)
    _check_homogeneity(W, Ws, exponents=(1, 2, 500))


def test_homogeneity_at_an_angle_of_4e_54_d2():
    """d = 2, w* a rounded multiple 5 w of w (angle 4.2e-54): at scale 2**-500 det(w, w*) leaves
    the normal range and the true gradient of J changed sign in one entry (1.4e16 ulps)."""
    W = np.array([[-1125899906842624.0, 1.3595338681207066e-22]])
    Ws = np.array([[-5629499534213120.0, 6.797669340603533e-22]])
    _check_homogeneity(W, Ws, exponents=(-500, 500))
    _check_all(np.ldexp(W, -500), np.ldexp(Ws, -500), [o for o in ALL_OBJECTS if o[0] == "gradient"])


def test_angle_below_the_float64_range_d2():
    """d = 2, w = (0, a), w* = (-2**-1074, a), a = 2.6e120: the angle (~2e-444) is below the
    smallest float64 but not zero.  The documented limit (README, Guarantees): such a pair is
    parallel as far as float64 can tell, so the objects that do not exist at a kink raise a
    ValueError that says so, and every other object is finite and right."""
    W = np.array([[0.0, 2.5822498780869086e+120]])
    Ws = np.array([[-(2.0**-1074), 2.5822498780869086e+120]])
    for part in ("J", "H"):
        with pytest.raises(ValueError, match="below the smallest float64 angle"):
            numerics.gradient(W, Ws, part, "true")
        for field in ("true", "mean"):
            with pytest.raises(ValueError, match="below the smallest float64 angle"):
                numerics.hessian(W, Ws, part, field)
    _check_all(W, Ws, [(kind, part, field) for kind, part, field in ALL_OBJECTS
                       if part == "L" or (kind, field) not in KINK_OBJECTS])


def test_loss_overflow_with_a_student_at_the_teacher():
    """A student 2**-34 times the teacher plus a student equal to it, sizes ~1e307: the exact L is
    |w_0|^2 / 4 = 6.8e594 (> DBL_MAX), so ValueError; it came out 0.0 (the cancelling cross terms
    between the two students carry an absolute error ~eps |W|^2 ~ 1e599, larger than the loss)."""
    Ws = np.array([[1.9257272675175929e+307, 4.578370477463126e+307, 1.841321745659723e+307, -7.261690414047644e+307]])
    W = np.vstack([np.ldexp(Ws, -34), Ws])
    ref = Reference(W, Ws)
    failures = [f for p in PARTS for f in check_object(ref, "loss", p, None)]
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("part", ["J", "H"])
def test_an_overflowing_hessian_is_refused_without_runtime_warnings(part):
    """w = e1, w* = e1 + 2**-1074 e2 in d = 3: the true Hessian's 1/angle terms overflow, which is refused with
    a ValueError; NumPy's overflow and invalid-value warnings on the way there were noise in the caller's log
    (they appeared before the refusal), so the refusal is the only signal."""
    import warnings

    W, Ws = np.zeros((1, 3)), np.zeros((1, 3))
    W[0, 0] = Ws[0, 0] = 1.0
    Ws[0, 1] = 2.0**-1074
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError, match="beyond the float64 range"):
            numerics.hessian(W, Ws, part, "true")


# =============================================================================== quiet for finite input
def _rows_far_apart(k: int, sign: float, layout: str):
    """``w = (0.42, 1.136, 0.11)`` and ``v = sign 2**-k (w + 1e-9 e3)``, ``1e-9`` rad from (anti-)parallel to ``w``
    and ``2**k`` times shorter (``k <= 850``: inside the Guarantees' ``2**900 / sqrt(d)``), as ``(W, W_star)``:
    ``v`` the teacher, or a second student beside an unrelated teacher."""
    w = np.array([0.42, 1.136, 0.11])
    v = sign * np.ldexp(w + np.array([0.0, 0.0, 1e-9]), -k)
    if layout == "teacher":
        return w[None], v[None]
    return np.vstack([w, v]), np.array([[0.0, 1.0, -1.0]])


@pytest.mark.parametrize("part", ["J", "H"])
@pytest.mark.parametrize("layout", ["teacher", "student"])
@pytest.mark.parametrize("sign", [1.0, -1.0], ids=["parallel", "anti-parallel"])
@pytest.mark.parametrize("k", [580, 700, 850])
def test_true_gradient_of_rows_of_very_different_sizes_is_quiet_and_right(k, sign, layout, part):
    """Issue 26, item 6: ``numerics.gradient(W, W_star, "J" or "H", "true")`` with a row ``2**580 .. 2**850`` times
    shorter than the one it is nearly (anti-)parallel to emitted NumPy's ``RuntimeWarning: overflow encountered in
    multiply`` although its result was finite and right: the squared norm of the boundary term's direction ``e2``
    (``numerics.geometry._unit_orthogonal``, from ``paired_plane_directions``) overflows there, harmlessly.  Under
    this module's warnings-as-errors the call must be silent, every row within the accuracy of the Guarantees
    against the mpmath reference, and a batch holding the instance must give the same bits (the single call)."""
    W, Ws = _rows_far_apart(k, sign, layout)
    got = numerics.gradient(W, Ws, part, "true")  # a warning is an error here (pytestmark)
    assert np.isfinite(got).all()
    ref = Reference(W, Ws)
    failures = check_object(ref, "gradient", part, "true", got)
    assert not failures, "\n".join(failures)
    batch = numerics.gradient(np.stack([W, np.ldexp(W, 3)]), Ws, part, "true")
    assert batch.shape == (2,) + W.shape and np.array_equal(batch[0], got)
    assert np.isfinite(batch[1]).all()  # the other instance: W 8 times longer against the same W_star
