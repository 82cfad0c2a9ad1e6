// Element types and host-side conversions (bf16/f16 have no JS typed array).

export type DType = "f32" | "bf16" | "f16" | "i32" | "u8";
export const DTYPES: readonly DType[] = ["f32", "bf16", "f16", "i32", "u8"];

export function isDType(x: unknown): x is DType {
  return typeof x === "string" && (DTYPES as readonly string[]).includes(x);
}

export function dtypeSize(d: DType): number {
  return d === "f32" || d === "i32" ? 4 : d === "u8" ? 1 : 2;
}

export function isFloat(d: DType): boolean {
  return d === "f32" || d === "bf16" || d === "f16";
}

/** What `toTypedArray()` returns for each dtype (bf16/f16 as their raw 16-bit patterns). */
export type TypedArrayFor<D extends DType> = D extends "f32"
  ? Float32Array
  : D extends "i32"
    ? Int32Array
    : D extends "u8"
      ? Uint8Array
      : Uint16Array;

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** Round-to-nearest-even, like the native code. */
export function f32ToBf16(x: number): number {
  f32[0] = x;
  const u = u32[0] as number;
  if ((u & 0x7fffffff) > 0x7f800000) return ((u >>> 16) | 0x40) & 0xffff;
  return ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) & 0xffff;
}

export function bf16ToF32(h: number): number {
  u32[0] = (h & 0xffff) << 16;
  return f32[0] as number;
}

export function f16ToF32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const man = h & 0x3ff;
  if (exp === 0) return sign * man * 2 ** -24;
  if (exp === 31) return man ? Number.NaN : sign * Number.POSITIVE_INFINITY;
  return sign * (1 + man / 1024) * 2 ** (exp - 15);
}

export function f32ToF16(x: number): number {
  f32[0] = x;
  const u = u32[0] as number;
  const sign = (u >>> 16) & 0x8000;
  const abs = u & 0x7fffffff;
  if (abs > 0x7f800000) return sign | 0x7e00;
  if (abs >= 0x477ff000) return sign | 0x7c00;
  if (abs < 0x38800000) {
    if (abs < 0x33000000) return sign;
    const exp = abs >>> 23;
    const man = (abs & 0x7fffff) | 0x800000;
    const s = 126 - exp;
    let q = man >>> s;
    const rem = man & ((1 << s) - 1);
    const half = 1 << (s - 1);
    if (rem > half || (rem === half && q & 1)) q++;
    return sign | q;
  }
  const r = (abs + 0xfff + ((abs >>> 13) & 1) - 0x38000000) >>> 0;
  return sign | (r >>> 13);
}

/** Packs numbers into the bytes of dtype `d`. */
export function encode(values: ArrayLike<number>, d: DType): ArrayBufferView {
  const n = values.length;
  switch (d) {
    case "f32":
      return values instanceof Float32Array ? values : Float32Array.from(values);
    case "i32":
      return values instanceof Int32Array ? values : Int32Array.from(values);
    case "u8":
      return values instanceof Uint8Array ? values : Uint8Array.from(values);
    case "bf16": {
      const out = new Uint16Array(n);
      for (let i = 0; i < n; i++) out[i] = f32ToBf16(values[i] as number);
      return out;
    }
    case "f16": {
      const out = new Uint16Array(n);
      for (let i = 0; i < n; i++) out[i] = f32ToF16(values[i] as number);
      return out;
    }
  }
}

/** Unpacks raw bytes of dtype `d` into float32 values. */
export function decodeToF32(buf: ArrayBuffer, d: DType): Float32Array {
  switch (d) {
    case "f32":
      return new Float32Array(buf);
    case "i32":
      return Float32Array.from(new Int32Array(buf));
    case "u8":
      return Float32Array.from(new Uint8Array(buf));
    case "bf16": {
      const h = new Uint16Array(buf);
      const out = new Float32Array(h.length);
      const o32 = new Uint32Array(out.buffer);
      for (let i = 0; i < h.length; i++) o32[i] = (h[i] as number) << 16;
      return out;
    }
    case "f16": {
      const h = new Uint16Array(buf);
      const out = new Float32Array(h.length);
      for (let i = 0; i < h.length; i++) out[i] = f16ToF32(h[i] as number);
      return out;
    }
  }
}
