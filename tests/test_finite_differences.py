"""numerics.finite_differences: the one central-difference Jacobian and the directional check."""
from __future__ import annotations

import numpy as np
import pytest

from numerics.finite_differences import check_jacobian, fd_jacobian


def _f(x):
    """A smooth map R^(2x3) -> R^2 with a known Jacobian."""
    return np.array([np.sum(x**3), np.sin(x[0, 0]) * x[1, 2]])


def _jacobian(x):
    J = np.zeros((2, x.size))
    J[0] = (3 * x**2).ravel()
    J[1, 0] = np.cos(x[0, 0]) * x[1, 2]
    J[1, 5] = np.sin(x[0, 0])
    return J


def test_fd_jacobian_of_a_known_map():
    x = np.array([[0.3, -1.2, 2.0], [0.7, 0.1, -0.4]])
    # step 1e-6 |row|: truncation ~ (h^2/6) |f'''| ~ 1e-12, rounding ~ eps |f| / h ~ 1e-10 (|f| ~ 10)
    assert np.abs(fd_jacobian(_f, x) - _jacobian(x)).max() < 1e-8


def test_steps_are_relative_to_each_row():
    # rows of very different sizes: the same relative accuracy in each (a global step would be
    # far too large for the small row)
    x = np.array([[1e-6, 2e-6, -1e-6], [3.0, -1.0, 2.0]])
    got = fd_jacobian(lambda v: np.sum(v**3, axis=1), x)
    exact = np.zeros((2, 6))
    exact[0, :3], exact[1, 3:] = 3 * x[0] ** 2, 3 * x[1] ** 2
    assert np.allclose(got, exact, rtol=1e-8, atol=0)


def test_check_jacobian_accepts_the_right_and_refuses_a_wrong_jacobian():
    x = np.array([[0.3, -1.2, 2.0], [0.7, 0.1, -0.4]])
    assert check_jacobian(_f, _jacobian(x), x) < 1e-7
    wrong = _jacobian(x)
    wrong[1, 5] *= 1.01
    with pytest.raises(AssertionError, match="disagree"):
        check_jacobian(_f, wrong, x)


def test_check_jacobian_tolerance_follows_the_dtype():
    x = np.array([[0.3, -1.2, 2.0], [0.7, 0.1, -0.4]], dtype=np.float32)
    # float32: steps eps**(1/3) ~ 5e-3 relative, default rtol 1e-2
    assert check_jacobian(lambda v: _f(v.astype(np.float64)), _jacobian(x.astype(np.float64)), x) < 1e-2


@pytest.mark.parametrize("h", [0.0, -1e-6, float("nan"), float("inf")])
def test_bad_step_is_refused(h):
    with pytest.raises(ValueError, match="step"):
        fd_jacobian(_f, np.ones((2, 3)), h=h)
