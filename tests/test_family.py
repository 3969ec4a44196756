"""The model family beyond the paper (output weights, activations, covariance, J2): its losses.

* theory: the arc kernels derived over the whole plane equal Cho & Saul's published ``J_n`` (and at
  ``pi - theta`` for opposite signs), the covariance reduction is an identity;
* the generated kernels against ``mpmath`` quadrature of the definition at 30 digits, at angles from
  1e-8 to pi - 1e-8 (both sides of the series switch), for several coefficient pairs;
* the losses against identities that hold for the whole family: the defaults give the paper's numbers
  (bit for bit on the default path), positive output weights are a rescaling of the rows for ReLU, the
  covariance is a linear change of the rows for ``L``, ``leaky_relu`` with ``beta = 0`` is ReLU;
* refusals with clear messages; the torch path and its autograd in the output weights.
"""
from __future__ import annotations

import mpmath
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import numerics
from numerics import quadrature
from numerics.family import cov_sqrt, family
from numerics.family_population import kernel_matrix
from numerics.geometry import pair_geometry

EPS = np.finfo(float).eps
ACTIVATIONS = ["relu", ("leaky_relu", 0.01), ("leaky_relu", 0.3), ("relu_power", 2), ("relu_power", 3)]


def random_case(seed, K=3, Ks=2, d=4):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((K, d)), rng.standard_normal((Ks, d)), rng


# ----------------------------------------------------------------------------- theory
@pytest.mark.slow
def test_arc_kernels_are_cho_and_sauls():
    from theory import activations

    diffs = activations.check_against_cho_saul()
    assert all(v == 0 for v in diffs.values()), {k: v for k, v in diffs.items() if v != 0}


def test_covariance_reduction_is_an_identity():
    from theory import activations

    assert activations.covariance_reduction() == {"projection": 0, "covariance": 0}


# ----------------------------------------------------------------------------- kernels against quadrature
ANGLES = [1e-8, 0.05, 0.0999, 0.1001, 1.0, 2.5, np.pi - 0.1001, np.pi - 0.0999, np.pi - 0.05, np.pi - 1e-8]


@pytest.mark.parametrize("q", [0, 1, 2, 3])
def test_generated_kernels_against_quadrature(q):
    """Every branch (series near 0, closed form, series near pi) of ``c+^2 pp + c+c- (pm + mp) + c-^2 mm``
    against the definition integrated by mpmath at 30 digits.  Tolerance: 1e-14 relative, plus
    64 eps of the kernel's scale ``(n_a n_b)^q (|c+| + |c-|)^2`` (the closed form adds terms up to ~10x
    that scale, so a kernel that vanishes at a kink is resolved to that absolute accuracy)."""
    A = np.array([[1.3, 0.0]])
    for t in ANGLES:
        B = np.array([[0.7 * np.cos(t), 0.7 * np.sin(t)]])
        geo = pair_geometry(A, B)
        # the exact angle of the float rows: pi - psi where psi is the accurate one
        with mpmath.workdps(40):
            exact = mpmath.pi - mpmath.mpf(float(geo.psi[0, 0])) if t > 1 else mpmath.mpf(float(geo.theta[0, 0]))
        for cp, cm in ((1.0, 0.0), (1.0, -0.3), (2.0, 0.5)):
            got = kernel_matrix(geo, q, cp, cm)[0, 0]
            ref = float(quadrature.homogeneous_kernel(q, cp, cm, 1.3, 0.7, exact, 30))
            scale = (1.3 * 0.7) ** q * (abs(cp) + abs(cm)) ** 2
            assert abs(got - ref) <= 1e-14 * abs(ref) + 64 * EPS * scale, (q, t, cp, cm, got, ref)


# ----------------------------------------------------------------------------- identities of the losses
def test_defaults_take_the_default_path_bit_for_bit():
    W, Ws, _ = random_case(1)
    for part in ("L", "J", "H"):
        ref = numerics.loss(W, Ws, part)
        same = numerics.loss(W, Ws, part, a=None, a_star=None, activation="relu", cov=None, sobolev=(1.0, 0.0),
                             train_output=False)
        assert same == ref


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), K=st.integers(1, 4), Ks=st.integers(1, 4), d=st.integers(2, 5))
def test_explicit_unit_weights_give_the_papers_numbers(seed, K, Ks, d):
    """The family's assembly (kernels of sigma and sigma', Gram weights) against the paper's model's
    (a different code path) with a = a* = 1 given explicitly: 1e-12 of sum |pair terms|."""
    W, Ws, _ = random_case(seed, K, Ks, d)
    scale = (np.sum(np.linalg.norm(W, axis=1)) + np.sum(np.linalg.norm(Ws, axis=1))) ** 2
    for part in ("L", "J", "H"):
        got = numerics.loss(W, Ws, part, a=np.ones(K), a_star=np.ones(Ks))
        assert abs(got - numerics.loss(W, Ws, part)) <= 1e-12 * scale, part


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_positive_output_weights_rescale_the_rows_for_relu(seed):
    """a sigma(w.x) = sigma((a w).x) for a > 0 and a positively homogeneous sigma of degree 1, and the
    input gradient scales the same way: L, J, H with output weights = the paper's at rows a_j w_j."""
    W, Ws, rng = random_case(seed)
    a, a_star = rng.uniform(0.2, 3.0, 3), rng.uniform(0.2, 3.0, 2)
    scale = (np.sum(a * np.linalg.norm(W, axis=1)) + np.sum(a_star * np.linalg.norm(Ws, axis=1))) ** 2
    for part in ("L", "J", "H"):
        got = numerics.loss(W, Ws, part, a=a, a_star=a_star)
        assert abs(got - numerics.loss(a[:, None] * W, a_star[:, None] * Ws, part)) <= 1e-12 * scale, part


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_covariance_is_a_change_of_rows_for_L(seed):
    """x = S z with S = cov^(1/2): L depends on the rows only through w.x = (S w).z."""
    W, Ws, rng = random_case(seed)
    M = rng.standard_normal((4, 4))
    cov = M @ M.T + 0.1 * np.eye(4)
    S = cov_sqrt(cov)
    scale = (np.sum(np.linalg.norm(W @ S, axis=1)) + np.sum(np.linalg.norm(Ws @ S, axis=1))) ** 2
    assert abs(numerics.loss(W, Ws, "L", cov=cov) - numerics.loss(W @ S, Ws @ S, "L")) <= 1e-12 * scale


def test_leaky_relu_with_zero_slope_is_relu():
    W, Ws, _ = random_case(2)
    for part in ("L", "J", "H"):
        got = numerics.loss(W, Ws, part, activation=("leaky_relu", 0.0))
        assert abs(got - numerics.loss(W, Ws, part)) <= 1e-12 * numerics.loss(W, Ws, part)


@pytest.mark.parametrize("act", ACTIVATIONS, ids=str)
def test_flipping_every_row_is_a_symmetry(act):
    """g(x) with rows -W is g(-x) with rows W, and x ~ -x under N(0, I): every loss of every member is the
    same at (-W, -W*) as at (W, W*) (the kernels of opposite signs enter through pm and mp alike)."""
    W, Ws, _ = random_case(3)
    for part in ("L", "J", "J2") if act[0] == "relu_power" else ("L", "J"):
        a, b = numerics.loss(W, Ws, part, activation=act), numerics.loss(-W, -Ws, part, activation=act)
        assert abs(a - b) <= 1e-12 * a, part


@pytest.mark.parametrize("p", [2, 3])
def test_relu_power_is_homogeneous(p):
    """L, J, J2 of relu_power(p) are homogeneous in the rows of degree 2p, 2p, 2p (each row's activation
    has degree p; J's gradient brings w back: degree p - 1 + 1; J2's Hessian: p - 2 + 2)."""
    W, Ws, _ = random_case(4)
    for part in ("L", "J", "J2"):
        base = numerics.loss(W, Ws, part, activation=("relu_power", p))
        assert abs(numerics.loss(2 * W, 2 * Ws, part, activation=("relu_power", p)) - 2 ** (2 * p) * base) <= 1e-12 * 2 ** (2 * p) * base


def test_h_is_the_weighted_sum():
    W, Ws, _ = random_case(5)
    act = ("relu_power", 2)
    parts = {p: numerics.loss(W, Ws, p, activation=act) for p in ("L", "J", "J2")}
    H = numerics.loss(W, Ws, "H", activation=act, sobolev=(0.5, 0.25))
    assert abs(H - (parts["L"] + 0.5 * parts["J"] + 0.25 * parts["J2"])) <= 1e-13 * H


def test_the_loss_vanishes_at_the_teacher_and_is_positive_elsewhere():
    W, Ws, _ = random_case(6, K=2, Ks=2)
    for act in ACTIVATIONS:
        lam = (1.0, 0.5) if act[0] == "relu_power" else (1.0, 0.0)
        at = numerics.loss(Ws, Ws, "H", activation=act, sobolev=lam)
        scale = numerics.loss(W, Ws, "H", activation=act, sobolev=lam)
        assert 0.0 <= at <= 1e-13 * scale and scale > 0, act


def test_batched_family_losses_equal_the_loop():
    W, Ws, rng = random_case(7)
    Wb = np.stack([W, 2 * W, -W])
    got = numerics.loss(Wb, Ws, "J2", activation=("relu_power", 3))
    for i in range(3):
        assert got[i] == numerics.loss(Wb[i], Ws, "J2", activation=("relu_power", 3))


FAMILY_KEYWORDS = [dict(activation=("leaky_relu", 0.2), a=np.array([1.0, 2.0, 0.5])),
                   dict(activation=("relu_power", 2), sobolev=(1.0, 0.5)),
                   dict(cov=np.diag([1.0, 2.0, 0.5, 1.5]), train_output=True)]


@pytest.mark.parametrize("kw", FAMILY_KEYWORDS, ids=["leaky, a", "relu_power 2 with J2", "cov, train_output"])
def test_batched_family_gradients_and_hessians_equal_the_loop(kw):
    """Family gradients and Hessians accept batch dimensions (broadcast as for the paper's model): each
    instance is the single call's, bit for bit (the batch runs the single calls one by one); with
    ``train_output`` both gradients come back batched, and the Hessian is over ``(W, a)``."""
    W, Ws, rng = random_case(21)
    Wb = np.stack([W, 2 * W + 0.1 * rng.standard_normal(W.shape)])[:, None] * np.ones((1, 2, 1, 1))  # (2, 2, K, d)
    Wsb = np.stack([Ws, -Ws])  # (2, K*, d): broadcast against the last batch axis
    for field in ("mean", "true"):
        got = numerics.gradient(Wb, Wsb, "H", field, **kw)
        got = got if isinstance(got, tuple) else (got,)
        for i, j in np.ndindex(2, 2):
            want = numerics.gradient(Wb[i, j], Wsb[j], "H", field, **kw)
            want = want if isinstance(want, tuple) else (want,)
            assert len(got) == len(want)
            for g, w in zip(got, want):
                assert g.shape == (2, 2) + w.shape and np.array_equal(g[i, j], w), (field, i, j)
    for field in ("true", "mean", "autograd"):
        got = numerics.hessian(Wb, Wsb, "H", field, **kw)
        for i, j in np.ndindex(2, 2):
            assert np.array_equal(got[i, j], numerics.hessian(Wb[i, j], Wsb[j], "H", field, **kw)), (field, i, j)


def test_batched_family_calls_on_tensors_and_their_refusals(monkeypatch):
    W, Ws, _ = random_case(22)
    kw = dict(activation=("leaky_relu", 0.3), train_output=True)
    Wb = np.stack([W, -W, 0.5 * W])
    gW, ga = numerics.gradient(torch.tensor(Wb, dtype=torch.float32), torch.tensor(Ws, dtype=torch.float32),
                               "L", "true", **kw)
    assert isinstance(ga, torch.Tensor) and gW.dtype == ga.dtype == torch.float32 and ga.shape == (3, 3)
    H = numerics.hessian(torch.tensor(Wb), torch.tensor(Ws), "J", "mean", **kw)
    assert isinstance(H, torch.Tensor) and H.shape == (3, 15, 15)
    Wb[2, 1] = 2 * Wb[2, 0]  # an exact kink of J in instance 2: named
    with pytest.raises(ValueError, match=r"^instance \(2,\): the true gradient of J does not exist"):
        numerics.gradient(Wb, Ws, "J", "true", **kw)
    from numerics import population

    monkeypatch.setattr(population, "available_memory", lambda: 1_000)  # bytes: refused before any work
    with pytest.raises(ValueError, match="batch of Hessians"):
        numerics.hessian(Wb, Ws, "L", "true", **kw)


# ----------------------------------------------------------------------------- refusals
@pytest.mark.parametrize("kwargs, fragment", [
    (dict(activation="tanh"), "activation must be"),
    (dict(activation=("leaky_relu", 1.0)), "0 <= beta < 1"),
    (dict(activation=("leaky_relu", -0.1)), "0 <= beta < 1"),
    (dict(activation=("leaky_relu", float("nan"))), "finite"),
    (dict(activation=("relu_power", 4)), "relu_power degree"),
    (dict(activation=("relu_power", 2.0)), "relu_power degree"),
    (dict(a=np.ones(2)), r"a must have shape \(3,\)"),
    (dict(a_star=[1.0, np.inf]), "non-finite"),
    (dict(cov=np.eye(3)), r"cov must have shape \(4, 4\)"),
    (dict(cov=np.diag([1.0, 1.0, 1.0, -1.0])), "positive definite"),
    (dict(cov=np.eye(4) + np.triu(np.ones((4, 4)), 1)), "symmetric"),
    (dict(cov=np.full((4, 4), np.nan)), "non-finite"),
    (dict(sobolev=(1.0, -1.0)), ">= 0"),
    (dict(sobolev=(1.0,)), "pair"),
    (dict(sobolev=(1.0, 0.5)), "J2"),
])
def test_bad_family_arguments_raise_value_error(kwargs, fragment):
    W, Ws, _ = random_case(8)
    with pytest.raises(ValueError, match=fragment):
        numerics.loss(W, Ws, "H", **kwargs)


def test_j2_of_relu_and_leaky_relu_is_refused():
    W, Ws, _ = random_case(9)
    for act in ("relu", ("leaky_relu", 0.1)):
        with pytest.raises(ValueError, match="J2 does not exist"):
            numerics.loss(W, Ws, "J2", activation=act)


def test_family_checks_directly():
    fam = family(2, 1, 3, activation=("relu_power", 3), sobolev=(0.0, 1.0))
    assert fam.activation.derivative(2) == (1, 6.0, 0.0) and not fam.is_default
    assert family(2, 1, 3).is_default
    assert family(1, 1, 2, activation=("leaky_relu", 0.25)).activation.derivative(1) == (0, 1.0, 0.25)


# ----------------------------------------------------------------------------- torch
@pytest.mark.parametrize("act", ACTIVATIONS, ids=str)
def test_torch_family_losses_equal_numpy(act):
    W, Ws, rng = random_case(10)
    a, cov = rng.uniform(0.5, 2.0, 3), np.diag([1.0, 2.0, 0.5, 3.0])
    lam = (1.0, 0.5) if act[0] == "relu_power" else (1.0, 0.0)
    for part in ("L", "J", "H"):
        ref = numerics.loss(W, Ws, part, a=a, activation=act, cov=cov, sobolev=lam)
        got = numerics.loss(torch.tensor(W), torch.tensor(Ws), part, a=a, activation=act, cov=cov, sobolev=lam)
        assert isinstance(got, torch.Tensor) and abs(float(got) - ref) <= 1e-12 * ref, (part, float(got), ref)


def test_autograd_in_the_output_weights_matches_central_differences():
    """The train_output gradient of the population loss by autograd against central differences of the
    NumPy loss (step 1e-5: truncation ~1e-10, rounding ~1e-11 relative)."""
    W, Ws, rng = random_case(11)
    a = rng.uniform(0.5, 2.0, 3)
    act = ("relu_power", 2)
    at = torch.tensor(a, requires_grad=True)
    (g,) = torch.autograd.grad(numerics.loss(torch.tensor(W), torch.tensor(Ws), "H", a=at, activation=act,
                                             sobolev=(1.0, 0.5)), at)
    h = 1e-5
    fd = [(numerics.loss(W, Ws, "H", a=a + h * e, activation=act, sobolev=(1.0, 0.5))
           - numerics.loss(W, Ws, "H", a=a - h * e, activation=act, sobolev=(1.0, 0.5))) / (2 * h) for e in np.eye(3)]
    assert np.allclose(g.numpy(), fd, rtol=1e-8, atol=1e-8 * np.abs(fd).max())


# ----------------------------------------------------------------------------- gradients
MEMBERS = [dict(), dict(activation=("leaky_relu", 0.2)), dict(activation=("relu_power", 2), sobolev=(1.0, 0.5)),
           dict(activation=("relu_power", 3), sobolev=(0.5, 0.25))]


def member_case(seed: int, member: int, with_cov: bool) -> tuple:
    """``(W, Ws, keywords, a)``: a random configuration of member ``MEMBERS[member]`` with random teacher output
    weights, a random SPD covariance when ``with_cov``, and random student output weights ``a``."""
    W, Ws, rng = random_case(seed)
    kw = dict(MEMBERS[member], a_star=rng.uniform(0.3, 2.0, 2))
    if with_cov:
        M = rng.standard_normal((4, 4))
        kw["cov"] = M @ M.T + 0.3 * np.eye(4)
    return W, Ws, kw, rng.uniform(0.3, 2.0, 3)


@settings(max_examples=12, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), member=st.sampled_from(range(len(MEMBERS))), with_cov=st.booleans())
def test_true_gradient_is_autograd_of_the_loss(seed, member, with_cov):
    """The NumPy true gradient (chain rule through the pair terms, numerics.family_population) against torch
    autograd of the loss (numerics.backend: a different geometry, no derivative formulas), in W and in
    the output weights, with and without a covariance: 1e-11 of the largest entry."""
    W, Ws, kw, a = member_case(seed, member, with_cov)
    for part in ("L", "J", "H"):
        gW, ga = numerics.gradient(W, Ws, part, "true", a=a, train_output=True, **kw)
        Wt, at = torch.tensor(W, requires_grad=True), torch.tensor(a, requires_grad=True)
        tW, ta = torch.autograd.grad(numerics.loss(Wt, torch.tensor(Ws), part, a=at, **kw), (Wt, at))
        assert np.abs(gW - tW.numpy()).max() <= 1e-11 * np.abs(gW).max(), part
        assert np.abs(ga - ta.numpy()).max() <= 1e-11 * np.abs(ga).max(), part


@pytest.mark.parametrize("field", ["mean", "true"])
def test_unit_weights_give_the_papers_fields(field):
    W, Ws, _ = random_case(12)
    for part in ("L", "J", "H"):
        got = numerics.gradient(W, Ws, part, field, a=np.ones(3))
        ref = numerics.gradient(W, Ws, part, field)
        assert np.abs(got - ref).max() <= 1e-13 * np.abs(ref).max(), part


@pytest.mark.parametrize("field", ["mean", "true"])
def test_positive_output_weights_rescale_the_fields_for_relu(field):
    """L(a W) as a function of W: its gradient is a_j times the paper's field at rows a_j w_j; the mean field
    too (the per-sample autograd gradient scales the same way)."""
    W, Ws, rng = random_case(13)
    a, a_star = rng.uniform(0.3, 2.0, 3), rng.uniform(0.3, 2.0, 2)
    for part in ("L", "J", "H"):
        got = numerics.gradient(W, Ws, part, field, a=a, a_star=a_star)
        ref = a[:, None] * numerics.gradient(a[:, None] * W, a_star[:, None] * Ws, part, field)
        assert np.abs(got - ref).max() <= 1e-12 * np.abs(ref).max(), part


def test_where_the_mean_field_and_the_true_gradient_differ():
    """They differ exactly where sigma^(k) is a step (its autograd derivative is 0 but its kernel depends on
    the angle): J of relu and leaky_relu, J2 of relu_power(2); L never, J of relu_power, J2 of relu_power(3)."""
    W, Ws, _ = random_case(14)
    cases = [("relu", "L", False), ("relu", "J", True), (("leaky_relu", 0.3), "J", True),
             (("relu_power", 2), "J", False), (("relu_power", 2), "J2", True), (("relu_power", 3), "J2", False),
             (("relu_power", 3), "L", False)]
    for act, part, differ in cases:
        mean = numerics.gradient(W, Ws, part, "mean", activation=act, a=np.ones(3))
        true = numerics.gradient(W, Ws, part, "true", activation=act, a=np.ones(3))
        gap = np.abs(mean - true).max() / np.abs(true).max()
        assert (gap > 1e-3) if differ else (gap <= 1e-13), (act, part, gap)


def test_the_true_gradient_at_a_kink_is_refused_and_the_mean_field_exists():
    W, Ws, _ = random_case(15)
    W[1] = 2.0 * W[0]
    for act, part in ((("leaky_relu", 0.2), "J"), (("relu_power", 2), "J2")):
        with pytest.raises(ValueError, match="does not exist"):
            numerics.gradient(W, Ws, part, "true", activation=act)
        assert np.isfinite(numerics.gradient(W, Ws, part, "mean", activation=act)).all()
    # smooth kernels: the true gradient exists at parallel rows
    assert np.isfinite(numerics.gradient(W, Ws, "J", "true", activation=("relu_power", 2))).all()


# ----------------------------------------------------------------------------- Hessians
@settings(max_examples=6, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), member=st.sampled_from(range(len(MEMBERS))), with_cov=st.booleans())
def test_true_hessian_over_w_and_a_is_torch_func_hessian_of_the_loss(seed, member, with_cov):
    """The NumPy Hessian (numerics.family_hessian: e-basis chain rule, generated theta-derivatives) over
    (W, a) against torch.func.hessian of the backend loss: 1e-11 of the largest entry."""
    W, Ws, kw, a = member_case(seed, member, with_cov)
    St = torch.tensor(Ws)
    for part in ("L", "J", "H"):
        got = numerics.hessian(W, Ws, part, "true", a=a, train_output=True, **kw)
        ref = torch.func.hessian(lambda x: numerics.loss(x[:12].reshape(3, 4), St, part, a=x[12:], **kw))(
            torch.tensor(np.concatenate([W.ravel(), a]))).numpy()
        assert np.abs(got - ref).max() <= 1e-11 * np.abs(ref).max(), part


@pytest.mark.parametrize("member", range(len(MEMBERS)))
def test_jacobian_of_the_mean_field_is_its_derivative(member):
    """The mean-field Jacobian over (W, a) against central differences of the mean field itself (step 1e-6
    of each entry's scale: truncation ~1e-12, rounding ~1e-10 relative; tolerance 1e-7 of the largest)."""
    from numerics.finite_differences import fd_jacobian

    W, Ws, rng = random_case(20 + member)
    a = rng.uniform(0.5, 1.5, 3)
    kw = dict(MEMBERS[member], a_star=rng.uniform(0.5, 1.5, 2))
    for part in ("L", "J", "H"):
        got = numerics.hessian(W, Ws, part, "mean", a=a, train_output=True, **kw)

        def field(x):
            gW, ga = numerics.gradient(x[:12].reshape(3, 4), Ws, part, "mean", a=x[12:], train_output=True, **kw)
            return np.concatenate([gW.ravel(), ga])
        ref = fd_jacobian(field, np.concatenate([W.ravel(), a]))
        assert np.abs(got - ref).max() <= 1e-7 * np.abs(ref).max(), part


def test_unit_weights_give_the_papers_hessians():
    W, Ws, _ = random_case(25)
    for part in ("L", "J", "H"):
        for field in ("true", "mean"):
            got = numerics.hessian(W, Ws, part, field, a=np.ones(3))
            ref = numerics.hessian(W, Ws, part, field)
            assert np.abs(got - ref).max() <= 1e-13 * np.abs(ref).max(), (part, field)


def test_unit_weights_give_the_papers_autograd_hessian_even_at_a_kink():
    W, Ws, _ = random_case(27)
    for config in (W, np.vstack([W[:1], 2.0 * W[:1], W[2:]])):  # the second: rows 0 and 1 exactly parallel
        for part in ("L", "J", "H"):
            got = numerics.hessian(config, Ws, part, "autograd", a=np.ones(3))
            ref = numerics.hessian(config, Ws, part, "autograd")
            assert np.abs(got - ref).max() <= 1e-13 * np.abs(ref).max(), part


AUTOGRAD_CASES = [  # (label, part, keywords, with a covariance, the true Hessian differs enough to be rejected)
    ("leaky_relu 0.3, H", "H", dict(activation=("leaky_relu", 0.3)), False, True),
    ("relu_power 2, J2", "J2", dict(activation=("relu_power", 2)), False, True),
    ("relu_power 3, J2", "J2", dict(activation=("relu_power", 3)), False, True),
    ("relu_power 2, H with J2 and cov", "H", dict(activation=("relu_power", 2), sobolev=(0.5, 0.25)), True, False),
]


@pytest.mark.parametrize("label, part, kw, with_cov, rejects_true", AUTOGRAD_CASES, ids=[c[0] for c in AUTOGRAD_CASES])
def test_expected_autograd_hessian_against_per_sample_autograd(label, part, kw, with_cov, rejects_true):
    """The closed-form expected autograd Hessian over (W, a) against the sample mean (1e5 samples) of
    torch.func.hessian of the per-sample loss (input derivatives by torch.func too, x = cov^(1/2) z sampled):
    Bonferroni z-test, family-wise 1e-3, over the entries with a non-zero standard error; entries without
    one (exact in every sample) to 1e-12.  Where the Hessian of the loss differs enough, the same test
    rejects it (the test can fail)."""
    from scipy.stats import norm

    from numerics.family import activation as make_activation
    from numerics.mc_family import torch_activation

    W, Ws, rng = random_case(28, K=2, Ks=2, d=3)
    a, a_star = rng.uniform(0.5, 1.5, 2), rng.uniform(0.5, 1.5, 2)
    cov = None
    if with_cov:
        M = rng.standard_normal((3, 3))
        cov = M @ M.T + 0.5 * np.eye(3)
        kw = dict(kw, cov=cov)
    # the weights of l_L, l_J, l_J2 in the per-sample loss of `part`
    lam0 = 1.0 if part in ("H", "L") else 0.0
    lam1, lam2 = {"H": kw.get("sobolev", (1.0, 0.0)), "L": (0.0, 0.0), "J": (1.0, 0.0), "J2": (0.0, 1.0)}[part]
    sigma = torch_activation(make_activation(kw["activation"]))
    Wst, ast = torch.tensor(Ws), torch.tensor(a_star)

    def per_sample(theta, x):
        Wt, at = theta[:6].reshape(2, 3), theta[6:]
        diff = lambda y: (at * sigma(Wt @ y)).sum() - (ast * sigma(Wst @ y)).sum()  # noqa: E731
        loss = lam0 * 0.5 * diff(x) ** 2
        if lam1:
            loss = loss + lam1 * 0.5 * (torch.func.grad(diff)(x) ** 2).sum()
        if lam2:
            loss = loss + lam2 * 0.5 * (torch.func.hessian(diff)(x) ** 2).sum()
        return loss

    theta = torch.tensor(np.concatenate([W.ravel(), a]))
    hess = torch.func.vmap(torch.func.hessian(per_sample), in_dims=(None, 0))
    gen = torch.Generator().manual_seed(5)
    S = torch.tensor(cov_sqrt(cov)) if cov is not None else None
    total, total_sq, n = 0.0, 0.0, 0
    for _ in range(20):
        x = torch.randn((5000, 3), generator=gen, dtype=torch.float64)
        x = x @ S if S is not None else x
        h = hess(theta, x)
        total, total_sq, n = total + h.sum(0), total_sq + (h * h).sum(0), n + len(h)
    mean = (total / n).numpy()
    se = np.sqrt(np.maximum((total_sq / n).numpy() - mean**2, 0.0) / (n - 1))
    threshold = norm.isf(1e-3 / (2 * mean.size))

    def max_z(field):
        closed = numerics.hessian(W, Ws, part, field, a=a, a_star=a_star, train_output=True, **kw)
        random_entries = se > 1e-12 * np.abs(closed).max()
        exact_gap = np.abs(mean - closed)[~random_entries].max(initial=0.0) / np.abs(closed).max()
        return np.abs((mean - closed)[random_entries] / se[random_entries]).max(), exact_gap

    z, exact_gap = max_z("autograd")
    assert z <= threshold and exact_gap <= 1e-12, (z, exact_gap)
    if rejects_true:
        assert max_z("true")[0] > threshold


def test_family_hessian_refusals():
    W, Ws, _ = random_case(26)
    with pytest.raises(ValueError, match="field"):
        numerics.hessian(W, Ws, "H", "jacobian", activation=("relu_power", 2))
    W[1] = 2.0 * W[0]  # exactly parallel (a power of two scales exactly)
    for field in ("true", "mean"):  # the existence table: neither exists at a kink of the step kernel
        with pytest.raises(ValueError, match="does not exist"):
            numerics.hessian(W, Ws, "J", field, activation=("leaky_relu", 0.1))
    assert np.isfinite(numerics.hessian(W, Ws, "J", "autograd", activation=("leaky_relu", 0.1))).all()
    assert np.isfinite(numerics.hessian(W, Ws, "J", "true", activation=("relu_power", 2))).all()


# ----------------------------------------------------------------------------- against the Monte-Carlo witness
WITNESS_CASES = [
    ("relu with output weights and cov", dict(), True),
    ("leaky_relu 0.3", dict(activation=("leaky_relu", 0.3)), True),
    ("relu_power 2 with J2", dict(activation=("relu_power", 2), sobolev=(0.5, 0.25)), True),
    ("relu_power 3 with J2", dict(activation=("relu_power", 3), sobolev=(0.5, 0.25)), False),
]


@pytest.mark.parametrize("label, kw, with_cov", WITNESS_CASES, ids=[c[0] for c in WITNESS_CASES])
def test_losses_and_mean_fields_against_the_monte_carlo_witness(label, kw, with_cov):
    """The closed forms of every part (losses, mean fields in W and a) against numerics.monte_carlo with the same
    keywords: per-sample autograd, x = cov^(1/2) z sampled (not the reduction the closed forms use).  The mean
    field is the object where the semantics bite: J of relu/leaky_relu and J2 of relu_power(2) differ from the
    true gradient, and only the mean field may agree with the witness.  Bonferroni z-test, family-wise 1e-3
    over every entry of the test."""
    from scipy.stats import norm

    W, Ws, rng = random_case(17, K=2, Ks=2, d=3)
    kw = dict(kw, a=rng.uniform(0.5, 1.5, 2), a_star=rng.uniform(0.5, 1.5, 2), train_output=True)
    if with_cov:
        M = rng.standard_normal((3, 3))
        kw["cov"] = M @ M.T + 0.5 * np.eye(3)
    est = numerics.monte_carlo(W, Ws, 200_000, seed=3, device="cpu", **kw)
    closed_loss, closed_field, closed_a = {}, {}, {}
    for part in est.parts:
        closed_loss[part] = numerics.loss(W, Ws, part, **kw)
        closed_field[part], closed_a[part] = numerics.gradient(W, Ws, part, "mean", **kw)
    z = est.z_scores(closed_loss, closed_field, closed_a)
    flat = np.concatenate([np.atleast_1d(v).ravel() for v in z.values()])
    assert np.abs(flat).max() <= norm.isf(1e-3 / (2 * flat.size)), {k: np.abs(v).max() for k, v in z.items()}


def test_the_witness_tells_the_mean_field_from_the_true_gradient():
    """The same witness rejects the true gradient as the mean field where they differ (J of leaky_relu):
    the test above can fail."""
    W, Ws, _ = random_case(18, K=2, Ks=2, d=3)
    kw = dict(activation=("leaky_relu", 0.3))
    est = numerics.monte_carlo(W, Ws, 200_000, seed=4, device="cpu", **kw)
    z = est.z_scores({}, {"J": numerics.gradient(W, Ws, "J", "true", **kw)})
    assert np.abs(z["mean_field/J"]).max() > 10


def test_the_documented_existence_table_is_the_derived_one():
    from pathlib import Path

    from theory.activations import existence_table

    text = (Path(__file__).resolve().parents[1] / "docs" / "theory.md").read_text()
    word = {True: "yes", False: "no", None: "—"}
    for member, part, exists, mean_is_true, par, anti, autograd in existence_table():
        row = (f"| {member} | {part} | {word[exists]} | {word[mean_is_true]} | {word[par]} | {word[anti]} | "
               f"{word[autograd]} |")
        assert row in text, row


def test_rows_outside_the_range_are_refused_with_a_reason():
    """The family's evaluation does not rescale (documented limit): huge rows overflow an intermediate, tiny
    rows underflow the norms; both are a ValueError that says so, never NaN."""
    Ws = np.eye(3)[:2]
    for W, fragment in ((np.array([[1e200, 0.0, 0.0]]), "float64 range"),
                        (np.array([[1e-200, 1e-200, 0.0]]), "too small")):
        for call in (lambda: numerics.loss(W, Ws, "L", activation=("relu_power", 3)),
                     lambda: numerics.gradient(W, Ws, "J", "true", activation=("leaky_relu", 0.3)),
                     lambda: numerics.hessian(W, Ws, "H", "mean", activation=("relu_power", 2))):
            with pytest.raises(ValueError, match=fragment):
                call()


# ----------------------------------------------------------------------------- Hessians against Monte-Carlo finite differences
FD_CASES = [("leaky_relu 0.3, H", "H", dict(activation=("leaky_relu", 0.3))),
            pytest.param("relu_power 2, J2", "J2", dict(activation=("relu_power", 2)), marks=pytest.mark.slow),
            pytest.param("relu_power 3, H with J2", "H", dict(activation=("relu_power", 3), sobolev=(0.5, 0.25)),
                         marks=pytest.mark.slow)]


@pytest.mark.parametrize("act, part", [(("leaky_relu", 0.3), "J"), (("relu_power", 2), "J2")])
def test_true_gradient_against_monte_carlo_finite_differences(act, part):
    """The true gradient over (W, a) where it differs from the mean field, against numerics.mc_family_fd.gradient_fd
    (per-sample central differences of the loss on common samples, 4e4 samples, step 1e-2 relative):
    Bonferroni z-test, family-wise 1e-3; the same test rejects the mean field there."""
    from scipy.stats import norm

    from numerics.mc_family_fd import gradient_fd

    W, Ws, rng = random_case(30, K=2, Ks=2, d=3)
    kw = dict(activation=act, a=rng.uniform(0.5, 1.5, 2), a_star=rng.uniform(0.5, 1.5, 2), train_output=True)
    mean, se = gradient_fd(W, Ws, part, 40_000, seed=2, **kw)
    threshold = norm.isf(1e-3 / (2 * mean.size))

    def max_z(field):
        gW, ga = numerics.gradient(W, Ws, part, field, **kw)
        return np.abs((mean - np.concatenate([gW.ravel(), ga])) / se).max()
    assert max_z("true") <= threshold
    assert max_z("mean") > threshold


@pytest.mark.parametrize("label, part, kw", FD_CASES)
def test_hessian_and_mean_jacobian_against_monte_carlo_finite_differences(label, part, kw):
    """The Hessian of the loss and the Jacobian of the mean field over (W, a) against numerics.mc_family_fd
    (per-sample second differences of the loss / differences of the per-sample autograd gradient on
    common samples, 5e4 samples, step 1e-2 relative: the O(h^2) bias is ~1e-4 of the entries, far below
    the standard errors).  Bonferroni z-test, family-wise 1e-3 over the entries; entries with a zero
    standard error (exact in every sample) to 1e-8."""
    from scipy.stats import norm

    from numerics.mc_family_fd import hessian_fd, mean_jacobian_fd

    W, Ws, rng = random_case(29, K=1, Ks=2, d=3)
    kw = dict(kw, a=rng.uniform(0.5, 1.5, 1), a_star=rng.uniform(0.5, 1.5, 2), train_output=True)
    for witness, field in ((hessian_fd, "true"), (mean_jacobian_fd, "mean")):
        mean, se = witness(W, Ws, part, 50_000, seed=1, **kw)
        closed = numerics.hessian(W, Ws, part, field, **kw)
        random_entries = se > 1e-12 * np.abs(closed).max()
        z = np.abs(mean - closed)[random_entries] / se[random_entries]
        assert z.max() <= norm.isf(1e-3 / (2 * closed.size)), (field, z.max())
        assert np.abs(mean - closed)[~random_entries].max(initial=0.0) <= 1e-8 * np.abs(closed).max(), field
