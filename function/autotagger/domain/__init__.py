"""The domain types every layer shares, importing nothing but the standard library and the
other leaves (`errors`, `parsing`): the upload, the stored record and its statuses, the
artifact manifest."""

from autotagger.domain.manifest import (
    IR,
    MANIFEST,
    FileEntry,
    Manifest,
    ManifestError,
)
from autotagger.domain.record import (
    CLAIM_DOCUMENT_FIELDS,
    EMBEDDING_FIELD,
    FINAL,
    FP16_SUFFIX,
    PUBLIC_FIELDS,
    STORED_FIELDS,
    Status,
    claim_document,
    embedding_space,
    is_final,
    is_live_claim,
    is_superseded,
    status_of,
    to_public,
    version_of,
)
from autotagger.domain.upload import InvalidField, Upload, parse_upload, required_text

__all__ = [
    "CLAIM_DOCUMENT_FIELDS",
    "EMBEDDING_FIELD",
    "FINAL",
    "FP16_SUFFIX",
    "IR",
    "MANIFEST",
    "PUBLIC_FIELDS",
    "STORED_FIELDS",
    "FileEntry",
    "InvalidField",
    "Manifest",
    "ManifestError",
    "Status",
    "Upload",
    "claim_document",
    "embedding_space",
    "is_final",
    "is_live_claim",
    "is_superseded",
    "parse_upload",
    "required_text",
    "status_of",
    "to_public",
    "version_of",
]
