"""The LLM generator: a model behind an OpenAI-compatible API writes ``bot.js``.

Concept: :class:`LlmGenerator` is a :class:`~botkiln.generator.revision.Generator`.
Each :meth:`~LlmGenerator.generate` call is one chat completion. The system message
states the job and the output format; the user message carries the normative
BotSpec text (``docs/botspec.md``), the SDK (``prelude/bot_sdk.js``) the model may
copy verbatim, the AST policy's rules, one worked example (a small spec and the
program the compiler makes of it) and the canonical spec to implement. On a retry
the model's previous reply goes back as an assistant turn, followed by the gates'
feedback (AST violations with ``line:col``, or the conformance divergence with its
inputs and both outputs). The candidate is the reply's first ```` ```js ```` block.

Invariants:

- The model is never trusted: its program becomes a revision only through the AST
  policy and the conformance gate of :func:`~botkiln.generator.revision.build_revision`.
- Foreign failures (HTTP status, timeout, connection) are translated in one place,
  :func:`_translated_errors`, into :class:`LlmUnavailable`; a reply without a program
  is :class:`LlmOutputError`. Both are ``BotkilnError``, so a build records them as a
  failed ``generate`` attempt.
- The API key appears in no message, log record or exception chain: every message is
  scrubbed, and translated errors are raised ``from None`` because the foreign
  exception may quote the key back (some servers echo a rejected key).
- Logs carry sizes and hashes of prompts and replies, never their text.
- :data:`LLM_GENERATOR_VERSION` names the prompt layout and goes into ``revHash``;
  bump it when the layout changes.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import esprima
import openai
from openai.types.chat import ChatCompletion, ChatCompletionMessageParam

from botkiln.generator.ast_policy import AST_RULES_VERSION
from botkiln.generator.ast_rules import BUILTIN_GLOBALS, RULES, VALUE_GLOBALS
from botkiln.generator.compiler import compile_spec, sdk_source
from botkiln.generator.generators import sdk_version
from botkiln.infra.settings import SettingsError
from botkiln.interpreter.canonical import canonical_json, spec_hash
from botkiln.interpreter.errors import BotkilnError

if TYPE_CHECKING:
    from botkiln.infra.settings import Settings

__all__ = ["LLM_GENERATOR_VERSION", "LlmGenerator", "LlmOutputError", "LlmUnavailable", "extract_program"]

LLM_GENERATOR_VERSION = "1"

log = logging.getLogger(__name__)

_BOTSPEC_DOC = Path(__file__).resolve().parents[1] / "docs" / "botspec.md"
_FENCE = re.compile(r"^[ \t]*```[ \t]*([A-Za-z0-9_+-]*)[^\n]*\n(.*?)^[ \t]*```", re.MULTILINE | re.DOTALL)
_EXCERPT = 200  # characters of a bad reply or an error body quoted in a message

# The worked example: small, but with a command, an intent, an ask and a validation.
_EXAMPLE_SPEC: dict[str, Any] = {
    "schema_ver": 1,
    "meta": {"botId": "example", "name": "Example", "locales": ["en", "de"], "defaultLocale": "en"},
    "commands": [{"command": "start", "flow": "main"}],
    "intents": [{"id": "hi", "flow": "main", "keywords": {"en": ["hello", "hi"], "de": ["hallo"]}}],
    "flows": [
        {
            "id": "main",
            "steps": [
                {"id": "hello", "type": "reply", "text": "hello"},
                {"id": "name", "type": "ask", "var": "name", "prompt": "ask_name"},
                {"id": "check", "type": "validate", "var": "name", "schema": {"type": "string", "minLength": 2}},
                {"id": "bye", "type": "reply", "text": "bye"},
            ],
        }
    ],
    "state": {"vars": {"name": {"type": "string", "pii": True}}},
    "localization": {
        "strings": {
            "hello": {"en": "Hello", "de": "Hallo"},
            "ask_name": {"en": "Your name?"},
            "bye": {"en": "Bye {{state.name}}"},
        }
    },
}

_SYSTEM = """\
You are Botkiln's code generator. You write bot.js: one self-contained JavaScript \
script (script goal, strict mode, no modules) whose top-level function `step(input)` \
implements a BotSpec exactly as the normative definition says. Your program is \
checked by a static AST policy, then run in QuickJS next to the Python reference \
interpreter over many conversations; for every call the RFC 8785 canonical JSON of \
your output must be byte-identical to the reference's. Reply with the complete \
program in exactly one ```js fenced block and nothing else."""

_FEEDBACK = """\
The gates rejected that program:

{feedback}

Fix the cause (not only this one symptom) and reply with the complete corrected \
program in one ```js fenced block."""


class LlmUnavailable(BotkilnError):
    """The LLM endpoint could not be used: HTTP error status, timeout, no connection."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class LlmOutputError(BotkilnError):
    """The model answered, but its reply holds no usable program."""


def _redact(text: str, secret: str) -> str:
    return text.replace(secret, "<redacted>") if secret else text


def _endpoint(base_url: str) -> str:
    """The base URL without userinfo, query or fragment: safe to print."""
    parts = urlsplit(base_url)
    host = parts.hostname or "?"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


def _excerpt(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= _EXCERPT else flat[:_EXCERPT] + "..."


def _error_body_message(body: object) -> str:
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and isinstance(inner.get("message"), str):
            return str(inner["message"])
    return "" if body is None else str(body)


_STATUS_HINTS = {
    401: "the API key was rejected; check BOTKILN_LLM_API_KEY",
    403: "the API key may not use this model or endpoint",
    404: "check BOTKILN_LLM_BASE_URL and BOTKILN_LLM_MODEL",
    429: "rate-limited or out of quota; try again later",
}


@contextmanager
def _translated_errors(endpoint: str, timeout_s: float, secret: str) -> Iterator[None]:
    """Turn the ``openai`` client's exceptions into :class:`LlmUnavailable` (scrubbed)."""
    try:
        yield
    except openai.APITimeoutError:
        message = f"the LLM endpoint {endpoint} did not answer within {timeout_s:g} s (BOTKILN_LLM_TIMEOUT_S)"
        raise LlmUnavailable(_redact(message, secret)) from None
    except openai.APIConnectionError as exc:
        cause = exc.__cause__ or exc
        message = f"cannot connect to the LLM endpoint {endpoint}: {_excerpt(str(cause)) or type(cause).__name__}"
        raise LlmUnavailable(_redact(message, secret)) from None
    except openai.APIStatusError as exc:
        status = exc.status_code
        hint = _STATUS_HINTS.get(status, "the endpoint failed; try again later" if status >= 500 else "")
        detail = _excerpt(_error_body_message(exc.body))
        message = f"the LLM endpoint {endpoint} answered HTTP {status}" + (f": {detail}" if detail else "")
        message += f" ({hint})" if hint else ""
        raise LlmUnavailable(_redact(message, secret), status=status) from None
    except openai.OpenAIError as exc:
        message = f"the LLM endpoint {endpoint} gave an unusable answer: {type(exc).__name__}"
        raise LlmUnavailable(_redact(message, secret)) from None


def _declares_function(source: str) -> bool:
    try:
        program = esprima.parseScript(source)
    except esprima.Error:
        return False
    return any(node.type == "FunctionDeclaration" for node in program.body)


def extract_program(content: str) -> str:
    """The program in a model's reply.

    The first ```` ```js ```` / ```` ```javascript ```` block; else the first untagged
    block that parses as a script declaring a function; else, when the reply has no
    fences at all, the whole reply if it parses so.

    Raises:
        LlmOutputError: the reply holds no program.
    """
    blocks: list[tuple[str, str]] = [(m.group(1).lower(), m.group(2)) for m in _FENCE.finditer(content)]
    for lang, body in blocks:
        if lang in ("js", "javascript") and body.strip():
            return body
    for lang, body in blocks:
        if not lang and _declares_function(body):
            return body
    if not blocks and _declares_function(content):
        return content
    found = f"it began: {_excerpt(content)!r}" if content.strip() else "it was empty"
    raise LlmOutputError(f"the model's reply holds no program (expected one ```js fenced block); {found}")


@cache
def _reference_text() -> str:
    """The spec-independent part of the prompt: contract, SDK, policy, example."""
    try:
        botspec = _BOTSPEC_DOC.read_text(encoding="utf-8")
    except OSError:
        raise LlmUnavailable(
            f"the LLM generator needs the normative BotSpec text at {_BOTSPEC_DOC}, which is missing"
        ) from None
    sdk = sdk_source()
    example = compile_spec(_EXAMPLE_SPEC).replace(sdk, "/* ... the SDK above, verbatim ... */\n")
    rules = "\n".join(f"- `{rule}`: {what}" for rule, what in RULES.items())
    builtins = " ".join(sorted(BUILTIN_GLOBALS | VALUE_GLOBALS))
    example_spec = canonical_json(_EXAMPLE_SPEC).decode()
    return f"""\
# Task

Write bot.js for the BotSpec at the end of this message. `step(input)` receives \
`{{event, state, context, resume?}}` and returns `{{actions, state, events, pending?}}` \
exactly as §3 and §14 of the definition below say. The spec is data: embed it (or \
tables derived from it) in the program; do not fetch or read anything.

# The normative definition (docs/botspec.md)

{botspec}

# The SDK (prelude/bot_sdk.js)

These helpers implement the definition and are what the reference compiler embeds. \
You may copy them verbatim, in whole or in part, and call them.

```js
{sdk}
```

# The AST policy

A program breaking any of these rules is rejected before it runs:

{rules}

Allowed global names: {builtins}. Built-ins may only be called, constructed, used \
as `Name.member` with a fixed name, after `typeof` or right of `instanceof`. \
Top-level code may only declare (initialisers may build tables); functions never \
change top-level values. Time comes from `input.context.now`.

# A worked example

This spec:

```json
{example_spec}
```

compiles to this program (the SDK elided), which passes both gates:

```js
{example}```

Botkiln replaces a first line that starts with `// botkiln` by its own stamp \
(and adds one otherwise), so line numbers in feedback refer to the program as it is \
shown back to you.
"""


def _task_message(spec: dict[str, Any]) -> str:
    return f"""{_reference_text()}
# The BotSpec to implement

```json
{canonical_json(spec).decode()}
```

Reply with the complete bot.js for this spec in one ```js fenced block."""


class LlmGenerator:
    """A ``Generator`` whose programs are written by a model (OpenAI-compatible chat API)."""

    kind = "llm"
    version = LLM_GENERATOR_VERSION

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str,
        model: str = "gpt-5",
        seed: int | None = 0,
        timeout_s: float = 120.0,
        max_attempts: int = 3,
    ) -> None:
        """Raises:
        SettingsError: ``api_key`` is empty.
        LlmUnavailable: the prompt's reference text (docs/botspec.md) is missing.
        """
        if not api_key:
            raise SettingsError(
                f"BOTKILN_LLM_API_KEY is not set; the LLM generator needs a key for {_endpoint(base_url)}"
            )
        self.model: str | None = model
        self.seed = seed
        self.sdk_version = sdk_version()
        self.max_attempts = max_attempts
        self.timeout_s = timeout_s
        self.endpoint = _endpoint(base_url)
        self._secret = api_key
        self._client = openai.OpenAI(base_url=base_url, api_key=api_key, timeout=timeout_s, max_retries=0)
        self._previous: tuple[str, str] | None = None  # (spec hash, last stamped program) for retries
        _reference_text()

    @classmethod
    def from_settings(cls, settings: Settings) -> LlmGenerator:
        """The generator the ``BOTKILN_LLM_*`` settings describe.

        Raises:
            SettingsError: ``BOTKILN_LLM_API_KEY`` is not set.
        """
        return cls(
            base_url=settings.llm_base_url,
            api_key=settings.llm_api_key or "",
            model=settings.llm_model,
            seed=settings.llm_seed,
            timeout_s=float(settings.llm_timeout_s),
            max_attempts=settings.llm_max_attempts,
        )

    def __repr__(self) -> str:
        return f"LlmGenerator(endpoint={self.endpoint!r}, model={self.model!r}, seed={self.seed!r})"

    def messages(self, spec: dict[str, Any], feedback: str | None) -> list[ChatCompletionMessageParam]:
        """The chat turns for one attempt; ``feedback`` is the gates' text on the last one."""
        turns: list[ChatCompletionMessageParam] = [
            {"role": "system", "content": _SYSTEM},
            {"role": "user", "content": _task_message(spec)},
        ]
        if feedback is None:
            return turns
        previous = self._previous
        if previous is not None and previous[0] == spec_hash(spec):
            turns.append({"role": "assistant", "content": f"```js\n{previous[1]}```"})
        turns.append({"role": "user", "content": _FEEDBACK.format(feedback=feedback)})
        return turns

    def generate(self, spec: dict[str, Any], feedback: str | None) -> str:
        """A candidate bot.js for ``spec``, written by the model.

        Raises:
            LlmUnavailable: the endpoint failed (status, timeout, connection).
            LlmOutputError: the reply holds no program, or was cut off.
        """
        turns = self.messages(spec, feedback)
        prompt = "".join(str(turn.get("content", "")) for turn in turns).encode("utf-8")
        log.info(
            "llm request: endpoint=%s model=%s turns=%d prompt_bytes=%d prompt_sha256=%s",
            self.endpoint, self.model, len(turns), len(prompt), hashlib.sha256(prompt).hexdigest()[:16],
        )  # fmt: skip
        with _translated_errors(self.endpoint, self.timeout_s, self._secret):
            completion = self._client.chat.completions.create(
                model=self.model or "", messages=turns, seed=self.seed if self.seed is not None else openai.omit
            )
        self._previous = None
        source = self.stamp(spec, extract_program(self._content(completion)))
        self._previous = (spec_hash(spec), source)
        return source

    def stamp(self, spec: dict[str, Any], source: str) -> str:
        """``source`` with Botkiln's first line naming who wrote it (STYLE 15).

        A first line starting with ``// botkiln`` (models copy the compiler's) is
        replaced, keeping line numbers; otherwise the stamp is added above.
        """
        header = (
            f"// botkiln llm {self.version} · model {' '.join(str(self.model).split())} · seed {self.seed} · "
            f"ast-rules {AST_RULES_VERSION} · spec sha256:{spec_hash(spec)}"
        )
        first, newline, rest = source.partition("\n")
        if first.startswith("// botkiln"):
            return header + newline + rest
        return f"{header}\n{source}"

    def _content(self, completion: ChatCompletion) -> str:
        usage = completion.usage
        log.info(
            "llm reply: id=%s model=%s prompt_tokens=%s completion_tokens=%s",
            completion.id, completion.model, usage and usage.prompt_tokens, usage and usage.completion_tokens,
        )  # fmt: skip
        if not completion.choices:
            raise LlmOutputError("the model's reply has no choices")
        choice = completion.choices[0]
        content = choice.message.content or ""
        if choice.finish_reason == "length":
            raise LlmOutputError(
                f"the model's reply was cut off at its token limit after {len(content)} characters; "
                "the program is incomplete"
            )
        if choice.finish_reason == "content_filter":
            raise LlmOutputError("the model's reply was withheld by the endpoint's content filter")
        if not content and choice.message.refusal:
            raise LlmOutputError(f"the model refused: {_excerpt(choice.message.refusal)}")
        return content
