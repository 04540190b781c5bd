"""The dashboard's routes: the page, its static files (vendored, nothing from a CDN) and its config."""

from __future__ import annotations

import re

from api.routes.dashboard import STATIC


def test_the_page_and_everything_it_loads_come_from_the_api(client):
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert assets and all(asset.startswith("/static/") for asset in assets), assets
    for asset in assets:
        assert client.get(asset).status_code == 200, asset


def test_chartjs_is_vendored_with_its_licence():
    vendor = STATIC / "vendor" / "chartjs"
    assert (vendor / "LICENSE.md").read_text().startswith("The MIT License")
    version = re.search(r"Chart\.js v(\d+\.\d+\.\d+)", (vendor / "chart.umd.min.js").read_text()[:200])
    assert version and version.group(1) in (vendor / "README.md").read_text()


def test_config_names_the_dagster_ui(client):
    body = client.get("/api/config").json()
    assert body["dagster_url"].startswith("http") and not body["dagster_url"].endswith("/")
