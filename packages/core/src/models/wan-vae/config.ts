// Wan causal video VAE configuration, with the field names of the published
// diffusers config (vae/config.json of Wan-AI/Wan2.1-T2V-*-Diffusers and
// Wan-AI/Wan2.2-TI2V-5B-Diffusers) so that file loads as is, and the layer layout the
// config implies (shared by the parameter list and the model, so their tensor names
// cannot drift apart). Two forms share it:
// - Wan2.1 (is_residual false): flat lists of residual blocks and resamplers, the
//   decoder's upsamplers halving the channels.
// - Wan2.2 (is_residual true, patch_size 2): the pixels are first folded 2×2 into
//   channels; each encoder stage / decoder stage is a block whose input also reaches
//   its output through a parameter-free shortcut (AvgDown3D: averages channel groups
//   of space-time blocks; DupUp3D: repeats channels into space-time blocks), and the
//   upsamplers keep the channel count.

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
  /** Encoder input / decoder output channels (diffusers' optional fields; default 3): after patchify, 3·patch². */
  in_channels?: number;
  out_channels?: number;
  /** Wan2.2: residual down/up blocks with AvgDown3D / DupUp3D shortcuts. */
  is_residual?: boolean;
  /** Wan2.2: pixels are folded patch×patch into channels before the encoder (and unfolded after the decoder). */
  patch_size?: number | null;
  /** diffusers' informational fields (the factors follow from the layers); ignored. */
  scale_factor_spatial?: number | null;
  scale_factor_temporal?: number | null;
  clip_output?: boolean;
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

/** Wan2.2's VAE (Wan-AI/Wan2.2-TI2V-5B-Diffusers vae/config.json): z48, patchify 2, residual blocks; 16×16×4. */
export const WAN22_VAE: WanVaeConfig = {
  base_dim: 160,
  decoder_base_dim: 256,
  z_dim: 48,
  dim_mult: [1, 2, 4, 4],
  num_res_blocks: 2,
  attn_scales: [],
  temperal_downsample: [false, true, true],
  dropout: 0.0,
  in_channels: 12,
  out_channels: 12,
  is_residual: true,
  patch_size: 2,
  latents_mean: [
    -0.2289, -0.0052, -0.1323, -0.2339, -0.2799, 0.0174, 0.1838, 0.1557, -0.1382, 0.0542, 0.2813, 0.0891,
    0.157, -0.0098, 0.0375, -0.1825, -0.2246, -0.1207, -0.0698, 0.5109, 0.2665, -0.2108, -0.2158, 0.2502,
    -0.2055, -0.0322, 0.1109, 0.1567, -0.0729, 0.0899, -0.2799, -0.123, -0.0313, -0.1649, 0.0117, 0.0723,
    -0.2839, -0.2083, -0.052, 0.3748, 0.0152, 0.1957, 0.1433, -0.2944, 0.3573, -0.0548, -0.1681, -0.0667,
  ],
  latents_std: [
    0.4765, 1.0364, 0.4514, 1.1677, 0.5313, 0.499, 0.4818, 0.5013, 0.8158, 1.0344, 0.5894, 1.0901, 0.6885,
    0.6165, 0.8454, 0.4978, 0.5759, 0.3523, 0.7135, 0.6804, 0.5833, 1.4146, 0.8986, 0.5659, 0.7069, 0.5338,
    0.4889, 0.4917, 0.4069, 0.4999, 0.6866, 0.4093, 0.5709, 0.6065, 0.6415, 0.4944, 0.5726, 1.2042, 0.5458,
    1.6887, 0.3971, 1.06, 0.3943, 0.5537, 0.5444, 0.4089, 0.7468, 0.7744,
  ],
};

/** Wan2.2's VAE at a few channels (encoder 8, decoder 12 wide, z 8), for tests and goldens. */
export const WAN22_VAE_TINY: WanVaeConfig = {
  ...WAN22_VAE,
  base_dim: 8,
  decoder_base_dim: 12,
  z_dim: 8,
  latents_mean: [0.1, -0.2, 0.3, -0.4, 0.05, 0.0, -0.1, 0.2],
  latents_std: [1.5, 0.5, 2.0, 1.0, 0.8, 1.2, 0.7, 1.1],
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
  if (c.is_residual != null && typeof c.is_residual !== "boolean")
    throw new Error(`Wan VAE config: is_residual must be a boolean, got ${JSON.stringify(c.is_residual)}`);
  if (c.patch_size != null) posInt("patch_size", c.patch_size);
  const p2 = patchSize(c) ** 2;
  for (const k of ["in_channels", "out_channels"] as const) {
    const v = c[k] ?? 3;
    if (v % p2 !== 0)
      throw new Error(
        `Wan VAE config: ${k} ${v} is not a multiple of patch_size² = ${p2} (it counts the pixel channels folded in)`,
      );
  }
  const dd = c.decoder_base_dim ?? c.base_dim;
  if (c.is_residual) {
    // The shortcuts regroup channels exactly: AvgDown3D averages groups of
    // cin·factor / cout values, DupUp3D repeats each channel cout·factor / cin times.
    for (const l of [
      ...wanVaeLayoutUnchecked(c).encoder.layers,
      ...wanVaeLayoutUnchecked(c).decoder.layers,
    ]) {
      const s = l.kind === "block" ? l.shortcut : null;
      if (!s) continue;
      const factor = s.ft * s.fs * s.fs;
      const ok = s.kind === "avgdown" ? (s.cin * factor) % s.cout === 0 : (s.cout * factor) % s.cin === 0;
      if (!ok)
        throw new Error(
          `Wan VAE config: ${l.name}'s ${s.kind === "avgdown" ? "AvgDown3D" : "DupUp3D"} shortcut cannot map ${s.cin} channels onto ${s.cout} (check base_dim, decoder_base_dim and dim_mult)`,
        );
    }
    return;
  }
  // The Wan2.1 decoder halves the channels in every upsampler and the next stage
  // takes that half as its input width.
  for (let i = 0; i < stages; i++) {
    const out = dd * (c.dim_mult[stages - i] as number);
    if (out % 2 !== 0)
      throw new Error(
        `Wan VAE config: decoder stage ${i} has ${out} channels, which its upsampler cannot halve`,
      );
  }
}

/** Pixels folded into channels along H and W before the encoder (1: none). */
export function patchSize(c: WanVaeConfig): number {
  return c.patch_size ?? 1;
}

/** Spatial factor (pixels per latent along H and W): the stages' halvings times the patchify. */
export function spatialFactor(c: WanVaeConfig): number {
  return 2 ** (c.dim_mult.length - 1) * patchSize(c);
}

/** Temporal factor: frames per latent frame after the first (the first latent frame holds one frame). */
export function temporalFactor(c: WanVaeConfig): number {
  return 2 ** c.temperal_downsample.filter(Boolean).length;
}

export type ResampleMode = "upsample2d" | "upsample3d" | "downsample2d" | "downsample3d";

/**
 * A Wan2.2 block's parameter-free shortcut from its input to its output: "avgdown"
 * (AvgDown3D) averages each group of cin·factor / cout values of a (ft, fs, fs) block
 * of the input; "dupup" (DupUp3D) repeats each input channel cout·factor / cin times
 * over such a block, dropping the ft − 1 frames before the clip's first.
 */
export interface VaeShortcut {
  kind: "avgdown" | "dupup";
  cin: number;
  cout: number;
  ft: number;
  fs: number;
}

export type VaeLayer =
  | { kind: "res"; name: string; cin: number; cout: number }
  /** `dim` in; `cout` out (dim for downsamplers and Wan2.2 upsamplers, dim / 2 for Wan2.1 upsamplers). */
  | { kind: "resample"; name: string; mode: ResampleMode; dim: number; cout: number }
  /** Wan2.2: `layers` in order, plus `shortcut` of the block's input (null: none). */
  | { kind: "block"; name: string; layers: VaeLayer[]; shortcut: VaeShortcut | null };

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

/** The layers of diffusers' AutoencoderKLWan under their module names. */
export function wanVaeLayout(c: WanVaeConfig): VaeLayout {
  validateWanVaeConfig(c);
  return wanVaeLayoutUnchecked(c);
}

function wanVaeLayoutUnchecked(c: WanVaeConfig): VaeLayout {
  if (c.is_residual) return residualLayout(c);
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

// Wan2.2 (is_residual): one block per stage, each with its shortcut.
function residualLayout(c: WanVaeConfig): VaeLayout {
  const stages = c.dim_mult.length;
  const encDims = [1, ...c.dim_mult].map((u) => c.base_dim * u);
  const enc: VaeLayer[] = [];
  for (let i = 0; i < stages; i++) {
    const name = `encoder.down_blocks.${i}`;
    const cin = encDims[i] as number;
    const cout = encDims[i + 1] as number;
    const down = i !== stages - 1;
    const temporal = down && (c.temperal_downsample[i] as boolean);
    const layers: VaeLayer[] = [];
    for (let r = 0; r < c.num_res_blocks; r++)
      layers.push({ kind: "res", name: `${name}.resnets.${r}`, cin: r === 0 ? cin : cout, cout });
    if (down)
      layers.push({
        kind: "resample",
        name: `${name}.downsampler`,
        mode: temporal ? "downsample3d" : "downsample2d",
        dim: cout,
        cout,
      });
    // The last stage's shortcut (factor 1, cin = cout) is the identity: x + block(x).
    const shortcut: VaeShortcut = { kind: "avgdown", cin, cout, ft: temporal ? 2 : 1, fs: down ? 2 : 1 };
    enc.push({ kind: "block", name, layers, shortcut });
  }

  const dd = c.decoder_base_dim ?? c.base_dim;
  const decDims = [c.dim_mult[stages - 1] as number, ...[...c.dim_mult].reverse()].map((u) => dd * u);
  const temperalUpsample = [...c.temperal_downsample].reverse();
  const dec: VaeLayer[] = [];
  for (let i = 0; i < stages; i++) {
    const name = `decoder.up_blocks.${i}`;
    const cin = decDims[i] as number;
    const cout = decDims[i + 1] as number;
    const up = i !== stages - 1;
    const temporal = up && (temperalUpsample[i] as boolean);
    const layers: VaeLayer[] = [];
    for (let r = 0; r <= c.num_res_blocks; r++)
      layers.push({ kind: "res", name: `${name}.resnets.${r}`, cin: r === 0 ? cin : cout, cout });
    if (up)
      layers.push({
        kind: "resample",
        name: `${name}.upsampler`,
        mode: temporal ? "upsample3d" : "upsample2d",
        dim: cout,
        cout,
      });
    const shortcut: VaeShortcut | null = up
      ? { kind: "dupup", cin, cout, ft: temporal ? 2 : 1, fs: 2 }
      : null;
    dec.push({ kind: "block", name, layers, shortcut });
  }
  return {
    inChannels: c.in_channels ?? 3,
    outChannels: c.out_channels ?? 3,
    encoder: {
      convIn: { cin: c.in_channels ?? 3, cout: encDims[0] as number },
      layers: enc,
      dim: encDims[stages] as number,
    },
    decoder: {
      convIn: { cin: c.z_dim, cout: decDims[0] as number },
      midDim: decDims[0] as number,
      layers: dec,
      outDim: decDims[stages] as number,
    },
  };
}
