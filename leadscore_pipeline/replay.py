"""Launch and follow a replay: a Dagster backfill of every scoring asset over every lead bucket.

Talks to the Dagster webserver's GraphQL API over HTTP, so the API and the CLI need no Dagster imports.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from leadscore_pipeline.buckets import LEAD_BUCKETS

SCORING_ASSETS = (
    "clean_events",
    "lead_scores",
    "score_history",
    "current_scores",
    "daily_event_counts",
    "lead_event_stats",
)

_LAUNCH = """
mutation Replay($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on Error { message }
  }
}
"""

_STATE = """
query ReplayState($id: String!) {
  partitionBackfillOrError(backfillId: $id) {
    __typename
    ... on PartitionBackfill { id status partitionNames runs { status tags { key value } } }
    ... on Error { message }
  }
}
"""

# Dagster's backfill statuses, in the four words of our API.
_STATES = {
    "COMPLETED": "succeeded",
    "COMPLETED_SUCCESS": "succeeded",
    "FAILED": "failed",
    "COMPLETED_FAILED": "failed",
    "FAILING": "failed",
    "CANCELED": "failed",
    "CANCELING": "failed",
}


class ReplayError(RuntimeError):
    """Dagster could not be reached or refused the request."""


class ReplayNotFound(ReplayError):
    pass


def _graphql(dagster_url: str, query: str, variables: dict) -> dict:
    try:
        response = httpx.post(f"{dagster_url}/graphql", json={"query": query, "variables": variables}, timeout=30)
        response.raise_for_status()
    except httpx.HTTPError as exc:
        raise ReplayError(f"the Dagster webserver at {dagster_url} did not answer: {exc}") from None
    body = response.json()
    if body.get("errors"):
        raise ReplayError("; ".join(error["message"] for error in body["errors"]))
    return body["data"]


def launch_replay(dagster_url: str, trigger: str) -> str:
    """Start the backfill; returns its id."""
    params = {
        "assetSelection": [{"path": [key]} for key in SCORING_ASSETS],
        "partitionNames": [f"{bucket:02d}" for bucket in range(LEAD_BUCKETS)],
        "fromFailure": False,
        "title": "LeadScore replay",
        "tags": [{"key": "leadscore/trigger", "value": trigger}],
    }
    result = _graphql(dagster_url, _LAUNCH, {"params": params})["launchPartitionBackfill"]
    if result["__typename"] != "LaunchBackfillSuccess":
        raise ReplayError(f"{result['__typename']}: {result.get('message', '')}")
    return result["backfillId"]


@dataclass(frozen=True)
class ReplayProgress:
    state: str  # queued, running, succeeded or failed
    buckets_done: int  # targeted buckets that a successful run of the replay covered
    buckets_total: int  # buckets targeted


def replay_progress(dagster_url: str, replay_id: str) -> ReplayProgress:
    result = _graphql(dagster_url, _STATE, {"id": replay_id})["partitionBackfillOrError"]
    if result["__typename"] != "PartitionBackfill":
        raise ReplayNotFound(result.get("message", f"no replay {replay_id!r}"))
    state = _STATES.get(result["status"]) or ("running" if result["runs"] else "queued")
    # Counted per bucket from the runs (each covers every scoring asset of a range of buckets), not from Dagster's
    # asset backfill data: the daemon updates that only between its iterations, and launching the runs of a
    # replay one after the other is a single iteration.
    targeted = result["partitionNames"] or []
    succeeded = [_tags(run) for run in result["runs"] if run["status"] == "SUCCESS"]
    done = sum(any(_covers(tags, bucket) for tags in succeeded) for bucket in targeted)
    return ReplayProgress(state, done, len(targeted))


def _tags(run: dict) -> dict[str, str]:
    return {tag["key"]: tag["value"] for tag in run["tags"]}


def _covers(run_tags: dict[str, str], bucket: str) -> bool:
    """Whether a run was over this bucket: its one partition, or a range of them."""
    if "dagster/partition" in run_tags:
        return run_tags["dagster/partition"] == bucket
    start, end = run_tags.get("dagster/asset_partition_range_start"), run_tags.get("dagster/asset_partition_range_end")
    # Bucket keys are zero-padded numbers: their string order is the partitions' order.
    return start is not None and end is not None and start <= bucket <= end
