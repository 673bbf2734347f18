"""The upload page served by `results` (headers, config, no secrets, CORS) and on_upload's forward.

Browser tests of the page itself are in tests/e2e/.
"""

from __future__ import annotations

import json
import re
from typing import Any

import cloudinary
import cloudinary.utils
import pytest

from autotagger.config import CloudinaryAccount, load_settings
from autotagger.errors import ConfigError, Unauthorized
from autotagger.web import forward, page
from infra.local_cloudinary import CloudinaryStandin
from tests.support.helpers import image_bytes, notification_from, sign_body

ON_UPLOAD = "http://127.0.0.1:8081"
PAGE_ORIGIN = "http://127.0.0.1:8080"
PAGE_ENV = {
    "CLOUDINARY_UPLOAD_PRESET": "autotagger_unsigned",
    "ON_UPLOAD_URL": ON_UPLOAD + "/",
    "ALLOWED_ORIGINS": f"{PAGE_ORIGIN}, https://photos.example.com",
}
_CONFIG_RE = re.compile(
    r'<script type="application/json" id="autotagger-config">(.*?)</script>', re.S
)


def _config(html: str) -> dict[str, Any]:
    match = _CONFIG_RE.search(html)
    assert match, "config block missing"
    config: dict[str, Any] = json.loads(match.group(1))
    return config


_SCRIPT_SRC_RE = re.compile(r'<script type="module" src="([^"]+)"></script>')
_IMPORT_RE = re.compile(r'^import \{[^}]*\} from "\./([^"]+)";$', re.M)


def _served_modules(client: Any) -> dict[str, str]:
    """Every ES module the page loads, found as a browser does: the entry module named by the
    page, then what each served module imports; each served as JavaScript with the page's CSP."""
    entries = _SCRIPT_SRC_RE.findall(client.get("/").get_data(as_text=True))
    assert entries == ["/assets/js/main.js"]
    modules: dict[str, str] = {}
    pending = list(entries)
    while pending:
        path = pending.pop()
        if path in modules:
            continue
        response = client.get(path)
        assert response.status_code == 200, path
        assert response.mimetype == "text/javascript", path
        assert response.headers["X-Content-Type-Options"] == "nosniff", path
        assert _csp(response)["script-src"][0] == "'self'", path
        modules[path] = response.get_data(as_text=True)
        folder = path.rsplit("/", 1)[0]
        pending.extend(f"{folder}/{name}" for name in _IMPORT_RE.findall(modules[path]))
    return modules


def _csp(response: Any) -> dict[str, list[str]]:
    policy = response.headers["Content-Security-Policy"]
    directives = (part.strip().split() for part in policy.split(";") if part.strip())
    return {name: values for name, *values in directives}


# -- settings --------------------------------------------------------------------------------


def test_new_settings_default_to_off() -> None:
    settings = load_settings({})
    assert settings.upload_preset is None
    assert settings.on_upload_url is None
    assert settings.allowed_origins == ()


def test_new_settings_are_normalized() -> None:
    settings = load_settings(
        {
            "CLOUDINARY_UPLOAD_PRESET": " my_preset-1 ",
            "ON_UPLOAD_URL": "https://europe-west1-proj.cloudfunctions.net/on_upload/",
            "ALLOWED_ORIGINS": "https://Photos.Example.com, http://127.0.0.1:8080/,,",
        }
    )
    assert settings.upload_preset == "my_preset-1"
    assert settings.on_upload_url == "https://europe-west1-proj.cloudfunctions.net/on_upload"
    assert settings.allowed_origins == ("https://photos.example.com", "http://127.0.0.1:8080")


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("ON_UPLOAD_URL", "ftp://example.com/on_upload"),
        ("ON_UPLOAD_URL", "example.com/on_upload"),
        ("ON_UPLOAD_URL", "https://user:pass@example.com/"),
        ("ON_UPLOAD_URL", "https://example.com/on_upload?x=1"),
        ("ON_UPLOAD_URL", "https://example.com:99999/"),
        ("CLOUDINARY_UPLOAD_PRESET", "my preset"),
        ("CLOUDINARY_UPLOAD_PRESET", "<script>"),
        ("ALLOWED_ORIGINS", "https://example.com/page"),
        ("ALLOWED_ORIGINS", "*"),
        ("ALLOWED_ORIGINS", "chrome-extension://abc"),
    ],
)
def test_bad_new_settings_name_themselves(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        load_settings({name: value})


# -- the page --------------------------------------------------------------------------------


def test_page_is_html_with_security_headers(make_client, standin: CloudinaryStandin) -> None:
    response = make_client("results", **PAGE_ENV).get("/")
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "strict-origin-when-cross-origin"
    csp = _csp(response)
    assert csp["default-src"] == ["'self'"]
    assert csp["script-src"] == [
        "'self'",
        "https://upload-widget.cloudinary.com",
        "https://widget.cloudinary.com",
    ]
    assert "https://upload-widget.cloudinary.com" in csp["frame-src"]
    assert "https://res.cloudinary.com" in csp["img-src"]
    assert f"http://{standin.delivery_host}" in csp["img-src"]  # CLOUDINARY_DELIVERY_HOSTS
    assert "https://api.cloudinary.com" in csp["connect-src"]
    assert ON_UPLOAD in csp["connect-src"]
    assert csp["object-src"] == ["'none'"]
    assert csp["frame-ancestors"] == ["'none'"]
    every_source = {value for values in csp.values() for value in values}
    assert "'unsafe-eval'" not in every_source
    assert "*" not in every_source
    assert not any(v.startswith("http://") and "127.0.0.1" not in v for v in every_source)


def test_page_has_the_upload_button_and_loads_the_widget(make_client) -> None:
    html = make_client("results", **PAGE_ENV).get("/").get_data(as_text=True)
    assert re.search(r"<button[^>]*id=\"upload-button\"[\s\S]*?<span>Upload</span>", html)
    config = _config(html)
    assert config["widgetScript"] == "https://upload-widget.cloudinary.com/latest/global/all.js"
    modules = _served_modules(make_client("results", **PAGE_ENV))
    script = "".join(modules.values())
    assert "createUploadWidget" in script
    assert ".innerHTML" not in script  # data reaches the DOM through textContent only


def test_public_config_is_injected(make_client, standin: CloudinaryStandin) -> None:
    html = make_client("results", **PAGE_ENV).get("/").get_data(as_text=True)
    config = _config(html)
    assert config["cloudName"] == standin.cloud_name
    assert config["uploadPreset"] == "autotagger_unsigned"
    assert config["forwardUrl"] == ON_UPLOAD + "/forward"
    assert config["resultsApi"] == "/api/results"
    assert 10 <= config["pollTimeoutS"] <= 300


def test_unconfigured_uploads_leave_the_page_working(make_client, monkeypatch) -> None:
    monkeypatch.delenv("CLOUDINARY_URL")
    config = _config(make_client("results").get("/").get_data(as_text=True))
    assert config["cloudName"] is None
    assert config["uploadPreset"] is None
    assert config["forwardUrl"] is None


def test_no_secret_reaches_the_page(make_client, standin: CloudinaryStandin) -> None:
    client = make_client("results", **PAGE_ENV)
    served = ""
    assets = [f"/assets/{name}" for name in page.static_files()]
    assert "/assets/js/main.js" in assets and "/assets/app.css" in assets
    for path in ("/", *assets):
        response = client.get(path)
        assert response.status_code == 200, path
        served += response.get_data(as_text=True)
        served += json.dumps(dict(response.headers))
    assert standin.api_secret not in served
    assert standin.api_key not in served
    assert "cloudinary://" not in served
    assert "api_key" not in served and "api_secret" not in served


def test_config_cannot_break_out_of_its_script_block(make_client) -> None:
    env = {**PAGE_ENV, "ON_UPLOAD_URL": "http://127.0.0.1:9/x</script><script>alert(1)</script>"}
    response = make_client("results", **env).get("/")
    html = response.get_data(as_text=True)
    assert "<script>alert(1)" not in html
    assert _config(html)["forwardUrl"].startswith("http://127.0.0.1:9/x</script>")
    assert "alert" not in response.headers["Content-Security-Policy"]


def test_static_files_are_a_fixed_list(make_client) -> None:
    client = make_client("results", **PAGE_ENV)
    script = client.get("/assets/js/main.js")
    assert script.status_code == 200
    assert script.mimetype == "text/javascript"
    assert script.headers["X-Content-Type-Options"] == "nosniff"
    assert script.headers["Cache-Control"] == "no-cache"
    assert client.get("/assets/app.css").mimetype == "text/css"
    assert client.get("/assets/favicon.svg").mimetype == "image/svg+xml"
    again = client.get("/assets/js/main.js", headers={"If-None-Match": script.headers["ETag"]})
    assert again.status_code == 304
    other = client.get("/assets/js/api.js", headers={"If-None-Match": script.headers["ETag"]})
    assert other.status_code == 200
    for path in (
        "/assets/index.html",
        "/assets/../main.py",
        "/assets/%2e%2e/main.py",
        "/assets/",
        "/assets/app.js",
        "/assets/js/",
        "/assets/js",
        "/assets/js/../app.css",
        "/assets/js/%2e%2e/app.css",
        "/assets/js/main.mjs",
        "/assets/js/no-such-module.js",
        "/assets/js/main.js%00.txt",
        "/assets//js/main.js",
        "/assets/./js/main.js",
        "/assets/JS/main.js",
    ):
        assert client.get(path).status_code == 404, path


def test_every_module_is_served_as_javascript(make_client) -> None:
    modules = _served_modules(make_client("results", **PAGE_ENV))
    listed = {f"/assets/{name}" for name in page.static_files() if name.startswith("js/")}
    assert set(modules) == listed  # every listed module is one the page loads
    assert len(modules) >= 10


def test_head_of_the_page(make_client) -> None:
    response = make_client("results", **PAGE_ENV).head("/")
    assert response.status_code == 200
    assert response.get_data() == b""


# -- CORS ------------------------------------------------------------------------------------


def test_results_api_cors_for_allowed_origins_only(make_client) -> None:
    client = make_client("results", **PAGE_ENV)
    allowed = client.get("/api/results", headers={"Origin": PAGE_ORIGIN})
    assert allowed.status_code == 200
    assert allowed.headers["Access-Control-Allow-Origin"] == PAGE_ORIGIN
    assert "Origin" in allowed.headers["Vary"]
    other = client.get("/api/results", headers={"Origin": "https://evil.example"})
    assert other.status_code == 200
    assert "Access-Control-Allow-Origin" not in other.headers
    error = client.get("/api/results?limit=0", headers={"Origin": PAGE_ORIGIN})
    assert error.status_code == 400
    assert error.headers["Access-Control-Allow-Origin"] == PAGE_ORIGIN


def test_results_api_preflight(make_client) -> None:
    client = make_client("results", **PAGE_ENV)
    preflight = client.options(
        "/api/results",
        headers={"Origin": "https://photos.example.com", "Access-Control-Request-Method": "GET"},
    )
    assert preflight.status_code == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == "https://photos.example.com"
    assert "GET" in preflight.headers["Access-Control-Allow-Methods"]
    refused = client.options(
        "/api/results",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
    )
    assert refused.status_code == 403
    assert "Access-Control-Allow-Origin" not in refused.headers
    assert client.options("/").status_code == 405  # the page is not part of the API


def test_no_cors_without_allowed_origins(make_client) -> None:
    client = make_client("results")
    response = client.get("/api/results", headers={"Origin": PAGE_ORIGIN})
    assert "Access-Control-Allow-Origin" not in response.headers
    assert client.options("/api/results", headers={"Origin": PAGE_ORIGIN}).status_code == 403


def test_forward_preflight_and_errors_carry_cors(make_client) -> None:
    client = make_client("on_upload", **PAGE_ENV)
    preflight = client.options(
        "/forward",
        headers={
            "Origin": PAGE_ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    assert preflight.status_code == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == PAGE_ORIGIN
    assert "POST" in preflight.headers["Access-Control-Allow-Methods"]
    assert "Content-Type" in preflight.headers["Access-Control-Allow-Headers"]
    unsigned = client.post(
        "/forward", json={"public_id": "x", "version": 1}, headers={"Origin": PAGE_ORIGIN}
    )
    assert unsigned.status_code == 401
    assert unsigned.headers["Access-Control-Allow-Origin"] == PAGE_ORIGIN
    # the webhook endpoint is not part of the browser API
    assert client.options("/", headers={"Origin": PAGE_ORIGIN}).status_code == 405


# -- the forward endpoint ----------------------------------------------------------------------


def _forward_body(resource: dict[str, Any], **fields: Any) -> dict[str, Any]:
    keys = ("public_id", "version", "signature", "asset_id", "resource_type", "type")
    return {**{k: resource[k] for k in keys}, **fields}


def _admin_calls(standin: CloudinaryStandin) -> list[dict[str, Any]]:
    return [c for c in standin.calls if "/resources/" in c["path"]]


@pytest.mark.usefixtures("real_model_env")
def test_signed_forward_is_classified_like_a_webhook(make_client, standin, stored) -> None:
    client = make_client("on_upload", **PAGE_ENV)
    resource = standin.add_asset(image_bytes((640, 480)), public_id="page/fwd")
    # the page forwards exactly what the widget reported (extra fields are ignored)
    body = {**resource, "secure_url": "http://evil.example/x.jpg", "path": "v1/page/fwd.jpg"}
    response = client.post("/forward", json=body, headers={"Origin": PAGE_ORIGIN})
    assert response.status_code == 200, response.get_data(as_text=True)
    record = response.get_json()
    assert record["status"] == "done"
    assert record["asset_id"] == resource["asset_id"]
    assert record["secure_url"] == resource["secure_url"]  # from the Admin API, not the body
    assert response.headers["Access-Control-Allow-Origin"] == PAGE_ORIGIN
    assert stored()[resource["asset_id"]]["status"] == "done"
    assert record["label"] in standin.asset("page/fwd")["tags"]
    assert len(_admin_calls(standin)) == 1

    # the webhook for the same upload is then a harmless duplicate
    webhook = make_client("on_upload")
    notification = notification_from(resource)
    again = webhook.post(
        "/", data=notification, headers=sign_body(notification, standin.api_secret)
    )
    assert again.status_code == 200
    assert again.get_json()["duplicate"] is True
    # and so is a second forward, answered from the store without another Admin API call
    replay = client.post("/forward", json=_forward_body(resource)).get_json()
    assert replay["duplicate"] is True
    assert replay["label"] == record["label"]
    assert len(_admin_calls(standin)) == 1


@pytest.mark.parametrize(
    "change",
    [
        {"signature": None},
        {"signature": ""},
        {"signature": "0" * 40},
        {"signature": "not-hex"},
        {"public_id": "page/other"},
        {"version": 1},
    ],
    ids=["absent", "empty", "wrong", "malformed", "other-public-id", "other-version"],
)
def test_unsigned_or_missigned_forward_is_refused_before_any_api_call(
    make_client, standin, stored, change: dict[str, Any]
) -> None:
    client = make_client("on_upload", **PAGE_ENV)
    resource = standin.add_asset(image_bytes(), public_id="page/forged")
    body = _forward_body(resource, **change)
    if change.get("signature") is None and "signature" in change:
        del body["signature"]
    response = client.post("/forward", json=body)
    assert response.status_code == 401, response.get_data(as_text=True)
    assert stored() == {}
    assert _admin_calls(standin) == []


def test_forward_of_a_stale_version_is_refused(make_client, standin, stored) -> None:
    client = make_client("on_upload", **PAGE_ENV)
    resource = standin.add_asset(image_bytes(), public_id="page/stale")
    old_version = resource["version"] - 5
    signature = cloudinary.utils.api_sign_request(
        {"public_id": "page/stale", "version": old_version}, standin.api_secret, "sha1", 1
    )
    body = _forward_body(resource, version=old_version, signature=signature)
    response = client.post("/forward", json=body)
    assert response.status_code == 400
    assert "version mismatch" in response.get_json()["error"]
    assert stored() == {}


def test_forward_with_a_foreign_asset_id_is_refused(make_client, standin, stored) -> None:
    client = make_client("on_upload", **PAGE_ENV)
    resource = standin.add_asset(image_bytes(), public_id="page/mixed")
    response = client.post("/forward", json=_forward_body(resource, asset_id="someoneelse"))
    assert response.status_code == 400
    assert stored() == {}


def test_forward_of_a_missing_asset_or_non_image(make_client, standin, stored) -> None:
    client = make_client("on_upload", **PAGE_ENV)
    signature = forward.expected_signature(
        "page/ghost", 1700000000, CloudinaryAccount("c", "k", standin.api_secret)
    )
    body = {"public_id": "page/ghost", "version": 1700000000, "signature": signature}
    response = client.post("/forward", json=body)
    assert response.status_code == 400
    assert "not found" in response.get_json()["error"]
    video = client.post("/forward", json={**body, "resource_type": "video"})
    assert video.status_code == 400
    assert "not found" in video.get_json()["error"]
    raw = client.post("/forward", json={**body, "resource_type": "raw"})
    assert raw.status_code == 200
    assert raw.get_json()["status"] == "ignored"
    assert stored() == {}


def test_forward_body_must_be_json(make_client) -> None:
    client = make_client("on_upload", **PAGE_ENV)
    response = client.post("/forward", data=b"public_id=x", content_type="text/plain")
    assert response.status_code == 400
    assert client.get("/forward").status_code == 405


def test_forward_needs_cloudinary_url(make_client, monkeypatch) -> None:
    monkeypatch.delenv("CLOUDINARY_URL")
    response = make_client("on_upload").post("/forward", json={"signature": "x"})
    assert response.status_code == 503


@pytest.mark.parametrize("algorithm", ["sha1", "sha256"])
def test_signature_check_agrees_with_the_sdk(algorithm: str, monkeypatch) -> None:
    account = CloudinaryAccount("cloud", "key", "s3cret", signature_algorithm=algorithm)
    monkeypatch.setattr(cloudinary.config(), "api_secret", "s3cret", raising=False)
    for public_id, version in [("a/b c&d=e", 1712345678), ("<script>x</script>", 2)]:
        signature = forward.expected_signature(public_id, version, account)
        assert cloudinary.utils.verify_api_response_signature(
            public_id, version, signature, algorithm
        )
        forward.verify(forward.Forward(public_id, version, signature.upper()), account)
        with pytest.raises(Unauthorized):
            forward.verify(forward.Forward(public_id, version + 1, signature), account)


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/forward", True),
        ("/forward/", True),
        ("/on_upload/forward", True),
        ("/", False),
        ("/forwarded", False),
        ("", False),
    ],
)
def test_forward_path(path: str, expected: bool) -> None:
    assert forward.is_forward(path) is expected
