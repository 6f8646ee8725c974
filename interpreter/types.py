"""JSON wire shapes of the step contract (docs/botspec.md §3).

Each TypedDict says which direction it travels. Engines exchange only these
shapes; everything is plain JSON so that the Python reference interpreter and a
generated ``bot.js`` can be compared byte for byte.
"""

from __future__ import annotations

from typing import Any, Literal, NotRequired, TypedDict

JSON = Any
"""Any JSON value (dict, list, str, int, float, bool or None)."""

EventKind = Literal["message", "callback", "ignored"]


class Event(TypedDict):
    """A normalised Telegram update: host -> engine (§4)."""

    kind: EventKind
    updateId: int | None
    chatId: int | None
    chatType: str | None
    userId: int | None
    firstName: str | None
    lastName: str | None
    username: str | None
    languageCode: str | None
    messageId: int | None
    text: str | None
    media: str | None
    command: str | None
    args: str | None
    callbackId: str | None
    data: str | None
    reason: str | None


class Cursor(TypedDict):
    """Where a chat waits for an ``ask`` answer: part of State."""

    flow: str
    step: str
    since: int


class State(TypedDict):
    """Per-chat state: engine -> host -> engine (§5)."""

    vars: dict[str, JSON]
    cursor: Cursor | None
    cooldowns: dict[str, int]
    setAt: dict[str, int]
    updatedAt: int | None


class Context(TypedDict, total=False):
    """Host facts for one update: host -> engine (§3)."""

    botId: str
    revision: str
    now: int
    locale: str
    chatId: int | None
    userId: int | None
    firstName: str | None
    lastName: str | None
    username: str | None


class Action(TypedDict):
    """One Bot API call to make: engine -> host (§11.3)."""

    method: str
    params: dict[str, JSON]


class Telemetry(TypedDict, total=False):
    """One telemetry item: engine -> host (§12). Always has ``type``."""

    type: str


class Counters(TypedDict):
    """Per-update budgets carried across resumed calls (§13)."""

    transitions: int
    apiCalls: int
    actions: int


class ApiRequest(TypedDict):
    """The HTTP request an ``apiCall`` asks the host to make (§8.6)."""

    method: str
    url: str
    headers: dict[str, str]
    body: JSON
    timeoutMs: int
    retries: int
    backoffMs: int
    maxResponseBytes: int


class Pending(TypedDict):
    """An apiCall the host must perform: engine -> host (§8.6)."""

    flow: str
    step: str
    request: ApiRequest
    counters: Counters


class ApiResult(TypedDict, total=False):
    """The outcome of a pending request: host -> engine (§8.6)."""

    ok: bool
    status: int | None
    body: JSON
    error: str


class Resume(TypedDict):
    """A pending request and its result: host -> engine (§8.6)."""

    pending: Pending
    result: ApiResult


class StepInput(TypedDict):
    """The input of ``step``: host -> engine."""

    event: Event
    state: State | None
    context: Context
    resume: NotRequired[Resume]


class StepOutput(TypedDict):
    """The output of ``step``: engine -> host."""

    actions: list[Action]
    state: State
    events: list[Telemetry]
    pending: NotRequired[Pending]
