"""Storage settings: defaults, parsing, and failures that name the variable."""

from __future__ import annotations

import pytest

from botkiln.infra.settings import ArtifactsUrl, Settings, SettingsError, parse_artifacts_url


def test_defaults_need_no_environment() -> None:
    settings = Settings.from_env({})
    assert settings.database_url is None
    assert settings.artifacts == ArtifactsUrl("file", "./var/artifacts")
    assert settings.s3_endpoint_url is None and settings.secret_key is None


def test_storage_variables_are_read() -> None:
    settings = Settings.from_env(
        {
            "BOTKILN_DATABASE_URL": "postgresql://botkiln:pw@db:5432/botkiln",
            "BOTKILN_ARTIFACTS": "s3://revisions/prod/",
            "BOTKILN_S3_ENDPOINT_URL": "http://127.0.0.1:9000",
        }
    )
    assert settings.database_url == "postgresql://botkiln:pw@db:5432/botkiln"
    assert settings.artifacts == ArtifactsUrl("s3", "prod", "revisions")
    assert settings.s3_endpoint_url == "http://127.0.0.1:9000"
    assert "pw" not in repr(settings)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("file:///srv/artifacts", ArtifactsUrl("file", "/srv/artifacts")),
        ("file://./var/a", ArtifactsUrl("file", "./var/a")),
        ("s3://bucket", ArtifactsUrl("s3", "", "bucket")),
        ("s3://my.bucket/a/b", ArtifactsUrl("s3", "a/b", "my.bucket")),
    ],
)
def test_artifacts_urls_parse(value: str, expected: ArtifactsUrl) -> None:
    assert parse_artifacts_url(value) == expected


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"BOTKILN_ARTIFACTS": "ftp://x"}, "^BOTKILN_ARTIFACTS='ftp://x' must start with file:// or s3://$"),
        ({"BOTKILN_ARTIFACTS": "file://"}, "^BOTKILN_ARTIFACTS='file://' a file:// URL needs a path"),
        ({"BOTKILN_ARTIFACTS": "s3://Bad_Bucket/x"}, "^BOTKILN_ARTIFACTS='s3://Bad_Bucket/x' 'Bad_Bucket' is not"),
        ({"BOTKILN_DATABASE_URL": "mysql://x"}, "^BOTKILN_DATABASE_URL must be a postgresql:// DSN$"),
        ({"BOTKILN_S3_ENDPOINT_URL": "localhost:9000"}, "^BOTKILN_S3_ENDPOINT_URL is malformed"),
        ({"BOTKILN_SECRET_KEY": "!!"}, "^BOTKILN_SECRET_KEY key 1 is not valid base64$"),
        ({"BOTKILN_OUTBOUND_RATES": "bot_per_s=fast"}, "^BOTKILN_OUTBOUND_RATES: 'bot_per_s=fast' is not NAME=NUMBER"),
        ({"BOTKILN_OUTBOUND_RATES": "chat=1"}, "NAME one of bot_per_s, bot_burst, chat_per_s"),
        ({"BOTKILN_OUTBOUND_RATES": "bot_per_s=0"}, "is not NAME=NUMBER > 0"),
    ],
)
def test_a_malformed_value_fails_naming_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        Settings.from_env(env)


def test_runtime_variables_are_read_and_feed_the_outbound_rates() -> None:
    from botkiln.infra.outbound import OutboundRates

    settings = Settings.from_env(
        {
            "BOTKILN_OUTBOUND_RATES": "bot_per_s=100, chat_per_s=5,group_per_min=60",
            "BOTKILN_EXECUTOR_LEASE_MS": "2500",
            "BOTKILN_APICALL_PRIVATE_OK": "true",
            "BOTKILN_INGRESS_RATE": "50",
            "BOTKILN_INGRESS_MAX_BODY": "4096",
            "BOTKILN_INGRESS_MAX_DEPTH": "10",
        }
    )
    rates = OutboundRates.from_pairs(settings.outbound_rates)
    assert (rates.bot_per_s, rates.chat_per_s, rates.group_per_min, rates.bot_burst) == (100, 5, 60, 10)
    assert settings.executor_lease_ms == 2500 and settings.apicall_private_ok
    assert (settings.ingress_rate, settings.ingress_max_body, settings.ingress_max_depth) == (50, 4096, 10)
    defaults = Settings.from_env({})
    assert defaults.outbound_rates == () and not defaults.apicall_private_ok and defaults.executor_lease_ms == 15_000


def test_observability_variables_are_read_and_the_token_is_never_shown() -> None:
    assert (Settings().metrics_port, Settings().log_format, Settings().log_level) == (9100, "text", "INFO")
    settings = Settings.from_env(
        {
            "BOTKILN_METRICS_TOKEN": "scrape-token-123",
            "BOTKILN_METRICS_PORT": "0",
            "BOTKILN_METRICS_HOST": "10.0.0.7",
            "BOTKILN_LOG_FORMAT": "JSON",
            "BOTKILN_LOG_LEVEL": "debug",
            "BOTKILN_OTLP_ENDPOINT": "http://otel-collector:4318",
        }
    )
    assert (settings.metrics_token, settings.metrics_port, settings.metrics_host) == ("scrape-token-123", 0, "10.0.0.7")
    assert (settings.log_format, settings.log_level) == ("json", "DEBUG")
    assert settings.otlp_endpoint == "http://otel-collector:4318"
    assert "scrape-token-123" not in repr(settings) and "metrics_token=<set>" in repr(settings)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"BOTKILN_METRICS_PORT": "70000"}, "^BOTKILN_METRICS_PORT=70000 is not a port number"),
        ({"BOTKILN_METRICS_PORT": "-1"}, "^BOTKILN_METRICS_PORT=-1 must be at least 0$"),
        ({"BOTKILN_METRICS_HOST": "a host"}, "^BOTKILN_METRICS_HOST is malformed"),
        ({"BOTKILN_LOG_FORMAT": "yaml"}, "^BOTKILN_LOG_FORMAT='yaml' is not one of text, json$"),
        ({"BOTKILN_LOG_LEVEL": "LOUD"}, "^BOTKILN_LOG_LEVEL='LOUD' is not one of DEBUG, INFO, WARNING, ERROR$"),
        ({"BOTKILN_OTLP_ENDPOINT": "collector:4318"}, "^BOTKILN_OTLP_ENDPOINT is malformed"),
    ],
)
def test_a_malformed_observability_value_fails_naming_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        Settings.from_env(env)
