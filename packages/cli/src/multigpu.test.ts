// `tessera generate --gpus N` where there are no GPUs (here, CI): every bad use is a
// clear message, never a crash; and the launcher itself, on stand-in rank scripts.
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { cudaStatus, NcclUnavailableError, ncclStatus } from "@tessera/native";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { UsageError } from "./args.js";
import { gpuProblem, launchRanks, multiGpu, visibleGpuIds, withoutFlag } from "./commands/multigpu.js";
import { runMain as run } from "./testing/run-main.js";

const noGpu = !cudaStatus().available;

describe("tessera generate --gpus", () => {
  let dir = "";
  let model = "";
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "tessera-gpus-"));
    model = join(dir, "tiny");
    const r = await run("create-model", model, "--seed", "1");
    expect(r.code, r.err).toBe(0);
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const gen = (...extra: string[]) =>
    run(
      "generate",
      "a red ball",
      "--model",
      model,
      "--size",
      "32x32",
      "--frames",
      "5",
      "-o",
      join(dir, "o.gif"),
      ...extra,
    );

  it("rejects a --gpus that is not a positive integer (exit 2, naming the flag)", async () => {
    for (const v of ["0", "-1", "2.5", "two"]) {
      const r = await gen(`--gpus=${v}`);
      expect(r.code).toBe(2);
      expect(r.err).toMatch(/--gpus must be an integer from 1 to 1024/);
    }
  });

  it("rejects flags that do not go with --gpus", async () => {
    const r = await gen("--gpus", "2", "--device", "cpu");
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/--gpus 2 picks the GPUs itself; drop --device cpu/);
  });

  it.runIf(noGpu)("on a machine without CUDA, --gpus 2 (and 1) fail with what to do, exit 1", async () => {
    // Conditioning (here --loop) runs over several GPUs too: only the missing GPUs stop it.
    for (const args of [
      ["--gpus", "2"],
      ["--gpus", "1"],
      ["--gpus", "2", "--loop"],
    ]) {
      const n = args[1] as string;
      const r = await gen(...args);
      expect(r.code).toBe(1);
      expect(r.err).toMatch(
        new RegExp(
          `--gpus ${n} needs ${n} CUDA GPU\\(s\\), but CUDA is not available here: .*Run without --gpus`,
        ),
      );
      expect(r.out).toBe("");
    }
  });

  it("without --gpus, generate is unchanged", async () => {
    const r = await gen("--steps", "2");
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/wrote .*o\.gif/);
  });
});

describe("multiGpu", () => {
  const base = { argv: [], device: undefined, seed: 1, err: () => {} };

  it("is a single run without --gpus or WORLD_SIZE > 1", async () => {
    expect(await multiGpu({ ...base, gpus: undefined, env: {} })).toEqual({ kind: "single" });
    expect(await multiGpu({ ...base, gpus: undefined, env: { RANK: "0", WORLD_SIZE: "1" } })).toEqual({
      kind: "single",
    });
  });

  it("a bad rank environment is a usage error naming the variable", async () => {
    await expect(multiGpu({ ...base, gpus: undefined, env: { RANK: "0" } })).rejects.toThrow(UsageError);
    await expect(multiGpu({ ...base, gpus: undefined, env: { RANK: "3", WORLD_SIZE: "2" } })).rejects.toThrow(
      /RANK 3 must be below WORLD_SIZE 2/,
    );
  });

  it.runIf(!ncclStatus().available)("a rank on a build without NCCL says so", async () => {
    const env = { RANK: "1", WORLD_SIZE: "2", MASTER_ADDR: "127.0.0.1", MASTER_PORT: "1" };
    await expect(multiGpu({ ...base, gpus: undefined, env })).rejects.toThrow(NcclUnavailableError);
  });

  it.runIf(noGpu)("names the problem with the machine", () => {
    expect(gpuProblem(4)).toMatch(/--gpus 4 needs 4 CUDA GPU\(s\), but CUDA is not available here/);
  });
});

describe("helpers", () => {
  it("drops a flag and its value in both spellings", () => {
    expect(withoutFlag(["p", "--gpus", "4", "-o", "x.mp4", "--gpus=2", "--seed", "1"], "gpus")).toEqual([
      "p",
      "-o",
      "x.mp4",
      "--seed",
      "1",
    ]);
  });

  it("gives ranks the parent's visible GPUs, else 0..count-1", () => {
    expect(visibleGpuIds({ CUDA_VISIBLE_DEVICES: "4, 5,6,7" }, 4)).toEqual(["4", "5", "6", "7"]);
    expect(visibleGpuIds({}, 3)).toEqual(["0", "1", "2"]);
  });
});

describe("launchRanks (stand-in rank scripts)", () => {
  let dir = "";
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "tessera-launch-"));
    // Each rank records its environment; FAIL_RANK exits 3 at once, the others wait to be stopped.
    await writeFile(
      join(dir, "rank.mjs"),
      `import { writeFileSync } from "node:fs";
const e = process.env;
writeFileSync(process.argv[2] + "/rank" + e.RANK + ".json", JSON.stringify({
  RANK: e.RANK, WORLD_SIZE: e.WORLD_SIZE, LOCAL_RANK: e.LOCAL_RANK, LOCAL_WORLD_SIZE: e.LOCAL_WORLD_SIZE,
  MASTER_ADDR: e.MASTER_ADDR, MASTER_PORT: e.MASTER_PORT, CUDA_VISIBLE_DEVICES: e.CUDA_VISIBLE_DEVICES,
  args: process.argv.slice(3) }));
if (e.RANK === e.FAIL_RANK) { console.error("out of memory on cuda:0\\nsecond line"); process.exit(3); }
if (e.FAIL_RANK !== undefined) setTimeout(() => {}, 60000);
`,
    );
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("starts one rank per GPU with torchrun's variables", async () => {
    const lines: string[] = [];
    const code = await launchRanks({
      worldSize: 3,
      command: [process.execPath, join(dir, "rank.mjs"), dir, "generate", "x"],
      gpuIds: ["5", "6", "7"],
      err: (s) => lines.push(s),
      env: { PATH: process.env.PATH ?? "" },
    });
    expect(code).toBe(0);
    const envs = await Promise.all(
      [0, 1, 2].map(async (r) => JSON.parse(await readFile(join(dir, `rank${r}.json`), "utf8"))),
    );
    const port = envs[0].MASTER_PORT;
    expect(Number(port)).toBeGreaterThan(0);
    for (const [r, e] of envs.entries())
      expect(e).toEqual({
        RANK: String(r),
        WORLD_SIZE: "3",
        LOCAL_RANK: String(r),
        LOCAL_WORLD_SIZE: "3",
        MASTER_ADDR: "127.0.0.1",
        MASTER_PORT: port,
        CUDA_VISIBLE_DEVICES: String(5 + r),
        args: ["generate", "x"],
      });
  });

  it("stops every rank when one fails, and gives its exit code and its stderr", async () => {
    const lines: string[] = [];
    const t0 = Date.now();
    const code = await launchRanks({
      worldSize: 3,
      command: [process.execPath, join(dir, "rank.mjs"), dir],
      gpuIds: ["0", "1", "2"],
      err: (s) => lines.push(s),
      env: { PATH: process.env.PATH ?? "", FAIL_RANK: "1" },
      killAfterMs: 2000,
    });
    expect(code).toBe(3);
    expect(Date.now() - t0).toBeLessThan(20_000);
    expect(lines).toContain("[rank 1] out of memory on cuda:0");
    expect(lines).toContain("[rank 1] second line");
    expect(lines.join("\n")).toMatch(/rank 1 exited with code 3; stopping the other ranks/);
  });
});
