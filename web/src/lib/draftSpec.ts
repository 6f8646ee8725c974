/**
 * The spec editor's unsaved text, shared with the simulator for the tab's lifetime
 * (sessionStorage, per bot). The editor calls `shareDraft(botId, text)` while it has unsaved
 * changes and `shareDraft(botId, null)` once saved; the simulator's "draft" target starts from
 * `sharedDraft(botId)` when there is one, else from the latest saved spec version.
 */
const PREFIX = "botkiln:draft:";

function storage(): Storage | null {
  try {
    return globalThis.sessionStorage ?? null;
  } catch {
    return null; // storage disabled (privacy settings): nothing is shared
  }
}

export function shareDraft(botId: string, text: string | null): void {
  const s = storage();
  if (!s) return;
  try {
    if (text === null) s.removeItem(PREFIX + botId);
    else s.setItem(PREFIX + botId, text);
  } catch {
    // over quota: the simulator falls back to the saved version
  }
}

export function sharedDraft(botId: string): string | null {
  return storage()?.getItem(PREFIX + botId) ?? null;
}
