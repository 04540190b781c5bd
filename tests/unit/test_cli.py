"""The CLI finds the stack where `leadscore up` puts it (the same settings), links a replay's backfill page and,
with --wait, prints a line at each change of its progress. Dagster is replaced at the replay module's boundary."""

from __future__ import annotations

import pytest

from leadscore_pipeline import cli, replay
from leadscore_pipeline.replay import ReplayProgress
from leadscore_pipeline.settings import get_settings


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch):
    def setenv(**variables: str) -> None:
        for name, value in variables.items():
            monkeypatch.setenv(f"LEADSCORE_{name.upper()}", value)
        get_settings.cache_clear()

    monkeypatch.delenv("LEADSCORE_DAGSTER_URL", raising=False)
    yield setenv
    monkeypatch.undo()
    get_settings.cache_clear()


@pytest.fixture
def dagster(monkeypatch: pytest.MonkeyPatch):
    """A replay whose progress is read from `answers`, one per poll; the URLs the CLI used are kept in `urls`."""
    calls: dict[str, list] = {"urls": [], "answers": []}

    def launch(url: str, trigger: str) -> str:
        calls["urls"].append(url)
        assert trigger == "cli"
        return "abcdefgh"

    def progress(url: str, replay_id: str) -> ReplayProgress:
        calls["urls"].append(url)
        assert replay_id == "abcdefgh"
        return calls["answers"].pop(0)

    monkeypatch.setattr(replay, "launch_replay", launch)
    monkeypatch.setattr(replay, "replay_progress", progress)
    monkeypatch.setattr(cli.time, "sleep", lambda seconds: None)
    return calls


@pytest.mark.parametrize(
    ("host", "expected"),
    [("127.0.0.1", "127.0.0.1"), ("0.0.0.0", "127.0.0.1"), ("::1", "[::1]"), ("::", "[::1]")],
)
def test_replay_links_the_backfill_on_the_port_and_host_of_the_stack(env, dagster, capsys, host, expected):
    env(api_host=host, dagster_port="13999")
    cli.main(["replay"])
    assert dagster["urls"] == [f"http://{expected}:13999"]
    assert (
        capsys.readouterr().out == f"replay abcdefgh launched: follow it at http://{expected}:13999/runs/b/abcdefgh\n"
    )


def test_replay_wait_prints_a_line_at_each_change_and_exits_with_the_outcome(env, dagster, capsys):
    env(dagster_port="13999")
    dagster["answers"] = [
        ReplayProgress("queued", 0, 16),
        ReplayProgress("queued", 0, 16),
        ReplayProgress("running", 0, 16),
        ReplayProgress("running", 4, 16),
        ReplayProgress("running", 4, 16),
        ReplayProgress("running", 16, 16),
        ReplayProgress("succeeded", 16, 16),
    ]
    with pytest.raises(SystemExit) as exit_:
        cli.main(["replay", "--wait"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.splitlines() == [
        "replay abcdefgh launched: follow it at http://127.0.0.1:13999/runs/b/abcdefgh",
        "replay abcdefgh: queued, 0/16 buckets",
        "replay abcdefgh: running, 0/16 buckets",
        "replay abcdefgh: running, 4/16 buckets",
        "replay abcdefgh: running, 16/16 buckets",
        "replay abcdefgh: succeeded, 16/16 buckets",
    ]
    dagster["answers"] = [ReplayProgress("running", 4, 16), ReplayProgress("failed", 4, 16)]
    with pytest.raises(SystemExit) as exit_:
        cli.main(["replay", "--wait"])
    assert exit_.value.code == 1


def test_webhook_sign_posts_to_the_api_of_the_stack(env, capsys, tmp_path):
    env(api_host="0.0.0.0", api_port="18123")
    body = tmp_path / "body.json"
    body.write_text('{"event": "DEMO_REQUEST"}')
    cli.main(["webhook", "sign", str(body), "--secret", "whsec_c2VjcmV0LXNlY3JldC1zZWNyZXQ="])
    assert "curl -X POST http://127.0.0.1:18123/api/webhook " in capsys.readouterr().out
