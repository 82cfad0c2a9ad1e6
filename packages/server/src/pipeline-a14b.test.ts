// A two-expert model (tiny-a14b: Wan2.2 A14B's layout at tiny size) through the real
// WanPipeline: guidance_2 and loras_2 (by name) change the low-noise expert's part of the
// run, the job reports guidance_2, and a one-expert server refuses both at submission.
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { api, tempDir, waitForStatus } from "./testing/harness.js";
import { type RandomModelServer, startRandomModelServer } from "./testing/random-model-server.js";

const core: any = await import("@tessera/core").catch(() => null);
const ready = core?.RANDOM_MODEL_NAMES?.includes?.("tiny-a14b") === true;
if (!ready)
  console.warn("[server] SKIPPING the two-expert tests: @tessera/core has no tiny-a14b model (pnpm build)");

describe.skipIf(!ready)(
  `a two-expert model on the server${ready ? "" : " (skipped: rebuild @tessera/core)"}`,
  () => {
    let loraDir = "";
    const servers: RandomModelServer[] = [];
    let url = "";
    let oneUrl = "";

    beforeAll(async () => {
      loraDir = await tempDir("tessera-a14b-loras-");
      // A LoRA for the low-noise expert (transformer_2) of tiny-a14b.
      const lowLora = async (modelDir: string) => {
        const info = await core.readModelFolder(modelDir);
        await core.writeSyntheticLora(
          join(loraDir, "low.safetensors"),
          core.wanLoraTarget(info.transformer2),
          {
            naming: "comfyui",
            targets: ["blocks.0.attn1.to_q.weight", "proj_out.weight"],
            alpha: 4,
            std: 0.5,
          },
        );
      };
      const generator = { format: "gif", loraDir } as const;
      servers.push(await startRandomModelServer({ core, config: "tiny-a14b", prepare: lowLora, generator }));
      servers.push(await startRandomModelServer({ core, config: "tiny", generator }));
      [url, oneUrl] = servers.map((s) => s.url) as [string, string];
    }, 60_000);

    afterAll(async () => {
      for (const s of servers) await s.close();
      await rm(loraDir, { recursive: true, force: true });
    });

    const job = { prompt: "a red ball", size: "32x32", frames: 5, seed: 4, steps: 6, guidance: 4 };
    async function video(json: Record<string, unknown>): Promise<{ bytes: Buffer; body: any }> {
      const r = await api(url, "/v1/videos", { json: { ...job, ...json } });
      expect(r.status, JSON.stringify(r.body)).toBe(202);
      const done = await waitForStatus(url, r.body.id, "completed", { timeoutMs: 60_000 });
      const content = await fetch(`${url}/v1/videos/${r.body.id}/content`);
      expect(content.status).toBe(200);
      return { bytes: Buffer.from(await content.arrayBuffer()), body: done };
    }

    it("takes guidance_2 and loras_2 for the low-noise expert", async () => {
      const plain = await video({});
      const g2 = await video({ guidance_2: 1.5 });
      const l2 = await video({ loras_2: [{ name: "low" }] });
      expect(g2.body.guidance_2).toBe(1.5);
      expect(g2.bytes.equals(plain.bytes)).toBe(false);
      expect(l2.bytes.equals(plain.bytes)).toBe(false);
      expect((await video({})).bytes.equals(plain.bytes)).toBe(true);
    }, 120_000);

    it("refuses guidance_2 and loras_2 on a one-expert model, and an unknown loras_2 name", async () => {
      const g = await api(oneUrl, "/v1/videos", { json: { prompt: "x", guidance_2: 2 } });
      expect(g.status).toBe(400);
      expect(g.body.error.param).toBe("guidance_2");
      const l = await api(oneUrl, "/v1/videos", { json: { prompt: "x", loras_2: [{ name: "low" }] } });
      expect(l.status).toBe(400);
      expect(l.body.error.param).toBe("loras_2");
      const n = await api(url, "/v1/videos", { json: { prompt: "x", loras_2: [{ name: "nope" }] } });
      expect(n.status).toBe(400);
      expect(n.body.error.param).toBe("loras_2");
    });
  },
);
