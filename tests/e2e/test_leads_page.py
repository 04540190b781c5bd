"""The Leads page in a real browser (Debian's chromium driven by Playwright) against the real stack: search, tier and
company filters, sorting, paging forth and back, the export links carrying the filter, a row opening the lead panel,
one request per action and no errors in the console."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import Page, expect, sync_playwright

from tests.e2e.conftest import Stack, wait_for
from tests.e2e.test_dashboard import CHROMIUM, CHROMIUM_ARGS, caught_up, event

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium: apt-get install chromium")

COMPANIES = ["Acme", "Globex", "Initech", "Umbrella"]
# Events per tier under the default rules, and the score they give (before the page views that tell leads apart).
TIER_EVENTS = {
    "cold": (["EMAIL_OPEN"], 10),
    "warm": (["DEMO_REQUEST"], 50),
    "hot": (["DEMO_REQUEST", "PURCHASE"], 150),
    "qualified": (["PURCHASE", "PURCHASE", "PURCHASE"], 300),
}
TIERS = list(TIER_EVENTS)
LEADS = 60
ZELDA = 37  # the one lead with a name of her own: first when sorted by name, descending


def lead(i: int) -> dict:
    company = COMPANIES[i % len(COMPANIES)]
    tier = TIERS[(i // len(COMPANIES)) % len(TIERS)]
    page_views = i % 6  # +5 each: scores differ within a tier, never enough to change it
    return {
        "email": f"lead{i:02d}@{company.lower()}.com",
        "name": "Zelda Quinn" if i == ZELDA else f"Lead {i:02d}",
        "company": company,
        "tier": tier,
        "events": TIER_EVENTS[tier][0] + ["PAGE_VIEW"] * page_views,
        "score": TIER_EVENTS[tier][1] + 5 * page_views,
    }


ALL = [lead(i) for i in range(LEADS)]
BY_SCORE = [x["email"] for x in sorted(ALL, key=lambda x: (-x["score"], x["email"]))]


@pytest.fixture(scope="module")
def landed(stack: Stack) -> None:
    """The 60 leads, scored."""
    events = [
        event(f"lp{i}-{n}", event_type, x["email"], x["name"], x["company"], 50 - n)
        for i, x in enumerate(ALL)
        for n, event_type in enumerate(x["events"])
    ]
    posted = stack.client.post("/api/events/batch", json=events)
    assert posted.status_code == 202, posted.text
    wait_for(
        lambda: caught_up(stack.client) and stack.client.get("/api/analytics/summary").json()["leads"] == LEADS,
        "the pipeline to score every lead",
    )


@pytest.fixture
def page(stack: Stack) -> Iterator[Page]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser.new_page(viewport={"width": 1366, "height": 768}, accept_downloads=True)
        finally:
            browser.close()


def rows(page: Page):
    return page.locator("#leads-table tbody tr")


def first_row_is(page: Page, lead_key: str) -> None:
    expect(rows(page).first).to_have_attribute("data-lead-key", lead_key)


def console_errors(page: Page) -> list[str]:
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(f"page error: {error}"))
    return errors


def test_the_leads_page_searches_filters_sorts_pages_and_exports(stack: Stack, landed: None, page: Page):
    errors = console_errors(page)
    requests: list[dict[str, list[str]]] = []  # the query of every GET /api/leads the page makes

    def on_request(request) -> None:
        url = urlsplit(request.url)
        if url.path == "/api/leads":
            requests.append(parse_qs(url.query))

    page.on("request", on_request)

    page.goto(stack.api_url + "/")
    expect(page.locator("#leads-page")).to_be_hidden()
    page.get_by_role("link", name="Leads").click()
    expect(page.locator("#leads-page")).to_be_visible()
    expect(page.locator("#overview")).to_be_hidden()
    expect(page.locator("#leads-count")).to_have_text(f"{LEADS} leads")
    expect(rows(page)).to_have_count(50)  # the default page size
    first_row_is(page, BY_SCORE[0])
    expect(page.locator('#leads-table th[data-sort="score"]')).to_have_attribute("aria-sort", "descending")

    # Paging: 25 a page; Next follows the API's cursor, Previous walks back the same way.
    page.select_option("#leads-limit", "25")
    expect(rows(page)).to_have_count(25)
    expect(page.locator("#leads-prev")).to_be_disabled()
    page.locator("#leads-next").click()
    first_row_is(page, BY_SCORE[25])
    expect(page.locator("#leads-range")).to_have_text("26\u201350")  # an en dash
    page.locator("#leads-next").click()
    first_row_is(page, BY_SCORE[50])
    expect(rows(page)).to_have_count(LEADS - 50)
    expect(page.locator("#leads-next")).to_be_disabled()
    page.locator("#leads-prev").click()
    first_row_is(page, BY_SCORE[25])
    expect(rows(page)).to_have_count(25)
    page.locator("#leads-prev").click()
    first_row_is(page, BY_SCORE[0])
    expect(page.locator("#leads-prev")).to_be_disabled()

    # Sorting by a column: words from A first, a second click turns the order round.
    name = page.locator('#leads-table th[data-sort="name"]')
    name.get_by_role("button").click()
    expect(name).to_have_attribute("aria-sort", "ascending")
    first_row_is(page, ALL[0]["email"])
    name.get_by_role("button").click()
    expect(name).to_have_attribute("aria-sort", "descending")
    first_row_is(page, ALL[ZELDA]["email"])
    page.locator('#leads-table th[data-sort="score"]').get_by_role("button").click()
    first_row_is(page, BY_SCORE[0])

    # Search narrows the table, debounced: typing a word asks once or twice, not once per key.
    before = len(requests)
    page.locator("#leads-search").press_sequentially("zelda", delay=20)
    expect(page.locator("#leads-count")).to_have_text("1 lead")
    expect(rows(page)).to_have_count(1)
    first_row_is(page, ALL[ZELDA]["email"])
    searched = [r for r in requests[before:] if "search" in r]
    assert 1 <= len(searched) < len("zelda"), searched
    assert searched[-1]["search"] == ["zelda"]
    expect(page.locator("#leads-export-csv")).to_have_attribute("href", re.compile(r"[?&]search=zelda(&|$)"))
    page.locator("#leads-search").fill("")
    expect(page.locator("#leads-count")).to_have_text(f"{LEADS} leads")

    # The tier filter narrows it; the company filter narrows it further; the exports carry both.
    hot = [x for x in ALL if x["tier"] == "hot"]
    page.select_option("#leads-tier", "hot")
    expect(page.locator("#leads-count")).to_have_text(f"{len(hot)} leads")
    expect(rows(page)).to_have_count(len(hot))
    assert set(rows(page).locator(".badge").all_text_contents()) == {"hot"}
    hot_initech = sorted((x for x in hot if x["company"] == "Initech"), key=lambda x: (-x["score"], x["email"]))
    page.locator("#leads-company").fill("Initech")
    expect(page.locator("#leads-count")).to_have_text(f"{len(hot_initech)} leads")
    expect(rows(page)).to_have_count(len(hot_initech))
    first_row_is(page, hot_initech[0]["email"])
    for link, export_format in (("#leads-export-csv", "csv"), ("#leads-export-json", "json")):
        href = page.locator(link).get_attribute("href") or ""
        assert urlsplit(href).path == "/api/export/leads", href
        assert parse_qs(urlsplit(href).query) == {"format": [export_format], "tier": ["hot"], "company": ["Initech"]}
    with page.expect_download() as download:
        page.locator("#leads-export-csv").click()
    exported = list(csv.DictReader(io.StringIO(download.value.path().read_text())))
    assert [row["lead_key"] for row in exported] == [x["email"] for x in hot_initech]

    # A click on a row opens the lead panel with that lead.
    chosen = hot_initech[-1]
    rows(page).filter(has_text=chosen["email"]).click()
    expect(page.locator("#lead-panel")).to_be_visible()
    expect(page.locator("#lead-name")).to_have_text(chosen["name"])
    expect(page.locator("#lead-score")).to_have_text(str(chosen["score"]))
    expect(rows(page).filter(has_text=chosen["email"])).to_have_class(re.compile(r"\bselected\b"))

    # The view lives in the address: a reload shows the same filter.
    assert "tier=hot" in page.url and "company=Initech" in page.url
    page.reload()
    expect(page.locator("#leads-count")).to_have_text(f"{len(hot_initech)} leads")
    expect(page.locator("#leads-tier")).to_have_value("hot")

    # One page at a time: no request ever asks for more than a page.
    assert requests and all(int(r["limit"][0]) <= 200 for r in requests), requests
    assert errors == []


def test_without_cursors_the_page_pages_by_offset(stack: Stack, landed: None, page: Page):
    """An API answering without `next_cursor` (the contract before cursors) is paged by offset against the total."""
    errors = console_errors(page)
    queries: list[dict[str, list[str]]] = []

    def without_cursor(route) -> None:
        queries.append(parse_qs(urlsplit(route.request.url).query))
        response = route.fetch()
        body = response.json()
        body.pop("next_cursor", None)
        body.pop("total_exact", None)
        route.fulfill(response=response, json=body)

    page.route(re.compile(r"/api/leads\?"), without_cursor)
    page.goto(stack.api_url + "/#leads?limit=25")
    expect(page.locator("#leads-count")).to_have_text(f"{LEADS} leads")
    first_row_is(page, BY_SCORE[0])
    page.locator("#leads-next").click()
    first_row_is(page, BY_SCORE[25])
    page.locator("#leads-next").click()
    first_row_is(page, BY_SCORE[50])
    expect(page.locator("#leads-next")).to_be_disabled()
    page.locator("#leads-prev").click()
    first_row_is(page, BY_SCORE[25])
    assert {q["offset"][0] for q in queries} == {"0", "25", "50"}, queries
    assert not any("cursor" in q for q in queries), queries
    assert errors == []


def test_a_total_that_is_a_lower_bound_shows_a_plus(stack: Stack, landed: None, page: Page):
    """`total_exact: false` (a broad search over a million leads) reads "N+ leads"; paging still follows the cursor."""

    def inexact(route) -> None:
        response = route.fetch()
        route.fulfill(response=response, json={**response.json(), "total_exact": False})

    page.route(re.compile(r"/api/leads\?"), inexact)
    page.goto(stack.api_url + "/#leads?search=lead&limit=25")
    expect(page.locator("#leads-search")).to_have_value("lead")
    expect(page.locator("#leads-count")).to_have_text(f"{LEADS}+ leads")
    page.locator("#leads-next").click()
    first_row_is(page, BY_SCORE[25])
