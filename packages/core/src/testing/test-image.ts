// The picture the pipeline tests start image-to-video and clip runs from.

/** A gradient-and-stripes RGB8 picture, so the encoded image is not flat; `phase` shifts the stripes. */
export function testImage(w: number, h: number, phase = 0): Uint8Array {
  const data = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      const o = (y * w + x) * 3;
      data[o] = (x * 255) / (w - 1);
      data[o + 1] = (y * 255) / (h - 1);
      data[o + 2] = ((x + y + phase) >> 3) & 1 ? 220 : 30;
    }
  return data;
}
