"""Mapping: the one answer to "what does this SQLite row look like in Weaviate".

Defaults come from the live SQLite schema; a TOML file overrides names, types, vectors,
references and tenants. Object ids are deterministic (uuid5 over a canonical key) and each
object carries a content hash of its source row for verification.
"""
