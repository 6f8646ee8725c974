"""``serve``'s Prometheus endpoint (workers/process.py): behind the token, and a taken port is not fatal.

No other worker may run in this module (Dramatiq's event loop is one per process).
"""

from __future__ import annotations

import dataclasses
import logging
import secrets
import socket
import threading
import time

import httpx
import pytest

from botkiln.infra.settings import Settings
from botkiln.workers import serve
from tests.services import delete_keys


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def serving(settings: Settings, stop: threading.Event, redis_url: str) -> threading.Thread:
    """``serve`` in a thread on a namespace of its own (deleted when it stops)."""
    namespace = f"botkiln-test-{secrets.token_hex(4)}"

    def run() -> None:
        try:
            serve(settings, threads=1, namespace=namespace, stop=stop)
        finally:
            delete_keys(redis_url, f"{namespace}:*")

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_a_worker_serves_its_metrics_behind_the_token(settings: Settings, redis_url: str) -> None:
    port = free_port()
    configured = dataclasses.replace(settings, metrics_port=port, metrics_host="127.0.0.1", metrics_token="w-token-1")
    stop = threading.Event()
    thread = serving(configured, stop, redis_url)
    try:
        url = f"http://127.0.0.1:{port}/metrics"
        deadline = time.monotonic() + 20
        while True:
            try:
                refused = httpx.get(url)
                break
            except httpx.ConnectError:
                assert time.monotonic() < deadline, "the worker's metrics port never opened"
                time.sleep(0.05)
        assert refused.status_code == 401
        answer = httpx.get(url, headers={"Authorization": "Bearer w-token-1"})
        assert answer.status_code == 200 and "botkiln_sandbox_pool_size" in answer.text
    finally:
        stop.set()
        thread.join(timeout=30)
    assert not thread.is_alive()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/metrics")


def test_a_worker_whose_metrics_port_is_taken_runs_without_it(
    settings: Settings, redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        configured = dataclasses.replace(settings, metrics_port=port, metrics_host="127.0.0.1")
        stop = threading.Event()
        with caplog.at_level(logging.INFO, logger="botkiln.workers.process"):
            thread = serving(configured, stop, redis_url)
            deadline = time.monotonic() + 20
            while "thread(s) on queues" not in caplog.text:
                assert time.monotonic() < deadline and thread.is_alive(), caplog.text
                time.sleep(0.05)
            stop.set()
            thread.join(timeout=30)
    assert f"metrics not served, 127.0.0.1:{port} cannot be bound" in caplog.text
