"""The lead-bucket partitions of the scoring assets and the run tags that scope a run."""

import warnings

import dagster as dg

from leadscore_pipeline.buckets import ALL_BUCKETS, LEAD_BUCKETS
from leadscore_pipeline.refresh import Scope
from leadscore_pipeline.settings import get_settings

# Known and harmless, and printed by every process that loads the definitions (each code server the daemon starts,
# each run worker): `backfill_policy`, which a replay's run per bucket group needs, is beta in Dagster 1.13, and so
# are partitioned asset checks (assets/checks.py); Dagster copies every sensor with `owners=[]`, which trips its own
# beta check on `owners`.
warnings.filterwarnings("ignore", r"Parameter `(backfill_policy|owners)` of", dg.BetaWarning)
warnings.filterwarnings("ignore", r"Specifying a partitions_def on an AssetCheckSpec", dg.PreviewWarning)

lead_buckets = dg.StaticPartitionsDefinition([f"{bucket:02d}" for bucket in range(LEAD_BUCKETS)])
# Every bucketed asset: one run covers a range of buckets. A micro-batch takes all of them at once (its work is what
# landed); a backfill (a replay) is a run per group of buckets, so each run holds only its buckets' history.
BY_BUCKET = {
    "partitions_def": lead_buckets,
    "backfill_policy": dg.BackfillPolicy.multi_run(max_partitions_per_run=get_settings().buckets_per_run),
}

# A sensor-started micro-batch carries these tags; any other run (a UI backfill, `leadscore replay`,
# the daily decay) rebuilds its buckets in full.
MODE_TAG = "leadscore/mode"
MICROBATCH = "microbatch"
CATCH_UP = "catch-up"  # a backlog too big for one micro-batch, rebuilt a bucket group per run (refresh.Scope)
THROUGH_SEQ_TAG = "leadscore/through_seq"


def all_buckets_tags() -> dict[str, str]:
    """Tags that make one run cover every bucket (a single-run range over the partitions)."""
    return bucket_range_tags(ALL_BUCKETS)


def bucket_range_tags(buckets: tuple[int, ...]) -> dict[str, str]:
    """Tags that make one run cover a range of consecutive buckets."""
    return {
        "dagster/asset_partition_range_start": f"{min(buckets):02d}",
        "dagster/asset_partition_range_end": f"{max(buckets):02d}",
    }


def scope_of(context: dg.AssetExecutionContext) -> Scope:
    tags = context.run.tags
    buckets = tuple(int(key) for key in context.partition_keys)
    through = tags.get(THROUGH_SEQ_TAG)
    if tags.get(MODE_TAG) == MICROBATCH:
        return Scope(buckets=buckets, incremental=True, through_seq=int(through) if through else None)
    if tags.get(MODE_TAG) == CATCH_UP:
        return Scope(buckets=buckets, through_seq=int(through))
    return Scope(buckets=buckets)
