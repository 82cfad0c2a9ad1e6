import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { JsonSyntaxError, parseStrictJson } from "./strict-json.js";

describe("parseStrictJson", () => {
  it("agrees with JSON.parse on valid JSON without duplicate keys", () => {
    fc.assert(
      fc.property(fc.jsonValue(), fc.constantFrom(undefined, 2), (v, indent) => {
        const text = JSON.stringify(v, null, indent);
        expect(parseStrictJson(text)).toEqual(JSON.parse(text));
      }),
      { numRuns: 500 },
    );
  });

  it("rejects whatever JSON.parse rejects, with its own error type", () => {
    fc.assert(
      fc.property(fc.string(), (s) => {
        let native = true;
        try {
          JSON.parse(s);
        } catch {
          native = false;
        }
        if (native) return;
        expect(() => parseStrictJson(s)).toThrow(JsonSyntaxError);
      }),
      { numRuns: 2000 },
    );
  });

  it("reports duplicate keys at any depth, keeps __proto__ as a plain key, and bounds depth", () => {
    expect(() => parseStrictJson('{"a": 1, "a": 2}')).toThrow(/duplicate key "a"/);
    expect(() => parseStrictJson('{"x": {"b": 1, "c": 2, "b": 3}}')).toThrow(/duplicate key "b"/);
    expect(parseStrictJson('{"a": 1, "b": {"a": 2}}')).toEqual({ a: 1, b: { a: 2 } });
    const o = parseStrictJson('{"__proto__": {"polluted": true}}') as Record<string, unknown>;
    expect(Object.keys(o)).toEqual(["__proto__"]);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(() => parseStrictJson("[".repeat(65) + "]".repeat(65))).toThrow(/nesting deeper than 64/);
    expect(parseStrictJson("[".repeat(64) + "]".repeat(64))).toBeDefined();
    expect(parseStrictJson('"\\u00e9\\n\\ud83d\\ude00"')).toBe("é\n😀");
    for (const bad of ["", " ", "01", "1.", "+1", "[1,]", '{"a":1,}', "nul", '"\t"', "{} {}", "'a'", "NaN"])
      expect(() => parseStrictJson(bad), bad).toThrow(JsonSyntaxError);
  });
});
