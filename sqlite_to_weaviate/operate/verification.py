"""One place where operations call the verifier, whatever shape its report has.

``sqlite_to_weaviate.verify.verify`` (content-hash merge-join, streamed) is the verifier.
Until it is importable, a simple built-in check stands in: per collection it compares the
set of (uuid, content hash) pairs of both sides — exact, but it holds one table's pairs in
memory, so it is only a fallback. Either way the caller gets a :class:`VerificationSummary`
that the readiness gate, the metrics and ``migrate`` understand.
"""

from __future__ import annotations

import sqlite3
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlite_to_weaviate.logs import get_logger
from sqlite_to_weaviate.mapping.naming import HASH_PROPERTY
from sqlite_to_weaviate.settings import Settings


@dataclass
class VerificationSummary:
    clean: bool
    differences: int
    checked: int = 0
    by_collection: dict[str, int] = field(default_factory=dict)   # collection -> differences
    examples: list[str] = field(default_factory=list)
    verifier: str = "verify"
    sample: int = 0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def run_verification(settings: Settings, *, sample: int = 1000, tables: list[str] | None = None) -> VerificationSummary:
    """Compare both stores (no repair); ``sample`` rows get a full field-level comparison."""
    try:
        from sqlite_to_weaviate.verify import verify  # type: ignore[attr-defined]
    except ImportError:
        return builtin_verify(settings, tables=tables, sample=sample)
    report = verify(settings, tables=tables, sample=sample, repair=False)
    return summary_from_report(report, sample)


def verify_with_fallback(settings: Settings, *, sample: int) -> tuple[VerificationSummary, str | None]:
    """Verify; if the field-level sample cannot run, verify by content hash alone (the hash
    covers every mapped column of the source row) and return a warning saying so."""
    try:
        return run_verification(settings, sample=sample), None
    except Exception as exc:  # noqa: BLE001 - retried without the sample, reported as a warning
        if sample == 0:
            raise
        get_logger("s2w.verify").warning("verify sample failed; content hashes only", error=str(exc)[:200])
        warning = (f"field-level sample comparison could not run ({type(exc).__name__}: {str(exc)[:200]}); "
                   "verified by content hash only")
        return run_verification(settings, sample=0), warning


def summary_from_report(report: Any, sample: int) -> VerificationSummary:
    """Read the verify report defensively (attribute names per its ``to_json``)."""
    data: dict[str, Any] = report.to_json() if hasattr(report, "to_json") else dict(vars(report))
    differences = data.get("differences", data.get("total_differences", 0))
    if isinstance(differences, (list, dict)):
        differences = len(differences)
    clean = data.get("clean")
    if clean is None:
        clean = int(differences or 0) == 0
    by_collection: dict[str, int] = {}
    for name, t in (data.get("tables") or {}).items():
        if isinstance(t, dict):
            value = t.get("differences", 0)
            by_collection[name] = len(value) if isinstance(value, (list, dict)) else int(value or 0)
    checked = data.get("checked", data.get("rows_checked", 0))
    examples = [f"error: {data['error']}"] if data.get("error") else []
    for name, t in (data.get("tables") or {}).items():
        for kind in ("missing", "extra", "stale", "sample_mismatches", "unsettled"):
            entry = t.get(kind) if isinstance(t, dict) else None
            items = entry.get("items", []) if isinstance(entry, dict) else []
            examples.extend(f"{name} {kind} {item.get('uuid', item) if isinstance(item, dict) else item}"
                            for item in items[:3])
    return VerificationSummary(bool(clean), int(differences or 0), int(checked or 0), by_collection,
                               examples=examples[:20], verifier="verify", sample=sample)


def builtin_verify(settings: Settings, *, tables: list[str] | None = None, sample: int = 0) -> VerificationSummary:
    log = get_logger("s2w.verify")
    conn = settings.open_db(readonly=True)
    conn.row_factory = sqlite3.Row
    summary = VerificationSummary(clean=True, differences=0, verifier="builtin", sample=sample)
    client = settings.connect_weaviate()
    try:
        mapping = settings.load_mapping(conn)
        for table in mapping.collections_in_order():
            if tables and table.table not in tables:
                continue
            expected: dict[str, str] = {}
            for row in conn.execute(table.select_sql()):
                try:
                    obj = table.to_object(dict(row))
                except Exception:  # noqa: BLE001 - unconvertible rows are dead letters, counted there
                    continue
                expected[str(obj.uuid)] = obj.content_hash
            actual: dict[str, str | None] = {}
            if client.collections.exists(table.collection):
                collection = client.collections.use(table.collection)
                views = [collection]
                if collection.config.get().multi_tenancy_config.enabled:
                    views = [collection.with_tenant(n) for n in collection.tenants.get()]
                for view in views:
                    for obj in view.iterator(return_properties=[HASH_PROPERTY]):
                        actual[str(obj.uuid)] = obj.properties.get(HASH_PROPERTY)
            diffs = [u for u in expected if actual.get(u) != expected[u]] + [u for u in actual if u not in expected]
            summary.checked += len(expected)
            summary.by_collection[table.collection] = len(diffs)
            summary.differences += len(diffs)
            summary.examples.extend(f"{table.collection} {u}" for u in diffs[:5])
    finally:
        client.close()
        conn.close()
    summary.clean = summary.differences == 0
    log.info("verified", clean=summary.clean, differences=summary.differences, checked=summary.checked)
    return summary
