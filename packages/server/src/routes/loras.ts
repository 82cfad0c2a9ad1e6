// LoRAs and the few-step schedule on the API: GET /v1/loras lists the LoRAs the
// operator's folder holds (`tessera serve --loras DIR`), and a request's `loras`
// picks them by name with a strength — never by path, so a client cannot make the
// server read a file of its choosing. A name the folder does not hold is a 400
// naming the field. An explicit schedule (timesteps / sigmas) sets the step count.
import { param, problem } from "@tessera/core/params";
import type { FastifyInstance } from "fastify";
import { RequestFieldError } from "../generator.js";
import { AUTH } from "../http/auth.js";
import type { ServerContext } from "../http/context.js";

const loraListSchema = {
  type: "object",
  properties: {
    object: { type: "string", enum: ["list"] },
    data: {
      type: "array",
      items: {
        type: "object",
        properties: {
          object: { type: "string", enum: ["lora"] },
          name: { type: "string", description: "What a request's loras[].name gives." },
        },
      },
    },
  },
} as const;

export function registerLoraRoutes(app: FastifyInstance, ctx: ServerContext): void {
  app.get(
    "/v1/loras",
    {
      config: AUTH,
      schema: {
        tags: ["videos"],
        summary: "The LoRAs requests may name",
        description:
          "The .safetensors files of the folder the server was started with (tessera serve --loras DIR), by name. " +
          "POST /v1/videos takes them as loras: [{name, strength}]; the list is read afresh on each call.",
        response: { 200: loraListSchema },
      },
    },
    async () => ({
      object: "list",
      data: (ctx.generator.listLoras?.() ?? []).map((name) => ({ object: "lora", name })),
    }),
  );
}

/** The request's LoRAs by name, each in `available`, with the strength filled in (default 1). */
export function requestedLoras(
  loras: readonly { name: string; strength?: number }[] | undefined,
  available: readonly string[],
  /** The request field: loras, or loras_2 (a two-expert model's second expert). */
  field = "loras",
): { name: string; strength: number }[] {
  if (!loras?.length) return [];
  const out: { name: string; strength: number }[] = [];
  for (const [i, l] of loras.entries()) {
    const name = l.name.replace(/\.safetensors$/, "");
    if (!available.includes(name))
      throw new RequestFieldError(
        field,
        available.length
          ? `${field}[${i}].name: no LoRA named '${l.name}' on this server (GET /v1/loras lists them: ${available.map((n) => `'${n}'`).join(", ")})`
          : `${field}[${i}].name: this server has no LoRAs (it was started without --loras DIR)`,
      );
    if (out.some((o) => o.name === name))
      throw new RequestFieldError(field, `${field}[${i}]: '${name}' is given twice; give each LoRA once`);
    out.push({ name, strength: l.strength ?? 1 });
  }
  return out;
}

/**
 * An explicit schedule's checks beyond the schema (decreasing values, lengths that
 * agree with each other and with steps); returns the list that sets the step count.
 */
export function checkSchedule(body: {
  timesteps?: number[];
  sigmas?: number[];
  steps?: number;
}): number[] | undefined {
  for (const key of ["timesteps", "sigmas"] as const) {
    const v = body[key];
    if (v === undefined) continue;
    const message = problem(param(key), v, key);
    if (message !== null) throw new RequestFieldError(key, message);
  }
  const { timesteps, sigmas, steps } = body;
  if (timesteps && sigmas && timesteps.length !== sigmas.length)
    throw new RequestFieldError(
      "sigmas",
      `sigmas has ${sigmas.length} values and timesteps ${timesteps.length}; give lists of one length`,
    );
  const list = timesteps ?? sigmas;
  if (list && steps !== undefined && steps !== list.length)
    throw new RequestFieldError(
      "steps",
      `steps is ${steps} but ${timesteps ? "timesteps" : "sigmas"} has ${list.length} values; leave steps out (the list sets it)`,
    );
  return list;
}
