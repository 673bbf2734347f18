"""The command line (function/cli.py): classify, results, backfill.

Error paths and --help run the CLI as a subprocess; the rest call `cli.main([...])` in-process so
they share the loaded model (the real VGG16 graph with random weights).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from autotagger import cli, config, model, pipeline
from autotagger.clients import cloudinary_client
from autotagger.web import webhook
from infra.local_cloudinary import CloudinaryStandin
from tests.support.helpers import image_bytes

ROOT = Path(__file__).resolve().parents[2]
CLI = str(ROOT / "function" / "cli.py")


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, CLI, *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        check=False,
    )


def _tag_writes(standin: CloudinaryStandin) -> list[dict]:
    return [c for c in standin.calls if c["path"].endswith("/tags")]


def _classify_with_pipeline(standin: CloudinaryStandin, public_id: str, data: bytes) -> dict:
    """What the webhook path stores for `data` (same pipeline function, in-process)."""
    resource = standin.add_asset(data, public_id=public_id)
    settings = config.load_settings()
    cloudinary_client.configure(settings.cloudinary)
    return pipeline.process_upload(webhook.upload_from_resource(resource), settings)


# -- subprocess: help and error paths ----------------------------------------------------------


def test_help_everywhere(base_env) -> None:
    for args in ([], ["classify"], ["results"], ["backfill"]):
        done = _run([*args, "--help"], base_env)
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith("usage: cli.py")
    classify_help = " ".join(_run(["classify", "--help"], base_env).stdout.split())
    assert "any host is allowed" in classify_help
    assert "MAX_IMAGE_BYTES" in classify_help


def test_missing_file_is_one_line_and_nonzero(base_env, tmp_path) -> None:
    missing = tmp_path / "missing.jpg"
    done = _run(["classify", str(missing)], base_env)
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.splitlines() == [f"cli.py classify: error: {missing}: no such file"]


def test_bad_setting_exits_2_with_one_line(base_env) -> None:
    done = _run(["classify", "x.jpg"], {**base_env, "TOP_K": "many"})
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "cli.py: configuration error: TOP_K must be an integer, got 'many'"
    ]


def test_usage_error_is_one_line(base_env) -> None:
    done = _run(["results", "--asset-id", "a", "--label", "b"], base_env)
    assert done.returncode == 2
    assert len(done.stderr.splitlines()) == 1
    assert "not allowed with argument" in done.stderr


def test_backfill_without_cloudinary_url_exits_2(base_env) -> None:
    done = _run(["backfill", "--dry-run"], {**base_env, "CLOUDINARY_URL": ""})
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "cli.py backfill: error: CLOUDINARY_URL is not set: cannot verify or tag Cloudinary uploads"
    ]


# -- classify (in-process, real graph) ---------------------------------------------------------


@pytest.mark.usefixtures("real_model_env")
def test_classify_table_and_json_match_the_webhook_pipeline(
    base_env, standin, tmp_path, capsys, monkeypatch, model_dir
) -> None:
    served = model.artifact_name(json.loads((model_dir / "manifest.json").read_text()))
    # The webhook path downloads the original here (not a Cloudinary-resized rendition), so both
    # paths decode the very same bytes.
    monkeypatch.setenv("DOWNLOAD_RENDITION", "0")
    data = image_bytes((640, 480), color=(20, 160, 40))
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(data)

    assert cli.main(["classify", str(photo)]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].startswith(f"{photo}  ({served}, predict ")
    ranks = [line.split()[0] for line in table[2:7]]
    assert ranks == ["1", "2", "3", "4", "5"]
    assert table[7].startswith("  tags: ")

    assert cli.main(["classify", "--json", str(photo)]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["count"] == 1
    item = answer["results"][0]
    assert item["input"] == str(photo)
    assert item["model"] == served
    scores = [p["score"] for p in item["predictions"]]
    assert len(scores) == 5 and scores == sorted(scores, reverse=True)
    assert item["tags"][0] == item["predictions"][0]["label"]

    # Same bytes through the webhook's pipeline (download from the stand-in): same labels.
    record = _classify_with_pipeline(standin, "cli/same", data)
    assert [p["label"] for p in record["predictions"]] == [p["label"] for p in item["predictions"]]
    assert record["tags"] == item["tags"]


@pytest.mark.usefixtures("real_model_env")
def test_classify_urls_and_partial_failure(base_env, standin, tmp_path, capsys) -> None:
    resource = standin.add_asset(image_bytes(fmt="PNG"), public_id="cli/url")
    missing_url = resource["secure_url"].replace("cli/url", "cli/gone")
    not_an_image = tmp_path / "notes.jpg"
    not_an_image.write_text("not a picture")

    code = cli.main(
        [
            "classify",
            "--json",
            "--top-k",
            "3",
            resource["secure_url"],
            missing_url,
            str(not_an_image),
        ]
    )
    captured = capsys.readouterr()
    assert code == 1
    items = json.loads(captured.out)["results"]
    assert [len(i.get("predictions", [])) for i in items] == [3, 0, 0]
    assert items[1]["error"] == "download answered HTTP 404"
    assert "identify" in items[2]["error"]
    errors = captured.err.splitlines()
    assert f"cli.py classify: error: {missing_url}: download answered HTTP 404" in errors
    assert sum(line.startswith("cli.py classify: error:") for line in errors) == 2


# -- results -----------------------------------------------------------------------------------


@pytest.mark.usefixtures("real_model_env")
def test_results_reads_what_the_pipeline_wrote(base_env, standin, capsys) -> None:
    record = _classify_with_pipeline(standin, "cli/results", image_bytes())
    _classify_with_pipeline(standin, "cli/other", image_bytes(color=(0, 0, 200)))
    capsys.readouterr()  # the pipeline's own log lines

    assert cli.main(["results", "--asset-id", record["asset_id"], "--json"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["count"] == 1
    found = answer["results"][0]
    assert found["public_id"] == "cli/results"
    assert found["label"] == record["label"]
    assert found["predictions"] == record["predictions"]

    assert cli.main(["results", "--public-id", "cli/results", "--json"]) == 0
    assert [r["asset_id"] for r in json.loads(capsys.readouterr().out)["results"]] == [
        record["asset_id"]
    ]

    assert cli.main(["results", "--limit", "5"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split()[:3] == ["created_at", "status", "score"]
    assert len(table) == 3  # header + both documents, newest first
    assert "cli/other" in table[1] and "cli/results" in table[2]

    assert cli.main(["results", "--asset-id", "nope", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"results": [], "count": 0}


# -- backfill ----------------------------------------------------------------------------------


def test_list_images_follows_next_cursor(base_env, standin) -> None:
    for i in range(5):
        standin.add_asset(image_bytes((40 + i, 40)), public_id=f"page/{i}")
    standin.add_asset(image_bytes(), public_id="elsewhere/x")
    cloudinary_client.configure(config.load_settings().cloudinary)
    listed = list(cloudinary_client.list_images("page/", page_size=2))
    assert sorted(r["public_id"] for r in listed) == [f"page/{i}" for i in range(5)]
    listings = [c for c in standin.calls if c["path"].endswith("/resources/image/upload")]
    assert len(listings) == 3
    assert all(c["params"]["max_results"] == "2" for c in listings)
    assert "next_cursor" in listings[1]["params"] and "next_cursor" in listings[2]["params"]


@pytest.mark.usefixtures("real_model_env")
def test_backfill_classifies_what_is_missing_then_nothing(
    base_env, standin, stored, capsys
) -> None:
    done_before = _classify_with_pipeline(standin, "bf/one", image_bytes())
    two = standin.add_asset(image_bytes(color=(0, 200, 0)), public_id="bf/two")
    three = standin.add_asset(image_bytes(color=(0, 0, 200), fmt="PNG"), public_id="bf/three")
    writes_before = len(_tag_writes(standin))
    first_document = stored()[done_before["asset_id"]]

    assert cli.main(["backfill"]) == 0
    captured = capsys.readouterr()
    assert "3 images, 1 already classified, 2 to classify" in captured.out
    assert "classified 2 of 2: 2 done" in captured.out
    assert "2/2" in captured.err  # the progress bar
    documents = stored()
    for resource in (two, three):
        document = documents[resource["asset_id"]]
        assert document["status"] == "done"
        assert document["version"] == resource["version"]
        assert document["label"] in standin.asset(resource["public_id"])["tags"]
    assert documents[done_before["asset_id"]] == first_document  # not classified again
    assert len(_tag_writes(standin)) == writes_before + 2

    assert cli.main(["backfill"]) == 0
    again = capsys.readouterr().out
    assert "3 images, 3 already classified, 0 to classify" in again
    assert len(_tag_writes(standin)) == writes_before + 2
    assert stored() == documents


def test_backfill_dry_run_writes_nothing(base_env, standin, stored, capsys) -> None:
    standin.add_asset(image_bytes(), public_id="dry/a")
    standin.add_asset(image_bytes(), public_id="dry/b")
    standin.add_asset(image_bytes(), public_id="other/c")
    assert cli.main(["backfill", "--dry-run", "--prefix", "dry/"]) == 0
    out = capsys.readouterr().out
    assert "2 images under 'dry/', 0 already classified, 2 to classify" in out
    assert "  dry/a  (version " in out and "  dry/b  (version " in out
    assert "other/c" not in out
    assert out.rstrip().endswith("dry run: nothing classified")
    assert stored() == {}
    assert _tag_writes(standin) == []


@pytest.mark.usefixtures("real_model_env")
def test_backfill_stops_cleanly_on_ctrl_c_and_resumes(
    base_env, standin, stored, capsys, monkeypatch
) -> None:
    for name in ("a", "b", "c"):
        standin.add_asset(image_bytes(color=(10, 10, 10 + ord(name))), public_id=f"int/{name}")
    real = pipeline.process_upload
    calls: list[str] = []

    def interrupted_once(upload: webhook.Upload, settings: config.Settings, **options) -> dict:
        calls.append(upload.public_id)
        if len(calls) == 1:
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C while the first image is in flight
        return real(upload, settings, **options)

    monkeypatch.setattr(pipeline, "process_upload", interrupted_once)
    previous_handler = signal.getsignal(signal.SIGINT)
    assert cli.main(["backfill"]) == 130
    captured = capsys.readouterr()
    assert len(calls) == 1
    assert "classified 1 of 3: 1 done" in captured.out
    assert "interrupted: 2 left; run the same command to continue" in captured.out
    assert "stopping after the current image" in captured.err
    assert signal.getsignal(signal.SIGINT) is previous_handler
    assert [d["status"] for d in stored().values()] == ["done"]

    monkeypatch.setattr(pipeline, "process_upload", real)
    assert cli.main(["backfill"]) == 0
    assert "3 images, 1 already classified, 2 to classify" in capsys.readouterr().out
    assert sorted(d["status"] for d in stored().values()) == ["done"] * 3


@pytest.mark.usefixtures("real_model_env")
def test_backfill_reports_a_failing_image_and_goes_on(base_env, standin, stored, capsys) -> None:
    first = standin.add_asset(image_bytes(), public_id="fail/1")
    second = standin.add_asset(image_bytes(color=(0, 90, 0)), public_id="fail/2")
    broken = standin.add_asset(image_bytes(), public_id="fail/3")
    standin.replace_bytes("fail/3", b"<html>not an image</html>")
    # Every tag write of the first image fails (3 tries): an error, reported, the run goes on.
    standin.inject("/v1_1/autotagger-test/image/tags", 500, times=3)

    assert cli.main(["backfill", "--prefix", "fail/"]) == 1
    captured = capsys.readouterr()
    assert "classified 3 of 3: 1 done, 1 error, 1 failed" in captured.out
    assert "fail/1 error: add tags failed after 3 attempts" in captured.err
    documents = stored()
    assert documents[second["asset_id"]]["status"] == "done"
    assert documents[broken["asset_id"]]["status"] == "failed"  # recorded, not retried
    assert documents[first["asset_id"]]["status"] == "processing"  # claim released

    assert cli.main(["backfill", "--prefix", "fail/"]) == 0
    assert "3 images under 'fail/', 2 already classified, 1 to classify" in (
        capsys.readouterr().out
    )
    assert stored()[first["asset_id"]]["status"] == "done"
