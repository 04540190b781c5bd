"""Every read the API serves is SQL of api/reads.py: the routes that read leads, analytics, exports, pipeline status,
event receipts, CSV rejections and the live stream, and the GET handlers of the rules, hold no query of their own."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

API = Path(__file__).resolve().parents[2] / "api"
READERS = [
    "routes/leads.py",
    "routes/analytics.py",
    "routes/exports.py",
    "routes/pipeline.py",
    "routes/receipts.py",
    "routes/ingest.py",
    "stream.py",
]
# Modules that also change data: their GET handlers (and the module's functions those call) hold no SQL.
MIXED = ["routes/rules.py"]


@pytest.mark.parametrize("module", READERS)
def test_reading_modules_hold_no_sql(module):
    source = (API / module).read_text()
    assert not re.search(r"\bselect\b", source, re.IGNORECASE), f"{module} runs SQL of its own: move it to api/reads.py"
    assert "sqlalchemy import text" not in source


def _get_handlers(tree: ast.Module) -> list[ast.FunctionDef]:
    def is_get(decorator: ast.expr) -> bool:
        return (
            isinstance(decorator, ast.Call)
            and isinstance(decorator.func, ast.Attribute)
            and decorator.func.attr == "get"
        )

    return [node for node in tree.body if isinstance(node, ast.FunctionDef) and any(map(is_get, node.decorator_list))]


@pytest.mark.parametrize("module", MIXED)
def test_get_handlers_hold_no_sql(module):
    source = (API / module).read_text()
    tree = ast.parse(source)
    functions = {node.name: node for node in tree.body if isinstance(node, ast.FunctionDef)}
    handlers = _get_handlers(tree)
    assert handlers, f"{module} has no GET handler"
    seen: set[str] = set()
    pending = [handler.name for handler in handlers]
    while pending:  # each GET handler and, transitively, the functions of the module it calls
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        node = functions[name]
        code = ast.get_source_segment(source, node)
        assert not re.search(r"\bselect\b", code, re.IGNORECASE), f"{module}:{name} reads with SQL of its own"
        assert not re.search(r"\btext\(", code), f"{module}:{name} runs SQL of its own: move it to api/reads.py"
        called = {
            call.func.id for call in ast.walk(node) if isinstance(call, ast.Call) and isinstance(call.func, ast.Name)
        }
        pending += sorted(called & functions.keys())
    assert {"list_rules", "get_rule"} <= seen


def test_request_reads_never_join_even_aliased():
    # Also a join whose table has an alias without `as` (`left join t q on ...`) or a list of tables in `from`.
    source = (API / "reads.py").read_text()
    export = re.search(r'EXPORT_EVENTS_QUERY = f"""(.*?)"""', source, re.DOTALL)
    rest = source.replace(export.group(1), "")
    assert not re.search(r"\bjoin\s+\w+\s+(as\s+)?\w+\s+(on|using)\b", rest, re.IGNORECASE)
    assert not re.search(r"\bfrom\s+\w+(\s+\w+)?\s*,\s*\w+", rest, re.IGNORECASE)


def test_request_reads_never_join():
    # A join per request is what made reads slow at 1M leads (issue 8); only the events export (a stream of every
    # event, not a request-time read) joins.
    source = (API / "reads.py").read_text()
    export = re.search(r'EXPORT_EVENTS_QUERY = f"""(.*?)"""', source, re.DOTALL)
    sql_join = re.compile(r"\bjoin\s+\w+(\s+as\s+\w+)?\s+(on|using)\b", re.IGNORECASE)
    assert export and sql_join.search(export.group(1))
    assert not sql_join.search(source.replace(export.group(1), ""))
