"""Count what tests check, so a move or split of test modules can show nothing was dropped.

    python -m tests.support.count_assertions [--rev REV] FILE...

Per test function: `assert` statements, `pytest.raises` uses and `np.testing.assert_*` calls
(nested helpers included); then the totals. With `--rev`, files are read from that git revision
(the modules before a split), so before and after can be compared side by side.
"""

from __future__ import annotations

import argparse
import ast
import subprocess
from pathlib import Path
from typing import NamedTuple


class Counts(NamedTuple):
    asserts: int
    raises: int
    np_asserts: int


def count_function(node: ast.AST) -> Counts:
    asserts = raises = np_asserts = 0
    for sub in ast.walk(node):
        if isinstance(sub, ast.Assert):
            asserts += 1
        elif isinstance(sub, ast.Call):
            called = ast.unparse(sub.func)
            if called == "pytest.raises":
                raises += 1
            elif called.startswith("np.testing.assert"):
                np_asserts += 1
    return Counts(asserts, raises, np_asserts)


def count_source(source: str) -> dict[str, Counts]:
    """The counts of each test function in one module's source, by name."""
    functions = (ast.FunctionDef, ast.AsyncFunctionDef)
    return {
        node.name: count_function(node)
        for node in ast.walk(ast.parse(source))
        if isinstance(node, functions) and node.name.startswith("test_")
    }


def read(path: str, rev: str | None) -> str:
    if rev is None:
        return Path(path).read_text()
    shown = subprocess.run(
        ["git", "show", f"{rev}:{path}"], capture_output=True, text=True, check=True
    )
    return shown.stdout


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rev", help="read the files from this git revision")
    parser.add_argument("files", nargs="+")
    args = parser.parse_args(argv)
    tests, totals = 0, Counts(0, 0, 0)
    for path in args.files:
        for name, counts in count_source(read(path, args.rev)).items():
            print(f"{path}::{name}\t{counts.asserts}\t{counts.raises}\t{counts.np_asserts}")
            tests += 1
            totals = Counts(*(a + b for a, b in zip(totals, counts, strict=True)))
    print(
        f"total: {tests} tests, {totals.asserts} assert, {totals.raises} pytest.raises, "
        f"{totals.np_asserts} np.testing.assert_*"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
