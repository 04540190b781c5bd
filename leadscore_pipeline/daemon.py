"""`dagster-daemon` with the backfill and sensor loops at 1 s instead of Dagster's hard-coded 30 s and 5 s, so
that a replay starts, and new deliveries are picked up, within about a second; and a log that stays quiet."""

from __future__ import annotations

import logging
import re
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


# The sensor daemon logs two INFO lines at every tick of every sensor ("Checking for new runs for sensor: x", "Sensor
# x skipped: ..."): about 200,000 lines (50 MB) a day with ours ticking every 1-5 s. Each tick, with its skip reason,
# is kept in Dagster's tick history (the UI's sensor page), so the log keeps only what happened (runs requested,
# failures, warnings).
PER_TICK_LINES = ("Checking for new runs for sensor: ", "No run requests returned for ")
SKIPPED = re.compile(r"Sensor \S+ skipped: ")


class PerTickLines(logging.Filter):
    """Drops the sensor daemon's per-tick INFO lines; anything else, and any warning or error, passes."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno > logging.INFO:
            return True
        message = record.getMessage()
        return not (message.startswith(PER_TICK_LINES) or SKIPPED.match(message))


def quiet_sensor_log() -> None:
    logging.getLogger("dagster.daemon.SensorDaemon").addFilter(PerTickLines())


def run() -> None:
    controller.DEFAULT_DAEMON_INTERVAL_SECONDS = BACKFILL_INTERVAL_SECONDS
    sensor.MIN_INTERVAL_LOOP_TIME = SENSOR_LOOP_SECONDS
    quiet_sensor_log()
    sys.exit(main())


if __name__ == "__main__":
    run()
