"""Turn each SQL model in dbt_like_sql/ into a Dagster asset that (re)creates its Postgres view."""

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
