"""The one event validator every channel calls: raw text rows in, normalized events and errors out (SPEC §2-3)."""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import polars as pl

RAW_COLUMNS = ("event_id", "event_type", "timestamp", "email", "lead_id", "source", "metadata")
# CSV files may carry these beside metadata; a non-empty cell wins over metadata's value.
OVERRIDE_COLUMNS = ("name", "company")

EVENT_TYPE_PATTERN = r"^[A-Z][A-Z0-9_]{0,63}$"
EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
CONTROL_CHARS = r"[\x00-\x1f\x7f]"
MAX_ID_CHARS = 128
MAX_SOURCE_CHARS = 128
MIN_EVENT_TIME = datetime(1971, 1, 1, tzinfo=UTC)

EVENT_SCHEMA = pl.Schema(
    {
        "row": pl.UInt32,
        "event_id": pl.String,
        "event_type": pl.String,
        "event_time": pl.Datetime("us", "UTC"),
        "email": pl.String,
        "external_id": pl.String,
        "lead_key": pl.String,
        "source": pl.String,
        "name": pl.String,
        "company": pl.String,
        "metadata": pl.String,
    }
)
ERROR_SCHEMA = pl.Schema({"row": pl.UInt32, "field": pl.String, "reason": pl.String})

# The common shape is tried first on every row; the fallbacks only on the rows still unparsed,
# after upper-casing and turning a space between date and time into "T".
_FAST_TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%S%.f%#z"
_FALLBACK_TIMESTAMP_FORMATS = (
    "%Y-%m-%dT%H:%M:%S%.f%#z",
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%dT%H:%M%#z",
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%d",
)
_SHOWN_CHARS = 80
_ISO_FORMAT = "%Y-%m-%dT%H:%M:%S%.6fZ"


@dataclass(frozen=True)
class ValidationLimits:
    max_event_bytes: int = 32 * 1024
    max_future: timedelta = timedelta(hours=1)


@dataclass(frozen=True)
class Validated:
    events: pl.DataFrame  # the good rows, normalized, columns as EVENT_SCHEMA
    errors: pl.DataFrame  # one row per problem, columns as ERROR_SCHEMA


@dataclass(frozen=True)
class _Check:
    field: str
    failed: pl.Expr  # true on the rows that break the rule
    reason: pl.Expr  # only evaluated on the failing rows, so it may be costly


def validate_events(
    raw: pl.DataFrame,
    *,
    channel: str,
    received_at: datetime,
    limits: ValidationLimits = ValidationLimits(),
) -> Validated:
    """Check every row of `raw` against SPEC §2; `row` in both outputs is the position in `raw`.

    A value that is empty after trimming counts as absent, except `event_id`, where an empty
    string is a sender's mistake and is reported rather than replaced by a derived id.
    """
    received_at = received_at.astimezone(UTC) if received_at.tzinfo else received_at.replace(tzinfo=UTC)
    lf = raw.lazy().select(
        # Keyed by the known columns only, so odd CSV headers cannot grow the cache.
        *_raw_columns(tuple(c for c in (*RAW_COLUMNS, *OVERRIDE_COLUMNS, "raw_bytes") if c in raw.columns)),
        pl.lit(channel, dtype=pl.String).alias("channel"),
        pl.lit(received_at, dtype=pl.Datetime("us", "UTC")).alias("received_at"),
    )
    for stage in _stages(limits):
        lf = lf.with_columns(stage)
    # Only shared subexpressions are worth planning for: the full optimizer costs more than it saves (measured).
    checked = lf.collect(optimizations=pl.QueryOptFlags.none(comm_subexpr_elim=True))
    events = _with_derived_ids(checked.filter("_ok").select(EVENT_SCHEMA.names()))
    if events.height == checked.height:
        return Validated(events=events, errors=pl.DataFrame(schema=ERROR_SCHEMA))
    return Validated(events=events, errors=_errors(checked.filter(~pl.col("_ok")), _checks(limits)))


# Expressions are built once per input shape or limits: building them costs more than running them on one row.
@functools.cache
def _raw_columns(columns: tuple[str, ...]) -> list[pl.Expr]:
    """The row index, every raw field as `raw_<name>` text (all-null when missing) and the event's size."""
    present = [c for c in columns if c != "raw_bytes"]
    # Without a size from the channel, the text of the event is the best measure we have.
    size = pl.sum_horizontal(pl.lit(0), *(pl.col(c).cast(pl.String).str.len_bytes().fill_null(0) for c in present))
    if "raw_bytes" in columns:
        size = pl.coalesce(pl.col("raw_bytes").cast(pl.Int64), size)
    return [
        pl.int_range(pl.len(), dtype=pl.UInt32).alias("row"),
        *(
            (pl.col(c).cast(pl.String) if c in present else pl.lit(None, dtype=pl.String)).alias(f"raw_{c}")
            for c in (*RAW_COLUMNS, *OVERRIDE_COLUMNS)
        ),
        size.cast(pl.Int64).alias("size"),
    ]


@functools.cache
def _stages(limits: ValidationLimits) -> tuple[list[pl.Expr], ...]:
    """The `with_columns` steps after the raw columns: normalize, flag each rule, then `_ok`."""
    flags = [check.failed.fill_null(False).alias(f"_failed_{i}") for i, check in enumerate(_checks(limits))]
    return (*_normalize_stages(), flags, [~pl.any_horizontal(f.meta.output_name() for f in flags).alias("_ok")])


def _raw(name: str) -> pl.Expr:
    return pl.col(f"raw_{name}")


def _blank_to_null(expr: pl.Expr) -> pl.Expr:
    text = expr.str.strip_chars()
    return pl.when(text.str.len_bytes() > 0).then(text)


def _metadata_value(key: str, *, wanted: pl.Expr) -> pl.Expr:
    """metadata.<key> as trimmed text, looked up only where `wanted`: JSON parsing is the costly part."""
    # The literal key test is a cheap pre-filter that spares the JSON parse on most rows.
    candidate = wanted & _raw("metadata").str.contains(f'"{key}"', literal=True)
    return _blank_to_null(pl.when(candidate).then(_raw("metadata")).str.json_path_match(f"$.{key}"))


def _parse_timestamp(text: pl.Expr, fmt: str) -> pl.Expr:
    return text.str.to_datetime(fmt, time_unit="us", time_zone="UTC", strict=False)


def _normalize_stages() -> tuple[list[pl.Expr], ...]:
    """The `with_columns` steps that add the normalized fields under their output names.

    The raw text stays beside them for the error messages.
    """
    email_top, lead_id_top = pl.col("email_top"), pl.col("lead_id_top")
    metadata_text, timestamp_text = pl.col("metadata_text"), pl.col("timestamp_text")
    trimmed = [
        pl.col("raw_event_id").alias("event_id"),
        _raw("event_type").str.strip_chars().str.to_uppercase().alias("event_type"),
        _blank_to_null(_raw("timestamp")).alias("timestamp_text"),
        _blank_to_null(_raw("email")).str.to_lowercase().alias("email_top"),
        _blank_to_null(_raw("lead_id")).alias("lead_id_top"),
        pl.coalesce(_blank_to_null(_raw("source")), "channel").alias("source"),
        _blank_to_null(_raw("metadata")).alias("metadata_text"),
        _blank_to_null(_raw("name")).alias("name_column"),
        _blank_to_null(_raw("company")).alias("company_column"),
    ]
    looked_up = [
        _parse_timestamp(timestamp_text, _FAST_TIMESTAMP_FORMAT).alias("event_time"),
        (
            metadata_text.is_null()
            | (metadata_text.str.starts_with("{") & metadata_text.str.json_path_match("$").is_not_null())
        ).alias("metadata_is_object"),
        pl.coalesce(email_top, _metadata_value("email", wanted=email_top.is_null()).str.to_lowercase()).alias("email"),
        pl.coalesce(lead_id_top, _metadata_value("lead_id", wanted=lead_id_top.is_null())).alias("external_id"),
        pl.coalesce("name_column", _metadata_value("name", wanted=pl.col("name_column").is_null())).alias("name"),
        pl.coalesce("company_column", _metadata_value("company", wanted=pl.col("company_column").is_null())).alias(
            "company"
        ),
    ]
    # Less common spellings (space for "T", lower-case "z", no seconds, a date alone) only where still needed.
    unparsed = pl.when(pl.col("event_time").is_null()).then(
        timestamp_text.str.to_uppercase().str.replace(" ", "T", literal=True, n=1)
    )
    reparsed = [
        pl.coalesce("event_time", *(_parse_timestamp(unparsed, fmt) for fmt in _FALLBACK_TIMESTAMP_FORMATS)),
    ]
    finished = [
        pl.col("event_time").is_not_null().alias("timestamp_parsed"),
        pl.when(timestamp_text.is_null()).then("received_at").otherwise("event_time").alias("event_time"),
        pl.coalesce("email", pl.lit("id:") + pl.col("external_id")).alias("lead_key"),
        pl.coalesce(metadata_text, pl.lit("{}")).alias("metadata"),
    ]
    return trimmed, looked_up, reparsed, finished


def _shown(expr: pl.Expr) -> pl.Expr:
    """A raw value quoted for an error message, cut short so a huge value cannot flood the errors."""
    cut = pl.when(expr.str.len_chars() > _SHOWN_CHARS).then(expr.str.slice(0, _SHOWN_CHARS) + "...").otherwise(expr)
    return pl.format("'{}'", cut)


@functools.cache
def _checks(limits: ValidationLimits) -> tuple[_Check, ...]:
    """The rules of SPEC §2 as (field, failed, reason), over the columns the normalize stages add."""
    email, external_id = pl.col("email"), pl.col("external_id")
    email_top, lead_id_top = pl.col("email_top"), pl.col("lead_id_top")
    event_time = pl.col("event_time")
    id_chars = _raw("event_id").str.len_chars()
    id_length_bad = (id_chars < 1) | (id_chars > MAX_ID_CHARS)
    timestamp_given = pl.col("timestamp_text").is_not_null()
    too_early = event_time < pl.lit(MIN_EVENT_TIME, dtype=pl.Datetime("us", "UTC"))
    too_late = event_time > pl.col("received_at") + limits.max_future
    email_bad = ~email.str.contains(EMAIL_PATTERN)
    email_shape = "must look like an address (name@domain.tld), got "
    return (
        _Check(
            "event_id",
            _raw("event_id").is_not_null() & (id_length_bad | _raw("event_id").str.contains(CONTROL_CHARS)),
            pl.when(id_length_bad)
            .then(pl.format("must be 1-{} characters, got {}", pl.lit(MAX_ID_CHARS), id_chars))
            .otherwise(pl.lit(r"must not contain control characters (\x00-\x1f, \x7f)")),
        ),
        _Check(
            "event_type",
            ~pl.col("event_type").str.contains(EVENT_TYPE_PATTERN).fill_null(False),
            pl.when(pl.col("event_type").fill_null("") == "")
            .then(pl.lit("is required"))
            .otherwise(
                pl.lit(f"must match {EVENT_TYPE_PATTERN} after trimming and upper-casing, got ")
                + _shown(_raw("event_type"))
            ),
        ),
        _Check(
            "timestamp",
            timestamp_given & (~pl.col("timestamp_parsed") | too_early | too_late),
            pl.when(~pl.col("timestamp_parsed"))
            .then(pl.lit("must be an ISO-8601 date-time such as 2026-11-28T10:00:00Z, got "))
            .when(too_early)
            .then(pl.lit("must not be before 1971-01-01T00:00:00Z, got "))
            .otherwise(
                pl.format(
                    "must not be more than {} after the receive time {}, got ",
                    pl.lit(_duration_text(limits.max_future)),
                    pl.col("received_at").dt.to_string(_ISO_FORMAT),
                )
            )
            + _shown(_raw("timestamp")),
        ),
        _Check("email", email_top.is_not_null() & email_bad, pl.lit(email_shape) + _shown(_raw("email"))),
        _Check(
            "metadata.email",
            email_top.is_null() & email.is_not_null() & email_bad,
            pl.lit(email_shape) + _shown(email),
        ),
        _Check(
            "lead_id",
            lead_id_top.str.len_chars() > MAX_ID_CHARS,
            pl.format("must be 1-{} characters, got {}", pl.lit(MAX_ID_CHARS), lead_id_top.str.len_chars()),
        ),
        _Check(
            "metadata.lead_id",
            lead_id_top.is_null() & (external_id.str.len_chars() > MAX_ID_CHARS),
            pl.format("must be 1-{} characters, got {}", pl.lit(MAX_ID_CHARS), external_id.str.len_chars()),
        ),
        _Check(
            "email",
            email.is_null() & external_id.is_null(),
            pl.lit("an event needs an email or a lead_id"),
        ),
        _Check(
            "source",
            pl.col("source").str.len_chars() > MAX_SOURCE_CHARS,
            pl.format(
                "must be at most {} characters, got {}",
                pl.lit(MAX_SOURCE_CHARS),
                pl.col("source").str.len_chars(),
            ),
        ),
        _Check(
            "metadata",
            ~pl.col("metadata_is_object"),
            pl.lit("must be a JSON object, got ") + _shown(_raw("metadata")),
        ),
        _Check(
            "event",
            pl.col("size") > limits.max_event_bytes,
            pl.lit(f"larger than {limits.max_event_bytes} bytes"),
        ),
    )


def _duration_text(duration: timedelta) -> str:
    seconds = int(duration.total_seconds())
    if seconds % 3600 == 0:
        return f"{seconds // 3600} hour" + ("" if seconds == 3600 else "s")
    return f"{seconds} seconds"


def _errors(failing: pl.DataFrame, checks: tuple[_Check, ...]) -> pl.DataFrame:
    """One row per (row, failed check), with the check's field and reason, sorted by row then field."""
    reasons = [pl.when(f"_failed_{i}").then(check.reason).alias(f"_failed_{i}") for i, check in enumerate(checks)]
    fields = {f"_failed_{i}": check.field for i, check in enumerate(checks)}
    return (
        failing.lazy()
        .select("row", *reasons)
        .unpivot(index="row", variable_name="field", value_name="reason")
        .drop_nulls("reason")
        .with_columns(pl.col("field").replace_strict(fields, return_dtype=pl.String))
        .sort("row", "field")
        .collect()
    )


def _with_derived_ids(events: pl.DataFrame) -> pl.DataFrame:
    """Give events sent without an id the content-derived one of SPEC §2, so an identical retry dedups."""
    missing = events["event_id"].is_null()
    if not missing.any():
        return events
    content = events.filter(missing).select(
        "event_type", "lead_key", pl.col("event_time").dt.to_string(_ISO_FORMAT), "source", "metadata"
    )
    # sha256 has no Polars expression; this Python loop runs over the id-less rows only.
    derived = [_derived_id(*values) for values in content.iter_rows()]
    return events.with_columns(events["event_id"].clone().scatter(missing.arg_true(), derived))


def _derived_id(event_type: str, lead_key: str, event_time: str, source: str, metadata: str) -> str:
    content = [event_type, lead_key, event_time, source, json.loads(metadata)]
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"))
    return "d-" + hashlib.sha256(canonical.encode()).hexdigest()[:32]
