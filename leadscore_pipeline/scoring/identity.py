"""The identity graph of SPEC §3 as Polars: which lead each email and external id belongs to.

An event with both an email and an external id links them. An id linked to at most `max_emails_per_id` distinct
emails (merge protection) belongs to their lead, and joins them into one; an id linked to more is ambiguous and
joins nothing. A lead's key is the email of its earliest event (ties by the smaller email). Everything here is a
function of the links, which are a function of the set of clean events: never of arrival order.
"""

from __future__ import annotations

import polars as pl

ID_PREFIX = "id:"  # SPEC §3: the key of an event without email

# Per (email, external id or null) of the clean events with an email: how many, and the earliest one's time.
LINK_SCHEMA = {
    "lead_bucket": pl.Int16,
    "email": pl.String,
    "external_id": pl.String,
    "events": pl.Int32,
    "first_at": pl.Datetime("us", "UTC"),
}
# A key (an email, or `id:` + external id) that resolves to another lead.
ALIAS_SCHEMA = {"identity_key": pl.String, "lead_key": pl.String}
# How many distinct emails each external id has been seen with.
ID_EMAILS_SCHEMA = {"external_id": pl.String, "emails": pl.UInt32}


def id_key(external_id: pl.Expr) -> pl.Expr:
    return pl.lit(ID_PREFIX) + external_id


def identity_links(events: pl.LazyFrame) -> pl.LazyFrame:
    """The links of clean events (lead_bucket, email, external_id, event_time): one row per (email, external id or
    null) of the events with an email, in the email's bucket (its events' lead_key is the email)."""
    return (
        events.filter(pl.col("email").is_not_null())
        .group_by("lead_bucket", "email", "external_id")
        .agg(events=pl.len().cast(pl.Int32), first_at=pl.col("event_time").min())
        .select(list(LINK_SCHEMA))
    )


def emails_per_id(links: pl.DataFrame) -> pl.DataFrame:
    return (
        links.filter(pl.col("external_id").is_not_null())
        .group_by("external_id")
        .agg(emails=pl.col("email").n_unique().cast(pl.UInt32))
    )


def resolve_aliases(links: pl.DataFrame, max_emails_per_id: int, id_emails: pl.DataFrame | None = None) -> pl.DataFrame:
    """Every key of `links` that resolves to another lead: identity_key -> lead_key.

    `links` (email, external_id, first_at) must hold every link of each email they name, and of each unambiguous
    id. `id_emails` (external_id, emails) counts each id's distinct emails where `links` hold only some of an
    ambiguous id's; by default they are counted from `links`.
    """
    counts = emails_per_id(links) if id_emails is None else id_emails
    pairs = links.filter(pl.col("external_id").is_not_null()).select("email", "external_id").unique()
    # The ids that join their emails into one lead: seen with at most max_emails_per_id of them.
    joining = pairs.join(
        counts.filter(pl.col("emails") <= max_emails_per_id).select("external_id"), on="external_id", how="semi"
    )
    # Emails in the order that picks a lead's key: the earliest event first, ties by the smaller email.
    ranked = (
        links.group_by("email")
        .agg(pl.col("first_at").min())
        .sort("first_at", "email")
        .with_row_index("rank")
        .select("email", "rank")
    )
    # Connected components by label propagation: each email takes the smallest rank it reaches through the
    # joining ids, one id hop per pass, until no label moves (as many passes as the widest lead is long).
    labels = ranked.rename({"rank": "label"})
    while True:
        id_labels = joining.join(labels, on="email").group_by("external_id").agg(pl.col("label").min())
        reached = joining.join(id_labels, on="external_id").group_by("email").agg(reached=pl.col("label").min())
        moved = (
            labels.join(reached, on="email", how="left")
            .with_columns(label=pl.min_horizontal("label", "reached"))
            .drop("reached")
        )
        if moved.join(labels, on=["email", "label"], how="anti").is_empty():
            break
        labels = moved
    lead_of = labels.join(ranked.select(label="rank", lead_key="email"), on="label").select("email", "lead_key")
    email_aliases = lead_of.filter(pl.col("email") != pl.col("lead_key")).select(
        identity_key="email", lead_key="lead_key"
    )
    id_aliases = (
        joining.join(lead_of, on="email")
        .group_by("external_id")
        .agg(pl.col("lead_key").first())
        .select(identity_key=id_key(pl.col("external_id")), lead_key="lead_key")
    )
    return pl.concat([email_aliases, id_aliases]).sort("identity_key")


def as_lead_events(events: pl.LazyFrame, aliases: pl.LazyFrame) -> pl.LazyFrame:
    """Clean events as their leads': lead_key and lead_bucket those of the lead each event's key resolves to through
    `aliases` (identity_key, lead_key, lead_bucket), the key it was sent under as identity_key."""
    resolving = aliases.select("identity_key", alias_key="lead_key", alias_bucket="lead_bucket")
    return (
        events.join(resolving, left_on="lead_key", right_on="identity_key", how="left")
        .with_columns(
            identity_key=pl.col("lead_key"),
            lead_key=pl.coalesce("alias_key", "lead_key"),
            lead_bucket=pl.coalesce("alias_bucket", "lead_bucket"),
        )
        .drop("alias_key", "alias_bucket")
    )


def joined_keys(events: pl.LazyFrame, aliases: pl.LazyFrame) -> pl.LazyFrame:
    """Per (lead_key, event_id): the keys that event joined into its lead, as "k1, k2": each other email of the lead
    at its earliest event, each id that belongs to the lead at its earliest event that carries an email too.

    `events`: lead_key (resolved), event_id, event_time, email, external_id; `aliases`: identity_key, lead_key.
    """
    linked = events.filter(pl.col("email").is_not_null())
    emails = linked.filter(pl.col("email") != pl.col("lead_key")).with_columns(key=pl.col("email"))
    ids = (
        linked.filter(pl.col("external_id").is_not_null())
        .with_columns(key=id_key(pl.col("external_id")))
        .join(aliases, left_on=["key", "lead_key"], right_on=["identity_key", "lead_key"], how="semi")
    )
    return (
        pl.concat([emails, ids])
        .sort("event_time", "event_id")
        .group_by("lead_key", "key")
        .agg(pl.col("event_id").first())
        .sort("key")
        .group_by("lead_key", "event_id")
        .agg(joins=pl.col("key").str.join(", "))
    )
