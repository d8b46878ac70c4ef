"""SQL quoting for identifiers and literals (pure functions).

Table and column names may be reserved words, contain quotes, spaces or non-ASCII letters;
every name that reaches generated SQL goes through :func:`quote_ident` or :func:`quote_literal`.
"""

from __future__ import annotations

import hashlib
import re

_SAFE = re.compile(r"[A-Za-z0-9_]{1,40}")


def quote_ident(name: str) -> str:
    """Quote an SQL identifier: ``we"ird`` -> ``"we""ird"``."""
    if "\x00" in name:
        raise ValueError(f"identifier contains a NUL character: {name!r}")
    return '"' + name.replace('"', '""') + '"'


def quote_literal(value: str) -> str:
    """Quote an SQL string literal: ``it's`` -> ``'it''s'``."""
    if "\x00" in value:
        raise ValueError(f"string literal contains a NUL character: {value!r}")
    return "'" + value.replace("'", "''") + "'"


def name_stem(table: str) -> str:
    """A stable ASCII stem for names derived from ``table`` (trigger names).

    Plain short ASCII names are kept readable (``messages`` -> ``messages``); anything else
    (quotes, spaces, unicode, very long) becomes ``h`` + 12 hex digits of its sha256, so two
    different tables never share a stem and the stem never needs exotic quoting.
    """
    if _SAFE.fullmatch(table):
        return table
    return "h" + hashlib.sha256(table.encode("utf-8")).hexdigest()[:12]
