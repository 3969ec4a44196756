"""The Hessian's up-front memory check (``numerics.population._check_memory``) is an upper bound on what
its assembly allocates: the peak of NumPy's traced allocations while one Hessian is assembled stays
within ``_PEAK_MATRICES[part]`` float64 matrices of its size (so the check never lets through a Hessian
that then runs out of memory for want of headroom it did not count).  The numbers are the allocator's,
not timings."""
import tracemalloc

import numpy as np
import pytest

import numerics
import numerics.population as npop


@pytest.mark.parametrize("part", ["L", "J", "H"])
@pytest.mark.parametrize("field", ["true", "mean", "autograd"])
def test_peak_allocation_within_the_checked_bound(part, field):
    rng = np.random.default_rng(4)
    K, d = 12, 30  # a (360, 360) matrix: 1 MiB, well above the small arrays beside it
    W, Ws = rng.standard_normal((K, d)), rng.standard_normal((9, d))
    numerics.hessian(W, Ws, part, field)  # compiled objects loaded outside the traced call
    tracemalloc.start()
    try:
        numerics.hessian(W, Ws, part, field)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    matrix = 8 * (K * d) ** 2
    assert peak <= npop._PEAK_MATRICES[part] * matrix, (peak / matrix, part, field)
