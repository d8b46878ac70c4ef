"""SQLAlchemy integration: connection pragmas, BEGIN IMMEDIATE, and context on captured rows.

``attach(engine)`` registers engine events; it never records changes itself (the triggers do,
for every writer), so hooks and triggers together give exactly one outbox row per change.

* ``connect``: put the DBAPI connection in autocommit mode (``isolation_level = None``) so
  SQLAlchemy's ``begin`` event can issue ``BEGIN IMMEDIATE`` itself - a deferred transaction
  upgrading to a write lock gets "database is locked" at once, with no busy wait - and set
  ``journal_mode=WAL``, ``busy_timeout``, ``synchronous=NORMAL``, ``recursive_triggers=ON``
  (so ``OR REPLACE`` deletes fire delete triggers too) and ``foreign_keys`` if asked.
* ``begin``: ``BEGIN IMMEDIATE``, then the context row if there is any context.
* ``commit`` (fires before the DBAPI commit): delete the context row in the same transaction.

Waking the relay needs nothing here: a WAL commit modifies ``<db>-wal``, which the relay
watches; the hot path does no extra work.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session

from .context import clear_context, write_context
from .errors import CaptureError

_CTX_OPTION = "s2w_context"
_SESSION_KEY = "s2w_context"
_CTX_WRITTEN = "s2w_context_written"


@dataclass
class CaptureHandle:
    """Returned by :func:`attach`; ``detach()`` removes the engine listeners again."""

    engine: Engine
    _listeners: list[tuple[str, Callable]] = field(default_factory=list)

    def detach(self) -> None:
        for name, fn in self._listeners:
            if event.contains(self.engine, name, fn):
                event.remove(self.engine, name, fn)
        self._listeners.clear()


def _dbapi(conn: Connection) -> Any:
    return conn.connection.dbapi_connection


def attach(
    engine: Engine,
    *,
    foreign_keys: bool | None = None,
    busy_timeout_ms: int = 5000,
    journal_mode: str | None = "WAL",
    synchronous: str | None = "NORMAL",
    recursive_triggers: bool = True,
    context: Callable[[], Mapping[str, Any] | None] | None = None,
    require_installed: bool = False,
) -> CaptureHandle:
    """Configure ``engine`` (a pysqlite engine) for capture; returns a handle with ``detach()``.

    ``context`` is called at the start of every transaction; a non-empty mapping it returns is
    recorded on every change of that transaction (merged under any :func:`set_context`).
    ``require_installed`` connects once and raises :class:`CaptureError` if the database has
    no outbox, for apps that must not run uncaptured.
    """
    if engine.dialect.name != "sqlite":
        raise CaptureError(f"capture.attach needs a SQLite engine, got dialect {engine.dialect.name!r}")
    handle = CaptureHandle(engine)

    def on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None
        if journal_mode:
            dbapi_conn.execute(f"PRAGMA journal_mode={journal_mode}")
        dbapi_conn.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        if synchronous:
            dbapi_conn.execute(f"PRAGMA synchronous={synchronous}")
        dbapi_conn.execute(f"PRAGMA recursive_triggers={'ON' if recursive_triggers else 'OFF'}")
        if foreign_keys is not None:
            dbapi_conn.execute(f"PRAGMA foreign_keys={'ON' if foreign_keys else 'OFF'}")

    def on_begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")
        ctx: dict[str, Any] = {}
        if context is not None:
            ctx.update(context() or {})
        ctx.update(conn.get_execution_options().get(_CTX_OPTION) or {})
        if ctx:
            write_context(_dbapi(conn), ctx)
            conn.info[_CTX_WRITTEN] = True

    def on_commit(conn: Connection) -> None:
        if conn.info.pop(_CTX_WRITTEN, False):
            clear_context(_dbapi(conn))

    def on_rollback(conn: Connection) -> None:
        conn.info.pop(_CTX_WRITTEN, None)  # the rollback removed the row

    for name, fn in (("connect", on_connect), ("begin", on_begin), ("commit", on_commit), ("rollback", on_rollback)):
        event.listen(engine, name, fn)
        handle._listeners.append((name, fn))

    if require_installed:
        with engine.connect() as c:
            found = c.exec_driver_sql(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = '_s2w_outbox'"
            ).scalar()
        if not found:
            handle.detach()
            raise CaptureError(
                f"{engine.url.render_as_string(hide_password=True)} has no capture installed "
                "(no _s2w_outbox table); run `sqlite-to-weaviate init` or capture.install() first"
            )
    return handle


def _session_after_begin(session: Session, _transaction: Any, connection: Connection) -> None:
    ctx = session.info.get(_SESSION_KEY)
    if ctx:
        _apply(connection, ctx)


def _apply(connection: Connection, ctx: Mapping[str, Any]) -> None:
    """Write ``ctx`` (merged over what the transaction already carries) as the context row."""
    dbapi = _dbapi(connection)
    row = dbapi.execute("SELECT ctx FROM _s2w_context WHERE id = 1").fetchone()
    merged = json.loads(row[0]) if row and row[0] else {}
    merged.update(ctx)
    write_context(dbapi, merged)
    connection.info[_CTX_WRITTEN] = True


def set_context(target: Session | Connection, **ctx: Any) -> None:
    """Attach context (actor=..., origin=..., correlation_id=...) to a Session or Connection.

    It applies to the transaction in progress (if any) and to every later transaction of that
    Session / Connection object; it does not leak to other sessions or pooled connections.
    Requires :func:`attach` on the engine (its commit hook removes the row before COMMIT).
    """
    if isinstance(target, Session):
        stored = dict(target.info.get(_SESSION_KEY) or {})
        stored.update(ctx)
        target.info[_SESSION_KEY] = stored
        if not event.contains(target, "after_begin", _session_after_begin):
            event.listen(target, "after_begin", _session_after_begin)
        if target.in_transaction():
            # Returns the connection already in the transaction, or begins one (whose
            # after_begin hook then writes the context).
            conn = target.connection()
            _apply(conn, stored)
        return
    if isinstance(target, Connection):
        stored = dict(target.get_execution_options().get(_CTX_OPTION) or {})
        stored.update(ctx)
        target.execution_options(**{_CTX_OPTION: stored})
        if target.in_transaction():
            _apply(target, stored)
        return
    raise CaptureError(f"set_context needs a Session or Connection, got {type(target).__name__}")
