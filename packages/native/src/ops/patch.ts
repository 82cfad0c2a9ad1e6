// Patch embedding and its inverse for channels-last video
// (kernel semantics: native/include/tessera/kernels/patch.h).
import type { Tensor } from "../tensor.js";
import { runOp } from "./run.js";

export interface PatchEmbedOptions {
  /** [pt, ph, pw]; defaults to (and must equal) the weight's kernel size. */
  patch?: readonly [number, number, number];
}

export interface UnpatchifyOptions {
  /** [Fg, Hg, Wg]: the token grid (Fg·Hg·Wg = L), tokens in f-h-w order. */
  grid: readonly [number, number, number];
  /** [pt, ph, pw] */
  patch: readonly [number, number, number];
  /** Channels C of the output video. */
  channels: number;
}

/**
 * Wan's patch embedding: a Conv3d with kernel = stride = patch over x [B, F, H, W, C],
 * weight [D, C, pt, ph, pw] (PyTorch layout), bias [D] → tokens [B, L, D], L = F/pt · H/ph · W/pw
 * in f-h-w order. F, H and W must be multiples of the patch.
 */
export function patchEmbed3d(x: Tensor, weight: Tensor, bias?: Tensor, opts: PatchEmbedOptions = {}): Tensor {
  return runOp(
    "patch_embed3d",
    [
      ["x", x],
      ["weight", weight],
    ],
    { ...opts, bias },
  );
}

/**
 * Tokens x [B, L, pt·ph·pw·C], each token's values ordered (pt, ph, pw, C) with C fastest as
 * Wan's unpatchify reads them → video [B, Fg·pt, Hg·ph, Wg·pw, C].
 */
export function unpatchify3d(x: Tensor, opts: UnpatchifyOptions): Tensor {
  return runOp("unpatchify3d", [["x", x]], { ...opts });
}
