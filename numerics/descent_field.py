"""The mean field of ``L`` or ``H`` for a batch of students, as fast as each instance allows: for long descents.

:func:`numerics.gradient` on a batch computes the well-separated instances together and sends every instance with
a pair of rows within ``SWITCH`` of (anti-)parallel through the single-instance reference one by one (series
branches, exact angles, the near-teacher rewrite), about a millisecond each.  A descent spends most of its steps
next to a minimum, where every instance is such a one.  :func:`mean_field` sends those to
:func:`numerics.backend.gradient` instead: the same generated formulas, branches chosen elementwise and every
instance of the batch at once, with the same near-teacher rewrite; the two agree to a few ulps
(``tests/test_landscape.py``).  Each instance's result depends on that instance alone, never on the rest of the
batch.
"""
from __future__ import annotations

import math

import numpy as np

from . import backend
from .compile import SWITCH
from .population import gradient

NEAR_COS = math.cos(SWITCH)  # |cos| above this: a pair within SWITCH of (anti-)parallel


def near_kinks(W: np.ndarray, W_star: np.ndarray) -> np.ndarray:
    """``(B,)``: which instances of ``W (B, K, d)`` have a student–student or student–teacher pair within ``SWITCH``
    of (anti-)parallel."""
    with np.errstate(invalid="ignore", divide="ignore"):  # a zero row: NaN cosines, "not near", and the
        A = W / np.linalg.norm(W, axis=-1, keepdims=True)  # reference path then raises its ValueError
        U = W_star / np.linalg.norm(W_star, axis=-1, keepdims=True)
        cs = np.abs(A @ np.swapaxes(A, -1, -2))
        cs[:, np.arange(W.shape[1]), np.arange(W.shape[1])] = 0.0
        return (cs.max(axis=(1, 2)) > NEAR_COS) | (np.abs(A @ U.T).max(axis=(1, 2)) > NEAR_COS)


def mean_field(W: np.ndarray, W_star: np.ndarray, part: str) -> np.ndarray:
    """The mean field of ``part`` (``"L"`` or ``"H"``) at every instance of ``W (B, K, d)``, teacher ``W_star (K*, d)``;
    tensors (PyTorch, any device) go to :func:`numerics.backend.gradient` whole."""
    if not isinstance(W, np.ndarray):
        return backend.gradient(W, W_star, part, "mean")
    near = near_kinks(W, W_star)
    out = np.empty_like(W)
    if (~near).any():
        out[~near] = gradient(W[~near], W_star, part, "mean")
    if near.any():
        out[near] = backend.gradient(W[near], W_star, part, "mean")
    return out
