"""The layers import one way only, and no package imports another in a circle.

    model  <-  training, store  <-  service, batch  <-  triage (the command line)

Every module's syntax tree is walked, imports inside functions included, so a deferred import
cannot hide a dependency. See ARCHITECTURE.md.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# What each package may import (besides itself and third-party libraries).
ALLOWED: dict[str, set[str]] = {
    "model": set(),
    "training": {"model"},
    "store": {"model"},
    "service": {"model", "store"},
    "batch": {"model", "training", "store"},
    "triage": {"model", "training", "store", "service", "batch"},
}


def imported_packages(path: Path) -> set[tuple[str, int]]:
    """(top-level project package, line) for every import in the file, at any depth."""
    found: set[tuple[str, int]] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        found.update((name.split(".")[0], node.lineno) for name in names if name.split(".")[0] in ALLOWED)
    return found


def package_graph() -> dict[str, dict[str, list[str]]]:
    """package -> imported package -> the places (file:line) that import it."""
    graph: dict[str, dict[str, list[str]]] = {package: {} for package in ALLOWED}
    for package in ALLOWED:
        for path in sorted((ROOT / package).rglob("*.py")):
            for target, line in imported_packages(path):
                if target != package:
                    graph[package].setdefault(target, []).append(f"{path.relative_to(ROOT)}:{line}")
    return graph


def test_every_package_imports_only_the_layers_below_it() -> None:
    wrong = [
        f"{package} -> {target} ({', '.join(places)})"
        for package, targets in package_graph().items()
        for target, places in targets.items()
        if target not in ALLOWED[package]
    ]
    assert not wrong, "imports running up or across the layers:\n" + "\n".join(wrong)


def test_the_allowed_graph_has_no_cycle() -> None:
    """The rule itself must be a hierarchy: following allowed imports never leads back."""

    def reaches(start: str, goal: str, seen: frozenset[str] = frozenset()) -> bool:
        return any(
            target == goal or (target not in seen and reaches(target, goal, seen | {target}))
            for target in ALLOWED[start]
        )

    assert not [package for package in ALLOWED if reaches(package, package)]


def test_modules_within_a_package_import_without_cycles() -> None:
    """Module-level import cycles inside a package (imports in functions and TYPE_CHECKING included)."""
    modules: dict[str, set[str]] = {}
    for package in ALLOWED:
        for path in (ROOT / package).rglob("*.py"):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
            targets: set[str] = set()
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    # `from store import rules` depends on store.rules, not on store/__init__.py.
                    submodules = {f"{node.module}.{alias.name}" for alias in node.names}
                    named = {
                        module
                        for module in submodules
                        if (ROOT / module.replace(".", "/")).with_suffix(".py").is_file()
                    }
                    targets.update(named)
                    if len(named) < len(submodules):
                        targets.add(node.module)
                elif isinstance(node, ast.Import):
                    targets.update(alias.name for alias in node.names)
            modules[name] = targets
    graph = {
        name: {target for target in targets if target in modules and target != name}
        for name, targets in modules.items()
    }
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                cycles.append([*trail[trail.index(target) :], target] if target in trail else [node, target])
            elif target not in state:
                visit(target, [*trail, target])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(cycle) for cycle in cycles)


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_every_layer_is_a_package(package: str) -> None:
    assert (ROOT / package / "__init__.py").is_file()
