"""Never report success with rows missing (issue 19), end to end on the real servers.

The example chat database with ``agent_interactions.big_counter`` holding 64-bit values
(2^53+1, 2^63-1, -2^63) and no mapping file, as a new user would run it:

* ``migrate`` exits 1, names the column and the mapping line to write, reports the count
  check per table, and rolls back as configured (app data untouched);
* ``backfill --dry-run``, ``migrate --dry-run`` and ``run --dry-run`` predict exactly the
  dead letters a real run leaves;
* ``verify`` counts the refused rows (exit 1; 0 with ``--allow-refused``, still listed)
  and the phase never reaches 4;
* after ``suggest-mapping FILE`` and ``--mapping FILE``, ``migrate`` succeeds with equal counts
  and the 64-bit values are exact in Weaviate.
"""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from examples.chat_app.seed import build_sample_database
from sqlite_to_weaviate.cli.backfill import backfill_cmd
from sqlite_to_weaviate.cli.suggest_mapping import suggest_mapping_cmd
from sqlite_to_weaviate.operate import Phase, create_migration_config, readiness, run_migration
from sqlite_to_weaviate.cli.operate import migrate_cmd, phase_cmd, run_cmd
from sqlite_to_weaviate.cli.verify import verify_cmd
from tests.integration.test_migrate import TUNING, app_checksum, our_collections, tool_objects

pytestmark = pytest.mark.integration

BIG_VALUES = (2**53 + 1, 2**63 - 1, -(2**63), 7, None)   # the first three cannot be Weaviate ints


@pytest.fixture
def big_db(tmp_path: Path) -> dict:
    db = tmp_path / "chat.db"
    build_sample_database(db, conversations=25, seed=3)
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        conn.execute("ALTER TABLE agent_interactions ADD COLUMN big_counter INTEGER")
        ids = [r[0] for r in conn.execute("SELECT id FROM agent_interactions ORDER BY id")]
        values = {key: BIG_VALUES[i % len(BIG_VALUES)] for i, key in enumerate(ids)}
        conn.execute("BEGIN")
        conn.executemany("UPDATE agent_interactions SET big_counter = ? WHERE id = ?",
                         [(v, k) for k, v in values.items()])
        conn.execute("COMMIT")
        rows = {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in (
            "conversations", "messages", "documents", "document_chunks", "agent_interactions", "multimodal_content")}
    finally:
        conn.close()
    refused = sum(1 for v in values.values() if v is not None and abs(v) > 2**53)
    assert refused >= 10
    return {"db": db, "values": values, "refused": refused, "rows": rows}


@pytest.fixture
def args(big_db, weaviate_url, redis_url, redis_namespace, collection_prefix, weaviate_client, redis_client) -> list[str]:
    """CLI options as in the issue: no mapping file."""
    return ["--sqlite-url", str(big_db["db"]), "--weaviate-url", weaviate_url, "--redis-url", redis_url,
            "--namespace", redis_namespace, "--collection-prefix", collection_prefix, "--lease-seconds", "3",
            "--job-timeout", "15", "--retry-delay", "0.2", "--backoff-max", "2", "--poll-interval", "0.3",
            "--partitions", "4"]


def _dead_letters(db: Path) -> int:
    conn = sqlite3.connect(db)
    try:
        return conn.execute("SELECT count(*) FROM _s2w_dead_letters WHERE tbl = 'agent_interactions'").fetchone()[0]
    finally:
        conn.close()


def test_migrate_exits_1_names_the_column_and_the_fix_and_rolls_back(big_db, args, weaviate_client, collection_prefix):
    n, rows = big_db["refused"], big_db["rows"]["agent_interactions"]
    checksum = app_checksum(big_db["db"])
    result = CliRunner().invoke(migrate_cmd, args + ["--no-backup", "--validation-sample", "50"])
    out = result.output
    assert result.exit_code == 1, out
    assert f"error: {n} row(s) are refused by the mapping or Weaviate" in out
    assert f'error: agent_interactions.big_counter: {n} row(s) beyond ±2^53 → type = "text"' in out
    assert "[tables.agent_interactions.columns.big_counter]\n    type = \"text\"" in out
    # the original design's count check, per collection; a mismatch is a failure
    assert (f"agent_interactions: {rows} rows -> {collection_prefix}AgentInteractions: {rows - n} objects "
            f"({n} refused)  MISMATCH") in out
    assert f"count check failed: agent_interactions: {rows} rows" in out
    messages = big_db["rows"]["messages"]
    assert f"messages: {messages} rows -> {collection_prefix}Messages: {messages} objects\n" in out
    assert "migration FAILED" in out and "phase 4" not in out
    # rollback_on_failure (default): everything the migration created is gone, the app's data untouched
    assert "ROLLED BACK" in out
    assert our_collections(weaviate_client, collection_prefix) == []
    assert tool_objects(big_db["db"]) == [] and app_checksum(big_db["db"]) == checksum


def test_dry_runs_predict_exactly_the_dead_letters_and_verify_counts_them(
        big_db, args, weaviate_url, redis_url, redis_namespace, collection_prefix, weaviate_client, pipeline_factory):
    n, db = big_db["refused"], big_db["db"]
    runner = CliRunner()
    # the three dry runs read and convert every row, write nothing, and predict the refusals (exit 1)
    planned = runner.invoke(backfill_cmd, args + ["--dry-run"])
    assert planned.exit_code == 1, planned.output
    assert re.search(rf"agent_interactions -> \S+: \d+ row\(s\), {n} would be REFUSED", planned.output)
    assert f'refused big_counter: {n} row(s) beyond ±2^53 → type = "text"' in planned.output
    assert f"{n} would be refused" in planned.output and "nothing was written" in planned.output
    for command in (migrate_cmd, run_cmd):
        dry = runner.invoke(command, args + ["--dry-run"])
        assert dry.exit_code == 1, dry.output
        assert f"the migration would FAIL: {n} row(s) would be refused" in dry.output
        assert f'refused big_counter: {n} row(s) beyond ±2^53 → type = "text"' in dry.output
    assert tool_objects(db) == [] and our_collections(weaviate_client, collection_prefix) == []

    config = create_migration_config(environ={}, sqlite_url=str(db), weaviate_url=weaviate_url, redis_url=redis_url,
                                     namespace=redis_namespace, collection_prefix=collection_prefix,
                                     settings_overrides=TUNING, timeout_s=180.0, validation_sample_size=50,
                                     backup_before_migration=False, rollback_on_failure=False)
    plan = run_migration(config.replace(dry_run=True))
    assert not plan.success and plan.refused == n and plan.plan["tables"]["agent_interactions"]["refused"] == n

    result = run_migration(config)
    assert not result.success and not result.rolled_back and result.phase == Phase.LIVE, result.summary()
    assert _dead_letters(db) == n == plan.refused          # the prediction is exact
    assert result.refused == n and result.errors[0].startswith(f"{n} row(s) are refused")
    assert any(e.startswith(f"agent_interactions.big_counter: {n} row(s) beyond ±2^53") for e in result.errors)
    counts = result.counts["agent_interactions"]
    assert (counts["rows"], counts["objects"], counts["refused"], counts["equal"]) == (
        big_db["rows"]["agent_interactions"], big_db["rows"]["agent_interactions"] - n, n, False)
    assert not readiness(config.to_settings()).ready

    # verify: refused rows are differences (exit 1) in their own column, with reasons and the fix
    report_file = db.parent / "verify.json"
    checked = runner.invoke(verify_cmd, args + ["--report", str(report_file)])
    assert checked.exit_code == 1, checked.output
    assert re.search(rf"agent_interactions\s+{big_db['rows']['agent_interactions']}\s+\d+\s+0\s+0\s+0\s+0\s+{n}\s",
                     checked.output), checked.output
    report = json.loads(report_file.read_text())
    assert report["refused"] == n and report["clean"] is False and report["exit_code"] == 1
    refused = report["tables"]["agent_interactions"]["refused"]
    assert refused["total"] == n and "beyond +-2^53" in refused["items"][0]["detail"]
    assert report["tables"]["agent_interactions"]["refused_reasons"]["reasons"][0]["column"] == "big_counter"
    # --allow-refused accepts them explicitly: exit 0, still listed; the phase stays below 4
    allowed = runner.invoke(verify_cmd, args + ["--allow-refused", "--json"])
    assert allowed.exit_code == 0, allowed.output
    data = json.loads(allowed.output[allowed.output.index("{"):])
    assert data["refused"] == n and data["allow_refused"] is True and data["exit_code"] == 0
    assert "phase 3:" in runner.invoke(phase_cmd, args).output
    assert not readiness(config.to_settings()).ready
    # backfill --wait does not report success either: once applied, the refused rows are named (exit 1)
    pipeline = pipeline_factory(config.to_settings())
    pipeline.start_workers(1)
    pipeline.start_relay_thread()
    again = runner.invoke(backfill_cmd, args + ["--table", "agent_interactions", "--restart", "--wait",
                                                "--wait-timeout", "120"])
    assert again.exit_code == 1, again.output
    assert "all backfilled keys applied" in again.output
    assert f"PROBLEM: agent_interactions: {n} row(s) refused by the mapping or Weaviate" in again.output


def test_following_the_suggestion_migrates_with_counts_equal(big_db, args, tmp_path, weaviate_client,
                                                            collection_prefix):
    runner = CliRunner()
    suggested = tmp_path / "suggested.toml"
    made = runner.invoke(suggest_mapping_cmd, args + [str(suggested)])
    assert made.exit_code == 0, made.output
    text = suggested.read_text()
    assert "[tables.agent_interactions.columns.big_counter]\ntype = \"text\"" in text
    assert f"{big_db['refused']} of" in text and "beyond ±2^53" in text   # the comment says why, with counts
    assert f"rows refused: {big_db['refused']} with the default mapping, 0 with the suggestion" in made.output
    assert tool_objects(big_db["db"]) == []                   # read-only on the app's database
    with_mapping = args + ["--mapping", str(suggested)]
    dry = runner.invoke(migrate_cmd, with_mapping + ["--dry-run"])
    assert dry.exit_code == 0 and "REFUSED" not in dry.output, dry.output
    result = runner.invoke(migrate_cmd, with_mapping + ["--no-backup", "--validation-sample", "50"])
    assert result.exit_code == 0, result.output
    for table, rows in big_db["rows"].items():
        assert re.search(rf"^{table}: {rows} rows -> {collection_prefix}\w+: {rows} objects$", result.output, re.M), \
            result.output
    assert "migration succeeded" in result.output and f"phase {int(Phase.VERIFIED)}" in result.output
    assert _dead_letters(big_db["db"]) == 0
    # the 64-bit values arrived exactly, as decimal text
    collection = weaviate_client.collections.use(f"{collection_prefix}AgentInteractions")
    stored = {o.properties["sourceId"]: o.properties.get("bigCounter") for o in collection.iterator()}
    assert stored == {k: (None if v is None else str(v)) for k, v in big_db["values"].items()}
