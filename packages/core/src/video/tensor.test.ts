import { cudaStatus, liveTensorCount, Tensor } from "@tessera/native";
import { describe, expect, it } from "vitest";
import { VideoIOError } from "./errors.js";
import type { VideoFrames } from "./frames.js";
import { DEFAULT_VIDEO_FPS, framesFromTensor, tensorFromFrames } from "./tensor.js";

/** Every byte value appears, so the round trip is checked over the whole range. */
function allLevels(): VideoFrames {
  const width = 16;
  const height = 8;
  const frames = [0, 1].map((t) => {
    const f = new Uint8Array(width * height * 3);
    for (let i = 0; i < f.length; i++) f[i] = (i + t * 77) & 255;
    return f;
  });
  return { width, height, frames, fps: 24 };
}

const CUDA = cudaStatus().available;

describe("frames <-> tensors", () => {
  it.each(["f32", "f16"] as const)("round-trips every byte value exactly through %s", async (dtype) => {
    const before = liveTensorCount();
    const v = allLevels();
    const t = tensorFromFrames(v, { dtype });
    expect(t.shape).toEqual([1, 2, 8, 16, 3]);
    expect(t.dtype).toBe(dtype);
    const x = await t.toFloat32Array();
    expect(Math.min(...x)).toBeCloseTo(-1, 6);
    expect(Math.max(...x)).toBeCloseTo(1, 6);
    const back = await framesFromTensor(t, { fps: 24 });
    t.dispose();
    expect([back.width, back.height, back.fps, back.frames.length]).toEqual([16, 8, 24, 2]);
    back.frames.forEach((f, i) => {
      expect(Buffer.compare(f, v.frames[i] as Uint8Array)).toBe(0);
    });
    expect(liveTensorCount()).toBe(before);
  });

  it("round-trips through bf16 within one level (its 8-bit mantissa)", async () => {
    const v = allLevels();
    const t = tensorFromFrames(v, { dtype: "bf16" });
    const back = await framesFromTensor(t);
    t.dispose();
    expect(back.fps).toBe(DEFAULT_VIDEO_FPS);
    back.frames.forEach((f, i) => {
      const src = v.frames[i] as Uint8Array;
      for (let k = 0; k < f.length; k++)
        expect(Math.abs((f[k] as number) - (src[k] as number))).toBeLessThanOrEqual(1);
    });
  });

  it("rounds to the nearest level and clamps out-of-range values and NaN", async () => {
    const vals = [-1, 1, 0, -1.7, 2.5, Number.NaN, 0.00392, -0.00392, 1 / 127.5 - 1 + 0.003];
    const t = Tensor.from([...vals, 0, 0, 0], [1, 1, 1, 4, 3]);
    const back = await framesFromTensor(t);
    t.dispose();
    expect([...(back.frames[0] as Uint8Array)]).toEqual([0, 255, 128, 0, 255, 0, 128, 127, 1, 128, 128, 128]);
  });

  it("rejects tensors that are not one float RGB video", async () => {
    const cases: [number[], string, RegExp][] = [
      [[2, 1, 2, 2, 3], "f32", /expected shape \[1, T, H, W, 3\], got \[2, 1, 2, 2, 3\].*narrow/],
      [[1, 2, 2, 3], "f32", /expected shape/],
      [[1, 1, 2, 2, 4], "f32", /expected shape/],
      [[1, 1, 2, 2, 3], "i32", /expected a float tensor, got i32/],
      [[1, 0, 2, 2, 3], "f32", /holds no pixels/],
    ];
    for (const [shape, dtype, re] of cases) {
      const t = Tensor.from(new Array(shape.reduce((a, b) => a * b, 1)).fill(0), shape, {
        dtype: dtype as "f32",
      });
      await expect(framesFromTensor(t)).rejects.toThrow(re);
      t.dispose();
    }
    expect(() => tensorFromFrames(allLevels(), { dtype: "u8" })).toThrow(VideoIOError);
    expect(() => tensorFromFrames({ ...allLevels(), frames: [] })).toThrow(/zero frames/);
  });

  it.skipIf(!CUDA)(`works with tensors on the GPU${CUDA ? "" : " [SKIPPED: no CUDA device]"}`, async () => {
    const v = allLevels();
    const t = tensorFromFrames(v, { device: "cuda", dtype: "bf16" });
    expect(t.device.kind).toBe("cuda");
    const back = await framesFromTensor(t);
    t.dispose();
    back.frames.forEach((f, i) => {
      const src = v.frames[i] as Uint8Array;
      for (let k = 0; k < f.length; k++)
        expect(Math.abs((f[k] as number) - (src[k] as number))).toBeLessThanOrEqual(1);
    });
  });
});
