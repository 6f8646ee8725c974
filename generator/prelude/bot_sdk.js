// ---- Botkiln bot SDK (generator/prelude/bot_sdk.js) ---------------------------------------
// Runtime helpers embedded verbatim in every compiled bot.js. Normative meaning:
// docs/botspec.md (section numbers below) and docs/regex.md. Invariants:
// - Pure: no clock, no randomness, no I/O; nothing at the top level is changed after load
//   (per-call data lives in the `run` object).
// - Text is measured in code points, strings compare by code point, keys of data coming from
//   users or API responses are read only through own-property checks.
// - A `run` is { bot, event, context, now, loc, state, actions, events, counters, pending }.
// Sections: values · text · canonical JSON · templates · conditions · regex · run · messages ·
// steps · routing · entry.

// ---- values --------------------------------------------------------------------------------

function own(obj, key) {
  return obj !== null && typeof obj === "object" && Object.hasOwn(obj, key);
}

function nz(value) {
  return value === undefined ? null : value;
}

function field(obj, key) {
  return own(obj, key) ? nz(obj[key]) : null;
}

function isObject(value) {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

// ---- text (§2.3, §11.1) --------------------------------------------------------------------

const FOLD_LIMIT = 0x52f;
const MESSAGE_LIMIT = 4096;
const CAPTION_LIMIT = 1024;

function buildFold() {
  const table = new Map();
  for (let c = 0; c <= FOLD_LIMIT; c += 1) {
    if (c >= 0xd800 && c <= 0xdfff) continue;
    const lower = String.fromCodePoint(c).toLowerCase();
    const cp = lower.codePointAt(0);
    if (cp !== c && lower.length === (cp > 0xffff ? 2 : 1)) table.set(c, cp);
  }
  return table;
}

const FOLD = buildFold();

const SEPARATORS = new Set(
  Array.from("\t\n\r \u000b\u000c\u00a0!\"#$%&'()*+,-./:;<=>?@[\\]^`{|}~«»—–…“”„‘’¿¡·", (c) =>
    c.codePointAt(0),
  ),
);

function cpLen(text) {
  let n = text.length;
  for (let i = 0; i < text.length - 1; i += 1) {
    const c = text.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff) {
      const d = text.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        n -= 1;
        i += 1;
      }
    }
  }
  return n;
}

function isBlankCode(c) {
  return c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
}

function isBlank(text) {
  for (let i = 0; i < text.length; i += 1) {
    if (!isBlankCode(text.charCodeAt(i))) return false;
  }
  return true;
}

function trim(text) {
  let start = 0;
  let end = text.length;
  while (start < end && isBlankCode(text.charCodeAt(start))) start += 1;
  while (end > start && isBlankCode(text.charCodeAt(end - 1))) end -= 1;
  return text.slice(start, end);
}

function fold(text) {
  let out = "";
  for (const ch of text) {
    const c = ch.codePointAt(0);
    const folded = c <= FOLD_LIMIT ? FOLD.get(c) : undefined;
    out += folded === undefined ? ch : String.fromCodePoint(folded);
  }
  return out;
}

function words(text) {
  const out = [];
  let current = "";
  for (const ch of fold(text)) {
    if (SEPARATORS.has(ch.codePointAt(0))) {
      if (current !== "") out.push(current);
      current = "";
    } else {
      current += ch;
    }
  }
  if (current !== "") out.push(current);
  return out;
}

function containsRun(haystack, needle) {
  const n = needle.length;
  if (n === 0) return false;
  for (let i = 0; i + n <= haystack.length; i += 1) {
    let j = 0;
    while (j < n && haystack[i + j] === needle[j]) j += 1;
    if (j === n) return true;
  }
  return false;
}

// UTF-16 units above the surrogates sort below them in unit order but above them in code
// point order; shifting both ranges gives code point order for well-formed strings.
function unitRank(c) {
  if (c >= 0xe000) return c - 0x800;
  if (c >= 0xd800) return c + 0x2000;
  return c;
}

function compareText(a, b) {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i += 1) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x !== y) return unitRank(x) < unitRank(y) ? -1 : 1;
  }
  return a.length === b.length ? 0 : a.length < b.length ? -1 : 1;
}

function lastIndex(chars, limit, wanted) {
  for (let i = limit - 1; i >= 0; i -= 1) {
    if (chars[i] === wanted) return i;
  }
  return -1;
}

function splitMessage(text) {
  const chunks = [];
  if (cpLen(text) <= MESSAGE_LIMIT) {
    chunks.push(text);
  } else {
    let rest = Array.from(text);
    while (rest.length > MESSAGE_LIMIT) {
      let cut = lastIndex(rest, MESSAGE_LIMIT, "\n");
      if (cut <= 0) cut = lastIndex(rest, MESSAGE_LIMIT, " ");
      const end = cut > 0 ? cut + 1 : MESSAGE_LIMIT;
      chunks.push(rest.slice(0, end).join(""));
      rest = rest.slice(end);
    }
    chunks.push(rest.join(""));
  }
  return chunks.filter((chunk) => !isBlank(chunk));
}

// ---- canonical JSON and equality (§2.4) ----------------------------------------------------

function canon(value) {
  if (value === null || value === undefined) return "null";
  if (typeof value === "string") return JSON.stringify(value);
  if (typeof value === "number" || typeof value === "boolean") return JSON.stringify(value);
  if (Array.isArray(value)) return "[" + value.map((item) => canon(item)).join(",") + "]";
  const keys = Object.keys(value).sort();
  return "{" + keys.map((k) => JSON.stringify(k) + ":" + canon(value[k])).join(",") + "}";
}

// The canonical JSON of `vars` as if `name` were set to `value`.
function canonWith(vars, name, value) {
  const keys = Object.keys(vars);
  if (!own(vars, name)) keys.push(name);
  keys.sort();
  const parts = keys.map((k) => JSON.stringify(k) + ":" + canon(k === name ? value : vars[k]));
  return "{" + parts.join(",") + "}";
}

function utf8Len(text) {
  let n = 0;
  for (let i = 0; i < text.length; i += 1) {
    const c = text.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length) {
      const d = text.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        n += 4;
        i += 1;
      } else {
        n += 3;
      }
    } else n += 3;
  }
  return n;
}

function deepEqual(a, b) {
  if (a === null || b === null) return a === b;
  const ta = typeof a;
  if (ta !== typeof b) return false;
  if (ta !== "object") return a === b;
  const arrayA = Array.isArray(a);
  if (arrayA !== Array.isArray(b)) return false;
  if (arrayA) {
    if (a.length !== b.length) return false;
    for (let i = 0; i < a.length; i += 1) {
      if (!deepEqual(a[i], b[i])) return false;
    }
    return true;
  }
  const keys = Object.keys(a);
  if (keys.length !== Object.keys(b).length) return false;
  for (const k of keys) {
    if (!own(b, k) || !deepEqual(a[k], b[k])) return false;
  }
  return true;
}

function isIndexToken(token) {
  if (token === "0") return true;
  if (token.length === 0 || token.charCodeAt(0) === 0x30) return false;
  for (let i = 0; i < token.length; i += 1) {
    const c = token.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return false;
  }
  return true;
}

// One member of an object, or element of an array at an index token; anything else is null.
function member(node, token) {
  if (Array.isArray(node)) {
    if (!isIndexToken(token)) return null;
    const index = Number(token);
    return index < node.length ? node[index] : null;
  }
  if (node !== null && typeof node === "object") return own(node, token) ? node[token] : null;
  return null;
}

// An RFC 6901 pointer, pre-split into unescaped tokens (§8.6).
function resolvePointer(document, tokens) {
  let node = nz(document);
  for (const token of tokens) {
    node = member(node, token);
    if (node === null) return null;
  }
  return node;
}

// ---- templates (§10) -----------------------------------------------------------------------
// A template is a string (no placeholders) or an array of parts: strings copied as they are,
// and paths ["state" | "context", head, ...segments].

function varValue(run, name) {
  const vars = run.state.vars;
  if (own(vars, name)) return vars[name];
  const decl = run.bot.vars.get(name);
  return decl === undefined ? null : decl.default;
}

function lookup(run, path) {
  let value = path[0] === "state" ? varValue(run, path[1]) : field(run.context, path[1]);
  for (let i = 2; i < path.length && value !== null; i += 1) value = member(value, path[i]);
  return value;
}

function valueText(value) {
  if (value === null) return "";
  if (typeof value === "string") return value;
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  return canon(value);
}

function render(run, template) {
  if (typeof template === "string") return template;
  let out = "";
  for (const part of template) {
    out += typeof part === "string" ? part : valueText(lookup(run, part));
  }
  return out;
}

function renderUrl(run, template) {
  if (typeof template === "string") return template;
  let out = "";
  for (const part of template) {
    out += typeof part === "string" ? part : encodeURIComponent(valueText(lookup(run, part)));
  }
  return out;
}

// The text of string table entry `index` in the run's locale (§10.1).
function text(run, index) {
  return render(run, run.bot.strings[index][run.loc]);
}

// ---- conditions (§9) -----------------------------------------------------------------------

function order(a, b) {
  if (typeof a === "number" && typeof b === "number") return a < b ? -1 : a > b ? 1 : 0;
  if (typeof a === "string" && typeof b === "string") return compareText(a, b);
  return null;
}

function opEq(a, b) {
  return deepEqual(a, b);
}

function opNe(a, b) {
  return !deepEqual(a, b);
}

function opLt(a, b) {
  const c = order(a, b);
  return c !== null && c < 0;
}

function opLe(a, b) {
  const c = order(a, b);
  return c !== null && c <= 0;
}

function opGt(a, b) {
  const c = order(a, b);
  return c !== null && c > 0;
}

function opGe(a, b) {
  const c = order(a, b);
  return c !== null && c >= 0;
}

function opIn(a, b) {
  return Array.isArray(b) && b.some((item) => deepEqual(a, item));
}

function opContains(a, b) {
  if (typeof a === "string") return typeof b === "string" && a.includes(b);
  if (Array.isArray(a)) return a.some((item) => deepEqual(item, b));
  return false;
}

function opExists(a) {
  return a !== null;
}

// ---- regex dialect (docs/regex.md) ---------------------------------------------------------
// Parse -> tree of {chars: ranges} | {seq: [...]} | {alt: [...]} | {repeat, low, high};
// tree -> Thompson NFA (state 0 is MATCH; a state has a range list and one successor, or
// no ranges and its epsilon successors) -> whole-value simulation over code points, with a
// per-call memo of reached state sets. Ranges are flat sorted arrays [lo, hi, lo, hi, ...].

const RX_MAX_PATTERN = 256;
const RX_MAX_COUNT = 100;
const RX_MAX_VALUE = 1024;
const RX_MAX_CP = 0x10ffff;
const RX_MEMO_CELLS = 1 << 16;
const RX_PUNCTUATION = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";
const RX_CONTROL = new Map([
  ["n", 0x0a],
  ["r", 0x0d],
  ["t", 0x09],
  ["f", 0x0c],
  ["v", 0x0b],
]);

function rxNormalise(pairs) {
  const sorted = pairs.slice().sort((x, y) => x[0] - y[0] || x[1] - y[1]);
  const out = [];
  for (const [lo, hi] of sorted) {
    const n = out.length;
    if (n > 0 && lo <= out[n - 1] + 1) {
      if (hi > out[n - 1]) out[n - 1] = hi;
    } else {
      out.push(lo, hi);
    }
  }
  return out;
}

function rxComplement(ranges) {
  const out = [];
  let start = 0;
  for (let i = 0; i < ranges.length; i += 2) {
    if (ranges[i] > start) out.push(start, ranges[i] - 1);
    start = ranges[i + 1] + 1;
  }
  if (start <= RX_MAX_CP) out.push(start, RX_MAX_CP);
  return out;
}

const RX_DIGIT = [0x30, 0x39];
const RX_WORD = [0x30, 0x39, 0x41, 0x5a, 0x5f, 0x5f, 0x61, 0x7a];
const RX_SPACE = [0x09, 0x0d, 0x20, 0x20];
const RX_CLASSES = new Map([
  ["d", RX_DIGIT],
  ["D", rxComplement(RX_DIGIT)],
  ["w", RX_WORD],
  ["W", rxComplement(RX_WORD)],
  ["s", RX_SPACE],
  ["S", rxComplement(RX_SPACE)],
]);

function rxFail(message, at) {
  throw new SyntaxError("regex: " + message + " at " + at);
}

function isHex(c) {
  return (c >= "0" && c <= "9") || (c >= "a" && c <= "f") || (c >= "A" && c <= "F");
}

function isDecimal(c) {
  return c.length === 1 && c >= "0" && c <= "9";
}

// The parser works on an array of code points (as one-character strings) and a cursor.
function rxParse(pattern) {
  const src = Array.from(pattern);
  if (src.length > RX_MAX_PATTERN) rxFail("pattern too long", RX_MAX_PATTERN);
  const p = { src: src, pos: 0, end: src.length };
  if (rxPeek(p, 0) === "^") p.pos = 1;
  const tree = rxAlternation(p);
  if (p.pos < p.end) rxFail('unmatched ")"', p.pos);
  return tree;
}

function rxPeek(p, offset) {
  const at = p.pos + offset;
  return at < p.end ? p.src[at] : "";
}

function rxAlternation(p) {
  const options = [rxSequence(p)];
  while (rxPeek(p, 0) === "|") {
    p.pos += 1;
    options.push(rxSequence(p));
  }
  return options.length === 1 ? options[0] : { alt: options };
}

function isQuantifier(c) {
  return c === "*" || c === "+" || c === "?" || c === "{";
}

function rxSequence(p) {
  const items = [];
  while (p.pos < p.end && p.src[p.pos] !== "|" && p.src[p.pos] !== ")") {
    if (isQuantifier(p.src[p.pos])) rxFail("nothing to repeat", p.pos);
    let atom = rxAtom(p);
    if (atom === null) continue;
    if (isQuantifier(rxPeek(p, 0))) {
      const q = rxQuantifier(p);
      if (isQuantifier(rxPeek(p, 0))) rxFail("quantifier after a quantifier", p.pos);
      atom = { repeat: atom, low: q[0], high: q[1] };
    }
    items.push(atom);
  }
  return items.length === 1 ? items[0] : { seq: items };
}

function rxAtom(p) {
  const at = p.pos;
  const c = p.src[at];
  if (c === "(") return rxGroup(p);
  if (c === "[") return rxClass(p);
  p.pos += 1;
  if (c === ".") return { chars: [0, RX_MAX_CP] };
  if (c === "\\") {
    const item = rxEscape(p, at);
    return { chars: typeof item === "number" ? [item, item] : item };
  }
  if (c === "$" && at === p.end - 1) return null;
  if (c === "^" || c === "$") rxFail("unsupported anchor", at);
  if (c === "]" || c === "}") rxFail("unmatched " + c, at);
  const cp = c.codePointAt(0);
  return { chars: [cp, cp] };
}

function rxGroup(p) {
  const start = p.pos;
  p.pos += 1;
  if (rxPeek(p, 0) === "?") {
    if (rxPeek(p, 1) !== ":") rxFail("unsupported group", start);
    p.pos += 2;
  }
  const inner = rxAlternation(p);
  if (p.pos >= p.end) rxFail("unterminated group", start);
  p.pos += 1;
  return inner;
}

function rxDigits(p) {
  let out = "";
  while (isDecimal(rxPeek(p, 0))) {
    out += p.src[p.pos];
    p.pos += 1;
  }
  return out;
}

function isCount(text) {
  return text === "0" || (text.length > 0 && text[0] !== "0");
}

function rxQuantifier(p) {
  const start = p.pos;
  const c = p.src[start];
  p.pos += 1;
  if (c === "*") return [0, -1];
  if (c === "+") return [1, -1];
  if (c === "?") return [0, 1];
  const low = rxDigits(p);
  let high = null;
  let valid = isCount(low);
  if (valid && rxPeek(p, 0) === ",") {
    p.pos += 1;
    high = rxDigits(p);
    valid = high === "" || isCount(high);
  }
  if (!valid || rxPeek(p, 0) !== "}") rxFail("invalid quantifier", start);
  p.pos += 1;
  if (low.length > 3 || (high !== null && high.length > 3)) rxFail("count too large", start);
  const lo = Number(low);
  const hi = high === null ? lo : high === "" ? -1 : Number(high);
  if (lo > RX_MAX_COUNT || hi > RX_MAX_COUNT) rxFail("count too large", start);
  if (hi !== -1 && lo > hi) rxFail("minimum above maximum", start);
  return [lo, hi];
}

function rxEscape(p, at) {
  const c = rxPeek(p, 0);
  if (c === "") rxFail("lone backslash", at);
  p.pos += 1;
  const cls = RX_CLASSES.get(c);
  if (cls !== undefined) return cls;
  const control = RX_CONTROL.get(c);
  if (control !== undefined) return control;
  if (RX_PUNCTUATION.includes(c)) return c.codePointAt(0);
  if (c === "u") return rxUnicode(p, at);
  rxFail("unsupported escape \\" + c, at);
  return 0;
}

function rxUnicode(p, at) {
  if (rxPeek(p, 0) === "{") {
    let close = -1;
    for (let i = p.pos; i < p.end; i += 1) {
      if (p.src[i] === "}") {
        close = i;
        break;
      }
    }
    const digits = close > 0 ? p.src.slice(p.pos + 1, close) : [];
    if (digits.length > 0 && digits.length <= 6 && digits.every((d) => isHex(d))) {
      const value = parseInt(digits.join(""), 16);
      if (value <= RX_MAX_CP) {
        p.pos = close + 1;
        return value;
      }
    }
    rxFail("invalid \\u{...} escape", at);
  }
  const digits = p.src.slice(p.pos, p.pos + 4);
  if (digits.length !== 4 || !digits.every((d) => isHex(d))) rxFail("invalid \\u escape", at);
  p.pos += 4;
  return parseInt(digits.join(""), 16);
}

function rxClass(p) {
  const start = p.pos;
  p.pos += 1;
  const negated = rxPeek(p, 0) === "^";
  if (negated) p.pos += 1;
  if (rxPeek(p, 0) === "]") rxFail("empty class", start);
  const members = [];
  if (rxPeek(p, 0) === "-") {
    members.push([0x2d, 0x2d]);
    p.pos += 1;
  }
  for (;;) {
    const c = rxPeek(p, 0);
    if (c === "") rxFail("unterminated class", start);
    if (c === "]") {
      p.pos += 1;
      break;
    }
    if (c === "-" && rxPeek(p, 1) === "]") {
      members.push([0x2d, 0x2d]);
      p.pos += 1;
      continue;
    }
    const low = rxClassAtom(p, start);
    if (rxPeek(p, 0) !== "-" || rxPeek(p, 1) === "]") {
      if (typeof low === "number") members.push([low, low]);
      else for (let i = 0; i < low.length; i += 2) members.push([low[i], low[i + 1]]);
      continue;
    }
    p.pos += 1;
    const high = rxClassAtom(p, start);
    if (typeof low !== "number" || typeof high !== "number") rxFail("class escape in a range", p.pos);
    if (low > high) rxFail("range out of order", p.pos);
    members.push([low, high]);
  }
  const ranges = rxNormalise(members);
  return { chars: negated ? rxComplement(ranges) : ranges };
}

function rxClassAtom(p, start) {
  const at = p.pos;
  const c = rxPeek(p, 0);
  if (c === "") rxFail("unterminated class", start);
  p.pos += 1;
  if (c === "\\") return rxEscape(p, at);
  if (c === "[" || c === "-") rxFail("unescaped " + c + " in a class", at);
  return c.codePointAt(0);
}

// NFA construction, back to front: rxBuild(nfa, node, next) returns the entry state.
function rxAdd(nfa, ranges, succ) {
  nfa.sets.push(ranges);
  nfa.succ.push(succ);
  return nfa.sets.length - 1;
}

function rxBuild(nfa, node, next) {
  if (node.chars !== undefined) return rxAdd(nfa, node.chars, [next]);
  if (node.seq !== undefined) {
    let entry = next;
    for (let i = node.seq.length - 1; i >= 0; i -= 1) entry = rxBuild(nfa, node.seq[i], entry);
    return entry;
  }
  if (node.alt !== undefined) {
    return rxAdd(nfa, null, node.alt.map((option) => rxBuild(nfa, option, next)));
  }
  const inner = node.repeat;
  if (node.high === -1) {
    const loop = rxAdd(nfa, null, []);
    const body = rxBuild(nfa, inner, loop);
    nfa.succ[loop].push(body, next);
    let tail = node.low === 0 ? loop : body;
    for (let i = 1; i < node.low; i += 1) tail = rxBuild(nfa, inner, tail);
    return tail;
  }
  let tail = next;
  for (let i = node.low; i < node.high; i += 1) tail = rxAdd(nfa, null, [rxBuild(nfa, inner, tail), next]);
  for (let i = 0; i < node.low; i += 1) tail = rxBuild(nfa, inner, tail);
  return tail;
}

// A compiled pattern: its NFA and the sorted edges that split code points into classes
// with the same membership in every range list.
function rxCompile(pattern) {
  const nfa = { sets: [null], succ: [[]] };
  const entry = rxBuild(nfa, rxParse(pattern), 0);
  const edges = new Set();
  for (const ranges of nfa.sets) {
    if (ranges === null) continue;
    for (let i = 0; i < ranges.length; i += 2) edges.add(ranges[i]).add(ranges[i + 1] + 1);
  }
  return {
    pattern: pattern,
    sets: nfa.sets,
    succ: nfa.succ,
    entry: entry,
    bounds: Array.from(edges).sort((x, y) => x - y),
  };
}

function rxInRanges(ranges, cp) {
  if (ranges.length === 2) return cp >= ranges[0] && cp <= ranges[1];
  let lo = 0;
  let hi = ranges.length / 2 - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (cp < ranges[2 * mid]) hi = mid - 1;
    else if (cp > ranges[2 * mid + 1]) lo = mid + 1;
    else return true;
  }
  return false;
}

function rxClassOf(rx, cp) {
  let lo = 0;
  let hi = rx.bounds.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (rx.bounds[mid] <= cp) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

// Per-call scratch space of a match: visit stamps, the DFS stack, the memo of reached sets.
function rxScratch(rx) {
  return { mark: new Array(rx.sets.length).fill(0), gen: 0, stack: [], memo: new Map(), cells: 0 };
}

// The epsilon closure of the first `top` states on `scratch.stack`: the CHAR states reached,
// and whether MATCH is. While the memo has room, states come in ascending order and equal
// sets share one memo entry (a lazy DFA); once it is full, sets are used once and forgotten.
function rxClosure(rx, scratch, top) {
  scratch.gen += 1;
  const gen = scratch.gen;
  const mark = scratch.mark;
  const sets = rx.sets;
  const succ = rx.succ;
  const stack = scratch.stack;
  const found = [];
  let match = false;
  while (top > 0) {
    const s = stack[--top];
    if (mark[s] === gen) continue;
    mark[s] = gen;
    if (s === 0) match = true;
    else if (sets[s] !== null) found.push(s);
    else {
      const next = succ[s];
      for (let i = next.length - 1; i >= 0; i -= 1) stack[top++] = next[i];
    }
  }
  if (scratch.cells >= RX_MEMO_CELLS) return { chars: found, match: match, next: null };
  let chars = found;
  if (found.length > 32) {
    chars = [];
    for (let s = 1; s < sets.length; s += 1) {
      if (mark[s] === gen && sets[s] !== null) chars.push(s);
    }
  } else {
    found.sort((x, y) => x - y);
  }
  const key = (match ? "m" : "") + chars.join(",");
  const known = scratch.memo.get(key);
  if (known !== undefined) return known;
  const state = { chars: chars, match: match, next: new Map() };
  scratch.memo.set(key, state);
  scratch.cells += chars.length + 1;
  return state;
}

// Whole-value match over code points; nothing outlives the call.
function rxMatch(rx, value, ignoreCase) {
  if (cpLen(value) > RX_MAX_VALUE) return false;
  const input = ignoreCase ? fold(value) : value;
  const scratch = rxScratch(rx);
  const sets = rx.sets;
  const succ = rx.succ;
  const stack = scratch.stack;
  stack[0] = rx.entry;
  let state = rxClosure(rx, scratch, 1);
  for (let i = 0; i < input.length; i += 1) {
    const chars = state.chars;
    if (chars.length === 0) return false;
    let cp = input.charCodeAt(i);
    if (cp >= 0xd800 && cp <= 0xdbff && i + 1 < input.length) {
      const low = input.charCodeAt(i + 1);
      if (low >= 0xdc00 && low <= 0xdfff) {
        cp = (cp - 0xd800) * 0x400 + (low - 0xdc00) + 0x10000;
        i += 1;
      }
    }
    const k = rxClassOf(rx, cp);
    let next = state.next === null ? undefined : state.next.get(k);
    if (next === undefined) {
      let top = 0;
      for (let j = 0; j < chars.length; j += 1) {
        const s = chars[j];
        if (rxInRanges(sets[s], cp)) stack[top++] = succ[s][0];
      }
      next = rxClosure(rx, scratch, top);
      if (state.next !== null) state.next.set(k, next);
    }
    state = next;
  }
  return state.match;
}

// ---- the run (§3, §5, §7, §13) -------------------------------------------------------------

const MAX_TRANSITIONS = 200;
const MAX_ACTIONS = 30;
const MAX_API_CALLS = 2;
const HALT = { halt: "the call ends" };
const END = { end: "#end" };
const STOP = { stop: "wait or pending" };

// Maps keyed by variable names and intent ids have no prototype: with the intrinsics frozen
// (as the sandbox does), assigning a key such as "constructor" or "toString" to an ordinary
// object would hit the read-only inherited property and throw.
function dataMap(value) {
  const out = Object.create(null);
  if (isObject(value)) {
    for (const key of Object.keys(value)) out[key] = value[key];
  }
  return out;
}

function initialState() {
  const state = dataMap(null);
  state.vars = dataMap(null);
  state.cursor = null;
  state.cooldowns = dataMap(null);
  state.setAt = dataMap(null);
  state.updatedAt = null;
  return state;
}

function workingState(input) {
  if (!isObject(input)) return initialState();
  const state = dataMap(input);
  state.vars = dataMap(state.vars);
  state.cooldowns = dataMap(state.cooldowns);
  state.setAt = dataMap(state.setAt);
  return state;
}

function newRun(bot, input) {
  const context = isObject(input.context) ? input.context : {};
  const locale = field(context, "locale");
  const loc = bot.locales.indexOf(locale);
  return {
    bot: bot,
    event: isObject(input.event) ? input.event : {},
    context: context,
    now: typeof context.now === "number" ? context.now : 0,
    loc: loc >= 0 ? loc : bot.defaultLocale,
    state: workingState(input.state),
    actions: [],
    events: [],
    counters: { transitions: 0, apiCalls: 0, actions: 0 },
    pending: null,
  };
}

function emit(run, item) {
  run.events.push(item);
}

function abort(run, flow, reason, limit) {
  if (limit !== null) emit(run, { type: "limit_reached", limit: limit });
  emit(run, { type: "flow_aborted", flow: flow, reason: reason });
  run.state.cursor = null;
  throw HALT;
}

function write(run, flow, name, value) {
  if (utf8Len(canonWith(run.state.vars, name, value)) > run.bot.maxBytes) {
    abort(run, flow, "state", "state");
  }
  run.state.vars[name] = value;
  if (run.bot.ttls.has(name)) run.state.setAt[name] = run.now;
}

function unset(run, name) {
  delete run.state.vars[name];
  delete run.state.setAt[name];
}

function send(run, flow, method, params) {
  if (run.counters.actions >= MAX_ACTIONS) abort(run, flow, "actions", "actions");
  run.counters.actions += 1;
  run.actions.push({ method: method, params: params });
}

function completed(run, flow, step, stepType) {
  emit(run, { type: "step_completed", flow: flow, step: step, stepType: stepType });
}

// §5.3, at the start of every call.
function expire(run) {
  const bot = run.bot;
  const updatedAt = field(run.state, "updatedAt");
  if (bot.stateTtlMs !== null && updatedAt !== null && run.now - updatedAt >= bot.stateTtlMs) {
    run.state = initialState();
    emit(run, { type: "state_expired" });
  }
  const setAt = run.state.setAt;
  for (const [name, ttl] of bot.ttls) {
    const at = field(setAt, name);
    if (at !== null && run.now - at >= ttl) unset(run, name);
  }
}

// The loop of §7.1 from `target` in `flow`: a step function of that flow, a flow reference
// {id, first} (a goto into another flow), END, or STOP.
function runSteps(run, flow, target) {
  for (;;) {
    if (target === STOP) return;
    if (target === END) {
      emit(run, { type: "flow_completed", flow: flow });
      run.state.cursor = null;
      return;
    }
    if (typeof target !== "function") {
      emit(run, { type: "flow_started", flow: target.id, via: "goto" });
      flow = target.id;
      target = target.first;
    }
    if (run.counters.transitions >= MAX_TRANSITIONS) abort(run, flow, "transitions", "transitions");
    run.counters.transitions += 1;
    target = target(run);
  }
}

// ---- outgoing messages (§11) ---------------------------------------------------------------

function textMessages(run, flow, step, body, out) {
  const chunks = splitMessage(body);
  if (chunks.length === 0) emit(run, { type: "empty_text", flow: flow, step: step });
  const chat = field(run.context, "chatId");
  for (const chunk of chunks) out.push(["sendMessage", { chat_id: chat, text: chunk }]);
}

function buttonText(run, index) {
  const label = text(run, index);
  return isBlank(label) ? "\u00b7" : label;
}

// `buttons` as compiled: {keyboard: [[key]], oneTime} | {inline: [[{text, data|url}]]} |
// {remove: true}; keys are string table indexes.
function replyMarkup(run, buttons) {
  if (buttons.keyboard !== undefined) {
    return {
      keyboard: buttons.keyboard.map((row) => row.map((key) => ({ text: buttonText(run, key) }))),
      resize_keyboard: true,
      one_time_keyboard: buttons.oneTime,
    };
  }
  if (buttons.inline !== undefined) {
    const rows = buttons.inline.map((row) =>
      row.map((b) =>
        b.data !== undefined
          ? { text: buttonText(run, b.text), callback_data: b.data }
          : { text: buttonText(run, b.text), url: b.url },
      ),
    );
    return { inline_keyboard: rows };
  }
  return { remove_keyboard: true };
}

// Media first, then text; the markup on the last message (§11.1). `textKey` is a string
// table index or -1; `media` is {kind, source, caption (index or -1)} or null.
function sendReply(run, flow, step, textKey, media, buttons) {
  const out = [];
  if (media !== null) {
    const params = { chat_id: field(run.context, "chatId") };
    params[media.kind] = media.source;
    out.push([media.kind === "photo" ? "sendPhoto" : "sendDocument", params]);
    if (media.caption >= 0) {
      const caption = text(run, media.caption);
      if (cpLen(caption) > CAPTION_LIMIT) textMessages(run, flow, step, caption, out);
      else if (!isBlank(caption)) params.caption = caption;
    }
  }
  if (textKey >= 0) textMessages(run, flow, step, text(run, textKey), out);
  if (buttons !== null && out.length > 0) out[out.length - 1][1].reply_markup = replyMarkup(run, buttons);
  for (const [method, params] of out) send(run, flow, method, params);
}

// ---- steps (§8) ----------------------------------------------------------------------------

function reply(run, flow, step, textKey, media, buttons) {
  sendReply(run, flow, step, textKey, media, buttons);
  completed(run, flow, step, "reply");
}

// An ask descriptor: {flow, step, var, prompt, buttons, next}.
function sendPrompt(run, ask) {
  sendReply(run, ask.flow, ask.step, ask.prompt, null, ask.buttons);
}

function askStep(run, ask) {
  sendPrompt(run, ask);
  run.state.cursor = { flow: ask.flow, step: ask.step, since: run.now };
  emit(run, { type: "awaiting_answer", flow: ask.flow, step: ask.step });
  return STOP;
}

function answer(run, ask, value) {
  run.state.cursor = null;
  write(run, ask.flow, ask.var, value);
  emit(run, { type: "answer_received", flow: ask.flow, step: ask.step });
  completed(run, ask.flow, ask.step, "ask");
  return ask.next;
}

function isDigitCode(c) {
  return c >= 0x30 && c <= 0x39;
}

// §8.3: a number, or a string whose trim is a plain decimal of at most 30 code points.
function numberValue(value) {
  if (typeof value === "number") return value;
  if (typeof value !== "string") return null;
  const t = trim(value);
  if (t.length > 30) return null;
  let i = t.charCodeAt(0) === 0x2d ? 1 : 0;
  const intStart = i;
  while (i < t.length && isDigitCode(t.charCodeAt(i))) i += 1;
  const intLen = i - intStart;
  if (intLen === 0 || (intLen > 1 && t.charCodeAt(intStart) === 0x30)) return null;
  if (i < t.length) {
    if (t.charCodeAt(i) !== 0x2e) return null;
    i += 1;
    const fracStart = i;
    while (i < t.length && isDigitCode(t.charCodeAt(i))) i += 1;
    if (i === fracStart || i < t.length) return null;
  }
  return Number(t);
}

function stringValid(value, minLength, maxLength, rx, choices) {
  if (typeof value !== "string") return false;
  const n = cpLen(value);
  if (n < minLength || (maxLength !== null && n > maxLength)) return false;
  if (rx !== null && !rxMatch(rx, value, false)) return false;
  return choices === null || choices.includes(value);
}

function numberValid(n, integer, minimum, maximum, choices) {
  if (n === null || (integer && !Number.isInteger(n))) return false;
  if ((minimum !== null && n < minimum) || (maximum !== null && n > maximum)) return false;
  return choices === null || choices.some((c) => c === n);
}

function validationFailed(run, flow, step, name, errorKey) {
  unset(run, name);
  emit(run, { type: "validation_failed", flow: flow, step: step });
  if (errorKey >= 0) sendReply(run, flow, step, errorKey, null, null);
}

function increment(run, name, by) {
  const current = varValue(run, name);
  return (typeof current === "number" ? current : 0) + by;
}

// §8.6: the apiCall budget is checked before the request is built.
function apiStart(run, flow) {
  if (run.counters.apiCalls >= MAX_API_CALLS) abort(run, flow, "apiCalls", "apiCalls");
  run.counters.apiCalls += 1;
}

function apiCall(run, flow, step, request) {
  const c = run.counters;
  run.pending = {
    flow: flow,
    step: step,
    request: request,
    counters: { transitions: c.transitions, apiCalls: c.apiCalls, actions: c.actions },
  };
  emit(run, { type: "api_call", flow: flow, step: step });
  return STOP;
}

// An apiCall descriptor: {flow, step, map: [[var, tokens]] in name order, next, onError}.
function apiResult(run, api, result) {
  const status = field(result, "status");
  if (field(result, "ok") === true) {
    const body = field(result, "body");
    for (const [name, tokens] of api.map) write(run, api.flow, name, resolvePointer(body, tokens));
    emit(run, { type: "api_ok", flow: api.flow, step: api.step, status: status });
    completed(run, api.flow, api.step, "apiCall");
    return api.next;
  }
  const error = field(result, "error");
  emit(run, { type: "api_error", flow: api.flow, step: api.step, error: error, status: status });
  if (api.onError === null) abort(run, api.flow, "api_error", null);
  return api.onError;
}

// ---- routing (§6) --------------------------------------------------------------------------

function waitingAsk(run) {
  const cursor = field(run.state, "cursor");
  if (!isObject(cursor)) return null;
  const ask = run.bot.asks.get(field(cursor, "flow") + "/" + field(cursor, "step"));
  return ask === undefined ? null : ask;
}

function checkCursor(run) {
  const cursor = field(run.state, "cursor");
  if (cursor !== null && waitingAsk(run) === null) {
    run.state.cursor = null;
    emit(run, { type: "cursor_reset", flow: field(cursor, "flow"), step: field(cursor, "step") });
  }
}

function startFlow(run, flow, via) {
  const cursor = field(run.state, "cursor");
  if (cursor !== null) {
    emit(run, { type: "flow_abandoned", flow: field(cursor, "flow"), step: field(cursor, "step") });
    run.state.cursor = null;
  }
  emit(run, { type: "flow_started", flow: flow.id, via: via });
  runSteps(run, flow.id, flow.first);
}

function answerWith(run, ask, value) {
  runSteps(run, ask.flow, answer(run, ask, value));
}

function routeCallback(run) {
  const data = field(run.event, "data") === null ? "" : run.event.data;
  const queryId = field(run.event, "callbackId");
  const routes = run.bot.callbacks;
  for (let index = 0; index < routes.length; index += 1) {
    const r = routes[index];
    const matched = r.data !== null ? data === r.data : data.startsWith(r.prefix);
    if (!matched) continue;
    const params = { callback_query_id: queryId };
    if (r.toast >= 0) params.text = text(run, r.toast);
    send(run, r.flow.id, "answerCallbackQuery", params);
    if (r.var !== null) write(run, r.flow.id, r.var, r.data !== null ? data : data.slice(r.prefix.length));
    emit(run, { type: "callback_matched", route: index });
    startFlow(run, r.flow, "callback");
    return;
  }
  send(run, "", "answerCallbackQuery", { callback_query_id: queryId });
  const ask = waitingAsk(run);
  if (ask !== null) answerWith(run, ask, data);
  else emit(run, { type: "callback_unmatched" });
}

function routeIntent(run, said) {
  const state = run.state;
  for (const intent of run.bot.intents) {
    if (!intent.keywords[run.loc].some((k) => containsRun(said, k))) continue;
    const last = field(state.cooldowns, intent.id);
    if (intent.cooldownMs > 0 && last !== null && run.now - last < intent.cooldownMs) {
      emit(run, { type: "intent_cooldown", intent: intent.id });
      continue;
    }
    if (intent.cooldownMs > 0) state.cooldowns[intent.id] = run.now;
    emit(run, { type: "intent_matched", intent: intent.id });
    startFlow(run, intent.flow, "intent");
    return true;
  }
  return false;
}

function route(run) {
  const event = run.event;
  const bot = run.bot;
  const kind = field(event, "kind");
  if (kind === "ignored") {
    emit(run, { type: "update_ignored", reason: field(event, "reason") });
    return;
  }
  checkCursor(run);
  if (kind === "callback") {
    routeCallback(run);
    return;
  }
  const name = field(event, "command");
  const command = name === null ? undefined : bot.commands.get(name);
  if (command !== undefined) {
    emit(run, { type: "command", command: name });
    if (command.argsVar !== null) {
      const args = field(event, "args");
      write(run, command.flow.id, command.argsVar, args === null ? "" : args);
    }
    startFlow(run, command.flow, "command");
    return;
  }
  const body = field(event, "text");
  const ask = waitingAsk(run);
  if (ask !== null) {
    if (body !== null) {
      answerWith(run, ask, body);
    } else {
      emit(run, { type: "answer_rejected", flow: ask.flow, step: ask.step });
      sendPrompt(run, ask);
    }
    return;
  }
  if (body !== null && routeIntent(run, words(body))) return;
  if (bot.fallback !== null) startFlow(run, bot.fallback, "fallback");
  else emit(run, { type: "unhandled" });
}

// ---- entry (§14) ---------------------------------------------------------------------------

function resumeCall(run, resume) {
  const pending = field(resume, "pending");
  const counters = field(pending, "counters");
  run.counters = {
    transitions: field(counters, "transitions"),
    apiCalls: field(counters, "apiCalls"),
    actions: field(counters, "actions"),
  };
  const api = run.bot.apis.get(field(pending, "flow") + "/" + field(pending, "step"));
  if (api === undefined) throw new Error("resume names no apiCall step of this bot");
  runSteps(run, api.flow, apiResult(run, api, field(resume, "result")));
}

function telemetry(run) {
  const t = run.bot.telemetry;
  if (!t.enabled) return [];
  return run.events.filter((item) => !t.exclude.has(item.type));
}

function runBot(bot, input) {
  const run = newRun(bot, input);
  try {
    expire(run);
    const resume = field(input, "resume");
    if (resume !== null) resumeCall(run, resume);
    else route(run);
  } catch (e) {
    if (e !== HALT) throw e;
  }
  run.state.updatedAt = run.now;
  const output = { actions: run.actions, state: run.state, events: telemetry(run) };
  if (run.pending !== null) output.pending = run.pending;
  return output;
}
