"""``sqlite-to-weaviate embeddings status | rebuild | switch | rollback | drop | prune``.

Thin wrappers over :mod:`sqlite_to_weaviate.operate.embeddings` (docs/embeddings.md). Exit
codes as everywhere: 0 done, 1 a switch refused because the new version does not verify
(or ``rebuild --wait`` ended before the backfill was applied), 3 could not run.
"""

from __future__ import annotations

import json
import sys

import click

from sqlite_to_weaviate.settings import Settings

from .app import EXIT_OK, EXIT_PROBLEMS, command, main
from .options import finite


@main.group("embeddings")
def embeddings_group() -> None:
    """Vectors computed by embedders: versions, model changes without downtime, the cache."""


_TABLE = click.option("--table", help="The table (needed when several tables have versions).")


@command(embeddings_group, "status")
@click.option("--json", "as_json", is_flag=True)
def status_cmd(settings: Settings, as_json: bool) -> None:
    """Versions of each table (alias, state, embedder ids, objects), the cache, model calls and hit rates."""
    from sqlite_to_weaviate.embed.counters import summary_lines
    from sqlite_to_weaviate.operate.embedding_status import status

    data = status(settings)
    if as_json:
        click.echo(json.dumps(data, indent=2, default=str))
        return
    for t in data["tables"]:
        click.echo(f"{t['table']}: alias {t['alias']} -> {t['alias_target'] or 'MISSING (run init)'}")
        for v in t["versions"]:
            vectors = ", ".join(f"{n}={i}" for n, i in v["vectors"].items())
            objects = "missing" if v["objects"] is None else f"{v['objects']} objects"
            click.echo(f"  {v['version']:<6} {v['state']:<9} {v['collection']} ({objects}) {vectors}")
        if t["drift"]:
            click.echo(f"  note: {t['drift']}")
    cache = data["cache"]
    if cache:
        click.echo(f"cache {cache['collection']}: {cache['entries']} entries (bound {cache['max_entries']}"
                   + (f", {cache['max_age_days']} days" if cache["max_age_days"] else "") + ")")
    for line in summary_lines(data["counters"]):
        click.echo(f"calls {line}")
    if data.get("counters_error"):
        click.echo(f"counters unavailable: {data['counters_error']}")


@command(embeddings_group, "rebuild")
@_TABLE
@click.option("--to", "to", help="Name of the new version (default: the next vN).")
@click.option("--force", is_flag=True, help="Rebuild even if the live version already has the mapping's vectors.")
@click.option("--resume", is_flag=True, help="Re-run the backfill of the version being built.")
@click.option("--wait/--no-wait", default=True, show_default=True, help="Wait until the backfill is applied.")
@click.option("--timeout", type=finite(0, min_open=True), help="Seconds to wait for the backfill.")
def rebuild_cmd(settings: Settings, table: str | None, to: str | None, force: bool, resume: bool, wait: bool,
                timeout: float | None) -> None:
    """Build a new collection version beside the live one with the mapping's embedders (history by backfill,
    live changes written to both)."""
    from sqlite_to_weaviate.operate.embeddings import rebuild

    report = rebuild(settings, table=table, to=to, force=force, resume=resume, wait=wait, timeout=timeout)
    for line in report.lines():
        click.echo(line)
    sys.exit(EXIT_OK if report.applied is not False else EXIT_PROBLEMS)


@command(embeddings_group, "switch")
@_TABLE
@click.option("--to", "to", help="The version to make live (default: the one being built).")
@click.option("--no-verify", is_flag=True, help="Switch without verifying the new version first.")
@click.option("--sample", type=click.IntRange(min=0), default=100, show_default=True,
                 help="Rows compared field by field.")
@click.option("--search-sample", type=click.IntRange(min=1), default=100, show_default=True,
                 help="Rows whose search is checked.")
@click.option("--search-min-recall", type=click.FloatRange(0, 1), default=0.9, show_default=True)
def switch_cmd(settings: Settings, table: str | None, to: str | None, no_verify: bool, sample: int, search_sample: int,
               search_min_recall: float) -> None:
    """Verify a version (content hashes + search) and point the alias at it; the old one stays written."""
    from sqlite_to_weaviate.operate.embeddings import switch

    report = switch(settings, table=table, to=to, verify_first=not no_verify, sample=sample,
                    search_sample=search_sample, min_recall=search_min_recall)
    for line in report.lines():
        click.echo(line)
    sys.exit(EXIT_OK if report.switched else EXIT_PROBLEMS)


@command(embeddings_group, "rollback")
@_TABLE
@click.option("--to", "to", help="The standby version (default: the latest).")
def rollback_cmd(settings: Settings, table: str | None, to: str | None) -> None:
    """Point the alias back at the previous (standby) version, instantly."""
    from sqlite_to_weaviate.operate.embeddings import rollback

    for line in rollback(settings, table=table, to=to).lines():
        click.echo(line)


@command(embeddings_group, "drop")
@_TABLE
@click.option("--version", "version", required=True, help="A version that is not live.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def drop_cmd(settings: Settings, table: str | None, version: str, yes: bool) -> None:
    """Stop writing a version that is not live and delete its collection (no rollback to it afterwards)."""
    from sqlite_to_weaviate.operate.embeddings import drop

    if not yes:
        click.confirm(f"Drop version {version} and delete its collection?", abort=True)
    for line in drop(settings, version=version, table=table):
        click.echo(line)


@command(embeddings_group, "prune")
def prune_cmd(settings: Settings) -> None:
    """Bound the embedding cache to [embedding_cache] max_entries / max_age_days (oldest first)."""
    from sqlite_to_weaviate.operate.embedding_status import prune_cache

    report = prune_cache(settings)
    click.echo(f"cache entries: {report.before} -> {report.after} (deleted {report.deleted_by_age} by age, "
               f"{report.deleted_by_count} by count, {report.seconds:.1f}s)")
