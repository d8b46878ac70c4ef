"""Every row of a mapped table, streamed in keyset pages: for the tools that must look at all of them.

The dry run (which converts every row to predict refusals) and ``suggest-mapping`` (which
profiles every value) read whole tables of a live database. Each page is one short read
statement (``WHERE (pk) > (last) ORDER BY pk LIMIT n``), so memory stays flat in table
size and no read transaction is held open long enough to starve WAL checkpoints. Rows
with a NULL key value -- SQLite allows them in a non-INTEGER key of a rowid table --
cannot be paged by key; they are read first, paged by rowid. TEXT that is not UTF-8 is
read as :class:`~sqlite_to_weaviate.sqlite_text.InvalidText` (the row is refused, the
scan goes on), and binds back as the same value when it is the last key of a page.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

from sqlite_to_weaviate.sqlite_text import bind, fetch_all, marker

from .model import TableMapping, quote_identifier

PAGE_SIZE = 1000


def iter_row_pages(conn: sqlite3.Connection, table: TableMapping, page_size: int = PAGE_SIZE) -> Iterator[list[tuple]]:
    """Pages of rows, each a tuple of values in ``table.source_columns`` order (what ``select_sql`` reads)."""
    pk = ", ".join(quote_identifier(c) for c in table.primary_key)
    not_null = " AND ".join(f"{quote_identifier(c)} IS NOT NULL" for c in table.primary_key)
    positions = [table.source_columns.index(c) for c in table.primary_key]
    rowid = _rowid_name(conn, table)
    if rowid is not None:
        after_rowid: int | None = None
        select = table.select_sql().replace("SELECT ", f"SELECT {rowid}, ", 1)
        while True:
            where = f"NOT ({not_null})" + ("" if after_rowid is None else f" AND {rowid} > ?")
            params = (() if after_rowid is None else (after_rowid,)) + (page_size,)
            batch = fetch_all(conn, f"{select} WHERE {where} ORDER BY {rowid} LIMIT ?", params)
            if not batch:
                break
            after_rowid = batch[-1][0]
            yield [values[1:] for values in batch]
    after: tuple | None = None
    while True:
        if after is None:
            batch = fetch_all(conn, f"{table.select_sql()} WHERE {not_null} ORDER BY {pk} LIMIT ?", (page_size,))
        else:
            marks = ", ".join(marker(v) for v in after)
            batch = fetch_all(conn, f"{table.select_sql()} WHERE {not_null} AND ({pk}) > ({marks}) ORDER BY {pk} LIMIT ?",
                              (*[bind(v) for v in after], page_size))
        if not batch:
            break
        after = tuple(batch[-1][i] for i in positions)
        yield batch


def _rowid_name(conn: sqlite3.Connection, table: TableMapping) -> str | None:
    """A name for the rowid not shadowed by a column; None for WITHOUT ROWID tables (keys never NULL)."""
    sql = conn.execute("SELECT sql FROM sqlite_master WHERE type='table' AND name=?", (table.table,)).fetchone()
    if sql and sql[0] and "WITHOUT ROWID" in " ".join(sql[0].upper().split()):
        return None
    columns = {r[1].lower() for r in conn.execute(f"PRAGMA table_xinfo({quote_identifier(table.table)})")}
    return next((name for name in ("rowid", "_rowid_", "oid") if name not in columns), None)
