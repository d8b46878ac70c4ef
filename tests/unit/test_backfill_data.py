"""The backfill tests' generated data covers what it claims (tests/support/backfill_data.py)."""

from __future__ import annotations

import sqlite3

from tests.support.backfill_data import LARGE_BYTES, make_db


def test_generated_rows_cover_every_type(tmp_path):
    db = tmp_path / "app.db"
    make_db(db, 5010)
    conn = sqlite3.connect(db)
    types = dict(conn.execute("SELECT 'big', group_concat(DISTINCT typeof(big)) FROM records").fetchall())
    assert conn.execute("SELECT max(abs(big)) FROM records WHERE big > 0").fetchone()[0] > 2**53
    assert conn.execute("SELECT count(*) FROM records WHERE length(body) >= ?", (LARGE_BYTES,)).fetchone()[0] == 2
    assert conn.execute("SELECT count(*) FROM records WHERE typeof(data) = 'blob'").fetchone()[0] > 0
    assert conn.execute("SELECT count(*) FROM records WHERE embedding IS NULL").fetchone()[0] > 0
    assert types["big"] == "integer"
    conn.close()
