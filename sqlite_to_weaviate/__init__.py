"""sqlite-to-weaviate: move a live SQLite database into Weaviate with zero downtime.

The package's top-level subpackages are the architecture:

* :mod:`sqlite_to_weaviate.capture`  -- outbox, triggers and SQLAlchemy hooks (what changed)
* :mod:`sqlite_to_weaviate.mapping`  -- what a row looks like in Weaviate (types, ids, hashes)
* :mod:`sqlite_to_weaviate.writer`   -- relay and RQ workers that replay changes in order
* :mod:`sqlite_to_weaviate.backfill` -- historical rows, routed through the same ordered path
* :mod:`sqlite_to_weaviate.verify`   -- reconciliation of both stores and repair
* :mod:`sqlite_to_weaviate.local`    -- real Weaviate and Redis servers on loopback for demo/tests
"""

__version__ = "0.1.0"

_PUBLIC_API = {
    "MigrationConfig", "MigrationResult", "SQLiteToWeaviateMigrator", "create_migration_config", "run_migration",
}


def __getattr__(name: str):  # lazy: `import sqlite_to_weaviate` stays cheap for the app's capture hooks
    if name in _PUBLIC_API:
        from sqlite_to_weaviate import operate

        return getattr(operate, name)
    raise AttributeError(f"module 'sqlite_to_weaviate' has no attribute {name!r}")
