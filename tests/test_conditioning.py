"""Condition numbers (numerics.conditioning, theory.spectrum) and the conditioning report.

Objects: ``"true"`` = Hessian of the population loss, ``"mean"`` = Jacobian of the mean field,
``"autograd"`` = expected autograd Hessian (docs/theory.md, section 5).  Every single-node closed form is checked
against the public ``numerics.hessian``; the report's numbers are recomputed from the public API.
"""
import json
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

import numerics
from numerics import conditioning as cond
from numerics.finite_differences import fd_jacobian
from verify import conditioning as report

FIELDS = ("true", "mean", "autograd")


def pair(theta: float, rho: float, d: int, rng) -> tuple:
    """``(w, w*)`` in a random orthonormal frame with angle ``theta`` and ``|w|/|w*| = rho``."""
    Q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    w_star = Q[:, 0]
    w = rho * (math.cos(theta) * Q[:, 0] + math.sin(theta) * Q[:, 1])
    return w[None], w_star[None]


# ----------------------------------------------------------------------------- definitions
def test_definitions_on_known_matrices():
    spd = np.diag([1.0, 4.0, 2.0])
    k = cond.condition_numbers(spd)
    # symmetric positive definite: the three definitions coincide (= 4, exactly representable)
    assert k == {"symmetric": 4.0, "singular": 4.0, "real_part": 4.0}
    indefinite = np.diag([1.0, -2.0])
    k = cond.condition_numbers(indefinite)
    assert k["symmetric"] is None and k["real_part"] is None and k["singular"] == 2.0
    singular = np.array([[1.0, 1.0], [1.0, 1.0]])
    # sigma_min of this matrix is ~3e-17 in floating point, not 0: without a tolerance its kappa is a
    # (huge) number, and None only with rtol
    assert cond.condition_numbers(singular, rtol=cond.POSITIVE_TOL)["singular"] is None
    # non-symmetric, eigenvalues 1 and 3 (upper triangular), symmetric part indefinite
    A = np.array([[1.0, 10.0], [0.0, 3.0]])
    k = cond.condition_numbers(A)
    assert abs(k["real_part"] - 3.0) <= 1e-14 and k["symmetric"] is None
    assert abs(k["singular"] - np.linalg.cond(A)) <= 1e-12 * np.linalg.cond(A)


def test_bad_input():
    with pytest.raises(ValueError, match="square"):
        cond.condition_numbers(np.ones((2, 3)))
    with pytest.raises(ValueError, match="non-finite"):
        cond.condition_numbers(np.array([[1.0, np.nan], [0.0, 1.0]]))
    with pytest.raises(ValueError, match="open interval"):
        cond.single_node_condition_numbers(1.0, 0.0, 3, "H", "mean")
    with pytest.raises(ValueError, match="positive"):
        cond.single_node_condition_numbers(-1.0, 1.0, 3, "H", "mean")
    with pytest.raises(ValueError, match="d must be"):
        cond.single_node_condition_numbers(1.0, 1.0, 1, "H", "mean")
    with pytest.raises(ValueError, match="part"):
        cond.single_node_condition_numbers(1.0, 1.0, 3, "J", "mean")
    with pytest.raises(ValueError, match="field"):
        cond.hessian_conditioning([[1.0, 0.0]], [[0.0, 1.0]], "H", "exact")
    # the object does not exist at the teacher: the public API says so
    with pytest.raises(ValueError, match="does not exist"):
        cond.hessian_conditioning([[1.0, 0.0]], [[2.0, 0.0]], "H", "mean")


# ----------------------------------------------------------------------------- closed form vs public API
@given(theta=st.floats(1e-3, math.pi - 1e-3), log_rho=st.floats(-2, 2), d=st.sampled_from([2, 3, 5]),
       seed=st.integers(0, 2**31 - 1))
def test_single_node_closed_form_spectrum_matches_numerics_hessian(theta, log_rho, d, seed):
    rho = 10.0**log_rho
    W, Ws = pair(theta, rho, d, np.random.default_rng(seed))
    for part in ("L", "H"):
        for f in FIELDS:
            a = cond.single_node_spectra(rho, theta, d, part, f)
            b = cond.spectra(numerics.hessian(W, Ws, part, f))
            scale = b["singular"].max()
            # entries up to ~1/(rho sin theta) <= 1e5 computed two ways in float64; the frame is rotated
            # by rounding only: 1e-9 relative to the largest singular value
            for key, ref in (("eigenvalues", b["eigenvalues"].real), ("symmetric", b["symmetric"]),
                             ("singular", b["singular"])):
                gap = np.abs(np.sort(a[key]) - ref).max() / scale
                assert gap <= 1e-9, (part, f, key, gap)
            # the eigenvalues are real for every single-node block (triangular or symmetric)
            assert np.abs(b["eigenvalues"].imag).max() <= 1e-9 * scale


@given(theta=st.floats(1e-3, math.pi - 1e-3), log_rho=st.floats(-2, 2))
def test_mean_field_jacobian_of_H_never_worse_single_node(theta, log_rho):
    """Claim 3 under the paper's convention, single node: wherever L's Jacobian has all real parts
    positive, so does H's, and max Re / min Re is not larger (closed form: 1/(1-3q/2) <= 1/(1-2q))."""
    rho = 10.0**log_rho
    W, Ws = pair(theta, rho, 3, np.random.default_rng(0))
    kL = cond.hessian_conditioning(W, Ws, "L", "mean")["kappa"]["real_part"]
    kH = cond.hessian_conditioning(W, Ws, "H", "mean")["kappa"]["real_part"]
    if kL is not None:
        assert kH is not None
        assert kH <= kL * (1 + 1e-9)  # equal only in the limit q -> 0; rounding of O(1) eigenvalues


def test_true_hessian_of_H_condition_number_diverges_at_the_teacher():
    """The complement eigenvalue of the true Hessian of H is 1 - q + 1/(2 pi rho sin theta): kappa ~ 1/theta."""
    rng = np.random.default_rng(1)
    k = []
    for theta in (1e-2, 1e-4):
        W, Ws = pair(theta, 1.0, 3, rng)
        k.append(cond.hessian_conditioning(W, Ws, "H", "true")["kappa"]["symmetric"])
    # exact ratio of the two condition numbers ~ (1/(2 pi 1e-4)) / (1/(2 pi 1e-2)) = 100 up to O(theta) terms
    assert 90 < k[1] / k[0] < 110
    # in d = 2 there is no complement: the true Hessians of L and H have the same condition number
    W, Ws = pair(0.7, 2.0, 2, rng)
    kL = cond.hessian_conditioning(W, Ws, "L", "true")["kappa"]["symmetric"]
    kH = cond.hessian_conditioning(W, Ws, "H", "true")["kappa"]["symmetric"]
    assert abs(kH - kL) <= 1e-12 * kL


def test_autograd_hessians_are_multiples_of_identity_single_node():
    W, Ws = pair(1.1, 0.3, 4, np.random.default_rng(2))
    assert np.array_equal(numerics.hessian(W, Ws, "L", "autograd"), 0.5 * np.eye(4))
    assert np.array_equal(numerics.hessian(W, Ws, "H", "autograd"), np.eye(4))


def test_fd_jacobian_of_the_gradient_agrees_with_hessian():
    """The report's finite-difference cross-check: ``fd_jacobian`` of ``numerics.gradient`` (row-scaled steps)."""
    rng = np.random.default_rng(4)
    W, Ws = rng.standard_normal((2, 3)), rng.standard_normal((2, 3))
    for f in ("true", "mean"):
        M = numerics.hessian(W, Ws, "H", f)
        J = fd_jacobian(lambda w: numerics.gradient(w, Ws, "H", f), W)
        # central differences, step 1e-6 |w|: truncation ~1e-12, rounding ~1e-10 relative
        assert np.abs(M - J).max() <= 1e-7 * np.abs(M).max()


# ----------------------------------------------------------------------------- the report
@pytest.fixture(scope="module")
def payload(quick_reports):
    return json.loads((quick_reports / "conditioning.json").read_text())


def test_report_multi_node_numbers_are_reproduced_from_the_public_api(payload):
    rows = [r for r in payload["data"]["multi_node"] if "W" in r]
    assert rows
    for r in rows:
        W, Ws = np.array(r["W"]), np.array(r["W_star"])
        # the instance generator is deterministic
        W2, Ws2 = report.instance(payload["provenance"]["seed"], r["K"], r["d"], r["kind"], r["index"], r["t"])
        assert np.array_equal(W, W2) and np.array_equal(Ws, Ws2)
        for f in FIELDS:
            for p in ("L", "H"):
                k = cond.hessian_conditioning(W, Ws, p, f)["kappa"]
                for name, v in k.items():
                    got = r["kappa"][f][p][name]
                    assert (v is None) == (got is None), (f, p, name)
                    if v is not None:
                        assert abs(v - got) <= 1e-9 * v


def test_report_worst_single_node_points_are_reproduced(payload):
    rng = np.random.default_rng(5)
    for key, w in payload["data"]["worst_case"].items():
        kind, f, size, k = key.split("/")
        if kind != "single" or w["ratio"] is None or w["theta"] < 1e-3:
            continue
        d = int(size.split("=")[1])
        W, Ws = pair(w["theta"], w["rho"], d, rng)
        kL = cond.hessian_conditioning(W, Ws, "L", f)["kappa"][k]
        kH = cond.hessian_conditioning(W, Ws, "H", f)["kappa"][k]
        # a condition number kappa moves by ~ eps * kappa (relative) under rounding of the matrix, and the
        # pair is rebuilt in a different frame: tolerance 1e-9 + 1e-13 * max(kappa) relative (the worst
        # points sit at the edge of the box where kappa(H) reaches ~1e8)
        tol = 1e-9 + 1e-13 * max(kH, kL)
        assert abs(kH / kL - w["ratio"]) <= tol * w["ratio"], key


def test_report_map_summary_matches_public_api_on_a_coarse_grid(payload):
    """The report's headline single-node facts, recomputed from numerics.hessian on an independent grid."""
    s = payload["data"]["single_node_maps"]["summary"]
    assert s["mean/d=3/real_part"]["fraction_H_worse"] == 0.0
    assert s["true/d=3/symmetric"]["fraction_H_better"] == 0.0
    assert payload["data"]["single_node_maps"]["d_at_least_3_identical"]
    rng = np.random.default_rng(6)
    worse_true = better_true = 0
    for theta in np.linspace(0.05, math.pi - 0.05, 9):
        for rho in (0.05, 1.0, 20.0):
            W, Ws = pair(theta, rho, 3, rng)
            kL = cond.hessian_conditioning(W, Ws, "L", "true")["kappa"]["symmetric"]
            kH = cond.hessian_conditioning(W, Ws, "H", "true")["kappa"]["symmetric"]
            if kL is not None and kH is not None:
                worse_true += kH > kL * (1 + 1e-9)
                better_true += kH < kL * (1 - 1e-9)
    assert better_true == 0 and worse_true > 0


def test_report_verdict_follows_the_rule_on_its_own_numbers(payload, quick_reports):
    """docs/claims.md, claim 3, recomputed from the JSON's raw numbers (not from verdict_inputs)."""
    data = payload["data"]
    s = data["single_node_maps"]["summary"]["mean/d=3/real_part"]
    near_rows = [r for r in data["multi_node"] if r["kind"] == "near"]
    ratios = [r["kappa"]["mean"]["H"]["real_part"] / r["kappa"]["mean"]["L"]["real_part"] for r in near_rows
              if r["kappa"]["mean"]["H"]["real_part"] is not None and r["kappa"]["mean"]["L"]["real_part"] is not None]
    holds = s["fraction_H_worse"] == 0.0 and len(ratios) > 0 and all(x < 1 for x in ratios)
    (v,) = payload["verdicts"]
    assert v["claim"] == 3 and v["evidence"] == "conditioning.md#6-verdict-on-claim-3"
    assert v["verdict"] == ("confirmed with qualifications" if holds else "refuted in part (see report)")
    # the convention's several-node caveat: the worst ratio of the search and the unstable-only counts
    worst = [w["ratio"] for k, w in data["worst_case"].items()
             if k.startswith("multi/mean/") and k.endswith("/real_part") and w["ratio"] is not None]
    only_H = sum(r["kappa"]["mean"]["H"]["real_part"] is None and r["kappa"]["mean"]["L"]["real_part"] is not None
                 for r in data["multi_node"])
    vi = data["verdict_inputs"]
    assert vi["multi_node_worst_mean_real_part"] == (max(worst) if worst else None)
    assert vi["multi_node_only_H_unstable"] == only_H
    assert ("not everywhere with several nodes" in v["convention"]) == bool(worst and max(worst) > 1)
    # the closing sentence comes from the same rule
    md = (quick_reports / "conditioning.md").read_text()
    assert ("So the claim holds for the object" in md) == holds
    assert ("Witness (several nodes" in md) == (vi["H_unstable_L_stable_witness"] is not None)


def test_report_cross_checks_follow_their_rules(payload):
    cc = payload["data"]["cross_checks"]
    assert cc["fd_tolerance"] == 1e-6
    assert cc["fd_pass"] == all(r["max_rel_gap"] <= 1e-6 for r in cc["fd"])
    z_star = stats.norm.isf(0.01 / (2 * cc["mc_entries"]))
    assert abs(cc["mc_z_threshold"] - z_star) <= 1e-12 * z_star
    assert cc["mc_pass"] == (max(r["max_abs_z"] for r in cc["mc"]) < z_star
                             and all(r["exact_entries_gap"] == 0.0 for r in cc["mc"]))
    assert cc["mc_entries"] == sum(r["entries"] for r in cc["mc"])
    # and, for this seed, they pass
    assert cc["fd_pass"] and cc["mc_pass"]
    assert cc["closed_form_vs_numerics_hessian_max_rel_gap"] <= 1e-9
    maps = payload["data"]["single_node_maps"]
    same = all(maps["summary"][f"{f}/d=3/{k}"] == maps["summary"][f"{f}/d={d}/{k}"]
               for f in FIELDS for k in cond.DEFINITIONS for d in (10, 100))
    assert maps["d_at_least_3_identical"] == same


def test_report_witness_of_H_unstable_where_L_is_stable_is_reproduced(payload):
    w = payload["data"]["verdict_inputs"]["H_unstable_L_stable_witness"]
    assert w is not None, "the seeded search found no point where H's mean-field Jacobian is unstable and L's is not"
    W, Ws = np.array(w["W"]), np.array(w["W_star"])
    eL = np.linalg.eigvals(numerics.hessian(W, Ws, "L", "mean")).real.min()
    eH = np.linalg.eigvals(numerics.hessian(W, Ws, "H", "mean")).real.min()
    assert eL > 0 > eH
    assert cond.hessian_conditioning(W, Ws, "L", "mean")["kappa"]["real_part"] is not None
    assert cond.hessian_conditioning(W, Ws, "H", "mean")["kappa"]["real_part"] is None
