"""The AST policy: which JavaScript a ``bot.js`` may contain before it can become a revision.

Concept: :func:`check_source` parses the source with esprima (script goal, strict parse) and
walks the ESTree once, calling the checker that :data:`~.ast_rules.CHECKERS` holds for each
node type; the checkers and the rule ids live in :mod:`.ast_rules` and are documented in
``docs/ast-policy.md``. The policy is an allow-list: a node type without a checker is a
violation, and so is a global name that is neither declared by the script nor an allowed
built-in.

Invariants:

- The result is a value, never an exception: a source over the size cap is one ``too-large``
  violation (and is not parsed); a source esprima rejects gives a :class:`ParseError`;
  otherwise every violation found is reported, sorted by line, column and rule.
- Locations are for humans: ``line`` and ``column`` are 1-based, the column counts Unicode
  code points (a tab is one column), and line breaks are JavaScript's (LF, CR LF, CR, U+2028,
  U+2029). ``context`` is the source line (a window of it, for long lines) with a caret under
  the column.
- Deterministic: the same source, allow-list and cap give the same report.
  :data:`AST_RULES_VERSION` names the rule set and goes into build metadata; it changes
  whenever a rule accepts or rejects something it did not before.
- The walk is iterative, so nesting depth is bounded only by the parser's own limit.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypedDict

import esprima

from .ast_rules import (
    CHECKERS,
    FUNCTION_NODES,
    PATTERN_ROLES,
    SCOPE_NODES,
    Finding,
    Node,
    Role,
    Scope,
    Visit,
    Walk,
    binding_identifiers,
    check_unsupported,
)

__all__ = [
    "AST_RULES_VERSION",
    "DEFAULT_MAX_BYTES",
    "ParseError",
    "PolicyReport",
    "Violation",
    "check_source",
]

AST_RULES_VERSION = "1"
DEFAULT_MAX_BYTES = 256 * 1024

_CONTEXT_SPAN = 60  # characters shown each side of the caret on long lines


class ViolationJson(TypedDict):
    """One violation as ``botkiln js check --json`` prints it."""

    rule: str
    message: str
    line: int
    column: int
    context: str


class ParseErrorJson(TypedDict):
    """The parse error as ``botkiln js check --json`` prints it."""

    line: int
    column: int
    message: str
    context: str


class ReportJson(TypedDict):
    """A whole report as ``botkiln js check --json`` prints it."""

    ok: bool
    rulesVersion: str
    violations: list[ViolationJson]
    parseError: ParseErrorJson | None


@dataclass(frozen=True, slots=True)
class Violation:
    """One rule broken at one place: ``rule`` is a stable id, ``line``/``column`` 1-based."""

    rule: str
    message: str
    line: int
    column: int
    context: str

    def render(self, filename: str) -> str:
        """``FILE:LINE:COL: rule: message`` followed by the indented context lines."""
        return _render(filename, self.line, self.column, self.rule, self.message, self.context)


@dataclass(frozen=True, slots=True)
class ParseError:
    """The source is not a JavaScript script esprima accepts; ``message`` is esprima's."""

    line: int
    column: int
    message: str
    context: str

    def render(self, filename: str) -> str:
        """``FILE:LINE:COL: parse-error: message`` followed by the indented context lines."""
        return _render(filename, self.line, self.column, "parse-error", self.message, self.context)


@dataclass(frozen=True, slots=True)
class PolicyReport:
    """The outcome of one check: violations (sorted), or the parse error that stopped it."""

    violations: tuple[Violation, ...]
    parse_error: ParseError | None = None

    @property
    def ok(self) -> bool:
        """Whether the source may become a revision."""
        return not self.violations and self.parse_error is None

    def render(self, filename: str = "bot.js") -> str:
        """Human-readable text: every problem with its context, then a one-line summary."""
        problems = [self.parse_error] if self.parse_error else list(self.violations)
        lines = [problem.render(filename) for problem in problems]
        if self.parse_error:
            summary = f"{filename}: not parsable as a JavaScript script"
        elif self.violations:
            count = len(self.violations)
            summary = f"{filename}: {count} violation{'s' * (count != 1)}"
        else:
            summary = f"{filename}: ok"
        lines.append(f"{summary} (AST rules v{AST_RULES_VERSION})")
        return "\n".join(lines)

    def as_json(self) -> ReportJson:
        """The report as JSON-ready data."""
        error = self.parse_error
        return {
            "ok": self.ok,
            "rulesVersion": AST_RULES_VERSION,
            "violations": [
                {
                    "rule": v.rule,
                    "message": v.message,
                    "line": v.line,
                    "column": v.column,
                    "context": v.context,
                }
                for v in self.violations
            ],
            "parseError": None
            if error is None
            else {
                "line": error.line,
                "column": error.column,
                "message": error.message,
                "context": error.context,
            },
        }


def check_source(
    source: str, *, allowed_domains: Sequence[str] = (), max_bytes: int = DEFAULT_MAX_BYTES
) -> PolicyReport:
    """Check ``source`` (the text of a bot.js) against the AST policy.

    ``allowed_domains`` are the host patterns URLs in string literals may name (``host`` or
    ``*.host``, the spec's ``security.allowedDomains``); ``max_bytes`` caps the UTF-8 size.

    Raises:
        ValueError: ``max_bytes`` is not positive.
    """
    if max_bytes <= 0:
        raise ValueError(f"max_bytes must be positive, got {max_bytes}")
    text = _SourceText(source)
    size = len(source.encode("utf-8", "surrogatepass"))
    if size > max_bytes:
        message = f"bot.js is {size} bytes, over the {max_bytes}-byte cap; it was not parsed"
        return PolicyReport((text.violation(Finding("too-large", message, 0)),))
    try:
        program = _plain(esprima.parseScript(source, {"range": True}))
    except esprima.Error as exc:
        return PolicyReport((), text.parse_error(exc))
    findings = _walk(program, Walk(tuple(d.strip().lower() for d in allowed_domains)))
    violations = sorted(
        {text.violation(finding) for finding in findings},
        key=lambda v: (v.line, v.column, v.rule, v.message),
    )
    return PolicyReport(tuple(violations))


def _walk(program: Node, walk: Walk) -> list[Finding]:
    """Every finding in ``program``: each reachable node, its checker, then its children."""
    declared = _declarations(program)
    findings: list[Finding] = []
    stack = [Visit(program, "value", None, Scope(frozenset(), None), in_function=False)]
    while stack:
        visit = stack.pop()
        node = visit.node
        checker = CHECKERS.get(node["type"])
        if checker is None:
            findings += check_unsupported(visit, walk)
            continue
        findings += checker(visit, walk)
        scope, in_function = visit.scope, visit.in_function
        if node["type"] in SCOPE_NODES:
            names = frozenset(declared.get(id(node), ()))
            scope = Scope(names, scope, top_level=node["type"] == "Program")
            in_function = in_function or node["type"] in FUNCTION_NODES
        stack += (
            Visit(child, role, node, scope, in_function)
            for child, role in _CHILDREN.get(node["type"], _generic)(node, visit.role)
        )
    return findings


def _plain(root: Any) -> dict[str, Any]:
    """esprima's node objects as plain ESTree dicts (what ``esprima.toDict`` gives, faster)."""
    plain: dict[str, Any] = {}
    stack = [(root, plain)]
    while stack:
        source, target = stack.pop()
        for key, value in vars(source).items():
            if not key.startswith("_"):
                target[_ESTREE_NAMES.get(key, key)] = _shell(stack, value)
    return plain


_ESTREE_NAMES = {"isAsync": "async", "allowAwait": "await"}


def _shell(stack: list[tuple[Any, dict[str, Any]]], value: Any) -> Any:
    """``value`` with each node replaced by an empty dict that ``stack`` will fill."""
    if isinstance(value, list):
        return [_shell(stack, item) for item in value]
    if not isinstance(value, esprima.objects.Object):
        return value
    copy: dict[str, Any] = {}
    stack.append((value, copy))
    return copy


def _declarations(program: Node) -> dict[int, set[str]]:
    """Names bound by each scope node (keyed by ``id``), with ``var`` and functions hoisted.

    ``var`` goes to the nearest function (or the script); ``let``/``const``, function and
    class declarations to the nearest block; parameters and a function expression's own name
    to the function; a catch parameter to its clause.
    """
    declared: dict[int, set[str]] = {}

    def bind(scope: Node, names: Iterator[Node]) -> None:
        declared.setdefault(id(scope), set()).update(n["name"] for n in names)

    stack: list[tuple[Node, Node, Node]] = [(program, program, program)]
    while stack:
        node, function, block = stack.pop()
        kind = node["type"]
        if kind in FUNCTION_NODES:
            if kind == "FunctionDeclaration":
                bind(block, iter([node["id"]]))
            elif node.get("id"):
                bind(node, iter([node["id"]]))
            for param in node["params"]:
                bind(node, binding_identifiers(param))
            function = block = node
        elif kind in SCOPE_NODES:
            block = node
        if kind == "VariableDeclaration":
            owner = function if node["kind"] == "var" else block
            for item in node["declarations"]:
                bind(owner, binding_identifiers(item["id"]))
        elif kind == "CatchClause" and node.get("param"):
            bind(node, binding_identifiers(node["param"]))
        elif kind == "ClassDeclaration" and node.get("id"):
            bind(block, iter([node["id"]]))
        stack += ((child, function, block) for child, _ in _generic(node, "value"))
    return declared


# --- children: which sub-nodes the walker visits, and in which role ---------------------------

_Children = Callable[[Node, Role], Iterator[tuple[Node, Role]]]


def _generic(node: Node, role: Role) -> Iterator[tuple[Node, Role]]:
    for value in node.values():
        if isinstance(value, list):
            yield from ((item, "value") for item in value if isinstance(item, dict))
        elif isinstance(value, dict) and "type" in value:
            yield value, "value"


def _fixed(**roles: Role) -> _Children:
    """Children at the named fields, each in a fixed role."""

    def fixed(node: Node, role: Role) -> Iterator[tuple[Node, Role]]:
        for name, child_role in roles.items():
            child = node.get(name)
            if isinstance(child, list):
                yield from ((item, child_role) for item in child if item is not None)
            elif child is not None:
                yield child, child_role

    return fixed


def _member(node: Node, role: Role) -> Iterator[tuple[Node, Role]]:
    yield node["object"], ("value" if node["computed"] else "member-object")
    if node["computed"]:
        yield node["property"], "value"


def _property(node: Node, role: Role) -> Iterator[tuple[Node, Role]]:
    key = node["key"]
    if node["computed"]:
        yield key, "value"
    elif key["type"] == "Literal":
        yield key, "key"
    yield node["value"], (role if role in PATTERN_ROLES else "value")


def _pattern(node: Node, role: Role) -> Iterator[tuple[Node, Role]]:
    items = node["elements"] if node["type"] == "ArrayPattern" else node["properties"]
    yield from ((item, role) for item in items if item is not None)


def _same_role(field: str) -> _Children:
    """The one child at ``field``, in the parent's role (a rest element, a chain)."""

    def same(node: Node, role: Role) -> Iterator[tuple[Node, Role]]:
        yield node[field], role

    return same


def _assignment_pattern(node: Node, role: Role) -> Iterator[tuple[Node, Role]]:
    yield node["left"], role
    yield node["right"], "value"


def _unary(node: Node, role: Role) -> Iterator[tuple[Node, Role]]:
    roles: dict[str, Role] = {"delete": "target", "typeof": "typeof"}
    yield node["argument"], roles.get(node["operator"], "value")


def _binary(node: Node, role: Role) -> Iterator[tuple[Node, Role]]:
    yield node["left"], "value"
    yield node["right"], ("instanceof-right" if node["operator"] == "instanceof" else "value")


def _loop_in(node: Node, role: Role) -> Iterator[tuple[Node, Role]]:
    left = node["left"]
    yield left, ("value" if left["type"] == "VariableDeclaration" else "target")
    yield node["right"], "value"
    yield node["body"], "value"


_CHILDREN: Mapping[str, _Children] = {
    "MemberExpression": _member,
    "Property": _property,
    "ObjectPattern": _pattern,
    "ArrayPattern": _pattern,
    "RestElement": _same_role("argument"),
    "ChainExpression": _same_role("expression"),
    "AssignmentPattern": _assignment_pattern,
    **dict.fromkeys(FUNCTION_NODES, _fixed(params="binding", body="value")),
    "VariableDeclarator": _fixed(id="binding", init="value"),
    "CatchClause": _fixed(param="binding", body="value"),
    "AssignmentExpression": _fixed(left="target", right="value"),
    "UpdateExpression": _fixed(argument="target"),
    "CallExpression": _fixed(callee="callee", arguments="value"),
    "NewExpression": _fixed(callee="callee", arguments="value"),
    "LabeledStatement": _fixed(body="value"),
    "BreakStatement": _fixed(),
    "ContinueStatement": _fixed(),
    "MetaProperty": _fixed(),
    "UnaryExpression": _unary,
    "BinaryExpression": _binary,
    "ForInStatement": _loop_in,
    "ForOfStatement": _loop_in,
}


class _SourceText:
    """Maps esprima's UTF-16 offsets to lines, code-point columns and caret contexts."""

    _BREAK = re.compile("\r\n|[\n\r\u2028\u2029]")

    def __init__(self, source: str) -> None:
        self.source = source
        self.line_starts = [0] + [m.end() for m in self._BREAK.finditer(source)]
        # UTF-16 offsets of the astral characters, which count twice in UTF-16.
        self.astral: list[int] = []
        extra = 0
        for index, char in enumerate(source):
            if ord(char) > 0xFFFF:
                self.astral.append(index + extra)
                extra += 1

    def locate(self, utf16_offset: int) -> tuple[int, int, str]:
        """(line, column, context) of a UTF-16 offset; both numbers 1-based."""
        offset = min(utf16_offset - bisect.bisect_left(self.astral, utf16_offset), len(self.source))
        line = bisect.bisect_right(self.line_starts, offset)
        line_start = self.line_starts[line - 1]
        match = self._BREAK.search(self.source, line_start)
        text = self.source[line_start : match.start() if match else len(self.source)]
        column = offset - line_start
        before = text[max(0, column - _CONTEXT_SPAN) : column]
        after = text[column : column + _CONTEXT_SPAN]
        caret = "".join("\t" if char == "\t" else " " for char in before) + "^"
        return line, column + 1, f"{before}{after}\n{caret}"

    def violation(self, finding: Finding) -> Violation:
        line, column, context = self.locate(finding.offset)
        return Violation(finding.rule, finding.message, line, column, context)

    def parse_error(self, exc: Any) -> ParseError:
        offset = exc.index if isinstance(exc.index, int) else 0
        line, column, context = self.locate(offset)
        message = re.sub(r"^Line \d+: ", "", str(exc.message))
        return ParseError(line, column, message, context)


def _render(filename: str, line: int, column: int, rule: str, message: str, context: str) -> str:
    indented = "\n".join(f"    {part}" for part in context.split("\n"))
    return f"{filename}:{line}:{column}: {rule}: {message}\n{indented}"
