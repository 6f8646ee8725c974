"""The API's defences, from outside: CSRF, CORS, WebSocket origins and transports, limits."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from gql import Client, GraphQLRequest
from gql.transport.exceptions import TransportConnectionFailed, TransportQueryError
from gql.transport.websockets import WebsocketsTransport
from websockets.exceptions import InvalidStatus

from botkiln.graphql.app import MAX_BODY_BYTES
from botkiln.graphql.schema import MAX_ALIASES, MAX_DEPTH
from tests.graphql.conftest import CONSOLE_ORIGIN
from tests.graphql.support import Api, cookie_header, sign_up

CREATE_PROJECT = 'mutation { createProject(name: "p") { __typename } }'
EVIL = "https://evil.example"


def test_a_mutation_without_the_csrf_header_is_refused(api: Api) -> None:
    sign_up(api)
    refused = api.run(CREATE_PROJECT, csrf=False)
    assert refused.data is None and refused.codes == ["CSRF"]
    wrong = api.run(CREATE_PROJECT, csrf="not-the-token")
    assert wrong.data is None and wrong.codes == ["CSRF"]
    assert api.run(CREATE_PROJECT).ok() == {"createProject": {"__typename": "ProjectCreated"}}


def test_the_csrf_token_is_bound_to_the_session_not_just_the_cookie(api: Api) -> None:
    # Given a signed-in browser whose csrf cookie an attacker overwrote with a token of their choosing
    sign_up(api)
    api.cookies.set("botkiln_csrf", "attacker-chosen-token", domain="127.0.0.1")
    # When the attacker's page submits the matching header
    refused = api.run(CREATE_PROJECT, csrf="attacker-chosen-token")
    # Then the session's own token is still required
    assert refused.codes == ["CSRF"]


def test_sign_in_needs_the_pre_session_csrf_token_too(api: Api) -> None:
    reply = api.run('mutation { signIn(email: "a@b.co", password: "whatever1") { __typename } }', csrf=False)
    assert reply.codes == ["CSRF"]


def test_queries_need_no_csrf_token_and_hand_out_the_cookie(api: Api) -> None:
    assert api.run("{ viewer { id } }", csrf=False).ok() == {"viewer": None}
    assert api.cookies.get("botkiln_csrf")


def test_cors_admits_the_console_origin_only(base_url: str) -> None:
    preflight = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type,x-csrf-token"}
    with httpx.Client(base_url=base_url) as client:
        evil = client.options("/graphql", headers={"Origin": EVIL, **preflight})
        assert "access-control-allow-origin" not in evil.headers and evil.status_code == 400
        console = client.options("/graphql", headers={"Origin": CONSOLE_ORIGIN, **preflight})
        assert console.status_code == 200
        assert console.headers["access-control-allow-origin"] == CONSOLE_ORIGIN
        assert console.headers["access-control-allow-credentials"] == "true"
        simple = client.post("/graphql", json={"query": "{ viewer { id } }"}, headers={"Origin": EVIL})
        assert "access-control-allow-origin" not in simple.headers


def test_a_websocket_from_another_origin_is_refused(base_url: str, api: Api) -> None:
    sign_up(api)

    async def connect(origin: str) -> None:
        transport = WebsocketsTransport(
            url=base_url.replace("http", "ws") + "/graphql",
            headers={"Cookie": cookie_header(api), "Origin": origin},
            subprotocols=[WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL],
        )
        async with Client(transport=transport) as session:
            await session.execute(GraphQLRequest("{ viewer { id } }"))

    with pytest.raises(TransportConnectionFailed) as refused:
        asyncio.run(connect(EVIL))
    assert isinstance(refused.value.__cause__, InvalidStatus) and refused.value.__cause__.response.status_code == 403
    asyncio.run(connect(CONSOLE_ORIGIN))


def test_the_websocket_speaks_graphql_transport_ws_only_and_carries_no_mutations(base_url: str, api: Api) -> None:
    sign_up(api)
    url = base_url.replace("http", "ws") + "/graphql"

    async def run(protocol: str, query: str) -> object:
        transport = WebsocketsTransport(url=url, headers={"Cookie": cookie_header(api)}, subprotocols=[protocol])
        async with Client(transport=transport) as session:
            return await session.execute(GraphQLRequest(query))

    with pytest.raises(Exception):  # noqa: B017 - the legacy protocol is not even negotiated
        asyncio.run(run(WebsocketsTransport.APOLLO_SUBPROTOCOL, "{ viewer { id } }"))
    with pytest.raises(TransportQueryError, match="mutations are accepted over HTTP only"):
        asyncio.run(run(WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL, CREATE_PROJECT))


def test_subscriptions_are_refused_over_http(api: Api) -> None:
    sign_up(api)
    reply = api.run("subscription { progress { botId } }")
    assert reply.data is None and reply.codes == ["BAD_REQUEST"]


def test_http_accepts_json_posts_only(base_url: str) -> None:
    with httpx.Client(base_url=base_url) as client:
        assert client.get("/graphql", params={"query": "{ viewer { id } }"}).status_code == 405
        form = client.post("/graphql", data={"query": "{ viewer { id } }"})
        assert form.status_code == 400


def test_a_body_over_the_cap_is_refused_with_413(base_url: str) -> None:
    big = "x" * (MAX_BODY_BYTES + 1)
    with httpx.Client(base_url=base_url) as client:
        declared = client.post("/graphql", content=big, headers={"content-type": "application/json"})
        assert declared.status_code == 413

        def chunks():  # no content-length: the cap is counted while streaming
            for _ in range(MAX_BODY_BYTES // 65536 + 2):
                yield b"x" * 65536

        streamed = client.post("/graphql", content=chunks(), headers={"content-type": "application/json"})
        assert streamed.status_code == 413


def test_a_console_sized_query_passes_the_limits(api: Api) -> None:
    sign_up(api)
    reply = api.run(
        "{ viewer { id email } projects(first: 5) { edges { cursor node { id name viewerRole"
        " members { role user { id email } } } } pageInfo { hasNextPage endCursor } } }"
    )
    assert reply.errors is None and len(reply.data["projects"]["edges"]) == 0


def test_too_deep_queries_are_refused_before_they_run(api: Api) -> None:
    # Given a query nested past the limit (fragments cannot hide the depth)
    inner = "id"
    for _ in range(MAX_DEPTH + 1):
        inner = f'bots(projectId: "00000000-0000-0000-0000-000000000000") {{ edges {{ node {{ {inner} }} }} }}'
    reply = api.run("fragment F on Query { " + inner + " } query Deep { ...F }")
    assert reply.data is None and reply.errors
    assert "exceeds maximum operation depth" in reply.errors[0]["message"]


def test_too_many_aliases_are_refused(api: Api) -> None:
    aliases = " ".join(f"a{n}: viewer {{ id }}" for n in range(MAX_ALIASES + 1))
    reply = api.run("{ " + aliases + " }")
    assert reply.data is None and reply.errors
    assert "aliases" in reply.errors[0]["message"]


def test_too_many_tokens_are_refused(api: Api) -> None:
    fields = " ".join("__typename" for _ in range(2100))
    reply = api.run("{ " + fields + " }")
    assert reply.data is None and reply.errors
    assert "token" in reply.errors[0]["message"].lower()


def test_every_response_carries_a_request_id(base_url: str) -> None:
    with httpx.Client(base_url=base_url) as client:
        response = client.post("/graphql", json={"query": "{ viewer { id } }"})
        assert len(response.headers["x-request-id"]) >= 8
        health = client.get("/healthz")
        assert health.json() == {"ok": True, "postgres": True, "redis": True}


def test_a_client_leaving_mid_request_is_not_an_application_error(
    base_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    import socket
    import time
    from urllib.parse import urlsplit

    url = urlsplit(base_url)
    with caplog.at_level("ERROR", logger="uvicorn.error"):
        with socket.create_connection((url.hostname, url.port)) as sock:
            head = (
                f"POST /graphql HTTP/1.1\r\nHost: {url.netloc}\r\nContent-Type: application/json\r\n"
                "Content-Length: 1000\r\n\r\n"
            )
            sock.sendall(head.encode() + b'{"query": ')  # ... and the tab closes before the rest
        time.sleep(0.5)
    assert not [r for r in caplog.records if r.levelname == "ERROR"], [r.getMessage() for r in caplog.records]
