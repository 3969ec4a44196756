"""Generate the NumPy code of every pair object :mod:`numerics` evaluates, from the SymPy derivations.

``python -m theory.codegen`` derives every pair expression the numerics use (:func:`specification`:
the loss kernels and their ``rest`` rewrites, the span coefficients ``alpha``/``beta`` of both
gradient fields and their near-teacher rewrites ``rho_alpha``/``rho_beta``, the ``twin``/``boundary``
structure of the true field, the five coefficients of every Hessian-type pair matrix and the d = 2
in-plane ones, the constants ``self_coef``, ``half``, ``self_s`` and the existence flags, and the
fields of ``L``, ``J``, ``H`` split into angular cores and constants for the fast assembly of
:mod:`numerics.fast_gradient`) and writes
them as plain Python/NumPy source to :data:`TARGET` (``numerics/_pair_code.py``): four functions per
distinct pair expression (:data:`BRANCHES`) and the tables that :mod:`numerics.population` builds its
objects from.  SymPy is the single source; the generated module is never edited by hand, and
``tests/test_codegen.py`` checks that regenerating it is byte-identical.

Each branch is what ``sympy.lambdify(args, expr, modules="numpy", cse=True)`` compiles (this
module's :func:`lambdify`): its function body is the source lambdify generates, taken verbatim
(``inspect.getsource``), and the module imports exactly the NumPy objects that lambdify's namespace
binds to the names it uses, so every number is bit-identical to the lambdified function's.  The
branches (:mod:`numerics.compile` evaluates them):

* ``closed``: the expression in ``(n_a, n_b, theta)``;
* ``near_zero``: its series about ``theta = 0`` (:func:`theory.expansions.expand`);
* ``near_pi``: its series in ``psi = pi - theta``, in ``(n_a, n_b, psi)``;
* ``closed_sc``: the closed form with ``sin(theta)``, ``cos(theta)``, ``tan(theta)``, ``cot(theta)``
  written through arguments ``S``, ``C``, in ``(n_a, n_b, theta, S, C)``.

:func:`compiled_branches` compiles any expression the same way at run time (tests, experiments);
``numerics.compile.compile_pair`` wraps its result in a ``PairFunction``.  This module imports nothing
from :mod:`numerics` (theory is the lower layer): it hands numerics plain callables and flags.

Command line: ``python -m theory.codegen [--out PATH] [--check]`` (``--check``: exit 1, writing
nothing, when the file at ``PATH`` differs from what would be generated).
"""
from __future__ import annotations

import argparse
import ast
import builtins
import functools
import hashlib
import inspect
import sys
from pathlib import Path

import numpy
import sympy as sp

from . import activations, pairs
from .calculus import PairVector
from .expansions import expand
from .symbols import n_a, n_b, psi, theta
from .vocabulary import GRADIENT_FIELDS, HESSIAN_FIELDS

COMMAND = "python -m theory.codegen"
TARGET = Path(__file__).resolve().parent.parent / "numerics" / "_pair_code.py"
BRANCHES = ("closed", "near_zero", "near_pi", "closed_sc")
FLAGS = ("finite_at_zero", "finite_at_pi", "vanishes_at_zero", "vanishes_at_pi", "is_zero")

_S, _C = sp.symbols("S C", real=True)


# ----------------------------------------------------------------------------- compiling one expression
def lambdify(args, expr):
    """The one way an expression becomes NumPy code (generated or compiled at run time)."""
    return sp.lambdify(args, expr, modules="numpy", cse=True)


def with_trig_arguments(expr: sp.Expr) -> sp.Expr:
    """``expr`` with ``sin(theta)``, ``cos(theta)``, ``tan(theta)`` (and ``cot``) as symbols ``S``, ``C``."""
    return expr.xreplace({sp.sin(theta): _S, sp.cos(theta): _C, sp.tan(theta): _S / _C, sp.cot(theta): _C / _S})


@functools.lru_cache(maxsize=None)
def branches(expr: sp.Expr) -> tuple:
    """``(branches, flags)`` of a pair expression: ``branches[b] = (args, expression)`` for each ``b``
    in :data:`BRANCHES`; ``flags[f]`` a bool for each ``f`` in :data:`FLAGS`."""
    expr = sp.sympify(expr)
    ex = expand(expr)
    br = {
        "closed": ((n_a, n_b, theta), expr),
        "near_zero": ((n_a, n_b, theta), ex.near_zero),
        "near_pi": ((n_a, n_b, psi), ex.near_pi),
        "closed_sc": ((n_a, n_b, theta, _S, _C), with_trig_arguments(expr)),
    }
    flags = {
        "finite_at_zero": bool(ex.finite_at_zero),
        "finite_at_pi": bool(ex.finite_at_pi),
        "vanishes_at_zero": bool(ex.vanishes_at_zero),
        "vanishes_at_pi": bool(ex.vanishes_at_pi),
        "is_zero": bool(expr == 0),
    }
    return br, flags


def compiled_branches(expr: sp.Expr) -> dict:
    """``expr`` lambdified now, as the keyword arguments of a ``numerics.compile.PairFunction``: one
    callable per branch of :data:`BRANCHES`, one bool per flag of :data:`FLAGS`, and ``symbolic`` (the
    expression itself).

    The same callables the generated module holds for the expressions of :func:`specification`.  The
    SymPy half of run-time compilation: ``numerics.compile.compile_pair`` builds (and caches) the
    ``PairFunction`` from this dict, so that the dependency runs from numerics down to theory only."""
    expr = sp.sympify(expr)
    br, flags = branches(expr)
    return {**{b: lambdify(*br[b]) for b in BRANCHES}, **flags, "symbolic": expr}


# ----------------------------------------------------------------------------- the objects numerics uses
class Pair:
    """A pair expression in a specification (a leaf that becomes generated functions)."""

    __slots__ = ("expr",)

    def __init__(self, expr):
        self.expr = sp.sympify(expr)


class Ref:
    """A reference to another object of the specification (the mean-field twin of a true field)."""

    __slots__ = ("key",)

    def __init__(self, key: tuple):
        self.key = key


def _constant(expr, what: str) -> float:
    value = sp.simplify(expr)
    if value.free_symbols:
        raise NotImplementedError(f"{what} is not a constant ({value}); the assembly assumes it is")
    return float(value)


def _flags(expr) -> dict:
    return branches(sp.sympify(expr))[1]


def loss_spec(part: str) -> dict:
    self_f = pairs.self_loss_kernel(part)
    return {
        "f": Pair(pairs.loss_kernel(part)),
        "self_coef": _constant(self_f / n_a**2, f"f_{part}(a, a) / |a|^2"),
        "rest": Pair(pairs.loss_difference_rest(part)),
    }


def _vector(part: str, field: str) -> PairVector:
    return pairs.mean_field(part) if field == "mean" else pairs.true_gradient(part)


def _self_vector(part: str, field: str) -> PairVector:
    return pairs.self_mean_field(part) if field == "mean" else pairs.self_true_gradient(part)


def _half(part: str, field: str) -> float:
    """The self term of the field of ``part`` divided by ``|a|`` (a constant)."""
    return _constant(_self_vector(part, field).c1 / n_a, f"self term of the {field} field of {part} / |a|")


def vector_spec(part: str, field: str) -> dict:
    v = _vector(part, field)
    rho = (PairVector(n_b * sp.cos(theta) / 2, n_b * sp.sin(theta) / 2) - v).simplify()
    alpha, beta = v.span_coefficients()
    r_alpha, r_beta = rho.span_coefficients()
    twin, boundary = None, None
    if field == "true":
        jump = (v - _vector(part, "mean")).simplify()  # the boundary term of the indicators
        if not (sp.simplify(jump.c1) == 0 and sp.simplify(jump.c2) == 0):
            if sp.simplify(jump.c1) != 0:
                raise NotImplementedError("the boundary term is expected to lie along e2")
            twin, boundary = Ref(("field", part, "mean")), Pair(jump.c2)
    fa, fb = _flags(alpha), _flags(beta)
    return {
        # near a kink the true field is evaluated as its mean-field twin plus the boundary term
        # along e2: its own span coefficients carry ~1/angle terms that cancel there
        "twin": twin,
        "boundary": boundary,
        "alpha": Pair(alpha),
        "beta": Pair(beta),
        "rho_alpha": Pair(r_alpha),
        "rho_beta": Pair(r_beta),
        "half": _half(part, field),
        "exists_parallel": fa["finite_at_zero"] and fb["finite_at_zero"],
        "exists_antiparallel": fa["finite_at_pi"] and fb["finite_at_pi"],
    }


def _angular(coef, what: str) -> tuple:
    """``(constant, Pair(core))`` with ``coef = constant * n_b * core(theta)``: the span coefficient of a
    field with its norm factor and its constant taken out, ``core`` a function of the angle alone (its
    ``closed_sc`` branch in ``S``, ``C`` only, multiple angles expanded: no transcendental pass)."""
    ratio = sp.simplify(coef / n_b)
    if ratio.free_symbols - {theta}:
        raise NotImplementedError(f"{what} / n_b depends on the norms ({ratio}); the fast assembly assumes not")
    if ratio == 0:
        return 0.0, Pair(0)
    constant, core = sp.factor_terms(ratio).as_independent(theta, as_Add=False)
    core = sp.expand_trig(core)
    if sp.simplify(constant * core - ratio) != 0 or constant.free_symbols:
        raise RuntimeError(f"{what}: no split into a constant and a core")
    return float(constant), Pair(core)


def fast_field_spec(part: str, field: str) -> dict:
    """The field of ``part`` (``L``, ``J`` or their sum ``H``) as the fast assembly evaluates it away from
    the kinks: ``alpha = alpha_const * n_b * alpha(theta)`` and ``beta = beta_const * n_b * beta(theta)``
    (:func:`_angular`), and ``half``.  Row ``j`` of the field is then
    ``(half + sum_q s_q alpha_const alpha_jq |z_q| / |w_j|) w_j + sum_q s_q beta_const beta_jq z_q``:
    the norms enter as one weight per column, not as a pass over the pairs."""
    parts = ("L", "J") if part == "H" else (part,)
    v = _vector(parts[0], field)
    for p in parts[1:]:
        v = v + _vector(p, field)
    alpha, beta = v.simplify().span_coefficients()
    alpha_const, alpha_core = _angular(alpha, f"alpha of the {field} field of {part}")
    beta_const, beta_core = _angular(beta, f"beta of the {field} field of {part}")
    return {"alpha": alpha_core, "alpha_const": alpha_const, "beta": beta_core, "beta_const": beta_const,
            "half": sum(_half(p, field) for p in parts)}


def matrix_spec(matrix) -> dict:
    coefficients = matrix.coefficients()
    flags = [_flags(c) for c in coefficients]
    e2_terms = flags[1:4]
    B11, B12, B21, B22, s = coefficients
    # d = 2 has no orthogonal complement: I = e1 e1^T + e2 e2^T, and the in-plane coefficients
    # B11 + s, B22 + s are simplified as sums.  Near a kink B22 and s are each ~ |b|/(|a| angle)
    # and cancel to O(1): added in floating point they would lose every digit (the true Hessian
    # of J at an anti-parallel pair with |b|/|a| = 1e6 came out as 0 instead of I/2).
    return {
        "coef": [Pair(c) for c in coefficients],
        "coef_plane": [Pair(sp.simplify(B11 + s)), Pair(B12), Pair(B21), Pair(sp.simplify(B22 + s))],
        "exists_parallel": all(f["finite_at_zero"] for f in flags) and all(f["vanishes_at_zero"] for f in e2_terms),
        "exists_antiparallel": all(f["finite_at_pi"] for f in flags) and all(f["vanishes_at_pi"] for f in e2_terms),
    }


def hessian_spec(part: str, field: str) -> dict:
    if field == "autograd":
        self_m = pairs.self_autograd_hessian(part)
        diag_pair, off_pair = None, matrix_spec(pairs.autograd_hessian(part))
    else:
        self_m = pairs.self_jacobian(part, field)
        diag_pair = matrix_spec(pairs.mean_jacobian_a(part) if field == "mean" else pairs.true_hessian_a(part))
        off_pair = matrix_spec(pairs.mean_jacobian_b(part) if field == "mean" else pairs.true_hessian_b(part))
    for c in self_m.coefficients()[:4]:
        if sp.simplify(c) != 0:
            raise NotImplementedError("the diagonal term is expected to be a multiple of I")
    return {"self_s": _constant(self_m.s, "diagonal term"), "diag": diag_pair, "off": off_pair}


@functools.lru_cache(maxsize=1)
def specification() -> dict:
    """Every object of :mod:`numerics.population`, keyed ``("loss", part)``, ``("field", part, field)``,
    ``("hessian", part, field)`` (parts ``L``, ``J``), the arc kernels ``("arc", q, signs)`` of the
    activation family (:mod:`theory.activations`) and the fields of :func:`fast_field_spec`
    (``("fast_field", part, field)``, parts ``L``, ``J``, ``H``), in a fixed order; leaves are :class:`Pair`
    (an expression), :class:`Ref`, floats, bools and ``None``."""
    out = {}
    for part in pairs.KERNEL_PARTS:
        out[("loss", part)] = loss_spec(part)
        for field in GRADIENT_FIELDS:
            out[("field", part, field)] = vector_spec(part, field)
        for field in HESSIAN_FIELDS:
            out[("hessian", part, field)] = hessian_spec(part, field)
    # the arc kernels of the activation family (numerics.family_population): E[(s_a a.x)_+^q (s_b b.x)_+^q];
    # last, so that an expression they share with the objects above keeps its name there
    for q in activations.DEGREES:
        for signs in activations.SIGNS:
            out[("arc", q, signs)] = {"f": Pair(activations.arc_kernel(q, signs)),
                                      "dtheta": Pair(activations.arc_kernel_dtheta(q, signs)),
                                      "dtheta2": Pair(activations.arc_kernel_dtheta2(q, signs)),
                                      "dtheta_over_sin": Pair(activations.arc_kernel_dtheta_over_sin(q, signs))}
    # the fields away from the kinks as numerics.fast_gradient assembles them (H as one object);
    # last as well: every expression named above keeps its name
    for part in (*pairs.KERNEL_PARTS, "H"):
        for field in GRADIENT_FIELDS:
            out[("fast_field", part, field)] = fast_field_spec(part, field)
    return out


def _leaves(value, path: tuple):
    """``(path, Pair)`` for every pair expression below ``value``, in order."""
    if isinstance(value, Pair):
        yield path, value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _leaves(v, path + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _leaves(v, path + (f"{i}",))


_COEFFICIENT_NAMES = {"coef": ("B11", "B12", "B21", "B22", "s"), "coef_plane": ("B11_s", "B12", "B21", "B22_s")}


def _pair_name(path: tuple) -> str:
    """A stable Python name for the expression at ``path`` of :func:`specification`."""
    parts = list(path)
    if len(parts) >= 2 and parts[-2] in _COEFFICIENT_NAMES:
        kind = "plane" if parts[-2] == "coef_plane" else ""
        parts[-2:] = [p for p in (kind, _COEFFICIENT_NAMES[parts[-2]][int(parts[-1])]) if p]
    return "_".join(str(p) for p in parts)


@functools.lru_cache(maxsize=1)
def pair_names() -> tuple:
    """``(names, expressions)``: ``names[path]`` the name of the expression at each leaf ``path`` of
    :func:`specification`, ``expressions[name]`` the distinct expressions: structurally equal ones share
    one name (the path of the first, or ``zero``) and one compiled function, as they shared one
    ``lru_cache`` entry when :mod:`numerics` lambdified them at run time."""
    names, expressions, first = {}, {}, {}
    for key, obj in specification().items():
        for path, leaf in _leaves(obj, key):
            if leaf.expr not in first:
                name = "zero" if leaf.expr == 0 else _pair_name(path)
                if name in expressions:
                    raise RuntimeError(f"two expressions named {name}")
                first[leaf.expr] = name
                expressions[name] = leaf.expr
            names[path] = first[leaf.expr]
    return names, expressions


def expression(name: str) -> sp.Expr:
    """The SymPy expression behind the generated pair function ``name``."""
    return pair_names()[1][name]


# ----------------------------------------------------------------------------- writing the module
def numpy_import(name: str, obj) -> str | None:
    """The import that binds ``name`` to ``obj`` as lambdify's namespace does (``None``: a builtin)."""
    canonical = getattr(obj, "__name__", None)
    for candidate in (canonical, name):
        if isinstance(candidate, str) and getattr(numpy, candidate, None) is obj:
            return candidate if candidate == name else f"{candidate} as {name}"
    if getattr(builtins, name, None) is obj:
        return None
    if isinstance(obj, float) and getattr(numpy, name, None) == obj:  # numpy.pi, numpy.e: same float
        return name
    raise RuntimeError(f"lambdified code uses {name!r} = {obj!r}, which is no NumPy object")


def function_source(name: str, args, expr) -> tuple:
    """``(source, imports)``: lambdify's source for ``expr`` as a function called ``name``, and the
    ``from numpy import ...`` clauses it needs."""
    fn = lambdify(args, expr)
    src = inspect.getsource(fn)
    tree = ast.parse(src)
    (node,) = tree.body
    if not (isinstance(node, ast.FunctionDef) and node.name == "_lambdifygenerated"):
        raise RuntimeError("unexpected lambdify output")
    bound = {a.arg for a in node.args.args}
    bound |= {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    used = sorted({n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)} - bound)
    imports = set()
    for n in used:
        if n in fn.__globals__:
            clause = numpy_import(n, fn.__globals__[n])
            if clause is not None:
                imports.add(clause)
        elif not hasattr(builtins, n):
            raise RuntimeError(f"lambdified code uses an unbound name {n!r}")
    head = "def _lambdifygenerated("
    if not src.startswith(head):
        raise RuntimeError("unexpected lambdify output")
    return f"def {name}(" + src[len(head):].rstrip() + "\n", imports


def _format(value, indent: int, pair_of) -> str:
    pad, inner = "    " * indent, "    " * (indent + 1)
    if isinstance(value, Pair):
        return repr(pair_of(value))
    if isinstance(value, Ref):
        return repr(value.key)
    if isinstance(value, dict):
        items = [f"{inner}{k!r}: {_format(v, indent + 1, pair_of)},\n" for k, v in sorted(value.items())]
        return "{\n" + "".join(items) + pad + "}"
    if isinstance(value, list):
        items = [_format(v, indent + 1, pair_of) for v in value]
        flat = "[" + ", ".join(items) + "]"
        if len(pad) + len(flat) <= 80:
            return flat
        return "[\n" + "".join(f"{inner}{item},\n" for item in items) + pad + "]"
    if isinstance(value, (bool, type(None), str, tuple)):
        return repr(value)
    if isinstance(value, float):
        return repr(value)  # shortest repr: reads back as the same float
    raise TypeError(f"cannot write {value!r}")


THEORY = Path(__file__).resolve().parent


def _theory_imports(name: str) -> set:
    """The modules of ``theory`` that ``theory/<name>.py`` imports (relative or ``theory.x`` imports)."""
    out = set()
    for node in ast.walk(ast.parse((THEORY / f"{name}.py").read_text())):
        if not isinstance(node, ast.ImportFrom):
            continue
        if node.level == 1 or node.module == "theory":
            out |= {node.module.split(".")[0]} if node.module and node.level == 1 else {a.name for a in node.names}
        elif node.module and node.module.startswith("theory."):
            out.add(node.module.split(".")[1])
    return {m for m in out if (THEORY / f"{m}.py").exists()}


def sources() -> tuple:
    """The files of ``theory/`` the generated module is derived from: this module, the package's ``__init__`` (run on
    import) and every theory module they import, directly or not (paths relative to the repository root)."""
    seen, todo = set(), ["codegen", "__init__"]
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo += sorted(_theory_imports(name) - seen)
    return tuple(sorted(f"theory/{name}.py" for name in seen))


def source_hashes() -> dict:
    """``{path: SHA-256}`` of :func:`sources`: recorded in the generated module, so that a cheap test sees a changed
    derivation without regenerating (a stale file fails it; ``python -m theory.codegen`` refreshes both)."""
    root = THEORY.parent
    return {path: hashlib.sha256((root / path).read_bytes()).hexdigest() for path in sources()}


def generate() -> str:
    """The source of the generated module (deterministic: same SymPy, same text)."""
    names, expressions = pair_names()
    functions, imports = [], set()
    table = []
    for name in sorted(expressions):
        br, flags = branches(expressions[name])
        entry = []
        for b in BRANCHES:
            src, imp = function_source(f"{name}__{b}", *br[b])
            functions.append(src)
            imports |= imp
            entry.append(f"        {b!r}: {name}__{b},\n")
        entry += [f"        {f!r}: {flags[f]!r},\n" for f in FLAGS]
        table.append(f"    {name!r}: {{\n" + "".join(entry) + "    },\n")
    spec = specification()
    name_of = {id(leaf): names[path] for key, obj in spec.items() for path, leaf in _leaves(obj, key)}
    objects = "".join(f"    {key!r}: {_format(spec[key], 1, lambda leaf: name_of[id(leaf)])},\n"
                      for key in sorted(spec))
    header = (
        f'"""GENERATED by `{COMMAND}` from the SymPy derivations in theory/ (SymPy {sp.__version__}).\n'
        "\n"
        "DO NOT EDIT BY HAND: change theory/ and run the command again (tests/test_codegen.py checks that\n"
        "regenerating gives this file byte for byte, and that SOURCE_SHA256 matches the theory sources).\n"
        "\n"
        "``PAIRS[name]``: one distinct pair expression c(n_a, n_b, theta), as four functions (the bodies are\n"
        "sympy.lambdify's, cse=True, modules='numpy'): ``closed`` (n_a, n_b, theta), ``near_zero`` (its series\n"
        "about theta = 0), ``near_pi`` (its series in psi = pi - theta; arguments n_a, n_b, psi), ``closed_sc``\n"
        "(n_a, n_b, theta, S, C with S = sin(theta), C = cos(theta)), and the flags of theory.expansions.\n"
        "``OBJECTS[key]``: the objects of numerics.population (keys ('loss', part), ('field', part, field),\n"
        "('hessian', part, field)) and the arc kernels ('arc', q, signs) of the activation family, with pair\n"
        "functions as names in PAIRS; see theory.codegen.specification.\n"
        '"""\n'
    )
    lines = [header, "# flake8: noqa\n", "from numpy import " + ", ".join(sorted(imports, key=str.lower)) + "\n"
             if imports else "", "\n"]
    for src in functions:
        lines += ["\n", src, "\n"]
    hashes = "".join(f"    {path!r}: {digest!r},\n" for path, digest in source_hashes().items())
    lines += ["\nPAIRS = {\n", *table, "}\n", "\nOBJECTS = {\n", objects, "}\n", "\nSOURCE_SHA256 = {\n", hashes, "}\n"]
    return "".join(lines)


def write_text(path: Path, text: str) -> bool:
    """Write ``text`` to ``path`` atomically (a temporary file, then a rename); ``True`` if its content changed."""
    path = Path(path)
    old = path.read_text() if path.exists() else None
    if old != text:
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(text)
        tmp.replace(path)
    return old != text


def write(path: Path = TARGET) -> bool:
    """Write the generated module to ``path``; ``True`` if its content changed."""
    return write_text(path, generate())


def command_line(argv, *, command: str, target: Path, generate_text, description: str) -> int:
    """The generators' command line: ``[--out PATH] [--check]`` (``--check``: exit 1, writing nothing, when the file at
    ``PATH`` differs from ``generate_text()``); shared by :mod:`theory.codegen` and :mod:`theory.erf_codegen`."""
    ap = argparse.ArgumentParser(prog=command, description=description)
    ap.add_argument("--out", type=Path, default=target, help=f"where to write (default {target})")
    ap.add_argument("--check", action="store_true", help="only compare: exit 1 if the file differs")
    args = ap.parse_args(argv)
    if args.check:
        same = args.out.exists() and args.out.read_text() == generate_text()
        print(f"{args.out}: {'up to date' if same else 'differs from the derivation; run ' + command}")
        return 0 if same else 1
    changed = write_text(args.out, generate_text())
    print(f"{'wrote' if changed else 'unchanged'} {args.out}")
    return 0


def main(argv=None) -> int:
    return command_line(argv, command=COMMAND, target=TARGET, generate_text=generate,
                        description=__doc__.splitlines()[0])


if __name__ == "__main__":
    sys.exit(main())
