"""Which tables a run covers, and the refusal to backfill a table whose changes are not captured.

Backfilling a table without capture triggers would copy a snapshot and then silently miss
every later change, so a non-dry run insists that ``init`` installed the triggers first.
"""

from __future__ import annotations

import difflib
import sqlite3

from sqlite_to_weaviate.store import registry as tool_objects
from sqlite_to_weaviate.capture.install import installed_triggers
from sqlite_to_weaviate.errors import ConfigError, S2WError
from sqlite_to_weaviate.mapping import Mapping, TableMapping


class CaptureNotInstalled(S2WError):
    """The outbox or a table's triggers are missing: run ``init`` first."""


def select_tables(mapping: Mapping, wanted: list[str] | None) -> list[TableMapping]:
    """Mapped tables in reference order (targets first), filtered by ``wanted``."""
    ordered = mapping.collections_in_order()
    if not wanted:
        return ordered
    by_name = {t.table: t for t in ordered}
    unknown = [name for name in wanted if name not in by_name]
    if unknown:
        name = unknown[0]
        if name in mapping.skipped:
            raise ConfigError(f"--table {name!r} is not mapped: {mapping.skipped[name]}")
        close = difflib.get_close_matches(name, list(by_name), n=1)
        hint = f" — did you mean {close[0]!r}?" if close else ""
        raise ConfigError(f"--table {name!r} is not a mapped table{hint} (mapped: {', '.join(sorted(by_name)) or '-'})")
    keep = set(wanted)
    return [t for t in ordered if t.table in keep]


def check_captured(conn: sqlite3.Connection, tables: list[TableMapping]) -> None:
    if not all(tool_objects.has_table(conn, name) for name in ("_s2w_outbox", "_s2w_capture", "_s2w_state")):
        raise CaptureNotInstalled("capture is not installed in this database: run `sqlite-to-weaviate init` first")
    captured = {r[0] for r in conn.execute("SELECT tbl FROM _s2w_capture")}
    for t in tables:
        triggers = len(installed_triggers(conn, t.table))  # capture's own: an app trigger named _s2w_* does not count
        if t.table not in captured or triggers < 3:
            raise CaptureNotInstalled(
                f"table {t.table!r} has no capture triggers, so changes during the backfill would be lost: "
                "run `sqlite-to-weaviate init` first"
            )
