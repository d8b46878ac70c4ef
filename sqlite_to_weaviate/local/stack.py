"""Weaviate and Redis together: what the demo and the test session need running."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlite_to_weaviate.local.redis_server import RedisServer
from sqlite_to_weaviate.local.weaviate_server import WeaviateServer


@dataclass
class LocalStack:
    root: Path
    api_key: str | None = None
    weaviate: WeaviateServer = field(init=False)
    redis: RedisServer = field(init=False)

    def __post_init__(self) -> None:
        self.weaviate = WeaviateServer(self.root / "weaviate", api_key=self.api_key)
        self.redis = RedisServer(self.root / "redis")

    def start(self) -> "LocalStack":
        self.redis.start()
        try:
            self.weaviate.start()
        except BaseException:
            self.redis.stop()
            raise
        return self

    def stop(self) -> None:
        self.weaviate.stop()
        self.redis.stop()

    def __enter__(self) -> "LocalStack":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
