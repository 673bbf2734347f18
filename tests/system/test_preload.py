"""The model loads while the server boots, in the forked gunicorn worker, for the functions that
classify; a request arriving mid-load waits and gets the right answer; `results` never loads it.

The fresh-process test holds the load inside the engine loader (a `sitecustomize` on the
server's PYTHONPATH, test instrumentation only) until the request is known to be waiting, so
"mid-load" is a fact, not a timing hope."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from autotagger import config, model
from autotagger.model import preload
from infra import processes
from tests.support.helpers import image_bytes, notification_from, sign_body

ROOT = Path(__file__).resolve().parents[2]
WAIT_S = 300  # a guard against a hung server only: every wait below ends on an event

# Runs in every process of the server (master and worker): wraps the OpenVINO loader and the
# pipeline's model getter so the test sees, through marker files, who loads and who waits.
SITECUSTOMIZE = """
import os, sys, threading, time
from pathlib import Path
MARKERS = Path(os.environ["PRELOAD_TEST_MARKERS"])
from autotagger import model
from autotagger.model import engines

_load_openvino = engines.load_openvino

def mark(name, text):
    # atomically: the test reads a marker as soon as it exists
    (MARKERS / (name + ".tmp")).write_text(text)
    os.replace(MARKERS / (name + ".tmp"), MARKERS / name)
_for_settings = model.for_settings

def load_openvino(*args, **kwargs):
    mark("loading", threading.current_thread().name)
    deadline = time.monotonic() + {wait}
    while not (MARKERS / "release").exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    return _load_openvino(*args, **kwargs)

def for_settings(settings, timings):
    if threading.current_thread().name != "model-preload":
        mark("requested", str(model.is_loaded(
            settings.model_weights, settings.model_precision, settings.model_max_batch,
            settings.model_engine, settings.model_openvino_hint)))
    return _for_settings(settings, timings)

engines.load_openvino = load_openvino
model.for_settings = for_settings
"""


def _wait_for(path: Path, process: Any) -> None:
    """Until `path` exists (the event), failing if the server exits or hangs past WAIT_S."""
    deadline = time.monotonic() + WAIT_S
    while not path.exists():
        assert process.poll() is None, "server exited"
        assert time.monotonic() < deadline, f"no {path.name} after {WAIT_S} s: server hung"
        time.sleep(0.02)


def _serve(target: str, env: dict[str, str], tmp_path: Path) -> tuple[Any, int, Path]:
    """The function `target` under functions-framework on a free port, logging to a file."""
    port = processes.free_port()
    log = tmp_path / "server.log"
    with log.open("wb") as out:
        process = processes.serve(target, port, env, log_to=out)
    return process, port, log


def _deliver(port: int, body: bytes, secret: str) -> requests.Response:
    """A signed notification to the server on `port`, waiting for its answer."""
    return requests.post(
        f"http://127.0.0.1:{port}/", data=body, headers=sign_body(body, secret), timeout=WAIT_S
    )


def _settings(**env: str) -> config.Settings:
    return config.load_settings({"MODEL_WEIGHTS": "random", **env})


def test_which_targets_preload() -> None:
    assert preload.function_target(["ff", "--target", "on_upload"], {}) == "on_upload"
    assert preload.function_target(["ff", "--target=results"], {}) == "results"
    assert preload.function_target(["pytest"], {"FUNCTION_TARGET": "on_message"}) == "on_message"
    assert preload.function_target(["pytest"], {}) is None
    inline, queue = _settings(), _settings(WEBHOOK_MODE="queue")
    assert preload.wanted(inline, "on_upload")
    assert preload.wanted(inline, "on_message")
    assert preload.wanted(queue, "on_message")
    assert not preload.wanted(queue, "on_upload")  # it only publishes
    assert not preload.wanted(inline, "results")
    assert not preload.wanted(inline, None)
    assert not preload.wanted(_settings(MODEL_PRELOAD="0"), "on_upload")
    assert not preload.schedule(inline, "results")
    # a copy ahead of the server only for a gs:// model this process will preload
    assert preload.prefetch(inline, "on_upload") is None
    from_gcs = {"MODEL_WEIGHTS": "gs://models/vgg16"}
    assert preload.prefetch(_settings(**from_gcs), "results") is None
    assert preload.prefetch(_settings(**from_gcs, WEBHOOK_MODE="queue"), "on_upload") is None
    assert preload.prefetch(_settings(**from_gcs, MODEL_PRELOAD="0"), "on_message") is None


def _server_env(base_env: dict[str, str], model_dir: Path, tmp_path: Path) -> dict[str, str]:
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE.format(wait=WAIT_S))
    markers = tmp_path / "markers"
    markers.mkdir()
    return {
        **os.environ,
        **base_env,
        "MODEL_WEIGHTS": str(model_dir),
        "MODEL_ENGINE": "openvino",
        # the instrumentation first, then this checkout's code when PYTHONPATH names it
        "PYTHONPATH": os.pathsep.join([str(site), *filter(None, [os.environ.get("PYTHONPATH")])]),
        "PRELOAD_TEST_MARKERS": str(markers),
    }


@pytest.mark.slow
def test_a_request_mid_load_waits_and_gets_the_loaded_model(
    base_env: dict[str, str], standin, model_dir: Path, tmp_path: Path
) -> None:
    env = _server_env(base_env, model_dir, tmp_path)
    markers = Path(env["PRELOAD_TEST_MARKERS"])
    resource = standin.add_asset(image_bytes((640, 480)), public_id="preload/photo")
    body = notification_from(resource)
    process, port, log = _serve("on_upload", env, tmp_path)
    try:
        _wait_for(markers / "loading", process)  # the load began with no request sent
        assert (markers / "loading").read_text() == preload.THREAD_NAME
        answer: dict[str, Any] = {}

        def send() -> None:
            response = _deliver(port, body, standin.api_secret)
            answer.update(status=response.status_code, record=response.json())

        processes.wait_until_up(f"http://127.0.0.1:{port}/", process, WAIT_S)
        request = threading.Thread(target=send)
        request.start()
        _wait_for(markers / "requested", process)
        assert (markers / "requested").read_text() == "False"  # it arrived mid-load
        (markers / "release").touch()
        request.join(WAIT_S)
        assert answer["status"] == 200, answer
        record = answer["record"]
        assert record["status"] == "done"
        manifest = json.loads((model_dir / "manifest.json").read_text())
        assert record["model"] == model.artifact_name(manifest)
        assert len(record["predictions"]) == 5
        assert "model_load" in record["timings"]  # the request waited for the load
    finally:
        processes.stop([process])
    lines = [json.loads(x) for x in log.read_text().splitlines() if x.startswith("{")]
    assert [x["message"] for x in lines].count("model loaded") == 1
    assert any(x["message"].startswith("model preload scheduled") for x in lines)


@pytest.mark.slow
def test_results_never_loads_the_model(
    base_env: dict[str, str], model_dir: Path, tmp_path: Path
) -> None:
    env = _server_env(base_env, model_dir, tmp_path)
    process, port, log = _serve("results", env, tmp_path)
    try:
        processes.wait_until_up(f"http://127.0.0.1:{port}/healthz", process, WAIT_S)
        assert requests.get(f"http://127.0.0.1:{port}/healthz", timeout=30).status_code == 200
    finally:
        processes.stop([process])
    text = log.read_text()
    assert "model preload scheduled" not in text  # decided at import, before it listened
    assert "model loaded" not in text
    assert not (Path(env["PRELOAD_TEST_MARKERS"]) / "loading").exists()


@pytest.mark.slow
def test_a_gs_model_is_fetched_once_by_the_preload_and_serves_the_first_request(
    base_env: dict[str, str], standin, model_dir: Path, tmp_path: Path
) -> None:
    """MODEL_WEIGHTS=gs:// through gunicorn: the copy starts in a process of its own before the
    server's imports, copies only the IR (verified), once; the worker's load finds it cached,
    and the first request is answered by it."""
    from infra import local_gcs

    storage = local_gcs.start()
    try:
        storage.create_bucket("models")
        for path in ("manifest.json", "openvino/model.xml", "openvino/model.bin"):
            storage.put("models", f"preloaded/{path}", model_dir / path)
        env = {
            **os.environ,
            **base_env,
            "MODEL_WEIGHTS": "gs://models/preloaded",
            "MODEL_ENGINE": "openvino",
            "MODEL_CACHE_DIR": str(tmp_path / "cache"),
            "STORAGE_EMULATOR_HOST": storage.url,
        }
        resource = standin.add_asset(image_bytes((640, 480)), public_id="preload/gs")
        body = notification_from(resource)
        process, port, log = _serve("on_upload", env, tmp_path)
        try:
            processes.wait_until_up(f"http://127.0.0.1:{port}/", process, WAIT_S)
            response = _deliver(port, body, standin.api_secret)
            assert response.status_code == 200, response.text
            record = response.json()
            assert record["status"] == "done"
            manifest = json.loads((model_dir / "manifest.json").read_text())
            assert record["model"] == model.artifact_name(manifest)
        finally:
            processes.stop([process])
    finally:
        storage.stop()
    lines = [json.loads(x) for x in log.read_text().splitlines() if x.startswith("{")]
    fetched = [x for x in lines if x["message"] == "model fetched"]
    ir = ["openvino/model.xml", "openvino/model.bin"]
    assert [(x["files"], x["cached"]) for x in fetched] == [(ir, [])]
    assert fetched[0]["bytes_read"] > (model_dir / "openvino" / "model.bin").stat().st_size
    found = [x for x in lines if x["message"] == "model already fetched"]
    assert [(x["files"], x["cached"]) for x in found] == [([], ir)]  # the worker's load
    messages = [x["message"] for x in lines]
    assert messages.count("model loaded") == 1
    assert messages.count("model copied ahead of the server") == 1
    started = messages.index("model copy from Cloud Storage started")
    scheduled = messages.index("model preload scheduled: it loads while the worker boots")
    assert started < scheduled  # before the server's imports
    assert started < messages.index("model fetched") < messages.index("model already fetched")
