"""Invariant 10: whoever can write to Redis can at most delay work.

Every attack here was reproduced against the real servers before the fix (issue 14):
a job naming ``os.system`` ran in ``sqlite-to-weaviate worker``, ``os.getenv`` returned the
Weaviate API key into Redis, a forged fence + payload + ticket overwrote and deleted
objects, and a forged ack could settle work nothing had applied. Each test plays the
attacker with nothing but a Redis client, against real worker processes, a real relay,
real Redis and a real Weaviate, then checks that nothing ran, nothing leaked, nothing was
written, the refusals were counted where ``status`` shows them, and the pipeline still
works afterwards.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from rq import Callback, Queue
from rq.job import Job, JobStatus
from rq.serializers import JSONSerializer
from rq.webhook import Webhook

from sqlite_to_weaviate.mapping import object_uuid
from sqlite_to_weaviate.weaviate_adapter import Secret, connect_weaviate
from sqlite_to_weaviate.writer.job import JOB_FUNCTION
from sqlite_to_weaviate.writer.job_secret import stored_job_secret
from sqlite_to_weaviate.writer.partitioning import partition_of
from sqlite_to_weaviate.writer.payload import TICKET_TTL_SECONDS, Delete, JobPayload, JobTicket
from sqlite_to_weaviate.writer.redis_keys import RedisKeys
from sqlite_to_weaviate.writer.relay import Relay
from sqlite_to_weaviate.writer.signing import JobSigner, payload_digest
from sqlite_to_weaviate.writer.status import collect_status
from sqlite_to_weaviate.writer.trust import read_security
from tests.support.pipeline import stop_process_groups, wait_for

pytestmark = pytest.mark.integration

FINAL = {JobStatus.FAILED, JobStatus.FINISHED, JobStatus.STOPPED, JobStatus.CANCELED}


def make_notes_db(path: Path, rows: int = 0) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
    conn.executemany("INSERT INTO notes VALUES (?, ?)", [(i, f"note {i}") for i in range(1, rows + 1)])
    conn.close()


def write(path: Path, sql: str, *params: Any) -> None:
    conn = sqlite3.connect(path, isolation_level=None, timeout=30)
    try:
        conn.execute(sql, params)
    finally:
        conn.close()


def everything_in_redis(client: Any) -> bytes:
    """Every key and every value of every type, concatenated: where a leaked secret would be."""
    chunks: list[bytes] = []
    for key in client.scan_iter(count=1000):
        chunks.append(key)
        kind = client.type(key)
        if kind == b"string":
            chunks.append(client.get(key) or b"")
        elif kind == b"hash":
            chunks.extend(k + v for k, v in client.hgetall(key).items())
        elif kind == b"list":
            chunks.extend(client.lrange(key, 0, -1))
        elif kind == b"set":
            chunks.extend(client.smembers(key))
        elif kind == b"zset":
            chunks.extend(client.zrange(key, 0, -1))
        elif kind == b"stream":
            chunks.extend(k + v for _, fields in client.xrange(key) for k, v in fields.items())
    return b"\n".join(chunks)


def wait_final(jobs: list[Job], timeout: float = 60) -> None:
    wait_for(lambda: all(j.get_status(refresh=True) in FINAL for j in jobs), timeout=timeout,
             message=f"forged jobs still not handled: {[(j.id, j.get_status(refresh=True)) for j in jobs]}")


def fetch(client: Any, collection: str, object_id: uuid.UUID) -> dict[str, Any] | None:
    obj = client.collections.use(collection).query.fetch_object_by_id(object_id)
    return None if obj is None else dict(obj.properties)


class WebhookCatcher:
    """A loopback HTTP server counting the requests it receives (a webhook must never arrive)."""

    def __init__(self) -> None:
        self.requests = 0
        catcher = self

        class Handler(BaseHTTPRequestHandler):
            def _hit(self) -> None:
                catcher.requests += 1
                self.send_response(200)
                self.end_headers()

            do_GET = do_POST = _hit  # noqa: N815

            def log_message(self, *_args: Any) -> None:
                return

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hook"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def test_worker_runs_nothing_but_the_projects_job_function(tmp_path, make_settings, pipeline_factory,
                                                          weaviate_server_factory, redis_client, monkeypatch):
    api_key = "wv-" + uuid.uuid4().hex
    job_secret = "js-" + uuid.uuid4().hex
    server = weaviate_server_factory(api_key=api_key)
    db = tmp_path / "app.db"
    make_notes_db(db)
    settings = make_settings(db, weaviate_url=server.url, weaviate_api_key=api_key, job_secret=job_secret)
    pipeline = pipeline_factory(settings)
    pipeline.init()
    evil_dir = tmp_path / "evil"
    evil_dir.mkdir()
    monkeypatch.setenv("S2W_TEST_EVIL_DIR", str(evil_dir))  # inherited by the worker process
    pipeline.start_workers(1)
    hook = WebhookCatcher()
    keys = RedisKeys(settings.namespace)
    queue = Queue(keys.queue, connection=redis_client, serializer=JSONSerializer)
    try:
        jobs = [
            queue.enqueue("os.system", f"id > {evil_dir / 'os-system'}"),
            queue.enqueue("os.getenv", "S2W_WEAVIATE_API_KEY"),
            queue.enqueue("os.getenv", "S2W_JOB_SECRET"),
            queue.enqueue("tests.security.evil.touch", "by name"),
            # the project's own function name, but with a callback or a webhook riding along
            queue.enqueue_call(JOB_FUNCTION, args=({"v": 3},), on_failure=Callback("tests.security.evil.touch")),
            queue.enqueue_call(JOB_FUNCTION, args=({"v": 3},), on_success=Callback("tests.security.evil.touch")),
            queue.enqueue_call(JOB_FUNCTION, args=({"v": 3},), webhooks=[Webhook(hook.url, "failed")]),
        ]
        wait_final(jobs)
        time.sleep(1.0)  # a webhook or a callback would have been sent by now
        assert sorted(p.name for p in evil_dir.iterdir()) == []  # nothing imported, nothing called, no shell
        assert hook.requests == 0
        assert all(j.get_status(refresh=True) == JobStatus.FAILED for j in jobs)
        assert all(j.return_value() is None for j in jobs)
        dump = everything_in_redis(redis_client)
        assert api_key.encode() not in dump and job_secret.encode() not in dump

        counts, last = read_security(redis_client, keys)
        assert counts.get("foreign_function") == len(jobs)
        assert last is not None and last["kind"] == "foreign_function"
        st = collect_status(settings)
        assert st.refused.get("foreign_function") == len(jobs)
        assert any("refused work through Redis" in p for p in st.problems), st.problems

        # the worker refused and carried on: a real change still flows through it
        pipeline.start_relay_thread()
        write(db, "INSERT INTO notes VALUES (7, 'still working')")
        pipeline.wait_caught_up(60)
        client = connect_weaviate(server.url, api_key)
        try:
            got = fetch(client, pipeline.relay.mapping.tables["notes"].collection, object_uuid("notes", (7,)))
        finally:
            client.close()
        assert got is not None and got["body"] == "still working"
        assert all(p.poll() is None for p in pipeline.workers)
    finally:
        hook.close()


def _rows_in_different_partitions(partitions: int) -> tuple[int, int]:
    first = 1
    for other in range(2, 200):
        if partition_of(object_uuid("notes", (other,)), partitions) != partition_of(object_uuid("notes", (first,)),
                                                                                    partitions):
            return first, other
    raise AssertionError("no two keys in different partitions")


def test_forged_fence_payload_and_ticket_write_nothing(tmp_path, make_settings, pipeline_factory, weaviate_client,
                                                       redis_client):
    db = tmp_path / "app.db"
    make_notes_db(db)
    settings = make_settings(db)
    pipeline = pipeline_factory(settings)
    pipeline.init()
    victim, other = _rows_in_different_partitions(settings.partitions)
    write(db, "INSERT INTO notes VALUES (?, 'original')", victim)
    write(db, "INSERT INTO notes VALUES (?, 'keep me')", other)
    pipeline.start_workers(1)
    pipeline.start_relay_thread()
    pipeline.wait_caught_up(60)
    collection = pipeline.relay.mapping.tables["notes"].collection
    pipeline.stop_relay_thread()
    stop_process_groups(pipeline.workers, timeout=15)
    pipeline.workers.clear()
    victim_id, other_id = object_uuid("notes", (victim,)), object_uuid("notes", (other,))
    before = {u: fetch(weaviate_client, collection, u) for u in (victim_id, other_id)}
    assert before[victim_id]["body"] == "original" and before[other_id]["body"] == "keep me"

    # A genuine job, dispatched while no worker runs: the attacker swaps its payload.
    write(db, "UPDATE notes SET body = 'legit update' WHERE id = ?", victim)
    relay = Relay(settings)
    try:
        relay.step()
        (genuine,) = relay.scheduler.in_flight()
        keys = RedisKeys(settings.namespace)
        evil = JobPayload(
            upserts=[{"collection": collection, "uuid": str(victim_id), "tenant": None, "vector": None,
                      "properties": {"body": "PWNED", "s2wContentHash": "0" * 64}, "references": {}}],
            deletes=[Delete(collection, str(other_id))],
        ).dumps()
        redis_client.set(keys.payload(genuine.token), evil)

        # Forged jobs for the other partition: fence + payload + ticket, in every shape.
        partition = partition_of(other_id, settings.partitions)
        queue = Queue(keys.queue, connection=redis_client, serializer=JSONSerializer)
        forged = []
        for n, shape in enumerate(("v2", "v5-no-redis-id", "v3-unsigned", "v3-other-secret", "v3-bad-mac")):
            token = f"evil-{n}"
            redis_client.set(keys.fence(partition), token)
            redis_client.set(keys.payload(token), evil)
            ticket = JobTicket(batch_id="b", namespace=settings.namespace, partitions=(partition,), token=token,
                               lease_seconds=30.0, collections=(collection,), payload_sha256=payload_digest(evil),
                               expires_at=time.time() + TICKET_TTL_SECONDS)
            args = ticket.to_json()
            if shape == "v2":
                args = {k: args[k] for k in ("batch_id", "namespace", "partitions", "token", "lease_seconds")} | {"v": 2}
            elif shape == "v5-no-redis-id":  # the ticket before the Redis identity stamp (v6)
                args = {k: v for k, v in args.items() if k != "redis_id"} | {"v": 5}
            elif shape == "v3-other-secret":
                args = JobSigner(Secret("not-the-secret-" + "x" * 32)).sign_ticket(ticket)
            elif shape == "v3-bad-mac":
                args = dict(args, mac="0" * 64)
            forged.append(queue.enqueue_call(JOB_FUNCTION, args=(args,)))
        pipeline.start_workers(1)
        wait_final(forged)
        wait_for(lambda: read_security(redis_client, keys)[0].get("payload_mismatch"), timeout=60,
                 message="the swapped payload was not refused")
        after = {u: fetch(weaviate_client, collection, u) for u in (victim_id, other_id)}
        assert after == before  # nothing overwritten, nothing deleted
        counts, _ = read_security(redis_client, keys)
        assert counts.get("forged_ticket") == len(forged)
        assert counts.get("payload_mismatch") == 1

        # The relay is delayed, not misled: the refused job is re-sent and the real update lands.
        assert relay.drain(60)
        assert relay.stats["retries"] >= 1
    finally:
        relay.close()
    assert fetch(weaviate_client, collection, victim_id)["body"] == "legit update"
    assert fetch(weaviate_client, collection, other_id)["body"] == "keep me"


def test_forged_acks_settle_nothing(tmp_path, make_settings, pipeline_factory, weaviate_client, redis_client):
    db = tmp_path / "app.db"
    make_notes_db(db)
    settings = make_settings(db)
    pipeline = pipeline_factory(settings)
    pipeline.init()
    write(db, "INSERT INTO notes VALUES (1, 'must really be applied')")
    relay = Relay(settings)
    try:
        relay.step()  # dispatched; no worker runs yet
        (job,) = relay.scheduler.in_flight()
        keys = RedisKeys(settings.namespace)
        forged_ack = {"batch_id": job.batch_id, "partition": job.partition, "token": job.token, "outcome": "applied",
                      "rejected": {}, "error": None, "worker": "attacker", "seconds": 0.1}
        for raw in (b"\xff not json", b"[1, 2]", json.dumps(forged_ack),
                    json.dumps(dict(forged_ack, mac="0" * 64)), json.dumps(dict(forged_ack, partition="x"))):
            redis_client.rpush(keys.acks, raw)
        for _ in range(3):
            relay.step()
        assert relay.stats["forged_acks"] == 5
        assert relay.scheduler.in_flight() == [job]  # still waiting for the real worker
        live = relay.scheduler.ledgers["live"]
        assert live.checkpoint == 0 and live.unacked == 1
        assert read_security(redis_client, keys)[0].get("forged_ack", 0) >= 1

        pipeline.start_workers(1)
        assert relay.drain(60)
    finally:
        relay.close()
    collection = relay.mapping.tables["notes"].collection
    assert fetch(weaviate_client, collection, object_uuid("notes", (1,)))["body"] == "must really be applied"


def test_workers_write_only_mapped_collections(tmp_path, make_settings, pipeline_factory, weaviate_client,
                                               redis_client, collection_prefix):
    """Even a correctly signed job (a leaked secret, a relay bug) writes only mapped collections:
    the signed list of the mapping, and a worker's own allow-list when it has one."""
    db = tmp_path / "app.db"
    make_notes_db(db)
    settings = make_settings(db)
    pipeline = pipeline_factory(settings)
    pipeline.init()
    conn = sqlite3.connect(db)
    try:
        signer = JobSigner(stored_job_secret(conn))
    finally:
        conn.close()
    mapped = settings.load_mapping(sqlite3.connect(db)).tables["notes"].collection
    foreign = f"{collection_prefix}Foreign"
    weaviate_client.collections.create(foreign)
    keys = RedisKeys(settings.namespace)
    queue = Queue(keys.queue, connection=redis_client, serializer=JSONSerializer)
    target = uuid.uuid4()

    def signed_job(token: str, collection: str, listed: tuple[str, ...], partition: int) -> Job:
        payload = JobPayload(upserts=[{"collection": collection, "uuid": str(target), "tenant": None,
                                       "vector": None, "properties": {}, "references": {}}]).dumps()
        redis_client.set(keys.payload(token), payload)
        redis_client.set(keys.fence(partition), token)
        ticket = JobTicket(batch_id=token, namespace=settings.namespace, partitions=(partition,), token=token,
                           lease_seconds=3.0, collections=listed, payload_sha256=payload_digest(payload),
                           expires_at=time.time() + 600)
        return queue.enqueue_call(JOB_FUNCTION, args=(signer.sign_ticket(ticket),))

    pipeline.start_workers(1)
    # 1. the payload names a collection the signed mapping list does not have
    outside = signed_job("t-outside", foreign, (mapped,), 0)
    wait_final([outside])
    # 2. control: the same signed job into a listed collection is applied (the checks are what refuse 1)
    inside = signed_job("t-inside", mapped, (mapped,), 1)
    wait_final([inside])
    assert inside.get_status(refresh=True) == JobStatus.FINISHED
    assert fetch(weaviate_client, mapped, target) is not None
    stop_process_groups(pipeline.workers, timeout=15)
    pipeline.workers.clear()

    # 3. a worker with its own allow-list refuses even a collection the signed list names
    proc = pipeline._spawn("worker", "--allowed-collections", mapped, name="allow-listed")
    pipeline.workers.append(proc)
    listed = signed_job("t-listed", foreign, (mapped, foreign), 2)
    wait_final([listed])
    assert weaviate_client.collections.use(foreign).query.fetch_object_by_id(target) is None
    assert len(weaviate_client.collections.use(foreign).query.fetch_objects(limit=5).objects) == 0
    counts, _ = read_security(redis_client, keys)
    assert counts.get("foreign_collection") == 2
    acks = [signer.open_ack(raw) for raw in redis_client.lrange(keys.acks, 0, -1)]
    assert sorted((a.token, a.outcome) for a in acks) == [
        ("t-inside", "applied"), ("t-listed", "refused"), ("t-outside", "refused")]


def test_a_job_hash_overwritten_in_redis_does_not_stop_the_relay(tmp_path, make_settings, pipeline_factory,
                                                                weaviate_client, redis_client):
    db = tmp_path / "app.db"
    make_notes_db(db)
    settings = make_settings(db)
    pipeline = pipeline_factory(settings)
    pipeline.init()
    write(db, "INSERT INTO notes VALUES (1, 'survives a vandalised job hash')")
    relay = Relay(settings)
    try:
        relay.step()
        (first,) = relay.scheduler.in_flight()
        redis_client.hset(Job.key_for(relay.transport.job_id(first)),
                          mapping={"status": "vandalised", "created_at": "garbage"})
        time.sleep(1.2)  # past the job's next liveness check
        relay.step()  # used to raise ValueError out of the relay loop
        assert first not in relay.scheduler.in_flight()  # declared lost: re-sent
        assert relay.stats["lost_jobs"] == 1
        pipeline.start_workers(1)
        assert relay.drain(60)
        collection = relay.mapping.tables["notes"].collection
    finally:
        relay.close()
    assert fetch(weaviate_client, collection, object_uuid("notes", (1,)))["body"] == "survives a vandalised job hash"
