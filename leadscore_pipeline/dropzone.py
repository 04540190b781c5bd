"""The file drop: land a CSV file put in the drop folder once, then move it to processed/ or failed/."""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import psycopg

from leadscore_pipeline.ingest.csv_batches import UnreadableCsv, land_csv
from leadscore_pipeline.settings import Settings

PROCESSED, FAILED = "processed", "failed"


@dataclass(frozen=True)
class DropOutcome:
    file_name: str
    outcome: str  # landed, duplicate (same content landed before), failed, or gone (handled already)
    accepted: int = 0
    rejected: int = 0
    error: str | None = None


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _move(path: Path, folder: str) -> Path:
    target_dir = path.parent / folder
    target_dir.mkdir(exist_ok=True)
    target = target_dir / path.name
    if target.exists():  # keep earlier drops of the same name
        target = target_dir / f"{path.stem}.{datetime.now(UTC):%Y%m%dT%H%M%S%f}{path.suffix}"
    return Path(shutil.move(path, target))


def land_dropped_file(conn: psycopg.Connection, path: Path, settings: Settings) -> DropOutcome:
    """Idempotent: a retry after a crash, or the same content dropped again, lands nothing twice."""
    if not path.exists():
        return DropOutcome(path.name, "gone")
    sha = file_sha256(path)
    try:
        with conn.transaction():
            conn.execute("select pg_advisory_xact_lock(hashtext(%s))", (sha,))
            if conn.execute("select 1 from landed_files where sha256 = %s", (sha,)).fetchone():
                outcome = DropOutcome(path.name, "duplicate")
            else:
                with path.open("rb") as stream:
                    result = land_csv(conn, stream, file_name=path.name, channel="file", settings=settings)
                conn.execute(
                    "insert into landed_files (sha256, file_name, accepted, rejected) values (%s, %s, %s, %s)",
                    (sha, path.name, result.accepted, result.rejected),
                )
                outcome = DropOutcome(path.name, "landed", result.accepted, result.rejected)
    except UnreadableCsv as exc:
        failed = _move(path, FAILED)
        failed.with_name(failed.name + ".error.txt").write_text(f"{exc}\n")
        return DropOutcome(path.name, "failed", error=str(exc))
    # Moved only after the commit: a crash in between leaves the file, and the retry finds it landed.
    _move(path, PROCESSED)
    return outcome


def complete_files(folder: Path, seen: dict[str, list[int]]) -> tuple[list[Path], dict[str, list[int]]]:
    """CSV files in `folder` whose size and mtime did not change since the previous look (`seen`);
    returns them and what to remember for the next look."""
    now: dict[str, list[int]] = {}
    ready = []
    for path in sorted(folder.glob("*.csv")):
        stat = path.stat()
        version = [stat.st_size, stat.st_mtime_ns]
        now[path.name] = version
        if seen.get(path.name) == version:
            ready.append(path)
    return ready, now
