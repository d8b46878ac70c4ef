"""The exact record of what sqlite-to-weaviate created: ``_s2w_objects(type, name, created_at)``.

A name prefix is not ownership. The app may have its own ``_s2w_audit`` trigger, a table
called ``_s2w_state`` or ``_s2w_notes``, a Weaviate collection that happens to carry a
mapped name. Everything destructive the tool does (dropping triggers on re-install,
``uninstall``, ``rollback``, skipping tables from the mapping) therefore asks this registry,
never the prefix: the tool drops, skips or deletes only what it recorded here when it
created it, in the same transaction (SQLite objects) or right after the create call
succeeded (Weaviate collections). A name the tool needs that is already taken by something
it did not create is a :class:`NameTaken` error, never a takeover.

The registry table records itself (row ``('table', '_s2w_objects')``): a table of that
name without that row, or with other columns, belongs to someone else and is refused like
any other collision.

Databases set up before the registry existed carry no record. When the registry is first
created in such a database it adopts the previous install: the tool tables only if the
outbox and the capture table both have exactly the columns earlier versions created (that
pair is the fingerprint of an install), and the triggers whose SQL writes into the outbox
the way generated triggers do. The layouts below are frozen history, deliberately not
derived from today's DDL. Read-only callers see the same answer without writing.

Functions that write run inside the caller's transaction (``BEGIN IMMEDIATE``): the object
and its record commit or roll back together.
"""

from __future__ import annotations

import sqlite3
import time

from sqlite_to_weaviate.errors import S2WError

REGISTRY = "_s2w_objects"
REGISTRY_DDL = (
    "CREATE TABLE _s2w_objects (type TEXT NOT NULL, name TEXT NOT NULL COLLATE NOCASE, "
    "created_at REAL NOT NULL, PRIMARY KEY (type, name))"
)
REGISTRY_COLUMNS = ("type", "name", "created_at")

TABLE = "table"
TRIGGER = "trigger"
COLLECTION = "collection"   # a Weaviate collection the tool created
ALIAS = "alias"             # a Weaviate collection alias the tool created (embedder vectors, mapping.versions)
MILESTONE = "milestone"     # a one-way fact, e.g. UNINSTALLED
UNINSTALLED = "uninstalled"  # capture removed after cutover (phase 5)

#: Tables every install may create, and what they are for (used in error messages).
TOOL_TABLES = {
    "_s2w_outbox": "change outbox",
    "_s2w_context": "per-transaction context",
    "_s2w_state": "checkpoints and phase",
    "_s2w_capture": "capture bookkeeping",
    "_s2w_dead_letters": "dead-letter table",
    "_s2w_resends": "re-sends owed after a fault",
    "_s2w_bulk": "bulk lane (history, repairs, retries)",
    REGISTRY: "record of what it created",
}

_KEYS = tuple(f"k{i}" for i in range(1, 9))
#: Columns of the tool tables as versions before the registry created them (frozen).
_LEGACY_COLUMNS = {
    "_s2w_outbox": ("seq", "tbl", "op", *_KEYS, "ts", "ctx"),
    "_s2w_context": ("id", "ctx"),
    "_s2w_state": ("key", "value"),
    "_s2w_capture": ("tbl", "schema_hash", "trigger_version", "installed_at", "pk_columns", "description",
                     "skip_noop_updates", "captured_by"),
    "_s2w_dead_letters": ("uuid", "tbl", *_KEYS, "key_width", "stage", "reason", "first_seen", "last_seen",
                          "attempts"),
    "_s2w_resends": ("uuid", "tbl", *_KEYS, "key_width", "due", "reason", "first_seen"),
    "_s2w_bulk": ("seq", "tbl", "op", *_KEYS, "ts", "ctx"),
}
#: Every generated capture trigger of earlier versions contains this text.
_LEGACY_TRIGGER_MARK = "INSERT INTO _s2w_outbox(tbl, op, k1"


class NameTaken(S2WError):
    """A name the tool needs belongs to an object it did not create; nothing was changed."""


def _query(conn: sqlite3.Connection, sql: str, params: tuple = ()) -> list[tuple]:
    """Plain tuples whatever ``row_factory`` the app set on its connection."""
    cursor = conn.cursor()
    cursor.row_factory = None
    return cursor.execute(sql, params).fetchall()


def _first(conn: sqlite3.Connection, sql: str, params: tuple = ()) -> tuple | None:
    rows = _query(conn, sql, params)
    return rows[0] if rows else None


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def fold(name: str) -> bytes:
    """SQLite's name comparison: ASCII case-insensitive, every other character exact."""
    return name.encode("utf-8").lower()


def _master(conn: sqlite3.Connection, name: str) -> tuple[str, str, str] | None:
    """(type, name, tbl_name) of the schema object called ``name`` (any case), tables/indexes/views first."""
    row = _first(conn, "SELECT type, name, tbl_name FROM sqlite_master WHERE name = ? COLLATE NOCASE "
                       "ORDER BY type = 'trigger' LIMIT 1", (name,))
    return None if row is None else (row[0], row[1], row[2])


def _trigger(conn: sqlite3.Connection, name: str) -> tuple[str, str] | None:
    row = _first(conn, "SELECT name, tbl_name FROM sqlite_master WHERE type = 'trigger' AND name = ? COLLATE NOCASE",
                 (name,))
    return None if row is None else (row[0], row[1])


def _columns(conn: sqlite3.Connection, table: str) -> tuple[str, ...]:
    return tuple(r[0] for r in _query(conn, "SELECT name FROM pragma_table_info(?)", (table,)))


def _is_registry(conn: sqlite3.Connection) -> bool:
    """True when ``_s2w_objects`` exists and is ours (our columns and its own record)."""
    found = _master(conn, REGISTRY)
    if found is None or found[0] != "table" or _columns(conn, REGISTRY) != REGISTRY_COLUMNS:
        return False
    return _first(conn, "SELECT 1 FROM _s2w_objects WHERE type = ? AND name = ?", (TABLE, REGISTRY)) is not None


def legacy_objects(conn: sqlite3.Connection) -> list[tuple[str, str]]:
    """(type, name) of a pre-registry install in this database (read-only; empty when there is none)."""
    def layout_matches(name: str) -> bool:
        found = _master(conn, name)
        return found is not None and found[0] == "table" and _columns(conn, name) == _LEGACY_COLUMNS[name]

    if not (layout_matches("_s2w_outbox") and layout_matches("_s2w_capture")):
        return []
    out = [(TABLE, _master(conn, name)[1]) for name in _LEGACY_COLUMNS if layout_matches(name)]
    for name, sql in _query(
        conn, "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND name LIKE '\\_s2w\\_%' ESCAPE '\\'"
    ):
        if _LEGACY_TRIGGER_MARK in (sql or ""):
            out.append((TRIGGER, name))
    return out


def present(conn: sqlite3.Connection) -> bool:
    """True when the registry exists, or a pre-registry install it would adopt."""
    return _is_registry(conn) or bool(legacy_objects(conn))


def registered(conn: sqlite3.Connection, kind: str) -> dict[bytes, str]:
    """folded name -> name of every recorded object of ``kind`` (read-only; adopts nothing)."""
    if _is_registry(conn):
        rows = _query(conn, "SELECT name FROM _s2w_objects WHERE type = ?", (kind,))
        return {fold(r[0]): r[0] for r in rows}
    return {fold(name): name for k, name in legacy_objects(conn) if k == kind}


def is_registered(conn: sqlite3.Connection, kind: str, name: str) -> bool:
    return fold(name) in registered(conn, kind)


def has_table(conn: sqlite3.Connection, name: str) -> bool:
    """The tool's table ``name`` exists (a user's table of that name does not count)."""
    return _master(conn, name) is not None and is_registered(conn, TABLE, name)


def tool_tables(conn: sqlite3.Connection) -> set[bytes]:
    """Folded names of the tables the tool created (never mapped, never captured)."""
    return set(registered(conn, TABLE))


def created_at(conn: sqlite3.Connection, kind: str, name: str) -> float | None:
    if not _is_registry(conn):
        return None
    row = _first(conn, "SELECT created_at FROM _s2w_objects WHERE type = ? AND name = ?", (kind, name))
    return None if row is None else float(row[0])


def collections(conn: sqlite3.Connection) -> list[str]:
    """Weaviate collections the tool created, oldest first."""
    if not _is_registry(conn):
        return []
    return [r[0] for r in _query(conn, "SELECT name FROM _s2w_objects WHERE type = ? ORDER BY created_at, name",
                                 (COLLECTION,))]


def _taken(kind: str, name: str, found: tuple[str, str, str], purpose: str) -> str:
    what = f"{found[0]} {found[1]!r}" + (f" on table {found[2]!r}" if found[0] in ("trigger", "index") else "")
    fix = ("rename it or drop and re-create it under another name" if found[0] in ("trigger", "index", "view")
           else f"rename it (ALTER TABLE \"{found[1]}\" RENAME TO ...)")
    return (f"{what} already exists and was not created by sqlite-to-weaviate, which needs the {kind} name "
            f"{name!r} for its {purpose}: {fix}, then run init again")


def conflict(conn: sqlite3.Connection, kind: str, name: str, purpose: str) -> str | None:
    """Why the tool cannot create ``kind`` ``name``, or None when it is free or already the tool's."""
    if kind == TRIGGER:
        trig = _trigger(conn, name)
        if trig is None or is_registered(conn, TRIGGER, name):
            return None
        return _taken(kind, name, ("trigger", trig[0], trig[1]), purpose)
    found = _master(conn, name)
    if found is None or found[0] == "trigger":
        return None
    if found[0] == "table" and is_registered(conn, TABLE, name):
        return None
    return _taken(kind, name, found, purpose)


def ensure(conn: sqlite3.Connection) -> None:
    """Create the registry (adopting a pre-registry install) or check that it is ours; caller's transaction."""
    if _is_registry(conn):
        return
    problem = conflict(conn, TABLE, REGISTRY, TOOL_TABLES[REGISTRY])
    if problem is not None:
        raise NameTaken(problem + "; nothing was changed")
    adopted = legacy_objects(conn)
    conn.execute(REGISTRY_DDL)
    now = time.time()
    conn.executemany("INSERT OR IGNORE INTO _s2w_objects(type, name, created_at) VALUES (?, ?, ?)",
                     [(TABLE, REGISTRY, now)] + [(kind, name, now) for kind, name in adopted])


def record(conn: sqlite3.Connection, kind: str, name: str) -> None:
    """Record ``name`` as created by the tool (caller's transaction)."""
    ensure(conn)
    conn.execute("INSERT OR IGNORE INTO _s2w_objects(type, name, created_at) VALUES (?, ?, ?)",
                 (kind, name, time.time()))


def forget(conn: sqlite3.Connection, kind: str, name: str) -> None:
    if _is_registry(conn):
        conn.execute("DELETE FROM _s2w_objects WHERE type = ? AND name = ?", (kind, name))


def create_table(conn: sqlite3.Connection, name: str, ddl: str) -> bool:
    """Create the tool table ``name`` with ``ddl`` and record it, or check it is already ours.

    Returns True when it was created now. Raises :class:`NameTaken` when something the tool
    did not create holds the name.
    """
    ensure(conn)
    problem = conflict(conn, TABLE, name, TOOL_TABLES.get(name, "bookkeeping"))
    if problem is not None:
        raise NameTaken(problem + "; nothing was changed")
    if _master(conn, name) is not None:
        return False
    conn.execute(ddl)
    record(conn, TABLE, name)
    return True


def create_trigger(conn: sqlite3.Connection, name: str, sql: str) -> None:
    """Create a capture trigger and record it; a user's trigger of that name is :class:`NameTaken`."""
    ensure(conn)
    problem = conflict(conn, TRIGGER, name, "capture trigger")
    if problem is not None:
        raise NameTaken(problem + "; nothing was changed")
    conn.execute(sql)
    record(conn, TRIGGER, name)


def drop_trigger(conn: sqlite3.Connection, name: str) -> None:
    """Drop the tool's trigger ``name`` (never a user's trigger) and forget it."""
    if not is_registered(conn, TRIGGER, name):
        return
    trig = _trigger(conn, name)
    if trig is not None:
        conn.execute(f"DROP TRIGGER {_quote(trig[0])}")
    forget(conn, TRIGGER, registered(conn, TRIGGER)[fold(name)])


def drop_table(conn: sqlite3.Connection, name: str) -> None:
    """Drop the tool's table ``name`` (never a user's table) and forget it."""
    if fold(name) == fold(REGISTRY) or not is_registered(conn, TABLE, name):
        return
    found = _master(conn, name)
    if found is not None and found[0] == "table":
        conn.execute(f"DROP TABLE {_quote(found[1])}")
    forget(conn, TABLE, registered(conn, TABLE)[fold(name)])


def drop_registry(conn: sqlite3.Connection, *, only_if_empty: bool = True) -> bool:
    """Drop the registry (when it records nothing but itself, unless told otherwise); True if dropped."""
    if not _is_registry(conn):
        return False
    others = _first(conn, "SELECT count(*) FROM _s2w_objects WHERE NOT (type = ? AND name = ?)", (TABLE, REGISTRY))[0]
    if others and only_if_empty:
        return False
    conn.execute("DROP TABLE _s2w_objects")
    return True
