// A server on the real WanPipeline with a random-weight model written to a temporary
// folder (tiny, tiny-i2v, tiny-i2v-a14b, …), for the tests that run real generations on
// the CPU. One helper so that every such test builds and tears down the same way.
import { rm } from "node:fs/promises";
import { createServer, type TesseraServer } from "../app.js";
import type { VideoGenerator } from "../generator.js";
import { loadPipelineGenerator, type PipelineGeneratorOptions } from "../pipeline-generator.js";
import { tempDir } from "./harness.js";

export interface RandomModelServer {
  modelDir: string;
  dataDir: string;
  gen: VideoGenerator;
  srv: TesseraServer;
  url: string;
  /** Drains the server, closes the generator and removes both temporary folders. */
  close(): Promise<void>;
}

export interface RandomModelServerOptions {
  /** @tessera/core as the test imported it (dynamically, so a missing build only skips). */
  core: any;
  /** The random model's config name (a RANDOM_MODEL_NAMES entry). */
  config: string;
  seed?: number;
  /** The generator's name (the /healthz model); the config name unless given. */
  name?: string;
  /** Changes the written model folder before the pipeline loads it. */
  prepare?: (modelDir: string) => Promise<void>;
  /** More generator options (an output format, a LoRA folder). */
  generator?: Omit<PipelineGeneratorOptions, "modelDir" | "device" | "name">;
}

export async function startRandomModelServer(o: RandomModelServerOptions): Promise<RandomModelServer> {
  const modelDir = await tempDir(`tessera-${o.name ?? o.config}-model-`);
  const dataDir = await tempDir();
  await o.core.writeRandomWanModel(modelDir, { config: o.config, seed: o.seed ?? 0 });
  await o.prepare?.(modelDir);
  const gen = await loadPipelineGenerator({
    ...o.generator,
    modelDir,
    device: "cpu",
    name: o.name ?? o.config,
  });
  const srv = await createServer({ dataDir, generator: gen, port: 0, rateLimit: false });
  const url = await srv.listen();
  return {
    modelDir,
    dataDir,
    gen,
    srv,
    url,
    async close() {
      await srv.close({ graceMs: 0 });
      await gen.close?.();
      await rm(modelDir, { recursive: true, force: true });
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}
