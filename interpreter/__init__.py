"""BotSpec v1 and the reference interpreter.

Key contracts:

- ``docs/botspec.md`` is normative; ``Interpreter(spec).step(input)`` implements it
  and every generated bot.js must agree with it byte for byte (RFC 8785 output).
- ``step`` is pure: no clock but ``context.now``, no randomness, no I/O; an apiCall
  comes back as ``pending`` and its result goes in as ``resume``.
- ``validate_spec`` never raises for a bad spec: it returns every ``SpecError``
  (pointer, stable code, sentence), sorted by pointer.
- Host code (``events``, ``host``, ``conversation``) is shared by every engine;
  engines never see raw Telegram updates.
"""

from botkiln.interpreter.canonical import canonical_json, spec_hash
from botkiln.interpreter.engine import Interpreter
from botkiln.interpreter.errors import BotkilnError, SpecError, SpecInvalid
from botkiln.interpreter.events import normalize_update
from botkiln.interpreter.validation import validate_spec

__all__ = [
    "BotkilnError",
    "Interpreter",
    "SpecError",
    "SpecInvalid",
    "canonical_json",
    "normalize_update",
    "spec_hash",
    "validate_spec",
]
