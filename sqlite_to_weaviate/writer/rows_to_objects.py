"""Where a row becomes an object: the current rows of a pass's jobs, read and converted.

The outbox lanes hold keys only; what reaches Weaviate is whatever each row is *now*, read
here in one short read transaction for all jobs of one send (the relay's live jobs, then
its history job, each send a consistent snapshot; no long read that would starve WAL
checkpoints; each object comes from one row, so nothing depends on two sends agreeing). A missing row means the key was
deleted. A row the mapping cannot convert (an integer beyond ±2^53, TEXT that is not
UTF-8, ...) is *refused*: it becomes a dead letter with the reason and the rest of the job
goes on. A table with collection versions (embedder vectors, ``mapping.versions``) gets
one object, or one delete, per version written: every change reaches the live version and
the one being built alike. Objects of suspect entries (their last write had an unknown
outcome) are listed in the payload's ``replace`` so the worker deletes them by id before
inserting them.
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlite_to_weaviate.mapping import ConversionError, Mapping, MappingError
from sqlite_to_weaviate.writer.payload import Delete, JobPayload
from sqlite_to_weaviate.writer.row_reader import read_rows
from sqlite_to_weaviate.writer.scheduler import Job
from sqlite_to_weaviate.writer.weaviate_apply import ALL_TENANTS


@dataclass
class Built:
    """One job's payload, and the rows the mapping refused (uuid -> reason)."""

    payload: JobPayload
    refused: dict[str, str] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not self.payload.upserts and not self.payload.deletes


def build_payloads(conn: sqlite3.Connection, mapping: Mapping, jobs: list[Job]) -> dict[str, Built]:
    """token -> what that job carries, from the rows as they are now."""
    by_table: dict[str, list[tuple]] = defaultdict(list)
    for job in jobs:
        for entry in job.entries:
            by_table[entry.table].append(tuple(entry.key))
    rows: dict[str, dict[tuple, dict[str, Any]]] = {}
    conn.execute("BEGIN")
    try:
        for table, keys in by_table.items():
            rows[table] = read_rows(conn, mapping.tables[table], keys)
    finally:
        conn.execute("COMMIT")
    out: dict[str, Built] = {}
    for job in jobs:
        upserts: list[dict[str, Any]] = []
        deletes: list[Delete] = []
        refused: dict[str, str] = {}
        replace: list[str] = []
        for entry in job.entries:
            table = mapping.tables[entry.table]
            object_id = str(entry.object_id)
            row = rows[entry.table].get(tuple(entry.key))
            if row is None:
                tenant = ALL_TENANTS if table.tenant_column else None
                deletes.extend(Delete(name, object_id, tenant) for name in table.write_collections)
                continue
            try:  # one object per collection written (several while a new embedding version is built)
                upserts.extend(o.to_json() for o in table.to_objects(row, object_id=entry.object_id))
            except (ConversionError, MappingError) as exc:
                refused[object_id] = str(exc)
                continue
            if entry.suspect:
                replace.append(object_id)
        out[job.token] = Built(JobPayload(upserts, deletes, replace), refused)
    return out
