"""Input validation of the public API and behaviour at the kinks of J (docs/theory.md, section 6).

* malformed input raises ``ValueError`` whose message names the problem (row, argument, position);
* objects that do not exist at exactly (anti-)parallel rows (true gradient / true Hessian of J and H,
  Jacobian of their mean field) raise ``ValueError`` naming the two rows; the objects that do exist
  there return finite values equal to their limit;
* NumPy arrays, nested lists and torch tensors give the same numbers.
"""
import math
import re
import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import numerics
from conftest import assert_close

PARTS = ("L", "J", "H")

W0 = np.array([[1.0, 2.0, -0.5], [0.3, -1.0, 2.0]])
WS0 = np.array([[-1.0, 0.5, 1.5], [2.0, 0.1, 0.4], [0.2, 0.9, -1.1]])


def every_call(W, Ws):
    """One call of each public entry point (each validates both arrays)."""
    return [
        lambda: numerics.loss(W, Ws, "L"),
        lambda: numerics.gradient(W, Ws, "J", "mean"),
        lambda: numerics.hessian(W, Ws, "H", "autograd"),
    ]


# ----------------------------------------------------------------------------- malformed arrays
@pytest.mark.parametrize("row", [0, 1])
def test_zero_row_of_W_is_named(row):
    W = W0.copy()
    W[row] = 0.0
    for call in every_call(W, WS0):
        with pytest.raises(ValueError, match=rf"row {row} of W is zero"):
            call()


@pytest.mark.parametrize("row", [0, 2])
def test_zero_row_of_W_star_is_named(row):
    Ws = WS0.copy()
    Ws[row] = 0.0
    for call in every_call(W0, Ws):
        with pytest.raises(ValueError, match=rf"row {row} of W_star is zero"):
            call()


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("which, pos", [("W", (1, 2)), ("W", (0, 0)), ("W_star", (2, 1))])
def test_non_finite_entry_is_located(bad, which, pos):
    W, Ws = W0.copy(), WS0.copy()
    (W if which == "W" else Ws)[pos] = bad
    for call in every_call(W, Ws):
        with pytest.raises(ValueError, match=rf"\b{which}\[{pos[0]}, {pos[1]}\] = .* not finite"):
            call()


def test_mismatched_d():
    for call in every_call(W0, np.ones((2, 4))):
        with pytest.raises(ValueError, match=r"W has d = 3 but W_star has d = 4"):
            call()


@pytest.mark.parametrize("which", ["W", "W_star"])
def test_d_below_two(which):
    W = np.ones((2, 1)) if which == "W" else W0[:, :2]
    Ws = np.ones((3, 1)) if which == "W_star" else WS0[:, :2]
    for call in every_call(W, Ws):
        with pytest.raises(ValueError, match=rf"^{which} has d = 1; .*at least 2"):
            call()


@pytest.mark.parametrize("which", ["W", "W_star"])
def test_three_dimensional_array_is_a_batch_and_a_scalar_is_refused(which):
    """A 3-D array is a batch of instances (tests/test_batched.py checks their values); a scalar is
    neither a row nor a matrix and is refused naming the argument."""
    rng = np.random.default_rng(0)
    W = rng.standard_normal((2,) + np.shape(W0)) if which == "W" else W0
    Ws = rng.standard_normal((2,) + np.shape(WS0)) if which == "W_star" else WS0
    assert np.shape(numerics.loss(W, Ws, "L")) == (2,)
    scalar_W, scalar_Ws = (1.0, WS0) if which == "W" else (W0, 1.0)
    for call in every_call(scalar_W, scalar_Ws):
        with pytest.raises(ValueError, match=rf"^{which} "):
            call()


def test_complex_input_is_rejected():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError, match=r"real"):
            numerics.loss(W0 + 1j, WS0, "L")


# ----------------------------------------------------------------------------- unknown names
@pytest.mark.parametrize("part", ["X", "l", "LJ", "", None])
def test_unknown_part(part):
    for call in (lambda: numerics.loss(W0, WS0, part), lambda: numerics.gradient(W0, WS0, part, "mean"),
                 lambda: numerics.hessian(W0, WS0, part, "true")):
        with pytest.raises(ValueError, match=rf"part must be one of .*got {re.escape(repr(part))}"):
            call()


@pytest.mark.parametrize("field", ["autograd", "Mean", "jacobian", None])
def test_unknown_gradient_field(field):
    # "autograd" is a Hessian field only: the expected per-sample gradient is the "mean" field
    with pytest.raises(ValueError, match=rf"field for the gradient must be one of .*got {re.escape(repr(field))}"):
        numerics.gradient(W0, WS0, "L", field)


@pytest.mark.parametrize("field", ["hessian", "True", "exact", None])
def test_unknown_hessian_field(field):
    with pytest.raises(ValueError, match=rf"field for the Hessian must be one of .*got {re.escape(repr(field))}"):
        numerics.hessian(W0, WS0, "L", field)


# ----------------------------------------------------------------------------- kinks of J
# Exactly (anti-)parallel rows: integer multiples of integer-valued rows are exact in float64.
TEACHER = np.array([[1.0, 2.0, 3.0], [-2.0, 1.0, 0.0]])
KINKS = {
    "parallel student/teacher": (np.array([[2.0, 4.0, 6.0], [0.0, 1.0, 1.0]]), r"W\[0\] and W_star\[0\] are exactly parallel"),
    "anti-parallel student/teacher": (np.array([[0.0, 1.0, 1.0], [6.0, -3.0, 0.0]]), r"W\[1\] and W_star\[1\] are exactly anti-parallel"),
    "student equals teacher": (np.array([[1.0, 2.0, 3.0], [0.0, 1.0, 1.0]]), r"W\[0\] and W_star\[0\] are exactly parallel"),
    "parallel students": (np.array([[0.0, 1.0, 1.0], [0.0, 3.0, 3.0]]), r"W\[0\] and W\[1\] are exactly parallel"),
    "anti-parallel students": (np.array([[0.0, 1.0, 1.0], [0.0, -2.0, -2.0]]), r"W\[0\] and W\[1\] are exactly anti-parallel"),
}


@pytest.mark.parametrize("kink", list(KINKS))
@pytest.mark.parametrize("part", ["J", "H"])
def test_objects_that_do_not_exist_at_a_kink_raise(kink, part):
    W, message = KINKS[kink]
    # the message names the object that was asked for (for H: its J part is what fails)
    asked = "H \\(its J part\\)" if part == "H" else "J"
    with pytest.raises(ValueError, match=f"true gradient of {asked} does not exist.*{message}"):
        numerics.gradient(W, TEACHER, part, "true")
    for field, name in (("true", "true Hessian"), ("mean", "Jacobian of the mean field")):
        with pytest.raises(ValueError, match=f"{name} of {asked} does not exist.*{message}"):
            numerics.hessian(W, TEACHER, part, field)


def turned(W, row, angle, axis):
    """``W`` with row ``row`` turned by ``angle`` towards coordinate ``axis`` (norm kept)."""
    W = W.copy()
    w = W[row]
    n = np.linalg.norm(w)
    e = np.eye(len(w))[axis]
    e = e - (e @ w) / n**2 * w
    e /= np.linalg.norm(e)
    W[row] = math.cos(angle) * w + math.sin(angle) * n * e
    return W


def existing_objects(W, Ws):
    """Everything that exists at exactly (anti-)parallel rows, as ``{name: array}``."""
    out = {}
    for part in PARTS:
        out[f"loss {part}"] = np.array(numerics.loss(W, Ws, part))
        out[f"mean field {part}"] = numerics.gradient(W, Ws, part, "mean")
        out[f"autograd Hessian {part}"] = numerics.hessian(W, Ws, part, "autograd")
    out["true gradient L"] = numerics.gradient(W, Ws, "L", "true")
    for field in ("true", "mean"):
        out[f"{field} Hessian L"] = numerics.hessian(W, Ws, "L", field)
    return out


@pytest.mark.parametrize("kink", list(KINKS))
def test_objects_that_exist_at_a_kink_are_finite_and_continuous(kink):
    W, _ = KINKS[kink]
    at = existing_objects(W, TEACHER)
    # the mean field of J is explicitly required not to raise there
    assert np.all(np.isfinite(numerics.gradient(W, TEACHER, "J", "mean")))
    # the value at the kink is the limit: compare with the values 1e-9 rad away, approached from two
    # directions (the row of W in the kink pair turned towards x0 and towards x2)
    row = 0 if kink in ("parallel student/teacher", "student equals teacher") else 1
    for axis in (0, 2):
        near = existing_objects(turned(W, row, 1e-9, axis), TEACHER)
        for name, value in at.items():
            assert np.all(np.isfinite(value)), name
            # every object here is Lipschitz in W near the kink with O(1) constants (entries <= 3, norms <= 7):
            # a 1e-9 rad turn moves it by <~ 1e-8; rounding at 1e-9 rad is ~eps/1e-9 ~ 2e-7 relative at
            # worst for the e2-direction terms; 1e-6 separates that from a wrong limit (O(0.01) or more)
            scale = max(1.0, float(np.abs(value).max()))
            assert_close(near[name], value, rtol=0, atol=1e-6 * scale, what=f"{name}, {kink}, approach {axis}")


integer_rows = st.lists(st.integers(-3, 3), min_size=2, max_size=5)


@st.composite
def kinky_configs(draw):
    """Integer rows and exact multiples of them, so many pairs are exactly (anti-)parallel, then a common
    scale 10^k (|k| <= 150), which may break exactness and leave pairs parallel only to rounding."""
    d = draw(st.integers(2, 5))
    row = st.lists(st.integers(-3, 3), min_size=d, max_size=d).filter(any)
    Ws = np.array(draw(st.lists(row, min_size=1, max_size=4)), dtype=float)
    rows = []
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["free", "multiple of teacher", "multiple of student"]))
        if kind == "free" or (kind == "multiple of student" and not rows):
            rows.append(np.array(draw(row), dtype=float))
        else:
            base = Ws if kind == "multiple of teacher" else np.array(rows)
            c = draw(st.sampled_from([-3.0, -2.0, -1.0, -0.5, 0.5, 1.0, 2.0, 3.0]))
            rows.append(c * base[draw(st.integers(0, len(base) - 1))])
    W = np.array(rows)
    k = draw(st.integers(-150, 150))
    return W * 10.0**k, Ws * 10.0**k


@given(kinky_configs())
def test_existing_objects_never_nan_or_inf(cfg):
    W, Ws = cfg
    for name, value in existing_objects(W, Ws).items():
        assert np.all(np.isfinite(value)), (name, W, Ws)


# ----------------------------------------------------------------------------- input types
def all_results(W, Ws):
    out = []
    for part in PARTS:
        out.append(numerics.loss(W, Ws, part))
        for f in ("mean", "true"):
            out.append(numerics.gradient(W, Ws, part, f))
        for f in ("true", "mean", "autograd"):
            out.append(numerics.hessian(W, Ws, part, f))
    return out


def test_lists_give_the_same_numbers_as_arrays():
    W = np.array([[0.7, -1.2, 0.4], [1.5, 0.3, -0.8]])
    Ws = np.array([[-0.2, 1.1, 0.9]])
    for e, g in zip(all_results(W, Ws), all_results(W.tolist(), Ws.tolist())):
        assert isinstance(g, (float, np.ndarray))
        # identical float64 inputs and a deterministic computation: bit-identical results
        assert_close(g, e, rtol=0, atol=0, what="list")


# torch tensors go to numerics.backend and come back as tensors: tests/test_backend.py


def test_one_dimensional_input_is_one_row():
    w, ws = W0[0], WS0[1]
    for a, b in zip(all_results(w, ws), all_results(w[None], ws[None])):
        assert_close(a, b, rtol=0, atol=0, what="1-D input")
