import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16, liveTensorCount } from "@tessera/native";
import { afterAll, describe, expect, it } from "vitest";
import {
  FP8_E4M3_TO_F32,
  FP8_E5M2_TO_F32,
  SafetensorsFile,
  type TensorToWrite,
  writeSafetensors,
} from "./safetensors.js";
import { WeightError } from "./store.js";

const dir = mkdtempSync(join(tmpdir(), "tessera-st-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const tmp = (name = "t") => join(dir, `${name}-${n++}.safetensors`);

async function roundTrip(t: TensorToWrite, dtype?: "f32" | "bf16" | "f16") {
  const p = tmp();
  await writeSafetensors(p, { x: t });
  const f = await SafetensorsFile.open(p);
  try {
    const x = await f.load("x", dtype ? { dtype } : {});
    const out = { dtype: x.dtype, shape: x.shape, values: await x.toTypedArray() };
    x.dispose();
    return out;
  } finally {
    await f.close();
  }
}

/** Writes `u64 len | header | data` with the header given as text or bytes. */
function rawFile(header: string | Uint8Array, data = 0, len?: bigint): string {
  const h = typeof header === "string" ? Buffer.from(header, "utf8") : Buffer.from(header);
  const l = Buffer.alloc(8);
  l.writeBigUInt64LE(len ?? BigInt(h.length));
  const p = tmp("raw");
  writeFileSync(p, Buffer.concat([l, h, Buffer.alloc(data)]));
  return p;
}

function emptyFile(): string {
  const p = tmp("empty");
  writeFileSync(p, "");
  return p;
}

async function openError(p: string): Promise<WeightError> {
  try {
    const f = await SafetensorsFile.open(p);
    await f.close();
  } catch (e) {
    expect(e).toBeInstanceOf(WeightError);
    expect((e as Error).message).toContain(p);
    return e as WeightError;
  }
  throw new Error(`${p} opened without error`);
}

const u16 = (a: number[]) => new Uint16Array(a);
const f32One = (): TensorToWrite => ({ dtype: "F32", shape: [1], data: Float32Array.from([1]) });
const sample = [0, -0, 1, -1, 0.1, 1 / 3, 65504, 70000, 1e-8, 3.4e38, -2.5e-5, Number.POSITIVE_INFINITY];

describe("safetensors round trips", () => {
  it("F32 as is, and cast on load to bf16 / f16 with round-to-nearest-even", async () => {
    // Values that sit exactly on bf16 rounding ties must round to even.
    const ties = [1 + 2 ** -8, 1 + 3 * 2 ** -8, -(1 + 2 ** -8)];
    const v = Float32Array.from([...sample, ...ties]);
    const f32 = await roundTrip({ dtype: "F32", shape: [v.length], data: v });
    expect(f32.dtype).toBe("f32");
    expect(Array.from(f32.values as Float32Array)).toEqual(Array.from(v));
    const bf = await roundTrip({ dtype: "F32", shape: [v.length], data: v }, "bf16");
    expect(bf.dtype).toBe("bf16");
    expect(Array.from(bf.values)).toEqual(Array.from(v, f32ToBf16));
    expect(bf16ToF32((bf.values as Uint16Array)[sample.length] as number)).toBe(1);
    const hf = await roundTrip({ dtype: "F32", shape: [v.length], data: v }, "f16");
    expect(Array.from(hf.values)).toEqual(Array.from(v, f32ToF16));
  });

  it("BF16 -> bf16 is a raw copy (every bit pattern, NaN payloads included)", async () => {
    const all = new Uint16Array(65536).map((_, i) => i);
    const r = await roundTrip({ dtype: "BF16", shape: [256, 256], data: all });
    expect(r.shape).toEqual([256, 256]);
    expect(Buffer.from((r.values as Uint16Array).buffer).equals(Buffer.from(all.buffer))).toBe(true);
    const f = await roundTrip(
      { dtype: "BF16", shape: [4], data: u16([0x3f80, 0xbf80, 0x4049, 0x0001]) },
      "f32",
    );
    expect(Array.from(f.values)).toEqual([1, -1, bf16ToF32(0x4049), bf16ToF32(0x0001)]);
  });

  it("F16 raw, to f32 exactly, and to bf16", async () => {
    const h = u16([0x3c00, 0xc000, 0x7bff, 0x0001, 0x3555, 0x7c00]);
    const raw = await roundTrip({ dtype: "F16", shape: [2, 3], data: h });
    expect(raw.dtype).toBe("f16");
    expect(Array.from(raw.values)).toEqual(Array.from(h));
    const f = await roundTrip({ dtype: "F16", shape: [2, 3], data: h }, "f32");
    expect(Array.from(f.values)).toEqual(Array.from(h, f16ToF32));
    const b = await roundTrip({ dtype: "F16", shape: [2, 3], data: h }, "bf16");
    expect(Array.from(b.values)).toEqual(Array.from(h, (x) => f32ToBf16(f16ToF32(x))));
  });

  it("F64 rounds to f32", async () => {
    const d = Float64Array.from([Math.PI, -1e-300, 1e300, 0.1]);
    const r = await roundTrip({ dtype: "F64", shape: [4], data: d });
    expect(r.dtype).toBe("f32");
    expect(Array.from(r.values)).toEqual(Array.from(d, Math.fround));
  });

  it("I32, U8 and 0-d tensors as is; BOOL as u8 0/1; I64 as i32 with a range check", async () => {
    const i = Int32Array.from([0, -1, 2 ** 31 - 1, -(2 ** 31)]);
    expect(Array.from((await roundTrip({ dtype: "I32", shape: [4], data: i })).values)).toEqual(
      Array.from(i),
    );
    const u = Uint8Array.from([0, 255, 7]);
    const ru = await roundTrip({ dtype: "U8", shape: [3], data: u });
    expect([ru.dtype, ...ru.values]).toEqual(["u8", 0, 255, 7]);
    const b = await roundTrip({ dtype: "BOOL", shape: [3], data: Uint8Array.from([0, 1, 5]) });
    expect([b.dtype, ...b.values]).toEqual(["u8", 0, 1, 1]);
    const scalar = await roundTrip({ dtype: "F32", shape: [], data: Float32Array.from([2.5]) });
    expect([scalar.shape, ...scalar.values]).toEqual([[], 2.5]);
    const empty = await roundTrip({ dtype: "F32", shape: [0, 3], data: new Float32Array(0) });
    expect(empty.shape).toEqual([0, 3]);
    const l = BigInt64Array.from([0n, -5n, 2n ** 31n - 1n]);
    const rl = await roundTrip({ dtype: "I64", shape: [3], data: l });
    expect([rl.dtype, ...rl.values]).toEqual(["i32", 0, -5, 2 ** 31 - 1]);
    const p = tmp();
    await writeSafetensors(p, {
      ids: { dtype: "I64", shape: [2], data: BigInt64Array.from([1n, 2n ** 31n]) },
    });
    const f = await SafetensorsFile.open(p);
    await expect(f.load("ids")).rejects.toThrow(/"ids": I64 value 2147483648 at index 1 does not fit in i32/);
    await expect(f.load("ids")).rejects.toBeInstanceOf(WeightError);
    await f.close();
  });

  it("reads a tensor larger than one read chunk (several reads in flight)", async () => {
    const big = new Uint8Array((17 << 20) + 3).map((_, i) => (i * 7 + (i >> 16)) & 255);
    const p = tmp("big");
    await writeSafetensors(p, { head: f32One(), big: { dtype: "U8", shape: [big.length], data: big } });
    const f = await SafetensorsFile.open(p);
    expect(Buffer.from(await f.readBytes("big")).equals(Buffer.from(big))).toBe(true);
    await f.close();
    rmSync(p);
  });

  it("rejects a run dtype that is not a float dtype, and dtypes it cannot load", async () => {
    const p = tmp();
    await writeSafetensors(p, {
      a: { dtype: "F32", shape: [1], data: new Float32Array(1) },
      b: { dtype: "U16", shape: [1], data: new Uint16Array(1) },
    });
    const f = await SafetensorsFile.open(p);
    await expect(f.load("a", { dtype: "i32" })).rejects.toThrow(/run dtype/);
    await expect(f.load("b")).rejects.toThrow(/"b": dtype U16 is not supported/);
    await f.close();
  });
});

/** fp8 e4m3fn decoded independently: assemble the float64 bit pattern directly. */
function e4m3Reference(b: number): number {
  const s = b >> 7;
  const e = (b >> 3) & 15;
  const m = b & 7;
  if (e === 15 && m === 7) return Number.NaN;
  const dv = new DataView(new ArrayBuffer(8));
  if (e === 0) return (s ? -1 : 1) * (m / 8) * 2 ** -6;
  dv.setUint32(0, (s << 31) | ((e - 7 + 1023) << 20) | (m << 17));
  return dv.getFloat64(0);
}

describe("fp8", () => {
  it("the e4m3fn table matches a float64 decode of all 256 codes", () => {
    for (let b = 0; b < 256; b++) expect(FP8_E4M3_TO_F32[b]).toBe(e4m3Reference(b));
    expect(FP8_E4M3_TO_F32[0x7e]).toBe(448);
    expect(FP8_E4M3_TO_F32[0x01]).toBe(2 ** -9);
    expect(Number.isNaN(FP8_E4M3_TO_F32[0x7f])).toBe(true);
    expect(Number.isNaN(FP8_E4M3_TO_F32[0xff])).toBe(true);
    expect(Object.is(FP8_E4M3_TO_F32[0x80], -0)).toBe(true);
  });

  it("the e5m2 table is the f16 decode of the high byte", () => {
    for (let b = 0; b < 256; b++) expect(FP8_E5M2_TO_F32[b]).toBe(f16ToF32(b << 8));
    expect(FP8_E5M2_TO_F32[0x7c]).toBe(Number.POSITIVE_INFINITY);
  });

  it("loads every code to f32, and exactly to bf16 and f16", async () => {
    const codes = Uint8Array.from({ length: 256 }, (_, i) => i);
    const f = await roundTrip({ dtype: "F8_E4M3", shape: [16, 16], data: codes });
    expect(f.dtype).toBe("f32");
    for (let b = 0; b < 256; b++) expect((f.values as Float32Array)[b]).toBe(e4m3Reference(b));
    const bf = await roundTrip({ dtype: "F8_E4M3", shape: [16, 16], data: codes }, "bf16");
    const hf = await roundTrip({ dtype: "F8_E4M3", shape: [16, 16], data: codes }, "f16");
    for (let b = 0; b < 256; b++) {
      const want = e4m3Reference(b);
      const gotB = bf16ToF32((bf.values as Uint16Array)[b] as number);
      const gotH = f16ToF32((hf.values as Uint16Array)[b] as number);
      if (Number.isNaN(want)) {
        expect(Number.isNaN(gotB) && Number.isNaN(gotH)).toBe(true);
      } else {
        expect(gotB).toBe(want);
        expect(gotH).toBe(want);
      }
    }
  });

  it("applies a per-tensor or per-row scale in f32", async () => {
    const p = tmp();
    await writeSafetensors(p, {
      w: { dtype: "F8_E4M3", shape: [2, 2], data: Uint8Array.from([0x38, 0x40, 0xb8, 0x7e]) },
    });
    const f = await SafetensorsFile.open(p);
    const a = await f.load("w", { scale: Float32Array.from([0.5]) });
    expect(Array.from(await a.toFloat32Array())).toEqual([0.5, 1, -0.5, 224]);
    const b = await f.load("w", { scale: Float32Array.from([2, 3]) });
    expect(Array.from(await b.toFloat32Array())).toEqual([2, 4, -3, 1344]);
    await expect(f.load("w", { scale: Float32Array.from([1, 2, 3]) })).rejects.toThrow(/scale values/);
    a.dispose();
    b.dispose();
    await f.close();
  });
});

describe("header validation", () => {
  const ok = (extra = "") => `{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}${extra}}`;

  it("accepts a well-formed file with metadata and trailing header padding", async () => {
    const p = rawFile(
      `{"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}   `,
      8,
    );
    const f = await SafetensorsFile.open(p);
    expect(f.names()).toEqual(["a"]);
    expect(f.metadata).toEqual({ format: "pt" });
    expect(f.info("a")).toMatchObject({ dtype: "F32", shape: [2], byteLength: 8 });
    await f.close();
  });

  const cases: [string, () => string, RegExp][] = [
    ["an empty file", () => emptyFile(), /0 bytes is too short/],
    ["a zero header length", () => rawFile(new Uint8Array(0), 0, 0n), /header length 0 is too short/],
    ["a header length past the end", () => rawFile("{}", 0, 1000n), /runs past the end/],
    ["a huge header length", () => rawFile("{}", 0, 2n ** 63n), /exceeds the 100000000-byte limit/],
    ["invalid UTF-8", () => rawFile(Uint8Array.from([0x7b, 0xff, 0x7d])), /not valid UTF-8/],
    ["invalid JSON", () => rawFile(`{"a":`), /not valid JSON/],
    ["a non-object header", () => rawFile("[1,2]"), /does not start with '\{'/],
    ["a non-object entry", () => rawFile(`{"a":3}`), /"a": its header entry is not an object/],
    ["bad metadata", () => rawFile(`{"__metadata__":{"k":1}}`), /'__metadata__' entry "k" is not a string/],
    [
      "an unknown dtype",
      () => rawFile(`{"a":{"dtype":"F12","shape":[1],"data_offsets":[0,1]}}`, 1),
      /"a": unknown dtype "F12"/,
    ],
    [
      "a negative dim",
      () => rawFile(`{"a":{"dtype":"U8","shape":[-1],"data_offsets":[0,0]}}`),
      /"a": 'shape' must be/,
    ],
    [
      "a fractional dim",
      () => rawFile(`{"a":{"dtype":"U8","shape":[1.5],"data_offsets":[0,0]}}`),
      /"a": 'shape' must be/,
    ],
    [
      "an unsafe dim",
      () => rawFile(`{"a":{"dtype":"U8","shape":[9007199254740993],"data_offsets":[0,0]}}`),
      /'shape' must be/,
    ],
    [
      "a string shape",
      () => rawFile(`{"a":{"dtype":"U8","shape":"2","data_offsets":[0,2]}}`, 2),
      /'shape' must be/,
    ],
    [
      "too many elements",
      () => rawFile(`{"a":{"dtype":"U8","shape":[4294967296,4294967296],"data_offsets":[0,0]}}`),
      /too many elements/,
    ],
    [
      "bad offsets",
      () => rawFile(`{"a":{"dtype":"U8","shape":[1],"data_offsets":[0]}}`, 1),
      /"a": 'data_offsets' must be/,
    ],
    [
      "reversed offsets",
      () => rawFile(`{"a":{"dtype":"U8","shape":[0],"data_offsets":[4,0]}}`, 4),
      /"a": data_offsets \[4, 0\] end before/,
    ],
    [
      "a size mismatch",
      () => rawFile(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}`, 4),
      /"a": data_offsets \[0, 4\] span 4 bytes but F32 \[2\] needs 8/,
    ],
    [
      "offsets past the data",
      () => rawFile(ok(), 4),
      /"a": data_offsets end at 8 but the data section holds only 4 bytes/,
    ],
    ["trailing bytes", () => rawFile(ok(), 12), /4 bytes after the last tensor/],
    [
      "overlapping tensors",
      () => rawFile(ok(`,"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}`), 8),
      /"b".*overlap tensor "a"|"a".*overlap tensor "b"/,
    ],
    [
      "a gap",
      () => rawFile(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, 8),
      /"a": data_offsets start at 4/,
    ],
    [
      "a duplicate name",
      () =>
        rawFile(
          `{"a":{"dtype":"U8","shape":[0],"data_offsets":[0,0]},"a":{"dtype":"U8","shape":[0],"data_offsets":[0,0]}}`,
        ),
      /duplicate key "a"/,
    ],
    ["deep nesting", () => rawFile(`{"a":${"[".repeat(100000)}${"]".repeat(100000)}}`), /nesting deeper/],
  ];
  for (const [what, make, re] of cases)
    it(`rejects ${what}`, async () => {
      const e = await openError(make());
      expect(e.message).toMatch(re);
    });

  it("rejects a truncated file, a folder, a missing file and a FIFO without hanging", async () => {
    const p = tmp();
    await writeSafetensors(p, { a: { dtype: "F32", shape: [4], data: new Float32Array(4) } });
    const bytes = readFileSync(p);
    const cut = tmp("cut");
    writeFileSync(cut, bytes.subarray(0, bytes.length - 1));
    expect((await openError(cut)).message).toMatch(/truncated/);
    await openError(dir);
    expect((await openError(join(dir, "nope.safetensors"))).message).toMatch(/no such file/);
    const fifo = join(dir, "fifo.safetensors");
    execFileSync("mkfifo", [fifo]);
    expect((await openError(fifo)).message).toMatch(/not a regular file/);
  });
});

describe("writeSafetensors", () => {
  it("replaces a file atomically and leaves no temporary files", async () => {
    const p = tmp("atomic");
    await writeSafetensors(
      p,
      { a: { dtype: "U8", shape: [1], data: Uint8Array.from([1]) } },
      { who: "first" },
    );
    await writeSafetensors(
      p,
      { b: { dtype: "U8", shape: [2], data: Uint8Array.from([2, 3]) } },
      { who: "second" },
    );
    const f = await SafetensorsFile.open(p);
    expect(f.names()).toEqual(["b"]);
    expect(f.metadata).toEqual({ who: "second" });
    expect(Array.from(await f.readBytes("b"))).toEqual([2, 3]);
    await f.close();
    expect(readdirSync(dir).filter((x) => x.endsWith(".tmp"))).toEqual([]);
    // Header + padding keep the data section 8-byte aligned.
    expect(readFileSync(p).readBigUInt64LE(0) % 8n).toBe(0n);
  });

  it("refuses data whose size does not match the shape, writing nothing", async () => {
    const p = tmp("bad");
    await expect(
      writeSafetensors(p, { a: { dtype: "F32", shape: [3], data: new Float32Array(2) } }),
    ).rejects.toThrow(/"a": data has 8 bytes but F32 \[3\] needs 12/);
    expect(readdirSync(dir).some((x) => x.startsWith("bad-"))).toBe(false);
  });

  it("leaks no tensors", () => {
    expect(liveTensorCount()).toBe(0);
  });
});
