"""Python imports this at start-up in every process of a `make test-at` run (the Makefile puts this folder on
PYTHONPATH): the wall clock reads LEADSCORE_TEST_CLOCK_START when the run begins and ticks on from there, in
pytest and in every API and Dagster process the tests start, to show that no test depends on the day or hour
it runs. (Postgres keeps the real clock: only bookkeeping columns read its now().)"""

import os

if start := os.environ.get("LEADSCORE_TEST_CLOCK_START"):
    import time
    from datetime import datetime

    import time_machine

    # The first process sets the anchor; processes it starts inherit it, so every clock agrees.
    anchor = float(os.environ.setdefault("LEADSCORE_TEST_CLOCK_ANCHOR", repr(time.time())))
    time_machine.travel(datetime.fromisoformat(start).timestamp() + time.time() - anchor, tick=True).start()
