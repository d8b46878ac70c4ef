"""Operate a migration: the one-shot facade, phases and readiness, the all-in-one sidecar,
metrics, backup and rollback.

Everything an operator touches lives here; each module has one job and builds on the
capture, writer, backfill and verify subpackages without reaching into their internals.
"""

from .backup import BackupError, BackupResult, backup_database
from .migrate import (
    MigrationConfig,
    MigrationHooks,
    MigrationResult,
    SQLiteToWeaviateMigrator,
    create_migration_config,
    run_migration,
)
from .phases import Phase, Readiness, get_phase, readiness, set_phase
from .rollback import RollbackReport, rollback

__all__ = [
    "BackupError", "BackupResult", "MigrationConfig", "MigrationHooks", "MigrationResult", "Phase", "Readiness",
    "RollbackReport", "SQLiteToWeaviateMigrator", "backup_database", "create_migration_config", "get_phase",
    "readiness", "rollback", "run_migration", "set_phase",
]
