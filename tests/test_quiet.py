"""No NumPy or PyTorch warning reaches a caller of the public API for input inside the README's Guarantees.

Every call here runs with warnings as errors (and NumPy's default error state: overflow, division by
zero and invalid operations warn), so an intermediate overflow that the library's result does not
depend on, but that NumPy reports, fails the test.  The outcome must be a finite result or the
documented ``ValueError``.

* regression cases found by fuzzing (each raised ``RuntimeWarning`` before the fix):
  - the series of the true-gradient coefficients of ``J`` about a kink (``x/theta``) overflowed at
    pairs within ~1e-300 rad of (anti-)parallel, which the true gradient then takes from its mean-field
    twin (``numerics.population._coefficient``);
  - the direction ``e2`` of the boundary term of a pair whose rows differ in size by ``2**~600`` or more
    (``numerics.geometry._unit_orthogonal``, from ``paired_plane_directions``): its squared norm overflowed;
* a property test over random inputs inside the Guarantees (row sizes spread over ``2**±1000``, near-
  and exactly (anti-)parallel pairs at angles down to ``2**-1074``), NumPy and torch float64 inputs,
  single instances and small batches, every part and field, and the Monte-Carlo witness.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import numerics

PARTS = ("L", "J", "H")


def _quiet(fn, *args, **kwargs):
    """``fn(*args, **kwargs)`` with every warning an error under NumPy's default error state; its result,
    or the ``ValueError`` it raised (the documented answer outside an object's domain)."""
    with warnings.catch_warnings(), np.errstate(over="warn", divide="warn", invalid="warn", under="ignore"):
        warnings.simplefilter("error")
        try:
            return fn(*args, **kwargs)
        except ValueError as exc:
            return exc


def _as_array(result):
    return result.detach().cpu().numpy() if isinstance(result, torch.Tensor) else np.asarray(result)


def _assert_finite_or_refused(result, what: str) -> None:
    if isinstance(result, ValueError):
        return
    assert np.isfinite(_as_array(result)).all(), f"{what}: a non-finite result for finite input"


# ============================================================================ regressions found by fuzzing
# (W, W_star): pairs within ~1e-310 rad of a kink that the true gradient does not match to a teacher, so
# the series of its own coefficients is evaluated there (and overflows) before the twin replaces it
_SERIES_AT_A_KINK = {
    "student-teacher anti-parallel by 5e-324, d=2": ([[1.0, 0.0]], [[-1.0, 5e-324]]),
    "two students parallel by 3e-311, d=3": ([[1.0, 0.0, 0.0], [3.0, 0.0, 1e-310]], [[0.0, 1.0, 0.0]]),
    "two students anti-parallel by 4e-323, d=4": ([[0.5, 0.25, 0.0, 1.0], [-1.0, -0.5, 1e-322, -2.0]],
                                                 [[0.0, 1.0, 0.0, 0.0], [1.0, 0.0, 1.0, 0.0]]),
}


@pytest.mark.parametrize("part", ["J", "H"])
@pytest.mark.parametrize("case", list(_SERIES_AT_A_KINK))
def test_true_gradient_next_to_a_kink_is_silent(case, part):
    W, W_star = _SERIES_AT_A_KINK[case]
    out = _quiet(numerics.gradient, W, W_star, part, "true")
    assert not isinstance(out, ValueError), out
    _assert_finite_or_refused(out, case)
    # a batch hands such an instance to the single call
    batch = _quiet(numerics.gradient, np.array([W, W]), np.array(W_star), part, "true")
    assert not isinstance(batch, ValueError), batch
    assert np.array_equal(batch[0], out) and np.array_equal(batch[1], out)


def _far_smaller_near_kink(sign: float):
    """A student ``a`` and a teacher ``2**-700`` times as long, ``1e-9`` rad from (anti-)parallel to it."""
    a = np.array([0.42, 1.136, 0.11])
    return a[None], sign * 2.0**-700 * (a + np.array([0.0, 0.0, 1e-9]))[None]


@pytest.mark.parametrize("part", ["J", "H"])
@pytest.mark.parametrize("sign", [1.0, -1.0], ids=["parallel", "anti-parallel"])
def test_true_gradient_with_a_far_smaller_row_near_a_kink_is_silent(sign, part):
    W, W_star = _far_smaller_near_kink(sign)
    out = _quiet(numerics.gradient, W, W_star, part, "true")
    assert not isinstance(out, ValueError), out
    _assert_finite_or_refused(out, "far smaller row")
    # the same pair between two students, and in a batch
    out2 = _quiet(numerics.gradient, np.vstack([W, W_star]), [[0.0, 1.0, -1.0]], part, "true")
    assert not isinstance(out2, ValueError), out2
    batch = _quiet(numerics.gradient, np.stack([W, 2.0 * W]), W_star, part, "true")
    assert not isinstance(batch, ValueError), batch
    assert np.array_equal(batch[0], out)


# ============================================================================ property test
_CALLS = ([("loss", p, None) for p in PARTS]
          + [("gradient", p, f) for p in PARTS for f in ("mean", "true")]
          + [("hessian", p, f) for p in PARTS for f in ("true", "mean", "autograd")])


@st.composite
def _instances(draw, max_log2: int, span_log2: int):
    """``(W, W_star)`` inside the Guarantees: rows of random directions with sizes ``2**e``, ``e`` spread over at
    most ``span_log2`` within ``[-max_log2, max_log2]``; some entries zeroed; up to three pairs of a student and
    another row made (anti-)parallel: a rounded multiple, an exact power-of-two multiple, or a multiple with
    a zeroed entry made ``2**-t`` of the row (angles down to ``2**-1074``, the documented limit)."""
    K, Ks, d = draw(st.integers(1, 5)), draw(st.integers(1, 5)), draw(st.integers(2, 6))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    # biased towards the extremes, where the rare intermediate overflows live
    span = draw(st.sampled_from([0, 64, 600, span_log2]) | st.integers(0, span_log2))
    low = draw(st.integers(-max_log2, max_log2 - span))
    Z = rng.standard_normal((K + Ks, d))
    Z[rng.random(Z.shape) < draw(st.sampled_from([0.0, 0.3]))] = 0.0
    Z[~Z.any(axis=1), 0] = 1.0
    Z /= np.abs(Z).max(axis=1, keepdims=True)
    Z = np.ldexp(Z, rng.integers(low, low + span + 1, K + Ks)[:, None])
    for _ in range(draw(st.integers(0, 3))):
        if K + Ks < 2:
            break
        j = draw(st.integers(0, K - 1))
        q = draw(st.integers(0, K + Ks - 1).filter(lambda q, j=j: q != j))
        sign = draw(st.sampled_from([1.0, -1.0]))
        shift = int(np.frexp(np.abs(Z[q]).max())[1] - np.frexp(np.abs(Z[j]).max())[1])
        mode = draw(st.sampled_from(["rounded", "exact", "tiny"]))
        if mode == "rounded":
            Z[q] = sign * np.ldexp(Z[j], shift) * draw(st.floats(0.5, 1.0))
        elif mode == "exact":
            Z[q] = sign * np.ldexp(Z[j], shift)
        else:
            k = draw(st.integers(0, d - 1))
            Z[j, k] = 0.0
            if not Z[j].any():
                Z[j, (k + 1) % d] = np.ldexp(1.0, low)
            Z[q] = sign * np.ldexp(Z[j], shift)
            big = np.abs(Z[q]).max()
            Z[q, k] = np.ldexp(big, -draw(st.integers(20, 1100) | st.integers(1000, 1100))) or np.ldexp(1.0, -1074)
    return Z[:K].copy(), Z[K:].copy()


def _check_every_call(W, W_star, wrap=lambda x: x) -> None:
    for kind, part, field in _CALLS:
        fn = getattr(numerics, kind)
        args = (wrap(W), wrap(W_star), part) + (() if field is None else (field,))
        _assert_finite_or_refused(_quiet(fn, *args), f"{kind}({part}, {field})")


@settings(max_examples=150, deadline=None)
@given(inst=_instances(max_log2=1000, span_log2=860), batched=st.booleans())
def test_numpy_calls_inside_the_guarantees_are_silent(inst, batched):
    W, W_star = inst
    if batched:  # a batch of two: the instance and its mirror image (through the fast or the single call)
        W, W_star = np.stack([W, -W]), np.stack([W_star, -W_star])
    _check_every_call(W, W_star)


@settings(max_examples=50, deadline=None)
@given(inst=_instances(max_log2=480, span_log2=900), batched=st.booleans())
def test_torch_calls_inside_the_guarantees_are_silent(inst, batched):
    W, W_star = inst  # squared row norms in float64's normal range (the backend does not rescale)
    if batched:
        W, W_star = np.stack([W, -W]), np.stack([W_star, -W_star])
    _check_every_call(W, W_star, wrap=lambda x: torch.tensor(x, dtype=torch.float64))
    if not batched:  # the differentiable loss: autograd gives the true gradient
        for part in PARTS:
            Wt = torch.tensor(W, dtype=torch.float64, requires_grad=True)

            def grad(part=part, Wt=Wt):
                return torch.autograd.grad(numerics.loss(Wt, torch.tensor(W_star), part), Wt)[0]

            _assert_finite_or_refused(_quiet(grad), f"autograd of loss({part})")


@settings(max_examples=6, deadline=None)
@given(inst=_instances(max_log2=1000, span_log2=860), method=st.sampled_from(["plain", "subspace"]),
       as_tensor=st.booleans())
def test_monte_carlo_is_silent(inst, method, as_tensor):
    W, W_star = inst
    if as_tensor:
        W, W_star = torch.tensor(W), torch.tensor(W_star)
    est = _quiet(numerics.monte_carlo, W, W_star, 64, seed=0, device="cpu", method=method, progress=False)
    if not isinstance(est, ValueError):
        for p in PARTS:
            assert np.isfinite(est.loss[p]) and np.isfinite(est.loss_se[p])
