// Malformed checkpoints must end in a WeightError naming the file: never another
// exception type, never a hang, never a leaked tensor.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { liveTensorCount } from "@tessera/native";
import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import { parseSafetensorsHeader, SafetensorsFile, writeSafetensors } from "./safetensors.js";
import { WeightError } from "./store.js";

const dir = mkdtempSync(join(tmpdir(), "tessera-fuzz-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const path = join(dir, "case.safetensors");
const RUNS = 300;
const CASE_TIMEOUT_MS = 5000;

function withTimeout<T>(p: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const guard = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`hang: ${what} took over ${CASE_TIMEOUT_MS} ms`)),
      CASE_TIMEOUT_MS,
    );
  });
  return Promise.race([p, guard]).finally(() => clearTimeout(timer));
}

/** Opens `bytes` as a checkpoint and loads every tensor; "ok" or the WeightError it ended in. */
async function attempt(bytes: Uint8Array): Promise<"ok" | WeightError> {
  writeFileSync(path, bytes);
  const run = async () => {
    const f = await SafetensorsFile.open(path);
    try {
      for (const name of f.names()) (await f.load(name)).dispose();
    } finally {
      await f.close();
    }
  };
  try {
    await withTimeout(run(), `${bytes.length}-byte case`);
    return "ok";
  } catch (e) {
    if (!(e instanceof WeightError)) throw e;
    if (!e.message.includes(path)) throw new Error(`error does not name the file: ${e.message}`);
    return e;
  }
}

function withLength(header: Uint8Array, tail: Uint8Array, len?: bigint): Uint8Array {
  const out = new Uint8Array(8 + header.length + tail.length);
  new DataView(out.buffer).setBigUint64(0, len ?? BigInt(header.length), true);
  out.set(header, 8);
  out.set(tail, 8 + header.length);
  return out;
}

const utf8 = (s: string) => new TextEncoder().encode(s);
const dtypes = ["F32", "BF16", "F16", "F64", "F8_E4M3", "F8_E5M2", "I32", "I64", "U8", "BOOL", "U16", "C64"];
const dim = fc.oneof(
  fc.nat(6),
  fc.integer({ min: -3, max: 3 }),
  fc.double(),
  fc.constantFrom(2 ** 53, 2 ** 32, Number.MAX_VALUE),
  fc.string({ maxLength: 2 }),
  fc.constant(null),
);
const entry = fc.record(
  {
    dtype: fc.oneof(fc.constantFrom(...dtypes), fc.string({ maxLength: 6 })),
    shape: fc.oneof(fc.array(dim, { maxLength: 4 }), fc.jsonValue({ maxDepth: 1 })),
    data_offsets: fc.oneof(
      fc.array(fc.oneof(fc.nat(80), fc.integer(), fc.double()), { maxLength: 3 }),
      fc.jsonValue({ maxDepth: 1 }),
    ),
  },
  { requiredKeys: [] },
);
const header = fc.dictionary(fc.oneof(fc.string({ maxLength: 4 }), fc.constant("__metadata__")), entry, {
  maxKeys: 4,
});

async function validFile(): Promise<Uint8Array> {
  const p = join(dir, "base.safetensors");
  await writeSafetensors(
    p,
    {
      w: { dtype: "BF16", shape: [2, 3], data: new Uint16Array([1, 2, 3, 4, 5, 6]) },
      b: { dtype: "F32", shape: [3], data: new Float32Array([1, 2, 3]) },
      q: { dtype: "F8_E4M3", shape: [4], data: new Uint8Array([0, 1, 2, 0x7f]) },
      ids: { dtype: "I64", shape: [2], data: new BigInt64Array([1n, 2n]) },
      e: { dtype: "U8", shape: [0], data: new Uint8Array(0) },
    },
    { format: "pt" },
  );
  return new Uint8Array(readFileSync(p));
}

describe("malformed safetensors files", () => {
  it("the unmodified base file loads", async () => {
    expect(await attempt(await validFile())).toBe("ok");
  });

  it("random bytes", async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 200 }), async (b) => {
        await attempt(b);
      }),
      { numRuns: RUNS },
    );
  });

  it("random JSON headers with a correct length and random data", async () => {
    await fc.assert(
      fc.asyncProperty(fc.json({ maxDepth: 4 }), fc.uint8Array({ maxLength: 64 }), async (j, tail) => {
        const r = await attempt(withLength(utf8(j), tail));
        // Only an empty object with no data can be valid.
        if (r === "ok") expect(j.trim().startsWith("{")).toBe(true);
      }),
      { numRuns: RUNS },
    );
  });

  it("structured, nearly valid headers", async () => {
    await fc.assert(
      fc.asyncProperty(header, fc.nat(96), async (h, dataLen) => {
        await attempt(withLength(utf8(JSON.stringify(h)), new Uint8Array(dataLen).fill(0x3c)));
      }),
      { numRuns: RUNS * 2 },
    );
  });

  it("consistent headers with one offset or the data length nudged", async () => {
    const sizes: Record<string, number> = {
      F32: 4,
      BF16: 2,
      F16: 2,
      F64: 8,
      F8_E4M3: 1,
      I64: 8,
      U8: 1,
      BOOL: 1,
    };
    const tensor = fc.record({
      dtype: fc.constantFrom(...Object.keys(sizes)),
      shape: fc.array(fc.nat(3), { maxLength: 3 }),
    });
    await fc.assert(
      fc.asyncProperty(
        fc.array(tensor, { maxLength: 4 }),
        fc.nat(8),
        fc.integer({ min: -2, max: 2 }),
        fc.integer({ min: -2, max: 2 }),
        fc.uint8Array({ minLength: 256, maxLength: 256 }),
        async (ts, which, nudge, dataNudge, fill) => {
          const h: Record<string, unknown> = {};
          let off = 0;
          ts.forEach((t, i) => {
            const n = t.shape.reduce((a, b) => a * b, 1) * (sizes[t.dtype] as number);
            const begin = off + (i === which ? nudge : 0);
            h[`t${i}`] = { dtype: t.dtype, shape: t.shape, data_offsets: [begin, off + n] };
            off += n;
          });
          fc.pre(off + dataNudge >= 0 && off + dataNudge <= 256);
          const data = fill.subarray(0, off + dataNudge);
          const r = await attempt(withLength(utf8(JSON.stringify(h)), data));
          const clean = (which >= ts.length || nudge === 0) && dataNudge === 0;
          if (!clean) expect(r).toBeInstanceOf(WeightError);
          else if (ts.every((t) => t.dtype !== "I64")) expect(r).toBe("ok");
        },
      ),
      { numRuns: RUNS },
    );
  });

  it("mutations of a valid file", async () => {
    const base = await validFile();
    const mutation = fc.oneof(
      fc.record({ kind: fc.constant("set" as const), at: fc.nat(base.length - 1), v: fc.nat(255) }),
      fc.record({
        kind: fc.constant("del" as const),
        at: fc.nat(base.length - 1),
        n: fc.integer({ min: 1, max: 8 }),
      }),
      fc.record({
        kind: fc.constant("ins" as const),
        at: fc.nat(base.length),
        bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }),
      }),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(mutation, { minLength: 1, maxLength: 4 }), async (ms) => {
        let b = base;
        for (const m of ms) {
          const at = Math.min(m.at, b.length);
          if (m.kind === "set") {
            b = b.slice();
            if (at < b.length) b[at] = m.v;
          } else if (m.kind === "del") b = Uint8Array.from([...b.subarray(0, at), ...b.subarray(at + m.n)]);
          else b = Uint8Array.from([...b.subarray(0, at), ...m.bytes, ...b.subarray(at)]);
        }
        await attempt(b);
      }),
      { numRuns: RUNS },
    );
  });

  it("truncation at every byte boundary is an error", async () => {
    const base = await validFile();
    for (let len = 0; len < base.length; len++) {
      const r = await attempt(base.subarray(0, len));
      expect(r, `truncated to ${len} bytes`).toBeInstanceOf(WeightError);
    }
  });

  it("huge and wrong header lengths", async () => {
    const base = await validFile();
    const headerLen = Number(new DataView(base.buffer).getBigUint64(0, true));
    const body = base.subarray(8);
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
          fc.bigInt({ min: 0n, max: BigInt(body.length + 16) }),
        ),
        async (len) => {
          const r = await attempt(withLength(body, new Uint8Array(0), len));
          if (len !== BigInt(headerLen)) expect(r).toBeInstanceOf(WeightError);
          if (len > 100_000_000n) expect((r as WeightError).message).toMatch(/limit/);
        },
      ),
      { numRuns: RUNS },
    );
  });

  it("the header parser alone, on arbitrary strings", () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string(),
          fc.json(),
          fc.uint8Array().map((b) => new TextDecoder().decode(b)),
        ),
        fc.nat(64),
        (s, dataLen) => {
          try {
            parseSafetensorsHeader(utf8(s), "mem.safetensors", dataLen);
          } catch (e) {
            if (!(e instanceof WeightError) || !e.message.includes("mem.safetensors")) throw e;
          }
        },
      ),
      { numRuns: RUNS * 5 },
    );
  });

  it("left no tensors alive", () => {
    expect(liveTensorCount()).toBe(0);
  });
});
