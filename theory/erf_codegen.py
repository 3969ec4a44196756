"""Generate the NumPy (and torch) code of the erf network's pair terms, from the SymPy derivation in :mod:`theory.erf`.

``python -m theory.erf_codegen`` writes :data:`TARGET` (``numerics/_erf_code.py``), which
:mod:`numerics.erf` evaluates without SymPy at run time (as :mod:`theory.codegen` does for the ReLU family):

* for each part in :data:`PARTS` and each key of :func:`theory.erf.pair_partials` (``()``, ``("p",)``, ...,
  ``("D", "D")``) a function of ``(p, q, c, g, D)``, and for each key of :func:`theory.erf.self_partials` a
  function of ``(p, g)``, with the tables ``PAIR[part][key]`` and ``SELF[part][key]`` (keys in theory.erf's
  order).  Each body is the source ``sympy.lambdify(args, expr, modules="numpy")`` generates (no ``cse``: the
  options :mod:`numerics.erf` used when it lambdified at run time), taken verbatim with ``inspect.getsource``,
  and the module imports exactly the NumPy objects lambdify's namespace binds to the names it uses, so every
  number is bit-identical to the lambdified function's.  A constant partial stays a constant (``return 0``):
  callers broadcast;
* for each part the pair term :func:`theory.erf.pair_term` as ``TORCH_PAIR[part](xp, p, q, c, g, D)``: the source
  ``sympy.lambdify(args, expr, modules="torch")`` generates, with every name it takes from its torch namespace
  (``atan``, ``sqrt``, ``pow``; ``pi`` is already a float literal there) read from the module ``xp`` instead
  (``xp = torch``), so the generated module imports no torch and the operations are those of the lambdified
  function.

The generated module records the SHA-256 of ``theory/erf.py`` and of this file (``SOURCE_SHA256``), so a cheap
test can tell that it is stale without deriving; ``tests/test_erf_codegen.py`` also checks that regenerating it is
byte-identical.

Command line: ``python -m theory.erf_codegen [--out PATH] [--check]`` (``--check``: exit 1, writing nothing, when
the file at ``PATH`` differs from what would be generated).
"""
from __future__ import annotations

import ast
import builtins
import hashlib
import inspect
import sys
from pathlib import Path

import sympy as sp

from . import erf as T
from .codegen import command_line, numpy_import, write_text

COMMAND = "python -m theory.erf_codegen"
ROOT = Path(__file__).resolve().parent.parent
TARGET = ROOT / "numerics" / "_erf_code.py"
PARTS = T.PARTS  # ("L", "J", "J2")
PAIR_ARGS = (T.p, T.q, T.c, T.g, T.D)
SELF_ARGS = (T.p, T.g)
SOURCES = ("theory/erf.py", "theory/erf_codegen.py")  # hashed into the generated module
_HEAD = "def _lambdifygenerated("


def lambdify_numpy(args, expr):
    """The NumPy function of ``expr`` as :mod:`numerics.erf` lambdified it (no ``cse``)."""
    return sp.lambdify(args, expr, modules="numpy")


def lambdify_torch(args, expr):
    """The torch function of ``expr`` as :mod:`numerics.erf` lambdified it."""
    return sp.lambdify(args, expr, modules="torch")


def source_hashes() -> dict:
    """``{path: sha256 hex}`` of :data:`SOURCES` (paths relative to the repository root)."""
    return {path: hashlib.sha256((ROOT / path).read_bytes()).hexdigest() for path in SOURCES}


def _parse(fn) -> tuple:
    """``(source, node, free)``: lambdify's source of ``fn``, its function node and the names it reads from its
    namespace (sorted)."""
    src = inspect.getsource(fn)
    (node,) = ast.parse(src).body
    if not (isinstance(node, ast.FunctionDef) and node.name == "_lambdifygenerated") or not src.startswith(_HEAD):
        raise RuntimeError("unexpected lambdify output")
    bound = {a.arg for a in node.args.args}
    bound |= {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    free = sorted({n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)} - bound)
    for name in free:
        if name not in fn.__globals__ and not hasattr(builtins, name):
            raise RuntimeError(f"lambdified code uses an unbound name {name!r}")
    return src, node, free


def numpy_source(name: str, args, expr) -> tuple:
    """``(source, imports)``: lambdify's NumPy source of ``expr`` as a function called ``name``, and the
    ``from numpy import ...`` clauses it needs."""
    fn = lambdify_numpy(args, expr)
    src, _, free = _parse(fn)
    imports = set()
    for n in free:
        if n in fn.__globals__:
            clause = numpy_import(n, fn.__globals__[n])
            if clause is not None:
                imports.add(clause)
    return f"def {name}(" + src[len(_HEAD):].rstrip() + "\n", imports


def torch_source(name: str, args, expr) -> str:
    """lambdify's torch source of ``expr`` as a function ``name(xp, *args)``, every name of its torch namespace
    read as ``xp.<name>`` (checked to be the torch object of that name)."""
    import torch

    fn = lambdify_torch(args, expr)
    src, node, free = _parse(fn)
    if "xp" in {a.arg for a in node.args.args}:
        raise RuntimeError("an argument is called xp")
    module_names = set()
    for n in free:
        if n not in fn.__globals__:
            continue  # a builtin lambdify's namespace does not shadow
        if getattr(torch, n, None) is not fn.__globals__[n]:
            raise RuntimeError(f"lambdified torch code uses {n!r} = {fn.__globals__[n]!r}, which is no torch object")
        module_names.add(n)
    lines = src.splitlines(keepends=True)
    spots = sorted({(n.lineno, n.col_offset) for n in ast.walk(node)
                    if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load) and n.id in module_names},
                   reverse=True)
    for lineno, col in spots:  # the source is ASCII: ast offsets are character offsets
        line = lines[lineno - 1]
        lines[lineno - 1] = line[:col] + "xp." + line[col:]
    src = "".join(lines)
    rest = src[len(_HEAD):]
    sep = "" if rest.startswith(")") else ", "
    return f"def {name}(xp{sep}" + rest.rstrip() + "\n"


def _key_name(key: tuple) -> str:
    return "".join(f"_{k}" for k in key)


def generate() -> str:
    """The source of the generated module (deterministic: same SymPy, same sources, same text)."""
    functions, imports = [], set()
    pair_table, self_table, torch_table = [], [], []
    for part in PARTS:
        for kind, partials, args, table in (("pair", T.pair_partials(part), PAIR_ARGS, pair_table),
                                            ("self", T.self_partials(part), SELF_ARGS, self_table)):
            entries = []
            for key, expr in partials.items():
                name = f"{kind}_{part}{_key_name(key)}"
                src, imp = numpy_source(name, args, expr)
                functions.append(src)
                imports |= imp
                entries.append(f"        {key!r}: {name},\n")
            table.append(f"    {part!r}: {{\n" + "".join(entries) + "    },\n")
    for part in PARTS:
        name = f"torch_pair_{part}"
        functions.append(torch_source(name, PAIR_ARGS, T.pair_term(part)))
        torch_table.append(f"    {part!r}: {name},\n")
    hashes = "".join(f"    {path!r}: {digest!r},\n" for path, digest in source_hashes().items())
    header = (
        f'"""GENERATED by `{COMMAND}` from the SymPy derivation in theory/erf.py (SymPy {sp.__version__}).\n'
        "\n"
        "DO NOT EDIT BY HAND: change theory/erf.py (or theory/erf_codegen.py) and run the command again\n"
        "(tests/test_erf_codegen.py checks that regenerating gives this file byte for byte, and that\n"
        "SOURCE_SHA256 matches the sources).\n"
        "\n"
        "``PAIR[part][key]``: the partial ``key`` (``()``, ``('p',)``, ..., ``('D', 'D')``) of the pair term of\n"
        "``part`` (``'L'``, ``'J'``, ``'J2'``) in the independent variables ``(p, q, c, g, D)``\n"
        "(theory.erf.pair_partials), a function of ``(p, q, c, g, D)``; ``SELF[part][key]``: the partials of the\n"
        "self term in ``(p, g)`` (theory.erf.self_partials), functions of ``(p, g)``.  The bodies are\n"
        "sympy.lambdify's (modules='numpy', no cse); a constant partial returns a constant.\n"
        "``TORCH_PAIR[part](xp, p, q, c, g, D)``: the pair term (theory.erf.pair_term) as\n"
        "sympy.lambdify(modules='torch') writes it, its torch names read from ``xp`` (pass ``torch``).\n"
        '"""\n'
    )
    lines = [header, "# flake8: noqa\n",
             "from numpy import " + ", ".join(sorted(imports, key=str.lower)) + "\n" if imports else "",
             "\n", "SOURCE_SHA256 = {\n", hashes, "}\n", "\n"]
    for src in functions:
        lines += ["\n", src, "\n"]
    lines += ["\nPAIR = {\n", *pair_table, "}\n", "\nSELF = {\n", *self_table, "}\n",
              "\nTORCH_PAIR = {\n", *torch_table, "}\n"]
    return "".join(lines)


def write(path: Path = TARGET) -> bool:
    """Write the generated module to ``path``; ``True`` if its content changed."""
    return write_text(path, generate())


def main(argv=None) -> int:
    return command_line(argv, command=COMMAND, target=TARGET, generate_text=generate,
                        description=__doc__.splitlines()[0])


if __name__ == "__main__":
    sys.exit(main())
