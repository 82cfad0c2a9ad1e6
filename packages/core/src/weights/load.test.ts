import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { bf16ToF32, f32ToBf16, liveTensorCount } from "@tessera/native";
import { afterAll, describe, expect, it } from "vitest";
import { inspectWeights, loadWeights } from "./load.js";
import { type TensorToWrite, writeSafetensors } from "./safetensors.js";
import { WeightError, type WeightStore } from "./store.js";

const root = mkdtempSync(join(tmpdir(), "tessera-load-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const folder = () => {
  const d = join(root, `d${n++}`);
  mkdirSync(d);
  return d;
};

const f32 = (...v: number[]): TensorToWrite => ({
  dtype: "F32",
  shape: [v.length],
  data: Float32Array.from(v),
});
const values = async (s: WeightStore, name: string) => Array.from(await s.get(name).toFloat32Array());

async function rejects(p: Promise<unknown>, re: RegExp): Promise<WeightError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(WeightError);
    expect((e as Error).message).toMatch(re);
    return e as WeightError;
  }
  throw new Error("expected a WeightError");
}

/** Two shards and their index in `d`. */
async function sharded(d: string, weightMap?: Record<string, string>) {
  await writeSafetensors(join(d, "model-00001-of-00002.safetensors"), { a: f32(1, 2), b: f32(3) });
  await writeSafetensors(join(d, "model-00002-of-00002.safetensors"), { c: f32(4, 5, 6) });
  const index = join(d, "model.safetensors.index.json");
  const wm = weightMap ?? {
    a: "model-00001-of-00002.safetensors",
    b: "model-00001-of-00002.safetensors",
    c: "model-00002-of-00002.safetensors",
  };
  writeFileSync(index, JSON.stringify({ metadata: { total_size: 24 }, weight_map: wm }));
  return index;
}

describe("loadWeights sources", () => {
  it("a single file, to the requested dtype, reporting progress", async () => {
    const d = folder();
    const p = join(d, "m.safetensors");
    await writeSafetensors(p, {
      w: f32(1.1, 2),
      i: { dtype: "I32", shape: [1], data: Int32Array.from([7]) },
    });
    const seen: string[] = [];
    const s = await loadWeights(p, {
      dtype: "bf16",
      onProgress: (x) => seen.push(`${x.name} ${x.loaded}/${x.total}`),
    });
    expect(s.source).toBe(p);
    expect(s.get("w").dtype).toBe("bf16");
    expect(await values(s, "w")).toEqual([bf16ToF32(f32ToBf16(1.1)), 2]);
    // Integer tensors are not cast to the float run dtype.
    expect(s.get("i").dtype).toBe("i32");
    // File order: the writer puts equal-width tensors in name order.
    expect(seen).toEqual(["i 1/2", "w 2/2"]);
    s.dispose();
  });

  it("a list of shards, an index, and folders holding either", async () => {
    const d = folder();
    const index = await sharded(d);
    const shards = [join(d, "model-00001-of-00002.safetensors"), join(d, "model-00002-of-00002.safetensors")];
    for (const src of [shards, index, d]) {
      const s = await loadWeights(src);
      expect(s.names().sort()).toEqual(["a", "b", "c"]);
      expect(await values(s, "c")).toEqual([4, 5, 6]);
      s.dispose();
    }
    // Without the index, a complete set of numbered shards is still one checkpoint.
    rmSync(index);
    const s = await loadWeights(d);
    expect(s.names().sort()).toEqual(["a", "b", "c"]);
    s.dispose();
    const one = folder();
    await writeSafetensors(join(one, "diffusion_pytorch_model.safetensors"), { x: f32(1) });
    const t = await loadWeights(one);
    expect(t.source).toBe(join(one, "diffusion_pytorch_model.safetensors"));
    t.dispose();
  });

  it("rejects inconsistent indexes, naming the index and the shard or tensor", async () => {
    const s1 = "model-00001-of-00002.safetensors";
    const s2 = "model-00002-of-00002.safetensors";
    await rejects(
      loadWeights(await sharded(folder(), { a: s1, b: s1, c: "gone.safetensors" })),
      /index names shard "gone.safetensors", which does not exist/,
    );
    await rejects(
      loadWeights(await sharded(folder(), { a: s2, b: s1, c: s2 })),
      /puts tensor "a" in model-00002-of-00002.safetensors, but .*00001.* holds it/,
    );
    await rejects(
      loadWeights(await sharded(folder(), { a: s1, c: s2 })),
      /holds tensor "b", which the index does not list/,
    );
    await rejects(
      loadWeights(await sharded(folder(), { a: s1, b: s1, c: s2, z: s2 })),
      /puts tensor "z" in .*00002.*, which does not hold it/,
    );
    await rejects(
      loadWeights(await sharded(folder(), { a: s1, b: s1, c: `../${s2}` })),
      /outside the index's folder/,
    );
    const d = folder();
    writeFileSync(
      join(d, "model.safetensors.index.json"),
      '{"weight_map": {"a": "x.safetensors", "a": "y.safetensors"}}',
    );
    await rejects(loadWeights(d), /model.safetensors.index.json: .*duplicate key "a"/);
    writeFileSync(join(d, "model.safetensors.index.json"), '{"weights": {}}');
    await rejects(loadWeights(d), /needs a "weight_map" object/);
  });

  it("rejects ambiguous or empty folders and missing paths", async () => {
    const d = folder();
    await rejects(loadWeights(d), /no .safetensors checkpoint in the folder/);
    writeFileSync(join(d, "pytorch_model.bin"), "x");
    await rejects(loadWeights(d), /found pytorch_model.bin: only safetensors/);
    await writeSafetensors(join(d, "a.safetensors"), { x: f32(1) });
    await writeSafetensors(join(d, "b.safetensors"), { x: f32(1) });
    await rejects(loadWeights(d), /2 .safetensors files that are not one sharded checkpoint/);
    await rejects(loadWeights(join(d, "missing.safetensors")), /missing.safetensors: no such file or folder/);
    await rejects(
      loadWeights([join(d, "a.safetensors"), join(d, "b.safetensors")]),
      /tensor "x" is in both .*a.safetensors and .*b.safetensors/,
    );
    await rejects(loadWeights([]), /non-empty list/);
  });
});

describe("rename, filter and the store's checks", () => {
  it("renames, drops (without reading) and filters", async () => {
    const d = folder();
    const p = join(d, "m.safetensors");
    await writeSafetensors(p, { "model.a": f32(1), "model.b": f32(2), "other.c": f32(3) });
    const s = await loadWeights(p, {
      filter: (name, info) => info.dtype === "F32" && name !== "model.b",
      rename: (name) => (name.startsWith("model.") ? name.slice(6) : null),
    });
    expect(s.names()).toEqual(["a"]);
    s.dispose();
    await rejects(loadWeights(p, { rename: () => "same" }), /renamed to "same", which tensor .* already has/);
    await rejects(loadWeights(p, { rename: () => "" }), /rename must return a non-empty name or null/);
    await rejects(
      loadWeights(p, {
        rename: () => {
          throw new RangeError("boom");
        },
      }),
      /m.safetensors: tensor "model.a": rename\/filter failed: boom/,
    );
    await rejects(loadWeights(p, { dtype: "u8" }), /dtype must be f32, bf16 or f16/);
  });

  it("missing, extra and mis-shaped tensors are WeightErrors naming the checkpoint", async () => {
    const d = folder();
    const p = join(d, "m.safetensors");
    await writeSafetensors(p, {
      w: { dtype: "F32", shape: [2, 3], data: new Float32Array(6) },
      extra: f32(0),
    });
    const s = await loadWeights(p);
    expect(() => s.get("w", [3, 2])).toThrow(
      /m.safetensors: tensor 'w' has shape \[2, 3\], expected \[3, 2\]/,
    );
    expect(() => s.get("nope")).toThrow(/m.safetensors: missing tensor 'nope'/);
    expect(() =>
      s.checkExactly(
        new Map([
          ["w", [2, 3]],
          ["b", [3]],
        ]),
      ),
    ).toThrow(/missing 1 tensor\(s\): b/);
    expect(() => s.checkExactly(new Map([["w", [2, 3]]]))).toThrow(/1 unexpected tensor\(s\): extra/);
    expect(() =>
      s.checkExactly(
        new Map([
          ["w", [6]],
          ["extra", [1]],
        ]),
      ),
    ).toThrow(WeightError);
    s.checkExactly(
      new Map([
        ["w", [2, 3]],
        ["extra", [1]],
      ]),
    );
    s.dispose();
  });

  it("frees what it loaded when a later tensor fails", async () => {
    const d = folder();
    const p = join(d, "m.safetensors");
    // F32 sorts before U16 in the file, so "a" is on the device when "b" fails.
    await writeSafetensors(p, { a: f32(1), b: { dtype: "U16", shape: [1], data: Uint16Array.from([1]) } });
    const before = liveTensorCount();
    let peak = before;
    await rejects(
      loadWeights(p, { onProgress: () => (peak = Math.max(peak, liveTensorCount())) }),
      /m.safetensors: tensor "b": dtype U16 is not supported/,
    );
    expect(peak).toBe(before + 1);
    expect(liveTensorCount()).toBe(before);
  });
});

describe("fp8 checkpoints", () => {
  const fp8 = (shape: number[], codes: number[]): TensorToWrite => ({
    dtype: "F8_E4M3",
    shape,
    data: Uint8Array.from(codes),
  });
  // 0x38 = 1, 0x40 = 2, 0xb8 = -1, 0x44 = 3 in e4m3fn.
  const w = () => fp8([2, 2], [0x38, 0x40, 0xb8, 0x44]);

  it("dequantises with each scale convention and hides the companions", async () => {
    const d = folder();
    const p = join(d, "m.safetensors");
    await writeSafetensors(p, {
      scaled_fp8: { dtype: "F8_E4M3", shape: [0], data: new Uint8Array(0) },
      "blocks.0.q.weight": w(),
      "blocks.0.q.scale_weight": f32(0.5), // ComfyUI fp8 scaled
      "blocks.0.q.scale_input": f32(1),
      "blocks.0.q.bias": f32(1, 2),
      "blocks.0.k.weight": w(),
      "blocks.0.k.weight_scale": { dtype: "F32", shape: [2, 1], data: Float32Array.from([2, 10]) }, // per row
      "blocks.0.k.input_scale": f32(1),
      "blocks.0.v.weight": w(),
      "blocks.0.v.weight.scale_weight": { dtype: "BF16", shape: [], data: Uint16Array.from([f32ToBf16(4)]) },
      "blocks.0.o.weight": w(), // no scale: used as is
    });
    const inv = await inspectWeights(p);
    expect([...inv.tensors.keys()].sort()).toEqual(
      [
        "blocks.0.k.weight",
        "blocks.0.o.weight",
        "blocks.0.q.bias",
        "blocks.0.q.weight",
        "blocks.0.v.weight",
      ].sort(),
    );
    expect(inv.tensors.get("blocks.0.q.weight")?.scale).toBe("blocks.0.q.scale_weight");
    expect(inv.companions.has("scaled_fp8")).toBe(true);
    const s = await loadWeights(p, { dtype: "bf16" });
    expect(s.names().length).toBe(5);
    expect(s.get("blocks.0.q.weight").dtype).toBe("bf16");
    expect(await values(s, "blocks.0.q.weight")).toEqual([0.5, 1, -0.5, 1.5]);
    expect(await values(s, "blocks.0.k.weight")).toEqual([2, 4, -10, 30]);
    expect(await values(s, "blocks.0.v.weight")).toEqual([4, 8, -4, 12]);
    expect(await values(s, "blocks.0.o.weight")).toEqual([1, 2, -1, 3]);
    s.dispose();
  });

  it("rejects ambiguous, block-wise and non-fp8 quantisation", async () => {
    const d = folder();
    const amb = join(d, "amb.safetensors");
    await writeSafetensors(amb, { "l.weight": w(), "l.scale_weight": f32(1), "l.weight_scale": f32(2) });
    await rejects(loadWeights(amb), /amb.safetensors: fp8 tensor "l.weight" has more than one scale/);
    const block = join(d, "block.safetensors");
    await writeSafetensors(block, {
      "l.weight": w(),
      "l.weight_scale": { dtype: "F32", shape: [2, 2], data: new Float32Array(4) },
    });
    await rejects(loadWeights(block), /only per-tensor and per-row scales/);
    const other = join(d, "nvfp4.safetensors");
    await writeSafetensors(other, {
      "l.weight": w(),
      "l.weight_scale": f32(1),
      "l.comfy_quant": { dtype: "U8", shape: [18], data: new TextEncoder().encode('{"format":"nvfp4"}') },
    });
    await rejects(
      loadWeights(other),
      /nvfp4.safetensors: tensor "l.comfy_quant": quantisation format "nvfp4" is not supported/,
    );
    const meta = join(d, "meta.safetensors");
    await writeSafetensors(
      meta,
      { "l.weight": w() },
      { _quantization_metadata: '{"layers":{"l":{"format":"int8_tensorwise"}}}' },
    );
    await rejects(loadWeights(meta), /layer "l": quantisation format "int8_tensorwise"/);
  });

  it("leaks no tensors", () => {
    expect(liveTensorCount()).toBe(0);
  });
});
