"""Settings: defaults, validation, one clear error naming the setting, no secret in repr."""

from __future__ import annotations

import pytest

from autotagger.config import load_settings, parse_cloudinary_url
from autotagger.errors import ConfigError


def test_defaults() -> None:
    settings = load_settings({})
    assert settings.cloudinary is None
    assert settings.missing() == ["CLOUDINARY_URL"]
    assert settings.firestore_collection == "classifications"
    assert settings.model_weights == "imagenet"
    assert settings.top_k == 5
    assert settings.tag_prefix == ""
    assert settings.delivery_hosts == ("res.cloudinary.com",)
    assert settings.google_cloud_project is None


def test_emulator_gets_a_demo_project() -> None:
    settings = load_settings({"FIRESTORE_EMULATOR_HOST": "127.0.0.1:8200"})
    assert settings.google_cloud_project == "demo-autotagger"


def test_cloudinary_url_in_the_sdk_format() -> None:
    account = parse_cloudinary_url(
        "cloudinary://1234:s3cr3t@My-Cloud?upload_prefix=http://127.0.0.1:9000/"
        "&signature_algorithm=SHA256"
    )
    assert (account.cloud_name, account.api_key, account.api_secret) == (
        "My-Cloud",
        "1234",
        "s3cr3t",
    )
    assert account.upload_prefix == "http://127.0.0.1:9000"
    assert account.signature_algorithm == "sha256"
    assert "s3cr3t" not in repr(account)
    assert "s3cr3t" not in repr(load_settings({"CLOUDINARY_URL": account.url}))


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"CLOUDINARY_URL": "https://key:secret@cloud"}, "CLOUDINARY_URL"),
        ({"CLOUDINARY_URL": "cloudinary://key@cloud"}, "CLOUDINARY_URL"),
        ({"CLOUDINARY_URL": "cloudinary://k:s@c?signature_algorithm=md5"}, "CLOUDINARY_URL"),
        ({"CLOUDINARY_URL": "cloudinary://k:s@c?upload_prefix=ftp://x"}, "CLOUDINARY_URL"),
        ({"TOP_K": "five"}, "TOP_K"),
        ({"TOP_K": "0"}, "TOP_K"),
        ({"TAG_THRESHOLD": "1.5"}, "TAG_THRESHOLD"),
        ({"TAG_PREFIX": "a,b"}, "TAG_PREFIX"),
        ({"WEBHOOK_MAX_AGE_S": "-1"}, "WEBHOOK_MAX_AGE_S"),
        ({"MAX_IMAGE_BYTES": "lots"}, "MAX_IMAGE_BYTES"),
        ({"CLOUDINARY_DELIVERY_HOSTS": "https://evil.example/x"}, "CLOUDINARY_DELIVERY_HOSTS"),
        ({"FIRESTORE_COLLECTION": "a/b"}, "FIRESTORE_COLLECTION"),
        ({"FIRESTORE_EMULATOR_HOST": "not a host"}, "FIRESTORE_EMULATOR_HOST"),
        ({"MODEL_WEIGHTS": "/no/such/weights.h5"}, "MODEL_WEIGHTS"),
        ({"LOG_LEVEL": "chatty"}, "LOG_LEVEL"),
    ],
)
def test_malformed_setting_is_named(env: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(env)
    assert named in caught.value.message


def test_delivery_hosts_are_added_to_cloudinarys() -> None:
    settings = load_settings({"CLOUDINARY_DELIVERY_HOSTS": "Media.Example.com, 127.0.0.1:9000"})
    assert settings.delivery_hosts == ("res.cloudinary.com", "media.example.com", "127.0.0.1:9000")
