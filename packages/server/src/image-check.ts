// Uploaded images, checked at upload time without decoding them into memory: their
// dimensions read from the header (a 729 KiB PNG can claim 16000×16000, 768 MB of
// pixels) and held to the server's limits before anything decodes them, and their
// structure checked end to end (a PNG's every chunk and CRC and its whole compressed
// stream; a JPEG's, GIF's or WebP's framing), so a file that only starts like an
// image is refused now rather than failing when its job runs. The generator then
// decodes what passes (VideoGenerator.checkInput).
import { readFile } from "node:fs/promises";
import { createInflate } from "node:zlib";
import { RequestFieldError } from "./generator.js";
import { crc32 } from "./png.js";

export interface ImageLimits {
  /** Most pixels (width × height) an input image may have. */
  maxImagePixels: number;
  /** Longest side an input image may have. */
  maxImageSide: number;
}

/** Checks the image at `path` (of the sniffed kind) and returns its size; RequestFieldError("image") if it is not fit. */
export async function checkImageUpload(
  path: string,
  kind: string,
  limits: ImageLimits,
  /** The upload's field ("image" or "end_image"), named in the errors. */
  field = "image",
): Promise<{ width: number; height: number }> {
  const buf = await readFile(path);
  const bad = (why: string) => new RequestFieldError(field, `${field} is not a valid ${label(kind)}: ${why}`);
  let size: { width: number; height: number };
  switch (kind) {
    case "png":
      size = pngHeader(buf, bad);
      break;
    case "jpg":
      size = jpegStructure(buf, bad);
      break;
    case "gif":
      size = gifStructure(buf, bad);
      break;
    case "webp":
      size = webpStructure(buf, bad);
      break;
    default:
      throw bad("unknown kind");
  }
  const { width, height } = size;
  if (width === 0 || height === 0) throw bad(`it is ${width}x${height}`);
  if (Math.max(width, height) > limits.maxImageSide || width * height > limits.maxImagePixels)
    throw new RequestFieldError(
      field,
      `${field} is ${width}x${height} (${((width * height) / 1e6).toFixed(1)} megapixels); this server takes images of ` +
        `at most ${limits.maxImageSide} pixels a side and ${(limits.maxImagePixels / 1e6).toFixed(1)} megapixels`,
    );
  if (kind === "png") await pngBody(buf, bad);
  return size;
}

function label(kind: string): string {
  return kind === "jpg" ? "JPEG" : kind.toUpperCase();
}

type Bad = (why: string) => Error;

const PNG_CHANNELS: Record<number, number> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };

function pngHeader(buf: Buffer, bad: Bad): { width: number; height: number } {
  if (buf.length < 33 || buf.readUInt32BE(8) !== 13 || buf.toString("latin1", 12, 16) !== "IHDR")
    throw bad("it has no IHDR header");
  const width = buf.readUInt32BE(16);
  const height = buf.readUInt32BE(20);
  if (!PNG_CHANNELS[buf[25] as number]) throw bad(`colour type ${buf[25]} does not exist`);
  return { width, height };
}

/** Bytes of filtered scanlines a PNG of this header decompresses to (Adam7 passes included). */
function pngRawBytes(
  width: number,
  height: number,
  bitDepth: number,
  colour: number,
  interlaced: boolean,
): number {
  const bitsPerPixel = bitDepth * (PNG_CHANNELS[colour] as number);
  const rows = (w: number, h: number) =>
    w === 0 || h === 0 ? 0 : h * (1 + Math.ceil((w * bitsPerPixel) / 8));
  if (!interlaced) return rows(width, height);
  const passes: [number, number, number, number][] = [
    [0, 0, 8, 8],
    [4, 0, 8, 8],
    [0, 4, 4, 8],
    [2, 0, 4, 4],
    [0, 2, 2, 4],
    [1, 0, 2, 2],
    [0, 1, 1, 2],
  ];
  let n = 0;
  for (const [x0, y0, dx, dy] of passes)
    n += rows(Math.ceil((width - x0) / dx), Math.ceil((height - y0) / dy));
  return n;
}

// Every chunk's length and CRC, IHDR first, IDAT together, IEND last with nothing after,
// and the IDAT stream inflating to exactly the scanlines the header promises.
async function pngBody(buf: Buffer, bad: Bad): Promise<void> {
  let off = 8;
  let sawIdat = false;
  let idatDone = false;
  const idat: Buffer[] = [];
  for (;;) {
    if (off + 12 > buf.length) throw bad("it ends in the middle of a chunk (no IEND)");
    const len = buf.readUInt32BE(off);
    const type = buf.toString("latin1", off + 4, off + 8);
    if (len > 0x7fffffff || off + 12 + len > buf.length)
      throw bad(`its ${type} chunk runs past the end of the file`);
    const crc = buf.readUInt32BE(off + 8 + len);
    if (crc32(buf.subarray(off + 4, off + 8 + len)) !== crc)
      throw bad(`its ${type} chunk is corrupt (bad CRC)`);
    if (off === 8 && type !== "IHDR") throw bad("it does not start with IHDR");
    if (type === "IDAT") {
      if (idatDone) throw bad("its IDAT chunks are not together");
      sawIdat = true;
      idat.push(buf.subarray(off + 8, off + 8 + len));
    } else if (sawIdat) idatDone = true;
    off += 12 + len;
    if (type === "IEND") break;
  }
  if (off !== buf.length) throw bad(`${buf.length - off} bytes follow its IEND`);
  if (!sawIdat) throw bad("it has no image data");
  const expected = pngRawBytes(
    buf.readUInt32BE(16),
    buf.readUInt32BE(20),
    buf[24] as number,
    buf[25] as number,
    buf[28] === 1,
  );
  // Inflated and counted, never held: the header has been checked against the limits already.
  let got = 0;
  await new Promise<void>((resolve, reject) => {
    const z = createInflate();
    z.on("data", (d: Buffer) => {
      got += d.length;
      if (got > expected) z.destroy(bad("its image data is longer than its size says"));
    });
    z.on("error", (e) =>
      reject(e instanceof RequestFieldError ? e : bad(`its image data does not inflate (${e.message})`)),
    );
    z.on("end", resolve);
    for (const c of idat) z.write(c);
    z.end();
  });
  if (got !== expected) throw bad(`its image data is ${got} bytes where its size needs ${expected}`);
}

function jpegStructure(buf: Buffer, bad: Bad): { width: number; height: number } {
  let size: { width: number; height: number } | null = null;
  let off = 2;
  while (off + 4 <= buf.length) {
    if (buf[off] !== 0xff) throw bad(`no marker at byte ${off}`);
    const marker = buf[off + 1] as number;
    if (marker === 0xff) {
      off++; // fill byte
      continue;
    }
    if (marker === 0xd9) throw bad("it ends before its image data");
    if (marker >= 0xd0 && marker <= 0xd7) {
      off += 2;
      continue;
    }
    const len = buf.readUInt16BE(off + 2);
    if (len < 2 || off + 2 + len > buf.length) throw bad(`a segment runs past the end of the file`);
    // SOF0..SOF15, except DHT (C4), JPG (C8) and DAC (CC).
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
      if (len < 8) throw bad("its frame header is too short");
      size = { height: buf.readUInt16BE(off + 5), width: buf.readUInt16BE(off + 7) };
    }
    if (marker === 0xda) {
      if (!size) throw bad("its scan comes before any frame header");
      // Entropy-coded data follows; the file must end with EOI (FF D9).
      let end = buf.length;
      while (end > off && buf[end - 1] === 0x00) end--; // some writers pad
      if (buf[end - 2] !== 0xff || buf[end - 1] !== 0xd9)
        throw bad("it is cut short (no end-of-image marker)");
      return size;
    }
    off += 2 + len;
  }
  throw bad("it has no image data");
}

function gifStructure(buf: Buffer, bad: Bad): { width: number; height: number } {
  if (buf.length < 14) throw bad("it is too short");
  let end = buf.length;
  while (end > 13 && buf[end - 1] === 0x00) end--;
  if (buf[end - 1] !== 0x3b) throw bad("it is cut short (no trailer)");
  return { width: buf.readUInt16LE(6), height: buf.readUInt16LE(8) };
}

function webpStructure(buf: Buffer, bad: Bad): { width: number; height: number } {
  if (buf.length < 30) throw bad("it is too short");
  const riff = buf.readUInt32LE(4);
  if (riff + 8 !== buf.length && riff + 9 !== buf.length)
    throw bad(`its RIFF size ${riff + 8} is not its length ${buf.length}`);
  const chunk = buf.toString("latin1", 12, 16);
  if (chunk === "VP8X") return { width: 1 + buf.readUIntLE(24, 3), height: 1 + buf.readUIntLE(27, 3) };
  if (chunk === "VP8L") {
    if (buf[20] !== 0x2f) throw bad("its lossless header is wrong");
    const b = buf.readUInt32LE(21);
    return { width: 1 + (b & 0x3fff), height: 1 + ((b >>> 14) & 0x3fff) };
  }
  if (chunk === "VP8 ") {
    if (buf[23] !== 0x9d || buf[24] !== 0x01 || buf[25] !== 0x2a) throw bad("its key frame header is wrong");
    return { width: buf.readUInt16LE(26) & 0x3fff, height: buf.readUInt16LE(28) & 0x3fff };
  }
  throw bad(`its first chunk is '${chunk}'`);
}
