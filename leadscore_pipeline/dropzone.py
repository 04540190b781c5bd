"""The file drop: land a CSV file put in the drop folder once, then move it to processed/ or failed/."""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import stat
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

import psycopg

from leadscore_pipeline.ingest.csv_batches import UnreadableCsv, land_csv
from leadscore_pipeline.settings import Settings

PROCESSED, FAILED = "processed", "failed"


@dataclass(frozen=True)
class DropOutcome:
    file_name: str
    outcome: str  # landed, duplicate (same content landed before), failed, refused (not a regular file), or gone
    accepted: int = 0
    rejected: int = 0
    error: str | None = None


def file_sha256(stream: BinaryIO) -> str:
    digest = hashlib.sha256()
    for block in iter(lambda: stream.read(1 << 20), b""):
        digest.update(block)
    return digest.hexdigest()


class NotARegularFile(Exception):
    """A drop-folder entry that is not a regular file: never read, whatever it points to."""


def kind_of(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a named pipe"
    return "a special file"


def open_regular(path: Path) -> BinaryIO:
    """Open a regular file for reading; refuse anything else without reading from it. O_NOFOLLOW: a symlink is not
    followed (not even one swapped in after the sensor looked); O_NONBLOCK: opening a FIFO does not wait for a writer."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # what O_NOFOLLOW answers for a symlink
            raise NotARegularFile(kind_of(stat.S_IFLNK)) from None
        raise
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise NotARegularFile(kind_of(mode))
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


def _move(path: Path, folder: str) -> Path:
    target_dir = path.parent / folder
    target_dir.mkdir(exist_ok=True)
    target = target_dir / path.name
    if os.path.lexists(target):  # keep earlier drops of the same name
        target = target_dir / f"{path.stem}.{datetime.now(UTC):%Y%m%dT%H%M%S%f}{path.suffix}"
    return Path(shutil.move(path, target))  # a rename: a symlink moves as the link, its target untouched


def _fail(path: Path, reason: str) -> None:
    failed = _move(path, FAILED)
    failed.with_name(failed.name + ".error.txt").write_text(f"{reason}\n")


def land_dropped_file(conn: psycopg.Connection, path: Path, settings: Settings) -> DropOutcome:
    """Idempotent: a retry after a crash, or the same content dropped again, lands nothing twice. Only a regular
    file is read; anything else (a symlink, a FIFO, a directory) goes to failed/ unread."""
    if not os.path.lexists(path):
        return DropOutcome(path.name, "gone")
    try:
        stream = open_regular(path)
    except NotARegularFile as exc:
        reason = refusal(exc)
        _fail(path, reason)
        return DropOutcome(path.name, "refused", error=reason)
    try:
        with stream:
            sha = file_sha256(stream)
            stream.seek(0)
            with conn.transaction():
                conn.execute("select pg_advisory_xact_lock(hashtext(%s))", (sha,))
                if conn.execute("select 1 from landed_files where sha256 = %s", (sha,)).fetchone():
                    outcome = DropOutcome(path.name, "duplicate")
                else:
                    result = land_csv(conn, stream, file_name=path.name, channel="file", settings=settings)
                    conn.execute(
                        "insert into landed_files (sha256, file_name, accepted, rejected) values (%s, %s, %s, %s)",
                        (sha, path.name, result.accepted, result.rejected),
                    )
                    outcome = DropOutcome(path.name, "landed", result.accepted, result.rejected)
    except UnreadableCsv as exc:
        _fail(path, str(exc))
        return DropOutcome(path.name, "failed", error=str(exc))
    # Moved only after the commit: a crash in between leaves the file, and the retry finds it landed.
    _move(path, PROCESSED)
    return outcome


def refusal(exc: NotARegularFile) -> str:
    return f"not read: {exc} (the drop folder takes regular files only)"


def complete_files(folder: Path, seen: dict[str, list[int]]) -> tuple[list[Path], dict[str, list[int]]]:
    """Regular CSV files in `folder` whose size and mtime did not change since the previous look (`seen`);
    returns them and what to remember for the next look. Read with lstat: a symlink is never followed."""
    now: dict[str, list[int]] = {}
    ready = []
    for path in sorted(folder.glob("*.csv")):
        info = path.lstat()
        if not stat.S_ISREG(info.st_mode):
            continue
        version = [info.st_size, info.st_mtime_ns]
        now[path.name] = version
        if seen.get(path.name) == version:
            ready.append(path)
    return ready, now


def refuse_irregular(folder: Path) -> list[str]:
    """Move every `*.csv` entry of `folder` that is not a regular file (a symlink, a FIFO, a directory) to failed/
    unread, with a reason file beside it; returns the reasons."""
    reasons = []
    for path in sorted(folder.glob("*.csv")):
        mode = path.lstat().st_mode
        if not stat.S_ISREG(mode):
            reason = refusal(NotARegularFile(kind_of(mode)))
            _fail(path, reason)
            reasons.append(f"{path.name}: {reason}")
    return reasons
