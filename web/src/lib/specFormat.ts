/**
 * Spec text for people. Saved specs come back from the API in RFC 8785 canonical form (keys
 * sorted), which reads badly (`flows` before `meta`, a step's `next` before its `type`).
 * `formatSpec` prints a spec with each object's keys in the order the JSON Schema declares
 * them (targets — next, elseNext, onFail, onError — last in a step), user-named keys (string
 * keys, variables) in their given order. Same spec, same text: the editor and the diff use it.
 */
import { BOTSPEC_SCHEMA, type JsonSchema } from "./schema";

const TARGETS_LAST = ["next", "elseNext", "onFail", "onError"];

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function resolve(schema: unknown, root: JsonSchema): JsonSchema | null {
  let s = schema;
  for (let i = 0; i < 20 && isObject(s) && typeof s.$ref === "string"; i++) {
    const ref = s.$ref;
    if (!ref.startsWith("#/")) return null;
    let target: unknown = root;
    for (const part of ref.slice(2).split("/")) target = isObject(target) ? target[part] : undefined;
    s = target;
  }
  return isObject(s) ? s : null;
}

/** The declared property names of `schema` for `value` (following $ref, allOf if/then, oneOf/anyOf). */
function declared(schema: JsonSchema | null, value: Record<string, unknown>, root: JsonSchema): { order: string[]; props: Record<string, unknown> } {
  const order: string[] = [];
  const props: Record<string, unknown> = {};
  const add = (s: JsonSchema | null) => {
    if (!s) return;
    if (isObject(s.properties)) {
      for (const [k, v] of Object.entries(s.properties)) {
        if (!(k in props)) order.push(k);
        // a more specific branch (a step type's definition) overrides the base's `{enum: …}`
        props[k] = k in props && !isObject(v) ? props[k] : v;
      }
    }
    for (const branch of [...(Array.isArray(s.oneOf) ? s.oneOf : []), ...(Array.isArray(s.anyOf) ? s.anyOf : [])]) {
      add(resolve(branch, root));
    }
    if (Array.isArray(s.allOf)) {
      for (const part of s.allOf) {
        const p = resolve(part, root);
        if (!p) continue;
        if (isObject(p.if) && isObject(p.if.properties)) {
          const matches = Object.entries(p.if.properties).every(([k, cond]) => isObject(cond) && "const" in cond && value[k] === cond.const);
          if (matches) add(resolve(p.then, root));
        } else add(p);
      }
    }
  };
  add(schema);
  return { order, props };
}

function objectValueSchema(schema: JsonSchema | null, key: string, root: JsonSchema, props: Record<string, unknown>): JsonSchema | null {
  if (key in props) return resolve(props[key], root);
  if (schema && isObject(schema.additionalProperties)) return resolve(schema.additionalProperties, root);
  return null;
}

/** `value` with object keys reordered per `schema` (a new value; `value` is not changed). */
export function orderBySchema(value: unknown, schema: JsonSchema | null = BOTSPEC_SCHEMA, root: JsonSchema = BOTSPEC_SCHEMA): Json {
  if (Array.isArray(value)) {
    const items = schema ? resolve(schema.items, root) : null;
    return value.map((v) => orderBySchema(v, items, root));
  }
  if (!isObject(value)) return value as Json;
  const { order, props } = declared(schema, value, root);
  const isStep = "type" in props && "id" in props && TARGETS_LAST.some((t) => t in props);
  let keys: string[];
  if (order.length === 0) {
    keys = Object.keys(value);
  } else {
    const known = ["id", ...order.filter((k) => k !== "id")].filter((k) => k in value && k in props);
    const rest = Object.keys(value).filter((k) => !order.includes(k));
    keys = [...known, ...rest];
    if (isStep) keys = [...keys.filter((k) => !TARGETS_LAST.includes(k)), ...TARGETS_LAST.filter((k) => k in value)];
  }
  const out: { [k: string]: Json } = {};
  for (const k of keys) out[k] = orderBySchema(value[k], objectValueSchema(schema, k, root, props), root);
  return out;
}

/** The spec as the editor shows it: schema key order, two-space indent, a final newline. */
export function formatSpec(spec: unknown): string {
  return JSON.stringify(orderBySchema(spec), null, 2) + "\n";
}

/** A first spec for a bot that has none. */
export function starterSpec(botId: string, name: string): unknown {
  return {
    schema_ver: 1,
    meta: { botId, name: name || botId, locales: ["en"], defaultLocale: "en" },
    commands: [{ command: "start", flow: "welcome" }],
    flows: [
      {
        id: "welcome",
        steps: [
          { id: "ask_name", type: "ask", var: "name", prompt: "ask.name" },
          { id: "hello", type: "reply", text: "hello" },
        ],
      },
    ],
    state: { vars: { name: { type: "string" } } },
    localization: { strings: { "ask.name": { en: "Hi! What is your name?" }, hello: { en: "Nice to meet you, {{state.name}}!" } } },
  };
}
