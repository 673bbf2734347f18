"""Soak test: N signed webhooks at concurrency C against on_upload under functions-framework.

    python tests/load.py [--requests 200] [--concurrency 8] [--duplicates 0.1]

Starts the Firestore emulator, the Cloudinary stand-in and `on_upload` (gunicorn, THREADS=8)
with the random-weights VGG16 artifact; warms it with one burst at the target concurrency
(so first-time allocations, e.g. batch buffers, are not counted as growth); then sends the webhooks
(a share of them delivered twice, as Cloudinary may) and prints errors, documents found, p50/p95
latency and the RSS of the server's process tree before and after. Exits non-zero on any
error, any missing document or RSS growth of 15% or more. Not part of `make test`.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil
import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "function")]

from infra import local  # noqa: E402
from infra.local_cloudinary import CloudinaryStandin  # noqa: E402
from tests.helpers import image_bytes, notification_from, sign_body  # noqa: E402


def _rss_mb(pid: int) -> float:
    process = psutil.Process(pid)
    tree = [process, *process.children(recursive=True)]
    return sum(p.memory_info().rss for p in tree) / 2**20


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--duplicates", type=float, default=0.1, help="share delivered twice")
    args = parser.parse_args(argv)

    print(local.describe_firestore_emulator(), flush=True)
    emulator, host = local.start_emulator()
    standin = CloudinaryStandin(cloud_name="load").start()
    port = local.free_port()
    env = {
        **os.environ,
        "CLOUDINARY_URL": standin.cloudinary_url,
        "CLOUDINARY_DELIVERY_HOSTS": standin.delivery_host,
        "FIRESTORE_EMULATOR_HOST": host,
        "GOOGLE_CLOUD_PROJECT": "demo-autotagger-load",
        "FIRESTORE_COLLECTION": f"load{int(time.time())}",
        "MODEL_WEIGHTS": str(local.ensure_random_model()),
        "THREADS": "8",
        "LOG_LEVEL": "WARNING",
    }
    server = local.serve("on_upload", port, env)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                requests.get(url, timeout=1)
                break
            except requests.ConnectionError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise SystemExit("on_upload did not start") from None
                time.sleep(0.2)

        def deliver(resource: dict) -> tuple[int, float]:
            body = notification_from(resource)
            started = time.perf_counter()
            response = requests.post(
                url, data=body, headers=sign_body(body, standin.api_secret), timeout=120
            )
            return response.status_code, (time.perf_counter() - started) * 1e3

        warm = [
            standin.add_asset(image_bytes((640, 480)), public_id=f"load/warmup{i}")
            for i in range(args.concurrency * 2)
        ]
        with ThreadPoolExecutor(args.concurrency) as pool:
            list(pool.map(deliver, warm))
        rss_before = _rss_mb(server.pid)
        warm_tag_writes = sum(1 for c in standin.calls if c["path"].endswith("/tags"))
        rng = random.Random(7)
        resources = [
            standin.add_asset(
                image_bytes(
                    (rng.randint(200, 1600), rng.randint(200, 1200)),
                    (rng.randint(0, 255), rng.randint(0, 255), rng.randint(0, 255)),
                ),
                public_id=f"load/{i:04d}",
            )
            for i in range(args.requests)
        ]
        deliveries = resources + rng.sample(resources, int(len(resources) * args.duplicates))
        rng.shuffle(deliveries)
        started = time.perf_counter()
        with ThreadPoolExecutor(args.concurrency) as pool:
            answers = list(pool.map(deliver, deliveries))
        elapsed = time.perf_counter() - started
        rss_after = _rss_mb(server.pid)

        errors = [status for status, _ in answers if status not in (200, 409)]
        conflicts = sum(1 for status, _ in answers if status == 409)
        latencies = sorted(ms for _, ms in answers)
        from google.cloud import firestore  # read back straight from the emulator

        os.environ["FIRESTORE_EMULATOR_HOST"] = host
        client = firestore.Client(project=env["GOOGLE_CLOUD_PROJECT"])
        documents = {
            doc.id: (doc.to_dict() or {}).get("status")
            for doc in client.collection(env["FIRESTORE_COLLECTION"]).stream()
        }
        done = sum(1 for r in resources if documents.get(r["asset_id"]) == "done")
        tag_writes = sum(1 for c in standin.calls if c["path"].endswith("/tags")) - warm_tag_writes
        growth = (rss_after - rss_before) / rss_before * 100
        p50 = statistics.median(latencies)
        p95 = latencies[int(len(latencies) * 0.95) - 1]
        print(
            f"deliveries:       {len(deliveries)} ({len(resources)} assets, "
            f"{len(deliveries) - len(resources)} duplicates), concurrency {args.concurrency}"
        )
        print(f"errors:           {len(errors)} {sorted(set(errors)) or ''}")
        print(f"409 in progress:  {conflicts}")
        print(f"documents done:   {done}/{len(resources)}")
        print(f"tag writes:       {tag_writes} (one per asset expected)")
        print(f"latency p50/p95:  {p50:.0f} / {p95:.0f} ms")
        print(f"throughput:       {len(deliveries) / elapsed:.2f} req/s over {elapsed:.1f} s")
        print(f"RSS before/after: {rss_before:.0f} / {rss_after:.0f} MB ({growth:+.1f}%)")
        ok = not errors and done == len(resources) and tag_writes == len(resources) and growth < 15
        print("OK" if ok else "FAILED")
        return 0 if ok else 1
    finally:
        local.stop([server])
        standin.stop()
        local.stop([emulator])


if __name__ == "__main__":
    raise SystemExit(main())
