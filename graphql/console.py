"""The spec editor's helpers: ``validateSpec`` and ``examples``.

``validateSpec(spec)`` answers every problem ``interpreter/validation.validate_spec``
finds (the ``SpecProblem``s ``saveSpecVersion`` answers with ``SpecInvalid``),
sorted by pointer, without saving anything; ``[]`` means the spec is valid. The
size cap is the validator's own (``spec-too-large`` beyond 512 KiB), inside the
request body cap. Validation is CPU work and runs in a worker thread.

``examples`` lists the example specs shipped in ``examples/*.json`` with the API
fixture of each (``examples/fixtures/<name>.api.json``) for ``simulate``. Both
need a signed-in user and nothing more.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import strawberry
from strawberry.scalars import JSON

from botkiln.graphql.permissions import IsSignedIn
from botkiln.graphql.results import SpecProblem
from botkiln.interpreter.validation import validate_spec

EXAMPLES_DIR = Path(__file__).resolve().parents[1] / "examples"
"""The repository's ``examples/`` (the same folder ``botkiln up --example`` reads)."""


@strawberry.type(description="An example BotSpec to start a bot from.")
class Example:
    name: str = strawberry.field(description="The example's file name without `.json` (`faq`, `quiz`, …).")
    title: str = strawberry.field(description="The spec's `meta.name`.")
    description: str = strawberry.field(description="What the spec holds: its commands, flows and locales.")
    locales: list[str] = strawberry.field(description="The spec's `meta.locales`.")
    spec: JSON
    api_fixture: JSON | None = strawberry.field(
        description="Scripted answers for the example's apiCalls (its hosts are made up): pass it to `simulate`."
    )


@dataclass(frozen=True)
class _Loaded:
    name: str
    spec: dict[str, Any]
    fixture: Any


def _describe(spec: dict[str, Any]) -> str:
    commands = [f"/{c['command']}" for c in spec.get("commands", []) if isinstance(c, dict) and "command" in c]
    flows = len(spec.get("flows", []))
    parts = [f"commands {', '.join(commands)}" if commands else "no commands"]
    parts.append(f"{flows} flow{'' if flows == 1 else 's'}")
    parts.append(f"locales {', '.join(spec['meta'].get('locales', []))}")
    return "; ".join(parts)


def _load_examples(folder: Path) -> list[_Loaded]:
    found = []
    for path in sorted(folder.glob("*.json")):
        spec = json.loads(path.read_text("utf-8"))
        fixture_path = folder / "fixtures" / f"{path.stem}.api.json"
        fixture = json.loads(fixture_path.read_text("utf-8")) if fixture_path.is_file() else None
        found.append(_Loaded(path.stem, spec, fixture))
    return found


@strawberry.type
class ConsoleQuery:
    @strawberry.field(
        permission_classes=[IsSignedIn],
        description="Every problem of `spec` (pointer, code, message, hint), sorted by pointer; [] when valid. "
        "Saves nothing.",
    )
    async def validate_spec(self, spec: JSON) -> list[SpecProblem]:
        errors = await asyncio.to_thread(validate_spec, spec)
        return [SpecProblem.from_error(e) for e in errors]

    @strawberry.field(permission_classes=[IsSignedIn], description="The example specs, by name.")
    async def examples(self) -> list[Example]:
        loaded = await asyncio.to_thread(_load_examples, EXAMPLES_DIR)
        return [
            Example(
                name=e.name,
                title=str(e.spec["meta"]["name"]),
                description=_describe(e.spec),
                locales=list(e.spec["meta"].get("locales", [])),
                spec=cast(JSON, e.spec),
                api_fixture=cast(JSON, e.fixture),
            )
            for e in loaded
        ]
