"""Writer: the relay that turns outbox rows into ordered RQ jobs, and the workers that apply them.

The relay runs beside the SQLite file, reads the current row for each changed key at
dispatch time and keeps at most one in-flight job per key partition; workers need only
Redis and Weaviate. A durable checkpoint in SQLite, not Redis, is the source of truth.
"""
