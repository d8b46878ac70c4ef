"""``sqlite-to-weaviate suggest-mapping [FILE]``: write a starting mapping from the data.

Read-only on the app's database (opened ``mode=ro``); the only file written is FILE, atomically,
and never over an existing file without ``--force`` or over the database itself. Without FILE
(or with ``-``) the TOML goes to stdout; the one-line summaries go to stderr either way, so
``suggest-mapping > mapping.toml`` works too. Exit 0 on success, 3 when it cannot run.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from sqlite_to_weaviate.errors import ConfigError
from sqlite_to_weaviate.settings import Settings

from .app import command, main


def _write(path: Path, text: str, force: bool, database: Path) -> None:
    target = path.resolve()
    db = database.resolve()
    if target in (db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")):
        raise ConfigError(f"{path} is the database itself; choose another file for the mapping")
    if target.exists() and not force:
        raise ConfigError(f"{path} already exists; pass --force to overwrite it, or choose another file")
    if not target.parent.is_dir():
        raise ConfigError(f"directory {str(target.parent)!r} does not exist")
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(target)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise ConfigError(f"cannot write {path}: {exc.strerror or exc}") from None


@command(main, "suggest-mapping")
@click.argument("file", required=False, type=click.Path(dir_okay=False))
@click.option("--force", is_flag=True, help="Overwrite FILE if it exists.")
@click.option("--progress/--no-progress", "progress_flag", default=None, help="Progress bar (default: on a TTY).")
def suggest_mapping_cmd(settings: Settings, file: str | None, force: bool, progress_flag: bool | None) -> None:
    """Write a starting mapping TOML from the data itself (read-only): types that keep every value, dates,
    vectors, JSON objects -- each with a comment saying why. Starts from --mapping if given."""
    from sqlite_to_weaviate.backfill.progress import ProgressDisplay, ProgressEvent

    from sqlite_to_weaviate.mapping.config_file import load_mapping_config
    from sqlite_to_weaviate.mapping.suggest import suggest_mapping

    base = load_mapping_config(settings.mapping_file) if settings.mapping_file else None
    show = sys.stderr.isatty() if progress_flag is None else progress_flag
    display = ProgressDisplay(tty=show, activity="suggest-mapping") if show else None

    def progress(table: str, done: int, total: int) -> None:
        if display is not None:
            display.update(ProgressEvent(table, done, max(total, done), None, None, done=done >= total))

    conn = settings.open_db(readonly=True)
    try:
        suggestion = suggest_mapping(conn, base, source=str(settings.sqlite_path), progress=progress)
    finally:
        conn.close()
        if display is not None:
            display.close()
    text = suggestion.render()
    if file in (None, "-"):
        click.echo(text, nl=False)
    else:
        _write(Path(file), text, force, settings.sqlite_path)
    for note in suggestion.notes:
        click.echo(f"suggested {note}", err=True)
    where = "stdout" if file in (None, "-") else file
    click.echo(f"{suggestion.rows_read} row(s) read; rows refused: {suggestion.refused_before} with "
               f"{'--mapping' if base else 'the default mapping'}, {suggestion.refused_after} with the suggestion; "
               f"wrote {where}" + (f" (use it with --mapping {file})" if where != "stdout" else ""), err=True)
