"""The access settings: private and signed by default, the token kept secret, bad values named."""

from __future__ import annotations

import pytest

from autotagger.config import load_settings
from autotagger.errors import ConfigError
from tests.support.access import TOKEN


def test_private_and_signed_by_default() -> None:
    settings = load_settings({})
    assert settings.results_access == "private"
    assert settings.upload_mode == "signed"
    assert settings.results_token is None
    assert settings.upload_folder == "autotagger"
    assert "jpg" in settings.upload_allowed_formats
    assert settings.upload_max_bytes == settings.max_image_bytes
    assert settings.forward_budget_per_min == 10


def test_public_means_unsigned_unless_told_otherwise() -> None:
    assert load_settings({"RESULTS_ACCESS": "public"}).upload_mode == "unsigned"
    both = load_settings({"RESULTS_ACCESS": "public", "UPLOAD_MODE": "signed"})
    assert both.upload_mode == "signed"
    assert load_settings({"UPLOAD_MODE": "unsigned"}).results_access == "private"
    settings = load_settings(
        {
            "UPLOAD_FOLDER": "/a/b/",
            "UPLOAD_ALLOWED_FORMATS": "JPG, png,,",
            "UPLOAD_MAX_BYTES": "2048",
            "FORWARD_BUDGET_PER_MIN": "3",
        }
    )
    assert settings.upload_folder == "a/b"
    assert settings.upload_allowed_formats == ("jpg", "png")
    assert (settings.upload_max_bytes, settings.forward_budget_per_min) == (2048, 3)


def test_the_token_is_kept_out_of_repr_and_errors() -> None:
    settings = load_settings({"RESULTS_TOKEN": f"  {TOKEN} "})
    assert settings.results_token == TOKEN
    assert TOKEN not in repr(settings) and "t0k3n" not in str(settings)
    weak = "short-but-secret"
    with pytest.raises(ConfigError, match="RESULTS_TOKEN") as caught:
        load_settings({"RESULTS_TOKEN": weak})
    assert weak not in caught.value.message
    with pytest.raises(ConfigError, match="RESULTS_TOKEN"):
        load_settings({"RESULTS_TOKEN": "x" * 20 + " " + "y" * 20})


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("RESULTS_ACCESS", "open"),
        ("UPLOAD_MODE", "maybe"),
        ("UPLOAD_FOLDER", "../etc"),
        ("UPLOAD_FOLDER", "a b"),
        ("UPLOAD_ALLOWED_FORMATS", "jpg,*.exe"),
        ("UPLOAD_MAX_BYTES", "12"),
        ("FORWARD_BUDGET_PER_MIN", "0"),
    ],
)
def test_bad_access_settings_name_themselves(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        load_settings({name: value})
