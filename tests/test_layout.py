"""The shape of the code: no import cycle, packages depend one way, modules stay small."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import ROOT

PACKAGES = ["core", "curation", "recipes", "annotation", "data_cards", "trainer", "traitdose"]
SIDE_BY_SIDE = {"recipes", "annotation", "data_cards", "trainer"}
MAX_LINES = 400


def modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
            found[name] = path
    return found


def module_imports(path: Path, known: dict[str, Path]) -> set[str]:
    """Project modules ``path`` imports when it is imported (not inside functions or TYPE_CHECKING)."""
    out: set[str] = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            continue
        for child in [node, *ast.walk(node)] if isinstance(node, ast.If | ast.Try) else [node]:
            if isinstance(child, ast.ImportFrom) and child.module:
                out |= {m for a in child.names if (m := f"{child.module}.{a.name}") in known}
                out |= {child.module} if child.module in known else set()
            elif isinstance(child, ast.Import):
                out |= {a.name for a in child.names if a.name in known}
    return out


def test_no_import_cycle():
    known = modules()
    graph = {name: module_imports(path, known) for name, path in known.items()}
    state: dict[str, int] = {}  # 1: on the path, 2: done

    def visit(name: str, path: list[str]) -> None:
        state[name] = 1
        for nxt in graph[name]:
            assert state.get(nxt) != 1, "import cycle: " + " → ".join([*path, name, nxt])
            if nxt not in state:
                visit(nxt, [*path, name])
        state[name] = 2

    for name in graph:
        if name not in state:
            visit(name, [])


def test_side_by_side_packages_do_not_import_each_other_and_core_imports_none():
    known = modules()
    for name, path in known.items():
        package = name.split(".")[0]
        for target in module_imports(path, known):
            other = target.split(".")[0]
            if package == "core":
                assert other == "core", f"{name} imports {target}: core is the ground"
            if package in SIDE_BY_SIDE and other in SIDE_BY_SIDE:
                assert other == package, f"{name} imports {target}"


def test_no_module_is_over_the_size_limit():
    too_long = {n: len(p.read_text().splitlines()) for n, p in modules().items()}
    assert {n: k for n, k in too_long.items() if k > MAX_LINES} == {}
