// The HTTP API's request body as JSON Schema, from the declarations: the fields
// the server carries (uploads excepted: they are multipart file parts), their
// types and the ranges that hold for every model, and descriptions for
// /openapi.json. A server's own limits (longest prompt, most frames or steps) are
// its policy, given here and applied on top of the declared ranges.

import { LORA_NAME_PATTERN } from "./check.js";
import { defaultText, modelRule } from "./describe.js";
import { paramsOn } from "./generation.js";
import { SIZE_PATTERN } from "./text.js";
import type { ParamSpec } from "./types.js";

/** A server's limits on one field, tighter than the declaration's. */
export interface FieldPolicy {
  maximum?: number;
  maxItems?: number;
  minLength?: number;
  maxLength?: number;
}

export type JsonSchema = Record<string, unknown>;

export type RequestBodySchema = {
  type: "object";
  additionalProperties: false;
  required: string[];
  properties: Record<string, JsonSchema>;
};

/** The JSON field of a parameter on the server (undefined when the server does not carry it). */
export function serverField(spec: ParamSpec): string | undefined {
  return spec.surfaces.includes("server") ? spec.server?.field : undefined;
}

function lower(a: number | undefined, b: number | undefined): number | undefined {
  return a === undefined ? b : b === undefined ? a : Math.min(a, b);
}

/** The field's description in /openapi.json: what it does, what the model decides, its default. */
export function fieldDescription(spec: ParamSpec): string {
  const parts = [spec.description];
  const rule = modelRule(spec);
  if (rule) parts.push(`${rule[0]?.toUpperCase()}${rule.slice(1)}.`);
  if (spec.hint) parts.push(`${spec.hint[0]?.toUpperCase()}${spec.hint.slice(1)}.`);
  // JSON says true and false where help says on and off.
  const d =
    spec.default && "value" in spec.default && typeof spec.default.value === "boolean"
      ? String(spec.default.value)
      : defaultText(spec);
  if (d) parts.push(`Default: ${d}.`);
  // Said on both fields of an exclusive pair, the declaring one first.
  for (const o of paramsOn("server")) {
    if (spec.exclusiveWith?.includes(o.key))
      parts.push(`Give ${serverField(spec)} or ${serverField(o)}, not both.`);
    else if (o.exclusiveWith?.includes(spec.key))
      parts.push(`Give ${serverField(o)} or ${serverField(spec)}, not both.`);
  }
  if (spec.server?.note) parts.push(spec.server.note);
  return parts.join(" ");
}

/** One field's JSON Schema; bounds that depend on the model are left to the model's check. */
export function fieldSchema(spec: ParamSpec, policy: FieldPolicy = {}): JsonSchema {
  const t = spec.type;
  const description = fieldDescription(spec);
  switch (t.kind) {
    case "integer": {
      const max = lower(typeof t.max === "number" ? t.max : undefined, policy.maximum);
      return {
        type: "integer",
        ...(typeof t.min === "number" ? { minimum: t.min } : {}),
        ...(max !== undefined ? { maximum: max } : {}),
        description,
      };
    }
    case "number":
      return {
        type: "number",
        ...(t.exclusiveMin ? { exclusiveMinimum: t.min } : { minimum: t.min }),
        maximum: lower(t.max, policy.maximum),
        description,
      };
    case "boolean":
      return { type: "boolean", description };
    case "text": {
      const maxLength = lower(t.maxLength, policy.maxLength);
      return {
        type: "string",
        ...(policy.minLength !== undefined ? { minLength: policy.minLength } : {}),
        ...(maxLength !== undefined ? { maxLength } : {}),
        description,
      };
    }
    case "choice":
      return { type: "string", enum: [...t.choices], description };
    case "size":
      return {
        type: "string",
        pattern: SIZE_PATTERN,
        description,
        ...(spec.server?.example ? { examples: [spec.server.example] } : {}),
      };
    case "input":
      return { type: "string", format: "binary", description };
    case "numbers":
      return {
        type: "array",
        minItems: 1,
        maxItems: lower(t.maxItems, policy.maxItems) as number,
        items: {
          type: "number",
          ...(t.exclusiveMin ? { exclusiveMinimum: t.min } : { minimum: t.min }),
          maximum: t.max,
        },
        description,
      };
    case "loras":
      // The server takes LoRAs by name only: a path would let a client read any file.
      return {
        type: "array",
        maxItems: lower(t.maxItems, policy.maxItems) as number,
        items: {
          type: "object",
          additionalProperties: false,
          required: ["name"],
          properties: {
            name: { type: "string", pattern: LORA_NAME_PATTERN, description: "A name GET /v1/loras lists." },
            strength: {
              type: "number",
              minimum: t.strength.min,
              maximum: t.strength.max,
              description: `Default ${t.strength.default}.`,
            },
          },
        },
        description,
      };
  }
}

/**
 * The JSON request body: every field the server carries, in declaration order, with
 * `policy` (by JSON field name) tightening the declared ranges.
 */
export function requestBodySchema(policy: Record<string, FieldPolicy> = {}): RequestBodySchema {
  const properties: Record<string, JsonSchema> = {};
  const required: string[] = [];
  for (const spec of paramsOn("server")) {
    const field = serverField(spec);
    if (field === undefined || spec.server?.upload) continue;
    properties[field] = fieldSchema(spec, policy[field]);
    if (spec.required) required.push(field);
  }
  return { type: "object", additionalProperties: false, required, properties };
}

/** The JSON fields of the request whose values are numbers, and those that are true or false. */
export function requestFieldKinds(): { numeric: Set<string>; boolean: Set<string> } {
  const numeric = new Set<string>();
  const boolean = new Set<string>();
  for (const spec of paramsOn("server")) {
    const field = serverField(spec);
    if (field === undefined) continue;
    if (spec.type.kind === "integer" || spec.type.kind === "number") numeric.add(field);
    if (spec.type.kind === "boolean") boolean.add(field);
  }
  return { numeric, boolean };
}

/** The JSON fields of the request whose values are lists (a multipart form sends them as JSON text). */
export function requestListFields(): Set<string> {
  const list = new Set<string>();
  for (const spec of paramsOn("server")) {
    const field = serverField(spec);
    if (field !== undefined && (spec.type.kind === "numbers" || spec.type.kind === "loras")) list.add(field);
  }
  return list;
}
