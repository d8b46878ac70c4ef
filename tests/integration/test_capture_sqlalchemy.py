"""SQLAlchemy write paths on a real SQLite file: the triggers see them all, hooks add context."""

from __future__ import annotations

import sqlite3
import threading

import pytest
from sqlalchemy import Column, ForeignKey, Integer, String, Table, create_engine, delete, insert, select, text, update
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship

from sqlite_to_weaviate.capture import CaptureError, attach, install, set_context
from sqlite_to_weaviate.store.lanes import read_outbox
from tests.support.capture_db import changes, last_seq


class Base(DeclarativeBase):
    pass


book_tag = Table(
    "book_tag",
    Base.metadata,
    Column("book_id", ForeignKey("book.id", ondelete="CASCADE"), primary_key=True),
    Column("tag_id", ForeignKey("tag.id", ondelete="CASCADE"), primary_key=True),
)


class Author(Base):
    __tablename__ = "author"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str | None]
    books: Mapped[list[Book]] = relationship(back_populates="author", passive_deletes=True)


class Book(Base):
    __tablename__ = "book"
    id: Mapped[int] = mapped_column(primary_key=True)
    author_id: Mapped[int | None] = mapped_column(ForeignKey("author.id", ondelete="CASCADE"))
    isbn: Mapped[str | None] = mapped_column(String, unique=True)
    title: Mapped[str | None]
    author: Mapped[Author | None] = relationship(back_populates="books")
    tags: Mapped[list[Tag]] = relationship(secondary=book_tag)


class Tag(Base):
    __tablename__ = "tag"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String)


@pytest.fixture
def engine(tmp_path):
    eng = create_engine(f"sqlite:///{tmp_path / 'app.db'}")
    handle = attach(eng, foreign_keys=True)
    Base.metadata.create_all(eng)
    raw = sqlite3.connect(tmp_path / "app.db")
    install(raw)
    raw.close()
    yield eng
    handle.detach()
    eng.dispose()


@pytest.fixture
def raw(tmp_path, engine):
    conn = sqlite3.connect(tmp_path / "app.db", isolation_level=None)
    yield conn
    conn.close()


def test_connection_pragmas(engine):
    with engine.connect() as c:
        assert c.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert c.exec_driver_sql("PRAGMA recursive_triggers").scalar() == 1
        assert c.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert c.exec_driver_sql("PRAGMA busy_timeout").scalar() == 5000
        assert c.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL


def test_orm_add_update_delete_and_pk_change(engine, raw):
    with Session(engine) as s, s.begin():
        s.add(Author(id=1, name="a"))
    with Session(engine) as s, s.begin():
        s.get(Author, 1).name = "b"
    with Session(engine) as s, s.begin():
        s.get(Author, 1).name = "b"  # no-op: nothing flushed, nothing captured
    with Session(engine) as s, s.begin():
        s.get(Author, 1).id = 2
    with Session(engine) as s, s.begin():
        s.delete(s.get(Author, 2))
    assert changes(raw) == [
        ("author", "I", (1,)), ("author", "U", (1,)), ("author", "D", (1,)), ("author", "U", (2,)),
        ("author", "D", (2,)),
    ]


def test_bulk_operations(engine, raw):
    with Session(engine) as s, s.begin():
        s.bulk_save_objects([Author(id=i, name=f"n{i}") for i in (1, 2)])
        s.bulk_insert_mappings(Author, [{"id": 3, "name": "x"}])
        s.bulk_update_mappings(Author, [{"id": 1, "name": "changed"}])
    with Session(engine) as s, s.begin():
        s.execute(update(Author).where(Author.id > 1).values(name="orm-bulk"))
        s.execute(delete(Author).where(Author.id == 3))
    assert changes(raw) == [
        ("author", "I", (1,)), ("author", "I", (2,)), ("author", "I", (3,)), ("author", "U", (1,)),
        ("author", "U", (2,)), ("author", "U", (3,)), ("author", "D", (3,)),
    ]


def test_core_executemany_and_text(engine, raw):
    with engine.begin() as c:
        c.execute(insert(Author), [{"id": i, "name": "core"} for i in range(1, 4)])
        c.execute(update(Author).where(Author.id == 1).values(name="u"))
        c.execute(delete(Author).where(Author.id == 2))
        c.execute(text("INSERT INTO author(id, name) VALUES (:i, :n)"), [{"i": 10, "n": "t"}, {"i": 11, "n": "t"}])
        c.exec_driver_sql("UPDATE author SET name = 'drv' WHERE id = 10")
    assert changes(raw) == [
        ("author", "I", (1,)), ("author", "I", (2,)), ("author", "I", (3,)), ("author", "U", (1,)),
        ("author", "D", (2,)), ("author", "I", (10,)), ("author", "I", (11,)), ("author", "U", (10,)),
    ]


def test_many_to_many_and_passive_delete_cascades(engine, raw):
    with Session(engine) as s, s.begin():
        a = Author(id=1, name="a")
        b = Book(id=1, author=a, isbn="i1", tags=[Tag(id=1, name="x"), Tag(id=2, name="y")])
        s.add(b)
    assert {(t, k) for t, op, k in changes(raw) if op == "I"} >= {("book_tag", (1, 1)), ("book_tag", (1, 2))}
    seq = last_seq(raw)
    with Session(engine) as s, s.begin():
        book = s.get(Book, 1)
        book.tags.remove(s.get(Tag, 1))
    assert changes(raw, seq) == [("book_tag", "D", (1, 1))]
    seq = last_seq(raw)
    with Session(engine) as s, s.begin():
        s.delete(s.get(Author, 1))  # passive_deletes: the database cascades, the ORM sees nothing
    got = changes(raw, seq)
    assert {("author", "D", (1,)), ("book", "D", (1,)), ("book_tag", "D", (1, 2))} <= set(got)


def test_rollback_and_nested_rollback_leave_nothing(engine, raw):
    with Session(engine) as s:
        s.add(Author(id=1))
        s.flush()
        s.rollback()
    with Session(engine) as s, s.begin():
        s.add(Author(id=2))
        nested = s.begin_nested()
        s.add(Author(id=3))
        s.flush()
        nested.rollback()
    assert changes(raw) == [("author", "I", (2,))]


def test_context_from_provider_and_set_context_exactly_one_row(tmp_path):
    eng = create_engine(f"sqlite:///{tmp_path / 'ctx.db'}")
    Base.metadata.create_all(eng)
    raw = sqlite3.connect(tmp_path / "ctx.db", isolation_level=None)
    install(raw)
    handle = attach(eng, context=lambda: {"origin": "web"}, require_installed=True)
    with Session(eng) as s:
        set_context(s, actor="alice", correlation_id="req-1")
        s.add(Author(id=1, name="a"))
        s.commit()
        s.get(Author, 1).name = "b"
        s.commit()
    with eng.begin() as c:
        set_context(c, actor="bob")
        c.execute(insert(Author), [{"id": 2}])
    with eng.begin() as c:
        c.execute(insert(Author), [{"id": 3}])
    rows = read_outbox(raw, 0, 100)
    assert [(r.op, r.key, r.ctx) for r in rows] == [
        ("I", (1,), {"origin": "web", "actor": "alice", "correlation_id": "req-1"}),
        ("U", (1,), {"origin": "web", "actor": "alice", "correlation_id": "req-1"}),
        ("I", (2,), {"origin": "web", "actor": "bob"}),
        ("I", (3,), {"origin": "web"}),
    ]
    # The context row never outlives its transaction: a raw writer afterwards records none.
    assert raw.execute("SELECT count(*) FROM _s2w_context").fetchone()[0] == 0
    raw.execute("INSERT INTO author(id) VALUES (4)")
    assert read_outbox(raw, rows[-1].seq, 10)[0].ctx is None
    handle.detach()
    eng.dispose()
    raw.close()


def test_require_installed_refuses_uncaptured_database(tmp_path):
    eng = create_engine(f"sqlite:///{tmp_path / 'bare.db'}")
    with pytest.raises(CaptureError, match="no capture installed"):
        attach(eng, require_installed=True)
    eng.dispose()


def test_detach_removes_hooks(tmp_path):
    eng = create_engine(f"sqlite:///{tmp_path / 'd.db'}")
    handle = attach(eng)
    handle.detach()
    with eng.connect() as c:
        assert c.exec_driver_sql("PRAGMA recursive_triggers").scalar() == 0
    eng.dispose()


def test_concurrent_sessions_serialize_with_begin_immediate(engine, raw):
    errors: list[BaseException] = []

    def work(base: int) -> None:
        try:
            for i in range(base, base + 30):
                with Session(engine) as s, s.begin():
                    s.add(Author(id=i, name="w"))
                    s.flush()
                    s.execute(select(Author.id).where(Author.id < i)).all()
                    s.get(Author, i).name = "w2"
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(b,)) for b in (0, 100, 200, 300)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    got = changes(raw)
    assert len(got) == 4 * 30 * 2
    assert {k for _, op, k in got if op == "I"} == {(i,) for b in (0, 100, 200, 300) for i in range(b, b + 30)}
