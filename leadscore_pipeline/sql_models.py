"""Turn each SQL model in dbt_like_sql/ into a Dagster asset that (re)creates its Postgres view; and record the
views that `leadscore up` (re)creates as materializations of those assets."""

import dagster as dg

from leadscore_pipeline.db.engine import engine_for
from leadscore_pipeline.db.views import SqlModel, apply_sql_models, load_sql_models
from leadscore_pipeline.resources import PostgresResource


def _sql_model_asset(model: SqlModel) -> dg.AssetsDefinition:
    @dg.asset(
        name=model.name,
        deps=list(model.refs),
        description=model.purpose,
        kinds={"sql", "postgres"},
        group_name=f"sql_{model.layer}",
        metadata={"sql": dg.MetadataValue.md(f"```sql\n{model.sql}\n```")},
    )
    def _view(postgres: PostgresResource) -> dg.MaterializeResult:
        apply_sql_models(engine_for(postgres.database_url), [model])
        return dg.MaterializeResult(metadata={"view": model.name})

    return _view


sql_model_assets = [_sql_model_asset(model) for model in load_sql_models()]


def record_views_created(instance: dg.DagsterInstance, models: list[SqlModel] | None = None) -> None:
    """Migrations (re)create every view at each start, outside any run: recorded as a materialization of each model's
    asset, so the UI shows when its view was last created instead of "never materialized"."""
    for model in models or load_sql_models():
        instance.report_runless_asset_event(
            dg.AssetMaterialization(
                asset_key=model.name,
                description="view (re)created by the migrations at start-up",
                metadata={"view": model.name},
            )
        )
