/**
 * Role gating, mirroring docs/api.md#roles: viewer < editor < owner, each can do what the
 * ones before it can. The console offers only what the viewer's role allows; the API checks
 * again (a refusal is still shown if the role changed meanwhile).
 */
export type Role = "VIEWER" | "EDITOR" | "OWNER";

const RANK: Record<Role, number> = { VIEWER: 1, EDITOR: 2, OWNER: 3 };

export const ROLES: readonly Role[] = ["VIEWER", "EDITOR", "OWNER"];

/** Every gated action and the least role it needs. */
export const NEEDS = {
  view: "VIEWER",
  saveSpec: "EDITOR",
  generate: "EDITOR",
  deploy: "OWNER",
  rollback: "OWNER",
  rollout: "OWNER",
  createBot: "OWNER",
  deleteBot: "OWNER",
  manageMembers: "OWNER",
  deadLetters: "EDITOR",
  simulate: "VIEWER",
  webhook: "EDITOR",
  /** see the bot's secret names and which a revision lacks (never a value) */
  secrets: "EDITOR",
  /** add, replace and delete secrets */
  manageSecrets: "OWNER",
} as const satisfies Record<string, Role>;

export type Action = keyof typeof NEEDS;

export function atLeast(role: Role | null | undefined, needed: Role): boolean {
  return role != null && RANK[role] >= RANK[needed];
}

export function can(role: Role | null | undefined, action: Action): boolean {
  return atLeast(role, NEEDS[action]);
}

export function roleLabel(role: Role | null | undefined): string {
  return role == null ? "not a member" : role.charAt(0) + role.slice(1).toLowerCase();
}
