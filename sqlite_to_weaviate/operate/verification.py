"""One place where operations call the verifier and keep a summary of its report.

``sqlite_to_weaviate.verify.verify`` (content-hash merge-join, streamed) does the work; the
readiness gate, the metrics and ``migrate`` read the :class:`VerificationSummary` stored
from its report.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

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
    refused: int = 0                                               # rows not in Weaviate that no repair can write
    refusals: dict[str, Any] = field(default_factory=dict)        # table -> by column and reason, with the fix
    allow_refused: bool = False
    search: dict[str, str] = field(default_factory=dict)          # table -> search check line (verify --search)
    search_below: list[str] = field(default_factory=list)         # "table check" under the recall threshold

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def run_verification(settings: Settings, *, sample: int = 1000, tables: list[str] | None = None,
                     search: Any = None) -> VerificationSummary:
    """Compare both stores with the verifier (no repair); ``sample`` rows are compared field by field.

    Refused rows are differences here (``clean`` is False while any exist). ``search``
    (``verify.search.SearchOptions``) also checks keyword and vector search.
    """
    from sqlite_to_weaviate.verify import verify

    report = verify(settings, tables=tables, sample=sample, repair=False, search=search)
    return summary_from_report(report, sample)


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
    refusals: dict[str, Any] = {}
    for name, t in (data.get("tables") or {}).items():
        reasons = t.get("refused_reasons") if isinstance(t, dict) else None
        if isinstance(reasons, dict) and reasons.get("rows"):
            refusals[name] = reasons
    for name, t in (data.get("tables") or {}).items():
        for kind in ("missing", "extra", "stale", "refused", "sample_mismatches", "unsettled"):
            entry = t.get(kind) if isinstance(t, dict) else None
            items = entry.get("items", []) if isinstance(entry, dict) else []
            examples.extend(f"{name} {kind} {item.get('uuid', item) if isinstance(item, dict) else item}"
                            for item in items[:3])
    search = {name: t["search"]["collection"] + ": " + ", ".join(
                  f"{check} {value:.1%}" for check, value in _recalls(t["search"]).items())
              for name, t in (data.get("tables") or {}).items() if isinstance(t, dict) and t.get("search")}
    return VerificationSummary(bool(clean), int(differences or 0), int(checked or 0), by_collection,
                               examples=examples[:20], verifier="verify", sample=sample,
                               refused=int(data.get("refused") or 0), refusals=refusals,
                               allow_refused=bool(data.get("allow_refused")), search=search,
                               search_below=list(data.get("search_below_threshold") or []))


def _recalls(search: dict[str, Any]) -> dict[str, float]:
    out = {}
    if search.get("keyword", {}).get("recall") is not None:
        out[f"keyword recall@{search.get('k')}"] = search["keyword"]["recall"]
    for name, r in (search.get("vectors") or {}).items():
        if r.get("recall") is not None:
            out[f"vector {name} self-hit"] = r["recall"]
    return out


def record_report(settings: Settings, report: Any, sample: int) -> bool:
    """Store a verify run for the readiness gate; a clean run with the gate open is phase 4.

    A run with refused rows is never clean (even with ``--allow-refused``, which only changes
    verify's exit code), and the gate also refuses dead letters: no phase 4 with rows missing.

    Returns whether the gate is open. Called by ``verify`` (cron) and the ``run`` sidecar,
    so the gate always reflects the latest verification, whoever ran it.
    """
    from .phases import Phase, evaluate_readiness, record_verification, set_phase

    conn = settings.open_db(wal=False)  # records a result; never changes how the app's file journals
    try:
        record_verification(conn, summary_from_report(report, sample).to_json())
        gate = evaluate_readiness(conn, sorted(settings.load_mapping(conn).tables))
        if gate.ready:
            set_phase(conn, Phase.VERIFIED)
        return gate.ready
    finally:
        conn.close()
