"""``botkiln spec validate|hash``, ``simulate`` and ``chat``: exit codes and output."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from botkiln.infra.cli import main
from botkiln.interpreter.canonical import spec_hash
from tests.conftest import minimal_spec


def _write(tmp_path: Path, name: str, value: Any) -> str:
    path = tmp_path / name
    path.write_text(value if isinstance(value, str) else json.dumps(value), encoding="utf-8")
    return str(path)


def test_validate_exit_codes_and_human_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = _write(tmp_path, "good.json", minimal_spec())
    bad_spec = minimal_spec()
    bad_spec["flows"][0]["steps"][0]["next"] = "nmae"
    bad = _write(tmp_path, "bad.json", bad_spec)
    assert main(["spec", "validate", good]) == 0
    assert capsys.readouterr().out == f"{good}: valid\n"
    assert main(["spec", "validate", good, bad]) == 1
    out = capsys.readouterr().out
    assert f"{bad}: 1 error\n" in out
    assert (
        '  /flows/0/steps/0/next: no step "nmae" in flow "main" [unresolved-step]\n    hint: did you mean "name"?'
        in out
    )


def test_validate_unusable_inputs_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    broken = _write(tmp_path, "broken.json", '{"schema_ver": 1,\n  "meta": }')
    assert main(["spec", "validate", broken]) == 2
    assert f"{broken}:2:11: not JSON" in capsys.readouterr().err
    assert main(["spec", "validate", str(tmp_path / "missing.json")]) == 2
    assert "no such file" in capsys.readouterr().err


def test_validate_json_output_lists_errors_with_pointers(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = minimal_spec()
    spec["meta"]["defaultLocale"] = "de"
    path = _write(tmp_path, "s.json", spec)
    assert main(["spec", "validate", "--json", path]) == 1
    report = json.loads(capsys.readouterr().out)
    errors = report["files"][0]["errors"]
    assert {"pointer": "/meta/defaultLocale", "code": "unknown-default-locale"}.items() <= errors[0].items()


def test_hash_ignores_formatting_and_key_order(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = minimal_spec()
    a = _write(tmp_path, "a.json", json.dumps(spec, indent=4))
    b = _write(
        tmp_path,
        "b.json",
        json.dumps(dict(reversed(list(spec.items())))).replace('"schema_ver": 1', '"schema_ver": 1.0'),
    )
    assert main(["spec", "hash", a]) == 0
    first = capsys.readouterr().out.strip()
    assert main(["spec", "hash", b]) == 0
    assert capsys.readouterr().out.strip() == first == spec_hash(spec)
    spec["localization"]["strings"]["hello"]["en"] = "Hello!"
    assert spec_hash(spec) != first


def test_simulate_prints_one_canonical_line_per_update(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = _write(tmp_path, "s.json", minimal_spec())
    events = _write(tmp_path, "e.jsonl", '{"text": "/start"}\n# a comment\n\n{"text": "Bo"}\n')
    assert main(["simulate", spec, "--events", events]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    first, second = (json.loads(line) for line in lines)
    assert [a["params"]["text"] for a in first["actions"]] == ["Hello", "Your name?"]
    assert [a["params"]["text"] for a in second["actions"]] == ["Bye Bo"]
    assert lines[0] == json.dumps(first, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


@pytest.mark.parametrize(
    ("events", "message"),
    [
        ('{"txt": "x"}\n', "unknown short-form field(s): txt"),
        ("[1]\n", "an event must be a JSON object"),
        ("{\n", "e.jsonl:1:"),
    ],
)
def test_simulate_rejects_bad_events_with_their_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], events: str, message: str
) -> None:
    spec = _write(tmp_path, "s.json", minimal_spec())
    path = _write(tmp_path, "e.jsonl", events)
    assert main(["simulate", spec, "--events", path]) == 2
    assert message in capsys.readouterr().err


def test_simulate_refuses_an_invalid_spec(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = minimal_spec()
    del spec["flows"]
    path = _write(tmp_path, "s.json", spec)
    events = _write(tmp_path, "e.jsonl", '{"text": "/start"}\n')
    assert main(["simulate", path, "--events", events]) == 1
    assert "[schema-required]" in capsys.readouterr().err


def test_chat_shows_messages_and_numbered_buttons(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = minimal_spec()
    spec["flows"][0]["steps"][1]["buttons"] = {"inline": [[{"text": "hello", "data": "Zed"}]]}
    path = _write(tmp_path, "s.json", spec)
    monkeypatch.setattr("sys.stdin", io.StringIO("/start\n1\n:state\n:quit\nnever read\n"))
    assert main(["chat", path, "--api", _write(tmp_path, "api.json", {})]) == 0
    out = capsys.readouterr().out
    assert "bot> Hello\nbot> Your name?\n     [1] Hello\n" in out
    assert "bot> Bye Zed\n" in out
    assert '"name": "[redacted]"' in out
