"""The benchmark's reports from finished runs (the docs/ JSON): every table row has its cells,
the JSON written back keeps every key, and the in-subprocess entry point refuses an unknown part.
No measurement runs here (that is `make bench`)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from infra.bench import cold_report, output, parts, report, video
from infra.bench.__main__ import main

DOCS = Path(__file__).resolve().parents[2] / "docs"


def _table_rows(markdown: str, header_start: str) -> list[list[str]]:
    """The rows (cells) of the markdown table whose header starts with `header_start`."""
    lines = markdown.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header_start))
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    return rows


def test_from_json_rewrites_the_report_with_every_engine_and_key(tmp_path, capsys) -> None:
    source = json.loads((DOCS / "bench.json").read_text())
    assert main(["--from-json", str(DOCS / "bench.json"), "--out", str(tmp_path)]) == 0
    written = json.loads((tmp_path / "bench.json").read_text())
    assert written.keys() == source.keys()
    assert written["runs"].keys() == source["runs"].keys()
    text = (tmp_path / "bench.md").read_text()
    assert text in capsys.readouterr().out
    rows = _table_rows(text, "| measure | TensorFlow")
    assert len(rows) > 10
    assert all(len(row) == 3 + len(report.SERVED) for row in rows)  # measure, engines, goal, met
    assert all(row[0] for row in rows)
    assert (tmp_path / "bench.png").stat().st_size > 10_000
    assert "cold_report" not in text and "`infra/bench/cold.py`" in text


def test_the_cold_path_report_has_one_verdict_per_goal(tmp_path) -> None:
    data = json.loads((DOCS / "bench_cold.json").read_text())
    cold_report.write_only(data, tmp_path)
    rows = _table_rows((tmp_path / "bench_cold.md").read_text(), "| measure (OpenVINO")
    assert len(rows) >= 5
    assert all(len(row) == 4 for row in rows)
    assert json.loads((tmp_path / "bench_cold.json").read_text()) == data


def test_the_layers_row_sets_convolutions_against_their_flops_and_dense_against_bytes() -> None:
    layers = {
        "dense_weights_mb": 500.0,
        "batch1": {"forward_ms": 120.0, "by_type_ms": {"Convolution": 99.2, "FullyConnected": 20}},
        "batch8": {"forward_ms": 100.0, "by_type_ms": {"Convolution": 99.2, "FullyConnected": 1}},
    }
    row = cold_report.layers_row(layers, floor_ms=100.0)
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    assert len(cells) == 4
    # 30.70 of VGG16's 30.95 GFLOP are convolutions: their floor is 99.2 ms of the 100.
    assert "batch 1: 120 ms an image = 1.20x the floor; convolutions 99 ms (1.00x" in cells[1]
    assert "fully connected 20.0 ms reading 500 MB of weights (25 GB/s)" in cells[1]
    assert "batch 8: 100 ms an image = 1.00x the floor" in cells[1]


def test_read_json_gives_the_concurrency_levels_back_as_numbers() -> None:
    data = output.read_json(DOCS / "bench.json")
    levels = [set(run["levels"]) for run in data["runs"].values() if "levels" in run]
    assert levels
    assert all(keys == {1, 2, 4, 8} for keys in levels)


def test_the_video_report_states_the_goal_and_its_verdict() -> None:
    text = video.report(json.loads((DOCS / "bench_video.json").read_text()))
    row = next(line for line in text.splitlines() if line.startswith("| warm end-to-end"))
    assert f"≤ {video.GOAL}x" in row
    assert row.rstrip(" |").endswith(("yes", "**no**"))


def test_an_unknown_part_is_refused() -> None:
    with pytest.raises(SystemExit, match="unknown part 'nope'"):
        parts.run_part(argparse.Namespace(part="nope"))


def test_the_feature_pairs_cover_the_new_features_with_valid_settings() -> None:
    from autotagger import config
    from infra.bench import feature_switch, features

    names = [name for name, _, _ in features.FEATURE_PAIRS]
    assert names[0] == "concepts + embedding + vocabulary"
    assert set(names) >= {"concepts", "embedding", "vocabulary"}
    variables = {var.name for var in config.declared().values()}
    for name, off, on in features.FEATURE_PAIRS:
        assert off != on, name
        for side in (off, on, features.COMMON):
            settings = {k: v for k, v in side.items() if k not in features.BENCH_KEYS}
            assert set(settings) <= variables, (name, set(settings) - variables)
            config.load_settings({"MODEL_WEIGHTS": "random", **settings})  # valid values
            chosen = side.get(feature_switch.VARIABLE, "")
            assert set(feature_switch.without(chosen)) <= set(feature_switch.FEATURES)
    combined_off, combined_on = features.FEATURE_PAIRS[0][1:]
    assert feature_switch.without(combined_off[feature_switch.VARIABLE]) == (
        feature_switch.FEATURES
    )
    assert combined_on == {"BENCH_VOCABULARY": "1"}
    with pytest.raises(SystemExit, match="unknown feature"):
        feature_switch.without("concepts,nope")


def test_the_bench_vocabulary_fires_a_few_tags_for_the_served_model() -> None:
    import numpy as np

    from autotagger import vocabulary
    from infra.bench import features

    learned = features.learned_vocabulary("vgg16/x@0123")
    assert learned.model == "vgg16/x@0123" and learned.dim == 512
    rng = np.random.default_rng(1)
    counts = []
    for _ in range(50):
        e = rng.normal(size=512)
        counts.append(len(vocabulary.apply(learned, (e / np.linalg.norm(e)).astype(np.float32))))
    assert 0 < np.median(counts) <= 10
