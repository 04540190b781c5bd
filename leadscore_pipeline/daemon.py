"""`dagster-daemon` with the backfill daemon's loop at 1 s instead of Dagster's hard-coded 30 s, so that a replay
starts, and is seen to end, within about a second rather than half a minute."""

from __future__ import annotations

import sys

from dagster._daemon import controller
from dagster._daemon.cli import main

# The backfill loop reads this constant each time it starts; the only other reader is the asset daemon's
# pre-sensor interval, unused with automation sensors (Dagster's default) and with no automation conditions (ours).
# The other daemons have intervals of their own.
BACKFILL_INTERVAL_SECONDS = 1


def run() -> None:
    controller.DEFAULT_DAEMON_INTERVAL_SECONDS = BACKFILL_INTERVAL_SECONDS
    sys.exit(main())


if __name__ == "__main__":
    run()
