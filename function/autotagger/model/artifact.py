"""Reading an artifact's manifest: which engine serves it, its served name, the files it needs.

Each function takes a `Manifest` (or the decoded JSON object, parsed here)."""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from typing import Any

from autotagger.domain import IR, Manifest
from autotagger.model.spec import ENGINES

ManifestLike = Manifest | Mapping[str, Any]


def openvino_available() -> bool:
    """Whether the `openvino` package is installed (looked up, not imported)."""
    return importlib.util.find_spec("openvino") is not None


def choose_engine(manifest: ManifestLike, engine: str) -> str:
    """`tensorflow` or `openvino` for an fp32 artifact's manifest under MODEL_ENGINE=`engine`."""
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")
    parsed = Manifest.of(manifest)
    has_ir = parsed.openvino is not None
    if engine == "auto":
        return "openvino" if has_ir and openvino_available() else "tensorflow"
    if engine == "openvino" and not has_ir:
        raise ValueError(
            "MODEL_ENGINE=openvino: the artifact has no OpenVINO IR; rebuild it with "
            "infra/build_model.py"
        )
    if engine == "tensorflow" and parsed.path is None:
        raise ValueError("MODEL_ENGINE=tensorflow: the artifact has no SavedModel")
    return engine


def artifact_name(manifest: ManifestLike) -> str:
    """The served name of an artifact (`Manifest.served_name`)."""
    return Manifest.of(manifest).served_name


def fp16_entry(manifest: ManifestLike, engine: str) -> IR:
    """The manifest's fp16-compressed IR (MODEL_PRECISION=fp16: OpenVINO only)."""
    if engine == "tensorflow":
        raise ValueError("MODEL_PRECISION=fp16 is OpenVINO's IR: not with MODEL_ENGINE=tensorflow")
    entry = Manifest.of(manifest).openvino_fp16
    if entry is None:
        raise ValueError(
            "MODEL_PRECISION=fp16: the artifact has no fp16 IR; rebuild it with "
            "infra/build_model.py"
        )
    return entry


def artifact_files(manifest: ManifestLike, precision: str, engine: str) -> list[str]:
    """The artifact's files (relative paths) that serving it at `precision` with `engine` reads:
    what a fetch from Cloud Storage copies (nothing else)."""
    parsed = Manifest.of(manifest)
    if parsed.format == "tflite":
        return [str(parsed.path)]
    if precision == "fp16":
        entry = fp16_entry(parsed, engine)
        return [entry.xml, entry.bin]
    if precision != "int8" and choose_engine(parsed, engine) == "openvino":
        assert parsed.openvino is not None  # choose_engine said so
        return [parsed.openvino.xml, parsed.openvino.bin]
    saved_model = str(parsed.path).rstrip("/") + "/"
    weights = [parsed.weights_path] if parsed.weights_path is not None else []
    return [path for path in parsed.files or {} if path.startswith(saved_model)] + weights
