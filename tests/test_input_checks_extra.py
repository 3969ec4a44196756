"""Regression tests: input checks of numerics.conditioning / numerics.differentiation, and what
``None`` means for a condition number.

* Complex input (any complex dtype, even with every imaginary part zero), booleans, strings, object
  arrays, ragged nested lists and NaN/inf entries raise ``ValueError`` naming the argument, before
  NumPy can drop an imaginary part with only a ``ComplexWarning`` (every check here runs with
  warnings turned into errors, so a warning instead of the ``ValueError`` fails the test).
* ``condition_numbers`` returns ``None`` only where a definition does not apply (smallest value
  ``<= 0`` by default); a positive-definite matrix with ``kappa = 1e13`` gets ``1e13``.  The
  relative threshold that used to be applied unconditionally stays available as ``rtol``.
"""
import math
import warnings

import numpy as np
import pytest
import torch

import numerics
from numerics import conditioning as cond
from numerics.differentiation import (central_difference_gradient, chebyshev_derivative, chebyshev_gradient_2d,
                                      chebyshev_matrix, chebyshev_points, fd_derivative, fd_gradient_2d,
                                      uniform_spacing)

EPS = np.finfo(float).eps


def raises_naming(call, name: str, also: str = ""):
    """``call()`` raises ``ValueError`` whose message names ``name`` (as a whole word) and contains
    ``also``; any warning on the way (e.g. NumPy's ComplexWarning) is an error."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError) as info:
            call()
    msg = str(info.value)
    assert name in msg, (name, msg)
    assert also.lower() in msg.lower(), (also, msg)
    return msg


# bad matrices (n x n) for numerics.conditioning, with a word their message must contain
def bad_arrays(n=4):
    good = np.arange(1.0, n * n + 1).reshape(n, n) + n * np.eye(n)
    nan, inf = good.copy(), good.copy()
    nan[1, 2] = np.nan
    inf[0, 0] = -np.inf
    ragged = [list(r) for r in good]
    ragged[-1] = ragged[-1][:-1]
    mixed_bool = [list(r) for r in good]
    mixed_bool[0][0] = True
    obj = good.astype(object)
    obj[0, 1] = None
    return {
        "complex128, zero imaginary part": (good.astype(np.complex128), "complex"),
        "complex64": (good.astype(np.complex64), "complex"),
        "clongdouble": (good.astype(np.clongdouble), "complex"),
        "nested list with a Python complex": ([[complex(v) if (i, j) == (0, 0) else v for j, v in enumerate(r)]
                                              for i, r in enumerate(good.tolist())], "complex"),
        "torch complex": (torch.tensor(good, dtype=torch.complex128), "complex"),
        "boolean array": (good > 5, "boolean"),
        "list with one bool": (mixed_bool, "boolean"),
        "strings": (good.astype(str), "dtype"),
        "numeric strings": ([["1.0"] * n] * n, "dtype"),
        "object array": (obj, "dtype"),
        "ragged nested list": (ragged, "convert"),
        "NaN entry": (nan, "non-finite"),
        "-inf entry": (inf, "non-finite"),
    }


BAD = bad_arrays()


# ----------------------------------------------------------------------------- conditioning: inputs
@pytest.mark.parametrize("case", sorted(BAD))
@pytest.mark.parametrize("fn", [cond.condition_numbers, cond.spectra])
def test_condition_numbers_refuses_bad_matrices_naming_M(fn, case):
    M, what = BAD[case]
    msg = raises_naming(lambda: fn(M), "M", what)
    if "complex" in case and "zero imaginary" in case:
        assert "even where every imaginary part is zero" in msg


@pytest.mark.parametrize("M", [np.zeros((0, 0)), np.zeros((0, 3)), np.zeros(3), np.ones((2, 3)), np.ones((2, 2, 2)),
                               5.0, []])
def test_condition_numbers_refuses_empty_non_square_non_2d(M):
    raises_naming(lambda: cond.condition_numbers(M), "M", "non-empty square 2-D")


def test_condition_numbers_accepts_integer_lists_and_torch():
    k = {"symmetric": 4.0, "singular": 4.0, "real_part": 4.0}
    assert cond.condition_numbers([[1, 0], [0, 4]]) == k
    assert cond.condition_numbers(np.diag(np.array([1, 4], dtype=np.int32))) == k
    assert cond.condition_numbers(torch.diag(torch.tensor([1.0, 4.0], requires_grad=True))) == k


@pytest.mark.parametrize("rtol", [-1e-12, math.nan, math.inf, True, "1e-12", 1e-12 + 0j, None])
def test_rtol_is_checked(rtol):
    raises_naming(lambda: cond.condition_numbers(np.eye(2), rtol=rtol), "rtol")
    raises_naming(lambda: cond.single_node_condition_numbers(1.0, 1.0, 3, "H", "mean", rtol=rtol), "rtol")


@pytest.mark.parametrize("arg", ["rho", "theta"])
@pytest.mark.parametrize("bad, what", [(np.array([1.0 + 0j]), "complex"), ("1.0", "dtype"), ([True], "boolean"),
                                       ([[1.0, 2.0], [1.0]], "convert")])
def test_single_node_refuses_bad_rho_theta(arg, bad, what):
    kw = {"rho": 1.0, "theta": 1.0, arg: bad}
    raises_naming(lambda: cond.single_node_condition_numbers(kw["rho"], kw["theta"], 3, "H", "mean"), arg, what)


@pytest.mark.parametrize("d", [True, 3 + 0j, "3", 2.5, math.inf, math.nan])
def test_single_node_refuses_bad_d(d):
    raises_naming(lambda: cond.single_node_condition_numbers(1.0, 1.0, d, "H", "mean"), "d must be")


def test_condition_numbers_from_spectra_checks_its_dict():
    raises_naming(lambda: cond.condition_numbers_from_spectra({"symmetric": [1.0], "singular": [1.0]}),
                  "eigenvalues", "missing")
    raises_naming(lambda: cond.condition_numbers_from_spectra(
        {"eigenvalues": np.array([]), "symmetric": np.array([]), "singular": np.array([])}), "eigenvalues", "non-empty")
    raises_naming(lambda: cond.condition_numbers_from_spectra(
        {"eigenvalues": [1.0], "symmetric": [1.0 + 0j], "singular": [1.0]}), "symmetric", "complex")


# ----------------------------------------------------------------------------- conditioning: what None means
def test_positive_definite_with_kappa_1e13_is_a_number_not_none():
    k = cond.condition_numbers(np.diag([1.0, 1e-13]))
    for name in ("symmetric", "singular", "real_part"):
        assert isinstance(k[name], float)
        assert abs(k[name] - 1e13) <= 1e-12 * 1e13, (name, k[name])
    # the same through a rotated (non-diagonal) SPD matrix: symmetric and singular agree with the
    # exact 1e13 to the accuracy float64 allows for kappa = 1e13 (relative ~ n eps kappa ~ 1e-2)
    c, s = math.cos(0.3), math.sin(0.3)
    Q = np.array([[c, -s], [s, c]])
    k = cond.condition_numbers(Q @ np.diag([1.0, 1e-13]) @ Q.T)
    for name in ("symmetric", "singular"):
        assert k[name] is not None and abs(k[name] / 1e13 - 1) < 0.05, (name, k[name])


def test_rtol_restores_the_old_relative_threshold():
    k = cond.condition_numbers(np.diag([1.0, 1e-13]), rtol=cond.POSITIVE_TOL)
    assert k == {"symmetric": None, "singular": None, "real_part": None}
    # just above the threshold: defined
    k = cond.condition_numbers(np.diag([1.0, 2e-12]), rtol=cond.POSITIVE_TOL)
    assert abs(k["singular"] - 5e11) <= 1e-12 * 5e11
    # rtol = 1 can never be exceeded (every smallest value is <= sigma_max): everything undefined
    assert set(cond.condition_numbers(np.diag([1.0, 2.0]), rtol=1.0).values()) == {None}


def test_none_exactly_where_the_definition_does_not_apply():
    # a tiny negative eigenvalue of the symmetric part: symmetric and real_part undefined, singular defined
    k = cond.condition_numbers(np.diag([1.0, -1e-300]))
    assert k["symmetric"] is None and k["real_part"] is None
    assert abs(k["singular"] - 1e300) <= 1e-12 * 1e300
    # a tiny positive one: all three defined, however large
    k = cond.condition_numbers(np.diag([1.0, 1e-300]))
    assert all(abs(v - 1e300) <= 1e-12 * 1e300 for v in k.values()), k
    # exactly singular (sigma_min == 0 exactly): singular undefined; the zero eigenvalue makes the others undefined
    assert cond.condition_numbers(np.diag([1.0, 0.0])) == {"symmetric": None, "singular": None, "real_part": None}
    # non-symmetric, eigenvalues 1 and 3, symmetric part indefinite
    k = cond.condition_numbers(np.array([[1.0, 10.0], [0.0, 3.0]]))
    assert k["symmetric"] is None and abs(k["real_part"] - 3.0) <= 1e-14
    # negative real part of a complex pair: real_part undefined
    k = cond.condition_numbers(np.array([[-1.0, 5.0], [-5.0, -1.0]]))
    assert k["real_part"] is None and k["symmetric"] is None and abs(k["singular"] - 1.0) <= 1e-14


def test_overflowing_ratio_is_inf_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        k = cond.condition_numbers(np.diag([1e10, 1e-300]))
        km = cond.single_node_condition_numbers(1.0, 1.0, 3, "H", "mean")  # runs warning-free too
    assert k == {"symmetric": math.inf, "singular": math.inf, "real_part": math.inf}
    assert all(isinstance(v, float) for v in k.values())
    assert not any(np.ma.is_masked(v) for v in km.values())


def test_exactly_singular_matrix_is_huge_or_none_and_masked_by_rtol():
    """[[1, 1], [1, 1]] is singular; its computed sigma_min is rounding (~1e-17 or 0 depending on LAPACK):
    the default gives None or a kappa beyond 1/(n eps) (documented: numerically singular); rtol masks it."""
    M = np.array([[1.0, 1.0], [1.0, 1.0]])
    k = cond.condition_numbers(M)
    for v in k.values():
        assert v is None or v > 1 / (2 * EPS)
    assert cond.condition_numbers(M, rtol=cond.POSITIVE_TOL) == {"symmetric": None, "singular": None,
                                                                 "real_part": None}


def test_random_matrices_none_iff_smallest_value_not_positive():
    rng = np.random.default_rng(11)
    for trial in range(200):
        n = int(rng.integers(1, 6))
        M = rng.standard_normal((n, n)) * 10.0 ** rng.uniform(-3, 3, size=(n, 1))
        if trial % 3 == 0:
            M = M @ M.T  # symmetric positive semi-definite, often nearly singular for n > 1
            M[np.diag_indices(n)] += 10.0 ** rng.uniform(-16, 0)
        k = cond.condition_numbers(M)
        sym = np.linalg.eigvalsh((M + M.T) / 2)
        sv = np.linalg.svd(M, compute_uv=False)
        re = np.linalg.eigvals(M).real
        for name, v in (("symmetric", sym), ("singular", sv), ("real_part", re)):
            if v.min() > 0:
                assert k[name] is not None and abs(k[name] - v.max() / v.min()) <= 1e-12 * k[name], (name, M)
            else:
                assert k[name] is None, (name, M)


def test_hessian_conditioning_and_single_node_pass_rtol_through():
    rng = np.random.default_rng(3)
    W, Ws = rng.standard_normal((2, 3)), rng.standard_normal((2, 3))
    for f in ("true", "mean", "autograd"):
        k0 = cond.hessian_conditioning(W, Ws, "H", f)["kappa"]
        assert cond.hessian_conditioning(W, Ws, "H", f, rtol=cond.POSITIVE_TOL)["kappa"] == k0  # well conditioned
        assert set(cond.hessian_conditioning(W, Ws, "H", f, rtol=1.0)["kappa"].values()) == {None}
        M = numerics.hessian(W, Ws, "H", f)
        assert k0 == cond.condition_numbers(M)
    theta, rho = np.linspace(0.1, 3.0, 7), np.logspace(-2, 2, 5)[:, None]
    for p in ("L", "H"):
        for f in ("true", "mean", "autograd"):
            km = cond.single_node_condition_numbers(rho, theta, 4, p, f)
            s = cond.single_node_spectra(rho, theta, 4, p, f)
            for name, key in (("symmetric", "symmetric"), ("singular", "singular"), ("real_part", "eigenvalues")):
                lo, hi = s[key].min(axis=-1), s[key].max(axis=-1)
                assert np.array_equal(np.ma.getmaskarray(km[name]), ~(lo > 0)), (p, f, name)
                ok = lo > 0
                assert np.array_equal(np.asarray(km[name])[ok], (hi / lo)[ok])
            assert all(np.ma.getmaskarray(v).all()
                       for v in cond.single_node_condition_numbers(rho, theta, 4, p, f, rtol=1.0).values())


# ----------------------------------------------------------------------------- differentiation
X5 = np.linspace(0.0, 1.0, 5)
F5 = X5**2
XC = chebyshev_points(6)
FC = XC**3
G = np.add.outer(np.linspace(0, 1, 5), np.linspace(0, 2, 6))  # (5, 6) uniform tensor grid values
GC = np.add.outer(chebyshev_points(4), chebyshev_points(5))


def _cplx(a):
    return np.asarray(a, dtype=np.complex128)


def _fn(X):
    return X.sum(axis=1)


DIFF_CASES = {
    # complex, even with every imaginary part zero
    "fd values complex": (lambda: fd_derivative(_cplx(F5), 0.25), "values", "complex"),
    "fd values complex64": (lambda: fd_derivative(F5.astype(np.complex64), 0.25), "values", "complex"),
    "fd h complex scalar": (lambda: fd_derivative(F5, 0.25 + 0j), "h", "complex"),
    "fd h numpy complex scalar": (lambda: fd_derivative(F5, np.complex128(0.25)), "h", "complex"),
    "fd h complex coords": (lambda: fd_derivative(F5, _cplx(X5)), "h", "complex"),
    "fd2d values complex": (lambda: fd_gradient_2d(_cplx(G), 0.25, 0.4), "values", "complex"),
    "fd2d hx complex": (lambda: fd_gradient_2d(G, _cplx(np.linspace(0, 1, 5)), 0.4), "hx", "complex"),
    "fd2d hy complex": (lambda: fd_gradient_2d(G, 0.25, 0.4 + 0j), "hy", "complex"),
    "cheb values complex": (lambda: chebyshev_derivative(_cplx(FC)), "values", "complex"),
    "cheb a complex": (lambda: chebyshev_derivative(FC, np.complex128(-1.0), 1.0), "a", "complex"),
    "cheb b complex": (lambda: chebyshev_derivative(FC, -1.0, 1.0 + 0j), "b", "complex"),
    "cheb2d values complex": (lambda: chebyshev_gradient_2d(_cplx(GC)), "values", "complex"),
    "cheb2d x_interval complex": (lambda: chebyshev_gradient_2d(GC, (-1.0 + 0j, 1.0)), "x_interval[0]", "complex"),
    "cheb2d y_interval complex": (lambda: chebyshev_gradient_2d(GC, (-1.0, 1.0), np.array([-1, 1], complex)),
                                  "y_interval[0]", "complex"),
    "cheb points a complex": (lambda: chebyshev_points(4, 0.0 + 0j, 1.0), "a", "complex"),
    "uniform_spacing complex": (lambda: uniform_spacing(_cplx(X5)), "coords", "complex"),
    "cdg x complex": (lambda: central_difference_gradient(_fn, _cplx(np.ones((3, 2))), 1e-3), "x", "complex"),
    "cdg h complex": (lambda: central_difference_gradient(_fn, np.ones((3, 2)), 1e-3 + 0j), "h", "complex"),
    "cdg fn complex": (lambda: central_difference_gradient(lambda X: _cplx(_fn(X)), np.ones((3, 2)), 1e-3),
                       "fn", "complex"),
    "cdg torch complex x": (lambda: central_difference_gradient(_fn, torch.ones(3, 2, dtype=torch.complex64), 1e-3),
                            "x", "complex"),
    # booleans
    "fd values bool": (lambda: fd_derivative(F5 > 0.1, 0.25), "values", "boolean"),
    "fd values list with bool": (lambda: fd_derivative([True, 0.0, 1.0, 2.0], 0.25), "values", "boolean"),
    "fd h bool": (lambda: fd_derivative(F5, True), "h", "boolean"),
    "cheb b bool": (lambda: chebyshev_derivative(FC, 0, True), "b", "boolean"),
    "cdg x bool": (lambda: central_difference_gradient(_fn, np.ones((3, 2), bool), 1e-3), "x", "boolean"),
    # non-numeric
    "fd values strings": (lambda: fd_derivative(["1", "2", "3", "4"], 0.25), "values", "dtype"),
    "fd values object": (lambda: fd_derivative(np.array([1.0, None, 2.0, 3.0], dtype=object), 0.25), "values",
                         "dtype"),
    "fd h string": (lambda: fd_derivative(F5, "0.25"), "h", "dtype"),
    "cheb values object": (lambda: chebyshev_derivative(FC.astype(object)), "values", "dtype"),
    "cheb2d x_interval string": (lambda: chebyshev_gradient_2d(GC, "ab"), "x_interval", "pair"),
    "cheb2d y_interval short": (lambda: chebyshev_gradient_2d(GC, (-1.0, 1.0), (0.0,)), "y_interval", "pair"),
    "uniform_spacing strings": (lambda: uniform_spacing(["0", "1"]), "coords", "dtype"),
    "cdg fn not callable": (lambda: central_difference_gradient(3.0, np.ones((3, 2)), 1e-3), "fn", "callable"),
    "cdg fn strings": (lambda: central_difference_gradient(lambda X: X.sum(1).astype(str), np.ones((3, 2)), 1e-3),
                       "fn", "dtype"),
    # ragged
    "fd values ragged": (lambda: fd_derivative([[1.0, 2.0, 3.0], [1.0, 2.0]], 0.25), "values", "convert"),
    "fd2d values ragged": (lambda: fd_gradient_2d([[1.0, 2.0, 3.0], [1.0, 2.0]], 0.1, 0.1), "values", "convert"),
    "cheb2d values ragged": (lambda: chebyshev_gradient_2d([[1.0, 2.0], [1.0]]), "values", "convert"),
    "cdg x ragged": (lambda: central_difference_gradient(_fn, [[1.0, 2.0], [1.0]], 1e-3), "x", "convert"),
    # NaN / inf
    "fd values inf": (lambda: fd_derivative(np.array([0.0, 1.0, np.inf, 3.0]), 0.25), "values", "NaN or inf"),
    "fd2d values nan": (lambda: fd_gradient_2d(np.where(G > 1.5, np.nan, G), 0.25, 0.4), "values", "NaN or inf"),
    "fd h nan": (lambda: fd_derivative(F5, math.nan), "h", "finite positive"),
    "fd h coords with nan": (lambda: fd_derivative(F5, np.array([0.0, 0.25, np.nan, 0.75, 1.0])), "h",
                             "NaN or inf"),
    "cheb2d values inf": (lambda: chebyshev_gradient_2d(np.where(GC > 1.5, -np.inf, GC)), "values", "NaN or inf"),
    "cheb a nan": (lambda: chebyshev_derivative(FC, math.nan, 1.0), "a", "finite interval"),
    "cdg x nan": (lambda: central_difference_gradient(_fn, np.array([[1.0, np.nan]]), 1e-3), "x", "NaN or inf"),
    "cdg h inf": (lambda: central_difference_gradient(_fn, np.ones((3, 2)), math.inf), "h", "finite positive"),
    "cdg fn nan": (lambda: central_difference_gradient(lambda X: np.full(len(X), np.nan), np.ones((3, 2)), 1e-3),
                   "fn", "NaN or inf"),
    # other argument checks
    "fd order bool": (lambda: fd_derivative(F5, 0.25, order=True), "order", ""),
    "fd axis bool": (lambda: fd_derivative(F5, 0.25, axis=True), "axis", ""),
    "fd axis float": (lambda: fd_derivative(F5, 0.25, axis=0.0), "axis", ""),
    "cdg h array": (lambda: central_difference_gradient(_fn, np.ones((3, 2)), np.array([1e-3, 1e-3])), "h",
                    "real number"),
    "cdg chunk": (lambda: central_difference_gradient(_fn, np.ones((3, 2)), 1e-3, chunk=0), "chunk", ""),
    "cdg fn wrong size": (lambda: central_difference_gradient(lambda X: X, np.ones((3, 2)), 1e-3), "fn",
                          "one value per row"),
}


@pytest.mark.parametrize("case", sorted(DIFF_CASES))
def test_differentiation_refuses_bad_input_naming_the_argument(case):
    call, name, what = DIFF_CASES[case]
    msg = raises_naming(call, name, what)
    if "complex" in case and "zero" not in msg:
        pytest.fail(f"the complex-input message should say zero imaginary parts are refused too: {msg}")


def test_differentiation_accepts_integers_lists_and_torch_with_the_same_results():
    x = np.arange(6)
    f = x**2  # int64
    np.testing.assert_array_equal(fd_derivative(f, 1), fd_derivative(f.astype(float), 1.0))
    np.testing.assert_array_equal(fd_derivative(f.tolist(), x.tolist()), fd_derivative(f.astype(float), 1.0))
    np.testing.assert_array_equal(fd_derivative(torch.tensor(f, dtype=torch.float64, requires_grad=True), 1.0),
                                  fd_derivative(f.astype(float), 1.0))
    np.testing.assert_array_equal(chebyshev_derivative(FC.tolist(), -1, 1), chebyshev_derivative(FC))
    np.testing.assert_array_equal(chebyshev_gradient_2d(GC, [-1, 1], np.array([-1.0, 1.0]))[1],
                                  chebyshev_gradient_2d(GC)[1])
    assert uniform_spacing(range(5)) == 1.0
    assert chebyshev_matrix(np.int64(3), np.float32(0), 2).shape == (4, 4)
    grad, q = central_difference_gradient(lambda X: torch.as_tensor(X).sum(1), [[1, 2], [3, 4]], np.float32(0.5))
    np.testing.assert_allclose(grad, np.ones((2, 2)), rtol=0, atol=1e-15)
    assert q == 8
