"""Numerical honesty of :mod:`numerics`: float64 results against 50-digit mpmath references.

The reference here is independent of :mod:`theory`: the closed forms are typed in from
the arc-cosine kernels of docs/theory.md, section 3 (Cho & Saul's ``J_0``, ``J_1``) and evaluated with mpmath at 50
digits **from the exact float inputs** (``mpmath.mpf`` of every float entry), with every angle
computed in mpmath as ``atan2(|a ^ b|, a.b)`` and ``|a ^ b|^2 = sum_{i<k} (a_i b_k - a_k b_i)^2``
(Lagrange's identity; each product of two doubles is exact at 50 digits), so the reference is
the exact value at the float configuration to ~1e-30 even at angles of 1e-12.

Sections: degenerate single-node configurations (tiny angles, extreme norm ratios, random and
axis-aligned orientations); random K = K* = 2 configurations; the three branches of every
compiled pair function (:mod:`numerics.compile`); exactly (anti-)parallel rows; the angle
geometry (:mod:`numerics.geometry`).
"""
from __future__ import annotations

import math
import warnings

import mpmath
import numpy as np
import pytest
import sympy as sp

import numerics
import numerics.population as npop
from numerics.geometry import pair_geometry
from theory.symbols import n_a, n_b, theta

DPS = 50
PARTS = ("L", "J", "H")


# ----------------------------------------------------------------------------- mpmath reference
def _mp_rows(A):
    return [[mpmath.mpf(float(x)) for x in row] for row in np.atleast_2d(np.asarray(A, dtype=np.float64))]


def _dot(a, b):
    return mpmath.fsum(x * y for x, y in zip(a, b))


def _norm(a):
    return mpmath.sqrt(_dot(a, a))


def _angle(a, b):
    """Angle in [0, pi] at the working precision: atan2(|a ^ b|, a.b)."""
    d = len(a)
    cross2 = mpmath.fsum((a[i] * b[k] - a[k] * b[i]) ** 2 for i in range(d) for k in range(i + 1, d))
    return mpmath.atan2(mpmath.sqrt(cross2), _dot(a, b))


def _k1(a, b, t):
    """E[relu(a.x) relu(b.x)] = |a||b| (sin t + (pi - t) cos t) / (2 pi)."""
    return _norm(a) * _norm(b) * (mpmath.sin(t) + (mpmath.pi - t) * mpmath.cos(t)) / (2 * mpmath.pi)


def _k0(t):
    """E[1{a.x>0} 1{b.x>0}] = (pi - t) / (2 pi)."""
    return (mpmath.pi - t) / (2 * mpmath.pi)


def ref_loss(W, W_star, part):
    """1/2 sum_pq s_p s_q f(z_p, z_q), f = k1 (L), k0 z_p.z_q (J), both (H); an mpf."""
    with mpmath.workdps(DPS):
        Z = _mp_rows(W) + _mp_rows(W_star)
        s = [1] * len(np.atleast_2d(W)) + [-1] * len(np.atleast_2d(W_star))
        total = mpmath.mpf(0)
        for p, zp in enumerate(Z):
            for q, zq in enumerate(Z):
                t = _angle(zp, zq)  # exactly 0 for p == q
                if part in ("L", "H"):
                    total += s[p] * s[q] * _k1(zp, zq, t)
                if part in ("J", "H"):
                    total += s[p] * s[q] * _k0(t) * _dot(zp, zq)
        return total / 2


def ref_mean_field(W, W_star, part):
    """Mean field rows (list of lists of mpf).

    L: sum_q s_q E[relu(z_q.x) 1{w_j.x>0} x] = sum_q s_q [(pi - t) z_q + |z_q| sin t w_j/|w_j|] / (2 pi)
    (Tian's pair term; the q = j term is w_j/2 since t = 0 exactly);
    J: sum_q s_q k0(w_j, z_q) z_q (q = j: w_j/2).
    """
    with mpmath.workdps(DPS):
        Wm = _mp_rows(W)
        Z = Wm + _mp_rows(W_star)
        s = [1] * len(Wm) + [-1] * (len(Z) - len(Wm))
        out = []
        for w in Wm:
            nw = _norm(w)
            row = [mpmath.mpf(0)] * len(w)
            for q, z in enumerate(Z):
                t = _angle(w, z)
                if part in ("L", "H"):
                    cz = s[q] * (mpmath.pi - t) / (2 * mpmath.pi)
                    cw = s[q] * _norm(z) * mpmath.sin(t) / (2 * mpmath.pi * nw)
                    row = [r + cz * zi + cw * wi for r, zi, wi in zip(row, z, w)]
                if part in ("J", "H"):
                    cz = s[q] * _k0(t)
                    row = [r + cz * zi for r, zi in zip(row, z)]
            out.append(row)
        return out


def rel_err_scalar(got, ref):
    with mpmath.workdps(DPS):
        return float(abs(mpmath.mpf(float(got)) - ref) / abs(ref))


def rel_err_vector(got, ref):
    """Norm-wise relative error ||got - ref|| / ||ref|| (Frobenius), computed in mpmath."""
    with mpmath.workdps(DPS):
        flat_ref = [x for row in ref for x in row]
        flat_got = [mpmath.mpf(float(x)) for x in np.asarray(got).ravel()]
        num = mpmath.sqrt(mpmath.fsum((g - r) ** 2 for g, r in zip(flat_got, flat_ref)))
        den = mpmath.sqrt(mpmath.fsum(r**2 for r in flat_ref))
        return float(num / den)


def _rotation(d, seed):
    rng = np.random.default_rng(seed)
    q, r = np.linalg.qr(rng.standard_normal((d, d)))
    return q * np.sign(np.diag(r))


def _pair(d, t, n, m, orientation, seed):
    """a = n (1, 0, ..), b = m (cos t, sin t, 0, ..), optionally rotated by a seeded random Q."""
    a = np.zeros(d)
    b = np.zeros(d)
    a[0] = n
    b[0], b[1] = m * math.cos(t), m * math.sin(t)
    if orientation == "random":
        Q = _rotation(d, seed)
        a, b = Q @ a, Q @ b
    return a, b


# ----------------------------------------------------------------------------- single node, degenerate
ANGLES = {"1e-8": 1e-8, "pi-1e-8": math.pi - 1e-8}
RATIOS = [1e-6, 1e-3, 1.0, 1e3, 1e6]
SINGLE_CASES = [
    (d, name, ratio, orient)
    for d in (2, 5)
    for name in ANGLES
    for ratio in RATIOS
    for orient in ("axis", "random")
]


def _single_node(d, name, ratio, orient):
    m = 1.7  # |w*|; |w| = ratio |w*|
    seed = 1000 * d + RATIOS.index(ratio) * 10 + list(ANGLES).index(name)
    w, w_star = _pair(d, ANGLES[name], ratio * m, m, orient, seed)
    return w[None, :], w_star[None, :]


# The single-node rewrites (numerics.population: matched pair, cancellation-free split of the
# loss and of the mean field) and the exact-arithmetic angles promise "full relative accuracy for
# one node": ~1e-15.  1e-9 (the bound stated in README.md, "Numerical care") leaves six orders for the conditioning of the closed forms at
# theta = 1e-8 (e.g. the loss is O(theta^2 |w|^2) there while its terms are O(|w|^2)).
SINGLE_RTOL = 1e-9


@pytest.mark.parametrize("d,name,ratio,orient", SINGLE_CASES, ids=lambda v: str(v))
def test_single_node_loss_and_mean_field(d, name, ratio, orient):
    W, W_star = _single_node(d, name, ratio, orient)
    failures = []
    for part in PARTS:
        e = rel_err_scalar(numerics.loss(W, W_star, part), ref_loss(W, W_star, part))
        if not e <= SINGLE_RTOL:
            failures.append(f"loss {part}: rel err {e:.3e}")
        e = rel_err_vector(numerics.gradient(W, W_star, part, "mean"), ref_mean_field(W, W_star, part))
        if not e <= SINGLE_RTOL:
            failures.append(f"mean field {part}: rel err {e:.3e}")
    assert not failures, "; ".join(failures)


# ----------------------------------------------------------------------------- K = K* = 2, moderate angles
def _moderate_config(seed, K=2, K_star=2, d=4):
    rng = np.random.default_rng(seed)
    while True:
        Z = rng.standard_normal((K + K_star, d)) * rng.uniform(0.3, 3.0, size=(K + K_star, 1))
        C = (Z @ Z.T) / np.outer(np.linalg.norm(Z, axis=1), np.linalg.norm(Z, axis=1))
        off = C[~np.eye(K + K_star, dtype=bool)]
        if np.all(np.abs(off) < math.cos(0.3)):  # every angle in [0.3, pi - 0.3]
            return Z[:K], Z[K:]


@pytest.mark.parametrize("seed", range(8))
def test_two_node_random_configurations(seed):
    W, W_star = _moderate_config(seed)
    # Moderate angles: the closed-form branch, a sum of (K+K*)^2 = 16 pair terms of a few ulps
    # each; the loss/field is O(1) of the terms for random rows, so ~1e-15 expected; 1e-12 (the suite's bound at moderate angles)
    # allows a cancellation factor of ~1000 between terms.
    for part in PARTS:
        assert rel_err_scalar(numerics.loss(W, W_star, part), ref_loss(W, W_star, part)) <= 1e-12, part
        e = rel_err_vector(numerics.gradient(W, W_star, part, "mean"), ref_mean_field(W, W_star, part))
        assert e <= 1e-12, (part, e)


# ----------------------------------------------------------------------------- compiled pair functions
def _compiled_functions():
    """Every compiled pair function numerics.population evaluates, with a name."""
    out = []
    for part in ("L", "J"):
        obj = npop._loss_object(part)
        out += [(f"loss[{part}].{k}", obj[k]) for k in ("f", "rest")]
        for field in ("mean", "true"):
            obj = npop._vector_object(part, field)
            out += [(f"vector[{part},{field}].{k}", obj[k]) for k in ("alpha", "beta", "rho_alpha", "rho_beta")]
        for field in ("true", "mean", "autograd"):
            obj = npop._hessian_object(part, field)
            for side in ("diag", "off"):
                if obj[side] is not None:
                    names = ("B11", "B12", "B21", "B22", "s")
                    out += [(f"hessian[{part},{field}].{side}.{n}", f) for n, f in zip(names, obj[side]["coef"])]
    return out


@pytest.fixture(scope="module")
def compiled_functions():
    return _compiled_functions()


# theta as 50-digit mpmath values; "0" and "pi" are the exact end points (see below).
BRANCH_ANGLES = {
    "1e-6": lambda: mpmath.mpf("1e-6"),
    "0.05": lambda: mpmath.mpf("0.05"),
    "0.0999": lambda: mpmath.mpf("0.0999"),
    "0.1001": lambda: mpmath.mpf("0.1001"),
    "1.0": lambda: mpmath.mpf(1),
    "pi-0.1001": lambda: mpmath.pi - mpmath.mpf("0.1001"),
    "pi-0.05": lambda: mpmath.pi - mpmath.mpf("0.05"),
    "pi-1e-6": lambda: mpmath.pi - mpmath.mpf("1e-6"),
}
NORMS = [(1.25, 0.75), (0.5, 2.0)]  # exact in binary; pair expressions are homogeneous in them
BRANCH_RTOL = 1e-11  # module docstring of numerics.compile: closed form loses <= eps/SWITCH^4 ~ 2e-12
BRANCH_ATOL = 1e-14  # only where the reference is ~0 (|ref| <= 1e-14 with O(1) norms): a few ulps of O(1)


def _reference(expr, na, nb, th_mp):
    with mpmath.workdps(DPS + 20):
        subs = {n_a: sp.Float(na, DPS + 20), n_b: sp.Float(nb, DPS + 20), theta: sp.Float(th_mp, DPS + 20)}
        return expr.evalf(DPS, subs=subs)


def _check_branch(fn, expr, na, nb, th_mp, th_f, ps_f, label):
    ref = _reference(expr, na, nb, th_mp)
    if ref.has(sp.zoo, sp.oo, -sp.oo, sp.nan) or abs(ref) > 1e30:
        return None  # singular (Laurent) here: the reference itself is infinite
    ref = float(ref)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a division by zero or invalid value is a failure too
        got = float(fn(np.array([na]), np.array([nb]), np.array([th_f]), np.array([ps_f]))[0])
    err = abs(got - ref)
    ok = err <= BRANCH_RTOL * abs(ref) or (abs(ref) <= BRANCH_ATOL and err <= BRANCH_ATOL)
    return None if ok else f"{label}: got {got!r}, ref {ref!r}, rel err {err / max(abs(ref), 1e-300):.2e}"


@pytest.mark.parametrize("angle", list(BRANCH_ANGLES))
def test_compiled_branches_against_mpmath(compiled_functions, angle):
    with mpmath.workdps(DPS + 20):
        th_mp = BRANCH_ANGLES[angle]()
        th_f, ps_f = float(th_mp), float(mpmath.pi - th_mp)  # psi computed in mpmath, then rounded
    failures = []
    for name, fn in compiled_functions:
        for na, nb in NORMS:
            msg = _check_branch(fn, fn.expr, na, nb, th_mp, th_f, ps_f, f"{name} (n_a={na}, n_b={nb})")
            if msg:
                failures.append(msg)
    assert not failures, f"theta={angle}:\n" + "\n".join(failures)


@pytest.mark.parametrize("end", ["0", "pi"])
def test_compiled_functions_at_exact_end_points(compiled_functions, end):
    """At theta = 0 / pi exactly each function returns its limit (where the limit is finite).

    The reference is the closed form at 1e-40 from the end point: the expressions are analytic
    there once finite, so it equals the limit to ~1e-40 relative.
    """
    with mpmath.workdps(DPS + 20):
        tiny = mpmath.mpf("1e-40")
        th_mp = tiny if end == "0" else mpmath.pi - tiny
    th_f, ps_f = (0.0, math.pi) if end == "0" else (math.pi, 0.0)
    failures, checked = [], 0
    for name, fn in compiled_functions:
        for na, nb in NORMS:
            ref = _reference(fn.expr, na, nb, th_mp)
            if abs(ref) > 1e30:
                assert not (fn.finite_at_zero if end == "0" else fn.finite_at_pi), f"{name}: flagged finite"
                continue
            checked += 1
            msg = _check_branch(fn, fn.expr, na, nb, th_mp, th_f, ps_f, f"{name} (n_a={na}, n_b={nb})")
            if msg:
                failures.append(msg)
    assert checked > 0
    assert not failures, f"theta={end}:\n" + "\n".join(failures)


# ----------------------------------------------------------------------------- exactly (anti)parallel rows
def _degenerate_configs():
    rng = np.random.default_rng(77)
    w = rng.standard_normal(3)
    v = rng.standard_normal(3)
    # powers of two keep the rows exactly (anti)parallel in floating point
    return {
        "teacher parallel (w* = 2w)": (w[None], 2.0 * w[None]),
        "teacher antiparallel (w* = -w/2)": (w[None], -0.5 * w[None]),
        "at the teacher (w = w*)": (w[None], w[None].copy()),
        "students parallel": (np.stack([w, 4.0 * w]), v[None]),
        "students antiparallel, teacher parallel": (np.stack([w, -w]), 0.25 * w[None]),
        "two nodes at the teacher": (np.stack([w, v]), np.stack([v, w])),
    }


DEGENERATE = _degenerate_configs()


@pytest.mark.parametrize("name", list(DEGENERATE))
def test_no_nan_or_inf_at_exactly_parallel_rows(name):
    W, W_star = DEGENERATE[name]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no silent division by zero either
        values = {f"loss {p}": numerics.loss(W, W_star, p) for p in PARTS}
        values.update({f"mean field {p}": numerics.gradient(W, W_star, p, "mean") for p in PARTS})
        values["true gradient L"] = numerics.gradient(W, W_star, "L", "true")
        for field in ("true", "mean", "autograd"):
            values[f"hessian L {field}"] = numerics.hessian(W, W_star, "L", field)
        for p in ("J", "H"):
            values[f"hessian {p} autograd"] = numerics.hessian(W, W_star, p, "autograd")
    for what, v in values.items():
        assert np.all(np.isfinite(v)), f"{what}: {v}"
    # and they are the right limits: the 50-digit reference (angles exactly 0 or pi there).
    # Relative 1e-12 as for the random configurations (exact angles, closed forms); where the
    # exact value is 0 (at the teacher) the reference is rounding noise (~1e-50) and the bound is
    # absolute: population.py documents ~eps |W|^2 (loss) / eps |W| (field) for cancelling
    # cross terms between several nodes at the teacher; 1e-14 is ~45 eps of that scale.
    norms = np.linalg.norm(np.vstack([W, W_star]), axis=1)
    for p in PARTS:
        ref = ref_loss(W, W_star, p)
        got = values[f"loss {p}"]
        if abs(ref) <= 1e-40 * (norms**2).sum():
            assert abs(got) <= 1e-14 * (norms**2).sum(), (p, got)
        else:
            assert rel_err_scalar(got, ref) <= 1e-12, p
        mref = ref_mean_field(W, W_star, p)
        got = values[f"mean field {p}"]
        if max(abs(x) for row in mref for x in row) <= 1e-40 * norms.sum():
            assert np.abs(got).max() <= 1e-14 * norms.sum(), (p, got)
        else:
            assert rel_err_vector(got, mref) <= 1e-12, p
    # for L the true gradient is the mean field (same reference, same bound)
    np.testing.assert_allclose(values["true gradient L"], values["mean field L"], rtol=0, atol=1e-14 * norms.sum())


@pytest.mark.parametrize("name", ["teacher parallel (w* = 2w)", "students parallel", "teacher antiparallel (w* = -w/2)"])
def test_objects_that_do_not_exist_raise(name):
    """The true gradient of J/H (a kink of the population J) raises ValueError, never NaN."""
    W, W_star = DEGENERATE[name]
    for p in ("J", "H"):
        with pytest.raises(ValueError):
            numerics.gradient(W, W_star, p, "true")
        with pytest.raises(ValueError):
            numerics.hessian(W, W_star, p, "true")


@pytest.mark.parametrize("name", ["teacher parallel (w* = 2w)", "students parallel", "teacher antiparallel (w* = -w/2)"])
@pytest.mark.parametrize("field", ["true", "mean", "autograd"])
def test_hessian_of_L_is_continuous_at_parallel_rows(name, field):
    """The value returned at exactly parallel rows is the limit: compare with a 1e-7 rotation."""
    W, W_star = DEGENERATE[name]
    rng = np.random.default_rng(3)
    W_pert = W + 1e-7 * np.linalg.norm(W, axis=1, keepdims=True) * rng.standard_normal(W.shape)
    H0 = numerics.hessian(W, W_star, "L", field)
    H1 = numerics.hessian(W_pert, W_star, "L", field)
    # the coefficients are Lipschitz in theta with O(|w*|/|w|) constants (e.g. n_b sin(theta)/n_a),
    # so a 1e-7 perturbation moves entries by ~1e-7 * max(1, |w*|/|w|); 1e-5 is 100x that.
    ratio = max(1.0, np.linalg.norm(W_star, axis=1).max() / np.linalg.norm(W, axis=1).min())
    assert np.abs(H0 - H1).max() <= 1e-5 * ratio


# ----------------------------------------------------------------------------- angle geometry
GEO_ANGLES = {
    "1e-12": 1e-12, "1e-8": 1e-8, "1e-4": 1e-4, "0.045": 0.045, "1": 1.0,  # the required angles, plus
    "2": 2.0, "pi-0.045": math.pi - 0.045, "pi-1e-8": math.pi - 1e-8,  # the obtuse generic path
}


@pytest.mark.parametrize("d", [2, 3, 7])
@pytest.mark.parametrize("angle", list(GEO_ANGLES))
@pytest.mark.parametrize("seed", range(3))
def test_pair_geometry_angles(d, angle, seed):
    a, b = _pair(d, GEO_ANGLES[angle], 1.3, 0.6 + seed, "random", seed=50 * seed + d)
    geo = pair_geometry(a[None], b[None])
    with mpmath.workdps(DPS):
        am, bm = _mp_rows(a)[0], _mp_rows(b)[0]
        th = _angle(am, bm)
        ps = mpmath.pi - th  # at 50 digits, no cancellation issue
        e_th = float(abs(mpmath.mpf(float(geo.theta[0, 0])) - th) / th)
        e_ps = float(abs(mpmath.mpf(float(geo.psi[0, 0])) - ps) / ps)
    # "theta and psi accurate to a few ulps" (numerics.geometry docstring); 1e-12 is the required
    # bound and also covers the generic (Gram-matrix) path just above NEAR (theta = 0.045),
    # whose error the docstring bounds by eps / (1 - |c|) ~ 2e-13.
    assert e_th <= 1e-12, (angle, e_th)
    assert e_ps <= 1e-12, (angle, e_ps)
    assert not geo.parallel[0, 0] and not geo.antiparallel[0, 0]


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("gap", [1e-6, 1e-9, 1e-12])
def test_boundary_direction_next_to_the_teacher(seed, gap):
    """The true field of J is the mean field plus a boundary term along e2, the unit vector of w* orthogonal
    to w.  With the student ``gap`` from its teacher, the direction of that term, against 50-digit mpmath
    from the same float inputs, is exact to 4 ulps of a unit vector (regression: e2 was formed from unit
    vectors subtracted, which loses ``~eps / angle``: 1.1e-8 at a gap of 1e-9)."""
    rng = np.random.default_rng(seed)
    Ws = rng.standard_normal((1, 6))
    W = Ws + gap * rng.standard_normal((1, 6))
    with mpmath.workdps(50):
        a, b = ([mpmath.mpf(float(x)) for x in row] for row in (W[0], Ws[0]))
        along = sum(x * y for x, y in zip(a, b)) / sum(x * x for x in a)
        u = [y - along * x for x, y in zip(a, b)]
        e2 = np.array([float(x / mpmath.sqrt(sum(v * v for v in u))) for x in u])
    step = (numerics.gradient(W, Ws, "J", "true") - numerics.gradient(W, Ws, "J", "mean"))[0]
    assert np.abs(step / np.linalg.norm(step) + e2).max() <= 4 * np.finfo(float).eps  # the teacher's sign is -1
