"""The quadrature witness against the SymPy closed forms, at 30+ significant digits."""
import mpmath
import pytest
import sympy as sp

from numerics.quadrature import pair_expectations
from theory import kernels
from theory.symbols import n_a, n_b, theta
from verify.witnesses.judge import REQUIRED_DIGITS  # the witnesses report's pass bar (docs/claims.md, claim 1)

DPS = 45  # quadrature at 45 digits leaves a wide margin over the pass bar


def closed(expr, na, nb, t):
    subs = {n_a: sp.Float(na, DPS + 10), n_b: sp.Float(nb, DPS + 10), theta: sp.Float(t, DPS + 10)}
    return mpmath.mpf(str(sp.N(expr.subs(subs), DPS + 5)))


@pytest.mark.parametrize("t", ["1e-8", "0.3", "1.5707963267948966", "2.9", "3.14159264358979"])
@pytest.mark.parametrize("na,nb", [("1", "1"), ("1e-6", "2"), ("3e3", "0.25")])
def test_quadrature_matches_closed_forms(t, na, nb):
    q = pair_expectations(na, nb, t, dps=DPS)
    block, comp = kernels.step_step_xx()
    with mpmath.workdps(DPS):
        checks = [(q["relu_relu"], kernels.relu_relu(), mpmath.mpf(na) * mpmath.mpf(nb)),
                  (q["step_step"], kernels.step_step(), 1)]
        checks += [(q["relu_step_x"][i], kernels.relu_step_x()[i], mpmath.mpf(nb)) for i in range(2)]
        checks += [(q["step_step_xx"][i][j], block[i, j] + (comp if i == j else 0), 1)
                   for i in range(2) for j in range(2)]
        for value, expr, scale in checks:
            gap = abs(value - closed(expr, na, nb, t)) / scale
            assert gap < mpmath.mpf(10) ** (-REQUIRED_DIGITS), (expr, t, na, nb, gap)
