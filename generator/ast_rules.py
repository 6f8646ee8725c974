"""The rules of the bot.js AST policy: name tables and the node type -> checker table.

Concept: every ESTree node type that bot.js may contain has an entry in :data:`CHECKERS`
(a checker yielding :class:`Finding` values, possibly none); a type without an entry is
``unsupported-syntax``. The walker (:mod:`.ast_policy`) hands each checker the node's *role*
(a callee, the object of ``a.b``, an assignment target, ...), because a name's role decides
whether it is allowed: ``Math.max(...)`` is fine, ``const M = Math`` is not.

Invariants:

- Checkers are pure: they read the node, its :class:`Visit` (role, parent, scope chain) and
  the per-check :class:`Walk` state, and know nothing of lines or columns. A finding carries
  the UTF-16 offset esprima reports; :mod:`ast_policy` turns it into ``line:column``.
- Names resolve statically: ``with``, ``eval`` and the global object are forbidden, so a name
  not bound in an enclosing scope of the script is a global, and only the globals in
  :data:`BUILTIN_GLOBALS` may be used, and only called or used as ``Name.member``.
- Every rule id in :data:`RULES` is stable and documented in ``docs/ast-policy.md``; changing
  what a rule accepts bumps ``AST_RULES_VERSION``.

The module is longer than most because it is one table: the name tables, the constant
folding and the checkers are read together when a rule changes, and splitting them would
scatter one decision over several files.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple
from urllib.parse import urlsplit

from botkiln.interpreter.domains import domain_allowed

Node = Mapping[str, Any]
Role = Literal["value", "callee", "member-object", "typeof", "instanceof-right", "binding", "target", "key"]

RULES: Mapping[str, str] = {
    "too-large": "the source exceeds the size cap",
    "missing-entry-point": "no top-level `function step(input)` declaration",
    "entry-point-signature": "`step` declared twice or without exactly one plain parameter",
    "top-level-statement": "top-level code other than declarations",
    "global-redefinition": "a top-level declaration reuses the name of a global",
    "unsupported-syntax": "a construct outside the allow-list (classes, tagged templates, ...)",
    "with-statement": "`with`",
    "debugger-statement": "`debugger`",
    "this-expression": "`this`",
    "meta-property": "`new.target`",
    "asynchrony": "async functions, `await`, Promise, timers",
    "generator": "generator functions and `yield`",
    "dynamic-code": "`eval`, `Function`",
    "module-system": "`import()`, `require`, `module`, `exports`",
    "global-object": "`globalThis`, `window`, `self`, `global`",
    "reflection": "`Reflect`, `Proxy`, `Symbol`, property descriptors",
    "nondeterminism": "clocks, randomness, locale data, GC observation",
    "low-level-api": "`WebAssembly`, `SharedArrayBuffer`, `Atomics`",
    "host-api": "host facilities: `fetch`, `console`, `process`, `std`, `os`, ...",
    "arguments-object": "`arguments`",
    "unknown-global": "a name that is neither declared nor an allowed built-in",
    "builtin-as-value": "a built-in used other than called or as `Name.member`",
    "constructor-access": "the `constructor` property",
    "prototype-access": "`prototype`, `__proto__`, prototype getters and setters",
    "caller-access": "`caller`, `callee`, `fn.arguments`",
    "global-assignment": "assignment to an undeclared name",
    "builtin-mutation": "assignment to a built-in or one of its properties",
    "top-level-mutation": "a function changing a top-level binding or an object it names",
    "url-not-allowed": "a URL whose host is not in the domain allow-list",
}

_DYNAMIC = "it runs code built from a string, which no static check can see"
_GLOBAL = "it is the global object, through which a computed key reaches any forbidden name"
_CLOCK = "it reads the clock; take the time from input.context.now, which the host injects"
_RANDOM = "it is a random source, and step() must be deterministic"
_ASYNC = "step() is synchronous and must finish within one call; it cannot schedule work"
_HOST = "it is a host facility; bot.js does no I/O (API calls go out as `pending`)"
_PROTO = "it reads or replaces prototypes shared by every object of a kind"
_REFLECT = "it defines or exposes properties and accessors out of the policy's sight"


def _names(text: str) -> frozenset[str]:
    return frozenset(text.split())


def _each(names: str, rule: str, why: str) -> dict[str, tuple[str, str]]:
    return dict.fromkeys(_names(names), (rule, why))


# Global name -> (rule, why it is forbidden).
FORBIDDEN_GLOBALS: Mapping[str, tuple[str, str]] = {
    **_each("eval Function", "dynamic-code", _DYNAMIC),
    **_each("require module exports", "module-system", "bot.js is one self-contained script"),
    **_each("globalThis window self global", "global-object", _GLOBAL),
    **_each("Reflect", "reflection", _REFLECT),
    **_each("Proxy", "reflection", "a proxy runs hidden code on every property access"),
    **_each("Symbol", "reflection", "well-known symbols hook into built-in behaviour"),
    **_each("Date performance", "nondeterminism", _CLOCK),
    **_each("crypto", "nondeterminism", _RANDOM),
    **_each("Intl", "nondeterminism", "its output depends on the engine's locale data"),
    **_each(
        "WeakRef FinalizationRegistry",
        "nondeterminism",
        "it observes garbage collection, whose timing is not reproducible",
    ),
    **_each(
        "Promise setTimeout setInterval setImmediate clearTimeout clearInterval clearImmediate "
        "queueMicrotask requestAnimationFrame",
        "asynchrony",
        _ASYNC,
    ),
    **_each(
        "WebAssembly SharedArrayBuffer Atomics",
        "low-level-api",
        "it exposes shared memory or native code, which bot.js never needs",
    ),
    **_each(
        "process fetch XMLHttpRequest WebSocket console print std os scriptArgs navigator "
        "location document importScripts Worker postMessage Deno Bun Buffer",
        "host-api",
        _HOST,
    ),
    **_each("arguments", "arguments-object", "it links to the calling function; use rest params"),
}

# Globals bot.js may use, but only called, constructed or as `Name.member` (see _USE_ROLES):
# handed around as values they could be mutated or indexed with computed keys unseen.
BUILTIN_GLOBALS = _names(
    "Object Array String Number Boolean BigInt Math JSON RegExp Map Set WeakMap WeakSet Error "
    "TypeError RangeError SyntaxError ReferenceError URIError EvalError parseInt parseFloat "
    "isNaN isFinite encodeURIComponent decodeURIComponent encodeURI decodeURI"
)
VALUE_GLOBALS = frozenset({"undefined", "NaN", "Infinity"})
KNOWN_GLOBALS = BUILTIN_GLOBALS | VALUE_GLOBALS | FORBIDDEN_GLOBALS.keys()
_USE_ROLES = frozenset({"callee", "member-object", "typeof", "instanceof-right"})

# Property name -> (rule, why), forbidden on any object: static, literal-keyed or destructured.
DANGEROUS_PROPERTIES: Mapping[str, tuple[str, str]] = {
    **_each(
        "constructor",
        "constructor-access",
        "from any value it leads to the Function constructor",
    ),
    **_each(
        "__proto__ prototype __defineGetter__ __defineSetter__ __lookupGetter__ __lookupSetter__",
        "prototype-access",
        _PROTO,
    ),
    **_each(
        "localeCompare toLocaleString toLocaleDateString toLocaleTimeString toLocaleUpperCase toLocaleLowerCase",
        "nondeterminism",
        "its result depends on the engine's locale data",
    ),
    **_each(
        "caller callee arguments",
        "caller-access",
        "it exposes the calling function and its arguments",
    ),
}
# (built-in, member) -> (rule, why); any static member of RegExp is forbidden too.
FORBIDDEN_MEMBERS: Mapping[tuple[str, str], tuple[str, str]] = {
    ("Math", "random"): ("nondeterminism", _RANDOM),
    **{("Object", name): ("prototype-access", _PROTO) for name in ("setPrototypeOf", "getPrototypeOf")},
    **{
        ("Object", name): ("reflection", _REFLECT)
        for name in _names("defineProperty defineProperties getOwnPropertyDescriptor getOwnPropertyDescriptors")
    },
}
_REGEXP_STATICS = ("nondeterminism", "legacy RegExp statics hold state shared between calls")

PATTERN_ROLES = frozenset({"binding", "target"})
FUNCTION_NODES = frozenset({"FunctionDeclaration", "FunctionExpression", "ArrowFunctionExpression"})
SCOPE_NODES = FUNCTION_NODES | _names(
    "Program BlockStatement ForStatement ForInStatement ForOfStatement SwitchStatement CatchClause"
)


class Finding(NamedTuple):
    """One rule broken at one place; ``offset`` is esprima's UTF-16 offset into the source."""

    rule: str
    message: str
    offset: int


@dataclass(frozen=True, slots=True)
class Scope:
    """Names bound directly in one scope, and the enclosing scope."""

    names: frozenset[str]
    parent: Scope | None
    top_level: bool = False

    def resolve(self, name: str) -> Scope | None:
        """The innermost scope binding ``name``, or None for a global."""
        scope: Scope | None = self
        while scope is not None and name not in scope.names:
            scope = scope.parent
        return scope


@dataclass(frozen=True, slots=True)
class Visit:
    """A node as the walker reaches it: its role, its parent, and where it sits."""

    node: Node
    role: Role
    parent: Node | None
    scope: Scope
    in_function: bool


_STOP = r"/?#\s\\\"'`<>"
_SCHEME_URL = re.compile(rf"([A-Za-z][A-Za-z0-9+.\-]*)://([^{_STOP}]*)")
_RELATIVE_URL = re.compile(rf"(?<![:/\w])//([^{_STOP}]+)")
_DOTTED_HOST = re.compile(r"[a-z0-9-]+(\.[a-z0-9-]+)+")


@dataclass(slots=True)
class Walk:
    """State shared by the checkers during one check: the allow-list and a fold cache."""

    domains: tuple[str, ...]
    _folds: dict[int, str | int | None] = field(default_factory=dict)

    def fold(self, node: Node) -> str | int | None:
        """The constant value of a literal, or of a `+` chain or template of constants.

        Only strings and integers below 10**21 fold (JavaScript prints those as Python does);
        anything else is None: not known statically.
        """
        done = self._folds
        stack: list[tuple[Node, bool]] = [(node, False)]
        while stack:
            item, expanded = stack.pop()
            if id(item) in done:
                continue
            kind = item["type"]
            if kind == "BinaryExpression" and item["operator"] == "+":
                parts = [item["left"], item["right"]]
            elif kind == "TemplateLiteral":
                parts = item["expressions"]
            else:
                done[id(item)] = _constant(item)
                continue
            if not expanded:
                stack += [(item, True), *((part, False) for part in parts)]
                continue
            values = [done[id(part)] for part in parts]
            done[id(item)] = _template(item, values) if kind == "TemplateLiteral" else _plus(*values)
        return done[id(node)]

    def folds_to_text(self, node: Node | None) -> bool:
        """Whether ``node`` is a `+` chain that folds to a string (its root reports URLs)."""
        return (
            node is not None
            and node["type"] == "BinaryExpression"
            and node["operator"] == "+"
            and isinstance(self.fold(node), str)
        )


def _constant(node: Node) -> str | int | None:
    value = node.get("value") if node["type"] == "Literal" else None
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) < 10**21:
        return value
    return None


def _template(node: Node, values: list[str | int | None]) -> str | None:
    cooked = [quasi["value"]["cooked"] for quasi in node["quasis"]]
    if None in values or None in cooked:
        return None
    return "".join(f"{text}{value}" for text, value in zip(cooked, [*values, ""], strict=True))


def _plus(left: str | int | None, right: str | int | None) -> str | int | None:
    if left is None or right is None:
        return None
    if isinstance(left, int) and isinstance(right, int):
        return left + right
    return f"{left}{right}"


def _start(node: Node) -> int:
    """The UTF-16 offset where ``node`` begins."""
    return int(node["range"][0])


def binding_identifiers(pattern: Node | None) -> Iterator[Node]:
    """The leaves of a binding or assignment pattern: Identifiers (and MemberExpressions)."""
    stack = [pattern]
    while stack:
        node = stack.pop()
        if node is not None and node["type"] in _PATTERN_PARTS:
            stack += _PATTERN_PARTS[node["type"]](node)
        elif node is not None:
            yield node


_PATTERN_PARTS: Mapping[str, Callable[[Node], list[Node | None]]] = {
    "ArrayPattern": lambda node: list(node["elements"]),
    "ObjectPattern": lambda node: list(node["properties"]),
    "Property": lambda node: [node["value"]],
    "RestElement": lambda node: [node["argument"]],
    "AssignmentPattern": lambda node: [node["left"]],
}


# --- checkers ---------------------------------------------------------------------------------

Checker = Callable[[Visit, Walk], Iterator[Finding]]


def _none(visit: Visit, walk: Walk) -> Iterator[Finding]:
    return iter(())


def _forbid(rule: str, message: str) -> Checker:
    """A checker for a node type that is forbidden outright."""

    def check(visit: Visit, walk: Walk) -> Iterator[Finding]:
        yield Finding(rule, message, _start(visit.node))

    return check


def check_unsupported(visit: Visit, walk: Walk) -> Iterator[Finding]:
    """The checker of every node type missing from :data:`CHECKERS`."""
    kind = visit.node["type"]
    hint = _UNSUPPORTED_HINTS.get(kind, "the policy allows only what generated code needs")
    yield Finding("unsupported-syntax", f"{kind} is not allowed in bot.js: {hint}", _start(visit.node))


_UNSUPPORTED_HINTS = {
    "ClassDeclaration": "use plain objects and functions",
    "ClassExpression": "use plain objects and functions",
    "TaggedTemplateExpression": "a tag runs a function over raw strings; use an untagged template",
}


def _check_identifier(visit: Visit, walk: Walk) -> Iterator[Finding]:
    name = visit.node["name"]
    if visit.scope.resolve(name) is not None:
        return
    at = _start(visit.node)
    if name in FORBIDDEN_GLOBALS:
        rule, why = FORBIDDEN_GLOBALS[name]
        yield Finding(rule, f"`{name}` is forbidden: {why}", at)
    elif visit.role in PATTERN_ROLES:
        return  # an assignment target: the write checks report it
    elif name in BUILTIN_GLOBALS and visit.role not in _USE_ROLES:
        yield Finding(
            "builtin-as-value",
            f"built-in `{name}` may only be called or used as `{name}.member` with a fixed "
            "name: as a value it could be mutated or indexed out of the policy's sight",
            at,
        )
    elif name not in KNOWN_GLOBALS:
        yield Finding(
            "unknown-global",
            f"`{name}` is not declared in bot.js and is not an allowed built-in global",
            at,
        )


def _key_name(node: Node, computed: bool, walk: Walk) -> str | None:
    """A property key's name when it is known statically."""
    if not computed and node["type"] == "Identifier":
        return str(node["name"])
    value = walk.fold(node)
    return None if value is None else str(value)


def _dangerous(name: str | None, at: int) -> Iterator[Finding]:
    if name is not None and name in DANGEROUS_PROPERTIES:
        rule, why = DANGEROUS_PROPERTIES[name]
        yield Finding(rule, f"property `{name}` is forbidden: {why}", at)


def _check_member(visit: Visit, walk: Walk) -> Iterator[Finding]:
    node, prop = visit.node, visit.node["property"]
    name = _key_name(prop, node["computed"], walk)
    yield from _dangerous(name, _start(prop))
    obj = node["object"]
    if name is None or obj["type"] != "Identifier" or visit.scope.resolve(obj["name"]):
        return
    if obj["name"] == "RegExp":
        rule, why = _REGEXP_STATICS
    elif (obj["name"], name) in FORBIDDEN_MEMBERS:
        rule, why = FORBIDDEN_MEMBERS[obj["name"], name]
    else:
        return
    yield Finding(rule, f"`{obj['name']}.{name}` is forbidden: {why}", _start(prop))


def _check_property(visit: Visit, walk: Walk) -> Iterator[Finding]:
    node, key = visit.node, visit.node["key"]
    name = _key_name(key, node["computed"], walk)
    if visit.role in PATTERN_ROLES:  # destructuring reads the property
        yield from _dangerous(name, _start(key))
    elif name == "__proto__" and not node["computed"] and not node["shorthand"]:
        yield Finding(
            "prototype-access",
            "a `__proto__` key is forbidden: in an object literal it sets the prototype",
            _start(key),
        )


def _check_function(visit: Visit, walk: Walk) -> Iterator[Finding]:
    node = visit.node
    if node.get("async"):
        yield Finding("asynchrony", f"async functions are forbidden: {_ASYNC}", _start(node))
    if node.get("generator"):
        yield Finding(
            "generator",
            "generator functions are forbidden: step() returns its whole result in one call",
            _start(node),
        )
    entry = visit.parent is not None and visit.parent["type"] == "Program"
    if entry and node["id"]["name"] == "step":
        params = node["params"]
        if len(params) != 1 or params[0]["type"] != "Identifier":
            found = {0: "none", 1: "a pattern"}.get(len(params), f"{len(params)} parameters")
            yield Finding(
                "entry-point-signature",
                f"`step` must take exactly one plain parameter (`input`), found {found}",
                _start(node),
            )


def _urls(text: str) -> Iterator[tuple[int, str, str]]:
    """(index, shown URL start, host) of each URL in ``text``; host is '' when absent."""
    for match in _SCHEME_URL.finditer(text):
        yield match.start(), f"{match[1]}://", _host(match[2])
    for match in _RELATIVE_URL.finditer(text):
        host = _host(match[1])
        if _DOTTED_HOST.fullmatch(host):
            yield match.start(), "//", host


def _host(authority: str) -> str:
    try:
        return (urlsplit(f"x://{authority}").hostname or "").rstrip(".")
    except ValueError:  # a malformed IPv6 literal or port
        return ""


def _url_findings(text: str, at: int, raw: str | None, walk: Walk) -> Iterator[Finding]:
    """URL findings in a string whose source text starts at ``at``.

    ``raw`` is the exact source text of ``text`` when it has no escapes, so that the caret can
    point inside the string; otherwise findings point at ``at``.
    """
    for index, shown, host in _urls(text):
        if host and domain_allowed(host, walk.domains):
            continue
        where = at + _utf16_len(text[:index]) if raw == text else at
        if host:
            message = f"URL host `{host}` is not in the domain allow-list"
        else:
            message = f"URL `{shown}` has no literal host to check against the allow-list"
        yield Finding("url-not-allowed", f"{message} (security.allowedDomains of the spec)", where)


def _utf16_len(text: str) -> int:
    return len(text) + sum(1 for char in text if ord(char) > 0xFFFF)


def _check_literal(visit: Visit, walk: Walk) -> Iterator[Finding]:
    node = visit.node
    if isinstance(node.get("value"), str) and not walk.folds_to_text(visit.parent):
        raw = str(node["raw"])[1:-1]
        yield from _url_findings(node["value"], _start(node) + 1, raw, walk)


def _check_template(visit: Visit, walk: Walk) -> Iterator[Finding]:
    if walk.folds_to_text(visit.parent):
        return
    for quasi in visit.node["quasis"]:
        value = quasi["value"]
        text = value["cooked"] if isinstance(value["cooked"], str) else value["raw"]
        yield from _url_findings(text, _start(quasi) + 1, value["raw"], walk)


def _check_binary(visit: Visit, walk: Walk) -> Iterator[Finding]:
    node = visit.node
    if walk.folds_to_text(node) and not walk.folds_to_text(visit.parent):
        yield from _url_findings(str(walk.fold(node)), _start(node), None, walk)


_VERBS = {
    "AssignmentExpression": "assignment to",
    "UpdateExpression": "update of",
    "UnaryExpression": "deletion of",
    "ForInStatement": "assignment to",
    "ForOfStatement": "assignment to",
}


def _root(node: Node) -> Node:
    while node["type"] in ("MemberExpression", "ChainExpression"):
        node = node["object"] if node["type"] == "MemberExpression" else node["expression"]
    return node


def _check_writes(visit: Visit, walk: Walk) -> Iterator[Finding]:
    node = visit.node
    kind = node["type"]
    if kind == "UnaryExpression" and node["operator"] != "delete":
        return
    target = node.get("left", node.get("argument"))
    if target is not None and target["type"] != "VariableDeclaration":
        for leaf in binding_identifiers(target):
            yield from _write(leaf, _VERBS[kind], visit)


# Calls that change their receiver (or, for Object.*, their first argument) in place.
_MUTATING_METHODS = _names("push pop shift unshift splice sort reverse fill copyWithin set add delete clear")
_MUTATING_OBJECT_CALLS = _names("assign freeze seal preventExtensions")


def _check_call(visit: Visit, walk: Walk) -> Iterator[Finding]:
    callee = visit.node["callee"]
    if callee["type"] != "MemberExpression" or callee["computed"]:
        return
    method, receiver, args = callee["property"]["name"], callee["object"], visit.node["arguments"]
    is_object = receiver["type"] == "Identifier" and receiver["name"] == "Object"
    if is_object and not visit.scope.resolve("Object"):
        changed = args[0] if method in _MUTATING_OBJECT_CALLS and args else None
        verb = f"`Object.{method}` on"
    else:
        changed = receiver if method in _MUTATING_METHODS else None
        verb = f"calling `.{method}()` on"
    if changed is not None:
        # An undeclared name here is already an unknown-global; a call creates no global.
        yield from (f for f in _write(changed, verb, visit) if f.rule != "global-assignment")


def _write(leaf: Node, verb: str, visit: Visit) -> Iterator[Finding]:
    """The finding, if any, for changing ``leaf`` (a name or a member chain) in place."""
    root = _root(leaf)
    if root["type"] != "Identifier":
        return  # a call result, a literal, ...: not a named binding
    name, what = root["name"], (verb if root is leaf else f"{verb} a property of")
    scope = visit.scope.resolve(name)
    if scope is None and name in FORBIDDEN_GLOBALS:
        return  # the name alone is a violation, reported where it is read
    if scope is None and name in KNOWN_GLOBALS:
        rule = "builtin-mutation"
        why = f"{what} built-in `{name}` is forbidden: built-ins are shared by all code"
    elif scope is None:
        rule = "global-assignment"
        why = (
            f"{what} undeclared `{name}` is forbidden: it would make a global that outlives "
            "the update; declare it with `const` or `let`"
        )
    elif scope.top_level and visit.in_function:
        rule = "top-level-mutation"
        why = (
            f"{what} top-level `{name}` inside a function is forbidden: the sandbox keeps "
            "top-level values between updates, so later chats would see the change"
        )
    else:
        return
    yield Finding(rule, why, _start(leaf))


def _check_loop_in(visit: Visit, walk: Walk) -> Iterator[Finding]:
    if visit.node.get("await"):
        yield Finding("asynchrony", f"`for await` is forbidden: {_ASYNC}", _start(visit.node))
    yield from _check_writes(visit, walk)


def _check_meta(visit: Visit, walk: Walk) -> Iterator[Finding]:
    node = visit.node
    yield Finding(
        "meta-property",
        f"`{node['meta']['name']}.{node['property']['name']}` is forbidden: "
        "it exposes how the code was invoked or loaded",
        _start(node),
    )


def _check_program(visit: Visit, walk: Walk) -> Iterator[Finding]:
    functions: list[Node] = []
    variables: list[Node] = []
    for statement in visit.node["body"]:
        kind = statement["type"]
        if kind == "FunctionDeclaration":
            declared = [statement["id"]]
            functions += declared
        elif kind == "VariableDeclaration":
            declared = [leaf for item in statement["declarations"] for leaf in binding_identifiers(item["id"])]
            variables += declared
        elif kind == "EmptyStatement" or statement.get("directive") is not None:
            continue
        else:
            yield Finding(
                "top-level-statement",
                f"a top-level {kind} is forbidden: bot.js holds only declarations at the top "
                'level (and a "use strict" directive), so loading it runs no bot logic',
                _start(statement),
            )
            continue
        for name_node in declared:
            if name_node["name"] in KNOWN_GLOBALS:
                yield Finding(
                    "global-redefinition",
                    f"top-level declaration of `{name_node['name']}` is forbidden: it replaces "
                    "the global of that name for all code in the sandbox",
                    _start(name_node),
                )
    yield from _check_entry_point(
        [node for node in functions if node["name"] == "step"],
        [node for node in variables if node["name"] == "step"],
    )


def _check_entry_point(functions: list[Node], variables: list[Node]) -> Iterator[Finding]:
    """``functions``/``variables``: the identifiers declaring ``step`` at the top level."""
    for node in variables:
        yield Finding(
            "missing-entry-point",
            "`step` is declared as a variable: the entry point must be a top-level `function step(input)` declaration",
            _start(node),
        )
    if not functions and not variables:
        yield Finding(
            "missing-entry-point",
            "no top-level `function step(input)` declaration: the host calls step() for every update",
            0,
        )
    for extra in functions[1:]:
        yield Finding(
            "entry-point-signature",
            "`step` is declared more than once: the last declaration would silently win",
            _start(extra),
        )


CHECKERS: Mapping[str, Checker] = {
    **dict.fromkeys(
        _names(
            "ExpressionStatement BlockStatement EmptyStatement ReturnStatement IfStatement "
            "SwitchStatement SwitchCase ThrowStatement TryStatement CatchClause WhileStatement "
            "DoWhileStatement ForStatement BreakStatement ContinueStatement LabeledStatement "
            "VariableDeclaration VariableDeclarator ArrayExpression ObjectExpression SpreadElement "
            "RestElement ArrayPattern ObjectPattern AssignmentPattern TemplateElement "
            "LogicalExpression ConditionalExpression NewExpression ChainExpression "
            "SequenceExpression"
        ),
        _none,
    ),
    "Program": _check_program,
    **dict.fromkeys(FUNCTION_NODES, _check_function),
    "Identifier": _check_identifier,
    "MemberExpression": _check_member,
    "Property": _check_property,
    "Literal": _check_literal,
    "TemplateLiteral": _check_template,
    "BinaryExpression": _check_binary,
    "AssignmentExpression": _check_writes,
    "CallExpression": _check_call,
    "UpdateExpression": _check_writes,
    "UnaryExpression": _check_writes,
    "ForInStatement": _check_loop_in,
    "ForOfStatement": _check_loop_in,
    "ThisExpression": _forbid(
        "this-expression",
        "`this` is forbidden: outside a method it is the global object, from which any forbidden name can be reached",
    ),
    "WithStatement": _forbid(
        "with-statement",
        "`with` is forbidden: names inside it resolve through an object at run time, out of the policy's sight",
    ),
    "DebuggerStatement": _forbid(
        "debugger-statement", "`debugger` is forbidden: it pauses the engine under a debugger"
    ),
    "ImportExpression": _forbid("module-system", "`import()` is forbidden: bot.js is one self-contained script"),
    "AwaitExpression": _forbid("asynchrony", f"`await` is forbidden: {_ASYNC}"),
    "YieldExpression": _forbid("generator", "`yield` is forbidden: step() returns its whole result in one call"),
    "MetaProperty": _check_meta,
}
