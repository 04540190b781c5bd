"""Every read the API serves is SQL of api/reads.py: the routes that read leads, analytics, exports, pipeline status
and the live stream hold no query of their own."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

API = Path(__file__).resolve().parents[2] / "api"
READERS = ["routes/leads.py", "routes/analytics.py", "routes/exports.py", "routes/pipeline.py", "stream.py"]


@pytest.mark.parametrize("module", READERS)
def test_reading_modules_hold_no_sql(module):
    source = (API / module).read_text()
    assert not re.search(r"\bselect\b", source, re.IGNORECASE), f"{module} runs SQL of its own: move it to api/reads.py"
    assert "sqlalchemy import text" not in source


def test_request_reads_never_join():
    # A join per request is what made reads slow at 1M leads (issue 8); only the events export (a stream of every
    # event, not a request-time read) joins.
    source = (API / "reads.py").read_text()
    export = re.search(r'EXPORT_EVENTS_QUERY = f"""(.*?)"""', source, re.DOTALL)
    sql_join = re.compile(r"\bjoin\s+\w+(\s+as\s+\w+)?\s+(on|using)\b", re.IGNORECASE)
    assert export and sql_join.search(export.group(1))
    assert not sql_join.search(source.replace(export.group(1), ""))
