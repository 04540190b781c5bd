"""The lead list at scale: keyset cursors walk every lead once in order for every sort, with filters, ties and nulls;
offset still pages; search is a case-insensitive substring of email, name or company; totals say if they are exact."""

from __future__ import annotations

import asyncio
import base64
import json
import re

import psycopg
import pytest

from api import reads
from leadscore_pipeline.db.urls import libpq_url
from leadscore_pipeline.microbatch import run_all_steps
from leadscore_pipeline.refresh import Scope
from tests.pipeline.helpers import event, land

SORTS = [(key, order) for key in reads.SORT_KEYS for order in ("asc", "desc")]
NAMES = ["Ann", "Bob", None, "ann", "Zed", None, "Bob"]  # repeats (ties) and missing names (nulls)
COMPANIES = ["Acme", "Globex", None, "ACME", "Initech"]  # None: the email's domain stands in
TYPES = ["PURCHASE", "DEMO_REQUEST", "PAGE_VIEW", "EMAIL_OPEN"]  # few scores: many ties
DAYS = ["2026-11-20", "2026-11-21", "2026-11-22"]  # few timestamps: ties on last_event_at too


@pytest.fixture
def leads(conn):
    events = []
    for i in range(29):
        metadata = {}
        if NAMES[i % len(NAMES)] is not None:
            metadata["name"] = NAMES[i % len(NAMES)]
        if COMPANIES[i % len(COMPANIES)] is not None:
            metadata["company"] = COMPANIES[i % len(COMPANIES)]
        when = f"{DAYS[i % len(DAYS)]}T10:00:00Z"
        events.append(event(f"e{i}", TYPES[i % len(TYPES)], when, email=f"lead{i:02d}@d{i % 3}.io", metadata=metadata))
    # id-only leads: no email, name or company (nulls in every nullable sort key)
    events += [event(f"x{i}", "PAGE_VIEW", "2026-11-21T10:00:00Z", email=None, lead_id=f"crm-{i}") for i in range(4)]
    land(conn, *events)
    run_all_steps(conn, Scope(incremental=True))
    return conn


def expected(conn, sort_by: str, order: str, where: str = "true", params: tuple = ()) -> list[str]:
    """The documented order, written out independently of api/reads.py: nulls last going down, first going up;
    ties by lead_key ascending in the key's natural direction (score down, the others up), descending reversed."""
    nulls = "nulls last" if order == "desc" else "nulls first"
    ties = "asc" if order == ("desc" if sort_by == "score" else "asc") else "desc"
    sql = f"select lead_key from current_scores where {where} order by {sort_by} {order} {nulls}, lead_key {ties}"
    return [row[0] for row in conn.execute(sql, params).fetchall()]


def walk(client, limit: int = 4, **params) -> list[str]:
    seen, cursor = [], None
    for _ in range(100):
        query = {**params, "limit": limit, **({"cursor": cursor} if cursor else {})}
        response = client.get("/api/leads", params=query)
        assert response.status_code == 200, response.text
        body = response.json()
        seen += [lead["lead_key"] for lead in body["leads"]]
        cursor = body["next_cursor"]
        if cursor is None:
            return seen
    raise AssertionError("the cursor never ended")


@pytest.mark.parametrize(("sort_by", "order"), SORTS)
def test_keyset_walks_every_lead_once_in_order(client, leads, sort_by, order):
    want = expected(leads, sort_by, order)
    assert len(want) == 33 and want == expected(leads, sort_by, "asc" if order == "desc" else "desc")[::-1]
    assert walk(client, sort_by=sort_by, order=order) == want
    # page sizes that end exactly on the last lead, and one lead at a time
    assert walk(client, limit=11, sort_by=sort_by, order=order) == want
    assert walk(client, limit=1, sort_by=sort_by, order=order) == want


def test_the_data_has_ties_and_nulls_in_every_sort_key(leads):
    for key in reads.SORT_KEYS:
        values = [row[0] for row in leads.execute(f"select {key} from current_scores").fetchall()]
        assert len(set(values)) < len(values), key
        if key in reads.NULLABLE_SORT_KEYS:
            assert None in values, key


@pytest.mark.parametrize(
    ("params", "where", "args"),
    [
        ({"tier": "warm"}, "tier = %s", ("warm",)),
        ({"company": "acme"}, "lower(company) = %s", ("acme",)),
        ({"company": "ACME", "tier": "warm"}, "lower(company) = %s and tier = %s", ("acme", "warm")),
        ({"search": "LEAD1"}, "lead_key ilike %s", ("%lead1%",)),
    ],
)
@pytest.mark.parametrize(("sort_by", "order"), [("score", "desc"), ("name", "asc"), ("company", "desc")])
def test_cursor_with_filters(client, leads, params, where, args, sort_by, order):
    want = expected(leads, sort_by, order, where, args)
    assert want, "every filter matches some leads"
    assert walk(client, limit=3, sort_by=sort_by, order=order, **params) == want
    first = client.get("/api/leads", params={**params, "sort_by": sort_by, "order": order, "limit": 3}).json()
    assert first["total"] == len(want) and first["total_exact"] is True


def test_offset_still_pages_and_a_cursor_overrides_it(client, leads):
    want = expected(leads, "last_event_at", "desc")
    pages = [
        client.get("/api/leads", params={"sort_by": "last_event_at", "limit": 5, "offset": offset}).json()
        for offset in range(0, 35, 5)
    ]
    assert [key for page in pages for key in (lead["lead_key"] for lead in page["leads"])] == want
    assert [page["offset"] for page in pages] == list(range(0, 35, 5))
    assert {(page["total"], page["total_exact"]) for page in pages} == {(33, True)}  # the short last page too
    beyond = client.get("/api/leads", params={"limit": 5, "offset": 40}).json()
    assert (beyond["leads"], beyond["total"], beyond["next_cursor"]) == ([], 33, None)
    after_first = pages[0]["next_cursor"]
    by_cursor = client.get(
        "/api/leads", params={"sort_by": "last_event_at", "limit": 5, "offset": 20, "cursor": after_first}
    ).json()
    assert [lead["lead_key"] for lead in by_cursor["leads"]] == want[5:10] and by_cursor["offset"] == 0
    assert pages[-1]["next_cursor"] is None  # 33 leads: the last page is short


def test_search_is_a_case_insensitive_substring_of_email_name_or_company(client, leads):
    def found(text: str) -> set[str]:
        return set(walk(client, limit=50, search=text))

    by_company = found("cMe")  # "Acme" and "ACME"
    assert by_company == set(expected(leads, "score", "desc", "company ilike %s", ("%acme%",))) and by_company
    assert found("ZE") == set(expected(leads, "score", "desc", "name = %s", ("Zed",)))
    assert found("AD10@D1.") == {"lead10@d1.io"}  # a piece of the email
    assert found("initech") == set(expected(leads, "score", "desc", "company = %s", ("Initech",)))
    assert found("%") == set() and found("_") == set()  # wildcards are text, not patterns
    assert found("crm-") == {f"id:crm-{i}" for i in range(4)}


def test_a_term_never_matches_across_fields(client, leads):
    # search_text holds the fields one per line: "io" ends an email and "ann" begins that lead's name
    assert found_keys(client, "d0.io") and found_keys(client, "ann")
    assert found_keys(client, "d0.io\nAnn") == set() and found_keys(client, "io ann") == set()


def found_keys(client, text: str) -> set[str]:
    return set(walk(client, limit=50, search=text))


@pytest.mark.parametrize("term", ["lead03@d0.io", "Ann lead", "d1.io", "cme@"])
def test_whichever_word_the_index_is_given_the_matches_are_the_same(db, leads, term):
    async def matches(lead_filter: reads.LeadFilter) -> list[str]:
        async with await psycopg.AsyncConnection.connect(libpq_url(db), autocommit=True) as conn:
            where, params = lead_filter.where()
            rows = await reads._rows(conn, f"select lead_key from leaderboard where {' and '.join(where)}", params)
            return sorted(row["lead_key"] for row in rows)

    whole = asyncio.run(matches(reads.LeadFilter(search=term)))
    words = [word for word in reads._WORD.findall(term.lower()) if len(word) >= 3]
    by_probe = {word: asyncio.run(matches(reads.LeadFilter(search=term, probe=word))) for word in words}
    assert all(found == whole for found in by_probe.values()), (whole, by_probe)
    naive = expected(leads, "score", "desc", "lead_key ilike %(t)s or name ilike %(t)s or company ilike %(t)s",
                     {"t": f"%{term}%"})  # fmt: skip
    assert whole == sorted(naive)


def test_the_probe_is_the_word_fewest_sampled_leads_hold(db, leads, monkeypatch):
    samples = ["chen.nguyen.1@initech.example", "ann.chen.2@acme.example", "bo.li.3@initech.example"]
    monkeypatch.setattr(reads, "_search_samples", (float("inf"), samples))

    async def probe(term: str) -> str | None:
        async with await psycopg.AsyncConnection.connect(libpq_url(db), autocommit=True) as conn:
            return (await reads.search_probe(conn, reads.LeadFilter(search=term))).probe

    assert asyncio.run(probe("chen.nguyen.462579@initech.example")) == "462579"  # in no sample; longer ties lose
    assert asyncio.run(probe("Chen Nguyen")) == "nguyen"  # in one sample, chen in two
    assert asyncio.run(probe("nguyen")) is None and asyncio.run(probe("ab.cd")) is None  # one word / no trigram


def test_a_long_term_gives_the_index_its_rarest_word_alone(db, leads, monkeypatch):
    monkeypatch.setattr(reads, "_search_samples", (float("inf"), ["lead01@d1.io\nbob\nglobex"]))

    async def search(conn) -> None:
        await reads.lead_page(conn, reads.LeadFilter(search="Bob lead03"), "score", "desc", 5, 0, None)

    # A few test rows: only with plain index scans priced out too is the trigram index the cheaper way to them.
    [page, *_] = plans(db, monkeypatch, search, priced_out=("seqscan", "indexscan"))
    assert re.search(r"current_scores_b\d+_search", page) and "%lead03%" in page, page
    conditions = [line for line in page.splitlines() if "Index Cond" in line]  # one per bucket partition
    assert conditions and not any("bob" in condition for condition in conditions), page


def test_totals_are_exact_or_say_they_are_not(client, leads, monkeypatch):
    def page(**params) -> dict:
        return client.get("/api/leads", params={"limit": 2, **params}).json()

    everyone = page()
    assert (everyone["total"], everyone["total_exact"]) == (33, True)
    tiers = {tier: len(expected(leads, "score", "desc", "tier = %s", (tier,))) for tier in reads.TIERS}
    for tier, count in tiers.items():
        assert (page(tier=tier)["total"], page(tier=tier)["total_exact"]) == (count, True)
    assert sum(tiers.values()) == 33
    globex = len(expected(leads, "score", "desc", "lower(company) = %s", ("globex",)))
    assert (page(company="GLOBEX")["total"], page(company="GLOBEX")["total_exact"]) == (globex, True)
    assert page(company="nobody")["total"] == 0 and page(company="nobody")["next_cursor"] is None
    assert (page(search="lead")["total"], page(search="lead")["total_exact"]) == (29, True)
    monkeypatch.setattr(reads, "SEARCH_COUNT_LIMIT", 10)
    assert (page(search="lead")["total"], page(search="lead")["total_exact"]) == (10, False)  # a lower bound
    assert (page(search="lead1")["total"], page(search="lead1")["total_exact"]) == (10, True)  # 10..19


def _cursor(payload) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode()


@pytest.mark.parametrize(
    ("params", "cursor"),
    [
        ({}, "not a cursor!"),
        ({}, _cursor([1, 2])),
        ({}, _cursor({"k": "name", "v": "Ann", "id": "a"})),  # made for another sort
        ({}, _cursor({"k": "score", "v": "high", "id": "a"})),
        ({}, _cursor({"k": "score", "v": 10**30, "id": "a"})),
        ({"sort_by": "last_event_at"}, _cursor({"k": "last_event_at", "v": "yesterday", "id": "a"})),
        ({"sort_by": "last_event_at"}, _cursor({"k": "last_event_at", "v": "2026-11-20T10:00:00", "id": "a"})),
        ({"sort_by": "name"}, _cursor({"k": "name", "v": 3, "id": "a"})),
        ({"sort_by": "name"}, _cursor({"k": "name", "v": "a", "id": None})),
        ({"sort_by": "name"}, _cursor({"k": "name", "v": "a\u0000", "id": "a"})),
    ],
)
def test_a_bad_cursor_is_a_422_naming_it(client, leads, params, cursor):
    response = client.get("/api/leads", params={**params, "cursor": cursor})
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["field"] == "query.cursor"


def test_export_takes_the_list_filters(client, leads):
    rows = client.get("/api/export/leads", params={"format": "json", "company": "acme", "tier": "warm"}).json()
    assert [row["lead_key"] for row in rows] == expected(
        leads, "score", "desc", "lower(company) = %s and tier = %s", ("acme", "warm")
    )
    csv_lines = client.get("/api/export/leads", params={"search": "crm-"}).text.strip().splitlines()
    assert len(csv_lines) == 1 + 4 and csv_lines[0].startswith("lead_key,")


def plans(db: str, monkeypatch, call, priced_out=("seqscan", "sort")) -> list[str]:
    """The plans of the queries api/reads.py runs for `call` (an async function of a connection), with seq scans
    and sorts priced out: a plan that still sorts or scans current_scores has no index that gives that order or
    filter."""
    captured: list[str] = []
    real_rows, real_one = reads._rows, reads._one

    async def explain(conn, sql, params=None) -> None:
        rows = await (await conn.execute("explain " + sql, params or {})).fetchall()
        captured.append("\n".join(row[0] for row in rows))

    async def rows(conn, sql, params=None):
        await explain(conn, sql, params)
        return await real_rows(conn, sql, params)

    async def one(conn, sql, params=None):
        await explain(conn, sql, params)
        return await real_one(conn, sql, params)

    monkeypatch.setattr(reads, "_rows", rows)
    monkeypatch.setattr(reads, "_one", one)

    async def planned() -> None:
        async with await psycopg.AsyncConnection.connect(libpq_url(db), autocommit=True) as conn:
            for method in priced_out:
                await conn.execute(f"set enable_{method} = off")
            await call(conn)

    asyncio.run(planned())
    return [plan for plan in captured if "current_scores" in plan]


CURSOR_CASES = [(reads.LeadFilter(), key, order) for key, order in SORTS] + [
    (reads.LeadFilter(tier="cold"), "score", "desc"),
    (reads.LeadFilter(company="ACME"), "score", "desc"),
]


@pytest.mark.parametrize(("lead_filter", "sort_by", "order"), CURSOR_CASES)
def test_every_lead_list_order_is_read_off_an_index(db, leads, monkeypatch, lead_filter, sort_by, order):
    async def pages(conn) -> None:
        first = await reads.lead_page(conn, lead_filter, sort_by, order, 2, 0, None)
        await reads.lead_page(conn, lead_filter, sort_by, order, 2, 0, first["next_cursor"])
        await reads.lead_page(conn, lead_filter, sort_by, order, 2, 4, None)
        await reads.leaderboard(conn, 10)

    found = plans(db, monkeypatch, pages)
    assert len(found) >= 4
    for plan in found:
        # A Merge Append of the partitions' index scans keeps their order: its "Sort Key" is no sort.
        assert not re.search(r"Sort  \(cost", plan), plan
        assert "Seq Scan on current_scores" not in plan, plan
