"""Every adapter satisfies its Protocol (checked by mypy on this file, STYLE rule 5)."""

from __future__ import annotations

from pathlib import Path

import boto3
import pytest

import botkiln.infra.ports as ports
from botkiln.infra.artifacts_fs import FsArtifactStore
from botkiln.infra.artifacts_s3 import S3ArtifactStore
from botkiln.infra.ports import ArtifactStore


def test_artifact_stores_implement_the_protocol(tmp_path: Path) -> None:
    client = boto3.client(
        "s3",
        endpoint_url="http://127.0.0.1:1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
        region_name="us-east-1",
    )
    stores: list[ArtifactStore] = [FsArtifactStore(tmp_path), S3ArtifactStore(client, "bucket")]
    assert [type(s).__name__ for s in stores] == ["FsArtifactStore", "S3ArtifactStore"]


def test_each_protocol_stays_small() -> None:
    members = [n for n in vars(ArtifactStore) if not n.startswith("_")]
    assert len(members) <= 6, members


def test_artifact_errors_share_one_root() -> None:
    from botkiln.interpreter.errors import BotkilnError

    for error in (ports.ArtifactExists, ports.ArtifactMissing, ports.ArtifactCorrupt, ports.ArtifactStoreUnavailable):
        assert issubclass(error, ports.ArtifactError) and issubclass(error, BotkilnError)


@pytest.mark.anyio
async def test_the_runtime_adapters_implement_their_protocols() -> None:
    import httpx
    from redis.asyncio import Redis

    from botkiln.infra.chat_queue import RedisChatQueue
    from botkiln.infra.chat_state import RedisChatState
    from botkiln.infra.telegram_api import BotApiClient

    redis = Redis.from_url("redis://127.0.0.1:1/0")
    async with httpx.AsyncClient() as http:
        queue: ports.ChatQueue = RedisChatQueue(redis)
        states: ports.StateStore = RedisChatState(redis)
        api: ports.BotApi = BotApiClient(http, "1:x", base_url="http://127.0.0.1:1")
        assert [type(a).__name__ for a in (queue, states, api)] == ["RedisChatQueue", "RedisChatState", "BotApiClient"]
    await redis.aclose()
    for protocol in (ports.ChatQueue, ports.StateStore, ports.BotApi, ports.AnalyticsSink):
        members = [n for n in vars(protocol) if not n.startswith("_")]
        assert len(members) <= 6, (protocol, members)
