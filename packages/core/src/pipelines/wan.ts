// Text-to-video with Wan2.1: umT5 text states, a flow-matching sampler over the
// diffusion transformer with classifier-free guidance, and the causal VAE — plus
// image-to-video, extension, looping and video-to-video on the same text-to-video
// weights, by holding latent frames to known values during sampling.
//
// The conditioning rule (one rule for every mode): a latent frame with a known
// clean value k (the encoded image, the encoded tail of a clip, or — for a loop —
// the current first frame) is overwritten after every scheduler step with
// (1 − σ)·k + σ·ε, where σ is the noise level the step arrived at and ε that
// frame's slice of the run's initial noise. The model so always sees known frames
// at the noise level of the rest of the clip (the forward process it was trained
// on), and at the final σ = 0 they are exactly k. The same overwrite is applied to
// the starting latents, before the first step.
// Models with per-token timesteps (Wan2.2 TI2V) hold the known frames of an image or
// clip at k itself instead, their tokens at timestep 0 (see ti2v.ts).
//
// Parallelism is a plan this one loop consults (parallel/plan.ts): over several
// ranks every rank runs this same generate() on the whole latents, and only each
// step's velocity and the VAE decode are split; one device is the trivial plan.
import { statSync } from "node:fs";
import { axpby, cast, concat, type Device, type DType, randn, scope, slice, Tensor } from "@tessera/native";
import { andThen } from "../models/maybe-async.js";
import type { UMT5Encoder } from "../models/t5/encoder.js";
import type { WanTransformerConfig } from "../models/wan/config.js";
import { hasImageInput, takesImageLatents } from "../models/wan/image.js";
import { StepCache } from "../models/wan/step-cache.js";
import type { TokenGrid, WanTransformer } from "../models/wan/transformer.js";
import { spatialFactor, temporalFactor, type WanVaeConfig } from "../models/wan-vae/config.js";
import type { WanVAE } from "../models/wan-vae/vae.js";
import {
  branchesOf,
  decodeLatents,
  type ParallelPlan,
  planRun,
  SINGLE_DEVICE,
  stepCacheOptions,
  stepSplit,
} from "../parallel/plan.js";
import { param, problem } from "../params/index.js";
import type { RewriteResult } from "../prompt/rewrite.js";
import { type FlowScheduler, startIndexForStrength } from "../schedulers/common.js";
import { createScheduler, WAN_SAMPLING_DEFAULTS } from "../schedulers/index.js";
import type { TextTokenizer } from "../tokenizer/tokenizer.js";
import type { RgbImage, VideoFrames } from "../video/frames.js";
import { LoraError, planLoraFile } from "../weights/lora/adapter.js";
import { boundaryTimestep, ExpertResidency, expertAt, expertGuidance } from "./experts.js";
import { guidedVelocity, type StepModel } from "./guided-velocity.js";
import {
  checkImageConditionedOptions,
  conditionedModel,
  encodeImageCondition,
  type ImageEncoderParts,
} from "./image-conditioning.js";
import { type LoadPipelineOptions, loadWanComponents } from "./load.js";
import { type ActiveLora, listLoras, resolveLoras, TransformerLoras, wanLoraTarget } from "./loras.js";
import {
  AbortError,
  cleanPrompt,
  GenerateOptionError,
  type GenerateOptions,
  type GenerationDefaults,
  type LoraSpec,
  type ModelLimits,
  type ResolvedOptions,
  resolveOptions,
} from "./options.js";
import { pixelsToTensor } from "./pixels.js";
import {
  LatentPreviewer,
  type LatentRgbProjection,
  latentRgbProjectionFor,
  type PreviewFrames,
} from "./preview.js";
import { checkPromptEmbeds, padPromptEmbeds } from "./prompt-embeds.js";
import { type CaptionStyle, type PreparedPrompt, preparePrompt } from "./prompt-style.js";
import { StepGraph, type StepGraphReport } from "./step-graph.js";
import { TextStateCache } from "./text-cache.js";
import { stepTime, TI2V_DEFAULTS } from "./ti2v.js";

export interface WanPipelineComponents {
  transformer: WanTransformer;
  vae: WanVAE;
  textEncoder: UMT5Encoder;
  tokenizer: TextTokenizer;
  /** Names the model in the text-state cache key and in messages (default: a per-instance id). */
  modelId?: string;
  /** Overrides of the generation defaults (a model folder's scheduler_config.json and tessera.json set these). */
  defaults?: Partial<GenerationDefaults>;
  /** Text states are padded to this many tokens (Wan's text_len, 512). */
  textLength?: number;
  /** Prompts whose text states are kept (default 4). */
  textCacheSize?: number;
  numTrainTimesteps?: number;
  /** The caption style the text encoder was trained on; "tessera-world" rewrites prompts onto it (see prompt-style.ts). */
  captionStyle?: CaptionStyle;
  /** The folder LoRAs given by name are read from. */
  loraDir?: string;
  /** Latents → RGB for live previews (tessera.json's preview.latentRgb); Wan2.1's z16 map when absent. */
  previewProjection?: LatentRgbProjection;
  /** Wan2.2 TI2V (model_index.json's expand_timesteps): known frames held clean at timestep 0 (see ti2v.ts). */
  expandTimesteps?: boolean;
  /**
   * A second expert (Wan2.2 A14B's low-noise transformer_2): it denoises the steps
   * below the boundary, `transformer` those at or above it (see experts.ts).
   */
  transformer2?: WanTransformer;
  /** With transformer2: the boundary as a share of numTrainTimesteps (model_index.json's boundary_ratio). */
  boundaryRatio?: number;
  /**
   * With transformer2: keep only the running expert on the device, the other in host
   * memory (transformer2's weights are then on the host as given). Default false.
   */
  expertSwap?: boolean;
  /** Wan2.1 I2V / FLF2V: the CLIP image encoder and its preprocessing (Wan2.2 I2V-A14B has none). */
  imageEncoder?: ImageEncoderParts;
}

export interface GenerateTimings {
  /** Milliseconds in the text encoder (0 when both prompts were cached). */
  text: number;
  /** VAE encoding of the image or video, if any. */
  encode: number;
  denoise: number;
  /** Mean milliseconds per denoising step (an expert swap, in denoise, not counted). */
  step: number;
  decode: number;
  /** Two-expert models: milliseconds spent moving experts between host and device memory (0 when both stay resident). */
  swap: number;
  total: number;
}

export interface GenerateResult {
  /** [1, frames, height, width, 3] in [-1, 1], f32. */
  video: Tensor;
  /** The final normalised latents [1, F, height/8, width/8, z_dim], f32. */
  latents: Tensor;
  timings: GenerateTimings;
  seed: number;
  width: number;
  height: number;
  frames: number;
  fps: number;
  /** Steps run (fewer than `steps` for video-to-video). */
  stepsRun: number;
  /** Steps that ran the whole transformer: stepsRun, less the steps the step cache (`stepCache`) served. */
  fullSteps: number;
  /** For extend: the output's first frames that re-create the end of the input clip. */
  contextFrames: number;
  /** How many of the prompts came from the text-state cache. */
  textCacheHits: number;
  /** The prompt the text encoder got (the rewritten one, when the rewriter ran). */
  prompt: string;
  /** The rewriter's report (caption, unknown words, filled-in defaults), or null when it did not run. */
  rewrite: RewriteResult | null;
  /** Whether the denoising step ran as a CUDA graph (`cudaGraph`). */
  stepGraph: StepGraphReport;
  /** Whether the transformer blocks' weights were offloaded to host memory (see WanPipeline.offload). */
  offload: boolean;
  /** Two-expert models: the boundary timestep, the steps each expert ran and the swaps of this run; null with one expert. */
  experts: { boundary: number; steps: [number, number]; swaps: number } | null;
}

export { guidedVelocity };

let nextInstance = 0;

export class WanPipeline {
  readonly transformer: WanTransformer;
  /** The second (low-noise) expert of a two-expert model, or null. */
  readonly transformer2: WanTransformer | null;
  /** The timestep at and above which `transformer` runs and below which transformer2 does (two experts), or null. */
  readonly boundary: number | null;
  readonly vae: WanVAE;
  readonly textEncoder: UMT5Encoder;
  readonly tokenizer: TextTokenizer;
  readonly modelId: string;
  readonly defaults: GenerationDefaults;
  readonly limits: ModelLimits;
  readonly textLength: number;
  readonly numTrainTimesteps: number;
  readonly captionStyle: CaptionStyle | undefined;
  /** The folder LoRAs given by name are read from (name.safetensors there), if any. */
  readonly loraDir: string | undefined;
  /** What live previews project latents with; null: this model has none (generate's `preview` is ignored). */
  readonly previewProjection: LatentRgbProjection | null;
  /** Per-token timesteps (Wan2.2 TI2V): known frames are held clean and their tokens get timestep 0. */
  readonly expandTimesteps: boolean;
  /** The CLIP image encoder of an image-to-video model (Wan2.1 I2V / FLF2V); null for text-to-video. */
  readonly imageEncoder: ImageEncoderParts | null;
  /** An image-to-video model (Wan2.1 I2V / FLF2V, Wan2.2 I2V-A14B): every run needs `image` (and takes no video). */
  readonly requiresImage: boolean;
  /** A first-last-frame model (Wan2.1 FLF2V): every run needs `endImage` too. */
  readonly requiresEndImage: boolean;
  readonly #cache: TextStateCache;
  readonly #loras: TransformerLoras;
  /** What a generate() without `loras` runs with: the set given at load or to setLoras(). */
  #defaultLoras: ActiveLora[] = [];
  /** The second expert's LoRAs, where it is resident, and what a run without loras2 uses. */
  readonly #loras2: TransformerLoras | null = null;
  readonly #experts: ExpertResidency | null = null;
  #defaultLoras2: ActiveLora[] = [];
  readonly #device: Device;

  constructor(c: WanPipelineComponents) {
    this.transformer = c.transformer;
    this.vae = c.vae;
    this.textEncoder = c.textEncoder;
    this.tokenizer = c.tokenizer;
    this.modelId = c.modelId ?? `in-memory Wan pipeline #${nextInstance++}`;
    this.textLength = c.textLength ?? WAN_SAMPLING_DEFAULTS.textLength;
    this.numTrainTimesteps = c.numTrainTimesteps ?? 1000;
    this.captionStyle = c.captionStyle;
    this.#cache = new TextStateCache(c.textCacheSize ?? 4);
    this.expandTimesteps = c.expandTimesteps === true;
    this.defaults = generationDefaults(
      this.expandTimesteps ? { ...TI2V_DEFAULTS, ...c.defaults } : c.defaults,
    );
    this.loraDir = c.loraDir;
    if (c.loraDir !== undefined && !statSync(c.loraDir, { throwIfNoEntry: false })?.isDirectory())
      throw new Error(`WanPipeline: the LoRA folder ${c.loraDir} is not a folder`);
    this.previewProjection = latentRgbProjectionFor(c.previewProjection, c.vae.config.z_dim);
    // Read once: a swapped-out expert's weights are on the host, the run's device is not.
    this.#device = this.transformer.weights.get("patch_embedding.weight").device;
    this.transformer2 = c.transformer2 ?? null;
    this.boundary = null;
    this.imageEncoder = c.imageEncoder ?? null;

    const tc = this.transformer.config;
    const z = this.vae.config.z_dim;
    // Image-to-video transformers take the latents, a 4-channel mask and the condition's latents.
    const zIn = takesImageLatents(tc) ? 2 * z + temporalFactor(this.vae.config) : z;
    if (tc.in_channels !== zIn || tc.out_channels !== z)
      throw new Error(
        `WanPipeline: the transformer takes ${tc.in_channels} channels and gives ${tc.out_channels}, but the VAE's latents have ${z} (in ${zIn})`,
      );
    checkImageEncoder(tc, this.imageEncoder);
    this.requiresImage = takesImageLatents(tc);
    this.requiresEndImage = tc.pos_embed_seq_len != null;
    if (tc.text_dim !== this.textEncoder.config.d_model)
      throw new Error(
        `WanPipeline: the transformer's text_dim is ${tc.text_dim} but the text encoder's d_model is ${this.textEncoder.config.d_model}`,
      );
    if (this.tokenizer.vocabSize > this.textEncoder.config.vocab_size)
      throw new Error(
        `WanPipeline: the tokenizer can produce ids up to ${this.tokenizer.vocabSize - 1} but the text encoder has ${this.textEncoder.config.vocab_size} embeddings`,
      );
    if (!Number.isInteger(this.textLength) || this.textLength < 1)
      throw new Error(`WanPipeline: textLength must be a positive integer, got ${this.textLength}`);
    this.limits = modelLimits(tc, this.vae.config, this.transformer2 ? 2 : 1);
    this.#loras = new TransformerLoras(
      this.transformer.weights,
      wanLoraTarget(tc, "this model's transformer"),
    );
    if (this.transformer2) {
      const two = twoExperts(this.transformer, this.transformer2, c.boundaryRatio, this.numTrainTimesteps);
      this.boundary = two.boundary;
      this.#loras2 = new TransformerLoras(
        this.transformer2.weights,
        wanLoraTarget(this.transformer2.config, "this model's transformer_2 (the low-noise expert)"),
      );
      this.#experts = new ExpertResidency(
        [this.transformer.weights, this.transformer2.weights],
        this.#device,
        c.expertSwap === true,
      );
    } else if (c.boundaryRatio !== undefined)
      throw new Error("WanPipeline: boundaryRatio is given but there is no transformer2 (the second expert)");
  }

  /** Whether the transformer blocks' weights wait in host memory, copied in one block ahead (weight offload). */
  get offload(): boolean {
    return this.transformer.offload !== null;
  }

  /** Whether only the running expert is kept on the device (two-expert models). */
  get expertSwap(): boolean {
    return this.#experts?.swap ?? false;
  }

  /** Expert swaps (host ⇄ device moves) since the pipeline was made. */
  get expertSwaps(): number {
    return this.#experts?.swaps ?? 0;
  }

  /**
   * Loads a diffusers-layout Wan2.1 text-to-video folder (model_index.json with
   * transformer/, vae/, text_encoder/, tokenizer/ and optionally scheduler/).
   */
  static async load(dir: string, opts: LoadPipelineOptions = {}): Promise<WanPipeline> {
    const c = await loadWanComponents(dir, opts);
    let pipe: WanPipeline;
    try {
      pipe = new WanPipeline(c);
    } catch (e) {
      c.transformer.weights.dispose();
      c.transformer2?.weights.dispose();
      c.vae.weights.dispose();
      c.textEncoder.weights.dispose();
      c.imageEncoder?.encoder.weights.dispose();
      throw e;
    }
    try {
      await pipe.#experts?.adopt();
      if (opts.loras?.length) await pipe.setLoras(opts.loras);
      if (opts.loras2?.length) await pipe.setLoras2(opts.loras2);
    } catch (e) {
      pipe.dispose();
      throw e;
    }
    return pipe;
  }

  /**
   * Merges `loras` into the transformer now and makes them the set a generate()
   * without its own `loras` runs with ([] removes every LoRA). No reload: the changed
   * weights are recomputed from their originals (see weights/store.ts).
   */
  async setLoras(loras: readonly LoraSpec[]): Promise<void> {
    const wanted = this.#resolveLoras(loras, "loras");
    await this.#experts?.ensure(0);
    await this.#lorasOption(() => this.#loras.apply(wanted));
    this.#defaultLoras = wanted;
  }

  /**
   * setLoras() for the second (low-noise) expert of a two-expert model: merged now
   * (the expert is swapped in first if it waits in host memory).
   */
  async setLoras2(loras: readonly LoraSpec[]): Promise<void> {
    const loras2 = this.#loras2;
    if (!loras2) {
      if (loras.length === 0) return;
      throw new GenerateOptionError(
        "loras2",
        "loras2 is for the low-noise expert of a two-expert model (Wan2.2 A14B); this model has one expert (its transformer): give its LoRAs as loras",
      );
    }
    const wanted = this.#resolveLoras(loras, "loras2");
    await this.#experts?.ensure(1);
    await this.#lorasOption(() => loras2.apply(wanted), "loras2");
    this.#defaultLoras2 = wanted;
  }

  /** The LoRAs merged into the second expert now ([] with one expert). */
  get loras2(): readonly ActiveLora[] {
    return this.#loras2?.active ?? [];
  }

  /** The LoRAs merged into the transformer now. */
  get loras(): readonly ActiveLora[] {
    return this.#loras.active;
  }

  /** The names of the LoRAs in the LoRA folder ([] without one). */
  listLoras(): string[] {
    return this.loraDir === undefined ? [] : listLoras(this.loraDir);
  }

  #resolveLoras(loras: readonly LoraSpec[], key: string): ActiveLora[] {
    const message = problem(param("loras"), loras, key);
    if (message !== null) throw new GenerateOptionError(key, message);
    return resolveLoras(loras, this.loraDir, key);
  }

  // A LoRA file that cannot be merged is the option's fault: said as a GenerateOptionError on loras.
  async #lorasOption<T>(fn: () => Promise<T>, key = "loras"): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      if (e instanceof LoraError) throw new GenerateOptionError(key, e.message);
      throw e;
    }
  }

  /** Where the transformer's weights are: every tensor of a run lives there. */
  get device(): Device {
    return this.#device;
  }

  /** The transformer's dtype (its inputs are cast to it; latents and scheduler math stay f32). */
  get dtype(): DType {
    return this.transformer.weights.get("patch_embedding.weight").dtype;
  }

  get vaeDtype(): DType {
    return anyWeight(this.vae.weights).dtype;
  }

  /** Frees the cached text states. */
  clearTextCache(): void {
    this.#cache.clear();
  }

  get textCacheSize(): number {
    return this.#cache.size;
  }

  /** Frees the cached text states, the parsed LoRA files and every model weight. */
  dispose(): void {
    this.#cache.clear();
    this.#loras.dispose();
    this.#loras2?.dispose();
    this.transformer.offload?.dispose();
    this.transformer2?.offload?.dispose();
    this.transformer.weights.dispose();
    this.transformer2?.weights.dispose();
    this.#experts?.dispose();
    this.vae.weights.dispose();
    this.textEncoder.weights.dispose();
    this.imageEncoder?.encoder.weights.dispose();
  }

  /** Checks options against the model without running anything (throws GenerateOptionError naming the option). */
  resolve(opts: GenerateOptions): ResolvedOptions {
    const r = resolveOptions(opts, this.defaults, this.limits, () => Math.floor(Math.random() * 2 ** 32));
    checkImageConditionedOptions(opts, r, this.transformer, false);
    // LoRA names and files exist (whether they fit the model is known once they are read).
    if (opts.loras !== undefined) resolveLoras(opts.loras, this.loraDir);
    if (opts.loras2 !== undefined) resolveLoras(opts.loras2, this.loraDir, "loras2");
    checkPromptEmbeds(opts, this.transformer.config.text_dim, this.textLength);
    return r;
  }

  /**
   * The prompt as this model's text encoder should get it: for a model with a caption
   * style (the bundled demo model), free text rewritten onto that style unless
   * `rewrite` is false; otherwise the text unchanged.
   */
  preparePrompt(text: string, rewrite = true): PreparedPrompt {
    return preparePrompt(cleanPrompt(text), this.captionStyle, rewrite);
  }

  /**
   * Generates one video. With a parallel plan over several ranks (parallelPlan(comm)),
   * call it on every rank with the same options, seed included: each step's velocity
   * and the VAE decode are split as the plan says, and every rank returns the same
   * result. The default plan is one device.
   */
  async generate(opts: GenerateOptions, plan: ParallelPlan = SINGLE_DEVICE): Promise<GenerateResult> {
    const t0 = performance.now();
    const r = this.resolve(opts);
    checkImageConditionedOptions(opts, r, this.transformer, true);
    const tc = this.transformer.config;
    const sf = this.vae.spatialFactor;
    // Both guidance branches run when any expert guides (an expert at 1 then takes the
    // conditional branch alone), so every step has one batch and one plan.
    const runGuidance = this.transformer2 ? Math.max(r.guidance, r.guidance2) : r.guidance;
    const split = planRun(plan, {
      guidance: runGuidance,
      heads: tc.num_attention_heads,
      latentRows: r.height / sf,
      seeded: opts.seed !== undefined,
    });
    const prepared = this.preparePrompt(r.prompt, opts.rewrite !== false && !opts.promptEmbeds);
    const signal = opts.signal;
    checkAbort(signal);
    const device = this.device;
    const dtype = this.dtype;
    const z = this.vae.config.z_dim;
    const shape = [1, r.latentFrames, r.height / sf, r.width / sf, z];
    const [pt, ph, pw] = tc.patch_size;
    const grid: TokenGrid = [r.latentFrames / pt, r.height / sf / ph, r.width / sf / pw];

    const wantedLoras =
      opts.loras === undefined ? this.#defaultLoras : resolveLoras(opts.loras, this.loraDir);
    const wantedLoras2 =
      opts.loras2 === undefined ? this.#defaultLoras2 : resolveLoras(opts.loras2, this.loraDir, "loras2");
    const releases: (() => void)[] = [];
    const owned: Tensor[] = [];
    const own = <T extends Tensor>(t: T): T => {
      owned.push(t);
      return t;
    };
    const pinned: string[] = [];
    let latents: Tensor | null = null;
    let scheduler: FlowScheduler | null = null;
    let video: Tensor | null = null;
    const stepCache =
      r.stepCache === false ? null : new StepCache(r.stepCache, stepCacheOptions(split, grid));
    const stepSplits = stepSplit(split, tc);
    // Per generation: the graph holds the step's activation memory, which the VAE
    // decode that follows may need. One per expert (each reads its own weights).
    const graphs: (StepGraph | null)[] = [null, null];
    let graphFailure: string | null = null;
    const dropGraph = (e: number) => {
      graphFailure ??= graphs[e]?.failure() ?? null;
      graphs[e]?.dispose();
      graphs[e] = null;
    };
    const disposeGraphs = () => {
      dropGraph(0);
      dropGraph(1);
    };
    const timings: GenerateTimings = {
      text: 0,
      encode: 0,
      denoise: 0,
      step: 0,
      decode: 0,
      swap: 0,
      total: 0,
    };
    // Two experts: each one's LoRAs are merged once it is resident (see experts.ts).
    const held = new Set<number>();
    const holdLoras = async (e: number) => {
      if (held.has(e)) return;
      held.add(e);
      const loras = e === 0 ? this.#loras : (this.#loras2 as TransformerLoras);
      const wanted = e === 0 ? wantedLoras : wantedLoras2;
      releases.push(await this.#lorasOption(() => loras.hold(wanted), e === 0 ? "loras" : "loras2"));
    };
    const useExpert = async (e: number) => {
      const ms = (await this.#experts?.ensure(e)) ?? 0;
      if (ms > 0) {
        timings.swap += ms;
        swaps++;
        // A graph replays the addresses it captured, and the weights moved.
        disposeGraphs();
      }
      await holdLoras(e);
    };
    let swaps = 0;
    const expertSteps: [number, number] = [0, 0];
    let hits = 0;
    try {
      // 0. The LoRAs this run asks for, merged (nothing to do when they already are);
      //    an expert that waits in host memory gets its own when it is swapped in.
      if (!this.#experts?.swap) {
        await holdLoras(0);
        if (this.transformer2) await holdLoras(1);
      } else {
        // Each expert's LoRAs checked against it now (names and shapes, from the files'
        // headers), so that a LoRA that does not fit fails the run before its first step.
        for (const [key, list, model] of [
          ["loras", wantedLoras, this.transformer],
          ["loras2", wantedLoras2, this.transformer2 as WanTransformer],
        ] as const)
          for (const l of list)
            await this.#lorasOption(() => planLoraFile(l.path, wanLoraTarget(model.config)), key);
      }
      checkAbort(signal);

      // 1. Text states: conditional, then unconditional, one batch of two for guidance
      //    (or, with the branches split over ranks, this rank's own).
      const tText = performance.now();
      const cfg = runGuidance > 1;
      const cond = opts.promptEmbeds
        ? { states: own(await this.givenStates(opts.promptEmbeds)), hit: false }
        : await this.textStates(prepared.prompt, pinned);
      hits += cond.hit ? 1 : 0;
      let context = cond.states;
      if (cfg) {
        const uncond = opts.negativePromptEmbeds
          ? { states: own(await this.givenStates(opts.negativePromptEmbeds)), hit: false }
          : await this.textStates(r.negativePrompt, pinned);
        hits += uncond.hit ? 1 : 0;
        const branches = branchesOf(split, cond.states, uncond.states);
        context = branches.length === 1 ? (branches[0] as Tensor) : own(concat(branches, 0));
      }
      timings.text = performance.now() - tText;
      checkAbort(signal);

      // 2. Known latents from the image or clip.
      const tEnc = performance.now();
      // Image-to-video models take the image as a condition instead (image-conditioning.ts).
      const i2v = this.requiresImage
        ? await encodeImageCondition(
            this.imageEncoder,
            this.vae,
            r,
            opts.image as RgbImage | Tensor,
            r.endImage ? (opts.endImage as RgbImage | Tensor) : null,
            dtype,
          )
        : null;
      if (i2v) {
        own(i2v.condition);
        if (i2v.image) own(i2v.image);
      }
      // What a step calls: the expert, with the image condition bound for image-to-video models.
      const stepModel = (tr: WanTransformer): StepModel => (i2v ? conditionedModel(tr, i2v) : tr);
      const models = [stepModel(this.transformer), this.transformer2 ? stepModel(this.transformer2) : null];
      let known: Tensor | null = null;
      let init: Tensor | null = null;
      if (i2v) {
        // No known-frame substitution: the condition carries the image.
      } else if (r.mode === "i2v")
        known = own(this.encodePixels(imageFrames(opts.image as RgbImage | Tensor), r));
      else if (r.mode === "extend") {
        const clip = opts.video as VideoFrames | Tensor;
        const n = clipLength(clip);
        known = own(this.encodePixels(clipFrames(clip, n - r.contextFrames, n), r));
      } else if (r.mode === "v2v")
        init = own(this.encodePixels(clipFrames(opts.video as VideoFrames | Tensor, 0, r.frames), r));
      // The end image as a still: encoded as 1 + tf copies, its second latent frame is
      // what the last latent frame of a clip that holds that image looks like.
      let knownEnd: Tensor | null = null;
      if (r.endImage && !i2v) {
        const tf = temporalFactor(this.vae.config);
        const still = stillFrames(opts.endImage as RgbImage | Tensor, 1 + tf);
        knownEnd = own(
          scope(() => {
            const lat = this.encodePixels(still.source, r);
            return slice(lat, 1, 1, 2);
          }),
        );
        still.dispose();
      }
      if (known || init || knownEnd || i2v) await device.synchronize();
      timings.encode = performance.now() - tEnc;
      checkAbort(signal);

      // 3. Noise and the starting point.
      const noise = own(randn(shape, { seed: r.seed, device }));
      const noiseKnown = known ? own(slice(noise, 1, 0, r.knownLatentFrames)) : null;
      const end = knownEnd
        ? { known: knownEnd, noise: own(slice(noise, 1, r.latentFrames - 1, r.latentFrames)) }
        : null;
      scheduler = createScheduler(r.scheduler, { shift: r.shift, numTrainTimesteps: this.numTrainTimesteps });
      scheduler.setTimesteps(r.steps, r.schedule ?? undefined);
      const start = r.mode === "v2v" ? startIndexForStrength(r.steps, r.strength) : 0;
      const s0 = scheduler.sigmas[start] as number;
      // At the first step the pure noise is the sample, as in text-to-video (diffusers
      // would mix in (1 − σ₀) of the video even at strength 1, where σ₀ < 1 for UniPC).
      const begin = start === 0 || !init ? cast(noise, "f32") : scheduler.scaleNoise(init, noise, s0);
      latents = this.constrain(begin, s0, known, noiseKnown, r.loop, end);

      // 4. Denoising.
      const tDen = performance.now();
      const total = r.steps - start;
      // A graph needs a CUDA device and a step without read-backs (the step cache has
      // one) or collectives (a split step has them).
      // Weight offload copies each block in from host memory during the step, which a
      // capture refuses: its steps run op by op, and the report says why.
      const offloaded = this.offload;
      const useGraph = r.cudaGraph && device.kind === "cuda" && !stepCache && !stepSplits && !offloaded;
      const stepGraph: StepGraphReport = { state: useGraph ? "replayed" : "off", replays: 0 };
      if (offloaded && r.cudaGraph && device.kind === "cuda")
        stepGraph.reason =
          "weight offload: each step copies the transformer blocks in from host memory, which a CUDA graph cannot capture, so steps run op by op";
      const previewer =
        opts.preview && this.previewProjection
          ? new LatentPreviewer(this.previewProjection, opts.preview === true ? {} : opts.preview)
          : null;
      let lastExpert = -1;
      for (let i = start; i < r.steps; i++) {
        checkAbort(signal);
        const cur: Tensor = latents;
        const tNum = scheduler.timesteps[i] as number;
        const t = stepTime(tNum, this.expandTimesteps, known ? r.knownLatentFrames : 0, grid[0], pt);
        // The expert of this timestep (always the first with one), with its guidance.
        const e = expertAt(tNum, this.boundary);
        const model = models[e] as StepModel;
        const guidance = expertGuidance(e === 0 ? r.guidance : r.guidance2, cfg);
        if (e !== lastExpert) {
          // Timesteps only fall: the expert handed over from does not run again, so its
          // graph (and the activation memory it holds) can go.
          if (lastExpert >= 0) dropGraph(lastExpert);
          await useExpert(e);
        }
        expertSteps[e]++;
        let v: Tensor;
        if (stepCache)
          v = await guidedVelocity(model, cur, t, context, guidance, dtype, {
            cache: stepCache,
            // The first and the last step always run in full, and so does an expert's first.
            full: i === start || i === r.steps - 1 || e !== lastExpert,
            ...(stepSplits ? { split: stepSplits } : {}),
          });
        else if (useGraph) {
          graphs[e] ??= new StepGraph(model);
          const got = await (graphs[e] as StepGraph).velocity(cur, t, context, guidance, dtype);
          v = got.v;
          if (got.replayed) stepGraph.replays++;
        } else if (stepSplits)
          v = await guidedVelocity(model, cur, t, context, guidance, dtype, {
            split: stepSplits,
          });
        else v = guidedVelocity(model, cur, t, context, guidance, dtype);
        lastExpert = e;
        let next: Tensor;
        let x0: Tensor | null = null;
        try {
          next = scheduler.step(v, cur, i);
          if (previewer?.due()) x0 = previewer.estimate(cur, v, scheduler.sigmas[i] as number);
          if (x0) own(x0);
        } finally {
          v.dispose();
        }
        cur.dispose();
        latents = next;
        latents = this.constrain(latents, scheduler.sigmas[i + 1] as number, known, noiseKnown, r.loop, end);
        await device.synchronize();
        const preview: PreviewFrames | undefined = x0 ? await previewer?.frames(x0) : undefined;
        const done = i - start + 1;
        const elapsed = performance.now() - tDen;
        opts.onProgress?.({
          ...(preview ? { preview } : {}),
          step: done,
          total,
          elapsed,
          eta: (elapsed / done) * (total - done),
          timestep: scheduler.timesteps[i] as number,
          sigma: scheduler.sigmas[i + 1] as number,
        });
      }
      if (useGraph && stepGraph.replays === 0) {
        disposeGraphs();
        const reason = graphFailure;
        if (reason) Object.assign(stepGraph, { state: "failed", reason });
        else if (total < 2 || Math.max(...expertSteps) < 2) stepGraph.state = "off"; // nothing to replay
      }
      disposeGraphs();
      timings.denoise = performance.now() - tDen;
      // The swap of two experts is counted in denoise, not in the mean step.
      timings.step = (timings.denoise - timings.swap) / total;
      scheduler.reset();
      checkAbort(signal);

      // 5. Pixels.
      const tDec = performance.now();
      const final: Tensor = latents;
      video = await scope(() => {
        const zIn = this.vaeDtype === "f32" ? final : cast(final, this.vaeDtype);
        return andThen(decodeLatents(split, this.vae, zIn), (px) =>
          px.dtype === "f32" ? px : cast(px, "f32"),
        );
      });
      await device.synchronize();
      timings.decode = performance.now() - tDec;
      timings.total = performance.now() - t0;
      const result: GenerateResult = {
        video,
        latents: final,
        timings,
        seed: r.seed,
        width: r.width,
        height: r.height,
        frames: r.frames,
        fps: this.defaults.fps,
        stepsRun: total,
        fullSteps: stepCache ? stepCache.fullSteps : total,
        contextFrames: r.contextFrames,
        textCacheHits: hits,
        prompt: prepared.prompt,
        rewrite: prepared.rewrite,
        stepGraph,
        offload: offloaded,
        experts: this.boundary === null ? null : { boundary: this.boundary, steps: expertSteps, swaps },
      };
      latents = null;
      video = null;
      return result;
    } finally {
      for (const release of releases) release();
      for (const t of owned) t.dispose();
      latents?.dispose();
      video?.dispose();
      scheduler?.dispose();
      stepCache?.dispose();
      disposeGraphs();
      for (const k of pinned) this.#cache.release(k);
    }
  }

  /** Text states [1, textLength, text_dim] in the transformer's dtype and device, cached and pinned under a key added to `pinned`. */
  private async textStates(text: string, pinned: string[]): Promise<{ states: Tensor; hit: boolean }> {
    const clean = cleanPrompt(text);
    const key = TextStateCache.key(this.modelId, this.textLength, clean);
    const got = await this.#cache.acquire(key, () => this.encodeText(clean));
    pinned.push(key);
    return got;
  }

  /** Caller-given text states (promptEmbeds) as [1, textLength, text_dim] on the device in the transformer's dtype. */
  private givenStates(embeds: Tensor): Promise<Tensor> {
    return padPromptEmbeds(embeds, this.textLength, this.device, this.dtype);
  }

  /** Runs the tokenizer and umT5 on one text (no cache): [1, textLength, d_model], rows past the text zero. */
  async encodeText(text: string): Promise<Tensor> {
    const enc = this.tokenizer.encode(text, { maxLength: this.textLength });
    const encDevice = anyWeight(this.textEncoder.weights).device;
    const ids = Tensor.from(enc.ids, [1, this.textLength], { dtype: "i32", device: encDevice });
    let states: Tensor;
    try {
      states = this.textEncoder.encode(ids, [enc.length]);
    } finally {
      ids.dispose();
    }
    if (!states.device.equals(this.device)) {
      const moved = await states.to(this.device);
      states.dispose();
      states = moved;
    }
    if (states.dtype !== this.dtype) {
      const c = cast(states, this.dtype);
      states.dispose();
      states = c;
    }
    return states;
  }

  /** Normalised f32 latents of RGB8 frames or a [-1, 1] tensor, resized to the run's size. */
  private encodePixels(src: PixelSource, r: ResolvedOptions): Tensor {
    const vaeDevice = anyWeight(this.vae.weights).device;
    return scope(() => {
      const px =
        src.kind === "tensor"
          ? checkedPixelTensor(src.tensor, src.from, src.to, r, this.vaeDtype)
          : pixelsToTensor(src.frames, src.width, src.height, r.width, r.height, {
              device: vaeDevice,
              dtype: this.vaeDtype,
            });
      const lat = this.vae.encode(px);
      return lat.dtype === "f32" ? lat : cast(lat, "f32");
    });
  }

  // Applies the conditioning rule to `x` at noise level σ; consumes x.
  private constrain(
    x: Tensor,
    sigma: number,
    known: Tensor | null,
    noiseKnown: Tensor | null,
    loop: boolean,
    end: { known: Tensor; noise: Tensor } | null = null,
  ): Tensor {
    if (!known && !loop && !end) return x;
    const out = scope(() => {
      const f = x.shape[1] as number;
      let y = x;
      if (known && noiseKnown) {
        const m = known.shape[1] as number;
        const clean = sigma === 0 || this.expandTimesteps;
        const k = clean ? cast(known, "f32") : axpby(known, noiseKnown, 1 - sigma, sigma);
        y = m === f ? k : concat([k, slice(y, 1, m, f)], 1);
      }
      if (loop && f > 1) y = concat([slice(y, 1, 0, f - 1), slice(y, 1, 0, 1)], 1);
      if (end && f > 1) {
        const k = sigma === 0 ? cast(end.known, "f32") : axpby(end.known, end.noise, 1 - sigma, sigma);
        y = concat([slice(y, 1, 0, f - 1), k], 1);
      }
      return y === x ? cast(x, "f32") : y;
    });
    x.dispose();
    return out;
  }
}

/**
 * Generation defaults: diffusers' WanPipeline size (832×480, 81 frames), Wan's
 * sampling settings (UniPC, shift 5, 50 steps, guidance 5, 16 fps), then `over`.
 */
export function generationDefaults(over: Partial<GenerationDefaults> = {}): GenerationDefaults {
  return {
    width: 832,
    height: 480,
    frames: 81,
    steps: WAN_SAMPLING_DEFAULTS.steps,
    guidance: WAN_SAMPLING_DEFAULTS.guidance,
    shift: WAN_SAMPLING_DEFAULTS.shift,
    scheduler: WAN_SAMPLING_DEFAULTS.scheduler,
    fps: WAN_SAMPLING_DEFAULTS.fps,
    ...over,
  };
}

/**
 * What sizes a transformer + VAE pair can generate: sides in multiples of VAE
 * factor × patch (16), frames 1 + 4k. The caps (4096 px a side, 1021 frames) are
 * sanity limits well past what Wan2.1 was trained on (1280×720, 81 frames).
 */
export function modelLimits(tc: WanTransformerConfig, vc: WanVaeConfig, experts = 1): ModelLimits {
  const [pt, ph, pw] = tc.patch_size;
  if (ph !== pw) throw new Error(`WanPipeline: patch ${ph}x${pw} is not square`);
  const tf = temporalFactor(vc);
  return {
    sideMultiple: spatialFactor(vc) * ph,
    temporalFactor: tf,
    temporalPatch: pt,
    maxSide: 4096,
    maxFrames: 1 + tf * 255,
    ...(experts > 1 ? { experts } : {}),
  };
}

/**
 * Checks that two experts can share a run (the same geometry in and out, the same
 * patch and text width) and gives the boundary timestep of their hand-over.
 */
function twoExperts(
  a: WanTransformer,
  b: WanTransformer,
  boundaryRatio: number | undefined,
  numTrainTimesteps: number,
): { boundary: number } {
  const ca = a.config;
  const cb = b.config;
  for (const k of [
    "in_channels",
    "out_channels",
    "text_dim",
    "num_attention_heads",
    "attention_head_dim",
  ] as const)
    if (ca[k] !== cb[k])
      throw new Error(
        `WanPipeline: the two experts differ in ${k} (transformer ${ca[k]}, transformer_2 ${cb[k]}); they must take the same latents and text`,
      );
  if ((ca.image_dim ?? null) !== (cb.image_dim ?? null))
    throw new Error(
      `WanPipeline: the two experts differ in image_dim (transformer ${ca.image_dim ?? null}, transformer_2 ${cb.image_dim ?? null}); both must take the same image input`,
    );
  if (ca.patch_size.join() !== cb.patch_size.join())
    throw new Error(
      `WanPipeline: the two experts' patch sizes differ (${ca.patch_size.join("x")} and ${cb.patch_size.join("x")})`,
    );
  if (boundaryRatio === undefined || !(boundaryRatio > 0 && boundaryRatio < 1))
    throw new Error(
      `WanPipeline: a second expert needs boundaryRatio in (0, 1) (model_index.json's boundary_ratio), got ${boundaryRatio}`,
    );
  return { boundary: boundaryTimestep(boundaryRatio, numTrainTimesteps) };
}

type PixelSource =
  | { kind: "frames"; frames: readonly Uint8Array[]; width: number; height: number }
  | { kind: "tensor"; tensor: Tensor; from: number; to: number };

function isTensor(x: unknown): x is Tensor {
  return x instanceof Tensor;
}

function imageFrames(image: RgbImage | Tensor): PixelSource {
  if (isTensor(image)) return { kind: "tensor", tensor: image, from: 0, to: image.shape[1] as number };
  return { kind: "frames", frames: [image.data], width: image.width, height: image.height };
}

// `n` copies of one image as a pixel source; dispose() frees the tensor copy, if any.
function stillFrames(image: RgbImage | Tensor, n: number): { source: PixelSource; dispose(): void } {
  if (isTensor(image)) {
    const t = concat(
      Array.from({ length: n }, () => image),
      1,
    );
    return { source: { kind: "tensor", tensor: t, from: 0, to: n }, dispose: () => t.dispose() };
  }
  return {
    source: {
      kind: "frames",
      frames: Array.from({ length: n }, () => image.data),
      width: image.width,
      height: image.height,
    },
    dispose: () => {},
  };
}

function clipLength(clip: VideoFrames | Tensor): number {
  return isTensor(clip) ? (clip.shape[1] as number) : clip.frames.length;
}

function clipFrames(clip: VideoFrames | Tensor, from: number, to: number): PixelSource {
  if (isTensor(clip)) return { kind: "tensor", tensor: clip, from, to };
  return { kind: "frames", frames: clip.frames.slice(from, to), width: clip.width, height: clip.height };
}

// Called inside a scope: the slice and cast are temporaries.
function checkedPixelTensor(t: Tensor, from: number, to: number, r: ResolvedOptions, dtype: DType): Tensor {
  const s = t.shape;
  if (t.ndim !== 5 || s[0] !== 1 || s[2] !== r.height || s[3] !== r.width || s[4] !== 3)
    throw new Error(
      `pixel tensor must be [1, T, ${r.height}, ${r.width}, 3] (the generation size) in [-1, 1], got [${s.join(", ")}]`,
    );
  const part = from === 0 && to === s[1] ? t : slice(t, 1, from, to);
  return part.dtype === dtype ? part : cast(part, dtype);
}

// An image-to-video transformer needs a CLIP image encoder whose width is its image_dim; a text-to-video one takes none.
function checkImageEncoder(tc: WanTransformerConfig, enc: ImageEncoderParts | null): void {
  if (!hasImageInput(tc)) {
    if (enc)
      throw new Error(
        "WanPipeline: an image encoder was given for a transformer without image_dim (no image cross-attention)",
      );
    return;
  }
  if (!enc)
    throw new Error(
      "WanPipeline: this image-to-video transformer (image_dim set) needs the CLIP image encoder (the folder's image_encoder/ and image_processor/)",
    );
  if (enc.encoder.config.hidden_size !== tc.image_dim)
    throw new Error(
      `WanPipeline: the transformer's image_dim is ${tc.image_dim} but the image encoder's hidden_size is ${enc.encoder.config.hidden_size}`,
    );
}

function anyWeight(store: { names(): string[]; get(name: string): Tensor }): Tensor {
  const first = store.names()[0];
  if (first === undefined) throw new Error("WanPipeline: a component has no weights");
  return store.get(first);
}

function checkAbort(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new AbortError("generation was aborted", { cause: signal.reason });
}
