"""Capture: every committed row change lands in the outbox table in the same transaction.

Key-only SQLite triggers (generated from the live schema) record (seq, table, op, key); the
SQLAlchemy integration adds connection pragmas, BEGIN IMMEDIATE and per-transaction context.
Nothing here ever talks to Redis or Weaviate, so capture can never fail the app's write
because a downstream service is down.
"""
