"""The Bot API stand-in over real HTTP: Telegram's checks and texts, flood limits, faults, webhooks, call records.

The stand-in and the webhook receivers are served by uvicorn on loopback ports;
the stand-in is reached through the real client (``BotApiClient``) and its one
response checker, or through raw httpx where the wire format itself is the point.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import httpx
import pytest
from starlette.types import Receive, Scope, Send

from botkiln.infra.telegram_api import (
    BotApiClient,
    BotApiError,
    BotApiForbidden,
    BotApiRetryAfter,
    BotApiUnreachable,
)
from botkiln.infra.telegram_standin import BotApiStandIn, DeliveryPolicy, RateLimits, StandInBot
from botkiln.infra.telegram_standin_updates import (
    chat,
    user_callback,
    user_command,
    user_edit,
    user_message,
    user_photo,
)
from tests.graphql.support import ServerThread

T = TypeVar("T")
CHAT = 1001
GROUP = -100200
KEYBOARD = {"inline_keyboard": [[{"text": "Yes", "callback_data": "yes"}, {"text": "Docs", "url": "https://x.org"}]]}


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


class Receiver:
    """A webhook endpoint: answers the scripted statuses in turn (then 200) and keeps what it received."""

    def __init__(self) -> None:
        self.script: list[int] = []
        self.received: list[tuple[dict[str, str], dict[str, Any]]] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            event = await receive()
            body += event.get("body", b"")
            if not event.get("more_body"):
                break
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        self.received.append((headers, json.loads(body)))
        status = self.script.pop(0) if self.script else 200
        await send({"type": "http.response.start", "status": status, "headers": [(b"content-length", b"0")]})
        await send({"type": "http.response.body", "body": b""})


def serve(app: Any) -> ServerThread:
    server = ServerThread()
    server.start(app)
    return server


@pytest.fixture(scope="module")
def standin() -> Iterator[BotApiStandIn]:
    made = BotApiStandIn(limits=RateLimits(enabled=False), delivery=DeliveryPolicy(attempts=4, first_delay_s=0.02))
    server = serve(made.app)
    made.url = server.url
    yield made
    server.stop()


@pytest.fixture(scope="module")
def receiver() -> Iterator[tuple[Receiver, str]]:
    made = Receiver()
    server = serve(made)
    yield made, server.url
    server.stop()


@pytest.fixture
def bot(standin: BotApiStandIn) -> StandInBot:
    """A bot whose private chat ``CHAT`` and group ``GROUP`` already wrote to it."""
    made = standin.register(username="kiln_bot")
    standin.open_chat(made, chat(CHAT))
    standin.open_chat(made, chat(GROUP))
    return made


def call(standin: BotApiStandIn, bot: StandInBot, work: Callable[[BotApiClient], Awaitable[T]]) -> T:
    async def run() -> T:
        async with httpx.AsyncClient() as http:
            return await work(BotApiClient(http, bot.token, base_url=standin.url))

    return asyncio.run(run())


def raw(standin: BotApiStandIn, bot: StandInBot, method: str, **params: Any) -> httpx.Response:
    return httpx.post(f"{standin.url}/bot{bot.token}/{method}", json=params)


# --- messages -------------------------------------------------------------------------------------------------------


def test_sent_messages_are_real_messages_with_ids_increasing_per_chat(standin: BotApiStandIn, bot: StandInBot) -> None:
    async def work(api: BotApiClient) -> list[dict[str, Any]]:
        return [await api.send_message(CHAT, "one", reply_markup=KEYBOARD), await api.send_message(CHAT, "two"),
                await api.send_message(GROUP, "hello group")]  # fmt: skip

    first, second, in_group = call(standin, bot, work)
    assert (first["message_id"], second["message_id"], in_group["message_id"]) == (1, 2, 1)
    assert first["from"] == {"id": bot.id, "is_bot": True, "first_name": "Test bot", "username": "kiln_bot"}
    assert first["chat"] == chat(CHAT) and in_group["chat"]["type"] == "group"
    assert first["text"] == "one" and first["reply_markup"] == KEYBOARD and "reply_markup" not in second
    assert abs(first["date"] - time.time()) < 5


def test_form_encoded_calls_carry_reply_markup_as_json_text(standin: BotApiStandIn, bot: StandInBot) -> None:
    data = {"chat_id": str(CHAT), "text": "form", "reply_markup": json.dumps(KEYBOARD)}
    answer = httpx.post(f"{standin.url}/bot{bot.token}/sendMessage", data=data).json()
    assert answer["ok"] is True and answer["result"]["reply_markup"] == KEYBOARD


def test_text_length_counts_code_points_after_html_parsing(standin: BotApiStandIn, bot: StandInBot) -> None:
    assert raw(standin, bot, "sendMessage", chat_id=CHAT, text="😀" * 4096).json()["ok"] is True
    assert raw(standin, bot, "sendMessage", chat_id=CHAT, text="😀" * 4097).json()["description"] == (
        "Bad Request: message is too long"
    )
    tagged = "<b>" + "x" * 4096 + "</b>"
    assert raw(standin, bot, "sendMessage", chat_id=CHAT, text=tagged, parse_mode="HTML").json()["ok"] is True


BIG = "x" * 4097
TOO_LONG_DATA = {"inline_keyboard": [[{"text": "a", "callback_data": "é" * 33}]]}


@pytest.mark.parametrize(
    ("method", "params", "description"),
    [
        ("sendMessage", {"text": "hi"}, "Bad Request: chat_id is empty"),
        ("sendMessage", {"chat_id": CHAT}, "Bad Request: message text is empty"),
        ("sendMessage", {"chat_id": CHAT, "text": "  \n "}, "Bad Request: message text is empty"),
        ("sendMessage", {"chat_id": CHAT, "text": BIG}, "Bad Request: message is too long"),
        ("sendMessage", {"chat_id": 555, "text": "hi"}, "Bad Request: chat not found"),
        ("sendMessage", {"chat_id": "@nobody", "text": "hi"}, "Bad Request: chat not found"),
        ("sendMessage", {"chat_id": CHAT, "text": "hi", "parse_mode": "XML"}, "Bad Request: unsupported parse_mode"),
        ("sendMessage", {"chat_id": CHAT, "text": "hi", "reply_markup": TOO_LONG_DATA},
         "Bad Request: BUTTON_DATA_INVALID"),
        ("sendMessage", {"chat_id": CHAT, "text": "hi",
                         "reply_markup": {"inline_keyboard": [[{"text": "a", "callback_data": ""}]]}},
         "Bad Request: BUTTON_DATA_INVALID"),
        ("sendMessage", {"chat_id": CHAT, "text": "hi", "reply_markup": "{nope"},
         "Bad Request: can't parse reply keyboard markup JSON object"),
        ("sendMessage", {"chat_id": CHAT, "text": "hi", "reply_markup": {"inline_keyboard": [{"text": "a"}]}},
         'Bad Request: field "inline_keyboard" of the InlineKeyboardMarkup should be an Array of Arrays'),
        ("sendMessage", {"chat_id": CHAT, "text": "hi", "reply_markup": {"inline_keyboard": [[{"text": "a"}]]}},
         "Bad Request: can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard"),
        ("sendPhoto", {"chat_id": CHAT}, "Bad Request: there is no photo in the request"),
        ("sendPhoto", {"chat_id": CHAT, "photo": "AgAC-unknown"},
         "Bad Request: wrong file identifier/HTTP URL specified"),
        ("sendPhoto", {"chat_id": CHAT, "photo": "https://img.example/a.png", "caption": "c" * 1025},
         "Bad Request: message caption is too long"),
        ("sendDocument", {"chat_id": CHAT}, "Bad Request: there is no document in the request"),
        ("answerCallbackQuery", {"callback_query_id": "12345"},
         "Bad Request: query is too old and response timeout expired or query ID is invalid"),
        ("answerCallbackQuery", {"callback_query_id": "12345", "text": "t" * 201}, "Bad Request: MESSAGE_TOO_LONG"),
        ("editMessageText", {"chat_id": CHAT, "text": "new"}, "Bad Request: message identifier is not specified"),
        ("editMessageText", {"chat_id": CHAT, "message_id": 999, "text": "new"},
         "Bad Request: message to edit not found"),
        ("editMessageReplyMarkup", {"chat_id": CHAT, "message_id": 999}, "Bad Request: message to edit not found"),
    ],
)  # fmt: skip
def test_parameters_are_checked_with_telegrams_descriptions(
    standin: BotApiStandIn, bot: StandInBot, method: str, params: dict[str, Any], description: str
) -> None:
    answer = raw(standin, bot, method, **params)
    assert answer.status_code == 400
    assert answer.json() == {"ok": False, "error_code": 400, "description": description}
    assert standin.calls(bot)[-1].description == description


def test_a_blocked_user_and_a_kicked_bot_are_forbidden(standin: BotApiStandIn, bot: StandInBot) -> None:
    standin.block(bot, CHAT)
    standin.block(bot, GROUP)
    with pytest.raises(BotApiForbidden) as private:
        call(standin, bot, lambda api: api.send_message(CHAT, "hi"))
    with pytest.raises(BotApiForbidden) as group:
        call(standin, bot, lambda api: api.send_photo(GROUP, "https://img.example/a.png"))
    assert private.value.description == "Forbidden: bot was blocked by the user" and private.value.error_code == 403
    assert group.value.description == "Forbidden: bot was kicked from the group chat"


def test_edits_change_the_bots_message_and_refuse_no_op_edits(standin: BotApiStandIn, bot: StandInBot) -> None:
    async def work(api: BotApiClient) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        sent = await api.send_message(CHAT, "Pick one", reply_markup=KEYBOARD)
        edited = await api.edit_message_text(CHAT, sent["message_id"], "Picked", reply_markup=KEYBOARD)
        bare = await api.edit_message_reply_markup(CHAT, sent["message_id"])
        return sent, edited, bare

    sent, edited, bare = call(standin, bot, work)
    assert edited["message_id"] == sent["message_id"] and edited["text"] == "Picked" and "edit_date" in edited
    assert edited["reply_markup"] == KEYBOARD and "reply_markup" not in bare
    same = raw(standin, bot, "editMessageText", chat_id=CHAT, message_id=sent["message_id"], text="Picked")
    assert same.json()["description"].startswith("Bad Request: message is not modified: specified new message")
    standin.send_update(bot, user_message(CHAT, "mine"))
    users = raw(standin, bot, "editMessageText", chat_id=CHAT, message_id=sent["message_id"] + 1, text="x")
    assert users.json()["description"] == "Bad Request: message can't be edited"


def test_a_photo_the_user_sent_can_be_sent_back_by_its_file_id(
    standin: BotApiStandIn, bot: StandInBot, receiver: tuple[Receiver, str]
) -> None:
    got, url = receiver
    bot.webhook.url = url
    standin.send_update(bot, user_photo("my cat"))
    message = got.received[-1][1]["message"]
    assert message["caption"] == "my cat" and len(message["photo"]) == 2
    file_id = message["photo"][-1]["file_id"]
    echoed = call(standin, bot, lambda api: api.send_photo(CHAT, file_id, caption="yours"))
    assert echoed["photo"][-1]["file_id"] == file_id and echoed["caption"] == "yours"
    document = call(standin, bot, lambda api: api.send_document(CHAT, "https://files.example/a.pdf"))
    assert document["document"]["file_id"] and "caption" not in document


# --- flood limits ---------------------------------------------------------------------------------------------------


@pytest.fixture
def limited() -> Iterator[tuple[BotApiStandIn, FakeClock]]:
    clock = FakeClock()
    made = BotApiStandIn(limits=RateLimits(per_bot_per_s=30, per_bot_burst=30, per_chat_burst=3), clock=clock)
    server = serve(made.app)
    made.url = server.url
    yield made, clock
    server.stop()


def test_a_chat_gets_a_burst_of_three_then_429_with_retry_after(limited: tuple[BotApiStandIn, FakeClock]) -> None:
    standin, clock = limited
    bot = standin.register()
    standin.open_chat(bot, chat(CHAT))
    for _ in range(3):
        assert raw(standin, bot, "sendMessage", chat_id=CHAT, text="hi").json()["ok"] is True
    refused = raw(standin, bot, "sendMessage", chat_id=CHAT, text="hi")
    assert refused.status_code == 429 and refused.json() == {
        "ok": False, "error_code": 429, "description": "Too Many Requests: retry after 1",
        "parameters": {"retry_after": 1},
    }  # fmt: skip
    with pytest.raises(BotApiRetryAfter) as caught:
        call(standin, bot, lambda api: api.send_message(CHAT, "hi"))
    assert caught.value.retry_after == 1
    clock.now += 1.0
    assert raw(standin, bot, "sendMessage", chat_id=CHAT, text="hi").json()["ok"] is True
    assert [r.error_code for r in standin.calls(bot, "sendMessage")] == [None, None, None, 429, 429, None]


def test_a_bot_sends_at_most_thirty_messages_a_second_overall(limited: tuple[BotApiStandIn, FakeClock]) -> None:
    standin, clock = limited
    bot = standin.register()
    for chat_id in range(1, 32):
        standin.open_chat(bot, chat(chat_id))
    answers = [raw(standin, bot, "sendMessage", chat_id=chat_id, text="hi").status_code for chat_id in range(1, 32)]
    assert answers == [200] * 30 + [429]
    clock.now += 0.04  # 30/s refills one message in 1/30 s
    assert raw(standin, bot, "sendMessage", chat_id=31, text="hi").status_code == 200


def test_a_group_gets_twenty_messages_a_minute() -> None:
    clock = FakeClock()
    standin = BotApiStandIn(limits=RateLimits(per_chat_burst=100, per_chat_per_s=100), clock=clock)
    server = serve(standin.app)
    standin.url = server.url
    try:
        bot = standin.register()
        standin.open_chat(bot, chat(GROUP))
        answers = [raw(standin, bot, "sendMessage", chat_id=GROUP, text="x") for _ in range(21)]
        clock.now += 3.0
        later = raw(standin, bot, "sendMessage", chat_id=GROUP, text="x")
    finally:
        server.stop()
    assert [a.status_code for a in answers] == [200] * 20 + [429]
    assert answers[-1].json()["parameters"] == {"retry_after": 3} and later.status_code == 200


# --- faults ---------------------------------------------------------------------------------------------------------


def test_injected_5xx_storms_drops_and_delays_reach_the_client_as_botkiln_errors(
    standin: BotApiStandIn, bot: StandInBot
) -> None:
    bot.faults.fail(2)
    for _ in range(2):
        with pytest.raises(BotApiError) as failed:
            call(standin, bot, lambda api: api.send_message(CHAT, "hi"))
        assert (failed.value.error_code, failed.value.description) == (502, "Bad Gateway")
    bot.faults.storm(1, retry_after=7)
    with pytest.raises(BotApiRetryAfter) as stormed:
        call(standin, bot, lambda api: api.send_message(CHAT, "hi"))
    assert stormed.value.retry_after == 7 and stormed.value.description == "Too Many Requests: retry after 7"
    bot.faults.drop(1)
    with pytest.raises(BotApiUnreachable):
        call(standin, bot, lambda api: api.send_message(CHAT, "hi"))
    bot.faults.slow(300)
    started = time.monotonic()
    assert call(standin, bot, lambda api: api.send_message(CHAT, "late"))["text"] == "late"
    assert time.monotonic() - started >= 0.3
    bot.faults.clear()
    outcomes = [(r.error_code, r.description) for r in standin.calls(bot, "sendMessage")]
    assert outcomes == [(502, "Bad Gateway"), (502, "Bad Gateway"), (429, "Too Many Requests: retry after 7"),
                        (None, "connection dropped"), (None, None)]  # fmt: skip


def test_faults_can_target_one_method(standin: BotApiStandIn, bot: StandInBot) -> None:
    bot.faults.methods = frozenset({"sendPhoto"})
    bot.faults.fail(1)
    assert call(standin, bot, lambda api: api.send_message(CHAT, "fine"))["text"] == "fine"
    with pytest.raises(BotApiError):
        call(standin, bot, lambda api: api.send_photo(CHAT, "https://img.example/a.png"))


# --- webhooks and the user side -------------------------------------------------------------------------------------


def test_updates_reach_the_webhook_with_the_secret_and_are_retried_on_500(
    standin: BotApiStandIn, bot: StandInBot, receiver: tuple[Receiver, str]
) -> None:
    got, url = receiver
    call(standin, bot, lambda api: api.set_webhook(url + "/wh/1", secret_token="s3cret"))
    got.received.clear()
    got.script[:] = [500, 502]
    delivery = standin.send_update(bot, user_command("/start@kiln_bot", chat_id=GROUP, from_id=77))
    assert delivery.delivered and delivery.attempts == [500, 502, 200]
    assert [h["x-telegram-bot-api-secret-token"] for h, _ in got.received] == ["s3cret"] * 3
    bodies = [body for _, body in got.received]
    assert bodies[0] == bodies[1] == bodies[2] == delivery.update
    message = bodies[0]["message"]
    assert message["entities"] == [{"type": "bot_command", "offset": 0, "length": 15}]
    assert message["chat"]["type"] == "group" and message["from"]["id"] == 77 and message["message_id"] >= 1
    info = call(standin, bot, lambda api: api.get_webhook_info())
    assert (
        info.pending_update_count == 0 and info.last_error_message == "Wrong response from the webhook: 502 Bad Gateway"
    )
    second = standin.send_update(bot, user_message(CHAT, "next"))
    assert second.update["update_id"] == delivery.update["update_id"] + 1


def test_an_update_never_accepted_stays_pending(
    standin: BotApiStandIn, bot: StandInBot, receiver: tuple[Receiver, str]
) -> None:
    got, url = receiver
    call(standin, bot, lambda api: api.set_webhook(url, secret_token="s3cret"))
    got.script[:] = [500] * 4
    delivery = standin.send_update(bot, user_message(CHAT, "lost?"))
    assert not delivery.delivered and delivery.attempts == [500] * 4
    assert call(standin, bot, lambda api: api.get_webhook_info()).pending_update_count == 1


def test_a_button_press_arrives_with_the_bots_message_and_is_answered_once(
    standin: BotApiStandIn, bot: StandInBot, receiver: tuple[Receiver, str]
) -> None:
    got, url = receiver
    bot.webhook.url, bot.webhook.secret_token = url, None
    sent = call(standin, bot, lambda api: api.send_message(CHAT, "Pick", reply_markup=KEYBOARD))
    standin.send_update(bot, user_callback("yes", sent["message_id"]))
    headers, update = got.received[-1]
    assert "x-telegram-bot-api-secret-token" not in headers
    query = update["callback_query"]
    assert (
        query["data"] == "yes" and query["message"]["text"] == "Pick" and query["message"]["reply_markup"] == KEYBOARD
    )
    call(standin, bot, lambda api: api.answer_callback_query(query["id"], text="Saved"))
    assert bot.callbacks[query["id"]] == {"text": "Saved", "show_alert": False, "url": None, "cache_time": None}
    with pytest.raises(BotApiError, match="query is too old"):
        call(standin, bot, lambda api: api.answer_callback_query(query["id"]))


def test_a_user_edit_arrives_as_an_edited_message(
    standin: BotApiStandIn, bot: StandInBot, receiver: tuple[Receiver, str]
) -> None:
    got, url = receiver
    bot.webhook.url = url
    first = standin.send_update(bot, user_message(CHAT, "helo")).update["message"]
    edited = standin.send_update(bot, user_edit(first["message_id"], "hello")).update["edited_message"]
    assert got.received[-1][1]["edited_message"] == edited
    assert (edited["message_id"], edited["text"], edited["date"]) == (first["message_id"], "hello", first["date"])
    assert edited["edit_date"] >= first["date"]


def test_allowed_updates_filter_what_the_webhook_receives(
    standin: BotApiStandIn, bot: StandInBot, receiver: tuple[Receiver, str]
) -> None:
    got, url = receiver
    call(standin, bot, lambda api: api.set_webhook(url, secret_token="s", allowed_updates=["callback_query"]))
    before = len(got.received)
    skipped = standin.send_update(bot, user_message(CHAT, "ignored"))
    assert skipped.attempts == [] and not skipped.delivered and skipped.update["message"]["text"] == "ignored"
    assert len(got.received) == before and "update_id" in skipped.update


def test_async_callers_deliver_updates_too(
    standin: BotApiStandIn, bot: StandInBot, receiver: tuple[Receiver, str]
) -> None:
    got, url = receiver
    bot.webhook.url = url
    delivery = asyncio.run(standin.asend_update(bot, user_message(CHAT, "async")))
    assert delivery.delivered and got.received[-1][1] == delivery.update


# --- records --------------------------------------------------------------------------------------------------------


def test_every_call_is_recorded_with_its_params_and_outcome(standin: BotApiStandIn, bot: StandInBot) -> None:
    sent = call(standin, bot, lambda api: api.send_message(CHAT, "logged"))
    raw(standin, bot, "sendMessage", chat_id=CHAT)
    ok, refused = standin.calls(bot.token)[-2:]
    assert (ok.method, ok.params, ok.result, ok.ok) == ("sendMessage", {"chat_id": CHAT, "text": "logged"}, sent, True)
    assert (refused.error_code, refused.description, refused.ok) == (400, "Bad Request: message text is empty", False)
    assert ok.at <= refused.at and bot.calls[-1] == ("sendMessage", {"chat_id": CHAT})
