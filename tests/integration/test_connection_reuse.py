"""Connections are reused under concurrency: the Cloudinary SDK's tag writes (Upload API) keep a
pooled connection per request thread instead of one per host (a fresh TCP + TLS handshake for
every concurrent call beyond the first)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import cloudinary.uploader

from autotagger import config
from autotagger.clients import cloudinary_client
from infra.local_cloudinary import CloudinaryStandin
from tests.support.helpers import image_bytes

THREADS = 8
ROUNDS = 3


def test_concurrent_tag_writes_reuse_pooled_connections(standin: CloudinaryStandin) -> None:
    standin.reset()
    cloudinary_client.configure(config.parse_cloudinary_url(standin.cloudinary_url))
    assets = [
        standin.add_asset(image_bytes((64, 48)), public_id=f"pool/{i}") for i in range(THREADS)
    ]
    pool = cloudinary.uploader._http.connection_from_url(standin.url)
    for round_ in range(ROUNDS):
        # Each call stalls in the stand-in, so the calls of a round overlap.
        standin.inject("/v1_1/", times=THREADS, delay_s=0.5, method="POST")
        with ThreadPoolExecutor(THREADS) as threads:
            list(
                threads.map(
                    lambda a, r=round_: cloudinary_client.write_tags(a["public_id"], [f"r{r}"], []),
                    assets,
                )
            )
    assert all(f"r{ROUNDS - 1}" in (standin.asset(a["public_id"]) or {})["tags"] for a in assets)
    # At most one connection per concurrent call, ever: later rounds reuse them (with the SDK's
    # default pool of one, each round beyond the first would open THREADS - 1 more).
    assert 1 <= pool.num_connections <= THREADS
