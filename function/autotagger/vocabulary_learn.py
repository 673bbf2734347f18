"""Learning the account's vocabulary from the tags people put on their assets (build time).

One-vs-rest logistic regressions (scikit-learn) over the stored embeddings, one per tag with at
least VOCABULARY_MIN_EXAMPLES positives. Each tag is judged on held-out data before it may be
written: stratified k-fold out-of-fold scores give its average precision and the threshold
that keeps the most of its pictures while precision stays at VOCABULARY_PRECISION or above
(placed mid-gap to the next held-out score below it), with the recall left there. A tag that
never reaches that precision, or only on a sliver of its pictures (recall below `MIN_RECALL`),
is refused as "not visual" (a client name, a project code): chance can put a few positives on
top, never half of them. The model of a learned tag is then fitted on all its data.

Which assets teach: those with at least one person's tag (never ours: labels, concepts and
learned tags are in the document's `tags`; anything starting with TAG_PREFIX is ours too). An
asset with a person's tag is a negative for every tag it lacks; an asset without any person's
tag is unlabelled and left out: it is what the vocabulary is for, not evidence against it.

Serving never imports this module (nor scikit-learn): the result is a plain weight matrix.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from joblib import Parallel, delayed
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, precision_recall_curve
from sklearn.model_selection import StratifiedKFold
from threadpoolctl import threadpool_limits

MAX_FOLDS = 5
MANY_POSITIVES = 50  # from here on 3 folds: each still holds out >= 16 positives, 1/3 fewer fits
MIN_RECALL = 0.5  # a threshold that keeps fewer of a tag's pictures than this is chance, not sight
SEED = 0


@dataclass
class TagReport:
    """One tag's outcome: cross-validated AP, the operating point, learned or why not."""

    tag: str
    positives: int
    ap: float | None = None
    threshold: float | None = None  # a probability (the sigmoid of the held-out score)
    precision: float | None = None
    recall: float | None = None
    learned: bool = False
    reason: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Learned:
    """What `learn` found: every tag's report, and the learned tags' weights on raw embeddings."""

    reports: list[TagReport]
    tags: tuple[str, ...]
    weights: np.ndarray  # (dim, T) float32
    bias: np.ndarray  # (T,) float32
    thresholds: np.ndarray  # (T,) float32
    assets: int  # labelled assets trained on
    unlabelled: int
    seconds: float

    def figures(self) -> tuple[dict[str, Any], ...]:
        by_tag = {r.tag: r for r in self.reports}
        return tuple(
            {
                "positives": by_tag[t].positives,
                "ap": by_tag[t].ap,
                "precision": by_tag[t].precision,
                "recall": by_tag[t].recall,
            }
            for t in self.tags
        )


def people_tags(cloudinary_tags: Iterable[str], document: dict[str, Any], prefix: str) -> set[str]:
    """The asset's tags put there by people: all of them but what the document says we wrote
    (`tags`, and the learned ones in `vocabulary`) and anything carrying TAG_PREFIX."""
    ours = {str(t) for t in document.get("tags") or ()}
    written = (document.get("vocabulary") or {}).get("tags") or ()
    ours |= {str(t.get("tag")) for t in written if isinstance(t, dict)}
    return {
        tag
        for tag in (str(t) for t in cloudinary_tags)
        if tag not in ours and not (prefix and tag.startswith(prefix))
    }


def _model() -> LogisticRegression:
    # balanced: a tag on 1% of the library still weighs as much as its negatives; tol 1e-3:
    # the ranking (all that the threshold uses) is settled long before tighter optima.
    return LogisticRegression(C=1.0, class_weight="balanced", max_iter=1000, tol=1e-3)


def _standardize(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(standardized x, mean, scale). The scale is floored at a tenth of the median, so a
    near-constant dimension cannot turn a tiny serving-time wobble into a large logit."""
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    floor = 0.1 * float(np.median(scale)) if scale.size else 0.0
    scale = np.maximum(scale, max(floor, 1e-8))
    return ((x - mean) / scale).astype(np.float32), mean, scale


def _judge(
    z: np.ndarray, y: np.ndarray, tag: str, target: float
) -> tuple[TagReport, np.ndarray | None, float]:
    """Cross-validate one tag; fit it on everything when it passes. (report, w, b) on `z`."""
    positives = int(y.sum())
    negatives = len(y) - positives
    report = TagReport(tag=tag, positives=positives)
    folds = min(3 if positives >= MANY_POSITIVES else MAX_FOLDS, positives, negatives)
    if folds < 2:
        report.reason = "on (nearly) every tagged asset: nothing to tell it apart from"
        return report, None, 0.0
    held_out = np.empty(len(y), dtype=np.float64)
    for train, test in StratifiedKFold(folds, shuffle=True, random_state=SEED).split(z, y):
        held_out[test] = _model().fit(z[train], y[train]).decision_function(z[test])
    report.ap = round(float(average_precision_score(y, held_out)), 4)
    precision, recall, thresholds = precision_recall_curve(y, held_out)
    reaching = np.flatnonzero(precision[:-1] >= target)
    if not reaching.size:
        report.reason = f"not visual: held-out precision never reaches {target:g}"
        return report, None, 0.0
    # The most recall the target allows; of the thresholds giving it, the highest (fewest
    # false positives): precision_recall_curve orders thresholds upwards.
    best = reaching[recall[reaching] == recall[reaching].max()][-1]
    report.precision = round(float(precision[best]), 4)
    report.recall = round(float(recall[best]), 4)
    # Every threshold between that score and the next lower held-out score keeps the same
    # assets; the middle of that gap leaves new pictures a margin on both sides.
    below = held_out[held_out < thresholds[best]]
    cut = (thresholds[best] + below.max()) / 2 if below.size else thresholds[best]
    report.threshold = round(float(1.0 / (1.0 + np.exp(-cut))), 6)
    if recall[best] < MIN_RECALL:
        report.reason = (
            f"not visual: precision {target:g} only at recall {recall[best]:.2f} "
            f"(below {MIN_RECALL:g})"
        )
        return report, None, 0.0
    final = _model().fit(z, y)
    report.learned, report.reason = True, "learned"
    return report, final.coef_[0].astype(np.float64), float(final.intercept_[0])


def learn(
    embeddings: np.ndarray,
    tag_sets: Sequence[set[str]],
    *,
    min_examples: int,
    precision: float,
    jobs: int | None = None,
) -> Learned:
    """Judge and train every tag of `tag_sets` (people's tags, one set per row of
    `embeddings`); see the module doc for the rules."""
    started = time.perf_counter()
    rows = [i for i, tags in enumerate(tag_sets) if tags]
    counts = Counter(tag for i in rows for tag in tag_sets[i])
    dim = int(embeddings.shape[1]) if embeddings.ndim == 2 else 0
    reports = [
        TagReport(tag=t, positives=n, reason=f"too few examples: {n} (needs {min_examples})")
        for t, n in sorted(counts.items())
        if n < min_examples
    ]
    candidates = sorted(t for t, n in counts.items() if n >= min_examples)
    tags: list[str] = []
    weights: list[np.ndarray] = []
    biases: list[float] = []
    thresholds: list[float] = []
    if candidates:
        x = np.asarray(embeddings[rows], dtype=np.float64)
        z, mean, scale = _standardize(x)
        position = {tag: k for k, tag in enumerate(candidates)}
        labels = np.zeros((len(rows), len(candidates)), dtype=bool)
        for r, i in enumerate(rows):
            for tag in tag_sets[i]:
                if tag in position:
                    labels[r, position[tag]] = True
        workers = jobs or min(4, os.cpu_count() or 1)
        # One BLAS thread per fit, fits in parallel threads: BLAS's own threads fight each other
        # (and every other process) on a small shared CPU, 4-10x slower measured here.
        with threadpool_limits(1):
            judged = Parallel(n_jobs=workers, prefer="threads")(
                delayed(_judge)(z, labels[:, k], tag, precision) for k, tag in enumerate(candidates)
            )
        for report, w, b in judged:
            reports.append(report)
            if w is None:
                continue
            raw = w / scale  # back to raw embeddings: serving is one product, no scaler
            tags.append(report.tag)
            weights.append(raw)
            biases.append(b - float(mean @ raw))
            thresholds.append(float(report.threshold or 0.0))
    reports.sort(key=lambda r: (not r.learned, -r.positives, r.tag))
    return Learned(
        reports=reports,
        tags=tuple(tags),
        weights=(np.stack(weights, axis=1) if weights else np.zeros((dim, 0))).astype(np.float32),
        bias=np.asarray(biases, dtype=np.float32),
        thresholds=np.asarray(thresholds, dtype=np.float32),
        assets=len(rows),
        unlabelled=len(tag_sets) - len(rows),
        seconds=round(time.perf_counter() - started, 3),
    )


def plot(reports: Sequence[TagReport], path: Path, target: float, limit: int = 60) -> int:
    """Precision and recall per tag (held-out, at the chosen threshold) and AP, as a PNG/SVG/PDF
    at `path`; refused tags shown with their AP only. The `limit` most used tags; how many."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = sorted(
        (r for r in reports if r.ap is not None), key=lambda r: (not r.learned, -r.positives)
    )[:limit]
    height = max(2.8, 0.32 * len(shown) + 1.6)
    figure, axes = plt.subplots(figsize=(8, height))
    ys = np.arange(len(shown))
    bar = 0.27
    axes.barh(ys - bar, [r.precision or 0 for r in shown], bar, label="precision", color="#2b7")
    axes.barh(ys, [r.recall or 0 for r in shown], bar, label="recall", color="#27b")
    axes.barh(ys + bar, [r.ap or 0 for r in shown], bar, label="AP (held out)", color="#bbb")
    axes.axvline(target, color="#c33", linestyle="--", linewidth=1, label=f"target {target:g}")
    axes.set_yticks(
        ys, [f"{r.tag} ({r.positives})" + ("" if r.learned else " — refused") for r in shown]
    )
    axes.invert_yaxis()
    axes.set_xlim(0, 1.02)
    axes.set_xlabel("held-out precision / recall at the learned threshold")
    learned = sum(r.learned for r in reports)
    axes.set_title(f"Learned vocabulary: {learned} of {len(reports)} tags learned")
    axes.set_title(axes.get_title(), pad=22)
    axes.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=4, fontsize=8, frameon=False)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return len(shown)
