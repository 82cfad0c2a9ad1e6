// What a submission may cost: a request the model estimates above the memory budget
// is a 400 naming the budget (not a job that kills the server when it runs), and an
// uploaded image is held to a size before anything decodes it and checked whole at
// upload, so a file that only starts like a PNG is refused now, not when its job runs.
import { mkdir, readdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { createDeflate } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { InputToCheck } from "./generator.js";
import { RequestFieldError } from "./generator.js";
import { cgroupMemoryLimit, defaultMemoryBudget } from "./memory-budget.js";
import { crc32 } from "./png.js";
import { FakeVideoGenerator, png } from "./testing/fake-generator.js";
import { api, type Harness, startFake, tempDir } from "./testing/harness.js";

const MiB = 2 ** 20;

/** A real PNG of w×h black pixels, compressed as hard as zlib can (16000² is 729 KiB). */
async function blankPng(w: number, h: number): Promise<Buffer> {
  const z = createDeflate({ level: 9 });
  const out: Buffer[] = [];
  z.on("data", (d: Buffer) => out.push(d));
  const done = new Promise((r) => z.on("end", r));
  const rows = Buffer.alloc((1 + w * 3) * 100);
  for (let y = 0; y < h; y += 100) {
    const n = Math.min(100, h - y) * (1 + w * 3);
    if (!z.write(rows.subarray(0, n))) await new Promise((r) => z.once("drain", r));
  }
  z.end();
  await done;
  const chunk = (type: string, data: Buffer) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const td = Buffer.concat([Buffer.from(type, "latin1"), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(td));
    return Buffer.concat([len, td, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr[8] = 8;
  ihdr[9] = 2;
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk("IHDR", ihdr),
    chunk("IDAT", Buffer.concat(out)),
    chunk("IEND", Buffer.alloc(0)),
  ]);
}

function uploadForm(image: Buffer, name = "still.png"): FormData {
  const f = new FormData();
  f.append("prompt", "it comes alive");
  f.append("image", new Blob([image]), name);
  return f;
}

describe("memory admission", () => {
  let h: Harness;
  beforeAll(async () => {
    // The fake's "model" needs 1 KB per pixel of the clip; the budget fits the default 32x32x9 and a bit.
    h = await startFake({
      fake: { memory: (r) => r.width * r.height * r.frames * 1000 },
      memoryBudgetBytes: 32 * MiB,
    });
  });
  afterAll(() => h.close());

  it("refuses a request the model estimates above the budget, naming the budget", async () => {
    const r = await api(h.url, "/v1/videos", {
      json: { prompt: "long", size: "128x128", frames: 161, steps: 1 },
    });
    expect(r.status).toBe(400);
    expect(r.body.error).toMatchObject({ code: "exceeds_memory_budget", param: "frames" });
    expect(r.body.error.message).toBe(
      "128x128 with 161 frames needs about 2.5 GiB of memory, more than this server's budget of 32 MiB (as configured); ask for fewer frames or a smaller size",
    );
    const big = await api(h.url, "/v1/videos", { json: { prompt: "wide", size: "256x256" } });
    expect(big.body.error).toMatchObject({ code: "exceeds_memory_budget", param: "size" });
    expect((await api(h.url, "/v1/videos", { json: { prompt: "fits" } })).status).toBe(202);
    expect((await api(h.url, "/metrics")).body).toMatch(/reason="too_big_for_memory"\} 2/);
  });

  it("checks nothing for a model without an estimate, or with the check off", async () => {
    const open = await startFake({ memoryBudgetBytes: 1 });
    const off = await startFake({ fake: { memory: () => 2 ** 40 }, memoryBudgetBytes: false });
    try {
      expect((await api(open.url, "/v1/videos", { json: { prompt: "x", frames: 161 } })).status).toBe(202);
      expect((await api(off.url, "/v1/videos", { json: { prompt: "x" } })).status).toBe(202);
      expect(off.srv.memoryBudget).toBeNull();
    } finally {
      await open.close();
      await off.close();
    }
  });
});

describe("the default memory budget", () => {
  let root = "";
  beforeAll(async () => {
    root = await tempDir("tessera-cgroup-");
  });
  afterAll(() => rm(root, { recursive: true, force: true }));

  const put = async (path: string, text: string) => {
    await mkdir(join(root, path, ".."), { recursive: true });
    await writeFile(join(root, path), text);
  };

  it("is the tightest memory.max on the way up from this process's cgroup (v2)", async () => {
    await put("proc/self/cgroup", "0::/system.slice/docker-abc.scope\n");
    await put("sys/fs/cgroup/system.slice/docker-abc.scope/memory.max", "4294967296\n");
    await put("sys/fs/cgroup/system.slice/memory.max", "max\n");
    expect(cgroupMemoryLimit(root)).toBe(4 * 2 ** 30);
    const b = defaultMemoryBudget(new FakeVideoGenerator().info, root);
    expect(b).toEqual({ bytes: Math.floor(0.9 * 4 * 2 ** 30), from: "the container's memory limit" });
  });

  it("reads cgroup v1's limit, ignores its 'no limit' value, and takes a GPU's memory on a GPU", async () => {
    const v1 = await tempDir("tessera-cgroup-v1-");
    try {
      await mkdir(join(v1, "sys/fs/cgroup/memory"), { recursive: true });
      await writeFile(join(v1, "sys/fs/cgroup/memory/memory.limit_in_bytes"), "9223372036854771712\n");
      expect(cgroupMemoryLimit(v1)).toBeNull();
      await writeFile(join(v1, "sys/fs/cgroup/memory/memory.limit_in_bytes"), "2147483648\n");
      expect(cgroupMemoryLimit(v1)).toBe(2 ** 31);
      // A process in a nested v1 cgroup (no namespace): its own group's limit, the tighter.
      await mkdir(join(v1, "proc/self"), { recursive: true });
      await writeFile(join(v1, "proc/self/cgroup"), "4:memory:/jobs/box\n0::/\n");
      await mkdir(join(v1, "sys/fs/cgroup/memory/jobs/box"), { recursive: true });
      await writeFile(join(v1, "sys/fs/cgroup/memory/jobs/box/memory.limit_in_bytes"), "1073741824\n");
      expect(cgroupMemoryLimit(v1)).toBe(2 ** 30);
    } finally {
      await rm(v1, { recursive: true, force: true });
    }
    const gpu = new FakeVideoGenerator({ info: { device: "cuda:0", deviceMemory: 80e9 } }).info;
    expect(defaultMemoryBudget(gpu, root)).toEqual({ bytes: 72e9, from: "cuda:0's memory" });
  });
});

describe("uploaded images", () => {
  let h: Harness;
  const checked: InputToCheck[] = [];
  class CheckingGenerator extends FakeVideoGenerator {
    async checkInput(input: InputToCheck): Promise<void> {
      checked.push(input);
      if (input.field === "image" && (await readdir(join(h.dataDir, "tmp"))).length === 0)
        throw new Error("the upload should still be there while it is checked");
    }
  }
  beforeAll(async () => {
    h = await startFake({
      gen: new CheckingGenerator(),
      limits: { maxImagePixels: 40_000_000, maxImageSide: 8192 },
    });
  });
  afterAll(() => h.close());

  it("refuses a 16000x16000 PNG of 729 KiB before decoding it", async () => {
    const image = await blankPng(16000, 16000);
    expect(image.length).toBeLessThan(800 * 1024);
    const rss = process.memoryUsage().rss;
    const r = await api(h.url, "/v1/videos", { body: uploadForm(image) });
    expect(r.status).toBe(400);
    expect(r.body.error).toMatchObject({ param: "image" });
    expect(r.body.error.message).toBe(
      "image is 16000x16000 (256.0 megapixels); this server takes images of at most 8192 pixels a side and 40.0 megapixels",
    );
    // Its pixels would be 768 MB; nothing near that was allocated.
    expect(process.memoryUsage().rss - rss).toBeLessThan(200 * MiB);
    expect(await readdir(join(h.dataDir, "tmp"))).toEqual([]);
  }, 30_000);

  it("refuses a file with a PNG signature and garbage after it, at upload", async () => {
    const garbage = Buffer.concat([
      Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
      Buffer.alloc(4000, 7),
    ]);
    const r = await api(h.url, "/v1/videos", { body: uploadForm(garbage) });
    expect(r.status).toBe(400);
    expect(r.body.error.param).toBe("image");
    expect(r.body.error.message).toMatch(/^image is not a valid PNG: /);
    expect((await api(h.url, "/v1/videos")).body.data).toEqual([]);
  });

  it("refuses a PNG cut short, one with a corrupt chunk, and one with bytes after its end", async () => {
    const good = png(16, 16, new Uint8Array(16 * 16 * 3).fill(90));
    const corrupt = Buffer.from(good);
    corrupt[40] = (corrupt[40] as number) ^ 0xff;
    for (const [bad, why] of [
      [good.subarray(0, good.length - 20), /ends in the middle of a chunk|runs past the end/],
      [corrupt, /corrupt \(bad CRC\)/],
      [Buffer.concat([good, Buffer.from("trailing")]), /bytes follow its IEND/],
    ] as const) {
      const r = await api(h.url, "/v1/videos", { body: uploadForm(bad) });
      expect(r.status).toBe(400);
      expect(r.body.error.message).toMatch(why);
    }
    const ok = await api(h.url, "/v1/videos", { body: uploadForm(good) });
    expect(ok.status, JSON.stringify(ok.body)).toBe(202);
    expect(checked.map((c) => c.field)).toEqual(["image"]);
    expect(checked[0]?.maxPixels).toBe(40_000_000);
  });

  it("refuses a JPEG cut short", async () => {
    // SOI, a baseline frame header (8x8, 3 components), a scan header, some data, no EOI.
    const sof = [0xff, 0xc0, 0, 17, 8, 0, 8, 0, 8, 3, 1, 0x11, 0, 2, 0x11, 0, 3, 0x11, 0];
    const sos = [0xff, 0xda, 0, 12, 3, 1, 0, 2, 0x11, 3, 0x11, 0, 63, 0];
    const jpeg = Buffer.from([0xff, 0xd8, ...sof, ...sos, 1, 2, 3, 4]);
    const r = await api(h.url, "/v1/videos", { body: uploadForm(jpeg, "cut.jpg") });
    expect(r.status).toBe(400);
    expect(r.body.error.message).toMatch(/^image is not a valid JPEG: it is cut short/);
  });

  it("refuses what the model cannot decode, and removes the upload", async () => {
    class Refusing extends FakeVideoGenerator {
      async checkInput(input: InputToCheck): Promise<void> {
        throw new RequestFieldError(
          input.field,
          `${input.field} could not be decoded as an image: bad Huffman table`,
        );
      }
    }
    const r = await startFake({ gen: new Refusing() });
    try {
      const res = await api(r.url, "/v1/videos", { body: uploadForm(png(8, 8, new Uint8Array(192))) });
      expect(res.status).toBe(400);
      expect(res.body.error.message).toBe("image could not be decoded as an image: bad Huffman table");
      expect(await readdir(join(r.dataDir, "tmp"))).toEqual([]);
    } finally {
      await r.close();
    }
  });
});
