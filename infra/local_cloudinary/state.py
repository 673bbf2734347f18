"""What the stand-in holds: the account, its assets and upload presets, injected faults, the call
log and the notifications sent. Every handler reads and writes it under ``lock``."""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import dataclass, field

from infra.local_cloudinary.media import Media
from infra.local_cloudinary.responses import JsonDict
from infra.local_cloudinary.signing import HASHES

AssetKey = tuple[str, str, str]  # (resource_type, type, public_id)


@dataclass
class Fault:
    """An injected misbehaviour for requests whose path starts with ``path_prefix``.

    ``times`` matching requests (None: all of them) first sleep ``delay_s``, then, when
    ``status`` is set, get that status (302 + ``Location`` when ``location`` is set; 429 adds
    ``Retry-After``) instead of the normal answer.
    """

    path_prefix: str
    status: int | None = None
    times: int | None = 1
    delay_s: float = 0.0
    retry_after: int | None = None
    location: str | None = None
    method: str | None = None


@dataclass
class Asset:
    public_id: str
    resource_type: str
    type: str
    data: bytes
    format: str | None
    width: int | None
    height: int | None
    asset_id: str = ""
    version: int = 0
    version_id: str = ""
    created_at: float = 0.0
    seq: int = 0
    tags: list[str] = field(default_factory=list)
    context: dict[str, str] = field(default_factory=dict)
    asset_folder: str = ""
    display_name: str = ""
    original_filename: str = ""
    notification_url: str | None = None
    media: Media | None = None  # videos and audio


class StandinState:
    """The account (cloud name, key, secret, address) and everything stored under it."""

    def __init__(
        self,
        cloud_name: str = "demo",
        api_key: str = "123456789012345",
        api_secret: str = "standin-secret",
        signature_algorithm: str = "sha1",
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        if signature_algorithm not in HASHES:
            raise ValueError(f"signature_algorithm must be one of {sorted(HASHES)}")
        self.cloud_name, self.api_key, self.api_secret = cloud_name, api_key, api_secret
        self.signature_algorithm, self.host, self.port = signature_algorithm, host, port
        self.notification_url: str | None = None  # the account-wide ("global") notification URL
        # Cloudinary sends resource_tags_changed to the call's or the global notification URL;
        # as the brief asks, the stand-in also falls back to the URL the asset was uploaded with.
        self.notify_tag_changes_to_upload_url = True
        self.notification_timeout_s = 5.0
        self.calls: list[JsonDict] = []
        self.faults: list[Fault] = []
        self.notifications_sent: list[JsonDict] = []
        self.stored: dict[AssetKey, Asset] = {}
        self.upload_presets: dict[str, JsonDict] = {}
        self.cursors: dict[str, int] = {}
        self.seq = 0
        self.admin_rate_limit: int | None = None  # Admin API requests per hour (None: no limit)
        self.admin_used = 0
        self.lock = threading.RLock()
        self.sent = threading.Condition()

    # -- addresses ---------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://{self.delivery_host}"

    @property
    def delivery_host(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def cloudinary_url(self) -> str:
        url = f"cloudinary://{self.api_key}:{self.api_secret}@{self.cloud_name}"
        url += f"?upload_prefix={self.url}"
        return url + ("&signature_algorithm=sha256" if self.signature_algorithm == "sha256" else "")

    # -- storage -----------------------------------------------------------------------------------

    def store(self, asset: Asset) -> bool:
        """Create or overwrite (True); asset_id stays, version strictly increases (unix s)."""
        with self.lock:
            key = (asset.resource_type, asset.type, asset.public_id)
            previous = self.stored.get(key)
            self.seq += 1
            asset.seq, asset.created_at, asset.version_id = self.seq, time.time(), uuid.uuid4().hex
            asset.asset_id = previous.asset_id if previous else uuid.uuid4().hex
            asset.version = max(int(asset.created_at), previous.version + 1 if previous else 0)
            asset.display_name = asset.display_name or asset.public_id.rsplit("/", 1)[-1]
            self.stored[key] = asset
            return previous is not None

    def record_notification(self, record: JsonDict) -> None:
        """Log a sent notification and wake ``wait_for_notifications``."""
        with self.sent:
            self.notifications_sent.append(record)
            self.sent.notify_all()

    # -- test helpers ------------------------------------------------------------------------------

    def reset(self) -> None:
        """Forget assets, presets, logs, faults and the global notification URL."""
        with self.lock:
            self.stored.clear()
            self.upload_presets.clear()
            self.cursors.clear()
            self.calls.clear()
            self.faults.clear()
            self.notification_url = None
            self.admin_rate_limit, self.admin_used = None, 0
        with self.sent:
            self.notifications_sent.clear()

    def public_ids(self) -> list[str]:
        """Public IDs of every stored asset (all resource types), in the order first stored."""
        with self.lock:
            return [public_id for _, _, public_id in self.stored]

    def replace_bytes(
        self, public_id: str, data: bytes, resource_type: str = "image", type: str = "upload"
    ) -> None:
        """Serve ``data`` for a stored asset from now on, with no new version and no
        notification: an original that is broken or swapped behind Cloudinary's answers."""
        with self.lock:
            self.stored[(resource_type, type, public_id)].data = data

    def preset(self, name: str) -> JsonDict:
        """A copy of upload preset ``name`` (``name``, ``unsigned``, ``settings``); KeyError when
        there is none."""
        with self.lock:
            return json.loads(json.dumps(self.upload_presets[name]))

    def presets(self) -> dict[str, JsonDict]:
        """Copies of all upload presets by name."""
        with self.lock:
            return json.loads(json.dumps(self.upload_presets))

    def inject(
        self,
        path_prefix: str,
        status: int | None = None,
        *,
        times: int | None = 1,
        delay_s: float = 0.0,
        retry_after: int | None = None,
        location: str | None = None,
        method: str | None = None,
    ) -> Fault:
        """Make the next ``times`` requests under ``path_prefix`` fail, stall or redirect."""
        if location and status is None:
            status = 302
        fault = Fault(path_prefix, status, times, delay_s, retry_after, location, method)
        with self.lock:
            self.faults.append(fault)
        return fault

    def limit_admin_api(self, requests_per_hour: int | None) -> None:
        """Start a new hour with this Admin API budget (None: unlimited)."""
        with self.lock:
            self.admin_rate_limit, self.admin_used = requests_per_hour, 0

    def clear_faults(self) -> None:
        with self.lock:
            self.faults.clear()

    def wait_for_notifications(self, count: int = 1, timeout: float = 60.0) -> list[JsonDict]:
        """Block until ``count`` notifications were sent (or ``timeout``); returns the log."""
        with self.sent:
            self.sent.wait_for(lambda: len(self.notifications_sent) >= count, timeout)
            return list(self.notifications_sent)
