"""The WSGI app and its threaded server: CORS for the Upload API, injected faults, routing to the
Upload API, the Admin API and delivery, the call log, and serving on a loopback port."""

from __future__ import annotations

import re
import threading
import time
import traceback
import uuid
from collections.abc import Iterable
from http import HTTPStatus
from typing import TYPE_CHECKING

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from infra.local_cloudinary import admin_api, delivery, upload_api
from infra.local_cloudinary.params import StandinRequest, request_params
from infra.local_cloudinary.responses import Fail, JsonDict, api_error
from infra.local_cloudinary.state import StandinState

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

# The Upload API answers browsers of any origin (unsigned uploads from a page).
_UPLOAD_API_PATH = re.compile(r"^/v1_1/[^/]+/(image|video|raw|auto)/upload$")
_UPLOAD_API_PREFLIGHT = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "POST, OPTIONS",
    "Access-Control-Allow-Headers": "Content-Type, X-Requested-With, X-Unique-Upload-Id",
    "Access-Control-Max-Age": "600",
}


def handle(
    state: StandinState, environ: WSGIEnvironment, start_response: StartResponse
) -> Iterable[bytes]:
    """One request, answered as Cloudinary would, and logged in ``state.calls``."""
    request = StandinRequest(environ)
    params = request_params(request)
    upload_api_path = _UPLOAD_API_PATH.match(request.path) is not None
    try:
        if upload_api_path and request.method == "OPTIONS":
            response = Response(b"", 204, _UPLOAD_API_PREFLIGHT)
        else:
            response = _apply_fault(state, request) or _route(state, request, params)
    except Fail as fail:
        response = fail.response()
    except Exception as exc:  # a stand-in bug must show up as a 500, not a dropped socket
        traceback.print_exc()
        response = api_error(500, f"General Error - {type(exc).__name__}: {exc}")
    if request.path.startswith("/v1_1/"):
        response.headers["X-Request-Id"] = uuid.uuid4().hex
    if upload_api_path:  # browsers upload from any origin (the Admin API has no CORS)
        response.headers["Access-Control-Allow-Origin"] = "*"
    logged = dict(params)
    if len(str(logged.get("file", ""))) > 200:
        logged["file"] = f"<{len(str(logged['file']))} chars>"
    upload = request.files.get("file")
    if upload is not None:
        logged["file"] = f"<file {upload.filename}>"
    entry = {"method": request.method, "path": request.path, "params": logged}
    with state.lock:
        state.calls.append({**entry, "status": response.status_code, "time": time.time()})
    return response(environ, start_response)


def _apply_fault(state: StandinState, request: Request) -> Response | None:
    with state.lock:
        matching = (
            f
            for f in state.faults
            if request.path.startswith(f.path_prefix)
            and (f.method is None or f.method.upper() == request.method)
        )
        fault = next(matching, None)
        if fault is None:
            return None
        if fault.times is not None:
            fault.times -= 1
            if fault.times <= 0:
                state.faults.remove(fault)
    if fault.delay_s:
        time.sleep(fault.delay_s)
    if fault.status is None:
        return None
    messages = {404: "Resource not found", 429: "Rate Limit Exceeded", 500: "General Error"}
    message = messages.get(fault.status) or HTTPStatus(fault.status).phrase
    response = Fail(fault.status, message, not request.path.startswith("/v1_1/")).response()
    if fault.location:
        response.headers["Location"] = fault.location
    if fault.retry_after is not None or fault.status == 429:
        response.headers["Retry-After"] = str(1 if fault.retry_after is None else fault.retry_after)
    return response


def _route(state: StandinState, request: Request, params: JsonDict) -> Response:
    parts = [p for p in request.path.split("/") if p]
    if len(parts) >= 3 and parts[0] == "v1_1":
        if parts[1] != state.cloud_name:
            raise Fail(401, f"Invalid cloud_name {parts[1]}")
        return _api(state, request, parts[2:], params)
    if len(parts) >= 4 and parts[0] == state.cloud_name and request.method in ("GET", "HEAD"):
        return delivery.deliver(state, parts[1], parts[2], parts[3:])
    raise Fail(404, "Resource not found", delivery=True)


def _api(state: StandinState, request: Request, parts: list[str], params: JsonDict) -> Response:
    if len(parts) == 2 and request.method == "POST" and parts[1] in ("upload", "tags"):
        if parts[0] not in ("image", "video", "raw", "auto"):
            raise Fail(400, f"Invalid resource_type {parts[0]}")
        if parts[1] == "tags":
            return upload_api.change_tags(state, parts[0], params)
        return upload_api.upload(state, parts[0], params, request.files.get("file"))
    return admin_api.handle(state, request, parts, params)


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Keep test output clean: no access log."""


def serve(
    app: WSGIApplication, host: str, port: int, quiet: bool = True
) -> tuple[BaseWSGIServer, threading.Thread]:
    """Serve ``app`` from a daemon thread (port 0 picks a free port)."""
    handler = _QuietHandler if quiet else WSGIRequestHandler
    server = make_server(host, port, app, threaded=True, request_handler=handler)
    thread = threading.Thread(target=server.serve_forever, name="cloudinary-standin", daemon=True)
    thread.start()
    return server, thread


def shutdown(server: BaseWSGIServer, thread: threading.Thread) -> None:
    """Stop serving, release the port and wait for the thread."""
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)
