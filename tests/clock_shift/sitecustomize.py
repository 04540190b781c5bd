"""Python imports this at start-up in every process of a `make test-at` run (the Makefile puts this folder on
PYTHONPATH): the wall clock reads LEADSCORE_TEST_CLOCK_START when the run begins and ticks on from there, in
pytest and in every API and Dagster process the tests start, to show that no test depends on the day or hour
it runs. (Postgres keeps the real clock: only bookkeeping columns read its now().)"""

import os
import sys


def _is_code_server(argv: list[str]) -> bool:
    """`dagster api grpc`: gRPC's own timers stall under a shifted time.time(), so Dagster's code servers keep the
    real clock; they only load definitions and start run workers, which do read the shifted one."""
    return any(argv[i : i + 2] == ["api", "grpc"] for i in range(len(argv)))


if (start := os.environ.get("LEADSCORE_TEST_CLOCK_START")) and not _is_code_server(sys.orig_argv):
    import time
    from datetime import datetime

    import time_machine

    # The first process sets the anchor; processes it starts inherit it, so every clock agrees.
    anchor = float(os.environ.setdefault("LEADSCORE_TEST_CLOCK_ANCHOR", repr(time.time())))
    time_machine.travel(datetime.fromisoformat(start).timestamp() + time.time() - anchor, tick=True).start()
