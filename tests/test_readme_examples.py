"""The README's Python blocks run as written, in order, in one namespace (as a reader pastes them), and every
line whose comment starts with a shape -- ``numerics.hessian(W, W_star, "H", "mean")  # (30, 30): ...`` --
returns an array of that shape (a comment starting with ``float`` or ``0-d tensor``: a scalar).

The default run shrinks the Monte-Carlo sample counts (``10**6`` -> 4000, ...; shapes do not depend on them,
and the witnesses' accuracy is tested elsewhere); the ``slow`` variant runs the blocks verbatim (~2 min)."""
import re
from pathlib import Path

import numpy as np
import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCK = re.compile(r"```python\n(.*?)```", re.S)
SHAPE = re.compile(r"^(?P<expr>[^#=]+?)\s+#\s*\((?P<shape>[\d, ]+)\)")
SCALAR = re.compile(r"^(?P<expr>[^#=]+?)\s+#\s*(float|0-d tensor)\b")


SMALLER = {"10**6": "4000", "10**5": "3000", "10**4": "2000"}  # sample counts, order kept (running estimates)


def blocks() -> list:
    return BLOCK.findall(README.read_text())


def shrunk(block: str) -> str:
    for big, small in SMALLER.items():
        block = block.replace(big, small)
    return block


def claimed_shapes(block: str) -> list:
    """``(expression, shape)`` for each line of ``block`` whose comment states a shape (``()`` for a scalar)."""
    out = []
    for line in block.splitlines():
        if m := SHAPE.match(line):
            out.append((m["expr"].strip(), tuple(int(n) for n in m["shape"].replace(" ", "").split(",") if n)))
        elif m := SCALAR.match(line):
            out.append((m["expr"].strip(), ()))
    return out


def test_the_readme_has_python_examples_with_stated_shapes():
    assert len(blocks()) >= 3
    assert sum(len(claimed_shapes(b)) for b in blocks()) >= 8  # the checks below check something


def test_the_shape_reader_reads_the_comments():
    assert claimed_shapes('numerics.hessian(Ws, W_star, "H", "mean")        # (8, 30, 30); a bad instance') == \
        [('numerics.hessian(Ws, W_star, "H", "mean")', (8, 30, 30))]
    assert claimed_shapes('numerics.loss(W, W_star, "H")                    # float: H = L + J') == \
        [('numerics.loss(W, W_star, "H")', ())]
    assert claimed_shapes("x = f(y)   # (3, 10)") == []  # an assignment states no result shape
    assert shrunk("monte_carlo(W, W_star, [10**3, 10**4, 10**5])") == "monte_carlo(W, W_star, [10**3, 2000, 3000])"


@pytest.mark.parametrize("verbatim", [False, pytest.param(True, marks=pytest.mark.slow)])
def test_readme_examples_run_and_return_the_stated_shapes(verbatim):
    pytest.importorskip("torch")
    namespace = {}
    for block in blocks():
        code = block if verbatim else shrunk(block)
        exec(compile(code, str(README), "exec"), namespace)  # noqa: S102 -- the README's own code
        for expr, shape in claimed_shapes(code):
            value = eval(expr, namespace)  # noqa: S307
            got = tuple(value.shape) if hasattr(value, "shape") else np.shape(value)
            assert got == shape, f"README: {expr} has shape {got}, the comment says {shape}"
