"""The raw deliveries table: landed by the API and the file drop, outside Dagster, append-only."""

import dagster as dg

raw_deliveries = dg.AssetSpec(
    "raw_deliveries",
    description="Every delivery of every event as it arrived (API, batch, webhook, CSV), in landing order.",
    kinds={"postgres"},
    group_name="ingest",
)
