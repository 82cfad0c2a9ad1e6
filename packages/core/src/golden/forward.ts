// One Wan transformer forward on a fixture's input.* tensors, compared with its
// output.velocity: the single-forward check of the T2V, TI2V, I2V and FLF2V fixtures.
import type { WanTransformerConfig } from "../models/wan/config.js";
import { WanTransformer } from "../models/wan/transformer.js";
import { type Ctx, compare, type GoldenResult, input, withGolden } from "./fixture.js";

/** `imageInputs`: the fixture also holds input.condition and input.image (I2V, FLF2V). */
export function forwardCheck(
  ctx: Ctx,
  fixture: string,
  name: string,
  imageInputs = false,
): Promise<GoldenResult> {
  return withGolden<WanTransformerConfig, GoldenResult>(ctx, fixture, async (g, track) => {
    const model = new WanTransformer(g.config, g.weights);
    const y = model.forward({
      latents: await input(ctx, g, "latents", track),
      ...(imageInputs ? { condition: await input(ctx, g, "condition", track) } : {}),
      // timestep_embedding takes f32 timesteps whatever the run dtype ([B], or [B, token frames]).
      timesteps: await input(ctx, g, "timesteps", track, true),
      context: await input(ctx, g, "context", track),
      ...(imageInputs ? { image: await input(ctx, g, "image", track) } : {}),
    });
    track.push(y);
    return compare(ctx, g, name, "velocity", y);
  });
}
