"""A hand-written aiogram 3 webhook bot: the Bean There FAQ of ``examples/faq.json``, the baseline of bench_runtime.

Run (``bench/bench_runtime.py`` starts it as a subprocess; needs the ``bench`` extra, i.e. aiogram):

    .venv/bin/python bench/aiogram_bot.py --token TOKEN --api-url http://127.0.0.1:PORT \\
        --webhook-url http://127.0.0.1:8081/webhook --secret SECRET --port 8081

Served the way aiogram documents it: an aiohttp ``web.Application`` with ``SimpleRequestHandler``
(secret token checked, updates handled in the background after a 200) and ``setup_application``;
``setWebhook`` (with the secret) on startup; the Bot API reached through ``AiohttpSession`` on
``TelegramAPIServer.from_base(--api-url)``. Logging at INFO to stdout as in aiogram's examples.

Replies are the English ones of the spec, byte for byte: ``/start`` (greeting with the sender's first
name and the reply keyboard), ``/help``, ``/hours``, keyword intents matched on whole words
(priority order, the ``hours`` cooldown kept in memory), the fallback. No persistent state and no
flood control: a 429 from Telegram fails the handler and the reply is lost (aiogram logs it).
"""

from __future__ import annotations

import argparse
import logging
import sys
import time

from aiogram import Bot, Dispatcher, F, Router
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.filters import Command, CommandStart
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup, KeyboardButton, Message, ReplyKeyboardMarkup
from aiogram.webhook.aiohttp_server import SimpleRequestHandler, setup_application
from aiohttp import web

WELCOME = "Hi {name}! I'm the Bean There helper. Ask me about opening hours, wifi, prices or where we are."
HELP = 'Ask in your own words, e.g. "when are you open?" or "wifi password". Commands: /hours, /help.'
HOURS = "We're open Mon–Fri 7:30–19:00, Sat–Sun 9:00–17:00."
WIFI = "Network: BeanThere-Guest, password: espresso2026"
PRICES_CAPTION = "Our menu"
PRICES_MENU = "https://cdn.beanthere.example/menu.jpg"
PRICES_MORE = "Espresso 2.20 €, cappuccino 3.10 €, filter 2.80 €."
ADDRESS = "Bean There, Kastanienallee 12, Berlin."
UNKNOWN = "Sorry, I didn't get that. Try /help."

KEYBOARD = ReplyKeyboardMarkup(
    keyboard=[
        [KeyboardButton(text="Opening hours"), KeyboardButton(text="Wifi")],
        [KeyboardButton(text="Prices"), KeyboardButton(text="Where are you?")],
    ],
    resize_keyboard=True,
    one_time_keyboard=False,
)
MAP = InlineKeyboardMarkup(
    inline_keyboard=[[InlineKeyboardButton(text="Open the map", url="https://maps.example.com/?q=Bean+There")]]
)

SEPARATORS = frozenset("\t\n\r \x0b\x0c\xa0!\"#$%&'()*+,-./:;<=>?@[\\]^`{|}~«»—–…“”„‘’¿¡·")
# (intent, cooldown seconds, keywords as word tuples), highest priority first
INTENTS: list[tuple[str, float, list[tuple[str, ...]]]] = [
    ("hours", 30.0, [("open",), ("opening", "hours"), ("when",), ("close",)]),
    ("wifi", 0.0, [("wifi",), ("wi", "fi"), ("internet",), ("password",)]),
    ("prices", 0.0, [("price",), ("prices",), ("cost",), ("how", "much")]),
    ("address", 0.0, [("where",), ("address",), ("location",)]),
]

router = Router()
cooldowns: dict[tuple[int, str], float] = {}


def words(text: str) -> tuple[str, ...]:
    """Lower-cased runs of non-separators, as the spec's keyword matching splits text."""
    out: list[str] = []
    current: list[str] = []
    for char in text.lower():
        if char in SEPARATORS:
            if current:
                out.append("".join(current))
                current = []
        else:
            current.append(char)
    if current:
        out.append("".join(current))
    return tuple(out)


def contains(said: tuple[str, ...], keyword: tuple[str, ...]) -> bool:
    n = len(keyword)
    return any(said[i : i + n] == keyword for i in range(len(said) - n + 1))


def intent_of(chat_id: int, text: str) -> str | None:
    said = words(text)
    now = time.monotonic()
    for name, cooldown_s, keywords in INTENTS:
        if not any(contains(said, keyword) for keyword in keywords):
            continue
        last = cooldowns.get((chat_id, name))
        if cooldown_s and last is not None and now - last < cooldown_s:
            continue
        if cooldown_s:
            cooldowns[(chat_id, name)] = now
        return name
    return None


@router.message(CommandStart())
async def start(message: Message) -> None:
    name = message.from_user.first_name if message.from_user else ""
    await message.answer(WELCOME.format(name=name), reply_markup=KEYBOARD)


@router.message(Command("help"))
async def help_(message: Message) -> None:
    await message.answer(HELP)


@router.message(Command("hours"))
async def hours(message: Message) -> None:
    await message.answer(HOURS)


@router.message(F.text)
async def text(message: Message) -> None:
    intent = intent_of(message.chat.id, message.text or "")
    if intent == "hours":
        await message.answer(HOURS)
    elif intent == "wifi":
        await message.answer(WIFI)
    elif intent == "prices":
        await message.answer_photo(PRICES_MENU, caption=PRICES_CAPTION)
        await message.answer(PRICES_MORE)
    elif intent == "address":
        await message.answer(ADDRESS, reply_markup=MAP)
    else:
        await message.answer(UNKNOWN)


@router.message()
async def other(message: Message) -> None:
    await message.answer(UNKNOWN)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--token", required=True)
    parser.add_argument("--api-url", required=True, help="Bot API base URL (the stand-in's)")
    parser.add_argument("--webhook-url", required=True, help="the URL registered with setWebhook")
    parser.add_argument("--secret", required=True, help="the webhook secret_token")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--path", default="/webhook")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, stream=sys.stdout)

    async def on_startup(bot: Bot) -> None:
        await bot.set_webhook(args.webhook_url, secret_token=args.secret)

    dispatcher = Dispatcher()
    dispatcher.include_router(router)
    dispatcher.startup.register(on_startup)
    session = AiohttpSession(api=TelegramAPIServer.from_base(args.api_url))
    bot = Bot(token=args.token, session=session)
    app = web.Application()
    SimpleRequestHandler(dispatcher=dispatcher, bot=bot, secret_token=args.secret).register(app, path=args.path)
    setup_application(app, dispatcher, bot=bot)
    web.run_app(app, host=args.host, port=args.port, print=None)


if __name__ == "__main__":
    main()
