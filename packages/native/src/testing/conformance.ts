// Backend conformance in the manner of llama.cpp's test-backend-ops: each case
// builds its inputs from a seeded host RNG, runs once on the CPU reference (f32,
// from the same inputs rounded to the dtype under test) and once on the backend
// under test, with fresh outputs poisoned (NaN) so an unwritten element fails.
import { native } from "../binding.js";
import { Device } from "../device.js";
import { type DType, decodeToF32, encode, isFloat } from "../dtype.js";
import { Tensor } from "../tensor.js";
import { relError, tolerance } from "./compare.js";
import { HostRng } from "./random.js";

export interface CaseTools {
  readonly device: Device;
  /** dtype of float tensors in this run. */
  readonly dtype: DType;
  readonly rng: HostRng;
  /** Random normal tensor (values rounded to the run's float dtype). */
  randn(shape: readonly number[], scale?: number): Tensor;
  /** Random uniform tensor in [lo, hi). */
  uniform(shape: readonly number[], lo: number, hi: number, dtype?: DType): Tensor;
  /** Random integers in [lo, hi) as i32. */
  ints(shape: readonly number[], lo: number, hi: number): Tensor;
  /** A tensor of given values (rounded to the run's dtype unless dtype is given). */
  tensor(values: ArrayLike<number>, shape: readonly number[], dtype?: DType): Tensor;
}

export interface ConformanceCase {
  /** "family/what", unique. */
  name: string;
  /** Float dtypes the case runs in on accelerators (the CPU always runs f32). */
  dtypes: readonly DType[];
  /** Builds inputs with `t` and returns the op's output. */
  run(t: CaseTools): Tensor | Promise<Tensor>;
  /** Overrides the dtype-based tolerance. */
  tolerance?: Partial<Record<DType, number>>;
  /** Output is exact (ints, copies): compare bit for bit after decoding. */
  exact?: boolean;
  /** Large case, skipped under compute-sanitizer where every kernel runs far slower. */
  heavy?: boolean;
}

export interface CaseResult {
  name: string;
  device: string;
  dtype: DType;
  seed: number;
  pass: boolean;
  error: number;
  tolerance: number;
  message?: string;
  ms: number;
}

function tools(device: Device, dtype: DType, seed: number, created: Tensor[]): CaseTools {
  const rng = new HostRng(seed);
  const make = (values: ArrayLike<number>, shape: readonly number[], dt: DType): Tensor => {
    const t = Tensor.fromBytes(encode(values, dt), shape, { dtype: dt, device });
    created.push(t);
    return t;
  };
  const size = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);
  return {
    device,
    dtype,
    rng,
    randn: (shape, scale = 1) => make(rng.normals(size(shape), scale), shape, dtype),
    uniform: (shape, lo, hi, dt) => {
      const n = size(shape);
      const v = new Float32Array(n);
      for (let i = 0; i < n; i++) v[i] = lo + (hi - lo) * rng.uniform();
      return make(v, shape, dt ?? dtype);
    },
    ints: (shape, lo, hi) => make(rng.ints(size(shape), lo, hi), shape, "i32"),
    tensor: (values, shape, dt) => make(values, shape, dt ?? dtype),
  };
}

async function runOnTarget(
  c: ConformanceCase,
  device: Device,
  dtype: DType,
  seed: number,
): Promise<Float32Array> {
  const created: Tensor[] = [];
  try {
    const out = await c.run(tools(device, dtype, seed, created));
    const values = await out.toFloat32Array();
    out.dispose();
    return values;
  } finally {
    for (const x of created) x.dispose();
  }
}

/** Runs one case on `device` in `dtype` against the CPU f32 reference. */
export async function runCase(
  c: ConformanceCase,
  device: Device,
  dtype: DType,
  seed: number,
): Promise<CaseResult> {
  const start = performance.now();
  native.setPoison(true);
  try {
    // Draw inputs in the tested dtype, then give the reference the same (rounded) values in f32.
    const ref = await runReference(c, dtype, seed);
    const got = await runOnTarget(c, device, dtype, seed);
    const err = c.exact ? (bitsEqual(got, ref) ? 0 : Number.POSITIVE_INFINITY) : relError(got, ref);
    const tol = c.exact ? 0 : (c.tolerance?.[dtype] ?? tolerance(dtype));
    const pass = err <= tol;
    return {
      name: c.name,
      device: device.name,
      dtype,
      seed,
      pass,
      error: err,
      tolerance: tol,
      ms: performance.now() - start,
      ...(pass ? {} : { message: `relative error ${err.toExponential(3)} > ${tol} (seed ${seed})` }),
    };
  } catch (e) {
    return {
      name: c.name,
      device: device.name,
      dtype,
      seed,
      pass: false,
      error: Number.POSITIVE_INFINITY,
      tolerance: 0,
      message: `${(e as Error).name}: ${(e as Error).message} (seed ${seed})`,
      ms: performance.now() - start,
    };
  } finally {
    native.setPoison(false);
  }
}

// The CPU reference: same seed, inputs quantised to `dtype` then widened to f32.
async function runReference(c: ConformanceCase, dtype: DType, seed: number): Promise<Float32Array> {
  const created: Tensor[] = [];
  const rng = new HostRng(seed);
  const cpu = Device.cpu;
  const q = (v: Float32Array, dt: DType): Float32Array => {
    if (dt === "f32" || !isFloat(dt)) return v;
    const bytes = encode(v, dt) as Uint16Array;
    return decodeToF32(
      bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer,
      dt,
    );
  };
  const make = (values: ArrayLike<number>, shape: readonly number[], dt: DType): Tensor => {
    const t = Tensor.fromBytes(encode(values, dt), shape, { dtype: dt, device: cpu });
    created.push(t);
    return t;
  };
  const size = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);
  const t: CaseTools = {
    device: cpu,
    dtype: "f32",
    rng,
    randn: (shape, scale = 1) => make(q(rng.normals(size(shape), scale), dtype), shape, "f32"),
    uniform: (shape, lo, hi, dt) => {
      const n = size(shape);
      const v = new Float32Array(n);
      for (let i = 0; i < n; i++) v[i] = lo + (hi - lo) * rng.uniform();
      if (dt && !isFloat(dt)) return make(v, shape, dt);
      return make(q(v, dt ?? dtype), shape, "f32");
    },
    ints: (shape, lo, hi) => make(rng.ints(size(shape), lo, hi), shape, "i32"),
    tensor: (values, shape, dt) => {
      if (dt && !isFloat(dt)) return make(values, shape, dt);
      return make(q(Float32Array.from(values), dt ?? dtype), shape, "f32");
    },
  };
  try {
    const out = await c.run(t);
    const v = await out.toFloat32Array();
    out.dispose();
    return v;
  } finally {
    for (const x of created) x.dispose();
  }
}

function bitsEqual(a: Float32Array, b: Float32Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const x = a[i] as number;
    const y = b[i] as number;
    if (x !== y && !(Number.isNaN(x) && Number.isNaN(y))) return false;
  }
  return true;
}
