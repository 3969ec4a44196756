"""The matrix objects on separated instances (``numerics.fast_hessian``), single and batched.

Objects: ``"true"`` the Hessian of the population loss, ``"mean"`` the Jacobian of the mean field,
``"autograd"`` the expected per-sample autograd Hessian, of ``L``, ``J``, ``H``.

Bounds established:
- fast against general assembly (``numerics.population._hessian_general``, the path for every other
  instance): 1e-12 of the matrix's largest entry.  Both evaluate the same closed-form coefficients; they
  differ in how ``e2`` is formed (``u - cos e1`` re-orthogonalised, against the general path's
  half-angle form) and in the order of the sums: ~1e-15 seen; the bound leaves room for ``sin`` down to
  ``sin(SWITCH)``, which amplifies the cosine's rounding ~10 times, and for ``d`` up to 40.
- batched against single calls: BIT FOR BIT (the same functions on stacks; every other instance is the
  single call itself).
"""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import numerics
import numerics.population as npop
from numerics import fast_gradient, fast_hessian
from numerics.validation import prepare

PARTS = ("L", "J", "H")
FIELDS = ("true", "mean", "autograd")


def _separated(rng, K, Ks, d):
    for _ in range(500):
        W, Ws = rng.standard_normal((K, d)), rng.standard_normal((Ks, d))
        Wp, Wsp, _ = prepare(W, Ws)
        c, _n = fast_gradient.cosines(Wp[None], Wsp[None], (Wp * Wp).sum(1)[None], (Wsp * Wsp).sum(1)[None])
        if fast_gradient.separated(c)[0]:
            return W, Ws
    pytest.skip("no separated instance drawn")


def _general(W, Ws, part, field):
    Wp, Wsp, _ = prepare(W, Ws)
    return npop._hessian_general(Wp, Wsp, part, field)


class _Counter:
    """Counts the calls of ``numerics.fast_hessian.assemble``."""

    def __init__(self, monkeypatch):
        self.calls = 0
        real = fast_hessian.assemble

        def counted(*args):
            self.calls += 1
            return real(*args)
        monkeypatch.setattr(fast_hessian, "assemble", counted)


@settings(max_examples=40, deadline=None)
@given(K=st.integers(1, 5), Ks=st.integers(1, 5), d=st.integers(2, 8), seed=st.integers(0, 2**32 - 1),
       scale=st.sampled_from([1.0, 1e-3, 2.0**300]))
def test_fast_equals_general(K, Ks, d, seed, scale):
    rng = np.random.default_rng(seed)
    W, Ws = _separated(rng, K, Ks, d)
    W = W * scale
    for part in PARTS:
        for field in FIELDS:
            fast, general = numerics.hessian(W, Ws, part, field), _general(W, Ws, part, field)
            assert np.abs(fast - general).max() <= 1e-12 * np.abs(general).max(), (part, field)


@pytest.mark.parametrize("K,Ks,d", [(6, 4, 40), (2, 1, 2), (1, 3, 3)])
def test_fast_equals_general_larger_and_smallest(K, Ks, d):
    W, Ws = _separated(np.random.default_rng(K * 100 + d), K, Ks, d)
    for part in PARTS:
        for field in FIELDS:
            fast, general = numerics.hessian(W, Ws, part, field), _general(W, Ws, part, field)
            assert np.abs(fast - general).max() <= 1e-12 * np.abs(general).max(), (part, field)


def test_symmetry_of_the_true_hessian_and_the_single_node_at_the_teacher_side():
    """The true Hessian is symmetric on the fast path too (to rounding); the mean-field Jacobian of L equals it."""
    W, Ws = _separated(np.random.default_rng(8), 4, 3, 6)
    for part in PARTS:
        H = numerics.hessian(W, Ws, part, "true")
        assert np.abs(H - H.T).max() <= 1e-14 * np.abs(H).max(), part
    assert np.abs(numerics.hessian(W, Ws, "L", "mean") - numerics.hessian(W, Ws, "L", "true")).max() <= 1e-13


def test_routing(monkeypatch):
    """A separated instance takes the fast assembly; a student within SWITCH of a teacher does not."""
    rng = np.random.default_rng(2)
    W, Ws = _separated(rng, 3, 2, 5)
    counter = _Counter(monkeypatch)
    numerics.hessian(W, Ws, "H", "true")
    assert counter.calls == 1
    W[0] = 1.3 * Ws[0] + 1e-4 * rng.standard_normal(5)
    numerics.hessian(W, Ws, "H", "true")
    assert counter.calls == 1


def _special(rng, K, Ks, d, kind):
    W, Ws = rng.standard_normal((K, d)), rng.standard_normal((Ks, d))
    if kind == "near teacher":
        W[0] = 1.3 * Ws[0] + 1e-6 * rng.standard_normal(d)
    elif kind == "anti teacher":
        W[-1] = -0.5 * Ws[-1] + 1e-7 * rng.standard_normal(d)
    elif kind == "tiny row":
        W[0] *= 2.0**-470
    elif kind == "list":
        return W.tolist(), Ws
    return W, Ws


@settings(max_examples=15, deadline=None)
@given(B=st.integers(1, 7), K=st.integers(1, 4), Ks=st.integers(1, 4), d=st.integers(2, 6),
       mask=st.integers(0, 2**7 - 1), seed=st.integers(0, 2**32 - 1), part=st.sampled_from(PARTS),
       field=st.sampled_from(FIELDS))
def test_batch_equals_single_calls_bit_for_bit(B, K, Ks, d, mask, seed, part, field):
    rng = np.random.default_rng(seed)
    kinds = ["near teacher", "anti teacher", "tiny row"]
    pairs = [(_special(rng, K, Ks, d, kinds[b % 3]) if mask >> b & 1 else
              (rng.standard_normal((K, d)), rng.standard_normal((Ks, d)))) for b in range(B)]
    W, Ws = np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])
    got = numerics.hessian(W, Ws, part, field)
    expected = np.stack([numerics.hessian(w, s, part, field) for w, s in pairs])
    assert got.tobytes() == expected.tobytes()


def test_batch_vectorises_separated_instances(monkeypatch):
    """A batch of separated instances is assembled in chunks (far fewer calls than instances), bit for bit."""
    rng = np.random.default_rng(4)
    pairs = [_separated(rng, 3, 3, 4) for _ in range(40)]
    W, Ws = np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])
    counter = _Counter(monkeypatch)
    got = numerics.hessian(W, Ws, "H", "mean")
    assert counter.calls <= 2
    monkeypatch.undo()
    assert got.tobytes() == np.stack([numerics.hessian(*p, "H", "mean") for p in pairs]).tobytes()


def test_batch_error_names_the_instance():
    """Where the object does not exist (an exact kink) the batch names the instance, as before."""
    rng = np.random.default_rng(6)
    W, Ws = rng.standard_normal((3, 2, 4)), rng.standard_normal((3, 2, 4))
    W[1, 0] = 2.0 * Ws[1, 0]
    with pytest.raises(ValueError, match=r"instance \(1,\).*does not exist"):
        numerics.hessian(W, Ws, "J", "true")
    assert numerics.hessian(W, Ws, "L", "true").shape == (3, 8, 8)  # L has no kink there
