"""The fast Vector encoder sends exactly the bytes the Firestore SDK's own encoder would, and
is the one the SDK uses once `autotagger.clients.store` is imported."""

from __future__ import annotations

import numpy as np
import pytest
from google.cloud.firestore_v1 import _helpers
from google.cloud.firestore_v1.types import document
from google.cloud.firestore_v1.vector import Vector

from autotagger.clients import firestore_vectors, store


def _bytes(value: document.Value) -> bytes:
    return document.Value.pb(value).SerializeToString(deterministic=True)


@pytest.mark.parametrize("size", [1, 64, 512, 2048])
def test_a_vector_encodes_to_the_sdks_bytes(size: int) -> None:
    rng = np.random.default_rng(size)
    numbers = [float(x) for x in rng.normal(size=size).astype(np.float32)]
    numbers[0] = 0.0  # a zero is sent too (a oneof member is present whatever its value)
    vector = Vector(numbers)
    fast = firestore_vectors.encode_vector(vector)
    slow = firestore_vectors._sdk_encode_value(vector)
    assert _bytes(fast) == _bytes(slow)
    assert fast == slow
    assert _helpers.decode_value(fast, None) == vector
    assert firestore_vectors.encode_vector(Vector([])) == firestore_vectors._sdk_encode_value(
        Vector([])
    )


def test_the_sdk_uses_it_for_vectors_inside_documents_and_its_own_for_the_rest() -> None:
    assert store.firestore_vectors is firestore_vectors  # the store installed it at import
    assert _helpers.encode_value is firestore_vectors.encode_value
    record = {"tags": ["dog", "animal"], "score": 0.5, "n": 3, "embedding": Vector([0.6, 0.8])}
    encoded = _helpers.encode_dict(record)
    expected = {k: firestore_vectors._sdk_encode_value(v) for k, v in record.items()}
    assert {k: _bytes(v) for k, v in encoded.items()} == {k: _bytes(v) for k, v in expected.items()}
    nested = _helpers.encode_value({"inner": [Vector([1.0, 0.0])]})
    assert _bytes(nested) == _bytes(
        firestore_vectors._sdk_encode_value({"inner": [Vector([1.0, 0.0])]})
    )
