"""Pure parts of verify: the merge-join classifier, field comparison rules, report exit codes."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import pytest

from sqlite_to_weaviate.mapping import DataType, encode_vector, parse_mapping_config, reflect_mapping
from sqlite_to_weaviate.verify import (
    EXIT_CLEAN, EXIT_DIFFERENCES, EXIT_ERROR, EXIT_REPAIRED, Entry, Kind, OrderError, TableReport, VerifyReport,
    compare_object, merge_join,
)
from sqlite_to_weaviate.verify.fields import normalise, parse_date, vectors_equal


def u(n: int) -> bytes:
    return n.to_bytes(16, "big")


def classify(source, target):
    return [(d.kind, int.from_bytes(d.uuid, "big")) for d in merge_join(source, target)]


class TestMergeJoin:
    def test_all_kinds(self):
        source = [(u(1), "a"), (u(2), "b"), (u(4), "d"), (u(6), "f")]
        target = [(u(2), "b"), (u(3), "c"), (u(4), "X"), (u(7), "g")]
        assert classify(source, target) == [
            (Kind.MISSING, 1), (Kind.EXTRA, 3), (Kind.STALE, 4), (Kind.MISSING, 6), (Kind.EXTRA, 7),
        ]

    def test_empty_sides(self):
        assert classify([], []) == []
        assert classify([(u(1), "a")], []) == [(Kind.MISSING, 1)]
        assert classify([], [(u(1), "a")]) == [(Kind.EXTRA, 1)]

    def test_equal_streams_yield_nothing_and_count_matches(self):
        items = [(u(i), str(i)) for i in range(100)]
        matched = []
        assert list(merge_join(items, items, on_match=matched.append)) == []
        assert len(matched) == 100

    def test_object_without_hash_is_stale(self):
        d = next(merge_join([(u(1), "h")], [(u(1), "")]))
        assert (d.kind, d.source_hash, d.target_hash) == (Kind.STALE, "h", "")

    @pytest.mark.parametrize("side", ["source", "target"])
    def test_out_of_order_input_fails_loudly(self, side):
        bad = [(u(2), "a"), (u(1), "b")]
        good = [(u(1), "b"), (u(2), "a")]
        with pytest.raises(OrderError, match="ascending"):
            list(merge_join(bad, good) if side == "source" else merge_join(good, bad))

    def test_duplicates_are_an_order_error(self):
        with pytest.raises(OrderError):
            list(merge_join([(u(1), "a"), (u(1), "a")], []))

    def test_uuid_text_order_equals_byte_order(self):
        ids = [uuid.uuid4() for _ in range(2000)]
        assert sorted(ids, key=lambda x: str(x)) == sorted(ids, key=lambda x: x.bytes)

    def test_streams_lazily(self):
        def endless(start):
            n = start
            while True:
                yield u(n), "h"
                n += 2
        gen = merge_join(endless(0), endless(1))
        assert [next(gen).kind for _ in range(4)] == [Kind.MISSING, Kind.EXTRA, Kind.MISSING, Kind.EXTRA]


def table_mapping(extra_toml: str = ""):
    import sqlite3

    conn = sqlite3.connect(":memory:")
    conn.executescript(
        "CREATE TABLE owners (id INTEGER PRIMARY KEY);"
        "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT, qty INTEGER, price REAL, active BOOLEAN,"
        " created_at TIMESTAMP, data BLOB, emb BLOB, owner_id INTEGER, meta TEXT)"
    )
    config = parse_mapping_config(
        '[tables.items]\nvector_column = "emb"\n[tables.items.columns.meta]\ntype = "object"\nnested = { at = "date", n = "int" }\n'
        '[[tables.items.references]]\ncolumn = "owner_id"\nproperty = "owner"\ntarget = "owners"\n' + extra_toml
    )
    return reflect_mapping(conn, config).table("items")


ROW = {"id": 1, "name": "n", "qty": 3, "price": 2.5, "active": 1, "created_at": "2024-01-02 03:04:05.123456789+02:00",
       "data": b"\x00\xff", "emb": encode_vector([0.1, 0.2]), "owner_id": 4, "meta": '{"at": "2024-01-01", "n": 2}'}


def stored(tm, **changes):
    """What Weaviate returns for ROW: dates as datetime, ints possibly as float, float32 vector."""
    obj = tm.to_object(ROW)
    props = dict(obj.properties)
    props["createdAt" if "createdAt" in props else "created_at"] = datetime(2024, 1, 2, 1, 4, 5, 123456, tzinfo=timezone.utc)
    props.update(changes)
    refs = {k: set(v) for k, v in obj.references.items()}
    return obj, props, list(obj.vector), refs


class TestFieldComparison:
    def test_identical_object_after_normalising(self):
        tm = table_mapping()
        obj, props, vector, refs = stored(tm)
        assert compare_object(tm, obj, props, vector, refs) == []

    def test_each_field_kind_is_reported(self):
        tm = table_mapping()
        name = tm.column("name").property
        obj, props, vector, refs = stored(tm, **{name: "other"})
        vector[0] += 0.01
        refs = {k: {str(uuid.uuid4())} for k in refs}
        diffs = {d.field for d in compare_object(tm, obj, props, vector, refs)}
        assert diffs == {name, "vector", "reference:owner"}

    def test_absent_property_equals_none(self):
        tm = table_mapping()
        row = dict(ROW, name=None)
        obj = tm.to_object(row)
        props = dict(obj.properties)
        props[tm.column("name").property] = None
        assert compare_object(tm, obj, props, list(obj.vector), {k: set(v) for k, v in obj.references.items()}) == []

    def test_missing_vector_and_missing_reference(self):
        tm = table_mapping()
        obj, props, _, _ = stored(tm)
        assert {d.field for d in compare_object(tm, obj, props, None, {})} == {"vector", "reference:owner"}

    def test_migration_timestamp_is_ignored(self):
        tm = table_mapping('[tables.items.metadata]\nmigration_timestamp = "migratedAt"\noriginal_id = "originalId"\n')
        obj, props, vector, refs = stored(tm, migratedAt=datetime(2030, 1, 1, tzinfo=timezone.utc))
        assert compare_object(tm, obj, props, vector, refs) == []
        props["originalId"] = "2"
        assert [d.field for d in compare_object(tm, obj, props, vector, refs)] == ["originalId"]

    def test_normalise_rules(self):
        assert normalise(3, DataType.INT) == normalise(3.0, DataType.INT)
        assert normalise("2024-01-02T03:04:05Z", DataType.DATE) == datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
        assert normalise("2024-01-02T03:04:05.1234567Z", DataType.DATE) == parse_date(
            datetime(2024, 1, 2, 3, 4, 5, 123456, tzinfo=timezone.utc))
        assert parse_date(datetime(2024, 1, 2, 5, tzinfo=timezone(timedelta(hours=2)))) == datetime(2024, 1, 2, 3, tzinfo=timezone.utc)
        assert normalise({"at": "2024-01-01T00:00:00Z", "x": None}, DataType.OBJECT, {"at": DataType.DATE}) == {
            "at": datetime(2024, 1, 1, tzinfo=timezone.utc)}
        assert normalise(True, DataType.INT) is True  # a boolean is not a number

    def test_vectors_equal_within_float32(self):
        assert vectors_equal([0.1, 0.2], [0.1 + 1e-9, 0.2])
        assert not vectors_equal([0.1, 0.2], [0.1, 0.2, 0.3])
        assert not vectors_equal([0.1], [0.1001])
        assert vectors_equal(None, None) and not vectors_equal([0.1], None)


class TestReport:
    def report(self, **kinds) -> VerifyReport:
        t = TableReport("items", "Items")
        for kind, n in kinds.items():
            for i in range(n):
                getattr(t, kind).add(Entry(str(i)))
        return VerifyReport(tables={"items": t})

    def test_exit_codes(self):
        assert self.report().exit_code() == EXIT_CLEAN
        assert self.report(missing=1).exit_code() == EXIT_DIFFERENCES
        repaired = self.report(stale=2)
        repaired.repair = True
        assert repaired.exit_code() == EXIT_REPAIRED
        repaired.tables["items"].repair_failed.add(Entry("x"))
        assert repaired.exit_code() == EXIT_DIFFERENCES
        assert self.report(unsettled=1).exit_code() == EXIT_ERROR
        assert VerifyReport(error="boom").exit_code() == EXIT_ERROR

    def test_refused_rows_are_differences_unless_allowed(self):
        refused = self.report(refused=3)
        assert refused.exit_code() == EXIT_DIFFERENCES and not refused.clean
        assert refused.differences == refused.refused == 3 and refused.repairable == 0
        assert "DIFFERENCES FOUND: 3 refused row(s) not in Weaviate" in refused.render()
        refused.allow_refused = True
        assert refused.exit_code() == EXIT_CLEAN and not refused.clean  # accepted, never "clean"
        assert "clean except 3 refused row(s) not in Weaviate, accepted (--allow-refused)" in refused.render()
        assert refused.to_json()["refused"] == 3 and refused.to_json()["tables"]["items"]["refused"]["total"] == 3
        # --repair cannot write a refused row: exit 1 (not 2) unless they are allowed
        mixed = self.report(refused=1, stale=2)
        mixed.repair = True
        assert mixed.exit_code() == EXIT_DIFFERENCES
        mixed.allow_refused = True
        assert mixed.exit_code() == EXIT_REPAIRED

    def test_lists_are_capped_totals_exact(self):
        report = self.report(extra=250)
        data = report.to_json()
        assert data["tables"]["items"]["extra"]["total"] == 250
        assert len(data["tables"]["items"]["extra"]["items"]) == 100
        assert data["differences"] == 250 and data["clean"] is False
        assert "... 245 more" in report.render()


class TestIndexCheckOfTheHashStream:
    """The cursor's pages are looked up through the index while the cursor reads on; the
    stream must still come out in cursor order, every object once, the unfindable marked."""

    class FakeHandle:
        """Stands in for a collection handle: a cursor over ``n`` objects, an index missing some."""

        def __init__(self, n: int, unindexed: set[int]) -> None:
            import threading
            import time as time_mod
            from types import SimpleNamespace

            self.objects = [SimpleNamespace(uuid=uuid.UUID(int=i), properties={"s2wContentHash": f"h{i}"})
                            for i in range(n)]
            self.unindexed = {uuid.UUID(int=i) for i in unindexed}
            self.lookups_at_once = self.busy = 0
            lock = threading.Lock()
            handle = self

            class Query:
                def fetch_objects(self, *, filters, limit, return_properties):
                    with lock:
                        handle.busy += 1
                        handle.lookups_at_once = max(handle.lookups_at_once, handle.busy)
                    time_mod.sleep(0.01)  # the server's work: the cursor reads on meanwhile
                    with lock:
                        handle.busy -= 1
                    value = filters.value
                    wanted = value if isinstance(value, list) else [value]
                    found = [w for w in map(uuid.UUID, map(str, wanted)) if w not in handle.unindexed]
                    return SimpleNamespace(objects=[SimpleNamespace(uuid=f) for f in found])

            self.query = Query()

        def iterator(self, *, return_properties, cache_size):
            return iter(self.objects)

    def test_order_every_object_once_and_the_unfindable_marked(self, monkeypatch):
        from sqlite_to_weaviate.verify import target

        monkeypatch.setattr(target, "ITERATOR_PAGE", 10)
        handle = self.FakeHandle(95, unindexed={3, 47, 94})
        got = list(target._hash_stream(handle))
        assert [int.from_bytes(u_, "big") for u_, _ in got] == list(range(95))
        marked = {int.from_bytes(u_, "big") for u_, h in got if h.startswith(target.UNINDEXED)}
        assert marked == {3, 47, 94}
        assert all(h.endswith(f"h{int.from_bytes(u_, 'big')}") for u_, h in got)
        assert handle.lookups_at_once >= 2  # the index lookups overlap


class TestObjectPagesReadsRepliesAsUntrusted:
    """``verify.object_pages`` on hand-made replies: short ids padded, long ids and a cursor
    that does not move refused, a missing or non-text hash read as "" (reported stale)."""

    @staticmethod
    def pages(replies):
        from types import SimpleNamespace

        from sqlite_to_weaviate.verify.object_pages import ObjectPages

        answers = iter(replies)

        def result(raw_id: bytes, hash_=None):
            fields = {} if hash_ is None else {"s2wContentHash": SimpleNamespace(text_value=hash_)}
            return SimpleNamespace(metadata=SimpleNamespace(id_as_bytes=raw_id, id=""),
                                   properties=SimpleNamespace(non_ref_props=SimpleNamespace(fields=fields)))

        builder = SimpleNamespace(get=lambda **fields: fields)
        connection = SimpleNamespace(grpc_search=lambda request: SimpleNamespace(
            results=[result(*r) for r in next(answers)]))
        query = SimpleNamespace(_query=builder, _connection=connection,
                                _parse_return_metadata=lambda m, v: "meta", _parse_return_properties=lambda p: p)
        return ObjectPages(SimpleNamespace(query=query), page_size=2, filter_limit=10)

    def test_short_ids_padded_and_missing_hash_empty(self):
        pages = self.pages([[(b"\x01", "h1"), (b"\x02\x00",)], []])
        assert pages.fast
        assert list(pages.cursor()) == [[(bytes(15) + b"\x01", "h1"), (bytes(14) + b"\x02\x00", "")]]

    def test_a_cursor_that_does_not_move_is_refused(self):
        from sqlite_to_weaviate.verify.errors import VerifyError

        same = [(b"\x05", "a"), (b"\x06", "b")]
        cursor = self.pages([same, same]).cursor()
        next(cursor)
        with pytest.raises(VerifyError, match="did not move"):
            next(cursor)

    def test_an_id_longer_than_16_bytes_is_refused(self):
        from sqlite_to_weaviate.verify.errors import VerifyError

        with pytest.raises(VerifyError, match="malformed object id"):
            list(self.pages([[(b"\x01" * 17, "h")]]).cursor())
