"""The erf control activation: SymPy derivations (theory.erf), fast numerics (numerics.erf), witnesses
(numerics.erf_witness: per-sample autograd Monte Carlo, mpmath quadrature).

Monte-Carlo comparisons are z-tests at a family-wise level ALPHA = 1e-3 per test, Bonferroni over the m entries
compared (two-sided: |z| <= norm.isf(ALPHA / (2 m))).  Seeds are fixed, so each test is deterministic; a wrong
closed form (an error of a few standard errors in any entry) fails it.
"""
from __future__ import annotations

import warnings

import mpmath
import numpy as np
import pytest
import sympy as sp
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import norm

from numerics import erf as NE
from numerics import erf_witness as EW
from theory import erf as TE

from conftest import assert_close

ALPHA = 1e-3
LAMBDAS = (0.5, 0.25)


def z_threshold(m: int) -> float:
    """The per-entry two-sided z bound for a family-wise level ALPHA over m entries (Bonferroni)."""
    return float(norm.isf(ALPHA / (2 * m)))


def assert_z(estimate, se, exact, m, what):
    z = (np.asarray(estimate) - np.asarray(exact)) / np.asarray(se)
    bound = z_threshold(m)
    assert np.all(np.abs(z) <= bound), f"{what}: max |z| = {np.abs(z).max():.2f} > {bound:.2f} (m = {m})"


def instance(seed=0, K=2, K_star=2, d=3):
    """Random rows, output weights and a covariance that is not the identity."""
    rng = np.random.default_rng(seed)
    M = rng.standard_normal((d, d))
    return dict(W=rng.standard_normal((K, d)), W_star=rng.standard_normal((K_star, d)),
                kw=dict(a=rng.standard_normal(K), a_star=rng.standard_normal(K_star),
                        cov=M @ M.T / d + 0.5 * np.eye(d), sobolev=LAMBDAS))


# ----------------------------------------------------------------------------- symbolic identities
@pytest.mark.parametrize("check", [TE.check_determinant_formula, TE.check_closed_forms, TE.check_price,
                                   TE.check_stable_kernels, TE.check_stein])
def test_derivation_checks_hold(check):
    assert check() is True


def test_identity_test_rejects_a_false_identity():
    # the zero test behind every check must be able to say no
    assert not TE.is_zero(TE.kernel(1) - TE.closed_forms()[1] * (1 + TE.c**2 / 1000))
    assert not TE.is_zero(TE.stable_kernel(0) - TE.closed_forms()[0] * sp.Rational(1001, 1000))


def test_mean_field_equals_true_gradient_symbolically():
    assert TE.mean_field_equals_true_gradient() is True


@pytest.mark.slow
def test_three_hessians_coincide_symbolically():
    assert TE.hessians_coincide() is True


# ----------------------------------------------------------------------------- kernels against quadrature
POINTS = [(0.7, 1.3, 0.4), (2.1, 0.35, -0.6)]  # (p, q, c): a random-looking pair each sign of c


def closed_kernel(k, p, q, c, digits=40):
    expr = TE.kernel(k).subs(TE.D, TE.D_EXPR)
    value = expr.subs({TE.p: sp.Float(p, digits), TE.q: sp.Float(q, digits), TE.c: sp.Float(c, digits)})
    return mpmath.mpf(str(sp.N(value, digits)))


@pytest.mark.parametrize("p,q,c", POINTS)
@pytest.mark.parametrize("k", [0, 1, 2])
def test_kernels_match_quadrature(k, p, q, c):
    with mpmath.workdps(30):
        quad = EW.pair_expectation(k, k, p, q, c, dps=30, degree=3)
        rel = abs(quad - closed_kernel(k, p, q, c)) / abs(quad)
    assert rel < 1e-12, (k, p, q, c, rel)


@pytest.mark.slow
@pytest.mark.parametrize("k", [0, 1, 2])
def test_kernels_match_quadrature_to_30_digits(k):
    p, q, c = POINTS[0]
    with mpmath.workdps(40):
        quad = EW.pair_expectation(k, k, p, q, c, dps=40, degree=4)
        rel = abs(quad - closed_kernel(k, p, q, c, digits=50)) / abs(quad)
    assert rel < mpmath.mpf(10) ** -30, rel


@pytest.mark.slow  # ~10 s: the kernels themselves are checked against quadrature in the default run
def test_numerics_loss_matches_quadrature_for_one_pair():
    """L, J, J2 of one student row against one teacher row, from three quadrature kernels each, under a
    covariance: ``1/2 k(u, u) + 1/2 k(v, v) - k(u, v)``."""
    u, v = np.array([0.6, -0.3]), np.array([0.2, 0.5])
    cov = np.array([[1.2, 0.3], [0.3, 0.8]])
    for k, part in enumerate(("L", "J", "J2")):
        with mpmath.workdps(30):
            kern = {name: EW.pair_kernel(k, x, y, cov=cov, degree=3)
                    for name, (x, y) in {"uu": (u, u), "vv": (v, v), "uv": (u, v)}.items()}
            expected = float(kern["uu"] / 2 + kern["vv"] / 2 - kern["uv"])
        got = NE.loss(u[None], v[None], part, cov=cov)
        assert abs(got - expected) <= 1e-12 * max(abs(float(x)) for x in kern.values()), (part, got, expected)


# ----------------------------------------------------------------------------- Monte-Carlo witness
@pytest.fixture(scope="module")
def mc_case():
    case = instance(seed=3)
    case["mc"] = EW.monte_carlo(case["W"], case["W_star"], 20000, seed=11, hessian=True, **case["kw"])
    return case


def test_loss_matches_monte_carlo(mc_case):
    W, Ws, kw, mc = mc_case["W"], mc_case["W_star"], mc_case["kw"], mc_case["mc"]
    exact = [NE.loss(W, Ws, part, **kw) for part in NE.PARTS]
    assert_z([mc.loss[p] for p in NE.PARTS], [mc.loss_se[p] for p in NE.PARTS], exact, len(NE.PARTS), "loss")


def test_mean_field_matches_true_gradient_by_monte_carlo(mc_case):
    """The per-sample autograd gradient, averaged (the mean field), against the closed-form true gradient in W and
    in a: for erf they are the same vector."""
    W, Ws, kw, mc = mc_case["W"], mc_case["W_star"], mc_case["kw"], mc_case["mc"]
    est, se, exact = [], [], []
    for part in NE.PARTS:
        gW, ga = NE.gradient(W, Ws, part, train_output=True, **kw)
        est += [mc.grad_W[part].ravel(), mc.grad_a[part]]
        se += [mc.grad_W_se[part].ravel(), mc.grad_a_se[part]]
        exact += [gW.ravel(), ga]
    est, se, exact = map(np.concatenate, (est, se, exact))
    assert_z(est, se, exact, len(exact), "mean field vs true gradient")


def test_expected_autograd_hessian_matches_hessian_by_monte_carlo(mc_case):
    W, Ws, kw, mc = mc_case["W"], mc_case["W_star"], mc_case["kw"], mc_case["mc"]
    H = NE.hessian(W, Ws, "H", **kw)
    iu = np.triu_indices(len(H))  # the estimate is symmetric sample by sample: the upper triangle is the family
    assert_z(mc.hessian_W[iu], mc.hessian_W_se[iu], H[iu], len(iu[0]), "expected autograd Hessian")


def test_monte_carlo_detects_a_wrong_gradient(mc_case):
    # the z-test has power: a gradient off by 10% in one entry fails it
    W, Ws, kw, mc = mc_case["W"], mc_case["W_star"], mc_case["kw"], mc_case["mc"]
    g = NE.gradient(W, Ws, "L", **kw).copy()
    g[0, 0] *= 1.1
    z = (mc.grad_W["L"] - g) / mc.grad_W_se["L"]
    assert np.abs(z).max() > z_threshold(g.size)


# ----------------------------------------------------------------------------- against torch and differences
@pytest.mark.parametrize("part", NE.PARTS)
def test_gradient_matches_torch_autograd(part):
    case = instance(seed=5)
    W, Ws, kw = case["W"], case["W_star"], case["kw"]
    Wt = torch.tensor(W, requires_grad=True)
    at = torch.tensor(kw["a"], requires_grad=True)
    value = NE.loss_torch(Wt, torch.tensor(Ws), part, **{**kw, "a": at})
    gW_t, ga_t = torch.autograd.grad(value, (Wt, at))
    gW, ga = NE.gradient(W, Ws, part, train_output=True, **kw)
    assert_close(value.item(), NE.loss(W, Ws, part, **kw), rtol=1e-13, what=f"{part} loss torch vs numpy")
    assert_close(gW, gW_t.numpy(), rtol=1e-10, atol=1e-12 * np.abs(gW).max(), what=f"{part} grad_W")
    assert_close(ga, ga_t.numpy(), rtol=1e-10, atol=1e-12 * np.abs(ga).max(), what=f"{part} grad_a")


@pytest.mark.parametrize("part", NE.PARTS)
def test_gradient_matches_central_differences(part):
    case = instance(seed=6)
    W, Ws, kw = case["W"], case["W_star"], case["kw"]
    h = 1e-5
    fd = np.zeros_like(W)
    for idx in np.ndindex(W.shape):
        E = np.zeros_like(W)
        E[idx] = h
        fd[idx] = (NE.loss(W + E, Ws, part, **kw) - NE.loss(W - E, Ws, part, **kw)) / (2 * h)
    g = NE.gradient(W, Ws, part, **kw)
    # central differences: truncation ~h^2 and rounding ~eps |loss| / h
    assert_close(g, fd, rtol=1e-7, atol=1e-8 * np.abs(g).max(), what=f"{part} gradient vs differences")


@pytest.mark.parametrize("part", NE.PARTS)
def test_hessian_matches_torch_func_hessian(part):
    case = instance(seed=7, K=3, K_star=2, d=3)
    W, Ws, kw = case["W"], case["W_star"], case["kw"]
    Wst = torch.tensor(Ws)
    Ht = torch.func.hessian(lambda w: NE.loss_torch(w, Wst, part, **kw))(torch.tensor(W)).reshape(W.size, W.size)
    H = NE.hessian(W, Ws, part, **kw)
    assert_close(H, Ht.numpy(), rtol=1e-9, atol=1e-11 * np.abs(H).max(), what=f"{part} Hessian")


def test_hessian_matches_differences_of_the_gradient():
    case = instance(seed=8)
    W, Ws, kw = case["W"], case["W_star"], case["kw"]
    h = 1e-6
    cols = []
    for idx in np.ndindex(W.shape):
        E = np.zeros_like(W)
        E[idx] = h
        cols.append(((NE.gradient(W + E, Ws, "H", **kw) - NE.gradient(W - E, Ws, "H", **kw)) / (2 * h)).ravel())
    H = NE.hessian(W, Ws, "H", **kw)
    assert_close(H, np.array(cols).T, rtol=1e-6, atol=1e-7 * np.abs(H).max(), what="Hessian vs differences")


@pytest.mark.parametrize("part", ["L", "J", "J2", "H"])
def test_single_node_spectrum_matches_numerics(part):
    """At w = w* (K = K* = 1, unit output weights, cov = I) the Hessian has eigenvalue lambda_parallel along w and
    lambda_perp (d - 1 times) across it (theory.erf.single_node_spectrum)."""
    n_value, d = 1.7, 4
    lam_par, lam_perp = TE.single_node_spectrum(part)
    subs = {TE.n: n_value, TE.lam1: LAMBDAS[0], TE.lam2: LAMBDAS[1]}
    expected = np.sort([float(lam_par.subs(subs))] + [float(lam_perp.subs(subs))] * (d - 1))
    w = np.random.default_rng(2).standard_normal(d)
    w *= n_value / np.linalg.norm(w)
    eig = np.linalg.eigvalsh(NE.hessian(w[None], w[None], part, sobolev=LAMBDAS))
    assert_close(eig, expected, rtol=1e-12, what=f"{part} single-node spectrum")


def test_single_node_spectrum_is_the_gauss_newton_matrix():
    # at the teacher the Hessian of L is E[erf'(w.x)^2 x x^T]: lambda_perp = E[erf'(a)^2], a ~ N(0, n^2)
    lam_perp = TE.single_node_spectrum("L")[1]
    with mpmath.workdps(30):
        n_value = mpmath.mpf("0.9")
        direct = mpmath.quad(lambda z: (2 / mpmath.sqrt(mpmath.pi) * mpmath.exp(-(n_value * z) ** 2)) ** 2
                             * mpmath.npdf(z), [-mpmath.inf, 0, mpmath.inf])
        assert abs(direct - mpmath.mpf(str(sp.N(lam_perp.subs(TE.n, sp.Rational(9, 10)), 35)))) < 1e-25


# ----------------------------------------------------------------------------- saturation and bad input
def _strict(fn, *args, **kwargs):
    with warnings.catch_warnings(), np.errstate(over="raise", divide="raise", invalid="raise", under="ignore"):
        warnings.simplefilter("error")
        return fn(*args, **kwargs)


# growth exponents in the scale s of the rows of (loss, gradient, Hessian), from the pair term of a row with itself:
# for k >= 1, erf^(k)(a) with a ~ N(0, s^2) is a bump of width 1 where the density of a is ~1/s, so
# E[erf^(k)(a)^2] ~ 1/s and |w|^(2k) E[erf^(k)(a)^2] ~ s^(2k-1): J ~ s, J2 ~ s^3, while L stays bounded
# (erf -> sign); each derivative in W costs one power of s
SATURATION_EXPONENTS = {"L": (0, -1, -2), "J": (1, 0, -1), "J2": (3, 2, 1), "H": (3, 2, 1)}


def test_saturated_weights_give_finite_results_without_warnings():
    case = instance(seed=9)
    W, Ws, kw = case["W"], case["W_star"], case["kw"]
    sizes = {}
    for scale in (1e5, 1e6):
        for part in NE.PARTS:
            value = _strict(NE.loss, W * scale, Ws * scale, part, **kw)
            grad = _strict(NE.gradient, W * scale, Ws * scale, part, **kw)
            H = _strict(NE.hessian, W * scale, Ws * scale, part, **kw)
            assert np.isfinite(value) and np.isfinite(grad).all() and np.isfinite(H).all(), (scale, part)
            sizes[scale, part] = np.array([abs(value), np.linalg.norm(grad), np.linalg.norm(H)])
        t = _strict(NE.loss_torch, torch.tensor(W * scale), torch.tensor(Ws * scale), "H", **kw)
        assert torch.isfinite(t)
    for part, exponents in SATURATION_EXPONENTS.items():  # H: lambda_2 > 0, so J2 dominates
        ratio = sizes[1e6, part] / sizes[1e5, part]
        assert_close(np.log10(ratio), np.array(exponents, dtype=float), rtol=0, atol=0.01, what=f"{part} growth")


def test_mixed_scales_and_zero_rows_are_finite():
    W = np.array([[1e6, -2e5, 3e5], [0.0, 0.0, 0.0]])
    Ws = np.array([[1e-8, 2e-8, 0.0], [0.3, -1.0, 2.0]])
    for part in NE.PARTS:
        assert np.isfinite(_strict(NE.hessian, W, Ws, part)).all()
        assert np.isfinite(_strict(NE.gradient, W, Ws, part)).all()


GOOD = dict(W=np.ones((2, 3)), W_star=np.ones((1, 3)) * 0.5)


@pytest.mark.parametrize("change,name", [
    (dict(W=np.array([[1.0, np.nan, 0.0], [1.0, 2.0, 3.0]])), "W"),
    (dict(W=np.ones((2, 3, 1))), "W"),
    (dict(W=[["x", "y", "z"]]), "W"),
    (dict(W_star=np.ones((1, 4))), "W_star"),
    (dict(W_star=np.array([[np.inf, 0.0, 0.0]])), "W_star"),
    (dict(a=np.ones(3)), "a"),
    (dict(a=np.array([1.0, np.nan])), "a"),
    (dict(a_star=np.ones(2)), "a_star"),
    (dict(cov=np.ones((3, 3))), "cov"),
    (dict(cov=np.eye(2)), "cov"),
    (dict(part="J3"), "part"),
    (dict(sobolev=(1.0, -1.0)), "Sobolev"),
    (dict(sobolev=(1.0,)), "sobolev"),
    (dict(W=np.full((2, 3), 1e20)), "W"),
    (dict(a=np.array([1e60, 1.0])), "a"),
])
def test_bad_input_raises_value_error_naming_the_argument(change, name):
    args = {**GOOD, "part": "H", **change}
    W, Ws, part = args.pop("W"), args.pop("W_star"), args.pop("part")
    for fn in (NE.loss, NE.gradient, NE.hessian):
        with pytest.raises(ValueError, match=name):
            fn(W, Ws, part, **args)


def test_bad_train_output_raises():
    with pytest.raises(ValueError, match="train_output"):
        NE.gradient(GOOD["W"], GOOD["W_star"], "L", train_output="yes")


# ----------------------------------------------------------------------------- properties
@st.composite
def networks(draw):
    K = draw(st.integers(1, 3))
    K_star = draw(st.integers(1, 3))
    d = draw(st.integers(1, 4))
    entry = st.floats(-3.0, 3.0, allow_nan=False)
    W = np.array(draw(st.lists(entry, min_size=K * d, max_size=K * d))).reshape(K, d)
    Ws = np.array(draw(st.lists(entry, min_size=K_star * d, max_size=K_star * d))).reshape(K_star, d)
    a = np.array(draw(st.lists(entry, min_size=K, max_size=K)))
    a_star = np.array(draw(st.lists(entry, min_size=K_star, max_size=K_star)))
    return W, Ws, a, a_star


def _scale(a, a_star):
    return (np.abs(a).sum() + np.abs(a_star).sum()) ** 2


@given(networks(), st.sampled_from(NE.PARTS))
@settings(max_examples=40)
def test_loss_is_nonnegative(net, part):
    W, Ws, a, a_star = net
    value = NE.loss(W, Ws, part, a=a, a_star=a_star, sobolev=LAMBDAS)
    assert value >= -1e-14 * max(_scale(a, a_star), 1.0)  # a signed pair sum: rounding of its O(A^2) terms


@given(networks(), st.sampled_from(NE.PARTS))
@settings(max_examples=40)
def test_loss_vanishes_at_the_teacher(net, part):
    W, _, a, _ = net
    for value in (NE.loss(W, W, part, a=a, a_star=a, sobolev=LAMBDAS),
                  NE.gradient(W, W, part, a=a, a_star=a, sobolev=LAMBDAS)):
        assert np.all(np.abs(value) <= 1e-14 * max(_scale(a, a), 1.0))


@given(networks(), st.sampled_from(NE.PARTS))
@settings(max_examples=40)
def test_hessian_is_symmetric(net, part):
    W, Ws, a, a_star = net
    H = NE.hessian(W, Ws, part, a=a, a_star=a_star, sobolev=LAMBDAS)
    assert H.shape == (W.size, W.size)
    assert np.abs(H - H.T).max() <= 1e-13 * max(np.abs(H).max(), 1e-300)


@given(networks())
@settings(max_examples=20)
def test_hessian_at_the_teacher_is_positive_semidefinite(net):
    # at W = W*, a = a* the loss is at its global minimum 0: the Hessian cannot have a negative direction
    W, _, a, _ = net
    H = NE.hessian(W, W, "H", a=a, a_star=a, sobolev=LAMBDAS)
    assert np.linalg.eigvalsh(H).min() >= -1e-12 * max(np.abs(H).max(), 1e-300)


def test_row_gradient_is_the_chain_rule_of_the_coordinates():
    """theory.erf.row_gradient against pair_fields' true gradient (SymPy's coordinate derivative) in d = 2."""
    fields = TE.pair_fields("J")
    coef = TE.row_gradient("J")
    P = TE._Pair()
    Su, Sv = P.cov * P.u, P.cov * P.v
    claimed = coef["cov u"] * Su + coef["cov v"] * Sv + coef["v"] * P.v
    assert all(TE._vanishes(e, fields["coordinates"]) for e in (claimed - fields["true_gradient"]))
