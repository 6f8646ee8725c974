"""Settings: one frozen dataclass read from the environment (``BOTKILN_*``).

Every variable, its default and meaning:

| variable | default | meaning |
|---|---|---|
| ``BOTKILN_LLM_BASE_URL`` | ``https://api.openai.com/v1`` | OpenAI-compatible endpoint of the LLM generator |
| ``BOTKILN_LLM_API_KEY`` | (none) | its API key; required only when the LLM generator runs |
| ``BOTKILN_LLM_MODEL`` | ``gpt-5`` | model name |
| ``BOTKILN_LLM_TIMEOUT_S`` | ``120`` | per-request timeout, seconds |
| ``BOTKILN_LLM_MAX_ATTEMPTS`` | ``3`` | generate -> gates -> feedback rounds before a build fails |
| ``BOTKILN_LLM_SEED`` | ``0`` | seed sent to the model and recorded in the build metadata |
| ``BOTKILN_DATABASE_URL`` | (none) | PostgreSQL DSN ``postgresql://user@host:port/db``; unset = embedded |
| ``BOTKILN_ARTIFACTS`` | ``file://./var/artifacts`` | revision store: ``file://DIR`` or ``s3://BUCKET/PREFIX`` |
| ``BOTKILN_S3_ENDPOINT_URL`` | (none) | S3-compatible endpoint ``http(s)://host:port``; unset = AWS |
| ``BOTKILN_SECRET_KEY`` | (none) | base64 of 32 random bytes: encrypts bot tokens and webhook secrets |
| ``BOTKILN_CONSOLE_ORIGIN`` | ``http://127.0.0.1:8000`` | the only origin CORS and WebSocket checks admit |
| ``BOTKILN_PUBLIC_URL`` | ``http://127.0.0.1:8000`` | where Telegram reaches us: webhooks ``{url}/wh/{botId}`` |
| ``BOTKILN_COOKIE_SECURE`` | ``false`` | mark session cookies ``Secure`` (set it when served over HTTPS) |
| ``BOTKILN_TELEGRAM_API_URL`` | ``https://api.telegram.org`` | Bot API base URL (tests: the local stand-in) |
| ``BOTKILN_REDIS_URL`` | ``redis://127.0.0.1:6379/0`` | Redis: Dramatiq's broker, progress and flip pub/sub |
| ``BOTKILN_ANALYTICS_URL`` | ``chdb://./var/analytics`` | analytics: ``chdb://DIR`` or ``http(s)://host:8123[/db]`` |
| ``BOTKILN_OUTBOUND_RATES`` | Telegram's | outbound buckets, e.g. ``bot_per_s=30,chat_per_s=1`` (a) |
| ``BOTKILN_EXECUTOR_LEASE_MS`` | ``15000`` | an executor's chat lease: a dead one's update is re-delivered after it |
| ``BOTKILN_APICALL_PRIVATE_OK`` | ``false`` | let apiCalls reach loopback and private addresses (embedded, tests) |
| ``BOTKILN_INGRESS_RATE`` | ``1000`` | webhook requests per bot per second before 429 (docs/ingress.md) |
| ``BOTKILN_INGRESS_MAX_BODY`` | ``1048576`` | largest webhook body in bytes (413 above) |
| ``BOTKILN_INGRESS_MAX_DEPTH`` | ``100000`` | updates queued per bot before the ingress answers 429 |
| ``BOTKILN_METRICS_TOKEN`` | (none) | bearer token ``/metrics`` requires; unset = open (restrict it by network) (b) |
| ``BOTKILN_METRICS_PORT`` | ``9100`` | ``botkiln worker``'s Prometheus port; ``0`` = none (b) |
| ``BOTKILN_METRICS_HOST`` | ``0.0.0.0`` | the address that port listens on |
| ``BOTKILN_LOG_FORMAT`` | ``text`` | ``text`` (one readable line) or ``json`` (one object per line) (b) |
| ``BOTKILN_LOG_LEVEL`` | ``INFO`` | ``DEBUG``, ``INFO``, ``WARNING``, ``ERROR`` |
| ``BOTKILN_OTLP_ENDPOINT`` | (none) | OTLP/HTTP traces endpoint (``http://collector:4318``); unset = no tracing (b) |

(a) fields of ``infra.outbound.OutboundRates``; only for a local Bot API server or a
stand-in with other limits than Telegram's.
(b) docs/observability.md.

``BOTKILN_SECRET_KEY`` may list several keys, comma-separated, to rotate: the first
encrypts, all decrypt. It is required once bots are stored. The analytics chat-hash
key is derived from the first key (rotating it starts new chat hashes).

A ``chdb://`` analytics directory is opened by one process only (chdb is one engine
per process and directory): the others point ``BOTKILN_ANALYTICS_URL`` at that
process's ClickHouse HTTP front (``python -m botkiln.infra.chdb_http``).

A malformed value fails at start-up with a sentence naming the variable.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from botkiln.infra.crypto import SecretBox, parse_secret_keys
from botkiln.interpreter.errors import BotkilnError

_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_ENDPOINT = re.compile(r"^https?://[^/\s]+(/\S*)?$")
_ORIGIN = re.compile(r"^https?://[^/\s]+$")
_ANALYTICS = re.compile(r"^(chdb://\S+|https?://[^/\s]+(/[A-Za-z0-9_]*)?)$")
_HOST = re.compile(r"^[A-Za-z0-9.:\[\]-]+$")
_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


class SettingsError(BotkilnError):
    """A configuration variable is missing or malformed."""


def _int(env: Mapping[str, str], name: str, default: int, *, minimum: int = 0) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not an integer") from None
    if value < minimum:
        raise SettingsError(f"{name}={value} must be at least {minimum}")
    return value


@dataclass(frozen=True)
class ArtifactsUrl:
    """A parsed ``BOTKILN_ARTIFACTS``: a local directory or an S3 bucket and key prefix."""

    scheme: Literal["file", "s3"]
    path: str
    """The directory (``file``) or the key prefix without slashes at either end (``s3``)."""
    bucket: str = ""


def parse_artifacts_url(value: str) -> ArtifactsUrl:
    """``file://PATH`` or ``s3://BUCKET[/PREFIX]`` as an ``ArtifactsUrl``.

    Raises:
        ValueError: a sentence saying what is wrong.
    """
    if value.startswith("file://"):
        path = value.removeprefix("file://")
        if not path:
            raise ValueError("a file:// URL needs a path, e.g. file://./var/artifacts or file:///srv/artifacts")
        return ArtifactsUrl("file", path)
    if value.startswith("s3://"):
        bucket, _, prefix = value.removeprefix("s3://").partition("/")
        if not _BUCKET.match(bucket):
            raise ValueError(f"{bucket!r} is not an S3 bucket name")
        return ArtifactsUrl("s3", prefix.strip("/"), bucket)
    raise ValueError("must start with file:// or s3://")


def _check(env: Mapping[str, str], name: str, check: re.Pattern[str] | None = None) -> str | None:
    raw = env.get(name) or None
    if raw is not None and check is not None and not check.match(raw):
        raise SettingsError(f"{name} is malformed: expected {check.pattern!r}")
    return raw


def _database_url(env: Mapping[str, str]) -> str | None:
    raw = env.get("BOTKILN_DATABASE_URL") or None
    if raw is not None and not raw.startswith(("postgresql://", "postgres://")):
        raise SettingsError("BOTKILN_DATABASE_URL must be a postgresql:// DSN")
    return raw


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = (env.get(name) or "").strip().lower()
    if raw == "":
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise SettingsError(f"{name}={raw!r} is not a boolean (true/false)")


_RATE_FIELDS = ("bot_per_s", "bot_burst", "chat_per_s", "chat_burst", "group_per_min", "group_burst")


def _rates(env: Mapping[str, str]) -> tuple[tuple[str, float], ...]:
    raw = env.get("BOTKILN_OUTBOUND_RATES") or ""
    pairs = []
    for item in filter(None, (part.strip() for part in raw.split(","))):
        name, _, value = item.partition("=")
        name = name.strip()
        try:
            number = float(value)
        except ValueError:
            number = -1.0
        if name not in _RATE_FIELDS or number <= 0:
            raise SettingsError(
                f"BOTKILN_OUTBOUND_RATES: {item!r} is not NAME=NUMBER > 0, NAME one of {', '.join(_RATE_FIELDS)}"
            )
        pairs.append((name, number))
    return tuple(pairs)


def _choice(env: Mapping[str, str], name: str, choices: tuple[str, ...], default: str) -> str:
    raw = (env.get(name) or "").strip()
    if raw == "":
        return default
    value = raw.upper() if choices[0].isupper() else raw.lower()
    if value not in choices:
        raise SettingsError(f"{name}={raw!r} is not one of {', '.join(choices)}")
    return value


def _metrics_port(env: Mapping[str, str]) -> int:
    port = _int(env, "BOTKILN_METRICS_PORT", 9100)
    if port > 65535:
        raise SettingsError(f"BOTKILN_METRICS_PORT={port} is not a port number (0 turns the endpoint off)")
    return port


def _redis_url(env: Mapping[str, str]) -> str:
    raw = env.get("BOTKILN_REDIS_URL") or "redis://127.0.0.1:6379/0"
    if not raw.startswith(("redis://", "rediss://", "unix://")):
        raise SettingsError("BOTKILN_REDIS_URL must be a redis://, rediss:// or unix:// URL")
    return raw


@dataclass(frozen=True)
class Settings:
    """Botkiln's configuration (see the module docstring for the table)."""

    llm_base_url: str = "https://api.openai.com/v1"
    llm_api_key: str | None = None
    llm_model: str = "gpt-5"
    llm_timeout_s: int = 120
    llm_max_attempts: int = 3
    llm_seed: int = 0
    database_url: str | None = None
    artifacts_url: str = "file://./var/artifacts"
    s3_endpoint_url: str | None = None
    secret_key: str | None = None
    redis_url: str = "redis://127.0.0.1:6379/0"
    console_origin: str = "http://127.0.0.1:8000"
    public_url: str = "http://127.0.0.1:8000"
    cookie_secure: bool = False
    telegram_api_url: str = "https://api.telegram.org"
    analytics_url: str = "chdb://./var/analytics"
    outbound_rates: tuple[tuple[str, float], ...] = ()
    executor_lease_ms: int = 15_000
    apicall_private_ok: bool = False
    ingress_rate: int = 1000
    ingress_max_body: int = 1 << 20
    ingress_max_depth: int = 100_000
    metrics_token: str | None = None
    metrics_port: int = 9100
    metrics_host: str = "0.0.0.0"  # noqa: S104 -- Prometheus scrapes from another host; docs/observability.md
    log_format: Literal["text", "json"] = "text"
    log_level: str = "INFO"
    otlp_endpoint: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read ``BOTKILN_*`` variables (``env`` defaults to ``os.environ``).

        Raises:
            SettingsError: a value is malformed.
        """
        env = os.environ if env is None else env
        artifacts_url = env.get("BOTKILN_ARTIFACTS") or cls.artifacts_url
        try:
            parse_artifacts_url(artifacts_url)
        except ValueError as exc:
            raise SettingsError(f"BOTKILN_ARTIFACTS={artifacts_url!r} {exc}") from None
        secret_key = env.get("BOTKILN_SECRET_KEY") or None
        if secret_key is not None:
            try:
                parse_secret_keys(secret_key)
            except ValueError as exc:
                raise SettingsError(f"BOTKILN_SECRET_KEY {exc}") from None
        return cls(
            llm_base_url=env.get("BOTKILN_LLM_BASE_URL") or cls.llm_base_url,
            llm_api_key=env.get("BOTKILN_LLM_API_KEY") or None,
            llm_model=env.get("BOTKILN_LLM_MODEL") or cls.llm_model,
            llm_timeout_s=_int(env, "BOTKILN_LLM_TIMEOUT_S", cls.llm_timeout_s, minimum=1),
            llm_max_attempts=_int(env, "BOTKILN_LLM_MAX_ATTEMPTS", cls.llm_max_attempts, minimum=1),
            llm_seed=_int(env, "BOTKILN_LLM_SEED", cls.llm_seed),
            database_url=_database_url(env),
            artifacts_url=artifacts_url,
            s3_endpoint_url=_check(env, "BOTKILN_S3_ENDPOINT_URL", _ENDPOINT),
            secret_key=secret_key,
            redis_url=_redis_url(env),
            console_origin=_check(env, "BOTKILN_CONSOLE_ORIGIN", _ORIGIN) or cls.console_origin,
            public_url=(_check(env, "BOTKILN_PUBLIC_URL", _ENDPOINT) or cls.public_url).rstrip("/"),
            cookie_secure=_bool(env, "BOTKILN_COOKIE_SECURE", cls.cookie_secure),
            telegram_api_url=_check(env, "BOTKILN_TELEGRAM_API_URL", _ENDPOINT) or cls.telegram_api_url,
            analytics_url=_check(env, "BOTKILN_ANALYTICS_URL", _ANALYTICS) or cls.analytics_url,
            outbound_rates=_rates(env),
            executor_lease_ms=_int(env, "BOTKILN_EXECUTOR_LEASE_MS", cls.executor_lease_ms, minimum=100),
            apicall_private_ok=_bool(env, "BOTKILN_APICALL_PRIVATE_OK", cls.apicall_private_ok),
            ingress_rate=_int(env, "BOTKILN_INGRESS_RATE", cls.ingress_rate, minimum=1),
            ingress_max_body=_int(env, "BOTKILN_INGRESS_MAX_BODY", cls.ingress_max_body, minimum=1024),
            ingress_max_depth=_int(env, "BOTKILN_INGRESS_MAX_DEPTH", cls.ingress_max_depth, minimum=1),
            metrics_token=env.get("BOTKILN_METRICS_TOKEN") or None,
            metrics_port=_metrics_port(env),
            metrics_host=_check(env, "BOTKILN_METRICS_HOST", _HOST) or cls.metrics_host,
            log_format="json" if _choice(env, "BOTKILN_LOG_FORMAT", ("text", "json"), "text") == "json" else "text",
            log_level=_choice(env, "BOTKILN_LOG_LEVEL", _LOG_LEVELS, cls.log_level),
            otlp_endpoint=_check(env, "BOTKILN_OTLP_ENDPOINT", _ENDPOINT),
        )

    @property
    def artifacts(self) -> ArtifactsUrl:
        """``artifacts_url`` parsed (validated by ``from_env``)."""
        return parse_artifacts_url(self.artifacts_url)

    def secret_box(self) -> SecretBox:
        """The token cipher from ``secret_key``.

        Raises:
            SettingsError: BOTKILN_SECRET_KEY is unset or malformed.
        """
        if self.secret_key is None:
            raise SettingsError(
                "BOTKILN_SECRET_KEY is missing and has no default; make one with "
                "`python -c 'import base64, os; print(base64.b64encode(os.urandom(32)).decode())'`"
            )
        try:
            return SecretBox.from_setting(self.secret_key)
        except ValueError as exc:
            raise SettingsError(f"BOTKILN_SECRET_KEY {exc}") from None

    def analytics_chat_key(self) -> bytes:
        """The key of the analytics chat hash (a raw chat id is never stored), derived from ``secret_key``.

        Raises:
            SettingsError: BOTKILN_SECRET_KEY is unset or malformed.
        """
        self.secret_box()
        assert self.secret_key is not None
        first = parse_secret_keys(self.secret_key)[0]
        return hmac.new(first, b"botkiln analytics chat hash v1", hashlib.sha256).digest()

    def __repr__(self) -> str:
        key = "set" if self.llm_api_key else "unset"
        secret = "set" if self.secret_key else "unset"
        return (
            f"Settings(llm_base_url={self.llm_base_url!r}, llm_model={self.llm_model!r}, llm_api_key=<{key}>, "
            f"database_url=<{'set' if self.database_url else 'unset'}>, artifacts_url={self.artifacts_url!r}, "
            f"s3_endpoint_url={self.s3_endpoint_url!r}, secret_key=<{secret}>, "
            f"metrics_token=<{'set' if self.metrics_token else 'unset'}>)"
        )
