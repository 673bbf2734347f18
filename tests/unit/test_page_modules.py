"""The page's ES modules: index.html loads only the entry module, every import names a module
that exists and a name it exports, the graph has no cycle and no module nobody loads, each
module stays small, and the server lists exactly these modules as JavaScript."""

from __future__ import annotations

import re
from pathlib import Path

from autotagger.web import page

WEB = Path(__file__).resolve().parents[2] / "function" / "web"
JS = WEB / "js"
ENTRY = "main.js"
MAX_LINES = 300
IMPORT = re.compile(r'^import \{([^}]*)\} from "\./([a-z][a-z0-9-]*\.js)";$', re.M)
EXPORT = re.compile(r"^export (?:async )?(?:function|const|let) ([A-Za-z_$][\w$]*)", re.M)


def _modules() -> dict[str, str]:
    return {path.name: path.read_text() for path in sorted(JS.glob("*.js"))}


def _imports(text: str) -> dict[str, list[str]]:
    """module file -> the names imported from it."""
    found: dict[str, list[str]] = {}
    for names, target in IMPORT.findall(text):
        found.setdefault(target, []).extend(n.strip() for n in names.split(",") if n.strip())
    return found


def test_index_loads_only_the_entry_module() -> None:
    html = (WEB / "index.html").read_text()
    scripts = re.findall(r"<script\b([^>]*)>(.*?)</script>", html, re.S)
    code = [(attrs, body) for attrs, body in scripts if 'type="application/json"' not in attrs]
    assert code == [(' type="module" src="/assets/js/main.js"', "")]
    assert "app.js" not in html


def test_every_import_is_a_module_that_exports_the_name() -> None:
    modules = _modules()
    assert ENTRY in modules
    for name, text in modules.items():
        statements = [line for line in text.splitlines() if re.match(r"\s*import\b", line)]
        assert len(statements) == len(IMPORT.findall(text)), f"{name}: an import not of the form"
        assert "import(" not in text, f"{name}: a dynamic import"
        for target, names in _imports(text).items():
            assert target in modules, f"{name} imports {target}, which does not exist"
            exported = set(EXPORT.findall(modules[target]))
            missing = sorted(set(names) - exported)
            assert not missing, f"{name} imports {missing} that {target} does not export"


def test_the_graph_has_no_cycle_and_every_module_is_loaded() -> None:
    graph = {name: sorted(_imports(text)) for name, text in _modules().items()}
    done: set[str] = set()

    def visit(name: str, path: tuple[str, ...]) -> None:
        assert name not in path, f"import cycle: {' -> '.join((*path, name))}"
        if name in done:
            return
        for target in graph[name]:
            visit(target, (*path, name))
        done.add(name)

    visit(ENTRY, ())
    assert done == set(graph), f"never imported: {sorted(set(graph) - done)}"
    assert not any(ENTRY in targets for targets in graph.values())


def test_modules_are_small_and_define_no_globals() -> None:
    for name, text in _modules().items():
        assert len(text.splitlines()) <= MAX_LINES, name
        assert not re.search(r"\bwindow\.[\w$]+\s*=[^=]", text), f"{name} sets a global"
        assert not re.search(r"^(var|globalThis)\b", text, re.M), f"{name} sets a global"
        assert ".innerHTML" not in text, name  # data reaches the DOM through textContent only


def test_the_server_lists_every_module_as_javascript() -> None:
    page.static_files.cache_clear()
    served = page.static_files()
    modules = {f"js/{name}" for name in _modules()}
    assert modules <= set(served)
    assert set(served) - modules == {"app.css", "favicon.svg"}
    assert all(served[name].startswith("text/javascript") for name in modules)
