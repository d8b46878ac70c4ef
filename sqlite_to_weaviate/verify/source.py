"""The SQLite side: stream a table in keyset pages and stage (uuid, hash, key) in a scratch db.

Weaviate's cursor returns objects in uuid order while SQLite reads rows in key order, so
the SQLite side is re-sorted on disk: every row's (uuid, content hash, key values) goes
into a table of the verifier's *own* scratch SQLite file (never the app's database), then
an index on (uuid, hash) gives the uuid-ordered stream for the merge-join. Memory stays
flat in table size; the app's file sees only short read transactions (one per page), so
WAL checkpoints are never starved.

The Weaviate side is staged by another thread into a second scratch file (SQLite allows
one writer per file). That file is opened once per verify and re-used by every table, and
the merge-join reads each side through its own connection: nothing is ever ATTACHed, so
the number of tables is not bounded by SQLite's limit of 10 attached databases.
"""

from __future__ import annotations

import sqlite3
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from sqlite_to_weaviate.mapping import TableMapping, content_hash
from sqlite_to_weaviate.mapping.errors import MappingError
from sqlite_to_weaviate.mapping.model import quote_identifier
from sqlite_to_weaviate.sqlite_text import bind, fetch_all, has_invalid, marker

PAGE_SIZE = 5000


class Scratch:
    """Throw-away SQLite files for staging; deleted on :meth:`close`.

    ``conn`` holds the SQLite side's staged rows and the candidates; ``side`` is a second
    file and connection for the thread that stages the Weaviate side at the same time. Both
    live for the whole verify, whatever the number of tables.
    """

    def __init__(self, directory: str | Path | None = None) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="s2w-verify-", dir=directory)
        self.path = Path(self._dir.name) / "stage.db"
        self.conn = _scratch_connection(self.path)
        self.side = _scratch_connection(Path(self._dir.name) / "objects.db")

    def close(self) -> None:
        self.side.close()
        self.conn.close()
        self._dir.cleanup()

    def __enter__(self) -> "Scratch":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _scratch_connection(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    for pragma in ("journal_mode=OFF", "synchronous=OFF", "cache_size=-8000", "temp_store=FILE"):
        conn.execute(f"PRAGMA {pragma}")
    return conn


def _stage_name(index: int) -> str:
    return f"stage_{index}"


class StagedTable:
    """One table's rows staged in the scratch db: uuid-ordered hashes and key look-up."""

    def __init__(self, scratch: Scratch, name: str, key_width: int) -> None:
        self.scratch = scratch
        self.name = name
        self.key_width = key_width
        self.rows = 0
        self.null_keys = 0  # rows whose key has a NULL: no identity, reported as conversion errors

    def hashes(self) -> Iterator[tuple[bytes, str]]:
        """(uuid bytes, hash) in ascending uuid order, read through the covering index."""
        cursor = self.scratch.conn.execute(f"SELECT u, h FROM {self.name} ORDER BY u")
        yield from cursor

    def keys(self, uuids: Iterable[bytes]) -> dict[bytes, tuple]:
        """Primary-key values of staged rows, by uuid (for repair and re-checks)."""
        cols = ", ".join(f"k{i}" for i in range(self.key_width))
        found: dict[bytes, tuple] = {}
        for u in uuids:
            rows = fetch_all(self.scratch.conn, f"SELECT {cols} FROM {self.name} WHERE u = ?", (u,))
            if rows:
                found[u] = tuple(rows[0])
        return found

    def sample_keys(self, n: int) -> list[tuple]:
        """``n`` random staged keys (the scratch db, not the app's, pays for the random sort)."""
        cols = ", ".join(f"k{i}" for i in range(self.key_width))
        return [tuple(r) for r in fetch_all(
            self.scratch.conn, f"SELECT {cols} FROM {self.name} ORDER BY random() LIMIT ?", (n,))]


def iter_pages(conn: sqlite3.Connection, table: TableMapping, page_size: int = PAGE_SIZE) -> Iterator[list[dict[str, Any]]]:
    """Rows of ``table`` in primary-key order, one short read transaction per page.

    Keyset pagination (``WHERE (pk) > (last) ORDER BY pk LIMIT n``) keeps each page an
    index range scan. Rows with a NULL key value are not reachable by row-value comparison
    and are counted separately by :func:`count_null_keys`.
    """
    columns = table.source_columns
    pk = ", ".join(quote_identifier(c) for c in table.primary_key)
    positions = [columns.index(c) for c in table.primary_key]
    not_null = " AND ".join(f"{quote_identifier(c)} IS NOT NULL" for c in table.primary_key)
    base = table.select_sql()
    last: tuple | None = None
    while True:
        if last is None:
            sql, params = f"{base} WHERE {not_null} ORDER BY {pk} LIMIT ?", [page_size]
        else:
            marks = ", ".join(marker(v) for v in last)
            sql, params = f"{base} WHERE ({pk}) > ({marks}) ORDER BY {pk} LIMIT ?", [*map(bind, last), page_size]
        rows = fetch_all(conn, sql, params)  # TEXT that is not UTF-8 arrives as InvalidText
        if not rows:
            return
        yield [dict(zip(columns, r)) for r in rows]
        last = tuple(rows[-1][i] for i in positions)
        if len(rows) < page_size:
            return


def count_null_keys(conn: sqlite3.Connection, table: TableMapping) -> int:
    cond = " OR ".join(f"{quote_identifier(c)} IS NULL" for c in table.primary_key)
    return int(conn.execute(f"SELECT count(*) FROM {quote_identifier(table.table)} WHERE {cond}").fetchone()[0])


def stage_table(
    conn: sqlite3.Connection,
    table: TableMapping,
    scratch: Scratch,
    index: int,
    *,
    page_size: int = PAGE_SIZE,
    progress: Callable[[int], None] | None = None,
) -> StagedTable:
    """Read every row of ``table`` and stage (uuid, content hash, key) in ``scratch``.

    The index is built after loading (one sort is far cheaper than a random-order B-tree
    insert per row).
    """
    width = len(table.primary_key)
    staged = StagedTable(scratch, _stage_name(index), width)
    key_cols = ", ".join(f"k{i}" for i in range(width))
    sc = scratch.conn
    sc.execute(f"DROP TABLE IF EXISTS {staged.name}")
    sc.execute(f"CREATE TABLE {staged.name} (u BLOB, h TEXT, {key_cols})")
    insert = f"INSERT INTO {staged.name} VALUES (?, ?, {', '.join('?' * width)})"
    for page in iter_pages(conn, table, page_size):
        batch = []
        exact = []  # keys holding TEXT that is not UTF-8: staged as that same TEXT
        for row in page:
            key = table.key_of(row)
            try:
                u = table.uuid_bytes_for_key(key)
            except MappingError:
                staged.null_keys += 1
                continue
            (exact if has_invalid(key) else batch).append((u, content_hash(table, row), *key))
        sc.execute("BEGIN")
        sc.executemany(insert, batch)
        for values in exact:
            sc.execute(f"INSERT INTO {staged.name} VALUES ({', '.join(marker(v) for v in values)})",
                       [bind(v) for v in values])
        sc.execute("COMMIT")
        batch.extend(exact)
        staged.rows += len(batch)
        if progress is not None:
            progress(len(page))
    sc.execute(f"CREATE UNIQUE INDEX {staged.name}_u ON {staged.name}(u, h)")
    staged.null_keys += count_null_keys(conn, table)
    return staged


def find_keys(conn: sqlite3.Connection, table: TableMapping, wanted: set[bytes], page_size: int = PAGE_SIZE) -> dict[bytes, tuple]:
    """Keys of the rows whose object uuid is in ``wanted`` (a key-only rescan of the table).

    Object uuids are a one-way hash of the key, so finding the row of an "extra" object
    means hashing every key again. Only needed when extras were seen while the database
    was being written to (or after deleting extras), so it is not on the common path.
    """
    found: dict[bytes, tuple] = {}
    if not wanted:
        return found
    pk = ", ".join(quote_identifier(c) for c in table.primary_key)
    not_null = " AND ".join(f"{quote_identifier(c)} IS NOT NULL" for c in table.primary_key)
    t = quote_identifier(table.table)
    last: tuple | None = None
    while True:
        if last is None:
            sql, params = f"SELECT {pk} FROM {t} WHERE {not_null} ORDER BY {pk} LIMIT ?", [page_size]
        else:
            sql = f"SELECT {pk} FROM {t} WHERE ({pk}) > ({', '.join(map(marker, last))}) ORDER BY {pk} LIMIT ?"
            params = [*map(bind, last), page_size]
        rows = fetch_all(conn, sql, params)
        for key in rows:
            u = table.uuid_bytes_for_key(tuple(key))
            if u in wanted:
                found[u] = tuple(key)
        if len(rows) < page_size:
            return found
        last = tuple(rows[-1])
