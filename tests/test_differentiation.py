"""numerics.differentiation: orders of accuracy, exactness, 2-D helpers and bad input (float64).

Order tests fit ``log(max error)`` against ``log(h)`` by least squares over grids fine enough to be
in the asymptotic regime and coarse enough that rounding (``eps |f| / h^2 ~ 1e-10`` at the finest
grid used) stays far below the truncation error (``~1e-5``).  The fitted slope of a second-order
method then lies within a few hundredths of 2; the tolerance ``|slope - 2| < 0.15`` leaves room for
the pre-asymptotic ``O(h^3)`` term at the coarsest grid and rejects first order (slope 1) and
third order (slope 3) alike.
"""
import numpy as np
import pytest

from numerics.differentiation import (central_difference_gradient, chebyshev_derivative, chebyshev_gradient_2d,
                                      chebyshev_matrix, chebyshev_points, fd_derivative, fd_gradient_2d,
                                      uniform_spacing)

NS = (41, 81, 161, 321, 641)


def _slope(hs, errs):
    return float(np.polyfit(np.log(hs), np.log(errs), 1)[0])


@pytest.mark.parametrize("order", [1, 2])
def test_fd_is_second_order_everywhere_including_the_ends(order):
    f = lambda x: np.exp(np.sin(2 * x))  # noqa: E731 - smooth, non-polynomial, non-symmetric on [0, 1.5]
    df = lambda x: 2 * np.cos(2 * x) * f(x)  # noqa: E731
    d2f = lambda x: (4 * np.cos(2 * x) ** 2 - 4 * np.sin(2 * x)) * f(x)  # noqa: E731
    hs, errs, end_errs = [], [], []
    for n in NS:
        x = np.linspace(0.0, 1.5, n)
        exact = df(x) if order == 1 else d2f(x)
        err = np.abs(fd_derivative(f(x), x[1] - x[0], order=order) - exact)
        hs.append(x[1] - x[0])
        errs.append(err.max())
        end_errs.append(max(err[0], err[-1]))
    assert abs(_slope(hs, errs) - 2) < 0.15, (hs, errs)
    assert abs(_slope(hs, end_errs) - 2) < 0.15, (hs, end_errs)  # the one-sided ends too


def test_fd_is_exact_on_quadratics_and_accepts_coordinates():
    x = np.linspace(-1.0, 2.0, 7)
    f = 3 * x**2 - x + 0.5
    np.testing.assert_allclose(fd_derivative(f, x), 6 * x - 1, rtol=0, atol=1e-12)
    np.testing.assert_allclose(fd_derivative(f, 0.5, order=2), np.full_like(x, 6.0), rtol=0, atol=1e-11)
    # cubic: second differences are exact inside, one-sided ends are exact for cubics (4-point stencil)
    np.testing.assert_allclose(fd_derivative(x**3, x, order=2), 6 * x, rtol=0, atol=1e-11)


def test_fd_along_an_axis_of_a_batch():
    x = np.linspace(0, 1, 50)
    F = np.stack([np.sin(x), np.cos(x)], axis=0)  # (2, 50), differentiate along axis 1
    D = fd_derivative(F, x[1] - x[0], axis=1)
    np.testing.assert_allclose(D[0], np.cos(x), atol=2e-4)
    np.testing.assert_allclose(D[1], -np.sin(x), atol=2e-4)
    np.testing.assert_allclose(fd_derivative(F.T, x, axis=0), D.T, rtol=0, atol=0)


def test_chebyshev_points_and_matrix_match_trefethen_small_cases():
    # cheb(1): x = [1, -1], D = [[1/2, -1/2], [1/2, -1/2]]  (Trefethen 2000, p. 53)
    np.testing.assert_allclose(chebyshev_points(1), [1.0, -1.0])
    np.testing.assert_allclose(chebyshev_matrix(1), [[0.5, -0.5], [0.5, -0.5]], atol=1e-15)
    # corner entries D_00 = (2N^2 + 1)/6 = -D_NN
    for N in (2, 5, 16):
        D = chebyshev_matrix(N)
        assert D[0, 0] == pytest.approx((2 * N**2 + 1) / 6, rel=1e-13)
        assert D[-1, -1] == pytest.approx(-(2 * N**2 + 1) / 6, rel=1e-13)
    x = chebyshev_points(6, 2.0, 5.0)
    assert x[0] == 5.0 and x[-1] == 2.0 and np.all(np.diff(x) < 0)
    np.testing.assert_allclose(x, 3.5 + 1.5 * np.cos(np.pi * np.arange(7) / 6), atol=1e-15)


@pytest.mark.parametrize("N", [1, 2, 5, 10, 20, 32])
def test_chebyshev_is_exact_on_polynomials_of_degree_at_most_N(N):
    a, b = -0.5, 2.0
    x = chebyshev_points(N, a, b)
    D = chebyshev_matrix(N, a, b)
    rng = np.random.default_rng(N)
    coef = rng.standard_normal(N + 1)  # a random polynomial of degree exactly N, in the shifted variable
    t = (x - 0.75) / 1.25  # keep the monomials O(1) on [a, b]
    p = np.polynomial.polynomial.polyval(t, coef)
    dp = np.polynomial.polynomial.polyval(t, np.polynomial.polynomial.polyder(coef)) / 1.25
    err = np.abs(D @ p - dp).max() / np.abs(dp).max()
    # rounding of D grows like N^2 eps; 1e-10 relative is far above it for N <= 32
    assert err < 1e-10, err


def test_chebyshev_converges_exponentially_on_a_smooth_function():
    f = lambda x: np.exp(np.sin(2 * x)) / (4 + x**2)  # noqa: E731 - analytic in the strip |Im x| < 2
    df = lambda x: f(x) * (2 * np.cos(2 * x) - 2 * x / (4 + x**2))  # noqa: E731
    Ns = np.array([8, 12, 16, 20, 24, 28])
    errs = []
    for N in Ns:
        x = chebyshev_points(N, -1.0, 2.0)
        errs.append(np.abs(chebyshev_matrix(N, -1.0, 2.0) @ f(x) - df(x)).max())
    errs = np.array(errs)
    # geometric: log error linear in N with a clearly negative rate, and faster than any power of 1/N:
    # the local algebraic order -dlog(err)/dlog(N) keeps growing with N
    rate = np.polyfit(Ns, np.log(errs), 1)[0]
    assert rate < -0.5, (Ns, errs)
    local_orders = -np.diff(np.log(errs)) / np.diff(np.log(Ns))
    assert np.all(np.diff(local_orders) > 0), local_orders
    assert local_orders[-1] > 15, local_orders
    assert errs[-1] < 1e-6  # from 0.1 at N = 8


def test_chebyshev_derivative_along_an_axis():
    x = chebyshev_points(20, 0.0, 1.0)
    F = np.stack([np.sin(x), x**3], axis=1)  # (21, 2): differentiate along axis 0
    D = chebyshev_derivative(F, 0.0, 1.0, axis=0)
    np.testing.assert_allclose(D[:, 0], np.cos(x), atol=1e-12)
    np.testing.assert_allclose(D[:, 1], 3 * x**2, atol=1e-12)


def test_gradients_on_2d_grids():
    f = lambda X, Y: np.sin(X) * np.exp(0.5 * Y)  # noqa: E731
    fx = lambda X, Y: np.cos(X) * np.exp(0.5 * Y)  # noqa: E731
    fy = lambda X, Y: 0.5 * np.sin(X) * np.exp(0.5 * Y)  # noqa: E731
    # Chebyshev, different intervals and sizes along the two axes
    xc, yc = chebyshev_points(18, -1.0, 1.0), chebyshev_points(14, 0.0, 2.0)
    X, Y = np.meshgrid(xc, yc, indexing="ij")
    gx, gy = chebyshev_gradient_2d(f(X, Y), (-1.0, 1.0), (0.0, 2.0))
    assert np.abs(gx - fx(X, Y)).max() < 1e-10 and np.abs(gy - fy(X, Y)).max() < 1e-10
    # finite differences: error ratio 4 when h halves (second order along each axis)
    errs = []
    for n in (41, 81):
        xu, yu = np.linspace(-1, 1, n), np.linspace(0, 2, n + 10)
        X, Y = np.meshgrid(xu, yu, indexing="ij")
        gx, gy = fd_gradient_2d(f(X, Y), xu, yu)
        errs.append(max(np.abs(gx - fx(X, Y)).max(), np.abs(gy - fy(X, Y)).max()))
    assert 3.3 < errs[0] / errs[1] < 4.7, errs


def test_central_difference_gradient_of_a_black_box():
    rng = np.random.default_rng(0)
    A = rng.standard_normal((5, 7))
    fn = lambda X: np.sum(np.tanh(X @ A.T), axis=1)  # noqa: E731
    X = rng.standard_normal((30, 7))
    exact = (1 - np.tanh(X @ A.T) ** 2) @ A
    grad, queries = central_difference_gradient(fn, X, 1e-4, chunk=100)  # tiny chunk: many blocks
    assert queries == 2 * 30 * 7
    np.testing.assert_allclose(grad, exact, atol=1e-6)


@pytest.mark.parametrize("call, match", [
    (lambda: chebyshev_points(0), "N must be >= 1"),
    (lambda: chebyshev_matrix(-3), "N must be >= 1"),
    (lambda: chebyshev_matrix(2.5), "integer"),
    (lambda: chebyshev_matrix(4, 1.0, 1.0), "a < b"),
    (lambda: chebyshev_points(4, 0.0, np.inf), "a < b"),
    (lambda: fd_derivative(np.ones(2), 0.1), "at least 3 points"),
    (lambda: fd_derivative(np.ones(3), 0.1, order=2), "at least 4 points"),
    (lambda: fd_derivative(np.ones(5), 0.1, order=3), "order must be 1 or 2"),
    (lambda: fd_derivative(np.ones(5), 0.0), "positive"),
    (lambda: fd_derivative(np.ones(5), np.array([0, 0.1, 0.2, 0.35, 0.4])), "not uniform"),
    (lambda: fd_derivative(np.ones(5), np.array([0.4, 0.3, 0.2, 0.1, 0.0])), "increasing"),
    (lambda: fd_derivative(np.ones(5), np.linspace(0, 1, 4)), "4 grid coordinates for 5 values"),
    (lambda: fd_derivative(np.array([1.0, np.nan, 2.0, 3.0]), 0.1), "NaN or inf"),
    (lambda: fd_derivative(np.ones((4, 4)), 0.1, axis=2), "axis"),
    (lambda: fd_derivative(3.0, 0.1), "scalar"),
    (lambda: chebyshev_derivative(np.ones(1)), "at least 2 points"),
    (lambda: chebyshev_derivative(np.array([1.0, np.inf, 0.0])), "NaN or inf"),
    (lambda: fd_gradient_2d(np.ones(5), 0.1, 0.1), "2-D"),
    (lambda: chebyshev_gradient_2d(np.ones((3, 3, 3))), "2-D"),
    (lambda: uniform_spacing([0.0]), "at least 2 points"),
    (lambda: central_difference_gradient(lambda X: X[:, 0], np.ones(3), 1e-3), r"\(n, d\)"),
])
def test_bad_input_raises_value_error(call, match):
    with pytest.raises(ValueError, match=match):
        call()
