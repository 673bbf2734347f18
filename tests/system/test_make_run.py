"""`make run` itself (infra/local.py run): Ctrl-C stops everything; a real account means no local
Cloudinary. The browser loop on `make run` is tests/e2e/test_make_run_page.py."""

from __future__ import annotations

import http.client
import ipaddress
import json
import re
import socket
from pathlib import Path

import psutil
import requests

from infra import emulators
from infra.local_cloudinary import CloudinaryStandin
from tests.support import make_run

# Normal is 1-3 s; gunicorn's graceful timeout (what a lost signal used to cost) is 30 s.
CTRL_C_BOUND_S = 20.0


def test_ctrl_c_stops_every_process_with_a_browser_connection_open(
    model_dir: Path, tmp_path: Path
) -> None:
    run = make_run.start(tmp_path / "make-run.log", MODEL_WEIGHTS=str(model_dir))
    connection = http.client.HTTPConnection("127.0.0.1", run.ports["results"], timeout=30)
    # Browsers also open sockets ahead of need and send nothing on them for a while: one such
    # socket used to hold a gunicorn worker thread, and with it the port, after Ctrl-C.
    preconnected = socket.create_connection(("127.0.0.1", run.ports["results"]), timeout=30)
    try:
        for _ in range(2):  # two requests on one connection: it is kept alive, as a browser's
            connection.request("GET", "/", headers={"Connection": "keep-alive"})
            response = connection.getresponse()
            response.read()
            assert response.status == 200
            assert response.getheader("Connection", "").lower() != "close"
        names = set()
        for process in run.descendants:
            try:
                names.add(process.name())
            except psutil.NoSuchProcess:  # a short-lived helper (a wrapper that exec'd) is gone
                continue
        if emulators.firestore_emulator_choice() == "official":
            assert "java" in names  # the official emulator's JVM is among what must stop
        _assert_loopback_only(run)

        seconds = run.interrupt()
        print(f"make run: Ctrl-C to every process gone: {seconds:.2f} s")
        assert run.leftovers() == []
        assert run.busy_ports() == []
        assert seconds < CTRL_C_BOUND_S
    finally:
        connection.close()
        preconnected.close()
        if run.process.poll() is None or run.leftovers():
            run.kill()


def _is_loopback(ip: str) -> bool:
    """127.0.0.0/8 or ::1, also as an IPv4-mapped IPv6 address (how a JVM reports 127.0.0.1)."""
    address = ipaddress.ip_address(ip)
    mapped = getattr(address, "ipv4_mapped", None)
    return (mapped or address).is_loopback


def _assert_loopback_only(run: make_run.MakeRun) -> None:
    """Every socket make run's processes listen on is on loopback, and the known ones are there."""
    sockets = run.listening()
    print(f"make run listens on: {sockets}")
    ports = {port for _, port, _ in sockets}
    for name in ("results", "on_upload", "cloudinary", "firestore"):
        if name in run.ports:
            assert run.ports[name] in ports, (name, sockets)
    outside = [s for s in sockets if not _is_loopback(s[0])]
    assert outside == [], f"listening beyond loopback: {outside}"


def test_the_npm_emulator_and_everything_else_listen_on_loopback_only(
    model_dir: Path, tmp_path: Path
) -> None:
    """The npm Firestore emulator (the fallback without gcloud) binds loopback, not 0.0.0.0."""
    run = make_run.start(
        tmp_path / "make-run.log", MODEL_WEIGHTS=str(model_dir), FIRESTORE_EMULATOR="npm"
    )
    try:
        assert "the npm one" in run.log
        _assert_loopback_only(run)
        assert any(name == "node" for _, _, name in run.listening())
        run.interrupt()
        assert run.leftovers() == []
    finally:
        if run.process.poll() is None or run.leftovers():
            run.kill()


def test_with_a_cloudinary_url_no_local_cloudinary_starts(
    model_dir: Path, standin: CloudinaryStandin, emulator_host: str, tmp_path: Path
) -> None:
    run = make_run.start(
        tmp_path / "make-run.log",
        MODEL_WEIGHTS=str(model_dir),
        CLOUDINARY_URL=standin.cloudinary_url,
        CLOUDINARY_UPLOAD_PRESET="my_preset",
        FIRESTORE_EMULATOR_HOST=emulator_host,
    )
    try:
        html = requests.get(run.results + "/", timeout=30).text
        match = re.search(r'id="autotagger-config">(.*?)</script>', html)
        assert match
        config = json.loads(match.group(1))
        assert config["localUploadUrl"] is None  # the page loads Cloudinary's widget as before
        assert config["cloudName"] == standin.cloud_name
        assert config["uploadPreset"] == "my_preset"
        assert "local Cloudinary" not in run.log
        cloudinary_port = run.ports.pop("cloudinary")
        assert cloudinary_port not in run.busy_ports()  # nothing listens where it would
        run.interrupt()
        assert run.leftovers() == []
    finally:
        if run.process.poll() is None or run.leftovers():
            run.kill()
