"""`dagster-daemon` with the backfill and sensor loops at 1 s instead of Dagster's hard-coded 30 s and 5 s, so
that a replay starts, and new deliveries are picked up, within about a second."""

from __future__ import annotations

import sys

from dagster._daemon import controller, sensor
from dagster._daemon.cli import main

# The backfill loop reads this constant each time it starts; the only other reader is the asset daemon's
# pre-sensor interval, unused with automation sensors (Dagster's default) and with no automation conditions (ours).
# The other daemons have intervals of their own.
BACKFILL_INTERVAL_SECONDS = 1
# The sensor loop's floor between two passes, read at every pass; each sensor's own minimum interval still holds
# (new deliveries: 1 s, rules: 5 s, drop folder: 2 s).
SENSOR_LOOP_SECONDS = 1


def run() -> None:
    controller.DEFAULT_DAEMON_INTERVAL_SECONDS = BACKFILL_INTERVAL_SECONDS
    sensor.MIN_INTERVAL_LOOP_TIME = SENSOR_LOOP_SECONDS
    sys.exit(main())


if __name__ == "__main__":
    run()
