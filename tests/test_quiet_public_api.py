"""Quiet for finite input (issue 26, item 6), beyond the paper's model: no NumPy or PyTorch warning reaches a caller
of the public API for input inside the README's Guarantees.

``tests/test_quiet.py`` covers ``loss / gradient / hessian`` of the paper's model (NumPy and torch float64) and the
plain Monte-Carlo witness; ``tests/test_adversarial.py`` and ``tests/test_mc_adversarial.py`` run with warnings as
errors.  Here, with warnings as errors too (module mark; NumPy's default error state: overflow, division by zero and
invalid operations warn):

* the condition numbers of any finite real square matrix (regression: entries of size ~1e308 made ``M + M^T``
  overflow in :func:`numerics.conditioning.spectra`, a ``RuntimeWarning`` and then a NaN spectrum, where the
  symmetric part itself is finite);
* the model family's keywords (output weights, zeros among them, leaky ReLU, ReLU powers, covariances, Sobolev
  weights, ``train_output``) over their documented range;
* ``activation="erf"`` over its documented range (zero rows, saturated rows, output weights up to 1e50);
* PyTorch float32 tensors (squared row norms in float32's normal range);
* the Monte-Carlo witnesses other than ``monte_carlo`` of the paper's model: the true-gradient, mean-Jacobian and
  autograd-Hessian witnesses, the per-sample gradients, and ``monte_carlo`` of the family and of erf.

Every call's outcome must be a finite result or the documented ``ValueError``.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import numerics
from numerics import conditioning, mc

# warnings as errors; the other two filters are third-party deprecations, not raised by this project's code:
# pyproject's (inside PyTorch), and one that Hypothesis's report of a failing example triggers (it imports libcst),
# which would turn a plain test failure into a pytest INTERNALERROR
pytestmark = pytest.mark.filterwarnings("error", "ignore:`torch.jit.script` is deprecated:DeprecationWarning",
                                        "ignore:mypy_extensions.TypedDict is deprecated:DeprecationWarning")

PARTS = ("L", "J", "H")
SEEDS = st.integers(0, 2**32 - 1)


def _outcome(fn, *args, **kwargs):
    """``fn(*args, **kwargs)`` under NumPy's default error state (a warning is an error: module mark), or the
    ``ValueError`` it raised."""
    with np.errstate(over="warn", divide="warn", invalid="warn", under="ignore"):
        try:
            return fn(*args, **kwargs)
        except ValueError as exc:
            return exc


def _assert_finite_or_refused(result, what: str) -> None:
    if isinstance(result, ValueError):
        return
    for x in result if isinstance(result, tuple) else (result,):
        x = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
        assert np.isfinite(x).all(), f"{what}: a non-finite result for finite input"


def _rows(rng, K: int, Ks: int, d: int, low: int, high: int) -> tuple:
    """``(W, W_star)``: random directions with sizes ``2**e``, ``e`` in ``[low, high]`` (often at the two ends), some
    entries zeroed, and possibly one row an exact or a rounded multiple of another (a kink, or next to one)."""
    Z = rng.standard_normal((K + Ks, d))
    Z[rng.random(Z.shape) < 0.25] = 0.0
    Z[~Z.any(axis=1), 0] = 1.0
    Z /= np.abs(Z).max(axis=1, keepdims=True)
    e = rng.choice([low, high], K + Ks) if rng.random() < 0.5 else rng.integers(low, high + 1, K + Ks)
    Z = np.ldexp(Z, e[:, None])
    if K + Ks > 1 and rng.random() < 0.5:
        j, q = rng.choice(K + Ks, 2, replace=False)
        m = float(rng.choice([1.0, -1.0, 0.75, -1.25]))
        Z[q] = np.ldexp(m * Z[j] * (1.0 if rng.random() < 0.5 else 1.0 + 2.0**-40), int(e[q] - e[j]))
    return Z[:K].copy(), Z[K:].copy()


# ============================================================================ condition numbers
def test_condition_numbers_of_a_matrix_whose_sum_with_its_transpose_overflows():
    """``M = 1e308 [[1, -1], [1, 1]]`` is finite and so is its symmetric part ``diag(1e308, 1e308)``, but ``M + M^T``
    overflows on the diagonal: ``spectra`` warned (``overflow encountered in add``) and the inf made the symmetric
    spectrum NaN, a ``ValueError`` for a finite matrix.  ``M`` is ``sqrt(2) 1e308`` times a rotation: every
    condition number is 1, as for the same matrix scaled by ``2**-600``."""
    M = 1e308 * np.array([[1.0, -1.0], [1.0, 1.0]])
    s = conditioning.spectra(M)
    np.testing.assert_array_equal(s["symmetric"], [1e308, 1e308])
    kappa = conditioning.condition_numbers(M)
    small = conditioning.condition_numbers(np.ldexp(M, -600))
    for name in conditioning.DEFINITIONS:
        assert kappa[name] == pytest.approx(1.0, rel=1e-14), (name, kappa)
        assert kappa[name] == pytest.approx(small[name], rel=1e-14), (name, kappa, small)


@settings(max_examples=200, deadline=None)
@given(seed=SEEDS, n=st.integers(1, 5), mode=st.sampled_from(["spread", "huge", "tiny", "psd"]))
def test_condition_numbers_of_finite_matrices_are_silent(seed, n, mode):
    """Any finite real square matrix: a dict of floats ``>= 1`` or ``None`` (or a ``ValueError`` where a spectrum
    leaves float64), silently; where ``M + M^T`` stays finite the symmetric spectrum is ``eigvalsh((M + M^T) / 2)`` bit for
    bit (the computation before the overflow fix)."""
    rng = np.random.default_rng(seed)
    M = rng.standard_normal((n, n))
    if mode == "spread":
        M = np.ldexp(M, rng.integers(-1074, 1024, (n, n)))
    elif mode == "huge":
        M = np.ldexp(M / 4.0, 1024 - rng.integers(0, 3, (n, n)))
    elif mode == "tiny":
        M = np.ldexp(M, rng.integers(-1074, -1000, (n, n)))
    else:
        M = np.ldexp(M @ M.T, int(rng.integers(-1000, 1000)))
    M[~np.isfinite(M)] = np.finfo(float).max
    out = _outcome(conditioning.condition_numbers, M, rtol=float(rng.choice([0.0, 1e-12])))
    if not isinstance(out, ValueError):
        assert all(v is None or v >= 1.0 for v in out.values()), out  # max / min of positive values
    with np.errstate(over="ignore"):
        plain = (M + M.T) / 2
    if np.isfinite(plain).all():
        s = _outcome(conditioning.spectra, M)
        if not isinstance(s, ValueError):
            np.testing.assert_array_equal(s["symmetric"], np.linalg.eigvalsh(plain))


# ============================================================================ the model family
@settings(max_examples=40, deadline=None)
@given(seed=SEEDS, act=st.sampled_from(["relu", ("leaky_relu", 0.0), ("leaky_relu", 0.3), ("relu_power", 2),
                                         ("relu_power", 3)]),
       batched=st.booleans())
def test_model_family_calls_inside_the_guarantees_are_silent(seed, act, batched):
    """Rows from ``2**-250`` (the family's smallest) to ``2**250``, output weights of any size with zeros among them
    (all zero too), covariances, Sobolev weights, ``train_output``: every loss, gradient and Hessian is silent."""
    rng = np.random.default_rng(seed)
    K, Ks, d = (int(x) for x in rng.integers([1, 1, 2], [4, 4, 5]))
    span = int(rng.choice([0, 60, 250]))
    low = int(rng.integers(-250, 250 - span + 1))
    W, Ws = _rows(rng, K, Ks, d, low, low + span)
    kw = {"activation": act}
    for name, m in (("a", K), ("a_star", Ks)):
        if rng.random() < 0.7:
            a = rng.standard_normal(m) * 10.0 ** rng.uniform(-100, 100)
            a[rng.random(m) < 0.4] = 0.0
            kw[name] = a if rng.random() < 0.8 else np.zeros(m)
    if rng.random() < 0.4:
        A = rng.standard_normal((d, d))
        kw["cov"] = A @ A.T + 10.0 ** rng.uniform(-6, 0) * np.eye(d)
    parts = PARTS + (("J2",) if act[0] == "relu_power" else ())
    if rng.random() < 0.5:
        kw["sobolev"] = (float(rng.choice([0.0, 1.0, 1e3])), float(rng.choice([0.0, 0.5])) if "J2" in parts else 0.0)
    if batched:
        W, Ws = np.stack([W, -W]), np.stack([Ws, 2.0 * Ws])
    for part in parts:
        _assert_finite_or_refused(_outcome(numerics.loss, W, Ws, part, **kw), f"loss({part})")
        for field in ("mean", "true"):
            for train_output in (False, True):
                out = _outcome(numerics.gradient, W, Ws, part, field, train_output=train_output, **kw)
                _assert_finite_or_refused(out, f"gradient({part}, {field}, train_output={train_output})")
        for field in ("true", "mean", "autograd"):
            out = _outcome(numerics.hessian, W, Ws, part, field, train_output=bool(rng.random() < 0.3), **kw)
            _assert_finite_or_refused(out, f"hessian({part}, {field})")


# ============================================================================ erf
@settings(max_examples=40, deadline=None)
@given(seed=SEEDS, batched=st.booleans())
def test_erf_calls_inside_the_guarantees_are_silent(seed, batched):
    """``activation="erf"``: rows from 1e-300 to ``|w|^2 = 1e30`` (saturated), a zero row, duplicates and
    (anti-)parallel rows, output weights up to 1e50 with zeros among them, a covariance, Sobolev weights."""
    rng = np.random.default_rng(seed)
    K, Ks, d = (int(x) for x in rng.integers([1, 1, 1], [4, 4, 5]))
    Z = rng.standard_normal((K + Ks, d))
    Z /= np.linalg.norm(Z, axis=1, keepdims=True) + 1e-300
    Z *= 10.0 ** rng.choice([rng.uniform(-300, 15, K + Ks), rng.choice([-300.0, 0.0, 14.9], K + Ks)])[:, None]
    if rng.random() < 0.3:
        Z[rng.integers(0, K + Ks)] = 0.0
    if rng.random() < 0.4:
        j, q = rng.integers(0, K + Ks, 2)
        Z[q] = float(rng.choice([1.0, -1.0, 0.5, 1.0 + 2.0**-52])) * Z[j]
    W, Ws = Z[:K], Z[K:]
    kw = {"activation": "erf"}
    for name, m in (("a", K), ("a_star", Ks)):
        if rng.random() < 0.6:
            a = rng.standard_normal(m) * 10.0 ** rng.uniform(-300, 49.5)
            a[rng.random(m) < 0.3] = 0.0
            kw[name] = a
    if rng.random() < 0.3:
        A = rng.standard_normal((d, d))
        C = A @ A.T + 1e-3 * np.eye(d)
        kw["cov"] = C / np.abs(C).max()
    if rng.random() < 0.5:
        kw["sobolev"] = (float(rng.choice([0.0, 1.0, 1e3])), float(rng.choice([0.0, 0.5, 1e3])))
    if batched:
        W, Ws = np.stack([W, -W]), np.stack([Ws, 0.5 * Ws])
    for part in ("L", "J", "J2", "H"):
        _assert_finite_or_refused(_outcome(numerics.loss, W, Ws, part, **kw), f"erf loss({part})")
        for train_output in (False, True):
            out = _outcome(numerics.gradient, W, Ws, part, "true", train_output=train_output, **kw)
            _assert_finite_or_refused(out, f"erf gradient({part}, train_output={train_output})")
            out = _outcome(numerics.hessian, W, Ws, part, "true", train_output=train_output, **kw)
            _assert_finite_or_refused(out, f"erf hessian({part}, train_output={train_output})")


# ============================================================================ torch float32
@settings(max_examples=25, deadline=None)
@given(seed=SEEDS, batched=st.booleans())
def test_torch_float32_calls_inside_the_guarantees_are_silent(seed, batched):
    """float32 tensors with squared row norms in float32's normal range (rows ``2**-60 .. 2**60``), near and at
    kinks: every loss, gradient and Hessian, and autograd of the loss, silently."""
    rng = np.random.default_rng(seed)
    K, Ks, d = (int(x) for x in rng.integers([1, 1, 2], [4, 4, 5]))
    span = int(rng.choice([0, 30, 120]))
    low = int(rng.integers(-60, 60 - span + 1))
    W, Ws = _rows(rng, K, Ks, d, low, low + span)
    if batched:
        W, Ws = np.stack([W, -W]), np.stack([Ws, Ws])
    Wt, Wst = torch.tensor(W, dtype=torch.float32), torch.tensor(Ws, dtype=torch.float32)
    for part in PARTS:
        _assert_finite_or_refused(_outcome(numerics.loss, Wt, Wst, part), f"loss({part})")
        for field in ("mean", "true"):
            _assert_finite_or_refused(_outcome(numerics.gradient, Wt, Wst, part, field), f"gradient({part}, {field})")
        for field in ("true", "mean", "autograd"):
            _assert_finite_or_refused(_outcome(numerics.hessian, Wt, Wst, part, field), f"hessian({part}, {field})")
        if not batched:
            def grad(part=part):
                x = Wt.clone().requires_grad_(True)
                return torch.autograd.grad(numerics.loss(x, Wst, part), x)[0]

            _assert_finite_or_refused(_outcome(grad), f"autograd of loss({part})")


# ============================================================================ Monte-Carlo witnesses
@settings(max_examples=15, deadline=None)
@given(seed=SEEDS, part=st.sampled_from(PARTS))
def test_monte_carlo_witnesses_are_silent(seed, part):
    """Any finite weights (rows ``2**-1000 .. 2**1000``, far apart or not): the true-gradient, mean-Jacobian and
    autograd-Hessian witnesses and the per-sample gradients, silently."""
    rng = np.random.default_rng(seed)
    K, Ks, d = (int(x) for x in rng.integers([1, 1, 2], [3, 3, 4]))
    span = int(rng.choice([0, 100, 900, 2000]))
    low = int(rng.integers(-1000, 1000 - span + 1))
    W, Ws = _rows(rng, K, Ks, d, low, low + span)
    for fn in (mc.true_gradient_fd, mc.mean_field_jacobian_fd, mc.autograd_hessian_mc):
        out = _outcome(fn, W, Ws, part, 16, seed=0, device="cpu")
        _assert_finite_or_refused(out, f"{fn.__name__}({part})")
    x = torch.randn(8, d, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    for fn in (mc.per_sample_gradients_autograd, mc.per_sample_gradients_closed):
        _assert_finite_or_refused(_outcome(fn, torch.tensor(W), torch.tensor(Ws), x, part), fn.__name__)


@settings(max_examples=15, deadline=None)
@given(seed=SEEDS, act=st.sampled_from(["relu", ("leaky_relu", 0.2), ("relu_power", 2), ("relu_power", 3), "erf"]))
def test_monte_carlo_of_the_family_and_of_erf_is_silent(seed, act):
    """``monte_carlo`` with the family's keywords (output weights with zeros, ``train_output``) and with erf."""
    rng = np.random.default_rng(seed)
    K, Ks, d = (int(x) for x in rng.integers([1, 1, 2], [3, 3, 4]))
    if act == "erf":
        W, Ws = _rows(rng, K, Ks, d, -60, 49)
    else:
        W, Ws = _rows(rng, K, Ks, d, -250, 250)
    a = rng.standard_normal(K) * 10.0 ** rng.uniform(-40, 40)
    a[rng.random(K) < 0.4] = 0.0
    kw = {"a": a, "a_star": np.zeros(Ks) if rng.random() < 0.3 else None, "activation": act}
    if act == "erf":
        kw["sobolev"] = (1.0, 0.5)
    else:
        kw["train_output"] = bool(rng.random() < 0.5)
        if act[0] == "relu_power":
            kw["sobolev"] = (1.0, 0.5)
    est = _outcome(numerics.monte_carlo, W, Ws, 32, seed=int(rng.integers(0, 2**32)), **kw)
    if not isinstance(est, ValueError):
        for p, value in est.loss.items():
            assert np.isfinite(value) and np.isfinite(est.loss_se[p]), (p, value)
