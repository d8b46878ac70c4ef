"""Faults on a real 3-node Weaviate cluster (replication factor 3, QUORUM writes), end to end
with live writes and a backfill: a node SIGKILLed mid-backfill and mid-replay, one node down
for a whole run, two of three down, and a stale replica the verifier must see through.

Every test checks that the fault happened (a node's pid gone, a job handed back, a stale
listing) and ends with SQLite equal to what every node serves, checked by the verifier
through each node and independently through each node's own listing. Longer versions are
in tests/integration/test_cluster_soak.py (``-m slow``).
"""

from __future__ import annotations

import random
import sqlite3
import threading
import time
import uuid as uuid_mod
from pathlib import Path
from typing import Any

import pytest

from sqlite_to_weaviate.verify import target, verify
from sqlite_to_weaviate.verify.object_pages import ObjectPages
from sqlite_to_weaviate.verify.replicas import LeveledClient
from sqlite_to_weaviate.weaviate_adapter import connect_weaviate
from sqlite_to_weaviate.store import dead_letters
from sqlite_to_weaviate.writer.status import collect_status
from tests.support.backfill_data import Writers, make_db as make_backfill_db, run_backfill, write_mapping
from tests.integration.test_writer_pipeline import make_db, random_writes
from tests.support.pipeline import Pipeline, assert_stores_equal, wait_for

pytestmark = pytest.mark.integration

CONVERGE_TIMEOUT = 180.0  # async replication repaired 5,000 missed inserts in 35-68 s here; the box is shared


def cluster_settings(make_settings, db: Path, cluster, **overrides: Any):
    values = dict(weaviate_url=cluster.url, replication_factor=3, write_consistency="QUORUM", lease_seconds=6.0,
                  job_timeout=30, max_retries=1)
    values.update(overrides)
    return make_settings(db, **values)


def workers_on(pipeline: Pipeline, node_url: str, count: int, log_dir: Path) -> Pipeline:
    """Workers connected to another node (a second Pipeline object only for its workers)."""
    other = Pipeline(pipeline.settings.replace(weaviate_url=node_url), log_dir)
    other.start_workers(count)
    pipeline.workers.extend(other.workers)  # stopped with the main pipeline
    return other


def self_check_through_every_node(settings, cluster, seen: list[Any] | None = None) -> int:
    """One round of what the sidecar's periodic self-check does (``run --verify-every``),
    through each node in turn: verify with --repair while the pipeline runs. Returns how
    many keys were repaired; ``seen`` collects what each node's verify found, for a failure
    message."""
    repaired = 0
    for node in cluster.nodes:
        report = verify(settings.replace(weaviate_url=node.url), repair=True, recheck_timeout=120)
        assert report.error is None, report.error
        assert report.exit_code() in (0, 2) and report.repair_failures == 0, (node.node_name, report.to_json())
        repaired += sum(t.repaired for t in report.tables.values())
        if seen is not None and report.differences:
            seen.append({"through": node.node_name, "found": differences_of(report),
                         "copies": replica_copies(cluster, report)})
    return repaired


def differences_of(report) -> dict[str, Any]:
    """Per table and kind, the first few differing entries (uuid, key, detail)."""
    return {name: {kind: [(e.uuid, e.key, e.detail) for e in getattr(t, kind).items[:4]]
                   for kind in ("missing", "extra", "stale", "unindexed") if getattr(t, kind).total}
            for name, t in report.tables.items()}


def settle_with_self_checks(settings, cluster, db: Path, mapping, timeout: float = CONVERGE_TIMEOUT) -> list[int]:
    """Self-check rounds (pipeline running) until a round repairs nothing and then every node
    verifies clean and serves exactly the database; returns the keys repaired per round.

    Why rounds: a replica can hold a copy *without any property* under the same timestamp
    as the good copies (seen: 16 objects on one node, minutes after the pipeline caught
    up). Weaviate never repairs that (equal digests); a verify through that node reports it
    as stale and --repair re-sends the row, which overwrites every replica. The verifier's
    own index check at ALL made such copies (a query's read-repair writes its projection,
    verify/replicas.py) until it queried at ONE; a round that keeps repairing now means a
    new cause, and the failure message names what each node found. A round counts only if
    the strict checks after it pass too.
    """
    deadline = time.monotonic() + timeout
    rounds: list[int] = []
    strict_failure = ""
    while True:
        seen: list[Any] = []
        rounds.append(self_check_through_every_node(settings, cluster, seen))
        if rounds[-1] == 0:
            try:
                verify_through_every_node(settings, cluster)
                assert_every_node_serves_the_database(cluster, db, mapping, timeout=0)
                return rounds
            except AssertionError as exc:
                if time.monotonic() > deadline:
                    raise
                strict_failure = str(exc)[:2000]
        elif time.monotonic() > deadline:
            raise AssertionError(f"self-checks still repairing after {timeout:.0f}s: {rounds}; the last round: {seen}; "
                                 f"the last strict check that failed after a clean round: {strict_failure!r}")
        time.sleep(5.0)


def verify_through_every_node(settings, cluster) -> list[Any]:
    """The verifier, once through each node: every report must be clean, and they must agree."""
    reports = []
    for node in cluster.nodes:
        report = verify(settings.replace(weaviate_url=node.url), sample=50, recheck_timeout=120)
        assert report.error is None, report.error
        reports.append(report)
    for report, node in zip(reports, cluster.nodes):
        differences = {name: (t.missing.total, t.extra.total, t.stale.total, t.unindexed.total, t.refused.total,
                              t.unsettled.total, t.sample_mismatches.total) for name, t in report.tables.items()}
        assert all(d == (0,) * 7 for d in differences.values()), (
            f"verify through {node.node_name}: {differences}; copies per node: {replica_copies(cluster, report)}")
        assert report.exit_code() == 0, node.node_name
    assert len({tuple(sorted((n, t.rows) for n, t in r.tables.items())) for r in reports}) == 1
    return reports


def replica_copies(cluster, report) -> list[Any]:
    """For a failure message: each differing object as every node holds it (REST ?node_name=)."""
    import httpx

    out = []
    for t in report.tables.values():
        for entry in (t.missing.items + t.extra.items + t.stale.items + t.unindexed.items)[:3]:
            copies = {}
            for node in cluster.nodes:
                base = f"http://{node.host}:{node.http_port}/v1/objects/{t.collection}/{entry.uuid}"
                try:
                    r = httpx.get(base, params={"node_name": node.node_name}, timeout=10)
                    body = r.json() if r.status_code == 200 else {}
                    copies[node.node_name] = (r.status_code, body.get("lastUpdateTimeUnix"),
                                              (body.get("properties") or {}).get("s2wContentHash"))
                except httpx.HTTPError as exc:
                    copies[node.node_name] = repr(exc)
            out.append({"uuid": entry.uuid, "key": entry.key, "detail": entry.detail, "copies": copies})
    return out


def assert_every_node_serves_the_database(cluster, db: Path, mapping, timeout: float = CONVERGE_TIMEOUT) -> int:
    """Independently of the verifier: each node's own listing equals SQLite, once async
    replication has caught a returning node up (polled; no human action in between)."""
    total = 0
    for node in cluster.nodes:
        client = connect_weaviate(node.url)
        try:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    total = assert_stores_equal(client, db, mapping)
                    break
                except AssertionError as exc:
                    if time.monotonic() > deadline:
                        raise AssertionError(f"through {node.node_name}: {exc}") from None
                    time.sleep(2.0)
        finally:
            client.close()
    return total


# about 5 minutes on 2 busy cores (3,000-row backfill, two kills, self-check rounds): in the
# default suite all the same, so that CI runs every cluster fault (issue 17)
def test_node_sigkilled_mid_backfill_and_mid_replay_ends_equal_at_all(tmp_path, weaviate_cluster_factory,
                                                                      make_settings, pipeline_factory):
    cluster = weaviate_cluster_factory(3)
    rows = 3000
    db = tmp_path / "app.db"
    make_backfill_db(db, rows)
    settings = cluster_settings(make_settings, db, cluster, mapping_file=write_mapping(tmp_path), batch_size=200)
    pipeline = pipeline_factory(settings)
    pipeline.init()
    pipeline.start_workers(2)  # coordinated by node 0
    workers_on(pipeline, cluster.nodes[1].url, 1, pipeline.log_dir)  # coordinated by node 1
    relay = pipeline.start_relay_thread()

    killed_mid_backfill = threading.Event()

    def kill_node2(event) -> None:
        if event.table == "records" and event.rows_done >= rows // 3 and not killed_mid_backfill.is_set():
            cluster.nodes[2].kill()
            killed_mid_backfill.set()

    with Writers(db, seeds=[1, 2], id_space=rows + rows // 10, rate=40) as writers:
        report = run_backfill(settings, page_size=250, progress=kill_node2)
        assert report.done and killed_mid_backfill.is_set()
        assert cluster.nodes[2].pid is None
        time.sleep(2.0)
        cluster.nodes[2].start()  # restarted on its data while writes go on
        pipeline.wait_caught_up(300)
        # mid-replay: SIGKILL the node that coordinates one of the workers, then bring it back
        cluster.nodes[1].kill()
        time.sleep(4.0)
        cluster.nodes[1].start()
        time.sleep(2.0)
    assert writers.count > 0
    pipeline.wait_caught_up(300)
    conn = sqlite3.connect(db)
    assert dead_letters.count(conn) == 0, [d.reason for d in dead_letters.list_letters(conn)]
    mapping = settings.load_mapping(conn)
    settle_with_self_checks(settings, cluster, db, mapping)
    pipeline.stop()
    verify_through_every_node(settings, cluster)
    assert assert_every_node_serves_the_database(cluster, db, mapping) > rows // 2
    assert relay.stats["applied_jobs"] > 0


def test_one_node_down_writes_go_on_two_down_wait_as_transient(tmp_path, weaviate_cluster_factory, make_settings,
                                                               pipeline_factory):
    cluster = weaviate_cluster_factory(3)
    db = tmp_path / "app.db"
    conn = make_db(db)
    settings = cluster_settings(make_settings, db, cluster, lease_seconds=3.0, job_timeout=15)
    pipeline = pipeline_factory(settings)
    pipeline.init()
    cluster.nodes[2].kill()  # down for the whole run
    pipeline.start_workers(2)
    relay = pipeline.start_relay_thread()
    random_writes(conn, random.Random(1), 300)
    pipeline.wait_caught_up(120)  # RF 3, QUORUM, one node down: writes go on
    assert relay.stats["applied_jobs"] > 0
    applied_before = relay.stats["applied_changes"]

    cluster.nodes[1].kill()  # two of three down: QUORUM cannot be met, raft has no leader
    random_writes(conn, random.Random(2), 200)
    wait_for(lambda: relay.stats["retries"] >= 2, timeout=120, interval=0.5,
             message="no job was handed back while two of three nodes were down")
    first = collect_status(settings, max_lag_s=1.0)
    time.sleep(3.0)
    second = collect_status(settings, max_lag_s=1.0)
    assert not second.caught_up and second.outbox_depth > 0
    assert second.oldest_unapplied_age_s > first.oldest_unapplied_age_s >= 0  # the lag grows...
    assert any("replication lag" in p for p in second.problems)  # ...and status says so
    assert second.dead_letters == 0 and dead_letters.count(conn) == 0  # transient, never dead letters
    assert second.last_error is not None
    assert relay.stats["applied_changes"] >= applied_before

    cluster.nodes[1].start()  # one returns: quorum again (node 2 still down)
    random_writes(conn, random.Random(3), 200)
    pipeline.wait_caught_up(240)
    assert dead_letters.count(conn) == 0
    cluster.nodes[2].start()
    mapping = settings.load_mapping(conn)
    settle_with_self_checks(settings, cluster, db, mapping)
    pipeline.stop()
    verify_through_every_node(settings, cluster)
    assert_every_node_serves_the_database(cluster, db, mapping)


def with_a_lagging_node(tmp_path, weaviate_cluster_factory, make_settings, pipeline_factory, *,
                        seeds: tuple[int, int], writes: int) -> tuple[Any, Path, sqlite3.Connection, Any, Any]:
    """A 3-node cluster with async replication off (server-wide), so that only reads can
    touch a stale replica: ``writes`` random writes applied everywhere, node 2 SIGKILLed,
    as many more (inserts, updates, deletes) applied to nodes 0 and 1, node 2 restarted on
    its data, the pipeline stopped. Returns (cluster, db, conn, settings, relay)."""
    cluster = weaviate_cluster_factory(3, extra_env={"ASYNC_REPLICATION_DISABLED": "true"})
    db = tmp_path / "app.db"
    conn = make_db(db)
    settings = cluster_settings(make_settings, db, cluster)
    pipeline = pipeline_factory(settings)
    pipeline.init()
    pipeline.start_workers(2)
    relay = pipeline.start_relay_thread()
    random_writes(conn, random.Random(seeds[0]), writes)
    pipeline.wait_caught_up(120)
    cluster.nodes[2].kill()
    random_writes(conn, random.Random(seeds[1]), writes)
    pipeline.wait_caught_up(120)
    cluster.nodes[2].start()
    pipeline.stop()
    return cluster, db, conn, settings, relay


def test_verifier_result_does_not_depend_on_the_node_it_asks(tmp_path, weaviate_cluster_factory, make_settings,
                                                           pipeline_factory):
    # a node that missed writes stays stale until something reads through it: the verifier
    # must see through it anyway
    cluster, db, conn, settings, relay = with_a_lagging_node(
        tmp_path, weaviate_cluster_factory, make_settings, pipeline_factory, seeds=(7, 8), writes=400)
    stale = cluster.nodes[2]
    mapping = settings.load_mapping(conn)

    # the fault is real: node 2's own listing differs from SQLite
    client = connect_weaviate(stale.url)
    try:
        with pytest.raises(AssertionError):
            assert_stores_equal(client, db, mapping)
    finally:
        client.close()
    # through the stale node first (it has the most to see through), then the others
    order = [2, 0, 1]
    reports = []
    for i in order:
        report = verify(settings.replace(weaviate_url=cluster.nodes[i].url), recheck_timeout=120)
        assert report.error is None and report.exit_code() == 0, (cluster.nodes[i].node_name, report.to_json())
        reports.append(report)
    assert sum(t.rechecked for t in reports[0].tables.values()) > 0  # the stale listing produced candidates, settled at ALL
    assert len({tuple(sorted((n, t.rows, t.missing.total, t.extra.total, t.stale.total)
                             for n, t in r.tables.items())) for r in reports}) == 1
    assert relay.stats["applied_jobs"] > 0


def own_copies(node, collection: str, uuids: list[str]) -> dict[str, Any]:
    """Each object as ``node`` itself holds it (REST ``?node_name=``, with its vector):
    (update time, properties, vector), or None where that node has no copy."""
    import httpx

    out: dict[str, Any] = {}
    with httpx.Client(base_url=f"http://{node.host}:{node.http_port}/v1", timeout=30) as http:
        for u in uuids:
            r = http.get(f"/objects/{collection}/{u}", params={"node_name": node.node_name, "include": "vector"})
            assert r.status_code in (200, 404), (node.node_name, u, r.status_code, r.text[:300])
            body = r.json() if r.status_code == 200 else None
            out[u] = None if body is None else (body.get("lastUpdateTimeUnix"), body.get("properties") or {},
                                                body.get("vector"))
    return out


def test_the_verifiers_queries_never_write_a_projection_into_a_lagging_replica(
        tmp_path, weaviate_cluster_factory, make_settings, pipeline_factory):
    # Weaviate 1.35 read-repairs what a filtered query at QUORUM/ALL returned, projection
    # and all (verify/replicas.py): measured here with the verifier's index check at ALL
    # through node 0, node 2's older copies became {} (no property, no vector) under the
    # newest timestamp, for good; with a hash-only filter, copies holding only the hash.
    # In a verify that happens when a live write has reached two replicas and not yet the
    # third; this test makes the lag last (node 2 SIGKILLed through a round of writes) and
    # runs the verifier's own queries through node 0 before anything else reads node 2.
    cluster, db, conn, settings, _ = with_a_lagging_node(
        tmp_path, weaviate_cluster_factory, make_settings, pipeline_factory, seeds=(11, 12), writes=300)
    lagging = cluster.nodes[2]
    mapping = settings.load_mapping(conn)
    collection = mapping.table("items").collection
    uuids = [str(mapping.table("items").uuid_for_key((key,))) for (key,) in conn.execute("SELECT id FROM items")]

    newest = own_copies(cluster.nodes[0], collection, uuids)
    before = own_copies(lagging, collection, uuids)
    behind = [u for u in uuids if before[u] is not None and before[u] != newest[u]]
    assert behind, "the fault did not happen: node 2 holds no older copy"

    # the verifier's queries through node 0, on exactly the lagging objects: its index check
    # (a filter asking for no property) and its sample read (a filter asking for everything)
    client = LeveledClient(connect_weaviate(cluster.nodes[0].url), "ALL", settings.weaviate)
    try:
        table = mapping.table("items")
        pages = ObjectPages(target._handle(client, table, None), page_size=1000, filter_limit=10_000)
        assert pages.findable([uuid_mod.UUID(u).bytes for u in behind]) == {uuid_mod.UUID(u).bytes for u in behind}
        assert set(target.fetch_objects(client, table, [uuid_mod.UUID(u) for u in behind])) \
            == {uuid_mod.UUID(u) for u in behind}
    finally:
        client.close()
    report = verify(settings.replace(weaviate_url=cluster.nodes[0].url), sample=50, recheck_timeout=60)
    assert report.error is None and report.exit_code() == 0, report.to_json()
    after = own_copies(lagging, collection, uuids)
    damaged = {u: (before[u], after[u], newest[u]) for u in uuids if after[u] not in (before[u], newest[u])}
    assert not damaged, f"{len(damaged)} of node 2's copies changed into neither its own nor the newest: " \
                        f"{list(damaged.items())[:2]}"

    # and a verify through the lagging node itself repairs it by full reads at ALL
    report = verify(settings.replace(weaviate_url=lagging.url), recheck_timeout=60)
    assert report.error is None and report.exit_code() == 0, report.to_json()
    assert own_copies(lagging, collection, behind) == {u: newest[u] for u in behind}
    assert_every_node_serves_the_database(cluster, db, mapping, timeout=60)
