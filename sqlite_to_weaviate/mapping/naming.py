"""Names: SQLite table/column names -> valid Weaviate collection/property names.

Weaviate names are ASCII identifiers of bounded length; SQLite names can be anything, of
any length. The derivation is deterministic and documented (docs/mapping.md) so users can
predict it, and every result is validated; anything that cannot be derived is a
MappingError telling the user to set the name in the config file. A derived name past
Weaviate's length limit is shortened (:func:`shorten`) rather than refused: the rule is
deterministic, so every process and every run agrees on it. A name the user wrote is never
shortened: a too-long one is an error naming the limit.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

from .errors import MappingError

#: Weaviate's limits (server: entities/schema/validation.go, checked against the real server
#: in tests/integration/test_real_schemas.py): class names are data directory names.
MAX_COLLECTION_NAME = 255
MAX_PROPERTY_NAME = 231
MAX_VECTOR_NAME = 230
COLLECTION_NAME = re.compile(r"[A-Z][_0-9A-Za-z]{0,254}")
PROPERTY_NAME = re.compile(r"[_A-Za-z][_0-9A-Za-z]{0,230}")
VECTOR_NAME = re.compile(r"[_A-Za-z][_0-9A-Za-z]{0,229}")
#: characters a shortened name keeps of the derived one: the rest is "_" + 8 hex digits
HASH_SUFFIX = 9
#: Weaviate reserves these property names (server: id, _id, _additional; client: vector).
RESERVED_PROPERTIES = frozenset({"id", "_id", "_additional", "vector"})
#: Property holding the content hash of the source row on every object.
HASH_PROPERTY = "s2wContentHash"


def _words(name: str) -> list[str]:
    """Split a name into ASCII words: accents stripped, any non-alphanumeric separates."""
    ascii_text = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    return [w for w in re.split(r"[^0-9A-Za-z]+", ascii_text) if w]


def shorten(name: str, limit: int) -> str:
    """``name`` if it has at most ``limit`` characters, else its first ``limit - 9``
    characters + ``_`` + the first 8 hex digits of sha256(name).

    Deterministic (users can compute it), and two long names that share their first
    ``limit - 9`` characters still get different results.
    """
    if len(name) <= limit:
        return name
    digest = hashlib.sha256(name.encode("utf-8")).hexdigest()[:HASH_SUFFIX - 1]
    return f"{name[:limit - HASH_SUFFIX]}_{digest}"


def collection_name(table: str) -> str:
    """``chat_messages`` -> ``ChatMessages``; a leading digit gets a ``T`` prefix.

    Each word's first letter is upper-cased, the rest kept (``userAccounts`` ->
    ``UserAccounts``). No singularisation: set ``collection`` in the config for that.
    Longer than 255 characters: :func:`shorten`.
    """
    words = _words(table)
    if not words:
        raise MappingError(
            f"cannot derive a collection name from table {table!r}: "
            f"set [tables.{toml_key(table)}] collection = \"...\" in the mapping config"
        )
    name = "".join(w[0].upper() + w[1:] for w in words)
    if name[0].isdigit():
        name = "T" + name
    return validate_collection_name(shorten(name, MAX_COLLECTION_NAME), f"table {table!r}")


def property_name(column: str) -> str:
    """``created_at`` -> ``createdAt``; ``URL`` -> ``url``; ``id`` -> ``sourceId``.

    First word lower-cased entirely if it is all upper case, else only its first letter;
    later words get an upper-case first letter. A leading digit gets a ``p`` prefix. A
    reserved result (see RESERVED_PROPERTIES, case-insensitive) becomes ``source`` +
    the name with its first letter upper-cased (``id`` -> ``sourceId``, ``_id`` ->
    ``sourceId`` too, ``vector`` -> ``sourceVector``). Longer than 231 characters:
    :func:`shorten`.
    """
    words = _words(column)
    if not words:
        raise MappingError(
            f"cannot derive a property name from column {column!r}: set its `property` in the mapping config"
        )
    first = words[0]
    first = first.lower() if first.isupper() else first[0].lower() + first[1:]
    name = first + "".join(w[0].upper() + w[1:] for w in words[1:])
    if name[0].isdigit():
        name = "p" + name
    if name.lower() in RESERVED_PROPERTIES or name == HASH_PROPERTY:
        name = "source" + name[0].upper() + name[1:]
    return validate_property_name(shorten(name, MAX_PROPERTY_NAME), f"column {column!r}")


def _check_length(name: object, limit: int, kind: str, what: str) -> None:
    if isinstance(name, str) and len(name) > limit:
        raise MappingError(
            f"{kind} name {name[:40]!r}... for {what} is {len(name)} characters; Weaviate allows at most {limit}: "
            f"choose a shorter one"
        )


def validate_collection_name(name: str, what: str) -> str:
    _check_length(name, MAX_COLLECTION_NAME, "collection", what)
    if not isinstance(name, str) or not COLLECTION_NAME.fullmatch(name):
        raise MappingError(
            f"invalid collection name {name!r} for {what}: must match /^[A-Z][_0-9A-Za-z]*$/ "
            "(ASCII, starting with an upper-case letter)"
        )
    return name


def validate_property_name(name: str, what: str, *, allow_hash: bool = False) -> str:
    _check_length(name, MAX_PROPERTY_NAME, "property", what)
    if not isinstance(name, str) or not PROPERTY_NAME.fullmatch(name):
        raise MappingError(
            f"invalid property name {name!r} for {what}: must match /^[_A-Za-z][_0-9A-Za-z]{{0,230}}$/"
        )
    if name.lower() in RESERVED_PROPERTIES:
        raise MappingError(f"property name {name!r} for {what} is reserved by Weaviate; choose another")
    if name == HASH_PROPERTY and not allow_hash:
        raise MappingError(f"property name {name!r} for {what} is reserved for the content hash; choose another")
    return name


def toml_key(name: str) -> str:
    """``name`` as a TOML key: bare when it can be, else quoted."""
    return name if re.fullmatch(r"[A-Za-z0-9_-]+", name) else '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
