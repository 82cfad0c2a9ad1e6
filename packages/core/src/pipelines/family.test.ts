import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { detectWanFamily, type WanFolderFacts, wanFamily } from "./family.js";
import { type RandomModelName, randomModelConfigs } from "./model-folder.js";

// The fields that matter, as the diffusers configs of the Wan-AI releases have them.
const t = (o: Record<string, unknown>) => ({
  num_attention_heads: 40,
  attention_head_dim: 128,
  in_channels: 16,
  out_channels: 16,
  image_dim: null,
  added_kv_proj_dim: null,
  pos_embed_seq_len: null,
  ...o,
});
const VAE21 = { z_dim: 16 };
const VAE22 = { z_dim: 48, is_residual: true };
const index = (o: Record<string, unknown> = {}) => ({
  _class_name: "WanPipeline",
  transformer_2: [null, null],
  boundary_ratio: null,
  ...o,
});

const CASES: [string, WanFolderFacts, string][] = [
  [
    "Wan2.1 T2V-1.3B",
    { modelIndex: index(), transformer: t({ num_attention_heads: 12 }), vae: VAE21 },
    "t2v",
  ],
  ["Wan2.1 T2V-14B", { modelIndex: index(), transformer: t({}), vae: VAE21 }, "t2v"],
  [
    "Wan2.1 I2V-14B",
    {
      modelIndex: index({ _class_name: "WanImageToVideoPipeline" }),
      transformer: t({ in_channels: 36, image_dim: 1280, added_kv_proj_dim: 5120 }),
      vae: VAE21,
      hasImageEncoder: true,
    },
    "i2v",
  ],
  [
    "Wan2.1 FLF2V-14B",
    {
      modelIndex: index({ _class_name: "WanImageToVideoPipeline" }),
      transformer: t({ in_channels: 36, image_dim: 1280, added_kv_proj_dim: 5120, pos_embed_seq_len: 514 }),
      vae: VAE21,
      hasImageEncoder: true,
    },
    "flf2v",
  ],
  [
    "Wan2.2 T2V-A14B",
    {
      modelIndex: index({ transformer_2: ["diffusers", "WanTransformer3DModel"], boundary_ratio: 0.875 }),
      transformer: t({}),
      vae: VAE21,
      hasTransformer2: true,
    },
    "t2v",
  ],
  [
    "Wan2.2 I2V-A14B",
    {
      modelIndex: index({
        _class_name: "WanImageToVideoPipeline",
        transformer_2: ["diffusers", "WanTransformer3DModel"],
        boundary_ratio: 0.9,
      }),
      transformer: t({ in_channels: 36 }),
      vae: VAE21,
    },
    "i2v",
  ],
  [
    "Wan2.2 TI2V-5B",
    {
      modelIndex: index({ expand_timesteps: true }),
      transformer: t({ num_attention_heads: 24, in_channels: 48, out_channels: 48 }),
      vae: VAE22,
    },
    "ti2v",
  ],
];

describe("wanFamily", () => {
  for (const [name, facts, task] of CASES)
    it(`names ${name}`, () => {
      const f = wanFamily(facts);
      expect(f?.name).toBe(name);
      expect(f?.task).toBe(task);
      expect(f?.experts).toBe(name.includes("A14B") ? 2 : 1);
      expect(f?.version).toBe(name.startsWith("Wan2.2") ? "2.2" : "2.1");
    });

  it("says the dim of a width no release has", () => {
    const tiny = {
      transformer: t({ num_attention_heads: 2, attention_head_dim: 24, in_channels: 4 }),
      vae: { z_dim: 4 },
    };
    expect(wanFamily(tiny)).toMatchObject({ family: "Wan2.1 T2V", name: "Wan2.1 T2V (dim 48)", size: null });
    const small22 = {
      transformer: t({ num_attention_heads: 2, attention_head_dim: 24, in_channels: 48 }),
      vae: VAE22,
    };
    expect(wanFamily(small22)?.name).toBe("Wan2.2 TI2V-5B geometry (dim 48)");
  });

  it("finds two experts from transformer_2/ alone, and image conditioning from image_encoder/ alone", () => {
    expect(wanFamily({ transformer: t({}), hasTransformer2: true })?.family).toBe("Wan2.2 T2V-A14B");
    expect(wanFamily({ transformer: t({ in_channels: 36 }), hasImageEncoder: true })?.family).toBe(
      "Wan2.1 I2V",
    );
  });

  it("names the geometries of create-model's configs", () => {
    const want: Partial<Record<RandomModelName, string>> = {
      tiny: "Wan2.1 T2V (dim 48)",
      "wan2.1-1.3b": "Wan2.1 T2V-1.3B",
      "wan2.1-t2v-14b": "Wan2.1 T2V-14B",
      "wan2.2-t2v-a14b": "Wan2.2 T2V-A14B",
      "wan2.2-i2v-a14b": "Wan2.2 I2V-A14B",
    };
    for (const [name, family] of Object.entries(want)) {
      const c = randomModelConfigs(name as RandomModelName);
      const facts = {
        transformer: { ...c.transformer },
        vae: { ...c.vae },
        ...(c.transformer2 ? { hasTransformer2: true } : {}),
      };
      expect(wanFamily(facts)?.name, name).toBe(family);
    }
  });

  it("gives null for what is not a Wan transformer", () => {
    expect(wanFamily({})).toBeNull();
    expect(wanFamily({ transformer: t({ in_channels: 7 }), vae: VAE21 })).toBeNull();
  });
});

describe("detectWanFamily", () => {
  it("reads a folder's configs", async () => {
    const dir = await mkdtemp(join(tmpdir(), "tessera-family-"));
    try {
      await mkdir(join(dir, "transformer"));
      await mkdir(join(dir, "transformer_2"));
      await mkdir(join(dir, "vae"));
      await writeFile(join(dir, "model_index.json"), JSON.stringify(index({ boundary_ratio: 0.875 })));
      await writeFile(join(dir, "transformer", "config.json"), JSON.stringify(t({})));
      await writeFile(join(dir, "transformer_2", "config.json"), JSON.stringify(t({})));
      await writeFile(join(dir, "vae", "config.json"), JSON.stringify(VAE21));
      expect((await detectWanFamily(dir))?.name).toBe("Wan2.2 T2V-A14B");
      await writeFile(join(dir, "transformer", "config.json"), "{ not json");
      expect(await detectWanFamily(dir)).toBeNull();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
