"""Explicit write transactions on a stdlib sqlite3 connection.

The sqlite3 module (Python 3.11) opens transactions implicitly and DEFERRED, which upgrade to
a write lock with no busy wait. Capture's own writes (install, repair, enqueue) instead use
``BEGIN IMMEDIATE`` in autocommit mode, restoring the caller's ``isolation_level`` afterwards.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

from sqlite_to_weaviate.errors import S2WError


class TransactionError(S2WError):
    """A write that must be atomic was asked for inside someone else's open transaction."""


@contextmanager
def immediate(conn: sqlite3.Connection, *, join: bool = False) -> Iterator[sqlite3.Connection]:
    """Run the block inside ``BEGIN IMMEDIATE`` ... ``COMMIT`` (``ROLLBACK`` on any exception).

    If the connection already has an open transaction: with ``join=True`` the block simply runs
    inside it (the caller commits); otherwise this raises, because atomicity could not be promised.
    """
    if conn.in_transaction:
        if join:
            yield conn
            return
        raise TransactionError(
            "the connection has an open transaction; commit or roll it back first "
            "(capture needs its own BEGIN IMMEDIATE transaction to be atomic)"
        )
    saved = conn.isolation_level
    conn.isolation_level = None
    try:
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
    finally:
        conn.isolation_level = saved
