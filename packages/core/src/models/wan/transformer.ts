// The Wan2.1 diffusion transformer over spacetime patches. Latents are
// channels-last [B, F, H, W, C]; tokens are [B, L, dim] in f-h-w order.
//
// The forward is written once (run(): embed, blocks, head). Split over ranks, a
// TokenSplit puts hooks at its three split points — shard the tokens after patch
// embedding, the self-attention, gather before unpatchify — and its attention waits
// on collectives. The block loop runs on synchronously until a hook returns a Promise
// and continues in its callback from there (maybe-async.ts), so forward() (no split:
// the op sequence a CUDA graph captures) and forwardSplit() are two short drivers of
// the same code rather than two loops.
import {
  add,
  attention,
  concat,
  type DType,
  gatedResidual,
  layerNorm,
  linear,
  patchEmbed3d,
  rmsNorm,
  scope,
  silu,
  slice,
  sub,
  type Tensor,
  timestepEmbedding,
  unpatchify3d,
} from "@tessera/native";
import type { WeightStore } from "../../weights/store.js";
import { andThen, type MaybePromise, syncResult } from "../maybe-async.js";
import type { BlockOffload } from "./block-offload.js";
import { innerDim, validateWanConfig, type WanTransformerConfig } from "./config.js";
import { embedImage, hasImageInput, imageAttention } from "./image.js";
import { wanTransformerParams } from "./params.js";
import type { StepCache } from "./step-cache.js";

export interface WanForwardInput {
  /** Noisy latent video [B, F, H, W, in_channels]. */
  latents: Tensor;
  /**
   * Diffusion timestep per sample, f32 [B] (0..1000); or per token frame, [B, F/pt]
   * (Wan2.2 TI2V's expand_timesteps: the tokens of a known first frame get 0). Every
   * token of a frame shares its frame's value, so the modulation is computed per frame
   * and applied with the frames folded into the batch (see perFrame below).
   */
  timesteps: Tensor;
  /** Text encoder states [B, Lt, text_dim]. */
  context: Tensor;
  /**
   * Image-to-video: channels appended to the latents' (mask and encoded conditioning
   * video, [1 or B, F, H, W, in_channels − latent channels]); batch 1 serves every branch.
   */
  condition?: Tensor;
  /** Image-to-video: CLIP image states [1 or B, Li, image_dim]. */
  image?: Tensor;
}

/** A token grid [F/pt, H/ph, W/pw]. */
export type TokenGrid = [number, number, number];

/**
 * Where a sequence-parallel plan cuts the forward (parallel/sequence.ts builds one
 * from a communicator): right after patch embedding each rank keeps a share of the
 * tokens, self-attention is the plan's (it sees every rank's keys and values), and
 * the head's output is gathered before unpatchify. Everything else in a block is per
 * token and runs on the rank's share alone. The single-device forward has no split.
 */
export interface TokenSplit {
  /** This rank's share of the embedded video `x` [B, L, dim] whose token grid is `grid`. */
  shard(x: Tensor, grid: TokenGrid): TokenShard;
}

export interface TokenShard {
  /** This rank's tokens [B, Ls, dim]. */
  x: Tensor;
  /** Self-attention with 3D RoPE of this rank's q, k, v [B, Ls, H, D] over the whole video. */
  attention(q: Tensor, k: Tensor, v: Tensor): MaybePromise<Tensor>;
  /** The whole sequence [B, L, C] from every rank's [B, Ls, C] (padding dropped). */
  gather(y: Tensor): Promise<Tensor>;
}

// What embed() gives the blocks and the head.
interface Embedded {
  /** The patch-embedded tokens this forward runs the blocks on, [B, Ls, dim]. */
  x: Tensor;
  temb: Tensor;
  tproj: Tensor;
  ctx: Tensor;
  /** Image-to-video: the image tokens [B, Li, dim] (null for text-to-video). */
  img: Tensor | null;
  grid: TokenGrid;
  b: number;
  /** Modulation rows per sample: 1, or the token frames with per-frame timesteps. */
  frames: number;
  /** Self-attention over the video tokens. */
  attention: (q: Tensor, k: Tensor, v: Tensor) => MaybePromise<Tensor>;
  /** With a token split: the whole head output from this rank's. */
  gather: ((y: Tensor) => Promise<Tensor>) | null;
}

export class WanTransformer {
  readonly dim: number;
  /**
   * Weight offload (block-offload.ts): when set, the blocks' weights wait in host
   * memory and each block is copied in as the forward reaches it, one block ahead.
   */
  offload: BlockOffload | null = null;

  constructor(
    readonly config: WanTransformerConfig,
    readonly weights: WeightStore,
  ) {
    validateWanConfig(config);
    this.dim = innerDim(config);
    const expected = new Map<string, readonly number[]>();
    for (const [name, spec] of wanTransformerParams(config)) expected.set(name, spec.shape);
    weights.checkExactly(expected);
  }

  private w(name: string): Tensor {
    return this.weights.get(name);
  }

  private lin(x: Tensor, name: string, epilogue?: "gelu_tanh" | "silu"): Tensor {
    return linear(x, this.w(`${name}.weight`), this.w(`${name}.bias`), epilogue ? { epilogue } : {});
  }

  /** Predicts the flow-matching velocity for `latents` at `timesteps` given `context`. */
  forward(input: WanForwardInput): Tensor {
    return syncResult(this.run(input, null), "WanTransformer.forward");
  }

  /**
   * forward() with the video tokens split over ranks at the points `split` names
   * (call it on every rank with the same input). Resolves to the whole velocity on
   * every rank, equal to forward()'s to rounding.
   */
  forwardSplit(input: WanForwardInput, split: TokenSplit): Promise<Tensor> {
    return Promise.resolve(this.run(input, split));
  }

  /**
   * forward() with First-Block-Cache step caching (see step-cache.ts): runs the first
   * block, lets `cache` compare its residual with the previous step's, and either
   * runs the remaining blocks (refreshing the cache) or adds their residual from the
   * last full step. `full` forces the whole model (the pipeline's first and last
   * steps). Resolves to what forward() returns; with every step full, the same values.
   * With `split`, as forwardSplit() (the cache then holds this rank's tokens).
   */
  async forwardStepCached(
    input: WanForwardInput,
    cache: StepCache,
    full = false,
    split: TokenSplit | null = null,
  ): Promise<Tensor> {
    const c = this.config;
    const grid = this.grid(input.latents, input.condition);
    return scope(async (keep) => {
      const s = this.embed(input, grid, split);
      const first = await this.blocks(s, s.x, 0, 1);
      const reuse = await cache.observe(keep(sub(first, s.x)), full);
      s.x.dispose();
      let x: Tensor;
      if (reuse) x = add(first, cache.rest as Tensor);
      else {
        x = await this.blocks(s, first, 1, c.num_layers);
        cache.refresh(keep(sub(x, first)));
      }
      if (x !== first) first.dispose(); // (a one-block model's blocks 1..n−1 return `first` itself)
      return this.head(x, s);
    });
  }

  // The one forward: synchronous unless a split point of `split` waits on a collective
  // (see maybe-async.ts), so that on one device the op sequence is a plain one a CUDA
  // graph can capture.
  private run(input: WanForwardInput, split: TokenSplit | null): MaybePromise<Tensor> {
    const grid = this.grid(input.latents, input.condition);
    return scope(() => {
      const s = this.embed(input, grid, split);
      return andThen(this.blocks(s, s.x, 0, this.config.num_layers, true), (x) => this.head(x, s));
    });
  }

  // Blocks [from, to) on x; from the first block whose attention returns a Promise on,
  // the rest continue in its callback. Each block frees its input once nothing reads it
  // any more (the input x too when `own`: the caller hands it over), so that one block's
  // activations are alive at a time, not every block's output until the forward ends.
  private blocks(s: Embedded, x: Tensor, from: number, to: number, own = false): MaybePromise<Tensor> {
    for (let i = from; i < to; i++) {
      this.offload?.enter(i);
      const xi = x;
      const y = scope(() => this.block(i, xi, s, own || i > from));
      if (y instanceof Promise) return y.then((next) => this.blocks(s, next, i + 1, to, true));
      x = y;
    }
    this.offload?.park();
    return x;
  }

  private grid(latents: Tensor, condition?: Tensor): TokenGrid {
    const c = this.config;
    const [, f, h, w, ch] = latents.shape as [number, number, number, number, number];
    const [pt, ph, pw] = c.patch_size;
    const extra = condition ? (condition.shape[4] as number) : 0;
    if (latents.ndim !== 5 || ch + extra !== c.in_channels)
      throw new Error(
        `WanTransformer: latents must be [B, F, H, W, ${c.in_channels - extra}]${extra ? ` (with ${extra} condition channels)` : ""}, got [${latents.shape.join(", ")}]`,
      );
    if (f % pt || h % ph || w % pw)
      throw new Error(
        `WanTransformer: latent size ${f}x${h}x${w} is not a multiple of the patch ${pt}x${ph}x${pw}`,
      );
    return [f / pt, h / ph, w / pw];
  }

  // Conditioning and patch embedding: what every block takes (with a split, this rank's share of the tokens).
  private embed(input: WanForwardInput, grid: TokenGrid, split: TokenSplit | null): Embedded {
    const b = input.latents.shape[0] as number;
    const frames = timestepFrames(input.timesteps, b, grid, split !== null);
    const { temb, tproj, ctx } = this.conditioning(input.timesteps, input.context, input.latents.dtype);
    const img = this.imageTokens(input, b);
    const patches = (v: Tensor) =>
      patchEmbed3d(v, this.w("patch_embedding.weight"), this.w("patch_embedding.bias"));
    let x: Tensor;
    if (input.condition) {
      const cond = batched(input.condition, b);
      const joined = concat([input.latents, cond], 4);
      if (cond !== input.condition) cond.dispose();
      x = consume(joined, patches);
    } else x = patches(input.latents);
    if (!split) {
      const attention3d = (q: Tensor, k: Tensor, v: Tensor) => attention(q, k, v, { grid, rope: true });
      return { x, temb, tproj, ctx, img, grid, b, frames, attention: attention3d, gather: null };
    }
    const shard = split.shard(x, grid);
    if (shard.x !== x) x.dispose();
    return {
      x: shard.x,
      temb,
      tproj,
      ctx,
      img,
      grid,
      b,
      frames,
      attention: shard.attention,
      gather: shard.gather,
    };
  }

  // Image-to-video: the CLIP states as tokens of the model width (image.ts), one row per branch.
  private imageTokens(input: WanForwardInput, b: number): Tensor | null {
    const c = this.config;
    if (!hasImageInput(c)) {
      if (input.image) throw new Error("WanTransformer: image states given to a text-to-video transformer");
      return null;
    }
    if (!input.image)
      throw new Error(
        "WanTransformer: this image-to-video transformer needs the CLIP image states (input.image)",
      );
    return embedImage(c, this.weights, batched(input.image, b));
  }

  /**
   * The conditioning every block takes: the time embedding (temb, [R, dim]), its six
   * modulation vectors per block (tproj, [R, 6, dim]) and the projected text (ctx);
   * R = B, or B × token frames with per-frame timesteps.
   */
  private conditioning(
    timesteps: Tensor,
    context: Tensor,
    dtype: DType,
  ): { temb: Tensor; tproj: Tensor; ctx: Tensor } {
    const rows = timesteps.size;
    // Sinusoidal timestep -> MLP -> six modulation vectors per block.
    const flat = timesteps.ndim === 1 ? timesteps : timesteps.reshape([rows]);
    const tFreq = timestepEmbedding(flat, this.config.freq_dim, { cosFirst: true, dtype });
    const t1 = consume(tFreq, (t) => this.lin(t, "condition_embedder.time_embedder.linear_1", "silu"));
    const temb = consume(t1, (t) => this.lin(t, "condition_embedder.time_embedder.linear_2"));
    const tproj = view(
      consume(silu(temb), (t) => this.lin(t, "condition_embedder.time_proj")),
      [rows, 6, this.dim],
    );
    const ctx = consume(this.lin(context, "condition_embedder.text_embedder.linear_1", "gelu_tanh"), (t) =>
      this.lin(t, "condition_embedder.text_embedder.linear_2"),
    );
    return { temb, tproj, ctx };
  }

  // Output head: shift/scale from the time embedding, then back to patches (after the gather,
  // with a split). Frees x, the last block's output.
  private head(x: Tensor, s: Embedded): MaybePromise<Tensor> {
    const c = this.config;
    const unpatchify = (y: Tensor) =>
      unpatchify3d(y, { grid: s.grid, patch: c.patch_size, channels: c.out_channels });
    const y = this.headTokens(x, s.temb, s.frames);
    x.dispose();
    if (!s.gather) return consume(y, unpatchify);
    const gather = s.gather;
    return gather(y).then((all) => {
      if (all !== y) y.dispose();
      return consume(all, unpatchify);
    });
  }

  /** The output head on tokens [B, L, dim] -> [B, L, patch volume × out_channels], before unpatchify. */
  private headTokens(x: Tensor, temb: Tensor, frames = 1): Tensor {
    const b = temb.shape[0] as number;
    const mod = add(this.w("scale_shift_table"), temb.reshape([b, 1, this.dim]));
    const shift = chunk(mod, 0, b, this.dim);
    const scale = chunk(mod, 1, b, this.dim);
    return consume(
      perFrame(x, frames, (xf) => layerNorm(xf, { eps: this.config.eps, scale, shift })),
      (n) => this.lin(n, "proj_out"),
    );
  }

  // One block on x. Every intermediate is freed once the last op that reads it has been
  // enqueued (stream order makes that safe on a GPU; queued CPU ops hold their inputs),
  // so the block's live set peaks at the feed-forward's hidden state (ffn_dim wide) plus
  // two tensors of the residual stream, rather than holding all ~25 of its intermediates
  // until it returns. `own`: x is the caller's to free too (once the self-attention's
  // gated residual has read it).
  private block(i: number, x: Tensor, s: Embedded, own = false): MaybePromise<Tensor> {
    const { q, k, v, mod } = this.blockSelfAttentionInputs(i, x, s.tproj, s.frames);
    // Self-attention over all video tokens with 3D RoPE.
    return andThen(s.attention(q, k, v), (sa) => {
      free(q, k, v);
      return this.blockAfterSelfAttention(i, x, sa, mod, s.ctx, s.frames, s.img, own);
    });
  }

  /**
   * The first part of block `i`: adaLN modulation and the self-attention q, k, v as
   * [B, L, H, D], before the attention the forward was given.
   */
  private blockSelfAttentionInputs(
    i: number,
    x: Tensor,
    tproj: Tensor,
    frames = 1,
  ): { q: Tensor; k: Tensor; v: Tensor; mod: Tensor[] } {
    const c = this.config;
    const p = `blocks.${i}`;
    const [b, len] = x.shape as [number, number];
    const shape = [b, len, c.num_attention_heads, c.attention_head_dim];
    const table = add(this.w(`${p}.scale_shift_table`), tproj);
    const rows = tproj.shape[0] as number;
    const mod = [0, 1, 2, 3, 4, 5].map((k) => chunk(table, k, rows, this.dim));
    table.dispose();
    const n1 = perFrame(x, frames, (xf) => layerNorm(xf, { eps: c.eps, scale: mod[1], shift: mod[0] }));
    const q = view(this.qkNormOwned(this.lin(n1, `${p}.attn1.to_q`), `${p}.attn1.norm_q`), shape);
    const k = view(this.qkNormOwned(this.lin(n1, `${p}.attn1.to_k`), `${p}.attn1.norm_k`), shape);
    const v = view(this.lin(n1, `${p}.attn1.to_v`), shape);
    n1.dispose();
    return { q, k, v, mod };
  }

  /**
   * The rest of block `i` given its self-attention output `sa` [B, L, H, D], which it
   * frees (and x with `own`).
   */
  private blockAfterSelfAttention(
    i: number,
    x: Tensor,
    sa: Tensor,
    mod: Tensor[],
    ctx: Tensor,
    frames = 1,
    img: Tensor | null = null,
    own = false,
  ): Tensor {
    const c = this.config;
    const p = `blocks.${i}`;
    const [b, len] = x.shape as [number, number];
    const heads = c.num_attention_heads;
    const hd = c.attention_head_dim;
    const saOut = consume(view(sa, [b, len, this.dim]), (t) => this.lin(t, `${p}.attn1.to_out.0`));
    const x1 = perFrame(x, frames, (xf, fold) => gatedResidual(xf, fold(saOut), mod[2] as Tensor));
    saOut.dispose();
    if (own) x.dispose();

    // Cross-attention to the text states.
    const n3 = c.cross_attn_norm
      ? layerNorm(x1, { eps: c.eps, weight: this.w(`${p}.norm2.weight`), bias: this.w(`${p}.norm2.bias`) })
      : x1;
    const lt = ctx.shape[1] as number;
    const cq = this.qkNormOwned(this.lin(n3, `${p}.attn2.to_q`), `${p}.attn2.norm_q`);
    if (n3 !== x1) n3.dispose();
    const ck = this.qkNormOwned(this.lin(ctx, `${p}.attn2.to_k`), `${p}.attn2.norm_k`);
    const cv = this.lin(ctx, `${p}.attn2.to_v`);
    const q4 = view(cq, [b, len, heads, hd]);
    const k4 = view(ck, [b, lt, heads, hd]);
    const v4 = view(cv, [b, lt, heads, hd]);
    let ca = attention(q4, k4, v4);
    free(k4, v4);
    // Image-to-video: the same queries over the image tokens, summed with the text attention.
    if (img)
      ca = consume(ca, (t) => consume(imageAttention(c, this.weights, i, q4, img), (ia) => add(t, ia)));
    q4.dispose();
    const caOut = consume(view(ca, [b, len, this.dim]), (t) => this.lin(t, `${p}.attn2.to_out.0`));
    const x2 = add(x1, caOut);
    free(x1, caOut);

    // Feed-forward with adaLN modulation and a gated residual.
    const n2 = perFrame(x2, frames, (xf) => layerNorm(xf, { eps: c.eps, scale: mod[4], shift: mod[3] }));
    const h = consume(n2, (t) => this.lin(t, `${p}.ffn.net.0.proj`, "gelu_tanh"));
    const ff = consume(h, (t) => this.lin(t, `${p}.ffn.net.2`));
    const out = perFrame(x2, frames, (xf, fold) => gatedResidual(xf, fold(ff), mod[5] as Tensor));
    free(x2, ff, ...mod);
    return out;
  }

  private qkNorm(x: Tensor, name: string): Tensor {
    if (!this.config.qk_norm) return x;
    return rmsNorm(x, { weight: this.w(`${name}.weight`), eps: this.config.eps });
  }

  // qkNorm of an intermediate only it reads: x is freed once the norm is enqueued.
  private qkNormOwned(x: Tensor, name: string): Tensor {
    return consume(x, (t) => this.qkNorm(t, name));
  }
}

// A batch-1 conditioning tensor repeated for each of b guidance branches.
function batched(t: Tensor, b: number): Tensor {
  const n = t.shape[0] as number;
  if (n === b) return t;
  if (n !== 1) throw new Error(`WanTransformer: conditioning of batch ${n} for latents of batch ${b}`);
  return concat(
    Array.from({ length: b }, () => t),
    0,
  );
}

// f(x), then x freed (unless f returned x itself): for an intermediate whose last reader is f.
// Freeing right after the op is enqueued is safe: a GPU reuses the memory in stream order,
// and a queued CPU op holds its inputs until it has run.
function consume(x: Tensor, f: (x: Tensor) => Tensor): Tensor {
  const y = f(x);
  if (y !== x) x.dispose();
  return y;
}

// x reshaped, x's handle freed: the view alone keeps the memory, so freeing the view frees it.
function view(x: Tensor, shape: readonly number[]): Tensor {
  return consume(x, (t) => t.reshape(shape));
}

function free(...ts: Tensor[]): void {
  for (const t of ts) t.dispose();
}

// Row k of a [B, n, dim] modulation tensor as a contiguous [B, dim].
function chunk(mod: Tensor, k: number, b: number, dim: number): Tensor {
  return view(slice(mod, 1, k, k + 1), [b, dim]);
}

/**
 * fn over tokens x [B, L, dim] with the token frames folded into the batch
 * ([B·frames, L/frames, dim]: tokens are frame-major) so that per-sample modulation
 * rows [B·frames, dim] act per frame; `fold` reshapes another [B, L, ·] tensor alike.
 * With frames = 1, fn(x) as is.
 */
function perFrame(x: Tensor, frames: number, fn: (x: Tensor, fold: (t: Tensor) => Tensor) => Tensor): Tensor {
  if (frames === 1) return fn(x, (t) => t);
  const [b, len, dim] = x.shape as [number, number, number];
  // The folded views are freed here, so that they do not keep x (or what fold() was given) alive.
  const views: Tensor[] = [];
  const fold = (t: Tensor) => {
    const f = t.reshape([b * frames, len / frames, t.shape[2] as number]);
    views.push(f);
    return f;
  };
  const y = fn(fold(x), fold);
  free(...views);
  return view(y, [b, len, dim]);
}

/** The modulation rows per sample the timesteps ask for (1: per sample), checked against the token grid. */
function timestepFrames(timesteps: Tensor, b: number, grid: TokenGrid, split: boolean): number {
  const s = timesteps.shape;
  if (timesteps.ndim === 1 && s[0] === b) return 1;
  if (timesteps.ndim !== 2 || s[0] !== b || (s[1] !== 1 && s[1] !== grid[0]))
    throw new Error(
      `WanTransformer: timesteps must be [${b}] (per sample) or [${b}, ${grid[0]}] (per token frame), got [${s.join(", ")}]`,
    );
  const frames = s[1] as number;
  if (frames > 1 && split)
    throw new Error(
      "WanTransformer: per-frame timesteps (Wan2.2 TI2V image-to-video) do not run with the tokens split over ranks yet; run on one device or split the guidance branches only",
    );
  return frames;
}
