"""Create or update the upload preset the page uploads with (Cloudinary Admin API).

    CLOUDINARY_URL=cloudinary://KEY:SECRET@CLOUD python infra/cloudinary_setup.py \\
        --notification-url https://autotagger-on-upload-HASH.a.run.app \\
        [--preset NAME] [--mode signed|unsigned] [--folder FOLDER] [--max-file-size BYTES]
        [--dry-run]

--mode is the function's UPLOAD_MODE (default: $UPLOAD_MODE, else signed, or unsigned when
RESULTS_ACCESS=public): a signed preset accepts only uploads signed by `results`
(`POST /api/sign-upload`, for the access key only); an unsigned one accepts any upload.
The preset (name: --preset, else CLOUDINARY_UPLOAD_PRESET, else "autotagger") stores
uploads under --folder, accepts only the image formats the function decodes, refuses files over
--max-file-size (default: the function's MAX_IMAGE_BYTES default, 25 MiB) and sends the upload
notification to --notification-url (the `on_upload` webhook). Without --notification-url the
preset's notification URL is left as it is.

Prints the fields that differ (`field: old -> new`) and writes only when something differs, so a
second run does nothing. --dry-run prints the same plan and writes nothing.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from typing import Any
from urllib.parse import urlsplit

import cloudinary.api
import cloudinary.exceptions
import cloudinary.utils
from cloudinary.api_client.call_api import call_json_api

from autotagger import config
from autotagger.clients import cloudinary_client
from autotagger.errors import ConfigError

DEFAULT_PRESET = "autotagger"
DEFAULT_FOLDER = "autotagger"
DEFAULT_MAX_FILE_SIZE = 25 * 1024 * 1024  # = the function's MAX_IMAGE_BYTES default
ALLOWED_FORMATS = ("jpg", "png", "webp", "gif", "heic", "avif", "bmp", "tiff")
# Settings the SDK's create/update_upload_preset silently drop (cloudinary 1.46:
# utils.build_upload_params keeps only the upload parameters it knows). Sent as extra fields.
SDK_UNKNOWN = ("max_file_size",)
_PRESET_NAME_RE = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,99}$")


class SetupError(Exception):
    """A problem worth one line on stderr and a non-zero exit."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def desired_fields(
    folder: str, max_file_size: int, notification_url: str | None, unsigned: bool = True
) -> dict[str, Any]:
    """The managed fields, as they should be; a field left out is not managed."""
    fields: dict[str, Any] = {
        "unsigned": unsigned,
        "allowed_formats": list(ALLOWED_FORMATS),
        "max_file_size": max_file_size,
    }
    if folder:
        fields["folder"] = folder
    if notification_url:
        fields["notification_url"] = notification_url
    return fields


def _normalize(name: str, value: Any) -> Any:
    """Compare like with like: format lists as lists, sizes as ints, empty as None."""
    if value in (None, "", []):
        return None
    if name == "allowed_formats":
        items = value if isinstance(value, list) else str(value).split(",")
        return [str(item).strip().lower() for item in items if str(item).strip()]
    if name == "max_file_size":
        try:
            return int(value)
        except (TypeError, ValueError):
            return value
    if name == "unsigned":
        return value if isinstance(value, bool) else str(value).lower() in ("1", "true")
    return value


def current_fields(preset: dict[str, Any] | None) -> dict[str, Any]:
    """The managed fields of an existing preset (the Admin API nests most under `settings`)."""
    if preset is None:
        return {}
    settings = preset.get("settings") or {}
    return {"unsigned": preset.get("unsigned"), **settings}


def diff(current: dict[str, Any], desired: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """(field, old, new) for every managed field whose value differs."""
    changes = []
    for name, wanted in desired.items():
        old = _normalize(name, current.get(name))
        new = _normalize(name, wanted)
        if old != new:
            changes.append((name, old, new))
    return changes


def write_params(desired: dict[str, Any]) -> dict[str, Any]:
    """The request fields, encoded the way the SDK encodes them, plus what the SDK drops."""
    known = {k: v for k, v in desired.items() if k not in SDK_UNKNOWN and k != "unsigned"}
    params: dict[str, Any] = cloudinary.utils.cleanup_params(
        cloudinary.utils.build_upload_params(**known)
    )
    params.pop("upload_preset", None)  # the SDK fills in a configured default; not ours to set
    params.update({k: desired[k] for k in SDK_UNKNOWN if k in desired})
    params["unsigned"] = bool(desired["unsigned"])
    return params


def fetch(name: str) -> dict[str, Any] | None:
    """The preset as the Admin API describes it, or None when it does not exist."""
    try:
        return dict(cloudinary.api.upload_preset(name))
    except cloudinary.exceptions.NotFound:
        return None


def create(name: str, desired: dict[str, Any]) -> None:
    # Same endpoint and transport as cloudinary.api.create_upload_preset, which would drop
    # max_file_size.
    call_json_api("post", ["upload_presets"], {**write_params(desired), "name": name})


def update(name: str, desired: dict[str, Any]) -> None:
    # Every managed field is sent, not only the changed ones, so the result is the same whether
    # the API merges the given settings or replaces them.
    call_json_api("put", ["upload_presets", name], write_params(desired))


def _check_url(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme == "https" and host:
        return url
    if parts.scheme == "http" and config.is_loopback(host):
        return url
    raise SetupError(f"--notification-url must be an https URL (http only for loopback): {url}", 2)


def _show(value: Any) -> str:
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    return repr(value)


def _mode(args: argparse.Namespace) -> str:
    """--mode, else the function's own rule (UPLOAD_MODE, else by RESULTS_ACCESS)."""
    try:
        return str(args.mode or config.upload_mode(os.environ))
    except ConfigError as exc:
        raise SetupError(exc.message, 2) from None


def run(args: argparse.Namespace) -> int:
    raw_url = os.environ.get("CLOUDINARY_URL", "").strip()
    if not raw_url:
        raise SetupError("CLOUDINARY_URL is not set (cloudinary://API_KEY:API_SECRET@CLOUD)", 2)
    try:
        account = config.parse_cloudinary_url(raw_url)
    except ConfigError as exc:
        raise SetupError(exc.message, 2) from None
    cloudinary_client.configure(account)
    name = args.preset or os.environ.get("CLOUDINARY_UPLOAD_PRESET", "").strip() or DEFAULT_PRESET
    if not _PRESET_NAME_RE.match(name):
        raise SetupError(f"preset name must be letters, digits, _ - or .: {name!r}", 2)
    if args.max_file_size < 1:
        raise SetupError("--max-file-size must be a positive number of bytes", 2)
    notification_url = _check_url(args.notification_url) if args.notification_url else None
    desired = desired_fields(
        args.folder, args.max_file_size, notification_url, unsigned=_mode(args) == "unsigned"
    )

    existing = fetch(name)
    changes = diff(current_fields(existing), desired)
    where = f"upload preset {name!r} (cloud {account.cloud_name})"
    if existing is not None and not changes:
        print(f"{where} is up to date: nothing to change")
        return 0
    if existing is None:
        print(f"{where} does not exist: {'would create' if args.dry_run else 'creating'} it")
    else:
        print(f"{where}: {len(changes)} field(s) differ")
    for field, old, new in changes:
        print(f"  {field}: {_show(old)} -> {_show(new)}")
    if existing is None and notification_url is None:
        print(
            "warning: no --notification-url: uploads with this preset notify only the account's "
            "global notification URL, if any",
            file=sys.stderr,
        )
    if args.dry_run:
        print("dry run: nothing written")
        return 0
    if existing is None:
        create(name, desired)
        print(f"created {where}")
    else:
        update(name, desired)
        print(f"updated {where}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="cloudinary_setup.py",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--notification-url", help="the on_upload webhook URL")
    parser.add_argument(
        "--preset", help=f"preset name [$CLOUDINARY_UPLOAD_PRESET or {DEFAULT_PRESET}]"
    )
    parser.add_argument(
        "--folder",
        default=os.environ.get("UPLOAD_FOLDER", "").strip().strip("/") or DEFAULT_FOLDER,
        help=f"folder for uploads ('' = none) [$UPLOAD_FOLDER or {DEFAULT_FOLDER}]",
    )
    parser.add_argument(
        "--max-file-size",
        type=int,
        default=DEFAULT_MAX_FILE_SIZE,
        help=f"largest upload in bytes [{DEFAULT_MAX_FILE_SIZE}]",
    )
    parser.add_argument(
        "--mode",
        choices=config.UPLOAD_MODES,
        help="signed or unsigned preset [$UPLOAD_MODE; signed unless RESULTS_ACCESS=public]",
    )
    parser.add_argument("--dry-run", action="store_true", help="print the plan, write nothing")
    args = parser.parse_args(argv)
    try:
        return run(args)
    except SetupError as exc:
        print(f"cloudinary_setup: error: {exc}", file=sys.stderr)
        return exc.code
    except cloudinary.exceptions.Error as exc:
        message = " ".join(str(exc).split())[:300]
        print(f"cloudinary_setup: error: Cloudinary API: {message}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
