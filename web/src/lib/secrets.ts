/**
 * The secrets panel's pure logic (docs/secrets.md): a secret's name and value checked the way
 * the API checks them (`infra/db/bot_secrets.py`: `NAME`, `check_value`), so most mistakes are
 * caught before a request, and the server's `InvalidInput.field` mapped back onto an input.
 *
 * A value is write-only: nothing here (nor any message) repeats it.
 */

/** At most this many secrets per bot (`MAX_SECRETS`); replacing one at the limit is allowed. */
export const MAX_SECRETS = 50;
/** A value's size limit in bytes of UTF-8 (`MAX_VALUE_BYTES`). */
export const MAX_VALUE_BYTES = 4096;
/** At most this many characters in a name. */
export const MAX_NAME_LENGTH = 64;
/** What `{{secret.NAME}}` admits: A-Z, then A-Z, 0-9 or _, at most 64 characters. */
export const NAME_RULE = /^[A-Z][A-Z0-9_]{0,63}$/;

// eslint-disable-next-line no-control-regex -- control characters are exactly what this looks for
const CONTROL = /[\u0000-\u001f\u007f]/;

/** Why `name` is not a secret name (a sentence naming the offending character), or null. */
export function nameProblem(name: string): string | null {
  if (name === "") return "give the name, e.g. CRM_TOKEN";
  if (NAME_RULE.test(name)) return null;
  if (name.length > MAX_NAME_LENGTH) return `at most ${MAX_NAME_LENGTH} characters (this is ${name.length})`;
  if (!/^[A-Z]/.test(name)) return "a name starts with a capital letter A-Z";
  const bad = [...name].find((c) => !/[A-Z0-9_]/.test(c));
  const shown = bad === undefined ? "" : /\s/.test(bad) ? " (a space)" : ` (“${bad}”)`;
  return `only capital letters A-Z, digits and _${shown}, as in {{secret.CRM_TOKEN}}`;
}

/** Why `value` cannot be a secret's value (a sentence without the value), or null. */
export function valueProblem(value: string): string | null {
  const size = new TextEncoder().encode(value).length;
  if (size === 0) return "give the value";
  if (size > MAX_VALUE_BYTES) return `at most ${MAX_VALUE_BYTES} bytes of UTF-8 (this is ${size})`;
  if (CONTROL.test(value)) return "no control characters (line break, tab, …): an HTTP header cannot carry them";
  return null;
}

/** The inputs of the secret form, named as setBotSecret's arguments (the server's `InvalidInput.field`). */
export type SecretField = "name" | "value";
export type SecretErrors = Partial<Record<SecretField, string>>;

/** The input a server `InvalidInput.field` names, or null (shown as a general problem). */
export function secretField(serverField: string): SecretField | null {
  return serverField === "name" || serverField === "value" ? serverField : null;
}

/** setBotSecret's name and value (the name without surrounding spaces), or what is wrong with each. */
export function validateSecret(form: { name: string; value: string }): { secret: { name: string; value: string } } | { errors: SecretErrors } {
  const name = form.name.trim();
  const errors: SecretErrors = {};
  const n = nameProblem(name);
  if (n) errors.name = n;
  const v = valueProblem(form.value);
  if (v) errors.value = v;
  return n || v ? { errors } : { secret: { name, value: form.value } };
}

/** Whether adding `name` would exceed the limit (a name already set is a replacement, always allowed). */
export function atLimit(names: readonly string[], name: string, limit: number = MAX_SECRETS): boolean {
  return names.length >= limit && !names.includes(name);
}
