"""Inputs at the edges of what the closed forms accept: their types, and the memory a Hessian needs.

Each test is a regression for a reported failure: a ``TypeError`` for a bfloat16 tensor, NumPy's
own message for a ragged list, numeric strings silently converted, and a ``MemoryError`` raised
after seconds of work for a Hessian that could never fit.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

import numerics
import numerics.population as npop

W_STAR = [[1.0, 0.5, -0.25]]


def test_bfloat16_and_float16_tensors_are_read_exactly():
    x = torch.tensor([[0.5, -1.25, 2.0]])
    expected = numerics.loss(x.double().numpy(), W_STAR, "H")
    for dtype in (torch.bfloat16, torch.float16, torch.float32):
        # these values are exact in every dtype; half precisions are computed in float32 (numerics.backend),
        # so the result is a float32 tensor within a few float32 ulps (eps32 = 1.2e-7) of the float64 value
        got = numerics.loss(x.to(dtype), W_STAR, "H")
        assert got.dtype == torch.float32
        assert abs(float(got) - expected) <= 8 * 1.2e-7 * expected


@pytest.mark.parametrize("bad, fragment", [
    ([[1.0, 2.0, 3.0], [4.0, 5.0]], "W must be a real array of shape"),
    ([["1", "2", "3"]], "W must hold real numbers"),
    ([[True, False, True]], "booleans"),
    (np.array([[1.0, "a", 2.0]], dtype=object), "W must hold real numbers"),
    (torch.ones(1, 3, dtype=torch.complex64), "complex"),
])
def test_malformed_weights_raise_value_error_naming_w(bad, fragment):
    with pytest.raises(ValueError, match=fragment):
        numerics.gradient(bad, W_STAR, "L", "mean")


def test_exact_non_float_numbers_are_accepted():
    from fractions import Fraction

    import mpmath

    exact = [[Fraction(1, 2), mpmath.mpf(-1.25), 2]]
    assert numerics.loss(exact, W_STAR, "L") == numerics.loss([[0.5, -1.25, 2.0]], W_STAR, "L")


def test_hessian_that_cannot_fit_is_refused_up_front(monkeypatch):
    # pretend 1 GiB is available: K = 20, d = 1000 needs 5 (20000^2 * 8 B) ~ 15 GiB for H
    monkeypatch.setattr(npop, "available_memory", lambda: 2**30)
    rng = np.random.default_rng(0)
    W, W_star = rng.standard_normal((20, 1000)), rng.standard_normal((20, 1000))

    def assembly(*args, **kwargs):  # refused before any assembly starts
        raise AssertionError("the Hessian was assembled before its size was checked")

    monkeypatch.setattr(npop, "_hessian", assembly)
    with pytest.raises(ValueError, match=r"\(20000, 20000\) matrix .* available"):
        numerics.hessian(W, W_star, "H", "true")


def test_hessian_that_fits_is_not_refused(monkeypatch):
    monkeypatch.setattr(npop, "available_memory", lambda: 2**30)
    W, W_star = np.eye(3)[:2] + 0.1, np.eye(3)[1:]
    assert numerics.hessian(W, W_star, "H", "true").shape == (6, 6)


def test_available_memory_is_positive_or_unknown():
    have = npop.available_memory()
    assert have is None or have > 0
