// A parameter's range and default in words, for `--help` and /openapi.json.
// Model limits are named with Wan2.1's values, the family every model folder
// Tessera reads belongs to today.
import type { GenerationDefaults } from "../pipelines/options.js";
import type { Bound, ParamSpec } from "./types.js";

const MODEL_BOUND_WORDS: Record<Exclude<Bound, number>, string> = {
  sideMultiple: "the model's side multiple (16 for Wan2.1)",
  maxSide: "the model's largest side (4096)",
  maxFrames: "the model's maximum (1021 for Wan2.1)",
};

function boundWords(b: Bound): string {
  return typeof b === "number"
    ? b === Number.MAX_SAFE_INTEGER
      ? "2^53 − 1"
      : String(b)
    : MODEL_BOUND_WORDS[b];
}

/** What the model decides about a value, beyond plain bounds ("" when nothing). */
export function modelRule(spec: ParamSpec): string {
  const t = spec.type;
  if (t.kind === "size") return `each side a multiple of ${MODEL_BOUND_WORDS.sideMultiple}`;
  if (t.kind !== "integer") return "";
  if (t.multipleOf) return `a multiple of ${MODEL_BOUND_WORDS.sideMultiple}`;
  if (t.temporal) return "1 + 4k (1, 5, 9, …, 81, …; 4: the model's temporal factor)";
  return "";
}

/** The range in words: "1 to 1000", "above 0, at most 1", "unipc|euler" ("" for none). */
export function rangeText(spec: ParamSpec): string {
  const t = spec.type;
  const hint = spec.hint ? ` (${spec.hint})` : "";
  switch (t.kind) {
    case "integer": {
      const rule = modelRule(spec);
      // A side multiple or 1 + 4k already says the least value.
      const bounds = rule ? `at most ${boundWords(t.max)}` : `${boundWords(t.min)} to ${boundWords(t.max)}`;
      return `${rule ? `${rule}, ` : ""}${bounds}${hint}`;
    }
    case "number":
      return `${t.exclusiveMin ? `above ${t.min}, at most ${t.max}` : `${t.min} to ${t.max}`}${hint}`;
    case "choice":
      return t.choices.join("|");
    case "text":
      return t.maxLength === undefined ? "" : `at most ${t.maxLength} characters`;
    case "size":
      return `${modelRule(spec)}, at most ${boundWords("maxSide")}`;
    case "numbers":
      return `up to ${t.maxItems} values, ${t.exclusiveMin ? `above ${t.min}` : `${t.min}`} to ${t.max}, decreasing`;
    case "loras":
      return `${spec.cli?.repeatable ? "repeatable; " : ""}strength ${t.strength.min} to ${t.strength.max}, default ${t.strength.default}`;
    case "boolean":
    case "input":
      return "";
  }
}

function valueWords(v: number | string | boolean): string {
  if (v === "") return "empty";
  if (typeof v === "boolean") return v ? "on" : "off";
  return String(v);
}

/**
 * The default in words: a value, the model's own (its values when `defaults` are
 * given, e.g. "832x480"), or how it is worked out ("" when there is none).
 */
export function defaultText(spec: ParamSpec, defaults?: GenerationDefaults): string {
  const d = spec.default;
  if (d === undefined) return "";
  if ("value" in d) return valueWords(d.value);
  if ("note" in d) return d.note;
  const keys = typeof d.model === "string" ? [d.model] : d.model;
  if (!defaults) return "the model's";
  return keys.map((k) => String(defaults[k as keyof GenerationDefaults])).join("x");
}
