// Checking one value against its declaration. Each surface names the value its
// own way (the option "width", the field "size", the flag "--size") and throws
// its own error type, so a check returns the sentence and the caller throws.
import type { ModelLimits } from "../pipelines/options.js";
import type { Bound, ParamSpec, ValueType } from "./types.js";

/** The model limits known where the check runs (none on the CLI before the model folder is read). */
export type KnownLimits = Partial<ModelLimits>;

export interface CheckOptions {
  /** A tighter upper bound for this run (contextFrames: the input clip's length). */
  max?: number;
  /** The value was typed (a flag): the library-only spellings ("false or …") do not apply. */
  typed?: boolean;
}

export function resolveBound(b: Bound, limits: KnownLimits): number | undefined {
  return typeof b === "number" ? b : limits[b];
}

function rangeWords(min: number | undefined, max: number | undefined): string {
  if (min !== undefined && max !== undefined) return `from ${min} to ${max}`;
  if (min !== undefined) return `of at least ${min}`;
  if (max !== undefined) return `of at most ${max}`;
  return "";
}

/** "1 + 4k (1, 5, 9, …)" for a model with temporal factor 4. */
export function temporalForm(tf: number, letter = "k"): string {
  return `1 + ${tf}${letter} (1, ${1 + tf}, ${1 + 2 * tf}, …)`;
}

export function choiceWords(choices: readonly string[]): string {
  const q = choices.map((c) => `'${c}'`);
  return q.length < 2 ? (q[0] ?? "") : `${q.slice(0, -1).join(", ")} or ${q[q.length - 1]}`;
}

function numberRange(t: { min: number; max: number; exclusiveMin?: boolean }): string {
  return t.exclusiveMin
    ? `in (${t.min}, ${t.max}] (above ${t.min}, at most ${t.max})`
    : `from ${t.min} to ${t.max}`;
}

/** What a value must be, as the end of "X must be …": "an integer from 1 to 1000". */
export function expectation(spec: ParamSpec, limits: KnownLimits = {}, o: CheckOptions = {}): string {
  const t = spec.type;
  const hint = spec.hint ? ` (${spec.hint})` : "";
  switch (t.kind) {
    case "integer": {
      const max = o.max ?? resolveBound(t.max, limits);
      const range = rangeWords(resolveBound(t.min, limits), max);
      const tf = limits.temporalFactor;
      const form = t.temporal && tf !== undefined ? ` of the form 1 + ${tf}k` : "";
      return `an integer${range ? ` ${range}` : ""}${form}${hint}`;
    }
    case "number":
      return `${t.off === false && !o.typed ? "false or " : ""}a number ${numberRange(t)}${hint}`;
    case "boolean":
      return "true or false";
    case "text":
      return t.maxLength === undefined ? "a string" : `a string of at most ${t.maxLength} characters`;
    case "choice":
      return choiceWords(t.choices);
    case "size": {
      const m = limits.sideMultiple;
      return `WIDTHxHEIGHT${m !== undefined ? `, each a positive multiple of ${m}` : ""}`;
    }
    case "input":
      return t.media === "image"
        ? "an image"
        : t.media === "video"
          ? "a video"
          : "text-encoder states (a tensor [seq, text_dim] or [1, seq, text_dim])";
    case "numbers":
      return `a list of 1 to ${t.maxItems} numbers, each ${numberRange(t)}, each below the one before`;
    case "loras":
      return `a list of at most ${t.maxItems} LoRAs, each ${o.typed ? "FILE[:STRENGTH]" : "{ name or path, strength }"} with a strength from ${t.strength.min} to ${t.strength.max}`;
  }
}

/** A LoRA name in a LoRA folder: a plain file name, never a path. */
export const LORA_NAME_PATTERN = "^[^/\\\\.][^/\\\\]{0,199}$";
const LORA_NAME = new RegExp(LORA_NAME_PATTERN);

function numbersProblem(
  t: Extract<ValueType, { kind: "numbers" }>,
  value: unknown,
  label: string,
): string | null {
  if (!Array.isArray(value) || value.length < 1 || value.length > t.maxItems)
    return `${label} must be a list of 1 to ${t.maxItems} numbers`;
  for (const [i, v] of value.entries()) {
    const low = t.exclusiveMin ? v > t.min : v >= t.min;
    if (typeof v !== "number" || !Number.isFinite(v) || !low || v > t.max)
      return `${label}[${i}] must be a number ${numberRange(t)}, got ${String(v)}`;
    if (i > 0 && v >= (value[i - 1] as number))
      return `${label} must decrease: ${label}[${i}] is ${v}, not below ${value[i - 1]}`;
  }
  return null;
}

function lorasProblem(
  t: Extract<ValueType, { kind: "loras" }>,
  value: unknown,
  label: string,
): string | null {
  if (!Array.isArray(value)) return `${label} must be a list of LoRAs, each { name or path, strength }`;
  if (value.length > t.maxItems) return `${label} may hold at most ${t.maxItems} LoRAs, got ${value.length}`;
  for (const [i, item] of value.entries()) {
    const at = `${label}[${i}]`;
    if (item === null || typeof item !== "object" || Array.isArray(item))
      return `${at} must be an object { name or path, strength }`;
    const o = item as Record<string, unknown>;
    const extra = Object.keys(o).find((k) => k !== "name" && k !== "path" && k !== "strength");
    if (extra !== undefined) return `${at} has an unknown field '${extra}' (name or path, and strength)`;
    if ((o.name === undefined) === (o.path === undefined))
      return `${at} must give a name or a path, one of them`;
    if (o.path !== undefined && (typeof o.path !== "string" || o.path === ""))
      return `${at}.path must be a file path`;
    if (o.name !== undefined && (typeof o.name !== "string" || !LORA_NAME.test(o.name)))
      return `${at}.name must be a LoRA's name (a file name in the LoRA folder, not a path), got ${JSON.stringify(o.name)}`;
    const s = o.strength;
    if (
      s !== undefined &&
      (typeof s !== "number" || !Number.isFinite(s) || s < t.strength.min || s > t.strength.max)
    )
      return `${at}.strength must be a number from ${t.strength.min} to ${t.strength.max}, got ${String(s)}`;
  }
  return null;
}

/**
 * Why `value` is not acceptable for `spec` (a sentence naming it `label`), or null.
 * Bounds that name a model limit are checked where that limit is known.
 */
export function problem(
  spec: ParamSpec,
  value: unknown,
  label: string,
  limits: KnownLimits = {},
  o: CheckOptions = {},
): string | null {
  const t = spec.type;
  const got = `, got ${typeof value === "string" ? `'${value}'` : String(value)}`;
  const must = (what: string) => `${label} must be ${what}`;
  switch (t.kind) {
    case "integer": {
      const min = resolveBound(t.min, limits);
      const max = o.max ?? resolveBound(t.max, limits);
      if (
        typeof value !== "number" ||
        !Number.isInteger(value) ||
        (min !== undefined && value < min) ||
        (max !== undefined && value > max)
      )
        return must(expectation(spec, limits, o)) + got;
      const m = t.multipleOf ? limits.sideMultiple : undefined;
      if (m !== undefined && value % m !== 0)
        return `${must(`a multiple of ${m}`)} (the VAE's spatial factor × the patch size)${got}`;
      const tf = t.temporal ? limits.temporalFactor : undefined;
      if (tf !== undefined && (value - 1) % tf !== 0) return must(temporalForm(tf)) + got;
      return null;
    }
    case "number":
      if (t.off === false && value === false && !o.typed) return null;
      if (
        typeof value !== "number" ||
        !Number.isFinite(value) ||
        (t.exclusiveMin ? value <= t.min : value < t.min) ||
        value > t.max
      )
        return must(expectation(spec, limits, o)) + got;
      return null;
    case "boolean":
      return typeof value === "boolean" ? null : must("true or false") + got;
    case "text":
      if (typeof value !== "string") return must("a string");
      if (t.maxLength !== undefined && [...value].length > t.maxLength)
        return `${label} must be at most ${t.maxLength} characters`;
      return null;
    case "choice":
      return typeof value === "string" && t.choices.includes(value)
        ? null
        : must(choiceWords(t.choices)) + got;
    case "size":
      return sizeProblem(value, label, limits);
    case "input":
      return null;
    case "numbers":
      return numbersProblem(t, value, label);
    case "loras":
      return lorasProblem(t, value, label);
  }
}

/** A [width, height] pair against the model: both positive multiples of its side multiple. */
function sizeProblem(value: unknown, label: string, limits: KnownLimits): string | null {
  const [w, h] = Array.isArray(value) ? (value as unknown[]) : [];
  if (typeof w !== "number" || typeof h !== "number")
    return `${label} must be WIDTHxHEIGHT, got ${String(value)}`;
  const m = limits.sideMultiple ?? 1;
  const max = limits.maxSide;
  if (
    w < m ||
    h < m ||
    w % m !== 0 ||
    h % m !== 0 ||
    !Number.isInteger(w) ||
    !Number.isInteger(h) ||
    (max !== undefined && (w > max || h > max))
  )
    return `${label}'s width and height must be positive multiples of ${m}${max !== undefined ? ` of at most ${max}` : ""}, got ${w}x${h}`;
  return null;
}
