"""The generated erf code (``numerics/_erf_code.py``, written by ``python -m theory.erf_codegen``).

theory.erf is its single source: regenerating it gives the committed file byte for byte (and the SHA-256 of the
sources it records is current, a check that needs no derivation); every generated NumPy function is bit-identical to
``sympy.lambdify(..., modules="numpy")`` of its expression (what numerics.erf lambdified at run time before); the
generated torch pair term is lambdify's torch function, agrees with the NumPy one and is differentiable; and
numerics.erf needs no SymPy at run time.
"""
from __future__ import annotations

import hashlib
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import sympy as sp

from numerics import _erf_code
from theory import erf as T
from theory import erf_codegen

ROOT = Path(__file__).resolve().parent.parent
GENERATED = ROOT / "numerics" / "_erf_code.py"
PAIR_ARGS = (T.p, T.q, T.c, T.g, T.D)
SELF_ARGS = (T.p, T.g)


# ----------------------------------------------------------------------------- the file is current
def test_recorded_source_hashes_are_current():
    """Cheap staleness check (no derivation): the generated module records the SHA-256 of theory/erf.py and of
    theory/erf_codegen.py; after a change to either, regenerate."""
    assert set(_erf_code.SOURCE_SHA256) == {"theory/erf.py", "theory/erf_codegen.py"}
    for path, digest in _erf_code.SOURCE_SHA256.items():
        assert hashlib.sha256((ROOT / path).read_bytes()).hexdigest() == digest, (
            f"{path} changed since numerics/_erf_code.py was generated: run `{erf_codegen.COMMAND}`")


def test_regeneration_is_byte_identical(tmp_path, capsys):
    """The derivation stays the truth: the committed module is exactly what it generates (~10 s cold)."""
    out = tmp_path / "_erf_code.py"
    assert erf_codegen.main(["--out", str(out)]) == 0
    assert out.read_bytes() == GENERATED.read_bytes(), (
        f"numerics/_erf_code.py is stale or was edited by hand: run `{erf_codegen.COMMAND}`")
    assert f"SymPy {sp.__version__}" in out.read_text().splitlines()[0]
    assert erf_codegen.main(["--out", str(out), "--check"]) == 0
    out.write_text(out.read_text().replace("return 0\n", "return 1\n", 1))
    assert erf_codegen.main(["--out", str(out), "--check"]) == 1
    assert erf_codegen.main(["--out", str(tmp_path / "missing.py"), "--check"]) == 1
    assert "differs from the derivation" in capsys.readouterr().out


def test_tables_hold_every_partial_in_theorys_order():
    assert tuple(_erf_code.PAIR) == tuple(_erf_code.SELF) == tuple(_erf_code.TORCH_PAIR) == T.PARTS
    for part in T.PARTS:
        assert list(_erf_code.PAIR[part]) == list(T.pair_partials(part))
        assert list(_erf_code.SELF[part]) == list(T.self_partials(part))


def test_numerics_erf_needs_no_sympy():
    code = textwrap.dedent("""
        import sys
        import numpy as np
        import numerics.erf as erf
        rng = np.random.default_rng(0)
        W, Ws = rng.standard_normal((3, 4)), rng.standard_normal((2, 4))
        erf.loss([[1., 0.]], [[0., 1.]], "H")
        for part in ("L", "J", "J2", "H"):
            erf.loss(W, Ws, part, sobolev=(1.0, 0.5))
            erf.gradient(W, Ws, part, sobolev=(1.0, 0.5))
            erf.hessian(W, Ws, part, sobolev=(1.0, 0.5))
        assert "sympy" not in sys.modules, "numerics.erf imported sympy"
        import torch
        assert "sympy" not in sys.modules, "torch imported sympy"  # else the next check would prove nothing
        Wt = torch.tensor(W, requires_grad=True)
        loss = erf.loss_torch(Wt, Ws, "H", sobolev=(1.0, 0.5))
        torch.autograd.grad(loss, Wt)
        assert "sympy" not in sys.modules, "loss_torch imported sympy"
    """)
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr


# ----------------------------------------------------------------------------- bit identity with lambdify
def _invariants(seed: int, n: int = 400) -> tuple:
    """``(p, q, c, g, D)`` of ``n`` random pairs: ``p, q > 0`` log-uniform over 16 decades, ``c^2 <= pq`` (the
    correlations ``+-1`` and ``0`` included), ``D = 1 + 2p + 2q + 4 (pq - c^2)`` as numerics forms it, ``g``
    arbitrary (zero, small, large, of either sign)."""
    rng = np.random.default_rng(seed)
    p = 10.0 ** rng.uniform(-8, 8, n)
    q = 10.0 ** rng.uniform(-8, 8, n)
    rho = rng.uniform(-1.0, 1.0, n)
    rho[:6] = [1.0, -1.0, 0.0, 1.0, -1.0, 0.0]
    c = rho * np.sqrt(p * q)
    D = 1.0 + 2.0 * p + 2.0 * q + 4.0 * np.maximum(p * q - c * c, 0.0)
    g = rng.standard_normal(n) * 10.0 ** rng.uniform(-4, 4, n)
    g[6] = 0.0
    return p, q, c, g, D


def _same(a, b) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


@pytest.mark.parametrize("part", T.PARTS)
def test_generated_numpy_functions_equal_lambdify_bit_for_bit(part):
    p, q, c, g, D = _invariants(seed=T.ORDER[part])
    with np.errstate(all="ignore"):
        for table, exprs, args, values in (
                (_erf_code.PAIR[part], T.pair_partials(part), PAIR_ARGS, (p, q, c, g, D)),
                (_erf_code.SELF[part], T.self_partials(part), SELF_ARGS, (p, g))):
            for key, expr in exprs.items():
                want_fn = sp.lambdify(args, expr, modules="numpy")
                got, want = table[key](*values), want_fn(*values)
                assert _same(got, want), f"{part} {key}"
                # scalars too (a constant partial returns a Python int, the others NumPy scalars)
                for i in (0, 1, 2, 7):
                    got1, want1 = table[key](*(v[i] for v in values)), want_fn(*(v[i] for v in values))
                    assert type(got1) is type(want1) and _same(got1, want1), f"{part} {key} (scalar {i})"


# ----------------------------------------------------------------------------- the torch pair term
@pytest.mark.parametrize("part", T.PARTS)
def test_torch_pair_term_is_lambdifys_and_matches_numpy(part):
    torch = pytest.importorskip("torch")
    from numerics.erf import _torch_pair_term

    values = _invariants(seed=10 + T.ORDER[part])
    tensors = [torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in values]
    term = _torch_pair_term(part)
    out = term(*tensors)
    assert out.dtype == torch.float64 and out.shape == (len(values[0]),)
    # the operations of lambdify's torch function, bit for bit
    reference = sp.lambdify(PAIR_ARGS, T.pair_term(part), modules="torch")(*tensors)
    assert torch.equal(out, reference)
    # the NumPy pair term to rounding
    np.testing.assert_allclose(out.detach().numpy(), _erf_code.PAIR[part][()](*values), rtol=1e-15, atol=0)
    # differentiable: autograd gives the generated first partials
    grads = torch.autograd.grad(out.sum(), tensors, allow_unused=True)
    for name, grad in zip(("p", "q", "c", "g", "D"), grads):
        want = np.broadcast_to(np.asarray(_erf_code.PAIR[part][(name,)](*values), dtype=np.float64), out.shape)
        got = np.zeros(out.shape) if grad is None else grad.numpy()
        np.testing.assert_allclose(got, want, rtol=1e-14, atol=0, err_msg=f"{part} d/d{name}")
