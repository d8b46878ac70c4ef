"""Weaviate collection definitions built from a TableMapping, and idempotent creation.

Auto-schema is off on our servers, so every collection, property and reference is
created explicitly from the mapping. ``ensure_collections`` is safe to run again and
again: it creates what is missing, adds properties a mapping change introduced, and
refuses (MappingError with the fix) changes Weaviate cannot apply in place.

Replication (``replication_factor`` > 1, docs/scale-out.md): collections get async
replication, so a node that was down catches up on its own, and the deletion strategy
``TIME_BASED_RESOLUTION``, so a delete a node missed is repaired too. Weaviate's default
(``NoAutomatedResolution``) keeps such an object on that node forever, where every read
through it still finds it; ``DeleteOnConflict`` would let a delete win over a later
re-insert of the same uuid, which the pipeline does on purpose (a row deleted, then
inserted again).
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from weaviate.classes.config import Configure, DataType as WvDataType, Property, ReferenceProperty, Tokenization

from sqlite_to_weaviate.errors import ConfigError

from .errors import MappingError
from .naming import HASH_PROPERTY
from .types import DataType

if TYPE_CHECKING:
    from .model import Mapping, TableMapping

_WEAVIATE_TYPES = {
    DataType.TEXT: WvDataType.TEXT,
    DataType.INT: WvDataType.INT,
    DataType.NUMBER: WvDataType.NUMBER,
    DataType.BOOLEAN: WvDataType.BOOL,
    DataType.DATE: WvDataType.DATE,
    DataType.BLOB: WvDataType.BLOB,
    DataType.OBJECT: WvDataType.OBJECT,
}


def weaviate_type(data_type: DataType) -> WvDataType:
    return _WEAVIATE_TYPES[data_type]


def _scalar_property(name: str, data_type: DataType, *, filterable: bool = True, searchable: bool = True,
                     vectorize: bool = False, description: str | None = None,
                     nested: tuple[tuple[str, DataType], ...] = ()) -> Property:
    text = data_type is DataType.TEXT
    blob = data_type is DataType.BLOB
    return Property(
        name=name,
        data_type=weaviate_type(data_type),
        description=description,
        index_filterable=None if blob else filterable,
        index_searchable=searchable if text else None,
        skip_vectorization=not (vectorize and text),
        vectorize_property_name=False,
        nested_properties=[_scalar_property(n, t) for n, t in nested] or None,
    )


def properties(table_mapping: "TableMapping") -> list[Property]:
    """Mapped columns, metadata properties and the content-hash property."""
    result = [
        _scalar_property(
            c.property, c.data_type, filterable=c.index_filterable, searchable=c.index_searchable,
            vectorize=c.vectorize, nested=c.nested,
            description=c.description or f"SQLite column {table_mapping.table}.{c.column}",
        )
        for c in table_mapping.columns
    ]
    metadata = table_mapping.metadata
    if not metadata.is_empty():
        fields = metadata.fields()
        if metadata.property:
            result.append(_scalar_property(metadata.property, DataType.OBJECT, nested=tuple(fields),
                                           description="Migration metadata added by sqlite-to-weaviate"))
        else:
            result.extend(_scalar_property(n, t, description="Migration metadata added by sqlite-to-weaviate")
                          for n, t in fields)
    from sqlite_to_weaviate.embed.text import digest_property

    for vector in table_mapping.embedded_vectors:
        result.append(Property(
            name=digest_property(vector.name), data_type=WvDataType.TEXT,
            description=f"embedder id | input sha256 | vector sum of vector {vector.name} (sqlite-to-weaviate)",
            index_filterable=False, index_searchable=False, tokenization=Tokenization.FIELD,
            skip_vectorization=True, vectorize_property_name=False,
        ))
    result.append(
        Property(
            name=HASH_PROPERTY,
            data_type=WvDataType.TEXT,
            description="sha256 of the source SQLite row (sqlite-to-weaviate verify)",
            index_filterable=True,
            index_searchable=False,
            tokenization=Tokenization.FIELD,
            skip_vectorization=True,
            vectorize_property_name=False,
        )
    )
    return result


def vector_config(table_mapping: "TableMapping") -> Any:
    """``Configure.Vectors`` for the table: self-provided, named, or a vectorizer module."""
    module = table_mapping.vectorizer
    if table_mapping.named_vectors or table_mapping.embedded_vectors:
        if module:
            raise MappingError(
                f"table {table_mapping.table!r}: named vectors cannot be combined with "
                f"vectorizer {module!r}; set vectorizer = \"none\""
            )
        from weaviate.classes.config import VectorDistances

        cosine = Configure.VectorIndex.hnsw(distance_metric=VectorDistances.COSINE)
        return ([Configure.Vectors.self_provided(name=name) for name, _ in table_mapping.named_vectors]
                + [Configure.Vectors.self_provided(name=v.name, vector_index_config=cosine)
                   for v in table_mapping.embedded_vectors])
    if not module:
        return Configure.Vectors.self_provided()
    factory_name = module.replace("-", "_")
    factory = getattr(Configure.Vectors, factory_name, None)
    if factory is None or factory_name.startswith("_") or factory_name == "self_provided":
        known = [n.replace("_", "-") for n in dir(Configure.Vectors) if not n.startswith("_")]
        close = difflib.get_close_matches(module, known, n=3)
        raise MappingError(
            f"table {table_mapping.table!r}: unknown vectorizer {module!r}"
            + (f"; did you mean {', '.join(close)}?" if close else "; use \"none\" or a module like text2vec-transformers")
        )
    if "source_properties" not in inspect.signature(factory).parameters:
        raise MappingError(
            f"table {table_mapping.table!r}: vectorizer {module!r} does not vectorize text properties; "
            "use a text2vec-* module or \"none\""
        )
    sources = [c.property for c in table_mapping.columns if c.vectorize and c.data_type is DataType.TEXT]
    return factory(source_properties=sources or None)


def replication_config(factor: int) -> Any:
    """``replication_config=`` for a collection with ``factor`` copies (None at 1: the server's default)."""
    if factor <= 1:
        return None
    import warnings

    from weaviate.classes.config import ReplicationDeletionStrategy

    with warnings.catch_warnings():  # async_enabled is deprecated for servers >= 1.38; 1.35 still needs it
        warnings.simplefilter("ignore", DeprecationWarning)
        return Configure.replication(factor=factor, async_enabled=True,
                                     deletion_strategy=ReplicationDeletionStrategy.TIME_BASED_RESOLUTION)


def cluster_size(client: Any) -> int:
    """Nodes of the Weaviate cluster: its raft members, including nodes that are down right now.

    ``/v1/nodes`` lists only live nodes (and answers 500 for a few seconds after one dies);
    raft's configuration lists every member, which is what a replica can be placed on.
    """
    try:
        statistics = client.cluster.statistics().statistics
        members = {m.id for s in statistics for m in s.raft.latest_configuration}
        if members:
            return len(members)
    except Exception:  # noqa: BLE001 - an older server or a restricted key: count the live nodes instead
        pass
    return len(client.cluster.nodes())


def check_replication_factor(factor: int, nodes: int, where: str = "") -> None:
    """ConfigError naming both numbers when ``factor`` copies cannot be placed on ``nodes`` nodes."""
    if factor > nodes:
        raise ConfigError(
            f"replication_factor {factor} is more than the {nodes} node(s) of the Weaviate cluster{where}: "
            f"each copy needs its own node; lower --replication-factor (S2W_REPLICATION_FACTOR) to {nodes} "
            "or fewer, or add nodes"
        )


def collection_config(table_mapping: "TableMapping", *, name_prefix: str = "",
                      replication_factor: int = 1) -> dict[str, Any]:
    """Keyword arguments for ``client.collections.create(**kwargs)`` (weaviate-client v4).

    For a table stored in versioned collections (embedder vectors) this is the live
    version's physical collection; the table's own name is an alias (``ensure_collections``).
    """
    live = table_mapping.live_version
    if live is not None:
        return collection_config(table_mapping.for_version(live.name), name_prefix=name_prefix,
                                 replication_factor=replication_factor)
    config: dict[str, Any] = {
        "name": name_prefix + table_mapping.collection,
        "description": table_mapping.description or f"SQLite table {table_mapping.table} (sqlite-to-weaviate)",
        "properties": properties(table_mapping),
        "references": [
            ReferenceProperty(name=r.property, target_collection=name_prefix + r.target_collection)
            for r in table_mapping.references
        ],
        "vector_config": vector_config(table_mapping),
    }
    if table_mapping.tenant_column:
        config["multi_tenancy_config"] = Configure.multi_tenancy(
            enabled=True, auto_tenant_creation=True, auto_tenant_activation=True
        )
    replication = replication_config(replication_factor)
    if replication is not None:
        config["replication_config"] = replication
    return config


def ensure_collections(client: Any, mapping: "Mapping", *, name_prefix: str = "",
                       on_create: Callable[[str], None] | None = None,
                       on_alias: Callable[[str], None] | None = None, replication_factor: int = 1) -> list[str]:
    """Create or update every mapped collection; returns a list of actions taken.

    Collections are created without references first and references added afterwards,
    so reference cycles and self-references work. Existing collections gain missing
    properties and references; a property whose type changed, or a changed
    multi-tenancy setting, is a MappingError explaining what to do.

    ``on_create(name)`` is called right after each collection this call created (and
    only those): callers record ownership there, so ``rollback`` deletes whole only the
    collections the tool created. A create call that succeeds is proof: Weaviate refuses
    to create a collection that exists.

    A table whose vectors an embedder computes is stored in one physical collection per
    recorded version (``<Collection>_<version>``), and ``<Collection>`` is an alias to the
    live one (:mod:`.versions`); ``on_alias(name)`` is called for
    each alias this call created. An alias pointing elsewhere than the recorded live
    version is moved back to it (the record in SQLite is the truth).

    ``replication_factor`` > 1 is checked against the cluster's size first (ConfigError
    naming both numbers); existing collections keep their factor (a warning says so when
    it differs) but get async replication and time-based delete resolution if they lack them.
    """
    actions: list[str] = []
    configs: list[tuple[str, dict[str, Any]]] = []
    aliases: list[tuple[str, str]] = []  # (alias, physical collection of the live version)
    for tm in mapping.collections_in_order():
        if tm.versioned:
            configs.extend((tm.table, collection_config(tm.for_version(v.name), name_prefix=name_prefix,
                                                        replication_factor=replication_factor))
                           for v in tm.versions)
            live = tm.live_version
            assert live is not None
            aliases.append((name_prefix + tm.collection, name_prefix + tm.version_collection(live.name)))
        else:
            configs.append((tm.table, collection_config(tm, name_prefix=name_prefix,
                                                        replication_factor=replication_factor)))
    if replication_factor > 1:
        check_replication_factor(replication_factor, cluster_size(client))
    for alias, _ in aliases:
        if client.collections.exists(alias) and client.alias.get(alias_name=alias) is None:
            raise MappingError(
                f"collection {alias} exists as a plain collection, but its table's vectors are computed by an "
                f"embedder, which stores the table in versioned collections ({alias}_v1, ...) behind an alias "
                f"named {alias}. Map the table to a new collection name (`collection = ...`), or delete {alias} "
                "and backfill again"
            )
    for table, config in configs:
        name = config["name"]
        if not client.collections.exists(name):
            create_args = dict(config, references=None)
            try:
                client.collections.create(**create_args)
            except Exception:
                if not client.collections.exists(name):
                    raise
                continue  # another process (the relay following a new version) created it a moment ago
            if on_create is not None:
                on_create(name)
            actions.append(f"created collection {name}")
        else:
            actions.extend(_update_properties(client, table, config))
            actions.extend(replication_actions(client, name, replication_factor))
    for table, config in configs:
        if not config["references"]:
            continue  # nothing to add: skip the round trip (it adds up on a 100-table schema)
        collection = client.collections.get(config["name"])
        existing = {r.name: r for r in collection.config.get().references}
        for reference in config["references"]:
            if reference.name in existing:
                targets = existing[reference.name].target_collections
                if reference.target_collection not in targets:
                    raise MappingError(
                        f"collection {config['name']}: reference {reference.name!r} points to {targets} in Weaviate "
                        f"but the mapping says {reference.target_collection!r}; rename the reference property "
                        "or delete the collection and backfill again"
                    )
                continue
            collection.config.add_reference(reference)
            actions.append(f"added reference {config['name']}.{reference.name} -> {reference.target_collection}")
    for alias, target in aliases:
        current = client.alias.get(alias_name=alias)
        if current is None:
            try:
                client.alias.create(alias_name=alias, target_collection=target)
            except Exception:
                current = client.alias.get(alias_name=alias)
                if current is None:
                    raise
            else:
                if on_alias is not None:
                    on_alias(alias)
                actions.append(f"created alias {alias} -> {target}")
                continue
        if current.collection != target:
            client.alias.update(alias_name=alias, new_target_collection=target)
            actions.append(f"moved alias {alias} from {current.collection} to {target} (the recorded live version)")
    return actions


def replication_actions(client: Any, name: str, factor: int) -> list[str]:
    """An existing collection: say when its factor differs; switch on what keeps replicas equal."""
    current = client.collections.get(name).config.get().replication_config
    actions = []
    if current.factor != factor:
        actions.append(
            f"warning: collection {name} has replication factor {current.factor}, the settings say {factor}; "
            "it is left as it is (re-create the collection and backfill again, or change it with Weaviate's "
            "replication API; docs/scale-out.md)"
        )
    if current.factor > 1:
        from weaviate.classes.config import Reconfigure, ReplicationDeletionStrategy

        strategy = ReplicationDeletionStrategy.TIME_BASED_RESOLUTION
        if not current.async_enabled or current.deletion_strategy != strategy:
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                update = Reconfigure.replication(async_enabled=True, deletion_strategy=strategy)
            client.collections.get(name).config.update(replication_config=update)
            actions.append(f"switched on async replication and time-based delete resolution for {name}")
    return actions


def _update_properties(client: Any, table: str, config: dict[str, Any]) -> list[str]:
    name = config["name"]
    collection = client.collections.get(name)
    current = collection.config.get()
    wants_tenants = "multi_tenancy_config" in config
    if bool(current.multi_tenancy_config.enabled) != wants_tenants:
        raise MappingError(
            f"collection {name} (table {table!r}) has multi-tenancy "
            f"{'on' if current.multi_tenancy_config.enabled else 'off'} but the mapping wants it "
            f"{'on' if wants_tenants else 'off'}; Weaviate cannot change this in place: delete the "
            "collection (or map to a new collection name) and backfill again"
        )
    existing = {p.name: p for p in current.properties}
    actions = []
    for prop in config["properties"]:
        have = existing.get(prop.name)
        if have is None:
            collection.config.add_property(prop)
            actions.append(f"added property {name}.{prop.name} ({prop.dataType.value})")
        elif have.data_type.value != prop.dataType.value:
            raise MappingError(
                f"collection {name}: property {prop.name!r} is {have.data_type.value} in Weaviate but the mapping "
                f"makes it {prop.dataType.value}; Weaviate cannot change a property's type: give the column another "
                "`property` name in the mapping config, or delete the collection and backfill again"
            )
    return actions


def return_properties(table_mapping: "TableMapping") -> list[Any]:
    """Every stored property of the collection, for a query that must read them all.

    Weaviate returns blob properties only when named, and object properties only through
    ``QueryNested`` with their nested names (a plain name makes the server fail with
    "creating primitive value ... invalid type"), so both are spelled out here.
    """
    from weaviate.classes.query import QueryNested

    def spec(name: str, data_type: DataType, nested: tuple[tuple[str, DataType], ...]) -> Any:
        if data_type is DataType.OBJECT:
            return QueryNested(name=name, properties=[n for n, _ in nested])
        return name

    result: list[Any] = [spec(c.property, c.data_type, c.nested) for c in table_mapping.columns]
    metadata = table_mapping.metadata
    if not metadata.is_empty():
        if metadata.property:
            result.append(QueryNested(name=metadata.property, properties=[n for n, _ in metadata.fields()]))
        else:
            result.extend(name for name, _ in metadata.fields())
    result.append(HASH_PROPERTY)
    return result
