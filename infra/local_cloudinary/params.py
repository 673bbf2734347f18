"""Request parameters as Cloudinary reads them: merged sources, ``k[]`` lists, flags, tags and
context strings."""

from __future__ import annotations

import re
import secrets
import string
from typing import Any

from werkzeug.wrappers import Request

from infra.local_cloudinary.responses import JsonDict

_LIST_KEY = re.compile(r"^(.+)\[\d*\]$")


class StandinRequest(Request):
    # Data-URI uploads arrive as plain form fields: allow them the size of a real upload.
    max_form_memory_size = 100 * 1024 * 1024


def request_params(request: Request) -> JsonDict:
    """Query string, form fields and a JSON body, merged; ``k[]``/``k[0]`` keys become lists."""
    params: JsonDict = {}
    for source in (request.args, request.form):
        for key, values in source.lists():
            match = _LIST_KEY.match(key)
            if match:
                params.setdefault(match.group(1), []).extend(values)
            else:
                params[key] = values[-1]
    if request.is_json:
        body = request.get_json(silent=True)
        if isinstance(body, dict):
            params.update(body)
    return params


def flag(value: Any, default: bool = False) -> bool:
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("1", "true", "yes")


def split(value: Any) -> list[str]:
    """``"a, b"`` or ``["a", "b,c"]`` → unique, stripped, non-empty items, in order."""
    items = value if isinstance(value, list) else [] if value in (None, "") else [value]
    out: list[str] = []
    for part in (p.strip() for item in items for p in str(item).split(",")):
        if part and part not in out:
            out.append(part)
    return out


def parse_context(value: Any) -> dict[str, str]:
    """``"k=v|k2=v2"`` (``\\|`` and ``\\=`` escaped) or a dict → dict."""
    if isinstance(value, dict):
        return {str(k): str(v) for k, v in value.items()}
    out = {}
    for pair in re.split(r"(?<!\\)\|", str(value or "")):
        parts = re.split(r"(?<!\\)=", pair, maxsplit=1)
        if len(parts) == 2 and parts[0]:
            key, val = (part.replace("\\=", "=").replace("\\|", "|") for part in parts)
            out[key] = val
    return out


def random_id(length: int) -> str:
    """Lower-case letters and digits, like Cloudinary's generated public IDs."""
    return "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(length))
