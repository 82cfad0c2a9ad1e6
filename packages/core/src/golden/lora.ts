// LoRA merging against golden tensors from training/make_golden_lora.py: LoRA files in
// each naming (PEFT/diffusers, ComfyUI, Kohya, full deltas) made on the golden tiny
// transformer, and its float64 output with them merged at two strengths (and several at
// once). Here each case is merged through the weight store into the golden weights and
// the forward compared (‖out − ref‖ / ‖ref‖ ≤ 1e-4 in f32); removing the LoRAs must give
// back the loaded weights bit for bit. A plain module, like checks.ts.
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { liveTensorCount, type Tensor } from "@tessera/native";
import type { WanTransformerConfig } from "../models/wan/config.js";
import { WanTransformer } from "../models/wan/transformer.js";
import { TransformerLoras, wanLoraTarget } from "../pipelines/loras.js";
import { inspectWeights, loadWeights } from "../weights/load.js";
import { F32_BOUND, type GoldenResult, goldenDir, isData, relErr, releasedResult } from "./fixture.js";

export const LORA_FIXTURE = "wan_lora.safetensors";

/** Why the LoRA golden check cannot run here (its fixtures are absent), or null. */
export function loraGoldenMissing(dir = goldenDir()): string | null {
  for (const f of [LORA_FIXTURE, "wan_transformer.safetensors"])
    if (!existsSync(join(dir, f)))
      return `${join(dir, f)} is absent: run python3 training/make_golden_lora.py on a host with torch and peft (see training/README.md)`;
  return null;
}

interface Case {
  name: string;
  loras: { file: string; strength: number }[];
}

/** One result per case, then the exact removal and the leak check. */
export async function runLoraGoldenChecks(dir = goldenDir()): Promise<GoldenResult[]> {
  const basePath = join(dir, "wan_transformer.safetensors");
  const fixture = join(dir, LORA_FIXTURE);
  const inv = await inspectWeights(fixture);
  const meta = inv.metadata.get(inv.files[0] as string) ?? {};
  if (meta.format !== "tessera-golden/1")
    throw new Error(`${fixture}: format '${meta.format}', expected 'tessera-golden/1'`);
  const sha = createHash("sha256")
    .update(await readFile(basePath))
    .digest("hex");
  if (meta.base_sha256 !== sha)
    throw new Error(
      `${fixture} was made on another wan_transformer.safetensors (sha256 ${meta.base_sha256}, this one ${sha}); run training/make_golden_lora.py again`,
    );
  const cases = JSON.parse(meta.cases as string) as Case[];
  const baseMeta = (await inspectWeights(basePath)).metadata.get(basePath) ?? {};
  const config = JSON.parse(baseMeta.config as string) as WanTransformerConfig;

  const results: GoldenResult[] = [];
  const before = liveTensorCount();
  const weights = await loadWeights(basePath, { filter: (n) => !isData(n) });
  const data = await loadWeights(basePath, { filter: isData });
  const refs = await loadWeights(fixture);
  const loras = new TransformerLoras(weights, wanLoraTarget(config, "the golden tiny transformer"));
  try {
    const model = new WanTransformer(config, weights);
    const input = {
      latents: data.get("input.latents"),
      timesteps: data.get("input.timesteps"),
      context: data.get("input.context"),
    };
    const loaded = new Map<string, number[]>();
    for (const n of weights.names()) loaded.set(n, Array.from(await weights.get(n).toTypedArray()));
    for (const c of cases) {
      const name = `LoRA: ${c.name} (${c.loras.map((l) => `${l.file} at ${l.strength}`).join(", ")})`;
      await loras.apply(c.loras.map((l) => ({ path: join(dir, l.file), strength: l.strength })));
      const y: Tensor = model.forward(input);
      try {
        const error = relErr(
          await y.toFloat32Array(),
          await refs.get(`output.${c.name}.velocity`).toFloat32Array(),
        );
        results.push({
          name,
          error,
          bound: F32_BOUND,
          pass: error <= F32_BOUND,
          detail: `cpu f32 merge, ‖out − ref‖/‖ref‖ against the float64 reference (${meta.generator})`,
        });
      } finally {
        y.dispose();
      }
    }
    await loras.apply([]);
    let differing = 0;
    for (const [n, bits] of loaded) {
      const now = await weights.get(n).toTypedArray();
      if (now.some((v, i) => v !== bits[i])) differing++;
    }
    results.push({
      name: "LoRA: removing every LoRA gives back the loaded weights bit for bit",
      error: differing,
      bound: 0,
      pass: differing === 0,
      detail: `${differing} of ${loaded.size} tensors differ from the loaded ones`,
    });
  } finally {
    loras.dispose();
    weights.dispose();
    data.dispose();
    refs.dispose();
  }
  results.push(releasedResult("LoRA: releases every tensor", before));
  return results;
}
