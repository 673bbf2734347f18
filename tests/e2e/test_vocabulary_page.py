"""The page shows learned tags apart from the labels (fixtures: tests/e2e/conftest.py)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from playwright.sync_api import expect

from autotagger import config, model, vocabulary_store
from autotagger.vocabulary_store import Vocabulary
from infra.local_cloudinary import CloudinaryStandin
from tests.e2e.conftest import E2E, Harness, Servers, _only, picture

pytestmark = E2E


def test_a_learned_tag_is_written_and_shown_apart_from_the_labels(
    serve: Callable[..., Servers],
    open_page: Callable[..., Harness],
    standin: CloudinaryStandin,
    real_model_env: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(standin, "notification_timeout_s", 120)
    manifest = json.loads((Path(real_model_env) / "manifest.json").read_text())
    if "embedding" not in manifest:
        pytest.skip("the artifact has no embedding")
    # A published vocabulary of the served model: one tag every picture gets, one none does.
    vocabulary_store.publish(
        config.load_settings(),
        Vocabulary(
            version=0,
            model=model.artifact_name(manifest),
            tags=("lakeside-shoot", "never"),
            weights=np.zeros((manifest["embedding"]["dim"], 2), np.float32),
            bias=np.array([8.0, -8.0], np.float32),
            thresholds=np.array([0.5, 0.5], np.float32),
        ),
    )
    servers = serve(forward=False, webhook=True)
    harness = open_page(servers)
    harness.upload(picture(2), name="shore.jpg")
    harness.wait_for("done")

    record = _only(servers.api())
    assert record["vocabulary"]["version"] == 1
    assert [t["tag"] for t in record["vocabulary"]["tags"]] == ["lakeside-shoot"]
    assert record["tags"][-1] == "lakeside-shoot"
    assert "lakeside-shoot" in (standin.asset(record["public_id"]) or {})["tags"]
    page = harness.page
    expect(page.locator("#current-learned-block")).to_be_visible()
    expect(page.locator("#current-learned .tag")).to_have_text(["lakeside-shoot"])
    expect(page.locator("#current-tags .tag")).to_have_text(record["tags"][:-1])
    harness.assert_clean()
