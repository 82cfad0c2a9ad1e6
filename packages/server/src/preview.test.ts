// Live previews over SSE: `preview` events with a PNG strip of the generator's
// current estimate, a few a second at most, the latest one again for a client that
// starts following mid-run.
import { inflateSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { PreviewEncoder, previewStrip } from "./preview.js";
import { api, readSse, startFake, waitFor } from "./testing/harness.js";

/** Width, height and the raw scanlines of an RGB8 PNG data URL (one IDAT, as ours are). */
function decodeDataUrl(url: string): { width: number; height: number; rows: Buffer } {
  expect(url.startsWith("data:image/png;base64,")).toBe(true);
  const png = Buffer.from(url.slice("data:image/png;base64,".length), "base64");
  const width = png.readUInt32BE(16);
  const height = png.readUInt32BE(20);
  const idatLen = png.readUInt32BE(33);
  return { width, height, rows: inflateSync(png.subarray(41, 41 + idatLen)) };
}

describe("preview strips", () => {
  it("lays out evenly spaced frames side by side, enlarged by whole factors", () => {
    const frames = Array.from({ length: 21 }, (_, i) => new Uint8Array(4 * 3 * 3).fill(i * 10));
    const s = previewStrip({ width: 4, height: 3, frames }, 8, 12);
    expect(s).toMatchObject({ width: 12, height: 9, frames: 8 });
    const { width, height, rows } = decodeDataUrl(s.image);
    expect([width, height]).toEqual([96, 9]);
    // First pixel of each frame: frames 0, 3, 6, … 20 of the 21.
    const firsts = Array.from({ length: 8 }, (_, i) => rows[1 + i * 12 * 3]);
    expect(firsts).toEqual([0, 30, 60, 90, 110, 140, 170, 200]);
  });

  it("sends at most one every minIntervalMs, and always the last step's", () => {
    const enc = new PreviewEncoder({ minIntervalMs: 60_000 });
    const preview = { width: 1, height: 1, frames: [new Uint8Array(3)] };
    const at = (step: number) => enc.take({ step, total: 10, elapsed: 0, eta: 0, preview });
    expect(at(1)).not.toBeNull();
    expect(at(2)).toBeNull();
    expect(at(10)?.step).toBe(10);
    expect(enc.take({ step: 3, total: 10, elapsed: 0, eta: 0 })).toBeNull();
  });
});

describe("preview events", () => {
  it("stream with progress while a job runs, and the latest goes to a late follower", async () => {
    const h = await startFake({ fake: { stepMs: 120, previews: true } });
    try {
      const c = await api(h.url, "/v1/videos", {
        json: { prompt: "watch it", steps: 12, size: "64x32", frames: 9 },
      });
      const sse = await readSse(h.url, `/v1/videos/${c.body.id}/events`);
      const previews = sse.events.filter((e) => e.event === "preview");
      // A step every 120 ms and at most one preview per 500 ms: a handful, not twelve.
      expect(previews.length).toBeGreaterThanOrEqual(2);
      expect(previews.length).toBeLessThan(8);
      const last = previews.at(-1)?.data;
      // 64x32 is 8x4 latent cells, enlarged 4 times; 9 frames are 3 latent frames.
      expect(last).toMatchObject({ id: c.body.id, step: 12, frames: 3, width: 32, height: 16 });
      const img = decodeDataUrl(last.image);
      expect([img.width, img.height]).toEqual([last.width * last.frames, last.height]);
      // The fake's last estimate is full brightness.
      expect(img.rows[1]).toBe(255);
      expect(sse.events.at(-1)?.event).toBe("completed");

      const d = await api(h.url, "/v1/videos", { json: { prompt: "follow late", steps: 30 } });
      await waitFor("a few steps", async () => (await api(h.url, `/v1/videos/${d.body.id}`)).body.step >= 6);
      const late = await fetch(`${h.url}/v1/videos/${d.body.id}/events`);
      const reader = (late.body as ReadableStream<Uint8Array>).getReader();
      let text = "";
      while (!text.includes("event: preview")) text += new TextDecoder().decode((await reader.read()).value);
      await reader.cancel();
      // The replayed preview comes right after the first status event, before any new progress.
      const progressAt = text.indexOf("event: progress");
      expect(progressAt === -1 || text.indexOf("event: preview") < progressAt).toBe(true);
    } finally {
      await h.close();
    }
  }, 30_000);
});
