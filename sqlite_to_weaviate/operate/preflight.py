"""Read-only checks that every store is reachable and usable, before anything is written.

A migration that fails half-way leaves work to undo; one that fails here leaves nothing.
Each check turns the client libraries' exceptions into one sentence naming the store, the
address and the likely fix. Nothing here writes: the database is opened read-only, Weaviate
and Redis only receive read requests.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlite_to_weaviate.errors import S2WError
from sqlite_to_weaviate.settings import Settings


class PreflightError(S2WError):
    """A store is missing, unreachable or refuses us; nothing was written."""


@dataclass
class PreflightReport:
    tables: dict[str, str] = field(default_factory=dict)          # table -> collection
    skipped: dict[str, str] = field(default_factory=dict)
    existing_collections: list[str] = field(default_factory=list)


def _weaviate_error(settings: Settings, exc: Exception) -> PreflightError:
    text = str(exc)
    where = settings.weaviate.url.split("?")[0]
    if "401" in text or "403" in text or "nauthori" in text or "orbidden" in text:
        return PreflightError(f"Weaviate at {where} rejected the credentials: check the API key (--api-key / "
                              "S2W_WEAVIATE_API_KEY)")
    return PreflightError(f"cannot reach Weaviate at {where}: {type(exc).__name__}: {text.splitlines()[0][:200] if text else ''}")


def preflight(settings: Settings) -> PreflightReport:
    from sqlite_to_weaviate.capture.install import check_names
    from sqlite_to_weaviate.sqlite_db import check_integrity

    report = PreflightReport()
    check_integrity(settings.sqlite_path)  # ConfigError: missing file, not a database, a damaged page
    conn = settings.open_db(readonly=True)
    try:
        mapping = settings.load_mapping(conn)
        check_names(conn, sorted(mapping.tables))  # NameTaken: an app object holds a name capture needs
    finally:
        conn.close()
    if not mapping.tables:
        raise PreflightError(f"no table of {str(settings.sqlite_path)!r} can be mapped"
                             + (f" ({'; '.join(f'{t}: {w}' for t, w in mapping.skipped.items())})" if mapping.skipped else ""))
    report.tables = {t.table: t.collection for t in mapping.collections_in_order()}
    report.skipped = dict(mapping.skipped)
    client: Any = None
    try:
        client = settings.connect_weaviate()
        if not client.is_ready():
            raise PreflightError(f"Weaviate at {settings.weaviate.url.split('?')[0]} is not ready")
        names = set(client.collections.list_all(simple=True))
        report.existing_collections = sorted(c for c in report.tables.values() if c in names)
    except PreflightError:
        raise
    except Exception as exc:  # noqa: BLE001 - every client failure becomes one clear line
        raise _weaviate_error(settings, exc) from None
    finally:
        if client is not None:
            try:
                client.close()
            except Exception:  # noqa: BLE001
                pass
    try:
        redis_client = settings.connect_redis()
        try:
            redis_client.ping()
        finally:
            redis_client.close()
    except Exception as exc:  # noqa: BLE001
        raise PreflightError(f"cannot reach Redis at {_redis_where(settings.redis_url)}: {type(exc).__name__}: {exc}") from None
    return report


def _redis_where(url: str) -> str:
    """The URL without its passwords."""
    from sqlite_to_weaviate.redaction import redact_url

    return redact_url(url)


def ensure_no_relay(settings: Settings, *, hint: str) -> None:
    """Fail fast (RelayAlreadyRunning) when a relay already serves this database.

    Takes and releases the relay's own lock; a lock file it had to create is removed again.
    """
    from sqlite_to_weaviate.writer.relay_lock import RelayAlreadyRunning, RelayLock

    lock = RelayLock(settings.sqlite_path)
    existed = lock.path.exists()
    try:
        lock.acquire()
    except RelayAlreadyRunning as exc:
        raise RelayAlreadyRunning(f"{exc}; {hint}") from None
    lock.release()
    if not existed:
        try:
            lock.path.unlink()
        except OSError:
            pass
