// The smaller promises: Retry-After says when one queue slot frees (not when the
// whole queue empties), a failed job's error names no server path, and a job that
// gave up after too many interruptions leaves no staging folder behind.
import { existsSync } from "node:fs";
import { mkdir, readdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { GenerateContext, GeneratedVideo, GenerationRequest } from "./generator.js";
import { runError, withoutPaths } from "./storage.js";
import { Store } from "./store.js";
import { FakeVideoGenerator } from "./testing/fake-generator.js";
import { api, startFake, tempDir, waitFor, waitForStatus } from "./testing/harness.js";

describe("Retry-After on a full queue", () => {
  it("is about the running job's time left, not the whole queue's", async () => {
    // 50 queued jobs behind one that runs for about 2 s.
    const h = await startFake({ maxQueued: 50, fake: { stepMs: 100 } });
    try {
      const first = await api(h.url, "/v1/videos", { json: { prompt: "running", steps: 20 } });
      await waitFor("the run", async () => (await api(h.url, `/v1/videos/${first.body.id}`)).body.step >= 3);
      for (let i = 0; i < 50; i++)
        expect((await api(h.url, "/v1/videos", { json: { prompt: `queued ${i}`, steps: 20 } })).status).toBe(
          202,
        );
      const full = await api(h.url, "/v1/videos", { json: { prompt: "one too many" } });
      expect(full.status).toBe(429);
      const wait = Number(full.headers.get("retry-after"));
      // About 1.7 s left on the running job; the whole queue would be 100 s or more.
      expect(wait).toBeGreaterThanOrEqual(1);
      expect(wait).toBeLessThanOrEqual(3);
      expect(full.body.error.message).toMatch(new RegExp(`retry in about ${wait} s`));
    } finally {
      await h.close();
    }
  });
});

describe("failed jobs' errors", () => {
  it("name files by their base name only", async () => {
    class Failing extends FakeVideoGenerator {
      override async generate(req: GenerationRequest, ctx: GenerateContext): Promise<GeneratedVideo> {
        await super.generate({ ...req, steps: 1 }, ctx);
        throw new Error(
          `${ctx.outputDir}/input-image.png: cannot decode image: bad header (see '${ctx.outputDir}')`,
        );
      }
    }
    const h = await startFake({ gen: new Failing() });
    try {
      const c = await api(h.url, "/v1/videos", { json: { prompt: "fails" } });
      const failed = await waitForStatus(h.url, c.body.id, "failed");
      expect(failed.error.code).toBe("generation_failed");
      expect(failed.error.message).toMatch(
        /^input-image\.png: cannot decode image: bad header \(see '\.staging-[0-9a-f]+'\)$/,
      );
      expect(failed.error.message).not.toContain(h.dataDir);
    } finally {
      await h.close();
    }
  });

  it("call a full disk a full disk, also when a tool only says it in words", () => {
    const ffmpeg = new Error("ffmpeg exited with code 1 while writing video.mp4:\nNo space left on device");
    expect(runError(ffmpeg, "generation_failed").code).toBe("disk_full");
    const enospc = Object.assign(new Error("ENOSPC: no space left on device, write"), { code: "ENOSPC" });
    expect(runError(new Error("wrapped", { cause: enospc }), "output_invalid").code).toBe("disk_full");
    const eacces = Object.assign(new Error("EACCES: permission denied, open '/srv/x/y.mp4'"), {
      code: "EACCES",
    });
    expect(runError(eacces, "generation_failed")).toEqual({
      code: "storage_error",
      message:
        "the server could not write this job's files (EACCES: permission denied, open 'y.mp4'); its data folder needs its operator",
    });
    expect(runError(new Error("the model refused"), "generation_failed")).toEqual({
      code: "generation_failed",
      message: "the model refused",
    });
  });

  it("keep URLs and plain text as they are", () => {
    expect(withoutPaths("fetch http://host/a/b failed")).toBe("fetch http://host/a/b failed");
    expect(withoutPaths("ENOENT: no such file, mkdir '/srv/data/jobs/x'")).toBe(
      "ENOENT: no such file, mkdir 'x'",
    );
    expect(withoutPaths("size 128x128 is not a multiple of 16")).toBe("size 128x128 is not a multiple of 16");
  });
});

describe("a job that gave up", () => {
  it("has its staging folders removed", async () => {
    const dataDir = await tempDir();
    try {
      const store = new Store(join(dataDir, "tessera.db"));
      const id = "11111111-2222-4333-8444-555555555555";
      store.insertJob(
        {
          id,
          keyId: null,
          request: {
            model: "fake",
            prompt: "kills its server",
            negativePrompt: "",
            width: 32,
            height: 32,
            frames: 9,
            fps: 8,
            steps: 4,
            guidance: 5,
            seed: 1,
          },
          totalSteps: 4,
        },
        10,
      );
      // Three runs, each ended by a crash that left its staging folder.
      for (let i = 0; i < 3; i++) {
        store.markStarted(id);
        await mkdir(join(dataDir, "jobs", id, `.staging-${i}00000000000`), { recursive: true });
        store.requeueInterrupted();
      }
      store.close();
      const h = await startFake({ dataDir, maxAttempts: 3 });
      try {
        const failed = await waitForStatus(h.url, id, "failed");
        expect(failed.error.code).toBe("interrupted");
        await waitFor(
          "the staging folders to go",
          async () => (await readdir(join(dataDir, "jobs", id))).length === 0,
        );
        expect(existsSync(join(dataDir, "jobs", id))).toBe(true);
      } finally {
        await h.close({ keepData: true });
      }
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});
