"""TEXT values that are not UTF-8: read them as values of one row, never as a failed read.

SQLite stores whatever bytes it is given as TEXT (``CAST(x'c328' AS TEXT)``, a C program
writing Latin-1, a truncated multi-byte character). Python's ``sqlite3`` decodes every TEXT
value as UTF-8 and raises ``OperationalError: Could not decode to UTF-8`` for the whole
statement, so one such value used to stop the relay for good (every batch holding it
failed, and the relay backed off forever), the backfill's dry run and the verifier.

Reading stays on the fast path (the default ``text_factory``, decoding in C); only when a
statement fails with that error is it run again with :func:`lenient_text` as the factory,
which turns a bad value into an :class:`InvalidText` carrying the exact bytes. That value
then has a defined fate everywhere: converting it to a ``text`` property is a per-row
``ConversionError`` (the row becomes a dead letter naming table, column and bytes; the
rest flows), a ``blob`` property stores the bytes, the content hash and the object id
encode it as ``{"xt": base64}``, and it binds back to SQLite as the same TEXT value
(:func:`marker` / :func:`bind`), so a key holding it can still be looked up.
"""

from __future__ import annotations

import base64
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

_DECODE_ERROR = "Could not decode to UTF-8"
SHOWN_BYTES = 32


class InvalidText:
    """A TEXT value whose bytes are not valid UTF-8."""

    __slots__ = ("raw",)

    def __init__(self, raw: bytes) -> None:
        self.raw = bytes(raw)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, InvalidText) and other.raw == self.raw

    def __hash__(self) -> int:
        return hash((InvalidText, self.raw))

    def __lt__(self, other: object) -> bool:  # sortable among themselves (keys are sorted in places)
        if not isinstance(other, InvalidText):
            return NotImplemented
        return self.raw < other.raw

    def __repr__(self) -> str:
        return f"InvalidText({self.raw!r})"

    def hex_preview(self) -> str:
        shown = self.raw[:SHOWN_BYTES].hex(" ")
        return shown + (" ..." if len(self.raw) > SHOWN_BYTES else "")

    def describe(self) -> str:
        return f"TEXT that is not valid UTF-8 ({len(self.raw)} bytes: {self.hex_preview()})"

    def base64(self) -> str:
        return base64.b64encode(self.raw).decode("ascii")

    def __conform__(self, protocol: Any) -> bytes:
        """Bound without :func:`marker` (e.g. into a dead-letter row) it is stored as its bytes."""
        return self.raw


def lenient_text(raw: bytes) -> str | InvalidText:
    """A ``text_factory`` that never raises."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return InvalidText(raw)


def is_undecodable(exc: BaseException) -> bool:
    return isinstance(exc, sqlite3.OperationalError) and _DECODE_ERROR in str(exc)


@contextmanager
def lenient(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """Read with :func:`lenient_text` inside the block (the connection's factory is restored)."""
    saved = conn.text_factory
    conn.text_factory = lenient_text
    try:
        yield conn
    finally:
        conn.text_factory = saved


def fetch_all(conn: sqlite3.Connection, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    """``conn.execute(sql, params).fetchall()``; undecodable TEXT values come back as InvalidText."""
    try:
        return conn.execute(sql, params).fetchall()
    except sqlite3.OperationalError as exc:
        if not is_undecodable(exc):
            raise
    with lenient(conn):
        return conn.execute(sql, params).fetchall()


def marker(value: Any) -> str:
    """The SQL placeholder that binds ``value`` as the exact SQLite value it was read as."""
    return "CAST(? AS TEXT)" if isinstance(value, InvalidText) else "?"


def bind(value: Any) -> Any:
    return value.raw if isinstance(value, InvalidText) else value


def has_invalid(values: Sequence[Any]) -> bool:
    return any(isinstance(v, InvalidText) for v in values)
