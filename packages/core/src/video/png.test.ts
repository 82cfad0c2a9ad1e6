import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import sharp from "sharp";
import { afterAll, describe, expect, it } from "vitest";
import { VideoIOError } from "./errors.js";
import type { VideoFrames } from "./frames.js";
import { FRAME_FOLDER_META, readVideo, writeVideo } from "./io.js";
import { crc32, encodePng } from "./png.js";

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

function noiseVideo(width: number, height: number, n: number, seed = 1): VideoFrames {
  let s = seed;
  const rnd = () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s >>> 24;
  };
  const frames: Uint8Array[] = [];
  for (let t = 0; t < n; t++) {
    const f = new Uint8Array(width * height * 3);
    // Half smooth, half noise, so every PNG row filter gets chosen somewhere.
    for (let y = 0; y < height; y++)
      for (let x = 0; x < width; x++) {
        const i = (y * width + x) * 3;
        if (y < height / 2) f.set([(x * 7 + t) & 255, (y * 5) & 255, (x + y) & 255], i);
        else f.set([rnd(), rnd(), rnd()], i);
      }
    frames.push(f);
  }
  return { width, height, frames, fps: 12 };
}

async function sharpRgb(path: string | Buffer) {
  const { data, info } = await sharp(path).raw().toBuffer({ resolveWithObject: true });
  return { data: new Uint8Array(data), width: info.width, height: info.height, channels: info.channels };
}

describe("PNG", () => {
  it("computes the standard CRC-32", () => {
    expect(crc32(Buffer.from("123456789"))).toBe(0xcbf43926);
    expect(crc32(new Uint8Array(0))).toBe(0);
  });

  it("encodes images sharp decodes to the same bytes", async () => {
    for (const [w, h] of [
      [1, 1],
      [37, 21],
      [64, 48],
    ] as const) {
      const v = noiseVideo(w, h, 1, w);
      const png = encodePng({ width: w, height: h, data: v.frames[0] as Uint8Array });
      const back = await sharpRgb(png);
      expect([back.width, back.height, back.channels]).toEqual([w, h, 3]);
      expect(Buffer.compare(back.data, v.frames[0] as Uint8Array)).toBe(0);
    }
  });

  it("round-trips a frame folder exactly and keeps the frame rate in a sidecar", async () => {
    const dir = await tmpDir();
    const v = noiseVideo(40, 24, 5);
    const r = await writeVideo(join(dir, "frames/"), v);
    expect(r).toMatchObject({ format: "png-frames", width: 40, height: 24, frameCount: 5 });
    const files = (await readdir(join(dir, "frames"))).sort();
    expect(files).toEqual([...[0, 1, 2, 3, 4].map((i) => `frame_0000${i}.png`), FRAME_FOLDER_META]);
    expect(await readdir(dir)).toEqual(["frames"]); // no temporary folder left
    for (let i = 0; i < 5; i++) {
      const f = await sharpRgb(join(dir, "frames", `frame_0000${i}.png`));
      expect(Buffer.compare(f.data, v.frames[i] as Uint8Array)).toBe(0);
    }
    const back = await readVideo(join(dir, "frames"));
    expect([back.width, back.height, back.frames.length, back.fps]).toEqual([40, 24, 5, 12]);
    back.frames.forEach((f, i) => {
      expect(Buffer.compare(f, v.frames[i] as Uint8Array)).toBe(0);
    });
  });

  it("rewrites an existing folder without leaving the old video's extra frames", async () => {
    const dir = await tmpDir();
    const out = join(dir, "out");
    await mkdir(out);
    await writeFile(join(out, "notes.txt"), "keep me");
    await writeVideo(out, noiseVideo(8, 8, 6), { format: "png-frames" }); // an existing folder needs no trailing '/'
    const v = noiseVideo(8, 8, 2, 7);
    await writeVideo(out, v);
    expect((await readdir(out)).sort()).toEqual([
      "frame_00000.png",
      "frame_00001.png",
      "notes.txt",
      FRAME_FOLDER_META,
    ]);
    const back = await readVideo(out);
    expect(back.frames.length).toBe(2);
    back.frames.forEach((f, i) => {
      expect(Buffer.compare(f, v.frames[i] as Uint8Array)).toBe(0);
    });
    expect(await readFile(join(out, "notes.txt"), "utf8")).toBe("keep me");
  });

  it("reads folders of PNGs made elsewhere, in natural order, and rejects mixed sizes", async () => {
    const dir = await tmpDir();
    const v = noiseVideo(6, 4, 11);
    for (let i = 0; i < 11; i++)
      await writeFile(
        join(dir, `img${i + 1}.png`),
        encodePng({ width: 6, height: 4, data: v.frames[i] as Uint8Array }),
      );
    const back = await readVideo(dir, { fps: 10 });
    expect(back.frames.length).toBe(11);
    expect(back.fps).toBe(10);
    back.frames.forEach((f, i) => {
      expect(Buffer.compare(f, v.frames[i] as Uint8Array)).toBe(0);
    }); // img2 before img10
    expect((await readVideo(dir)).fps).toBe(25);
    await writeFile(join(dir, "img12.png"), encodePng({ width: 3, height: 3, data: new Uint8Array(27) }));
    await expect(readVideo(dir)).rejects.toThrow(/img12\.png: is 3x3 but earlier frames are 6x4/);
    const empty = await tmpDir();
    await expect(readVideo(empty)).rejects.toThrow(VideoIOError);
  });
});
