"""Symbolic checks of :mod:`theory`, and the numerics against the SymPy expressions evaluated directly.

* pair level: kernels vs Cho & Saul, the proofs of :mod:`theory.pairs`, mean field vs true
  gradient (equal for L; for J they differ by the boundary term, derived by hand below),
  the e-basis calculus vs component-wise ``sympy.diff`` (``d = 2, 3``), the paper's formulas;
* population level: ``numerics.loss/gradient/hessian`` against ``theory.population``'s
  explicit coordinate forms (and their ``sympy.diff``/``jacobian``), evaluated with mpmath at
  40 digits at seeded dyadic-rational points (exactly representable in float64, so the
  float inputs of ``numerics`` are the exact points of the reference);
* the disk layer of :mod:`theory.cache`.
"""
from __future__ import annotations

import math
import pickle
import random

import mpmath
import numpy as np
import pytest
import sympy as sp

import numerics
from theory import cache, explicit, kernels, pairs, paper, population
from theory.symbols import n_b, theta

PI = sp.pi


# ----------------------------------------------------------------------------- pair level, symbolic
def test_kernels_match_cho_saul_exactly():
    diffs = kernels.check_against_cho_saul()
    assert set(diffs) == {"relu_relu", "step_step"}
    for name, value in diffs.items():
        assert value == 0, f"{name}: derived - published = {value}"


def test_pair_proofs_are_exactly_zero():
    proofs = pairs.proofs()
    assert len(proofs) == 6  # three identities for each of L and J
    for name, value in proofs.items():
        assert value == 0, f"{name}: {value}"


def test_mean_field_equals_true_gradient_for_L():
    diff = (pairs.mean_field("L") - pairs.true_gradient("L")).simplify()
    assert diff.c1 == 0 and diff.c2 == 0, diff
    assert diff.is_zero()


def test_mean_field_of_J_is_k0_times_b():
    # E[1{a.x>0} 1{b.x>0}] b with b = n_b (cos theta e1 + sin theta e2) and Cho & Saul's k0.
    k0 = (PI - theta) / (2 * PI)
    m = pairs.mean_field("J")
    assert sp.simplify(m.c1 - k0 * n_b * sp.cos(theta)) == 0
    assert sp.simplify(m.c2 - k0 * n_b * sp.sin(theta)) == 0


def test_true_gradient_of_J_is_mean_field_plus_boundary_term():
    # Hand derivation.  The J pair kernel is f(a, b) = k0(theta) (a.b), k0 = (pi - theta)/(2 pi)
    # (Cho & Saul).  Product rule:
    #     grad_a f = k0 grad_a(a.b) + (a.b) k0'(theta) grad_a theta
    #              = k0 b           + n_a n_b cos(theta) k0'(theta) (-e2 / n_a),
    # using grad_a theta = -e2/n_a (moving a towards b along e2 closes the angle).  The first
    # term is exactly the mean field E[1{a.x>0}1{b.x>0}] b (indicators held fixed), so
    #     true - mean = -n_b cos(theta) k0'(theta) e2 = n_b cos(theta) / (2 pi) e2,
    # the boundary (surface) term of the indicators, with no e1 component.
    k0 = (PI - theta) / (2 * PI)
    boundary = -n_b * sp.cos(theta) * sp.diff(k0, theta)
    assert sp.simplify(boundary - n_b * sp.cos(theta) / (2 * PI)) == 0  # the derivation's last step

    diff = (pairs.true_gradient("J") - pairs.mean_field("J")).simplify()
    assert not diff.is_zero(), "for J the true gradient must differ from the mean field"
    assert sp.simplify(diff.c1) == 0, diff.c1
    assert sp.simplify(diff.c2 - boundary) == 0, diff.c2


def test_mean_jacobian_equals_true_hessian_for_L_only():
    """docs/theory.md, section 5: the mean Jacobian is the true Hessian for L, not for J (pair blocks in a and b)."""
    for side in ("a", "b"):
        mean = getattr(pairs, f"mean_jacobian_{side}")
        true = getattr(pairs, f"true_hessian_{side}")
        assert (mean("L") - true("L")).simplify().is_zero(), side
        assert not (mean("J") - true("J")).simplify().is_zero(), side


@pytest.mark.parametrize("d", [2, 3])
def test_pair_calculus_matches_componentwise_diff(d):
    gaps = explicit.check_pair_calculus(d)
    assert len(gaps) == 10  # 5 objects x {L, J}
    for name, gap in gaps.items():
        # 30-digit evaluation of (explicit diff - e-basis result): a true identity leaves only
        # rounding at ~1e-30 of O(1) entries; 1e-25 leaves 5 digits of slack for cancellation.
        assert gap < 1e-25, f"{name}: gap {gap:.3e}"


def test_paper_formulas_identified():
    rows = {(r["formula"], r["hessian"]): r for r in paper.identify()}
    assert set(rows) == {(f, h) for f in ("L", "H") for h in ("true", "mean", "autograd")}
    for key in (("L", "true"), ("L", "mean"), ("H", "mean")):
        assert rows[key]["equal"] and rows[key]["proof"] == "symbolic", (key, rows[key])
    for key in (("H", "true"), ("H", "autograd"), ("L", "autograd")):
        # 0.01 is far above any rounding (30-digit evaluation) and far below the O(1) boundary
        # and delta terms that make these objects different.
        assert not rows[key]["equal"] and rows[key]["max_entry_gap"] > 0.01, (key, rows[key])


def _paper_numpy(w, w_star, k):
    """The paper's single-node formula typed in with NumPy (k = 1: nabla^2 L, k = 2: nabla^2 H)."""
    d = len(w)
    nw, ns = np.linalg.norm(w), np.linalg.norm(w_star)
    v, u = w / nw, w_star / ns
    c = float(np.dot(u, v))
    s = math.sqrt(max(0.0, 1.0 - c * c))
    alpha = ns / (2 * math.pi * nw * s)
    I = np.eye(d)
    inner = k * np.outer(u, u) - c * np.outer(v, u) + s * s * I
    return k / 2 * I - alpha * inner @ (I - np.outer(v, v))


@pytest.mark.parametrize("seed", range(4))
def test_paper_formulas_against_numerics(seed):
    """Numerical counterpart of the identification, with the paper's formula typed in NumPy."""
    rng = np.random.default_rng(seed)
    d = 3 + seed
    while True:
        w, w_star = rng.standard_normal(d), rng.standard_normal(d)
        c = np.dot(w, w_star) / np.linalg.norm(w) / np.linalg.norm(w_star)
        if abs(c) < 0.9:  # moderate angle: arccos-free formula above is accurate there
            break
    pL, pH = _paper_numpy(w, w_star, 1), _paper_numpy(w, w_star, 2)
    scale = np.abs(pH).max()
    # Float64 closed forms on both sides at a moderate angle (1/sin(theta) < 2.3): a few ulps of
    # the O(1) entries; 1e-12 of the largest entry leaves margin for the d x d products.
    tol = 1e-12 * scale
    assert np.abs(numerics.hessian(w, w_star, "L", "true") - pL).max() <= tol
    assert np.abs(numerics.hessian(w, w_star, "L", "mean") - pL).max() <= tol
    assert np.abs(numerics.hessian(w, w_star, "H", "mean") - pH).max() <= tol
    # ...and the paper's nabla^2 H is not the Hessian of the population H (boundary terms).
    assert np.abs(numerics.hessian(w, w_star, "H", "true") - pH).max() > 1e-3 * scale


@pytest.mark.parametrize("seed", range(3))
def test_numeric_boundary_term_single_node(seed):
    """true - mean gradient of J (and H) for one node = -|w*| cos(theta)/(2 pi) e2 (teacher sign -1)."""
    rng = np.random.default_rng(100 + seed)
    w, w_star = rng.standard_normal(4), rng.standard_normal(4)
    v, u = w / np.linalg.norm(w), w_star / np.linalg.norm(w_star)
    c = float(np.dot(u, v))
    e2 = (u - c * v) / np.linalg.norm(u - c * v)
    expected = -np.linalg.norm(w_star) * c / (2 * math.pi) * e2
    for part in ("J", "H"):
        got = numerics.gradient(w, w_star, part, "true") - numerics.gradient(w, w_star, part, "mean")
        # difference of two float64 closed forms of size O(|w|+|w*|): a few ulps of that scale.
        assert np.abs(got[0] - expected).max() <= 1e-13 * (np.linalg.norm(w) + np.linalg.norm(w_star))
    assert np.abs(numerics.gradient(w, w_star, "L", "true") - numerics.gradient(w, w_star, "L", "mean")).max() <= (
        1e-13 * (np.linalg.norm(w) + np.linalg.norm(w_star))  # same: equal objects, independent code paths
    )


# ----------------------------------------------------------------------------- population level vs SymPy
REF_DPS = 40


def _dyadic_point(K, K_star, d, seed):
    """Seeded dyadic rationals (exact in float64), with every pair of rows well separated."""
    rng = random.Random(seed)
    while True:
        vals = [sp.Rational(rng.randint(-40, 40), 16) for _ in range((K + K_star) * d)]
        Z = np.array([float(v) for v in vals]).reshape(K + K_star, d)
        norms = np.linalg.norm(Z, axis=1)
        if np.any(norms == 0):
            continue
        C = (Z @ Z.T) / np.outer(norms, norms)
        if np.all(np.abs(C[~np.eye(K + K_star, dtype=bool)]) < 0.95):  # no near-degenerate angle
            return vals, Z[:K], Z[K:]


def _evaluate(exprs, symbols, vals):
    """Evaluate SymPy expressions at exact rational values with mpmath at REF_DPS digits."""
    fn = sp.lambdify(symbols, list(exprs), modules="mpmath", cse=True)
    with mpmath.workdps(REF_DPS):
        out = fn(*[mpmath.mpf(v.p) / v.q for v in vals])
        return np.array([float(x) for x in out])


CONFIGS = [(2, 2, 3, 11), (1, 3, 2, 12)]


@pytest.fixture(scope="module", params=CONFIGS, ids=lambda c: f"K{c[0]}-Ks{c[1]}-d{c[2]}")
def sympy_reference(request):
    K, K_star, d, seed = request.param
    Wsym, Wssym = population.rows(K, K_star, d)
    symbols = list(Wsym) + list(Wssym)
    wvars = list(Wsym)  # row-major: index i*d + k, as numerics.hessian
    vals, W, W_star = _dyadic_point(K, K_star, d, seed)
    ref = {}
    for part in ("L", "J", "H"):
        F = population.loss_explicit(Wsym, Wssym, part)
        grad = [sp.diff(F, x) for x in wvars]
        mean = sp.Matrix(list(population.mean_field_explicit(Wsym, Wssym, part)))  # row-major
        jac = mean.jacobian(wvars)
        n = K * d
        flat = _evaluate([F] + grad + list(mean) + list(jac), symbols, vals)
        ref[part] = {
            "loss": flat[0],
            "true": flat[1 : 1 + n].reshape(K, d),
            "mean": flat[1 + n : 1 + 2 * n].reshape(K, d),
            "jac": flat[1 + 2 * n :].reshape(n, n),
        }
    return W, W_star, ref


# Tolerances below: float64 evaluation of sums over O((K + K*)^2) closed-form pair terms at
# generic angles (|cos| < 0.95, no cancellation-prone branch), each exact to a few ulps; the
# reference is exact to ~1e-40.  Loss: 1e-13 relative (the suite's target); vectors/matrices: 1e-13 of
# the largest entry (entries can be small by cancellation between pair terms).
@pytest.mark.parametrize("part", ["L", "J", "H"])
def test_loss_matches_sympy(sympy_reference, part):
    W, W_star, ref = sympy_reference
    got = numerics.loss(W, W_star, part)
    assert abs(got - ref[part]["loss"]) <= 1e-13 * abs(ref[part]["loss"])


@pytest.mark.parametrize("part", ["L", "J", "H"])
@pytest.mark.parametrize("what", ["true", "mean"])
def test_gradient_matches_sympy(sympy_reference, part, what):
    W, W_star, ref = sympy_reference
    got = numerics.gradient(W, W_star, part, what)
    exp = ref[part][what]
    assert got.shape == exp.shape
    assert np.abs(got - exp).max() <= 1e-13 * np.abs(exp).max()


@pytest.mark.parametrize("part", ["L", "J", "H"])
def test_mean_jacobian_matches_sympy(sympy_reference, part):
    W, W_star, ref = sympy_reference
    got = numerics.hessian(W, W_star, part, "mean")
    exp = ref[part]["jac"]
    assert got.shape == exp.shape
    assert np.abs(got - exp).max() <= 1e-13 * np.abs(exp).max()


@pytest.fixture(scope="module")
def true_hessian_reference():
    K, K_star, d = 2, 1, 3
    Wsym, Wssym = population.rows(K, K_star, d)
    symbols = list(Wsym) + list(Wssym)
    wvars = list(Wsym)
    vals, W, W_star = _dyadic_point(K, K_star, d, 21)
    ref = {}
    for part in ("L", "J", "H"):
        F = population.loss_explicit(Wsym, Wssym, part)
        hess = sp.hessian(F, wvars)
        ref[part] = _evaluate(list(hess), symbols, vals).reshape(K * d, K * d)
    return W, W_star, ref


@pytest.mark.parametrize("part", ["L", "J", "H"])
def test_true_hessian_matches_sympy_hessian_of_loss(true_hessian_reference, part):
    W, W_star, ref = true_hessian_reference
    got = numerics.hessian(W, W_star, part, "true")
    exp = ref[part]
    assert np.array_equal(exp, exp.T)  # sympy.hessian of a scalar: symmetric by construction
    # generic angles, float64 closed forms (see the tolerance note above): 1e-13 of the largest entry.
    assert np.abs(got - exp).max() <= 1e-13 * np.abs(exp).max()
    assert np.abs(got - got.T).max() <= 1e-13 * np.abs(exp).max()  # the true Hessian is symmetric


# ----------------------------------------------------------------------------- disk cache
@pytest.fixture
def isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SOBOLEV_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("SOBOLEV_CACHE", raising=False)
    cache.clear()
    yield tmp_path
    cache.clear()  # never leave values loaded from this temporary folder in the process layer


def test_disk_cache_roundtrip(isolated_cache):
    first = pairs.loss_kernel("L")
    files = list(isolated_cache.glob("theory-*/*.pkl"))
    assert files, "a cached derivation with SOBOLEV_CACHE_DIR set must write a file"
    assert all(f.stat().st_size > 0 for f in files)
    cache.clear()
    again = pairs.loss_kernel("L")
    assert sp.simplify(again - first) == 0
    assert again == first


def test_disk_cache_is_read(isolated_cache):
    """After ``clear()`` the value comes from the file: a planted sentinel is returned."""
    kernels.step_step()
    files = list(isolated_cache.glob("theory-*/*.pkl"))
    assert len(files) == 1
    sentinel = sp.Symbol("sentinel_from_disk")
    files[0].write_bytes(pickle.dumps(sentinel))
    cache.clear()
    assert kernels.step_step() == sentinel
