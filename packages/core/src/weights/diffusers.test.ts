import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { liveTensorCount } from "@tessera/native";
import { afterAll, describe, expect, it } from "vitest";
import { loadComponentWeights, openDiffusersFolder } from "./diffusers.js";
import { writeSafetensors } from "./safetensors.js";
import { WeightError } from "./store.js";

const root = mkdtempSync(join(tmpdir(), "tessera-diffusers-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;

const json = (p: string, v: unknown) => writeFileSync(p, typeof v === "string" ? v : JSON.stringify(v));
const f32 = (...v: number[]) => ({ dtype: "F32" as const, shape: [v.length], data: Float32Array.from(v) });

/** A folder shaped like Wan-AI/Wan2.1-T2V-1.3B-Diffusers, with tiny weights. */
async function pipelineFolder(): Promise<string> {
  const d = join(root, `p${n++}`);
  const sub = (c: string) => {
    mkdirSync(join(d, c), { recursive: true });
    return join(d, c);
  };
  sub("");
  json(join(d, "model_index.json"), {
    _class_name: "WanPipeline",
    _diffusers_version: "0.33.0.dev0",
    scheduler: ["diffusers", "UniPCMultistepScheduler"],
    text_encoder: ["transformers", "UMT5EncoderModel"],
    tokenizer: ["transformers", "T5TokenizerFast"],
    transformer: ["diffusers", "WanTransformer3DModel"],
    transformer_2: [null, null],
    vae: ["diffusers", "AutoencoderKLWan"],
    boundary_ratio: null,
  });
  json(join(sub("scheduler"), "scheduler_config.json"), {
    _class_name: "UniPCMultistepScheduler",
    flow_shift: 3,
  });
  json(join(sub("tokenizer"), "tokenizer_config.json"), { model_max_length: 512 });
  json(join(sub("text_encoder"), "config.json"), { d_model: 4096 });
  await writeSafetensors(join(d, "text_encoder", "model.safetensors"), { "shared.weight": f32(1) });
  json(join(sub("transformer"), "config.json"), { _class_name: "WanTransformer3DModel", num_layers: 30 });
  const t = join(d, "transformer");
  await writeSafetensors(join(t, "diffusion_pytorch_model-00001-of-00002.safetensors"), { a: f32(1) });
  await writeSafetensors(join(t, "diffusion_pytorch_model-00002-of-00002.safetensors"), { b: f32(2, 3) });
  json(join(t, "diffusion_pytorch_model.safetensors.index.json"), {
    metadata: { total_size: 12 },
    weight_map: {
      a: "diffusion_pytorch_model-00001-of-00002.safetensors",
      b: "diffusion_pytorch_model-00002-of-00002.safetensors",
    },
  });
  json(join(sub("vae"), "config.json"), { _class_name: "AutoencoderKLWan", z_dim: 16 });
  await writeSafetensors(join(d, "vae", "diffusion_pytorch_model.safetensors"), {
    "decoder.conv_in.bias": f32(0),
  });
  return d;
}

async function fails(p: Promise<unknown>, re: RegExp) {
  const e = await p.then(
    () => null,
    (x: unknown) => x,
  );
  expect(e).toBeInstanceOf(WeightError);
  expect((e as Error).message).toMatch(re);
}

describe("diffusers model folders", () => {
  it("reads model_index.json and each component's config", async () => {
    const d = await pipelineFolder();
    const f = await openDiffusersFolder(d);
    expect(f.pipelineClass).toBe("WanPipeline");
    expect(f.diffusersVersion).toBe("0.33.0.dev0");
    expect([...f.components.keys()].sort()).toEqual([
      "scheduler",
      "text_encoder",
      "tokenizer",
      "transformer",
      "vae",
    ]);
    expect(f.absent).toEqual(["transformer_2"]);
    const t = f.components.get("transformer");
    expect(t).toMatchObject({
      library: "diffusers",
      className: "WanTransformer3DModel",
      path: join(d, "transformer"),
    });
    expect(t?.config.num_layers).toBe(30);
    expect(f.components.get("scheduler")?.configFile).toBe(join(d, "scheduler", "scheduler_config.json"));
    expect(f.components.get("tokenizer")?.configFile).toBe(join(d, "tokenizer", "tokenizer_config.json"));
  });

  it("loads a component's weights, sharded or not", async () => {
    const d = await pipelineFolder();
    const t = await loadComponentWeights(d, "transformer", { dtype: "bf16" });
    expect(t.names().sort()).toEqual(["a", "b"]);
    expect(t.get("b").dtype).toBe("bf16");
    expect(t.source).toBe(join(d, "transformer", "diffusion_pytorch_model.safetensors.index.json"));
    t.dispose();
    const f = await openDiffusersFolder(d);
    const v = await loadComponentWeights(f, "vae");
    expect(v.names()).toEqual(["decoder.conv_in.bias"]);
    v.dispose();
    await fails(loadComponentWeights(f, "transformer_2"), /"transformer_2" is listed as absent/);
    await fails(loadComponentWeights(f, "unet"), /"unet" is not listed; components: /);
    await fails(loadComponentWeights(f, "scheduler"), /scheduler: no .safetensors checkpoint in the folder/);
  });

  it("names the missing or malformed file", async () => {
    await fails(openDiffusersFolder(join(root, "nowhere")), /nowhere: no such folder/);
    let d = await pipelineFolder();
    rmSync(join(d, "model_index.json"));
    await fails(openDiffusersFolder(d), /model_index.json: model_index.json not found/);
    d = await pipelineFolder();
    rmSync(join(d, "vae", "config.json"));
    await fails(openDiffusersFolder(d), /vae[\\/]config.json: config of component "vae" not found/);
    d = await pipelineFolder();
    rmSync(join(d, "text_encoder"), { recursive: true });
    await fails(
      openDiffusersFolder(d),
      /text_encoder: missing folder for component "text_encoder" \(transformers.UMT5EncoderModel\)/,
    );
    d = await pipelineFolder();
    json(join(d, "transformer", "config.json"), '{"num_layers": 30,}');
    await fails(
      openDiffusersFolder(d),
      /transformer[\\/]config.json: config of component "transformer" is not valid JSON/,
    );
    json(join(d, "transformer", "config.json"), "[1]");
    await fails(openDiffusersFolder(d), /transformer[\\/]config.json: must be a JSON object/);
    const m = join(d, "model_index.json");
    json(m, { _class_name: "WanPipeline", vae: ["diffusers"] });
    await fails(openDiffusersFolder(d), /component "vae" must be \[library, class\]/);
    json(m, { _class_name: "WanPipeline", vae: ["diffusers", 3] });
    await fails(openDiffusersFolder(d), /component "vae" must be \[library, class\] strings/);
    json(m, { vae: ["diffusers", "AutoencoderKLWan"] });
    await fails(openDiffusersFolder(d), /"_class_name" must name the pipeline class/);
    json(m, { _class_name: "WanPipeline", "../x": ["diffusers", "AutoencoderKLWan"] });
    await fails(openDiffusersFolder(d), /component name "..\/x" is not a folder name/);
    json(m, { _class_name: "WanPipeline" });
    await fails(openDiffusersFolder(d), /lists no components/);
  });

  it("leaks no tensors", () => {
    expect(liveTensorCount()).toBe(0);
  });
});
