"""Rows the mapping refuses, counted by column and reason, with the mapping change each reason suggests.

A refused row never reaches Weaviate (the writer parks it as a dead letter), so the dry
run, ``verify`` and ``migrate`` must all say how many rows are refused and what to write
in the mapping to keep them. They share this tally so the three answers have the same
shape: ``big_counter: 188 row(s) beyond ±2^53 -> type = "text"``. Each row counts once in
the table's total (exactly the number of dead letters a real run leaves); a row refused
for two reasons appears in both groups, so fixing every group fixes every row.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping as RowMapping
from dataclasses import dataclass, field
from typing import Any

from .convert import VECTOR_LENGTH
from .config_writer import toml_key
from .errors import ConversionError, ValueConversionError
from .model import BAD_TENANT, NULL_KEY, TableMapping

#: Groups kept per table; a table with more distinct (column, reason) pairs counts the rest under "other".
MAX_GROUPS = 50
#: Example keys kept per group (the totals are always exact).
MAX_EXAMPLES = 3

WEAVIATE_REJECTED = "rejected by Weaviate"


def refusals_of_row(table: TableMapping, row: RowMapping[str, Any]) -> list[ConversionError]:
    """Every value of ``row`` the mapping refuses; empty when the row converts.

    :meth:`TableMapping.to_object` is the authority (it is what the writer runs) but stops
    at the first bad value; the other columns are then checked one by one, so a report
    lists every column that needs a fix, not only the first.
    """
    try:
        table.to_object(row)
        return []
    except ConversionError as exc:
        first = exc
    errors = [first]
    pk = table.key_of(row)
    for column in table.columns:
        if column.column == first.column:
            continue
        try:
            column.convert(row.get(column.column))
        except ValueConversionError as exc:
            errors.append(ConversionError(table.table, pk, column.column, str(exc), exc.kind, exc.fix))
    for name in table.vector_columns:
        if name == first.column:
            continue
        try:
            table.decode_vector(row, name)
        except ValueConversionError as exc:
            errors.append(ConversionError(table.table, pk, name, str(exc), exc.kind, exc.fix))
    if table.tenant_column and table.tenant_column != first.column:
        try:
            table._tenant(row, pk)  # noqa: SLF001 - the same rule to_object applies
        except ConversionError as exc:
            errors.append(exc)
    return errors


_NO_FIX = {
    NULL_KEY: "give these rows a key (SQLite lets NULL into a non-INTEGER key unless it is NOT NULL)",
    BAD_TENANT: "fix the tenant values (1-64 of A-Z a-z 0-9 _ -, never NULL)",
    WEAVIATE_REJECTED: "see `dead-letters list`, fix the data or the collection, then `dead-letters retry`",
    VECTOR_LENGTH: "fix these vectors; if theirs is the right length, declare it: vector_dimensions = N "
                   "(or dimensions = N in [vectors.NAME]) in the mapping",
}


def fix_text(fix: str | None, kind: str = "") -> str:
    """What to do, in the words of the mapping file when a column type is the fix."""
    if fix:
        return f'type = "{fix}"'
    return _NO_FIX.get(kind, "no column type can hold it: fix the data or exclude the column")


@dataclass
class RefusalGroup:
    """Rows refused for one reason in one column."""

    column: str
    kind: str
    fix: str | None
    rows: int = 0
    examples: list[tuple[list[Any] | None, str]] = field(default_factory=list)   # (key, reason)

    def add(self, key: Iterable[Any] | None, reason: str) -> None:
        self.rows += 1
        if len(self.examples) < MAX_EXAMPLES:
            self.examples.append((None if key is None else list(key), reason))

    def line(self) -> str:
        """``big_counter: 188 row(s) beyond ±2^53 → type = "text" (e.g. key [5]: integer ... is beyond +-2^53)``"""
        example = ""
        if self.examples:
            key, reason = self.examples[0]
            reason = reason.split("; ")[0]
            example = f" (e.g. key {key}: {reason})" if key is not None else f" (e.g. {reason})"
        return f"{self.column or 'row'}: {self.rows} row(s) {self.kind} → {fix_text(self.fix, self.kind)}{example}"

    def to_json(self) -> dict[str, Any]:
        return {"column": self.column, "kind": self.kind, "rows": self.rows, "fix": fix_text(self.fix, self.kind),
                "examples": [{"key": _json_key(k), "reason": r} for k, r in self.examples]}


@dataclass
class TableRefusals:
    """Refused rows of one table: the exact total and the groups by (column, reason)."""

    table: str
    rows: int = 0
    groups: dict[tuple[str, str], RefusalGroup] = field(default_factory=dict)

    def add_errors(self, key: Iterable[Any] | None, errors: list[ConversionError]) -> None:
        """One refused row with its errors (from :func:`refusals_of_row`)."""
        self.rows += 1
        for error in errors:
            self._group(error.column, error.kind, error.fix).add(key, error.reason)

    def add_reason(self, key: Iterable[Any] | None, column: str, kind: str, reason: str, fix: str | None = None,
                   *, rows: int = 1) -> None:
        """``rows`` refused rows known only by a reason (a dead letter Weaviate rejected, NULL keys)."""
        self.rows += rows
        group = self._group(column, kind, fix)
        group.add(key, reason)
        group.rows += rows - 1

    def _group(self, column: str, kind: str, fix: str | None) -> RefusalGroup:
        group = self.groups.get((column, kind))
        if group is None:
            if len(self.groups) >= MAX_GROUPS:
                column, kind, fix = "", "refused for other reasons", None
                group = self.groups.get((column, kind))
            if group is None:
                group = self.groups[(column, kind)] = RefusalGroup(column, kind, fix)
        return group

    def merge(self, other: "TableRefusals") -> None:
        self.rows += other.rows
        for (column, kind), group in other.groups.items():
            target = self._group(column, kind, group.fix)
            target.rows += group.rows
            target.examples.extend(group.examples[: MAX_EXAMPLES - len(target.examples)])

    def sorted_groups(self) -> list[RefusalGroup]:
        return sorted(self.groups.values(), key=lambda g: (-g.rows, g.column, g.kind))

    def lines(self) -> list[str]:
        return [group.line() for group in self.sorted_groups()]

    def fixes(self) -> dict[str, str]:
        """column -> type that keeps its refused values (columns with a fix only).

        A column refused for reasons with different fixes (fractional values -> number,
        values beyond ±2^53 -> text) gets "text" when that is one of them (it holds
        every number exactly); with no common fix it is left to ``suggest-mapping``,
        which tries each type against every value.
        """
        by_column: dict[str, set[str | None]] = {}
        for group in self.sorted_groups():
            if group.column:
                by_column.setdefault(group.column, set()).add(group.fix)
        out: dict[str, str] = {}
        for column, fixes in by_column.items():
            if len(fixes) == 1 and None not in fixes:
                out[column] = next(iter(fixes))  # type: ignore[arg-type]
            elif None not in fixes and "text" in fixes and "blob" not in fixes:
                out[column] = "text"
        return out

    def toml_snippet(self) -> str:
        """The mapping lines that fix what can be fixed by a column type."""
        return "\n".join(f"[tables.{toml_key(self.table)}.columns.{toml_key(column)}]\ntype = \"{fix}\""
                         for column, fix in self.fixes().items())

    def to_json(self) -> dict[str, Any]:
        return {"rows": self.rows, "reasons": [g.to_json() for g in self.sorted_groups()], "lines": self.lines(),
                "mapping_fix": self.toml_snippet() or None}


def _json_key(key: list[Any] | None) -> list[Any] | None:
    if key is None:
        return None
    return [v.hex() if isinstance(v, bytes) else v for v in key]

