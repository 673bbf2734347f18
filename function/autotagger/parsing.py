"""Parsers for what strangers send: JSON bodies, integers in text, document ids.

Each either returns a value or raises BadRequest with a clear message: nothing a stranger sends
may escape as another exception (a 500 and an ERROR log). Python's own parsers are too lenient
or too fragile for that: `json.loads` raises RecursionError on deep nesting and ValueError on an
integer of more than 4,300 digits; `str.isdigit()` is true for "²" and "٣", which `int()` refuses
or reads as digits nobody meant; a lone surrogate ("\\ud800") is valid JSON but no UTF-8
string, so hashing or storing it raises; Firestore reserves document ids of the form `__.*__`.
"""

from __future__ import annotations

import json
import re
from typing import Any

from autotagger.errors import BadRequest

_ASCII_DIGITS = re.compile(r"[0-9]+")
_DOCUMENT_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")
_RESERVED_ID = re.compile(r"__.*__")
MAX_INT_DIGITS = 18  # any count, timestamp or version we accept; far below Python's 4,300


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_json(body: bytes | str, what: str = "body") -> dict[str, Any]:
    """A JSON object, or BadRequest (malformed, too deep, numbers too long, NaN, lone
    surrogates, not an object)."""
    try:
        payload = json.loads(body, parse_constant=_no_constants)
        # Strings must be valid Unicode: one pass over the parsed text finds any lone surrogate.
        json.dumps(payload, ensure_ascii=False).encode("utf-8")
    except RecursionError:
        raise BadRequest(f"{what} is nested too deeply") from None
    except UnicodeEncodeError:
        raise BadRequest(f"{what} has invalid Unicode (a lone surrogate)") from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, over-long integers, NaN
        raise BadRequest(f"{what} is not valid JSON: {str(exc)[:200]}") from None
    if not isinstance(payload, dict):
        raise BadRequest(f"{what} must be a JSON object")
    return payload


def ascii_int(text: str, what: str, max_digits: int = MAX_INT_DIGITS) -> int:
    """The non-negative integer `text` spells in ASCII digits (0-9 only), else BadRequest."""
    if not isinstance(text, str) or len(text) > max_digits or not _ASCII_DIGITS.fullmatch(text):
        raise BadRequest(f"{what} must be an integer of at most {max_digits} digits (0-9)")
    return int(text)


def is_ascii_int(text: object, max_digits: int = MAX_INT_DIGITS) -> bool:
    """True when `ascii_int` would accept `text`."""
    return isinstance(text, str) and len(text) <= max_digits and bool(_ASCII_DIGITS.fullmatch(text))


def is_document_id(value: object) -> bool:
    """A Cloudinary asset_id we may use as a Firestore document id: letters, digits, _ and -,
    at most 128, and not one of Firestore's reserved `__...__` ids."""
    return (
        isinstance(value, str)
        and bool(_DOCUMENT_ID.fullmatch(value))
        and not _RESERVED_ID.fullmatch(value)
    )
