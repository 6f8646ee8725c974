"""Token encryption, key rotation, secret comparison, webhook secrets and passwords."""

from __future__ import annotations

import base64
import re

import pytest

from botkiln.infra.crypto import (
    DecryptionFailed,
    SecretBox,
    constant_time_equals,
    generate_secret_key,
    hash_password,
    key_id,
    new_webhook_secret,
    parse_secret_keys,
    password_needs_rehash,
    verify_password,
)
from botkiln.infra.settings import Settings, SettingsError

TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"  # the shape of a Telegram token (not a real one)


def _key(byte: int) -> bytes:
    return bytes([byte]) * 32


def test_a_token_round_trips_and_is_not_in_the_ciphertext() -> None:
    box = SecretBox((_key(1),))
    sealed = box.encrypt(TOKEN, context="bot:faq:token")
    assert TOKEN not in sealed and TOKEN.split(":")[1] not in sealed
    assert re.fullmatch(r"v1:[0-9a-f]{8}:[A-Za-z0-9_-]+", sealed)
    assert box.decrypt(sealed, context="bot:faq:token") == TOKEN


def test_each_encryption_uses_a_fresh_nonce() -> None:
    box = SecretBox((_key(1),))
    assert box.encrypt(TOKEN, context="c") != box.encrypt(TOKEN, context="c")


def test_a_ciphertext_moved_to_another_row_does_not_decrypt() -> None:
    box = SecretBox((_key(1),))
    sealed = box.encrypt(TOKEN, context="bot:faq:token")
    with pytest.raises(DecryptionFailed, match="bot:quiz:token"):
        box.decrypt(sealed, context="bot:quiz:token")


def test_a_tampered_ciphertext_does_not_decrypt() -> None:
    box = SecretBox((_key(1),))
    version, kid, body = box.encrypt(TOKEN, context="c").split(":")
    flipped = body[:10] + ("A" if body[10] != "A" else "B") + body[11:]
    with pytest.raises(DecryptionFailed):
        box.decrypt(f"{version}:{kid}:{flipped}", context="c")
    with pytest.raises(DecryptionFailed, match="not a Botkiln ciphertext"):
        box.decrypt("plaintext-token", context="c")
    with pytest.raises(DecryptionFailed, match="version"):
        box.decrypt(f"v9:{kid}:{body}", context="c")


def test_rotation_decrypts_old_values_and_encrypts_with_the_new_key() -> None:
    old = SecretBox((_key(1),))
    sealed = old.encrypt(TOKEN, context="c")
    rotated = SecretBox((_key(2), _key(1)))

    assert rotated.decrypt(sealed, context="c") == TOKEN
    assert rotated.needs_reencrypt(sealed)
    assert not rotated.needs_reencrypt(rotated.encrypt(TOKEN, context="c"))
    with pytest.raises(DecryptionFailed, match=f"no configured key has id {key_id(_key(1))}"):
        SecretBox((_key(2),)).decrypt(sealed, context="c")


def test_the_box_never_shows_its_keys() -> None:
    box = SecretBox((_key(7),))
    assert "\\x07" not in repr(box) and base64.b64encode(_key(7)).decode() not in repr(box)


def test_secret_keys_parse_from_the_setting() -> None:
    first, second = generate_secret_key(), generate_secret_key()
    keys = parse_secret_keys(f"{first}, {second}")
    assert keys == (base64.b64decode(first), base64.b64decode(second))
    urlsafe = base64.urlsafe_b64encode(_key(0xFB)).decode().rstrip("=")
    assert parse_secret_keys(urlsafe) == (_key(0xFB),)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "one or more"),
        ("a,,b", "one or more"),
        ("not base64!", "key 1 is not valid base64"),
        (base64.b64encode(b"short").decode(), "key 1 decodes to 5 bytes; expected 32"),
    ],
)
def test_malformed_secret_keys_are_explained_without_echoing_them(value: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as caught:
        parse_secret_keys(value)
    assert not value or value not in str(caught.value)


def test_settings_name_the_variable_of_a_bad_secret_key() -> None:
    with pytest.raises(SettingsError, match=r"^BOTKILN_SECRET_KEY key 1 decodes to 3 bytes"):
        Settings.from_env({"BOTKILN_SECRET_KEY": "YWJj"})
    with pytest.raises(SettingsError, match="BOTKILN_SECRET_KEY is missing and has no default"):
        Settings.from_env({}).secret_box()
    key = generate_secret_key()
    settings = Settings.from_env({"BOTKILN_SECRET_KEY": key})
    assert settings.secret_box().keys == (base64.b64decode(key),)
    assert key not in repr(settings)


def test_constant_time_equals_compares_text_and_bytes() -> None:
    assert constant_time_equals("abc", "abc")
    assert constant_time_equals(b"abc", "abc")
    assert not constant_time_equals("abc", "abd")
    assert not constant_time_equals("abc", "abcd")


def test_webhook_secrets_are_valid_telegram_secret_tokens_and_unique() -> None:
    secrets = {new_webhook_secret() for _ in range(50)}
    assert len(secrets) == 50
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{43}", s) for s in secrets)


def test_passwords_hash_with_argon2id_and_verify() -> None:
    hashed = hash_password("correct horse")
    assert hashed.startswith("$argon2id$")
    assert "correct horse" not in hashed
    assert verify_password(hashed, "correct horse")
    assert not verify_password(hashed, "Correct horse")
    assert not verify_password("not a hash", "correct horse")
    assert not password_needs_rehash(hashed)
    weak = "$argon2id$v=19$m=8,t=1,p=1$c29tZXNhbHQ$n0Yp0rHuXc+Fh7iZFQqjiw"
    assert password_needs_rehash(weak)
    assert password_needs_rehash("not a hash")
