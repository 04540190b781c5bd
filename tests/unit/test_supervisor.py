"""The supervisor on real processes: restarts with backoff, gives up on a child that keeps dying, stops whole
process groups (what a child spawned too), stops only what a killed previous start left of its own home, and
keeps a second start off a home in use."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from leadscore_pipeline.process_groups import live_members
from leadscore_pipeline.supervisor import (
    ChildKeptDying,
    ChildSpec,
    HomeInUse,
    RestartPolicy,
    Supervisor,
    claim_home,
    run_dir,
    stop_previous_children,
)
from tests.polling import wait_for

PY = sys.executable
# A child that starts a grandchild deaf to SIGTERM (as a busy code server may be), writes its pid, then waits.
WITH_STUBBORN_GRANDCHILD = (
    "import subprocess, sys, time;"
    "g = subprocess.Popen([sys.executable, '-c', 'import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN);"
    " time.sleep(120)']);"
    "open(sys.argv[1], 'w').write(str(g.pid)); time.sleep(120)"
)


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text())
    except (OSError, ValueError):
        return None


class Said:
    """Collects what the supervisor says, with the time it said it."""

    def __init__(self):
        self.lines: list[tuple[float, str]] = []

    def __call__(self, message: str) -> None:
        self.lines.append((time.monotonic(), message))

    def when(self, text: str) -> list[float]:
        return [at for at, message in self.lines if text in message]


def supervisor(tmp_path: Path, command: list[str], policy: RestartPolicy, said: Said) -> Supervisor:
    env = {**os.environ, "LEADSCORE_HOME": str(tmp_path)}
    return Supervisor([ChildSpec("worker", command)], env=env, cwd=tmp_path, home=tmp_path, policy=policy, say=said)


def test_a_child_that_keeps_dying_is_restarted_with_growing_delays_then_given_up_on(tmp_path: Path):
    said = Said()
    policy = RestartPolicy(first_delay=0.2, max_delay=10, max_deaths=4, window=60)
    keeper = supervisor(tmp_path, [PY, "-c", "import sys; print('bad config'); sys.exit(3)"], policy, said)
    keeper.start()
    with pytest.raises(ChildKeptDying) as gave_up:
        wait_for(lambda: keeper.check(), "the supervisor to give up")  # check() returns None until it raises
    keeper.stop()

    assert gave_up.value.name == "worker"
    assert str(tmp_path / "logs" / "worker.log") in str(gave_up.value)
    assert "bad config" in (tmp_path / "logs" / "worker.log").read_text()
    deaths, restarts = said.when("exited with code 3"), said.when("starting worker again")
    assert len(deaths) == 4 and len(restarts) == 3
    waits = [restart - death for death, restart in zip(deaths, restarts, strict=False)]
    assert all(wait >= delay for wait, delay in zip(waits, (0.2, 0.4, 0.8), strict=True))
    assert [message for _, message in said.lines if message.startswith("restarting worker in")] == [
        "restarting worker in 0.2 s",
        "restarting worker in 0.4 s",
        "restarting worker in 0.8 s",
    ]


def test_a_child_that_stayed_up_a_while_starts_its_backoff_over(tmp_path: Path):
    said = Said()
    policy = RestartPolicy(first_delay=0.1, stable_after=0.3, max_deaths=10, window=60)
    keeper = supervisor(tmp_path, [PY, "-c", "import time; time.sleep(0.6)"], policy, said)
    keeper.start()
    wait_for(lambda: keeper.check() or len(said.when("exited")) >= 3, "three deaths")
    keeper.stop()
    assert [message for _, message in said.lines if message.startswith("restarting worker in")] == [
        "restarting worker in 0.1 s"
    ] * 3


def test_stop_ends_the_whole_group_even_a_grandchild_deaf_to_sigterm(tmp_path: Path):
    grandchild_file = tmp_path / "grandchild.pid"
    policy = RestartPolicy(stop_timeout=1.0)
    keeper = supervisor(tmp_path, [PY, "-c", WITH_STUBBORN_GRANDCHILD, str(grandchild_file)], policy, Said())
    keeper.start()
    child = read_pid(run_dir(tmp_path) / "worker.pid")
    grandchild = wait_for(lambda: read_pid(grandchild_file), "the grandchild's pid")
    assert os.getpgid(grandchild) == child  # the child leads a group of its own, which its children join

    keeper.stop()
    assert not alive(child) and not alive(grandchild)
    assert not live_members([child])
    assert not (run_dir(tmp_path) / "worker.pid").exists()


def test_what_a_dead_child_left_behind_is_stopped_before_it_is_restarted(tmp_path: Path):
    grandchild_file = tmp_path / "grandchild.pid"
    said = Said()
    policy = RestartPolicy(first_delay=0.1, leftovers_timeout=1.0)
    keeper = supervisor(tmp_path, [PY, "-c", WITH_STUBBORN_GRANDCHILD, str(grandchild_file)], policy, said)
    keeper.start()
    try:
        child = read_pid(run_dir(tmp_path) / "worker.pid")
        grandchild = wait_for(lambda: read_pid(grandchild_file), "the grandchild's pid")
        grandchild_file.unlink()
        os.kill(child, signal.SIGKILL)

        wait_for(lambda: keeper.check() or said.when("starting worker again"), "the restart")
        assert not alive(grandchild)
        assert said.when("exited with code -9")
        restarted = read_pid(run_dir(tmp_path) / "worker.pid")
        assert restarted != child and alive(restarted)
    finally:
        keeper.stop()


def test_the_next_start_stops_only_what_a_killed_start_left_of_its_own_home(tmp_path: Path):
    home = tmp_path / "home"
    run_dir(home).mkdir(parents=True)
    # A leftover child group: the child runs with our LEADSCORE_HOME, a process in its group with another one.
    foreign = (
        "import os, subprocess, sys, time; subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'],"
    )
    foreign += " env={**os.environ, 'LEADSCORE_HOME': '/elsewhere'}); time.sleep(120)"
    leftover = subprocess.Popen(
        [PY, "-c", foreign], env={**os.environ, "LEADSCORE_HOME": str(home)}, start_new_session=True
    )
    try:
        (run_dir(home) / "api.pid").write_text(f"{leftover.pid}\n")
        others = wait_for(lambda: [p for p in live_members([leftover.pid]) if p.pid != leftover.pid], "the other")
        said = Said()

        stop_previous_children(home, say=said)
        assert leftover.wait(timeout=10) is not None
        assert alive(others[0].pid)  # same group, but not started for this home: not ours to stop
        assert said.when("stopped 1 process(es) of api left running by a previous start")
        assert not (run_dir(home) / "api.pid").exists()
    finally:
        os.killpg(leftover.pid, signal.SIGKILL)
        leftover.wait()


def test_a_second_start_on_a_home_in_use_is_refused_and_a_dead_ones_claim_is_taken_over(tmp_path: Path):
    running = subprocess.Popen([PY, "-c", "import time; time.sleep(120)", "/venv/bin/leadscore", "up"])
    try:
        (tmp_path / "up.pid").write_text(f"{running.pid}\n")
        with pytest.raises(HomeInUse, match=f"pid {running.pid}"):
            claim_home(tmp_path)
    finally:
        running.kill()
        running.wait()
    assert claim_home(tmp_path).read_text() == f"{os.getpid()}\n"
