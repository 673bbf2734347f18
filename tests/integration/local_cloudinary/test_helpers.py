"""The helpers tests use, and `python -m infra.local_cloudinary`."""

from __future__ import annotations

import re
import subprocess
import sys

import cloudinary
import cloudinary.api
import cloudinary.exceptions
import cloudinary.uploader
import cloudinary.utils
import pytest
import requests

from infra.local_cloudinary import CloudinaryStandin
from tests.integration.local_cloudinary.support import (
    delivery_url,
    image_bytes,
)

# -- test helpers and the command line ------------------------------------------------------------


def test_public_ids_and_replaced_bytes(standin: CloudinaryStandin) -> None:
    standin.add_asset(image_bytes(), "a/first")
    standin.add_asset(b"hello", "notes.txt", resource_type="raw")
    standin.add_asset(image_bytes(color="blue"), "a/first")  # an overwrite keeps its place
    assert standin.public_ids() == ["a/first", "notes.txt"]

    before = standin.asset("a/first")
    assert before is not None
    standin.replace_bytes("a/first", b"<html>not an image</html>")
    after = standin.asset("a/first")
    assert after is not None and after["version"] == before["version"]
    assert after["bytes"] == len(b"<html>not an image</html>")
    served = requests.get(delivery_url(standin, "a/first", format="png"), timeout=10)
    assert served.status_code == 200 and served.content == b"<html>not an image</html>"
    assert standin.notifications_sent == []
    with pytest.raises(KeyError):
        standin.replace_bytes("missing", b"")


def test_presets_are_read_as_copies(standin: CloudinaryStandin) -> None:
    assert standin.presets() == {}
    cloudinary.api.create_upload_preset(name="p", unsigned=True, folder="in")
    stored = {"name": "p", "unsigned": True, "settings": {"folder": "in"}}
    preset = standin.preset("p")
    assert preset == stored
    preset["settings"]["folder"] = "changed"
    assert standin.presets() == {"p": stored}
    assert cloudinary.api.upload_preset("p")["settings"]["folder"] == "in"
    with pytest.raises(KeyError):
        standin.preset("missing")


def test_python_m_serves_and_prints_its_cloudinary_url() -> None:
    command = [sys.executable, "-m", "infra.local_cloudinary", "--port", "0", "--cloud-name", "cli"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as process:
        try:
            assert process.stdout is not None
            line = process.stdout.readline().strip()
            assert line.startswith("CLOUDINARY_URL=cloudinary://123456789012345:")
            prefix = line.split("upload_prefix=", 1)[1]
            assert re.fullmatch(r"http://127\.0\.0\.1:\d+", prefix)
            answer = requests.get(
                f"{prefix}/v1_1/cli/ping", auth=("123456789012345", "x"), timeout=10
            )
            assert answer.status_code == 401
            assert answer.json() == {"error": {"message": "api_secret mismatch"}}
        finally:
            process.terminate()
