"""Soak test: N signed webhooks at concurrency C against on_upload under functions-framework.

    python tests/support/load.py [--requests 200] [--concurrency 8] [--duplicates 0.1]

Starts the Firestore emulator, the Cloudinary stand-in and `on_upload` (gunicorn, THREADS=8)
with the random-weights VGG16 artifact; warms it with one burst at the target concurrency
(so first-time allocations, e.g. batch buffers, are not counted as growth); then sends the webhooks
(a share of them delivered twice, as Cloudinary may) and prints errors, documents found, p50/p95
latency and the RSS of the server's process tree before and after. Exits non-zero on any
error, any missing document or RSS growth of 15% or more. Not part of `make test`.

Then queue mode (`--only queue` runs just this part), side by side with inline in one run, with
the Pub/Sub emulator and three servers (on_upload inline, on_upload WEBHOOK_MODE=queue,
on_message): p50/p99 acknowledgement of a burst of `--burst` webhooks at concurrency 32 in both
modes and the time the queue takes to drain through the emulator's push subscription; then the
throughput at concurrency 8 of inline webhooks vs Pub/Sub push bodies posted straight to
on_message (the emulator pushes only ~2 at a time), alternated A B A B, with the CPU-seconds per
image of each server; and, on paper from those, a 1M-image backfill at 10/50/100 instances.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psutil
import requests

from infra import emulators, local, processes
from infra.local_cloudinary import CloudinaryStandin
from tests.support.helpers import image_bytes, notification_from, sign_body

ROOT = Path(__file__).resolve().parents[2]


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
    parser.add_argument(
        "--only", choices=["soak", "queue"], help="one part (default: the soak, then queue mode)"
    )
    parser.add_argument("--burst", type=int, default=300, help="queue mode: burst size")
    parser.add_argument("--burst-concurrency", dest="concurrency_burst", type=int, default=32)
    parser.add_argument(
        "--throughput", type=int, default=120, help="queue mode: images per throughput side"
    )
    args = parser.parse_args(argv)
    if args.only == "queue":
        args.concurrency = args.concurrency_burst
        return queue_main(args)
    code = soak(args)
    if args.only == "soak" or code:
        return code
    args.concurrency = args.concurrency_burst
    return queue_main(args)


def soak(args: argparse.Namespace) -> int:
    """The soak test: N signed webhooks at concurrency C against on_upload (inline)."""

    print(emulators.describe_firestore_emulator(), flush=True)
    emulator, host = emulators.start_emulator()
    standin = CloudinaryStandin(cloud_name="load").start()
    port = processes.free_port()
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
    server = processes.serve("on_upload", port, env)
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
        processes.stop([server])
        standin.stop()
        processes.stop([emulator])


# -- queue mode: burst acknowledgement, drain, worker throughput (issue 9) ----------------------

# Cloud Functions gen2 / Cloud Run tier-1 prices (request-based billing): per vCPU-second and per
# GiB-second, for an instance of 2 vCPU and 4 GiB (what infra/deploy.sh deploys).
VCPU_SECOND_USD = 0.000024
GIB_SECOND_USD = 0.0000025
INSTANCE_SECOND_USD = 2 * VCPU_SECOND_USD + 4 * GIB_SECOND_USD


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]


def _cpu_s(pid: int) -> float:
    process = psutil.Process(pid)
    total = 0.0
    for p in [process, *process.children(recursive=True)]:
        times = p.cpu_times()
        total += times.user + times.system
    return total


def queue_main(args: argparse.Namespace) -> int:
    """Queue mode vs inline, side by side in one run (see the module doc)."""
    import base64

    from google.cloud import firestore

    from autotagger.queue import messages
    from autotagger.web.webhook import upload_from_resource
    from infra import local_pubsub

    emulator, host = emulators.start_emulator()
    pubsub_process, pubsub_host = emulators.start_gcloud_emulator("pubsub")
    standin = CloudinaryStandin(cloud_name="loadq").start()
    project, topic = "demo-autotagger-load", f"load-{int(time.time())}"
    env = {
        **os.environ,
        "CLOUDINARY_URL": standin.cloudinary_url,
        "CLOUDINARY_DELIVERY_HOSTS": standin.delivery_host,
        "FIRESTORE_EMULATOR_HOST": host,
        "PUBSUB_EMULATOR_HOST": pubsub_host,
        "GOOGLE_CLOUD_PROJECT": project,
        "FIRESTORE_COLLECTION": f"loadq{int(time.time())}",
        "PUBSUB_TOPIC": topic,
        "MODEL_WEIGHTS": str(local.ensure_random_model()),
        "LOG_LEVEL": "WARNING",
    }
    ports = {name: processes.free_port() for name in ("inline", "queue", "worker")}
    servers = {
        "inline": processes.serve("on_upload", ports["inline"], {**env, "THREADS": "32"}),
        "queue": processes.serve(
            "on_upload", ports["queue"], {**env, "THREADS": "32", "WEBHOOK_MODE": "queue"}
        ),
        "worker": processes.serve("on_message", ports["worker"], {**env, "THREADS": "8"}),
    }
    url = {name: f"http://127.0.0.1:{port}/" for name, port in ports.items()}
    os.environ.update(
        FIRESTORE_EMULATOR_HOST=host, PUBSUB_EMULATOR_HOST=pubsub_host, GOOGLE_CLOUD_PROJECT=project
    )
    try:
        for name, process in servers.items():
            processes.wait_until_up(url[name] + "healthz", process, timeout_s=300)
        local_pubsub.setup(pubsub_host, url["worker"], project, topic, max_delivery_attempts=100)
        session = requests.Session()
        session.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=64))
        rng = random.Random(11)
        counter = iter(range(10**6))

        def assets(n: int) -> list[dict]:
            return [
                standin.add_asset(
                    image_bytes(
                        (rng.randint(200, 1200), rng.randint(200, 900)),
                        (rng.randint(0, 255), rng.randint(0, 255), rng.randint(0, 255)),
                    ),
                    public_id=f"loadq/{next(counter):05d}",
                )
                for _ in range(n)
            ]

        def webhook(target: str) -> Any:
            def send(resource: dict) -> tuple[int, float]:
                body = notification_from(resource)
                started = time.perf_counter()
                answer = session.post(
                    url[target], data=body, headers=sign_body(body, standin.api_secret), timeout=600
                )
                return answer.status_code, (time.perf_counter() - started) * 1e3

            return send

        def push(resource: dict) -> tuple[int, float]:
            data, attributes = messages.build(
                messages.AssetMessage(upload_from_resource(resource), "backfill")
            )
            body = {
                "message": {
                    "data": base64.b64encode(data).decode(),
                    "attributes": attributes,
                    "messageId": resource["asset_id"],
                    "publishTime": "2026-11-25T00:00:00Z",
                },
                "subscription": f"projects/{project}/subscriptions/direct",
            }
            started = time.perf_counter()
            answer = session.post(url["worker"], json=body, timeout=600)
            return answer.status_code, (time.perf_counter() - started) * 1e3

        def run(send: Any, items: list[dict], concurrency: int) -> tuple[list, float]:
            started = time.perf_counter()
            with ThreadPoolExecutor(concurrency) as pool:
                answers = list(pool.map(send, items))
            return answers, time.perf_counter() - started

        client = firestore.Client(project=project)
        collection = client.collection(env["FIRESTORE_COLLECTION"])

        def final_count(ids: set[str]) -> int:
            found = 0
            for start in range(0, len(ids), 300):
                refs = [collection.document(i) for i in list(ids)[start : start + 300]]
                found += sum(
                    1
                    for snap in client.get_all(refs)
                    if snap.exists and (snap.to_dict() or {}).get("status") in ("done", "failed")
                )
            return found

        # Warm-up: both model-loading processes, and the queue path once.
        run(webhook("inline"), assets(16), 8)
        run(push, assets(16), 8)
        run(webhook("queue"), assets(4), 4)

        # 1. Burst at concurrency C: acknowledgement latency, inline vs queue; then the drain.
        inline_answers, inline_s = run(webhook("inline"), assets(args.burst), args.concurrency)
        burst = assets(args.burst)
        burst_ids = {r["asset_id"] for r in burst}
        drain_started = time.perf_counter()
        queue_answers, queue_s = run(webhook("queue"), burst, args.concurrency)
        deadline = time.monotonic() + 3600
        while final_count(burst_ids) < len(burst_ids) and time.monotonic() < deadline:
            time.sleep(0.5)
        drain_s = time.perf_counter() - drain_started
        drained = final_count(burst_ids)

        # 2. Throughput at concurrency 8: inline webhooks vs push bodies posted to on_message,
        #    alternated (A B A B) so drift on a shared machine hits both alike.
        totals = {"inline": [0, 0.0], "worker": [0, 0.0]}
        cpu = {"inline": 0.0, "worker": 0.0}
        errors = 0
        for _ in range(2):
            for name, send in (("inline", webhook("inline")), ("worker", push)):
                items = assets(args.throughput // 2)
                before = _cpu_s(servers[name].pid)
                answers, elapsed = run(send, items, 8)
                cpu[name] += _cpu_s(servers[name].pid) - before
                errors += sum(1 for status, _ in answers if status >= 300)
                totals[name][0] += len(items)
                totals[name][1] += elapsed
        rate = {name: n / s for name, (n, s) in totals.items()}
        cpu_per_image = {name: cpu[name] / totals[name][0] for name in cpu}

        # 3. One model forward here and now: sequential requests (batches of 1), predict stage.
        probe = assets(6)
        run(webhook("inline"), probe, 1)
        probe_docs = [collection.document(r["asset_id"]).get().to_dict() or {} for r in probe]
        predicts = [d.get("timings", {}).get("predict") for d in probe_docs]
        predicts = [p for p in predicts if isinstance(p, int | float)]
        inline_ms = [ms for _, ms in inline_answers]
        queue_ms = [ms for _, ms in queue_answers]
        bad = [s for s, _ in inline_answers + queue_answers if s >= 300]
        print(f"queue mode vs inline, one run, {os.cpu_count()} vCPU (shared machine)")
        print(
            f"burst: {args.burst} webhooks at concurrency {args.concurrency}; non-2xx: {len(bad)}"
        )
        print(
            f"  ack p50/p99  inline {statistics.median(inline_ms):.0f} / "
            f"{_percentile(inline_ms, 0.99):.0f} ms ({inline_s:.1f} s for the burst)"
        )
        print(
            f"               queue  {statistics.median(queue_ms):.0f} / "
            f"{_percentile(queue_ms, 0.99):.0f} ms ({queue_s:.1f} s for the burst)"
        )
        if predicts:
            print(
                "  one model forward (6 sequential requests' predict stage, median): "
                f"{statistics.median(predicts):.0f} ms"
            )
        print(
            f"  drain through the emulator (pushes ~2 at a time): {drained}/{len(burst)} final "
            f"in {drain_s:.1f} s ({drained / drain_s:.2f} img/s)"
        )
        print(f"throughput at concurrency 8 ({args.throughput} each, A B A B), errors {errors}:")
        print(
            f"  inline webhooks      {rate['inline']:.2f} img/s, "
            f"{cpu_per_image['inline']:.3f} CPU-s/img"
        )
        print(
            f"  on_message (direct)  {rate['worker']:.2f} img/s, "
            f"{cpu_per_image['worker']:.3f} CPU-s/img"
        )
        print(f"  ratio worker / inline: {rate['worker'] / rate['inline']:.2f}x (goal >= 0.9x)")
        images = 1_000_000
        # An instance of 2 vCPU kept busy by the queue: 2 / (CPU-seconds per image) images/s.
        per_instance = 2 / cpu_per_image["worker"]
        print(
            f"on paper: backfill of {images:,} images at {cpu_per_image['worker']:.3f} CPU-s/img "
            f"= {per_instance:.1f} img/s per 2-vCPU instance"
        )
        for instances in (10, 50, 100):
            hours = images / (per_instance * instances) / 3600
            cost = images / per_instance * INSTANCE_SECOND_USD
            print(f"  --max-instances {instances:>3}: {hours:6.1f} h, ${cost:,.0f} compute")
        print(
            f"  Admin API: {images // 500:,} requests at 500 per page "
            f"({images // 500 / 500:.0f} h at 500/h, {images // 500 / 2000:.0f} h at 2,000/h)"
        )
        ok = not bad and not errors and drained == len(burst)
        print("OK" if ok else "FAILED")
        return 0 if ok else 1
    finally:
        processes.stop(list(servers.values()))
        standin.stop()
        processes.stop([pubsub_process, emulator])


if __name__ == "__main__":
    raise SystemExit(main())
