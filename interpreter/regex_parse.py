"""The BotSpec regex dialect's syntax: pattern text -> syntax tree or ``RegexError``.

The normative definition is docs/regex.md; section numbers below refer to it.
Invariants:

- Everything is counted in code points; a pattern longer than ``MAX_PATTERN``
  code points is rejected before it is read.
- The parse is one left-to-right pass; the first problem met is the one
  reported, with the 0-based code-point ``index`` the document names for it.
- A tree holds only four node kinds: ``Chars`` (a set of code points matching
  one code point), ``Seq``, ``Alt`` and ``Repeat``. Groups leave no node; the
  ignored ``^``/``$`` anchors leave nothing at all.
- A ``Chars`` set is a tuple of sorted, disjoint, non-adjacent inclusive ranges.

The module is longer than most because every rejection carries its own sentence;
the grammar itself is one recursive-descent pass and reads best in one place.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from typing import Final, NoReturn

MAX_PATTERN: Final = 256
MAX_COUNT: Final = 100
MAX_CODE_POINT: Final = 0x10FFFF

SYNTAX: Final = "regex-syntax"
UNSUPPORTED: Final = "regex-unsupported"
TOO_COMPLEX: Final = "regex-too-complex"

Ranges = tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class RegexError:
    """A pattern problem: stable ``code``, 0-based code-point ``index``, a sentence."""

    code: str
    index: int
    message: str

    def __str__(self) -> str:
        return f"{self.message} [{self.code}]"


@dataclass(frozen=True)
class Chars:
    """Matches one code point that is in ``ranges``."""

    ranges: Ranges


@dataclass(frozen=True)
class Seq:
    """Matches its items one after another; no items matches the empty string."""

    items: tuple[Node, ...]


@dataclass(frozen=True)
class Alt:
    """Matches what any one of its (two or more) options matches."""

    options: tuple[Node, ...]


@dataclass(frozen=True)
class Repeat:
    """``node`` at least ``low`` and at most ``high`` (``None``: unbounded) times."""

    node: Node
    low: int
    high: int | None


Node = Chars | Seq | Alt | Repeat


def normalise(ranges: list[tuple[int, int]]) -> Ranges:
    """Sort and merge overlapping or adjacent ranges."""
    out: list[tuple[int, int]] = []
    for lo, hi in sorted(ranges):
        if out and lo <= out[-1][1] + 1:
            if hi > out[-1][1]:
                out[-1] = (out[-1][0], hi)
        else:
            out.append((lo, hi))
    return tuple(out)


def complement(ranges: Ranges) -> Ranges:
    """Every code point 0..10FFFF not in ``ranges``."""
    out: list[tuple[int, int]] = []
    start = 0
    for lo, hi in ranges:
        if lo > start:
            out.append((start, lo - 1))
        start = hi + 1
    if start <= MAX_CODE_POINT:
        out.append((start, MAX_CODE_POINT))
    return tuple(out)


ANY: Final[Ranges] = ((0, MAX_CODE_POINT),)
_DIGIT: Final[Ranges] = ((0x30, 0x39),)
_WORD: Final[Ranges] = ((0x30, 0x39), (0x41, 0x5A), (0x5F, 0x5F), (0x61, 0x7A))
_SPACE: Final[Ranges] = ((0x09, 0x0D), (0x20, 0x20))
CLASS_ESCAPES: Final[dict[str, Ranges]] = {
    "d": _DIGIT,
    "D": complement(_DIGIT),
    "w": _WORD,
    "W": complement(_WORD),
    "s": _SPACE,
    "S": complement(_SPACE),
}
CONTROL_ESCAPES: Final = {"n": 0x0A, "r": 0x0D, "t": 0x09, "f": 0x0C, "v": 0x0B}
PUNCTUATION: Final = frozenset(string.punctuation)
SYNTAX_CHARACTERS: Final = frozenset("\\^$.|?*+()[]{}")
_HEX: Final = frozenset("0123456789abcdefABCDEF")
_DECIMAL: Final = frozenset("0123456789")
_NONZERO: Final = _DECIMAL - {"0"}
_QUANTIFIERS: Final = frozenset("*+?{")

_UNSUPPORTED_ESCAPES: Final = {
    "b": ("word boundary", "the dialect has no assertions"),
    "B": ("non-word-boundary", "the dialect has no assertions"),
    "A": ("anchor", "the pattern always matches the whole value"),
    "Z": ("anchor", "the pattern always matches the whole value"),
    "z": ("anchor", "the pattern always matches the whole value"),
    "G": ("anchor", "the pattern always matches the whole value"),
    "k": ("named backreference", "the dialect has no backreferences"),
    "p": ("Unicode property escape", "write the code points as a class, e.g. [a-z]"),
    "P": ("Unicode property escape", "write the code points as a class, e.g. [^a-z]"),
    "x": ("hex escape", "write \\uXXXX or \\u{X...}"),
    "c": ("control escape", "write \\uXXXX"),
    "a": ("bell escape", "write \\u0007"),
    "N": ("named character escape", "write \\u{X...}"),
    "U": ("8-digit escape", "write \\u{X...}"),
    "0": ("octal or NUL escape", "write \\u0000"),
}
_UNSUPPORTED_GROUPS: Final = {
    "=": ("lookahead", "(?="),
    "!": ("negative lookahead", "(?!"),
    "P": ("named group", "(?P"),
    ">": ("atomic group", "(?>"),
    "#": ("comment group", "(?#"),
    "(": ("conditional group", "(?("),
}
_GROUP_FIX: Final = {
    "inline flag group": 'set "ignoreCase" on the step instead',
    "named group": 'groups capture nothing; write "(" or "(?:"',
}


def _is_count(text: str) -> bool:
    return text == "0" or text[:1] in _NONZERO


class _Fail(Exception):
    def __init__(self, error: RegexError) -> None:
        self.error = error


def _fail(code: str, index: int, message: str) -> NoReturn:
    raise _Fail(RegexError(code, index, message))


def parse(pattern: str) -> Node | RegexError:
    """The syntax tree of ``pattern``, or the first problem in it (§2, §3, §7.1)."""
    if len(pattern) > MAX_PATTERN:
        return RegexError(
            TOO_COMPLEX,
            MAX_PATTERN,
            f"pattern of {len(pattern)} code points is too long at {MAX_PATTERN}; "
            f"a pattern has at most {MAX_PATTERN} code points",
        )
    try:
        return _Parser(pattern).pattern()
    except _Fail as failure:
        return failure.error


class _Parser:
    def __init__(self, src: str) -> None:
        self.src = src
        self.pos = 0
        self.end = len(src)

    def peek(self, offset: int = 0) -> str:
        at = self.pos + offset
        return self.src[at] if at < self.end else ""

    def pattern(self) -> Node:
        if self.peek() == "^":
            self.pos = 1
        node = self.alternation()
        if self.pos < self.end:  # only a ")" stops an alternation early
            _fail(SYNTAX, self.pos, f'unmatched ")" at {self.pos}; no group is open')
        return node

    def alternation(self) -> Node:
        options = [self.sequence()]
        while self.peek() == "|":
            self.pos += 1
            options.append(self.sequence())
        return options[0] if len(options) == 1 else Alt(tuple(options))

    def sequence(self) -> Node:
        items: list[Node] = []
        while self.pos < self.end and self.src[self.pos] not in "|)":
            if self.src[self.pos] in _QUANTIFIERS:
                self.misplaced_quantifier(None)
            atom = self.atom()
            if atom is None:
                continue
            if self.peek() in _QUANTIFIERS:
                start = self.pos
                low, high = self.quantifier()
                if self.peek() in _QUANTIFIERS:
                    self.misplaced_quantifier(self.src[start : self.pos])
                atom = Repeat(atom, low, high)
            items.append(atom)
        return items[0] if len(items) == 1 else Seq(tuple(items))

    def atom(self) -> Node | None:
        at = self.pos
        c = self.src[at]
        if c == "(":
            return self.group()
        if c == "[":
            return self.char_class()
        self.pos += 1
        if c == ".":
            return Chars(ANY)
        if c == "\\":
            item = self.escape(at)
            return Chars(item if isinstance(item, tuple) else ((item, item),))
        if c == "$" and at == self.end - 1:
            return None
        if c in "^$":
            _fail(
                UNSUPPORTED,
                at,
                f'unsupported anchor "{c}" at {at}; the pattern always matches the whole value, '
                f'so "^" is allowed only first and "$" only last (write \\{c} for the character)',
            )
        if c in "]}":
            _fail(SYNTAX, at, f'unmatched "{c}" at {at}; write \\{c} for the character')
        return Chars(((ord(c), ord(c)),))

    def group(self) -> Node:
        start = self.pos
        self.pos += 1
        if self.peek() == "?":
            self.group_kind(start)
        inner = self.alternation()
        if self.pos >= self.end:
            _fail(SYNTAX, start, f'unterminated group "(" at {start}; expected ")" before the end')
        self.pos += 1
        return inner

    def group_kind(self, start: int) -> None:
        after = self.peek(1)
        if after == ":":
            self.pos += 2
            return
        if after == "<":
            third = self.peek(2)
            if third in ("=", "!"):
                what = "lookbehind" if third == "=" else "negative lookbehind"
                found = "(?<" + third
            else:
                what, found = "named group", "(?<"
        elif after in _UNSUPPORTED_GROUPS:
            what, found = _UNSUPPORTED_GROUPS[after]
        elif after.isascii() and (after.isalpha() or after == "-"):
            what, found = "inline flag group", "(?" + after
        else:
            _fail(
                SYNTAX,
                start,
                f'invalid group "(?{after}" at {start}; expected "(?:" or "(" (write \\( or \\? for the characters)',
            )
        _fail(
            UNSUPPORTED,
            start,
            f'unsupported {what} "{found}" at {start}; '
            + _GROUP_FIX.get(what, 'the dialect has only "( )" and "(?: )" groups'),
        )

    def quantifier(self) -> tuple[int, int | None]:
        start = self.pos
        c = self.src[start]
        self.pos += 1
        if c == "*":
            return 0, None
        if c == "+":
            return 1, None
        if c == "?":
            return 0, 1
        low_text, high_text = self.braces(start)
        if max(len(low_text), len(high_text or "")) > 3 or any(int(t) > MAX_COUNT for t in (low_text, high_text) if t):
            _fail(
                TOO_COMPLEX,
                start,
                f'repetition count in "{self.src[start : self.pos]}" at {start} is over '
                f"{MAX_COUNT}; counts are at most {MAX_COUNT}",
            )
        low = int(low_text)
        high = None if high_text == "" else int(high_text or low_text)
        if high is not None and low > high:
            _fail(
                SYNTAX,
                start,
                f'quantifier "{self.src[start : self.pos]}" at {start} has its minimum above its maximum',
            )
        return low, high

    def braces(self, start: int) -> tuple[str, str | None]:
        """Read ``{n}``, ``{n,}`` or ``{n,m}`` after ``{`` at ``start``: (n, None | "" | m)."""
        self.pos = start + 1
        low = self.digits()
        high: str | None = None
        valid = _is_count(low)
        if valid and self.peek() == ",":
            self.pos += 1
            high = self.digits()
            valid = high == "" or _is_count(high)
        if not valid or self.peek() != "}":
            found = self.src[start : self.pos + 1]
            _fail(
                SYNTAX,
                start,
                f'invalid quantifier "{found}" at {start}; expected {{n}}, {{n,}} or {{n,m}} '
                "with decimal numbers without leading zeros (write \\{ for the character)",
            )
        self.pos += 1
        return low, high

    def digits(self) -> str:
        start = self.pos
        while self.peek() in _DECIMAL:
            self.pos += 1
        return self.src[start : self.pos]

    def misplaced_quantifier(self, previous: str | None) -> NoReturn:
        at = self.pos
        c = self.src[at]
        if c == "{":
            self.braces(at)
        found = self.src[at : self.pos] if c == "{" else c
        if previous is None:
            _fail(
                SYNTAX,
                at,
                f'nothing to repeat before "{found}" at {at}; a quantifier must follow a '
                f"character, class, escape or group (write \\{c} for the character)",
            )
        if c == "?":
            _fail(
                UNSUPPORTED,
                at,
                f'unsupported lazy quantifier "{previous}?" at {at}; remove the "?" '
                "(a whole-value match does not depend on laziness)",
            )
        if c == "+":
            _fail(
                UNSUPPORTED,
                at,
                f'unsupported possessive quantifier "{previous}+" at {at}; the dialect has no possessive quantifiers',
            )
        _fail(
            SYNTAX,
            at,
            f'quantifier "{found}" at {at} follows the quantifier "{previous}"; '
            "put the repeated part in a group, e.g. (?:a*){2}",
        )

    def escape(self, at: int, in_class: bool = False) -> int | Ranges:
        """The escape whose backslash is at ``at`` (``pos`` is just after it)."""
        c = self.peek()
        if not c:
            _fail(SYNTAX, at, f'lone "\\" at {at} ends the pattern; write \\\\ for the character')
        self.pos += 1
        if c in CLASS_ESCAPES:
            return CLASS_ESCAPES[c]
        if c in CONTROL_ESCAPES:
            return CONTROL_ESCAPES[c]
        if c in PUNCTUATION:
            return ord(c)
        if c == "u":
            return self.unicode_escape(at)
        if c in _DECIMAL and c != "0":
            while self.peek() in _DECIMAL:
                self.pos += 1
            _fail(
                UNSUPPORTED,
                at,
                f'unsupported backreference "{self.src[at : self.pos]}" at {at}; the dialect has no backreferences',
            )
        if c == "b" and in_class:
            _fail(UNSUPPORTED, at, f'unsupported backspace escape "\\b" at {at}; write \\u0008')
        if c in _UNSUPPORTED_ESCAPES:
            what, fix = _UNSUPPORTED_ESCAPES[c]
            _fail(UNSUPPORTED, at, f'unsupported {what} "\\{c}" at {at}; {fix}')
        _fail(
            SYNTAX,
            at,
            f'unknown escape "\\{c}" at {at}; expected one of \\d \\D \\w \\W \\s \\S \\n \\r '
            "\\t \\f \\v \\u, or \\ before ASCII punctuation",
        )

    def unicode_escape(self, at: int) -> int:
        digits: str
        if self.peek() == "{":
            close = self.src.find("}", self.pos)
            digits = self.src[self.pos + 1 : close] if close > 0 else ""
            valid = 0 < len(digits) <= 6 and all(d in _HEX for d in digits)
            if valid and int(digits, 16) <= MAX_CODE_POINT:
                self.pos = close + 1
                return int(digits, 16)
            found = self.src[at : close + 1] if close > 0 else self.src[at : at + 10]
            expected = "1 to 6 hex digits up to 10FFFF and then }"
        else:
            digits = self.src[self.pos : self.pos + 4]
            if len(digits) == 4 and all(d in _HEX for d in digits):
                self.pos += 4
                return int(digits, 16)
            found = self.src[at : at + 2 + len(digits)]
            expected = "exactly 4 hex digits or {...}"
        _fail(SYNTAX, at, f'invalid escape "{found}" at {at}; expected {expected} after \\u')

    def char_class(self) -> Node:
        start = self.pos
        self.pos += 1
        negated = self.peek() == "^"
        if negated:
            self.pos += 1
        if self.peek() == "]":
            found = "[^]" if negated else "[]"
            _fail(
                SYNTAX,
                start,
                f'empty class "{found}" at {start}; a class needs a member (write \\] for the character)',
            )
        members: list[tuple[int, int]] = []
        if self.peek() == "-":
            members.append((0x2D, 0x2D))
            self.pos += 1
        while True:
            c = self.peek()
            if not c:
                self.unterminated_class(start)
            if c == "]":
                self.pos += 1
                break
            if c == "-" and self.peek(1) == "]":
                members.append((0x2D, 0x2D))
                self.pos += 1
                continue
            low_at = self.pos
            low = self.class_atom(start)
            if self.peek() != "-" or self.peek(1) == "]":
                members.extend(((low, low),) if isinstance(low, int) else low)
                continue
            self.pos += 1
            high_at = self.pos
            high = self.class_atom(start)
            for item, where in ((low, low_at), (high, high_at)):
                if isinstance(item, tuple):
                    _fail(
                        SYNTAX,
                        where,
                        f'class escape "{self.src[where : where + 2]}" at {where} cannot be '
                        "a range endpoint; list it beside the range instead",
                    )
            assert isinstance(low, int) and isinstance(high, int)
            if low > high:
                _fail(
                    SYNTAX,
                    low_at,
                    f'range "{self.src[low_at : self.pos]}" at {low_at} is out of order; '
                    "its start must not be above its end",
                )
            members.append((low, high))
        ranges = normalise(members)
        return Chars(complement(ranges) if negated else ranges)

    def class_atom(self, start: int) -> int | Ranges:
        at = self.pos
        c = self.peek()
        if not c:
            self.unterminated_class(start)
        self.pos += 1
        if c == "\\":
            return self.escape(at, in_class=True)
        if c == "[":
            _fail(SYNTAX, at, f'"[" at {at} inside a class; write \\[ for the character')
        if c == "-":
            _fail(
                SYNTAX,
                at,
                f'unescaped "-" at {at} inside a class; a literal "-" must be first, last or written \\-',
            )
        return ord(c)

    def unterminated_class(self, start: int) -> NoReturn:
        _fail(SYNTAX, start, f'unterminated class "[" at {start}; expected "]" before the end')
