import { describe, expect, it } from "vitest";
import { render, screen } from "@testing-library/react";
import { atLeast, can, NEEDS, ROLES } from "./roles";
import { Can } from "../components/ui";
import { readCookie } from "./csrf";

describe("roles", () => {
  it("orders viewer < editor < owner", () => {
    expect(atLeast("OWNER", "EDITOR")).toBe(true);
    expect(atLeast("EDITOR", "EDITOR")).toBe(true);
    expect(atLeast("VIEWER", "EDITOR")).toBe(false);
    expect(atLeast(null, "VIEWER")).toBe(false);
  });

  it("matches the API's matrix (docs/api.md#roles)", () => {
    const matrix: Record<string, [boolean, boolean, boolean]> = {
      view: [true, true, true],
      saveSpec: [false, true, true],
      generate: [false, true, true],
      deploy: [false, false, true],
      rollback: [false, false, true],
      rollout: [false, false, true],
      createBot: [false, false, true],
      deleteBot: [false, false, true],
      manageMembers: [false, false, true],
      secrets: [false, true, true],
      manageSecrets: [false, false, true],
    };
    for (const [action, expected] of Object.entries(matrix)) {
      expect(ROLES.map((r) => can(r, action as keyof typeof NEEDS))).toEqual(expected);
      expect(can(undefined, action as keyof typeof NEEDS)).toBe(false);
    }
  });

  it("<Can> renders only what the role allows", () => {
    const { rerender } = render(
      <Can role="VIEWER" action="deploy" otherwise={<span>read only</span>}>
        <button>Deploy</button>
      </Can>,
    );
    expect(screen.queryByText("Deploy")).toBeNull();
    expect(screen.getByText("read only")).toBeTruthy();
    rerender(
      <Can role="OWNER" action="deploy">
        <button>Deploy</button>
      </Can>,
    );
    expect(screen.getByText("Deploy")).toBeTruthy();
  });
});

describe("csrf cookie", () => {
  it("reads one cookie out of document.cookie", () => {
    expect(readCookie("a=1; botkiln_csrf=abc-_1; b=2", "botkiln_csrf")).toBe("abc-_1");
    expect(readCookie("xbotkiln_csrf=no", "botkiln_csrf")).toBeNull();
    expect(readCookie("", "botkiln_csrf")).toBeNull();
    expect(readCookie("botkiln_csrf=a%3Db", "botkiln_csrf")).toBe("a=b");
  });
});
