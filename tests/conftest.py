"""Shared test settings and helpers.

Hypothesis runs derandomised (same examples every run, so CI is reproducible) with no
per-example deadline (the first call of each object compiles SymPy expressions).
"""
import numpy as np
import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci", max_examples=25, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("ci")
# more examples for every property test that does not set its own count:
# python -m pytest --hypothesis-profile=slow (tests/test_adversarial.py has @pytest.mark.slow variants)
settings.register_profile(
    "slow", max_examples=500, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)


def assert_close(actual, expected, *, rtol, atol=0.0, what=""):
    """Entry-wise ``|a - e| <= atol + rtol |e|``; on failure names the worst entry and both norms."""
    a = np.asarray(actual, dtype=float)
    e = np.asarray(expected, dtype=float)
    assert a.shape == e.shape, f"{what}: shape {a.shape} != {e.shape}"
    err = np.abs(a - e)
    bound = atol + rtol * np.abs(e)
    if not np.all(err <= bound):
        idx = np.unravel_index(np.argmax(err - bound), err.shape)
        rel_fro = np.linalg.norm(a - e) / max(np.linalg.norm(e), 1e-300)
        pytest.fail(
            f"{what}: entry {idx}: actual {a[idx]!r}, expected {e[idx]!r}, |diff| {err[idx]:.3e} > "
            f"bound {bound[idx]:.3e} (rtol {rtol}, atol {atol}); relative Frobenius error {rel_fro:.3e}, "
            f"max abs error {err.max():.3e}"
        )


@pytest.fixture(scope="session")
def quick_reports(tmp_path_factory):
    """One ``python -m verify.all --profile quick`` run (seed 3, CPU) shared by every report test."""
    from verify import all as verify_all

    out = tmp_path_factory.mktemp("reports")
    assert verify_all.main(["--profile", "quick", "--out", str(out), "--seed", "3", "--device", "cpu",
                            "--no-progress"]) == 0
    return out
