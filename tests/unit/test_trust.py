"""Pure parts of invariant 10: MACs, the worker's checks, the refusal rules, the job secret."""

from __future__ import annotations

import json
import sqlite3
import time

import pytest
import redis
from rq import Callback
from rq.job import Job
from rq.serializers import JSONSerializer
from rq.webhook import Webhook

from sqlite_to_weaviate.cli.options import load_settings
from sqlite_to_weaviate.errors import ConfigError
from sqlite_to_weaviate.settings import Settings
from sqlite_to_weaviate.weaviate_adapter import Secret
from sqlite_to_weaviate.writer.guard import refusal, refusal_reason
from sqlite_to_weaviate.writer.job import JOB_FUNCTION
from sqlite_to_weaviate.writer.job_secret import (
    ensure_stored_job_secret, read_job_secret_file, relay_job_secret, stored_job_secret, worker_job_secret,
)
from sqlite_to_weaviate.writer.payload import Ack, Delete, JobPayload, JobTicket
from sqlite_to_weaviate.writer.signing import ForgedAck, JobSigner, Refused, payload_digest
from sqlite_to_weaviate.writer.trust import WorkerTrust, parse_collections

KEY = Secret("k" * 32)
PAYLOAD = JobPayload(upserts=[{"collection": "Notes", "uuid": "u1", "properties": {}}],
                     deletes=[Delete("Notes", "u2")]).dumps()


def ticket(**changes) -> JobTicket:
    values = dict(batch_id="b", namespace="ns", partitions=(3, 7), token="run-1", lease_seconds=30.0,
                  collections=("Notes", "Tags"), payload_sha256=payload_digest(PAYLOAD), expires_at=time.time() + 60,
                  redis_id="r" * 40 + "/" + "a" * 40)
    values.update(changes)
    return JobTicket(**values)


def test_a_signed_ticket_survives_rqs_json_round_trip_and_nothing_else_does():
    signer = JobSigner(KEY)
    signed = signer.sign_ticket(ticket())
    travelled = json.loads(json.dumps(signed))  # what RQ's JSON serializer hands the worker
    assert signer.open_ticket(travelled) == ticket(expires_at=travelled["expires_at"])
    for field, value in (("partitions", [3]), ("partitions", [3, 7, 8]), ("token", "run-2"), ("namespace", "other"), ("collections", ["Evil"]),
                         ("payload_sha256", "0" * 64), ("expires_at", 1e12), ("lease_seconds", 300.0),
                         ("redis_id", ""), ("redis_id", "r" * 40 + "/" + "b" * 40)):  # the failover stamp is signed
        with pytest.raises(Refused) as caught:
            signer.open_ticket(dict(travelled, **{field: value}))
        assert caught.value.kind == "forged_ticket", field
    for forged in ({k: v for k, v in travelled.items() if k != "mac"}, dict(travelled, mac="0" * 64),
                   dict(travelled, mac=None), "not a dict", [travelled], JobSigner(Secret("x" * 32)).sign_ticket(ticket())):
        with pytest.raises(Refused):
            signer.open_ticket(forged)
    assert "k" * 32 not in repr(signer)


def test_acks_verify_only_with_the_secret_and_the_right_types():
    signer = JobSigner(KEY)
    ack = Ack(batch_id="b", partition=3, token="run-1", outcome="applied", rejected={"u": "bad"}, worker="w")
    assert signer.open_ack(signer.seal_ack(ack)) == ack
    sealed = json.loads(signer.seal_ack(ack))
    for raw in (b"\xff", "[]", json.dumps(ack.to_json()), json.dumps(dict(sealed, outcome="fenced")),
                json.dumps(dict(sealed, mac="0" * 64)), JobSigner(Secret("y" * 32)).seal_ack(ack)):
        with pytest.raises(ForgedAck):
            signer.open_ack(raw)
    # a ticket's MAC is never an ack's (domain separation)
    body = ack.to_json()
    assert signer._mac(b"s2w-ticket\x00", body) != signer._mac(b"s2w-ack\x00", body)
    with pytest.raises(ForgedAck, match="wrong type"):
        bad = dict(ack.to_json(), partition="3")
        signer.open_ack(json.dumps({**bad, "mac": signer._mac(b"s2w-ack\x00", bad)}))


def test_an_unsure_ack_says_so_and_a_sure_one_reads_as_before():
    signer = JobSigner(KEY)
    sure = Ack(batch_id="b", partition=3, token="run-1", outcome="applied")
    assert "unsure" not in sure.to_json()  # a relay from before the field reads it as ever
    unsure = Ack(batch_id="b", partition=3, token="run-1", outcome="applied", unsure=True)
    assert signer.open_ack(signer.seal_ack(unsure)).unsure is True
    assert signer.open_ack(signer.seal_ack(sure)).unsure is False
    for value in (1, "true", None):  # untrusted: only a JSON boolean
        bad = dict(sure.to_json(), unsure=value)
        with pytest.raises(ForgedAck, match="wrong type"):
            signer.open_ack(json.dumps({**bad, "mac": signer._mac(b"s2w-ack\x00", bad)}))


def test_worker_checks_namespace_expiry_payload_and_collections():
    signer = JobSigner(KEY)
    trust = WorkerTrust(signer=signer, namespace="ns")
    good = trust.open_ticket(signer.sign_ticket(ticket()))
    assert trust.open_payload(good, PAYLOAD).deletes == [Delete("Notes", "u2")]
    with pytest.raises(Refused) as caught:
        WorkerTrust(signer=signer, namespace="other").open_ticket(signer.sign_ticket(ticket()))
    assert caught.value.kind == "foreign_namespace"
    with pytest.raises(Refused) as caught:
        trust.check_fresh(ticket(expires_at=time.time() - 1))
    assert caught.value.kind == "expired_ticket"
    with pytest.raises(Refused) as caught:
        trust.open_payload(good, PAYLOAD + b" ")
    assert caught.value.kind == "payload_mismatch"
    with pytest.raises(Refused) as caught:
        trust.open_payload(ticket(collections=("Tags",)), PAYLOAD)
    assert caught.value.kind == "foreign_collection" and "Notes" in caught.value.reason
    with pytest.raises(Refused):
        WorkerTrust(signer=signer, namespace="ns", allowed=frozenset({"Tags"})).open_payload(good, PAYLOAD)
    with pytest.raises(Refused) as caught:
        WorkerTrust(signer=None, namespace="ns").open_ticket(signer.sign_ticket(ticket()))
    assert caught.value.kind == "no_secret"
    assert parse_collections(" A, B ,,") == frozenset({"A", "B"}) and parse_collections("") is None


def _job(func, *args, **options) -> Job:
    return Job.create(func, args=args, connection=redis.Redis(), serializer=JSONSerializer, **options)


def test_refusal_reads_the_job_without_importing_what_it_names():
    assert refusal_reason(_job(JOB_FUNCTION, {"v": 3})) is None
    assert refusal(_job("os.system", "id"))[0] == "foreign_function"
    assert "os.getenv" in refusal_reason(_job("os.getenv", "S2W_JOB_SECRET"))
    assert "not one ticket" in refusal_reason(_job(JOB_FUNCTION, {"v": 3}, "extra"))
    assert "failure callback" in refusal_reason(_job(JOB_FUNCTION, {"v": 3}, on_failure=Callback("os.system")))
    assert "success callback" in refusal_reason(_job(JOB_FUNCTION, {"v": 3}, on_success=Callback("os.system")))
    hook = Webhook("http://127.0.0.1:9/x", "failed")
    assert "webhooks" in refusal_reason(_job(JOB_FUNCTION, {"v": 3}, webhooks=[hook]))
    assert refusal_reason(_job("no_such_module_xyz.f")) is not None


def test_unreadable_job_data_is_refused_naming_the_cause_not_the_data():
    job = _job(JOB_FUNCTION, {"v": 3})
    job.data = b'{"not json: SECRET-LOOKING-DATA'  # what a vandal (or a torn write) leaves
    kind, reason = refusal(job)
    assert kind == "unreadable_job"
    assert reason == "job data cannot be read (DeserializationError from JSONDecodeError)"
    assert "SECRET" not in reason


def test_the_job_secret_is_stored_once_read_explicitly_or_refused(tmp_path):
    db = tmp_path / "app.db"
    conn = sqlite3.connect(db, isolation_level=None)
    assert stored_job_secret(conn) is None
    first = ensure_stored_job_secret(conn)
    assert len(first.reveal()) == 64 and ensure_stored_job_secret(conn) == first
    assert relay_job_secret(None, conn) == first
    assert relay_job_secret(Secret("e" * 20), conn) == "e" * 20  # explicit wins, never stored
    rotated = ensure_stored_job_secret(conn, rotate=True)
    assert rotated != first and stored_job_secret(conn) == rotated
    conn.close()
    assert worker_job_secret(None, db) == rotated
    assert worker_job_secret(None, tmp_path / "missing.db") is None
    assert worker_job_secret(Secret("f" * 20), None) == "f" * 20

    secret_file = tmp_path / "secret"
    secret_file.write_text("s" * 40 + "\n")
    assert read_job_secret_file(secret_file) == "s" * 40
    for content, message in (("", "empty"), ("short", "at least 16")):
        secret_file.write_text(content)
        with pytest.raises(ConfigError, match=message):
            read_job_secret_file(secret_file)
    with pytest.raises(ConfigError, match="does not exist"):
        read_job_secret_file(tmp_path / "nope")
    with pytest.raises(ConfigError, match="at least 16") as caught:
        Settings(sqlite_path=db, job_secret="tooshort")
    assert "tooshort" not in str(caught.value)
    secret_file.write_text("t" * 32)
    settings = load_settings({"sqlite_path": str(db)}, job_secret_file=secret_file, environ={})
    assert settings.job_secret == "t" * 32 and "t" * 32 not in repr(settings)
    with pytest.raises(ConfigError, match="give one"):
        load_settings({"sqlite_path": str(db), "job_secret": "u" * 32}, job_secret_file=secret_file, environ={})
    with pytest.raises(ConfigError, match="give one"):  # a secret from any source, here the environment
        load_settings({"sqlite_path": str(db)}, job_secret_file=secret_file, environ={"S2W_JOB_SECRET": "u" * 32})
