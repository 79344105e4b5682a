"""dmlbook.check sits on top of the package (issue #22): nothing below imports it, and
inside it the layers run one way: display <- guard <- harness <- network <- reference <-
pages <- __init__."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "dmlbook"


def imports(path: Path) -> set[str]:
    """The dmlbook modules a file imports, as dotted names relative to dmlbook."""
    found = set()
    folder = path.parent.relative_to(PACKAGE).parts
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = list(folder[:len(folder) - node.level + 1])
                target = base + (node.module.split(".") if node.module else [])
            elif node.module and node.module.startswith("dmlbook"):
                target = node.module.split(".")[1:]
            else:
                continue
            names = [a.name for a in node.names]
            found.add(".".join(target) if target else ".".join(names))
            found.update(".".join(target + [n]) for n in names
                         if (PACKAGE.joinpath(*target, n + ".py")).exists())
        elif isinstance(node, ast.Import):
            found.update(a.name.split(".", 1)[1] for a in node.names
                         if a.name.startswith("dmlbook."))
    return found


def test_nothing_outside_the_check_package_imports_it():
    for path in PACKAGE.rglob("*.py"):
        if "check" in path.relative_to(PACKAGE).parts or path.name == "reference.py":
            continue  # dmlbook/reference.py is the old name of check.reference
        assert not any(m == "check" or m.startswith("check.") for m in imports(path)), path


def test_the_check_package_imports_downwards_only():
    order = ["display", "guard", "harness", "network", "reference"]
    for path in (PACKAGE / "check").glob("*.py"):
        inner = {m.split(".", 1)[1] for m in imports(path) if m.startswith("check.")}
        name = path.stem
        if name in order:
            assert inner <= set(order[:order.index(name)]), (name, inner)
        elif name != "__init__":  # a page's module
            assert inner <= set(order), (name, inner)
