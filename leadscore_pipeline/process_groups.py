"""Process groups: each child of `leadscore up` leads a group of its own, so that it and everything it spawns
(Dagster code servers, run workers) are found and stopped together."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable, Iterable

import psutil


def live_members(pgids: Iterable[int]) -> list[psutil.Process]:
    """The live processes of these groups (a zombie is dead, whether or not its parent reaps it)."""
    wanted = set(pgids)
    members = []
    for process in psutil.process_iter():
        with contextlib.suppress(OSError, psutil.Error):
            if os.getpgid(process.pid) in wanted and process.status() != psutil.STATUS_ZOMBIE:
                members.append(process)
    return members


def stop_groups(pgids: Iterable[int], timeout: float) -> None:
    """SIGTERM every process of these groups, then SIGKILL whatever is still alive after `timeout` seconds."""
    pgids = list(pgids)
    for pgid in pgids:
        _signal_group(pgid, signal.SIGTERM)
    if _wait_until_gone(lambda: live_members(pgids), timeout):
        return
    for pgid in pgids:
        _signal_group(pgid, signal.SIGKILL)
    _wait_until_gone(lambda: live_members(pgids), 5)


def stop_leftovers(pgid: int, is_ours: Callable[[psutil.Process], bool], timeout: float) -> list[int]:
    """Stop the live members of an old group that `is_ours` recognises (its number may have been reused since)."""
    leftovers = [process for process in live_members([pgid]) if is_ours(process)]
    for process in leftovers:
        with contextlib.suppress(psutil.Error):
            process.terminate()  # psutil checks the process is still the one it found, not a reused pid

    def alive() -> list[psutil.Process]:
        return [process for process in leftovers if _alive(process)]

    if not _wait_until_gone(alive, timeout):
        for process in alive():
            with contextlib.suppress(psutil.Error):
                process.kill()
        _wait_until_gone(alive, 5)
    return [process.pid for process in leftovers]


def _signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signum)


def _alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _wait_until_gone(remaining: Callable[[], list], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while remaining():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)
    return True
