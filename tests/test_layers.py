"""The package's shape: no import cycle, no import from a lower layer up to a higher one,
and no module over 500 lines (issue #22).

How it is checked: every ``import`` in every module of ``dmlbook`` (at module level and
inside functions alike; only ``if TYPE_CHECKING:`` blocks, which never run, are left out)
is read from the source with :mod:`ast`, resolved to a module of the package, and
checked against :data:`LAYERS`: a module may import from its own layer or from lower
ones, and the import graph has no cycle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "dmlbook"

# The layers, lowest first. A name covers the module and, for a package, everything in it.
# A module in no layer fails the test with its name.
LAYERS = [
    # 0. Foundations: units and bounds, the sheet, thread settings (the package root),
    #    claims over seeds.
    {"dmlbook", "dmlbook.units", "dmlbook.sheet", "dmlbook.claims", "dmlbook.progress",
     "dmlbook.glued"},
    # 1. Data, models, graphs, records of messages, faults, timing.
    {"dmlbook.data", "dmlbook.models", "dmlbook.topology", "dmlbook.ledger",
     "dmlbook.faults", "dmlbook.compute"},
    # 2. Closed forms of the exercises.
    {"dmlbook.bandwidth", "dmlbook.costs", "dmlbook.messages", "dmlbook.compression",
     "dmlbook.comm_model"},
    # 3. The stacked engine.
    {"dmlbook.engine", "dmlbook.stacked", "dmlbook.mixing"},
    # 4. Collectives and the centralized baseline, on the engine.
    {"dmlbook.collectives", "dmlbook.centralized"},
    # 5. The simulators of the exercises.
    {"dmlbook.dpsgd", "dmlbook.allreduce", "dmlbook.federated", "dmlbook.gossip"},
    # 6. Real processes, the week table, the self-checks, the chapters' cached runs.
    {"dmlbook.distributed", "dmlbook.week", "dmlbook.selfcheck", "dmlbook.predictions",
     "dmlbook.scenarios", "dmlbook.dp_study", "dmlbook.questions_ex1_3",
     "dmlbook.lecturers"},
    # 7. Presentation: figures and widgets.
    {"dmlbook.plotting", "dmlbook.widgets", "dmlbook.static_explorer", "dmlbook.labview",
     "dmlbook.equations"},
    # 8. The chapters' panels.
    {"dmlbook.explore"},
    # 9. The workbook's checks and reference solutions.
    {"dmlbook.check", "dmlbook.reference"},
]
# No exceptions: the check/ package replaced check.py and its cycle with reference.py.
KNOWN_CYCLES: set = set()
MAX_LINES = 500
KNOWN_LONG: set = set()


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(name: str, path: Path, modules: dict) -> set[str]:
    """The package's modules that ``name`` imports."""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    targets = set()

    def visit(node):
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(package[:len(package) - node.level + 1])
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            for alias in node.names:
                full = f"{module}.{alias.name}"
                targets.add(full if full in modules else module)
        elif isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8")))
    return {t for t in targets if t in modules and t != name}


def _layer(name: str) -> int:
    matches = [(len(entry), i) for i, layer in enumerate(LAYERS) for entry in layer
               if name == entry or name.startswith(entry + ".")]
    if not matches:
        pytest.fail(f"{name} is in no layer: add it to LAYERS in tests/test_layers.py")
    return max(matches)[1]


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def test_every_module_has_a_layer():
    for name in _modules():
        _layer(name)


def test_no_import_runs_up_the_layers():
    upward = sorted((name, target) for name, targets in _graph().items() for target in targets
                    if _layer(target) > _layer(name))
    assert upward == [], "imports from a lower layer up to a higher one"


def _cycles(graph):
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, found, counter = {}, {}, [], set(), [], [0]

    def connect(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(frozenset(component))

    for v in sorted(graph):
        if v not in index:
            connect(v)
    return found


def test_no_import_cycle():
    graph = _graph()
    # A package importing its own modules (to re-export them) is not a cycle by itself.
    cycles = [c for c in _cycles(graph) if c not in KNOWN_CYCLES]
    assert cycles == [], f"import cycles: {[sorted(c) for c in cycles]}"


def test_the_checker_sees_a_cycle_and_an_upward_import():
    """The checks above would fail on a cycle or an upward import (guards the checker)."""
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [
        frozenset({"a", "b", "c"})]
    graph = _graph()
    assert "dmlbook.engine" in graph["dmlbook.dpsgd"]  # imports are resolved
    assert "dmlbook.engine" not in graph["dmlbook.collectives"]  # TYPE_CHECKING only
    assert _layer("dmlbook.plotting.ex3") > _layer("dmlbook.allreduce")


def test_no_module_passes_500_lines():
    long = {str(path.relative_to(PACKAGE.parent)): len(path.read_text().splitlines())
            for path in PACKAGE.rglob("*.py")}
    over = {p: n for p, n in long.items() if n > MAX_LINES and p not in KNOWN_LONG}
    assert over == {}, f"modules over {MAX_LINES} lines"
