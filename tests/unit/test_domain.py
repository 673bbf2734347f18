"""The domain types: Upload parsing, what a stored record means for a version, the manifest."""

from __future__ import annotations

import copy
import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from autotagger import domain
from autotagger.domain import IR, InvalidField, Manifest, ManifestError, Status, Upload, is_final
from autotagger.errors import BadRequest
from autotagger.model import artifact
from tests.support.helpers import DATA, load_payload

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


# -- Upload ---------------------------------------------------------------------------------------


def test_upload_from_a_notification() -> None:
    upload = domain.parse_upload(load_payload("upload_notification.json"))
    assert upload.asset_id == "3515c6000a548515f1134043f9785c2f"
    assert upload.public_id == "samples/dog"
    assert upload.version == 1763979303
    assert (upload.resource_type, upload.type, upload.is_audio) == ("image", "upload", False)


def test_upload_reads_text_versions_and_drops_odd_optional_fields() -> None:
    upload = domain.parse_upload(
        load_payload(
            "upload_notification.json",
            version="42",
            width=True,  # a bool is no width
            duration=float("inf"),
            tags=["dog", 7, "", "dog", "x" * 256, "cat"],
            format=["jpg"],
        )
    )
    assert upload.version == 42
    assert upload.width is None and upload.duration is None and upload.format is None
    assert upload.tags == ("dog", "cat")  # strings of 1-255 characters, once each


@pytest.mark.parametrize(
    ("fields", "field", "problem"),
    [
        ({"asset_id": None}, "asset_id", "must be a non-empty string"),
        ({"asset_id": "__reserved__"}, "asset_id", "has unexpected characters"),
        ({"asset_id": "a/b"}, "asset_id", "has unexpected characters"),
        ({"public_id": ""}, "public_id", "must be a non-empty string"),
        ({"public_id": "p" * 1025}, "public_id", "is too long"),
        ({"version": True}, "version", "must be an integer"),
        ({"version": "1.5"}, "version", "must be an integer"),
        ({"version": "٣"}, "version", "must be an integer"),
        ({"version": 0}, "version", "is out of range"),
        ({"version": 10**12}, "version", "is out of range"),
        ({"secure_url": 5}, "secure_url", "must be a non-empty string"),
        ({"resource_type": None}, "resource_type", "must be a non-empty string"),
    ],
)
def test_malformed_fields_are_named(fields: dict[str, Any], field: str, problem: str) -> None:
    with pytest.raises(InvalidField) as raised:
        domain.parse_upload(load_payload("upload_notification.json", **fields))
    assert (raised.value.field, raised.value.problem) == (field, problem)
    assert isinstance(raised.value, BadRequest)  # a 400 wherever nobody words it otherwise
    assert raised.value.message == f"field {field!r} {problem}"


def test_each_caller_words_the_error_for_its_audience() -> None:
    """The webhook's sender reads about a notification field, a queue's publisher about a field
    of its message: the same InvalidField, worded by each caller."""
    from autotagger.errors import MalformedMessage
    from autotagger.queue import messages
    from autotagger.web import webhook

    bad = load_payload("upload_notification.json", version="soon")
    with pytest.raises(BadRequest, match=r"^notification field 'version' must be an integer$"):
        webhook.upload_from_resource(bad)
    data = json.dumps(bad).encode()
    attributes = {"origin": "webhook", "asset_id": bad["asset_id"], "version": "soon"}
    with pytest.raises(MalformedMessage, match=r"^field 'version' must be an integer$"):
        messages.parse(data, attributes)
    with pytest.raises(MalformedMessage, match=r"^data is not valid JSON"):
        messages.parse(b"{body", attributes)


# -- the stored record ----------------------------------------------------------------------------


def _record(status: str, version: int = 3, **fields: Any) -> dict[str, Any]:
    return {"asset_id": "a", "version": version, "status": status, "model": "m1", **fields}


DONE = _record("done", embedding=[0.1] * 4)
DONE_NO_EMBEDDING = _record("done")
FAILED = _record("failed", model=None)
PROCESSING = _record("processing")


@pytest.mark.parametrize(
    ("record", "version", "model", "needs_embedding", "final"),
    [
        (None, 3, None, False, False),
        ({}, 3, None, False, False),
        (DONE, 3, None, False, True),
        (DONE, 2, None, False, False),  # another version: not final for this one
        (DONE, 4, None, False, False),
        (DONE, None, None, False, True),  # any version
        (FAILED, 3, None, False, True),
        (PROCESSING, 3, None, False, False),
        (_record("ignored"), 3, None, False, False),  # not a stored status
        (DONE, 3, "m1", False, True),
        (DONE, 3, "m2", False, False),  # re-classification by another model
        (FAILED, 3, "m2", False, True),  # the file failed, not the model
        (DONE, 3, None, True, True),
        (DONE_NO_EMBEDDING, 3, None, True, False),  # backfill redoes it
        (DONE_NO_EMBEDDING, 3, None, False, True),
        (FAILED, 3, None, True, True),
        (DONE_NO_EMBEDDING, 3, "m2", True, False),
    ],
)
def test_is_final(
    record: dict[str, Any] | None,
    version: int | None,
    model: str | None,
    needs_embedding: bool,
    final: bool,
) -> None:
    assert is_final(record, version, model=model, needs_embedding=needs_embedding) is final


def test_claims_and_versions() -> None:
    live = _record("processing", claim={"id": "c", "expires_at": NOW + dt.timedelta(seconds=1)})
    expired = _record("processing", claim={"id": "c", "expires_at": NOW})
    assert domain.is_live_claim(live, NOW)
    assert not domain.is_live_claim(expired, NOW)  # expiry is exclusive
    assert not domain.is_live_claim({**live, "status": "done"}, NOW)
    assert not domain.is_live_claim(_record("processing", claim=None), NOW)
    assert domain.is_superseded(DONE, 2) and not domain.is_superseded(DONE, 3)
    assert domain.version_of({"version": True}) == 0 and domain.version_of(None) == 0


def test_statuses_are_the_stored_strings() -> None:
    """Existing documents say `processing`, `done`, `failed`: the enum reads and writes them."""
    assert [s.value for s in Status] == ["processing", "done", "failed"]
    assert domain.status_of({"status": "done"}) is Status.DONE
    assert domain.status_of({"status": "queued"}) is None
    assert {Status.DONE, Status.FAILED} == domain.FINAL
    assert json.dumps({"status": Status.FAILED}) == '{"status": "failed"}'


def test_public_view() -> None:
    stored = {
        **DONE,
        "status": Status.DONE,
        "created_at": NOW,
        "claim": None,
        "error": None,
        "secret": "never",
    }
    public = domain.to_public(stored)
    assert public["status"] == "done" and type(public["status"]) is str
    assert public["created_at"] == "2026-01-01T00:00:00Z"
    assert public["has_embedding"] is True
    assert not {"embedding", "claim", "error", "secret"} & set(public)
    assert "has_embedding" not in domain.to_public(FAILED)
    assert domain.to_public(DONE_NO_EMBEDDING)["has_embedding"] is False
    assert (*domain.PUBLIC_FIELDS, "embedding") == domain.STORED_FIELDS


# -- the artifact manifest ------------------------------------------------------------------------

RAW: dict[str, Any] = json.loads((DATA / "artifact_manifest.json").read_text())


def test_manifest_is_parsed() -> None:
    manifest = Manifest.parse(RAW)
    assert manifest.name == "vgg16/random(seed=0)"
    assert manifest.served_name == "vgg16/random(seed=0)@5f1d6b7c8a9e"
    assert (manifest.format, manifest.path, manifest.weights_path) == (
        "saved_model",
        "saved_model",
        "weights.bin",
    )
    assert manifest.openvino == IR("openvino/model.xml", "openvino/model.bin")
    assert manifest.openvino_fp16 == IR("openvino-fp16/model.xml", "openvino-fp16/model.bin")
    assert manifest.files is not None and manifest.files["weights.bin"].bytes == 128
    assert manifest.raw["embedding"]["dim"] == 512  # what nobody parses stays readable
    assert Manifest.of(manifest) is manifest and Manifest.of(RAW) == manifest


def test_older_manifests_still_parse() -> None:
    """No sha256 (plain name), no `files`, weights in SavedModel variables, no IR; int8."""
    old = Manifest.parse({"name": "vgg16/imagenet", "format": "saved_model", "path": "m"})
    assert old.served_name == "vgg16/imagenet"
    assert (old.files, old.weights, old.openvino) == (None, None, None)
    ir_only = Manifest.parse({"name": "n", "format": "saved_model", "openvino": RAW["openvino"]})
    assert ir_only.path is None
    int8 = Manifest.parse({"name": "n/int8", "format": "tflite", "path": "model.tflite"})
    assert artifact.artifact_files(int8, "int8", "auto") == ["model.tflite"]


def _without(key: str) -> dict[str, Any]:
    raw = copy.deepcopy(RAW)
    del raw[key]
    return raw


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([RAW], "must be a JSON object"),
        (_without("name"), "field 'name' must be a non-empty string"),
        ({**RAW, "name": 7}, "field 'name' must be a non-empty string"),
        ({**RAW, "format": "onnx"}, "unsupported artifact format 'onnx'"),
        (_without("format"), "unsupported artifact format None"),
        ({"name": "n", "format": "tflite"}, "field 'path' must be a non-empty string"),
        ({**RAW, "path": ["saved_model"]}, "field 'path' must be a non-empty string"),
        ({**_without("path"), "openvino": None}, "field 'path' is required"),
        ({**RAW, "sha256": 12}, "field 'sha256' must be a non-empty string"),
        ({**RAW, "weights": {"dtype": "float32"}}, "field 'weights' must be an object"),
        ({**RAW, "openvino": {"xml": "a.xml"}}, "field 'openvino' must be an object with"),
        ({**RAW, "openvino_fp16": "ir"}, "field 'openvino_fp16' must be an object with"),
        ({**RAW, "files": ["weights.bin"]}, "field 'files' must map paths"),
        ({**RAW, "files": {"w": {"sha256": "0" * 64}}}, "entry 'w' needs a size"),
        ({**RAW, "files": {"w": {"bytes": 1, "sha256": "abc"}}}, "entry 'w' needs a hex"),
    ],
)
def test_malformed_manifests_name_the_field(data: Any, message: str) -> None:
    with pytest.raises(ManifestError, match=r"^gs://b/m/manifest\.json: ") as raised:
        Manifest.parse(data, "gs://b/m/manifest.json")
    assert message in str(raised.value)
    assert isinstance(raised.value, ValueError)  # what the loader's callers already expect


def test_manifest_files(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match=r"manifest\.json is not JSON"):
        Manifest.loads(b"{", "manifest.json")
    with pytest.raises(OSError):
        Manifest.read(tmp_path)
    (tmp_path / domain.MANIFEST).write_text(json.dumps(RAW))
    assert Manifest.read(tmp_path).name == RAW["name"]
    (tmp_path / domain.MANIFEST).write_text(json.dumps({**RAW, "format": 1}))
    with pytest.raises(ManifestError, match=str(tmp_path / domain.MANIFEST)):
        Manifest.read(tmp_path)


def test_the_engine_choice_reads_the_parsed_manifest(monkeypatch: pytest.MonkeyPatch) -> None:
    manifest = Manifest.parse(RAW)
    monkeypatch.setattr(artifact, "openvino_available", lambda: True)
    assert artifact.choose_engine(manifest, "auto") == "openvino"
    assert artifact.artifact_files(manifest, "fp32", "openvino") == [
        "openvino/model.xml",
        "openvino/model.bin",
    ]
    assert artifact.fp16_entry(manifest, "auto") == manifest.openvino_fp16
    tensorflow = artifact.artifact_files(manifest, "fp32", "tensorflow")
    assert tensorflow == [
        "saved_model/saved_model.pb",
        "saved_model/variables/variables.index",
        "weights.bin",
    ]
    no_path = Manifest.parse({**_without("path"), "weights": None})
    with pytest.raises(ValueError, match="has no SavedModel"):
        artifact.choose_engine(no_path, "tensorflow")
    with pytest.raises(ValueError, match="no fp16 IR"):
        artifact.fp16_entry({**RAW, "openvino_fp16": None}, "openvino")


def test_claim_document_fields_name_every_field_of_a_claims_document() -> None:
    upload = Upload("a1", "p/a1", 3, "https://res.cloudinary.com/demo/image/upload/v3/a1.jpg")
    document = domain.claim_document(upload, "c1", 330, dt.datetime.now(dt.UTC), ("cat",))
    assert tuple(document) == domain.CLAIM_DOCUMENT_FIELDS
    assert document["claim"]["id"] == "c1" and document["tags"] == ["cat"]
    assert document["status"] == "processing" and set(domain.CLAIM_DOCUMENT_FIELDS) <= set(
        (*domain.STORED_FIELDS, "claim")
    )


def test_the_fp16_ir_shares_its_fp32_models_embedding_space() -> None:
    assert domain.embedding_space("vgg16/random(seed=0)/fp16") == "vgg16/random(seed=0)"
    assert domain.embedding_space("vgg16/random(seed=0)") == "vgg16/random(seed=0)"
    assert domain.embedding_space("vgg16/random(seed=0)/int8") == "vgg16/random(seed=0)/int8"
    assert domain.embedding_space(None) == ""
