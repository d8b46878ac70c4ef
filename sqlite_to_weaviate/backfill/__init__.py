"""Backfill: stream historical rows into Weaviate while the application keeps writing.

Backfill never carries row images of its own: it feeds keys, page by page, into the same
outbox the triggers write, so a historical row goes through the same ordered,
read-current-state path as live changes and can never land over a newer one.
"""
