"""The seed-style pipeline (Keras VGG16 built in the process, full-size `load_img`,
`model.predict()` per image) against ours, in one subprocess (`--part seed`), and how each way of
getting 224x224 pixels moves the pixels and a random network's labels."""

from __future__ import annotations

import io
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from infra.bench import inputs


def part_seed(fp32_dir: str, int8_dir: str, repeat: int) -> dict[str, Any]:
    """Seed-style pipeline vs ours in one process, plus the resize/crop choice's effect."""
    import tensorflow as tf  # noqa: F401  (imported first: both pipelines need it)
    from keras.applications.vgg16 import preprocess_input
    from keras.utils import img_to_array, load_img

    from autotagger import model
    from autotagger.clients import cloudinary_client
    from autotagger.media import imaging
    from autotagger.model import build

    started = time.perf_counter()
    keras_model, _ = build.build_keras_vgg16("random")
    keras_model.predict(np.zeros((1, 224, 224, 3), np.float32), verbose=0)
    seed_ready_s = time.perf_counter() - started
    started = time.perf_counter()
    ours = model.get_model(fp32_dir)
    ours_ready_s = time.perf_counter() - started
    ours_int8 = model.get_model(int8_dir, "int8")

    def seed(data: bytes) -> np.ndarray:
        pixels = img_to_array(load_img(io.BytesIO(data), target_size=(224, 224)))
        return np.asarray(keras_model.predict(preprocess_input(pixels[None]), verbose=0))

    def ours_full(data: bytes) -> np.ndarray:
        return ours.predict(imaging.preprocess(imaging.load_rgb(data, 10**9)[None]))

    def ours_int8_full(data: bytes) -> np.ndarray:
        return ours_int8.predict(imaging.preprocess(imaging.load_rgb(data, 10**9)[None]))

    def timed(fn: Callable[[bytes], np.ndarray], data: bytes) -> float:
        fn(data)
        times = []
        for _ in range(repeat):
            started = time.perf_counter()
            fn(data)
            times.append(time.perf_counter() - started)
        return statistics.median(times) * 1e3

    small, big = inputs.photo((1024, 768)), inputs.photo((4000, 3000))
    rendition = inputs.render(big, cloudinary_client.RENDITION)
    per_image = {
        "seed_small_ms": timed(seed, small),
        "seed_12mp_ms": timed(seed, big),
        "ours_small_ms": timed(ours_full, small),
        "ours_12mp_full_ms": timed(ours_full, big),
        "ours_12mp_rendition_ms": timed(ours_full, rendition),
        "ours_int8_12mp_rendition_ms": timed(ours_int8_full, rendition),
    }
    decode = {}
    for name, data in [("12mp_full", big), ("12mp_rendition_png", rendition)]:
        imaging.load_rgb(data, 10**9)
        started = time.perf_counter()
        for _ in range(5):
            imaging.load_rgb(data, 10**9)
        decode[name] = (time.perf_counter() - started) / 5 * 1e3
    started = time.perf_counter()
    img_to_array(load_img(io.BytesIO(big), target_size=(224, 224)))
    decode["12mp_keras_load_img"] = (time.perf_counter() - started) * 1e3
    formats = {}
    for transformation in ["c_scale,w_224,h_224,f_png", "c_scale,w_224,h_224,f_jpg,q_95"]:
        derived = inputs.render(big, transformation)
        imaging.load_rgb(derived, 10**9)
        started = time.perf_counter()
        for _ in range(20):
            pixels = imaging.load_rgb(derived, 10**9)
        formats[transformation] = {
            "bytes": len(derived),
            "decode_ms": (time.perf_counter() - started) / 20 * 1e3,
            "mean_abs_diff_vs_png": float(
                np.abs(pixels.astype(int) - imaging.load_rgb(rendition, 10**9).astype(int)).mean()
            ),
        }
    return {
        "seed_ready_s": seed_ready_s,
        "ours_ready_s": ours_ready_s,
        **per_image,
        "decode_ms": decode,
        "formats": formats,
        "resize": resize_effect(ours, load_img, img_to_array),
    }


def resize_effect(ours: Any, load_img: Any, img_to_array: Any) -> dict[str, Any]:
    """Each way of getting 224x224 pixels against our full-size decode and against Keras's
    default load_img (nearest): mean |pixel difference| and random-weights label agreement."""
    from autotagger.media import imaging

    variants: dict[str, list[np.ndarray]] = {
        "ours (full-size, draft + bilinear AA)": [],
        "c_scale rendition (squash, PNG)": [],
        "c_fill rendition (center crop, PNG)": [],
        "Keras load_img nearest": [],
        "Keras load_img bilinear": [],
    }
    names = []
    for name, data in inputs.resize_images():
        names.append(name)
        pixels = [
            imaging.load_rgb(data, 10**9),
            imaging.load_rgb(inputs.render(data, "c_scale,w_224,h_224,f_png"), 10**9),
            imaging.load_rgb(inputs.render(data, "c_fill,w_224,h_224,f_png"), 10**9),
            img_to_array(load_img(io.BytesIO(data), target_size=(224, 224))).astype(np.uint8),
            img_to_array(
                load_img(io.BytesIO(data), target_size=(224, 224), interpolation="bilinear")
            ).astype(np.uint8),
        ]
        for key, value in zip(variants, pixels, strict=True):
            variants[key].append(value)
    outputs = {
        key: ours.predict(imaging.preprocess(np.stack(values))) for key, values in variants.items()
    }
    rows = {}
    for reference in ("ours (full-size, draft + bilinear AA)", "Keras load_img nearest"):
        ref_pixels, ref_out = np.stack(variants[reference]).astype(int), outputs[reference]
        for key, values in variants.items():
            if key == reference:
                continue
            out = outputs[key]
            top5 = [
                len(set(np.argsort(-a)[:5]) & set(np.argsort(-b)[:5])) / 5
                for a, b in zip(ref_out, out, strict=True)
            ]
            rows[f"{key} vs {reference}"] = {
                "mean_abs_pixel_diff": float(
                    np.abs(np.stack(values).astype(int) - ref_pixels).mean()
                ),
                "top1_agreement": float(np.mean(ref_out.argmax(1) == out.argmax(1))),
                "top5_overlap": float(np.mean(top5)),
            }
    return {"images": names, "rows": rows}
