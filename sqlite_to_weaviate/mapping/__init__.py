"""Mapping: the one answer to "what does this SQLite row look like in Weaviate".

Defaults come from the live SQLite schema; a TOML file overrides names, types, vectors,
references and tenants. Object ids are deterministic (uuid5 over a canonical key) and each
object carries a content hash of its source row for verification. docs/mapping.md is the
reference for every rule.
"""

from .config_file import ColumnConfig, MappingConfig, ReferenceConfig, TableConfig, load_mapping_config, parse_mapping_config
from .convert import decode_vector, encode_vector
from .errors import ConversionError, MappingError
from .hashing import content_hash
from .identity import UUID_NAMESPACE, canonical_key, object_uuid
from .model import ColumnMapping, Mapping, MetadataMapping, ReferenceMapping, TableMapping, WeaviateObject
from .naming import HASH_PROPERTY, collection_name, property_name
from .presets import seed_preset_config, seed_preset_toml, seed_schema_sql
from .reflect import NO_PRIMARY_KEY, infer_type, reflect_mapping
from .collections import ensure_collections
from .sqlalchemy_models import reflect_mapping_from_models
from .types import MAX_SAFE_INT, DataType

__all__ = [
    "ColumnConfig", "ColumnMapping", "ConversionError", "DataType", "HASH_PROPERTY", "MAX_SAFE_INT", "Mapping",
    "MappingConfig", "MappingError", "MetadataMapping", "NO_PRIMARY_KEY", "ReferenceConfig", "ReferenceMapping",
    "TableConfig", "TableMapping", "UUID_NAMESPACE", "WeaviateObject", "canonical_key", "collection_name",
    "content_hash", "decode_vector", "encode_vector", "ensure_collections", "infer_type", "load_mapping_config",
    "object_uuid", "parse_mapping_config", "property_name", "reflect_mapping", "reflect_mapping_from_models", "seed_preset_config",
    "seed_preset_toml", "seed_schema_sql",
]
