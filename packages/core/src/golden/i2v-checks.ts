// Golden checks of image-to-video (training/make_golden_i2v.py): the CLIP vision tower
// from an image file (preprocessing included), the Wan2.1 I2V and FLF2V transformers'
// forwards, whole I2V / FLF2V pipeline runs, and Wan2.2 I2V-A14B runs (two experts,
// the same condition without CLIP). Run by checks.ts with the other golden checks
// (same fixtures folder, bounds and dtypes).
import { join } from "node:path";
import { affine, cast, type Tensor } from "@tessera/native";
import type { ClipVisionConfig } from "../models/clip/config.js";
import { ClipVisionEncoder } from "../models/clip/encoder.js";
import { clipImageProcessorFromJson, clipPixels } from "../models/clip/preprocess.js";
import { UMT5_TINY } from "../models/t5/config.js";
import { UMT5Encoder } from "../models/t5/encoder.js";
import { randomUMT5Weights } from "../models/t5/params.js";
import type { WanTransformerConfig } from "../models/wan/config.js";
import { WanTransformer } from "../models/wan/transformer.js";
import type { WanVaeConfig } from "../models/wan-vae/config.js";
import { WanVAE } from "../models/wan-vae/vae.js";
import { type GenerateResult, WanPipeline } from "../pipelines/wan.js";
import { TextTokenizer } from "../tokenizer/tokenizer.js";
import { buildWordLevelTokenizerJson } from "../tokenizer/wordlevel.js";
import type { RgbImage } from "../video/frames.js";
import { readImage } from "../video/io.js";
import { loadWeights } from "../weights/load.js";
import type { Check } from "./checks.js";
import {
  type Ctx,
  compare,
  type Golden,
  type GoldenResult,
  input,
  openGolden,
  withGolden,
} from "./fixture.js";
import { forwardCheck } from "./forward.js";

export const I2V_FIXTURES = [
  "clip_vision",
  "wan_i2v_transformer",
  "wan_flf2v_transformer",
  "wan_i2v_pipeline",
  "wan_i2v_a14b_pipeline",
] as const;

/** The committed image the CLIP and pipeline fixtures start from. */
export const I2V_IMAGE = "i2v_image.png";

const image = (ctx: Ctx) => readImage(join(ctx.dir, I2V_IMAGE));

function mirrored(im: RgbImage): RgbImage {
  const { width: w, height: h, data } = im;
  const out = new Uint8Array(data.length);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++)
      for (let c = 0; c < 3; c++) out[(y * w + x) * 3 + c] = data[(y * w + (w - 1 - x)) * 3 + c] as number;
  return { width: w, height: h, data: out };
}

const CLIP_NAMES = [
  "CLIP vision: preprocessing of an image file (resize, crop, normalise) matches CLIPImageProcessor",
  "CLIP vision: hidden_states[-2] of an image file (gelu)",
  "CLIP vision: hidden_states[-2] with quick_gelu",
  "CLIP vision: every layer (hidden_states[-1])",
] as const;

const PIPELINE_NAMES = {
  i2v: "Wan I2V pipeline: latents after 3 guided Euler steps from an image file",
  flf2v: "Wan FLF2V pipeline: latents after 3 guided Euler steps from two images",
} as const;

const A14B_NAMES = {
  i2v: "Wan2.2 I2V-A14B pipeline: latents after 4 guided Euler steps over two experts from an image file",
  flf: "Wan2.2 I2V-A14B pipeline: the same from a first and a last image",
} as const;

// A WanPipeline over the fixtures' weights whose text encoder returns the fixture's prompt embeddings.
class FixedTextPipeline extends WanPipeline {
  texts = new Map<string, Tensor>();
  override async encodeText(text: string): Promise<Tensor> {
    const t = this.texts.get(text);
    if (!t) throw new Error(`golden pipeline: no prompt embeddings for '${text}'`);
    // A copy: the text-state cache owns (and frees) what this returns.
    return affine(t, 1, 0);
  }
}

// The settings a pipeline fixture's metadata gives its runs.
interface PipelineSettings {
  width: number;
  height: number;
  frames: number;
  seed: number;
  sigmas: number[];
  shift: number;
  guidance: number;
  text_length: number;
}

// One fixture run: its prompt embeddings as the texts, generate() from the committed
// image (mirrored as the last frame too where `endImage`), the outputs tracked.
async function generateFromImage(
  ctx: Ctx,
  g: Golden<unknown>,
  pipe: FixedTextPipeline,
  p: PipelineSettings,
  track: Tensor[],
  endImage: boolean,
  extra: { guidance2?: number } = {},
): Promise<GenerateResult> {
  pipe.texts.set("golden prompt", await input(ctx, g, "prompt_embeds", track));
  pipe.texts.set("golden negative", await input(ctx, g, "negative_prompt_embeds", track));
  const first = await image(ctx);
  const res = await pipe.generate({
    prompt: "golden prompt",
    negativePrompt: "golden negative",
    width: p.width,
    height: p.height,
    frames: p.frames,
    seed: p.seed,
    sigmas: p.sigmas,
    shift: p.shift,
    guidance: p.guidance,
    ...extra,
    image: first,
    ...(endImage ? { endImage: mirrored(first) } : {}),
    rewrite: false,
  });
  track.push(res.video, res.latents);
  return res;
}

async function pipelineCheck(ctx: Ctx, emit: (r: GoldenResult) => void, kind: "i2v" | "flf2v") {
  const g = await openGolden<Record<string, unknown>>(ctx, "wan_i2v_pipeline");
  const opened: Golden<unknown>[] = [g];
  const track: Tensor[] = [];
  try {
    const p = JSON.parse(g.meta.pipeline as string) as PipelineSettings;
    const tg = await openGolden<WanTransformerConfig>(ctx, `wan_${kind}_transformer`);
    opened.push(tg);
    const vg = await openGolden<WanVaeConfig>(ctx, "wan_vae");
    opened.push(vg);
    const cg = await openGolden<ClipVisionConfig>(ctx, "clip_vision");
    opened.push(cg);
    const text = randomUMT5Weights(UMT5_TINY, { device: ctx.device, dtype: ctx.dtype });
    const pipe = new FixedTextPipeline({
      transformer: new WanTransformer(tg.config, tg.weights),
      vae: new WanVAE(vg.config, vg.weights),
      textEncoder: new UMT5Encoder(UMT5_TINY, text),
      tokenizer: TextTokenizer.fromJson(buildWordLevelTokenizerJson(["a"]), {}, "golden tokenizer"),
      textLength: p.text_length,
      imageEncoder: {
        encoder: new ClipVisionEncoder(cg.config, cg.weights),
        processor: clipImageProcessorFromJson(JSON.parse(g.meta.image_processor as string)),
      },
    });
    try {
      const res = await generateFromImage(ctx, g, pipe, p, track, kind === "flf2v");
      emit(await compare(ctx, g, PIPELINE_NAMES[kind], `latents_${kind}`, res.latents));
    } finally {
      text.dispose();
      pipe.clearTextCache();
    }
  } finally {
    for (const t of track) t.dispose();
    for (const o of opened) o.dispose();
  }
}

// Wan2.2 I2V-A14B: the fixture's two experts (transformer.*, transformer_2.*), no image
// encoder; the latents after the boundary-crossing run, in f32 to 1e-3 (multi-step).
async function a14bPipelineCheck(ctx: Ctx, emit: (r: GoldenResult) => void, kind: "i2v" | "flf") {
  const name = "wan_i2v_a14b_pipeline";
  const g = await openGolden<{ transformer: WanTransformerConfig; vae: WanVaeConfig }>(ctx, name);
  const opened: Golden<unknown>[] = [g];
  const track: Tensor[] = [];
  try {
    const p = JSON.parse(g.meta.pipeline as string) as PipelineSettings & {
      guidance_2: number;
      boundary_ratio: number;
    };
    const vg = await openGolden<WanVaeConfig>(ctx, "wan_vae");
    opened.push(vg);
    const path = join(ctx.dir, `${name}.safetensors`);
    const expert = async (prefix: string) =>
      new WanTransformer(
        g.config.transformer,
        await loadWeights(path, {
          filter: (n) => n.startsWith(`${prefix}.`),
          rename: (n) => n.slice(prefix.length + 1),
          device: ctx.device,
          dtype: ctx.dtype,
        }),
      );
    const text = randomUMT5Weights(UMT5_TINY, { device: ctx.device, dtype: ctx.dtype });
    const pipe = new FixedTextPipeline({
      transformer: await expert("transformer"),
      transformer2: await expert("transformer_2"),
      boundaryRatio: p.boundary_ratio,
      vae: new WanVAE(vg.config, vg.weights),
      textEncoder: new UMT5Encoder(UMT5_TINY, text),
      tokenizer: TextTokenizer.fromJson(buildWordLevelTokenizerJson(["a"]), {}, "golden tokenizer"),
      textLength: p.text_length,
    });
    try {
      const res = await generateFromImage(ctx, g, pipe, p, track, kind === "flf", {
        guidance2: p.guidance_2,
      });
      const r = await compare(ctx, g, A14B_NAMES[kind], `latents_${kind}`, res.latents, undefined, 1e-3);
      // Each expert ran the steps the reference gave it.
      const want = Array.from((await g.data.get("output.experts").toTypedArray()) as Int32Array);
      const counts = [0, 1].map((e) => want.filter((x) => x === e).length);
      const got = res.experts?.steps ?? [];
      const same = got[0] === counts[0] && got[1] === counts[1];
      r.detail += `; expert steps [${got.join(", ")}] (reference [${counts.join(", ")}])`;
      if (!same) r.pass = false;
      emit(r);
    } finally {
      text.dispose();
      pipe.clearTextCache();
      pipe.transformer.weights.dispose();
      pipe.transformer2?.weights.dispose();
    }
  } finally {
    for (const t of track) t.dispose();
    for (const o of opened) o.dispose();
  }
}

async function transformerCheck(
  ctx: Ctx,
  emit: (r: GoldenResult) => void,
  kind: "i2v" | "flf2v",
  name: string,
) {
  emit(await forwardCheck(ctx, `wan_${kind}_transformer`, name, true));
}

export const I2V_CHECKS: readonly Check[] = [
  {
    fixture: "clip_vision",
    names: CLIP_NAMES,
    async run(ctx, emit) {
      await withGolden<ClipVisionConfig>(ctx, "clip_vision", async (g, track) => {
        const proc = clipImageProcessorFromJson(JSON.parse(g.meta.image_processor as string));
        const px = clipPixels(await image(ctx), proc, ctx.device);
        track.push(px);
        const [a, b, c, d] = CLIP_NAMES;
        // The preprocessing is exact in f32 (PIL's fixed-point resampler); compare it as f32 whatever the run dtype.
        emit(await compare({ ...ctx, dtype: "f32" }, g, a, "pixel_values", px));
        const enc = new ClipVisionEncoder(g.config, g.weights);
        const x = px.dtype === ctx.dtype ? px : cast(px, ctx.dtype);
        if (x !== px) track.push(x);
        const pen = enc.encode(x);
        track.push(pen);
        emit(await compare(ctx, g, b, "penultimate", pen));
        const quick = new ClipVisionEncoder({ ...g.config, hidden_act: "quick_gelu" }, g.weights);
        const q = quick.encode(x);
        track.push(q);
        emit(await compare(ctx, g, c, "penultimate_quick_gelu", q));
        const all = enc.encode(x, g.config.num_hidden_layers);
        track.push(all);
        emit(await compare(ctx, g, d, "last_hidden_state_prenorm", all));
      });
    },
  },
  {
    fixture: "wan_i2v_transformer",
    names: ["Wan I2V transformer: forward (36 channels, CLIP image tokens)"],
    run: (ctx, emit) =>
      transformerCheck(ctx, emit, "i2v", "Wan I2V transformer: forward (36 channels, CLIP image tokens)"),
  },
  {
    fixture: "wan_flf2v_transformer",
    names: ["Wan FLF2V transformer: forward (two images' tokens with learned positions)"],
    run: (ctx, emit) =>
      transformerCheck(
        ctx,
        emit,
        "flf2v",
        "Wan FLF2V transformer: forward (two images' tokens with learned positions)",
      ),
  },
  {
    fixture: "wan_i2v_pipeline",
    names: [PIPELINE_NAMES.i2v],
    run: (ctx, emit) => pipelineCheck(ctx, emit, "i2v"),
  },
  {
    fixture: "wan_i2v_pipeline",
    names: [PIPELINE_NAMES.flf2v],
    run: (ctx, emit) => pipelineCheck(ctx, emit, "flf2v"),
  },
  {
    fixture: "wan_i2v_a14b_pipeline",
    names: [A14B_NAMES.i2v],
    run: (ctx, emit) => a14bPipelineCheck(ctx, emit, "i2v"),
  },
  {
    fixture: "wan_i2v_a14b_pipeline",
    names: [A14B_NAMES.flf],
    run: (ctx, emit) => a14bPipelineCheck(ctx, emit, "flf"),
  },
];
