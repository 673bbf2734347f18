"""The upload page (`GET /` on `results`), its static files, security headers and CORS.

The page is plain HTML/CSS and native ES modules under `function/web/` (no build step): index.html
loads the entry module `js/main.js`, which imports the others. Public configuration is
injected into `index.html` as a JSON data block; nothing secret is ever part of it: the cloud
name and an unsigned upload preset are public by design (the Upload widget needs them), and
`ON_UPLOAD_URL` is where the page forwards the signed upload result.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import flask

from autotagger.config import Settings, is_loopback, origin_of
from autotagger.web import access, local_mode
from autotagger.web.forward import FORWARD_PATH

# Not `function/static/` nor /static/: Flask (under functions-framework) serves that folder at that
# prefix by itself, which would bypass our headers.
STATIC_DIR = Path(__file__).resolve().parents[2] / "web"
ASSETS_PREFIX = "/assets/"
WIDGET_SCRIPT_URL = "https://upload-widget.cloudinary.com/latest/global/all.js"
CONFIG_PLACEHOLDER = "{{AUTOTAGGER_CONFIG}}"
POLL_TIMEOUT_S = 60
# The Upload widget: its script, its iframe, and the Upload API it posts to.
WIDGET_ORIGINS = ("https://upload-widget.cloudinary.com", "https://widget.cloudinary.com")
UPLOAD_API_ORIGIN = "https://api.cloudinary.com"
STATIC_TYPES = {
    ".js": "text/javascript; charset=utf-8",  # module scripts need a JavaScript MIME type
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
# What `/assets/<name>` may serve: these files, and every ES module in `function/web/js/`.
STATIC_FILES = ("app.css", "favicon.svg")
MODULES_DIR = "js"
MODULE_NAME = re.compile(r"[a-z][a-z0-9-]*\.js")
PREFLIGHT_MAX_AGE_S = 600


@functools.cache
def _read_static(name: str) -> bytes:
    return (STATIC_DIR / name).read_bytes()


@functools.cache
def static_files() -> dict[str, str]:
    """Every name under /assets/ the page may load, with its content type, listed once.

    A request is looked up here, so no request path is ever joined to a directory: nothing
    outside this list (no `..`, no index.html, no other extension) can be served.
    """
    names = list(STATIC_FILES)
    modules = STATIC_DIR / MODULES_DIR
    names += sorted(
        f"{MODULES_DIR}/{path.name}"
        for path in modules.iterdir()
        if path.is_file() and MODULE_NAME.fullmatch(path.name)
    )
    return {name: STATIC_TYPES[Path(name).suffix] for name in names}


def public_config(settings: Settings) -> dict[str, Any]:
    """What the page needs to know: no API key, no secret, no key-bearing URL."""
    account = settings.cloudinary
    forward_url = settings.on_upload_url + FORWARD_PATH if settings.on_upload_url else None
    return {
        "cloudName": account.cloud_name if account else None,
        "uploadPreset": settings.upload_preset,
        "forwardUrl": forward_url,
        "widgetScript": WIDGET_SCRIPT_URL,
        "resultsApi": "/api/results",
        "similarApi": "/api/similar",
        "pollTimeoutS": POLL_TIMEOUT_S,
        "maxImageBytes": settings.max_image_bytes,
        # Concept filters query `?tag=` with the tag as written (TAG_PREFIX + concept name).
        "tagPrefix": settings.tag_prefix,
        **local_mode.public_config(settings),
        **access.page_config(settings),
    }


def config_json(settings: Settings) -> str:
    """`public_config` as JSON that is safe inside a <script> data block."""
    text = json.dumps(public_config(settings), separators=(",", ":"), sort_keys=True)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def render_index(settings: Settings) -> str:
    """index.html with the public configuration injected."""
    template = _read_static("index.html").decode("utf-8")
    return template.replace(CONFIG_PLACEHOLDER, config_json(settings))


def _source(host: str) -> str:
    """A CSP source for a delivery host: https, and plain http too for loopback hosts."""
    if is_loopback(urlsplit(f"//{host}").hostname or host):
        return f"http://{host} https://{host}"
    return f"https://{host}"


def content_security_policy(settings: Settings) -> str:
    """Only self, the widget's origins, Cloudinary delivery hosts and `ON_UPLOAD_URL`."""
    delivery = [_source(host) for host in settings.delivery_hosts]
    connect = ["'self'", UPLOAD_API_ORIGIN, *WIDGET_ORIGINS, *delivery]
    if settings.on_upload_url:
        connect.append(origin_of(settings.on_upload_url))
    connect.extend(local_mode.connect_sources(settings))
    directives = {
        "default-src": ["'self'"],
        "script-src": ["'self'", *WIDGET_ORIGINS],
        # The widget's script may style the frame it adds to this document: inline styles only
        # (style attributes cannot run code); scripts stay limited to self and the widget.
        "style-src": ["'self'", "'unsafe-inline'", *WIDGET_ORIGINS],
        "img-src": ["'self'", "data:", "blob:", *delivery],
        "connect-src": list(dict.fromkeys(connect)),
        "frame-src": list(WIDGET_ORIGINS),
        "font-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "form-action": ["'none'"],
        "frame-ancestors": ["'none'"],
    }
    return "; ".join(f"{name} {' '.join(values)}" for name, values in directives.items())


def security_headers(settings: Settings) -> dict[str, str]:
    return {
        "Content-Security-Policy": content_security_policy(settings),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "strict-origin-when-cross-origin",
        "X-Frame-Options": "DENY",
    }


def page_response(settings: Settings) -> flask.Response:
    """The upload page, never cached (its configuration comes from settings)."""
    response = flask.Response(render_index(settings), 200, mimetype="text/html")
    response.headers.update(security_headers(settings))
    response.headers["Cache-Control"] = "no-cache"
    return response


def static_response(name: str, settings: Settings, request: flask.Request) -> flask.Response | None:
    """One of the page's static files (`static_files`), else None."""
    content_type = static_files().get(name)
    if content_type is None:
        return None
    response = flask.Response(_read_static(name), 200, content_type=content_type)
    response.headers.update(security_headers(settings))
    response.headers["Cache-Control"] = "no-cache"
    response.add_etag()
    response.make_conditional(request)  # 304 when If-None-Match matches
    return response


# -- CORS (the JSON API and the forward endpoint) ---------------------------------------------


def allowed_origin(origin: str | None, settings: Settings) -> str | None:
    """`origin` if ALLOWED_ORIGINS lists it, else None."""
    if not origin:
        return None
    normalized = origin.strip().lower().rstrip("/")
    return normalized if normalized in settings.allowed_origins else None


def add_cors(response: flask.Response, origin: str | None, settings: Settings) -> flask.Response:
    """Let an allowed origin read `response`."""
    response.vary.add("Origin")
    allowed = allowed_origin(origin, settings)
    if allowed:
        response.headers["Access-Control-Allow-Origin"] = allowed
    return response


def preflight(origin: str | None, methods: Iterable[str], settings: Settings) -> flask.Response:
    """Answer an OPTIONS preflight: 204 for an allowed origin, 403 otherwise."""
    allowed = allowed_origin(origin, settings)
    if allowed is None:
        body = json.dumps({"error": "origin not allowed (see ALLOWED_ORIGINS)"})
        response = flask.Response(body, 403, mimetype="application/json")
        response.vary.add("Origin")
        return response
    response = flask.Response(b"", 204)
    response.headers.update(
        {
            "Access-Control-Allow-Origin": allowed,
            "Access-Control-Allow-Methods": ", ".join([*methods, "OPTIONS"]),
            "Access-Control-Allow-Headers": "Content-Type, Authorization",
            "Access-Control-Max-Age": str(PREFLIGHT_MAX_AGE_S),
        }
    )
    response.vary.add("Origin")
    return response
