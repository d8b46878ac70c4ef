"""Schemas as real applications write them, generated here (no downloads), for the real-schema suite.

Each :class:`Schema` knows how to create and fill its tables, how the application changes
them while the sidecar runs (one small write step, called inside the app's transaction),
which mapping overrides it needs (a TOML fragment, documented rules only) and which of
its objects must be skipped, with a word of the reason. Table names never collide across
schemas, so any subset can share one database file.
"""

from __future__ import annotations

import random
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

Build = Callable[[sqlite3.Connection, int, random.Random], None]
#: one write step of the app: (connection inside its transaction, rng, this schema's step number)
Write = Callable[[sqlite3.Connection, random.Random, int], None]


@dataclass(frozen=True)
class Schema:
    key: str  # short id for test names
    name: str
    build: Build
    write: Write
    mapping: str = ""
    #: table -> a word its skip reason must contain (virtual, shadow, view, ...)
    skipped: dict[str, str] = field(default_factory=dict)
    #: run on the application's connection once it is open (ATTACH, pragmas)
    on_connect: Callable[[sqlite3.Connection, Path], None] | None = None
    #: extra checks once everything is applied (the app's own data and features still work)
    check: Callable[[sqlite3.Connection, Path], None] | None = None


def _pick(conn: sqlite3.Connection, sql: str, rng: random.Random) -> tuple | None:
    rows = conn.execute(sql).fetchall()
    return rng.choice(rows) if rows else None


def _script(conn: sqlite3.Connection, sql: str) -> None:
    """Run several statements inside the caller's transaction (``executescript`` would COMMIT it)."""
    statement = ""
    for line in sql.splitlines(keepends=True):
        statement += line
        if sqlite3.complete_statement(statement):
            conn.execute(statement)
            statement = ""
    assert not statement.strip(), statement


def _words(rng: random.Random, n: int) -> str:
    vocabulary = ["alpha", "beta", "gamma", "delta", "river", "stone", "cloud", "ember", "quartz", "maple", "été", "北"]
    return " ".join(rng.choice(vocabulary) for _ in range(n))


# --------------------------------------------------------------------------- 120 tables
MANY = 120


def _many_build(conn: sqlite3.Connection, rows: int, rng: random.Random) -> None:
    per_table = max(2, rows // 10)
    for t in range(MANY):
        conn.execute(f"CREATE TABLE t_{t:03d} (id INTEGER PRIMARY KEY, name TEXT NOT NULL, n INTEGER, note TEXT)")
        conn.executemany(f"INSERT INTO t_{t:03d} (name, n, note) VALUES (?, ?, ?)",
                         [(f"row {i}", i * t, _words(rng, 3)) for i in range(per_table)])


def _many_write(conn: sqlite3.Connection, rng: random.Random, step: int) -> None:
    t = f"t_{rng.randrange(MANY):03d}"
    conn.execute(f"INSERT INTO {t} (name, n, note) VALUES (?, ?, ?)", (f"live {step}", step, _words(rng, 2)))
    row = _pick(conn, f"SELECT id FROM {t}", rng)
    if row is not None:
        if step % 3 == 0:
            conn.execute(f"DELETE FROM {t} WHERE id = ?", row)
        else:
            conn.execute(f"UPDATE {t} SET n = n + 1, note = ? WHERE id = ?", (_words(rng, 2), row[0]))


MANY_TABLES = Schema("many_tables", "120 tables", _many_build, _many_write)


# --------------------------------------------------------------------------- STRICT
def _strict_build(conn: sqlite3.Connection, rows: int, rng: random.Random) -> None:
    conn.execute(
        "CREATE TABLE ledger_entries (id INTEGER PRIMARY KEY, account TEXT NOT NULL, amount_cents INT NOT NULL, "
        "rate REAL, memo TEXT, receipt BLOB, extra ANY) STRICT"
    )
    conn.execute("CREATE TABLE app_settings (name TEXT PRIMARY KEY, value ANY, changed INTEGER) STRICT, WITHOUT ROWID")
    extras = [7, 2.5, "free text", None, "12", -3]
    conn.executemany(
        "INSERT INTO ledger_entries (account, amount_cents, rate, memo, receipt, extra) VALUES (?, ?, ?, ?, ?, ?)",
        [(f"acct-{i % 7}", rng.randrange(-10**6, 10**6), rng.random(), _words(rng, 4),
          rng.randbytes(12) if i % 3 else None, extras[i % len(extras)]) for i in range(rows)],
    )
    conn.executemany("INSERT INTO app_settings VALUES (?, ?, ?)",
                     [(f"setting.{i}", extras[i % len(extras)], i) for i in range(max(4, rows // 4))])


def _strict_write(conn: sqlite3.Connection, rng: random.Random, step: int) -> None:
    value = rng.choice([step, step / 4, f"v{step}", None])
    conn.execute("INSERT INTO ledger_entries (account, amount_cents, rate, memo, receipt, extra) VALUES (?, ?, ?, ?, ?, ?)",
                 ("acct-live", step * 100, None, _words(rng, 2), rng.randbytes(8), value))
    conn.execute("INSERT INTO app_settings VALUES (?, ?, ?) ON CONFLICT(name) DO UPDATE SET value = excluded.value, "
                 "changed = changed + 1", (f"setting.{step % 9}", value, step))
    row = _pick(conn, "SELECT id FROM ledger_entries", rng)
    if row is not None and step % 4 == 0:
        conn.execute("DELETE FROM ledger_entries WHERE id = ?", row)


STRICT = Schema("strict", "STRICT tables", _strict_build, _strict_write)


# --------------------------------------------------------------------------- generated columns
def _generated_build(conn: sqlite3.Connection, rows: int, rng: random.Random) -> None:
    conn.execute(
        "CREATE TABLE order_items (id INTEGER PRIMARY KEY, sku TEXT NOT NULL, unit_price REAL NOT NULL, "
        "quantity INTEGER NOT NULL, "
        "line_total REAL GENERATED ALWAYS AS (unit_price * quantity) STORED, "
        "sku_upper TEXT GENERATED ALWAYS AS (upper(sku)) VIRTUAL, "
        "discounted AS (round(unit_price * quantity * 0.9, 2)))"
    )
    conn.executemany("INSERT INTO order_items (sku, unit_price, quantity) VALUES (?, ?, ?)",
                     [(f"sku-{i}", round(rng.uniform(0.5, 90), 2), rng.randrange(1, 20)) for i in range(rows)])


def _generated_write(conn: sqlite3.Connection, rng: random.Random, step: int) -> None:
    conn.execute("INSERT INTO order_items (sku, unit_price, quantity) VALUES (?, ?, ?)",
                 (f"live-{step}", round(rng.uniform(0.5, 90), 2), rng.randrange(1, 20)))
    row = _pick(conn, "SELECT id FROM order_items", rng)
    if row is not None:
        if step % 5 == 0:
            conn.execute("DELETE FROM order_items WHERE id = ?", row)
        else:  # changes only writable columns; the generated ones follow
            conn.execute("UPDATE order_items SET quantity = quantity + 1, sku = sku || 'x' WHERE id = ?", row)


GENERATED = Schema("generated", "generated columns", _generated_build, _generated_write)


# --------------------------------------------------------------------------- FTS5
FTS_TRIGGERS = """
CREATE TRIGGER articles_ai AFTER INSERT ON articles BEGIN
  INSERT INTO articles_fts(rowid, title, body) VALUES (new.id, new.title, new.body);
END;
CREATE TRIGGER articles_ad AFTER DELETE ON articles BEGIN
  INSERT INTO articles_fts(articles_fts, rowid, title, body) VALUES ('delete', old.id, old.title, old.body);
END;
CREATE TRIGGER articles_au AFTER UPDATE ON articles BEGIN
  INSERT INTO articles_fts(articles_fts, rowid, title, body) VALUES ('delete', old.id, old.title, old.body);
  INSERT INTO articles_fts(rowid, title, body) VALUES (new.id, new.title, new.body);
END;
"""


def _fts_build(conn: sqlite3.Connection, rows: int, rng: random.Random) -> None:
    conn.execute("CREATE TABLE articles (id INTEGER PRIMARY KEY, title TEXT NOT NULL, body TEXT, published_at TEXT)")
    conn.execute("CREATE VIRTUAL TABLE articles_fts USING fts5(title, body, content='articles', content_rowid='id')")
    _script(conn, FTS_TRIGGERS)
    conn.execute("CREATE VIRTUAL TABLE search_terms USING fts5(term, note)")  # its own content shadow table
    conn.executemany("INSERT INTO articles (title, body, published_at) VALUES (?, ?, ?)",
                     [(f"article {i} {_words(rng, 2)}", _words(rng, 12), f"2024-02-{1 + i % 28:02d}")
                      for i in range(rows)])
    conn.executemany("INSERT INTO search_terms VALUES (?, ?)", [(_words(rng, 1), _words(rng, 3)) for _ in range(rows)])


def _fts_write(conn: sqlite3.Connection, rng: random.Random, step: int) -> None:
    conn.execute("INSERT INTO articles (title, body, published_at) VALUES (?, ?, ?)",
                 (f"live article {step}", _words(rng, 10), "2024-06-01"))
    conn.execute("INSERT INTO search_terms VALUES (?, ?)", (f"live{step}", _words(rng, 2)))
    row = _pick(conn, "SELECT id FROM articles", rng)
    if row is not None:
        if step % 4 == 0:
            conn.execute("DELETE FROM articles WHERE id = ?", row)
        else:
            conn.execute("UPDATE articles SET body = ? WHERE id = ?", (_words(rng, 8), row[0]))


def _fts_check(conn: sqlite3.Connection, _: Path) -> None:
    """The app's full-text index still agrees with its table."""
    conn.execute("INSERT INTO articles_fts(articles_fts) VALUES ('integrity-check')")
    conn.execute("INSERT INTO search_terms(search_terms) VALUES ('integrity-check')")
    live = conn.execute("SELECT count(*) FROM articles WHERE title LIKE 'live article %'").fetchone()[0]
    found = conn.execute("SELECT count(*) FROM articles_fts WHERE articles_fts MATCH 'title:live'").fetchone()[0]
    assert live == found, (live, found)


FTS = Schema(
    "fts5", "FTS5 virtual table with shadow tables", _fts_build, _fts_write, check=_fts_check,
    skipped={"articles_fts": "virtual", "articles_fts_data": "shadow", "articles_fts_idx": "shadow",
             "articles_fts_docsize": "shadow", "articles_fts_config": "shadow", "search_terms": "virtual",
             "search_terms_content": "shadow", "search_terms_data": "shadow", "search_terms_idx": "shadow",
             "search_terms_docsize": "shadow", "search_terms_config": "shadow"},
)


# --------------------------------------------------------------------------- views
def _views_build(conn: sqlite3.Connection, rows: int, rng: random.Random) -> None:
    _script(conn, """
        CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT NOT NULL, country TEXT, active BOOLEAN NOT NULL);
        CREATE VIEW active_customers AS SELECT id, name, country FROM customers WHERE active;
        CREATE VIEW customers_per_country AS SELECT country, count(*) AS n FROM customers GROUP BY country;
        CREATE TRIGGER active_customers_insert INSTEAD OF INSERT ON active_customers BEGIN
          INSERT INTO customers (name, country, active) VALUES (new.name, new.country, 1);
        END;
    """)
    conn.executemany("INSERT INTO customers (name, country, active) VALUES (?, ?, ?)",
                     [(f"customer {i}", rng.choice(["FR", "DE", "JP", None]), i % 3 != 0) for i in range(rows)])


def _views_write(conn: sqlite3.Connection, rng: random.Random, step: int) -> None:
    conn.execute("INSERT INTO active_customers (name, country) VALUES (?, ?)", (f"live {step}", "FR"))  # via the view
    row = _pick(conn, "SELECT id FROM customers", rng)
    if row is not None:
        conn.execute("UPDATE customers SET active = NOT active WHERE id = ?", row)


VIEWS = Schema("views", "views", _views_build, _views_write,
               skipped={"active_customers": "view", "customers_per_country": "view"})


# --------------------------------------------------------------------------- self-referencing FK
def _self_fk_build(conn: sqlite3.Connection, rows: int, rng: random.Random) -> None:
    _script(conn, """
        CREATE TABLE employees (id INTEGER PRIMARY KEY, name TEXT NOT NULL,
          manager_id INTEGER REFERENCES employees(id) ON DELETE SET NULL, hired_on DATE);
        CREATE TABLE categories (id INTEGER PRIMARY KEY, name TEXT NOT NULL,
          parent_id INTEGER REFERENCES categories(id) ON DELETE CASCADE ON UPDATE CASCADE);
    """)
    for i in range(1, rows + 1):
        manager = rng.randrange(1, i) if i > 1 else None
        conn.execute("INSERT INTO employees VALUES (?, ?, ?, ?)", (i, f"employee {i}", manager, f"2020-01-{1 + i % 28:02d}"))
        parent = rng.randrange(1, i) if i > 3 else None
        conn.execute("INSERT INTO categories VALUES (?, ?, ?)", (i, f"category {i}", parent))


def _self_fk_write(conn: sqlite3.Connection, rng: random.Random, step: int) -> None:
    manager = _pick(conn, "SELECT id FROM employees", rng)
    conn.execute("INSERT INTO employees (name, manager_id, hired_on) VALUES (?, ?, '2024-05-01')",
                 (f"hire {step}", manager[0] if manager else None))
    parent = _pick(conn, "SELECT id FROM categories", rng)
    conn.execute("INSERT INTO categories (name, parent_id) VALUES (?, ?)", (f"live {step}", parent[0] if parent else None))
    if step % 5 == 0:  # cascades: reports lose their manager, a whole subtree of categories goes
        victim = _pick(conn, "SELECT id FROM employees WHERE id IN (SELECT manager_id FROM employees)", rng)
        if victim is not None:
            conn.execute("DELETE FROM employees WHERE id = ?", victim)
        victim = _pick(conn, "SELECT id FROM categories WHERE id IN (SELECT parent_id FROM categories)", rng)
        if victim is not None and step % 10 == 0:
            conn.execute("DELETE FROM categories WHERE id = ?", victim)
    elif step % 5 == 1:  # a parent's key changes: ON UPDATE CASCADE rewrites its children's parent_id
        parent = _pick(conn, "SELECT id FROM categories WHERE id IN (SELECT parent_id FROM categories)", rng)
        if parent is not None:
            conn.execute("UPDATE categories SET id = (SELECT max(id) + 1 FROM categories) WHERE id = ?", parent)
    elif manager is not None:
        conn.execute("UPDATE employees SET manager_id = (SELECT max(id) FROM employees WHERE id < ?) WHERE id = ?",
                     (manager[0], manager[0]))


SELF_FK = Schema(
    "self_fk", "self-referencing foreign keys", _self_fk_build, _self_fk_write,
    on_connect=lambda conn, _: conn.execute("PRAGMA foreign_keys = ON"),
    mapping="""
[[tables.employees.references]]
column = "manager_id"
property = "manager"
target = "employees"

[[tables.categories.references]]
column = "parent_id"
property = "parent"
target = "categories"
""",
)


# --------------------------------------------------------------------------- WITHOUT ROWID, composite TEXT key
def _without_rowid_build(conn: sqlite3.Connection, rows: int, rng: random.Random) -> None:
    conn.execute(
        "CREATE TABLE translations (locale TEXT NOT NULL, msg_key TEXT NOT NULL COLLATE NOCASE, value TEXT, "
        "updated_at DATETIME DEFAULT CURRENT_TIMESTAMP, PRIMARY KEY (locale, msg_key)) WITHOUT ROWID"
    )
    locales = ["en", "fr-FR", "pt BR", "日本"]
    conn.executemany("INSERT INTO translations (locale, msg_key, value) VALUES (?, ?, ?)",
                     [(locales[i % 4], f"Screen {i // 4}.Title é", _words(rng, 3)) for i in range(rows)])


def _without_rowid_write(conn: sqlite3.Connection, rng: random.Random, step: int) -> None:
    conn.execute("INSERT OR REPLACE INTO translations (locale, msg_key, value) VALUES (?, ?, ?)",
                 (rng.choice(["en", "fr-FR"]), f"Live {step % 17}", _words(rng, 2)))
    row = _pick(conn, "SELECT locale, msg_key FROM translations", rng)
    if row is None:
        return
    if step % 5 == 0:
        conn.execute("DELETE FROM translations WHERE locale = ? AND msg_key = ?", row)
    elif step % 5 == 1:  # a key change: delete of the old key, upsert of the new one
        conn.execute("UPDATE OR IGNORE translations SET msg_key = msg_key || ' v2' WHERE locale = ? AND msg_key = ?", row)
    elif step % 5 == 2:  # a case-only key change under NOCASE: a different key to us (binary), the same to SQLite
        conn.execute("UPDATE translations SET msg_key = upper(msg_key) WHERE locale = ? AND msg_key = ?", row)
    else:
        conn.execute("UPDATE translations SET value = ?, updated_at = CURRENT_TIMESTAMP WHERE locale = ? AND msg_key = ?",
                     (_words(rng, 3), *row))


WITHOUT_ROWID = Schema("without_rowid", "WITHOUT ROWID with a composite TEXT key", _without_rowid_build, _without_rowid_write)


# --------------------------------------------------------------------------- NUMERIC / DECIMAL
def _numeric_build(conn: sqlite3.Connection, rows: int, rng: random.Random) -> None:
    conn.execute(
        "CREATE TABLE invoice_lines (id INTEGER PRIMARY KEY, unit_price NUMERIC(10,2) NOT NULL, quantity DECIMAL NOT NULL, "
        "discount DECIMAL(5,2), tax_rate NUMERIC, amount_as_entered NUMERIC)"
    )
    prices = [0.99, 1, "12.50", 3, " 7.25 ", "1e3", 1999.5]       # numeric text is converted by the affinity
    entered = [12, 12.5, "N/A", "12,50", "0012", None, "-", "3.0"]  # so is "0012"; "N/A", "12,50", "-" stay text
    conn.executemany(
        "INSERT INTO invoice_lines (unit_price, quantity, discount, tax_rate, amount_as_entered) VALUES (?, ?, ?, ?, ?)",
        [(prices[i % len(prices)], rng.randrange(1, 50), rng.choice([None, 0.1, 5, "2.5"]), rng.choice([0.2, 0.055, 0]),
          entered[i % len(entered)]) for i in range(rows)],
    )


def _numeric_write(conn: sqlite3.Connection, rng: random.Random, step: int) -> None:
    conn.execute("INSERT INTO invoice_lines (unit_price, quantity, discount, tax_rate, amount_as_entered) "
                 "VALUES (?, ?, ?, ?, ?)", (rng.choice([4, 4.5, "4.75"]), step % 9 + 1, None, 0.2,
                                            rng.choice([step, step / 8, f"approx {step}"])))
    row = _pick(conn, "SELECT id FROM invoice_lines", rng)
    if row is not None:
        conn.execute("UPDATE invoice_lines SET quantity = quantity + 1, amount_as_entered = ? WHERE id = ?",
                     (rng.choice([1, "1.5", "n/a"]), row[0]))


NUMERIC = Schema(
    "numeric", "NUMERIC/DECIMAL affinities holding integers, reals and text", _numeric_build, _numeric_write,
    mapping="""
[tables.invoice_lines.columns.amount_as_entered]
type = "text"   # holds text as well as numbers: text keeps each value exactly
""",
)


# --------------------------------------------------------------------------- DATETIME
def _datetime_build(conn: sqlite3.Connection, rows: int, rng: random.Random) -> None:
    conn.execute(
        "CREATE TABLE events (id INTEGER PRIMARY KEY, name TEXT, occurred_at DATETIME, logged_at_ms DATETIME, "
        "created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP, day DATE)"
    )
    occurred = ["2024-03-01 10:00:00", "2024-03-01T10:00:00Z", "2024-03-01T10:00:00.123+02:00", "2024-03-01",
                1709287200, 1709287200.5, "1709287200", None]  # "1709287200" becomes an integer (NUMERIC affinity)
    conn.executemany(
        "INSERT INTO events (name, occurred_at, logged_at_ms, day) VALUES (?, ?, ?, ?)",
        [(f"event {i}", occurred[i % len(occurred)], 1709287200123 + i * 1000, f"2024-03-{1 + i % 28:02d}")
         for i in range(rows)],
    )


def _datetime_write(conn: sqlite3.Connection, rng: random.Random, step: int) -> None:
    conn.execute("INSERT INTO events (name, occurred_at, logged_at_ms, day) VALUES (?, ?, ?, date('now'))",
                 (f"live {step}", rng.choice(["2024-07-01 08:30:00", 1719822600, "2024-07-01T08:30:00.5-05:00"]),
                  1719822600000 + step))
    row = _pick(conn, "SELECT id FROM events", rng)
    if row is not None:
        conn.execute("UPDATE events SET occurred_at = unixepoch('now'), logged_at_ms = ? WHERE id = ?",
                     (1719822600000 + step * 7, row[0]))


DATETIMES = Schema(
    "datetime", "DATETIME as text, unix seconds and unix milliseconds", _datetime_build, _datetime_write,
    mapping="""
[tables.events.columns.logged_at_ms]
date_unit = "ms"
""",
)


# --------------------------------------------------------------------------- awkward names
def _names_build(conn: sqlite3.Connection, rows: int, rng: random.Random) -> None:
    _script(conn, """
        CREATE TABLE "Order Details" ("Order ID" INTEGER NOT NULL, "Product ID" INTEGER NOT NULL,
          "Unit Price" NUMERIC, "Quantity" INTEGER, "Select" TEXT, "group" TEXT,
          PRIMARY KEY ("Order ID", "Product ID"));
        CREATE TABLE "select" ("from" TEXT PRIMARY KEY, "where" INTEGER, "Table" TEXT, "ORDER" REAL);
        CREATE TABLE "MixedCase_Table" ("MixedCaseID" INTEGER PRIMARY KEY, "camelCaseValue" TEXT,
          "UPPER_VALUE" TEXT, "id" TEXT, "vector" TEXT, "user name" TEXT);
    """)
    conn.executemany('INSERT INTO "Order Details" VALUES (?, ?, ?, ?, ?, ?)',
                     [(i // 3, i % 3, round(rng.uniform(1, 50), 2), i, _words(rng, 1), "g") for i in range(rows)])
    conn.executemany('INSERT INTO "select" VALUES (?, ?, ?, ?)',
                     [(f"from {i}", i, _words(rng, 2), i / 3) for i in range(rows)])
    conn.executemany('INSERT INTO "MixedCase_Table" VALUES (?, ?, ?, ?, ?, ?)',
                     [(i, f"v{i}", f"V{i}", f"id-{i}", "not a vector", "Ann O'Neil") for i in range(rows)])


def _names_write(conn: sqlite3.Connection, rng: random.Random, step: int) -> None:
    conn.execute('INSERT OR REPLACE INTO "Order Details" VALUES (?, ?, ?, ?, ?, ?)',
                 (1000 + step // 2, step % 2, 9.5, step, "live", None))
    conn.execute('UPDATE "select" SET "where" = "where" + 1, "ORDER" = ? WHERE "from" = ?', (step / 7, f"from {step % 5}"))
    conn.execute('INSERT INTO "MixedCase_Table" ("camelCaseValue", "UPPER_VALUE", "id") VALUES (?, ?, ?)',
                 (f"live {step}", "LIVE", f"live-{step}"))
    row = _pick(conn, 'SELECT "MixedCaseID" FROM "MixedCase_Table"', rng)
    if row is not None and step % 3 == 0:
        conn.execute('DELETE FROM "MixedCase_Table" WHERE "MixedCaseID" = ?', row)
    elif row is not None:  # SQLite names are case-insensitive: the app need not spell them as declared
        conn.execute('UPDATE mixedcase_table SET camelcasevalue = ?, "USER NAME" = \'x\' WHERE mixedcaseid = ?',
                     (f"edited {step}", row[0]))


NAMES = Schema("names", "mixed case, spaces and reserved words in names", _names_build, _names_write)


# --------------------------------------------------------------------------- ATTACHed schema
def _attached_build(conn: sqlite3.Connection, rows: int, rng: random.Random) -> None:
    conn.execute("CREATE TABLE sessions (id TEXT PRIMARY KEY, user_name TEXT NOT NULL, started_at DATETIME)")
    conn.executemany("INSERT INTO sessions VALUES (?, ?, ?)",
                     [(f"s{i}", f"user {i % 5}", f"2024-04-{1 + i % 28:02d} 09:00:00") for i in range(rows)])


def attached_path(db_dir: Path) -> Path:
    return db_dir / "analytics.db"


def _attached_connect(conn: sqlite3.Connection, db_dir: Path) -> None:
    """The app keeps a second database ATTACHed; it has a table named like one of main's."""
    conn.execute("ATTACH DATABASE ? AS analytics", (str(attached_path(db_dir)),))
    conn.execute("CREATE TABLE IF NOT EXISTS analytics.sessions (id TEXT PRIMARY KEY, hits INTEGER)")
    conn.execute("CREATE TABLE IF NOT EXISTS analytics.page_views (id INTEGER PRIMARY KEY, session_id TEXT, path TEXT)")


def _attached_write(conn: sqlite3.Connection, rng: random.Random, step: int) -> None:
    # one transaction spans both schemas; only main's change may reach the outbox
    conn.execute("INSERT OR REPLACE INTO main.sessions VALUES (?, ?, datetime('now'))", (f"live{step % 13}", f"user {step}"))
    conn.execute("INSERT INTO analytics.page_views (session_id, path) VALUES (?, ?)", (f"s{step % 7}", f"/p/{step}"))
    conn.execute("INSERT INTO analytics.sessions VALUES (?, 1) ON CONFLICT(id) DO UPDATE SET hits = hits + 1",
                 (f"s{step % 7}",))


def _attached_check(conn: sqlite3.Connection, db_dir: Path) -> None:
    other = sqlite3.connect(attached_path(db_dir))
    try:
        assert other.execute("SELECT count(*) FROM page_views").fetchone()[0] > 0
        tool = other.execute("SELECT count(*) FROM sqlite_master WHERE name LIKE '\\_s2w\\_%' ESCAPE '\\'").fetchone()[0]
        assert tool == 0, "capture must never touch an attached database"
    finally:
        other.close()


ATTACHED = Schema("attached", "an ATTACHed second schema in the app's connection", _attached_build, _attached_write,
                  on_connect=_attached_connect, check=_attached_check)


# --------------------------------------------------------------------------- names near Weaviate's limits
#: 242 characters; its collection name is 209 (underscores drop out), 218 with a test prefix (limit 255).
LONG_TABLE = "quarterly_revenue_breakdown_by_sales_region_" * 5 + "and_product_line_"
#: property names past Weaviate's 231 characters (279 and 271 derived): shortened
#: deterministically, and the two stay distinct although they share their first 318 characters
LONG_COLUMN = "measurement_taken_at_the_end_of_the_reporting_period_" * 6 + "in_local_currency"
LONG_COLUMN_2 = "measurement_taken_at_the_end_of_the_reporting_period_" * 6 + "in_euros"


def _long_build(conn: sqlite3.Connection, rows: int, rng: random.Random) -> None:
    conn.execute(f'CREATE TABLE "{LONG_TABLE}" (id INTEGER PRIMARY KEY, "{LONG_COLUMN}" REAL, "{LONG_COLUMN_2}" REAL, '
                 "label TEXT)")
    conn.executemany(f'INSERT INTO "{LONG_TABLE}" VALUES (?, ?, ?, ?)',
                     [(i, i * 1.5, i * 1.25, f"label {i}") for i in range(rows)])


def _long_write(conn: sqlite3.Connection, rng: random.Random, step: int) -> None:
    conn.execute(f'INSERT INTO "{LONG_TABLE}" ("{LONG_COLUMN}", label) VALUES (?, ?)', (step / 3, f"live {step}"))
    conn.execute(f'UPDATE "{LONG_TABLE}" SET "{LONG_COLUMN_2}" = ? WHERE id = ?', (step * 2.0, step % 10))


LONG_NAMES = Schema("long_names", "names past Weaviate's length limits", _long_build, _long_write)


ALL = (MANY_TABLES, STRICT, GENERATED, FTS, VIEWS, SELF_FK, WITHOUT_ROWID, NUMERIC, DATETIMES, NAMES, ATTACHED,
       LONG_NAMES)


def build_database(path: Path, schemas: tuple[Schema, ...], rows: int, seed: int = 1) -> Path:
    """Create ``path`` (WAL) holding every schema, ``rows`` rows per main table; return the mapping file."""
    rng = random.Random(seed)
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("BEGIN")
        for schema in schemas:
            schema.build(conn, rows, rng)
        conn.execute("COMMIT")
    finally:
        conn.close()
    mapping = path.with_suffix(".mapping.toml")
    mapping.write_text("\n".join(s.mapping for s in schemas if s.mapping))
    return mapping


def open_app_connection(path: Path, schemas: tuple[Schema, ...]) -> sqlite3.Connection:
    """The application's connection: autocommit (it issues BEGIN IMMEDIATE itself), its own ATTACHes."""
    conn = sqlite3.connect(path, isolation_level=None, timeout=30, check_same_thread=False)
    for schema in schemas:
        if schema.on_connect is not None:
            schema.on_connect(conn, path.parent)
    return conn
