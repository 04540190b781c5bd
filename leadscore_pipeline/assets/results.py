"""How a step's result shows in Dagster: run metadata and warnings."""

import dagster as dg

from leadscore_pipeline import refresh


def log_quarantined(context: dg.AssetExecutionContext, result: refresh.StepResult) -> None:
    if result.details.get("quarantined"):
        context.log.warning(
            f"set aside {result.details['quarantined']} delivery(ies) this step failed on: see quarantined_deliveries"
            " or GET /api/pipeline/status"
        )


def step_metadata(result: refresh.StepResult, scope: refresh.Scope) -> dict[str, object]:
    return {
        "rows": result.rows,
        "through_seq": result.through_seq,
        "mode": "micro-batch" if scope.incremental else "full rebuild",
        **result.details,
    }
