"""Adversarial input for the Monte-Carlo witness: extreme weight scales, seeds, equality.

Scale: every per-sample quantity is positively homogeneous in ``(W, W_star)`` jointly (losses
of degree 2, mean fields of degree 1, their derivatives of degree 0) and multiplying by a power
of two is exact in binary floating point, so a run at ``2**e (W, W_star)`` must equal the run
at ``(W, W_star)`` times ``2**(2e)`` / ``2**e`` / 1 **bit for bit** for the same seed: the tests
below use exact equality, no tolerance.  Everything runs on the CPU with a few thousand samples.
"""
import dataclasses
import math

import numpy as np
import pytest
import torch

from numerics import mc

# Warnings as errors (issue 26, item 6): no NumPy or PyTorch warning may reach a caller of the witness for input
# inside the README's Guarantees (any finite weights).  The second filter keeps pyproject's (a deprecation inside
# PyTorch itself).
pytestmark = pytest.mark.filterwarnings("error", "ignore:`torch.jit.script` is deprecated:DeprecationWarning")

PARTS = ("L", "J", "H")
N = 2_000


def weights(seed, K, Ks, d):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((K, d)), rng.standard_normal((Ks, d))


def run(W, Ws, n=N, **kw):
    return mc.monte_carlo(W, Ws, n, **{"seed": 0, "device": "cpu", "progress": False, **kw})


def assert_scaled_copy(big, ref, e):
    """``big`` is ``ref`` with losses and their SEs times 2**(2e), fields times 2**e: exactly."""
    for p in PARTS:
        assert big.loss[p] == math.ldexp(ref.loss[p], 2 * e), p
        assert big.loss_se[p] == math.ldexp(ref.loss_se[p], 2 * e), p
        assert np.array_equal(big.mean_field[p], np.ldexp(ref.mean_field[p], e)), p
        assert np.array_equal(big.mean_field_se[p], np.ldexp(ref.mean_field_se[p], e)), p


def assert_finite_positive_se(est):
    for p in PARTS:
        assert math.isfinite(est.loss[p]) and est.loss[p] > 0, p
        assert math.isfinite(est.loss_se[p]) and est.loss_se[p] > 0, p
        assert np.all(np.isfinite(est.mean_field[p])), p
        assert np.all(np.isfinite(est.mean_field_se[p])) and np.all(est.mean_field_se[p] > 0), p


# ----------------------------------------------------------------------------- scale
@pytest.mark.parametrize("method", ["plain", "subspace"])
@pytest.mark.parametrize("e", [300, -300, 150, -150])
def test_power_of_two_scaling_is_exact(method, e):
    W, Ws = weights(1, 2, 3, 4)
    ref = run(W, Ws, method=method)
    big = run(np.ldexp(W, e), np.ldexp(Ws, e), method=method)
    assert_scaled_copy(big, ref, e)  # exact: no tolerance


@pytest.mark.parametrize("e", [300, -300, 30, -30])
def test_power_of_two_scaling_is_exact_in_float32(e):
    # 2**+-30 is inside float64's range but outside float32's: there float32 used to give
    # NaN standard errors (the summed squared losses, of degree 4, overflowed)
    W, Ws = weights(2, 2, 1, 5)
    ref = run(W, Ws, dtype=torch.float32)
    big = run(np.ldexp(W, e), np.ldexp(Ws, e), dtype=torch.float32)
    assert_scaled_copy(big, ref, e)
    assert_finite_positive_se(big)


def test_scaling_holds_at_every_checkpoint():
    W, Ws = weights(3, 2, 2, 3)
    refs = list(mc.monte_carlo(W, Ws, [500, 1500], seed=4, device="cpu", progress=False, chunk_size=300))
    bigs = list(mc.monte_carlo(np.ldexp(W, 400), np.ldexp(Ws, 400), [500, 1500], seed=4, device="cpu",
                               progress=False, chunk_size=300))
    assert [b.n for b in bigs] == [500, 1500]
    for big, ref in zip(bigs, refs):
        assert_scaled_copy(big, ref, 400)


@pytest.mark.parametrize("scale", [1e80, 1e-100, 1e150, 1e-150])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("method", ["plain", "subspace"])
def test_huge_and_tiny_weights_give_finite_positive_standard_errors(scale, dtype, method):
    # the reported case: loss_se['L'] was NaN at 1e80 and the SEs 0.0 at 1e-100
    est = run([[scale, 0.0]], [[0.0, scale]], 100, dtype=dtype, method=method)
    assert_finite_positive_se(est)
    # and they are the unit-scale problem's, times scale**2 (losses) / scale (fields): the same
    # samples, so equal up to rounding (scale is not a power of two): relative 1e-12 in float64,
    # 1e-4 in float32 (sums of 100 terms with eps = 6e-8)
    unit = run([[1.0, 0.0]], [[0.0, 1.0]], 100, dtype=dtype, method=method)
    rel = 1e-12 if dtype == torch.float64 else 1e-4
    for p in PARTS:
        assert est.loss[p] / unit.loss[p] / scale**2 == pytest.approx(1, rel=rel)
        assert est.loss_se[p] / unit.loss_se[p] / scale**2 == pytest.approx(1, rel=rel)
        np.testing.assert_allclose(est.mean_field_se[p] / scale, unit.mean_field_se[p], rtol=rel)


@pytest.mark.parametrize("scale,where", [(1e200, "above"), (1e-200, "below")])
def test_results_float64_cannot_hold_raise(scale, where):
    # the loss of weights ~1e200 is ~1e400 and that of weights ~1e-200 ~1e-400
    with pytest.raises(ValueError, match=f"loss.*{where} the float64 range"):
        run([[scale, 0.0]], [[0.0, scale]], 100)


def test_moderate_inputs_unchanged_against_a_plain_torch_computation():
    # inside the unscaled range (float64: largest entry in [2**-100, 2**100]) the weights are used
    # as given and the stream is torch.Generator().manual_seed(seed): the same operations on the
    # same samples give the same bits (one chunk: shift = the chunk's mean)
    base_W, base_Ws = weights(5, 2, 2, 3)
    for e in (0, 90, -90):
        W, Ws = np.ldexp(base_W, e), np.ldexp(base_Ws, e)
        n = 1_000
        est = mc.monte_carlo(W, Ws, n, seed=0, device="cpu", progress=False, chunk_size=n)
        X = torch.randn((n, 3), generator=torch.Generator().manual_seed(0), dtype=torch.float64)
        Z = torch.as_tensor(np.vstack([W, Ws]))
        s = torch.tensor([1.0, 1.0, -1.0, -1.0], dtype=torch.float64)
        pre = X @ Z.T
        r = torch.relu(pre) @ s
        V = ((pre > 0).to(X.dtype) * s) @ Z
        for p, loss in (("L", 0.5 * r * r), ("J", 0.5 * (V * V).sum(1))):
            sm, sq = loss.sum(), (loss * loss).sum()
            c = (sm / n).clone()
            s1 = torch.zeros_like(sm) + (sm - n * c)
            s2 = torch.zeros_like(sq) + (sq - 2 * c * sm + n * c * c)
            mean = c + s1 / n
            se = torch.sqrt(torch.clamp((s2 - s1 * s1 / n) / (n - 1), min=0) / n)
            assert est.loss[p] == float(mean) and est.loss_se[p] == float(se), (e, p)
        # mean field of L from the same samples: agreement to rounding (a different summation)
        mf = ((r[:, None] * (pre[:, :2] > 0))[:, :, None] * X[:, None, :]).mean(0).numpy()
        np.testing.assert_allclose(est.mean_field["L"], mf, rtol=1e-12, atol=1e-12 * np.abs(mf).max())


def test_row_too_small_to_represent_is_named():
    with pytest.raises(ValueError, match="row 1 of W "):
        run([[1.0, 0.0], [1e-300, 1e-300]], [[0.0, 1.0]])
    with pytest.raises(ValueError, match="row 0 of W_star"):
        run([[1e200, 0.0]], [[0.0, 1e-200]])
    # float32: a row whose squared norm underflows in float32 (1e-30 relative to 1)
    with pytest.raises(ValueError, match="row 1 of W_star.*float32"):
        run([[1.0, 0.0]], [[0.0, 1.0], [1e-30, 0.0]], dtype=torch.float32)
    # a row 1e-150 relative to the largest is fine in float64, before and after scaling
    for top in (1.0, 1e100):
        assert_finite_positive_se(run([[top, 0.0], [0.0, 1e-150 * top]], [[0.0, top]]))


@pytest.mark.parametrize("e", [300, -300])
def test_other_entry_points_scale_exactly(e):
    W, Ws = weights(6, 1, 1, 2)
    Wb, Wsb = np.ldexp(W, e), np.ldexp(Ws, e)
    kw = {"seed": 3, "device": "cpu"}
    ref, big = mc.true_gradient_fd(W, Ws, "H", N, **kw), mc.true_gradient_fd(Wb, Wsb, "H", N, **kw)
    for a, b in zip(ref, big):  # the gradient is of degree 1
        assert np.array_equal(b, np.ldexp(a, e))
    ref, big = mc.mean_field_jacobian_fd(W, Ws, "H", N, **kw), mc.mean_field_jacobian_fd(Wb, Wsb, "H", N, **kw)
    for a, b in zip(ref, big):  # degree 0
        assert np.array_equal(a, b)
    ref, big = mc.autograd_hessian_mc(W, Ws, "H", N, **kw), mc.autograd_hessian_mc(Wb, Wsb, "H", N, **kw)
    for a, b in zip(ref, big):  # degree 0
        assert np.array_equal(a, b)
        assert np.all(np.isfinite(b))


def test_finite_difference_steps_are_checked():
    W, Ws = weights(7, 1, 1, 2)
    kw = {"seed": 0, "device": "cpu"}
    for h in (0.0, -1e-2, float("nan"), float("inf"), True, "0.01"):
        with pytest.raises(ValueError, match="h"):
            mc.true_gradient_fd(W, Ws, "L", 100, h=h, **kw)
    # a step below the resolution of W: every difference is 0, a spurious zero with zero SE
    for f in (mc.true_gradient_fd, mc.mean_field_jacobian_fd):
        with pytest.raises(ValueError, match="too small to change"):
            f(W, Ws, "L", 100, h=1e-20, **kw)
    # a step so large that the losses (degree 2) overflow: refused, not NaN
    with pytest.raises(ValueError, match="not finite"):
        mc.true_gradient_fd(W, Ws, "L", 100, h=1e300, **kw)
    for f in (mc.true_gradient_fd, mc.mean_field_jacobian_fd, mc.autograd_hessian_mc):
        with pytest.raises(ValueError, match="chunk_size"):  # used to loop forever
            f(W, Ws, "L", 100, chunk_size=0, **kw)


# ----------------------------------------------------------------------------- seeds
def test_cpu_generator_aliases_seeds_modulo_2_32():
    # the premise of check_seed's range: torch's CPU generator keeps the low 32 bits only
    def draw(seed):
        return torch.randn(8, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    assert torch.equal(draw(0), draw(2**32)) and torch.equal(draw(0), draw(2**63))


@pytest.mark.parametrize("seed", [0, 1, 2**32 - 1, np.int64(7), np.uint64(2**32 - 1), np.int8(3)])
def test_check_seed_accepts_the_range(seed):
    out = mc.check_seed(seed)
    assert type(out) is int and out == int(seed)


@pytest.mark.parametrize("seed", [2**32, 2**63, 2**64, 2**100, -1, -(2**63), True, False, np.bool_(True),
                                  1.0, 0.5, float("nan"), "0", None, np.float64(3.0)])
def test_check_seed_refuses(seed):
    with pytest.raises(ValueError, match=r"seed"):
        mc.check_seed(seed)


def test_out_of_range_seed_message_gives_the_range():
    with pytest.raises(ValueError, match=r"\[0, 4294967295\]"):
        mc.check_seed(2**32)


def test_check_seed_has_no_side_effects():
    state = torch.random.get_rng_state()
    for seed in (0, 5, 2**32 - 1):
        mc.check_seed(seed)
    assert torch.equal(state, torch.random.get_rng_state())


def test_every_seeded_entry_point_checks_the_seed():
    W, Ws = weights(8, 1, 1, 2)
    for seed in (2**32, -1, True, 1.5):
        with pytest.raises(ValueError, match="seed"):
            run(W, Ws, 100, seed=seed)
        for f in (mc.true_gradient_fd, mc.mean_field_jacobian_fd, mc.autograd_hessian_mc):
            with pytest.raises(ValueError, match="seed"):
                f(W, Ws, "L", 100, seed=seed, device="cpu")


def test_seeds_in_range_give_distinct_streams():
    W, Ws = weights(9, 1, 1, 2)
    a, b, c = (run(W, Ws, 200, seed=s) for s in (0, 2**31, 2**32 - 1))
    assert len({a.loss["L"], b.loss["L"], c.loss["L"]}) == 3
    assert a.seed == 0 and c.seed == 2**32 - 1 and type(run(W, Ws, 200, seed=np.int64(1)).seed) is int


# ----------------------------------------------------------------------------- equality
def test_estimates_compare_by_value():
    W, Ws = weights(10, 2, 2, 3)
    a = run(W, Ws, 500, seed=1)
    b = run(W, Ws, 500, seed=1)
    assert a == b and not (a != b)
    assert hash(a) == hash(b) and len({a, b}) == 1
    assert a != run(W, Ws, 500, seed=2)
    assert a != run(W, Ws, 501, seed=1)
    assert a == dataclasses.replace(a, seconds=a.seconds + 10)
    changed = {**a.mean_field, "J": a.mean_field["J"].copy()}
    changed["J"][0, 0] = np.nextafter(changed["J"][0, 0], np.inf)
    assert a != dataclasses.replace(a, mean_field=changed)
    assert a != dataclasses.replace(a, mean_field={**a.mean_field, "J": a.mean_field["J"][:1]})  # shape
    assert a != dataclasses.replace(a, loss={**a.loss, "H": a.loss["H"] * 2})
    assert a != dataclasses.replace(a, method="subspace")
    assert (a == "estimate") is False and a != 1.0
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.n = 3


def test_shifted_moments_keep_the_variance_of_a_large_mean():
    """The one accumulator of the witnesses: a mean of 1e8 with unit spread, fed in chunks.  The raw
    form (sum g^2 - n mean^2) loses all 16 digits here (sums of squares near 1e16 n); shifting each
    sample before squaring keeps the sample variance to ~1e-9 (the shift's own rounding, 1e8 eps)."""
    from numerics.mc import ShiftedMoments

    gen = torch.Generator().manual_seed(0)
    x = 1e8 + torch.randn(40_000, generator=gen, dtype=torch.float64)
    m = ShiftedMoments()
    for chunk in x.split(7_000):
        m.add_samples(chunk)
    exact_var = float(torch.var(x - 1e8))  # the spread about a known centre: no cancellation
    assert m.n == len(x)
    assert abs(float(m.mean()) - float(x.mean())) <= 1e-7
    assert abs(float(m.variance()) - exact_var) <= 1e-9 * exact_var
    assert abs(float(m.standard_error()) - (exact_var / len(x)) ** 0.5) <= 1e-9 * (exact_var / len(x)) ** 0.5
