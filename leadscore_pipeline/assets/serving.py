"""The serving aggregates: kept exact by triggers (migration 0005) in the transaction of every write to their
sources, so no run materializes them; declared so the lineage shows what the API's reads come from."""

import dagster as dg

_shared = dict(kinds={"postgres"}, group_name="serving")

serving_totals = dg.AssetSpec(
    "serving_totals",
    deps=["current_scores", "clean_events"],
    description="One row: leads, total points and leads per tier; events, duplicates, conflicts; CSV rejections.",
    **_shared,
)
company_totals = dg.AssetSpec(
    "company_totals",
    deps=["current_scores"],
    description="Per company: leads and total current score.",
    **_shared,
)
event_type_totals = dg.AssetSpec(
    "event_type_totals",
    deps=["lead_event_stats"],
    description="Per event type: events, unique leads, points and the purchases it came just before.",
    **_shared,
)
