"""The lead-bucket partitions of the scoring assets and the run tags that scope a run."""

import dagster as dg

from leadscore_pipeline.refresh import Scope
from leadscore_pipeline.scoring.params import LEAD_BUCKETS

lead_buckets = dg.StaticPartitionsDefinition([f"{bucket:02d}" for bucket in range(LEAD_BUCKETS)])
# Every bucketed asset: one run covers a whole range of buckets (a micro-batch takes all 16 at once).
BY_BUCKET = {"partitions_def": lead_buckets, "backfill_policy": dg.BackfillPolicy.single_run()}

# A sensor-started micro-batch carries these tags; any other run (a UI backfill, `leadscore replay`,
# the daily decay) rebuilds its buckets in full.
MODE_TAG = "leadscore/mode"
MICROBATCH = "microbatch"
THROUGH_SEQ_TAG = "leadscore/through_seq"


def all_buckets_tags() -> dict[str, str]:
    """Tags that make one run cover every bucket (a single-run range over the partitions)."""
    keys = lead_buckets.get_partition_keys()
    return {
        "dagster/asset_partition_range_start": keys[0],
        "dagster/asset_partition_range_end": keys[-1],
    }


def scope_of(context: dg.AssetExecutionContext) -> Scope:
    tags = context.run.tags
    buckets = tuple(int(key) for key in context.partition_keys)
    if tags.get(MODE_TAG) == MICROBATCH:
        through = tags.get(THROUGH_SEQ_TAG)
        return Scope(buckets=buckets, incremental=True, through_seq=int(through) if through else None)
    return Scope(buckets=buckets)
