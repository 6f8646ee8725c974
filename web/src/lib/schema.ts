/** The BotSpec JSON Schema, straight from the interpreter (one source of truth; bundled at build time). */
import botspecSchema from "../../../interpreter/schema/botspec.v1.json";

export type JsonSchema = Record<string, unknown>;
export const BOTSPEC_SCHEMA: JsonSchema = botspecSchema as JsonSchema;
