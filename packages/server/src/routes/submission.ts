// POST /v1/videos's body, from JSON or multipart/form-data, to a job in the store:
// reading and checking the fields, the model's own checks, moving uploaded files
// into the job's folder, and the queue limit. Uploads never outlive a refusal.
import { randomInt, randomUUID } from "node:crypto";
import { mkdir, rename, rm } from "node:fs/promises";
import type { ErrorObject, ValidateFunction } from "ajv";
import type { FastifyRequest } from "fastify";
import { RequestFieldError } from "../generator.js";
import type { ServerContext } from "../http/context.js";
import { ApiError } from "../http/errors.js";
import { readMultipart, type Upload } from "../upload.js";
import { describeSchemaError, resolveRequest, type VideoBody, validateWithGenerator } from "../validation.js";

export interface Submission {
  body: VideoBody;
  uploads: Upload[];
}

/**
 * The request's fields, checked against the body schema, and its uploads (on disk in
 * the data folder's tmp/). Multipart fields are checked here; JSON bodies were checked
 * by the route, and are checked again because fastify skips body validation for a
 * content type the schema does not list — this keeps any parser added later from
 * bypassing it.
 */
export async function readSubmission(
  ctx: ServerContext,
  req: FastifyRequest,
  validateBody: ValidateFunction,
): Promise<Submission> {
  let candidate: unknown = req.body;
  let uploads: Upload[] = [];
  if (req.isMultipart()) {
    const form = await readMultipart(req, ctx.data, {
      maxUploadBytes: ctx.limits.maxUploadBytes,
      maxFieldBytes: ctx.limits.maxPromptChars * 4 + 64,
    });
    uploads = form.uploads;
    candidate = form.fields;
  }
  if (!validateBody(candidate)) {
    await removeUploads(uploads);
    const d = describeSchemaError((validateBody.errors as ErrorObject[])[0] as ErrorObject, "body");
    throw new RequestFieldError(d.field, d.message);
  }
  return { body: candidate as VideoBody, uploads };
}

/**
 * Resolves the submission against the model, stores it as a queued job owned by
 * `keyId`, and returns the job's id; the runner is not woken here.
 */
export async function insertSubmission(
  ctx: ServerContext,
  keyId: string | null,
  { body, uploads }: Submission,
): Promise<string> {
  const { store, data, generator, limits, maxQueued } = ctx;
  const id = randomUUID();
  let moved = false;
  try {
    const inputs: { image?: string; video?: string } = {};
    for (const u of uploads) inputs[u.field] = `input-${u.field}.${u.ext}`;
    const request = resolveRequest(
      body,
      generator.info,
      limits,
      inputs,
      () => randomInt(0, 2 ** 32),
      generator.listLoras?.() ?? [],
    );
    validateWithGenerator(generator, request);
    // What the text encoder will get, so the job shows it at once (a worker's run reports it again).
    const prepared = generator.preparePrompt?.(request.prompt, request.rewrite !== false) ?? null;
    if (uploads.length > 0) {
      await mkdir(data.jobDir(id), { recursive: true });
      moved = true;
      for (const u of uploads) await rename(u.tmp, data.inputFile(id, inputs[u.field] as string));
    }
    const res = store.insertJob({ id, keyId, request, totalSteps: request.steps, prepared }, maxQueued);
    if (!res.ok) throw queueFull(ctx, res.queued);
  } catch (e) {
    await removeUploads(uploads);
    if (moved) await data.removeJob(id);
    throw e;
  }
  return id;
}

/** The 429 for a full queue, with a Retry-After from the runner's recent run times. */
export function queueFull(ctx: ServerContext, queued: number): ApiError {
  ctx.metrics.rejected("queue_full");
  const wait = ctx.runner.estimateWaitSeconds(queued);
  return new ApiError(
    429,
    "queue_full",
    `the queue is full (${queued} jobs waiting, at most ${ctx.maxQueued}); retry in about ${wait} s`,
    null,
    { "retry-after": String(wait) },
  );
}

async function removeUploads(uploads: Upload[]): Promise<void> {
  await Promise.all(uploads.map((u) => rm(u.tmp, { force: true })));
}
