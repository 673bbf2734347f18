"""From the model's top-k predictions to what is stored and written back: label, score, tags;
and the concept tags added to them."""

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


def with_concepts(
    result: dict[str, Any], concept_fields: dict[str, Any], prefix: str
) -> dict[str, Any]:
    """`result` plus the concept fields (`concepts.fields`), each concept's name written as a tag
    after the labels' (TAG_PREFIX applies; a name already among the tags is not repeated)."""
    names = [prefix + c["name"] for c in concept_fields["concepts"]]
    tags = list(dict.fromkeys([*result["tags"], *names]))
    return {**result, **concept_fields, "tags": tags}
