"""``train_batch``: many starts trained at once on the same samples, checked against the one-start trainer.

Tolerances: full-batch runs of ``train_batch`` are in practice bit-equal to :func:`train_finite_sample`
on these shapes, but that is not promised: the batched matmuls (``bmm`` / broadcast ``matmul``) may use
another BLAS kernel, hence another summation order, than the one-start ``mm`` (seen here for minibatches
of n < 64 rows: differences of a few ulp in ``X @ W.T``).  So iterates are compared entry-wise with
``rtol = 1e-12``, ``atol = 1e-14`` (20 steps of a contraction-like map amplify ulp differences only by a
modest factor; an indicator flip from such a difference would need a pre-activation within ~1e-16 of 0,
which does not happen for these Gaussian draws).
"""
import numpy as np
import pytest
import torch

from verify.experiments.finite_sample import empirical_gradient, train_batch, train_finite_sample
from verify.report import one_thread

from conftest import assert_close

B, K, D, N = 3, 3, 4, 64
RTOL, ATOL = 1e-12, 1e-14


@pytest.fixture(autouse=True, scope="module")
def _torch_on_one_thread():
    with one_thread():
        yield


@pytest.fixture(scope="module")
def problem():
    rng = np.random.default_rng(2024)
    W0 = rng.standard_normal((B, K, D))
    Ws = rng.standard_normal((K, D))
    X = torch.randn((N, D), generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    return W0, Ws, X


@pytest.mark.parametrize("part", ["L", "H"])
@pytest.mark.parametrize("batch", [None, 16])
def test_batched_equals_looped(problem, part, batch):
    """Start i of the batch ends where ``train_finite_sample(W0[i], ...)`` ends (same minibatch indices for SGD)."""
    W0, Ws, X = problem
    W0_before, X_before = W0.copy(), X.clone()
    out = train_batch(W0, Ws, X, part, 0.2, 20, batch=batch, seed=11)
    assert out["W"].shape == (B, K, D) and out["steps"].shape == (B,) and out["grad_norm"].shape == (B,)
    assert out["steps"].dtype.kind == "i" and np.all(out["steps"] == 20)
    for i in range(B):
        ref = train_finite_sample(W0[i], Ws, X, part, 0.2, 20, batch=batch, seed=11)[-1]
        assert not np.allclose(ref, W0[i])  # it moved
        assert_close(out["W"][i], ref, rtol=RTOL, atol=ATOL, what=f"start {i}, {part}, batch={batch}")
        g = np.linalg.norm(empirical_gradient(ref, Ws, X, part).numpy())
        assert_close(out["grad_norm"][i], g, rtol=1e-10, atol=ATOL, what=f"final full-batch gradient norm {i}")
    np.testing.assert_array_equal(W0, W0_before)  # inputs untouched
    assert torch.equal(X, X_before)


def test_sgd_depends_on_seed(problem):
    W0, Ws, X = problem
    a = train_batch(W0, Ws, X, "H", 0.2, 5, batch=8, seed=1)["W"]
    b = train_batch(W0, Ws, X, "H", 0.2, 5, batch=8, seed=2)["W"]
    assert not np.allclose(a, b)


@pytest.mark.parametrize("part", ["L", "H"])
def test_batched_gradient_is_each_starts_own(problem, part):
    """One step: ``(W0 - W1) / lr`` is ``empirical_gradient(W0[i])``; with 0 steps ``grad_norm`` is its norm."""
    W0, Ws, X = problem
    lr = 0.5
    W1 = train_batch(W0, Ws, X, part, lr, 1)["W"]
    at0 = train_batch(W0, Ws, X, part, lr, 0)
    np.testing.assert_array_equal(at0["W"], W0)
    assert np.all(at0["steps"] == 0)
    # (W0 - W1) / lr loses ~eps |W0| / lr to the subtraction.
    atol = 4 * np.finfo(float).eps * np.abs(W0).max() / lr
    for i in range(B):
        g = empirical_gradient(W0[i], Ws, X, part).numpy()
        assert_close((W0[i] - W1[i]) / lr, g, rtol=1e-10, atol=atol, what=f"one-step gradient of start {i}")
        assert_close(at0["grad_norm"][i], np.linalg.norm(g), rtol=1e-12, what=f"gradient norm of start {i}")


@pytest.mark.parametrize("part", ["L", "H"])
def test_grad_tol_stops_a_start_at_the_teacher(problem, part):
    W0, Ws, X = problem
    W0 = W0.copy()
    W0[1] = Ws + 1e-10 * np.random.default_rng(5).standard_normal(Ws.shape)
    tol = 1e-6
    assert np.linalg.norm(empirical_gradient(W0[1], Ws, X, part).numpy()) <= tol
    out = train_batch(W0, Ws, X, part, 0.2, 10, grad_tol=tol)
    assert out["steps"].tolist() == [10, 0, 10]
    np.testing.assert_array_equal(out["W"][1], W0[1])
    assert out["grad_norm"][1] <= tol
    for i in (0, 2):
        ref = train_finite_sample(W0[i], Ws, X, part, 0.2, 10)[-1]
        assert_close(out["W"][i], ref, rtol=RTOL, atol=ATOL, what=f"moving start {i}")
    # grad_tol = 0: never stops early, even at a gradient that is tiny.
    assert train_batch(W0, Ws, X, part, 0.2, 3)["steps"].tolist() == [3, 3, 3]
    # SGD ignores grad_tol.
    assert train_batch(W0, Ws, X, part, 0.2, 3, batch=8, grad_tol=tol)["steps"].tolist() == [3, 3, 3]


def test_grad_tol_stops_where_the_looped_run_first_meets_it():
    """A start near the teacher converges mid-run: it stops at the first k with ||grad(W_k)|| <= tol."""
    rng = np.random.default_rng(9)
    Ws = rng.standard_normal((2, 3))
    W0 = np.stack([Ws + 0.05 * rng.standard_normal(Ws.shape), rng.standard_normal((2, 3))])
    X = torch.randn((200, 3), generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    tol, lr, steps = 1e-5, 0.5, 200
    out = train_batch(W0, Ws, X, "L", lr, steps, grad_tol=tol)
    traj = train_finite_sample(W0[0], Ws, X, "L", lr, steps)
    norms = np.array([np.linalg.norm(empirical_gradient(W, Ws, X, "L").numpy()) for W in traj])
    k = int(np.argmax(norms <= tol))
    assert norms[k] <= tol and 0 < k < steps  # the looped run does meet tol mid-run
    assert out["steps"][0] == k
    assert_close(out["W"][0], traj[k], rtol=RTOL, atol=ATOL, what="stopped start")
    assert out["grad_norm"][0] <= tol


@pytest.mark.parametrize("kwargs, match", [
    (dict(W0=np.zeros((3, 4))), "W0"),
    (dict(W0=np.zeros((1, 2, 3, 4))), "W0"),
    (dict(W0=np.zeros((0, 3, 4))), "W0"),
    (dict(W0=np.zeros((2, 3, 5))), "dimension"),
    (dict(W_star=np.zeros((3, 5))), "dimension"),
    (dict(W_star=np.zeros(4)), "W_star"),
    (dict(X=torch.zeros((8, 5), dtype=torch.float64)), "dimension"),
    (dict(X=np.zeros((8, 4))), "X"),
    (dict(part="J"), "part"),
    (dict(part="h"), "part"),
    (dict(lr=0.0), "lr"),
    (dict(lr=-0.1), "lr"),
    (dict(lr=float("nan")), "lr"),
    (dict(steps=-1), "steps"),
    (dict(steps=2.0), "steps"),
    (dict(batch=0), "batch"),
    (dict(batch=-3), "batch"),
    (dict(grad_tol=-1e-3), "grad_tol"),
    (dict(W0=np.full((2, 3, 4), np.nan)), "finite"),
])
def test_bad_inputs(kwargs, match):
    args = dict(W0=np.ones((2, 3, 4)), W_star=np.ones((3, 4)), X=torch.ones((8, 4), dtype=torch.float64),
                part="H", lr=0.1, steps=2)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        train_batch(**args)


def test_student_width_may_differ_from_teacher():
    rng = np.random.default_rng(1)
    W0, Ws = rng.standard_normal((2, 2, 3)), rng.standard_normal((4, 3))
    X = torch.randn((50, 3), generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    out = train_batch(W0, Ws, X, "H", 0.3, 5, batch=10, seed=7)
    for i in range(2):
        ref = train_finite_sample(W0[i], Ws, X, "H", 0.3, 5, batch=10, seed=7)[-1]
        assert_close(out["W"][i], ref, rtol=RTOL, atol=ATOL, what=f"K=2 student, K*=4 teacher, start {i}")
