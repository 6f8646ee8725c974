"""``botkiln js check``: exit codes, human and JSON output, the spec's allow-list."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from botkiln.infra.cli import main

CLEAN = "function step(input) {\n  return { actions: [], state: input.state, events: [] };\n}\n"
HOSTILE = 'function step(input) {\n  const url = "https://evil.example/x";\n  return this.constructor;\n}\n'


Write = Callable[[str, str | bytes], str]


@pytest.fixture
def write(tmp_path: Path) -> Write:
    """Writes a file under ``tmp_path`` and returns its path."""

    def write(name: str, content: str | bytes) -> str:
        path = tmp_path / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
        return str(path)

    return write


def test_clean_file_exits_0(write: Write, capsys: pytest.CaptureFixture[str]) -> None:
    path = write("bot.js", CLEAN)
    assert main(["js", "check", path]) == 0
    assert capsys.readouterr().out == f"{path}: ok (AST rules v1)\n"


def test_violations_exit_1_listing_every_one_sorted_with_context(
    write: Write, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write("bot.js", HOSTILE)
    assert main(["js", "check", path]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == (
        f"{path}:2:16: url-not-allowed: URL host `evil.example` is not in the domain "
        "allow-list (security.allowedDomains of the spec)"
    )
    assert lines[1:3] == ['      const url = "https://evil.example/x";', " " * 19 + "^"]
    assert lines[3].startswith(f"{path}:3:10: this-expression: `this` is forbidden")
    assert lines[6].startswith(f"{path}:3:15: constructor-access: property `constructor`")
    assert lines[-1] == f"{path}: 3 violations (AST rules v1)"


def test_spec_allow_list_permits_its_hosts(write: Write, capsys: pytest.CaptureFixture[str]) -> None:
    path = write("bot.js", in_step('return "https://api.example.com/v1";'))
    spec = write("spec.json", json.dumps({"security": {"allowedDomains": ["*.example.com"]}}))
    assert main(["js", "check", path]) == 1
    assert main(["js", "check", path, "--spec", spec]) == 0
    assert capsys.readouterr().out.endswith(f"{path}: ok (AST rules v1)\n")


def test_spec_without_security_means_an_empty_allow_list(write: Write) -> None:
    path = write("bot.js", in_step('return "https://api.example.com/v1";'))
    spec = write("spec.json", json.dumps({"meta": {}}))
    assert main(["js", "check", path, "--spec", spec]) == 1


def test_json_output(write: Write, capsys: pytest.CaptureFixture[str]) -> None:
    path = write("bot.js", HOSTILE)
    assert main(["js", "check", path, "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["file"] == path
    assert data["ok"] is False
    assert data["rulesVersion"] == "1"
    assert data["parseError"] is None
    assert [(v["rule"], v["line"], v["column"]) for v in data["violations"]] == [
        ("url-not-allowed", 2, 16),
        ("this-expression", 3, 10),
        ("constructor-access", 3, 15),
    ]
    assert data["violations"][1]["context"] == "  return this.constructor;\n         ^"


def test_syntax_error_exits_2_with_line_and_column(write: Write, capsys: pytest.CaptureFixture[str]) -> None:
    path = write("bot.js", "function step(input) {\n  return 1 +;\n}\n")
    assert main(["js", "check", path]) == 2
    out = capsys.readouterr().out
    assert out.startswith(f"{path}:2:13: parse-error: Unexpected token ;\n")
    assert out.endswith(f"{path}: not parsable as a JavaScript script (AST rules v1)\n")


def test_syntax_error_as_json(write: Write, capsys: pytest.CaptureFixture[str]) -> None:
    path = write("bot.js", "function step(input) {")
    assert main(["js", "check", path, "--json"]) == 2
    data = json.loads(capsys.readouterr().out)
    assert data["violations"] == []
    assert (data["parseError"]["line"], data["parseError"]["column"]) == (1, 23)


def test_missing_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = str(tmp_path / "nope.js")
    assert main(["js", "check", missing]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == f"botkiln js check: {missing}: no such file\n"


def test_missing_file_as_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = str(tmp_path / "nope.js")
    assert main(["js", "check", missing, "--json"]) == 2
    data = json.loads(capsys.readouterr().out)
    assert data == {
        "file": missing,
        "ok": False,
        "rulesVersion": "1",
        "error": f"{missing}: no such file",
    }


def test_file_that_is_not_utf8_exits_2(write: Write, capsys: pytest.CaptureFixture[str]) -> None:
    path = write("bot.js", b"function step(input) { return '\xff'; }")
    assert main(["js", "check", path]) == 2
    assert "not UTF-8" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("content", "complaint"),
    [
        (None, "no such file"),
        ("{not json", "not JSON"),
        ("[1, 2]", "a spec must be a JSON object"),
        ('{"security": {"allowedDomains": "example.com"}}', "must be a list of strings"),
        ('{"security": {"allowedDomains": [1]}}', "must be a list of strings"),
        ('{"security": []}', "must be a list of strings"),
    ],
)
def test_unusable_spec_exits_2(
    write: Write,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    content: str | None,
    complaint: str,
) -> None:
    path = write("bot.js", CLEAN)
    spec = str(tmp_path / "spec.json") if content is None else write("spec.json", content)
    assert main(["js", "check", path, "--spec", spec]) == 2
    captured = capsys.readouterr()
    assert complaint in captured.err
    assert captured.out == ""


def test_max_bytes_caps_the_size(write: Write, capsys: pytest.CaptureFixture[str]) -> None:
    path = write("bot.js", CLEAN)
    assert main(["js", "check", path, "--max-bytes", "20"]) == 1
    assert f"{path}:1:1: too-large: bot.js is {len(CLEAN)} bytes, over the 20-byte cap" in capsys.readouterr().out
    assert main(["js", "check", path, "--max-bytes", str(len(CLEAN))]) == 0


@pytest.mark.parametrize("value", ["0", "-5", "lots"])
def test_max_bytes_must_be_a_positive_number(write: Write, capsys: pytest.CaptureFixture[str], value: str) -> None:
    path = write("bot.js", CLEAN)
    assert main(["js", "check", path, "--max-bytes", value]) == 2
    assert "expected a positive number of bytes" in capsys.readouterr().err


def test_js_without_a_subcommand_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["js"]) == 2
    assert "required: SUBCOMMAND" in capsys.readouterr().err


def in_step(*body: str) -> str:
    return "function step(input) {\n" + "\n".join(f"  {line}" for line in body) + "\n}\n"
