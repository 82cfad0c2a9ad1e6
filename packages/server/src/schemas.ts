// Response and parameter schemas. They feed /openapi.json; responses are
// serialised with plain JSON.stringify (see app.ts), so these document the API
// without being able to silently drop a field.
const nullable = (t: string | string[]) => ({ type: [...(Array.isArray(t) ? t : [t]), "null"] });

export const errorSchema = {
  type: "object",
  properties: {
    error: {
      type: "object",
      required: ["type", "message"],
      properties: {
        type: { type: "string", examples: ["invalid_request_error"] },
        code: { type: "string", examples: ["invalid_field"] },
        message: { type: "string" },
        param: { ...nullable("string"), description: "The request field at fault." },
      },
    },
  },
} as const;

export const videoSchema = {
  type: "object",
  description: "A video job and, once completed, where its file is.",
  properties: {
    id: { type: "string", format: "uuid" },
    object: { type: "string", enum: ["video"] },
    status: { type: "string", enum: ["queued", "in_progress", "completed", "failed", "cancelled"] },
    progress: {
      type: "integer",
      minimum: 0,
      maximum: 100,
      description: "Percent; 100 only once the file is written.",
    },
    model: { type: "string" },
    prompt: { type: "string", description: "The prompt as submitted." },
    prompt_used: {
      ...nullable("string"),
      description:
        "What the model's text encoder was given: for a model trained on one caption style (tessera-world), the " +
        "prompt rewritten onto it (unless the job sent rewrite: false); otherwise the prompt with its whitespace " +
        "collapsed. Null until known (in queue mode, an API without the model learns it from the worker's result).",
    },
    rewrite: {
      ...nullable("object"),
      description: "The prompt rewriter's report when it ran for this job, else null.",
      properties: {
        unknown_words: {
          type: "array",
          items: { type: "string" },
          description: "Words (or phrases) of the prompt the rewriter could not put in the caption.",
        },
        filled_defaults: {
          type: "array",
          items: { type: "string" },
          description:
            'Attributes the prompt left out and the rewriter filled in, e.g. "objects[0].colour", "background".',
        },
        changed: { type: "boolean", description: "Whether prompt_used differs from the prompt." },
      },
    },
    negative_prompt: { type: "string" },
    mode: { type: "string", enum: ["text-to-video", "image-to-video", "video-to-video"] },
    size: { type: "string", examples: ["832x480"] },
    width: { type: "integer" },
    height: { type: "integer" },
    frames: { type: "integer" },
    fps: { type: "number" },
    seconds: { type: "number" },
    steps: { type: "integer" },
    guidance: { type: "number" },
    guidance_2: {
      type: "number",
      description: "Two-expert models: the low-noise expert's guidance, when given.",
    },
    seed: { type: "integer" },
    strength: { type: "number" },
    step: { type: "integer", description: "Denoising steps done." },
    total_steps: { type: "integer" },
    eta_ms: {
      ...nullable("integer"),
      description: "Estimated milliseconds of denoising left, while in progress.",
    },
    queue_position: { ...nullable("integer"), description: "Jobs ahead of this one, while queued." },
    attempts: { type: "integer", description: "Runs started (more than 1 after a server restart mid-run)." },
    created_at: { type: "integer", description: "Unix seconds." },
    started_at: nullable("integer"),
    completed_at: nullable("integer"),
    timings: {
      ...nullable("object"),
      additionalProperties: { type: "number" },
      description:
        "Milliseconds: queued_ms, run_ms, and the generator's phases (text_ms, denoise_ms, step_ms, decode_ms, …).",
    },
    error: {
      ...nullable("object"),
      properties: { code: { type: "string" }, message: { type: "string" } },
    },
    content: {
      ...nullable("object"),
      properties: {
        url: { type: "string" },
        content_type: { type: "string" },
        bytes: { type: "integer" },
        thumbnail_url: nullable("string"),
      },
    },
  },
} as const;

export const idParams = {
  type: "object",
  required: ["id"],
  properties: { id: { type: "string", description: "The video's id (a UUID)." } },
} as const;

export const listQuery = {
  type: "object",
  additionalProperties: false,
  properties: {
    limit: { type: "integer", minimum: 1, maximum: 100, default: 20 },
    after: { type: "string", description: "Id of the last video of the previous page." },
    order: { type: "string", enum: ["asc", "desc"], default: "desc", description: "By creation time." },
  },
} as const;

export const contentQuery = {
  type: "object",
  additionalProperties: false,
  properties: {
    variant: {
      type: "string",
      enum: ["video", "thumbnail"],
      default: "video",
      description: "thumbnail: a PNG of the middle frame.",
    },
  },
} as const;

export const listSchema = {
  type: "object",
  properties: {
    object: { type: "string", enum: ["list"] },
    data: { type: "array", items: videoSchema },
    first_id: nullable("string"),
    last_id: nullable("string"),
    has_more: { type: "boolean" },
  },
} as const;
