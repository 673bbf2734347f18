"""infra/cloudinary_setup.py against the Cloudinary stand-in: the upload preset created with the
right fields, updated when its notification URL changes, a dry run, its limits, one-line errors."""

from __future__ import annotations

import cloudinary.api
import cloudinary.exceptions
import cloudinary.uploader
import pytest

from autotagger import config
from autotagger.clients import cloudinary_client
from infra import cloudinary_setup
from infra.local_cloudinary import CloudinaryStandin
from tests.support.helpers import image_bytes

HOOK = "https://autotagger-on-upload-abc123-uc.a.run.app"


def _writes(standin: CloudinaryStandin) -> list[dict]:
    return [c for c in standin.calls if c["method"] in ("POST", "PUT", "DELETE")]


def test_setup_creates_the_preset_with_the_right_fields(base_env, standin, capsys) -> None:
    assert cloudinary_setup.main(["--notification-url", HOOK]) == 0
    out = capsys.readouterr().out
    assert "upload preset 'autotagger' (cloud autotagger-test) does not exist: creating it" in out
    assert f"  notification_url: None -> '{HOOK}'" in out
    assert "created upload preset 'autotagger'" in out
    preset = standin.preset("autotagger")
    assert preset["unsigned"] is True
    assert preset["settings"] == {
        "folder": "autotagger",
        "allowed_formats": "jpg,png,webp,gif,heic,avif,bmp,tiff",
        "max_file_size": 25 * 1024 * 1024,
        "notification_url": HOOK,
    }
    assert [c["method"] for c in _writes(standin)] == ["POST"]


def test_setup_twice_changes_nothing_and_updates_a_new_url(base_env, standin, capsys) -> None:
    assert cloudinary_setup.main(["--notification-url", HOOK, "--preset", "page"]) == 0
    capsys.readouterr()
    writes = len(_writes(standin))

    assert cloudinary_setup.main(["--notification-url", HOOK, "--preset", "page"]) == 0
    assert "is up to date: nothing to change" in capsys.readouterr().out
    assert len(_writes(standin)) == writes

    new_hook = HOOK.replace("abc123", "def456")
    assert cloudinary_setup.main(["--notification-url", new_hook, "--preset", "page"]) == 0
    out = capsys.readouterr().out
    assert "1 field(s) differ" in out
    assert f"  notification_url: '{HOOK}' -> '{new_hook}'" in out
    assert [c["method"] for c in _writes(standin)[writes:]] == ["PUT"]
    settings = standin.preset("page")["settings"]
    assert settings["notification_url"] == new_hook
    assert settings["max_file_size"] == 25 * 1024 * 1024 and settings["folder"] == "autotagger"


def test_setup_dry_run_writes_nothing(base_env, standin, capsys, monkeypatch) -> None:
    monkeypatch.setenv("CLOUDINARY_UPLOAD_PRESET", "from-env")
    assert cloudinary_setup.main(["--notification-url", HOOK, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "upload preset 'from-env'" in out and "would create it" in out
    assert "  max_file_size: None -> 26214400" in out
    assert out.rstrip().endswith("dry run: nothing written")
    assert _writes(standin) == []
    assert standin.presets() == {}


def test_the_preset_limits_what_the_page_can_upload(base_env, standin) -> None:
    assert cloudinary_setup.main(["--notification-url", HOOK, "--max-file-size", "4000"]) == 0
    small = image_bytes((32, 32))
    uploaded = cloudinary.uploader.unsigned_upload(small, "autotagger")
    assert uploaded["public_id"].startswith("autotagger/")
    with pytest.raises(cloudinary.exceptions.Error, match="File size too large"):
        cloudinary.uploader.unsigned_upload(image_bytes((900, 900), fmt="PNG"), "autotagger")


def test_the_sdk_drops_max_file_size_which_is_why_setup_sends_it(base_env, standin) -> None:
    cloudinary_client.configure(config.load_settings().cloudinary)
    cloudinary.api.create_upload_preset(name="sdk", unsigned=True, max_file_size=1234)
    assert "max_file_size" not in standin.preset("sdk")["settings"]
    params = cloudinary_setup.write_params({"unsigned": True, "max_file_size": 1234})
    assert params.pop("timestamp")  # the SDK's own encoding adds it
    assert params == {"max_file_size": 1234, "unsigned": True}


def test_setup_errors_are_one_line(base_env, standin, capsys, monkeypatch) -> None:
    assert cloudinary_setup.main(["--notification-url", "http://example.com/hook"]) == 2
    assert capsys.readouterr().err.splitlines() == [
        "cloudinary_setup: error: --notification-url must be an https URL (http only for "
        "loopback): http://example.com/hook"
    ]
    monkeypatch.setenv("CLOUDINARY_URL", "https://not-a-cloudinary-url")
    assert cloudinary_setup.main([]) == 2
    assert capsys.readouterr().err.splitlines() == [
        "cloudinary_setup: error: CLOUDINARY_URL must start with cloudinary://"
    ]
    monkeypatch.setenv("CLOUDINARY_URL", base_env["CLOUDINARY_URL"].replace("standin", "wrong"))
    assert cloudinary_setup.main(["--dry-run"]) == 1
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("cloudinary_setup: error: Cloudinary API: ")
