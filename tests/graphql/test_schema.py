"""Unexpected failures are masked for the client and logged with the request id."""

from __future__ import annotations

import asyncio
import logging
from types import SimpleNamespace
from typing import Any
from uuid import uuid4

import pytest

from botkiln.graphql.context import Context
from botkiln.graphql.schema import build_schema
from botkiln.graphql.sessions import Session


class BrokenDb:
    """A database whose every call fails with a message that must not reach the client."""

    async def fetchrow(self, *args: Any) -> Any:
        raise RuntimeError("connection to 10.0.0.5 failed: password=hunter2")


def _context(request_id: str, *, signed_in: bool = True) -> Context:
    services: Any = SimpleNamespace(db=BrokenDb())
    request: Any = SimpleNamespace(client=None)
    session = Session(uuid4(), "csrf") if signed_in else None
    return Context(services, request, None, request_id, "http", "sid", session, csrf_ok=True)


def test_an_unexpected_error_is_masked_and_logged_with_the_request_id(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger="botkiln.graphql")
    result = asyncio.run(build_schema().execute("{ viewer { id } }", context_value=_context("req-1234abcd")))
    assert result.errors is not None
    [error] = result.errors
    assert error.message == "Unexpected error (request id req-1234abcd)."
    assert error.extensions == {"code": "INTERNAL_SERVER_ERROR", "requestId": "req-1234abcd"}
    assert "hunter2" not in str(error.formatted)
    [record] = [r for r in caplog.records if r.name == "botkiln.graphql"]
    assert "req-1234abcd" in record.getMessage() and record.exc_info is not None


def test_expected_refusals_are_not_masked() -> None:
    result = asyncio.run(
        build_schema().execute("{ projects { edges { cursor } } }", context_value=_context("r", signed_in=False))
    )
    assert result.errors is not None and result.errors[0].message == "Sign in first."
    invalid = asyncio.run(build_schema().execute("{ nope }"))
    assert invalid.errors is not None and "Cannot query field 'nope'" in invalid.errors[0].message
