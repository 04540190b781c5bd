"""/docs (Swagger UI) and /redoc work offline: every script, style and icon they load is served by the API."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest


def referenced_urls(html: str) -> list[str]:
    """Every URL the page loads or links: src/href attributes and quoted URLs in its inline scripts."""
    attributes = re.findall(r'(?:src|href)\s*=\s*["\']([^"\']+)["\']', html)
    in_scripts = re.findall(r'["\'`]((?:https?:)?//[^"\'`]+|/[^"\'`\s]*\.(?:js|css|png|json))["\'`]', html)
    return attributes + in_scripts


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_load_nothing_from_off_the_machine(client, page):
    response = client.get(page)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    assert not re.search(r"(?:https?:)?//(?!127\.0\.0\.1|localhost)[\w.-]+\.\w", response.text), response.text
    urls = set(referenced_urls(response.text))
    assert any(url.endswith(".js") for url in urls) and "/openapi.json" in urls, urls
    for url in urls:
        assert not urlsplit(url).netloc, url  # same origin: a path, not another host
        asset = client.get(url)
        assert asset.status_code == 200, url
        assert len(asset.content) > 1000 or url.endswith(".png"), url


def test_swagger_ui_fetches_no_validator_badge(client):
    # Swagger UI's default validatorUrl would load https://validator.swagger.io/... from the browser.
    assert '"validatorUrl": null' in client.get("/docs").text
