"""A fast encoding of Firestore `Vector` fields, installed into the SDK's value encoder.

The SDK (`google.cloud.firestore_v1._helpers.encode_value`) turns a `Vector` into a map of an
array and builds one proto-plus `Value` per number: 2-5 ms for a 512-number embedding on every
write that carries one, a few percent of a warm classification. `encode_value` here writes the
array's wire format with numpy (each number one length-delimited `Value{double_value}`: 11
bytes) and parses it into the raw message (~0.04 ms), and hands everything else to the SDK's
encoder; the bytes sent are identical (a unit test compares them), so what Firestore stores and
`find_nearest` reads does not change.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from google.cloud.firestore_v1 import _helpers
from google.cloud.firestore_v1.types import document
from google.cloud.firestore_v1.vector import Vector

_RawValue: Any = document.Value.pb()
_sdk_encode_value = _helpers.encode_value
# One element of ArrayValue.values (field 1, length-delimited, 9 bytes) holding a Value whose
# double_value (field 3, 64-bit) is the number: tags 0x0A and 0x19, little-endian double.
_ELEMENT = np.dtype([("tag", "u1"), ("length", "u1"), ("field", "u1"), ("number", "<f8")])
_ELEMENT_TAG, _ELEMENT_LENGTH, _DOUBLE_TAG = 0x0A, 9, 0x19


def encode_vector(vector: Vector) -> document.Value:
    """`vector` as the SDK encodes it: `{"__type__": "__vector__", "value": [doubles]}`."""
    elements = np.empty(len(vector), _ELEMENT)
    elements["tag"], elements["length"], elements["field"] = (
        _ELEMENT_TAG,
        _ELEMENT_LENGTH,
        _DOUBLE_TAG,
    )
    elements["number"] = vector.to_map_value()["value"]  # the numbers, as the SDK reads them
    raw = _RawValue()
    fields = raw.map_value.fields
    fields["__type__"].string_value = "__vector__"
    fields["value"].array_value.MergeFromString(elements.tobytes())
    return document.Value.wrap(raw)


def encode_value(value: Any) -> document.Value:
    """The SDK's `encode_value`, with `Vector` encoded by `encode_vector`."""
    if type(value) is Vector:
        return encode_vector(value)
    return _sdk_encode_value(value)


def install() -> None:
    """Use `encode_value` wherever the SDK encodes a document (its module-level name, which
    `encode_dict` and the write builders look up on each call). Idempotent."""
    _helpers.encode_value = encode_value
