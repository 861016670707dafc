"""The accountant's package shape (issue 22): imports between its modules go one way, and
``trainlab.convnets`` reaches into no other part of trainlab."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import trainlab.convnets

PACKAGE = Path(trainlab.convnets.__file__).parent
# the other parts of trainlab (its subpackages): a convnets module imports none of them
OTHER_PARTS = sorted(f"trainlab.{p.name}" for p in PACKAGE.parent.iterdir()
                     if (p / "__init__.py").is_file() and p.name != "convnets")


def _imports(path: Path) -> set[str]:
    """Every trainlab module ``path`` imports, TYPE_CHECKING and function-level imports included."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("trainlab"):
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)  # from trainlab.convnets import rules
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("trainlab"))
    return found


def _graph() -> dict[str, set[str]]:
    modules = {f"trainlab.convnets.{p.stem}": p for p in PACKAGE.glob("*.py") if p.stem != "__init__"}
    return {name: {m for m in _imports(path) if m in modules} for name, path in modules.items()}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of ``graph`` (depth first), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*path, node, nxt]
            if nxt not in state and (found := visit(nxt, [*path, node])):
                return found
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node, [])):
            return found
    return None


def test_convnets_modules_import_each_other_without_a_cycle():
    graph = _graph()
    assert "trainlab.convnets.rules" in graph and "trainlab.convnets.tracing" in graph
    assert _cycle(graph) is None, " -> ".join(_cycle(graph) or [])
    # the direction the split promises: the tracer uses the rules, the rules the tables, never back
    assert "trainlab.convnets.op_tables" in graph["trainlab.convnets.rules"]
    assert "trainlab.convnets.rules" in graph["trainlab.convnets.tracing"]
    assert "trainlab.convnets.tracing" not in graph["trainlab.convnets.rules"]


def test_the_cycle_check_finds_a_cycle():
    graph = _graph()
    graph["trainlab.convnets.op_tables"] |= {"trainlab.convnets.tracing"}  # what the old TYPE_CHECKING did
    found = _cycle(graph)
    assert found is not None and found[0] == found[-1] or found[-1] in found[:-1]


def test_convnets_imports_no_other_part():
    assert "trainlab.colourize" in OTHER_PARTS
    for path in PACKAGE.glob("*.py"):
        for name in _imports(path):
            assert not any(name == p or name.startswith(p + ".") for p in OTHER_PARTS), (path.name, name)
    # and at run time: importing the package, its claims and its CLI loads nothing of colourize
    code = ("import sys, trainlab.convnets, trainlab.convnets.claims, trainlab.convnets.cli\n"
            "print(sorted(m for m in sys.modules if m.startswith(('trainlab.colourize', 'trainlab.optim', "
            "'trainlab.hpo', 'trainlab.scaling', 'trainlab.loops'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_no_accountant_module_is_over_about_600_lines():
    sizes = {p.name: len(p.read_text().splitlines()) for p in PACKAGE.glob("*.py")}
    assert max(sizes.values()) <= 650, sizes
