"""Launch and follow a replay: a Dagster backfill of every scoring asset over every lead bucket.

Talks to the Dagster webserver's GraphQL API over HTTP, so the API and the CLI need no Dagster imports.
"""

from __future__ import annotations

import httpx

from leadscore_pipeline.scoring.params import LEAD_BUCKETS

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
    ... on PartitionBackfill { id status runs(limit: 1) { id } }
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


def replay_state(dagster_url: str, replay_id: str) -> str:
    """queued, running, succeeded or failed."""
    result = _graphql(dagster_url, _STATE, {"id": replay_id})["partitionBackfillOrError"]
    if result["__typename"] != "PartitionBackfill":
        raise ReplayNotFound(result.get("message", f"no replay {replay_id!r}"))
    if result["status"] in _STATES:
        return _STATES[result["status"]]
    return "running" if result["runs"] else "queued"
