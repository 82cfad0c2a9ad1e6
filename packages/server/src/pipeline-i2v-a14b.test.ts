// A Wan2.2 I2V-A14B model (tiny-i2v-a14b: two experts taking the image's latents, no
// CLIP) through the real WanPipeline on the server: it requires the image as a Wan2.1
// I2V model does, takes no video, and runs both experts from an uploaded image.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { VideoGenerator } from "./generator.js";
import { png } from "./testing/fake-generator.js";
import { api, waitForStatus } from "./testing/harness.js";
import { type RandomModelServer, startRandomModelServer } from "./testing/random-model-server.js";

const core: any = await import("@tessera/core").catch(() => null);
const ready = core?.RANDOM_MODEL_NAMES?.includes?.("tiny-i2v-a14b") === true;
if (!ready)
  console.warn("[server] SKIPPING the I2V-A14B tests: @tessera/core has no tiny-i2v-a14b model (pnpm build)");

describe.skipIf(!ready)(
  `a Wan2.2 I2V-A14B model on the server${ready ? "" : " (skipped: rebuild @tessera/core)"}`,
  () => {
    let served: RandomModelServer | undefined;
    let gen: VideoGenerator;
    let url = "";

    beforeAll(async () => {
      served = await startRandomModelServer({ core, config: "tiny-i2v-a14b" });
      ({ gen, url } = served);
    }, 60_000);

    afterAll(() => served?.close());

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
