"""Verify: reconcile SQLite and Weaviate by content hash, report every difference, repair it.

Both sides are streamed (never whole tables in memory) and merge-joined in uuid order;
repairs are re-enqueued through the outbox so they are ordered with live traffic.
"""
