"""Whitespace tokens of a program's output, a window at a time (used by judging/rules.py).

A program may print up to the output cap (64 MiB) of one-character tokens; as one list of str that
is gigabytes. Here the output is cut into windows that end just after a separator, so no token is
cut, and each window is decoded and split on its own: memory is bounded by a window, and the tokens
are exactly those of `stdout.decode("utf-8", "replace").split()` (a window boundary is always a
character boundary, where a UTF-8 decoder starts afresh).
"""

from __future__ import annotations

import re
from typing import Iterator

# str.split()'s separators: the characters for which str.isspace() holds.
SPACES = (
    "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680"
    + "".join(map(chr, range(0x2000, 0x200B)))
    + "\u2028\u2029\u202f\u205f\u3000"
)
_ASCII_SPACES = "".join(c for c in SPACES if c < "\x80")
# The same separators in UTF-8: a multi-byte one starts with a lead byte, never a continuation byte,
# so wherever these bytes occur the decoder reads the separator. Written as literal alternatives,
# the regex engine scans for their first bytes at C speed.
_UTF8_SPACE = b"|".join(re.escape(c.encode()) for c in SPACES)
_MULTIBYTE_LEADS = tuple(sorted({c.encode()[:1] for c in SPACES if c >= "\x80"}))
_SPACE = {bytes: re.compile(_UTF8_SPACE), str: re.compile(r"\s")}
# The greedy prefix backtracks from the window's end: this finds the window's last separator.
_LAST_SPACE = {bytes: re.compile(rb"(?s:.*)(?:" + _UTF8_SPACE + rb")"), str: re.compile(r"(?s:.*)\s")}
# For counting without decoding: an ASCII separator byte becomes a space, any other byte an "x".
_BYTE_CLASSES = bytes(0x20 if chr(b) in _ASCII_SPACES else ord("x") for b in range(256))
WINDOW = 1 << 18  # bytes (or characters) split at a time


class LongToken:
    """A token of the output longer than a window, kept as a range of it: decoded only as far as a
    comparison needs."""

    __slots__ = ("data", "start", "end", "lower")

    def __init__(self, data: bytes, start: int, end: int, lower: bool) -> None:
        self.data, self.start, self.end, self.lower = data, start, end, lower

    @property
    def nbytes(self) -> int:
        return self.end - self.start

    def decode(self, max_bytes: int | None = None) -> str:
        stop = self.end if max_bytes is None else min(self.end, self.start + max_bytes)
        text = str(memoryview(self.data)[self.start : stop], "utf-8", "replace")
        return text.lower() if self.lower else text


def spans(text: bytes | str, start: int = 0) -> Iterator[tuple[int, int, bool]]:
    """Consecutive ranges (a, b, long) covering text[start:] (start on a token boundary), each ending
    just after a separator or at the end of `text`, at most a window long; or, where `long`, exactly
    one token longer than a window."""
    last, first = _LAST_SPACE[type(text)], _SPACE[type(text)]
    size = len(text)
    while start < size:
        end = start + WINDOW
        if end >= size:
            yield start, size, False
            return
        cut = last.match(text, start, end)
        if cut is None:  # no separator ends in the window: the token there ends at the next one
            sep = first.search(text, start)
            if sep is None or sep.start() - start > WINDOW:
                stop = size if sep is None else sep.start()
                yield start, stop, True
                start = stop
                continue
            cut = sep  # it straddles the window's end
        yield start, cut.end(), False
        start = cut.end()


def chunks(text: bytes | str, lower: bool = False) -> Iterator[tuple[list[str | LongToken], int]]:
    """The tokens of `text` (bytes are read as UTF-8, invalid bytes replaced), a window at a time,
    with the offset where each window ends; never an empty list. A token of bytes longer than a
    window comes as a LongToken."""
    view = memoryview(text) if isinstance(text, bytes) else None
    for a, b, long in spans(text):
        if long and view is not None:
            yield [LongToken(text, a, b, lower)], b
            continue
        piece = text[a:b] if view is None else str(view[a:b], "utf-8", "replace")
        tokens: list[str | LongToken] = (piece.lower() if lower else piece).split()
        if tokens:
            yield tokens, b


def count(data: bytes, start: int = 0) -> int:
    """How many tokens data[start:] holds (start on a token boundary), without decoding the windows
    that hold ASCII separators only."""
    total = 0
    for a, b, long in spans(data, start):
        if long:
            total += 1
            continue
        window = data[a:b]
        if any(lead in window for lead in _MULTIBYTE_LEADS):
            total += len(window.decode("utf-8", "replace").split())
        else:
            classes = window.translate(_BYTE_CLASSES)
            total += classes.count(b" x") + classes.startswith(b"x")
    return total
