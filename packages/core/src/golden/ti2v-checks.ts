// Golden checks of the Wan2.2 TI2V family (fixtures from training/make_golden_ti2v.py;
// checks.ts runs them with the others): the Wan2.2 VAE's encode and decode, the
// transformer with a timestep per token frame, and a whole TI2V image-to-video
// pipeline run (3 Euler steps with guidance, from the noise the engine draws for the
// fixture's seed, given text states and an image) through WanPipeline.generate.
import { cast, type Tensor } from "@tessera/native";
import type { WanTransformerConfig } from "../models/wan/config.js";
import { WanTransformer } from "../models/wan/transformer.js";
import type { WanVaeConfig } from "../models/wan-vae/config.js";
import { WanVAE } from "../models/wan-vae/vae.js";
import { randomWanComponents } from "../pipelines/model-folder.js";
import { WanPipeline } from "../pipelines/wan.js";
import type { Check } from "./checks.js";
import { compare, input, openGolden, withGolden } from "./fixture.js";
import { forwardCheck } from "./forward.js";

/** The multi-step pipeline bound in f32 (single forwards: 1e-4). */
const PIPELINE_BOUND = 1e-3;

const VAE_ENCODE = "Wan2.2 VAE: chunked encode (5 frames, patchify 2) to normalised latents";
const VAE_DECODE = "Wan2.2 VAE: decode of 3 latent frames (residual up blocks, unpatchify)";
const FORWARD = "Wan2.2 TI2V transformer: forward with a timestep per token frame";
const PIPE_LATENTS = "Wan2.2 TI2V pipeline: image-to-video latents after 3 guided Euler steps";
const PIPE_VIDEO = "Wan2.2 TI2V pipeline: the decoded video";

interface PipelineSettings {
  seed: number;
  width: number;
  height: number;
  frames: number;
  steps: number;
  sigmas: number[];
  shift: number;
  guidance: number;
}

export const TI2V_CHECKS: readonly Check[] = [
  {
    fixture: "wan22_vae",
    names: [VAE_ENCODE, VAE_DECODE],
    async run(ctx, emit) {
      await withGolden<WanVaeConfig>(ctx, "wan22_vae", async (g, track) => {
        const vae = new WanVAE(g.config, g.weights);
        const z = vae.encode(await input(ctx, g, "video", track));
        track.push(z);
        emit(await compare(ctx, g, VAE_ENCODE, "encode_latents", z));
        const y = vae.decode(await input(ctx, g, "decode_latents_normalized", track));
        track.push(y);
        emit(await compare(ctx, g, VAE_DECODE, "decode", y));
      });
    },
  },
  {
    fixture: "wan_ti2v",
    names: [FORWARD],
    // Timesteps [B, token frames].
    run: async (ctx, emit) => emit(await forwardCheck(ctx, "wan_ti2v", FORWARD)),
  },
  {
    fixture: "wan_ti2v",
    names: [PIPE_LATENTS, PIPE_VIDEO],
    async run(ctx, emit) {
      const g = await openGolden<WanTransformerConfig>(ctx, "wan_ti2v");
      const gv = await openGolden<WanVaeConfig>(ctx, "wan22_vae");
      const p = JSON.parse(g.meta.pipeline as string) as PipelineSettings;
      const track: Tensor[] = [];
      // The tiny TI2V model's text encoder and tokenizer only fill the pipeline's slots:
      // the prompts' states are the fixture's (see GoldenText).
      const rnd = randomWanComponents({ config: "tiny-ti2v", device: ctx.device, dtype: ctx.dtype });
      rnd.transformer.weights.dispose();
      rnd.vae.weights.dispose();
      try {
        const cond = await input(ctx, g, "pipe_cond_states", track);
        const uncond = await input(ctx, g, "pipe_uncond_states", track);
        class GoldenText extends WanPipeline {
          override async encodeText(text: string): Promise<Tensor> {
            const s = text === "" ? uncond : cond;
            return cast(s, s.dtype);
          }
        }
        const pipe = new GoldenText({
          ...rnd,
          transformer: new WanTransformer(g.config, g.weights),
          vae: new WanVAE(gv.config, gv.weights),
          expandTimesteps: true,
        });
        try {
          const r = await pipe.generate({
            prompt: "golden",
            negativePrompt: "",
            image: await input(ctx, g, "pipe_image", track),
            width: p.width,
            height: p.height,
            frames: p.frames,
            steps: p.steps,
            sigmas: p.sigmas,
            shift: p.shift,
            guidance: p.guidance,
            scheduler: "euler",
            seed: p.seed,
            cudaGraph: false,
          });
          track.push(r.latents, r.video);
          emit(await compare(ctx, g, PIPE_LATENTS, "pipe_latents", r.latents, undefined, PIPELINE_BOUND));
          emit(await compare(ctx, g, PIPE_VIDEO, "pipe_video", r.video, undefined, PIPELINE_BOUND));
        } finally {
          // The fixture stores own the transformer's and VAE's weights; the text cache and
          // the stand-in text encoder are the pipeline's.
          pipe.clearTextCache();
        }
      } finally {
        for (const t of track) t.dispose();
        rnd.textEncoder.weights.dispose();
        g.dispose();
        gv.dispose();
      }
    },
  },
];
