"""Keep the served aggregates exact across a partition swap.

Statement triggers (migration 0005) keep serving_counts and company_totals equal to their base tables on every
insert, update and delete. Attaching a partition is none of those, so a swap moves the totals itself: it takes the
swapped-out rows off and the staged rows on, as the triggers would have, under the same guard row lock.
"""

from __future__ import annotations

import psycopg

from leadscore_pipeline.db.locks import buckets_sql
from leadscore_pipeline.db.partitions import staged

TIERS = ("cold", "warm", "hot", "qualified")
_GUARD = "select 1 from serving_counts where id = 1 for update"  # the order every totals writer keeps


def _changes(table: str, columns: str, buckets: tuple[int, ...]) -> str:
    """The rows leaving (-1) and joining (+1) `table` when the staged partitions of `buckets` are swapped in."""
    joining = " union all ".join(f"select 1 as sign, {columns} from {staged(table, b)}" for b in buckets)
    return f"select -1 as sign, {columns} from {table} where lead_bucket in {buckets_sql(buckets)} union all {joining}"


def move_event_totals(conn: psycopg.Connection, buckets: tuple[int, ...]) -> None:
    """serving_counts' events, duplicates and conflicts for a clean_events swap."""
    conn.execute(_GUARD)
    conn.execute(
        f"""update serving_counts s set events = s.events + d.events, duplicates = s.duplicates + d.duplicates,
                conflicts = s.conflicts + d.conflicts
            from (select coalesce(sum(sign), 0) as events, coalesce(sum(sign * duplicates), 0) as duplicates,
                         coalesce(sum(sign * conflicts), 0) as conflicts
                  from ({_changes("clean_events", "duplicates, conflicts", buckets)}) as c) d
            where s.id = 1"""
    )


def move_served_totals(conn: psycopg.Connection, buckets: tuple[int, ...]) -> None:
    """serving_counts' leads, points and tiers, and company_totals, for a current_scores swap."""
    conn.execute(_GUARD)
    conn.execute(
        f"create temp table served_changes on commit drop as {_changes('current_scores', 'score, tier, company', buckets)}"
    )
    tiers = ", ".join(f"coalesce(sum(sign) filter (where tier = '{t}'), 0) as {t}" for t in TIERS)
    conn.execute(
        f"""update serving_counts s set leads = s.leads + d.leads, total_points = s.total_points + d.total_points,
                {", ".join(f"{t} = s.{t} + d.{t}" for t in TIERS)}
            from (select coalesce(sum(sign), 0) as leads, coalesce(sum(sign * score), 0) as total_points, {tiers}
                  from served_changes) d
            where s.id = 1"""
    )
    conn.execute(
        """insert into company_totals as t (company, leads, total_score)
               select company, sum(sign), sum(sign * score) from served_changes where company is not null
               group by company having sum(sign) <> 0 or sum(sign * score) <> 0
           on conflict (company) do update
               set leads = t.leads + excluded.leads, total_score = t.total_score + excluded.total_score"""
    )
    conn.execute("delete from company_totals where leads = 0")
    conn.execute("drop table served_changes")
