"""Physical lines of a CSV file with bounded memory: find the lines too long to read, copy the file without
them for the parser, and read a few rows' raw text cut short. No line is ever held whole."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

BLOCK_BYTES = 1 << 20


@dataclass(frozen=True)
class LongLine:
    number: int  # 1-based physical line number
    start: int  # file offset of its first byte
    end: int  # file offset of its line break (or of the end of the file)
    odd_quotes: bool  # holds an odd number of '"': it opens or closes a quoted field

    @property
    def size(self) -> int:
        return self.end - self.start


def find_long_lines(stream: BinaryIO, max_bytes: int) -> list[LongLine]:
    """Every physical line longer than `max_bytes` (its closing \\n not counted), in one pass of block reads.

    It jumps from line break to the last line break within `max_bytes` of the current line's start, so a
    file of short lines costs two C-level scans (rfind, count) per jump rather than Python work per line.
    """
    found: list[LongLine] = []
    number, start, quotes = 1, 0, 0  # the current line: its number, first byte, '"' seen in earlier blocks
    offset = 0  # file offset of block[0]
    while block := stream.read(BLOCK_BYTES):
        pos = max(start - offset, 0)  # where the current line's unread bytes begin in this block
        while pos < len(block):
            last_short_break = start + max_bytes - offset  # a break after this index makes the line long
            if last_short_break >= pos:
                nl = block.rfind(b"\n", pos, last_short_break + 1)
                if nl >= 0:  # every line up to this break is short
                    number += block.count(b"\n", pos, nl + 1)
                    start, quotes, pos = offset + nl + 1, 0, nl + 1
                    continue
                if last_short_break + 1 > len(block):  # undecided until the next block
                    quotes += block.count(b'"', pos)
                    break
            nl = block.find(b"\n", pos)
            if nl < 0:  # a long line going on into the next block
                quotes += block.count(b'"', pos)
                break
            quotes += block.count(b'"', pos, nl)
            found.append(LongLine(number, start, offset + nl, quotes % 2 == 1))
            number, start, quotes, pos = number + 1, offset + nl + 1, 0, nl + 1
        offset += len(block)
    if offset - start > max_bytes:  # the last line, with no line break after it
        found.append(LongLine(number, start, offset, quotes % 2 == 1))
    return found


@contextmanager
def without_long_lines(path: Path, long_lines: list[LongLine]) -> Iterator[Path]:
    """`path` itself when no line is long, else a copy with each long line emptied, its line break kept (so line
    numbers stay) and a lone '"' left when it had an odd number of them (so the quoting of the lines after it
    reads as before: exact for RFC 4180 quoting, where only quotes open and close quoted fields)."""
    if not long_lines:
        yield path
        return
    with tempfile.TemporaryDirectory() as folder, path.open("rb") as source:
        copy_path = Path(folder) / "readable.csv"
        with copy_path.open("wb") as copy:
            done = 0
            for line in long_lines:
                _copy_range(source, copy, done, line.start)
                copy.write(b'"' if line.odd_quotes else b"")
                done = line.end
            _copy_range(source, copy, done, None)
        yield copy_path


def _copy_range(source: BinaryIO, target: BinaryIO, start: int, end: int | None) -> None:
    source.seek(start)
    if end is None:
        shutil.copyfileobj(source, target, BLOCK_BYTES)
        return
    left = end - start
    while left > 0 and (block := source.read(min(BLOCK_BYTES, left))):
        target.write(block)
        left -= len(block)


def _bounded_lines(stream: BinaryIO, keep: int) -> Iterator[tuple[bytes, int, int]]:
    """Each physical line as (at most `keep` of its first bytes, its size, the size of its line break)."""
    while head := stream.readline(keep):
        size, tail = len(head), head
        while not tail.endswith(b"\n") and (tail := stream.readline(BLOCK_BYTES)):  # read past what is not kept
            size += len(tail)
        yield head, size, 2 if tail.endswith(b"\r\n") else 1 if tail.endswith(b"\n") else 0


def raw_texts(stream: BinaryIO, spans: dict[int, int], keep: int) -> dict[int, str]:
    """The text of each span {first line: line count}, at most `keep` bytes of it then a mark of the cut, in
    one pass. Undecodable bytes and NUL (which Postgres text cannot hold) become U+FFFD."""
    found: dict[int, str] = {}
    lines = _bounded_lines(stream, keep)
    number = 0
    for head, size, line_break in lines:
        number += 1
        if number not in spans:
            continue
        first, kept, total = number, head, size
        for _ in range(spans[first] - 1):  # the further lines of a multi-line record
            head, size, line_break = next(lines, (b"", 0, 0))
            number += 1
            total += size
            if len(kept) < keep:  # each head is a true beginning of its line, so this is one of the record
                kept += head
        total -= line_break
        text = kept[:keep].decode("utf-8", errors="replace").rstrip("\r\n").replace("\x00", "\ufffd")
        found[first] = text if total <= keep else f"{text}... [cut: {total} bytes in all]"
    return found
