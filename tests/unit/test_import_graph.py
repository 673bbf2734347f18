"""The project's import graph, read from the source with `ast` (nothing is imported): no cycle
among module-level imports, the leaves import only leaves, and only the model package imports an
inference engine.

Function-level (lazy) imports are collected separately: they run after every module has loaded,
so they cannot deadlock an import, but the leaves must not reach up through them either.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCES = {ROOT / "function": "", ROOT / "infra": "infra"}  # directory -> module prefix
SKIPPED = ("node_modules", "__pycache__")
LEAVES = (
    "autotagger.domain",
    "autotagger.config",
    "autotagger.config_values",
    "autotagger.errors",
    "autotagger.logs",
    "autotagger.parsing",
    "autotagger.retry",
)
ENGINES = ("tensorflow", "openvino", "ai_edge_litert", "tflite_runtime", "keras")
ENGINE_OWNER = "autotagger.model"


@dataclass
class Imports:
    """What one module imports: project modules (module-level / lazy) and top-level packages."""

    eager: set[str] = field(default_factory=set)
    lazy: set[str] = field(default_factory=set)
    packages: set[str] = field(default_factory=set)  # every top-level name, at any level


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for directory, prefix in SOURCES.items():
        for path in directory.rglob("*.py"):
            relative = path.relative_to(directory)
            if any(part in SKIPPED for part in relative.parts):
                continue
            parts = list(relative.with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            name = ".".join(([prefix] if prefix else []) + parts)
            if name:
                found[name] = path
    return found


MODULES = _modules()


def _is_package(name: str) -> bool:
    return MODULES[name].name == "__init__.py"


def _resolve(importer: str, node: ast.Import | ast.ImportFrom) -> Iterator[tuple[str, str]]:
    """(top-level package, project module or "") for each name `node` imports."""
    if isinstance(node, ast.Import):
        for alias in node.names:
            yield alias.name.split(".")[0], _project(alias.name)
        return
    base = node.module or ""
    if node.level:
        package = importer if _is_package(importer) else importer.rpartition(".")[0]
        for _ in range(node.level - 1):
            package = package.rpartition(".")[0]
        base = f"{package}.{base}".strip(".") if base else package
    for alias in node.names:
        submodule = f"{base}.{alias.name}"
        yield base.split(".")[0], submodule if submodule in MODULES else _project(base)


def _project(name: str) -> str:
    """The project module `name` names (itself or its nearest package), or ""."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name


def _type_checking_only(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _scan(name: str) -> Imports:
    tree = ast.parse(MODULES[name].read_text(), str(MODULES[name]))
    found = Imports()

    def visit(node: ast.AST, lazy: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import | ast.ImportFrom):
                for package, module in _resolve(name, child):
                    found.packages.add(package)
                    if module and module != name:
                        (found.lazy if lazy else found.eager).add(module)
            elif isinstance(child, ast.If) and _type_checking_only(child):
                continue  # never executed
            else:
                inner = lazy or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
                visit(child, inner)

    visit(tree, False)
    return found


GRAPH = {name: _scan(name) for name in MODULES}


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected component of more than one module (Tarjan), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(edges.get(node, ())):
            if target not in index:
                connect(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            connect(node)
    return sorted(components)


def _is_under(module: str, prefixes: tuple[str, ...] | str) -> bool:
    """Whether `module` is one of `prefixes` or inside one of them."""
    names = (prefixes,) if isinstance(prefixes, str) else prefixes
    return any(module == p or module.startswith(p + ".") for p in names)


def test_the_graph_is_read() -> None:
    """The scan finds the project (guards the other tests against an empty graph)."""
    assert {"autotagger.pipeline", "autotagger.domain", "autotagger.model.build"} <= set(GRAPH)
    assert "autotagger.domain.record" in GRAPH["autotagger.domain"].eager
    assert "autotagger.clients.store" in GRAPH["autotagger.pipeline"].eager
    assert "autotagger.model.build" in GRAPH["autotagger.model"].lazy  # int8 at load time
    assert "tensorflow" in GRAPH["autotagger.model.build"].packages


def test_cycles_are_found() -> None:
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": {"e"}}
    assert _cycles(edges) == [["a", "b", "c"]]


def test_no_cycle_among_module_level_imports() -> None:
    cycles = _cycles({name: imports.eager for name, imports in GRAPH.items()})
    assert cycles == [], f"import cycles (module-level): {cycles}"


def test_lazy_imports_are_counted_apart() -> None:
    """A lazy import may close a loop (it runs once both modules are loaded); say which do, so
    the count changes only on purpose."""
    lazy_only = _cycles({name: imports.eager | imports.lazy for name, imports in GRAPH.items()})
    eager = {name: imports.eager for name, imports in GRAPH.items()}
    for component in lazy_only:
        closing = [
            (name, target)
            for name in component
            for target in GRAPH[name].lazy - eager[name]
            if target in component
        ]
        assert closing, f"{component}: a cycle with no lazy edge is a module-level one"


def test_leaves_import_only_leaves() -> None:
    wrong = {
        name: sorted(
            target
            for target in imports.eager | imports.lazy
            if not _is_under(target, LEAVES) and target != "autotagger"
        )
        for name, imports in GRAPH.items()
        if _is_under(name, LEAVES)
    }
    assert {name for name in wrong} >= {"autotagger.domain.record", "autotagger.config"}
    assert {name: targets for name, targets in wrong.items() if targets} == {}


def test_only_the_model_package_imports_an_engine() -> None:
    """Serve-time code (everything under function/) reaches an inference runtime only through
    `autotagger.model`; infra's build-time tools may import one."""
    importers = {
        name: sorted(set(ENGINES) & imports.packages)
        for name, imports in GRAPH.items()
        if set(ENGINES) & imports.packages
    }
    serving = {
        name: engines
        for name, engines in importers.items()
        if not name.startswith("infra.") and not _is_under(name, ENGINE_OWNER)
    }
    assert serving == {}
    assert any(_is_under(name, ENGINE_OWNER) for name in importers)  # the check can see one


def _openvino_imports_unguarded(source: str) -> list[int]:
    """Lines of `source` that import openvino neither inside `import_openvino` itself nor after
    a call to it earlier in the same function."""
    tree = ast.parse(source)
    unguarded: list[int] = []

    def imports_openvino(node: ast.AST) -> bool:
        if isinstance(node, ast.Import):
            return any(alias.name.split(".")[0] == "openvino" for alias in node.names)
        return isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "openvino"

    def calls_guard(node: ast.AST) -> bool:
        return any(
            isinstance(call, ast.Call)
            and (getattr(call.func, "attr", None) or getattr(call.func, "id", None))
            == "import_openvino"
            for call in ast.walk(node)
        )

    def visit(node: ast.AST, function: str | None, guarded: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                visit(child, child.name, False)
                continue
            if (
                isinstance(child, ast.Import | ast.ImportFrom)
                and imports_openvino(child)
                and function != "import_openvino"
                and not guarded
            ):
                unguarded.append(child.lineno)
            guarded = guarded or calls_guard(child)
            visit(child, function, guarded)

    visit(tree, None, False)
    return unguarded


def test_openvino_is_imported_without_its_telemetry_everywhere() -> None:
    """`import openvino` sends a usage event (from a child forked off the importing process)
    unless its telemetry package is kept out first: every import goes through
    `engines.import_openvino`, in serving, building artifacts, the bench and the tests."""
    sources = [*MODULES.values(), *(ROOT / "tests").rglob("*.py")]
    found = {
        str(path.relative_to(ROOT)): lines
        for path in sources
        if (lines := _openvino_imports_unguarded(path.read_text()))
    }
    assert found == {}
    assert "import openvino" in MODULES["autotagger.model.engines"].read_text()  # seen there
    unguarded, guarded = "def f():\n    import openvino\n", "def g():\n    import_openvino()\n"
    assert _openvino_imports_unguarded(unguarded + guarded + "    import openvino\n") == [2]
