"""Exit codes a cron job can trust (issue 14, item 7): every failure to run is one line and exit 3.

For ``verify`` exit 1 means "differences found" and 2 "repaired", so a traceback (1) or a
click usage error (2) would be read as a verdict. Here every kind of failure to run — a
usage error on any command, a non-finite number, a bad mapping, a table capture cannot
handle, Weaviate answering 401 or 404, a damaged database page, an unwritable log file,
a declined confirmation — must print exactly one ``error:`` line on stderr and exit 3.
"""

from __future__ import annotations

import http.server
import sqlite3
import threading
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from sqlite_to_weaviate.cli import main
from sqlite_to_weaviate.errors import ConfigError
from sqlite_to_weaviate.operate.config import MigrationConfig, create_migration_config
from sqlite_to_weaviate.settings import Settings
from tests.security.helpers import cli, make_app_db, one_error_line, schema_objects


def _command_paths(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out = []
    for name, cmd in sorted(group.commands.items()):
        out += _command_paths(cmd, prefix + (name,)) if isinstance(cmd, click.Group) else [prefix + (name,)]
    return out


COMMANDS = _command_paths(main)


def invoke(args: list[str], **kwargs) -> object:
    return CliRunner().invoke(main, args, **kwargs)


def test_every_command_is_covered():
    assert {"init", "verify", "backfill", "migrate", "rollback", "status", "run"} <= {p[0] for p in COMMANDS}
    assert ("dead-letters", "retry") in COMMANDS and len(COMMANDS) >= 16


@pytest.mark.parametrize("mistake", [["--no-such-option"], ["--sqlite-url"], ["unexpected-argument"],
                                     ["--partitions", "many"]], ids=["unknown option", "missing value",
                                                                     "extra argument", "bad type"])
@pytest.mark.parametrize("path", COMMANDS, ids=" ".join)
def test_a_usage_error_on_any_command_is_one_line_and_exit_3(path, mistake):
    line = one_error_line(invoke([*path, *mistake]))
    assert "--help')" in line, line  # says where to look


@pytest.mark.parametrize("args", [[], ["no-such-command"], ["dead-letters"], ["dead-letters", "nope"],
                                  ["verify", "--sample", "-1"], ["status", "--max-lag", "soon"]],
                         ids=["no command", "unknown command", "no subcommand", "unknown subcommand",
                              "out of range", "not a number"])
def test_groups_and_ranges_fail_with_exit_3(args):
    one_error_line(invoke(args))


def test_help_and_version_still_exit_0():
    assert invoke(["--help"]).exit_code == 0
    assert invoke(["verify", "--help"]).exit_code == 0 and "--repair" in invoke(["verify", "--help"]).output
    assert invoke(["--version"]).exit_code == 0


def test_a_command_invoked_on_its_own_also_exits_3():
    from sqlite_to_weaviate.cli.operate import rollback_cmd
    from sqlite_to_weaviate.cli.verify import verify_cmd

    for cmd in (verify_cmd, rollback_cmd):
        result = CliRunner().invoke(cmd, ["--bogus"])
        one_error_line(result)


# ---------------------------------------------------------------------------- non-finite numbers
@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "NaN", "1e999"])
@pytest.mark.parametrize("option", ["--lease-seconds", "--job-timeout", "--retry-delay", "--backoff-max",
                                    "--poll-interval"])
def test_non_finite_connection_settings_are_refused(option, value, tmp_path):
    db = make_app_db(tmp_path / "app.db")
    line = one_error_line(invoke(["status", "--sqlite-url", str(db), option, value]))
    assert option in line and "finite" in line, line


@pytest.mark.parametrize("args", [
    ["status", "--max-lag", "nan"], ["ready", "--max-verify-age", "inf"], ["migrate", "--timeout", "nan"],
    ["run", "--shutdown-grace", "inf"], ["run", "--rows-per-second", "nan"], ["run", "--verify-every", "inf"],
    ["backfill", "--rows-per-second", "nan"], ["backfill", "--wait-timeout", "inf"],
    ["verify", "--recheck-timeout", "nan"], ["verify", "--repair-timeout", "-inf"],
], ids=lambda a: " ".join(a))
def test_non_finite_command_options_are_refused(args, tmp_path):
    db = make_app_db(tmp_path / "app.db")
    line = one_error_line(invoke([*args, "--sqlite-url", str(db)]))
    assert args[1] in line, line


def test_non_finite_numbers_from_the_environment_a_settings_file_and_python_are_refused(tmp_path):
    db = make_app_db(tmp_path / "app.db")
    line = one_error_line(invoke(["status", "--sqlite-url", str(db)], env={"S2W_LEASE_SECONDS": "nan"}))
    assert "S2W_LEASE_SECONDS" in line or "lease-seconds" in line, line
    settings_file = tmp_path / "s2w.toml"
    settings_file.write_text("lease_seconds = nan\nretry_delay = 1.0\n")
    line = one_error_line(invoke(["status", "--sqlite-url", str(db), "--config", str(settings_file)]))
    assert "lease_seconds must be a finite number" in line, line
    for field in ("poll_interval", "lease_seconds", "retry_delay", "backoff_max", "outbox_retention_seconds"):
        for bad in (float("nan"), float("inf"), float("-inf")):
            with pytest.raises(ConfigError, match=f"{field} must be a finite number"):
                Settings(sqlite_path=db, **{field: bad})
    with pytest.raises(ConfigError, match="timeout_s must be a finite number of seconds"):
        MigrationConfig(sqlite_url=str(db), timeout_s=float("inf"))
    with pytest.raises(ConfigError, match="retry_delay must be a finite number of seconds"):
        create_migration_config(environ={"S2W_SQLITE_URL": str(db), "S2W_RETRY_DELAY": "nan"})


# ---------------------------------------------------------------------------- errors while running
def test_an_unwritable_log_file_is_one_line(tmp_path):
    db = make_app_db(tmp_path / "app.db")
    target = tmp_path / "no-such-dir" / "s2w.log"
    line = one_error_line(invoke(["status", "--sqlite-url", str(db), "--log-file", str(target)]))
    assert "cannot write the log file" in line and "no-such-dir" in line, line


@pytest.mark.integration
def test_a_mapping_error_and_a_capture_error_are_one_line(tmp_path, make_settings, weaviate_client,
                                                          collection_prefix):
    db = make_app_db(tmp_path / "app.db")
    bad_mapping = tmp_path / "mapping.toml"
    bad_mapping.write_text('[tables.notes]\nvector_column = "embedding"\n')
    settings = make_settings(db, mapping_file=bad_mapping)
    before = schema_objects(db)
    for command in (["init"], ["verify"], ["backfill", "--dry-run"], ["migrate", "--no-backup"]):
        line = one_error_line(cli(settings, *command))
        assert "column 'embedding' does not exist" in line, (command, line)
    wide = make_app_db(tmp_path / "wide.db", "CREATE TABLE wide (a, b, c, d, e, f, g, h, i, v, "
                                             "PRIMARY KEY (a, b, c, d, e, f, g, h, i));")
    line = one_error_line(cli(make_settings(wide), "init"))
    assert "9-column primary key" in line, line
    assert schema_objects(db) == before
    assert [n for n in weaviate_client.collections.list_all(simple=True) if n.startswith(collection_prefix)] == []


class _NotWeaviate(http.server.BaseHTTPRequestHandler):
    """A real HTTP server that is not Weaviate: everything is 404 (a wrong --weaviate-url)."""

    def _answer(self) -> None:
        body = b'{"error": "not found"}'
        self.send_response(404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_DELETE = _answer

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def not_weaviate_url():
    from sqlite_to_weaviate.local.ports import free_ports

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _NotWeaviate)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}?grpc_port={free_ports(1)[0]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.integration
def test_weaviate_answering_404_is_one_line(tmp_path, make_settings, not_weaviate_url):
    db = make_app_db(tmp_path / "app.db")
    settings = make_settings(db, weaviate_url=not_weaviate_url)
    before = schema_objects(db)
    for command in (["init"], ["rollback", "--yes"], ["verify"]):
        line = one_error_line(cli(settings, *command))
        assert "404" in line, (command, line)
    assert schema_objects(db) == before  # init asks Weaviate before it installs capture


@pytest.mark.integration
def test_weaviate_answering_401_is_one_line_without_the_key(tmp_path, make_settings, weaviate_server_factory):
    server = weaviate_server_factory(api_key="right-key")
    db = make_app_db(tmp_path / "app.db")
    settings = make_settings(db, weaviate_url=server.url)
    for command in (["init"], ["rollback", "--yes"], ["verify"]):
        result = cli(settings, *command, "--api-key", "wrong-key")
        line = one_error_line(result)
        assert "API key" in line or "401" in line, (command, line)
        assert "wrong-key" not in result.output + result.stderr


def _corrupt(db: Path, page: int) -> None:
    size = sqlite3.connect(db).execute("PRAGMA page_size").fetchone()[0]
    with open(db, "r+b") as fh:
        fh.seek((page - 1) * size)
        fh.write(bytes([0x0D]) + b"\xff" * (size - 1))  # a leaf page header with impossible cell counts


@pytest.mark.integration
def test_init_refuses_a_damaged_database_before_writing_anything(tmp_path, make_settings, weaviate_client,
                                                                 collection_prefix):
    db = tmp_path / "app.db"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
    conn.executemany("INSERT INTO notes VALUES (?, ?)", [(i, "x" * 300) for i in range(2000)])
    conn.commit()
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.close()
    _corrupt(db, pages // 2)
    before = db.read_bytes()
    settings = make_settings(db)
    line = one_error_line(cli(settings, "init"))
    assert "is damaged (PRAGMA quick_check" in line and "nothing was changed" in line, line
    assert db.read_bytes() == before  # not even switched to WAL
    assert [n for n in weaviate_client.collections.list_all(simple=True) if n.startswith(collection_prefix)] == []
    for command in (["migrate", "--no-backup"], ["backfill", "--dry-run"]):
        line = one_error_line(cli(settings, *command))
        assert "malformed" in line or "damaged" in line, (command, line)
    one_error_line(cli(settings, "verify"))


@pytest.mark.integration
def test_a_declined_confirmation_is_exit_3_and_changes_nothing(tmp_path, make_settings, weaviate_client,
                                                               collection_prefix):
    db = make_app_db(tmp_path / "app.db")
    settings = make_settings(db)
    assert cli(settings, "init").exit_code == 0
    before = schema_objects(db)
    result = CliRunner().invoke(main, ["rollback", "--sqlite-url", str(db), "--weaviate-url", settings.weaviate_url,
                                       "--redis-url", settings.redis_url, "--namespace", settings.namespace,
                                       "--collection-prefix", settings.collection_prefix], input="n\n")
    assert one_error_line(result) == "error: aborted; nothing was changed"
    assert schema_objects(db) == before
    assert len([n for n in weaviate_client.collections.list_all(simple=True) if n.startswith(collection_prefix)]) == 2
