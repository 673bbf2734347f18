"""From the model's top-k predictions to what is stored and written back: label, score, tags."""

from __future__ import annotations

from typing import Any

from autotagger.config import Settings
from autotagger.model import Prediction


def choose_tags(predictions: list[Prediction], threshold: float, prefix: str) -> list[str]:
    """Tags for every top-k label scoring at least `threshold`; the top-1 label always."""
    chosen = [p for i, p in enumerate(predictions) if i == 0 or p.score >= threshold]
    return [prefix + p.label for p in chosen]


def result(predictions: list[Prediction], settings: Settings, model_name: str) -> dict[str, Any]:
    """The classification fields of a document (an image's, or a video's aggregate)."""
    return {
        "label": predictions[0].label,
        "score": round(predictions[0].score, 6),
        "predictions": [
            {"label": p.label, "wnid": p.wnid, "score": round(p.score, 6)} for p in predictions
        ],
        "tags": choose_tags(predictions, settings.tag_threshold, settings.tag_prefix),
        "model": model_name,
    }
