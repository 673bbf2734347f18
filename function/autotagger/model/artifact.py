"""Reading an artifact's manifest: which engine serves it, its served name, the files it needs."""

from __future__ import annotations

import importlib.util
from typing import Any

from autotagger.model.spec import ENGINES


def openvino_available() -> bool:
    """Whether the `openvino` package is installed (looked up, not imported)."""
    return importlib.util.find_spec("openvino") is not None


def choose_engine(manifest: dict[str, Any], engine: str) -> str:
    """`tensorflow` or `openvino` for an fp32 artifact's manifest under MODEL_ENGINE=`engine`."""
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")
    has_ir = "openvino" in manifest
    if engine == "auto":
        return "openvino" if has_ir and openvino_available() else "tensorflow"
    if engine == "openvino" and not has_ir:
        raise ValueError(
            "MODEL_ENGINE=openvino: the artifact has no OpenVINO IR; rebuild it with "
            "infra/build_model.py"
        )
    if engine == "tensorflow" and "weights" not in manifest and "path" not in manifest:
        raise ValueError("MODEL_ENGINE=tensorflow: the artifact has no SavedModel")
    return engine


def artifact_name(manifest: dict[str, Any]) -> str:
    """The served name of an artifact: the manifest's `name`, plus `@` and the first 12 hex
    digits of the weights file's sha256 when the manifest records it (so a retrained or
    re-quantized model is a different model); older artifacts keep their plain name."""
    name = str(manifest["name"])
    digest = manifest.get("sha256")
    return f"{name}@{digest[:12]}" if isinstance(digest, str) and len(digest) >= 12 else name


def fp16_entry(manifest: dict[str, Any], engine: str) -> dict[str, Any]:
    """The manifest's fp16-compressed IR (MODEL_PRECISION=fp16: OpenVINO only)."""
    if engine == "tensorflow":
        raise ValueError("MODEL_PRECISION=fp16 is OpenVINO's IR: not with MODEL_ENGINE=tensorflow")
    entry = manifest.get("openvino_fp16")
    if not isinstance(entry, dict):
        raise ValueError(
            "MODEL_PRECISION=fp16: the artifact has no fp16 IR; rebuild it with "
            "infra/build_model.py"
        )
    return entry


def artifact_files(manifest: dict[str, Any], precision: str, engine: str) -> list[str]:
    """The artifact's files (relative paths) that serving it at `precision` with `engine` reads:
    what a fetch from Cloud Storage copies (nothing else)."""
    files = list(manifest.get("files") or {})
    if manifest.get("format") == "tflite":
        return [str(manifest["path"])]
    if precision == "fp16":
        entry = fp16_entry(manifest, engine)
        return [entry["xml"], entry["bin"]]
    if precision != "int8" and choose_engine(manifest, engine) == "openvino":
        return [manifest["openvino"]["xml"], manifest["openvino"]["bin"]]
    saved_model = str(manifest["path"]).rstrip("/") + "/"
    weights = [manifest["weights"]["path"]] if "weights" in manifest else []
    return [path for path in files if path.startswith(saved_model)] + weights
