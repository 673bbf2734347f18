"""Pub/Sub: publish asset messages with the official client (`google-cloud-pubsub`).

The client honours `PUBSUB_EMULATOR_HOST` by itself (plain gRPC to the emulator, no
credentials). Every publish is bounded: transient gRPC errors are retried with exponential
backoff for at most `PUBSUB_PUBLISH_TIMEOUT_S`, then `PublishError` (HTTP 503) is raised, so the
sender (Cloudinary, the CLI) retries and nothing is lost silently.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING

from google.api_core import retry as api_retry

from autotagger.config import Settings
from autotagger.errors import ConfigError, PublishError
from autotagger.queue import messages
from autotagger.retry import GOOGLE_TRANSIENT

if TYPE_CHECKING:  # the client library is imported on first publish: inline mode never pays it
    from google.cloud.pubsub_v1 import PublisherClient

EMULATOR_PROJECT = "demo-autotagger"
_TRANSIENT = GOOGLE_TRANSIENT
_clients: dict[str | None, PublisherClient] = {}
_lock = threading.Lock()


def project(settings: Settings) -> str:
    """The project of the topic: GOOGLE_CLOUD_PROJECT, the emulator's default, or ADC's."""
    if settings.google_cloud_project:
        return settings.google_cloud_project
    if settings.pubsub_emulator_host:
        return EMULATOR_PROJECT
    import google.auth  # only off the emulator path

    try:
        _, found = google.auth.default()
    except google.auth.exceptions.DefaultCredentialsError:
        found = None
    if not found:
        raise ConfigError("GOOGLE_CLOUD_PROJECT is not set and ADC names no project")
    return str(found)


def topic_path(settings: Settings) -> str:
    from google.cloud.pubsub_v1 import PublisherClient

    return str(PublisherClient.topic_path(project(settings), settings.pubsub_topic))


def client(settings: Settings) -> PublisherClient:
    """One publisher per emulator host (None = Google), created on first use."""
    from google.cloud.pubsub_v1 import PublisherClient
    from google.cloud.pubsub_v1.types import BatchSettings

    with _lock:
        key = settings.pubsub_emulator_host
        if key not in _clients:
            _clients[key] = PublisherClient(
                batch_settings=BatchSettings(max_latency=0.005, max_messages=500)
            )
        return _clients[key]


def _retry(settings: Settings) -> api_retry.Retry:
    return api_retry.Retry(
        predicate=api_retry.if_exception_type(*_TRANSIENT),
        initial=0.1,
        maximum=2.0,
        multiplier=2.0,
        timeout=settings.pubsub_publish_timeout_s,
    )


def publish_all(settings: Settings, items: Iterable[messages.AssetMessage]) -> list[str]:
    """Publish every message (batched by the client); return their ids in order.

    Raises PublishError when any of them is not accepted in time: the caller must treat the
    whole lot as not published (publishing again is harmless: the pipeline is idempotent).
    """
    publisher = client(settings)
    topic = topic_path(settings)
    retry = _retry(settings)
    futures = []
    try:
        for item in items:
            data, attributes = messages.build(item)
            futures.append(
                publisher.publish(
                    topic,
                    data,
                    retry=retry,
                    timeout=settings.pubsub_publish_timeout_s,
                    **attributes,
                )
            )
        wait_s = settings.pubsub_publish_timeout_s + 5.0
        return [str(future.result(timeout=wait_s)) for future in futures]
    except ConfigError:
        raise
    except Exception as exc:
        for future in futures:
            future.cancel()
        detail = " ".join(str(exc).split())[:300]
        raise PublishError(f"Pub/Sub publish to {settings.pubsub_topic} failed: {detail}") from exc


def publish(settings: Settings, item: messages.AssetMessage) -> str:
    """Publish one message; return its id (PublishError after the bounded retries)."""
    return publish_all(settings, [item])[0]
