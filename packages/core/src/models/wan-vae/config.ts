// Wan2.1 causal video VAE configuration, with the field names of the published
// diffusers config (vae/config.json of Wan-AI/Wan2.1-T2V-*-Diffusers) so that file
// loads as is, and the layer layout the config implies (shared by the parameter
// list and the model, so their tensor names cannot drift apart).

export interface WanVaeConfig {
  /** Channels of the encoder's first stage (and of the decoder's unless decoder_base_dim is set). */
  base_dim: number;
  /** diffusers' optional decoder width; null or absent means base_dim. */
  decoder_base_dim?: number | null;
  /** Latent channels. */
  z_dim: number;
  /** Per-stage channel multipliers; len(dim_mult) − 1 stages halve H and W. */
  dim_mult: number[];
  num_res_blocks: number;
  /** Always [] for this family (see validateWanVaeConfig). */
  attn_scales: number[];
  /** Per down stage: whether it also halves time (the decoder mirrors it reversed). Spelling as published. */
  temperal_downsample: boolean[];
  /** Training-only; inference ignores it. */
  dropout: number;
  /** Per-channel latent statistics: the encoder returns (mu − mean) / std. */
  latents_mean: number[];
  latents_std: number[];
  /** Pixel channels in and out (diffusers' optional fields; default 3). */
  in_channels?: number;
  out_channels?: number;
  /** Wan2.2-only options (residual up/down blocks, pixel patchify): rejected when set. */
  is_residual?: boolean;
  patch_size?: number | null;
}

/** Wan2.1's VAE (the one shared by T2V-1.3B, T2V-14B and I2V): config and latent statistics as published. */
export const WAN21_VAE: WanVaeConfig = {
  base_dim: 96,
  z_dim: 16,
  dim_mult: [1, 2, 4, 4],
  num_res_blocks: 2,
  attn_scales: [],
  temperal_downsample: [false, true, true],
  dropout: 0.0,
  latents_mean: [
    -0.7571, -0.7089, -0.9113, 0.1075, -0.1745, 0.9653, -0.1517, 1.5508, 0.4134, -0.0715, 0.5517, -0.3632,
    -0.1922, -0.9497, 0.2503, -0.2921,
  ],
  latents_std: [
    2.8184, 1.4541, 2.3275, 2.6558, 1.2196, 1.7708, 2.6052, 2.0743, 3.2687, 2.1526, 2.8652, 1.5579, 1.6382,
    1.1253, 2.8251, 1.916,
  ],
};

/** The same architecture at a few channels, for tests and the CPU smoke run. */
export const WAN_VAE_TINY: WanVaeConfig = {
  ...WAN21_VAE,
  base_dim: 8,
  z_dim: 4,
  latents_mean: [0.1, -0.2, 0.3, -0.4],
  latents_std: [1.5, 0.5, 2.0, 1.0],
};

/** Checks a config for values the model cannot run with; throws naming the field. */
export function validateWanVaeConfig(c: WanVaeConfig): void {
  const posInt = (k: string, v: unknown) => {
    if (!Number.isInteger(v) || (v as number) <= 0)
      throw new Error(`Wan VAE config: ${k} must be a positive integer, got ${JSON.stringify(v)}`);
  };
  posInt("base_dim", c.base_dim);
  if (c.decoder_base_dim != null) posInt("decoder_base_dim", c.decoder_base_dim);
  posInt("z_dim", c.z_dim);
  posInt("num_res_blocks", c.num_res_blocks);
  if (c.in_channels != null) posInt("in_channels", c.in_channels);
  if (c.out_channels != null) posInt("out_channels", c.out_channels);
  if (!Array.isArray(c.dim_mult) || c.dim_mult.length < 1)
    throw new Error(`Wan VAE config: dim_mult must be a non-empty array, got ${JSON.stringify(c.dim_mult)}`);
  for (const [i, m] of c.dim_mult.entries()) posInt(`dim_mult[${i}]`, m);
  const stages = c.dim_mult.length - 1;
  if (
    !Array.isArray(c.temperal_downsample) ||
    c.temperal_downsample.length !== stages ||
    c.temperal_downsample.some((t) => typeof t !== "boolean")
  )
    throw new Error(
      `Wan VAE config: temperal_downsample must hold ${stages} booleans (one per down stage), got ${JSON.stringify(c.temperal_downsample)}`,
    );
  // diffusers' encoder calls its down-block attention with a cache argument it does not
  // take, and its decoder has no slot for attention at all: only [] is runnable there.
  if (!Array.isArray(c.attn_scales) || c.attn_scales.length !== 0)
    throw new Error(
      `Wan VAE config: attn_scales must be [] (as in Wan2.1; diffusers' AutoencoderKLWan cannot run other values), got ${JSON.stringify(c.attn_scales)}`,
    );
  if (!(c.dropout >= 0 && c.dropout < 1))
    throw new Error(`Wan VAE config: dropout must be in [0, 1), got ${c.dropout}`);
  for (const k of ["latents_mean", "latents_std"] as const) {
    const v = c[k];
    if (!Array.isArray(v) || v.length !== c.z_dim || v.some((x) => !Number.isFinite(x)))
      throw new Error(
        `Wan VAE config: ${k} must hold z_dim = ${c.z_dim} finite numbers, got ${JSON.stringify(v)}`,
      );
  }
  if (c.latents_std.some((s) => s === 0)) throw new Error("Wan VAE config: latents_std must not contain 0");
  if (c.is_residual) throw new Error("Wan VAE config: is_residual (the Wan2.2 VAE) is not supported");
  if (c.patch_size != null && c.patch_size !== 1)
    throw new Error(`Wan VAE config: patch_size ${c.patch_size} (the Wan2.2 VAE) is not supported`);
  // The Wan2.1 decoder halves the channels in every upsampler and the next stage
  // takes that half as its input width.
  const dd = c.decoder_base_dim ?? c.base_dim;
  for (let i = 0; i < stages; i++) {
    const out = dd * (c.dim_mult[stages - i] as number);
    if (out % 2 !== 0)
      throw new Error(
        `Wan VAE config: decoder stage ${i} has ${out} channels, which its upsampler cannot halve`,
      );
  }
}

/** Spatial factor (pixels per latent along H and W). */
export function spatialFactor(c: WanVaeConfig): number {
  return 2 ** (c.dim_mult.length - 1);
}

/** Temporal factor: frames per latent frame after the first (the first latent frame holds one frame). */
export function temporalFactor(c: WanVaeConfig): number {
  return 2 ** c.temperal_downsample.filter(Boolean).length;
}

export type ResampleMode = "upsample2d" | "upsample3d" | "downsample2d" | "downsample3d";

export type VaeLayer =
  | { kind: "res"; name: string; cin: number; cout: number }
  /** `dim` in; `cout` out (dim for downsamplers, dim / 2 for Wan2.1 upsamplers). */
  | { kind: "resample"; name: string; mode: ResampleMode; dim: number; cout: number };

export interface VaeLayout {
  inChannels: number;
  outChannels: number;
  encoder: {
    convIn: { cin: number; cout: number };
    layers: VaeLayer[];
    /** Width of the mid block and the output head; conv_out gives 2·z_dim (mean and log-variance). */
    dim: number;
  };
  decoder: {
    convIn: { cin: number; cout: number };
    /** Width of the mid block. */
    midDim: number;
    layers: VaeLayer[];
    /** Width of the output head. */
    outDim: number;
  };
}

/** The layers of diffusers' AutoencoderKLWan (Wan2.1 form, is_residual false) under their module names. */
export function wanVaeLayout(c: WanVaeConfig): VaeLayout {
  validateWanVaeConfig(c);
  const inChannels = c.in_channels ?? 3;
  const outChannels = c.out_channels ?? 3;
  const stages = c.dim_mult.length;

  // Encoder: down_blocks is one flat list of residual and resample modules.
  const encDims = [1, ...c.dim_mult].map((u) => c.base_dim * u);
  const enc: VaeLayer[] = [];
  let n = 0;
  for (let i = 0; i < stages; i++) {
    let cin = encDims[i] as number;
    const cout = encDims[i + 1] as number;
    for (let r = 0; r < c.num_res_blocks; r++) {
      enc.push({ kind: "res", name: `encoder.down_blocks.${n++}`, cin, cout });
      cin = cout;
    }
    if (i !== stages - 1) {
      const mode = c.temperal_downsample[i] ? "downsample3d" : "downsample2d";
      enc.push({ kind: "resample", name: `encoder.down_blocks.${n++}`, mode, dim: cout, cout });
    }
  }
  const encDim = encDims[stages] as number;

  // Decoder: up_blocks.i = (num_res_blocks + 1) resnets, then an upsampler except in the last.
  const dd = c.decoder_base_dim ?? c.base_dim;
  const mults = [c.dim_mult[stages - 1] as number, ...[...c.dim_mult].reverse()];
  const decDims = mults.map((u) => dd * u);
  const temperalUpsample = [...c.temperal_downsample].reverse();
  const dec: VaeLayer[] = [];
  for (let i = 0; i < stages; i++) {
    // Wan2.1's upsamplers halve the channels, so every stage after the first starts at half width.
    let cin = i > 0 ? (decDims[i] as number) / 2 : (decDims[i] as number);
    const cout = decDims[i + 1] as number;
    for (let r = 0; r <= c.num_res_blocks; r++) {
      dec.push({ kind: "res", name: `decoder.up_blocks.${i}.resnets.${r}`, cin, cout });
      cin = cout;
    }
    if (i !== stages - 1) {
      const mode = temperalUpsample[i] ? "upsample3d" : "upsample2d";
      dec.push({
        kind: "resample",
        name: `decoder.up_blocks.${i}.upsamplers.0`,
        mode,
        dim: cout,
        cout: cout / 2,
      });
    }
  }

  return {
    inChannels,
    outChannels,
    encoder: { convIn: { cin: inChannels, cout: encDims[0] as number }, layers: enc, dim: encDim },
    decoder: {
      convIn: { cin: c.z_dim, cout: decDims[0] as number },
      midDim: decDims[0] as number,
      layers: dec,
      outDim: decDims[stages] as number,
    },
  };
}
