"""deploy.sh creates the flat vector index of `embedding` (and the one `resource_type`
pre-filters with), idempotently, with commands the real gcloud parser accepts."""

from __future__ import annotations

import json
from pathlib import Path

from tests.system.test_deploy_gcloud import (
    GCLOUD,
    _parse_errors,
    _printed_gcloud_commands,
    pytestmark,
)
from tests.system.test_infra import _deploy

__all__ = ["pytestmark"]
VECTOR = 'vector-config={"dimension":"512","flat":"{}"}'


def _index_commands(tmp_path: Path, **env: str) -> list[list[str]]:
    done = _deploy(tmp_path, DRY_RUN="1", **env)
    assert done.returncode == 0, done.stderr
    return [
        c
        for c in _printed_gcloud_commands(done.stdout)
        if c[1:5] == ["firestore", "indexes", "composite", "create"]
    ]


def test_vector_indexes_are_created_and_parse(tmp_path: Path) -> None:
    assert GCLOUD is not None
    indexes = json.loads((Path(__file__).parents[2] / "infra/firestore.indexes.json").read_text())
    vectors = [i for i in indexes["indexes"] if any("vectorConfig" in f for f in i["fields"])]
    assert len(vectors) == 2
    commands = _index_commands(tmp_path, FIRESTORE_COLLECTION="photos")
    with_vector = [c for c in commands if f"--field-config=field-path=embedding,{VECTOR}" in c]
    assert len(with_vector) == 2, commands
    prefiltered = max(with_vector, key=len)
    assert "--field-config=field-path=resource_type,order=ascending" in prefiltered
    for command in with_vector:
        assert "--collection-group=photos" in command and "--query-scope=collection" in command
    assert _parse_errors(with_vector, tmp_path) == {}
