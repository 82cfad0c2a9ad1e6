import { execFileSync } from "node:child_process";
import { chmod, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { VideoIOError } from "./errors.js";
import { findFfmpeg } from "./ffmpeg.js";
import type { VideoFrames } from "./frames.js";
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

const FFMPEG = (() => {
  try {
    return findFfmpeg("the tests");
  } catch {
    return null;
  }
})();
// Shown in the test name, so a skipped run says why rather than passing silently.
const NEEDS = FFMPEG ? "" : " [SKIPPED: ffmpeg not found on PATH or TESSERA_FFMPEG; apt-get install ffmpeg]";

const video = (w: number, h: number, n: number, px: (x: number, y: number, t: number) => number[], fps = 8) =>
  syntheticVideo(w, h, n, px, fps);

/** A moving square over a gradient: smooth areas, hard edges and motion, like real content. */
const scene = (w = 64, h = 48, n = 10) =>
  video(w, h, n, (x, y, t) =>
    x >= 3 * t && x < 3 * t + 12 && y >= 16 && y < 28 ? [230, 200, 40] : [40 + x, 60 + y, 150],
  );

function meanColour(frames: Uint8Array[]): number[] {
  const s = [0, 0, 0];
  let n = 0;
  for (const f of frames)
    for (let i = 0; i < f.length; i += 3) {
      for (let c = 0; c < 3; c++) s[c] = (s[c] as number) + (f[i + c] as number);
      n++;
    }
  return s.map((v) => v / n);
}

function meanAbsDiff(a: Uint8Array, b: Uint8Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += Math.abs((a[i] as number) - (b[i] as number));
  return s / a.length;
}

/** Offsets of the top-level MP4 boxes, by type. */
function topLevelBoxes(buf: Buffer): Map<string, number> {
  const at = new Map<string, number>();
  let p = 0;
  while (p + 8 <= buf.length) {
    let size = buf.readUInt32BE(p);
    const type = buf.toString("latin1", p + 4, p + 8);
    if (size === 1) size = Number(buf.readBigUInt64BE(p + 8));
    else if (size === 0) size = buf.length - p;
    if (!at.has(type)) at.set(type, p);
    if (size < 8) break;
    p += size;
  }
  return at;
}

const savedEnv = process.env.TESSERA_FFMPEG;
afterEach(() => {
  if (savedEnv === undefined) delete process.env.TESSERA_FFMPEG;
  else process.env.TESSERA_FFMPEG = savedEnv;
});

/** Solid 16x16 tiles of saturated colours: a wrong YUV matrix (BT.601 vs BT.709) shifts these by 10+ levels. */
const SWATCHES = [
  [255, 0, 0],
  [0, 255, 0],
  [0, 0, 255],
  [255, 255, 0],
  [0, 255, 255],
  [255, 0, 255],
  [128, 128, 128],
  [250, 250, 250],
];
const swatches = () =>
  video(64, 32, 3, (x, y) => SWATCHES[Math.floor(x / 16) + 4 * Math.floor(y / 16)] as number[]);

function checkSwatches(back: VideoFrames, tolerance: number) {
  for (const f of back.frames)
    SWATCHES.forEach((c, k) => {
      const x = (k % 4) * 16 + 8;
      const y = Math.floor(k / 4) * 16 + 8;
      const i = (y * back.width + x) * 3;
      for (let ch = 0; ch < 3; ch++)
        expect(Math.abs((f[i + ch] as number) - (c[ch] as number))).toBeLessThanOrEqual(tolerance);
    });
}

describe("mp4 and webm through ffmpeg", () => {
  it.skipIf(!FFMPEG)(`writes H.264 mp4 with faststart and reads it back${NEEDS}`, async () => {
    const dir = await tmpDir();
    const v = scene();
    const path = join(dir, "scene.mp4");
    const r = await writeVideo(path, v);
    expect(r).toMatchObject({ format: "mp4", width: 64, height: 48, frameCount: 10 });
    const bytes = await readFile(path);
    expect(r.bytes).toBe(bytes.length);
    const boxes = topLevelBoxes(bytes);
    expect(boxes.has("moov") && boxes.has("mdat")).toBe(true);
    expect(boxes.get("moov") as number).toBeLessThan(boxes.get("mdat") as number);
    const back = await readVideo(path);
    expect([back.width, back.height, back.frames.length, back.fps]).toEqual([64, 48, 10, 8]);
    const [a, b] = [meanColour(v.frames), meanColour(back.frames)];
    for (let c = 0; c < 3; c++) expect(Math.abs((a[c] as number) - (b[c] as number))).toBeLessThan(2);
    back.frames.forEach((f, i) => {
      expect(meanAbsDiff(f, v.frames[i] as Uint8Array)).toBeLessThan(6);
    });
    expect((await readdir(dir)).sort()).toEqual(["scene.mp4"]); // the temporary file was renamed, not copied
  });

  it.skipIf(!FFMPEG)(`keeps saturated colours (BT.709 tagged and decoded as such)${NEEDS}`, async () => {
    const dir = await tmpDir();
    for (const ext of ["mp4", "webm"]) {
      await writeVideo(join(dir, `sw.${ext}`), swatches(), { quality: 95 });
      checkSwatches(await readVideo(join(dir, `sw.${ext}`)), 6);
    }
  });

  it.skipIf(!FFMPEG)(`writes VP9 webm and reads it back${NEEDS}`, async () => {
    const dir = await tmpDir();
    const v = { ...scene(), fps: 30000 / 1001 };
    const path = join(dir, "scene.webm");
    const r = await writeVideo(path, v);
    expect(r.format).toBe("webm");
    const head = (await readFile(path)).subarray(0, 4);
    expect([...head]).toEqual([0x1a, 0x45, 0xdf, 0xa3]); // EBML magic
    const back = await readVideo(path);
    expect([back.width, back.height, back.frames.length]).toEqual([64, 48, 10]);
    expect(back.fps).toBe(30000 / 1001);
    const [a, b] = [meanColour(v.frames), meanColour(back.frames)];
    for (let c = 0; c < 3; c++) expect(Math.abs((a[c] as number) - (b[c] as number))).toBeLessThan(2);
  });

  it.skipIf(!FFMPEG)(`pads odd sizes for mp4 by default, or refuses them when asked${NEEDS}`, async () => {
    const dir = await tmpDir();
    const v = scene(33, 17, 4);
    const r = await writeVideo(join(dir, "odd.mp4"), v);
    expect([r.width, r.height]).toEqual([34, 18]);
    const back = await readVideo(join(dir, "odd.mp4"));
    expect([back.width, back.height, back.frames.length]).toEqual([34, 18, 4]);
    await expect(writeVideo(join(dir, "odd2.mp4"), v, { oddSize: "error" })).rejects.toThrow(
      /H\.264 \(yuv420p\) needs even width and height, got 33x17/,
    );
    expect(await readdir(dir)).toEqual(["odd.mp4"]);
    // VP9 has no such limit: odd sizes are kept.
    const w = await writeVideo(join(dir, "odd.webm"), v);
    expect([w.width, w.height]).toEqual([33, 17]);
    expect((await readVideo(join(dir, "odd.webm"))).width).toBe(33);
  });

  it.skipIf(!FFMPEG)(`resizes, re-times and limits frames while decoding${NEEDS}`, async () => {
    const dir = await tmpDir();
    const path = join(dir, "s.mp4");
    await writeVideo(path, { ...scene(64, 48, 16), fps: 16 });
    const cover = await readVideo(path, { width: 32, height: 32 });
    expect([cover.width, cover.height, cover.frames.length]).toEqual([32, 32, 16]);
    const contain = await readVideo(path, { width: 32, height: 32, fit: "contain" });
    expect([contain.width, contain.height]).toEqual([32, 32]);
    // Letterboxed: 64x48 fits as 32x24, so the top rows are black bars.
    expect(Math.max(...(contain.frames[0] as Uint8Array).subarray(0, 32 * 3 * 2))).toBeLessThan(10);
    const fill = await readVideo(path, { width: 20, height: 40, fit: "fill" });
    expect([fill.width, fill.height]).toEqual([20, 40]);
    const half = await readVideo(path, { fps: 8, maxFrames: 5, width: 32 });
    expect([half.width, half.height, half.frames.length, half.fps]).toEqual([32, 24, 5, 8]);
    const all = await readVideo(path, { fps: 8 });
    expect(all.frames.length).toBe(8);
  });

  it.skipIf(!FFMPEG)(`agrees with ffmpeg on what our y4m files mean${NEEDS}`, async () => {
    const dir = await tmpDir();
    const path = join(dir, "s.y4m");
    await writeY4m(path, swatches());
    const ours = await readY4m(path);
    const raw = execFileSync(
      FFMPEG as string,
      ["-v", "error", "-i", path, "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
      {
        maxBuffer: 1 << 26,
      },
    );
    const fb = 64 * 32 * 3;
    expect(raw.length).toBe(3 * fb);
    checkSwatches(ours, 3);
    checkSwatches(
      { ...ours, frames: [0, 1, 2].map((i) => new Uint8Array(raw.subarray(i * fb, (i + 1) * fb))) },
      3,
    );
    // And a y4m that ffmpeg makes from RGB (its default: BT.601, limited range) reads back as that RGB.
    const v = scene();
    await writeFile(join(dir, "scene.rgb"), Buffer.concat(v.frames));
    execFileSync(FFMPEG as string, [
      ...["-v", "error", "-f", "rawvideo", "-pix_fmt", "rgb24", "-video_size", "64x48", "-framerate", "8"],
      ...["-i", join(dir, "scene.rgb"), "-pix_fmt", "yuv420p", join(dir, "ff.y4m")],
    ]);
    const theirs = await readY4m(join(dir, "ff.y4m"));
    expect([theirs.width, theirs.height, theirs.frames.length, theirs.fps]).toEqual([64, 48, 10, 8]);
    await writeY4m(join(dir, "ours.y4m"), v);
    const ours2 = await readY4m(join(dir, "ours.y4m"));
    theirs.frames.forEach((f, i) => {
      // The square's edges fall mid chroma block, so both lose ~1.4 levels there; they must agree with each other.
      expect(meanAbsDiff(f, v.frames[i] as Uint8Array)).toBeLessThan(2);
      expect(meanAbsDiff(f, ours2.frames[i] as Uint8Array)).toBeLessThan(0.6);
    });
  });

  it.skipIf(!FFMPEG)(`surfaces ffmpeg's own message when it cannot decode a file${NEEDS}`, async () => {
    const dir = await tmpDir();
    const path = join(dir, "broken.mp4");
    await writeFile(path, Buffer.from("this is not a video at all".repeat(20)));
    const err = await readVideo(path).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(VideoIOError);
    expect(String((err as Error).message)).toMatch(
      /ffmpeg exited with code \d+ while reading .*broken\.mp4:\n.*Invalid data/s,
    );
  });
});

describe("without ffmpeg", () => {
  it("says ffmpeg is missing, how to install it, and what works without it", async () => {
    const dir = await tmpDir();
    process.env.TESSERA_FFMPEG = join(dir, "no", "such", "ffmpeg");
    for (const ext of ["mp4", "webm"]) {
      const path = join(dir, `v.${ext}`);
      const err = await writeVideo(path, scene()).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(VideoIOError);
      const msg = (err as Error).message;
      expect(msg).toContain("ffmpeg was not found");
      expect(msg).toContain(`TESSERA_FFMPEG=${process.env.TESSERA_FFMPEG}`);
      expect(msg).toContain("apt-get install ffmpeg");
      expect(msg).toContain("brew install ffmpeg");
      expect(msg).toContain("TESSERA_FFMPEG=/path/to/ffmpeg");
      expect(msg).toMatch(/\.gif.*\.y4m.*PNG frame folders/);
    }
    expect(await readdir(dir)).toEqual([]);
    await writeFile(join(dir, "x.mp4"), "");
    await expect(readVideo(join(dir, "x.mp4"))).rejects.toThrow(/ffmpeg was not found[\s\S]*\.y4m/);
    // The built-in formats carry on.
    await writeVideo(join(dir, "ok.gif"), scene());
    await writeVideo(join(dir, "ok.y4m"), scene());
    await writeVideo(join(dir, "frames/"), scene());
    expect((await readVideo(join(dir, "ok.gif"))).frames.length).toBe(10);
  });

  it("leaves no file behind when the encoder fails, and keeps an existing one", async () => {
    const dir = await tmpDir();
    // A stand-in ffmpeg that writes half a file, complains and fails, like a real encoder dying midway.
    const fake = join(dir, "fake-ffmpeg");
    await writeFile(
      fake,
      '#!/bin/sh\nfor a; do out="$a"; done\nhead -c 1000 > "$out"\necho "Unknown encoder \'libx264\'" >&2\nexit 1\n',
    );
    await chmod(fake, 0o755);
    process.env.TESSERA_FFMPEG = fake;
    const out = join(dir, "out");
    await (await import("node:fs/promises")).mkdir(out);
    const path = join(out, "v.mp4");
    const err = await writeVideo(path, scene()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(VideoIOError);
    expect((err as Error).message).toMatch(
      /ffmpeg exited with code 1 while writing .*v\.mp4:\nUnknown encoder 'libx264'/,
    );
    expect(await readdir(out)).toEqual([]);
    await writeFile(path, "previous video");
    await expect(writeVideo(path, scene())).rejects.toThrow(VideoIOError);
    expect(await readdir(out)).toEqual(["v.mp4"]);
    expect(await readFile(path, "utf8")).toBe("previous video");
  });
});
