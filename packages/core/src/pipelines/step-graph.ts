// The denoising step as a CUDA graph. Shapes do not change between steps, so the
// guided transformer call (both branches, the f32 combine) is captured once per
// shape and replayed with one launch: the ~800 launches of a Wan2.1-1.3B step and
// their host-side work leave the step's critical path. The graph reads its inputs
// from tensors it owns (refilled with assign() before each replay) and writes its
// velocity to memory it owns, copied out for the caller.
import { assign, type CudaGraph, captureGraph, cast, type DType, scope, type Tensor } from "@tessera/native";
import { guidedVelocityAt, type StepModel, type StepTime, stepTimesteps } from "./guided-velocity.js";

/** How the step graph ran in one generation. */
export interface StepGraphReport {
  /** "replayed": steps after the first replayed the graph; "off": not asked for or not a CUDA device; "failed": captured work was refused, so every step ran eagerly (see reason). */
  state: "replayed" | "off" | "failed";
  /** Steps served by a replay. */
  replays: number;
  /** Why the capture failed ("failed"), or why it was not tried ("off" under weight offload). */
  reason?: string;
}

interface Captured {
  key: string;
  graph: CudaGraph;
  latents: Tensor;
  timesteps: Tensor;
  context: Tensor;
  out: Tensor;
  /** The context tensor last copied into `context`. */
  contextFrom: Tensor | null;
}

/** One generation's step graph (the pipeline makes one per generation and disposes it). */
export class StepGraph {
  #cur: Captured | null = null;
  #failed = new Map<string, string>();
  #busy = false;

  constructor(readonly transformer: StepModel) {}

  /** Why the last capture failed, or null when none has. */
  failure(): string | null {
    return [...this.#failed.values()].at(-1) ?? null;
  }

  /**
   * guidedVelocity() through a graph: the first call for a shape runs eagerly and
   * then captures; later calls refill the inputs and replay. Returns a tensor the
   * caller owns and whether it came from a replay. When capture fails (an op that
   * cannot be captured), the reason is kept and that shape runs eagerly from then on.
   */
  async velocity(
    latents: Tensor,
    timestep: StepTime,
    context: Tensor,
    guidance: number,
    dtype: DType,
  ): Promise<{ v: Tensor; replayed: boolean }> {
    const k = key(latents, context, guidance, dtype, timestep);
    const cur = this.#cur;
    if (cur && cur.key === k && !this.#busy) {
      scope(() => {
        assign(cur.latents, latents);
        assign(cur.timesteps, stepTimesteps(timestep, context));
        if (cur.contextFrom !== context) {
          assign(cur.context, context);
          cur.contextFrom = context;
        }
      });
      cur.graph.replay();
      return { v: copyOf(cur.out), replayed: true };
    }
    const eager = () =>
      scope(() =>
        guidedVelocityAt(
          this.transformer,
          latents,
          stepTimesteps(timestep, context),
          context,
          guidance,
          dtype,
        ),
      );
    if (this.#failed.has(k) || this.#busy) return { v: eager(), replayed: false };
    // This step runs eagerly (it also warms up the kernels' one-time set-up, which
    // a capture must not record); the capture follows on inputs of its own.
    const v = eager();
    this.dispose();
    this.#busy = true;
    try {
      this.#cur = await this.#capture(k, latents, timestep, context, guidance, dtype);
    } catch (e) {
      this.#failed.set(k, (e as Error).message);
    } finally {
      this.#busy = false;
    }
    return { v, replayed: false };
  }

  async #capture(
    k: string,
    latents: Tensor,
    timestep: StepTime,
    context: Tensor,
    guidance: number,
    dtype: DType,
  ): Promise<Captured> {
    // Made outside any caller's scope: they live as long as the graph.
    const inputs = scope((keep) => ({
      latents: keep(copyOf(latents)),
      timesteps: keep(stepTimesteps(timestep, context)),
      context: keep(copyOf(context)),
    }));
    try {
      const { graph, result } = await captureGraph(latents.device, () =>
        scope((keep) =>
          keep(
            guidedVelocityAt(
              this.transformer,
              inputs.latents,
              inputs.timesteps,
              inputs.context,
              guidance,
              dtype,
            ),
          ),
        ),
      );
      return { key: k, graph, ...inputs, out: result, contextFrom: context };
    } catch (e) {
      for (const t of Object.values(inputs)) t.dispose();
      throw e;
    }
  }

  /** Frees the graph and its memory. */
  dispose(): void {
    const cur = this.#cur;
    this.#cur = null;
    if (!cur) return;
    cur.graph.dispose();
    for (const t of [cur.latents, cur.timesteps, cur.context, cur.out]) t.dispose();
  }
}

function key(latents: Tensor, context: Tensor, guidance: number, dtype: DType, timestep: StepTime): string {
  return JSON.stringify([
    typeof timestep === "number" ? 0 : timestep.length,
    latents.shape,
    latents.dtype,
    context.shape,
    context.dtype,
    guidance,
    dtype,
    latents.device.name,
  ]);
}

function copyOf(t: Tensor): Tensor {
  return cast(t, t.dtype);
}
