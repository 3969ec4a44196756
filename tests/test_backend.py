"""The closed forms on PyTorch (and any array namespace): :mod:`numerics.backend`.

Four things are checked, each against an independent computation:

* **the same numbers**: every object (3 losses, 6 gradient fields, 9 Hessians) on torch float64
  tensors equals the NumPy reference (:mod:`numerics.population`, a different assembly: Gram
  matrices, exact-integer angle refinement, blocked coefficient matrices) to ``1e-11`` of the
  object's largest entry.  Why that tolerance: both evaluate the closed form down to
  ``theta = SWITCH = 0.1``, where it loses up to ``eps / SWITCH^4 ~ 2e-12`` relative
  (:mod:`numerics.compile`); everything else is a few ulps;
* **differentiable**: ``torch.autograd.grad`` of the loss is the closed-form true gradient,
  ``torch.func.hessian`` of it the closed-form true Hessian (same tolerance, plus the ``1/angle``
  growth of the Hessian near a kink), and ``torch.autograd.gradcheck`` passes in float64;
* **the caller's type**: tensors come back as tensors of the input's dtype and device, batched
  over leading dimensions; float32 within float32 rounding of the float64 values;
* **any namespace**: array-api-strict arrays (a minimal array-API library) give the NumPy numbers,
  so nothing torch-specific is hidden in the code; the pair functions are the generated code
  objects themselves.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import numerics
from numerics import backend
from numerics.compile import pair_function
from numerics.validation import GRADIENT_FIELDS, HESSIAN_FIELDS, PARTS

from conftest import assert_close

RTOL = 1e-11  # of the object's largest entry: the closed form at theta = SWITCH (module docstring)
EPS32 = float(np.finfo(np.float32).eps)


def objects():
    """``(name, f(W, W_star, module))`` for the 18 public objects."""
    out = [(f"loss {p}", lambda W, Ws, m, p=p: m.loss(W, Ws, p)) for p in PARTS]
    out += [(f"gradient {p} {f}", lambda W, Ws, m, p=p, f=f: m.gradient(W, Ws, p, f))
            for p in PARTS for f in GRADIENT_FIELDS]
    out += [(f"hessian {p} {f}", lambda W, Ws, m, p=p, f=f: m.hessian(W, Ws, p, f))
            for p in PARTS for f in HESSIAN_FIELDS]
    return out


def close_to_reference(got, ref, what, rtol=RTOL, floor=0.0):
    ref = np.asarray(ref, dtype=float)
    atol = rtol * max(np.abs(ref).max(), 1e-300) + floor
    assert_close(np.asarray(got, dtype=float), ref, rtol=0, atol=atol, what=what)


def cancellation_floor(name, W, Ws):
    """The documented limit of both implementations with several students near the teacher: cross terms
    between different matched pairs cancel with absolute error ~eps |Z|^degree (degree 2 for a loss,
    1 for a gradient, 0 for a Hessian); 64 eps of it."""
    degree = 2 if name.startswith("loss") else 1 if name.startswith("gradient") else 0
    return 64 * np.finfo(float).eps * (np.sum(W**2) + np.sum(Ws**2)) ** (degree / 2)


def reference_rtol(W, Ws):
    """``RTOL`` plus the conditioning of the NumPy reference's Hessians next to a kink: their plane
    directions ``e2`` are formed from unit vectors subtracted (``numerics.geometry.plane_directions``),
    which loses ``~eps / theta`` for the smallest angle ``theta`` between two rows (the backend forms
    them from ``a - b``, as the NumPy gradient's boundary term does); 64 eps / theta of it."""
    Z = np.vstack([W, Ws])
    U = Z / np.linalg.norm(Z, axis=1, keepdims=True)
    off = ~np.eye(len(Z), dtype=bool)
    dif = np.linalg.norm(U[:, None] - U[None], axis=-1)[off]
    add = np.linalg.norm(U[:, None] + U[None], axis=-1)[off]
    theta = 2 * np.arctan2(np.minimum(dif, add), np.maximum(dif, add))  # distance to the nearer kink
    return RTOL + 64 * np.finfo(float).eps / theta.min()


def configurations():
    """Random configurations, and the regimes the NumPy path handles with care: a student near its
    teacher, two students near a kink (parallel and anti-parallel), d = 2."""
    rng = np.random.default_rng(20261127)
    out = [("generic", rng.standard_normal((3, 4)), rng.standard_normal((2, 4))),
           ("d = 2", rng.standard_normal((2, 2)), rng.standard_normal((3, 2)))]
    Ws = rng.standard_normal((2, 5))
    out.append(("near the teacher", Ws + 1e-7 * rng.standard_normal((2, 5)), Ws))
    W = rng.standard_normal((3, 4))
    W[1] = 1.7 * W[0] + 0.03 * rng.standard_normal(4)  # within SWITCH of parallel: the series branch
    out.append(("near parallel", W, rng.standard_normal((2, 4))))
    W = rng.standard_normal((3, 4))
    W[2] = -0.6 * W[0] + 0.02 * rng.standard_normal(4)
    out.append(("near anti-parallel", W, rng.standard_normal((2, 4))))
    return out


# ----------------------------------------------------------------------------- the same numbers
@pytest.mark.parametrize("label, W, Ws", configurations(), ids=lambda x: x if isinstance(x, str) else "")
def test_torch_float64_equals_the_numpy_reference(label, W, Ws):
    for name, f in objects():
        got = f(torch.tensor(W), torch.tensor(Ws), numerics)
        assert isinstance(got, torch.Tensor) and got.dtype == torch.float64, name
        close_to_reference(got.numpy(), f(W, Ws, numerics), f"{label}: {name}", rtol=reference_rtol(W, Ws),
                           floor=cancellation_floor(name, W, Ws))


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), K=st.integers(1, 4), Ks=st.integers(1, 4), d=st.integers(2, 5))
def test_random_weights_equal_the_numpy_reference(seed, K, Ks, d):
    rng = np.random.default_rng(seed)
    W, Ws = rng.standard_normal((K, d)), rng.standard_normal((Ks, d))
    for name, f in objects():
        close_to_reference(f(torch.tensor(W), torch.tensor(Ws), numerics).numpy(), f(W, Ws, numerics), name)


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), power=st.integers(-30, 30).filter(lambda p: abs(p) >= 3),
       which=st.sampled_from(["student", "teacher"]))
def test_rows_of_very_different_lengths_keep_the_reference_accuracy(seed, power, which):
    """One row ``10^power`` times longer than the others (a unit shrinking to zero in training, or a
    teacher far out): the pair geometry divides by the longer row's norm, so the angles stay accurate
    to ~eps whatever the ratio (divided by the shorter one they lost the ratio's digits: 30% errors
    in the Hessians at 1e-23).  Every object to the module's tolerance of the NumPy reference."""
    rng = np.random.default_rng(seed)
    W, Ws = rng.standard_normal((3, 4)), rng.standard_normal((2, 4))
    (W if which == "student" else Ws)[0] *= 10.0**power
    for name, f in objects():
        close_to_reference(f(torch.tensor(W), torch.tensor(Ws), numerics).numpy(), f(W, Ws, numerics),
                           f"{name}, row 0 of the {which}s scaled by 1e{power}", rtol=reference_rtol(W, Ws),
                           floor=cancellation_floor(name, W, Ws))


def test_one_student_near_its_teacher_keeps_full_relative_accuracy():
    """The matched-pair rewrites: at |W - W*| = 1e-9 |W*| the loss is ~1e-18 and every digit counts.
    (The true fields are checked by the next test: the reference loses digits there.)"""
    rng = np.random.default_rng(3)
    Ws = rng.standard_normal((1, 6))
    W = Ws + 1e-9 * rng.standard_normal((1, 6))
    for part in PARTS:
        ref = numerics.loss(W, Ws, part)
        assert abs(float(numerics.loss(torch.tensor(W), torch.tensor(Ws), part)) - ref) <= 1e-13 * ref, part
        close_to_reference(numerics.gradient(torch.tensor(W), torch.tensor(Ws), part, "mean").numpy(),
                           numerics.gradient(W, Ws, part, "mean"), f"{part} mean", rtol=1e-13)


def test_the_boundary_direction_next_to_the_teacher_is_exact():
    """The true field of J is the mean field plus a boundary term along e2, the unit vector of w* orthogonal
    to w.  At an angle of ~1e-9 its direction, against 50-digit mpmath from the same float inputs, is
    exact to 1e-14 (``eps / angle = 2e-7`` if it were formed from unit vectors); its length is the
    NumPy reference's to 1e-13."""
    mpmath = pytest.importorskip("mpmath")
    rng = np.random.default_rng(3)
    Ws = rng.standard_normal((1, 6))
    W = Ws + 1e-9 * rng.standard_normal((1, 6))
    with mpmath.workdps(50):
        a, b = ([mpmath.mpf(float(x)) for x in row] for row in (W[0], Ws[0]))
        na = mpmath.sqrt(sum(x * x for x in a))
        along = sum(x * y for x, y in zip(a, b)) / na**2
        u = [y - along * x for x, y in zip(a, b)]
        e2 = np.array([float(x / mpmath.sqrt(sum(v * v for v in u))) for x in u])
    step = (numerics.gradient(torch.tensor(W), torch.tensor(Ws), "J", "true")
            - numerics.gradient(torch.tensor(W), torch.tensor(Ws), "J", "mean")).numpy()[0]
    assert np.abs(step / np.linalg.norm(step) + e2).max() <= 1e-14  # the teacher's term enters with sign -1
    ref = (numerics.gradient(W, Ws, "J", "true") - numerics.gradient(W, Ws, "J", "mean"))[0]
    assert abs(np.linalg.norm(step) - np.linalg.norm(ref)) <= 1e-13 * np.linalg.norm(ref)


# ----------------------------------------------------------------------------- differentiable
@pytest.mark.parametrize("label, W, Ws", configurations(), ids=lambda x: x if isinstance(x, str) else "")
@pytest.mark.parametrize("part", PARTS)
def test_autograd_of_the_loss_is_the_true_gradient(label, W, Ws, part):
    Wt = torch.tensor(W, requires_grad=True)
    (g,) = torch.autograd.grad(numerics.loss(Wt, torch.tensor(Ws), part), Wt)
    close_to_reference(g.numpy(), numerics.gradient(W, Ws, part, "true"), f"{label}: autograd of {part}",
                       rtol=reference_rtol(W, Ws), floor=cancellation_floor("gradient", W, Ws))


@pytest.mark.parametrize("label, W, Ws", configurations(), ids=lambda x: x if isinstance(x, str) else "")
@pytest.mark.parametrize("part", PARTS)
def test_torch_func_hessian_of_the_loss_is_the_true_hessian(label, W, Ws, part):
    K, d = W.shape
    H = torch.func.hessian(lambda w: numerics.loss(w, torch.tensor(Ws), part))(torch.tensor(W))
    # near a kink the Hessian has ~1/angle entries: both sides lose ~eps/angle relative to them
    close_to_reference(H.reshape(K * d, K * d).numpy(), numerics.hessian(W, Ws, part, "true"),
                       f"{label}: torch.func.hessian of {part}", rtol=10 * reference_rtol(W, Ws),
                       floor=cancellation_floor("hessian", W, Ws))


@pytest.mark.parametrize("part", PARTS)
def test_gradcheck_and_gradgradcheck_in_float64(part):
    rng = np.random.default_rng(5)
    W = torch.tensor(rng.standard_normal((3, 4)), requires_grad=True)
    Ws = torch.tensor(rng.standard_normal((2, 4)))
    assert torch.autograd.gradcheck(lambda w: numerics.loss(w, Ws, part), (W,))
    assert torch.autograd.gradgradcheck(lambda w: numerics.loss(w, Ws, part), (W,))


def test_the_teacher_can_be_differentiated_too():
    """The loss is a function of both weight matrices: its derivative in W* is minus the gradient of
    the same loss with the roles exchanged (L(W, W*) = L(W*, W) is symmetric)."""
    rng = np.random.default_rng(6)
    W, Ws = rng.standard_normal((2, 3)), rng.standard_normal((3, 3))
    St = torch.tensor(Ws, requires_grad=True)
    (g,) = torch.autograd.grad(numerics.loss(torch.tensor(W), St, "H"), St)
    close_to_reference(g.numpy(), numerics.gradient(Ws, W, "H", "true"), "d/dW* of H")


def test_a_training_step_through_the_population_loss():
    """Population gradient descent with torch.optim on H drives the loss down (the loss as an objective)."""
    rng = np.random.default_rng(7)
    Ws = torch.tensor(rng.standard_normal((2, 4)))
    W = torch.tensor(rng.standard_normal((2, 4)), requires_grad=True)
    opt = torch.optim.SGD([W], lr=0.05)
    first = float(numerics.loss(W.detach(), Ws, "H"))
    for _ in range(50):
        opt.zero_grad()
        numerics.loss(W, Ws, "H").backward()
        opt.step()
    assert float(numerics.loss(W.detach(), Ws, "H")) < 0.5 * first


# ----------------------------------------------------------------------------- the caller's type
def test_batched_tensors_equal_the_loop_and_keep_the_batch_shape():
    rng = np.random.default_rng(8)
    W, Ws = rng.standard_normal((2, 3, 2, 3)), rng.standard_normal((3, 1, 3))
    Wt, St = torch.tensor(W), torch.tensor(Ws)
    for name, f in objects():
        got = f(Wt, St, numerics)
        assert got.shape[:2] == (2, 3), name
        for i, j in np.ndindex(2, 3):
            close_to_reference(got[i, j].numpy(), f(W[i, j], Ws[j, 0], numerics), f"{name} [{i}, {j}]")


@pytest.mark.parametrize("part", PARTS)
def test_float32_tensors_come_back_in_float32(part):
    rng = np.random.default_rng(9)
    W, Ws = rng.standard_normal((4, 5)).astype(np.float32), rng.standard_normal((3, 5)).astype(np.float32)
    W64, Ws64 = W.astype(np.float64), Ws.astype(np.float64)
    # float32 rounding of O(K + K*) terms, each with a few roundings: 200 eps32 of the largest entry
    for name, f in objects():
        if part not in name:
            continue
        got = f(torch.tensor(W), torch.tensor(Ws), numerics)
        assert got.dtype == torch.float32, name
        close_to_reference(got.double().numpy(), f(W64, Ws64, numerics), name, rtol=200 * EPS32)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), scale=st.sampled_from([1.5, -0.7, 3.0]), power=st.integers(-5, -1))
def test_float32_near_a_kink_within_its_documented_accuracy(seed, scale, power):
    """Two float32 students ``~10^power`` rad from (anti-)parallel: every object within ``200 eps32`` of the
    float64 reference at the same (float32-rounded) weights plus ``64 eps32 / theta``, the float32 twin of
    the float64 kink term (``reference_rtol``); objects refused in float32 (pairs below its angle
    resolution) must be refused as kinks."""
    rng = np.random.default_rng(seed)
    W, Ws = rng.standard_normal((3, 4)), rng.standard_normal((2, 4))
    W[1] = scale * W[0] + 10.0**power * rng.standard_normal(4)
    W, Ws = W.astype(np.float32), Ws.astype(np.float32)
    W64, Ws64 = W.astype(np.float64), Ws.astype(np.float64)
    theta = 64 * np.finfo(float).eps / (reference_rtol(W64, Ws64) - RTOL)  # the smallest distance to a kink
    for name, f in objects():
        try:
            ref = f(W64, Ws64, numerics)
        except ValueError:
            continue
        try:
            got = f(torch.tensor(W), torch.tensor(Ws), numerics)
        except ValueError as exc:
            assert "to within rounding" in str(exc), (name, str(exc))
            continue
        close_to_reference(got.double().numpy(), ref, name, rtol=200 * EPS32 + 64 * EPS32 / theta)


def test_mixed_inputs_take_the_tensors_type():
    rng = np.random.default_rng(10)
    W, Ws = rng.standard_normal((2, 3)), rng.standard_normal((2, 3))
    for a, b in ((torch.tensor(W), Ws.tolist()), (W, torch.tensor(Ws)), (W.tolist(), torch.tensor(Ws, dtype=torch.float32))):
        got = numerics.gradient(a, b, "H", "mean")
        assert isinstance(got, torch.Tensor)
        rtol = 200 * EPS32 if got.dtype == torch.float32 else RTOL
        close_to_reference(got.double().numpy(), numerics.gradient(W, Ws, "H", "mean"), "mixed", rtol=rtol)
    a = torch.tensor(W, dtype=torch.float32)
    assert numerics.loss(a, torch.tensor(Ws), "L").dtype == torch.float64  # the wider of the two


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device here")
def test_cuda_tensors_stay_on_the_device():
    rng = np.random.default_rng(11)
    W, Ws = rng.standard_normal((3, 4)), rng.standard_normal((2, 4))
    for name, f in objects():
        got = f(torch.tensor(W, device="cuda"), torch.tensor(Ws, device="cuda"), numerics)
        assert got.device.type == "cuda", name
        close_to_reference(got.cpu().numpy(), f(W, Ws, numerics), name)


# ----------------------------------------------------------------------------- refusals
def test_refusals_on_tensors():
    good = torch.tensor([[1.0, 0.5, -0.25]])
    for bad, fragment in ((torch.ones(1, 3, dtype=torch.complex64), "complex"),
                          (torch.tensor([[True, False, True]]), "booleans"),
                          (torch.zeros(1, 3), "zero row"),
                          (torch.tensor([[1.0, float("nan"), 0.0]]), "non-finite"),
                          (torch.ones(2, 4), "d = 4"),
                          (torch.ones(4, 2, 3), "do not broadcast")):
        with pytest.raises(ValueError, match=fragment):
            numerics.gradient(bad, torch.ones(3, 2, 3) if fragment == "do not broadcast" else good, "L", "mean")
    W = torch.tensor([[1.0, 2.0, 0.5], [2.0, 4.0, 1.0]])  # exactly parallel rows: J's kink
    for call in (lambda: numerics.gradient(W, good, "J", "true"), lambda: numerics.hessian(W, good, "H", "true"),
                 lambda: numerics.hessian(W, good, "J", "mean")):
        with pytest.raises(ValueError, match="exactly parallel"):
            call()
    assert torch.isfinite(numerics.gradient(W, good, "J", "mean")).all()  # the mean field exists there
    assert torch.isfinite(numerics.hessian(W, good, "L", "true")).all()


# ----------------------------------------------------------------------------- any namespace
def same_numbers_in(module_prefix: str, as_array, to_numpy, seed: int) -> tuple:
    """Every object on arrays made by ``as_array`` comes back as an array of ``module_prefix`` with the NumPy
    numbers; returns the ``(W, Ws)`` used."""
    rng = np.random.default_rng(seed)
    W, Ws = rng.standard_normal((3, 4)), rng.standard_normal((2, 4))
    for name, f in objects():
        got = f(as_array(W), as_array(Ws), numerics)
        assert type(got).__module__.startswith(module_prefix), name
        close_to_reference(to_numpy(got), f(W, Ws, numerics), name)
    return W, Ws


def test_array_api_strict_arrays_give_the_numpy_numbers():
    xps = pytest.importorskip("array_api_strict")
    same_numbers_in("array_api_strict", xps.asarray, np.from_dlpack, 12)


def test_numpy_arrays_given_to_the_backend_directly():
    rng = np.random.default_rng(13)
    W, Ws = rng.standard_normal((3, 4)), rng.standard_normal((2, 4))
    for name, f in objects():
        close_to_reference(f(W, Ws, backend), f(W, Ws, numerics), name)


def test_every_backend_runs_the_generated_code_objects():
    """No second copy of the formulas: the namespace-bound functions share the generated code."""
    import array_api_compat.torch as xpt

    for name in ("loss_J_f", "field_J_true_alpha", "hessian_J_true_off_B12"):
        pf = pair_function(name)
        bound = backend._pair_functions(name, xpt)
        assert [f.__code__ for f in bound] == [pf.closed_sc.__code__, pf.near_zero.__code__, pf.near_pi.__code__]


def test_importing_numerics_does_not_import_the_backend_libraries():
    import subprocess
    import sys

    code = ("import sys, numerics; numerics.loss([[1.0, 0.0]], [[0.0, 1.0]], 'H'); "
            "print(sorted(m for m in ('torch', 'sympy', 'array_api_compat') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"


def test_jax_arrays_where_installed():
    """JAX (where installed; not in the test extra: ~90 MB): the same numbers, JAX arrays back, and jax.grad of
    the loss is the true gradient.  (Not under jax.jit: the discrete choices read values.)"""
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    jnp = jax.numpy
    W, Ws = same_numbers_in("jax", jnp.asarray, np.asarray, 14)
    for part in PARTS:
        g = jax.grad(lambda w: numerics.loss(w, jnp.asarray(Ws), part))(jnp.asarray(W))
        close_to_reference(np.asarray(g), numerics.gradient(W, Ws, part, "true"), f"jax.grad of {part}")
