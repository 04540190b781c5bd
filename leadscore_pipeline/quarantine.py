"""Quarantine: a delivery that a micro-batch step cannot process is set aside, and everything else goes on.

A step that fails on data (never on a lost connection, which must fail the run so Dagster retries it) is run
again over the halves of its range of landing sequence numbers, first half first, down to single numbers; a
delivery that still fails alone is recorded in `quarantined_deliveries`, which every read of the deliveries
skips, micro-batches and replays alike. Only a failure pays for the splitting.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import psycopg

from leadscore_pipeline.db.errors import is_data_error

REASON_CHARS = 1000
LEAD_KEY_CHARS = 200
# Every read of raw_deliveries (aliased `r`) that makes events adds this condition.
NOT_QUARANTINED = "not exists (select from quarantined_deliveries q where q.seq = r.seq)"

Result = TypeVar("Result")


def reason_of(error: psycopg.Error) -> str:
    return " ".join(str(error).split())[:REASON_CHARS]


def record(conn: psycopg.Connection, seq: int, step: str, error: psycopg.Error) -> None:
    conn.execute(
        """insert into quarantined_deliveries (seq, event_id, lead_key, step, reason)
           select seq, event_id, left(lead_key, %s), %s, %s from raw_deliveries where seq = %s
           on conflict (seq) do nothing""",
        (LEAD_KEY_CHARS, step, reason_of(error), seq),
    )


def run_setting_aside(
    conn: psycopg.Connection,
    step: str,
    run: Callable[[int], Result],
    start: int,
    through: int,
    withdraw: Callable[[int], None] | None = None,
) -> tuple[list[Result], list[int]]:
    """`run(upto)` processes the step's range from its watermark through `upto` in one transaction and moves
    the watermark. Returns the results of the runs made and the seqs set aside; `withdraw(seq)` undoes what a
    set-aside delivery had already made in earlier steps."""
    quarantined: list[int] = []

    def attempt(start: int, through: int) -> list[Result]:
        try:
            return [run(through)]
        except psycopg.Error as error:
            if not is_data_error(error):
                raise
            if through - start > 1:
                # In order: a lead's later events are scored from its history, so the earliest culprit is found first.
                middle = (start + through) // 2
                return attempt(start, middle) + attempt(middle, through)
            with conn.transaction():
                record(conn, through, step, error)
                if withdraw is not None:
                    withdraw(through)
            quarantined.append(through)
            return [run(through)]  # passes the watermark over the delivery, now skipped

    return attempt(start, through), quarantined
