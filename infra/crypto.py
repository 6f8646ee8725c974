"""Secrets at rest and in transit: token encryption, secret comparison, passwords.

Invariants:

- Bot tokens and webhook secrets are stored only as ``SecretBox`` ciphertexts:
  AES-256-GCM with a random 96-bit nonce, and the row they belong to (the
  ``context``, e.g. ``bot:faq:token``) bound in as associated data, so a
  ciphertext copied into another row or column does not decrypt.
- A ciphertext reads ``v1:<key id>:<base64url(nonce || ciphertext || tag)>``. The
  key id is derived from the key itself, so rotation needs no naming: put the new
  key first in ``BOTKILN_SECRET_KEY`` (comma-separated), keep the old ones after it
  until ``needs_reencrypt`` is false for every stored value.
- Secrets are compared in constant time; nothing here logs or puts a secret or a
  key into an exception message or a ``repr``.
- Passwords are hashed with argon2id (argon2-cffi's defaults, ~0.1 s): callers on
  an event loop run these helpers in a thread.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass, field

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from botkiln.interpreter.errors import BotkilnError

KEY_BYTES = 32
_NONCE_BYTES = 12
_VERSION = "v1"
_HASHER = PasswordHasher()


class DecryptionFailed(BotkilnError):
    """A ciphertext is malformed, was made with an unknown key, or was tampered with."""


def parse_secret_keys(value: str) -> tuple[bytes, ...]:
    """The keys in ``BOTKILN_SECRET_KEY``: comma-separated base64, 32 bytes each, newest first.

    Raises:
        ValueError: a sentence saying what is wrong (never the key material).
    """
    parts = [p.strip() for p in value.split(",")]
    if not parts or any(not p for p in parts):
        raise ValueError("must be one or more comma-separated base64 keys")
    keys: list[bytes] = []
    for n, part in enumerate(parts, start=1):
        try:
            key = base64.b64decode(part.replace("-", "+").replace("_", "/") + "=" * (-len(part) % 4), validate=True)
        except (binascii.Error, ValueError):
            raise ValueError(f"key {n} is not valid base64") from None
        if len(key) != KEY_BYTES:
            raise ValueError(f"key {n} decodes to {len(key)} bytes; expected {KEY_BYTES}")
        keys.append(key)
    return tuple(keys)


def generate_secret_key() -> str:
    """A fresh random key for ``BOTKILN_SECRET_KEY`` (standard base64 of 32 bytes)."""
    return base64.b64encode(os.urandom(KEY_BYTES)).decode("ascii")


def key_id(key: bytes) -> str:
    """The public 8-hex-digit id of ``key`` (a hash prefix: it reveals nothing usable)."""
    return hashlib.sha256(b"botkiln-key-id:" + key).hexdigest()[:8]


@dataclass(frozen=True)
class SecretBox:
    """Authenticated encryption of short secrets with rotating keys; ``keys[0]`` encrypts."""

    keys: tuple[bytes, ...] = field(repr=False)

    def __post_init__(self) -> None:
        if not self.keys or any(len(k) != KEY_BYTES for k in self.keys):
            raise ValueError(f"a SecretBox needs one or more {KEY_BYTES}-byte keys")

    @classmethod
    def from_setting(cls, value: str) -> SecretBox:
        """A box from the text of ``BOTKILN_SECRET_KEY``.

        Raises:
            ValueError: the value is malformed (see ``parse_secret_keys``).
        """
        return cls(parse_secret_keys(value))

    def encrypt(self, plaintext: str, *, context: str) -> str:
        """Encrypt ``plaintext`` for the row named by ``context`` (e.g. ``bot:faq:token``)."""
        key = self.keys[0]
        nonce = os.urandom(_NONCE_BYTES)
        sealed = AESGCM(key).encrypt(nonce, plaintext.encode("utf-8"), context.encode("utf-8"))
        body = base64.urlsafe_b64encode(nonce + sealed).decode("ascii").rstrip("=")
        return f"{_VERSION}:{key_id(key)}:{body}"

    def decrypt(self, ciphertext: str, *, context: str) -> str:
        """The plaintext of a value made by ``encrypt`` with the same ``context``.

        Raises:
            DecryptionFailed: malformed, unknown key id, wrong context or tampered.
        """
        version, kid, body = _split(ciphertext)
        if version != _VERSION:
            raise DecryptionFailed(f"unknown ciphertext version {version!r}")
        key = next((k for k in self.keys if key_id(k) == kid), None)
        if key is None:
            raise DecryptionFailed(f"no configured key has id {kid}; was BOTKILN_SECRET_KEY rotated too early?")
        try:
            raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
            plain = AESGCM(key).decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], context.encode("utf-8"))
        except (binascii.Error, ValueError, InvalidTag):
            raise DecryptionFailed(f"ciphertext for {context} does not authenticate") from None
        return plain.decode("utf-8")

    def needs_reencrypt(self, ciphertext: str) -> bool:
        """Whether ``ciphertext`` was made with a key other than the current one."""
        return _split(ciphertext)[1] != key_id(self.keys[0])


def _split(ciphertext: str) -> tuple[str, str, str]:
    parts = ciphertext.split(":")
    if len(parts) != 3 or not all(parts):
        raise DecryptionFailed("not a Botkiln ciphertext (expected version:key-id:body)")
    return parts[0], parts[1], parts[2]


def constant_time_equals(a: str | bytes, b: str | bytes) -> bool:
    """``a == b`` in time that does not depend on where they differ."""
    left = a.encode("utf-8") if isinstance(a, str) else a
    right = b.encode("utf-8") if isinstance(b, str) else b
    return hmac.compare_digest(left, right)


def new_webhook_secret() -> str:
    """A Telegram ``secret_token``: 43 characters from ``A-Za-z0-9_-`` (256 bits)."""
    return secrets.token_urlsafe(32)


def hash_password(password: str) -> str:
    """An argon2id hash of ``password`` (salted; ~0.1 s of CPU)."""
    return _HASHER.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """Whether ``password`` matches ``password_hash``; false for a malformed hash too."""
    try:
        return _HASHER.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def password_needs_rehash(password_hash: str) -> bool:
    """Whether ``password_hash`` was made with weaker parameters than the current ones."""
    try:
        return _HASHER.check_needs_rehash(password_hash)
    except InvalidHashError:
        return True
