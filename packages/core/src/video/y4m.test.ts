import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { VideoIOError } from "./errors.js";
import { readVideo, writeVideo } from "./io.js";
import { syntheticVideo } from "./test-video.js";
import { readY4m, writeY4m } from "./y4m.js";

const made: string[] = [];
/** A fresh folder under the OS temp dir, removed after the file's tests. */
async function tmpDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), "tessera-video-"));
  made.push(d);
  return d;
}
afterAll(async () => {
  await Promise.all(made.map((d) => rm(d, { recursive: true, force: true })));
});

const video = syntheticVideo;

const COLOURS = [
  [255, 0, 0],
  [0, 255, 0],
  [0, 0, 255],
  [255, 255, 255],
  [0, 0, 0],
  [200, 120, 30],
];

/** 8x8 blocks of saturated and neutral colours: aligned to the 2x2 chroma grid. */
const blocks = (w = 48, h = 32) =>
  video(
    w,
    h,
    3,
    (x, y, t) => COLOURS[(Math.floor(x / 8) + 2 * Math.floor(y / 8) + t) % COLOURS.length] as number[],
  );
const gradient = (w = 64, h = 48) =>
  video(w, h, 2, (x, y, t) => [
    Math.round((x * 255) / (w - 1)),
    Math.round((y * 255) / (h - 1)),
    60 + 100 * t,
  ]);

function compare(
  a: Uint8Array,
  b: Uint8Array,
  w: number,
  h: number,
  skip?: (x: number, y: number) => boolean,
) {
  let max = 0;
  let sum = 0;
  let n = 0;
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      if (skip?.(x, y)) continue;
      for (let c = 0; c < 3; c++) {
        const i = (y * w + x) * 3 + c;
        const d = Math.abs((a[i] as number) - (b[i] as number));
        sum += d;
        n++;
        max = Math.max(max, d);
      }
    }
  return { max, mean: sum / n };
}

describe("y4m", () => {
  it("round-trips 4:2:0 within the conversion's error", async () => {
    const dir = await tmpDir();
    const b = blocks();
    const path = join(dir, "blocks.y4m");
    const r = await writeVideo(path, b);
    expect(r.format).toBe("y4m");
    const header = (await readFile(path, "latin1")).split("\n")[0];
    expect(header).toBe("YUV4MPEG2 W48 H32 F16:1 Ip A1:1 C420jpeg XYSCSS=420JPEG XCOLORRANGE=LIMITED");
    const back = await readVideo(path);
    expect([back.width, back.height, back.frames.length, back.fps]).toEqual([48, 32, 3, 16]);
    back.frames.forEach((f, i) => {
      // Away from colour edges only rounding remains (8-bit YUV steps are ~1.2 RGB levels);
      // at an edge, bilinear chroma upsampling blends in the neighbour by design.
      const interior = compare(
        f,
        b.frames[i] as Uint8Array,
        48,
        32,
        (x, y) => x % 8 === 0 || x % 8 === 7 || y % 8 === 0 || y % 8 === 7,
      );
      expect(interior.max).toBeLessThanOrEqual(2);
      expect(compare(f, b.frames[i] as Uint8Array, 48, 32).mean).toBeLessThan(12);
    });

    const g = gradient();
    await writeVideo(join(dir, "g.y4m"), g);
    const gb = await readY4m(join(dir, "g.y4m"));
    gb.frames.forEach((f, i) => {
      const e = compare(f, g.frames[i] as Uint8Array, 64, 48);
      expect(e.mean).toBeLessThan(1);
      expect(e.max).toBeLessThanOrEqual(3);
    });
  });

  it("round-trips 4:4:4 within rounding everywhere, including colour edges", async () => {
    const dir = await tmpDir();
    const b = blocks();
    await writeVideo(join(dir, "b.y4m"), b, { chroma: "444" });
    const back = await readY4m(join(dir, "b.y4m"));
    expect(back.colorspace).toBe("444");
    back.frames.forEach((f, i) => {
      expect(compare(f, b.frames[i] as Uint8Array, 48, 32).max).toBeLessThanOrEqual(2);
    });
  });

  it("handles odd sizes, fractional frame rates, maxFrames, fps and resizing", async () => {
    const dir = await tmpDir();
    const v = { ...gradient(33, 17), fps: 30000 / 1001 };
    const path = join(dir, "odd.y4m");
    await writeY4m(path, v);
    expect((await readFile(path, "latin1")).startsWith("YUV4MPEG2 W33 H17 F30000:1001 ")).toBe(true);
    const back = await readVideo(path);
    expect([back.width, back.height]).toEqual([33, 17]);
    expect(back.fps).toBeCloseTo(29.97, 2);
    back.frames.forEach((f, i) => {
      // Steep gradients (8 and 16 levels per pixel): chroma shared by 2x2 pixels costs a few levels, most at the borders.
      const e = compare(f, v.frames[i] as Uint8Array, 33, 17);
      expect(e.mean).toBeLessThan(2);
      expect(e.max).toBeLessThanOrEqual(8);
    });
    expect((await readVideo(path, { maxFrames: 1 })).frames.length).toBe(1);
    const long = {
      ...blocks(),
      frames: Array.from({ length: 12 }, (_, i) => blocks().frames[i % 3] as Uint8Array),
      fps: 12,
    };
    await writeVideo(join(dir, "long.y4m"), long);
    const half = await readVideo(join(dir, "long.y4m"), {
      fps: 6,
      maxFrames: 4,
      width: 24,
      height: 24,
      fit: "fill",
    });
    expect([half.width, half.height, half.frames.length, half.fps]).toEqual([24, 24, 4, 6]);
  });

  it("reports files it cannot read", async () => {
    const dir = await tmpDir();
    const path = join(dir, "v.y4m");
    await writeY4m(path, blocks());
    const bytes = await readFile(path);
    await writeFile(join(dir, "cut.y4m"), bytes.subarray(0, bytes.length - 100));
    await expect(readY4m(join(dir, "cut.y4m"))).rejects.toThrow(/truncated/);
    await writeFile(join(dir, "junk.y4m"), "hello");
    await expect(readVideo(join(dir, "junk.y4m"))).rejects.toThrow(VideoIOError);
    await expect(readVideo(join(dir, "junk.y4m"))).rejects.toThrow(/not a y4m file/);
    await writeFile(join(dir, "p10.y4m"), "YUV4MPEG2 W2 H2 F1:1 C420p10\nFRAME\n");
    await expect(readVideo(join(dir, "p10.y4m"))).rejects.toThrow(/C420p10.*not supported/);
    await expect(readVideo(join(dir, "missing.y4m"))).rejects.toThrow(/no such file/);
  });
});
