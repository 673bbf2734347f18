"""`.env.example`, the README's configuration table and deploy.sh's pass-through lists are
generated from the one declaration in autotagger/config.py; these fail when one drifts."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from autotagger import config
from infra import settings_docs

FIX = f"regenerate them with `{settings_docs.COMMAND}`"


def test_generated_files_match_the_declaration() -> None:
    stale = [settings_docs._relative(path) for path in settings_docs.drifted()]
    assert stale == [], f"{', '.join(stale)} drifted from function/autotagger/config.py: {FIX}"


def test_a_drifted_file_is_caught(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A row edited by hand, a pass-through name removed, an example changed: each is drift."""
    edits = {
        "SETTINGS_TABLE": ("| `TOP_K` | `5` |", "| `TOP_K` | `6` |"),
        "DEPLOY": (" NEAR_DUPLICATE_DISTANCE)", ")"),
        "ENV_EXAMPLE": ("\nTOP_K=5\n", "\nTOP_K=6\n"),
    }
    for constant, (old, new) in edits.items():
        original: Path = getattr(settings_docs, constant)
        copy = tmp_path / original.name
        assert old in original.read_text(), (constant, old)
        copy.write_text(original.read_text().replace(old, new, 1))
        with monkeypatch.context() as patched:
            patched.setattr(settings_docs, constant, copy)
            assert settings_docs.drifted() == [copy]
            assert settings_docs.main(["--check"]) == 1
            assert settings_docs.main([]) == 0
            assert settings_docs.drifted() == []  # regenerated


def test_every_field_declares_one_variable() -> None:
    fields = dataclasses.fields(config.Settings)
    assert all(isinstance(f.metadata.get("var"), config.Var) for f in fields)
    names = [var.name for var in config.every_var()]
    assert len(names) == len(set(names))
    for var in config.every_var():
        assert var.read_by and set(var.read_by) <= {*config.FUNCTIONS, "cli", "make run"}, var
        assert var.deploy in ("pass", "deploy.sh", "secret", ""), var
        assert var.doc and "\n" not in var.doc and "|" not in var.doc, var.name
        assert var.secret == (var.deploy == "secret"), var.name
    loaded = config.load_settings({})
    for field in fields:  # the declared default is what an empty environment gives
        var = field.metadata["var"]
        if var.derive is None:
            assert getattr(loaded, field.name) == var.default, var.name


def test_deploy_sh_sets_what_it_does_not_pass_through() -> None:
    """Settings deploy.sh sets itself are named in it; secrets come through --set-secrets."""
    script = settings_docs.DEPLOY.read_text()
    for var in config.every_var():
        if var.deploy == "deploy.sh":
            assert f"{var.name}=" in script, var.name
        if var.deploy == "secret":
            assert re.search(rf'(--set-secrets="?|,){var.name}=', script), var.name


def test_the_deployed_lists_are_what_the_functions_read() -> None:
    lists = settings_docs.pass_through()
    assert "NEAR_DUPLICATE_DISTANCE" in lists["results"]
    assert "NEAR_DUPLICATE_DISTANCE" not in lists["on_upload"]
    assert "WEBHOOK_MODE" in lists["on_upload"] and "WEBHOOK_MODE" not in lists["on_message"]
    assert "VIDEO_FRAMES" in lists["on_message"] and "VIDEO_FRAMES" in lists["on_upload"]
    assert "RESULTS_TOKEN" not in {name for names in lists.values() for name in names}


def test_secrets_stay_out_of_repr_and_out_of_errors() -> None:
    token = "t0k3n-" + "x" * 40
    settings = config.load_settings(
        {"CLOUDINARY_URL": "cloudinary://key:s3cr3t-value@cloud", "RESULTS_TOKEN": token}
    )
    assert settings.results_token == token and settings.cloudinary is not None
    for shown in (repr(settings), str(settings)):
        assert "s3cr3t-value" not in shown and token not in shown
    with pytest.raises(config.ConfigError) as caught:
        config.load_settings({"RESULTS_TOKEN": "short-s3cr3t"})
    assert "RESULTS_TOKEN" in caught.value.message and "short-s3cr3t" not in caught.value.message
    assert "\n" not in caught.value.message
