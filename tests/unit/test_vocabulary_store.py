"""The vocabulary's encoding for Firestore: shards under the document limit, refused when torn."""

from __future__ import annotations

import numpy as np
import pytest

from autotagger import vocabulary, vocabulary_store
from autotagger.vocabulary_store import Vocabulary
from tests.support.vocabularies import DIM, synthetic_vocabulary, unit_length


def test_thousands_of_tags_shard_under_firestores_document_limit() -> None:
    rng = np.random.default_rng(3)
    count = 3000
    names = [f"tag-{i:04d}-" + "x" * 200 for i in range(count)]  # long names: worst case
    voc = synthetic_vocabulary(
        names,
        rng.normal(size=(DIM, count)),
        list(rng.normal(size=count)),
        list(rng.uniform(0.3, 0.9, size=count)),
    )
    header, shards = vocabulary_store.encode(voc)
    assert len(shards) == -(-count // vocabulary_store.SHARD_TAGS) == header["shards"]
    for shard in shards:
        size = (
            len(shard["weights"]) + sum(len(t) + 8 for t in shard["tags"]) + 64 * len(shard["tags"])
        )
        assert size < 1_000_000  # Firestore: 1 MiB per document, names and numbers included
    back = vocabulary_store.decode(header, shards)
    assert back.tags == voc.tags
    np.testing.assert_array_equal(back.weights, voc.weights)
    np.testing.assert_array_equal(back.thresholds, voc.thresholds)
    embedding = unit_length(rng.normal(size=DIM))
    assert vocabulary.apply(back, embedding) == vocabulary.apply(voc, embedding)


def test_decode_refuses_a_missing_or_foreign_shard() -> None:
    voc = synthetic_vocabulary(
        [f"t{i}" for i in range(600)], np.ones((DIM, 600)), [0.0] * 600, [0.5] * 600
    )
    voc = Vocabulary(**{**voc.__dict__, "version": 4})
    header, shards = vocabulary_store.encode(voc)
    with pytest.raises(vocabulary_store.VocabularyError, match="shard 1"):
        vocabulary_store.decode(header, [shards[0], None, shards[2]])
    foreign = {**shards[1], "version": 3}
    with pytest.raises(vocabulary_store.VocabularyError, match="shard 1"):
        vocabulary_store.decode(header, [shards[0], foreign, shards[2]])
    cut = {**shards[2], "weights": shards[2]["weights"][:-4]}
    with pytest.raises(vocabulary_store.VocabularyError, match="wrong sizes"):
        vocabulary_store.decode(header, [shards[0], shards[1], cut])
