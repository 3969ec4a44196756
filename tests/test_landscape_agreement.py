"""The landscape's descent engine against the descent it replaced, run by run (issue: fewer steps, same answer).

The report's runs go through numerics.fused_fields (NumPy) and stop once the value loss certifies them global
(``TOLERANCES["value_tol"]``).  The descent before it followed the reference fields (numerics.descent_field, the
backend; the path a PyTorch tensor still takes) until the field fell below ``STOP``, classified with the old value
tolerance 1e-8 for K > k only.  On a small profile every start must end in the same kind under both."""
from __future__ import annotations

import numpy as np
import pytest

from numerics import landscape as LS
from numerics.flows import FLOWS
from verify.landscape import compute

torch = pytest.importorskip("torch")

OLD_TOLERANCES = dict(compute.TOLERANCES, value_tol=1e-8)


def _kinds_new(W0, W_star, flow, lr, max_steps):
    res = LS.descend(W0, W_star, flow, lr=lr, max_steps=max_steps, grad_tol=compute.STOP,
                     value_tol=compute.TOLERANCES["value_tol"])
    return res, [LS.classify(w, W_star, flow, locks=lk, **compute.TOLERANCES)["kind"]
                 for w, lk in zip(res["W"], res["locks"])]


def _kinds_old(W0, W_star, flow, lr, max_steps):
    value_tol = OLD_TOLERANCES["value_tol"] if W0.shape[1] > len(W_star) else 0.0
    res = LS.descend(torch.from_numpy(W0), W_star, flow, lr=lr, max_steps=max_steps, grad_tol=compute.STOP,
                     value_tol=value_tol)
    W, locks = res["W"].numpy(), res["locks"].numpy()
    return res, [LS.classify(w, W_star, flow, locks=lk, **OLD_TOLERANCES)["kind"] for w, lk in zip(W, locks)]


def _agree(k: int, K: int, starts: int, flows=FLOWS, max_steps: int = 8000):
    W_star = compute.teacher(k)
    W0 = compute.initial_weights(0, k, K, 0, starts)
    for flow in flows:
        lr = compute.step_size(k, flow, 0.5)
        new, kinds_new = _kinds_new(W0, W_star, flow, lr, max_steps)
        old, kinds_old = _kinds_old(W0, W_star, flow, lr, max_steps)
        assert kinds_new == kinds_old, (k, K, flow)
        finished = np.array([kind == "global" for kind in kinds_new])
        # the value rule spares steps: never more than the old descent took
        assert (new["steps"] <= old["steps"].numpy()).all(), (k, K, flow)
        if finished.any() and K == k:
            assert (new["steps"][finished] < old["steps"].numpy()[finished]).all(), (k, K, flow)


def test_the_engine_ends_every_start_in_the_kind_of_the_old_descent():
    _agree(6, 6, 2)


def test_a_spurious_minimum_is_reached_by_both():
    """k = 8, K = 8: the first start ends at a spurious minimum of L, the second at the teacher (standard profile:
    14 of 100 spurious); both engines put each in the same kind."""
    W_star = compute.teacher(8)
    W0 = compute.initial_weights(0, 8, 8, 0, 2)
    lr = compute.step_size(8, "L", 0.5)
    _, kinds_new = _kinds_new(W0, W_star, "L", lr, 8000)
    _, kinds_old = _kinds_old(W0, W_star, "L", lr, 8000)
    assert kinds_new == kinds_old == ["spurious minimum", "global"]


@pytest.mark.slow
@pytest.mark.parametrize("k, K", [(6, 7), (6, 8), (8, 8), (8, 9), (10, 10)])
def test_the_engine_agrees_on_more_starts(k, K):
    _agree(k, K, 20, max_steps=16000)
