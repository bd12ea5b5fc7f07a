"""How the test suite and the benchmarks are put together: read from their source with ``ast``, nothing imported.

- Tests share through helper modules (``tests/helpers.py``, ``tests/reference.py``, ``tests/releases/``, ...)
  and fixtures through pytest plugins (``tests/plugins/``, registered in ``tests/conftest.py``): no module of
  ``tests/`` imports a ``test_*`` module or a ``conftest`` (a fixture imported from a test file runs under
  two names, needs a ``noqa`` and ties one test file to another's internals).
- ``benchmarks/`` has no import cycle: the report renders the benchmarks' results; the benchmarks that
  re-render it after a run import it, never the other way round.
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.paths import REPO

TESTS = REPO / "tests"
BENCHMARKS = REPO / "benchmarks"


def imported_modules(path: Path, package: str, root: Path = REPO) -> set[str]:
    """Every module ``path`` imports, absolute (relative imports resolved), including ``from x import y`` as
    ``x.y`` (``y`` may be a module); imports inside functions count too."""
    parts = [package, *path.relative_to(root / package).with_suffix("").parts]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            out |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = parts[:-node.level] if path.name != "__init__.py" else parts[:len(parts) - node.level]
                base = ".".join([*anchor, *([base] if base else [])])
            out.add(base)
            out |= {f"{base}.{alias.name}" for alias in node.names}
    return out


def owning_test_module(name: str) -> str | None:
    """``tests.test_x`` for ``tests.test_x`` or a name inside it (``tests.test_x.helper``); the same for
    ``tests.browser.test_y`` and any ``conftest``; None for every other name."""
    parts = name.split(".")
    if parts[0] != "tests":
        return None
    for i, part in enumerate(parts[1:], 2):
        if part.startswith("test_") or part == "conftest":
            return ".".join(parts[:i])
    return None


def test_no_module_of_the_suite_imports_a_test_module_or_a_conftest() -> None:
    offenders = []
    for path in sorted(TESTS.rglob("*.py")):
        bad = sorted({module for name in imported_modules(path, "tests") if (module := owning_test_module(name))})
        if bad:
            offenders.append(f"{path.relative_to(REPO)} imports {', '.join(bad)}")
    assert not offenders, ("share through a helper module or a fixture of tests/plugins/, not by importing a test "
                           "module or conftest:\n" + "\n".join(offenders))


def test_the_layout_check_sees_each_way_of_importing_a_test_module(tmp_path: Path) -> None:
    """The check above reads ``from tests import test_x``, ``import tests.test_x``, relative and late imports."""
    folder = tmp_path / "tests"
    folder.mkdir()
    (folder / "test_probe.py").write_text(
        "from tests import test_a as a\nimport tests.test_b\nfrom .test_c import x\nfrom . import conftest\n"
        "def f():\n    from tests.conftest import REPO\n")
    found = {owning_test_module(name) for name in imported_modules(folder / "test_probe.py", "tests", tmp_path)}
    assert found - {None} == {"tests.test_a", "tests.test_b", "tests.test_c", "tests.conftest"}
    assert owning_test_module("tests.helpers") is None and owning_test_module("tests.releases.lama") is None


def benchmark_graph() -> dict[str, set[str]]:
    """benchmarks module -> the benchmarks modules it imports."""
    names = {path.stem for path in BENCHMARKS.glob("*.py")}
    graph = {}
    for path in BENCHMARKS.glob("*.py"):
        found = {name.split(".")[1] for name in imported_modules(path, "benchmarks")
                 if name.startswith("benchmarks.") and len(name.split(".")) > 1}
        graph[path.stem] = (found & names) - {path.stem, "__init__"}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a path that returns to its start, or None."""
    state: dict[str, str] = {}  # "open" while on the current path, "done" after

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = "open"
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt, [*path, nxt])):
                return cycle
        state[node] = "done"
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start, [start])):
            return cycle
    return None


def test_benchmarks_have_no_import_cycle() -> None:
    graph = benchmark_graph()
    assert "report" in graph and graph["bench_mmagic"] >= {"report"}  # the graph is read, not empty
    cycle = find_cycle(graph)
    assert cycle is None, f"benchmarks/ import cycle: {' -> '.join(cycle)}"


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
