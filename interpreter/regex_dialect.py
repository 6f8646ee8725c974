"""The BotSpec regex dialect: one meaning in Python and JavaScript (docs/regex.md).

A pattern is parsed by ``regex_parse``, counted, turned into a Thompson NFA and
matched by simulating that NFA over the value's code points, never by a native
engine. Invariants:

- A match is always a match of the whole value; the result is only a boolean.
- Matching takes O(len(value) x states) steps whatever the pattern: there is no
  backtracking. Values longer than ``MAX_VALUE`` code points never match.
- The NFA has at most ``MAX_STATES`` states as counted by ``state_count``
  (docs/regex.md §5), the count a JavaScript implementation reproduces exactly.
- The simulation's state sets are memoised as a lazily built DFA whose size is
  bounded; the memo changes speed only, never a result.
- ``compile_pattern`` is cached, and a ``Regex`` may be shared between threads.
"""

from __future__ import annotations

import threading
from bisect import bisect_right
from dataclasses import dataclass
from functools import lru_cache
from typing import Final

from botkiln.interpreter.errors import BotkilnError
from botkiln.interpreter.regex_parse import (
    TOO_COMPLEX,
    Alt,
    Chars,
    Node,
    Ranges,
    RegexError,
    Seq,
    parse,
)
from botkiln.interpreter.text import fold

__all__ = [
    "MAX_STATES",
    "MAX_VALUE",
    "Regex",
    "RegexError",
    "RegexInvalid",
    "check_pattern",
    "compile_pattern",
    "fold",
    "state_count",
]

MAX_STATES: Final = 500
MAX_VALUE: Final = 1024

# Memo bounds per compiled pattern (speed only; docs/regex.md §10).
_DFA_STATES: Final = 1024
_DFA_BITS: Final = 1 << 20
_DFA_EDGES: Final = 8192
_CLASS_MEMO: Final = 1024
# Transition plan tuning (see ``_plan``).
_CHUNK: Final = 8
_SHIFTS: Final = 16
_SHIFT_USERS: Final = 4
_BEHIND: Final = 4
_WINDOW: Final = (1 << 16) - 1
_SPARSE: Final = 12


class RegexInvalid(BotkilnError):
    """Raised by ``compile_pattern`` for a pattern outside the dialect."""

    def __init__(self, error: RegexError) -> None:
        super().__init__(str(error))
        self.error = error


def state_count(node: Node) -> int:
    """States of ``node``'s NFA fragment, the match state excluded (docs/regex.md §5)."""
    if isinstance(node, Chars):
        return 1
    if isinstance(node, Seq):
        return sum(state_count(item) for item in node.items)
    if isinstance(node, Alt):
        return 1 + sum(state_count(option) for option in node.options)
    inner = state_count(node.node)
    if node.high is None:
        return max(node.low, 1) * inner + 1
    return node.low * inner + (node.high - node.low) * (inner + 1)


class _Nfa:
    """Thompson NFA built back to front: ``build(node, next)`` returns the entry state.

    A state is a CHAR state (a code-point set and one successor), a SPLIT state
    (successors reached without reading) or the single MATCH state.
    """

    def __init__(self) -> None:
        self.sets: list[Ranges | None] = [None]  # state 0 is MATCH
        self.succ: list[list[int]] = [[]]

    def add(self, ranges: Ranges | None, succ: list[int]) -> int:
        self.sets.append(ranges)
        self.succ.append(succ)
        return len(self.sets) - 1

    def build(self, node: Node, nxt: int) -> int:
        if isinstance(node, Chars):
            return self.add(node.ranges, [nxt])
        if isinstance(node, Seq):
            for item in reversed(node.items):
                nxt = self.build(item, nxt)
            return nxt
        if isinstance(node, Alt):
            return self.add(None, [self.build(option, nxt) for option in node.options])
        inner, low, high = node.node, node.low, node.high
        if high is None:
            loop = self.add(None, [])
            body = self.build(inner, loop)
            self.succ[loop] = [body, nxt]
            tail = loop if low == 0 else body
            for _ in range(low - 1):
                tail = self.build(inner, tail)
            return tail
        tail = nxt
        for _ in range(high - low):
            tail = self.add(None, [self.build(inner, tail), nxt])
        for _ in range(low):
            tail = self.build(inner, tail)
        return tail


def _closures(nfa: _Nfa, bits: list[int]) -> list[int]:
    """For every state, the mask of CHAR and MATCH states reachable without reading.

    Tarjan's algorithm over the SPLIT edges (which may form cycles, e.g. ``(a?)*``):
    it yields each strongly connected component after every component it reaches.
    """
    n = len(nfa.sets)
    succ = [nfa.succ[s] if nfa.sets[s] is None else [] for s in range(n)]
    closure = [0] * n
    index = [-1] * n
    low = [0] * n
    on_stack = [False] * n
    stack: list[int] = []
    counter = 0
    for root in range(n):
        if index[root] >= 0:
            continue
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack[root] = True
        work = [(root, 0)]
        while work:
            v, i = work[-1]
            if i < len(succ[v]):
                work[-1] = (v, i + 1)
                w = succ[v][i]
                if index[w] < 0:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on_stack[w] = True
                    work.append((w, 0))
                elif on_stack[w]:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[v])
            if low[v] == index[v]:
                members: list[int] = []
                while not members or members[-1] != v:
                    members.append(stack.pop())
                    on_stack[members[-1]] = False
                mask = 0
                for m in members:
                    mask |= bits[m]
                    for w in succ[m]:
                        mask |= closure[w]
                for m in members:
                    closure[m] = mask
    return closure


@dataclass(frozen=True)
class _Plan:
    """How to compute the union of follow masks of a set of live CHAR states in bulk.

    ``follow[p]`` is the mask reached after the CHAR state at bit ``p`` reads a code
    point. Every bit of every follow mask is served by exactly one of: a shift
    (``(live & users) << d`` for states reaching the state ``d`` bits away), a
    group (``target`` when any of ``users`` is live: states sharing a remainder),
    or the state's own remainder in ``rest`` (states in ``irregular``).
    """

    ups: list[tuple[int, int]]
    downs: list[tuple[int, int]]
    groups: list[tuple[int, int]]
    rest: list[int]
    irregular: int


def _plan(follow: list[int]) -> _Plan:
    """Choose shifts and groups; only bits near the state itself vote for shifts."""
    offsets: list[list[int]] = []
    users: dict[int, int] = {}
    for p, reach in enumerate(follow):
        base = max(p - _BEHIND, 0)
        window = reach >> base & _WINDOW
        near: list[int] = []
        while window:
            low = window & -window
            near.append(base + low.bit_length() - 1 - p)
            window ^= low
        for d in near:
            users[d] = users.get(d, 0) | 1 << p
        offsets.append(near)
    ranked = sorted(users.items(), key=lambda item: (-item[1].bit_count(), item[0]))
    chosen = {d: mask for d, mask in ranked[:_SHIFTS] if mask.bit_count() >= _SHIFT_USERS}
    rest = list(follow)
    sharing: dict[int, int] = {}
    for p, near in enumerate(offsets):
        for d in near:
            if d in chosen:
                rest[p] &= ~(1 << (p + d))
        if rest[p]:
            sharing[rest[p]] = sharing.get(rest[p], 0) | 1 << p
    groups = [(mask, target) for target, mask in sharing.items() if mask.bit_count() > 1]
    irregular = 0
    for mask, _ in groups:
        for p in range(mask.bit_length()):
            if mask >> p & 1:
                rest[p] = 0
    for p, reach in enumerate(rest):
        if reach:
            irregular |= 1 << p
    return _Plan(
        ups=[(d, mask) for d, mask in chosen.items() if d > 0],
        downs=[(-d, mask) for d, mask in chosen.items() if d <= 0],
        groups=groups,
        rest=rest,
        irregular=irregular,
    )


class _Dfa:
    """Memo of reached state sets (as masks) and their transitions per code-point class."""

    def __init__(self, start: int) -> None:
        self.masks: list[int] = []
        self.ids: dict[int, int] = {}
        self.rows: list[dict[int, int]] = []
        self.edges = 0
        self.start = self.intern(start)
        self.dead = self.intern(0)

    def intern(self, mask: int) -> int:
        found = self.ids.get(mask)
        if found is None:
            found = self.ids[mask] = len(self.masks)
            self.masks.append(mask)
            self.rows.append({})
        return found


class Regex:
    """A compiled pattern of the dialect; ``fullmatch`` is its only question."""

    __slots__ = (
        "_accept",
        "_bounds",
        "_cap",
        "_chunks",
        "_classes",
        "_dfa",
        "_downs",
        "_follow",
        "_groups",
        "_irregular",
        "_irregular_bytes",
        "_lock",
        "_match",
        "_start",
        "_ups",
        "pattern",
        "states",
    )

    def __init__(self, pattern: str, tree: Node) -> None:
        self.pattern = pattern
        nfa = _Nfa()
        entry = nfa.build(tree, 0)
        self.states = len(nfa.sets)
        # Back-to-front building makes a CHAR state's CHAR successor the state created
        # just before it; numbering bits in reverse creation order puts it one bit up.
        char_states = [s for s in reversed(range(self.states)) if nfa.sets[s] is not None]
        bits = [0] * self.states
        bits[0] = self._match = 1
        for position, s in enumerate(char_states, start=1):
            bits[s] = 1 << position
        closure = _closures(nfa, bits)
        self._start = closure[entry]
        follow = [0] + [closure[nfa.succ[s][0]] for s in char_states]
        plan = _plan(follow)
        self._ups, self._downs, self._groups = plan.ups, plan.downs, plan.groups
        self._follow, self._irregular = plan.rest, plan.irregular
        edges = sorted({e for s in char_states for r in nfa.sets[s] or () for e in (r[0], r[1] + 1)})
        self._bounds = edges
        by_set: dict[Ranges, int] = {}
        for s in char_states:
            ranges = nfa.sets[s] or ()
            by_set[ranges] = by_set.get(ranges, 0) | bits[s]
        self._accept = [0] * (len(edges) + 1)
        for ranges, mask in by_set.items():
            for lo, hi in ranges:
                for k in range(bisect_right(edges, lo), bisect_right(edges, hi) + 1):
                    self._accept[k] |= mask
        self._chunks: list[dict[int, int]] = [{} for _ in range((len(char_states) + 1 + _CHUNK - 1) // _CHUNK)]
        self._irregular_bytes = [j for j in range(len(self._chunks)) if self._irregular >> (j * _CHUNK) & 0xFF]
        self._classes: dict[str, int] = {}
        self._cap = min(_DFA_STATES, max(64, _DFA_BITS // len(follow)))
        self._dfa = _Dfa(self._start)
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Regex({self.pattern!r})"

    def fullmatch(self, value: str, *, ignore_case: bool = False) -> bool:
        """True when the pattern matches all of ``value`` (docs/regex.md §6).

        With ``ignore_case`` the value is ``fold``-ed first; the pattern is used
        as written, so it should be written in lowercase.
        """
        if len(value) > MAX_VALUE:
            return False
        if ignore_case:
            value = fold(value)
        dfa = self._dfa
        matched = self._run(dfa, value)
        if len(dfa.masks) > self._cap or dfa.edges > _DFA_EDGES:
            self._dfa = _Dfa(self._start)
        return matched

    def _run(self, dfa: _Dfa, value: str) -> bool:
        classes, rows, dead = self._classes, dfa.rows, dfa.dead
        state = dfa.start
        for c in value:
            k = classes.get(c)
            if k is None:
                k = self._classify(c)
            nxt = rows[state].get(k)
            if nxt is None:
                nxt = self._step(dfa, state, k)
            if nxt == dead:
                return False
            state = nxt
        return bool(dfa.masks[state] & self._match)

    def _classify(self, c: str) -> int:
        k = bisect_right(self._bounds, ord(c))
        if len(self._classes) < _CLASS_MEMO:
            self._classes[c] = k
        return k

    def _step(self, dfa: _Dfa, state: int, k: int) -> int:
        """The DFA state after reading a code point of class ``k`` in ``state``.

        The union of the live states' follow masks comes from the plan's shifts
        and groups, then the remainders: bit by bit when few, else through
        per-byte tables filled on first use.
        """
        with self._lock:
            live = dfa.masks[state] & self._accept[k]
            nxt = 0
            for offset, mask in self._ups:
                moved = live & mask
                if moved:
                    nxt |= moved << offset
            for offset, mask in self._downs:
                moved = live & mask
                if moved:
                    nxt |= moved >> offset
            for users, target in self._groups:
                if live & users:
                    nxt |= target
            rest = live & self._irregular
            if rest.bit_count() <= _SPARSE:
                follow = self._follow
                while rest:
                    low = rest & -rest
                    nxt |= follow[low.bit_length() - 1]
                    rest ^= low
            else:
                chunks = self._chunks
                data = rest.to_bytes(len(chunks), "little")
                for j in self._irregular_bytes:
                    byte = data[j]
                    if byte:
                        found = chunks[j].get(byte)
                        nxt |= self._fill(j, byte) if found is None else found
            target = dfa.intern(nxt)
            dfa.rows[state][k] = target
            dfa.edges += 1
            return target

    def _fill(self, j: int, byte: int) -> int:
        mask = 0
        base = j * _CHUNK
        for b in range(_CHUNK):
            if byte >> b & 1:
                mask |= self._follow[base + b]
        self._chunks[j][byte] = mask
        return mask


@lru_cache(maxsize=256)
def _compile(pattern: str) -> Regex | RegexError:
    tree = parse(pattern)
    if isinstance(tree, RegexError):
        return tree
    states = state_count(tree) + 1
    if states > MAX_STATES:
        return RegexError(
            TOO_COMPLEX,
            0,
            f"pattern needs {states} automaton states; at most {MAX_STATES} are allowed "
            "(lower the repetition counts or nest fewer of them)",
        )
    return Regex(pattern, tree)


def check_pattern(pattern: str) -> RegexError | None:
    """The first problem of ``pattern`` in the dialect, or ``None`` when it is valid."""
    compiled = _compile(pattern)
    return compiled if isinstance(compiled, RegexError) else None


def compile_pattern(pattern: str) -> Regex:
    """The compiled ``pattern`` (cached).

    Raises:
        RegexInvalid: the pattern is not in the dialect; ``.error`` says why.
    """
    compiled = _compile(pattern)
    if isinstance(compiled, RegexError):
        raise RegexInvalid(compiled)
    return compiled
