"""Asset jobs: the micro-batch / replay job over every scoring asset, and the daily decay refresh."""

import dagster as dg

from leadscore_pipeline.partitions import lead_buckets

SCORING_ASSETS = ["clean_events", "lead_scores", "score_history", "current_scores"]

# In-process: a micro-batch is small, and a subprocess per step would cost seconds of start-up.
score_deliveries = dg.define_asset_job(
    "score_deliveries",
    selection=dg.AssetSelection.assets(*SCORING_ASSETS),
    partitions_def=lead_buckets,
    executor_def=dg.in_process_executor,
    description="Dedup and score: micro-batches from the sensor (tagged), full rebuilds otherwise.",
)

refresh_current_scores = dg.define_asset_job(
    "refresh_current_scores",
    selection=dg.AssetSelection.assets("current_scores"),
    partitions_def=lead_buckets,
    executor_def=dg.in_process_executor,
    description="Apply inactivity decay as of now to every lead's current score.",
)
