"""The vectorised path of batched ``numerics.gradient`` calls (``numerics.batched.gradient``).

Bound established: BIT FOR BIT.  Every instance of a batch equals the single-instance call on it,
``-0.0`` and all: the instances on which the single call takes the fast assembly (separated instances)
are computed by the very functions of :mod:`numerics.fast_gradient` that the single call applies to its
stack of one (elementwise passes give each entry the value they give it in the single call;
``np.matmul`` on stacks makes, instance by instance, the same BLAS call; the row sums reduce rows of the
same length with the same pairwise loop), and every other instance (near a kink, rescaled, refined,
non-contiguous, lists, tensors) goes through the single call itself.
"""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import numerics
import numerics.population as npop
from numerics.validation import BatchPlan
from numerics.compile import SWITCH

PARTS = ("L", "J", "H")
FIELDS = ("mean", "true")
MARGIN = 0.02


def assert_bits(actual, expected, what):
    a, e = np.asarray(actual), np.asarray(expected, dtype=np.float64)
    assert a.dtype == np.float64 and a.shape == e.shape, f"{what}: {a.dtype} {a.shape} != {e.shape}"
    if a.tobytes() != e.tobytes():
        i = tuple(np.argwhere(a.view(np.uint64) != e.view(np.uint64))[0])
        pytest.fail(f"{what}: not bit-identical at {i}: {a[i]!r} != {e[i]!r}")


def separated(rng, K, Ks, d, scale):
    """An instance whose every pair (students among themselves, students against teachers) is at least
    ``SWITCH + MARGIN`` from 0 and pi: the single call takes its fast path on it."""
    for _ in range(1000):
        W, Ws = rng.standard_normal((K, d)) * scale, rng.standard_normal((Ks, d))
        Z = np.vstack([W, Ws]) / np.linalg.norm(np.vstack([W, Ws]), axis=1, keepdims=True)
        c = np.clip(Z[:K] @ Z.T, -1, 1)
        c[np.arange(K), np.arange(K)] = 0.0
        if np.abs(c).max() < np.cos(SWITCH + MARGIN):
            return W, Ws
    pytest.skip("no separated instance drawn")


def special(rng, K, Ks, d, kind):
    """An instance the single call does NOT evaluate on its fast path."""
    W, Ws = rng.standard_normal((K, d)), rng.standard_normal((Ks, d))
    if kind == "near teacher":
        W[0] = Ws[0] * 1.3 + 1e-6 * rng.standard_normal(d)
    elif kind == "on teacher":
        W[0] = Ws[0]
    elif kind == "anti teacher":
        W[-1] = -2.0 * Ws[-1]
    elif kind == "near kink":  # within SWITCH of a teacher but outside the refinement range
        u = rng.standard_normal(d)
        u -= (u @ Ws[0]) / (Ws[0] @ Ws[0]) * Ws[0]
        W[0] = Ws[0] + 0.07 * np.linalg.norm(Ws[0]) * u / np.linalg.norm(u)
    elif kind == "students parallel" and K > 1:
        W[1] = 0.5 * W[0]
    elif kind == "huge":
        W, Ws = W * 2.0**500, Ws * 2.0**500
    elif kind == "tiny":
        W = W * 2.0**-470
    else:
        W[0] = -W[0] * 0.0 + Ws[0] * 1e-3  # tiny row on a teacher ray
    return W, Ws


KINDS = ("near teacher", "on teacher", "anti teacher", "near kink", "students parallel", "huge", "tiny", "small on ray")


class Counter:
    """Counts the calls of ``numerics.population.<name>``: by default the single-instance evaluations
    (``_gradient`` calls) of a batched call."""

    def __init__(self, monkeypatch, name: str = "_gradient"):
        self.calls = 0
        real = getattr(npop, name)

        def counted(*args, **kwargs):
            self.calls += 1
            return real(*args, **kwargs)
        monkeypatch.setattr(npop, name, counted)


@settings(max_examples=20)
@given(B=st.integers(1, 9), K=st.integers(1, 6), Ks=st.integers(1, 6), d=st.integers(2, 9),
       special_mask=st.integers(0, 2**9 - 1), seed=st.integers(0, 2**32 - 1), part=st.sampled_from(PARTS),
       field=st.sampled_from(FIELDS), scale=st.sampled_from([1.0, 1e-3, 37.5]))
def test_mixed_batch_bit_for_bit_and_routed(B, K, Ks, d, special_mask, seed, part, field, scale):
    """Well-separated instances (vectorised) mixed with near-kink / rescaled / parallel ones (single call):
    every instance bit for bit the single call; exactly the special ones go through the single call."""
    rng = np.random.default_rng(seed)
    Ws_, Wss_, n_special = [], [], 0
    for b in range(B):
        if special_mask >> b & 1:
            W, Wst = special(rng, K, Ks, d, KINDS[int(rng.integers(len(KINDS)))])
            n_special += 1
        else:
            W, Wst = separated(rng, K, Ks, d, scale)
        Ws_.append(W)
        Wss_.append(Wst)
    W, Wst = np.stack(Ws_), np.stack(Wss_)
    try:
        singles = [numerics.gradient(W[b], Wst[b], part, field) for b in range(B)]
    except ValueError as exc:  # the true gradient of J / H at an exactly parallel pair does not exist
        with pytest.raises(ValueError, match=r"instance \(\d+,\)"):
            numerics.gradient(W, Wst, part, field)
        assert "does not exist" in str(exc)
        return
    mp = pytest.MonkeyPatch()
    try:
        counter = Counter(mp)
        got = numerics.gradient(W, Wst, part, field)
    finally:
        mp.undo()
    for b in range(B):
        assert_bits(got[b], singles[b], f"{part} {field} instance {b}")
    assert counter.calls == n_special  # separated: vectorised; every other instance: the single call


@pytest.mark.parametrize("part", PARTS)
@pytest.mark.parametrize("field", FIELDS)
def test_large_random_batch_bit_for_bit(part, field):
    """A benchmark-sized batch (B = 256, K = K* = d = 10), every instance vectorised."""
    rng = np.random.default_rng(7)
    W, Wst = rng.standard_normal((256, 10, 10)), rng.standard_normal((256, 10, 10))
    got = numerics.gradient(W, Wst, part, field)
    for b in range(len(W)):
        assert_bits(got[b], numerics.gradient(W[b], Wst[b], part, field), f"{part} {field} instance {b}")


@pytest.mark.parametrize("K,Ks,d", [(1, 1, 2), (1, 9, 3), (9, 1, 17), (13, 11, 5), (40, 3, 12), (3, 140, 6)])
def test_shapes_bit_for_bit(K, Ks, d):
    """Row counts below, at and above the pairwise-summation unroll (8) and block (128) of NumPy."""
    rng = np.random.default_rng(K * 1000 + Ks * 10 + d)
    W, Wst = rng.standard_normal((5, K, d)), rng.standard_normal((5, Ks, d))
    for part in PARTS:
        for field in FIELDS:
            got = numerics.gradient(W, Wst, part, field)
            for b in range(5):
                assert_bits(got[b], numerics.gradient(W[b], Wst[b], part, field), f"{part} {field} {b}")


def test_layouts_broadcasting_and_dtypes(monkeypatch):
    """Broadcast batch shapes, a shared 2-D operand, float32 / int input and byte-swapped float64 take
    the vectorised path; non-contiguous instances and nested lists go through the single call; all
    bit for bit."""
    rng = np.random.default_rng(3)
    W = rng.standard_normal((2, 1, 4, 6))
    Wst = rng.standard_normal((3, 5, 6))
    cases = [
        (W, Wst, True),
        (W[0, 0], Wst, True),  # one student instance shared by the batch of teachers
        (W.astype(np.float32), Wst, True),
        ((W * 100).astype(np.int64), Wst, True),
        (W.astype(">f8"), Wst.astype(">f8"), True),
        (np.asfortranarray(W[:, 0]), Wst[:2], False),  # non-contiguous instances
        (rng.standard_normal((2, 4, 12))[:, :, ::2], Wst[:2], False),
        (W[:, 0].tolist(), Wst[:2], False),
    ]
    for Wc, Wsc, vectorised in cases:
        plan = BatchPlan(Wc, Wsc)
        counter = Counter(monkeypatch)
        got = numerics.gradient(Wc, Wsc, "H", "mean")
        monkeypatch.undo()
        for index, W_i, Ws_i in plan.instances():
            assert_bits(got[index], numerics.gradient(W_i, Ws_i, "H", "mean"), f"instance {index}")
        assert (counter.calls == 0) == vectorised, (Wc.dtype if hasattr(Wc, "dtype") else type(Wc), counter.calls)


def test_errors_still_name_the_instance():
    rng = np.random.default_rng(5)
    W, Wst = rng.standard_normal((4, 3, 5)), rng.standard_normal((4, 2, 5))
    W[2, 1] = 0.0
    with pytest.raises(ValueError, match=r"instance \(2,\): row 1 of W is zero"):
        numerics.gradient(W, Wst, "H", "mean")
    W[2, 1] = np.nan
    with pytest.raises(ValueError, match=r"instance \(2,\)"):
        numerics.gradient(W, Wst, "L", "true")
    W[2, 1] = 1.0
    W[1, 0] = Wst[1, 0]  # the true gradient of J does not exist on a teacher's ray
    with pytest.raises(ValueError, match=r"instance \(1,\).*does not exist"):
        numerics.gradient(W, Wst, "J", "true")


def test_empty_batch():
    out = numerics.gradient(np.zeros((0, 3, 4)), np.ones((2, 4)), "H", "mean")
    assert out.shape == (0, 3, 4)


def _at_angle(angle: float, d: int = 3) -> tuple:
    """One student and one teacher at ``angle`` (the student rotated from the teacher in a plane), plus a
    second student far from both, so that the pairs near ``SWITCH`` decide the path."""
    Ws = np.array([[1.3, 0.0, 0.0][:d]])
    W = np.array([[np.cos(angle), np.sin(angle), 0.0][:d], [0.2, -0.5, 0.9][:d]])
    return W, Ws


@pytest.mark.parametrize("side", ["theta", "psi"])
def test_routing_at_switch_is_the_single_calls(monkeypatch, side):
    """Instances whose angle to a teacher is within 1e-6 of ``SWITCH`` (or of ``pi - SWITCH``), on both
    sides: the batch sends through the single call exactly the instances on which the single call itself
    leaves the fast assembly (counted on the single calls: ``_gradient_near_kinks``), and matches it bit
    for bit.  The cosine bound ``SWITCH_COS`` keeps ~1e-8 rad of room, so the instances at 1e-6 past
    ``SWITCH`` are fast and those closer are not: both kinds are drawn."""
    offsets = [-1e-6, -1e-12, -1e-15, 0.0, 1e-15, 1e-12, 1e-6]
    angles = [SWITCH + o if side == "theta" else np.pi - SWITCH - o for o in offsets]
    pairs = [_at_angle(a) for a in angles]
    W, Wst = np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])
    for part in PARTS:
        slow = Counter(monkeypatch, "_gradient_near_kinks")  # the single calls that leave the fast assembly
        singles = [numerics.gradient(W_i, Ws_i, part, "mean") for W_i, Ws_i in pairs]
        monkeypatch.undo()
        assert 0 < slow.calls < len(pairs)  # both kinds are drawn
        counter = Counter(monkeypatch)
        got = numerics.gradient(W, Wst, part, "mean")
        monkeypatch.undo()
        assert counter.calls == slow.calls, part
        for b, single in enumerate(singles):
            assert_bits(got[b], single, f"{part} {side} instance {b}")


# ----------------------------------------------------------------------------- batched losses
class LossCounter:
    """Counts the single-instance loss evaluations (``_loss`` calls; ``H`` makes two) of a batched call."""

    def __init__(self, monkeypatch):
        self.calls = 0
        real = npop._loss

        def counted(W, W_star, part):
            if part != "H":
                self.calls += 1
            return real(W, W_star, part)
        monkeypatch.setattr(npop, "_loss", counted)


def _separated_all_pairs(rng, K, Ks, d, scale):
    """Every pair of rows of ``[W; W*]`` (students among themselves too) at least ``SWITCH + MARGIN``
    from 0 and pi: the single loss call takes its plain path."""
    for _ in range(1000):
        W, Ws = rng.standard_normal((K, d)) * scale, rng.standard_normal((Ks, d))
        Z = np.vstack([W, Ws]) / np.linalg.norm(np.vstack([W, Ws]), axis=1, keepdims=True)
        c = Z @ Z.T
        np.fill_diagonal(c, 0.0)
        if np.abs(c).max() < np.cos(SWITCH + MARGIN):
            return W, Ws
    pytest.skip("no separated instance drawn")


LOSS_KINDS = KINDS + ("teachers parallel", "rows of very different sizes", "entries near the subnormals",
                      "an entry scaled into the subnormals", "a zero entry")


def _special_for_loss(rng, K, Ks, d, kind):
    if kind == "teachers parallel" and Ks > 1:
        W, Ws = rng.standard_normal((K, d)), rng.standard_normal((Ks, d))
        Ws[1] = 3.0 * Ws[0]
        return W, Ws
    if kind == "rows of very different sizes":  # the exponent rule raises k for the small row
        W, Ws = rng.standard_normal((K, d)), rng.standard_normal((Ks, d))
        W[0] *= 2.0**-460
        return W, Ws
    if kind == "entries near the subnormals":  # scaled down by 2**-501, 2**-500 stays normal
        W, Ws = rng.standard_normal((K, d)) * 2.0**500, rng.standard_normal((Ks, d)) * 2.0**500
        W[0, 0] = 2.0**-500
        return W, Ws
    if kind == "an entry scaled into the subnormals":  # 2**-600 * 2**-501 would be: the rule raises k
        W, Ws = rng.standard_normal((K, d)) * 2.0**500, rng.standard_normal((Ks, d)) * 2.0**500
        W[0, 0] = 2.0**-600
        return W, Ws
    if kind == "a zero entry":  # no zero row: the plain path
        W, Ws = rng.standard_normal((K, d)), rng.standard_normal((Ks, d))
        Ws[0, 0] = 0.0
        return W, Ws
    return special(rng, K, Ks, d, kind)


@settings(max_examples=25)
@given(B=st.integers(1, 9), K=st.integers(1, 6), Ks=st.integers(1, 6), d=st.integers(2, 9),
       special_mask=st.integers(0, 2**9 - 1), seed=st.integers(0, 2**32 - 1), part=st.sampled_from(PARTS),
       scale=st.sampled_from([1.0, 1e-3, 37.5, 2.0**300]))
def test_loss_mixed_batch_bit_for_bit_and_routed(B, K, Ks, d, special_mask, seed, part, scale):
    """Losses: separated instances (vectorised) mixed with near-teacher, parallel, rescaled and badly scaled
    ones (single call): every instance bit for bit the single call; exactly the special ones go through it
    (a separated instance never does)."""
    rng = np.random.default_rng(seed)
    pairs, is_special = [], []
    for b in range(B):
        kind = LOSS_KINDS[int(rng.integers(len(LOSS_KINDS)))] if special_mask >> b & 1 else None
        pairs.append(_special_for_loss(rng, K, Ks, d, kind) if kind else _separated_all_pairs(rng, K, Ks, d, scale))
        is_special.append(kind is not None)
    W, Wst = np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])
    try:
        singles = [numerics.loss(W_i, Ws_i, part) for W_i, Ws_i in pairs]
    except ValueError as exc:  # a loss beyond the float64 range (the "huge" rows): the batch names the instance
        with pytest.raises(ValueError, match=r"instance \(\d+,\)"):
            numerics.loss(W, Wst, part)
        assert "float64 range" in str(exc)
        return
    mp = pytest.MonkeyPatch()
    try:
        counter = LossCounter(mp)
        got = numerics.loss(W, Wst, part)
    finally:
        mp.undo()
    assert_bits(got, singles, f"loss {part}")
    parts = 2 if part == "H" else 1
    assert counter.calls <= parts * sum(is_special)  # separated instances are vectorised
    # and the special ones that the single call does not take through its plain path are not
    assert counter.calls >= parts * sum(s and _needs_single_loss(p) for s, p in zip(is_special, pairs))


def _needs_single_loss(pair) -> bool:
    """Whether the single loss call leaves its plain path on ``pair``: a pair of rows within ``SWITCH`` of
    0 or pi, or a row raised into the safe range / an entry kept out of the subnormals by the exponent rule."""
    from numerics.geometry import pair_geometry
    from numerics.validation import prepare

    W, Ws, k = prepare(*pair)
    Z = np.vstack([W, Ws])
    g = pair_geometry(Z, Z, shared_prefix=True)
    off = ~np.eye(len(Z), dtype=bool)
    big = max(np.abs(pair[0]).max(), np.abs(pair[1]).max())
    return bool(min(g.theta[off].min(), g.psi[off].min()) < SWITCH) or k != -np.frexp(big)[1]


@pytest.mark.parametrize("side", ["theta", "psi"])
def test_loss_routing_at_switch_is_the_single_calls(monkeypatch, side):
    """As for the gradient: angles within 1e-6 of ``SWITCH`` (or ``pi - SWITCH``) on both sides; the batch
    sends exactly the instances whose computed angle is below it through the single call, bit for bit."""
    offsets = [-1e-6, -1e-12, -1e-15, 0.0, 1e-15, 1e-12, 1e-6]
    angles = [SWITCH + o if side == "theta" else np.pi - SWITCH - o for o in offsets]
    pairs = [_at_angle(a) for a in angles]
    W, Wst = np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])
    slow = sum(_needs_single_loss(p) for p in pairs)
    assert 0 < slow < len(pairs)
    for part in ("L", "J"):
        counter = LossCounter(monkeypatch)
        got = numerics.loss(W, Wst, part)
        monkeypatch.undo()
        assert counter.calls == slow, part
        assert_bits(got, [numerics.loss(*p, part) for p in pairs], f"loss {part} {side}")


def test_loss_layouts_and_dtypes_are_vectorised(monkeypatch):
    """The single call works on a fresh scaled float64 copy, so every real NumPy layout and dtype is
    vectorised: float32, int, byte-swapped, non-contiguous, broadcast; all bit for bit."""
    rng = np.random.default_rng(11)
    W = rng.standard_normal((2, 1, 4, 6))
    Wst = rng.standard_normal((3, 5, 6))
    for Wc, Wsc in [(W, Wst), (W[0, 0], Wst), (W.astype(np.float32), Wst), ((W * 100).astype(np.int64), Wst),
                    (W.astype(">f8"), Wst.astype(">f8")), (np.asfortranarray(W[:, 0]), Wst[:2]),
                    (rng.standard_normal((2, 4, 12))[:, :, ::2], Wst[:2])]:
        plan = BatchPlan(Wc, Wsc)
        counter = LossCounter(monkeypatch)
        got = numerics.loss(Wc, Wsc, "H")
        monkeypatch.undo()
        assert counter.calls == 0
        for index, W_i, Ws_i in plan.instances():
            assert_bits(got[index], numerics.loss(W_i, Ws_i, "H"), f"instance {index}")


def test_loss_errors_name_the_instance():
    rng = np.random.default_rng(12)
    W, Wst = rng.standard_normal((4, 3, 5)), rng.standard_normal((4, 2, 5))
    W[2, 1] = 0.0
    with pytest.raises(ValueError, match=r"instance \(2,\): row 1 of W is zero"):
        numerics.loss(W, Wst, "L")
    W[2, 1] = np.inf
    with pytest.raises(ValueError, match=r"instance \(2,\).*not finite"):
        numerics.loss(W, Wst, "H")


def test_an_instance_near_zero_and_just_clear_of_pi_goes_through_the_single_call(monkeypatch):
    """A student within ``SWITCH`` of the teacher and another just clear of the teacher's opposite ray
    (``psi = SWITCH + 1e-12``): the second check (psi) must not clear what the first (theta) failed."""
    Ws = np.array([[1.3, 0.0, 0.0]])
    a, b = SWITCH - 1e-6, np.pi - SWITCH - 1e-12
    W = np.array([[np.cos(a), np.sin(a), 0.0], [np.cos(b), 0.0, np.sin(b)]])
    Wb, Wsb = np.stack([W, W + 0.0]), np.stack([Ws, Ws])
    for part in ("L", "H"):
        counter = LossCounter(monkeypatch)
        got = numerics.loss(Wb, Wsb, part)
        monkeypatch.undo()
        assert counter.calls == len(Wb) * (2 if part == "H" else 1)
        assert_bits(got, [numerics.loss(W, Ws, part)] * 2, f"loss {part}")
        counter = Counter(monkeypatch)
        got = numerics.gradient(Wb, Wsb, part, "mean")
        monkeypatch.undo()
        assert counter.calls == len(Wb)
        assert_bits(got, np.stack([numerics.gradient(W, Ws, part, "mean")] * 2), f"gradient {part}")


@pytest.mark.parametrize("part", PARTS)
def test_loss_every_special_kind_in_one_batch(monkeypatch, part):
    """One instance of every special kind between separated ones (K = 3, K* = 2, d = 4), bit for bit;
    exactly the kinds that leave the single call's plain path go through it."""
    rng = np.random.default_rng(21)
    pairs = []
    for kind in LOSS_KINDS:
        if kind == "huge":  # its loss is beyond the float64 range: tested in the mixed batches
            continue
        pairs += [_separated_all_pairs(rng, 3, 2, 4, 1.0), _special_for_loss(rng, 3, 2, 4, kind)]
    W, Wst = np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])
    counter = LossCounter(monkeypatch)
    got = numerics.loss(W, Wst, part)
    monkeypatch.undo()
    assert_bits(got, [numerics.loss(*p, part) for p in pairs], f"loss {part}")
    needs = sum(_needs_single_loss(p) for p in pairs)
    assert 0 < needs < len(pairs) // 2 and counter.calls == needs * (2 if part == "H" else 1)
