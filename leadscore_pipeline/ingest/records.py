"""Turn JSON event objects (REST, batch, webhook) into the validator's raw frame, catching type errors."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import polars as pl

from leadscore_pipeline.ingest.validate import RAW_COLUMNS

# Top-level fields an event may carry; `name` and `company` may also sit in metadata.
TEXT_FIELDS = ("event_id", "event_type", "timestamp", "email", "lead_id", "source", "name", "company")
KNOWN_FIELDS = frozenset((*TEXT_FIELDS, "metadata"))
# json.loads turns a lone "\ud800" escape into a str that no UTF-8 text (Polars, Postgres) can hold.
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


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


def _encodable(value: str | None, field: str, index: int, errors: list[FieldError]) -> str | None:
    """`value` with lone surrogates reported and replaced by U+FFFD, so the frame can be built and the
    record's other fields still validated."""
    if value is None or not _LONE_SURROGATE.search(value):
        return value
    errors.append(FieldError(index, field, "must not contain lone surrogates (U+D800-U+DFFF): they are no characters"))
    return _LONE_SURROGATE.sub("\ufffd", value)


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
            # The name is echoed in the JSON answer, which must be UTF-8 too.
            shown = _LONE_SURROGATE.sub("\ufffd", field)
            errors.append(FieldError(index, shown, "unknown field (put extra data in metadata)"))
        text = json.dumps(record, ensure_ascii=False)
        # One encode of the whole record tells whether its fields need the search for lone surrogates.
        try:
            columns["raw_bytes"].append(len(text.encode()))
            surrogates = False
        except UnicodeEncodeError:
            columns["raw_bytes"].append(len(text.encode(errors="surrogatepass")))
            surrogates = True
        metadata = record.get("metadata")
        if metadata is not None and not isinstance(metadata, dict):
            errors.append(FieldError(index, "metadata", f"must be a JSON object, got {type(metadata).__name__}"))
            metadata = None
        values = {field: _text(record.get(field), field, index, errors) for field in TEXT_FIELDS}
        values["metadata"] = None if metadata is None else json.dumps(metadata, ensure_ascii=False)
        for field, value in values.items():
            columns[field].append(_encodable(value, field, index, errors) if surrogates else value)
    schema = {name: pl.String for name in columns} | {"raw_bytes": pl.Int64}
    return pl.DataFrame(columns, schema=schema), errors
