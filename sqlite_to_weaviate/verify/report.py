"""The verify report: per-table counts and capped lists, JSON for machines, a table for people.

Lists are capped (``LIST_CAP`` entries each) so a badly diverged database cannot produce
a gigabyte report; the totals are always exact. Foreign objects (no content hash, no row:
someone else's objects in a shared collection) are listed but are not differences, so a
deliberately shared collection can verify clean. Exit codes are the cron contract:

  0  clean                              1  differences found (not repaired), or rows
                                           refused (unless ``allow_refused``)
  2  differences found, all repaired    3  could not run (config, connection, schema
                                           mismatch, or keys that never settled)

Refused rows (the mapping cannot convert them, or Weaviate rejected them: the writer's
dead letters) are rows missing from Weaviate, so they are differences; they get their own
class because repairing cannot fix them -- the mapping or the data must change -- and
``allow_refused`` accepts them explicitly (exit 0, still listed).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from sqlite_to_weaviate.mapping.refusals import TableRefusals

LIST_CAP = 100

EXIT_CLEAN = 0
EXIT_DIFFERENCES = 1
EXIT_REPAIRED = 2
EXIT_ERROR = 3

KINDS = ("missing", "extra", "stale", "unindexed", "refused", "sample_mismatches")

#: Objects without ``s2wContentHash`` and without a row: not written by the tool (a shared
#: collection), listed but never deleted and not a difference (docs/verify.md).
FOREIGN_DETAIL = "no s2wContentHash: not written by sqlite-to-weaviate; never deleted"


@dataclass
class Entry:
    """One difference: the object uuid, the key if the row exists, and details."""

    uuid: str
    key: list[Any] | None = None
    detail: Any = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"uuid": self.uuid}
        if self.key is not None:
            data["key"] = [v if not isinstance(v, bytes) else v.hex() for v in self.key]
        if self.detail is not None:
            data["detail"] = self.detail
        return data


@dataclass
class CappedList:
    total: int = 0
    items: list[Entry] = field(default_factory=list)

    def add(self, entry: Entry) -> None:
        self.total += 1
        if len(self.items) < LIST_CAP:
            self.items.append(entry)

    def uuids(self) -> set[str]:
        return {e.uuid for e in self.items}

    def to_json(self) -> dict[str, Any]:
        return {"total": self.total, "items": [e.to_json() for e in self.items]}


@dataclass
class TableReport:
    table: str
    collection: str
    rows: int = 0                 # SELECT count(*) at the start
    objects: int = 0              # aggregate count at the start
    scanned_rows: int = 0
    scanned_objects: int = 0
    missing: CappedList = field(default_factory=CappedList)
    extra: CappedList = field(default_factory=CappedList)
    stale: CappedList = field(default_factory=CappedList)
    # stored, but no filter finds it: invisible to search and to filtered deletes (a write
    # cut short by a timeout or a crash; see sqlite_to_weaviate.weaviate_deletes)
    unindexed: CappedList = field(default_factory=CappedList)
    refused: CappedList = field(default_factory=CappedList)   # rows the mapping or Weaviate refused
    refusals: TableRefusals | None = None                     # the refused rows by column and reason
    sample_mismatches: CappedList = field(default_factory=CappedList)
    foreign: CappedList = field(default_factory=CappedList)  # not written by the tool: reported, not a difference
    sampled: int = 0
    rechecked: int = 0            # candidates re-checked because of live writes
    settled_by_recheck: int = 0   # candidates that turned out to be in-flight changes
    unsettled: CappedList = field(default_factory=CappedList)
    repaired: int = 0
    repair_enqueued: int = 0
    repair_deleted: int = 0
    repair_failed: CappedList = field(default_factory=CappedList)
    search: Any = None            # verify.search.SearchReport when --search ran

    def __post_init__(self) -> None:
        if self.refusals is None:
            self.refusals = TableRefusals(self.table)

    @property
    def differences(self) -> int:
        """Every difference, refused rows included (``repairable`` excludes them)."""
        return self.repairable + self.refused.total

    @property
    def repairable(self) -> int:
        """Differences ``--repair`` can fix (missing, extra, stale, unindexed objects and sample mismatches)."""
        return (self.missing.total + self.extra.total + self.stale.total + self.unindexed.total
                + self.sample_mismatches.total)

    def to_json(self) -> dict[str, Any]:
        return {
            "table": self.table, "collection": self.collection, "rows": self.rows, "objects": self.objects,
            "scanned_rows": self.scanned_rows, "scanned_objects": self.scanned_objects,
            "differences": self.differences, "sampled": self.sampled, "rechecked": self.rechecked,
            "settled_by_recheck": self.settled_by_recheck,
            **{kind: getattr(self, kind).to_json() for kind in KINDS},
            "foreign": self.foreign.to_json(),
            "refused_reasons": self.refusals.to_json() if self.refusals else None,
            "unsettled": self.unsettled.to_json(),
            "repair": {"repaired": self.repaired, "enqueued": self.repair_enqueued, "deleted": self.repair_deleted,
                       "failed": self.repair_failed.to_json()},
            **({"search": self.search.to_json()} if self.search is not None else {}),
        }


@dataclass
class VerifyReport:
    tables: dict[str, TableReport] = field(default_factory=dict)
    repair: bool = False
    sample: int = 0
    seconds: float = 0.0
    outbox_seq_start: int = 0
    outbox_seq_end: int = 0
    error: str | None = None
    allow_refused: bool = False     # refused rows are accepted: listed, but exit 0 if nothing else differs

    @property
    def differences(self) -> int:
        return sum(t.differences for t in self.tables.values())

    @property
    def refused(self) -> int:
        return sum(t.refused.total for t in self.tables.values())

    @property
    def repairable(self) -> int:
        return sum(t.repairable for t in self.tables.values())

    @property
    def unsettled(self) -> int:
        return sum(t.unsettled.total for t in self.tables.values())

    @property
    def repair_failures(self) -> int:
        return sum(t.repair_failed.total for t in self.tables.values())

    @property
    def foreign(self) -> int:
        return sum(t.foreign.total for t in self.tables.values())

    @property
    def checked(self) -> int:
        return sum(t.scanned_rows for t in self.tables.values())

    @property
    def search_below(self) -> list[str]:
        """``table check`` of every search check (``--search``) whose recall is under the threshold."""
        return [f"{name} {check}" for name, t in self.tables.items() if t.search is not None for check in t.search.below]

    @property
    def search_repaired(self) -> int:
        return sum(t.search.repaired for t in self.tables.values() if t.search is not None)

    @property
    def clean(self) -> bool:
        """Every row equals its object: no difference at all, refused rows included (even when allowed),
        and search (when checked) finds what it should."""
        return (self.error is None and self.differences == 0 and self.unsettled == 0 and not self.search_below
                and not self.search_repaired)

    def exit_code(self) -> int:
        """0 clean, 1 differences left, 2 all differences repaired, 3 could not run / could not settle.

        Refused rows cannot be repaired: they make it 1 unless ``allow_refused``.
        """
        if self.error is not None:
            return EXIT_ERROR
        if self.refused and not self.allow_refused:
            return EXIT_DIFFERENCES
        if self.repairable and (not self.repair or self.repair_failures):
            return EXIT_DIFFERENCES
        if self.search_below:
            return EXIT_DIFFERENCES
        if self.unsettled:
            return EXIT_ERROR
        if self.repairable or self.search_repaired:
            return EXIT_REPAIRED
        return EXIT_CLEAN

    def to_json(self) -> dict[str, Any]:
        return {
            "clean": self.clean, "differences": self.differences, "foreign": self.foreign, "checked": self.checked,
            "refused": self.refused, "allow_refused": self.allow_refused,
            "unsettled": self.unsettled, "repair": self.repair, "sample": self.sample,
            "seconds": round(self.seconds, 3), "exit_code": self.exit_code(), "error": self.error,
            "outbox_seq": {"start": self.outbox_seq_start, "end": self.outbox_seq_end},
            "search_below_threshold": self.search_below,
            "tables": {name: t.to_json() for name, t in self.tables.items()},
        }

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=2, default=str)

    def render(self) -> str:
        """A plain-text table for a terminal (one line per table, then examples)."""
        header = ("table", "rows", "objects", "missing", "extra", "stale", "unindexed", "refused", "sample",
                  "unsettled", "repaired", "foreign")
        lines = [[t.table, t.rows, t.objects, t.missing.total, t.extra.total, t.stale.total, t.unindexed.total,
                  t.refused.total, f"{t.sample_mismatches.total}/{t.sampled}", t.unsettled.total,
                  t.repaired, t.foreign.total] for t in self.tables.values()]
        widths = [max(len(str(x)) for x in col) for col in zip(header, *lines)]
        out = ["  ".join(str(v).ljust(w) for v, w in zip(header, widths))]
        out.append("  ".join("-" * w for w in widths))
        out += ["  ".join(str(v).ljust(w) for v, w in zip(row, widths)) for row in lines]
        for t in self.tables.values():
            if t.refusals is not None:
                out += [f"  {t.table} refused {line}" for line in t.refusals.lines()]
            for kind in ("missing", "extra", "stale", "unindexed", "refused", "sample_mismatches", "unsettled",
                         "foreign"):
                capped = getattr(t, kind)
                for entry in capped.items[:5]:
                    detail = f" {entry.detail}" if entry.detail else ""
                    out.append(f"  {t.table} {kind}: {entry.uuid} key={entry.key}{detail}")
                if capped.total > 5:
                    out.append(f"  {t.table} {kind}: ... {capped.total - 5} more")
        for t in self.tables.values():
            if t.search is not None:
                out.append(f"  search {t.search.line()}")
                for failure in t.search.failures[:5]:
                    out.append(f"  {t.table} search {failure.check}: {failure.uuid} key={failure.key} {failure.reason}")
                if len(t.search.failures) > 5:
                    out.append(f"  {t.table} search: ... {len(t.search.failures) - 5} more failures")
        fixes = [t.refusals.toml_snippet() for t in self.tables.values() if t.refused.total and t.refusals]
        if any(fixes):
            out.append("to keep the refused rows, add to the mapping file (--mapping):")
            out += [f"    {line}" for fix in fixes for line in fix.splitlines()]
            out.append("  then `rollback` and migrate again: Weaviate cannot change an existing property's type")
        if self.error:
            out.append(f"error: {self.error}")
        status = {0: "clean", 1: "DIFFERENCES FOUND", 2: "differences found and repaired", 3: "COULD NOT VERIFY"}
        verdict = status[self.exit_code()]
        if self.refused and self.allow_refused and self.exit_code() in (EXIT_CLEAN, EXIT_REPAIRED):
            verdict = f"{verdict} except {self.refused} refused row(s) not in Weaviate, accepted (--allow-refused)"
        elif self.refused and self.exit_code() == EXIT_DIFFERENCES:
            verdict = f"{verdict}: {self.refused} refused row(s) not in Weaviate"
        if self.search_below:
            verdict = f"{verdict}; search recall below the threshold: {', '.join(self.search_below)}"
        shared = f"; {self.foreign} foreign object(s) kept (not written by sqlite-to-weaviate)" if self.foreign else ""
        out.append(f"{verdict} ({self.checked} rows checked in {self.seconds:.1f}s{shared})")
        return "\n".join(out)
