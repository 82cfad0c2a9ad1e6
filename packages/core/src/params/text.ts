// Values typed as text (command-line flags): turned into the declared type and
// checked against the ranges that hold for every model. What depends on the model
// (multiples of 16, 1 + 4k frames) is checked once its folder has been read.
import { expectation, problem } from "./check.js";
import type { ParamSpec } from "./types.js";

/** WIDTHxHEIGHT as typed, for both the CLI and the HTTP API's `size`. */
export const SIZE_PATTERN = "^[0-9]{1,5}x[0-9]{1,5}$";
const SIZE = new RegExp(SIZE_PATTERN);

/** "832x480" → [832, 480], or null when it does not look like WIDTHxHEIGHT. */
export function parseSize(text: string): [number, number] | null {
  if (!SIZE.test(text)) return null;
  const [w, h] = text.split("x").map(Number) as [number, number];
  return [w, h];
}

export type Parsed = { ok: true; value: unknown } | { ok: false; message: string };

/**
 * `text` as a value of `spec`'s type, or the sentence that says what it should have
 * been, naming it `label` ("--steps must be an integer from 1 to 1000, got '0'").
 */
export function parseText(spec: ParamSpec, text: string, label: string): Parsed {
  const t = spec.type;
  const bad = (what = expectation(spec, {}, { typed: true })): Parsed => ({
    ok: false,
    message: `${label} must be ${what}, got '${text}'`,
  });
  let value: unknown;
  switch (t.kind) {
    case "integer":
      if (!/^-?\d+$/.test(text)) return bad();
      value = Number(text);
      if (!Number.isSafeInteger(value)) return bad();
      break;
    case "number":
      value = Number(text);
      if (text.trim() === "") return bad();
      break;
    case "boolean":
      if (text !== "true" && text !== "false") return bad();
      value = text === "true";
      break;
    case "size":
      value = parseSize(text);
      if (value === null) return bad("WIDTHxHEIGHT (e.g. 64x48)");
      return { ok: true, value };
    case "text":
    case "choice":
    case "input":
      value = text;
      break;
    case "numbers": {
      const parts = text.split(",").map((x) => x.trim());
      if (parts.some((x) => x === "" || !Number.isFinite(Number(x))))
        return bad(`a comma-separated list of numbers (e.g. 1000,750,500,250)`);
      value = parts.map(Number);
      const why = problem(spec, value, label, {}, { typed: true });
      return why === null ? { ok: true, value } : { ok: false, message: why };
    }
    case "loras": {
      // FILE[:STRENGTH]; a file name that itself ends in :<number> needs an explicit :1.
      const m = /^(.*):([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)$/.exec(text);
      const path = m ? (m[1] as string) : text;
      if (path === "") return bad("FILE or FILE:STRENGTH (e.g. style.safetensors:0.8)");
      value = [m ? { path, strength: Number(m[2]) } : { path }];
      const why = problem(spec, value, label, {}, { typed: true });
      return why === null
        ? { ok: true, value }
        : { ok: false, message: why.replace(`${label}[0].`, `${label}'s `) };
    }
  }
  return problem(spec, value, label, {}, { typed: true }) === null ? { ok: true, value } : bad();
}
