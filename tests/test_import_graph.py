"""The house stands: the project's import graph, read from the source with ``ast``, has no cycle and no arrow
against the layer order theory -> numerics -> verify -> benchmarks (docs/architecture.md).

Every ``import`` counts, function-local ones included: a function-local import hides a cycle from the
interpreter (it runs later) but not from a reader who follows the code.  A module depends on what it names:
``from pkg import submodule`` is an arrow to the submodule, ``from pkg import name`` an arrow to the package.
"""
import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ("theory", "numerics", "verify", "benchmarks")  # lowest first: an arrow may only point down this list


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_modules() -> dict:
    """``{module name: path}`` of every Python module of the four layers."""
    return {_module_name(p): p for layer in LAYERS for p in sorted((ROOT / layer).rglob("*.py"))}


def _targets(module: str, node, is_package: bool, modules: dict) -> set:
    """The project modules an import statement of ``module`` names."""
    if isinstance(node, ast.Import):
        return {a.name for a in node.names} & set(modules)
    base = module.split(".") if is_package else module.split(".")[:-1]
    if node.level:  # relative: climb level - 1 packages above this module's package
        base = base[:len(base) - (node.level - 1)]
        prefix = ".".join(base + ([node.module] if node.module else []))
    else:
        prefix = node.module
    subs = {f"{prefix}.{a.name}" for a in node.names} & set(modules)
    names_only_submodules = len(subs) == len(node.names)
    return (subs if names_only_submodules else subs | {prefix}) & set(modules)


def import_graph(modules: dict) -> dict:
    """``{module: set of project modules it imports}``, every import statement counted."""
    graph = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        is_package = path.name == "__init__.py"
        graph[name] = set()
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                graph[name] |= _targets(name, node, is_package, modules) - {name}
    return graph


def cycles(graph: dict) -> list:
    """The strongly connected components with more than one module (Tarjan's algorithm, iterative)."""
    index, low, on_stack, stack, found, counter = {}, {}, set(), [], [], [0]

    def visit(root):
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter[0]
        counter[0] += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            v, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    component = []
                    while True:
                        w = stack.pop()
                        on_stack.discard(w)
                        component.append(w)
                        if w == v:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
            elif child not in index:
                index[child] = low[child] = counter[0]
                counter[0] += 1
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(sorted(graph[child]))))
            elif child in on_stack:
                low[v] = min(low[v], index[child])

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def arrows_against_the_layers(graph: dict) -> list:
    rank = {layer: i for i, layer in enumerate(LAYERS)}
    return sorted((a, b) for a, targets in graph.items() for b in targets
                  if rank[b.split(".")[0]] > rank[a.split(".")[0]])


@pytest.fixture(scope="module")
def graph():
    return import_graph(project_modules())


def test_no_import_cycle(graph):
    assert cycles(graph) == []


def test_every_arrow_points_down_the_layers(graph):
    assert arrows_against_the_layers(graph) == []


def test_the_graph_reader_sees_cycles_and_layer_breaks():
    """The two checks above can fail: on a hand-made graph they find what is there."""
    g = {"theory.a": {"numerics.b"}, "numerics.b": {"numerics.c"}, "numerics.c": {"numerics.b"},
         "verify.d": {"theory.a"}}
    assert cycles(g) == [["numerics.b", "numerics.c"]]
    assert arrows_against_the_layers(g) == [("theory.a", "numerics.b")]
    assert cycles({"x.a": {"x.b"}, "x.b": set()}) == []


def test_the_graph_reader_resolves_relative_and_submodule_imports():
    modules = {"verify.training": None, "verify.training.judge": None, "verify.training_mnist": None,
               "verify.training_mnist.judge": None, "verify.report": None}
    rel = ast.parse("from ..training_mnist import judge").body[0]
    assert _targets("verify.training.judge", rel, False, modules) == {"verify.training_mnist.judge"}
    name = ast.parse("from ..report import fmt").body[0]
    assert _targets("verify.training.judge", name, False, modules) == {"verify.report"}
    here = ast.parse("from . import judge").body[0]
    assert _targets("verify.training", here, True, modules) == {"verify.training.judge"}
