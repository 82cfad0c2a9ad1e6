// The /v1/videos API end to end over loopback, with the fake generator.
import { existsSync } from "node:fs";
import { readdir } from "node:fs/promises";
import { request as httpRequest } from "node:http";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { png } from "./testing/fake-generator.js";
import {
  api,
  type Harness,
  parseY4m,
  readSse,
  startFake,
  waitFor,
  waitForStatus,
} from "./testing/harness.js";

let h: Harness;
beforeAll(async () => {
  h = await startFake({ fake: { stepMs: 5, failOn: "FAIL" } });
});
afterAll(() => h.close());

async function create(body: Record<string, unknown>) {
  const r = await api(h.url, "/v1/videos", { json: body });
  expect(r.status, JSON.stringify(r.body)).toBe(202);
  return r.body as { id: string; [k: string]: any };
}

describe("POST /v1/videos and GET /v1/videos/:id", () => {
  it("queues a job, reports progress, and completes it with timings", async () => {
    h.gen.stepMs = 40;
    const c = await api(h.url, "/v1/videos", {
      json: { prompt: "a red ball rolling", size: "64x48", frames: 5, steps: 6, guidance: 4.5, seed: 7 },
    });
    h.gen.stepMs = 5;
    expect(c.status).toBe(202);
    expect(c.headers.get("location")).toBe(`/v1/videos/${c.body.id}`);
    expect(c.body).toMatchObject({
      object: "video",
      status: "queued",
      progress: 0,
      model: "fake",
      prompt: "a red ball rolling",
      mode: "text-to-video",
      size: "64x48",
      width: 64,
      height: 48,
      frames: 5,
      fps: 8,
      seconds: 0.625,
      steps: 6,
      guidance: 4.5,
      seed: 7,
      content: null,
      error: null,
    });
    const mid = await waitFor("progress between 0 and 100", async () => {
      const r = await api(h.url, `/v1/videos/${c.body.id}`);
      return r.body.status === "in_progress" && r.body.progress > 0 && r.body.progress < 100
        ? r.body
        : undefined;
    });
    expect(mid.step).toBeGreaterThan(0);
    expect(mid.total_steps).toBe(6);
    expect(mid.eta_ms).toBeGreaterThanOrEqual(0);
    const done = await waitForStatus(h.url, c.body.id, "completed");
    expect(done.progress).toBe(100);
    expect(done.attempts).toBe(1);
    expect(done.completed_at).toBeGreaterThanOrEqual(done.created_at);
    expect(done.timings.run_ms).toBeGreaterThan(0);
    expect(done.timings.denoise_ms).toBeGreaterThan(0);
    expect(done.timings.queued_ms).toBeGreaterThanOrEqual(0);
    expect(done.content).toEqual({
      url: `/v1/videos/${c.body.id}/content`,
      content_type: "video/x-yuv4mpeg2",
      bytes: expect.any(Number),
      thumbnail_url: `/v1/videos/${c.body.id}/content?variant=thumbnail`,
    });
  });

  it("fills defaults from the model, draws and reports a seed, and turns seconds into 1 + 4k frames", async () => {
    const a = await create({ prompt: "defaults" });
    expect(a).toMatchObject({ size: "32x32", frames: 9, steps: 4, guidance: 5 });
    expect(Number.isInteger(a.seed)).toBe(true);
    const b = await create({ prompt: "two seconds", seconds: 2 });
    expect(b.frames).toBe(17); // 2 s at 8 fps is 16 frames; the nearest 1 + 4k is 17
    const c = await create({ prompt: "a blink", seconds: 0.01 });
    expect(c.frames).toBe(1);
  });

  it("marks a job whose generation throws as failed, with the error", async () => {
    const c = await create({ prompt: "please FAIL" });
    const done = await waitForStatus(h.url, c.id, "failed");
    expect(done.error).toEqual({ code: "generation_failed", message: "the fake model failed on purpose" });
    expect(done.content).toBeNull();
    const content = await api(h.url, `/v1/videos/${c.id}/content`);
    expect(content.status).toBe(409);
  });
});

describe("GET /v1/videos/:id/content", () => {
  let id = "";
  let bytes = 0;
  beforeAll(async () => {
    const c = await create({ prompt: "content", size: "32x32", frames: 9, seed: 3 });
    id = c.id;
    bytes = (await waitForStatus(h.url, id, "completed")).content.bytes;
  });

  it("serves the whole video with its type, length and Accept-Ranges", async () => {
    const r = await fetch(`${h.url}/v1/videos/${id}/content`);
    expect(r.status).toBe(200);
    expect(r.headers.get("content-type")).toBe("video/x-yuv4mpeg2");
    expect(r.headers.get("accept-ranges")).toBe("bytes");
    expect(Number(r.headers.get("content-length"))).toBe(bytes);
    expect(r.headers.get("content-disposition")).toBe(`inline; filename="${id}.y4m"`);
    const buf = Buffer.from(await r.arrayBuffer());
    expect(parseY4m(buf)).toEqual({ width: 32, height: 32, frames: 9 });
  });

  it("answers byte ranges with 206 and Content-Range, as players seeking need", async () => {
    const full = Buffer.from(await (await fetch(`${h.url}/v1/videos/${id}/content`)).arrayBuffer());
    const cases: [string, number, number][] = [
      ["bytes=0-9", 0, 9],
      ["bytes=100-", 100, bytes - 1],
      ["bytes=-50", bytes - 50, bytes - 1],
      [`bytes=10-${bytes + 1000}`, 10, bytes - 1],
    ];
    for (const [range, start, end] of cases) {
      const r = await fetch(`${h.url}/v1/videos/${id}/content`, { headers: { range } });
      expect(r.status, range).toBe(206);
      expect(r.headers.get("content-range")).toBe(`bytes ${start}-${end}/${bytes}`);
      expect(Number(r.headers.get("content-length"))).toBe(end - start + 1);
      expect(Buffer.from(await r.arrayBuffer()).equals(full.subarray(start, end + 1))).toBe(true);
    }
  });

  it("answers a range outside the file with 416 and the real size", async () => {
    for (const range of [`bytes=${bytes}-`, `bytes=${bytes + 10}-${bytes + 20}`, "bytes=-0"]) {
      const r = await fetch(`${h.url}/v1/videos/${id}/content`, { headers: { range } });
      expect(r.status, range).toBe(416);
      expect(r.headers.get("content-range")).toBe(`bytes */${bytes}`);
      await r.arrayBuffer();
    }
  });

  it("ignores malformed and multi-part ranges (sends it all), and honours If-Range and If-None-Match", async () => {
    for (const range of ["bytes=5-2", "items=0-1", "bytes=0-1,4-5"]) {
      const r = await fetch(`${h.url}/v1/videos/${id}/content`, { headers: { range } });
      expect(r.status, range).toBe(200);
      await r.arrayBuffer();
    }
    const etag = (await fetch(`${h.url}/v1/videos/${id}/content`, { method: "HEAD" })).headers.get(
      "etag",
    ) as string;
    const same = await fetch(`${h.url}/v1/videos/${id}/content`, {
      headers: { range: "bytes=0-0", "if-range": etag },
    });
    expect(same.status).toBe(206);
    await same.arrayBuffer();
    const stale = await fetch(`${h.url}/v1/videos/${id}/content`, {
      headers: { range: "bytes=0-0", "if-range": '"old"' },
    });
    expect(stale.status).toBe(200);
    await stale.arrayBuffer();
    const cached = await fetch(`${h.url}/v1/videos/${id}/content`, { headers: { "if-none-match": etag } });
    expect(cached.status).toBe(304);
  });

  it("answers HEAD with the headers only", async () => {
    const r = await fetch(`${h.url}/v1/videos/${id}/content`, {
      method: "HEAD",
      headers: { range: "bytes=0-99" },
    });
    expect(r.status).toBe(206);
    expect(r.headers.get("content-length")).toBe("100");
  });

  it("serves a PNG thumbnail with ?variant=thumbnail", async () => {
    const r = await fetch(`${h.url}/v1/videos/${id}/content?variant=thumbnail`);
    expect(r.status).toBe(200);
    expect(r.headers.get("content-type")).toBe("image/png");
    const buf = Buffer.from(await r.arrayBuffer());
    expect(buf.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))).toBe(
      true,
    );
    expect([buf.readUInt32BE(16), buf.readUInt32BE(20)]).toEqual([32, 32]);
    const bad = await api(h.url, `/v1/videos/${id}/content?variant=poster`);
    expect(bad.status).toBe(400);
    expect(bad.body.error.param).toBe("variant");
  });

  it("says 409 while a video is not finished", async () => {
    h.gen.stepMs = 200;
    const c = await create({ prompt: "slow", steps: 50 });
    const r = await api(h.url, `/v1/videos/${c.id}/content`);
    expect(r.status).toBe(409);
    expect(r.body.error.code).toBe("video_not_ready");
    await api(h.url, `/v1/videos/${c.id}`, { method: "DELETE" });
    h.gen.stepMs = 5;
  });
});

describe("DELETE /v1/videos/:id", () => {
  it("cancels a running job between steps, then deletes it and its files", async () => {
    h.gen.stepMs = 50;
    const c = await create({ prompt: "cancel me while running", steps: 100 });
    await waitFor("the job to run", async () => (await api(h.url, `/v1/videos/${c.id}`)).body.step >= 2);
    const callsBefore = h.gen.completed.length;
    const t0 = Date.now();
    const d = await api(h.url, `/v1/videos/${c.id}`, { method: "DELETE" });
    expect(d.status).toBe(200);
    expect(d.body.status).toBe("cancelled");
    // The generator stops at its next step and the worker moves on.
    await waitFor(
      "the worker to be idle",
      async () => (await api(h.url, "/healthz")).body.worker === "idle",
      2000,
    );
    expect(Date.now() - t0).toBeLessThan(1000);
    h.gen.stepMs = 5;
    expect(h.gen.completed.length).toBe(callsBefore);
    const g = await api(h.url, `/v1/videos/${c.id}`);
    expect(g.body.status).toBe("cancelled");
    expect(g.body.step).toBeLessThan(100);
    const jobDir = join(h.dataDir, "jobs", c.id);
    const staging = existsSync(jobDir) ? (await readdir(jobDir)).filter((n) => n.startsWith(".staging")) : [];
    expect(staging).toEqual([]);
    const del = await api(h.url, `/v1/videos/${c.id}`, { method: "DELETE" });
    expect(del.body).toEqual({ id: c.id, object: "video", deleted: true });
    expect((await api(h.url, `/v1/videos/${c.id}`)).status).toBe(404);
    expect((await api(h.url, `/v1/videos/${c.id}`, { method: "DELETE" })).status).toBe(404);
  });

  it("cancels a queued job before it ever runs", async () => {
    h.gen.stepMs = 100;
    const running = await create({ prompt: "hold the worker", steps: 100 });
    const queued = await create({ prompt: "never runs" });
    expect(queued.status).toBe("queued");
    expect(queued.queue_position).toBe(0);
    const d = await api(h.url, `/v1/videos/${queued.id}`, { method: "DELETE" });
    expect(d.body.status).toBe("cancelled");
    await api(h.url, `/v1/videos/${running.id}`, { method: "DELETE" });
    h.gen.stepMs = 5;
    await waitFor("the worker to be idle", async () => (await api(h.url, "/healthz")).body.worker === "idle");
    expect(h.gen.calls.some((c) => c.prompt === "never runs")).toBe(false);
  });

  it("removes a completed job's folder with its video", async () => {
    const c = await create({ prompt: "to delete" });
    await waitForStatus(h.url, c.id, "completed");
    const dir = join(h.dataDir, "jobs", c.id);
    expect(existsSync(join(dir, "out", "video.y4m"))).toBe(true);
    const d = await api(h.url, `/v1/videos/${c.id}`, { method: "DELETE" });
    expect(d.body.deleted).toBe(true);
    expect(existsSync(dir)).toBe(false);
    expect((await api(h.url, `/v1/videos/${c.id}/content`)).status).toBe(404);
  });
});

describe("GET /v1/videos (pagination)", () => {
  it("pages newest first with limit and after, and oldest first with order=asc", async () => {
    const h2 = await startFake({ fake: { stepMs: 1 } });
    try {
      const ids: string[] = [];
      for (let i = 0; i < 7; i++)
        ids.push((await api(h2.url, "/v1/videos", { json: { prompt: `p${i}`, steps: 1 } })).body.id);
      const seen: string[] = [];
      let after: string | undefined;
      for (let page = 0; page < 10; page++) {
        const r = await api(h2.url, `/v1/videos?limit=3${after ? `&after=${after}` : ""}`);
        expect(r.status).toBe(200);
        expect(r.body.object).toBe("list");
        seen.push(...r.body.data.map((v: { id: string }) => v.id));
        expect(r.body.last_id).toBe(r.body.data.at(-1)?.id ?? null);
        if (!r.body.has_more) break;
        after = r.body.last_id;
      }
      expect(seen).toEqual([...ids].reverse());
      const asc = await api(h2.url, "/v1/videos?limit=100&order=asc");
      expect(asc.body.data.map((v: { id: string }) => v.id)).toEqual(ids);
      expect(asc.body.has_more).toBe(false);
      const unknown = await api(h2.url, "/v1/videos?after=00000000-0000-4000-8000-000000000000");
      expect(unknown.status).toBe(400);
      expect(unknown.body.error.param).toBe("after");
    } finally {
      await h2.close();
    }
  });
});

describe("GET /v1/videos/:id/events (SSE)", () => {
  it("streams progress up to 100 and ends with the completed job", async () => {
    h.gen.stepMs = 20;
    const c = await create({ prompt: "streamed", steps: 8 });
    const s = await readSse(h.url, `/v1/videos/${c.id}/events`);
    h.gen.stepMs = 5;
    expect(s.status).toBe(200);
    expect(s.contentType).toMatch(/^text\/event-stream/);
    expect(s.events[0]?.event).toBe("status");
    const progress = s.events.filter((e) => e.event === "progress").map((e) => e.data.progress as number);
    expect(progress.length).toBeGreaterThanOrEqual(4);
    for (let i = 1; i < progress.length; i++)
      expect(progress[i]).toBeGreaterThanOrEqual(progress[i - 1] as number);
    const last = s.events.at(-1);
    expect(last?.event).toBe("completed");
    expect(last?.data.progress).toBe(100);
    expect(last?.data.content.url).toBe(`/v1/videos/${c.id}/content`);
  });

  it("ends at once for a finished job, and tells a cancelled run's watchers", async () => {
    const c = await create({ prompt: "already done" });
    await waitForStatus(h.url, c.id, "completed");
    const s = await readSse(h.url, `/v1/videos/${c.id}/events`);
    expect(s.events.map((e) => e.event)).toEqual(["status", "completed"]);

    h.gen.stepMs = 50;
    const r = await create({ prompt: "watch me get cancelled", steps: 100 });
    const watching = readSse(h.url, `/v1/videos/${r.id}/events`);
    await waitFor("the job to run", async () => (await api(h.url, `/v1/videos/${r.id}`)).body.step >= 1);
    await api(h.url, `/v1/videos/${r.id}`, { method: "DELETE" });
    h.gen.stepMs = 5;
    const w = await watching;
    expect(w.events.at(-1)?.event).toBe("cancelled");
    const missing = await readSse(h.url, "/v1/videos/00000000-0000-4000-8000-000000000000/events");
    expect(missing.status).toBe(404);
  });
});

describe("multipart uploads", () => {
  function form(fields: Record<string, string>, file?: { field: string; bytes: Uint8Array; name?: string }) {
    const f = new FormData();
    for (const [k, v] of Object.entries(fields)) f.append(k, v);
    if (file) f.append(file.field, new Blob([file.bytes]), file.name ?? "upload.bin");
    return f;
  }
  const image = png(16, 16, new Uint8Array(16 * 16 * 3).fill(200));

  it("takes an image for image-to-video, stores it under a name of ours, and hands its path to the generator", async () => {
    const r = await api(h.url, "/v1/videos", {
      body: form(
        { prompt: "from a picture", steps: "2", size: "32x32", seed: "11" },
        { field: "image", bytes: image, name: "../../evil.png" },
      ),
    });
    expect(r.status, JSON.stringify(r.body)).toBe(202);
    expect(r.body).toMatchObject({ mode: "image-to-video", steps: 2, seed: 11, size: "32x32" });
    await waitForStatus(h.url, r.body.id, "completed");
    const call = h.gen.calls.find((c) => c.prompt === "from a picture");
    expect(call?.image).toBe(join(h.dataDir, "jobs", r.body.id, "input-image.png"));
    expect(existsSync(call?.image as string)).toBe(true);
    expect(existsSync(join(h.dataDir, "evil.png"))).toBe(false);
  });

  it("takes a video for video-to-video with strength", async () => {
    const y4m = Buffer.from(`YUV4MPEG2 W16 H16 F8:1 C444\nFRAME\n${"\0".repeat(16 * 16 * 3)}`, "latin1");
    const r = await api(h.url, "/v1/videos", {
      body: form({ prompt: "restyle", strength: "0.5" }, { field: "video", bytes: y4m }),
    });
    expect(r.status, JSON.stringify(r.body)).toBe(202);
    expect(r.body).toMatchObject({ mode: "video-to-video", strength: 0.5 });
  });

  it("refuses files that are not what the field says, unknown file fields, and text where numbers go", async () => {
    const notImage = await api(h.url, "/v1/videos", {
      body: form({ prompt: "x" }, { field: "image", bytes: Buffer.from("#!/bin/sh\nrm -rf /\n") }),
    });
    expect(notImage.status).toBe(400);
    expect(notImage.body.error.param).toBe("image");
    const other = await api(h.url, "/v1/videos", {
      body: form({ prompt: "x" }, { field: "script", bytes: image }),
    });
    expect(other.status).toBe(400);
    expect(other.body.error.param).toBe("script");
    const words = await api(h.url, "/v1/videos", { body: form({ prompt: "x", steps: "many" }) });
    expect(words.status).toBe(400);
    expect(words.body.error.param).toBe("steps");
    const strengthAlone = await api(h.url, "/v1/videos", { body: form({ prompt: "x", strength: "0.5" }) });
    expect(strengthAlone.status).toBe(400);
    expect(strengthAlone.body.error.param).toBe("strength");
    const missing = await api(h.url, "/v1/videos", { body: form({ steps: "2" }) });
    expect(missing.status).toBe(400);
    expect(missing.body.error.param).toBe("prompt");
    // Nothing is left behind by refused uploads.
    expect(await readdir(join(h.dataDir, "tmp"))).toEqual([]);
  });

  it("refuses an upload over the size limit with 400 naming the field", async () => {
    const small = await startFake({ limits: { maxUploadBytes: 1000 } });
    try {
      const big = new Uint8Array(5000);
      big.set(image.subarray(0, 8));
      const r = await api(small.url, "/v1/videos", {
        body: form({ prompt: "big" }, { field: "image", bytes: big }),
      });
      expect(r.status).toBe(400);
      expect(r.body.error.param).toBe("image");
      expect(r.body.error.message).toMatch(/1000 bytes/);
      expect(await readdir(join(small.dataDir, "tmp"))).toEqual([]);
    } finally {
      await small.close();
    }
  });
});

describe("ids that are not ours", () => {
  const probes = [
    "..%2F..%2Fetc%2Fpasswd",
    "%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "..",
    "tessera.db",
    "00000000-0000-4000-8000-00000000000G",
    "00000000-0000-4000-8000-000000000000",
    "AAAAAAAA-0000-4000-8000-000000000000",
  ];
  it("are 404 on every per-video route", async () => {
    for (const p of probes)
      for (const [method, suffix] of [
        ["GET", ""],
        ["DELETE", ""],
        ["GET", "/content"],
        ["GET", "/content?variant=thumbnail"],
        ["GET", "/events"],
      ]) {
        const r = await api(h.url, `/v1/videos/${p}${suffix}`, { method: method as string });
        expect(r.status, `${method} ${p}${suffix}`).toBe(404);
      }
  });

  it("are 404 when sent raw, without a client normalising the dots", async () => {
    for (const path of [
      "/v1/videos/../../etc/passwd",
      "/v1/videos/../../../tessera.db/content",
      "/v1/videos/%00/content",
    ]) {
      const status = await new Promise<number>((resolve, reject) => {
        const u = new URL(h.url);
        const req = httpRequest({ host: u.hostname, port: u.port, path, method: "GET" }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        req.on("error", reject);
        req.end();
      });
      expect([400, 404], path).toContain(status);
    }
  });
});
