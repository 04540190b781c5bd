"""`leadscore up`'s banner says where the admin token is kept, never the token: terminals and logs are not secret."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from leadscore_pipeline.settings import Settings
from leadscore_pipeline.stack import Database, _print_banner, admin_token


def banner(settings: Settings, capsys: pytest.CaptureFixture[str]) -> str:
    _print_banner("http://127.0.0.1:8000", "http://127.0.0.1:3000", settings, Database("url", None), Path("logs"), [])
    return capsys.readouterr().out


def test_a_generated_token_is_kept_owner_only_and_the_banner_names_its_file(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("LEADSCORE_ADMIN_TOKEN", raising=False)
    settings = Settings(home=tmp_path)
    token = admin_token(settings)
    assert (tmp_path / "admin_token").read_text() == token
    assert stat.S_IMODE((tmp_path / "admin_token").stat().st_mode) == 0o600
    shown = banner(settings, capsys)
    assert token not in shown
    assert f"Admin token   in {tmp_path / 'admin_token'}" in shown


def test_a_configured_token_is_not_printed_either(tmp_path, capsys):
    settings = Settings(home=tmp_path, admin_token="configured-secret", read_key="read-secret", ingest_key="in-secret")
    shown = banner(settings, capsys)
    assert "Admin token   set by LEADSCORE_ADMIN_TOKEN" in shown
    assert "Keys          reads and ingestion need their bearer key" in shown
    assert not any(secret in shown for secret in ("configured-secret", "read-secret", "in-secret"))
