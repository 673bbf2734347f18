"""Benchmark of video uploads: warm end to end of an 8-frame video against the bare forward.

    python -m infra.bench.video [--out docs] [--quick]       (what `make bench-video` runs)

Measured side by side in one run on this machine (with `make bench`'s server runner, CPU
accounting and machine description):

- the bare reference, in its own subprocess, before and after the server runs: the fp32
  artifact's forward of a batch of 8 frames (warm, median), and of 1 image;
- `on_upload` under functions-framework (gunicorn, THREADS=8, fp32, default MODEL_MAX_BATCH=8,
  VIDEO_FRAMES=8) with the Firestore emulator and the Cloudinary stand-in, sent signed video
  upload notifications one at a time, each a new asset: the client's end-to-end time, and the
  server's stages (`download` = the eight frame fetches, concurrent, overlapping the claim);
  one image the same way, for its overhead.

The stand-in makes each frame with PyAV + Pillow in this process. Cloudinary keeps a derived
frame once made (and an eager transformation makes it at upload); the stand-in is given the
same behaviour (frames cached per asset after the warm-up request), and frames made on demand
(decoded on every request) are reported too. Random weights: only timings mean anything.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
import requests

from autotagger.media import video
from infra import local
from infra.bench import harness, inputs
from infra.bench.accounting import CpuAccount, machine
from infra.bench.harness import Outcome
from infra.local_cloudinary import CloudinaryStandin
from infra.local_cloudinary import delivery as standin_delivery
from tests.support.helpers import notification_from, sign_body
from tests.support.videos import make_mp4

GOAL = 1.25
FRAMES = 8


def _part_forward(weights: str, repeat: int) -> dict[str, Any]:
    """The bare model: the fp32 artifact's forward of 8 frames and of 1 image (warm)."""
    from autotagger import model

    classifier = model.get_model(weights, "fp32")
    batch = np.random.default_rng(0).uniform(-120, 130, (FRAMES, 224, 224, 3)).astype(np.float32)
    out: dict[str, Any] = {}
    for size in (FRAMES, 1):
        classifier.predict(batch[:size])
        times = []
        for _ in range(repeat):
            started = time.perf_counter()
            classifier.predict(batch[:size])
            times.append((time.perf_counter() - started) * 1e3)
        out[f"batch{size}_ms"] = statistics.median(times)
        out[f"batch{size}_all_ms"] = times
    return out


def _deliver(url: str, standin: CloudinaryStandin, resource: dict[str, Any]) -> Outcome:
    template = (
        "video_upload_notification.json"
        if resource["resource_type"] == "video"
        else "upload_notification.json"
    )
    body = notification_from(resource, template)
    headers = sign_body(body, standin.api_secret)
    started = time.perf_counter()
    response = requests.post(url, data=body, headers=headers, timeout=300)
    ms = (time.perf_counter() - started) * 1e3
    return Outcome(response.status_code, ms, response.json())


def _cache_frames(standin: CloudinaryStandin) -> dict[str, bool]:
    """Keep each frame `standin` delivers, as Cloudinary keeps derived assets; `switch["on"] =
    False` decodes every request instead."""
    original = standin_delivery.deliver_frame
    cache: dict[tuple[int, str, str], Any] = {}
    switch = {"on": True}

    def deliver(state: Any, asset: Any, steps: list[dict[str, str]], ext: str) -> Any:
        if state is not standin or not switch["on"]:
            return original(state, asset, steps, ext)
        key = (id(asset.data), repr(steps), ext)
        if key not in cache:
            cache[key] = original(state, asset, steps, ext)
        return cache[key]

    standin_delivery.deliver_frame = deliver
    return switch


def _stages(outcomes: list[Outcome]) -> dict[str, float]:
    names = {name for o in outcomes for name in o.record.get("timings", {})}
    return {
        name: statistics.median(o.record["timings"].get(name, 0.0) for o in outcomes)
        for name in sorted(names)
    }


def run(quick: bool) -> dict[str, Any]:
    count = 5 if quick else 20
    repeat = "5" if quick else "15"
    cpu = CpuAccount()
    fp32_dir = local.ensure_random_model("fp32")

    def forward() -> dict[str, Any]:
        return harness.part(
            "infra.bench.video", "forward", "--weights", str(fp32_dir), "--repeat", repeat
        )

    print("bench-video: bare model forward (batch 8, batch 1)...", flush=True)
    forwards = [forward()]
    clip = make_mp4(scenes=4, scene_s=2.5, fps=25, size=(640, 360))
    photo = inputs.photo((1024, 768))
    data: dict[str, Any] = {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "quick": quick,
        "video": {"seconds": 10.0, "size": "640x360", "fps": 25, "bytes": len(clip)},
    }
    with harness.bench_servers("autotagger-bench-video-") as runner:
        standin = runner.standin
        env = runner.env({"MODEL_WEIGHTS": str(fp32_dir), "VIDEO_FRAMES": str(FRAMES)})
        switch = _cache_frames(standin)
        print("bench-video: on_upload (fp32, micro-batching on)...", flush=True)
        server, cold = runner.start("video", env, runner.asset(photo, "cold"))
        try:
            counter = iter(range(10**6))

            def video_asset() -> dict[str, Any]:
                public_id = f"bench/video/{next(counter):05d}"
                return standin.add_asset(clip, public_id=public_id, resource_type="video")

            warm = [video_asset() for _ in range(count)]
            for resource in warm:  # the frames are made once (eager), as on Cloudinary
                for t in video.offsets(resource["duration"], FRAMES):
                    requests.get(video.frame_url(resource["secure_url"], t), timeout=30)
            _deliver(server.url, standin, video_asset())  # first video request: warm-up
            videos = [_deliver(server.url, standin, r) for r in warm]
            images = [
                _deliver(server.url, standin, runner.asset(photo, "image")) for _ in range(count)
            ]
            switch["on"] = False
            on_demand = [_deliver(server.url, standin, video_asset()) for _ in range(3)]
        finally:
            server.stop()
    print("bench-video: bare model forward again...", flush=True)
    forwards.append(forward())
    data["cold"] = cold
    data["cpu"] = cpu.stop()
    return _summarize(data, forwards, videos, images, on_demand)


def _summarize(
    data: dict[str, Any],
    forwards: list[dict[str, Any]],
    videos: list[Outcome],
    images: list[Outcome],
    on_demand: list[Outcome],
) -> dict[str, Any]:
    data["errors"] = sum(not o.ok for o in videos + images + on_demand)
    data["frames_cached_ok"] = all(len(o.record.get("frames", [])) == FRAMES for o in videos)
    data["forward8_ms"] = statistics.median(ms for f in forwards for ms in f["batch8_all_ms"])
    data["forward1_ms"] = statistics.median(ms for f in forwards for ms in f["batch1_all_ms"])
    data["forward8_runs_ms"] = [f["batch8_ms"] for f in forwards]
    data["video_ms"] = statistics.median(o.ms for o in videos)
    data["video_all_ms"] = [round(o.ms, 1) for o in videos]
    data["video_stages_ms"] = _stages(videos)
    data["image_ms"] = statistics.median(o.ms for o in images)
    data["image_stages_ms"] = _stages(images)
    data["on_demand_ms"] = statistics.median(o.ms for o in on_demand)
    data["on_demand_stages_ms"] = _stages(on_demand)
    # Everything but the forward, per request: end to end minus the server's predict stage.
    for key, outcomes in (("video", videos), ("image", images)):
        data[f"{key}_overhead_ms"] = statistics.median(
            o.ms - o.record["timings"].get("predict", 0.0) for o in outcomes
        )
        data[f"{key}_predict_ms"] = statistics.median(
            o.record["timings"].get("predict", 0.0) for o in outcomes
        )
    return data


def report(data: dict[str, Any]) -> str:
    f8, f1 = data["forward8_ms"], data["forward1_ms"]
    video = data["video_ms"]
    stages = data["video_stages_ms"]
    ratio = video / f8
    fetch = stages.get("download", 0.0)
    claim = stages.get("claim", 0.0)
    rows = [
        "| measure | value | goal | met |",
        "| --- | ---: | --- | --- |",
        f"| warm end-to-end 8-frame video / bare forward of 8 frames | **{ratio:.2f}x** "
        f"({video:.0f} / {f8:.0f} ms) | ≤ {GOAL}x | {'yes' if ratio <= GOAL else '**no**'} |",
        f"| frame fetch stage (8 frames, concurrent) / end to end | {fetch / video:.1%} "
        f"({fetch:.0f} ms; the claim it overlaps: {claim:.0f} ms) | (report) | |",
        "| server stages of the video (median ms) | "
        + ", ".join(f"{k} {v:.0f}" for k, v in stages.items())
        + " | | |",
        "| everything but the forward (end to end - the server's predict stage), video vs "
        f"image | {data['video_overhead_ms']:.0f} ms vs {data['image_overhead_ms']:.0f} ms | "
        "≈ one image's overhead | "
        f"{'yes' if data['video_overhead_ms'] <= 1.5 * data['image_overhead_ms'] else 'no'} |",
        "| the server's predict stage / bare forward (contention in the server) | "
        f"{data['video_predict_ms'] / f8:.2f}x ({data['video_predict_ms']:.0f} / {f8:.0f} ms); "
        f"image {data['image_predict_ms'] / f1:.2f}x ({data['image_predict_ms']:.0f} / "
        f"{f1:.0f} ms) | (report) | |",
        f"| frames made on demand (decoded by the stand-in per request) | "
        f"{data['on_demand_ms']:.0f} ms, fetch stage "
        f"{data['on_demand_stages_ms'].get('download', 0.0):.0f} ms | (reference) | |",
        f"| errors | {data['errors']} | 0 | {'yes' if data['errors'] == 0 else '**no**'} |",
    ]
    cpu = data["cpu"]
    note = (
        f"Other processes used {cpu['others_core_s']:.0f} of {cpu['capacity_core_s']:.0f} "
        f"core-s ({cpu['others_share']:.0%}) during the run"
        + (": the machine was shared, numbers disturbed." if cpu["others_share"] > 0.1 else ".")
    )
    runs = ", ".join(f"{ms:.0f}" for ms in data["forward8_runs_ms"])
    return "\n".join(
        [
            f"{data['date']}, {data['machine']}, random weights, fp32, "
            f"VIDEO_FRAMES={FRAMES}, a {data['video']['seconds']:.0f} s "
            f"{data['video']['size']} H.264 clip.",
            "",
            *rows,
            "",
            f"Bare forward of 8 frames, median per run (before, after): {runs} ms. "
            f"Video end to end, each request: {data['video_all_ms']} ms. " + note,
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m infra.bench.video",
        description=__doc__,
        formatter_class=argparse.RawTextHelpFormatter,
    )
    parser.add_argument("--out", type=Path, default=harness.ROOT / "docs")
    parser.add_argument("--quick", action="store_true", help="fewer requests (a smoke run)")
    parser.add_argument("--part", help=argparse.SUPPRESS)
    parser.add_argument("--weights", help=argparse.SUPPRESS)
    parser.add_argument("--repeat", type=int, default=15, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.part == "forward":
        print(json.dumps(_part_forward(args.weights, args.repeat)))
        return 0
    data = run(args.quick)
    title = "# Video benchmark\n\n`make bench-video` (`python -m infra.bench.video`).\n\n"
    text = title + report(data)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bench_video.md").write_text(text + "\n")
    (args.out / "bench_video.json").write_text(json.dumps(data, indent=1, default=str) + "\n")
    print()
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
