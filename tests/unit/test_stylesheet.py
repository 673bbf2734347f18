"""The page's stylesheet is well formed: every block closed, no rule nested by accident (an
unclosed rule makes the browser nest, and so drop, every rule after it)."""

from __future__ import annotations

import re
from pathlib import Path

CSS = Path(__file__).resolve().parents[2] / "function" / "web" / "app.css"


def test_every_block_is_closed_and_top_level_rules_stay_top_level() -> None:
    text = re.sub(r"/\*.*?\*/", "", CSS.read_text(), flags=re.S)
    depth = 0
    at_rule_depths: list[int] = []
    for number, line in enumerate(text.splitlines(), 1):
        starts_rule = bool(line) and not line[0].isspace() and line.rstrip().endswith("{")
        if starts_rule and not line.startswith("@"):
            assert depth == 0, f"line {number}: {line!r} is nested inside an unclosed block"
        for char in line:
            if char == "{":
                depth += 1
                if line.lstrip().startswith("@"):
                    at_rule_depths.append(depth)
            elif char == "}":
                if at_rule_depths and at_rule_depths[-1] == depth:
                    at_rule_depths.pop()
                depth -= 1
                assert depth >= 0, f"line {number}: a '}}' closes nothing"
    assert depth == 0, "a block is left open at the end"
