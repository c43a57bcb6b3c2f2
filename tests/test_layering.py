"""The packages' layering: no import cycles inside ``detector/`` and ``training/``, and the detector never needs
the training code.

Read from the source with ``ast``, so every import counts: top-level ones, the lazy ones inside functions and
the ones under ``if TYPE_CHECKING:``. A cycle means two modules cannot be read (or loaded) one before the other;
it is broken by moving what both need into a module below them, not by hiding one import inside a function.
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("detector", "training")


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_modules() -> dict[str, Path]:
    return {module_name(p): p for package in PACKAGES for p in sorted((REPO / package).glob("*.py"))}


def imported_modules(path: Path, modules: dict[str, Path]) -> set[str]:
    """The project modules ``path`` imports anywhere in its source (``from pkg import submodule`` counts as the
    submodule; ``from pkg.mod import name`` as ``pkg.mod``)."""
    own = module_name(path)
    package = own if path.name == "__init__.py" else own.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against this module's package
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            for alias in node.names:
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base)
    # `import a.b.c` names a.b.c; keep the longest project module each import names
    edges = set()
    for name in found:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        if name and name != own:
            edges.add(name)
    return edges


def import_graph() -> dict[str, set[str]]:
    modules = project_modules()
    return {name: imported_modules(path, modules) for name, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle (``[a, b, ..., a]``), or None when the graph is acyclic."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


def test_the_import_graph_is_read_from_the_source() -> None:
    graph = import_graph()
    assert "detector.detector" in graph["detector.router"]  # the router is built on Detector
    assert "training.config" in graph["training.evaluate"]
    assert "detector.lm" in graph["detector.quantize"] or "detector.quantize" in graph["detector.lm"]  # lazy import
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_two_modules_import_each_other() -> None:
    graph = import_graph()
    mutual = sorted((a, b) for a, deps in graph.items() for b in deps if a < b and a in graph.get(b, ()))
    assert mutual == [], f"modules importing each other: {mutual}"


def test_no_import_cycles() -> None:
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_detector_does_not_import_training() -> None:
    graph = import_graph()
    leaks = {name: sorted(d for d in deps if d.split(".")[0] == "training")
             for name, deps in graph.items() if name.split(".")[0] == "detector"}
    assert not {k: v for k, v in leaks.items() if v}, leaks


def test_detector_does_not_know_the_router() -> None:
    """``Detector`` is one bundle on one backbone; routing by language is a layer above it."""
    assert "detector.router" not in import_graph()["detector.detector"]
