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
import { checkImageUpload } from "../image-check.js";
import { formatBytes } from "../memory-budget.js";
import type { StoredRequest } from "../store.js";
import { readMultipart, type Upload } from "../upload.js";
import {
  describeSchemaError,
  requestFromStored,
  resolveRequest,
  type VideoBody,
  validateWithGenerator,
} from "../validation.js";

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
  try {
    await checkUploads(ctx, uploads);
  } catch (e) {
    await removeUploads(uploads);
    throw e;
  }
  return { body: candidate as VideoBody, uploads };
}

/**
 * Every upload decoded (or, for images, its size bounded and its structure checked)
 * now, so that a broken or oversized file is a 400 at upload, not a failed job later.
 */
async function checkUploads(ctx: ServerContext, uploads: Upload[]): Promise<void> {
  for (const u of uploads) {
    if (u.field !== "video") await checkImageUpload(u.tmp, u.ext, ctx.limits, u.field);
    await ctx.generator.checkInput?.({ field: u.field, path: u.tmp, maxPixels: ctx.limits.maxImagePixels });
  }
}

/** A request whose estimated memory is above the budget is refused now: run, it would kill the server. */
function checkMemory(ctx: ServerContext, request: StoredRequest): void {
  const budget = ctx.memoryBudget;
  if (!budget || !ctx.generator.estimateMemory) return;
  const need = ctx.generator.estimateMemory(requestFromStored(request));
  if (need <= budget.bytes) return;
  ctx.metrics.rejected("too_big_for_memory");
  const d = ctx.generator.info.defaults;
  throw new ApiError(
    400,
    "exceeds_memory_budget",
    `${request.width}x${request.height} with ${request.frames} frames needs about ${formatBytes(need)} of memory, ` +
      `more than this server's budget of ${formatBytes(budget.bytes)} (${budget.from}); ask for fewer frames or a smaller size`,
    request.frames > d.frames ? "frames" : "size",
  );
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
    const inputs: { image?: string; end_image?: string; video?: string } = {};
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
    checkMemory(ctx, request);
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

/** The 429 for a full queue, with a Retry-After of about the time until one slot frees. */
export function queueFull(ctx: ServerContext, queued: number): ApiError {
  ctx.metrics.rejected("queue_full");
  const wait = ctx.runner.retryAfterSeconds();
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
