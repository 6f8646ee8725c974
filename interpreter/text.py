"""Text helpers with one exact meaning in every engine (docs/botspec.md §2.3, §11.1).

All lengths and positions are in Unicode code points. Nothing here depends on the
Unicode tables of the running interpreter beyond ``fold``'s fixed range, which
has been stable across Unicode versions.
"""

from __future__ import annotations

BLANK = frozenset("\t\n\r ")
"""The code points a blank string consists of (§2.3)."""

SEPARATORS = frozenset(
    "\t\n\r \x0b\x0c\xa0" + "".join(c for c in "!\"#$%&'()*+,-./:;<=>?@[\\]^`{|}~") + "«»—–…“”„‘’¿¡·"
)
"""Code points that separate words (§2.3); ``_`` is a word character."""

FOLD_LIMIT = 0x52F
MESSAGE_LIMIT = 4096
CAPTION_LIMIT = 1024


def is_blank(text: str) -> bool:
    """True if ``text`` holds only tab, LF, CR and space (or nothing)."""
    return all(c in BLANK for c in text)


def trim(text: str) -> str:
    """``text`` without leading and trailing blank code points."""
    return text.strip("\t\n\r ")


def _fold_table() -> dict[int, int]:
    table: dict[int, int] = {}
    for c in range(FOLD_LIMIT + 1):
        lower = chr(c).lower()
        if len(lower) == 1 and lower != chr(c):
            table[c] = ord(lower)
    return table


_FOLD = _fold_table()


def fold(text: str) -> str:
    """Per-code-point lowercase for U+0000..U+052F (§2.3).

    A code point folds when its Unicode lowercase mapping is exactly one code
    point; everything else, and everything above U+052F, is kept.
    """
    return text.translate(_FOLD)


def words(text: str) -> tuple[str, ...]:
    """The maximal runs of non-separators of ``fold(text)``."""
    out: list[str] = []
    current: list[str] = []
    for c in fold(text):
        if c in SEPARATORS:
            if current:
                out.append("".join(current))
                current = []
        else:
            current.append(c)
    if current:
        out.append("".join(current))
    return tuple(out)


def contains_run(haystack: tuple[str, ...], needle: tuple[str, ...]) -> bool:
    """True if ``needle`` is non-empty and a contiguous run of ``haystack``."""
    n = len(needle)
    if n == 0:
        return False
    return any(haystack[i : i + n] == needle for i in range(len(haystack) - n + 1))


def compare(a: str, b: str) -> int:
    """-1, 0 or 1 by code point order (Python's own string order)."""
    return (a > b) - (a < b)


def split_message(text: str, limit: int = MESSAGE_LIMIT) -> list[str]:
    """Chunks of at most ``limit`` code points, blank ones dropped (§11.1).

    A cut goes after the last LF in the window (if not at index 0), else after the
    last space (same condition), else after exactly ``limit`` code points.
    """
    chunks: list[str] = []
    rest = text
    while len(rest) > limit:
        window = rest[:limit]
        cut = window.rfind("\n")
        if cut <= 0:
            cut = window.rfind(" ")
        end = cut + 1 if cut > 0 else limit
        chunks.append(rest[:end])
        rest = rest[end:]
    chunks.append(rest)
    return [c for c in chunks if not is_blank(c)]
