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

# Field limits, in characters. Every stored text must also fit a btree index entry (~2.7 KB): at 4 bytes
# per character the longest, 256, takes 1 KB.
MAX_ID_CHARS = 128  # event_id and lead_id
MAX_EVENT_TYPE_CHARS = 64
MAX_EMAIL_CHARS = 254  # RFC 5321's limit on a forward path
MAX_SOURCE_CHARS = 128
MAX_NAME_CHARS = 256
MAX_COMPANY_CHARS = 256

EVENT_TYPE_PATTERN = rf"^[A-Z][A-Z0-9_]{{0,{MAX_EVENT_TYPE_CHARS - 1}}}$"
EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
CONTROL_CHARS = r"[\x00-\x1f\x7f]"
NUL_CHAR = r"\x00"
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
# An unescaped \u0000 in JSON text (an odd number of backslashes before it): jsonb cannot hold it.
_NUL_ESCAPE = r"(?:^|[^\\])(?:\\\\)*\\u0000"
_SURROGATE_ESCAPE = r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}"
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
class _Pattern:
    regex: str
    reason: str  # what a failing value is told


# Identifiers allow no control character; free text only loses NUL, which Postgres text cannot hold.
_NO_CONTROLS = _Pattern(CONTROL_CHARS, r"must not contain control characters (\x00-\x1f, \x7f)")
_NO_NUL = _Pattern(NUL_CHAR, r"must not contain the NUL character (\x00): Postgres cannot store it")
_EMAIL_SHAPE = _Pattern(EMAIL_PATTERN, "must look like an address (name@domain.tld), got ")


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
    # Reasons are stored (ingest_rejections) and Postgres text cannot hold NUL: show it as the 4 characters \x00.
    return pl.format("'{}'", cut.str.replace_all("\x00", r"\x00", literal=True))


def _text_check(
    field: str, value: pl.Expr, max_chars: int, *, forbidden: _Pattern, shape: _Pattern | None = None
) -> _Check:
    """A stored text field: nothing `forbidden`, at most `max_chars`, and matching `shape` when one is given."""
    length = value.str.len_chars()
    bad_chars, too_long = value.str.contains(forbidden.regex), length > max_chars
    failed = bad_chars | too_long if shape is None else bad_chars | too_long | ~value.str.contains(shape.regex)
    reason = (
        pl.when(bad_chars)
        .then(pl.lit(forbidden.reason))
        .when(too_long)
        .then(pl.format("must be at most {} characters, got {}", pl.lit(max_chars), length))
    )
    return _Check(field, failed, reason if shape is None else reason.otherwise(pl.lit(shape.reason) + _shown(value)))


def _sourced_checks(
    field: str,
    value: pl.Expr,
    top_level: pl.Expr,
    max_chars: int,
    *,
    forbidden: _Pattern,
    shape: _Pattern | None = None,
) -> tuple[_Check, _Check]:
    """The same rules for a value given at the top level (or as a CSV column) and for one taken from metadata,
    so the error names where the value came from."""
    check = _text_check(field, value, max_chars, forbidden=forbidden, shape=shape)
    return (
        _Check(field, top_level.is_not_null() & check.failed, check.reason),
        _Check(f"metadata.{field}", top_level.is_null() & check.failed, check.reason),
    )


@functools.cache
def _checks(limits: ValidationLimits) -> tuple[_Check, ...]:
    """The rules of SPEC §2 as (field, failed, reason), over the columns the normalize stages add."""
    email, external_id = pl.col("email"), pl.col("external_id")
    event_time = pl.col("event_time")
    id_chars = _raw("event_id").str.len_chars()
    id_length_bad = (id_chars < 1) | (id_chars > MAX_ID_CHARS)
    timestamp_given = pl.col("timestamp_text").is_not_null()
    too_early = event_time < pl.lit(MIN_EVENT_TIME, dtype=pl.Datetime("us", "UTC"))
    too_late = event_time > pl.col("received_at") + limits.max_future
    metadata = _raw("metadata")
    # The regex only runs where the literal text is present.
    nul_escape = pl.when(metadata.str.contains(r"\u0000", literal=True)).then(metadata).str.contains(_NUL_ESCAPE)
    metadata_nul = metadata.str.contains(NUL_CHAR) | nul_escape.fill_null(False)
    return (
        _Check(
            "event_id",
            _raw("event_id").is_not_null() & (id_length_bad | _raw("event_id").str.contains(CONTROL_CHARS)),
            pl.when(id_length_bad)
            .then(pl.format("must be 1-{} characters, got {}", pl.lit(MAX_ID_CHARS), id_chars))
            .otherwise(pl.lit(_NO_CONTROLS.reason)),
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
        *_sourced_checks(
            "email", email, pl.col("email_top"), MAX_EMAIL_CHARS, forbidden=_NO_CONTROLS, shape=_EMAIL_SHAPE
        ),
        *_sourced_checks("lead_id", external_id, pl.col("lead_id_top"), MAX_ID_CHARS, forbidden=_NO_CONTROLS),
        _Check(
            "email",
            email.is_null() & external_id.is_null(),
            pl.lit("an event needs an email or a lead_id"),
        ),
        _text_check("source", pl.col("source"), MAX_SOURCE_CHARS, forbidden=_NO_NUL),
        *_sourced_checks("name", pl.col("name"), pl.col("name_column"), MAX_NAME_CHARS, forbidden=_NO_NUL),
        *_sourced_checks("company", pl.col("company"), pl.col("company_column"), MAX_COMPANY_CHARS, forbidden=_NO_NUL),
        _Check(
            "metadata",
            metadata_nul | ~pl.col("metadata_is_object"),
            pl.when(metadata_nul)
            .then(pl.lit(r"must not contain NUL (\x00, or the JSON escape \u0000): Postgres cannot store it"))
            .when(metadata.str.contains(_SURROGATE_ESCAPE))
            .then(pl.lit(r"must not contain a \uD800-\uDFFF escape outside a surrogate pair: it is no character"))
            .otherwise(pl.lit("must be a JSON object, got ") + _shown(metadata)),
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
