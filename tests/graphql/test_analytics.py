"""The ``analytics`` query through the real API server and a gql client.

The app reads the session's chdb directory (the one ``tests/infra/test_analytics.py``
uses: chdb hosts one engine per process); the test writes a bot's telemetry there
through its own sink, dated yesterday and today, and reads it back as a viewer of
the bot's project. Non-members and anonymous visitors are refused.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from botkiln.graphql.analytics import AnalyticsUnavailableError, _ask
from botkiln.infra.analytics import EventRow, host_row, rows_from_telemetry, update_ref
from botkiln.infra.analytics_clickhouse import ClickHouseAnalytics
from botkiln.infra.settings import Settings
from botkiln.infra.telegram_standin import BotApiStandIn
from tests.conftest import minimal_spec
from tests.graphql.support import Api, sign_up

DAY = date(2026, 1, 1)
SUMMARY = """
query($b: ID!, $days: Int!) {
  analytics(botId: $b, days: $days) {
    botId since until
    daily { day updates messagesSent errors errorRate p50LatencyMs p95LatencyMs }
    eventCounts { type count }
    funnel(flowId: "main") { stage step chats }
  }
}
"""


@pytest.fixture(scope="session")
def analytics_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The session's one chdb data directory."""
    path = tmp_path_factory.getbasetemp() / "analytics-chdb"
    path.mkdir(exist_ok=True)
    return path


@pytest.fixture(scope="module")
def settings(settings: Settings, analytics_dir: Path) -> Settings:
    """The module's settings, with analytics in the session's chdb directory."""
    return replace(settings, analytics_url=f"chdb://{analytics_dir}")


@dataclass
class Team:
    bot_id: str
    owner: Api
    viewer: Api
    outsider: Api


@pytest.fixture(scope="module")
def team(base_url: str, standin: BotApiStandIn) -> Iterator[Team]:
    """A project with a bot whose spec is saved, its owner, a viewer, and an outsider."""
    owner, viewer, outsider = Api(base_url), Api(base_url), Api(base_url)
    sign_up(owner)
    viewer_email = sign_up(viewer)["email"]
    sign_up(outsider)
    project_id = owner.run(
        'mutation { createProject(name: "stats") { ... on ProjectCreated { project { id } } } }'
    ).ok()["createProject"]["project"]["id"]
    invited = owner.run(
        "mutation($p: ID!, $e: String!) { inviteMember(projectId: $p, email: $e, role: VIEWER) { __typename } }",
        {"p": project_id, "e": viewer_email},
    ).ok()
    assert invited == {"inviteMember": {"__typename": "MemberSet"}}
    bot_id = f"stats-{secrets.token_hex(4)}"
    created = owner.run(
        'mutation($p: ID!, $b: String!, $t: String!) { createBot(projectId: $p, botId: $b, name: "S", token: $t)'
        " { __typename } }",
        {"p": project_id, "b": bot_id, "t": standin.register().token},
    ).ok()
    assert created == {"createBot": {"__typename": "BotCreated"}}
    spec = minimal_spec()
    spec["meta"]["botId"] = bot_id
    saved = owner.run(
        "mutation($b: ID!, $s: JSON!) { saveSpecVersion(botId: $b, spec: $s, expectedVersion: 0) { __typename } }",
        {"b": bot_id, "s": spec},
    ).ok()
    assert saved == {"saveSpecVersion": {"__typename": "SpecSaved"}}
    yield Team(bot_id, owner, viewer, outsider)
    for api in (owner, viewer, outsider):
        api.close()


def traffic(settings: Settings, bot_id: str, yesterday: datetime, today: datetime) -> list[EventRow]:
    """Four updates yesterday (one api_error), two today (one executor crash), as the engines and host emit them."""
    key = settings.analytics_chat_key()
    rows: list[EventRow] = []

    def update(n: int, chat: int, at: datetime, events: list[dict[str, Any]], sent: tuple[float, ...] = ()) -> Any:
        now_ms = int(at.timestamp() * 1000) + n
        ref = update_ref(key, bot_id=bot_id, rev_hash="e" * 64, chat_id=chat, update_id=n, now_ms=now_ms)
        rows.extend(rows_from_telemetry(ref, events))
        rows.extend(host_row(ref, "message_sent", latency_ms=ms, status=200) for ms in sent)
        rows.append(host_row(ref, "update_processed", latency_ms=sum(sent)))
        return ref

    start: list[dict[str, Any]] = [
        {"type": "command", "command": "start"},
        {"type": "flow_started", "flow": "main", "via": "command"},
        {"type": "step_completed", "flow": "main", "step": "hello", "stepType": "reply"},
        {"type": "awaiting_answer", "flow": "main", "step": "name"},
    ]
    answer: list[dict[str, Any]] = [
        {"type": "answer_received", "flow": "main", "step": "name"},
        {"type": "step_completed", "flow": "main", "step": "name", "stepType": "ask"},
        {"type": "step_completed", "flow": "main", "step": "check", "stepType": "validate"},
        {"type": "step_completed", "flow": "main", "step": "bye", "stepType": "reply"},
        {"type": "flow_completed", "flow": "main"},
    ]
    quote: list[dict[str, Any]] = [
        {"type": "command", "command": "quote"},
        {"type": "flow_started", "flow": "quote", "via": "command"},
        {"type": "api_call", "flow": "quote", "step": "fetch"},
        {"type": "api_error", "flow": "quote", "step": "fetch", "error": "network", "status": None},
        {"type": "flow_aborted", "flow": "quote", "reason": "api_error"},
    ]
    update(1, 501, yesterday, start, (100, 200))
    update(2, 501, yesterday, answer, (50,))
    update(3, 502, yesterday, quote)
    update(4, 503, yesterday, [{"type": "unhandled"}])
    update(5, 502, today, start, (80, 120))
    crashed = update(6, 503, today, [])
    rows.insert(-1, host_row(crashed, "executor_error", error="InternalError: interrupted"))
    return rows


@pytest.fixture(scope="module")
def recorded(team: Team, settings: Settings) -> datetime:
    """The bot's traffic, written; returns today (UTC midnight)."""
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    sink = ClickHouseAnalytics(settings.analytics_url)
    try:
        sink.record(traffic(settings, team.bot_id, today - timedelta(hours=12), today))
        assert sink.flush()
    finally:
        sink.close()
    return today


def test_a_viewer_reads_the_summary(team: Team, recorded: datetime) -> None:
    yesterday, today = (recorded - timedelta(days=1)).date().isoformat(), recorded.date().isoformat()

    summary = team.viewer.run(SUMMARY, {"b": team.bot_id, "days": 2}).ok()["analytics"]

    assert (summary["botId"], summary["since"], summary["until"]) == (team.bot_id, yesterday, today)
    # Yesterday: 4 updates, chat 502's api_error failed one; latencies 50 100 200 → p50 100, p95 200
    # Today: 2 updates, chat 503 crashed; latencies 80 120 → p50 = p95 = 120 (nearest rank)
    assert summary["daily"] == [
        {"day": yesterday, "updates": 4, "messagesSent": 3, "errors": 1, "errorRate": 0.25,
         "p50LatencyMs": 100.0, "p95LatencyMs": 200.0},
        {"day": today, "updates": 2, "messagesSent": 2, "errors": 1, "errorRate": 0.5,
         "p50LatencyMs": 120.0, "p95LatencyMs": 120.0},
    ]  # fmt: skip
    assert summary["eventCounts"] == [
        {"type": t, "count": n}
        for t, n in [
            ("update_processed", 6), ("message_sent", 5), ("step_completed", 5), ("command", 3), ("flow_started", 3),
            ("awaiting_answer", 2), ("answer_received", 1), ("api_call", 1), ("api_error", 1), ("executor_error", 1),
            ("flow_aborted", 1), ("flow_completed", 1), ("unhandled", 1),
        ]
    ]  # fmt: skip
    # The steps come in the saved spec's order: chats 501 and 502 started, only 501 went on
    assert summary["funnel"] == [
        {"stage": "STARTED", "step": None, "chats": 2},
        {"stage": "STEP", "step": "hello", "chats": 2},
        {"stage": "STEP", "step": "name", "chats": 1},
        {"stage": "STEP", "step": "check", "chats": 1},
        {"stage": "STEP", "step": "bye", "chats": 1},
        {"stage": "COMPLETED", "step": None, "chats": 1},
    ]


def test_the_window_defaults_to_two_weeks_and_one_day_is_today(team: Team, recorded: datetime) -> None:
    query = "query($b: ID!) { analytics(botId: $b) { since daily { day updates } } }"
    two_weeks = team.owner.run(query, {"b": team.bot_id}).ok()["analytics"]
    assert two_weeks["since"] == (recorded - timedelta(days=13)).date().isoformat()
    assert [d["updates"] for d in two_weeks["daily"]] == [0] * 12 + [4, 2]

    one_day = team.viewer.run(SUMMARY, {"b": team.bot_id, "days": 1}).ok()["analytics"]
    assert [(d["day"], d["updates"]) for d in one_day["daily"]] == [(recorded.date().isoformat(), 2)]
    assert [s["chats"] for s in one_day["funnel"]] == [1, 1, 0, 0, 0, 0]


@pytest.mark.parametrize("days", [0, 91, -3])
def test_days_out_of_bounds_are_refused(team: Team, days: int) -> None:
    reply = team.viewer.run(SUMMARY, {"b": team.bot_id, "days": days})
    assert reply.data is None and reply.codes == ["BAD_USER_INPUT"]
    assert reply.errors is not None and reply.errors[0]["message"] == f"days must be 1..90; got {days}"


def test_a_non_member_is_refused(team: Team, recorded: datetime) -> None:
    reply = team.outsider.run(SUMMARY, {"b": team.bot_id, "days": 2})
    assert reply.data is None and reply.codes == ["FORBIDDEN"]
    assert "viewer role" in reply.errors[0]["message"]  # type: ignore[index]


def test_an_anonymous_visitor_is_refused(base_url: str, team: Team, recorded: datetime) -> None:
    anonymous = Api(base_url)
    try:
        reply = anonymous.run(SUMMARY, {"b": team.bot_id, "days": 2})
    finally:
        anonymous.close()
    assert reply.data is None and reply.codes == ["FORBIDDEN"]


def test_an_unreachable_store_is_unavailable_without_its_address() -> None:
    down = ClickHouseAnalytics("http://127.0.0.1:9")
    context = SimpleNamespace(services=SimpleNamespace(analytics=down), request_id="r-1")
    try:
        with pytest.raises(AnalyticsUnavailableError) as raised:
            asyncio.run(_ask(SimpleNamespace(context=context), lambda sink: sink.event_counts("b", DAY, DAY)))  # type: ignore[arg-type]
    finally:
        down.close()
    assert raised.value.extensions == {"code": "UNAVAILABLE"}
    assert raised.value.message == "Analytics are unavailable right now; try again later."


def test_an_unknown_bot_is_refused_like_a_foreign_one(team: Team) -> None:
    reply = team.viewer.run(SUMMARY, {"b": "no-such-bot", "days": 2})
    assert reply.data is None and reply.codes == ["FORBIDDEN"]
