"""Property tests of the public API ``numerics.loss / gradient / hessian`` (docs/theory.md).

Configurations are drawn by hypothesis as a shape ``(K, K*, d)`` plus an integer seed for a
NumPy ``Generator`` (shrinks well and is reproducible).  Two families:

* ``generic``: entries uniform in ``[-3, 3]``, every row norm >= ``MIN_NORM`` and every pairwise
  angle of the rows of ``Z = [W; W*]`` in ``(MIN_ANGLE, pi - MIN_ANGLE)`` (away from the kinks
  of ``J``, so every object exists and is smooth in a neighbourhood);
* ``near_teacher``: ``K = K*``, well-separated teacher rows and each student its teacher turned
  by an angle in ``[1e-2, 0.05]`` rad (norm changed by up to 10%) (exercises the matched, cancellation-free
  rewrites of the library, which switch on below 0.1 rad).

Scales used for tolerances (all quantities are positively homogeneous, so errors are relative to
the size of the summands, not of the possibly cancelling result):
``S = sum of the row norms of Z`` (every loss summand is at most ``S^2``, every gradient summand
at most ``S``); Hessian-type matrices are compared relative to ``max(1, max |entry|)`` (their
diagonal blocks contain ``I/2`` or ``I``).

Besides the symmetry properties, a few *independent* closed forms written here from the arc-cosine
kernel facts of docs/theory.md, section 3 (not from the library) are compared with the library: the losses, the mean
fields, the boundary term ``true - mean`` of ``J``, the Jacobian of the mean field of ``J`` and the
expected autograd Hessians of ``L`` and ``J``.
"""
import itertools
import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import numerics
from numerics.finite_differences import fd_jacobian
from conftest import assert_close

PARTS = ("L", "J", "H")
GRADIENT_FIELDS = ("mean", "true")
HESSIAN_FIELDS = ("true", "mean", "autograd")
MIN_NORM = 0.25
MIN_ANGLE = 0.05
TWO_PI = 2.0 * math.pi


# ----------------------------------------------------------------------------- geometry helpers
def unit(Z):
    return Z / np.linalg.norm(Z, axis=1, keepdims=True)


def angle_matrix(A, B):
    """Angles of all pairs (A[i], B[j]) by Kahan's formula ``2 atan2(|a^ - b^|, |a^ + b^|)``.

    Stable at every angle (no arccos of a rounded cosine); independent of the library's method.
    """
    Ah, Bh = unit(A), unit(B)
    minus = np.linalg.norm(Ah[:, None, :] - Bh[None, :, :], axis=2)
    plus = np.linalg.norm(Ah[:, None, :] + Bh[None, :, :], axis=2)
    return 2.0 * np.arctan2(minus, plus)


def stable_angle(a, b):
    """Angle via ``atan2(|component of b orthogonal to a|, a.b)`` (the cross-product norm)."""
    a = np.asarray(a, float)
    b = np.asarray(b, float)
    perp = b - (a @ b) / (a @ a) * a
    return math.atan2(np.linalg.norm(perp) * np.linalg.norm(a), a @ b)


def stack(W, Ws):
    return np.vstack([W, Ws]), np.concatenate([np.ones(len(W)), -np.ones(len(Ws))])


def scale(W, Ws):
    return float(np.linalg.norm(np.vstack([W, Ws]), axis=1).sum())


def well_separated(Z, min_angle):
    if len(Z) < 2:
        return True
    th = angle_matrix(Z, Z)[np.triu_indices(len(Z), 1)]
    return bool(th.min() > min_angle and th.max() < math.pi - min_angle)


def random_orthogonal(rng, d):
    Q, R = np.linalg.qr(rng.normal(size=(d, d)))
    return Q * np.sign(np.diag(R))  # Haar; includes reflections when det = -1


def hmax(M):
    return max(1.0, float(np.abs(M).max()))


# ----------------------------------------------------------------------------- strategies
@st.composite
def generic(draw, same_k=False, max_k=4):
    """``(W, W_star, rng)`` away from kinks; ``rng`` is for auxiliary draws (Q, c, permutations)."""
    K = draw(st.integers(1, max_k))
    Ks = K if same_k else draw(st.integers(1, max_k))
    d = draw(st.integers(2, 6))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    for _ in range(200):
        W = rng.uniform(-3, 3, (K, d))
        Ws = rng.uniform(-3, 3, (Ks, d))
        Z = np.vstack([W, Ws])
        if np.linalg.norm(Z, axis=1).min() >= MIN_NORM and well_separated(Z, MIN_ANGLE):
            return W, Ws, rng
    assume(False)


@st.composite
def near_teacher(draw):
    K = draw(st.integers(1, 4))
    d = draw(st.integers(2, 6))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    for _ in range(200):
        Ws = rng.uniform(-3, 3, (K, d))
        # teachers >= 0.3 rad apart, so each student (within 0.05 rad of its teacher) is near only it
        if np.linalg.norm(Ws, axis=1).min() >= MIN_NORM and well_separated(Ws, 0.3):
            break
    else:
        assume(False)
    # each student: its teacher turned by phi in [1e-2, 0.05] rad in a random plane, norm times [0.9, 1.1]
    # (below ~1e-3 rad the library's true Hessian of J loses accuracy: see test_true_hessian_of_J_near_kink)
    phi = 10.0 ** rng.uniform(-2, math.log10(0.05), K)
    r = rng.uniform(0.9, 1.1, K)
    u = unit(Ws)
    e = rng.normal(size=(K, d))
    e = unit(e - np.sum(e * u, axis=1, keepdims=True) * u)
    W = (r * np.linalg.norm(Ws, axis=1))[:, None] * (np.cos(phi)[:, None] * u + np.sin(phi)[:, None] * e)
    return W, Ws, rng


configs = st.one_of(generic(), near_teacher())


# ----------------------------------------------------------------------------- independent closed forms
def ref_loss(W, Ws, part):
    """``1/2 s^T K s`` with Cho & Saul's ``J_1`` (for L) and ``E[1 1] a.b`` (for J)."""
    if part == "H":
        return ref_loss(W, Ws, "L") + ref_loss(W, Ws, "J")
    Z, s = stack(W, Ws)
    th = angle_matrix(Z, Z)
    n = np.linalg.norm(Z, axis=1)
    if part == "L":
        k = np.outer(n, n) * (np.sin(th) + (math.pi - th) * np.cos(th)) / TWO_PI
    else:
        k = (Z @ Z.T) * (math.pi - th) / TWO_PI
    return 0.5 * s @ k @ s


def ref_mean_field(W, Ws, part):
    """``E[grad_W l]``: for L, ``E[sigma(b.x) 1{a.x>0} x] = ((pi-t) b + |b| sin t a^)/(2 pi)``;
    for J, ``E[1{a.x>0} 1{b.x>0}] b = (pi-t)/(2 pi) b``."""
    if part == "H":
        return ref_mean_field(W, Ws, "L") + ref_mean_field(W, Ws, "J")
    Z, s = stack(W, Ws)
    th = angle_matrix(W, Z)
    out = ((math.pi - th) * s) @ Z / TWO_PI
    if part == "L":
        nz = np.linalg.norm(Z, axis=1)
        out += ((np.sin(th) * nz) @ s)[:, None] * unit(W) / TWO_PI
    return out


def grad_angle(a, b):
    """``grad_a theta(a, b) = -(b^ - cos t a^) / (|a| sin t)`` (needs t away from 0 and pi)."""
    ah, bh = a / np.linalg.norm(a), b / np.linalg.norm(b)
    t = angle_matrix(a[None], b[None])[0, 0]
    return -(bh - math.cos(t) * ah) / (np.linalg.norm(a) * math.sin(t))


def ref_true_minus_mean_J(W, Ws):
    """Boundary term of J: ``sum_{q != j} s_q (w_j . z_q) d/dw_j [(pi - t_jq)/(2 pi)]``."""
    Z, s = stack(W, Ws)
    out = np.zeros_like(W)
    for j in range(len(W)):
        for q in range(len(Z)):
            if q != j:
                out[j] += s[q] * (W[j] @ Z[q]) * (-grad_angle(W[j], Z[q]) / TWO_PI)
    return out


def ref_mean_jacobian_J(W, Ws):
    """Jacobian of ``G_j = sum_q s_q k(t_jq) z_q``, ``k(t) = (pi - t)/(2 pi)``."""
    Z, s = stack(W, Ws)
    K, d = W.shape
    M = np.zeros((K, d, K, d))
    th = angle_matrix(W, Z)
    for j in range(K):
        M[j, :, j, :] = 0.5 * np.eye(d)  # the q = j term: k(0) w_j
        for q in range(len(Z)):
            if q == j:
                continue
            M[j, :, j, :] += s[q] * np.outer(Z[q], -grad_angle(W[j], Z[q]) / TWO_PI)
            if q < K:  # d/dw_q of k(t_jq) w_q
                M[j, :, q, :] += (math.pi - th[j, q]) / TWO_PI * np.eye(d)
                M[j, :, q, :] += np.outer(W[q], -grad_angle(W[q], W[j]) / TWO_PI)
    return M.reshape(K * d, K * d)


def ref_autograd_L(W):
    """Blocks ``E[1{a.x>0} 1{b.x>0} x x^T]``: a Gaussian integral over the wedge of angle pi - t
    in the plane (e1, e2) of a and b, plus ``(pi - t)/(2 pi)`` on the orthogonal complement."""
    K, d = W.shape
    out = np.zeros((K, d, K, d))
    for j, l in itertools.product(range(K), repeat=2):
        a, b = W[j], W[l]
        t = stable_angle(a, b)
        e1 = a / np.linalg.norm(a)
        u = b - (e1 @ b) * e1
        nu = np.linalg.norm(u)
        e2 = u / nu if nu > 0 else np.zeros(d)
        blk = (math.pi - t) / TWO_PI * np.eye(d)
        blk += (math.sin(2 * t) / 2 * (np.outer(e1, e1) - np.outer(e2, e2))
                + math.sin(t) ** 2 * (np.outer(e1, e2) + np.outer(e2, e1))) / TWO_PI
        out[j, :, l, :] = blk
    return out.reshape(K * d, K * d)


def all_objects(W, Ws, part):
    """Every object of ``part`` at a kink-free point: ``{name: array}``."""
    out = {"loss": np.array(numerics.loss(W, Ws, part))}
    for f in GRADIENT_FIELDS:
        out[f"gradient/{f}"] = numerics.gradient(W, Ws, part, f)
    for f in HESSIAN_FIELDS:
        out[f"hessian/{f}"] = numerics.hessian(W, Ws, part, f)
    return out


# ----------------------------------------------------------------------------- invariances
@given(configs)
def test_rotation_equivariance(cfg):
    W, Ws, rng = cfg
    K, d = W.shape
    Q = random_orthogonal(rng, d)
    IQ = np.kron(np.eye(K), Q)  # acts on the flattened index i*d + k
    S = scale(W, Ws)
    for part in PARTS:
        a = all_objects(W, Ws, part)
        b = all_objects(W @ Q.T, Ws @ Q.T, part)
        # angles/norms of rotated rows differ by O(eps) rounding; summands are <= S^2 (loss), <= S
        # (gradient), <= max|H| (Hessian); 1e-12 leaves ~1e3 ulps of slack for the sums
        assert_close(b["loss"], a["loss"], rtol=1e-12, atol=1e-12 * S**2, what=f"loss {part}")
        for f in GRADIENT_FIELDS:
            g = a[f"gradient/{f}"]
            assert_close(b[f"gradient/{f}"], g @ Q.T, rtol=0, atol=1e-12 * S, what=f"gradient {part}/{f}")
        for f in HESSIAN_FIELDS:
            H = a[f"hessian/{f}"]
            # Hessian terms scale like 1/sin(angle) (<= 1e2 near the teacher), so rounding of the
            # angles is amplified up to ~1e2-1e4 (eps/t^2 for J): relative 1e-10
            assert_close(b[f"hessian/{f}"], IQ @ H @ IQ.T, rtol=0, atol=1e-10 * hmax(H), what=f"hessian {part}/{f}")


@given(configs)
def test_permutation_of_students_and_teachers(cfg):
    W, Ws, rng = cfg
    K, d = W.shape
    ps = rng.permutation(K)
    pt = rng.permutation(len(Ws))
    S = scale(W, Ws)
    for part in PARTS:
        a = all_objects(W, Ws, part)
        b = all_objects(W[ps], Ws, part)
        c = all_objects(W, Ws[pt], part)
        for other, perm in ((b, ps), (c, np.arange(K))):
            # only the summation order changes: rounding-level differences (see rotation test)
            assert_close(other["loss"], a["loss"], rtol=1e-12, atol=1e-12 * S**2, what=f"loss {part}")
            for f in GRADIENT_FIELDS:
                assert_close(other[f"gradient/{f}"], a[f"gradient/{f}"][perm], rtol=0, atol=1e-12 * S,
                             what=f"gradient {part}/{f}")
            for f in HESSIAN_FIELDS:
                H = a[f"hessian/{f}"]
                Hp = H.reshape(K, d, K, d)[perm][:, :, perm].reshape(K * d, K * d)
                assert_close(other[f"hessian/{f}"], Hp, rtol=0, atol=1e-10 * hmax(H), what=f"hessian {part}/{f}")


@given(configs, st.floats(0.01, 100.0))
def test_positive_homogeneity(cfg, c):
    W, Ws, _ = cfg
    S = scale(W, Ws)
    for part in PARTS:
        a = all_objects(W, Ws, part)
        b = all_objects(c * W, c * Ws, part)
        # c*W rounds each entry (relative eps); that input perturbation, amplified by at most
        # ~1/sin(angle) <= 1e2 (1/t^2 <= 1e4 for the Hessian of J), is the only difference:
        # 1e-12 (loss, gradient) / 1e-10 (Hessian)
        assert_close(b["loss"], c**2 * a["loss"], rtol=1e-12, atol=1e-12 * (c * S) ** 2, what=f"loss {part}")
        for f in GRADIENT_FIELDS:
            assert_close(b[f"gradient/{f}"], c * a[f"gradient/{f}"], rtol=1e-12, atol=1e-12 * c * S,
                         what=f"gradient {part}/{f}")
        for f in HESSIAN_FIELDS:
            H = a[f"hessian/{f}"]
            assert_close(b[f"hessian/{f}"], H, rtol=1e-10, atol=1e-10 * hmax(H), what=f"hessian {part}/{f}")


# ----------------------------------------------------------------------------- at the teacher
@given(generic(same_k=True))
def test_zero_at_teacher(cfg):
    W, _, rng = cfg
    Ws = W[rng.permutation(len(W))].copy()  # the teacher, in any row order
    S = scale(W, Ws)
    for part in PARTS:
        # the exact value is 0; summands are <= S^2 (loss) / S (field), so rounding of a sum of
        # (2K)^2 <= 64 summands is below 64 eps S^2 ~ 1.4e-14 S^2; we allow 1e-13 S^2
        assert abs(numerics.loss(W, Ws, part)) <= 1e-13 * S**2, part
        assert_close(numerics.gradient(W, Ws, part, "mean"), np.zeros_like(W), rtol=0, atol=1e-13 * S,
                     what=f"mean field {part}")
    assert_close(numerics.gradient(W, Ws, "L", "true"), np.zeros_like(W), rtol=0, atol=1e-13 * S,
                 what="true gradient L")
    for part in ("J", "H"):
        with pytest.raises(ValueError, match="parallel"):
            numerics.gradient(W, Ws, part, "true")
        for f in ("true", "mean"):
            with pytest.raises(ValueError, match="parallel"):
                numerics.hessian(W, Ws, part, f)


# ----------------------------------------------------------------------------- Hessian symmetry
@given(configs)
def test_true_hessian_symmetric_and_mean_jacobian_of_L_equals_it(cfg):
    W, Ws, _ = cfg
    for part in PARTS:
        H = numerics.hessian(W, Ws, part, "true")
        # exact symmetry; the (j,l) and (l,j) blocks come from different rounding paths, whose
        # error is ~eps * (largest summand) ~ 1e-13 * max|H|: allow 1e-11 relative
        assert_close(H, H.T, rtol=0, atol=1e-11 * hmax(H), what=f"true Hessian {part} symmetric")
    HL = numerics.hessian(W, Ws, "L", "true")
    ML = numerics.hessian(W, Ws, "L", "mean")
    assert_close(ML, ML.T, rtol=0, atol=1e-11 * hmax(ML), what="mean Jacobian of L symmetric")
    assert_close(ML, HL, rtol=0, atol=1e-11 * hmax(HL), what="mean Jacobian of L == true Hessian of L")


@pytest.mark.parametrize(
    "w, w_star",
    [([1.0, 0.0], [1.0, 1.0]), ([2.0, -1.0, 0.5], [0.3, 1.7, -1.0]), ([0.5, 0.2, 0.1, 0.9], [-1.5, 1.0, 0.3, 0.2])],
)
def test_mean_jacobian_of_J_not_symmetric(w, w_star):
    w, w_star = np.array(w), np.array(w_star)
    M = numerics.hessian(w[None], w_star[None], "J", "mean")
    # one node: M = I/2 - w* (u - cos t v)^T / (2 pi |w| sin t), whose antisymmetric part has
    # Frobenius norm sqrt(2) |w*| |cos t| / (2 pi |w|) (derived by hand from G = w/2 - (pi-t)/(2pi) w*)
    t = stable_angle(w, w_star)
    gap = math.sqrt(2) * np.linalg.norm(w_star) * abs(math.cos(t)) / (TWO_PI * np.linalg.norm(w))
    assert gap > 0.05  # the chosen points are generic: a clear asymmetry, not rounding
    # closed form of O(1) numbers, no cancellation at these angles: 1e-12
    assert abs(np.linalg.norm(M - M.T) - gap) <= 1e-12
    for part in ("J", "H"):
        Mp = numerics.hessian(w[None], w_star[None], part, "mean")
        assert np.linalg.norm(Mp - Mp.T) > 0.05, part


@given(configs)
def test_mean_jacobian_of_J_matches_independent_closed_form(cfg):
    W, Ws, _ = cfg
    M = numerics.hessian(W, Ws, "J", "mean")
    R = ref_mean_jacobian_J(W, Ws)
    # reference: float64 closed forms with factors 1/sin(t) <= 1e2; rounding amplified to <~ 1e2 eps/t: 1e-10 relative
    assert_close(M, R, rtol=0, atol=1e-10 * hmax(R), what="Jacobian of the mean field of J")


def ref_true_hessian_J_one_node(w, w_star, e2=None):
    """One node: ``I/2 - |w*| sin t / (pi |w|) e2 e2^T + |w*| cos^2 t / (2 pi |w| sin t) P``,
    ``P = I - v v^T - e2 e2^T`` (the complement of the plane of w, w*), ``e2`` the unit vector of the
    plane orthogonal to ``v = w/|w|`` towards ``w*``.  Derived by hand from
    ``J = (|w|^2 + |w*|^2)/4 - (w.w*)(pi - t)/(2 pi)`` with ``grad t = -e2/|w|`` and
    ``hess t = (v e2^T + e2 v^T + cot(t) P)/|w|^2``.  Free of cancellation when ``e2`` and ``P`` are
    supplied exactly (axis-aligned rows below)."""
    d = len(w)
    nw, ns = np.linalg.norm(w), np.linalg.norm(w_star)
    v = w / nw
    t = stable_angle(w, w_star)
    if e2 is None:
        e2 = w_star / ns - (w_star @ v / ns) * v
        e2 = e2 / np.linalg.norm(e2)
    P = np.eye(d) - np.outer(v, v) - np.outer(e2, e2)
    return (0.5 * np.eye(d) - ns * math.sin(t) / (math.pi * nw) * np.outer(e2, e2)
            + ns * math.cos(t) ** 2 / (TWO_PI * nw * math.sin(t)) * P)


@given(generic(max_k=1, same_k=True))
def test_true_hessian_of_J_one_node_matches_closed_form(cfg):
    W, Ws, _ = cfg
    H = numerics.hessian(W, Ws, "J", "true")
    R = ref_true_hessian_J_one_node(W[0], Ws[0])
    # O(1) closed form; 1/sin(t) <= 20 amplifies rounding of e2 and P: 1e-12 relative to max|R|
    assert_close(H, R, rtol=0, atol=1e-12 * hmax(R), what="true Hessian of J, one node")


@pytest.mark.parametrize("d", [2, 3])
@pytest.mark.parametrize("t", [1e-8, 1e-6, math.pi - 1e-8])
def test_true_hessian_of_J_near_kink(t, d):
    # axis-aligned rows: w in the (x0, x1) plane, w* = e_0, so v, e2 and P are known exactly and the
    # reference has no cancellation; |w| = 1 up to rounding of cos/sin
    w = np.zeros(d)
    w[:2] = [math.cos(t), math.sin(t)]
    w_star = np.eye(d)[0]
    e2 = np.zeros(d)
    e2[:2] = [math.sin(t), -math.cos(t)]  # orthogonal to w, towards w* (w*.e2 = sin t > 0)
    R = ref_true_hessian_J_one_node(w, w_star, e2=e2)
    H = numerics.hessian(w[None], w_star[None], "J", "true")
    # The eigenvalues depend only on |w|, |w*| and t, so an input perturbation of relative size eps moves
    # them by O(eps) (it only rotates the frame); eigvalsh adds eps * max|R|.  1e-6 is far above both and
    # far below the O(0.1) error of the bug.
    assert_close(np.linalg.eigvalsh(H), np.linalg.eigvalsh(R), rtol=0, atol=1e-6 + 1e-12 * hmax(R),
                 what=f"eigenvalues of the true Hessian of J, t = {t}, d = {d}")
    if d == 2:
        # in d = 2 there is no P term: the entries are O(1) and change by O(eps) under such perturbations
        assert_close(H, R, rtol=0, atol=1e-6, what=f"true Hessian of J, t = {t}, d = 2")


# ----------------------------------------------------------------------------- mean vs true field
@given(configs)
def test_mean_field_equals_true_gradient_for_L(cfg):
    W, Ws, _ = cfg
    G = numerics.gradient(W, Ws, "L", "true")
    # two evaluations of the same analytic object: rounding only (summands <= S)
    assert_close(numerics.gradient(W, Ws, "L", "mean"), G, rtol=0, atol=1e-12 * scale(W, Ws), what="L mean vs true")


@given(configs)
def test_true_minus_mean_is_the_boundary_term_for_J_and_H(cfg):
    W, Ws, _ = cfg
    B = ref_true_minus_mean_J(W, Ws)
    S = scale(W, Ws)
    for part in ("J", "H"):
        diff = numerics.gradient(W, Ws, part, "true") - numerics.gradient(W, Ws, part, "mean")
        # terms of size |w.z| / (|w| sin t) <= 1e2 S (near the teacher), each with relative rounding
        # error ~eps/t <= 2e-14: 1e-10 S
        assert_close(diff, B, rtol=0, atol=1e-10 * S, what=f"true - mean, {part}")


@pytest.mark.parametrize(
    "W, W_star",
    [([[1.0, 0.0]], [[1.0, 1.0]]), ([[2.0, -1.0, 0.5], [0.1, 1.0, 1.0]], [[0.3, 1.7, -1.0]]),
     ([[1.0, 0.2, 0.0]], [[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]])],
)
def test_mean_field_differs_from_true_gradient_for_J(W, W_star):
    W, W_star = np.array(W), np.array(W_star)
    B = ref_true_minus_mean_J(W, W_star)
    # the independent boundary term is O(1) at these generic points (threshold 0.05; it is ~0.16
    # for the first point: |w.w*| / (2 pi |w|) with unit factors)
    assert np.abs(B).max() > 0.05
    for part in ("J", "H"):
        gap = np.abs(numerics.gradient(W, W_star, part, "true") - numerics.gradient(W, W_star, part, "mean")).max()
        assert gap > 0.05, (part, gap)


# ----------------------------------------------------------------------------- independent values
@given(configs)
def test_loss_and_mean_field_match_arc_cosine_kernel_forms(cfg):
    W, Ws, _ = cfg
    S = scale(W, Ws)
    for part in PARTS:
        # reference: a plain float64 sum of (K+K*)^2 <= 64 summands each <= S^2: error <~ 64 eps S^2
        assert_close(numerics.loss(W, Ws, part), ref_loss(W, Ws, part), rtol=0, atol=1e-13 * S**2, what=f"loss {part}")
        assert_close(numerics.gradient(W, Ws, part, "mean"), ref_mean_field(W, Ws, part), rtol=0, atol=1e-13 * S,
                     what=f"mean field {part}")


# ----------------------------------------------------------------------------- finite differences
def central_difference(f, W, out_shape):
    """``d f / d W[i, k]`` by central differences with ``h_i = 1e-5 |w_i|`` (the suite's one FD Jacobian,
    ``numerics.finite_differences.fd_jacobian``); result ``out_shape + (K, d)``."""
    return fd_jacobian(f, W, h=1e-5).reshape(tuple(out_shape) + W.shape)


# Error model of the central differences at MIN_ANGLE = 0.05, row norms in [0.25, 5.2] and h = 1e-5 |w_i|:
#   truncation (h^2 / 6) |f'''|: the loss is 2-homogeneous with angular factors up to ~1/sin^2(0.05) = 400,
#     so (1e-10 |w_i|^2 / 6) * 400 * (K+K*)^2 / |w_i| <~ 5e-7 S; for the Hessians (gradient 1-homogeneous,
#     angular factor ~1/sin^3 = 8e3) <~ 1e-10/6 * 8e3 * 8 ~ 1e-6 at worst;
#   rounding eps * |f| / h: eps * S^2 / (1e-5 * 0.25) <~ 4e-9 S (gradient), eps * S / (1e-5 * 0.25) <~ 4e-9 (Hessian).
# Observed errors are ~1e-10 S and ~4e-8; a wrong formula (e.g. autograd vs true Hessian) is off by >~1e-2.
FD_ATOL_GRAD = 1e-6  # times S
FD_ATOL_HESS = 1e-5  # times max(1, max |H|)


@given(generic())
def test_true_gradient_matches_central_differences_of_loss(cfg):
    W, Ws, _ = cfg
    S = scale(W, Ws)
    for part in PARTS:
        fd = central_difference(lambda V: numerics.loss(V, Ws, part), W, ())
        assert_close(numerics.gradient(W, Ws, part, "true"), fd, rtol=0, atol=FD_ATOL_GRAD * S, what=f"true gradient {part}")


@settings(max_examples=15)
@given(generic())
def test_hessians_match_central_differences_of_their_fields(cfg):
    W, Ws, _ = cfg
    K, d = W.shape
    for part in PARTS:
        for field in GRADIENT_FIELDS:  # "true" gradient -> "true" Hessian; "mean" field -> "mean" Jacobian
            H = numerics.hessian(W, Ws, part, field)
            fd = central_difference(lambda V: numerics.gradient(V, Ws, part, field), W, (K, d))
            assert_close(H, fd.reshape(K * d, K * d), rtol=0, atol=FD_ATOL_HESS * hmax(H), what=f"{field} Hessian {part}")


# ----------------------------------------------------------------------------- autograd Hessians
@given(configs)
def test_autograd_hessian_of_L_is_symmetric_psd_and_matches_wedge_integral(cfg):
    W, Ws, _ = cfg
    A = numerics.hessian(W, Ws, "L", "autograd")
    s = hmax(A)
    # E[v v^T] with v = (1_j x)_j is exactly symmetric PSD; eigvalsh error ~ n eps max|A|
    assert_close(A, A.T, rtol=0, atol=1e-13 * s, what="autograd Hessian of L symmetric")
    assert np.linalg.eigvalsh((A + A.T) / 2).min() >= -1e-12 * s
    # the wedge integral (closed form of O(1) entries, no cancellation): 1e-12
    assert_close(A, ref_autograd_L(W), rtol=0, atol=1e-12, what="autograd Hessian of L")


@given(configs)
def test_autograd_hessian_of_J_is_expected_indicator_product_times_identity(cfg):
    W, Ws, _ = cfg
    K, d = W.shape
    A = numerics.hessian(W, Ws, "J", "autograd").reshape(K, d, K, d)
    for j, l in itertools.product(range(K), repeat=2):
        # E[1_j 1_l] = (pi - t_jl) / (2 pi), = 1/2 on the diagonal blocks
        t = 0.0 if j == l else stable_angle(W[j], W[l])
        # O(1) entries; t has absolute error ~eps / sin(t) <= 1e-13 at these angles: 1e-12
        assert_close(A[j, :, l, :], (math.pi - t) / TWO_PI * np.eye(d), rtol=0, atol=1e-12, what=f"block ({j}, {l})")


# ----------------------------------------------------------------------------- H = L + J
@given(configs)
def test_H_gradient_assembled_jointly_equals_L_plus_J(cfg):
    """The gradient fields of H are assembled in one pass over the pairs (the L and J coefficients
    summed before the matrix products), not as gradient(L) + gradient(J): this checks that the
    joint assembly is the sum.  (H's loss and Hessians are computed as L + J, so the same check
    could not fail there; they are checked against independent references in test_adversarial.)"""
    W, Ws, _ = cfg
    S = scale(W, Ws)
    objs = {p: {f"gradient/{f}": numerics.gradient(W, Ws, p, f) for f in GRADIENT_FIELDS} for p in PARTS}
    for name in objs["H"]:
        # two separately rounded sums against one: a few roundings of size eps * scale; 1e-13 * scale
        assert_close(objs["H"][name], objs["L"][name] + objs["J"][name], rtol=0, atol=1e-13 * S, what=name)