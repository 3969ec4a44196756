"""Leading batch dimensions of ``numerics.loss``, ``gradient`` and ``hessian``.

* ``W`` of shape ``(..., K, d)`` against ``W_star`` of shape ``(..., K*, d)`` (NumPy broadcasting of
  the batch shapes) gives results of shape ``(...)``, ``(..., K, d)``, ``(..., K d, K d)``, every
  entry equal BIT FOR BIT to the single-instance call on that instance (near the kinks too);
* a 2-D input is one instance and a 1-D input one row, exactly as before (a Python float for one loss);
* a bad instance raises ``ValueError`` naming its batch index; shapes that do not broadcast raise
  ``ValueError`` naming both; the Hessian's memory check counts the whole batch, before any work.
"""
import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import numerics
import numerics.population as npop

PARTS = ("L", "J", "H")
GRADIENT_FIELDS = ("mean", "true")
HESSIAN_FIELDS = ("true", "mean", "autograd")


def every_object():
    """``(name, f(W, W_star))`` for every public object: 3 losses, 6 gradient fields, 9 Hessians."""
    out = [(f"loss {p}", lambda W, Ws, p=p: numerics.loss(W, Ws, p)) for p in PARTS]
    out += [(f"gradient {p} {f}", lambda W, Ws, p=p, f=f: numerics.gradient(W, Ws, p, f))
            for p in PARTS for f in GRADIENT_FIELDS]
    out += [(f"hessian {p} {f}", lambda W, Ws, p=p, f=f: numerics.hessian(W, Ws, p, f))
            for p in PARTS for f in HESSIAN_FIELDS]
    return out


def assert_bits(actual, expected, what):
    """Same shape, float64 and the same bits (``-0.0`` against ``0.0`` and NaN payloads count)."""
    a, e = np.asarray(actual), np.asarray(expected, dtype=np.float64)
    assert a.dtype == np.float64, f"{what}: dtype {a.dtype}"
    assert a.shape == e.shape, f"{what}: shape {a.shape} != {e.shape}"
    if a.tobytes() != e.tobytes():
        diff = np.argwhere(a.view(np.uint64) != e.view(np.uint64))[0]
        pytest.fail(f"{what}: not bit-identical at {tuple(diff)}: {a[tuple(diff)]!r} != {e[tuple(diff)]!r}")


def check_batch_against_loop(W, Ws, pick_w, pick_s, batch_shape, objects=None):
    """Every object of the batch call against the loop of single-instance calls over ``batch_shape``;
    ``pick_w(index)``, ``pick_s(index)`` select an instance's operands."""
    for name, f in objects or every_object():
        got = f(W, Ws)
        assert isinstance(got, np.ndarray) and got.shape[:len(batch_shape)] == batch_shape, name
        for index in np.ndindex(*batch_shape):
            one = f(pick_w(index), pick_s(index))
            assert_bits(got[index], one, f"{name}, instance {index}")


# ----------------------------------------------------------------------------- batch equals loop
@given(batch=st.lists(st.integers(1, 3), min_size=1, max_size=2), K=st.integers(1, 3), Ks=st.integers(1, 3),
       d=st.integers(2, 4), seed=st.integers(0, 2**32 - 1))
def test_batch_equals_loop_bit_for_bit(batch, K, Ks, d, seed):
    rng = np.random.default_rng(seed)
    batch = tuple(batch)
    W = rng.standard_normal(batch + (K, d)) * rng.choice([1e-3, 1.0, 1e3], size=batch + (1, 1))
    Ws = rng.standard_normal(batch + (Ks, d))
    check_batch_against_loop(W, Ws, lambda i: W[i], lambda i: Ws[i], batch)


@given(B=st.integers(1, 4), K=st.integers(1, 3), Ks=st.integers(1, 3), d=st.integers(2, 4),
       seed=st.integers(0, 2**32 - 1))
def test_batch_of_W_against_one_teacher(B, K, Ks, d, seed):
    rng = np.random.default_rng(seed)
    W, Ws = rng.standard_normal((B, K, d)), rng.standard_normal((Ks, d))
    check_batch_against_loop(W, Ws, lambda i: W[i], lambda i: Ws, (B,))
    # and the other way round: one student against a batch of teachers
    check_batch_against_loop(Ws, W, lambda i: Ws, lambda i: W[i], (B,))


@given(B1=st.integers(1, 3), B2=st.integers(1, 3), K=st.integers(1, 3), Ks=st.integers(1, 3),
       d=st.integers(2, 3), seed=st.integers(0, 2**32 - 1))
def test_outer_broadcast_bit_for_bit(B1, B2, K, Ks, d, seed):
    rng = np.random.default_rng(seed)
    W, Ws = rng.standard_normal((B1, 1, K, d)), rng.standard_normal((1, B2, Ks, d))
    check_batch_against_loop(W, Ws, lambda i: W[i[0], 0], lambda i: Ws[0, i[1]], (B1, B2))


def test_broadcast_against_more_batch_dimensions():
    rng = np.random.default_rng(1)
    W, Ws = rng.standard_normal((3, 2, 4)), rng.standard_normal((2, 1, 1, 4))   # batches (3,) and (2, 1)
    check_batch_against_loop(W, Ws, lambda i: W[i[1]], lambda i: Ws[i[0], 0], (2, 3))


def test_one_dimensional_operand_is_one_row_in_a_batch():
    rng = np.random.default_rng(2)
    W, ws = rng.standard_normal((3, 2, 4)), rng.standard_normal(4)
    check_batch_against_loop(W, ws, lambda i: W[i], lambda i: ws, (3,))


def near_kink_batch(d):
    """A batch of 6 instances (K = 2, K* = 2) with rows at 1e-9, 1e-3, 0.09, 0.11 rad of a teacher row, a
    student pair nearly anti-parallel and a generic instance: every branch of the pair functions."""
    rng = np.random.default_rng(d)
    Ws = rng.standard_normal((2, d))
    u = Ws[0] / np.linalg.norm(Ws[0])
    v = rng.standard_normal(d)
    v -= (v @ u) * u
    v /= np.linalg.norm(v)
    out = []
    for angle in (1e-9, 1e-3, 0.09, 0.11):
        w0 = 1.3 * (np.cos(angle) * u + np.sin(angle) * v)
        out.append(np.stack([w0, rng.standard_normal(d)]))
    w = rng.standard_normal(d)
    out.append(np.stack([w, -0.7 * w + 1e-7 * rng.standard_normal(d)]))    # students nearly anti-parallel
    out.append(rng.standard_normal((2, d)))
    return np.stack(out), Ws


@pytest.mark.parametrize("d", [2, 3, 5])
def test_near_kink_instances_inside_a_batch(d):
    W, Ws = near_kink_batch(d)
    check_batch_against_loop(W, Ws, lambda i: W[i], lambda i: Ws, (len(W),))
    for name, f in every_object():
        assert np.isfinite(f(W, Ws)).all(), name


# ----------------------------------------------------------------------------- errors name the instance
def kink_batch():
    """Batch (2, 3) whose instance (1, 2) has W[1] exactly parallel to W_star[0] (a kink of J)."""
    rng = np.random.default_rng(5)
    W, Ws = rng.standard_normal((2, 3, 2, 3)), rng.standard_normal((2, 3))
    W[1, 2, 1] = 2.0 * Ws[0]
    return W, Ws


@pytest.mark.parametrize("call", [lambda W, Ws: numerics.gradient(W, Ws, "J", "true"),
                                  lambda W, Ws: numerics.gradient(W, Ws, "H", "true"),
                                  lambda W, Ws: numerics.hessian(W, Ws, "H", "true"),
                                  lambda W, Ws: numerics.hessian(W, Ws, "J", "mean")])
def test_kink_instance_raises_naming_its_index(call):
    W, Ws = kink_batch()
    with pytest.raises(ValueError) as info:
        call(W, Ws)
    message = str(info.value)
    assert message.startswith("instance (1, 2): the "), message
    assert "W[1] and W_star[0] are exactly parallel" in message
    with pytest.raises(ValueError) as single:  # the rest of the message is the single-instance one
        call(W[1, 2], Ws)
    assert message == f"instance (1, 2): {single.value}"


def test_objects_that_exist_at_the_kink_are_returned_for_the_batch():
    W, Ws = kink_batch()
    objects = [(n, f) for n, f in every_object()
               if n.startswith("loss") or "mean" in n and n.startswith("gradient") or " L " in n or "autograd" in n]
    check_batch_against_loop(W, Ws, lambda i: W[i], lambda i: Ws, (2, 3), objects)


def test_zero_row_names_instance_and_row():
    rng = np.random.default_rng(6)
    W, Ws = rng.standard_normal((3, 2, 2, 4)), rng.standard_normal((3, 1, 3, 4))
    W[2, 0, 1] = 0.0
    for call in (lambda: numerics.loss(W, Ws, "L"), lambda: numerics.gradient(W, Ws, "H", "mean"),
                 lambda: numerics.hessian(W, Ws, "L", "autograd")):
        with pytest.raises(ValueError, match=r"^instance \(2, 0\): row 1 of W is zero"):
            call()
    Ws[1, 0, 2, 3] = np.nan
    with pytest.raises(ValueError, match=r"^instance \(1, 0\): W_star\[2, 3\] = nan is not finite"):
        numerics.loss(W, Ws, "L")


def test_shapes_that_do_not_broadcast_name_both():
    rng = np.random.default_rng(7)
    cases = [((3, 2, 4), (2, 2, 4)), ((2, 3, 2, 4), (4, 2, 4)), ((5, 1, 4), (2, 4, 3, 4))]
    for sw, ss in cases:
        W, Ws = rng.standard_normal(sw), rng.standard_normal(ss)
        for call in (lambda: numerics.loss(W, Ws, "L"), lambda: numerics.gradient(W, Ws, "L", "mean"),
                     lambda: numerics.hessian(W, Ws, "L", "true")):
            with pytest.raises(ValueError, match=r"do not broadcast") as info:
                call()
            assert f"W has shape {sw}" in str(info.value) and f"W_star has shape {ss}" in str(info.value)


def test_mismatched_d_and_bad_sizes_in_a_batch_are_refused_up_front():
    rng = np.random.default_rng(8)
    with pytest.raises(ValueError, match=r"^W has d = 3 but W_star has d = 4"):
        numerics.gradient(rng.standard_normal((2, 2, 3)), rng.standard_normal((2, 4)), "L", "mean")
    with pytest.raises(ValueError, match=r"^W_star has d = 1; .*at least 2"):
        numerics.loss(rng.standard_normal((2, 2, 3)), rng.standard_normal((2, 2, 1)), "L")
    with pytest.raises(ValueError, match=r"^W has no rows"):
        numerics.loss(np.ones((2, 0, 3)), np.ones((2, 3)), "L")
    with pytest.raises(ValueError, match=r"^part must be one of"):
        numerics.loss(np.ones((2, 2, 3)), np.ones((2, 3)), "X")
    with pytest.raises(ValueError, match=r"^W must be a real array of shape \(\.\.\., rows, d\)"):
        numerics.loss([[[1.0, 2.0]], [[1.0, 2.0], [3.0, 4.0]]], np.ones((2, 2)), "L")   # ragged


def test_complex_or_boolean_instance_is_refused_naming_it():
    with pytest.raises(ValueError, match=r"^instance \(0,\): W must be a real array"):
        numerics.loss(np.ones((2, 2, 3)) + 1j, np.eye(3), "L")
    with pytest.raises(ValueError, match=r"^instance \(0,\): W_star must hold real numbers"):
        numerics.loss(np.ones((2, 2, 3)), np.ones((2, 2, 3), dtype=bool), "L")


# ----------------------------------------------------------------------------- memory of a batch
def test_batch_of_hessians_that_cannot_fit_is_refused_up_front(monkeypatch):
    # 4 MiB available: one (200, 200) Hessian of H needs 5 * 320 kB; 50 of them need 16 MB more
    monkeypatch.setattr(npop, "available_memory", lambda: 2**22)
    rng = np.random.default_rng(9)
    W, Ws = rng.standard_normal((50, 2, 100)), rng.standard_normal((2, 100))
    assert numerics.hessian(W[0], Ws, "H", "true").shape == (200, 200)   # one instance fits
    assert numerics.hessian(W[:3], Ws, "H", "true").shape == (3, 200, 200)   # so do three

    def assembly(*args, **kwargs):
        raise AssertionError("a Hessian was assembled before the size of the batch was checked")

    monkeypatch.setattr(npop, "_hessian", assembly)
    with pytest.raises(ValueError, match=r"^the batch of Hessians is 50 \(200, 200\) matrices .* available"):
        numerics.hessian(W, Ws, "H", "true")
    with pytest.raises(ValueError, match=r"is 50 \(200, 200\) matrices \(batch shape \(5, 10\)"):
        numerics.hessian(W.reshape(5, 10, 2, 100), Ws, "L", "mean")


# ----------------------------------------------------------------------------- single instances unchanged
def test_single_instance_calls_are_unchanged():
    rng = np.random.default_rng(10)
    W, Ws = rng.standard_normal((3, 4)), rng.standard_normal((2, 4))
    for part in PARTS:
        value = numerics.loss(W, Ws, part)
        assert type(value) is float
        assert_bits(numerics.loss(W[None], Ws, part), [value], f"loss {part}, batch of one")
        for f in GRADIENT_FIELDS:
            g = numerics.gradient(W, Ws, part, f)
            assert type(g) is np.ndarray and g.shape == (3, 4)
            assert_bits(numerics.gradient(W[None], Ws[None], part, f), g[None], f"gradient {part} {f}")
        for f in HESSIAN_FIELDS:
            h = numerics.hessian(W, Ws, part, f)
            assert type(h) is np.ndarray and h.shape == (12, 12)
            assert_bits(numerics.hessian(W, Ws[None, None], part, f), h[None, None], f"hessian {part} {f}")
    assert type(numerics.loss(W[0], Ws[1], "H")) is float   # 1-D: one row, still one instance
    assert type(numerics.loss(W.tolist(), Ws.tolist(), "H")) is float
    assert numerics.loss(W.tolist(), torch.tensor(Ws), "H").shape == ()  # a tensor: a 0-d tensor back


def test_two_dimensional_input_is_one_instance_and_single_rows_need_a_row_axis():
    rng = np.random.default_rng(11)
    W, Ws = rng.standard_normal((4, 3)), rng.standard_normal((2, 3))
    assert numerics.gradient(W, Ws, "L", "mean").shape == (4, 3)                   # K = 4 rows, one instance
    rows = numerics.gradient(W[:, None, :], Ws, "L", "mean")                       # 4 instances of one row
    assert rows.shape == (4, 1, 3)
    for i in range(4):
        assert_bits(rows[i], numerics.gradient(W[i], Ws, "L", "mean"), f"row {i}")


def test_empty_batch():
    W, Ws = np.ones((0, 2, 3)), np.eye(3)
    assert numerics.loss(W, Ws, "L").shape == (0,)
    assert numerics.gradient(W, Ws, "L", "mean").shape == (0, 2, 3)
    assert numerics.hessian(W, Ws, "L", "true").shape == (0, 6, 6)


def test_aliases_are_batched():
    rng = np.random.default_rng(12)
    W, Ws = rng.standard_normal((2, 2, 3)), rng.standard_normal((2, 3))
    assert_bits(numerics.mean_field(W, Ws, "H"), numerics.gradient(W, Ws, "H", "mean"), "mean_field")
    assert_bits(numerics.hessian_of_loss(W, Ws, "J"), numerics.hessian(W, Ws, "J", "true"), "hessian_of_loss")


# ----------------------------------------------------------------------------- input types
def test_lists_with_batch_dimensions():
    rng = np.random.default_rng(13)
    W, Ws = rng.standard_normal((2, 1, 2, 3)), rng.standard_normal((3, 1, 3))
    W_in, Ws_in = W.tolist(), Ws.tolist()
    # each instance equals the single-instance call on that instance; and the NumPy batch bit for bit
    check_batch_against_loop(W_in, Ws_in, lambda i: W_in[i[0]][0], lambda i: Ws_in[i[1]], (2, 3))
    for name, f in every_object():
        assert_bits(f(W_in, Ws_in), f(W, Ws), f"{name}, lists against NumPy")


# torch tensors with batch dimensions (numerics.backend): tests/test_backend.py


