// A job as the API shows it (GET /v1/videos/:id, lists, SSE events), in the
// OpenAI video object's field names.
import type { LiveProgress } from "../jobs.js";
import type { JobRow } from "../store.js";

const sec = (ms: number | null) => (ms === null ? null : Math.floor(ms / 1000));

export function progressFields(live: LiveProgress) {
  return { progress: live.progress, step: live.step, total_steps: live.total, eta_ms: live.etaMs };
}

export function jobView(job: JobRow, live: LiveProgress | null, queuePosition: number | null) {
  const r = job.request;
  const res = job.result;
  const base = `/v1/videos/${job.id}`;
  return {
    id: job.id,
    object: "video" as const,
    status: job.status,
    progress: job.status === "completed" ? 100 : (live?.progress ?? Math.round(job.progress)),
    model: r.model,
    prompt: r.prompt,
    // What the model's text encoder got (rewritten for a model with a caption style); null until known.
    prompt_used: job.prepared?.prompt ?? null,
    rewrite: job.prepared?.rewrite
      ? {
          unknown_words: job.prepared.rewrite.unknownWords,
          filled_defaults: job.prepared.rewrite.filledDefaults,
          changed: job.prepared.rewrite.changed,
        }
      : null,
    negative_prompt: r.negativePrompt,
    mode: r.image ? "image-to-video" : r.video ? "video-to-video" : "text-to-video",
    size: `${r.width}x${r.height}`,
    width: r.width,
    height: r.height,
    frames: r.frames,
    fps: r.fps,
    seconds: Math.round((r.frames / r.fps) * 1000) / 1000,
    steps: r.steps,
    guidance: r.guidance,
    ...(r.guidance2 !== undefined ? { guidance_2: r.guidance2 } : {}),
    seed: r.seed,
    ...(r.strength !== undefined ? { strength: r.strength } : {}),
    step: live?.step ?? job.step,
    total_steps: live?.total ?? job.totalSteps,
    eta_ms: job.status === "in_progress" ? (live?.etaMs ?? null) : null,
    queue_position: queuePosition,
    attempts: job.attempts,
    created_at: sec(job.createdAt) as number,
    started_at: sec(job.startedAt),
    completed_at: sec(job.completedAt),
    timings: job.timings,
    error: job.error,
    content:
      job.status === "completed" && res
        ? {
            url: `${base}/content`,
            content_type: res.contentType,
            bytes: res.bytes,
            thumbnail_url: res.thumbnail ? `${base}/content?variant=thumbnail` : null,
          }
        : null,
  };
}
