"""The error table checked against the real server: what Weaviate answers for bad rows is
permanent (matched by a row of the table, never by a property's name), and what a frozen
or killed server does to a request is transient."""

from __future__ import annotations

import os
import signal
import uuid

import pytest
from weaviate.classes.config import Configure, DataType, Property
from weaviate.classes.data import DataObject
from weaviate.classes.query import Filter

from sqlite_to_weaviate.weaviate_adapter import WeaviateEndpoint
from sqlite_to_weaviate.writer.weaviate_errors import (
    Verdict, all_failed_messages, classify_exception, classify_message, rule_for,
)

pytestmark = pytest.mark.integration

BAD_ROWS = {  # property values the server refuses, one object each
    "connection_count": "abc", "timeout_ms": "slow", "title": 5, "ok": "maybe", "at": "yesterday",
    "raw": "not base64!!", "ref_uuid": "nope", "tags": [1, 2], "nums": ["a"], "no_such": 1,
}


def _collection(client):
    return client.collections.create("ErrProbe", vector_config=Configure.Vectors.self_provided(), properties=[
        Property(name="connection_count", data_type=DataType.INT), Property(name="timeout_ms", data_type=DataType.NUMBER),
        Property(name="title", data_type=DataType.TEXT), Property(name="ok", data_type=DataType.BOOL),
        Property(name="at", data_type=DataType.DATE), Property(name="raw", data_type=DataType.BLOB),
        Property(name="ref_uuid", data_type=DataType.UUID), Property(name="tags", data_type=DataType.TEXT_ARRAY),
        Property(name="nums", data_type=DataType.INT_ARRAY)])


def test_the_servers_answers_are_in_the_table(weaviate_server_factory):
    server = weaviate_server_factory()
    client = WeaviateEndpoint.parse(server.url).connect(timeout_s=5, insert_timeout_s=3)
    try:
        collection = _collection(client)
        collection.data.insert_many([DataObject(properties={"title": "first"}, vector=[0.1, 0.2, 0.3])])
        objects = [DataObject(properties={name: value}, vector=[0.1, 0.2, 0.3]) for name, value in BAD_ROWS.items()]
        objects.append(DataObject(properties={"title": "short vector"}, vector=[0.1, 0.2]))
        objects.append(DataObject(properties={"title": "fine"}, vector=[0.1, 0.2, 0.3]))
        result = collection.data.insert_many(objects)
        messages = {i: e.message for i, e in result.errors.items()}
        assert sorted(messages) == list(range(len(objects) - 1))  # every bad row refused, the good one landed
        for message in messages.values():
            assert rule_for(message) is not None, f"the table has no row for the server's message {message!r}"
            assert classify_message(message) is Verdict.PERMANENT, message
        assert "connection_count" in messages[0] and "timeout_ms" in messages[1]

        with pytest.raises(Exception) as all_failed:
            collection.data.insert_many([DataObject(properties={"connection_count": "x"}, vector=[0.1, 0.2, 0.3])])
        assert all_failed_messages(str(all_failed.value)) and classify_exception(all_failed.value) is Verdict.PERMANENT

        with pytest.raises(Exception) as no_collection:
            client.collections.use("ErrProbeMissing").data.insert_many([DataObject(properties={"a": 1})])
        assert classify_exception(no_collection.value) is Verdict.PERMANENT

        os.kill(server.pid, signal.SIGSTOP)  # a frozen server: requests hit their deadline
        try:
            with pytest.raises(Exception) as frozen_insert:
                collection.data.insert_many([DataObject(properties={"title": "t"}, vector=[0.1, 0.2, 0.3])])
            with pytest.raises(Exception) as frozen_delete:
                collection.data.delete_many(where=Filter.by_id().contains_any([str(uuid.uuid4())]))
        finally:
            os.kill(server.pid, signal.SIGCONT)
        for exc in (frozen_insert.value, frozen_delete.value):
            assert classify_exception(exc) is Verdict.TRANSIENT, repr(exc)

        server.kill()  # a dead server: the connection is refused
        with pytest.raises(Exception) as dead:
            collection.data.insert_many([DataObject(properties={"title": "t"}, vector=[0.1, 0.2, 0.3])])
        assert classify_exception(dead.value) is Verdict.TRANSIENT, repr(dead.value)
        with pytest.raises(Exception) as dead_rest:
            collection.exists()
        assert classify_exception(dead_rest.value) is Verdict.TRANSIENT, repr(dead_rest.value)
    finally:
        client.close()
