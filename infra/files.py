"""Reading user files for the CLI: one place that turns I/O and JSON failures into
``UnusableInput`` with a sentence naming the file, the line and the column."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from botkiln.interpreter.errors import UnusableInput

MAX_INPUT_BYTES = 16 * 1024 * 1024


def read_text(path: str | Path) -> str:
    """The UTF-8 text of ``path``.

    Raises:
        UnusableInput: missing, unreadable, too large or not UTF-8.
    """
    p = Path(path)
    try:
        if p.stat().st_size > MAX_INPUT_BYTES:
            raise UnusableInput(f"{path}: larger than {MAX_INPUT_BYTES} bytes")
        return p.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise UnusableInput(f"{path}: no such file") from None
    except IsADirectoryError:
        raise UnusableInput(f"{path}: is a directory") from None
    except PermissionError:
        raise UnusableInput(f"{path}: permission denied") from None
    except UnicodeDecodeError as exc:
        raise UnusableInput(f"{path}: not UTF-8 (byte {exc.start})") from None


def parse_json(text: str, source: str) -> Any:
    """``text`` parsed as JSON; errors name ``source`` with line and column.

    Raises:
        UnusableInput: not JSON.
    """
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise UnusableInput(f"{source}:{exc.lineno}:{exc.colno}: not JSON: {exc.msg}") from None
    except RecursionError:
        raise UnusableInput(f"{source}: JSON nested too deeply") from None


def load_json(path: str | Path) -> tuple[Any, int]:
    """(document, size in bytes) of a JSON file."""
    text = read_text(path)
    return parse_json(text, str(path)), len(text.encode("utf-8"))
