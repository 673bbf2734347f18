"""Where "the same picture" ends: cosine distances of near-duplicates vs different pictures.

    python infra/near_duplicates.py [--weights DIR] [--images DIR] [--pictures 24] [--json]

Each picture (a folder's images, or generated photo-like ones) is compared with three copies of
itself, as people upload them again: resized to 70%, recompressed as JPEG quality 45, and with 4%
cropped off each edge. Prints both distributions of the embeddings' cosine distance (copy vs
its original; different pictures) and the threshold half-way between them on a log scale, i.e.
what NEAR_DUPLICATE_DISTANCE should be for these weights. Every embedding goes through the
served path (imaging.load_rgb + preprocess + the artifact's forward). Without --weights it uses
the cached random-weights artifact, whose distances are far smaller than real weights' (random
convolutions map every picture close to one direction): measure again with the ImageNet
artifact and your own pictures before relying on the threshold.
"""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from autotagger import model
from autotagger.media import imaging

ROOT = Path(__file__).resolve().parents[1]

VARIANTS = ("resized 70%", "JPEG q45", "cropped 4%")
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp"}


def picture(seed: int, size: tuple[int, int] = (640, 480)) -> bytes:
    """A photo-like generated picture (PNG): a two-colour gradient sky, a textured ground,
    shapes of several colours and sizes, a little blur; every seed a different scene."""
    rng = np.random.default_rng(1000 + seed)
    width, height = size
    top, bottom = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
    ramp = np.linspace(0.0, 1.0, height)[:, None, None]
    pixels = (top * (1 - ramp) + bottom * ramp) * np.ones((height, width, 3))
    horizon = int(rng.integers(height // 3, 2 * height // 3))
    ground = rng.integers(0, 256, 3)
    texture = rng.normal(0, float(rng.uniform(5, 40)), (height - horizon, width, 1))
    pixels[horizon:] = ground + texture
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    for _ in range(int(rng.integers(4, 12))):
        x0, y0 = int(rng.integers(0, width)), int(rng.integers(0, height))
        w, h = int(rng.integers(20, width // 2)), int(rng.integers(20, height // 2))
        color = tuple(int(v) for v in rng.integers(0, 256, 3))
        shape = int(rng.integers(0, 3))
        if shape == 0:
            draw.ellipse((x0, y0, x0 + w, y0 + h), fill=color)
        elif shape == 1:
            draw.rectangle((x0, y0, x0 + w, y0 + h), fill=color)
        else:
            draw.polygon(
                [(x0, y0), (x0 + w, y0 + int(rng.integers(-h, h))), (x0 + w // 2, y0 + h)],
                fill=color,
            )
    image = image.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.5, 2.0))))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def variants(data: bytes) -> list[bytes]:
    """The three near-duplicates of `data` (in VARIANTS' order): 70% size (JPEG q90), JPEG
    quality 45, 4% cropped off each edge (JPEG q90)."""
    image = Image.open(io.BytesIO(data)).convert("RGB")
    width, height = image.size

    def jpeg(img: Image.Image, quality: int) -> bytes:
        out = io.BytesIO()
        img.save(out, "JPEG", quality=quality)
        return out.getvalue()

    resized = image.resize((round(width * 0.7), round(height * 0.7)), Image.Resampling.LANCZOS)
    dx, dy = round(width * 0.04), round(height * 0.04)
    cropped = image.crop((dx, dy, width - dx, height - dy))
    return [jpeg(resized, 90), jpeg(image, 45), jpeg(cropped, 90)]


def embed(classifier: model.Classifier, images: list[bytes]) -> np.ndarray:
    """(N, D) embeddings of encoded images through the served decode and forward."""
    rows = []
    for data in images:
        batch = imaging.preprocess(imaging.load_rgb(data, 10**9)[None])
        out = model.infer(classifier, batch)
        if out.embeddings is None:
            raise SystemExit("near_duplicates: this model has no embedding output (rebuild it)")
        rows.append(out.embeddings[0])
    return np.stack(rows).astype(np.float64)


def measure(classifier: model.Classifier, originals: list[bytes]) -> dict[str, Any]:
    """Both distributions (copy vs original, per variant; different originals) and the
    suggested threshold."""
    base = embed(classifier, originals)
    copies = embed(classifier, [v for data in originals for v in variants(data)])
    copies = copies.reshape(len(originals), len(VARIANTS), -1)
    same = 1.0 - np.einsum("nd,nvd->nv", base, copies)
    similarity = base @ base.T
    different = 1.0 - similarity[np.triu_indices(len(originals), k=1)]
    # the closest copy-to-another-original pair matters too: a copy must not look like another
    cross = 1.0 - np.einsum("nvd,md->nvm", copies, base)
    mask = ~np.eye(len(originals), dtype=bool)[:, None, :].repeat(len(VARIANTS), axis=1)
    different_all = np.concatenate([different, cross[mask]])
    worst_same, best_different = float(same.max()), float(different_all.min())
    threshold = float(np.sqrt(max(worst_same, 1e-12) * best_different))
    return {
        "pictures": len(originals),
        "near_duplicate": _summary(same.reshape(-1)),
        "near_duplicate_by_variant": {
            name: _summary(same[:, i]) for i, name in enumerate(VARIANTS)
        },
        "different": _summary(different_all),
        "separated": worst_same < best_different,
        "margin": best_different / max(worst_same, 1e-12),
        "suggested_threshold": threshold,
    }


def _summary(values: np.ndarray) -> dict[str, float]:
    return {
        "count": float(values.size),
        "min": float(values.min()),
        "p5": float(np.percentile(values, 5)),
        "median": float(np.median(values)),
        "p95": float(np.percentile(values, 95)),
        "max": float(values.max()),
    }


def _print(result: dict[str, Any], name: str) -> None:
    print(f"model: {name}; {result['pictures']} pictures, 3 copies each\n")
    print("| pairs | count | min | p5 | median | p95 | max |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    rows = [("copy vs its original", result["near_duplicate"])]
    rows += [(f"  {k}", v) for k, v in result["near_duplicate_by_variant"].items()]
    rows.append(("different pictures", result["different"]))
    for label, s in rows:
        print(
            f"| {label} | {s['count']:.0f} | {s['min']:.3g} | {s['p5']:.3g} | {s['median']:.3g} "
            f"| {s['p95']:.3g} | {s['max']:.3g} |"
        )
    print(
        f"\nseparated: {result['separated']} (closest different / farthest copy = "
        f"{result['margin']:.1f}x); suggested "
        f"NEAR_DUPLICATE_DISTANCE={result['suggested_threshold']:.3g}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--weights", help="fp32 or int8 artifact (default: random weights)")
    parser.add_argument("--images", type=Path, help="folder of pictures (default: generated)")
    parser.add_argument("--pictures", type=int, default=24, help="generated pictures [24]")
    parser.add_argument("--json", action="store_true", help="also print the numbers as JSON")
    args = parser.parse_args(argv)
    if args.weights is None:
        from infra import local

        args.weights = str(local.ensure_random_model("fp32"))
    if args.images is not None:
        originals = [
            p.read_bytes()
            for p in sorted(args.images.rglob("*"))
            if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
        ]
        if len(originals) < 2:
            raise SystemExit(f"near_duplicates: fewer than 2 pictures in {args.images}")
    else:
        originals = [picture(seed) for seed in range(args.pictures)]
    classifier = model.get_model(args.weights)
    result = measure(classifier, originals)
    _print(result, classifier.name)
    if args.json:
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
