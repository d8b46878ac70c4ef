"""What the caller asks for (:class:`BackfillOptions`) and what it gets back (:class:`BackfillReport`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlite_to_weaviate.errors import ConfigError


@dataclass(frozen=True)
class BackfillOptions:
    """Knobs of one backfill run; defaults suit a live production database.

    ``max_outbox_backlog``: pause while more outbox rows than this wait beyond the relay
    checkpoint (live traffic plus our own pages): the backfill never floods the relay and
    the outbox (hence the file) stays bounded. ``None`` or 0 disables it.
    ``memory_limit_mb``: pause and shrink pages while this process's RSS exceeds it.
    ``workers``: tables scanned at once, each thread with its own SQLite connection.
    ``wait_applied``: after the last page, wait until the relay checkpoint passes it.
    ``pause_file``: while this file exists the backfill pauses (like ``backfill.paused=1``).
    """

    tables: list[str] | None = None
    restart: bool = False
    dry_run: bool = False
    page_size: int = 1000
    rows_per_second: float | None = None
    max_outbox_backlog: int | None = 20000
    memory_limit_mb: int | None = None
    workers: int = 1
    wait_applied: bool = False
    wait_timeout: float | None = None
    pause_file: Path | None = None
    poll_interval: float = 0.5
    progress_interval: float = 5.0
    dry_run_sample_pages: int = 3

    def __post_init__(self) -> None:
        if not isinstance(self.page_size, int) or self.page_size < 1:
            raise ConfigError(f"page_size must be a positive integer, got {self.page_size!r}")
        if self.rows_per_second is not None and not self.rows_per_second > 0:
            raise ConfigError(f"rows_per_second must be positive, got {self.rows_per_second!r}")
        if self.max_outbox_backlog is not None and self.max_outbox_backlog < 0:
            raise ConfigError(f"max_outbox_backlog must be >= 0, got {self.max_outbox_backlog!r}")
        if self.memory_limit_mb is not None and self.memory_limit_mb < 1:
            raise ConfigError(f"memory_limit_mb must be a positive integer, got {self.memory_limit_mb!r}")
        if not isinstance(self.workers, int) or self.workers < 1:
            raise ConfigError(f"workers must be a positive integer, got {self.workers!r}")


@dataclass
class TablePlan:
    """Dry-run figures for one table (every row read and converted; nothing written)."""

    rows: int
    collection: str
    properties: list[tuple[str, str, str]]  # (column, property, type)
    vector: str | None
    key_rows_per_second: float | None
    convert_rows_per_second: float | None
    estimated_seconds: float | None
    checkpoint: dict[str, Any] | None = None
    scanned_rows: int = 0           # rows read and converted (every row)
    scan_seconds: float = 0.0
    refused: int = 0                # rows the mapping refuses: the dead letters a real run would leave
    refusals: dict[str, Any] | None = None      # TableRefusals.to_json(): by column and reason, with the fix
    refusal_lines: list[str] = field(default_factory=list)


@dataclass
class TableResult:
    """What one table's scan did in this run."""

    table: str
    collection: str
    rows_enqueued: int = 0          # in this run
    total_enqueued: int = 0         # since the checkpoint was started (across runs)
    total_estimate: int | None = None
    resumed: bool = False
    done: bool = False
    already_done: bool = False
    last_seq: int | None = None
    seconds: float = 0.0
    plan: TablePlan | None = None


@dataclass
class BackfillReport:
    tables: dict[str, TableResult] = field(default_factory=dict)
    dry_run: bool = False
    stopped: bool = False
    applied: bool | None = None     # wait_applied: True once the relay checkpoint passed our last page
    refused: dict[str, int] = field(default_factory=dict)   # once applied: dead letters per table (rows not in Weaviate)
    seconds: float = 0.0
    pauses: dict[str, float] = field(default_factory=dict)  # reason -> seconds paused

    @property
    def rows_enqueued(self) -> int:
        return sum(t.rows_enqueued for t in self.tables.values())

    @property
    def done(self) -> bool:
        return all(t.done for t in self.tables.values())

    @property
    def last_seq(self) -> int | None:
        seqs = [t.last_seq for t in self.tables.values() if t.last_seq is not None]
        return max(seqs) if seqs else None
