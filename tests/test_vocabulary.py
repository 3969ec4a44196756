"""The words for the objects are spelled once (theory/vocabulary.py) and importing them costs no SymPy."""
import ast
import subprocess
import sys
from pathlib import Path

from theory import vocabulary

ROOT = Path(__file__).resolve().parents[1]
SPELLED_ONCE = {vocabulary.HESSIAN_FIELDS, vocabulary.FLOWS}  # the tuples no other module may type again


def tuple_literals(path: Path) -> set:
    """Every tuple of string constants written in ``path``."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Tuple) and node.elts and all(
                isinstance(e, ast.Constant) and isinstance(e.value, str) for e in node.elts):
            found.add(tuple(e.value for e in node.elts))
    return found


def test_the_hessian_kinds_and_the_flows_are_spelled_once():
    where = {}
    for layer in ("theory", "numerics", "verify", "benchmarks"):
        for path in sorted((ROOT / layer).rglob("*.py")):
            for words in tuple_literals(path) & SPELLED_ONCE:
                where.setdefault(words, []).append(str(path.relative_to(ROOT)))
    assert where == {words: ["theory/vocabulary.py"] for words in SPELLED_ONCE}


def test_the_public_api_checks_its_arguments_against_the_vocabulary():
    from numerics import validation

    assert validation.HESSIAN_FIELDS is vocabulary.HESSIAN_FIELDS
    assert validation.GRADIENT_FIELDS is vocabulary.GRADIENT_FIELDS and validation.PARTS is vocabulary.PARTS


def test_importing_the_vocabulary_loads_no_sympy():
    code = "import sys, theory.vocabulary; print('sympy' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                          check=True).stdout.strip() == "False"
