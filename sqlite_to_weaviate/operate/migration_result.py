"""What ``migrate()`` returns (the original design's ``MigrationResult``) and how it reads.

The figures, the per-table count lines, the refused rows with the mapping line that keeps
them, and the summary a CLI prints; kept apart from the facade (``migrate.py``) that fills it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from .phases import Phase


@dataclass
class MigrationResult:
    success: bool = False
    migrated_records: int = 0
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)         # table/view not migrated -> why
    collections: dict[str, int] = field(default_factory=dict)     # collection -> objects in Weaviate
    timings: dict[str, float] = field(default_factory=dict)       # phase -> seconds
    verification: dict[str, Any] | None = None
    backup_path: str | None = None
    rolled_back: bool = False
    rollback: list[str] = field(default_factory=list)
    dry_run: bool = False
    plan: dict[str, Any] | None = None
    phase: int = 0
    cannot_run: bool = False        # failed before writing anything (bad input, unreachable store)
    counts: dict[str, dict[str, Any]] = field(default_factory=dict)   # table -> rows vs objects (count check)
    refused: int = 0                # rows not in Weaviate because the mapping or Weaviate refused them
    refusals: dict[str, list[str]] = field(default_factory=dict)      # table -> refused rows by column and reason
    mapping_fix: str | None = None  # mapping lines that keep the refused rows

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> list[str]:
        if self.dry_run and self.plan is not None:
            return self._plan_summary(self.plan)
        if self.counts:
            lines = [_count_line(t, c) for t, c in self.counts.items()]
        else:
            lines = [f"{name}: {count} object(s)" for name, count in self.collections.items()]
        lines += [f"skipped {t}: {why}" for t, why in self.skipped.items()]
        if self.backup_path:
            lines.append(f"backup: {self.backup_path}")
        if self.verification is not None:
            v = self.verification
            refused = f", {v['refused']} of them refused row(s)" if v.get("refused") else ""
            lines.append(f"verification ({v.get('verifier')}): "
                         + ("clean" if v.get("clean") else f"{v.get('differences')} difference(s){refused}"))
            lines += [f"search: {line}" for line in (v.get("search") or {}).values()]
        lines.append("timings: " + ", ".join(f"{k} {v:.1f}s" for k, v in self.timings.items()))
        lines += [f"warning: {w}" for w in self.warnings]
        lines += [f"error: {e}" for e in self.errors]
        lines += _fix_lines(self.mapping_fix, collections_left=not self.rolled_back)
        if self.rolled_back:
            lines.append("ROLLED BACK: the migration's collections, Redis keys and capture objects were removed "
                         "(the SQLite data was not touched)")
            lines += [f"  {line}" for line in self.rollback]
        lines.append(f"migration {'succeeded' if self.success else 'FAILED'}: {self.migrated_records} record(s) in "
                     f"Weaviate, phase {self.phase} ({Phase(self.phase).label})")
        return lines

    @staticmethod
    def _plan_summary(plan: dict[str, Any]) -> list[str]:
        lines = []
        for t, p in plan["tables"].items():
            refused = f", {p['refused']} would be REFUSED" if p.get("refused") else ""
            lines.append(f"{t} -> {p['collection']}: {p['rows']} row(s){refused}"
                         f"{' (collection exists)' if p['collection_exists'] else ''}")
            lines += [f"    refused {line}" for line in p.get("refusal_lines", [])]
        lines += [f"skipped {t}: {why}" for t, why in plan.get("skipped", {}).items()]
        lines += _fix_lines(plan.get("mapping_fix"))
        verdict = (f"the migration would FAIL: {plan['refused']} row(s) would be refused (not in Weaviate); "
                   if plan.get("refused") else "")
        lines.append(f"dry run: {verdict}would back up the database: {'yes' if plan['backup'] else 'no'}; "
                     f"install capture on {len(plan['tables'])} table(s); create "
                     f"{len(plan['collections_to_create'])} collection(s); backfill {plan['rows']} row(s) "
                     f"with {plan['workers']} worker(s), estimated {plan['estimated_seconds']:.1f}s "
                     f"(reading and converting every row took {plan.get('scan_seconds', 0.0):.1f}s; Weaviate's write "
                     "time is not measured without writing); nothing was written")
        return lines


def _count_line(table: str, c: dict[str, Any]) -> str:
    line = f"{table}: {c['rows']} rows -> {c['collection']}: {c['objects']} objects"
    if c.get("refused"):
        line += f" ({c['refused']} refused)"
    if not c.get("equal", True):
        line += "  MISMATCH"
    return line


def _fix_lines(fix: str | None, *, collections_left: bool = False) -> list[str]:
    """What to write in the mapping; with the collections still there, how to recreate them first."""
    if not fix:
        return []
    lines = (["to keep the refused rows, add to the mapping file (--mapping) and run migrate again "
              "(or let `sqlite-to-weaviate suggest-mapping FILE` write a mapping from the data):"]
             + [f"    {line}" for line in fix.splitlines()])
    if collections_left:
        lines.append("  first `sqlite-to-weaviate rollback --yes`: Weaviate cannot change an existing property's type")
    return lines
