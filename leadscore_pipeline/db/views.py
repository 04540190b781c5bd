"""Read the dbt-style SQL models in `dbt_like_sql/` and create them as Postgres views, in dependency order."""

from __future__ import annotations

import re
from dataclasses import dataclass
from graphlib import TopologicalSorter
from pathlib import Path

from sqlalchemy import Engine

SQL_DIR = Path(__file__).resolve().parents[2] / "dbt_like_sql"
_REF = re.compile(r"\{\{\s*ref\(\s*'([a-z_][a-z0-9_]*)'\s*\)\s*\}\}")


@dataclass(frozen=True)
class SqlModel:
    name: str
    layer: str  # the folder: staging or marts
    purpose: str  # the model's first comment line
    refs: tuple[str, ...]
    sql: str  # with every ref() replaced by the relation's name

    def create_statement(self) -> str:
        return f"drop view if exists {self.name} cascade;\ncreate view {self.name} as\n{self.sql}"


def _parse(path: Path) -> SqlModel:
    text = path.read_text()
    first_line = text.splitlines()[0] if text else ""
    return SqlModel(
        name=path.stem,
        layer=path.parent.name,
        purpose=first_line.removeprefix("--").strip(),
        refs=tuple(dict.fromkeys(_REF.findall(text))),
        sql=_REF.sub(r"\1", text),
    )


def load_sql_models(sql_dir: Path = SQL_DIR) -> list[SqlModel]:
    """All models, each after the models it refs."""
    models = {model.name: model for model in map(_parse, sorted(sql_dir.glob("*/*.sql")))}
    order = TopologicalSorter({name: [r for r in m.refs if r in models] for name, m in models.items()})
    return [models[name] for name in order.static_order()]


def apply_sql_models(engine: Engine, models: list[SqlModel] | None = None) -> None:
    with engine.begin() as conn:
        for model in models or load_sql_models():
            conn.exec_driver_sql(model.create_statement())
