"""Unit tests of the pure trigger-SQL generation (no database)."""

from __future__ import annotations

from sqlite_to_weaviate.capture.identifiers import name_stem, quote_ident, quote_literal
from sqlite_to_weaviate.capture.tables import Column, TableInfo, UniqueIndex
from sqlite_to_weaviate.capture.triggers import _any, generate_triggers, trigger_name


def _info(name="t", cols=(("id", "INTEGER", 1, 0), ("v", "", 0, 0)), uniques=()):
    columns = tuple(Column(i, n, t, pk, h) for i, (n, t, pk, h) in enumerate(cols))
    pk = tuple(c.name for c in sorted((c for c in columns if c.pk), key=lambda c: c.pk))
    return TableInfo(name, columns, pk, False, tuple(uniques))


def test_quoting():
    assert quote_ident('we"ird tb') == '"we""ird tb"'
    assert quote_literal("it's") == "'it''s'"


def test_name_stem_plain_and_hashed():
    assert name_stem("messages") == "messages"
    odd = name_stem('we"ird tb')
    assert odd.startswith("h") and len(odd) == 13 and odd.isascii()
    assert name_stem("données") != name_stem("donnees")
    assert trigger_name("order", "ai") == "_s2w_order_ai"


def test_basic_triggers_use_is_not_and_never_rowid():
    trig = {t.name: t.sql for t in generate_triggers(_info())}
    assert set(trig) == {"_s2w_t_ai", "_s2w_t_au", "_s2w_t_ad"}
    for sql in trig.values():
        assert "rowid" not in sql.lower()
        assert "!=" not in sql and "<>" not in sql
    au = trig["_s2w_t_au"]
    assert 'OLD."v" IS NOT NEW."v" COLLATE BINARY' in au
    assert 'typeof(OLD."v") IS NOT typeof(NEW."v")' in au  # untyped column: 1 vs 1.0
    assert 'typeof(OLD."id")' not in au  # INTEGER affinity: no typeof needed
    assert "'D', OLD.\"id\"" in au and "'U', NEW.\"id\"" in au


def test_generated_columns_not_compared():
    info = _info(cols=(("id", "INTEGER", 1, 0), ("v", "INT", 0, 0), ("g", "INT", 0, 2)))
    au = next(t.sql for t in generate_triggers(info) if t.name.endswith("_au"))
    assert '"g"' not in au


def test_skip_noop_off_names_no_columns():
    info = _info(cols=(("id", "INTEGER", 1, 0), ("v", "INT", 0, 0)))
    au = next(t.sql for t in generate_triggers(info, skip_noop_updates=False) if t.name.endswith("_au"))
    assert '"v"' not in au and " WHEN " not in au.split("BEGIN")[0]


def test_unique_index_triggers():
    info = _info(
        cols=(("id", "INTEGER", 1, 0), ("sku", "TEXT", 0, 0), ("x", "", 0, 0)),
        uniques=[
            UniqueIndex("u1", (("sku", "NOCASE"),), False, False),
            UniqueIndex("u2", (), False, True),  # expression index: not mirrored
        ],
    )
    trig = {t.name: t.sql for t in generate_triggers(info)}
    assert "_s2w_t_bi" in trig and "_s2w_t_bu" in trig
    assert '"sku" = NEW."sku" COLLATE "NOCASE"' in trig["_s2w_t_bi"]
    assert 'BEFORE UPDATE OF "sku"' in trig["_s2w_t_bu"]
    assert trig["_s2w_t_bi"].count("INSERT INTO") == 1


def test_any_is_balanced_for_wide_tables():
    expr = _any([f"c{i}" for i in range(1024)])
    depth = max_depth = 0
    for ch in expr:
        depth += ch == "("
        depth -= ch == ")"
        max_depth = max(max_depth, depth)
    assert max_depth <= 11


def test_composite_key_outbox_columns():
    info = _info(cols=(("a", "TEXT", 1, 0), ("b", "BLOB", 2, 0), ("v", "", 0, 0)))
    ai = next(t.sql for t in generate_triggers(info) if t.name.endswith("_ai"))
    assert "_s2w_outbox(tbl, op, k1, k2, ctx)" in ai
    assert 'NEW."a", NEW."b"' in ai
