"""Cells of the bench's printed tables, shared by the scoring and the read reports."""

from __future__ import annotations


def number(value: float | None, digits: int = 0) -> str:
    return "" if value is None else f"{value:,.{digits}f}"


def verdict(passed: bool | None) -> str:
    return {True: "PASS", False: "FAIL", None: ""}[passed]
