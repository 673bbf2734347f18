"""``CloudinaryStandin``: the account's state served on a local port, with the helpers tests use
to seed assets, inject faults and read what was called and notified."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from werkzeug.serving import BaseWSGIServer

from infra.local_cloudinary import notifications, server, upload_api
from infra.local_cloudinary.responses import JsonDict
from infra.local_cloudinary.shapes import upload_json
from infra.local_cloudinary.state import StandinState

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment


class CloudinaryStandin(StandinState):
    """Cloudinary's Upload, Admin and delivery APIs on a local port, plus signed webhooks."""

    _server: BaseWSGIServer | None = None
    _thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------------

    def start(self, quiet: bool = True) -> CloudinaryStandin:
        """Serve in a daemon thread (port 0 picks a free port)."""
        self._server, self._thread = server.serve(self, self.host, self.port, quiet)
        self.port = self._server.server_port
        return self

    def stop(self) -> None:
        """Stop serving and release the port."""
        if self._server is not None and self._thread is not None:
            server.shutdown(self._server, self._thread)
        self._server, self._thread = None, None

    def __enter__(self) -> CloudinaryStandin:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        """The stand-in is its own WSGI app (for werkzeug's test client, or another server)."""
        return server.handle(self, environ, start_response)

    # -- test helpers ------------------------------------------------------------------------------

    def add_asset(
        self,
        data: bytes,
        public_id: str | None = None,
        resource_type: str = "image",
        format: str | None = None,
        tags: Iterable[str] = (),
        notify: bool = False,
        *,
        notification_url: str | None = None,
    ) -> JsonDict:
        """Store an asset directly; returns the upload response. ``notify`` sends the upload
        notification to ``notification_url`` (else the global one)."""
        return upload_api.add_asset(
            self,
            data,
            public_id,
            resource_type,
            format,
            tags,
            notify,
            notification_url=notification_url,
        )

    def asset(
        self, public_id: str, resource_type: str = "image", type: str = "upload"
    ) -> JsonDict | None:
        """The asset's current state, shaped like an upload response (incl. ``tags``)."""
        with self.lock:
            found = self.stored.get((resource_type, type, public_id))
            return upload_json(self, found) if found else None

    def notification_for(
        self,
        resource: Mapping[str, Any],
        notification_type: str = "upload",
        *,
        added: Iterable[str] | None = None,
        removed: Iterable[str] = (),
    ) -> tuple[bytes, dict[str, str]]:
        """The exact body and headers Cloudinary would POST for ``resource``, without sending.

        ``resource`` is an upload response / ``asset()`` dict (stored state fills in gaps).
        For ``resource_tags_changed``, ``added`` defaults to the resource's tags.
        """
        return notifications.notification_for(
            self, resource, notification_type, added=added, removed=removed
        )
