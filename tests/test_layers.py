"""The import structure of the package: one direction of imports between layers, and no
cycle between packages or between modules.

Every import in every module counts, at module level, inside functions and under
`TYPE_CHECKING` alike: a function-level import that closes a cycle only hides it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"

# The layers, lowest first: a module imports only from its own layer or the ones below.
# A package is sbasr's top-level package (`sbasr.asr` includes `sbasr.asr.engines`); a
# module directly under `sbasr` (the public names in `sbasr/__init__.py`, `__main__`,
# `examples`) is a unit of its own.
LAYERS: list[tuple[str, ...]] = [
    ("sbasr.core", "sbasr.io", "sbasr.scoring", "sbasr.examples"),
    ("sbasr.whisper", "sbasr.speechllm"),
    ("sbasr.asr", "sbasr"),
    ("sbasr.training",),
    ("sbasr.cli", "sbasr.__main__"),
]


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted((SRC / "sbasr").rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _is_package(module: str) -> bool:
    return MODULES[module].name == "__init__.py"


def _imports(module: str) -> set[str]:
    """The sbasr modules `module` imports, anywhere in its body."""
    package = module if _is_package(module) else module.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(MODULES[module].read_text(), str(MODULES[module]))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            # `from package import submodule` imports the submodule
            names = [
                f"{target}.{a.name}" if f"{target}.{a.name}" in MODULES else target
                for a in node.names
            ]
        else:
            continue
        found.update(n for n in names if n in MODULES and n != module)
    return found


GRAPH = {m: _imports(m) for m in MODULES}


def _unit(module: str) -> str:
    """The package a module belongs to for the package-level graph."""
    parts = module.split(".")
    if len(parts) == 1 or (len(parts) == 2 and not _is_package(module)):
        return module
    return ".".join(parts[:2])


def _layer(module: str) -> int:
    unit = _unit(module)
    for index, members in enumerate(LAYERS):
        if unit in members:
            return index
    raise AssertionError(f"{module}: in no layer of LAYERS")


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of `graph`, as the list of its nodes (first repeated last), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_the_graph_is_read_from_every_module():
    # a check on the reader itself: known edges of each kind are found
    assert "sbasr.core.errors" in GRAPH["sbasr.asr.options"]  # from ..core.errors import
    assert "sbasr.asr.engines.registry" in GRAPH["sbasr.cli.transcribe"]  # from pkg import mod
    assert len(MODULES) > 50


def test_every_module_is_in_a_layer():
    for module in MODULES:
        _layer(module)


def test_imports_run_down_the_layers():
    wrong = [
        f"{a} (layer {_layer(a)}) imports {b} (layer {_layer(b)})"
        for a, targets in GRAPH.items()
        for b in sorted(targets)
        if _layer(b) > _layer(a)
    ]
    assert not wrong, "\n".join(wrong)


def test_no_import_cycle_between_modules():
    cycle = _cycle(GRAPH)
    assert cycle is None, " -> ".join(cycle)


def test_no_import_cycle_between_packages():
    packages: dict[str, set[str]] = {}
    for a, targets in GRAPH.items():
        packages.setdefault(_unit(a), set()).update(
            _unit(b) for b in targets if _unit(b) != _unit(a)
        )
    cycle = _cycle(packages)
    assert cycle is None, " -> ".join(cycle)


@pytest.mark.parametrize("graph", [{"a": {"b"}, "b": {"c"}, "c": {"a"}}, {"a": {"a"}}])
def test_the_cycle_finder_finds_a_cycle(graph):
    assert _cycle(graph) is not None
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_the_largest_module_is_under_450_lines():
    sizes = {m: len(p.read_text().splitlines()) for m, p in MODULES.items()}
    big = {m: n for m, n in sizes.items() if n >= 450}
    assert not big, big
