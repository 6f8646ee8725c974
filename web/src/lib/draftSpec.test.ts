import { afterEach, expect, it } from "vitest";
import { shareDraft, sharedDraft } from "./draftSpec";

afterEach(() => sessionStorage.clear());

it("shares the editor's unsaved text per bot until it is cleared", () => {
  expect(sharedDraft("faq-bot")).toBeNull();
  shareDraft("faq-bot", '{"schema_ver": 1}');
  expect(sharedDraft("faq-bot")).toBe('{"schema_ver": 1}');
  expect(sharedDraft("other")).toBeNull();
  shareDraft("faq-bot", null);
  expect(sharedDraft("faq-bot")).toBeNull();
});
