// Weight offload behind the server: loadPipelineGenerator passes offload and
// maxGpuMemory to WanPipeline.load (a cap the model exceeds offloads it).
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadPipelineGenerator } from "./pipeline-generator.js";

const core: any = await import("@tessera/core").catch(() => null);
const ready = typeof core?.parseByteSize === "function";
if (!ready)
  console.warn("[server] SKIPPING the offload tests: @tessera/core has no weight offload (pnpm build)");

describe.skipIf(!ready)(
  `weight offload on the server${ready ? "" : " (skipped: rebuild @tessera/core)"}`,
  () => {
    let dir = "";
    let modelDir = "";
    beforeAll(async () => {
      dir = await mkdtemp(join(tmpdir(), "tessera-offload-server-"));
      modelDir = join(dir, "tiny");
      await core.writeRandomWanModel(modelDir, { config: "tiny", seed: 0 });
    });
    afterAll(async () => {
      await rm(dir, { recursive: true, force: true });
    });

    it("loads offloaded when asked, or when the model exceeds maxGpuMemory, and resident otherwise", async () => {
      for (const [opts, offloaded] of [
        [{ offload: true }, true],
        [{ maxGpuMemory: "1KiB" }, true],
        [{ maxGpuMemory: "1TiB" }, false],
        [{}, false],
      ] as const) {
        const gen = await loadPipelineGenerator({
          modelDir,
          device: "cpu",
          name: "tiny",
          format: "gif",
          ...opts,
        });
        try {
          expect(
            (gen as unknown as { pipeline: { offload: boolean } }).pipeline.offload,
            JSON.stringify(opts),
          ).toBe(offloaded);
        } finally {
          await gen.close?.();
        }
      }
    });

    it("refuses a bad maxGpuMemory, naming it", async () => {
      await expect(loadPipelineGenerator({ modelDir, device: "cpu", maxGpuMemory: "lots" })).rejects.toThrow(
        /maxGpuMemory must be a size/,
      );
    });
  },
);
