import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import sharp from "sharp";
import { afterAll, describe, expect, it } from "vitest";
import { VideoIOError } from "./errors.js";
import type { VideoFrames } from "./frames.js";
import { readImage, readVideo, writeContactSheet, writeImage, writeVideo } from "./io.js";

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

function solidVideo(width: number, height: number, n: number, fps = 8): VideoFrames {
  const frames = Array.from({ length: n }, (_, t) => {
    const f = new Uint8Array(width * height * 3);
    for (let i = 0; i < width * height; i++) f.set([(t * 20) & 255, 100, 200], i * 3);
    return f;
  });
  return { width, height, frames, fps };
}

/** A 40x30 picture with distinct quadrants, so crops and letterboxes are recognisable. */
function quadrants(w = 40, h = 30): Uint8Array {
  const d = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++)
      d.set(
        x < w / 2 ? (y < h / 2 ? [255, 0, 0] : [0, 255, 0]) : y < h / 2 ? [0, 0, 255] : [255, 255, 0],
        (y * w + x) * 3,
      );
  return d;
}

async function rejects(p: Promise<unknown>, re: RegExp) {
  const e = await p.catch((x: unknown) => x);
  expect(e).toBeInstanceOf(VideoIOError);
  expect((e as Error).message).toMatch(re);
}

describe("writeVideo input checks", () => {
  it("rejects bad frames with clear VideoIOErrors, before writing anything", async () => {
    const dir = await tmpDir();
    const good = solidVideo(4, 4, 2);
    for (const ext of ["gif", "y4m", "mp4", "webm"]) {
      const path = join(dir, `v.${ext}`);
      await rejects(
        writeVideo(path, { ...good, frames: [good.frames[0] as Uint8Array, new Uint8Array(10)] }),
        /frame 1 has 10 bytes but 4x4 RGB needs 48/,
      );
      await rejects(writeVideo(path, { ...good, frames: [] }), /zero frames/);
      await rejects(
        writeVideo(path, { ...good, frames: [new Float32Array(48) as never] }),
        /frame 0 is not a Uint8Array \(got Float32Array\)/,
      );
      await rejects(writeVideo(path, { ...good, fps: 0 }), /fps must be a positive number/);
      await rejects(writeVideo(path, { ...good, width: 0 }), /width and height must be positive integers/);
      await rejects(writeVideo(path, { ...good, height: 2.5 }), /width and height must be positive integers/);
    }
    await rejects(
      writeVideo(join(dir, "odd.mp4"), solidVideo(5, 3, 1), { oddSize: "error" }),
      /needs even width and height, got 5x3/,
    );
    await rejects(
      writeVideo(join(dir, "v.mp4"), good, { quality: 101 }),
      /'quality' must be a number from 0 to 100/,
    );
    await rejects(writeVideo(join(dir, "v.avi"), good), /cannot tell the format from '\.avi'/);
    await rejects(writeVideo(join(dir, "v.png"), good), /PNG frames into a folder/);
    await rejects(writeVideo(join(dir, "v"), good, { format: "mkv" as never }), /unknown format 'mkv'/);
    await rejects(writeVideo(join(dir, "no", "such", "v.gif"), good), /folder '.*such' does not exist/);
    await rejects(writeVideo(join(dir, "v.gif"), good, { loop: -3 }), /'loop' must be/);
    expect(await readdir(dir)).toEqual([]);
  });

  it("replaces an existing file whole", async () => {
    const dir = await tmpDir();
    const path = join(dir, "v.gif");
    await writeFile(path, "old");
    await writeVideo(path, solidVideo(4, 4, 2));
    expect((await readFile(path)).subarray(0, 6).toString()).toBe("GIF89a");
    expect(await readdir(dir)).toEqual(["v.gif"]);
  });
});

describe("readImage", () => {
  it("reads a PNG exactly and a JPEG closely", async () => {
    const dir = await tmpDir();
    const data = quadrants();
    const raw = { raw: { width: 40, height: 30, channels: 3 as const } };
    await sharp(data, raw).png().toFile(join(dir, "q.png"));
    await sharp(data, raw).jpeg({ quality: 95, chromaSubsampling: "4:4:4" }).toFile(join(dir, "q.jpg"));
    const png = await readImage(join(dir, "q.png"));
    expect([png.width, png.height, png.data.length]).toEqual([40, 30, 3600]);
    expect(Buffer.compare(png.data, data)).toBe(0);
    const jpg = await readImage(join(dir, "q.jpg"));
    expect([jpg.width, jpg.height]).toEqual([40, 30]);
    let err = 0;
    for (let i = 0; i < data.length; i++) err += Math.abs((jpg.data[i] as number) - (data[i] as number));
    expect(err / data.length).toBeLessThan(4);
  });

  it("refuses an image of more pixels than maxPixels before decoding it", async () => {
    const dir = await tmpDir();
    const raw = { raw: { width: 40, height: 30, channels: 3 as const } };
    await sharp(quadrants(), raw).png().toFile(join(dir, "q.png"));
    await expect(readImage(join(dir, "q.png"), { maxPixels: 1000 })).rejects.toThrow(/pixel limit/i);
    expect((await readImage(join(dir, "q.png"), { maxPixels: 1200 })).width).toBe(40);
    await expect(readImage(join(dir, "q.png"), { maxPixels: 0 })).rejects.toThrow(/maxPixels/);
  });

  it("resizes with cover, contain and fill", async () => {
    const dir = await tmpDir();
    await sharp(quadrants(), { raw: { width: 40, height: 30, channels: 3 } })
      .png()
      .toFile(join(dir, "q.png"));
    const p = join(dir, "q.png");
    const cover = await readImage(p, { width: 20, height: 20 });
    expect([cover.width, cover.height]).toEqual([20, 20]);
    const contain = await readImage(p, { width: 20, height: 20, fit: "contain" });
    expect([contain.width, contain.height]).toEqual([20, 20]);
    // 40x30 letterboxed into 20x20 is 20x15 with black bars above and below.
    expect(Math.max(...contain.data.subarray(0, 20 * 3))).toBe(0);
    expect([...contain.data.subarray((10 * 20 + 2) * 3, (10 * 20 + 2) * 3 + 3)]).toEqual([0, 255, 0]);
    const fill = await readImage(p, { width: 10, height: 40, fit: "fill" });
    expect([fill.width, fill.height]).toEqual([10, 40]);
    const byWidth = await readImage(p, { width: 20 });
    expect([byWidth.width, byWidth.height]).toEqual([20, 15]);
  });

  it("turns greyscale and transparent images into RGB", async () => {
    const dir = await tmpDir();
    await sharp(new Uint8Array([0, 128, 255, 64]), { raw: { width: 2, height: 2, channels: 1 } })
      .png()
      .toFile(join(dir, "g.png"));
    const g = await readImage(join(dir, "g.png"));
    expect([...g.data]).toEqual([0, 0, 0, 128, 128, 128, 255, 255, 255, 64, 64, 64]);
    await sharp(new Uint8Array([255, 0, 0, 255, 0, 255, 0, 0]), { raw: { width: 2, height: 1, channels: 4 } })
      .png()
      .toFile(join(dir, "a.png"));
    expect([...(await readImage(join(dir, "a.png"))).data]).toEqual([255, 0, 0, 0, 0, 0]);
  });

  it("explains missing and corrupt files", async () => {
    const dir = await tmpDir();
    await rejects(readImage(join(dir, "nope.png")), /nope\.png: no such file or folder/);
    await writeFile(join(dir, "bad.png"), "definitely not a png");
    await rejects(readImage(join(dir, "bad.png")), /bad\.png: cannot decode image/);
    const png = await sharp(quadrants(), { raw: { width: 40, height: 30, channels: 3 } })
      .png()
      .toBuffer();
    await writeFile(join(dir, "cut.png"), png.subarray(0, png.length / 2));
    await rejects(readImage(join(dir, "cut.png")), /cut\.png: cannot decode image/);
    await rejects(readImage(dir), /is not a file/);
    await rejects(readImage(join(dir, "bad.png"), { width: -1 }), /'width' must be a positive integer/);
    await rejects(
      readImage(join(dir, "bad.png"), { width: 2, height: 2, fit: "stretch" as never }),
      /'fit' must be/,
    );
    await rejects(readVideo(join(dir, "none.mp4")), /no such file or folder/);
    await rejects(readVideo(dir, { maxFrames: 0 }), /'maxFrames' must be a positive integer/);
  });
});

describe("writeImage and writeContactSheet", () => {
  it("writes PNG and JPEG stills", async () => {
    const dir = await tmpDir();
    const img = { width: 40, height: 30, data: quadrants() };
    await writeImage(join(dir, "a.png"), img);
    expect(Buffer.compare((await readImage(join(dir, "a.png"))).data, img.data)).toBe(0);
    await writeImage(join(dir, "a.jpg"), img);
    expect((await sharp(join(dir, "a.jpg")).metadata()).format).toBe("jpeg");
    await rejects(writeImage(join(dir, "a.bmp"), img), /writes \.png, \.jpg or \.webp/);
    await rejects(writeImage(join(dir, "b.png"), { ...img, data: new Uint8Array(5) }), /has 5 bytes/);
  });

  it("tiles every frameStep-th frame in rows of `columns`", async () => {
    const dir = await tmpDir();
    const v = solidVideo(6, 4, 10);
    const path = join(dir, "sheet.png");
    const sheet = await writeContactSheet(path, v, { columns: 3, frameStep: 2, gap: 1 });
    // Frames 0, 2, 4, 6, 8: two rows of three tiles, with 1-pixel gaps around each.
    expect([sheet.width, sheet.height]).toEqual([3 * 6 + 4, 2 * 4 + 3]);
    const back = await readImage(path);
    expect(Buffer.compare(back.data, sheet.data)).toBe(0);
    const px = (x: number, y: number) => [
      ...back.data.subarray((y * sheet.width + x) * 3, (y * sheet.width + x) * 3 + 3),
    ];
    expect(px(0, 0)).toEqual([255, 255, 255]);
    expect(px(1, 1)).toEqual([0, 100, 200]); // frame 0
    expect(px(8, 1)).toEqual([40, 100, 200]); // frame 2
    expect(px(1, 6)).toEqual([120, 100, 200]); // frame 6
    expect(px(8, 6)).toEqual([160, 100, 200]); // frame 8
    expect(px(15, 6)).toEqual([255, 255, 255]); // the empty sixth slot
    await rejects(writeContactSheet(path, v, { columns: 0 }), /'columns' must be an integer >= 1/);
    const dir2 = await tmpDir();
    await mkdir(join(dir2, "x"));
    await writeContactSheet(join(dir2, "x", "s.png"), v);
    expect(await readdir(join(dir2, "x"))).toEqual(["s.png"]);
  });
});
