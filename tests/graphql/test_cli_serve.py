"""``botkiln serve``: refuses to start without its settings, naming the variable."""

from __future__ import annotations

import argparse

import pytest

from botkiln.infra import cli_serve


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="botkiln")
    cli_serve.register(parser.add_subparsers(dest="command"))
    return parser.parse_args(["serve", *argv])


def test_serve_takes_a_host_and_a_port() -> None:
    args = _parse("--host", "0.0.0.0", "--port", "9000")
    assert (args.host, args.port) == ("0.0.0.0", 9000)
    assert _parse().port == 8000


def test_serve_without_a_database_exits_2_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("BOTKILN_DATABASE_URL", "BOTKILN_SECRET_KEY"):
        monkeypatch.delenv(name, raising=False)
    args = _parse()
    assert args.handler(args) == 2
    assert "BOTKILN_DATABASE_URL" in capsys.readouterr().err


def test_serve_without_a_secret_key_exits_2_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("BOTKILN_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    monkeypatch.delenv("BOTKILN_SECRET_KEY", raising=False)
    args = _parse()
    assert args.handler(args) == 2
    assert "BOTKILN_SECRET_KEY" in capsys.readouterr().err
