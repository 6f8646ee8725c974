"""``graphql/schema.graphql`` is the SDL of the schema the server runs."""

from __future__ import annotations

import re
from pathlib import Path

from graphql import GraphQLInterfaceType, GraphQLObjectType

from botkiln.graphql.schema import build_schema, sdl

SDL_FILE = Path(__file__).resolve().parents[2] / "graphql" / "schema.graphql"


def test_the_exported_sdl_is_current() -> None:
    assert SDL_FILE.read_text(encoding="utf-8") == sdl(), (
        "graphql/schema.graphql is stale: run `.venv/bin/python -m botkiln.graphql.schema > graphql/schema.graphql`"
    )


# Fields named for bot secrets that carry their names only (a BotSecret is a name and a time), and the
# mutations that write them (their results are among these).
SECRET_NAME_FIELDS = {
    "Bot.secrets", "Bot.missingSecrets", "BotSecretSet.secret", "Mutation.setBotSecret", "Mutation.deleteBotSecret",
}  # fmt: skip


def test_no_output_field_can_carry_a_token_secret_or_password() -> None:
    schema = build_schema()._schema
    named = [
        f"{name}.{field}"
        for name, type_ in schema.type_map.items()
        if isinstance(type_, (GraphQLObjectType, GraphQLInterfaceType)) and not name.startswith("__")
        for field in type_.fields
        if re.search(r"token|secret|password|cipher", field, re.IGNORECASE)
        and f"{name}.{field}" not in SECRET_NAME_FIELDS
    ]
    assert named == []
    bot_secret = schema.type_map["BotSecret"]
    assert isinstance(bot_secret, GraphQLObjectType) and set(bot_secret.fields) == {"name", "updatedAt"}
    assert str(schema.type_map["Bot"].fields["missingSecrets"].type) == "[String!]"  # type: ignore[attr-defined]
