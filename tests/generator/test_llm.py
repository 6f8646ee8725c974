"""The LLM generator, end to end against the OpenAI-compatible stand-in.

Every build here goes through the real ``openai`` client, real HTTP to a local
server, the AST policy and the conformance gate. A network guard fails any test
whose code tries to reach a host other than the loopback stand-in.
"""

from __future__ import annotations

import json
import logging
import socket
import time
import traceback
from pathlib import Path
from typing import Any

import openai
import pytest

from botkiln.generator import llm
from botkiln.generator.ast_policy import check_source
from botkiln.generator.compiler import compile_spec
from botkiln.generator.llm import LlmGenerator, LlmOutputError, LlmUnavailable, extract_program
from botkiln.generator.revision import BuildFailed, build_revision, rev_hash
from botkiln.infra.cli import main
from botkiln.infra.settings import Settings, SettingsError
from botkiln.interpreter.canonical import canonical_json

from .llm_standin import HOSTILE_BOT, Behaviour, LlmStandin, subtly_wrong

FAQ_PATH = Path(__file__).resolve().parents[2] / "examples" / "faq.json"
MODEL = "gpt-standin-1"
WRONG_KEY = "sk-wrong-7e57c0ffee-do-not-leak"
_LOOPBACK = {"127.0.0.1", "::1", "localhost"}


# --- fixtures -------------------------------------------------------------------


class _Guard:
    def __init__(self) -> None:
        self.blocked: list[str] = []
        self.expected = False


@pytest.fixture(autouse=True)
def network_guard(monkeypatch: pytest.MonkeyPatch):
    """Refuse every connection except to loopback, and fail the test if one was tried."""
    guard = _Guard()
    real_getaddrinfo = socket.getaddrinfo
    real_connect = socket.socket.connect

    def refuse(host: object) -> OSError:
        guard.blocked.append(str(host))
        return ConnectionRefusedError(f"network guard: tests must not reach {host}; point the client at the stand-in")

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host not in _LOOPBACK:
            raise refuse(host)
        return real_getaddrinfo(host, *args, **kwargs)

    def connect(self: socket.socket, address: Any) -> None:
        if isinstance(address, tuple) and address[0] not in _LOOPBACK:
            raise refuse(address[0])
        real_connect(self, address)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(socket.socket, "connect", connect)
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    yield guard
    if guard.blocked and not guard.expected:
        pytest.fail(f"a test tried to reach {', '.join(guard.blocked)}: tests must use the LLM stand-in")


@pytest.fixture
def standin():
    with LlmStandin() as server:
        yield server


@pytest.fixture
def faq() -> dict[str, Any]:
    spec: dict[str, Any] = json.loads(FAQ_PATH.read_text(encoding="utf-8"))
    return spec


def generator(server: LlmStandin, *, key: str | None = None, timeout_s: float = 10.0, **kw: Any) -> LlmGenerator:
    return LlmGenerator(base_url=server.base_url, api_key=key or server.api_key, model=MODEL, timeout_s=timeout_s, **kw)


# --- builds through build_revision ------------------------------------------------


def test_a_correct_first_answer_becomes_a_revision_that_records_the_llm_build(standin, faq):
    standin.script("correct")

    revision = build_revision(faq, generator(standin, seed=7), max_attempts=3)

    build = revision.rev["build"]
    assert build["generator"] == "llm"
    assert build["generatorVersion"] == llm.LLM_GENERATOR_VERSION
    assert (build["model"], build["seed"], build["attempts"]) == (MODEL, 7, 1)
    assert json.loads(revision.files["rev.json"])["build"]["model"] == MODEL
    # The program is the model's, stamped with who wrote it in place of the compiler's line.
    stamp, _, rest = revision.files["bot.js"].decode().partition("\n")
    assert stamp.startswith(f"// botkiln llm {llm.LLM_GENERATOR_VERSION} · model {MODEL} · seed 7 · ast-rules 1 · ")
    assert rest == compile_spec(faq).partition("\n")[2]
    assert [entry["ok"] for entry in revision.log] == [True]
    # The request carried model and seed, and the prompt everything the model needs.
    (request,) = standin.completions()
    assert (request.body["model"], request.body["seed"]) == (MODEL, 7)
    assert [m["role"] for m in request.messages] == ["system", "user"]
    prompt = request.last_user_message
    assert canonical_json(faq).decode() in prompt
    assert "# BotSpec v1 — normative definition" in prompt
    assert "# The SDK (prelude/bot_sdk.js)" in prompt
    assert "`dynamic-code`" in prompt and "`nondeterminism`" in prompt
    assert "# A worked example" in prompt


def test_the_same_inputs_give_the_same_rev_hash_whatever_the_model_wrote(standin, faq):
    # Given two builds of one spec with one configuration, the first needing a retry
    standin.script("correct", "hostile", "correct")
    first = build_revision(faq, generator(standin), max_attempts=2)
    second = build_revision(faq, generator(standin), max_attempts=2)
    # Then the revision hash depends only on the deterministic inputs
    assert first.rev_hash == second.rev_hash == rev_hash(faq, generator(standin))
    assert (first.rev["build"]["attempts"], second.rev["build"]["attempts"]) == (1, 2)
    assert rev_hash(faq, generator(standin, seed=1)) != first.rev_hash
    other_model = LlmGenerator(base_url=standin.base_url, api_key=standin.api_key, model="another")
    assert rev_hash(faq, other_model) != first.rev_hash


def test_a_hostile_program_is_rejected_and_its_violations_go_back_to_the_model(standin, faq):
    standin.script("hostile", "correct")

    revision = build_revision(faq, generator(standin), max_attempts=3)

    assert revision.rev["build"]["attempts"] == 2
    assert [(e["stage"], e["ok"]) for e in revision.log] == [("ast-policy", False), ("conformance", True)]
    retry = standin.completions()[1]
    # The model sees its own (stamped) program, then every violation in it with rule id and line:col.
    assert [m["role"] for m in retry.messages] == ["system", "user", "assistant", "user"]
    shown = extract_program(retry.messages[2]["content"])
    assert shown.partition("\n")[2] == HOSTILE_BOT
    violations = check_source(shown).violations
    assert {v.rule for v in violations} >= {"dynamic-code", "nondeterminism"}
    for violation in violations:
        assert f"bot.js:{violation.line}:{violation.column}: {violation.rule}:" in retry.last_user_message
    assert revision.log[0]["error"] in retry.last_user_message


def test_a_subtle_bug_is_caught_by_conformance_and_the_divergence_goes_back(standin, faq):
    standin.script("subtle_bug", "correct")

    revision = build_revision(faq, generator(standin), max_attempts=3)

    assert [(e["stage"], e["ok"]) for e in revision.log] == [("conformance", False), ("conformance", True)]
    divergence = revision.log[0]["error"]
    assert divergence.startswith("divergence in conversation")
    feedback = standin.completions()[1].last_user_message
    assert divergence in feedback
    for line in ("  input:    ", "  expected: ", "  actual:   "):
        assert line in feedback
    # The stand-in's bug: one "!" more at the end of the /start greeting.
    assert subtly_wrong(faq)["localization"]["strings"]["welcome"]["en"].endswith("where we are.!")
    assert 'where we are."}}' in divergence.split("  expected: ")[1].split("\n")[0]
    assert 'where we are.!"}}' in divergence.split("  actual:   ")[1].split("\n")[0]


def test_replies_without_a_program_fail_the_build_at_generate(standin, faq):
    standin.script("malformed", "malformed", "malformed")

    with pytest.raises(BuildFailed) as caught:
        build_revision(faq, generator(standin), max_attempts=3)

    assert caught.value.stage == "generate"
    assert "the model's reply holds no program (expected one ```js fenced block)" in caught.value.detail
    assert "I'm sorry" in caught.value.detail
    assert [e["stage"] for e in caught.value.attempts] == ["generate"] * 3
    # With nothing to correct, each retry is a fresh request.
    assert [len(r.messages) for r in standin.completions()] == [2, 2, 2]


def test_a_reply_cut_off_at_the_token_limit_is_an_output_error(standin, faq):
    standin.script("truncated")

    with pytest.raises(LlmOutputError, match="cut off at its token limit"):
        generator(standin).generate(faq, None)


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (500, "answered HTTP 500: The server had an error while processing your request. Sorry about that! "
              "(the endpoint failed; try again later)"),
        (429, "answered HTTP 429: Rate limit reached for requests. Please try again in 20s. "
              "(rate-limited or out of quota; try again later)"),
    ],
)  # fmt: skip
def test_an_http_error_is_a_clear_generate_failure(standin, faq, status, expected):
    standin.script(Behaviour("http_error", status=status))

    with pytest.raises(BuildFailed) as caught:
        build_revision(faq, generator(standin), max_attempts=1)

    assert caught.value.stage == "generate"
    assert caught.value.detail == f"the LLM endpoint {standin.base_url} {expected}"
    assert len(standin.completions()) == 1  # max_retries=0: the build owns retries


def test_a_silent_endpoint_fails_within_the_timeout(standin, faq):
    standin.script(Behaviour("timeout", delay_s=10))

    started = time.monotonic()
    with pytest.raises(BuildFailed) as caught:
        build_revision(faq, generator(standin, timeout_s=1), max_attempts=1)

    assert time.monotonic() - started < 3
    assert (
        caught.value.detail == f"the LLM endpoint {standin.base_url} did not answer within 1 s (BOTKILN_LLM_TIMEOUT_S)"
    )


def test_a_wrong_key_is_a_clear_error_that_never_shows_the_key(standin, faq, caplog):
    caplog.set_level(logging.DEBUG)
    standin.script("correct")

    with pytest.raises(BuildFailed) as caught:
        build_revision(faq, generator(standin, key=WRONG_KEY), max_attempts=2)
    with pytest.raises(LlmUnavailable) as direct:
        generator(standin, key=WRONG_KEY).generate(faq, None)

    assert caught.value.detail == (
        f"the LLM endpoint {standin.base_url} answered HTTP 401: Incorrect API key provided: <redacted>. "
        "(the API key was rejected; check BOTKILN_LLM_API_KEY)"
    )
    assert direct.value.status == 401
    assert direct.value.__cause__ is None and direct.value.__suppress_context__
    # The stand-in quoted the key back; Botkiln's texts and logs do not.
    assert [r.authorized for r in standin.requests] == [False, False, False]
    texts = [
        str(caught.value),
        json.dumps(caught.value.attempts),
        "".join(traceback.format_exception(direct.value)),
        repr(generator(standin, key=WRONG_KEY)),
        caplog.text,
    ]
    assert "llm request" in caplog.text and "Sending HTTP Request" in caplog.text  # openai's debug log too
    for text in texts:
        assert WRONG_KEY not in text


def test_the_default_endpoint_is_never_reached_from_tests(network_guard, faq):
    network_guard.expected = True
    default = LlmGenerator.from_settings(Settings(llm_api_key="sk-test", llm_timeout_s=5))

    with pytest.raises(LlmUnavailable, match=r"cannot connect to the LLM endpoint https://api\.openai\.com/v1"):
        default.generate(faq, None)

    assert network_guard.blocked == ["api.openai.com"]


# --- settings and the CLI -------------------------------------------------------


def test_from_settings_needs_the_api_key():
    with pytest.raises(SettingsError, match=r"^BOTKILN_LLM_API_KEY is not set; .* https://api\.openai\.com/v1$"):
        LlmGenerator.from_settings(Settings.from_env({}))


def test_from_settings_takes_every_llm_setting(standin):
    env = {
        "BOTKILN_LLM_BASE_URL": standin.base_url,
        "BOTKILN_LLM_API_KEY": standin.api_key,
        "BOTKILN_LLM_MODEL": MODEL,
        "BOTKILN_LLM_TIMEOUT_S": "7",
        "BOTKILN_LLM_MAX_ATTEMPTS": "4",
        "BOTKILN_LLM_SEED": "42",
    }
    made = LlmGenerator.from_settings(Settings.from_env(env))

    assert (made.kind, made.model, made.seed, made.timeout_s, made.max_attempts) == ("llm", MODEL, 42, 7.0, 4)
    assert made.endpoint == standin.base_url
    assert made.sdk_version.startswith("sha256:")


def _cli_env(monkeypatch: pytest.MonkeyPatch, server: LlmStandin, key: str, **extra: str) -> None:
    monkeypatch.setenv("BOTKILN_LLM_BASE_URL", server.base_url)
    monkeypatch.setenv("BOTKILN_LLM_API_KEY", key)
    monkeypatch.setenv("BOTKILN_LLM_MODEL", MODEL)
    for name, value in extra.items():
        monkeypatch.setenv(name, value)


def test_cli_build_with_the_llm_generator_writes_a_revision(standin, monkeypatch, tmp_path, capsys):
    _cli_env(monkeypatch, standin, standin.api_key)
    standin.script("hostile", "correct")

    code = main(["build", str(FAQ_PATH), "--out", str(tmp_path), "--generator", "llm"])

    assert code == 0, capsys.readouterr().err
    rev = json.loads((tmp_path / "rev.json").read_text())
    assert (rev["build"]["generator"], rev["build"]["model"], rev["build"]["attempts"]) == ("llm", MODEL, 2)
    log = json.loads((tmp_path / "build-log.json").read_text())
    assert [entry["stage"] for entry in log] == ["ast-policy", "conformance"]
    assert f"revision {rev['revHash']}" in capsys.readouterr().out


def test_cli_build_with_a_wrong_key_fails_clearly_without_the_key(standin, monkeypatch, tmp_path, capsys, caplog):
    caplog.set_level(logging.DEBUG)
    _cli_env(monkeypatch, standin, WRONG_KEY, BOTKILN_LLM_MAX_ATTEMPTS="1")

    code = main(["build", str(FAQ_PATH), "--out", str(tmp_path), "--generator", "llm"])

    out, err = capsys.readouterr()
    assert code == 1
    assert "build failed at generate after 1 attempt(s)" in err
    assert "HTTP 401" in err and "check BOTKILN_LLM_API_KEY" in err
    assert WRONG_KEY not in out + err + caplog.text
    assert not (tmp_path / "rev.json").exists()


def test_cli_build_times_out_as_configured(standin, monkeypatch, tmp_path, capsys):
    _cli_env(monkeypatch, standin, standin.api_key, BOTKILN_LLM_TIMEOUT_S="1", BOTKILN_LLM_MAX_ATTEMPTS="1")
    standin.script(Behaviour("timeout", delay_s=10))

    started = time.monotonic()
    code = main(["build", str(FAQ_PATH), "--out", str(tmp_path), "--generator", "llm"])

    assert code == 1
    assert time.monotonic() - started < 3
    assert "did not answer within 1 s (BOTKILN_LLM_TIMEOUT_S)" in capsys.readouterr().err


# --- extracting the program -------------------------------------------------------

PROGRAM = "function step(input) {\n  return input;\n}\n"


@pytest.mark.parametrize(
    "reply",
    [
        f"```js\n{PROGRAM}```",
        f"Sure.\n\n```javascript\n{PROGRAM}```\nThat is all.",
        f"```json\n{{}}\n```\n```JS\n{PROGRAM}```\n```js\nfunction other() {{}}\n```",
        f"```\n{PROGRAM}```",
        PROGRAM,
    ],
    ids=["js", "javascript-with-prose", "first-js-block", "untagged", "bare"],
)
def test_the_program_is_the_first_js_block_or_a_bare_script(reply):
    assert extract_program(reply) == PROGRAM


@pytest.mark.parametrize(
    ("reply", "found"),
    [
        ("", "it was empty"),
        ("Sorry", "it began: 'Sorry'"),
        ("Here it is:\n```\nnot code at all\n```", "it began: 'Here it is: ``` not code at all ```'"),
        ("```js\nfunction step(input) {", "it began: '```js function step(input) {'"),
    ],
    ids=["empty", "a-word", "untagged-prose", "unclosed-fence"],
)
def test_a_reply_without_a_program_is_an_output_error(reply, found):
    with pytest.raises(LlmOutputError) as caught:
        extract_program(reply)
    assert str(caught.value) == f"the model's reply holds no program (expected one ```js fenced block); {found}"


# --- the stand-in itself --------------------------------------------------------


def test_the_standin_speaks_openai_shapes(standin):
    client = openai.OpenAI(base_url=standin.base_url, api_key=standin.api_key, max_retries=0)
    assert [m.id for m in client.models.list()] == ["standin"]
    bad = openai.OpenAI(base_url=standin.base_url, api_key=WRONG_KEY, max_retries=0)
    with pytest.raises(openai.AuthenticationError) as caught:
        bad.models.list()
    assert caught.value.body == {
        "message": f"Incorrect API key provided: {WRONG_KEY}.",
        "type": "invalid_request_error",
        "param": None,
        "code": "invalid_api_key",
    }
    # Nothing scripted: a clear 500, not a silent success.
    with pytest.raises(openai.InternalServerError, match="no behaviour was scripted"):
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}])
    client.close()
    bad.close()


def test_the_module_exports_its_public_surface():
    assert sorted(llm.__all__) == [
        "LLM_GENERATOR_VERSION",
        "LlmGenerator",
        "LlmOutputError",
        "LlmUnavailable",
        "extract_program",
    ]
