"""The CLI as a package: the three ways to start it answer alike, and nothing deployed loads it.

No emulator and no model: --help and a usage error stop before any setting is read.
"""

from __future__ import annotations

import ast
import importlib
import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from autotagger import cli

ROOT = Path(__file__).resolve().parents[2]
FUNCTION = ROOT / "function"
CLI_PACKAGE = FUNCTION / "autotagger" / "cli"


def _is_cli(module: str) -> bool:
    return module in {"cli", "autotagger.cli"} or module.startswith("autotagger.cli.")


def _run(command: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *command],
        env=os.environ.copy(),
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )


@pytest.mark.parametrize("command", [[], ["classify"], ["results"], ["similar"], ["backfill"]])
def test_module_and_script_print_the_same_help(command: list[str]) -> None:
    script = _run([str(FUNCTION / "cli.py"), *command, "--help"])
    module = _run(["-m", "autotagger.cli", *command, "--help"])
    assert script.returncode == module.returncode == 0, script.stderr + module.stderr
    assert script.stdout.startswith("usage: cli.py")
    assert module.stdout == script.stdout


def test_module_and_script_fail_alike_on_a_usage_error() -> None:
    args = ["results", "--limit", "0"]
    script = _run([str(FUNCTION / "cli.py"), *args])
    module = _run(["-m", "autotagger.cli", *args])
    assert script.returncode == module.returncode == cli.EXIT_USAGE
    assert module.stderr == script.stderr
    assert script.stderr.splitlines() == [
        "cli.py results: error: argument --limit: must be an integer from 1 to 100 (see --help)"
    ]


def test_console_script_is_the_package_main() -> None:
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    module, _, name = scripts["autotagger"].partition(":")
    assert module == "autotagger.cli"
    assert getattr(importlib.import_module(module), name) is cli.main


def test_the_deployed_entry_point_never_loads_the_cli() -> None:
    script = "import json, sys\nimport main\nprint(json.dumps(sorted(sys.modules)))"
    done = _run(["-c", script])
    assert done.returncode == 0, done.stderr
    modules = json.loads(done.stdout.splitlines()[-1])
    assert "main" in modules and "autotagger.pipeline" in modules  # the function really loaded
    assert [m for m in modules if _is_cli(m)] == []


def _imports(path: Path) -> set[str]:
    """Every module `path` names in an import statement (top level or inside a function)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_no_deployed_module_imports_the_cli() -> None:
    """Lazy imports included: what the functions may load at run time stays apart from the CLI,
    which is left out of the deployed source."""
    deployed = [
        path
        for path in FUNCTION.rglob("*.py")
        if path != FUNCTION / "cli.py" and CLI_PACKAGE not in path.parents
    ]
    assert FUNCTION / "main.py" in deployed
    offenders = {
        str(path.relative_to(ROOT)): sorted(filter(_is_cli, _imports(path))) for path in deployed
    }
    assert {path: names for path, names in offenders.items() if names} == {}
