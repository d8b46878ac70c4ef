"""``verify()``: counts, streamed reconciliation, live re-checks, sample, repair, report.

The order of work per table: stage both sides at the same time into the verifier's
scratch files (SQLite rows in keyset pages in this thread, Weaviate's cursor in another,
so a verify costs about the slower of the two reads), merge-join them in uuid order,
write candidate differences to the scratch file (a badly diverged table never fills
memory), then settle them in chunks (:mod:`.recheck`), classify what is confirmed,
repair it if asked, and compare a random sample field by field. Repairs of all tables
are re-verified at the end, once the pipeline has applied them.

Queries (the listing, index checks, sample and search reads) run at ONE; on a replicated
collection the listing is not a snapshot of every replica, so its candidates are always
settled by reads by id at ``settings.verify_consistency`` (default ALL), and deletes go
at that level too (:mod:`.replicas` says why a query must not carry it).
"""

from __future__ import annotations

import sqlite3
import threading
import time
import uuid as uuid_mod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlite_to_weaviate.errors import S2WError
from sqlite_to_weaviate.mapping import Mapping, TableMapping
from sqlite_to_weaviate.mapping.model import NULL_KEY, quote_identifier
from sqlite_to_weaviate.mapping.refusals import WEAVIATE_REJECTED, refusals_of_row
from sqlite_to_weaviate.settings import Settings

from . import live, target
from .errors import VerifyError
from .fields import compare_object
from .merge import Kind, merge_join
from .recheck import Candidate, Settled, confirm_without_recheck, settle
from .repair import delete_extras, enqueue_repairs, replace_unindexed
from .replicas import LeveledClient, reads_by_id
from .report import FOREIGN_DETAIL, Entry, TableReport, VerifyReport
from .sample import compare_sample
from .search import SearchContext, SearchOptions, check_search, recheck_search, search_context
from .source import Scratch, find_keys, stage_table

#: progress(table, done, total): rows staged + objects streamed so far, of the counts at the start.
Progress = Callable[[str, int, int], None]

CANDIDATE_CHUNK = 1000
SAMPLE_RECHECKS = 3


@dataclass
class _Context:
    conn: sqlite3.Connection
    client: Any
    scratch: Scratch
    live_recheck: bool
    recheck_timeout: float
    repair: bool
    write_conn: sqlite3.Connection | None
    progress: Progress | None
    seq_start: live.Marks
    checkpoint_start: live.Marks
    repaired: dict[str, list[Candidate]] = field(default_factory=dict)
    sample_repaired: dict[str, list[tuple]] = field(default_factory=dict)
    search: SearchOptions | None = None
    search_ctx: SearchContext | None = None
    search_repaired: dict[str, list[tuple]] = field(default_factory=dict)


def verify(
    settings: Settings,
    *,
    tables: list[str] | None = None,
    sample: int = 0,
    repair: bool = False,
    live_recheck: bool = True,
    progress: Progress | None = None,
    recheck_timeout: float = 60.0,
    repair_timeout: float = 300.0,
    scratch_dir: str | Path | None = None,
    mapping: Mapping | None = None,
    allow_refused: bool = False,
    search: SearchOptions | None = None,
) -> VerifyReport:
    """Reconcile every mapped table (or ``tables``) of ``settings``' database with Weaviate.

    Rows the mapping or Weaviate refused are differences (exit code 1) unless
    ``allow_refused``: then they are still listed but do not fail the run.
    ``search``: also check that a sample of rows is found by keyword and by its own
    vector (:mod:`.search`); a recall under ``search.min_recall`` is a difference.

    Raises :class:`VerifyError` (or ``ConfigError``) when it cannot run: a missing table,
    a collection that does not match the mapping, an unreachable server. See
    :func:`verify_or_error` for a variant that returns a report with ``error`` set.
    """
    started = time.monotonic()
    conn = settings.open_db(readonly=True)
    client = None
    write_conn = None
    try:
        mapping = mapping or settings.load_mapping(conn)
        selected = _select(mapping, tables)
        client = LeveledClient(settings.connect_weaviate(), settings.verify_consistency, settings.weaviate)
        for table in selected:
            target.check_schema(client, table)
        if repair:
            if not live.capture_installed(conn):
                raise VerifyError("--repair needs capture installed (the outbox carries the repairs): run `sqlite-to-weaviate init`")
            write_conn = settings.open_db(wal=False)
        with Scratch(scratch_dir) as scratch:
            ctx = _Context(conn, client, scratch, live_recheck, recheck_timeout, repair, write_conn, progress,
                           live.high_water(conn), live.checkpoint(conn), search=search)
            if search is not None:
                ctx.search_ctx = search_context(client, mapping, settings.collection_prefix)
            report = VerifyReport(repair=repair, sample=sample, outbox_seq_start=ctx.seq_start.live,
                                  allow_refused=allow_refused)
            for index, table in enumerate(selected):
                report.tables[table.table] = _verify_table(ctx, table, index, sample)
            if repair:
                _reverify_repairs(ctx, {t.table: t for t in selected}, report, repair_timeout)
            report.outbox_seq_end = live.high_water(conn).live
        report.seconds = time.monotonic() - started
        return report
    finally:
        for c in (conn, write_conn):
            if c is not None:
                c.close()
        if client is not None:
            client.close()


def verify_or_error(settings: Settings, **kwargs: Any) -> VerifyReport:
    """Like :func:`verify`, but a failure to run becomes a report with ``error`` (exit code 3)."""
    started = time.monotonic()
    try:
        return verify(settings, **kwargs)
    except (S2WError, sqlite3.Error, OSError) as exc:
        return VerifyReport(error=str(exc), seconds=time.monotonic() - started,
                            allow_refused=kwargs.get("allow_refused", False))
    except Exception as exc:  # weaviate/grpc connection errors have no common base class
        if type(exc).__module__.split(".")[0] in ("weaviate", "grpc", "httpx"):
            return VerifyReport(error=f"Weaviate: {exc}", seconds=time.monotonic() - started,
                                allow_refused=kwargs.get("allow_refused", False))
        raise


def _select(mapping: Mapping, tables: list[str] | None) -> list[TableMapping]:
    ordered = mapping.collections_in_order()
    if not tables:
        return ordered
    unknown = [t for t in tables if t not in mapping.tables]
    if unknown:
        raise VerifyError(f"table(s) {unknown} are not mapped; mapped tables: {sorted(mapping.tables)}")
    return [t for t in ordered if t.table in tables]


def _verify_table(ctx: _Context, table: TableMapping, index: int, sample: int) -> TableReport:
    report = TableReport(table.table, table.collection)
    report.rows = int(ctx.conn.execute(f"SELECT count(*) FROM {quote_identifier(table.table)}").fetchone()[0])
    report.objects = target.count_objects(ctx.client, table)
    total = report.rows + report.objects
    done = 0

    lock = threading.Lock()

    def tick(n: int) -> None:
        nonlocal done
        with lock:
            done += n
            if ctx.progress is not None:
                ctx.progress(table.table, done, total)

    # both sides are read at the same time: Weaviate's cursor into the side scratch file in a thread
    side_name = f"objects_{index}"
    side_conn = ctx.scratch.side
    side_result: dict[str, Any] = {}

    def stage_objects() -> None:
        try:
            side_result["count"] = target.stage_hashes(ctx.client, table, side_conn, side_name, tick)
        except BaseException as exc:  # re-raised in the calling thread
            side_result["error"] = exc

    thread = threading.Thread(target=stage_objects, name=f"verify-{table.table}-objects", daemon=True)
    thread.start()
    try:
        staged = stage_table(ctx.conn, table, ctx.scratch, index, progress=tick)
    finally:
        thread.join()
    if "error" in side_result:
        raise side_result["error"]
    report.scanned_rows = staged.rows
    report.scanned_objects = side_result["count"]
    if staged.null_keys:
        reason = f"{staged.null_keys} row(s) with a NULL primary-key value"
        report.refused.add(Entry("", None, reason))
        report.refused.total += staged.null_keys - 1
        report.refusals.add_reason(None, ",".join(table.primary_key), NULL_KEY, reason, rows=staged.null_keys)
    cand = f"cand_{index}"
    sc = ctx.scratch.conn
    sc.execute(f"CREATE TABLE {cand} (u BLOB PRIMARY KEY, kind TEXT, sh TEXT, th TEXT)")
    objects = side_conn.execute(f"SELECT u, h FROM {side_name} ORDER BY u")
    pending: list[tuple] = []
    try:
        for diff in merge_join(staged.hashes(), objects):
            pending.append((diff.uuid, diff.kind.value, diff.source_hash, diff.target_hash))
            if len(pending) >= CANDIDATE_CHUNK:
                sc.executemany(f"INSERT INTO {cand} VALUES (?, ?, ?, ?)", pending)
                pending.clear()
        sc.executemany(f"INSERT INTO {cand} VALUES (?, ?, ?, ?)", pending)
    finally:
        objects.close()
        side_conn.execute(f"DROP TABLE {side_name}")  # the side file is re-used by the next table

    quiet = _pipeline_quiet(ctx)
    dead = live.dead_letter_uuids(ctx.conn, table.table)
    last = 0
    while True:
        rows = sc.execute(f"SELECT rowid, u, kind, sh, th FROM {cand} WHERE rowid > ? ORDER BY rowid LIMIT ?",
                          (last, CANDIDATE_CHUNK)).fetchall()
        if not rows:
            break
        last = rows[-1][0]
        keys = staged.keys(r[1] for r in rows if r[2] != Kind.EXTRA.value)
        candidates = [Candidate(u, keys.get(u), sh, th) for _, u, _, sh, th in rows]
        if (quiet or not ctx.live_recheck) and not reads_by_id(ctx.client, table.collection):
            settled = confirm_without_recheck(candidates)
            _read_current_rows(ctx.conn, table, settled.confirmed)
        else:
            settled = settle(ctx.conn, ctx.client, table, candidates, timeout=ctx.recheck_timeout,
                             find_keys=lambda wanted: find_keys(ctx.conn, table, wanted))
            report.rechecked += len(candidates)
            report.settled_by_recheck += len(settled.resolved)
        _classify(ctx, table, settled, report, dead)

    if sample > 0:
        keys = staged.sample_keys(sample)
        report.sampled, mismatches = compare_sample(ctx.conn, ctx.client, table, keys)
        if mismatches and ctx.live_recheck and not _pipeline_quiet(ctx):
            # the writer lands an object before its references: re-compare after catch-up
            for _ in range(SAMPLE_RECHECKS):
                live.wait_caught_up(ctx.conn, live.high_water(ctx.conn), ctx.recheck_timeout)
                _, mismatches = compare_sample(ctx.conn, ctx.client, table, [m.key for m in mismatches])
                if not mismatches:
                    break
        for m in mismatches:
            report.sample_mismatches.add(Entry(str(m.uuid), list(m.key), [d.to_json() for d in m.diffs]))
        if ctx.repair and mismatches:
            keys = [m.key for m in mismatches]
            report.repair_enqueued += enqueue_repairs(ctx.write_conn, table, keys)
            ctx.sample_repaired.setdefault(table.table, []).extend(keys)
    if ctx.search is not None and ctx.search_ctx is not None:
        keys = staged.sample_keys(ctx.search.sample)
        report.search = check_search(ctx.search_ctx, table, list(live.read_rows(ctx.conn, table, keys).values()),
                                     ctx.search)
        failing = sorted({tuple(f.key) for f in report.search.failures if f.key}, key=repr)
        if ctx.repair and failing:
            report.search.repair_enqueued = enqueue_repairs(ctx.write_conn, table, failing)
            ctx.search_repaired[table.table] = failing
    return report


def _pipeline_quiet(ctx: _Context) -> bool:
    """True when nothing was captured or applied during the scan: the scan is a snapshot."""
    if not live.capture_installed(ctx.conn):
        return True
    return (live.high_water(ctx.conn) == ctx.seq_start and live.applied(ctx.checkpoint_start, ctx.seq_start)
            and live.checkpoint(ctx.conn) == ctx.checkpoint_start and live.resends_pending(ctx.conn) == 0)


def _read_current_rows(conn: sqlite3.Connection, table: TableMapping, candidates: list[Candidate]) -> None:
    rows = live.read_rows(conn, table, [c.key for c in candidates if c.key is not None])
    for c in candidates:
        c.row = rows.get(c.key) if c.key is not None else None


def _classify(ctx: _Context, table: TableMapping, settled: Settled, report: TableReport,
              dead: dict[str, tuple[str, str]]) -> None:
    stale_full = target.fetch_objects(
        ctx.client, table,
        [uuid_mod.UUID(bytes=c.uuid) for c in settled.confirmed if c.row is not None and c.object_hash is not None],
    )
    to_repair: list[Candidate] = []
    extras: list[Candidate] = []
    unindexed: list[Candidate] = []
    for c in settled.confirmed:
        u = uuid_mod.UUID(bytes=c.uuid)
        key = list(c.key) if c.key is not None else None
        if c.object_hash is not None and c.object_hash.startswith(target.UNINDEXED):
            if c.row is None and c.object_hash == target.UNINDEXED:  # no content hash: not ours to touch
                report.foreign.add(Entry(str(u), None, FOREIGN_DETAIL))
                continue
            report.unindexed.add(Entry(str(u), key, "stored, but no filter or search finds it"
                                       + ("" if c.row is not None else " (and its row is deleted)")))
            unindexed.append(c)
            continue
        if c.row is None:
            if not c.object_hash:  # no s2wContentHash: someone else's object, never ours to delete
                report.foreign.add(Entry(str(u), None, FOREIGN_DETAIL))
                continue
            report.extra.add(Entry(str(u), None, {"object_hash": c.object_hash}))
            extras.append(c)
            continue
        letter = dead.get(str(u))
        errors = refusals_of_row(table, c.row)
        if errors:  # the mapping refuses the row: no repair can write it, the mapping or the data must change
            report.refused.add(Entry(str(u), key, letter[1] if letter else str(errors[0])))
            report.refusals.add_errors(c.key, errors)
            continue
        if letter is not None and letter[0] != "mapping":  # Weaviate rejected this very row
            report.refused.add(Entry(str(u), key, letter[1]))
            report.refusals.add_reason(c.key, "", WEAVIATE_REJECTED, letter[1])
            continue
        # (a "mapping" dead letter for a row that converts now is outdated: a repair re-sends it)
        expected = table.to_object(c.row)
        if c.object_hash is None:
            report.missing.add(Entry(str(u), key))
        else:
            stored = stale_full.get(u)
            fields = []
            if stored is not None and expected is not None:
                fields = [d.field for d in compare_object(table, expected, stored.properties, stored.vector, stored.references)]
            report.stale.add(Entry(str(u), key, {"fields": fields, "row_hash": c.row_hash, "object_hash": c.object_hash}))
        to_repair.append(c)
    for c in settled.unsettled:
        report.unsettled.add(Entry(str(uuid_mod.UUID(bytes=c.uuid)), list(c.key) if c.key else None,
                                   "still changing or not applied by the pipeline when the re-check timed out"))
    if ctx.repair:
        report.repair_enqueued += enqueue_repairs(ctx.write_conn, table, [c.key for c in to_repair])
        report.repair_deleted += delete_extras(ctx.client, table, [c.uuid for c in extras])
        deleted, enqueued = replace_unindexed(ctx.client, ctx.write_conn, table,
                                              [(c.uuid, c.key if c.row is not None else None) for c in unindexed])
        report.repair_deleted += deleted
        report.repair_enqueued += enqueued
        ctx.repaired.setdefault(table.table, []).extend(to_repair + extras + unindexed)


def _reverify_repairs(ctx: _Context, tables: dict[str, TableMapping], report: VerifyReport, timeout: float) -> None:
    """Wait for the pipeline to apply the repairs, then check each repaired key again."""
    if not any(ctx.repaired.values()) and not any(ctx.sample_repaired.values()) \
            and not any(ctx.search_repaired.values()):
        return
    if not live.wait_caught_up(ctx.conn, live.high_water(ctx.conn), timeout):
        for name in {n for n, v in (ctx.repaired | ctx.sample_repaired | ctx.search_repaired).items() if v}:
            report.tables[name].repair_failed.add(Entry("", None, f"pipeline did not apply the repairs within {timeout}s; is the relay running?"))
        return
    for name, keys in ctx.search_repaired.items():
        search_report = report.tables[name].search
        if search_report is None or ctx.search is None or ctx.search_ctx is None:
            continue
        rows = list(live.read_rows(ctx.conn, tables[name], keys).values())
        recheck_search(search_report, check_search(ctx.search_ctx, tables[name], rows, ctx.search))
    for name, repaired in ctx.repaired.items():
        table, t_report = tables[name], report.tables[name]
        deleted = {c.uuid for c in repaired if c.key is None}
        # an insert may have raced the delete of an extra: find and re-enqueue such keys
        raced = find_keys(ctx.conn, table, deleted)
        if raced:
            enqueue_repairs(ctx.write_conn, table, list(raced.values()))
        again = [Candidate(c.uuid, c.key if c.key is not None else raced.get(c.uuid)) for c in repaired]
        settled = settle(ctx.conn, ctx.client, table, again, timeout=ctx.recheck_timeout,
                         find_keys=lambda wanted: find_keys(ctx.conn, table, wanted))
        t_report.repaired += len(settled.resolved)
        for c in settled.confirmed + settled.unsettled:
            t_report.repair_failed.add(Entry(str(uuid_mod.UUID(bytes=c.uuid)), list(c.key) if c.key else None,
                                             {"row_hash": c.row_hash, "object_hash": c.object_hash}))
    for name, keys in ctx.sample_repaired.items():
        table, t_report = tables[name], report.tables[name]
        _, mismatches = compare_sample(ctx.conn, ctx.client, table, keys)
        t_report.repaired += len(keys) - len(mismatches)
        for m in mismatches:
            t_report.repair_failed.add(Entry(str(m.uuid), list(m.key), [d.field for d in m.diffs]))
