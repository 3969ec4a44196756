"""The model-family Monte-Carlo witness (:mod:`numerics.mc_family`) against independent closed forms.

Statistical decisions are z-tests at a family-wise level ALPHA = 1e-3 per test, Bonferroni-corrected
over the m entries compared in that test (threshold ``Phi^-1(1 - ALPHA / (2 m))``, from
``scipy.stats.norm.isf``); tolerances are never widened beyond that.  Every stream is seeded, so each
test is deterministic; the level bounds how often a correct implementation would fail for a fresh seed.

Closed forms used here (written in this file, not taken from :mod:`numerics` except where stated):
with ``c = [a, -a*]`` and rows ``z = [W; W*]``,

    L  = 1/2 sum_mn c_m c_n E[sigma(z_m.x) sigma(z_n.x)],
    J  = 1/2 sum_mn c_m c_n (z_m.z_n)   E[sigma'(z_m.x) sigma'(z_n.x)],
    J2 = 1/2 sum_mn c_m c_n (z_m.z_n)^2 E[sigma''(z_m.x) sigma''(z_n.x)],

and every expectation is a combination of Cho & Saul (2009)'s arc-cosine kernels
``E[relu(u.x)^q relu(v.x)^q] = |u|^q |v|^q J_q(theta) / (2 pi)``, ``x ~ N(0, I)``, with
``J_0 = pi - theta``, ``J_1 = sin + (pi - theta) cos``, ``J_2 = 3 sin cos + (pi - theta)(1 + 2 cos^2)``,
``J_3 = 15 sin - 11 sin^3 + (pi - theta)(9 cos + 6 cos^3)``; a negative-side term ``relu(-t)^q`` is the
same kernel at ``-u`` (``E[relu(u.x)^q relu(-v.x)^q] = A_q(u, -v)``, angle ``pi - theta``).
"""
import math

import numpy as np
import pytest
import torch
from scipy import stats

import numerics
from numerics import mc
from numerics.family import cov_sqrt
from numerics.mc_family import FamilyMCEstimate, input_derivatives, monte_carlo_family, per_sample_family

ALPHA = 1e-3
N = 200_000


def assert_z(z: dict, what: str = "") -> None:
    """All z-scores (floats and arrays, flattened) below the Bonferroni threshold for their count."""
    flat = np.concatenate([np.ravel(np.asarray(v, dtype=float)) for v in z.values()])
    m = flat.size
    threshold = float(stats.norm.isf(ALPHA / (2 * m)))
    worst = max(z, key=lambda k: np.max(np.abs(z[k])))
    assert np.all(np.isfinite(flat)), f"{what}: non-finite z-scores"
    assert np.abs(flat).max() < threshold, (
        f"{what}: max |z| = {np.abs(flat).max():.2f} (at {worst!r}) >= {threshold:.2f} "
        f"(Bonferroni, alpha = {ALPHA}, m = {m})")


def weights(seed, K, Ks, d):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((K, d)), rng.standard_normal((Ks, d))


# ----------------------------------------------------------------------------- closed forms (torch, float64)
_J = {
    0: lambda t: math.pi - t,
    1: lambda t: torch.sin(t) + (math.pi - t) * torch.cos(t),
    2: lambda t: 3 * torch.sin(t) * torch.cos(t) + (math.pi - t) * (1 + 2 * torch.cos(t) ** 2),
    3: lambda t: 15 * torch.sin(t) - 11 * torch.sin(t) ** 3 + (math.pi - t) * (9 * torch.cos(t) + 6 * torch.cos(t) ** 3),
}


def arccos_kernel(q: int, u: torch.Tensor, v: torch.Tensor, same: bool) -> torch.Tensor:
    """Cho & Saul: ``E[relu(u.x)^q relu(v.x)^q]`` (``relu^0 = 1{. > 0}``); ``same``: ``v`` is ``u``
    (or ``-u``, then pass ``v`` and ``same=False`` is fine: the angle is pi)."""
    nu, nv = torch.linalg.norm(u), torch.linalg.norm(v)
    if same:
        theta = torch.zeros((), dtype=u.dtype)
    else:
        uh, vh = u / nu, v / nv
        theta = 2 * torch.atan2(torch.linalg.norm(uh - vh), torch.linalg.norm(uh + vh))
    return (nu * nv) ** q * _J[q](theta) / (2 * math.pi)


def kernel(q, cp, cm):
    """``E[s(u.x) s(v.x)]`` for ``s(t) = cp relu(t)^q + cm relu(-t)^q``."""
    def k(u, v, same):
        out = (cp * cp + cm * cm) * arccos_kernel(q, u, v, same)
        if cm != 0:
            out = out + 2 * cp * cm * arccos_kernel(q, u, -v, False)
        return out
    return k


def closed_losses(W, Ws, a, a_s, k0, k1, k2=None, lam=(1.0, 0.0)) -> dict:
    """``L, J, (J2), H`` from the kernels of ``sigma`` (``k0``), ``sigma'`` (``k1``), ``sigma''`` (``k2``);
    torch tensors in, 0-d tensors out (differentiable in ``W`` and ``a``)."""
    Z = torch.cat([W, Ws])
    c = torch.cat([a, -a_s])
    P = len(Z)
    out = {"L": 0.0, "J": 0.0}
    if k2 is not None:
        out["J2"] = 0.0
    for m in range(P):
        for n in range(P):
            same = m == n
            cc = c[m] * c[n] / 2
            dot = Z[m] @ Z[n]
            out["L"] = out["L"] + cc * k0(Z[m], Z[n], same)
            out["J"] = out["J"] + cc * dot * k1(Z[m], Z[n], same)
            if k2 is not None:
                out["J2"] = out["J2"] + cc * dot ** 2 * k2(Z[m], Z[n], same)
    out["H"] = out["L"] + lam[0] * out["J"] + (lam[1] * out["J2"] if k2 is not None else 0.0)
    return out


def closed_with_gradients(W, Ws, a, a_s, kernels, lam, parts) -> tuple:
    """``({part: loss}, {part: d loss / d W}, {part: d loss / d a})`` of :func:`closed_losses`, the
    gradients by autograd of the closed form (the true gradients)."""
    Wt = torch.tensor(W, requires_grad=True)
    at = torch.tensor(a, requires_grad=True)
    out = closed_losses(Wt, torch.tensor(Ws), at, torch.tensor(a_s), *kernels, lam=lam)
    losses, gW, ga = {}, {}, {}
    for p in parts:
        losses[p] = float(out[p].detach())
        gW[p], ga[p] = (g.numpy() for g in torch.autograd.grad(out[p], (Wt, at), retain_graph=True))
    return losses, gW, ga


def relu_kernels():
    return kernel(1, 1.0, 0.0), kernel(0, 1.0, 0.0)


def leaky_kernels(beta):
    # sigma = relu(t) - beta relu(-t); sigma' = 1{t > 0} + beta 1{t < 0}
    return kernel(1, 1.0, -beta), kernel(0, 1.0, beta)


def power_kernels(p):
    # sigma = relu^p, sigma' = p relu^(p-1), sigma'' = p (p-1) relu^(p-2)
    return kernel(p, 1.0, 0.0), kernel(p - 1, float(p), 0.0), kernel(p - 2, float(p * (p - 1)), 0.0)


# ----------------------------------------------------------------------------- (a) the default family
def _closed_default(W, Ws):
    return ({p: numerics.loss(W, Ws, p) for p in numerics.PARTS},
            {p: numerics.gradient(W, Ws, p, "mean") for p in numerics.PARTS})


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_default_family_agrees_with_closed_forms(dtype):
    W, Ws = weights(1, 3, 2, 5)
    est = monte_carlo_family(W, Ws, N, seed=3, device="cpu", dtype=dtype)
    assert isinstance(est, FamilyMCEstimate) and est.parts == ("L", "J", "H") and est.mean_field_a == {}
    assert_z(est.z_scores(*_closed_default(W, Ws)), f"default family, {dtype}")


def test_default_family_is_monte_carlo_to_rounding():
    """Same seed and chunks: the same samples as :func:`numerics.mc.monte_carlo`, so the autograd
    witness and the fused closed per-sample engine agree to rounding, sample statistics included."""
    W, Ws = weights(2, 3, 4, 6)
    fam = monte_carlo_family(W, Ws, 30_000, seed=5, device="cpu", chunk_size=7_000)
    ref = mc.monte_carlo(W, Ws, 30_000, seed=5, device="cpu", chunk_size=7_000, progress=False)
    for p in numerics.PARTS:
        assert fam.loss[p] == pytest.approx(ref.loss[p], rel=1e-12)
        assert fam.loss_se[p] == pytest.approx(ref.loss_se[p], rel=1e-9)
        scale = np.abs(ref.mean_field[p]).max()
        np.testing.assert_allclose(fam.mean_field[p], ref.mean_field[p], rtol=0, atol=1e-12 * scale)
        np.testing.assert_allclose(fam.mean_field_se[p], ref.mean_field_se[p], rtol=1e-8)


# ----------------------------------------------------------------------------- (b) positive output weights
def test_positive_output_weights_are_row_scalings_for_relu():
    """relu: ``a_j relu(w_j.x) = relu((a_j w_j).x)`` for ``a_j > 0``, so the losses are the closed forms at
    rows ``a_j w_j``, and by the chain rule (per sample) the mean field in ``w_j`` is ``a_j`` times the
    closed mean field there."""
    W, Ws = weights(3, 3, 2, 4)
    rng = np.random.default_rng(30)
    a, a_s = rng.uniform(0.3, 2.0, 3), rng.uniform(0.3, 2.0, 2)
    V, Vs = a[:, None] * W, a_s[:, None] * Ws
    est = monte_carlo_family(W, Ws, N, seed=4, device="cpu", a=a, a_star=a_s)
    closed_loss, closed_field = _closed_default(V, Vs)
    closed_field = {p: a[:, None] * g for p, g in closed_field.items()}
    assert_z(est.z_scores(closed_loss, closed_field), "positive output weights")


# ----------------------------------------------------------------------------- (c) covariance
def test_covariance_samples_x_as_sqrt_cov_z():
    """``x = S z`` with ``S = cov^(1/2)`` symmetric: ``w.x = (S w).z``, so ``L`` (and its mean field, which
    carries the factor ``x = S z``) is the identity-covariance closed form at rows ``W S`` (times ``S``);
    ``J`` keeps the input gradient in x coordinates, ``E[1{w_m.x>0} 1{w_n.x>0}] = (pi - angle(S w_m, S w_n)) / 2 pi``."""
    d = 4
    W, Ws = weights(5, 2, 3, d)
    rng = np.random.default_rng(50)
    A = rng.standard_normal((d, d))
    cov = A @ A.T / d + 0.3 * np.eye(d)
    S = cov_sqrt(cov)
    lam1 = 0.5
    est = monte_carlo_family(W, Ws, N, seed=6, device="cpu", cov=cov, sobolev=(lam1, 0.0))

    Z = np.vstack([W, Ws])
    c = np.concatenate([np.ones(len(W)), -np.ones(len(Ws))])
    SZ = Z @ S
    u = SZ / np.linalg.norm(SZ, axis=1, keepdims=True)
    theta = np.arccos(np.clip(u @ u.T, -1, 1))
    np.fill_diagonal(theta, 0.0)
    P0 = (np.pi - theta) / (2 * np.pi)  # E[1_m 1_n]
    J = 0.5 * c @ ((Z @ Z.T) * P0) @ c
    field_J = (P0[:len(W)] * c) @ Z  # E[1_j sum_m c_m 1_m z_m]
    L = numerics.loss(W @ S, Ws @ S, "L")
    field_L = numerics.gradient(W @ S, Ws @ S, "L", "mean") @ S
    closed_loss = {"L": L, "J": J, "H": L + lam1 * J}
    closed_field = {"L": field_L, "J": field_J, "H": field_L + lam1 * field_J}
    assert_z(est.z_scores(closed_loss, closed_field), "covariance")


# ----------------------------------------------------------------------------- (d) leaky relu
def test_leaky_relu_with_zero_slope_is_relu_bit_for_bit():
    W, Ws = weights(7, 2, 2, 3)
    r = monte_carlo_family(W, Ws, 20_000, seed=8, device="cpu")
    s = monte_carlo_family(W, Ws, 20_000, seed=8, device="cpu", activation=("leaky_relu", 0.0))
    for f in ("loss", "loss_se", "mean_field", "mean_field_se"):
        a, b = getattr(r, f), getattr(s, f)
        assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a), f


def test_leaky_relu_against_arccos_kernels():
    """``s = max(t, beta t)``: ``E[s(u.x) s(v.x)] = (1 + beta^2) k1(theta) - 2 beta k1(pi - theta)`` and
    ``E[s' s'] = (1 + beta^2) k0(theta) + 2 beta k0(pi - theta)``; signed output weights.  The per-sample
    losses are continuous in W only for L, so only L's mean field is the closed form's gradient."""
    beta, lam = 0.3, (0.7, 0.0)
    W, Ws = weights(9, 2, 1, 3)
    a, a_s = np.array([1.3, -0.6]), np.array([0.8])
    est = monte_carlo_family(W, Ws, N, seed=9, device="cpu", a=a, a_star=a_s, activation=("leaky_relu", beta),
                             sobolev=lam)
    assert est.parts == ("L", "J", "H")
    losses, gW, _ = closed_with_gradients(W, Ws, a, a_s, leaky_kernels(beta), lam, ("L", "J", "H"))
    assert_z(est.z_scores(losses, {"L": gW["L"]}), "leaky relu")


# ----------------------------------------------------------------------------- (e) powers of relu
@pytest.mark.parametrize("p", [2, 3])
def test_relu_power_against_arccos_kernels(p):
    """``relu^p``: every part from Cho & Saul's kernels of degrees ``p, p-1, p-2``, signed output weights,
    ``H = L + lambda_1 J + lambda_2 J2``.  Mean fields: the per-sample loss is continuous in W (so the mean
    field is the gradient of the closed form) for L and J at p = 2, and for every part at p = 3."""
    lam = (0.5, 0.25)
    W, Ws = weights(10 + p, 2, 1, 3)
    a, a_s = np.array([0.9, -0.5]), np.array([1.1])
    est = monte_carlo_family(W, Ws, N, seed=10 + p, device="cpu", a=a, a_star=a_s, activation=("relu_power", p),
                             sobolev=lam)
    assert est.parts == ("L", "J", "J2", "H")
    losses, gW, _ = closed_with_gradients(W, Ws, a, a_s, power_kernels(p), lam, est.parts)
    smooth = ("L", "J") if p == 2 else est.parts
    assert_z(est.z_scores(losses, {q: gW[q] for q in smooth}), f"relu_power {p}")
    # the weights of H, exactly: the per-sample l_H and its gradient are that combination, so are the means
    assert est.loss["H"] == pytest.approx(est.loss["L"] + lam[0] * est.loss["J"] + lam[1] * est.loss["J2"], rel=1e-12)
    combo = est.mean_field["L"] + lam[0] * est.mean_field["J"] + lam[1] * est.mean_field["J2"]
    np.testing.assert_allclose(est.mean_field["H"], combo, rtol=0, atol=1e-12 * np.abs(combo).max())


# ----------------------------------------------------------------------------- (f) J2 per sample
@pytest.mark.parametrize("p", [2, 3])
def test_autograd_input_hessian_and_j2_per_sample(p):
    """``hess_x g = sum_j a_j sigma''(w_j.x) w_j w_j^T``, ``sigma'' = p (p-1) relu^(p-2)``: autograd equals
    it (and ``grad_x g = sum_j a_j p relu^(p-1) w_j``) on random samples, and ``l_J2`` is half the squared
    Frobenius norm of the difference, to rounding."""
    W, Ws = weights(20 + p, 3, 2, 4)
    a, a_s = np.array([0.7, -1.2, 0.4]), np.array([1.5, -0.3])
    x = torch.randn(16, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(p))
    X = x.numpy()

    def explicit(V, b):
        pre = X @ V.T
        r = np.maximum(pre, 0.0)
        s2 = p * (p - 1) * (r ** (p - 2) if p > 2 else (pre > 0).astype(float))
        grad = (b * p * r ** (p - 1)) @ V
        hess = np.einsum("nj,j,jd,je->nde", s2, b, V, V)
        return grad, hess

    g, dg, hg = input_derivatives(W, x, a=a, activation=("relu_power", p))
    grad, hess = explicit(W, a)
    np.testing.assert_allclose(g.numpy(), (a * np.maximum(X @ W.T, 0) ** p).sum(1), rtol=1e-12)
    np.testing.assert_allclose(dg.numpy(), grad, rtol=1e-12, atol=1e-12 * np.abs(grad).max())
    np.testing.assert_allclose(hg.numpy(), hess, rtol=1e-12, atol=1e-12 * np.abs(hess).max())

    per = per_sample_family(W, Ws, x, a=a, a_star=a_s, activation=("relu_power", p), sobolev=(1.0, 2.0))
    M = hess - explicit(Ws, a_s)[1]
    lJ2 = 0.5 * (M * M).sum((1, 2))
    np.testing.assert_allclose(per.loss["J2"].numpy(), lJ2, rtol=1e-12)
    np.testing.assert_allclose(per.loss["H"].numpy(),
                               (per.loss["L"] + per.loss["J"] + 2.0 * per.loss["J2"]).numpy(), rtol=1e-12)


# ----------------------------------------------------------------------------- (g) output weights, refusals, seeds
def test_train_output_mean_field_in_a():
    """Default relu model, ``train_output=True``: ``E[dl_L/da_j] = E[(g - g*) relu(w_j.x)]
    = sum_l a_l k1(w_j, w_l) - sum_t a*_t k1(w_j, w*_t)`` (``k1(w, w) = |w|^2/2``); J and H against the
    gradient in ``a`` of the closed forms (the losses are polynomials in ``a``); the mean field in W
    is still ``numerics.gradient(..., "mean")``."""
    W, Ws = weights(30, 3, 2, 4)
    est = monte_carlo_family(W, Ws, N, seed=31, device="cpu", train_output=True)
    Z = np.vstack([W, Ws])
    c = np.concatenate([np.ones(3), -np.ones(2)])
    n = np.linalg.norm(Z, axis=1)
    cos = np.clip((Z @ Z.T) / np.outer(n, n), -1, 1)
    theta = np.arccos(cos)
    np.fill_diagonal(theta, 0.0)
    K1 = np.outer(n, n) * (np.sin(theta) + (np.pi - theta) * np.cos(theta)) / (2 * np.pi)
    field_a_L = K1[:3] @ c
    np.testing.assert_allclose(np.diag(K1), n ** 2 / 2, rtol=1e-12)
    _, _, ga = closed_with_gradients(W, Ws, np.ones(3), np.ones(2), relu_kernels(), (1.0, 0.0), ("J", "H"))
    z = est.z_scores(*_closed_default(W, Ws), {"L": field_a_L, "J": ga["J"], "H": ga["H"]})
    assert_z(z, "train_output")
    assert est.mean_field_a["L"].shape == (3,)


@pytest.mark.parametrize("activation", ["relu", ("leaky_relu", 0.2)])
def test_j2_refused_without_second_derivative(activation):
    W, Ws = weights(0, 2, 2, 3)
    with pytest.raises(ValueError, match="J2"):
        monte_carlo_family(W, Ws, 100, seed=0, device="cpu", activation=activation, sobolev=(1.0, 0.5))
    with pytest.raises(ValueError, match="J2"):
        mc.monte_carlo(W, Ws, 100, seed=0, device="cpu", activation=activation, sobolev=(1.0, 0.5))


@pytest.mark.parametrize("kwargs,match", [
    ({"a": np.ones(3)}, "shape"),
    ({"a_star": [1.0, np.nan]}, "non-finite"),
    ({"cov": -np.eye(3)}, "positive definite"),
    ({"cov": np.eye(2)}, "shape"),
    ({"activation": ("relu_power", 4)}, "relu_power"),
    ({"sobolev": (1.0, -1.0)}, ">= 0"),
    ({"train_output": 1}, "train_output"),
    ({"seed": -1}, "seed"),
    ({"seed": 1.0}, "seed"),
    ({"dtype": torch.float16}, "dtype"),
    ({"chunk_size": 0}, "chunk_size"),
    ({"device": "tpu"}, "device"),
])
def test_bad_arguments(kwargs, match):
    W, Ws = weights(0, 2, 2, 3)
    kw = {"seed": 0, "device": "cpu", **kwargs}
    with pytest.raises(ValueError, match=match):
        monte_carlo_family(W, Ws, 100, **kw)


def test_bad_weights_and_sample_counts():
    W, Ws = weights(0, 2, 2, 3)
    with pytest.raises(ValueError, match="d = 3"):
        monte_carlo_family(W, Ws[:, :2], 100, seed=0)
    with pytest.raises(ValueError, match="zero"):
        monte_carlo_family(np.zeros((2, 3)), Ws, 100, seed=0)
    for n in (1, [10, 100], 10.0, True):
        with pytest.raises(ValueError, match="n_samples"):
            monte_carlo_family(W, Ws, n, seed=0)


def test_seeds_are_reproducible_and_matter():
    W, Ws = weights(40, 2, 2, 3)
    kw = {"device": "cpu", "activation": ("relu_power", 2), "sobolev": (1.0, 0.5), "train_output": True}
    a = monte_carlo_family(W, Ws, 5_000, seed=1, **kw)
    b = monte_carlo_family(W, Ws, 5_000, seed=1, **kw)
    c = monte_carlo_family(W, Ws, 5_000, seed=2, **kw)
    assert a == b and hash(a) == hash(b)
    assert a != c and a.loss["J2"] != c.loss["J2"]
    # the chunking does not change the samples' statistics beyond rounding
    d = monte_carlo_family(W, Ws, 5_000, seed=1, chunk_size=5_000, **kw)
    e = monte_carlo_family(W, Ws, 5_000, seed=1, chunk_size=5_000, **kw)
    assert d == e


def test_monte_carlo_dispatches_to_the_family():
    W, Ws = weights(41, 2, 2, 3)
    kw = {"activation": ("relu_power", 2), "sobolev": (1.0, 0.5)}
    est = mc.monte_carlo(W, Ws, 5_000, seed=3, device="cpu", **kw)
    assert isinstance(est, FamilyMCEstimate)
    assert est == monte_carlo_family(W, Ws, 5_000, seed=3, device="cpu", **kw)
    assert isinstance(mc.monte_carlo(W, Ws, 5_000, seed=3, device="cpu", a=np.ones(2)), FamilyMCEstimate)
    with pytest.raises(ValueError, match="checkpoints"):
        mc.monte_carlo(W, Ws, [1_000, 2_000], seed=3, device="cpu", **kw)
    with pytest.raises(ValueError, match="plain"):
        mc.monte_carlo(W, Ws, 1_000, seed=3, device="cpu", method="subspace", **kw)


def test_monte_carlo_with_default_keywords_is_unchanged():
    W, Ws = weights(42, 2, 3, 4)
    plain = mc.monte_carlo(W, Ws, 5_000, seed=4, device="cpu", progress=False)
    explicit = mc.monte_carlo(W, Ws, 5_000, seed=4, device="cpu", progress=False, a=None, a_star=None,
                              activation="relu", cov=None, sobolev=(1, 0), train_output=False)
    assert isinstance(explicit, mc.MCEstimate) and explicit == plain
    runs = list(mc.monte_carlo(W, Ws, [1_000, 2_000], seed=4, device="cpu", progress=False, activation="relu"))
    assert [r.n for r in runs] == [1_000, 2_000]


def test_z_scores_and_progress():
    W, Ws = weights(43, 2, 1, 3)
    est = monte_carlo_family(W, Ws, 2_000, seed=5, device="cpu", progress=True)
    z = est.z_scores({"L": est.loss["L"]}, {"J": est.mean_field["J"]})
    assert z["L"] == 0.0 and np.array_equal(z["mean_field/J"], np.zeros((2, 3)))
    with pytest.raises(ValueError, match="J2"):
        est.z_scores({"J2": 0.0}, {})
    with pytest.raises(ValueError, match="train_output"):
        est.z_scores({}, {}, {"L": np.zeros(2)})
