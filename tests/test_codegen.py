"""The generated pair code (``numerics/_pair_code.py``, written by ``python -m theory.codegen``).

SymPy is its single source: regenerating it gives the committed file byte for byte; every
generated function is bit-identical to ``sympy.lambdify(..., modules="numpy", cse=True)`` of the
expression it was generated from, in all three branches; and the closed forms need neither SymPy
nor PyTorch at run time.
"""
from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import sympy as sp

from numerics import _pair_code
from numerics.compile import PairFunction, compile_pair, pair_function
from theory import codegen
from theory.expansions import expand
from theory.symbols import n_a, n_b, psi, theta

ROOT = Path(__file__).resolve().parent.parent
GENERATED = ROOT / "numerics" / "_pair_code.py"


def test_the_generated_module_records_its_current_theory_sources():
    """The cheap guard of the default run: the generated module was written from the theory files as they are now
    (their SHA-256, and the set of files the generator imports); any change to them needs `python -m theory.codegen`.
    The byte-for-byte regeneration below (slow) checks the content itself."""
    import hashlib

    from numerics import _pair_code

    assert set(_pair_code.SOURCE_SHA256) == set(codegen.sources())
    for path, digest in _pair_code.SOURCE_SHA256.items():
        assert hashlib.sha256((ROOT / path).read_bytes()).hexdigest() == digest, (
            f"{path} changed since numerics/_pair_code.py was generated: run `{codegen.COMMAND}`")


def test_the_guard_covers_every_theory_module_the_generator_imports():
    """``sources`` follows imports: the generator, the package's __init__, the pair derivations and what they import;
    not the modules the generator never loads (the erf control, the report prose)."""
    found = set(codegen.sources())
    assert {"theory/codegen.py", "theory/__init__.py", "theory/pairs.py", "theory/activations.py",
            "theory/expansions.py", "theory/symbols.py"} <= found
    assert not {"theory/erf.py", "theory/formulas.py", "theory/erf_codegen.py"} & found


@pytest.mark.slow
def test_regeneration_is_byte_identical(tmp_path):
    """The derivation stays the truth: the committed module is exactly what it generates (~15 s cold, ~100 s on a
    busy 2-core machine; the default run has the hash guard above)."""
    out = tmp_path / "_pair_code.py"
    assert codegen.main(["--out", str(out)]) == 0
    assert out.read_bytes() == GENERATED.read_bytes(), (
        f"numerics/_pair_code.py is stale or was edited by hand: run `{codegen.COMMAND}`")
    assert codegen.main(["--out", str(out), "--check"]) == 0
    assert f"SymPy {sp.__version__}" in out.read_text().splitlines()[0]


def test_closed_forms_import_neither_sympy_nor_torch():
    code = textwrap.dedent("""
        import sys
        import numpy as np
        import numerics
        from numerics import conditioning
        rng = np.random.default_rng(0)
        W, Ws = rng.standard_normal((3, 5)), rng.standard_normal((2, 5))
        numerics.loss(W, Ws, "H")
        numerics.gradient(W, Ws, "H", "true")
        numerics.gradient(W, Ws, "J", "mean")
        M = numerics.hessian(W, Ws, "H", "mean")
        numerics.hessian(W, Ws, "L", "true")
        numerics.hessian(W, Ws, "J", "autograd")
        numerics.gradient(W[:1], W[:1] * 2.0, "L", "mean")   # the series branch (parallel rows)
        conditioning.condition_numbers(M)
        assert "sympy" not in sys.modules and "torch" not in sys.modules, "imported sympy or torch"
        from numerics import monte_carlo, MCEstimate        # lazy: imports numerics.mc (PyTorch) now
        assert callable(monte_carlo) and numerics.mc.MCEstimate is MCEstimate
    """)
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr


def test_every_object_refers_to_generated_functions():
    names = set(_pair_code.PAIRS)
    used = set()

    def walk(v):
        if isinstance(v, dict):
            for x in v.values():
                walk(x)
        elif isinstance(v, list):
            for x in v:
                walk(x)
        elif isinstance(v, str):
            used.add(v)

    walk(_pair_code.OBJECTS)
    assert used == names
    for name in names:
        fn = pair_function(name)
        assert isinstance(fn, PairFunction) and fn.name == name


# ----------------------------------------------------------------------------- bit identity with lambdify
_S, _C = sp.symbols("S C", real=True)


def _lambdified(expr):
    """The four branches lambdified here, from theory's expression (as numerics compiled them)."""
    lam = lambda args, e: sp.lambdify(args, e, modules="numpy", cse=True)  # noqa: E731
    ex = expand(expr)
    trig = expr.xreplace({sp.sin(theta): _S, sp.cos(theta): _C, sp.tan(theta): _S / _C, sp.cot(theta): _C / _S})
    return {
        "closed": lam((n_a, n_b, theta), expr),
        "near_zero": lam((n_a, n_b, theta), ex.near_zero),
        "near_pi": lam((n_a, n_b, psi), ex.near_pi),
        "closed_sc": lam((n_a, n_b, theta, _S, _C), trig),
    }, ex


def _angles(rng, n=200):
    """Angles near 0 (log-uniform 1e-9 .. 0.1), in between and near pi, with their psi = pi - theta."""
    small = 10.0 ** rng.uniform(-9, -1, n)
    mid = rng.uniform(0.1, np.pi - 0.1, n)
    th = np.concatenate([small, mid, np.pi - small, [0.0, np.pi, 0.1, np.pi - 0.1]])
    ps = np.concatenate([np.pi - small, np.pi - mid, small, [np.pi, 0.0, np.pi - 0.1, 0.1]])
    return th, ps


def _same(a, b) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


@pytest.mark.parametrize("name", sorted(_pair_code.PAIRS))
def test_generated_functions_equal_lambdify_bit_for_bit(name):
    expr = codegen.expression(name)
    reference, ex = _lambdified(expr)
    entry = _pair_code.PAIRS[name]
    assert (entry["finite_at_zero"], entry["finite_at_pi"], entry["vanishes_at_zero"], entry["vanishes_at_pi"],
            entry["is_zero"]) == (ex.finite_at_zero, ex.finite_at_pi, ex.vanishes_at_zero, ex.vanishes_at_pi,
                                  expr == 0)
    rng = np.random.default_rng(sum(map(ord, name)))
    th, ps = _angles(rng)
    na = 10.0 ** rng.uniform(-3, 3, th.size)
    nb = 10.0 ** rng.uniform(-3, 3, th.size)
    sin, cos = np.sin(th), np.cos(th)
    with np.errstate(all="ignore"):  # Laurent terms are infinite at 0 and pi, in both
        for branch, args in (("closed", (na, nb, th)), ("near_zero", (na, nb, th)), ("near_pi", (na, nb, ps)),
                             ("closed_sc", (na, nb, th, sin, cos))):
            got, want = entry[branch](*args), reference[branch](*args)
            assert _same(got, want), f"{name}.{branch}"
            # scalars too (a lambdified function may return a Python or NumPy scalar)
            got1, want1 = entry[branch](*(a[7] for a in args)), reference[branch](*(a[7] for a in args))
            assert type(got1) is type(want1) and _same(got1, want1), f"{name}.{branch} (scalar)"


def test_compile_pair_compiles_any_expression():
    expr = sp.sin(theta) * n_a * n_b / (1 + sp.cos(theta)) ** 2
    fn = compile_pair(expr)
    assert isinstance(fn, PairFunction) and fn.expr == expr and fn.name is None
    th = np.array([1e-6, 1.0, np.pi - 1e-3])
    out = fn(np.ones(3), np.ones(3), th, np.pi - th)
    assert np.isfinite(out[:2]).all() and out[2] > 1e5
    assert not fn.finite_at_pi and fn.finite_at_zero and fn.vanishes_at_zero


# ----------------------------------------------------------------------------- the fast-field split
def test_angular_split_takes_out_the_norm_and_the_constant():
    """``_angular``: ``coef = constant * n_b * core(theta)`` with the core free of constants and of the norms,
    multiple angles expanded into powers of sin and cos (so the core's ``closed_sc`` has no transcendental)."""
    const, core = codegen._angular(n_b * sp.cos(2 * theta) / (3 * sp.pi * sp.sin(theta)), "test")
    assert const == pytest.approx(1 / (3 * np.pi), rel=1e-15)
    assert sp.simplify(core.expr - (2 * sp.cos(theta) ** 2 - 1) / sp.sin(theta)) == 0
    assert core.expr.free_symbols == {theta} and not core.expr.has(sp.cos(2 * theta))
    zero_const, zero_core = codegen._angular(sp.Integer(0), "zero")
    assert zero_const == 0.0 and zero_core.expr == 0


def test_angular_split_refuses_a_coefficient_that_depends_on_the_norms():
    with pytest.raises(NotImplementedError, match="depends on the norms"):
        codegen._angular(n_a * n_b * sp.sin(theta), "a test coefficient")
