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
    ],
)
def test_a_malformed_value_fails_naming_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        Settings.from_env(env)
