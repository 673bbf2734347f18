"""The whole pipeline in-process: emulator + Cloudinary stand-in + the real VGG16 graph."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator

import pytest

from autotagger import model
from infra.local_cloudinary import CloudinaryStandin
from tests.support.helpers import image_bytes, notification_from, sign_body

pytestmark = pytest.mark.usefixtures("real_model_env")


def _deliver(client, standin: CloudinaryStandin, resource: dict, **fields):
    body = notification_from(resource)
    if fields:
        payload = {**json.loads(body), **fields}
        body = json.dumps(payload, separators=(",", ":")).encode()
    return client.post("/", data=body, headers=sign_body(body, standin.api_secret))


def _tag_writes(standin: CloudinaryStandin) -> list[dict]:
    return [c for c in standin.calls if c["path"].endswith("/tags")]


def test_upload_is_classified_tagged_and_stored(make_client, standin, stored, model_dir) -> None:
    client = make_client("on_upload")
    resource = standin.add_asset(image_bytes((800, 600)), public_id="pets/rex")
    response = _deliver(client, standin, resource)
    assert response.status_code == 200, response.get_data(as_text=True)
    record = response.get_json()
    assert record["status"] == "done"
    assert record["asset_id"] == resource["asset_id"]
    assert len(record["predictions"]) == 5
    scores = [p["score"] for p in record["predictions"]]
    assert scores == sorted(scores, reverse=True)
    assert all(p["wnid"].startswith("n") and p["label"] for p in record["predictions"])
    assert record["label"] == record["predictions"][0]["label"]
    manifest = json.loads((model_dir / "manifest.json").read_text())
    assert record["model"] == model.artifact_name(manifest)  # the served artifact's name
    assert {"download", "decode", "predict", "tags", "total"} <= set(record["timings"])

    document = stored()[resource["asset_id"]]
    for key in ("asset_id", "public_id", "version", "secure_url", "status", "label", "score"):
        assert document[key] == record[key]
    assert document["predictions"] == record["predictions"]
    assert document["created_at"] and document["updated_at"]
    assert document["claim"] is None

    tags = standin.asset("pets/rex")["tags"]
    assert record["label"] in tags
    assert tags == record["tags"]


def test_duplicate_delivery_adds_no_document_and_no_tag(make_client, standin, stored) -> None:
    client = make_client("on_upload")
    resource = standin.add_asset(image_bytes(), public_id="pets/dup")
    first = _deliver(client, standin, resource).get_json()
    writes = len(_tag_writes(standin))
    documents = stored()
    second = _deliver(client, standin, resource)
    assert second.status_code == 200
    assert second.get_json()["duplicate"] is True
    assert second.get_json()["label"] == first["label"]
    assert len(_tag_writes(standin)) == writes == 1
    assert stored() == documents


def test_new_version_is_classified_again_and_stale_tags_removed(
    make_client, standin, stored
) -> None:
    client = make_client("on_upload", TAG_PREFIX="auto:")
    first = standin.add_asset(image_bytes(color=(250, 0, 0)), public_id="pets/v")
    record_one = _deliver(client, standin, first).get_json()
    second = standin.add_asset(image_bytes((500, 700), color=(0, 0, 250), fmt="PNG"), "pets/v")
    assert second["asset_id"] == first["asset_id"] and second["version"] > first["version"]
    record_two = _deliver(client, standin, second).get_json()
    assert record_two["status"] == "done"
    assert record_two["version"] == second["version"]
    assert record_two["created_at"] == record_one["created_at"]
    assert all(t.startswith("auto:") for t in record_two["tags"])
    tags = standin.asset("pets/v")["tags"]
    assert set(record_two["tags"]) <= set(tags)
    assert not (set(record_one["tags"]) - set(record_two["tags"])) & set(tags)
    # a late redelivery of the first version changes nothing
    late = _deliver(client, standin, first).get_json()
    assert late["status"] == "ignored"
    assert stored()[first["asset_id"]]["version"] == second["version"]


def test_non_image_payload_gives_a_failed_document(make_client, standin, stored) -> None:
    client = make_client("on_upload")
    resource = standin.add_asset(image_bytes(), public_id="docs/fake")
    # Cloudinary says "image", but the bytes delivered are HTML.
    standin.replace_bytes("docs/fake", b"<html>surprise</html>")
    response = _deliver(client, standin, resource)
    assert response.status_code == 200
    record = response.get_json()
    assert record["status"] == "failed"
    assert "identify" in record["error"]
    assert stored()[resource["asset_id"]]["status"] == "failed"
    assert _tag_writes(standin) == []


def test_asset_gone_gives_a_failed_document(make_client, standin, stored) -> None:
    client = make_client("on_upload")
    resource = standin.add_asset(image_bytes(), public_id="pets/gone")
    response = _deliver(
        client, standin, resource, secure_url=resource["secure_url"].replace("gone", "deleted")
    )
    assert response.status_code == 200
    assert response.get_json()["status"] == "failed"
    assert "404" in response.get_json()["error"]


@pytest.fixture
def foreign_server() -> Iterator[tuple[str, list[str]]]:
    """An HTTP server on loopback that is *not* an allowed delivery host; logs its hits."""
    hits: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hits.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "image/jpeg")
            self.end_headers()
            self.wfile.write(image_bytes())

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}", hits
    server.shutdown()
    server.server_close()


def test_foreign_secure_url_is_not_fetched(make_client, standin, stored, foreign_server) -> None:
    base, hits = foreign_server
    client = make_client("on_upload")
    resource = standin.add_asset(image_bytes(), public_id="pets/evil")
    for url in (f"{base}/steal.jpg", "https://metadata.google.internal/computeMetadata/v1/"):
        response = _deliver(client, standin, resource, secure_url=url)
        assert response.status_code == 200
        assert response.get_json()["status"] in ("failed", None) or response.get_json()["duplicate"]
    assert hits == []
    document = stored()[resource["asset_id"]]
    assert document["status"] == "failed"
    assert "not a Cloudinary delivery host" in document["error"]


def test_redirect_to_a_foreign_host_is_not_followed(
    make_client, standin, stored, foreign_server
) -> None:
    base, hits = foreign_server
    client = make_client("on_upload")
    resource = standin.add_asset(image_bytes(), public_id="pets/redirect")
    standin.inject("/autotagger-test/image/upload/", location=f"{base}/x.jpg", times=None)
    record = _deliver(client, standin, resource).get_json()
    assert record["status"] == "failed"
    assert hits == []


def test_tag_api_outage_is_503_then_redelivery_succeeds(make_client, standin, stored) -> None:
    client = make_client("on_upload")
    resource = standin.add_asset(image_bytes(), public_id="pets/outage")
    standin.inject("/v1_1/autotagger-test/image/tags", 500, times=None)
    response = _deliver(client, standin, resource)
    assert response.status_code == 503
    assert len(_tag_writes(standin)) == 3  # bounded retries
    assert stored()[resource["asset_id"]]["status"] == "processing"  # claim released, not done
    standin.clear_faults()
    retried = _deliver(client, standin, resource)
    assert retried.status_code == 200
    assert retried.get_json()["status"] == "done"
    assert retried.get_json()["label"] in standin.asset("pets/outage")["tags"]


def test_transient_download_error_is_retried(make_client, standin) -> None:
    client = make_client("on_upload")
    resource = standin.add_asset(image_bytes(), public_id="pets/flaky")
    standin.inject("/autotagger-test/image/upload/", 503, times=2)
    assert _deliver(client, standin, resource).get_json()["status"] == "done"
