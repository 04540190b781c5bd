"""Keep named children alive: each runs in a process group of its own, is restarted with backoff when it dies,
and is given up on when it keeps dying. Their pids are kept under `$LEADSCORE_HOME/run` so that the next start
can stop what a killed `leadscore up` left running."""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from leadscore_pipeline.process_groups import stop_groups, stop_leftovers


@dataclass(frozen=True)
class ChildSpec:
    name: str
    command: Sequence[str]


@dataclass(frozen=True)
class RestartPolicy:
    first_delay: float = 1.0  # seconds before the first restart, doubled at each death in a row
    max_delay: float = 30.0
    stable_after: float = 60.0  # a child that stayed up this long starts its backoff over
    max_deaths: int = 5  # this many deaths within `window` seconds: give up
    window: float = 300.0
    stop_timeout: float = 20.0  # SIGTERM, then SIGKILL after this long
    leftovers_timeout: float = 5.0  # for what a dead child left behind


class ChildKeptDying(RuntimeError):
    def __init__(self, name: str, deaths: int, window: float, log: Path):
        super().__init__(f"{name} died {deaths} times within {window:.0f} s, giving up; see its log {log}")
        self.name = name
        self.log = log


def run_dir(home: Path) -> Path:
    return home / "run"


@dataclass
class _Child:
    spec: ChildSpec
    log: Path
    pid_file: Path
    process: subprocess.Popen | None = None
    started_at: float = 0.0
    deaths: deque[float] = field(default_factory=deque)
    deaths_in_a_row: int = 0
    restart_at: float | None = None  # set while a dead child waits out its backoff


class Supervisor:
    def __init__(
        self,
        specs: Sequence[ChildSpec],
        *,
        env: Mapping[str, str],
        cwd: Path,
        home: Path,
        policy: RestartPolicy = RestartPolicy(),
        say: Callable[[str], None] = print,
    ):
        self.env = dict(env)
        self.cwd = cwd
        self.policy = policy
        self.say = say
        logs, runs = home / "logs", run_dir(home)
        logs.mkdir(parents=True, exist_ok=True)
        runs.mkdir(parents=True, exist_ok=True)
        self.children = {
            spec.name: _Child(spec, logs / f"{spec.name}.log", runs / f"{spec.name}.pid") for spec in specs
        }

    def start(self) -> None:
        for child in self.children.values():
            self._start(child)

    def check(self) -> None:
        """Notice deaths and start children whose backoff is over; raises ChildKeptDying to give up."""
        now = time.monotonic()
        for child in self.children.values():
            if child.restart_at is None and child.process.poll() is not None:
                self._died(child, now)
            elif child.restart_at is not None and now >= child.restart_at:
                self.say(f"starting {child.spec.name} again")
                self._start(child)

    def stop(self) -> None:
        """Stop every child with everything it spawned: SIGTERM to each group, SIGKILL after the timeout."""
        running = [child for child in self.children.values() if child.process is not None]
        stop_groups([child.process.pid for child in running], self.policy.stop_timeout)
        for child in running:
            child.process.wait()
            child.pid_file.unlink(missing_ok=True)

    def _start(self, child: _Child) -> None:
        with child.log.open("ab") as log:
            # A session of its own: the child leads a process group that its own children join.
            child.process = subprocess.Popen(
                child.spec.command,
                env=self.env,
                cwd=self.cwd,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        child.pid_file.write_text(f"{child.process.pid}\n")
        child.started_at = time.monotonic()
        child.restart_at = None

    def _died(self, child: _Child, now: float) -> None:
        name, policy = child.spec.name, self.policy
        uptime = now - child.started_at
        self.say(f"{name} exited with code {child.process.returncode} after {uptime:.0f} s; see {child.log}")
        # What it spawned (code servers, run workers) must not outlive it, nor hold its ports for the next one.
        stop_groups([child.process.pid], policy.leftovers_timeout)
        child.deaths.append(now)
        while child.deaths[0] < now - policy.window:
            child.deaths.popleft()
        if len(child.deaths) >= policy.max_deaths:
            raise ChildKeptDying(name, len(child.deaths), policy.window, child.log)
        if uptime >= policy.stable_after:
            child.deaths_in_a_row = 0
        delay = min(policy.max_delay, policy.first_delay * 2**child.deaths_in_a_row)
        child.deaths_in_a_row += 1
        child.restart_at = time.monotonic() + delay
        self.say(f"restarting {name} in {delay:g} s")


class HomeInUse(RuntimeError):
    pass


def claim_home(home: Path) -> Path:
    """Record this `leadscore up` in its home; refuse when another one runs there (we would stop its children)."""
    pid_file = home / "up.pid"
    with contextlib.suppress(OSError, ValueError, psutil.Error):
        other = psutil.Process(int(pid_file.read_text()))
        command = other.cmdline()
        if other.pid != os.getpid() and "up" in command and any(Path(arg).name == "leadscore" for arg in command):
            raise HomeInUse(f"another `leadscore up` (pid {other.pid}) runs on {home}; stop it first")
    pid_file.write_text(f"{os.getpid()}\n")
    return pid_file


def stop_previous_children(home: Path, say: Callable[[str], None] = print, timeout: float = 10.0) -> None:
    """Stop the children a previous `leadscore up` of this home left running (it was killed with no chance to)."""
    for pid_file in sorted(run_dir(home).glob("*.pid")):
        try:
            pgid = int(pid_file.read_text())
        except (OSError, ValueError):
            pgid = None
        if pgid is not None:
            stopped = stop_leftovers(pgid, _started_for(home), timeout)
            if stopped:
                say(f"stopped {len(stopped)} process(es) of {pid_file.stem} left running by a previous start")
        pid_file.unlink(missing_ok=True)


def _started_for(home: Path) -> Callable[[psutil.Process], bool]:
    """Recognise our children and all they spawned by their environment, which names this home: a command line
    would miss the plain `tail` helpers of Dagster's run workers."""

    def is_ours(process: psutil.Process) -> bool:
        try:
            return process.environ().get("LEADSCORE_HOME") == str(home)
        except psutil.Error:
            return False

    return is_ours
