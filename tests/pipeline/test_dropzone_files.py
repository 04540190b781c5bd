"""The drop folder takes regular files only: a symlink (to a file outside the folder or inside it), a FIFO or a
directory named *.csv is moved to failed/ unread, with a reason, and nothing it points to reaches the tables or
GET /api/ingest/rejections."""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg
import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from leadscore_pipeline.definitions import defs
from leadscore_pipeline.dropzone import land_dropped_file
from leadscore_pipeline.sensors import dropzone_sensor
from leadscore_pipeline.settings import get_settings

HEADER = "event_id,event_type,lead_id,email,timestamp,metadata\n"
# A secret shaped so that reading it would land a bad row whose raw text (the secret) is kept as a rejection.
SECRET = "s3cret-api-key-do-not-leak"
SECRET_CSV = f"{HEADER}{SECRET},,,,,\n"
GOOD_CSV = f"{HEADER}f1,PURCHASE,,ann@acme.io,2026-11-01T00:00:00Z,{{}}\n"


@pytest.fixture
def dropzone(db, tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "dropzone"
    folder.mkdir()
    monkeypatch.setenv("LEADSCORE_DROP_DIR", str(folder))
    get_settings.cache_clear()
    yield folder
    monkeypatch.undo()
    get_settings.cache_clear()


@pytest.fixture
def secret_file(tmp_path) -> Path:
    path = tmp_path / "outside" / "secret.csv"
    path.parent.mkdir()
    path.write_text(SECRET_CSV)
    return path


def nothing_leaked(conn) -> None:
    assert conn.execute("select count(*) from raw_deliveries").fetchone()[0] == 0
    assert conn.execute("select count(*) from ingest_rejections").fetchone()[0] == 0
    with TestClient(create_app()) as client:
        response = client.get("/api/ingest/rejections")
    assert response.status_code == 200 and SECRET not in response.text


def tick_twice(instance: dg.DagsterInstance) -> dg.SensorResult:
    """Two looks, as a file is ready once its size and mtime did not change between them."""
    first = dropzone_sensor.evaluate_tick(dg.build_sensor_context(instance=instance))
    return dropzone_sensor.evaluate_tick(dg.build_sensor_context(cursor=first.cursor, instance=instance))


def assert_refused(folder: Path, name: str, kind: str) -> None:
    assert not os.path.lexists(folder / name)
    assert os.path.lexists(folder / "failed" / name)
    reason = (folder / "failed" / f"{name}.error.txt").read_text()
    assert f"not read: {kind}" in reason and SECRET not in reason


def test_a_symlink_to_a_secret_outside_the_folder_is_moved_to_failed_unread(conn, instance, dropzone, secret_file):
    (dropzone / "leak.csv").symlink_to(secret_file)
    (dropzone / "good.csv").write_text(GOOD_CSV)
    result = tick_twice(instance)
    assert [r.run_config["ops"]["land_file"]["config"]["path"] for r in result.run_requests] == [
        str(dropzone / "good.csv")
    ]
    assert_refused(dropzone, "leak.csv", "a symbolic link")
    assert (dropzone / "failed" / "leak.csv").readlink() == secret_file  # the link moved, not its target
    assert secret_file.read_text() == SECRET_CSV
    nothing_leaked(conn)


@pytest.mark.parametrize("target", ["inside.txt", "inside.csv"])
def test_a_symlink_to_a_file_inside_the_folder_is_refused_too(conn, instance, dropzone, target):
    (dropzone / target).write_text(SECRET_CSV)
    os.utime(dropzone / target, ns=(10**18, 10**18))
    (dropzone / "link.csv").symlink_to(dropzone / target)
    result = tick_twice(instance)
    assert all("link.csv" not in r.run_key for r in result.run_requests)
    assert_refused(dropzone, "link.csv", "a symbolic link")


def test_a_fifo_and_a_directory_named_csv_are_refused_without_blocking(conn, instance, dropzone):
    os.mkfifo(dropzone / "pipe.csv")  # opening it for reading would wait for a writer forever
    (dropzone / "folder.csv").mkdir()
    (dropzone / "folder.csv" / "inner.csv").write_text(SECRET_CSV)
    assert tick_twice(instance).run_requests == []
    assert_refused(dropzone, "pipe.csv", "a named pipe")
    assert_refused(dropzone, "folder.csv", "a directory")
    nothing_leaked(conn)


def test_landing_refuses_a_symlink_swapped_in_after_the_sensor_looked(conn, dropzone, secret_file):
    (dropzone / "late.csv").symlink_to(secret_file)
    outcome = land_dropped_file(conn, dropzone / "late.csv", get_settings())
    assert (outcome.outcome, outcome.error) == (
        "refused",
        "not read: a symbolic link (the drop folder takes regular files only)",
    )
    assert_refused(dropzone, "late.csv", "a symbolic link")
    nothing_leaked(conn)


def test_a_run_naming_a_file_outside_the_drop_folder_lands_nothing(conn, instance, dropzone, secret_file):
    job = defs.resolve_job_def("land_dropped_files")
    for path in (secret_file, dropzone / ".." / "outside" / "secret.csv"):
        run_config = {"ops": {"land_file": {"config": {"path": str(path)}}}}
        result = job.execute_in_process(instance=instance, run_config=run_config, raise_on_error=False)
        assert not result.success
    assert secret_file.read_text() == SECRET_CSV
    nothing_leaked(conn)
