"""Tables partitioned by lead bucket (migration 0009), and how a rebuilt bucket replaces its partition.

A rebuild copies the bucket's rows into a fresh table, builds its keys and indexes once the rows are in (one sort
each, not an index update per row), then swaps it for the old partition by detach and attach in the caller's
transaction. Readers see the old bucket until that commits and the new one after: never a half-written bucket.
"""

from __future__ import annotations

import re
import time

import polars as pl
import psycopg

from leadscore_pipeline.db.frames import copy_frame

PARTITIONED = ("clean_events", "score_history", "lead_scores", "current_scores")


def partition_name(table: str, bucket: int) -> str:
    return f"{table}_b{int(bucket):02d}"


def create_partitions(table: str, buckets: int) -> str:
    """SQL creating the partitions of buckets 0 .. buckets - 1."""
    return "\n".join(
        f"create table {partition_name(table, b)} partition of {table} for values in ({b});" for b in range(buckets)
    )


def name_partition_indexes(table: str) -> str:
    """SQL renaming each partition's keys and indexes after the parent's (`clean_events_b03_lead` for
    `clean_events_lead`), as a swap names them: Postgres names those it makes for a new partition its own way."""
    return f"""
        do $$ declare index record; begin
            for index in
                select child.relname as name, part.relname || substr(parent.relname, length('{table}') + 1) as wanted
                from pg_inherits i
                join pg_class child on child.oid = i.inhrelid
                join pg_class parent on parent.oid = i.inhparent
                join pg_index x on x.indexrelid = child.oid
                join pg_class part on part.oid = x.indrelid
                join pg_inherits p on p.inhrelid = part.oid and p.inhparent = '{table}'::regclass
            loop
                if index.name <> index.wanted then
                    execute 'alter index ' || quote_ident(index.name) || ' rename to ' || quote_ident(index.wanted);
                end if;
            end loop;
        end $$;"""


def _index_statements(conn: psycopg.Connection, table: str, target: str) -> list[str]:
    """The keys and indexes `table` declares, as statements that build them on `target` under names of its own
    (the parent's name with `target` for `table`)."""
    rows = conn.execute(
        """select c.relname, pg_get_indexdef(i.indexrelid), pg_get_constraintdef(k.oid)
           from pg_index i
           join pg_class c on c.oid = i.indexrelid
           left join pg_constraint k on k.conindid = i.indexrelid and k.conrelid = i.indrelid
           where i.indrelid = %s::regclass
           order by c.relname""",
        (table,),
    ).fetchall()
    statements = []
    for name, index_sql, constraint_sql in rows:
        own_name = target + name.removeprefix(table)
        if constraint_sql:  # a primary key or unique constraint: the partition's must be a constraint too
            statements.append(f"alter table {target} add constraint {own_name} {constraint_sql}")
        else:
            statements.append(
                re.sub(
                    r"^CREATE (UNIQUE )?INDEX \S+ ON ONLY \S+ ", rf"CREATE \1INDEX {own_name} ON {target} ", index_sql
                )
            )
    return statements


def _index_suffixes(conn: psycopg.Connection, table: str) -> list[str]:
    """What follows the table's name in the names of its keys and indexes, as its partitions' carry them."""
    rows = conn.execute("select indexrelid::regclass::text from pg_index where indrelid = %s::regclass", (table,))
    return [name.removeprefix(table) for (name,) in rows.fetchall()]


def bucket_rows(table: str, buckets: tuple[int, ...]) -> str:
    """A FROM item for `table`'s rows in `buckets`, read from their partitions directly. A rebuild reads this
    way: a read through the parent would hold a lock on all of it until commit, and the swap of another bucket
    group would wait for that whole transaction instead of only for the swaps."""
    union = " union all ".join(f"select * from {partition_name(table, b)}" for b in buckets)
    return f"({union}) as {table}"


def stage_partitions(conn: psycopg.Connection, table: str, rows: dict[int, list[pl.DataFrame]]) -> None:
    """For each bucket of `rows`, copy its frames (each with the columns it sets) into a fresh table shaped like
    `table`, with its keys and indexes built after.

    The shape is read off the catalog, not by `create table (like ...)`: that would hold a lock on `table` until
    commit, and two rebuilds each holding one while waiting to swap would wait for each other for ever. The DDL
    of a bucket goes in one round trip: for a small bucket, the round trips were most of a rebuild's time.
    """
    columns = _columns_sql(conn, table)
    for bucket, frames in rows.items():
        fresh = staged(table, bucket)
        conn.execute(f"create table {fresh} ({columns})")
        for frame in frames:
            copy_frame(conn, fresh, frame)
        # The check proves the rows belong to the bucket, so the attach need not scan them to check.
        statements = [
            *_index_statements(conn, table, fresh),
            f"alter table {fresh} add constraint {fresh}_in_bucket check (lead_bucket = {int(bucket)})",
            f"analyze {fresh}",
        ]
        conn.execute(";\n".join(statements))


def swap_in(conn: psycopg.Connection, tables: tuple[str, ...], buckets: tuple[int, ...]) -> None:
    """Replace the partitions of `buckets` of each of `tables` by the ones staged for them. Holds exclusive locks
    on the tables until the caller's transaction commits: call it last."""
    lock_exclusively(conn, tables, buckets)
    for table in tables:
        suffixes = _index_suffixes(conn, table)
        statements = []
        for bucket in buckets:
            live, fresh = partition_name(table, bucket), staged(table, bucket)
            statements += [
                f"alter table {table} detach partition {live}",
                f"alter table {table} attach partition {fresh} for values in ({int(bucket)})",
                f"drop table {live}",
                f"alter table {fresh} drop constraint {fresh}_in_bucket",
                f"alter table {fresh} rename to {live}",
                *(f"alter index {fresh}{suffix} rename to {live}{suffix}" for suffix in suffixes),
            ]
        conn.execute(";\n".join(statements))


def lock_exclusively(
    conn: psycopg.Connection, tables: tuple[str, ...], buckets: tuple[int, ...], deadline_s: float = 900.0
) -> None:
    """Take the exclusive locks of `tables` and their partitions of `buckets`, all at once, without queueing for
    them: a queued request would hold every new reader of a table behind the longest transaction already reading
    it, and holding some while waiting for others could wait for ever on a rebuild doing the same.

    Retries until they are free, for at most `deadline_s`. An autovacuum in the way is cancelled, as Postgres
    does for a queued request: the partitions it is vacuuming are about to be dropped.
    """
    partitions = [partition_name(table, b) for table in tables for b in buckets]
    relations = ", ".join(f"only {name}" for name in (*tables, *partitions))
    give_up = time.monotonic() + deadline_s
    while True:
        try:
            with conn.transaction():  # a savepoint: a refused try leaves the caller's transaction usable
                conn.execute(f"lock table {relations} in access exclusive mode nowait")
            return
        except psycopg.errors.LockNotAvailable:
            if time.monotonic() > give_up:
                raise
            _cancel_autovacuum(conn, partitions)
            time.sleep(0.02)


def _cancel_autovacuum(conn: psycopg.Connection, partitions: list[str]) -> None:
    try:
        with conn.transaction():
            conn.execute(
                """select pg_cancel_backend(a.pid) from pg_stat_activity a join pg_locks l on l.pid = a.pid
                   where a.backend_type = 'autovacuum worker' and l.relation = any(%s::regclass[])""",
                (partitions,),
            )
    except psycopg.errors.InsufficientPrivilege:
        pass  # a role that may not cancel it waits for the vacuum to end instead


def _columns_sql(conn: psycopg.Connection, table: str) -> str:
    columns = conn.execute(
        """select format('%%I %%s%%s%%s', a.attname, format_type(a.atttypid, a.atttypmod),
                         case when a.attnotnull then ' not null' end,
                         case when a.attgenerated = 's'
                              then ' generated always as (' || pg_get_expr(d.adbin, d.adrelid) || ') stored'
                              else ' default ' || pg_get_expr(d.adbin, d.adrelid) end)
           from pg_attribute a left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
           where a.attrelid = %s::regclass and a.attnum > 0 and not a.attisdropped
           order by a.attnum""",
        (table,),
    ).fetchall()
    return ", ".join(column for (column,) in columns)


def staged(table: str, bucket: int) -> str:
    """The table `stage_partitions` fills for `bucket`, until the swap."""
    return partition_name(table, bucket) + "_next"
