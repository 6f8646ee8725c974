import { describe, expect, it } from "vitest";
import { MAX_SECRETS, MAX_VALUE_BYTES, atLimit, nameProblem, secretField, validateSecret, valueProblem } from "./secrets";

describe("nameProblem", () => {
  it("takes what {{secret.NAME}} takes: A-Z, then A-Z, 0-9 or _, at most 64", () => {
    for (const ok of ["A", "CRM_TOKEN", "K2", "A_", "X".repeat(64), `A${"_9".repeat(31)}B`]) expect(nameProblem(ok)).toBeNull();
  });

  it("says what is wrong, naming the character", () => {
    expect(nameProblem("")).toMatch(/give the name/);
    expect(nameProblem("crm_token")).toBe("a name starts with a capital letter A-Z");
    expect(nameProblem("_TOKEN")).toBe("a name starts with a capital letter A-Z");
    expect(nameProblem("1TOKEN")).toBe("a name starts with a capital letter A-Z");
    expect(nameProblem("CRM-TOKEN")).toContain("(“-”)");
    expect(nameProblem("CRM_token")).toContain("(“t”)");
    expect(nameProblem("CRM TOKEN")).toContain("(a space)");
    expect(nameProblem("ÄPI")).toMatch(/starts with a capital letter/);
    expect(nameProblem("X".repeat(65))).toBe("at most 64 characters (this is 65)");
  });
});

describe("valueProblem", () => {
  it("takes 1 to 4096 bytes of UTF-8 without control characters", () => {
    expect(valueProblem("Bearer abc.def")).toBeNull();
    expect(valueProblem("x".repeat(MAX_VALUE_BYTES))).toBeNull();
    expect(valueProblem("é".repeat(MAX_VALUE_BYTES / 2))).toBeNull();
    expect(valueProblem("")).toBe("give the value");
    // bytes, not characters: 2049 × "é" is 4098 bytes
    expect(valueProblem("é".repeat(MAX_VALUE_BYTES / 2 + 1))).toBe("at most 4096 bytes of UTF-8 (this is 4098)");
    for (const bad of ["a\tb", "a\nb", "a\rb", "\u0000", "a\u007f"]) expect(valueProblem(bad)).toMatch(/control characters/);
  });

  it("never repeats the value", () => {
    for (const v of ["", "s3cr3t\n", "x".repeat(5000)]) expect(valueProblem(v) ?? "").not.toContain(v || "\u0001");
  });
});

describe("validateSecret", () => {
  it("trims the name, keeps the value as typed", () => {
    expect(validateSecret({ name: " CRM_TOKEN ", value: " v " })).toEqual({ secret: { name: "CRM_TOKEN", value: " v " } });
  });

  it("reports each field's problem", () => {
    expect(validateSecret({ name: "crm", value: "" })).toEqual({ errors: { name: "a name starts with a capital letter A-Z", value: "give the value" } });
    expect(validateSecret({ name: "OK", value: "a\nb" })).toEqual({ errors: { value: expect.stringMatching(/control/) as unknown as string } });
  });
});

describe("secretField and atLimit", () => {
  it("maps the server's InvalidInput.field onto an input", () => {
    expect(secretField("name")).toBe("name");
    expect(secretField("value")).toBe("value");
    expect(secretField("botId")).toBeNull();
  });

  it("a replacement is allowed at the limit, an addition is not", () => {
    const names = Array.from({ length: MAX_SECRETS }, (_, i) => `S${i}`);
    expect(atLimit(names, "S3")).toBe(false);
    expect(atLimit(names, "NEW")).toBe(true);
    expect(atLimit(names.slice(1), "NEW")).toBe(false);
  });
});
