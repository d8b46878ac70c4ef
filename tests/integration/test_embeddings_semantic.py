"""The real model end to end: the migrated chat data answers questions by meaning.

all-MiniLM-L6-v2 runs in the worker (numpy; files fetched by scripts/setup), the query is
embedded by the same model in the test, and each known question must rank its help-desk
answer first among every migrated message. No query shares a content word with its answer.
"""

from __future__ import annotations

import pytest

from examples.chat_app.content import SEMANTIC_QUERIES, SUPPORT_FAQ
from examples.chat_app.seed import build_sample_database
from examples.chat_app.semantic import search_messages, write_semantic_mapping
from sqlite_to_weaviate.backfill import BackfillOptions, backfill
from sqlite_to_weaviate.embed.query import load_embedder
from sqlite_to_weaviate.verify import verify
from sqlite_to_weaviate.verify.search import SearchOptions

pytestmark = pytest.mark.integration


def test_known_questions_rank_their_answers_first(tmp_path, make_settings, pipeline_factory, weaviate_client,
                                                  collection_prefix):
    db = tmp_path / "chat.db"
    counts = build_sample_database(db, conversations=15, seed=2, support_faq=True)
    settings = make_settings(db, mapping_file=write_semantic_mapping(tmp_path / "mapping.toml"), lease_seconds=10.0,
                             job_timeout=120)
    pipeline = pipeline_factory(settings)
    pipeline.init()
    pipeline.start_workers(1)
    backfill(settings, BackfillOptions(wait_applied=False))
    pipeline.drain(timeout=600)

    messages = collection_prefix + "Message"
    total = weaviate_client.collections.use(messages).aggregate.over_all(total_count=True).total_count
    assert total == counts["messages"] > 60
    embedder = load_embedder(settings.mapping_file, "minilm")
    for query, answer in SEMANTIC_QUERIES.items():
        ranked = search_messages(weaviate_client, embedder, messages, query, limit=3)
        assert ranked[0][0] == SUPPORT_FAQ[answer], (query, ranked)

    report = verify(settings, tables=["messages"], search=SearchOptions(sample=30, k=10))
    search = report.tables["messages"].search
    assert search.vectors["content"].recall == 1.0 and search.keyword.recall == 1.0, report.render()
    assert report.exit_code() == 0, report.render()
