"""Turn JSON event objects (REST, batch, webhook) into the validator's raw frame, catching type errors."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import polars as pl

from leadscore_pipeline.ingest.validate import RAW_COLUMNS

# Top-level fields an event may carry; `name` and `company` may also sit in metadata.
TEXT_FIELDS = ("event_id", "event_type", "timestamp", "email", "lead_id", "source", "name", "company")
KNOWN_FIELDS = frozenset((*TEXT_FIELDS, "metadata"))


@dataclass(frozen=True)
class FieldError:
    index: int
    field: str
    error: str

    def as_dict(self, with_index: bool = True) -> dict[str, object]:
        body: dict[str, object] = {"field": self.field, "error": self.error}
        return {"index": self.index, **body} if with_index else body


def _text(value: Any, field: str, index: int, errors: list[FieldError]) -> str | None:
    if value is None or isinstance(value, str):
        return value
    # Numeric ids are common in senders' systems; anything else is a client mistake to report.
    if field in ("event_id", "lead_id") and isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    errors.append(FieldError(index, field, f"must be a string, got {type(value).__name__}"))
    return None


def records_to_frame(records: list[Any]) -> tuple[pl.DataFrame, list[FieldError]]:
    """One row per record, every column a string; records that are not objects or carry wrong types
    produce errors (their row is still present so the validator's row indexes stay aligned)."""
    columns: dict[str, list[Any]] = {name: [] for name in (*RAW_COLUMNS, "name", "company", "raw_bytes")}
    errors: list[FieldError] = []
    for index, record in enumerate(records):
        if not isinstance(record, dict):
            errors.append(FieldError(index, "event", f"must be a JSON object, got {type(record).__name__}"))
            record = {}
        for field in sorted(set(record) - KNOWN_FIELDS):
            errors.append(FieldError(index, field, "unknown field (put extra data in metadata)"))
        for field in TEXT_FIELDS:
            columns[field].append(_text(record.get(field), field, index, errors))
        metadata = record.get("metadata")
        if metadata is not None and not isinstance(metadata, dict):
            errors.append(FieldError(index, "metadata", f"must be a JSON object, got {type(metadata).__name__}"))
            metadata = None
        columns["metadata"].append(None if metadata is None else json.dumps(metadata, ensure_ascii=False))
        columns["raw_bytes"].append(len(json.dumps(record, ensure_ascii=False).encode()))
    schema = {name: pl.String for name in columns} | {"raw_bytes": pl.Int64}
    return pl.DataFrame(columns, schema=schema), errors
