"""Fixtures that assemble a real pipeline (SQLite file + relay + worker processes)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sqlite_to_weaviate.settings import Settings
from tests.support.pipeline import Pipeline


@pytest.fixture
def make_settings(tmp_path: Path, weaviate_url: str, redis_url: str, redis_namespace: str, collection_prefix: str):
    def make(db_path: Path | None = None, **overrides) -> Settings:
        values = dict(
            sqlite_path=db_path or tmp_path / "app.db", weaviate_url=weaviate_url, redis_url=redis_url,
            namespace=redis_namespace, collection_prefix=collection_prefix, partitions=8, batch_size=100,
            lease_seconds=3.0, job_timeout=15, retry_delay=0.2, backoff_max=2.0, poll_interval=0.5,
        )
        values.update(overrides)
        return Settings(**values)

    return make


@pytest.fixture
def pipeline_factory(tmp_path: Path, weaviate_client, redis_client):
    """Pipelines are stopped (workers and relays terminated) after the test."""
    made: list[Pipeline] = []

    def make(settings: Settings) -> Pipeline:
        log_dir = tmp_path / f"logs{len(made)}"
        log_dir.mkdir()
        pipeline = Pipeline(settings, log_dir)
        made.append(pipeline)
        return pipeline

    yield make
    for pipeline in made:
        pipeline.stop()
