// Tensor: a handle to device memory with a shape and dtype. Ops are asynchronous
// on every device (a CPU "stream" and a CUDA stream); reading values back with
// toTypedArray()/toFloat32Array() is the point that waits, without blocking the
// event loop.
import { type NativeTensorHandle, native } from "./binding.js";
import { Device, type DeviceLike } from "./device.js";
import { type DType, decodeToF32, dtypeSize, encode, isDType, type TypedArrayFor } from "./dtype.js";
import { callNative, OpError, translateError } from "./errors.js";
import { track, untrack } from "./scope.js";

export type Shape = readonly number[];

export interface TensorOptions {
  dtype?: DType;
  device?: DeviceLike;
}

export function numel(shape: Shape): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

function checkShape(op: string, shape: Shape): number[] {
  if (!Array.isArray(shape)) throw new OpError(`op '${op}': argument 'shape' must be an array`, op, "shape");
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0)
      throw new OpError(
        `op '${op}': argument 'shape' must hold non-negative integers, got [${shape.join(", ")}]`,
        op,
        "shape",
      );
  }
  return [...shape];
}

export class Tensor {
  #h: NativeTensorHandle;

  /** Wraps a native handle; used by ops. */
  constructor(handle: NativeTensorHandle) {
    this.#h = handle;
    track(this, () => `Tensor(${this.#h.dtype}, [${this.#h.shape.join(", ")}], ${this.#h.device})`);
  }

  /** A tensor holding `data` (numbers are converted to `dtype`, default f32). */
  static from(data: ArrayLike<number>, shape: Shape, opts: TensorOptions = {}): Tensor {
    const dtype = opts.dtype ?? "f32";
    if (!isDType(dtype))
      throw new OpError(`op 'from': argument 'dtype' '${dtype}' is not a dtype`, "from", "dtype");
    const s = checkShape("from", shape);
    if (data.length !== numel(s))
      throw new OpError(
        `op 'from': argument 'data' has ${data.length} values but shape [${s.join(", ")}] needs ${numel(s)}`,
        "from",
        "data",
      );
    const device = Device.parse(opts.device ?? "cpu");
    const bytes = encode(data, dtype);
    return new Tensor(callNative(() => native.fromBuffer(device.name, dtype, s, bytes)));
  }

  /** A tensor from raw bytes already in `dtype`'s layout (bf16/f16 as 16-bit patterns). */
  static fromBytes(bytes: ArrayBufferView, shape: Shape, opts: TensorOptions = {}): Tensor {
    const dtype = opts.dtype ?? "f32";
    const device = Device.parse(opts.device ?? "cpu");
    const s = checkShape("fromBytes", shape);
    return new Tensor(callNative(() => native.fromBuffer(device.name, dtype, s, bytes)));
  }

  /** Uninitialised memory: fill it before reading. */
  static empty(shape: Shape, opts: TensorOptions = {}): Tensor {
    const dtype = opts.dtype ?? "f32";
    const device = Device.parse(opts.device ?? "cpu");
    const s = checkShape("empty", shape);
    return new Tensor(callNative(() => native.empty(device.name, dtype, s)));
  }

  /** The native handle, checked to be live; `op`/`arg` name the caller in the error. */
  handle(op = "tensor", arg = "tensor"): NativeTensorHandle {
    if (this.#h.disposed)
      throw new OpError(`op '${op}': argument '${arg}' was disposed; it can no longer be used`, op, arg);
    return this.#h;
  }

  get shape(): number[] {
    return this.#h.shape;
  }
  get strides(): number[] {
    return this.#h.strides;
  }
  get dtype(): DType {
    return this.#h.dtype as DType;
  }
  get device(): Device {
    return Device.parse(this.#h.device);
  }
  get disposed(): boolean {
    return this.#h.disposed;
  }
  get isContiguous(): boolean {
    return this.#h.contiguous;
  }
  get ndim(): number {
    return this.#h.shape.length;
  }
  get size(): number {
    return numel(this.#h.shape);
  }
  get nbytes(): number {
    return this.size * dtypeSize(this.dtype);
  }

  /** Frees the memory (when no pending op still uses it). Safe to call twice. */
  dispose(): void {
    if (this.#h.disposed) return;
    this.#h.dispose();
    untrack(this);
  }

  /** Waits for pending work and copies the values out, in the dtype's natural typed array. */
  async toTypedArray(): Promise<TypedArrayFor<DType>> {
    const buf = await this.readBytes();
    switch (this.dtype) {
      case "f32":
        return new Float32Array(buf);
      case "i32":
        return new Int32Array(buf);
      case "u8":
        return new Uint8Array(buf);
      default:
        return new Uint16Array(buf);
    }
  }

  /** Waits for pending work and returns the values as float32, whatever the dtype. */
  async toFloat32Array(): Promise<Float32Array> {
    return decodeToF32(await this.readBytes(), this.dtype);
  }

  private async readBytes(): Promise<ArrayBuffer> {
    const h = this.isContiguous ? this.handle("read") : null;
    if (h) return callNativeAsync(() => h.read());
    const c = this.contiguous();
    try {
      return await callNativeAsync(() => c.handle("read").read());
    } finally {
      c.dispose();
    }
  }

  /** A view with a new shape over the same memory (the tensor must be contiguous). -1 infers one dim. */
  reshape(shape: Shape): Tensor {
    const h = this.handle("reshape");
    const s = [...shape];
    const inferred = s.indexOf(-1);
    if (inferred >= 0) {
      const rest = numel(s.filter((_, i) => i !== inferred));
      s[inferred] = rest === 0 ? 0 : this.size / rest;
    }
    checkShape("reshape", s);
    if (numel(s) !== this.size)
      throw new OpError(
        `op 'reshape': argument 'shape' [${shape.join(", ")}] has ${numel(s)} elements but the tensor has ${this.size}`,
        "reshape",
        "shape",
      );
    if (!h.contiguous)
      throw new OpError(
        "op 'reshape': argument 'tensor' is not contiguous; call .contiguous() first",
        "reshape",
        "tensor",
      );
    const strides = new Array<number>(s.length);
    let acc = 1;
    for (let i = s.length - 1; i >= 0; i--) {
      strides[i] = acc;
      acc *= s[i] as number;
    }
    return new Tensor(callNative(() => native.view(h, s, strides, h.offset)));
  }

  /** A strided view with dims reordered (no copy); most ops then need .contiguous(). */
  permuteView(dims: readonly number[]): Tensor {
    const h = this.handle("permute");
    const nd = this.ndim;
    const seen = new Set<number>();
    for (const d of dims) {
      if (!Number.isInteger(d) || d < 0 || d >= nd || seen.has(d))
        throw new OpError(
          `op 'permute': argument 'dims' [${dims.join(", ")}] must be a permutation of 0..${nd - 1}`,
          "permute",
          "dims",
        );
      seen.add(d);
    }
    if (dims.length !== nd)
      throw new OpError(`op 'permute': argument 'dims' must have ${nd} entries`, "permute", "dims");
    const shape = dims.map((d) => h.shape[d] as number);
    const strides = dims.map((d) => h.strides[d] as number);
    return new Tensor(callNative(() => native.view(h, shape, strides, h.offset)));
  }

  /** A view of `length` entries of `dim` starting at `start` (no copy). */
  narrow(dim: number, start: number, length: number): Tensor {
    const h = this.handle("narrow");
    const nd = this.ndim;
    const d = dim < 0 ? dim + nd : dim;
    if (!Number.isInteger(d) || d < 0 || d >= nd)
      throw new OpError(`op 'narrow': argument 'dim' ${dim} is out of range for ${nd} dims`, "narrow", "dim");
    const size = h.shape[d] as number;
    if (
      !Number.isInteger(start) ||
      !Number.isInteger(length) ||
      start < 0 ||
      length < 0 ||
      start + length > size
    )
      throw new OpError(
        `op 'narrow': range [${start}, ${start + length}) is outside dim ${d} of size ${size}`,
        "narrow",
        "start",
      );
    const shape = [...h.shape];
    shape[d] = length;
    return new Tensor(
      callNative(() => native.view(h, shape, h.strides, h.offset + start * (h.strides[d] as number))),
    );
  }

  /** This tensor if contiguous, else a contiguous copy. */
  contiguous(): Tensor {
    const h = this.handle("contiguous");
    if (h.contiguous) return new Tensor(callNative(() => native.view(h, h.shape, h.strides, h.offset)));
    return new Tensor(callNative(() => native.op("copy", [h], {}) as NativeTensorHandle));
  }

  /** A copy on another device (waits for this tensor's pending work). */
  async to(device: DeviceLike): Promise<Tensor> {
    const dev = Device.parse(device);
    const bytes = await this.readBytes();
    return new Tensor(
      callNative(() => native.fromBuffer(dev.name, this.dtype, this.shape, new Uint8Array(bytes))),
    );
  }

  toString(): string {
    return `Tensor(${this.dtype}, [${this.shape.join(", ")}], ${this.#h.device}${this.disposed ? ", disposed" : ""})`;
  }
}

async function callNativeAsync<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await callNative(fn);
  } catch (e) {
    throw translateError(e);
  }
}
