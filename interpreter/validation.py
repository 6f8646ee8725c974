"""Spec validation: the JSON Schema pass, then the semantic rules; all errors at once.

``validate_spec`` never raises for a bad spec: every problem comes back as a
``SpecError`` with a JSON pointer, a stable code (docs/errors.md) and a sentence.
The schema pass turns jsonschema's errors into Botkiln's codes and wording; the
semantic rules (``rules.RULES``) check what a schema cannot express. When the
schema pass found problems, a rule that trips over a malformed part is skipped
for that part (the schema error already says what is wrong there).
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable, Iterator
from functools import cache
from importlib import resources
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, best_match

from botkiln.interpreter.canonical import canonical_json
from botkiln.interpreter.errors import SpecError
from botkiln.interpreter.pointers import join

MAX_SPEC_BYTES = 512 * 1024

_PATTERN_NAMES = {
    "^(?!__)[A-Za-z_][A-Za-z0-9_]{0,63}$": (
        "an identifier (letters, digits, _; not starting with a digit or __; at most 64)"
    ),
    "^[A-Za-z0-9_.-]{1,128}$": "a string key (letters, digits, _ . -; at most 128)",
    "^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$": 'a locale such as "en" or "pt-BR"',
    "^((?!__)[A-Za-z_][A-Za-z0-9_]{0,63}|@(?!__)[A-Za-z_][A-Za-z0-9_]{0,63}|#end)$": (
        'a target: "stepId", "@flowId" or "#end"'
    ),
    "^[a-z0-9_]{1,32}$": "a command name without the slash (a-z, 0-9, _; at most 32)",
    "^[a-z0-9][a-z0-9_-]{0,63}$": "a bot id (a-z, 0-9, _ and -; at most 64)",
}


@cache
def schema() -> dict[str, Any]:
    """The BotSpec v1 JSON Schema shipped with the package."""
    text = resources.files("botkiln.interpreter").joinpath("schema/botspec.v1.json").read_text("utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


@cache
def _validator() -> Draft202012Validator:
    return Draft202012Validator(schema())


def _kebab(name: str) -> str:
    return "".join("-" + c.lower() if c.isupper() else c for c in name)


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 60 else text[:57] + "..."


def _schema_message(error: ValidationError) -> tuple[str, str | None]:
    kind: Any = error.validator
    value: Any = error.validator_value
    instance: Any = error.instance
    schema_: Any = error.schema
    hint: str | None = None
    if kind == "required":
        missing = [name for name in value if name not in instance]
        return f'missing required field "{missing[0] if missing else value[0]}"', None
    if kind == "additionalProperties":
        allowed = sorted(schema_.get("properties", {}))
        extra = sorted(set(instance) - set(allowed))
        name = extra[0] if extra else "?"
        close = difflib.get_close_matches(name, allowed, n=1)
        if close:
            hint = f'did you mean "{close[0]}"?'
        elif allowed:
            hint = "allowed fields: " + ", ".join(allowed)
        return f'unknown field "{name}"', hint
    if kind == "type":
        expected = value if isinstance(value, str) else " or ".join(value)
        return f"expected {expected}, found {_json_type(instance)}", None
    if kind in ("enum", "const"):
        options = value if kind == "enum" else [value]
        return (
            f"{_short(instance)} is not allowed here; expected one of {', '.join(map(_short, options))}",
            None,
        )
    if kind == "pattern":
        what = _PATTERN_NAMES.get(value, f"the pattern {value}")
        return f"{_short(instance)} is not {what}", None
    if kind in ("oneOf", "anyOf"):
        return f"{_short(instance)} does not match any allowed form", None
    return error.message, None


_DISCRIMINATORS = frozenset({"required", "const", "enum", "type"})


def _closest_branch(error: ValidationError) -> ValidationError:
    """The most telling error of the ``oneOf``/``anyOf`` branch the value came closest to.

    Closest = fewest errors; ties go to a branch that failed on something other
    than its discriminating keywords (required/const/enum/type), then to depth.
    """
    branches: dict[Any, list[ValidationError]] = {}
    for sub in error.context or []:
        branches.setdefault(sub.schema_path[0], []).append(sub)

    def rank(errors: list[ValidationError]) -> tuple[int, int]:
        return len(errors), int(all(e.validator in _DISCRIMINATORS for e in errors))

    best = min(branches.values(), key=rank)
    if rank(best)[1]:
        return error
    deepest = max(best, key=lambda e: len(e.absolute_path))
    return deepest if best_match([deepest]) is not None else error


def _schema_errors(spec: Any) -> Iterator[SpecError]:
    for error in _validator().iter_errors(spec):
        if error.validator in ("oneOf", "anyOf") and error.context:
            error = _closest_branch(error)
        message, hint = _schema_message(error)
        pointer = join(*error.absolute_path)
        if error.validator == "additionalProperties":
            instance: Any = error.instance
            schema_: Any = error.schema
            extra = sorted(set(instance) - set(schema_.get("properties", {})))
            if extra:
                pointer = join(*error.absolute_path, extra[0])
        yield SpecError(pointer, "schema-" + _kebab(str(error.validator)), message, hint)


def _dedupe(errors: Iterable[SpecError]) -> list[SpecError]:
    seen: set[tuple[str, str, str]] = set()
    out: list[SpecError] = []
    for e in errors:
        key = (e.pointer, e.code, e.message)
        if key not in seen:
            seen.add(key)
            out.append(e)
    return out


def validate_spec(spec: Any, *, size: int | None = None) -> list[SpecError]:
    """Every problem of ``spec``, sorted by pointer; ``[]`` means valid.

    ``size`` is the byte size of the document as the user gave it; without it the
    canonical form's size is used for the 512 KiB limit.
    """
    from botkiln.interpreter.rules import run_rules

    errors: list[SpecError] = []
    if size is None:
        try:
            size = len(canonical_json(spec))
        except (TypeError, ValueError):
            size = 0
    if size > MAX_SPEC_BYTES:
        errors.append(
            SpecError(
                "",
                "spec-too-large",
                f"the spec is {size} bytes; the limit is {MAX_SPEC_BYTES} (512 KiB)",
            )
        )
    schema_errors = list(_schema_errors(spec))
    errors.extend(schema_errors)
    if isinstance(spec, dict):
        errors.extend(run_rules(spec, tolerant=bool(schema_errors)))
    return sorted(_dedupe(errors), key=lambda e: (_pointer_key(e.pointer), e.code))


def _pointer_key(pointer: str) -> tuple[tuple[int, int | str], ...]:
    parts = pointer.split("/")[1:] if pointer else []
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in parts)
