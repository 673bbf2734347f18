"""Cloud Storage: fetch the files of a model artifact (`gs://bucket/prefix`) that one engine
needs to a local cache, each verified against the sha256 its manifest records.

`manifest.json` is read first; the caller names the files its engine reads (the OpenVINO IR, or
the SavedModel + `weights.bin`, or the `.tflite`): nothing else is read. Each file is fetched in
parallel ranged reads (`CHUNK_BYTES` each, `WORKERS` in flight) into pooled buffers written at
their offsets of a staging file, and hashed in order as the chunks arrive (the hash overlaps the
transfer); only a file whose size and sha256 match the manifest is renamed into the cache, so a
corrupted or truncated object raises `ArtifactError` and is never served. The cache directory is
keyed by the URI and the manifest's bytes: a replaced artifact is fetched afresh; a present file
was verified. One fetch of a URI at a time, across processes (a file lock): the process that
copies ahead of the server (`autotagger.model.preload.prefetch`) and a worker, or two workers,
never copy the same files twice; whoever comes second finds them cached.

Plain HTTP on the JSON API's media endpoint (`/download/storage/v1/b/B/o/O?alt=media` with a
`Range` header), through google-auth's `AuthorizedSession` (read-only scope) or, with
`STORAGE_EMULATOR_HOST`, an anonymous session to the emulator, as the official client does:
`google-cloud-storage`'s `download_as_bytes` copies each range through 8 KB chunks under the GIL
(3x slower per stream than reading into the destination here) and its import alone costs 0.2 s
of cold start.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import mmap
import os
import queue
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import quote

import requests
from requests.adapters import HTTPAdapter

from autotagger import config, logs
from autotagger.domain import MANIFEST, FileEntry, Manifest, ManifestError

CHUNK_BYTES = 8 * 1024 * 1024
WORKERS = 8  # ranged reads in flight, each on its own pooled connection
WINDOW = 2 * WORKERS  # chunks read ahead of the hash, at most: 128 MB of buffers
TIMEOUT_S = 120


class ArtifactError(RuntimeError):
    """The artifact in Cloud Storage is unusable: missing, unverifiable or corrupted."""


@dataclass(frozen=True)
class Fetched:
    """Where the artifact now is locally, and what this fetch read from Cloud Storage."""

    path: Path
    files: tuple[str, ...]
    bytes_read: int
    seconds: float


def split_uri(uri: str) -> tuple[str, str]:
    """`gs://bucket/some/path` -> ("bucket", "some/path")."""
    bucket, _, name = uri.removeprefix("gs://").partition("/")
    if not bucket or not name.strip("/"):
        raise ValueError(f"not a gs://bucket/path URI: {uri!r}")
    return bucket, name.strip("/")


_session_lock = threading.Lock()
_session: requests.Session | None = None


def _http() -> requests.Session:
    """One session (its connections are reused): anonymous to the emulator when
    STORAGE_EMULATOR_HOST is set, else Application Default Credentials, read-only."""
    global _session
    with _session_lock:
        if _session is None:
            if os.environ.get("STORAGE_EMULATOR_HOST"):
                session = requests.Session()
            else:
                import google.auth
                from google.auth.transport.requests import AuthorizedSession

                credentials, _ = google.auth.default(
                    scopes=["https://www.googleapis.com/auth/devstorage.read_only"]
                )
                session = AuthorizedSession(credentials)
            adapter = HTTPAdapter(pool_connections=2, pool_maxsize=WORKERS + 2)
            session.mount("https://", adapter)
            session.mount("http://", adapter)
            session.headers["Accept-Encoding"] = "identity"  # the stored bytes, as hashed
            _session = session
    return _session


def _media_url(bucket: str, name: str) -> str:
    base = os.environ.get("STORAGE_EMULATOR_HOST") or "https://storage.googleapis.com"
    path = f"/download/storage/v1/b/{quote(bucket, safe='')}/o/{quote(name, safe='')}"
    return f"{base.rstrip('/')}{path}?alt=media"


def _relative(path: str) -> str:
    """A manifest path, refused if it could leave the cache directory."""
    parts = PurePosixPath(path).parts
    if not parts or path.startswith("/") or any(p in ("..", ".", "") for p in parts):
        raise ArtifactError(f"manifest names an unsafe path {path!r}")
    return path


def _read_into(url: str, buffer: mmap.mmap, start: int, length: int, size: int) -> memoryview:
    """Bytes [start, start + length) of the object at `url` into `buffer`: one ranged GET."""
    view = memoryview(buffer)[:length]
    try:
        with _http().get(
            url,
            headers={"Range": f"bytes={start}-{start + length - 1}"},
            stream=True,
            timeout=(10, TIMEOUT_S),
        ) as response:
            if response.status_code == 404:
                raise ArtifactError("object not found")
            response.raise_for_status()
            whole = response.status_code == 200 and start == 0 and length == size
            if response.status_code != 206 and not whole:
                raise ArtifactError(f"ranged read answered HTTP {response.status_code}")
            got = 0
            while got < length:
                with view[got:] as rest:
                    count = response.raw.readinto(rest)
                if not count:
                    break
                got += count
            if got != length or response.raw.read(1):
                raise ArtifactError(f"object is not the manifest's {size} bytes")
    except BaseException:
        view.release()
        raise
    return view


def _fetch_file(
    bucket: str,
    object_name: str,
    entry: FileEntry,
    destination: Path,
    pool: ThreadPoolExecutor,
) -> None:
    """One file: ranged reads in parallel, each into a buffer of a small pool and written at its
    offset of a staging file; hashed in order from those buffers (still in cache, and the file
    is written through the page cache: faster than filling a fresh memory map, which faults
    every page); renamed into `destination` only when its size and sha256 match `entry`."""
    size, expected = entry.bytes, entry.sha256
    uri, url = f"gs://{bucket}/{object_name}", _media_url(bucket, object_name)
    destination.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    descriptor, staging = tempfile.mkstemp(
        dir=destination.parent, prefix=f".{destination.name}.", suffix=".part"
    )
    # anonymous maps, not bytearrays: unmapped when closed, so the memory goes back at once
    # (a heap would keep it, and a forked worker would inherit it)
    allocated = [mmap.mmap(-1, CHUNK_BYTES) for _ in range(min(WINDOW, -(-size // CHUNK_BYTES)))]
    buffers: queue.SimpleQueue[mmap.mmap] = queue.SimpleQueue()
    for buffer in allocated:
        buffers.put(buffer)

    def read(start: int) -> tuple[mmap.mmap, memoryview]:
        buffer = buffers.get()  # one is free: at most WINDOW reads are pending
        view: memoryview | None = None
        try:
            view = _read_into(url, buffer, start, min(CHUNK_BYTES, size - start), size)
            written = 0
            while written < len(view):
                with view[written:] as rest:
                    written += os.pwrite(descriptor, rest, start + written)
        except BaseException:
            if view is not None:
                view.release()
            buffers.put(buffer)
            raise
        return buffer, view

    try:
        digest = hashlib.sha256()
        starts = deque(range(0, size, CHUNK_BYTES))
        pending: deque[Future[tuple[mmap.mmap, memoryview]]] = deque()
        while starts or pending:
            while starts and len(pending) < WINDOW:
                pending.append(pool.submit(read, starts.popleft()))
            future = pending.popleft()
            try:
                buffer, view = future.result()
            except (ArtifactError, requests.RequestException, OSError) as exc:
                for other in pending:
                    other.cancel()
                for other in pending:  # every read done before the file is closed
                    if not other.cancelled() and other.exception() is None:
                        other.result()[1].release()
                raise ArtifactError(f"{uri}: cannot read it: {str(exc)[:300]}") from exc
            digest.update(view)
            view.release()
            buffers.put(buffer)
        if digest.hexdigest() != expected:
            raise ArtifactError(
                f"{uri}: sha256 {digest.hexdigest()[:16]}… does not match the manifest's "
                f"{expected[:16]}…: corrupted, refusing to serve it"
            )
        os.replace(staging, destination)
    finally:
        os.close(descriptor)
        if os.path.exists(staging):
            os.unlink(staging)
        for buffer in allocated:
            with contextlib.suppress(BufferError):  # a view an error still holds: GC unmaps it
                buffer.close()


def _write_private(path: Path, data: bytes) -> None:
    descriptor, staging = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(descriptor, "wb") as out:
        out.write(data)
    os.replace(staging, path)


@contextlib.contextmanager
def _exclusive(folder: Path, uri: str) -> Iterator[None]:
    """Hold the lock of `uri`'s copies into `folder` (other processes wait on it)."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)  # private: only this user reads it
    name = hashlib.sha256(uri.encode()).hexdigest()[:16]
    descriptor = os.open(folder / f".{name}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)  # and with it the lock


def fetch(
    uri: str, needed: Callable[[Manifest], list[str]], cache_dir: Path | None = None
) -> Fetched:
    """The artifact at `uri` in `cache_dir` (default MODEL_CACHE_DIR), holding its manifest and
    the files `needed(manifest)` names (every one verified); files already cached are not read
    again. Waits while another process fetches the same URI."""
    started = time.perf_counter()
    if cache_dir is None:
        cache_dir = config.model_cache_dir(os.environ)
    bucket, prefix = split_uri(uri)
    with _exclusive(cache_dir / "autotagger-models", uri):
        return _fetch_locked(uri, bucket, prefix, needed, cache_dir, started)


def _fetch_locked(
    uri: str,
    bucket: str,
    prefix: str,
    needed: Callable[[Manifest], list[str]],
    cache_dir: Path,
    started: float,
) -> Fetched:
    try:
        answer = _http().get(_media_url(bucket, f"{prefix}/{MANIFEST}"), timeout=(10, TIMEOUT_S))
        answer.raise_for_status()
        raw = answer.content
    except requests.RequestException as exc:
        raise ArtifactError(
            f"{uri}: cannot read {MANIFEST} ({type(exc).__name__}: {str(exc)[:200]}); "
            "MODEL_WEIGHTS=gs://… must be an artifact folder written by infra/build_model.py"
        ) from exc
    try:
        manifest = Manifest.loads(raw, f"{uri}/{MANIFEST}")
    except ManifestError as exc:
        raise ArtifactError(str(exc)) from exc
    files = manifest.files
    if files is None:
        raise ArtifactError(
            f"{uri}/{MANIFEST} records no sha256 per file (`files`): an older artifact; rebuild "
            "it with infra/build_model.py (nothing is served unverified)"
        )
    wanted = [_relative(path) for path in dict.fromkeys(needed(manifest))]
    unknown = [path for path in wanted if path not in files]
    if unknown:
        raise ArtifactError(f"{uri}/{MANIFEST} records no sha256 for {', '.join(unknown)}")
    key = hashlib.sha256(uri.encode() + b"\0" + raw).hexdigest()[:16]
    target = cache_dir / "autotagger-models" / key
    target.mkdir(mode=0o700, parents=True, exist_ok=True)  # private: only this user reads it
    missing = [path for path in wanted if not (target / path).is_file()]
    with ThreadPoolExecutor(WORKERS, thread_name_prefix="gcs-fetch") as pool:
        for path in missing:
            _fetch_file(bucket, f"{prefix}/{path}", files[path], target / path, pool)
    _write_private(target / MANIFEST, raw)  # last: what the loader reads
    read = sum(files[path].bytes for path in missing) + len(raw)
    fetched = Fetched(target, tuple(missing), read, time.perf_counter() - started)
    logs.info(
        "model fetched" if missing else "model already fetched",
        uri=uri,
        files=list(missing),
        cached=[path for path in wanted if path not in missing],
        bytes_read=read,
        fetch_ms=round(fetched.seconds * 1e3, 1),
    )
    return fetched
