// `tessera generate --offload / --max-gpu-memory SIZE`: the flags parse, a bad size
// is an error naming the flag, and an offloaded run gives the resident run's video.
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readGenerateFlags } from "./commands/generate/flags.js";
import { generatorFlags } from "./commands/service.js";
import { main } from "./main.js";

async function run(...argv: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(
    argv,
    (s) => out.push(s),
    (s) => err.push(s),
  );
  return { code, out: out.join("\n"), err: err.join("\n") };
}

describe("weight offload from the CLI", () => {
  let dir = "";
  let model = "";
  const fast = ["--size", "32x32", "--frames", "5", "--steps", "3", "--seed", "4", "--device", "cpu"];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "tessera-cli-offload-"));
    model = join(dir, "tiny");
    expect((await run("create-model", model)).code).toBe(0);
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("parses --offload and --max-gpu-memory", () => {
    const r = readGenerateFlags(["x", "--offload", "--max-gpu-memory", "24GiB"]);
    expect(r.offload).toBe(true);
    expect(r.maxGpuMemory).toBe(24 * 2 ** 30);
    const plain = readGenerateFlags(["x"]);
    expect(plain.offload).toBeUndefined();
    expect(plain.maxGpuMemory).toBeUndefined();
    expect(readGenerateFlags(["x", "--max-gpu-memory", "512MB"]).maxGpuMemory).toBe(512e6);
  });

  it("refuses a bad size, naming --max-gpu-memory (exit 2)", async () => {
    expect(() => readGenerateFlags(["x", "--max-gpu-memory", "24 gigs"])).toThrow(
      /--max-gpu-memory must be a size/,
    );
    const r = await run("generate", "x", "--model", model, ...fast, "--max-gpu-memory", "lots");
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/--max-gpu-memory must be a size .*'lots'/);
  });

  it("serve and worker take --offload and --max-gpu-memory too, naming the flag on a bad size", () => {
    const g = generatorFlags({ model: model, offload: true, "max-gpu-memory": "24GiB" });
    expect(g.offload).toBe(true);
    expect(g.maxGpuMemory).toBe(24 * 2 ** 30);
    expect(generatorFlags({ model: model }).offload).toBeUndefined();
    expect(() => generatorFlags({ model: model, "max-gpu-memory": "-3G" })).toThrow(
      /--max-gpu-memory must be a size/,
    );
  });

  it("lists both flags in the help", async () => {
    const r = await run("generate", "--help");
    expect(r.out + r.err).toMatch(/--offload/);
    expect(r.out + r.err).toMatch(/--max-gpu-memory SIZE/);
  });

  it("--offload and a --max-gpu-memory the model exceeds give the resident video, bit for bit", async () => {
    const a = join(dir, "a.y4m");
    const b = join(dir, "b.y4m");
    const c = join(dir, "c.y4m");
    const ra = await run("generate", "a ball", "--model", model, ...fast, "-o", a, "--json");
    const rb = await run("generate", "a ball", "--model", model, ...fast, "-o", b, "--offload", "--json");
    const rc = await run(
      "generate",
      "a ball",
      "--model",
      model,
      ...fast,
      "-o",
      c,
      "--max-gpu-memory",
      "1KiB",
      "--json",
    );
    for (const r of [ra, rb, rc]) expect(r.code, r.err).toBe(0);
    expect(JSON.parse(ra.out).offload).toBeUndefined();
    expect(JSON.parse(rb.out).offload).toBe(true);
    expect(JSON.parse(rc.out).offload).toBe(true);
    const va = await readFile(a);
    expect((await readFile(b)).equals(va)).toBe(true);
    expect((await readFile(c)).equals(va)).toBe(true);
  }, 60_000);
});
