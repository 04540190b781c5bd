"""The Dagster daemon's log stays quiet: no line per sensor tick, no warning each time a process loads the
definitions, no heartbeat warning each time the daemon replaces its code server, no DEBUG line per run event."""

from __future__ import annotations

import logging
import subprocess
import sys

import yaml

from leadscore_pipeline.daemon import quiet_sensor_log
from leadscore_pipeline.dagster_home import write_dagster_yaml
from leadscore_pipeline.settings import Settings
from leadscore_pipeline.stack import child_specs


class Kept(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def test_the_sensor_daemon_logs_what_happened_not_every_tick():
    logger = logging.getLogger("dagster.daemon.SensorDaemon")
    kept = Kept()
    logger.addHandler(kept)
    logger.setLevel(logging.INFO)
    try:
        quiet_sensor_log()
        logger.info("Checking for new runs for sensor: new_deliveries_sensor")
        logger.info("Sensor new_deliveries_sensor skipped: nothing to do: every micro-batch step is done through 9")
        logger.info("No run requests returned for dropzone_sensor, skipping")
        logger.info("Launching run for new_deliveries_sensor")
        logger.warning("Sensor rules_change_sensor skipped: something a warning says")
    finally:
        logger.removeHandler(kept)
        logger.filters.clear()
    assert kept.messages == [
        "Launching run for new_deliveries_sensor",
        "Sensor rules_change_sensor skipped: something a warning says",
    ]


def test_loading_the_definitions_warns_nothing():
    # What each code server and run worker does; every warning it printed went to the daemon's log.
    loaded = subprocess.run(
        [
            sys.executable,
            "-W",
            "default",
            "-c",
            "from leadscore_pipeline.definitions import defs; defs.get_repository_def()",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert loaded.returncode == 0, loaded.stderr
    assert "Warning" not in loaded.stderr, loaded.stderr


def test_runs_log_info_and_code_servers_errors_only(tmp_path):
    config = yaml.safe_load(write_dagster_yaml(tmp_path, "postgresql://u@127.0.0.1:5432/d").read_text())
    assert config["python_logs"]["python_log_level"] == "INFO"
    [daemon] = [spec for spec in child_specs(Settings()) if spec.name == "dagster-daemon"]
    assert daemon.command[daemon.command.index("--code-server-log-level") + 1] == "error"
