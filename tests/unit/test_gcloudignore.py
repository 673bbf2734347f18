"""function/.gcloudignore: the CLI and the build leftovers stay out of the deployed source, every
module a function imports goes up. (tests/system/test_deploy_gcloud.py checks that gcloud itself
reads the file the same way.)"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.support.gcloudignore import FUNCTION, ignore_spec, uploaded


def _module_file(name: str) -> str | None:
    """The path (relative to function/) of a first-party module, None for a third-party one."""
    if name.partition(".")[0] not in ("autotagger", "main", "cli"):
        return None
    base = FUNCTION.joinpath(*name.split("."))
    if (base / "__init__.py").exists():
        return (base / "__init__.py").relative_to(FUNCTION).as_posix()
    return base.with_suffix(".py").relative_to(FUNCTION).as_posix()


def _imports(path: Path) -> set[str]:
    """Every first-party module `path` imports, at the top or inside a function."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    files = {_module_file(name) for name in names}
    return {f for f in files if f is not None and (FUNCTION / f).exists()}


def test_the_cli_and_leftovers_are_left_out() -> None:
    spec = ignore_spec()
    for path in (
        "cli.py",
        "autotagger/cli/__init__.py",
        "autotagger/cli/classify.py",
        "autotagger/cli/anything_new.py",
        "autotagger/vocabulary_learn.py",
        "__pycache__/main.cpython-311.pyc",
        "autotagger/model/__pycache__/spec.cpython-311.pyc",
        "autotagger/stray.pyc",
        "autotagger.egg-info/PKG-INFO",
        "tests/test_main.py",
        "autotagger/test_pipeline.py",
        "conftest.py",
        ".gcloudignore",
        ".env",
        ".mypy_cache/3.11/main.meta.json",
    ):
        assert spec.match_file(path), path
    files = uploaded()
    assert not {f for f in files if f == "cli.py" or f.startswith("autotagger/cli/")}


def test_the_serving_code_goes_up() -> None:
    files = uploaded()
    assert {"main.py", "requirements.txt", "web/index.html", "autotagger/concepts.json"} <= files
    assert "autotagger/model/imagenet_class_index.json" in files
    for package in ("clients", "media", "model", "queue", "web"):
        assert f"autotagger/{package}/__init__.py" in files, package
    # Nothing of autotagger/ is left out but the CLI-only parts, whatever is added there later.
    spec = ignore_spec()
    for path in ("autotagger/pipeline.py", "autotagger/new_step.py", "autotagger/web/new.py"):
        assert not spec.match_file(path), path
    kept = {p for p in files if p.startswith("autotagger/") and p.endswith(".py")}
    every = {
        p.relative_to(FUNCTION).as_posix()
        for p in (FUNCTION / "autotagger").rglob("*.py")
        if "__pycache__" not in p.parts
    }
    assert every - kept == {
        p for p in every if p.startswith("autotagger/cli/") or p == "autotagger/vocabulary_learn.py"
    }


def test_no_uploaded_module_imports_a_left_out_one() -> None:
    """Lazy imports included: a module left out of the upload would fail in production."""
    files = uploaded()
    missing = {
        module: sorted(_imports(FUNCTION / module) - files)
        for module in files
        if module.endswith(".py")
    }
    assert {module: names for module, names in missing.items() if names} == {}
    assert "autotagger/pipeline.py" in _imports(FUNCTION / "main.py")  # the check sees imports
