// A Wan2.2 I2V-A14B model (tiny-i2v-a14b: two experts taking the image's latents, no
// CLIP) through the real WanPipeline on the server: it requires the image as a Wan2.1
// I2V model does, takes no video, and runs both experts from an uploaded image.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createServer, type TesseraServer } from "./app.js";
import type { VideoGenerator } from "./generator.js";
import { loadPipelineGenerator } from "./pipeline-generator.js";
import { png } from "./testing/fake-generator.js";
import { api, waitForStatus } from "./testing/harness.js";

const core: any = await import("@tessera/core").catch(() => null);
const ready = core?.RANDOM_MODEL_NAMES?.includes?.("tiny-i2v-a14b") === true;
if (!ready)
  console.warn("[server] SKIPPING the I2V-A14B tests: @tessera/core has no tiny-i2v-a14b model (pnpm build)");

describe.skipIf(!ready)(
  `a Wan2.2 I2V-A14B model on the server${ready ? "" : " (skipped: rebuild @tessera/core)"}`,
  () => {
    let modelDir = "";
    let dataDir = "";
    let gen: VideoGenerator;
    let srv: TesseraServer;
    let url = "";

    beforeAll(async () => {
      modelDir = await mkdtemp(join(tmpdir(), "tessera-tiny-i2v-a14b-"));
      dataDir = await mkdtemp(join(tmpdir(), "tessera-server-"));
      await core.writeRandomWanModel(modelDir, { config: "tiny-i2v-a14b", seed: 0 });
      gen = await loadPipelineGenerator({ modelDir, device: "cpu", name: "tiny-i2v-a14b" });
      srv = await createServer({ dataDir, generator: gen, port: 0, rateLimit: false });
      url = await srv.listen();
    }, 60_000);

    afterAll(async () => {
      await srv?.close({ graceMs: 0 });
      await gen?.close?.();
      await rm(modelDir, { recursive: true, force: true });
      await rm(dataDir, { recursive: true, force: true });
    });

    it("runs both experts from an uploaded image", async () => {
      expect(gen.info).toMatchObject({ requiresImage: true, acceptsVideo: false });
      const f = new FormData();
      f.append("prompt", "the picture comes alive");
      f.append("size", "32x32");
      f.append("frames", "5");
      f.append("steps", "6");
      f.append("image", new Blob([png(40, 30, new Uint8Array(40 * 30 * 3).fill(180))]), "image.png");
      const c = await api(url, "/v1/videos", { body: f });
      expect(c.status, JSON.stringify(c.body)).toBe(202);
      const done = await waitForStatus(url, c.body.id, "completed", { timeoutMs: 60_000 });
      expect(done.frames).toBe(5);
    }, 120_000);

    it("refuses a request without the image, naming the field", async () => {
      const c = await api(url, "/v1/videos", { json: { prompt: "no picture", size: "32x32", frames: 5 } });
      expect(c.status).toBe(400);
      expect(JSON.stringify(c.body)).toMatch(/image-to-video model: upload the start image/);
    });
  },
);
