"""An artifact's `manifest.json` (written by `infra/build_model.py`), parsed once into a typed
value: what every reader (the loader, the engine choice, the Cloud Storage fetch, the page's
random-weights banner) relies on is checked here, with one clear error naming the manifest.

Only the shape is checked; whether the files exist is the loader's business.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MANIFEST = "manifest.json"
FORMATS = ("saved_model", "tflite")


class ManifestError(ValueError):
    """A manifest that is not JSON, or lacks (or mistypes) a field its readers rely on."""


@dataclass(frozen=True)
class IR:
    """An OpenVINO IR: the graph (`xml`) and its weights (`bin`), paths in the artifact."""

    xml: str
    bin: str


@dataclass(frozen=True)
class FileEntry:
    """What a fetch verifies of one file: its size and sha256."""

    bytes: int
    sha256: str


@dataclass(frozen=True)
class Manifest:
    """A parsed manifest. `path`: the SavedModel directory (fp32) or the `.tflite` file (int8),
    None for an IR-only artifact; `weights`: the memory-mapped weights entry (its layout is the
    TensorFlow loader's), None for a self-contained SavedModel; `files`: path -> entry, None for
    an artifact built before fetches verified files; `raw`: the JSON object as read."""

    name: str
    format: str
    path: str | None = None
    sha256: str | None = None
    weights: Mapping[str, Any] | None = None
    openvino: IR | None = None
    openvino_fp16: IR | None = None
    files: Mapping[str, FileEntry] | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def served_name(self) -> str:
        """The name results record: `name`, plus `@` and the first 12 hex digits of the weights
        file's sha256 when recorded (a retrained or re-quantized model is a different model)."""
        digest = self.sha256
        return f"{self.name}@{digest[:12]}" if digest and len(digest) >= 12 else self.name

    @property
    def weights_path(self) -> str | None:
        return None if self.weights is None else str(self.weights["path"])

    @classmethod
    def parse(cls, data: Any, source: str = MANIFEST) -> Manifest:
        """The manifest `data` (a decoded JSON value) describes; ManifestError naming `source`
        and the field when it is malformed."""
        if not isinstance(data, Mapping):
            raise ManifestError(f"{source}: must be a JSON object")

        def fail(name: str, problem: str) -> ManifestError:
            return ManifestError(f"{source}: field {name!r} {problem}")

        def text(name: str, required: bool = False) -> str | None:
            value = data.get(name)
            if value is None and not required:
                return None
            if not isinstance(value, str) or not value:
                raise fail(name, "must be a non-empty string")
            return value

        def ir(name: str) -> IR | None:
            value = data.get(name)
            if value is None:
                return None
            if not isinstance(value, Mapping) or not all(
                isinstance(value.get(k), str) and value.get(k) for k in ("xml", "bin")
            ):
                raise fail(name, "must be an object with the paths `xml` and `bin`")
            return IR(xml=value["xml"], bin=value["bin"])

        name = text("name", required=True)
        fmt = data.get("format")
        if fmt not in FORMATS:
            raise ManifestError(f"{source}: unsupported artifact format {fmt!r}")
        path = text("path", required=fmt == "tflite")
        weights = data.get("weights")
        if weights is not None and not (
            isinstance(weights, Mapping) and isinstance(weights.get("path"), str)
        ):
            raise fail("weights", "must be an object with a `path`")
        manifest = cls(
            name=str(name),
            format=str(fmt),
            path=path,
            sha256=text("sha256"),
            weights=weights,
            openvino=ir("openvino"),
            openvino_fp16=ir("openvino_fp16"),
            files=_files(data.get("files"), fail),
            raw=data,
        )
        if fmt == "saved_model" and path is None and manifest.openvino is None:
            raise fail("path", "is required (a SavedModel) when there is no `openvino` IR")
        return manifest

    @classmethod
    def loads(cls, text: str | bytes, source: str = MANIFEST) -> Manifest:
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise ManifestError(f"{source} is not JSON") from exc
        return cls.parse(data, source)

    @classmethod
    def read(cls, directory: Path) -> Manifest:
        """The manifest of the artifact in `directory` (OSError when it cannot be read)."""
        path = directory / MANIFEST
        return cls.loads(path.read_text(), str(path))

    @classmethod
    def of(cls, value: Manifest | Mapping[str, Any]) -> Manifest:
        """`value` itself, or the Manifest the decoded JSON object `value` describes."""
        return value if isinstance(value, Manifest) else cls.parse(value)


def _files(value: Any, fail: Any) -> dict[str, FileEntry] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise fail("files", "must map paths to {bytes, sha256}")
    entries: dict[str, FileEntry] = {}
    for path, entry in value.items():
        size = entry.get("bytes") if isinstance(entry, Mapping) else None
        digest = entry.get("sha256") if isinstance(entry, Mapping) else None
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise fail("files", f"entry {path!r} needs a size in `bytes`")
        if not isinstance(digest, str) or len(digest) != 64:
            raise fail("files", f"entry {path!r} needs a hex `sha256`")
        entries[str(path)] = FileEntry(bytes=size, sha256=digest.lower())
    return entries
