"""The package's import graph has no cycle: neither among module-level imports nor counting the imports inside
functions (a cycle hidden in a function is still a cycle; it only fails later). Read from the source with ast."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = {"robustbench_bytes": ROOT / "robustbench_bytes"}


def modules() -> dict[str, Path]:
    found = {}
    for package, folder in PACKAGES.items():
        for path in folder.rglob("*.py"):
            parts = list(path.relative_to(folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join([package, *parts])] = path
    return found


def imported(name: str, path: Path, known: dict, inside_functions: bool) -> set[str]:
    """The package modules `name` imports (a `from P import m` of a submodule counts as P.m)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out = set()
    for node in (ast.walk(tree) if inside_functions else tree.body):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = name if path.name == "__init__.py" else name.rpartition(".")[0]
                for _ in range(node.level - 1):
                    package = package.rpartition(".")[0]
                base = f"{package}.{base}" if base else package
            out |= {f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names}
    return {m for m in out if m in known and m != name}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while not component or component[-1] != v:
                component.append(stack.pop())
                on_stack.discard(component[-1])
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_in_the_package():
    known = modules()
    assert "robustbench_bytes.runs" in known and "robustbench_bytes.kernels.reference" in known
    for inside_functions in (False, True):
        graph = {name: imported(name, path, known, inside_functions) for name, path in known.items()}
        assert graph["robustbench_bytes.tasks"] >= {"robustbench_bytes.tasks.builtin"}
        assert cycles(graph) == [], f"import cycle ({'with' if inside_functions else 'without'} function imports)"


def room(module: str) -> str:
    """The sub-package (or top-level module) a module belongs to: robustbench_bytes.gate.cells -> gate."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def test_the_sub_packages_stand_in_layers():
    """No two sub-packages import each other, even through others: a package's __init__ may import its own
    modules, but gate never needs what needs gate (imports inside functions count)."""
    known = modules()
    graph: dict[str, set[str]] = {}
    for name, path in known.items():
        graph.setdefault(room(name), set()).update(
            room(m) for m in imported(name, path, known, inside_functions=True) if room(m) != room(name))
    assert cycles(graph) == [], "sub-packages that import each other"
