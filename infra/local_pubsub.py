"""Local Pub/Sub wiring for `make run`, tests and load runs, against gcloud's official emulator.

Creates (idempotently) the uploads topic, its dead-letter topic and a push subscription whose
endpoint is `on_message` under functions-framework, which turns Pub/Sub's push body into the
`messagePublished` CloudEvent, as Eventarc does in production. Uses `google-cloud-pubsub` with
`PUBSUB_EMULATOR_HOST`: the same client and calls as against Google.

    python infra/local_pubsub.py setup --emulator 127.0.0.1:8085 --endpoint http://127.0.0.1:8083
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from google.api_core import exceptions as google_exceptions
from google.cloud.pubsub_v1 import PublisherClient, SubscriberClient

from infra import emulators
from infra.processes import serve

DEFAULT_TOPIC = "autotagger-uploads"
DEFAULT_PROJECT = "demo-autotagger"
MAX_DELIVERY_ATTEMPTS = 5
ACK_DEADLINE_S = 600  # as deployed: longer than on_message's timeout, so a redelivery means the
# earlier delivery is over (it then continues its claim: autotagger/worker.py)


@dataclass(frozen=True)
class Wiring:
    """Full resource names of what `setup` made."""

    topic: str
    dead_letter_topic: str
    subscription: str
    dead_letter_subscription: str
    push_endpoint: str


@contextlib.contextmanager
def _emulator(host: str) -> Iterator[None]:
    """The client library reads PUBSUB_EMULATOR_HOST when a client is made."""
    previous = os.environ.get("PUBSUB_EMULATOR_HOST")
    os.environ["PUBSUB_EMULATOR_HOST"] = host
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("PUBSUB_EMULATOR_HOST", None)
        else:
            os.environ["PUBSUB_EMULATOR_HOST"] = previous


def push_endpoint(base_url: str, project: str, topic: str) -> str:
    """The push URL for `on_message` at `base_url`: the topic in the path lets
    functions-framework name the CloudEvent's source, as Eventarc does."""
    return f"{base_url.rstrip('/')}/projects/{project}/topics/{topic}"


def setup(
    emulator_host: str,
    base_url: str,
    project: str = DEFAULT_PROJECT,
    topic: str = DEFAULT_TOPIC,
    max_delivery_attempts: int = MAX_DELIVERY_ATTEMPTS,
    retry_backoff_s: tuple[int, int] | None = None,
) -> Wiring:
    """Create the topic, the dead-letter topic (with a pull subscription to read it) and the push
    subscription to `on_message` at `base_url`, with dead-lettering after
    `max_delivery_attempts`.

    No retry policy by default: with one, the emulator (0.8.20) stops redelivering a subscription
    whose pushes failed a few times in a row (seen with Firestore down); without one it redelivers
    a failed push after about a second. Production sets its backoff in `infra/deploy.sh`."""
    with _emulator(emulator_host):
        publisher, subscriber = PublisherClient(), SubscriberClient()
        try:
            names = Wiring(
                topic=publisher.topic_path(project, topic),
                dead_letter_topic=publisher.topic_path(project, f"{topic}-dead-letter"),
                subscription=subscriber.subscription_path(project, f"{topic}-push"),
                dead_letter_subscription=subscriber.subscription_path(
                    project, f"{topic}-dead-letter"
                ),
                push_endpoint=push_endpoint(base_url, project, topic),
            )
            for name in (names.topic, names.dead_letter_topic):
                with contextlib.suppress(google_exceptions.AlreadyExists):
                    publisher.create_topic(request={"name": name})
            with contextlib.suppress(google_exceptions.AlreadyExists):
                subscriber.create_subscription(
                    request={
                        "name": names.dead_letter_subscription,
                        "topic": names.dead_letter_topic,
                    }
                )
            subscription: dict[str, Any] = {
                "name": names.subscription,
                "topic": names.topic,
                "push_config": {"push_endpoint": names.push_endpoint},
                "ack_deadline_seconds": ACK_DEADLINE_S,
                "dead_letter_policy": {
                    "dead_letter_topic": names.dead_letter_topic,
                    "max_delivery_attempts": max_delivery_attempts,
                },
            }
            if retry_backoff_s is not None:
                subscription["retry_policy"] = {
                    "minimum_backoff": {"seconds": retry_backoff_s[0]},
                    "maximum_backoff": {"seconds": retry_backoff_s[1]},
                }
            try:
                subscriber.create_subscription(request=subscription)
            except google_exceptions.AlreadyExists:  # re-point an existing one (new port)
                subscriber.modify_push_config(
                    request={
                        "subscription": names.subscription,
                        "push_config": {"push_endpoint": names.push_endpoint},
                    }
                )
            return names
        finally:
            subscriber.close()
            publisher.transport.close()


def start_for_run(env: dict[str, str], processes: list[Any], port: int) -> None:
    """For `make run`: the Pub/Sub emulator (unless PUBSUB_EMULATOR_HOST is set), `on_message` on
    `port` and the wiring between them; `env` gets PUBSUB_EMULATOR_HOST, `processes` what was
    started. Without gcloud's Pub/Sub emulator: one line, and WEBHOOK_MODE=inline."""
    if not env.get("PUBSUB_EMULATOR_HOST"):
        if not emulators.gcloud_emulator_available("pubsub"):
            print("Pub/Sub: gcloud's emulator is not installed: running inline only")
            env["WEBHOOK_MODE"] = "inline"
            return
        emulator, host = emulators.start_gcloud_emulator("pubsub")
        processes.append(emulator)
        env["PUBSUB_EMULATOR_HOST"] = host
    base_url = f"http://127.0.0.1:{port}"
    processes.append(serve("on_message", port, env))
    wiring = setup(
        env["PUBSUB_EMULATOR_HOST"],
        base_url,
        env.get("GOOGLE_CLOUD_PROJECT") or DEFAULT_PROJECT,
        env.get("PUBSUB_TOPIC") or DEFAULT_TOPIC,
    )
    mode = env.get("WEBHOOK_MODE") or "inline"
    print(f"Pub/Sub emulator on {env['PUBSUB_EMULATOR_HOST']}: {wiring.topic} -> on_message")
    print(f"on_message: {base_url}/  (WEBHOOK_MODE={mode}; queue: on_upload publishes)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["setup"])
    parser.add_argument("--emulator", default=os.environ.get("PUBSUB_EMULATOR_HOST"))
    parser.add_argument("--endpoint", required=True, help="base URL of on_message")
    parser.add_argument(
        "--project", default=os.environ.get("GOOGLE_CLOUD_PROJECT", DEFAULT_PROJECT)
    )
    parser.add_argument("--topic", default=os.environ.get("PUBSUB_TOPIC", DEFAULT_TOPIC))
    args = parser.parse_args(argv)
    if not args.emulator:
        parser.error("--emulator (or PUBSUB_EMULATOR_HOST) is required")
    wiring = setup(args.emulator, args.endpoint, args.project, args.topic)
    sys.stdout.write(f"{wiring}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
