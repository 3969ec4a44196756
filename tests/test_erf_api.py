"""``activation="erf"`` on the public API (numerics.loss / gradient / hessian): the smooth control dispatches to
:mod:`numerics.erf`, where every convention coincides -- the mean field is the true gradient and the three Hessian
fields are one matrix -- and torch autograd of the loss gives them independently."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import numerics
from numerics import erf

RNG = np.random.default_rng(11)
W, W_STAR = RNG.standard_normal((3, 4)) * 0.8, RNG.standard_normal((2, 4)) * 0.8
A, A_STAR = RNG.standard_normal(3), RNG.standard_normal(2)


@pytest.mark.parametrize("part", ["L", "J", "H", "J2"])
def test_loss_dispatches_to_the_erf_module(part):
    kw = dict(a=A, a_star=A_STAR, sobolev=(0.7, 0.3))
    assert numerics.loss(W, W_STAR, part, activation="erf", **kw) == erf.loss(W, W_STAR, part, **kw)


def test_mean_field_and_true_gradient_are_one_object():
    mean = numerics.gradient(W, W_STAR, "H", "mean", activation="erf", a=A, a_star=A_STAR)
    true = numerics.gradient(W, W_STAR, "H", "true", activation="erf", a=A, a_star=A_STAR)
    np.testing.assert_array_equal(mean, true)


def test_torch_autograd_of_the_public_loss_is_the_public_gradient():
    """Two independent evaluations: the closed-form gradient (chain rule through the invariants) and autograd through
    the loss's pair terms; float64 agreement to 1e-10 relative."""
    Wt = torch.tensor(W, requires_grad=True)
    value = numerics.loss(Wt, torch.tensor(W_STAR), "H", activation="erf", sobolev=(1.0, 0.5))
    value.backward()
    closed = numerics.gradient(W, W_STAR, "H", "true", activation="erf", sobolev=(1.0, 0.5))
    assert np.max(np.abs(Wt.grad.numpy() - closed)) <= 1e-10 * np.max(np.abs(closed))


def test_the_three_hessian_fields_are_one_matrix_and_torch_agrees():
    fields = [numerics.hessian(W, W_STAR, "H", f, activation="erf") for f in ("true", "mean", "autograd")]
    np.testing.assert_array_equal(fields[0], fields[1])
    np.testing.assert_array_equal(fields[0], fields[2])
    K, d = W.shape
    H = torch.func.hessian(lambda w: numerics.loss(w, torch.tensor(W_STAR), "H", activation="erf"))(torch.tensor(W))
    H = H.reshape(K * d, K * d).numpy()
    assert np.max(np.abs(H - fields[0])) <= 1e-9 * np.max(np.abs(H))


def test_tensors_get_tensors_from_autograd_equal_to_the_closed_forms():
    """Tensors in, tensors out (W's dtype and device): the gradient by torch.autograd and the Hessian by
    torch.func.hessian of the differentiable loss, against the NumPy closed forms (independent code)."""
    kw = dict(a=A, a_star=A_STAR, sobolev=(1.0, 0.5))
    Wt, Wst = torch.tensor(W), torch.tensor(W_STAR)
    g = numerics.gradient(Wt, Wst, "H", "mean", activation="erf", **kw)
    closed = numerics.gradient(W, W_STAR, "H", "mean", activation="erf", **kw)
    assert isinstance(g, torch.Tensor) and g.dtype == torch.float64
    assert np.max(np.abs(g.numpy() - closed)) <= 1e-12 * np.max(np.abs(closed))
    gW, ga = numerics.gradient(Wt, Wst, "H", "true", activation="erf", train_output=True, **kw)
    cW, ca = numerics.gradient(W, W_STAR, "H", "true", activation="erf", train_output=True, **kw)
    assert np.max(np.abs(gW.numpy() - cW)) <= 1e-12 * np.max(np.abs(cW))
    assert np.max(np.abs(ga.numpy() - ca)) <= 1e-12 * np.max(np.abs(ca))
    H = numerics.hessian(Wt, Wst, "H", "autograd", activation="erf", train_output=True, **kw)
    closed = numerics.hessian(W, W_STAR, "H", "true", activation="erf", train_output=True, **kw)
    assert np.max(np.abs(H.numpy() - closed)) <= 1e-12 * np.max(np.abs(closed))
    g32 = numerics.gradient(Wt.float(), Wst.float(), "L", "true", activation="erf")
    assert g32.dtype == torch.float32


def test_batches_equal_the_single_calls_bit_for_bit_and_broadcast():
    rng = np.random.default_rng(5)
    Wb, a = rng.standard_normal((2, 3, 3, 4)), rng.standard_normal((3, 3))  # a broadcasts over the first axis
    for name, args in (("loss", ()), ("gradient", ("true",)), ("hessian", ("mean",))):
        out = getattr(numerics, name)(Wb, W_STAR, "H", *args, activation="erf", a=a)
        assert np.shape(out)[:2] == (2, 3)
        for i, j in np.ndindex(2, 3):
            one = getattr(numerics, name)(Wb[i, j], W_STAR, "H", *args, activation="erf", a=a[j])
            np.testing.assert_array_equal(out[i, j], one)
    gW, ga = numerics.gradient(Wb, W_STAR, "L", "true", activation="erf", a=a, train_output=True)
    assert gW.shape == (2, 3, 3, 4) and ga.shape == (2, 3, 3)
    tb = numerics.gradient(torch.tensor(Wb[0]), torch.tensor(W_STAR), "L", "true", activation="erf")
    assert isinstance(tb, torch.Tensor) and tb.shape == (3, 3, 4)
    with pytest.raises(ValueError, match="broadcast"):
        numerics.loss(Wb, W_STAR, "L", activation="erf", a=rng.standard_normal((4, 3)))


@pytest.mark.parametrize("part", ["L", "J", "J2", "H"])
def test_the_hessian_in_w_and_a_matches_torch_and_extends_the_hessian_in_w(part):
    """train_output=True: the Hessian over concatenate([W.ravel(), a]) against torch.func.hessian of the loss in the
    same variables (independent: autograd through the pair terms), with a covariance and both Sobolev weights."""
    cov = np.diag([1.0, 2.0, 0.5, 1.5])
    kw = dict(a_star=A_STAR, cov=cov, sobolev=(0.7, 0.3))
    H = numerics.hessian(W, W_STAR, part, "true", activation="erf", a=A, train_output=True, **kw)
    K, d = W.shape
    np.testing.assert_array_equal(H[:K * d, :K * d], numerics.hessian(W, W_STAR, part, "true", activation="erf", a=A, **kw))

    def loss(x):
        return erf.loss_torch(x[:K * d].reshape(K, d), torch.tensor(W_STAR), part, a=x[K * d:],
                              a_star=torch.tensor(A_STAR), cov=torch.tensor(cov), sobolev=(0.7, 0.3))
    Ht = torch.func.hessian(loss)(torch.tensor(np.concatenate([W.ravel(), A]))).numpy()
    assert H.shape == (K * d + K, K * d + K)
    assert np.max(np.abs(H - Ht)) <= 1e-12 * np.max(np.abs(Ht))


def test_relu_default_is_untouched_by_the_dispatch():
    assert numerics.loss(W, W_STAR, "H") == numerics.loss(W, W_STAR, "H", activation="relu")
    assert numerics.loss(W, W_STAR, "L", activation="erf") != numerics.loss(W, W_STAR, "L")


def test_public_monte_carlo_is_the_erf_witness_and_agrees_with_the_closed_forms():
    """numerics.monte_carlo(activation="erf") returns the per-sample-autograd witness; its loss means and mean-field
    entries lie within z = norm.isf(1e-3 / (2 m)) standard errors of the closed forms (Bonferroni over the m
    compared numbers, family-wise level 1e-3)."""
    from scipy.stats import norm

    mc = numerics.monte_carlo(W, W_STAR, 40000, seed=5, activation="erf", sobolev=(1.0, 0.0))
    closed = [numerics.loss(W, W_STAR, p, activation="erf") for p in ("L", "J")]
    grad = numerics.gradient(W, W_STAR, "H", "mean", activation="erf")
    z = norm.isf(1e-3 / (2 * (2 + grad.size)))
    for value, part in zip(closed, ("L", "J")):
        assert abs(mc.loss[part] - value) <= z * mc.loss_se[part]
    assert np.all(np.abs(mc.grad_W["H"] - grad) <= z * mc.grad_W_se["H"])
    with pytest.raises(ValueError, match="single integer"):
        numerics.monte_carlo(W, W_STAR, [100, 200], seed=5, activation="erf")


def test_other_array_namespaces_get_their_own_arrays_with_the_numpy_numbers():
    xps = pytest.importorskip("array_api_strict")
    rng = np.random.default_rng(6)
    Wb = rng.standard_normal((2, 3, 4))
    for name, args in (("loss", ()), ("gradient", ("true",)), ("hessian", ("mean",))):
        for Wx in (W, Wb):
            got = getattr(numerics, name)(xps.asarray(Wx), xps.asarray(W_STAR), "H", *args, activation="erf", a_star=A_STAR)
            assert type(got).__module__.startswith("array_api_strict")
            np.testing.assert_array_equal(np.from_dlpack(got), getattr(numerics, name)(Wx, W_STAR, "H", *args,
                                                                                      activation="erf", a_star=A_STAR))
    gW, ga = numerics.gradient(xps.asarray(W), W_STAR, "L", "true", activation="erf", a=A, train_output=True)
    np.testing.assert_array_equal(np.from_dlpack(ga), numerics.gradient(W, W_STAR, "L", "true", activation="erf", a=A,
                                                                        train_output=True)[1])
