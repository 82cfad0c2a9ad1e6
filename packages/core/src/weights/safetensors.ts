// The safetensors format: an 8-byte little-endian header length, a JSON header
// ({name: {dtype, shape, data_offsets}} plus an optional "__metadata__" object of
// strings), then the tensors' bytes. Everything in the header is checked before a
// byte of data is trusted, and every failure is a WeightError naming the file and,
// where there is one, the tensor: checkpoints come from the internet.
//
// Tensors are read lazily, one at a time, with positioned reads on a file handle.
// Node has no mmap; reading a tensor's byte range straight from the OS page cache
// is our equivalent of the memory-mapped loading other runtimes do, and it means a
// load never holds more than one tensor's bytes (plus its device copy) at once.
import { randomUUID } from "node:crypto";
import { constants as fsConstants } from "node:fs";
import { type FileHandle, open, rename, unlink } from "node:fs/promises";
import { endianness } from "node:os";
import {
  cast,
  type DeviceLike,
  type DType,
  decodeToF32,
  f16ToF32,
  f32ToBf16,
  f32ToF16,
  isFloat,
  Tensor,
} from "@tessera/native";
import { WeightError } from "./store.js";
import { isJsonObject, JsonSyntaxError, type JsonValue, parseStrictJson } from "./strict-json.js";

/** The safetensors crate's own cap; a larger header is corrupt or hostile. */
export const MAX_HEADER_BYTES = 100_000_000;
/** The native tensor rank limit (kMaxDims). */
const MAX_LOAD_DIMS = 8;
/** Positioned reads go in pieces of this size (well below read(2)'s 2 GiB per call)... */
const READ_CHUNK = 16 << 20;
/** ...with up to this many in flight for one tensor. */
const READS_IN_FLIGHT = 4;

/** Byte sizes of the safetensors dtypes we can lay out (sub-byte F4/F6 are not). */
const DTYPE_BYTES = {
  BOOL: 1,
  U8: 1,
  I8: 1,
  F8_E4M3: 1,
  F8_E5M2: 1,
  F8_E8M0: 1,
  I16: 2,
  U16: 2,
  F16: 2,
  BF16: 2,
  I32: 4,
  U32: 4,
  F32: 4,
  I64: 8,
  U64: 8,
  F64: 8,
  C64: 8,
} as const;

export type SafetensorsDType = keyof typeof DTYPE_BYTES;

/** The dtypes loadable into a Tensor (the others parse, so a file holding them can be listed). */
export const LOADABLE_DTYPES: readonly SafetensorsDType[] = [
  "F32",
  "BF16",
  "F16",
  "F64",
  "F8_E4M3",
  "F8_E5M2",
  "I32",
  "I64",
  "U8",
  "BOOL",
];

export function isSafetensorsDType(x: unknown): x is SafetensorsDType {
  return typeof x === "string" && Object.hasOwn(DTYPE_BYTES, x);
}

export function safetensorsDTypeSize(d: SafetensorsDType): number {
  return DTYPE_BYTES[d];
}

export interface TensorInfo {
  readonly name: string;
  readonly dtype: SafetensorsDType;
  readonly shape: readonly number[];
  /** Offset of the first byte in the file (header included). */
  readonly fileOffset: number;
  readonly byteLength: number;
}

export interface SafetensorsHeader {
  readonly metadata: Readonly<Record<string, string>>;
  readonly tensors: ReadonlyMap<string, TensorInfo>;
  /** Where the data section starts: 8 + header length. */
  readonly dataStart: number;
}

function numelChecked(shape: readonly number[]): number | null {
  let n = 1;
  for (const d of shape) {
    n *= d;
    if (!Number.isSafeInteger(n)) return null;
  }
  return n;
}

const q = (s: string) => JSON.stringify(s.length > 200 ? `${s.slice(0, 200)}...` : s);

/**
 * Validates a decoded header. `label` names the file in errors; `dataLength` is the
 * size of the data section (file size - 8 - header length), which the tensors must
 * tile exactly, as the reference implementation requires.
 */
export function parseSafetensorsHeader(
  headerBytes: Uint8Array,
  label: string,
  dataLength: number,
): SafetensorsHeader {
  const bad = (why: string) => new WeightError(`${label}: invalid safetensors header: ${why}`);
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(headerBytes);
  } catch {
    throw bad("it is not valid UTF-8");
  }
  if (!text.startsWith("{")) throw bad("it does not start with '{'");
  let root: JsonValue;
  try {
    root = parseStrictJson(text);
  } catch (e) {
    if (e instanceof JsonSyntaxError) throw bad(`it is not valid JSON (${e.message})`);
    throw bad(`it could not be parsed (${(e as Error)?.message ?? String(e)})`);
  }
  if (!isJsonObject(root)) throw bad("it is not a JSON object");

  let metadata: Record<string, string> = {};
  const tensors = new Map<string, TensorInfo>();
  const dataStart = 8 + headerBytes.length;
  for (const name of Object.keys(root)) {
    const entry = root[name];
    if (name === "__metadata__") {
      if (!isJsonObject(entry)) throw bad("'__metadata__' must be an object of strings");
      for (const [k, v] of Object.entries(entry))
        if (typeof v !== "string") throw bad(`'__metadata__' entry ${q(k)} is not a string`);
      metadata = entry as Record<string, string>;
      continue;
    }
    const t = (why: string) => new WeightError(`${label}: tensor ${q(name)}: ${why}`);
    if (!isJsonObject(entry)) throw t("its header entry is not an object");
    const { dtype, shape, data_offsets: offsets } = entry;
    if (typeof dtype !== "string") throw t("'dtype' is missing or not a string");
    if (!isSafetensorsDType(dtype)) throw t(`unknown dtype ${q(dtype)}`);
    if (
      !Array.isArray(shape) ||
      !shape.every((d) => typeof d === "number" && Number.isSafeInteger(d) && d >= 0)
    )
      throw t(
        `'shape' must be an array of non-negative integers, got ${q(JSON.stringify(shape) ?? "nothing")}`,
      );
    if (
      !Array.isArray(offsets) ||
      offsets.length !== 2 ||
      !offsets.every((o) => typeof o === "number" && Number.isSafeInteger(o) && o >= 0)
    )
      throw t(
        `'data_offsets' must be two non-negative integers, got ${q(JSON.stringify(offsets) ?? "nothing")}`,
      );
    const [begin, end] = offsets as [number, number];
    if (end < begin) throw t(`data_offsets [${begin}, ${end}] end before they begin`);
    const numel = numelChecked(shape as number[]);
    if (numel === null) throw t(`shape [${shape.join(", ")}] has too many elements`);
    const need = numel * DTYPE_BYTES[dtype];
    if (!Number.isSafeInteger(need) || end - begin !== need)
      throw t(
        `data_offsets [${begin}, ${end}] span ${end - begin} bytes but ${dtype} [${shape.join(", ")}] needs ${need}`,
      );
    tensors.set(name, {
      name,
      dtype,
      shape: Object.freeze([...(shape as number[])]),
      fileOffset: dataStart + begin,
      byteLength: need,
    });
  }

  // The tensors must tile the data section: no overlap, no gap, nothing past the end.
  const sorted = [...tensors.values()].sort(
    (a, b) => a.fileOffset - b.fileOffset || a.byteLength - b.byteLength,
  );
  let pos = 0;
  let prev: TensorInfo | undefined;
  for (const info of sorted) {
    const begin = info.fileOffset - dataStart;
    if (begin < pos)
      throw new WeightError(
        `${label}: tensor ${q(info.name)}: data_offsets [${begin}, ${begin + info.byteLength}] overlap tensor ${q(prev?.name ?? "")}`,
      );
    if (begin > pos)
      throw new WeightError(
        `${label}: tensor ${q(info.name)}: data_offsets start at ${begin}, leaving bytes [${pos}, ${begin}) of the data section unused`,
      );
    if (begin + info.byteLength > dataLength)
      throw new WeightError(
        `${label}: tensor ${q(info.name)}: data_offsets end at ${begin + info.byteLength} but the data section holds only ${dataLength} bytes (the file is truncated)`,
      );
    pos = begin + info.byteLength;
    prev = info;
  }
  if (pos !== dataLength)
    throw new WeightError(
      `${label}: invalid safetensors file: ${dataLength - pos} bytes after the last tensor's data (the tensors end at ${pos} of ${dataLength})`,
    );
  return { metadata: Object.freeze({ ...metadata }), tensors, dataStart };
}

/**
 * Fills `buf` from `position`. Large ranges go as several chunk reads in flight at
 * once, which keeps a fast disk's queue busy on a cold cache and costs nothing on
 * a warm one.
 */
async function readFully(fh: FileHandle, buf: Uint8Array, position: number, label: string, what: string) {
  let next = 0;
  const worker = async () => {
    while (next < buf.length) {
      const start = next;
      const len = Math.min(READ_CHUNK, buf.length - start);
      next += len;
      for (let done = 0; done < len; ) {
        let bytesRead: number;
        try {
          ({ bytesRead } = await fh.read(buf, start + done, len - done, position + start + done));
        } catch (e) {
          throw new WeightError(`${label}: reading ${what} failed: ${(e as Error).message}`, { cause: e });
        }
        if (bytesRead === 0)
          throw new WeightError(
            `${label}: ${what}: the file ended early (it is truncated or changed while reading)`,
          );
        done += bytesRead;
      }
    }
  };
  const workers = Math.min(READS_IN_FLIGHT, Math.ceil(buf.length / READ_CHUNK));
  if (workers <= 1) return worker();
  await Promise.all(Array.from({ length: workers }, worker));
}

function fsMessage(e: unknown): string {
  const err = e as NodeJS.ErrnoException;
  if (err?.code === "ENOENT") return "no such file";
  if (err?.code === "EACCES" || err?.code === "EPERM") return "permission denied";
  if (err?.code === "EISDIR") return "is a directory";
  return err?.message ?? String(e);
}

/** An open safetensors file whose tensors are read on demand. Close it when done. */
export class SafetensorsFile {
  #fh: FileHandle | null;

  private constructor(
    readonly path: string,
    fh: FileHandle,
    readonly size: number,
    readonly header: SafetensorsHeader,
  ) {
    this.#fh = fh;
  }

  /** Opens and validates `path`; throws a WeightError naming it for any problem. */
  static async open(path: string): Promise<SafetensorsFile> {
    if (endianness() !== "LE")
      throw new WeightError(`${path}: safetensors data is little-endian and this host is not`);
    let fh: FileHandle;
    try {
      // O_NONBLOCK so that a FIFO named like a checkpoint cannot block the open.
      fh = await open(path, fsConstants.O_RDONLY | (fsConstants.O_NONBLOCK ?? 0));
    } catch (e) {
      throw new WeightError(`${path}: cannot open: ${fsMessage(e)}`, { cause: e });
    }
    try {
      const st = await fh.stat();
      if (!st.isFile()) throw new WeightError(`${path}: not a regular file`);
      const size = st.size;
      if (size < 8)
        throw new WeightError(`${path}: invalid safetensors file: ${size} bytes is too short for a header`);
      const lenBuf = new Uint8Array(8);
      await readFully(fh, lenBuf, 0, path, "the header length");
      const n = new DataView(lenBuf.buffer).getBigUint64(0, true);
      if (n > BigInt(MAX_HEADER_BYTES))
        throw new WeightError(
          `${path}: invalid safetensors file: header length ${n} exceeds the ${MAX_HEADER_BYTES}-byte limit`,
        );
      const headerLen = Number(n);
      if (8 + headerLen > size)
        throw new WeightError(
          `${path}: invalid safetensors file: header length ${headerLen} runs past the end of the ${size}-byte file`,
        );
      if (headerLen < 2)
        throw new WeightError(`${path}: invalid safetensors file: header length ${headerLen} is too short`);
      const headerBytes = new Uint8Array(headerLen);
      await readFully(fh, headerBytes, 8, path, "the header");
      const header = parseSafetensorsHeader(headerBytes, path, size - 8 - headerLen);
      return new SafetensorsFile(path, fh, size, header);
    } catch (e) {
      await fh.close().catch(() => {});
      if (e instanceof WeightError) throw e;
      throw new WeightError(`${path}: ${(e as Error)?.message ?? String(e)}`, { cause: e });
    }
  }

  get metadata(): Readonly<Record<string, string>> {
    return this.header.metadata;
  }

  get tensors(): ReadonlyMap<string, TensorInfo> {
    return this.header.tensors;
  }

  names(): string[] {
    return [...this.header.tensors.keys()];
  }

  info(name: string): TensorInfo {
    const info = this.header.tensors.get(name);
    if (!info) throw new WeightError(`${this.path}: no tensor ${q(name)} in this file`);
    return info;
  }

  /** The tensor's raw little-endian bytes, in a fresh buffer of its own (aligned for typed-array views). */
  async readBytes(name: string): Promise<Uint8Array> {
    const info = this.info(name);
    const fh = this.#fh;
    if (!fh) throw new WeightError(`${this.path}: tensor ${q(name)}: the file was closed`);
    let buf: Uint8Array;
    try {
      // Not zero-filled (every byte is read over) and not pooled, so it starts at offset 0.
      const b = Buffer.allocUnsafeSlow(info.byteLength);
      buf = new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
    } catch (e) {
      throw new WeightError(
        `${this.path}: tensor ${q(name)}: cannot allocate ${info.byteLength} bytes to read it`,
        { cause: e },
      );
    }
    await readFully(fh, buf, info.fileOffset, this.path, `tensor ${q(name)}`);
    return buf;
  }

  /** Reads one tensor onto `device`, converted as `decodeTensor` describes. */
  async load(name: string, opts: DecodeOptions = {}): Promise<Tensor> {
    const info = this.info(name);
    return decodeTensor(await this.readBytes(name), info, { ...opts, label: opts.label ?? this.path });
  }

  async close(): Promise<void> {
    const fh = this.#fh;
    this.#fh = null;
    if (fh) await fh.close();
  }
}

// ---------------------------------------------------------------------------
// Host-side conversions

/** float8 e4m3fn (no infinities; S.1111.111 is NaN; bias 7) to float, all 256 codes. */
export const FP8_E4M3_TO_F32: Float32Array = (() => {
  const t = new Float32Array(256);
  for (let b = 0; b < 256; b++) {
    const sign = b & 0x80 ? -1 : 1;
    const e = (b >> 3) & 0xf;
    const m = b & 7;
    if (e === 15 && m === 7) t[b] = Number.NaN;
    else if (e === 0) t[b] = sign * m * 2 ** -9;
    else t[b] = sign * (1 + m / 8) * 2 ** (e - 7);
  }
  return t;
})();

/** float8 e5m2 is the high byte of an IEEE half, so its table is the f16 decode of b << 8. */
export const FP8_E5M2_TO_F32: Float32Array = Float32Array.from({ length: 256 }, (_, b) => f16ToF32(b << 8));

// Every fp8 value is exact in bf16 and in f16, so an unscaled fp8 tensor can go
// straight to a 16-bit run dtype through a second 256-entry table.
const fp8Tables16 = new Map<string, Uint16Array>();
function fp8Table16(src: "F8_E4M3" | "F8_E5M2", dst: "bf16" | "f16"): Uint16Array {
  const key = `${src}>${dst}`;
  let t = fp8Tables16.get(key);
  if (!t) {
    const f = src === "F8_E4M3" ? FP8_E4M3_TO_F32 : FP8_E5M2_TO_F32;
    t = new Uint16Array(256);
    for (let b = 0; b < 256; b++)
      t[b] = dst === "bf16" ? f32ToBf16(f[b] as number) : f32ToF16(f[b] as number);
    fp8Tables16.set(key, t);
  }
  return t;
}

/** The run dtype a float tensor gets when the caller names none: its own, or f32 for fp8/f64. */
export function defaultFloatDType(src: SafetensorsDType): "f32" | "bf16" | "f16" {
  return src === "BF16" ? "bf16" : src === "F16" ? "f16" : "f32";
}

export interface DecodeOptions {
  /** Default "cpu". */
  device?: DeviceLike;
  /** Run dtype for floating-point tensors (f32, bf16 or f16); integer tensors keep i32/u8. */
  dtype?: DType;
  /**
   * Dequantisation scale for fp8 tensors: one value, or one per row (dim 0):
   * the tensor becomes fp8 value × scale, computed in f32.
   */
  scale?: Float32Array;
  /** Names the file in errors (default: none). */
  label?: string;
}

function isFloatSource(d: SafetensorsDType): boolean {
  return d === "F32" || d === "BF16" || d === "F16" || d === "F64" || d === "F8_E4M3" || d === "F8_E5M2";
}

/**
 * Turns a tensor's raw bytes into a Tensor on `device`:
 * F32/BF16/F16 are uploaded as they are and cast on the device when the run dtype
 * differs (so bf16 -> bf16 is a raw copy and a cast runs in the native kernels);
 * F64 and FP8 are converted on the host (fp8 by table, times its scale if any);
 * I32 stays i32, I64 becomes i32 after a range check (ids only), U8 stays u8 and
 * BOOL becomes u8 0/1.
 */
export function decodeTensor(raw: Uint8Array, info: TensorInfo, opts: DecodeOptions = {}): Tensor {
  const where = `${opts.label ? `${opts.label}: ` : ""}tensor ${q(info.name)}`;
  const fail = (why: string) => new WeightError(`${where}: ${why}`);
  const device = opts.device ?? "cpu";
  const shape = info.shape;
  if (raw.byteLength !== info.byteLength)
    throw fail(`has ${raw.byteLength} bytes, expected ${info.byteLength}`);
  if (shape.length > MAX_LOAD_DIMS)
    throw fail(`has ${shape.length} dims; at most ${MAX_LOAD_DIMS} can be loaded`);
  if (!LOADABLE_DTYPES.includes(info.dtype)) throw fail(`dtype ${info.dtype} is not supported`);
  if (opts.dtype !== undefined && !isFloat(opts.dtype))
    throw fail(`the run dtype must be f32, bf16 or f16, got ${q(String(opts.dtype))}`);
  const numel = raw.byteLength / DTYPE_BYTES[info.dtype];
  // Typed-array views need element alignment; readBytes() gives that, other callers may not.
  if (raw.byteOffset % 8 !== 0) raw = new Uint8Array(raw);
  if (opts.scale && info.dtype !== "F8_E4M3" && info.dtype !== "F8_E5M2")
    throw fail(`a dequantisation scale applies to fp8 tensors only, not ${info.dtype}`);

  const make = (bytes: ArrayBufferView, dtype: DType): Tensor => {
    try {
      return Tensor.fromBytes(bytes, shape, { dtype, device });
    } catch (e) {
      throw new WeightError(`${where}: cannot create it on ${String(device)}: ${(e as Error).message}`, {
        cause: e,
      });
    }
  };
  const castTo = (t: Tensor, dtype: DType): Tensor => {
    if (t.dtype === dtype) return t;
    try {
      return cast(t, dtype);
    } catch (e) {
      throw new WeightError(`${where}: cannot cast ${t.dtype} to ${dtype}: ${(e as Error).message}`, {
        cause: e,
      });
    } finally {
      t.dispose();
    }
  };

  if (isFloatSource(info.dtype)) {
    const target = opts.dtype ?? defaultFloatDType(info.dtype);
    switch (info.dtype) {
      case "F32":
        return castTo(make(raw, "f32"), target);
      case "BF16":
        return castTo(make(raw, "bf16"), target);
      case "F16":
        return castTo(make(raw, "f16"), target);
      case "F64":
        return castTo(
          make(new Float32Array(new Float64Array(raw.buffer, raw.byteOffset, numel)), "f32"),
          target,
        );
      default: {
        const fp8 = info.dtype as "F8_E4M3" | "F8_E5M2";
        const scale = opts.scale;
        if (!scale && target !== "f32") {
          const t16 = fp8Table16(fp8, target as "bf16" | "f16");
          const out = new Uint16Array(numel);
          for (let i = 0; i < numel; i++) out[i] = t16[raw[i] as number] as number;
          return make(out, target);
        }
        const table = fp8 === "F8_E4M3" ? FP8_E4M3_TO_F32 : FP8_E5M2_TO_F32;
        const out = new Float32Array(numel);
        if (!scale) {
          for (let i = 0; i < numel; i++) out[i] = table[raw[i] as number] as number;
        } else if (scale.length === 1) {
          const s = scale[0] as number;
          for (let i = 0; i < numel; i++) out[i] = (table[raw[i] as number] as number) * s;
        } else {
          const rows = shape[0] ?? 1;
          if (scale.length !== rows || shape.length === 0)
            throw fail(`has ${scale.length} scale values; expected 1 or one per row (${rows})`);
          const cols = rows === 0 ? 0 : numel / rows;
          for (let r = 0, i = 0; r < rows; r++) {
            const s = scale[r] as number;
            for (let c = 0; c < cols; c++, i++) out[i] = (table[raw[i] as number] as number) * s;
          }
        }
        return castTo(make(out, "f32"), target);
      }
    }
  }

  switch (info.dtype) {
    case "I32":
    case "U8":
      return make(raw, info.dtype === "I32" ? "i32" : "u8");
    case "BOOL": {
      const out = new Uint8Array(numel);
      for (let i = 0; i < numel; i++) out[i] = raw[i] ? 1 : 0;
      return make(out, "u8");
    }
    case "I64": {
      const src = new BigInt64Array(raw.buffer, raw.byteOffset, numel);
      const out = new Int32Array(numel);
      const lo = BigInt(-(2 ** 31));
      const hi = BigInt(2 ** 31 - 1);
      for (let i = 0; i < numel; i++) {
        const v = src[i] as bigint;
        if (v < lo || v > hi)
          throw fail(`I64 value ${v} at index ${i} does not fit in i32 (I64 tensors are loaded as i32 ids)`);
        out[i] = Number(v);
      }
      return make(out, "i32");
    }
    default:
      throw fail(`dtype ${info.dtype} is not supported`);
  }
}

/** Decodes a small float tensor (a dequantisation scale) to f32 values on the host. */
export function decodeToF32Host(raw: Uint8Array, info: TensorInfo, label: string): Float32Array {
  const n = raw.byteLength / DTYPE_BYTES[info.dtype];
  const own = new Uint8Array(raw).buffer;
  switch (info.dtype) {
    case "F32":
      return new Float32Array(own);
    case "F64":
      return new Float32Array(new Float64Array(own, 0, n));
    case "BF16":
      return decodeToF32(own, "bf16");
    case "F16":
      return decodeToF32(own, "f16");
    default:
      throw new WeightError(
        `${label}: tensor ${q(info.name)}: a scale must be F32, F64, BF16 or F16, not ${info.dtype}`,
      );
  }
}

// ---------------------------------------------------------------------------
// Writing

export interface TensorToWrite {
  dtype: SafetensorsDType;
  shape: readonly number[];
  /** Little-endian bytes of the tensor (bf16/f16 as 16-bit patterns). */
  data: ArrayBufferView;
}

async function writeFully(fh: FileHandle, bytes: Uint8Array): Promise<void> {
  for (let done = 0; done < bytes.length; ) {
    const { bytesWritten } = await fh.write(bytes, done, Math.min(1 << 30, bytes.length - done));
    done += bytesWritten;
  }
}

/**
 * Writes a safetensors file. The bytes go to a temporary file in the same folder
 * that is synced and then renamed over `path`, so a crash leaves either the old file
 * or the new one, never half of one.
 */
export async function writeSafetensors(
  path: string,
  tensors: Record<string, TensorToWrite>,
  metadata?: Record<string, string>,
): Promise<void> {
  const header: Record<string, unknown> = {};
  if (metadata) {
    for (const [k, v] of Object.entries(metadata))
      if (typeof v !== "string") throw new WeightError(`${path}: metadata ${q(k)} must be a string`);
    header.__metadata__ = metadata;
  }
  // Widest dtypes first keeps every tensor aligned to its element size, as the
  // reference writer does, which helps readers that map the file.
  const entries = Object.entries(tensors).sort(
    ([an, a], [bn, b]) =>
      (DTYPE_BYTES[b.dtype] ?? 0) - (DTYPE_BYTES[a.dtype] ?? 0) || (an < bn ? -1 : an > bn ? 1 : 0),
  );
  let offset = 0;
  const chunks: Uint8Array[] = [];
  for (const [name, t] of entries) {
    if (name === "__metadata__") throw new WeightError(`${path}: '__metadata__' cannot name a tensor`);
    if (!isSafetensorsDType(t.dtype))
      throw new WeightError(`${path}: tensor ${q(name)}: unknown dtype ${q(String(t.dtype))}`);
    if (!Array.isArray(t.shape) || !t.shape.every((d) => Number.isSafeInteger(d) && d >= 0))
      throw new WeightError(`${path}: tensor ${q(name)}: shape must be non-negative integers`);
    const numel = numelChecked(t.shape);
    const need = numel === null ? Number.NaN : numel * DTYPE_BYTES[t.dtype];
    if (t.data.byteLength !== need)
      throw new WeightError(
        `${path}: tensor ${q(name)}: data has ${t.data.byteLength} bytes but ${t.dtype} [${t.shape.join(", ")}] needs ${need}`,
      );
    header[name] = { dtype: t.dtype, shape: [...t.shape], data_offsets: [offset, offset + need] };
    offset += need;
    chunks.push(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
  }
  let json = JSON.stringify(header);
  json += " ".repeat((8 - ((8 + Buffer.byteLength(json)) % 8)) % 8);
  const headerBytes = Buffer.from(json, "utf8");
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(headerBytes.length));

  const tmp = `${path}.${process.pid}.${randomUUID().slice(0, 8)}.tmp`;
  let fh: FileHandle | undefined;
  try {
    fh = await open(tmp, "wx");
    await writeFully(fh, len);
    await writeFully(fh, headerBytes);
    for (const c of chunks) await writeFully(fh, c);
    await fh.sync();
    await fh.close();
    fh = undefined;
    await rename(tmp, path);
  } catch (e) {
    await fh?.close().catch(() => {});
    await unlink(tmp).catch(() => {});
    if (e instanceof WeightError) throw e;
    throw new WeightError(`${path}: writing failed: ${fsMessage(e)}`, { cause: e });
  }
}
